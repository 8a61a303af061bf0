"""DAS traffic detection throughput: 60 s of 800 channels x 1000 Hz float32 (the Åstfjord-bridge rate).

Prints, all measured in this process on one core:

* the real-time factor of ``terralab.das.detect_vehicles`` (seconds of data per second of computing;
  goal >= 100);
* the ratio of its time to one ``scipy.signal.decimate(x, 125, ftype="fir", axis=0)`` pass over the same array
  (the first step of the published chain; goal <= 3);
* its peak memory (tracemalloc) relative to the input array (goal <= 3).

Times are the best of ``--repeat`` runs after a warm-up run (imports and first-call costs excluded for both).
Run it on an otherwise idle machine: ``python benchmarks/das_throughput.py``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core, as the goal is stated

import argparse
import time
import tracemalloc


def _best_time(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _peak_bytes(fn) -> int:
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak - base


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--channels", type=int, default=800)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--fs", type=float, default=1000.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--image",
        default="strain",
        choices=("strain", "both"),
        help="detector image: the packaged 'strain' or 'both' (adds the band-limited energy image)",
    )
    ap.add_argument(
        "--peel", action="store_true", help="with the second pass of terralab.das.peel (peel_sigma=3.5)"
    )
    args = ap.parse_args(argv)
    kw = {"image": args.image, **({"peel_sigma": 3.5} if args.peel else {})}

    from scipy import signal

    from terralab import das

    load = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
        "(figures are only meaningful on an idle machine)"
    )
    data, truth = das.synthetic.highway_bridge(
        duration_s=args.seconds, n_channels=args.channels, fs_hz=args.fs, rate_per_min=30.0, seed=args.seed
    )
    x = data.values
    print(
        f"input: {x.shape[1]} channels x {x.shape[0]} samples {x.dtype} = {x.nbytes / 1e6:.0f} MB, "
        f"{len(truth)} vehicles"
    )

    # warm-up (imports, FFT plans, classifier load) for both sides
    das.detect_vehicles(data.isel(time=slice(0, int(20 * args.fs))), **kw)
    signal.decimate(x[: int(5 * args.fs)], 125, ftype="fir", axis=0)

    t_dec = _best_time(lambda: signal.decimate(x, 125, ftype="fir", axis=0), args.repeat)
    result = {}

    def run():
        result["v"] = das.detect_vehicles(data, **kw)

    t_det = _best_time(run, args.repeat)
    peak = _peak_bytes(run)
    peak_dec = _peak_bytes(lambda: signal.decimate(x, 125, ftype="fir", axis=0))
    vehicles = result["v"]
    scores = das.score(vehicles, truth).iloc[0]

    rt = args.seconds / t_det
    print(
        f"scipy.signal.decimate(x, 125, ftype='fir', axis=0): {t_dec:.3f} s, "
        f"peak {peak_dec / x.nbytes:.2f}x input"
    )
    print(
        f"terralab.das.detect_vehicles({', '.join(f'{k}={v!r}' for k, v in kw.items())}): "
        f"{t_det:.3f} s for {args.seconds:g} s of data, "
        f"{len(vehicles)} vehicles (recall {scores['recall']:.2f}, precision {scores['precision']:.2f})"
    )
    print(f"REAL-TIME FACTOR {rt:.0f}x   (goal >= 100x; published chain ~11x)")
    print(f"RATIO detect / decimate = {t_det / t_dec:.2f}   (goal <= 3)")
    print(
        f"PEAK MEMORY = {peak / x.nbytes:.2f}x input ({peak / 1e6:.0f} MB; goal <= 3x; published chain ~10x)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
