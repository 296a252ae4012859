"""bioimage.io steps and package content in plain values: no bioimageio package needed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
import torch

from unetkit.bioimageio_content import normalization_steps, package_outputs, training_data
from unetkit.bioimageio_export import _test_tensors, sample_crop
from unetkit.checkpoint import LoadedModel
from unetkit.data.dataset import DataOptions
from unetkit.data.normalize import Normalization
from unetkit.inference.bioimageio_backend import TensorLayout
from unetkit.inference.bioimageio_ops import PackagePreprocessing, postprocess, unsupported_steps
from unetkit.model import UNet
from unetkit.tasks import SemanticTask


@pytest.mark.parametrize("normalization", [
    Normalization(), Normalization("percentile", 0.5, 97.0), Normalization("minmax"),
    Normalization("scale", high=65535.0), Normalization("none"),
], ids=lambda n: f"{n.mode}-{n.low}-{n.high}")
def test_normalisation_as_package_steps_normalises_as_unetkit_does(normalization):
    crop = sample_crop(128, in_channels=2)  # uint16 HeLa values as float32, two channels
    crop[1] = crop[1] * 0.5 + 100  # a channel of another range: statistics are per channel
    packaged = PackagePreprocessing(tuple(normalization_steps(normalization))).apply(crop)
    assert packaged.dtype == np.float32
    np.testing.assert_allclose(packaged, normalization.apply(crop), rtol=1e-5, atol=1e-5)


def test_zero_mean_unit_variance_is_per_image_and_channel_unless_the_channel_axis_is_reduced():
    image = np.stack([np.arange(20, dtype=np.float32).reshape(4, 5), np.full((4, 5), 7, np.float32)])
    per_channel = PackagePreprocessing((("zero_mean_unit_variance", {"axes": ["y", "x"]}),)).apply(image)
    assert np.allclose(per_channel.mean(axis=(1, 2)), 0, atol=1e-6)
    assert np.allclose(per_channel[0].std(), 1, atol=1e-4) and np.allclose(per_channel[1], 0)
    joint = PackagePreprocessing((("zero_mean_unit_variance", {"axes": ["channel", "y", "x"]}),)).apply(image)
    assert abs(float(joint.mean())) < 1e-6 and not np.allclose(joint[1], 0)


def test_fixed_and_linear_steps_apply_per_channel_values_along_their_axis():
    image = np.ones((2, 3, 3), np.float32)
    steps = (("scale_linear", {"axis": "channel", "gain": [2.0, 3.0], "offset": [0.0, 1.0]}),
             ("fixed_zero_mean_unit_variance", {"axis": "channel", "mean": [1.0, 2.0], "std": [1.0, 2.0]}))
    out = PackagePreprocessing(steps).apply(image)
    np.testing.assert_allclose(out[:, 0, 0], [1.0, 1.0], rtol=1e-5)


def test_postprocessing_softmax_sums_to_one_over_channels_and_binarize_thresholds():
    logits = np.random.default_rng(0).normal(size=(2, 3, 4, 5)).astype(np.float32)
    probabilities = postprocess((("softmax", {"axis": "channel"}),), logits)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(probabilities, torch.softmax(torch.from_numpy(logits), 1).numpy(), atol=1e-6)
    binary = postprocess((("sigmoid", {}), ("binarize", {"threshold": 0.5})), logits)
    assert set(np.unique(binary)) <= {0.0, 1.0} and np.array_equal(binary, (logits > 0).astype(np.float32))


def test_steps_unetkit_cannot_run_are_named_with_what_it_runs():
    assert unsupported_steps((("zero_mean_unit_variance", {}),), "preprocessing") == []
    assert "unetkit runs:" in unsupported_steps((("zero_mean_unit_variance", {}),), "postprocessing")[0]
    assert "by percentiles" in unsupported_steps((("clip", {"max_percentile": 99.0}),), "postprocessing")[0]
    with pytest.raises(ValueError, match="'custom'"):
        postprocess((("custom", {}),), np.zeros((1, 1, 2, 2), np.float32))


@pytest.mark.parametrize("axes", [("batch", "channel", "y", "x"), ("batch", "y", "x", "channel"), ("y", "x"),
                                  ("channel", "x", "y"), ("x", "y", "batch")])
def test_tensor_layouts_round_trip_and_put_each_axis_where_the_package_wants_it(axes):
    channels = 3 if "channel" in axes else 1
    batch = np.random.default_rng(1).normal(size=(1, channels, 5, 7)).astype(np.float32)
    layout = TensorLayout(axes, channels)
    packaged = layout.to_package(batch)
    sizes = {"batch": 1, "channel": channels, "y": 5, "x": 7}
    assert packaged.shape == tuple(sizes[name] for name in axes)
    assert np.array_equal(layout.from_package(packaged), batch)
    assert layout.one_image_per_run == ("batch" not in axes)


def test_semantic_outputs_carry_their_activation_as_postprocessing():
    one = package_outputs(SemanticTask(1), 1)
    assert one.channel_names == ("foreground",) and one.postprocessing == (("sigmoid", {}),) and not one.raw


@dataclass(frozen=True)
class _InstanceLikeTask:
    """Foreground and boundary probabilities; seeds, then watershed and relabelling."""

    name: ClassVar[str] = "some-future-task"  # a task the package format has no entry for

    @property
    def num_outputs(self) -> int:
        return 2

    def activation(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits)

    def labels(self, outputs: np.ndarray) -> np.ndarray:
        return (outputs[0] > 0.5).astype(np.uint8)


def test_a_task_without_a_package_entry_is_packaged_raw_with_its_post_processing_described():
    task = _InstanceLikeTask()
    outputs = package_outputs(task, 2)
    assert outputs.raw and outputs.postprocessing == () and outputs.channel_names == ("output0", "output1")
    assert "'some-future-task'" in outputs.documentation and "watershed" in outputs.documentation
    torch.manual_seed(0)
    model = UNet(depth=2, base_width=2, num_classes=2).eval()
    loaded = LoadedModel(model, DataOptions(num_classes=2), task)
    preprocessing = PackagePreprocessing(tuple(normalization_steps(Normalization())))
    tensors = _test_tensors(loaded, preprocessing, outputs)
    with torch.no_grad():
        logits = model(torch.from_numpy(tensors.image)[None])[0].numpy()
    np.testing.assert_allclose(tensors.output, logits, atol=1e-6)  # the raw outputs, not sigmoid(logits)
    assert np.array_equal(tensors.labels, (1 / (1 + np.exp(-logits[0])) > 0.5).astype(np.uint8))



@pytest.mark.parametrize("normalization, top", [(Normalization("scale", high=255.0), 255.0), (Normalization("none"), 1.0),
                                                (Normalization(), 65535.0)], ids=lambda v: str(v))
def test_the_test_input_lies_in_the_range_the_model_was_trained_in(normalization, top):
    # a model of 8-bit images that divides by 255 got the 16-bit crop (about 30,000 to 40,000): 130 times its
    # training range, so its test output and cover were foreground everywhere
    model = UNet(depth=2, base_width=2).eval()
    loaded = LoadedModel(model, DataOptions(normalization=normalization), SemanticTask())
    tensors = _test_tensors(loaded, PackagePreprocessing(tuple(normalization_steps(normalization))),
                            package_outputs(SemanticTask(), 1))
    assert tensors.raw.min() >= 0 and tensors.raw.max() <= top
    assert tensors.raw.max() > top / 2 if normalization.mode != "percentile" else tensors.raw.min() > 30000
    assert -0.05 <= np.quantile(tensors.image, 0.01) and np.quantile(tensors.image, 0.99) <= 1.05  # about 0 to 1

def test_training_data_of_the_sample_is_cited_and_user_data_named_by_folder_only():
    sample = training_data({"data": "sample:train"})
    assert sample is not None and [doi for _, doi in sample.citations][0] == "10.1038/s41592-023-01879-y"
    user = training_data({"data": "/home/someone/secret/nuclei"})
    assert user is not None and "nuclei" in user.name and "/home" not in user.name + user.description
    assert training_data(None) is None


def test_an_instance_model_is_packaged_with_its_probabilities_and_the_post_processing_described():
    from unetkit.instances.task import InstanceTask

    outputs = package_outputs(InstanceTask(method="distance"), 2)
    assert outputs.channel_names == ("foreground", "distance") and outputs.postprocessing == (("sigmoid", {}),)
    assert not outputs.raw and "watershed" in outputs.documentation and "unetkit predict" in outputs.documentation
    assert "rises at least 0.1 above the saddle" in outputs.documentation  # the seeds unetkit draws, not a 0.5 cut
    tuned = package_outputs(InstanceTask(method="distance", threshold=0.4, seed_height=0.2), 2).documentation
    assert "rises at least 0.2 above" in tuned and "probability above 0.4" in tuned  # the task's own values
    three = package_outputs(InstanceTask(method="three-class"), 3)
    assert three.postprocessing == (("softmax", {"axis": "channel"}),) and three.channel_names[2] == "boundary"


@pytest.mark.parametrize("steps", [
    (("ensure_dtype", {"dtype": "float32"}), ("scale_range", {"axes": ["x", "y"], "min_percentile": 1.0,
                                                              "max_percentile": 99.0})),
    (("zero_mean_unit_variance", {"axes": ["channel", "y", "x"]}),),
    (("clip", {"axes": ["y", "x"], "min_percentile": 5.0, "max_percentile": 95.0}),
     ("zero_mean_unit_variance", {"axes": ["y", "x"], "eps": 1e-4})),
], ids=["scale_range", "joint-zero-mean", "clip-then-zero-mean"])
def test_package_preprocessing_fitted_to_the_images_pixels_preprocesses_any_region_as_the_whole(steps):
    # what lets a package predict an image region by region (--probabilities-on-disk, planes past 8192 x 8192)
    image = sample_crop(96, in_channels=2)
    image[1] = image[1] * 0.5 + 100
    whole = PackagePreprocessing(steps).apply(image)
    fitted = PackagePreprocessing(steps).fitted(image.reshape(2, -1, 1).astype(np.float64), scratch=True)
    np.testing.assert_allclose(fitted.apply(image[:, 10:40, 20:70]), whole[:, 10:40, 20:70], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("steps", [
    (("zero_mean_unit_variance", {"axes": ["y", "x"]}),),
    (("scale_range", {"axes": ["y", "x"], "min_percentile": 1.0, "max_percentile": 99.0}),),
    (("zero_mean_unit_variance", {"axes": ["channel"]}),),
    (("clip", {"axes": ["channel"], "max_percentile": 50.0}), ("scale_range", {"axes": ["channel", "y", "x"]})),
], ids=["zero-mean", "scale_range", "each-pixel's-channels", "clip-by-each-pixel's-channels"])
def test_a_fitted_package_preprocessing_is_the_in_memory_one_to_float32_rounding(steps):
    # a 16-bit image far from 0 (mean 30000, spread 100): the fitted gain and offset in float32 left the values
    # 3e-5 off; statistics of each pixel's channels came out one per sampled pixel, and a region failed to broadcast
    image = np.random.default_rng(0).normal(30000, 100, (2, 96, 120)).astype(np.float32)
    whole = PackagePreprocessing(steps).apply(image)
    fitted = PackagePreprocessing(steps).fitted(image.reshape(2, -1, 1).astype(np.float64), scratch=True)
    np.testing.assert_allclose(fitted.apply(image[:, 10:40, 20:70]), whole[:, 10:40, 20:70], rtol=1e-6, atol=1e-6)


def test_package_statistics_of_each_row_are_refused_region_by_region_with_a_fix():
    # a sample of the image's pixels has no rows: the fitted step's numbers, one per sampled pixel, failed to
    # broadcast on the first region with a bare numpy ValueError
    from unetkit.errors import InputError

    with pytest.raises(InputError) as caught:
        PackagePreprocessing((("scale_range", {"axes": ["x"]}),)).fitted(np.zeros((1, 50, 1)))
    assert "along x alone (of each row)" in str(caught.value) and "without --probabilities-on-disk" in str(caught.value)
