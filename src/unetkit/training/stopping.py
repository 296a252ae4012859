"""When a run is done: the rule behind ``unetkit train``'s default length.

Without ``--epochs``, a run ends when more training no longer pays:

- with validation images: when the validation score (the pixel Dice, instance models too) has not
  beaten the last real improvement by more than ``min_delta`` for ``patience`` epochs (so a
  slow creep of tiny gains counts as a plateau only while it stays below ``min_delta``;
  ``best.pt`` keeps its own choice, :mod:`~unetkit.training.selection`);
- without (a single training image): when the mean training loss has not fallen by more
  than ``loss_min_drop`` (relative) for ``patience`` epochs;
- at the latest after ``max_epochs`` epochs, or at ``--max-time``.

With ``lr_drops`` > 0, the first plateaus lower the learning rate (by ``lr_factor``) instead
of stopping, and the run stops at the plateau after the last drop: warm-up, constant, then
decay on plateau, for a run whose end is decided on the way.

The patience, when ``--early-stopping`` is not given, is :data:`DEFAULT_PATIENCE`'s for the task
(:class:`~unetkit.training.config.TrainConfig` records it). ``--epochs N`` means exactly N epochs
(``--early-stopping P`` adds the patience rule to it).
The rule's state (best so far, epochs without improvement) is part of ``last.pt``, so a
resumed run takes the same decision as an uninterrupted one.

The constants were chosen by measurement on public sets (BENCHMARKS.md, "Training length";
``benchmarks/length_study.py``).

>>> rule = StoppingRule(patience=2, min_delta=0.01)
>>> state = StopState()
>>> [rule.update(state, score=s, loss=None) for s in (0.80, 0.85, 0.855, 0.859)]
[False, False, False, True]
>>> rule.reason(state)
'no validation improvement above 0.01 for 2 epochs'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

#: the measured defaults (BENCHMARKS.md, "Training length"). ``PATIENCE`` is :class:`StoppingRule`'s
#: own default, the patience the first measurements chose (``unetkit train``'s default until
#: 2026-12-06) and the studies in benchmarks/ replay; ``unetkit train`` uses :data:`DEFAULT_PATIENCE`
PATIENCE = 3
#: the patience when ``--early-stopping`` is not given, by task. Pixels: 5 (BENCHMARKS.md, "The
#: bacteria's own 40 epochs ... and the stopping rule's patience", "Patience 5 by default"): replayed
#: on six 40-epoch curves (the bacteria at three seeds, BBBC007 at two, HeLa) 5 was the shortest
#: patience within 0.01 of 40 epochs on all (3 ended two of the bacteria's seeds in a dip, 0.014 and
#: 0.058 short of what 40 epochs keep), for about 2 epochs more on crowded sets. Objects: 3, what
#: issue 13's object scores were measured with. Runs started before 2026-12-06 stored no patience and
#: resume with 3 (training/state.py).
DEFAULT_PATIENCE = {"semantic": 5, "instances": 3}
MIN_DELTA = 0.003
#: the loss rule's relative drop: with patience 5 it ended single-image runs of HeLa, the bacteria and BBBC007
#: after 15 to 22 epochs within 0.01 of 40 epochs (-0.0008 to +0.0030; BENCHMARKS.md, "The loss rule, measured")
LOSS_MIN_DROP = 0.02
MAX_EPOCHS = 40
LR_DROPS = 0
LR_FACTOR = 0.2


@dataclass
class StopState:
    """What the rule has seen (the training :class:`~unetkit.training.state.Position` holds the
    same fields, and so checkpoints them)."""

    reference_score: float | None = None  # the score an epoch must beat by min_delta (moves only then)
    reference_loss: float | None = None
    epochs_without_improvement: int = 0
    lr_drops: int = 0

    def to_state(self) -> dict[str, float | int | None]:
        return asdict(self)


CONTINUE, DROP_LR, STOP = "continue", "drop-lr", "stop"


@dataclass(frozen=True)
class StoppingRule:
    """Stop after ``patience`` epochs without an improvement larger than ``min_delta``."""

    patience: int = PATIENCE
    min_delta: float = MIN_DELTA
    loss_min_drop: float = LOSS_MIN_DROP
    lr_drops: int = LR_DROPS
    lr_factor: float = LR_FACTOR

    def decide(self, state: StopState, score: float | None, loss: float | None) -> str:
        """Record an epoch; :data:`CONTINUE`, :data:`DROP_LR` (then the count starts again) or :data:`STOP`."""
        if not self.update(state, score, loss):
            return CONTINUE
        if state.lr_drops < self.lr_drops:
            state.lr_drops += 1
            state.epochs_without_improvement = 0
            return DROP_LR
        return STOP

    def update(self, state: StopState, score: float | None, loss: float | None) -> bool:
        """Record an epoch's validation score (or, without validation, its mean loss); True: a plateau."""
        if score is not None:
            improved = state.reference_score is None or score > state.reference_score + self.min_delta
            if improved:
                state.reference_score = score
        elif loss is not None:
            improved = state.reference_loss is None or loss < state.reference_loss * (1 - self.loss_min_drop)
            if improved:
                state.reference_loss = loss
        else:
            return False
        state.epochs_without_improvement = 0 if improved else state.epochs_without_improvement + 1
        return state.epochs_without_improvement >= self.patience

    def reason(self, state: StopState) -> str:
        if state.reference_score is not None:
            return f"no validation improvement above {self.min_delta:g} for {self.patience} epochs"
        return f"training loss fell by less than {self.loss_min_drop:.0%} for {self.patience} epochs"
