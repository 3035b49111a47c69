"""What a rerun leaves for Streamlit's collection after every run to walk (counts, not timings)."""

import gc
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")
# bench/server.py times the real server; these counts are what its CPU figure rests on.
# A warm app imports ~160,000 tracked objects (streamlit, plotly, pandas, pyarrow, pydantic).
WARM_HEAP_OBJECTS = 100_000
# What 20 context changes may leave behind for the collector (cached per-context figures left
# ~420 objects each: 8,400).
GROWTH_OBJECTS_PER_20_CHANGES = 1_000


def planner(context_tokens: int = 32_768) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60)
    app.query_params["ctx"] = str(context_tokens)
    app.switch_page("pages/planner.py")
    return app.run()


def change_context(app: AppTest, context_tokens: int) -> None:
    app.sidebar.number_input(key="planner_ctx").set_value(context_tokens).run()
    assert not app.exception, app.exception


def test_the_warm_heap_is_frozen_out_of_the_collection(monkeypatch: pytest.MonkeyPatch):
    app = planner()
    change_context(app, 40_000)  # the first run's imports are frozen at the start of the next
    assert gc.get_freeze_count() > WARM_HEAP_OBJECTS

    frozen_at = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen_at.append(len(sys.modules)))
    for index in range(10):
        change_context(app, 41_000 + 257 * index)
    # A freeze follows new imports only (the export warm-up thread may still be importing):
    # freezing on every run would keep whatever the runs left in reference cycles alive for good.
    assert len(frozen_at) == len(set(frozen_at)), frozen_at


def test_context_changes_leave_nothing_for_the_collector_to_walk():
    app = planner()
    for index in range(3):
        change_context(app, 20_000 + index)
    gc.collect()
    before = len(gc.get_objects())
    for index in range(20):
        change_context(app, 50_000 + 257 * index)
    gc.collect()
    growth = len(gc.get_objects()) - before
    assert growth < GROWTH_OBJECTS_PER_20_CHANGES
