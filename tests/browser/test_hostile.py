"""A stranger's link in a real browser: no request leaves the server, nothing becomes a link,
an image or markup, oversized links say so, and tables offer no unneutralised CSV."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from playwright.sync_api import Page, Request, expect

from core.hf_import import encode_link, load_config_file
from tests.browser.conftest import wait_for_script_to_finish

ROOT = Path(__file__).resolve().parents[2]
# The start page is the default page: it lives at "/" (/start is "Page not found" once navigation is known).
PAGES = ["", "models", "planner", "fit", "quality", "throughput", "api_costs", "accuracy"]
EVIL = "https://evil.example"
# What a crafted value tries to become in Markdown: a link, an image, an autolink, an e-mail
# link, a Material icon, coloured text, LaTeX and an HTML tag.
CRAFTED = f"[click]({EVIL}) ![x]({EVIL}/i.png) www.evil.example a@evil.example :material/home: :red[r] $x^2$ <b>b</b>"


def evil_model_value(name: str = "www.evil.example") -> str:
    """A real config (Llama 3.1 8B) renamed and relabelled as hostile text a link can carry."""
    imported = load_config_file(ROOT / "data" / "configs" / "llama-3.1-8b.json")
    config = json.loads(imported.normalized)
    config["text_config"]["model_type"] = "www.evil.example"
    from core.hf_import import import_normalized

    return encode_link(name, import_normalized(json.dumps(config)))


def record_requests(page: Page) -> list[str]:
    seen: list[str] = []

    def on_request(request: Request) -> None:
        seen.append(request.url)

    page.on("request", on_request)
    return seen


def outside(urls: list[str], base: str) -> list[str]:
    origin = urlsplit(base)
    return [
        url for url in urls
        if not url.startswith(("data:", "blob:", "about:"))
        and (urlsplit(url).scheme, urlsplit(url).netloc) != (origin.scheme, origin.netloc)
    ]  # fmt: skip


def settle(page: Page) -> None:
    wait_for_script_to_finish(page)
    page.wait_for_load_state("networkidle")


@pytest.mark.parametrize("path", PAGES)
def test_no_request_leaves_the_apps_own_server(app_server, page, path):
    seen = record_requests(page)
    page.goto(f"{app_server}/{path}")
    settle(page)
    expect(page.locator("h1").first).to_be_visible()
    assert seen, "the page made no request at all: the recorder is not working"
    assert outside(seen, app_server) == []
    icon = page.locator('link[rel~="icon"]').first.get_attribute("href") or ""
    assert not outside([icon if "://" in icon else f"{app_server}/{icon.lstrip('/')}"], app_server)


def test_a_crafted_link_renders_as_plain_text_and_fetches_nothing(app_server, page):
    seen = record_requests(page)
    query = urlencode([("ctx", CRAFTED), ("custom", evil_model_value()), (CRAFTED, "1")])
    page.goto(f"{app_server}/planner?{query}")
    settle(page)
    expect(page.locator('[data-testid="stPlotlyChart"] .main-svg').first).to_be_attached()
    app = page.locator('[data-testid="stApp"]')
    # Nothing the link said became a link, an image, code, emphasis, LaTeX or an icon.
    hrefs = app.evaluate("root => [...root.querySelectorAll('a[href]')].map(a => a.href)")
    assert outside(hrefs, app_server) == []  # the app's own anchors and page links only
    sources = app.evaluate("root => [...root.querySelectorAll('img')].map(i => i.src)")
    assert [source for source in sources if "evil" in source] == []
    alerts = page.locator('[data-testid="stAlertContainer"]')
    for index in range(alerts.count()):
        html = alerts.nth(index).inner_html()
        for tag in ("<a ", "<img", "<code", "<em", "<strong", "katex", "stMarkdownColoredText", "Material Symbols", "<b>"):
            assert tag not in html, (tag, html[:400])
    # ...and the reader sees exactly what it said, clipped at 80 characters.
    text = page.locator('[data-testid="stAlertContainer"]').all_inner_texts()
    shown = " ".join(text).replace("\u200b", "")
    assert f"ctx={CRAFTED[:70]}" in shown
    # The imported model's name and family are plain text in the sidebar and the main view.
    sidebar = page.locator('[data-testid="stSidebar"]')
    expect(sidebar).to_contain_text("unknown (www")
    assert outside(seen, app_server) == []


def test_a_link_with_more_parameters_than_streamlit_reads_says_so(app_server, page):
    # Streamlit hands the script no parameters at all past 1,000: the page must say why its
    # defaults are shown instead of ignoring the link silently. The server's first run is
    # already past by now (the session-scoped server has served other tests).
    page.goto(f"{app_server}/")
    settle(page)
    query = "&".join(f"p{index}=1" for index in range(1_001))
    page.goto(f"{app_server}/planner?ctx=4096&{query}")
    settle(page)
    notice = page.locator('[data-testid="stAlertContainer"]', has_text="1,002 parameters")
    expect(notice).to_be_visible()
    assert page.locator('[data-testid="stException"]').count() == 0


def test_a_long_hostile_link_gives_a_short_notice(app_server, page):
    page.goto(f"{app_server}/planner?ctx={'9' * 1_500}&models={'x' * 1_500}")
    settle(page)
    texts = page.locator('[data-testid="stAlertContainer"]').all_inner_texts()
    assert len(texts) >= 2 and all(len(text) < 400 for text in texts), [len(text) for text in texts]


def test_tables_offer_only_the_apps_neutralised_csv(open_app):
    page = open_app("")
    table = page.locator('[data-testid="stDataFrame"]').first
    table.hover()
    page.wait_for_timeout(300)
    assert page.get_by_role("button", name="Download as CSV").count() == 0
    expect(page.locator('[data-testid="stDownloadButton"] button:visible', has_text="CSV").first).to_be_visible()
