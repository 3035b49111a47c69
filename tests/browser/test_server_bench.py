"""bench/server.py's websocket client against a real server: every page reruns with a changed link."""

import contextlib
from urllib.parse import urlsplit

from bench import server as bench


def test_the_benchmark_client_reruns_every_page_with_a_new_context(app_server):
    # What make bench-server measures must be real reruns: the client raises on an exception, an
    # error alert, a page that is not found, or a page that writes back a context other than ours.
    port = urlsplit(app_server).port
    with contextlib.ExitStack() as stack:
        for scenario in bench.scenarios():
            session = bench.Session.open(port, scenario.page, stack)
            for _ in range(2):
                session.rerun(scenario.next_query())
                scenario.runs += 1
            assert session.page_script_hash, f"{scenario.label}: no navigation message named the page"
