"""Concurrent first imports (a cold server's simultaneous first requests) never see half-built modules."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What the pages import first, each from its own thread, all released at once.
RACE = """
import sys, threading, importlib, traceback
modules = sys.argv[1:]
barrier = threading.Barrier(len(modules))
failures = []
def load(name):
    barrier.wait()
    try:
        importlib.import_module(name)
    except BaseException:
        failures.append(traceback.format_exc(limit=1))
threads = [threading.Thread(target=load, args=(m,)) for m in modules]
for t in threads: t.start()
for t in threads: t.join()
print("".join(failures)); sys.exit(1 if failures else 0)
"""
MODULES = ["core.fit", "core.estimate", "core.quality", "core.throughput", "core.hf_import", "core.engines.vllm",
           "core.sweep", "core.recommend", "core.engines.registry", "core.calibrate"]


@pytest.mark.parametrize("rotation", range(6))
def test_threads_importing_core_at_once_all_succeed(rotation):
    order = MODULES[rotation:] + MODULES[:rotation]
    done = subprocess.run([sys.executable, "-c", RACE, *order], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
