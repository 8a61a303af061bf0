"""The data catalog: every dataset the notebooks use, by name.

``data_catalog.yaml`` lists datasets under a top-level ``datasets:`` mapping. Each entry has a ``kind``
(``file``, ``package``, ``synthetic``, ``earthengine``, ``stac`` or ``hf``), a ``format`` that picks the
reader, a licence, a citation and a description; file entries add ``path`` (relative to the data mirror, the
same layout as ``shared/data``), ``url`` (the public source) and ``sha256``. See the header of
``data_catalog.yaml`` for the whole schema.

Which catalog file is read (first found wins):

1. the file named by the environment variable ``TERRALAB_CATALOG``;
2. ``data_catalog.yaml`` at the repository root beside ``lib/`` (editable installs, a checkout);
3. ``terralab/data/data_catalog.yaml`` inside the installed package (wheels ship a copy).

Entries written by the workflows in ``terralab/<workflow>/catalog_entries.yaml`` are merged in as well
(an entry of the main file wins over a fragment entry of the same name).

This module is the catalog's front: :class:`Catalog` and the functions over the default catalog. The work is
done by one module per job, whose public names are importable from here too:

* :mod:`terralab.catalog_schema` — entries and their validation;
* :mod:`terralab.catalog_fetch` — where a file is found (package data, mirror ``$TERRALAB_DATA_MIRROR``,
  cache ``$TERRALAB_CACHE``, download), sha256 checks and retried downloads;
* :mod:`terralab.catalog_readers` — a reader per ``format`` (and the ``terralab.readers`` entry points);
* :mod:`terralab.catalog_openers` — synthetic generators, Earth Engine assets and STAC searches.

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
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .catalog_fetch import (
    DOWNLOAD_ATTEMPTS,
    PACKAGE_DATA,
    RETRY_BACKOFF_S,
    UnverifiedDataWarning,
    cache_dir,
    fetch_entry,
    locate_entry,
    mirror_dir,
    mirror_problem,
)
from .catalog_openers import call_generator, open_earthengine, open_stac
from .catalog_readers import get_reader, register_reader
from .catalog_schema import Entry, FileSpec, entries_from
from .errors import CatalogError, UnknownDatasetError

__all__ = [
    "DOWNLOAD_ATTEMPTS",
    "RETRY_BACKOFF_S",
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
CATALOG_FILENAME = "data_catalog.yaml"
FRAGMENT_FILENAME = "catalog_entries.yaml"
ENV_CATALOG = "TERRALAB_CATALOG"


def default_catalog_path() -> Path:
    """Path of the catalog file used by default.

    ``$TERRALAB_CATALOG``, else the repository root's ``data_catalog.yaml``, else the package's copy.
    """
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

    # -- locating and fetching (terralab.catalog_fetch) ----------------------------------------------
    def locate(self, name: str) -> tuple[str | None, Path | None]:
        """Where a file entry is available without downloading: ('package'|'mirror'|'cache', path) or
        (None, None). Existence only; :meth:`fetch` verifies the hash."""
        return locate_entry(self.get(name))

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
        return fetch_entry(self.get(name), progress=progress)

    # -- opening ----------------------------------------------------------------------------------
    def open(self, name: str, **kwargs: Any) -> Any:
        """The natural object for ``name``: pandas for tables, xarray for rasters/arrays, geopandas for
        vectors, ObsPy for waveforms, a workflow reader's result for workflow formats.

        Keyword arguments override the entry's ``read_kwargs`` (or ``params`` for synthetic entries).
        """
        entry = self.get(name)
        if entry.kind == "synthetic":
            return call_generator(entry, kwargs)
        if entry.kind == "earthengine":
            return open_earthengine(entry, kwargs)
        if entry.kind == "stac":
            return open_stac(entry, kwargs)
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
            if where is None and mirror_problem():
                lines.append(f"  mirror:      {mirror_problem()}")
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
            entries.update(entries_from(frag, fragment=True))
    entries.update(entries_from(main, fragment=False))
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
