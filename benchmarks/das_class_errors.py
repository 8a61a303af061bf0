"""Where the packaged DAS classifier loses, per simulator and site: accuracy by true kind of vehicle, for lone
vehicles and those passing near another, and the spread of its amplitude feature within each kind.

The cross-simulator table (``benchmarks/das_cross_simulator.py``) gives one class accuracy per row; this says
which vehicles are called wrong and whether the amplitude feature (the vehicle's quasi-static strain relative
to the record's lower-quartile vehicle, :mod:`terralab.das.classify`) separates the kinds. The packaged
detector and classifier (site preset) run on each scene; every whole vehicle matched as the table matches
(``terralab.das.losses.class_errors``) counts. The spread is the standard deviation within a kind of the
amplitude less its scene's median (log10: 0.2 is a factor of 1.6), pooled over scenes.

``--quiet`` also renders the same scenes with the white and coloured instrument noise at 1 % of the lowest
level the simulator draws (the traffic, the ground and the common-mode bursts unchanged) and compares the two
on the vehicles found in both (accuracy, spread, and how far their amplitude feature moved: the reference
it is measured against moves with what the detector finds): what is left of the spread is not instrument
noise.

``--true-tracks`` also classifies every whole vehicle from features read along its true track
(``terralab.das.losses.true_track_classes``): the accuracy with no detection error, what the features and the
packaged model allow.

Run: ``python benchmarks/das_class_errors.py --seeds 1000-1019`` (the table's unseen seeds; about 3 min on two
cores for both simulators and sites; twice that with ``--quiet``).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import warnings


def run(simulator: str, site: str, seeds, quiet: bool = False):
    """:func:`terralab.das.losses.class_errors` of the packaged detector on these scenes, one table with a
    ``scene`` column and the amplitude less its scene's median (``amplitude_c``)."""
    import pandas as pd

    from terralab import das
    from terralab.das import losses, synthetic

    frames = []
    for seed in seeds:
        data, truth = synthetic.random_scene(simulator, site, int(seed), quiet=quiet)
        rows = losses.class_errors(das.detect_vehicles(data, site=site), truth).assign(scene=int(seed))
        rows["amplitude_c"] = rows["amplitude"] - rows["amplitude"].median()
        frames.append(rows)
        del data
    return pd.concat(frames, ignore_index=True)


def run_true_tracks(simulator: str, site: str, seeds):
    """:func:`terralab.das.losses.true_track_classes` on these scenes, one table with a ``scene`` column."""
    import pandas as pd

    from terralab.das import losses, synthetic

    frames = []
    for seed in seeds:
        data, truth = synthetic.random_scene(simulator, site, int(seed))
        frames.append(losses.true_track_classes(data, truth, site=site).assign(scene=int(seed)))
        del data
    return pd.concat(frames, ignore_index=True)


def true_summary(rows) -> str:
    """Accuracy on the true tracks, then per kind: n and accuracy."""
    out = f"n {len(rows)} accuracy {rows['ok'].mean():.3f}"
    for kind, g in rows.groupby("kind"):
        out += f"\n    {kind:16s} n {len(g):4d} accuracy {g['ok'].mean():.3f}"
    return out


def summary(rows) -> str:
    """Accuracy (lone / near), then per kind: n, accuracy, amplitude median and spread."""
    acc = lambda r: f"{r['ok'].mean():.3f}" if len(r) else "-"
    lone, near = rows[~rows["near"]], rows[rows["near"]]
    out = f"n {len(rows)} accuracy {acc(rows)} (lone {acc(lone)} of {len(lone)}, "
    out += f"near {acc(near)} of {len(near)})"
    for kind, g in rows.groupby("kind"):
        a = g["amplitude_c"].dropna()
        spread = f"{a.std():.2f}" if len(a) > 1 else "-"
        out += f"\n    {kind:16s} n {len(g):4d} accuracy {acc(g)} amplitude {a.median():+.2f} spread {spread}"
    return out


def compare(rows, quiet) -> str:
    """Accuracy and amplitude spread on the vehicles found in both renderings (scene, true vehicle)."""
    key = ["scene", "truth_index"]
    both = rows.merge(quiet, on=key, suffixes=("", "_quiet"))
    spread = lambda col: both.groupby("kind")[col].std().mean()
    shift = both["amplitude_quiet"] - both["amplitude"]
    return (
        f"vehicles found in both: {len(both)}, "
        f"accuracy {both['ok'].mean():.3f} -> {both['ok_quiet'].mean():.3f}, "
        f"mean spread within kind {spread('amplitude_c'):.2f} -> {spread('amplitude_c_quiet'):.2f}, "
        f"amplitude shift median {shift.median():+.2f} mean {shift.mean():+.2f}"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="1000-1019", help="first-last seed (inclusive)")
    ap.add_argument("--simulators", default="halfspace,bump")
    ap.add_argument("--sites", default="highway,urban")
    ap.add_argument("--quiet", action="store_true", help="instrument noise at 1 %% of the simulator's lowest")
    ap.add_argument(
        "--true-tracks", action="store_true", help="also the classes from features read on the true tracks"
    )
    args = ap.parse_args(argv)
    a, b = (int(s) for s in args.seeds.split("-"))
    warnings.simplefilter("ignore")
    for sim in args.simulators.split(","):
        for site in args.sites.split(","):
            rows = run(sim, site, range(a, b + 1))
            print(f"{sim} {site}: {summary(rows)}", flush=True)
            if args.quiet:
                quiet = run(sim, site, range(a, b + 1), quiet=True)
                print(f"{sim} {site} (quiet): {summary(quiet)}", flush=True)
                print(f"{sim} {site} {compare(rows, quiet)}", flush=True)
            if args.true_tracks:
                true_rows = run_true_tracks(sim, site, range(a, b + 1))
                print(f"{sim} {site} (true tracks): {true_summary(true_rows)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
