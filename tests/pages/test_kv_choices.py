"""The KV cache types a runtime offers, with the ones it refuses for Gemma 4 marked and explained."""

from tests.pages.test_planner_launch import planner
from tests.rendered import plain


def test_vllm_marks_turboquant_as_refused_and_says_why_when_picked():
    app = planner(models="31b", engine="vllm", gpus="h100")
    options = app.selectbox(key="planner_kv").options
    # vllm#40094: Gemma 4 is pinned to TRITON_ATTN, which rejects every turboquant_* dtype.
    turbo = [o for o in options if o.startswith("TurboQuant")]
    assert len(turbo) == 4 and all(o.endswith("· refused for Gemma 4") for o in turbo)
    assert not any("refused" in o for o in options if not o.startswith("TurboQuant"))
    app.selectbox(key="planner_kv").set_value("turboquant_4bit_nc").run()
    assert not app.exception
    assert any("TRITON_ATTN" in plain(e.value) for e in app.error)


def test_mlx_offers_mlx_vlm_turboquant_and_marks_mlx_lm_kv_bits():
    app = planner(models="31b", engine="mlx", gpus="apple-m4-max-128gb")
    options = app.selectbox(key="planner_kv").options
    # mlx-lm's --kv-bits fails on Gemma 4's rotating sliding-window caches; mlx-vlm's TurboQuant runs.
    assert all(o.endswith("· refused for Gemma 4") for o in options if "--kv-bits" in o)
    assert any(o.startswith("TurboQuant 3.5-bit (mlx-vlm) (3.56 bits)") and "refused" not in o for o in options)
