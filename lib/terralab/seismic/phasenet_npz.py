"""PhaseNet's npz records: read them (archive, directory, one file, terralab's packed sample) and write the
sample.

Example
-------
>>> from terralab.seismic import phasenet_npz
>>> records = phasenet_npz.read_sample(max_records=2)      # real NCEDC records shipped with terralab
>>> records.sizes["record"]
2
"""

from __future__ import annotations

import io as _io
import os
import re
import tarfile
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import DataNotAvailableError, FileFormatError, InvalidInputError
from ..files import atomic_path
from .records import ENZ, check_records, make_records, utc_timestamp

__all__ = ["SAMPLE_FILE", "read_phasenet_npz", "read_sample", "sample_path", "save_records_npz"]

SAMPLE_FILE = "ncedc_sample_20.npz"
_FNAME_TIME = re.compile(r"_(\d{14})(\d{2})")


def _start_from_fname(fname: str) -> pd.Timestamp | None:
    """The timestamp PhaseNet's file names carry (YYYYMMDDhhmmss + centiseconds), or None."""
    m = _FNAME_TIME.search(fname)
    if not m:
        return None
    try:
        return utc_timestamp(pd.to_datetime(m.group(1), format="%Y%m%d%H%M%S")) + pd.Timedelta(
            milliseconds=10 * int(m.group(2))
        )
    except ValueError:
        return None


def _record_from_npz(name: str, npz: Any) -> dict[str, Any]:
    missing = [k for k in ("data", "itp", "its") if k not in npz]
    if missing:
        raise FileFormatError(
            f"{name}: PhaseNet npz lacks {missing}; expected keys data (n, 3), itp, its, channels"
        )
    data = np.asarray(npz["data"], dtype=np.float32)
    if data.ndim != 2 or data.shape[1] != 3:
        raise FileFormatError(f"{name}: PhaseNet npz 'data' must be (n_samples, 3) E,N,Z, got {data.shape}")
    channels = str(npz["channels"]) if "channels" in npz else ""
    return {
        "fname": name,
        "data": data.T,
        "itp": float(npz["itp"]),
        "its": float(npz["its"]),
        "channels": channels,
    }


def _records_from_rows(rows: list[dict[str, Any]]) -> xr.DataArray:
    lengths = {r["data"].shape[1] for r in rows}
    if len(lengths) != 1:
        raise FileFormatError(
            f"PhaseNet records have different lengths {sorted(lengths)}; read them separately"
        )
    names = [r["fname"] for r in rows]
    networks, stations, ids = [], [], []
    for r in rows:
        parts = Path(r["fname"]).stem.split("_")
        net, sta = (parts[0], parts[1]) if len(parts) >= 2 else ("", parts[0])
        inst = r["channels"].split("_")[0][:2] if r["channels"] else ""
        networks.append(net)
        stations.append(sta)
        ids.append(f"{net}.{sta}..{inst}")
    return make_records(
        np.stack([r["data"] for r in rows]),
        names,
        trace_p_arrival_sample=[r["itp"] for r in rows],
        trace_s_arrival_sample=[r["its"] for r in rows],
        trace_start_time=[_start_from_fname(n) for n in names],
        trace_channel=[r["channels"] for r in rows],
        station_network_code=networks,
        station_code=stations,
        trace_id=ids,
    ).assign_attrs(source="PhaseNet NCEDC npz records (AI4EPS/PhaseNet, MIT)")


def _find_csv(path: Path, csv: str | os.PathLike | None) -> Path | None:
    if csv is not None:
        return Path(csv)
    base = path if path.is_dir() else path.parent
    for candidate in (base / "waveform.csv", base.parent / "waveform.csv"):
        if candidate.exists():
            return candidate
    return None


def _listed_order(
    path: Path, csv: str | os.PathLike | None, names: Iterable[str] | None, max_records: int | None
) -> list[str] | None:
    """The record names to read, in order, as the csv and ``names`` fix them; None when neither does."""
    order: list[str] | None = None
    csv_path = _find_csv(path, csv) if not (path.is_file() and path.suffix == ".npz") else None
    if csv_path is not None and csv_path.exists():
        order = pd.read_csv(csv_path)["fname"].astype(str).tolist()
    if names is not None:
        wanted = [str(n) for n in names]
        order = [n for n in order if n in set(wanted)] if order is not None else wanted
    if max_records is not None and order is not None:
        order = order[:max_records]
    return order


def _rows_from_dir(path: Path, wanted: set[str] | None) -> dict[str, dict[str, Any]]:
    rows = {}
    for f in sorted(path.glob("*.npz")):
        if wanted is None or f.name in wanted:
            with np.load(f) as npz:
                rows[f.name] = _record_from_npz(f.name, npz)
    return rows


def _rows_from_tar(path: Path, wanted: set[str] | None) -> dict[str, dict[str, Any]]:
    """Records read straight from the archive, stopping once every wanted one is found."""
    rows = {}
    with tarfile.open(path, "r:*") as tar:
        for member in tar:
            fname = Path(member.name).name
            if not member.isfile() or not fname.endswith(".npz"):
                continue
            if wanted is not None and fname not in wanted:
                continue
            blob = tar.extractfile(member).read()
            with np.load(_io.BytesIO(blob)) as npz:
                rows[fname] = _record_from_npz(fname, npz)
            if wanted is not None and len(rows) == len(wanted):
                break
    return rows


def _rows_from_npz(path: Path, wanted: set[str] | None) -> tuple[dict[str, dict[str, Any]], list[str] | None]:
    """The records of one npz: a single PhaseNet record, or terralab's packed sample (with its order)."""
    with np.load(path, allow_pickle=False) as npz:
        if "fname" not in npz.files:
            return {path.name: _record_from_npz(path.name, npz)}, None
        data = np.asarray(npz["data"], dtype=np.float32)
        packed_order = npz["fname"].astype(str).tolist()
        rows = {}
        for i, fname in enumerate(packed_order):
            if wanted is None or fname in wanted:
                rows[fname] = {
                    "fname": fname,
                    "data": data[i].T,
                    "itp": float(npz["itp"][i]),
                    "its": float(npz["its"][i]),
                    "channels": str(npz["channels"][i]),
                }
        return rows, packed_order


def _read_rows(path: Path, wanted: set[str] | None) -> tuple[dict[str, dict[str, Any]], list[str] | None]:
    """The records of a directory, a tar archive or one npz, and the packed order when the file has one."""
    try:
        if path.is_dir():
            return _rows_from_dir(path, wanted), None
        if tarfile.is_tarfile(path):
            return _rows_from_tar(path, wanted), None
        return _rows_from_npz(path, wanted)
    except (OSError, ValueError, tarfile.TarError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        if isinstance(exc, FileFormatError):
            raise
        raise FileFormatError(f"cannot read PhaseNet records from {path}: {exc}") from exc


def read_phasenet_npz(
    path: str | os.PathLike,
    csv: str | os.PathLike | None = None,
    max_records: int | None = None,
    names: Iterable[str] | None = None,
) -> xr.DataArray:
    """Read PhaseNet-style npz records into a record set ``(record, component, time)``.

    Accepts PhaseNet's ``waveform_train.tar.gz`` (read straight from the archive), a directory of
    ``*.npz``, one ``*.npz`` record, or terralab's packed sample (one npz holding many records). Each
    record npz has ``data`` (n, 3) columns E,N,Z (single-component records hold zeros in E,N), ``itp``,
    ``its`` (analyst P/S sample) and ``channels``.

    Parameters
    ----------
    path : path
    csv : path, optional
        PhaseNet's ``waveform.csv`` (``fname,itp,its,channels``) fixing which records and in what order;
        found automatically beside ``path``. Without it records come sorted by name.
    max_records : int, optional
        Read only the first records (in csv order).
    names : sequence of str, optional
        Read only these file names.

    Returns
    -------
    xr.DataArray (record, component [E,N,Z], time [s]) float32, counts; coords
    ``trace_p_arrival_sample``, ``trace_s_arrival_sample``, ``trace_start_time`` (parsed from the file name;
    PhaseNet does not document which time it is), ``trace_channel``, ``station_code``, ``trace_id``.
    """
    path = Path(path)
    if not path.exists():
        raise DataNotAvailableError(
            f"{path} does not exist; get PhaseNet's records with "
            "terralab.catalog.fetch('seismic_phasenet_ncedc_waveforms')"
        )
    order = _listed_order(path, csv, names, max_records)
    rows, packed_order = _read_rows(path, set(order) if order is not None else None)
    if not rows:
        raise FileFormatError(f"no PhaseNet npz records found in {path}")
    if order is None:
        order = packed_order if packed_order is not None else sorted(rows)
        if max_records is not None:
            order = order[:max_records]
    missing = [n for n in order if n not in rows]
    if missing:
        raise FileFormatError(
            f"{len(missing)} records listed in the csv are not in {path} (e.g. {missing[0]})"
        )
    return _records_from_rows([rows[n] for n in order])


def save_records_npz(records: xr.DataArray, path: str | os.PathLike) -> Path:
    """Write a record set as one compressed npz (float32; terralab's packed PhaseNet sample format).

    The file holds ``fname``, ``data`` (record, n, 3) E,N,Z, ``itp``, ``its``, ``channels`` and reads back
    with :func:`read_phasenet_npz`.
    """
    check_records(records)
    if [str(c) for c in records["component"].values] != list(ENZ):
        raise InvalidInputError("save_records_npz needs components E, N, Z in that order")
    path = Path(path)
    # an open handle, so numpy does not append ".npz" to a target named otherwise
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(
            fh,
            fname=records["record"].values.astype(str),
            data=np.ascontiguousarray(records.values.transpose(0, 2, 1).astype(np.float32)),
            itp=records["trace_p_arrival_sample"].values.astype(np.int64),
            its=records["trace_s_arrival_sample"].values.astype(np.int64),
            channels=(
                records["trace_channel"].values.astype(str)
                if "trace_channel" in records.coords
                else np.array([""] * records.sizes["record"])
            ),
        )
    return path


def sample_path() -> Path:
    """Path of the ~20 real NCEDC records shipped with terralab (``lib/terralab/data/seismic``)."""
    return Path(__file__).resolve().parents[1] / "data" / "seismic" / SAMPLE_FILE


def read_sample(max_records: int | None = None) -> xr.DataArray:
    """The embedded real sample: the first 20 records of PhaseNet's ``waveform.csv`` (MIT), as a record
    set."""
    return read_phasenet_npz(sample_path(), max_records=max_records)
