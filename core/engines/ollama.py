"""Ollama (v0.30 and later): llama-server underneath, with its own context, slots and batch rules."""

from __future__ import annotations

from typing import Any

from core.architecture import TextConfig, decoder_layers
from core.engines.base import EngineSettings, Tokens
from core.engines.llama_cpp import LlamaCppPolicy
from core.units import BYTES_PER_GIB

# Release whose source these rules were read in (docs/research/runtime-rules.md B: HEAD
# fb30760 = v0.33.0-rc2, identical to the v0.32.15 stable release in every file cited).
OLLAMA_VERSION = "0.32.15"
# server/routes.go Serve: the context when nothing sets num_ctx, by the GPUs' total memory
# ("slightly lower thresholds (47/23 GiB vs. 48/24 GiB)").
CONTEXT_TIERS = ((47 * BYTES_PER_GIB, 262_144), (23 * BYTES_PER_GIB, 32_768), (0, 4_096))
# server/sched.go getRunner: "multimodal models require at least 2048 context".
VISION_MIN_CONTEXT = 2048
# server/sched.go: generationBatchForContext and its step-down rule.
BATCH_DEFAULT, BATCH_MEDIUM, BATCH_LARGE = 512, 1024, 2048
BATCH_HEADROOM_PERCENT = {BATCH_LARGE: 60, BATCH_MEDIUM: 75}
BATCH_SURCHARGE_BYTES = {BATCH_LARGE: 2 * BYTES_PER_GIB, BATCH_MEDIUM: 768 * 2**20}
PREDICTION_THRESHOLD_PERCENT = 80


def default_num_ctx(total_vram_bytes: int, trained_context: int, vision: bool) -> int:
    """num_ctx when neither the request, the Modelfile nor OLLAMA_CONTEXT_LENGTH sets it: a tier
    of the GPUs' summed total memory, clamped to the trained context (llm/server.go)."""
    tier = next(tokens for floor, tokens in CONTEXT_TIERS if total_vram_bytes >= floor)
    # getRunner raises a vision model to 2048 first; NewLlamaServer clamps to n_ctx_train last.
    tokens = max(tier, VISION_MIN_CONTEXT) if vision else tier
    return min(tokens, trained_context)


def predicted_vram_bytes(file_bytes: int, text: TextConfig, context_total: int) -> int:
    """llm/llama_server.go PredictServerVRAM: the blob's size plus an f16 KV cache of every
    layer at full length, 2 x layers x the fewest KV heads x (hidden / most query heads). It
    ignores sliding windows and KV sharing: it only steers the batch size, not the placement."""
    kv_heads = min(layer.num_kv_heads for layer in decoder_layers(text))
    head_dim = text.hidden_size // text.num_attention_heads
    return file_bytes + 2 * text.num_hidden_layers * kv_heads * head_dim * context_total * 2


def auto_num_batch(context_total: int, predicted_bytes: int, available_bytes: int) -> int:
    """-b and -ub Ollama passes when num_batch is automatic (server/sched.go
    automaticGenerationBatch, flash attention not off): 2048 above 32,768 tokens, 1024 above
    4,096, else 512, stepping down while the prediction leaves too little room."""
    batch = BATCH_LARGE if context_total > 32_768 else BATCH_MEDIUM if context_total > 4096 else BATCH_DEFAULT
    while batch > BATCH_DEFAULT and not _batch_fits(batch, predicted_bytes, available_bytes):
        batch = BATCH_MEDIUM if batch > BATCH_MEDIUM else BATCH_DEFAULT
    return batch


def _batch_fits(batch: int, predicted: int, available: int) -> bool:
    if predicted == 0 or available == 0:
        return True
    threshold = available * PREDICTION_THRESHOLD_PERCENT // 100
    if predicted > threshold:
        return False
    if predicted > available * BATCH_HEADROOM_PERCENT[batch] // 100:
        return False
    return BATCH_SURCHARGE_BYTES[batch] <= threshold - predicted


class OllamaPolicy(LlamaCppPolicy):
    """Ollama >= 0.30 starts llama-server with -c num_ctx x OLLAMA_NUM_PARALLEL and -np
    OLLAMA_NUM_PARALLEL (so each sequence has its own cache of num_ctx cells, never the unified
    auto slots), -b = -ub = its automatic batch, and its library blobs (PLE table in BF16, vision
    and audio inside, loaded as the projector). Placement is llama-server's --fit with
    LLAMA_ARG_FIT_TARGET = projector + 1 GiB: counting the projector in the total as this planner
    does, 1 GiB stays free, as with llama-server."""

    id = "ollama"
    display_name = f"Ollama {OLLAMA_VERSION} (llama-server inside)"
    short_name = "Ollama"
    aliases = ("ollama-server", "ollama run")
    text_only_drops_encoders = False  # gemma4 blobs are passed as --mmproj whatever the request

    @staticmethod
    def slots(settings: EngineSettings, sequences: Tokens) -> tuple[Tokens, Any]:
        return sequences, False

    def report(self, profile: Any, tokens: int, sequences: int, figures: Any, memory_bytes: int | None) -> dict[str, Any]:
        report = super().report(profile, tokens, sequences, figures, memory_bytes)
        report["ollama_version"] = OLLAMA_VERSION
        report["num_ctx"] = tokens
        report["num_parallel"] = sequences
        return report
