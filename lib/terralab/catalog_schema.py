"""The catalog's schema: what one entry of ``data_catalog.yaml`` holds, and its validation.

:func:`entries_from` reads a catalog file (or a workflow's ``catalog_entries.yaml`` fragment) into validated
:class:`Entry` objects; every problem raises :class:`~terralab.errors.CatalogError` naming the file, the entry
and the key. The header of ``data_catalog.yaml`` describes the schema for people.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import CatalogError

__all__ = ["FILE_KINDS", "KINDS", "UNVERIFIED_KINDS", "Entry", "FileSpec", "entries_from", "parse_entry"]

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


def _check_name_and_shape(name: Any, raw: Any, origin: str, where: str) -> None:
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "_-." for c in name):
        raise CatalogError(
            f"{origin}: dataset name {name!r} must be a non-empty string of letters, digits, _ - ."
        )
    if not isinstance(raw, dict):
        raise CatalogError(f"{where} must be a mapping of keys (kind, format, ...), got {type(raw).__name__}")


def _core_fields(raw: dict, kind: str, where: str) -> dict[str, Any]:
    """What every entry has: description, licence, format, where the data lives, how to read it."""
    return {
        "description": _as_str(raw.get("description"), "description", where, required=True),
        "license": _as_str(raw.get("license"), "license", where, required=kind != "synthetic")
        or "see generator",
        "format": _as_str(raw.get("format"), "format", where, required=kind in FILE_KINDS),
        "derived": bool(raw.get("derived", False)),
        "note": _as_str(raw.get("note"), "note", where),
        "url": _as_str(raw.get("url"), "url", where),
        "path": _rel_path(raw.get("path"), "path", where),
        "package_path": _rel_path(raw.get("package_path"), "package_path", where),
        "read_kwargs": _mapping(raw.get("read_kwargs"), "read_kwargs", where),
        "params": _mapping(raw.get("params"), "params", where),
    }


def _parse_files(raw_files: Any, kind: str, where: str) -> tuple[FileSpec, ...]:
    """The ``files:`` list of a multi-file entry (empty for a single-file entry)."""
    if raw_files is None:
        return ()
    if not isinstance(raw_files, list) or not raw_files:
        raise CatalogError(f"{where}: 'files' must be a non-empty list of {{path, url, sha256}}")
    files: list[FileSpec] = []
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
        files.append(FileSpec(fpath, _as_str(spec.get("url"), "url", fwhere), fsha, spec.get("size_bytes")))
    return tuple(files)


def _entry_sha(raw: dict, kind: str, where: str) -> str | None:
    if "sha256" in raw and raw["sha256"] is None and kind not in UNVERIFIED_KINDS:
        raise CatalogError(f"{where}: sha256 may be null only for kinds {', '.join(UNVERIFIED_KINDS)}")
    return _check_sha(raw.get("sha256"), where)


def _check_file_sources(
    kind: str, where: str, fields: Mapping[str, Any], files: tuple[FileSpec, ...], sha: str | None
) -> None:
    """Check that a file entry says where its one file comes from and how to verify it.

    A package entry must say where it ships (``package_path``).
    """
    if kind in FILE_KINDS and not files:
        if fields["path"] is None and fields["package_path"] is None and fields["url"] is None:
            raise CatalogError(f"{where}: a {kind} entry needs at least one of path, package_path, url")
        if sha is None and kind not in UNVERIFIED_KINDS:
            raise CatalogError(f"{where}: required key 'sha256' is missing (64 hex digits)")
        if kind == "file" and fields["url"] is None and not fields["derived"] and fields["note"] is None:
            raise CatalogError(
                f"{where}: give its public 'url', or 'derived: true' when none exists, or a 'note' "
                "saying why not"
            )
    if kind == "package" and fields["package_path"] is None:
        raise CatalogError(f"{where}: a package entry needs 'package_path' (relative to terralab/data/)")


def _kind_fields(
    raw: dict, kind: str, where: str, url: str | None, files: tuple[FileSpec, ...]
) -> dict[str, Any]:
    """The keys of the kinds that are not plain files (generator, asset, collection), bands and size."""
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
    return {
        "generator": generator,
        "asset": asset,
        "collection": collection,
        "bands": tuple(str(b) for b in bands),
        "size_bytes": size,
    }


def _reference_fields(raw: dict, where: str) -> dict[str, Any]:
    """Free-text references: citation, licence file, source, Earth Engine type, repository."""
    return {
        "citation": _as_str(raw.get("citation"), "citation", where),
        "license_file": _rel_path(raw.get("license_file"), "license_file", where),
        "source": _as_str(raw.get("source"), "source", where),
        "ee_type": _as_str(raw.get("ee_type"), "ee_type", where),
        "repo": _as_str(raw.get("repo"), "repo", where),
    }


def parse_entry(name: Any, raw: Any, origin: str) -> Entry:
    """Validate one raw YAML entry; raise CatalogError naming the entry and file on any problem.

    Parameters
    ----------
    name : str
        The dataset name (the entry's key under ``datasets:``).
    raw : dict
        The entry as YAML gives it.
    origin : str
        The file it came from (shown in messages and kept as ``Entry.origin``).

    Examples
    --------
    >>> fields = {"kind": "synthetic", "generator": "fractions:Fraction", "description": "x"}
    >>> e = parse_entry("t", fields, "-")
    >>> e.kind, e.license
    ('synthetic', 'see generator')
    """
    where = f"{origin}: entry {name!r}"
    _check_name_and_shape(name, raw, origin, where)
    kind = _as_str(raw.get("kind"), "kind", where, required=True)
    if kind not in KINDS:
        raise CatalogError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
    fields = _core_fields(raw, kind, where)
    files = _parse_files(raw.get("files"), kind, where)
    if files and fields["path"] is None and fields["package_path"] is None:
        raise CatalogError(f"{where}: a multi-file entry needs 'path' (or 'package_path'): the directory")
    sha = _entry_sha(raw, kind, where)
    _check_file_sources(kind, where, fields, files, sha)
    fields.update(_kind_fields(raw, kind, where, fields["url"], files))
    fields.update(_reference_fields(raw, where))
    extra = {k: v for k, v in raw.items() if k not in _KNOWN_KEYS}
    return Entry(
        name=name,
        kind=kind,
        sha256=sha,
        files=files,
        origin=origin,
        extra=types.MappingProxyType(extra),
        **fields,
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


def entries_from(path: Path, *, fragment: bool) -> dict[str, Entry]:
    """The validated entries of a catalog file; a ``fragment`` may list them without ``datasets:``."""
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
    return {name: parse_entry(name, spec, str(path)) for name, spec in raw.items()}
