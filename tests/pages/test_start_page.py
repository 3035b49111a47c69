"""The start page answers "what can I run?" for the devices people have (AppTest through app.py)."""

import csv

import pytest

from core.catalog import DATA_DIR, load_catalog
from tests.pages.test_app import open_page
from tests.pages.test_one_scenario import move_to, widget

CATALOG = load_catalog()
GIB = 2**30


def headline(app) -> str:
    return app.subheader[0].value


def metrics(app) -> dict[str, str]:
    return {m.label: m.value for m in app.metric}


def test_the_default_page_asks_for_the_device_and_answers_first():
    app = open_page("pages/start.py")
    assert not app.exception
    assert app.title[0].value == "What can I run?"
    assert widget(app, "Your device").value == "nvidia-rtx-4090"
    assert headline(app).startswith("Run Gemma 4 ")
    assert set(metrics(app)) == {"MMLU Pro score", "Speed per user", "Memory", "Longest context (tokens)"}


def test_a_pi_5_gets_a_small_model_under_a_cpu_runtime():
    app = open_page("pages/start.py", gpu="rpi5-8gb")
    # Every published 26B-A4B (and so 31B) file, down to Unsloth's 2-bit one, is larger than the
    # Pi's 8 GB, so only E2B or E4B can be the answer, under llama.cpp or Ollama (no CUDA, no Metal).
    with open(DATA_DIR / "gguf_files.csv", encoding="utf-8") as handle:
        sizes = [int(r["size_bytes"]) for r in csv.DictReader(handle) if r["model"] == "26b" and not r["ftype"].startswith("mmproj")]
    assert min(sizes) > 8e9
    assert headline(app) in {f"Run Gemma 4 {m} with {r}" for m in ("E2B", "E4B") for r in ("llama.cpp", "Ollama")}


def test_a_16_gb_macbook_gets_a_mac_runtime_and_no_nvidia_format():
    app = open_page("pages/start.py", gpu="apple-m4-16gb")
    assert headline(app).endswith(("with MLX", "with llama.cpp", "with Ollama"))
    alternatives = app.dataframe[0].value
    assert not alternatives["weight format"].str.contains("NVFP4|AWQ|GPTQ|FP8").any()
    assert set(alternatives["runtime"]) <= {"MLX", "llama.cpp", "Ollama"}


def test_the_use_case_sets_the_context_and_a_link_to_it_opens_there():
    app = open_page("pages/start.py", use="documents")
    assert widget(app, "Context per request").value == 131072
    memory = float(metrics(app)["Memory"].split()[0].replace(",", ""))
    chat = open_page("pages/start.py")
    assert float(metrics(chat)["Memory"].split()[0].replace(",", "")) != memory or headline(chat) != headline(app)


def test_changing_the_use_case_brings_its_context_unless_the_link_set_one():
    app = open_page("pages/start.py", ctx="32768")
    assert widget(app, "Context per request").value == 32768
    app.radio[0].set_value("documents")
    app = app.run()
    assert widget(app, "Context per request").value == 131072


def test_serving_users_sizes_that_many_sequences():
    app = open_page("pages/start.py", use="serving", users="16", gpu="nvidia-h100-sxm")
    assert widget(app, "Users at once").value == 16
    app = move_to(app, "pages/fit.py")
    assert widget(app, "Concurrent sequences").value == 16
    assert widget(app, "Device").value == "nvidia-h100-sxm"


def test_a_typed_in_device_is_answered_and_its_memory_bar_matches_it():
    app = open_page("pages/start.py", gpu="my-device", dev_mem="12", dev_kind="nvidia")
    assert not app.exception
    bar = app.get("progress")[0]
    # The bar is labelled with the usable memory of a 12 GiB NVIDIA card, less the driver's share.
    usable = float(bar.proto.text.split(" of ")[1].split()[0])
    assert 10.0 < usable < 12.0


@pytest.mark.parametrize(("query", "fragment"), [({"gpu": "bogus"}, "gpu=bogus"), ({"use": "party"}, "use=party"), ({"users": "-3"}, "users=-3")])
def test_a_bad_link_falls_back_with_a_notice(query, fragment):
    app = open_page("pages/start.py", **query)
    assert not app.exception
    assert any(fragment in w.value for w in app.warning)
    assert headline(app).startswith("Run Gemma 4 ")


def test_nothing_fits_says_so_plainly():
    app = open_page("pages/start.py", gpu="my-device", dev_mem="0.5", dev_kind="cpu")
    assert not app.exception
    assert not app.metric
    assert any("Nothing fits" in w.value for w in app.warning)


def launch(app) -> str:
    return next(c.value for c in app.code if c.value.startswith(("llama-server", "ollama", "OLLAMA", "vllm", "mlx_", "from ", "import ")))


def test_the_answer_carries_the_command_that_starts_it():
    app = open_page("pages/start.py", gpu="rpi5-8gb")
    command = launch(app)
    if headline(app).endswith("llama.cpp"):
        # One request of 8,192 tokens: llama-server's -c is the whole KV pool (4 auto slots share it).
        assert command.startswith("llama-server -hf ") and " -c 8192" in command
        assert "-ctk" not in command  # the runtime's own f16 cache: no flag
    else:
        assert "ollama run gemma4:e" in command


def test_serving_sixteen_users_sizes_the_pool_for_all_of_them():
    app = open_page("pages/start.py", gpu="nvidia-h100-sxm", use="serving", users="16")
    command = launch(app)
    if command.startswith("llama-server"):
        assert " -c 131072" in command and " -np 16" in command  # 16 x 8,192 tokens, 16 slots
    elif command.startswith("vllm"):
        assert "--max-num-seqs 16" in command and "--max-model-len 8192" in command
    else:
        assert "OLLAMA_NUM_PARALLEL=16" in command
