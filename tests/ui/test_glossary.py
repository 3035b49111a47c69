"""Plain language: every input explains itself, every format and device is named in words."""

import pytest

from core.catalog import load_catalog
from tests.pages.test_app import PAGES, open_page
from ui.glossary import TERMS, device_word, explain_format

CATALOG = load_catalog()
WIDGETS = ("selectbox", "number_input", "slider", "checkbox", "radio", "select_slider", "multiselect", "text_input")


@pytest.mark.parametrize("page", PAGES)
def test_every_input_on_every_page_has_a_tooltip(page):
    app = open_page(page)
    missing = [w.label for kind in WIDGETS for w in getattr(app, kind) if not (w.help or "").strip()]
    # The start page's use case is a row of plain words with its description under it.
    assert [label for label in missing if label != "What for"] == []


@pytest.mark.parametrize("weight_format", [f.id for f in CATALOG.weight_formats])
def test_every_format_is_explained_with_its_bits(weight_format):
    text = explain_format(CATALOG.weight_format(weight_format))
    fmt = CATALOG.weight_format(weight_format)
    assert text.startswith(fmt.display_name)
    if fmt.main_bits < 16:
        assert f"{fmt.main_bits:.1f} bits" in text


@pytest.mark.parametrize(
    ("device", "word"),
    [("nvidia-h100-sxm", "GPU"), ("nvidia-rtx-4090-laptop", "GPU"), ("apple-m4-16gb", "Mac"), ("rpi5-8gb", "device"),
     ("iphone-16-pro", "phone"), ("galaxy-s25-ultra", "phone"), ("amd-ryzen-ai-max-395-128gb", "device")],
)
def test_a_device_that_is_not_a_gpu_is_not_called_one(device, word):
    assert device_word(CATALOG.accelerator(device)) == word


def test_every_term_the_issue_names_has_a_one_line_explanation():
    for name in ("KV cache", "sliding window", "KV-shared", "PLE", "effective (B)", "tensor parallel", "n_ubatch", "MFU", "Pareto frontier"):
        assert TERMS[name] and "\n" not in TERMS[name]
