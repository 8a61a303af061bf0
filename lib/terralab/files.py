"""Writing files so that nothing half-written is ever left behind.

Every writer in terralab goes through :func:`atomic_path`: it hands out a temporary sibling of the target,
and only a block that finishes renames it into place; an error removes it.

>>> from terralab.files import atomic_path
>>> with atomic_path("out/table.csv") as tmp:          # doctest: +SKIP
...     frame.to_csv(tmp)
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FILE_MODE = 0o644


@contextmanager
def atomic_path(path: str | os.PathLike, *, mode: int = FILE_MODE) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on any error it is removed.

    The temporary name keeps ``path``'s suffix (``.tif``, ``.h5`` …) so writers that pick a format by
    extension still work. Parent folders are created. The finished file gets permissions ``mode``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, mode)
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_path`."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_path`."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


@contextmanager
def atomic_paths(*paths: str | os.PathLike, mode: int = FILE_MODE) -> Iterator[list[Path]]:
    """:func:`atomic_path` for several files that must change together.

    Yields one temporary sibling per path. Only when the block finishes are they renamed into place, one
    after another in the order given (put the file whose presence means "complete" last); until then every
    old file stays as it was. On any error, or an interrupt, all temporaries are removed and no old file
    is touched.

    >>> with atomic_paths("out/run.ipynb", "out/run.html") as (nb_tmp, html_tmp):    # doctest: +SKIP
    ...     nb_tmp.write_text(nb_text); html_tmp.write_text(html_text)
    """
    targets = [Path(p) for p in paths]
    temps: list[Path] = []
    try:
        for target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(
                dir=target.parent, prefix=f".{target.name}.", suffix=f".tmp{target.suffix}"
            )
            os.close(fd)
            temps.append(Path(tmp))
        yield list(temps)
        for tmp in temps:
            os.chmod(tmp, mode)
        for tmp, target in zip(temps, targets):
            os.replace(tmp, target)
    except BaseException:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
        raise
