"""vLLM on Apple silicon (vllm-metal): vLLM's paged KV pool carved out of Metal's working-set limit."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from core.architecture import FULL, TextConfig
from core.devices import TYPED_DEVICE_ID
from core.engines.base import (
    ACTIVATION_BYTES,
    ActivationModel,
    EngineSettings,
    KvFigures,
    KvLayout,
    Tokens,
    forward_values_per_token,
    kv_from_cells,
    minimum,
    pad,
)
from core.engines.vllm import PagedLayout, PagedType, VllmPolicy
from core.kv_cache import MLX_TURBOQUANT, VLLM_TURBOQUANT
from core.units import BYTES_PER_GB, BYTES_PER_GIB

if TYPE_CHECKING:
    from core.catalog import Accelerator
    from core.estimate import MemoryProfile

# Every rule below was read in vllm-project/vllm-metal @211a1e4 (pins vLLM 0.27.1); files and
# lines are in docs/research/mistralrs-vllm-metal.md §2.
VLLM_METAL_COMMIT = "211a1e4"
# The Metal backend advertises MultipleOf(16): vLLM's default block size there (platform.py l.875).
METAL_BLOCK_SIZE = 16
# _paged_attention_plan refuses a pool under 16 blocks (cache_policy.py l.1208-1250).
MIN_BLOCKS = 16
NOT_ENOUGH_METAL = "Paged attention: not enough Metal memory for KV cache"
# Logit-sized bf16 buffers the profiling run leaves in MLX's cache (see activations).
PROFILE_LOGIT_BUFFERS = 2


class VllmMetalPolicy(VllmPolicy):
    """docs/research/mistralrs-vllm-metal.md §2: kv_budget = floor(Metal working-set limit x
    fraction) - weights - profiling-run overhead, cut into 16-token blocks, at least 16 of them.
    26B-A4B and 31B go through vLLM's grouped layout (sliding layers hold their window, as the
    vLLM >= 0.21 engine here); E2B and E4B take the YOCO path, where only the layers before the
    KV-shared ones own a cache, each charged at full length (the pool is not windowed). Gemma 4 is
    loaded through mlx-lm as a text model: no encoders, no images or audio."""

    id = "vllm-metal"
    display_name = "vLLM on Apple (vllm-metal)"
    short_name = "vllm-metal"
    aliases = ("vllm metal", "vllm_metal", "vllm-mlx")
    splits_kv_heads = False
    max_gpus = 1
    offload_method = None
    # model_adapter.py l.204: _TEXT_BACKBONE_OVERRIDE_TYPES = {"gemma4"} (mlx-lm text model).
    # ❓ whether mlx-lm's gemma4 load keeps the towers resident (the doc's open question 4).
    text_only_drops_encoders = True
    serves_media = False

    def kv_cache_refusal(self, kv_cache_id: str, text: TextConfig) -> str | None:
        if kv_cache_id in VLLM_TURBOQUANT or kv_cache_id in MLX_TURBOQUANT:
            return (
                f"vllm-metal cannot run a TurboQuant ({kv_cache_id}) KV cache for Gemma 4: every Gemma 4 "
                'has per-layer KV shapes, and vllm-metal raises "TurboQuant with per-layer KV shapes is '
                f'not yet supported" (v1/cache_policy.py @{VLLM_METAL_COMMIT}); the cache stays bf16'
            )
        return None

    def device_memory(self, accelerator: Accelerator) -> tuple[int, str]:
        """vLLM 0.27.1 picks its step size from the platform's total memory (VllmPolicy's
        default_step), and vllm-metal's MetalPlatform.get_device_total_memory (platform.py l.76-93
        @211a1e4) returns psutil.virtual_memory().total, the Mac's whole RAM, under the default
        VLLM_METAL_MEMORY_FRACTION=auto (envs.py l.22, 41-43), not the Metal working set the
        catalogue keeps as memory_bytes. Its name, "Apple Silicon (...)" (l.58-73), never
        contains "a100". A Mac's RAM is its memory_gb_marketing in Apple's binary GB; a typed-in
        device keeps the typed bytes there in decimal GB (core.devices.typed_accelerator)."""
        unit = BYTES_PER_GB if accelerator.id == TYPED_DEVICE_ID else BYTES_PER_GIB
        return round(accelerator.memory_gb_marketing * unit), accelerator.name

    def prepare(self, layout: KvLayout, window_tokens: int | None, settings: EngineSettings) -> PagedLayout:
        block = settings.block_size
        if layout.shared_layers == 0:
            # _uses_deferred_mha_layout: sliding + full layers, no sharing -> vLLM's own grouping.
            return super().prepare(layout, window_tokens, settings)
        # YOCO: one block holds `block` tokens of every cache-owning layer
        # (per_block_bytes = 2 x block x dtype x sum of own kv_heads x head_dim).
        per_token_bytes = sum(layout.bytes_per_token)
        return PagedLayout(
            page_bytes=math.ceil(block * per_token_bytes),
            group_size=1,
            types=(PagedType(attention=FULL, groups=1, block_tokens=block, window_tokens=None),),
            in_flight_tokens=0,
        )

    def kv_cache(
        self, layout: KvLayout, prepared: PagedLayout, settings: EngineSettings, tokens: Tokens, sequences: Tokens
    ) -> KvFigures:
        if layout.shared_layers == 0:
            return super().kv_cache(layout, prepared, settings, tokens, sequences)
        held = pad(tokens, settings.block_size)
        return kv_from_cells(layout, held, lambda group: held, sequences)

    def activations(
        self, text: TextConfig, tensor_parallel: int, settings: EngineSettings, unified_memory: bool
    ) -> ActivationModel:
        """vllm-metal's profile_run (v1/model_runner.py l.782-799 @211a1e4): one dummy sequence of
        max_num_batched_tokens tokens through the model with its logits evaluated (mlx-lm returns
        logits for every position), MLX's buffer-cache growth charged as overhead; no sampler
        pass over max_num_seqs. Two public start-up errors put that growth at two logit-sized bf16
        buffers: overhead=2.09GB (vllm-metal#398) and 2.06GB (parsehawk#6), both at 2,048 tokens
        on 248,320-token Qwen3.5 vocabularies, against 2 x 2,048 x 248,320 x 2 B = 2.03 GB (the
        layers' own activations, ~0.3 GB, are freed and reused before the logits)."""
        step = self.step_tokens(settings)
        layers = step * forward_values_per_token(text, 1) * ACTIVATION_BYTES
        logits = PROFILE_LOGIT_BUFFERS * step * text.vocab_size * ACTIVATION_BYTES
        return ActivationModel(
            fixed_bytes=max(layers, logits),
            basis=(
                f"vllm-metal's profiling run: one sequence of {step:,} tokens whose bf16 logits for every "
                f"position take two {step:,} x {text.vocab_size:,} buffers (two public logs within 3%), more "
                "than the layers' activations (estimate)"
            ),
        )

    def overhead_bytes(self, process_overhead_bytes: int, gpus: int, settings: EngineSettings) -> int:
        # No CUDA graphs on Metal: the runtime's own allowance only.
        return gpus * process_overhead_bytes

    @staticmethod
    def min_pool_bytes(profile: MemoryProfile) -> int:
        """The smallest pool vllm-metal starts with: 16 blocks."""
        paged: PagedLayout = profile.prepared
        return MIN_BLOCKS * paged.page_bytes * paged.group_size

    def start_shortfall_bytes(self, profile: MemoryProfile, tokens: Tokens, memory_bytes: int | None) -> Tokens:
        budget = self.kv_budget_per_rank(profile, memory_bytes)
        if budget is None:
            return 0
        one_request = self.one_request_bytes_per_rank(profile, tokens)
        floor_bytes = self.min_pool_bytes(profile)
        # max(one_request, 16 blocks), then max(needed - budget, 0), elementwise on arrays.
        needed = one_request + floor_bytes - minimum(one_request, floor_bytes)
        return profile.gpus * (needed - minimum(needed, budget))

    def start_error(self, profile: MemoryProfile, tokens: int, memory_bytes: int | None) -> str | None:
        budget = self.kv_budget_per_rank(profile, memory_bytes)
        if budget is None:
            return None
        paged: PagedLayout = profile.prepared
        block_bytes = paged.page_bytes * paged.group_size
        blocks = max(budget, 0) // block_bytes
        if budget <= 0 or blocks < MIN_BLOCKS:
            return (
                f"{NOT_ENOUGH_METAL}: {max(budget, 0) / BYTES_PER_GIB:.2f} GiB left after the weights and "
                f"overhead makes {blocks} blocks of {block_bytes:,} B; vllm-metal needs at least {MIN_BLOCKS}"
            )
        return super().start_error(profile, tokens, memory_bytes)

    def report(
        self, profile: MemoryProfile, tokens: int, sequences: int, figures: KvFigures, memory_bytes: int | None
    ) -> dict[str, Any]:
        report = super().report(profile, tokens, sequences, figures, memory_bytes)
        report["kv_layout"] = "yoco_full_length" if profile.kv_layout.shared_layers else "grouped"
        report["gpu_memory_utilization"] = self.utilization(profile.settings)
        if memory_bytes is not None:
            report["metal_limit_bytes"] = memory_bytes
        if "num_blocks" in report:
            report["below_min_blocks"] = report["num_blocks"] < MIN_BLOCKS
            error = self.start_error(profile, tokens, memory_bytes)
            if error:
                report["log_lines"] = [error]
                if report["num_blocks"] < MIN_BLOCKS:
                    report["kv_cache_verdict"] = "no_room"
        # vLLM's own "GPU KV cache size" log lines hold on Metal too; the "(vLLM <= 0.20 ...)"
        # line does not apply to a plugin pinned to 0.27.1.
        if "log_lines" in report:
            report["log_lines"] = [line for line in report["log_lines"] if "<= 0.20" not in line]
        return report
