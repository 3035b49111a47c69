"""Self-host or API: cost per million tokens, monthly cost and break-even, checked by hand; the price files."""

import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from core.api_cost import (
    shipped_concurrency,
    ApiPrice,
    CostAssumptions,
    SelfHostCost,
    api_monthly_usd,
    break_even_tokens,
    deployments_needed,
    load_api_prices,
    load_device_prices,
    mixed_tokens_per_second,
    owned_monthly_usd,
    rental_monthly_usd,
    self_host_cost,
    self_host_monthly_usd,
    self_host_monthly_usd_array,
    usd_per_million_tokens,
    volume_grid,
)
from core.catalog import DATA_DIR, CatalogError
from core.estimate import MemoryRequest, PlanningError
from core.throughput import throughput

# One month of hours as the module defines it: 8,760 h / 12.
MONTH_HOURS = 730
# A device at 1,000 tokens/s busy all month: 1,000 x 3,600 x 730.
FULL_MONTH_TOKENS = 2_628_000_000


def price(input_usd: float, output_usd: float, provider: str = "Test") -> ApiPrice:
    return ApiPrice(
        provider=provider, model="gemma-4-31b", usd_per_million_input_tokens=input_usd,
        usd_per_million_output_tokens=output_usd, as_of=date(2026, 6, 1), source="hand",
    )  # fmt: skip


def deployment(monthly_usd: float, capacity_tokens: float) -> SelfHostCost:
    return SelfHostCost(
        device="test", gpus=1, pricing="rental", monthly_usd=monthly_usd, decode_tokens_per_second=1000,
        capacity_tokens_per_month=capacity_tokens, usd_per_million_output_tokens=0, usd_per_million_tokens=0,
        assumptions=[],
    )  # fmt: skip


@pytest.mark.parametrize(
    ("usd_per_hour", "tokens_per_second", "utilisation", "expected"),
    [
        (2.0, 1000, 1.0, 2 / 3.6),  # $2 an hour buys 3.6 M tokens: $0.556 per million
        (2.0, 1000, 0.5, 2 / 1.8),  # busy half the time: every token carries twice the rent
        (2.99, 250, 1.0, 2.99 / 0.9),  # an H100 at 250 tokens/s: 0.9 M tokens an hour
        (0.69, 100, 0.25, 0.69 / 0.09),  # a 4090 at 100 tokens/s busy a quarter of the time
    ],
)
def test_rented_cost_per_million_tokens_by_hand(usd_per_hour, tokens_per_second, utilisation, expected):
    monthly = rental_monthly_usd(usd_per_hour, 1)
    assert monthly == pytest.approx(usd_per_hour * MONTH_HOURS)
    assert usd_per_million_tokens(monthly, tokens_per_second, utilisation) == pytest.approx(expected)


def test_rented_devices_add_up():
    assert rental_monthly_usd(2.99, 8) == pytest.approx(8 * 2.99 * 730)


def test_owned_cost_is_amortisation_plus_electricity_by_hand():
    assumptions = CostAssumptions(utilisation=0.5, amortisation_months=36, usd_per_kwh=0.20)
    # $1,800 over 36 months = $50; 450 W for 365 busy hours = 164.25 kWh at $0.20 = $32.85.
    assert owned_monthly_usd(1800, 1, 450, assumptions) == pytest.approx(50 + 32.85)
    # Two cards: twice both parts.
    assert owned_monthly_usd(1800, 2, 450, assumptions) == pytest.approx(2 * 82.85)
    # No power figure: amortisation alone.
    assert owned_monthly_usd(1800, 1, None, assumptions) == pytest.approx(50)


def test_prompt_tokens_take_prefill_time_by_hand():
    # One output token: 1/1000 s of decode; three input tokens: 3/10000 s of prefill; 4 tokens
    # in 1.3 ms.
    assert mixed_tokens_per_second(1000, 10_000, 3) == pytest.approx(4 / 0.0013)
    # No prefill figure: input is free, so four tokens come with each decode step.
    assert mixed_tokens_per_second(1000, None, 3) == pytest.approx(4000)
    assert mixed_tokens_per_second(1000, 10_000, 0) == pytest.approx(1000)


def test_api_monthly_cost_by_hand():
    # 100 M tokens at 3 in : 1 out = 75 M in at $0.14 + 25 M out at $0.40 = $10.50 + $10.00.
    assert api_monthly_usd(price(0.14, 0.40), 100_000_000, 3) == pytest.approx(20.50)
    assert price(0.14, 0.40).blended_usd_per_million_tokens(3) == pytest.approx(0.205)
    assert api_monthly_usd(price(0.14, 0.40), 100_000_000, 0) == pytest.approx(40.0)


def test_break_even_by_hand():
    # $2/h all month = $1,460 a month; the device serves 2.628 B tokens a month.
    own = deployment(2 * 730, FULL_MONTH_TOKENS)
    # Output-only at $1 per million: the API costs $1,460 at 1.46 B tokens.
    assert break_even_tokens(own, price(0, 1.0), 0) == pytest.approx(1.46e9)
    # At $0.40 per million the API would need 3.65 B tokens, more than the device serves: the
    # device at full speed costs $0.556 per million, so the API stays cheaper at every volume.
    assert break_even_tokens(own, price(0, 0.40), 0) is None
    # The mix matters: 3:1 at $0.10 in / $3 out blends to $0.825 per million: 1.7697 B tokens.
    assert break_even_tokens(own, price(0.10, 3.0), 3) == pytest.approx(1460 / 0.825e-6)
    # A free API never loses.
    assert break_even_tokens(own, price(0, 0), 3) is None


def test_deployments_step_up_when_one_is_full():
    own = deployment(1000, 1e9)
    assert deployments_needed(own, 1) == 1
    assert deployments_needed(own, 1e9) == 1
    assert deployments_needed(own, 1e9 + 1) == 2
    assert self_host_monthly_usd(own, 2.5e9) == 3000


def test_vectorised_self_host_cost_agrees_with_scalar():
    own = deployment(1234.5, 3.3e9)
    volumes = np.logspace(6, 12, 61)
    curve = self_host_monthly_usd_array(own, volumes)
    assert curve.tolist() == pytest.approx([self_host_monthly_usd(own, v) for v in volumes])


def test_volume_grid_covers_capacity_and_break_even():
    own = deployment(1000, 2e9)
    grid = volume_grid(own, [5e9])
    assert grid[0] == 1e6 and grid[-1] == 1e11  # 10 x 5e9 rounds up to the 1e11 decade
    assert volume_grid(own, [])[-1] == 1e11
    assert volume_grid(deployment(1, 10.0), [])[-1] == 1e9  # never fewer than three decades


# --- a real plan ---------------------------------------------------------------------------


H100_26B = MemoryRequest(
    model="gemma-4-26b-a4b", weight_format="fp8", engine="vllm", context_tokens=4096, concurrent_sequences=32, gpu="h100"
)


def test_rented_plan_prices_the_throughput_estimate(catalog):
    assumptions = CostAssumptions(utilisation=1.0)
    cost = self_host_cost(H100_26B, assumptions, catalog)
    speed = throughput(H100_26B, catalog=catalog)
    # gpus.csv: $2.99 per H100-hour, every hour of the month.
    assert cost.monthly_usd == pytest.approx(2.99 * 730)
    assert cost.usd_per_million_output_tokens == pytest.approx(2.99 / 3600 / speed.decode_tokens_per_second * 1e6)
    # At full utilisation the figure is the throughput page's own $ per million output tokens.
    assert cost.usd_per_million_output_tokens == pytest.approx(speed.usd_per_million_output_tokens)
    half = self_host_cost(H100_26B, CostAssumptions(utilisation=0.5), catalog)
    assert half.usd_per_million_output_tokens == pytest.approx(2 * cost.usd_per_million_output_tokens)
    assert half.capacity_tokens_per_month == pytest.approx(cost.capacity_tokens_per_month / 2)


def test_bought_plan_uses_the_purchase_price_and_the_board_power(catalog):
    request = MemoryRequest(model="gemma-4-26b-a4b", weight_format="gguf-q4_k_m", engine="llama.cpp", context_tokens=8192, gpu="rtx-4090")
    cost = self_host_cost(request, CostAssumptions(pricing="purchase"), catalog)
    # device_prices.csv: $1,599 over 36 months; gpus.csv: 450 W for 365 busy hours at $0.15.
    assert cost.monthly_usd == pytest.approx(1599 / 36 + 0.450 * 365 * 0.15)


def test_a_plan_that_does_not_fit_has_no_self_hosting_cost(catalog):
    request = MemoryRequest(model="gemma-4-31b", weight_format="bf16", engine="vllm", context_tokens=8192, gpu="rtx-4090")
    with pytest.raises(PlanningError, match="does not fit"):
        self_host_cost(request, CostAssumptions(), catalog)


def test_a_device_without_the_chosen_price_says_which_price_is_missing(catalog):
    with pytest.raises(PlanningError, match="no purchase price"):
        self_host_cost(H100_26B, CostAssumptions(pricing="purchase"), catalog)
    request = MemoryRequest(model="gemma-4-e2b", weight_format="gguf-q4_k_m", engine="llama.cpp", context_tokens=4096, gpu="rpi5-8gb")
    with pytest.raises(PlanningError, match="no catalogued hourly price"):
        self_host_cost(request, CostAssumptions(), catalog)


def test_assumptions_are_bounded():
    with pytest.raises(ValueError):
        CostAssumptions(utilisation=0)
    with pytest.raises(ValueError):
        CostAssumptions(utilisation=1.5)
    with pytest.raises(ValueError):
        CostAssumptions(amortisation_months=0)
    for name, field in CostAssumptions.model_fields.items():
        assert field.description, f"{name} has no label"


# --- the price files -----------------------------------------------------------------------


def test_shipped_price_files_load_with_catalogue_ids_and_past_dates(catalog):
    prices = load_api_prices()
    assert len(prices) >= 10
    model_ids = {m.id for m in catalog.models}
    assert {p.model for p in prices} <= model_ids
    assert all(p.as_of <= date.today() and p.source for p in prices)
    devices = load_device_prices()
    assert devices["nvidia-rtx-4090"].usd_purchase == 1599  # NVIDIA's launch price, 2022-09-20
    assert set(devices) <= {a.id for a in catalog.accelerators}


@pytest.fixture
def data(tmp_path: Path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(DATA_DIR, copy)
    return copy


def replace_cell(path: Path, line: int, column: str, value: str) -> None:
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[line - 1].split(",")
    cells[header.index(column)] = value
    lines[line - 1] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("column", "value", "field", "problem"),
    [
        ("usd_per_million_output_tokens", "cheap", "usd_per_million_output_tokens", "valid number"),
        ("usd_per_million_input_tokens", "-1", "usd_per_million_input_tokens", "greater than or equal to 0"),
        ("as_of", "2026-13-01", "as_of", "date"),
        ("model", "gemma-5", "model", "not a model id"),
    ],
)
def test_a_malformed_api_price_names_file_row_and_field(data, column, value, field, problem):
    replace_cell(data / "api_prices.csv", 3, column, value)
    with pytest.raises(CatalogError) as raised:
        load_api_prices(data)
    message = str(raised.value)
    assert "api_prices.csv" in message and "line 3" in message and f"field '{field}'" in message
    assert problem in message


@pytest.mark.parametrize(
    ("column", "value", "field", "problem"),
    [
        ("usd_purchase", "0", "usd_purchase", "greater than 0"),
        ("device", "nvidia-rtx-9090", "device", "not a device id"),
        ("device", "nvidia-rtx-5090", "device", "priced twice"),
    ],
)
def test_a_malformed_device_price_names_file_row_and_field(data, column, value, field, problem):
    replace_cell(data / "device_prices.csv", 3, column, value)
    with pytest.raises(CatalogError) as raised:
        load_device_prices(data)
    message = str(raised.value)
    assert "device_prices.csv" in message and "line 3" in message and f"field '{field}'" in message
    assert problem in message


def test_a_missing_price_column_is_named(data):
    path = data / "api_prices.csv"
    path.write_text(path.read_text().replace("as_of,", "date,", 1))
    with pytest.raises(CatalogError, match="field 'as_of': column is missing"):
        load_api_prices(data)


@pytest.mark.parametrize(
    ("engine", "weights", "expected"),
    [
        # E2B at 4K leaves room for more than 1,024 requests on an H200 (at 8K each request's
        # sliding windows also hold the 2 x 8,192 tokens async scheduling keeps in flight, and
        # the pool takes about 830): vLLM stops at its
        # --max-num-seqs default for a GPU of >= 70 GiB that is not an A100 (1024,
        # vllm/engine/arg_utils.py @99d7eb5 _set_default_args), llama-server at its -np auto
        # slots (4, tools/server README), Ollama at OLLAMA_NUM_PARALLEL's default (1, envconfig/config.go).
        ("vllm", "bf16", 1024),
        ("llama.cpp", "gguf-q4_k_m", 4),
        ("ollama", "ollama-q4_k_m", 1),
    ],
)
def test_shipped_concurrency_is_each_runtimes_own_cap_when_memory_allows(catalog, engine, weights, expected):
    from core.runtimes import default_kv_cache

    request = MemoryRequest(
        model="e2b", engine=engine, weight_format=weights, kv_cache_dtype=default_kv_cache(engine), gpu="h200", context_tokens=4096
    )
    assert shipped_concurrency(request, catalog) == expected


def test_shipped_concurrency_is_what_the_kv_pool_holds_below_the_cap(catalog):
    # 31B FP8 (~33 GB of weights) on one H200 at 128K: each request's 10 full-attention layers
    # alone hold 10 x 2 x 4 x 512 x 2 B x 131,072 = 10 GiB (gemma4-architecture.md), so vLLM's
    # 0.92 x 141 GB pool holds a handful of requests, far short of 1024; one more does not fit.
    request = MemoryRequest(model="31b", engine="vllm", weight_format="fp8", gpu="h200", context_tokens=131072)
    most = shipped_concurrency(request, catalog)
    assert 2 <= most <= 9
    from core.fit import fit

    on_gpu = ("fits", "tight")
    assert fit(request.model_copy(update={"concurrent_sequences": most}), catalog).verdict in on_gpu
    assert fit(request.model_copy(update={"concurrent_sequences": most + 1}), catalog).verdict not in on_gpu
