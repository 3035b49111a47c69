"""What every engine policy answers: KV cells it allocates, working memory, overhead, usable memory."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field

from core.architecture import TextConfig, decoder_layers
from core.kv_cache import TENSORS_PER_LAYER, KvLayerGroup

if TYPE_CHECKING:
    # numpy is imported where arrays are made (core.sweep): the scalar path and the command line
    # never load it, which saves them about 40 ms of start-up.
    import numpy as np

    from core.catalog import Accelerator, ModelSpec
    from core.estimate import MemoryProfile

# Formulas take plain ints (the scalar estimate) or numpy arrays (the sweep) alike.
Tokens: TypeAlias = "int | np.ndarray"

# Activations run in the compute dtype (bf16) whatever the weight format.
ACTIVATION_BYTES = 2
# Tensors of hidden width alive across a layer: the residual stream, its normed copy, and the
# attention/MLP branch output before it is added back.
HIDDEN_WIDTH_TENSORS = 3
LOGIT_BYTES = 4  # logits are upcast to fp32 before sampling


def minimum(a: Tokens, b: Tokens) -> Tokens:
    """min() for ints, np.minimum for arrays, so one formula serves both paths."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return min(a, b)
    import numpy as np  # an array was passed, so numpy is loaded already: this is a look-up

    return np.minimum(a, b)


def where(condition: Any, a: Tokens, b: Tokens) -> Tokens:
    """`a if condition else b` for ints, np.where for arrays."""
    if isinstance(condition, bool):
        return a if condition else b
    import numpy as np  # an array was passed, so numpy is loaded already

    return np.where(condition, a, b)


def ceil_div(a: Tokens, b: Tokens) -> Tokens:
    """Integer ceiling division for ints and integer arrays."""
    return -(-a // b)


def pad(a: Tokens, multiple: int) -> Tokens:
    """Round up to a multiple (GGML_PAD)."""
    return ceil_div(a, multiple) * multiple


class EngineSettings(BaseModel):
    """Engine-specific knobs; each engine reads its own and ignores the rest."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # llama.cpp
    n_ubatch: int = Field(default=512, gt=0, le=65_536, description="llama.cpp --ubatch-size")
    kv_unified: bool = Field(default=False, description="llama.cpp --kv-unified: one cache for all sequences")
    auto_slots: bool = Field(
        default=True,
        description="llama-server's default -np auto: 4 slots sharing one unified KV pool of -c cells "
        "(up to 4 sequences); false: -np = the sequences, each with its own cache",
    )
    flash_attention: bool = Field(
        default=True,
        description="llama.cpp -fa: its default 'auto' resolves on for Gemma 4 on CUDA, Metal, ROCm and "
        "Vulkan (docs/research/runtime-rules.md A3); off pads every V cache to the widest layer's",
    )
    fit_target_mib: int = Field(
        default=1024, ge=0, le=2**20, description="llama-server --fit-target: MiB left free on each device"
    )
    swa_full: bool = Field(default=False, description="llama.cpp --swa-full: sliding layers get the full context")
    # vLLM
    # vLLM's own default: CacheConfig.gpu_memory_utilization = Field(default=0.92) in
    # vllm/config/cache.py @002f10e0 (0.9 in older releases, e.g. v0.6.4's engine-args docs;
    # vllm-metal's cache_policy.py quotes 0.92 for vLLM 0.27.1). The launch command always
    # writes the value, so a plan and the server it starts agree whatever the version.
    gpu_memory_utilization: float = Field(default=0.92, gt=0, le=1, allow_inf_nan=False)
    kv_cache_memory_bytes: int | None = Field(default=None, gt=0, le=2**50)
    # None: vLLM's own default for the device (VllmPolicy.device_settings fills it in before any
    # formula reads it): 8,192 tokens and 1,024 sequences on a GPU of >= 70 GiB that is not an
    # A100, else 2,048 and 256 (`vllm serve`, vllm/engine/arg_utils.py get_batch_defaults).
    max_num_batched_tokens: int | None = Field(
        default=None, gt=0, le=10**7, description="vLLM --max-num-batched-tokens; None: vLLM's default for the device"
    )
    max_num_seqs: int | None = Field(
        default=None, gt=0, le=10**6, description="vLLM --max-num-seqs; None: vLLM's default for the device"
    )
    block_size: Literal[8, 16, 32, 64, 128] = 16
    async_scheduling: bool = True
    disable_hybrid_kv_cache_manager: bool = Field(
        default=False, description="vLLM: sliding layers then keep the whole context, like full layers"
    )
    # ONNX Runtime GenAI
    execution_provider: Literal["auto", "cuda", "cpu", "dml", "webgpu"] = Field(
        default="auto",
        description="ONNX Runtime GenAI's execution provider (-e): only CUDA and CPU window the sliding "
        "layers' cache; auto: CUDA on an NVIDIA GPU, else the CPU",
    )
    # mistral.rs (EricLBuehler/mistral.rs @9e92262; docs/research/mistralrs-vllm-metal.md §1)
    mistralrs_device: Literal["auto", "cuda", "metal", "cpu"] = Field(
        default="auto", description="the device mistral.rs runs on; auto: CUDA on NVIDIA, Metal on Apple, else the CPU"
    )
    paged_attention: Literal["auto", "on", "off"] = Field(
        default="auto", description="mistral.rs --paged-attn: auto is on for CUDA, off on Metal and the CPU"
    )
    pa_memory_fraction: float = Field(
        default=0.9,
        gt=0,
        le=1,
        allow_inf_nan=False,
        description="mistral.rs --pa-memory-fraction: the PagedAttention pool fills this share of total VRAM "
        "less what is in use after loading (MemoryGpuConfig::Utilization(0.9) when no --pa-* flag is given)",
    )
    pa_context_tokens: int | None = Field(
        default=None,
        gt=0,
        le=10**8,
        description="mistral.rs --pa-context-len: a PagedAttention pool of exactly this many tokens (all "
        "sequences together) instead of a share of VRAM (MemoryGpuConfig::ContextSize)",
    )
    # transformers.js
    browser_backend: Literal["auto", "webgpu", "wasm"] = Field(
        default="auto",
        description="transformers.js's device option (ONNX Runtime Web's backend); auto: WebGPU where the "
        "browser has it, except q8 (transformers.js's dtype for wasm), and WASM where it has none",
    )


@dataclass(frozen=True)
class KvFigures:
    """KV cache of S sequences of T tokens: bytes (all ranks) and tokens/cells per layer."""

    full_attention_bytes: Tokens
    sliding_attention_bytes: Tokens
    full_attention_tokens: Tokens
    sliding_attention_tokens: Tokens


@dataclass(frozen=True)
class KvLayout:
    """The cache-owning layer groups, each with its bytes per token summed over ranks."""

    groups: tuple[KvLayerGroup, ...]
    bytes_per_token: tuple[float, ...]
    kv_cache_id: str
    bits_per_value: float
    tensor_parallel: int
    # Layers that read another layer's cache (Gemma 4 E2B/E4B KV sharing): they own none.
    shared_layers: int = 0
    # Those layers grouped by the shape a cache of their own would have, with bytes per token:
    # only an engine that caches every layer anyway (mistral.rs's PagedAttention) reads them.
    shared_groups: tuple[KvLayerGroup, ...] = ()
    shared_bytes_per_token: tuple[float, ...] = ()


def kv_from_cells(
    layout: KvLayout, full_cells: Tokens, sliding_cells: Callable[[KvLayerGroup], Tokens], copies: Tokens
) -> KvFigures:
    """KV figures for engines that keep `full_cells` tokens in every full layer and
    `sliding_cells(group)` in each sliding group, `copies` times (sequences or cache streams)."""
    full_bytes: Tokens = 0
    sliding_bytes: Tokens = 0
    sliding_tokens: Tokens = 0
    for group, bytes_per_token in zip(layout.groups, layout.bytes_per_token):
        if group.window_tokens is None:
            full_bytes = full_bytes + bytes_per_token * full_cells * copies
        else:
            sliding_tokens = sliding_cells(group)
            sliding_bytes = sliding_bytes + bytes_per_token * sliding_tokens * copies
    return KvFigures(full_bytes, sliding_bytes, full_cells, sliding_tokens)


def windowed_kv(layout: KvLayout, cells: Tokens, copies: Tokens) -> KvFigures:
    """`cells` tokens in every full layer and at most the window in each sliding layer (engines
    whose sliding caches rotate over exactly W tokens: MLX, LiteRT-LM)."""
    return kv_from_cells(layout, cells, lambda group: minimum(cells, group.window_tokens or 0), copies)


class ActivationModel(BaseModel):
    """Working memory: fixed, plus per sequence, plus per token of every sequence."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fixed_bytes: float = Field(default=0, ge=0)
    bytes_per_sequence: float = Field(default=0, ge=0)
    bytes_per_token: float = Field(default=0, ge=0)
    basis: str


def prefill_chunk_activations(text: TextConfig, chunk_tokens: int, activation_bytes: int, basis: str) -> ActivationModel:
    """Working memory of engines that prefill in chunks of `chunk_tokens` on one device: the
    largest layer's activations for one chunk, plus fp32 logits per sequence for the sampler."""
    return ActivationModel(
        fixed_bytes=chunk_tokens * forward_values_per_token(text, 1) * activation_bytes,
        bytes_per_sequence=text.vocab_size * LOGIT_BYTES,
        basis=basis,
    )


@lru_cache(maxsize=256)
def forward_values_per_token(text: TextConfig, tensor_parallel: int) -> int:
    """Activation values one token keeps alive at the peak of a forward pass, summed over ranks:
    hidden-width tensors (replicated on every rank), E-model per-layer inputs (all layers are
    materialised at once), and the largest layer's q/k/v/attention output or MLP intermediates
    (split across ranks). K and V count at full length: during prefill a sliding layer holds
    them for every token before the cache keeps its window."""
    replicated = HIDDEN_WIDTH_TENSORS * text.hidden_size
    replicated += text.num_hidden_layers * text.hidden_size_per_layer_input
    largest_layer = 0
    for layer in decoder_layers(text):
        query = layer.num_query_heads * layer.head_dim
        key_value = TENSORS_PER_LAYER * layer.num_kv_heads * layer.head_dim
        attention = 2 * query + key_value
        mlp = 3 * (layer.mlp_width + text.shared_expert_intermediate_size * layer.has_experts)
        if layer.has_experts:
            # Each routed expert: gate, up, their product, and its hidden-width output, all
            # alive until the weighted sum merges the top-k outputs.
            expert = 3 * (text.moe_intermediate_size or 0) + text.hidden_size
            mlp += (text.top_k_experts or 0) * expert
        largest_layer = max(largest_layer, attention, mlp)
    return tensor_parallel * replicated + largest_layer


class EnginePolicy(ABC):
    """One serving engine's memory policy."""

    id: str
    display_name: str
    short_name: str  # in sentences: "with vLLM"
    aliases: tuple[str, ...] = ()
    # Tensor parallelism splits kv heads across ranks (vLLM, transformers); llama.cpp splits by
    # layer instead, so its cache is not replicated.
    splits_kv_heads: bool = True
    max_gpus: int | None = None
    # How the runtime runs a model larger than its GPUs (core.offload); None: it does not.
    offload_method: str | None = None
    # A text-only deployment leaves the vision/audio encoders on disk (llama.cpp --no-mmproj,
    # transformers' and mlx-lm's text model classes); vLLM and Ollama load them regardless.
    text_only_drops_encoders: bool = True
    # False: the runtime serves this model as text only (vllm-metal loads Gemma 4 through mlx-lm),
    # so the encoders are never loaded and a request with images or audio is refused.
    serves_media: bool = True
    # llama.cpp keeps input-layer tables (token embedding, PLE) in host memory whatever -ngl says.
    input_tables_on_host: bool = False
    # Copies of the KV cache alive beside the cache while a step runs (an ONNX graph that takes
    # the past as inputs and returns the present as new outputs); counted with activations.
    kv_step_copies: int = 0
    # ONNX exports hold a tied embedding twice, both loaded: the embedding graph's table and the
    # decoder graph's output head.
    duplicates_tied_head: bool = False
    # The runtime quantises a checkpoint while loading it (mistral.rs ISQ): its formats are sized
    # tensor by tensor by core.isq, and tensors it leaves alone take the load dtype.
    quantises_on_load: bool = False

    def mapped_table_bytes(self, published_file_id: str) -> int | None:
        """Bytes of a published file's per-layer-embedding table as its publisher states them
        (the table the runtime memory-maps); None: unstated, shared out like any other tensor."""
        return None

    def load_dtype_bytes(self, settings: EngineSettings) -> int:
        """Bytes per weight of the tensors a load-time quantiser leaves unquantised (norms,
        router, encoders): the checkpoint's bf16 unless the runtime upcasts."""
        return 2

    def graph_kv_cache(self, weight_format_id: str) -> str | None:
        """The KV cache type the runtime's exported graph fixes for this weight format (the
        graph's own float type); None: the cache type the request names."""
        return None

    def device_settings(self, settings: EngineSettings, accelerator: Accelerator | None) -> EngineSettings:
        """Settings the runtime derives from the device (ONNX Runtime GenAI's execution provider)."""
        return settings

    def profile_refusal(self, profile: MemoryProfile) -> str | None:
        """Why this runtime cannot run the profile's model and format on its device whatever the
        context (no export of the model, a tensor over a browser's buffer limit); None when it can."""
        return None

    def kv_cache_refusal(self, kv_cache_id: str, text: TextConfig) -> str | None:
        """Why this engine cannot keep a `kv_cache_id` cache for this model; None when it can."""
        return None

    def kv_group_bytes_per_token(
        self, text: TextConfig, groups: tuple[KvLayerGroup, ...], kv_cache_id: str, tensor_parallel: int
    ) -> tuple[float, ...] | None:
        """Bytes per token of each cache group where the KV type does not store every layer at
        one bit width (TurboQuant); None: every layer keeps bits_per_value bits per value."""
        return None

    def prepare(self, layout: KvLayout, window_tokens: int | None, settings: EngineSettings) -> Any:
        """Static, engine-specific layout computed once per profile (vLLM's pages and groups)."""
        return None

    @abstractmethod
    def kv_cache(
        self, layout: KvLayout, prepared: Any, settings: EngineSettings, tokens: Tokens, sequences: Tokens
    ) -> KvFigures:
        """The cache this engine allocates for `sequences` sequences of `tokens` tokens."""

    @abstractmethod
    def activations(
        self, text: TextConfig, tensor_parallel: int, settings: EngineSettings, unified_memory: bool
    ) -> ActivationModel:
        """Peak working memory on the accelerator(s), summed over ranks. `unified_memory` is
        true where host and accelerator share memory (Apple, CPU, edge, mobile)."""

    def caches_every_layer(self, settings: EngineSettings) -> bool:
        """True where KV-shared layers hold a cache of their own anyway (mistral.rs's
        PagedAttention pool), so the breakdown counts them with their attention type."""
        return False

    def model_activations(
        self, model: ModelSpec, tensor_parallel: int, settings: EngineSettings, unified_memory: bool
    ) -> ActivationModel:
        """activations() for engines whose working memory also depends on the model's encoders
        (mistral.rs reserves room for an image's and a clip's tokens); most need the text alone."""
        return self.activations(model.config.text_config, tensor_parallel, settings, unified_memory)

    def overhead_bytes(self, process_overhead_bytes: int, gpus: int, settings: EngineSettings) -> int:
        """Runtime memory outside tensors, all processes together (one per GPU)."""
        return gpus * process_overhead_bytes

    def usable_bytes(self, profile: MemoryProfile, memory_bytes: int, driver_reserved_bytes: int) -> int:
        """Memory this engine may use on the profile's GPUs: what the driver offers."""
        return profile.gpus * (memory_bytes - driver_reserved_bytes)

    def start_shortfall_bytes(self, profile: MemoryProfile, tokens: Tokens, memory_bytes: int | None) -> Tokens:
        """Bytes (all GPUs together) that an engine which sizes its KV cache at start-up lacks
        to hold one request of `tokens` tokens, so that it refuses to start; 0 where it starts.
        Engines that grow their cache as they go start whatever the memory: the fit's total
        catches them running out later."""
        return 0

    def start_error(self, profile: MemoryProfile, tokens: int, memory_bytes: int | None) -> str | None:
        """What the engine prints when it refuses to start for want of KV cache memory; None
        when it starts (start_shortfall_bytes is 0)."""
        return None

    def report(
        self, profile: MemoryProfile, tokens: int, sequences: int, figures: KvFigures, memory_bytes: int | None
    ) -> dict[str, Any]:
        """Engine-specific start-up figures, as the engine logs them; none of them negative."""
        return {}
