"""Writing files so that nothing half-written is ever left behind: the one atomic writer of terralab.

Every writer in terralab goes through :func:`atomic_path` (one file) or :func:`atomic_paths` (several files
that change together). Both take a local path, a ``file://`` URL, or an fsspec URL (``s3://``, ``gs://``,
``memory://`` …), or a path on an fsspec file system given as ``fs=``. The block writes to a **local**
temporary file; only a block that finishes puts it in place (a rename on a local disk; on an object store an
upload under a hidden name, then a move), so a reader sees either the whole new file or the old one. An
error, or Ctrl-C, removes the temporaries and leaves every old file as it was.

>>> import tempfile
>>> from pathlib import Path
>>> from terralab.files import atomic_path, write_text_atomic
>>> folder = Path(tempfile.mkdtemp())
>>> with atomic_path(folder / "table.csv") as tmp:      # tmp: a hidden sibling, same suffix
...     _ = tmp.write_text("a,b\\n1,2\\n")
>>> (folder / "table.csv").read_text()
'a,b\\n1,2\\n'
>>> write_text_atomic("memory://terralab-doc/note.txt", "hello")   # fsspec URLs work the same way
'memory://terralab-doc/note.txt'
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "FILE_MODE",
    "atomic_path",
    "atomic_paths",
    "put_together",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
]

FILE_MODE = 0o644


def _is_remote(target: str | os.PathLike, fs: Any) -> bool:
    """True when ``target`` lives on a non-local fsspec file system."""
    if fs is not None:
        return not _fs_is_local(fs)
    text = os.fspath(target)
    return "://" in text and not text.startswith("file://")


def _fs_is_local(fs: Any) -> bool:
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(fs, LocalFileSystem)


def _local(target: str | os.PathLike) -> Path:
    text = os.fspath(target)
    return Path(text.removeprefix("file://")) if text.startswith("file://") else Path(text)


def _local_temp(target: Path) -> Path:
    """A hidden temporary sibling of ``target`` that keeps its suffix (writers choose formats by it)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=f".tmp{target.suffix}")
    os.close(fd)
    return Path(tmp)


def _remote_targets(targets: Sequence[str | os.PathLike], fs: Any) -> tuple[Any, list[str]]:
    """``(fs, paths on fs)`` of fsspec URLs, or of paths on the given ``fs``."""
    if fs is not None:
        return fs, [os.fspath(t) for t in targets]
    import fsspec

    resolved = [fsspec.core.url_to_fs(os.fspath(t)) for t in targets]
    return resolved[0][0], [path for _, path in resolved]


def _staging_names(paths: Sequence[str]) -> list[str]:
    """Local file names for remote targets: the target's name, so its suffix is kept."""
    names = [p.rstrip("/").rpartition("/")[2] or "file" for p in paths]
    return [f"{i}-{name}" for i, name in enumerate(names)]


@contextmanager
def atomic_path(target: str | os.PathLike, *, fs: Any = None, mode: int = FILE_MODE) -> Iterator[Path]:
    """Yield a local temporary path for ``target``; on success it becomes ``target``, on any error it goes.

    Parameters
    ----------
    target : path or URL
        A local path, a ``file://`` URL, an fsspec URL, or a path on ``fs``.
    fs : fsspec.AbstractFileSystem, optional
        The file system ``target`` is a path on (a sweep's output, say); default: from ``target``.
    mode : int
        Permissions of a finished local file.

    The temporary keeps ``target``'s suffix (``.tif``, ``.h5`` …) so writers that pick a format by
    extension still work. For a local target it is a hidden sibling, renamed into place; parent folders
    are created. For a remote target it is a local scratch file, uploaded when the block ends.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> target = Path(tempfile.mkdtemp()) / "map.tif"
    >>> with atomic_path(target) as tmp:
    ...     (tmp.suffix, tmp.name.startswith("."))
    ...     _ = tmp.write_bytes(b"tif")
    ('.tif', True)
    >>> target.read_bytes()
    b'tif'
    """
    with atomic_paths(target, fs=fs, mode=mode) as (tmp,):
        yield tmp


@contextmanager
def atomic_paths(*targets: str | os.PathLike, fs: Any = None, mode: int = FILE_MODE) -> Iterator[list[Path]]:
    """:func:`atomic_path` for several files that must change together.

    Yields one local temporary per target. Only when the block finishes are they put in place, one after
    another in the order given (put the file whose presence means "complete" last); until then every old
    file stays as it was. On any error, or an interrupt, all temporaries are removed and no old file is
    touched. All targets are local, or all on one fsspec file system.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> out = Path(tempfile.mkdtemp())
    >>> with atomic_paths(out / "run.ipynb", out / "run.metrics.json") as (nb_tmp, metrics_tmp):
    ...     _ = nb_tmp.write_text("{}")
    ...     _ = metrics_tmp.write_text("{}")
    >>> sorted(p.name for p in out.iterdir())
    ['run.ipynb', 'run.metrics.json']
    """
    if not targets:
        raise ValueError("atomic_paths needs at least one target")
    if any(_is_remote(t, fs) for t in targets):
        yield from _remote_atomic_paths(targets, fs)
        return
    local = [_local(t) for t in targets]
    temps: list[Path] = []
    try:
        for target in local:
            temps.append(_local_temp(target))
        yield list(temps)
        for tmp in temps:
            os.chmod(tmp, mode)
        for tmp, target in zip(temps, local):
            os.replace(tmp, target)
    except BaseException:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
        raise


def _remote_atomic_paths(targets: Sequence[str | os.PathLike], fs: Any) -> Iterator[list[Path]]:
    fs, paths = _remote_targets(targets, fs)
    scratch = Path(tempfile.mkdtemp(prefix="terralab-write-"))
    try:
        temps = [scratch / name for name in _staging_names(paths)]
        for tmp in temps:
            tmp.touch()
        yield list(temps)
        put_together(fs, list(zip(temps, paths)))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def put_together(fs: Any, files: list[tuple[str | os.PathLike, str]]) -> None:
    """Copy finished local files to their targets on ``fs`` so that they change together.

    Every file goes to a hidden temporary name beside its target first; only then are they moved to their
    final names, in the order given (put the file whose presence means "complete" last). If a copy fails,
    the temporaries are removed and every earlier file at the targets is left as it was. On a local file
    system this is a copy and a rename.
    """
    local = _fs_is_local(fs)
    temps: list[tuple[str, str]] = []
    try:
        for source, target in files:
            parent, _, name = target.rpartition("/")
            tmp = f"{parent}/.{name}.{uuid.uuid4().hex[:8]}.tmp"
            temps.append((tmp, target))
            if local:
                fs.makedirs(parent or ".", exist_ok=True)
            fs.put_file(os.fspath(source), tmp)
        for tmp, target in temps:
            if local:
                os.chmod(tmp, FILE_MODE)
                os.replace(tmp, target)
            else:
                fs.mv(tmp, target)
    except BaseException:
        for tmp, _ in temps:
            try:
                if fs.exists(tmp):
                    fs.rm(tmp)
            except Exception:  # noqa: BLE001, S110 - cleaning up after a failure must not hide it
                pass
        raise


def write_text_atomic(target: str | os.PathLike, text: str, *, fs: Any = None) -> str | os.PathLike:
    """Write ``text`` (UTF-8) to ``target`` (a path or URL) via :func:`atomic_path`; returns ``target``."""
    with atomic_path(target, fs=fs) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return target


def write_bytes_atomic(target: str | os.PathLike, data: bytes, *, fs: Any = None) -> str | os.PathLike:
    """Write ``data`` to ``target`` (a path or URL) through :func:`atomic_path`; returns ``target``."""
    with atomic_path(target, fs=fs) as tmp:
        tmp.write_bytes(data)
    return target


def write_json_atomic(target: str | os.PathLike, data: Any, *, fs: Any = None, **dumps_kwargs: Any) -> None:
    """Write ``data`` as JSON (indent 2 unless given) to ``target`` through :func:`atomic_path`.

    The JSON text is built before anything is written, so a value that cannot be serialised leaves the old
    file as it was.
    """
    dumps_kwargs.setdefault("indent", 2)
    write_text_atomic(target, json.dumps(data, **dumps_kwargs), fs=fs)
