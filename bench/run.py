"""Benchmarks for the core engine: one estimate, a 100,000-point sweep, the CLI end to end."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.architecture import decoder_layers  # noqa: E402
from core.catalog import load_catalog  # noqa: E402
from core.estimate import MemoryRequest, _memory_profile, estimate  # noqa: E402
from core.fit import fit_matrix  # noqa: E402
from core.hf_import import ConfigImportError, decode_link, encode_link, read_config  # noqa: E402
from core.kv_cache import kv_layer_groups  # noqa: E402
from core.sweep import sweep  # noqa: E402


def timed(function, repeat: int, clock=time.perf_counter) -> list[float]:
    """Seconds per call on `clock`: wall time, or time.process_time for the CPU a call costs."""
    samples = []
    for _ in range(repeat):
        start = clock()
        function()
        samples.append(clock() - start)
    return samples


def row(name: str, samples: list[float], unit: str, scale: float, target: str) -> str:
    median = statistics.median(samples) * scale
    p95 = sorted(samples)[int(0.95 * (len(samples) - 1))] * scale
    return f"| {name} | {median:,.1f} {unit} | {p95:,.1f} {unit} | {target} | {len(samples)} |"


def main() -> None:
    catalog = load_catalog()
    request = MemoryRequest(model="31b", context_tokens=131_072, concurrent_sequences=4, images=2, gpu="h100")
    estimate(request)  # warm the profile cache, as a running app has it warm

    def cold_estimate() -> None:
        _memory_profile.cache_clear()
        estimate(request)

    models = [m.id for m in catalog.models]
    formats = ["bf16", "fp8", "awq-int4", "int8", "bnb-nf4"]
    kv_types = ["bf16", "fp16"]
    contexts = list(range(256, 256 + 250 * 52, 52))  # 250 contexts
    batches = [1, 2, 4, 8, 16]  # 4 x 5 x 2 x 250 x 5 = 50,000 ... x2 below
    batches = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32]

    def one_sweep() -> None:
        frame = sweep(models, formats, kv_types, contexts, batches, gpu="h100", catalog=catalog)
        assert len(frame) == 100_000, len(frame)

    def matrix() -> None:
        fit_matrix(MemoryRequest(model="31b", context_tokens=32_768, gpu="h100"), catalog)

    def cli() -> None:
        subprocess.run(
            [sys.executable, "-m", "core", "estimate", "--model", "31b", "--context", "131072", "--gpu", "h100", "--json"],
            cwd=ROOT, check=True, capture_output=True,
        )

    print("| benchmark | median | p95 | target | runs |")
    print("|---|---|---|---|---|")
    print(row("one estimate (profile cached)", timed(lambda: estimate(request), 2000), "us", 1e6, "< 200 us"))
    for engine, weights, gpu in (("llama.cpp", "q4_k_m", "h100"), ("vllm", "fp8", "h100"), ("mlx", "mlx-4bit", "m4 max 128gb")):
        other = request.model_copy(update={"engine": engine, "weight_format": weights, "gpus": 1, "gpu": gpu})
        estimate(other)
        print(row(f"one estimate, {engine} (profile cached)", timed(lambda: estimate(other), 2000), "us", 1e6, "< 200 us"))
    print(row("one estimate (cold: profile rebuilt)", timed(cold_estimate, 200), "us", 1e6, "< 200 us"))
    print(row("100,000-point sweep", timed(one_sweep, 10), "ms", 1e3, "< 1,000 ms"))
    print(row("fit matrix: 4 variants x 7 formats + solvers", timed(matrix, 20), "ms", 1e3, "(for pages)"))
    print(row("python -m core estimate, end to end", timed(cli, 10), "ms", 1e3, "< 250 ms"))
    config_text = (ROOT / "data" / "configs" / "gemma-3n-e2b-it.json").read_bytes()
    print(row("config.json import (parse, bounds, size: Gemma 3n)", timed(lambda: read_config(config_text), 200), "ms", 1e3, "(per upload)"))
    value = encode_link("Gemma 3n", read_config(config_text))

    def cold_decode() -> None:
        decode_link.cache_clear()
        decode_link(value)

    print(row("imported model from a link (decode + validate)", timed(cold_decode, 200), "ms", 1e3, "(per new link)"))
    for label, hostile in hostile_links():
        def cold_hostile(hostile: str = hostile) -> None:
            # Nothing cached: a stranger's link is new to the server.
            for cache in (decode_link, decoder_layers, kv_layer_groups):
                cache.cache_clear()
            try:
                decode_link(hostile)
            except ConfigImportError:
                pass

        print(row(f"hostile link: {label} ({len(hostile):,} chars), server CPU", timed(cold_hostile, 50, time.process_time), "ms", 1e3, "< 100 ms"))
    bomb = b'{"a": [' + b"1," * 500_000 + b"1]}"
    print(row("1 MiB upload of a 500,000-entry list (refused), CPU", timed(lambda: refused(bomb), 20, time.process_time), "ms", 1e3, "< 100 ms"))


def refused(data: bytes) -> None:
    try:
        read_config(data)
    except ConfigImportError:
        return
    raise AssertionError("a 500,000-entry list was accepted")


def hostile_links() -> list[tuple[str, str]]:
    """The costliest links a stranger can build within 4,000 characters: the largest model the
    limits accept (1,000 layers with per-layer widths and 4,096 experts), and payloads that
    compress 1,000:1 (half a million list entries, a megabyte of spaces)."""
    import base64
    import json
    import zlib

    def pack(data: bytes) -> str:
        return "Worst~" + base64.urlsafe_b64encode(zlib.compress(data, 9)).decode().rstrip("=")

    stored = json.loads(read_config((ROOT / "data" / "configs" / "gemma-4-e2b-it.json").read_bytes()).normalized)
    layers = 1000
    stored["text_config"].update(
        num_hidden_layers=layers, num_kv_shared_layers=0,
        layer_types=["full_attention" if index % 5 == 0 else "sliding_attention" for index in range(layers)],
        layer_intermediate_sizes=[1_000 + index * 37 % 900 for index in range(layers)],
        enable_moe_block=True, num_experts=4096, top_k_experts=4096, moe_intermediate_size=16,
    )
    stored["text_config"].pop("per_layer_config", None)
    return [
        ("1,000 layers, per-layer widths, 4,096 experts (accepted)", pack(json.dumps(stored, separators=(",", ":")).encode())),
        ("500,000 list entries (refused)", pack(b'{"text_config":{"num_hidden_layers":1000,"mlp_only_layers":[' + b"1," * 500_000 + b"1]}}")),
        ("1 MiB of spaces (refused)", pack(b" " * 2**20)),
    ]


if __name__ == "__main__":
    main()
