"""Keeps Streamlit's garbage collection after every script run cheap: the warm heap is frozen out of it."""

from __future__ import annotations

import gc
import sys
import threading

# Streamlit runs gc.collect(2) after every script run (runner.postScriptGC). A full collection
# walks every tracked object, and a warm server holds ~160,000 of them (streamlit, plotly,
# pandas, pyarrow, pydantic, the catalogue), nearly all made by imports and never freed: that
# walk cost 85-90 ms of server CPU per rerun, more than most pages' own work. gc.freeze() moves
# what is alive to a generation no collection walks; what pages create afterwards (figures,
# frames, session state, cache entries) is still collected after every run.
_lock = threading.Lock()
_modules_when_frozen = 0


def freeze_warm_heap() -> None:
    """Call at the start of every run: freezes the heap whenever imports have grown it.

    Imports are what make the heap big (a page's first visit imports its modules and plotly
    builds its validators then), so a freeze follows each new batch of modules: a few times in a
    server's life, each after a full collection, so no garbage is frozen. An object frozen while
    alive is still freed when its last reference goes; only one that later ends up in a garbage
    reference cycle stays (state of a session open during a freeze): bounded by the few freezes.
    """
    global _modules_when_frozen
    if len(sys.modules) == _modules_when_frozen:
        return
    with _lock:
        if len(sys.modules) == _modules_when_frozen:
            return
        gc.collect()
        gc.freeze()
        _modules_when_frozen = len(sys.modules)
