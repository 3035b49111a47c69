"""Browser fixtures: one real `streamlit run` per session, driven by Playwright through Debian's Chromium."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
# Generous on purpose: a 2-core CI machine runs the server, the browser and pytest side by side.
STARTUP_TIMEOUT_S = 60
WAIT_TIMEOUT_MS = 30_000
CHROMIUM_ARGS = [
    "--no-sandbox",  # containers run as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    # No network of its own: the tests run offline and must not wait on update or sync services.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",  # small /dev/shm in containers makes tabs crash
]


def _free_port() -> int:
    # Port 0 asks the kernel for a free port; the tiny window before streamlit binds it is acceptable.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _healthy(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=2) as response:
            return response.status == 200 and response.read().decode().strip() == "ok"
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the server's process group (streamlit and anything it started), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    for sig, grace_s in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(grace_s)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="session")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of `streamlit run app.py` on 127.0.0.1 and a free port, for the whole session."""
    yield from serve(tmp_path_factory)


@pytest.fixture
def fresh_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server of its own, for tests of what a server's very first request does."""
    yield from serve(tmp_path_factory)


def serve(
    tmp_path_factory: pytest.TempPathFactory, extra_args: Sequence[str] = (), cwd: Path = ROOT, path: str = ""
) -> Iterator[str]:
    """Start `streamlit run app.py` in `cwd`; yields its base URL (with `path`, a baseUrlPath)."""
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}" + (f"/{path.strip('/')}" if path else "")
    command = [
        sys.executable, "-m", "streamlit", "run", "app.py",
        "--server.address", "127.0.0.1",
        "--server.port", str(port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        # Nothing edits the files during a run; a watcher would only compete for the two cores.
        "--server.fileWatcherType", "none",
        *extra_args,
    ]  # fmt: skip
    # Under pytest's temporary root, which keeps the last few runs: server tracebacks stay readable.
    log_path = tmp_path_factory.mktemp("streamlit") / "server.log"
    log = log_path.open("w")
    # A new session makes the server its own process group, so teardown reaches its children too.
    process = subprocess.Popen(
        command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    started = time.monotonic()
    try:
        while not _healthy(base_url):
            if process.poll() is not None:
                pytest.fail(f"streamlit exited with {process.returncode} before it was healthy:\n{_read(log_path)}")
            if time.monotonic() - started > STARTUP_TIMEOUT_S:
                pytest.fail(f"streamlit was not healthy after {STARTUP_TIMEOUT_S} s:\n{_read(log_path)}")
            time.sleep(0.25)
        print(f"\nstreamlit healthy at {base_url} after {time.monotonic() - started:.1f} s (log: {log_path})")
        yield base_url
    finally:
        _stop(process)
        log.close()


def _read(path: Path) -> str:
    return Path(path).read_text(errors="replace") or "(no output)"


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium under Playwright; a downloaded browser is never used or fetched."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Browser tests need Debian's Chromium at {CHROMIUM}. Install it with `make chromium` "
            "(`make test` does this), or `apt-get install chromium`. Do not run `playwright install`."
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh context per test (no cookies or storage carried over), closed afterwards."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(WAIT_TIMEOUT_MS)
    expect.set_options(timeout=WAIT_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def open_app(app_server: str, page: Page) -> Callable[[str], Page]:
    """Open a path of the app and wait until its script has finished its run."""

    def open_path(path: str = "") -> Page:
        page.goto(f"{app_server}/{path.lstrip('/')}", wait_until="domcontentloaded")
        wait_for_script_to_finish(page)
        return page

    return open_path


def wait_for_script_to_finish(page: Page) -> None:
    """Wait until Streamlit reports the script run is over, so the page shows its final elements."""
    # The frontend marks its root with the script state; "notRunning" comes only after a finished run.
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=WAIT_TIMEOUT_MS)
