"""'Your own model' on the planner and fit pages: paste or upload, link round trip, bad input."""

import json
import random
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.rendered import plain

APP = str(Path(__file__).resolve().parents[2] / "app.py")
CONFIGS = Path(__file__).resolve().parents[2] / "data" / "configs"
LLAMA = (CONFIGS / "llama-3.1-8b.json").read_text(encoding="utf-8")
# Llama 3.1 8B by hand: 32 layers x 8 kv heads x 128 x (K and V) x 2 bytes per token.
LLAMA_KV_BYTES_PER_TOKEN = 32 * 8 * 128 * 2 * 2



def open_page(page: str, **query) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60)
    app.query_params.update(query)
    app.switch_page(page)
    return app.run()


def table(app: AppTest, column: str):
    for frame in app.dataframe:
        if column in frame.value.columns:
            return frame.value
    raise AssertionError(f"no table with a '{column}' column")


def add(app: AppTest, page: str, name: str = "", text: str | None = None, upload: tuple | None = None) -> AppTest:
    if name:
        app.sidebar.text_input(key=f"{page}_custom_name").set_value(name)
    if text is not None:
        app.sidebar.text_area(key=f"{page}_custom_text").set_value(text)
    if upload is not None:
        app.sidebar.file_uploader(key=f"{page}_custom_file").set_value(upload)
    app.sidebar.button(key=f"{page}_custom_add").click()
    return app.run()


def test_pasted_llama_appears_beside_gemma_with_a_hand_checked_kv_cache():
    app = open_page("pages/planner.py", engine="transformers", ctx="8192", models="31b")
    add(app, "planner", "Llama 3.1 8B", text=LLAMA)
    assert not app.exception and not app.sidebar.error
    assert [m.label for m in app.metric] == ["Gemma 4 31B", "Llama 3.1 8B"]
    breakdown = table(app, "KV cache, full attention (GiB)").set_index("model")
    assert breakdown.loc["Llama 3.1 8B", "KV cache, full attention (GiB)"] == pytest.approx(
        8192 * LLAMA_KV_BYTES_PER_TOKEN / 2**30, abs=1e-3
    )
    # Every chart has a trace for it, and the link carries it.
    for chart in app.get("plotly_chart"):
        assert "Llama 3.1 8B" in chart.proto.spec
    assert app.query_params["custom"].startswith("Llama 3.1 8B~")


def test_the_link_reopens_the_imported_model_for_someone_else():
    app = open_page("pages/planner.py", models="e2b")
    add(app, "planner", "My Qwen", upload=("qwen3-30b-a3b.json", (CONFIGS / "qwen3-30b-a3b.json").read_bytes(), "application/json"))
    link = dict(app.query_params)
    reopened = open_page("pages/planner.py", **link)
    assert not reopened.exception and not reopened.warning
    assert [m.label for m in reopened.metric] == [m.label for m in app.metric] == ["Gemma 4 E2B", "My Qwen"]
    assert [m.value for m in reopened.metric] == [m.value for m in app.metric]


def test_fit_page_lists_the_imported_model_and_keeps_the_gemma_recommendation():
    app = open_page("pages/fit.py", gpu="h100", engine="vllm")
    add(app, "fit", "gpt-oss-20b", upload=("gpt-oss-20b.json", (CONFIGS / "gpt-oss-20b.json").read_bytes(), "application/json"))
    assert not app.exception
    heatmap = json.loads(app.get("plotly_chart")[0].proto.spec)["data"][0]
    assert "gpt-oss-20b" in heatmap["x"]
    detail = table(app, "needed (GiB)")
    oss = detail[detail["model"] == "gpt-oss-20b"]
    assert set(oss["weight format"]) >= {"BF16", "MXFP4 experts + BF16 (gpt-oss native)"}
    assert oss["quality (1 = best)"].isna().all()
    assert app.success[0].value.startswith("Run Gemma 4")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (LLAMA[: len(LLAMA) // 2], "not valid JSON"),
        (json.dumps({**json.loads(LLAMA), "num_hidden_layers": 10**18}), "num_hidden_layers"),
        (json.dumps({**json.loads(LLAMA), "hidden_size": -1}), "hidden_size"),
        ("[" * 50_000 + "]" * 50_000, "nests deeper than 16 levels"),
        # The browser's text box keeps 2^20 characters (max_chars: a 50 MB paste is cut there,
        # checked below); 2^20 two-byte characters still make 2 MiB, which the size check refuses.
        ("é" * 2**20, "the limit is 1,048,576"),
        ("", "upload a config.json or paste"),
    ],
)
def test_bad_pastes_are_refused_clearly_and_lose_nothing(text, message):
    app = open_page("pages/planner.py", ctx="4096")
    add(app, "planner", "First", text=LLAMA)
    before = [m.value for m in app.metric]
    add(app, "planner", "Second", text=text)
    assert not app.exception
    assert message in plain(app.sidebar.error[0].value)
    assert [m.value for m in app.metric] == before  # the view and the first model are kept
    assert app.query_params["ctx"] == "4096" and app.query_params["custom"].startswith("First~")


def test_the_paste_box_stops_at_the_config_limit_in_the_browser():
    app = open_page("pages/planner.py")
    box = app.sidebar.text_area(key="planner_custom_text")
    assert box.proto.max_chars == 2**20
    uploader = app.sidebar.file_uploader(key="planner_custom_file")
    assert uploader.allowed_type == [".json"]


def test_non_json_uploads_and_duplicate_names_are_refused():
    app = open_page("pages/planner.py")
    add(app, "planner", "Same", text=LLAMA)
    add(app, "planner", "Same", text=LLAMA)
    assert "already added" in app.sidebar.error[0].value
    add(app, "planner", "Binary", upload=("config.json", b"\x89PNG\r\n\x1a\n\x00", "application/json"))
    assert "not UTF-8" in app.sidebar.error[0].value


def test_damaged_custom_links_fall_back_with_a_notice():
    app = open_page("pages/planner.py", custom="Mine~AAAA")
    assert not app.exception
    assert "custom" in plain(" ".join(w.value for w in app.warning))
    assert app.metric


def test_a_model_too_large_for_a_link_is_kept_and_offered_as_a_scenario_file():
    rng = random.Random(7)
    big = {**json.loads(LLAMA), "num_hidden_layers": 1000, "intermediate_size": [rng.randrange(1000, 99_999) for _ in range(1000)]}
    app = open_page("pages/planner.py", models="e2b")
    add(app, "planner", "Deep", text=json.dumps(big))
    assert not app.exception
    assert [m.label for m in app.metric] == ["Gemma 4 E2B", "Deep"]
    assert "custom" not in app.query_params  # the link keeps everything else
    warning = plain(" ".join(w.value for w in app.sidebar.warning))
    assert "too large for a link" in warning
    # The scenario file brings the model back on another session (pasted here; uploads work alike).
    from ui.custom import SCENARIO_MARKER

    normalized = None
    for value in app.session_state["planner_custom"]:
        from core.hf_import import decode_link

        normalized = json.loads(decode_link(value, 10**7)[1].normalized)
    scenario = json.dumps({SCENARIO_MARKER: 1, "models": [{"name": "Deep", "config": normalized}]})
    other = open_page("pages/planner.py", models="e2b")
    add(other, "planner", text=scenario)
    assert [m.value for m in other.metric] == [m.value for m in app.metric]


def test_only_the_first_three_imported_models_in_a_link_are_decoded():
    # A link may carry many custom values; decoding costs work, so only the three that can be
    # shown are read: the damaged fourth and fifth are never looked at.
    from core.hf_import import encode_link, read_config

    good = [encode_link(f"Llama {n}", read_config(LLAMA)) for n in (1, 2, 3)]
    app = open_page("pages/planner.py", models="e2b", custom=",".join([*good, "Broken~AAAA", "Bad name*~AAAA"]))
    assert not app.exception
    notices = plain(" ".join(w.value for w in app.warning))
    assert "lists 5 items; the first 3 are used" in notices
    assert "damaged" not in notices and "model name" not in notices
    assert [m.label for m in app.metric] == ["Gemma 4 E2B", "Llama 1", "Llama 2", "Llama 3"]
