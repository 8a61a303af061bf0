"""Oracle ceiling of DAS vehicle detection: the share of true vehicles that stand out of a record's noise when
their track is known (``terralab.das.oracle.oracle_detectability``: the vehicle's along-track envelope
against random tracks of the same scene made without traffic), per simulator and site.

A detector that must also *find* the track cannot do better than this on the same image; a simulator in which
many vehicles fail it has signals below its noise (see the audit in ``terralab.das.halfspace``). Printed per
simulator and site: vehicles scored, fraction detectable at 1 % false alarms on random tracks, and the AUC.

Run: ``python benchmarks/das_oracle.py --seeds 100-107`` (development seeds; ``--seeds 1000-1019`` for the
unseen ones of the cross-simulator table).

``--recall`` also runs the packaged detector (site preset) on each scene and prints its recall (scored as
the cross-simulator table scores, ``evaluate.match_scene``) in bins of each vehicle's oracle statistic (null
standard deviations above the null median), and how much the scene's traffic raises the per-channel noise
level the detector normalises by (median over channels of the robust level of the low-passed image with
traffic over the same without): the oracle's null has no traffic in it, the detector's image has.

``--scan`` also prints the recall ceiling at a precision (``--precision``, default the issue's 0.97) of any
detector thresholding the oracle's statistic (``terralab.das.oracle.scan_ceiling``): the same statistic
scanned over every mid-section time, speed and direction of the records without traffic gives the false
peaks a detector must let through, with the channels pooled by their median (the oracle's) and by their mean.
With ``--recall`` too: the packaged detector's recall of the vehicles whose statistic (median) clears that
ceiling's threshold. ``--isolated`` (half-space scenes, with ``--scan``): the same ceiling with each vehicle's
statistic read with it alone on the record without traffic (``terralab.das.oracle.isolated_statistics``): no
neighbour's flank lifts it, none masks it; the ceiling of a detector that removed every other vehicle.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import warnings
from itertools import pairwise


def pre_audit(site: str, seed: int) -> dict:
    """Overrides that remake a half-space scene as the simulator drew it before the das3 audit: one 0.8-4 GPa
    half-space at the true fibre depth (the same uniform draw, mapped onto the old range) and coupling
    0.4-1.6."""
    import numpy as np

    from terralab.das.halfspace import random_parameters

    u = (np.log(random_parameters(site, seed)["young_pa"]) - np.log(30e6)) / (np.log(250e6) - np.log(30e6))
    return {
        "young_pa": float(np.exp(np.log(0.8e9) + u * (np.log(4e9) - np.log(0.8e9)))),
        "pavement": (),
        "coupling_range": (0.4, 1.6),
    }


#: How ``--scan`` pools the channels (``terralab.das.oracle.REDUCERS``).
SCAN_STATISTICS = ("median", "mean")

#: Bins of the oracle statistic (null standard deviations above the null median) for ``--recall``.
STAT_BINS = (6.0, 20.0)


def run(
    simulator: str,
    site: str,
    seeds,
    *,
    before: bool = False,
    recall: bool = False,
    scan: bool = False,
    precision: float = 0.97,
    isolated: bool = False,
) -> dict:
    import numpy as np

    from terralab.das import oracle, synthetic

    n_true = n_det = 0
    aucs, stats, found, inflation, scans, alones = [], [], [], [], [], []
    for seed in seeds:
        over = pre_audit(site, int(seed)) if before and simulator == "halfspace" else {}
        data, truth = synthetic.random_scene(simulator, site, int(seed), **over)
        noise = oracle.noise_only(simulator, site, int(seed), **over)
        table = oracle.oracle_detectability(data, truth, noise, site=site)
        r = table.to_dict("records")[0]
        n_true += r["n_scored"]
        n_det += r["n_detectable"]
        if np.isfinite(r["auc"]):
            aucs.append(r["auc"])
        if recall:
            stats.extend(table.attrs["per_vehicle"])
            found.extend(_found(data, truth, site))
            inflation.append(table.attrs["noise_inflation"])
        if scan:
            scans.append(oracle.scan_scene(data, truth, noise, site=site, statistics=SCAN_STATISTICS))
        if scan and isolated and simulator == "halfspace":
            alone = oracle.isolated_statistics(
                truth, noise, site, int(seed), statistics=SCAN_STATISTICS, **over
            )
            alones.append({st: {**scans[-1][st], "vehicles": alone[st]} for st in SCAN_STATISTICS})
        del data
    out = {
        "n": n_true,
        "detectable": n_det / n_true if n_true else float("nan"),
        "auc": float(np.mean(aucs)) if aucs else float("nan"),
    }
    if recall:
        stats_a, found_a = np.asarray(stats, dtype=float), np.asarray(found, dtype=bool)
        edges = (-np.inf, *STAT_BINS, np.inf)
        out["recall_by_stat"] = [
            (int(m.sum()), float(found_a[m].mean()) if m.any() else float("nan"))
            for m in ((stats_a > lo) & (stats_a <= hi) for lo, hi in pairwise(edges))
        ]
        out["inflation"] = float(np.median(inflation))
    if scan:
        out["ceiling"] = {
            st: oracle.scan_ceiling([sc[st] for sc in scans], precision=precision).to_dict("records")[0]
            for st in SCAN_STATISTICS
        }
    if alones:
        out["isolated"] = {
            st: oracle.scan_ceiling([a[st] for a in alones], precision=precision).to_dict("records")[0]
            for st in SCAN_STATISTICS
        }
    if scan and recall:  # the detector's recall of the vehicles above the ceiling's threshold (median)
        sig = np.concatenate([sc["median"]["vehicles"] for sc in scans])
        above = np.isfinite(sig) & (sig > out["ceiling"]["median"]["threshold"])
        out["recall_above"] = (
            int(above.sum()),
            float(found_a[above].mean()) if above.any() else float("nan"),
        )
    return out


def _found(data, truth, site: str) -> list[bool]:
    """Per true vehicle: did the packaged detector (site preset) find it, scored as the benchmark scores."""
    from terralab import das
    from terralab.das import evaluate

    det = das.detect_vehicles(data, site=site, classify=False)
    _, pairs = evaluate.match_scene(det, truth, same_direction=True)
    hit = set(pairs["truth_index"])
    return [i in hit for i in truth.index]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="100-107", help="first-last seed (inclusive)")
    ap.add_argument("--simulators", default="bump,halfspace")
    ap.add_argument("--sites", default="highway,urban")
    ap.add_argument(
        "--pre-audit",
        action="store_true",
        help="half-space scenes as drawn before the das3 magnitude audit (for the before/after figure)",
    )
    ap.add_argument(
        "--recall",
        action="store_true",
        help="also the packaged detector's recall per bin of the oracle statistic, and the noise inflation",
    )
    ap.add_argument(
        "--scan",
        action="store_true",
        help="also the recall ceiling at --precision of a detector that scans the oracle's statistic",
    )
    ap.add_argument("--precision", type=float, default=0.97, help="precision for --scan (default 0.97)")
    ap.add_argument(
        "--isolated",
        action="store_true",
        help="with --scan, half-space scenes: also the ceiling with each vehicle read alone on the noise",
    )
    args = ap.parse_args(argv)
    a, b = (int(s) for s in args.seeds.split("-"))
    warnings.simplefilter("ignore")
    head = f"{'simulator':10s} {'site':8s} {'vehicles':>8s} {'detectable@1%FA':>15s} {'AUC':>6s}"
    if args.recall:
        lo, hi = STAT_BINS
        bins = (f"<={lo:g}", f"{lo:g}-{hi:g}", f">{hi:g}")
        head += "".join(f" {'recall ' + b + ' sd (n)':>22s}" for b in bins) + f" {'noise x traffic':>15s}"
    if args.scan:
        head += "".join(f" {f'ceiling@P{args.precision:g} {st} (thr, false)':>36s}" for st in SCAN_STATISTICS)
    if args.scan and args.recall:
        head += f" {'recall above median thr (n)':>28s}"
    if args.scan and args.isolated:
        head += "".join(f" {'alone ' + st:>12s}" for st in SCAN_STATISTICS)
    print(head)
    for sim in args.simulators.split(","):
        for site in args.sites.split(","):
            r = run(
                sim,
                site,
                range(a, b + 1),
                before=args.pre_audit,
                recall=args.recall,
                scan=args.scan,
                precision=args.precision,
                isolated=args.isolated,
            )
            line = f"{sim:10s} {site:8s} {r['n']:8d} {r['detectable']:15.3f} {r['auc']:6.3f}"
            if args.recall:
                line += "".join(f" {rec:16.2f} ({n:3d})" for n, rec in r["recall_by_stat"])
                line += f" {r['inflation']:15.2f}"
            if args.scan:
                line += "".join(
                    f" {c['recall_ceiling']:20.3f} ({c['threshold']:5.2f}, {c['false_peaks']:3d})"
                    for c in (r["ceiling"][st] for st in SCAN_STATISTICS)
                )
            if args.scan and args.recall:
                n_above, rec = r["recall_above"]
                line += f" {rec:21.3f} ({n_above:3d})"
            if args.scan and args.isolated:
                alone = r.get("isolated")
                line += "".join(
                    f" {alone[st]['recall_ceiling']:12.3f}" if alone else f" {'-':>12s}"
                    for st in SCAN_STATISTICS
                )
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
