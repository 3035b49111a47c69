"""Exports: PNG/SVG through the warm Chromium, offline HTML, formula-safe CSV, the Markdown summary."""

import base64
import html
import io
import re
import struct
import threading
import time
import xml.etree.ElementTree as ET

import kaleido
import pandas as pd
import plotly.graph_objects as go
import plotly.offline
import pytest

from ui import export

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _figure() -> go.Figure:
    return go.Figure(
        go.Bar(x=["weights", "KV cache", "activations"], y=[14.2, 3.5, 1.1], name="31B"),
        layout={"title": {"text": "Memory by component (GiB)"}},
    )


def _png_size(png: bytes) -> tuple[int, int]:
    # The first chunk is always IHDR: length (4), type (4), then width and height as big-endian uint32.
    assert png[12:16] == b"IHDR"
    return struct.unpack(">II", png[16:24])


def test_export_is_available_here():
    available, message = export.export_available()
    assert available, message


def test_png_has_the_signature_and_the_planning_size():
    png = export.figure_png(_figure())
    assert png.startswith(PNG_SIGNATURE)
    assert _png_size(png) == (
        export.DEFAULT_WIDTH_PX * export.DEFAULT_PNG_SCALE,
        export.DEFAULT_HEIGHT_PX * export.DEFAULT_PNG_SCALE,
    )


def test_png_size_follows_arguments_then_the_layout():
    assert _png_size(export.figure_png(_figure(), width=400, height=300, scale=1)) == (400, 300)
    sized = _figure().update_layout(width=500, height=250)
    assert _png_size(export.figure_png(sized, scale=1)) == (500, 250)


def test_svg_parses_as_xml_with_an_svg_root():
    root = ET.fromstring(export.figure_svg(_figure()))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("width") == str(export.DEFAULT_WIDTH_PX)


def test_warm_server_makes_the_second_png_fast():
    # Stop any server earlier tests left running so the first export here really starts Chromium.
    kaleido.stop_sync_server(silence_warnings=True)
    start = time.perf_counter()
    export.figure_png(_figure())
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    export.figure_png(_figure())
    second_s = time.perf_counter() - start
    print(f"first PNG {first_s:.2f} s, warm PNG {second_s:.2f} s")
    assert second_s < 2.0


def test_concurrent_exports_each_get_their_own_image():
    # kaleido's server answers requests in order from one queue: without the lock, threads could swap.
    sizes = {}

    def render(width: int) -> None:
        sizes[width] = _png_size(export.figure_png(_figure(), width=width, height=200, scale=1))

    threads = [threading.Thread(target=render, args=(width,)) for width in (300, 340, 380, 420)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sizes == {width: (width, 200) for width in (300, 340, 380, 420)}


# kaleido's server thread dies with the browser's error: that is the event under test.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_browser_that_dies_is_an_error_not_a_hang(tmp_path, monkeypatch):
    broken = tmp_path / "chromium"
    broken.write_text("#!/bin/sh\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setenv("BROWSER_PATH", str(broken))
    start = time.perf_counter()
    with pytest.raises(export.ExportError, match="exited"):
        export.figure_png(_figure())
    assert time.perf_counter() - start < 30
    # With the real browser back, the next export restarts the server and works.
    monkeypatch.delenv("BROWSER_PATH")
    assert export.figure_png(_figure(), width=200, height=100, scale=1).startswith(PNG_SIGNATURE)


def test_missing_chromium_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(export, "chromium_path", lambda: None)
    assert export.export_available() == (False, export.CHROMIUM_MISSING_MESSAGE)
    with pytest.raises(export.ExportError, match="install Debian's `chromium`"):
        export.figure_svg(_figure())


def test_html_is_offline_with_plotly_js_inlined_and_no_mathjax():
    html = export.figure_html(_figure())
    bundle = plotly.offline.get_plotlyjs()
    assert html.startswith("<html>") or html.lstrip().lower().startswith("<!doctype html>")
    assert bundle in html
    # The bundle itself names map-tile CDNs used only by map traces; the page around it must not.
    page = html.replace(bundle, "")
    assert "cdn." not in page
    assert "mathjax@" not in html and "libs/mathjax" not in html
    assert not re.search(r"<script[^>]*\ssrc=", html)
    assert "<link" not in page


def test_csv_neutralises_formula_cells_and_keeps_numbers():
    frame = pd.DataFrame(
        {
            "=bad": ["=SUM(A1)", "+1", "-cmd", "@x", "\tx", "\rx", "plain", "a=b"],
            "GiB": [-3.5, 0.0, 1.25, -1.0, 2.0, 3.0, 4.0, 5.0],
            "count": [-2, 0, 1, 2, 3, 4, 5, 6],
        }
    )
    csv = export.table_csv(frame)
    assert csv.decode("utf-8").splitlines()[0] == "'=bad,GiB,count"
    parsed = pd.read_csv(io.BytesIO(csv), keep_default_na=False)
    assert list(parsed.iloc[:, 0]) == ["'=SUM(A1)", "'+1", "'-cmd", "'@x", "'\tx", "'\rx", "plain", "a=b"]
    assert parsed["GiB"].tolist() == frame["GiB"].tolist()
    assert parsed["GiB"].iloc[0] == -3.5
    assert parsed["count"].tolist() == frame["count"].tolist()
    # The caller's frame is left as it was.
    assert frame.columns[0] == "=bad" and frame.iloc[0, 0] == "=SUM(A1)"


def test_csv_is_utf8_and_handles_mixed_and_missing_cells():
    frame = pd.DataFrame({"model": ["Gemma 4 31B ≤ 80 GiB", None], "note": [-1, "-x"]})
    text = export.table_csv(frame).decode("utf-8")
    assert "Gemma 4 31B ≤ 80 GiB" in text
    assert text.splitlines()[1:] == ["Gemma 4 31B ≤ 80 GiB,-1", ",'-x"]


def _summary(**overrides) -> str:
    arguments = {
        "title": "Gemma 4 31B on one H100",
        "inputs": {"Model": "Gemma 4 31B", "Context (tokens)": "128,000", "Weights": "Q4_K_M"},
        "breakdown": pd.DataFrame(
            {"component": ["weights", "KV cache | sliding", "total"], "GiB": [17.456, 0.004, 17.46], "bytes": [1, 2, 3]}
        ),
        "verdict_lines": ["Fits with 62.5 GiB headroom.", "Longest context: 256,000 tokens."],
        "figures": {"Memory by component": _figure()},
        "generated_at": "2026-11-30 10:00 UTC",
    }
    return export.planning_summary_markdown(export.PlanningSummary(**(arguments | overrides)))


def test_summary_holds_inputs_table_verdict_and_an_svg_chart():
    text = _summary()
    assert text.startswith("# Gemma 4 31B on one H100\n")
    assert "2026-11-30 10:00 UTC" in text
    assert "| Context (tokens) | 128,000 |" in text
    assert "| component | GiB | bytes |" in text and "| --- | ---: | ---: |" in text
    assert "| weights | 17.46 | 1 |" in text
    assert "| KV cache \\| sliding | 0.004 | 2 |" in text
    assert "- Fits with 62.5 GiB headroom." in text
    match = re.search(r"!\[Memory by component\]\(data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)\)", text)
    assert match
    assert ET.fromstring(base64.b64decode(match.group(1))).tag.endswith("svg")
    assert "http://" not in text.replace("http://www.w3.org/", "")


def test_summary_without_chromium_says_charts_need_it(monkeypatch):
    monkeypatch.setattr(export, "chromium_path", lambda: None)
    text = _summary()
    assert "data:image/svg" not in text
    assert export.CHROMIUM_MISSING_MESSAGE in text
    assert "| weights | 17.46 | 1 |" in text


def test_summary_shows_names_and_values_from_a_link_as_plain_text():
    # An imported model's name and anything a link carried reach the summary: in a wiki or on
    # GitHub they must not become a list, a link, an image, an e-mail link or markup.
    hostile = "- www.evil.example [x](https://evil.example) ![i](https://evil.example/i.png) a@evil.example <b>"
    text = _summary(
        inputs={"models": hostile, "link": "http://127.0.0.1:8501/planner?ctx=4096&custom=My+model~eJx"},
        breakdown=pd.DataFrame({"model": [hostile, "+SUM(1+1)"], "GiB": [1.0, 2.0]}),
        verdict_lines=[hostile, "1. numbered"],
        figures={},
    )
    lines = text.splitlines()
    # No list item beyond the verdicts' own bullets, no nested list, no heading from the text.
    assert [line for line in lines if line.startswith(("- ", "+ ", "* "))] == [
        line for line in lines if line.startswith("- ") and line[2:].startswith(("\\- ", "1\\. "))
    ]
    for pattern in (r"(?<!\\)\[", r"(?<!\\)\]", r"(?<!\\)<b>", r"www\.evil", r"https://evil", r"@evil"):
        assert re.search(pattern, text) is None, pattern
    # The reader still sees every character, and the planner's own link stays a link.
    assert "www\u200b.evil.example" in text
    assert "<http://127.0.0.1:8501/planner?ctx=4096&custom=My+model~eJx>" in text


def _summary_args(**overrides) -> dict:
    arguments = {
        "title": "Gemma 4 31B on one H100",
        "inputs": {"Model": "Gemma 4 31B", "devices": "2 x NVIDIA H100 80GB SXM5"},
        "breakdown": pd.DataFrame({"component": ["weights", "total"], "GiB": [17.456, 17.46]}),
        "verdict_lines": ["Fits with 62.5 GiB headroom."],
        "figures": {"Memory breakdown": _figure(), "Memory against context": _figure()},
        "generated_at": "2026-11-30 10:00 UTC",
        "stamp": "Gemma 4 deployment planner · 2026-11-30",
    }
    return arguments | overrides


def test_the_summary_zip_holds_markdown_and_the_png_files_it_references():
    import io
    import zipfile

    archive = zipfile.ZipFile(io.BytesIO(export.planning_summary_zip(export.PlanningSummary(**_summary_args()))))
    names = set(archive.namelist())
    summary = archive.read("summary.md").decode()
    referenced = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", summary)
    assert len(referenced) == 2 and "data:" not in summary
    for path in referenced:
        assert path in names and not path.startswith(("/", "http"))
        assert archive.read(path).startswith(b"\x89PNG\r\n\x1a\n")
    assert "| devices | 2 x NVIDIA H100 80GB SXM5 |" in summary


def test_the_html_report_is_one_offline_page_with_every_chart_and_escaped_text():
    hostile = "<script>alert(1)</script>"
    page = export.planning_report_html(export.PlanningSummary(**_summary_args(inputs={"Model": hostile})))
    bundle = plotly.offline.get_plotlyjs()
    assert page.count(bundle) == 1  # plotly.js inlined once, for every chart
    around = page.replace(bundle, "")
    assert around.count("Plotly.newPlot") == 2  # every chart, interactive
    assert "<h3>Memory breakdown</h3>" in page and "<h3>Memory against context</h3>" in page
    assert hostile not in around and "&lt;script&gt;" in around
    assert "cdn." not in around and not re.search(r"<script[^>]*\ssrc=", page)


def test_the_scenario_line_names_models_runtime_format_context_and_devices():
    line = export.scenario_line(["Gemma 4 31B"], "vLLM", "BF16", 32_768, 4, ["2 x NVIDIA H100 80GB SXM5"])
    assert line == "Gemma 4 31B · vLLM · BF16 weights · 32,768 tokens x 4 sequences · 2 x NVIDIA H100 80GB SXM5"
    assert export.scenario_line(["A", "B"], "Ollama", None, 8_192, 1, []) == "A, B · Ollama · 8,192 tokens x 1 sequence"


def test_a_stamp_wraps_a_long_link_whole_and_escapes_markup():
    link = "http://127.0.0.1:8501/planner?" + "&".join(f"param{i}=value{i}" for i in range(20))
    stamp = export.export_stamp("<b>Mine</b> · vLLM", link, "2026-12-03")
    lines = stamp.split("<br>")
    assert lines[0] == "Gemma 4 deployment planner · &lt;b&gt;Mine&lt;/b&gt; · vLLM · 2026-12-03"
    shown = [html.unescape(line) for line in lines]  # as plotly draws them
    assert all(len(line) <= export.STAMP_LINE_CHARS for line in shown)
    assert "".join(shown[1:]) == link and len(shown) == 4  # 30 + 20 x ~16 characters: three lines
    # Not the planner's own link: left out rather than shown.
    assert "evil" not in export.export_stamp("x", "javascript:alert('evil')", "2026-12-03")


def test_the_html_report_links_only_the_planners_own_link():
    page = export.planning_report_html(export.PlanningSummary(**_summary_args(
        figures={}, inputs={"link": "http://127.0.0.1:8501/planner?ctx=4096&seqs=2", "model": "javascript:alert(1)"},
    )))  # fmt: skip
    assert "<a href='http://127.0.0.1:8501/planner?ctx=4096&amp;seqs=2'>" in page
    assert "href='javascript" not in page and "<td>javascript:alert(1)</td>" in page


def test_the_summary_and_report_carry_each_launch_command_literally():
    # A command can name an imported model (its repository placeholder): a run of backticks or
    # markup in it must stay inside the code block, in Markdown and in HTML.
    command = "vllm serve <the Hugging Face repository of ```My <b>model</b>> \\\n  --max-model-len 32768"
    launches = {"Gemma 4 31B": (command, "bash")}
    text = export.planning_summary_markdown(export.PlanningSummary(**_summary_args(figures={}, launch_commands=launches)))
    section = text.split("## Launch commands\n", 1)[1]
    fence_line = section.split("### Gemma 4 31B\n\n", 1)[1].splitlines()[0]
    assert fence_line.startswith("````") and fence_line.endswith("bash")
    fence = fence_line.removesuffix("bash")
    body = section.split(fence_line + "\n", 1)[1].split("\n" + fence + "\n", 1)[0]
    assert body == command
    page = export.planning_report_html(export.PlanningSummary(**_summary_args(figures={}, launch_commands=launches)))
    assert "<pre><code>vllm serve &lt;the Hugging Face repository of ```My &lt;b&gt;model&lt;/b&gt;&gt;" in page
    assert "<b>model" not in page
