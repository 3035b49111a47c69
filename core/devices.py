"""A device the user types in (memory, kind, bandwidth, host RAM, a browser's WebGPU limits), as a catalogue accelerator."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from core.browser_limits import WEBGPU_DEFAULT_MAX_BUFFER_BYTES, WEBGPU_DEFAULT_MAX_STORAGE_BINDING_BYTES
from core.catalog import Accelerator, AcceleratorKind, Platform

TypedKind = Literal["nvidia", "amd", "intel", "apple", "cpu", "phone", "browser"]
TYPED_KINDS: tuple[str, ...] = get_args(TypedKind)
TYPED_DEVICE_ID = "my-device"
MAX_TYPED_MEMORY_BYTES = 2**50
# macOS 14/15 lets the GPU wire 2/3 of RAM up to 32 GB and 3/4 from 36 GB (llama.cpp's
# recommendedMaxWorkingSetSize readings at 16-128 GB, docs/devices.md 'Apple: the Metal
# working set'); newer macOS allows more, so this is the figure every Mac gets at least.
# Between the 32 GB and the 36 GB models (Apple's "GB" of RAM are 2^30 bytes).
APPLE_SMALL_RAM_MAX_BYTES = 35 * 2**30
APPLE_SMALL_FRACTION = (2, 3)
APPLE_LARGE_FRACTION = (3, 4)

# Typed kind -> the catalogue kind whose allowance (runtime.csv) applies.
KIND_OF: dict[str, AcceleratorKind] = {
    "nvidia": "consumer",
    "amd": "consumer",
    "intel": "consumer",
    "apple": "apple",
    "cpu": "cpu",
    "phone": "mobile",
    "browser": "browser",
}


class TypedDevice(BaseModel):
    """What the user says about their device; `memory_bytes` is the GPU's memory, or the RAM of
    a Mac, a phone or a CPU box."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    memory_bytes: int = Field(gt=0, le=MAX_TYPED_MEMORY_BYTES)
    kind: TypedKind
    bandwidth_gbs: float | None = Field(default=None, gt=0, le=100_000, allow_inf_nan=False)
    host_memory_bytes: int | None = Field(default=None, ge=0, le=MAX_TYPED_MEMORY_BYTES)
    architecture: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9.-]*$", max_length=40)
    # A browser only (other kinds ignore these): whether it exposes WebGPU (navigator.gpu), and
    # the adapter's limits as `(await navigator.gpu.requestAdapter()).limits` prints them; unset,
    # the WebGPU spec's guaranteed minimums (core.browser_limits), which every adapter meets.
    webgpu: bool = True
    webgpu_max_buffer_bytes: int | None = Field(default=None, gt=0, le=MAX_TYPED_MEMORY_BYTES)
    webgpu_max_binding_bytes: int | None = Field(default=None, gt=0, le=MAX_TYPED_MEMORY_BYTES)

    def label(self) -> str:
        no_webgpu = ", no WebGPU" if self.kind == "browser" and not self.webgpu else ""
        return f"Your device ({self.kind}, {self.memory_bytes / 2**30:,.1f} GiB{no_webgpu})"


def apple_working_set_bytes(ram_bytes: int) -> int:
    """The GPU working set macOS allows on a Mac with `ram_bytes` of unified memory."""
    numerator, denominator = APPLE_SMALL_FRACTION if ram_bytes <= APPLE_SMALL_RAM_MAX_BYTES else APPLE_LARGE_FRACTION
    return ram_bytes * numerator // denominator


def typed_accelerator(device: TypedDevice) -> Accelerator:
    """The typed device as a catalogue row: a Mac's RAM becomes its Metal working set; the
    architecture is unknown unless given (so formats tied to one, like NVFP4, are refused)."""
    platform: Platform = device.kind
    memory = device.memory_bytes
    basis = "typed in"
    if device.kind == "apple":
        memory = apple_working_set_bytes(device.memory_bytes)
        basis = "typed-in RAM x the macOS 14/15 working-set share (2/3 up to 32 GB, 3/4 above)"
    browser = device.kind == "browser" and device.webgpu
    return Accelerator(
        id=TYPED_DEVICE_ID,
        name=device.label(),
        vendor="typed in",
        kind=KIND_OF[device.kind],
        platform=platform,
        # A browser without WebGPU has runtime_support.csv rows of its own (WASM only).
        architecture=device.architecture or ("no-webgpu" if device.kind == "browser" and not device.webgpu else "unknown"),
        memory_bytes=memory,
        memory_gb_marketing=round(device.memory_bytes / 10**9, 3) or 0.001,
        memory_basis=basis,
        host_memory_bytes=device.host_memory_bytes,
        memory_bandwidth_gbs=device.bandwidth_gbs,
        source="typed in by the user",
        webgpu_max_buffer_bytes=(device.webgpu_max_buffer_bytes or WEBGPU_DEFAULT_MAX_BUFFER_BYTES) if browser else None,
        webgpu_max_binding_bytes=(
            (device.webgpu_max_binding_bytes or WEBGPU_DEFAULT_MAX_STORAGE_BINDING_BYTES) if browser else None
        ),
    )


def spec_minimum_limits(accelerator: Accelerator) -> bool:
    """Whether a typed-in browser's maxBufferSize is the WebGPU spec's guaranteed minimum (nothing
    typed, or exactly that), not a figure read from the user's adapter."""
    return accelerator.id == TYPED_DEVICE_ID and accelerator.webgpu_max_buffer_bytes == WEBGPU_DEFAULT_MAX_BUFFER_BYTES
