"""The pages follow the device: the runtimes that run there, typed-in devices, formats that follow the runtime."""

from tests.pages.test_app import open_page, table
from tests.rendered import plain


def runtimes_shown(app) -> set[str]:
    return set(table(app, "runtime")["runtime"])


def test_a_raspberry_pi_is_answered_with_the_runtimes_that_run_there():
    # runtimes.md §0: llama.cpp, Ollama and PyTorch run on a Pi's CPU; vLLM does not (its CPU
    # backend is not modelled), MLX is Apple-only; LiteRT-LM does (Google's LiteRT-LM overview
    # benchmarks E2B on a Raspberry Pi 5); ONNX Runtime GenAI's CPU provider too
    # (docs/research/browser-onnx.md §4); mistral.rs's CPU build (docs/research/mistralrs-vllm-metal.md
    # §1.9). E2B in a 4-bit GGUF is ~3.4 GB: it runs.
    app = open_page("pages/fit.py", gpu="rpi5-8gb", ctx="4096")
    assert not app.exception
    assert runtimes_shown(app) == {
        "llama.cpp", "Ollama", "transformers", "LiteRT-LM", "ONNX Runtime GenAI", "mistral.rs"
    }
    advice = plain(app.success[0].value)
    assert advice.startswith("Run Gemma 4 E") and (" with llama.cpp " in advice or " with Ollama " in advice)
    assert "Nothing fits" not in " ".join(plain(w.value) for w in app.warning)


def test_a_mac_gets_mac_runtimes_and_no_nvfp4():
    app = open_page("pages/fit.py", gpu="apple-m4-pro-48gb", ctx="8192")
    assert not app.exception
    shown = runtimes_shown(app)
    assert "MLX" in shown and "vLLM" not in shown
    formats = set(table(app, "runtime")["weight format"])
    assert not any("NVFP4" in f or "AWQ" in f or "GPTQ" in f for f in formats)
    assert "Run " in plain(app.success[0].value) and "NVFP4" not in plain(app.success[0].value)


def test_a_typed_in_phone_travels_in_the_link_and_gets_the_phone_runtimes():
    # Phones: Google's LiteRT-LM (Android and iOS builds, litert-lm README) and llama.cpp.
    app = open_page("pages/fit.py", gpu="my-device", dev_mem="8", dev_kind="phone", ctx="4096")
    assert not app.exception
    assert runtimes_shown(app) == {"llama.cpp", "LiteRT-LM"}
    assert any("Your device (phone, 8.0 GiB)" in c.value for c in app.caption)
    # The typed fields stay in the page's link.
    link = dict(app.query_params)
    assert link.get("gpu") == "my-device" and link.get("dev_kind") == "phone" and link.get("dev_mem") == "8"


def test_a_format_nobody_picked_follows_the_device_and_runtime():
    # On a Pi the usual runtime is llama.cpp (runtime_support.csv rank 1) and its usual file is
    # GGUF Q4_K_M, not the 16-bit checkpoint that an H100's vLLM default would load.
    app = open_page("pages/planner.py", gpus="rpi5-8gb", ctx="4096")
    assert app.selectbox(key="planner_weights").value == "gguf-q4_k_m"
    assert not app.warning


def test_switching_runtime_maps_the_format_without_piling_up_notices():
    app = open_page("pages/planner.py")
    # The user picks bf16 (the default under vLLM): from now on the format is theirs.
    app.selectbox(key="planner_weights").set_value("fp8").run()
    app.selectbox(key="planner_weights").set_value("bf16").run()
    for runtime, expected in (("llama.cpp", "gguf-bf16"), ("vllm", "bf16"), ("llama.cpp", "gguf-bf16"), ("ollama", "ollama-bf16")):
        app.selectbox(key="planner_engine").set_value(runtime).run()
        assert not app.exception
        # The same bf16 weights in the runtime's own file, and no notice for the user's own change.
        assert app.selectbox(key="planner_weights").value == expected, runtime
        assert not [w for w in app.warning if "is not a format" in plain(w.value)], runtime


def test_a_links_impossible_format_gets_one_notice_that_does_not_repeat():
    app = open_page("pages/planner.py", engine="llama.cpp", weights="awq-int4")
    notices = [w for w in app.warning if "awq-int4" in plain(w.value)]
    assert len(notices) == 1
    assert app.selectbox(key="planner_weights").value == "gguf-q4_k_m"  # llama.cpp's usual file
    app.number_input(key="planner_ctx").set_value(16_384).run()
    assert len([w for w in app.warning if "awq-int4" in plain(w.value)]) == 1
