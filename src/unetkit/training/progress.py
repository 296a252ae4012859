"""The training run's progress bar: one bar for the whole run, whose time left heeds ``--max-time``.

tqdm's own estimate is the steps left over the step rate; a run with a time budget ends sooner
(``unetkit train --max-time 3m`` showed 34 minutes left on a bar of 40 epochs). :class:`RunBar`
shows the lesser of that estimate and the training time the budget has left.

>>> seconds_left(steps_left=7400, steps_per_second=3.5, budget_left_s=10.0)
10.0
>>> round(seconds_left(steps_left=35, steps_per_second=3.5, budget_left_s=600.0), 1)
10.0
>>> seconds_left(steps_left=35, steps_per_second=None, budget_left_s=None) is None  # no rate yet
True
"""

from __future__ import annotations

from typing import Any

from tqdm import tqdm

BAR_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{time_left}, {rate_fmt}{postfix}]"


def seconds_left(steps_left: float | None, steps_per_second: float | None,
                 budget_left_s: float | None) -> float | None:
    """The run's training time left: the steps left at the present rate, or the time budget's
    rest where that is shorter; None while neither is known. The budget counts training steps
    only (``--max-time``'s measure), so validation adds to it."""
    estimates = [] if budget_left_s is None else [max(0.0, budget_left_s)]
    if steps_per_second and steps_left is not None:
        estimates.append(max(0.0, steps_left) / steps_per_second)
    return min(estimates) if estimates else None


class RunBar(tqdm):
    """A tqdm bar of training steps whose time left is :func:`seconds_left`; the loop sets
    :attr:`spent_s` (the training seconds counted against ``budget_s``) after each step.

    >>> bar = RunBar(total=100, budget_s=60.0, disable=True)
    >>> bar.spent_s = 45.0
    >>> bar.budget_left_s()
    15.0
    """

    def __init__(self, *args: Any, budget_s: float | None = None, **kwargs: Any) -> None:
        self.budget_s = budget_s
        self.spent_s = 0.0
        kwargs.setdefault("bar_format", BAR_FORMAT)
        super().__init__(*args, **kwargs)

    def budget_left_s(self) -> float | None:
        return None if self.budget_s is None else self.budget_s - self.spent_s

    @property
    def format_dict(self) -> dict[str, Any]:
        return self.with_time_left(super().format_dict)

    def with_time_left(self, values: dict[str, Any]) -> dict[str, Any]:
        """tqdm's ``format_dict`` ``values`` with the field this bar's format adds, ``time_left``."""
        rate, done, elapsed = values.get("rate"), values["n"] - values.get("initial", 0), values.get("elapsed")
        if rate is None and elapsed and done > 0:  # tqdm's own fallback: the mean rate
            rate = done / elapsed
        steps_left = None if values["total"] is None else values["total"] - values["n"]
        left = seconds_left(steps_left, rate, self.budget_left_s())
        return {**values, "time_left": "?" if left is None else self.format_interval(left)}
