"""LiteRT-LM (Google's on-device runtime): a KV cache preallocated to max_num_tokens, one conversation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.architecture import TextConfig
from core.engines.base import (
    ActivationModel,
    EnginePolicy,
    EngineSettings,
    KvFigures,
    KvLayout,
    Tokens,
    prefill_chunk_activations,
    windowed_kv,
)

if TYPE_CHECKING:
    from core.estimate import MemoryProfile

# engine_settings.cc (@a76a162), MaybeUpdateAndValidate: without max_num_tokens from the app or
# the file's metadata, "the smallest multiple of 4096 greater than the number of tokens in the
# prompt plus the default decode length, 1024": ((prompt + 1023) / 4096 + 1) * 4096.
MAX_NUM_TOKENS_STEP = 4096
DEFAULT_DECODE_TOKENS = 1024
# The text executor's activations default to F16 (engine_settings.cc MaybeOverrideActivationType).
ACTIVATION_BYTES_F16 = 2
# Static graphs prefill through fixed-size 'prefill_<N>' signatures (GetOptimizedPrefillWorkGroups);
# the sizes a Gemma 4 file exports are not published: 1,024 tokens is an estimate.
PREFILL_CHUNK_TOKENS = 1024
# On the GPU backend a graph without the int32 cache-parameter input keeps two banks of KV
# buffers, input and output, swapped every step (LitertState kPingPong); CPU and NPU update in place.
GPU_PING_PONG_BANKS = 2
# The embedding tables each generic file memory-maps, as the litert-community model cards state them
# (decimal GB, 2 dp): "the runtime uses memory mapping to support the 1.12GB of embedding
# parameters" (gemma-4-E2B-it-litert-lm README); "3.66 GB, which includes a text decoder with
# 2.24 GB of weights and 0.67 GB of embedding parameters [...] memory mapped" (gemma-4-E4B-it-
# litert-lm README). Which tables the figure spans is not said (docs/research/litert-lm.md §3).
MAPPED_EMBEDDING_BYTES = {
    "litertlm-e2b-generic": 1_120_000_000,
    "litertlm-e4b-generic": 670_000_000,
}


def default_max_num_tokens(prompt_tokens: int) -> int:
    """LiteRT-LM's max_num_tokens when neither the app nor the .litertlm metadata sets one."""
    return ((prompt_tokens + DEFAULT_DECODE_TOKENS - 1) // MAX_NUM_TOKENS_STEP + 1) * MAX_NUM_TOKENS_STEP


class LiteRtLmPolicy(EnginePolicy):
    """docs/research/litert-lm.md: KV buffers take the compiled graph's shapes at start-up
    (LitertState::Create), sized to max_num_tokens; local (sliding) caches are their own,
    window-long buffers (TYPE_LOCAL_*_CACHE), KV-shared layers have no buffer of their own. One
    conversation per engine, on one device; the embedding and per-layer-embedding tables are CPU
    look-up models read from the mapped file (EmbeddingLookupManager), not resident."""

    id = "litert-lm"
    display_name = "LiteRT-LM (Google, on-device)"
    short_name = "LiteRT-LM"
    aliases = ("litert", "litertlm", "litert_lm", "google-ai-edge")
    splits_kv_heads = False
    max_gpus = 1
    # The vision and audio executors are built only when a vision/audio backend is asked for
    # (EngineSettings::CreateDefault).
    text_only_drops_encoders = True
    input_tables_on_host = True

    def mapped_table_bytes(self, published_file_id: str) -> int | None:
        # The CPU-peak rows Google publishes fit "file - these bytes" resident (§5 of the note).
        return MAPPED_EMBEDDING_BYTES.get(published_file_id)

    def kv_cache(
        self, layout: KvLayout, prepared: Any, settings: EngineSettings, tokens: Tokens, sequences: Tokens
    ) -> KvFigures:
        # Every buffer exists from the start at its full length: nothing grows with the chat.
        return windowed_kv(layout, tokens, sequences)

    def activations(
        self, text: TextConfig, tensor_parallel: int, settings: EngineSettings, unified_memory: bool
    ) -> ActivationModel:
        return prefill_chunk_activations(
            text, PREFILL_CHUNK_TOKENS, ACTIVATION_BYTES_F16,
            f"prefill through a {PREFILL_CHUNK_TOKENS:,}-token signature (est.; the exported sizes "
            "are not published) in F16 activations, plus fp32 logits for the sampler",
        )  # fmt: skip

    def report(
        self, profile: MemoryProfile, tokens: int, sequences: int, figures: KvFigures, memory_bytes: int | None
    ) -> dict[str, Any]:
        kv_bytes = int(figures.full_attention_bytes) + int(figures.sliding_attention_bytes)
        return {
            "max_num_tokens": tokens,
            "global_cache_tokens": int(figures.full_attention_tokens),
            "local_cache_tokens": int(figures.sliding_attention_tokens),
            # What the GPU backend holds instead when the graph lacks the in-place input.
            "gpu_ping_pong_kv_bytes": GPU_PING_PONG_BANKS * kv_bytes,
        }
