"""Unsloth's dynamic quants: formats known by their published file sizes only."""

import csv

import pytest

from core.catalog import DATA_DIR, load_catalog
from core.estimate import MemoryRequest, PlanningError, estimate
from core.fit import fit_matrix

CATALOG = load_catalog()
# The published sizes, read straight from the data file (not through the catalogue).
PUBLISHED = {row["id"]: int(row["size_bytes"]) for row in csv.DictReader(open(DATA_DIR / "gguf_files.csv"))}


def request(model: str, weights: str, **changes) -> MemoryRequest:
    return MemoryRequest(model=model, engine="llama.cpp", weight_format=weights, kv_cache_dtype="fp16", context_tokens=8192, **changes)


@pytest.mark.parametrize(
    ("model", "weights", "file_id"),
    [
        ("26b-a4b", "gguf-ud-q4_k_xl", "unsloth-26b-ud-q4kxl"),
        ("31b", "gguf-ud-iq2_xxs", "unsloth-31b-ud-iq2xxs"),
        ("e2b", "gguf-ud-q4_k_xl-qat", "unsloth-e2b-qat-ud-q4kxl"),
    ],
)
def test_a_published_file_is_read_whole_and_its_tensors_fill_it(model, weights, file_id):
    text_only = estimate(request(model, weights, text_only=True))
    # What llama.cpp reads is the published file itself (no mmproj with --no-mmproj).
    assert text_only.files_bytes == PUBLISHED[file_id]
    # Its weights (device and host, without llama.cpp's second copy of the tied embedding)
    # fill the file less its header (~14 MB for a 262,144-token vocabulary) and, in the E
    # models, the KV-shared layers' k/v tensors the file carries but nothing loads (12-35 MB).
    embedding = next(w.bytes for w in text_only.weights if w.component == "token_embedding")
    tensors = text_only.weights_bytes + text_only.host_bytes - embedding
    assert 0 < PUBLISHED[file_id] - tensors < 50e6
    # With the encoders, the F16 mmproj comes on top.
    with_mmproj = estimate(request(model, weights))
    assert with_mmproj.files_bytes > PUBLISHED[file_id]


def test_a_quant_published_for_some_models_is_refused_for_the_others():
    with pytest.raises(PlanningError, match="no published file for Gemma 4 E2B"):
        estimate(request("e2b", "gguf-ud-iq2_xxs"))
    rows = fit_matrix(request("31b", "gguf-q4_k_m", gpu="rtx-4090"), CATALOG)
    models_with = {r.model for r in rows if r.weight_format == "gguf-ud-iq2_xxs"}
    assert models_with == {"gemma-4-26b-a4b", "gemma-4-31b"}


def test_a_smaller_published_file_needs_less_memory():
    # Unsloth's 2-bit 31B file (8.53 GB) against its 3-bit one (11.84 GB): the difference in
    # the weights follows the difference in the files.
    small = estimate(request("31b", "gguf-ud-iq2_xxs", text_only=True))
    large = estimate(request("31b", "gguf-ud-iq3_xxs", text_only=True))
    difference = (large.weights_bytes + large.host_bytes) - (small.weights_bytes + small.host_bytes)
    files = PUBLISHED["unsloth-31b-ud-iq3xxs"] - PUBLISHED["unsloth-31b-ud-iq2xxs"]
    # The tied embedding is loaded twice, so it counts for a little more than the file share.
    assert files <= difference < files * 1.1
