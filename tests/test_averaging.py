"""The moving average of the weights (``--ema``): what validation scores, what best.pt keeps, exact resume."""

from __future__ import annotations

import threading

import pytest
import torch

from unetkit import TrainConfig, train
from unetkit.checkpoint import read_checkpoint, save_checkpoint
from unetkit.errors import ConfigError
from unetkit.training.averaging import warmed_up_decay, weight_average
from unetkit.training.state import resume_config

from helpers import write_dataset

QUIET = lambda text: None  # noqa: E731


def tiny_config(data, out, **changes) -> TrainConfig:
    values = dict(out=str(out), data=str(data), depth=2, base_width=4, epochs=2, steps_per_epoch=4, batch_size=2,
                  patch_size=32, lr=3e-3, val_tile_size=64, progress=False, augment="flips", ema=0.8,
                  checkpoint_every=0)
    values.update(changes)
    return TrainConfig(**values)


def averaged_weights(last: dict) -> dict[str, torch.Tensor]:
    """The average's network weights, as last.pt stores them (``module.`` + the model's names)."""
    return {name.removeprefix("module."): value for name, value in last["training"]["averaged"].items()
            if name.startswith("module.")}


def test_the_average_follows_the_weights_with_its_warmed_up_decay():
    model = torch.nn.Linear(2, 1)
    average = weight_average(model, decay=0.75)
    values = []
    for step in range(3):
        with torch.no_grad():
            model.weight.fill_(float(step + 1))
        average.update_parameters(model)
        values.append(float(average.module.weight[0, 0].detach()))
    first, second = 2 / 11, 3 / 12  # (1 + n) / (10 + n) after n = 1, 2 updates: below 0.75
    assert values == pytest.approx([1.0, first * 1 + (1 - first) * 2,
                                    second * (first + (1 - first) * 2) + (1 - second) * 3])
    assert warmed_up_decay(0.75, 100) == 0.75 and warmed_up_decay(0.99, 100) == pytest.approx(101 / 110)
    assert weight_average(model, decay=0.0) is None


@pytest.mark.parametrize("decay", [-0.1, 1.0, 1.5, float("nan")])
def test_a_decay_outside_0_to_1_is_refused(decay, tmp_path):
    with pytest.raises(ConfigError, match="--ema"):
        TrainConfig(out=str(tmp_path / "run"), ema=decay)


def test_best_pt_holds_the_average_and_last_pt_both(tmp_path):
    data = write_dataset(tmp_path / "d", count=3)
    train(tiny_config(data, tmp_path / "run", epochs=1), report=QUIET)
    last = read_checkpoint(tmp_path / "run" / "last.pt")
    best = read_checkpoint(tmp_path / "run" / "best.pt")["model_state"]
    average = averaged_weights(last)
    assert int(last["training"]["averaged"]["n_averaged"]) == 4  # one update a step (the first copies)
    assert best.keys() == average.keys() == last["model_state"].keys()
    assert all(torch.equal(best[name], average[name]) for name in best)
    assert not all(torch.equal(best[name], last["model_state"][name]) for name in best)  # not the raw weights


def test_resume_goes_on_with_the_same_average(tmp_path):
    data = write_dataset(tmp_path / "d", count=3)
    config = tiny_config(data, tmp_path / "straight", epochs=3)
    train(config, report=QUIET)
    stop = threading.Event()
    train(config.replace(out=str(tmp_path / "resumed")), report=QUIET, stop=stop,
          on_epoch=lambda row: stop.set() if row["epoch"] == "1" else None)
    assert read_checkpoint(tmp_path / "resumed" / "last.pt")["training"]["epoch"] == 1
    train(resume_config(tmp_path / "resumed"), resume=True, report=QUIET)
    straight = read_checkpoint(tmp_path / "straight" / "last.pt")
    resumed = read_checkpoint(tmp_path / "resumed" / "last.pt")
    for name, value in straight["training"]["averaged"].items():
        assert torch.equal(value, resumed["training"]["averaged"][name]), name
    straight_best = read_checkpoint(tmp_path / "straight" / "best.pt")["model_state"]
    resumed_best = read_checkpoint(tmp_path / "resumed" / "best.pt")["model_state"]
    assert all(torch.equal(straight_best[name], resumed_best[name]) for name in straight_best)


def test_a_run_saved_before_ema_existed_resumes_as_it_started_without_an_average(tmp_path):
    data = write_dataset(tmp_path / "d", count=3)
    stop = threading.Event()
    train(tiny_config(data, tmp_path / "run", epochs=2, ema=0.0), report=QUIET, stop=stop,
          on_epoch=lambda row: stop.set())
    last = read_checkpoint(tmp_path / "run" / "last.pt")
    del last["training"]["config"]["ema"]  # as unetkit wrote it before --ema
    save_checkpoint(tmp_path / "run" / "last.pt", last, overwrite=True)
    config = resume_config(tmp_path / "run")
    assert config.ema == 0.0  # whatever --ema defaults to now
    train(config, resume=True, report=QUIET)
    assert "averaged" not in read_checkpoint(tmp_path / "run" / "last.pt")["training"]


def test_a_run_saved_before_the_patch_defaults_followed_the_task_resumes_with_256_px(tmp_path):
    # every run before 2026-12-04 trained 256-px patches, 50 steps an epoch, unless told otherwise
    import json

    from unetkit.training.state import stored_config

    values = TrainConfig(out=str(tmp_path / "run")).to_dict()
    for name in ("patch_size", "steps_per_epoch", "ema"):
        del values[name]
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps(values))
    config = stored_config(tmp_path / "run")
    assert (config.patch_size, config.steps_per_epoch, config.ema) == (256, 50, 0.0)


def test_an_api_resume_that_adds_an_average_starts_it_from_the_saved_weights(tmp_path):
    data = write_dataset(tmp_path / "d", count=3)
    stop = threading.Event()
    config = tiny_config(data, tmp_path / "run", epochs=2, ema=0.0)
    train(config, report=QUIET, stop=stop, on_epoch=lambda row: stop.set())
    result = train(config.replace(ema=0.8), resume=True, report=QUIET)
    assert result.global_step == 8
    resumed = read_checkpoint(tmp_path / "run" / "last.pt")["training"]["averaged"]
    # the stop came as epoch 1 ended (no step after it): the average starts at the resume, then follows epoch 2's 4
    assert int(resumed["n_averaged"]) == 1 + 4
