"""Sweep speed-up: four runs of one notebook one after another vs ``terralab.sweep`` on 2 Dask workers.

Each run of ``tests/notebooks_sweep/sweep_toy.ipynb`` does ``--work-n`` iterations of single-threaded
pure-Python work (a fixed amount of work, not a fixed time, so contention shows), plus the usual kernel
start, execution and HTML rendering. Three timings, all in this process:

* serial — ``run_notebook`` four times in a loop (the baseline);
* sweep (cold) — ``sweep(..., n_workers=2)`` as ``terralab sweep`` runs it: the LocalCluster is started and
  stopped inside (it starts before the sweep is checked, its workers import the runner while they come up,
  and it stops while the comparison page is drawn);
* warm sweep — the same grid on an already running 2-worker LocalCluster (``--scheduler``), start-up excluded.

Both sweeps also write the comparison page (``index.html``); the serial loop writes none. CPU seconds (this
process and its finished children) are printed beside the wall times: they show the sweep's extra work
(worker start-up, the page) independently of how busy the machine is. Wall-time ratios are only comparable
on an otherwise idle machine: the script prints the load average before and after and says so when it was
not idle.

Goal: serial / sweep ≥ 1.7 on 2 cores. Usage::

    .venv/bin/python benchmarks/sweep_speedup.py [--work-n 150000000] [--runs 4] [--workers 2] [--repeat 1]

On a machine shared with other work, use ``--repeat 3``: timings are interleaved and the minimum of each
is reported.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "tests" / "notebooks_sweep" / "sweep_toy.ipynb"


def _cpu_s() -> float:
    """CPU seconds of this process and of its children that have finished (kernels, worker processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _machine_busy_s() -> float | None:
    """CPU seconds all processes on this machine have used since boot (Linux /proc/stat), or None."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


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
    cpu: dict[str, list[float]] = {"serial": [], "sweep": []}
    load_before = os.getloadavg()[0]
    start_wall, start_ours, start_machine = time.perf_counter(), _cpu_s(), _machine_busy_s()

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
            t0, c0 = time.perf_counter(), _cpu_s()
            for n in grid["n"]:
                result = run_notebook(
                    NOTEBOOK, {"n": n, **fixed}, Path(tmp, "serial"), name=f"serial-{n}", progress=False
                )
                assert result.status == "ok", result.error
            timings["serial"].append(time.perf_counter() - t0)
            cpu["serial"].append(_cpu_s() - c0)

            t0, c0 = time.perf_counter(), _cpu_s()
            result = sweep(
                NOTEBOOK,
                grid,
                parameters=fixed,
                output=Path(tmp, f"sweep-{rep}"),
                n_workers=args.workers,
                progress=False,
            )
            timings["sweep"].append(time.perf_counter() - t0)
            cpu["sweep"].append(_cpu_s() - c0)  # its workers (and their kernels) have exited: all counted
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
    # Everything this script started has exited now (the warm cluster too), so its CPU time is all counted;
    # what the machine used beyond it is other people's work competing for the same cores.
    wall, ours = time.perf_counter() - start_wall, _cpu_s() - start_ours
    machine = _machine_busy_s()
    other = None if machine is None or start_machine is None else max(0.0, machine - start_machine - ours)
    print(
        f"serial:      {best['serial']:7.1f} s  (run_notebook x {args.runs} in a loop; "
        f"CPU {min(cpu['serial']):.1f} s)"
    )
    print(
        f"sweep:       {best['sweep']:7.1f} s  (sweep(); its LocalCluster of {args.workers} started and "
        f"stopped inside; CPU {min(cpu['sweep']):.1f} s)"
    )
    print(
        f"warm sweep:  {best['warm sweep']:7.1f} s  (sweep() on an already running LocalCluster of "
        f"{args.workers})"
    )
    cold, warm = best["serial"] / best["sweep"], best["serial"] / best["warm sweep"]
    print(
        f"speedup serial/sweep (cold) = {cold:.2f}x "
        f"(goal >= 1.7x on 2 cores: {'met' if cold >= 1.7 else 'not met'}); "
        f"serial/warm sweep = {warm:.2f}x"
    )
    if other is None:
        print(f"load average {load_before:.2f} before the benchmark (no /proc/stat to measure other work)")
    else:
        share = other / (wall * (os.cpu_count() or 1))
        print(
            f"other processes used {other:.0f} CPU-s ({share:.0%} of the machine) while this ran "
            f"(load average before: {load_before:.2f}): "
            + (
                "the machine was busy, so these wall-time ratios are not idle-machine figures"
                if share > 0.05
                else "an idle machine"
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
