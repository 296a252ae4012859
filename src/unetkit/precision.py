"""Numeric precision and memory layout: which autocast dtype a device runs fastest and safely.

``"auto"`` picks bf16 autocast on CPUs with native bf16 instructions (avx512_bf16 or AMX)
and on CUDA devices that support it, fp16 on older CUDA devices, and fp32 elsewhere.

>>> import torch
>>> resolve_precision("fp32", torch.device("cpu")) is None
True
>>> with autocast_context(torch.device("cpu"), None):
...     pass
"""

from __future__ import annotations

import contextlib
import os
from functools import lru_cache
from pathlib import Path
from typing import ContextManager, Literal, get_args

import torch

from .errors import ConfigError

Precision = Literal["auto", "fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = get_args(Precision)


#: torch's own CPU feature checks (CPUID, on any operating system), where this torch has them
TORCH_BF16_CHECKS = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True if the CPU has native bf16 instructions (avx512_bf16 or AMX): asked of torch, which reads the CPU
    itself on Linux, Windows and macOS alike, else read from /proc/cpuinfo (Linux; an older torch without the
    checks). Reading /proc alone left Windows and macOS machines with such CPUs in fp32, 1.7 to 3 times slower."""
    checks = [getattr(torch.cpu, name, None) for name in TORCH_BF16_CHECKS]
    if all(callable(check) for check in checks):
        try:
            return any(check() for check in checks)
        except RuntimeError:  # a torch built without cpuinfo: the file below
            pass
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (None: plain fp32)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}", fix=f"choose one of {PRECISIONS}")
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        if device.type == "cpu":
            raise ConfigError("fp16 autocast is for CUDA devices", fix="use --precision bf16 or fp32 on CPU")
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return None


def autocast_context(device: torch.device, dtype: torch.dtype | None) -> ContextManager:
    """``torch.autocast`` for ``dtype`` on ``device``, or a no-op for fp32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``tensor`` on ``device``, copied without waiting on CUDA only: on MPS a non-blocking copy from ordinary
    (pageable) memory can read it after it is freed, and gives wrong values silently (pytorch issue 139550)."""
    return tensor.to(device, non_blocking=device.type == "cuda")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto``: the CUDA device of this process if there is one, else the CPU.

    A device that does not exist here is a :class:`ConfigError` naming what does:

    >>> resolve_device("cpu")
    device(type='cpu')
    >>> resolve_device("toaster")
    Traceback (most recent call last):
    ...
    unetkit.errors.ConfigError: unknown device 'toaster'
      fix: use auto, cpu, cuda or cuda:N (or mps on Apple silicon)
    """
    if name == "auto":  # under torchrun, each process its own GPU
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"unknown device {name!r}", fix="use auto, cpu, cuda or cuda:N (or mps on Apple silicon)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} asked for, but this PyTorch sees no CUDA GPU "
                              f"(torch {torch.__version__})",
                              fix="use --device cpu (or auto), or install a CUDA build of PyTorch")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r} asked for, but there are {torch.cuda.device_count()} GPU(s)",
                              fix=f"use cuda:0 .. cuda:{torch.cuda.device_count() - 1}")
    elif device.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ConfigError(f"device {name!r} is not available here", fix="use --device cpu (or auto)")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"unsupported device {name!r}", fix="use auto, cpu, cuda or cuda:N")
    return device
