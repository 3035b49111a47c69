"""Page-wide fixes: the sidebar starts collapsed below 1,024 px, metrics and buttons never truncate, chart labels read."""

from __future__ import annotations

import streamlit as st

# Streamlit's "auto" sidebar collapses only at 768 px and below; between that and a laptop
# screen its 300 px leave the page too little room. On a tab's first page load below this width
# the sidebar is collapsed once; after that it stays as the user leaves it.
NARROW_SCREEN_PX = 1024

# Constant markup, no user input: the only JavaScript the app runs (st.html executes it in the
# page, not in an iframe). It waits for the sidebar to render, then presses its own collapse
# button, as the user would.
_COLLAPSE_ONCE = f"""
<script>
(() => {{
  const flag = "gemma4-planner-sidebar-auto-collapsed";
  if (window.innerWidth >= {NARROW_SCREEN_PX} || window.sessionStorage.getItem(flag)) return;
  let tries = 0;
  const collapse = () => {{
    const button = document.querySelector('[data-testid="stSidebarCollapseButton"] button');
    const sidebar = document.querySelector('[data-testid="stSidebar"]');
    if (button && sidebar && sidebar.getAttribute("data-collapsed") === "false") {{
      window.sessionStorage.setItem(flag, "1");
      button.click();
    }} else if (tries++ < 50) {{
      window.setTimeout(collapse, 100);
    }}
  }};
  collapse();
}})();
</script>
"""

# Metric values and button labels wrap instead of ending in "..." or one letter.
_NO_TRUNCATION = """
<style>
[data-testid="stMetricValue"] > div, [data-testid="stMetricValue"] p { white-space: normal; overflow: visible; text-overflow: clip; overflow-wrap: anywhere; }
[data-testid="stMetricLabel"] > div, [data-testid="stMetricLabel"] p { white-space: normal; overflow: visible; text-overflow: clip; }
[data-testid="stDownloadButton"] button p, [data-testid="stPopover"] button p, [data-testid="stBaseButton-secondary"] p { white-space: nowrap; overflow: visible; text-overflow: clip; }
/* Streamlit's light theme draws plotly tick labels in #808495: 3.7:1 on white, under WCAG's 4.5:1
   for text. Only that grey (set inline by plotly) is darkened; the dark theme's labels differ and stay. */
.js-plotly-plot text[style*="fill: rgb(128, 132, 149)"] { fill: #5f6368 !important; }
</style>
"""


def narrow_screen_fixes() -> None:
    """Call once per run, from app.py: takes no space on the page."""
    st.html(_NO_TRUNCATION)
    st.html(_COLLAPSE_ONCE, unsafe_allow_javascript=True)
