"""The command line: parse, call the library, turn user errors into messages (exit code 2).

No logic lives here that a Python user would have to copy: each command is one call into
the library. ``--debug`` shows the traceback of a user error too. The module itself imports
no torch (the parser's options do, when it is built), so that :func:`main` installs its stop
handlers within a few hundredths of a second of the start.
"""

from __future__ import annotations

import argparse
import collections
import functools
import os
import signal
import sys
from pathlib import Path
from typing import Callable, Sequence

from .cores import threads_within_cores, usable_cores
from .errors import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, EXIT_USER_ERROR, ConfigError, UnetkitError
from .inference import BACKENDS
from .options import finite_float, positive_int
from .signals import ReceivedStops, not_ignored, raise_on_stop_signals


def _add_train(subparsers: argparse._SubParsersAction) -> None:
    from .options import add_arguments
    from .training.config import TrainConfig

    p = subparsers.add_parser("train", help="train a U-Net on images and masks (default: the embedded sample)")
    add_arguments(p, TrainConfig)
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last.pt")
    p.add_argument("--auto-resume", action="store_true",
                   help="resume --out if it holds a run, else start it (for torchrun --max-restarts)")
    p.add_argument("--nproc", type=int, help="shortcut: run this command under torchrun with N processes")
    p.add_argument("--instance-masks", action="store_true",
                   help="masks are instance labels: use objects as foreground (= --mask-mode instances)")
    p.add_argument("--save-augmentations", metavar="PNG", help="write a grid of augmented patches and exit (no run: --out is not needed)")
    p.set_defaults(handler=_run_train)


def parse_shard(text: str) -> tuple[int, int]:
    """``I/N`` -> (I, N): shard I (0-based) of N."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a shard: {text!r} (example: 3/10, the 4th of 10)") from None
    if not (count >= 1 and 0 <= index < count):
        raise argparse.ArgumentTypeError(f"shard {text} does not exist: give I/N with 0 <= I < N")
    return index, count


def _tile_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tile-size", type=int, default=512)
    p.add_argument("--overlap", type=finite_float, default=0.25, help="fraction of the tile (<1) or pixels")
    p.add_argument("--tiles-per-batch", type=int, help="default: 1 on the CPU, 4 on a GPU")
    p.add_argument("--border", type=int, default=0,
                   help="mirrored context at the image border (same padding; 0 to below the tile size)")
    p.add_argument("--blend", choices=["gaussian", "uniform"], default="gaussian")
    p.add_argument("--tta", action="store_true", help="average the 8 flips/rotations (8x slower)")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto")
    p.add_argument("--device", default="auto")


def _object_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--min-object-size", type=positive_int, metavar="PIXELS",
                   help="instance models: drop objects smaller than this "
                   "(default: the model's own, chosen on its validation images in training)")


def _tile_options(args: argparse.Namespace):  # -> TileOptions
    from .tiling import TileOptions

    return TileOptions(args.tile_size, args.overlap, args.tiles_per_batch, args.blend, args.tta, args.border)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unetkit", description="U-Net segmentation of biomedical images")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_train(subparsers)

    p = subparsers.add_parser("predict", help="predict label masks and overlays for images of any size")
    p.add_argument("checkpoint", help="checkpoint (.pt), ONNX export (.onnx) or bioimage.io package (.zip)")
    p.add_argument("inputs", nargs="+", help="image files, folders, or sample:heldout")
    p.add_argument("--out", required=True)
    p.add_argument("--probabilities", action="store_true", help="also write probability maps (TIFF)")
    p.add_argument("--probabilities-on-disk", action="store_true",
                   help="predict region by region with the outputs on disk, and write the probabilities "
                        "(images larger than 8192x8192 are always predicted region by region)")
    p.add_argument("--no-overlay", dest="overlay", action="store_false")
    p.add_argument("--format", "--label-format", dest="label_format", choices=["png", "tif", "ome-zarr"],
                   default="png", help="label images (and probabilities): PNG (TIFF past 8192x8192, with "
                   "--probabilities-on-disk, and for an object model's labels), TIFF, or OME-Zarr with a multiscale pyramid")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--skip-existing", action="store_true",
                   help="skip images whose outputs all exist, and write only the missing ones of the others: continue a "
                        "stopped batch, or add an output (--probabilities) without replacing any file")
    p.add_argument("--shard", type=parse_shard, metavar="I/N",
                   help="predict files I, I+N, I+2N, ... only (a SLURM array task; under torchrun: each rank's)")
    p.add_argument("--backend", choices=BACKENDS, default="torch")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar over the images")
    _object_arguments(p)
    _tile_arguments(p)
    p.set_defaults(handler=_run_predict)

    p = subparsers.add_parser("evaluate", help="Dice and IoU of a checkpoint on labelled data")
    p.add_argument("checkpoint")
    p.add_argument("data", help="folder with images/ and masks/, CSV, or sample:heldout")
    p.add_argument("--csv", help="write per-image scores here (default: next to the checkpoint)")
    p.add_argument("--report", metavar="HTML", help="also write a report to open in a browser: settings, curves, "
                   "sortable scores, each image with its errors coloured (one self-contained file)")
    p.add_argument("--report-images", type=int, default=50, metavar="N",
                   help="pictures of the N images of lowest Dice in the report (about 0.3 MB each)")
    p.add_argument("--ignore-border-objects", action="store_true",
                   help="instance models: leave objects that touch the image border out of both the truth and the "
                   "prediction (for labels that omit the objects the border cuts, as the embedded sample's do)")
    p.add_argument("--instance-masks", action="store_true",
                   help="one-class pixel models: the masks are object labels (0 background, objects 1..N), scored "
                   "as foreground (as train --instance-masks reads them)")
    p.add_argument("--ignore-index", type=int, metavar="V",
                   help="pixel models: mask value whose pixels no score counts (unlabelled regions), instead of the "
                   "one the model was trained with")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--backend", choices=BACKENDS, default="torch")
    _object_arguments(p)
    _tile_arguments(p)
    p.set_defaults(handler=_run_evaluate)

    from .training.config import DEFAULT_VAL_FRACTION

    p = subparsers.add_parser("inspect", help="check a dataset before training")
    p.add_argument("data", nargs="?", default="sample:train")
    p.add_argument("--classes", dest="num_classes", type=int, default=1)
    p.add_argument("--instance-masks", action="store_true")
    p.add_argument("--ignore-index", type=int)
    p.add_argument("--task", choices=["semantic", "instances"], default="semantic",
                   help="instances: check the masks as label images, one id per object, as train --task instances "
                        "does (default: %(default)s)")
    p.add_argument("--val-fraction", type=finite_float, default=DEFAULT_VAL_FRACTION,
                   help="preview the validation split of unetkit train with this share (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="... and this seed (default: %(default)s)")
    p.add_argument("--val-split", choices=["files", "planes"], default="files",
                   help="... holding out whole files or planes (default: %(default)s)")
    p.set_defaults(handler=_run_inspect)

    p = subparsers.add_parser(
        "export", help="export a checkpoint to ONNX, TorchScript or a bioimage.io package",
        description="An .onnx or TorchScript .pt file is the network alone: it takes image sides that are multiples "
                    "of 2^(depth - 1) (16 for the reference network); of another size it drops rows and columns on the way "
                    "and returns a smaller map that is not a proper prediction of any crop; unetkit predict "
                    "pads them by mirroring and crops back, other tools must do the same, and normalise as the file's "
                    "metadata says. A bioimage.io package (.zip) declares the sizes it takes and carries its "
                    "normalisation.")
    p.add_argument("checkpoint")
    p.add_argument("--format", choices=["onnx", "torchscript", "bioimageio"],
                   help="default: the one --out's name says (.onnx, .zip, .pt); bioimageio: a model package (.zip) "
                        "for Fiji, ilastik, napari (pip install 'unetkit[bioimageio]')")
    p.add_argument("--out", required=True, help="MODEL.onnx, MODEL.zip (bioimage.io) or MODEL.pt (TorchScript)")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--author", dest="authors", action="append", metavar="NAME",
                   help="bioimageio: an author of the model (repeat for several; default: 'unetkit user')")
    p.add_argument("--license", help="bioimageio: the model's SPDX licence (default: CC-BY-4.0)")
    p.add_argument("--name", help="bioimageio: the model's name (default: 'unetkit U-Net RUN_FOLDER')")
    p.add_argument("--test-image", metavar="IMAGE",
                   help="bioimageio: an image of the model's kind (its channels) to cut the test input and the cover "
                        "from (default: the embedded HeLa sample, grey; it goes into the package)")
    p.set_defaults(handler=_run_export)

    p = subparsers.add_parser("import-keras", help="import reference Keras U-Net weights (.h5/.keras)")
    p.add_argument("model", help="MODEL.h5 or MODEL.keras")
    p.add_argument("--out", required=True, help="checkpoint to write")
    p.add_argument("--normalization", choices=["percentile", "minmax", "scale", "none"], default="percentile",
                   help="how the Keras model's training images were scaled, which predict then repeats: "
                        "percentile (1st and 99.8th to 0 and 1, the default), minmax, scale (divided by "
                        "--scale-divisor) or none (as read)")
    p.add_argument("--scale-divisor", type=float, default=255.0,
                   help="what --normalization scale divides by (default 255: 8-bit images to 0..1)")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(handler=_run_import_keras)
    return parser


def _train_config(args: argparse.Namespace, needs_out: bool = True):  # -> TrainConfig
    """The run's options from the command line; ``needs_out`` False: a command that writes no run
    (``--save-augmentations``), for which ``--out`` may be left out."""
    from .options import values_from_arguments
    from .training.config import TrainConfig

    values = values_from_arguments(args, TrainConfig)
    if not values.get("out"):
        if needs_out:
            raise UnetkitError("train needs --out RUN_DIR (or --resume RUN_DIR)")
        values["out"] = "unused"  # nothing is written there
    return TrainConfig(**values)


def _within_usable_cores(handler: Callable[[argparse.Namespace, Sequence[str], ReceivedStops], int]):
    """``handler`` run with torch's threads lowered to the cores the process may use (a
    container's CPU quota; :func:`unetkit.cores.threads_within_cores`), and restored after it;
    ``train --nproc`` gives each torchrun worker its share through ``OMP_NUM_THREADS`` instead."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace, argv: Sequence[str], stops: ReceivedStops) -> int:
        if getattr(args, "nproc", None) is not None:
            return handler(args, argv, stops)
        with threads_within_cores(os.environ):
            return handler(args, argv, stops)

    return run


def _apply_instance_masks(args: argparse.Namespace) -> None:
    """``--instance-masks`` is ``--mask-mode instances``; beside another ``--mask-mode`` (either order) it is refused,
    which would otherwise win or lose without a word."""
    if not args.instance_masks:
        return
    if args.mask_mode not in (None, "instances"):
        raise ConfigError(f"--instance-masks contradicts --mask-mode {args.mask_mode}", fix="give one of them")
    args.mask_mode = "instances"


@_within_usable_cores
def _run_train(args: argparse.Namespace, argv: Sequence[str], stops: ReceivedStops) -> int:
    if args.nproc is not None:
        stops.raise_if_any()  # one that parsing swallowed (it imports torch): torchrun is not started
        return _relaunch_under_torchrun(args.nproc, argv)
    from .options import values_from_arguments
    from .training.config import TrainConfig
    from .training.loop import StopReason, train
    from .training.state import CONFIG, LAST, resume_config

    stops.raise_if_any()
    _apply_instance_masks(args)
    if args.save_augmentations:
        from .training.preview import save_augmentation_preview

        save_augmentation_preview(_train_config(args, needs_out=False), Path(args.save_augmentations))
        print(f"wrote {args.save_augmentations}")
        return 0
    resume_dir = args.resume
    if args.auto_resume and args.out and any((Path(args.out) / name).is_file() for name in (LAST, CONFIG)):
        resume_dir = args.out
    # stops.event: a stop that raised while the command started, and that code on the way swallowed
    # (an ImportError made of it in an import), still ends the run, which saves last.pt first
    if resume_dir:
        config = resume_config(resume_dir, **values_from_arguments(args, TrainConfig))
        result = train(config, resume=True, stop=stops.event)
    else:
        result = train(_train_config(args), stop=stops.event)
    if result.stopped is StopReason.SIGNAL:
        return EXIT_INTERRUPTED
    best = "n/a" if result.best_score is None else f"{result.best_score:.4f}"
    if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 reports
        return 0
    kept = f" ({label})" if (label := result.kept_label()) else ""
    print(f"done ({result.stopped.value}: {result.why}): {result.length}, best validation score {best}{kept}; "
          f"checkpoints in {result.run_dir}")
    return 0


def _relaunch_under_torchrun(nproc: int, argv: Sequence[str]) -> int:
    """``unetkit train --nproc N ...`` is ``torchrun --nproc_per_node N -m unetkit train ...``, through
    :mod:`unetkit.torchrun` so that a user error or a stop ends with exit 2 or 130, not a traceback."""
    if nproc < 1:
        raise UnetkitError(f"--nproc must be at least 1, got {nproc}")
    rest = list(argv)
    for index, arg in enumerate(rest):  # --nproc N, --nproc=N, or an abbreviation argparse took (--npro 2)
        name = arg.split("=", 1)[0]
        if len(name) > 3 and "--nproc".startswith(name):
            del rest[index : index + (1 if "=" in arg else 2)]
            break
    command = [sys.executable, "-m", "unetkit.torchrun", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "unetkit", *rest]
    return _run_forwarding_signals(command, worker_environment(nproc, dict(os.environ), usable_cores()))


def worker_environment(nproc: int, environment: dict[str, str], cores: int) -> dict[str, str]:
    """``environment`` with ``OMP_NUM_THREADS`` set to each worker's share of the cores, unless
    it is set already (torchrun's default, 1 thread a worker, leaves CPU training mostly idle).

    >>> worker_environment(2, {}, cores=16)["OMP_NUM_THREADS"], worker_environment(4, {}, cores=2)["OMP_NUM_THREADS"]
    ('8', '1')
    >>> worker_environment(2, {"OMP_NUM_THREADS": "3"}, cores=16)["OMP_NUM_THREADS"]
    '3'
    """
    return {"OMP_NUM_THREADS": str(max(1, cores // nproc)), **environment}


def _run_forwarding_signals(command: list[str], environment: dict[str, str] | None = None) -> int:
    """Run ``command`` (torchrun) in a session of its own and pass the first SIGINT, SIGTERM or
    closed terminal's SIGHUP on to it as SIGTERM, so that a stop reaches it once, from here,
    whoever it was sent to (later ones are acknowledged, not passed on); it passes it to the
    workers, which save ``last.pt``. Its exit code, or
    :data:`EXIT_INTERRUPTED` when it failed after a stop was passed on (torchrun re-raises the
    signal as an exception).

    SIGTERM rather than SIGINT: a worker still in Python's start-up, before unetkit's handlers,
    ends quietly on SIGTERM, where SIGINT printed a KeyboardInterrupt traceback from its imports;
    once the handlers are in place the two stop training alike."""
    import subprocess

    stops = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    received: list[signal.Signals] = []
    started: list[subprocess.Popen] = []
    passed_on: list[bool] = []

    def pass_on_once() -> None:
        # once: each SIGTERM raises again inside torchrun's shutdown, and a third escaped it, which
        # then exited while its workers were still saving
        if started and received and not passed_on:
            passed_on.append(True)
            started[0].send_signal(signal.SIGTERM)

    def forward(signum: int, frame: object) -> None:
        received.append(signal.Signals(signum))
        if len(received) > 1:
            print(f"unetkit train: {received[-1].name} again: already stopping; waiting for the workers to save "
                  "last.pt (torchrun ends them after 30 s)", file=sys.stderr)
        pass_on_once()

    previous = {sig: signal.signal(sig, forward) for sig in not_ignored(stops)}  # before the start: no stop is lost
    try:
        started.append(subprocess.Popen(command, start_new_session=True, env=environment))
        pass_on_once()  # a stop that arrived while it started
        code = started[0].wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received and code != 0:  # said here too: a stop before any worker ran left no other word
        print(f"unetkit train: interrupted by signal {received[0].name} (passed on to torchrun as SIGTERM)",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    return code


@_within_usable_cores
def _run_predict(args: argparse.Namespace, argv: Sequence[str], stops: ReceivedStops) -> int:
    from .predict import PredictOptions, predict_files

    stops.raise_if_any()
    options = PredictOptions(
        tile=_tile_options(args), overlay=args.overlay, probabilities=args.probabilities,
        probabilities_on_disk=args.probabilities_on_disk,
        label_format=args.label_format, overwrite=args.overwrite, skip_existing=args.skip_existing,
        shard=args.shard,
        precision=args.precision,
        device=args.device, backend=args.backend, min_object_size=args.min_object_size, progress=args.progress,
    )
    records = predict_files(args.checkpoint, args.inputs, args.out, options)
    kinds = collections.Counter(kind for record in records for kind in record.to_write)
    written = ", ".join(f"{count} {kind}" for kind, count in kinds.items()) or "nothing new"
    print(f"predicted {len(records)} image plane(s) into {args.out}: wrote {written}")
    return 0


@_within_usable_cores
def _run_evaluate(args: argparse.Namespace, argv: Sequence[str], stops: ReceivedStops) -> int:
    from .data.io import ensure_can_write, same_path
    from .evaluation import evaluate_checkpoint, evaluated_files

    stops.raise_if_any()
    csv_path = Path(args.csv) if args.csv else Path(args.checkpoint).with_name(
        f"evaluation_{Path(str(args.data).replace(':', '_')).name}.csv")
    outputs = [csv_path] + ([Path(args.report)] if args.report else [])
    if len(outputs) == 2 and same_path(*outputs):
        raise ConfigError("--csv and --report name the same file", path=csv_path, fix="give each its own file")
    inputs = [Path(args.checkpoint), *evaluated_files(args.data)]
    for path in outputs:  # before the work, so that a refusal loses none
        ensure_can_write(path, args.overwrite, fix="pass --overwrite, or choose another --csv / --report", inputs=inputs)
    if args.report_images < 0:
        raise ConfigError(f"--report-images must be 0 or more, got {args.report_images}")
    report = evaluate_checkpoint(args.checkpoint, args.data, _tile_options(args), args.precision, args.device,
                                 args.backend, pictures=args.report_images if args.report else 0,
                                 ignore_border_objects=args.ignore_border_objects,
                                 min_object_size=args.min_object_size, instance_masks=args.instance_masks,
                                 ignore_index=args.ignore_index)
    report.write_csv(csv_path, overwrite=args.overwrite)  # written before anything is printed: `| head` loses none
    if args.report:
        from .report import write_report

        write_report(report, args.report, overwrite=args.overwrite)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    try:
        print(report.table())
        print(f"per-image scores: {csv_path}")
        if args.report:
            print(f"report: {args.report}")
        sys.stdout.flush()
    except BrokenPipeError:  # `unetkit evaluate ... | head`: the reader has all it wanted, the files are written
        _stop_writing_stdout()
        return EXIT_BROKEN_PIPE
    return 0


def _stdout_closed() -> bool:
    """Whether standard output's reader has gone (a broken pipe there, not one of a worker or a peer): asked of
    its file descriptor, since once a write has failed Python's flush succeeds."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no descriptor behind it (a notebook), or no poll here
        return False


def _stop_writing_stdout() -> None:
    """Point standard output at nothing, so that Python's flush at exit raises no second broken pipe."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no file descriptor behind it (a notebook, a StringIO)
        pass


def _run_inspect(args: argparse.Namespace, argv: Sequence[str], stops: ReceivedStops) -> int:
    from .data.dataset import DataOptions
    from .data.masks import check_ignore_index
    from .data.sample import resolve_data_source, resolve_mask_mode
    from .inspect_data import SplitPreview, inspect_dataset
    from .training.config import TrainConfig

    stops.raise_if_any()
    source, _ = resolve_data_source(args.data)
    TrainConfig(out="unused", data=args.data, task=args.task, num_classes=args.num_classes,  # train's own checks of
                mask_mode="instances" if args.instance_masks else None, ignore_index=args.ignore_index,  # these
                val_fraction=args.val_fraction, seed=args.seed, val_split=args.val_split)
    mode = "labels" if args.task == "instances" else resolve_mask_mode(args.data, "instances" if args.instance_masks
                                                                       else None)
    check_ignore_index(args.ignore_index, args.num_classes, mode)  # what train refuses
    report = inspect_dataset(source, DataOptions(args.num_classes, mode, args.ignore_index),
                             SplitPreview(args.val_fraction, args.seed, args.val_split))
    print(report.text())
    return 0 if not report.errors else EXIT_USER_ERROR


def _run_export(args: argparse.Namespace, argv: Sequence[str], stops: ReceivedStops) -> int:
    from .export import export_checkpoint

    stops.raise_if_any()
    export_checkpoint(args.checkpoint, args.out, args.format, overwrite=args.overwrite, package=_package_options(args),
                      report=lambda text: print(f"note: {text}", file=sys.stderr))
    print(f"wrote {args.out}")
    return 0


def _package_options(args: argparse.Namespace):  # -> PackageOptions | None
    given = {"authors": tuple(args.authors) if args.authors else None, "license": args.license, "name": args.name,
             "test_image": args.test_image}
    given = {key: value for key, value in given.items() if value is not None}
    if not given:
        return None
    from .bioimageio_export import PackageOptions

    return PackageOptions(**given)


def _run_import_keras(args: argparse.Namespace, argv: Sequence[str], stops: ReceivedStops) -> int:
    from .keras_import import import_keras_checkpoint

    stops.raise_if_any()
    from .data.normalize import Normalization

    if args.normalization != "scale" and args.scale_divisor != 255.0:
        raise ConfigError(f"--scale-divisor {args.scale_divisor:g} has no effect with --normalization "
                          f"{args.normalization}", fix="add --normalization scale, or leave --scale-divisor out")
    normalization = Normalization("scale", high=args.scale_divisor) if args.normalization == "scale" else \
        Normalization(args.normalization)
    model = import_keras_checkpoint(args.model, args.out, overwrite=args.overwrite, normalization=normalization)
    print(f"imported {args.model} ({model.config.depth} levels, {model.config.base_width} base filters) into {args.out}; "
          "its inputs are normalised: " + {"percentile": "each image's 1st and 99.8th percentiles to 0 and 1",
                                           "minmax": "each image's minimum and maximum to 0 and 1",
                                           "scale": f"divided by {args.scale_divisor:g}",
                                           "none": "not at all"}[args.normalization]
          + " (--normalization: say how the Keras model's training images were scaled)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        # until a command installs its own handlers: a stop while starting ends as later ones do
        with raise_on_stop_signals() as stops:
            args = build_parser().parse_args(argv)
            return _run_command(args, argv, stops)
    except KeyboardInterrupt as interruption:  # while parsing, or a SIGINT as the block ends (default handler back)
        return _interrupted("unetkit", interruption)


def entry_point() -> int:
    """The ``unetkit`` program: :func:`main`, then stop signals ignored while the interpreter shuts down (a second
    Ctrl-C there printed a traceback from a library's exit handler; the command's work is done by then).
    Output that its stream's encoding cannot hold is escaped, not an error: a Chinese file name printed to a file
    on Windows (cp1252) failed the command after its work was done."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    code = main()
    for sig in not_ignored((signal.SIGINT, signal.SIGTERM)):
        signal.signal(sig, signal.SIG_IGN)
    return code


def _run_command(args: argparse.Namespace, argv: list[str], stops: ReceivedStops) -> int:
    """The command's exit code; user errors and the machine's errors as messages, not tracebacks.
    ``stops``: the stop signals that raised so far, which make any error that follows them an
    interruption, whatever became of it (a stop in the middle of an import can surface as an
    ImportError, and a reader turns that into "cannot be read"). Stops that training only
    flags are not among them: a real failure after one (a full disk) is reported as itself."""
    try:
        return args.handler(args, argv, stops)
    except KeyboardInterrupt as interruption:  # SIGINT, or SIGTERM outside training's own handling
        return _interrupted(f"unetkit {args.command}", interruption)
    except Exception as error:
        if args.debug:
            raise
        if stops:
            return _interrupted(f"unetkit {args.command}", KeyboardInterrupt(f"interrupted by signal {stops[0].name}"))
        return _reported(args.command, error)


def _reported(command: str, error: Exception) -> int:
    """A user error or the machine's error as a message (exit 2); anything else, a bug, raised."""
    if isinstance(error, UnetkitError):
        print(f"unetkit {command}: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    if isinstance(error, BrokenPipeError) and _stdout_closed():  # `unetkit inspect ... | head`: the reader is done
        _stop_writing_stdout()
        return EXIT_BROKEN_PIPE
    if isinstance(error, OSError):  # the machine's, not a bug: a full disk, a folder that cannot be made or written
        where = f"{error.filename}: " if error.filename else ""
        print(f"unetkit {command}: error: {where}{error.strerror or error}\n"
              "  fix: check that path and the free space on its disk", file=sys.stderr)
        return EXIT_USER_ERROR
    raise error


def _interrupted(prefix: str, interruption: KeyboardInterrupt) -> int:
    print(f"{prefix}: {str(interruption) or 'interrupted'}", file=sys.stderr)
    return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
