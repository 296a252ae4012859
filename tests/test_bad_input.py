"""Every kind of bad input: a clear message naming the file, exit code 2, nothing written."""

from __future__ import annotations

from pathlib import Path

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


def run_train(data: Path, out: Path, capsys, *extra: str) -> tuple[int, str]:
    before = snapshot(data) if data.exists() else {}
    code = main(["train", str(data), "--out", str(out), *TINY, *extra])
    error = capsys.readouterr().err
    if data.exists():
        assert snapshot(data) == before, "the input data was changed"
    return code, error


def assert_refused(code: int, error: str, out: Path, *fragments: str) -> None:
    assert code == 2
    assert "Traceback" not in error
    for fragment in fragments:
        assert fragment in error, f"{fragment!r} not in {error!r}"
    assert not out.exists(), "a refused run must not create its run directory"


def test_missing_folder(tmp_path, capsys):
    code, error = run_train(tmp_path / "nowhere", tmp_path / "run", capsys)
    assert_refused(code, error, tmp_path / "run", "nowhere", "not found")


def test_empty_folders(tmp_path, capsys):
    (tmp_path / "d" / "images").mkdir(parents=True)
    (tmp_path / "d" / "masks").mkdir()
    code, error = run_train(tmp_path / "d", tmp_path / "run", capsys)
    assert_refused(code, error, tmp_path / "run", "images", "holds no images")


def test_image_without_mask(tmp_path, capsys):
    root = write_dataset(tmp_path / "d", count=2)
    (root / "masks" / "img1.png").unlink()
    code, error = run_train(root, tmp_path / "run", capsys)
    assert_refused(code, error, tmp_path / "run", "1 image(s) without a mask", "img1.png")


def test_mask_without_image(tmp_path, capsys):
    root = write_dataset(tmp_path / "d", count=2)
    (root / "images" / "img0.png").unlink()
    code, error = run_train(root, tmp_path / "run", capsys)
    assert_refused(code, error, tmp_path / "run", "mask(s) without an image", "img0.png")


def test_truncated_png(tmp_path, capsys):
    root = write_dataset(tmp_path / "d", count=2)
    path = root / "images" / "img1.png"
    path.write_bytes(path.read_bytes()[:60])
    code, error = run_train(root, tmp_path / "run", capsys)
    assert_refused(code, error, tmp_path / "run", "img1.png", "corrupt, truncated")


def test_truncated_tiff(tmp_path, capsys):
    root = write_dataset(tmp_path / "d", count=2)
    (root / "images" / "img1.png").unlink()
    data = np.random.default_rng(0).integers(0, 255, (64, 80), dtype=np.uint8)
    tifffile.imwrite(root / "images" / "img1.tif", data)
    path = root / "images" / "img1.tif"
    path.write_bytes(path.read_bytes()[:200])
    code, error = run_train(root, tmp_path / "run", capsys)
    assert_refused(code, error, tmp_path / "run", "img1.tif", "cannot be read")


def test_text_file_with_an_image_extension(tmp_path, capsys):
    root = write_dataset(tmp_path / "d", count=2)
    (root / "images" / "img0.png").write_text("this is not a picture")
    code, error = run_train(root, tmp_path / "run", capsys)
    assert_refused(code, error, tmp_path / "run", "img0.png", "not an image file")


def test_image_and_mask_of_different_sizes(tmp_path, capsys):
    root = write_dataset(tmp_path / "d", count=2)
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(root / "masks" / "img1.png")
    code, error = run_train(root, tmp_path / "run", capsys)
    assert_refused(code, error, tmp_path / "run", "img1.png", "mask is 10x10", "64x80")


def test_mask_with_unexpected_values(tmp_path, capsys):
    root = write_dataset(tmp_path / "d", count=2)
    Image.fromarray(np.full((64, 80), 7, np.uint8)).save(root / "masks" / "img1.png")
    code, error = run_train(root, tmp_path / "run", capsys)
    assert_refused(code, error, tmp_path / "run", "img1.png", "values {7}", "--classes")


def test_float_mask(tmp_path, capsys):
    root = write_dataset(tmp_path / "d", count=2)
    (root / "masks" / "img1.png").unlink()
    tifffile.imwrite(root / "masks" / "img1.tif", np.zeros((64, 80), np.float32))
    code, error = run_train(root, tmp_path / "run", capsys)
    assert_refused(code, error, tmp_path / "run", "img1.tif", "floating point")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_in_an_image(tmp_path, capsys, bad):
    root = write_dataset(tmp_path / "d", count=2)
    (root / "images" / "img1.png").unlink()
    image = np.ones((64, 80), np.float32)
    image[3, 4] = bad
    tifffile.imwrite(root / "images" / "img1.tif", image)
    code, error = run_train(root, tmp_path / "run", capsys)
    assert_refused(code, error, tmp_path / "run", "img1.tif", "NaN or infinite")


def test_3d_stack_where_2d_was_expected(tmp_path, capsys):
    root = write_dataset(tmp_path / "d", count=2)
    (root / "images" / "img1.png").unlink()
    tifffile.imwrite(root / "images" / "img1.tif", np.zeros((2, 3, 64, 80), np.uint8),
                     photometric="minisblack", metadata={"axes": "TZYX"})
    code, error = run_train(root, tmp_path / "run", capsys)
    assert_refused(code, error, tmp_path / "run", "img1.tif", "4D stack", "2D")


def test_images_with_different_channel_counts(tmp_path, capsys):
    root = write_dataset(tmp_path / "d", count=2)
    Image.fromarray(np.zeros((64, 80, 3), np.uint8)).save(root / "images" / "img1.png")
    code, error = run_train(root, tmp_path / "run", capsys)
    assert_refused(code, error, tmp_path / "run", "img1.png", "3 channel(s)", "img0.png has 1")


def test_image_smaller_than_the_network_minimum(tmp_path, capsys):
    save_checkpoint(tmp_path / "m.pt", make_checkpoint(UNet(depth=4, base_width=2)))
    Image.fromarray(np.zeros((5, 40), np.uint8)).save(tmp_path / "tiny.png")
    code = main(["predict", str(tmp_path / "m.pt"), str(tmp_path / "tiny.png"), "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err
    assert code == 2 and "tiny.png" in error and "smaller than the network's minimum side 8" in error
    assert not any((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True


def test_checkpoint_of_another_model_configuration(tmp_path, capsys):
    root = write_dataset(tmp_path / "d", count=2)
    save_checkpoint(tmp_path / "other.pt", make_checkpoint(UNet(depth=2, base_width=4)))
    code, error = run_train(root, tmp_path / "run", capsys, "--init", str(tmp_path / "other.pt"))
    assert_refused(code, error, tmp_path / "run", "other.pt", "another model configuration", "depth")


def test_file_that_is_not_a_checkpoint(tmp_path, capsys):
    (tmp_path / "notes.pt").write_text("hello")
    code = main(["predict", str(tmp_path / "notes.pt"), "sample:heldout", "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err
    assert code == 2 and "notes.pt" in error and "not a readable checkpoint" in error
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
    assert code == 2 and "evil.pt" in error and "refused" in error
    assert not marker.exists(), "loading the checkpoint ran code from it"
    with open(tmp_path / "evil.pt", "rb") as handle:  # the file really does carry the payload
        assert b"touch" in handle.read()


def test_debug_shows_the_traceback(tmp_path):
    from unetkit.errors import InputError

    with pytest.raises(InputError):
        main(["--debug", "train", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run")])


def test_a_run_directory_is_never_reused(tmp_path, capsys):
    root = write_dataset(tmp_path / "d", count=3)
    out = tmp_path / "run"
    out.mkdir()
    (out / "precious.txt").write_text("keep")
    code, error = run_train(root, out, capsys)
    assert code == 2 and "run directory exists" in error and "--resume" in error
    assert (out / "precious.txt").read_text() == "keep" and len(list(out.iterdir())) == 1
