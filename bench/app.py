"""App benchmarks: rerun per page in AppTest (bench/server.py: on a real server), cold start, browser timings."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from streamlit.testing.v1 import AppTest  # noqa: E402

# page script -> the URL-bound widget changed between reruns (None: a plain rerun)
PAGES = {
    "pages/start.py": None,
    "pages/models.py": None,
    "pages/planner.py": "planner_ctx",
    "pages/fit.py": "fit_ctx",
    "pages/quality.py": "quality_ctx",
    "pages/throughput.py": "throughput_ctx",
    "pages/accuracy.py": None,
    "pages/api_costs.py": "api_ctx",
}
URLS = {"": 0, "models": 0, "planner": 4, "fit": 0, "quality": 2, "throughput": 1, "accuracy": 1, "api_costs": 1}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
RERUNS = 30
# The planner's breakdown chart, KV-cache trace: it changes with the context.
KV_TRACE_Y = "Array.from(document.querySelectorAll('.js-plotly-plot')[0]?._fullData?.[1]?.y ?? [])"


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def reruns() -> None:
    # AppTest runs the script without Streamlit's gc.collect after every run (runner.postScriptGC),
    # so these are the scripts' own cost; bench/server.py measures what a real server pays.
    print("AppTest reruns (wall time, no post-script collection; the real server: make bench-server)\n")
    print("| page | rerun median | rerun p95 | target |")
    print("|---|---|---|---|")
    from core.hf_import import encode_link, load_config_file

    own = ",".join(
        encode_link(name, load_config_file(ROOT / "data" / "configs" / f"{stem}.json"))
        for name, stem in (("Llama 3.1 8B", "llama-3.1-8b"), ("Qwen3 30B-A3B", "qwen3-30b-a3b"))
    )
    runs = [(script, widget, {}) for script, widget in PAGES.items()]
    runs += [("pages/planner.py", "planner_ctx", {"custom": own}), ("pages/fit.py", "fit_ctx", {"custom": own})]
    for script, widget, query in runs:
        app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
        app.run()  # app.py's navigation first: a page whose url_path is not its file name needs it
        app.query_params.update(query)
        app.switch_page(script)
        app.run()
        samples = []
        for index in range(RERUNS):
            started = time.perf_counter()
            if widget:
                # A new value every time: no cache hits flatter the figure.
                app.sidebar.number_input(key=widget).set_value(8192 + 257 * index).run()
            else:
                app.run()
            samples.append(time.perf_counter() - started)
            assert not app.exception, app.exception
        label = script + (" + 2 imported models" if query else "")
        print(f"| {label} | {statistics.median(samples) * 1e3:,.0f} ms | {percentile(samples, 0.95) * 1e3:,.0f} ms | < 150 ms |")


def server_and_browser() -> None:
    from playwright.sync_api import sync_playwright

    port = 8766
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.address", "127.0.0.1",
         "--server.headless", "true", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                if urllib.request.urlopen(f"{base}/_stcore/health").read() == b"ok":
                    break
            except OSError:
                time.sleep(0.05)
        print(f"\nserver cold start to /_stcore/health: {time.perf_counter() - started:.2f} s\n")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            print("| page | first load to drawn chart (or table) | target |")
            print("|---|---|---|")
            for path, charts in URLS.items():
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                started = time.perf_counter()
                page.goto(f"{base}/{path}")
                selector = '[data-testid="stPlotlyChart"] .main-svg' if charts else '[data-testid="stDataFrame"] canvas'
                page.wait_for_selector(selector, state="attached", timeout=60_000)
                print(f"| {path} | {time.perf_counter() - started:.2f} s | < 5 s |")
                page.close()

            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{base}/planner?models=gemma-4-31b")
            page.wait_for_selector('[data-testid="stPlotlyChart"] .main-svg', state="attached", timeout=60_000)
            page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')
            changes = []
            for index in range(8):
                page.wait_for_function(f"() => {KV_TRACE_Y}.length > 0", timeout=30_000)
                before = page.evaluate(f"() => JSON.stringify({KV_TRACE_Y})")
                box = page.get_by_role("spinbutton", name="Context tokens per sequence")
                box.fill(str(40_000 + 10_000 * index))
                started = time.perf_counter()
                box.press("Enter")
                page.wait_for_function(
                    f"b => JSON.stringify({KV_TRACE_Y}) !== b",
                    arg=before, timeout=30_000,
                )
                changes.append(time.perf_counter() - started)
            print(f"\ncontrol change to updated chart (planner, {len(changes)} changes): median "
                  f"{statistics.median(changes):.2f} s, worst {max(changes):.2f} s (target < 1 s)")

            # The start page: a new use case to the answer card's new figures (target < 1.5 s).
            page.goto(f"{base}/?gpu=nvidia-rtx-4090")
            page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')
            card = '[class*="st-key-answer_card"] [data-testid="stMetricValue"]'
            answers = []
            for label in ["Long documents", "Agent with thinking", "Serving users", "Chat"] * 2:
                before = page.locator(card).all_inner_texts()
                started = time.perf_counter()
                page.get_by_text(label, exact=True).click()
                page.wait_for_function(
                    "([selector, before]) => JSON.stringify([...document.querySelectorAll(selector)]"
                    ".map(e => e.innerText)) !== before",
                    arg=[card, json.dumps(before, ensure_ascii=False, separators=(",", ":"))], timeout=30_000,
                )
                answers.append(time.perf_counter() - started)
            print(f"start page, use case change to new answer ({len(answers)} changes): median "
                  f"{statistics.median(answers):.2f} s, worst {max(answers):.2f} s (target < 1.5 s)")
            page.goto(f"{base}/planner?models=gemma-4-31b")
            page.wait_for_selector('[data-testid="stPlotlyChart"] .main-svg', state="attached", timeout=60_000)

            exports = {}
            for label in ("PNG", "SVG", "PNG"):
                started = time.perf_counter()
                with page.expect_download(timeout=60_000):
                    page.locator('[data-testid="stDownloadButton"] button:visible', has_text=label).first.click()
                exports.setdefault(label, []).append(time.perf_counter() - started)
            print(f"export click to file: PNG first {exports['PNG'][0]:.2f} s, PNG warm {exports['PNG'][1]:.2f} s, "
                  f"SVG {exports['SVG'][0]:.2f} s")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    reruns()
    server_and_browser()
