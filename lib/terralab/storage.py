"""Output locations: a local folder or any fsspec URL (``s3://``, ``gs://``, ``memory://`` …), written so that
nothing half-written is ever visible.

``terralab run``, ``terralab sweep`` and ``terralab report`` take either. A URL is opened with fsspec; its
credentials come from wherever its driver looks, never from terralab: for ``s3://`` (s3fs) the standard AWS
environment variables ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` (``AWS_SESSION_TOKEN``), or
``AWS_PROFILE``, with ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``) for an S3-compatible store such as
MinIO, Ceph or moto; for ``gs://`` (gcsfs) ``GOOGLE_APPLICATION_CREDENTIALS``. Nothing terralab writes
records them: the output URL is stored as given.

Files reach an object store under a hidden temporary name first and are then moved to their final key, so a
reader sees either the whole new file or the old one.

>>> from terralab import storage
>>> fs, root, url = storage.open_output("s3://my-bucket/runs")        # doctest: +SKIP
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .files import FILE_MODE


def is_url(location: str | os.PathLike) -> bool:
    """True for an fsspec URL other than ``file://`` (those are local folders)."""
    text = os.fspath(location)
    return "://" in text and not text.startswith("file://")


def local_path(location: str | os.PathLike) -> Path:
    """A local folder given as a path or a ``file://`` URL, as an absolute ``Path``."""
    text = os.fspath(location).removeprefix("file://")
    return Path(text).expanduser().resolve()


def filesystem(location: str | os.PathLike):
    """``(fs, root)`` of a folder or URL, raising MissingDependencyError/OutputLocationError as users need.

    ``root`` has no trailing slash.
    """
    import fsspec

    from .errors import MissingDependencyError, OutputLocationError

    text = os.fspath(location)
    if "://" not in text:
        text = str(Path(text).expanduser().resolve())
    protocol = text.split("://", 1)[0] if "://" in text else "file"
    try:
        fs, root = fsspec.core.url_to_fs(text)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{text} needs the fsspec driver for {protocol}:// ({exc}); "
            "install the cloud extra: pip install -e '.[cloud]' (s3fs, gcsfs)"
        ) from exc
    except ValueError as exc:
        raise OutputLocationError(
            f"cannot use output location {text}: {exc}; give a folder or an fsspec URL"
        ) from exc
    return fs, (root.rstrip("/") or "/")


def open_output(output: str | os.PathLike, *, what: str = "output") -> tuple[Any, str, str]:
    """``(fs, root, text)`` of a folder or URL that was just shown to be writable.

    A small probe file is written and removed, so a missing bucket, a read-only folder or missing
    credentials are reported before any work starts.

    Raises
    ------
    MissingDependencyError
        The URL's fsspec driver (s3fs, gcsfs) is not installed.
    OutputLocationError
        The location cannot be parsed or written.
    """
    from .errors import OutputLocationError

    text = os.fspath(output)
    if "://" not in text:
        text = str(Path(text).expanduser().resolve())
    fs, root = filesystem(text)
    probe = f"{root}/.terralab-write-probe-{uuid.uuid4().hex[:8]}"
    try:
        if is_local(fs):
            fs.makedirs(root, exist_ok=True)
        # On an object store "folders" need no making, and making one would create a missing bucket
        # (s3fs and gcsfs do): a typo in the bucket name must fail here instead.
        fs.pipe_file(probe, b"ok")
        fs.rm_file(probe)
    except Exception as exc:  # every backend has its own errors for "cannot write here"
        raise OutputLocationError(
            f"cannot write to the {what} {text} ({type(exc).__name__}: {exc}); choose a folder or bucket "
            "you can write with -o, or check its credentials"
        ) from exc
    return fs, root, text


def is_local(fs) -> bool:
    """True when ``fs`` is the local file system."""
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(fs, LocalFileSystem)


@contextmanager
def atomic_fs_path(fs, path: str) -> Iterator[str]:
    """:func:`terralab.files.atomic_path` on an fsspec filesystem ``fs``.

    Yields a temporary name beside ``path``; when the block finishes it is renamed to ``path`` (moved, on
    object stores), on any error it is removed.
    """
    parent, _, name = path.rpartition("/")
    hidden = f".{name}.{uuid.uuid4().hex[:8]}.tmp"
    tmp = f"{parent}/{hidden}" if parent else hidden
    try:
        yield tmp
        if is_local(fs):
            os.chmod(tmp, FILE_MODE)
            os.replace(tmp, path)
        else:
            fs.mv(tmp, path)
    except BaseException:
        if fs.exists(tmp):
            fs.rm(tmp)
        raise


def put_together(fs, files: list[tuple[str | os.PathLike, str]]) -> None:
    """Copy local files to their targets on ``fs`` so that they change together.

    Every file is uploaded under a hidden temporary name first; only then are they moved to their final
    names, in the order given (put the file whose presence means "complete" last). If an upload fails, the
    temporaries are removed and every earlier file at the targets is left as it was.
    """
    temps: list[tuple[str, str]] = []
    try:
        for local, target in files:
            parent, _, name = target.rpartition("/")
            tmp = f"{parent}/.{name}.{uuid.uuid4().hex[:8]}.tmp"
            temps.append((tmp, target))
            fs.put_file(os.fspath(local), tmp)
        for tmp, target in temps:
            if is_local(fs):
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


def write_text(url: str, text: str) -> str:
    """Write ``text`` (UTF-8) to a local path or fsspec URL without ever leaving half a file at ``url``."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    parent = path.rpartition("/")[0]
    if parent and is_local(fs):
        fs.makedirs(parent, exist_ok=True)
    with atomic_fs_path(fs, path) as tmp:
        fs.pipe_file(tmp, text.encode("utf-8"))
    return url


def join(location: str, name: str) -> str:
    """``location/name`` for a folder or URL (no doubled slash)."""
    return f"{location.rstrip('/')}/{name}"
