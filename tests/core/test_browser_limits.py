"""The browser verdict (core.browser_limits): which limit refuses a Gemma 4 plan in a tab.

Tensor sizes are computed by hand from /work/shared/facts/gemma4-architecture.md (vocab 262144;
PLE width 256 per layer; E2B 35 layers, hidden 1536; E4B 42 layers; 31B hidden 5376) at 4 bits
(the packed uint4 data tensor, without its scales) or 2 bytes (fp16). Browser limits come from
the sources in docs/research/browser-onnx.md §3 (WebKit HardwareCapabilities.mm and PR #49472,
apache/tvm PR #17150, Dawn's NVIDIA cap, the WebGPU spec defaults), never from the code."""

import pytest

from core.browser_limits import (
    WASM32_MAX_HEAP_BYTES,
    WEBGPU_DEFAULT_MAX_BUFFER_BYTES,
    WEBGPU_DEFAULT_MAX_STORAGE_BINDING_BYTES,
    BrowserLimits,
    PlannedTensor,
    check_browser_plan,
    format_limit,
    format_size,
)

GIB = 1024**3
MIB = 1024**2

# PLE table = vocab x layers x 256. E2B: 262144 x 8960 = 2,348,810,240 weights.
E2B_PLE_Q4_BYTES = 1_174_405_120  # / 2 (two 4-bit weights per byte)
E2B_TOKEN_EMBED_Q4_BYTES = 201_326_592  # 262144 x 1536 / 2
# E4B: 262144 x 10752 = 2,818,572,288 weights.
E4B_PLE_Q4_BYTES = 1_409_286_144
E4B_PLE_FP16_BYTES = 5_637_144_576
# 31B token embedding 262144 x 5376 = 1,409,286,144 weights.
B31_TOKEN_EMBED_Q4_BYTES = 704_643_072
B31_TOKEN_EMBED_FP16_BYTES = 2_818_572_288
# Largest 31B linear: MLP 5376 x 21504 = 115,605,504 weights, fp16.
B31_MLP_FP16_BYTES = 231_211_008
# Published: soniqo/gemma-4-E4B-it-ONNX q4 files (embed 1.84 GB + 396 MB, decoder 2.09 + 1.29 GB).
E4B_Q4_FILES_BYTES = 5_620_000_000
# 31B at 4.5 bits per weight (31.27e9 weights, block-32 fp16 scales), weights only.
B31_Q4_TOTAL_BYTES = 17_590_000_000

# iOS Safari before WebKit 298851@main: maxBufferSize floor 256 MiB (defaultMaxBufferSize).
IOS_SAFARI_18 = BrowserLimits(
    name="iOS Safari 18",
    max_buffer_bytes=256 * MIB,
    max_storage_binding_bytes=128 * MIB,
    tab_memory_bytes=1_500_000_000,
)
# WebKit PR #49472: "After this change, iPhone 16 Pro reports 1GB buffer size"; jetsam ~1.5 GB.
IOS_SAFARI_26 = BrowserLimits(
    name="iOS Safari 26 (iPhone 16 Pro)",
    max_buffer_bytes=GIB,
    max_storage_binding_bytes=GIB,
    tab_memory_bytes=1_500_000_000,
)
# apache/tvm PR #17150: Android Chrome falls back to the 128 MiB binding default.
ANDROID_CHROME = BrowserLimits(
    name="Android Chrome",
    max_buffer_bytes=256 * MIB,
    max_storage_binding_bytes=128 * MIB,
)
# Chrome desktop on an 8 GB laptop GPU: 2 GiB buffers, bindings capped at 2 GiB - 4 (Dawn, NVIDIA).
CHROME_LAPTOP = BrowserLimits(
    name="Chrome on a laptop GPU",
    max_buffer_bytes=2 * GIB,
    max_storage_binding_bytes=2 * GIB - 4,
    tab_memory_bytes=8 * GIB,
)


def _e2b_q4() -> list[tuple[str, int]]:
    return [("PLE table at q4", E2B_PLE_Q4_BYTES), ("token embedding at q4", E2B_TOKEN_EMBED_Q4_BYTES)]


def test_spec_defaults_and_wasm32_heap() -> None:
    assert WEBGPU_DEFAULT_MAX_BUFFER_BYTES == 256 * MIB
    assert WEBGPU_DEFAULT_MAX_STORAGE_BINDING_BYTES == 128 * MIB
    assert WASM32_MAX_HEAP_BYTES == 2**32


def test_e2b_ple_table_refused_by_old_ios_buffer_limit_with_the_reason() -> None:
    verdict = check_browser_plan(_e2b_q4(), total_bytes=3_000_000_000, limits=IOS_SAFARI_18)
    assert not verdict.runs
    limits_hit = {(r.limit, r.tensor_name) for r in verdict.refusals}
    assert ("maxBufferSize", "PLE table at q4") in limits_hit
    ple = next(r for r in verdict.refusals if r.tensor_name == "PLE table at q4")
    assert ple.message == (
        "the PLE table at q4 is 1.17 GB; iOS Safari 18's largest WebGPU buffer is 256 MiB (maxBufferSize)"
    )
    # The 201 MB token embedding fits a 256 MiB buffer once bindings can be split.
    assert ("maxBufferSize", "token embedding at q4") not in limits_hit


def test_e2b_ple_table_just_over_ios_26_one_gib_buffer() -> None:
    # 1,174,405,120 B against 1,073,741,824 B: 9% over.
    verdict = check_browser_plan(_e2b_q4(), total_bytes=1_400_000_000, limits=IOS_SAFARI_26)
    assert [r.limit for r in verdict.refusals] == ["maxBufferSize"]
    assert verdict.refusals[0].needed_bytes == E2B_PLE_Q4_BYTES
    assert verdict.refusals[0].limit_bytes == GIB


def test_e4b_q4_files_exceed_ios_tab_memory() -> None:
    verdict = check_browser_plan([("PLE table at q4", E4B_PLE_Q4_BYTES)], E4B_Q4_FILES_BYTES, IOS_SAFARI_26)
    assert {r.limit for r in verdict.refusals} == {"maxBufferSize", "tab memory"}
    # 5.62 GB / 1.5 GB overshoots more than 1.41 GB / 1 GiB: the tab is the headline reason.
    assert verdict.refusals[0].limit == "tab memory"
    assert verdict.reason == "weights and KV cache need 5.62 GB; iOS Safari 26 (iPhone 16 Pro) keeps one tab under 1.50 GB"


def test_e2b_q4_runs_in_chrome_on_a_laptop_gpu() -> None:
    verdict = check_browser_plan(_e2b_q4(), total_bytes=3_200_000_000, limits=CHROME_LAPTOP)
    assert verdict.runs
    assert verdict.refusals == ()
    assert verdict.reason is None
    assert verdict.largest_tensor == PlannedTensor(name="PLE table at q4", size_bytes=E2B_PLE_Q4_BYTES)


def test_e4b_fp16_ple_table_refused_even_on_desktop() -> None:
    verdict = check_browser_plan([("PLE table at fp16", E4B_PLE_FP16_BYTES)], 7 * GIB, CHROME_LAPTOP)
    assert [r.limit for r in verdict.refusals] == ["maxBufferSize"]
    assert "5.64 GB" in verdict.refusals[0].message and "2 GiB" in verdict.refusals[0].message


def test_31b_q4_tensors_fit_but_the_model_does_not() -> None:
    tensors = [("token embedding at q4", B31_TOKEN_EMBED_Q4_BYTES), ("MLP weight at fp16", B31_MLP_FP16_BYTES)]
    verdict = check_browser_plan(tensors, B31_Q4_TOTAL_BYTES, CHROME_LAPTOP)
    assert [r.limit for r in verdict.refusals] == ["tab memory"]
    assert verdict.refusals[0].needed_bytes == B31_Q4_TOTAL_BYTES


def test_31b_fp16_embedding_exceeds_chrome_buffer() -> None:
    verdict = check_browser_plan([("token embedding at fp16", B31_TOKEN_EMBED_FP16_BYTES)], 70 * 10**9, CHROME_LAPTOP)
    assert {r.limit for r in verdict.refusals} == {"maxBufferSize", "tab memory"}


def test_wasm_backend_uses_the_4_gib_heap() -> None:
    small = check_browser_plan(_e2b_q4(), total_bytes=3_200_000_000, limits=ANDROID_CHROME, backend="wasm")
    assert small.runs  # 3.2 GB < 4 GiB = 4.29 GB; WebGPU buffer limits do not apply on WASM
    big = check_browser_plan([], total_bytes=B31_Q4_TOTAL_BYTES, limits=CHROME_LAPTOP, backend="wasm")
    assert [r.limit for r in big.refusals] == ["wasm heap", "tab memory"]
    assert big.refusals[0].message == (
        "weights, KV cache and working memory need 17.59 GB; the WebAssembly heap holds at most 4 GiB (wasm32)"
    )


def test_binding_limit_refuses_only_without_binding_split() -> None:
    plan = [("token embedding at q4", E2B_TOKEN_EMBED_Q4_BYTES)]  # 201 MB: > 128 MiB, < 256 MiB
    assert check_browser_plan(plan, 10**9, ANDROID_CHROME).runs
    no_split = check_browser_plan(plan, 10**9, ANDROID_CHROME, runtime_splits_bindings=False)
    assert [r.limit for r in no_split.refusals] == ["maxStorageBufferBindingSize"]
    assert no_split.refusals[0].message == (
        "the token embedding at q4 is 201 MB; Android Chrome's largest storage binding in one shader is "
        "128 MiB (maxStorageBufferBindingSize)"
    )


@pytest.mark.parametrize(
    ("size_bytes", "text"),
    [(E2B_PLE_Q4_BYTES, "1.17 GB"), (E2B_TOKEN_EMBED_Q4_BYTES, "201 MB"), (B31_TOKEN_EMBED_FP16_BYTES, "2.82 GB")],
)
def test_format_size(size_bytes: int, text: str) -> None:
    assert format_size(size_bytes) == text


@pytest.mark.parametrize(("limit_bytes", "text"), [(256 * MIB, "256 MiB"), (GIB, "1 GiB"), (2 * GIB - 4, "2.00 GiB")])
def test_format_limit(limit_bytes: int, text: str) -> None:
    assert format_limit(limit_bytes) == text


@pytest.mark.parametrize("extra_bytes", [0, 1, 10**9])
def test_more_bytes_never_turns_a_refusal_into_a_run(extra_bytes: int) -> None:
    base = check_browser_plan(_e2b_q4(), 3_000_000_000, IOS_SAFARI_18)
    grown = check_browser_plan(
        [(name, size + extra_bytes) for name, size in _e2b_q4()], 3_000_000_000 + extra_bytes, IOS_SAFARI_18
    )
    assert not base.runs and not grown.runs
    assert len(grown.refusals) >= len(base.refusals)


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="total_bytes"):
        check_browser_plan([], -1, CHROME_LAPTOP)
    with pytest.raises(ValueError):
        BrowserLimits(name="x", max_buffer_bytes=0, max_storage_binding_bytes=1)
    with pytest.raises(ValueError):
        PlannedTensor(name="", size_bytes=1)


def test_the_spec_defaults_are_the_w3c_tables_figures():
    # gpuweb/gpuweb@da251f90 spec/index.bs: maxBufferSize "268435456 bytes (256 MiB)",
    # maxStorageBufferBindingSize "134217728 bytes (128 MiB)"; adapters support these or better.
    assert WEBGPU_DEFAULT_MAX_BUFFER_BYTES == 256 * MIB == 268_435_456
    assert WEBGPU_DEFAULT_MAX_STORAGE_BINDING_BYTES == 128 * MIB == 134_217_728


def test_a_limits_note_follows_the_buffer_refusal():
    typed = BrowserLimits(
        name="Your device", max_buffer_bytes=256 * MIB, max_storage_binding_bytes=128 * MIB,
        limits_note="256 MiB is the WebGPU spec's guaranteed minimum, not your adapter's",
    )
    verdict = check_browser_plan([("per-layer embedding table", E2B_PLE_Q4_BYTES)], E2B_PLE_Q4_BYTES, typed)
    assert verdict.reason == (
        "the per-layer embedding table is 1.17 GB; Your device's largest WebGPU buffer is 256 MiB (maxBufferSize); "
        "256 MiB is the WebGPU spec's guaranteed minimum, not your adapter's"
    )


def test_a_browser_without_webgpu_is_checked_on_wasm_only():
    no_webgpu = BrowserLimits(name="iOS Safari 18", max_buffer_bytes=None, max_storage_binding_bytes=None)
    assert not no_webgpu.has_webgpu
    with pytest.raises(ValueError, match="has no WebGPU"):
        check_browser_plan([("PLE", E2B_PLE_Q4_BYTES)], E2B_PLE_Q4_BYTES, no_webgpu, "webgpu")
    # On WASM no GPU buffer is made: only the heap (and the tab) can refuse; 1.17 GB fits 4 GiB.
    assert check_browser_plan([("PLE", E2B_PLE_Q4_BYTES)], E2B_PLE_Q4_BYTES, no_webgpu, "wasm").runs
