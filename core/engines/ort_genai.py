"""ONNX Runtime GenAI: a KV cache preallocated to search.max_length, sliding layers windowed on CUDA and the CPU only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.architecture import TextConfig
from core.engines.base import (
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
)
from core.engines.transformers_js import GRAPH_KV_CACHE

if TYPE_CHECKING:
    from core.catalog import Accelerator
    from core.estimate import MemoryProfile

# src/models/windowed_kv_cache.cpp ComputeWindowedKvCacheSize (OGA @a0c04eb1): a sliding layer's
# cache is window + max(chunk_size - 1, cache_slack), capped at max_length, on the CUDA and CPU
# providers only (and NvTensorRtRtx: the window alone); cache_slack defaults to 0 on CUDA and 16
# on the CPU. Every other provider (DirectML, WebGPU, ...) keeps max_length in every layer.
WINDOW_SLACK_TOKENS = {"cuda": 0, "cpu": 16}
# search.max_length: "If omitted or 0 in json file, will be set to model.context_length on load"
# (src/config.h; src/config.cpp Config::Config).
MAX_LENGTH_SETTING = "search.max_length"


def execution_provider(settings: EngineSettings, accelerator: Accelerator | None) -> str:
    """The provider a plan runs on: the one set, else CUDA on NVIDIA (and with no device), else the CPU."""
    if settings.execution_provider != "auto":
        return settings.execution_provider
    if accelerator is None or accelerator.platform == "nvidia":
        return "cuda"
    return "cpu"


class OrtGenAiPolicy(EnginePolicy):
    """docs/research/browser-onnx.md §4: with past_present_share_buffer (Gemma 4's genai_config
    sets it; one beam) every KV-owning layer is one buffer of max_length tokens allocated at
    start-up; the windowed cache gives sliding layers window + slack instead, on CUDA and CPU.
    KV-shared layers have no past_key_values input, so no cache. One device per process."""

    id = "onnxruntime-genai"
    display_name = "ONNX Runtime GenAI (onnxruntime-genai)"
    short_name = "ONNX Runtime GenAI"
    aliases = ("ort-genai", "onnxruntime_genai", "oga", "onnx-genai", "onnx runtime genai")
    splits_kv_heads = False
    max_gpus = 1
    duplicates_tied_head = True

    def graph_kv_cache(self, weight_format_id: str) -> str | None:
        return GRAPH_KV_CACHE.get(weight_format_id)

    def device_settings(self, settings: EngineSettings, accelerator: Accelerator | None) -> EngineSettings:
        provider = execution_provider(settings, accelerator)
        if provider == settings.execution_provider:
            return settings
        return settings.model_copy(update={"execution_provider": provider})

    def kv_cache(
        self, layout: KvLayout, prepared: Any, settings: EngineSettings, tokens: Tokens, sequences: Tokens
    ) -> KvFigures:
        slack = WINDOW_SLACK_TOKENS.get(settings.execution_provider)
        if slack is None:
            return kv_from_cells(layout, tokens, lambda group: tokens, sequences)
        return kv_from_cells(layout, tokens, lambda group: minimum(tokens, (group.window_tokens or 0) + slack), sequences)

    def activations(
        self, text: TextConfig, tensor_parallel: int, settings: EngineSettings, unified_memory: bool
    ) -> ActivationModel:
        return ActivationModel(
            bytes_per_token=forward_values_per_token(text, 1) * 2,
            bytes_per_sequence=text.vocab_size * LOGIT_BYTES,
            basis=(
                "the whole prompt in one run (est., fp16 values) and fp32 logits of the last position; "
                "the shared KV buffer is written in place (no step copy)"
            ),
        )

    def report(
        self, profile: MemoryProfile, tokens: int, sequences: int, figures: KvFigures, memory_bytes: int | None
    ) -> dict[str, Any]:
        trained = profile.model.max_context_tokens
        default = self.kv_cache(profile.kv_layout, None, profile.settings, trained, sequences)
        default_bytes = int(default.full_attention_bytes) + int(default.sliding_attention_bytes)
        planned_bytes = int(figures.full_attention_bytes) + int(figures.sliding_attention_bytes)
        return {
            "execution_provider": profile.settings.execution_provider,
            "max_length": tokens,
            "default_max_length": trained,
            "sliding_cache_tokens": int(figures.sliding_attention_tokens),
            "kv_bytes_at_default_max_length": default_bytes,
            "kv_bytes_saved_by_max_length": max(0, default_bytes - planned_bytes),
            "notes": [
                f"ONNX Runtime GenAI preallocates the KV cache to {MAX_LENGTH_SETTING}; left unset (or 0) it is "
                f"the model's context_length, {trained:,} tokens (src/config.cpp). Setting "
                f"{MAX_LENGTH_SETTING}={tokens:,} (-l {tokens} in the examples) holds this plan's cache"
                + (
                    f" and saves {max(0, default_bytes - planned_bytes) / 2**30:,.2f} GiB against the default"
                    if default_bytes > planned_bytes
                    else ""
                ),
                (
                    f"{profile.settings.execution_provider.upper()}: sliding layers keep their window"
                    + (f" + {WINDOW_SLACK_TOKENS[profile.settings.execution_provider]}" if WINDOW_SLACK_TOKENS.get(profile.settings.execution_provider) else "")
                    + " (windowed_kv_cache.cpp)"
                    if profile.settings.execution_provider in WINDOW_SLACK_TOKENS
                    else f"{profile.settings.execution_provider}: every layer keeps max_length tokens "
                    "(only CUDA and the CPU window sliding layers)"
                ),
            ],
        }
