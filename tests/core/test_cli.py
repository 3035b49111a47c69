"""Command line: `python -m core params|estimate|fit`. Most cases call core.__main__.main(argv)
in-process (fast); a handful run the real `python -m core` in a subprocess."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.__main__ import main

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"

# Read straight from the data files, independently of core's catalogue code.
MODEL_IDS = [entry["id"] for entry in json.loads((DATA / "models.json").read_text(encoding="utf-8"))["models"]]
MODEL_NAMES = {
    entry["id"]: entry["display_name"]
    for entry in json.loads((DATA / "models.json").read_text(encoding="utf-8"))["models"]
}
MOE_IDS = {
    entry["id"]
    for entry in json.loads((DATA / "models.json").read_text(encoding="utf-8"))["models"]
    if entry["config"]["text_config"].get("enable_moe_block")
}
with (DATA / "weight_formats.csv").open(encoding="utf-8", newline="") as _file:
    _FORMAT_ROWS = list(csv.DictReader(_file))
FORMAT_ENGINES = {row["id"]: row["engines"].split(";") for row in _FORMAT_ROWS}
# Formats that only change routed experts (gpt-oss's MXFP4) repeat the 16-bit row on dense models.
EXPERT_ONLY_FORMATS = {row["id"] for row in _FORMAT_ROWS if row["expert_bits"] not in ("", row["linear_bits"])}
with (DATA / "gpus.csv").open(encoding="utf-8", newline="") as _file:
    GPU_ROWS = list(csv.DictReader(_file))
GPU_IDS = [row["id"] for row in GPU_ROWS]
# The accelerator whose aliases include "h100".
(H100,) = [row["id"] for row in GPU_ROWS if "h100" in row["aliases"].split(";")]

PARAMS_KEYS = {
    "model",
    "name",
    "total",
    "text",
    "vision",
    "audio",
    "token_embedding",
    "per_layer_embedding",
    "experts",
    "active_per_token",
    "effective",
}
ESTIMATE_KEYS = {
    "model",
    "engine",
    "weight_format",
    "kv_cache_dtype",
    "context_tokens",
    "concurrent_sequences",
    "params",
    "weights_bytes",
    "kv_cache_bytes",
    "kv_cache",
    "activations_bytes",
    "overhead_bytes",
    "total_bytes",
    "naive_kv_cache_bytes",
    "engine_report",
    "fit",
}
KV_CACHE_KEYS = {"full_attention_bytes", "sliding_attention_bytes", "full_attention_tokens", "sliding_attention_tokens"}
FIT_KEYS = {
    "gpu", "gpus", "usable_bytes", "fits", "headroom_bytes", "shortfall_bytes", "max_context_tokens", "max_concurrent_sequences",
}


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    """Run main(argv) in-process: (exit status, stdout, stderr)."""
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def cli_json(capsys, *argv: str):
    status, out, err = cli(capsys, *argv, "--json")
    assert status == 0, err
    assert err == ""
    return json.loads(out)


def run_module(*argv: str) -> subprocess.CompletedProcess:
    """The real `python -m core`, from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "core", *argv], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --- params ------------------------------------------------------------------------------------


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_params_json_has_exactly_the_documented_integer_keys(capsys, model_id):
    figures = cli_json(capsys, "params", "--model", model_id)
    assert set(figures) == PARAMS_KEYS
    assert figures["model"] == model_id
    assert figures["name"] == MODEL_NAMES[model_id]
    for key in PARAMS_KEYS - {"model", "name"}:
        assert is_int(figures[key]) and figures[key] >= 0, key
    assert figures["total"] == figures["text"] + figures["vision"] + figures["audio"]
    assert figures["active_per_token"] <= figures["total"]


def test_params_json_without_a_model_lists_every_variant(capsys):
    figures = cli_json(capsys, "params")
    assert [f["model"] for f in figures] == MODEL_IDS
    assert all(set(f) == PARAMS_KEYS for f in figures)


def test_params_components_match_the_architecture(capsys):
    """Audio only on the E models, experts only on 26B-A4B, PLE only on the E models."""
    by_model = {f["model"]: f for f in cli_json(capsys, "params")}
    assert by_model["gemma-4-e2b"]["audio"] > 0 and by_model["gemma-4-e4b"]["audio"] > 0
    assert by_model["gemma-4-31b"]["audio"] == by_model["gemma-4-26b-a4b"]["audio"] == 0
    assert by_model["gemma-4-26b-a4b"]["experts"] > 0
    assert by_model["gemma-4-31b"]["experts"] == by_model["gemma-4-e4b"]["experts"] == 0
    assert by_model["gemma-4-31b"]["per_layer_embedding"] == 0
    # PLE table: 262144 rows x (num_layers x 256) = 262144 x 8960 on E2B, 262144 x 10752 on E4B.
    assert by_model["gemma-4-e2b"]["per_layer_embedding"] == 262144 * 35 * 256
    assert by_model["gemma-4-e4b"]["per_layer_embedding"] == 262144 * 42 * 256


# --- estimate ----------------------------------------------------------------------------------


def check_estimate_shape(result: dict) -> None:
    assert ESTIMATE_KEYS <= set(result), ESTIMATE_KEYS - set(result)
    assert {"total", "active_per_token"} <= set(result["params"])
    assert KV_CACHE_KEYS <= set(result["kv_cache"])
    for key in ("weights_bytes", "kv_cache_bytes", "activations_bytes", "overhead_bytes", "total_bytes",
                "naive_kv_cache_bytes", "context_tokens", "concurrent_sequences"):
        assert is_int(result[key]), key
    for key in ("total", "active_per_token"):
        assert is_int(result["params"][key]), key
    for key in KV_CACHE_KEYS:
        assert is_int(result["kv_cache"][key]), key
    kv = result["kv_cache"]
    assert result["kv_cache_bytes"] == kv["full_attention_bytes"] + kv["sliding_attention_bytes"]
    parts = ("weights_bytes", "kv_cache_bytes", "activations_bytes", "overhead_bytes")
    assert result["total_bytes"] == sum(result[part] for part in parts)
    assert isinstance(result["engine_report"], dict)


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_estimate_json_has_the_documented_keys_and_integer_sizes(capsys, model_id):
    result = cli_json(capsys, "estimate", "--model", model_id, "--context", "4096", "--batch", "2")
    check_estimate_shape(result)
    assert result["model"] == model_id
    assert (result["engine"], result["weight_format"], result["kv_cache_dtype"]) == ("transformers", "bf16", "bf16")
    assert (result["context_tokens"], result["concurrent_sequences"]) == (4096, 2)
    assert result["fit"] is None


def test_estimate_json_with_a_gpu_has_a_fit(capsys):
    result = cli_json(capsys, "estimate", "--model", "e4b", "--gpu", "h100")
    check_estimate_shape(result)
    fitted = result["fit"]
    assert FIT_KEYS <= set(fitted)
    assert fitted["gpu"] == H100
    assert isinstance(fitted["fits"], bool)
    for key in FIT_KEYS - {"gpu", "fits"}:
        assert is_int(fitted[key]), key
    assert fitted["gpus"] == 1
    # One of headroom and shortfall is the gap between usable and needed, the other 0.
    gap = fitted["usable_bytes"] - result["total_bytes"]
    assert (fitted["headroom_bytes"], fitted["shortfall_bytes"]) == (max(gap, 0), max(-gap, 0))
    assert fitted["fits"] is (fitted["shortfall_bytes"] == 0)


def test_estimate_json_on_two_gpus_reports_two(capsys):
    fitted = cli_json(capsys, "estimate", "--model", "31b", "--gpu", "h100", "--gpus", "2")["fit"]
    single = cli_json(capsys, "estimate", "--model", "31b", "--gpu", "h100")["fit"]
    assert fitted["gpus"] == 2
    assert fitted["usable_bytes"] == 2 * single["usable_bytes"]


# KV cache by hand, from gemma4-architecture.md: bytes = layers owning a cache x 2 (K and V)
# x kv heads x head_dim x 2 bytes (bf16) x tokens retained. transformers keeps every token on
# full layers and sliding_window - 1 tokens on sliding layers (DynamicSlidingWindowLayer).
# KV-shared layers (E2B: 20, E4B: 18) own no cache. The naive view: every layer full
# attention with num_key_value_heads x 256, no sharing.
T = 100_000
HAND_KV = {
    # 31B: 10 full layers (4 kv heads x 512, k_eq_v), 50 sliding (16 x 256), window 1024.
    "gemma-4-31b": dict(
        full=10 * 2 * 4 * 512 * 2 * T,  # 8,192,000,000
        sliding=50 * 2 * 16 * 256 * 2 * min(T, 1024 - 1),  # 838,041,600
        sliding_tokens=1023,
        naive=60 * 2 * 16 * 256 * 2 * T,
    ),
    # 26B-A4B: 5 full (2 x 512, k_eq_v), 25 sliding (8 x 256), window 1024.
    "gemma-4-26b-a4b": dict(
        full=5 * 2 * 2 * 512 * 2 * T,  # 2,048,000,000
        sliding=25 * 2 * 8 * 256 * 2 * min(T, 1024 - 1),  # 209,510,400
        sliding_tokens=1023,
        naive=30 * 2 * 8 * 256 * 2 * T,
    ),
    # E4B: 24 of 42 layers own a cache: 4 full (2 x 512), 20 sliding (2 x 256), window 512.
    "gemma-4-e4b": dict(
        full=4 * 2 * 2 * 512 * 2 * T,  # 1,638,400,000
        sliding=20 * 2 * 2 * 256 * 2 * min(T, 512 - 1),  # 20,930,560
        sliding_tokens=511,
        naive=42 * 2 * 2 * 256 * 2 * T,
    ),
    # E2B: 15 of 35 layers own a cache: 3 full (1 x 512), 12 sliding (1 x 256), window 512.
    "gemma-4-e2b": dict(
        full=3 * 2 * 1 * 512 * 2 * T,  # 614,400,000
        sliding=12 * 2 * 1 * 256 * 2 * min(T, 512 - 1),  # 6,279,168
        sliding_tokens=511,
        naive=35 * 2 * 1 * 256 * 2 * T,
    ),
}


@pytest.mark.parametrize("model_id", list(HAND_KV))
def test_estimate_kv_cache_equals_the_hand_calculation(capsys, model_id):
    hand = HAND_KV[model_id]
    result = cli_json(capsys, "estimate", "--model", model_id, "--context", str(T))
    kv = result["kv_cache"]
    assert kv["full_attention_bytes"] == hand["full"]
    assert kv["sliding_attention_bytes"] == hand["sliding"]
    assert kv["full_attention_tokens"] == T
    assert kv["sliding_attention_tokens"] == hand["sliding_tokens"]
    assert result["kv_cache_bytes"] == hand["full"] + hand["sliding"]
    assert result["naive_kv_cache_bytes"] == hand["naive"]


def test_31b_kv_cache_written_out():
    """The 31B case in plain numbers, so a slip in the table above cannot hide."""
    assert HAND_KV["gemma-4-31b"]["full"] == 8_192_000_000
    assert HAND_KV["gemma-4-31b"]["sliding"] == 838_041_600


def test_kv_cache_scales_with_concurrent_sequences_and_weights_do_not(capsys):
    one = cli_json(capsys, "estimate", "--model", "31b", "--context", "50000")
    four = cli_json(capsys, "estimate", "--model", "31b", "--context", "50000", "--batch", "4")
    assert four["kv_cache_bytes"] == 4 * one["kv_cache_bytes"]
    assert four["weights_bytes"] == one["weights_bytes"]


# --- fit ---------------------------------------------------------------------------------------


def test_fit_without_engine_covers_every_runtime_that_runs_on_the_device(capsys):
    # runtimes.md §0: an H100 runs vLLM, llama.cpp, Ollama and transformers, not MLX; a Pi runs
    # llama.cpp, Ollama and transformers; a phone only llama.cpp (of the runtimes modelled);
    # §7: LiteRT-LM runs on the Pi and on phones, not on an H100; ONNX Runtime GenAI has CUDA and
    # CPU providers (docs/research/browser-onnx.md §4); mistral.rs builds for CUDA, Metal and the
    # CPU (docs/research/mistralrs-vllm-metal.md §1.9), not for phones.
    for gpu, expected in (
        ("h100", {"vllm", "llama.cpp", "ollama", "transformers", "onnxruntime-genai", "mistral.rs"}),
        ("rpi5-8gb", {"llama.cpp", "ollama", "transformers", "litert-lm", "onnxruntime-genai", "mistral.rs"}),
        ("galaxy s25 ultra", {"llama.cpp", "litert-lm"}),
    ):
        rows = cli_json(capsys, "fit", "--gpu", gpu, "--context", "4096")
        assert {row["engine"] for row in rows} == expected, gpu


def test_fit_json_lists_every_variant_and_every_format_transformers_loads(capsys):
    rows = cli_json(capsys, "fit", "--gpu", "h100", "--engine", "transformers", "--kv-dtype", "bf16", "--context", "8192")
    assert isinstance(rows, list)
    loaded = {fmt for fmt, engines in FORMAT_ENGINES.items() if "transformers" in engines}
    expected = {
        (model, fmt) for model in MODEL_IDS for fmt in loaded if fmt not in EXPERT_ONLY_FORMATS or model in MOE_IDS
    }
    cells = [(row["model"], row["weight_format"]) for row in rows]
    assert len(cells) == len(set(cells)) == len(expected)
    assert set(cells) == expected
    for row in rows:
        assert FIT_KEYS <= set(row)
        assert row["gpu"] == H100 and row["gpus"] == 1
        assert isinstance(row["fits"], bool)
        for key in FIT_KEYS - {"gpu", "fits"}:
            assert is_int(row[key]), key
        assert row["fits"] is (row["shortfall_bytes"] == 0)
        assert row["headroom_bytes"] == 0 or row["shortfall_bytes"] == 0


def test_fit_rows_agree_with_estimate(capsys):
    rows = cli_json(capsys, "fit", "--gpu", "h100", "--engine", "transformers", "--model", "31b", "--weights", "fp8")
    assert [(r["model"], r["weight_format"]) for r in rows] == [("gemma-4-31b", "fp8")]
    fitted = cli_json(capsys, "estimate", "--engine", "transformers", "--model", "31b", "--weights", "fp8", "--gpu", "h100")["fit"]
    assert {key: rows[0][key] for key in FIT_KEYS} == {key: fitted[key] for key in FIT_KEYS}


def test_fit_filters_by_model_and_comma_separated_formats(capsys):
    rows = cli_json(capsys, "fit", "--gpu", "rtx-4090", "--engine", "transformers", "--model", "E4B", "--weights", "BF16,awq")
    assert sorted((r["model"], r["weight_format"]) for r in rows) == [
        ("gemma-4-e4b", "awq-int4"),
        ("gemma-4-e4b", "bf16"),
    ]


# --- aliases -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "names", "rest"),
    [
        ("--model", ["31B", "google/gemma-4-31B-it", "gemma-4-31b", " 31b "], ["--context", "20000"]),
        ("--weights", ["bf16", "BF16", "bfloat16"], ["--model", "e2b"]),
        ("--gpu", ["h100", "H100", H100], ["--model", "26b-a4b"]),
        ("--kv-dtype", ["fp16", "FP16", "float16"], ["--model", "e4b"]),
    ],
)
def test_aliases_are_case_insensitive_and_equivalent(capsys, flag, names, rest):
    outputs = []
    for name in names:
        status, out, err = cli(capsys, "estimate", *rest, flag, name, "--json")
        assert (status, err) == (0, "")
        outputs.append(out)
    assert all(out == outputs[0] for out in outputs)
    json.loads(outputs[0])


def test_fit_gpu_alias_is_case_insensitive(capsys):
    _, lower, _ = cli(capsys, "fit", "--gpu", "h100", "--model", "e2b", "--json")
    _, upper, _ = cli(capsys, "fit", "--gpu", "H100", "--model", "E2B", "--json")
    assert lower == upper and json.loads(lower)


# --- tables ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [["params"], ["estimate", "--model", "e2b", "--gpu", "l4"], ["fit", "--gpu", "a100-80gb", "--model", "31b"]],
)
def test_human_output_is_a_table_without_errors(capsys, argv):
    status, out, err = cli(capsys, *argv)
    assert (status, err) == (0, "")
    assert out.strip()
    assert "-----" in out


# --- bad input ---------------------------------------------------------------------------------

ALL_MODELS = tuple(MODEL_IDS)
ALL_FORMATS = tuple(FORMAT_ENGINES)
ALL_GPUS = tuple(GPU_IDS)

BAD_INPUT = [
    # (id, argv, words the one stderr line must contain)
    ("unknown-model", ["estimate", "--model", "gemma-5"], ("gemma-5", *ALL_MODELS)),
    ("unknown-model-params", ["params", "--model", "70b"], ("70b", *ALL_MODELS)),
    ("unknown-gpu", ["estimate", "--model", "31b", "--gpu", "h1000"], ("h1000", *ALL_GPUS)),
    ("unknown-gpu-fit", ["fit", "--gpu", "voodoo5"], ("voodoo5", *ALL_GPUS)),
    ("unknown-format", ["estimate", "--model", "31b", "--weights", "int3"], ("int3", *ALL_FORMATS)),
    ("unknown-format-fit", ["fit", "--gpu", "h100", "--weights", "bf16,int3"], ("int3", *ALL_FORMATS)),
    ("unknown-kv-dtype", ["estimate", "--model", "31b", "--kv-dtype", "int2"], ("int2", "bf16", "fp16")),
    ("unknown-engine", ["estimate", "--model", "31b", "--engine", "tensorrt"], ("tensorrt", "transformers")),
    ("unknown-command", ["plan"], ("plan", "params", "estimate", "fit")),
    ("negative-context", ["estimate", "--model", "31b", "--context", "-5"], ("--context", "-5")),
    ("zero-batch", ["estimate", "--model", "31b", "--batch", "0"], ("--batch", "0")),
    ("non-integer-context", ["estimate", "--model", "31b", "--context", "lots"], ("--context", "lots")),
    ("context-above-max", ["estimate", "--model", "e2b", "--context", "200000"], ("gemma-4-e2b", "131,072", "200,000")),
    ("thinking-above-max", ["estimate", "--model", "31b", "--context", "262144", "--thinking-tokens", "1"], ("gemma-4-31b", "thinking", "262,145")),
    ("audio-on-31b", ["estimate", "--model", "31b", "--audio-seconds", "10"], ("gemma-4-31b", "audio")),
    ("nan-audio", ["estimate", "--model", "e2b", "--audio-seconds", "nan"], ("--audio-seconds",)),
    ("bad-image-budget", ["estimate", "--model", "31b", "--images", "1", "--image-tokens", "100"], ("--image-tokens", "280")),
    ("gguf-on-transformers", ["estimate", "--model", "31b", "--weights", "q4_k_m"], ("transformers", "gguf-q4_k_m", "llama.cpp")),
    ("fp8-kv-on-transformers", ["estimate", "--model", "31b", "--kv-dtype", "fp8"], ("transformers", "fp8")),
    ("missing-subcommand", [], ("command",)),
    ("missing-model", ["estimate"], ("--model",)),
    ("missing-model-value", ["estimate", "--model"], ("--model",)),
    ("fit-without-gpu", ["fit"], ("--gpu",)),
    ("gpus-3-on-31b", ["estimate", "--model", "31b", "--gpus", "3"], ("3", "32", "1, 2, 4, 8, 16, 32")),
    ("gpus-0", ["estimate", "--model", "31b", "--gpus", "0"], ("--gpus", "0")),
    ("gpus-too-many", ["estimate", "--model", "e2b", "--gpus", "1024"], ("--gpus", "1024")),
]


@pytest.mark.parametrize(("argv", "words"), [case[1:] for case in BAD_INPUT], ids=[case[0] for case in BAD_INPUT])
def test_bad_input_exits_2_with_one_line_that_names_the_problem(capsys, argv, words):
    status, out, err = cli(capsys, *argv)
    assert status == 2
    assert out == ""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.mark.parametrize(
    ("argv", "word"),
    [
        (["fit", "--gpu", "h100", "--engine", "transformers", "--model", "31b", "--gpus", "3"], "32"),
        (["fit", "--gpu", "h100", "--engine", "transformers", "--model", "31b", "--weights", "q4_k_m"], "q4_k_m"),
        (["fit", "--gpu", "h100", "--model", "e2b", "--context", "200000"], "131,072"),
    ],
)
def test_fit_on_an_impossible_explicit_cell_says_why(capsys, argv, word):
    status, out, err = cli(capsys, *argv, "--json")
    assert status == 2
    assert len(err.strip().splitlines()) == 1 and word in err


# --- the real module, in a subprocess ----------------------------------------------------------


def test_module_params_json():
    done = run_module("params", "--model", "26b-a4b", "--json")
    assert (done.returncode, done.stderr) == (0, "")
    figures = json.loads(done.stdout)
    assert set(figures) == PARAMS_KEYS and figures["model"] == "gemma-4-26b-a4b"


def test_module_estimate_json_matches_in_process(capsys):
    argv = ["estimate", "--model", "31b", "--context", str(T), "--gpu", "h100", "--json"]
    done = run_module(*argv)
    assert (done.returncode, done.stderr) == (0, "")
    result = json.loads(done.stdout)
    check_estimate_shape(result)
    assert result["kv_cache"]["full_attention_bytes"] == HAND_KV["gemma-4-31b"]["full"]
    assert FIT_KEYS <= set(result["fit"])
    assert json.loads(cli(capsys, *argv)[1]) == result


def test_module_fit_json():
    done = run_module("fit", "--gpu", "H100", "--engine", "transformers", "--json")
    assert (done.returncode, done.stderr) == (0, "")
    loaded = [fmt for fmt, engines in FORMAT_ENGINES.items() if "transformers" in engines]
    expected = sum(fmt not in EXPERT_ONLY_FORMATS or model in MOE_IDS for model in MODEL_IDS for fmt in loaded)
    assert len(json.loads(done.stdout)) == expected


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["estimate", "--model", "gemma-5"],
        ["estimate", "--model", "e2b", "--context", "200000"],
        ["estimate", "--model", "31b", "--gpus", "3", "--json"],
        ["fit"],
    ],
    ids=["no-subcommand", "unknown-model", "context-above-max", "gpus-3", "fit-without-gpu"],
)
def test_module_bad_input_exits_2_without_a_traceback(argv):
    done = run_module(*argv)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    assert len([line for line in done.stderr.splitlines() if line.strip()]) == 1, done.stderr


def test_module_reports_a_broken_catalogue_in_one_line_with_status_1(tmp_path):
    """$GEMMA4_PLANNER_DATA points the CLI at another folder; a bad cell there is named."""
    data = tmp_path / "data"
    shutil.copytree(DATA, data)
    lines = (data / "gpus.csv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    row_id = lines[3].split(",")[0]
    cells = next(csv.reader([lines[3]]))
    cells[header.index("memory_bytes")] = "lots"
    lines[3] = ",".join(f'"{cell}"' for cell in cells)
    (data / "gpus.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "core", "params", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "GEMMA4_PLANNER_DATA": str(data)},
    )
    assert done.returncode == 1
    assert done.stdout == "" and "Traceback" not in done.stderr
    (line,) = [line for line in done.stderr.splitlines() if line.strip()]
    for word in ("gpus.csv", "line 4", row_id, "'memory_bytes'"):
        assert word in line, (word, line)


# --- --config: any model's config.json beside Gemma 4 ---

CONFIGS = DATA / "configs"


def test_params_config_counts_the_file_beside_gemma_4(capsys):
    figures = cli_json(capsys, "params", "--config", str(CONFIGS / "llama-3.1-8b.json"))
    by_model = {f["model"]: f for f in figures}
    assert set(MODEL_IDS) < set(by_model)
    # Llama 3.1 8B by hand: 2 x 128,256 x 4,096 + 32 x (41,943,040 + 176,160,768 + 8,192) + 4,096.
    assert by_model["custom1-llama-3-1-8b"]["total"] == 2 * 128_256 * 4096 + 32 * (41_943_040 + 176_160_768 + 8_192) + 4096


def test_estimate_config_defaults_to_the_imported_model(capsys):
    result = cli_json(
        capsys, "estimate", "--config", str(CONFIGS / "llama-3.1-8b.json"), "--name", "Llama 8B",
        "--context", "8192", "--kv-dtype", "bf16",
    )
    assert result["model"] == "custom1-llama-8b"
    # 32 layers x 8 kv heads x 128 x K and V x 2 bytes = 131,072 bytes per token.
    assert result["kv_cache_bytes"] == 8192 * 131_072


def test_fit_config_adds_rows_for_the_imported_model(capsys):
    rows = cli_json(capsys, "fit", "--gpu", "h100", "--config", str(CONFIGS / "gpt-oss-20b.json"))
    oss = {row["weight_format"] for row in rows if row["model"] == "custom1-gpt-oss-20b"}
    assert {"bf16", "mxfp4-experts"} <= oss
    assert {row["model"] for row in rows} >= set(MODEL_IDS)


def test_config_notes_go_to_stderr(capsys):
    status, out, err = cli(capsys, "params", "--config", str(CONFIGS / "gemma-3-27b-it.json"), "--json")
    assert status == 0 and json.loads(out)
    assert "note:" in err and "vocab_size = 262,208" in err


@pytest.mark.parametrize(
    "argv,message",
    [
        (["params", "--config", "/nonexistent/config.json"], "cannot read /nonexistent/config.json"),
        (["params", "--config", str(DATA / "gpus.csv")], "not valid JSON"),
        (["params", "--config", str(CONFIGS / "phi-4.json"), "--config", str(CONFIGS / "phi-4.json")], "same name"),
        (["params", "--name", "x"], "one --config per --name"),
        (["params"] + ["--config", str(CONFIGS / "phi-4.json")] * 4, "at most 3"),
        (["params", "--config", str(CONFIGS / "phi-4.json"), "--name", "bad\nname"], "a model name"),
    ],
)
def test_bad_config_flags_exit_2_with_one_line(capsys, argv, message):
    status, out, err = cli(capsys, *argv)
    assert status == 2 and out == ""
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


# --- params tables show names -------------------------------------------------------------------


def test_params_table_heads_columns_with_names_not_ids(capsys):
    status, out, err = cli(
        capsys, "params", "--config", str(CONFIGS / "llama-3.1-8b.json"), "--name", "Our Llama",
        "--config", str(CONFIGS / "phi-4.json"),
    )
    assert status == 0
    header = out.splitlines()[0]
    for name in (*MODEL_NAMES.values(), "Our Llama", "phi-4"):
        assert name in header, (name, header)
    assert "custom" not in out and "gemma-4-" not in out


def test_params_json_names_imported_models_by_their_given_name(capsys):
    figures = cli_json(capsys, "params", "--config", str(CONFIGS / "phi-4.json"), "--name", "Phi Four")
    assert {f["model"]: f["name"] for f in figures}["custom1-phi-four"] == "Phi Four"


# --- values that start with '-' after a flag ----------------------------------------------------

# Every flag that takes a number, a value that starts with '-' (or is not finite), and what the
# one line must say. argparse alone read '-5GiB', '-inf' or '-1e9' as an option ("expected one argument").
NEGATIVE_VALUES = [
    ("--kv-cache-memory-bytes", "-5GiB", "must be at least 1 byte"),
    ("--kv-cache-memory-bytes", "-1", "must be at least 1 byte"),
    ("--kv-cache-memory-bytes", "-0", "must be at least 1 byte"),
    ("--kv-cache-memory-bytes", "0", "must be at least 1 byte"),
    ("--kv-cache-memory-bytes", "-inf", "not a size"),
    ("--kv-cache-memory-bytes", "nan", "not a size"),
    ("--kv-cache-memory-bytes", "inf", "not a size"),
    ("--kv-cache-memory-bytes", "1e400", "not a size"),
    ("--kv-cache-memory-bytes", "9" * 400, "not a size"),
    ("--kv-cache-memory-bytes", "99999999999999999999TB", "at most"),
    ("--gpu-memory-utilization", "-inf", "finite"),
    ("--gpu-memory-utilization", "inf", "finite"),
    ("--gpu-memory-utilization", "-nan", "finite"),
    ("--gpu-memory-utilization", "nan", "finite"),
    ("--gpu-memory-utilization", "-1e9", "greater than 0"),
    ("--gpu-memory-utilization", "-0.5", "greater than 0"),
    ("--gpu-memory-utilization", "1e999", "finite"),
    ("--context", "-1", "greater than 0"),
    ("--context", "-1e9", "invalid int"),
    ("--batch", "-3", "greater than 0"),
    ("--parallel", "-3", "greater than 0"),
    ("--gpus", "-2", "greater than 0"),
    ("--tensor-parallel", "-2", "greater than 0"),
    ("--images", "-1", "greater than or equal to 0"),
    ("--image-tokens", "-70", "70, 140, 280, 560 or 1120"),
    ("--audio-seconds", "-1", "greater than or equal to 0"),
    ("--audio-seconds", "-inf", "finite"),
    ("--audio-seconds", "-nan", "finite"),
    ("--thinking-tokens", "-5", "greater than or equal to 0"),
    ("--n-ubatch", "-1", "greater than 0"),
    ("--max-num-batched-tokens", "-1", "greater than 0"),
    ("--max-num-seqs", "-1", "greater than 0"),
    ("--block-size", "-16", "8, 16, 32, 64 or 128"),
]


@pytest.mark.parametrize(("flag", "value", "words"), NEGATIVE_VALUES, ids=[f"{f}={v[:12]}" for f, v, _ in NEGATIVE_VALUES])
@pytest.mark.parametrize("joined", [False, True], ids=["spaced", "joined"])
def test_a_bad_value_after_a_flag_gets_that_flags_own_message(capsys, flag, value, words, joined):
    engine = "llama.cpp" if flag == "--n-ubatch" else "vllm"
    given = [f"{flag}={value}"] if joined else [flag, value]
    status, out, err = cli(capsys, "estimate", "--model", "e2b", "--engine", engine, *given)
    assert (status, out) == (2, "")
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert "expected one argument" not in err
    # The flag the user typed, and the value as typed (clipped when long) or as parsed.
    assert f"error: {flag}: " in err, err
    assert value[:30] in err or f"(got {as_float(value)!r})" in err, err
    assert words in err, err


def as_float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def test_the_kv_cache_size_message_reads_like_the_others(capsys):
    status, _, err = cli(capsys, "estimate", "--model", "31b", "--engine", "vllm", "--kv-cache-memory-bytes", "-5GiB")
    assert (status, err) == (2, "error: --kv-cache-memory-bytes: must be at least 1 byte (got '-5GiB')\n")
    status, _, err = cli(capsys, "estimate", "--model", "31b", "--engine", "vllm", "--gpu-memory-utilization", "-inf")
    assert (status, err) == (2, "error: --gpu-memory-utilization: input should be a finite number (got -inf)\n")


@pytest.mark.parametrize(
    ("text", "size_bytes"),
    [("4563402752", 4563402752), ("4.25GiB", 4563402752), ("4.5 GB", 4_500_000_000), ("+3", 3),
     ("1048576GiB", 2**50), ("99999999999999999999", None), ("0.5", None)],
)
def test_sizes_are_exact_and_bounded(capsys, text, size_bytes):
    status, out, err = cli(capsys, "estimate", "--model", "31b", "--engine", "vllm", "--gpu", "h100",
                           "--kv-cache-memory-bytes", text, "--json")
    if size_bytes is None:
        assert status == 2 and err.count("\n") == 1, err
    else:
        assert status == 0, err
        assert json.loads(out)["kv_cache_bytes"] >= 0


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["estimate", "--model", "--json"], "error: --model: expected one argument\n"),
        (["estimate", "--model", "e2b", "--gpu", "-h"], "error: --gpu: expected one argument\n"),
        (["estimate", "--model", "e2b", "--context"], "error: --context: expected one argument\n"),
    ],
)
def test_an_option_after_a_flag_is_still_an_option(capsys, argv, line):
    """Only values are attached to their flag: a flag followed by another option lacks its value."""
    status, out, err = cli(capsys, *argv)
    assert (status, out, err) == (2, "", line)


def test_a_model_name_that_starts_with_a_dash_is_looked_up(capsys):
    status, _, err = cli(capsys, "estimate", "--model", "-e2b")
    assert status == 2 and "unknown model '-e2b'" in err


def test_abbreviated_flags_take_dash_values_too(capsys):
    status, _, err = cli(capsys, "estimate", "--model", "e2b", "--engine", "vllm", "--kv-cache-mem", "-5GiB")
    assert (status, err) == (2, "error: --kv-cache-memory-bytes: must be at least 1 byte (got '-5GiB')\n")


def test_the_module_reports_a_dash_value_in_one_line():
    done = run_module("estimate", "--model", "31b", "--engine", "vllm", "--kv-cache-memory-bytes", "-5GiB")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "error: --kv-cache-memory-bytes: must be at least 1 byte (got '-5GiB')\n"


# --- --config reads: regular files only, at most 1 MiB, never blocking ---------------------------
# These go through hf_import.load_config_file, which reads with core.files.read_user_file.


def run_config(path, timeout_s: float = 20) -> subprocess.CompletedProcess:
    """`python -m core params --config PATH` with a 1 GiB address-space cap and a time limit,
    so a read that never ends fails this test instead of filling memory or hanging the suite."""
    import resource

    def cap_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))

    try:
        return subprocess.run(
            [sys.executable, "-m", "core", "params", "--config", str(path)],
            cwd=ROOT, capture_output=True, text=True, timeout=timeout_s, preexec_fn=cap_memory,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"--config {path} still running after {timeout_s} s (a blocking or endless read)")


def check_one_line(done: subprocess.CompletedProcess, *words: str) -> None:
    assert done.returncode == 2, done.stderr[-500:]
    assert done.stdout == "" and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr[-500:]
    for word in words:
        assert word in done.stderr, (word, done.stderr)


def test_config_dev_zero_is_refused_at_once():
    check_one_line(run_config("/dev/zero"), "/dev/zero", "character device")


def test_config_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "config.json"
    os.mkfifo(fifo)
    check_one_line(run_config(fifo), str(fifo), "FIFO")


def test_config_directory_is_refused(tmp_path):
    check_one_line(run_config(tmp_path), str(tmp_path), "directory")


def test_config_over_1_mib_is_refused(tmp_path):
    big = tmp_path / "config.json"
    big.write_bytes(b" " * (2**20 + 1))
    check_one_line(run_config(big), str(big), "1,048,576")


def test_config_missing_path_says_so(tmp_path):
    missing = tmp_path / "nowhere" / "config.json"
    check_one_line(run_config(missing), f"cannot read {missing}", "No such file or directory")


def test_config_symlink_to_dev_zero_is_refused(tmp_path):
    link = tmp_path / "config.json"
    link.symlink_to("/dev/zero")
    check_one_line(run_config(link), str(link), "character device")


# --- start-up: what `python -m core estimate` imports -------------------------------------------

# Only the sweep (numpy, pandas), `calibrate` and --config (the importer) need these.
HEAVY_MODULES = {"numpy", "pandas", "core.calibrate", "core.sweep", "core.quality", "core.hf_import"}


def imported_modules(*argv: str) -> set[str]:
    """Every module `python -m core ARGV` imports, from -X importtime's report on stderr."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "core", *argv], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}


def test_estimate_imports_neither_numpy_nor_pandas_nor_calibration():
    modules = imported_modules("estimate", "--model", "e2b")
    assert "core.estimate" in modules  # the report was read
    assert not modules & HEAVY_MODULES, modules & HEAVY_MODULES


def test_fit_and_params_import_neither_numpy_nor_pandas():
    for argv in (["fit", "--gpu", "h100", "--model", "e2b"], ["params", "--config", str(CONFIGS / "phi-4.json")]):
        modules = imported_modules(*argv)
        assert not modules & {"numpy", "pandas", "core.calibrate"}, (argv, modules & HEAVY_MODULES)


def test_calibrate_still_loads_what_it_needs(capsys):
    status, out, _ = cli(capsys, "calibrate", "--json")
    assert status == 0 and json.loads(out)


def test_the_data_folder_is_resolved_once_per_value(monkeypatch, tmp_path):
    """load_catalog() resolves $GEMMA4_PLANNER_DATA (or data/) once, and still sees a change."""
    from core.catalog import DATA_DIR_VARIABLE, load_catalog

    monkeypatch.delenv(DATA_DIR_VARIABLE, raising=False)
    default = load_catalog()
    calls: list[Path] = []
    real_resolve = Path.resolve

    def counting_resolve(self, strict=False):
        calls.append(self)
        return real_resolve(self, strict)

    monkeypatch.setattr(Path, "resolve", counting_resolve)
    for _ in range(3):
        assert load_catalog() is default
    assert calls == []
    data = tmp_path / "data"
    shutil.copytree(DATA, data)
    monkeypatch.setenv(DATA_DIR_VARIABLE, str(data))
    other = load_catalog()
    assert other is not default and load_catalog() is other
    assert len(calls) == 1


def test_fit_on_a_browser_lists_the_refused_variants_with_the_limit(capsys):
    assert main(["fit", "--gpu", "browser-ios-safari-26", "--model", "e2b"]) == 0
    printed = capsys.readouterr().out
    refused = printed.split("refused here:")[1].splitlines()
    # E2B's per-layer embedding table at 4 bits: 262,144 x 35 x 256 / 2 bytes = 1.17 GB > 1 GiB.
    q4 = [line for line in refused if "gemma-4-e2b onnx-q4:" in line]
    assert len(q4) == 1 and "1.17 GB" in q4[0] and "maxBufferSize" in q4[0]
    # Only the requested model is listed.
    assert not [line for line in refused if "gemma-4-31b" in line]


def test_fit_on_a_datacenter_gpu_refuses_nothing(capsys):
    assert main(["fit", "--gpu", "h100", "--model", "31b"]) == 0
    assert "refused here" not in capsys.readouterr().out


def test_browser_backend_flag_plans_wasm_and_writes_it_into_the_page_script(capsys):
    # E2B q4 on WASM in an 8 GiB Chrome tab: the 4 GiB wasm32 heap is what is usable.
    argv = ["estimate", "--model", "e2b", "--gpu", "browser-chrome-laptop-8gb", "--weights", "onnx-q4",
            "--context", "4096", "--text-only"]
    assert main([*argv, "--browser-backend", "wasm", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["engine_report"]["backend"] == "wasm"
    assert 'device: "wasm"' in report["launch_command"]["command"]
    assert report["fit"]["usable_bytes"] == 4 * 2**30
    assert main([*argv, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["engine_report"]["backend"] == "webgpu"


def test_browser_backend_webgpu_on_a_browser_without_it_is_an_error_naming_the_way_out(capsys):
    code = main(["estimate", "--model", "e2b", "--gpu", "browser-ios-safari-18", "--browser-backend", "webgpu"])
    assert code != 0
    assert "has no WebGPU" in capsys.readouterr().err


def test_browser_backend_takes_only_its_choices(capsys):
    assert main(["estimate", "--browser-backend", "webgl"]) == 2
    assert "--browser-backend: invalid choice: 'webgl'" in capsys.readouterr().err
