"""Makes every page run through app.py's st.navigation, even on a server's very first request."""

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager


def through_app() -> None:
    """Call first in every page script.

    Streamlit treats an app with a `pages/` folder as a legacy (v1) multipage app until
    app.py's st.navigation has run once in the server process. If the first request of a
    fresh server opens a page's URL directly, that page runs on its own: no page config
    and the wrong sidebar. Switching the flag off and rerunning sends the run through
    app.py, which then routes to the same page.
    """
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        st.rerun()
