"""Every kind of bad input: a clear message naming the file, exit code 2, nothing written.

One table, one runner: each row prepares a bad case under a fresh folder and gives the
command line and the words the error must contain. The runner checks, for every row, that
the command exits with 2 and no traceback, that the message holds the words, that no input
file changed and that the output (``--out``) was not created. A new case is one row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from unetkit import UNet, make_checkpoint, save_checkpoint
from unetkit.cli import main

from helpers import snapshot, write_dataset

TINY = ["--depth", "3", "--base-width", "4", "--epochs", "1", "--steps-per-epoch", "1",
        "--patch-size", "32", "--no-progress"]


@dataclass(frozen=True)
class BadInput:
    name: str
    prepare: Callable[[Path], list[str]]  # makes the case under the folder; returns the command line
    words: tuple[str, ...]  # the error message must contain each


def train(data: Path, *extra: str) -> list[str]:
    return ["train", str(data), "--out", str(data.parent / "out"), *TINY, *extra]


def dataset(root: Path, count: int = 2) -> Path:
    return write_dataset(root / "d", count=count)


def with_image(root: Path, name: str, array: np.ndarray, where: str = "images", axes: str | None = None) -> Path:
    """A two-pair dataset whose ``where/name`` is replaced by ``array`` (TIFF or PNG by name)."""
    data = dataset(root)
    stem = Path(name).stem
    for old in (data / where).glob(f"{stem}.*"):
        old.unlink()
    path = data / where / name
    if path.suffix == ".tif":
        tifffile.imwrite(path, array, photometric="minisblack", metadata={"axes": axes} if axes else {})
    else:
        Image.fromarray(array).save(path)
    return data


def masks_of(root: Path, change: Callable[[np.ndarray], np.ndarray], keep: str | None = None) -> Path:
    """A five-pair dataset whose masks are ``change(mask)``, but for the mask named ``keep``."""
    data = write_dataset(root / "d", count=5)
    for path in (data / "masks").glob("*.png"):
        if path.name != keep:
            Image.fromarray(change(np.asarray(Image.open(path))).astype(np.uint8)).save(path)
    return data


def one_mask_unlabelled(root: Path, name: str, ignore_index: int) -> Path:
    """A five-pair dataset whose mask ``name`` is ``ignore_index`` everywhere (a frame nobody annotated)."""
    data = write_dataset(root / "d", count=5)
    mask = np.asarray(Image.open(data / "masks" / name))
    Image.fromarray(np.full_like(mask, ignore_index)).save(data / "masks" / name)
    return data


def unlabelled_val_data(root: Path) -> list[str]:
    """``--val-data`` of one pair whose mask is all 255, beside a labelled training set."""
    val = one_mask_unlabelled(root / "v", "img0.png", 255)
    for path in [*(val / "images").glob("img[1-9].png"), *(val / "masks").glob("img[1-9].png")]:
        path.unlink()
    return train(dataset(root), "--val-data", str(val), "--ignore-index", "255")


def truncated(root: Path, suffix: str) -> Path:
    data = dataset(root)
    if suffix == ".tif":
        (data / "images" / "img1.png").unlink()
        tifffile.imwrite(data / "images" / "img1.tif", np.random.default_rng(0).integers(0, 255, (64, 80), dtype=np.uint8))
    path = data / "images" / f"img1{suffix}"
    path.write_bytes(path.read_bytes()[: 60 if suffix == ".png" else 200])
    return data


def emptied(root: Path) -> Path:
    data = dataset(root)
    (data / "images" / "img1.png").write_bytes(b"")  # a copy that never finished
    return data


def empty_folders(root: Path) -> Path:
    (root / "d" / "images").mkdir(parents=True)
    (root / "d" / "masks").mkdir()
    return root / "d"


def removed(root: Path, relative: str) -> Path:
    data = dataset(root)
    (data / relative).unlink()
    return data


def text_as_png(root: Path) -> Path:
    data = dataset(root)
    (data / "images" / "img0.png").write_text("this is not a picture")
    return data


def nan_image(value: float) -> np.ndarray:
    image = np.ones((64, 80), np.float32)
    image[3, 4] = value
    return image


def checkpoint(root: Path, **options) -> Path:
    save_checkpoint(root / "m.pt", make_checkpoint(UNet(**options)))
    return root / "m.pt"


def object_model(root: Path) -> Path:
    """A checkpoint of --task instances, with TINY's network (foreground and distance outputs)."""
    from unetkit.tasks import task_for

    task = task_for("instances")
    model = UNet(depth=3, base_width=4, num_classes=task.num_outputs)
    save_checkpoint(root / "m.pt", make_checkpoint(model, task=task))
    return root / "m.pt"


def predict(root: Path, model: Path, *inputs: Path) -> list[str]:
    return ["predict", str(model), *map(str, inputs), "--out", str(root / "out")]


def unpacked_package(root: Path, description: str = "rdf.yaml") -> Path:
    """A folder that holds a package's description (its other files do not matter to the message)."""
    (root / "package").mkdir()
    (root / "package" / description).write_text("type: model\n")
    return root / "package"


def tiny_png(root: Path) -> Path:
    Image.fromarray(np.zeros((5, 40), np.uint8)).save(root / "tiny.png")
    return root / "tiny.png"


def beyond_float32(root: Path) -> Path:
    """A float64 image with a value float32 cannot hold (the network reads float32)."""
    image = np.ones((64, 80), np.float64)
    image[3, 4] = 1e300
    tifffile.imwrite(root / "huge.tif", image)
    return root / "huge.tif"


def onnx_file(root: Path) -> Path:
    """An ONNX export of a tiny model."""
    from unetkit.export import export_onnx

    export_onnx(UNet(depth=2, base_width=2), root / "m.onnx")
    return root / "m.onnx"


def not_a_checkpoint(root: Path) -> Path:
    (root / "notes.pt").write_text("hello")
    return root / "notes.pt"


def torchscript_program(root: Path) -> Path:
    """What ``unetkit export --format torchscript`` writes (a program, not a checkpoint), named like one."""
    torch.jit.save(torch.jit.script(torch.nn.ReLU()), root / "exported.pt")
    return root / "exported.pt"


def images_as_masks(root: Path) -> Path:
    """The slip of saving each image into masks/ as well."""
    data = dataset(root)
    for image in (data / "images").iterdir():
        (data / "masks" / image.name).write_bytes(image.read_bytes())
    return data


CASES = [
    BadInput("missing folder", lambda r: train(r / "nowhere"), ("nowhere", "not found")),
    BadInput("empty folders", lambda r: train(empty_folders(r)), ("images", "holds no images")),
    BadInput("image without mask", lambda r: train(removed(r, "masks/img1.png")),
             ("1 image(s) without a mask", "img1.png")),
    BadInput("mask without image", lambda r: train(removed(r, "images/img0.png")),
             ("mask(s) without an image", "img0.png")),
    BadInput("truncated PNG", lambda r: train(truncated(r, ".png")), ("img1.png", "corrupt, truncated")),
    BadInput("truncated TIFF", lambda r: train(truncated(r, ".tif")), ("img1.tif", "cannot be read")),
    BadInput("empty file", lambda r: train(emptied(r)), ("img1.png", "the file is empty (0 bytes)")),
    BadInput("text file named .png", lambda r: train(text_as_png(r)), ("img0.png", "not an image file")),
    BadInput("mask of another size", lambda r: train(with_image(r, "img1.png", np.zeros((10, 10), np.uint8), "masks")),
             ("img1.png", "mask is 10x10", "64x80")),
    BadInput("mask with unexpected values", lambda r: train(with_image(r, "img1.png", np.full((64, 80), 7, np.uint8), "masks")),
             ("img1.png", "values {7}", "--classes")),
    BadInput("float mask", lambda r: train(with_image(r, "img1.tif", np.zeros((64, 80), np.float32), "masks")),
             ("img1.tif", "floating point")),
    BadInput("complex mask", lambda r: train(with_image(r, "img1.tif", np.ones((64, 80), np.complex64), "masks")),
             ("img1.tif", "complex numbers")),
    BadInput("NaN pixel", lambda r: train(with_image(r, "img1.tif", nan_image(np.nan))), ("img1.tif", "NaN or infinite")),
    BadInput("infinite pixel", lambda r: train(with_image(r, "img1.tif", nan_image(np.inf))), ("img1.tif", "NaN or infinite")),
    BadInput("4D stack", lambda r: train(with_image(r, "img1.tif", np.zeros((2, 3, 64, 80), np.uint8), axes="TZYX")),
             ("img1.tif", "4D stack", "2D")),
    BadInput("different channel counts", lambda r: train(with_image(r, "img1.png", np.zeros((64, 80, 3), np.uint8))),
             ("img1.png", "3 channel(s)", "img0.png has 1")),
    BadInput("validation images of another channel count",  # the message names the file, not just images/...
             lambda r: train(dataset(r), "--val-data", str(with_image(r / "v", "img0.png", np.zeros((64, 80, 3), np.uint8)))),
             ("v/d/images/img0.png", "3 channel(s)", "expects 1")),
    BadInput("checkpoint of another model", lambda r: train(dataset(r), "--init", str(checkpoint(r, depth=2, base_width=4))),
             ("m.pt", "another model configuration", "depth")),
    BadInput("float64 pixel beyond float32 (train)",
             lambda r: train(with_image(r, "img1.tif", np.where(nan_image(1.0) > 0, 1.0, 0.0).astype(np.float64) * 1e300)),
             ("img1.tif", "NaN or infinite", "float32")),
    BadInput("image below the network's minimum", lambda r: predict(r, checkpoint(r, depth=4, base_width=2), tiny_png(r)),
             ("tiny.png", "smaller than the network's minimum side 8")),
    BadInput("a border past the tile", lambda r: predict(r, checkpoint(r, depth=2), Path("sample:heldout"))
             + ["--border", "600"], ("border must be", "below the tile size")),
    BadInput("ignore index with instances", lambda r: train(dataset(r), "--task", "instances", "--ignore-index", "9"),
             ("--task instances", "--ignore-index")),
    *(BadInput(f"the images saved as masks{' ' + ' '.join(flags) if flags else ''}",
               lambda r, flags=flags: train(images_as_masks(r), *flags),
               ("masks/img0.png", "looks like an intensity image, not labels", "not copies of the images"))
      for flags in ((), ("--instance-masks",), ("--task", "instances"))),
    BadInput("file that is not a checkpoint", lambda r: predict(r, not_a_checkpoint(r), Path("sample:heldout")),
             ("notes.pt", "not a PyTorch checkpoint")),
    BadInput("an unpacked bioimage.io package's folder", lambda r: predict(r, unpacked_package(r), Path("sample:heldout")),
             ("is a folder, not a checkpoint file", "predict and evaluate take the package's", "package/rdf.yaml")),
    BadInput("an unpacked package whose description is NAME.bioimageio.yaml",
             lambda r: predict(r, unpacked_package(r, "cells.bioimageio.yaml"), Path("sample:heldout")),
             ("is a folder, not a checkpoint file", "package/cells.bioimageio.yaml")),
    BadInput("a missing ONNX file", lambda r: predict(r, r / "typo.onnx", Path("sample:heldout")),
             ("typo.onnx", "ONNX file not found")),
    BadInput("a GPU and bf16 asked of an ONNX file", lambda r: predict(r, onnx_file(r), Path("sample:heldout"))
             + ["--device", "cuda", "--precision", "bf16"],
             ("m.onnx", "an ONNX file runs with ONNX Runtime on the CPU in fp32",
              "not with --device cuda and --precision bf16", "the .pt checkpoint it was exported from")),
    BadInput("bf16 asked with --backend onnxruntime", lambda r: predict(r, checkpoint(r, depth=2), Path("sample:heldout"))
             + ["--backend", "onnxruntime", "--precision", "bf16"],
             ("m.pt", "--backend onnxruntime runs with ONNX Runtime", "leave --backend onnxruntime out for --precision bf16")),
    BadInput("a TorchScript export given to predict", lambda r: predict(r, torchscript_program(r), Path("sample:heldout")),
             ("exported.pt", "a TorchScript program", "--format onnx")),
    BadInput("an object model given as --init to a pixel run", lambda r: train(dataset(r), "--init", str(object_model(r))),
             ("m.pt", "a model of --task instances (2 outputs)", "pass --task instances --instance-method distance")),
    BadInput("a folder given as --init", lambda r: train(dataset(r), "--init", str(checkpoint(r).parent)),
             ("is a folder, not a checkpoint file", "m.pt")),  # names the model file that is there
    BadInput("masks without background: ilastik's 1 and 2, as objects",
             lambda r: train(masks_of(r, lambda mask: (mask > 0) + 1), "--instance-masks"),
             ("no mask has any background (0)", "subtract 1")),
    BadInput("masks without background: all foreground", lambda r: train(masks_of(r, lambda mask: mask * 0 + 1)),
             ("no mask has any background (0)", "Dice 1.0")),
    BadInput("the one mask with foreground held out for validation",
             lambda r: train(masks_of(r, lambda mask: mask * 0, keep="img2.png")),
             ("every mask with foreground was held out for validation (images/img2.png)", "--val-fraction 0", "--seed")),
    BadInput("the held-out mask all --ignore-index: nothing to validate on",
             lambda r: train(one_mask_unlabelled(r, "img2.png", 255), "--ignore-index", "255"),
             ("every validation mask is --ignore-index 255 everywhere (images/img2.png)", "no pixel to score",
              "--val-data")),
    BadInput("the --val-data masks all --ignore-index", unlabelled_val_data,
             ("every validation mask is --ignore-index 255 everywhere (images/img0.png)",
              "give a --val-data whose masks hold pixels other than --ignore-index")),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_bad_input_is_refused_with_a_clear_message_and_nothing_written(tmp_path, capsys, case):
    argv = case.prepare(tmp_path)
    before = snapshot(tmp_path)
    code = main(argv)
    error = capsys.readouterr().err
    assert code == 2, error
    assert "Traceback" not in error
    for word in case.words:
        assert word in error, f"{word!r} not in {error!r}"
    assert snapshot(tmp_path) == before, "an input was changed or an output written"
    assert not (tmp_path / "out").exists()


class _Exploit:
    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_pickle_that_carries_code_is_refused_and_not_run(tmp_path, capsys):
    marker = tmp_path / "pwned"
    exploit = _Exploit()
    exploit.marker = str(marker)
    payload = make_checkpoint(UNet(depth=2, base_width=2))
    payload["extra"] = exploit
    torch.save(payload, tmp_path / "evil.pt")
    assert not marker.exists()
    code = main(["predict", str(tmp_path / "evil.pt"), "sample:heldout", "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err
    assert code == 2 and "evil.pt" in error and "refused" in error and "Python object" in error
    assert not marker.exists(), "loading the checkpoint ran code from it"
    with open(tmp_path / "evil.pt", "rb") as handle:  # the file really does carry the payload
        assert b"touch" in handle.read()


def test_debug_shows_the_traceback(tmp_path):
    from unetkit.errors import InputError

    with pytest.raises(InputError):
        main(["--debug", "train", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run")])


def test_a_run_directory_is_never_reused(tmp_path, capsys, dataset):
    out = tmp_path / "run"
    out.mkdir()
    (out / "precious.txt").write_text("keep")
    code = main(["train", str(dataset), "--out", str(out), *TINY])
    error = capsys.readouterr().err
    assert code == 2 and "--out is a folder of other files (precious.txt), not a run" in error, error
    assert "--resume" not in error  # resuming a folder that holds no run cannot be the way out
    assert (out / "precious.txt").read_text() == "keep" and len(list(out.iterdir())) == 1
    assert main(["train", str(dataset), "--out", str(tmp_path / "real"), *TINY]) == 0
    capsys.readouterr()
    code = main(["train", str(dataset), "--out", str(tmp_path / "real"), *TINY])
    error = capsys.readouterr().err
    assert code == 2 and "run directory exists" in error and f"--resume {tmp_path / 'real'}" in error


def test_predict_refuses_a_float64_pixel_beyond_float32_and_writes_no_output(tmp_path, capsys):
    image = beyond_float32(tmp_path)
    before = image.read_bytes()
    code = main(predict(tmp_path, checkpoint(tmp_path, depth=2), image))
    error = capsys.readouterr().err
    assert code == 2 and "huge.tif" in error and "NaN or infinite" in error and "float32" in error
    assert image.read_bytes() == before and not (tmp_path / "out").exists()  # not even an empty folder


@pytest.mark.parametrize("pixels", [np.full((64, 64), 1 + 2j, np.complex64), np.full((64, 64), 3 - 1j, np.complex128)])
def test_predict_refuses_complex_pixels_rather_than_dropping_their_imaginary_part(tmp_path, capsys, pixels):
    image = tmp_path / "fft.tif"
    tifffile.imwrite(image, pixels)
    code = main(predict(tmp_path, checkpoint(tmp_path, depth=2), image))
    error = capsys.readouterr().err
    assert code == 2 and "fft.tif" in error and "complex numbers" in error and "numpy.abs" in error
    assert not (tmp_path / "out").exists()  # not even an empty folder


def test_a_tiff_saved_without_axes_says_how_its_planes_were_read(tmp_path, capsys):
    # numpy stacks saved with a plain tifffile.imwrite: 3 or 4 planes become one RGB image's colour samples, 2 stay
    # planes; the messages said "colour channels" and "channel(s)" with no word of why
    import warnings

    data = tmp_path / "movie"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tifffile.imwrite(data / "images" / "m.tif", rng.integers(0, 4000, (3, 48, 64), dtype=np.uint16))
        masks = np.zeros((3, 48, 64), np.uint8)
        masks[0, 5:20, 5:20], masks[1, 20:40, 10:30], masks[2, 10:30, 30:50] = 1, 1, 1
        tifffile.imwrite(data / "masks" / "m.tif", masks)
    assert main(["inspect", str(data)]) == 2
    said = capsys.readouterr().out
    assert "3 planes as the colour samples of one RGB image" in said and "photometric='minisblack'" in said, said
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "two.pt", make_checkpoint(UNet(in_channels=2, depth=2, base_width=4)))
    tifffile.imwrite(tmp_path / "cyx.tif", rng.integers(0, 4000, (2, 48, 64), dtype=np.uint16))
    assert main(["predict", str(tmp_path / "two.pt"), str(tmp_path / "cyx.tif"), "--out", str(tmp_path / "o")]) == 2
    said = capsys.readouterr().err
    assert "read as a stack of 2 planes" in said and "'axes': 'CYX'" in said, said


def test_an_alpha_channel_kept_as_a_channel_is_named_in_the_channel_message(tmp_path, capsys):
    # an RGB tile with a transparent margin read as 4 channels, "the model takes 3", with no word of the alpha
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "rgb.pt", make_checkpoint(UNet(in_channels=3, depth=2, base_width=4)))
    rgba = np.random.default_rng(0).integers(0, 255, (48, 64, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    rgba[:, :16, 3] = 0  # a quarter transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "tile.png")
    assert main(["predict", str(tmp_path / "rgb.pt"), str(tmp_path / "tile.png"), "--out", str(tmp_path / "o")]) == 2
    said = capsys.readouterr().err
    assert "4 channel(s), the model takes 3" in said and "its last channel is its alpha" in said, said


@pytest.mark.parametrize(("values", "advice"), [((0, 128), "binary mask whose foreground is 128"),
                                                 ((0, 50, 100), "number them 0..2 and pass --classes 3"),
                                                 ((0, 1, 2, 4), "if these are 5 classes, pass --classes 5")])
def test_the_advice_for_unexpected_mask_values_fits_them(tmp_path, values, advice):
    # {0, 128} was advised "if these are 129 classes, pass --classes 129"
    from unetkit.data.masks import mask_rule
    from unetkit.errors import InputError

    mask = np.zeros((20, 20), np.uint8)
    for index, value in enumerate(values):
        mask[index * 4 : index * 4 + 4] = value
    with pytest.raises(InputError) as error:
        mask_rule(mask, tmp_path / "m.png", num_classes=1)
    assert advice in str(error.value), str(error.value)


def test_four_planes_saved_without_axes_are_not_called_an_alpha_channel_to_delete(tmp_path):
    # tifffile marks the 4th sample of a (4, Y, X) array as alpha: the hint said "save the image without it"
    import warnings

    from unetkit.data.io import layout_hint

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tifffile.imwrite(tmp_path / "four.tif", np.zeros((4, 48, 64), np.uint16))
    hint = layout_hint(tmp_path / "four.tif")
    assert "4 planes as the colour samples" in hint and "without it" not in hint, hint


def test_the_binary_advice_is_for_one_class_models_only(tmp_path):
    from unetkit.data.masks import mask_rule
    from unetkit.errors import InputError

    mask = np.zeros((20, 20), np.uint8)
    mask[5:10] = 20
    with pytest.raises(InputError) as error:
        mask_rule(mask, tmp_path / "m.png", num_classes=3)
    assert "0/255" not in str(error.value), str(error.value)


@pytest.mark.parametrize("make, extra, said", [
    (lambda r: one_mask_unlabelled(r, "img2.png", 255), ["--ignore-index", "255"],
     "every validation mask is --ignore-index 255 everywhere (images/img2.png)"),
    (lambda r: masks_of(r, lambda mask: mask * 0, keep="img2.png"), [],
     "every mask with foreground was held out for validation (images/img2.png)"),
])
def test_inspect_refuses_the_split_that_train_refuses(tmp_path, capsys, make, extra, said):
    # a time-lapse whose one unannotated frame (all 255) is the one the seed holds out: inspect said "ready to
    # train" and train then stopped with "every validation mask is --ignore-index 255 everywhere"
    data = make(tmp_path)
    assert main(["inspect", str(data), *extra]) == 2
    out = capsys.readouterr().out
    assert said in out and "ready to train" not in out, out
    assert main(["inspect", str(data), *extra, "--val-fraction", "0"]) == 0, capsys.readouterr().out
    assert main(train(data, *extra)) == 2  # what inspect foretold


def test_a_four_d_stack_without_axes_says_how_to_record_them(tmp_path, capsys):
    # numpy's (T, C, Y, X) of two-channel frames saved with a plain tifffile.imwrite reads as axes QQYX, and the
    # fix said only "save each 2D plane as its own file", which splits the channels apart; with its axes
    # recorded the same array is a stack of two-channel planes
    movie = np.random.default_rng(0).random((3, 2, 48, 64))  # float64, numpy's own: ImageJ's format refuses it
    tifffile.imwrite(tmp_path / "bare.tif", movie)
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "two.pt", make_checkpoint(UNet(in_channels=2, depth=2, base_width=4)))
    assert main(["predict", str(tmp_path / "two.pt"), str(tmp_path / "bare.tif"), "--out", str(tmp_path / "o")]) == 2
    said = capsys.readouterr().err
    assert "bare.tif" in said and "records no axes" in said, said
    assert "tifffile.imwrite(path, array, metadata={'axes': 'TCYX'})" in said, said  # imagej=True failed on floats
    tifffile.imwrite(tmp_path / "named.tif", movie, metadata={"axes": "TCYX"})  # what the fix says
    assert main(["predict", str(tmp_path / "two.pt"), str(tmp_path / "named.tif"), "--out", str(tmp_path / "o"),
                 "--no-progress"]) == 0, capsys.readouterr().err
    assert len(list((tmp_path / "o").glob("named_*_labels.png"))) == 3
