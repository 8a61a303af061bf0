"""What both simulators share: the columns of their truth tables (one row per vehicle), the strain-rate
record they return (:func:`strain_rate_record`), and each vehicle's true track read from a truth table
(:func:`true_tracks`, for the oracle and the loss benchmark's evidence).

:mod:`terralab.das.synthetic` (Gaussian bumps) writes :data:`TRUTH_COLUMNS`; :mod:`terralab.das.halfspace`
writes :data:`HALFSPACE_TRUTH_COLUMNS`, the same with the vehicle ``kind`` and its lane, coverage and
stop/turn/complete columns. :func:`terralab.das.evaluate.match` needs only ``time``, ``speed_kmh`` and
``direction``.

>>> from terralab.das.truth import HALFSPACE_TRUTH_COLUMNS, TRUTH_COLUMNS
>>> set(TRUTH_COLUMNS) < set(HALFSPACE_TRUTH_COLUMNS)
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["HALFSPACE_TRUTH_COLUMNS", "TRUTH_COLUMNS", "strain_rate_record", "true_track", "true_tracks"]

#: Truth columns of every simulator, in order.
TRUTH_COLUMNS = [
    "vehicle_id",
    "time",
    "speed_kmh",
    "direction",
    "vehicle_class",
    "t_enter",
    "t_exit",
    "speed_change",
    "n_axles",
    "length_m",
    "gross_load_kn",
    "vib_freq_hz",
    "lane_coupling",
    "platoon_id",
    "overtaking",
]
#: Truth columns of the half-space simulator, in order: the vehicle kind after its class, lane and fate last.
HALFSPACE_TRUTH_COLUMNS = [
    *TRUTH_COLUMNS[:5],
    "kind",
    *TRUTH_COLUMNS[5:],
    "lane_y_m",
    "coverage",
    "stopped",
    "turning",
    "complete",
]


def strain_rate_record(
    data: np.ndarray,
    t0: np.datetime64,
    x: np.ndarray,
    *,
    fs_hz: float,
    dx_m: float,
    gauge_length_m: float,
    scene: str,
    **attrs: Any,
) -> xr.DataArray:
    """A simulated strain-rate record (time × distance) with the attributes every DAS reader gives, then
    ``attrs``.

    >>> da = strain_rate_record(np.zeros((3, 2)), np.datetime64("2024-01-01T00:00", "ns"),
    ...                         np.array([0.0, 4.0]), fs_hz=100.0, dx_m=4.0, gauge_length_m=8.0,
    ...                         scene="demo", seed=1)
    >>> da.dims, str(da["time"].values[1]), da.attrs["seed"]
    (('time', 'distance'), '2024-01-01T00:00:00.010000000', 1)
    """
    times = t0 + np.round(np.arange(data.shape[0]) * (1e9 / fs_hz)).astype("timedelta64[ns]")
    return xr.DataArray(
        data,
        dims=("time", "distance"),
        coords={"time": times, "distance": x},
        name="strain_rate",
        attrs={
            "units": "1/s",
            "measurand": "strain_rate",
            "gauge_length_m": float(gauge_length_m),
            "sampling_rate_hz": float(fs_hz),
            "channel_spacing_m": float(dx_m),
            "format": "synthetic",
            "scene": scene,
            **attrs,
        },
    )


def true_track(
    t_mid: float, v: float, d: int, entry_exit: tuple, path: tuple | None, xc: np.ndarray, section: tuple
) -> np.ndarray:
    """True passage time (s) at the channel positions ``xc`` of a vehicle passing mid-section at ``t_mid``
    at ``v`` m/s in direction ``d``: along the simulator's ``path`` (times, positions; NaN beyond it) where
    given, else a parabola through the ``entry_exit`` times and ``t_mid``, else a straight line.

    >>> true_track(10.0, 10.0, 1, (np.nan, np.nan), None, np.array([0.0, 100.0]), (0.0, 100.0)).tolist()
    [5.0, 15.0]
    """
    t_in, t_out = entry_exit
    x_mid = 0.5 * (section[0] + section[1])
    tc = t_mid + d * (xc - x_mid) / v
    if path is not None:
        tp, xp = (np.asarray(a, dtype=float) for a in path)
        xp = np.maximum.accumulate(d * xp)
        inside = (d * xc >= xp.min()) & (d * xc <= xp.max())
        return np.where(inside, np.interp(d * xc, xp, tp), np.nan)
    if np.isfinite(t_in) and np.isfinite(t_out):
        xe = np.array([section[0], x_mid, section[1]]) - x_mid
        te = np.array([t_in, t_mid, t_out]) if d > 0 else np.array([t_out, t_mid, t_in])
        if np.all(np.diff(te) * d > 0):
            return np.polyval(np.polyfit(xe, te, 2), xc - x_mid)
    return tc


def true_tracks(
    truth: pd.DataFrame, xc: np.ndarray, section: tuple, t0_ns: int, start_s: float = 0.0
) -> list[np.ndarray | None]:
    """Each vehicle's :func:`true_track` at the channel positions ``xc``, in seconds after ``t0_ns``: from its
    ``time``, ``speed_kmh``, ``direction``, ``t_enter`` and ``t_exit`` (NaN where absent) and the simulator's
    path in ``truth.attrs["tracks"]`` where it carries one per vehicle (times from the record's start, which
    lies ``start_s`` after ``t0_ns``). None for a vehicle whose speed is not positive.

    >>> import pandas as pd
    >>> at_10_s = pd.to_datetime([10_000_000_000])  # 10 s after t0_ns = 0
    >>> truth = pd.DataFrame({"time": at_10_s, "speed_kmh": [36.0], "direction": [-1]})
    >>> true_tracks(truth, np.array([0.0, 100.0]), (0.0, 100.0), 0)[0].tolist()
    [15.0, 5.0]
    """
    from .params import KMH

    def secs(col):
        if col not in truth.columns:
            return np.full(len(truth), np.nan)
        return (truth[col].to_numpy().astype("datetime64[ns]").astype(np.int64) - t0_ns) / 1e9

    paths = truth.attrs.get("tracks")
    paths = paths if paths is not None and len(paths) == len(truth) else [None] * len(truth)
    out: list[np.ndarray | None] = []
    for tm, kmh, d, a, b, path in zip(
        secs("time"),
        truth["speed_kmh"].to_numpy(dtype=float),
        truth["direction"].to_numpy().astype(int),
        secs("t_enter"),
        secs("t_exit"),
        paths,
    ):
        v = kmh * KMH
        path = None if path is None else (np.asarray(path[0], dtype=float) + start_s, path[1])
        out.append(true_track(tm, v, d, (a, b), path, xc, section) if v > 0 else None)
    return out
