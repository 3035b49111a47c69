"""Every page through app.py with AppTest: no exception, numbers equal to core, links that hold state."""

import base64
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.catalog import DATA_DIR, DATA_DIR_VARIABLE, load_catalog
from core.estimate import MemoryRequest, estimate
from core.fit import fit_matrix
from core.params import count_parameters
from core.quality import pareto_frontier, quality_score
from core.recommend import recommend
from core.throughput import throughput
from tests.rendered import plain



APP = str(Path(__file__).resolve().parents[2] / "app.py")
PAGES = ["pages/start.py", "pages/models.py", "pages/planner.py", "pages/fit.py", "pages/quality.py", "pages/throughput.py", "pages/api_costs.py", "pages/accuracy.py"]
CATALOG = load_catalog()
NAMES = {m.id: m.display_name for m in CATALOG.models}


def open_page(page: str, **query: str) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60)
    app.query_params.update(query)
    app.switch_page(page)
    return app.run()


def plotly_traces(chart) -> list[dict]:
    """The figure JSON of a plotly element, with plotly's base64 arrays decoded."""
    import json

    figure = json.loads(chart.proto.spec)

    def decode(value):
        if isinstance(value, dict) and {"dtype", "bdata"} <= set(value):
            return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).tolist()
        return value

    return [{k: decode(v) for k, v in trace.items()} for trace in figure["data"]]


def table(app: AppTest, column: str):
    """The first dataframe shown with `column` (AppTest does not expose dataframe keys)."""
    for frame in app.dataframe:
        if column in frame.value.columns:
            return frame.value
    raise AssertionError(f"no table with a '{column}' column")


@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs_without_exception(page):
    app = open_page(page)
    assert not app.exception
    assert app.title, f"{page} has no title"
    assert not app.error


def corrupt(tmp_path, monkeypatch, file: str, line: int, column: int, value: str) -> None:
    """A copy of data/ with one cell replaced, loaded instead of the real one."""
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    lines = (data / file).read_text().splitlines()
    cells = lines[line - 1].split(",")
    cells[column] = value
    lines[line - 1] = ",".join(cells)
    (data / file).write_text("\n".join(lines) + "\n")
    monkeypatch.setenv(DATA_DIR_VARIABLE, str(data))


GPU_PAGES = ["pages/start.py", "pages/planner.py", "pages/fit.py", "pages/quality.py", "pages/throughput.py", "pages/api_costs.py", "pages/accuracy.py"]


@pytest.mark.parametrize("page", GPU_PAGES)
def test_a_malformed_gpu_list_stops_the_pages_that_need_it_with_file_row_and_field(page, tmp_path, monkeypatch):
    corrupt(tmp_path, monkeypatch, "gpus.csv", 3, 6, "lots")  # memory_bytes, the 7th column
    app = open_page(page)
    assert not app.exception
    message = app.error[0].value
    assert "gpus.csv" in message and "line 3" in message and "memory_bytes" in message


def test_a_malformed_gpu_list_leaves_the_models_page_working(tmp_path, monkeypatch):
    corrupt(tmp_path, monkeypatch, "gpus.csv", 3, 6, "lots")  # memory_bytes, the 7th column
    app = open_page("pages/models.py")
    assert not app.exception and not app.error
    assert "gpus.csv" in app.warning[0].value and "Device fit" in app.warning[0].value
    assert len(app.dataframe[0].value) == len(CATALOG.models)


def test_a_malformed_benchmark_table_stops_quality_but_not_the_planner(tmp_path, monkeypatch):
    corrupt(tmp_path, monkeypatch, "benchmarks.csv", 2, 3, "lots")
    planner = open_page("pages/planner.py")
    assert not planner.exception and not planner.error and planner.metric
    assert "benchmarks.csv" in planner.warning[0].value
    quality = open_page("pages/quality.py")
    assert "benchmarks.csv" in quality.error[0].value and "gemma-4-31b" in quality.error[0].value


def test_a_malformed_model_file_stops_every_page(tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    (data / "models.json").write_text((data / "models.json").read_text().replace('"hidden_size": 5376', '"hidden_size": "big"'))
    monkeypatch.setenv(DATA_DIR_VARIABLE, str(data))
    for page in PAGES:
        app = open_page(page)
        assert not app.exception
        assert "models.json" in app.error[0].value and "config.text_config.hidden_size" in app.error[0].value


def test_models_page_shows_parameters_counted_by_core():
    app = open_page("pages/models.py")
    table = app.dataframe[0].value
    assert list(table["model"]) == [m.display_name for m in CATALOG.models]
    for model, shown in zip(CATALOG.models, table["total params (B)"]):
        assert shown == pytest.approx(count_parameters(model.config).total / 1e9)


def test_planner_numbers_follow_the_widgets_and_the_url():
    app = open_page("pages/planner.py")
    app.sidebar.multiselect(key="planner_models").set_value(["gemma-4-31b", "gemma-4-e4b"])
    app.sidebar.selectbox(key="planner_engine").set_value("transformers")
    app.sidebar.number_input(key="planner_ctx").set_value(100_000)
    app.sidebar.number_input(key="planner_seqs").set_value(3)
    app.run()
    assert not app.exception
    for metric, model in zip(app.metric, ["gemma-4-31b", "gemma-4-e4b"]):
        expected = estimate(MemoryRequest(model=model, engine="transformers", context_tokens=100_000, concurrent_sequences=3, gpu="nvidia-h100-sxm"))
        assert metric.label == NAMES[model]
        assert metric.value == f"{expected.total_bytes / 2**30:,.2f} GiB"
    # The breakdown table: 31B KV cache by hand, 3 x (81,920 x 100,000 + 819,200 x 1,023) bytes.
    breakdown = table(app, "KV cache, full attention (GiB)")
    kv_31b = 3 * (81_920 * 100_000 + 819_200 * 1_023)
    shown = breakdown.iloc[0]["KV cache, full attention (GiB)"] + breakdown.iloc[0]["KV cache, sliding attention (GiB)"]
    assert shown == pytest.approx(kv_31b / 2**30, abs=2e-3)
    assert app.query_params["ctx"] == "100000" and app.query_params["seqs"] == "3"
    assert app.query_params["engine"] == "transformers"


def test_planner_context_chart_has_one_line_per_model_up_to_its_maximum():
    app = open_page("pages/planner.py", engine="transformers", models="e2b,31b", ctx="8192")
    chart = app.get("plotly_chart")[1]
    traces = plotly_traces(chart)
    lines = {trace["name"]: trace for trace in traces}
    assert set(lines) == {NAMES["gemma-4-e2b"], NAMES["gemma-4-31b"]}
    assert max(lines[NAMES["gemma-4-e2b"]]["x"]) == 131_072
    assert max(lines[NAMES["gemma-4-31b"]]["x"]) == 262_144
    x, y = lines[NAMES["gemma-4-31b"]]["x"][-1], lines[NAMES["gemma-4-31b"]]["y"][-1]
    expected = estimate(MemoryRequest(model="31b", engine="transformers", context_tokens=int(x), gpu="nvidia-h100-sxm"))
    assert y == pytest.approx(expected.total_bytes / 2**30)


def test_a_shared_link_reopens_the_same_view():
    app = open_page("pages/planner.py")
    app.sidebar.multiselect(key="planner_models").set_value(["gemma-4-26b-a4b"])
    app.sidebar.selectbox(key="planner_engine").set_value("llama.cpp")
    app.run()
    app.sidebar.selectbox(key="planner_weights").set_value("gguf-q4_k_m")
    app.sidebar.number_input(key="planner_ctx").set_value(65_536)
    app.run()
    link = dict(app.query_params)
    reopened = open_page("pages/planner.py", **link)
    assert not reopened.warning
    assert reopened.sidebar.multiselect(key="planner_models").value == ["gemma-4-26b-a4b"]
    assert reopened.sidebar.selectbox(key="planner_engine").value == "llama.cpp"
    assert reopened.sidebar.selectbox(key="planner_weights").value == "gguf-q4_k_m"
    assert reopened.sidebar.number_input(key="planner_ctx").value == 65_536
    assert [m.value for m in reopened.metric] == [m.value for m in app.metric]


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ({"ctx": "-5"}, "ctx=-5"),
        ({"ctx": "1e400"}, "ctx="),
        ({"seqs": "NaN"}, "seqs=NaN"),
        ({"models": "e2b,gpt-5"}, "gpt-5"),
        ({"nonsense": "1"}, "nonsense"),
        ({"gpus": "x" * 10_000}, "gpus"),
        ({"engine": "vllm", "weights": "q4_k_m"}, "q4_k_m"),
        ({"audio": "inf"}, "audio=inf"),
    ],
)
def test_bad_link_parameters_fall_back_with_a_visible_notice(query, fragment):
    app = open_page("pages/planner.py", **query)
    assert not app.exception
    notices = plain(" ".join(w.value for w in app.warning))
    assert fragment in notices
    assert app.metric  # the page still shows its numbers, from defaults


def test_gpu_fit_page_shows_the_core_recommendation_and_matrix():
    app = open_page("pages/fit.py", gpu="rtx-4090", engine="llama.cpp", kv="q8_0", ctx="16384")
    assert not app.exception
    request = MemoryRequest(model="31b", engine="llama.cpp", kv_cache_dtype="q8_0", context_tokens=16_384, gpu="nvidia-rtx-4090")
    rows = fit_matrix(request, CATALOG)
    assert app.success[0].value == recommend(rows, CATALOG).text
    (heatmap, *_) = plotly_traces(app.get("plotly_chart")[0])
    assert len(heatmap["x"]) == 4 and len(heatmap["y"]) == len({r.weight_format for r in rows})
    detail = table(app, "needed (GiB)")
    assert len(detail) == len(rows)
    assert list(detail["needed (GiB)"]) == [round(r.total_bytes / 2**30, 2) for r in rows]


def test_quality_page_frontier_matches_core():
    app = open_page("pages/quality.py", gpu="h100", ctx="8192")
    assert not app.exception
    request = MemoryRequest(model="31b", engine="vllm", context_tokens=8192, gpu="nvidia-h100-sxm")
    rows = fit_matrix(request, CATALOG)
    formats = {f.id: f.display_name for f in CATALOG.weight_formats}
    points = [(f"{NAMES[r.model]} · {formats[r.weight_format]}", r.total_bytes, quality_score(CATALOG, r.model)) for r in rows]
    frontier = table(app, "memory (GiB)")
    assert list(frontier["label"]) == pareto_frontier(points)


def test_throughput_page_matches_core():
    app = open_page("pages/throughput.py", model="e4b", gpus="h100,l4", ctx="4096", seqs="4")
    assert not app.exception
    shown = table(app, "decode tokens/s (all sequences)")
    for gpu, row in zip(["nvidia-h100-sxm", "nvidia-l4"], shown.itertuples(index=False)):
        expected = throughput(MemoryRequest(model="e4b", engine="vllm", context_tokens=4096, concurrent_sequences=4, gpu=gpu))
        assert row[2] == round(expected.decode_tokens_per_second, 1)
    assert any("bandwidth" in m.value for m in app.markdown)


def test_throughput_shows_no_speed_for_a_plan_that_does_not_fit():
    # 31B in BF16 is 62.5 GB of weights (the published checkpoint): it cannot run on a 24 GB card.
    app = open_page("pages/throughput.py", model="31b", weights="bf16", engine="vllm", gpus="rtx-4090,h100", ctx="8192")
    shown = table(app, "decode tokens/s (all sequences)")
    rtx = shown[shown["device"].str.contains("4090")].iloc[0]
    assert rtx["fits"] == "does not fit" and rtx["decode tokens/s (all sequences)"] != rtx["decode tokens/s (all sequences)"]  # NaN
    (chart,) = app.get("plotly_chart")
    traces = plotly_traces(chart)
    # The H100's line (dashed where more sequences need host RAM), nothing for the 4090.
    assert traces[0]["name"] == "1 x NVIDIA H100 80GB SXM5"
    assert all(t["name"].startswith("1 x NVIDIA H100 80GB SXM5") for t in traces)
    # Each device's own assumptions: the H100's price is not listed under the 4090.
    assert any("4090" in m.value for m in app.markdown) and any("H100" in m.value for m in app.markdown)


def test_accuracy_page_counts_every_observation():
    app = open_page("pages/accuracy.py")
    assert app.metric[0].value == str(len(CATALOG.observations))
    assert app.metric[1].value == f"{len(CATALOG.observations)} of {len(CATALOG.observations)}"
