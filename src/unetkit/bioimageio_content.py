"""What a bioimage.io package of a unetkit model says, in plain values: no bioimageio import.

- :func:`normalization_steps`: unetkit's normalisation as the format's preprocessing steps;
- :func:`package_outputs`: what the output tensor holds for a task (channels, postprocessing
  steps, documentation). The task drives it: one entry per task name in
  :data:`OUTPUT_DESCRIPTIONS`; a task without an entry (instances, say) is packaged as the raw
  network outputs, with its own post-processing described in the documentation;
- :func:`training_data`: the training data as the package describes it (no online lookup);
- :func:`package_readme`: the documentation file, with its ``# Validation`` section.

>>> from unetkit.data.normalize import Normalization
>>> normalization_steps(Normalization("percentile", 1.0, 99.8))
[('scale_range', {'axes': ['x', 'y'], 'min_percentile': 1.0, 'max_percentile': 99.8})]
>>> normalization_steps(Normalization("scale", high=255.0))
[('scale_linear', {'gain': 0.00392156862745098, 'offset': 0.0})]
>>> from unetkit.tasks import SemanticTask
>>> outputs = package_outputs(SemanticTask(3), 3)
>>> outputs.channel_names, outputs.postprocessing, outputs.raw
(('class0', 'class1', 'class2'), (('softmax', {'axis': 'channel'}),), False)
"""

from __future__ import annotations

import re

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from .data.dataset import DataOptions
from .data.normalize import Normalization
from .errors import ConfigError
from .inference.bioimageio_ops import Step
from .model import UNetConfig
from .sizes import SizeRule
from .tasks import Task

UNET_CITATION = ("Ronneberger O., Fischer P., Brox T. U-Net: Convolutional Networks for Biomedical Image "
                 "Segmentation. MICCAI 2015, LNCS 9351, 234-241.", "10.1007/978-3-319-24574-4_28")

#: the embedded sample's sources (data/sample/README.md), as (text, doi)
SAMPLE_CITATIONS = (
    ("Maška M., Ulman V., et al. The Cell Tracking Challenge: 10 years of objective benchmarking. "
     "Nature Methods 20, 1010-1020 (2023).", "10.1038/s41592-023-01879-y"),
    ("Ulman V., et al. An objective comparison of cell-tracking algorithms. Nature Methods 14, 1141-1152 (2017).",
     "10.1038/nmeth.4473"),
    ("Neumann B., et al. Phenotypic profiling of the human genome by time-lapse microscopy reveals cell division "
     "genes. Nature 464, 721-727 (2010).", "10.1038/nature08869"),
)
SAMPLE_TERMS = ("The test, sample and cover images are a crop of frame 15 of Fluo-N2DL-HeLa (sequence 02) of "
                "the Cell Tracking Challenge, provided for research use under the challenge's terms "
                "(celltrackingchallenge.net); the licence of this package does not extend to them.")


def normalization_steps(normalization: Normalization) -> list[Step]:
    """unetkit's per-image normalisation as bioimage.io preprocessing steps (per sample and channel)."""
    if normalization.mode == "percentile":
        if normalization.high <= 1:
            raise ConfigError(f"the upper percentile {normalization.high} cannot be written as a bioimage.io "
                              "scale_range (it needs more than 1)", fix="train with a higher upper percentile")
        return [("scale_range", {"axes": ["x", "y"], "min_percentile": normalization.low,
                                 "max_percentile": normalization.high})]
    if normalization.mode == "minmax":
        return [("scale_range", {"axes": ["x", "y"], "min_percentile": 0.0, "max_percentile": 100.0})]
    if normalization.mode == "scale":
        return [("scale_linear", {"gain": 1.0 / normalization.high, "offset": 0.0})]
    return []


def describe_normalization(normalization: Normalization) -> str:
    """One sentence for people."""
    if normalization.mode == "percentile":
        return (f"per image and channel, percentiles {normalization.low:g} and {normalization.high:g} "
                "are mapped to 0 and 1 (`scale_range`; where they are equal, on an image whose pixels nearly all "
                "hold one value, `scale_range` divides by almost 0 and the predictions are noise: unetkit's "
                "checkpoint takes the image's maximum there, which the package cannot say)")
    if normalization.mode == "minmax":
        return "per image and channel, the minimum and maximum are mapped to 0 and 1 (`scale_range`, 0 to 100)"
    if normalization.mode == "scale":
        return f"intensities are divided by {normalization.high:g} (`scale_linear`)"
    return "none: the network takes intensities as they are"


@dataclass(frozen=True)
class PackageOutputs:
    """What a package's output tensor holds for a task."""

    channel_names: tuple[str, ...]
    postprocessing: tuple[Step, ...]
    documentation: str  # the README's account of the outputs and how they become labels
    raw: bool  # True: the network's outputs before the task's activation


def _semantic_outputs(task: Task, num_outputs: int) -> PackageOutputs:
    if num_outputs == 1:
        return PackageOutputs(
            ("foreground",), (("sigmoid", {}),),
            "One channel: the probability of foreground (sigmoid of the network's logit). "
            "Labels: foreground where the probability is above 0.5.", False)
    return PackageOutputs(
        tuple(f"class{index}" for index in range(num_outputs)), (("softmax", {"axis": "channel"}),),
        f"{num_outputs} channels: the probability of each class, 0 (background) to {num_outputs - 1} (softmax "
        "over the channel axis). Labels: the class of the highest probability.", False)


def _raw_outputs(task: Task, num_outputs: int) -> PackageOutputs:
    how = " ".join((type(task).__doc__ or "").split()) or "see unetkit's documentation of this task"
    return PackageOutputs(
        tuple(f"output{index}" for index in range(num_outputs)), (),
        f"{num_outputs} channel(s): the network's raw outputs (logits), with no postprocessing in the package. "
        f"unetkit's '{task.name}' task turns them into labels ({how}); `unetkit predict model.zip` runs that "
        "post-processing, other tools show the raw outputs.", True)


#: each instance method's output channels, postprocessing steps and how its objects are made ({threshold} and
#: {seed_height} are the task's own values)
INSTANCE_CHANNELS = {
    "distance": (("foreground", "distance"), (("sigmoid", {}),),
                 "channel 0 is the probability of foreground, channel 1 each object's distance to its boundary "
                 "scaled to [0, 1]. Objects: one seed at each top of the distance (smoothed by a 1-px Gaussian) that "
                 "rises at least {seed_height:g} above the saddle to any higher top (h-maxima, found on every second "
                 "row and column), grown by a watershed on the inverted distance inside the foreground (probability "
                 "above {threshold:g}); a piece of foreground no seed reaches is an object of its own"),
    "three-class": (("background", "interior", "boundary"), (("softmax", {"axis": "channel"}),),
                    "the probabilities of background, object interior and object boundary (softmax). Objects: "
                    "seeds where the interior probability is above {threshold:g}, grown by a watershed on boundary "
                    "minus interior inside the foreground (background probability below {threshold:g})"),
    "border-weights": (("foreground",), (("sigmoid", {}),),
                       "the probability of foreground, learnt with 1-pixel gaps between touching objects (the "
                       "U-Net paper's weight map). Objects: connected components above {threshold:g}, gaps filled "
                       "back"),
}


def _instance_outputs(task: Task, num_outputs: int) -> PackageOutputs:
    names, steps, how = INSTANCE_CHANNELS[getattr(task, "method")]
    how = how.format(threshold=getattr(task, "threshold"), seed_height=getattr(task, "seed_height"))
    return PackageOutputs(
        names, steps,
        f"{num_outputs} channel(s): {how}; objects smaller than {getattr(task, 'min_size')} pixels are dropped. "
        "The package holds these per-pixel outputs; the post-processing to objects is not a bioimage.io step: "
        "`unetkit predict model.zip` runs it and writes the instance labels and a table of the objects, other "
        "tools show the probability maps.", False)


#: how each task's outputs are packaged; tasks without an entry are packaged raw
OUTPUT_DESCRIPTIONS: dict[str, Callable[[Task, int], PackageOutputs]] = {
    "semantic": _semantic_outputs, "instances": _instance_outputs,
}


def package_outputs(task: Task, num_outputs: int) -> PackageOutputs:
    """The output tensor's channels, postprocessing and documentation for ``task``."""
    return OUTPUT_DESCRIPTIONS.get(task.name, _raw_outputs)(task, num_outputs)


@dataclass(frozen=True)
class TrainingData:
    """The training data as a package describes it inline (no lookup of a dataset id)."""

    name: str
    description: str
    citations: tuple[tuple[str, str], ...] = ()
    tags: tuple[str, ...] = ()


def _is_sample(data: Any) -> bool:
    return data is None or str(data).startswith("sample:")


def training_data(training: dict[str, Any] | None) -> TrainingData | None:
    """What the run's options say about its data (None: not recorded).

    >>> training_data({"data": None}).name
    'Fluo-N2DL-HeLa (Cell Tracking Challenge), 4 frames'
    >>> training_data({"data": "/home/me/project/nuclei"}).name, training_data({"data": "/home/me/pairs.csv"}).name
    ('unetkit user data (nuclei)', 'unetkit user data (pairs_csv)')
    """
    if training is None:
        return None
    if _is_sample(training.get("data")):
        return TrainingData(
            "Fluo-N2DL-HeLa (Cell Tracking Challenge), 4 frames",
            "unetkit's embedded sample: frames 0, 3, 6 and 9 of sequence 02 of Fluo-N2DL-HeLa (HeLa cells, "
            "H2B-GFP nuclei, widefield fluorescence), 700x1100 px, uint16. The masks are the challenge's "
            "machine-made segmentations (ERR_SEG), read as foreground/background.",
            SAMPLE_CITATIONS, ("nuclei", "fluorescence-light-microscopy", "cells"))
    name = Path(str(training["data"])).name or "data"
    return TrainingData(
        f"unetkit user data ({re.sub(r'[^A-Za-z0-9_-]+', '_', name)})",  # the format turns other marks into spaces
        f"The user's own images and masks (folder or CSV '{name}'), not part of this package.")


#: training options not worth a reader's time, or local details (devices, paths of other runs)
_HIDDEN_OPTIONS = {"out", "progress", "device", "checkpoint_every", "channels_last", "val_tile_size"}
_PATH_OPTIONS = {"data", "val_data", "init_checkpoint"}


def training_settings(training: dict[str, Any]) -> list[tuple[str, str]]:
    """The run's options as (name, value) rows; paths shortened to their last part (no local paths leak).

    >>> training_settings({"out": "runs/a", "data": "/home/me/nuclei", "lr": 0.001, "loss": None})
    [('data', 'nuclei'), ('lr', '0.001')]
    >>> training_settings({"task": "instances", "num_classes": 1, "instance_method": "three-class"})
    [('task', 'instances'), ('instance_method', 'three-class')]
    """
    rows = []
    objects = training.get("task") == "instances"  # its outputs are the method's: --classes does not apply
    for name, value in training.items():
        if name in _HIDDEN_OPTIONS or value is None or (objects and name == "num_classes"):
            continue
        if name in _PATH_OPTIONS and not _is_sample(value):
            value = Path(str(value)).name
        rows.append((name, str(value)))
    return rows


def best_validation(log_rows: Sequence[dict[str, str]]) -> str | None:
    """A sentence on the run's best validation scores (log.csv), and on the model ``best.pt`` holds
    where that is a later one (``--keep-within``), or None.

    >>> rows = [{"epoch": "1", "step": "200", "val_dice": "0.8", "val_iou": "0.7", "kept_step": "200"},
    ...         {"epoch": "2", "step": "400", "val_dice": "0.9", "val_iou": "0.8", "kept_step": "400"}]
    >>> best_validation(rows)
    'best validation Dice 0.9000 (IoU 0.8000) in epoch 2 of 2'
    >>> best_validation(rows + [{"epoch": "3", "step": "600", "val_dice": "0.899", "val_iou": "", "kept_step": "600"}])
    'best validation Dice 0.9000 (IoU 0.8000) in epoch 2 of 3; best.pt holds the model of epoch 3 (Dice 0.8990), the latest within --keep-within of the best'
    >>> best_validation(rows + [{"epoch": "3", "step": "600", "val_dice": "0.85", "best": "0.95", "kept_step": "541"}]).split("; ")[1]
    "best.pt holds the model of step 541, validated where a time limit cut its epoch (the best of any validation, 0.9500, was such a cut model's)"
    """
    scored = [row for row in log_rows if row.get("val_dice") not in (None, "")]
    if not scored:
        return None
    best = max(scored, key=lambda row: float(row["val_dice"]))
    iou = f" (IoU {float(best['val_iou']):.4f})" if best.get("val_iou") not in (None, "") else ""
    sentence = f"best validation Dice {float(best['val_dice']):.4f}{iou} in epoch {best['epoch']} of {len(log_rows)}"
    logged_best = float(log_rows[-1].get("best") or "nan")  # the best score of any validation, in the last row
    kept_step = log_rows[-1].get("kept_step") or ""  # log.csv written before 2026-12-06: none
    kept = [row for row in scored if row.get("step") == kept_step]
    if kept and int(kept[0]["step"]) > int(best.get("step") or 0):
        sentence += (f"; best.pt holds the model of epoch {kept[0]['epoch']} (Dice {float(kept[0]['val_dice']):.4f}), "
                     "the latest within --keep-within of the best")
    elif kept_step and not kept:  # a run cut inside an epoch by --max-time, then resumed: that row was redone
        sentence += f"; best.pt holds the model of step {kept_step}, validated where a time limit cut its epoch"
    if logged_best > float(best["val_dice"]) + 5e-6:  # that cut model scored best: its row is gone
        sentence += f" (the best of any validation, {logged_best:.4f}, was such a cut model's)"
    return sentence


@dataclass(frozen=True)
class ReadmeFacts:
    """Everything the package's documentation reports."""

    name: str
    config: UNetConfig
    parameters: int
    data_options: DataOptions
    task: Task
    outputs: PackageOutputs
    size_rule: SizeRule
    test_shape: tuple[int, ...]
    tolerance: tuple[float, float]  # (relative, absolute)
    source: str  # the checkpoint's file name
    unetkit_version: str
    training: dict[str, Any] | None = None
    log_rows: tuple[dict[str, str], ...] = ()
    test_image: str | None = None  # the file the test input was cut from (--test-image); None: the HeLa sample


def _sizes(rule: SizeRule) -> str:
    if rule.halo:
        return (f"Input sides: {rule.minimum} + n x {rule.step} pixels (valid convolutions); the output is "
                f"{2 * rule.halo} pixels smaller on each axis ({rule.halo} per side), so tile with that overlap.")
    return (f"Input sides: {rule.minimum} + n x {rule.step} pixels ('same' padding: pad other sizes by mirroring "
            "and crop the output back); the output has the input's size.")


def _input_range(normalization: Normalization) -> str:
    """What intensities the package's input takes, in words.

    >>> _input_range(Normalization("none"))
    'float32 intensities in the range the training images had as read (the package does not normalise: give \
images scaled as those were; its test input, scaled 0 to 1, is a guess at that range).'
    """
    if normalization.mode == "scale":
        return (f"float32 intensities as recorded, in the training images' range (the package's preprocessing "
                f"divides by {normalization.high:g}).")
    if normalization.mode == "none":
        return ("float32 intensities in the range the training images had as read (the package does not "
                "normalise: give images scaled as those were; its test input, scaled 0 to 1, is a guess at that "
                "range).")
    return "float32 intensities as recorded (no scaling needed: the package's preprocessing normalises)."


def package_readme(facts: ReadmeFacts) -> str:
    """The package's README.md (markdown)."""
    config, training = facts.config, facts.training
    channels = "grey" if config.in_channels == 1 else f"{config.in_channels} channels"
    lines = [
        f"# {facts.name}", "",
        f"A 2D U-Net for {facts.task.name} segmentation, trained with unetkit {facts.unetkit_version} and "
        f"exported from `{facts.source}`. Architecture after Ronneberger et al. 2015.", "",
        "## Input", "",
        f"One 2D image, axes (batch, channel, y, x), {channels}, {_input_range(facts.data_options.normalization)}",
        f"Preprocessing: {describe_normalization(facts.data_options.normalization)}.",
        _sizes(facts.size_rule), "",
        "## Output", "",
        facts.outputs.documentation, "",
        "## Network", "",
        f"{config.depth} levels, {config.base_width} to {config.widths()[-1]} filters, {config.padding} padding, "
        f"{config.upsampling} up-sampling, batch norm {'on' if config.batch_norm else 'off'}, drop-out "
        f"{config.dropout:g}; {facts.parameters:,} parameters. Weights: TorchScript (traced) and ONNX (opset 17), "
        "the same network.", "",
        "## Training", "",
    ]
    data = training_data(training)
    if training is None:
        lines += ["Not recorded: the checkpoint had no run options (config.json) beside it.", ""]
    else:
        assert data is not None
        lines += [f"Data: {data.description}", "", "| option | value |", "|---|---|"]
        lines += [f"| {name} | {value} |" for name, value in training_settings(training)]
        lines += [""]
    relative, absolute = facts.tolerance
    lines += [
        "# Validation", "",
        f"- Test: the package's test input ({' x '.join(map(str, facts.test_shape))}) reproduces its test output "
        f"with each weight format within an absolute tolerance of {absolute:g} and a relative one of {relative:g} "
        "(`bioimageio.core` test_model, run by unetkit's tests).",
    ]
    scores = best_validation(facts.log_rows)
    if scores:
        lines.append(f"- Training run: {scores} (validation images held out of training, whole-image tiles).")
    lines += [
        "- Check the model on labelled images of your own before trusting it: "
        "`unetkit evaluate model.zip DATA` gives Dice and IoU per image.", "",
        "## Use", "",
        "- unetkit: `unetkit predict model.zip IMAGES... --out preds/` (tiles images of any size).",
        "- Fiji: install the model from this zip with deepImageJ's model installer (update site DeepImageJ).",
        "- ilastik: the Neural Network Classification workflow loads this zip as its model.",
        "- napari: napari's bioimage.io plugin, or `bioimageio.core.predict` from Python.", "",
        "## Citation", "",
        f"- {UNET_CITATION[0]} doi:{UNET_CITATION[1]}",
        f"- unetkit {facts.unetkit_version}, the library that trained and packaged this model.",
    ]
    if data is not None:
        lines += [f"- Training data: {text} doi:{doi}" for text, doi in data.citations]
    terms = SAMPLE_TERMS if facts.test_image is None else (
        f"The test, sample and cover images are a crop of {facts.test_image}, chosen by the package's authors.")
    lines += ["", "## Terms", "", terms, ""]
    return "\n".join(lines)
