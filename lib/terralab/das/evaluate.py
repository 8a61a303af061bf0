"""Compare detected vehicles with ground truth: matching, precision, recall, speed error, class accuracy.

Examples
--------
Detections of the named urban scene with one listed car, scored against its truth:

>>> import pandas as pd
>>> from terralab import das
>>> from terralab.das import synthetic
>>> car = pd.DataFrame({"time_s": [15.0], "speed_kmh": [40.0], "direction": [1], "vehicle_class": ["car"]})
>>> data, truth = synthetic.urban_street(duration_s=30, n_channels=40, seed=2, vehicles=car)
>>> scores = das.score(das.detect_vehicles(data, site="urban"), truth)
>>> scores[["n_true", "n_detected", "recall", "precision"]].to_dict("records")
[{'n_true': 1, 'n_detected': 1, 'recall': 1.0, 'precision': 1.0}]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidInputError
from ..progress import progress_bar
from .intervals import pool_scenes
from .params import KMH

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "SCORE_UNITS",
    "duplicates",
    "evaluate_runs",
    "evaluate_scenes",
    "match",
    "match_scene",
    "pair_gaps",
    "position_errors_m",
    "scene_matches",
    "score",
    "score_table",
]


#: The former keyword names of the tolerances (``tol``) and the names that replace them (``tolerance``).
_OLD_NAMES = {
    "time_tol_s": "time_tolerance_s",
    "distance_tol_m": "distance_tolerance_m",
    "speed_tol": "speed_tolerance",
}


def _tolerances(old_names: dict[str, float], **current: float) -> tuple[float, ...]:
    """The tolerances in ``current`` (keyed by their former names), each replaced by its former-name keyword
    from ``old_names`` where the caller used one (with a DeprecationWarning); unknown keywords: an error."""
    import warnings

    unknown = sorted(set(old_names) - set(current))
    if unknown:
        raise TypeError(f"unexpected keyword arguments {unknown}")
    out = []
    for old, value in current.items():
        if old in old_names:
            warnings.warn(f"{old} is deprecated; use {_OLD_NAMES[old]}", DeprecationWarning, stacklevel=3)
            value = old_names[old]
        out.append(value)
    return tuple(out)


def match(
    detections: pd.DataFrame,
    truth: pd.DataFrame,
    *,
    time_tolerance_s: float = 1.5,
    distance_tolerance_m: float = 10.0,
    speed_tolerance: float = 0.25,
    same_direction: bool = False,
    **old_names: float,
) -> pd.DataFrame:
    """One-to-one matching of detections to true vehicles (:func:`terralab.matching.match_one_to_one`,
    Hungarian assignment).

    A pair may match when the mid-section times differ by at most ``time_tolerance_s`` seconds or, for slow
    vehicles, by the time the vehicle needs to travel ``distance_tolerance_m`` (an 18 m truck at 12 km/h takes
    5 s to pass a point), and the speeds by at most ``speed_tolerance`` (relative). The cost prefers close
    times, close speeds and equal directions; ``same_direction=True`` allows only equal directions (a
    vehicle reported in the wrong direction is then missed, and the detection a false one; the scores of
    :func:`evaluate_runs`). The former names ``time_tol_s``, ``distance_tol_m`` and ``speed_tol`` are still
    accepted (with a ``DeprecationWarning``).

    Returns
    -------
    pandas.DataFrame
        ``det_index``, ``truth_index`` (row labels), ``dt_s`` (detected - true time), ``speed_err``
        (relative), ``direction_ok``, ``class_ok``.
    """
    import pandas as pd

    from ..matching import match_one_to_one

    time_tolerance_s, distance_tolerance_m, speed_tolerance = _tolerances(
        old_names,
        time_tol_s=time_tolerance_s,
        distance_tol_m=distance_tolerance_m,
        speed_tol=speed_tolerance,
    )
    for name, df in (("detections", detections), ("truth", truth)):
        for col in ("time", "speed_kmh", "direction"):
            if col not in df.columns:
                raise InvalidInputError(f"{name} lacks column {col!r}")
    cols = ["det_index", "truth_index", "dt_s", "speed_err", "direction_ok", "class_ok"]
    if len(detections) == 0 or len(truth) == 0:
        return pd.DataFrame(columns=cols)
    vd = detections["speed_kmh"].to_numpy(dtype=float)
    vt = truth["speed_kmh"].to_numpy(dtype=float)
    dt, tol, sv, same = pair_gaps(detections, truth, time_tolerance_s, distance_tolerance_m)
    ok = (np.abs(dt) <= tol) & (sv <= np.log1p(speed_tolerance))
    if same_direction:
        ok &= same
    cost = np.abs(dt) / tol + sv / np.log1p(speed_tolerance) + 2.0 * ~same
    pairs = match_one_to_one(np.where(ok, cost, np.inf))
    ri, ci = pairs["row"].to_numpy(), pairs["column"].to_numpy()
    out = pd.DataFrame(
        {
            "det_index": detections.index.to_numpy()[ri],
            "truth_index": truth.index.to_numpy()[ci],
            "dt_s": dt[ri, ci],
            "speed_err": vd[ri] / vt[ci] - 1.0,
            "direction_ok": same[ri, ci],
        }
    )
    if "vehicle_class" in detections.columns and "vehicle_class" in truth.columns:
        out["class_ok"] = detections["vehicle_class"].to_numpy()[ri] == truth["vehicle_class"].to_numpy()[ci]
    else:
        out["class_ok"] = np.nan
    return out[cols]


def pair_gaps(
    detections: pd.DataFrame, truth: pd.DataFrame, time_tolerance_s: float, distance_tolerance_m: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per detection (rows) and true vehicle (columns): the detected minus the true mid-section time (s),
    the vehicle's time window (``time_tolerance_s``, or the time it needs to travel ``distance_tolerance_m``
    where that is longer; broadcast over rows), the absolute log ratio of the speeds and whether the
    directions are equal - the geometry every scorer here compares against its tolerances."""
    td, tt = (
        df["time"].to_numpy().astype("datetime64[ns]").astype(np.int64) / 1e9 for df in (detections, truth)
    )
    vd, vt = detections["speed_kmh"].to_numpy(dtype=float), truth["speed_kmh"].to_numpy(dtype=float)
    window = np.maximum(time_tolerance_s, distance_tolerance_m / (vt / 3.6))[None, :]
    same = detections["direction"].to_numpy()[:, None] == truth["direction"].to_numpy()[None, :]
    return td[:, None] - tt[None, :], window, np.abs(np.log(vd[:, None] / vt[None, :])), same


def match_scene(
    detections: pd.DataFrame, truth: pd.DataFrame, **match_kwargs: Any
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`match` for a simulated scene whose vehicles recorded only partly are listed in
    ``truth.attrs["outside_record"]`` (they count neither way).

    One assignment over the whole and the partly recorded vehicles: a partly recorded vehicle takes only a
    detection that the assignment does not give to a whole one (matching them first let a vehicle leaving
    the record take the detection of a whole vehicle beside it, which then counted as missed). The
    detections it takes are dropped.

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame)
        The detections kept, and the pairs (:func:`match`'s columns) with the vehicles of ``truth``.
    """
    import pandas as pd

    partial = truth.attrs.get("outside_record")
    if partial is None or len(partial) == 0 or len(detections) == 0:
        return detections, match(detections, truth, **match_kwargs)
    cols = [c for c in ("time", "speed_kmh", "direction", "vehicle_class") if c in truth and c in partial]
    both = pd.concat([truth[cols], partial[cols]], ignore_index=True)
    pairs = match(detections, both, **match_kwargs)
    pos = pairs["truth_index"].to_numpy(dtype=int)
    whole = pos < len(truth)
    kept = detections.drop(index=pairs["det_index"].to_numpy()[~whole])
    pairs = pairs[whole].reset_index(drop=True)
    pairs["truth_index"] = truth.index.to_numpy()[pos[whole]]
    return kept, pairs


#: Units of the score columns (``df.attrs["units"]`` of :func:`score`, :func:`evaluate_runs` and
#: :func:`oracle_detectability`): "count", "1" (a fraction), "%", "s", "km/h".
SCORE_UNITS = {
    "n_true": "count",
    "n_detected": "count",
    "true_positives": "count",
    "n_scenes": "count",
    "duplicates": "count",
    "precision": "1",
    "recall": "1",
    "f1": "1",
    "count_error_pct": "%",
    "speed_error_median_pct": "%",
    "speed_error_p95_pct": "%",
    "speed_within_5pct": "1",
    "time_error_median_s": "s",
    "direction_accuracy": "1",
    "class_accuracy": "1",
    "speed_mae_kmh": "km/h",
    "position_mae_m": "m",
    "n_scored": "count",
    "n_null": "count",
    "n_detectable": "count",
    "detectable": "1",
    "auc": "1",
}


def score_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows of scores as a DataFrame with the units of its score columns in ``attrs["units"]``."""
    import pandas as pd

    df = pd.DataFrame(rows)
    df.attrs["units"] = {c: SCORE_UNITS[c] for c in df.columns if c in SCORE_UNITS}
    return df


def score(detections: pd.DataFrame, truth: pd.DataFrame, **match_kwargs: Any) -> pd.DataFrame:
    """Headline metrics of a detection run against truth, as a one-row DataFrame.

    Parameters
    ----------
    detections, truth : pandas.DataFrame
        Vehicle tables (``time``, ``speed_kmh``, ``direction``; ``vehicle_class`` for class accuracy).
    **match_kwargs
        Tolerances of :func:`match` (``time_tolerance_s``, ``distance_tolerance_m``, ``speed_tolerance``).

    Returns
    -------
    pandas.DataFrame
        One row: ``n_true``, ``n_detected``, ``true_positives``, ``precision``, ``recall``, ``f1``,
        ``count_error_pct`` (detected vs true count, signed), ``speed_error_median_pct`` /
        ``speed_error_p95_pct`` (absolute, %), ``speed_within_5pct`` (fraction of matches),
        ``time_error_median_s``, ``direction_accuracy`` and ``class_accuracy`` (over matches); units in
        ``attrs["units"]``.

    Example
    -------
    >>> das.score(vehicles, truth).loc[0, "recall"]   # doctest: +SKIP
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
    return score_table([out])


def duplicates(
    detections: pd.DataFrame,
    truth: pd.DataFrame,
    pairs: pd.DataFrame | None = None,
    *,
    time_tolerance_s: float = 2.5,
    speed_tolerance: float = 0.25,
    **old_names: float,
) -> int:
    """Unmatched detections that repeat a matched vehicle: same direction, speed within ``speed_tolerance``
    and mid-section time within ``time_tolerance_s`` (or the time to travel 10 m) of a true vehicle already
    matched. ``time_tol_s`` and ``speed_tol`` are the former names (still accepted, deprecated)."""
    time_tolerance_s, speed_tolerance = _tolerances(
        old_names, time_tol_s=time_tolerance_s, speed_tol=speed_tolerance
    )
    if pairs is None:
        pairs = match(detections, truth)
    from .losses import duplicate_mask

    return int(duplicate_mask(detections, truth, pairs, time_tolerance_s, speed_tolerance).sum())


def evaluate_scenes(
    simulator: str,
    site: str,
    seeds: Iterable[int],
    *,
    detect_kwargs: dict | None = None,
    per_scene: bool = False,
    progress: bool = False,
) -> pd.DataFrame:
    """Detect vehicles in random scenes of one simulator and site; pooled metrics (or one row per scene).

    Vehicles a scene records only partly (``truth.attrs["outside_record"]``) count neither way: a detection
    matched to one of them is dropped before scoring (:func:`match_scene`). A detection counts only in its
    vehicle's direction (``same_direction=True`` of :func:`match`).

    Returns
    -------
    pandas.DataFrame
        One row of pooled scores (:func:`~terralab.das.intervals.pool_scenes`): ``simulator``, ``site``,
        ``n_scenes``, ``n_true``, ``n_detected``, ``precision``, ``recall``, ``f1``, ``count_error_pct``
        (|detected - true| / true over the pool), ``duplicates`` (count), ``speed_mae_kmh``,
        ``position_mae_m`` (where the vehicle is at its detected mid-section time: |time error| x true
        speed, m), ``class_accuracy``. With ``per_scene=True`` one row per scene: ``simulator``, ``site``,
        ``seed``, ``n_true``, ``n_detected``, ``true_positives`` and the last four (intervals:
        :func:`~terralab.das.intervals.scene_intervals`). Units in ``attrs["units"]``.
    """
    runs = {"run": dict(detect_kwargs or {})}
    table = evaluate_runs(simulator, site, seeds, runs, per_scene=per_scene, progress=progress)
    return table.drop(columns="run")


def position_errors_m(pairs: pd.DataFrame, truth: pd.DataFrame) -> np.ndarray:
    """Where each matched vehicle of :func:`match_scene`'s ``pairs`` is at its detected mid-section time: the
    distance (m) it travels in the time error, ``|dt_s|`` x its true speed (``truth`` by ``truth_index``).

    >>> import pandas as pd
    >>> pairs = pd.DataFrame({"truth_index": [0, 1], "dt_s": [-0.5, 0.2]})
    >>> position_errors_m(pairs, pd.DataFrame({"speed_kmh": [36.0, 72.0]})).tolist()
    [5.0, 4.0]
    """
    speed = truth.loc[pairs["truth_index"].to_numpy(), "speed_kmh"].to_numpy(dtype=float) * KMH
    return np.abs(pairs["dt_s"].to_numpy(dtype=float)) * speed


def scene_matches(
    simulator: str,
    site: str,
    seeds: Iterable[int],
    runs: dict[Any, dict],
    *,
    progress: bool = False,
) -> Iterator[tuple[int, pd.DataFrame, dict[Any, tuple[pd.DataFrame, pd.DataFrame]]]]:
    """Per seed, a random scene of ``simulator`` and ``site`` detected once per run: ``(seed, truth,
    {name: (detections, pairs)})``, the detections and pairs of :func:`match_scene` (``same_direction=True``)
    for each run of ``runs`` (a name -> keyword arguments of :func:`~terralab.das.detect.detect_vehicles`).
    Each scene is made once and dropped before the next; the per-vehicle view under :func:`evaluate_runs`."""
    from . import synthetic
    from .detect import detect_vehicles

    for seed in progress_bar(list(seeds), desc=f"{simulator}/{site}", enabled=progress):
        data, truth = synthetic.random_scene(simulator, site, int(seed))
        matched = {
            name: match_scene(detect_vehicles(data, **kw), truth, same_direction=True)
            for name, kw in runs.items()
        }
        del data
        yield int(seed), truth, matched


def evaluate_runs(
    simulator: str,
    site: str,
    seeds: Iterable[int],
    runs: dict[str, dict],
    *,
    per_scene: bool = False,
    progress: bool = False,
) -> pd.DataFrame:
    """:func:`evaluate_scenes` for several detector settings at once, each scene made only once.

    ``runs`` maps a name to the keyword arguments of :func:`~terralab.das.detect.detect_vehicles` (a
    ``classifier`` may be among them). Returns the table of :func:`evaluate_scenes` with a first column
    ``run`` (the name): one row per run (pooled), or per run and scene with ``per_scene=True``.
    """
    import pandas as pd

    rows: dict[str, list[dict]] = {name: [] for name in runs}
    for seed, truth, matched in scene_matches(simulator, site, seeds, runs, progress=progress):
        for name, (det, pairs) in matched.items():
            v_true = truth.loc[pairs["truth_index"].to_numpy(), "speed_kmh"].to_numpy(dtype=float)
            e = det.loc[pairs["det_index"].to_numpy(), "speed_kmh"].to_numpy() - v_true
            x_err = position_errors_m(pairs, truth)
            rows[name].append(
                {
                    "simulator": simulator,
                    "site": site,
                    "seed": int(seed),
                    "n_true": len(truth),
                    "n_detected": len(det),
                    "true_positives": len(pairs),
                    "duplicates": duplicates(det, truth, pairs),
                    "speed_mae_kmh": float(np.mean(np.abs(e))) if len(e) else np.nan,
                    "position_mae_m": float(np.mean(x_err)) if len(e) else np.nan,
                    "class_accuracy": float(np.mean(pairs["class_ok"].to_numpy(dtype=float)))
                    if len(pairs)
                    else np.nan,
                }
            )
    if per_scene:
        return score_table([{"run": name, **row} for name, scenes in rows.items() for row in scenes])
    return score_table(
        [
            {"run": name, "simulator": simulator, "site": site, **pool_scenes(pd.DataFrame(scenes))}
            for name, scenes in rows.items()
        ]
    )
