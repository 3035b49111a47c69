"""MLX / mlx-lm on Apple silicon: rotating caches of W for sliding layers, unified memory."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.architecture import SLIDING, TextConfig, decoder_layers
from core.engines.base import (
    ACTIVATION_BYTES,
    ActivationModel,
    EnginePolicy,
    EngineSettings,
    KvFigures,
    KvLayout,
    Tokens,
    pad,
    prefill_chunk_activations,
    windowed_kv,
)
from core.kv_cache import MLX_TURBOQUANT, KvLayerGroup, turboquant_group_bytes

if TYPE_CHECKING:
    from core.estimate import MemoryProfile

# mlx_lm KVCache grows in steps of 256 tokens; RotatingKVCache grows the same way up to max_size.
CACHE_STEP_TOKENS = 256
# mlx_lm.generate prefills prompts in chunks of prefill_step_size tokens.
PREFILL_STEP_TOKENS = 2048
# mlx-lm's uniform --kv-bits caches (QuantizedKVCache); mlx_lm/models/cache.py@d78bf58.
UNIFORM_KV_BITS = {"mlx-q8": 8, "mlx-q4": 4}
# maybe_quantize_kv_cache calls to_quantized on every layer's cache; a sliding layer's
# RotatingKVCache raises this (mlx_lm/models/cache.py@d78bf58; mlx_vlm/models/cache.py@9b13f52).
ROTATING_NYI = "NotImplementedError: RotatingKVCache Quantization NYI"


class MlxPolicy(EnginePolicy):
    """engines.md, MLX: sliding layers keep a rotating cache of exactly W tokens; full layers grow
    in steps of 256; shared layers hold nothing. One device, unified memory."""

    id = "mlx"
    display_name = "MLX (mlx-lm, Apple silicon)"
    short_name = "MLX"
    aliases = ("mlx-lm", "mlx_lm", "apple")
    max_gpus = 1

    def kv_cache_refusal(self, kv_cache_id: str, text: TextConfig) -> str | None:
        bits = UNIFORM_KV_BITS.get(kv_cache_id)
        if bits is None or not any(layer.attention == SLIDING for layer in decoder_layers(text)):
            return None
        return (
            f"mlx-lm --kv-bits {bits} cannot quantise a Gemma 4 cache: it converts every layer's cache, "
            f'and the sliding-window layers\' rotating caches raise "{ROTATING_NYI}" (mlx_lm/models/cache.py); '
            "mlx-vlm's TurboQuant (--kv-bits 3.5 --kv-quant-scheme turboquant) quantises the "
            "full-attention layers instead"
        )

    def kv_group_bytes_per_token(
        self, text: TextConfig, groups: tuple[KvLayerGroup, ...], kv_cache_id: str, tensor_parallel: int
    ) -> tuple[float, ...] | None:
        """mlx-vlm's TurboQuant: head_dim-dependent packed vectors on the quantised layers only."""
        if kv_cache_id not in MLX_TURBOQUANT:
            return None
        return turboquant_group_bytes(text, groups, kv_cache_id, tensor_parallel)

    def kv_cache(
        self, layout: KvLayout, prepared: Any, settings: EngineSettings, tokens: Tokens, sequences: Tokens
    ) -> KvFigures:
        return windowed_kv(layout, pad(tokens, CACHE_STEP_TOKENS), sequences)

    def activations(
        self, text: TextConfig, tensor_parallel: int, settings: EngineSettings, unified_memory: bool
    ) -> ActivationModel:
        return prefill_chunk_activations(
            text, PREFILL_STEP_TOKENS, ACTIVATION_BYTES,
            f"prefill in chunks of {PREFILL_STEP_TOKENS:,} tokens (mlx_lm prefill_step_size): "
            "the largest layer's activations, plus fp32 logits per sequence (estimate)",
        )  # fmt: skip

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
