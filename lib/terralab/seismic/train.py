"""Train or fine-tune PhaseNet on labelled records (CEED, SeisBench format, PhaseNet npz).

Training data are record sets ``(record, component [E,N,Z], time)`` with P/S sample coordinates, as
:func:`terralab.seismic.io.read_phasenet_npz`, ``CEEDFile.to_records`` and ``SeisBenchDataset.to_records``
return. Each epoch draws, per record, random 30-s windows that contain the P pick (and the S pick when it
fits: random window shifts, so the network cannot learn where in the window arrivals sit), builds Gaussian
labels (σ = ``label_sigma_s``, 0.1 s by default; noise = 1 − P − S), and minimises the cross-entropy
between labels and PhaseNet's softmax with Adam. After each epoch it evaluates validation windows (loss,
P/S F1 at 0.1 s with the picking rule of :mod:`terralab.seismic.evaluate`), writes a checkpoint, and
returns the per-epoch history as a DataFrame.

Example
-------
>>> import os
>>> from terralab.seismic import io
>>> from terralab.seismic.train import train_phasenet
>>> records = io.read_sample(max_records=3)                 # real NCEDC records with analyst picks
>>> model, history = train_phasenet(records.isel(record=slice(0, 2)), records.isel(record=slice(2, 3)),
...                                 epochs=2, checkpoint_dir="checkpoints/", progress=False)
>>> list(history.columns)
['epoch', 'train_loss', 'val_loss', 'val_P_f1', 'val_S_f1', 'seconds']
>>> sorted(os.listdir("checkpoints"))
['epoch_001.pt', 'epoch_002.pt', 'last.pt']
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InvalidInputError
from ..files import atomic_path
from ..options import options_from
from ..seeding import seed_torch
from ..training import TrainingState, fit_epochs
from .records import check_records

WINDOW_SAMPLES = 3000


def gaussian_labels(
    n_samples: int,
    p_index: float | None,
    s_index: float | None,
    sigma_s: float = 0.1,
    sampling_rate_hz: float = 100.0,
) -> np.ndarray:
    """PhaseNet's training target (3, n_samples): Gaussians of σ = ``sigma_s`` at P and S, noise = 1 − P − S.

    Parameters
    ----------
    n_samples : int
    p_index, s_index : float or None
        Pick positions in samples (may lie outside the window; None / NaN: no pick).
    sigma_s : float
        Label width in s (PhaseNet: 0.1 s).
    sampling_rate_hz : float
    """
    t = np.arange(n_samples, dtype=np.float64)
    sigma = sigma_s * sampling_rate_hz
    y = np.zeros((3, n_samples), dtype=np.float32)
    for k, idx in ((1, p_index), (2, s_index)):
        if idx is not None and np.isfinite(idx):
            y[k] = np.exp(-0.5 * ((t - idx) / sigma) ** 2)
    total = y[1] + y[2]
    over = total > 1
    if over.any():  # overlapping P and S labels: keep the sum at most 1
        y[1:, over] /= total[over]
    y[0] = np.clip(1.0 - y[1] - y[2], 0.0, 1.0)
    return y


def sample_windows(
    records: xr.DataArray,
    windows_per_record: int = 1,
    window: int = WINDOW_SAMPLES,
    margin: int = 100,
    sigma_s: float = 0.1,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Random training windows and their labels from a record set.

    Each window contains the P pick at least ``margin`` samples from its edges, and the S pick as well
    when the record allows; records without P are skipped.

    Returns
    -------
    x : (n, 3, window) float32 raw windows; y : (n, 3, window) float32 labels [noise, P, S]
    """
    check_records(records)
    sr = float(records.attrs.get("sampling_rate_hz", 100.0))
    if abs(sr - 100.0) > 1e-6:
        raise InvalidInputError(f"training needs 100 Hz records, got {sr} Hz; resample them first")
    n = records.sizes["time"]
    if n < window:
        raise InvalidInputError(f"records have {n} samples, fewer than a {window}-sample window")
    rng = np.random.default_rng(seed)
    data = records.values
    xs, ys = [], []
    for i, (itp, its) in enumerate(
        zip(records["trace_p_arrival_sample"].values, records["trace_s_arrival_sample"].values)
    ):
        if not np.isfinite(itp):
            continue
        hi = min(int(itp) - margin, n - window)
        lo_p = max(0, int(itp) + margin - window)
        lo = max(lo_p, int(its) + margin - window) if np.isfinite(its) else lo_p
        if lo > hi:  # S too late to share a window with P: only require P
            lo = lo_p
        if lo > hi:
            continue
        for s in rng.integers(lo, hi + 1, size=windows_per_record):
            xs.append(data[i, :, s : s + window])
            ys.append(gaussian_labels(window, itp - s, its - s if np.isfinite(its) else None, sigma_s, sr))
    if not xs:
        raise InvalidInputError("no record has a P pick that fits a training window")
    return np.stack(xs).astype(np.float32), np.stack(ys)


def _loss(model, x, y):
    import torch

    logits = model.forward_logits(x)
    return -(y * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()


def window_loss(model: Any, x: np.ndarray, y: np.ndarray, batch_size: int = 32) -> float:
    """Mean cross-entropy of a model on fixed windows (eval mode, no gradients)."""
    import torch

    from .phasenet import normalize_windows

    was = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for i in range(0, len(x), batch_size):
            xb = normalize_windows(torch.from_numpy(x[i : i + batch_size]))
            yb = torch.from_numpy(y[i : i + batch_size])
            total += float(_loss(model, xb, yb)) * len(xb)
            count += len(xb)
    model.train(was)
    return total / max(count, 1)


def _window_f1(model, x, y, batch_size) -> dict[str, float]:
    """P and S F1 at 0.1 s on labelled windows (label peaks are the truth)."""
    from .evaluate import evaluate_picks
    from .picking import find_pick_indices, predict_windows

    prob = predict_windows(model, x, batch_size)
    pred, ref = [], []
    for i in range(len(x)):
        for k, phase in ((1, "P"), (2, "S")):
            pos, _ = find_pick_indices(prob[i, k], 0.3, 50, refine=False)
            pred += [{"record": i, "phase": phase, "time": p / 100.0} for p in pos]
            if y[i, k].max() > 0.99:
                ref.append({"record": i, "phase": phase, "time": float(np.argmax(y[i, k])) / 100.0})
    m = evaluate_picks(
        pd.DataFrame(pred, columns=["record", "phase", "time"]),
        pd.DataFrame(ref, columns=["record", "phase", "time"]),
        (0.1,),
        key="record",
    )
    return {f"val_{r.phase}_f1": float(r.f1) for r in m.itertuples()}


def _save_checkpoint(
    path: Path, model, optimizer, epoch: int, history: list[dict], batch_order: dict
) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(
            {
                "model_state": model.state_dict(),
                "optimizer_state": optimizer.state_dict(),
                "epoch": epoch,
                "history": history,
                "batch_order_state": batch_order,  # the batch-order generator, so a resume goes on exactly
            },
            tmp,
        )


def _model_to_train(model: Any):
    """``model``; the original PhaseNet when None; a randomly initialised one for ``"scratch"``."""
    from .phasenet import PhaseNet, load_phasenet

    if model is None:
        return load_phasenet()
    if isinstance(model, str):
        if model != "scratch":
            raise InvalidInputError(f"model must be a torch module, None or 'scratch', got {model!r}")
        return PhaseNet()
    return model


def _train_epoch(
    model, optimizer, data, *, batch_size: int, freeze_batchnorm: bool, progress: bool, desc: str
):
    """One pass over the windows ``data = (x, y, order)`` in batches; the batch losses. Leaves ``model`` in
    eval."""
    import torch

    from ..progress import progress_bar
    from .phasenet import normalize_windows

    x, y, order = data
    model.train()
    if freeze_batchnorm:
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.eval()
    losses = []
    bar = progress_bar(range(0, len(order), batch_size), enabled=progress, desc=desc, unit="batch")
    for i in bar:
        idx = order[i : i + batch_size]
        if len(idx) < 2 and not freeze_batchnorm:
            continue  # batch norm cannot train on a single window
        xb = normalize_windows(torch.from_numpy(x[idx]))
        yb = torch.from_numpy(y[idx])
        optimizer.zero_grad()
        loss = _loss(model, xb, yb)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{np.mean(losses):.4f}")
    model.eval()
    return losses


@dataclass(frozen=True)
class TrainOptions:
    """Options of :func:`train_phasenet` (pass them as keywords: ``train_phasenet(..., batch_size=8)``).

    Attributes
    ----------
    batch_size
        Windows per gradient step (≥ 1).
    learning_rate
        Adam's learning rate (> 0).
    windows_per_record
        Random windows drawn from each record per epoch.
    label_sigma_s
        Width of the Gaussian labels, in s.
    freeze_batchnorm
        Keep batch-norm statistics fixed (eval mode) while training — right for fine-tuning on small data;
        set False to train from scratch.
    num_threads
        torch threads while training (None: leave torch's setting).
    """

    batch_size: int = 16
    learning_rate: float = 1e-4
    windows_per_record: int = 1
    label_sigma_s: float = 0.1
    freeze_batchnorm: bool = True
    num_threads: int | None = None

    @classmethod
    def from_keywords(cls, options: dict[str, Any]) -> TrainOptions:
        """The options named in ``options``; any other name is an :class:`~terralab.errors.InvalidInputError`.

        >>> TrainOptions.from_keywords({"batch_size": 8}).batch_size
        8
        >>> TrainOptions.from_keywords({"batchsize": 8})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        terralab.errors.InvalidInputError: train_phasenet() got unknown option(s) 'batchsize'; ...
        """
        return options_from(cls, options, caller="train_phasenet")


def train_phasenet(
    train: xr.DataArray,
    validation: xr.DataArray | None = None,
    model: Any = None,
    epochs: int = 1,
    *,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: str | os.PathLike | None = None,
    seed: int = 0,
    progress: bool = True,
    **options: Any,
) -> tuple[Any, pd.DataFrame]:
    """Fine-tune (default: from the original weights) or train PhaseNet on labelled records.

    Every epoch runs (:func:`terralab.training.fit_epochs`, no early stopping); the last weights are returned.

    Parameters
    ----------
    train : xr.DataArray (record, component [E,N,Z], time)
        100-Hz records with ``trace_p_arrival_sample`` (and ``trace_s_arrival_sample``) coordinates.
    validation : xr.DataArray, optional
        Records scored after every epoch (fixed windows drawn once with ``seed``).
    model : torch.nn.Module or "scratch", optional
        Default: :func:`load_phasenet` (fine-tuning); ``"scratch"``: a randomly initialised PhaseNet.
    epochs : int
        Epochs to run (after ``resume``: more epochs; 0 trains nothing).
    checkpoint_dir : path, optional
        Writes ``epoch_{k:03d}.pt`` after every epoch and ``last.pt`` (load with
        ``load_phasenet("…/last.pt")``).
    resume : path, optional
        A checkpoint to continue from (weights, optimizer state, history, batch order): training 1 epoch and
        resuming for 1 more gives the weights of 2 epochs in one run.
    seed : int
        Seeds weight init (scratch), window draws and batch order.
    progress : bool
        Progress bar over batches.
    **options
        :class:`TrainOptions`: ``batch_size`` (16), ``learning_rate`` (1e-4), ``windows_per_record`` (1),
        ``label_sigma_s`` (0.1), ``freeze_batchnorm`` (True), ``num_threads`` (None); any other name is an
        :class:`~terralab.errors.InvalidInputError`.

    Returns
    -------
    model : the trained ``torch.nn.Module`` (eval mode)
    history : pd.DataFrame, one row per epoch: ``epoch``, ``train_loss``, ``val_loss``, ``val_P_f1``,
    ``val_S_f1``, ``seconds``
    """
    import torch

    opts = TrainOptions.from_keywords(options)
    check_records(train)
    if epochs < 0 or opts.batch_size < 1 or opts.learning_rate <= 0:
        raise InvalidInputError("epochs must be ≥ 0, batch_size ≥ 1 and learning_rate > 0")
    seed_torch(seed)
    model = _model_to_train(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=opts.learning_rate)
    batch_order = np.random.default_rng(seed)
    state = _resume_state(resume, model, optimizer, batch_order)
    step_epoch, validate = _epoch_functions(
        train, validation, model, optimizer, opts, seed, progress, batch_order
    )
    previous = torch.get_num_threads()
    if opts.num_threads is not None:
        torch.set_num_threads(int(opts.num_threads))
    try:
        if epochs > 0:
            fit_epochs(
                step_epoch,
                validate,
                epochs=epochs,
                model=model,
                restore_best=False,
                resume=state,
                checkpoint=_checkpointer(checkpoint_dir, model, optimizer, batch_order),
                progress=False,  # the bar is over batches (``progress``)
            )
    finally:
        torch.set_num_threads(previous)
    model.eval()
    return model, pd.DataFrame(
        state.rows, columns=["epoch", "train_loss", "val_loss", "val_P_f1", "val_S_f1", "seconds"]
    )


def _checkpointer(checkpoint_dir, model, optimizer, batch_order: np.random.Generator):
    """The ``checkpoint`` of :func:`fit_epochs`: ``epoch_{k:03d}.pt`` and ``last.pt`` (None: no directory),
    with the batch-order generator's state."""
    if checkpoint_dir is None:
        return None

    def checkpoint(state: TrainingState) -> None:
        epoch = state.next_epoch - 1
        for name in (f"epoch_{epoch:03d}.pt", "last.pt"):
            _save_checkpoint(
                Path(checkpoint_dir) / name,
                model,
                optimizer,
                epoch,
                state.rows,
                batch_order.bit_generator.state,
            )

    return checkpoint


def _resume_state(resume, model, optimizer, batch_order: np.random.Generator) -> TrainingState:
    """A fresh run's state (first epoch 1), or checkpoint ``resume``'s (weights, optimiser and batch order
    loaded; a checkpoint written before the batch order was saved restarts it from ``seed``)."""
    import torch

    if resume is None:
        return TrainingState(next_epoch=1)
    ckpt = torch.load(resume, map_location="cpu", weights_only=False)
    model.load_state_dict(ckpt["model_state"])
    optimizer.load_state_dict(ckpt["optimizer_state"])
    if ckpt.get("batch_order_state") is not None:
        batch_order.bit_generator.state = ckpt["batch_order_state"]
    return TrainingState(next_epoch=int(ckpt.get("epoch", 0)) + 1, rows=list(ckpt.get("history", [])))


def _epoch_functions(
    train,
    validation,
    model,
    optimizer,
    opts: TrainOptions,
    seed: int,
    progress: bool,
    rng: np.random.Generator,
):
    """``step_epoch`` and ``validate`` of :func:`fit_epochs` for PhaseNet: windows drawn anew every epoch
    (``seed + epoch``), batch order from one generator ``rng`` (seeded with ``seed``, saved in checkpoints);
    validation on fixed windows drawn once."""
    val = None
    if validation is not None:
        val = sample_windows(validation, 1, sigma_s=opts.label_sigma_s, seed=seed + 10_000)
    started = {}

    def step_epoch(epoch: int) -> dict[str, float]:
        started["t0"] = time.perf_counter()
        x, y = sample_windows(train, opts.windows_per_record, sigma_s=opts.label_sigma_s, seed=seed + epoch)
        order = rng.permutation(len(x))
        losses = _train_epoch(
            model,
            optimizer,
            (x, y, order),
            batch_size=opts.batch_size,
            freeze_batchnorm=opts.freeze_batchnorm,
            progress=progress,
            desc=f"epoch {epoch}",
        )
        return {"train_loss": float(np.mean(losses)) if losses else np.nan}

    def validate(epoch: int) -> dict[str, float]:
        row = {"val_loss": np.nan, "val_P_f1": np.nan, "val_S_f1": np.nan}
        if val is not None:
            row["val_loss"] = window_loss(model, *val, batch_size=opts.batch_size)
            row.update(_window_f1(model, val[0], val[1], opts.batch_size))
        row["seconds"] = time.perf_counter() - started["t0"]
        return row

    return step_epoch, validate
