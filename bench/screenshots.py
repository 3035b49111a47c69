"""Screenshots of every page for the README: a real server and Debian's Chromium, at a width and a colour
scheme (`python bench/screenshots.py 800 dark`); dark files are named <page>-<width>-dark.png."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from urllib.parse import quote
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from core.hf_import import encode_link, load_config_file  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
# Two imported models beside Gemma 4, the way a shared link carries them.
OWN_MODELS = ",".join(
    quote(encode_link(name, load_config_file(ROOT / "data" / "configs" / f"{stem}.json")))
    for name, stem in (("Llama 3.1 8B", "llama-3.1-8b"), ("Qwen3 30B-A3B", "qwen3-30b-a3b"))
)
PORT = 8765
PAGES = {
    "start": "",
    "models": "models",
    "planner": "planner?models=gemma-4-31b,gemma-4-26b-a4b,gemma-4-e4b,gemma-4-e2b&ctx=65536",
    "own-models": f"planner?models=gemma-4-31b,gemma-4-26b-a4b&ctx=32768&engine=vllm&custom={OWN_MODELS}",
    "fit": "fit?gpu=nvidia-rtx-4090&engine=llama.cpp&kv=q8_0&ctx=16384&weights=gguf-q4_k_m",
    "quality": "quality?gpu=nvidia-l40s",
    "throughput": "throughput?model=gemma-4-26b-a4b&gpus=nvidia-h100-sxm,nvidia-l40s,nvidia-rtx-4090&weights=fp8",
    "accuracy": "accuracy",
    "api": "api_costs?model=gemma-4-26b-a4b&gpu=nvidia-h100-sxm&engine=vllm&weights=fp8&ctx=4096",
}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]


def main(width: int = 1280, scheme: str = "light") -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(PORT), "--server.address", "127.0.0.1",
         "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{PORT}/_stcore/health").read() == b"ok":
                    break
            except OSError:
                time.sleep(0.25)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            # Streamlit follows the browser's prefers-color-scheme to its [theme.light] or [theme.dark].
            page = browser.new_page(viewport={"width": width, "height": 1000}, color_scheme=scheme)
            suffix = "" if scheme == "light" else f"-{scheme}"
            for name, path in PAGES.items():
                page.goto(f"http://127.0.0.1:{PORT}/{path}")
                page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=60_000)
                # A first request may rerun once through app.py: wait until nothing is stale.
                page.wait_for_function(
                    "() => !document.querySelector('[data-stale=\"true\"], [data-testid=\"stSkeleton\"]')",
                    timeout=60_000,
                )
                page.wait_for_timeout(2000)  # let charts and data grids finish drawing
                page.screenshot(path=str(OUT / f"{name}-{width}{suffix}.png"))
                print(f"saved {name}-{width}{suffix}.png")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1280, sys.argv[2] if len(sys.argv) > 2 else "light")
