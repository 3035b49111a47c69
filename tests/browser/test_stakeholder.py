"""What a new user and a stakeholder with a link see, in a real browser: the start page's answer,
one scenario across pages, and an 800 px window where nothing is cut off."""

from __future__ import annotations

import csv

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import wait_for_script_to_finish

ANSWER = '[class*="st-key-answer_card"]'
# A cell that cuts its text shows "..." or one letter: its content is wider than its box.
TRUNCATED = """
selector => [...document.querySelectorAll(selector)]
  .filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1)
  .map(e => e.innerText)
"""


def answer_headline(page: Page) -> str:
    card = page.locator(ANSWER)
    expect(card).to_be_visible()
    return card.locator("h3").first.inner_text()


def test_one_4090_and_a_32k_chat_gets_an_answer_card_first(open_app):
    page = open_app("?gpu=nvidia-rtx-4090&ctx=32768")
    expect(page.locator("h1").first).to_have_text("What can I run?")
    assert answer_headline(page).startswith("Run Gemma 4 ")
    labels = page.locator(f'{ANSWER} [data-testid="stMetricLabel"]')
    expect(labels).to_have_count(4)
    assert [m.strip() for m in labels.all_inner_texts()] == ["MMLU Pro score", "Speed per user", "Memory", "Longest context (tokens)"]
    # The card comes before anything else the page shows below the inputs.
    card_top = page.locator(ANSWER).bounding_box()["y"]
    assert card_top < page.get_by_text("The alternatives, and what each gives up").bounding_box()["y"]


def test_a_pi_5_is_answered_with_a_small_model(open_app):
    page = open_app("?gpu=rpi5-8gb")
    # A small model under a runtime that runs on a Pi's CPU (LiteRT-LM: Google benchmarks E2B on a Pi 5).
    runtimes = ("llama.cpp", "Ollama", "LiteRT-LM")
    assert answer_headline(page) in {f"Run Gemma 4 {m} with {r}" for m in ("E2B", "E4B") for r in runtimes}


def test_a_16_gb_macbook_is_answered_with_a_mac_runtime(open_app):
    page = open_app("?gpu=apple-m4-16gb")
    assert answer_headline(page).endswith(("with MLX", "with llama.cpp", "with Ollama"))


def test_changing_the_use_case_redraws_the_answer(open_app):
    page = open_app("?gpu=nvidia-rtx-4090")
    before = page.locator(f'{ANSWER} [data-testid="stMetricValue"]').all_inner_texts()
    page.get_by_text("Long documents").click()
    page.wait_for_url("**use=documents*", timeout=30_000)
    wait_for_script_to_finish(page)
    after = page.locator(f'{ANSWER} [data-testid="stMetricValue"]').all_inner_texts()
    assert after != before


def test_a_31b_128k_two_h100_link_keeps_its_scenario_on_the_next_page(app_server, browser):
    """A stakeholder opens the link in a fresh browser and clicks through to Device fit."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(f"{app_server}/planner?models=gemma-4-31b&ctx=131072&gpus=nvidia-h100-sxm&count=2")
        wait_for_script_to_finish(page)
        page.locator('[data-testid="stSidebarNav"]').get_by_text("Device fit").click()
        page.wait_for_url("**/fit?*", timeout=30_000)
        wait_for_script_to_finish(page)
        assert "ctx=131072" in page.url and "count=2" in page.url
        expect(page.get_by_role("spinbutton", name="Context tokens per sequence")).to_have_value("131072")
    finally:
        context.close()


@pytest.mark.parametrize("path", ["", "planner", "fit", "throughput"])
def test_at_800_pixels_the_sidebar_starts_collapsed_and_nothing_is_cut_off(app_server, browser, path):
    context = browser.new_context(viewport={"width": 800, "height": 900})
    try:
        page = context.new_page()
        page.goto(f"{app_server}/{path}")
        wait_for_script_to_finish(page)
        expect(page.locator('[data-testid="stSidebar"]')).to_have_attribute("data-collapsed", "true")
        page.wait_for_timeout(500)  # the sidebar's closing transition
        assert page.evaluate(TRUNCATED, '[data-testid="stMetricValue"] > div') == []
        assert page.evaluate(TRUNCATED, '[data-testid="stMetricValue"] p') == []
        assert page.evaluate(TRUNCATED, '[data-testid="stDownloadButton"] button p') == []
        assert page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 0
    finally:
        context.close()


def test_at_1280_pixels_the_sidebar_stays_open(open_app):
    page = open_app("planner")
    expect(page.locator('[data-testid="stSidebar"]')).to_have_attribute("data-collapsed", "false")


LUMINANCE = """
selector => {
  const element = document.querySelector(selector);
  if (!element) return null;
  const style = getComputedStyle(element);
  const colour = element instanceof SVGElement ? style.fill : (style.backgroundColor !== 'rgba(0, 0, 0, 0)' ? style.backgroundColor : style.color);
  const [r, g, b] = colour.match(/[\\d.]+/g).slice(0, 3).map(Number).map(v => v / 255)
    .map(c => c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
"""


@pytest.mark.parametrize(("scheme", "dark"), [("light", False), ("dark", True)])
def test_the_browsers_colour_scheme_picks_the_theme_and_charts_follow_it(app_server, browser, scheme, dark):
    """A stakeholder whose system is dark gets the dark theme: background, text and chart labels."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=scheme)
    try:
        page = context.new_page()
        page.goto(f"{app_server}/planner?models=31b,e4b", wait_until="domcontentloaded")
        wait_for_script_to_finish(page)
        page.locator(".js-plotly-plot .xtick text").first.wait_for(timeout=30_000)
        background = page.evaluate(LUMINANCE, '[data-testid="stApp"]')
        title = page.evaluate(LUMINANCE, "h1")
        tick = page.evaluate(LUMINANCE, ".js-plotly-plot .xtick text")
        # WCAG: text needs 4.5:1 against its background; each must sit on the right side of it.
        def ratio(a: float, b: float) -> float:
            return (max(a, b) + 0.05) / (min(a, b) + 0.05)

        assert (background < 0.05) == dark
        assert ratio(title, background) >= 4.5 and ratio(tick, background) >= 4.5
    finally:
        context.close()


def test_device_fit_on_ios_safari_says_what_the_tab_refuses_and_why(open_app, tmp_path):
    """An app developer checks iPhone users: the variants transformers.js cannot load in iOS
    Safari are listed with the browser limit that refuses them, and the list downloads as CSV."""
    page = open_app("fit?gpu=browser-ios-safari-26&ctx=4096")
    expect(page.get_by_text("Refused here, and why")).to_be_visible()
    with page.expect_download(timeout=60_000) as info:
        page.locator(".st-key-fit_refused_csv button:visible").click()
    saved = tmp_path / "refused.csv"
    info.value.save_as(saved)
    rows = list(csv.DictReader(saved.open(encoding="utf-8")))
    # E2B's per-layer embedding table at 4 bits is 262,144 x 35 x 256 / 2 B = 1.17 GB, over
    # iOS Safari's 1 GiB maxBufferSize; 26B-A4B and 31B have no transformers.js export at all.
    e2b_q4 = [r for r in rows if "E2B" in r["model"] and "q4" in r["weight format"].lower()]
    assert e2b_q4 and all("maxBufferSize" in r["reason"] and "1.17 GB" in r["reason"] for r in e2b_q4)
    assert any("31B" in r["model"] and "no ONNX export" in r["reason"] for r in rows)


def test_the_planner_gives_a_mistralrs_command_and_the_link_keeps_its_paged_attention_choice(open_app):
    """An ML engineer plans 31B under mistral.rs on an H100 with ISQ Q4K and PagedAttention off:
    the launch command carries --isq q4k and --paged-attn off, and the page's own link reopens it."""
    page = open_app("planner?models=31b&engine=mistral.rs&weights=isq-q4k&gpus=h100&ctx=8192&paged_attn=off")
    command = page.locator('[data-testid="stCode"]').filter(has_text="mistralrs serve").first
    expect(command).to_be_visible(timeout=60_000)
    text = command.inner_text()
    # mistral.rs README @9e92262: `mistralrs serve -m google/gemma-4-31B-it`; --isq by type name.
    assert "mistralrs serve -m google/gemma-4-31B-it --isq q4k" in text
    assert "--paged-attn off" in text
    assert "paged_attn=off" in page.url
