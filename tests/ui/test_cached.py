"""The planner's precision chart says why a bar is missing, from the catalogue's own rules."""

from core.catalog import load_catalog
from core.estimate import MemoryRequest
from ui.cached import sequence_and_precision_charts

MODELS = ("gemma-4-e2b", "gemma-4-e4b", "gemma-4-26b-a4b", "gemma-4-31b")


def _note(engine: str, weight_format: str) -> str:
    request = MemoryRequest(model="31b", engine=engine, weight_format=weight_format, context_tokens=8192, gpu="nvidia-h100-sxm")
    _, precision = sequence_and_precision_charts(MODELS, request, ())
    (note,) = [a.text for a in precision.layout.annotations if a.text.startswith("No bar")]
    return note


def test_an_experts_only_format_is_explained_by_the_dense_models():
    # data/weight_formats.csv: MXFP4 quantises routed experts only; of Gemma 4 only 26B-A4B has experts.
    names = {m.id: m.display_name for m in load_catalog().models}
    note = _note("vllm", "bf16")
    assert "MXFP4" in note and "mixture-of-experts" in note
    assert f"{names['gemma-4-e2b']}, {names['gemma-4-e4b']}, {names['gemma-4-31b']} are dense" in note
    assert names["gemma-4-26b-a4b"] not in note


def test_a_published_file_format_is_explained_by_the_files_that_exist():
    # data/weight_formats.csv: Unsloth's non-QAT UD-Q4_K_XL lists a file for 26B-A4B only.
    note = _note("llama.cpp", "gguf-q4_k_m")
    line = next(line for line in note.split("<br>") if "UD-Q4_K_XL," in line or "UD-Q4_K_XL:" in line)
    assert "published as files for some models only, none for Gemma 4 E2B, Gemma 4 E4B, Gemma 4 31B" in line
    assert "mixture-of-experts" not in note
