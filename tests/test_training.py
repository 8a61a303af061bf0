"""The shared epoch loop: early stopping at patience, best weights restored, the NaN rule, resume from a
checkpoint, bad settings refused."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from terralab.errors import InvalidInputError
from terralab.training import TrainingState, fit_epochs, shuffled_batches


def _scripted(losses):
    """A ``validate`` that returns ``losses`` in turn, and a model whose weight is the epoch number."""
    model = torch.nn.Linear(1, 1, bias=False)

    def step_epoch(epoch: int) -> float:
        with torch.no_grad():
            model.weight.fill_(float(epoch))
        return 1.0 / (epoch + 1)

    return model, step_epoch, lambda epoch: losses[epoch]


def test_stops_after_patience_epochs_without_improvement_and_restores_the_best_weights():
    model, step, validate = _scripted([0.9, 0.5, 0.6, 0.55, 0.7, 0.1, 0.1])
    state = fit_epochs(step, validate, epochs=7, model=model, patience=3, progress=False)
    assert [row["epoch"] for row in state.rows] == [0, 1, 2, 3, 4]  # epochs 2, 3, 4 stale: stop
    assert state.stopped and state.stale == 3 and state.best_epoch == 1 and state.best_loss == 0.5
    assert model.weight.item() == 1.0  # epoch 1's weights, not the last epoch's (4)
    assert state.rows[0] == {"epoch": 0, "train_loss": 1.0, "val_loss": 0.9}
    assert not model.training


def test_patience_zero_stops_at_the_first_stale_epoch_and_none_never_stops():
    model, step, validate = _scripted([0.9, 0.95, 0.1])
    assert len(fit_epochs(step, validate, epochs=3, model=model, patience=0, progress=False).rows) == 2
    model, step, validate = _scripted([0.9, 0.95, 0.97, 0.99])
    state = fit_epochs(step, validate, epochs=4, model=model, patience=None, progress=False)
    assert len(state.rows) == 4 and not state.stopped
    assert model.weight.item() == 0.0  # the best epoch's weights are restored without early stopping too


def test_min_delta_an_improvement_must_beat_the_best_by_more_than_it():
    model, step, validate = _scripted([1.0, 0.99995, 0.9])
    state = fit_epochs(step, validate, epochs=3, model=model, patience=5, min_delta=1e-4, progress=False)
    assert state.best_epoch == 2 and [r["val_loss"] for r in state.rows] == [1.0, 0.99995, 0.9]
    model, step, validate = _scripted([1.0, 0.99995, 0.9])
    assert fit_epochs(step, validate, epochs=2, model=model, min_delta=0.0, progress=False).best_epoch == 1


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_validation_loss_is_recorded_and_never_an_improvement(bad):
    model, step, validate = _scripted([bad, 0.8, bad, bad, 0.9])
    state = fit_epochs(step, validate, epochs=5, model=model, patience=2, progress=False)
    losses = state.column("val_loss")
    assert len(losses) == 4 and losses[1] == 0.8  # stopped after two stale (non-finite) epochs
    assert all(v == bad or (math.isnan(v) and math.isnan(bad)) for v in (losses[0], losses[2], losses[3]))
    assert state.best_epoch == 1 and state.best_loss == 0.8 and model.weight.item() == 1.0
    # only non-finite losses: nothing to restore, the last weights stay
    model, step, validate = _scripted([bad, bad, bad])
    state = fit_epochs(step, validate, epochs=3, model=model, patience=None, progress=False)
    assert state.best_epoch is None and state.best_state is None and model.weight.item() == 2.0


def test_without_validation_every_epoch_runs_and_the_last_weights_stay():
    model, step, _ = _scripted([])
    state = fit_epochs(step, epochs=3, model=model, patience=0, progress=False)
    assert [row["epoch"] for row in state.rows] == [0, 1, 2] and model.weight.item() == 2.0
    assert "val_loss" not in state.rows[0] and state.column("val_loss") == []


def _regression_run(epochs: int, *, resume=None, saved=None):
    """A small seeded regression trained with Adam; batches and data from their own generators."""
    torch.manual_seed(0)
    x = torch.as_tensor(np.random.default_rng(1).normal(size=(64, 3)), dtype=torch.float32)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.1
    xv, yv = x[:16] + 0.3, y[:16]
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    if resume is not None:
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])

    def step_epoch(epoch: int) -> float:
        gen = torch.Generator().manual_seed(100 + epoch)  # the epoch's own seed: resumable
        total = 0.0
        for b in shuffled_batches(48, 16, gen):
            opt.zero_grad()
            loss = torch.mean((model(x[b + 16]).squeeze(-1) - y[b + 16]) ** 2)
            loss.backward()
            opt.step()
            total += loss.item()
        return total / 3

    def validate(epoch: int) -> float:
        with torch.no_grad():
            return float(torch.mean((model(xv).squeeze(-1) - yv) ** 2))

    def checkpoint(state: TrainingState) -> None:
        if saved is not None:
            saved.update(
                state=copy.deepcopy(state),
                model=copy.deepcopy(model.state_dict()),
                opt=copy.deepcopy(opt.state_dict()),
            )

    state = fit_epochs(
        step_epoch, validate, epochs=epochs, model=model, patience=4, resume=resume, checkpoint=checkpoint
    )
    return model, state


def test_resuming_from_a_checkpoint_gives_the_uninterrupted_run():
    whole_model, whole = _regression_run(12)
    saved = {}
    _regression_run(5, saved=saved)  # interrupted after 5 epochs
    assert saved["state"].next_epoch == 5 and len(saved["state"].rows) == 5
    model, state = _regression_run(7, resume=saved["state"], saved=saved)
    assert state.rows == whole.rows and state.best_epoch == whole.best_epoch
    for a, b in zip(model.state_dict().values(), whole_model.state_dict().values()):
        assert torch.equal(a, b)


def test_a_run_that_stopped_early_does_not_continue_on_resume():
    model, step, validate = _scripted([0.5, 0.6, 0.7])
    state = fit_epochs(step, validate, epochs=3, model=model, patience=1, progress=False)
    assert state.stopped and len(state.rows) == 2
    again = fit_epochs(step, validate, epochs=3, model=model, patience=1, resume=state, progress=False)
    assert len(again.rows) == 2


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"epochs": 0}, "epochs must be a whole number ≥ 1"),
        ({"epochs": -3}, "epochs"),
        ({"epochs": 2.5}, "epochs"),
        ({"epochs": True}, "epochs"),
        ({"epochs": 2, "patience": -1}, "patience must be a whole number ≥ 0"),
        ({"epochs": 2, "patience": 1.5}, "patience"),
        ({"epochs": 2, "min_delta": -0.1}, "min_delta must be a finite number ≥ 0"),
        ({"epochs": 2, "min_delta": math.nan}, "min_delta"),
        ({"epochs": 2, "min_delta": "small"}, "min_delta"),
    ],
)
def test_bad_settings_are_refused_with_a_typed_error(settings, match):
    calls = []
    with pytest.raises(InvalidInputError, match=match):
        fit_epochs(calls.append, lambda e: 0.0, progress=False, **settings)
    assert calls == []  # refused before any epoch ran


def test_shuffled_batches_cover_every_index_once_in_the_generators_order():
    batches = list(shuffled_batches(10, 4, torch.Generator().manual_seed(3)))
    assert [len(b) for b in batches] == [4, 4, 2]
    order = torch.randperm(10, generator=torch.Generator().manual_seed(3))
    assert torch.equal(torch.cat(batches), order)


def test_a_validate_without_a_loss_is_refused_with_a_typed_error():
    model, step, _ = _scripted([])
    with pytest.raises(InvalidInputError, match="val_loss"):
        fit_epochs(step, lambda epoch: {"val_accuracy": 0.9}, epochs=2, model=model, progress=False)
