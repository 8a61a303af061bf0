"""Where the packaged DAS detector loses, per simulator and site: a reason for every missed vehicle and every
false detection (``terralab.das.losses``), and the recall by headway, for all vehicles and per true class.

The cross-simulator table (``benchmarks/das_cross_simulator.py``) says how much is lost; this says what. The
packaged detector (site preset, packaged classifier) runs on each scene and is scored as the table scores it
(``evaluate.match_scene``, same direction only, 1.5 s or 10 m and 25 % speed tolerances). Each missed whole
vehicle gets the first reason that applies: "shared" (a detection matched to a neighbour is within the
tolerances of this one too: one detection for two vehicles), "speed" (an unmatched detection within the time
tolerance at a speed more than 25 % off), "time" (an unmatched detection at its speed within 3 x the time
tolerance, but beyond it), "unseen" (none). Each false detection: "duplicate" (repeats a matched vehicle, as
the table's duplicate column counts), "misplaced" (within 3 x the time tolerance of a missed vehicle: its
detection at the wrong speed or place), "ghost" (no vehicle near). A misplaced detection and its vehicle are
one error counted twice (one false, one missed). Under each row, the recall by headway of each true class
(car, truck, tram) says which vehicles the losses are.

``--quiet`` adds a row per simulator and site for the same scenes rendered with the white and coloured
instrument noise at 1 % of the lowest level the simulator draws (``terralab.das.synthetic.QUIET_NOISE``; the
traffic, the ground and the common-mode bursts unchanged): what is still lost there is lost to the signatures
and the search, not to the noise floor. Under each row, a line says how much of the detector's
noise-normalised low-passed image lies beyond its soft clip (``clip_sigma`` noise units; mean share over the
scenes) and the median channel's dynamic range (99.9 % quantile of the image's magnitude, in those units;
median over the scenes): on a quiet record the clip flattens a vehicle's strain and its slow tails into
plateaus seconds long. The same line counts the scenes on which ``das.diagnose`` warns of over-counting
(``beyond_clip`` above ``terralab.das.diagnose.BEYOND_CLIP_ADVICE``) and the detector's precision on those
scenes and on the others.

A last line per row reads each vehicle's true track (the simulator's path where the truth carries it, as the
oracle reads it) in the detector's band images (``terralab.das.losses.track_evidence``): "below" (the band
envelope on the track is under the detection threshold: too weak for this search), "flank" (above it, but
the nearest envelope peak lies more than 10 m of travel off the track: on a stronger neighbour's flank),
"ridge" (a peak of its own: the search or the merging lost it), "outside" (a speed outside the bands
searched), for the missed and for the found vehicles. Another follows each missed vehicle's own track through
the detector's steps (``terralab.das.losses.search_stages``: a track within 0.5 s or 10 m of travel of it, at
its speed within 25 %, nearer to it than to any other vehicle): "no track" (the search never made one), the
step that removed it (``terralab.das.losses.STAGES``), or "kept" (among the detections, but the scorer gave it
to a neighbour or found it too far off).

Run: ``python benchmarks/das_losses.py --seeds 1000-1019`` (the table's unseen seeds; about 4 min on two cores
for both simulators and sites; twice that with ``--quiet``).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import warnings


def run(simulator: str, site: str, seeds, quiet: bool = False) -> dict:
    """Pooled :func:`terralab.das.losses.loss_counts` of the packaged detector on these scenes (with
    ``quiet``: rendered with :data:`terralab.das.synthetic.QUIET_NOISE`), with the number of detections
    scored (``n_detected``), the mean share of the detector's image beyond its soft clip (``beyond_clip``),
    the median over scenes of the median channel's dynamic range (``dynamic_range``), and per scene set
    (``"warned"``: scenes on which :func:`terralab.das.diagnose` warns of over-counting, ``"rest"``) the
    number of scenes, true positives and detections (``advice``)."""
    import numpy as np

    from terralab import das
    from terralab.das import losses, synthetic
    from terralab.das.diagnose import BEYOND_CLIP_ADVICE, beyond_clip

    scenes, n_det, beyond, ranges, advice = [], 0, [], [], {"warned": [0, 0, 0], "rest": [0, 0, 0]}
    for seed in seeds:
        data, truth = synthetic.random_scene(simulator, site, int(seed), quiet=quiet)
        det, details = das.detect_vehicles(data, site=site, return_products=True)
        image = np.abs(details["z"][:, details["valid"]])
        beyond.append(beyond_clip(image, det.attrs["params"]["clip_sigma"]))
        ranges.append(float(np.median(np.quantile(image, 0.999, axis=0))))
        vehicles, false = losses.explain_scene(det, truth)
        vehicles["evidence"] = losses.track_evidence(data, truth, details).to_numpy()
        vehicles["stage"] = losses.search_stages(truth, details).loc[vehicles["truth_index"]].to_numpy()
        found = int((vehicles["reason"] == "found").sum())
        n_det += found + len(false)
        kind = "warned" if das.diagnose(data).attrs["beyond_clip"] > BEYOND_CLIP_ADVICE else "rest"
        advice[kind] = [a + b for a, b in zip(advice[kind], (1, found, found + len(false)))]
        scenes.append((vehicles, false))
        del data, details, image
    counts = losses.loss_counts(scenes)
    return {
        **counts,
        "n_detected": n_det,
        "beyond_clip": float(np.mean(beyond)),
        "dynamic_range": float(np.median(ranges)),
        "advice": advice,
    }


def main(argv=None) -> int:
    from terralab.das.losses import FALSE_REASONS, HEADWAY_BINS_S, MISSED_REASONS

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="1000-1019", help="first-last seed (inclusive)")
    ap.add_argument("--simulators", default="halfspace,bump")
    ap.add_argument("--sites", default="highway,urban")
    ap.add_argument("--quiet", action="store_true", help="also with instrument noise at 1 %% of the lowest")
    args = ap.parse_args(argv)
    a, b = (int(s) for s in args.seeds.split("-"))
    warnings.simplefilter("ignore")
    lo, hi = HEADWAY_BINS_S
    bins = (f"<{lo:g}s", f"{lo:g}-{hi:g}s", f">={hi:g}s")
    head = f"{'simulator':10s} {'site':8s} {'true':>5s} {'det':>5s} "
    head += " ".join(f"{'miss:' + r:>12s}" for r in MISSED_REASONS) + " "
    head += " ".join(f"{'false:' + r:>15s}" for r in FALSE_REASONS)
    head += "".join(f" {'recall headway ' + b + ' (n)':>28s}" for b in bins)
    print(head)
    for sim in args.simulators.split(","):
        for site in args.sites.split(","):
            for quiet in (False, True) if args.quiet else (False,):
                r = run(sim, site, range(a, b + 1), quiet)
                _print_row(sim, site + ("-quiet" if quiet else ""), r, bins)
    return 0


def _print_row(sim: str, site: str, r: dict, bins) -> None:
    from terralab.das.losses import ABREAST_S, FALSE_REASONS, MISSED_REASONS

    line = f"{sim:10s} {site:8s} {r['n_true']:5d} {r['n_detected']:5d} "
    line += " ".join(f"{r['missed_' + k]:12d}" for k in MISSED_REASONS) + " "
    line += " ".join(f"{r['false_' + k]:15d}" for k in FALSE_REASONS)
    line += "".join(f" {rec:22.2f} ({n:3d})" for n, rec in r["recall_headway"])
    print(line, flush=True)
    for cls, rows in r["recall_headway_by_class"].items():
        parts = ", ".join(f"{b} {rec:.2f} ({n})" for b, (n, rec) in zip(bins, rows))
        print(f"{'':20s}{cls:>6s}: recall by headway {parts}", flush=True)
    n_ab, found_ab = r["abreast"]
    recall = r["found"] / max(r["n_true"], 1)
    rest = (r["found"] - found_ab) / max(r["n_true"] - n_ab, 1)
    print(
        f"{'':20s} abreast (another of its direction within {ABREAST_S:g} s, side by side): {found_ab} of "
        f"{n_ab} found; recall {recall:.3f}, {rest:.3f} without them",
        flush=True,
    )
    missed, found = r["evidence_missed"], r["evidence_found"]
    print(
        f"{'':20s} evidence on the true track: missed "
        + ", ".join(f"{e} {n}" for e, n in missed.items())
        + "; found "
        + ", ".join(f"{e} {n}" for e, n in found.items()),
        flush=True,
    )
    stage = r["stage_missed"]
    print(
        f"{'':20s} own track of the missed (losses.search_stages): "
        + ", ".join(f"{e} {n}" for e, n in stage.items() if n or e in ("no track", "kept"))
        + f"; of the found, kept {r['stage_found']['kept']}",
        flush=True,
    )
    (n_w, tp_w, det_w), (n_r, tp_r, det_r) = r["advice"]["warned"], r["advice"]["rest"]
    print(
        f"{'':20s} image: {r['beyond_clip']:.1%} beyond the soft clip, "
        f"median channel dynamic range {r['dynamic_range']:.0f}; over-counting advice on {n_w} of "
        f"{n_w + n_r} scenes (precision there {tp_w}/{det_w}, on the others {tp_r}/{det_r})",
        flush=True,
    )


if __name__ == "__main__":
    raise SystemExit(main())
