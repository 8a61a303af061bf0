"""Catalog verification cost: sha256 of every catalogued file available offline, first time and later.

``terralab.catalog.fetch`` checks every file it hands out against the catalog's sha256. The first check in a
process reads and hashes the file; later checks of the same file version (same path, mtime and size) reuse
that hash. Prints, all measured in this process:

* the time to fetch (and so verify) every catalogued file found offline (the package's embedded samples and
  the data mirror; entries without a sha256 are left out) the first time, and the ratio of that
  to hashing the same files with plain ``hashlib.sha256`` (the baseline; ~1.0 means the catalog adds nothing);
* the time for the same fetches later in the process, and the ratio later / first.

Times are the best of ``--repeat`` runs after one untimed read of every file (so the page cache is warm for
both sides). Uses ``$TERRALAB_DATA_MIRROR`` or ``../shared/data``; without either, the package's embedded
samples. Run it on an otherwise idle machine: ``python benchmarks/catalog_hashing.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _best_time(fn, repeat: int, before=None) -> float:
    best = float("inf")
    for _ in range(repeat):
        if before is not None:
            before()
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _plain_sha256(paths: list[Path]) -> None:
    for path in paths:
        h = hashlib.sha256()
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        h.hexdigest()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)

    if not os.environ.get("TERRALAB_DATA_MIRROR"):
        shared = ROOT.parent / "shared" / "data"
        if (shared / "SOURCES.md").exists():
            os.environ["TERRALAB_DATA_MIRROR"] = str(shared)

    from terralab import catalog, catalog_fetch

    cat = catalog.load_catalog()
    names, files, origin = [], [], {"mirror": 0, "package": 0}
    for name in cat.names():
        entry = cat.get(name)
        if not entry.is_fetchable:
            continue
        where, base = cat.locate(name)
        if where not in ("mirror", "package"):
            continue
        specs = [(base / f.path, f.sha256) for f in entry.files] if entry.files else [(base, entry.sha256)]
        if any(sha is None for _, sha in specs):
            continue  # hf entries without a hash are not verified, so not part of this measure
        names.append(name)
        files.extend(path for path, _ in specs)
        origin[where] += len(specs)
    if not names:
        print("no catalogued file found offline: set TERRALAB_DATA_MIRROR to the data folder")
        return 1
    where = os.environ.get("TERRALAB_DATA_MIRROR") or "the package's embedded samples"
    size = sum(p.stat().st_size for p in files)

    load = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
        "(figures are only meaningful on an idle machine)"
    )
    print(
        f"data: {len(files)} files of {len(names)} catalog entries, {size / 1e6:.1f} MB: {origin['mirror']} "
        f"from the mirror ({where}), {origin['package']} embedded in the package"
    )

    def fetch_all() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", catalog.UnverifiedDataWarning)
            for name in names:
                cat.fetch(name, progress=False)

    _plain_sha256(files)  # warm the page cache for both sides
    t_plain = _best_time(lambda: _plain_sha256(files), args.repeat)
    t_first = _best_time(fetch_all, args.repeat, before=catalog_fetch._HASHES.clear)
    fetch_all()
    t_later = _best_time(fetch_all, args.repeat)

    print(f"plain hashlib.sha256 of the same files: {t_plain * 1e3:.1f} ms")
    print(f"catalog fetch of every entry, first time in the process: {t_first * 1e3:.1f} ms")
    print(f"catalog fetch of every entry, later: {t_later * 1e3:.2f} ms")
    print(
        f"RATIO first / plain hashlib = {t_first / t_plain:.2f}   (1.0: verifying costs no more than hashing)"
    )
    print(f"RATIO later / first = {t_later / t_first:.3f}   (hashes are reused per path, mtime and size)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
