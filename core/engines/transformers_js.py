"""transformers.js in a browser tab (ONNX Runtime Web, WebGPU or WASM): every KV-owning layer at full length, copied each step."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from core.architecture import TextConfig
from core.browser_limits import (
    WASM32_MAX_HEAP_BYTES,
    WEBGPU_DEFAULT_MAX_BUFFER_BYTES,
    Backend,
    BrowserLimits,
    BrowserVerdict,
    PlannedTensor,
    check_browser_plan,
    format_limit,
    format_size,
)
from core.devices import spec_minimum_limits
from core.engines.base import (
    ActivationModel,
    EnginePolicy,
    EngineSettings,
    KvFigures,
    KvLayout,
    Tokens,
    forward_values_per_token,
    kv_from_cells,
    where,
)

if TYPE_CHECKING:
    from core.catalog import Accelerator, ModelSpec
    from core.estimate import MemoryProfile

# docs/research/browser-onnx.md §1.2: an empty past takes the graph input's element type
# (TJS models/modeling_utils.js addPastKeyValues @5ed4c5c), so the cache is the graph's float:
# the *f16 dtypes are "fp16 model with ... block quantization" (TJS utils/dtypes.js), the others
# fp32 graphs. Which type each public export really declares was not readable (est.).
GRAPH_KV_CACHE = {"onnx-q4": "fp32", "onnx-q8": "fp32", "onnx-q4f16": "fp16", "onnx-fp16": "fp16"}
# Bits of a weight's packed data tensor, which WebGPU allocates as one buffer; the block scales
# and zero points are tensors of their own (MatMulNBits / GatherBlockQuantized take them apart).
DATA_TENSOR_BITS = {"onnx-q4": 4, "onnx-q4f16": 4, "onnx-q8": 8, "onnx-fp16": 16}
# The backend under "auto". transformers.js itself defaults to the wasm device in a browser
# whatever the dtype (utils/devices.js DEFAULT_DEVICE = 'wasm' off Node @5ed4c5c), and to q8 on
# wasm (utils/dtypes.js DEFAULT_DEVICE_DTYPE_MAPPING {wasm: q8}; fp32 elsewhere). The planner's
# auto keeps q8 on WASM, its home, and runs the other dtypes on WebGPU, as every public Gemma 4
# demo passes device: "webgpu"; a browser without WebGPU gets WASM (see backend_for).
WASM_FORMATS = frozenset({"onnx-q8"})
# Said after a WebGPU limit that a typed-in browser did not give (core.devices.spec_minimum_limits).
SPEC_MINIMUM_NOTE = (
    f"{format_limit(WEBGPU_DEFAULT_MAX_BUFFER_BYTES)} is the WebGPU spec's guaranteed minimum, not your "
    "adapter's: type the adapter's own maxBufferSize, which "
    "(await navigator.gpu.requestAdapter()).limits.maxBufferSize prints in the browser's console"
)
# The onnx-community collection holds E2B and E4B exports only (docs/research/browser-onnx.md §1.6).
NO_BROWSER_EXPORT = frozenset({"gemma-4-26b-a4b", "gemma-4-31b"})
# Prompt activations in the graph's float type; the whole prompt goes through one run.
GRAPH_FLOAT_BYTES = {"fp32": 4, "fp16": 2}


def backend_for(
    weight_format_id: str, choice: Literal["auto", "webgpu", "wasm"] = "auto", has_webgpu: bool = True
) -> Backend:
    """The ONNX Runtime Web backend a plan runs on: the one chosen (EngineSettings.browser_backend),
    or under auto WASM for q8 and in a browser without WebGPU, else WebGPU. transformers.js does
    not fall back by itself: device "webgpu" where navigator.gpu is missing throws 'Unsupported
    device: "webgpu". Should be one of: wasm.' (backends/onnx.js deviceToExecutionProviders
    @5ed4c5c: supportedDevices gets 'webgpu' only when env.js IS_WEBGPU_AVAILABLE, i.e. 'gpu' in
    navigator), so the planner's auto does the fallback the page script must do too."""
    if choice != "auto":
        return choice
    return "wasm" if weight_format_id in WASM_FORMATS or not has_webgpu else "webgpu"


def browser_limits(accelerator: Accelerator) -> BrowserLimits | None:
    """The device's browser limits (gpus.csv columns), or None for a device that is not a browser.
    A browser with no WebGPU limits has no WebGPU (data/browser_limits.csv leaves both blank; a
    typed-in browser unticks WebGPU); a typed-in one that names none gets the spec's minimums."""
    if accelerator.kind != "browser":
        return None
    return BrowserLimits(
        name=accelerator.name,
        max_buffer_bytes=accelerator.webgpu_max_buffer_bytes,
        max_storage_binding_bytes=accelerator.webgpu_max_binding_bytes,
        wasm_heap_bytes=accelerator.wasm_heap_bytes or WASM32_MAX_HEAP_BYTES,
        tab_memory_bytes=accelerator.memory_bytes,
        limits_note=SPEC_MINIMUM_NOTE if spec_minimum_limits(accelerator) else None,
    )


def no_webgpu_refusal(browser: str) -> str:
    """Why device "webgpu" does not start in a browser without WebGPU, and the way out."""
    return (
        f"{browser} has no WebGPU (no navigator.gpu), so transformers.js offers only the wasm device there: "
        'device: "webgpu" throws "Unsupported device" (backends/onnx.js). Choose the WASM backend, or auto'
    )


def planned_tensors(model: ModelSpec, weight_format_id: str, bits: float) -> list[PlannedTensor]:
    """The largest single tensors of the export: the token table (and its tied head copy), the
    per-layer-embedding table, and the widest MLP matrix, as packed data without scales."""
    text = model.config.text_config
    data_bits = DATA_TENSOR_BITS.get(weight_format_id, bits)
    tensors = [PlannedTensor(name="token embedding table", size_bytes=int(text.vocab_size * text.hidden_size * data_bits / 8))]
    if text.hidden_size_per_layer_input:
        weights = text.vocab_size_per_layer_input * text.num_hidden_layers * text.hidden_size_per_layer_input
        tensors.append(PlannedTensor(name="per-layer embedding table", size_bytes=int(weights * data_bits / 8)))
    widest = max(text.layer_intermediate_sizes or (text.intermediate_size,))
    tensors.append(PlannedTensor(name="widest MLP matrix", size_bytes=int(text.hidden_size * widest * data_bits / 8)))
    return tensors


class TransformersJsPolicy(EnginePolicy):
    """docs/research/browser-onnx.md §1: Gemma4ForConditionalGeneration runs an embed_tokens graph
    and a decoder_model_merged graph whose past_key_values inputs exist for the KV-owning layers
    only (getCacheNames), every one at the full length (the past length is read off layer 0, a
    sliding layer); the present comes back as new outputs beside the past, and Gemma 4 does not
    pin them on the GPU, so each step passes the cache through the wasm heap."""

    id = "transformers.js"
    display_name = "transformers.js (browser: ONNX Runtime Web, WebGPU / WASM)"
    short_name = "transformers.js"
    aliases = ("transformersjs", "transformers-js", "tjs", "onnxruntime-web", "ort-web", "webgpu")
    splits_kv_heads = False
    max_gpus = 1
    # Gemma4ForCausalLM on a ...ForConditionalGeneration repository sets textOnly: the vision
    # and audio encoder graphs are not downloaded (TJS models/modeling_utils.js resolveTypeConfig).
    text_only_drops_encoders = True
    kv_step_copies = 1
    duplicates_tied_head = True

    def graph_kv_cache(self, weight_format_id: str) -> str | None:
        return GRAPH_KV_CACHE.get(weight_format_id)

    def backend(self, profile: MemoryProfile) -> Backend:
        """The backend this plan runs on (backend_for with the plan's setting and browser)."""
        limits = browser_limits(profile.accelerator) if profile.accelerator else None
        return backend_for(
            profile.weight_format.id, profile.settings.browser_backend, limits is None or limits.has_webgpu
        )

    def kv_cache(
        self, layout: KvLayout, prepared: Any, settings: EngineSettings, tokens: Tokens, sequences: Tokens
    ) -> KvFigures:
        # No windowing: sliding layers keep every token like full ones.
        return kv_from_cells(layout, tokens, lambda group: tokens, sequences)

    def activations(
        self, text: TextConfig, tensor_parallel: int, settings: EngineSettings, unified_memory: bool
    ) -> ActivationModel:
        return ActivationModel(
            bytes_per_token=forward_values_per_token(text, 1) * 2,
            basis=(
                "the whole prompt in one decoder run (est., fp16 values; an fp32 graph holds twice "
                "as much), plus the past KV inputs beside the present outputs during a step (one more "
                "copy of the KV cache)"
            ),
        )

    def _heap_bytes(self, profile: MemoryProfile, tokens: Tokens) -> Tokens:
        """Bytes one step passes through the wasm heap on WebGPU: the prompt's embedding outputs
        (inputs_embeds and per_layer_inputs) beside the present KV at prefill, or the past KV
        beside the present at decode, whichever is more."""
        text = profile.model.config.text_config
        float_bytes = profile.kv_layout.bits_per_value / 8
        kv = sum(profile.kv_layout.bytes_per_token) * tokens
        embeds = (text.hidden_size + text.num_hidden_layers * text.hidden_size_per_layer_input) * float_bytes * tokens
        return kv + where(kv > embeds, kv, embeds)

    def verdict(self, profile: MemoryProfile, tokens: int, total_bytes: int) -> BrowserVerdict | None:
        """core.browser_limits' verdict on one request of `tokens` tokens; None off a browser."""
        limits = browser_limits(profile.accelerator) if profile.accelerator else None
        if limits is None:
            return None
        backend = self.backend(profile)
        if backend == "webgpu" and not limits.has_webgpu:
            return None  # not checkable: profile_refusal says why the plan does not start
        tensors = planned_tensors(profile.model, profile.weight_format.id, profile.weight_format.bits_for("token_embedding"))
        heap = int(self._heap_bytes(profile, tokens)) if backend == "webgpu" else None
        return check_browser_plan(tensors, total_bytes, limits, backend, webgpu_heap_bytes=heap)  # type: ignore[arg-type]

    def profile_refusal(self, profile: MemoryProfile) -> str | None:
        limits = browser_limits(profile.accelerator) if profile.accelerator else None
        backend = self.backend(profile)
        if limits is not None and backend == "webgpu" and not limits.has_webgpu:
            return no_webgpu_refusal(limits.name)
        static = self.verdict(profile, 1, profile.fixed_bytes)
        if profile.model.id in NO_BROWSER_EXPORT:
            reason = (
                f"no ONNX export of {profile.model.display_name} for transformers.js exists (onnx-community "
                "publishes Gemma 4 E2B and E4B only)"
            )
            if static is not None and static.reason:
                reason += f"; it would not run in this tab either: {static.reason}"
            return reason
        if static is None:
            return None
        for refusal in static.refusals:
            if refusal.tensor_name is not None:
                return f"{profile.model.display_name} does not load in {static.browser}: {refusal.message}"
        if limits is not None and backend == "wasm" and profile.weights_bytes > limits.wasm_heap_bytes:
            # On WASM every weight lives in the module's linear memory, whatever the context.
            return (
                f"{profile.model.display_name} does not load in {limits.name} on WASM: its weights are "
                f"{format_size(profile.weights_bytes)}; the WebAssembly heap holds at most "
                f"{format_limit(limits.wasm_heap_bytes)} (wasm32)"
            )
        return None

    def usable_bytes(self, profile: MemoryProfile, memory_bytes: int, driver_reserved_bytes: int) -> int:
        """The tab's memory, and on WASM no more than the heap: every sequence lives there."""
        usable = super().usable_bytes(profile, memory_bytes, driver_reserved_bytes)
        limits = browser_limits(profile.accelerator) if profile.accelerator else None
        if limits is not None and self.backend(profile) == "wasm":
            return min(usable, limits.wasm_heap_bytes)
        return usable

    def start_shortfall_bytes(self, profile: MemoryProfile, tokens: Tokens, memory_bytes: int | None) -> Tokens:
        limits = browser_limits(profile.accelerator) if profile.accelerator else None
        if limits is None:
            return 0
        if self.backend(profile) == "webgpu":
            over = self._heap_bytes(profile, tokens) - limits.wasm_heap_bytes
        else:
            from core.estimate import evaluate

            # On WASM everything the plan holds lives in the heap: weights, the cache and its step
            # copy, the prompt's activations and the runtime (the verdict's total, one sequence).
            over = evaluate(profile, tokens, 1).total_bytes - limits.wasm_heap_bytes
        return where(over > 0, over, 0)

    def start_error(self, profile: MemoryProfile, tokens: int, memory_bytes: int | None) -> str | None:
        from core.estimate import evaluate

        total = int(evaluate(profile, tokens, 1).total_bytes)
        verdict = self.verdict(profile, tokens, total)
        return None if verdict is None or verdict.runs else f"refused by the browser: {verdict.reason}"

    def report(
        self, profile: MemoryProfile, tokens: int, sequences: int, figures: KvFigures, memory_bytes: int | None
    ) -> dict[str, Any]:
        weights = {w.component: w.bytes for w in profile.weights}
        embed_file = weights.get("token_embedding", 0) + weights.get("per_layer_embedding", 0)
        encoders = weights.get("vision", 0) + weights.get("audio", 0)
        kv_bytes = int(figures.full_attention_bytes) + int(figures.sliding_attention_bytes)
        backend = self.backend(profile)
        report: dict[str, Any] = {
            "backend": backend,
            "backend_setting": profile.settings.browser_backend,
            "download_bytes": profile.files_bytes,
            "embed_tokens_file_bytes": embed_file,
            "decoder_file_bytes": profile.files_bytes - embed_file - encoders,
            "encoder_files_bytes": encoders,
            "kv_bytes_per_token": int(sum(profile.kv_layout.bytes_per_token)),
            "kv_step_copy_bytes": kv_bytes,
        }
        if backend == "webgpu":
            report["wasm_heap_step_bytes"] = int(self._heap_bytes(profile, tokens)) * sequences
        from core.estimate import evaluate

        verdict = self.verdict(profile, tokens, int(evaluate(profile, tokens, sequences).total_bytes))
        if verdict is not None:
            report["browser_runs"] = verdict.runs
            if verdict.largest_tensor is not None:
                report["largest_tensor_bytes"] = verdict.largest_tensor.size_bytes
            if verdict.reason:
                report["browser_limit"] = verdict.refusals[0].limit
                report["browser_limits_exceeded"] = [refusal.limit for refusal in verdict.refusals]
                report["browser_refusal"] = verdict.reason
        limits = browser_limits(profile.accelerator) if profile.accelerator else None
        if limits is not None and limits.limits_note and backend == "webgpu":
            report["notes"] = [f"WebGPU maxBufferSize: {limits.limits_note}"]
        return report
