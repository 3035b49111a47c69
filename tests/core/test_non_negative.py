"""No negative figures: every byte, token and count in estimate(), fit(), throughput(), the
sweep and the command line's JSON is >= 0 and finite, for random valid requests on every engine.
"No room for a KV cache" is a verdict (vLLM refuses to start), never a negative size."""

import contextlib
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from core.__main__ import main
from core.catalog import load_catalog
from core.engines.base import EngineSettings
from core.runtimes import device_refusal
from core.engines.registry import ENGINES
from core.estimate import MemoryEstimate, MemoryRequest, PlanningError, estimate
from core.fit import FitResult, fit, fit_matrix
from core.hf_import import load_config_file, model_spec
from core.sweep import sweep
from core.throughput import throughput

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "data" / "configs"
# Imported configs beside Gemma 4: a dense full-attention model, a SigLIP/sliding hybrid and
# an MoE with sliding layers, so the walk also covers models the catalogue does not ship.
IMPORTED = ("llama-3.1-8b", "gemma-3-27b-it", "gpt-oss-20b")
CATALOG = load_catalog().with_models(
    tuple(model_spec(load_config_file(CONFIGS / f"{name}.json"), name, slot) for slot, name in enumerate(IMPORTED, 1))
)
MODELS = [m.id for m in CATALOG.models]
IMPORTED_IDS = [m.id for m in CATALOG.models[-len(IMPORTED):]]
EXAMPLES = 2000

# The issue's command: `estimate --model e2b --weights gptq-int4 --kv-dtype fp8 --engine vllm
# --gpu h100 --gpus 2 --gpu-memory-utilization 0.05 --json`. 0.05 x 79.6 GiB = 4.0 GiB per GPU,
# less than E2B's 3.5 GiB of weights per rank plus the profiling run and CUDA graphs.
ISSUE_ARGV = [
    "estimate", "--model", "e2b", "--weights", "gptq-int4", "--kv-dtype", "fp8", "--engine", "vllm",
    "--gpu", "h100", "--gpus", "2", "--gpu-memory-utilization", "0.05", "--json",
]
ISSUE_REQUEST = MemoryRequest(
    model="e2b", weight_format="gptq-int4", kv_cache_dtype="fp8", engine="vllm", gpu="h100", gpus=2,
    engine_settings=EngineSettings(gpu_memory_utilization=0.05),
)


def negatives(value: Any, path: str = "") -> list[str]:
    """Every number under `value` (dicts, lists, tuples, pydantic dumps) that is negative or
    not finite, as 'path = value'. Booleans are verdicts, not figures."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return []
    if isinstance(value, (int, float)):
        return [] if math.isfinite(value) and value >= 0 else [f"{path or '.'} = {value!r}"]
    if isinstance(value, dict):
        return [bad for key, item in value.items() for bad in negatives(item, f"{path}.{key}")]
    if isinstance(value, (list, tuple)):
        return [bad for index, item in enumerate(value) for bad in negatives(item, f"{path}[{index}]")]
    raise TypeError(f"{path}: unexpected {type(value).__name__}")


def test_the_walk_finds_what_it_should():
    # The checker itself must be able to fail, or every property below passes vacuously.
    assert negatives({"a": [1, {"b": -1}], "c": float("nan"), "d": True, "e": 0}) == [".a[1].b = -1", ".c = nan"]
    assert negatives({"x": float("inf")}) == [".x = inf"]


def _gpus_for(engine: str, heads: int) -> list[int]:
    policy = ENGINES[engine]
    if policy.max_gpus is not None:
        return list(range(1, policy.max_gpus + 1))
    if policy.splits_kv_heads:
        return [n for n in range(1, 9) if heads % n == 0]
    return list(range(1, 9))


def _accelerators_for(engine: str) -> list[str]:
    return [a.id for a in CATALOG.accelerators if device_refusal(CATALOG, engine, a) is None]


# Half the time no pool size (vLLM sizes it from gpu_memory_utilization); otherwise from one
# byte to a petabyte, spread over the orders of magnitude.
kv_pool_bytes = st.one_of(
    st.none(),
    st.one_of(st.integers(1, 2**20), st.integers(2**20, 2**34), st.integers(2**34, 2**50)),
)


@st.composite
def engine_settings(draw) -> EngineSettings:
    return EngineSettings(
        n_ubatch=draw(st.sampled_from([1, 7, 64, 512, 2048, 8192])),
        kv_unified=draw(st.booleans()),
        swa_full=draw(st.booleans()),
        gpu_memory_utilization=draw(
            st.one_of(st.sampled_from([0.05, 0.1, 0.5, 0.9, 1.0]), st.floats(0.05, 0.3), st.floats(0.05, 1.0))
        ),
        kv_cache_memory_bytes=draw(kv_pool_bytes),
        max_num_batched_tokens=draw(st.sampled_from([1, 512, 2048, 8192, 65_536])),
        max_num_seqs=draw(st.sampled_from([1, 16, 256, 1024])),
        block_size=draw(st.sampled_from([8, 16, 32, 64, 128])),
        async_scheduling=draw(st.booleans()),
        disable_hybrid_kv_cache_manager=draw(st.booleans()),
    )


@st.composite
def requests(draw, models: tuple[str, ...] = (), with_gpu: bool = False) -> MemoryRequest:
    engine = draw(st.sampled_from(list(ENGINES)))
    # Imported models get a draw of their own, so the catalogue's do not drown them out.
    choices = st.sampled_from(models) if models else st.one_of(st.sampled_from(MODELS), st.sampled_from(IMPORTED_IDS))
    model = CATALOG.model(draw(choices))
    gpu = st.sampled_from(_accelerators_for(engine))
    formats = [f.id for f in CATALOG.weight_formats if engine in f.engines]
    kv_types = [k.id for k in CATALOG.kv_cache_types if engine in k.engines]
    vision = model.config.vision_config is not None
    return MemoryRequest(
        model=model.id,
        engine=engine,
        weight_format=draw(st.sampled_from(formats)),
        kv_cache_dtype=draw(st.sampled_from(kv_types)),
        context_tokens=draw(st.one_of(st.integers(1, 4096), st.integers(1, model.max_context_tokens))),
        concurrent_sequences=draw(st.one_of(st.integers(1, 8), st.integers(1, 4096))),
        images=draw(st.integers(0, 6)) if vision else 0,
        image_tokens=draw(st.sampled_from([70, 140, 280, 560, 1120])),
        audio_seconds=draw(st.floats(0, 300)) if model.takes_audio else 0,
        thinking_tokens=draw(st.one_of(st.just(0), st.integers(0, 16_000))),
        ple_on_host=draw(st.booleans()),
        gpu=draw(gpu if with_gpu else st.one_of(st.none(), gpu)),
        gpus=draw(st.sampled_from(_gpus_for(engine, model.config.text_config.num_attention_heads))),
        engine_settings=draw(engine_settings()),
    )


def check_request(request: MemoryRequest) -> None:
    """Walk estimate(), fit() and throughput() of one request; PlanningError is a fine answer
    to an impossible request (a context beyond the model's maximum, a GPU without figures)."""
    try:
        result = estimate(request, CATALOG)
    except PlanningError:
        event("refused: PlanningError")
        return
    assert not negatives(result.model_dump()), negatives(result.model_dump())
    report = result.engine_report
    event(f"{request.engine}: kv cache {report.get('kv_cache_verdict', 'n/a')}")
    if request.gpu is None:
        return
    fitted = fit(request, CATALOG)
    assert not negatives(fitted.model_dump()), negatives(fitted.model_dump())
    # Headroom and shortfall: one of them is zero, and the verdict follows the shortfall.
    assert fitted.headroom_bytes == 0 or fitted.shortfall_bytes == 0
    assert fitted.fits is (fitted.shortfall_bytes == 0)
    assert (fitted.verdict == "does_not_fit") is (not fitted.fits)
    event(f"fit: {fitted.verdict}")
    # Without offload, vLLM refuses to start; --cpu-offload-gb may give its pool the room.
    rescued = fitted.verdict == "fits_with_offload" and fitted.offload is not None
    if report.get("no_room_for_kv_cache"):
        assert fitted.verdict == "does_not_fit" or rescued
        assert (fitted.max_context_tokens, fitted.max_concurrent_sequences) == (0, 0)
    if report.get("kv_cache_verdict", "ok") != "ok":
        assert (fitted.verdict == "does_not_fit" and fitted.engine_error) or rescued
    try:
        speed = throughput(request, catalog=CATALOG)
    except PlanningError:
        event("throughput refused: PlanningError")
        return
    assert not negatives(speed.model_dump()), negatives(speed.model_dump())


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
@example(ISSUE_REQUEST)
def test_no_negative_figure_for_any_request(request):
    check_request(request)


def test_the_issue_request_is_a_no_room_verdict():
    # E2B gptq-int4 on 2 x H100 at 5%: per GPU vLLM claims floor(85,520,809,984 x 0.05) =
    # 4,276,040,499 bytes, less than what each rank holds before any KV cache, so vLLM
    # raises "No available memory for the cache blocks" (kv_cache_utils.py).
    report = estimate(ISSUE_REQUEST, CATALOG).engine_report
    h100 = CATALOG.accelerator("h100").memory_bytes
    assert report["reserved_bytes"] == 2 * math.floor(h100 * 0.05)
    assert report["no_room_for_kv_cache"] is True
    assert report["kv_cache_verdict"] == "no_room"
    assert report["kv_cache_memory_bytes"] == 0
    assert report["kv_cache_shortfall_bytes"] > 0
    assert (report["num_blocks"], report["max_concurrency"], report["kv_cache_tokens"]) == (0, 0, 0)
    assert any("No available memory for the cache blocks" in line for line in report["log_lines"])
    fitted = fit(ISSUE_REQUEST, CATALOG)
    assert fitted.verdict == "does_not_fit" and not fitted.fits
    assert fitted.headroom_bytes == 0 and fitted.shortfall_bytes > 0
    assert "No available memory for the cache blocks" in fitted.engine_error


def test_the_issue_command_prints_no_negative_figure(capsys):
    assert main(ISSUE_ARGV) == 0
    printed = json.loads(capsys.readouterr().out)
    assert not negatives(printed), negatives(printed)
    assert printed["engine_report"]["no_room_for_kv_cache"] is True
    assert printed["fit"]["verdict"] == "does_not_fit" and printed["fit"]["fits"] is False
    assert printed["fit"]["shortfall_bytes"] > 0 and printed["fit"]["headroom_bytes"] == 0


def _argv(request: MemoryRequest) -> list[str]:
    """The command line that builds `request` (Gemma 4 catalogue models only)."""
    knobs = request.engine_settings
    argv = [
        "--weights", request.weight_format, "--kv-dtype", request.kv_cache_dtype, "--engine", request.engine,
        "--context", str(request.context_tokens), "--batch", str(request.concurrent_sequences),
        "--images", str(request.images), "--image-tokens", str(request.image_tokens),
        "--audio-seconds", repr(request.audio_seconds), "--thinking-tokens", str(request.thinking_tokens),
        "--gpus", str(request.gpus), "--n-ubatch", str(knobs.n_ubatch),
        "--gpu-memory-utilization", repr(knobs.gpu_memory_utilization),
        "--max-num-batched-tokens", str(knobs.max_num_batched_tokens), "--max-num-seqs", str(knobs.max_num_seqs),
        "--block-size", str(knobs.block_size), "--json",
    ]
    if request.gpu:
        argv += ["--gpu", request.gpu]
    if knobs.kv_cache_memory_bytes is not None:
        argv += ["--kv-cache-memory-bytes", str(knobs.kv_cache_memory_bytes)]
    for flag, on in (
        ("--ple-on-host", request.ple_on_host), ("--kv-unified", knobs.kv_unified), ("--swa-full", knobs.swa_full),
        ("--no-async-scheduling", not knobs.async_scheduling),
        ("--disable-hybrid-kv-cache-manager", knobs.disable_hybrid_kv_cache_manager),
    ):
        if on:
            argv.append(flag)
    return argv


GEMMA_IDS = tuple(m.id for m in load_catalog().models)


def run_cli(argv: list[str]) -> tuple[int, str]:
    """main(argv) in-process: (exit status, stdout); stderr is dropped."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        status = main(argv)
    return status, out.getvalue()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests(models=GEMMA_IDS))
@example(ISSUE_REQUEST.model_copy(update={"model": "gemma-4-e2b"}))
def test_no_negative_figure_in_the_command_lines_json(request):
    status, out = run_cli(["estimate", "--model", request.model, *_argv(request)])
    if status == 2:  # an impossible request: one line on stderr, nothing on stdout
        assert out == ""
        return
    assert status == 0
    printed = json.loads(out)
    assert not negatives(printed), negatives(printed)
    if request.gpu:
        fitted = printed["fit"]
        assert fitted["fits"] is (fitted["shortfall_bytes"] == 0)
        if printed["engine_report"].get("no_room_for_kv_cache"):
            # vLLM does not start; only --cpu-offload-gb (named in the fit) could give it room.
            assert fitted["verdict"] == "does_not_fit" or fitted["offload"]["method"] == "vLLM --cpu-offload-gb"
        status, out = run_cli(["fit", *_argv(request)])
        if status == 0:
            rows = json.loads(out)
            assert not negatives(rows), negatives(rows)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests(with_gpu=True))
def test_no_negative_figure_in_the_fit_matrix(request):
    try:
        rows = fit_matrix(request, CATALOG)
    except PlanningError:
        return
    for row in rows:
        assert not negatives(row.model_dump()), negatives(row.model_dump())
        assert row.fits is (row.shortfall_bytes == 0)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(list(ENGINES)),
    st.lists(st.sampled_from(MODELS), min_size=1, max_size=3, unique=True),
    st.lists(st.integers(1, 262_144), min_size=1, max_size=5, unique=True),
    st.lists(st.integers(1, 4096), min_size=1, max_size=3, unique=True),
    st.data(),
)
def test_no_negative_figure_in_the_sweep(engine, models, contexts, batches, data):
    formats = [f.id for f in CATALOG.weight_formats if engine in f.engines]
    kv_types = [k.id for k in CATALOG.kv_cache_types if engine in k.engines]
    gpu = data.draw(st.one_of(st.none(), st.sampled_from(_accelerators_for(engine))))
    gpus = data.draw(st.sampled_from([1, 2, 4, 8]))
    thinking = data.draw(st.integers(0, 4000))
    knobs = data.draw(engine_settings())
    frame = sweep(
        models,
        data.draw(st.lists(st.sampled_from(formats), min_size=1, max_size=2, unique=True)),
        data.draw(st.lists(st.sampled_from(kv_types), min_size=1, max_size=2, unique=True)),
        contexts,
        batches,
        engine=engine,
        gpu=gpu,
        gpus=gpus,
        thinking_tokens=thinking,
        engine_settings=knobs,
        catalog=CATALOG,
    )
    numbers = frame.select_dtypes("number")
    assert numbers.notna().all().all()
    bad = numbers.columns[(numbers < 0).any()].tolist()
    assert not bad, f"negative values in {bad}"
    if gpu and len(frame):
        assert {"headroom_bytes", "shortfall_bytes"} <= set(frame.columns)
        assert (frame["fits"] == (frame["shortfall_bytes"] == 0)).all()
        assert ((frame["headroom_bytes"] == 0) | (frame["shortfall_bytes"] == 0)).all()
        # The vectorised verdict is the scalar one (fit), point for point.
        for row in frame.sample(n=min(len(frame), 3), random_state=0).itertuples():
            fitted = fit(
                MemoryRequest(
                    model=row.model, engine=engine, weight_format=row.weight_format, kv_cache_dtype=row.kv_cache_dtype,
                    context_tokens=row.context_tokens, concurrent_sequences=row.concurrent_sequences,
                    thinking_tokens=thinking, gpu=gpu, gpus=gpus, engine_settings=knobs,
                ),
                CATALOG,
            )
            if fitted.offload is not None:
                # The sweep answers for the GPU(s) alone, without --fit's margin; offload is fit()'s.
                assert fitted.offload.device_bytes <= row.usable_bytes
                continue
            assert (row.fits, row.headroom_bytes, row.shortfall_bytes) == (
                fitted.fits, fitted.headroom_bytes, fitted.shortfall_bytes
            )


@pytest.mark.parametrize("utilisation", [0.05, 0.2])
def test_vllm_sweep_says_no_room_like_fit(utilisation):
    # The sweep's verdict for a pool with no room agrees with fit()'s, point by point.
    knobs = EngineSettings(gpu_memory_utilization=utilisation)
    frame = sweep(["31b", "e2b"], ["fp8"], ["fp8"], [1024, 8192, 131_072], [1, 8], engine="vllm", gpu="h100", engine_settings=knobs)
    for row in frame.itertuples():
        fitted = fit(
            MemoryRequest(model=row.model, engine="vllm", weight_format="fp8", kv_cache_dtype="fp8", context_tokens=row.context_tokens, concurrent_sequences=row.concurrent_sequences, gpu="h100", engine_settings=knobs)
        )
        if fitted.offload is not None:
            # --cpu-offload-gb rescues what the GPU alone (the sweep's question) cannot hold.
            assert not row.fits and fitted.offload.method == "vLLM --cpu-offload-gb"
            continue
        assert (row.fits, row.headroom_bytes, row.shortfall_bytes) == (fitted.fits, fitted.headroom_bytes, fitted.shortfall_bytes)


def test_the_result_models_refuse_a_negative_figure():
    # The invariant lives in the models too, so a future negative is an error, not a figure.
    fitted = fit(ISSUE_REQUEST, CATALOG).model_dump()
    for field in ("headroom_bytes", "shortfall_bytes", "usable_bytes", "total_bytes"):
        with pytest.raises(ValidationError, match=field):
            FitResult(**{**fitted, field: -1})
    result = estimate(ISSUE_REQUEST, CATALOG).model_dump()
    with pytest.raises(ValidationError, match="kv_cache_bytes"):
        MemoryEstimate(**{**result, "kv_cache_bytes": -1})
    with pytest.raises(ValueError, match="engine_report.kv_cache_memory_bytes = -1315623184"):
        MemoryEstimate(**{**result, "engine_report": {**result["engine_report"], "kv_cache_memory_bytes": -1315623184}})
    with pytest.raises(ValueError, match="engine_report.max_concurrency = nan"):
        MemoryEstimate(**{**result, "engine_report": {**result["engine_report"], "max_concurrency": float("nan")}})
