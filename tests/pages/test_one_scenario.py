"""One scenario across pages: what a link or the user set on one page holds on the next (AppTest)."""

from tests.pages.test_app import open_page


def move_to(app, page: str):
    """The user picks another page in the sidebar: Streamlit clears the query on the way."""
    app.query_params.clear()
    app.switch_page(page)
    return app.run()


def widget(app, label: str):
    for kind in (app.selectbox, app.number_input, app.multiselect, app.slider, app.select_slider, app.radio):
        for element in kind:
            if element.label == label:
                return element
    raise AssertionError(f"no widget labelled {label!r}")


def test_a_31b_128k_two_h100_link_survives_a_click_to_device_fit():
    app = open_page("pages/planner.py", models="gemma-4-31b", ctx="131072", gpus="nvidia-h100-sxm", count="2")
    assert not app.exception
    app = move_to(app, "pages/fit.py")
    assert not app.exception
    assert widget(app, "Context tokens per sequence").value == 131072
    assert widget(app, "Device count (tensor parallel)").value == 2
    assert widget(app, "Device").value == "nvidia-h100-sxm"
    # ... and the new page writes it into its own URL, so its link carries it too.
    assert app.query_params["ctx"] == "131072" and app.query_params["count"] == "2"


def test_a_change_on_one_page_reaches_the_others_and_comes_back():
    app = open_page("pages/fit.py", gpu="nvidia-rtx-4090")
    widget(app, "Context tokens per sequence").set_value(65536)
    app = app.run()
    app = move_to(app, "pages/throughput.py")
    assert widget(app, "Context tokens per sequence").value == 65536
    assert widget(app, "Devices").value[0] == "nvidia-rtx-4090"
    widget(app, "Concurrent sequences").set_value(4)
    app = app.run()
    app = move_to(app, "pages/fit.py")
    assert widget(app, "Concurrent sequences").value == 4
    assert widget(app, "Context tokens per sequence").value == 65536
    assert widget(app, "Device").value == "nvidia-rtx-4090"


def test_the_model_chosen_on_a_one_model_page_leads_the_planners_list():
    app = open_page("pages/throughput.py", model="gemma-4-e4b")
    app = move_to(app, "pages/planner.py")
    assert widget(app, "Models").value[0] == "gemma-4-e4b"


def test_page_only_settings_stay_on_their_page():
    app = open_page("pages/quality.py", benchmark="AIME 2026")
    app = move_to(app, "pages/throughput.py")
    assert "benchmark" not in app.query_params


def test_a_link_defines_the_whole_view_whatever_the_session_held():
    app = open_page("pages/fit.py", ctx="65536", seqs="8")
    # A stakeholder's link opened in the same session: its values, the rest at their defaults.
    app.query_params.clear()
    app.query_params.update({"ctx": "4096"})
    app.switch_page("pages/fit.py")
    app = app.run()
    assert widget(app, "Context tokens per sequence").value == 4096
    assert widget(app, "Concurrent sequences").value == 1
