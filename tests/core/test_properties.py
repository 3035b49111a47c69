"""Hypothesis properties: monotone memory, shared layers add no KV, vectorised == scalar."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.architecture import ModelConfig
from core.catalog import load_catalog
from core.estimate import MemoryRequest, estimate
from core.kv_cache import kv_layer_groups
from core.sweep import sweep

CATALOG = load_catalog()
MODELS = [m.id for m in CATALOG.models]
TRANSFORMERS_FORMATS = [f.id for f in CATALOG.weight_formats if "transformers" in f.engines]
TRANSFORMERS_KV = [k.id for k in CATALOG.kv_cache_types if "transformers" in k.engines]
GPUS = [a.id for a in CATALOG.accelerators]
# Where transformers loads every format it knows (the sweep property is not about support):
# CUDA GPUs of compute capability 8.9 or later, which have its FP8 kernels
# (tests/core/test_runtimes.py covers the rest).
CUDA_FP8 = [a.id for a in CATALOG.accelerators if a.platform == "nvidia" and a.architecture in ("ada", "hopper", "blackwell")]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def requests(draw, max_sequences=64):
    model = CATALOG.model(draw(st.sampled_from(MODELS)))
    heads = model.config.text_config.num_attention_heads
    return MemoryRequest(
        model=model.id,
        weight_format=draw(st.sampled_from(TRANSFORMERS_FORMATS)),
        kv_cache_dtype=draw(st.sampled_from(TRANSFORMERS_KV)),
        context_tokens=draw(st.integers(1, model.max_context_tokens // 2)),
        concurrent_sequences=draw(st.integers(1, max_sequences)),
        images=draw(st.integers(0, 4)),
        image_tokens=draw(st.sampled_from([70, 140, 280, 560, 1120])),
        audio_seconds=draw(st.floats(0, 120)) if model.takes_audio else 0,
        thinking_tokens=draw(st.integers(0, 4000)),
        ple_on_host=draw(st.booleans()),
        gpus=draw(st.sampled_from([n for n in (1, 2, 4, 8) if heads % n == 0])),
    )


@SETTINGS
@given(requests(), st.integers(1, 50_000))
def test_memory_never_falls_as_context_rises(request, more):
    limit = CATALOG.model(request.model).max_context_tokens
    longer = request.model_copy(update={"context_tokens": request.context_tokens + more})
    base = estimate(request)
    if base.sequence_tokens + more > limit:
        return
    grown = estimate(longer)
    assert grown.total_bytes >= base.total_bytes
    assert grown.kv_cache_bytes >= base.kv_cache_bytes


@SETTINGS
@given(requests(), st.integers(1, 64))
def test_memory_never_falls_as_sequences_rise(request, more):
    base = estimate(request)
    grown = estimate(request.model_copy(update={"concurrent_sequences": request.concurrent_sequences + more}))
    assert grown.total_bytes >= base.total_bytes
    assert grown.kv_cache_bytes >= base.kv_cache_bytes


@SETTINGS
@given(requests(), st.sampled_from(TRANSFORMERS_FORMATS), st.sampled_from(TRANSFORMERS_FORMATS))
def test_more_bits_never_means_less_memory(request, first, second):
    a, b = CATALOG.weight_format(first), CATALOG.weight_format(second)
    groups = ("linear", "experts", "projection", "token_embedding", "per_layer_embedding", "norm", "router", "encoder")
    if not all(a.bits_for(g) >= b.bits_for(g) for g in groups):
        return
    wide = estimate(request.model_copy(update={"weight_format": first}))
    narrow = estimate(request.model_copy(update={"weight_format": second}))
    assert wide.weights_bytes >= narrow.weights_bytes
    assert wide.total_bytes >= narrow.total_bytes


@SETTINGS
@given(requests())
def test_more_kv_bits_never_means_less_memory(request):
    by_bits = sorted(TRANSFORMERS_KV, key=lambda k: CATALOG.kv_cache_type(k).bits_per_value)
    totals = [estimate(request.model_copy(update={"kv_cache_dtype": k})).kv_cache_bytes for k in by_bits]
    assert totals == sorted(totals)


def _without_shared_layers(model_id: str) -> ModelConfig:
    """The same network cut after its last cache-owning layer: no KV-shared layers at all."""
    config = CATALOG.model(model_id).config
    text = config.text_config
    owners = text.num_hidden_layers - text.num_kv_shared_layers
    types = list(text.resolved_layer_types()[:owners])
    trimmed = text.model_copy(
        update={"num_hidden_layers": owners, "layer_types": tuple(types), "num_kv_shared_layers": 0}
    )
    return config.model_copy(update={"text_config": trimmed})


@SETTINGS
@given(st.sampled_from(["gemma-4-e2b", "gemma-4-e4b"]), st.integers(1, 131_072))
def test_shared_layers_add_no_kv(model_id, tokens):
    full = kv_layer_groups(CATALOG.model(model_id).config.text_config)
    trimmed = kv_layer_groups(_without_shared_layers(model_id).text_config)
    bytes_full = sum(g.bytes_per_token(16) * (tokens if g.window_tokens is None else min(tokens, g.window_tokens - 1)) for g in full)
    bytes_trimmed = sum(g.bytes_per_token(16) * (tokens if g.window_tokens is None else min(tokens, g.window_tokens - 1)) for g in trimmed)
    assert bytes_full == bytes_trimmed
    assert sum(g.layer_count for g in full) == sum(g.layer_count for g in trimmed)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from(MODELS), min_size=1, max_size=2, unique=True),
    st.lists(st.sampled_from(TRANSFORMERS_FORMATS), min_size=1, max_size=2, unique=True),
    st.lists(st.integers(1, 262_144), min_size=1, max_size=5, unique=True),
    st.lists(st.integers(1, 256), min_size=1, max_size=3, unique=True),
    st.sampled_from([None, *CUDA_FP8]),
    st.integers(0, 3),
    st.integers(0, 2000),
)
def test_vectorised_sweep_equals_scalar_estimate(models, formats, contexts, batches, gpu, images, thinking):
    frame = sweep(models, formats, TRANSFORMERS_KV, contexts, batches, gpu=gpu, images=images, thinking_tokens=thinking)
    expected_rows = 0
    for model_id in models:
        limit = CATALOG.model(model_id).max_context_tokens
        expected_rows += len(formats) * len(TRANSFORMERS_KV) * len(batches) * sum(
            1 for t in contexts if t + images * 282 + thinking <= limit
        )
    assert len(frame) == expected_rows
    for row in frame.sample(n=min(len(frame), 8), random_state=0).itertuples():
        scalar = estimate(
            MemoryRequest(
                model=row.model,
                weight_format=row.weight_format,
                kv_cache_dtype=row.kv_cache_dtype,
                context_tokens=row.context_tokens,
                concurrent_sequences=row.concurrent_sequences,
                images=images,
                thinking_tokens=thinking,
                gpu=gpu,
            )
        )
        assert row.total_bytes == scalar.total_bytes
        assert row.kv_full_attention_bytes == scalar.kv_cache.full_attention_bytes
        assert row.kv_sliding_attention_bytes == scalar.kv_cache.sliding_attention_bytes
        assert row.activations_bytes == scalar.activations_bytes
        assert row.weights_bytes == scalar.weights_bytes
        assert row.naive_kv_cache_bytes == scalar.naive_kv_cache_bytes
        assert row.sequence_tokens == scalar.sequence_tokens


@given(
    fixed=st.integers(-(2**40), 2**40),
    per_unit=st.integers(1, 2**30),
    block=st.sampled_from([1, 16, 32, 256, 512, 4096]),
    window=st.integers(0, 4096),
    high=st.integers(1, 300_000),
)
@settings(max_examples=300, deadline=None)
def test_the_solver_finds_what_a_scan_finds(fixed, per_unit, block, window, high):
    """core.fit._largest guesses from byte margins; its answer must be a linear scan's, for margins
    shaped like the engines' (affine, padded to blocks, flat below a sliding window)."""
    from core.fit import _largest

    def margin(n: int) -> int:
        padded = -(-max(n, window) // block) * block
        return fixed - per_unit * padded

    calls = []

    def counted(n: int) -> int:
        calls.append(n)
        return margin(n)

    scan = max((n for n in range(1, high + 1) if margin(n) >= 0), default=0) if high <= 5000 else None
    if scan is None:  # too long to scan: bisection is the oracle (margins are monotone)
        low, top = 1, high
        if margin(1) < 0:
            scan = 0
        else:
            while low < top:
                middle = (low + top + 1) // 2
                low, top = (middle, top) if margin(middle) >= 0 else (low, middle - 1)
            scan = low
    assert _largest(counted, 1, high) == scan
    # The safeguard keeps it within twice bisection's evaluations.
    assert len(calls) <= 2 * (high.bit_length() + 2)
