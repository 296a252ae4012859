"""The evaluation report: one self-contained HTML page that works offline, from a file:// URL.

The page holds everything inline (CSS, a little plain JavaScript, pictures as data URIs) and
asks for nothing over the network. It shows the run's settings and training curves (when
the checkpoint sits in its run directory), the per-image scores in a table sortable by any
column (worst Dice first), and each image with its errors coloured, as a thumbnail that
opens large (:mod:`unetkit.report.pictures`).

Size bound: the page is about 0.3 MB per image with pictures for 700 x 1100 images (each
picture at most 1024 px on its longer side), plus about 100 bytes per table row; only the
images that :func:`~unetkit.evaluation.evaluate_checkpoint` kept pictures of (``pictures=N``:
the N of lowest Dice) are drawn, so N bounds the size, not the number of images scored.

>>> import tempfile
>>> import numpy as np
>>> from unetkit.evaluation import EvaluationReport
>>> from unetkit.metrics import MetricAccumulator
>>> evaluation = EvaluationReport(["a.png"], MetricAccumulator(2))
>>> _ = evaluation.accumulator.update(np.ones((2, 2), int), np.ones((2, 2), int))
>>> path = Path(tempfile.mkdtemp()) / "report.html"
>>> write_report(evaluation, path)
>>> "a.png" in path.read_text()
True
"""

from __future__ import annotations

import datetime
import json
from html import escape
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..data.io import atomic_write
from ..instances.scores import COUNT_COLUMNS
from ..metrics import Scores, format_score
from .pictures import ImagePictures
from .run_info import RunRecord, read_run

if TYPE_CHECKING:
    from ..evaluation import EvaluationReport


COLUMN_TITLES = {"dice": "Dice", "iou": "IoU", "f1": "F1", "precision": "precision", "recall": "recall",
                 "ap50": "AP@0.5", "ap50_95": "AP@0.5:0.95", "pq": "PQ", "matched_iou": "matched IoU",
                 "seg": "SEG", "n_true": "true objects", "n_pred": "predicted objects"}
COUNT_TITLES = {COLUMN_TITLES[name] for name in COUNT_COLUMNS}


def score_columns(row: dict[str, float], scores: Scores | None = None) -> dict[str, float]:
    """The table's columns for one image, titled: the task's scores (Dice and IoU; object
    scores for an instance model), and each class's Dice and IoU where there are several.

    >>> score_columns({"dice": 0.5, "iou": 0.25})
    {'Dice': 0.5, 'IoU': 0.25}
    >>> list(score_columns({"dice": 0.6, "iou": 0.45}, Scores(dice=(1.0, 0.5, 0.7), iou=(1.0, 0.3, 0.6))))
    ['Dice', 'IoU', 'Dice 1', 'Dice 2', 'IoU 1', 'IoU 2']
    """
    columns = {COLUMN_TITLES.get(name, name): float(value) for name, value in row.items()}
    if scores is not None and len(scores.dice) > 2:
        classes = scores.foreground_classes()  # n/a for a class in neither truth nor prediction, as the table says
        columns.update({f"Dice {c}": dice for c, (dice, _) in classes.items()})
        columns.update({f"IoU {c}": iou for c, (_, iou) in classes.items()})
    return columns


def image_columns(evaluation: EvaluationReport) -> list[dict[str, float]]:
    """Every image's titled columns (per-class ones from a semantic accumulator's scores)."""
    columns = []
    for row, classes in zip(evaluation.accumulator.rows(), evaluation.class_columns()):  # as the CSV's, n/a included
        titled = score_columns(row)
        titled.update({f"{'Dice' if name.startswith('dice') else 'IoU'} {name.split('_')[1]}": value
                       for name, value in classes.items()})
        columns.append(titled)
    return columns


def write_report(evaluation: EvaluationReport, path: str | Path, overwrite: bool = False) -> None:
    """Write the report of ``evaluation`` to ``path`` (atomically; an existing file only with ``overwrite``).

    The run's settings and curves are read from the folder of ``evaluation.checkpoint``.
    """
    run = read_run(evaluation.checkpoint) if evaluation.checkpoint else None
    text = report_html(evaluation, run)
    atomic_write(path, lambda target: target.write_text(text, encoding="utf-8"), overwrite)


def report_html(evaluation: EvaluationReport, run: RunRecord | None = None) -> str:
    """The report page as a string (see the module's docstring)."""
    title = f"unetkit evaluation: {Path(evaluation.checkpoint).name if evaluation.checkpoint else 'model'}"
    order = worst_first(evaluation)
    body = "\n".join([
        _header(title, evaluation),
        _run_section(run),
        _table_section(evaluation, order),
        _gallery_section(evaluation, order),
    ])
    template = resources.files("unetkit.report").joinpath("template.html").read_text(encoding="utf-8")
    return template.replace("{{title}}", escape(title)).replace("{{body}}", body)


def worst_first(evaluation: EvaluationReport) -> list[int]:
    """Image indices by increasing main score (Dice; F1 for an instance model), ties in the order scored,
    images without a score (n/a) last."""
    rows = evaluation.accumulator.rows()

    def key(index: int) -> tuple[bool, float]:
        score = float(rows[index][evaluation.score_name])
        return score != score, score  # NaN last: compared as is, it would leave the order undefined
    return sorted(range(len(rows)), key=key)


def _pooled(evaluation: EvaluationReport) -> dict[str, float] | None:
    """All pixels of all images taken together, where the accumulator pools (semantic models)."""
    pooled = getattr(evaluation.accumulator, "pooled", None)
    if pooled is None or not evaluation.accumulator.rows():
        return None
    scores = pooled()
    if not scores.scores_any_pixel():  # every pixel of every image ignored: the 1.0s would be conventions
        return score_columns({"dice": float("nan"), "iou": float("nan")}, scores)  # (its classes: n/a too)
    return score_columns({"dice": scores.mean_dice, "iou": scores.mean_iou}, scores)


def _header(title: str, evaluation: EvaluationReport) -> str:
    means = evaluation.accumulator.means()
    facts = [("images", str(len(evaluation.names)))]
    facts += [(f"mean {COLUMN_TITLES.get(name, name)}", format_score(means[name]))
              for name in ("dice", "iou", "f1", "ap50") if name in means]
    pooled = _pooled(evaluation)
    if pooled is not None:
        facts.append(("pooled Dice", format_score(pooled["Dice"])))
    created = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    items = "".join(f"<li>{escape(name)} <b>{value}</b></li>" for name, value in facts)
    source = " on ".join(escape(str(part)) for part in (evaluation.checkpoint, evaluation.data) if part)
    return (f"<header><h1>{escape(title)}</h1>"
            f'<div class="subtitle">{source} &middot; written {created}</div>'
            f'<ul class="summary">{items}</ul></header>')


def _run_section(run: RunRecord | None) -> str:
    parts = ["<section id=\"run\"><h2>Training run</h2>"]
    if run is None:
        parts.append('<p class="note">No training log was found: the evaluation names no checkpoint.</p>')
    else:
        parts += [f'<p class="note">{escape(note)}</p>' for note in run.notes]
        if run.settings is not None:
            parts.append(f'<p class="note">Settings from {escape(str(run.folder))}/config.json</p>')
            parts.append(_settings_list(run.settings))
        if run.curves is not None:
            parts.append(f'<img class="curves" src="{run.curves}" alt="training loss and validation scores per epoch">')
    parts.append("</section>")
    return "\n".join(parts)


def _settings_list(settings: dict[str, Any]) -> str:
    def shown(value: Any) -> str:
        return "&mdash;" if value is None else escape(value if isinstance(value, str) else json.dumps(value))

    items = "".join(f"<div><dt>{escape(str(key))}</dt><dd>{shown(value)}</dd></div>" for key, value in settings.items())
    return f'<dl class="settings">{items}</dl>'


def _table_section(evaluation: EvaluationReport, order: list[int]) -> str:
    columns = image_columns(evaluation)
    names = list(columns[0]) if columns else ["Dice", "IoU"]
    sorted_by = COLUMN_TITLES.get(evaluation.score_name, evaluation.score_name)
    head = '<th scope="col" data-type="text" aria-sort="none"><button type="button">image</button></th>' + "".join(
        f'<th scope="col" data-type="number" aria-sort="{"ascending" if name == sorted_by else "none"}">'
        f'<button type="button">{escape(name)}</button></th>' for name in names)
    rows = []
    for index in order:
        name = escape(evaluation.names[index])
        if index in evaluation.pictures:
            name = f'<button type="button" class="open" data-card="image-{index}">{name}</button>'
        cells = "".join(f'<td data-value="{value!r}">{_shown(value, title)}</td>' for title, value in columns[index].items())
        rows.append(f"<tr><td>{name}</td>{cells}</tr>")
    foot = ""
    if columns:
        mean_values = [[c[n] for c in columns if c[n] == c[n]] for n in names]
        means = "".join(f"<td>{_shown(sum(v) / len(v) if v else float('nan'), n)}</td>" for n, v in zip(names, mean_values))
        foot = f"<tfoot><tr><td>mean of {len(columns)} images</td>{means}</tr>"
        pooled = _pooled(evaluation)
        if pooled is not None:
            cells = "".join(f"<td>{format_score(value)}</td>" for value in pooled.values())
            foot += f"<tr><td>pooled (all pixels together)</td>{cells}</tr>"
        foot += "</tfoot>"
    return (f'<section id="table"><h2>Scores per image</h2>'
            f'<p class="note">Worst {escape(sorted_by)} first; click a column to sort by it, again to reverse.</p>'
            f'<table id="scores"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody>{foot}</table>'
            f"</section>")


def _shown(value: float, title: str) -> str:
    """A column's value as the table shows it (counts of objects as integers)."""
    return format_score(value, count=title in COUNT_TITLES)


def _gallery_section(evaluation: EvaluationReport, order: list[int]) -> str:
    shown = [index for index in order if index in evaluation.pictures]
    parts = ['<section id="images"><h2>Images, worst first</h2>']
    if not shown:
        parts.append('<p class="note">No pictures: evaluate with pictures of the worst images '
                     "(<code>--report-images N</code>, or <code>evaluate_checkpoint(..., pictures=N)</code>).</p>")
        return "\n".join(parts + ["</section>"])
    hidden = len(evaluation.names) - len(shown)
    if hidden:
        lowest = COLUMN_TITLES.get(evaluation.score_name, evaluation.score_name)
        parts.append(f'<p class="note">Pictures of the {len(shown)} images of lowest {escape(lowest)}; the table lists all '
                     f"{len(evaluation.names)} (<code>--report-images</code> draws more).</p>")
    legend = _legend([evaluation.pictures[index] for index in shown])
    parts.append(legend)
    parts.append('<div class="gallery">')
    parts += [_card(index, evaluation) for index in shown]
    parts.append("</div>")
    parts.append(_lightbox(legend))
    parts.append("</section>")
    return "\n".join(parts)


def _legend(pictures: list[ImagePictures]) -> str:
    entries = list(dict.fromkeys(entry for picture in pictures for entry in picture.legend))
    items = "".join(f'<li><span class="swatch" style="background:{colour}"></span>{escape(text)}</li>'
                    for colour, text in entries)
    return f'<ul class="legend">{items}</ul>'


def _card(index: int, evaluation: EvaluationReport) -> str:
    pictures = evaluation.pictures[index]
    name = evaluation.names[index]
    scores = image_columns(evaluation)[index]
    score_text = " · ".join(f"{column} {format_score(value)}" for column, value in list(scores.items())[:2])
    caption = f"{name} — {score_text}"
    return (f'<figure class="card" id="image-{index}" data-name="{escape(name)}" data-caption="{escape(caption)}" '
            f'data-errors="{pictures.errors}" data-image="{pictures.image}">'
            f'<button type="button" class="thumb" title="enlarge"><img src="{pictures.thumbnail}" '
            f'alt="{escape(name)}: errors"></button>'
            f"<figcaption>{escape(name)}<br><span>{escape(score_text)}</span></figcaption></figure>")


def _lightbox(legend: str) -> str:
    return ('<dialog id="lightbox" aria-label="the image large">'
            '<div class="bar"><span class="title" id="lightbox-title"></span>'
            '<button type="button" data-kind="errors" aria-pressed="true">errors</button>'
            '<button type="button" data-kind="image" aria-pressed="false">image</button>'
            '<button type="button" data-step="-1" title="previous (left arrow)">&larr;</button>'
            '<button type="button" data-step="1" title="next (right arrow)">&rarr;</button>'
            '<button type="button" data-close title="close (Esc)">close</button></div>'
            f'<div id="lightbox-holder"></div>{legend}</dialog>')
