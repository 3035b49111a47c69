"""transformers.js in a browser tab: its cache, files, browser limits, device table and page script, from independent figures.

Per-token KV by hand from /work/shared/facts/gemma4-architecture.md (2 x kv_heads x head_dim x
bytes per KV-owning layer; E2B 12 sliding layers of 1 x 256 and 3 full of 1 x 512, 20 shared;
E4B 20 sliding of 2 x 256 and 4 full of 2 x 512; vocab 262,144; hidden 1,536 / 2,560; PLE 256 per
layer, 35 / 42 layers). Browser limits from docs/research/browser-onnx.md §3; the published file
size from the soniqo/gemma-4-E4B-it-ONNX listing (§1.5)."""

import pytest

from core.catalog import load_catalog
from core.estimate import MemoryRequest, PlanningError, estimate, memory_profile
from core.fit import fit
from core.launch import launch_command
from core.runtimes import default_format, device_refusal, runtimes_for

CATALOG = load_catalog()
GIB = 2**30
CHROME = "browser-chrome-laptop-8gb"
ANDROID = "browser-android-chrome-12gb"
IOS = "browser-ios-safari-26"

E2B_KV_PER_TOKEN_2B = 12 * (2 * 1 * 256 * 2) + 3 * (2 * 1 * 512 * 2)  # 12,288 + 6,144 = 18,432
E4B_KV_PER_TOKEN_2B = 20 * (2 * 2 * 256 * 2) + 4 * (2 * 2 * 512 * 2)  # 40,960 + 16,384 = 57,344


def request(**changes):
    values = dict(
        model="gemma-4-e2b", engine="transformers.js", weight_format="onnx-q4f16", kv_cache_dtype="fp16",
        context_tokens=4096, text_only=True, gpu=CHROME,
    )
    values.update(changes)
    return MemoryRequest(**values)


# E2B's text weights by hand (facts: hidden 1,536; 35 layers, [4 sliding, 1 full] x 7, so 28
# sliding (hd 256) and 7 full (hd 512), 8 query heads, 1 kv head; layers 15..34 KV-shared (no
# k/v), so 12 sliding and 3 full layers own k_proj and v_proj; MLP 6,144 wide, doubled on the
# shared layers; PLE 256 per layer; vocab 262,144, the tied head held twice by the ONNX export).
E2B_ATTENTION = 28 * 16 * 1536 * 256 + 12 * 2 * 1536 * 256 + 7 * 16 * 1536 * 512 + 3 * 2 * 1536 * 512
E2B_MLP = 15 * 3 * 1536 * 6144 + 20 * 3 * 1536 * 12288
E2B_PLE_LINEARS = 35 * 2 * 1536 * 256 + 1536 * 35 * 256  # per-layer gate and projection; the model projection
E2B_TABLES = 2 * 262_144 * 1536 + 262_144 * 35 * 256  # token table, head copy, PLE table
E2B_TEXT_WEIGHTS = E2B_ATTENTION + E2B_MLP + E2B_PLE_LINEARS + E2B_TABLES
# fp32 norms: 5 x 1,536 per layer, q_norm per layer (28 x 256 + 7 x 512), k_norm on the 15 owning
# layers (12 x 256 + 3 x 512), the PLE norm (256) and the final norm (1,536); one fp32 scalar per layer.
NORM_BYTES = 4 * (35 * 5 * 1536 + 28 * 256 + 7 * 512 + 12 * 256 + 3 * 512 + 256 + 1536)
SCALAR_BYTES = 35 * 4
# onnx-q4: 5.125 bits per quantised weight (4-bit data, fp32 scale and 4-bit zero point per 32).
E2B_Q4_TEXT_BYTES = E2B_TEXT_WEIGHTS * 5.125 / 8 + NORM_BYTES + SCALAR_BYTES


def test_hand_figures():
    assert E2B_TEXT_WEIGHTS == 5_030_936_576
    assert NORM_BYTES == 1_143_808
    assert E2B_Q4_TEXT_BYTES == 3_224_087_692
    assert E2B_KV_PER_TOKEN_2B == 18_432
    assert E4B_KV_PER_TOKEN_2B == 57_344


@pytest.mark.parametrize(
    ("model", "weight_format", "kv_dtype", "per_token"),
    [
        ("gemma-4-e2b", "onnx-q4f16", "fp16", E2B_KV_PER_TOKEN_2B),
        ("gemma-4-e2b", "onnx-fp16", "fp16", E2B_KV_PER_TOKEN_2B),
        # fp32 graphs (q4, q8): the empty past takes the graph input's fp32 type.
        ("gemma-4-e2b", "onnx-q4", "fp32", 2 * E2B_KV_PER_TOKEN_2B),
        ("gemma-4-e4b", "onnx-q4f16", "fp16", E4B_KV_PER_TOKEN_2B),
        ("gemma-4-e4b", "onnx-q4", "fp32", 2 * E4B_KV_PER_TOKEN_2B),
    ],
)
def test_every_kv_owning_layer_keeps_every_token_in_the_graphs_type(model, weight_format, kv_dtype, per_token):
    tokens = 8192  # far past the 512-token window: sliding layers are not trimmed
    result = estimate(request(model=model, weight_format=weight_format, context_tokens=tokens, gpu=None), CATALOG)
    assert result.kv_cache_dtype == kv_dtype
    assert result.kv_cache_bytes == per_token * tokens
    assert result.kv_cache.sliding_attention_tokens == tokens
    assert result.engine_report["kv_bytes_per_token"] == per_token


def test_e2b_shares_20_layers_and_owns_15():
    result = estimate(request(gpu=None), CATALOG)
    assert result.kv_cache.shared_layers == 20
    assert result.kv_cache.full_attention_layers + result.kv_cache.sliding_attention_layers == 15


def test_the_request_asking_bf16_gets_the_graphs_fp32_and_a_quantised_cache_is_refused():
    assert estimate(request(weight_format="onnx-q4", kv_cache_dtype="bf16"), CATALOG).kv_cache_dtype == "fp32"
    with pytest.raises(PlanningError, match="exported graph's own type"):
        estimate(request(kv_cache_dtype="q8_0"), CATALOG)


def test_a_step_holds_the_past_beside_the_present():
    result = estimate(request(context_tokens=32_768), CATALOG)
    assert result.engine_report["kv_step_copy_bytes"] == E2B_KV_PER_TOKEN_2B * 32_768
    assert result.activations_bytes > result.kv_cache_bytes


# The E4B q4 embed_tokens graph: token table 262,144 x 2,560 = 671,088,640 weights and PLE table
# 262,144 x 42 x 256 = 2,818,572,288, at 5.125 bits (4-bit data, fp32 scale and 4-bit zero point
# per block of 32) = 2,235,564,032 B; published: 1.84 GB + 396 MB = 2.236 GB.
E4B_EMBED_Q4_BYTES = (671_088_640 + 2_818_572_288) * 5.125 / 8


def test_e4b_q4_embed_file_matches_the_published_size():
    assert E4B_EMBED_Q4_BYTES == 2_235_564_032
    result = estimate(request(model="gemma-4-e4b", weight_format="onnx-q4", kv_cache_dtype="fp32"), CATALOG)
    assert result.engine_report["embed_tokens_file_bytes"] == E4B_EMBED_Q4_BYTES
    assert abs(result.engine_report["embed_tokens_file_bytes"] - (1.84e9 + 396e6)) < 0.006e9


def test_the_download_is_in_the_estimate_and_near_the_published_folder():
    result = estimate(request(model="gemma-4-e4b", weight_format="onnx-q4"), CATALOG)
    report = result.engine_report
    assert report["download_bytes"] == result.files_bytes
    assert report["embed_tokens_file_bytes"] + report["decoder_file_bytes"] == result.files_bytes
    # The decoder holds its own copy of the tied head: 671,088,640 x 5.125 / 8 above the layers.
    assert report["decoder_file_bytes"] > 671_088_640 * 5.125 / 8
    # soniqo's q4 folder: 5.62 GB, 0.40 GB of it unexplained (docs/research/browser-onnx.md §1.6).
    assert abs(result.files_bytes - 5.62e9) < 0.45e9


def test_text_only_leaves_the_encoders_out_of_the_download():
    with_encoders = estimate(request(text_only=False), CATALOG)
    text = estimate(request(), CATALOG)
    assert with_encoders.engine_report["encoder_files_bytes"] > 0
    assert text.engine_report["encoder_files_bytes"] == 0
    assert with_encoders.files_bytes > text.files_bytes


# E2B PLE table: 262,144 x 35 x 256 = 2,348,810,240 weights; packed 4-bit data = / 2.
E2B_PLE_Q4_BYTES = 262_144 * 35 * 256 // 2


def test_the_largest_tensor_is_the_ple_tables_packed_data():
    assert E2B_PLE_Q4_BYTES == 1_174_405_120
    assert estimate(request(), CATALOG).engine_report["largest_tensor_bytes"] == E2B_PLE_Q4_BYTES


def test_ios_safari_refuses_e2b_by_its_1_gib_buffer():
    # WebKit PR #49472: iPhone 16 Pro reports a 1 GiB maxBufferSize; 1,174,405,120 B is over it.
    with pytest.raises(PlanningError, match=r"per-layer embedding table is 1\.17 GB.*1 GiB \(maxBufferSize\)"):
        estimate(request(gpu=IOS), CATALOG)


def test_android_chrome_refuses_e2b_by_the_spec_floor_buffer():
    with pytest.raises(PlanningError, match=r"256 MiB \(maxBufferSize\)"):
        estimate(request(gpu=ANDROID), CATALOG)


def test_fp16_ple_is_over_even_chromes_2_gib_buffer():
    # 2,348,810,240 weights x 2 B = 4.70 GB > 2 GiB.
    with pytest.raises(PlanningError, match=r"4\.70 GB.*2 GiB \(maxBufferSize\)"):
        estimate(request(weight_format="onnx-fp16"), CATALOG)


def test_chrome_on_a_laptop_runs_e2b():
    result = estimate(request(), CATALOG)
    assert result.engine_report["browser_runs"] is True
    assert fit(request(), CATALOG).verdict in ("fits", "tight")


# wasm32 heap: 4 GiB. A WebGPU step passes through it the KV in and out (past T, present T) or,
# at prefill, the prompt's embedding outputs beside the present: E2B fp32 (q4) KV 36,864 B/token,
# embeddings (1,536 + 35 x 256) x 4 = 41,984 B/token, so the step needs 36,864 + 41,984 = 78,848
# B/token: 4 GiB / 78,848 = 54,471.3 tokens.
E2B_Q4_HEAP_BYTES_PER_TOKEN = 2 * E2B_KV_PER_TOKEN_2B + (1536 + 35 * 256) * 4
E2B_Q4_HEAP_TOKENS = 4 * GIB // E2B_Q4_HEAP_BYTES_PER_TOKEN


def test_the_wasm_heap_arithmetic():
    assert E2B_Q4_HEAP_BYTES_PER_TOKEN == 78_848
    assert E2B_Q4_HEAP_TOKENS == 54_471
    profile = memory_profile(request(weight_format="onnx-q4", kv_cache_dtype="fp32"), CATALOG)
    assert profile.policy.start_shortfall_bytes(profile, E2B_Q4_HEAP_TOKENS, None) == 0
    over = profile.policy.start_shortfall_bytes(profile, E2B_Q4_HEAP_TOKENS + 1, None)
    assert 0 < over <= E2B_Q4_HEAP_BYTES_PER_TOKEN


def test_e2b_q4_at_its_full_context_is_refused_by_the_wasm_heap():
    # 131,072 x 78,848 = 10.33 GB through a 4 GiB heap (the 8 GB tab refuses it too).
    long = request(weight_format="onnx-q4", kv_cache_dtype="fp32", context_tokens=131_072)
    result = estimate(long, CATALOG)
    assert "wasm heap" in result.engine_report["browser_limits_exceeded"]
    assert result.engine_report["wasm_heap_step_bytes"] == 131_072 * E2B_Q4_HEAP_BYTES_PER_TOKEN
    assert fit(long, CATALOG).verdict == "does_not_fit"


def test_in_a_tab_with_room_to_spare_the_heap_is_what_refuses():
    # The same Chrome with a 64 GiB tab: 60,000 tokens pass the tab but not the heap (54,471).
    roomy = CATALOG.accelerator(CHROME).model_copy(update={"id": "chrome-64gb", "aliases": (), "memory_bytes": 64 * GIB})
    catalog = CATALOG.with_accelerators((roomy,))
    plan = request(weight_format="onnx-q4", kv_cache_dtype="fp32", context_tokens=60_000, gpu="chrome-64gb")
    fitted = fit(plan, catalog)
    assert fitted.verdict == "does_not_fit"
    assert "WebAssembly heap" in fitted.engine_error and "4 GiB" in fitted.engine_error
    assert fitted.max_context_tokens == E2B_Q4_HEAP_TOKENS


def test_q8_runs_on_wasm_where_its_weights_alone_are_over_the_heap():
    # E2B text at 8 bits: E2B_TEXT_WEIGHTS (with the decoder's copy of the tied head) x 1 B plus
    # fp32 norms = 5,032,080,524 B = 5.03 GB, over the 4 GiB wasm32 heap before any token.
    assert E2B_TEXT_WEIGHTS + NORM_BYTES + SCALAR_BYTES == 5_032_080_524
    with pytest.raises(PlanningError, match=r"on WASM: its weights are 5\.03 GB; the WebAssembly heap holds at most 4 GiB"):
        estimate(request(weight_format="onnx-q8", kv_cache_dtype="fp32"), CATALOG)
    profile_request = request(weight_format="onnx-q8", kv_cache_dtype="fp32", gpu=None)
    assert estimate(profile_request, CATALOG).engine_report["backend"] == "wasm"


@pytest.mark.parametrize("model", ["gemma-4-26b-a4b", "gemma-4-31b"])
def test_26b_and_31b_have_no_browser_export_and_say_which_limit_refuses_them(model):
    with pytest.raises(PlanningError) as error:
        estimate(request(model=model, text_only=False), CATALOG)
    message = str(error.value)
    assert "no ONNX export" in message
    # 31B at 4.625 bits is ~18 GB: over the 8 GB laptop tab (8,589,934,592 B = 8.59 GB).
    assert "keeps one tab under 8.59 GB" in message


def test_a_browser_preset_offers_transformers_js_first():
    for gpu in (CHROME, ANDROID, IOS):
        runtimes = runtimes_for(CATALOG, CATALOG.accelerator(gpu))
        assert runtimes[0] == "transformers.js"
        assert "vllm" not in runtimes and "onnxruntime-genai" not in runtimes
    assert default_format(CATALOG, "transformers.js", CATALOG.accelerator(CHROME)) == "onnx-q4f16"


@pytest.mark.parametrize("gpu", ["h100", "m4-max-128gb", "rpi5-8gb", "galaxy s25 ultra"])
def test_devices_that_are_not_browsers_refuse_it_with_the_way_out(gpu):
    reason = device_refusal(CATALOG, "transformers.js", CATALOG.accelerator(gpu))
    assert reason is not None and "browser" in reason
    with pytest.raises(PlanningError, match="browser"):
        estimate(request(gpu=gpu), CATALOG)


def test_h100_refusal_names_the_browser_devices():
    reason = device_refusal(CATALOG, "transformers.js", CATALOG.accelerator("h100"))
    assert "choose a browser device" in reason


def test_page_script_takes_dtype_and_device_from_the_plan():
    plan = request()
    result = estimate(plan, CATALOG)
    launch = launch_command(plan, result, CATALOG)
    assert launch.language == "javascript"
    assert 'from "@huggingface/transformers"' in launch.command
    assert "Gemma4ForCausalLM.from_pretrained" in launch.command
    assert 'dtype: "q4f16"' in launch.command and 'device: "webgpu"' in launch.command
    assert "onnx-community/gemma-4-E2B-it-ONNX" in launch.command
    assert any(note.startswith("Download: ") for note in launch.notes)


def test_page_script_for_q8_runs_on_wasm_and_multimodal_loads_the_processor():
    plan = request(weight_format="onnx-q8", kv_cache_dtype="fp32", text_only=False, gpu=None)
    launch = launch_command(plan, estimate(plan, CATALOG), CATALOG)
    assert 'dtype: "q8"' in launch.command and 'device: "wasm"' in launch.command
    assert "Gemma4ForConditionalGeneration" in launch.command and "AutoProcessor" in launch.command


def test_a_browser_limits_row_for_a_device_that_is_not_a_browser_is_named(tmp_path):
    import shutil

    from core.catalog import DATA_DIR, CatalogError

    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    path = data / "browser_limits.csv"
    path.write_text(path.read_text(encoding="utf-8") + "nvidia-h100-sxm,1,1,,x,y\n", encoding="utf-8")
    with pytest.raises(CatalogError) as error:
        load_catalog(data)
    assert error.value.file.endswith("browser_limits.csv") and error.value.field == "id"
    assert "nvidia-h100-sxm" in error.value.where


# --- The backend as a setting (EngineSettings.browser_backend) -------------------------------
# transformers.js @5ed4c5c: utils/devices.js DEFAULT_DEVICE is 'wasm' in a browser; utils/dtypes.js
# DEFAULT_DEVICE_DTYPE_MAPPING {wasm: q8}; backends/onnx.js lists 'webgpu' only where navigator.gpu
# exists and throws 'Unsupported device' for a device it does not list.
IOS_18 = "browser-ios-safari-18"


def settings(backend):
    from core.engines.base import EngineSettings

    return EngineSettings(browser_backend=backend)


def test_auto_runs_q8_on_wasm_the_rest_on_webgpu_and_everything_on_wasm_without_webgpu():
    from core.engines.transformers_js import backend_for

    assert backend_for("onnx-q4f16") == "webgpu" and backend_for("onnx-q4") == "webgpu"
    assert backend_for("onnx-q8") == "wasm"
    assert backend_for("onnx-q4f16", "auto", has_webgpu=False) == "wasm"
    # A chosen backend is taken as chosen, even where it then gets refused.
    assert backend_for("onnx-q8", "webgpu") == "webgpu" and backend_for("onnx-q4f16", "wasm") == "wasm"
    assert backend_for("onnx-q4", "webgpu", has_webgpu=False) == "webgpu"


# E2B q4 on WASM in Chrome on a laptop: everything in the 4 GiB heap. Per token of one sequence:
# the fp32 KV cache 2 x 18,432 = 36,864 B, its step copy another 36,864 B, and the prompt's
# activations (fp16): hidden-width tensors 3 x 1,536 + per-layer inputs 35 x 256 = 13,568 values,
# plus the widest layer, the double-wide MLP 3 x 12,288 = 36,864 values (attention of a full
# layer is 2 x 8 x 512 + 2 x 512 = 9,216): 50,432 values x 2 B = 100,864 B. Fixed: the weights
# (E2B_Q4_TEXT_BYTES) and the browser runtime's 256 MiB (data/runtime.csv, est.).
E2B_WASM_BYTES_PER_TOKEN = 2 * (2 * E2B_KV_PER_TOKEN_2B) + (3 * 1536 + 35 * 256 + 3 * 12288) * 2
E2B_WASM_FIXED_BYTES = E2B_Q4_TEXT_BYTES + 256 * 2**20
E2B_WASM_MAX_TOKENS = int((4 * GIB - E2B_WASM_FIXED_BYTES) // E2B_WASM_BYTES_PER_TOKEN)


def wasm_request(**changes):
    plan = dict(weight_format="onnx-q4", kv_cache_dtype="fp32", engine_settings=settings("wasm"))
    plan.update(changes)
    return request(**plan)


def test_e2b_q4_on_wasm_holds_weights_cache_step_copy_and_activations_in_the_4_gib_heap():
    assert E2B_WASM_BYTES_PER_TOKEN == 174_592
    assert E2B_WASM_MAX_TOKENS == 4_596  # (4,294,967,296 - 3,492,523,148) / 174,592 = 4,596.2
    result = estimate(wasm_request(), CATALOG)
    assert result.engine_report["backend"] == "wasm" and result.engine_report["backend_setting"] == "wasm"
    # No step goes through the heap separately on WASM: the whole plan is in it.
    assert "wasm_heap_step_bytes" not in result.engine_report
    assert result.total_bytes == E2B_WASM_FIXED_BYTES + 4096 * E2B_WASM_BYTES_PER_TOKEN
    fitted = fit(wasm_request(), CATALOG)
    assert fitted.usable_bytes == 4 * GIB  # the heap, not the 8 GiB tab
    assert fitted.fits and fitted.max_context_tokens == E2B_WASM_MAX_TOKENS
    over = fit(wasm_request(context_tokens=E2B_WASM_MAX_TOKENS + 1), CATALOG)
    assert over.verdict == "does_not_fit"
    assert "WebAssembly heap" in over.engine_error and "4 GiB" in over.engine_error
    # The same plan on WebGPU: the weights sit in GPU buffers, only a step passes the heap.
    assert fit(wasm_request(engine_settings=settings("webgpu"), context_tokens=E2B_WASM_MAX_TOKENS + 1), CATALOG).fits


def test_wasm_skips_webgpus_buffer_limit_so_ios_safari_26_refuses_by_its_tab_instead():
    # On WebGPU the 1.17 GB PLE table is over iOS Safari 26's 1 GiB buffer (refused outright); on
    # WASM no GPU buffer is made, and the 1.5 GB tab is what a 3.2 GB plan runs out of.
    with pytest.raises(PlanningError, match="maxBufferSize"):
        estimate(request(weight_format="onnx-q4", kv_cache_dtype="fp32", gpu=IOS), CATALOG)
    result = estimate(wasm_request(gpu=IOS), CATALOG)
    assert result.engine_report["browser_limits_exceeded"] == ["tab memory"]
    assert fit(wasm_request(gpu=IOS), CATALOG).verdict == "does_not_fit"


def test_webgpu_in_a_browser_without_it_is_refused_with_the_way_out():
    with pytest.raises(PlanningError) as error:
        estimate(request(weight_format="onnx-q4", kv_cache_dtype="fp32", gpu=IOS_18, engine_settings=settings("webgpu")), CATALOG)
    message = str(error.value)
    assert "has no WebGPU" in message and "Unsupported device" in message and "WASM backend" in message


def test_auto_falls_back_to_wasm_in_a_browser_without_webgpu_with_q4_as_its_format():
    accelerator = CATALOG.accelerator(IOS_18)
    assert accelerator.webgpu_max_buffer_bytes is None
    assert runtimes_for(CATALOG, accelerator) == ["transformers.js"]  # LiteRT-LM's web build needs WebGPU
    assert default_format(CATALOG, "transformers.js", accelerator) == "onnx-q4"
    plan = request(weight_format="onnx-q4", kv_cache_dtype="fp32", gpu=IOS_18)
    result = estimate(plan, CATALOG)
    assert result.engine_report["backend"] == "wasm"
    # 3.2 GB of weights in a ~1.5 GB tab.
    assert result.engine_report["browser_limits_exceeded"] == ["tab memory"]
    launch = launch_command(plan, result, CATALOG)
    assert 'device: "wasm"' in launch.command
    assert any("auto: this browser has no WebGPU" in note for note in launch.notes)


def test_page_script_names_the_chosen_backend_and_says_webgpu_does_not_fall_back():
    plan = request(engine_settings=settings("wasm"))
    launch = launch_command(plan, estimate(plan, CATALOG), CATALOG)
    assert 'dtype: "q4f16"' in launch.command and 'device: "wasm"' in launch.command
    assert any("chosen: the wasm backend" in note for note in launch.notes)
    webgpu = request()
    launch = launch_command(webgpu, estimate(webgpu, CATALOG), CATALOG)
    assert 'device: "webgpu"' in launch.command
    assert any('navigator.gpu ? "webgpu" : "wasm"' in note for note in launch.notes)


# --- A typed-in browser -----------------------------------------------------------------------
def typed_browser(**fields):
    from core.devices import TypedDevice, typed_accelerator

    device = typed_accelerator(TypedDevice(memory_bytes=8 * GIB, kind="browser", **fields))
    return device, CATALOG.with_accelerators((device,))


def test_a_typed_in_browser_is_checked_against_the_specs_minimum_and_says_so():
    device, catalog = typed_browser()
    # W3C WebGPU spec limits table (gpuweb/gpuweb@da251f90 spec/index.bs): maxBufferSize 268,435,456.
    assert device.webgpu_max_buffer_bytes == 268_435_456
    with pytest.raises(PlanningError) as error:
        estimate(request(gpu=device.id), catalog)
    message = str(error.value)
    assert "per-layer embedding table is 1.17 GB" in message and "256 MiB (maxBufferSize)" in message
    assert "spec's guaranteed minimum, not your adapter's" in message
    assert "(await navigator.gpu.requestAdapter()).limits.maxBufferSize" in message


def test_a_typed_in_browser_with_its_adapters_limits_runs_e2b_and_drops_the_note():
    # An adapter reporting Chromium's usual 2 GiB buffers: the 1.17 GB PLE table fits.
    device, catalog = typed_browser(webgpu_max_buffer_bytes=2 * GIB, webgpu_max_binding_bytes=2 * GIB - 4)
    result = estimate(request(gpu=device.id), catalog)
    assert result.engine_report["browser_runs"] is True and "notes" not in result.engine_report


def test_a_typed_in_browser_without_webgpu_runs_on_wasm():
    device, catalog = typed_browser(webgpu=False)
    assert device.webgpu_max_buffer_bytes is None and "no WebGPU" in device.name
    assert default_format(catalog, "transformers.js", device) == "onnx-q4"
    result = estimate(request(weight_format="onnx-q4", kv_cache_dtype="fp32", gpu=device.id), catalog)
    assert result.engine_report["backend"] == "wasm" and result.engine_report["browser_runs"] is True


def test_a_browser_limits_row_with_one_webgpu_limit_blank_is_named(tmp_path):
    import shutil

    from core.catalog import DATA_DIR, CatalogError

    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    path = data / "browser_limits.csv"
    text = path.read_text(encoding="utf-8").replace("browser-ios-safari-26,1073741824,", "browser-ios-safari-26,,")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogError) as error:
        load_catalog(data)
    assert error.value.field == "webgpu_max_binding_bytes" and "browser-ios-safari-26" in error.value.where


def test_a_browser_device_without_a_limits_row_is_named(tmp_path):
    import shutil

    from core.catalog import DATA_DIR, CatalogError

    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    path = data / "browser_limits.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(line for line in lines if not line.startswith(IOS_18)), encoding="utf-8")
    with pytest.raises(CatalogError, match=IOS_18):
        load_catalog(data)
