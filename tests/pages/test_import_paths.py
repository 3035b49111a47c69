"""Every way a config reaches the planner (link, upload, paste, scenario file, --config) refuses a
broken one with one clear line, and the view is kept."""

import base64
import copy
import json
import zlib
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.__main__ import main
from core.hf_import import load_config_file
from tests.rendered import plain
from ui.custom import SCENARIO_MARKER

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
CONFIGS = ROOT / "data" / "configs"


# (shipped config, section, fields changed, what the message must say). Each reached a page as
# a traceback, or printed one on the command line, before the importer was hardened.
# section None: the top level of the file (for a Llama config, its only level).
BROKEN = {
    # E2B has 35 layers, the last 20 KV-shared; with 34 shared only layer 0 owns a cache, and
    # it is a sliding layer, so the first full layer (4) has nothing to read.
    "kv-sharing without an owner": ("gemma-4-e2b-it", "text_config", {"num_kv_shared_layers": 34}, "no earlier layer of that type keeps one"),
    "negative audio channels": ("gemma-4-e2b-it", "audio_config", {"subsampling_conv_channels": [-128, 32]}, "greater than 0"),
    "true as a vision width": ("gemma-4-e2b-it", "vision_config", {"hidden_size": True}, "valid integer"),
    "true as an audio depth": ("gemma-4-e2b-it", "audio_config", {"num_hidden_layers": True}, "valid integer"),
    "true as a per-layer override": ("gemma-4-e2b-it", "text_config", {"per_layer_config": {"4": {"head_dim": True}}}, "valid integer"),
    "a spaced layer number": ("gemma-4-e2b-it", "text_config", {"per_layer_config": {" 4 ": {"head_dim": 512}}}, "layer numbers"),
    "an Arabic-Indic layer number": ("gemma-4-e2b-it", "text_config", {"per_layer_config": {"\u0661": {"head_dim": 512}}}, "layer numbers"),
    "an underscored layer number": ("gemma-4-e2b-it", "text_config", {"per_layer_config": {"0_0": {"head_dim": 512}}}, "layer numbers"),
    "true as hidden_size": ("llama-3.1-8b", None, {"hidden_size": True}, "hidden_size"),
    "1.0 as a layer count": ("llama-3.1-8b", None, {"num_hidden_layers": 32.0}, "num_hidden_layers"),
    # A wrapper naming a family the planner cannot size, around a decoder it could.
    "an unsupported outer model_type": ("llama-3.1-8b", "outer", {"model_type": "deepseek_v3"}, "multi-head latent attention"),
    "another unsupported outer model_type": ("llama-3.1-8b", "outer", {"model_type": "qwen3_next"}, "Gated DeltaNet"),
}


def as_uploaded(case: tuple) -> dict:
    """The config.json a user would paste or upload."""
    name, section, fields, _ = case
    document = json.loads((CONFIGS / f"{name}.json").read_text(encoding="utf-8"))
    if section == "outer":
        return {**fields, "text_config": document}
    (document[section] if section else document).update(copy.deepcopy(fields))
    return document


def as_stored(case: tuple) -> dict:
    """What a link or a scenario file carries: the stored form of the real config, with the
    same change made to it."""
    name, section, fields, _ = case
    stored = json.loads(load_config_file(CONFIGS / f"{name}.json").normalized)
    target = "text_config" if section in (None, "outer") else section
    stored[target].update(copy.deepcopy(fields))
    return stored


def link_value(case: tuple) -> str:
    packed = zlib.compress(json.dumps(as_stored(case)).encode(), 9)
    return "Broken~" + base64.urlsafe_b64encode(packed).decode().rstrip("=")


def open_page(page: str, **query) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60)
    app.query_params.update(query)
    app.switch_page(page)
    return app.run()


def add(app: AppTest, page: str, *, text: str | None = None, upload: bytes | None = None) -> AppTest:
    app.sidebar.text_input(key=f"{page}_custom_name").set_value("Broken")
    if text is not None:
        app.sidebar.text_area(key=f"{page}_custom_text").set_value(text)
    if upload is not None:
        app.sidebar.file_uploader(key=f"{page}_custom_file").set_value(("config.json", upload, "application/json"))
    app.sidebar.button(key=f"{page}_custom_add").click()
    return app.run()


def one_line(message: str) -> None:
    assert "\n" not in message and 0 < len(message) < 700, message


CASES = list(BROKEN.values())
IDS = list(BROKEN)


@pytest.mark.parametrize("page", ["pages/planner.py", "pages/fit.py"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_broken_config_in_a_link_falls_back_with_a_notice(page, case):
    message = case[-1]
    app = open_page(page, custom=link_value(case), ctx="4096")
    assert not app.exception, app.exception
    notices = plain(" ".join(w.value for w in app.warning))
    assert "custom" in notices and message in notices, notices
    for warning in app.warning:
        one_line(plain(warning.value))
    assert app.title and app.dataframe  # the page still shows its view


@pytest.mark.parametrize("how", ["paste", "upload", "scenario file"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_broken_config_added_on_the_page_is_refused_and_the_view_kept(how, case):
    message = case[-1]
    app = open_page("pages/planner.py", models="e2b", ctx="4096")
    before = [m.value for m in app.metric]
    if how == "scenario file":
        scenario = {SCENARIO_MARKER: 1, "models": [{"name": "Broken", "config": as_stored(case)}]}
        add(app, "planner", upload=json.dumps(scenario).encode())
    elif how == "upload":
        add(app, "planner", upload=json.dumps(as_uploaded(case)).encode())
    else:
        add(app, "planner", text=json.dumps(as_uploaded(case)))
    assert not app.exception, app.exception
    errors = [plain(e.value) for e in app.sidebar.error]
    assert len(errors) == 1 and message in errors[0], errors
    one_line(errors[0])
    assert [m.value for m in app.metric] == before


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_broken_config_on_the_command_line_is_one_line_and_status_2(case, tmp_path, capsys):
    message = case[-1]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(as_uploaded(case)), encoding="utf-8")
    for command in (["params"], ["estimate"], ["fit", "--gpu", "h100"]):
        assert main([*command, "--config", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
