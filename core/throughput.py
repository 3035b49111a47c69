"""Decode and prefill speed and cost estimates for a request on its GPU(s): a roofline sketch."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

from core.architecture import FULL, SLIDING, AttentionType, decoder_layers
from core.catalog import Catalog, load_catalog
from core.estimate import MemoryEstimate, MemoryProfile, MemoryRequest, PlanningError, estimate, memory_profile

SECONDS_PER_HOUR = 3600
TOKENS_PER_MILLION = 1_000_000
# One multiply-add is two floating-point operations.
FLOPS_PER_MULTIPLY_ADD = 2
# Per query head and cached token: q.k (one multiply-add per head dimension) and
# probability x v (another), so 2 multiply-adds = 4 FLOPs per head dimension.
ATTENTION_FLOPS_PER_HEAD_DIM = 4
# Weight components no decode step touches: the encoders run once per image or clip, at prefill.
ENCODER_COMPONENTS = ("vision", "audio")


class ThroughputAssumptions(BaseModel):
    """How close to the hardware's peaks an engine gets. Both figures are assumptions, not
    measurements: override them with numbers from your own runs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Assumption: batched decode is bound by memory bandwidth, and well-tuned kernels stream
    # weights at roughly three quarters to nine tenths of peak DRAM bandwidth; 0.8 is the middle.
    bandwidth_efficiency: float = Field(default=0.8, gt=0, le=1)
    # Assumption: prefill is bound by matrix throughput, and end-to-end model FLOPs utilisation
    # of inference engines usually sits well below the datasheet peak (attention, norms,
    # launches and communication cost time); 0.4 is a middle-of-the-road figure.
    compute_efficiency: float = Field(default=0.4, gt=0, le=1)


class ThroughputEstimate(BaseModel):
    """Tokens per second and dollars per million tokens for one request; estimates only."""

    # Every figure is finite: an infinite speed or cost is a bug, not an estimate.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    model: str
    weight_format: str
    gpu: str
    gpus: int = Field(gt=0)
    concurrent_sequences: int = Field(gt=0)
    sequence_tokens: int = Field(gt=0, description="tokens each sequence holds at the decode step")
    weights_read_bytes_per_step: int = Field(ge=0, description="weight bytes one decode step reads")
    kv_read_bytes_per_step: int = Field(ge=0, description="KV cache bytes one decode step reads")
    offload_read_bytes_per_step: int = Field(
        default=0, ge=0, description="bytes read from host RAM (llama.cpp's CPU layers) or streamed over PCIe per step"
    )
    decode_step_seconds: float = Field(gt=0, description="one new token for every sequence")
    decode_tokens_per_second: float = Field(gt=0, description="all sequences together")
    decode_tokens_per_second_per_sequence: float = Field(gt=0)
    prefill_flops_per_token: float = Field(gt=0, description="averaged over a prompt of sequence_tokens")
    prefill_tokens_per_second: float | None = Field(default=None, gt=0, description="None: GPU has no bf16 figure")
    usd_per_hour: float | None = Field(default=None, ge=0, description="all GPUs; None: no catalogued price")
    usd_per_million_output_tokens: float | None = Field(default=None, ge=0)
    usd_per_million_input_tokens: float | None = Field(default=None, ge=0)
    assumptions: list[str]


def expected_experts_read(num_experts: int, top_k: int, sequences: int) -> float:
    """Distinct experts one MoE layer reads when `sequences` tokens each pick top_k of
    num_experts. Routing is assumed uniform and independent, so an expert is skipped by all
    tokens with probability (1 - k/E)^B; one sequence reads exactly top_k."""
    return num_experts * (1 - (1 - top_k / num_experts) ** sequences)


def _weights_read_bytes(result: MemoryEstimate, profile: MemoryProfile, sequences: int) -> int:
    """Weight bytes one decode step (one token for each sequence) reads from accelerator memory."""
    text = profile.model.config.text_config
    total = 0.0
    for component in result.weights:
        if component.placement != "accelerator" or component.component in ENCODER_COMPONENTS:
            continue  # host-resident weights are not read over accelerator bandwidth
        size = float(component.bytes)
        if component.component == "experts" and text.num_experts and text.top_k_experts:
            size *= expected_experts_read(text.num_experts, text.top_k_experts, sequences) / text.num_experts
        elif component.component == "per_layer_embedding":
            # A lookup: each sequence's token reads one row of layers x PLE width values.
            row_values = text.num_hidden_layers * text.hidden_size_per_layer_input
            size = min(size, sequences * row_values * component.bits_per_weight / 8)
        elif component.component == "token_embedding" and not text.tie_word_embeddings:
            # Untied: the output head (half the count) is a full matmul, the input table a lookup.
            head = size / 2
            size = head + min(head, sequences * text.hidden_size * component.bits_per_weight / 8)
        # Tied embeddings double as the output head, so every step reads the whole table.
        total += size
    return math.ceil(total)


def _kv_read_bytes_per_sequence(result: MemoryEstimate, profile: MemoryProfile) -> float:
    """KV bytes one sequence's new token reads: every layer attends over a cache, and a
    KV-shared layer reads the cache of its source layer."""
    text = profile.model.config.text_config
    layers = decoder_layers(text)
    layout = profile.kv_layout
    # Bytes per token of ONE layer of each group (summed over tensor-parallel ranks, so
    # replicated kv heads are read on every rank that holds them).
    per_layer = {
        (group.attention, group.kv_heads, group.head_dim): bytes_per_token / group.layer_count
        for group, bytes_per_token in zip(layout.groups, layout.bytes_per_token, strict=True)
    }
    # A sliding layer's kernel reads at most its window, whatever the engine keeps allocated
    # (vLLM without the hybrid manager, llama.cpp's window + ubatch cells).
    sliding = result.kv_cache.sliding_attention_tokens
    tokens: dict[AttentionType, int] = {
        FULL: result.kv_cache.full_attention_tokens,
        # A model without sliding layers (Llama) has no window, and no sliding tokens to cap.
        SLIDING: min(sliding, text.sliding_window) if text.sliding_window is not None else sliding,
    }
    total = 0.0
    for layer in layers:
        source = layers[layer.kv_source_layer] if layer.kv_source_layer is not None else layer
        total += per_layer[(source.attention, source.num_kv_heads, source.head_dim)] * tokens[source.attention]
    return total


def mean_attended_tokens(sequence_tokens: int, window_tokens: int | None) -> float:
    """Cached tokens a prompt token attends to, averaged over a causal prompt of T tokens.

    Full attention: token i sees i tokens, so T/2 on average (the +1/2 is dropped). Sliding
    attention sees min(i, W): T/2 while T <= W, and beyond that (W^2/2 + (T - W) W) / T =
    W - W^2 / (2T), which meets T/2 at T = W and tends to W for long prompts."""
    t = sequence_tokens
    if window_tokens is None or t <= window_tokens:
        return t / 2
    w = window_tokens
    return w - w * w / (2 * t)


def prefill_flops_per_token(profile: MemoryProfile, sequence_tokens: int) -> float:
    """Forward FLOPs per prompt token: 2 x active decoder parameters (top-k experts, no PLE
    table; the tied output head counts for every token, as engines that keep all logits do)
    plus attention scores and values in every layer, KV-shared layers included."""
    text = profile.model.config.text_config
    matmuls = FLOPS_PER_MULTIPLY_ADD * profile.params.active_per_token
    attention = sum(
        ATTENTION_FLOPS_PER_HEAD_DIM
        * layer.num_query_heads
        * layer.head_dim
        * mean_attended_tokens(sequence_tokens, None if layer.attention == FULL else text.sliding_window)
        for layer in decoder_layers(text)
    )
    return matmuls + attention


def _offload_cost(
    request: MemoryRequest, profile: MemoryProfile, assumptions: ThroughputAssumptions, catalog: Catalog
) -> tuple[int, float, str | None]:
    """(bytes per step from host, seconds they take, a note) when the runtime offloads: llama.cpp
    runs its CPU layers at host RAM bandwidth; vLLM and accelerate copy the offloaded weights
    over the host link every step. (0, 0, None) when everything is on the GPU(s)."""
    from core.fit import fit  # core.fit imports this module's neighbours; imported when needed

    try:
        fitted = fit(request, catalog)
    except PlanningError:
        return 0, 0.0, None
    offload = fitted.offload
    if offload is None or fitted.verdict != "fits_with_offload":
        return 0, 0.0, None
    allowance = profile.allowance
    on_cpu = offload.method == "llama.cpp --fit"
    rate_gbs = allowance.host_bandwidth_gbs if on_cpu else allowance.host_link_gbs
    if rate_gbs is None:
        return offload.host_read_bytes_per_token, 0.0, None
    seconds = offload.host_read_bytes_per_token / (rate_gbs * 1e9 * assumptions.bandwidth_efficiency)
    where = f"host RAM at {rate_gbs:,.1f} GB/s (the CPU runs those layers)" if on_cpu else f"the host link at {rate_gbs:,.2f} GB/s"
    return offload.host_read_bytes_per_token, seconds, (
        f"Offload ({offload.flags}): {offload.host_read_bytes_per_token / 2**30:,.2f} GiB per step come from "
        f"{where}, an assumed figure for a {allowance.kind} machine; that part dominates the step."
    )


def throughput(
    request: MemoryRequest,
    assumptions: ThroughputAssumptions = ThroughputAssumptions(),
    catalog: Catalog | None = None,
) -> ThroughputEstimate:
    """Decode and prefill speed of a request on its GPU(s), from bytes moved and FLOPs done.

    Decode is taken as memory-bound: each step reads the weights it needs and every sequence's
    KV cache, at the last token of a full sequence (the slowest step). Prefill is taken as
    compute-bound. Tensor parallelism scales bandwidth and compute with the GPU count (no
    communication cost). A GPU without a bandwidth figure raises PlanningError; one without a
    bf16 figure gets no prefill figure (None) rather than an error, because decode speed alone
    still answers the common question.
    """
    catalog = catalog or load_catalog()
    if not request.gpu:
        raise PlanningError("a throughput estimate needs a GPU: set gpu (e.g. h100, rtx-4090)")
    profile = memory_profile(request, catalog)
    accelerator = profile.accelerator
    if accelerator is None or accelerator.memory_bandwidth_gbs is None:
        name = accelerator.name if accelerator else request.gpu
        raise PlanningError(
            f"{name} has no memory bandwidth in the GPU catalogue; decode speed "
            "cannot be estimated (add memory_bandwidth_gbs to its row in gpus.csv)"
        )
    result = estimate(request, catalog)
    sequences = request.concurrent_sequences
    gpus = request.gpus

    weights_read = _weights_read_bytes(result, profile, sequences)
    kv_read = math.ceil(sequences * _kv_read_bytes_per_sequence(result, profile))
    bandwidth_bytes_per_second = gpus * accelerator.memory_bandwidth_gbs * 1e9 * assumptions.bandwidth_efficiency
    offload_read, offload_seconds, offload_note = _offload_cost(request, profile, assumptions, catalog)
    # What runs from host memory is not read over the GPU's bandwidth.
    device_read = max(0, weights_read + kv_read - offload_read)
    step_seconds = device_read / bandwidth_bytes_per_second + offload_seconds
    decode_rate = sequences / step_seconds

    flops_per_token = prefill_flops_per_token(profile, result.sequence_tokens)
    prefill_rate = None
    if accelerator.bf16_dense_tflops is not None:
        prefill_rate = gpus * accelerator.bf16_dense_tflops * 1e12 * assumptions.compute_efficiency / flops_per_token

    usd_per_hour = gpus * accelerator.usd_per_hour if accelerator.usd_per_hour is not None else None
    usd_output = usd_input = None
    if usd_per_hour is not None:
        usd_output = usd_per_hour / SECONDS_PER_HOUR / decode_rate * TOKENS_PER_MILLION
        if prefill_rate is not None:
            usd_input = usd_per_hour / SECONDS_PER_HOUR / prefill_rate * TOKENS_PER_MILLION

    notes = [
        f"Decode is limited by memory bandwidth: {assumptions.bandwidth_efficiency:.0%} of the "
        f"{accelerator.memory_bandwidth_gbs:,.0f} GB/s peak is assumed reachable.",
        "Each decode step is timed at the last token of a full sequence, so it is the slowest step.",
        "Every step reads all decoder weights once (the tied embedding is also the output head); "
        "vision and audio encoders are not read while decoding.",
        "KV-shared layers read their source layer's cache; sliding layers read at most their window.",
    ]
    if profile.params.experts:
        notes.append(
            "Mixture of experts: each token reads its top-k experts; a batch reads the experts any "
            "of its tokens picked, assuming uniform routing."
        )
    if profile.params.per_layer_embedding:
        notes.append("The per-layer embedding table is a lookup: each step reads one row per sequence.")
    if prefill_rate is None:
        notes.append(f"{accelerator.name} has no bf16 TFLOP/s figure, so prefill speed is not estimated.")
    else:
        notes.append(
            f"Prefill is limited by compute: {assumptions.compute_efficiency:.0%} of the "
            f"{accelerator.bf16_dense_tflops:,.0f} bf16 TFLOP/s dense peak is assumed reachable, "
            "whatever the weight format."
        )
    if offload_note:
        notes.append(offload_note)
    if gpus > 1:
        notes.append(f"Tensor parallel over {gpus} GPUs is assumed to scale perfectly (no communication cost).")
    if usd_per_hour is None:
        notes.append(f"{accelerator.name} has no catalogued hourly price, so costs are not estimated.")
    else:
        notes.append(f"Costs use the on-demand price of ${accelerator.usd_per_hour:,.2f} per GPU-hour, fully used.")

    return ThroughputEstimate(
        model=profile.model.id,
        weight_format=profile.weight_format.id,
        gpu=accelerator.id,
        gpus=gpus,
        concurrent_sequences=sequences,
        sequence_tokens=result.sequence_tokens,
        weights_read_bytes_per_step=weights_read,
        kv_read_bytes_per_step=kv_read,
        offload_read_bytes_per_step=offload_read,
        decode_step_seconds=step_seconds,
        decode_tokens_per_second=decode_rate,
        decode_tokens_per_second_per_sequence=1 / step_seconds,
        prefill_flops_per_token=flops_per_token,
        prefill_tokens_per_second=prefill_rate,
        usd_per_hour=usd_per_hour,
        usd_per_million_output_tokens=usd_output,
        usd_per_million_input_tokens=usd_input,
        assumptions=notes,
    )
