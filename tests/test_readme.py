"""The README's Python tour runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
def test_the_python_tour_in_the_readme_runs(tmp_path, monkeypatch):
    text = README.read_text()
    block = re.search(r"### Python\n```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    assert tuple(namespace["labels"].shape) == (700, 1100)
    assert (tmp_path / "runs" / "python" / "best.pt").is_file()
