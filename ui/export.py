"""Chart and table exports for planning documents: PNG/SVG, offline HTML, injection-safe CSV, Markdown."""

from __future__ import annotations

import base64
import math
import numbers
import os
import re
import shutil
import threading
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import kaleido
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from ui.untrusted import markdown_literal

# A wide landscape chart reads well in a slide or an A4 page; scale 2 keeps text sharp when printed.
DEFAULT_WIDTH_PX = 1200
DEFAULT_HEIGHT_PX = 650
DEFAULT_PNG_SCALE = 2
EXPORT_TEMPLATE = "plotly_white"

CHROMIUM_MISSING_MESSAGE = (
    "PNG/SVG export needs Chromium: install Debian's `chromium` package; HTML and CSV downloads still work"
)

# Debian's package first (what `make chromium` installs), then other names a PATH may hold.
_DEBIAN_CHROMIUM = "/usr/bin/chromium"
_BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# OWASP CSV injection guidance: a spreadsheet treats a cell starting with these as a formula.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

# Text of one cell, line or heading in the Markdown summary (a name, a verdict, the link).
SUMMARY_TEXT_CHARS = 4_000
# The app's own link (scheme, host, path and a percent-encoded query): an autolink in the summary.
SAFE_LINK = re.compile(r"https?://[A-Za-z0-9.:\[\]-]+(/[A-Za-z0-9._~/-]*)?(\?[A-Za-z0-9._~%&=+-]*)?")

# The footer stamp: lines of at most STAMP_LINE_CHARS (about 900 px of 10 px text, inside a
# 1,200 px export), each STAMP_LINE_PX tall, in a strip added under the chart; a long link wraps
# instead of being cut, so the stamp never runs off the image. STAMP_CHARS bounds the whole text.
STAMP_LINE_CHARS = 150
STAMP_LINE_PX = 14
STAMP_STRIP_PAD_PX = 14
DEFAULT_MARGIN_BOTTOM_PX = 80  # plotly's own
STAMP_CHARS = 900

# How often a waiting export checks that the renderer is still alive.
_WATCHDOG_INTERVAL_S = 0.5

# kaleido's sync server is one per process and its queue pairs each request with "the next result",
# so two threads exporting at once could swap images: every start and export holds this lock.
_server_lock = threading.Lock()
_server_browser: str | None = None  # the executable the warm server drives


class ExportError(RuntimeError):
    """PNG/SVG export cannot run here: no Chromium, or the renderer exited."""


def chromium_path() -> str | None:
    """The Chromium/Chrome executable kaleido will drive, or None when there is none."""
    # BROWSER_PATH is choreographer's own override: someone who set it means it.
    override = os.environ.get("BROWSER_PATH")
    if override and _is_executable(override):
        return override
    if _is_executable(_DEBIAN_CHROMIUM):
        return _DEBIAN_CHROMIUM
    for name in _BROWSER_NAMES:
        found = shutil.which(name)
        if found and _is_executable(found):
            return found
    # Last, whatever choreographer would find itself (a `kaleido_get_chrome` download, typical paths).
    try:
        from choreographer.browsers.chromium import Chromium

        found = Chromium.find_browser(skip_local=False)
    except Exception:  # noqa: BLE001 - a best-effort probe must never break a page
        return None
    return found if found and _is_executable(found) else None


def export_available() -> tuple[bool, str]:
    """Whether PNG/SVG export can work here and, when it cannot, what to tell the user."""
    path = chromium_path()
    if path is None:
        return False, CHROMIUM_MISSING_MESSAGE
    return True, f"PNG/SVG export uses {path}"


def figure_png(
    fig: go.Figure,
    *,
    width: int | None = None,
    height: int | None = None,
    scale: float = DEFAULT_PNG_SCALE,
    stamp: str | None = None,
) -> bytes:
    """PNG bytes; width and height default to the figure's layout, else 1200 x 650 layout pixels;
    `stamp`: a footer line (scenario, date, link) under the chart."""
    return _render(for_export(fig, stamp), "png", width, height, scale)


def figure_svg(fig: go.Figure, *, width: int | None = None, height: int | None = None, stamp: str | None = None) -> bytes:
    """SVG bytes (a vector image, so no scale); size and stamp as for figure_png."""
    return _render(for_export(fig, stamp), "svg", width, height, 1)


_warm_up_started = threading.Event()


def warm_up_in_background() -> None:
    """Start Chromium for exports in a background thread, once per process, so the first
    PNG/SVG a user asks for takes ~0.3 s instead of the ~2 s a browser start costs."""
    if _warm_up_started.is_set() or chromium_path() is None:
        return
    _warm_up_started.set()

    def warm() -> None:
        try:
            figure_svg(go.Figure(), width=100, height=100)
        except Exception:  # noqa: BLE001 - a failed warm-up only means the first export is slow
            pass

    threading.Thread(target=warm, name="kaleido-warm-up", daemon=True).start()


def figure_html(fig: go.Figure, stamp: str | None = None) -> str:
    """A self-contained HTML page: plotly.js inlined, MathJax off, so it opens with no network."""
    return for_export(fig, stamp).to_html(include_plotlyjs=True, full_html=True, include_mathjax=False)


def scenario_line(
    models: Sequence[str], runtime: str, weight_format: str | None, context_tokens: int, sequences: int, devices: Sequence[str],
) -> str:
    """The scenario an exported chart shows, in words: 'Gemma 4 31B · vLLM · BF16 weights ·
    32,768 tokens x 4 sequences · 2 x NVIDIA H100 80GB SXM5' (names, not ids; devices with
    their count). weight_format None: the chart compares formats."""
    parts = [", ".join(models), runtime]
    if weight_format:
        parts.append(f"{weight_format} weights")
    parts.append(f"{context_tokens:,} tokens x {sequences:,} sequence{'s' if sequences != 1 else ''}")
    if devices:
        parts.append(", ".join(devices))
    return " · ".join(part for part in parts if part)


def export_stamp(scenario: str, link: str, generated_at: str) -> str:
    """The footer every exported chart carries: where it came from, for whom, and when, wrapped
    into lines (plotly's <br>) that fit the image. The scenario may name an imported model, so it
    is plain text (plotly renders a small HTML subset in annotations: angle brackets are escaped)."""
    parts = ["Gemma 4 deployment planner", scenario[:STAMP_CHARS], generated_at]
    lines = _wrap(" · ".join(p for p in parts if p), " · ")
    if SAFE_LINK.fullmatch(link or ""):
        lines += _wrap(link[:STAMP_CHARS], "&", keep=True)
    return "<br>".join(_plotly_plain(line) for line in lines)


def _wrap(text: str, separator: str, keep: bool = False) -> list[str]:
    """Lines of at most STAMP_LINE_CHARS, broken after `separator` (kept at the line's end when
    `keep`), and mid-word only where one piece is longer than a line."""
    pieces = text.split(separator)
    lines: list[str] = []
    for index, piece in enumerate(pieces):
        piece += separator if keep and index < len(pieces) - 1 else ""
        joined = f"{lines[-1]}{'' if keep else separator}{piece}" if lines else piece
        if lines and len(joined) <= STAMP_LINE_CHARS:
            lines[-1] = joined
            continue
        while len(piece) > STAMP_LINE_CHARS:
            lines.append(piece[:STAMP_LINE_CHARS])
            piece = piece[STAMP_LINE_CHARS:]
        lines.append(piece)
    return [line for line in lines if line]


def _plotly_plain(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def table_csv(frame: pd.DataFrame, *, index: bool = False) -> bytes:
    """UTF-8 CSV in which no text cell or header can run as a spreadsheet formula."""
    safe = frame.copy()
    if isinstance(safe.columns, pd.MultiIndex):
        safe.columns = pd.MultiIndex.from_tuples(
            [tuple(_neutralise(level) for level in column) for column in safe.columns]
        )
    else:
        safe.columns = [_neutralise(column) for column in safe.columns]
    # By position, so duplicate column names are handled; numeric columns are left as numbers.
    for position in range(safe.shape[1]):
        column = safe.iloc[:, position]
        if not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_datetime64_any_dtype(column)):
            safe.isetitem(position, column.map(_neutralise))
    if index:
        safe.index = safe.index.map(_neutralise)
    # CRLF as RFC 4180 says; it also makes Python's csv writer quote a bare \r inside a cell.
    return safe.to_csv(index=index, lineterminator="\r\n").encode("utf-8")


@dataclass(frozen=True)
class PlanningSummary:
    """What the planner's summary holds, for the Markdown zip and the HTML report alike."""

    title: str
    inputs: Mapping[str, str]
    breakdown: pd.DataFrame
    verdict_lines: Sequence[str]
    figures: Mapping[str, go.Figure]
    generated_at: str
    stamp: str | None = None
    # Heading (e.g. the model's name) -> (command, language of the code block: bash or python).
    launch_commands: Mapping[str, tuple[str, str]] = field(default_factory=dict)


def planning_summary_markdown(summary: PlanningSummary, chart_files: Mapping[str, str] | None = None) -> str:
    """A Markdown planning summary. Charts: `chart_files` maps each chart to a relative PNG path
    (planning_summary_zip ships them beside it: GitHub and most wikis strip data: images);
    without it they are inline SVG data URIs when Chromium exists."""
    figures = summary.figures
    breakdown = summary.breakdown
    lines = [f"# {_inline(summary.title)}", "", f"_Generated {_inline(summary.generated_at)}_", "", "## Inputs", ""]
    lines += _markdown_table(["Input", "Value"], [[key, value] for key, value in summary.inputs.items()], [False, False])
    lines += ["", "## Breakdown", ""]
    numeric = [pd.api.types.is_numeric_dtype(breakdown.iloc[:, i]) for i in range(breakdown.shape[1])]
    lines += _markdown_table(list(breakdown.columns), breakdown.itertuples(index=False, name=None), numeric)
    lines += ["", "## Verdict", ""]
    lines += [f"- {_inline(line)}" for line in summary.verdict_lines] or ["- (none)"]
    if summary.launch_commands:
        lines += ["", "## Launch commands", ""]
        for heading, (command, language) in summary.launch_commands.items():
            lines += [f"### {_inline(heading)}", "", *_fenced(command, language), ""]
    if figures:
        lines += ["", "## Charts", ""]
        if chart_files is not None:
            for name in figures:
                alt = _inline(name).replace("[", "(").replace("]", ")")
                lines += [f"### {_inline(name)}", ""]
                lines += [f"![{alt}]({chart_files[name]})", ""] if name in chart_files else ["> Chart not included: PNG export needs Chromium.", ""]
        else:
            lines += _chart_lines(figures)
    return "\n".join(lines) + "\n"


def planning_summary_zip(summary: PlanningSummary) -> bytes:
    """summary.md with its charts as PNG files under charts/, referenced by relative paths: a
    folder that renders on GitHub, in wikis and in editors, unlike data: images."""
    import io
    import zipfile

    pngs: dict[str, bytes] = {}
    paths: dict[str, str] = {}
    if export_available()[0]:
        for name, fig in summary.figures.items():
            path = f"charts/{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-') or 'chart'}.png"
            try:
                pngs[path] = figure_png(fig, stamp=summary.stamp)
            except ExportError:
                continue
            paths[name] = path
    markdown = planning_summary_markdown(summary, chart_files=paths)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("summary.md", markdown)
        for path, data in pngs.items():
            archive.writestr(path, data)
    return buffer.getvalue()


def planning_report_html(summary: PlanningSummary) -> str:
    """One self-contained HTML report: the inputs, breakdown and verdicts as escaped text and
    tables, each chart as interactive plotly (plotly.js inlined once), no network needed."""
    import html

    title, breakdown, figures = summary.title, summary.breakdown, summary.figures

    def cell(value: object) -> str:
        return html.escape(_format_number(value) if isinstance(value, numbers.Number) else str(value))

    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#202124}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #dadce0;padding:4px 8px}"
        "td.n{text-align:right}.stamp{color:#5f6368;font-size:12px}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><p class='stamp'>Generated {html.escape(summary.generated_at)}</p>",
        "<h2>Inputs</h2><table>",
        # The planner's own link stays a link; any other value is text.
        *[
            f"<tr><th>{html.escape(k)}</th><td>"
            + (f"<a href='{html.escape(v, quote=True)}'>{html.escape(v)}</a>" if SAFE_LINK.fullmatch(v) else html.escape(v))
            + "</td></tr>"
            for k, v in summary.inputs.items()
        ],
        "</table><h2>Breakdown</h2><table><tr>",
        *[f"<th>{html.escape(str(c))}</th>" for c in breakdown.columns],
        "</tr>",
    ]
    for row in breakdown.itertuples(index=False, name=None):
        parts.append("<tr>" + "".join(
            f"<td class='n'>{cell(v)}</td>" if isinstance(v, numbers.Number) else f"<td>{cell(v)}</td>" for v in row
        ) + "</tr>")  # fmt: skip
    parts += ["</table><h2>Verdict</h2><ul>", *[f"<li>{html.escape(line)}</li>" for line in summary.verdict_lines], "</ul>"]
    if summary.launch_commands:
        parts.append("<h2>Launch commands</h2>")
        for heading, (command, _) in summary.launch_commands.items():
            parts.append(f"<h3>{html.escape(heading)}</h3><pre><code>{html.escape(command)}</code></pre>")
    if figures:
        parts.append("<h2>Charts</h2>")
        for index, (name, fig) in enumerate(figures.items()):
            parts.append(f"<h3>{html.escape(name)}</h3>")
            parts.append(for_export(fig, summary.stamp).to_html(full_html=False, include_plotlyjs=index == 0, include_mathjax=False))
    parts.append("</body></html>")
    return "\n".join(parts)


def _chart_lines(figures: Mapping[str, go.Figure]) -> list[str]:
    available, message = export_available()
    if not available:
        return [f"> Charts not embedded. {message}."]
    lines: list[str] = []
    for name, fig in figures.items():
        lines += [f"### {_inline(name)}", ""]
        try:
            svg = figure_svg(fig)
        except ExportError as error:
            lines += [f"> Chart not embedded: {error}", ""]
            continue
        data_uri = "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")
        alt = _inline(name).replace("[", "(").replace("]", ")")
        lines += [f"![{alt}]({data_uri})", ""]
    return lines


def for_export(fig: go.Figure, stamp: str | None = None) -> go.Figure:
    """A copy with a real template. Inside a Streamlit app plotly's default template is
    Streamlit's, whose placeholder colours (#000001...) only the browser replaces: a file
    exported with it would show them. A stamp goes in a strip added under the chart, below the
    x-axis title, so it overlaps nothing (tests/ui/test_export_geometry.py)."""
    copy = go.Figure(fig)
    copy.update_layout(template=EXPORT_TEMPLATE)
    if stamp:
        # Annotations have no container coordinates: the stamp hangs below the plot by the
        # margin the chart had (where its tick labels and axis title live), in the strip added.
        below = copy.layout.margin.b if copy.layout.margin.b is not None else DEFAULT_MARGIN_BOTTOM_PX
        strip_px = STAMP_LINE_PX * (stamp.count("<br>") + 1) + STAMP_STRIP_PAD_PX
        copy.update_layout(margin=dict(b=below + strip_px))
        copy.add_annotation(
            text=stamp, xref="paper", yref="paper", x=0, y=0, xanchor="left", yanchor="top", yshift=-(below + 6),
            showarrow=False, font=dict(size=10, color="#5f6368"), name="export-stamp",
        )
    return copy


def _render(fig: go.Figure, image_format: str, width: int | None, height: int | None, scale: float) -> bytes:
    path = chromium_path()
    if path is None:
        raise ExportError(CHROMIUM_MISSING_MESSAGE)
    layout = fig.layout
    width = width or layout.width or DEFAULT_WIDTH_PX
    height = height or layout.height or DEFAULT_HEIGHT_PX
    outcome: dict[str, object] = {}

    def export() -> None:
        try:
            with warnings.catch_warnings():
                # plotly always passes its default request headers as kopts; the warm server was
                # configured at start, so the warning is noise. Only that message, only from plotly.
                warnings.filterwarnings(
                    "ignore",
                    message="The kopts argument is ignored if using a server",
                    category=UserWarning,
                    module=r"plotly\.io\._kaleido",
                )
                outcome["image"] = pio.to_image(fig, format=image_format, width=width, height=height, scale=scale)
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread below
            outcome["error"] = error

    with _server_lock:
        _ensure_server(path)
        # kaleido waits forever if its browser dies (its queue is never answered), so the call runs
        # in a helper thread while this one watches the server thread and gives up if it is gone.
        worker = threading.Thread(target=export, name="kaleido-export", daemon=True)
        worker.start()
        while worker.is_alive():
            worker.join(_WATCHDOG_INTERVAL_S)
            if worker.is_alive() and not _server_thread_alive():
                kaleido.stop_sync_server(silence_warnings=True)
                raise ExportError(f"Chromium ({path}) exited before the chart was rendered; try again.")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    image = outcome.get("image")
    if not isinstance(image, bytes):
        raise ExportError(f"kaleido returned {type(image).__name__}, not image bytes")
    return image


def _ensure_server(path: str) -> None:
    """Start the one warm kaleido server (caller holds the lock); restart it if its browser died or moved."""
    global _server_browser
    running = kaleido._global_server.is_running()  # noqa: SLF001
    if running and (not _server_thread_alive() or path != _server_browser):
        kaleido.stop_sync_server(silence_warnings=True)
        running = False
    if not running:
        # MathJax would be fetched from a CDN and we run offline; kaleido inlines plotly.js itself.
        kaleido.start_sync_server(mathjax=False, path=path, silence_warnings=True)
        _server_browser = path


def _server_thread_alive() -> bool:
    # kaleido exposes no health check; its server thread ends when the browser fails or exits.
    thread = getattr(kaleido._global_server, "_thread", None)  # noqa: SLF001
    return thread is None or thread.is_alive()


def _is_executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _neutralise(cell: object) -> object:
    if isinstance(cell, str) and cell.startswith(_FORMULA_PREFIXES):
        return "'" + cell
    return cell


def _markdown_table(header: Sequence[object], rows: Iterable[Sequence[object]], numeric: Sequence[bool]) -> list[str]:
    align = ["---:" if is_number else "---" for is_number in numeric]
    lines = ["| " + " | ".join(_cell(name) for name in header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return lines


def _cell(value: object) -> str:
    text = _format_number(value)
    # The planner's own link stays clickable; any other URL-like text is shown literally.
    if SAFE_LINK.fullmatch(text):
        return f"<{text}>"
    return _inline(text)


def _format_number(value: object) -> str:
    if value is None or value is pd.NA or value is pd.NaT:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{value:,}"
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isnan(number):
            return "–"
        # Two decimals for GiB-sized figures; tiny values keep three significant digits, not "0.00".
        return f"{number:,.2f}" if number == 0 or abs(number) >= 0.01 else f"{number:.3g}"
    return str(value)


def _inline(text: str) -> str:
    """One Markdown line shown literally: names, inputs and verdicts can come from a link or an
    upload, and must not become a link, an image or a nested list in the reader's wiki; a
    newline in a value must not break a table row or a heading."""
    return markdown_literal(text, SUMMARY_TEXT_CHARS)


def _fenced(code: str, language: str) -> list[str]:
    """A fenced code block that shows `code` literally: the fence is longer than any run of
    backticks inside it (a command can carry an imported model's name), so nothing closes it early."""
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{language if language.isalnum() else ''}", *code.splitlines(), fence]
