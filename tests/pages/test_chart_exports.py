"""What the chart pages stamp on their exports, in words not ids, and how the planner shows the naive figure."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")
EXPORT_SCENARIO_KEY = "_export_scenario"  # ui.widgets' key, read back as the download buttons do


def open_page(page: str, **query: str) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60)
    app.query_params.update(query)
    app.switch_page(page)
    app.run()
    assert not app.exception, app.exception
    return app


def test_the_planner_stamps_models_runtime_format_context_and_two_devices():
    app = open_page("pages/planner.py", models="31b", engine="vllm", weights="bf16", gpus="h100", count="2", ctx="131072", seqs="2")
    # Display names from data/models.csv and data/gpus.csv, the GPU count as the user set it.
    assert app.session_state[EXPORT_SCENARIO_KEY] == (
        "Gemma 4 31B · vLLM · BF16 weights · 131,072 tokens x 2 sequences · 2 x NVIDIA H100 80GB SXM5"
    )


def test_the_throughput_page_stamps_its_devices_and_names_the_runtime_in_words():
    app = open_page("pages/throughput.py", model="e4b", engine="llama.cpp", weights="gguf-q4_k_m", gpus="rtx-4090,l4", ctx="8192")
    stamp = app.session_state[EXPORT_SCENARIO_KEY]
    assert stamp.startswith("Gemma 4 E4B · llama.cpp (llama-server, LM Studio) · ")
    assert stamp.endswith("8,192 tokens x 1 sequence · 1 x NVIDIA GeForce RTX 4090 24GB, 1 x NVIDIA L4 24GB")
    assert "gguf-q4_k_m" not in stamp


def test_the_quality_page_stamps_the_memory_charts_scenario():
    app = open_page("pages/quality.py", gpu="h100", engine="vllm", ctx="8192")
    assert app.session_state[EXPORT_SCENARIO_KEY] == (
        "every model and weight format · vLLM · 8,192 tokens x 1 sequence · 1 x NVIDIA H100 80GB SXM5"
    )


def test_the_naive_calculator_figure_is_a_comparison_not_a_growth_arrow():
    from streamlit.proto.Metric_pb2 import Metric

    app = open_page("pages/planner.py", models="31b")
    metric = app.metric[0].proto
    assert metric.delta.startswith("naive calculator: ")
    # No arrow and no green/red: the naive figure is what another tool says, not a change.
    assert metric.direction == Metric.MetricDirection.NONE and metric.color == Metric.MetricColor.GRAY


def test_the_device_fit_page_stamps_the_device_count_and_runtimes():
    app = open_page("pages/fit.py", gpu="h100", count="2", ctx="131072")
    stamp = app.session_state[EXPORT_SCENARIO_KEY]
    assert stamp.startswith("every model and weight format · ")
    assert "vLLM" in stamp and "llama.cpp" in stamp
    assert stamp.endswith("131,072 tokens x 1 sequence · 2 x NVIDIA H100 80GB SXM5")
