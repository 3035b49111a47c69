"""Entry point: page config and navigation; every page is listed here explicitly."""

from pathlib import Path

import streamlit as st

from ui.export import warm_up_in_background
from ui.heap import freeze_warm_heap
from ui.layout import narrow_screen_fixes
from ui.link_limits import watch_link_limits
from ui.navigation import run_pages

# A shipped image, not a ":material/...:" shortcode: Streamlit's frontend fetches a shortcode
# favicon from fonts.gstatic.com, and the app makes no request outside its own server.
FAVICON = Path(__file__).resolve().parent / "ui" / "assets" / "favicon.png"
st.set_page_config(page_title="Gemma 4 deployment planner", page_icon=str(FAVICON), layout="wide")

PAGES = [
    st.Page("pages/start.py", title="What can I run?", icon=":material/rocket_launch:", url_path="start", default=True),
    st.Page("pages/models.py", title="Models", icon=":material/view_list:", url_path="models"),
    st.Page("pages/planner.py", title="Memory planner", icon=":material/memory:", url_path="planner"),
    st.Page("pages/fit.py", title="Device fit", icon=":material/developer_board:", url_path="fit"),
    st.Page("pages/quality.py", title="Quality trade-offs", icon=":material/insights:", url_path="quality"),
    st.Page("pages/throughput.py", title="Throughput and cost", icon=":material/speed:", url_path="throughput"),
    st.Page("pages/api_costs.py", title="Self-host or API", icon=":material/payments:", url_path="api_costs"),
    st.Page("pages/accuracy.py", title="Accuracy", icon=":material/verified:", url_path="accuracy"),
]
freeze_warm_heap()
warm_up_in_background()
watch_link_limits()
narrow_screen_fixes()
run_pages(PAGES)
