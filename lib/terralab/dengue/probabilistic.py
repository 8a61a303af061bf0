"""Quantile forecasts and how the forecast hubs score them: WIS, interval coverage, PIT, paired tests.

A probabilistic forecast here is a set of predictive quantiles at the forecast hubs' 23 levels
(:data:`QUANTILES`: 0.01, 0.025, 0.05, 0.10, 0.15, …, 0.90, 0.95, 0.975, 0.99), stored as columns ``q0.01`` …
``q0.99`` beside ``observed`` and the point ``forecast``.

Weighted interval score (Bracher, Ray, Gneiting & Reich 2021, PLoS Comput Biol 17:e1008618), for the median m
and K central intervals [l_k, u_k] at levels 1 − α_k:

    WIS = (0.5·|y − m| + Σ_k (α_k/2)·IS_α_k) / (K + 0.5),
    IS_α = (u − l) + (2/α)(l − y)·1[y < l] + (2/α)(y − u)·1[y > u].

With the 23 hub levels K = 11. It equals the mean of the pinball losses of the 2K + 1 quantiles times (2K +
1)/(K + 0.5), which is how :func:`wis` computes it; ``tests/dengue/test_dengue_probabilistic.py`` checks it
against the interval formula on a hand-computed case. Lower is better; the unit is cases/week.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import InvalidInputError

#: The 23 quantile levels of the forecast hubs (CDC FluSight, COVID-19 Forecast Hub, Infodengue–Mosqlimate).
QUANTILES: tuple[float, ...] = (
    (0.01, 0.025, 0.05) + tuple(round(0.1 + 0.05 * k, 2) for k in range(17)) + (0.95, 0.975, 0.99)
)


def quantile_column(level: float) -> str:
    """Column name of a quantile level: 0.025 → ``"q0.025"``, 0.1 → ``"q0.1"``."""
    return f"q{float(level):g}"


def check_quantiles(quantiles: Sequence[float] | None) -> tuple[float, ...]:
    """The quantile levels as a tuple of floats, strictly increasing, each in (0, 1).

    Raises
    ------
    InvalidInputError
        Empty, not numbers, outside (0, 1), unsorted or repeated.
    """
    if quantiles is None:
        return ()
    try:
        levels = tuple(float(q) for q in quantiles)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"quantiles must be numbers in (0, 1), got {quantiles!r}") from exc
    if not levels:
        raise InvalidInputError(
            "quantiles is empty: pass None for point forecasts or levels such as QUANTILES"
        )
    bad = [q for q in levels if not (0.0 < q < 1.0)]
    if bad:
        raise InvalidInputError(f"quantile levels must lie strictly between 0 and 1, got {bad}")
    if any(b <= a for a, b in itertools.pairwise(levels)):
        raise InvalidInputError(
            f"quantile levels must be strictly increasing (sorted, no repeats), got {levels}; "
            "e.g. terralab.dengue.QUANTILES"
        )
    return levels


def quantile_levels(frame: pd.DataFrame) -> tuple[list[float], list[str]]:
    """The quantile levels present as ``q…`` columns of ``frame`` (sorted) and their column names."""
    found = []
    for c in frame.columns:
        if isinstance(c, str) and c.startswith("q"):
            try:
                found.append((float(c[1:]), c))
            except ValueError:
                continue
    found.sort()
    return [q for q, _ in found], [c for _, c in found]


def tidy_quantiles(values: np.ndarray) -> np.ndarray:
    """Quantiles made non-negative and non-crossing along the last axis (NaN to 0, clip at 0, then sort).

    +inf becomes the largest value of the array's dtype (float32 outputs of the LSTM stay float32).
    """
    return np.sort(np.clip(np.nan_to_num(values, nan=0.0), 0.0, None), axis=-1)


# --------------------------------------------------------------------------------------------------
# scores of one row each
# --------------------------------------------------------------------------------------------------
def _arrays(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    levels, cols = quantile_levels(frame)
    if not cols:
        raise InvalidInputError(
            "no quantile columns (q0.01 … q0.99): run the backtest with quantiles=QUANTILES"
        )
    return frame["observed"].to_numpy(float), frame[cols].to_numpy(float), np.asarray(levels)


def pinball_loss(y: np.ndarray, q: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Pinball (quantile) loss of each quantile: (1[y < q] − τ)(q − y); shape of ``q``."""
    y = np.asarray(y, dtype=float)[..., None]
    return ((y < q).astype(float) - levels) * (q - y)


def wis(y: np.ndarray, q: np.ndarray, levels: Sequence[float]) -> np.ndarray:
    """Weighted interval score of each row from its quantiles (symmetric levels around the median 0.5).

    Parameters
    ----------
    y : (n,) observed counts
    q : (n, k) predictive quantiles at ``levels``
    levels : k levels, symmetric about 0.5 and including 0.5 (like :data:`QUANTILES`)

    >>> import numpy as np
    >>> wis(np.array([10.0]), np.array([[5.0, 10.0, 20.0]]), [0.05, 0.5, 0.95])
    array([0.5])
    """
    levels = np.asarray(levels, dtype=float)
    if not np.allclose(levels + levels[::-1], 1.0) or not np.any(np.isclose(levels, 0.5)):
        raise InvalidInputError(
            f"WIS needs quantile levels symmetric about the median and including 0.5, got {levels.tolist()}"
        )
    k_intervals = (len(levels) - 1) / 2
    return pinball_loss(y, q, levels).sum(axis=-1) / (k_intervals + 0.5)


def interval_coverage(y: np.ndarray, q: np.ndarray, levels: Sequence[float], central: float) -> np.ndarray:
    """1.0 where y lies inside the central ``central`` interval (e.g. 0.9: between q0.05 and q0.95), else
    0."""
    levels = np.asarray(levels, dtype=float)
    lo, hi = (1 - central) / 2, 1 - (1 - central) / 2
    i_lo, i_hi = np.flatnonzero(np.isclose(levels, lo)), np.flatnonzero(np.isclose(levels, hi))
    if not len(i_lo) or not len(i_hi):
        raise InvalidInputError(f"no quantiles {lo:g} and {hi:g} for the {central:.0%} interval")
    return ((y >= q[:, i_lo[0]]) & (y <= q[:, i_hi[0]])).astype(float)


def pit_values(forecasts: pd.DataFrame, *, seed: int = 0) -> np.ndarray:
    """Probability integral transform of each observation under its quantile forecast.

    The predictive CDF is the linear interpolation of the quantiles (below the lowest quantile level τ₁: τ₁/2;
    above the highest τ_K: (1 + τ_K)/2). Where several quantiles equal the observed count (discrete counts,
    e.g. many zeros) the PIT is drawn uniformly over their levels (the randomised PIT for discrete forecasts).
    Calibrated forecasts give a flat histogram.
    """
    y, q, levels = _arrays(forecasts)
    rng = np.random.default_rng(seed)
    below = (q < y[:, None]).sum(axis=1)
    at_or_below = (q <= y[:, None]).sum(axis=1)
    pit = np.empty(len(y))
    k = len(levels)
    ext = np.concatenate([[levels[0] / 2], levels, [(1 + levels[-1]) / 2]])
    for i in range(len(y)):
        lo, le = below[i], at_or_below[i]
        if le > lo:  # ties: uniform over the tied levels
            pit[i] = rng.uniform(levels[lo], levels[le - 1])
        elif lo == 0:
            pit[i] = ext[0]
        elif lo == k:
            pit[i] = ext[-1]
        else:
            q0, q1 = q[i, lo - 1], q[i, lo]
            pit[i] = levels[lo - 1] + (levels[lo] - levels[lo - 1]) * (y[i] - q0) / (q1 - q0)
    return pit


# --------------------------------------------------------------------------------------------------
# calibration over many forecasts
# --------------------------------------------------------------------------------------------------
def coverage_curve(forecasts: pd.DataFrame, by: str | None = "model") -> pd.DataFrame:
    """Empirical coverage of every central interval the quantiles give (2 %, 5 %, 10 %, 20 %, …, 98 %).

    Returns a DataFrame indexed by nominal coverage with one column per value of ``by`` (or one column
    ``all``). A calibrated forecaster lies on the diagonal.
    """
    groups = forecasts.groupby(by, sort=False) if by else [("all", forecasts)]
    levels, _ = quantile_levels(forecasts)
    nominal = sorted({round(1 - 2 * t, 4) for t in levels if t < 0.5})
    out = {}
    for name, sub in groups:
        y, q, lv = _arrays(sub)
        out[name] = [interval_coverage(y, q, lv, c).mean() for c in nominal]
    frame = pd.DataFrame(out, index=pd.Index(nominal, name="nominal"))
    return frame


# --------------------------------------------------------------------------------------------------
# paired comparison of two models
# --------------------------------------------------------------------------------------------------
def _loss_column(forecasts: pd.DataFrame, metric: str) -> pd.Series:
    if metric == "wis":
        y, q, levels = _arrays(forecasts)
        return pd.Series(wis(y, q, levels), index=forecasts.index)
    if metric == "ae":
        return (forecasts["forecast"] - forecasts["observed"]).abs()
    raise InvalidInputError(f"metric must be 'wis' or 'ae', got {metric!r}")


def paired_test(
    forecasts: pd.DataFrame,
    model: str,
    baseline: str,
    *,
    metric: str = "wis",
    block_weeks: int = 4,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict:
    """Is ``model``'s mean ``metric`` lower than ``baseline``'s on the same forecasts? Paired over origins.

    The two models' losses are matched row by row (location, origin, horizon), averaged per forecast origin,
    and their difference d_o = loss(model) − loss(baseline) is tested two ways:

    * Diebold–Mariano: mean(d) / its standard error with a Newey–West (Bartlett) long-run variance of
      ``block_weeks`` − 1 lags (forecasts of neighbouring origins overlap up to the horizon), two-sided normal
      p-value;
    * a moving-block bootstrap over origins (blocks of ``block_weeks``), ``n_boot`` resamples: 95 % interval
      of the ratio of mean losses and the share of resamples in which the model is not better (one-sided p).

    Returns
    -------
    dict with ``model``, ``baseline``, ``metric``, ``n_origins``, ``n_pairs``, ``mean_model``,
    ``mean_baseline``, ``ratio``, ``dm_stat``, ``p_value`` (Diebold–Mariano, two-sided), ``p_bootstrap``
    (one-sided), ``ratio_ci95``.
    """
    if "model" not in forecasts.columns:
        raise InvalidInputError("paired_test needs the long frame of rolling_backtest (a 'model' column)")
    have = set(forecasts["model"].unique())
    for name in (model, baseline):
        if name not in have:
            raise InvalidInputError(f"no forecasts of model {name!r}; the frame has {sorted(have)}")
    keys = ["location", "origin", "horizon"]
    a = forecasts[forecasts["model"] == model]
    b = forecasts[forecasts["model"] == baseline]
    a = a.assign(loss=_loss_column(a, metric).to_numpy())[keys + ["loss"]]
    b = b.assign(loss=_loss_column(b, metric).to_numpy())[keys + ["loss"]]
    pairs = a.merge(b, on=keys, suffixes=("_m", "_b"), validate="one_to_one")
    if pairs.empty:
        raise InvalidInputError(f"{model} and {baseline} share no (location, origin, horizon) forecasts")
    per_origin = pairs.groupby("origin", sort=True)[["loss_m", "loss_b"]].mean()
    d = (per_origin["loss_m"] - per_origin["loss_b"]).to_numpy()
    n = len(d)
    dbar = float(d.mean())
    lags = max(0, min(int(block_weeks) - 1, n - 1))
    dc = d - dbar
    lrv = float(dc @ dc) / n
    for k in range(1, lags + 1):
        lrv += 2 * (1 - k / (lags + 1)) * float(dc[k:] @ dc[:-k]) / n
    from scipy import stats

    se = np.sqrt(max(lrv, 1e-300) / n)
    dm = dbar / se if se > 0 else (0.0 if dbar == 0 else np.sign(dbar) * np.inf)
    p_value = float(2 * stats.norm.sf(abs(dm)))
    # moving-block bootstrap of the origins
    rng = np.random.default_rng(seed)
    block = max(1, min(int(block_weeks), n))
    n_blocks = int(np.ceil(n / block))
    starts = rng.integers(0, n - block + 1, size=(int(n_boot), n_blocks))
    idx = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(int(n_boot), -1)[:, :n]
    lm, lb = per_origin["loss_m"].to_numpy(), per_origin["loss_b"].to_numpy()
    ratios = lm[idx].mean(axis=1) / np.maximum(lb[idx].mean(axis=1), 1e-300)
    return {
        "model": model,
        "baseline": baseline,
        "metric": metric,
        "n_origins": n,
        "n_pairs": len(pairs),
        "mean_model": float(lm.mean()),
        "mean_baseline": float(lb.mean()),
        "ratio": float(lm.mean() / lb.mean()) if lb.mean() > 0 else np.nan,
        "dm_stat": float(dm),
        "p_value": p_value,
        "p_bootstrap": float(np.mean(ratios >= 1.0)),
        "ratio_ci95": (float(np.quantile(ratios, 0.025)), float(np.quantile(ratios, 0.975))),
    }


__all__ = [
    "QUANTILES",
    "check_quantiles",
    "coverage_curve",
    "interval_coverage",
    "paired_test",
    "pinball_loss",
    "pit_values",
    "quantile_column",
    "quantile_levels",
    "tidy_quantiles",
    "wis",
]
