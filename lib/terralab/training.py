"""One epoch loop for every torch model in terralab: early stopping, one NaN rule, best weights, checkpoints.

:func:`fit_epochs` runs the epochs of a training run; what an epoch does is the caller's (``step_epoch``: the
batches, the optimiser, the scheduler), and so is how a model is scored (``validate``). The loop owns what
every workflow used to write for itself:

* **early stopping**: an epoch *improves* when its validation loss is finite and lower than the best so far
  by more than ``min_delta``; after ``patience`` epochs in a row without one, the run stops;
* **one NaN rule**: a non-finite validation loss (NaN, ±inf) is recorded in the history as it came and never
  counts as an improvement (it counts as a stale epoch);
* **best weights**: with ``model`` given, the weights of the best epoch are kept (a copy) and loaded back at
  the end (``restore_best``); a run with no finite validation loss keeps its last weights;
* **checkpoints**: ``checkpoint(state)`` is called after every epoch with the :class:`TrainingState`; pass
  that state back as ``resume`` (with the model and optimiser restored) to continue where it stopped;
* **progress**: a bar over epochs (:func:`terralab.progress.progress_bar`) showing the last losses.

Seeding stays with the caller and never touches global NumPy state: torch's generator for weight
initialisation (:func:`terralab.seeding.seed_torch`), and own generators for batch orders
(:func:`shuffled_batches` with ``torch.Generator().manual_seed(seed)``) and draws (``np.random.default_rng``).

The core module imports no workflow, and torch only inside the functions that need it.

>>> losses = iter([0.9, 0.5, 0.6, float("nan"), 0.55])
>>> state = fit_epochs(lambda epoch: {"train_loss": 1.0}, lambda epoch: next(losses), epochs=5, patience=3)
>>> [row["val_loss"] for row in state.rows]
[0.9, 0.5, 0.6, nan, 0.55]
>>> state.best_epoch, state.stopped
(1, True)
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import InvalidInputError
from .progress import progress_bar

if TYPE_CHECKING:
    import torch

__all__ = ["TrainingState", "fit_epochs", "shuffled_batches"]

#: What ``step_epoch`` and ``validate`` may return: a number (the loss), named numbers, or nothing.
EpochResult = float | Mapping[str, float] | None


@dataclass
class TrainingState:
    """Where a run of :func:`fit_epochs` stands: its history and its early-stopping bookkeeping.

    Attributes
    ----------
    next_epoch
        Number of the next epoch to run (``resume`` starts there).
    rows
        One dict per epoch run: ``epoch``, then what ``step_epoch`` and ``validate`` returned (a bare number
        from them is ``train_loss`` / ``val_loss``).
    best_loss
        Lowest finite validation loss so far (``inf`` before the first).
    best_epoch
        Epoch number of ``best_loss`` (None before the first).
    stale
        Epochs in a row without an improvement.
    stopped
        True once early stopping ended the run.
    best_state
        Copy of the model's weights at ``best_epoch`` (only with ``model`` and ``restore_best``).
    """

    next_epoch: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)
    best_loss: float = math.inf
    best_epoch: int | None = None
    stale: int = 0
    stopped: bool = False
    best_state: dict[str, Any] | None = None

    def column(self, name: str) -> list[float]:
        """The values of ``name`` over the epochs that have it.

        >>> TrainingState(rows=[{"epoch": 0, "val_loss": 0.5}, {"epoch": 1}]).column("val_loss")
        [0.5]
        """
        return [row[name] for row in self.rows if name in row]


def _check_count(value: Any, name: str, minimum: int) -> int:
    try:
        number = operator.index(value)
    except TypeError:
        number = None
    if number is None or isinstance(value, bool) or number < minimum:
        raise InvalidInputError(
            f"{name} must be a whole number ≥ {minimum}, got {value!r}; pass e.g. {name}={max(minimum, 1)}"
        )
    return number


def _check(epochs: Any, patience: Any, min_delta: Any) -> tuple[int, int | None, float]:
    epochs = _check_count(epochs, "epochs", 1)
    patience = None if patience is None else _check_count(patience, "patience", 0)
    try:
        delta = float(min_delta)
    except (TypeError, ValueError):
        delta = math.nan
    if not delta >= 0 or math.isinf(delta) or isinstance(min_delta, bool):
        raise InvalidInputError(f"min_delta must be a finite number ≥ 0, got {min_delta!r}")
    return epochs, patience, delta


def _named(result: EpochResult, key: str) -> dict[str, Any]:
    """``result`` as a dict: a number becomes ``{key: number}``, None nothing."""
    if result is None:
        return {}
    if isinstance(result, Mapping):
        return dict(result)
    return {key: float(result)}


def _copy_weights(model: Any) -> dict[str, Any]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _record(state: TrainingState, epoch: int, loss: float, model: Any, min_delta: float, keep: bool) -> bool:
    """Book epoch ``epoch``'s validation ``loss`` into ``state``; True when it improved on the best."""
    if math.isfinite(loss) and loss < state.best_loss - min_delta:
        state.best_loss, state.best_epoch, state.stale = loss, epoch, 0
        if keep:
            state.best_state = _copy_weights(model)
        return True
    state.stale += 1
    return False


def _run_epoch(epoch: int, step_epoch, validate, model) -> dict[str, Any]:
    """Train and score one epoch; its history row."""
    if model is not None:
        model.train()
    row = {"epoch": epoch, **_named(step_epoch(epoch), "train_loss")}
    if model is not None:
        model.eval()
    if validate is not None:
        scores = _named(validate(epoch), "val_loss")
        if "val_loss" not in scores:
            raise InvalidInputError(
                f"validate must return the validation loss, or a dict with 'val_loss'; got {sorted(scores)}"
            )
        row.update(scores)
    return row


def fit_epochs(
    step_epoch: Callable[[int], EpochResult],
    validate: Callable[[int], EpochResult] | None = None,
    *,
    epochs: int,
    model: torch.nn.Module | None = None,
    patience: int | None = None,
    min_delta: float = 0.0,
    restore_best: bool = True,
    resume: TrainingState | None = None,
    checkpoint: Callable[[TrainingState], None] | None = None,
    progress: bool | None = None,
    desc: str | None = None,
    leave: bool = True,
) -> TrainingState:
    """Run up to ``epochs`` epochs of ``step_epoch``, each scored by ``validate``; stop early, keep the best.

    Epoch ``e`` (from ``resume.next_epoch``, else 0): ``model.train()``, ``step_epoch(e)``, ``model.eval()``,
    ``validate(e)``, bookkeeping, ``checkpoint(state)``; no other torch call (no random draw of its own).

    Parameters
    ----------
    step_epoch
        Trains one epoch; returns its training loss (a number or named numbers, stored in the row) or None.
    validate
        Scores the model after an epoch; returns the validation loss, or named numbers with ``val_loss`` (the
        loss early stopping watches). None: no validation, no early stopping, the last weights are kept.
    epochs
        Epochs to run in this call (≥ 1); after ``resume``: more epochs.
    model
        The torch module: switched to train mode before ``step_epoch`` and to eval mode after it and at the
        end; its best weights are kept and restored. None: the caller handles modes and weights.
    patience
        Stop after this many epochs in a row without an improvement (≥ 0); None: never stop early.
    min_delta
        An improvement must lower the best validation loss by more than this (≥ 0).
    restore_best
        Load the best epoch's weights into ``model`` at the end (if an epoch had a finite validation loss).
    resume
        The :class:`TrainingState` a ``checkpoint`` received: continue that run (the caller restores the
        model's and optimiser's state). A run that had stopped early does not continue.
    checkpoint
        Called after every epoch with the state (write it, with the model and optimiser, to resume later).
    progress, desc, leave
        The bar over the epochs (:func:`terralab.progress.progress_bar`; None: when a person is watching), its
        label, and whether it stays on screen when done.

    Returns
    -------
    TrainingState
        ``rows`` is the history, one dict per epoch (``pd.DataFrame(state.rows)``).

    Raises
    ------
    InvalidInputError
        ``epochs`` < 1, ``patience`` < 0, ``min_delta`` < 0 (or not numbers); ``validate`` without a loss.
    """
    epochs, patience, min_delta = _check(epochs, patience, min_delta)
    state = TrainingState() if resume is None else resume
    keep = restore_best and model is not None and validate is not None
    first = state.next_epoch
    bar = progress_bar(range(first, first + epochs), desc=desc, enabled=progress, leave=leave)
    for epoch in bar if not state.stopped else ():
        row = _run_epoch(epoch, step_epoch, validate, model)
        state.rows.append(row)
        state.next_epoch = epoch + 1
        bar.set_postfix({k: f"{row[k]:.3f}" for k in ("train_loss", "val_loss") if k in row})
        if validate is not None:
            improved = _record(state, epoch, float(row["val_loss"]), model, min_delta, keep)
            state.stopped = not improved and patience is not None and state.stale >= patience
        if checkpoint is not None:
            checkpoint(state)
        if state.stopped:
            break
    bar.close()
    if keep and state.best_state is not None:
        model.load_state_dict(state.best_state)
    if model is not None:
        model.eval()
    return state


def shuffled_batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Indices ``0..n-1`` in a random order drawn from ``generator`` (one ``randperm``), in batches.

    >>> import torch
    >>> batches = list(shuffled_batches(5, 2, torch.Generator().manual_seed(0)))
    >>> [len(b) for b in batches], sorted(torch.cat(batches).tolist())
    ([2, 2, 1], [0, 1, 2, 3, 4])
    """
    import torch

    order = torch.randperm(n, generator=generator)
    for i in range(0, n, batch_size):
        yield order[i : i + batch_size]
