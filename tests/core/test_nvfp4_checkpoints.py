"""NVIDIA's ModelOpt NVFP4 checkpoints: only some linear layers are 4-bit (hand arithmetic from the architecture)."""

import math

import pytest

from core.catalog import load_catalog
from core.estimate import MemoryRequest, estimate

CATALOG = load_catalog()
NVFP4_BYTES_PER_WEIGHT = (4 + 8 / 16) / 8  # e2m1 values, one e4m3 scale per 16 (ModelOpt effective_bits 4.5)
BF16 = 2

# gemma4-architecture.md: 31B hidden 5376, 60 layers (50 sliding: 32 q heads x 256, 16 kv heads;
# 10 full: 32 q heads x 512, 4 kv heads, V = K), MLP width 21504, vocab 262144.
H31 = 5376
ATTENTION_31B = 50 * (2 * H31 * 32 * 256 + 2 * H31 * 16 * 256) + 10 * (2 * H31 * 32 * 512 + H31 * 4 * 512)
MLP_31B = 60 * 3 * H31 * 21504
# 26B-A4B: hidden 2816, 30 layers, 128 experts of width 704, a dense MLP of width 2112.
H26 = 2816
EXPERTS_26B = 30 * 128 * 3 * H26 * 704
DENSE_MLP_26B = 30 * 3 * H26 * 2112


def _components(model: str, weight_format: str) -> dict[str, int]:
    result = estimate(MemoryRequest(model=model, weight_format=weight_format, engine="vllm"), CATALOG)
    return {w.component: w.bytes for w in result.weights}


def test_the_31b_checkpoint_keeps_attention_in_bf16_and_quantises_the_mlp():
    parts = _components("31b", "nvfp4-mlp-only")
    assert parts["attention"] == ATTENTION_31B * BF16
    assert parts["mlp"] == math.ceil(MLP_31B * NVFP4_BYTES_PER_WEIGHT)
    assert parts["token_embedding"] == 262144 * H31 * BF16


def test_the_26b_checkpoint_quantises_only_the_routed_experts():
    parts = _components("26b-a4b", "nvfp4-experts-only")
    assert parts["experts"] == math.ceil(EXPERTS_26B * NVFP4_BYTES_PER_WEIGHT)
    assert parts["mlp"] == DENSE_MLP_26B * BF16


def test_a_flat_nvfp4_model_would_miss_the_31b_checkpoint_by_a_third():
    # docs/research/nvfp4-checkpoints.md: 4.5 bits on every linear layer underestimates
    # NVIDIA's 31B checkpoint by ~12.2 GB, since 8.48B attention weights stay at 2 bytes.
    flat = sum(_components("31b", "nvfp4").values())
    recipe = sum(_components("31b", "nvfp4-mlp-only").values())
    assert recipe - flat == pytest.approx(ATTENTION_31B * (BF16 - NVFP4_BYTES_PER_WEIGHT), abs=8)
    assert 0.35 < 1 - flat / recipe < 0.39


@pytest.mark.parametrize(("model", "expected"), [("31b", False), ("26b-a4b", True), ("e2b", False)])
def test_an_experts_only_recipe_applies_to_models_with_experts(model, expected):
    assert CATALOG.weight_format("nvfp4-experts-only").applies_to(CATALOG.model(model)) is expected


@pytest.mark.parametrize("model", ["31b", "26b-a4b", "e2b"])
def test_an_mlp_only_recipe_applies_to_every_model(model):
    assert CATALOG.weight_format("nvfp4-mlp-only").applies_to(CATALOG.model(model))


def test_only_the_4_bit_layers_are_marked_quantised():
    result = estimate(MemoryRequest(model="31b", weight_format="nvfp4-mlp-only", engine="vllm"), CATALOG)
    quantised = {w.component for w in result.weights if w.quantised}
    assert quantised == {"mlp"}


def test_bf16_marks_nothing_quantised():
    result = estimate(MemoryRequest(model="26b-a4b", weight_format="bf16", engine="vllm"), CATALOG)
    assert not any(w.quantised for w in result.weights)
