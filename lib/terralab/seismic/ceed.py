"""CEED per-year HDF5 files (``AI4EPS/quakeflow_nc``): lazy handles on events, station traces and picks.

Layout: ``/{event_id}`` groups carrying the event attributes (:data:`CEED_EVENT_ATTRS`), each holding one
float32 ``(3, nt)`` E,N,Z dataset per ``NET.STA.LOC.INST`` with the station and pick attributes
(:data:`CEED_STATION_ATTRS`, :data:`CEED_PICK_ATTRS`). Nothing is read before it is asked for, so a multi-GB
year file is never loaded whole. :func:`terralab.seismic.synthetic.ceed_example` writes and opens a small
synthetic one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import DataNotAvailableError, FileFormatError, InvalidInputError
from .hdf5 import h5py_module, plain_value
from .records import ENZ, make_records, waveform_dataarray

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "CEED_EVENT_ATTRS",
    "CEED_PICK_ATTRS",
    "CEED_PICK_LIST_ATTRS",
    "CEED_STATION_ATTRS",
    "CEEDEvent",
    "CEEDFile",
    "open_ceed",
]

#: Attributes every CEED event group must carry (ANCHORS.md, "Seismic ML").
CEED_EVENT_ATTRS = (
    "event_id",
    "event_time",
    "latitude",
    "longitude",
    "depth_km",
    "magnitude",
    "magnitude_type",
    "source",
    "begin_time",
    "end_time",
    "event_time_index",
    "sampling_rate",
    "nt",
    "nx",
)
#: Attributes of each CEED station dataset (the pick lists ``phase_*`` are optional).
CEED_STATION_ATTRS = (
    "network",
    "station",
    "location",
    "instrument",
    "component",
    "unit",
    "dt_s",
    "latitude",
    "longitude",
    "elevation_m",
    "distance_km",
    "azimuth",
    "back_azimuth",
    "takeoff_angle",
    "snr",
)
CEED_PICK_ATTRS = tuple(
    f"{p}_phase_{k}" for p in ("p", "s") for k in ("index", "time", "score", "polarity", "status")
)
CEED_PICK_LIST_ATTRS = (
    "phase_type",
    "phase_index",
    "phase_time",
    "phase_score",
    "phase_polarity",
    "phase_remark",
    "phase_picking_channel",
    "event_id",
)


class CEEDEvent:
    """One event of a CEED file: its attributes and lazy access to its station traces.

    ``event["NC.MEM..EH"]`` reads one trace → waveform ``(component, time)``; iterating yields every
    trace in turn. Nothing is read before it is asked for.
    """

    def __init__(self, ceed: CEEDFile, event_id: str):
        self._ceed = ceed
        self.event_id = event_id
        self._group = ceed._group(event_id)
        self.attrs = ceed._event_attrs(event_id, self._group)

    @property
    def station_ids(self) -> list[str]:
        """``NET.STA.LOC.INST`` of every trace of this event."""
        return [k for k in self._group if isinstance(self._group[k], h5py_module().Dataset)]

    def __len__(self) -> int:
        return len(self.station_ids)

    def __iter__(self) -> Iterator[xr.DataArray]:
        for sid in self.station_ids:
            yield self[sid]

    def __getitem__(self, station_id: str) -> xr.DataArray:
        return self._ceed.waveform(self.event_id, station_id)

    @property
    def picks(self) -> pd.DataFrame:
        """Station metadata and P/S picks of this event, one row per trace."""
        return self._ceed._station_table(self.event_id, self._group)

    def __repr__(self) -> str:
        a = self.attrs
        return f"<CEEDEvent {self.event_id} {a.get('event_time')} M{a.get('magnitude')} {len(self)} traces>"


class CEEDFile:
    """Lazy handle on a CEED per-year HDF5 file (``/{event_id}/{NET.STA.LOC.INST}``, float32 (3, nt), E,N,Z).

    Opening reads nothing but the file's index; :attr:`events` and :attr:`picks` read attributes only
    (never waveforms), and traces are read one at a time, so a multi-GB year file is never loaded whole.
    Use as a context manager or call :meth:`close`.

    Example
    -------
    >>> from terralab.seismic import synthetic
    >>> truth = synthetic.write_synthetic_ceed("2023.h5", n_events=2, n_stations=3)   # CEED's layout
    >>> with open_ceed("2023.h5") as ceed:      # a real year: catalog.fetch("seismic_ceed_nc_2023")
    ...     ev = ceed[ceed.event_ids[0]]
    ...     wave = next(iter(ev))            # xr.DataArray (component, time)
    ...     print(len(ceed), len(ev), wave.dims, wave.sizes["time"])
    2 3 ('component', 'time') 12000
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.exists():
            raise DataNotAvailableError(
                f"CEED file {self.path} does not exist; fetch a year with "
                "terralab.catalog.fetch('seismic_ceed_nc_2023') "
                "or write a synthetic one with terralab.seismic.synthetic.write_synthetic_ceed"
            )
        h5py = h5py_module()
        try:
            self._file = h5py.File(self.path, "r")
            self._event_ids = [k for k in self._file if isinstance(self._file[k], h5py.Group)]
        except (OSError, KeyError, RuntimeError) as exc:
            raise FileFormatError(
                f"{self.path} is not a readable HDF5 file ({exc}); "
                "it may be truncated or corrupt: download it again"
            ) from exc
        self._events: pd.DataFrame | None = None
        self._picks: pd.DataFrame | None = None

    # --- container protocol ------------------------------------------------------------------------
    @property
    def event_ids(self) -> list[str]:
        return list(self._event_ids)

    def __len__(self) -> int:
        return len(self._event_ids)

    def __iter__(self) -> Iterator[CEEDEvent]:
        for eid in self._event_ids:
            yield CEEDEvent(self, eid)

    def __getitem__(self, event_id: str) -> CEEDEvent:
        return CEEDEvent(self, event_id)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HDF5 file."""
        file = getattr(self, "_file", None)
        if file is not None:
            file.close()  # h5py makes closing twice harmless

    def __repr__(self) -> str:
        return f"<CEEDFile {self.path.name}: {len(self)} events>"

    # --- metadata ----------------------------------------------------------------------------------
    def _group(self, event_id: str):
        try:
            group = self._file[event_id]
        except KeyError as exc:
            raise InvalidInputError(f"event {event_id!r} is not in {self.path.name}") from exc
        except OSError as exc:
            raise FileFormatError(
                f"{self.path}: event {event_id!r} cannot be read ({exc}); the file may be corrupt"
            ) from exc
        if not isinstance(group, h5py_module().Group):
            raise InvalidInputError(f"{event_id!r} in {self.path.name} is not an event group")
        return group

    def _plain_attrs(self, obj, what: str) -> dict[str, Any]:
        """The HDF5 attributes of ``obj`` as plain values; an unreadable one is a FileFormatError naming
        ``what``."""
        try:
            return {k: plain_value(v) for k, v in obj.attrs.items()}
        except OSError as exc:
            raise FileFormatError(f"{self.path}: attributes of {what} cannot be read ({exc})") from exc

    def _event_attrs(self, event_id: str, group) -> dict[str, Any]:
        attrs = self._plain_attrs(group, f"event {event_id!r}")
        missing = [k for k in CEED_EVENT_ATTRS if k not in attrs]
        if missing:
            raise FileFormatError(
                f"{self.path.name}: event group {event_id!r} lacks the CEED attributes {missing}; "
                f"a CEED event needs {list(CEED_EVENT_ATTRS)} (ANCHORS.md). "
                "Fix the file or rewrite it with write_synthetic_ceed's layout"
            )
        return attrs

    @property
    def events(self) -> pd.DataFrame:
        """One row per event (its attributes), indexed by ``event_id``; ``event_time`` as UTC Timestamps."""
        if self._events is None:
            rows = [self._event_attrs(eid, self._group(eid)) for eid in self._event_ids]
            df = pd.DataFrame(
                rows,
                columns=list(CEED_EVENT_ATTRS) + sorted({k for r in rows for k in r} - set(CEED_EVENT_ATTRS)),
            )
            for col in ("event_time", "begin_time", "end_time"):
                df[col] = pd.to_datetime(df[col], utc=True, format="ISO8601")
            df["n_traces"] = [len(self._file[eid].keys()) for eid in self._event_ids]
            self._events = df.set_index("event_id", drop=False).rename_axis(None)
        return self._events

    def _station_table(self, event_id: str, group) -> pd.DataFrame:
        rows = []
        for sid, ds in group.items():
            if not isinstance(ds, h5py_module().Dataset):
                continue
            attrs = self._plain_attrs(ds, f"{event_id}/{sid}")
            row = {"event_id": event_id, "station_id": sid}
            for key in CEED_STATION_ATTRS + CEED_PICK_ATTRS:
                row[key] = attrs.get(key)
            rows.append(row)
        df = pd.DataFrame(rows, columns=["event_id", "station_id", *CEED_STATION_ATTRS, *CEED_PICK_ATTRS])
        for col in ("p_phase_time", "s_phase_time"):
            df[col] = pd.to_datetime(df[col], utc=True, format="ISO8601")
        for col in ("p_phase_index", "s_phase_index"):
            df[col] = pd.to_numeric(df[col], errors="coerce")
        return df

    @property
    def picks(self) -> pd.DataFrame:
        """One row per event–station trace: station metadata, P and S pick index/time/score/polarity/status.

        Reads attributes only. For a large file this touches every trace's header once (seconds), and is
        cached.
        """
        if self._picks is None:
            tables = [self._station_table(eid, self._group(eid)) for eid in self._event_ids]
            self._picks = pd.concat(tables, ignore_index=True) if tables else self._station_table("", {})
        return self._picks

    # --- waveforms ---------------------------------------------------------------------------------
    def waveform(self, event_id: str, station_id: str) -> xr.DataArray:
        """Read one trace → waveform ``(component [E,N,Z], time)`` in µm/s (µm/s² for accelerometers).

        Coordinates: UTC datetime64 times from the event's ``begin_time``. Attrs: the station attributes,
        the event id, ``trace_id``, ``sampling_rate_hz`` and the P/S pick times.
        """
        group = self._group(event_id)
        event = self._event_attrs(event_id, group)
        if station_id not in group:
            raise InvalidInputError(f"trace {station_id!r} is not in event {event_id!r} of {self.path.name}")
        ds = group[station_id]
        try:
            data = np.asarray(ds[()], dtype=np.float32)
            attrs = {k: plain_value(v) for k, v in ds.attrs.items()}
        except OSError as exc:
            raise FileFormatError(
                f"{self.path}: trace {event_id}/{station_id} cannot be read ({exc}); the file is corrupt"
            ) from exc
        if data.ndim != 2 or data.shape[0] != 3:
            raise FileFormatError(
                f"{self.path}: trace {event_id}/{station_id} has shape {data.shape}, "
                "CEED traces are (3, nt) E,N,Z"
            )
        sr = float(event["sampling_rate"])
        keep = {k: v for k, v in attrs.items() if k not in ("event_id",)}
        return waveform_dataarray(
            data,
            event["begin_time"],
            sr,
            components=ENZ,
            trace_id=station_id,
            units=str(attrs.get("unit", "um/s")),
            event_id=event_id,
            **keep,
        )

    def to_records(
        self, max_traces: int | None = None, require_p: bool = True, progress: bool = False
    ) -> xr.DataArray:
        """Read traces into a record set ``(record, component, time)`` for training or evaluation.

        Parameters
        ----------
        max_traces : int, optional
            Stop after this many traces (in file order), so a year file can be sampled cheaply.
        require_p : bool
            Skip traces without a P pick.
        progress : bool
            Show a progress bar.
        """
        from ..progress import progress_bar

        data, names, meta = [], [], []
        with progress_bar(total=max_traces, enabled=progress, desc="CEED traces") as bar:
            for eid in self._event_ids:
                group = self._group(eid)
                event = self._event_attrs(eid, group)
                table = self._station_table(eid, group)
                for _, row in table.iterrows():
                    if require_p and pd.isna(row["p_phase_index"]):
                        continue
                    wave = self.waveform(eid, row["station_id"])
                    data.append(wave.values)
                    names.append(f"{eid}.{row['station_id']}")
                    meta.append((event, row))
                    bar.update(1)
                    if max_traces is not None and len(data) >= max_traces:
                        break
                if max_traces is not None and len(data) >= max_traces:
                    break
        if not data:
            raise InvalidInputError(f"{self.path.name} holds no traces with picks to read")
        lengths = {d.shape[-1] for d in data}
        if len(lengths) != 1:
            raise FileFormatError(f"{self.path.name}: traces have different lengths {sorted(lengths)}")
        sr = float(meta[0][0]["sampling_rate"])
        return make_records(
            np.stack(data),
            names,
            sampling_rate_hz=sr,
            units=str(meta[0][1]["unit"] or "um/s"),
            trace_id=[r["station_id"] for _, r in meta],
            trace_start_time=[e["begin_time"] for e, _ in meta],
            trace_p_arrival_sample=[r["p_phase_index"] for _, r in meta],
            trace_s_arrival_sample=[r["s_phase_index"] for _, r in meta],
            trace_p_polarity=[r["p_phase_polarity"] or "" for _, r in meta],
            station_network_code=[r["network"] for _, r in meta],
            station_code=[r["station"] for _, r in meta],
            station_location_code=[r["location"] or "" for _, r in meta],
            station_latitude_deg=[r["latitude"] for _, r in meta],
            station_longitude_deg=[r["longitude"] for _, r in meta],
            station_elevation_m=[r["elevation_m"] for _, r in meta],
            path_ep_distance_km=[r["distance_km"] for _, r in meta],
            source_id=[e["event_id"] for e, _ in meta],
            source_origin_time=[e["event_time"] for e, _ in meta],
            source_latitude_deg=[e["latitude"] for e, _ in meta],
            source_longitude_deg=[e["longitude"] for e, _ in meta],
            source_depth_km=[e["depth_km"] for e, _ in meta],
            source_magnitude=[e["magnitude"] for e, _ in meta],
            source_magnitude_type=[e["magnitude_type"] for e, _ in meta],
        ).assign_attrs(source=f"CEED file {self.path.name}")


def open_ceed(path: str | os.PathLike, **kwargs: Any) -> CEEDFile:
    """Open a CEED per-year HDF5 file lazily (see :class:`CEEDFile`).

    Parameters
    ----------
    path : path
        e.g. ``waveform_h5/2023.h5`` of ``AI4EPS/quakeflow_nc`` or a file from
        :func:`terralab.seismic.synthetic.write_synthetic_ceed`.
    """
    if kwargs:
        raise InvalidInputError(f"open_ceed takes no options, got {sorted(kwargs)}")
    return CEEDFile(path)
