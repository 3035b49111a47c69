"""Load test: concurrent browser sessions against a real server on 127.0.0.1, bounded in count and time.

20 concurrent sessions each make 30 interactions across the pages (no error allowed; latency
reported), then 180 more sessions (20 at a time, 5 interactions each) so the server has seen 200;
server memory (RSS) after 200 sessions is compared with memory after the first 20.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from urllib.parse import parse_qs, urlparse
from pathlib import Path

from playwright.async_api import Page, async_playwright

ROOT = Path(__file__).resolve().parent.parent
PORT = 8799
BASE = f"http://127.0.0.1:{PORT}"
CONCURRENT = int(sys.argv[1]) if len(sys.argv) > 1 else 20
FIRST_WAVE_INTERACTIONS = int(sys.argv[2]) if len(sys.argv) > 2 else 30
LATER_INTERACTIONS = 5
TOTAL_SESSIONS = int(sys.argv[3]) if len(sys.argv) > 3 else 200
THINK_MIN_S, THINK_MAX_S = 0.5, 2.0
DEADLINE_S = 1500  # no new wave starts after 25 minutes
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
PAGES_WITH_CONTEXT = ["planner", "fit", "quality", "throughput"]
# Sidebar link -> the URL path it opens (Models is the default page: "/").
NAVIGATION = {
    "Models": "", "Memory planner": "planner", "Device fit": "fit", "Quality trade-offs": "quality",
    "Throughput and cost": "throughput", "Accuracy": "accuracy",
}
FINISHED = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def settle(page: Page) -> None:
    # Generous: 20 browsers and the server share two cores, so one step can queue for a while.
    await page.wait_for_selector(FINISHED, timeout=120_000)


async def session(browser, rng: random.Random, interactions: int, latencies: list[float], errors: list[str]) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    try:
        await page.goto(f"{BASE}/{rng.choice(PAGES_WITH_CONTEXT)}?ctx={rng.randint(1024, 65536)}", timeout=120_000)
        await settle(page)
        for _ in range(interactions):
            # People pause between actions; without it 20 browsers on the server's own two
            # cores measure the load generator, not the server.
            await page.wait_for_timeout(rng.uniform(THINK_MIN_S, THINK_MAX_S) * 1000)
            started = time.perf_counter()
            # An interaction ends when the URL shows it (the page writes its scenario into the
            # URL at the end of its run) and the script reports it has finished.
            if rng.random() < 0.7 and await page.get_by_role("spinbutton", name="Context tokens per sequence").count():
                box = page.get_by_role("spinbutton", name="Context tokens per sequence")
                tokens = rng.randint(1024, 131072)
                if tokens == 32_768:
                    tokens += 1  # the default context is left out of the URL
                await box.fill(str(tokens))
                await box.press("Enter")
                await page.wait_for_url(lambda url: parse_qs(urlparse(url).query).get("ctx") == [str(tokens)], timeout=120_000)
            else:
                name, path = rng.choice(list(NAVIGATION.items()))
                link = page.locator('[data-testid="stSidebarNav"] a', has_text=name).first
                # force: under load Playwright's "stable element" check can wait on animations
                # that a person's click would not.
                await link.click(timeout=120_000, force=True)
                await page.wait_for_url(lambda url: urlparse(url).path.strip("/") == path, timeout=120_000)
            await page.wait_for_timeout(50)  # the run that follows the URL change has started
            await settle(page)
            latencies.append(time.perf_counter() - started)
            if await page.locator('[data-testid="stException"]').count():
                errors.append(f"exception box on {page.url}")
    except Exception as error:  # noqa: BLE001 - counted and reported, the run goes on
        errors.append(f"{type(error).__name__}: {error}"[:200])
        try:
            await page.screenshot(path=f"/tmp/load-failure-{len(errors)}.png")
        except Exception:  # noqa: BLE001 - a screenshot is only a diagnostic
            pass
    finally:
        await context.close()


async def wave(browser, seed: int, interactions: int, latencies: list[float], errors: list[str]) -> None:
    rngs = [random.Random(seed * 1000 + i) for i in range(CONCURRENT)]
    await asyncio.gather(*(session(browser, rng, interactions, latencies, errors) for rng in rngs))


async def main() -> int:
    # The server's log is kept: a stalled run is diagnosed from it.
    log_path = Path(tempfile.gettempdir()) / "gemma4-planner-load-server.log"
    log = log_path.open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(PORT), "--server.address", "127.0.0.1",
         "--server.headless", "true", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
         "--logger.level", "info"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )
    started = time.monotonic()
    try:
        while True:
            try:
                if urllib.request.urlopen(f"{BASE}/_stcore/health").read() == b"ok":
                    break
            except OSError:
                await asyncio.sleep(0.1)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            latencies: list[float] = []
            errors: list[str] = []
            await wave(browser, 0, FIRST_WAVE_INTERACTIONS, latencies, errors)
            await asyncio.sleep(5)  # closed sessions are dropped by the server
            after_first = rss_mib(server.pid)
            first_latencies = list(latencies)
            sessions = CONCURRENT
            while sessions < TOTAL_SESSIONS and time.monotonic() - started < DEADLINE_S:
                await wave(browser, sessions, LATER_INTERACTIONS, latencies, errors)
                sessions += CONCURRENT
            await asyncio.sleep(5)
            after_all = rss_mib(server.pid)
            await browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)

    ordered = sorted(first_latencies)
    print(f"first wave: {CONCURRENT} concurrent sessions x {FIRST_WAVE_INTERACTIONS} interactions = {len(first_latencies)}")
    print(f"  interaction latency: median {statistics.median(ordered):.2f} s, p95 {ordered[int(0.95 * (len(ordered) - 1))]:.2f} s, max {ordered[-1]:.2f} s")
    print(f"sessions in all: {sessions}, interactions in all: {len(latencies)}, errors: {len(errors)}")
    for error in errors[:10]:
        print(f"  {error}")
    growth = after_all / after_first - 1
    print(f"server RSS after {CONCURRENT} sessions: {after_first:.0f} MiB; after {sessions}: {after_all:.0f} MiB ({growth:+.1%}, limit +20%)")
    print(f"wall time: {time.monotonic() - started:.0f} s; server log: {log_path}")
    return 0 if not errors and growth <= 0.20 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
