"""KV cache: bytes per token per layer group, and the transformers policy against hand arithmetic."""

import pytest

from core.estimate import MemoryRequest, estimate
from core.kv_cache import kv_layer_groups

# gemma4-architecture.md, "KV cache bytes per token": (layers, bytes per layer per token) in bf16.
PUBLISHED_BF16 = {
    "gemma-4-e2b": {"sliding_attention": (12, 1024), "full_attention": (3, 2048)},
    "gemma-4-e4b": {"sliding_attention": (20, 2048), "full_attention": (4, 4096)},
    "gemma-4-26b-a4b": {"sliding_attention": (25, 8192), "full_attention": (5, 4096)},
    "gemma-4-31b": {"sliding_attention": (50, 16384), "full_attention": (10, 8192)},
}
WINDOW = {"gemma-4-e2b": 512, "gemma-4-e4b": 512, "gemma-4-26b-a4b": 1024, "gemma-4-31b": 1024}


@pytest.mark.parametrize("model_id", PUBLISHED_BF16)
def test_cache_owning_layers_and_bytes_per_token(catalog, model_id):
    groups = kv_layer_groups(catalog.model(model_id).config.text_config)
    found = {g.attention: (g.layer_count, g.bytes_per_token(16) / g.layer_count) for g in groups}
    assert found == PUBLISHED_BF16[model_id]


@pytest.mark.parametrize("model_id", PUBLISHED_BF16)
@pytest.mark.parametrize("tokens", [1, 200, 510, 511, 512, 513, 1023, 1024, 1025, 4096, 100_000])
def test_transformers_policy_full_t_sliding_window_minus_one(catalog, model_id, tokens):
    """engines.md: full layers hold T, sliding layers min(T, W - 1), shared layers nothing."""
    if tokens > catalog.model(model_id).max_context_tokens:
        pytest.skip("beyond the model's context")
    result = estimate(MemoryRequest(model=model_id, context_tokens=tokens))
    (sliding_layers, sliding_bpt), (full_layers, full_bpt) = PUBLISHED_BF16[model_id].values()
    sliding_tokens = min(tokens, WINDOW[model_id] - 1)
    assert result.kv_cache.full_attention_tokens == tokens
    assert result.kv_cache.sliding_attention_tokens == sliding_tokens
    assert result.kv_cache.full_attention_bytes == full_layers * full_bpt * tokens
    assert result.kv_cache.sliding_attention_bytes == sliding_layers * sliding_bpt * sliding_tokens
    assert result.kv_cache_bytes == (
        full_layers * full_bpt * tokens + sliding_layers * sliding_bpt * sliding_tokens
    )


def test_31b_worked_example_at_128k_tokens_and_four_sequences():
    # Full: 10 layers x 2 (K, V) x 4 kv heads x 512 head_dim x 2 bytes = 81,920 B per token.
    # Sliding: 50 layers x 2 x 16 x 256 x 2 = 819,200 B per token, for min(T, 1023) tokens.
    tokens, sequences = 131_072, 4
    expected = 4 * (81_920 * 131_072 + 819_200 * 1_023)  # = 46,301,839,360 B
    result = estimate(
        MemoryRequest(model="31b", context_tokens=tokens, concurrent_sequences=sequences)
    )
    assert result.kv_cache_bytes == expected == 46_301_839_360


@pytest.mark.parametrize(
    ("model_id", "low", "high"),
    # "about 5x (E models) to 11x (26B-A4B, 31B) at long context" (gemma4-architecture.md)
    [("gemma-4-e2b", 5.0, 6.0), ("gemma-4-e4b", 5.0, 5.5), ("gemma-4-26b-a4b", 11.0, 12.0), ("gemma-4-31b", 11.0, 12.0)],
)
def test_naive_calculator_overstates_by_the_published_ratio(model_id, low, high):
    result = estimate(MemoryRequest(model=model_id, context_tokens=131_072))
    ratio = result.naive_kv_cache_bytes / result.kv_cache_bytes
    assert low <= ratio <= high


def test_naive_kv_is_every_layer_full_attention():
    # 31B: 60 layers x 2 x 16 kv heads x 256 x 2 bytes = 983,040 B per token
    result = estimate(MemoryRequest(model="31b", context_tokens=1000, concurrent_sequences=3))
    assert result.naive_kv_cache_bytes == 983_040 * 1000 * 3


def test_kv_shared_layers_hold_nothing(catalog):
    result = estimate(MemoryRequest(model="e4b", context_tokens=10_000))
    assert result.kv_cache.shared_layers == 18
    assert result.kv_cache.full_attention_layers + result.kv_cache.sliding_attention_layers == 24


def test_tensor_parallel_replicates_kv_heads_below_the_rank_count():
    """E2B has one kv head: on 2 GPUs each rank keeps a copy, so the cache doubles; 31B's full
    layers have 4 kv heads and sliding 16: split evenly, the total stays the same."""
    one = estimate(MemoryRequest(model="e2b", context_tokens=50_000))
    two = estimate(MemoryRequest(model="e2b", context_tokens=50_000, gpus=2))
    assert two.kv_cache_bytes == 2 * one.kv_cache_bytes
    one = estimate(MemoryRequest(model="31b", context_tokens=50_000))
    two = estimate(MemoryRequest(model="31b", context_tokens=50_000, gpus=2))
    assert two.kv_cache_bytes == one.kv_cache_bytes
