"""The planner on a browser device: transformers.js by default, its page script, and the browser's refusals in words."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def open_page(page: str, **query: str) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60)
    app.query_params.update(query)
    app.switch_page(page)
    return app.run()


def test_a_browser_preset_plans_transformers_js_with_its_page_script():
    app = open_page("pages/planner.py", models="e2b", gpus="browser-chrome-laptop-8gb", ctx="4096")
    assert not app.exception
    # Chrome on a laptop GPU: transformers.js ranks first there, with its q4f16 default.
    assert app.selectbox(key="planner_weights").value == "onnx-q4f16"
    scripts = [c.value for c in app.code if "@huggingface/transformers" in c.value]
    assert scripts and 'device: "webgpu"' in scripts[0]


def test_31b_in_a_tab_is_refused_saying_so_and_which_limit():
    app = open_page(
        "pages/planner.py", models="31b", engine="transformers.js", gpus="browser-chrome-laptop-8gb", ctx="4096"
    )
    assert not app.exception
    (error,) = [e.value for e in app.error if "31B" in e.value]
    assert "no ONNX export" in error and "keeps one tab under 8.59 GB" in error


def test_ios_safari_refuses_e2b_by_its_buffer_limit():
    app = open_page("pages/planner.py", models="e2b", engine="transformers.js", gpus="browser-ios-safari-26", ctx="4096")
    assert not app.exception
    assert any("maxBufferSize" in e.value and "1 GiB" in e.value for e in app.error)


def refused_table(app: AppTest):
    frames = [f.value for f in app.dataframe if "reason" in f.value.columns]
    assert len(frames) == 1, "Device fit shows one table of refused variants"
    return frames[0]


def test_device_fit_on_ios_safari_lists_what_transformers_js_refuses_and_why():
    app = open_page("pages/fit.py", gpu="browser-ios-safari-26", ctx="4096")
    assert not app.exception
    refused = refused_table(app)
    tjs = refused[refused["runtime"] == "transformers.js"]
    # onnx-community publishes E2B and E4B exports only (docs/research/browser-onnx.md §1.6): every
    # 26B-A4B and 31B format is refused for that reason.
    big = tjs[tjs["model"].str.contains("26B|31B")]
    assert len(big) >= 2 and big["reason"].str.contains("no ONNX export").all()
    # E2B's per-layer embedding table: 262,144 tokens x 35 layers x 256 values at 4 bits
    # = 1.174 GB, above iOS Safari's 1 GiB (1.074 GB) maxBufferSize, so q4 and q4f16 are refused.
    ple_q4_bytes = 262_144 * 35 * 256 // 2
    assert ple_q4_bytes > 2**30
    e2b = tjs[tjs["model"].str.contains("E2B")]
    q4 = e2b[e2b["weight format"].str.contains("q4", case=False)]
    assert len(q4) >= 2
    assert q4["reason"].str.contains(f"{ple_q4_bytes / 1e9:.2f} GB").all()
    assert q4["reason"].str.contains("maxBufferSize").all() and q4["reason"].str.contains("1 GiB").all()


def test_device_fit_on_a_datacenter_gpu_has_no_refused_table():
    app = open_page("pages/fit.py", gpu="h100", ctx="8192")
    assert not app.exception
    assert not [f for f in app.dataframe if "reason" in f.value.columns]
