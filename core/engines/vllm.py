"""vLLM: a pre-allocated pool of paged KV blocks shared by layer groups (hybrid KV cache manager)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from core.architecture import FULL, SLIDING, TextConfig, decoder_layers
from core.engines.base import (
    ACTIVATION_BYTES,
    LOGIT_BYTES,
    ActivationModel,
    EnginePolicy,
    EngineSettings,
    KvFigures,
    KvLayout,
    Tokens,
    ceil_div,
    forward_values_per_token,
    minimum,
)
from core.kv_cache import TENSORS_PER_LAYER, VLLM_TURBOQUANT
from core.units import BYTES_PER_GIB

if TYPE_CHECKING:
    from core.catalog import Accelerator
    from core.estimate import MemoryProfile

# CUDA graphs captured at start-up (vLLM logs "Graph capturing finished ... took N GiB"; commonly
# a few hundred MiB to about 1 GiB): est., no Gemma 4 measurement at hand.
CUDA_GRAPH_BYTES = 512 * 2**20
# Group sizes are the smallest per-type layer count unless the largest is below 1.5x it
# (vllm/v1/core/kv_cache_utils.py, engines.md).
GROUP_SIZE_RATIO = 1.5
# vllm/v1/core/kv_cache_utils.py, _check_enough_kv_cache_memory: vLLM raises ValueError with
# these words and does not start when the KV budget left on a GPU is <= 0, or too small for
# one request of max_model_len tokens (the second message is formatted in start_error).
NO_MEMORY_ERROR = (
    "No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when "
    "initializing the engine. See https://docs.vllm.ai/en/latest/configuration/conserving_memory/ "
    "for more details."
)

# `vllm serve`'s scheduler defaults (UsageContext.OPENAI_API_SERVER) when the user sets neither
# --max-num-batched-tokens nor --max-num-seqs: vllm/engine/arg_utils.py @99d7eb5
# EngineArgs._set_default_args, `if device_memory >= 70 * GiB_bytes and "a100" not in
# device_name:` 8192 tokens / 1024 sequences ("For GPUs like H100 and MI300x"), else 2048 / 256;
# device_memory is current_platform.get_device_total_memory(), 0 (so the small defaults) when it
# cannot be read. Newer vLLM moves the same table into EngineArgs.get_batch_defaults unchanged
# (docs/research/runtime-rules.md, vLLM step size). The A100 is kept small because large steps
# lowered its throughput (vLLM PR #17885).
LARGE_DEVICE_MIN_BYTES = 70 * BYTES_PER_GIB
LARGE_DEVICE_STEP = (8192, 1024)  # (max_num_batched_tokens, max_num_seqs)
SMALL_DEVICE_STEP = (2048, 256)
SMALL_STEP_DEVICE_NAME = "a100"


def default_step(device_memory_bytes: int, device_name: str) -> tuple[int, int]:
    """vLLM's (max_num_batched_tokens, max_num_seqs) for `vllm serve` on a device that reports
    `device_memory_bytes` of total memory under `device_name` (0 and "": unknown device)."""
    if device_memory_bytes >= LARGE_DEVICE_MIN_BYTES and SMALL_STEP_DEVICE_NAME not in device_name.lower():
        return LARGE_DEVICE_STEP
    return SMALL_DEVICE_STEP


# vLLM's refusal of a TurboQuant dtype for Gemma 4 (vllm#40094, v0.19.2rc1; still so at PR #54599,
# 2026-08-31: "turboquant is not compatible with sliding-window attention layers").
TURBOQUANT_GEMMA4_ERROR = (
    "ValueError: Selected backend AttentionBackendEnum.TRITON_ATTN is not valid for this "
    "configuration. Reason: ['kv_cache_dtype not supported']"
)


class PagingError(ValueError):
    """Layer page sizes that vLLM cannot unify."""


@dataclass(frozen=True)
class PagedType:
    """One attention type's share of the pool."""

    attention: str
    groups: int
    block_tokens: int
    window_tokens: int | None


@dataclass(frozen=True)
class PagedLayout:
    page_bytes: int
    group_size: int
    types: tuple[PagedType, ...]
    in_flight_tokens: int

    @property
    def group_count(self) -> int:
        return sum(t.groups for t in self.types)

    @property
    def min_block_tokens(self) -> int:
        return min(t.block_tokens for t in self.types)

    def blocks_per_group(self, paged: PagedType, tokens: Tokens) -> Tokens:
        """Blocks one request holds in one group of `paged`: full attention (or any layer
        without the hybrid manager) ceil(T / block); sliding ceil(min(W - 1 + in_flight, T) /
        block) + 1."""
        if paged.window_tokens is None:
            return ceil_div(tokens, paged.block_tokens)
        held = minimum(paged.window_tokens - 1 + self.in_flight_tokens, tokens)
        return ceil_div(held, paged.block_tokens) + 1

    def blocks_per_request(self, tokens: Tokens) -> tuple[Tokens, Tokens]:
        """(full-attention blocks, sliding blocks) one request of `tokens` tokens holds."""
        full: Tokens = 0
        sliding: Tokens = 0
        for paged in self.types:
            blocks = paged.groups * self.blocks_per_group(paged, tokens)
            if paged.attention == FULL:
                full = full + blocks
            else:
                sliding = sliding + blocks
        return full, sliding


class VllmPolicy(EnginePolicy):
    """engines.md, vLLM: KV budget = GPU memory x gpu_memory_utilization - weights - activation
    peak - non-torch memory (or --kv-cache-memory-bytes), cut into pages of block_size tokens;
    pages of different size are unified by raising the smaller page's block size."""

    id = "vllm"
    display_name = "vLLM"
    short_name = "vLLM"
    aliases = ("v-llm",)
    offload_method = "vLLM --cpu-offload-gb"
    text_only_drops_encoders = False

    def kv_cache_refusal(self, kv_cache_id: str, text: TextConfig) -> str | None:
        """TurboQuant dtypes run on TurboQuant's own attention backend, for full-attention layers
        only; Gemma 4 (sliding layers, 256/512 head sizes) is pinned to TRITON_ATTN instead."""
        if kv_cache_id not in VLLM_TURBOQUANT:
            return None
        layers = decoder_layers(text)
        head_dims = sorted({layer.head_dim for layer in layers})
        if not any(layer.attention == SLIDING for layer in layers) and len(head_dims) == 1:
            # A model vLLM's TurboQuant does run; the page sizes of its mixed bf16 boundary and
            # packed layers are not modelled here.
            return f"vLLM's {kv_cache_id} KV cache is modelled for Gemma 4 only, where vLLM refuses it"
        return (
            f"vLLM cannot run a {kv_cache_id} KV cache for Gemma 4 in the current release: it "
            f"pins Gemma 4 (head sizes {'/'.join(map(str, head_dims))}) to the TRITON_ATTN backend, "
            f'which refuses TurboQuant ("{TURBOQUANT_GEMMA4_ERROR}", vllm#40094), and TurboQuant '
            "does not yet support sliding-window layers (PRs #53231 and #54599 open). fp8 halves "
            "the cache instead"
        )

    def device_memory(self, accelerator: Accelerator) -> tuple[int, str]:
        """What vLLM's platform reports for the device: total memory (torch's total_memory, the
        catalogue's driver-reported bytes) and name."""
        return accelerator.memory_bytes, accelerator.name

    def device_settings(self, settings: EngineSettings, accelerator: Accelerator | None) -> EngineSettings:
        """Fill an unset step size and sequence cap with vLLM's default for the device
        (default_step); without a device, vLLM's own fallback when it cannot read one."""
        if settings.max_num_batched_tokens is not None and settings.max_num_seqs is not None:
            return settings
        memory_bytes, name = self.device_memory(accelerator) if accelerator is not None else (0, "")
        tokens, seqs = default_step(memory_bytes, name)
        return settings.model_copy(
            update={
                "max_num_batched_tokens": settings.max_num_batched_tokens or tokens,
                "max_num_seqs": settings.max_num_seqs or seqs,
            }
        )

    @staticmethod
    def step_tokens(settings: EngineSettings) -> int:
        """max_num_batched_tokens once device_settings has filled it in."""
        if settings.max_num_batched_tokens is None:
            raise ValueError("vLLM's max_num_batched_tokens is unset: call device_settings first")
        return settings.max_num_batched_tokens

    @staticmethod
    def sequence_cap(settings: EngineSettings) -> int:
        """max_num_seqs once device_settings has filled it in."""
        if settings.max_num_seqs is None:
            raise ValueError("vLLM's max_num_seqs is unset: call device_settings first")
        return settings.max_num_seqs

    def prepare(self, layout: KvLayout, window_tokens: int | None, settings: EngineSettings) -> PagedLayout:
        tp = layout.tensor_parallel
        values = {  # per token per layer on one rank
            index: TENSORS_PER_LAYER * group.kv_heads_per_rank(tp) * group.head_dim
            for index, group in enumerate(layout.groups)
        }
        largest = max(values.values())
        types = []
        for index, group in enumerate(layout.groups):
            if largest % values[index]:
                raise PagingError(f"vLLM cannot unify KV page sizes {sorted(set(values.values()))}")
            types.append((group, settings.block_size * largest // values[index]))
        counts = [group.layer_count for group in layout.groups]
        smallest, biggest = min(counts), max(counts)
        group_size = smallest if biggest >= GROUP_SIZE_RATIO * smallest else biggest
        page_bytes = math.ceil(settings.block_size * largest * layout.bits_per_value / 8)
        return PagedLayout(
            page_bytes=page_bytes,
            group_size=group_size,
            types=tuple(
                PagedType(
                    attention=group.attention,
                    groups=math.ceil(group.layer_count / group_size),
                    block_tokens=block_tokens,
                    # Without the hybrid manager every layer keeps the whole context.
                    window_tokens=None if settings.disable_hybrid_kv_cache_manager else group.window_tokens,
                )
                for group, block_tokens in types
            ),
            # Async scheduling keeps a second step's tokens in flight.
            in_flight_tokens=self.step_tokens(settings) * (2 if settings.async_scheduling else 1),
        )

    def kv_cache(
        self, layout: KvLayout, prepared: PagedLayout, settings: EngineSettings, tokens: Tokens, sequences: Tokens
    ) -> KvFigures:
        full_blocks, sliding_blocks = prepared.blocks_per_request(tokens)
        block_bytes = prepared.page_bytes * prepared.group_size * layout.tensor_parallel
        full_tokens: Tokens = 0
        sliding_tokens: Tokens = 0
        for paged in prepared.types:
            held = prepared.blocks_per_group(paged, tokens) * paged.block_tokens
            if paged.attention == FULL:
                full_tokens = held
            else:
                sliding_tokens = held
        return KvFigures(
            full_blocks * block_bytes * sequences,
            sliding_blocks * block_bytes * sequences,
            full_tokens,
            sliding_tokens,
        )

    def activations(
        self, text: TextConfig, tensor_parallel: int, settings: EngineSettings, unified_memory: bool
    ) -> ActivationModel:
        """The profiling run: one step of max_num_batched_tokens tokens (chunked prefill), and
        the sampler's fp32 logits for max_num_seqs sequences; fixed whatever the workload."""
        per_token = forward_values_per_token(text, tensor_parallel) * ACTIVATION_BYTES
        step, seqs = self.step_tokens(settings), self.sequence_cap(settings)
        sampler = tensor_parallel * seqs * text.vocab_size * LOGIT_BYTES
        return ActivationModel(
            fixed_bytes=step * per_token + sampler,
            basis=(
                f"profiling run of {step:,} batched tokens (bf16 activations of the largest layer) "
                f"plus fp32 sampler logits for {seqs:,} sequences (estimate)"
            ),
        )

    def overhead_bytes(self, process_overhead_bytes: int, gpus: int, settings: EngineSettings) -> int:
        return gpus * (process_overhead_bytes + CUDA_GRAPH_BYTES)

    def utilization(self, settings: EngineSettings) -> float:
        """The share of each GPU's memory the engine claims (--gpu-memory-utilization)."""
        return settings.gpu_memory_utilization

    @staticmethod
    def _fixed_per_rank(profile: MemoryProfile) -> int:
        fixed = profile.weights_bytes + profile.activations.fixed_bytes + profile.overhead_bytes
        return math.ceil(fixed / profile.gpus)

    def kv_budget_per_rank(self, profile: MemoryProfile, memory_bytes: int | None) -> int | None:
        settings = profile.settings
        if settings.kv_cache_memory_bytes is not None:
            return settings.kv_cache_memory_bytes
        if memory_bytes is None:
            return None
        return math.floor(memory_bytes * self.utilization(settings)) - self._fixed_per_rank(profile)

    def usable_bytes(self, profile: MemoryProfile, memory_bytes: int, driver_reserved_bytes: int) -> int:
        """vLLM claims memory x gpu_memory_utilization per GPU (or, with
        --kv-cache-memory-bytes, exactly the fixed parts plus that pool)."""
        settings = profile.settings
        available = memory_bytes - driver_reserved_bytes
        if settings.kv_cache_memory_bytes is not None:
            claimed = self._fixed_per_rank(profile) + settings.kv_cache_memory_bytes
        else:
            claimed = math.floor(memory_bytes * self.utilization(settings))
        return profile.gpus * min(claimed, available)

    def one_request_bytes_per_rank(self, profile: MemoryProfile, tokens: Tokens) -> Tokens:
        """KV memory one request of `tokens` tokens needs on one GPU, as vLLM's start-up check
        counts it (kv_cache_utils.py, _max_memory_usage_bytes_from_groups): every block a group
        holds costs group_size pages. Its sliding windows add one step's max_num_batched_tokens,
        whatever async scheduling keeps in flight: vllm/v1/kv_cache_interface.py @bc8282e
        SlidingWindowSpec.max_memory_usage_bytes reads `min(self.sliding_window - 1 +
        max_num_batched_tokens, max_model_len)` from the scheduler config and nothing of
        async_scheduling. vllm-metal hands the same specs to the same check (its grouped path)."""
        paged: PagedLayout = profile.prepared
        checked = replace(paged, in_flight_tokens=self.step_tokens(profile.settings))
        full_blocks, sliding_blocks = checked.blocks_per_request(tokens)
        return paged.page_bytes * paged.group_size * (full_blocks + sliding_blocks)

    def start_shortfall_bytes(self, profile: MemoryProfile, tokens: Tokens, memory_bytes: int | None) -> Tokens:
        """vLLM refuses to start when one request does not fit its KV budget: the bytes the
        budget lacks on each GPU, times the GPUs (the budget may be negative)."""
        budget = self.kv_budget_per_rank(profile, memory_bytes)
        if budget is None:
            return 0
        needed = self.one_request_bytes_per_rank(profile, tokens)
        # max(needed - budget, 0), elementwise on the sweep's arrays.
        return profile.gpus * (needed - minimum(needed, budget))

    def start_error(self, profile: MemoryProfile, tokens: int, memory_bytes: int | None) -> str | None:
        budget = self.kv_budget_per_rank(profile, memory_bytes)
        if budget is None:
            return None
        if budget <= 0:
            return NO_MEMORY_ERROR
        needed = int(self.one_request_bytes_per_rank(profile, tokens))
        if needed <= budget:
            return None
        longest = self._longest_model_len(profile, budget, tokens)
        estimated = (
            f"Based on the available memory, the estimated maximum model length is {longest}. " if longest else ""
        )
        # vLLM's own words, typo ("models's") included, so a search for the log line finds this.
        return (
            f"To serve at least one request with the models's max seq len ({tokens}), "
            f"({needed / BYTES_PER_GIB:.2f} GiB KV cache is needed, which is larger than the "
            f"available KV cache memory ({budget / BYTES_PER_GIB:.2f} GiB). {estimated}"
            "Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when "
            "initializing the engine. See https://docs.vllm.ai/en/latest/configuration/"
            "conserving_memory/ for more details."
        )

    def _longest_model_len(self, profile: MemoryProfile, budget: int, tokens: int) -> int:
        """vLLM's estimate_max_model_len: the longest max_model_len up to `tokens` whose one
        request fits `budget` (binary search, as vLLM does); 0 if not even one token fits."""
        low, high = 0, tokens
        while low < high:
            middle = (low + high + 1) // 2
            if self.one_request_bytes_per_rank(profile, middle) <= budget:
                low = middle
            else:
                high = middle - 1
        return low

    def report(
        self, profile: MemoryProfile, tokens: int, sequences: int, figures: KvFigures, memory_bytes: int | None
    ) -> dict[str, Any]:
        paged: PagedLayout = profile.prepared
        full_blocks, sliding_blocks = paged.blocks_per_request(tokens)
        blocks_per_request = int(full_blocks + sliding_blocks)
        report: dict[str, Any] = {
            "block_size": profile.settings.block_size,
            "page_bytes": paged.page_bytes,
            "group_size": paged.group_size,
            "kv_cache_groups": paged.group_count,
            "block_tokens": {t.attention: t.block_tokens for t in paged.types},
            "in_flight_tokens": paged.in_flight_tokens,
            "blocks_per_request": blocks_per_request,
            "max_model_len": tokens,
        }
        budget = self.kv_budget_per_rank(profile, memory_bytes)
        if budget is None:
            return report
        # A budget at or below zero is no pool at all: vLLM clamps its block count at 0
        # (get_num_blocks) and refuses to start; the deficit is reported as a shortfall.
        pool_bytes = max(budget, 0)
        num_blocks = pool_bytes // paged.page_bytes // paged.group_size
        max_concurrency = num_blocks / blocks_per_request
        kv_tokens = int(max_concurrency * tokens)
        legacy_tokens = num_blocks // paged.group_count * paged.min_block_tokens
        needed = int(self.one_request_bytes_per_rank(profile, tokens))
        error = self.start_error(profile, tokens, memory_bytes)
        if budget <= 0:
            kv_verdict = "no_room"
        elif needed > budget:
            kv_verdict = "below_one_request"
        else:
            kv_verdict = "ok"
        report |= {
            "kv_cache_memory_bytes": pool_bytes,
            "kv_cache_needed_bytes": needed,
            "kv_cache_shortfall_bytes": max(needed - budget, 0),
            "no_room_for_kv_cache": budget <= 0,
            "kv_cache_verdict": kv_verdict,
            "num_blocks": num_blocks,
            "max_concurrency": max_concurrency,
            "kv_cache_tokens": kv_tokens,
            "kv_cache_tokens_legacy": legacy_tokens,
            # vLLM raises before it logs the cache size when the pool cannot take one request.
            "log_lines": [f"ValueError: {error}"]
            if error
            else [
                f"GPU KV cache size: {kv_tokens:,} tokens",
                f"Maximum concurrency for {tokens:,} tokens per request: {max_concurrency:.2f}x",
                f"(vLLM <= 0.20 logged: GPU KV cache size: {legacy_tokens:,} tokens)",
            ],
        }
        if memory_bytes is not None and profile.settings.kv_cache_memory_bytes is None:
            report["reserved_bytes"] = profile.gpus * math.floor(
                memory_bytes * self.utilization(profile.settings)
            )
        return report
