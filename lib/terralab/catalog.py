"""The data catalog: every dataset the notebooks use, by name.

``data_catalog.yaml`` lists datasets under a top-level ``datasets:`` mapping. Each entry has a ``kind``
(``file``, ``package``, ``synthetic``, ``earthengine``, ``stac`` or ``hf``), a ``format`` that picks the reader,
a licence, a citation and a description; file entries add ``path`` (relative to the data mirror, the same layout
as ``shared/data``), ``url`` (the public source) and ``sha256``. See the header of ``data_catalog.yaml`` for
the whole schema.

Which catalog file is read (first found wins):

1. the file named by the environment variable ``TERRALAB_CATALOG``;
2. ``data_catalog.yaml`` at the repository root beside ``lib/`` (editable installs, a checkout);
3. ``terralab/data/data_catalog.yaml`` inside the installed package (wheels ship a copy).

Entries written by the workflows in ``terralab/<workflow>/catalog_entries.yaml`` are merged in as well
(an entry of the main file wins over a fragment entry of the same name).

Where :func:`fetch` looks for a file, in order: the package's embedded samples (``terralab/data/<package_path>``),
the offline mirror ``$TERRALAB_DATA_MIRROR/<path>``, the cache ``$TERRALAB_CACHE/<path>`` (default: the user
cache directory, e.g. ``~/.cache/terralab``), and finally a download of ``url`` with pooch into the cache.
Every hit is checked against the catalog's sha256 (once per process per file version). A download that fails
for a passing reason (no connection, a timeout, HTTP 5xx or 429) is tried again after a back-off
(:data:`DOWNLOAD_ATTEMPTS` tries in all, waiting :data:`RETRY_BACKOFF_S`, then twice that, ...) before
:class:`~terralab.errors.DataNotAvailableError` says what was tried; STAC searches are retried the same way.

Examples
--------
>>> from terralab import catalog
>>> "das_bridge_vehicle" in catalog.names()
True
>>> picks = catalog.open("seismic_phasenet_ncedc_picks")  # doctest: +SKIP
>>> path = catalog.fetch("rice_landsat_rgb")               # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import json
import logging
import os
import shutil
import time
import types
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import (
    CatalogError,
    ChecksumError,
    CredentialsError,
    DataNotAvailableError,
    FileFormatError,
    MissingDependencyError,
    UnknownDatasetError,
)
from .files import atomic_path

__all__ = [
    "Catalog",
    "Entry",
    "FileSpec",
    "UnverifiedDataWarning",
    "cache_dir",
    "default_catalog_path",
    "describe",
    "fetch",
    "get",
    "get_reader",
    "load_catalog",
    "locate",
    "mirror_dir",
    "names",
    "open",
    "register_reader",
    "table",
]

PACKAGE_DIR = Path(__file__).resolve().parent
PACKAGE_DATA = PACKAGE_DIR / "data"
CATALOG_FILENAME = "data_catalog.yaml"
FRAGMENT_FILENAME = "catalog_entries.yaml"
READER_GROUP = "terralab.readers"
ENV_CATALOG = "TERRALAB_CATALOG"
ENV_MIRROR = "TERRALAB_DATA_MIRROR"
ENV_CACHE = "TERRALAB_CACHE"

#: Tries per download or STAC request (the first one included) before giving up, and the first back-off
#: delay in seconds; each further wait doubles it (1 s, 2 s: a network blip of a few seconds is ridden out,
#: a machine without network gets its clear error within ~3 s per file).
DOWNLOAD_ATTEMPTS = 3
RETRY_BACKOFF_S = 1.0
_sleep = time.sleep  # the tests replace it to count the waits without waiting
_log = logging.getLogger(__name__)

KINDS = ("file", "package", "synthetic", "earthengine", "stac", "hf")
FILE_KINDS = ("file", "package", "hf")
UNVERIFIED_KINDS = ("hf", "stac", "earthengine")  # kinds whose sha256 may be null

_KNOWN_KEYS = {
    "kind",
    "format",
    "description",
    "license",
    "citation",
    "url",
    "path",
    "package_path",
    "sha256",
    "read_kwargs",
    "files",
    "derived",
    "note",
    "size_bytes",
    "license_file",
    "source",
    "generator",
    "params",
    "asset",
    "ee_type",
    "bands",
    "collection",
    "repo",
}
_HEX = set("0123456789abcdef")


class UnverifiedDataWarning(UserWarning):
    """A file was used without a sha256 check because the catalog records none (kind hf)."""


# --------------------------------------------------------------------------------------------------
# Entries
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileSpec:
    """One file of a multi-file entry: ``path`` relative to the entry's directory, its source and hash."""

    path: str
    url: str | None
    sha256: str | None
    size_bytes: int | None = None


@dataclass(frozen=True)
class Entry:
    """One catalog entry, validated. Mappings are read-only views; ``extra`` holds unknown keys."""

    name: str
    kind: str
    format: str | None
    description: str
    license: str
    citation: str | None = None
    url: str | None = None
    path: str | None = None
    package_path: str | None = None
    sha256: str | None = None
    read_kwargs: Mapping[str, Any] = field(default_factory=lambda: types.MappingProxyType({}))
    files: tuple[FileSpec, ...] = ()
    derived: bool = False
    note: str | None = None
    size_bytes: int | None = None
    license_file: str | None = None
    source: str | None = None
    generator: str | None = None
    params: Mapping[str, Any] = field(default_factory=lambda: types.MappingProxyType({}))
    asset: str | None = None
    ee_type: str | None = None
    bands: tuple[str, ...] = ()
    collection: str | None = None
    repo: str | None = None
    origin: str = ""
    extra: Mapping[str, Any] = field(default_factory=lambda: types.MappingProxyType({}))

    def __hash__(self) -> int:  # the mapping fields are unhashable; name, origin and hash identify an entry
        return hash((self.name, self.origin, self.sha256))

    @property
    def is_multifile(self) -> bool:
        """True when the entry is a directory of several files (``files:``)."""
        return bool(self.files)

    @property
    def is_fetchable(self) -> bool:
        """True when :func:`fetch` can return a local path for this entry."""
        return self.kind in FILE_KINDS


def _check_sha(value: Any, where: str) -> str | None:
    if value is None:
        return None
    text = str(value).strip().lower()
    text = text.removeprefix("sha256:")
    if len(text) != 64 or not set(text) <= _HEX:
        raise CatalogError(f"{where}: sha256 must be 64 hex digits, got {value!r}")
    return text


def _as_str(value: Any, key: str, where: str, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise CatalogError(f"{where}: required key {key!r} is missing or empty")
        return None
    if not isinstance(value, (str, int, float)):
        raise CatalogError(f"{where}: {key!r} must be a string, got {type(value).__name__}")
    text = str(value).strip()
    if required and not text:
        raise CatalogError(f"{where}: required key {key!r} is empty")
    return text or None


def _rel_path(value: Any, key: str, where: str) -> str | None:
    text = _as_str(value, key, where)
    if text is None:
        return None
    p = Path(text)
    if p.is_absolute() or ".." in p.parts:
        raise CatalogError(
            f"{where}: {key!r} must be a relative path inside the mirror/package, got {text!r}"
        )
    return p.as_posix().rstrip("/")


def _mapping(value: Any, key: str, where: str) -> Mapping[str, Any]:
    if value is None:
        return types.MappingProxyType({})
    if not isinstance(value, dict):
        raise CatalogError(f"{where}: {key!r} must be a mapping, got {type(value).__name__}")
    return types.MappingProxyType(dict(value))


def _parse_entry(name: Any, raw: Any, origin: str) -> Entry:
    """Validate one raw YAML entry; raise CatalogError naming the entry and file on any problem."""
    where = f"{origin}: entry {name!r}"
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "_-." for c in name):
        raise CatalogError(
            f"{origin}: dataset name {name!r} must be a non-empty string of letters, digits, _ - ."
        )
    if not isinstance(raw, dict):
        raise CatalogError(f"{where} must be a mapping of keys (kind, format, ...), got {type(raw).__name__}")
    kind = _as_str(raw.get("kind"), "kind", where, required=True)
    if kind not in KINDS:
        raise CatalogError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
    description = _as_str(raw.get("description"), "description", where, required=True)
    license_ = _as_str(raw.get("license"), "license", where, required=kind != "synthetic") or "see generator"
    fmt = _as_str(raw.get("format"), "format", where, required=kind in FILE_KINDS)
    derived = bool(raw.get("derived", False))
    note = _as_str(raw.get("note"), "note", where)
    url = _as_str(raw.get("url"), "url", where)
    path = _rel_path(raw.get("path"), "path", where)
    package_path = _rel_path(raw.get("package_path"), "package_path", where)
    read_kwargs = _mapping(raw.get("read_kwargs"), "read_kwargs", where)
    params = _mapping(raw.get("params"), "params", where)

    files: list[FileSpec] = []
    raw_files = raw.get("files")
    if raw_files is not None:
        if not isinstance(raw_files, list) or not raw_files:
            raise CatalogError(f"{where}: 'files' must be a non-empty list of {{path, url, sha256}}")
        for i, spec in enumerate(raw_files):
            fwhere = f"{where}, files[{i}]"
            if not isinstance(spec, dict):
                raise CatalogError(f"{fwhere} must be a mapping with path, url, sha256")
            fpath = _rel_path(spec.get("path"), "path", fwhere)
            if fpath is None:
                raise CatalogError(f"{fwhere}: required key 'path' is missing")
            fsha = _check_sha(spec.get("sha256"), fwhere)
            if fsha is None and kind not in UNVERIFIED_KINDS:
                raise CatalogError(f"{fwhere}: sha256 is required for kind {kind!r}")
            files.append(
                FileSpec(fpath, _as_str(spec.get("url"), "url", fwhere), fsha, spec.get("size_bytes"))
            )
        if path is None and package_path is None:
            raise CatalogError(f"{where}: a multi-file entry needs 'path' (or 'package_path'): the directory")

    if "sha256" in raw and raw["sha256"] is None and kind not in UNVERIFIED_KINDS:
        raise CatalogError(f"{where}: sha256 may be null only for kinds {', '.join(UNVERIFIED_KINDS)}")
    sha = _check_sha(raw.get("sha256"), where)

    if kind in FILE_KINDS and not files:
        if path is None and package_path is None and url is None:
            raise CatalogError(f"{where}: a {kind} entry needs at least one of path, package_path, url")
        if sha is None and kind not in UNVERIFIED_KINDS:
            raise CatalogError(f"{where}: required key 'sha256' is missing (64 hex digits)")
        if kind == "file" and url is None and not derived and note is None:
            raise CatalogError(
                f"{where}: give its public 'url', or 'derived: true' when none exists, or a 'note' saying why not"
            )
    if kind == "package" and package_path is None:
        raise CatalogError(f"{where}: a package entry needs 'package_path' (relative to terralab/data/)")
    generator = _as_str(raw.get("generator"), "generator", where, required=kind == "synthetic")
    if generator is not None and ":" not in generator:
        raise CatalogError(f"{where}: generator must read 'module:function', got {generator!r}")
    asset = _as_str(raw.get("asset"), "asset", where, required=kind == "earthengine")
    collection = _as_str(raw.get("collection"), "collection", where, required=kind == "stac")
    if kind in ("stac", "hf") and url is None and not files:
        raise CatalogError(f"{where}: a {kind} entry needs 'url'")
    bands = raw.get("bands") or ()
    if not isinstance(bands, (list, tuple)):
        raise CatalogError(f"{where}: 'bands' must be a list of band names")
    size = raw.get("size_bytes")
    if size is not None and not isinstance(size, int):
        raise CatalogError(f"{where}: 'size_bytes' must be an integer")

    extra = {k: v for k, v in raw.items() if k not in _KNOWN_KEYS}
    return Entry(
        name=name,
        kind=kind,
        format=fmt,
        description=description,
        license=license_,
        citation=_as_str(raw.get("citation"), "citation", where),
        url=url,
        path=path,
        package_path=package_path,
        sha256=sha,
        read_kwargs=read_kwargs,
        files=tuple(files),
        derived=derived,
        note=note,
        size_bytes=size,
        license_file=_rel_path(raw.get("license_file"), "license_file", where),
        source=_as_str(raw.get("source"), "source", where),
        generator=generator,
        params=params,
        asset=asset,
        ee_type=_as_str(raw.get("ee_type"), "ee_type", where),
        bands=tuple(str(b) for b in bands),
        collection=collection,
        repo=_as_str(raw.get("repo"), "repo", where),
        origin=origin,
        extra=types.MappingProxyType(extra),
    )


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"cannot read catalog file {path}: {exc}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path} is not valid YAML: {exc}") from exc


def _entries_from(path: Path, *, fragment: bool) -> dict[str, Entry]:
    data = _read_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise CatalogError(f"{path}: the top level must be a mapping with a 'datasets:' key")
    if fragment and "datasets" not in data:
        raw = data  # fragments may list entries directly
    else:
        raw = data.get("datasets")
        if not isinstance(raw, dict):
            raise CatalogError(f"{path}: needs a top-level 'datasets:' mapping of name -> entry")
    return {name: _parse_entry(name, spec, str(path)) for name, spec in raw.items()}


# --------------------------------------------------------------------------------------------------
# Locations
# --------------------------------------------------------------------------------------------------
def default_catalog_path() -> Path:
    """Path of the catalog file used by default: ``$TERRALAB_CATALOG``, the repo root's, or the package copy."""
    env = os.environ.get(ENV_CATALOG)
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise CatalogError(
                f"{ENV_CATALOG}={env} does not name a file: point it at a data_catalog.yaml or unset it"
            )
        return p
    repo_root = PACKAGE_DIR.parent.parent
    candidates = [repo_root / CATALOG_FILENAME] if PACKAGE_DIR.parent.name == "lib" else []
    candidates.append(PACKAGE_DATA / CATALOG_FILENAME)
    for p in candidates:
        if p.is_file():
            return p
    raise CatalogError(
        f"no data catalog found (looked at {', '.join(map(str, candidates))}); "
        f"set {ENV_CATALOG} to a data_catalog.yaml"
    )


def _fragment_paths() -> list[Path]:
    return sorted(PACKAGE_DIR.glob(f"*/{FRAGMENT_FILENAME}"))


def mirror_dir() -> Path | None:
    """The offline mirror directory (``$TERRALAB_DATA_MIRROR``), or None when unset."""
    env = os.environ.get(ENV_MIRROR, "").strip()
    return Path(env).expanduser() if env else None


def _mirror_problem() -> str | None:
    """Why the mirror cannot be used although it is set (a folder that does not exist), or None."""
    mirror = mirror_dir()
    if mirror is None or mirror.is_dir():
        return None
    what = "is not a folder" if mirror.exists() else "does not exist"
    return (
        f"{ENV_MIRROR} is set to {mirror}, which {what}: the offline mirror was not searched. "
        f"Fix the path (a typo? a drive not mounted?) or unset {ENV_MIRROR}."
    )


def cache_dir() -> Path:
    """The download cache (``$TERRALAB_CACHE``, default the user cache dir + ``terralab``)."""
    env = os.environ.get(ENV_CACHE, "").strip()
    if env:
        return Path(env).expanduser()
    try:
        import platformdirs
    except ImportError:  # pragma: no cover - platformdirs is a hard dependency
        return Path.home() / ".cache" / "terralab"
    return Path(platformdirs.user_cache_dir("terralab"))


# --------------------------------------------------------------------------------------------------
# Hashing
# --------------------------------------------------------------------------------------------------
_HASHES: dict[tuple[str, int, int], str] = {}


def _sha256(path: Path) -> str:
    """sha256 of a file, memoised per (path, mtime, size) so repeated fetches stay cheap."""
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    hit = _HASHES.get(key)
    if hit is None:
        h = hashlib.sha256()
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        hit = _HASHES[key] = h.hexdigest()
    return hit


def _verify(path: Path, expected: str | None, where: str, name: str) -> None:
    """Check a local file against the catalog hash; remove it when it is a bad cache copy."""
    if expected is None:
        warnings.warn(
            f"{name}: the catalog records no sha256, so {path} is used unverified",
            UnverifiedDataWarning,
            stacklevel=4,
        )
        return
    actual = _sha256(path)
    if actual == expected:
        return
    if where == "cache":
        path.unlink(missing_ok=True)
        todo = "The bad cache copy has been removed; fetch again to download a fresh one."
    elif where == "mirror":
        todo = (
            f"The mirror file is corrupt or was changed; it has NOT been touched. Restore it from the source "
            f"(e.g. `sha256sum -c SHA256SUMS` in the mirror) or unset {ENV_MIRROR} to download a fresh copy."
        )
    else:
        todo = "The packaged copy is corrupt or was changed; reinstall terralab (pip install -e .)."
    raise ChecksumError(
        f"{name}: sha256 mismatch for {where} file {path}\n  expected {expected}\n  actual   {actual}\n{todo}"
    )


# --------------------------------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------------------------------
Reader = Callable[..., Any]
_READERS: dict[str, Reader] = {}
_ENTRY_POINTS: dict[str, Any] | None = None


def register_reader(fmt: str, *aliases: str) -> Callable[[Reader], Reader]:
    """Decorator registering ``reader(path, **read_kwargs)`` for catalog entries of ``format: fmt``.

    Workflows usually register through the entry-point group ``terralab.readers`` instead (loaded lazily
    the first time an unknown format is opened); a reader registered here wins over an entry point.

    Examples
    --------
    >>> @register_reader("my-format")
    ... def read_mine(path, **kwargs):
    ...     return path.read_text()
    """

    def deco(func: Reader) -> Reader:
        for f in (fmt, *aliases):
            _READERS[f] = func
        return func

    return deco


def _entry_points() -> dict[str, Any]:
    global _ENTRY_POINTS
    if _ENTRY_POINTS is None:
        from importlib.metadata import entry_points

        _ENTRY_POINTS = {ep.name: ep for ep in entry_points(group=READER_GROUP)}
    return _ENTRY_POINTS


def get_reader(fmt: str) -> Reader:
    """The reader for a format: registered ones first, then the ``terralab.readers`` entry points."""
    if fmt in _READERS:
        return _READERS[fmt]
    ep = _entry_points().get(fmt)
    if ep is None:
        known = sorted(set(_READERS) | set(_entry_points()))
        raise FileFormatError(
            f"no reader for format {fmt!r}. Known formats: {', '.join(known)}. Register one with "
            f"@terralab.catalog.register_reader({fmt!r}) or an entry point in the group {READER_GROUP!r}."
        )
    try:
        func = ep.load()
    except ImportError as exc:
        raise MissingDependencyError(
            f"the reader for format {fmt!r} (entry point {ep.value}) cannot be imported: {exc}. "
            f"Reinstall terralab (pip install -e .) so its workflow modules and their dependencies are present."
        ) from exc
    _READERS[fmt] = func
    return func


def _dims_for(shape: tuple[int, ...], dims: Any, var: str) -> list[str]:
    if dims is None:
        return [f"dim_{i}" for i in range(len(shape))]
    dims = list(dims)
    if len(dims) != len(shape):
        raise FileFormatError(f"dims {dims} for {var!r} do not match its {len(shape)}-d shape {shape}")
    return dims


@register_reader("csv")
def _read_csv(path: Path, **kwargs: Any) -> Any:
    import pandas as pd

    return pd.read_csv(path, **kwargs)


@register_reader("tsv")
def _read_tsv(path: Path, **kwargs: Any) -> Any:
    import pandas as pd

    kwargs.setdefault("sep", "\t")
    return pd.read_csv(path, **kwargs)


@register_reader("parquet")
def _read_parquet(path: Path, **kwargs: Any) -> Any:
    import pandas as pd

    try:
        return pd.read_parquet(path, **kwargs)
    except ImportError as exc:
        raise MissingDependencyError(f"reading parquet needs pyarrow: pip install pyarrow ({exc})") from exc


@register_reader("json")
def _read_json(path: Path, **kwargs: Any) -> Any:
    with Path(path).open(encoding=kwargs.pop("encoding", "utf-8")) as fh:
        return json.load(fh, **kwargs)


@register_reader("geojson", "vector", "gpkg", "shapefile")
def _read_vector(path: Path, **kwargs: Any) -> Any:
    import geopandas as gpd

    return gpd.read_file(path, **kwargs)


@register_reader("geotiff", "jp2", "raster", "cog")
def _read_raster(path: Path, masked: bool = False, **kwargs: Any) -> Any:
    """A raster as ``xarray.DataArray (band, y, x)``; band coordinate = band descriptions when present."""
    import rioxarray

    da = rioxarray.open_rasterio(path, masked=masked, **kwargs)
    if hasattr(da, "dims") and "band" in da.dims:
        names = da.attrs.get("long_name")
        if isinstance(names, (list, tuple)) and len(names) == da.sizes["band"] and all(names):
            da = da.assign_coords(band=list(names))
    da.attrs.setdefault("source", str(path))
    return da


@register_reader("netcdf", "nc")
def _read_netcdf(path: Path, **kwargs: Any) -> Any:
    import xarray as xr

    return xr.open_dataset(path, **kwargs)


@register_reader("zarr")
def _read_zarr(path: Path, **kwargs: Any) -> Any:
    import xarray as xr

    return xr.open_zarr(path, **kwargs)


@register_reader("npy")
def _read_npy(
    path: Path,
    dims: Any = None,
    attrs: Mapping[str, Any] | None = None,
    name: str | None = None,
    mmap: bool = False,
) -> Any:
    """A ``.npy`` array as ``xarray.DataArray``; ``dims`` names its axes (default ``dim_0 ...``)."""
    import numpy as np
    import xarray as xr

    arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    da = xr.DataArray(
        arr, dims=_dims_for(arr.shape, dims, name or Path(path).stem), name=name or Path(path).stem
    )
    da.attrs.update(dict(attrs or {}))
    da.attrs.setdefault("source", str(path))
    return da


@register_reader("npz")
def _read_npz(
    path: Path,
    dims: Mapping[str, Any] | None = None,
    attrs: Mapping[str, Any] | None = None,
    as_dataset: bool | None = None,
) -> Any:
    """An ``.npz`` archive as ``xarray.Dataset`` when its arrays fit one (``dims`` per variable, or all
    arrays of one shape), else a ``dict`` of numpy arrays (e.g. a weights file)."""
    import numpy as np
    import xarray as xr

    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    same_shape = len({a.shape for a in arrays.values()}) == 1
    if as_dataset is False or (as_dataset is None and dims is None and not same_shape):
        return arrays
    dims = dict(dims or {})
    variables = {k: (_dims_for(a.shape, dims.get(k), k), a) for k, a in arrays.items()}
    try:
        ds = xr.Dataset(variables)
    except ValueError as exc:
        raise FileFormatError(
            f"{path}: arrays do not fit one Dataset ({exc}); give read_kwargs dims"
        ) from exc
    ds.attrs.update(dict(attrs or {}))
    ds.attrs.setdefault("source", str(path))
    return ds


@register_reader("hdf5", "h5")
def _read_hdf5(path: Path, **kwargs: Any) -> Any:
    import h5py

    kwargs.setdefault("mode", "r")
    return h5py.File(path, **kwargs)


@register_reader("png", "image", "jpeg")
def _read_image(path: Path, **kwargs: Any) -> Any:
    """An image as ``xarray.DataArray (y, x, channel)`` (``(y, x)`` for single-channel images)."""
    import numpy as np
    import xarray as xr
    from PIL import Image

    with Image.open(path) as im:
        arr = np.asarray(im)
        mode = im.mode
    dims = ("y", "x", "channel") if arr.ndim == 3 else ("y", "x")
    coords = {"channel": list(mode)} if arr.ndim == 3 and len(mode) == arr.shape[2] else {}
    return xr.DataArray(arr, dims=dims, coords=coords, attrs={"source": str(path), "mode": mode})


@register_reader("mseed", "sac", "obspy")
def _read_obspy(path: Path, **kwargs: Any) -> Any:
    try:
        import obspy
    except ImportError as exc:
        raise MissingDependencyError(f"reading waveforms needs obspy: pip install obspy ({exc})") from exc
    return obspy.read(str(path), **kwargs)


@register_reader("text", "txt")
def _read_text(path: Path, encoding: str = "utf-8", errors: str = "strict") -> str:
    return Path(path).read_text(encoding=encoding, errors=errors)


# --------------------------------------------------------------------------------------------------
# The catalog
# --------------------------------------------------------------------------------------------------
def _mirror_hint(rel: str | None) -> str:
    return (
        f"To work offline, point {ENV_MIRROR} at a copy of the project's data folder "
        f"(the layout of shared/data, e.g. `export {ENV_MIRROR}=../shared/data`)"
        + (f" that holds {rel}." if rel else ".")
    )


def _not_available(text: str) -> DataNotAvailableError:
    """DataNotAvailableError with ``text``, led by the cause when the mirror folder itself is missing."""
    problem = _mirror_problem()
    return DataNotAvailableError(f"{problem}\n{text}" if problem else text)


def _mirror_tried(path: Path) -> str:
    mirror = mirror_dir()
    if mirror is not None and not mirror.is_dir():
        return f"mirror {path} (the mirror folder {mirror} does not exist)"
    return f"mirror {path}"


class _RetriesExhausted(Exception):
    """The last error of :func:`_retry` and how many tries were made."""

    def __init__(self, error: BaseException, attempts: int):
        super().__init__(str(error))
        self.error = error
        self.attempts = attempts

    @property
    def tries(self) -> str:
        return "" if self.attempts == 1 else f" after {self.attempts} tries"


def _http_status(exc: BaseException) -> int | None:
    for obj in (getattr(exc, "response", None), exc):
        status = getattr(obj, "status_code", None)
        if isinstance(status, int):
            return status
    return None


def _is_transient(exc: BaseException) -> bool:
    """True for an error worth a second try: no connection, a timeout, a reset, HTTP 5xx, 408 or 429.

    A client error (404, 403: the file is not there, or not for us), a hash mismatch (pooch's ValueError) or
    a programming error fails at once: trying again cannot help.
    """
    status = _http_status(exc)
    if status is not None:
        return status >= 500 or status in (408, 425, 429)
    if isinstance(exc, OSError):  # requests' ConnectionError, Timeout, ChunkedEncodingError, socket errors
        return True
    return type(exc).__name__ in {"APIError", "TimeoutError", "ConnectTimeout", "ReadTimeout"}


def _retry(
    call: Callable[[], Any], what: str, *, attempts: int | None = None, backoff_s: float | None = None
) -> Any:
    """``call()``, tried again after a transient error (:func:`_is_transient`) with a doubling back-off.

    Raises :class:`_RetriesExhausted` holding the last error once the tries are used up, or at once for an
    error that is not transient.
    """
    attempts = max(1, int(DOWNLOAD_ATTEMPTS if attempts is None else attempts))
    delay = float(RETRY_BACKOFF_S if backoff_s is None else backoff_s)
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as exc:  # sorted into transient or not just below
            if attempt == attempts or not _is_transient(exc):
                raise _RetriesExhausted(exc, attempt) from exc
            _log.warning(
                "%s failed (%s: %s); trying again in %.0f s (%d of %d tries left)",
                what,
                type(exc).__name__,
                exc,
                delay,
                attempts - attempt,
                attempts,
            )
            _sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")  # pragma: no cover


class Catalog:
    """A set of validated entries, with lookup, fetching and opening.

    Parameters
    ----------
    entries : mapping of name to :class:`Entry`
    source : str
        Where the entries came from (shown in messages).
    """

    def __init__(self, entries: Mapping[str, Entry], source: str = "<memory>"):
        self._entries = dict(entries)
        self.source = source

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self):
        return iter(self.names())

    def names(self) -> list[str]:
        """Every dataset name, sorted."""
        return sorted(self._entries)

    def get(self, name: str) -> Entry:
        """The entry called ``name``; an unknown name raises UnknownDatasetError with close matches."""
        try:
            return self._entries[name]
        except KeyError:
            pass
        names = self.names()
        close = difflib.get_close_matches(str(name), names, n=5, cutoff=0.5)
        close += [n for n in names if str(name).lower() in n.lower() and n not in close][: 5 - len(close)]
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UnknownDatasetError(
            f"no dataset called {name!r} in the catalog ({self.source}).{hint} "
            f"`terralab catalog list` shows all {len(names)} names."
        )

    # -- locating ---------------------------------------------------------------------------------
    def _cache_rel(self, entry: Entry) -> str:
        if entry.path:
            return entry.path
        if entry.package_path:
            return f"package/{entry.package_path}"
        base = entry.url.rstrip("/").rsplit("/", 1)[-1] if entry.url else entry.name
        return f"downloads/{entry.name}/{base}"

    def locate(self, name: str) -> tuple[str | None, Path | None]:
        """Where a file entry is available without downloading: ('package'|'mirror'|'cache', path) or
        (None, None). Existence only; :meth:`fetch` verifies the hash."""
        entry = self.get(name)
        if not entry.is_fetchable:
            return None, None
        rels = [f.path for f in entry.files] or [None]

        def complete(base: Path) -> bool:
            return all((base / r if r else base).is_file() for r in rels)

        if entry.package_path and complete(PACKAGE_DATA / entry.package_path):
            return "package", PACKAGE_DATA / entry.package_path
        mirror = mirror_dir()
        if mirror is not None and entry.path and complete(mirror / entry.path):
            return "mirror", mirror / entry.path
        cached = cache_dir() / self._cache_rel(entry)
        if complete(cached):
            return "cache", cached
        return None, None

    # -- fetching ---------------------------------------------------------------------------------
    def fetch(self, name: str, *, progress: bool = True) -> Path:
        """Local path of a verified copy of ``name`` (the directory for a multi-file entry).

        Looks in the package data, the mirror, the cache, then downloads ``url`` with pooch.

        Parameters
        ----------
        name : str
            Catalog name.
        progress : bool
            Show a download progress bar.
        """
        entry = self.get(name)
        if not entry.is_fetchable:
            raise CatalogError(
                f"{name} is a {entry.kind!r} entry: there is no file to fetch. Use terralab.catalog.open({name!r})."
            )
        if entry.files:
            return self._fetch_multi(entry, progress)
        return self._fetch_one(
            entry.name,
            entry.path,
            entry.package_path,
            self._cache_rel(entry),
            entry.url,
            entry.sha256,
            entry,
            progress,
        )

    def _fetch_one(
        self,
        label: str,
        rel: str | None,
        package_rel: str | None,
        cache_rel: str,
        url: str | None,
        sha: str | None,
        entry: Entry,
        progress: bool,
    ) -> Path:
        tried: list[str] = []
        if package_rel:
            p = PACKAGE_DATA / package_rel
            if p.is_file():
                _verify(p, sha, "package", label)
                _log.debug("%s: package data %s", label, p)
                return p
            tried.append(f"package data {p}")
        mirror = mirror_dir()
        if rel:
            if mirror is None:
                tried.append(f"mirror: {ENV_MIRROR} is not set (would look for $" + f"{ENV_MIRROR}/{rel})")
            else:
                p = mirror / rel
                if p.is_file():
                    _verify(p, sha, "mirror", label)
                    _log.debug("%s: mirror %s", label, p)
                    return p
                tried.append(_mirror_tried(p))
        target = cache_dir() / cache_rel
        if target.is_file():
            _verify(target, sha, "cache", label)
            _log.debug("%s: cache %s", label, target)
            return target
        tried.append(f"cache {target}")
        if not url:
            if entry.derived:
                why = (
                    f"{label} has no public URL: it is derived data that ships with the project's data mirror "
                    f"(and its embedded samples), not downloadable."
                )
            else:
                why = f"{label} has no verified public URL" + (f" ({entry.note})" if entry.note else "") + "."
            raise _not_available(f"{why}\nTried: {'; '.join(tried)}.\n{_mirror_hint(rel)}")
        return self._download(label, url, target, sha, tried, rel, progress)

    def _download(
        self,
        label: str,
        url: str,
        target: Path,
        sha: str | None,
        tried: list[str],
        rel: str | None,
        progress: bool,
    ) -> Path:
        try:
            import pooch
        except ImportError as exc:  # pragma: no cover - pooch is a hard dependency
            raise MissingDependencyError("downloading datasets needs pooch: pip install pooch") from exc
        target.parent.mkdir(parents=True, exist_ok=True)
        _log.info("%s: downloading %s to %s", label, url, target)

        def attempt() -> str:
            # pooch streams into a temporary file beside the target and renames it only once the hash matches
            return pooch.retrieve(
                url,
                known_hash=f"sha256:{sha}" if sha else None,
                fname=target.name,
                path=target.parent,
                progressbar=progress,
            )

        try:
            out = _retry(attempt, f"downloading {label} from {url}")
        except _RetriesExhausted as failed:
            exc = failed.error
            if isinstance(exc, ValueError) and "hash" in str(exc).lower() and sha:
                raise ChecksumError(
                    f"{label}: the file downloaded from {url} does not match the catalog\n  expected {sha}\n"
                    f"  pooch: {exc}\nNothing was kept in the cache. The source may have changed; "
                    f"report it or use a mirror. {_mirror_hint(rel)}"
                ) from exc
            # network down, HTTP error, firewall: all mean the same to the user
            raise _not_available(
                f"{label}: could not download {url}{failed.tries} ({type(exc).__name__}: {exc}).\n"
                f"Tried: {'; '.join(tried)}.\n{_mirror_hint(rel)}"
            ) from exc
        path = Path(out)
        if sha is None:
            _verify(path, None, "download", label)
        else:
            _verify(path, sha, "cache", label)  # pooch checked already; this records the hash for later hits
        return path

    def _fetch_multi(self, entry: Entry, progress: bool) -> Path:
        where, base = self.locate(entry.name)
        if where in ("package", "mirror"):
            for f in entry.files:
                _verify(base / f.path, f.sha256, where, f"{entry.name} ({f.path})")
            return base
        target_dir = cache_dir() / self._cache_rel(entry)
        mirror = mirror_dir()
        for f in entry.files:
            label = f"{entry.name} ({f.path})"
            target = target_dir / f.path
            if target.is_file():
                _verify(target, f.sha256, "cache", label)
                continue
            src = mirror / entry.path / f.path if (mirror is not None and entry.path) else None
            if src is not None and src.is_file():
                _verify(src, f.sha256, "mirror", label)
                _copy_atomic(src, target)
                continue
            rel = f"{entry.path}/{f.path}" if entry.path else None
            tried = [
                _mirror_tried(src) if src is not None else f"mirror: {ENV_MIRROR} is not set",
                f"cache {target}",
            ]
            if not f.url:
                what = (
                    "derived data that ships with the project's data mirror"
                    if entry.derived
                    else "not public"
                )
                raise _not_available(
                    f"{label} has no public URL ({what}{'; ' + entry.note if entry.note else ''}).\n"
                    f"Tried: {'; '.join(tried)}.\n{_mirror_hint(rel)}"
                )
            self._download(label, f.url, target, f.sha256, tried, rel, progress)
        return target_dir

    # -- opening ----------------------------------------------------------------------------------
    def open(self, name: str, **kwargs: Any) -> Any:
        """The natural object for ``name``: pandas for tables, xarray for rasters/arrays, geopandas for
        vectors, ObsPy for waveforms, a workflow reader's result for workflow formats.

        Keyword arguments override the entry's ``read_kwargs`` (or ``params`` for synthetic entries).
        """
        entry = self.get(name)
        if entry.kind == "synthetic":
            return _call_generator(entry, kwargs)
        if entry.kind == "earthengine":
            return _open_earthengine(entry, kwargs)
        if entry.kind == "stac":
            return _open_stac(entry, kwargs)
        path = self.fetch(name, progress=kwargs.pop("progress", True))
        reader = get_reader(entry.format)
        return reader(path, **{**dict(entry.read_kwargs), **kwargs})

    # -- describing -------------------------------------------------------------------------------
    def describe(self, name: str) -> str:
        """A human-readable summary of one entry, for ``terralab catalog show``."""
        e = self.get(name)
        lines = [f"{e.name}", f"  kind:        {e.kind}"]
        if e.format:
            lines.append(f"  format:      {e.format}")
        lines.append(f"  description: {e.description}")
        lines.append(f"  licence:     {e.license}")
        if e.citation:
            lines.append(f"  citation:    {e.citation}")
        for key in (
            "url",
            "path",
            "package_path",
            "sha256",
            "source",
            "license_file",
            "asset",
            "ee_type",
            "collection",
            "repo",
            "generator",
        ):
            val = getattr(e, key)
            if val:
                lines.append(f"  {key + ':':<12} {val}")
                if key == "license_file" and mirror_dir() is not None:
                    lines[-1] += f"  (in the mirror: {mirror_dir() / val})"
        if e.bands:
            lines.append(f"  bands:       {', '.join(e.bands)}")
        if e.params:
            lines.append(f"  params:      {dict(e.params)}")
        if e.read_kwargs:
            lines.append(f"  read_kwargs: {dict(e.read_kwargs)}")
        if e.derived:
            lines.append("  derived:     yes (no public URL; ships with the data mirror)")
        if e.files:
            lines.append(f"  files:       {len(e.files)}")
            lines += [f"    - {f.path}  {f.sha256 or '(unverified)'}" for f in e.files]
        if e.size_bytes:
            lines.append(f"  size:        {_human(e.size_bytes)}")
        if e.note:
            lines.append(f"  note:        {e.note}")
        if e.is_fetchable:
            where, path = self.locate(name)
            lines.append(f"  available:   {where} ({path})" if where else "  available:   download needed")
            if where is None and _mirror_problem():
                lines.append(f"  mirror:      {_mirror_problem()}")
        elif e.kind == "earthengine":
            lines.append("  available:   Earth Engine (needs credentials)")
        elif e.kind == "stac":
            lines.append("  available:   STAC API (needs network)")
        else:
            lines.append("  available:   generated on open()")
        lines.append(f"  defined in:  {e.origin}")
        return "\n".join(lines)

    def table(self) -> Any:
        """A ``pandas.DataFrame`` of all entries (name, kind, format, licence, size, offline availability)."""
        import pandas as pd

        rows = []
        for n in self.names():
            e = self._entries[n]
            size = e.size_bytes
            if size is None and e.files and all(f.size_bytes for f in e.files):
                size = sum(f.size_bytes for f in e.files)
            if e.is_fetchable:
                where, _ = self.locate(n)
            else:
                where = {"synthetic": "generated", "earthengine": "earthengine", "stac": "stac"}[e.kind]
            rows.append(
                {
                    "name": n,
                    "kind": e.kind,
                    "format": e.format or "",
                    "license": e.license,
                    "size_mb": round(size / 1e6, 3) if size else None,
                    "offline": where in ("package", "mirror", "cache", "generated"),
                    "location": where or "remote",
                }
            )
        return pd.DataFrame(
            rows, columns=["name", "kind", "format", "license", "size_mb", "offline", "location"]
        )


def _human(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)  # pragma: no cover


def _copy_atomic(src: Path, dst: Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def _call_generator(entry: Entry, kwargs: Mapping[str, Any]) -> Any:
    module_name, _, func_name = entry.generator.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{entry.name}: generator module {module_name!r} cannot be imported: {exc}"
        ) from exc
    func = getattr(module, func_name, None)
    if not callable(func):
        raise CatalogError(
            f"{entry.name}: {module_name} has no function {func_name!r} (generator {entry.generator})"
        )
    return func(**{**dict(entry.params), **dict(kwargs)})


_EE_HOWTO = (
    "Earth Engine needs credentials. Either set EE_SERVICE_ACCOUNT and EE_PRIVATE_KEY_FILE (a service-account "
    "JSON key) and optionally EE_PROJECT, or run `earthengine authenticate` once; install the client with "
    "`pip install -e '.[ee]'`. Then build requests with terralab.earthengine (or the workflow's request builders)."
)


def _ee_credentials_found() -> bool:
    if os.environ.get("EE_SERVICE_ACCOUNT") and os.environ.get("EE_PRIVATE_KEY_FILE"):
        return True
    if os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
        return True
    default = Path(
        os.environ.get("EARTHENGINE_CREDENTIALS", "~/.config/earthengine/credentials")
    ).expanduser()
    return default.is_file()


def _open_earthengine(entry: Entry, kwargs: Mapping[str, Any]) -> Any:
    """Hand an Earth Engine entry to terralab.earthengine, or return the bare ee object."""
    if not _ee_credentials_found():
        raise CredentialsError(f"{entry.name} ({entry.asset}) is an Earth Engine asset. {_EE_HOWTO}")
    try:
        ee_mod = importlib.import_module("terralab.earthengine")
    except ImportError:
        ee_mod = None
    handoff = getattr(ee_mod, "open_catalog_entry", None)
    if callable(handoff):
        return handoff(entry, **kwargs)
    try:
        import ee
    except ImportError as exc:
        raise MissingDependencyError(
            f"{entry.name} needs the Earth Engine client: pip install -e '.[ee]' ({exc})"
        ) from exc
    try:
        if os.environ.get("EE_SERVICE_ACCOUNT") and os.environ.get("EE_PRIVATE_KEY_FILE"):
            creds = ee.ServiceAccountCredentials(
                os.environ["EE_SERVICE_ACCOUNT"], os.environ["EE_PRIVATE_KEY_FILE"]
            )
            ee.Initialize(creds, project=os.environ.get("EE_PROJECT"))
        else:
            ee.Initialize(project=os.environ.get("EE_PROJECT"))
    except Exception as exc:
        raise CredentialsError(
            f"{entry.name}: Earth Engine refused to initialise ({exc}). {_EE_HOWTO}"
        ) from exc
    obj = (
        ee.Image(entry.asset) if (entry.ee_type or "").lower() == "image" else ee.ImageCollection(entry.asset)
    )
    bands = kwargs.get("bands", entry.bands)
    return obj.select(list(bands)) if bands else obj


def _open_stac(entry: Entry, kwargs: Mapping[str, Any]) -> Any:
    """The STAC collection (no kwargs) or the items of a search (``bbox``, ``datetime``, ``query``, ...)."""
    try:
        from pystac_client import Client
    except ImportError as exc:
        raise MissingDependencyError(
            f"{entry.name} is a STAC collection; searching it needs pystac-client: pip install -e '.[cloud]'"
        ) from exc

    def attempt() -> Any:
        client = Client.open(entry.url)
        if not kwargs:
            return client.get_collection(entry.collection)
        return client.search(collections=[entry.collection], **kwargs).item_collection()

    try:
        return _retry(attempt, f"searching STAC API {entry.url} for {entry.name}")
    except _RetriesExhausted as failed:
        exc = failed.error
        raise DataNotAvailableError(
            f"{entry.name}: STAC API {entry.url} could not be reached or searched{failed.tries} "
            f"({type(exc).__name__}: {exc}). Check the network, or search again later."
        ) from exc


# --------------------------------------------------------------------------------------------------
# Module-level API over the default catalog
# --------------------------------------------------------------------------------------------------
_DEFAULT: tuple[tuple, Catalog] | None = None


def _stamp(paths: Iterable[Path]) -> tuple:
    out = []
    for p in paths:
        try:
            st = p.stat()
            out.append((str(p), st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((str(p), None, None))
    return tuple(out)


def load_catalog(path: str | os.PathLike | None = None, *, fragments: bool = True) -> Catalog:
    """Read and validate a catalog file.

    Parameters
    ----------
    path : path-like, optional
        The YAML file; default :func:`default_catalog_path` (``$TERRALAB_CATALOG``, the repo root's
        ``data_catalog.yaml``, or the copy inside the package).
    fragments : bool
        Also merge the workflows' ``terralab/*/catalog_entries.yaml``; entries of the main file win.

    Raises
    ------
    CatalogError
        Malformed YAML, or an entry that lacks required keys.
    """
    main = Path(path) if path is not None else default_catalog_path()
    entries: dict[str, Entry] = {}
    if fragments:
        for frag in _fragment_paths():
            entries.update(_entries_from(frag, fragment=True))
    entries.update(_entries_from(main, fragment=False))
    return Catalog(entries, source=str(main))


def _default() -> Catalog:
    global _DEFAULT
    main = default_catalog_path()
    key = _stamp([main, *_fragment_paths()])
    if _DEFAULT is None or _DEFAULT[0] != key:
        _DEFAULT = (key, load_catalog(main))
    return _DEFAULT[1]


def names() -> list[str]:
    """Every dataset name of the default catalog, sorted."""
    return _default().names()


def get(name: str) -> Entry:
    """The :class:`Entry` called ``name``; unknown names raise UnknownDatasetError with suggestions."""
    return _default().get(name)


def fetch(name: str, *, progress: bool = True) -> Path:
    """Local path of a sha256-verified copy of dataset ``name`` (a directory for multi-file entries).

    Examples
    --------
    >>> from terralab import catalog
    >>> catalog.fetch("rice_landsat_rgb")       # doctest: +SKIP
    PosixPath('.../rice/landsat_rgb/RGB.byte.tif')
    """
    return _default().fetch(name, progress=progress)


def open(name: str, **kwargs: Any) -> Any:  # shadows the builtin on purpose: the catalog's verb, as in intake
    """Open dataset ``name`` as its natural object; keyword arguments override its ``read_kwargs``.

    Examples
    --------
    >>> from terralab import catalog
    >>> catalog.open("seismic_ridgecrest_catalog_scsn").shape   # doctest: +SKIP
    (703, 5)
    """
    return _default().open(name, **kwargs)


def locate(name: str) -> tuple[str | None, Path | None]:
    """Where dataset ``name`` is available offline: ('package'|'mirror'|'cache', path), or (None, None)."""
    return _default().locate(name)


def describe(name: str) -> str:
    """A human-readable summary of one entry (``terralab catalog show NAME``)."""
    return _default().describe(name)


def table() -> Any:
    """A ``pandas.DataFrame`` listing every entry (``terralab catalog list``)."""
    return _default().table()
