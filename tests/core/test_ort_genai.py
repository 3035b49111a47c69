"""ONNX Runtime GenAI: max_length, its preallocated and windowed cache, device table and command, from independent figures.

Per-token KV by hand from /work/shared/facts/gemma4-architecture.md: E4B (context 131,072,
window 512) owns 20 sliding layers of 2 x 256 and 4 full layers of 2 x 512 (fp16: 2,048 and
4,096 B per token); E2B (window 512) 12 sliding of 1 x 256 and 3 full of 1 x 512. Rules from
microsoft/onnxruntime-genai @a0c04eb1: src/config.h / config.cpp (max_length 0 -> context_length),
src/models/windowed_kv_cache.cpp (window + slack: 0 on CUDA, 16 on the CPU; other providers full),
examples/python/common.py (-m, -e choices, -l/--max_length)."""

import shlex

import pytest

from core.catalog import load_catalog
from core.engines.base import EngineSettings
from core.estimate import MemoryRequest, PlanningError, estimate, runtime_request
from core.launch import launch_command
from core.runtimes import device_refusal, runtimes_for

CATALOG = load_catalog()
MIB = 2**20
GIB = 2**30
E4B_FULL_FP16 = 2 * 2 * 512 * 2  # 4,096 B per token per full layer
E4B_SLIDING_FP16 = 2 * 2 * 256 * 2  # 2,048
CPU = "cpu-desktop-32gb-ddr5-2ch"


def request(**changes):
    values = dict(
        model="gemma-4-e4b", engine="onnxruntime-genai", weight_format="onnx-q4f16", kv_cache_dtype="fp16",
        context_tokens=8192, text_only=True, gpu="h100",
    )
    values.update(changes)
    return MemoryRequest(**values)


def test_max_length_defaults_to_the_trained_context_and_says_which_setting():
    resolved, source = runtime_request(request(runtime_context=True), CATALOG)
    assert resolved.context_tokens == 131_072
    assert "search.max_length" in source and "context_length" in source


def test_cuda_at_the_default_max_length_by_hand():
    # 4 x 4,096 x 131,072 = 2 GiB; 20 x 2,048 x 512 = 20 MiB (research §4's worked example).
    result = estimate(request(runtime_context=True), CATALOG)
    assert result.kv_cache.full_attention_bytes == 4 * E4B_FULL_FP16 * 131_072 == 2 * GIB
    assert result.kv_cache.sliding_attention_bytes == 20 * E4B_SLIDING_FP16 * 512 == 20 * MIB
    assert result.kv_cache.sliding_attention_tokens == 512


def test_setting_max_length_saves_what_the_report_says():
    result = estimate(request(context_tokens=8192), CATALOG)
    assert result.kv_cache.full_attention_bytes == 128 * MIB
    report = result.engine_report
    assert report["max_length"] == 8192 and report["default_max_length"] == 131_072
    assert report["kv_bytes_at_default_max_length"] == 2 * GIB + 20 * MIB
    assert report["kv_bytes_saved_by_max_length"] == 2 * GIB - 128 * MIB
    assert "search.max_length" in report["notes"][0] and "131,072" in report["notes"][0]


def test_cpu_windows_sliding_layers_to_the_window_plus_16_in_an_fp32_graph():
    result = estimate(request(weight_format="onnx-q4", gpu=CPU), CATALOG)
    assert result.engine_report["execution_provider"] == "cpu"
    assert result.kv_cache_dtype == "fp32"
    assert result.kv_cache.sliding_attention_tokens == 512 + 16
    assert result.kv_cache.sliding_attention_bytes == 20 * 2 * E4B_SLIDING_FP16 * 528
    assert result.kv_cache.full_attention_bytes == 4 * 2 * E4B_FULL_FP16 * 8192


def test_a_short_max_length_caps_the_window():
    result = estimate(request(context_tokens=300), CATALOG)
    assert result.kv_cache.sliding_attention_tokens == 300


@pytest.mark.parametrize("provider", ["dml", "webgpu"])
def test_other_providers_keep_every_layer_at_max_length(provider):
    settings = EngineSettings(execution_provider=provider)
    result = estimate(request(engine_settings=settings), CATALOG)
    assert result.kv_cache.sliding_attention_tokens == 8192
    assert result.kv_cache.sliding_attention_bytes == 20 * E4B_SLIDING_FP16 * 8192


def test_kv_shared_layers_have_no_cache():
    result = estimate(request(model="gemma-4-e2b"), CATALOG)
    assert result.kv_cache.shared_layers == 20
    # E2B, CUDA, fp16, 8,192: 3 x 2,048 x 8,192 + 12 x 1,024 x 512.
    assert result.kv_cache_bytes == 3 * 2048 * 8192 + 12 * 1024 * 512


def test_runs_on_nvidia_and_cpu_and_refuses_the_browser_saying_what_to_use():
    assert "onnxruntime-genai" in runtimes_for(CATALOG, CATALOG.accelerator("h100"))
    assert "onnxruntime-genai" in runtimes_for(CATALOG, CATALOG.accelerator(CPU))
    reason = device_refusal(CATALOG, "onnxruntime-genai", CATALOG.accelerator("browser-chrome-laptop-8gb"))
    assert "no browser build" in reason and "transformers.js" in reason
    with pytest.raises(PlanningError, match="no browser build"):
        estimate(request(gpu="browser-chrome-laptop-8gb"), CATALOG)


def test_launch_command_uses_model_chat_flags():
    plan = request()
    launch = launch_command(plan, estimate(plan, CATALOG), CATALOG)
    assert launch.language == "bash"
    args = shlex.split(launch.command)
    assert args[:2] == ["python", "model-chat.py"]
    # -e choices in common.py include "cuda" and "cpu"; -l is --max_length.
    assert args[args.index("-e") + 1] == "cuda"
    assert args[args.index("-l") + 1] == "8192"
    assert "-m" in args
    assert any("search.max_length" in note for note in launch.notes)


def test_launch_on_the_cpu_and_at_the_default():
    plan = request(weight_format="onnx-q4", gpu=CPU, runtime_context=True)
    launch = launch_command(plan, estimate(plan, CATALOG), CATALOG)
    args = shlex.split(launch.command)
    assert args[args.index("-e") + 1] == "cpu"
    assert args[args.index("-l") + 1] == "131072"
