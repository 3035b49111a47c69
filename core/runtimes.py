"""Which runtimes run on which device, with which weight formats: the one place that decides."""

from __future__ import annotations

from core.catalog import ENGINE_IDS, Accelerator, Catalog, RuntimeSupport, WeightFormat
from core.engines.registry import engine_policy

# Without a device, a runtime is offered the format people download for it.
DEFAULT_FORMATS = {
    "transformers": "bf16",
    "vllm": "bf16",
    "llama.cpp": "gguf-q4_k_m",
    "ollama": "ollama-q4_k_m",
    "mlx": "mlx-4bit",
    "litert-lm": "litertlm",
    "vllm-metal": "mlx-4bit",
    "transformers.js": "onnx-q4f16",
    "onnxruntime-genai": "onnx-q4f16",
    # `mistralrs serve -m google/gemma-4-E4B-it` (mistral.rs README@9e92262): the bf16 checkpoint.
    "mistral.rs": "bf16",
}
# llama.cpp's -ctk/-ctv default and Ollama's OLLAMA_KV_CACHE_TYPE default are f16, and LiteRT-LM's
# GPU path computes in fp16 (docs/research/litert-lm.md); the others
# cache in the model's dtype (bf16).
# ONNX graphs fix their own cache type (fp16 graphs for the default q4f16 formats; an fp32
# graph's request is turned into fp32 by core.estimate).
DEFAULT_KV_CACHE = {
    "llama.cpp": "fp16", "ollama": "fp16", "litert-lm": "fp16", "transformers.js": "fp16", "onnxruntime-genai": "fp16"
}
# The same weights in another runtime's file format: `bf16` on llama.cpp is the GGUF BF16 file.
EQUIVALENT_FORMATS = {
    ("llama.cpp", "bf16"): "gguf-bf16",
    ("ollama", "bf16"): "ollama-bf16",
    ("ollama", "gguf-bf16"): "ollama-bf16",
    ("ollama", "gguf-q4_k_m"): "ollama-q4_k_m",
    ("ollama", "gguf-q8_0"): "ollama-q8_0",
    ("llama.cpp", "ollama-bf16"): "gguf-bf16",
    ("llama.cpp", "ollama-q4_k_m"): "gguf-q4_k_m",
    ("llama.cpp", "ollama-q8_0"): "gguf-q8_0",
    ("mlx", "gguf-bf16"): "bf16",
    ("vllm", "gguf-bf16"): "bf16",
    ("transformers", "gguf-bf16"): "bf16",
    ("vllm-metal", "gguf-bf16"): "bf16",
    ("mistral.rs", "gguf-bf16"): "bf16",
}


def default_kv_cache(engine: str) -> str:
    """The KV cache type a runtime uses when none is named."""
    return DEFAULT_KV_CACHE.get(engine, "bf16")


def support_row(catalog: Catalog, engine: str, accelerator: Accelerator) -> RuntimeSupport | None:
    """The row that decides `engine` on this device: its architecture's row, else its platform's."""
    rows = [r for r in catalog.runtime_support if r.engine == engine and r.platform == accelerator.platform]
    specific = [r for r in rows if r.architecture == accelerator.architecture]
    general = [r for r in rows if r.architecture is None]
    return (specific or general or [None])[0]


def runtimes_for(catalog: Catalog, accelerator: Accelerator) -> list[str]:
    """Runtimes that run on the device, most usual first (the table's rank)."""
    rows = [support_row(catalog, engine, accelerator) for engine in ENGINE_IDS]
    running = [r for r in rows if r is not None and r.runs]
    return [r.engine for r in sorted(running, key=lambda r: (r.rank or 0, ENGINE_IDS.index(r.engine)))]


def device_refusal(catalog: Catalog, engine: str, accelerator: Accelerator) -> str | None:
    """Why `engine` does not run on the device; None when it does."""
    row = support_row(catalog, engine, accelerator)
    name = engine_policy(engine).id
    if row is None:
        return f"{name} on {accelerator.platform} devices is not in the runtime table"
    if not row.runs:
        return f"{name} does not run on {accelerator.name}: {row.reason}"
    return None


def format_refusal(
    catalog: Catalog, engine: str, weight_format: WeightFormat, accelerator: Accelerator | None
) -> str | None:
    """Why the runtime cannot use this format (on this device); None when it can."""
    if engine not in weight_format.engines:
        return (
            f"{engine} does not load {weight_format.id} weights "
            f"({weight_format.id} runs on {', '.join(weight_format.engines)})"
        )
    if accelerator is None:
        return None
    row = support_row(catalog, engine, accelerator)
    if row is not None and row.formats and weight_format.id not in row.formats:
        return (
            f"{engine} on {accelerator.name} does not take {weight_format.id} weights "
            f"(there it takes {', '.join(row.formats)}): {row.reason}"
        )
    if weight_format.architectures and accelerator.architecture not in weight_format.architectures:
        return (
            f"{weight_format.display_name} needs a {' or '.join(weight_format.architectures)} GPU; "
            f"{accelerator.name} is {accelerator.architecture}"
        )
    return None


def refusal(
    catalog: Catalog, engine: str, weight_format: WeightFormat, accelerator: Accelerator | None
) -> str | None:
    """The first reason this runtime, format and device cannot go together; None when they can.
    Every page and the command line refuse through here, with the same words."""
    if accelerator is not None:
        reason = device_refusal(catalog, engine, accelerator)
        if reason:
            return reason
    return format_refusal(catalog, engine, weight_format, accelerator)


def formats_for(catalog: Catalog, engine: str, accelerator: Accelerator | None) -> list[WeightFormat]:
    """Weight formats the runtime can use on the device, in catalogue order."""
    return [f for f in catalog.weight_formats if format_refusal(catalog, engine, f, accelerator) is None]


def default_format(catalog: Catalog, engine: str, accelerator: Accelerator | None) -> str:
    """The format a runtime is used with when none is named: the file people download for it."""
    if accelerator is not None:
        row = support_row(catalog, engine, accelerator)
        if row is not None and row.default_format:
            return row.default_format
    wanted = DEFAULT_FORMATS.get(engine)
    offered = formats_for(catalog, engine, accelerator)
    if wanted and any(f.id == wanted for f in offered):
        return wanted
    if not offered:
        raise ValueError(f"{engine} takes no weight format here")
    return offered[0].id


def format_for(catalog: Catalog, engine: str, format_id: str, accelerator: Accelerator | None) -> str:
    """`format_id` as this runtime stores it: itself when the runtime takes it, else the same
    weights in the runtime's own file format (bf16 -> GGUF BF16 on llama.cpp), else unchanged
    (so that the refusal names the format the user asked for)."""
    weight_format = catalog.weight_format(format_id)
    if format_refusal(catalog, engine, weight_format, accelerator) is None:
        return weight_format.id
    equivalent = EQUIVALENT_FORMATS.get((engine, weight_format.id))
    if equivalent and format_refusal(catalog, engine, catalog.weight_format(equivalent), accelerator) is None:
        return equivalent
    return weight_format.id
