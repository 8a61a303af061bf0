"""Sweep speed-up: four runs of one notebook one after another vs ``terralab.sweep`` on 2 Dask workers.

Each run of ``tests/notebooks_sweep/sweep_toy.ipynb`` does ``--work-n`` iterations of single-threaded
pure-Python work (a fixed amount of work, not a fixed time, so contention shows), plus the usual kernel
start, execution and HTML rendering. Three timings, all in this process:

* serial — ``run_notebook`` four times in a loop (the baseline);
* sweep — ``sweep(..., n_workers=2)`` as ``terralab sweep`` runs it: LocalCluster start-up included;
* warm sweep — the same grid on an already running 2-worker LocalCluster (``--scheduler``), start-up excluded.

Goal: serial / sweep ≥ 1.7 on 2 cores. Usage::

    .venv/bin/python benchmarks/sweep_speedup.py [--work-n 150000000] [--runs 4] [--workers 2] [--repeat 1]

On a machine shared with other work, use ``--repeat 3``: timings are interleaved and the minimum of each
is reported.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "tests" / "notebooks_sweep" / "sweep_toy.ipynb"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-n", type=int, default=150_000_000, help="busy-loop iterations per run")
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="interleaved repetitions; the minimum of each timing is reported",
    )
    args = parser.parse_args()

    from terralab.run import run_notebook
    from terralab.sweep import local_cluster, sweep

    grid = {"n": list(range(1, args.runs + 1))}
    fixed = {"work_n": args.work_n}
    print(
        f"{args.runs} runs of {NOTEBOOK.name}, work_n={args.work_n:,}, {os.cpu_count()} CPUs visible, "
        f"load average before {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    timings: dict[str, list[float]] = {"serial": [], "sweep": [], "warm sweep": []}

    with (
        tempfile.TemporaryDirectory(prefix="terralab-bench-") as tmp,
        local_cluster(args.workers) as cluster,
    ):
        # One throw-away run per worker, so the warm figure excludes imports as well as start-up.
        sweep(
            NOTEBOOK,
            {"n": list(range(args.workers))},
            output=Path(tmp, "warm-up"),
            scheduler=cluster.scheduler_address,
            progress=False,
        )
        for rep in range(args.repeat):
            t0 = time.perf_counter()
            for n in grid["n"]:
                result = run_notebook(
                    NOTEBOOK, {"n": n, **fixed}, Path(tmp, "serial"), name=f"serial-{n}", progress=False
                )
                assert result.status == "ok", result.error
            timings["serial"].append(time.perf_counter() - t0)

            t0 = time.perf_counter()
            result = sweep(
                NOTEBOOK,
                grid,
                parameters=fixed,
                output=Path(tmp, f"sweep-{rep}"),
                n_workers=args.workers,
                progress=False,
            )
            timings["sweep"].append(time.perf_counter() - t0)
            assert result.ok, [r.error for r in result.failed]

            t0 = time.perf_counter()
            result = sweep(
                NOTEBOOK,
                grid,
                parameters=fixed,
                output=Path(tmp, f"warm-{rep}"),
                scheduler=cluster.scheduler_address,
                progress=False,
            )
            timings["warm sweep"].append(time.perf_counter() - t0)
            assert result.ok, [r.error for r in result.failed]
            print(
                f"repeat {rep + 1}: "
                + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in timings.items())
                + f" (load average {os.getloadavg()[0]:.2f})",
                flush=True,
            )

    best = {k: min(v) for k, v in timings.items()}
    print(f"serial:      {best['serial']:7.1f} s  (run_notebook x {args.runs} in a loop)")
    print(
        f"sweep:       {best['sweep']:7.1f} s  (sweep(); its LocalCluster of {args.workers} started and stopped inside)"
    )
    print(
        f"warm sweep:  {best['warm sweep']:7.1f} s  (sweep() on an already running LocalCluster of {args.workers})"
    )
    print(
        f"speedup serial/sweep = {best['serial'] / best['sweep']:.2f}x (goal >= 1.7x on 2 cores); "
        f"serial/warm sweep = {best['serial'] / best['warm sweep']:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
