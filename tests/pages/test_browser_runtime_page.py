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


def page_script(app: AppTest) -> str:
    scripts = [c.value for c in app.code if "@huggingface/transformers" in c.value]
    assert len(scripts) == 1
    return scripts[0]


def test_the_backend_travels_in_the_link_and_reaches_the_page_script():
    app = open_page(
        "pages/planner.py", models="e2b", engine="transformers.js", gpus="browser-chrome-laptop-8gb",
        ctx="4096", weights="onnx-q4", browser_backend="wasm",
    )
    assert not app.exception
    assert app.selectbox(key="planner_browser_backend").value == "wasm"
    assert 'device: "wasm"' in page_script(app)
    assert app.query_params.get("browser_backend") == "wasm"


def test_picking_wasm_in_the_widget_changes_the_script_and_the_link():
    app = open_page("pages/planner.py", models="e2b", engine="transformers.js", gpus="browser-chrome-laptop-8gb", ctx="4096")
    assert 'device: "webgpu"' in page_script(app)
    assert "browser_backend" not in app.query_params  # auto, the default, stays out of the link
    app.selectbox(key="planner_browser_backend").set_value("wasm").run()
    assert not app.exception
    assert 'device: "wasm"' in page_script(app)
    assert app.query_params.get("browser_backend") == "wasm"


def test_a_browser_without_webgpu_runs_transformers_js_on_wasm_under_auto():
    app = open_page("pages/planner.py", models="e2b", gpus="browser-ios-safari-18", ctx="4096")
    assert not app.exception
    assert app.selectbox(key="planner_weights").value == "onnx-q4"
    assert 'device: "wasm"' in page_script(app)


def test_choosing_webgpu_there_is_refused_with_the_reason():
    app = open_page(
        "pages/planner.py", models="e2b", engine="transformers.js", gpus="browser-ios-safari-18", ctx="4096",
        browser_backend="webgpu",
    )
    assert not app.exception
    assert any("has no WebGPU" in e.value and "Unsupported device" in e.value for e in app.error)


def test_a_typed_in_browser_keeps_the_specs_minimum_until_the_adapters_figure_is_typed():
    app = open_page("pages/fit.py", gpu="my-device", dev_mem="8", dev_kind="browser", ctx="4096", models="e2b")
    assert not app.exception
    assert app.number_input(key="fit_dev_max_buffer").value == 0
    assert any("spec's guaranteed minimums" in c.value for c in app.caption)
    refused = refused_table(app)
    e2b = refused[(refused["runtime"] == "transformers.js") & refused["model"].str.contains("E2B")]
    # E2B's PLE table at 4 bits, 1.17 GB, against the spec's 256 MiB: refused, saying whose limit it is.
    q4 = e2b[e2b["weight format"].str.contains("q4", case=False)]
    assert len(q4) >= 2 and q4["reason"].str.contains("256 MiB").all()
    assert q4["reason"].str.contains("spec's guaranteed minimum, not your adapter's").all()
    # The adapter's own 2 GiB (Chromium's usual maxBufferSize): E2B's q4 formats now load.
    app.number_input(key="fit_dev_max_buffer").set_value(2 * 2**30).run()
    assert not app.exception
    assert app.query_params.get("dev_max_buffer") == str(2 * 2**30)
    frames = [f.value for f in app.dataframe if "reason" in f.value.columns]
    still = [
        f[(f["runtime"] == "transformers.js") & f["model"].str.contains("E2B") & f["weight format"].str.contains("q4", case=False)]
        for f in frames
    ]
    assert all(len(s) == 0 for s in still)


def test_a_typed_in_browser_without_webgpu_offers_transformers_js_alone():
    app = open_page("pages/fit.py", gpu="my-device", dev_mem="8", dev_kind="browser", dev_webgpu="false", ctx="4096")
    assert not app.exception
    assert not [n for n in app.number_input if n.key == "fit_dev_max_buffer"]
    assert any("no WebGPU" in c.value for c in app.caption)
    assert app.query_params.get("dev_webgpu") == "false"


def test_the_start_page_takes_a_typed_in_browser_with_its_adapters_limit():
    app = open_page("pages/start.py", gpu="my-device", dev_mem="8", dev_kind="browser", dev_max_buffer=str(2 * 2**30))
    assert not app.exception
    assert app.number_input(key="start_dev_max_buffer").value == 2 * 2**30
    assert app.query_params.get("dev_max_buffer") == str(2 * 2**30)
    links = [link for link in app.get("page_link") if "dev_max_buffer" in str(link.proto)]
    assert links, "the links to the other pages carry the typed-in browser's limit"
