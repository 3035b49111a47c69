"""Real-server rerun cost: server CPU and memory of `streamlit run app.py` driven over its websocket."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from streamlit.proto.Alert_pb2 import Alert  # noqa: E402
from streamlit.proto.BackMsg_pb2 import BackMsg  # noqa: E402
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # noqa: E402
from websockets.sync.client import ClientConnection, connect  # noqa: E402

# The server's own threads only: the kaleido Chromium it starts is a child process, not counted.
CLOCK_PROCESS_CPUTIME = 2  # CPUCLOCK_SCHED in the kernel's clock id for another process
STARTUP_TIMEOUT_S = 60
RUN_TIMEOUT_S = 60
# Below the smallest model's context and far below every link limit: each rerun a new value.
CONTEXT_START_TOKENS = 8192
CONTEXT_STEP_TOKENS = 257
TARGET_MS = 60
PLANNER_TARGET_MS = 80
MEMORY_LIMIT = 0.10


def process_cpu_ns(pid: int) -> int:
    """CPU time of every thread of `pid`, live or exited, in ns (Linux's per-process CPU clock)."""
    return time.clock_gettime_ns(((~pid) << 3) | CLOCK_PROCESS_CPUTIME)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def runnable_threads(pid: int) -> int:
    """Threads of `pid` running or waiting for a core: the post-script work is over when none is."""
    count = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue  # the thread exited between listing and reading
        # The state follows the parenthesised thread name, which may itself hold ')'.
        if stat[stat.rindex(")") + 2] == "R":
            count += 1
    return count


def settled_cpu_ns(pid: int) -> int:
    """The server's CPU clock once it has gone quiet. The finished message can reach us before
    Streamlit's post-script work (its gc.collect runs after the message is queued) is over."""
    deadline = time.monotonic() + 5
    quiet = 0
    while quiet < 3 and time.monotonic() < deadline:
        time.sleep(0.002)
        quiet = quiet + 1 if runnable_threads(pid) == 0 else 0
    return process_cpu_ns(pid)


@dataclass
class Session:
    """One browser tab as the frontend speaks to the server: rerun requests, the page's messages back."""

    port: int
    page: str
    socket: ClientConnection
    page_script_hash: str = ""
    # Large messages the "browser" holds, by hash: the run that last used each. Like the
    # frontend, it forgets one unused for the server's maxCachedMessageAge runs.
    cached_runs: dict[str, int] = field(default_factory=dict)
    max_cached_age_runs: int = 2
    runs: int = 0

    @classmethod
    def open(cls, port: int, page: str, stack: contextlib.ExitStack) -> Session:
        # The frontend names Streamlit's subprotocol; XSRF only guards the auth cookie, unused here.
        socket = connect(
            f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit"], max_size=None,
            open_timeout=RUN_TIMEOUT_S,
        )  # fmt: skip
        return cls(port, page, stack.enter_context(socket))

    def rerun(self, query: dict[str, str]) -> None:
        """Send what the frontend sends when the URL or a widget changes; wait for the finished run."""
        message = BackMsg()
        state = message.rerun_script
        state.query_string = urlencode(query)
        state.page_name = self.page
        state.page_script_hash = self.page_script_hash
        # The frontend lists the large messages it holds, so the server sends references to them.
        self.cached_runs = {h: run for h, run in self.cached_runs.items() if self.runs - run < self.max_cached_age_runs}
        state.cached_message_hashes.extend(sorted(self.cached_runs))
        self.runs += 1
        info = state.context_info
        info.url = f"http://127.0.0.1:{self.port}/{self.page}" + (f"?{state.query_string}" if query else "")
        info.timezone, info.timezone_offset, info.locale, info.color_scheme = "UTC", 0, "en-US", "light"
        self.socket.send(message.SerializeToString())
        while True:
            reply = ForwardMsg.FromString(self.socket.recv(timeout=RUN_TIMEOUT_S))
            kind = reply.WhichOneof("type")
            if reply.metadata.cacheable:
                self.cached_runs[reply.hash] = self.runs
            if kind == "ref_hash":
                self.cached_runs[reply.ref_hash] = self.runs
            elif kind == "new_session":
                self.max_cached_age_runs = reply.new_session.config.max_cached_message_age
            elif kind == "navigation" and reply.navigation.page_script_hash:
                self.page_script_hash = reply.navigation.page_script_hash
            elif kind == "page_not_found":
                raise RuntimeError(f"/{self.page}: page not found")
            elif kind == "page_info_changed":
                # A page writes its scenario back to the URL: a context other than ours means the
                # link was not applied, and the rerun measured something else.
                written = parse_qs(reply.page_info_changed.query_string).get("ctx", [None])[-1]
                if "ctx" in query and written != query["ctx"]:
                    raise RuntimeError(f"/{self.page}: asked for ctx={query['ctx']}, the page shows ctx={written}")
            elif kind == "delta" and reply.delta.new_element.WhichOneof("type") == "exception":
                raise RuntimeError(f"/{self.page}: {reply.delta.new_element.exception.message}")
            elif kind == "delta" and reply.delta.new_element.alert.format == Alert.ERROR:
                raise RuntimeError(f"/{self.page}: {reply.delta.new_element.alert.body}")
            elif kind == "script_finished":
                if reply.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY:
                    return
                if reply.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    raise RuntimeError(f"/{self.page}: script finished with status {reply.script_finished}")


@dataclass
class Scenario:
    label: str
    page: str
    query: dict[str, str]
    changes_context: bool
    cpu_ms: list[float] = field(default_factory=list)
    wall_ms: list[float] = field(default_factory=list)
    runs: int = 0
    # The start page offers context in steps (8K, 16K...): it changes the number of users instead.
    changes_users: bool = False

    def next_query(self) -> dict[str, str]:
        # A new context every time (no cache hits flatter the figure); models and accuracy
        # have no scenario, so theirs is a plain rerun, as in bench/app.py.
        if self.changes_users:
            return self.query | {"users": str(1 + self.runs % 1024)}
        if not self.changes_context:
            return self.query
        return self.query | {"ctx": str(CONTEXT_START_TOKENS + CONTEXT_STEP_TOKENS * self.runs)}


def scenarios() -> list[Scenario]:
    from core.hf_import import encode_link, load_config_file

    own = ",".join(
        encode_link(name, load_config_file(ROOT / "data" / "configs" / f"{stem}.json"))
        for name, stem in (("Llama 3.1 8B", "llama-3.1-8b"), ("Qwen3 30B-A3B", "qwen3-30b-a3b"))
    )
    return [
        # The default page lives at the root: the frontend names it "" whatever its url_path.
        Scenario("What can I run? (start, serving N users)", "", {"use": "serving"}, False, changes_users=True),
        Scenario("Models (plain rerun)", "models", {}, False),
        Scenario("Memory planner", "planner", {}, True),
        Scenario("Memory planner with two imported models", "planner", {"custom": own}, True),
        Scenario("Device fit", "fit", {}, True),
        Scenario("Device fit with two imported models", "fit", {"custom": own}, True),
        Scenario("Quality trade-offs", "quality", {}, True),
        Scenario("Throughput and cost", "throughput", {}, True),
        Scenario("Accuracy (plain rerun)", "accuracy", {}, False),
        # No seqs in the link: each new context re-derives the concurrency the runtime serves (a rerun).
        Scenario("Self-host or API", "api_costs", {}, True),
    ]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(port: int, extra_args: list[str], log_path: Path) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
        "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
        # Nothing edits the files during a run; a watcher would only compete for the two cores.
        "--server.fileWatcherType", "none", *extra_args,
    ]  # fmt: skip
    server = subprocess.Popen(
        command, cwd=ROOT, stdout=log_path.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    started = time.monotonic()
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if server.poll() is not None or time.monotonic() - started > STARTUP_TIMEOUT_S:
            stop_server(server)
            raise RuntimeError(f"streamlit did not start:\n{log_path.read_text()}")
        time.sleep(0.1)


def stop_server(server: subprocess.Popen) -> None:
    """SIGTERM the server's process group (it and the Chromium it started), SIGKILL if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if server.poll() is not None:
            return
        try:
            os.killpg(server.pid, sig)
            server.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            continue


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure(port: int, pid: int, reruns: int) -> tuple[list[Scenario], list[int]]:
    """Round robin over the scenarios, one open session each: `reruns` measured reruns in all,
    after one unmeasured warm-up round. Returns the scenarios' samples and the RSS after each rerun."""
    runs = scenarios()
    with contextlib.ExitStack() as stack:
        sessions = [Session.open(port, run.page, stack) for run in runs]
        for run, session in zip(runs, sessions):
            session.rerun(run.next_query())
        rss = [rss_bytes(pid)]
        for index in range(reruns):
            run, session = runs[index % len(runs)], sessions[index % len(runs)]
            run.runs += 1
            query = run.next_query()
            before_ns = settled_cpu_ns(pid)
            started = time.perf_counter()
            session.rerun(query)
            run.wall_ms.append((time.perf_counter() - started) * 1e3)
            run.cpu_ms.append((settled_cpu_ns(pid) - before_ns) / 1e6)
            rss.append(rss_bytes(pid))
        return runs, rss


def idle_cpu_ms_per_s(pid: int, seconds: float = 2.0) -> float:
    before_ns = settled_cpu_ns(pid)
    time.sleep(seconds)
    return (process_cpu_ns(pid) - before_ns) / 1e6 / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reruns", type=int, default=1000, help="measured reruns in all, round robin over the pages")
    parser.add_argument("--samples", type=Path, help="also write every sample (CPU ms, round trip ms, RSS bytes) as JSON")
    parser.add_argument("streamlit_args", nargs="*", help="extra `streamlit run` options, after --")
    args = parser.parse_args()

    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        log_path = Path(folder) / "server.log"
        server = start_server(port, args.streamlit_args, log_path)
        try:
            process_cpu_ns(server.pid)  # fails loudly where the kernel has no per-process clock
            runs, rss = measure(port, server.pid, args.reruns)
            idle = idle_cpu_ms_per_s(server.pid)
        finally:
            stop_server(server)

    if args.samples:
        args.samples.write_text(json.dumps({
            "rss_bytes": rss, **{run.label: {"cpu_ms": run.cpu_ms, "wall_ms": run.wall_ms} for run in runs},
        }))  # fmt: skip

    extra = f" ({' '.join(args.streamlit_args)})" if args.streamlit_args else ""
    print(f"Real server{extra}: server CPU per rerun, {args.reruns:,} reruns round robin over the pages, "
          f"one session each, after a warm-up round; idle server {idle:.1f} ms CPU per second\n")
    print("| page | CPU median | CPU p95 | round trip median | reruns | target |")
    print("|---|---|---|---|---|---|")
    for run in runs:
        target = PLANNER_TARGET_MS if run.page == "planner" else TARGET_MS
        print(f"| {run.label} | {statistics.median(run.cpu_ms):,.0f} ms | {percentile(run.cpu_ms, 0.95):,.0f} ms "
              f"| {statistics.median(run.wall_ms):,.0f} ms | {len(run.cpu_ms)} | < {target} ms |")

    mib = 2**20
    growth = max(rss) / rss[0] - 1
    checkpoints = sorted({0, *range(100, len(rss), 100), len(rss) - 1})
    print(f"\nServer RSS over {args.reruns:,} reruns (limit: +{MEMORY_LIMIT:.0%} over the first):\n")
    print("| after reruns | " + " | ".join(f"{i:,}" for i in checkpoints) + " | max |")
    print("|---|" + "---|" * (len(checkpoints) + 1))
    print("| RSS | " + " | ".join(f"{rss[i] / mib:,.0f} MiB" for i in checkpoints) + f" | {max(rss) / mib:,.0f} MiB |")
    print(f"\nlargest RSS {growth:+.1%} over the first ({'within' if growth <= MEMORY_LIMIT else 'OVER'} the limit)")


if __name__ == "__main__":
    main()
