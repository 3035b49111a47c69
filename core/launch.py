"""The command that starts a plan in its runtime: flags from each runtime's own CLI, values from the plan."""

from __future__ import annotations

import math
import re
import shlex
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.catalog import PHONE_KINDS, Catalog, _data_dir, _read_csv
from core.engines.base import EngineSettings
from core.engines.registry import engine_policy
from core.engines.vllm import VllmPolicy
from core.engines.vllm_metal import VllmMetalPolicy
from core.engines.llama_cpp import AUTO_SLOTS, GGML_TYPE_NAMES, LlamaCppPolicy
from core.estimate import REQUESTED, MemoryEstimate, MemoryRequest, PlanningError
from core.fit import FitResult
from core.kv_cache import MLX_TURBOQUANT
from core.runtimes import default_kv_cache, refusal
from core.units import BYTES_PER_GIB

# Every flag below was read in the runtime's own argument parser; docs/launch.md names the file
# and commit for each. The tests hold the same lists, transcribed separately, so a typo fails.
LAUNCH_REPOS_FILE = "launch_repos.csv"
# Runtime defaults: a setting equal to one is not written (vLLM's CUDA block size; llama-server's
# -ub and --fit-target, common/arg.cpp). --max-num-batched-tokens is always written: vLLM's own
# default depends on the GPU and usage context, and the plan sizes the profiling run with it.
VLLM_DEFAULT_BLOCK_SIZE = 16
LLAMA_DEFAULT_UBATCH = 512
LLAMA_DEFAULT_FIT_TARGET_MIB = 1024
# transformers' quantisation configs for formats it quantises itself at load time.
TRANSFORMERS_QUANTISE_ON_LOAD = {
    "bnb-nf4": (
        "BitsAndBytesConfig",
        'BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)',
    ),
    "int8": ("BitsAndBytesConfig", "BitsAndBytesConfig(load_in_8bit=True)"),
    "fp8": ("FineGrainedFP8Config", "FineGrainedFP8Config()"),
}
# core.hf_import names an uploaded config's model "uploaded/<id>": not a repository to download.
IMPORTED_REPO_PREFIX = "uploaded/"
# LiteRT-LM's backend for each .litertlm file: the chip-specific files are compiled for an NPU,
# the others run on the CPU (the CLI's default) or --backend=gpu.
LITERT_BACKENDS = {
    "litertlm-web": "gpu",
    "litertlm-tensor-g5": "npu",
    "litertlm-sm8750": "npu",
    "litertlm-qcs8275": "npu",
    "litertlm-intel-lnl": "npu",
    "litertlm-intel-ptl": "npu",
}
LITERT_BACKEND_NOTES = {
    "cpu": "the CLI's default (XNNPACK); --backend=gpu runs the GPU path, which may keep two KV banks",
    "gpu": "the web file runs on the GPU (WebGPU)",
    "npu": "this file is compiled for the chip's NPU",
}
# transformers.js's `dtype` option for each ONNX format (TJS utils/dtypes.js@5ed4c5c: the file
# suffix follows from it: _q4f16, _q4, _fp16, _quantized).
TJS_DTYPES = {"onnx-q4f16": "q4f16", "onnx-q4": "q4", "onnx-fp16": "fp16", "onnx-q8": "q8"}
# ONNX Runtime GenAI's example chat script (examples/python/model-chat.py and common.py @a0c04eb1):
# -m the model folder, -e the execution provider, -l "Max number of tokens to generate including
# the prompt", written into search.max_length.
ORT_GENAI_SCRIPT = "model-chat.py"
# -e choices (common.py all_eps @a0c04eb1): "cuda" and "cpu" by their GenAI names, WebGPU by its
# ONNX Runtime name; DirectML is not among them, so the folder's own genai_config decides.
ORT_GENAI_EP_FLAGS = {"cuda": "cuda", "cpu": "cpu", "webgpu": "WebGpuExecutionProvider", "dml": "follow_config"}
# vLLM quantises a BF16 checkpoint itself at load time for these formats (--quantization).
VLLM_QUANTISE_ON_LOAD = {"fp8": "fp8", "bnb-nf4": "bitsandbytes"}
# mistral.rs's own defaults (mistralrs-cli/src/args/mod.rs @9e92262; docs/.../cli/serve.md):
# --max-seqs 32, --pa-memory-fraction unset = Utilization(0.9).
MISTRALRS_DEFAULT_MAX_SEQS = 32
MISTRALRS_DEFAULT_PA_FRACTION = EngineSettings().pa_memory_fraction
MISTRALRS_INSTALL = (
    "curl --proto '=https' --tlsv1.2 -sSf https://raw.githubusercontent.com/EricLBuehler/mistral.rs/master/install.sh | sh"
)


# llama.cpp's float cache types; every other -ctk/-ctv type is quantised.
FLOAT_KV_TYPES = frozenset({"f32", "f16", "bf16"})

class LaunchCommand(BaseModel):
    """How to start one plan: a shell command (or a Python snippet) and why each flag is there."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    runtime: str
    command: str = Field(min_length=1)
    language: Literal["bash", "python", "javascript"]
    notes: tuple[str, ...] = Field(description="one line per non-obvious flag or assumption")


class LaunchRepo(BaseModel):
    """One row of data/launch_repos.csv: where a runtime downloads a format of a model from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    runtime: str = Field(min_length=1)
    weight_format: str = Field(min_length=1)
    model: str = Field(min_length=1)
    repo: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")
    tag: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]+$")
    source: str = Field(min_length=1)


@lru_cache(maxsize=8)
def _load_repos(path: Path) -> dict[tuple[str, str, str], LaunchRepo]:
    rows = _read_csv(path, LaunchRepo)
    return {(row.runtime, row.weight_format, row.model): row for row in rows}


def launch_repos(data_dir: Path | None = None) -> dict[tuple[str, str, str], LaunchRepo]:
    """(runtime, format, model) -> repository, from data/launch_repos.csv (raises CatalogError
    naming the file, row and field when it is malformed)."""
    return _load_repos(_data_dir(data_dir) / LAUNCH_REPOS_FILE)


def launch_refusal(request: MemoryRequest, catalog: Catalog) -> str | None:
    """One line saying why the request's runtime cannot run its format on its device; None
    when it can. The words are core.runtimes.refusal's, as everywhere else."""
    try:
        engine = engine_policy(request.engine).id
        weight_format = catalog.weight_format(request.weight_format)
        accelerator = catalog.accelerator(request.gpu) if request.gpu else None
    except ValueError as error:
        return str(error)
    return refusal(catalog, engine, weight_format, accelerator)


def launch_command(
    request: MemoryRequest, result: MemoryEstimate, catalog: Catalog, fit: FitResult | None = None
) -> LaunchCommand:
    """The command that starts `result`'s plan in its runtime. Raises PlanningError with one
    line when the runtime cannot run it."""
    reason = launch_refusal(request.model_copy(update={"engine": result.engine, "weight_format": result.weight_format}), catalog)
    if reason:
        raise PlanningError(reason)
    plan = _Plan(request, result, catalog, fit)
    build = {
        "vllm": _vllm,
        "llama.cpp": _llama_server,
        "ollama": _ollama,
        "mlx": _mlx,
        "transformers": _transformers,
        "litert-lm": _litert_lm,
        "vllm-metal": _vllm_metal,
        "transformers.js": _transformers_js,
        "onnxruntime-genai": _ort_genai,
        "mistral.rs": _mistralrs,
    }[result.engine]
    command, language, notes = build(plan)
    if fit is not None and fit.verdict == "does_not_fit":
        notes.append(
            f"This plan does not fit on {fit.gpus} x {fit.gpu} (short by {fit.shortfall_bytes / BYTES_PER_GIB:,.2f} GiB): "
            "the command is what the plan would run, and it will fail to start or run out of memory"
        )
    return LaunchCommand(runtime=result.engine, command=command, language=language, notes=tuple(notes))


class _Plan:
    """What every builder reads: the request, its estimate, fit and the repositories."""

    def __init__(self, request: MemoryRequest, result: MemoryEstimate, catalog: Catalog, fit: FitResult | None):
        self.request = request
        self.result = result
        self.fit = fit
        self.settings: EngineSettings = request.engine_settings
        self.model = catalog.model(result.model)
        self.weight_format = catalog.weight_format(result.weight_format)
        self.accelerator = catalog.accelerator(request.gpu) if request.gpu else None
        self.repos = launch_repos()
        imported = self.model.hf_repo_id.startswith(IMPORTED_REPO_PREFIX)
        # An imported config names no repository: the command says where the user's goes.
        self.hf_repo_id = (
            _placeholder(f"the Hugging Face repository of {self.model.display_name}") if imported else self.model.hf_repo_id
        )

    def repo(self) -> LaunchRepo | None:
        return self.repos.get((self.result.engine, self.weight_format.id, self.model.id))

    @property
    def tokens(self) -> int:
        """Tokens one sequence holds: context, media and thinking (what a context limit must admit)."""
        return self.result.sequence_tokens

    @property
    def sequences(self) -> int:
        return self.result.concurrent_sequences

    @property
    def sequence_cap(self) -> int:
        """vLLM's --max-num-seqs: the cap the user set, else the planned sequences (the plan's
        profiling run samples as many: core.estimate.runtime_request)."""
        return self.settings.max_num_seqs or self.sequences

    def offload_flags(self, method: str) -> str | None:
        offload = self.fit.offload if self.fit is not None else None
        return offload.flags if offload is not None and offload.method == method else None


def _sequence_cap_note(plan: _Plan) -> str:
    if plan.settings.max_num_seqs:
        return f"--max-num-seqs {plan.sequence_cap}: the cap you set (the plan's profiling run samples as many)"
    return (
        f"--max-num-seqs {plan.sequence_cap}: the concurrent sequences planned; the profiling run samples "
        "as many, as the plan does (left out, vLLM's default cap for the device: 1,024 or 256)"
    )


def _placeholder(what: str) -> str:
    return f"<{what}>"


def _repo_or_placeholder(plan: _Plan, notes: list[str], what: str, missing: str, why_missing: str) -> str:
    """The repository (or tag) on file for the plan's runtime, format and model, noted with its
    source; else a named placeholder, noted as one."""
    row = plan.repo()
    if row is not None:
        notes.append(f"{row.repo}: {what} ({row.source})")
        return row.repo
    placeholder = _placeholder(missing)
    notes.append(f"{placeholder} is a placeholder: {why_missing}")
    return placeholder


def _checkpoint(plan: _Plan, notes: list[str], quantises_on_load: bool, missing: str) -> str:
    """The safetensors repository vLLM or transformers loads: the format's published checkpoint,
    the model's own BF16 one (which the runtime quantises itself where it can), or a placeholder
    saying `missing`; the note says which."""
    row = plan.repo()
    if row is not None:
        notes.append(f"{row.repo}: the {plan.weight_format.display_name} checkpoint ({row.source})")
        return row.repo
    if plan.weight_format.id in ("bf16", "fp16") or quantises_on_load:
        notes.append(f"{plan.hf_repo_id}: the model's own BF16 checkpoint from Hugging Face")
        return plan.hf_repo_id
    repo = _placeholder(f"a {plan.weight_format.display_name} checkpoint of {plan.hf_repo_id}")
    notes.append(f"{repo} is a placeholder: {missing}")
    return repo


def _vllm(plan: _Plan) -> tuple[str, Literal["bash"], list[str]]:
    result, settings = plan.result, plan.settings
    notes: list[str] = []
    quantise = VLLM_QUANTISE_ON_LOAD.get(plan.weight_format.id)
    repo = _checkpoint(
        plan, notes, bool(quantise),
        f"no published {plan.weight_format.display_name} checkpoint of {plan.model.display_name} is on file; "
        "put the repository you use there",
    )
    args = ["vllm", "serve", repo]
    args += ["--max-model-len", str(plan.tokens)]
    notes.append(
        f"--max-model-len {plan.tokens:,}: the tokens one request holds (context "
        f"{result.context_tokens:,}, media {result.media_tokens:,}, thinking "
        f"{plan.tokens - result.context_tokens - result.media_tokens:,})"
    )
    args += ["--max-num-seqs", str(plan.sequence_cap)]
    notes.append(_sequence_cap_note(plan))
    args += ["--tensor-parallel-size", str(result.gpus)]
    args += ["--gpu-memory-utilization", f"{settings.gpu_memory_utilization:g}"]
    notes.append(
        f"--gpu-memory-utilization {settings.gpu_memory_utilization:g}: vLLM claims this share of every "
        "GPU at start-up whatever the load; the plan's usable memory is that share"
    )
    # Written always, like --gpu-memory-utilization: vLLM picks its own default from the GPU it
    # detects and the release it is (8,192 or 2,048 today, other values in older releases), so
    # the flag makes the server take the step the plan sized its profiling run and windows with.
    step = VllmPolicy.step_tokens(VllmPolicy().device_settings(settings, plan.accelerator))
    args += ["--max-num-batched-tokens", str(step)]
    chosen = "as set" if settings.max_num_batched_tokens is not None else "vLLM's own default for this GPU"
    notes.append(
        f"--max-num-batched-tokens {step:,} ({chosen}): the step size the plan sizes the profiling run and "
        "the sliding-window blocks with (vLLM serve's default: 8,192 on a GPU of 70 GiB or more other than "
        "an A100, else 2,048)"
    )
    if settings.block_size != VLLM_DEFAULT_BLOCK_SIZE:
        args += ["--block-size", str(settings.block_size)]
    if settings.kv_cache_memory_bytes is not None:
        args += ["--kv-cache-memory-bytes", str(settings.kv_cache_memory_bytes)]
        notes.append("--kv-cache-memory-bytes: a fixed KV pool per GPU instead of what is left of the claimed share")
    if not settings.async_scheduling:
        args.append("--no-async-scheduling")
    if settings.disable_hybrid_kv_cache_manager:
        args.append("--disable-hybrid-kv-cache-manager")
    if result.kv_cache_dtype != default_kv_cache("vllm"):
        args += ["--kv-cache-dtype", result.kv_cache_dtype]
    if plan.weight_format.id == "fp16":
        args += ["--dtype", "float16"]
    if quantise and plan.repo() is None:
        args += ["--quantization", quantise]
        notes.append(f"--quantization {quantise}: vLLM quantises the BF16 checkpoint as it loads it")
    offload = plan.offload_flags("vLLM --cpu-offload-gb")
    if offload:
        args += shlex.split(offload)
        notes.append(
            f"{offload}: GiB of weights per GPU kept in host memory and copied to the GPU every step "
            "(slower decoding; the plan's offload)"
        )
    if plan.request.text_only:
        args.append("--language-model-only")
        notes.append(
            "--language-model-only: no vision/audio towers (every modality limit 0); the plan still "
            "counts the encoders, so the memory shown is an upper bound"
        )
    return shlex.join(args), "bash", notes


def _llama_server(plan: _Plan) -> tuple[str, Literal["bash"], list[str]]:
    result, settings = plan.result, plan.settings
    notes: list[str] = []
    row = plan.repo()
    ftype = plan.weight_format.gguf_ftype
    if row is not None:
        source = f"{row.repo}:{row.tag}" if row.tag else row.repo
        notes.append(f"-hf {source}: downloads the {row.tag or 'GGUF'} file from Hugging Face ({row.source})")
    else:
        source = _placeholder(f"a GGUF repository with a {ftype or plan.weight_format.display_name} file of {plan.hf_repo_id}")
        notes.append(f"{source} is a placeholder: no repository for this file is on file; name yours (user/repo:QUANT)")
    args = ["llama-server", "-hf", source]
    context = plan.tokens * plan.sequences
    args += ["-c", str(context)]
    slots, unified = LlamaCppPolicy.slots(settings, plan.sequences)
    if settings.auto_slots and plan.sequences <= AUTO_SLOTS:
        notes.append(
            f"-c {context:,} = {plan.tokens:,} tokens x {plan.sequences} sequence(s): -np is left at auto, "
            f"{AUTO_SLOTS} slots sharing one pool of -c cells (llama.cpp pads it to a multiple of 256)"
        )
    else:
        args += ["-np", str(slots)]
        notes.append(f"-c {context:,} = {plan.tokens:,} tokens x {slots} slots (-np): each slot gets -c / -np cells")
        if unified:
            args.append("-kvu")
    if result.kv_cache_dtype != default_kv_cache("llama.cpp"):
        kv = GGML_TYPE_NAMES.get(result.kv_cache_dtype, result.kv_cache_dtype)
        args += ["-ctk", kv, "-ctv", kv]
        # Every type but the float ones is quantised (q8_0 ... iq4_nl); llama.cpp refuses a quantised V without FA.
        needs = " (a quantised V cache needs flash attention: -fa on)" if kv not in FLOAT_KV_TYPES else ""
        notes.append(f"-ctk/-ctv {kv}: the planned KV cache type (llama-server's default is f16){needs}")
    args += ["-fa", "on" if settings.flash_attention else "off"]
    if settings.n_ubatch != LLAMA_DEFAULT_UBATCH:
        args += ["-ub", str(settings.n_ubatch)]
    if settings.swa_full:
        args.append("--swa-full")
    if settings.fit_target_mib != LLAMA_DEFAULT_FIT_TARGET_MIB:
        args += ["-fitt", str(settings.fit_target_mib)]
    offload = plan.offload_flags("llama.cpp --fit")
    if offload:
        args += shlex.split(offload)
        notes.append(
            f"{offload}: the placement llama-server's --fit (on by default) computes for this GPU; "
            "written out so it does not change with the build (--fit leaves placement alone once it is set)"
        )
    else:
        notes.append("--fit is on by default: it keeps 1,024 MiB free per GPU and moves layers to the CPU only if needed")
    if plan.accelerator is not None and plan.accelerator.kind in PHONE_KINDS:
        notes.append(
            "On a phone llama.cpp runs inside an app (llama.cpp's examples/llama.android and "
            "examples/llama.swiftui, or an app built on them) rather than as llama-server: give the app "
            "the same context, KV type and flash-attention settings"
        )
    if plan.request.text_only:
        args.append("--no-mmproj")
        notes.append("--no-mmproj: -hf would also download the vision/audio projector; text only skips it")
    return shlex.join(args), "bash", notes


def _ollama(plan: _Plan) -> tuple[str, Literal["bash"], list[str]]:
    result, settings = plan.result, plan.settings
    notes: list[str] = []
    tag = _repo_or_placeholder(
        plan, notes, "Ollama's library tag",
        f"an Ollama tag with {plan.weight_format.display_name} weights of {plan.model.display_name}",
        "no library tag for this file is on file",
    )  # fmt: skip
    env: list[str] = []
    if result.context_source == REQUESTED:
        env.append(f"OLLAMA_CONTEXT_LENGTH={plan.tokens}")
        notes.append(
            f"OLLAMA_CONTEXT_LENGTH={plan.tokens}: num_ctx for every request (a request's own num_ctx "
            "option overrides it)"
        )
    else:
        notes.append(f"No context set: Ollama picks {plan.tokens:,} tokens itself ({result.context_source})")
    if plan.sequences != 1:
        env.append(f"OLLAMA_NUM_PARALLEL={plan.sequences}")
        notes.append(
            f"OLLAMA_NUM_PARALLEL={plan.sequences}: {plan.sequences} requests at once, each with its own "
            "cache of num_ctx tokens"
        )
    if result.kv_cache_dtype != default_kv_cache("ollama"):
        kv = GGML_TYPE_NAMES.get(result.kv_cache_dtype, result.kv_cache_dtype)
        env.append(f"OLLAMA_KV_CACHE_TYPE={kv}")
        notes.append(f"OLLAMA_KV_CACHE_TYPE={kv}: quantised KV cache for every model this server loads")
    if not settings.flash_attention:
        env.append("OLLAMA_FLASH_ATTENTION=0")
    elif result.kv_cache_dtype != default_kv_cache("ollama"):
        env.append("OLLAMA_FLASH_ATTENTION=1")
        notes.append("OLLAMA_FLASH_ATTENTION=1: a quantised V cache needs flash attention")
    serve = " ".join([*env, "ollama", "serve"])
    command = f"{serve} &\nollama run {shlex.quote(tag)}"
    notes.append("The settings are the server's: they apply once `ollama serve` restarts with them")
    return command, "bash", notes


def _mlx(plan: _Plan) -> tuple[str, Literal["bash"], list[str]]:
    result = plan.result
    notes: list[str] = []
    repo = _repo_or_placeholder(
        plan, notes, f"the {plan.weight_format.display_name} conversion",
        f"a {plan.weight_format.display_name} conversion of {plan.hf_repo_id}",
        "no MLX repository for this format is on file",
    )  # fmt: skip
    turboquant = MLX_TURBOQUANT.get(result.kv_cache_dtype)
    # TurboQuant is mlx-vlm's: a text-only plan with it still starts mlx_vlm.server.
    text_only = plan.request.text_only and turboquant is None
    program = "mlx_lm.server" if text_only else "mlx_vlm.server"
    args = [program, "--model", repo]
    if turboquant is not None:
        bits = (turboquant.key_bits + turboquant.value_bits) / 2
        args += ["--kv-bits", f"{bits:g}", "--kv-quant-scheme", "turboquant"]
        notes.append(
            f"--kv-bits {bits:g} --kv-quant-scheme turboquant: {turboquant.key_bits}-bit keys, "
            f"{turboquant.value_bits}-bit values in the full-attention layers but the last; sliding layers "
            "stay bf16 (mlx_vlm/server/cli.py, mlx_vlm/generate/common.py@9b13f52)"
        )
    if text_only:
        notes.append("mlx_lm.server: the text model only (mlx_lm/models/gemma4.py), no vision/audio encoders")
        if plan.sequences > 1:
            args += ["--decode-concurrency", str(plan.sequences)]
    elif plan.sequences > 1:
        args += ["--max-num-seqs", str(plan.sequences)]
    notes.append(
        f"No context flag: MLX grows the cache as the conversation does; the plan sizes "
        f"{plan.tokens:,} tokens per sequence (--max-kv-size is ignored by Gemma 4's own cache)"
    )
    report = result.engine_report
    if plan.fit is not None and plan.fit.verdict != "fits" and report.get("raise_wired_limit"):
        notes.append(f"macOS caps GPU memory below the RAM; to raise it: {report['raise_wired_limit']}")
    return shlex.join(args), "bash", notes


def _litert_lm(plan: _Plan) -> tuple[str, Literal["bash"], list[str]]:
    """`litert-lm run` (python/litert_lm_cli/commands/run.py@dc48681, common.py@a76a162)."""
    notes: list[str] = []
    row = plan.repo()
    args = ["litert-lm", "run"]
    if row is not None and row.tag:
        args += [f"--from-huggingface-repo={row.repo}", row.tag]
        notes.append(f"{row.repo}, file {row.tag}: the {plan.weight_format.display_name} ({row.source})")
    else:
        args.append(_placeholder(f"a {plan.weight_format.display_name} file of {plan.model.display_name}"))
        notes.append("The file is a placeholder: no .litertlm of this model for this target is on file")
    backend = LITERT_BACKENDS.get(plan.weight_format.id, "cpu")
    args.append(f"--backend={backend}")
    notes.append(
        f"--backend={backend}: {LITERT_BACKEND_NOTES[backend]}"
    )
    args.append(f"--max-num-tokens={plan.tokens}")
    notes.append(
        f"--max-num-tokens={plan.tokens:,}: the KV cache is allocated to it at start-up; without it the "
        "engine takes the file's own max_num_tokens, else 4,096 above a short prompt (engine_settings.cc)"
    )
    if plan.sequences > 1:
        notes.append(
            f"One conversation per engine: {plan.sequences} sequences are {plan.sequences} engines (or sessions), "
            "each with its own cache, as the plan counts them"
        )
    if plan.request.text_only:
        notes.append("No --vision-backend/--audio-backend: the encoders stay on disk (text only)")
    else:
        notes.append("Images and audio need --vision-backend and --audio-backend (cpu or gpu) and --attachment")
    return shlex.join(args), "bash", notes


def _vllm_metal(plan: _Plan) -> tuple[str, Literal["bash"], list[str]]:
    """`vllm serve` with the vllm-metal plugin (vLLM 0.27.1's flags; README and
    v1/cache_policy.py @211a1e4, docs/research/mistralrs-vllm-metal.md §2.3)."""
    result = plan.result
    notes: list[str] = [
        "Install first: curl -fsSL https://raw.githubusercontent.com/vllm-project/vllm-metal/main/install.sh | bash "
        "(creates ~/.venv-vllm-metal with vLLM 0.27.1 and the plugin), then source ~/.venv-vllm-metal/bin/activate"
    ]
    repo = _repo_or_placeholder(
        plan, notes, f"the {plan.weight_format.display_name} conversion, read through mlx-lm",
        f"a {plan.weight_format.display_name} MLX conversion of {plan.hf_repo_id}",
        "no MLX repository for this format is on file",
    )  # fmt: skip
    args = ["vllm", "serve", repo, "--max-model-len", str(plan.tokens)]
    notes.append(f"--max-model-len {plan.tokens:,}: the tokens one request holds")
    args += ["--max-num-seqs", str(plan.sequence_cap)]
    notes.append(_sequence_cap_note(plan))
    # Written only when the plan's step is not the one vllm-metal picks itself: it pins vLLM
    # 0.27.1, whose default the plan computes from the Mac's RAM as vLLM does
    # (VllmMetalPolicy.device_memory), so a default step needs no flag.
    policy = VllmMetalPolicy()
    step = VllmPolicy.step_tokens(policy.device_settings(plan.settings, plan.accelerator))
    if step != VllmPolicy.step_tokens(policy.device_settings(EngineSettings(), plan.accelerator)):
        args += ["--max-num-batched-tokens", str(step)]
        notes.append(f"--max-num-batched-tokens {step:,}: the step size the plan sizes the profiling run with")
    utilization = policy.utilization(plan.settings)
    args += ["--gpu-memory-utilization", f"{utilization:g}"]
    notes.append(
        f"--gpu-memory-utilization {utilization:g}: the share of Metal's working-set limit vllm-metal claims "
        "(the KV pool is that share less the weights and the profiling run); written out because vLLM "
        "0.27.1's default (0.92 as vllm-metal quotes it) is unverified"
    )
    notes.append(
        "Text only: vllm-metal loads Gemma 4 through mlx-lm (no vision/audio towers); "
        "VLLM_METAL_MEMORY_FRACTION=<f> is the environment alternative to --gpu-memory-utilization"
    )
    if result.engine_report.get("kv_layout") == "yoco_full_length":
        notes.append("E2B/E4B: every cache-owning layer is charged the full length (the pool is not windowed)")
    return shlex.join(args), "bash", notes


def _transformers(plan: _Plan) -> tuple[str, Literal["python"], list[str]]:
    result = plan.result
    notes: list[str] = []
    quantise = TRANSFORMERS_QUANTISE_ON_LOAD.get(plan.weight_format.id)
    repo = _checkpoint(plan, notes, bool(quantise), "no such checkpoint is on file; its quantisation config comes with it")
    text_only = plan.request.text_only
    model_class = "Gemma4ForCausalLM" if text_only else "AutoModelForImageTextToText"
    imports = ["AutoProcessor", model_class]
    dtype = "torch.float16" if plan.weight_format.id == "fp16" else "torch.bfloat16"
    kwargs = [f"dtype={dtype}", 'device_map="auto"']
    if quantise and plan.repo() is None:
        config_class, config = quantise
        imports.append(config_class)
        kwargs.append(f"quantization_config={config}")
        notes.append(f"{config_class}: transformers quantises the BF16 weights as it loads them")
    offload = plan.offload_flags("accelerate device_map")
    if offload:
        match = re.search(r'"(\d+)MiB"', offload)
        per_gpu_mib = int(match.group(1)) if match else 0
        host_gib = max(1, math.floor((plan.fit.host_usable_bytes if plan.fit else 0) / BYTES_PER_GIB))
        budget = ", ".join(f'{gpu}: "{per_gpu_mib}MiB"' for gpu in range(result.gpus))
        kwargs.append(f'max_memory={{{budget}, "cpu": "{host_gib}GiB"}}')
        notes.append(
            f"max_memory: {per_gpu_mib:,} MiB of weights per GPU (accelerate budgets weights only; the "
            f"cache and activations come on top), the rest in host memory ({host_gib} GiB usable), "
            "copied to the GPU every step"
        )
    if text_only:
        notes.append(
            "Gemma4ForCausalLM: the text decoder alone (AutoModelForCausalLM maps gemma4 to "
            "Gemma4ForConditionalGeneration, which builds the encoders too)"
        )
    else:
        notes.append("AutoModelForImageTextToText: Gemma 4's multimodal class, Gemma4ForConditionalGeneration")
    lines = [
        "import torch",
        f"from transformers import {', '.join(imports)}",
        "",
        f'processor = AutoProcessor.from_pretrained("{repo}")',
        f"model = {model_class}.from_pretrained(",
        f'    "{repo}",',
        *[f"    {kwarg}," for kwarg in kwargs],
        ")",
        f"# plan: {plan.sequences} sequence(s) x {plan.tokens:,} tokens; the cache grows as generate() runs",
    ]
    return "\n".join(lines), "python", notes


def _transformers_js(plan: _Plan) -> tuple[str, Literal["javascript"], list[str]]:
    """A page script for transformers.js (package @huggingface/transformers): the model class and
    the from_pretrained options docs/research/browser-onnx.md §1 and §5.6 name."""
    notes: list[str] = []
    report = plan.result.engine_report
    row = plan.repo() or next(
        (r for (runtime, _, model), r in plan.repos.items() if runtime == "transformers.js" and model == plan.model.id),
        None,
    )
    if row is not None:
        repo = row.repo
        notes.append(f"{row.repo}: the onnx-community export ({row.source})")
        if plan.repo() is None:
            notes.append(f"Whether {row.repo} carries the {plan.weight_format.display_name} files was not checked")
    else:
        repo = _placeholder(f"an ONNX export of {plan.model.display_name} for transformers.js")
        notes.append(f"{repo} is a placeholder: no transformers.js export of this model is on file")
    dtype = TJS_DTYPES.get(plan.weight_format.id, plan.weight_format.id)
    # The backend the estimate planned on (EngineSettings.browser_backend, resolved for the browser).
    device = report.get("backend", "webgpu")
    setting = report.get("backend_setting", "auto")
    text_only = plan.request.text_only
    model_class = "Gemma4ForCausalLM" if text_only else "Gemma4ForConditionalGeneration"
    imports = [model_class] if text_only else ["AutoProcessor", model_class]
    notes.append(
        f'dtype: "{dtype}" picks the {plan.weight_format.display_name} files; device: "{device}"'
        + (
            f" (chosen: the {device} backend)"
            if setting != "auto"
            else " (auto: this browser has no WebGPU)"
            if device == "wasm" and dtype != "q8"
            else " (transformers.js's own default in a browser is wasm, with q8 there)"
        )
    )
    if device == "webgpu":
        notes.append(
            'transformers.js does not fall back to wasm by itself: where navigator.gpu is missing, device: "webgpu" '
            'throws "Unsupported device"; a page for every browser passes device: navigator.gpu ? "webgpu" : "wasm" '
            "(and plans both)"
        )
    else:
        notes.append(
            "On wasm the weights, the KV cache and its step copy all live in the WebAssembly heap (4 GiB at most, wasm32)"
        )
    if dtype in ("q4f16", "fp16") and device == "webgpu":
        notes.append(
            f'{dtype} needs the adapter\'s shader-f16 feature (transformers.js throws "does not support fp16" for fp16 '
            'without it); without it use dtype "q4" (an fp32 graph: twice the KV cache)'
        )
    notes.extend(str(note) for note in report.get("notes", ()))
    notes.append(
        f"Download: {plan.result.files_bytes / 1e9:,.2f} GB"
        + (
            f" (embed_tokens {report['embed_tokens_file_bytes'] / 1e9:,.2f} GB + decoder_model_merged "
            f"{report['decoder_file_bytes'] / 1e9:,.2f} GB"
            + (f" + encoders {report['encoder_files_bytes'] / 1e9:,.2f} GB" if report.get("encoder_files_bytes") else "")
            + "), each graph's weights in .onnx_data chunks under 2 GB"
            if "embed_tokens_file_bytes" in report
            else ""
        )
    )
    if text_only:
        notes.append("Gemma4ForCausalLM: the text graphs only; the vision and audio encoders are not downloaded")
    notes.append(
        f"No context option: the cache grows with the conversation, every KV-owning layer at full length "
        f"(sliding ones too); the plan sizes {plan.tokens:,} tokens"
    )
    if report.get("browser_refusal"):
        notes.append(f"Refused by the browser ({report['browser_limit']}): {report['browser_refusal']}")
    lines = [
        f'import {{ {", ".join(imports)} }} from "@huggingface/transformers";',
        "",
        f'const model_id = "{repo}";',
        *([] if text_only else ["const processor = await AutoProcessor.from_pretrained(model_id);"]),
        f"const model = await {model_class}.from_pretrained(model_id, {{",
        f'  dtype: "{dtype}",',
        f'  device: "{device}",',
        "});",
        f"// plan: {plan.sequences} sequence(s) x {plan.tokens:,} tokens",
    ]
    return "\n".join(lines), "javascript", notes


def _ort_genai(plan: _Plan) -> tuple[str, Literal["bash"], list[str]]:
    """`python model-chat.py -m FOLDER -e PROVIDER -l MAX_LENGTH` (OGA examples/python @a0c04eb1)."""
    notes: list[str] = []
    folder = _repo_or_placeholder(
        plan, notes, "the export",
        f"a folder with an ONNX Runtime GenAI export of {plan.model.display_name} (genai_config.json)",
        "no public Gemma 4 export with its file sizes is on file (Azure AI Foundry lists gemma-4-e2b-it ONNX "
        "for CPU/mobile and GPU); the model builder has no Gemma 4 recipe",
    )  # fmt: skip
    provider = ORT_GENAI_EP_FLAGS[plan.result.engine_report.get("execution_provider", "cuda")]
    args = ["python", ORT_GENAI_SCRIPT, "-m", folder, "-e", provider, "-l", str(plan.tokens)]
    notes.append(f"{ORT_GENAI_SCRIPT}: examples/python in microsoft/onnxruntime-genai (flags from common.py@a0c04eb1)")
    if provider == "follow_config":
        notes.append("-e follow_config: the script has no DirectML choice; the export's genai_config.json names its provider")
    notes.append(
        f"-l {plan.tokens}: search.max_length, the length the KV cache is preallocated to; left out, "
        f"genai_config.json's search.max_length applies, and 0 there means the model's context_length "
        f"({plan.model.max_context_tokens:,} tokens)"
    )
    notes.extend(str(note) for note in plan.result.engine_report.get("notes", ())[1:])
    if plan.sequences > 1:
        notes.append(f"The chat example runs one sequence; {plan.sequences} sequences need a batch of {plan.sequences}")
    return shlex.join(args), "bash", notes


def _mistralrs(plan: _Plan) -> tuple[str, Literal["bash"], list[str]]:
    """`mistralrs serve -m REPO --isq TYPE --max-seqs N` (mistralrs-cli @9e92262; flags from
    docs/src/content/docs/reference/cli/serve.md there, docs/research/mistralrs-vllm-metal.md §1.8)."""
    report = plan.result.engine_report
    device = report.get("device", "cuda")
    paged = bool(report.get("paged_attention"))
    notes: list[str] = [
        f"Install first: {MISTRALRS_INSTALL} (a prebuilt binary: Metal on Apple silicon, CUDA or CPU on Linux; README@9e92262)"
    ]
    args = ["mistralrs", "serve", "-m", plan.hf_repo_id]
    isq_type = plan.weight_format.isq_type
    notes.append(
        f"{plan.hf_repo_id}: the model's own BF16 checkpoint"
        + ("; mistral.rs quantises it while loading" if isq_type is not None else "")
    )
    if isq_type is not None:
        args += ["--isq", isq_type.value]
        notes.append(
            f"--isq {isq_type.value}: in-situ quantisation by type name, so the bytes do not depend on the device "
            "(--isq N resolves to AFQ on Metal and K-quants elsewhere; --quant N first looks for a prebuilt UQFF). "
            "The token embedding and PLE table go one tier up; norms, router and encoders are not quantised"
        )
    if device == "cpu" and (plan.accelerator is None or plan.accelerator.platform != "cpu"):
        args.append("--cpu")
        notes.append("--cpu: run on the CPU although an accelerator is present")
    if device == "cpu":
        notes.append("On the CPU mistral.rs loads in f32 (--dtype auto): unquantised tensors take 4 bytes")
    args += ["--max-seqs", str(plan.sequences)]
    notes.append(
        f"--max-seqs {plan.sequences}: the concurrent sequences planned (default {MISTRALRS_DEFAULT_MAX_SEQS}"
        + ("; without PagedAttention each running sequence grows its own cache, so more would need more memory)" if not paged else ")")
    )
    default_paged = device == "cuda"
    if paged != default_paged:
        args += ["--paged-attn", "on" if paged else "off"]
        notes.append(f"--paged-attn {'on' if paged else 'off'}: auto is on for CUDA only")
    if paged:
        fraction = plan.settings.pa_memory_fraction
        pool = report.get("kv_cache_memory_bytes")
        pool_text = (
            f" = {pool / BYTES_PER_GIB:,.2f} GiB, {report.get('kv_cache_tokens', 0):,} tokens for all sequences"
            if pool is not None
            else ""
        )
        context_tokens = plan.settings.pa_context_tokens
        if context_tokens is not None:
            args += ["--pa-context-len", str(context_tokens)]
            notes.append(
                f"--pa-context-len {context_tokens}: a pool of exactly that many tokens{pool_text}, instead of "
                f"{MISTRALRS_DEFAULT_PA_FRACTION:g} of the GPU; mistral.rs refuses to start if it is not safely available"
            )
        else:
            if fraction != MISTRALRS_DEFAULT_PA_FRACTION:
                args += ["--pa-memory-fraction", f"{fraction:g}"]
            notes.append(
                f"PagedAttention pool: {fraction:g} x total VRAM less what is in use after loading and the "
                f"{report.get('activation_reservation_bytes', 0) / BYTES_PER_GIB:,.2f} GiB activation reservation"
                + pool_text
                + "; --pa-context-len N sizes it to N tokens instead"
            )
        if plan.result.kv_cache_dtype == "fp8":
            args += ["--pa-cache-type", "f8e4m3"]
            notes.append("--pa-cache-type f8e4m3: the PagedAttention cache in FP8 (compute capability 8.0 or newer, or Metal)")
    notes.append(
        "--max-seq-len and --max-batch-size stay at 4,096 x 1: they only size the automatic device map, and for "
        "Gemma 4 its activation reservation grows with their square (heads x (max_seq_len + 1,030)^2 x 2 B: "
        "73 GB for 31B at 32,768), so raising them stops a model that fits from starting"
    )
    return shlex.join(args), "bash", notes
