"""Accuracy of class maps and point predictions: confusion matrix, per-class precision / recall / F1 / IoU,
overall accuracy, Cohen's κ; independent evaluation on a separate point set; the paper's table of band sets ×
model types.

Example
-------
>>> import numpy as np
>>> from terralab.rice import evaluate
>>> s = evaluate.scores(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), class_names=["a", "b", "c"])
>>> round(s.attrs["overall_accuracy"], 2), round(float(s.loc["b", "recall"]), 2)
(0.75, 0.5)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InvalidInputError

if TYPE_CHECKING:
    from .checkpoint import RiceModel

#: Class ids as an array, a Series or a DataArray.
ArrayLike = np.ndarray | pd.Series | xr.DataArray

__all__ = [
    "CALIBRATION_UNITS",
    "SCORE_UNITS",
    "band_model_table",
    "calibration",
    "compare_band_sets",
    "compare_scores",
    "confusion_matrix",
    "independent_evaluation",
    "sample_at",
    "score_confusion",
    "scores",
    "summary",
]

#: Units of the score columns and headline numbers (``attrs["units"]`` of :func:`scores` and
#: :func:`compare_scores`): "1" (a fraction), "count".
SCORE_UNITS = {
    "precision": "1",
    "recall": "1",
    "f1": "1",
    "iou": "1",
    "support": "count",
    "overall_accuracy": "1",
    "kappa": "1",
    "macro_f1": "1",
    "n": "count",
}
#: Units of the reliability table's columns and its ``ece`` (``attrs["units"]`` of :func:`calibration`).
CALIBRATION_UNITS = {
    "bin_lower": "1",
    "bin_upper": "1",
    "count": "count",
    "mean_confidence": "1",
    "accuracy": "1",
    "ece": "1",
    "n": "count",
}
#: The headline numbers of a score table, kept in its ``attrs`` (one value for the whole table).
HEADLINE = ("overall_accuracy", "kappa", "macro_f1", "n")


def _flat(values) -> np.ndarray:
    if isinstance(values, (xr.DataArray, pd.Series, pd.DataFrame)):
        values = values.values
    return np.asarray(values).ravel()


def _pairs(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t, p = _flat(y_true), _flat(y_pred)
    if t.shape != p.shape:
        raise InvalidInputError(
            f"truth and prediction differ in size ({t.size} vs {p.size}); put them on the same grid"
        )
    t = np.where(np.isnan(t), -1, t) if t.dtype.kind == "f" else t
    p = np.where(np.isnan(p), -1, p) if p.dtype.kind == "f" else p
    ok = (t >= 0) & (p >= 0)  # −1 = unlabelled truth or nodata prediction: not scored
    return t[ok].astype(np.int64), p[ok].astype(np.int64)


def _names(class_names, k: int) -> list[str]:
    if class_names is None:
        return [str(i) for i in range(k)]
    names = (
        [class_names[i] for i in sorted(class_names)]
        if isinstance(class_names, Mapping)
        else list(class_names)
    )
    if len(names) < k:
        raise InvalidInputError(f"{len(names)} class names for class ids up to {k - 1}")
    return [str(n) for n in names]


def confusion_matrix(
    y_true: ArrayLike, y_pred: ArrayLike, *, class_names: Sequence[str] | Mapping[int, str] | None = None
) -> pd.DataFrame:
    """Counts with true classes as rows and predicted classes as columns; −1 on either side is skipped."""
    t, p = _pairs(y_true, y_pred)
    k = max(int(t.max(initial=-1)), int(p.max(initial=-1))) + 1
    if class_names is not None:
        k = max(k, len(class_names))
    names = _names(class_names, k)
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (t, p), 1)
    return pd.DataFrame(cm, index=pd.Index(names, name="true"), columns=pd.Index(names, name="predicted"))


def summary(table: pd.DataFrame, prefix: str = "") -> dict[str, float]:
    """Flat dict of the headline numbers of a :func:`scores` table (OA, κ, macro F1, F1 of each class), handy
    for report.record."""
    out = {f"{prefix}{k}": table.attrs[k] for k in ("overall_accuracy", "kappa", "macro_f1")}
    for name, row in table.iterrows():
        out[f"{prefix}f1_{name}"] = float(row["f1"])
    return out


def score_confusion(table: pd.DataFrame) -> pd.DataFrame:
    """The confusion matrix (true classes as rows, predicted as columns) a :func:`scores` table was made from.

    It travels in the table's ``attrs["confusion"]`` as plain lists (``classes``, ``counts``) so that tables
    stay comparable and concatenable.
    """
    conf = table.attrs.get("confusion")
    if conf is None:
        raise InvalidInputError("not a table from rice.evaluate.scores: it has no attrs['confusion']")
    names = conf["classes"]
    return pd.DataFrame(
        np.asarray(conf["counts"], np.int64),
        index=pd.Index(names, name="true"),
        columns=pd.Index(names, name="predicted"),
    )


def scores(
    y_true: ArrayLike, y_pred: ArrayLike, *, class_names: Sequence[str] | Mapping[int, str] | None = None
) -> pd.DataFrame:
    """Per-class precision / recall / F1 / IoU, with overall accuracy, Cohen's κ, macro F1 and the confusion
    matrix, as one tidy table.

    ``y_true`` and ``y_pred`` are arrays, Series or DataArrays of class ids of the same size (e.g. a truth
    raster and a predicted class map on the same grid); pixels with −1 (or NaN) on either side are skipped.
    Precision or recall of a class never predicted / never present is NaN, not 0.

    Returns
    -------
    pd.DataFrame
        One row per class (index ``class``): ``precision``, ``recall``, ``f1``, ``iou``, ``support`` (true
        pixels/points). ``attrs``: ``units`` of the columns and headline numbers, ``overall_accuracy``,
        ``kappa``, ``macro_f1`` (over classes present in the truth), ``n`` (pixels/points scored) and
        ``confusion`` (plain lists; :func:`score_confusion` gives it as a DataFrame).
    """
    cm_df = confusion_matrix(y_true, y_pred, class_names=class_names)
    cm = cm_df.to_numpy().astype(float)
    n = cm.sum()
    if n == 0:
        raise InvalidInputError(
            "nothing to score: no pixel/point has both a label and a prediction (all −1 or NaN)"
        )
    tp = np.diag(cm)
    pred_tot, true_tot = cm.sum(0), cm.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(pred_tot > 0, tp / pred_tot, np.nan)
        recall = np.where(true_tot > 0, tp / true_tot, np.nan)
        f1 = np.where(pred_tot + true_tot > 0, 2 * tp / (pred_tot + true_tot), np.nan)
        iou = np.where(pred_tot + true_tot - tp > 0, tp / (pred_tot + true_tot - tp), np.nan)
    oa = tp.sum() / n
    pe = (pred_tot * true_tot).sum() / n**2
    kappa = (oa - pe) / (1 - pe) if pe < 1 else 1.0
    per_class = pd.DataFrame(
        {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "iou": iou,
            "support": true_tot.astype(np.int64),
        },
        index=pd.Index(cm_df.index, name="class"),
    )
    present = true_tot > 0
    macro = float(np.nanmean(f1[present])) if present.any() else float("nan")
    per_class.attrs = {
        "units": dict(SCORE_UNITS),
        "overall_accuracy": float(oa),
        "kappa": float(kappa),
        "macro_f1": macro,
        "n": int(n),
        "confusion": {"classes": list(cm_df.index), "counts": cm_df.to_numpy().tolist()},
    }
    return per_class


def sample_at(class_map: xr.DataArray, points: pd.DataFrame, *, x: str = "x", y: str = "y") -> pd.Series:
    """Class of the map pixel under each point (nearest pixel; −1 outside the map).

    ``points`` needs coordinate columns in the map's CRS (``x``/``y`` by default).
    """
    if not {x, y} <= set(points.columns):
        raise InvalidInputError(f"points need coordinate columns {x!r} and {y!r} in the map's CRS")
    xs, ys = class_map["x"].values, class_map["y"].values
    dx = abs(xs[1] - xs[0]) if xs.size > 1 else np.inf
    dy = abs(ys[1] - ys[0]) if ys.size > 1 else np.inf

    def nearest(coord: np.ndarray, values: np.ndarray) -> np.ndarray:
        order = np.argsort(coord)
        pos = np.searchsorted(coord[order], values).clip(1, len(coord) - 1)
        left, right = order[pos - 1], order[pos]
        return np.where(np.abs(coord[left] - values) <= np.abs(coord[right] - values), left, right)

    px, py = points[x].to_numpy(float), points[y].to_numpy(float)
    ci, ri = nearest(xs, px), nearest(ys, py)
    inside = (np.abs(xs[ci] - px) <= dx / 2 + 1e-9 * dx) & (np.abs(ys[ri] - py) <= dy / 2 + 1e-9 * dy)
    values = class_map.transpose("y", "x").values[ri, ci]
    return pd.Series(np.where(inside, values, -1).astype(np.int64), index=points.index, name="class")


def independent_evaluation(
    model_or_map: RiceModel | xr.DataArray,
    points: pd.DataFrame,
    *,
    class_names: Sequence[str] | Mapping[int, str] | None = None,
) -> pd.DataFrame:
    """Score a model or a class map on a separate, independently collected point set (a :func:`scores` table).

    ``model_or_map`` is a per-pixel :class:`~terralab.rice.checkpoint.RiceModel` (the points then need its
    band columns), or a class map ``xr.DataArray (y, x)`` (the points then need ``x``/``y`` in its CRS).
    """
    from .checkpoint import RiceModel
    from .points import predict_points

    if "class" not in points.columns:
        raise InvalidInputError("independent points need a 'class' column")
    if isinstance(model_or_map, RiceModel):
        pred = predict_points(model_or_map, points)["class"]
        names = class_names or model_or_map.class_names
    elif isinstance(model_or_map, xr.DataArray):
        pred = sample_at(model_or_map, points)
        names = class_names or model_or_map.attrs.get("class_names")
    else:
        raise InvalidInputError("give a RiceModel or a class map (xr.DataArray (y, x))")
    return scores(points["class"], pred, class_names=names)


def compare_scores(results: Mapping[str, pd.DataFrame], *, focus_class: str = "rice") -> pd.DataFrame:
    """One row per model: overall accuracy, κ, macro F1 and the focus class's precision, recall, F1, IoU.

    ``results`` maps a model's name to its :func:`scores` table; units in ``attrs["units"]``.
    """
    rows = {}
    for name, s in results.items():
        row = {k: s.attrs[k] for k in ("overall_accuracy", "kappa", "macro_f1")}
        if focus_class in s.index:
            for col in ("precision", "recall", "f1", "iou"):
                row[f"{focus_class}_{col}"] = float(s.loc[focus_class, col])
        row["n"] = s.attrs["n"]
        rows[name] = row
    table = pd.DataFrame(rows).T
    table["n"] = table["n"].astype(int)
    table.index.name = "model"
    table.attrs["units"] = {
        c: SCORE_UNITS[c.removeprefix(f"{focus_class}_")]
        for c in table.columns
        if c.removeprefix(f"{focus_class}_") in SCORE_UNITS
    }
    return table


def band_model_table(
    results: Mapping[tuple[str, str], pd.DataFrame | float], *, metric: str = "macro_f1"
) -> pd.DataFrame:
    """Lay results out like the paper's table: one row per model type, one column per band set.

    ``results`` maps ``(model, band_set)`` to a :func:`scores` table (``metric`` picks ``macro_f1``,
    ``overall_accuracy``, ``kappa`` or ``f1_<class>``) or to a number.
    """
    rows: dict[str, dict[str, float]] = {}
    for (model, band_set), value in results.items():
        if isinstance(value, pd.DataFrame):
            if metric.startswith("f1_"):
                value = float(value.loc[metric[3:], "f1"])
            else:
                value = float(value.attrs[metric])
        rows.setdefault(model, {})[band_set] = float(value)
    table = pd.DataFrame(rows).T
    order = [b for b in ("RGBN", "RGBNE", "RGBNS", "RGBNES") if b in table.columns]
    table = table[order + [c for c in table.columns if c not in order]]
    table.index.name = "model"
    table.columns.name = metric
    return table


def compare_band_sets(
    stack: xr.DataArray,
    train_labels: xr.DataArray,
    test_labels: xr.DataArray,
    *,
    band_sets: Sequence[str] = ("RGBN", "RGBNE", "RGBNS", "RGBNES"),
    models: Sequence[str] = ("unet", "dnn"),
    validation: xr.DataArray | None = None,
    seed: int = 0,
    fit_kwargs: Mapping[str, Mapping] | None = None,
    progress: bool | None = None,
) -> tuple[pd.DataFrame, dict[tuple[str, str], pd.DataFrame]]:
    """Train every model type on every band set and score it on ``test_labels`` (the paper's comparison).

    Returns the :func:`band_model_table` of macro F1 and the full :func:`scores` table per (model, band set).
    """
    from .inference import predict
    from .training import fit

    results: dict[tuple[str, str], pd.DataFrame] = {}
    for model in models:
        for band_set in band_sets:
            kwargs = dict((fit_kwargs or {}).get(model, {}))
            m = fit(
                stack,
                train_labels,
                model=model,
                bands=band_set,
                validation=validation,
                seed=seed,
                progress=progress,
                **kwargs,
            )
            pred = predict(m, stack, progress=False)
            results[(model, band_set)] = scores(test_labels, pred, class_names=m.class_names)
    return band_model_table(results), results


def calibration(
    probability: xr.DataArray | xr.Dataset | pd.DataFrame | np.ndarray, truth: ArrayLike, *, n_bins: int = 15
) -> pd.DataFrame:
    """The reliability table of class probabilities against true labels, with the expected calibration error.

    Parameters
    ----------
    probability
        ``(class, y, x)`` probabilities (``rice.predict(..., output="proba")``), the Dataset of
        ``rice.predict(..., return_proba=True)``, or an ``(n, classes)`` array / DataFrame.
    truth
        True class ids on the same grid ``(y, x)`` or ``(n,)``; −1 (unlabelled) and pixels without a
        probability (NaN) are skipped.
    n_bins
        Equal-width confidence bins over [0, 1].

    Returns
    -------
    pd.DataFrame
        One row per confidence bin: ``bin_lower``, ``bin_upper``, ``count``, ``mean_confidence``, ``accuracy``
        (NaN in empty bins). ``attrs``: ``units`` of the columns and of ``ece``, ``ece`` (expected calibration
        error of the predicted class's probability) and ``n`` (pixels/points scored).

    Notes
    -----
    ECE = Σ_b (n_b / n) · |accuracy_b − mean confidence_b| over bins of the predicted class's probability
    (Guo et al. 2017); a perfectly calibrated model has ECE 0.
    """
    if isinstance(probability, xr.Dataset):
        probability = probability["probability"]
    if isinstance(probability, xr.DataArray):
        if "class" not in probability.dims:
            raise InvalidInputError("probabilities need a 'class' dimension")
        p = probability.transpose("class", ...).values.reshape(probability.sizes["class"], -1).T
    else:
        p = np.asarray(
            probability.values if isinstance(probability, pd.DataFrame) else probability, dtype=np.float64
        )
        if p.ndim != 2:
            raise InvalidInputError("an array of probabilities must be (n, classes)")
    t = _flat(truth)
    if t.size != p.shape[0]:
        raise InvalidInputError(
            f"{p.shape[0]} probability rows for {t.size} labels: put them on the same grid"
        )
    t = np.where(np.isnan(t), -1, t) if t.dtype.kind == "f" else t
    ok = (t >= 0) & np.isfinite(p).all(axis=1)
    if not ok.any():
        raise InvalidInputError("nothing to score: no labelled pixel with a probability")
    p, t = p[ok], t[ok].astype(np.int64)
    conf = p.max(axis=1)
    correct = p.argmax(axis=1) == t
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, weights=conf, minlength=n_bins) / count
        accuracy = np.bincount(which, weights=correct, minlength=n_bins) / count
    ece = float(np.nansum(count / count.sum() * np.abs(accuracy - mean_conf)))
    table = pd.DataFrame(
        {
            "bin_lower": edges[:-1],
            "bin_upper": edges[1:],
            "count": count,
            "mean_confidence": mean_conf,
            "accuracy": accuracy,
        }
    )
    table.attrs = {"units": dict(CALIBRATION_UNITS), "ece": ece, "n": int(count.sum())}
    return table
