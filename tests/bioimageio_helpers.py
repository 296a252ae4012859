"""Building bioimage.io packages the way other tools do, for unetkit's reader to meet.

Needs the ``bioimageio`` extra; the tests that import this module skip without it.
"""

from __future__ import annotations

import socket
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from bioimageio.spec import save_bioimageio_package
from bioimageio.spec.model import v0_5 as v
from PIL import Image


class NetworkGuard:
    """While active, every attempt to resolve a host or open a network connection raises and is recorded."""

    def __init__(self) -> None:
        self.attempts: list[str] = []
        self._saved: list[tuple[Any, str, Any]] = []

    def __enter__(self) -> NetworkGuard:
        real_connect = socket.socket.connect

        def connect(sock: socket.socket, address: Any) -> None:
            if sock.family == socket.AF_UNIX:
                return real_connect(sock, address)
            self.attempts.append(f"connect {address}")
            raise OSError(f"network blocked by unetkit's tests: connect {address}")

        def connect_ex(sock: socket.socket, address: Any) -> int:
            connect(sock, address)
            return 0

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            self.attempts.append(f"resolve {host}")
            raise socket.gaierror(f"network blocked by unetkit's tests: resolve {host}")

        for owner, name, replacement in ((socket.socket, "connect", connect), (socket.socket, "connect_ex", connect_ex),
                                         (socket, "getaddrinfo", getaddrinfo)):
            self._saved.append((owner, name, getattr(owner, name)))
            setattr(owner, name, replacement)
        return self

    def __exit__(self, *exc: Any) -> None:
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)
        self._saved.clear()


class TinyCNN(torch.nn.Module):
    """A 'same' 3x3 + 1x1 convolution network, any size: what another tool might package."""

    def __init__(self, in_channels: int = 1, out_channels: int = 1, sigmoid: bool = False, channels_last: bool = False):
        super().__init__()
        torch.manual_seed(1)
        self.conv = torch.nn.Conv2d(in_channels, 6, 3, padding=1)
        self.head = torch.nn.Conv2d(6, out_channels, 1)
        self.sigmoid, self.channels_last = sigmoid, channels_last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.permute(0, 3, 1, 2)
        y = self.head(torch.relu(self.conv(x)))
        y = torch.sigmoid(y) if self.sigmoid else y
        return y.permute(0, 2, 3, 1) if self.channels_last else y


def export_onnx(module: torch.nn.Module, example: torch.Tensor, path: Path, dynamic: dict[int, str]) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (example,), str(path), dynamo=False, opset_version=17,
                          input_names=["raw"], output_names=["prediction"],
                          dynamic_axes={"raw": dynamic, "prediction": dynamic})
    return path


def export_torchscript(module: torch.nn.Module, example: torch.Tensor, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.trace(module.eval(), example).save(str(path))
    return path


def npy(folder: Path, name: str, array: np.ndarray) -> v.FileDescr:
    np.save(folder / name, array.astype(np.float32))
    return v.FileDescr(source=folder / name)


def space_axes(kind: str, ids: Iterator[str] | tuple[str, ...] = ("y", "x"), **size: Any) -> list[Any]:
    """Space axes of inputs (``kind='in'``, a parameterized size) or outputs (sized from the input)."""
    if kind == "in":
        return [v.SpaceInputAxis(id=v.AxisId(i), size=v.ParameterizedSize(min=size.get("min", 8),
                                                                          step=size.get("step", 4))) for i in ids]
    halo = size.get("halo", 0)
    axis = v.SpaceOutputAxisWithHalo if halo else v.SpaceOutputAxis
    extra = {"halo": halo} if halo else {}
    return [axis(id=v.AxisId(i), size=v.SizeReference(tensor_id=v.TensorId(size.get("ref", "raw")),
                                                       axis_id=v.AxisId(i)), **extra) for i in ids]


def save_package(folder: Path, name: str, inputs: list[Any], outputs: list[Any], weights: v.WeightsDescr) -> Path:
    """A package of another tool's making: metadata filled in, no online fields; returns the zip."""
    (folder / "README.md").write_text(f"# {name}\n\nA test model.\n\n# Validation\n\nNone.\n")
    Image.fromarray(np.zeros((32, 64, 3), np.uint8)).save(folder / "cover.png")
    description = v.ModelDescr(
        name=name, description="A model written by another tool, for unetkit's tests.",
        authors=[v.Author(name="Another Tool")], license=v.LicenseId("MIT"),
        cite=[v.CiteEntry(text="A paper", doi=v.Doi("10.1000/182"))],
        documentation=v.FileDescr(source=folder / "README.md"), covers=[v.FileDescr(source=folder / "cover.png")],
        inputs=inputs, outputs=outputs, weights=weights)
    return save_bioimageio_package(description, output_path=folder / f"{name.replace(' ', '_')}.zip")
