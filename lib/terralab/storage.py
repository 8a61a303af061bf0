"""Output locations: a local folder or any fsspec URL (``s3://``, ``gs://``, ``memory://`` …), written so that
nothing half-written is ever visible.

``terralab run``, ``terralab sweep`` and ``terralab report`` take either. A URL is opened with fsspec; its
credentials come from wherever its driver looks, never from terralab: for ``s3://`` (s3fs) the standard AWS
environment variables ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` (``AWS_SESSION_TOKEN``), or
``AWS_PROFILE``, with ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``) for an S3-compatible store such as
MinIO, Ceph or moto; for ``gs://`` (gcsfs) ``GOOGLE_APPLICATION_CREDENTIALS``. Nothing terralab writes
records them: the output URL is stored as given.

Files are written there with :mod:`terralab.files` (``atomic_path``, ``put_together``): they reach an object
store under a hidden temporary name first and are then moved to their final key, so a reader sees either the
whole new file or the old one.

>>> from terralab import storage
>>> storage.is_url("s3://my-bucket/runs"), storage.is_url("reports")
(True, False)
>>> storage.join("s3://my-bucket/runs/", "index.html")
's3://my-bucket/runs/index.html'
>>> # a bucket needs credentials, so this line is not run by the doctests:
>>> fs, root, url = storage.open_output("s3://my-bucket/runs")        # doctest: +SKIP
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem


def is_url(location: str | os.PathLike) -> bool:
    """True for an fsspec URL other than ``file://`` (those are local folders)."""
    text = os.fspath(location)
    return "://" in text and not text.startswith("file://")


def local_path(location: str | os.PathLike) -> Path:
    """A local folder given as a path or a ``file://`` URL, as an absolute ``Path``."""
    text = os.fspath(location).removeprefix("file://")
    return Path(text).expanduser().resolve()


def filesystem(location: str | os.PathLike) -> tuple[AbstractFileSystem, str]:
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


def is_local(fs: AbstractFileSystem) -> bool:
    """True when ``fs`` is the local file system."""
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(fs, LocalFileSystem)


def join(location: str, name: str) -> str:
    """``location/name`` for a folder or URL (no doubled slash)."""
    return f"{location.rstrip('/')}/{name}"
