"""The planner shows the command that starts each chosen model, built from the link's values."""

from tests.pages.test_app import open_page


def planner(**query: str):
    app = open_page("pages/planner.py", **query)
    assert not app.exception, app.exception
    return app


def test_each_model_gets_its_vllm_command_on_the_first_device():
    app = planner(models="31b,e4b", engine="vllm", weights="bf16", gpus="h100", count="2", ctx="131072", seqs="3")
    commands = [c.value for c in app.code if c.value.startswith("vllm serve")]
    # Repositories from Google's model cards; flags as `vllm serve --help` spells them.
    assert [c.split()[2] for c in commands] == ["google/gemma-4-31B-it", "google/gemma-4-E4B-it"]
    for command in commands:
        for flag in ("--tensor-parallel-size 2", "--max-model-len 131072", "--max-num-seqs 3"):
            assert flag in command
    assert "Start it: the launch command on 2 x NVIDIA H100 80GB SXM5" in [s.value for s in app.subheader]


def test_llama_server_command_carries_the_context_and_the_fits_offload():
    # 31B Q4_K_M is 18.7e9 bytes (steampunque card, data/gguf_files.csv); with llama-server's 4 auto slots at 32K and its 1 GiB
    # --fit-target, a 24 GB RTX 4090 cannot hold all 60 layers (gemma4-architecture.md), so the
    # command offloads: -ngl below the layer count.
    app = planner(models="31b", engine="llama.cpp", weights="gguf-q4_k_m", gpus="rtx-4090", ctx="32768")
    (command,) = [c.value for c in app.code if c.value.startswith("llama-server")]
    assert "-hf ggml-org/gemma-4-31B-it-GGUF:Q4_K_M" in command and "-c 32768" in command
    layers_on_gpu = int(command.split("-ngl ")[1].split()[0])
    assert 0 < layers_on_gpu < 60


def test_vllm_metal_on_a_mac_plans_with_its_own_default_utilisation():
    # vllm-metal README @211a1e4: `vllm serve <mlx repo> --max-model-len N`; 0.92 is the default
    # vllm-metal quotes for vLLM 0.27.1 (docs/research/mistralrs-vllm-metal.md §2.2).
    app = planner(models="e4b", engine="vllm-metal", weights="mlx-4bit", gpus="apple-m4-max-128gb", ctx="32768", seqs="2")
    (command,) = [c.value for c in app.code if c.value.startswith("vllm serve")]
    assert command.split()[2] == "mlx-community/gemma-4-e4b-it-4bit"
    for flag in ("--max-model-len 32768", "--max-num-seqs 2", "--gpu-memory-utilization 0.92"):
        assert flag in command
    assert "--tensor-parallel-size" not in command


def _vllm_metal_command(app) -> str:
    (command,) = [c.value for c in app.code if c.value.startswith("vllm serve")]
    return command


def test_vllm_metal_can_be_pinned_to_exactly_0_9_and_the_link_keeps_it():
    # The default share is 0.92. A user who sets 0.9 for vllm-metal gets 0.9 (before, 0.9 read
    # as "unset" and became 0.92), and the link keeps it.
    app = planner(models="e4b", engine="vllm-metal", weights="mlx-4bit", gpus="apple-m4-max-128gb", ctx="32768")
    slider = app.slider(key="planner_gpu_util")
    assert slider.value == 0.92  # the slider shows the runtime's own share
    slider.set_value(0.9).run()
    assert not app.exception
    assert "--gpu-memory-utilization 0.9 " in _vllm_metal_command(app) + " "
    assert app.query_params.get("gpu_util") in ("0.9", ["0.9"])
    reopened = planner(models="e4b", engine="vllm-metal", weights="mlx-4bit", gpus="apple-m4-max-128gb", ctx="32768", gpu_util="0.9")
    assert "--gpu-memory-utilization 0.9 " in _vllm_metal_command(reopened) + " "


def test_vllm_shows_its_own_default_share():
    # vLLM's CacheConfig: gpu_memory_utilization = Field(default=0.92) (vllm/config/cache.py @002f10e0).
    app = planner(models="31b", engine="vllm", weights="bf16", gpus="nvidia-h100-sxm", ctx="8192")
    assert app.slider(key="planner_gpu_util").value == 0.92


def _mistralrs_command(app) -> str:
    (command,) = [c.value for c in app.code if c.value.startswith("mistralrs serve")]
    return command


def test_mistralrs_command_and_its_paged_attention_setting_travel_in_the_link():
    # mistral.rs README @9e92262: `mistralrs serve -m google/gemma-4-E4B-it`; --isq by type name.
    app = planner(models="e4b", engine="mistral.rs", weights="isq-q4k", gpus="rtx-4090", ctx="8192", seqs="2")
    command = _mistralrs_command(app)
    assert command.startswith("mistralrs serve -m google/gemma-4-E4B-it --isq q4k --max-seqs 2")
    assert "--paged-attn" not in command  # auto: on for CUDA
    app.selectbox(key="planner_paged_attn").set_value("off").run()
    assert not app.exception
    assert "--paged-attn off" in _mistralrs_command(app)
    assert app.query_params.get("paged_attn") in ("off", ["off"])
    reopened = planner(models="e4b", engine="mistral.rs", weights="isq-q4k", gpus="rtx-4090", ctx="8192", paged_attn="off")
    assert "--paged-attn off" in _mistralrs_command(reopened)


def test_a_bad_paged_attention_value_in_a_link_falls_back_with_a_notice():
    app = planner(models="e4b", engine="mistral.rs", weights="isq-q4k", gpus="rtx-4090", paged_attn="**maybe**")
    assert "--paged-attn" not in _mistralrs_command(app)
    notices = " ".join(str(w.value) for w in app.warning) + " ".join(str(i.value) for i in app.info)
    assert "paged_attn" in notices


def test_mistralrs_pa_context_len_from_the_link_sizes_the_pool_and_the_command():
    # 16,896 tokens x 100,352 B per token (E4B, every layer, bf16) = 1,617 MiB.
    app = planner(models="e4b", engine="mistral.rs", weights="bf16", gpus="rtx-4090", ctx="8192", pa_ctx="16896")
    assert "--pa-context-len 16896" in _mistralrs_command(app)
    assert app.number_input(key="planner_pa_ctx").value == 16896
    assert app.query_params.get("pa_ctx") in ("16896", ["16896"])
