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
