"""Rolling-origin evaluation: many forecast origins, several horizons, periodic refits, quantile forecasts.

The design that separates a good forecaster from a lucky one (ANCHORS.md, "Probabilistic forecasting"): every
week between ``start`` and ``end`` is forecast from origins ``horizon`` weeks earlier, for each horizon;
models are refitted every ``refit_every_weeks`` weeks on the data up to (and including) that refit's origin
week, and used for the origins until the next refit. A refit task is handed the case table **cut at the last
origin it forecasts from**, so no fit or forecast can see a later week
(``tests/dengue/test_dengue_rolling.py`` changes later weeks and checks that nothing before them moves).

Model × refit tasks run in parallel with joblib (``n_jobs``) or on a dask.distributed ``client``.

Examples
--------
>>> from terralab import dengue
>>> cases = dengue.load_cases()  # the five DengueNet cities (embedded: offline)
>>> fc = dengue.rolling_backtest(cases, ["persistence", "moving_mean"], "2018w01", "2018w13", n_jobs=1)
>>> dengue.score(fc, by=[], baseline="persistence")[["wis", "rel_wis"]].round(3)
               wis  rel_wis
model
persistence  4.428    1.000
moving_mean  4.332    0.978
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import InvalidInputError
from ..options import options_from
from ..progress import progress_bar
from . import cases as _cases
from . import weeks as _weeks
from .models import Forecaster, Panel, make_model, single_thread, whole_weeks
from .probabilistic import QUANTILES, check_quantiles, quantile_column

if TYPE_CHECKING:
    from dask.distributed import Client

WEEK = pd.Timedelta(days=7)
ENSEMBLE = "ensemble"

#: Ensembles chosen on earlier origins only, never on a reported window
#: (``benchmarks/dengue_design_selection.py``): ``"many"`` on the 100 Colombian municipalities with targets
#: 2012–2015 (the lowest WIS of every ensemble of ≥ 2 trained models, mean or median, preferring fewer members
#: within 0.5 %, then the lower WIS; rerun 2026-12-02: mean 2.564, median 2.566, 0.880 x moving mean);
#: ``"single"`` the same on single series (eight Colombian municipalities run alone, 2012–2015, and DengAI's
#: two cities before their reported weeks), where the pooled model has nothing to pool and local models carry
#: the ensemble.
CHOSEN_ENSEMBLES: dict[str, tuple[tuple[str, ...], str]] = {
    "many": (("gbm", "nb_glm", "pooled"), "mean"),
    "single": (("median_ar", "gbm", "nb_glm"), "median"),
}


def _model_specs(models, model_params) -> list[tuple[str, Any, dict]]:
    if isinstance(models, (str, Forecaster)):
        models = [models]
    models = list(models)
    if not models:
        raise InvalidInputError("models is empty: name at least one model, e.g. ['persistence', 'pooled']")
    specs, seen = [], set()
    for m in models:
        name = m if isinstance(m, str) else m.name
        if name in seen:
            raise InvalidInputError(f"model {name!r} is listed twice")
        seen.add(name)
        if name == ENSEMBLE:
            continue
        params = dict((model_params or {}).get(name, {}))
        probe = make_model(m, **params)  # unknown names and bad parameters fail here, before any work
        if probe.uses_images:
            raise InvalidInputError(
                f"model {name!r} needs image features made for each training window; rolling_backtest runs "
                "case and covariate models only. Backtest it on one split with dengue.backtest(..., "
                "images=...)"
            )
        specs.append((name, m, params))
    return specs


def _refit_blocks(
    index: pd.DatetimeIndex, start: pd.Timestamp, end: pd.Timestamp, horizons: Sequence[int], every: int
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """(refit origin, last origin it serves) blocks covering every origin of every horizon."""
    first = start - max(horizons) * WEEK
    last = end - min(horizons) * WEEK
    refits = pd.date_range(first, last, freq=f"{7 * every}D")
    return [(r, min(r + (every - 1) * WEEK, last)) for r in refits]


def _check_history(
    cases: pd.DataFrame,
    first_origin: pd.Timestamp,
    lookback: int,
    horizons: Sequence[int],
    needs: Mapping[str, int],
) -> None:
    """Every location needs ``lookback + horizon`` weeks (and what each model needs) before the first
    origin."""
    need_h = int(lookback) + max(horizons)
    valid_from = {c: cases[c].first_valid_index() for c in cases.columns}
    for loc, first_valid in valid_from.items():
        have = (
            int(((cases.index >= first_valid) & (cases.index <= first_origin)).sum())
            if first_valid is not None
            else 0
        )
        if have < need_h:
            raise InvalidInputError(
                f"location {loc!r} has {have} week(s) of data up to the first forecast origin "
                f"{_weeks.week_label(first_origin)}, fewer than lookback + horizon = {need_h}; start later, "
                "shorten lookback or drop that location"
            )
    have = int((cases.index <= first_origin).sum())
    for name, need in needs.items():
        if have < need:
            raise InvalidInputError(
                f"model {name} needs {need} weeks of history up to the first origin "
                f"{_weeks.week_label(first_origin)} (lookback, its own lags and ≥ 10 training weeks), the "
                f"data have {have}; start later"
            )


def _run_task(
    name: str,
    spec: Any,
    params: dict,
    cases: pd.DataFrame,
    covariates: pd.DataFrame | None,
    refit: pd.Timestamp,
    last_origin: pd.Timestamp,
    start: pd.Timestamp,
    end: pd.Timestamp,
    horizons: tuple[int, ...],
    lookback: int,
    seed: int,
    levels: tuple[float, ...],
) -> dict:
    """Fit ``spec`` at ``refit`` for its horizons and forecast the block's origins (runs in a worker).

    The model's :meth:`~terralab.dengue.models.Forecaster.fit_horizons` makes one fitted model per horizon
    (one fit each, or one fit for all). Returns the forecasts, the wall and the CPU seconds of the task (this
    process's CPU time, so that a benchmark can add up CPU time over workers).
    """
    t0, c0 = time.perf_counter(), time.process_time()
    cut = cases.loc[:last_origin]  # nothing after the last origin of this block is ever handed to the model
    cov = covariates.loc[:last_origin] if covariates is not None else None
    origins_of = {}
    for h in horizons:
        origins = cut.index[
            (cut.index >= refit) & (cut.index + h * WEEK >= start) & (cut.index + h * WEEK <= end)
        ]
        if len(origins):
            origins_of[h] = origins
    model = make_model(spec if isinstance(spec, str) else _clone(spec), **params)
    panel = Panel(
        cases=cut,
        covariates=cov if model.uses_covariates else None,
        horizon=min(horizons),
        lookback=lookback,
        seed=seed,
        progress=False,  # the rolling backtest's own bar counts the tasks
    )
    parts = []
    with single_thread(torch=model.uses_torch):
        fitted = model.fit_horizons(panel, refit, tuple(origins_of)) if origins_of else {}
        for h, origins in origins_of.items():
            m, hpanel = fitted[h], replace(panel, horizon=h)
            fc = m.forecast(hpanel, origins)[hpanel.locations]
            q = None
            if levels:
                m.calibrate(hpanel, refit)
                q = m.forecast_quantiles(hpanel, origins, fc, np.asarray(levels))
            n_o, n_l = fc.shape
            part = {
                "location": np.tile(np.asarray(hpanel.locations, dtype=object), n_o),
                "origin": np.repeat(origins.to_numpy(), n_l),
                "horizon": np.full(n_o * n_l, h),
                "forecast": fc.to_numpy().ravel(),
            }
            if q is not None:
                part["q"] = q.reshape(n_o * n_l, len(levels))
            parts.append(part)
    return {
        "name": name,
        "refit": refit,
        "parts": parts,
        "seconds": time.perf_counter() - t0,
        "cpu_seconds": time.process_time() - c0,
        "point_kind": model.point_kind,
        "quantile_method": model.quantile_method,
        "repr": repr(model),
    }


def _clone(model: Forecaster) -> Forecaster:
    return type(model)(**model.params)


def _execute(tasks: list[dict], n_jobs: int | None, client, progress: bool | None) -> list[dict]:

    bar = progress_bar(total=len(tasks), desc="rolling backtest (model × refit)", enabled=progress)
    results = []
    try:
        if client is not None:
            from distributed import as_completed

            futures = [client.submit(_run_task, pure=False, **t) for t in tasks]
            for fut in as_completed(futures):
                results.append(fut.result())
                bar.update()
        elif n_jobs == 1 or len(tasks) == 1:
            for t in tasks:
                results.append(_run_task(**t))
                bar.update()
        else:
            from joblib import Parallel, delayed

            # biggest first so that the slow tasks do not end up alone at the end
            order = sorted(range(len(tasks)), key=lambda i: -tasks[i]["_cost"])
            jobs = (delayed(_run_task)(**{k: v for k, v in tasks[i].items() if k != "_cost"}) for i in order)
            for res in Parallel(n_jobs=n_jobs, return_as="generator_unordered")(jobs):
                results.append(res)
                bar.update()
    finally:
        bar.close()
    return results


@dataclass(frozen=True)
class RollingOptions:
    """The keyword options of :func:`rolling_backtest` beyond the protocol (see its parameters)."""

    lookback: int = 5
    covariates: Any = None
    model_params: Mapping[str, Mapping] | None = None
    ensemble_members: Sequence[str] | None = None
    ensemble_how: str | None = None


def _rolling_options(options: Mapping[str, Any]) -> RollingOptions:
    return options_from(RollingOptions, options, caller="rolling_backtest")


def _check_horizons(horizons) -> tuple[int, ...]:
    if isinstance(horizons, (int, np.integer)):
        horizons = (horizons,)
    horizons = tuple(whole_weeks(h, "horizon") for h in horizons)
    if not horizons or len(set(horizons)) != len(horizons):
        raise InvalidInputError(f"horizons must be distinct whole weeks ≥ 1, got {horizons}")
    return tuple(sorted(horizons))


def _check_span(cases, specs, start_w, end_w, horizons, lookback, levels) -> None:
    """The targets lie in the data and every location and model has the history it needs at the first
    origin."""
    if not (isinstance(cases.index, pd.DatetimeIndex) and len(cases.index)):
        return
    first_origin = start_w - max(horizons) * WEEK
    if first_origin < cases.index[0] or end_w > cases.index[-1]:
        raise InvalidInputError(
            f"targets {_weeks.week_label(start_w)}–{_weeks.week_label(end_w)} with horizons up to "
            f"{max(horizons)} need data from {_weeks.week_label(first_origin)} to {_weeks.week_label(end_w)}"
            "; the data span "
            f"{_weeks.week_label(cases.index[0])}–{_weeks.week_label(cases.index[-1])}"
        )
    needs = {}
    for name, spec, params in specs:
        m = make_model(spec if isinstance(spec, str) else _clone(spec), **params)
        lag_need = max(m.history_weeks(Panel(cases, horizon=h, lookback=lookback)) for h in horizons)
        needs[name] = max(lag_need, lookback) + max(horizons) + (10 if m.trained or levels else 0)
    _check_history(cases, first_origin, lookback, horizons, needs)


def _ensemble_choice(specs, n_locations: int, members, how, levels) -> tuple[list[str], str]:
    """The ensemble's members and rule: as given, else the chosen ensemble when all its members are listed."""
    from .models import BASELINES

    members = list(members) if members is not None else None
    listed = {n for n, _, _ in specs}
    if members is None:
        chosen, chosen_how = CHOSEN_ENSEMBLES["single" if n_locations == 1 else "many"]
        if set(chosen) <= listed:
            members = list(chosen)
            how = how or chosen_how
        else:
            members = [n for n, _, _ in specs if n not in BASELINES]
    how = how or "mean"
    unknown = [m for m in members if m not in listed]
    if len(members) < 2 or unknown:
        raise InvalidInputError(
            f"the ensemble needs ≥ 2 members among the models listed; got {members}"
            + (f" ({unknown} not listed)" if unknown else "")
        )
    if not levels:
        raise InvalidInputError("the ensemble averages quantiles: pass quantiles (e.g. QUANTILES)")
    if how not in ("mean", "median"):
        raise InvalidInputError(f"ensemble_how must be 'mean' or 'median', got {how!r}")
    return members, how


def _tasks(specs, blocks, common: dict, keep_cost: bool) -> list[dict]:
    """One task per model and refit block; ``_cost`` orders joblib's queue (baselines are cheap)."""
    tasks = []
    for name, spec, params in specs:
        cost = 1 if name in ("persistence", "moving_mean", "seasonal_naive") else 10
        for refit, last in blocks:
            task = {
                "name": name,
                "spec": spec,
                "params": params,
                **common,
                "refit": refit,
                "last_origin": last,
            }
            if keep_cost:
                task["_cost"] = cost
            tasks.append(task)
    return tasks


def _assemble(results: list[dict], levels, cases: pd.DataFrame, names_all: list) -> tuple[pd.DataFrame, dict]:
    """The tasks' forecasts as one long frame in the listed model order, and per-model facts for ``attrs``."""
    facts = {k: {} for k in ("seconds", "cpu_seconds", "point_kind", "quantile_method", "model_repr")}
    frames, qcols = [], [quantile_column(q) for q in levels]
    for res in results:
        name = res["name"]
        facts["seconds"][name] = facts["seconds"].get(name, 0.0) + res["seconds"]
        facts["cpu_seconds"][name] = facts["cpu_seconds"].get(name, 0.0) + res["cpu_seconds"]
        facts["point_kind"][name] = res["point_kind"]
        facts["quantile_method"][name] = res["quantile_method"]
        facts["model_repr"][name] = res["repr"]
        for part in res["parts"]:
            f = pd.DataFrame({k: v for k, v in part.items() if k != "q"})
            if "q" in part:
                f = pd.concat([f, pd.DataFrame(part["q"], columns=qcols)], axis=1)
            f.insert(0, "model", name)
            frames.append(f)
    out = pd.concat(frames, ignore_index=True)
    out["origin"] = pd.DatetimeIndex(out["origin"]).as_unit("ns")
    out.insert(4, "week", out["origin"] + pd.to_timedelta(out["horizon"] * 7, unit="D"))
    observed = cases.stack()
    observed.index.names = ["week", "location"]
    key = pd.MultiIndex.from_arrays([out["week"], out["location"]])
    out.insert(5, "observed", observed.reindex(key).to_numpy())
    order = {n: i for i, n in enumerate(names_all)}
    out = out.sort_values(
        ["model", "horizon", "origin", "location"],
        key=lambda c: c.map(order) if c.name == "model" else c,
        kind="stable",
    ).reset_index(drop=True)
    return out, facts


def rolling_backtest(
    cases: pd.DataFrame | str,
    models: Iterable[str | Forecaster] | str,
    start: _weeks.WeekLike = "2016w01",
    end: _weeks.WeekLike = "2019w52",
    horizons: Sequence[int] = (1, 2, 3, 4),
    refit_every_weeks: int = 13,
    quantiles: Sequence[float] | None = QUANTILES,
    seed: int = 0,
    progress: bool | None = None,
    *,
    n_jobs: int | None = -1,
    client: Client | None = None,
    **options: Any,
) -> pd.DataFrame:
    """Forecast every week of ``start``–``end`` at each horizon from rolling origins, refitting periodically.

    Parameters
    ----------
    cases : DataFrame (week × location) or source name
        Whole counts; all locations on one weekly index.
    models : names or Forecaster instances
        Any of :func:`terralab.dengue.available_models` without images, and ``"ensemble"``: the quantile-wise
        mean of ``ensemble_members`` (default: every other non-baseline model listed).
    start, end : week label, date or (year, week)
        First and last target week.
    horizons : sequence of int
        Weeks ahead; each is fitted as its own (direct) model.
    refit_every_weeks : int
        Weeks between refits. A refit at origin r uses the targets up to r and serves origins r … r + period −
        1.
    quantiles : sequence of float or None
        Levels of the quantile columns (default the hubs' 23, :data:`QUANTILES`); None for point forecasts
        only.
    seed : int
    progress : bool, optional
        A progress bar over the model × refit tasks; None (default) draws it when a person is watching, never
        in a report run (:func:`terralab.progress.progress_bar`).
    n_jobs : int or None
        joblib workers for the tasks (-1: every core; 1: in this process).
    client : dask.distributed.Client, optional
        Run the tasks on this cluster instead of joblib.
    **options
        Keyword options, checked against :class:`RollingOptions` (an unknown one is an InvalidInputError that
        lists them):
    lookback : int
        Weeks of lagged cases the trained models see.
    covariates : DataFrame, None or False
        As in :func:`terralab.dengue.backtest`; None loads the source's when it has them for every location.
    model_params : mapping model name -> parameters
    ensemble_members : names of the models combined into ``"ensemble"``
        Default: the ensemble chosen on earlier origins (:data:`CHOSEN_ENSEMBLES`; one for many locations, one
        for a single series) when all its members are listed, else every other non-baseline model listed.
    ensemble_how : ``"mean"`` (the hubs' quantile average) or ``"median"`` (quantile-wise median of members)
        Default: the chosen ensemble's, else ``"mean"``.

    Returns
    -------
    Long DataFrame: model, location, origin, horizon, week (target), observed, forecast, q0.01 … q0.99.
    ``attrs``: start, end, horizons, refit_every_weeks, refits (labels), quantiles, lookback, seed,
    covariates, point_kind / quantile_method / seconds (task wall time) / cpu_seconds (task CPU time) per
    model, wall_s.
    """
    t_wall = time.perf_counter()
    opts = _rolling_options(options)
    levels = check_quantiles(quantiles)
    if isinstance(cases, str):
        cases = _cases.load_cases(cases)
    if not isinstance(cases, pd.DataFrame):
        raise InvalidInputError(f"cases must be a DataFrame (week × location), got {type(cases).__name__}")
    horizons = _check_horizons(horizons)
    every = whole_weeks(refit_every_weeks, "refit_every_weeks")
    lookback = whole_weeks(opts.lookback, "lookback")
    start_w, end_w = _weeks.week_end(start, week53="raise"), _weeks.week_end(end, week53="raise")
    if start_w > end_w:
        raise InvalidInputError(f"start {_weeks.week_label(start_w)} is after end {_weeks.week_label(end_w)}")
    specs = _model_specs(models, opts.model_params)
    names_all = [
        m if isinstance(m, str) else m.name
        for m in ([models] if isinstance(models, (str, Forecaster)) else models)
    ]
    _check_span(cases, specs, start_w, end_w, horizons, lookback, levels)
    cases = _cases.validate_cases(cases)
    from .backtest import shared_covariates

    cov = shared_covariates(opts.covariates, cases, [s for s, _, _ in specs])
    cov = _cases.align_covariates(cov, cases) if cov is not None and cov is not False else None
    with_ensemble = ENSEMBLE in names_all
    members, how = opts.ensemble_members, opts.ensemble_how
    if with_ensemble:
        members, how = _ensemble_choice(specs, cases.shape[1], members, how, levels)
    elif members is not None:
        members = list(members)

    blocks = _refit_blocks(cases.index, start_w, end_w, horizons, every)
    common = {"cases": cases, "covariates": cov, "start": start_w, "end": end_w, "horizons": horizons}
    common.update(lookback=lookback, seed=int(seed), levels=levels)
    serial = client is None and (n_jobs == 1 or len(specs) * len(blocks) == 1)
    tasks = _tasks(specs, blocks, common, keep_cost=not (serial or client is not None))
    out, facts = _assemble(_execute(tasks, n_jobs, client, progress), levels, cases, names_all)
    if with_ensemble:
        out = pd.concat([out, ensemble(out, members, how=how)], ignore_index=True)
        facts["point_kind"][ENSEMBLE] = "median"
        facts["quantile_method"][ENSEMBLE] = f"quantile-wise {how} of {', '.join(members)}"
    out.attrs = {
        "start": _weeks.week_label(start_w),
        "end": _weeks.week_label(end_w),
        "horizons": list(horizons),
        "refit_every_weeks": every,
        "refits": [_weeks.week_label(r) for r, _ in blocks],
        "quantiles": list(levels),
        "lookback": lookback,
        "seed": int(seed),
        "covariates": cov is not None,
        "source": cases.attrs.get("source"),
        "point_kind": facts["point_kind"],
        "quantile_method": facts["quantile_method"],
        "model_repr": facts["model_repr"],
        "seconds": facts["seconds"],
        "cpu_seconds": facts["cpu_seconds"],
        "wall_s": time.perf_counter() - t_wall,
        "ensemble_members": members,
        "ensemble_how": how if with_ensemble else None,
    }
    return out


def ensemble(
    forecasts: pd.DataFrame, members: Sequence[str], name: str = ENSEMBLE, how: str = "mean"
) -> pd.DataFrame:
    """Quantile-wise mean (the hubs' ensemble) or median of ``members``' forecasts; ``forecast`` is its
    median.

    Returns the ensemble's rows only (same columns as ``forecasts``), for the (location, origin, horizon) that
    every member forecast.
    """
    from .probabilistic import quantile_levels

    if how not in ("mean", "median"):
        raise InvalidInputError(f"ensemble how must be 'mean' or 'median', got {how!r}")
    _, qcols = quantile_levels(forecasts)
    if not qcols:
        raise InvalidInputError("the ensemble averages quantiles: the forecasts have no q… columns")
    sub = forecasts[forecasts["model"].isin(members)]
    keys = ["location", "origin", "horizon", "week", "observed"]
    g = sub.groupby(keys, sort=False)
    counts = g.size()
    combined = (g[qcols].mean() if how == "mean" else g[qcols].median())[counts.to_numpy() == len(members)]
    combined[qcols] = np.sort(combined[qcols].to_numpy(), axis=1)
    out = combined.reset_index()
    med = [c for c in qcols if float(c[1:]) == 0.5]
    out["forecast"] = out[med[0]] if med else out[qcols].mean(axis=1)
    out.insert(0, "model", name)
    return out[list(forecasts.columns)]


__all__ = ["CHOSEN_ENSEMBLES", "ENSEMBLE", "RollingOptions", "ensemble", "rolling_backtest"]
