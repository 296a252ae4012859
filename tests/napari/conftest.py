"""The napari plugin's tests: what they need, and the clean-up every Qt worker test needs.

- Without the napari extra (``pip install -e ".[napari,napari-dev]"``) the test modules
  skip themselves (``pytest.importorskip``), saying so.
- Tests that open a viewer or a widget need an X display: pytest-xvfb starts Xvfb (Debian
  package ``xvfb``, plus ``libxcb-icccm4 libxcb-keysyms1`` for Qt 6) when both are
  installed. Without a display they skip with that reason, because Qt would abort the
  whole test process instead.
- ``UNETKIT_REQUIRE_NAPARI=1`` (set by ``.ci/run``) turns both skips into errors, so that CI
  cannot pass without running them.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
INSTALL = 'pip install -e ".[napari,napari-dev]"'
DISPLAY_FIX = "apt-get install -y xvfb libxcb-icccm4 libxcb-keysyms1 (pytest-xvfb then starts Xvfb)"
GUI_FIXTURES = {"make_napari_viewer", "qtbot", "qapp"}


def missing_packages() -> list[str]:
    # napari.viewer, not napari: without napari, "napari" finds this folder (tests/ is on sys.path)
    return [name.split(".")[0] for name in ("napari.viewer", "pytestqt", "pytest_xvfb")
            if importlib.util.find_spec(name) is None]


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ours = [item for item in items if HERE in Path(str(item.path)).parents]
    needs_display = [item for item in ours if GUI_FIXTURES & set(getattr(item, "fixturenames", ()))]
    problems = []
    if missing_packages():
        problems.append(f"{', '.join(missing_packages())} not installed: {INSTALL}")
    if needs_display and not has_display():
        problems.append(f"no X display for the napari viewer tests: {DISPLAY_FIX}")
    if problems and os.environ.get("UNETKIT_REQUIRE_NAPARI"):
        raise pytest.UsageError("UNETKIT_REQUIRE_NAPARI is set but " + "; ".join(problems))
    if not has_display():
        skip = pytest.mark.skip(reason=f"no X display for the napari viewer tests: {DISPLAY_FIX}")
        for item in needs_display:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _no_worker_outlives_its_test():
    """A worker thread still running at teardown crashes the process later (deleted Qt objects)."""
    yield
    if "napari.qt.threading" in sys.modules:  # a test ran napari workers
        from napari.qt.threading import WorkerBase

        WorkerBase.await_workers(msecs=30_000)


def constant_checkpoint(path: Path, bias: float, in_channels: int = 1, instances: bool = False) -> Path:
    """A tiny U-Net whose every weight is 0 and whose head bias is ``bias``: sigmoid(bias) everywhere.

    ``instances``: a ``--task instances`` model (distance method) whose foreground and distance
    are flat, so the whole image is one object.
    """
    import torch

    from unetkit import UNet, UNetConfig, make_checkpoint, save_checkpoint
    from unetkit.instances.task import InstanceTask

    task = InstanceTask() if instances else None
    model = UNet(UNetConfig(in_channels=in_channels, num_classes=task.num_outputs if task else 1, depth=2,
                            base_width=2))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        model.head.bias.fill_(bias)
    save_checkpoint(path, make_checkpoint(model, task=task))
    return path


@pytest.fixture(scope="session")
def make_constant_model():
    """``make_constant_model(path, bias, in_channels=1)``: see :func:`constant_checkpoint`."""
    return constant_checkpoint


@pytest.fixture(scope="session")
def foreground_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Labels every pixel 1."""
    return constant_checkpoint(tmp_path_factory.mktemp("models") / "foreground.pt", 10.0)


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny U-Net trained for 60 steps on the sample's training frames (held-out Dice about 0.9; 3 s)."""
    from unetkit import TrainConfig, train

    run = tmp_path_factory.mktemp("models") / "run"
    train(TrainConfig(out=str(run), depth=2, base_width=4, epochs=1, steps_per_epoch=60, patch_size=64,
                      lr=1e-2, progress=False), report=lambda text: None)
    return run / "best.pt"


@pytest.fixture
def predicted_probabilities():
    """``make(folder, classes)``: the probability map ``unetkit predict --probabilities`` writes into ``folder``
    for a random model of ``classes`` outputs and a 40 x 56 image ``cells.png``."""
    import numpy as np
    import torch

    from unetkit import PredictOptions, TileOptions, UNet, make_checkpoint, predict_files, save_checkpoint
    from unetkit.data.io import write_image

    def make(folder: Path, classes: int) -> Path:
        folder = folder / f"classes{classes}"
        folder.mkdir()
        torch.manual_seed(0)
        save_checkpoint(folder / "m.pt", make_checkpoint(UNet(num_classes=classes, depth=2, base_width=4)))
        write_image(folder / "cells.png", np.random.default_rng(0).integers(0, 255, (40, 56), dtype=np.uint8))
        options = PredictOptions(tile=TileOptions(tile_size=32), probabilities=True)
        return predict_files(folder / "m.pt", [folder / "cells.png"], folder / "out", options,
                             lambda text: None)[0].probabilities

    return make
