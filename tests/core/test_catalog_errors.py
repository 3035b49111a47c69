"""Catalogues: every shipped file loads, and a malformed copy in tmp_path raises a CatalogError
that names the file, the row or entry, and the field."""

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

import core.catalog
from core.catalog import DATA_DIR, CatalogError, load_catalog

FILES = ("models.json", "weight_formats.csv", "kv_cache_types.csv", "gpus.csv", "runtime.csv", "benchmarks.csv")
CSV_FILES = tuple(name for name in FILES if name.endswith(".csv"))


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A private copy of the shipped data/ directory, free to corrupt."""
    copy = tmp_path / "data"
    shutil.copytree(DATA_DIR, copy)
    return copy


def load_uncached(data_dir: Path) -> core.catalog.Catalog:
    """Load `data_dir` strictly; every test writes its own folder, so the per-folder cache
    never returns an earlier test's catalogue."""
    return load_catalog(data_dir)


def load_error(data_dir: Path) -> CatalogError:
    """The CatalogError that loading `data_dir` raises."""
    with pytest.raises(CatalogError) as caught:
        load_uncached(data_dir)
    return caught.value


def read_rows(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def write_rows(path: Path, rows: list[list[str]]) -> None:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")


def set_cell(path: Path, row_id: str, column: str, value: str) -> None:
    """Overwrite one cell, addressed by the row's key (first column) and the column name."""
    rows = read_rows(path)
    index = rows[0].index(column)
    (row,) = [row for row in rows[1:] if row[0] == row_id]
    row[index] = value
    write_rows(path, rows)


def line_of(path: Path, row_id: str) -> int:
    """1-based physical line on which the row keyed `row_id` starts."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith(f"{row_id},"):
            return number
    raise AssertionError(f"{row_id} not found in {path}")


def data_row(path: Path, position: int) -> str:
    """Key (first cell) of the `position`-th data row (1-based)."""
    return read_rows(path)[position][0]


def check(error: CatalogError, file: str, field: str | None, *problem: str) -> None:
    """The error names `file` and `field`, its message says `problem`, and str() carries all."""
    assert Path(error.file).name == file
    assert error.field == field
    for part in problem:
        assert part in error.problem
    text = str(error)
    assert file in text
    if field is not None:
        assert f"'{field}'" in text
    if error.where is not None:
        assert error.where in text


def models_document(data_dir: Path) -> dict:
    return json.loads((data_dir / "models.json").read_text(encoding="utf-8"))


def model_index(document: dict, model_id: str) -> int:
    return [entry["id"] for entry in document["models"]].index(model_id)


# --- the shipped catalogue ---------------------------------------------------------------------


def test_every_shipped_file_exists():
    for name in FILES:
        assert (DATA_DIR / name).is_file(), name


def test_the_shipped_catalogue_loads():
    catalog = load_uncached(DATA_DIR)
    assert {model.id for model in catalog.models} == {
        "gemma-4-e2b",
        "gemma-4-e4b",
        "gemma-4-26b-a4b",
        "gemma-4-31b",
    }
    for entries in (catalog.weight_formats, catalog.kv_cache_types, catalog.accelerators, catalog.benchmarks):
        assert entries


@pytest.mark.parametrize(
    ("name", "attribute"),
    [
        ("weight_formats.csv", "weight_formats"),
        ("kv_cache_types.csv", "kv_cache_types"),
        ("gpus.csv", "accelerators"),
        ("benchmarks.csv", "benchmarks"),
    ],
)
def test_every_shipped_row_is_loaded(name, attribute):
    catalog = load_uncached(DATA_DIR)
    assert len(getattr(catalog, attribute)) == len(read_rows(DATA_DIR / name)) - 1


def test_every_accelerator_kind_has_a_runtime_row():
    catalog = load_uncached(DATA_DIR)
    for accelerator in catalog.accelerators:
        assert catalog.runtime(accelerator.kind).kind == accelerator.kind


# --- file-level problems -----------------------------------------------------------------------


@pytest.mark.parametrize("name", FILES)
def test_a_missing_file_is_named(data, name):
    (data / name).unlink()
    error = load_error(data)
    check(error, name, None, "missing")
    assert error.where is None


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("content", ["", "  \n\n"], ids=["empty", "blank"])
def test_an_empty_file_is_named(data, name, content):
    (data / name).write_text(content, encoding="utf-8")
    error = load_error(data)
    check(error, name, None, "empty")


@pytest.mark.parametrize("name", CSV_FILES)
def test_a_csv_with_only_a_header_is_named(data, name):
    path = data / name
    path.write_text(path.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    check(load_error(data), name, None, "no data rows")


@pytest.mark.parametrize(
    ("name", "needle"),
    [("gpus.csv", b"NVIDIA L4 24GB"), ("weight_formats.csv", b"INT8 (W8A16)"), ("models.json", b'"Gemma 4 E4B"')],
)
def test_a_file_that_is_not_utf8_names_the_line(data, name, needle):
    path = data / name
    raw = path.read_bytes()
    at = raw.index(needle)
    # Latin-1 "é": a lone 0xE9 byte is not valid UTF-8.
    path.write_bytes(raw[:at] + b"caf\xe9 " + raw[at:])
    line = raw[:at].count(b"\n") + 1
    error = load_error(data)
    check(error, name, None, "UTF-8")
    assert error.where == f"line {line}"


# --- CSV structure -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "column"),
    [
        ("gpus.csv", "memory_bytes"),
        ("gpus.csv", "kind"),
        ("weight_formats.csv", "linear_bits"),
        ("kv_cache_types.csv", "bits_per_value"),
        ("runtime.csv", "driver_reserved_bytes"),
    ],
)
def test_a_missing_column_is_named(data, name, column):
    path = data / name
    rows = read_rows(path)
    index = rows[0].index(column)
    write_rows(path, [row[:index] + row[index + 1 :] for row in rows])
    error = load_error(data)
    check(error, name, column, "column is missing")
    assert error.where is None


def test_a_row_with_too_many_cells_names_line_and_row(data):
    path = data / "gpus.csv"
    rows = read_rows(path)
    header_cells = len(rows[0])
    row_id = rows[4][0]
    rows[4].append("surplus")
    write_rows(path, rows)
    error = load_error(data)
    check(error, "gpus.csv", None, f"{header_cells + 1} cells", f"header has {header_cells}")
    assert f"line {line_of(path, row_id)}" in error.where
    assert "row 4" in error.where
    assert row_id in error.where


def test_a_row_with_too_few_cells_names_the_first_required_field_missing(data):
    path = data / "kv_cache_types.csv"
    rows = read_rows(path)
    row_id = rows[2][0]
    rows[2] = rows[2][:-1]  # drop the last cell: 'source'
    write_rows(path, rows)
    error = load_error(data)
    check(error, "kv_cache_types.csv", "source", "required")
    assert row_id in error.where
    assert f"line {line_of(path, row_id)}" in error.where


# --- CSV cells ---------------------------------------------------------------------------------


def test_a_wrong_type_names_line_row_id_and_field(data):
    path = data / "gpus.csv"
    row_id = data_row(path, 3)
    set_cell(path, row_id, "memory_bytes", "lots")
    error = load_error(data)
    check(error, "gpus.csv", "memory_bytes", "integer")
    assert row_id in error.where
    assert f"line {line_of(path, row_id)}" in error.where
    assert line_of(path, row_id) == 4  # header + 3 data rows
    assert "row 3" in error.where


@pytest.mark.parametrize(
    ("name", "row", "column", "value", "field", "problem"),
    [
        ("weight_formats.csv", 2, "linear_bits", "0", "linear_bits", "greater than 0"),
        ("weight_formats.csv", 2, "linear_bits", "-4", "linear_bits", "greater than 0"),
        ("weight_formats.csv", 5, "norm_bits", "-16", "norm_bits", "greater than 0"),
        ("weight_formats.csv", 7, "encoder_bits", "0", "encoder_bits", "greater than 0"),
        ("weight_formats.csv", 1, "linear_bits", "64", "linear_bits", "less than or equal to 32"),
        ("kv_cache_types.csv", 1, "bits_per_value", "-8", "bits_per_value", "greater than 0"),
        ("gpus.csv", 10, "memory_bytes", "-1", "memory_bytes", "greater than 0"),
        ("runtime.csv", 2, "driver_reserved_bytes", "-1", "driver_reserved_bytes", "greater than or equal to 0"),
        ("gpus.csv", 1, "kind", "mainframe", "kind", "'datacenter'"),
        ("weight_formats.csv", 3, "family", "zip", "family", "'checkpoint'"),
        ("benchmarks.csv", 2, "better", "sideways", "better", "'higher'"),
        # Score columns are gathered into `scores`, so the field path runs through it.
        ("benchmarks.csv", 4, "gemma-4-31b", "high", "scores.gemma-4-31b", "number"),
    ],
)
def test_an_out_of_range_or_invalid_cell_names_row_and_field(data, name, row, column, value, field, problem):
    path = data / name
    row_id = data_row(path, row)
    set_cell(path, row_id, column, value)
    error = load_error(data)
    check(error, name, field, problem)
    assert row_id in error.where
    assert f"line {line_of(path, row_id)}" in error.where


def test_an_unknown_engine_names_the_row_and_the_engines_field(data):
    path = data / "weight_formats.csv"
    row_id = data_row(path, 3)
    set_cell(path, row_id, "engines", "transformers;tensorrt")
    error = load_error(data)
    assert Path(error.file).name == "weight_formats.csv"
    # The second name in the list is the bad one: pydantic's path is engines.1.
    assert error.field in ("engines", "engines.1")
    assert row_id in error.where
    assert f"line {line_of(path, row_id)}" in error.where
    for engine in ("transformers", "vllm", "llama.cpp", "mlx"):
        assert engine in error.problem
    assert "'engines" in str(error)


def test_an_empty_engine_list_is_refused(data):
    path = data / "kv_cache_types.csv"
    row_id = data_row(path, 1)
    set_cell(path, row_id, "engines", ";")
    error = load_error(data)
    assert Path(error.file).name == "kv_cache_types.csv"
    assert error.field == "engines"
    assert row_id in error.where


def test_an_unexpected_column_is_named(data):
    path = data / "runtime.csv"
    rows = read_rows(path)
    write_rows(path, [[*row, "colour" if n == 0 else "red"] for n, row in enumerate(rows)])
    error = load_error(data)
    check(error, "runtime.csv", "colour", "not permitted")
    assert rows[1][0] in error.where


# --- ids and aliases ---------------------------------------------------------------------------


def test_a_duplicate_id_names_the_second_row(data):
    path = data / "gpus.csv"
    first, second = data_row(path, 2), data_row(path, 5)
    set_cell(path, second, "id", first)
    error = load_error(data)
    check(error, "gpus.csv", "id", "already used", first)
    assert "row 5" in error.where
    assert first in error.where


def test_a_duplicate_id_differing_only_in_case_is_caught_too(data):
    """Look-up is case-insensitive, so ids must be unique ignoring case; the id pattern is
    lower-case only, so an upper-case copy fails on the id field of that row."""
    path = data / "weight_formats.csv"
    first, second = data_row(path, 1), data_row(path, 4)
    set_cell(path, second, "id", first.upper())
    error = load_error(data)
    assert Path(error.file).name == "weight_formats.csv"
    assert error.field == "id"
    assert "row 4" in error.where


def test_an_alias_that_is_another_rows_id_names_both(data):
    path = data / "gpus.csv"
    owner, clasher = data_row(path, 2), data_row(path, 5)
    set_cell(path, clasher, "aliases", f"fine-alias;{owner.upper()}")
    error = load_error(data)
    check(error, "gpus.csv", "aliases", owner.upper(), f"'{owner}'")
    assert clasher in error.where
    assert "row 5" in error.where


def test_an_alias_shared_by_two_rows_is_caught(data):
    path = data / "kv_cache_types.csv"
    first, second = data_row(path, 1), data_row(path, 2)
    set_cell(path, second, "aliases", "everyone")
    set_cell(path, first, "aliases", "Everyone")
    error = load_error(data)
    check(error, "kv_cache_types.csv", "aliases", "everyone", f"'{first}'")
    assert second in error.where


def test_a_model_alias_that_clashes_with_another_model_names_the_entry(data):
    document = models_document(data)
    e4b = model_index(document, "gemma-4-e4b")
    document["models"][e4b]["aliases"].append("gemma-4-31b")
    (data / "models.json").write_text(json.dumps(document, indent=2), encoding="utf-8")
    error = load_error(data)
    assert Path(error.file).name == "models.json"
    assert error.field in ("id", "aliases")
    assert "gemma-4-31b" in error.problem or "gemma-4-31b" in error.where
    assert "gemma-4-e4b" in error.where + error.problem


# --- models.json -------------------------------------------------------------------------------


def test_invalid_json_names_the_line(data):
    path = data / "models.json"
    lines = path.read_text(encoding="utf-8").splitlines()
    (number,) = [n for n, line in enumerate(lines, start=1) if '"hidden_size": 5376' in line]
    lines[number - 1] = lines[number - 1].replace("5376", "5376 5376")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    error = load_error(data)
    check(error, "models.json", None, "invalid JSON")
    assert error.where == f"line {number}"


@pytest.mark.parametrize("document", ["[]", "{}", '{"models": []}', '{"models": {"id": "x"}}'])
def test_a_json_document_without_a_model_list_is_named(data, document):
    (data / "models.json").write_text(document, encoding="utf-8")
    check(load_error(data), "models.json", "models", "non-empty list")


@pytest.mark.parametrize(
    ("model_id", "path", "value", "problem"),
    [
        ("gemma-4-31b", ("config", "text_config", "hidden_size"), "big", "integer"),
        ("gemma-4-26b-a4b", ("config", "text_config", "num_experts"), -128, "greater than 0"),
        ("gemma-4-e2b", ("config", "vision_config", "num_hidden_layers"), 1.5, "integer"),
        ("gemma-4-e4b", ("config", "audio_config", "hidden_size"), [1024], "integer"),
        ("gemma-4-e2b", ("config", "text_config", "layer_types", 3), "local_attention", "full_attention"),
        ("gemma-4-31b", ("published_total_params",), 0, "greater than 0"),
        ("gemma-4-e4b", ("modalities", 1), "smell", "image"),
    ],
)
def test_a_wrong_value_deep_in_an_entry_names_index_id_and_dotted_field(data, model_id, path, value, problem):
    document = models_document(data)
    index = model_index(document, model_id)
    node = document["models"][index]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    (data / "models.json").write_text(json.dumps(document, indent=2), encoding="utf-8")
    error = load_error(data)
    check(error, "models.json", ".".join(map(str, path)), problem)
    assert f"entry {index}" in error.where
    assert model_id in error.where


def test_an_unknown_architecture_field_is_named(data):
    document = models_document(data)
    index = model_index(document, "gemma-4-26b-a4b")
    document["models"][index]["config"]["text_config"]["hiden_size"] = 2816
    (data / "models.json").write_text(json.dumps(document, indent=2), encoding="utf-8")
    error = load_error(data)
    check(error, "models.json", "config.text_config.hiden_size", "not permitted")
    assert f"entry {index}" in error.where


def test_layer_types_must_match_num_hidden_layers(data):
    document = models_document(data)
    index = model_index(document, "gemma-4-31b")
    text_config = document["models"][index]["config"]["text_config"]
    layers = text_config["num_hidden_layers"]
    text_config["layer_types"] = text_config["layer_types"][:-1]
    (data / "models.json").write_text(json.dumps(document, indent=2), encoding="utf-8")
    error = load_error(data)
    assert Path(error.file).name == "models.json"
    # A cross-field check: it names the section that holds both fields, and the message both.
    assert error.field.startswith("config.text_config")
    assert f"entry {index}" in error.where and "gemma-4-31b" in error.where
    assert "layer_types" in error.problem
    assert str(layers - 1) in error.problem and str(layers) in error.problem
    assert "models.json" in str(error)


def test_an_entry_that_is_not_an_object_names_its_index(data):
    document = models_document(data)
    document["models"].insert(2, "gemma-4-9b")
    (data / "models.json").write_text(json.dumps(document), encoding="utf-8")
    error = load_error(data)
    assert Path(error.file).name == "models.json"
    assert error.where == "entry 2"


# --- cross-file checks -------------------------------------------------------------------------


def test_a_benchmark_column_that_is_not_a_model_id_is_named(data):
    path = data / "benchmarks.csv"
    rows = read_rows(path)
    rows[0][rows[0].index("gemma-4-e2b")] = "gemma-4-e3b"
    write_rows(path, rows)
    error = load_error(data)
    check(error, "benchmarks.csv", "gemma-4-e3b", "not a model id")
    assert rows[1][0] in error.where


def test_a_model_without_a_benchmark_column_is_named(data):
    path = data / "benchmarks.csv"
    rows = read_rows(path)
    index = rows[0].index("gemma-4-26b-a4b")
    write_rows(path, [row[:index] + row[index + 1 :] for row in rows])
    error = load_error(data)
    check(error, "benchmarks.csv", "gemma-4-26b-a4b", "no score")


def test_an_accelerator_kind_missing_from_runtime_is_named(data):
    path = data / "runtime.csv"
    write_rows(path, [row for row in read_rows(path) if row[0] != "apple"])
    error = load_error(data)
    check(error, "runtime.csv", "kind", "'apple'")


def test_the_cache_is_not_poisoned_by_a_bad_copy(data):
    (data / "gpus.csv").write_text("", encoding="utf-8")
    load_error(data)
    assert load_catalog().model("31b").id == "gemma-4-31b"
