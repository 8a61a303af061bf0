"""What both simulators share: the columns of their truth tables (one row per vehicle) and the strain-rate
record they return (:func:`strain_rate_record`).

:mod:`terralab.das.synthetic` (Gaussian bumps) writes :data:`TRUTH_COLUMNS`; :mod:`terralab.das.halfspace`
writes :data:`HALFSPACE_TRUTH_COLUMNS`, the same with the vehicle ``kind`` and its lane, coverage and
stop/turn/complete columns. :func:`terralab.das.evaluate.match` needs only ``time``, ``speed_kmh`` and
``direction``.

>>> from terralab.das.truth import HALFSPACE_TRUTH_COLUMNS, TRUTH_COLUMNS
>>> set(TRUTH_COLUMNS) < set(HALFSPACE_TRUTH_COLUMNS)
True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

__all__ = ["HALFSPACE_TRUTH_COLUMNS", "TRUTH_COLUMNS", "strain_rate_record"]

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
