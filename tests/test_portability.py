"""What differs on Windows and macOS, simulated on Linux: each test imitates one of their behaviours."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from unetkit.data.io import atomic_write
from unetkit.errors import InputError
from unetkit.predict import check_unique_stems
from unetkit.precision import to_device


def test_atomic_write_syncs_through_a_handle_windows_can_flush(tmp_path, monkeypatch):
    """Windows' os.fsync (FlushFileBuffers) fails with EBADF on a handle opened read-only, where Linux syncs it:
    every output unetkit writes went through such a handle, so on Windows none could be written."""
    fcntl = pytest.importorskip("fcntl")
    real_fsync = os.fsync

    def windows_fsync(descriptor: int) -> None:
        if fcntl.fcntl(descriptor, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY:
            raise OSError(errno.EBADF, "Bad file descriptor")
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", windows_fsync)
    atomic_write(tmp_path / "a.txt", lambda target: target.write_bytes(b"done"))
    assert (tmp_path / "a.txt").read_bytes() == b"done"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def _run_where_text_files_are_not_utf8(code: str, folder: Path) -> None:
    """Run ``code`` with a locale whose default encoding is not UTF-8, as Windows' cp1252 is (here ASCII, which
    fails where cp1252 would fail on names beyond Western European letters, and would write other bytes anyway)."""
    source = str(Path(__file__).parents[1] / "src")
    environment = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0",
                   "PYTHONPATH": os.pathsep.join([source, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code, str(folder)], env=environment, capture_output=True, text=True,
                          encoding="utf-8", timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_evaluation_table_is_utf8_whatever_the_locale(tmp_path):
    _run_where_text_files_are_not_utf8(
        "import sys; from pathlib import Path; from unetkit.evaluation import EvaluationReport\n"
        "EvaluationReport.rows = lambda self: [{'image': 'Zelle_\\u00fc_\\u7d30\\u80de.tif', 'dice': '0.5'}]\n"
        "EvaluationReport(names=[], accumulator=None).write_csv(Path(sys.argv[1]) / 'evaluation.csv')\n", tmp_path)
    assert (tmp_path / "evaluation.csv").read_text(encoding="utf-8").splitlines()[1] == "Zelle_ü_細胞.tif,0.5"


def test_the_bioimageio_readme_is_utf8_whatever_the_locale(tmp_path):
    _run_where_text_files_are_not_utf8(
        "import sys; from pathlib import Path; from types import SimpleNamespace as N; import numpy as np\n"
        "import unetkit.bioimageio_export as export\n"
        "export.export_torchscript = lambda *args, **kwargs: None\n"
        "export.onnx_bytes = lambda *args: b''\n"
        "export._cover = lambda *args: np.zeros((4, 8, 3), np.uint8)\n"
        "plane = np.zeros((1, 4, 4), np.float32)\n"
        "export._write_files(Path(sys.argv[1]), N(model=N(size_rule=N(halo=0)), data_options=None, task=None),\n"
        "                    N(raw=plane, output=plane), '# Ma\\u0161ka \\u7d30\\u80de')\n", tmp_path)
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == "# Maška 細胞"


@pytest.mark.parametrize("device, waits", [("mps", True), ("cuda", False), ("cpu", True)])
def test_batches_go_to_an_mps_device_by_a_blocking_copy(monkeypatch, device, waits):
    """A non-blocking copy to MPS from pageable memory can silently give wrong values (pytorch issue 139550):
    training's and prediction's batches went that way."""
    copies = []
    monkeypatch.setattr(torch.Tensor, "to", lambda self, *args, **kwargs: copies.append(kwargs) or self)
    to_device(torch.zeros(2), torch.device(device))
    assert copies == [{"non_blocking": not waits}]


def test_inputs_whose_outputs_differ_in_case_only_are_refused():
    """On macOS' and Windows' file systems A_labels.tif and a_labels.tif are one file: the second image's
    outputs replaced the first's."""
    with pytest.raises(InputError, match=r"several inputs would write outputs named \['A', 'a'\] \(names that differ "
                                         r"in case only are one file on macOS and Windows\)"):
        check_unique_stems([Path("day1/A.tif"), Path("day2/a.tif")])
    check_unique_stems([Path("day1/A.tif"), Path("day2/B.tif")])
    with pytest.raises(InputError, match="differ in case only"):  # a stack's plane and a file: both write A_001_*
        check_unique_stems(["a_000", "a_001", "A_001"])


def test_names_that_a_case_insensitive_file_system_holds_apart_are_not_refused():
    # str.casefold folds ß into ss (and ligatures into letters): Straße.tif and STRASSE.tif were refused as one
    # name "differing in case only", where Windows keeps both
    check_unique_stems([Path("Straße.tif"), Path("STRASSE.tif"), Path("\ufb01le.tif"), Path("FILE.tif")])


def test_a_name_the_output_encoding_cannot_hold_is_escaped_not_an_error(tmp_path):
    # Windows writes redirected output in cp1252: a Chinese folder name ended the command with an encoding error
    import os
    import subprocess
    import sys

    from helpers import write_dataset

    data = write_dataset(tmp_path / "细胞", count=2)
    environment = {**os.environ, "PYTHONIOENCODING": "ascii"}  # stdout that cannot hold the name
    done = subprocess.run([sys.executable, "-m", "unetkit", "inspect", str(data)], capture_output=True, text=True,
                          encoding="ascii", errors="strict", env=environment)
    assert done.returncode == 0, done.stderr
    assert "\\u7ec6\\u80de" in done.stdout and "ready to train" in done.stdout


@pytest.mark.parametrize("avx512_bf16, amx, expected", [(True, False, True), (False, True, True), (False, False, False)])
def test_native_bf16_is_found_without_proc_cpuinfo(monkeypatch, avx512_bf16, amx, expected):
    # Windows and macOS have no /proc/cpuinfo: --precision auto trained a Zen 4 or an AMX Xeon there in fp32
    from unetkit import precision

    real_read = Path.read_text

    def no_proc(path, *args, **kwargs):
        if str(path) == "/proc/cpuinfo":
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", no_proc)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    precision.cpu_has_native_bf16.cache_clear()
    try:
        assert precision.cpu_has_native_bf16() is expected
        assert (precision.resolve_precision("auto", torch.device("cpu")) == torch.bfloat16) is expected
    finally:
        precision.cpu_has_native_bf16.cache_clear()
