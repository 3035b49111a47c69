"""Scenario inputs shared by the pages (bound to the URL), the copy-link box and download buttons."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from core.catalog import Accelerator, AcceleratorKind, Catalog, WeightFormat
from core.browser_limits import WEBGPU_DEFAULT_MAX_BUFFER_BYTES, WEBGPU_DEFAULT_MAX_STORAGE_BINDING_BYTES
from core.devices import MAX_TYPED_MEMORY_BYTES, TYPED_DEVICE_ID, TYPED_KINDS, TypedDevice, typed_accelerator
from core.engines.base import EngineSettings
from core.engines.registry import ENGINES, engine_policy
from core.estimate import IMAGE_TOKEN_BUDGETS, MemoryEstimate, MemoryRequest, PlanningError
from core.fit import FitResult
from core.runtimes import default_format, default_kv_cache, device_refusal, format_for, formats_for, runtimes_for
from ui import untrusted
from ui.glossary import explain_format, term
from ui.state import PageState, Param, boolean, choice, dump_boolean, integer, number

if TYPE_CHECKING:
    from core.launch import LaunchCommand

GpuMode = Literal["many", "one", "none"]
MAX_CONTEXT_TOKENS = 262_144
DEFAULT_GPUS = ["nvidia-h100-sxm", "nvidia-rtx-4090"]


ALL_RUNTIMES = "all"
# Runtimes that claim a share of the device's memory at start-up (--gpu-memory-utilization).
UTILIZATION_ENGINES = ("vllm", "vllm-metal")
TYPED_DEVICE_LABEL = "Your own device (type its memory)"
# The link parameters that describe a typed-in device (pages that offer one take them all).
TYPED_DEVICE_PARAMS = ("dev_mem", "dev_kind", "dev_bw", "host_gib", "dev_webgpu", "dev_max_buffer", "dev_max_binding")
# transformers.js's backend (EngineSettings.browser_backend), as the selectbox names each choice.
BROWSER_BACKENDS = {
    "auto": "auto: WebGPU where the browser has it (q8 on WASM), else WASM",
    "webgpu": "WebGPU (device: \"webgpu\")",
    "wasm": "WASM, on the CPU (device: \"wasm\")",
}


@dataclass(frozen=True)
class Scenario:
    """What the sidebar chose: models, one request template, and the GPUs to compare with."""

    models: list[str]
    request: MemoryRequest  # for models[0]; other models via with_model()
    gpus: list[str]
    gpu_count: int
    # Runtimes to answer with: the chosen one, or every one that runs on the device.
    engines: tuple[str, ...] = ()
    # A device typed in by the user: add it to the page's catalogue (Catalog.with_accelerators).
    devices: tuple[Accelerator, ...] = ()

    def with_model(self, model: str, **changes: object) -> MemoryRequest:
        return self.request.model_copy(update={"model": model, **changes})


def scenario_params(catalog: Catalog, *, many_models: bool, gpu_mode: GpuMode) -> list[Param]:
    """The scenario's link parameters. The runtime's default, "all", follows the device."""
    model_ids = [m.id for m in catalog.models]
    gpu_ids = [a.id for a in catalog.accelerators] + [TYPED_DEVICE_ID]
    settings = EngineSettings()
    engines = [ALL_RUNTIMES, *ENGINES]

    def device_id(value: str) -> str:
        return TYPED_DEVICE_ID if value.strip().lower() == TYPED_DEVICE_ID else catalog.accelerator(value).id

    def engine_id(value: str) -> str:
        return ALL_RUNTIMES if value.strip().lower() == ALL_RUNTIMES else engine_policy(value).id

    params = [
        Param(
            "models" if many_models else "model",
            list(reversed(model_ids)) if many_models else "gemma-4-31b",
            choice(model_ids, lambda v: catalog.model(v).id),
            many=many_models,
        ),
        # By default the runtime follows the device: every one that runs there (the fit page) or
        # the most usual one (the other pages).
        Param("engine", ALL_RUNTIMES, choice(engines, engine_id)),
        Param("weights", "bf16", choice([f.id for f in catalog.weight_formats], lambda v: catalog.weight_format(v).id)),
        Param("kv", "bf16", choice([k.id for k in catalog.kv_cache_types], lambda v: catalog.kv_cache_type(v).id)),
        Param("ctx", 32_768, integer(1, MAX_CONTEXT_TOKENS)),
        Param("seqs", 1, integer(1, 4096)),
        Param("images", 0, integer(0, 64)),
        Param("image_tokens", "280", choice([str(b) for b in IMAGE_TOKEN_BUDGETS]), dump=str),
        Param("audio", 0.0, number(0, 3600), dump=lambda v: f"{v:g}"),
        Param("thinking", 0, integer(0, 32_768)),
        Param("ple_host", False, boolean, dump=dump_boolean),
        Param("text_only", False, boolean, dump=dump_boolean),
        Param("ubatch", settings.n_ubatch, integer(1, 65_536)),
        Param("swa_full", False, boolean, dump=dump_boolean),
        Param("kv_unified", False, boolean, dump=dump_boolean),
        Param("gpu_util", settings.gpu_memory_utilization, number(0.05, 1.0), dump=lambda v: f"{v:g}", link_when_chosen=True),
        Param("kv_pool_gib", 0.0, number(0, 4096), dump=lambda v: f"{v:g}"),
        # 0: unset, so vLLM takes its own default for the GPU (8,192 or 2,048; core/engines/vllm.py).
        Param("batched_tokens", 0, integer(0, 1_048_576)),
        Param("block", str(settings.block_size), choice(["8", "16", "32", "64", "128"])),
        Param("async", True, boolean, dump=dump_boolean),
        Param("paged_attn", settings.paged_attention, choice(["auto", "on", "off"])),
        Param("pa_fraction", settings.pa_memory_fraction, number(0.05, 1.0), dump=lambda v: f"{v:g}"),
        Param("pa_ctx", 0, integer(0, 10_000_000)),
        Param("browser_backend", settings.browser_backend, choice(list(BROWSER_BACKENDS))),
    ]
    if gpu_mode == "many":
        params.append(Param("gpus", DEFAULT_GPUS, choice(gpu_ids, device_id), many=True))
    if gpu_mode == "one":
        params.append(Param("gpu", "nvidia-h100-sxm", choice(gpu_ids, device_id)))
    if gpu_mode != "none":
        params.append(Param("count", 1, integer(1, 64)))
        params += [
            Param("dev_mem", 16.0, number(0.25, 4096), dump=lambda v: f"{v:g}"),
            Param("dev_kind", "nvidia", choice(list(TYPED_KINDS))),
            Param("dev_bw", 0.0, number(0, 100_000), dump=lambda v: f"{v:g}"),
            Param("host_gib", 0.0, number(0, 65_536), dump=lambda v: f"{v:g}"),
            # A typed-in browser: WebGPU or not, and the adapter's limits in bytes (0: the spec's minimums).
            Param("dev_webgpu", True, boolean, dump=dump_boolean),
            Param("dev_max_buffer", 0, integer(0, MAX_TYPED_MEMORY_BYTES)),
            Param("dev_max_binding", 0, integer(0, MAX_TYPED_MEMORY_BYTES)),
        ]
    return params


def gpu_label(catalog: Catalog) -> Callable[[str], str | None]:
    """Option labels; a dict's bound get() keeps session state picklable (no lambdas)."""
    names = {a.id: f"{a.name} · {a.kind} · {a.memory_bytes / 2**30:,.1f} GiB" for a in catalog.accelerators}
    names[TYPED_DEVICE_ID] = TYPED_DEVICE_LABEL
    return names.get


def gpu_options(catalog: Catalog) -> list[str]:
    """Grouped by kind (datacenter first), then by memory, largest first."""
    order = list(get_args(AcceleratorKind))
    ranked = sorted(
        (a for a in catalog.accelerators if a.id != TYPED_DEVICE_ID), key=lambda a: (order.index(a.kind), -a.memory_bytes)
    )
    return [TYPED_DEVICE_ID, *(a.id for a in ranked)]


def scenario_sidebar(
    state: PageState,
    catalog: Catalog,
    *,
    many_models: bool | None,
    gpu_mode: GpuMode,
    show_format: bool = True,
    every_runtime: bool = False,
) -> Scenario:
    """The scenario inputs, in the sidebar, each with a tooltip. many_models: True a multiselect,
    False one select, None no model input (every variant); show_format False hides the weight
    format (pages that compare every format); every_runtime: the default runtime choice means
    every runtime that runs on the device (else the device's most usual one)."""
    key = state.key
    names = {m.id: m.display_name for m in catalog.models}
    bar = st.sidebar
    bar.header("Scenario")
    if many_models is None:
        pass
    elif many_models:
        bar.multiselect(
            "Models", list(names), format_func=names.get, key=key("models"),
            help="Gemma 4 variants to compare; every chart shows each in its own colour.",
        )
    else:
        bar.selectbox("Model", list(names), format_func=names.get, key=key("model"), help="The Gemma 4 variant to plan for.")

    # The device first: it decides which runtimes and formats exist.
    gpus: list[str] = []
    gpu_count = 1
    devices: tuple[Accelerator, ...] = ()
    if gpu_mode != "none":
        options = gpu_options(catalog)
        if gpu_mode == "many":
            bar.multiselect("Devices", options, format_func=gpu_label(catalog), key=key("gpus"), help="GPUs, Macs, boards or phones drawn as memory lines on the charts (type to search).")
            gpus = list(state.value("gpus"))
        else:
            bar.selectbox("Device", options, format_func=gpu_label(catalog), key=key("gpu"), help="Type to search: GPUs, Macs, laptops, the Raspberry Pi, phones; or pick 'Your own device' and type its memory.")
            gpus = [state.value("gpu")]
        if TYPED_DEVICE_ID in gpus:
            devices = (typed_device_inputs(state, st.sidebar),)
        bar.number_input("Device count (tensor parallel)", min_value=1, max_value=64, key=key("count"), help=f"{term('tensor parallel')} Memory adds up, and each runs its own process.")
        gpu_count = int(state.value("count"))
    device_catalog = catalog.with_accelerators(devices)
    accelerator = device_catalog.accelerator(gpus[0]) if gpus else None

    engine_options = [ALL_RUNTIMES, *ENGINES]
    running = runtimes_for(device_catalog, accelerator) if accelerator else ["transformers"]
    labels = {e: p.display_name for e, p in ENGINES.items()}
    usual = ENGINES[running[0]].short_name if running else "none"
    labels[ALL_RUNTIMES] = (
        "Every runtime that runs on this device" if every_runtime else f"The device's usual runtime ({usual})"
    )
    bar.selectbox(
        "Runtime", engine_options, format_func=labels.get, key=key("engine"),
        help=f"{term('runtime')} vLLM serves many users on datacenter GPUs; llama.cpp (llama-server) and Ollama "
        "run GGUF files anywhere, spilling to RAM when needed; MLX runs on Macs; transformers is the reference.",
    )
    choice_ = state.value("engine")
    if choice_ == ALL_RUNTIMES:
        engines = tuple(running) if every_runtime else tuple(running[:1])
        engine = running[0] if running else "transformers"
    else:
        engines = (choice_,)
        engine = choice_
        if accelerator is not None:
            refusal = device_refusal(device_catalog, engine, accelerator)
            if refusal:
                bar.caption(untrusted.markdown_literal(refusal))

    formats = formats_for(device_catalog, engine, accelerator) or formats_for(device_catalog, engine, None)
    format_ids = [f.id for f in formats]
    usual = default_format(device_catalog, engine, accelerator) if formats else None
    if not state.chosen("weights") and usual in format_ids and state.value("weights") != usual:
        # Nobody picked a format: the runtime's usual file (GGUF Q4_K_M, MLX 4-bit, bf16...).
        st.session_state[key("weights")] = usual
    elif state.value("weights") not in format_ids:
        # A picked format the runtime does not take: the same weights in its own file if any.
        mapped = format_for(device_catalog, engine, state.value("weights"), accelerator)
        fallback = mapped if mapped in format_ids else usual if usual in format_ids else format_ids[0]
        state.reject("weights", f"is not a format {engine} takes here", fallback)
    kv_types = [k for k in catalog.kv_cache_types if engine in k.engines]
    runtime_kv = default_kv_cache(engine)
    if not state.chosen("kv") and runtime_kv in [k.id for k in kv_types] and state.value("kv") != runtime_kv:
        # Nobody picked a KV cache type: the runtime's own (f16 in llama.cpp and Ollama).
        st.session_state[key("kv")] = runtime_kv
    elif state.value("kv") not in [k.id for k in kv_types]:
        default_kv = default_kv_cache(engine)
        state.reject("kv", f"is not a KV cache type {engine} offers", default_kv if default_kv in [k.id for k in kv_types] else kv_types[0].id)
    if engine in UTILIZATION_ENGINES and not state.chosen("gpu_util") and not (every_runtime and choice_ == ALL_RUNTIMES):
        # Nobody picked a share: the slider shows the runtime's own (0.92 in vLLM and vllm-metal).
        own_share = engine_policy(engine).utilization(EngineSettings())
        if state.value("gpu_util") != own_share:
            st.session_state[key("gpu_util")] = own_share
    labels = {f.id: f"{f.display_name} ({_bits_label(f)})" for f in formats}
    if show_format and not (every_runtime and choice_ == ALL_RUNTIMES):
        bar.selectbox(
            "Weight format", list(labels), format_func=labels.get, key=key("weights"),
            on_change=state.mark_chosen, args=("weights",),
            help=f"The file the runtime loads. Now: {explain_format(catalog.weight_format(state.value('weights')))} "
            "GGUF sizes are computed tensor by tensor from llama-quantize's rules; bits per weight include quantisation scales.",
        )
    bar.number_input(
        "Context tokens per sequence", min_value=1, max_value=MAX_CONTEXT_TOKENS, step=1024, key=key("ctx"),
        help=f"{term('context')} Prompt plus answer tokens one sequence holds (media and thinking tokens come on top). "
        "E2B and E4B take up to 131,072, 26B-A4B and 31B up to 262,144.",
    )
    bar.number_input(
        "Concurrent sequences", min_value=1, max_value=4096, step=1, key=key("seqs"),
        help=f"{term('concurrent sequences')}", on_change=state.mark_chosen, args=("seqs",),
    )
    with bar.expander("Images, audio, thinking"):
        st.number_input("Images per request", min_value=0, max_value=64, key=key("images"), help="Each image takes its token budget plus 2 delimiter tokens of context.")
        st.selectbox("Image token budget", [str(b) for b in IMAGE_TOKEN_BUDGETS], key=key("image_tokens"), help="Soft tokens per image (Gemma 4 default 280).")
        st.number_input("Audio seconds per request", min_value=0.0, max_value=3600.0, step=5.0, key=key("audio"), help="E2B and E4B only: 25 tokens per second, clips of up to 30 s.")
        st.number_input("Thinking tokens", min_value=0, max_value=32_768, step=500, key=key("thinking"), help="Reasoning tokens before the answer occupy the context too (up to about 4,000).")
        st.checkbox("Text only (no image or audio encoders)", key=key("text_only"), help="llama.cpp --no-mmproj; transformers' and MLX's text-only models. vLLM and Ollama load the encoders anyway.")
        st.checkbox("PLE table in host memory", key=key("ple_host"), help="E models: keep the per-layer-embedding lookup table in host RAM instead of accelerator memory (llama.cpp always does).")
    # A type the runtime offers but refuses for every Gemma 4 model (vLLM's TurboQuant, mlx-lm's
    # --kv-bits) stays listed, marked, so the refusal and its reason are one pick away.
    policy = ENGINES[engine]
    texts = [m.config.text_config for m in catalog.models]
    kv_labels = {
        k.id: f"{k.display_name} ({k.bits_per_value:.3g} bits)"
        + (" · refused for Gemma 4" if texts and all(policy.kv_cache_refusal(k.id, t) for t in texts) else "")
        for k in kv_types
    }
    # The simple view: what a stakeholder decides stays in sight; the runtime's knobs wait in here.
    with bar.expander("Runtime settings (KV cache type, batch, memory share)"):
        st.selectbox(
            "KV cache type", list(kv_labels), format_func=kv_labels.get, key=key("kv"),
            on_change=state.mark_chosen, args=("kv",),
            help="How each cached key and value is stored; 8 bits halve the conversation memory of 16. "
            f"With every runtime, one that lacks this type uses its own default. {term('KV cache')}",
        )
        if engine in ("llama.cpp", "ollama") or (every_runtime and choice_ == ALL_RUNTIMES):
            st.number_input("n_ubatch (-ub)", min_value=1, max_value=65_536, key=key("ubatch"), help=f"{term('n_ubatch')} Sizes the sliding-window cache and the compute buffer (Ollama picks its own).")
            st.checkbox("--swa-full", key=key("swa_full"), help="Give sliding layers a full-length cache (off in llama-server).")
            st.checkbox("--kv-unified", key=key("kv_unified"), help="One cache shared by all sequences (llama-server's default -np auto already shares one pool across 4 slots).")
        if engine in UTILIZATION_ENGINES or (every_runtime and choice_ == ALL_RUNTIMES):
            st.slider(
                "gpu_memory_utilization", 0.05, 1.0, step=0.01, key=key("gpu_util"), on_change=state.mark_chosen, args=("gpu_util",),
                help="Share of GPU memory vLLM claims at start-up, whatever the workload (vllm-metal: of Metal's working-set limit).",
            )
        if engine == "vllm" or (every_runtime and choice_ == ALL_RUNTIMES):
            st.number_input("kv_cache_memory_bytes (GiB, 0 = from utilisation)", min_value=0.0, max_value=4096.0, step=0.25, key=key("kv_pool_gib"), help="Set the KV pool per GPU directly instead of deriving it from utilisation.")
            st.number_input("max_num_batched_tokens (0 = vLLM's default for the GPU)", min_value=0, max_value=1_048_576, step=256, key=key("batched_tokens"), help="Tokens per scheduler step: sizes the profiling run and the sliding layers' in-flight blocks. vLLM's own default is 8,192 on a GPU of 70 GiB or more other than an A100, else 2,048 (a Mac's whole RAM counts for vllm-metal).")
            st.selectbox("block_size", ["8", "16", "32", "64", "128"], key=key("block"), help="Tokens per KV block.")
            st.checkbox("async scheduling", key=key("async"), help="Two steps in flight (recent vLLM default): doubles in-flight sliding tokens.")
        if engine == "mistral.rs" or (every_runtime and choice_ == ALL_RUNTIMES):
            st.selectbox(
                "mistral.rs --paged-attn", ["auto", "on", "off"], key=key("paged_attn"),
                help="auto: PagedAttention on CUDA (a pool of 90% of VRAM, every layer at full length), "
                "growing per-sequence caches on Metal and the CPU.",
            )
            st.slider(
                "mistral.rs --pa-memory-fraction", 0.05, 1.0, step=0.01, key=key("pa_fraction"),
                help="With PagedAttention: the pool fills this share of total VRAM less what is in use after loading.",
            )
            st.number_input(
                "mistral.rs --pa-context-len (0 = the share above)", min_value=0, max_value=10_000_000, step=1024,
                key=key("pa_ctx"),
                help="With PagedAttention: a pool of exactly this many tokens for all sequences together.",
            )
        if engine == "transformers.js" or (every_runtime and choice_ == ALL_RUNTIMES and "transformers.js" in running):
            st.selectbox(
                "transformers.js backend (device)", list(BROWSER_BACKENDS), format_func=BROWSER_BACKENDS.get,
                key=key("browser_backend"),
                help="ONNX Runtime Web's backend. WebGPU keeps the weights and cache in GPU buffers (each under the "
                "browser's maxBufferSize) and passes each step's cache through the WebAssembly heap; WASM keeps "
                "everything in that heap (4 GiB at most). transformers.js does not fall back by itself: "
                "device \"webgpu\" throws where the browser has no WebGPU.",
            )
        if engine in ("transformers", "mlx") and not (every_runtime and choice_ == ALL_RUNTIMES):
            st.caption(f"{ENGINES[engine].display_name} has no memory settings to tune here.")
        if engine == "vllm-metal" and not (every_runtime and choice_ == ALL_RUNTIMES):
            st.caption(
                "vllm-metal claims 0.92 of Metal's working-set limit by default (--gpu-memory-utilization, "
                "vLLM's own default) and plans its KV pool from what is left."
            )

    # A link may carry a pool smaller than one byte (1e-300 GiB): that is no pool, so utilisation decides.
    pool_bytes = round(float(state.value("kv_pool_gib")) * 2**30)
    if many_models is None:
        models = [m.id for m in catalog.models]
    else:
        models = list(state.value("models")) if many_models else [state.value("model")]
    request = MemoryRequest(
        model=models[0] if models else catalog.models[0].id,
        weight_format=state.value("weights"),
        kv_cache_dtype=state.value("kv"),
        engine=engine,
        context_tokens=int(state.value("ctx")),
        concurrent_sequences=int(state.value("seqs")),
        images=int(state.value("images")),
        image_tokens=int(state.value("image_tokens")),  # type: ignore[arg-type]
        audio_seconds=float(state.value("audio")),
        thinking_tokens=int(state.value("thinking")),
        ple_on_host=bool(state.value("ple_host")),
        text_only=bool(state.value("text_only")),
        gpu=gpus[0] if gpus else None,
        gpus=gpu_count,
        engine_settings=EngineSettings(
            n_ubatch=int(state.value("ubatch")),
            swa_full=bool(state.value("swa_full")),
            kv_unified=bool(state.value("kv_unified")),
            # Unless the user set it, the setting stays unset so that each runtime takes its own
            # default (vllm-metal: 0.92, core/engines/vllm_metal.py); a chosen 0.9 is 0.9 everywhere.
            **({"gpu_memory_utilization": float(state.value("gpu_util"))} if state.chosen("gpu_util") else {}),
            kv_cache_memory_bytes=pool_bytes if pool_bytes > 0 else None,
            max_num_batched_tokens=int(state.value("batched_tokens")) or None,
            block_size=int(state.value("block")),  # type: ignore[arg-type]
            async_scheduling=bool(state.value("async")),
            paged_attention=state.value("paged_attn"),
            pa_memory_fraction=float(state.value("pa_fraction")),
            pa_context_tokens=int(state.value("pa_ctx")) or None,
            browser_backend=state.value("browser_backend"),
        ),
    )
    return Scenario(models=models, request=request, gpus=gpus, gpu_count=gpu_count, engines=engines, devices=devices)


def typed_device_inputs(state: PageState, where: DeltaGenerator) -> Accelerator:
    """Memory, kind, bandwidth and host RAM of a device the user types in (all in the link)."""
    key = state.key
    with where.container(border=True):
        st.number_input("Memory (GiB)", min_value=0.25, max_value=4096.0, step=1.0, key=key("dev_mem"), help="GPU memory; for a Mac, a phone or a PC without a GPU, its RAM.")
        st.selectbox("Kind", list(TYPED_KINDS), key=key("dev_kind"), help="Decides which runtimes run there and how much memory the system keeps (a Mac's GPU may use 2/3 to 3/4 of its RAM).")
        st.number_input("Memory bandwidth (GB/s, 0 = unknown)", min_value=0.0, max_value=100_000.0, step=10.0, key=key("dev_bw"), help="For the speed estimate only.")
        st.number_input("Host RAM for offload (GiB, 0 = assume)", min_value=0.0, max_value=65_536.0, step=8.0, key=key("host_gib"), help="System memory a runtime may spill weights into when the GPU is full (assumed 32 GiB for a desktop).")
        if state.value("dev_kind") == "browser":
            browser_limit_inputs(state)
    bandwidth = float(state.value("dev_bw"))
    host = float(state.value("host_gib"))
    buffer, binding = int(state.value("dev_max_buffer")), int(state.value("dev_max_binding"))
    return typed_accelerator(
        TypedDevice(
            memory_bytes=max(1, round(float(state.value("dev_mem")) * 2**30)),
            kind=state.value("dev_kind"),
            bandwidth_gbs=bandwidth if bandwidth > 0 else None,
            host_memory_bytes=round(host * 2**30) if host > 0 else None,
            webgpu=bool(state.value("dev_webgpu")),
            webgpu_max_buffer_bytes=buffer or None,
            webgpu_max_binding_bytes=binding or None,
        )
    )


def browser_limit_inputs(state: PageState) -> None:
    """A typed-in browser's WebGPU: whether it has any, and its adapter's two buffer limits."""
    key = state.key
    st.checkbox(
        "WebGPU (navigator.gpu exists)", key=key("dev_webgpu"),
        help="Off for a browser without WebGPU (Safari before 26; Firefox and Chrome on Linux without a flag, as of late 2025): transformers.js then runs on WASM only.",
    )
    if not state.value("dev_webgpu"):
        return
    console = "(await navigator.gpu.requestAdapter()).limits"
    st.number_input(
        f"maxBufferSize (bytes, 0 = the spec's minimum, {WEBGPU_DEFAULT_MAX_BUFFER_BYTES:,})",
        min_value=0, max_value=MAX_TYPED_MEMORY_BYTES, step=2**20, key=key("dev_max_buffer"),
        help=f"The largest WebGPU buffer. Every adapter offers at least the spec's 256 MiB; yours likely more: "
        f"{console}.maxBufferSize in the browser's console prints it.",
    )
    st.number_input(
        f"maxStorageBufferBindingSize (bytes, 0 = the spec's minimum, {WEBGPU_DEFAULT_MAX_STORAGE_BINDING_BYTES:,})",
        min_value=0, max_value=MAX_TYPED_MEMORY_BYTES, step=2**20, key=key("dev_max_binding"),
        help=f"The largest storage binding one shader sees (ONNX Runtime's WebGPU backend splits larger inputs): "
        f"{console}.maxStorageBufferBindingSize.",
    )
    if not int(state.value("dev_max_buffer")):
        st.caption(
            "WebGPU limits: the spec's guaranteed minimums, not your adapter's. Type the figures "
            f"{console} prints in the browser's console."
        )


def _bits_label(weight_format: WeightFormat) -> str:
    experts = weight_format.bits_for("experts")
    if experts == weight_format.linear_bits:
        return f"{weight_format.linear_bits:g} bits"
    return f"{experts:g}-bit experts, {weight_format.linear_bits:g}-bit rest"


# What every chart exported from this run is stamped with: the page's scenario line and link.
EXPORT_SCENARIO_KEY = "_export_scenario"
EXPORT_LINK_KEY = "_export_link"


def page_header(title: str, state: PageState, caption: str) -> None:
    """Title with the copy-link box beside it, a caption, and any link-parameter notices."""
    st.session_state[EXPORT_SCENARIO_KEY] = caption
    st.session_state[EXPORT_LINK_KEY] = state.link()
    heading, link = st.columns([5, 1], vertical_alignment="bottom")
    heading.title(title)
    with link:
        copy_link(state)
    st.caption(caption)
    state.show_notices()


def copy_link(state: PageState) -> None:
    """The page's shareable link, in a box with a copy button."""
    with st.popover("Copy link", icon=":material/link:", help="A link that reopens exactly this view"):
        st.code(state.link() or "?", language=None, wrap_lines=True)
        st.caption("Everything chosen on this page travels in the link.")


def download_table(frame: pd.DataFrame, file_stem: str, key: str) -> None:
    from ui.export import table_csv

    st.download_button(
        "CSV", data=lambda: table_csv(frame), file_name=f"{file_stem}.csv", mime="text/csv",
        key=key, icon=":material/download:", on_click="ignore", help="The table as CSV (formula-like cells neutralised)",
    )


def download_figure(fig: object, file_stem: str, key: str) -> None:
    """PNG, SVG (through the warm Chromium) and offline HTML downloads for one chart, each
    stamped with the page's scenario, the date and the link that reopens it."""
    from datetime import datetime, timezone

    from ui.export import export_available, export_stamp, figure_html, figure_png, figure_svg

    stamp = export_stamp(
        str(st.session_state.get(EXPORT_SCENARIO_KEY, "")), str(st.session_state.get(EXPORT_LINK_KEY, "")),
        datetime.now(timezone.utc).strftime("%Y-%m-%d"),
    )
    available, reason = export_available()
    # A wrapping row sized by its buttons: fixed columns cut the labels to "P", "S", "H" at 800 px.
    row = st.container(horizontal=True, gap="small")
    with row:
        st.download_button(
            "PNG", data=lambda: figure_png(fig, stamp=stamp), file_name=f"{file_stem}.png", mime="image/png",
            key=f"{key}_png", disabled=not available, icon=":material/image:", on_click="ignore",
            help=reason if not available else "The chart as a PNG image (1200 x 650, 2x scale)",
        )
        st.download_button(
            "SVG", data=lambda: figure_svg(fig, stamp=stamp), file_name=f"{file_stem}.svg", mime="image/svg+xml",
            key=f"{key}_svg", disabled=not available, icon=":material/draw:", on_click="ignore",
            help=reason if not available else "The chart as a scalable SVG",
        )
        st.download_button(
            "HTML", data=lambda: figure_html(fig, stamp), file_name=f"{file_stem}.html", mime="text/html",
            key=f"{key}_html", icon=":material/code:", on_click="ignore",
            help="An interactive, self-contained HTML file that works offline",
        )
    if not available:
        st.caption(reason)


def launch_or_reason(
    request: MemoryRequest, result: MemoryEstimate, catalog: Catalog, fit: FitResult | None
) -> LaunchCommand | str:
    """The plan's launch command, or the one line saying why its runtime cannot start it."""
    from core.launch import launch_command

    try:
        return launch_command(request, result, catalog, fit)
    except PlanningError as error:
        return str(error)


def show_launch(launch: LaunchCommand | str) -> None:
    """A launch command with a copy button and why each flag is there, or why there is none."""
    if isinstance(launch, str):
        untrusted.info(f"No launch command: {launch}")
        return
    st.code(launch.command, language=launch.language, wrap_lines=True)
    with st.expander("Why these flags"):
        # Notes can name an imported model: plain text, never Markdown.
        st.text("\n".join(launch.notes))


def launch_box(request: MemoryRequest, result: MemoryEstimate, catalog: Catalog, fit: FitResult | None) -> None:
    """The command that starts the plan, with a copy button, and why each flag is there."""
    show_launch(launch_or_reason(request, result, catalog, fit))
