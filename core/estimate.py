"""Request -> memory breakdown (weights, KV cache, activations, overhead) and the naive view."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.architecture import FULL, GEMMA4_TEXT, SiglipVisionConfig
from core.catalog import (
    Accelerator,
    Catalog,
    KvCacheType,
    ModelSpec,
    RuntimeAllowance,
    WeightFormat,
    load_catalog,
)
from core.engines.registry import engine_policy
from core.engines.vllm import PagingError
from core.engines.base import ActivationModel, EnginePolicy, EngineSettings, KvFigures, KvLayout, Tokens
from core.kv_cache import KvLayerGroup, kv_layer_groups, naive_values_per_token
from core.isq import gemma4_isq_component_bytes
from core.params import QUANTISABLE_GROUPS, ParameterCount, TensorGroup, count_parameters
from core.runtimes import refusal

IMAGE_TOKEN_BUDGETS = (70, 140, 280, 560, 1120)
# Every image and audio clip is wrapped in begin/end tokens (gemma4-architecture.md, Encoders).
MEDIA_DELIMITER_TOKENS = 2
AUDIO_TOKENS_PER_SECOND = 25  # one token per 40 ms
AUDIO_CLIP_MAX_SECONDS = 30  # at most 750 tokens per clip
# llama-server --fit lowers an unset context to a multiple of 256, not below --fit-ctx.
FIT_CONTEXT_STEP = 256
FIT_MIN_CONTEXT = 4096
# Common calculators: parameters x bytes, plus 20% (the naive view we contrast with).
NAIVE_OVERHEAD_FACTOR = 1.2
# Without a chosen GPU, the per-process overhead of a CUDA datacenter GPU is assumed.
DEFAULT_ACCELERATOR_KIND = "datacenter"
MAX_GPUS = 64


class PlanningError(ValueError):
    """A request that the catalogue and architecture cannot satisfy; one clear line."""


class MemoryRequest(BaseModel):
    """One deployment scenario. Names are catalogue ids or aliases, matched case-insensitively."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(min_length=1, description="Gemma 4 variant id or alias, e.g. 31b")
    weight_format: str = Field(default="bf16", min_length=1)
    kv_cache_dtype: str = Field(default="bf16", min_length=1)
    engine: str = Field(default="transformers", min_length=1)
    context_tokens: int = Field(default=8192, gt=0, le=10**9, description="text tokens per sequence")
    runtime_context: bool = Field(
        default=False,
        description="use the context the runtime picks when none is given (Ollama's VRAM tier, "
        "llama-server's trained context shrunk by --fit, vLLM's max_model_len); context_tokens "
        "then only stands for runtimes that grow their cache with the conversation",
    )
    concurrent_sequences: int = Field(default=1, gt=0, le=10**7)
    images: int = Field(default=0, ge=0, le=10_000, description="images per request")
    image_tokens: Literal[70, 140, 280, 560, 1120] = Field(default=280)
    audio_seconds: float = Field(default=0, ge=0, le=10**6, allow_inf_nan=False)
    thinking_tokens: int = Field(default=0, ge=0, le=10**9)
    ple_on_host: bool = Field(default=False, description="keep the PLE table in host memory")
    text_only: bool = Field(
        default=False,
        description="load no vision/audio encoders (llama.cpp --no-mmproj; transformers' and MLX's "
        "text-only model classes); vLLM and Ollama load them whatever the request",
    )
    gpu: str | None = Field(default=None, description="accelerator id or alias")
    gpus: int = Field(default=1, gt=0, le=MAX_GPUS, description="tensor-parallel degree")
    engine_settings: EngineSettings = EngineSettings()

    def static_key(self) -> tuple[object, ...]:
        """What a memory profile depends on: everything except tokens and sequences."""
        return (
            self.model,
            self.weight_format,
            self.kv_cache_dtype,
            self.engine,
            self.gpus,
            self.ple_on_host,
            self.text_only,
            self.gpu,
            self.engine_settings,
        )


class WeightComponent(BaseModel):
    """One component's weights under the chosen format."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    component: str
    group: TensorGroup
    params: int = Field(ge=0)
    bits_per_weight: float = Field(gt=0)
    bytes: int = Field(ge=0)
    quantised: bool = Field(description="a linear layer (or routed expert) the format stores below 16 bits")
    placement: Literal["accelerator", "host"]


class KvCacheBreakdown(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    full_attention_bytes: int = Field(ge=0)
    sliding_attention_bytes: int = Field(ge=0)
    full_attention_tokens: int = Field(ge=0, description="tokens each full layer holds per sequence")
    sliding_attention_tokens: int = Field(ge=0, description="tokens each sliding layer holds per sequence")
    full_attention_layers: int = Field(ge=0, description="full layers that own a cache")
    sliding_attention_layers: int = Field(ge=0, description="sliding layers that own a cache")
    shared_layers: int = Field(ge=0, description="KV-shared layers: no cache of their own")


class MemoryEstimate(BaseModel):
    """Everything the accelerator(s) must hold for one request, in bytes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    engine: str
    weight_format: str
    kv_cache_dtype: str
    context_tokens: int = Field(gt=0)
    context_source: str = Field(description="where context_tokens came from: the request, or the runtime's default")
    concurrent_sequences: int = Field(gt=0)
    sequence_tokens: int = Field(gt=0, description="context + media + thinking tokens per sequence")
    media_tokens: int = Field(ge=0)
    gpus: int = Field(gt=0)
    params: ParameterCount
    weights: tuple[WeightComponent, ...]
    weights_bytes: int = Field(ge=0, description="weights on the accelerator(s)")
    host_bytes: int = Field(
        ge=0,
        description="weights in host memory: the PLE table when kept there, and llama.cpp's input "
        "copy of the tied token embedding (the output copy is on the accelerator)",
    )
    files_bytes: int = Field(ge=0, description="what the runtime reads from disk (GGUF: the files' exact size)")
    kv_cache_bytes: int = Field(ge=0)
    kv_cache: KvCacheBreakdown
    activations_bytes: int = Field(ge=0)
    activations_basis: str
    overhead_bytes: int = Field(ge=0, description="runtime context per process, one per GPU")
    total_bytes: int = Field(ge=0)
    naive_kv_cache_bytes: int = Field(ge=0, description="every layer full attention, no sharing")
    naive_total_bytes: int = Field(ge=0, description="params x bytes x 1.2 + naive KV cache")
    engine_report: dict[str, Any] = Field(description="the engine's start-up figures; none negative")

    def model_post_init(self, context: Any) -> None:
        # The report is a free-form dict, so Field(ge=0) cannot guard it: a negative or
        # non-finite figure there is a bug in an engine policy, caught here, not printed.
        bad = _negative_figure(self.engine_report, "engine_report")
        if bad:
            raise ValueError(f"{self.engine} reported {bad}: sizes and counts are never negative")


def _negative_figure(value: Any, path: str) -> str | None:
    """The first number under `value` that is negative or not finite, as 'path = value'."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return None if math.isfinite(value) and value >= 0 else f"{path} = {value!r}"
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        bad = _negative_figure(item, f"{path}.{key}")
        if bad:
            return bad
    return None


@dataclass(frozen=True)
class MemoryProfile:
    """The parts of an estimate that do not depend on tokens or sequences (cached)."""

    model: ModelSpec
    weight_format: WeightFormat
    kv_cache_type: KvCacheType
    policy: EnginePolicy
    settings: EngineSettings
    gpus: int
    accelerator: Accelerator | None
    allowance: RuntimeAllowance
    params: ParameterCount
    weights: tuple[WeightComponent, ...]
    weights_bytes: int
    host_bytes: int
    files_bytes: int
    kv_layout: KvLayout
    prepared: Any  # the engine's own static layout (vLLM pages and groups)
    activations: ActivationModel
    overhead_bytes: int
    naive_kv_bytes_per_token: float
    naive_weights_bytes: float
    # The fit solvers' answers that depend on this profile alone (core.fit): the longest context
    # does not move with the request's own context, so a page that reruns with a new context
    # reuses it. Profiles are cached per static key, and the dict lives and dies with its profile.
    solved: dict[tuple[object, ...], int] = field(default_factory=dict, compare=False, repr=False)

    @property
    def fixed_bytes(self) -> int:
        """Everything that does not grow with tokens or sequences."""
        return self.weights_bytes + math.ceil(self.activations.fixed_bytes) + self.overhead_bytes


@dataclass(frozen=True)
class Evaluation:
    """Token-dependent figures; ints on the scalar path, numpy arrays on the sweep path."""

    full_attention_bytes: Tokens
    sliding_attention_bytes: Tokens
    full_attention_tokens: Tokens
    sliding_attention_tokens: Tokens
    activations_bytes: Tokens
    total_bytes: Tokens


def media_tokens(model: ModelSpec, images: int, image_tokens: int, audio_seconds: float) -> int:
    """Context tokens that images and audio occupy in one sequence."""
    vision = model.config.vision_config
    if images and vision is None:
        raise PlanningError(f"{model.id} has no vision encoder; set images per request to 0")
    # A SigLIP tower (Gemma 3) gives every image the same number of soft tokens.
    per_image = image_tokens if not isinstance(vision, SiglipVisionConfig) else vision.mm_tokens_per_image
    tokens = images * (per_image + MEDIA_DELIMITER_TOKENS)
    if audio_seconds > 0:
        if not model.takes_audio:
            raise PlanningError(f"{model.id} has no audio encoder; audio needs gemma-4-e2b or gemma-4-e4b")
        clips = math.ceil(audio_seconds / AUDIO_CLIP_MAX_SECONDS)
        # Round to the microsecond so 1.2 s x 25 is 30 tokens, not 31.
        tokens += math.ceil(round(audio_seconds * AUDIO_TOKENS_PER_SECOND, 6))
        tokens += clips * MEDIA_DELIMITER_TOKENS
    return tokens


# Each parameter component and the tensor group whose bits size it.
_COMPONENT_GROUPS: dict[str, TensorGroup] = {
    "token_embedding": "token_embedding",
    "per_layer_embedding": "per_layer_embedding",
    "per_layer_model_projection": "projection",
    "per_layer_projection": "linear",
    "attention": "attention",
    "mlp": "mlp",
    "experts": "experts",
    "expert_biases": "norm",
    "router": "router",
    "norms": "norm",
    "buffers": "norm",
    "vision": "encoder",
    "audio": "encoder",
}


@dataclass(frozen=True)
class WeightFiles:
    """What a runtime reads from disk for a format: bytes per component and the files' total."""

    component_bytes: dict[str, int] | None  # None: parameters x the format's bits
    files_bytes: int | None  # None: the weights themselves (safetensors headers are negligible)


def _published_bundle(
    params: ParameterCount, weight_format: WeightFormat, published_bytes: int, mapped_bytes: int | None
) -> WeightFiles:
    """A non-GGUF file known by its size only (a .litertlm bundle, encoders inside): norms at the
    format's bits, the per-layer-embedding table at its publisher's stated bytes where given, and
    the rest of the file shared evenly over every other parameter (no per-tensor recipe is public)."""
    counts = {c: getattr(params, c) for c in _COMPONENT_GROUPS if getattr(params, c)}
    fixed = {c: math.ceil(counts[c] * weight_format.bits_for("norm") / 8) for c in ("norms", "buffers") if c in counts}
    if mapped_bytes is not None and "per_layer_embedding" in counts:
        fixed["per_layer_embedding"] = mapped_bytes
    shared = {c: n for c, n in counts.items() if c not in fixed}
    left = published_bytes - sum(fixed.values())
    total = sum(shared.values())
    component_bytes = dict(fixed) | {c: left * n // total for c, n in shared.items()}
    # Integer shares leave a few bytes over: they go to the largest tensor group, so the
    # components add up to the published file exactly.
    largest = max(shared, key=shared.__getitem__)
    component_bytes[largest] += published_bytes - sum(component_bytes.values())
    return WeightFiles(component_bytes, None)


def weight_files(
    model: ModelSpec,
    weight_format: WeightFormat,
    text_only: bool,
    published_bytes: int | None = None,
    mapped_bytes: int | None = None,
) -> WeightFiles:
    """GGUF formats of Gemma 4 are sized tensor by tensor from llama-quantize's rules (core.gguf):
    llama.cpp reads the text file plus an F16 mmproj for the encoders (none with --no-mmproj);
    Ollama's library blob holds both. Other published files: _published_bundle. Other formats and
    other families: bits per component."""
    ftype = weight_format.gguf_ftype
    if not ftype and published_bytes is not None:
        return _published_bundle(count_parameters(model.config), weight_format, published_bytes, mapped_bytes)
    if not ftype or model.config.text_config.model_type != GEMMA4_TEXT:
        return WeightFiles(None, None)
    # Imported here: only GGUF formats need the tensor tables.
    from core.gguf import mmproj_file, ollama_blob, quantize

    try:
        if weight_format.gguf_writer == "ollama":
            text_file = ollama_blob(model.config, ftype)
            encoder_file = None
        else:
            text_file = quantize(model.config, ftype)
            encoder_file = None if text_only else mmproj_file(model.config, "F16")
    except ValueError:
        # A Gemma 4 variant the converter's tensor table does not cover (an imported config
        # with an untied head, say): sized by bits per component like any other family.
        return WeightFiles(None, None)
    component_bytes: dict[str, int] = {}
    for gguf in (text_file, encoder_file):
        if gguf is None:
            continue
        for component, size in gguf.bytes_by_component.items():
            # The KV-shared layers' k/v tensors are in the file but never used (not loaded);
            # rope frequencies and saved scalars count with the norms.
            target = {"rope_freqs": "norms", "unused_shared_kv": None}.get(component, component)
            if target:
                component_bytes[target] = component_bytes.get(target, 0) + size
    text_bytes = text_file.total_bytes
    if published_bytes is not None:
        # A file known by its size only: its tensors take what the header does not, shared out
        # in the base recipe's proportions (which tensors an Unsloth file widens is unpublished).
        scale = (published_bytes - text_file.metadata_bytes - text_file.padding_bytes) / text_file.tensor_bytes
        text_components = text_file.bytes_by_component
        for component, size in text_components.items():
            target = {"rope_freqs": "norms", "unused_shared_kv": None}.get(component, component)
            if target:
                component_bytes[target] += round(size * scale) - size
        text_bytes = published_bytes
    files = text_bytes + (encoder_file.total_bytes if encoder_file else 0)
    return WeightFiles(component_bytes, files)


def _weights(
    params: ParameterCount, weight_format: WeightFormat, ple_on_host: bool, files: WeightFiles | None = None
) -> tuple[WeightComponent, ...]:
    groups = _COMPONENT_GROUPS
    components = []
    for component, group in groups.items():
        count = getattr(params, component)
        if not count:
            continue
        bits = weight_format.bits_for(group)
        size = math.ceil(count * bits / 8)
        if files is not None and files.component_bytes is not None:
            size = files.component_bytes.get(component, 0)
            if not size:
                continue  # not in the files (encoders with --no-mmproj)
        on_host = ple_on_host and component == "per_layer_embedding"  # llama.cpp: always (input_tables_on_host)
        components.append(
            WeightComponent(
                component=component,
                group=group,
                params=count,
                bits_per_weight=round(size * 8 / count, 4),
                bytes=size,
                quantised=group in QUANTISABLE_GROUPS and bits in weight_format.quantised_bits,
                placement="host" if on_host else "accelerator",
            )
        )
    return tuple(components)


def _check_supported(
    catalog: Catalog,
    policy: EnginePolicy,
    weight_format: WeightFormat,
    kv_cache_type: KvCacheType,
    accelerator: Accelerator | None,
) -> None:
    reason = refusal(catalog, policy.id, weight_format, accelerator)
    if reason:
        raise PlanningError(reason)
    if policy.id not in kv_cache_type.engines:
        raise PlanningError(
            f"{policy.id} has no {kv_cache_type.id} KV cache "
            f"({kv_cache_type.id} exists on {', '.join(kv_cache_type.engines)})"
        )


def _check_tensor_parallel(model: ModelSpec, gpus: int) -> None:
    heads = model.config.text_config.num_attention_heads
    if heads % gpus:
        divisors = [n for n in range(1, heads + 1) if heads % n == 0 and n <= MAX_GPUS]
        raise PlanningError(
            f"tensor parallelism over {gpus} GPUs must divide {model.id}'s {heads} attention heads; "
            f"choose one of: {', '.join(map(str, divisors))}"
        )


def _check_gpus(policy: EnginePolicy, model: ModelSpec, gpus: int) -> None:
    if policy.max_gpus is not None and gpus > policy.max_gpus:
        raise PlanningError(f"{policy.id} runs on one device; set gpus to 1")
    if policy.splits_kv_heads:
        _check_tensor_parallel(model, gpus)


def _kv_bytes_per_token(
    policy: EnginePolicy,
    settings: EngineSettings,
    groups: tuple[KvLayerGroup, ...],
    kv_cache_type: KvCacheType,
    split: int,
) -> tuple[float, ...]:
    """Bytes per token of each cache group. llama.cpp without flash attention stores V
    transposed and, when V widths differ across layers (Gemma 4: 256- and 512-wide heads), pads
    every layer's V to the widest ("padding V cache to n_embd_v_gqa_max", llama-kv-cache.cpp);
    a quantised V cache then cannot be built at all."""
    if not policy.input_tables_on_host or settings.flash_attention:
        return tuple(g.bytes_per_token(kv_cache_type.bits_per_value, split) for g in groups)
    if kv_cache_type.bits_per_value < 16:
        raise PlanningError(
            f"{policy.id} without flash attention cannot use a {kv_cache_type.id} KV cache: "
            "\"quantized V cache was requested, but this requires Flash Attention\" (llama.cpp)"
        )
    widest = max(g.kv_heads * g.head_dim for g in groups)
    return tuple(
        g.layer_count * (g.kv_heads * g.head_dim + widest) * kv_cache_type.bits_per_value / 8 for g in groups
    )


def _input_copy_bytes(policy: EnginePolicy, weights: tuple[WeightComponent, ...]) -> int:
    """llama.cpp loads a tied token embedding twice: the input copy stays in host memory (an
    input-layer tensor), the output copy goes with the output layer (docs/research/
    runtime-rules.md A4; the public E2B log's CPU_Mapped 2152.50 MiB is both Q6_K tables)."""
    if not policy.input_tables_on_host:
        return 0
    return sum(w.bytes for w in weights if w.component == "token_embedding")


@lru_cache(maxsize=1024)
def _memory_profile(catalog: Catalog, key: tuple[object, ...]) -> MemoryProfile:
    model_name, format_name, kv_name, engine_name, gpus, ple_on_host, text_only, gpu, settings = key
    model = catalog.model(model_name)  # type: ignore[arg-type]
    weight_format = catalog.weight_format(format_name)  # type: ignore[arg-type]
    kv_cache_type = catalog.kv_cache_type(kv_name)  # type: ignore[arg-type]
    policy = engine_policy(engine_name)  # type: ignore[arg-type]
    accelerator = catalog.accelerator(gpu) if gpu else None  # type: ignore[arg-type]
    allowance = catalog.runtime(accelerator.kind if accelerator else DEFAULT_ACCELERATOR_KIND)
    assert isinstance(gpus, int) and isinstance(settings, EngineSettings)
    settings = policy.device_settings(settings, accelerator)
    kv_cache_type = _graph_kv_cache(catalog, policy, weight_format, kv_cache_type)
    _check_supported(catalog, policy, weight_format, kv_cache_type, accelerator)
    _check_gpus(policy, model, gpus)

    text = model.config.text_config
    params = count_parameters(model.config)
    drop_encoders = (bool(text_only) or not policy.serves_media) and policy.text_only_drops_encoders
    published = weight_format.published_file_ids.get(model.id)
    if weight_format.published_files and published is None:
        raise PlanningError(f"{weight_format.display_name} has no published file for {model.display_name}")
    published_bytes = catalog.published_files[published].size_bytes if published else None
    if policy.quantises_on_load and text.model_type == GEMMA4_TEXT:
        component_bytes = gemma4_isq_component_bytes(
            model.config, weight_format.isq_type, policy.load_dtype_bytes(settings)
        )
        # What is read from disk is the bf16 checkpoint, whatever ISQ makes of it in memory.
        files = WeightFiles(component_bytes, params.checkpoint_values * 2)
    else:
        mapped_bytes = policy.mapped_table_bytes(published) if published else None
        files = weight_files(
            model, weight_format, text_only=drop_encoders, published_bytes=published_bytes, mapped_bytes=mapped_bytes
        )
    weights = _weights(params, weight_format, bool(ple_on_host) or policy.input_tables_on_host, files)
    if drop_encoders:
        weights = tuple(w for w in weights if w.group != "encoder")
    head_copy_bytes = 0
    if policy.duplicates_tied_head and text.tie_word_embeddings:
        head_copy_bytes = sum(w.bytes for w in weights if w.component == "token_embedding")
    kv_reason = policy.kv_cache_refusal(kv_cache_type.id, text)
    if kv_reason:
        raise PlanningError(kv_reason)
    groups = kv_layer_groups(text)
    split = gpus if policy.splits_kv_heads else 1
    layout = KvLayout(
        groups=groups,
        bytes_per_token=policy.kv_group_bytes_per_token(text, groups, kv_cache_type.id, split)
        or _kv_bytes_per_token(policy, settings, groups, kv_cache_type, split),
        kv_cache_id=kv_cache_type.id,
        bits_per_value=kv_cache_type.bits_per_value,
        tensor_parallel=split,
        shared_layers=text.num_kv_shared_layers,
        shared_groups=(shared := kv_layer_groups(text, shared=True)),
        shared_bytes_per_token=tuple(g.bytes_per_token(kv_cache_type.bits_per_value, split) for g in shared),
    )
    try:
        prepared = policy.prepare(layout, text.sliding_window, settings)
    except PagingError as error:
        raise PlanningError(f"{model.id} on {policy.id}: {error}") from None
    profile = MemoryProfile(
        model=model,
        weight_format=weight_format,
        kv_cache_type=kv_cache_type,
        policy=policy,
        settings=settings,
        gpus=gpus,
        accelerator=accelerator,
        allowance=allowance,
        params=params,
        weights=weights,
        # Host-side tables are memory-mapped lookups (a row per token): on unified memory too
        # they page in from the file as tokens are read, so they are not counted as resident.
        weights_bytes=sum(w.bytes for w in weights if w.placement == "accelerator") + head_copy_bytes,
        host_bytes=sum(w.bytes for w in weights if w.placement == "host") + _input_copy_bytes(policy, weights),
        files_bytes=(files.files_bytes if files.files_bytes is not None else sum(w.bytes for w in weights))
        + head_copy_bytes,
        kv_layout=layout,
        prepared=prepared,
        activations=policy.model_activations(model, split, settings, allowance.unified_memory),
        overhead_bytes=policy.overhead_bytes(allowance.process_overhead_bytes, gpus, settings),
        naive_kv_bytes_per_token=naive_values_per_token(text) * kv_cache_type.bits_per_value / 8,
        naive_weights_bytes=params.total * weight_format.main_bits / 8 * NAIVE_OVERHEAD_FACTOR,
    )
    reason = policy.profile_refusal(profile)
    if reason:
        raise PlanningError(reason)
    return profile


def _graph_kv_cache(
    catalog: Catalog, policy: EnginePolicy, weight_format: WeightFormat, kv_cache_type: KvCacheType
) -> KvCacheType:
    """An ONNX graph fixes its cache's element type: an unquantised request (bf16, fp16, fp32:
    'the model's dtype') becomes the graph's; a quantised one is refused."""
    graph = policy.graph_kv_cache(weight_format.id)
    if graph is None or graph == kv_cache_type.id:
        return kv_cache_type
    if kv_cache_type.bits_per_value >= 16:
        return catalog.kv_cache_type(graph)
    raise PlanningError(
        f"{policy.id} keeps the KV cache in the exported graph's own type ({graph} for {weight_format.id}); "
        f"it has no {kv_cache_type.id} cache"
    )


def memory_profile(request: MemoryRequest, catalog: Catalog) -> MemoryProfile:
    """Resolve names and precompute everything that tokens and sequences only scale."""
    return _memory_profile(catalog, request.static_key())


def _ceil(value: Tokens) -> Tokens:
    """Round bytes up; exact on ints, elementwise on arrays."""
    if isinstance(value, (int, float)):
        return math.ceil(value)
    # Imported here, not at the top: only the sweep passes arrays, and it has loaded numpy
    # already; the scalar path and the command line start faster without it.
    import numpy as np

    return np.ceil(value).astype(np.int64)


def evaluate(profile: MemoryProfile, sequence_tokens: Tokens, sequences: Tokens) -> Evaluation:
    """The token-dependent figures: one formula for the scalar estimate and the sweep."""
    kv = profile.policy.kv_cache(profile.kv_layout, profile.prepared, profile.settings, sequence_tokens, sequences)
    full_bytes, sliding_bytes = _ceil(kv.full_attention_bytes), _ceil(kv.sliding_attention_bytes)
    model = profile.activations
    activations = _ceil(
        model.fixed_bytes + sequences * (model.bytes_per_sequence + model.bytes_per_token * sequence_tokens)
    )
    if profile.policy.kv_step_copies:
        activations = activations + profile.policy.kv_step_copies * (full_bytes + sliding_bytes)
    total = profile.weights_bytes + full_bytes + sliding_bytes + activations + profile.overhead_bytes
    return Evaluation(
        full_bytes, sliding_bytes, kv.full_attention_tokens, kv.sliding_attention_tokens, activations, total
    )


def sequence_tokens_for(request: MemoryRequest, model: ModelSpec) -> tuple[int, int]:
    """(tokens one sequence holds, of which media), checked against the model's context."""
    media = media_tokens(model, request.images, request.image_tokens, request.audio_seconds)
    tokens = request.context_tokens + media + request.thinking_tokens
    if tokens > model.max_context_tokens:
        parts = [f"context {request.context_tokens:,}"]
        if media:
            parts.append(f"media {media:,}")
        if request.thinking_tokens:
            parts.append(f"thinking {request.thinking_tokens:,}")
        raise PlanningError(
            f"{' + '.join(parts)} = {tokens:,} tokens exceeds {model.id}'s maximum context of "
            f"{model.max_context_tokens:,} tokens"
        )
    return tokens, media


REQUESTED = "the request"
# Runtimes whose launch command caps the running sequences at the plan's (vLLM --max-num-seqs).
SEQUENCE_CAP_ENGINES = frozenset({"vllm", "vllm-metal"})


def runtime_request(request: MemoryRequest, catalog: Catalog) -> tuple[MemoryRequest, str]:
    """The request as the runtime will run it: its own context when asked for (and where that
    came from), and Ollama's automatic batch size. Everything else is as requested."""
    # Imported here: the engines import this module's types.
    from core.engines.ollama import auto_num_batch, predicted_vram_bytes

    model = catalog.model(request.model)
    policy = engine_policy(request.engine)
    accelerator = catalog.accelerator(request.gpu) if request.gpu else None
    tokens, source = request.context_tokens, REQUESTED
    if request.runtime_context:
        tokens, source = _runtime_context(request, catalog, model, policy.id, accelerator)
    update: dict[str, Any] = {"context_tokens": tokens, "runtime_context": False}
    if policy.id == "ollama":
        profile = memory_profile(request.model_copy(update=update), catalog)
        extra = media_tokens(model, request.images, request.image_tokens, request.audio_seconds) + request.thinking_tokens
        context_total = min(tokens + extra, model.max_context_tokens) * request.concurrent_sequences
        available = 0
        if accelerator is not None:
            available = request.gpus * (accelerator.memory_bytes - profile.allowance.driver_reserved_bytes)
        predicted = predicted_vram_bytes(profile.files_bytes, model.config.text_config, context_total)
        batch = auto_num_batch(context_total, predicted, available)
        update["engine_settings"] = request.engine_settings.model_copy(update={"n_ubatch": batch})
    if policy.id in SEQUENCE_CAP_ENGINES and request.engine_settings.max_num_seqs is None:
        # The launch command writes --max-num-seqs as the planned sequences (core.launch), so
        # the server's profiling run samples that many, not vLLM's default cap for the device.
        update["engine_settings"] = request.engine_settings.model_copy(
            update={"max_num_seqs": request.concurrent_sequences}
        )
    return request.model_copy(update=update), source


def _runtime_context(
    request: MemoryRequest, catalog: Catalog, model: ModelSpec, engine: str, accelerator: Accelerator | None
) -> tuple[int, str]:
    trained = model.max_context_tokens
    if engine == "ollama":
        from core.engines.ollama import OLLAMA_VERSION, default_num_ctx

        total_vram = request.gpus * accelerator.memory_bytes if accelerator else 0
        tokens = default_num_ctx(total_vram, trained, model.config.vision_config is not None)
        return tokens, (
            f"Ollama {OLLAMA_VERSION}'s default for {total_vram / 2**30:,.1f} GiB of GPU memory "
            f"(4,096 below 23 GiB, 32,768 below 47 GiB, else 262,144; at most the trained {trained:,})"
        )
    if engine == "llama.cpp":
        return _llama_server_context(request, catalog, model, accelerator)
    if engine == "vllm":
        return trained, f"vLLM's max_model_len when none is given: the model's trained {trained:,}"
    if engine == "litert-lm":
        from core.engines.litert_lm import default_max_num_tokens

        tokens = min(default_max_num_tokens(request.context_tokens), trained)
        return tokens, (
            f"LiteRT-LM's max_num_tokens when neither the app nor the .litertlm file sets one: the "
            f"smallest multiple of 4,096 above the {request.context_tokens:,}-token prompt plus 1,024 "
            f"decode tokens (engine_settings.cc), at most the trained {trained:,}; the cache is "
            "preallocated to it"
        )
    if engine == "onnxruntime-genai":
        return trained, (
            f"ONNX Runtime GenAI's search.max_length when genai_config.json leaves it unset or 0: the "
            f"model's context_length, the trained {trained:,} (src/config.cpp); the KV cache is "
            "preallocated to it, so set search.max_length to save memory"
        )
    return request.context_tokens, (
        f"{engine} allocates the cache as the conversation grows and has no context to pick: "
        f"sized at the {request.context_tokens:,} tokens asked for"
    )


def _llama_server_context(
    request: MemoryRequest, catalog: Catalog, model: ModelSpec, accelerator: Accelerator | None
) -> tuple[int, str]:
    """llama-server without -c takes the trained context; --fit then lowers it (linearly, to a
    multiple of 256, not below --fit-ctx 4096) until the model fits with --fit-target free, and
    only then moves layers (common/fit.cpp, docs/research/runtime-rules.md A1)."""
    trained = model.max_context_tokens
    if accelerator is None:
        return trained, f"llama-server without -c: the trained context, {trained:,} (no device to fit)"
    from core.fit import gpu_limit_bytes, usable_bytes

    candidate = request.model_copy(update={"context_tokens": trained, "runtime_context": False})
    profile = memory_profile(candidate, catalog)
    limit = gpu_limit_bytes(profile, usable_bytes(profile))
    extra = media_tokens(model, request.images, request.image_tokens, request.audio_seconds) + request.thinking_tokens
    sequences = request.concurrent_sequences

    def fits(tokens: int) -> bool:
        return int(evaluate(profile, tokens + extra, sequences).total_bytes) <= limit

    if fits(trained - extra):
        return trained, f"llama-server without -c: the trained context, {trained:,} tokens (it fits)"
    low, high = FIT_MIN_CONTEXT // FIT_CONTEXT_STEP, (trained - extra) // FIT_CONTEXT_STEP
    if not fits(low * FIT_CONTEXT_STEP):
        return FIT_MIN_CONTEXT, (
            f"llama-server without -c: --fit lowered the trained {trained:,} to its floor of "
            f"{FIT_MIN_CONTEXT:,} (--fit-ctx) and moves layers to the CPU"
        )
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(middle * FIT_CONTEXT_STEP) else (low, middle - 1)
    tokens = low * FIT_CONTEXT_STEP
    return tokens, (
        f"llama-server without -c: --fit lowered the trained {trained:,} to {tokens:,} tokens so "
        f"that {profile.settings.fit_target_mib:,} MiB stay free per device"
    )


def estimate(request: MemoryRequest, catalog: Catalog | None = None) -> MemoryEstimate:
    """Memory one deployment needs, from the model's architecture and the engine's policy."""
    catalog = catalog or load_catalog()
    request, context_source = runtime_request(request, catalog)
    profile = memory_profile(request, catalog)
    tokens, media = sequence_tokens_for(request, profile.model)
    if media and not profile.policy.serves_media:
        raise PlanningError(
            f"{profile.policy.short_name} serves {profile.model.display_name} as text only: "
            f"it cannot take the {media:,} image/audio tokens asked for; plan without media"
        )
    sequences = request.concurrent_sequences
    figures = evaluate(profile, tokens, sequences)
    kv_bytes = int(figures.full_attention_bytes + figures.sliding_attention_bytes)
    groups = profile.kv_layout.groups
    if profile.policy.caches_every_layer(profile.settings):
        groups = groups + profile.kv_layout.shared_groups
    owning = sum(group.layer_count for group in groups)
    naive_kv = math.ceil(profile.naive_kv_bytes_per_token * tokens * sequences)
    return MemoryEstimate(
        model=profile.model.id,
        engine=profile.policy.id,
        weight_format=profile.weight_format.id,
        kv_cache_dtype=profile.kv_cache_type.id,
        context_tokens=request.context_tokens,
        context_source=context_source,
        concurrent_sequences=sequences,
        sequence_tokens=tokens,
        media_tokens=media,
        gpus=request.gpus,
        params=profile.params,
        weights=profile.weights,
        weights_bytes=profile.weights_bytes,
        host_bytes=profile.host_bytes,
        files_bytes=profile.files_bytes,
        kv_cache_bytes=kv_bytes,
        kv_cache=KvCacheBreakdown(
            full_attention_bytes=int(figures.full_attention_bytes),
            sliding_attention_bytes=int(figures.sliding_attention_bytes),
            full_attention_tokens=int(figures.full_attention_tokens),
            sliding_attention_tokens=int(figures.sliding_attention_tokens),
            full_attention_layers=sum(g.layer_count for g in groups if g.attention == FULL),
            sliding_attention_layers=sum(g.layer_count for g in groups if g.attention != FULL),
            shared_layers=profile.model.config.text_config.num_hidden_layers - owning,
        ),
        activations_bytes=int(figures.activations_bytes),
        activations_basis=profile.activations.basis,
        overhead_bytes=profile.overhead_bytes,
        total_bytes=int(figures.total_bytes),
        naive_kv_cache_bytes=naive_kv,
        naive_total_bytes=math.ceil(profile.naive_weights_bytes) + naive_kv,
        engine_report=profile.policy.report(
            profile,
            tokens,
            sequences,
            KvFigures(
                figures.full_attention_bytes,
                figures.sliding_attention_bytes,
                figures.full_attention_tokens,
                figures.sliding_attention_tokens,
            ),
            profile.accelerator.memory_bytes if profile.accelerator else None,
        ),
    )
