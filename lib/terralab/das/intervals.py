"""Pooled scores of a set of scenes, and how far they would move on other scenes (a bootstrap over scenes).

Twenty random scenes are a sample of what a simulator makes; a pooled precision of 0.66 on them is worth
little without the range another twenty would give. :func:`pool_scenes` pools the per-scene rows of
:func:`~terralab.das.evaluate.evaluate_runs` (``per_scene=True``) exactly as its pooled table does, and
:func:`scene_intervals` redraws the scenes with replacement and reports percentile intervals of the pooled
precision, recall, F1, count error, speed MAE and class accuracy. Two settings whose F1 intervals overlap
widely on the same scenes are not told apart by them (the paired difference is narrower than either interval:
:func:`paired_difference`).

Examples
--------
Four scenes' counts; the pooled scores and their 90 % intervals over scenes:

>>> import pandas as pd
>>> from terralab.das.intervals import pool_scenes, scene_intervals
>>> per_scene = pd.DataFrame({"n_true": [10, 12, 9, 11], "n_detected": [10, 11, 10, 12],
...                           "true_positives": [9, 10, 8, 10], "duplicates": [0, 1, 0, 1],
...                           "speed_mae_kmh": [1.0, 2.0, 1.5, 1.0],
...                           "class_accuracy": [1.0, 0.9, 0.875, 1.0]})
>>> pooled = pool_scenes(per_scene)
>>> round(pooled["precision"], 3), round(pooled["recall"], 3), round(pooled["f1"], 3)
(0.86, 0.881, 0.871)
>>> ci = scene_intervals(per_scene, n_boot=500, seed=0)
>>> bool(ci.loc["f1", "low"] <= pooled["f1"] <= ci.loc["f1", "high"])
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["INTERVAL_METRICS", "paired_difference", "pool_scenes", "scene_intervals"]

#: The pooled scores :func:`scene_intervals` gives intervals for.
INTERVAL_METRICS = ("precision", "recall", "f1", "count_error_pct", "speed_mae_kmh", "class_accuracy")
_NEEDED = ("n_true", "n_detected", "true_positives", "duplicates", "speed_mae_kmh", "class_accuracy")


def pool_scenes(per_scene: pd.DataFrame) -> dict[str, Any]:
    """Pooled scores of per-scene rows (``n_true``, ``n_detected``, ``true_positives``, ``duplicates``,
    ``speed_mae_kmh``, ``class_accuracy``, optionally ``position_mae_m``): counts summed, precision and recall
    of the sums, F1 of those, the count error |detected - true| / true of the sums (%), and the speed (and
    position) MAE and class accuracy over every matched vehicle (each scene's value weighted by its matches;
    scenes without a match count nowhere)."""
    _check(per_scene)
    n_true = int(per_scene["n_true"].sum())
    n_det = int(per_scene["n_detected"].sum())
    tp_scene = per_scene["true_positives"].to_numpy(dtype=float)
    tp = int(tp_scene.sum())
    precision = tp / n_det if n_det else float("nan")
    recall = tp / n_true if n_true else float("nan")
    hit = tp_scene > 0

    def per_match(col: str) -> float:
        if not hit.any():
            return float("nan")
        return float(np.sum(per_scene[col].to_numpy(dtype=float)[hit] * tp_scene[hit]) / tp)

    extra = {"position_mae_m": per_match("position_mae_m")} if "position_mae_m" in per_scene else {}
    return {
        "n_scenes": len(per_scene),
        "n_true": n_true,
        "n_detected": n_det,
        "precision": precision,
        "recall": recall,
        "f1": 2 * tp / (n_true + n_det) if n_true + n_det else float("nan"),
        "count_error_pct": 100.0 * abs(n_det - n_true) / n_true if n_true else float("nan"),
        "duplicates": int(per_scene["duplicates"].sum()),
        "speed_mae_kmh": per_match("speed_mae_kmh"),
        "class_accuracy": per_match("class_accuracy"),
        **extra,
    }


def scene_intervals(
    per_scene: pd.DataFrame, *, level: float = 0.9, n_boot: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """Percentile intervals of the pooled scores (:data:`INTERVAL_METRICS`) over ``n_boot`` redraws of the
    scenes with replacement: one row per score, columns ``value`` (on the scenes given), ``low``, ``high``
    (the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles). Reproducible for a given ``seed``."""
    import pandas as pd

    _check(per_scene, level, n_boot)
    draws = _draws([per_scene], n_boot, seed, lambda pooled: [pooled[m] for m in INTERVAL_METRICS])
    value = pool_scenes(per_scene)
    q = [(1 - level) / 2, (1 + level) / 2]
    out = {m: [value[m], *np.nanquantile(draws[:, i], q)] for i, m in enumerate(INTERVAL_METRICS)}
    return pd.DataFrame.from_dict(out, orient="index", columns=["value", "low", "high"])


def paired_difference(
    a: pd.DataFrame,
    b: pd.DataFrame,
    metric: str = "f1",
    *,
    level: float = 0.9,
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(difference, low, high): pooled ``metric`` of ``b`` minus that of ``a``, two settings run on the SAME
    scenes (per-scene rows in the same order), with its percentile interval over paired redraws of the scenes.
    An interval that holds 0 says the scenes do not tell the two settings apart."""
    if metric not in INTERVAL_METRICS:
        raise InvalidInputError(f"unknown metric {metric!r}; choose one of {list(INTERVAL_METRICS)}")
    _check(a, level, n_boot)
    _check(b)
    if len(a) != len(b) or ("seed" in a and "seed" in b and list(a["seed"]) != list(b["seed"])):
        raise InvalidInputError("a and b must hold the same scenes in the same order (per-scene rows)")
    draws = _draws([a, b], n_boot, seed, lambda pa, pb: [pb[metric] - pa[metric]])
    diff = pool_scenes(b)[metric] - pool_scenes(a)[metric]
    low, high = np.nanquantile(draws[:, 0], [(1 - level) / 2, (1 + level) / 2])
    return float(diff), float(low), float(high)


def _draws(tables: list, n_boot: int, seed: int, combine) -> np.ndarray:
    """``combine(pooled scores of each table)`` for ``n_boot`` redraws of the scenes with replacement (the
    same row positions in every table): one row per redraw."""
    rng = np.random.default_rng(seed)
    n = len(tables[0])
    out = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        out.append(combine(*[pool_scenes(t.iloc[idx]) for t in tables]))
    return np.asarray(out, dtype=float)


def _check(per_scene, level: float = 0.9, n_boot: int = 10) -> None:
    """Raise on a table that is not per-scene rows of one run, or on an interval level / redraw count that
    makes no interval."""
    if not 0 < level < 1:
        raise InvalidInputError(f"level must be in (0, 1), got {level}; 0.9 gives a 90 % interval")
    if n_boot < 10:
        raise InvalidInputError(f"n_boot must be at least 10, got {n_boot}")
    missing = [c for c in _NEEDED if c not in getattr(per_scene, "columns", ())]
    if missing:
        raise InvalidInputError(
            f"per-scene table lacks {missing}; pass evaluate_runs(..., per_scene=True) rows of one run"
        )
    if len(per_scene) == 0:
        raise InvalidInputError("no scenes: the per-scene table is empty")
