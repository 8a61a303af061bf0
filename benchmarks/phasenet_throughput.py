"""PhaseNet throughput: annotate one hour of 3-component 100-Hz data.

Prints windows per second of ``terralab.seismic.annotate`` (30-s windows, 15-s overlap, batch 256, averaged
stacking), the ratio to a per-window unbatched loop over the same windows with the same model, and — when
SeisBench is importable — the ratio to SeisBench's PhaseNet ``annotate`` on the same Stream with the same
window settings (3001 samples, overlap 1500, batch 256, ``stacking="avg"``; its weights are random, which does
not change the cost). All timings are measured in this process, best of ``--repeats`` runs after a warm-up,
with ``--threads`` torch threads (default 2) set explicitly for every contender, and OpenMP's passive wait
policy unless ``--omp-active`` (see ``main``).

Run::

    .venv/bin/python benchmarks/phasenet_throughput.py [--threads 2] [--repeats 3] [--minutes 60] [--cpu-time]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np


def one_hour_stream(minutes: float):
    """Real NCEDC records (the embedded sample) stitched and repeated into ``minutes`` of continuous data."""
    from terralab.seismic import io

    wave, _ = io.stitch_records(io.three_component(io.read_sample()))
    n = int(minutes * 60 * 100)
    reps = int(np.ceil(n / wave.sizes["time"]))
    data = np.tile(wave.values, (1, reps))[:, :n]
    wave = io.waveform_dataarray(data, "2020-01-01T00:00:00", 100.0, trace_id="XX.BENCH..HH")
    return wave, io.dataarray_to_stream(wave)


def unbatched_loop(model, data: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The naive baseline: one forward pass per window, then the same averaged merge."""
    import torch

    from terralab.seismic.phasenet import normalize_windows

    out = np.zeros((3, data.shape[1]))
    norm = np.zeros(data.shape[1])
    with torch.inference_mode():
        for s in starts:
            x = torch.from_numpy(np.ascontiguousarray(data[None, :, s : s + 3000]))
            out[:, s : s + 3000] += model(normalize_windows(x))[0].numpy()
            norm[s : s + 3000] += 1
    return out / norm


def best_of(fn, repeats: int) -> tuple[float, float]:
    """Smallest wall-clock and smallest process CPU time (s) of ``repeats`` calls after one warm-up.

    CPU time is reported too because on a shared machine wall-clock times swing with other load; the
    ratios below use wall-clock unless ``--cpu-time`` is given.
    """
    fn()  # warm-up (allocations, lazy init)
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return min(wall), min(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=60.0, help="length of the test stream")
    parser.add_argument(
        "--cpu-time", action="store_true", help="compare process CPU time instead of wall-clock"
    )
    parser.add_argument(
        "--omp-active",
        action="store_true",
        help="keep OpenMP's default (active, spinning) wait policy instead of OMP_WAIT_POLICY=PASSIVE",
    )
    args = parser.parse_args()
    if not args.omp_active:
        # On a machine shared with other busy processes, OpenMP threads that spin while waiting for a
        # descheduled partner make every parallel op slow (measured 3-4x on 2 shared cores). Passive waiting
        # is fair to every contender; it must be set before torch starts its thread pool.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    import torch

    from terralab.seismic import annotate, load_phasenet
    from terralab.seismic.picking import _first_grid_sample, predict_windows, prepare, window_starts

    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    model = load_phasenet()
    _, stream = one_hour_stream(args.minutes)
    st = prepare(stream)[0]
    starts = window_starts(st.data.shape[1], 3000, 1500, _first_grid_sample(st.start, 1500))
    n_windows = len(starts)
    print(
        f"data: {args.minutes:g} min, 3 components, 100 Hz ({st.data.shape[1]} samples); "
        f"{n_windows} windows of 3000 samples, stride 1500; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(default)')}"
    )

    pick = 1 if args.cpu_time else 0
    unit = "CPU s" if args.cpu_time else "s"
    ours = best_of(
        lambda: annotate(stream, model, overlap_s=15.0, batch_size=256, num_threads=args.threads),
        args.repeats,
    )
    windows = np.stack([st.data[:, s : s + 3000] for s in starts])
    forward = best_of(lambda: predict_windows(model, windows, 256), args.repeats)
    loop = best_of(lambda: unbatched_loop(model, st.data, starts), max(1, args.repeats - 1))
    t_ours, t_loop = ours[pick], loop[pick]
    print(
        f"terralab annotate        : {t_ours:7.3f} {unit} = {n_windows / t_ours:7.1f} windows/s "
        f"({args.minutes * 60 / t_ours:,.0f}x real time); bare batched forward {forward[pick]:.3f} {unit} "
        f"[wall {ours[0]:.3f} s, CPU {ours[1]:.3f} s]"
    )
    print(
        f"per-window unbatched loop: {t_loop:7.3f} {unit} = {n_windows / t_loop:7.1f} windows/s "
        f"[wall {loop[0]:.3f} s, CPU {loop[1]:.3f} s]"
    )
    print(f"RATIO batched vs unbatched loop: {t_loop / t_ours:.2f}x faster")

    try:
        import seisbench.models as sbm
    except ImportError:
        print(
            "SeisBench not importable: no SeisBench comparison "
            "(pip install seisbench, or put it on PYTHONPATH)"
        )
        return
    import seisbench

    sb = sbm.PhaseNet(phases="NPS")  # random weights: the cost is the same
    sb.eval()
    # alternate the two so that changing load on a shared machine hits both alike
    sb_times, our_times = [], []
    for _ in range(args.repeats):
        sb_times.append(best_of(lambda: sb.annotate(stream, overlap=1500, batch_size=256, stacking="avg"), 1))
        torch.set_num_threads(args.threads)
        our_times.append(
            best_of(
                lambda: annotate(stream, model, overlap_s=15.0, batch_size=256, num_threads=args.threads), 1
            )
        )
    t_sb = min(t[pick] for t in sb_times)
    t_ours = min(t[pick] for t in our_times)
    print(
        f"SeisBench {seisbench.__version__} PhaseNet.annotate: "
        f"{t_sb:7.3f} {unit} = {n_windows / t_sb:7.1f} windows/s "
        f"[wall {min(t[0] for t in sb_times):.3f} s, CPU {min(t[1] for t in sb_times):.3f} s]"
    )
    print(f"RATIO terralab vs SeisBench: {t_sb / t_ours:.2f}x (>1 means terralab is faster)")


if __name__ == "__main__":
    main()
