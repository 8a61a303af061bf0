"""Read and write seismic waveform datasets: CEED HDF5, SeisBench format, PhaseNet npz records, ObsPy files.

This is the one import surface for seismic data; each format lives in its own module and its public names are
importable from here:

* :mod:`~terralab.seismic.records` — the in-memory shapes (waveform, record set) and record-set operations;
* :mod:`~terralab.seismic.phasenet_npz` — PhaseNet's npz records and terralab's packed sample;
* :mod:`~terralab.seismic.ceed` — CEED per-year HDF5 files;
* :mod:`~terralab.seismic.seisbench_format` — SeisBench's ``metadata.csv`` + ``waveforms.hdf5``;
* here: ObsPy files and Streams, and :func:`load_records`, a record set by name or path.

Three in-memory shapes are used across :mod:`terralab.seismic`:

* a **waveform**: ``xr.DataArray (component, time)`` of one station, components named ``E, N, Z`` (or
  ``1, 2`` / channel codes), ``time`` a datetime64 coordinate (UTC), attrs ``trace_id``,
  ``sampling_rate_hz``, ``units``;
* a **record set**: ``xr.DataArray (record, component, time)`` of many fixed-length labelled traces,
  components ``E, N, Z``, ``time`` in seconds since each trace's start, and per-record coordinates named
  as SeisBench names its metadata columns (``trace_p_arrival_sample``, ``trace_s_arrival_sample``,
  ``trace_p_polarity``, ``trace_start_time``, ``station_code`` …) — what training and evaluation take;
* an ``obspy.Stream`` for anything ObsPy reads.

Large files stay on disk: :func:`open_ceed` and :func:`read_seisbench` return lazy handles that read one
trace at a time with h5py.

Example
-------
>>> from terralab.seismic import io
>>> records = io.read_phasenet_npz(io.sample_path())      # 20 real NCEDC records shipped with terralab
>>> wave = io.record_waveform(records, 0)                  # (component, time) with UTC times
>>> wave.dims, str(wave["time"].dtype)
(('component', 'time'), 'datetime64[ns]')
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import DataNotAvailableError, FileFormatError, InvalidInputError
from .ceed import (
    CEED_EVENT_ATTRS,
    CEED_PICK_ATTRS,
    CEED_PICK_LIST_ATTRS,
    CEED_STATION_ATTRS,
    CEEDEvent,
    CEEDFile,
    open_ceed,
)
from .phasenet_npz import SAMPLE_FILE, read_phasenet_npz, read_sample, sample_path, save_records_npz
from .records import (
    ENZ,
    SAMPLING_RATE_HZ,
    check_records,
    make_records,
    record_waveform,
    reference_picks,
    stitch_records,
    three_component,
    time_axis,
    waveform_dataarray,
)
from .seisbench_format import SeisBenchDataset, read_seisbench, write_seisbench

if TYPE_CHECKING:
    import obspy

__all__ = [
    "CEED_EVENT_ATTRS",
    "CEED_PICK_ATTRS",
    "CEED_PICK_LIST_ATTRS",
    "CEED_STATION_ATTRS",
    "ENZ",
    "SAMPLE_FILE",
    "SAMPLING_RATE_HZ",
    "CEEDEvent",
    "CEEDFile",
    "SeisBenchDataset",
    "check_records",
    "dataarray_to_stream",
    "load_records",
    "make_records",
    "open_ceed",
    "read_phasenet_npz",
    "read_sample",
    "read_seisbench",
    "read_waveforms",
    "record_waveform",
    "reference_picks",
    "sample_path",
    "save_records_npz",
    "stitch_records",
    "three_component",
    "time_axis",
    "waveform_dataarray",
    "write_seisbench",
]


# ---------------------------------------------------------------------------------------------------
# ObsPy files and Streams
# ---------------------------------------------------------------------------------------------------
def read_waveforms(path: str | os.PathLike, format: str | None = None, **kwargs: Any) -> obspy.Stream:
    """Read any waveform file ObsPy understands (miniSEED, SAC, GSE2, …) into an ``obspy.Stream``.

    Parameters
    ----------
    path : path or glob
    format : str, optional
        ObsPy format name; detected from the content by default.
    """
    import obspy

    try:
        return obspy.read(str(path), format=format, **kwargs)
    except FileNotFoundError as exc:
        raise DataNotAvailableError(f"no waveform file at {path}") from exc
    except Exception as exc:  # ObsPy raises TypeError / ValueError / its own errors for unknown formats
        raise FileFormatError(f"ObsPy cannot read {path}: {exc}; pass format= if detection fails") from exc


def dataarray_to_stream(waveform: xr.DataArray) -> obspy.Stream:
    """A waveform ``(component, time)`` as an ``obspy.Stream`` (one trace per component; NaN → masked)."""
    import obspy

    if not isinstance(waveform, xr.DataArray) or set(waveform.dims) != {"component", "time"}:
        raise InvalidInputError("expected an xr.DataArray with dims (component, time)")
    waveform = waveform.transpose("component", "time")
    times = pd.DatetimeIndex(waveform["time"].values)
    sr = float(waveform.attrs.get("sampling_rate_hz") or 1.0 / np.median(np.diff(times.asi8) / 1e9))
    net, sta, loc, inst = (str(waveform.attrs.get("trace_id", "XX.STA..HH")).split(".") + ["", "", "", ""])[
        :4
    ]
    stream = obspy.Stream()
    for comp in waveform["component"].values:
        data = np.asarray(waveform.sel(component=comp).values, dtype=np.float64)
        if np.isnan(data).any():
            data = np.ma.masked_invalid(data)
        header = {
            "network": net,
            "station": sta,
            "location": loc,
            "channel": f"{inst}{str(comp)[-1]}",
            "sampling_rate": sr,
            "starttime": obspy.UTCDateTime(times[0].value / 1e9),
        }
        stream.append(obspy.Trace(data=data, header=header))
    return stream


def load_records(dataset: str = "sample", max_records: int | None = None) -> xr.DataArray:
    """A labelled record set by name or path — what the seismic notebook's ``dataset`` parameter accepts.

    Parameters
    ----------
    dataset : str
        ``"sample"`` (the 20 embedded NCEDC records), ``"ncedc"`` (PhaseNet's 154 records through the data
        catalog: mirror, cache or download), ``"ceed_synthetic"`` (a synthetic CEED file), or a path: a CEED
        ``.h5``, a SeisBench directory (``metadata.csv`` + ``waveforms.hdf5``), a PhaseNet ``.npz`` /
        ``.tar.gz`` / directory of npz.
    max_records : int, optional
        Keep the first records only.
    """
    if dataset == "sample":
        return read_sample(max_records)
    if dataset == "ncedc":
        from terralab import catalog

        return read_phasenet_npz(
            catalog.fetch("seismic_phasenet_ncedc_waveforms"),
            csv=catalog.fetch("seismic_phasenet_ncedc_picks"),
            max_records=max_records,
        )
    if dataset == "ceed_synthetic":
        from .synthetic import ceed_example

        with ceed_example() as ceed:
            return ceed.to_records(max_traces=max_records)
    path = Path(dataset)
    if not path.exists():
        raise DataNotAvailableError(
            f"dataset {dataset!r} is neither 'sample', 'ncedc', 'ceed_synthetic' nor an existing path"
        )
    if path.is_dir() and (path / "metadata.csv").exists():
        with read_seisbench(path) as ds:
            n = len(ds) if max_records is None else min(max_records, len(ds))
            return ds.to_records(range(n))
    if path.suffix in (".h5", ".hdf5"):
        with open_ceed(path) as ceed:
            return ceed.to_records(max_traces=max_records)
    return read_phasenet_npz(path, max_records=max_records)
