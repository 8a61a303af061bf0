"""Compare detected vehicles with ground truth: matching, precision, recall, speed error, class accuracy."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InvalidInputError

__all__ = ["match", "score"]


def match(detections, truth, *, time_tol_s: float = 1.5, distance_tol_m: float = 10.0, speed_tol: float = 0.25):
    """One-to-one matching of detections to true vehicles (Hungarian assignment).

    A pair may match when the mid-section times differ by at most ``time_tol_s`` seconds or, for slow
    vehicles, by the time the vehicle needs to travel ``distance_tol_m`` (an 18 m truck at 12 km/h takes 5 s to
    pass a point), and the speeds by at most ``speed_tol`` (relative). The cost prefers close times, close
    speeds and equal directions.

    Returns
    -------
    pandas.DataFrame
        ``det_index``, ``truth_index`` (row labels), ``dt_s`` (detected - true time), ``speed_err`` (relative),
        ``direction_ok``, ``class_ok``.
    """
    import pandas as pd
    from scipy.optimize import linear_sum_assignment

    for name, df in (("detections", detections), ("truth", truth)):
        for col in ("time", "speed_kmh", "direction"):
            if col not in df.columns:
                raise InvalidInputError(f"{name} lacks column {col!r}")
    cols = ["det_index", "truth_index", "dt_s", "speed_err", "direction_ok", "class_ok"]
    if len(detections) == 0 or len(truth) == 0:
        return pd.DataFrame(columns=cols)
    td = detections["time"].to_numpy().astype("datetime64[ns]").astype(np.int64) / 1e9
    tt = truth["time"].to_numpy().astype("datetime64[ns]").astype(np.int64) / 1e9
    vd = detections["speed_kmh"].to_numpy(dtype=float)
    vt = truth["speed_kmh"].to_numpy(dtype=float)
    dd = detections["direction"].to_numpy()
    dtr = truth["direction"].to_numpy()
    dt = td[:, None] - tt[None, :]
    sv = np.abs(np.log(vd[:, None] / vt[None, :]))
    tol = np.maximum(time_tol_s, distance_tol_m / (vt / 3.6))[None, :]
    ok = (np.abs(dt) <= tol) & (sv <= np.log1p(speed_tol))
    cost = np.abs(dt) / tol + sv / np.log1p(speed_tol) + 2.0 * (dd[:, None] != dtr[None, :])
    big = 1e6
    cost = np.where(ok, cost, big)
    ri, ci = linear_sum_assignment(cost)
    keep = cost[ri, ci] < big
    ri, ci = ri[keep], ci[keep]
    out = pd.DataFrame({
        "det_index": detections.index.to_numpy()[ri],
        "truth_index": truth.index.to_numpy()[ci],
        "dt_s": dt[ri, ci],
        "speed_err": vd[ri] / vt[ci] - 1.0,
        "direction_ok": dd[ri] == dtr[ci],
    })
    if "vehicle_class" in detections.columns and "vehicle_class" in truth.columns:
        out["class_ok"] = detections["vehicle_class"].to_numpy()[ri] == truth["vehicle_class"].to_numpy()[ci]
    else:
        out["class_ok"] = np.nan
    return out[cols]


def score(detections, truth, **match_kwargs: Any) -> dict[str, float]:
    """Headline metrics of a detection run against truth.

    Returns a dict with ``n_true``, ``n_detected``, ``true_positives``, ``precision``, ``recall``, ``f1``,
    ``speed_error_median_pct`` / ``speed_error_p95_pct`` (absolute, %), ``speed_within_5pct`` (fraction of
    matches), ``time_error_median_s``, ``direction_accuracy`` and ``class_accuracy`` (over matches), and
    ``count_error_pct`` (detected vs true count).
    """
    pairs = match(detections, truth, **match_kwargs)
    n_true, n_det, tp = len(truth), len(detections), len(pairs)
    precision = tp / n_det if n_det else float("nan")
    recall = tp / n_true if n_true else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    err = np.abs(pairs["speed_err"].to_numpy(dtype=float)) * 100 if tp else np.array([np.nan])
    out = {
        "n_true": int(n_true),
        "n_detected": int(n_det),
        "true_positives": int(tp),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "count_error_pct": float(100 * (n_det - n_true) / n_true) if n_true else float("nan"),
        "speed_error_median_pct": float(np.median(err)),
        "speed_error_p95_pct": float(np.percentile(err, 95)),
        "speed_within_5pct": float(np.mean(err <= 5.0)) if tp else float("nan"),
        "time_error_median_s": float(np.median(np.abs(pairs["dt_s"]))) if tp else float("nan"),
        "direction_accuracy": float(pairs["direction_ok"].mean()) if tp else float("nan"),
        "class_accuracy": float(pairs["class_ok"].astype(float).mean()) if tp else float("nan"),
    }
    return out
