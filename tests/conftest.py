"""Shared test fixtures.

Real data lives in ``../shared/data`` beside the project (CI always has it). Tests that need it use the
``shared_data`` fixture. On a user's machine without that folder they skip with a clear reason, so a fresh
clone still passes; with ``TERRALAB_REQUIRE_DATA=1`` (``.ci/run`` sets it) a missing folder **fails** them
instead, so CI cannot pass by skipping. Anything else a test may find missing (a browser, a server) goes
through :func:`require`, which follows the same rule.

Where the real data is looked up, first found wins: ``TERRALAB_SHARED_DATA``, then a
``TERRALAB_DATA_MIRROR`` the user set, then ``../shared/data`` beside the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

# torch's OpenMP threads otherwise spin while they wait and starve other work on the same cores (the notebook
# runner sets the same for its kernels): seismic tests under load 101 s -> 10 s. Set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# Under pytest-xdist (``make test``) each worker takes its share of the cores for OpenMP/BLAS threads (torch
# too), unless the user set them: two workers each running torch on every core slowed each other down (the
# rice U-Net test under clouds: 129 s alone, 323 s beside another worker).
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
if _WORKERS > 1:
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, str(max(1, (os.cpu_count() or 1) // _WORKERS)))

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The mirror the user (or the Makefile, or .ci/run) set before the tests started, if any.
USER_MIRROR = os.environ.get("TERRALAB_DATA_MIRROR") or None
# Absolute but with symlinks kept: the same path the mirror variable names (a CI checkout may reach
# ../shared through a symlink), so paths the catalog returns compare equal to ``shared_data / ...``.
SHARED_DATA = Path(
    os.path.abspath(
        os.path.expanduser(
            os.environ.get("TERRALAB_SHARED_DATA") or USER_MIRROR or (ROOT.parent / "shared" / "data")
        )
    )
)
#: True when missing real data or a missing test dependency must fail the test instead of skipping it.
REQUIRE_DATA = os.environ.get("TERRALAB_REQUIRE_DATA", "").strip().lower() in {"1", "true", "yes", "on"}


def have_shared() -> bool:
    """True when the real-data folder (with its SOURCES.md) is there."""
    return (SHARED_DATA / "SOURCES.md").exists()


def require(condition: bool, reason: str) -> None:
    """Skip the calling test with ``reason`` when ``condition`` is false; fail it instead in CI.

    CI (``TERRALAB_REQUIRE_DATA=1``) must not pass by skipping: a missing data folder, browser or server there
    is a broken CI machine, not a reason to skip.
    """
    if condition:
        return
    if REQUIRE_DATA:
        pytest.fail(f"TERRALAB_REQUIRE_DATA=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def load_benchmark():
    """A loader of a script in ``benchmarks/`` (scripts, not a package) as a module, by its file stem."""
    import importlib.util

    def load(name: str):
        path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of the real data (``../shared/data``); skips the test when absent (fails under REQUIRE_DATA)."""
    require(
        have_shared(),
        f"real data not found at {SHARED_DATA} (set TERRALAB_SHARED_DATA or TERRALAB_DATA_MIRROR, "
        "or put shared/ beside the repo)",
    )
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets a fresh catalog cache and, as mirror, the user's own or the shared data when
    present."""
    cache = tmp_path_factory.getbasetemp() / "terralab-cache"
    monkeypatch.setenv("TERRALAB_CACHE", str(cache))
    if USER_MIRROR:
        monkeypatch.setenv("TERRALAB_DATA_MIRROR", USER_MIRROR)
    elif have_shared():
        monkeypatch.setenv("TERRALAB_DATA_MIRROR", str(SHARED_DATA))
    else:
        monkeypatch.delenv("TERRALAB_DATA_MIRROR", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")


# A test (or library code it calls) that leaves this process ignoring Ctrl-C breaks later tests that send it,
# and would break Ctrl-C in a user's notebook. Find the first such test and say so at the end of the run.
_SIGINT_CHANGED_BY: list[str] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    import signal

    before = signal.getsignal(signal.SIGINT)
    yield
    after = signal.getsignal(signal.SIGINT)
    if after is not before and after == signal.SIG_IGN:
        _SIGINT_CHANGED_BY.append(item.nodeid)
        signal.signal(signal.SIGINT, before)  # put Ctrl-C back for the tests that follow


def pytest_terminal_summary(terminalreporter):
    if _SIGINT_CHANGED_BY:
        terminalreporter.write_line(
            "tests that left SIGINT ignored (restored after each): " + ", ".join(_SIGINT_CHANGED_BY)
        )
