"""The wheel that `pip install unetkit` would get: every file of the package, and its entry points.

The tests and the README's commands run an editable install, which reads ``src/`` directly: a
file that ``[tool.setuptools.package-data]`` forgets (the embedded sample, the report's
template, the napari manifest) would be missing only for users of the wheel.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def tracked_package_files() -> list[str]:
    """The package's files that git tracks, relative to ``src/`` (skips outside a git checkout)."""
    listing = subprocess.run(["git", "ls-files", "src/unetkit"], cwd=ROOT, capture_output=True, text=True)
    if listing.returncode != 0 or not listing.stdout.strip():
        pytest.skip("not a git checkout: the package's files cannot be listed")
    return [name.removeprefix("src/") for name in listing.stdout.split()]


def builds_wheels(setuptools_version: str, has_wheel: bool) -> bool:
    """Whether this setuptools builds the wheel with no build isolation: pyproject.toml's setuptools>=68, and
    bdist_wheel, its own from 70.1, before that the wheel package's (pip does not check either without isolation).

    >>> builds_wheels("66.1.1", has_wheel=False), builds_wheels("69.5.1", has_wheel=True), builds_wheels("84.2.1", False)
    (False, True, True)
    """
    major, minor = (int(part) for part in re.findall(r"\d+", setuptools_version)[:2])
    return (major, minor) >= (70, 1) or ((major, minor) >= (68, 0) and has_wheel)


def test_wheels_are_built_only_by_a_setuptools_that_can():
    # a Python 3.11 venv holds setuptools 66 without the wheel package: pip wheel failed with
    # "invalid command 'bdist_wheel'" where the test meant to skip
    assert not builds_wheels("66.1.1", has_wheel=False) and not builds_wheels("67.8.0", has_wheel=True)
    assert builds_wheels("68.2.2", has_wheel=True) and builds_wheels("70.1.0", has_wheel=False)


def test_the_wheel_holds_every_file_of_the_package_and_its_entry_points(tmp_path):
    setuptools = pytest.importorskip("setuptools", reason="building the wheel without network needs setuptools here")
    if not builds_wheels(setuptools.__version__, importlib.util.find_spec("wheel") is not None):
        pytest.skip(f"setuptools {setuptools.__version__} without the wheel package cannot build a wheel without "
                    "network (a Python 3.11 venv's own): pyproject.toml asks for setuptools>=68")
    project = tmp_path / "project"  # a copy: a build/ folder left in the checkout would supply files package-data lost
    shutil.copytree(ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "wheel"), str(project)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "wheel").glob("unetkit-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(archive.read(name).decode() for name in names if name.endswith("entry_points.txt"))
    missing = [name for name in tracked_package_files() if name not in names]
    assert not missing, f"package-data in pyproject.toml leaves these out of the wheel: {missing}"
    assert "unetkit/data/sample/train/images/hela.tif" in names  # the README's first command trains on it
    assert "unetkit = unetkit.cli:entry_point" in entry_points
    assert "unetkit = unetkit.napari_plugin:napari.yaml" in entry_points
