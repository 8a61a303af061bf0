"""Where a catalog file entry is found, and how it is fetched and verified.

Where :func:`fetch_entry` looks for a file, in order: the package's embedded samples
(``terralab/data/<package_path>``), the offline mirror ``$TERRALAB_DATA_MIRROR/<path>``, the cache
``$TERRALAB_CACHE/<path>`` (default: the user cache directory, e.g. ``~/.cache/terralab``), and finally a
download of ``url`` with pooch into the cache. Every hit is checked against the catalog's sha256 (once per
process per file version). A download that fails for a passing reason (no connection, a timeout, HTTP 5xx or
429) is tried again after a back-off (:data:`DOWNLOAD_ATTEMPTS` tries in all, waiting :data:`RETRY_BACKOFF_S`,
then twice that, ...) before :class:`~terralab.errors.DataNotAvailableError` says what was tried.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .catalog_schema import Entry
from .errors import CatalogError, ChecksumError, DataNotAvailableError, MissingDependencyError
from .files import atomic_path

__all__ = [
    "DOWNLOAD_ATTEMPTS",
    "ENV_CACHE",
    "ENV_MIRROR",
    "PACKAGE_DATA",
    "RETRY_BACKOFF_S",
    "RetriesExhausted",
    "UnverifiedDataWarning",
    "cache_dir",
    "fetch_entry",
    "locate_entry",
    "mirror_dir",
    "mirror_problem",
    "retry",
]

PACKAGE_DATA = Path(__file__).resolve().parent / "data"
ENV_MIRROR = "TERRALAB_DATA_MIRROR"
ENV_CACHE = "TERRALAB_CACHE"

#: Tries per download or STAC request (the first one included) before giving up, and the first back-off
#: delay in seconds; each further wait doubles it (1 s, 2 s: a network blip of a few seconds is ridden out,
#: a machine without network gets its clear error within ~3 s per file).
DOWNLOAD_ATTEMPTS = 3
RETRY_BACKOFF_S = 1.0
_sleep = time.sleep  # the tests replace it to count the waits without waiting
_log = logging.getLogger("terralab.catalog")  # one logger for all of the catalog's modules


class UnverifiedDataWarning(UserWarning):
    """A file was used without a sha256 check because the catalog records none (kind hf)."""


def mirror_dir() -> Path | None:
    """The offline mirror directory (``$TERRALAB_DATA_MIRROR``), or None when unset."""
    env = os.environ.get(ENV_MIRROR, "").strip()
    return Path(env).expanduser() if env else None


def mirror_problem() -> str | None:
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
            stacklevel=5,  # the caller of Catalog.fetch (through fetch_entry and _fetch_one)
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


def _mirror_hint(rel: str | None) -> str:
    return (
        f"To work offline, point {ENV_MIRROR} at a copy of the project's data folder "
        f"(the layout of shared/data, e.g. `export {ENV_MIRROR}=../shared/data`)"
        + (f" that holds {rel}." if rel else ".")
    )


def _not_available(text: str) -> DataNotAvailableError:
    """DataNotAvailableError with ``text``, led by the cause when the mirror folder itself is missing."""
    problem = mirror_problem()
    return DataNotAvailableError(f"{problem}\n{text}" if problem else text)


def _mirror_tried(path: Path) -> str:
    mirror = mirror_dir()
    if mirror is not None and not mirror.is_dir():
        return f"mirror {path} (the mirror folder {mirror} does not exist)"
    return f"mirror {path}"


class RetriesExhausted(Exception):
    """The last error of :func:`retry` and how many tries were made."""

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


def retry(
    call: Callable[[], Any], what: str, *, attempts: int | None = None, backoff_s: float | None = None
) -> Any:
    """``call()``, tried again after a transient error (:func:`_is_transient`) with a doubling back-off.

    Raises :class:`RetriesExhausted` holding the last error once the tries are used up, or at once for an
    error that is not transient.

    >>> calls = []
    >>> def flaky():
    ...     calls.append(1)
    ...     if len(calls) < 3:
    ...         raise TimeoutError("the server did not answer")
    ...     return "data"
    >>> retry(flaky, "example download", attempts=3, backoff_s=0), len(calls)
    ('data', 3)
    """
    attempts = max(1, int(DOWNLOAD_ATTEMPTS if attempts is None else attempts))
    delay = float(RETRY_BACKOFF_S if backoff_s is None else backoff_s)
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as exc:  # sorted into transient or not just below
            if attempt == attempts or not _is_transient(exc):
                raise RetriesExhausted(exc, attempt) from exc
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


# --------------------------------------------------------------------------------------------------
# Locating and fetching
# --------------------------------------------------------------------------------------------------
def _cache_rel(entry: Entry) -> str:
    if entry.path:
        return entry.path
    if entry.package_path:
        return f"package/{entry.package_path}"
    base = entry.url.rstrip("/").rsplit("/", 1)[-1] if entry.url else entry.name
    return f"downloads/{entry.name}/{base}"


def locate_entry(entry: Entry) -> tuple[str | None, Path | None]:
    """Where a file entry is available without downloading: ('package'|'mirror'|'cache', path) or
    (None, None). Existence only; :func:`fetch_entry` verifies the hash."""
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
    cached = cache_dir() / _cache_rel(entry)
    if complete(cached):
        return "cache", cached
    return None, None


def fetch_entry(entry: Entry, *, progress: bool = True) -> Path:
    """Local path of a verified copy of ``entry`` (the directory for a multi-file entry).

    Looks in the package data, the mirror, the cache, then downloads ``url`` with pooch.

    Parameters
    ----------
    entry : Entry
        A catalog entry of a file kind (``file``, ``package``, ``hf``).
    progress : bool
        Show a download progress bar.
    """
    if not entry.is_fetchable:
        raise CatalogError(
            f"{entry.name} is a {entry.kind!r} entry: there is no file to fetch. "
            f"Use terralab.catalog.open({entry.name!r})."
        )
    if entry.files:
        return _fetch_multi(entry, progress)
    return _fetch_one(entry, progress)


def _fetch_one(entry: Entry, progress: bool) -> Path:
    label, rel, sha = entry.name, entry.path, entry.sha256
    tried: list[str] = []
    if entry.package_path:
        p = PACKAGE_DATA / entry.package_path
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
    target = cache_dir() / _cache_rel(entry)
    if target.is_file():
        _verify(target, sha, "cache", label)
        _log.debug("%s: cache %s", label, target)
        return target
    tried.append(f"cache {target}")
    if not entry.url:
        if entry.derived:
            why = (
                f"{label} has no public URL: it is derived data that ships with the project's data mirror "
                f"(and its embedded samples), not downloadable."
            )
        else:
            why = f"{label} has no verified public URL" + (f" ({entry.note})" if entry.note else "") + "."
        raise _not_available(f"{why}\nTried: {'; '.join(tried)}.\n{_mirror_hint(rel)}")
    return _download(label, entry.url, target, sha, tried, rel, progress)


def _download(
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
        out = retry(attempt, f"downloading {label} from {url}")
    except RetriesExhausted as failed:
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


def _fetch_multi(entry: Entry, progress: bool) -> Path:
    where, base = locate_entry(entry)
    if where in ("package", "mirror"):
        for f in entry.files:
            _verify(base / f.path, f.sha256, where, f"{entry.name} ({f.path})")
        return base
    target_dir = cache_dir() / _cache_rel(entry)
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
            what = "derived data that ships with the project's data mirror" if entry.derived else "not public"
            raise _not_available(
                f"{label} has no public URL ({what}{'; ' + entry.note if entry.note else ''}).\n"
                f"Tried: {'; '.join(tried)}.\n{_mirror_hint(rel)}"
            )
        _download(label, f.url, target, f.sha256, tried, rel, progress)
    return target_dir


def _copy_atomic(src: Path, dst: Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
