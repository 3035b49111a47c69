"""LiteRT-LM: its context rule, cache, files, device table and launch command, from independent figures."""

import shlex

import pytest

from core.catalog import load_catalog
from core.engines.litert_lm import default_max_num_tokens
from core.estimate import MemoryRequest, PlanningError, estimate, memory_profile, runtime_request
from core.fit import usable_bytes
from core.launch import launch_command
from core.runtimes import device_refusal, runtimes_for

CATALOG = load_catalog()
KIB = 2**10
MIB = 2**20


def request(**changes):
    values = dict(
        model="gemma-4-e2b", engine="litert-lm", weight_format="litertlm", kv_cache_dtype="fp16",
        context_tokens=4096, concurrent_sequences=1,
    )
    values.update(changes)
    return MemoryRequest(**values)


@pytest.mark.parametrize(
    ("prompt_tokens", "expected"),
    [
        # engine_settings.cc: ((prompt + 1023) / 4096 + 1) * 4096, in C++ integer division.
        (0, 4096),
        (3072, 4096),  # 3072 + 1024 = 4096: (4095 / 4096 + 1) * 4096 = 4096
        (3073, 8192),  # one more token and 1,024 decode tokens no longer fit in 4,096
        (5000, 8192),
        (31_000, 32_768),
    ],
)
def test_default_max_num_tokens_follows_engine_settings(prompt_tokens, expected):
    assert default_max_num_tokens(prompt_tokens) == expected


def test_runtime_context_is_the_default_rule_capped_at_the_trained_context():
    resolved, source = runtime_request(request(context_tokens=5000, runtime_context=True), CATALOG)
    assert resolved.context_tokens == 8192
    assert "4,096" in source and "engine_settings.cc" in source
    resolved, _ = runtime_request(request(context_tokens=131_000, runtime_context=True), CATALOG)
    assert resolved.context_tokens == 131_072  # the rule gives 135,168; E2B was trained on 131,072


@pytest.mark.parametrize(("tokens", "expected_mib"), [(4096, 30), (32_768, 198)])
def test_e2b_cache_by_hand(tokens, expected_mib):
    """gemma4-architecture.md: E2B owns KV in 3 full layers (1 KV head x 512, fp16: 2 KiB per
    token) and 12 sliding layers (1 x 256: 1 KiB per token, window 512); 20 layers share KV.
    4,096: 3 x 2 KiB x 4096 = 24 MiB + 12 x 1 KiB x 512 = 6 MiB. 32,768: 192 MiB + 6 MiB."""
    result = estimate(request(context_tokens=tokens), CATALOG)
    assert result.kv_cache_bytes == expected_mib * MIB
    assert result.engine_report["local_cache_tokens"] == 512
    assert result.engine_report["global_cache_tokens"] == tokens
    assert result.engine_report["gpu_ping_pong_kv_bytes"] == 2 * expected_mib * MIB


def test_short_context_still_holds_the_whole_window_only_up_to_the_context():
    result = estimate(request(context_tokens=300), CATALOG)
    assert result.kv_cache_bytes == 3 * 2 * KIB * 300 + 12 * 1 * KIB * 300


@pytest.mark.parametrize(
    ("weight_format", "published_gb"),
    [
        # litert-community/gemma-4-E2B-it-litert-lm file listing (decimal GB, 2 dp).
        ("litertlm", 2.59),
        ("litertlm-web", 2.01),
        ("litertlm-tensor-g5", 3.11),
        ("litertlm-sm8750", 3.02),
        ("litertlm-qcs8275", 3.29),
        ("litertlm-intel-lnl", 2.96),
        ("litertlm-intel-ptl", 2.95),
    ],
)
def test_each_target_file_has_its_published_size(weight_format, published_gb):
    result = estimate(request(weight_format=weight_format), CATALOG)
    assert abs(result.files_bytes / 1e9 - published_gb) <= 0.005


def test_google_overview_model_size_is_the_generic_file():
    """ai.google.dev/edge/litert-lm/overview: 'Model size: 2.58 GB' (the listing says 2.59)."""
    assert abs(estimate(request(), CATALOG).files_bytes / 1e9 - 2.58) <= 0.015


def test_the_per_layer_table_is_read_from_the_file_not_held():
    """E2B's per-layer embeddings are 262,144 x 35 x 256 = 2,348,810,240 parameters: a CPU
    look-up table, left out of the resident weights."""
    result = estimate(request(), CATALOG)
    ple = next(w for w in result.weights if w.component == "per_layer_embedding")
    assert ple.params == 262_144 * 35 * 256
    assert ple.placement == "host"
    assert result.weights_bytes == result.files_bytes - ple.bytes


def test_text_only_leaves_the_encoders_on_disk():
    full = estimate(request(), CATALOG)
    text = estimate(request(text_only=True), CATALOG)
    assert text.weights_bytes < full.weights_bytes
    assert not any(w.component in ("vision", "audio") for w in text.weights)


@pytest.mark.parametrize(("device", "observed_mb"), [("galaxy-s25-ultra", 1733), ("cpu-desktop-32gb-ddr5-2ch", 1628)])
def test_google_cpu_peaks_within_a_quarter_gib(device, observed_mb):
    """ai.google.dev/edge/litert-lm/overview, CPU memory peak of E2B on the CPU backend:
    Android S26 Ultra 1733 MB, Linux Arm 1628 MB (context unstated; unit read as MiB)."""
    total_mib = estimate(request(gpu=device), CATALOG).total_bytes / MIB
    assert abs(total_mib - observed_mb) <= 250


def test_more_context_never_needs_less_memory():
    totals = [estimate(request(context_tokens=t), CATALOG).total_bytes for t in (512, 4096, 8192, 65_536)]
    assert totals == sorted(totals)


@pytest.mark.parametrize("model", ["gemma-4-26b-a4b", "gemma-4-31b"])
def test_models_without_a_published_file_are_refused_in_one_line(model):
    with pytest.raises(PlanningError, match="has no published file") as error:
        estimate(request(model=model, gpu="iphone-17-pro"), CATALOG)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("device", ["iphone-17-pro", "galaxy-s25-ultra", "google-pixel-10-pro", "phone-8gb-midrange"])
def test_phones_offer_litert_lm_first(device):
    assert runtimes_for(CATALOG, CATALOG.accelerator(device))[0] == "litert-lm"


@pytest.mark.parametrize("device", ["rpi5-16gb", "apple-m4-16gb", "cpu-desktop-32gb-ddr5-2ch", "nvidia-rtx-4090"])
def test_pi_macs_desktops_and_the_published_rtx_4090_offer_it(device):
    assert "litert-lm" in runtimes_for(CATALOG, CATALOG.accelerator(device))


@pytest.mark.parametrize("device", ["nvidia-h100-sxm", "amd-mi300x", "intel-arc-b580"])
def test_datacenter_and_unpublished_gpus_refuse_it_with_a_reason(device):
    accelerator = CATALOG.accelerator(device)
    assert "litert-lm" not in runtimes_for(CATALOG, accelerator)
    reason = device_refusal(CATALOG, "litert-lm", accelerator)
    assert reason and accelerator.name in reason and "\n" not in reason
    with pytest.raises(PlanningError, match="does not run on"):
        estimate(request(gpu=device), CATALOG)


def test_npu_files_only_on_their_chip():
    with pytest.raises(PlanningError, match="litertlm-sm8750"):
        estimate(request(weight_format="litertlm-sm8750", gpu="google-pixel-10-pro"), CATALOG)
    assert estimate(request(weight_format="litertlm-sm8750", gpu="galaxy-s25-ultra"), CATALOG).files_bytes > 3e9


def test_one_device_only():
    with pytest.raises(PlanningError, match="one device"):
        estimate(request(gpus=2), CATALOG)


def command_for(**changes):
    plan = request(**changes)
    return launch_command(plan, estimate(plan, CATALOG), CATALOG)


def test_launch_command_uses_the_cli_flags():
    """python/litert_lm_cli/commands/run.py@dc48681 (MODEL_REFERENCE, --max-num-tokens) and
    common.py@a76a162 (--from-huggingface-repo, --backend cpu|gpu|npu), transcribed here."""
    launch = command_for(context_tokens=8192)
    words = shlex.split(launch.command)
    assert words[:2] == ["litert-lm", "run"]
    assert "--from-huggingface-repo=litert-community/gemma-4-E2B-it-litert-lm" in words
    assert "gemma-4-E2B-it.litertlm" in words
    assert "--backend=cpu" in words
    assert "--max-num-tokens=8192" in words
    allowed = {"--from-huggingface-repo", "--backend", "--max-num-tokens"}
    assert {w.split("=")[0] for w in words if w.startswith("--")} <= allowed


def test_launch_command_picks_the_npu_for_a_chip_file():
    words = shlex.split(command_for(weight_format="litertlm-tensor-g5", gpu="google-pixel-10-pro").command)
    assert "--backend=npu" in words and "gemma-4-E2B-it_Google_Tensor_G5.litertlm" in words


def test_e4b_file_is_its_published_size_to_the_byte():
    """litert-community/gemma-4-E4B-it-litert-lm: gemma-4-E4B-it.litertlm is 3,659,530,240 B (LFS
    size); E2B's is 2,588,147,712 B. The card's '3.66 GB' agrees to 2 dp."""
    e4b = estimate(request(model="gemma-4-e4b", context_tokens=2048), CATALOG)
    assert e4b.files_bytes == 3_659_530_240
    assert estimate(request(), CATALOG).files_bytes == 2_588_147_712
    assert round(e4b.files_bytes / 1e9, 2) == 3.66


@pytest.mark.parametrize(("model", "mapped_bytes"), [("gemma-4-e2b", 1_120_000_000), ("gemma-4-e4b", 670_000_000)])
def test_the_mapped_embedding_table_is_the_cards_figure_and_the_rest_is_resident(model, mapped_bytes):
    """The cards: E2B 'memory mapping to support the 1.12GB of embedding parameters'; E4B '0.67 GB
    of embedding parameters [...] memory mapped'. Resident weights = file - that table:
    E4B 3,659,530,240 - 670,000,000 = 2,989,530,240 B; E2B 2,588,147,712 - 1,120,000,000 = 1,468,147,712 B."""
    result = estimate(request(model=model, context_tokens=2048), CATALOG)
    ple = next(w for w in result.weights if w.component == "per_layer_embedding")
    assert (ple.bytes, ple.placement) == (mapped_bytes, "host")
    assert result.weights_bytes == result.files_bytes - mapped_bytes
    assert result.weights_bytes == {"gemma-4-e2b": 1_468_147_712, "gemma-4-e4b": 2_989_530_240}[model]


def test_e4b_cache_at_the_benchmark_context_by_hand():
    """gemma4-architecture.md: E4B owns KV in 4 full layers (2 KV heads x 512, fp16: 4 KiB per
    token) and 20 sliding layers (2 x 256: 2 KiB per token, window 512). At the cards' 2,048
    tokens: 4 x 4 KiB x 2048 = 32 MiB + 20 x 2 KiB x 512 = 20 MiB = 52 MiB."""
    assert estimate(request(model="gemma-4-e4b", context_tokens=2048), CATALOG).kv_cache_bytes == 52 * MIB


@pytest.mark.parametrize(
    ("model", "device", "observed_mib"),
    [
        # litert-community model cards, CPU backend, 1024 prefill + 256 decode at a 2,048 context,
        # rusage::ru_maxrss, 'MB' = MiB (LiteRT's MemoryUsageMonitor divides bytes by 1024 twice).
        ("gemma-4-e4b", "galaxy-s25-ultra", 3283),
        ("gemma-4-e4b", "cpu-desktop-32gb-ddr5-2ch", 3139),
        ("gemma-4-e4b", "rpi5-16gb", 3069),
        ("gemma-4-e2b", "rpi5-16gb", 1546),
    ],
)
def test_google_cpu_peaks_at_the_cards_context(model, device, observed_mib):
    total_mib = estimate(request(model=model, gpu=device, context_tokens=2048), CATALOG).total_bytes / MIB
    assert abs(total_mib - observed_mib) <= 250


def test_an_evenly_shared_e4b_file_would_miss_google_peaks():
    """Why the card's mapped figure matters: shared evenly, E4B's PLE table (2,818,572,288 of
    7,940,540,746 non-norm parameters) would take (3,659,530,240 - 2,240,512) x 2,818,572,288 /
    7,940,540,746 = 1.298 GB, i.e. 628 MB more mapped and that much less resident than
    the card says: the prediction would fall some 600 MiB under Google's 3,069-3,283 MiB."""
    evenly_mapped = (3_659_530_240 - 560_128 * 4) * 2_818_572_288 // 7_940_540_746
    assert 1_298_000_000 < evenly_mapped < 1_299_000_000
    result = estimate(request(model="gemma-4-e4b", context_tokens=2048, gpu="rpi5-16gb"), CATALOG)
    assert (result.total_bytes - (evenly_mapped - 670_000_000)) / MIB < 3069 - 250


def test_e4b_runs_where_google_lists_it():
    """The E4B card lists S26 Ultra, iPhone 17 Pro, Linux Arm + RTX 4090, MacBook Pro M4 Max,
    Intel Lunar Lake and Raspberry Pi 5 16GB rows for the generic file."""
    for device in ("galaxy-s25-ultra", "iphone-17-pro", "cpu-desktop-32gb-ddr5-2ch", "nvidia-rtx-4090", "rpi5-16gb"):
        assert estimate(request(model="gemma-4-e4b", gpu=device, context_tokens=2048), CATALOG).files_bytes == 3_659_530_240


def test_the_pi_os_share_is_the_public_free_reading():
    """runtime.csv sbc: 642 MiB (free -h 'used' on a Pi 5 8 GB, Bookworm desktop, after boot).
    The Pi 5 8 GB offers 8062 MiB, so 8062 - 642 = 7420 MiB are the planner's to use."""
    assert CATALOG.runtime("sbc").driver_reserved_bytes == 642 * MIB
    profile = memory_profile(request(gpu="rpi5-8gb", context_tokens=2048), CATALOG)
    assert usable_bytes(profile) == 7420 * MIB
