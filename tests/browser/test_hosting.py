"""Hosting: the app starts from a clean export of the repository, and under a proxy sub-path."""

import subprocess
import tarfile
import urllib.request
from io import BytesIO

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ROOT, serve

SUB_PATH = "tools/gemma4-planner"


@pytest.fixture
def clean_export(tmp_path_factory):
    """The committed tree only (what a fresh clone holds), in an empty folder."""
    archive = subprocess.run(["git", "archive", "--format=tar", "HEAD"], cwd=ROOT, check=True, capture_output=True).stdout
    folder = tmp_path_factory.mktemp("clean-clone")
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder


@pytest.fixture
def clean_server(tmp_path_factory, clean_export):
    yield from serve(tmp_path_factory, cwd=clean_export)


@pytest.fixture
def proxied_server(tmp_path_factory):
    yield from serve(tmp_path_factory, extra_args=["--server.baseUrlPath", SUB_PATH], path=SUB_PATH)


def test_the_app_starts_from_a_clean_export_of_the_repository(clean_server, page):
    page.goto(f"{clean_server}/planner?models=gemma-4-e2b")
    expect(page.locator("h1").first).to_have_text("Memory planner")
    expect(page.locator('[data-testid="stPlotlyChart"] .main-svg').first).to_be_attached()
    assert page.locator('[data-testid="stException"]').count() == 0


def test_the_app_works_under_a_proxy_sub_path(proxied_server, page):
    assert urllib.request.urlopen(f"{proxied_server}/_stcore/health").read() == b"ok"
    page.goto(f"{proxied_server}/fit?gpu=l4")
    expect(page.locator("h1").first).to_have_text("Device fit")
    expect(page.locator('[data-testid="stSidebarNav"]')).to_contain_text("Memory planner")
    page.locator('[data-testid="stSidebarNav"] a', has_text="Memory planner").click()
    page.wait_for_url(f"**/{SUB_PATH}/planner**")
    expect(page.locator("h1").first).to_have_text("Memory planner")
