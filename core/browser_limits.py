"""The browser's hard limits (WebGPU buffer sizes, the wasm32 heap, a tab's memory) turned into a verdict with the reason."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# WebGPU spec defaults: what a device gets unless the page requests more in `requiredLimits`,
# and what every adapter is guaranteed to support ("Adapters are always guaranteed to support the
# defaults or better"): the W3C spec's limits table, gpuweb/gpuweb@da251f90 spec/index.bs l.1617,
# l.1810-1811 (maxStorageBufferBindingSize 134217728 bytes, 128 MiB) and l.1844-1845
# (maxBufferSize 268435456 bytes, 256 MiB); introduced by gpuweb PRs #1163 and #3366.
WEBGPU_DEFAULT_MAX_BUFFER_BYTES = 268_435_456
WEBGPU_DEFAULT_MAX_STORAGE_BINDING_BYTES = 134_217_728
# A wasm32 module addresses at most 2^32 bytes; ONNX Runtime Web links with that maximum
# (onnxruntime PR #12798 "increase max memory to 4G for wasm"). Memory64 is not the default build.
WASM32_MAX_HEAP_BYTES = 4_294_967_296

Backend = Literal["webgpu", "wasm"]
LimitName = Literal["maxBufferSize", "maxStorageBufferBindingSize", "wasm heap", "tab memory"]

_GIB = 1 << 30
_MIB = 1 << 20


class BrowserLimits(BaseModel):
    """One browser on one device: the limits a page gets after requesting the adapter's maxima."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, description="label used in messages, e.g. \"iOS Safari 26 (iPhone 16 Pro)\"")
    # None: the browser has no WebGPU (no navigator.gpu), so only the WASM backend runs there.
    max_buffer_bytes: int | None = Field(gt=0, description="WebGPU maxBufferSize: the largest single GPUBuffer")
    max_storage_binding_bytes: int | None = Field(gt=0, description="WebGPU maxStorageBufferBindingSize")
    wasm_heap_bytes: int = Field(default=WASM32_MAX_HEAP_BYTES, gt=0, description="linear memory of the wasm module")
    tab_memory_bytes: int | None = Field(
        default=None, gt=0, description="what one tab may allocate before the browser or OS kills it; None: unknown"
    )
    # Said after a WebGPU limit's sentence when the figure is not the adapter's own (a typed-in
    # browser that keeps the spec's guaranteed minimums).
    limits_note: str | None = Field(default=None, min_length=1, max_length=300)

    @property
    def has_webgpu(self) -> bool:
        return self.max_buffer_bytes is not None


class PlannedTensor(BaseModel):
    """One tensor of the planned model, as it will be allocated (after quantisation)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    size_bytes: int = Field(ge=0)


class Refusal(BaseModel):
    """One limit the plan exceeds, with a sentence a user can act on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    limit: LimitName
    limit_bytes: int
    needed_bytes: int
    tensor_name: str | None = None
    message: str


class BrowserVerdict(BaseModel):
    """Whether the plan runs in this browser and, if not, every limit that refuses it (worst first)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    browser: str
    backend: Backend
    runs: bool
    refusals: tuple[Refusal, ...]
    largest_tensor: PlannedTensor | None
    total_bytes: int

    @property
    def reason(self) -> str | None:
        """The first refusal's sentence (the largest overshoot), or None when it runs."""
        return self.refusals[0].message if self.refusals else None


def format_size(size_bytes: int) -> str:
    """A size for a sentence: decimal GB (as download pages print it) above 1 GB, else MB."""
    if size_bytes >= 1_000_000_000:
        return f"{size_bytes / 1e9:.2f} GB"
    return f"{size_bytes / 1e6:.0f} MB"


def format_limit(limit_bytes: int) -> str:
    """A limit in the binary unit browsers use for it (256 MiB, 1 GiB, 2 GiB - 4 B)."""
    if limit_bytes % _GIB == 0:
        return f"{limit_bytes // _GIB} GiB"
    if limit_bytes % _MIB == 0:
        return f"{limit_bytes // _MIB} MiB"
    return f"{limit_bytes / _GIB:.2f} GiB"


def _as_tensors(tensors: Sequence[PlannedTensor | tuple[str, int]]) -> list[PlannedTensor]:
    return [t if isinstance(t, PlannedTensor) else PlannedTensor(name=t[0], size_bytes=t[1]) for t in tensors]


def _tensor_refusal(tensor: PlannedTensor, limit: LimitName, limit_bytes: int, limits: BrowserLimits) -> Refusal:
    what = "largest WebGPU buffer" if limit == "maxBufferSize" else "largest storage binding in one shader"
    return Refusal(
        limit=limit,
        limit_bytes=limit_bytes,
        needed_bytes=tensor.size_bytes,
        tensor_name=tensor.name,
        message=(
            f"the {tensor.name} is {format_size(tensor.size_bytes)}; {limits.name}'s {what} is "
            f"{format_limit(limit_bytes)} ({limit})"
            + (f"; {limits.limits_note}" if limits.limits_note else "")
        ),
    )


def check_browser_plan(
    tensors: Sequence[PlannedTensor | tuple[str, int]],
    total_bytes: int,
    limits: BrowserLimits,
    backend: Backend = "webgpu",
    runtime_splits_bindings: bool = True,
    webgpu_heap_bytes: int | None = None,
) -> BrowserVerdict:
    """Check a planned model (its tensors and its weights + KV total) against one browser's limits.

    WebGPU: every tensor lives in one GPUBuffer, so each must fit maxBufferSize; the binding limit
    refuses only when the runtime cannot split a large input over several bindings (ONNX Runtime's
    WebGPU EP can since PR #26429; set `runtime_splits_bindings=False` for runtimes that cannot).
    WASM: weights and KV live in the module's linear memory, so the total must fit the wasm heap.
    Both: the total must fit what a tab may allocate, where that is known. `webgpu_heap_bytes`:
    what a WebGPU step still copies through the wasm heap (inputs the runtime does not keep on
    the GPU, such as a KV cache passed back as graph inputs); None: not checked.
    """
    if total_bytes < 0:
        raise ValueError(f"total_bytes must be >= 0, got {total_bytes}")
    planned = _as_tensors(tensors)
    largest = max(planned, key=lambda t: t.size_bytes, default=None)
    refusals: list[Refusal] = []

    if backend == "webgpu":
        buffer_bytes, binding_bytes = limits.max_buffer_bytes, limits.max_storage_binding_bytes
        if buffer_bytes is None or binding_bytes is None:
            raise ValueError(f"{limits.name} has no WebGPU: check the plan on the wasm backend")
        for tensor in planned:
            if tensor.size_bytes > buffer_bytes:
                refusals.append(_tensor_refusal(tensor, "maxBufferSize", buffer_bytes, limits))
            elif not runtime_splits_bindings and tensor.size_bytes > binding_bytes:
                refusals.append(_tensor_refusal(tensor, "maxStorageBufferBindingSize", binding_bytes, limits))
        if webgpu_heap_bytes is not None and webgpu_heap_bytes > limits.wasm_heap_bytes:
            refusals.append(
                Refusal(
                    limit="wasm heap",
                    limit_bytes=limits.wasm_heap_bytes,
                    needed_bytes=webgpu_heap_bytes,
                    message=(
                        f"each step copies {format_size(webgpu_heap_bytes)} (the KV cache in and out) through the "
                        f"WebAssembly heap, which holds at most {format_limit(limits.wasm_heap_bytes)} (wasm32)"
                    ),
                )
            )
    elif total_bytes > limits.wasm_heap_bytes:
        refusals.append(
            Refusal(
                limit="wasm heap",
                limit_bytes=limits.wasm_heap_bytes,
                needed_bytes=total_bytes,
                message=(
                    f"weights, KV cache and working memory need {format_size(total_bytes)}; the WebAssembly heap holds at most "
                    f"{format_limit(limits.wasm_heap_bytes)} (wasm32)"
                ),
            )
        )

    if limits.tab_memory_bytes is not None and total_bytes > limits.tab_memory_bytes:
        refusals.append(
            Refusal(
                limit="tab memory",
                limit_bytes=limits.tab_memory_bytes,
                needed_bytes=total_bytes,
                message=(
                    f"weights and KV cache need {format_size(total_bytes)}; {limits.name} keeps one tab under "
                    f"{format_size(limits.tab_memory_bytes)}"
                ),
            )
        )

    # Worst overshoot first, so the headline reason is the one furthest out of reach.
    refusals.sort(key=lambda r: r.needed_bytes / r.limit_bytes, reverse=True)
    return BrowserVerdict(
        browser=limits.name,
        backend=backend,
        runs=not refusals,
        refusals=tuple(refusals),
        largest_tensor=largest,
        total_bytes=total_bytes,
    )
