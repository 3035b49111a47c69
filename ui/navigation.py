"""Makes every page run through app.py's st.navigation, even on a server's first requests."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import streamlit as st
from streamlit.navigation.page import StreamlitPage
from streamlit.runtime.pages_manager import PagesManager

# Each script run has its own thread: app.py marks the runs that go through its navigation.
_run = threading.local()


def run_pages(pages: Sequence[StreamlitPage]) -> None:
    """app.py's navigation: runs the chosen page, marking the run as routed by app.py."""
    _run.through_app = True
    try:
        st.navigation(list(pages)).run()
    finally:
        _run.through_app = False


def through_app() -> None:
    """Call first in every page script.

    Streamlit treats an app with a `pages/` folder as a legacy (v1) multipage app until
    app.py's st.navigation has run in the server process, and every run decides on its own
    which mode it is in. A page reached in legacy mode runs without app.py: no page config,
    the wrong sidebar. Switching the legacy flag off and rerunning sends the run through
    app.py, which routes to the same page. The check is per run (not the process-wide flag),
    so simultaneous first requests cannot slip through.
    """
    if not getattr(_run, "through_app", False):
        PagesManager.uses_pages_directory = False
        st.rerun()
