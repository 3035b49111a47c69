"""Entry point: page config and navigation; every page is listed here explicitly."""

import streamlit as st

st.set_page_config(page_title="Gemma 4 deployment planner", page_icon=":material/memory:", layout="wide")

page = st.navigation(
    [st.Page("pages/catalogue.py", title="Catalogue", icon=":material/table_view:", url_path="catalogue", default=True)]
)
page.run()
