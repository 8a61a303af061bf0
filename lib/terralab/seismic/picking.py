"""Phase picking on continuous data of any length with PhaseNet: annotate (probabilities) and pick (a table).

The data of each station are brought to 100 Hz and E,N,Z order, cut into 30-s windows with overlap,
normalised per window (as PhaseNet was trained), run through the network in batches, and the window
outputs merged back onto the continuous time axis:

* ``merge="average"`` (default): a weighted mean over the windows covering a sample; the weight falls
  with a raised cosine over the first and last ``taper_s`` of each window, where PhaseNet lacks context,
  so the result hardly depends on where the windows happen to start (picks move < 0.02 s when the
  stream starts 7 s later; tested);
* ``merge="max"``: the maximum over windows, ignoring the first and last ``taper_s`` of every window
  except at the ends of the data.

Input handling (each case is tested):

* sampling rate other than 100 Hz → resampled (polyphase, anti-aliased) with a :class:`ResamplingWarning`;
* components: ``Z, N, E`` or ``Z, 1, 2`` (1 → N, 2 → E) or channel codes ending in them; a missing
  component is filled with zeros (a :class:`MissingComponentWarning`), which is how PhaseNet's training
  data hold single-component (Z only) stations; no recognisable component → :class:`InvalidInputError`;
* gaps (several traces per channel), masked arrays and NaNs count as "no data": they are left out of
  each window's normalisation and enter the network as zeros (a :class:`GapWarning`); the
  probabilities there are NaN when no component has data;
* data shorter than a window are zero-padded to 30 s and the output cropped to the data.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InvalidInputError
from . import polarity as _polarity
from .options import window_options
from .waveforms import (
    SAMPLING_RATE_HZ,
    GapWarning,
    MissingComponentWarning,
    ResamplingWarning,
    StationData,
    prepare,
)

if TYPE_CHECKING:
    import torch
    from matplotlib.figure import Figure

__all__ = [
    "PHASES",
    "PICK_COLUMNS",
    "SAMPLING_RATE_HZ",
    "WINDOW_SAMPLES",
    "GapWarning",
    "MissingComponentWarning",
    "ResamplingWarning",
    "StationData",
    "annotate",
    "annotate_records",
    "find_pick_indices",
    "inference",
    "model_or_default",
    "pick",
    "picks_from_annotations",
    "plot_picks",
    "predict_windows",
    "prepare",
    "window_starts",
]

WINDOW_SAMPLES = 3000
PHASES = ("noise", "P", "S")


# ---------------------------------------------------------------------------------------------------
# windowed inference
# ---------------------------------------------------------------------------------------------------
def window_starts(
    n_samples: int, window: int = WINDOW_SAMPLES, stride: int = 1500, first_grid: int = 0
) -> np.ndarray:
    """Start indices of windows covering ``n_samples``.

    Windows start every ``stride`` samples from ``first_grid`` (0 ≤ first_grid < stride); one window flush
    with the start and one flush with the end are added where the grid leaves the ends uncovered.
    """
    if n_samples <= window:
        return np.array([0])
    grid = np.arange(first_grid % stride, n_samples - window + 1, stride)
    starts = np.unique(np.concatenate([[0], grid, [n_samples - window]]))
    return starts.astype(np.int64)


def _first_grid_sample(start: pd.Timestamp, stride: int) -> int:
    """Samples from ``start`` to the next window boundary of a grid anchored at 1970-01-01 UTC."""
    step_ns = round(float(1e9 / SAMPLING_RATE_HZ))
    t0 = round(float(start.value / step_ns))  # start in whole 100-Hz samples since the epoch
    return int((-t0) % stride)


def _window_weight(window: int, taper: int) -> np.ndarray:
    w = np.ones(window, dtype=np.float32)
    if taper > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(taper) + 0.5) / taper)
        w[:taper] = ramp
        w[-taper:] = ramp[::-1]
    return np.maximum(w, 1e-3)  # never zero, so the first and last samples of the data keep a value


def model_or_default(model: Any) -> torch.nn.Module:
    """``model``, or the packaged PhaseNet (original weights) when it is None."""
    from .phasenet import load_phasenet

    return load_phasenet() if model is None else model


@contextmanager
def inference(model: Any, num_threads: int | None = None) -> Iterator[torch.nn.Module]:
    """Run ``model`` in eval mode, optionally on ``num_threads`` torch threads; both restored afterwards."""
    import torch

    previous = torch.get_num_threads()
    was_training = model.training
    if num_threads is not None:
        torch.set_num_threads(int(num_threads))
    try:
        model.eval()
        yield model
    finally:
        model.train(was_training)
        torch.set_num_threads(previous)


def predict_windows(model: Any, windows: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """PhaseNet probabilities (window, 3, time) of raw windows (window, 3 [E,N,Z], time) with NaN = no data.

    Each window and channel is demeaned and scaled by its standard deviation over the valid samples
    (zero std → 1), then NaN → 0, exactly PhaseNet's normalisation when there are no gaps.
    """
    import torch

    from .phasenet import normalize_windows

    out = []
    param = next(model.parameters())
    with torch.inference_mode():
        for i in range(0, len(windows), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(windows[i : i + batch_size], dtype=np.float32))
            out.append(model(normalize_windows(x).to(param.device)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 3, windows.shape[-1]), np.float32)


def _annotate_station(
    st: StationData,
    model: Any,
    overlap_s: float,
    merge: str,
    taper_s: float,
    batch_size: int,
    progress: bool,
    align_windows: str = "utc",
) -> np.ndarray:
    """Merged probabilities (3, n) of one station's data; NaN where no component has data."""
    from ..progress import progress_bar

    n = st.data.shape[1]
    window = WINDOW_SAMPLES
    overlap = round(float(overlap_s * SAMPLING_RATE_HZ))
    if not 0 <= overlap < window:
        raise InvalidInputError(f"overlap_s must be in [0, 30) s, got {overlap_s}")
    taper = round(float(taper_s * SAMPLING_RATE_HZ))
    if not 0 <= 2 * taper <= window:
        raise InvalidInputError(f"taper_s must be in [0, 15] s, got {taper_s}")
    data = st.data
    if n < window:
        data = np.concatenate([data, np.full((3, window - n), np.nan, np.float32)], axis=1)
    stride = window - overlap
    first = _first_grid_sample(st.start, stride) if align_windows == "utc" else 0
    starts = window_starts(data.shape[1], window, stride, first)
    weight = _window_weight(window, taper)
    acc = np.zeros((3, data.shape[1]), dtype=np.float32)
    norm = np.zeros(data.shape[1], dtype=np.float32)
    if merge == "max":
        acc[:] = -np.inf
    chunk = max(batch_size, 1) * 4
    for c0 in progress_bar(
        range(0, len(starts), chunk),
        enabled=progress and len(starts) > chunk,
        desc=f"PhaseNet {st.trace_id}",
        unit="chunk",
    ):
        batch_starts = starts[c0 : c0 + chunk]
        windows = np.stack([data[:, s : s + window] for s in batch_starts])
        probs = predict_windows(model, windows, batch_size)
        for s, p in zip(batch_starts, probs):
            if merge == "average":
                acc[:, s : s + window] += p * weight
                norm[s : s + window] += weight
            else:
                lo = 0 if s == 0 else taper
                hi = window if s + window >= data.shape[1] else window - taper
                np.maximum(acc[:, s + lo : s + hi], p[:, lo:hi], out=acc[:, s + lo : s + hi])
    if merge == "average":
        prob = acc / norm
    else:
        prob = acc
        if not np.isfinite(prob).all():  # only when taper_s leaves samples no window may claim
            raise InvalidInputError("taper_s is too long for this overlap: some samples got no prediction")
    prob = prob[:, :n].astype(np.float32)
    prob[:, np.isnan(st.data).all(axis=0)] = np.nan
    return prob


def _annotate_all(
    waveforms, model, overlap_s, merge, taper_s, batch_size, num_threads, progress, align_windows
):
    if merge not in ("average", "max"):
        raise InvalidInputError(f"merge must be 'average' or 'max', got {merge!r}")
    if align_windows not in ("utc", "start"):
        raise InvalidInputError(f"align_windows must be 'utc' or 'start', got {align_windows!r}")
    stations = prepare(waveforms)
    model = model_or_default(model)
    with inference(model, num_threads):
        probs = [
            _annotate_station(st, model, overlap_s, merge, taper_s, batch_size, progress, align_windows)
            for st in stations
        ]
    return stations, probs


def _prob_dataarray(st: StationData, prob: np.ndarray) -> xr.DataArray:
    from .io import time_axis

    return xr.DataArray(
        prob,
        dims=("phase", "time"),
        coords={"phase": list(PHASES), "time": time_axis(st.start, prob.shape[1], SAMPLING_RATE_HZ)},
        attrs={
            "trace_id": st.trace_id,
            "sampling_rate_hz": SAMPLING_RATE_HZ,
            "units": "1",
            "long_name": "PhaseNet probability",
        },
        name="probability",
    )


def annotate(
    waveforms: Any,
    model: Any = None,
    overlap_s: float = 15.0,
    merge: str = "average",
    taper_s: float = 5.0,
    batch_size: int = 256,
    num_threads: int | None = None,
    align_windows: str = "utc",
    progress: bool = False,
) -> xr.DataArray:
    """PhaseNet noise/P/S probabilities over continuous data of any length.

    Parameters
    ----------
    waveforms : obspy.Stream, obspy.Trace or xr.DataArray (component, time)
        The DataArray needs a datetime64 ``time`` coordinate (UTC) and component names Z/N/E or Z/1/2.
    model : torch.nn.Module, optional
        Default: :func:`terralab.seismic.load_phasenet` (original weights).
    overlap_s : float
        Overlap of consecutive 30-s windows, in s (stride = 30 − overlap).
    merge : {"average", "max"}
        How overlapping windows are combined (see the module docstring).
    taper_s : float
        Window edges down-weighted (average) or ignored (max), in s.
    batch_size : int
        Windows per forward pass.
    num_threads : int, optional
        torch intra-op threads for this call (restored afterwards).
    align_windows : {"utc", "start"}
        ``"utc"`` (default): windows start on a grid of absolute times (multiples of the stride since
        1970-01-01 UTC), so the same data give the same windows, probabilities and picks however a
        stream is cut into files (beyond the first and last 30 s). ``"start"``: the grid starts at the
        first sample.
    progress : bool
        Progress bar over chunks of windows.

    Returns
    -------
    xr.DataArray
        ``(phase, time)`` for a DataArray input; ``(trace_id, phase, time)`` for a Stream (one row per
        station/instrument, on a common 100-Hz time axis, NaN outside each station's data). ``phase`` is
        ``["noise", "P", "S"]``; ``time`` datetime64 UTC at 100 Hz.

    Example
    -------
    >>> from terralab.seismic import io
    >>> wave = io.record_waveform(io.read_sample(max_records=1), 0)   # a real NCEDC record
    >>> prob = annotate(wave)          # (phase, time)
    >>> round(float(prob.sel(phase="P").max()), 1)
    0.9
    """
    stations, probs = _annotate_all(
        waveforms, model, overlap_s, merge, taper_s, batch_size, num_threads, progress, align_windows
    )
    arrays = [_prob_dataarray(st, p) for st, p in zip(stations, probs)]
    if isinstance(waveforms, xr.DataArray):
        return arrays[0]
    t0 = min(st.start for st in stations)
    t1 = max(
        st.start + pd.Timedelta(seconds=(p.shape[1] - 1) / SAMPLING_RATE_HZ) for st, p in zip(stations, probs)
    )
    from .io import time_axis

    n = round(float((t1 - t0).total_seconds() * SAMPLING_RATE_HZ)) + 1
    out = np.full((len(stations), 3, n), np.nan, dtype=np.float32)
    for k, (st, p) in enumerate(zip(stations, probs)):
        o = round(float((st.start - t0).total_seconds() * SAMPLING_RATE_HZ))
        out[k, :, o : o + p.shape[1]] = p[:, : n - o]
    return xr.DataArray(
        out,
        dims=("trace_id", "phase", "time"),
        coords={
            "trace_id": [st.trace_id for st in stations],
            "phase": list(PHASES),
            "time": time_axis(t0, n, SAMPLING_RATE_HZ),
        },
        attrs={"sampling_rate_hz": SAMPLING_RATE_HZ, "units": "1", "long_name": "PhaseNet probability"},
        name="probability",
    )


# ---------------------------------------------------------------------------------------------------
# picks
# ---------------------------------------------------------------------------------------------------
def find_pick_indices(
    prob: np.ndarray, threshold: float, min_separation: int = 50, refine: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Peaks of a probability trace ≥ ``threshold`` at least ``min_separation`` samples apart.

    Returns (fractional index, peak value) arrays; ``refine`` places each peak between samples by a
    parabola through it and its neighbours (never more than half a sample away).
    """
    from scipy.signal import find_peaks

    p = np.nan_to_num(np.asarray(prob, dtype=np.float64), nan=0.0)
    idx, props = find_peaks(p, height=threshold, distance=max(int(min_separation), 1))
    heights = props["peak_heights"]
    pos = idx.astype(np.float64)
    if refine and idx.size:
        inner = (idx > 0) & (idx < p.size - 1)
        i = idx[inner]
        a, b, c = p[i - 1], p[i], p[i + 1]
        denom = a - 2 * b + c
        with np.errstate(divide="ignore", invalid="ignore"):
            delta = np.where(denom < 0, 0.5 * (a - c) / denom, 0.0)
        pos[inner] = i + np.clip(delta, -0.5, 0.5)
    return pos, heights


PICK_COLUMNS = ["trace_id", "phase", "time", "probability", "polarity", "polarity_confidence"]


def pick(
    waveforms: Any,
    model: Any = None,
    p_threshold: float = 0.3,
    s_threshold: float = 0.3,
    min_separation_s: float = 0.5,
    *,
    polarity_kwargs: dict | None = None,
    progress: bool = False,
    **options: Any,
) -> pd.DataFrame:
    """P and S picks on continuous data, with first-motion polarity for P.

    Picks are the peaks of the merged PhaseNet probability above the threshold, at least
    ``min_separation_s`` apart, timed between samples by parabolic interpolation.

    Parameters
    ----------
    waveforms : obspy.Stream, obspy.Trace or xr.DataArray (component, time)
    model : torch.nn.Module, optional
        Default: the original PhaseNet.
    p_threshold, s_threshold : float
        Minimum probability of a P / S pick (PhaseNet's default 0.3).
    min_separation_s : float
        Minimum time between two picks of the same phase, in s.
    polarity_kwargs : dict, optional
        Options of :func:`terralab.seismic.polarity.first_motion`.
    progress : bool
        As for :func:`annotate`.
    **options
        Window options, as for :func:`annotate`: ``overlap_s``, ``merge``, ``taper_s``, ``batch_size``,
        ``num_threads``, ``align_windows`` (:class:`terralab.seismic.options.WindowOptions`); any other name
        is an :class:`~terralab.errors.InvalidInputError`.

    Returns
    -------
    pd.DataFrame
        ``trace_id``, ``phase`` ("P"/"S"), ``time`` (UTC Timestamp), ``probability``, ``polarity``
        ("U"/"D"/"N" for P, None for S), ``polarity_confidence`` (0–1 for P, NaN for S); sorted by time.
    """
    for name, thr in (("p_threshold", p_threshold), ("s_threshold", s_threshold)):
        if not 0 < thr <= 1:
            raise InvalidInputError(f"{name} must be in (0, 1], got {thr}")
    o = window_options(options)
    stations, probs = _annotate_all(
        waveforms,
        model,
        o.overlap_s,
        o.merge,
        o.taper_s,
        o.batch_size,
        o.num_threads,
        progress,
        o.align_windows,
    )
    rows = []
    sep = round(float(min_separation_s * SAMPLING_RATE_HZ))
    for st, prob in zip(stations, probs):
        for k, phase, thr in ((1, "P", p_threshold), (2, "S", s_threshold)):
            pos, heights = find_pick_indices(prob[k], thr, sep)
            for x, h in zip(pos, heights):
                pol, conf = (None, np.nan)
                if phase == "P":
                    pol, conf = _polarity.first_motion(
                        st.data[2], x, SAMPLING_RATE_HZ, **(polarity_kwargs or {})
                    )
                rows.append(
                    {
                        "trace_id": st.trace_id,
                        "phase": phase,
                        "time": st.start + pd.Timedelta(seconds=float(x) / SAMPLING_RATE_HZ),
                        "probability": float(h),
                        "polarity": pol,
                        "polarity_confidence": conf,
                    }
                )
    df = pd.DataFrame(rows, columns=PICK_COLUMNS)
    if len(df):
        df["time"] = pd.to_datetime(df["time"], utc=True)
        df = df.sort_values(["time", "trace_id", "phase"], ignore_index=True)
    else:
        df["time"] = pd.to_datetime(df["time"], utc=True)
        df["probability"] = df["probability"].astype(float)
        df["polarity_confidence"] = df["polarity_confidence"].astype(float)
    return df


def picks_from_annotations(
    annotations: xr.DataArray,
    p_threshold: float = 0.3,
    s_threshold: float = 0.3,
    min_separation_s: float = 0.5,
) -> pd.DataFrame:
    """Picks (``trace_id``, ``phase``, ``time``, ``probability``) from probabilities :func:`annotate`
    returned.

    No polarity (that needs the waveform; use :func:`pick`).
    """
    if (
        not isinstance(annotations, xr.DataArray)
        or "phase" not in annotations.dims
        or "time" not in annotations.dims
    ):
        raise InvalidInputError(
            "expected the DataArray annotate() returns: dims (phase, time) or (trace_id, phase, time)"
        )
    arr = (
        annotations
        if "trace_id" in annotations.dims
        else annotations.expand_dims(trace_id=[annotations.attrs.get("trace_id", "")])
    )
    times = pd.DatetimeIndex(arr["time"].values).tz_localize("UTC")
    sr = float(arr.attrs.get("sampling_rate_hz", SAMPLING_RATE_HZ))
    rows = []
    for tid in arr["trace_id"].values:
        for phase, thr in (("P", p_threshold), ("S", s_threshold)):
            pos, heights = find_pick_indices(
                arr.sel(trace_id=tid, phase=phase).values, thr, round(float(min_separation_s * sr))
            )
            for x, h in zip(pos, heights):
                rows.append(
                    {
                        "trace_id": str(tid),
                        "phase": phase,
                        "time": times[0] + pd.Timedelta(seconds=float(x) / sr),
                        "probability": float(h),
                    }
                )
    df = pd.DataFrame(rows, columns=["trace_id", "phase", "time", "probability"])
    df["time"] = pd.to_datetime(df["time"], utc=True)
    return df.sort_values(["time", "trace_id", "phase"], ignore_index=True)


def annotate_records(
    records: xr.DataArray,
    model: Any = None,
    batch_size: int = 64,
    num_threads: int | None = None,
    progress: bool = False,
) -> xr.DataArray:
    """Probabilities of every record of a record set, one full-record pass each ``(record, phase, time)``.

    Records longer than 30 s are picked with the sliding windows of :func:`annotate`.
    """
    from .records import check_records

    check_records(records)
    out = []
    from ..progress import progress_bar
    from .io import record_waveform

    iterator = progress_bar(range(records.sizes["record"]), desc="records", enabled=progress)

    model = model_or_default(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingComponentWarning)
        for i in iterator:
            out.append(
                annotate(
                    record_waveform(records, int(i)),
                    model=model,
                    batch_size=batch_size,
                    num_threads=num_threads,
                ).values
            )
    return xr.DataArray(
        np.stack(out),
        dims=("record", "phase", "time"),
        coords={"record": records["record"].values, "phase": list(PHASES), "time": records["time"].values},
        attrs={"units": "1", "long_name": "PhaseNet probability"},
        name="probability",
    )


def plot_picks(
    waveform: xr.DataArray,
    probabilities: xr.DataArray,
    picks: pd.DataFrame | None = None,
    reference: dict | None = None,
    title: str | None = None,
) -> Figure:
    """Plot a waveform (E, N, Z) above its P/S probabilities, with picks and optional analyst picks.

    Parameters
    ----------
    waveform : xr.DataArray (component, time)
    probabilities : xr.DataArray (phase, time) from :func:`annotate`
    picks : pd.DataFrame from :func:`pick`, optional
    reference : dict, optional
        ``{"P": time, "S": time}`` analyst picks (drawn dashed).
    title : str, optional

    Returns
    -------
    matplotlib Figure
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(10, 5), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    t = pd.DatetimeIndex(waveform["time"].values)
    t0 = t[0]
    secs = (t - t0).total_seconds()
    for k, comp in enumerate(waveform["component"].values):
        x = np.asarray(waveform.sel(component=comp).values, dtype=np.float64)
        scale = np.nanmax(np.abs(x)) or 1.0
        axes[0].plot(secs, x / scale / 2.2 + k, lw=0.5, color="k")
    axes[0].set_yticks(range(waveform.sizes["component"]))
    axes[0].set_yticklabels([str(c) for c in waveform["component"].values])
    pt = (pd.DatetimeIndex(probabilities["time"].values) - t0).total_seconds()
    colours = {"P": "tab:blue", "S": "tab:red"}
    for phase in ("P", "S"):
        axes[1].plot(
            pt, probabilities.sel(phase=phase).values, color=colours[phase], label=f"{phase} probability"
        )

    def naive(when: Any) -> pd.Timestamp:
        ts = pd.Timestamp(when)
        return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts

    if picks is not None:
        for _, row in picks.iterrows():
            x = (naive(row["time"]) - t0).total_seconds()
            label = row["phase"] + (f" {row['polarity']}" if row["phase"] == "P" and row["polarity"] else "")
            for ax in axes:
                ax.axvline(x, color=colours[row["phase"]], lw=1)
            axes[0].text(x, waveform.sizes["component"] - 0.4, label, color=colours[row["phase"]], fontsize=8)
    for phase, when in (reference or {}).items():
        x = (naive(when) - t0).total_seconds()
        for ax in axes:
            ax.axvline(x, color=colours.get(phase, "k"), lw=1, ls="--")
    axes[1].set_ylim(0, 1.05)
    axes[1].set_xlabel(f"seconds after {t0.isoformat()} UTC")
    axes[1].legend(loc="upper right", fontsize=8)
    if title:
        axes[0].set_title(title)
    fig.tight_layout()
    return fig
