"""Hypothesis-generated query strings on every page: never an exception, always a notice and defaults."""

import base64
import json
import re
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from core.hf_import import load_config_file
from tests.rendered import plain
from tests.strategies import CONFIGS, SHIPPED, structural_change



APP = str(Path(__file__).resolve().parents[2] / "app.py")
PAGES = ["pages/start.py", "pages/models.py", "pages/planner.py", "pages/fit.py", "pages/quality.py", "pages/throughput.py", "pages/api_costs.py", "pages/accuracy.py"]
KNOWN_KEYS = [
    "model", "models", "engine", "weights", "kv", "ctx", "seqs", "images", "image_tokens", "audio", "thinking",
    "ple_host", "ubatch", "swa_full", "kv_unified", "gpu_util", "kv_pool_gib", "batched_tokens", "block", "async",
    "gpu", "gpus", "count", "benchmark", "bw_eff", "mfu", "custom",
]
BOMB = "Bomb~" + base64.urlsafe_b64encode(zlib.compress(b"0" * 50_000_000, 9)).decode().rstrip("=")
SMALL_BOMB = "Bomb~" + base64.urlsafe_b64encode(zlib.compress(b"0" * 3_000_000, 9)).decode().rstrip("=")  # under 4,000 characters
HOSTILE_VALUES = st.one_of(
    st.sampled_from(["", "-1", "0", "NaN", "nan", "inf", "-inf", "1e400", "9" * 40, "true", "yes", "null", "[]", "{}", "<script>alert(1)</script>", "../../etc/passwd", "=SUM(A1)", "1e-300", "5e-324", "-0.0", "e2b,e2b,e2b", ",,,", "h100,nope"]),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(min_size=0, max_size=40),
    st.sampled_from(["a" * 10_000, "e2b," * 2_500, "9" * 10_000]),  # 10 kB values
    # Imported-model values: damaged, truncated, oversized, and a zip bomb's worth of zeros.
    st.sampled_from(["Mine~AAAA", "Mine~", "~", "Mine~" + "A" * 5_000, "x~eJzLSM3JyQcABiwCFQ", BOMB, SMALL_BOMB]),
    st.binary(max_size=300).map(lambda b: "Mine~" + base64.urlsafe_b64encode(zlib.compress(b)).decode().rstrip("=")),
)
MARKUP = st.sampled_from([
    "[click](https://evil.example)", "![x](https://evil.example/i.png)", "www.evil.example", "a@evil.example",
    ":material/home:", ":red[r]", "$x^2$", "<b>b</b>", "- item", "1. item", "# heading", "`code`", "**bold**",
    "&lt;script&gt;", "=HYPERLINK(\"https://evil.example\")", "+SUM(1+1)", "\u202eevil", "a\nb\rc\x00d",
])  # fmt: skip


@st.composite
def imported_model_values(draw) -> str:
    """A real config's stored form with its structure changed (tests/core/test_hf_import), under
    a drawn name: what a crafted custom= value carries."""
    stored = json.loads(load_config_file(CONFIGS / f"{draw(st.sampled_from(SHIPPED))}.json").normalized)
    if draw(st.booleans()):
        draw(structural_change(stored))
    if draw(st.booleans()):
        stored["text_config"]["model_type"] = draw(MARKUP | st.sampled_from(["www.evil.example", "deepseek_v3", "llama"]))
    name = draw(MARKUP | st.sampled_from(["www.evil.example", "Mine", "x.com", "1. one"]) | st.text(max_size=12))
    packed = zlib.compress(json.dumps(stored).encode(), 9)
    return f"{name}~" + base64.urlsafe_b64encode(packed).decode().rstrip("=")


HOSTILE_VALUES = HOSTILE_VALUES | MARKUP | imported_model_values()
KEYS = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(min_size=1, max_size=20), MARKUP)
QUERIES = st.lists(st.tuples(KEYS, HOSTILE_VALUES), min_size=1, max_size=6)


def run(page: str, pairs: list[tuple[str, str]]) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60)
    for key, value in pairs:
        # Repeated keys are allowed: the last ones are appended as a list, like a real URL.
        existing = app.query_params.get(key)
        if existing is None:
            app.query_params[key] = value
        else:
            app.query_params[key] = [*(existing if isinstance(existing, list) else [existing]), value]
    app.switch_page(page)
    return app.run()


def check(page: str, pairs: list[tuple[str, str]]) -> None:
    app = run(page, pairs)
    assert not app.exception, (page, pairs, app.exception)
    assert app.title, page  # the page rendered
    # Every notice is one short line with nothing left for Markdown to interpret.
    for element in (*app.warning, *app.error, *app.info):
        body = element.value
        assert "\n" not in body and len(plain(body)) <= 600, body[:200]
        assert re.search(r"(?<!\\)[\[\]<>`*]", body) is None, body[:200]
        assert not re.search(r"www\.|://|@\w|:[a-z/]", body, re.IGNORECASE), body[:200]
    # Every key the page does not use is named in a visible notice, on one line (control
    # characters and runs of whitespace become one space) and clipped at 80 characters.
    notices = plain(" ".join(w.value for w in app.warning))
    for key, _ in pairs:
        if key not in KNOWN_KEYS:
            one_line = re.sub(r"\s+", " ", "".join(c if c.isprintable() else " " for c in key))
            shown = one_line if len(one_line) <= 80 else one_line[:77] + "..."
            unused = [n for n in app.warning if "not used on this page" in plain(n.value)]
            assert len(unused) == 1 and f"'{shown}'" in plain(unused[0].value), (key, notices)


SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(QUERIES)
def test_models_page_survives_any_link(pairs):
    check("pages/models.py", pairs)


@SETTINGS
@given(QUERIES)
def test_planner_survives_any_link(pairs):
    check("pages/planner.py", pairs)


@SETTINGS
@given(QUERIES)
@example([("kv_pool_gib", "2.48643017399389e-282")])  # found by CI: a pool under one byte became 0 bytes
def test_fit_survives_any_link(pairs):
    check("pages/fit.py", pairs)


@SETTINGS
@given(QUERIES)
def test_quality_survives_any_link(pairs):
    check("pages/quality.py", pairs)


@SETTINGS
@given(QUERIES)
def test_throughput_survives_any_link(pairs):
    check("pages/throughput.py", pairs)


@SETTINGS
@given(QUERIES)
def test_accuracy_survives_any_link(pairs):
    check("pages/accuracy.py", pairs)


def test_a_link_full_of_unknown_keys_and_bad_items_gives_a_few_notices():
    pairs = [(f"k{index}", "1") for index in range(500)] + [("models", ",".join(f"bad{index}" for index in range(60)))]
    app = run("pages/planner.py", pairs)
    assert not app.exception
    notices = [plain(w.value) for w in app.warning]
    assert len(notices) <= 12, len(notices)
    assert any("'k0', 'k1'" in n and "and 492 more are not used on this page" in n for n in notices)
    assert any("52 more items are not valid" in n for n in notices)


def test_an_invalid_value_is_named_and_the_default_used():
    app = run("pages/planner.py", [("ctx", "9" * 40), ("seqs", "0"), ("gpu_util", "nan")])
    notices = [plain(w.value) for w in app.warning]
    assert any("ctx=" in n and "using the default, 32768" in n for n in notices)
    assert any("seqs=0" in n for n in notices)
    assert any("gpu_util=nan" in n for n in notices)
    assert app.sidebar.number_input(key="planner_ctx").value == 32_768


@pytest.mark.parametrize("page", PAGES)
def test_every_parameter_with_a_junk_value_is_named_in_a_notice(page):
    app = run(page, [(key, "<script>alert(1)</script>") for key in KNOWN_KEYS])
    assert not app.exception
    notices = plain(" ".join(w.value for w in app.warning))
    # Each is named; past eight unused ones (pages with no scenario), the rest are counted.
    counted = re.search(r"and (\d+) more are not used on this page", notices)
    named = [key for key in KNOWN_KEYS if f"'{key}" in notices]
    assert len(named) + (int(counted.group(1)) if counted else 0) == len(KNOWN_KEYS), (page, named, notices)
    assert "<script>" not in "".join(m.value for m in app.markdown)  # shown as text, never as markup


def test_a_crafted_link_value_never_becomes_a_link_in_the_notice():
    app = run("pages/planner.py", [("ctx", "[click me](https://evil.example)"), ("seqs", "www.evil.example")])
    raw = " ".join(w.value for w in app.warning)
    # Every bracket is escaped, so no link syntax remains; the autolink triggers are broken.
    assert re.search(r"(?<!\\)[\[\]]", raw) is None
    assert raw.count("\\[click") == 1 and raw.count("\\](") == 1
    assert "https://" not in raw and "www." not in raw
    # ...while the reader sees exactly what the link said (clipped at 80 characters).
    assert "ctx=[click me](https://evil.example)" in plain(raw) and "seqs=www.evil.example" in plain(raw)
