"""Shared fixtures: the real catalogue, loaded once."""

import pytest

from core.catalog import Catalog, load_catalog


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()
