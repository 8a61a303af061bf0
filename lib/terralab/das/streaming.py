"""Vehicles from DAS files as they arrive, or from an archive (serially or on a dask.distributed Client).

The published pipeline re-reads and re-filters the last 60 s every 20 s. Here each file is low-passed and
decimated **once**, by a stateful :class:`~terralab.das.filters.Decimator` that carries its filter state from
file to file; only the small decimated products (~8 Hz and ~100 Hz, binned channels) are kept for the last
``batch_s`` seconds, and every ``step_s`` seconds of new data the detector runs on that window.

Vehicles keep one id: a vehicle is emitted once, from the first window that holds its whole crossing (or from
the last window that can still see it), and a vehicle re-found in a later overlapping window is recognised
(same direction, close time and speed) and not emitted again.

Examples
--------
>>> from terralab import das
>>> for batch in das.stream("/data/astfjord/20240501/dphi", batch_s=60, step_s=20):   # doctest: +SKIP
...     print(batch.attrs["batch_end"], batch.attrs["latency_s"], len(batch))
"""

from __future__ import annotations

import os
import time as _time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidInputError
from ..progress import progress_bar
from .params import KMH

if TYPE_CHECKING:
    import pandas as pd
    from dask.distributed import Client

    from .classify import VehicleClassifier
    from .params import DetectParams

__all__ = ["StreamState", "process_archive", "stream"]


@dataclass
class StreamState:
    """What a stream keeps between files (exposed for inspection and tests)."""

    decimator: Any = None
    section: tuple[float, float] | None = None
    lf: list = field(default_factory=list)
    lf_t: list = field(default_factory=list)
    mid: list = field(default_factory=list)
    mid_t: list = field(default_factory=list)
    energy: list = field(default_factory=list)  # band energies at the lf rate (when the detector uses them)
    segment_start_ns: int | None = None
    next_end_ns: int | None = None
    emitted: list = field(default_factory=list)  # (t_mid_ns, direction, speed_kmh, vehicle_id)
    next_id: int = 0
    n_batches: int = 0


def stream(
    directory_or_paths: str | os.PathLike | Sequence[str | os.PathLike],
    batch_s: float = 60.0,
    step_s: float = 20.0,
    *,
    follow: bool = False,
    poll_s: float = 1.0,
    idle_timeout_s: float | None = 60.0,
    read_kwargs: dict | None = None,
    params: DetectParams | None = None,
    classifier: VehicleClassifier | None = None,
    emit_range_ns: tuple[int, int] | None = None,
    progress: bool = False,
    **detect_kwargs: Any,
) -> Iterator:
    """Yield the vehicles of a DAS record batch by batch, as its files arrive or over an archive.

    Parameters
    ----------
    directory_or_paths : directory, glob pattern or sequence of files
        Files are taken in name order (DAS recorders name files by start time).
    batch_s, step_s : float
        Length of the analysed window and the step between windows (s); ``step_s <= batch_s``.
    follow : bool
        Keep watching a directory for new files (a file is used once its size stops changing); stops after
        ``idle_timeout_s`` seconds without a new file (``None``: never).
    poll_s : float
        Seconds between directory scans in follow mode.
    read_kwargs : dict, optional
        Passed to :func:`terralab.das.io.read_file` (e.g. ``measurand=...``).
    params, classifier, **detect_kwargs
        Detector settings, as for :func:`terralab.das.detect_vehicles`.
    emit_range_ns : (int, int), optional
        Only emit vehicles whose mid-section time (ns since epoch) lies in ``[start, end)`` (used by
        :func:`process_archive` to split an archive between workers).
    progress : bool
        Show a progress bar over files (archive mode).

    Yields
    ------
    pandas.DataFrame
        The vehicles confirmed in this batch (possibly none), columns as :func:`detect_vehicles`, with stable
        integer ``vehicle_id``. ``attrs``: ``batch`` (index), ``batch_start`` / ``batch_end`` (data times),
        ``files`` (files read for this batch), ``compute_s`` (filtering + detection time of this batch),
        ``latency_s`` (wall time from the newest file of the batch being available - seen complete in follow
        mode, opened in archive mode - to the batch being yielded) and ``gap``
        (True when the batch closes a segment before a gap in the data).
    """
    from . import io
    from .params import resolve_params

    if not (0 < step_s <= batch_s):
        raise InvalidInputError(f"need 0 < step_s <= batch_s, got step_s={step_s}, batch_s={batch_s}")
    p = resolve_params(params, detect_kwargs)
    read_kwargs = dict(read_kwargs or {})
    st = StreamState()
    files_iter = (
        _follow_files(directory_or_paths, poll_s, idle_timeout_s)
        if follow
        else iter([(f, _time.perf_counter()) for f in io.list_files(directory_or_paths)])
    )
    if progress and not follow:
        files_iter = iter(progress_bar(list(files_iter), desc="DAS files", enabled=True))
    pending_files: list[str] = []
    compute = 0.0
    seen_at = _time.perf_counter()
    for path, seen_at in files_iter:
        if not follow:
            seen_at = _time.perf_counter()  # an archive file is "available" when we start reading it
        pieces = io.read_file(path, **read_kwargs)
        pending_files.append(str(path))
        for piece in pieces:
            t_c = _time.perf_counter()
            gap_batches = _ingest(st, piece, p, batch_s)
            compute += _time.perf_counter() - t_c
            for out in gap_batches:  # the segment before a gap is closed first
                yield _finish(out, st, pending_files, compute, seen_at, emit_range_ns)
                pending_files, compute = [], 0.0
            while st.next_end_ns is not None and _buffer_end(st) >= st.next_end_ns:
                t_c = _time.perf_counter()
                out = _run_window(st, p, classifier, batch_s, step_s, final=False)
                compute += _time.perf_counter() - t_c
                yield _finish(out, st, pending_files, compute, seen_at, emit_range_ns)
                pending_files, compute = [], 0.0
    if st.lf:
        t_c = _time.perf_counter()
        out = _run_window(st, p, classifier, batch_s, step_s, final=True)
        compute += _time.perf_counter() - t_c
        yield _finish(out, st, pending_files, compute, seen_at, emit_range_ns)


def process_archive(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    client: Client | None = None,
    files_per_task: int = 30,
    batch_s: float = 60.0,
    step_s: float = 20.0,
    read_kwargs: dict | None = None,
    **detect_kwargs: Any,
) -> pd.DataFrame:
    """All vehicles of an archive of DAS files, processed in parallel chunks (on a dask Client if given).

    The files (in name order) are split into chunks of ``files_per_task``; each task streams its chunk plus
    enough neighbouring files before (filter warm-up, vehicles already on the section) and after (vehicles
    still crossing), and keeps the vehicles whose mid-section time falls in its own chunk, so every vehicle
    is reported by exactly one task.

    Parameters
    ----------
    paths : directory, glob or sequence of files
    client : dask.distributed.Client, optional
        Run the chunks as dask tasks; without a client they run one after another in this process.
    files_per_task : int
        Files per task.
    batch_s, step_s, read_kwargs, **detect_kwargs
        As for :func:`stream`.

    Returns
    -------
    pandas.DataFrame
        Vehicles sorted by time, with ``vehicle_id`` renumbered 0..n-1; ``attrs["tasks"]`` is the number of
        chunks and ``attrs["compute_s"]`` the summed compute time of all tasks.
    """
    import pandas as pd

    from . import io
    from .detect import empty_vehicle_table

    files = [str(f) for f in io.list_files(paths)]
    if files_per_task < 1:
        raise InvalidInputError("files_per_task must be >= 1")
    ranges = [io.time_range(f) for f in files]
    starts = [int(t0.astype("datetime64[ns]").astype(np.int64)) for t0, _ in ranges]
    order = np.argsort(starts, kind="stable")
    files = [files[i] for i in order]
    starts = [starts[i] for i in order]
    dur = _file_duration_s(files[0], ranges[order[0]]) if files else 0.0
    pad = int(np.ceil(batch_s / max(dur, 1e-3))) + 1
    tasks = []
    for k in range(0, len(files), files_per_task):
        lo, hi = k, min(len(files), k + files_per_task)
        own = (
            starts[lo] if k > 0 else np.iinfo(np.int64).min,
            starts[hi] if hi < len(files) else np.iinfo(np.int64).max,
        )
        tasks.append((files[max(0, lo - pad) : min(len(files), hi + pad)], own))
    kwargs = dict(batch_s=batch_s, step_s=step_s, read_kwargs=read_kwargs, **detect_kwargs)
    if client is not None:
        futures = client.map(
            _archive_task, [t[0] for t in tasks], [t[1] for t in tasks], [kwargs] * len(tasks), pure=False
        )
        results = client.gather(futures)
    else:
        results = [_archive_task(f, own, kwargs) for f, own in tasks]
    frames = [r[0] for r in results if len(r[0])]
    out = pd.concat(frames, ignore_index=True) if frames else empty_vehicle_table()
    out = out.sort_values("time").reset_index(drop=True)
    out["vehicle_id"] = np.arange(len(out), dtype=np.int64)
    out.attrs["tasks"] = len(tasks)
    out.attrs["compute_s"] = float(sum(r[1] for r in results))
    return out


# --------------------------------------------------------------------------------------------------
def _archive_task(files: list[str], own: tuple[int, int], kwargs: dict):
    import pandas as pd

    from .detect import empty_vehicle_table

    frames, compute = [], 0.0
    for batch in stream(files, emit_range_ns=own, **kwargs):
        compute += batch.attrs.get("compute_s", 0.0)
        if len(batch):
            frames.append(batch)
    out = pd.concat(frames, ignore_index=True) if frames else empty_vehicle_table()
    return out, compute


def _file_duration_s(path: str, time_range: tuple[np.datetime64, np.datetime64]) -> float:
    """Seconds a file covers, from its first and last sample times (plus one sample step for npz files)."""
    t0, t1 = time_range
    piece_fs = None
    if Path(path).suffix.lower() == ".npz":
        with np.load(path, allow_pickle=False) as z:
            key = next((k for k in ("t", "time", "times") if k in z.files), None)
            if key is not None and len(z[key]) > 1:
                tt = z[key].astype("datetime64[ns]").astype(np.int64)
                piece_fs = 1e9 / float(np.median(np.diff(tt)))
    dt = 1.0 / piece_fs if piece_fs else 0.0
    return float((t1 - t0) / np.timedelta64(1, "s")) + dt


def _follow_files(directory, poll_s: float, idle_timeout_s: float | None):
    """Yield (path, time first seen complete) for files appearing in a directory, in name order."""
    from . import io

    d = Path(directory)
    if not d.is_dir():
        raise InvalidInputError(f"follow=True needs a directory to watch, got {directory}")
    done: set[str] = set()
    sizes: dict[str, int] = {}
    last_new = _time.monotonic()
    while True:
        found = False
        cands = sorted(str(p) for p in d.rglob("*") if io.is_data_file(p))
        for f in cands:
            if f in done:
                continue
            size = os.path.getsize(f)
            if sizes.get(f) == size and size > 0:  # unchanged since the last scan: complete
                done.add(f)
                found = True
                last_new = _time.monotonic()
                yield f, _time.perf_counter()
            else:
                sizes[f] = size
        if not found:
            if idle_timeout_s is not None and _time.monotonic() - last_new > idle_timeout_s:
                return
            _time.sleep(poll_s)


def _buffer_end(st: StreamState) -> int:
    return int(st.lf_t[-1][-1]) if st.lf_t and len(st.lf_t[-1]) else -1


def _ingest(st: StreamState, piece, p, batch_s: float) -> list:
    """Filter one contiguous piece into the buffers; returns closing batches when a gap ends a segment."""
    from . import io
    from .detect import make_decimator

    fs = piece.attrs.get("sampling_rate_hz") or io.sampling_rate_hz(piece)
    x = np.asarray(piece["distance"].values, dtype=float)
    values = piece.values
    if x[0] > x[-1]:
        x, values = x[::-1], np.ascontiguousarray(values[:, ::-1])
    t0 = int(piece["time"].values[0].astype("datetime64[ns]").astype(np.int64))
    out = []
    dec = st.decimator
    if dec is not None:
        if dec.n_channels != len(x) or abs(dec.fs - fs) > 1e-3 * fs:
            raise InvalidInputError("channels or sampling rate changed between files; stream them separately")
        expected = dec.expected_next_ns
        step = (t0 - expected) * fs / 1e9
        if step > 0.5:  # a gap: close the segment, restart the filters
            warnings.warn(
                f"gap of {step / fs:.3f} s in the DAS stream before {piece.attrs.get('source_files')}; "
                "filters restart",
                stacklevel=3,
            )
            out.append(_run_window(st, p, None, batch_s, None, final=True, gap=True))
            _reset_segment(st)
            dec = None
        elif step < -0.5:  # overlap: drop the samples already seen
            n_drop = round(float(-step))
            if n_drop >= len(values):
                return out
            values = values[n_drop:]
            t0 = expected
    if dec is None:
        dec = make_decimator(fs, x, p, str(piece.attrs.get("measurand", "unknown")))
        st.decimator = dec
        st.section = (float(x[0]), float(x[-1]))
        window_s = batch_s - 4.0  # a vehicle must enter and leave inside one window (2 s guard at each end)
        v_fit = abs(x[-1] - x[0]) / max(window_s, 1e-3) / KMH
        if v_fit > p.speed_min_kmh:
            warnings.warn(
                f"vehicles slower than {v_fit:.0f} km/h need more than batch_s - 4 s to cross this "
                f"{abs(x[-1] - x[0]):.0f} m section; they are only seen on partial tracks "
                f"(raise batch_s to detect them reliably, down to speed_min_kmh={p.speed_min_kmh:g})",
                stacklevel=3,
            )
        st.segment_start_ns = t0
        st.next_end_ns = t0 + int(batch_s * 1e9)
    prod = dec.process(values, t0)
    st.lf.append(prod.lf)
    st.lf_t.append(prod.lf_time_ns)
    st.mid.append(prod.mid)
    st.mid_t.append(prod.mid_time_ns)
    if prod.energy is not None:
        st.energy.append(prod.energy)
    return out


def _reset_segment(st: StreamState) -> None:
    st.decimator = None
    st.lf, st.lf_t, st.mid, st.mid_t, st.energy = [], [], [], [], []
    st.segment_start_ns = None
    st.next_end_ns = None


def _run_window(
    st: StreamState, p, classifier, batch_s: float, step_s: float | None, *, final: bool, gap: bool = False
):
    """Detect in the buffered window ending at next_end_ns (or at the buffer end when final)."""
    from .detect import detect_in_products, empty_vehicle_table
    from .filters import Products

    lf = np.concatenate(st.lf) if st.lf else np.zeros((0, 1), np.float32)
    lf_t = np.concatenate(st.lf_t) if st.lf_t else np.zeros(0, np.int64)
    mid = np.concatenate(st.mid) if st.mid else np.zeros((0, 1), np.float32)
    mid_t = np.concatenate(st.mid_t) if st.mid_t else np.zeros(0, np.int64)
    if len(lf_t) == 0:
        return {"vehicles": empty_vehicle_table(), "start": None, "end": None, "gap": gap}
    end = int(lf_t[-1]) if final else int(st.next_end_ns)
    start = end - int(batch_s * 1e9)
    if start <= int(st.segment_start_ns):
        # delay-compensated stamps of the first samples precede the first input sample: keep them all
        start = min(int(lf_t[0]), int(mid_t[0]) if len(mid_t) else int(lf_t[0]))
    sel = (lf_t >= start) & (lf_t <= end)
    msel = (mid_t >= start) & (mid_t <= end)
    energy = np.concatenate(st.energy)[sel] if st.energy else None
    prod = Products(mid=mid[msel], mid_time_ns=mid_t[msel], lf=lf[sel], lf_time_ns=lf_t[sel], energy=energy)
    vehicles = detect_in_products(prod, st.decimator, section=st.section, params=p, classifier=classifier)
    guard = int(2e9)
    at_segment_start = start <= int(st.segment_start_ns) + guard
    new = []
    for i, row in vehicles.iterrows():
        t_in = int(min(row.t_start.value, row.t_end.value))
        t_out = int(max(row.t_start.value, row.t_end.value))
        starts_inside = t_in >= start + guard or at_segment_start
        ends_inside = t_out <= end - guard or final
        last_chance = step_s is None or final or t_in < start + int(step_s * 1e9) + guard
        if not ((starts_inside and ends_inside) or last_chance):
            continue
        if _already_emitted(st, row):
            continue
        new.append(i)
    out = vehicles.loc[new].copy()
    for i in out.index:
        out.loc[i, "vehicle_id"] = st.next_id
        st.emitted.append(
            (
                int(out.loc[i, "time"].value),
                int(out.loc[i, "direction"]),
                float(out.loc[i, "speed_kmh"]),
                st.next_id,
            )
        )
        st.next_id += 1
    out["vehicle_id"] = out["vehicle_id"].astype(np.int64)
    # forget what can no longer reappear; keep the buffers to one batch
    horizon = end - int(2 * batch_s * 1e9)
    st.emitted = [e for e in st.emitted if e[0] >= horizon]
    if not final and step_s is not None:
        st.next_end_ns = end + int(step_s * 1e9)
        keep_from = st.next_end_ns - int(batch_s * 1e9)
        _trim(st, keep_from)
    st.n_batches += 1
    return {"vehicles": out.reset_index(drop=True), "start": start, "end": end, "gap": gap}


def _already_emitted(st: StreamState, row) -> bool:
    v = float(row.speed_kmh) * KMH
    tol_ns = max(1.0, 10.0 / max(v, 0.1)) * 1e9
    for t_ns, d, speed, _ in st.emitted:
        if (
            d == int(row.direction)
            and abs(t_ns - row.time.value) <= tol_ns
            and abs(np.log(speed / float(row.speed_kmh))) < 0.2
        ):
            return True
    return False


def _trim(st: StreamState, keep_from_ns: int) -> None:
    # the energy product shares the lf time stamps: trim it with them
    groups = [((st.lf, st.energy) if st.energy else (st.lf,), st.lf_t), ((st.mid,), st.mid_t)]
    for arr_lists, ts in groups:
        while ts and len(ts[0]) and ts[0][-1] < keep_from_ns:
            ts.pop(0)
            for arrs in arr_lists:
                arrs.pop(0)
        if ts and len(ts[0]) and ts[0][0] < keep_from_ns:
            k = int(np.searchsorted(ts[0], keep_from_ns))
            ts[0] = ts[0][k:]
            for arrs in arr_lists:
                arrs[0] = arrs[0][k:]


def _finish(out: dict, st: StreamState, files: list, compute: float, seen_at: float, emit_range_ns):
    vehicles = out["vehicles"]
    if emit_range_ns is not None and len(vehicles):
        tv = vehicles["time"].values.astype("datetime64[ns]").astype(np.int64)
        vehicles = vehicles[(tv >= emit_range_ns[0]) & (tv < emit_range_ns[1])].reset_index(drop=True)
    vehicles.attrs = {
        "batch": st.n_batches - 1,
        "batch_start": None if out["start"] is None else np.datetime64(int(out["start"]), "ns"),
        "batch_end": None if out["end"] is None else np.datetime64(int(out["end"]), "ns"),
        "files": list(files),
        "compute_s": float(compute),
        "latency_s": float(_time.perf_counter() - seen_at),
        "gap": bool(out["gap"]),
    }
    return vehicles


def collect(batches: Iterable[pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run a :func:`stream` to the end; return ``(vehicles, batch_table)``.

    ``vehicles`` concatenates every batch's new vehicles; ``batch_table`` has one row per batch with
    ``batch``, ``batch_start``, ``batch_end``, ``n_new``, ``n_files``, ``compute_s``, ``latency_s`` and
    ``gap``.
    """
    import pandas as pd

    from .detect import empty_vehicle_table

    frames, rows = [], []
    for b in batches:
        a = b.attrs
        rows.append(
            {
                "batch": a.get("batch"),
                "batch_start": a.get("batch_start"),
                "batch_end": a.get("batch_end"),
                "n_new": len(b),
                "n_files": len(a.get("files", [])),
                "compute_s": a.get("compute_s"),
                "latency_s": a.get("latency_s"),
                "gap": a.get("gap"),
            }
        )
        if len(b):
            frames.append(b)
    vehicles = pd.concat(frames, ignore_index=True) if frames else empty_vehicle_table()
    return vehicles, pd.DataFrame(rows)
