"""Loads and validates the catalogues in data/ into domain models; the only file I/O in core."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from core.architecture import ModelConfig
from core.params import QUANTISABLE_GROUPS, TensorGroup
from core.isq import IsqType

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
# Points the planner at another catalogue folder (tests, or a team's own GPU list).
DATA_DIR_VARIABLE = "GEMMA4_PLANNER_DATA"

# Engines whose memory policy core models; formats and cache types name the ones that load them.
ENGINE_IDS = (
    "transformers", "vllm", "llama.cpp", "ollama", "mlx", "litert-lm", "vllm-metal", "transformers.js",
    "onnxruntime-genai", "mistral.rs",
)
AcceleratorKind = Literal[
    "datacenter", "workstation", "consumer", "laptop", "apple", "apu", "edge", "sbc", "mobile", "iphone", "cpu", "browser"
]
# Kinds that are phones: no server process there, the runtime lives inside an app.
PHONE_KINDS: frozenset[str] = frozenset({"mobile", "iphone"})
# What software stack a device runs: decides which runtimes exist there (data/runtime_support.csv).
Platform = Literal["nvidia", "amd", "intel", "apple", "cpu", "phone", "browser"]


class CatalogError(ValueError):
    """A data file is malformed: names the file, the row or entry, and the field."""

    def __init__(self, file: str, where: str | None, field: str | None, problem: str) -> None:
        self.file, self.where, self.field, self.problem = file, where, field, problem
        location = ", ".join(
            part for part in (file, where, f"field '{field}'" if field else None) if part
        )
        super().__init__(f"{location}: {problem}")


class UnknownChoiceError(ValueError):
    """A name matched nothing in a catalogue; the message lists the valid choices."""

    def __init__(self, what: str, given: str, choices: Iterable[str]) -> None:
        self.what, self.given, self.choices = what, given, tuple(choices)
        super().__init__(f"unknown {what} '{given}'; choose one of: {', '.join(self.choices)}")


def _split_list(value: object) -> object:
    """';'-separated cells become tuples; JSON lists pass through."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(";") if part.strip())
    return value


EngineId = Literal[
    "transformers", "vllm", "llama.cpp", "ollama", "mlx", "litert-lm", "vllm-metal", "transformers.js",
    "onnxruntime-genai", "mistral.rs",
]
NameList = Annotated[tuple[str, ...], BeforeValidator(_split_list)]
EngineList = Annotated[tuple[EngineId, ...], BeforeValidator(_split_list), Field(min_length=1)]


class _Entry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Named(_Entry):
    id: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    aliases: NameList = ()


class ModelSpec(_Named):
    """One Gemma 4 variant: identity, published figures and full architecture."""

    display_name: str = Field(min_length=1)
    hf_repo_id: str = Field(min_length=1)
    published_total_params: float | None = Field(default=None, gt=0)
    published_text_params: float | None = Field(default=None, gt=0)
    published_active_params: float | None = Field(default=None, gt=0)
    published_effective_params: float | None = Field(default=None, gt=0)
    modalities: tuple[Literal["text", "image", "video", "audio"], ...]
    license: str = Field(min_length=1)
    source: str = Field(min_length=1)
    config: ModelConfig

    @property
    def max_context_tokens(self) -> int:
        return self.config.text_config.max_position_embeddings

    @property
    def takes_audio(self) -> bool:
        return self.config.audio_config is not None


class WeightFormat(_Named):
    """A weight storage format: bits per weight (scales included) for each tensor group."""

    display_name: str = Field(min_length=1)
    family: Literal["checkpoint", "hf-quant", "gguf", "mlx", "litertlm", "onnx", "isq"]
    # mistral.rs in-situ quantisation: the --isq type, sized tensor by tensor (core.isq).
    isq_type: IsqType | None = None
    # GGUF files sized tensor by tensor (core.gguf): llama-quantize's file type, and who wrote it.
    gguf_ftype: str | None = None
    gguf_writer: Literal["llama.cpp", "ollama"] | None = None
    # Files known only by their published size (Unsloth's dynamic quants): model id = the
    # gguf_files.csv row of its file; the format applies to those models only.
    published_files: NameList = ()
    linear_bits: float = Field(gt=0, le=32)
    projection_bits: float = Field(gt=0, le=32)
    token_embedding_bits: float = Field(gt=0, le=32)
    per_layer_embedding_bits: float = Field(gt=0, le=32)
    norm_bits: float = Field(gt=0, le=32)
    router_bits: float = Field(gt=0, le=32)
    encoder_bits: float = Field(gt=0, le=32)
    # Routed experts; blank means the same as linear layers (only gpt-oss-style formats differ).
    expert_bits: float | None = Field(default=None, gt=0, le=32)
    # Attention projections and the dense MLP, where a recipe treats them apart from the other
    # linear layers (NVIDIA's ModelOpt checkpoints keep attention in BF16); blank: linear_bits.
    attention_bits: float | None = Field(default=None, gt=0, le=32)
    mlp_bits: float | None = Field(default=None, gt=0, le=32)
    engines: EngineList
    # GPU generations with kernels for this format (blank: any the runtime runs on).
    architectures: NameList = ()
    derivation: str = Field(min_length=1)
    source: str = Field(min_length=1)

    @property
    def main_bits(self) -> float:
        """Bits of the most compressed large tensors (linear layers or routed experts): how
        far from the checkpoint a format is, for ranking formats by precision."""
        return min(self.bits_for(group) for group in QUANTISABLE_GROUPS)

    @property
    def quantised_bits(self) -> frozenset[float]:
        """The precisions this format stores its quantised linear layers at (none for 16 bits)."""
        return frozenset(bits for group in QUANTISABLE_GROUPS if (bits := self.bits_for(group)) < 16)

    @property
    def published_file_ids(self) -> dict[str, str]:
        """Model id -> the gguf_files.csv row of its published file."""
        return dict(pair.split("=", 1) for pair in self.published_files)

    def applies_to(self, model: ModelSpec) -> bool:
        """False for a format that only changes routed experts, on a model without any (it would
        repeat the 16-bit row), and for a published-file format on a model it has no file for."""
        if self.published_files and model.id not in self.published_file_ids:
            return False
        only_experts = self.bits_for("experts") < 16 and all(
            self.bits_for(group) >= 16 for group in QUANTISABLE_GROUPS if group != "experts"
        )
        return not only_experts or model.config.text_config.enable_moe_block

    def bits_for(self, group: TensorGroup) -> float:
        return {
            "linear": self.linear_bits,
            "projection": self.projection_bits,
            "token_embedding": self.token_embedding_bits,
            "per_layer_embedding": self.per_layer_embedding_bits,
            "norm": self.norm_bits,
            "router": self.router_bits,
            "encoder": self.encoder_bits,
            "experts": self.linear_bits if self.expert_bits is None else self.expert_bits,
            "attention": self.linear_bits if self.attention_bits is None else self.attention_bits,
            "mlp": self.linear_bits if self.mlp_bits is None else self.mlp_bits,
        }[group]


class KvCacheType(_Named):
    """How each cached K or V value is stored."""

    display_name: str = Field(min_length=1)
    bits_per_value: float = Field(gt=0, le=32)
    engines: EngineList
    derivation: str = Field(min_length=1)
    source: str = Field(min_length=1)


class Accelerator(_Named):
    """A GPU or other accelerator, with memory as its driver reports it."""

    name: str = Field(min_length=1)
    vendor: str = Field(min_length=1)
    kind: AcceleratorKind
    platform: Platform
    architecture: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9.-]*$")
    memory_bytes: int = Field(gt=0)
    memory_gb_marketing: float = Field(gt=0)
    memory_basis: str = Field(min_length=1)
    host_memory_bytes: int | None = Field(
        default=None, ge=0, description="host RAM for offloaded weights; blank: the kind's default (runtime.csv)"
    )
    memory_bandwidth_gbs: float | None = Field(default=None, gt=0)
    bf16_dense_tflops: float | None = Field(default=None, gt=0)
    fp8_dense_tflops: float | None = Field(default=None, gt=0)
    int8_dense_tops: float | None = Field(default=None, gt=0)
    tdp_w: float | None = Field(default=None, gt=0)
    usd_per_hour: float | None = Field(default=None, gt=0)
    release_year: int | None = Field(default=None, ge=1990, le=2100)
    # Browser devices only (kind `browser`; core.browser_limits), from data/browser_limits.csv: the
    # WebGPU limits a page gets after requesting the adapter's maxima (blank: the browser has no
    # WebGPU, so only WASM runs), and the wasm module's heap. memory_bytes is the tab's.
    webgpu_max_buffer_bytes: int | None = Field(default=None, gt=0, description="WebGPU maxBufferSize")
    webgpu_max_binding_bytes: int | None = Field(
        default=None, gt=0, description="WebGPU maxStorageBufferBindingSize"
    )
    wasm_heap_bytes: int | None = Field(default=None, gt=0, description="WebAssembly heap; blank: 4 GiB (wasm32)")
    source: str = Field(min_length=1)
    notes: str | None = None


class BrowserLimitsRow(_Entry):
    """One browser device's WebGPU limits and wasm heap (data/browser_limits.csv), joined onto its gpus.csv row."""

    id: str = Field(min_length=1)
    # Both blank: a browser without WebGPU (no navigator.gpu); one alone is a typo.
    webgpu_max_buffer_bytes: int | None = Field(default=None, gt=0)
    webgpu_max_binding_bytes: int | None = Field(default=None, gt=0)
    wasm_heap_bytes: int | None = Field(default=None, gt=0)
    basis: str = Field(min_length=1)
    source: str = Field(min_length=1)


class RuntimeAllowance(_Entry):
    """Memory an accelerator kind keeps from the model: driver reserve and per-process runtime."""

    kind: AcceleratorKind
    driver_reserved_bytes: int = Field(ge=0)
    process_overhead_bytes: int = Field(ge=0)
    unified_memory: bool = Field(description="host and accelerator share one memory")
    host_memory_bytes: int = Field(ge=0, description="host RAM assumed for offload when a device names none")
    host_bandwidth_gbs: float | None = Field(default=None, gt=0, description="host RAM bandwidth (CPU-run offloaded layers)")
    host_link_gbs: float | None = Field(default=None, gt=0, description="host-to-GPU link (weights streamed each step)")
    basis: str = Field(min_length=1)
    source: str = Field(min_length=1)


class PublishedFile(_Entry):
    """A public GGUF file size (data/gguf_files.csv), with where it was read."""

    id: str = Field(min_length=1)
    repo: str = Field(min_length=1)
    file: str = Field(min_length=1)
    model: str = Field(min_length=1)
    ftype: str = Field(min_length=1)
    size_bytes: int = Field(gt=0)
    size_basis: str = Field(min_length=1)
    source: str = Field(min_length=1)


class RuntimeSupport(_Entry):
    """Whether a runtime runs on a platform (or one architecture of it), and with which formats."""

    engine: EngineId
    platform: Platform
    architecture: str | None = Field(default=None, description="this row overrides the platform's for one architecture")
    runs: bool
    rank: int | None = Field(default=None, ge=1, description="order in which the planner offers runtimes here")
    formats: NameList = Field(default=(), description="weight formats offered here; empty: every one the runtime loads")
    default_format: str | None = None
    reason: str = Field(min_length=1)
    source: str = Field(min_length=1)


class Benchmark(_Entry):
    """One row of the release benchmark table."""

    benchmark: str = Field(min_length=1)
    unit: str = Field(min_length=1)
    better: Literal["higher", "lower"]
    scores: dict[str, float]
    source: str = Field(min_length=1)


class Observation(_Entry):
    """A public (or measured) figure of a real deployment, with every setting to reproduce it."""

    id: str = Field(min_length=1)
    quantity: str = Field(min_length=1, description="what is compared: a path into estimate --json, or a named figure")
    observed: float
    unit: Literal["bytes", "MiB", "GiB", "GB", "cells", "blocks", "tokens", "x"]
    tolerance: float = Field(ge=0, description="largest accepted |predicted - observed|, in `unit`")
    tolerance_basis: str = Field(min_length=1)
    model: str = Field(min_length=1)
    engine: str = Field(min_length=1)
    weight_format: str = Field(min_length=1)
    kv_cache_dtype: str = Field(min_length=1)
    context_tokens: int = Field(gt=0)
    concurrent_sequences: int = Field(gt=0)
    n_ubatch: int = Field(gt=0)
    swa_full: bool
    kv_unified: bool
    auto_slots: bool = Field(default=False, description="llama-server -np auto (4 slots, unified); false: -np set")
    text_only: bool = Field(default=False, description="no mmproj: files_bytes is then the text GGUF alone")
    kv_cache_memory_bytes: int | None = Field(default=None, gt=0)
    max_num_batched_tokens: int | None = Field(default=None, gt=0)
    async_scheduling: bool | None = None
    gpu: str | None = None
    measured_here: bool
    source: str = Field(min_length=1)


E = TypeVar("E", bound=BaseModel)


def validation_problem(error: ValidationError) -> tuple[str, str]:
    """The first failing field (dotted path) and its message. Union members' class names
    (VisionConfig or SiglipVisionConfig) are left out of the path: they are not fields."""
    first = error.errors()[0]
    parts = [part for part in first["loc"] if not (isinstance(part, str) and part[:1].isupper())]
    # Field names and values can come from an uploaded or linked config: quote a bounded piece.
    field = clipped(".".join(str(part) for part in parts)) or "(entry)"
    message = first["msg"].removeprefix("Value error, ")
    given = first.get("input")
    if isinstance(given, (str, int, float)) and first["type"] != "missing":
        message += f" (got {clipped(repr(given))})"
    return field, message


def clipped(text: str, limit: int = 40) -> str:
    """At most `limit` characters of `text`, marked with "..." where cut: how every message
    (a validation error, the importer's, the command line's, a page notice) quotes input."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _read_text(path: Path) -> str:
    name = _display(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CatalogError(name, None, None, "file is missing") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise CatalogError(
            name, f"line {line}", None, f"not UTF-8 text (byte {error.start}); save it as UTF-8"
        ) from None
    if not text.strip():
        raise CatalogError(name, None, None, "file is empty")
    return text


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(DATA_DIR.parent))
    except ValueError:
        return str(path)


def _read_csv(
    path: Path, entry: type[E], build: Callable[[dict[str, Any]], dict[str, Any]] = dict
) -> list[E]:
    """Rows of a CSV as validated entries; empty cells are missing values."""
    name = _display(path)
    reader = csv.DictReader(_read_text(path).splitlines())
    header = reader.fieldnames or []
    rows: list[E] = []
    for row_number, row in enumerate(reader, start=1):
        line = reader.line_num
        key = row.get("id") or row.get("kind") or row.get("benchmark")
        where = f"line {line} (row {row_number}" + (f", '{key}')" if key else ")")
        if None in row:
            raise CatalogError(
                name, where, None, f"{len(header) + len(row[None])} cells, header has {len(header)}"
            )
        cells = {column: value for column, value in row.items() if value not in ("", None)}
        try:
            rows.append(entry.model_validate(build(cells)))
        except ValidationError as error:
            field, message = validation_problem(error)
            if field.split(".")[0] not in header and message == "Field required":
                raise CatalogError(name, None, field.split(".")[0], "column is missing") from None
            raise CatalogError(name, where, field, message) from None
    if not rows:
        raise CatalogError(name, None, None, "no data rows under the header")
    return rows


def _benchmark_row(cells: dict[str, Any]) -> dict[str, Any]:
    fixed = {"benchmark", "unit", "better", "source"}
    scores = {column: value for column, value in cells.items() if column not in fixed}
    return {**{k: v for k, v in cells.items() if k in fixed}, "scores": scores}


def _read_models(path: Path) -> list[ModelSpec]:
    name = _display(path)
    try:
        document = json.loads(_read_text(path))
    except json.JSONDecodeError as error:
        raise CatalogError(name, f"line {error.lineno}", None, f"invalid JSON: {error.msg}") from None
    entries = document.get("models") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise CatalogError(name, None, "models", "expected a non-empty list of models")
    models = []
    for index, raw in enumerate(entries):
        label = raw.get("id") if isinstance(raw, dict) else None
        where = f"entry {index}" + (f" ('{label}')" if label else "")
        try:
            models.append(ModelSpec.model_validate(raw))
        except ValidationError as error:
            field, message = validation_problem(error)
            raise CatalogError(name, where, field, message) from None
    return models


class Catalog:
    """Every validated catalogue, with case-insensitive look-up by id or alias."""

    def __init__(
        self,
        models: list[ModelSpec],
        weight_formats: list[WeightFormat],
        kv_cache_types: list[KvCacheType],
        accelerators: list[Accelerator],
        runtime: list[RuntimeAllowance],
        benchmarks: list[Benchmark],
        observations: list[Observation],
        files: Mapping[str, str],
        runtime_support: list[RuntimeSupport] = (),  # type: ignore[assignment]
        published_files: list[PublishedFile] = (),  # type: ignore[assignment]
    ) -> None:
        self._parts = (
            models, weight_formats, kv_cache_types, accelerators, runtime, benchmarks, observations, files,
            runtime_support, published_files,
        )
        self.runtime_support = tuple(runtime_support)
        self.published_files = {entry.id: entry for entry in published_files}
        self.models = tuple(models)
        self.weight_formats = tuple(weight_formats)
        self.kv_cache_types = tuple(kv_cache_types)
        self.accelerators = tuple(accelerators)
        self.benchmarks = tuple(benchmarks)
        self.observations = tuple(observations)
        self._runtime = {allowance.kind: allowance for allowance in runtime}
        self._index = {
            "model": _index(files["models"], models, extra=lambda m: (m.hf_repo_id,), first_row=0, unit="entry"),
            "weight format": _index(files["weight_formats"], weight_formats),
            "KV cache type": _index(files["kv_cache_types"], kv_cache_types),
            # Ids without the vendor prefix work too: rtx-4090, mi300x, m4-pro-48gb.
            "GPU": _index(files["gpus"], accelerators, extra=_unprefixed_id),
        }

    def with_models(self, extra: tuple[ModelSpec, ...]) -> Catalog:
        """This catalogue plus models from elsewhere (imported config.json files), after its
        own; the same `extra` gives back the same object, so per-catalogue caches keep working."""
        return _with_models(self, extra) if extra else self

    def with_accelerators(self, extra: tuple[Accelerator, ...]) -> Catalog:
        """This catalogue plus devices typed in by the user (replacing any of the same id)."""
        return _with_accelerators(self, extra) if extra else self

    def _find(self, what: str, name: str) -> Any:
        found = self._index[what].get(name.strip().lower())
        if found is None:
            choices = [entry.id for entry in self._index[what].values()]
            raise UnknownChoiceError(what, name, dict.fromkeys(choices))
        return found

    def model(self, name: str) -> ModelSpec:
        return self._find("model", name)

    def weight_format(self, name: str) -> WeightFormat:
        return self._find("weight format", name)

    def kv_cache_type(self, name: str) -> KvCacheType:
        return self._find("KV cache type", name)

    def accelerator(self, name: str) -> Accelerator:
        return self._find("GPU", name)

    def runtime(self, kind: AcceleratorKind) -> RuntimeAllowance:
        return self._runtime[kind]


@lru_cache(maxsize=64)
def _with_models(base: Catalog, extra: tuple[ModelSpec, ...]) -> Catalog:
    models, formats, kv_types, accelerators, runtime, benchmarks, observations, files, support, published = base._parts
    return Catalog([*models, *extra], formats, kv_types, accelerators, runtime, benchmarks, observations, files, support, published)


@lru_cache(maxsize=64)
def _with_accelerators(base: Catalog, extra: tuple[Accelerator, ...]) -> Catalog:
    models, formats, kv_types, accelerators, runtime, benchmarks, observations, files, support, published = base._parts
    kept = [a for a in accelerators if a.id not in {e.id for e in extra}]
    return Catalog(models, formats, kv_types, [*kept, *extra], runtime, benchmarks, observations, files, support, published)


def _unprefixed_id(accelerator: Accelerator) -> tuple[str, ...]:
    prefix = accelerator.vendor.lower().replace(" ", "") + "-"
    return (accelerator.id[len(prefix):],) if accelerator.id.startswith(prefix) else ()


def _index(
    file: str,
    entries: list[Any],
    extra: Callable[[Any], tuple[str, ...]] = lambda e: (),
    first_row: int = 1,
    unit: str = "row",
) -> dict[str, Any]:
    """id and aliases (lower-cased) -> entry; a name used twice is a catalogue error that
    names both places (CSV rows sit one per line under the header)."""

    def where(position: int, entry: Any) -> str:
        if unit == "row":
            return f"line {position + 1} (row {position}, '{entry.id}')"
        return f"{unit} {position} ('{entry.id}')"

    index: dict[str, Any] = {}
    seen_at: dict[str, str] = {}
    for position, entry in enumerate(entries, start=first_row):
        for field, names in (("id", (entry.id,)), ("aliases", entry.aliases + extra(entry))):
            for alias in names:
                key = alias.strip().lower()
                holder = index.get(key)
                if holder is not None and holder is not entry:
                    raise CatalogError(
                        file, where(position, entry), field, f"'{alias}' is already used at {seen_at[key]}"
                    )
                index[key] = entry
                seen_at.setdefault(key, where(position, entry))
    return index


# Files a page can do without: the others (models, formats, KV types, runtime) are needed
# everywhere, while a broken GPU list, benchmark table or observation list only takes down
# the pages that use it.
OPTIONAL_PARTS = ("gpus", "benchmarks", "observations")


@dataclass(frozen=True)
class CatalogLoad:
    """A catalogue loaded as far as possible: broken optional parts are empty and listed."""

    catalog: Catalog
    broken: dict[str, CatalogError]


def _data_dir(data_dir: Path | None) -> Path:
    if data_dir is not None:
        return data_dir.resolve()
    variable = os.environ.get(DATA_DIR_VARIABLE) or ""
    if variable and not os.path.isabs(variable):
        # Relative to the working directory, which may change: resolved afresh each time.
        return Path(variable).resolve()
    return _default_data_dir(variable)


@lru_cache(maxsize=16)
def _default_data_dir(variable: str) -> Path:
    """$GEMMA4_PLANNER_DATA's folder, else data/, resolved once per value of the variable:
    resolve() stats every component of the path, and the app asks on every rerun."""
    return Path(variable or DATA_DIR).resolve()


def load_catalog(data_dir: Path | None = None) -> Catalog:
    """Every catalogue in `data_dir` (default: $GEMMA4_PLANNER_DATA, else data/), validated
    once per folder; raises CatalogError on the first problem."""
    loaded = _load_catalog(_data_dir(data_dir))
    if loaded.broken:
        raise next(iter(loaded.broken.values()))
    return loaded.catalog


def load_catalog_parts(data_dir: Path | None = None) -> CatalogLoad:
    """Like load_catalog, but a broken optional file (OPTIONAL_PARTS) leaves its part empty
    and is reported instead of raised; a broken required file still raises."""
    return _load_catalog(_data_dir(data_dir))


def _check_benchmarks(file: str, models: list[ModelSpec], benchmarks: list[Benchmark]) -> None:
    model_ids = {model.id for model in models}
    for row, benchmark in enumerate(benchmarks, start=1):
        unknown = set(benchmark.scores) - model_ids
        missing = model_ids - set(benchmark.scores)
        if unknown or missing:
            raise CatalogError(
                file,
                f"row {row} ('{benchmark.benchmark}')",
                ", ".join(sorted(unknown or missing)),
                "column is not a model id" if unknown else "no score for this model",
            )


def _check_gpus(files: Mapping[str, str], accelerators: list[Accelerator], runtime: list[RuntimeAllowance]) -> None:
    _index(files["gpus"], accelerators, extra=_unprefixed_id)
    kinds = {allowance.kind for allowance in runtime}
    for row, accelerator in enumerate(accelerators, start=1):
        if accelerator.kind not in kinds:
            raise CatalogError(
                files["runtime"],
                None,
                "kind",
                f"no row for accelerator kind '{accelerator.kind}' "
                f"(used by {files['gpus']} row {row}, '{accelerator.id}')",
            )


def _with_browser_limits(file: str, accelerators: list[Accelerator], rows: list[BrowserLimitsRow]) -> list[Accelerator]:
    """gpus.csv rows with their browser limits filled in; a limits row names a browser device."""
    devices = {accelerator.id: accelerator for accelerator in accelerators}
    limits: dict[str, BrowserLimitsRow] = {}
    for row_number, row in enumerate(rows, start=1):
        where = f"line {row_number + 1} (row {row_number}, '{row.id}')"
        device = devices.get(row.id)
        if device is None or device.kind != "browser":
            raise CatalogError(file, where, "id", "not the id of a browser device in gpus.csv")
        if (row.webgpu_max_buffer_bytes is None) != (row.webgpu_max_binding_bytes is None):
            raise CatalogError(
                file, where, "webgpu_max_binding_bytes", "give both WebGPU limits, or leave both blank (no WebGPU)"
            )
        limits[row.id] = row
    # A browser without a row would read as one without WebGPU: say which row is missing instead.
    for accelerator in accelerators:
        if accelerator.kind == "browser" and accelerator.id not in limits:
            raise CatalogError(file, "(no row)", "id", f"gpus.csv's browser device '{accelerator.id}' has no row here")
    return [
        accelerator.model_copy(
            update=limits[accelerator.id].model_dump(
                include={"webgpu_max_buffer_bytes", "webgpu_max_binding_bytes", "wasm_heap_bytes"}
            )
        )
        if accelerator.id in limits
        else accelerator
        for accelerator in accelerators
    ]


def _check_runtime_support(file: str, rows: list[RuntimeSupport], formats: list[WeightFormat]) -> None:
    """Every named format exists and is loaded by the row's runtime; no (runtime, platform,
    architecture) twice; every runtime that runs somewhere has a rank there."""
    known = {f.id: f for f in formats}
    seen: dict[tuple[str, str, str | None], int] = {}
    for row_number, row in enumerate(rows, start=1):
        where = f"line {row_number + 1} (row {row_number}, '{row.engine}' on '{row.platform}')"
        key = (row.engine, row.platform, row.architecture)
        if key in seen:
            raise CatalogError(file, where, "architecture", f"repeats row {seen[key]}")
        seen[key] = row_number
        if row.runs and row.rank is None:
            raise CatalogError(file, where, "rank", "a runtime that runs needs a rank")
        for field, names in (("formats", row.formats), ("default_format", (row.default_format,) if row.default_format else ())):
            for name in names:
                if name not in known:
                    raise CatalogError(file, where, field, f"'{name}' is not a weight format id")
                if row.engine not in known[name].engines:
                    raise CatalogError(file, where, field, f"{row.engine} does not load '{name}'")


def _check_published_files(
    file: str, formats: list[WeightFormat], published: list[PublishedFile], models: list[ModelSpec]
) -> None:
    """A published-file format names a model that exists and a gguf_files.csv row of a whole file."""
    rows = {entry.id: entry for entry in published}
    model_ids = {model.id for model in models}
    for row_number, weight_format in enumerate(formats, start=1):
        where = f"line {row_number + 1} (row {row_number}, '{weight_format.id}')"
        for pair in weight_format.published_files:
            model_id, _, file_id = pair.partition("=")
            if model_id not in model_ids:
                raise CatalogError(file, where, "published_files", f"'{model_id}' is not a model id")
            entry = rows.get(file_id)
            if entry is None:
                raise CatalogError(file, where, "published_files", f"'{file_id}' is not a row of gguf_files.csv")
            if not entry.size_basis.startswith("file "):
                raise CatalogError(file, where, "published_files", f"'{file_id}' is not a whole-file size")


@lru_cache(maxsize=4)
def _load_catalog(data_dir: Path) -> CatalogLoad:
    paths = {
        "models": data_dir / "models.json",
        "weight_formats": data_dir / "weight_formats.csv",
        "kv_cache_types": data_dir / "kv_cache_types.csv",
        "gpus": data_dir / "gpus.csv",
        "runtime": data_dir / "runtime.csv",
        "runtime_support": data_dir / "runtime_support.csv",
        "gguf_files": data_dir / "gguf_files.csv",
        "browser_limits": data_dir / "browser_limits.csv",
        "benchmarks": data_dir / "benchmarks.csv",
        "observations": data_dir / "observations.csv",
    }
    files = {key: _display(path) for key, path in paths.items()}
    broken: dict[str, CatalogError] = {}

    def optional(part: str, read: Callable[[], list[Any]], check: Callable[[list[Any]], None]) -> list[Any]:
        try:
            entries = read()
            check(entries)
            return entries
        except CatalogError as error:
            broken[part] = error
            return []

    models = _read_models(paths["models"])
    weight_formats = _read_csv(paths["weight_formats"], WeightFormat)
    kv_cache_types = _read_csv(paths["kv_cache_types"], KvCacheType)
    runtime = _read_csv(paths["runtime"], RuntimeAllowance)
    runtime_support = _read_csv(paths["runtime_support"], RuntimeSupport)
    _check_runtime_support(files["runtime_support"], runtime_support, weight_formats)
    published_files = _read_csv(paths["gguf_files"], PublishedFile)
    _check_published_files(files["weight_formats"], weight_formats, published_files, models)
    accelerators = optional(
        "gpus",
        lambda: _with_browser_limits(
            files["browser_limits"],
            _read_csv(paths["gpus"], Accelerator),
            _read_csv(paths["browser_limits"], BrowserLimitsRow),
        ),
        lambda rows: _check_gpus(files, rows, runtime),
    )
    benchmarks = optional(
        "benchmarks",
        lambda: _read_csv(paths["benchmarks"], Benchmark, build=_benchmark_row),
        lambda rows: _check_benchmarks(files["benchmarks"], models, rows),
    )
    observations = optional("observations", lambda: _read_csv(paths["observations"], Observation), lambda rows: None)
    catalog = Catalog(
        models=models,
        weight_formats=weight_formats,
        kv_cache_types=kv_cache_types,
        accelerators=accelerators,
        runtime=runtime,
        benchmarks=benchmarks,
        observations=observations,
        files=files,
        runtime_support=runtime_support,
        published_files=published_files,
    )
    return CatalogLoad(catalog, broken)
