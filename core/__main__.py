"""Command line: `python -m core params|estimate|fit`, tables by default, --json for scripts."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, get_args

from pydantic import ValidationError

from core.catalog import Catalog, CatalogError, UnknownChoiceError, clipped, load_catalog
from core.engines.base import EngineSettings
from core.engines.registry import ENGINES
from core.estimate import IMAGE_TOKEN_BUDGETS, REQUESTED, MemoryEstimate, MemoryRequest, PlanningError, estimate
from core.files import FileReadError
from core.catalog import Accelerator
from core.devices import TYPED_KINDS, TypedDevice, typed_accelerator
from core.engines.registry import engine_policy
from core.fit import FitResult, FitRow, RefusedCell, fit, fit_matrix, refused_cells
from core.launch import LaunchCommand, launch_command
from core.runtimes import default_format, default_kv_cache, format_for, runtimes_for
from core.kv_cache import TURBOQUANT_NAMES, turboquant_default
from core.params import count_parameters
from core.units import format_bytes, format_params, gb, gib

if TYPE_CHECKING:
    # Only `calibrate` needs it, and it costs every other command a few milliseconds to import.
    from core.calibrate import CalibrationRow

# Request fields -> the flag that sets them, so validation messages name what the user typed.
FLAGS = {
    "model": "--model",
    "weight_format": "--weights",
    "kv_cache_dtype": "--kv-dtype",
    "engine": "--engine",
    "context_tokens": "--context",
    "concurrent_sequences": "--batch",
    "images": "--images",
    "image_tokens": "--image-tokens",
    "audio_seconds": "--audio-seconds",
    "thinking_tokens": "--thinking-tokens",
    "ple_on_host": "--ple-on-host",
    "gpu": "--gpu",
    "gpus": "--gpus",
    "n_ubatch": "--n-ubatch",
    "gpu_memory_utilization": "--gpu-memory-utilization",
    "kv_cache_memory_bytes": "--kv-cache-memory-bytes",
    "max_num_batched_tokens": "--max-num-batched-tokens",
    "max_num_seqs": "--max-num-seqs",
    "block_size": "--block-size",
    "paged_attention": "--paged-attn",
    "pa_memory_fraction": "--pa-memory-fraction",
    "pa_context_tokens": "--pa-context-len",
}


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # "argument --context: ..." -> "--context: ...", like the request's validation messages.
        raise UsageError(re.sub(r"^argument (-\S+): ", r"\1: ", message))

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:
        return super().parse_known_args(_attach_values(self, sys.argv[1:] if args is None else args), namespace)


def _attach_values(parser: argparse.ArgumentParser, argv: Sequence[str]) -> list[str]:
    """`--flag VALUE` as `--flag=VALUE` where the flag takes a value and VALUE starts with '-'.

    argparse reads '-5GiB' or '-inf' after a flag as another option and answers "expected one
    argument"; attached, the value reaches its own check, which says what is wrong with it. A
    VALUE that is itself one of this parser's options is left alone (`--model --json` still says
    --model lacks a value). Each (sub)parser attaches values for its own flags; the top level
    has none that take a value, and passes everything after the command to the subparser."""
    # argparse's own table of option strings (a private attribute, stable since Python 2.7).
    options: dict[str, argparse.Action] = parser._option_string_actions
    out: list[str] = []
    tokens = iter(argv)
    for token in tokens:
        out.append(token)
        if token == "--":
            out.extend(tokens)
            break
        action = _option(options, token)
        if action is None or action.nargs is not None:
            continue
        value = next(tokens, None)
        if value is None:
            break
        if value.startswith("-") and value != "--" and not _looks_like_option(options, value):
            out[-1] = f"{token}={value}"
        else:
            out.append(value)
    return out


def _option(options: dict[str, argparse.Action], token: str) -> argparse.Action | None:
    """The option `token` names, exactly or as argparse's unambiguous prefix; else None."""
    if not token.startswith("-") or "=" in token:
        return None
    if token in options:
        return options[token]
    matches = {id(action): action for name, action in options.items() if token.startswith("--") and name.startswith(token)}
    return next(iter(matches.values())) if len(matches) == 1 else None


def _looks_like_option(options: dict[str, argparse.Action], token: str) -> bool:
    """Whether argparse would take `token` for one of these options (even an ambiguous prefix)."""
    name = token.partition("=")[0]
    return name in options or (name.startswith("--") and any(option.startswith(name) for option in options))


class _NameTyped(argparse.Action):
    """Stores the value, and which of the flag's names was typed (`--tensor-parallel` or
    `--gpus`), so a validation message names the flag the user wrote."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        setattr(namespace, self.dest, values)
        namespace.typed_flags = {**getattr(namespace, "typed_flags", {}), self.dest: option_string}


def _scenario_flags(parser: argparse.ArgumentParser, *, matrix: bool) -> None:
    if matrix:
        parser.add_argument("--model", help="only this variant (default: all)")
        parser.add_argument("--weights", help="only these formats, comma-separated (default: all)")
    else:
        parser.add_argument("--model", help="e2b, e4b, 26b-a4b, 31b (or full ids); default: the --config model")
        parser.add_argument(
            "--weights", help="weight format, e.g. bf16, fp8, awq-int4, q4_k_m (default: the file people "
            "download for the runtime: bf16, GGUF Q4_K_M, Ollama's gemma4 tag, MLX 4-bit)",
        )
    parser.add_argument(
        "--kv-dtype", help="KV cache type: bf16, fp16, fp8, q8_0, q5_0, q4_0, turboquant_4bit_nc, mlx-tq3.5...; "
        "'turboquant' picks the runtime's TurboQuant default (default: the runtime's KV type)",
    )
    parser.add_argument(
        "--engine", help=f"runtime: {', '.join(ENGINES)} (default: every runtime that runs on the device "
        "for fit; the most usual one there for estimate; transformers without a device)",
    )
    parser.add_argument(
        "--context", type=int, help="context tokens per sequence (default: what the runtime picks: Ollama's "
        "VRAM tier, llama-server's trained context lowered by --fit, vLLM's max_model_len; 8,192 for "
        "runtimes that grow the cache as they go)",
    )
    parser.add_argument("--batch", type=int, default=1, help="concurrent sequences, each holding --context tokens")
    parser.add_argument("--images", type=int, default=0, help="images per request")
    parser.add_argument(
        "--image-tokens", type=int, default=280, help=f"token budget per image: {IMAGE_TOKEN_BUDGETS}"
    )
    parser.add_argument("--audio-seconds", type=float, default=0, help="audio per request (E models)")
    parser.add_argument("--thinking-tokens", type=int, default=0, help="reasoning tokens per request")
    parser.add_argument("--ple-on-host", action="store_true", help="keep the PLE table in host memory")
    parser.add_argument("--gpu", help="device id or alias, e.g. h100, rtx-4090, 'm4 max 128gb', rpi5-8gb")
    device = parser.add_argument_group("a device of your own (instead of --gpu)")
    device.add_argument("--device-memory", type=_size, help="its memory: GPU memory, or a Mac's / phone's / PC's RAM (16GiB)")
    device.add_argument("--device-kind", choices=TYPED_KINDS, help="what it is (default: nvidia)")
    device.add_argument("--bandwidth-gbs", type=float, help="its memory bandwidth, GB/s")
    device.add_argument("--device-architecture", help="its GPU generation, e.g. ada, blackwell (decides NVFP4/FP8)")
    parser.add_argument("--host-memory", type=_size, help="host RAM for offload (default: the device's or its kind's)")
    parser.add_argument("--text-only", action="store_true", help="no vision/audio encoders (llama.cpp --no-mmproj)")
    parser.add_argument(
        "--gpus", "--tensor-parallel", dest="gpus", type=int, default=1, action=_NameTyped,
        help="GPU count (tensor parallel)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output, sizes in bytes")
    llama = parser.add_argument_group("llama.cpp")
    llama.add_argument("--n-ubatch", type=int, default=512, help="physical batch size (-ub), default 512")
    llama.add_argument(
        "--parallel", type=int, help="sequences (-np), each with its own cache; same as --batch "
        "(default: llama-server's -np auto, 4 slots sharing one pool)",
    )
    llama.add_argument("--fit-target", type=int, default=1024, help="MiB --fit leaves free per device (-fitt)")
    llama.add_argument("--no-flash-attention", action="store_true", help="-fa off: every V cache padded to the widest layer's")
    llama.add_argument("--swa-full", action="store_true", help="full-size cache for sliding layers")
    llama.add_argument("--kv-unified", action="store_true", help="one cache shared by all sequences (-kvu)")
    vllm = parser.add_argument_group("vLLM")
    vllm.add_argument(
        "--gpu-memory-utilization", type=float, default=None,
        help="share of GPU memory vLLM claims (default 0.9; vllm-metal 0.92, as it quotes vLLM 0.27.1)",
    )
    vllm.add_argument(
        "--kv-cache-memory-bytes", type=_size, help="KV pool per GPU, bytes or with a unit (4.25GiB)"
    )
    vllm.add_argument(
        "--max-num-batched-tokens", type=int, default=None,
        help="tokens per scheduler step (default: vLLM's for the GPU, 8192 on one of >= 70 GiB other than an A100, else 2048)",
    )  # fmt: skip
    vllm.add_argument(
        "--max-num-seqs", type=int, default=None,
        help="sequences per scheduler step (default: vLLM's for the GPU, 1024 on one of >= 70 GiB other than an A100, else 256)",
    )  # fmt: skip
    vllm.add_argument("--block-size", type=int, default=16, help="tokens per KV block")
    vllm.add_argument(
        "--async-scheduling", action=argparse.BooleanOptionalAction, default=True,
        help="keep two steps in flight (default on)",
    )
    vllm.add_argument(
        "--disable-hybrid-kv-cache-manager", action="store_true",
        help="sliding layers keep the whole context, like full layers",
    )
    mistralrs = parser.add_argument_group("mistral.rs")
    mistralrs.add_argument(
        "--paged-attn", choices=("auto", "on", "off"), default="auto",
        help="PagedAttention (default auto: on for CUDA, off on Metal and the CPU)",
    )
    mistralrs.add_argument(
        "--pa-memory-fraction", type=float, default=0.9,
        help="share of total VRAM the PagedAttention pool fills, less what is in use after loading (default 0.9)",
    )
    mistralrs.add_argument(
        "--pa-context-len", type=int, default=None,
        help="a PagedAttention pool of exactly this many tokens, all sequences together (instead of the share)",
    )
    parser.add_argument_group("transformers.js").add_argument(
        "--browser-backend", choices=get_args(EngineSettings.model_fields["browser_backend"].annotation), default="auto",
        help="the device option: webgpu or wasm; auto: WebGPU where the browser has it (q8 on wasm), else wasm",
    )


SIZE_UNITS = {"b": 1, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
# 1 PiB, the most EngineSettings.kv_cache_memory_bytes takes; no accelerator holds nearly that.
MAX_SIZE_BYTES = 2**50


def _config_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("your own model")
    group.add_argument(
        "--config", action="append", metavar="PATH",
        help="a Hugging Face config.json to size beside Gemma 4 (repeatable, up to 3)",
    )
    group.add_argument("--name", action="append", help="a name for each --config model (default: its file name)")


def _size(text: str) -> int:
    """Bytes from '4563402752', '4.25GiB' or '4.5 GB', between 1 byte and MAX_SIZE_BYTES."""
    # Digits are capped so the arithmetic stays exact and small; a longer number is no size.
    match = re.fullmatch(r"\s*([-+]?)([0-9]{1,20})(?:\.([0-9]{1,20}))?\s*([a-zA-Z]*)\s*", text)
    unit = match.group(4).lower() if match else ""
    shown = repr(clipped(text))
    if not match or (unit and unit not in SIZE_UNITS):
        raise argparse.ArgumentTypeError(f"not a size: {shown} (use bytes, or a unit: {', '.join(SIZE_UNITS)})")
    sign, whole, fraction = match.group(1), match.group(2), match.group(3) or ""
    # Integer arithmetic: float() would round 20-digit sizes and overflow on long ones.
    size_bytes = int(whole + fraction) * SIZE_UNITS[unit or "b"] // 10 ** len(fraction)
    if sign == "-" or size_bytes < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 byte (got {shown})")
    if size_bytes > MAX_SIZE_BYTES:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_SIZE_BYTES:,} bytes (1 PiB) (got {shown})")
    return size_bytes


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m core", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    params = commands.add_parser("params", help="parameter counts by component")
    params.add_argument("--model", help="one variant (default: all four)")
    params.add_argument("--json", action="store_true", help="machine-readable output")
    _config_flags(params)
    estimate_parser = commands.add_parser("estimate", help="memory for one scenario")
    _scenario_flags(estimate_parser, matrix=False)
    _config_flags(estimate_parser)
    fit_parser = commands.add_parser("fit", help="every variant x weight format on a GPU")
    _scenario_flags(fit_parser, matrix=True)
    _config_flags(fit_parser)
    calibrate_parser = commands.add_parser(
        "calibrate", help="every observation in data/observations.csv against our prediction"
    )
    calibrate_parser.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def _device(catalog: Catalog, args: argparse.Namespace) -> tuple[Catalog, Accelerator | None]:
    """The device the flags name (a catalogue one, or one typed in), in a catalogue that has it."""
    typed = args.device_memory is not None
    if not typed and (args.device_kind or args.bandwidth_gbs is not None or args.device_architecture):
        raise UsageError("--device-kind, --bandwidth-gbs and --device-architecture describe --device-memory; give it")
    if typed and args.gpu:
        raise UsageError("--gpu and --device-memory both name a device: give one")
    if typed:
        try:
            device = TypedDevice(
                memory_bytes=args.device_memory,
                kind=args.device_kind or "nvidia",
                bandwidth_gbs=args.bandwidth_gbs,
                host_memory_bytes=args.host_memory,
                architecture=args.device_architecture.strip().lower() if args.device_architecture else None,
            )
        except ValidationError as error:
            first = error.errors()[0]
            field = str(first["loc"][-1]) if first["loc"] else ""
            flag = {"bandwidth_gbs": "--bandwidth-gbs", "architecture": "--device-architecture"}.get(field, "--device-memory")
            raise UsageError(f"{flag}: {first['msg'].lower()}") from None
        accelerator = typed_accelerator(device)
        return catalog.with_accelerators((accelerator,)), accelerator
    if not args.gpu:
        if args.host_memory is not None:
            raise UsageError("--host-memory belongs to a device: give --gpu or --device-memory")
        return catalog, None
    accelerator = catalog.accelerator(args.gpu)
    if args.host_memory is not None:
        accelerator = accelerator.model_copy(update={"host_memory_bytes": args.host_memory})
        catalog = catalog.with_accelerators((accelerator,))
    return catalog, accelerator


def _request(args: argparse.Namespace, catalog: Catalog, accelerator: Accelerator | None) -> MemoryRequest:
    if args.parallel is not None:
        if args.batch not in (1, args.parallel):
            raise UsageError(f"--parallel {args.parallel} and --batch {args.batch} disagree: both set the sequences")
        args.batch = args.parallel
    if args.engine:
        engine = engine_policy(args.engine).id
    elif accelerator is not None:
        running = runtimes_for(catalog, accelerator)
        if not running:
            raise UsageError(f"no runtime this planner models runs on {accelerator.name}")
        engine = running[0]
    else:
        engine = "transformers"
    first_format = (args.weights or "").split(",")[0].strip()
    weights = (
        format_for(catalog, engine, first_format, accelerator) if first_format else default_format(catalog, engine, accelerator)
    )
    kv_dtype = args.kv_dtype
    if kv_dtype and kv_dtype.strip().lower() in TURBOQUANT_NAMES:
        try:
            kv_dtype = turboquant_default(engine)
        except ValueError as error:
            raise UsageError(f"--kv-dtype {args.kv_dtype}: {error}") from None
    try:
        settings = EngineSettings(
            n_ubatch=args.n_ubatch,
            kv_unified=args.kv_unified,
            auto_slots=args.parallel is None,
            fit_target_mib=args.fit_target,
            flash_attention=not args.no_flash_attention,
            swa_full=args.swa_full,
            # Unset, each runtime takes its own default (vLLM 0.9, vllm-metal 0.92).
            **({} if args.gpu_memory_utilization is None else {"gpu_memory_utilization": args.gpu_memory_utilization}),
            kv_cache_memory_bytes=args.kv_cache_memory_bytes,
            max_num_batched_tokens=args.max_num_batched_tokens,
            max_num_seqs=args.max_num_seqs,
            block_size=args.block_size,
            async_scheduling=args.async_scheduling,
            disable_hybrid_kv_cache_manager=args.disable_hybrid_kv_cache_manager,
            paged_attention=args.paged_attn,
            pa_memory_fraction=args.pa_memory_fraction,
            pa_context_tokens=args.pa_context_len,
            browser_backend=args.browser_backend,
        )
        return MemoryRequest(
            # fit's matrix replaces model and format per cell; these only fill the request.
            model=args.model or "gemma-4-31b",
            weight_format=weights,
            kv_cache_dtype=kv_dtype or default_kv_cache(engine),
            engine=engine,
            context_tokens=8192 if args.context is None else args.context,
            runtime_context=args.context is None,
            text_only=args.text_only,
            concurrent_sequences=args.batch,
            images=args.images,
            image_tokens=args.image_tokens,
            audio_seconds=args.audio_seconds,
            thinking_tokens=args.thinking_tokens,
            ple_on_host=args.ple_on_host,
            gpu=accelerator.id if accelerator else None,
            gpus=args.gpus,
            engine_settings=settings,
        )
    except ValidationError as error:
        first = error.errors()[0]
        field = str(first["loc"][-1]) if first["loc"] else ""
        given = first.get("input")
        flag = getattr(args, "typed_flags", {}).get(field) or FLAGS.get(field, field)
        if field == "concurrent_sequences" and args.parallel is not None:
            flag = "--parallel"  # what the user typed; it stands in for --batch
        raise UsageError(f"{flag}: {first['msg'].lower()} (got {given!r})") from None


def _params_json(catalog: Catalog, model_id: str) -> dict[str, Any]:
    spec = catalog.model(model_id)
    params = count_parameters(spec.config)
    return {
        "model": model_id,
        "name": spec.display_name,
        "total": params.total,
        "text": params.text,
        "vision": params.vision,
        "audio": params.audio,
        "token_embedding": params.token_embedding,
        "per_layer_embedding": params.per_layer_embedding,
        "experts": params.experts,
        "active_per_token": params.active_per_token,
        "effective": params.effective,
    }


def _table(rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _print_params(catalog: Catalog, model_ids: Sequence[str], as_json: bool) -> None:
    figures = [_params_json(catalog, model_id) for model_id in model_ids]
    if as_json:
        print(json.dumps(figures[0] if len(figures) == 1 else figures, indent=2))
        return
    keys = [k for k in figures[0] if k not in ("model", "name")]
    # Names, not ids: an imported model's id (custom1-...) is internal; its name is the user's.
    rows = [["parameters", *[f["name"] for f in figures]]]
    rows += [[key, *[format_params(f[key]) for f in figures]] for key in keys]
    print(_table(rows, right=range(1, len(figures) + 1)))


def _fit_json(result: FitResult | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return result.model_dump(exclude={"total_bytes"})


def _estimate_json(result: MemoryEstimate, fitted: FitResult | None, launch: LaunchCommand) -> dict[str, Any]:
    return {
        "model": result.model,
        "engine": result.engine,
        "weight_format": result.weight_format,
        "kv_cache_dtype": result.kv_cache_dtype,
        "context_tokens": result.context_tokens,
        "context_source": result.context_source,
        "concurrent_sequences": result.concurrent_sequences,
        "sequence_tokens": result.sequence_tokens,
        "params": {"total": result.params.total, "active_per_token": result.params.active_per_token},
        "weights_bytes": result.weights_bytes,
        "host_bytes": result.host_bytes,
        "files_bytes": result.files_bytes,
        "weights": [w.model_dump() for w in result.weights],
        "kv_cache_bytes": result.kv_cache_bytes,
        "kv_cache": result.kv_cache.model_dump(),
        "activations_bytes": result.activations_bytes,
        "overhead_bytes": result.overhead_bytes,
        "total_bytes": result.total_bytes,
        "naive_kv_cache_bytes": result.naive_kv_cache_bytes,
        "naive_total_bytes": result.naive_total_bytes,
        "engine_report": result.engine_report,
        "fit": _fit_json(fitted),
        "launch_command": launch.model_dump(),
    }


def _size_row(label: str, size_bytes: int) -> list[str]:
    return [label, f"{gib(size_bytes):,.2f}", f"{gb(size_bytes):,.2f}"]


def _print_estimate(result: MemoryEstimate, fitted: FitResult | None, launch: LaunchCommand) -> None:
    kv = result.kv_cache
    print(
        f"{result.model} | {result.weight_format} weights | {result.kv_cache_dtype} KV cache | "
        f"{result.engine} | {result.gpus} GPU(s)"
    )
    print(
        f"{result.concurrent_sequences:,} sequence(s) x {result.sequence_tokens:,} tokens "
        f"({result.context_tokens:,} context + {result.media_tokens:,} media + "
        f"{result.sequence_tokens - result.context_tokens - result.media_tokens:,} thinking)"
    )
    if result.context_source != REQUESTED:
        print(f"context: {result.context_source}")
    print(f"files read from disk: {format_bytes(result.files_bytes)}\n")
    rows = [["component", "GiB", "GB"]]
    for w in result.weights:
        where = " [host]" if w.placement == "host" else ""
        rows.append(_size_row(f"weights: {w.component} ({format_params(w.params)} x {w.bits_per_weight:g} bit){where}", w.bytes))
    rows.append(_size_row("weights on accelerator", result.weights_bytes))
    rows.append(_size_row(
        f"KV cache, full attention ({kv.full_attention_layers} layers x {kv.full_attention_tokens:,} tokens)",
        kv.full_attention_bytes,
    ))
    rows.append(_size_row(
        f"KV cache, sliding attention ({kv.sliding_attention_layers} layers x {kv.sliding_attention_tokens:,} tokens)",
        kv.sliding_attention_bytes,
    ))
    if kv.shared_layers:
        rows.append([f"KV cache, {kv.shared_layers} KV-shared layers (read another layer's cache)", "0.00", "0.00"])
    rows.append(_size_row("activations (estimate)", result.activations_bytes))
    rows.append(_size_row(f"runtime overhead ({result.gpus} process(es))", result.overhead_bytes))
    rows.append(_size_row("TOTAL on accelerator(s)", result.total_bytes))
    print(_table(rows, right=(1, 2)))
    ratio = result.naive_kv_cache_bytes / max(result.kv_cache_bytes, 1)
    print(
        f"\nA naive calculator (every layer full attention, no KV sharing) would put the KV cache at "
        f"{format_bytes(result.naive_kv_cache_bytes)}: {ratio:.1f}x this estimate."
    )
    report = result.engine_report
    if report.get("log_lines"):
        print(f"\nWhat {result.engine} should print at start-up:")
        for line in report["log_lines"]:
            print(f"  {line}")
    if "host_prompt_cache_max_mib" in report:
        print(
            f"\nHost RAM llama-server may add as it runs: prompt cache up to {report['host_prompt_cache_max_mib']:,} MiB "
            f"(--cache-ram) and context checkpoints up to {report['context_checkpoints_max_mib']:,.0f} MiB "
            "(--ctx-checkpoints; 0 turns them off)"
        )
    if "download_bytes" in report:
        print(f"\nDownload (the files the page fetches): {format_bytes(report['download_bytes'])}")
    if report.get("browser_refusal"):
        print(f"Refused by the browser ({report['browser_limit']}): {report['browser_refusal']}")
    for note in report.get("notes", ()):
        print(f"\n{note}")
    if report.get("raise_wired_limit"):
        print(f"\nGPU wired limit: {format_bytes(report['wired_limit_bytes'])}; to raise it: {report['raise_wired_limit']}")
    if report.get("reserved_bytes"):
        print(f"vLLM will reserve {format_bytes(report['reserved_bytes'])} at start-up, whatever the workload.")
    if fitted is not None:
        room = (
            f"headroom {format_bytes(fitted.headroom_bytes)}"
            if fitted.fits
            else f"short by {format_bytes(fitted.shortfall_bytes)}"
        )
        print(
            f"\nOn {fitted.gpus} x {fitted.gpu}: usable {format_bytes(fitted.usable_bytes)}, "
            f"{room} -> {fitted.verdict.replace('_', ' ')}\n"
            f"On the GPU(s) alone: longest context that fits {fitted.max_context_tokens:,} tokens; most "
            f"concurrent sequences at this context {fitted.max_concurrent_sequences:,}"
        )
        if fitted.offload is not None:
            offload = fitted.offload
            print(
                f"Offload ({offload.method}, {offload.flags}): {offload.gpu_layers} of {offload.total_layers} layers "
                f"on the GPU{f', experts of {offload.cpu_moe_layers} layers in host memory' if offload.cpu_moe_layers else ''}; "
                f"GPU {format_bytes(offload.device_bytes)}, host {format_bytes(offload.host_bytes)} of "
                f"{format_bytes(fitted.host_usable_bytes)} usable; each generated token reads "
                f"{format_bytes(offload.host_read_bytes_per_token)} from host memory"
            )
        if fitted.engine_error:
            print(f"{result.engine} would not start: {fitted.engine_error}")
    print(f"\nLaunch command ({launch.runtime}, {launch.language}):")
    for line in launch.command.splitlines():
        print(f"  {line}")
    for note in launch.notes:
        print(f"  # {note}")


def _print_fit(rows: list[Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps([row.model_dump() for row in rows], indent=2))
        return
    table = [["runtime", "model", "weights", "verdict", "total GiB", "headroom GiB", "short GiB", "max context", "max sequences", "offload"]]
    for row in rows:
        table.append([
            row.engine,
            row.model,
            row.weight_format,
            row.verdict.replace("_", " "),
            f"{gib(row.total_bytes):,.2f}",
            f"{gib(row.headroom_bytes):,.2f}",
            f"{gib(row.shortfall_bytes):,.2f}",
            f"{row.max_context_tokens:,}",
            f"{row.max_concurrent_sequences:,}",
            row.offload.flags if row.offload else "",
        ])
    print(_table(table, right=(4, 5, 6, 7, 8)))


def _print_refused(cells: list[RefusedCell]) -> None:
    """The variants a runtime offers on the device but refuses here, one line each with why."""
    if not cells:
        return
    print("\nrefused here:")
    for cell in cells:
        print(f"  {cell.engine} {cell.model} {cell.weight_format}: {_one_line(cell.reason)}")


def _print_calibration(rows: list[CalibrationRow], as_json: bool) -> None:
    if as_json:
        print(json.dumps([row.model_dump() for row in rows], indent=2))
        return
    table = [["observation", "unit", "observed", "predicted", "difference", "tolerance", "result"]]
    for row in rows:
        table.append([
            row.id + (" (measured here)" if row.measured_here else ""),
            row.unit,
            f"{row.observed:,.6g}",
            f"{row.predicted:,.6g}",
            f"{row.difference:+,.4g}",
            f"{row.tolerance:,.4g}",
            "ok" if row.within_tolerance else "OUT OF TOLERANCE",
        ])
    print(_table(table, right=(2, 3, 4, 5)))
    failed = sum(not row.within_tolerance for row in rows)
    print(f"\n{len(rows) - failed} of {len(rows)} observations within tolerance")


def _with_configs(catalog: Catalog, args: argparse.Namespace) -> tuple[Catalog, list[str]]:
    """The catalogue plus every --config model (warnings on stderr), and their ids."""
    paths = getattr(args, "config", None) or []
    names = getattr(args, "name", None) or []
    if len(names) > len(paths):
        raise UsageError("--name names a --config model: give one --config per --name")
    if not paths:
        return catalog, []
    # Imported only for --config: the importer is a large module that other runs never use.
    from core.hf_import import MAX_IMPORTED_MODELS, ConfigImportError, load_config_file, model_spec

    if len(paths) > MAX_IMPORTED_MODELS:
        raise UsageError(f"at most {MAX_IMPORTED_MODELS} --config models at once")
    specs = []
    for slot, path in enumerate(paths, start=1):
        try:
            imported = load_config_file(Path(path))
            name = names[slot - 1] if slot <= len(names) else _default_name(Path(path))
            spec = model_spec(imported, name, slot)
        except ConfigImportError as error:
            raise UsageError(str(error)) from None
        for line in (*imported.warnings, *imported.defaults):
            print(f"note: {path}: {_one_line(line)}", file=sys.stderr)
        specs.append(spec)
    shown = [spec.display_name.lower() for spec in specs]
    if len(set(shown)) < len(shown):
        raise UsageError("two --config models have the same name; tell them apart with --name")
    return catalog.with_models(tuple(specs)), [spec.id for spec in specs]


def _default_name(path: Path) -> str:
    """The file's name, or its folder's for a plain config.json (a downloaded repository)."""
    from core.hf_import import ConfigImportError, check_name

    stem = path.parent.name if path.stem == "config" and path.parent.name else path.stem
    try:
        return check_name(stem[:48])
    except ConfigImportError:
        return "imported model"


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    catalog, imported_ids = _with_configs(load_catalog(), args)
    if args.command == "estimate" and args.model is None:
        if not imported_ids:
            raise UsageError("estimate needs --model (e2b, e4b, 26b-a4b, 31b) or --config PATH")
        args.model = imported_ids[0]
    if args.command == "calibrate":
        # Imported here: the other commands never need it, and its imports cost them start-up time.
        from core.calibrate import calibrate

        rows = calibrate(catalog)
        _print_calibration(rows, args.json)
        return 0 if all(row.within_tolerance for row in rows) else 1
    if args.command == "params":
        ids = [catalog.model(args.model).id] if args.model else [m.id for m in catalog.models]
        _print_params(catalog, ids, args.json)
        return 0
    catalog, accelerator = _device(catalog, args)
    request = _request(args, catalog, accelerator)
    if args.command == "estimate":
        result = estimate(request, catalog)
        fitted = fit(request, catalog) if request.gpu else None
        launch = launch_command(request, result, catalog, fitted)
        if args.json:
            print(json.dumps(_estimate_json(result, fitted, launch), indent=2))
        else:
            _print_estimate(result, fitted, launch)
        return 0
    if accelerator is None:
        raise UsageError("fit needs a device: --gpu (e.g. --gpu h100, --gpu rpi5-8gb) or --device-memory")
    models = [catalog.model(args.model).id] if args.model else [m.id for m in catalog.models]
    engines = [request.engine] if args.engine else runtimes_for(catalog, accelerator)
    names = [name.strip() for name in args.weights.split(",")] if args.weights else []
    for name in names:
        catalog.weight_format(name)  # an unknown name is an error, not an empty table

    def wanted(row: FitRow | RefusedCell) -> bool:
        return not names or any(row.weight_format == format_for(catalog, row.engine, name, accelerator) for name in names)

    rows = [row for row in fit_matrix(request, catalog, engines) if row.model in models and wanted(row)]
    if not rows:
        # Nothing could be fitted: say why for the first requested cell (this raises).
        fit(request.model_copy(update={"model": models[0]}), catalog)
        raise UsageError("no variant x weight format can run with these settings")
    _print_fit(rows, args.json)
    if not args.json:
        refused = [cell for cell in refused_cells(request, catalog, engines) if cell.model in models and wanted(cell)]
        _print_refused(refused)
    return 0


def _one_line(message: object) -> str:
    """The message on one printable line: control characters (newlines included) escaped."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(message))


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(argv)
    except (UsageError, UnknownChoiceError, PlanningError, FileReadError) as error:
        print(f"error: {_one_line(error)}", file=sys.stderr)
        return 2
    except CatalogError as error:
        print(f"catalogue error: {_one_line(error)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
