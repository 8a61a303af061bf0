"""Shared test fixtures.

Real data lives in ``../shared/data`` beside the project (CI always has it). Tests that need it use the
``shared_data`` fixture, which skips with a clear reason when the folder is absent, so a fresh clone
without it still passes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TERRALAB_SHARED_DATA", ROOT.parent / "shared" / "data")).resolve()


def _have_shared() -> bool:
    return (SHARED_DATA / "SOURCES.md").exists()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data; skips the test when that folder is not there."""
    if not _have_shared():
        pytest.skip(f"real data not found at {SHARED_DATA} (set TERRALAB_SHARED_DATA or put shared/ beside the repo)")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets a fresh catalog cache and, when present, the shared data as mirror."""
    cache = tmp_path_factory.getbasetemp() / "terralab-cache"
    monkeypatch.setenv("TERRALAB_CACHE", str(cache))
    if _have_shared():
        monkeypatch.setenv("TERRALAB_DATA_MIRROR", str(SHARED_DATA))
    else:
        monkeypatch.delenv("TERRALAB_DATA_MIRROR", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
