"""MLX / mlx-lm on Apple silicon: rotating caches of W for sliding layers, unified memory."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.architecture import TextConfig
from core.engines.base import (
    ACTIVATION_BYTES,
    LOGIT_BYTES,
    ActivationModel,
    EnginePolicy,
    EngineSettings,
    KvFigures,
    KvLayout,
    Tokens,
    forward_values_per_token,
    kv_from_cells,
    minimum,
    pad,
)

if TYPE_CHECKING:
    from core.estimate import MemoryProfile

# mlx_lm KVCache grows in steps of 256 tokens; RotatingKVCache grows the same way up to max_size.
CACHE_STEP_TOKENS = 256
# mlx_lm.generate prefills prompts in chunks of prefill_step_size tokens.
PREFILL_STEP_TOKENS = 2048


class MlxPolicy(EnginePolicy):
    """engines.md, MLX: sliding layers keep a rotating cache of exactly W tokens; full layers grow
    in steps of 256; shared layers hold nothing. One device, unified memory."""

    id = "mlx"
    display_name = "MLX (mlx-lm, Apple silicon)"
    short_name = "MLX"
    aliases = ("mlx-lm", "mlx_lm", "apple")
    max_gpus = 1

    def kv_cache(
        self, layout: KvLayout, prepared: Any, settings: EngineSettings, tokens: Tokens, sequences: Tokens
    ) -> KvFigures:
        grown = pad(tokens, CACHE_STEP_TOKENS)
        return kv_from_cells(layout, grown, lambda group: minimum(grown, group.window_tokens or 0), sequences)

    def activations(
        self, text: TextConfig, tensor_parallel: int, settings: EngineSettings, unified_memory: bool
    ) -> ActivationModel:
        return ActivationModel(
            fixed_bytes=PREFILL_STEP_TOKENS * forward_values_per_token(text, 1) * ACTIVATION_BYTES,
            bytes_per_sequence=text.vocab_size * LOGIT_BYTES,
            basis=(
                f"prefill in chunks of {PREFILL_STEP_TOKENS:,} tokens (mlx_lm prefill_step_size): "
                "the largest layer's activations, plus fp32 logits per sequence (estimate)"
            ),
        )

    def report(
        self, profile: MemoryProfile, tokens: int, sequences: int, figures: KvFigures, memory_bytes: int | None
    ) -> dict[str, Any]:
        report: dict[str, Any] = {
            "full_attention_tokens": int(figures.full_attention_tokens),
            "rotating_cache_tokens": int(figures.sliding_attention_tokens),
        }
        if memory_bytes is not None:
            report["wired_limit_bytes"] = memory_bytes
            report["raise_wired_limit"] = (
                "macOS 14+: sudo sysctl iogpu.wired_limit_mb=<MB> (resets at reboot; leave 8-16 GB "
                "for macOS); mlx.core.set_wired_limit does the same from Python"
            )
        return report
