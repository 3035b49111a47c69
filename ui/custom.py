"""'Your own model': a config.json uploaded or pasted, sized beside Gemma 4 and carried in the link."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import PurePath

import streamlit as st

from core.catalog import Catalog, ModelSpec
from core.hf_import import (
    MAX_CONFIG_BYTES,
    MAX_IMPORTED_MODELS,
    MAX_LINK_VALUE_CHARS,
    ConfigImportError,
    check_name,
    custom_model_id,
    decode_link,
    encode_link,
    import_config,
    import_normalized,
    model_spec,
    parse_config_json,
)
from core.params import count_parameters
from ui import untrusted
from ui.state import PageState, Param, ParamError

CUSTOM = "custom"
# Marks a scenario file (downloaded when a model is too large for a link) among uploads.
SCENARIO_MARKER = "gemma4_planner_scenario"
# A value kept in the session only can be as long as a whole config, base64-encoded.
SESSION_VALUE_CHARS = 2 * MAX_CONFIG_BYTES


def _from_link(raw: str) -> str:
    value = raw.strip()
    try:
        decode_link(value)
    except ConfigImportError as error:
        raise ParamError(str(error)) from None
    return value


def custom_param() -> Param:
    """The `custom` link parameter: up to three 'name~data' values (core.hf_import.encode_link).
    Values too long for a link stay in the session and are offered as a scenario download."""
    return Param(
        CUSTOM, [], _from_link, many=True, in_link=lambda value: len(value) <= MAX_LINK_VALUE_CHARS,
        max_items=MAX_IMPORTED_MODELS,
    )


@lru_cache(maxsize=128)
def custom_specs(values: tuple[str, ...]) -> tuple[ModelSpec, ...]:
    """Catalogue entries for the page's imported models, in slot order (slot = colour)."""
    specs = []
    for slot, value in enumerate(values[:MAX_IMPORTED_MODELS], start=1):
        name, imported = decode_link(value, SESSION_VALUE_CHARS)
        specs.append(model_spec(imported, name, slot))
    return tuple(specs)


def with_custom_models(state: PageState, catalog: Catalog) -> tuple[Catalog, tuple[str, ...], list[str]]:
    """The catalogue plus the page's imported models, their link values (for ui.cached) and
    their ids. Call after state.load()."""
    # At most MAX_IMPORTED_MODELS: the link's list is cut there before decoding (custom_param's
    # max_items, with its notice), and adding a model refuses a fourth.
    values = list(state.value(CUSTOM))
    valid = []
    for value in values:
        try:
            decode_link(value, SESSION_VALUE_CHARS)
            valid.append(value)
        except ConfigImportError as error:  # only a value that was never checked can get here
            state.notices.append(f"One of your own models could not be read ({untrusted.quote(error, 200)}) and was dropped.")
    if valid != values:
        st.session_state[state.key(CUSTOM)] = valid
    specs = custom_specs(tuple(valid))
    return catalog.with_models(specs), tuple(valid), [spec.id for spec in specs]


def _add(page_key: str) -> None:
    """Button callback: read the upload or the paste, size it, add it to the page's models."""
    upload = st.session_state.get(f"{page_key}_file")
    pasted = st.session_state.get(f"{page_key}_text") or ""
    name = (st.session_state.get(f"{page_key}_name") or "").strip()
    values = list(st.session_state.get(page_key, []))
    try:
        if upload is None and not pasted.strip():
            raise ConfigImportError("upload a config.json or paste its text first")
        if upload is not None and upload.size > MAX_CONFIG_BYTES:
            raise ConfigImportError(f"{upload.name} is {upload.size:,} bytes; the limit is {MAX_CONFIG_BYTES:,} (1 MiB)")
        data = upload.getvalue() if upload is not None else pasted
        # One bounded parse (size, depth, numbers) serves both a config.json and a scenario file.
        document = parse_config_json(data)
        if SCENARIO_MARKER in document:
            added = _scenario_models(document)
        else:
            imported = import_config(document)
            label = check_name(name) if name else _default_name(upload, imported.family)
            added = [(label, imported)]
        taken = {decode_link(value, SESSION_VALUE_CHARS)[0].lower() for value in values}
        notes = []
        for label, imported in added:
            if label.lower() in taken:
                raise ConfigImportError(f"a model named '{label}' is already added: give this one another name")
            if len(values) >= MAX_IMPORTED_MODELS:
                raise ConfigImportError(f"at most {MAX_IMPORTED_MODELS} of your own models at once: remove one first")
            values.append(encode_link(label, imported))
            taken.add(label.lower())
            notes += [f"{label}: {line}" for line in (*imported.warnings, *imported.defaults)]
    except ConfigImportError as error:
        st.session_state[f"{page_key}_error"] = str(error)
        return
    st.session_state[page_key] = values
    st.session_state[f"{page_key}_notes"] = notes
    st.session_state[f"{page_key}_name"] = ""
    st.session_state[f"{page_key}_text"] = ""


def _default_name(upload: object, family: str) -> str:
    """The uploaded file's name (unless it is plain config.json or not a valid name), else the family."""
    stem = PurePath(getattr(upload, "name", "") or "").stem
    for candidate in (stem if stem != "config" else "", family.split(" (")[0]):
        try:
            return check_name(candidate[:48])
        except ConfigImportError:
            continue
    return "Imported model"


def _scenario_models(document: dict) -> list[tuple[str, object]]:
    """The models of a downloaded scenario file (already parsed within the config limits)."""
    models = document.get("models")
    if not isinstance(models, list) or not models or len(models) > MAX_IMPORTED_MODELS:
        raise ConfigImportError(f"a scenario file lists 1 to {MAX_IMPORTED_MODELS} models")
    added = []
    for entry in models:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not isinstance(entry.get("config"), dict):
            raise ConfigImportError("each model in a scenario file has a name and a config")
        added.append((check_name(entry["name"]), import_normalized(json.dumps(entry["config"]))))
    return added


def _remove(page_key: str, value: str) -> None:
    st.session_state[page_key] = [v for v in st.session_state.get(page_key, []) if v != value]


def custom_models_sidebar(state: PageState, catalog: Catalog) -> None:
    """The sidebar section that adds, lists and removes the page's own models."""
    page_key = state.key(CUSTOM)
    values = list(state.value(CUSTOM))
    with st.sidebar.expander("Your own model (config.json)", expanded=bool(values), icon=":material/add_box:"):
        st.caption(
            "Size any Hugging Face model beside Gemma 4 from its config.json: Llama, Mistral, Mixtral, "
            "Qwen2.5/3 (dense and MoE), Phi-3/4, gpt-oss, Gemma 2/3/3n/4. It goes into the link."
        )
        for slot, value in enumerate(values, start=1):
            name, imported = decode_link(value, SESSION_VALUE_CHARS)
            params = count_parameters(catalog.model(custom_model_id(name, slot)).config)
            row = st.columns([4, 1], vertical_alignment="center")
            # The name and family come from a link or an upload: shown literally, never as Markdown.
            row[0].markdown(
                f"**{untrusted.markdown_literal(name)}** · {untrusted.markdown_literal(imported.family)} · "
                f"{params.total / 1e9:,.2f}B parameters"
                + (f", {params.active_per_token / 1e9:,.2f}B active" if params.experts else "")
            )
            row[1].button(
                "", key=f"{page_key}_remove_{slot}", icon=":material/delete:", on_click=_remove,
                args=(page_key, value), help=f"Remove {untrusted.markdown_literal(name)}",
            )
        if len(values) < MAX_IMPORTED_MODELS:
            st.text_input("Name", key=f"{page_key}_name", max_chars=48, placeholder="e.g. Llama 3.1 8B", help="How the model is labelled in charts and tables (plain text, up to 48 characters).")
            st.file_uploader(
                "config.json", type=["json"], key=f"{page_key}_file",
                help="The model's config.json (at most 1 MiB), or a scenario file this page saved.",
            )
            st.text_area(
                "...or paste config.json", key=f"{page_key}_text", max_chars=MAX_CONFIG_BYTES, height=90,
                placeholder='{"model_type": "llama", "hidden_size": 4096, ...}',
            )
            st.button("Add model", key=f"{page_key}_add", on_click=_add, args=(page_key,), icon=":material/add:")
        error = st.session_state.pop(f"{page_key}_error", None)
        if error:
            untrusted.error(error)
        for note in st.session_state.pop(f"{page_key}_notes", []):
            untrusted.info(note)
    _offer_scenario_download(state, values)


def _offer_scenario_download(state: PageState, values: list[str]) -> None:
    """Models too long for a link: say so, and offer a file that restores them."""
    local = [value for value in values if len(value) > MAX_LINK_VALUE_CHARS]
    if not local:
        return
    models = []
    for value in local:
        name, imported = decode_link(value, SESSION_VALUE_CHARS)
        models.append({"name": name, "config": json.loads(imported.normalized)})
    with st.sidebar:
        untrusted.warning(
            f"{', '.join(m['name'] for m in models)}: too large for a link (over {MAX_LINK_VALUE_CHARS:,} characters). "
            "The link keeps everything else; send the scenario file with it and add the file above to restore the model.",
            icon=":material/link_off:",
        )
    document = {SCENARIO_MARKER: 1, "link": state.link(), "models": models}
    st.sidebar.download_button(
        "Scenario file (JSON)", data=json.dumps(document, indent=1), file_name="gemma4-planner-scenario.json",
        mime="application/json", key=f"{state.key(CUSTOM)}_scenario", icon=":material/download:", on_click="ignore",
    )
