"""The app starts through app.py and shows the catalogue; a malformed data file shows an error."""

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.catalog import DATA_DIR, DATA_DIR_VARIABLE, load_catalog
from core.params import count_parameters

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def test_catalogue_page_shows_every_model_with_computed_parameters():
    app = AppTest.from_file(APP, default_timeout=30).run()
    assert not app.exception
    table = app.dataframe[0].value
    catalog = load_catalog()
    assert list(table["model"]) == [m.display_name for m in catalog.models]
    for model, shown in zip(catalog.models, table["total params (B)"]):
        assert shown == pytest.approx(count_parameters(model.config).total / 1e9)
    assert len(app.dataframe[2].value) == len(catalog.accelerators)


def test_malformed_catalogue_is_an_error_message_not_a_traceback(tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    gpus = (data / "gpus.csv").read_text().splitlines()
    gpus[2] = gpus[2].replace(gpus[2].split(",")[4], "lots", 1)
    (data / "gpus.csv").write_text("\n".join(gpus) + "\n")
    monkeypatch.setenv(DATA_DIR_VARIABLE, str(data))
    app = AppTest.from_file(APP, default_timeout=30).run()
    assert not app.exception
    message = app.error[0].value
    assert "gpus.csv" in message and "line 3" in message and "memory_bytes" in message
