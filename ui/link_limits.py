"""Makes Streamlit's silent refusal of an oversized link visible: a marker parameter instead of nothing."""

from __future__ import annotations

import logging
from collections.abc import Callable

from streamlit.runtime import app_session
from streamlit.runtime.state import query_params

# Streamlit (runtime/state/query_params.py) hands the script an empty query string when a link
# has more than 1,000 parameters or 512 Ki characters: the page would open with its defaults and
# say nothing. The replacement keeps Streamlit's decision and only says that it happened.
DROPPED_LINK_PARAM = "_link_dropped"
MAX_FIELDS = getattr(query_params, "CLIENT_STATE_QUERY_STRING_MAX_FIELDS", 1000)
MAX_CHARS = getattr(query_params, "CLIENT_STATE_QUERY_STRING_MAX_LENGTH", 512 * 1024)

_log = logging.getLogger(__name__)


def watch_link_limits() -> None:
    """Wrap the sanitiser app sessions call (once per process). The first run of a fresh server
    has already been sanitised when this runs; every later one goes through the wrapper."""
    current: Callable[[str], str] | None = getattr(app_session, "sanitize_query_string", None)
    if current is None or getattr(current, "reports_dropped_links", False):
        if current is None:
            _log.warning("Streamlit has no app_session.sanitize_query_string: oversized links go unreported")
        return

    def sanitize(query_string: str) -> str:
        kept = current(query_string)
        if query_string and not kept:
            fields = query_string.count("&") + 1
            return f"{DROPPED_LINK_PARAM}={fields}.{len(query_string)}"
        return kept

    sanitize.reports_dropped_links = True  # type: ignore[attr-defined]
    app_session.sanitize_query_string = sanitize  # type: ignore[attr-defined]


def dropped_link_notice(value: str) -> str:
    """The notice for the marker's value ('<parameters>.<characters>')."""
    fields, _, chars = value.partition(".")
    if not (fields.isdigit() and chars.isdigit()):
        return f"Link parameter '{DROPPED_LINK_PARAM}' is not used on this page and was ignored."
    return (
        f"The link carried {int(fields):,} parameters ({int(chars):,} characters), more than the "
        f"{MAX_FIELDS:,} parameters or {MAX_CHARS:,} characters a link may hold here, so none of it was "
        "read: the page shows its defaults."
    )
