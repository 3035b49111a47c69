"""Streamlit glue shared by the pages: cached loaders and catalogue tables."""
