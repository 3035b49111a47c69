"""mistral.rs: a PagedAttention pool of 90% of VRAM on CUDA with every layer at full length; growing per-sequence caches on Metal and the CPU."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from core.architecture import FULL, TextConfig, decoder_layers
from core.engines.base import (
    LOGIT_BYTES,
    ActivationModel,
    EnginePolicy,
    EngineSettings,
    KvFigures,
    KvLayout,
    Tokens,
    forward_values_per_token,
    minimum,
    pad,
)
from core.kv_cache import TENSORS_PER_LAYER
from core.units import BYTES_PER_MIB as MIB

if TYPE_CHECKING:
    from core.catalog import Accelerator, ModelSpec
    from core.estimate import MemoryProfile

# Every rule below was read in EricLBuehler/mistral.rs @9e92262 (v0.9.2-7); the files and lines
# are in docs/research/mistralrs-vllm-metal.md §1.
# paged_attention/mod.rs: DEFAULT_PAGED_ATTENTION_BLOCK_SIZE.
PA_BLOCK_TOKENS = 32
# device_memory_cap: 2% of free VRAM, at least 512 MiB, stays free.
GPU_RESERVE_FRACTION = 0.02
GPU_MIN_RESERVE_BYTES = 512 * MIB
# kv_cache/single_cache.rs and rotating_cache.rs: CACHE_GROW_SIZE; a rotating cache holds at most
# its window + one step.
CACHE_GROW_TOKENS = 512
# The automatic device map's parameters when `--max-seq-len` / `--max-batch-size` are not given
# (AutoDeviceMapParams::DEFAULT_MAX_SEQ_LEN = 4 * 1024, DEFAULT_MAX_BATCH_SIZE = 1,
# DEFAULT_MAX_NUM_IMAGES = 1): the launch command leaves them there (see activation_reservation).
DEVICE_MAP_MAX_SEQ_LEN = 4096
DEVICE_MAP_MAX_BATCH = 1
DEVICE_MAP_MAX_IMAGES = 1
# Gemma4Loader::mapped_max_act_size_elems: vision_soft_tokens_per_image (default 280) per image
# and 750 tokens when the model has an audio tower.
IMAGE_TOKENS = 280
AUDIO_TOKENS = 750
NO_BLOCKS_ERROR = (
    "Num GPU blocks is 0. This means there is not enough memory. Either reduce the memory "
    "amount/utilization/context size or disable PagedAttention."
)


def mistralrs_device(settings: EngineSettings, accelerator: Accelerator | None) -> str:
    """The device a plan runs on: the one set, else CUDA on NVIDIA (and with no device), Metal on
    Apple, and the CPU anywhere else (mistral.rs builds for CUDA, Metal and the CPU only)."""
    if settings.mistralrs_device != "auto":
        return settings.mistralrs_device
    if accelerator is None or accelerator.platform == "nvidia":
        return "cuda"
    if accelerator.platform == "apple":
        return "metal"
    return "cpu"


def activation_reservation_bytes(model: ModelSpec, max_seq_len: int = DEVICE_MAP_MAX_SEQ_LEN) -> int:
    """What the automatic device map reserves for Gemma 4's activations: max_batch_size x
    num_attention_heads x S^2 bf16 values, S = max_seq_len + 280 per image + 750 with audio
    (mapped_max_act_size_elems). Unlike the other loaders Gemma 4's does not cap S at the
    1,024-row attention chunk, so it grows with the square of --max-seq-len."""
    text = model.config.text_config
    tokens = max_seq_len
    if model.config.vision_config is not None:
        tokens += IMAGE_TOKENS * DEVICE_MAP_MAX_IMAGES
    if model.takes_audio:
        tokens += AUDIO_TOKENS
    return DEVICE_MAP_MAX_BATCH * text.num_attention_heads * tokens * tokens * 2


class MistralRsPolicy(EnginePolicy):
    """docs/research/mistralrs-vllm-metal.md §1. CUDA (PagedAttention on by default): after
    loading, the pool takes floor(0.9 x total VRAM - VRAM in use) - the device map's activation
    reservation, capped so 2% of free VRAM (at least 512 MiB) stays free; every layer, the
    KV-shared ones included, holds 32-token blocks for the whole sequence (no window). Metal and
    the CPU (no PagedAttention): each sequence's caches grow in 512-token steps; full layers and
    the sliding layer that KV-shared layers read keep every token, other sliding layers at most
    window + 512, KV-shared layers none. ISQ quantises while loading (core.isq)."""

    id = "mistral.rs"
    display_name = "mistral.rs"
    short_name = "mistral.rs"
    aliases = ("mistralrs", "mistral-rs", "mistral_rs", "mrs")
    splits_kv_heads = False
    max_gpus = 1
    # Gemma 4 is a multimodal pipeline: the vision and audio towers load whatever the request
    # ("The following sub-models will not be device mapped and will be loaded on ...: vision, audio").
    text_only_drops_encoders = False
    quantises_on_load = True

    def device_settings(self, settings: EngineSettings, accelerator: Accelerator | None) -> EngineSettings:
        device = mistralrs_device(settings, accelerator)
        # --paged-attn auto: on for CUDA, off on Metal and the CPU (PAGED_ATTN_CUDA/METAL/CPU).
        paged = settings.paged_attention
        if paged == "auto":
            paged = "on" if device == "cuda" else "off"
        if device == settings.mistralrs_device and paged == settings.paged_attention:
            return settings
        return settings.model_copy(update={"mistralrs_device": device, "paged_attention": paged})

    def load_dtype_bytes(self, settings: EngineSettings) -> int:
        # --dtype auto loads in f32 on the CPU (utils/normal.rs; the v0.9.0 CPU bench logs print
        # "DType selected is F32"), bf16 on CUDA and Metal.
        return 4 if settings.mistralrs_device == "cpu" else 2

    @staticmethod
    def paged(settings: EngineSettings) -> bool:
        return settings.paged_attention == "on"

    def caches_every_layer(self, settings: EngineSettings) -> bool:
        return self.paged(settings)

    def profile_refusal(self, profile: MemoryProfile) -> str | None:
        settings = profile.settings
        if self.paged(settings) and settings.mistralrs_device == "cpu":
            return "mistral.rs has no PagedAttention on the CPU (--paged-attn on fails there); use --paged-attn off"
        if profile.kv_cache_type.bits_per_value < 16:
            if not self.paged(settings):
                return (
                    f"mistral.rs keeps a {profile.kv_cache_type.id} KV cache only in its PagedAttention pool "
                    "(--pa-cache-type f8e4m3); without PagedAttention (Metal and the CPU by default) the cache "
                    "is in the model's dtype. Turn PagedAttention on (CUDA, or --paged-attn on on Metal)"
                )
            accelerator = profile.accelerator
            if settings.mistralrs_device == "cuda" and accelerator is not None and accelerator.architecture in (
                "turing", "volta", "pascal"
            ):
                return (
                    "mistral.rs's f8e4m3 PagedAttention cache needs CUDA compute capability 8.0 or newer "
                    f"(cache_engine.rs); the {accelerator.name} is older"
                )
        return None

    # --- KV cache -----------------------------------------------------------------------------

    def kv_cache(
        self, layout: KvLayout, prepared: Any, settings: EngineSettings, tokens: Tokens, sequences: Tokens
    ) -> KvFigures:
        if self.paged(settings):
            # Every layer keeps a block for every token of its sequence (layer_has_paged_kv_cache
            # is not overridden for Gemma 4; the pool is not windowed).
            held = pad(tokens, PA_BLOCK_TOKENS)
            full_bytes: Tokens = 0
            sliding_bytes: Tokens = 0
            for group, bytes_per_token in zip(
                layout.groups + layout.shared_groups, layout.bytes_per_token + layout.shared_bytes_per_token
            ):
                if group.attention == FULL:
                    full_bytes = full_bytes + bytes_per_token * held * sequences
                else:
                    sliding_bytes = sliding_bytes + bytes_per_token * held * sequences
            return KvFigures(full_bytes, sliding_bytes, held, held)
        grown = pad(tokens, CACHE_GROW_TOKENS)
        # The sliding layer KV-shared layers read is a Normal (non-rotating) cache like a full
        # layer's: one per model, the last non-shared sliding layer (kv_shared_layer_index).
        donor_group = None
        if any(group.attention != FULL for group in layout.shared_groups):
            donor_group = max(
                (i for i, group in enumerate(layout.groups) if group.attention != FULL), default=None
            )
        full_bytes = 0
        sliding_bytes = 0
        sliding_tokens: Tokens = 0
        for index, (group, bytes_per_token) in enumerate(zip(layout.groups, layout.bytes_per_token)):
            if group.window_tokens is None:
                full_bytes = full_bytes + bytes_per_token * grown * sequences
                continue
            sliding_tokens = minimum(grown, group.window_tokens + CACHE_GROW_TOKENS)
            per_layer = bytes_per_token / group.layer_count
            rotating_layers = group.layer_count - (index == donor_group)
            sliding_bytes = sliding_bytes + (
                per_layer * rotating_layers * sliding_tokens + per_layer * (index == donor_group) * grown
            ) * sequences
        return KvFigures(full_bytes, sliding_bytes, grown, sliding_tokens)

    # --- Working memory -----------------------------------------------------------------------

    def activations(
        self, text: TextConfig, tensor_parallel: int, settings: EngineSettings, unified_memory: bool
    ) -> ActivationModel:
        return self._growing_cache_activations(text, settings)

    def model_activations(
        self, model: ModelSpec, tensor_parallel: int, settings: EngineSettings, unified_memory: bool
    ) -> ActivationModel:
        text = model.config.text_config
        if not self.paged(settings):
            return self._growing_cache_activations(text, settings)
        reservation = activation_reservation_bytes(model)
        return ActivationModel(
            fixed_bytes=reservation,
            basis=(
                f"the automatic device map's activation reservation, taken out of the PagedAttention pool: "
                f"{text.num_attention_heads} heads x ({DEVICE_MAP_MAX_SEQ_LEN:,} tokens + one image's "
                f"{IMAGE_TOKENS}" + (f" + a clip's {AUDIO_TOKENS}" if model.takes_audio else "")
                + ")^2 x 2 B (Gemma4Loader::mapped_max_act_size_elems at --max-seq-len 4096 "
                "--max-batch-size 1); prefill runs in 4,096-token chunks inside it and the 10% the pool leaves"
            ),
        )

    def _growing_cache_activations(self, text: TextConfig, settings: EngineSettings) -> ActivationModel:
        """Without PagedAttention the default scheduler runs a whole prompt in one pass (no
        token budget), in the activation dtype (f32 on the CPU); a cache that grows copies its
        old buffer into the new one, so one layer's cache is briefly there twice."""
        activation_bytes = self.load_dtype_bytes(settings)  # activations run in the load dtype
        largest_layer_kv = max(
            TENSORS_PER_LAYER * layer.num_kv_heads * layer.head_dim * 2
            for layer in decoder_layers(text)
            if layer.owns_kv_cache
        )
        return ActivationModel(
            bytes_per_token=forward_values_per_token(text, 1) * activation_bytes + largest_layer_kv,
            bytes_per_sequence=text.vocab_size * LOGIT_BYTES,
            basis=(
                f"the whole prompt in one pass ({activation_bytes}-byte activations of the largest layer; "
                "est.: the default scheduler sets no token budget), one layer's cache copied as it grows, "
                "and fp32 logits per sequence"
            ),
        )

    # --- PagedAttention pool (CUDA) -----------------------------------------------------------

    @staticmethod
    def _used_after_load(profile: MemoryProfile) -> int:
        """total - free after loading: the driver's reserve, the CUDA context and the weights."""
        return profile.allowance.driver_reserved_bytes + profile.overhead_bytes + profile.weights_bytes

    def pool_bytes(self, profile: MemoryProfile, memory_bytes: int) -> int:
        """The PagedAttention pool in whole MiB, as calculate_cache_config sizes it: the tokens
        asked for (--pa-context-len; on CUDA a request over what is safely available is a start
        error), else a share of total memory less what is in use, capped by what is safely
        available on CUDA and by the trained context's worth on Metal."""
        pool = self.requested_pool_bytes(profile)
        if pool is None:
            used = self._used_after_load(profile)
            pool_mib = max(math.floor(memory_bytes / MIB * profile.settings.pa_memory_fraction - used / MIB), 0)
            pool = max(pool_mib - math.ceil(profile.activations.fixed_bytes / MIB), 0) * MIB
            if profile.settings.mistralrs_device != "metal":
                pool = min(pool, self.safely_available_bytes(profile, memory_bytes))
        if profile.settings.mistralrs_device == "metal":
            # No post-load cap on Metal, but at most the model's max_seq_len worth of tokens
            # ("Metal: capping KV cache from ... MB").
            trained = profile.model.max_context_tokens
            pool = min(pool, math.floor(trained * self.bytes_per_token_all_layers(profile.kv_layout) / MIB) * MIB)
        return pool

    def requested_pool_bytes(self, profile: MemoryProfile) -> int | None:
        """--pa-context-len N: ceil(N x bytes per token of every layer / MiB) MiB (ctxt_to_blocks,
        then div_ceil(SIZE_IN_MB)); None when the pool is a share of VRAM."""
        tokens = profile.settings.pa_context_tokens
        if tokens is None:
            return None
        return math.ceil(tokens * self.bytes_per_token_all_layers(profile.kv_layout) / MIB) * MIB

    def safely_available_bytes(self, profile: MemoryProfile, memory_bytes: int) -> int:
        """What calculate_cache_config lets a pool take on CUDA after loading: free less
        max(2% of it, 512 MiB), less the activation reservation, in whole MiB."""
        free = max(memory_bytes - self._used_after_load(profile), 0)
        capped = free - min(free, max(int(free * GPU_RESERVE_FRACTION), GPU_MIN_RESERVE_BYTES))
        return max(capped - int(profile.activations.fixed_bytes), 0) // MIB * MIB

    def usable_bytes(self, profile: MemoryProfile, memory_bytes: int, driver_reserved_bytes: int) -> int:
        """With PagedAttention: what is in use after loading, the activation reservation and the
        pool, which mistral.rs fills at start-up; without it, what the device offers."""
        available = memory_bytes - driver_reserved_bytes
        if not self.paged(profile.settings):
            return available
        claimed = (
            self._used_after_load(profile) - driver_reserved_bytes
            + profile.activations.fixed_bytes
            + self.pool_bytes(profile, memory_bytes)
        )
        return min(claimed, available)

    def start_shortfall_bytes(self, profile: MemoryProfile, tokens: Tokens, memory_bytes: int | None) -> Tokens:
        """With PagedAttention mistral.rs refuses to start when the pool holds no block ("Num GPU
        blocks is 0"): the bytes one block lacks. A pool too small for the request is the fit's
        total to catch (the scheduler waits or preempts; it does not stop the server)."""
        if not self.paged(profile.settings) or memory_bytes is None:
            return 0
        requested = self.requested_pool_bytes(profile)
        if requested is not None and profile.settings.mistralrs_device == "cuda":
            return max(requested - self.safely_available_bytes(profile, memory_bytes), 0)
        block_bytes = math.ceil(self.bytes_per_token_all_layers(profile.kv_layout) * PA_BLOCK_TOKENS)
        return max(block_bytes - self.pool_bytes(profile, memory_bytes), 0)

    def start_error(self, profile: MemoryProfile, tokens: int, memory_bytes: int | None) -> str | None:
        if not self.start_shortfall_bytes(profile, tokens, memory_bytes):
            return None
        requested = self.requested_pool_bytes(profile)
        if requested is not None and profile.settings.mistralrs_device == "cuda":
            available = self.safely_available_bytes(profile, memory_bytes or 0)
            # fit_post_load_cache_budget's words (paged_attention/mod.rs).
            return (
                f"PagedAttention KV cache requires {requested // MIB} MB but only {available // MIB} MB is "
                "safely available after model loading."
            )
        return NO_BLOCKS_ERROR

    @staticmethod
    def bytes_per_token_all_layers(layout: KvLayout) -> float:
        """One token of the pool: every layer's K and V (total_kv_cache_elements_per_token x dtype)."""
        return sum(layout.bytes_per_token) + sum(layout.shared_bytes_per_token)

    def report(
        self, profile: MemoryProfile, tokens: int, sequences: int, figures: KvFigures, memory_bytes: int | None
    ) -> dict[str, Any]:
        settings = profile.settings
        report: dict[str, Any] = {
            "device": settings.mistralrs_device,
            "paged_attention": self.paged(settings),
            "load_dtype": "f32" if self.load_dtype_bytes(settings) == 4 else "bf16",
        }
        notes = [
            "mistral.rs's --max-seq-len / --max-batch-size only size the automatic device map; for Gemma 4 "
            "its activation reservation grows with their square (heads x (max_seq_len + media tokens)^2 x 2 B), "
            "so the launch command leaves them at 4,096 x 1"
        ]
        if profile.weight_format.isq_type is not None:
            params = profile.params
            # One embedding table (an untied model counts its head in token_embedding too).
            table = params.input_embedding_lookup or params.token_embedding
            largest = 2 * max(params.per_layer_embedding, table)
            where = "in unified memory, beside the model" if settings.mistralrs_device != "cuda" else "in host RAM (ISQ loads to the CPU on a discrete GPU)"
            report["isq_load_transient_bytes"] = largest
            notes.append(
                f"While loading, ISQ quantises one tensor at a time from its bf16 copy: the largest, "
                f"{largest / 1e9:,.2f} GB ({'the PLE table' if params.per_layer_embedding * 2 == largest else 'the token embedding'}), "
                f"is briefly there {where} (isq_flow/plan.rs; not measured)"
            )
        if not self.paged(settings):
            report |= {
                "cache_grow_tokens": CACHE_GROW_TOKENS,
                "full_cache_tokens": int(figures.full_attention_tokens),
                "sliding_cache_tokens": int(figures.sliding_attention_tokens),
            }
            notes.append(
                "no PagedAttention: each sequence's caches grow in 512-token steps as it runs, full layers "
                "(and the sliding layer KV-shared layers read) to the whole sequence, other sliding layers to "
                "window + 512"
            )
            report["notes"] = notes
            return report
        per_token = self.bytes_per_token_all_layers(profile.kv_layout)
        block_bytes = per_token * PA_BLOCK_TOKENS
        report |= {
            "block_size": PA_BLOCK_TOKENS,
            "kv_bytes_per_token_all_layers": per_token,
            "activation_reservation_bytes": int(profile.activations.fixed_bytes),
            "pa_memory_fraction": settings.pa_memory_fraction,
        }
        if memory_bytes is None:
            report["notes"] = notes
            return report
        pool = self.pool_bytes(profile, memory_bytes)
        blocks = int(pool // block_bytes)
        capacity = blocks * PA_BLOCK_TOKENS
        held = pad(tokens, PA_BLOCK_TOKENS)
        dtype = {8: "F8E4M3"}.get(int(profile.kv_cache_type.bits_per_value), "BF16")
        reserved_mib = math.ceil(profile.activations.fixed_bytes / MIB)
        report |= {
            "kv_cache_memory_bytes": pool,
            "num_blocks": blocks,
            "kv_cache_tokens": capacity,
            "max_concurrency": capacity / held if held else 0.0,
            "log_lines": (
                [f"Reserving {reserved_mib} MB on the primary device for runtime components and activations."]
                + (
                    [
                        f"Allocating {pool // MIB} MB for PagedAttention KV cache per GPU",
                        f"PagedAttention KV cache type is {dtype}",
                        f"Using PagedAttention with block size {PA_BLOCK_TOKENS} and {blocks} GPU blocks: "
                        f"available context length is {capacity} tokens",
                    ]
                    if blocks
                    else [f"Error: {NO_BLOCKS_ERROR}"]
                )
            ),
        }
        if not blocks:
            report["kv_cache_verdict"] = "no_room"
        notes.append(
            "PagedAttention: every layer, KV-shared ones included, keeps 32-token blocks for the whole "
            "sequence (no sliding window), in one pool shared by all sequences"
        )
        report["notes"] = notes
        return report

