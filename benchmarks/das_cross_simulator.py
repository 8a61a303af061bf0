"""DAS vehicle detection across two independently written simulators: choose on one, report on both.

``terralab.das.synthetic`` ("bump": Gaussian strain bumps per axle, bridge spans, AR(1) noise) and
``terralab.das.halfspace`` ("halfspace": Boussinesq half-space strain per wheel, Rayleigh waves, car-following
traffic with trams, stop-and-go and side streets, coupling 0.3-1.0, power-law noise, common-mode bursts) share
no signature code. Every scene draws its parameters at random from its seed.

**How the parameters were chosen** (``--choose``; issue 11 item 3). The grid :data:`GRID` (24 settings: image
"strain" or "both", low-pass 1 Hz at 8 Hz or 2 Hz at 12 Hz, threshold 3.5 or 4.5 sigma, merge length 12, 25 or
40 m; ``lobe_merge`` and ``speed_stack`` off) is run on the development seeds 100-107 of ONE simulator
(highway and urban site presets), and the setting with the highest F1 averaged over the two sites is kept;
then the four on/off combinations of ``lobe_merge`` and ``speed_stack`` are run with it (``--options``; on the
half-space simulator only: the bump choice predates them and keeps both off), and the best mean F1 is that
simulator's choice. The two choices are stored in ``terralab.das.detect.CHOSEN`` (the packaged defaults are
the half-space choice). Three track rules were added later on the development seeds of both simulators, with
everything else fixed (``pair_merge_m``, ``incoherent_speed_change``, then ``crossing_ratio``: a sign-less
track much faster than a stronger vehicle of its direction that it crosses is dropped; see ``CHOSEN``); the
bump choice keeps them off. Seeds 100-107 are the only scenes any detector parameter was chosen on.

Half-space choice after the simulator audit (Odemark equivalent depth, coupling 0.3-1.0), development seeds,
mean F1 (highway P/R, urban P/R): grid best "strain", 1 Hz at 8 Hz, 3.5 sigma, 25 m: 0.738 (0.94/0.82,
0.58/0.62; the previous choice, 2 Hz at 12 Hz, 0.713); with ``lobe_merge`` 0.740, ``speed_stack`` 0.739, both
0.742 (0.94/0.82, 0.60/0.62; duplicates 3 + 21 instead of 3 + 28; speed MAE 1.76 / 1.50 km/h instead of 2.11 /
1.32).

**The table** (default mode): both choices are scored on unseen seeds (default 1000-1019, used nowhere else;
the tests use 500-599, the classifier trains on 2000+) of both simulators and both sites, each scene made
once. The vehicle classifier is the one trained on the same simulator the detector parameters were chosen on
(``vehicle_classifier.json``: half-space, the packaged one; ``vehicle_classifier_bump.json``: bump). It prints
pooled precision, recall, count error, duplicates, speed MAE (km/h), position MAE (m: where each matched
vehicle is at its detected mid-section time, |time error| x true speed; the scorer accepts 10 m or 1.5 s) and
class accuracy (car / truck / tram where the site has a tram line), then the targets of issue 11 and whether
each is met.

Run: ``python benchmarks/das_cross_simulator.py --scenes 20`` (about 3 min on a 2-core machine: the
highway rows 1.7 min, the urban rows 1.2 min, measured 2026-12-04), or
``--choose`` to redo the choice (about 1 h; about 20 min of it per simulator on two busy cores).
``--set NAME=VALUE`` overrides one detector parameter in both choices (``--set peel_sigma=3.5``: the
second pass of :mod:`terralab.das.peel`, off by default) and ``--first-seed`` moves to other unseen seeds.

Each row also prints F1 = 2 TP / (true + detected) with its 90 % interval over scenes
(:func:`terralab.das.intervals.scene_intervals`: the 20 scenes redrawn with replacement 2000 times), the
range another draw of scenes would give, and the F1 difference between the two choices on the same scenes
with its 90 % interval over paired redraws (:func:`terralab.das.intervals.paired_difference`; an interval
that holds 0: these scenes do not tell the choices apart). ``--hough-seeds 0,1,2,3`` runs every row once
per seed of the randomised Hough transform (``seed``) and prints each, then the spread of F1 between them:
the part of a difference between two settings that the line sampling alone makes. ``--against
NAME=VALUE`` (repeatable) also runs the packaged choice with those settings (row "packaged-vs") and prints
the packaged choice's F1 minus that one's on the same scenes with its paired 90 % interval: how a change is
confirmed on unseen scenes (``--first-seed 11000 --against max_merge_s=0``).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import itertools
import time
import warnings

TARGETS = {
    "precision": (">=", 0.97),
    "recall": (">=", 0.97),
    "count_error_pct": ("<=", 3.0),
    "duplicates": ("<=", 0),
    "speed_mae_kmh": ("<=", 2.0),
    "class_accuracy": (">=", 0.92),
}
DEV_SEEDS = range(100, 108)
SITES = ("highway", "urban")
SIMULATORS = ("bump", "halfspace")

#: The choice grid (see the module docstring).
GRID = [
    {
        "image": image,
        "lowpass_hz": lp,
        "lf_rate_hz": lf,
        "threshold_sigma": th,
        "max_vehicle_m": mv,
        "lobe_merge": False,
        "speed_stack": False,
    }
    for image, (lp, lf), th, mv in itertools.product(
        ("strain", "both"), ((1.0, 8.0), (2.0, 12.0)), (3.5, 4.5), (12.0, 25.0, 40.0)
    )
]


def choose(simulator: str, *, progress: bool = True) -> tuple[dict, list]:
    """The grid setting with the best site-averaged F1 on the development seeds of ``simulator``."""
    from terralab.das import evaluate

    runs = {str(i): {**cfg, "classify": False} for i, cfg in enumerate(GRID)}
    f1 = {k: [] for k in runs}
    rows = []
    for site in SITES:
        res = evaluate.evaluate_runs(
            simulator, site, DEV_SEEDS, {k: {**v, "site": site} for k, v in runs.items()}, progress=progress
        )
        for pooled in res.to_dict("records"):
            k, p, r = pooled["run"], pooled["precision"], pooled["recall"]
            f1[k].append(2 * p * r / (p + r) if p + r > 0 else 0.0)
            rows.append((k, site, p, r))
    best = max(f1, key=lambda k: (sum(f1[k]) / len(f1[k]), -int(k)))
    return GRID[int(best)], sorted(
        ((sum(v) / len(v), GRID[int(k)]) for k, v in f1.items()), key=lambda z: -z[0]
    )


def choose_options(simulator: str, base: dict, *, progress: bool = True) -> tuple[dict, list]:
    """With the grid's choice ``base`` fixed, the on/off combination of ``lobe_merge`` and ``speed_stack``
    with the best site-averaged F1 on the development seeds (ties: fewer options on)."""
    from terralab.das import evaluate

    combos = [{"lobe_merge": lm, "speed_stack": ss} for lm in (False, True) for ss in (False, True)]
    runs = {str(i): {**base, **c, "classify": False} for i, c in enumerate(combos)}
    f1 = {k: [] for k in runs}
    for site in SITES:
        res = evaluate.evaluate_runs(
            simulator, site, DEV_SEEDS, {k: {**v, "site": site} for k, v in runs.items()}, progress=progress
        )
        for pooled in res.to_dict("records"):
            k, p, r = pooled["run"], pooled["precision"], pooled["recall"]
            f1[k].append(2 * p * r / (p + r) if p + r > 0 else 0.0)
    best = max(f1, key=lambda k: (round(sum(f1[k]) / len(f1[k]), 4), -sum(combos[int(k)].values())))
    return {**base, **combos[int(best)]}, [(sum(v) / len(v), combos[int(k)]) for k, v in f1.items()]


def _override(text: str) -> tuple[str, object]:
    """``NAME=VALUE`` of ``--set`` as a (name, value) pair; the value is read as JSON (a number, true/false,
    a list) or kept as text."""
    import json

    from terralab.das import DetectParams

    name, sep, value = text.partition("=")
    if not sep or name not in DetectParams.__dataclass_fields__:
        raise SystemExit(f"--set wants NAME=VALUE with NAME a DetectParams field, got {text!r}")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def _print_paired(per_scene, a: str, b: str, label: str) -> None:
    """Print run ``b``'s F1 minus run ``a``'s on the same scenes with its paired 90 % interval."""
    from terralab.das.intervals import paired_difference

    pick = {c: per_scene[per_scene["run"] == c].reset_index(drop=True) for c in (a, b)}
    diff, low, high = paired_difference(pick[a], pick[b], "f1", seed=0)
    print(f"   F1 {label}, same scenes: {diff:+.3f} [{low:+.3f}, {high:+.3f}]")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--scenes", type=int, default=20, help="unseen scenes per simulator and site (default 20)"
    )
    ap.add_argument("--first-seed", type=int, default=1000)
    ap.add_argument("--simulators", default="bump,halfspace")
    ap.add_argument("--sites", default="highway,urban")
    ap.add_argument(
        "--choose", action="store_true", help="redo the parameter choice on the development seeds"
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a detector parameter in both choices, e.g. --set peel_sigma=3.5 (repeatable)",
    )
    ap.add_argument(
        "--hough-seeds",
        default="",
        metavar="S0,S1,...",
        help="run every row once per seed of the randomised Hough transform and print the F1 spread",
    )
    ap.add_argument(
        "--against",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="also run the packaged choice with these settings and print the paired F1 difference",
    )
    args = ap.parse_args(argv)
    overrides = dict(_override(s) for s in args.set)
    against = dict(_override(s) for s in args.against)
    hough_seeds = [int(s) for s in args.hough_seeds.split(",") if s.strip()]
    if against and hough_seeds:
        raise SystemExit("--against and --hough-seeds do not combine: run them one at a time")

    from terralab.das import classify, evaluate
    from terralab.das.detect import CHOSEN
    from terralab.das.intervals import pool_scenes, scene_intervals

    warnings.simplefilter("ignore")
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.2f} (wall times only)")
    if overrides:
        print(f"overrides in both choices: {overrides}")
    if args.choose:
        for sim in SIMULATORS:
            t = time.perf_counter()
            best, ranking = choose(sim)
            print(
                f"chosen on {sim} (dev seeds {DEV_SEEDS.start}-{DEV_SEEDS.stop - 1}, "
                f"{time.perf_counter() - t:.0f} s):"
                f" {best}"
            )
            for score, cfg in ranking[:5]:
                print(f"   mean F1 {score:.3f}  {cfg}")
            if sim == "halfspace":
                best, ranking = choose_options(sim, best)
                print(f"   with the options chosen: {best}")
                for score, cfg in ranking:
                    print(f"   mean F1 {score:.3f}  {cfg}")
        return 0

    models = {
        "halfspace": classify.load_classifier(),
        "bump": classify.load_classifier(classify.MODEL_PATH.with_name("vehicle_classifier_bump.json")),
    }
    seeds = range(args.first_seed, args.first_seed + args.scenes)
    header = (
        f"{'chosen on':10s} {'scored on':10s} {'site':8s} {'scenes':>6s} {'true':>5s} {'det':>5s} "
        f"{'precision':>9s} {'recall':>7s} {'count err %':>11s} {'dups':>5s} {'speed MAE':>9s} "
        f"{'pos MAE m':>9s} {'class acc':>9s} {'F1':>6s} {'F1 90 % interval':>16s}"
    )
    rows = []
    print(header)
    for sim in args.simulators.split(","):
        for site in args.sites.split(","):
            t = time.perf_counter()
            runs = {
                chosen + (f"#{h}" if hough_seeds else ""): {
                    **CHOSEN[chosen],
                    **overrides,
                    **({"seed": h} if hough_seeds else {}),
                    "site": site,
                    "classifier": models[chosen],
                }
                for chosen in CHOSEN
                for h in (hough_seeds or [None])
            }
            if against:
                runs["packaged-vs"] = {**runs["halfspace"], **against}
            per_scene = evaluate.evaluate_runs(sim, site, seeds, runs, per_scene=True)
            f1s: dict[str, list[float]] = {}
            for name in runs:
                scenes = per_scene[per_scene["run"] == name]
                pooled = {"simulator": sim, "site": site, **pool_scenes(scenes)}
                ci = scene_intervals(scenes, seed=0).loc["f1"]
                f1s.setdefault(name.split("#")[0], []).append(pooled["f1"])
                rows.append({"chosen_on": name, **pooled})
                print(
                    f"{name:10s} {sim:10s} {site:8s} {pooled['n_scenes']:6d} {pooled['n_true']:5d} "
                    f"{pooled['n_detected']:5d} {pooled['precision']:9.3f} {pooled['recall']:7.3f} "
                    f"{pooled['count_error_pct']:11.1f} {pooled['duplicates']:5d} "
                    f"{pooled['speed_mae_kmh']:9.2f} {pooled['position_mae_m']:9.1f} "
                    f"{pooled['class_accuracy']:9.3f} {pooled['f1']:6.3f} "
                    f"{'[' + format(ci['low'], '.3f') + ', ' + format(ci['high'], '.3f') + ']':>16s}",
                    flush=True,
                )
            if not hough_seeds and {"bump", "halfspace"} <= set(runs):
                _print_paired(per_scene, "halfspace", "bump", "bump choice - half-space choice")
            if against:
                _print_paired(
                    per_scene, "packaged-vs", "halfspace", f"packaged minus packaged with {against}"
                )
            if hough_seeds:
                for chosen, values in f1s.items():
                    mean = sum(values) / len(values)
                    print(
                        f"   {chosen}: F1 over Hough seeds {hough_seeds}: mean {mean:.3f}, "
                        f"range {min(values):.3f}-{max(values):.3f}"
                    )
            print(f"   ({time.perf_counter() - t:.0f} s)", flush=True)
    print(
        "\ntargets (issue 11):",
        ", ".join(f"{k} {op} {v}" for k, (op, v) in TARGETS.items()),
        "- and within 0.02 of that when chosen on the other simulator",
    )
    for r in rows:
        verdict = []
        for k, (op, v) in TARGETS.items():
            ok = r[k] >= v if op == ">=" else r[k] <= v
            verdict.append(f"{k} {'met' if ok else 'NOT MET'}")
        print(f"chosen on {r['chosen_on']:9s} {r['simulator']:10s} {r['site']:8s} " + "; ".join(verdict))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
