"""transformers.js in a browser tab (ONNX Runtime Web, WebGPU or WASM): every KV-owning layer at full length, copied each step."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.architecture import TextConfig
from core.browser_limits import (
    WASM32_MAX_HEAP_BYTES,
    BrowserLimits,
    BrowserVerdict,
    PlannedTensor,
    check_browser_plan,
)
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
# transformers.js's default dtype on the wasm device is q8 (DEFAULT_DEVICE_DTYPE_MAPPING); the
# planner runs the other dtypes on WebGPU, as every public Gemma 4 demo does.
WASM_FORMATS = frozenset({"onnx-q8"})
# The onnx-community collection holds E2B and E4B exports only (docs/research/browser-onnx.md §1.6).
NO_BROWSER_EXPORT = frozenset({"gemma-4-26b-a4b", "gemma-4-31b"})
# Prompt activations in the graph's float type; the whole prompt goes through one run.
GRAPH_FLOAT_BYTES = {"fp32": 4, "fp16": 2}


def backend_for(weight_format_id: str) -> str:
    """The ONNX Runtime Web backend a plan runs on: WASM for q8 (its default there), else WebGPU."""
    return "wasm" if weight_format_id in WASM_FORMATS else "webgpu"


def browser_limits(accelerator: Accelerator) -> BrowserLimits | None:
    """The device's browser limits (gpus.csv columns), or None for a device that is not a browser."""
    if accelerator.kind != "browser":
        return None
    return BrowserLimits(
        name=accelerator.name,
        # A typed-in browser names no WebGPU limits: left unchecked rather than guessed.
        max_buffer_bytes=accelerator.webgpu_max_buffer_bytes or 2**62,
        max_storage_binding_bytes=accelerator.webgpu_max_binding_bytes or 2**62,
        wasm_heap_bytes=accelerator.wasm_heap_bytes or WASM32_MAX_HEAP_BYTES,
        tab_memory_bytes=accelerator.memory_bytes,
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
        backend = backend_for(profile.weight_format.id)
        tensors = planned_tensors(profile.model, profile.weight_format.id, profile.weight_format.bits_for("token_embedding"))
        heap = int(self._heap_bytes(profile, tokens)) if backend == "webgpu" else None
        return check_browser_plan(tensors, total_bytes, limits, backend, webgpu_heap_bytes=heap)  # type: ignore[arg-type]

    def profile_refusal(self, profile: MemoryProfile) -> str | None:
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
        return None

    def start_shortfall_bytes(self, profile: MemoryProfile, tokens: Tokens, memory_bytes: int | None) -> Tokens:
        limits = browser_limits(profile.accelerator) if profile.accelerator else None
        if limits is None:
            return 0
        if backend_for(profile.weight_format.id) == "webgpu":
            over = self._heap_bytes(profile, tokens) - limits.wasm_heap_bytes
        else:
            # On WASM the weights, the cache and its step copy all live in the heap.
            kv = sum(profile.kv_layout.bytes_per_token) * tokens
            over = profile.fixed_bytes + 2 * kv - limits.wasm_heap_bytes
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
        backend = backend_for(profile.weight_format.id)
        report: dict[str, Any] = {
            "backend": backend,
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
        return report
