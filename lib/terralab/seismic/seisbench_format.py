"""SeisBench's dataset format: ``metadata.csv`` + ``waveforms.hdf5``, written from and read into record sets.

:func:`write_seisbench` writes a record set so SeisBench (or :func:`read_seisbench`) reads it back;
:class:`SeisBenchDataset` reads any SeisBench dataset directory lazily, one trace at a time.

Example
-------
>>> import tempfile
>>> from terralab.seismic import io, seisbench_format
>>> folder = seisbench_format.write_seisbench(io.read_sample(max_records=2), tempfile.mkdtemp())
>>> with seisbench_format.read_seisbench(folder) as ds:
...     len(ds), ds[0].dims
(2, ('component', 'time'))
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import DataNotAvailableError, FileFormatError, InvalidInputError
from ..files import atomic_path
from .hdf5 import h5py_module, plain_value
from .records import ENZ, SAMPLING_RATE_HZ, check_records, make_records, waveform_dataarray

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["SeisBenchDataset", "read_seisbench", "write_seisbench"]

_TIME_FORMAT = (
    "%Y-%m-%dT%H:%M:%S.%f"  # CEED's attribute times; SeisBench's text times are written the same way
)
_BUCKET = re.compile(r"^(?P<bucket>[^$]+)\$(?P<index>\d+)(?:,(?P<rest>.*))?$")


def write_seisbench(
    records: xr.DataArray, directory: str | os.PathLike, component_order: str = "ZNE"
) -> Path:
    """Write a record set in SeisBench's format: ``metadata.csv`` + ``waveforms.hdf5``.

    Traces go to ``data/{trace_name}`` as (channel, sample) float32 in ``component_order``; ``data_format/``
    holds ``dimension_order`` ("CW"), ``component_order``, ``sampling_rate``. Metadata columns are the
    record coordinates (SeisBench names: ``trace_name``, ``trace_p_arrival_sample``,
    ``trace_sampling_rate_hz``, ``source_*``, ``station_*`` …). Both files are written to temporary names
    and renamed, so a failed write leaves nothing half-written.

    Parameters
    ----------
    records : xr.DataArray (record, component, time)
    directory : path
        Created if needed.
    component_order : str
        Channel order inside the HDF5 file; SeisBench's default is ``"ZNE"``.
    """
    h5py = h5py_module()
    check_records(records)
    comps = [str(c) for c in records["component"].values]
    if sorted(component_order) != sorted(comps):
        raise InvalidInputError(
            f"component_order {component_order!r} does not name the record components {comps}"
        )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ordered = records.sel(component=list(component_order))
    meta = pd.DataFrame({"trace_name": records["record"].values.astype(str)})
    for name, coord in records.coords.items():
        if name in ("record", "component", "time") or coord.dims != ("record",):
            continue
        values = coord.values
        if np.issubdtype(values.dtype, np.datetime64):
            values = [pd.Timestamp(v).strftime(_TIME_FORMAT) if not pd.isna(v) else "" for v in values]
        meta[name] = values
    meta["trace_sampling_rate_hz"] = float(records.attrs.get("sampling_rate_hz", SAMPLING_RATE_HZ))
    meta["trace_npts"] = records.sizes["time"]
    meta["trace_component_order"] = component_order

    # metadata.csv (outer block) is renamed into place last: a reader that finds it finds the waveforms too
    with (
        atomic_path(directory / "metadata.csv") as csv_tmp,
        atomic_path(directory / "waveforms.hdf5") as h5_tmp,
    ):
        with h5py.File(h5_tmp, "w") as f:
            fmt = f.create_group("data_format")
            fmt.create_dataset("dimension_order", data="CW")
            fmt.create_dataset("component_order", data=component_order)
            fmt.create_dataset(
                "sampling_rate", data=float(records.attrs.get("sampling_rate_hz", SAMPLING_RATE_HZ))
            )
            fmt.create_dataset("measurement", data=str(records.attrs.get("measurement", "velocity")))
            fmt.create_dataset("unit", data=str(records.attrs.get("units", "counts")))
            data = f.create_group("data")
            for name, trace in zip(meta["trace_name"], ordered.values):
                data.create_dataset(name, data=trace.astype(np.float32))
        meta.to_csv(csv_tmp, index=False)
    return directory


_SEISBENCH_TEXT_COLUMNS = (
    "trace_name",
    "trace_id",
    "trace_channel",
    "trace_p_polarity",
    "trace_s_polarity",
    "station_network_code",
    "station_code",
    "station_location_code",
    "source_id",
    "source_magnitude_type",
    "split",
)


class SeisBenchDataset:
    """Lazy handle on a SeisBench-format dataset directory (``metadata.csv`` + ``waveforms.hdf5``).

    ``ds[i]`` reads trace ``i`` → waveform ``(component [E,N,Z], time)``; ``ds.metadata`` is the table.
    Handles plain (``data/{trace_name}``) and bucketed (``bucket$index,:3,:n``) trace names, and any
    ``component_order`` / ``dimension_order`` the file declares.
    """

    def __init__(self, directory: str | os.PathLike):
        h5py = h5py_module()
        self.path = Path(directory)
        csv = self.path / "metadata.csv"
        h5 = self.path / "waveforms.hdf5"
        if not csv.exists() or not h5.exists():
            raise DataNotAvailableError(
                f"{self.path} is not a SeisBench dataset: it needs metadata.csv and waveforms.hdf5"
            )
        try:
            # codes such as station "0012" or location "" must stay strings, not become numbers / NaN
            self.metadata = pd.read_csv(
                csv, low_memory=False, dtype={c: str for c in _SEISBENCH_TEXT_COLUMNS}
            )
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise FileFormatError(f"{csv} cannot be parsed as CSV: {exc}") from exc
        text = [c for c in _SEISBENCH_TEXT_COLUMNS if c in self.metadata.columns]
        self.metadata[text] = self.metadata[text].fillna("")
        if "trace_name" not in self.metadata.columns:
            raise FileFormatError(f"{csv} has no trace_name column; it is not SeisBench metadata")
        try:
            self._file = h5py.File(h5, "r")
            fmt = self._file.get("data_format")
            read = lambda k, d: plain_value(fmt[k][()]) if fmt is not None and k in fmt else d
            self.component_order = str(read("component_order", "ZNE"))
            self.dimension_order = str(read("dimension_order", "CW"))
            self.sampling_rate_hz = float(read("sampling_rate", np.nan))
            self.unit = str(read("unit", "counts"))
        except (OSError, KeyError) as exc:
            raise FileFormatError(
                f"{h5} is not a readable HDF5 file ({exc}); it may be truncated or corrupt"
            ) from exc
        if sorted(self.dimension_order) != ["C", "W"]:
            raise FileFormatError(
                f"{h5}: dimension_order {self.dimension_order!r} is not supported (need C and W)"
            )

    def __len__(self) -> int:
        return len(self.metadata)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _raw(self, i: int) -> np.ndarray:
        name = str(self.metadata["trace_name"].iloc[i])
        try:
            m = _BUCKET.match(name)
            if m:
                arr = self._file["data"][m.group("bucket")][int(m.group("index"))]
                if self.dimension_order.index("C") > self.dimension_order.index("W"):
                    arr = arr.T
                if m.group("rest"):
                    c_slice, w_slice = (s.strip() for s in (m.group("rest").split(",") + [":"])[:2])
                    arr = arr[_parse_slice(c_slice), _parse_slice(w_slice)]
                return np.asarray(arr, dtype=np.float32)
            arr = np.asarray(self._file["data"][name][()], dtype=np.float32)
        except KeyError as exc:
            raise FileFormatError(f"trace {name!r} of metadata.csv is not in waveforms.hdf5") from exc
        except OSError as exc:
            raise FileFormatError(
                f"trace {name!r} cannot be read from waveforms.hdf5 ({exc}); the file is corrupt"
            ) from exc
        if self.dimension_order == "WC":
            arr = arr.T
        return arr

    def __getitem__(self, i: int) -> xr.DataArray:
        row = self.metadata.iloc[i]
        arr = self._raw(i)
        comps = list(self.component_order)
        sr = float(row.get("trace_sampling_rate_hz", self.sampling_rate_hz))
        start = row.get("trace_start_time", None)
        start = pd.Timestamp(0) if start is None or pd.isna(start) or start == "" else start
        wave = waveform_dataarray(
            arr,
            start,
            sr,
            components=comps,
            trace_id=str(row.get("trace_id", row["trace_name"])),
            units=self.unit,
            trace_name=str(row["trace_name"]),
        )
        order = [c for c in ENZ if c in comps] + [c for c in comps if c not in ENZ]
        return wave.sel(component=order)

    def to_records(self, indices: Iterable[int] | None = None) -> xr.DataArray:
        """Read traces (all, or ``indices``) into a record set ``(record, component [E,N,Z], time)``."""
        idx = list(range(len(self))) if indices is None else list(indices)
        waves = [self[i] for i in idx]
        lengths = {w.sizes["time"] for w in waves}
        if len(lengths) != 1:
            raise FileFormatError(
                f"traces have different lengths {sorted(lengths)}; select equal-length traces"
            )
        meta = self.metadata.iloc[idx]
        sr = float(waves[0].attrs["sampling_rate_hz"])
        coords = {
            c: meta[c].tolist()
            for c in meta.columns
            if c not in ("trace_name", "trace_sampling_rate_hz", "trace_npts", "trace_component_order")
        }
        if "trace_p_polarity" in coords:
            coords["trace_p_polarity"] = ["" if pd.isna(v) else str(v) for v in coords["trace_p_polarity"]]
        for c in ("trace_start_time", "source_origin_time"):
            if c in coords:
                coords[c] = [None if (pd.isna(v) or v == "") else v for v in coords[c]]
        return make_records(
            np.stack([w.sel(component=list(ENZ)).values for w in waves]),
            meta["trace_name"].astype(str).tolist(),
            sampling_rate_hz=sr,
            units=self.unit,
            **coords,
        ).assign_attrs(source=f"SeisBench dataset {self.path}")


def _parse_slice(text: str) -> slice:
    parts = [p.strip() for p in text.split(":")]
    nums = [int(p) if p else None for p in parts]
    return slice(*nums) if len(nums) > 1 else slice(nums[0], nums[0] + 1)


def read_seisbench(directory: str | os.PathLike) -> SeisBenchDataset:
    """Open a SeisBench-format dataset directory lazily (see :class:`SeisBenchDataset`)."""
    return SeisBenchDataset(directory)
