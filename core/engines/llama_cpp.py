"""llama.cpp (GGUF): context padded to 256 cells, a sliding-window cache of W + n_ubatch cells."""

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
    pad,
    where,
)
from core.kv_cache import KvLayerGroup
from core.units import BYTES_PER_MIB

if TYPE_CHECKING:
    from core.estimate import MemoryProfile

# src/llama-context.cpp: n_ctx = GGML_PAD(n_ctx, 256); src/llama-kv-cache-iswa.cpp: "the SWA
# cache is always padded to 256 for performance".
CELL_PADDING = 256
# tools/server: -np -1 (auto) starts 4 slots over one unified KV pool (llama.cpp PR #16736;
# runtimes.md §3.1-3.2).
AUTO_SLOTS = 4
# Host RAM llama-server may fill as it runs (docs/research/runtime-rules.md A5): the prompt cache
# (--cache-ram, MiB) and per-slot context checkpoints of the sliding-window state (-ctxcp, one
# at most every -cms tokens). Ollama passes neither flag, so the same defaults apply there.
PROMPT_CACHE_MIB = 8192
CHECKPOINTS_PER_SLOT = 32
CHECKPOINT_MIN_SPACING_TOKENS = 8192
# ggml computes intermediate tensors in f32.
COMPUTE_BYTES = 4
# KV type names as llama.cpp prints them and -ctk/-ctv take them (common/arg.cpp kv_cache_types).
GGML_TYPE_NAMES = {
    "fp32": "f32",
    "fp16": "f16",
    "bf16": "bf16",
    "q8_0": "q8_0",
    "q4_0": "q4_0",
    "q4_1": "q4_1",
    "iq4_nl": "iq4_nl",
    "q5_0": "q5_0",
    "q5_1": "q5_1",
}


class LlamaCppPolicy(EnginePolicy):
    """engines.md, llama.cpp: full layers n_ctx_seq cells; sliding layers
    pad(min(n_ctx_seq, W x S_unified + n_ubatch), 256) cells unless --swa-full; shared layers
    reuse another layer's cache. Multi-GPU splits layers (not heads), so nothing is replicated."""

    id = "llama.cpp"
    display_name = "llama.cpp (llama-server, LM Studio)"
    short_name = "llama.cpp"
    aliases = ("llamacpp", "llama-cpp", "llama_cpp", "gguf", "llama-server")
    offload_method = "llama.cpp --fit"
    splits_kv_heads = False
    input_tables_on_host = True

    @staticmethod
    def slots(settings: EngineSettings, sequences: Tokens) -> tuple[Tokens, Any]:
        """(n_seq_max, unified) for `sequences` concurrent requests: llama-server's default
        -np auto gives 4 slots over one unified pool while they suffice; more sequences, or
        auto_slots off, mean -np = sequences, unified only with --kv-unified."""
        if not settings.auto_slots:
            return sequences, settings.kv_unified
        auto = sequences <= AUTO_SLOTS  # a bool, or a bool array on the sweep path
        return where(auto, AUTO_SLOTS, sequences), auto | settings.kv_unified

    @classmethod
    def context_cells(cls, settings: EngineSettings, tokens: Tokens, sequences: Tokens) -> tuple[Tokens, Tokens]:
        """(cells per stream, streams) for `-c tokens x sequences`: a unified cache is one
        stream of n_ctx cells; otherwise each of the n_seq_max slots gets its own stream of
        pad(n_ctx / n_seq_max, 256) cells (llama_context constructor)."""
        n_ctx = pad(tokens * sequences, CELL_PADDING)
        slots, unified = cls.slots(settings, sequences)
        return where(unified, n_ctx, pad(n_ctx // slots, CELL_PADDING)), where(unified, 1, slots)

    def kv_cache(
        self, layout: KvLayout, prepared: Any, settings: EngineSettings, tokens: Tokens, sequences: Tokens
    ) -> KvFigures:
        cells, streams = self.context_cells(settings, tokens, sequences)
        slots, unified = self.slots(settings, sequences)
        # n_ubatch never exceeds n_batch, which never exceeds n_ctx.
        n_ubatch = minimum(settings.n_ubatch, pad(tokens * sequences, CELL_PADDING))
        # A unified pool keeps a window for every slot that may use it.
        slots_per_stream = where(unified, slots, 1)

        def sliding_cells(group: KvLayerGroup) -> Tokens:
            if settings.swa_full:
                return cells
            window = (group.window_tokens or 0) * slots_per_stream
            return pad(minimum(cells, window + n_ubatch), CELL_PADDING)

        return kv_from_cells(layout, cells, sliding_cells, streams)

    def activations(
        self, text: TextConfig, tensor_parallel: int, settings: EngineSettings, unified_memory: bool
    ) -> ActivationModel:
        device, host = self.compute_buffer_bytes(text, settings)
        return ActivationModel(
            fixed_bytes=max(device, host) if unified_memory else device,
            bytes_per_sequence=text.vocab_size * LOGIT_BYTES,  # output buffer: one row per sequence
            basis=(
                "compute buffer of the n_ubatch-token graph llama.cpp reserves (estimate): f32 "
                "activations of the largest layer; the fp32 logits of the tied output matrix are "
                "computed where token_embd lives, in host memory (counted only on unified "
                "memory, where ggml reuses one buffer for both); plus one logit row per sequence"
            ),
        )

    @staticmethod
    def compute_buffer_bytes(text: TextConfig, settings: EngineSettings) -> tuple[int, int]:
        """(device buffer, host buffer) of the graph llama.cpp reserves for n_ubatch tokens.
        ggml-alloc reuses memory once a tensor's last reader has run, so the device peak is the
        largest layer's working set; the output matmul runs on the host backend (token_embd,
        tied to the output, is kept in host memory) and needs n_ubatch rows of fp32 logits
        beside the final hidden states."""
        device = settings.n_ubatch * forward_values_per_token(text, 1) * COMPUTE_BYTES
        host = settings.n_ubatch * (text.vocab_size * LOGIT_BYTES + text.hidden_size * COMPUTE_BYTES)
        return device, host

    def report(
        self, profile: MemoryProfile, tokens: int, sequences: int, figures: KvFigures, memory_bytes: int | None
    ) -> dict[str, Any]:
        layout, settings = profile.kv_layout, profile.settings
        cells, streams = self.context_cells(settings, tokens, sequences)
        full_layers = sum(g.layer_count for g in layout.groups if g.window_tokens is None)
        sliding_layers = sum(g.layer_count for g in layout.groups if g.window_tokens is not None)
        full_mib = figures.full_attention_bytes / BYTES_PER_MIB
        sliding_mib = figures.sliding_attention_bytes / BYTES_PER_MIB
        kv_type = GGML_TYPE_NAMES.get(layout.kv_cache_id, layout.kv_cache_id)
        device_bytes, host_bytes = self.compute_buffer_bytes(profile.model.config.text_config, settings)

        def line(mib: float, cache_cells: int, layers: int) -> str:
            # src/llama-kv-cache.cpp's start-up line (K and V are the same size here).
            return (
                f"llama_kv_cache: size = {mib:7.2f} MiB ({cache_cells:6d} cells, {layers:3d} layers, "
                f"{streams:2d}/{int(self.slots(settings, sequences)[0])} seqs), K ({kv_type}): {mib / 2:7.2f} MiB, "
                f"V ({kv_type}): {mib / 2:7.2f} MiB"
            )

        # The mmproj file (encoders) is a separate context that --fit does not count.
        encoders = ("vision", "audio")
        model_device = sum(w.bytes for w in profile.weights if w.placement == "accelerator" and w.component not in encoders)
        kv_bytes = figures.full_attention_bytes + figures.sliding_attention_bytes
        slots = int(self.slots(settings, sequences)[0])
        # A checkpoint holds one slot's sliding-window cache: pad(W + n_ubatch, 256) cells.
        sliding_per_cell = sum(b for g, b in zip(layout.groups, layout.bytes_per_token) if g.window_tokens is not None)
        window = max((g.window_tokens or 0) for g in layout.groups) if layout.groups else 0
        checkpoint = sliding_per_cell * pad(min(int(cells), window + settings.n_ubatch), CELL_PADDING)
        checkpoints = min(CHECKPOINTS_PER_SLOT, int(cells) // CHECKPOINT_MIN_SPACING_TOKENS)
        return {
            "host_prompt_cache_max_mib": PROMPT_CACHE_MIB,
            "context_checkpoints_max_mib": round(slots * checkpoints * checkpoint / BYTES_PER_MIB, 2),
            "model_buffer_device_mib": round(model_device / BYTES_PER_MIB, 2),
            "model_buffer_host_mib": round(profile.host_bytes / BYTES_PER_MIB, 2),
            # common/fit.cpp: "projected to use N MiB of device memory" = model + context +
            # compute on the GPUs, host buffers excluded (docs/research/runtime-rules.md A1).
            "fit_projected_mib": int((model_device + kv_bytes + device_bytes) // BYTES_PER_MIB),
            "n_ctx": int(cells * streams),
            "n_ctx_seq": int(cells),
            "streams": int(streams),
            "n_ubatch": settings.n_ubatch,
            "n_seq_max": int(self.slots(settings, sequences)[0]),
            "kv_unified": bool(self.slots(settings, sequences)[1]),
            "swa_full": settings.swa_full,
            "full_attention_cells": int(figures.full_attention_tokens),
            "sliding_attention_cells": int(figures.sliding_attention_tokens),
            "full_attention_mib": round(full_mib, 2),
            "sliding_attention_mib": round(sliding_mib, 2),
            "compute_buffer_bytes": int(profile.activations.fixed_bytes),
            "compute_buffer_device_bytes": device_bytes,
            "compute_buffer_host_bytes": host_bytes,
            "log_lines": [
                line(full_mib, int(figures.full_attention_tokens), full_layers),
                line(sliding_mib, int(figures.sliding_attention_tokens), sliding_layers),
            ],
        }
