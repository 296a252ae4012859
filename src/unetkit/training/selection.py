"""Which model ``best.pt`` keeps: the latest whose validation score is within a margin of the best.

Validation on one or a few images is noisy: two models whose scores differ by a few thousandths
cannot be told apart by it, and the later one has trained longer. So at each epoch's end
``best.pt`` is rewritten when the validation score is within ``keep_within`` of the best score so
far (``--keep-within``: :data:`KEEP_WITHIN`, the same value as the stopping rule's margin, for pixels;
0 for objects, :data:`~unetkit.training.config.TASK_DEFAULTS`); 0 keeps the best-scoring epoch (the
first of equal scores), as unetkit did for both before 2026-12-06. A run cut inside an epoch by
``--max-time`` validates the cut model too, which may be kept like any other.

Measured on public sets (BENCHMARKS.md, "Which model best.pt keeps"; ``benchmarks/selection_study.py``):
where one validation frame scored its best after the first epoch, keeping the best epoch held
that first model while later ones were better on the test frames.

>>> keeps(0.948, best_so_far=0.950, margin=0.003), keeps(0.946, best_so_far=0.950, margin=0.003)
(True, False)
>>> keeps(0.95, best_so_far=0.95, margin=0.0), keeps(0.95, best_so_far=0.95, margin=0.003)
(False, True)
>>> keeps(0.5, best_so_far=None, margin=0.0)
True
"""

from __future__ import annotations

#: best.pt keeps the latest model within this of the best validation score so far
KEEP_WITHIN = 0.003


def keeps(score: float, best_so_far: float | None, margin: float) -> bool:
    """True when a model scoring ``score`` replaces the one ``best.pt`` holds: the first scored, one
    within ``margin`` of the best score so far, or (``margin`` 0) a better one than the best so far."""
    if best_so_far is None:
        return True
    return score > best_so_far if margin == 0 else score >= best_so_far - margin
