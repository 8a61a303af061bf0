"""Dengue rolling-origin evaluation: the full 100-municipality table of issue 12, every non-image model.

The 100 Colombian municipalities with the most cases 2007–2015 (SIVIGILA, catalog
``dengue_colombia_weekly_cases``: needs the data mirror), every target week 2016w01–2019w52, horizons 1–4,
refits every 13 weeks, the hubs' 23 quantiles; baselines, median_ar, gbm, nb_glm, pooled, lstm and the
ensemble. Model settings were chosen on 2012–2015 (``benchmarks/dengue_design_selection.py``), never on this
window. Prints the wall time and the CPU time (goal ≤ 10 min on 2 cores: wall ≤ 600 s on an idle machine; CPU
≤ 1200 core-seconds is the same budget, and unlike wall time it does not grow when other work shares the
cores), CPU seconds per model, the WIS/coverage table overall and by horizon, WIS relative to the best
baseline, and the paired test (Diebold–Mariano over origins, and a block bootstrap) of the pooled model and
the ensemble against the best baseline.

``--source rio`` (Rio de Janeiro, 2018w01–2023w52) and ``--source dengai`` (each city's last 208 labelled
weeks) give the same table for the other sources.

Run: ``TERRALAB_DATA_MIRROR=../shared/data .venv/bin/python benchmarks/dengue_rolling.py [--n-jobs 2]``
"""

from __future__ import annotations

import argparse
import os
import resource
import time
import warnings

GOAL_S = 600.0
CORES = 2
MODELS = [
    "persistence",
    "moving_mean",
    "seasonal_naive",
    "median_ar",
    "gbm",
    "nb_glm",
    "pooled",
    "lstm",
    "ensemble",
]
BASELINES = ["persistence", "moving_mean", "seasonal_naive"]


def _run(cases, models, start, end, args, covariates):
    from terralab.dengue.protocol import rolling_evaluation

    # horizons 1-4, refits every 13 weeks, seed 0 and the LSTM budget of the design runs (dengue.protocol);
    # the ensemble: rolling_backtest's default, the one chosen on earlier origins (dengue.CHOSEN_ENSEMBLES:
    # mean of gbm, nb_glm, pooled for many locations; median of median_ar, gbm, nb_glm for a single series
    # such as DengAI's cities and Rio)
    return rolling_evaluation(
        cases,
        models,
        start,
        end,
        progress=False if args.no_progress else None,  # None: a bar on a terminal, none in a log file
        n_jobs=args.n_jobs,
        covariates=covariates,
    )


def evaluate(source: str, models: list[str], args) -> tuple:
    """Forecasts of ``models`` on ``source``'s evaluation window (one frame; DengAI's two cities stacked)."""
    import pandas as pd

    from terralab import dengue
    from terralab.dengue.protocol import evaluation_series

    parts = evaluation_series(source, args.locations)
    frames = [_run(s.cases, models, s.start, s.end, args, s.covariates) for s in parts]
    if len(parts) == 1:
        return frames[0], f"{parts[0].start}–{parts[0].end}"
    out = pd.concat(frames, ignore_index=True)
    out.attrs = dict(
        frames[0].attrs,
        **{
            key: {m: sum(f.attrs[key].get(m, 0) for f in frames) for m in models}
            for key in ("seconds", "cpu_seconds")
        },
    )
    windows = [f"{s.label} {dengue.week_label(s.start)}–{dengue.week_label(s.end)}" for s in parts]
    return out, "; ".join(windows)


def report(fc, window: str, args) -> None:
    import pandas as pd

    from terralab import dengue

    pd.set_option("display.width", 160)
    overall = dengue.score(fc, by=[])
    base = [m for m in BASELINES if m in overall.index]
    best = overall.loc[base, "wis"].idxmin()
    table = dengue.score(fc, by=[], baseline=best)
    print(
        f"\n{args.source}: {fc['location'].nunique()} location(s), targets {window}, horizons 1-4, refit "
        f"every 13 weeks; best baseline by WIS: {best}"
    )
    if fc.attrs.get("ensemble_members"):
        print(
            f"ensemble: quantile-wise {fc.attrs['ensemble_how']} of {', '.join(fc.attrs['ensemble_members'])}"
        )
    cols = ["wis", "rel_wis", "coverage_50", "coverage_90", "mae", "rel_mae", "rmse", "smape"]
    print(table[cols].round(3).to_string())
    by_h = dengue.score(fc, by=["horizon"], baseline=best)
    print("\nWIS by horizon (relative to " + best + ")")
    print(
        pd.concat({"wis": by_h["wis"].unstack(), "rel_wis": by_h["rel_wis"].unstack()}, axis=1)
        .round(3)
        .to_string()
    )
    print("\ncoverage of the 90 % interval by horizon")
    print(by_h["coverage_90"].unstack().round(3).to_string())
    for m in [m for m in table.index if m not in BASELINES]:
        if m in table.index:
            t = dengue.paired_test(fc, m, best)
            lo, hi = t["ratio_ci95"]
            print(
                f"paired test {m} vs {best} (WIS, {t['n_origins']} origins): ratio {t['ratio']:.3f} "
                f"[{lo:.3f}, {hi:.3f}], Diebold-Mariano {t['dm_stat']:.2f}, p = {t['p_value']:.2g}, "
                f"block bootstrap p = {t['p_bootstrap']:.3g}"
            )
    goal = ""
    if args.source == "colombia" and "pooled" in table.index:
        for m in ("pooled", "ensemble"):
            if m in table.index:
                r, c90 = table.loc[m, "rel_wis"], table.loc[m, "coverage_90"]
                met_wis = "met" if r <= 0.85 else "NOT met"
                goal += (
                    f"\n{m}: WIS {r:.3f} x best baseline (goal <= 0.85: {met_wis}); "
                    f"90 % coverage {c90:.3f} (goal 0.85-0.95: {'met' if 0.85 <= c90 <= 0.95 else 'NOT met'})"
                )
    cpu = fc.attrs.get("cpu_seconds", {})
    print(
        "\nCPU seconds per model (summed over its tasks): "
        + ", ".join(f"{m} {s:.0f}" for m, s in cpu.items())
    )
    print(goal.strip())


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its finished children (the joblib workers, once
    shut)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timing(fc, wall: float, cpu: float, args) -> None:
    """Wall and CPU time against the 10-minute, 2-core goal, with the load the machine was under."""
    tasks = sum(fc.attrs.get("cpu_seconds", {}).values())
    load = os.getloadavg()
    budget = GOAL_S * CORES
    print(
        f"\nwall time {wall:.0f} s with n_jobs={args.n_jobs} (load average at the end {load[0]:.1f} / "
        f"{load[1]:.1f} / {load[2]:.1f} over 1/5/15 min on {os.cpu_count()} cores); wall / {GOAL_S:.0f} s = "
        f"{wall / GOAL_S:.2f} ({'met' if wall <= GOAL_S else 'NOT met'} here; only meaningful on an idle "
        "machine)"
    )
    print(
        f"CPU time {cpu:.0f} s (this process and its workers; model tasks alone {tasks:.0f} s); CPU / "
        f"({CORES} cores x {GOAL_S:.0f} s) = {cpu / budget:.2f} ({'within' if cpu <= budget else 'OVER'} the "
        f"2-core budget; wall time on {CORES} idle cores is at least CPU / {CORES} = {cpu / CORES:.0f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="colombia", choices=["colombia", "rio", "dengai"])
    parser.add_argument(
        "--locations", type=int, default=100, help="Colombia: top-N municipalities by 2007-2015 cases"
    )
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--save", default="", help="write the forecasts to this pickle")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # statsmodels / sklearn convergence chatter
    c0, t0 = _cpu_seconds(), time.perf_counter()
    fc, window = evaluate(args.source, args.models.split(","), args)
    wall = time.perf_counter() - t0
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)  # so that the workers' CPU time is counted
    cpu = _cpu_seconds() - c0
    if args.save:
        fc.to_pickle(args.save)
    report(fc, window, args)
    timing(fc, wall, cpu, args)


if __name__ == "__main__":
    main()
