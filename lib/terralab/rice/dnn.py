"""Per-pixel rice models: the ACES-style MLP (optionally a deep ensemble) and the RandomForest baseline.

Both train on rows of band values: labelled points, or the labelled pixels of a stack (then the rows are the
network inputs of :func:`terralab.rice.inputs.model_inputs`, cloud-mask channels included). Reached through
:func:`terralab.rice.fit` with ``model="dnn"`` or ``model="rf"``.

Example
-------
A two-member ensemble on 100 rows of two bands (15 % held out for early stopping and calibration):

>>> import numpy as np
>>> from terralab.rice.options import DNNParams, RunSettings
>>> X = np.random.default_rng(0).normal(size=(100, 2)).astype(np.float32)
>>> y = (X[:, 0] > 0).astype(np.int64)
>>> params, run = DNNParams(hidden=(8,), n_members=2), RunSettings(epochs=2, progress=False)
>>> model = fit_pixels(X, y, None, None, ["red_before", "nir_before"], params=params, run=run)
>>> model, model.class_names
(RiceModel(dnn, 2 bands, 2 classes, 84 parameters), ['cropland_etc', 'rice'])
>>> model.history.groupby("member").size().to_dict()
{0: 2, 1: 2}
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import InvalidInputError
from ..training import fit_epochs, shuffled_batches
from .calibration import fit_temperature
from .checkpoint import RiceModel
from .features import Normalisation, fit_normalisation
from .inference import predict_proba_matrix
from .inputs import count_classes, resolve_class_names, warn_single_class
from .labels import class_weights
from .networks import build_net, ensemble, import_torch
from .options import DNNParams, RFParams, RunSettings

__all__ = ["fit_pixels"]


def fit_pixels(
    X: np.ndarray,
    y: np.ndarray,
    Xv: np.ndarray | None,
    yv: np.ndarray | None,
    names: Sequence[str],
    *,
    params: DNNParams | RFParams,
    run: RunSettings,
    attrs_names: Sequence[str] | None = None,
    norm: Normalisation | None = None,
    masking: dict | None = None,
) -> RiceModel:
    """Train a dnn (``DNNParams``) or rf (``RFParams``) on rows ``X`` (n, bands) with class ids ``y``.

    Points: X holds raw band values (normalised here). Stacks: X holds the network inputs of
    :func:`~terralab.rice.inputs.model_inputs` already (``norm`` given), with the mask channels. ``Xv, yv``:
    validation rows, or None (dnn: 15 % of the rows are held out at random).
    """
    keep = (y >= 0) & ~np.isnan(X).any(axis=1)
    X, y = X[keep], y[keep].astype(np.int64)
    if y.size == 0:
        raise InvalidInputError("the training set is empty (no labelled point with valid band values)")
    warn_single_class(y)
    n_classes = count_classes(y, yv)
    names_c = resolve_class_names(n_classes, run.class_names, attrs_names)
    n_classes = max(n_classes, len(names_c))
    stack_inputs = norm is not None
    if norm is None:
        norm = fit_normalisation(pd.DataFrame(X, columns=names), names)
    base = {"stack_inputs": True, "masking": masking} if stack_inputs else {}
    fitted = RiceModel(
        "rf" if isinstance(params, RFParams) else "dnn", list(names), norm, names_c, base, None
    )
    if isinstance(params, RFParams):
        return _fit_rf(fitted, X, y, Xv, yv, params, run)
    return _fit_dnn(fitted, X, y, Xv, yv, params, run)


def _fit_rf(fitted: RiceModel, X, y, Xv, yv, params: RFParams, run: RunSettings) -> RiceModel:
    from sklearn.ensemble import RandomForestClassifier

    rf = RandomForestClassifier(
        n_estimators=params.n_estimators,
        random_state=run.seed,
        n_jobs=-1,
        class_weight="balanced" if params.class_weighting == "balanced" else None,
    )
    rf.fit(X, y)
    fitted.net = rf
    fitted.config = {
        "n_estimators": params.n_estimators,
        "seed": run.seed,
        "class_weighting": params.class_weighting,
        **fitted.config,
    }
    if run.calibrate and Xv is not None:
        vkeep = (yv >= 0) & ~np.isnan(Xv).any(axis=1)
        if vkeep.any():
            stack_inputs = bool(fitted.config.get("stack_inputs"))
            proba = predict_proba_matrix(fitted, Xv[vkeep], run.device, inputs=stack_inputs, calibrated=False)
            fitted.config["temperature"] = fit_temperature(np.log(np.clip(proba, 1e-4, 1)), yv[vkeep])
    return fitted


def _holdout(X, y, Xv, yv, seed: int):
    """Training and validation rows: the usable given validation rows, or 15 % of X held out at random."""
    if Xv is None:
        order = np.random.default_rng(seed).permutation(y.size)
        n_val = max(1, round(0.15 * y.size))
        val_idx, tr_idx = order[:n_val], order[n_val:]
        return X[tr_idx], y[tr_idx], X[val_idx], y[val_idx]
    vkeep = (yv >= 0) & ~np.isnan(Xv).any(axis=1)
    Xv, yv = Xv[vkeep], yv[vkeep].astype(np.int64)
    if yv.size == 0:
        raise InvalidInputError(
            "the validation points hold no labelled row with every band valid; pass validation points "
            "with class ids ≥ 0 and no NaN bands, or validation=None to hold out 15 % of the training points"
        )
    return X, y, Xv, yv


def _fit_dnn(fitted: RiceModel, X, y, Xv, yv, params: DNNParams, run: RunSettings) -> RiceModel:
    torch = import_torch()
    X, y, Xv, yv = _holdout(X, y, Xv, yv, run.seed)
    if y.size == 0:
        raise InvalidInputError("the training split is empty after holding out validation points")
    config = {
        "hidden": [int(h) for h in params.hidden],
        "dropout": float(params.dropout),
        "n_members": int(params.n_members),
        "epochs": int(run.epochs),
        "learning_rate": float(params.learning_rate),
        "batch_size": int(params.batch_size),
        "patience": int(params.patience),
        "seed": int(run.seed),
        "class_weighting": params.class_weighting,
        **fitted.config,
    }
    n_classes, device = fitted.n_classes, run.device
    weights = class_weights(
        y, n_classes, method="balanced" if params.class_weighting == "balanced" else "none"
    )

    def prepare(A: np.ndarray) -> np.ndarray:
        return A.astype(np.float32) if config.get("stack_inputs") else fitted.normalisation.apply(A, axis=1)

    data = (
        torch.as_tensor(prepare(X), device=device),
        torch.as_tensor(y, device=device),
        torch.as_tensor(prepare(Xv), device=device),
        torch.as_tensor(yv, device=device),
    )
    loss_fn = torch.nn.CrossEntropyLoss(
        weight=torch.tensor(np.array(weights.values), dtype=torch.float32, device=device)
    )
    members, history = [], []
    for m in range(int(params.n_members)):
        torch.manual_seed(run.seed + 1000 * m)
        net = build_net("dnn", X.shape[1], n_classes, {**config, "n_members": 1}).members[0].to(device)
        history += _train_member(net, m, data, loss_fn, params, run)
        members.append(net.eval())
    ens = ensemble(members).to(device).eval()
    if run.calibrate:
        with torch.no_grad():
            config["temperature"] = fit_temperature(ens(data[2]).cpu().numpy(), yv)
    fitted.net, fitted.config, fitted.history = ens, config, pd.DataFrame(history)
    return fitted


def _train_member(net, m: int, data, loss_fn, params: DNNParams, run: RunSettings) -> list[dict]:
    """Train ensemble member ``m`` with Adam and early stopping (:func:`terralab.training.fit_epochs`); its
    best epoch's weights are restored."""
    torch = import_torch()
    Xt, yt, Xvt, yvt = data
    n, bs = yt.shape[0], int(params.batch_size)
    opt = torch.optim.Adam(net.parameters(), lr=params.learning_rate)
    gen = torch.Generator().manual_seed(run.seed + m)

    def step_epoch(epoch: int) -> dict[str, float]:
        total = 0.0
        for batch in shuffled_batches(n, bs, gen):
            idx = batch.to(run.device)
            opt.zero_grad()
            loss = loss_fn(net(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += loss.item() * idx.numel()
        return {"train_loss": total / n}

    def validate(epoch: int) -> dict[str, float]:
        with torch.no_grad():
            logits = net(Xvt)
            return {
                "val_loss": float(loss_fn(logits, yvt)),
                "val_accuracy": float((logits.argmax(1) == yvt).float().mean()),
            }

    state = fit_epochs(
        step_epoch,
        validate,
        epochs=run.epochs,
        model=net,
        patience=params.patience,
        min_delta=1e-4,
        progress=run.progress,
        desc=f"dnn {m + 1}/{params.n_members}",
        leave=False,
    )
    return [{"member": m, **row} for row in state.rows]
