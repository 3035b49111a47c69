"""The planner's planning summary as a user downloads it: a zip whose Markdown finds its PNG charts,
and one HTML report holding every chart, both naming the plan in words."""

import re
import zipfile

import plotly.offline

from tests.browser.test_pages import charts_drawn, download

PLAN = "planner?models=31b&engine=vllm&weights=bf16&gpus=h100&count=2&ctx=131072&gpu_util=0.85"
def without_links(text: str) -> str:
    return re.sub(r"https?://[^\s<>\"')|]+", "", text)


CHARTS = ["Memory breakdown", "Memory against context", "Memory against concurrent sequences", "Memory across weight formats"]


def test_the_summary_zip_holds_markdown_whose_png_charts_resolve(open_app, tmp_path):
    page = open_app(PLAN)
    charts_drawn(page, 1)
    path = tmp_path / "plan.zip"
    download(page, "zip").save_as(path)
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        summary = archive.read("summary.md").decode("utf-8")
        referenced = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", summary)
        assert len(referenced) == len(CHARTS), summary
        for target in referenced:
            assert target in names and not target.startswith(("/", "data:", "http"))
            assert archive.read(target).startswith(b"\x89PNG\r\n\x1a\n")
    # Names as data/gpus.csv and the runtime spell them, the count the link set, and the share of
    # each GPU vLLM claims (gpu_util=0.85 in the link) that sets "usable".
    # (The link back to the plan carries ids, as every link does: left out of that check.)
    assert "2 x NVIDIA H100 80GB SXM5" in summary and "nvidia-h100-sxm" not in without_links(summary)
    assert "| runtime | vLLM |" in summary and "gpu_memory_utilization 0.85" in summary
    assert "data:image" not in summary
    # The command that starts it, with the link's own values as vLLM's CLI spells them.
    launch = summary.split("## Launch commands", 1)[1]
    assert "vllm serve google/gemma-4-31B-it" in launch
    for flag in ("--tensor-parallel-size 2", "--max-model-len 131072", "--gpu-memory-utilization 0.85"):
        assert flag in launch


def test_the_html_report_holds_every_chart_offline(open_app, tmp_path):
    page = open_app(PLAN)
    charts_drawn(page, 1)
    path = tmp_path / "plan.html"
    download(page, "Planning report").save_as(path)
    report = path.read_text(encoding="utf-8")
    around = report.replace(plotly.offline.get_plotlyjs(), "")
    assert around.count("Plotly.newPlot") == len(CHARTS)
    for name in CHARTS:
        assert f"<h3>{name}</h3>" in report
    text = report[: report.index("<h2>Charts</h2>")]  # inputs, breakdown and verdicts
    assert "2 x NVIDIA H100 80GB SXM5" in text and "nvidia-h100-sxm" not in without_links(text)
    assert not re.search(r"<script[^>]*\ssrc=", report)
    assert "<h2>Launch commands</h2>" in text and "--tensor-parallel-size 2" in text
