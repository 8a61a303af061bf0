"""Read Earth Engine TFRecord exports without TensorFlow.

Earth Engine writes two kinds of TFRecord files that the rice workflow uses:

* **image patches** (``Export.image`` with ``fileFormat="TFRecord"``): one ``tf.train.Example`` per patch,
  one float list per band in row-major order, plus a "mixer" JSON file that says where the patches sit
  (CRS, affine transform, patch size, patches per row);
* **point samples** (``Export.table`` of ``image.sampleRegions``): one ``tf.train.Example`` per point, one
  value per feature.

Both are read here with a small, checked parser: the TFRecord framing (length, masked CRC-32C of the length,
payload, masked CRC-32C of the payload) and the ``tf.train.Example`` protobuf
(``Features → map<string, Feature{bytes_list | float_list | int64_list}>``), packed or unpacked.
Every CRC is verified, so a truncated or corrupt file raises :class:`~terralab.errors.FileFormatError`
instead of silently returning wrong pixels.

Example
-------
>>> from terralab.rice import tfrecord
>>> image = tfrecord.read_image_patches("shared/data/rice/aces_paro_2021/tfrecord/images")  # doctest: +SKIP
>>> testing = "shared/data/rice/aces_paro_2021/tfrecord/testing/testing.tfrecord.gz"
>>> points = tfrecord.read_points(testing)  # doctest: +SKIP
"""

from __future__ import annotations

import gzip
import json
import struct
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import DataNotAvailableError, FileFormatError, InvalidInputError

__all__ = [
    "crc32c",
    "iter_records",
    "masked_crc32c",
    "parse_example",
    "read_examples",
    "read_image_patches",
    "read_points",
]

# --- CRC-32C (Castagnoli), as TFRecord framing uses ------------------------------------------------


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``, as used by TFRecord framing (Google's ``google-crc32c``).

    Example
    -------
    >>> hex(crc32c(b"123456789"))
    '0xe3069283'
    """
    import google_crc32c

    return int(google_crc32c.value(bytes(data)))


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC: rotate right by 15 bits and add a constant (mod 2³²)."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# --- TFRecord framing --------------------------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError as err:
        raise DataNotAvailableError(f"TFRecord file {path} does not exist; check the path") from err
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise FileFormatError(
                f"{path} is not a complete gzip stream ({err}); the file is truncated or corrupt — download "
                "it again"
            ) from err
    return raw


def iter_records(path: str | Path, *, verify: bool = True) -> Iterator[bytes]:
    """Yield the payload of every record of a TFRecord file (gzip-compressed or not).

    Parameters
    ----------
    path
        A ``.tfrecord`` or ``.tfrecord.gz`` file.
    verify
        Check both masked CRC-32C values of every record (default). Turn off only for speed on trusted files.

    Raises
    ------
    FileFormatError
        Truncated file, bad length, or CRC mismatch.
    """
    path = Path(path)
    buf = _read_bytes(path)
    if not buf:
        raise FileFormatError(f"{path} is empty: an Earth Engine TFRecord export holds at least one record")
    view = memoryview(buf)
    offset = 0
    index = 0
    while offset < len(buf):
        if offset + 12 > len(buf):
            raise FileFormatError(f"{path}: record {index} header is truncated at byte {offset}")
        header = bytes(view[offset : offset + 8])
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", view[offset + 8 : offset + 12])
        if verify and masked_crc32c(header) != length_crc:
            raise FileFormatError(
                f"{path}: record {index} length CRC mismatch at byte {offset}; not a TFRecord file or corrupt"
            )
        start = offset + 12
        end = start + length
        if end + 4 > len(buf):
            raise FileFormatError(
                f"{path}: record {index} claims {length} bytes but the file ends first; the file is truncated"
            )
        data = bytes(view[start:end])
        (data_crc,) = struct.unpack("<I", view[end : end + 4])
        if verify and masked_crc32c(data) != data_crc:
            raise FileFormatError(f"{path}: record {index} payload CRC mismatch; the file is corrupt")
        yield data
        offset = end + 4
        index += 1


# --- tf.train.Example protobuf ------------------------------------------------------------------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise FileFormatError("protobuf varint runs past the end of the message")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise FileFormatError("protobuf varint longer than 10 bytes")


def _fields(buf: bytes) -> Iterator[tuple[int, int, object]]:
    """Yield (field number, wire type, value) of a protobuf message; value is int or bytes."""
    pos = 0
    n = len(buf)
    while pos < n:
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > n:
                raise FileFormatError("protobuf field runs past the end of the message")
            value, pos = buf[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise FileFormatError(f"unsupported protobuf wire type {wire}: not a tf.train.Example")
        if pos > n:
            raise FileFormatError("protobuf field runs past the end of the message")
        yield field, wire, value


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _parse_feature(buf: bytes) -> np.ndarray | list[bytes]:
    for field, wire, value in _fields(buf):
        if field == 1:  # BytesList
            return [v for f, w, v in _fields(value) if f == 1 and w == 2]
        if field == 2:  # FloatList
            parts = []
            for f, w, v in _fields(value):
                if f != 1:
                    continue
                if w == 2:
                    if len(v) % 4:
                        raise FileFormatError("packed float list length is not a multiple of 4")
                    parts.append(np.frombuffer(v, dtype="<f4"))
                elif w == 5:
                    parts.append(np.frombuffer(v, dtype="<f4"))
            return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
        if field == 3:  # Int64List
            values: list[int] = []
            for f, w, v in _fields(value):
                if f != 1:
                    continue
                if w == 2:
                    pos = 0
                    while pos < len(v):
                        item, pos = _varint(v, pos)
                        values.append(_signed64(item))
                elif w == 0:
                    values.append(_signed64(v))
            return np.asarray(values, dtype=np.int64)
    return np.zeros(0, np.float32)  # a Feature with no kind set


def parse_example(payload: bytes) -> dict[str, np.ndarray | list[bytes]]:
    """Decode one serialized ``tf.train.Example`` into ``{feature name: values}``.

    Float lists become float32 arrays, int64 lists int64 arrays, bytes lists lists of ``bytes``.
    """
    out: dict[str, np.ndarray | list[bytes]] = {}
    for field, wire, features in _fields(payload):
        if field != 1 or wire != 2:
            continue
        for f, w, entry in _fields(features):
            if f != 1 or w != 2:
                continue
            key = None
            feature = b""
            for ef, ew, ev in _fields(entry):
                if ef == 1 and ew == 2:
                    key = bytes(ev).decode("utf-8")
                elif ef == 2 and ew == 2:
                    feature = ev
            if key is None:
                raise FileFormatError("tf.train.Example feature entry without a name")
            out[key] = _parse_feature(feature)
    return out


def read_examples(path: str | Path, *, verify: bool = True) -> Iterator[dict[str, np.ndarray | list[bytes]]]:
    """Yield every ``tf.train.Example`` of a TFRecord file as a dict (see :func:`parse_example`)."""
    for i, payload in enumerate(iter_records(path, verify=verify)):
        try:
            yield parse_example(payload)
        except FileFormatError as err:
            raise FileFormatError(f"{path}: record {i} is not a valid tf.train.Example ({err})") from err


# --- readers the catalog registers --------------------------------------------------------------------


def _tfrecord_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.name.endswith((".tfrecord", ".tfrecord.gz")))
        if not files:
            raise DataNotAvailableError(f"no *.tfrecord or *.tfrecord.gz file in {path}")
        return files
    if not path.exists():
        raise DataNotAvailableError(
            f"{path} does not exist; give a TFRecord file or the directory holding it"
        )
    return [path]


def _find_mixer(path: Path, files: Sequence[Path]) -> Path:
    folder = path if path.is_dir() else path.parent
    candidates = sorted(folder.glob("*.json"))
    # Earth Engine names the mixer after the file prefix: "<prefix>.json" or "<prefix>mixer.json"
    stems = {f.name.split(".tfrecord")[0].rsplit("-", 1)[0] for f in files}
    preferred = [
        c for c in candidates if c.stem in stems or c.stem.removesuffix("mixer").rstrip("-_") in stems
    ]
    for candidate in preferred + candidates:
        try:
            content = json.loads(candidate.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(content, dict) and "patchDimensions" in content:
            return candidate
    raise DataNotAvailableError(
        f"no Earth Engine mixer JSON (with 'patchDimensions') beside {path}; it is exported with the "
        "TFRecord files and holds their georeference — copy it into the same directory"
    )


def read_image_patches(
    path: str | Path,
    *,
    bands: Sequence[str] | None = None,
    mixer: str | Path | None = None,
    verify: bool = True,
) -> xr.DataArray:
    """Mosaic an Earth Engine TFRecord image export into an ``xr.DataArray (band, y, x)``.

    Parameters
    ----------
    path
        The directory holding the ``*.tfrecord.gz`` files and the mixer JSON (or one TFRecord file).
    bands
        Band names to keep, in this order (default: all, in the order of the first record).
    mixer
        Path of the mixer JSON, when it is not beside the TFRecord files.
    verify
        Verify CRCs (default).

    Returns
    -------
    xr.DataArray
        float32 (band, y, x) with pixel-centre coordinates ``x``/``y`` in the mixer's CRS, CRS and transform
        written with rioxarray. Patches exported with a kernel buffer (``kernelSize``) are cropped to the
        core.

    Example
    -------
    >>> stack = read_image_patches("shared/data/rice/aces_paro_2021/tfrecord/images")  # doctest: +SKIP
    >>> stack.sizes                                                                       # doctest: +SKIP
    Frozen({'band': 8, 'y': 256, 'x': 256})
    """
    import rioxarray  # noqa: F401  (registers the .rio accessor)
    from affine import Affine

    path = Path(path)
    files = _tfrecord_files(path)
    mix = _read_mixer(Path(mixer) if mixer is not None else _find_mixer(path, files))
    patches: list[dict[str, np.ndarray]] = []
    for file in files:
        patches.extend(read_examples(file, verify=verify))  # type: ignore[arg-type]
    if len(patches) != mix.total:
        raise FileFormatError(
            f"{path}: mixer says {mix.total} patches, the TFRecord files hold {len(patches)}; some files are "
            "missing"
        )
    names = list(bands) if bands is not None else list(patches[0].keys())
    missing = [n for n in names if n not in patches[0]]
    if missing:
        raise InvalidInputError(f"bands {missing} are not in {path}; it holds {list(patches[0].keys())}")
    data = _mosaic(patches, names, mix, path)
    a, b, c, d, e, f = mix.affine
    xs = c + a * (np.arange(data.shape[2]) + 0.5)
    ys = f + e * (np.arange(data.shape[1]) + 0.5)
    out = xr.DataArray(
        data,
        dims=("band", "y", "x"),
        coords={"band": names, "y": ys, "x": xs},
        name="reflectance",
        attrs={"source": str(path), "long_name": "Earth Engine TFRecord image export"},
    )
    return out.rio.write_crs(mix.crs).rio.write_transform(Affine(a, b, c, d, e, f))


class _Mixer(NamedTuple):
    """What an Earth Engine mixer JSON says about a patch export."""

    patch_h: int
    patch_w: int
    per_row: int
    total: int
    crs: str
    affine: tuple[float, ...]


def _read_mixer(mixer_path: Path) -> _Mixer:
    try:
        meta = json.loads(mixer_path.read_text())
        ph, pw = (int(v) for v in meta["patchDimensions"])
        per_row = int(meta.get("patchesPerRow", 1))
        total = int(meta.get("totalPatches", 1))
        proj = meta["projection"]
        crs = proj.get("crs") or proj.get("wkt")
        a, b, c, d, e, f = (float(v) for v in proj["affine"]["doubleMatrix"])
        return _Mixer(ph, pw, per_row, total, crs, (a, b, c, d, e, f))
    except (KeyError, ValueError, TypeError) as err:
        raise FileFormatError(f"{mixer_path} is not an Earth Engine mixer JSON ({err!r})") from err


def _mosaic(patches: list[dict[str, np.ndarray]], names: list[str], mix: _Mixer, path: Path) -> np.ndarray:
    """float32 (band, y, x) of the patches laid out row by row, each cropped to its core (no buffer)."""
    ph, pw, per_row = mix.patch_h, mix.patch_w, mix.per_row
    n_len = len(patches[0][names[0]])
    kernel = round(float(np.sqrt(n_len))) - ph if ph == pw else 0
    if (ph + kernel) * (pw + kernel) != n_len:
        raise FileFormatError(
            f"{path}: band {names[0]!r} has {n_len} values per patch, which fits neither the patch size "
            f"{ph}×{pw} nor a square kernel buffer around it"
        )
    half = kernel // 2
    n_rows = -(-mix.total // per_row)
    data = np.full((len(names), n_rows * ph, per_row * pw), np.nan, dtype=np.float32)
    for k, patch in enumerate(patches):
        r, col = divmod(k, per_row)
        for i, name in enumerate(names):
            values = np.asarray(patch[name], dtype=np.float32)
            if values.size != n_len:
                raise FileFormatError(
                    f"{path}: patch {k} band {name!r} has {values.size} values, expected {n_len}"
                )
            block = values.reshape(ph + kernel, pw + kernel)[half : half + ph, half : half + pw]
            data[i, r * ph : (r + 1) * ph, col * pw : (col + 1) * pw] = block
    return data


def read_points(
    path: str | Path,
    *,
    class_column: str = "class",
    class_names: dict[int, str] | Sequence[str] | None = None,
    verify: bool = True,
) -> pd.DataFrame:
    """Read Earth Engine point samples exported as TFRecord into a DataFrame (one row per point).

    Parameters
    ----------
    path
        A ``.tfrecord.gz`` file (or a directory of them, read in name order).
    class_column
        Name of the integer class feature; it becomes an ``int64`` column.
    class_names
        Optional names of the classes (list indexed by class id, or dict); adds a ``class_name`` column.
    verify
        Verify CRCs (default).

    Returns
    -------
    pd.DataFrame
        One float32 column per single-valued float feature (band values), int64 for integer features,
        array-valued features kept as object columns.
    """
    rows: dict[str, list] = {}
    n = 0
    for file in _tfrecord_files(Path(path)):
        for example in read_examples(file, verify=verify):
            for key in example:
                if key not in rows:
                    rows[key] = [None] * n
            for key, column in rows.items():
                value = example.get(key)
                if (
                    isinstance(value, np.ndarray)
                    and value.size == 1
                    or isinstance(value, list)
                    and len(value) == 1
                ):
                    value = value[0]
                column.append(value)
            n += 1
    if n == 0:
        raise FileFormatError(f"{path} holds no records")
    frame = pd.DataFrame(rows)
    for key in frame.columns:
        sample = frame[key].iloc[0]
        if isinstance(sample, np.floating):
            frame[key] = frame[key].astype(np.float32)
        elif isinstance(sample, np.integer):
            frame[key] = frame[key].astype(np.int64)
    if class_column in frame.columns:
        frame[class_column] = frame[class_column].astype(np.int64)
        if class_names is not None:
            mapping = dict(class_names) if isinstance(class_names, dict) else dict(enumerate(class_names))
            frame["class_name"] = frame[class_column].map(mapping)
        cols = [c for c in frame.columns if c not in (class_column, "class_name")]
        frame = frame[cols + [c for c in (class_column, "class_name") if c in frame.columns]]
    frame.attrs["source"] = str(path)
    return frame
