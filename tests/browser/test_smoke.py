"""The real app renders in a real browser: the title shows, no exception box, a screenshot is taken."""

import time

from playwright.sync_api import expect

from tests.browser.conftest import wait_for_script_to_finish


def test_root_renders_without_an_exception(app_server, page, tmp_path):
    started = time.monotonic()
    page.goto(app_server, wait_until="domcontentloaded")
    page.wait_for_selector('[data-testid="stApp"]')
    expect(page.locator('[data-testid="stAppViewContainer"]')).to_contain_text("Gemma 4")
    wait_for_script_to_finish(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    # Data grids draw on a canvas from a lazily loaded chunk: wait for them so the screenshot shows tables.
    frames = page.locator('[data-testid="stDataFrame"]')
    for index in range(frames.count()):
        expect(frames.nth(index).locator("canvas").first).to_be_attached()

    screenshot = tmp_path / "root.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 0
    assert screenshot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    print(f"root page rendered and captured in {time.monotonic() - started:.1f} s")
