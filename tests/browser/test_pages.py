"""Every page in a real browser: it draws, a control change redraws, links reopen state, downloads work."""

import csv
import io
import json
import xml.etree.ElementTree as ElementTree

import pytest
from playwright.sync_api import Page, expect

from core.estimate import MemoryRequest, estimate
from tests.browser.conftest import WAIT_TIMEOUT_MS, wait_for_script_to_finish

PAGES = {
    "": 0,  # the start page, the default
    "models": 0,
    "planner": 4,
    "fit": 1,
    "quality": 2,
    "throughput": 1,
    "api_costs": 1,
    "accuracy": 1,
}


def charts_drawn(page: Page, count: int) -> None:
    """Wait until `count` plotly charts have drawn their SVG."""
    if count:
        expect(page.locator('[data-testid="stPlotlyChart"] .main-svg').nth(count - 1)).to_be_attached()


# The breakdown chart's KV-cache trace (decoded: `data` keeps plotly's base64 arrays): it
# changes with the context, the weights do not.
KV_TRACE_Y = "Array.from(document.querySelectorAll('.js-plotly-plot')[0]?._fullData?.[1]?.y ?? [])"


def kv_trace_y(page: Page) -> list:
    page.wait_for_function(f"() => {KV_TRACE_Y}.length > 0", timeout=30_000)
    return page.evaluate(f"() => {KV_TRACE_Y}")


@pytest.mark.parametrize("path", list(PAGES))
def test_every_page_draws_in_the_browser(open_app, path):
    page = open_app(path)
    charts_drawn(page, 1 if PAGES[path] else 0)
    expect(page.locator("h1").first).to_be_visible()
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlertContentWarning"]').count() == 0


def test_changing_the_context_redraws_the_chart_and_the_link(open_app):
    page = open_app("planner?models=gemma-4-31b&engine=transformers")
    charts_drawn(page, 2)
    before = kv_trace_y(page)
    box = page.get_by_role("spinbutton", name="Context tokens per sequence")
    box.fill("131072")
    box.press("Enter")
    page.wait_for_url("**/planner?*ctx=131072*", timeout=30_000)
    wait_for_script_to_finish(page)
    page.wait_for_function(f"before => JSON.stringify({KV_TRACE_Y}) !== before", arg=json.dumps(before), timeout=30_000)
    assert kv_trace_y(page)[0] > before[0]
    expected = estimate(MemoryRequest(model="31b", engine="transformers", context_tokens=131_072, gpu="nvidia-h100-sxm"))
    expect(page.locator('[data-testid="stMetricValue"]').first).to_have_text(f"{expected.total_bytes / 2**30:,.2f} GiB")


def test_a_shared_link_opens_the_same_state(open_app):
    page = open_app("planner?models=gemma-4-e2b&engine=transformers&ctx=4096&seqs=2")
    charts_drawn(page, 1)
    expect(page.get_by_role("spinbutton", name="Context tokens per sequence")).to_have_value("4096")
    expect(page.get_by_role("spinbutton", name="Concurrent sequences")).to_have_value("2")
    expected = estimate(MemoryRequest(model="e2b", engine="transformers", context_tokens=4096, concurrent_sequences=2, gpu="nvidia-h100-sxm"))
    expect(page.locator('[data-testid="stMetricValue"]').first).to_have_text(f"{expected.total_bytes / 2**30:,.2f} GiB")
    expect(page.locator('[data-testid="stMetricLabel"]').first).to_contain_text("Gemma 4 E2B")


def test_a_bad_link_shows_a_notice_and_defaults(open_app):
    page = open_app("planner?ctx=banana&models=e2b")
    expect(page.locator('[data-testid="stAlertContentWarning"]').first).to_contain_text("ctx=banana")
    expect(page.get_by_role("spinbutton", name="Context tokens per sequence")).to_have_value("32768")
    assert page.locator('[data-testid="stException"]').count() == 0


def download(page: Page, label: str, nth: int = 0):
    with page.expect_download(timeout=60_000) as info:
        # Each download button renders a second, hidden copy (Streamlit 1.67): click the shown one.
        page.locator('[data-testid="stDownloadButton"] button:visible', has_text=label).nth(nth).click()
    return info.value


def test_downloads_png_svg_and_csv_are_valid_files(open_app, tmp_path):
    page = open_app("planner?models=gemma-4-31b,gemma-4-e4b")
    charts_drawn(page, 1)

    png = tmp_path / "chart.png"
    download(page, "PNG").save_as(png)
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (2400, 1300)  # 1200 x 650 at scale 2

    svg = tmp_path / "chart.svg"
    download(page, "SVG").save_as(svg)
    root = ElementTree.parse(svg).getroot()
    assert root.tag.endswith("svg")
    assert "Gemma 4 31B" in svg.read_text()

    table = tmp_path / "table.csv"
    download(page, "CSV").save_as(table)
    rows = list(csv.DictReader(io.StringIO(table.read_text())))
    assert [row["model"] for row in rows] == ["Gemma 4 31B", "Gemma 4 E4B"]
    expected = estimate(MemoryRequest(model="31b", engine="vllm", context_tokens=32_768, gpu="nvidia-h100-sxm"))
    assert float(rows[0]["Total (GiB)"]) == pytest.approx(expected.total_bytes / 2**30, abs=1e-3)


def test_the_app_fits_an_800_pixel_window(open_app, page):
    page.set_viewport_size({"width": 800, "height": 900})
    open_app("fit")
    wait_for_script_to_finish(page)
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0


@pytest.mark.parametrize("path", ["fit?gpu=rtx-4090", "planner?ctx=4096"])
def test_a_link_as_the_first_request_of_a_fresh_server_runs_through_app_py(fresh_server, page, path):
    """With a pages/ folder Streamlit starts in legacy multipage mode; the page must still get
    app.py's navigation (titles, icons) and its own link parameters."""
    page.goto(f"{fresh_server}/{path}")
    navigation = page.locator('[data-testid="stSidebarNav"]')
    expect(navigation).to_contain_text("Memory planner")
    expect(navigation).to_contain_text("Device fit")
    expect(page.locator("h1").first).to_have_text("Device fit" if path.startswith("fit") else "Memory planner")
    assert page.locator('[data-testid="stAlertContentWarning"]').count() == 0


def test_simultaneous_first_requests_all_get_app_py_navigation(fresh_server, browser):
    """Each script run decides for itself whether it is in legacy multipage mode; several first
    requests at once must all be routed through app.py (found by the load test)."""
    pages = []
    for path in ["quality", "planner", "fit", "throughput", "models"]:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(f"{fresh_server}/{path}", wait_until="commit")
        pages.append(page)
    try:
        for page in pages:
            navigation = page.locator('[data-testid="stSidebarNav"]')
            # A cold server imports everything on these first runs: allow for it explicitly
            # (this test has no `page` fixture to set the default).
            expect(navigation).to_contain_text("Throughput and cost", timeout=WAIT_TIMEOUT_MS)
            expect(navigation).not_to_contain_text("throughput\n")
            assert "app" not in [text.strip() for text in navigation.locator("a").all_inner_texts()]
    finally:
        for page in pages:
            page.context.close()


def test_uploading_a_config_adds_the_model_and_the_link_reopens_it(open_app, app_server):
    from pathlib import Path

    config = Path(__file__).resolve().parents[2] / "data" / "configs" / "llama-3.1-8b.json"
    page = open_app("planner?models=gemma-4-31b&engine=transformers&ctx=8192")
    charts_drawn(page, 2)
    page.get_by_text("Your own model (config.json)").click()
    page.get_by_label("Name", exact=True).fill("Llama 3.1 8B")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(config))
    expect(page.locator('[data-testid="stFileChipName"]')).to_have_text("llama-3.1-8b.json")
    wait_for_script_to_finish(page)
    page.get_by_role("button", name="Add model").click()
    expect(page.locator('[data-testid="stMetricLabel"]').nth(1)).to_contain_text("Llama 3.1 8B", timeout=30_000)
    page.wait_for_url("**/planner?*custom=*", timeout=30_000)
    wait_for_script_to_finish(page)
    shown = page.locator('[data-testid="stMetricValue"]').nth(1).inner_text()
    # The same link in a fresh browser context (another person) shows the same model and figure.
    other = page.context.browser.new_context().new_page()
    other.goto(page.url)
    expect(other.locator('[data-testid="stMetricLabel"]').nth(1)).to_contain_text("Llama 3.1 8B", timeout=60_000)
    expect(other.locator('[data-testid="stMetricValue"]').nth(1)).to_have_text(shown)
    assert other.locator('[data-testid="stException"]').count() == 0
