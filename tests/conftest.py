"""Fixtures shared by the tests (helpers live in helpers.py)."""

from pathlib import Path

import pytest

from helpers import write_dataset


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "data")
