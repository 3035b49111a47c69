"""Self-host or API: what a plan costs per million tokens on its own device against hosted Gemma 4 prices."""

from __future__ import annotations

import math
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from core.catalog import Catalog, CatalogError, _data_dir, _display, _read_csv, load_catalog
from core.engines.llama_cpp import AUTO_SLOTS
from core.engines.registry import engine_policy
from core.engines.vllm import VllmPolicy
from core.estimate import MemoryRequest, PlanningError
from core.fit import fit
from core.throughput import SECONDS_PER_HOUR, TOKENS_PER_MILLION, ThroughputAssumptions, throughput

# 8,760 hours in a (non-leap) year over 12 months: the month every monthly figure here means.
HOURS_PER_MONTH = 730
WATTS_PER_KILOWATT = 1000
Pricing = Literal["rental", "purchase"]


class ApiPrice(BaseModel):
    """One provider's published price for one Gemma 4 model (data/api_prices.csv)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: str = Field(min_length=1)
    model: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    tier: str | None = None
    usd_per_million_input_tokens: float = Field(ge=0, allow_inf_nan=False)
    usd_per_million_output_tokens: float = Field(ge=0, allow_inf_nan=False)
    as_of: date
    source: str = Field(min_length=1)
    notes: str | None = None

    @property
    def label(self) -> str:
        return f"{self.provider} · {self.tier}" if self.tier else self.provider

    def blended_usd_per_million_tokens(self, input_tokens_per_output_token: float) -> float:
        """Price of a million tokens, input and output together, in the given mix."""
        ratio = input_tokens_per_output_token
        return (ratio * self.usd_per_million_input_tokens + self.usd_per_million_output_tokens) / (1 + ratio)


class DevicePrice(BaseModel):
    """What one device costs to buy (data/device_prices.csv)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    device: str = Field(min_length=1)
    usd_purchase: float = Field(gt=0, allow_inf_nan=False)
    as_of: date
    source: str = Field(min_length=1)
    notes: str | None = None


class CostAssumptions(BaseModel):
    """Everything the comparison assumes; each figure is the user's to change."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    pricing: Pricing = Field(
        default="rental",
        description="rental: the device's on-demand cloud price per hour, paid every hour of the month; "
        "purchase: its purchase price spread over the amortisation months, plus electricity",
    )
    # Assumption: traffic has peaks and quiet hours, so a deployment sized for its peaks is busy
    # about half the time; 1.0 is a batch job that keeps it saturated.
    utilisation: float = Field(
        default=0.5, gt=0, le=1, description="share of the month's hours the device is generating at its full speed"
    )
    # Assumption: three years, a common depreciation schedule for servers and GPUs.
    amortisation_months: int = Field(default=36, ge=1, le=120, description="months a bought device is paid off over")
    # Assumption: about what US businesses paid per kWh in 2025; set your own tariff.
    usd_per_kwh: float = Field(default=0.15, ge=0, le=10, description="electricity price, USD per kWh")
    # Assumption: chat and retrieval prompts run several times longer than their answers.
    input_tokens_per_output_token: float = Field(
        default=3.0, ge=0, le=1000, description="input (prompt) tokens per output (generated) token"
    )
    monthly_tokens: int = Field(
        default=100_000_000, ge=1, le=10**15, description="tokens a month, input and output together"
    )


class SelfHostCost(BaseModel):
    """One deployment of a plan (its device count on its device), held for a month."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    device: str
    gpus: int = Field(gt=0)
    pricing: Pricing
    monthly_usd: float = Field(gt=0, description="one deployment for a month: rent, or amortisation plus electricity")
    decode_tokens_per_second: float = Field(gt=0, description="all sequences together, at the plan's concurrency")
    prefill_tokens_per_second: float | None = Field(default=None, gt=0)
    capacity_tokens_per_month: float = Field(
        gt=0, description="input and output tokens one deployment serves a month at the assumed utilisation"
    )
    usd_per_million_output_tokens: float = Field(ge=0, description="decode time only, at the assumed utilisation")
    usd_per_million_tokens: float = Field(ge=0, description="input and output in the assumed mix, prefill time included")
    assumptions: list[str]


def rental_monthly_usd(usd_per_hour_per_device: float, devices: int) -> float:
    """A rented deployment is paid for every hour of the month, busy or not."""
    return usd_per_hour_per_device * devices * HOURS_PER_MONTH


def owned_monthly_usd(usd_purchase_per_device: float, devices: int, tdp_w: float | None, assumptions: CostAssumptions) -> float:
    """A bought deployment: its price over the amortisation months, plus power at the board's
    rated draw for the busy hours (idle draw and the host machine are left out)."""
    amortisation = usd_purchase_per_device * devices / assumptions.amortisation_months
    busy_hours = HOURS_PER_MONTH * assumptions.utilisation
    electricity = devices * (tdp_w or 0) / WATTS_PER_KILOWATT * busy_hours * assumptions.usd_per_kwh
    return amortisation + electricity


def busy_seconds_per_month(utilisation: float) -> float:
    return HOURS_PER_MONTH * SECONDS_PER_HOUR * utilisation


def usd_per_million_tokens(monthly_usd: float, tokens_per_second: float, utilisation: float) -> float:
    """Monthly cost over the tokens a month's busy hours produce, per million."""
    return monthly_usd / (tokens_per_second * busy_seconds_per_month(utilisation)) * TOKENS_PER_MILLION


def mixed_tokens_per_second(decode: float, prefill: float | None, input_tokens_per_output_token: float) -> float:
    """Input and output tokens per second for a mix of `ratio` input tokens per output token:
    each output token takes a decode step's share, each input token a prefill share (no
    prefill figure: input is taken as free, which flatters self-hosting)."""
    ratio = input_tokens_per_output_token
    seconds = 1 / decode + (ratio / prefill if prefill else 0.0)
    return (1 + ratio) / seconds


def api_monthly_usd(price: ApiPrice, monthly_tokens: float, input_tokens_per_output_token: float) -> float:
    return monthly_tokens * price.blended_usd_per_million_tokens(input_tokens_per_output_token) / TOKENS_PER_MILLION


def deployments_needed(cost: SelfHostCost, monthly_tokens: float) -> int:
    """Deployments (each the plan's device count) that serve the volume; at least one."""
    return max(1, math.ceil(monthly_tokens / cost.capacity_tokens_per_month))


def self_host_monthly_usd(cost: SelfHostCost, monthly_tokens: float) -> float:
    return deployments_needed(cost, monthly_tokens) * cost.monthly_usd


def self_host_monthly_usd_array(cost: SelfHostCost, monthly_tokens: np.ndarray) -> np.ndarray:
    """self_host_monthly_usd over many volumes at once (the chart's curve)."""
    deployments = np.maximum(1, np.ceil(monthly_tokens / cost.capacity_tokens_per_month))
    return deployments * cost.monthly_usd


def break_even_tokens(cost: SelfHostCost, price: ApiPrice, input_tokens_per_output_token: float) -> float | None:
    """Monthly tokens above which self-hosting costs no more than the API, or None when the API
    is cheaper at every volume. One deployment's cost is fixed, so the API catches up with it
    at cost / API price; past one deployment's capacity every further deployment is filled at
    the same rate, so if the first is not paid back within its capacity, none is."""
    blended = price.blended_usd_per_million_tokens(input_tokens_per_output_token) / TOKENS_PER_MILLION
    if blended <= 0:
        return None
    tokens = cost.monthly_usd / blended
    return tokens if tokens <= cost.capacity_tokens_per_month else None


def shipped_concurrency(request: MemoryRequest, catalog: Catalog | None = None) -> int:
    """Requests the plan's runtime serves at once on its device as shipped, at the plan's
    context: vLLM batches as many as its KV pool holds, up to --max-num-seqs (its default: 1,024 on
    a GPU of >= 70 GiB other than an A100, else 256; core.engines.vllm.default_step); llama-server's
    default -np auto gives 4 slots (runtimes.md §3.1); Ollama serves one per model
    (OLLAMA_NUM_PARALLEL 1, §2.3); MLX and transformers: one (their batching is not modelled).
    Never below 1: a plan with no room for a request still prices one (and is refused as not fitting)."""
    catalog = catalog or load_catalog()
    most = max(1, fit(request.model_copy(update={"concurrent_sequences": 1}), catalog).max_concurrent_sequences)
    engine = engine_policy(request.engine).id
    if engine == "vllm":
        accelerator = catalog.accelerator(request.gpu) if request.gpu else None
        settings = engine_policy(request.engine).device_settings(request.engine_settings, accelerator)
        return min(most, VllmPolicy.sequence_cap(settings))
    if engine == "llama.cpp" and request.engine_settings.auto_slots:
        return min(most, AUTO_SLOTS)
    return 1


def self_host_cost(
    request: MemoryRequest,
    assumptions: CostAssumptions,
    catalog: Catalog | None = None,
    device_prices: dict[str, DevicePrice] | None = None,
    throughput_assumptions: ThroughputAssumptions = ThroughputAssumptions(),
) -> SelfHostCost:
    """The plan's cost on its own device(s). Raises PlanningError when the plan does not fit
    there (it has no self-hosting cost) or the device has no price of the chosen kind."""
    catalog = catalog or load_catalog()
    if not request.gpu:
        raise PlanningError("a self-hosting cost needs a device: set gpu (e.g. h100, rtx-4090)")
    accelerator = catalog.accelerator(request.gpu)
    fitted = fit(request, catalog)
    count = f"{request.gpus} x " if request.gpus > 1 else ""
    if fitted.verdict == "does_not_fit":
        raise PlanningError(
            f"the plan does not fit on {count}{accelerator.name}, so it has no self-hosting cost there; "
            "choose a smaller format, context or concurrency, or more devices"
        )
    speed = throughput(request, throughput_assumptions, catalog)
    devices = request.gpus
    notes = [
        f"Decode: {speed.decode_tokens_per_second:,.0f} tokens/s for {speed.concurrent_sequences} sequence(s) together, "
        "the throughput page's estimate (the slowest step, at a full context).",
        f"Busy {assumptions.utilisation:.0%} of the month's {HOURS_PER_MONTH} hours; the rest of the time the "
        "device waits for traffic.",
    ]
    if assumptions.pricing == "rental":
        if accelerator.usd_per_hour is None:
            raise PlanningError(
                f"{accelerator.name} has no catalogued hourly price (gpus.csv usd_per_hour); choose 'purchase' "
                "if it has a purchase price, or another device"
            )
        monthly = rental_monthly_usd(accelerator.usd_per_hour, devices)
        notes.append(
            f"Rented at ${accelerator.usd_per_hour:,.2f} per device-hour (gpus.csv), every hour of the month."
        )
    else:
        price = (device_prices if device_prices is not None else load_device_prices()).get(accelerator.id)
        if price is None:
            raise PlanningError(
                f"{accelerator.name} has no purchase price in device_prices.csv; choose 'rental' or another device"
            )
        monthly = owned_monthly_usd(price.usd_purchase, devices, accelerator.tdp_w, assumptions)
        power = (
            f"{accelerator.tdp_w:,.0f} W per device while busy, at ${assumptions.usd_per_kwh:,.2f} per kWh"
            if accelerator.tdp_w
            else "no power figure in gpus.csv, so no electricity"
        )
        notes.append(
            f"Bought at ${price.usd_purchase:,.0f} per device ({price.as_of.isoformat()}), paid off over "
            f"{assumptions.amortisation_months} months; {power}. The host machine, idle power, "
            "cooling and staff are not counted."
        )
    mixed = mixed_tokens_per_second(
        speed.decode_tokens_per_second, speed.prefill_tokens_per_second, assumptions.input_tokens_per_output_token
    )
    if speed.prefill_tokens_per_second is None:
        notes.append(f"{accelerator.name} has no compute figure, so prompt (input) tokens are taken as free to process.")
    else:
        notes.append(
            f"Prompt tokens are processed at {speed.prefill_tokens_per_second:,.0f} tokens/s (prefill estimate), "
            f"{assumptions.input_tokens_per_output_token:g} per output token."
        )
    if fitted.verdict == "fits_with_offload":
        notes.append("The plan runs with part of the model in host memory; the speed estimate includes that.")
    return SelfHostCost(
        device=accelerator.id,
        gpus=devices,
        pricing=assumptions.pricing,
        monthly_usd=monthly,
        decode_tokens_per_second=speed.decode_tokens_per_second,
        prefill_tokens_per_second=speed.prefill_tokens_per_second,
        capacity_tokens_per_month=mixed * busy_seconds_per_month(assumptions.utilisation),
        usd_per_million_output_tokens=usd_per_million_tokens(
            monthly, speed.decode_tokens_per_second, assumptions.utilisation
        ),
        usd_per_million_tokens=usd_per_million_tokens(monthly, mixed, assumptions.utilisation),
        assumptions=notes,
    )


def volume_grid(cost: SelfHostCost, break_evens: list[float], points: int = 121) -> np.ndarray:
    """Monthly volumes for the chart: whole decades from 1M tokens to ten times the larger of
    one deployment's capacity and the latest break-even, so both show with room to spare."""
    top = max([cost.capacity_tokens_per_month, *break_evens]) * 10
    high = min(15, max(9, math.ceil(math.log10(top))))
    return np.logspace(6, high, points)


# --- the price files -----------------------------------------------------------------------


def load_api_prices(data_dir: Path | None = None) -> tuple[ApiPrice, ...]:
    """data/api_prices.csv, validated: every model is a catalogue model id."""
    return _load_api_prices(_data_dir(data_dir))


def load_device_prices(data_dir: Path | None = None) -> dict[str, DevicePrice]:
    """data/device_prices.csv by device id, validated: every device is in gpus.csv, once."""
    return _load_device_prices(_data_dir(data_dir))


@lru_cache(maxsize=4)
def _load_api_prices(data_dir: Path) -> tuple[ApiPrice, ...]:
    path = data_dir / "api_prices.csv"
    rows = _read_csv(path, ApiPrice)
    model_ids = {model.id for model in load_catalog(data_dir).models}
    for row_number, row in enumerate(rows, start=1):
        if row.model not in model_ids:
            raise CatalogError(
                _display(path), f"line {row_number + 1} (row {row_number}, '{row.provider}')", "model",
                f"'{row.model}' is not a model id (choose one of: {', '.join(sorted(model_ids))})",
            )  # fmt: skip
    return tuple(rows)


@lru_cache(maxsize=4)
def _load_device_prices(data_dir: Path) -> dict[str, DevicePrice]:
    path = data_dir / "device_prices.csv"
    rows = _read_csv(path, DevicePrice)
    devices = {accelerator.id for accelerator in load_catalog(data_dir).accelerators}
    prices: dict[str, DevicePrice] = {}
    for row_number, row in enumerate(rows, start=1):
        where = f"line {row_number + 1} (row {row_number}, '{row.device}')"
        if row.device not in devices:
            raise CatalogError(_display(path), where, "device", f"'{row.device}' is not a device id in gpus.csv")
        if row.device in prices:
            raise CatalogError(_display(path), where, "device", f"'{row.device}' is priced twice")
        prices[row.device] = row
    return prices
