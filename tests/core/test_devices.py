"""The device catalogue (data/gpus.csv) against published figures: vendor bandwidths, driver
readings, Apple's Metal working-set rule, the per-kind conventions, and look-up by alias.

Expected values are typed in from the sources named beside them (spec pages, nvidia-smi /
rocm-smi / llama.cpp logs), never read back from the CSV."""

import re

import pytest

from core.catalog import Accelerator, Catalog

GiB = 2**30
MiB = 2**20


def rows(catalog: Catalog, kind: str) -> list[Accelerator]:
    return [device for device in catalog.accelerators if device.kind == kind]


# --- the file as a whole -----------------------------------------------------------------------


def test_catalogue_loads_with_every_kind(catalog: Catalog) -> None:
    kinds = {device.kind for device in catalog.accelerators}
    assert {"datacenter", "workstation", "consumer", "laptop", "apple", "apu", "edge", "sbc", "mobile", "cpu"} <= kinds
    assert len(catalog.accelerators) >= 140


def test_every_row_names_its_sources(catalog: Catalog) -> None:
    for device in catalog.accelerators:
        assert device.source.strip(), device.id
        assert device.memory_basis.strip(), device.id


def test_aliases_are_lowercase(catalog: Catalog) -> None:
    for device in catalog.accelerators:
        for alias in device.aliases:
            assert alias == alias.lower(), (device.id, alias)


def test_every_row_but_unpublished_phones_has_a_bandwidth(catalog: Catalog) -> None:
    """Phone makers (Apple, Google) do not publish memory bandwidth; everything else must say."""
    for device in catalog.accelerators:
        if device.platform != "phone":
            assert device.memory_bandwidth_gbs is not None, device.id


def test_unified_memory_rows_name_no_separate_host_ram(catalog: Catalog) -> None:
    for device in catalog.accelerators:
        if catalog.runtime(device.kind).unified_memory:
            assert device.host_memory_bytes is None, device.id


def test_memory_is_at_most_the_marketed_capacity(catalog: Catalog) -> None:
    """Drivers report a little less than the binary capacity; nothing reports more."""
    for device in catalog.accelerators:
        assert device.memory_bytes <= device.memory_gb_marketing * GiB, device.id


# --- driver readings: the bytes are what the quoted reading says -------------------------------


def test_nvidia_smi_readings_convert_exactly(catalog: Catalog) -> None:
    checked = 0
    for device in catalog.accelerators:
        found = re.match(r"nvidia-smi (\d+) MiB", device.memory_basis)
        if found and device.id not in {"amd-mi250x"}:
            assert device.memory_bytes == int(found.group(1)) * MiB, device.id
            checked += 1
    assert checked >= 40


def test_rocm_smi_readings_convert_exactly(catalog: Catalog) -> None:
    for device in catalog.accelerators:
        found = re.match(r"rocm-smi (\d+) B", device.memory_basis)
        if found:
            assert device.memory_bytes == int(found.group(1)), device.id


def test_metal_log_readings_convert_exactly(catalog: Catalog) -> None:
    """llama.cpp prints recommendedMaxWorkingSetSize in MB of 10^6 bytes."""
    checked = 0
    for device in catalog.accelerators:
        found = re.search(r"recommendedMaxWorkingSetSize ([\d.]+) MB", device.memory_basis)
        if found:
            assert device.memory_bytes == round(float(found.group(1)) * 1e6), device.id
            checked += 1
    assert checked >= 25


@pytest.mark.parametrize(
    ("name", "mib"),
    [
        ("rtx 5060 ti 16gb", 16311),  # nvidia-smi '0MiB / 16311MiB' (several public logs)
        ("rtx 5060 ti 8gb", 8151),  # 'NVIDIA GeForce RTX 5060 Ti, 8151 MiB'
        ("rtx 5060", 8151),  # 'NVIDIA GeForce RTX 5060 ... 8151MiB'
        ("rtx 5070", 12227),  # 'NVIDIA GeForce RTX 5070, 12227 MiB'
        ("rtx 4060", 8188),  # 'NVIDIA GeForce RTX 4060, 8188'
        ("rtx 4070 super", 12282),  # 'NVIDIA GeForce RTX 4070 SUPER, 12282 MiB'
        ("rtx 4080 super", 16376),  # 'NVIDIA GeForce RTX 4080 SUPER, 16376 MiB'
        ("rtx 3080", 10240),  # 'NVIDIA GeForce RTX 3080, 10240 MiB'
        ("rtx 3090 ti", 24564),  # 'NVIDIA GeForce RTX 3090 Ti, 24564 MiB'
        ("rtx 5090 laptop", 24463),  # 'RTX 5090 Laptop GPU, 24,463 MiB'
        ("rtx 4090 laptop", 16376),  # 'RTX 4090 Laptop GPU, 16,376 MiB'
        ("rtx pro 5000", 48935),  # 'NVIDIA RTX PRO 5000 Blackwell, 48935 MiB'
        ("rtx pro 4500", 32623),  # 'RTX PRO 4500 Blackwell, 32623 MiB'
        ("r9700", 32624),  # llama-cli 'ROCm0: AMD Radeon AI PRO R9700 (32624 MiB'
        ("9070 xt", 16304),  # llama.cpp 'Vulkan0 : AMD Radeon RX 9070 XT (16304 MiB'
        ("b580", 12216),  # llama-server 'SYCL0: Intel(R) Arc(TM) B580 Graphics (12216 MiB'
        ("b570", 10172),  # llama.cpp 'Intel(R) Arc(tm) B570 Graphics (BMG G21) (10172 MiB)'
        ("pro b60", 24480),  # llama.cpp 'Intel(R) Arc(tm) Pro B60 Graphics (BMG G21) (24480 MiB'
        ("orin nx 16gb", 15656),  # tegrastats 'RAM x/15656MB'
        ("agx orin 32gb", 30536),  # tegrastats 'RAM x/30536MB'
        ("pi5-8gb", 8062),  # Pi 5 8 GB: '8062 MiB RAM' (two public logs)
    ],
)
def test_driver_readings(catalog: Catalog, name: str, mib: int) -> None:
    assert catalog.accelerator(name).memory_bytes == mib * MiB


def test_w7900_rocm_reading(catalog: Catalog) -> None:
    assert catalog.accelerator("w7900").memory_bytes == 51522830336  # rocm-smi VRAM Total Memory (B)


def test_dgx_spark_memory_is_memtotal(catalog: Catalog) -> None:
    # MemTotal: 127600748 kB on a GB10 (nvitop PR #208) = the 121.69 GiB CUDA reports
    spark = catalog.accelerator("dgx spark")
    assert spark.memory_bytes == 127600748 * 1024
    assert round(spark.memory_bytes / GiB, 2) == 121.69


# --- published specs: architecture, kind, platform, bandwidth ----------------------------------


@pytest.mark.parametrize(
    ("name", "kind", "platform", "architecture", "gb", "bandwidth"),
    [
        ("m1 8gb", "apple", "apple", "apple-m1", 8, 68.25),  # LPDDR4X-4266 x 128-bit
        ("m1 max 64gb", "apple", "apple", "apple-m1", 64, 400),
        ("m2 ultra 128gb", "apple", "apple", "apple-m2", 128, 800),
        ("m3 pro 18gb", "apple", "apple", "apple-m3", 18, 150),
        ("m3 max 36gb", "apple", "apple", "apple-m3", 36, 300),  # 30-core GPU bin
        ("m3 max 48gb", "apple", "apple", "apple-m3", 48, 400),  # 40-core GPU
        ("m3 ultra 256gb", "apple", "apple", "apple-m3", 256, 819),
        ("m4 24gb", "apple", "apple", "apple-m4", 24, 120),
        ("m4 pro 24gb", "apple", "apple", "apple-m4", 24, 273),
        ("m4 max 36gb", "apple", "apple", "apple-m4", 36, 410),  # 32-core GPU bin
        ("m4 max 64gb", "apple", "apple", "apple-m4", 64, 546),
        ("m5 16gb", "apple", "apple", "apple-m5", 16, 153),
        ("m5 pro 64gb", "apple", "apple", "apple-m5", 64, 307),
        ("m5 max 128gb", "apple", "apple", "apple-m5", 128, 614),
        ("rtx 5060 ti 16gb", "consumer", "nvidia", "blackwell", 16, 448),
        ("rtx 5070", "consumer", "nvidia", "blackwell", 12, 672),
        ("rtx 4060", "consumer", "nvidia", "ada", 8, 272),
        ("rtx 4070", "consumer", "nvidia", "ada", 12, 504),
        ("rtx 4080 super", "consumer", "nvidia", "ada", 16, 736),
        ("rtx 3060 ti", "consumer", "nvidia", "ampere", 8, 448),
        ("rtx 3080", "consumer", "nvidia", "ampere", 10, 760),
        ("rtx 3080 12gb", "consumer", "nvidia", "ampere", 12, 912),
        ("rtx 3090 ti", "consumer", "nvidia", "ampere", 24, 1008),
        ("rtx 5090 laptop", "laptop", "nvidia", "blackwell", 24, 896),
        ("rtx 4060 laptop", "laptop", "nvidia", "ada", 8, 256),
        ("rtx pro 4000", "workstation", "nvidia", "blackwell", 24, 672),
        ("rtx pro 5000", "workstation", "nvidia", "blackwell", 48, 1344),
        ("rtx pro 6000", "datacenter", "nvidia", "blackwell", 96, 1792),
        ("7900 xt", "consumer", "amd", "rdna3", 20, 800),
        ("7800 xt", "consumer", "amd", "rdna3", 16, 624),
        ("9070 xt", "consumer", "amd", "rdna4", 16, 640),
        ("r9700", "workstation", "amd", "rdna4", 32, 640),
        ("w7900", "workstation", "amd", "rdna3", 48, 864),
        ("strix halo", "apu", "amd", "rdna3.5", 128, 256),  # LPDDR5X-8000 x 256-bit
        ("b580", "consumer", "intel", "battlemage", 12, 456),
        ("b570", "consumer", "intel", "battlemage", 10, 380),
        ("pro b60", "workstation", "intel", "battlemage", 24, 456),
        ("orin nano 4gb", "edge", "nvidia", "ampere", 4, 34),
        ("orin nx 8gb", "edge", "nvidia", "ampere", 8, 102.4),
        ("agx orin 32gb", "edge", "nvidia", "ampere", 32, 204.8),
        ("agx thor", "edge", "nvidia", "blackwell", 128, 273),
        ("dgx spark", "apu", "nvidia", "blackwell", 128, 273),
        ("pi5-4gb", "sbc", "cpu", "cortex-a76", 4, 17.1),
        ("rpi4", "sbc", "cpu", "cortex-a72", 8, 12.8),  # LPDDR4-3200 x 32-bit
        ("iphone 17 pro", "iphone", "phone", "a19-pro", 12, None),
        ("galaxy s25 ultra", "mobile", "phone", "snapdragon-8-elite", 12, 84.8),
        ("pixel 10 pro", "mobile", "phone", "tensor-g5", 16, None),
    ],
)
def test_published_specs(
    catalog: Catalog, name: str, kind: str, platform: str, architecture: str, gb: float, bandwidth: float | None
) -> None:
    device = catalog.accelerator(name)
    assert (device.kind, device.platform, device.architecture) == (kind, platform, architecture)
    assert device.memory_gb_marketing == gb
    assert device.memory_bandwidth_gbs == (pytest.approx(bandwidth) if bandwidth is not None else None)


@pytest.mark.parametrize(("gb", "name"), [(32, "cpu-desktop-32gb"), (64, "cpu-desktop-64gb")])
def test_ddr5_desktops(catalog: Catalog, gb: int, name: str) -> None:
    device = catalog.accelerator(name)
    assert (device.kind, device.platform, device.architecture) == ("cpu", "cpu", "x86-64")
    assert device.memory_bandwidth_gbs == pytest.approx(5600e6 * 8 * 2 / 1e9)  # DDR5-5600, 2 channels
    assert 0.9 * gb * GiB < device.memory_bytes < gb * GiB


def test_geforce_generations(catalog: Catalog) -> None:
    """NVFP4 is keyed on 'blackwell': the generation must follow the model number."""
    generation = {"30": "ampere", "40": "ada", "50": "blackwell"}
    checked = 0
    for device in catalog.accelerators:
        found = re.search(r"RTX (30|40|50)\d0", device.name)
        if found:
            assert device.architecture == generation[found.group(1)], device.id
            checked += 1
        if "RTX PRO" in device.name and "Blackwell" in device.name or "Orin" in device.name:
            assert device.architecture == ("ampere" if "Orin" in device.name else "blackwell"), device.id
    assert checked >= 30


def test_pi_5_4gb_is_about_4_gib(catalog: Catalog) -> None:
    pi = catalog.accelerator("pi5-4gb")
    assert 3.8 * GiB < pi.memory_bytes < 4 * GiB


def test_strix_halo_gpu_share(catalog: Catalog) -> None:
    # AMD: 96 GB of Variable Graphics Memory on the 128 GB model; Linux GTT at
    # ttm.pages_limit=25165824 reads 103079215104 B (nix-amd-ai issue #42)
    assert catalog.accelerator("strix halo").memory_bytes == 103079215104
    assert catalog.accelerator("strix halo 64gb").memory_bytes == 48 * GiB


# --- Apple: Metal's working set, not total RAM -------------------------------------------------


def test_every_apple_row_is_a_working_set_not_total_ram(catalog: Catalog) -> None:
    apple = rows(catalog, "apple")
    assert len(apple) >= 45
    for device in apple:
        share = device.memory_bytes / (device.memory_gb_marketing * GiB)
        assert 0.60 < share < 0.90, (device.id, share)


@pytest.mark.parametrize(
    ("name", "megabytes"),
    [
        # macOS 14/15 llama.cpp logs, 'recommendedMaxWorkingSetSize = N MB'
        ("m1 pro 16gb", 11453.25),
        ("m2 24gb", 17179.89),
        ("m1 max 32gb", 22906.50),
        ("m4 max 36gb", 28991.03),
        ("m4 pro 48gb", 38654.71),
        ("m2 max 64gb", 51539.61),
        ("m3 max 128gb", 103079.22),
        # M5 ships with macOS 26: iMac M4 32 GB on macOS 26 printed 26800.60 MB
        ("m5 32gb", 26800.60),
    ],
)
def test_apple_working_set_logs(catalog: Catalog, name: str, megabytes: float) -> None:
    assert catalog.accelerator(name).memory_bytes == round(megabytes * 1e6)


@pytest.mark.parametrize(
    ("name", "share"),
    [("m1 8gb", 2 / 3), ("m3 pro 18gb", 2 / 3), ("m2 max 96gb", 3 / 4), ("m3 ultra 256gb", 3 / 4), ("m3 ultra 512gb", 3 / 4)],
)
def test_apple_rule_rows(catalog: Catalog, name: str, share: float) -> None:
    """Sizes without a log: 2/3 of RAM up to 32 GB, 3/4 from 36 GB (macOS 14/15)."""
    device = catalog.accelerator(name)
    assert device.memory_bytes == pytest.approx(share * device.memory_gb_marketing * GiB, abs=1)
    assert "est." in device.memory_basis


def test_m5_max_uses_the_measured_macos_26_working_set(catalog: Catalog) -> None:
    # antirez/ds4 PR #893: 107.52 GiB stock on an M5 Max 128 GB under macOS 26
    assert catalog.accelerator("m5 max 128gb").memory_bytes == pytest.approx(107.52 * GiB, abs=1)


def test_more_unified_memory_never_means_a_smaller_working_set(catalog: Catalog) -> None:
    by_size: dict[float, list[int]] = {}
    for device in rows(catalog, "apple"):
        by_size.setdefault(device.memory_gb_marketing, []).append(device.memory_bytes)
    sizes = sorted(by_size)
    for smaller, larger in zip(sizes, sizes[1:]):
        assert max(by_size[smaller]) <= min(by_size[larger]), (smaller, larger)


def test_apple_tiers_cover_the_shipped_memory_sizes(catalog: Catalog) -> None:
    """One row per (chip tier, RAM size) Apple sold in a MacBook, Mac mini, Mac Studio or iMac."""
    shipped = {
        "m1": {8, 16}, "m1-pro": {16, 32}, "m1-max": {32, 64}, "m1-ultra": {64, 128},
        "m2": {8, 16, 24}, "m2-pro": {16, 32}, "m2-max": {32, 64, 96}, "m2-ultra": {64, 128, 192},
        "m3": {8, 16, 24}, "m3-pro": {18, 36}, "m3-max": {36, 48, 64, 96, 128}, "m3-ultra": {96, 256, 512},
        "m4": {16, 24, 32}, "m4-pro": {24, 48, 64}, "m4-max": {36, 48, 64, 128},
        "m5": {16, 24, 32},
    }  # fmt: skip
    for tier, sizes in shipped.items():
        for gb in sizes:
            assert catalog.accelerator(f"apple-{tier}-{gb}gb").memory_gb_marketing == gb


# --- phones and laptops ------------------------------------------------------------------------


def test_phones_leave_part_of_their_ram_to_the_system(catalog: Catalog) -> None:
    phones = rows(catalog, "mobile") + rows(catalog, "iphone")
    assert len(phones) >= 10
    for device in phones:
        assert device.memory_bytes < device.memory_gb_marketing * GiB, device.id


def test_iphone_app_limit_with_the_entitlement(catalog: Catalog) -> None:
    # introlab/rtabmap PR #1446: iPhone 15 Pro gives an entitled app 6 GB (3 GB without)
    assert catalog.accelerator("iphone 15 pro").memory_bytes == 6 * GiB
    for device in rows(catalog, "mobile"):
        if device.vendor == "Apple":
            assert device.memory_bytes <= 0.75 * device.memory_gb_marketing * GiB, device.id


def test_laptop_gpus_have_no_more_memory_than_their_desktop_namesake(catalog: Catalog) -> None:
    laptops = rows(catalog, "laptop")
    assert len(laptops) >= 9
    for laptop in laptops:
        model = re.search(r"RTX (\d{4}(?: Ti)?) Laptop", laptop.name)
        assert model, laptop.id
        desktop = catalog.accelerator("rtx-" + model.group(1).lower().replace(" ", "-"))
        assert desktop.kind == "consumer"
        assert laptop.architecture == desktop.architecture, laptop.id
        assert laptop.memory_bytes <= desktop.memory_bytes, (laptop.id, desktop.id)


# --- look-up by alias --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "device_id"),
    [
        ("m4 pro 24gb", "apple-m4-pro-24gb"),
        ("M4 Pro 24GB", "apple-m4-pro-24gb"),
        ("m4-pro-24gb", "apple-m4-pro-24gb"),  # the id without its vendor prefix
        ("rtx 5060 ti 16gb", "nvidia-rtx-5060-ti-16gb"),
        ("rtx 5060 ti", "nvidia-rtx-5060-ti-16gb"),
        ("5060 ti 8gb", "nvidia-rtx-5060-ti-8gb"),
        ("4060 ti 8gb", "nvidia-rtx-4060-ti-8gb"),
        ("4060 ti", "nvidia-rtx-4060-ti-16gb"),
        ("rtx 4090 laptop", "nvidia-rtx-4090-laptop"),
        ("pi5-4gb", "rpi5-4gb"),
        ("strix halo", "amd-ryzen-ai-max-395-128gb"),
        ("ryzen ai max+ 395", "amd-ryzen-ai-max-395-128gb"),
        ("dgx spark", "nvidia-dgx-spark"),
        ("gb10", "nvidia-dgx-spark"),
        ("agx thor", "jetson-agx-thor-128gb"),
        ("orin nx", "jetson-orin-nx-16gb"),
        ("iphone 17 pro", "iphone-17-pro"),
        ("pixel 9 pro", "google-pixel-9-pro"),
        ("rx 9070", "amd-rx-9070"),
        ("cpu-desktop-64gb", "cpu-desktop-64gb-ddr5-2ch"),
    ],
)
def test_lookup_by_alias(catalog: Catalog, name: str, device_id: str) -> None:
    assert catalog.accelerator(name).id == device_id


def test_a_device_smaller_than_the_system_reserve_has_no_usable_memory_and_nothing_fits():
    from core.devices import TypedDevice, typed_accelerator
    from core.estimate import MemoryRequest
    from core.fit import device_fit_matrix
    from core.catalog import load_catalog

    board = typed_accelerator(TypedDevice(memory_bytes=2**29, kind="cpu"))  # 0.5 GiB
    catalog = load_catalog().with_accelerators((board,))
    rows = device_fit_matrix(MemoryRequest(model="e2b", gpu=board.id), catalog)
    assert rows and all(r.usable_bytes == 0 and r.verdict == "does_not_fit" for r in rows)
