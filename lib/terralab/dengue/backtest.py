"""Backtests and scores: one interface over every model, baselines always at hand.

A backtest fits a model once on targets before ``test_start`` and forecasts every test week ``horizon`` weeks
ahead from the data available at that time (the forecast origin moves through the test window; the fitted
parameters do not).

Examples
--------
>>> from terralab import dengue
>>> cases = dengue.load_cases()  # the five DengueNet cities (embedded: offline)
>>> fc = dengue.backtest(cases, model="persistence")  # 2018w37–w52, one week ahead
>>> round(float(dengue.score(fc)["mae"].mean()), 2)
8.78
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import DataNotAvailableError, InvalidInputError
from . import cases as _cases
from . import weeks as _weeks
from .models import BASELINES, MODELS, Forecaster, Panel, make_model, single_thread, whole_weeks
from .probabilistic import check_quantiles, interval_coverage, quantile_column, quantile_levels, wis

if TYPE_CHECKING:
    import xarray as xr

    from .weeks import WeekLike

WEEK = pd.Timedelta(days=7)


def available_models(*, images: bool = True) -> list[str]:
    """Names accepted by :func:`backtest`'s ``model``; ``images=False`` leaves out the image model
    (DengueNet)."""
    return [n for n, cls in MODELS.items() if images or not cls.uses_images]


def _source_covariates(cases: pd.DataFrame, who: str):
    """Covariates of the cases' source for its locations, or None (with a warning when they cannot be had)."""
    source = cases.attrs.get("source")
    # a source that is not a loader's (e.g. "synthetic") has no covariates to load
    if not source or source not in _cases.available_sources() or not _cases.has_covariates(source):
        return None
    try:
        return _cases.load_covariates(source, list(cases.columns))
    except DataNotAvailableError as exc:
        warnings.warn(f"running {who} without covariates: {exc}", stacklevel=4)
        return None


def shared_covariates(
    covariates: pd.DataFrame | bool | None, cases: pd.DataFrame, models: Sequence[str | Forecaster]
) -> pd.DataFrame | bool | None:
    """Covariates for several backtests of the same cases: loaded once here instead of once per model.

    False (never) when the source has none for these locations, so each backtest does not try again.
    """
    if covariates is not None:
        return covariates
    users = [getattr(MODELS.get(m) if isinstance(m, str) else m, "uses_covariates", False) for m in models]
    if not any(users):
        return None
    loaded = _source_covariates(cases, "the covariate models")
    return False if loaded is None else loaded


def _resolve_covariates(covariates, cases: pd.DataFrame, model: Forecaster):
    if covariates is False or not model.uses_covariates:
        return None
    if covariates is None:
        covariates = _source_covariates(cases, model.name)
        if covariates is None:
            return None
    return _cases.align_covariates(covariates, cases)


def _resolve_images(
    images, cases: pd.DataFrame, model: Forecaster, train_end: pd.Timestamp, seed: int, progress: bool | None
):
    if not model.uses_images:
        return None
    if images is None:
        raise InvalidInputError(
            f"model {model.name!r} needs weekly images: pass images= an xarray DataArray (location, week, "
            "band, y, x) of Sentinel-2 cubes (e.g. terralab.dengue.synthetic.synthetic_s2_cubes or "
            "imagery.s2_weekly_mosaics_ee) or a Dataset of features from "
            "terralab.dengue.features.image_features"
        )
    import xarray as xr

    from .features import image_features

    if isinstance(images, xr.DataArray):
        images = image_features(images, train_end=train_end, seed=seed, progress=progress)
    if not isinstance(images, xr.Dataset) or "location" not in images.dims or "week" not in images.dims:
        raise InvalidInputError(
            "images must be a DataArray (location, week, band, y, x) or a feature Dataset with "
            "dims location and week"
        )
    have = set(images["location"].to_numpy().tolist())
    lacking = [c for c in cases.columns if c not in have]
    if lacking:
        raise InvalidInputError(f"images have no location(s) {lacking}; give one cube per case column")
    return images


def _check_window(
    cases: pd.DataFrame, test_start, test_end, horizon: int, lookback: int, model: Forecaster
) -> tuple[pd.Timestamp, pd.Timestamp]:
    start, end = _weeks.week_end(test_start, week53="raise"), _weeks.week_end(test_end, week53="raise")
    first, last = cases.index[0], cases.index[-1]
    span = f"{_weeks.week_label(first)}–{_weeks.week_label(last)}"
    if end < start:
        raise InvalidInputError(
            f"test_end {_weeks.week_label(end)} is before test_start {_weeks.week_label(start)}"
        )
    if start < first or end > last:
        raise InvalidInputError(
            f"test window {_weeks.week_label(start)}–{_weeks.week_label(end)} lies outside the data "
            f"({span}); choose test weeks inside it"
        )
    horizon = whole_weeks(horizon, "horizon")
    lookback = whole_weeks(lookback, "lookback")
    first_origin = start - int(horizon) * WEEK
    history = int((first_origin - first) / WEEK) + 1 if first_origin >= first else 0
    need = max(model.history_weeks(Panel(cases, horizon=horizon, lookback=lookback)), int(lookback))
    if need > history:
        raise InvalidInputError(
            f"lookback of {need} weeks is longer than the {history} week(s) of history before the first "
            f"forecast origin {_weeks.week_label(first_origin)} (data start {_weeks.week_label(first)}); "
            "shorten lookback or move test_start later"
        )
    return start, end


def backtest(
    cases: pd.DataFrame | str,
    model: str | Forecaster = "persistence",
    covariates: pd.DataFrame | bool | None = None,
    images: xr.DataArray | xr.Dataset | None = None,
    test_start: WeekLike = "2018w37",
    test_end: WeekLike = "2018w52",
    horizon: int = 1,
    lookback: int = 5,
    seed: int = 0,
    *,
    model_params: Mapping[str, Any] | None = None,
    progress: bool | None = None,
    quantiles: Sequence[float] | None = None,
) -> pd.DataFrame:
    """Fit ``model`` on weeks before ``test_start`` and forecast each test week ``horizon`` weeks ahead.

    Parameters
    ----------
    cases : DataFrame (week × location) or str
        From :func:`terralab.dengue.load_cases`, or a source name to load.
    model : str or Forecaster
        A name of :func:`available_models` or a model instance (:mod:`terralab.dengue.models`).
    covariates : DataFrame, None or False
        (variable, location) columns from :func:`load_covariates`. None: loaded from the cases' source when it
        has them and the model uses them; False: never.
    images : xarray DataArray or Dataset, optional
        Weekly image cubes (location, week, band, y, x) or precomputed features; only the image model uses
        them.
    test_start, test_end : week label, date or (year, week)
        First and last target week (inclusive), e.g. ``"2018w37"``.
    horizon : int
        Weeks ahead: the forecast of week t uses data up to week t − horizon.
    lookback : int
        Weeks of history the trained models see at each origin.
    seed : int
        Seed for every random step.
    model_params : mapping, optional
        Parameters for a model given by name, e.g. ``{"window_weeks": 4}``.
    quantiles : sequence of float, optional
        Quantile levels in (0, 1), increasing, e.g. :data:`terralab.dengue.QUANTILES` (the hubs' 23); adds one
        column ``q<level>`` each (cases/week, non-negative, non-crossing). How each model makes them:
        ``attrs["quantile_method"]``.

    Returns
    -------
    DataFrame with columns week (target week-ending Saturday), location, observed, forecast (cases/week; the
    model's point forecast: ``attrs["point_kind"]`` says whether it is the predictive median, the mean, or a
    rule such as last week's count), then the quantile columns when asked; ``attrs`` hold model, horizon,
    lookback, test_start, test_end.
    """
    levels = check_quantiles(quantiles)
    if isinstance(cases, str):
        cases = _cases.load_cases(cases)
    cases = _cases.validate_cases(cases)
    model = make_model(model, **dict(model_params or {}))
    start, end = _check_window(cases, test_start, test_end, horizon, lookback, model)
    train_end = start - WEEK
    panel = Panel(
        cases=cases, horizon=int(horizon), lookback=int(lookback), seed=int(seed), progress=progress
    )
    panel.covariates = _resolve_covariates(covariates, cases, model)
    panel.features = _resolve_images(images, cases, model, train_end, int(seed), progress)
    targets = cases.loc[start:end].index
    origins = targets - int(horizon) * WEEK
    with single_thread(torch=model.uses_torch):
        if model.trained:
            model.fit(panel, train_end)
        fc = model.forecast(panel, origins)
        if levels:
            model.calibrate(panel, train_end)
            qs = model.forecast_quantiles(panel, origins, fc, np.asarray(levels))
    fc.index = targets
    if not np.isfinite(fc.to_numpy()).all():
        raise InvalidInputError(f"model {model.name} produced non-finite forecasts; check its inputs")
    observed = cases.loc[targets]
    out = pd.DataFrame(
        {
            "week": np.repeat(targets.to_numpy(), cases.shape[1]),
            "location": np.tile(np.asarray(cases.columns, dtype=object), len(targets)),
            "observed": observed.to_numpy().ravel(),
            "forecast": fc[list(cases.columns)].to_numpy().ravel(),
        }
    )
    if levels:
        qs = qs.reshape(-1, len(levels))
        if not np.isfinite(qs).all():
            raise InvalidInputError(f"model {model.name} produced non-finite quantiles; check its inputs")
        out = pd.concat([out, pd.DataFrame(qs, columns=[quantile_column(q) for q in levels])], axis=1)
    out.attrs = {
        "model": model.name,
        "model_repr": repr(model),
        "horizon": int(horizon),
        "lookback": int(lookback),
        "point_kind": model.point_kind,
        "quantiles": list(levels),
        "quantile_method": model.quantile_method if levels else None,
        "test_start": _weeks.week_label(start),
        "test_end": _weeks.week_label(end),
        "seed": int(seed),
        "covariates": panel.covariates is not None,
        "source": cases.attrs.get("source"),
    }
    return out


def score(
    forecasts: pd.DataFrame, by: Sequence[str] | str | None = None, *, baseline: str | None = None
) -> pd.DataFrame:
    """Scores of forecasts per group: ``mae``, ``rmse`` (cases/week), ``smape`` (%), ``n``; with quantile
    columns also ``wis`` (cases/week), ``coverage_50``, ``coverage_90``, ``coverage_95``.

    Parameters
    ----------
    forecasts : DataFrame
        Output of :func:`backtest` or :func:`terralab.dengue.rolling_backtest`.
    by : column name(s)
        Groups, default ``["location"]``. When the frame has a ``model`` column, ``model`` is always the first
        group (scores mixing models mean nothing); ``by=[]`` then gives one row per model.
    baseline : str, optional
        A model of the frame: adds ``rel_wis`` and ``rel_mae``, each group's score over the baseline's in the
        same group (other ``by`` columns equal). Needs a ``model`` column.

    sMAPE = 100 · mean(2 |F − A| / (|A| + |F|)), with 0/0 counted as 0. WIS:
    :mod:`terralab.dengue.probabilistic`.
    """
    need = {"location", "observed", "forecast"}
    if not isinstance(forecasts, pd.DataFrame) or not need <= set(forecasts.columns):
        raise InvalidInputError(f"score needs a DataFrame with columns {sorted(need)} (backtest's output)")
    by = ["location"] if by is None else [by] if isinstance(by, str) else list(by)
    if "model" in forecasts.columns and "model" not in by:
        by = ["model"] + by
    missing = [c for c in by if c not in forecasts.columns]
    if missing:
        raise InvalidInputError(
            f"cannot group by {missing}: the forecasts have columns {list(forecasts.columns)}"
        )
    err = forecasts["forecast"].astype(float) - forecasts["observed"].astype(float)
    denom = forecasts["observed"].abs() + forecasts["forecast"].abs()
    ratio = np.where(denom > 0, 2 * err.abs() / denom.where(denom > 0, 1.0), 0.0)
    frame = pd.DataFrame({"ae": err.abs().to_numpy(), "se": (err**2).to_numpy(), "sr": ratio})
    levels, qcols = quantile_levels(forecasts)
    if qcols:
        y, q = forecasts["observed"].to_numpy(float), forecasts[qcols].to_numpy(float)
        frame["wis"] = wis(y, q, levels)
        for c in (0.5, 0.9, 0.95):
            frame[f"coverage_{round(100 * c)}"] = interval_coverage(y, q, levels, c)
    for c in by:
        frame[c] = forecasts[c].to_numpy()
    g = frame.groupby(by, sort=False) if by else frame.assign(_all=0).groupby("_all")
    out = pd.DataFrame(
        {
            "mae": g["ae"].mean(),
            "rmse": np.sqrt(g["se"].mean()),
            "smape": 100 * g["sr"].mean(),
            "n": g["ae"].size(),
        }
    )
    if qcols:
        for col in ("wis", "coverage_50", "coverage_90", "coverage_95"):
            out[col] = g[col].mean()
    if baseline is not None:
        if "model" not in by:
            raise InvalidInputError("baseline= needs forecasts of several models (a 'model' column)")
        if baseline not in set(forecasts["model"]):
            raise InvalidInputError(
                f"baseline {baseline!r} is not among the models {sorted(set(forecasts['model']))}"
            )
        rest = [c for c in by if c != "model"]
        base = out.xs(baseline, level="model") if rest else out.loc[baseline]
        for col in ("wis", "mae"):
            if col not in out.columns:
                continue
            if rest:
                ref = base[col].reindex(out.index.droplevel("model")).to_numpy()
            else:
                ref = np.full(len(out), base[col])
            out[f"rel_{col}"] = out[col].to_numpy() / ref
    out.attrs = {
        "units": {"mae": "cases/week", "rmse": "cases/week", "smape": "%", "wis": "cases/week"},
        "model": forecasts.attrs.get("model"),
        "baseline": baseline,
    }
    return out


def score_table(
    results: Mapping[str, pd.DataFrame], reference: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """One row per model: mae, rmse, smape averaged over locations (as DengueNet reports its MAE).

    Parameters
    ----------
    results : mapping model name -> backtest output
    reference : mapping label -> published MAE, added as rows with only ``mae`` (e.g. DengueNet's 43.92)
    """
    rows = {}
    for name, fc in results.items():
        s = score(fc)
        rows[name] = {
            "mae": s["mae"].mean(),
            "rmse": s["rmse"].mean(),
            "smape": s["smape"].mean(),
            "source": "this backtest",
        }
    for label, mae in (reference or {}).items():
        rows[label] = {"mae": float(mae), "rmse": np.nan, "smape": np.nan, "source": "published"}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "model"
    return table.sort_values("mae")


def select_model(
    cases: pd.DataFrame | str,
    candidates: Iterable[str] | None = None,
    covariates: pd.DataFrame | bool | None = None,
    test_start: WeekLike = "2018w37",
    validation_weeks: int = 16,
    horizon: int = 1,
    lookback: int = 5,
    seed: int = 0,
) -> pd.DataFrame:
    """Rank candidate models by MAE on the ``validation_weeks`` weeks just before ``test_start``.

    Each candidate is fitted on data before the validation window, so the test weeks are never looked at. Use
    the top row as the model to report on the test window.

    Returns
    -------
    DataFrame indexed by model with validation ``mae``, ``rmse``, ``smape``, sorted best first;
    ``attrs["best"]`` names the winner and ``attrs["validation"]`` the window.
    """
    if isinstance(cases, str):
        cases = _cases.load_cases(cases)
    cases = _cases.validate_cases(cases)
    start = _weeks.week_end(test_start, week53="raise")
    if int(validation_weeks) < 1:
        raise InvalidInputError("validation_weeks must be ≥ 1")
    v_start, v_end = start - int(validation_weeks) * WEEK, start - WEEK
    names = list(candidates) if candidates is not None else available_models(images=False)
    covariates = shared_covariates(covariates, cases, names)
    results = {
        n: backtest(
            cases,
            model=n,
            covariates=covariates,
            test_start=v_start,
            test_end=v_end,
            horizon=horizon,
            lookback=lookback,
            seed=seed,
        )
        for n in names
    }
    table = score_table(results).drop(columns="source")
    table.attrs = {
        "best": table.index[0],
        "validation": f"{_weeks.week_label(v_start)}–{_weeks.week_label(v_end)}",
    }
    return table


def dengai_holdout(
    model: str | Forecaster = "persistence",
    years: int = 2,
    horizon: int = 1,
    lookback: int = 5,
    seed: int = 0,
    covariates: pd.DataFrame | bool | None = None,
    *,
    validation: bool = False,
    **params: Any,
) -> pd.DataFrame:
    """Backtest on DengAI: each city's last ``years`` × 52 labelled weeks are its test window.

    With ``validation=True`` the window is instead the ``years`` × 52 weeks before that (for choosing models
    without touching the holdout). Returns the two cities' backtests stacked (as :func:`backtest`).
    """
    return _dengai_holdouts([model], years, horizon, lookback, seed, covariates, validation, params)[model]


def _dengai_holdouts(
    models: list,
    years: int,
    horizon: int,
    lookback: int,
    seed: int,
    covariates,
    validation: bool,
    params: Mapping[str, Any],
) -> dict:
    """:func:`dengai_holdout` of several models, loading each city's cases and covariates once."""
    parts: dict = {m: [] for m in models}
    for city in _cases.DENGAI_CITIES:
        cases = _cases.load_cases("dengai", [city])
        n_test = int(years) * 52
        end_pos = len(cases) - 1 - (n_test if validation else 0)
        start_pos = end_pos - n_test + 1
        if start_pos < 1:
            raise InvalidInputError(
                f"DengAI {city} has {len(cases)} weeks, too few for a {years}-year holdout"
            )
        city_covariates = shared_covariates(covariates, cases, models)
        for m in models:
            parts[m].append(
                backtest(
                    cases,
                    model=m,
                    covariates=city_covariates,
                    test_start=cases.index[start_pos],
                    test_end=cases.index[end_pos],
                    horizon=horizon,
                    lookback=lookback,
                    seed=seed,
                    model_params=params or None,
                )
            )
    out = {}
    for m, frames in parts.items():
        out[m] = pd.concat(frames, ignore_index=True)
        out[m].attrs = dict(
            frames[0].attrs,
            test_start=None,
            test_end=None,
            windows={
                c: (p.attrs["test_start"], p.attrs["test_end"]) for c, p in zip(_cases.DENGAI_CITIES, frames)
            },
        )
    return out


def backtest_many(
    cases: pd.DataFrame | str, models: Iterable[str], *, baselines: bool = True, **kwargs: Any
) -> dict[str, pd.DataFrame]:
    """:func:`backtest` of several models on the same cases and window; returns {model name: forecasts}.

    With ``baselines`` (default) persistence, moving mean and seasonal naive are added first, so no model is
    shown without them. Other keyword arguments go to :func:`backtest`.
    """
    if isinstance(cases, str):
        cases = _cases.load_cases(cases)
    cases = _cases.validate_cases(cases)
    names = list(dict.fromkeys((list(BASELINES) if baselines else []) + list(models)))
    kwargs["covariates"] = shared_covariates(kwargs.get("covariates"), cases, names)
    return {name: backtest(cases, model=name, **kwargs) for name in names}


def dengai_score_table(
    models: Iterable[str] = (),
    years: int = 2,
    horizon: int = 1,
    lookback: int = 5,
    seed: int = 0,
    *,
    missing: str = "raise",
) -> pd.DataFrame | None:
    """Score table of :func:`dengai_holdout` for the baselines plus ``models`` (mean over San Juan and
    Iquitos).

    ``missing="skip"`` returns None, with a warning, when the DengAI files cannot be had (offline without the
    data mirror) instead of raising.
    """
    names = list(dict.fromkeys(list(BASELINES) + [m for m in models if not MODELS[m].uses_images]))
    try:
        results = _dengai_holdouts(names, years, horizon, lookback, seed, None, False, {})
    except DataNotAvailableError as exc:
        if missing == "skip":
            warnings.warn(f"DengAI holdout skipped: {exc}", stacklevel=2)
            return None
        raise
    table = score_table(results)
    for city in _cases.DENGAI_CITIES:
        table[f"mae_{city}"] = [score(results[n]).loc[city, "mae"] for n in table.index]
    table.attrs["windows"] = results[names[0]].attrs["windows"]
    return table


__all__ = [
    "BASELINES",
    "available_models",
    "backtest",
    "backtest_many",
    "dengai_holdout",
    "dengai_score_table",
    "score",
    "score_table",
    "select_model",
]
