"""How the dengue model settings were chosen: on earlier origins only, never on the reported windows.

Two design sets, each earlier than what the README reports:

* **pooled (100 municipalities)**: the 100 Colombian municipalities of ``benchmarks/dengue_rolling.py`` (most
  cases 2007–2015), every target week 2012w01–2015w52 (reported: 2016w01–2019w52), horizons 1–4, refits every
  13 weeks. Every non-image model is run; then every ensemble of ≥ 2 of the trained models, quantile-wise mean
  and median, is scored from those forecasts. The ensemble with the lowest WIS here is the one the rolling
  benchmark reports.
* **single series**: eight Colombian municipalities (ranks 11–18 by 2007–2015 cases, none of them a DengueNet
  city), each run **alone**, targets 2012w01–2015w52, and DengAI's two cities, each alone, on the 208 weeks
  before the 208 reported (San Juan 2000w19–2004w17, Iquitos 2002w28–2006w26). Decides how the pooled model
  calibrates its quantiles when there is nothing to pool (``Pooled(max_folds=1, spread="regression")``, the
  setting of the first release, against the default: more held-out years and binned errors for few locations)
  and which ensemble to use on one series. Rio de Janeiro is not used here (its series starts in 2015; all of
  it before the reported 2018–2023 is needed as training history).

Earlier selections (first release, recorded in the handoff notes): pooled interactions + regression spread
0.906 × the best baseline of 2012–2015 (moving mean), nb_glm 0.925, ensemble pooled + nb_glm 0.893.

Run: ``TERRALAB_DATA_MIRROR=../shared/data .venv/bin/python benchmarks/dengue_design_selection.py [--part
pooled|single|both] [--cache DIR]`` (``--cache`` keeps the forecasts so the ensembles can be rescored).
"""

from __future__ import annotations

import argparse
import itertools
import time
import warnings
from pathlib import Path

BASELINES = ["persistence", "moving_mean", "seasonal_naive"]
TRAINED = ["median_ar", "gbm", "nb_glm", "pooled", "lstm"]
#: candidates on single series: the LSTM's fixed step budget costs as much on one series as on 100 (~8 s a
#: refit, 1,400 s over the ten design series), too much for this 2-core design run; it is not an ensemble
#: candidate there
SINGLE_TRAINED = ["median_ar", "gbm", "nb_glm", "pooled"]
SINGLE_RANKS = range(10, 18)  # 0-based ranks: the 11th to 18th municipality by 2007-2015 cases
#: ensembles within this share of the lowest WIS count as tied; the one with the fewest members is taken
TIE = 0.005
#: pooled-model variants tried on single series (the first release's calibration is always shown beside them)
SINGLE_VARIANTS = {
    "pooled, no interactions": {"interactions": False, "ridge_prior": 0.0},
    "pooled, ridge 0.1": {"ridge": 0.1, "ridge_prior": 0.0},
    "pooled, no interactions, ridge 0.1": {"interactions": False, "ridge": 0.1, "ridge_prior": 0.0},
    "pooled, no ridge prior (first release)": {"ridge_prior": 0.0},
    "pooled, ridge prior 100": {"ridge_prior": 100.0},
}
#: the same variants on the 100 municipalities (pooled is cheap: seconds per variant)
POOLED_VARIANTS = {k: v for k, v in SINGLE_VARIANTS.items() if k != "pooled, no interactions"}


def _rolling(cases, models, start, end, args, covariates=False, params=None):
    """The reported protocol (dengue.protocol: horizons 1-4, refits every 13 weeks, seed 0, the LSTM
    budget)."""
    from terralab.dengue.protocol import rolling_evaluation

    return rolling_evaluation(
        cases,
        models,
        start,
        end,
        progress=False,
        n_jobs=args.n_jobs,
        covariates=covariates,
        model_params=params,
    )


def _cached(args, key, make):
    import pandas as pd

    if args.cache:
        path = Path(args.cache) / f"{key}.pkl"
        if path.exists():
            return pd.read_pickle(path)
        out = make()
        path.parent.mkdir(parents=True, exist_ok=True)
        out.to_pickle(path)
        return out
    return make()


def ensembles(fc, members_pool):
    """WIS of every ensemble of ≥ 2 members (quantile-wise mean and median) from the members' forecasts."""
    from terralab import dengue

    rows = {}
    for k in range(2, len(members_pool) + 1):
        for members in itertools.combinations(members_pool, k):
            for how in ("mean", "median"):
                if how == "median" and k == 2:
                    continue  # the median of two is their mean
                ens = dengue.ensemble(fc, list(members), how=how)
                rows[(how, " + ".join(members))] = dengue.score(ens, by=[])["wis"].iloc[0]
    return rows


def choose(ranked, ref=1.0):
    """The ensemble with the fewest members whose score is within TIE (relative) of the best; then the lowest.

    Differences of a few thousandths between ensembles are noise on four years of origins; fewer members are
    cheaper and, without the LSTM, deterministic across machines.
    """
    best = ranked[0][1]
    close = [kv for kv in ranked if kv[1] <= best * (1 + TIE)]
    return min(close, key=lambda kv: (kv[0][1].count("+"), kv[1]))


def pooled_part(args) -> None:
    import pandas as pd

    from terralab import dengue
    from terralab.dengue.protocol import evaluation_series

    (design,) = evaluation_series("colombia", 100, design=True)  # targets 2012w01-2015w52
    cases = design.cases
    t0 = time.perf_counter()
    fc = pd.concat(
        [
            _cached(
                args,
                f"colombia100_2012_2015_{m}",
                lambda m=m: _rolling(cases, [m], design.start, design.end, args),
            )
            for m in BASELINES + TRAINED
        ],
        ignore_index=True,
    )
    scores = dengue.score(fc, by=[])
    best = scores.loc[BASELINES, "wis"].idxmin()
    ref = scores.loc[best, "wis"]
    print(
        f"\n== pooled design set: 100 municipalities, targets 2012w01-2015w52; best baseline {best} "
        f"(WIS {ref:.3f}) =="
    )
    print(
        (scores[["wis", "coverage_50", "coverage_90", "mae"]].assign(rel_wis=scores["wis"] / ref))
        .round(3)
        .to_string()
    )
    from terralab.dengue.models import Pooled

    for label, params in POOLED_VARIANTS.items():
        var = _cached(
            args,
            "colombia100_2012_2015_" + label.replace(" ", "_").replace(",", ""),
            lambda p=params: _rolling(cases, [Pooled(**p)], design.start, design.end, args),
        )
        w = dengue.score(var, by=[])
        print(
            f"  {label:<40} WIS {w['wis'].iloc[0]:.3f}  x {best} {w['wis'].iloc[0] / ref:.3f}  "
            f"coverage_90 {w['coverage_90'].iloc[0]:.3f}"
        )
    rows = ensembles(fc, TRAINED)
    ranked = sorted(rows.items(), key=lambda kv: kv[1])
    print("\nensembles (best 12 of", len(rows), "), WIS and x best baseline:")
    for (how, members), w in ranked[:12]:
        print(f"  {how:<6} {members:<44} {w:7.3f}  {w / ref:.3f}")
    for label in (("mean", "nb_glm + pooled"),):
        print(f"  (first release) {label[0]} {label[1]}: {rows[label]:.3f}  {rows[label] / ref:.3f}")
    (how, members), w = choose(ranked)
    print(
        f"chosen: quantile-wise {how} of {members} ({w / ref:.3f} x {best}; the fewest members within "
        f"{TIE} of the lowest WIS ratio, {ranked[0][1] / ref:.3f}); {time.perf_counter() - t0:.0f} s"
    )


def _single_series(args):
    """(label, cases, start, end, covariates) of each design series, one location each (covariates as the
    rolling benchmark has them: none for Colombia-wide municipalities, DengAI's own)."""
    from terralab import dengue
    from terralab.dengue.protocol import evaluation_series

    (ranked,) = evaluation_series("colombia", 100, design=True)
    colombia = dengue.load_cases("colombia")  # each municipality's own table (attrs of the whole source)
    out = []
    for rank in SINGLE_RANKS:
        loc = ranked.cases.columns[rank]
        out.append((f"colombia {loc}", colombia[[loc]], ranked.start, ranked.end, ranked.covariates))
    for s in evaluation_series("dengai", design=True):
        out.append((f"dengai {s.label}", s.cases, s.start, s.end, s.covariates))
    return out


def single_part(args) -> None:
    import pandas as pd

    from terralab import dengue
    from terralab.dengue.models import Pooled

    t0 = time.perf_counter()
    frames = []
    variants = {
        "pooled_first_release": Pooled(max_folds=1, spread="regression", ridge_prior=0.0),
        **{label: Pooled(**params) for label, params in SINGLE_VARIANTS.items()},
    }
    for label, cases, start, end, cov in _single_series(args):
        stem = "single_" + label.replace(" ", "_")
        for model in BASELINES + SINGLE_TRAINED:
            fc = _cached(
                args,
                f"{stem}_{model}",
                lambda m=model, c=cases, a=start, b=end, v=cov: _rolling(c, [m], a, b, args, covariates=v),
            )
            frames.append(fc.assign(series=label))
        for name, model in variants.items():
            fc = _cached(
                args,
                f"{stem}_{name}",
                lambda m=model, c=cases, a=start, b=end, v=cov: _rolling(c, [m], a, b, args, covariates=v),
            )
            frames.append(fc.assign(series=label, model=name))
    fc = pd.concat(frames, ignore_index=True)
    # relative WIS per series (each against its own best baseline), then the geometric mean over series
    import numpy as np

    per = dengue.score(fc, by=["series"])
    rel = {}
    for series, sub in per.groupby(level="series"):
        sub = sub.droplevel("series")
        rel[series] = sub["wis"] / sub.loc[BASELINES, "wis"].min()
    rel = pd.DataFrame(rel)
    cov = per["coverage_90"].unstack("series")
    print(
        "\n== single-series design set: WIS / the series' best baseline (geometric mean over the 10 series) "
        "=="
    )
    table = pd.DataFrame(
        {
            "geo_mean_rel_wis": np.exp(np.log(rel).mean(axis=1)),
            "worst": rel.max(axis=1),
            "coverage_90": cov.mean(axis=1),
        }
    )
    print(table.sort_values("geo_mean_rel_wis").round(3).to_string())
    pool = list(SINGLE_TRAINED)
    rows = {}
    for series, sub in fc.drop(columns="series").groupby(fc["series"]):
        base = dengue.score(sub, by=[]).loc[BASELINES, "wis"].min()
        for k, w in ensembles(sub, pool).items():
            rows.setdefault(k, []).append(np.log(w / base))
    ranked = sorted(((k, float(np.exp(np.mean(v)))) for k, v in rows.items()), key=lambda kv: kv[1])
    print("\nensembles on single series (geometric mean of WIS / best baseline), best 10:")
    for (how, members), g in ranked[:10]:
        print(f"  {how:<6} {members:<44} {g:.3f}")
    pooled_choice = ("mean", "gbm + nb_glm + pooled")
    if pooled_choice in dict(ranked):
        print(f"  (the 100-municipality choice) {' '.join(pooled_choice)}: {dict(ranked)[pooled_choice]:.3f}")
    (how, members), g = choose(ranked)
    print(
        f"chosen for single series: quantile-wise {how} of {members} ({g:.3f}); "
        f"{time.perf_counter() - t0:.0f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", default="both", choices=["pooled", "single", "both"])
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--cache", default="", help="folder keeping the forecasts between runs")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    if args.part in ("pooled", "both"):
        pooled_part(args)
    if args.part in ("single", "both"):
        single_part(args)


if __name__ == "__main__":
    main()
