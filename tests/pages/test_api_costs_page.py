"""The Self-host or API page through app.py: it renders, falls back on bad links, and draws sane axes."""

import json
import math
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.catalog import DATA_DIR, DATA_DIR_VARIABLE
from tests.pages.test_app import plotly_traces
from tests.rendered import plain

APP = str(Path(__file__).resolve().parents[2] / "app.py")
PAGE = "pages/api_costs.py"
# A plan that fits one H100 with room for 32 sequences: the page has a cost to show.
H100_PLAN = dict(model="gemma-4-26b-a4b", gpu="nvidia-h100-sxm", engine="vllm", weights="fp8", ctx="4096", seqs="32")
H100_MONTH_USD = 2.99 * 730  # gpus.csv's hourly price, every hour of a 730-hour month


def open_page(**query: str) -> AppTest:
    """The page with this link. Its url_path ('api') is not its file name, which AppTest only
    matches once app.py's navigation has run: one plain run first, then the link."""
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    app.query_params.clear()
    app.query_params.update(query)
    app.switch_page(PAGE)
    return app.run()


def chart_layout(app: AppTest) -> dict:
    (chart,) = app.get("plotly_chart")
    return json.loads(chart.proto.spec)["layout"]


def test_page_renders_the_costs_the_table_and_the_chart():
    app = open_page(**H100_PLAN)
    assert not app.exception and not app.error
    assert app.title[0].value == "Self-host or API (estimates)"
    labels = [metric.label for metric in app.metric]
    assert "Self-hosted, $ per 1M output tokens" in labels
    table = app.dataframe[0].value
    assert set(table["model"]) == {"gemma-4-26b-a4b"}
    assert {"as of", "source", "self-hosting pays from (tokens a month)"} <= set(table.columns)
    # Sorted by blended price, cheapest first.
    blended = table["$ per 1M tokens (3:1)"].tolist()
    assert blended == sorted(blended)
    # The self-hosted line starts at one rented H100 for the month.
    own = plotly_traces(app.get("plotly_chart")[0])[0]
    assert own["y"][0] == pytest.approx(H100_MONTH_USD)


def test_chart_axes_are_sane():
    app = open_page(**H100_PLAN)
    layout = chart_layout(app)
    x_low, x_high = layout["xaxis"]["range"]
    assert x_low == 6 and 9 <= x_high <= 15  # 1M tokens up to at most 10^15 a month
    y_low, y_high = layout["yaxis"]["range"]
    assert y_low >= -2  # never below a cent
    assert y_high >= math.log10(H100_MONTH_USD)  # the self-hosted line is inside the plot
    assert y_high <= math.log10(H100_MONTH_USD) + 6
    for axis in ("xaxis", "yaxis"):
        assert layout[axis]["type"] == "log"
        # One label a decade: no '2' and '5' minor labels between them.
        assert all(math.log10(v) == round(math.log10(v)) for v in layout[axis]["tickvals"])
    assert layout["xaxis"]["ticktext"][:4] == ["1M", "10M", "100M", "1B"]
    # The legend sits under the plot, clear of the title.
    assert layout["legend"]["y"] < 0 and layout["legend"]["yanchor"] == "top"


def test_a_link_with_bad_values_falls_back_with_a_notice():
    app = open_page(**H100_PLAN, util="7", months="forever", pricing="lease", ratio="-1")
    assert not app.exception and not app.error
    notices = " ".join(plain(w.value) for w in app.warning)
    for name in ("util", "months", "pricing", "ratio"):
        assert f"Link parameter '{name}=" in notices
    assert app.slider(key="api_util").value == 0.5
    assert app.number_input(key="api_months").value == 36
    assert app.radio(key="api_pricing").value == "rental"
    assert app.get("plotly_chart")


def test_a_plan_that_does_not_fit_has_no_self_hosting_cost_but_keeps_the_prices():
    app = open_page(model="gemma-4-31b", gpu="nvidia-rtx-4090", engine="vllm", weights="bf16", ctx="8192")
    assert not app.exception and not app.error
    assert any("does not fit" in plain(i.value) for i in app.info)
    assert not app.metric and not app.get("plotly_chart")
    assert set(app.dataframe[0].value["model"]) == {"gemma-4-31b"}


def test_bought_device_costs_amortisation_and_electricity():
    app = open_page(
        model="gemma-4-26b-a4b", gpu="nvidia-rtx-4090", engine="llama.cpp", weights="gguf-q4_k_m", ctx="8192",
        pricing="purchase", months="24", kwh="0.3",
    )  # fmt: skip
    assert not app.exception and not app.error
    own = plotly_traces(app.get("plotly_chart")[0])[0]
    # $1,599 over 24 months, plus 450 W for 365 busy hours at $0.30.
    assert own["y"][0] == pytest.approx(1599 / 24 + 0.450 * 365 * 0.30)


def test_a_malformed_price_file_stops_the_page_naming_file_row_and_field(tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    path = data / "api_prices.csv"
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace(",0.40,", ",cheap,", 1)
    path.write_text("\n".join(lines) + "\n")
    monkeypatch.setenv(DATA_DIR_VARIABLE, str(data))
    app = open_page(**H100_PLAN)
    assert not app.exception
    message = plain(app.error[0].value)
    assert "api_prices.csv" in message and "line 3" in message and "usd_per_million_output_tokens" in message


def test_every_input_has_a_tooltip():
    app = open_page(**H100_PLAN)
    widgets = ("selectbox", "number_input", "slider", "checkbox", "radio", "select_slider", "multiselect", "text_input")
    assert [w.label for kind in widgets for w in getattr(app, kind) if not (w.help or "").strip()] == []


def test_concurrency_nobody_chose_is_what_the_runtime_serves_at_once():
    # E2B BF16 at 2K leaves an H100 room for more than 1,024 requests: vLLM batches up to its
    # --max-num-seqs default on a GPU of >= 70 GiB other than an A100, 1,024 (vllm/engine/
    # arg_utils.py _set_default_args), so that is the load priced, and the sidebar shows it.
    plan = {**{k: v for k, v in H100_PLAN.items() if k != "seqs"}, "model": "gemma-4-e2b", "weights": "bf16", "ctx": "2048"}
    app = open_page(**plan)
    assert not app.exception and not app.error
    assert app.number_input(key="api_seqs").value == 1024
    assert any("Priced at 1,024 request(s) at once" in c.value for c in app.caption)
    # llama-server: its four default slots (-np auto).
    app = open_page(**{**plan, "engine": "llama.cpp", "weights": "gguf-q4_k_m", "kv": "fp16"})
    assert not app.exception and not app.error
    assert app.number_input(key="api_seqs").value == 4


def test_concurrency_follows_the_kv_pool_where_it_binds():
    from core.estimate import MemoryRequest
    from core.fit import fit

    plan = {k: v for k, v in H100_PLAN.items() if k != "seqs"}
    app = open_page(**plan)
    served = app.number_input(key="api_seqs").value
    assert 1 < served < 256
    request = MemoryRequest(model="26b-a4b", engine="vllm", weight_format="fp8", gpu="h100", context_tokens=4096)
    on_gpu = ("fits", "tight")
    assert fit(request.model_copy(update={"concurrent_sequences": served})).verdict in on_gpu
    assert fit(request.model_copy(update={"concurrent_sequences": served + 1})).verdict not in on_gpu


def test_concurrency_from_the_link_is_kept():
    app = open_page(**{**H100_PLAN, "seqs": "1"})
    assert app.number_input(key="api_seqs").value == 1
    assert not any("Priced at" in c.value for c in app.caption)


def test_the_caption_names_format_and_runtime_in_words():
    app = open_page(**H100_PLAN)
    # data/weight_formats.csv's display name and the runtime's, not the ids of the link.
    assert any(c.value.startswith("Gemma 4 26B-A4B · FP8 (e4m3) · vLLM · NVIDIA H100 80GB SXM5 · ") for c in app.caption)
