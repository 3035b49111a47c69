"""CPU offload: what a runtime moves to host memory when the model does not fit on its GPUs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.architecture import FULL, decoder_layers
from core.estimate import Evaluation, MemoryProfile
from core.params import layer_parameters
from core.units import BYTES_PER_GIB, BYTES_PER_MIB

# Components that live inside a decoder layer and move with it (-ngl); the rest (token
# embedding output copy, PLE projection, encoders) stay with the output layer.
DENSE_LAYER_COMPONENTS = ("attention", "mlp", "per_layer_projection", "router")
EXPERT_COMPONENTS = ("experts", "expert_biases")

OffloadMethod = Literal["llama.cpp --fit", "vLLM --cpu-offload-gb", "accelerate device_map"]


class Offload(BaseModel):
    """Where the weights and cache go when part of the model runs from host memory."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: OffloadMethod
    gpu_layers: int = Field(ge=0, description="decoder layers on the GPU(s) (llama.cpp -ngl counts the output layer too)")
    total_layers: int = Field(ge=0)
    cpu_moe_layers: int = Field(ge=0, description="layers whose routed experts stay in host memory (--n-cpu-moe)")
    device_bytes: int = Field(ge=0, description="on the GPU(s), all together")
    host_bytes: int = Field(ge=0, description="in host RAM: offloaded weights and cache, and host-side tables")
    host_read_bytes_per_token: int = Field(
        ge=0,
        description="per decode step: weights and cache the CPU reads from host memory (llama.cpp), "
        "or weights streamed over PCIe to the GPU (vLLM, accelerate)",
    )
    flags: str = Field(description="the runtime's own flags for this placement")


@dataclass(frozen=True)
class LayerBytes:
    dense: float
    experts: float
    active_experts: float
    kv: float


def layer_bytes(profile: MemoryProfile, evaluation: Evaluation) -> list[LayerBytes]:
    """Each decoder layer's weights (split into dense parts and routed experts) and KV cache,
    from the profile's per-component bytes shared out by each layer's parameter count."""
    text = profile.model.config.text_config
    counts = layer_parameters(text)
    component_bytes = {w.component: w.bytes for w in profile.weights}
    totals = {c: sum(layer[c] for layer in counts) for c in (*DENSE_LAYER_COMPONENTS, *EXPERT_COMPONENTS)}

    def share(layer: dict[str, int], components: tuple[str, ...]) -> float:
        return sum(component_bytes.get(c, 0) * layer[c] / totals[c] for c in components if totals[c])

    layers = decoder_layers(text)
    owners = [layer for layer in layers if layer.owns_kv_cache]
    full_owners = sum(layer.attention == FULL for layer in owners)
    sliding_owners = len(owners) - full_owners
    full_kv = float(evaluation.full_attention_bytes) / full_owners if full_owners else 0.0
    sliding_kv = float(evaluation.sliding_attention_bytes) / sliding_owners if sliding_owners else 0.0
    experts_total = totals["experts"] + totals["expert_biases"]
    active_share = (text.top_k_experts or 0) / (text.num_experts or 1) if experts_total else 0.0
    result = []
    for spec, layer in zip(layers, counts):
        kv = 0.0 if not spec.owns_kv_cache else full_kv if spec.attention == FULL else sliding_kv
        experts = share(layer, EXPERT_COMPONENTS)
        result.append(LayerBytes(share(layer, DENSE_LAYER_COMPONENTS), experts, experts * active_share, kv))
    return result


def host_usable_bytes(host_memory_bytes: int, os_reserved_bytes: int) -> int:
    """Host RAM a runtime may fill: what the machine has, less what the OS keeps."""
    return max(0, host_memory_bytes - os_reserved_bytes)


def llama_fit(profile: MemoryProfile, evaluation: Evaluation, budget_bytes: int) -> Offload | None:
    """What llama-server's --fit does when the model is over `budget_bytes` (free device memory
    less --fit-target per device): for MoE models every layer's experts go to the CPU first and
    come back layer by layer; then whole layers fill the GPU from the back (common/fit.cpp,
    docs/research/runtime-rules.md A1). None when everything fits."""
    total = int(evaluation.total_bytes)
    if total <= budget_bytes:
        return None
    layers = layer_bytes(profile, evaluation)
    in_layers = sum(layer.dense + layer.experts + layer.kv for layer in layers)
    # Output copy of the embedding, PLE projection, encoders (mmproj), compute buffers, runtime.
    outside = total - in_layers
    experts_total = sum(layer.experts for layer in layers)
    host_tables = profile.host_bytes
    count = len(layers)

    if experts_total and total - experts_total <= budget_bytes:
        # Every dense part fits: bring experts back until the GPU is full.
        room = budget_bytes - (total - experts_total)
        on_gpu = 0
        for layer in layers:
            if layer.experts > room:
                break
            room -= layer.experts
            on_gpu += 1
        cpu_moe = count - on_gpu
        moved = layers[:cpu_moe]  # --n-cpu-moe N keeps the first N layers' experts in host memory
        host = host_tables + sum(layer.experts for layer in moved)
        return Offload(
            method="llama.cpp --fit",
            gpu_layers=count,
            total_layers=count,
            cpu_moe_layers=cpu_moe,
            device_bytes=math.ceil(total - sum(layer.experts for layer in moved)),
            host_bytes=math.ceil(host),
            host_read_bytes_per_token=math.ceil(sum(layer.active_experts for layer in moved)),
            flags=f"--n-cpu-moe {cpu_moe}",
        )

    # Whole layers, back to front, beside everything outside the layers (experts stay in host
    # memory for MoE models: they did not fit even alone).
    used = outside
    gpu_layers = 0
    for layer in reversed(layers):
        size = layer.dense + layer.kv + (0 if experts_total else layer.experts)
        if used + size > budget_bytes:
            break
        used += size
        gpu_layers += 1
    output_on_gpu = outside <= budget_bytes
    if not output_on_gpu:
        # Not even the output layer fits: -ngl 0, the GPU holds only the runtime's own memory.
        gpu_layers, used = 0, min(total, profile.overhead_bytes)
    cpu_layers = layers[: count - gpu_layers]
    host = total - used + host_tables
    host_read = sum(layer.dense + layer.kv for layer in cpu_layers)
    # Routed experts run where they are: in host memory for every layer here.
    host_read += sum(layer.active_experts if experts_total else layer.experts for layer in cpu_layers)
    host_read += sum(layer.active_experts for layer in layers[count - gpu_layers :]) if experts_total else 0
    if not output_on_gpu:
        host_read += outside - used
    flags = f"-ngl {gpu_layers + output_on_gpu}"
    if experts_total:
        flags += " --cpu-moe"
    return Offload(
        method="llama.cpp --fit",
        gpu_layers=gpu_layers,
        total_layers=count,
        cpu_moe_layers=count if experts_total else 0,
        device_bytes=math.ceil(used),
        host_bytes=math.ceil(host),
        host_read_bytes_per_token=math.ceil(host_read),
        flags=flags,
    )


def streamed(
    profile: MemoryProfile, evaluation: Evaluation, missing_bytes: int, method: OffloadMethod
) -> Offload | None:
    """vLLM --cpu-offload-gb and accelerate's CPU offload keep `missing_bytes` of weights in
    host memory and copy them to the GPU for every forward pass. None when nothing is missing
    or the weights alone could not cover it (the KV cache cannot be offloaded this way)."""
    if missing_bytes <= 0:
        return None
    layers = layer_bytes(profile, evaluation)
    weights_in_layers = sum(layer.dense + layer.experts for layer in layers)
    if missing_bytes > weights_in_layers:
        return None
    if method == "vLLM --cpu-offload-gb":
        # A whole number of GiB per GPU.
        per_gpu_gib = math.ceil(missing_bytes / profile.gpus / BYTES_PER_GIB)
        moved = min(per_gpu_gib * BYTES_PER_GIB * profile.gpus, math.floor(weights_in_layers))
        flags = f"--cpu-offload-gb {per_gpu_gib}"
    else:
        moved = missing_bytes
        # accelerate's max_memory budgets parameters only: the cache and activations come on top.
        per_gpu_mib = max(0, (profile.weights_bytes - moved) // profile.gpus // BYTES_PER_MIB)
        flags = f'device_map="auto", max_memory={{GPU: "{per_gpu_mib}MiB", "cpu": ...}}'

    # Layers whose weights went to the host, counted from the front as both runtimes do.
    kept_layers, remaining = len(layers), moved
    for layer in layers:
        if remaining <= 0:
            break
        remaining -= layer.dense + layer.experts
        kept_layers -= 1
    return Offload(
        method=method,
        gpu_layers=kept_layers,
        total_layers=len(layers),
        cpu_moe_layers=0,
        device_bytes=max(0, int(evaluation.total_bytes) - moved),
        host_bytes=moved + profile.host_bytes,
        host_read_bytes_per_token=moved,
        flags=flags,
    )
