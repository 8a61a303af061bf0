"""The docstring examples of the core modules and of the four workflow packages run, and give what they show.

Examples marked ``+SKIP`` need the network, credentials, Earth Engine, a registered kernel, the shared data or
the project's notebooks; every other example runs here, in a temporary folder (examples that write files write
them there). Every module of the four workflow packages, and every core module but four (named in the last
test), must show at least one runnable example.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[1] / "lib" / "terralab"
PACKAGES = ("", "das", "dengue", "rice", "seismic")  # "" is the core


def _modules(package: str) -> list[str]:
    folder = LIB / package if package else LIB
    prefix = f"terralab.{package}" if package else "terralab"
    return [
        prefix if p.stem == "__init__" else f"{prefix}.{p.stem}"
        for p in sorted(folder.glob("*.py"))
        if p.stem != "__main__"
    ]


MODULES = [m for package in PACKAGES for m in _modules(package)]


def _runnable(name: str) -> int:
    tests = doctest.DocTestFinder().find(importlib.import_module(name))
    return sum(1 for t in tests for e in t.examples if not e.options.get(doctest.SKIP, False))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, report=True)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed"


def test_the_modules_that_should_show_examples_have_runnable_ones():
    # core: all but the package's __init__, the command line and the error types, and the task a Dask worker
    # runs for one grid point (it runs a notebook), which have nothing to show in a few lines
    core_without = {"terralab", "terralab.cli", "terralab.errors", "terralab.sweep_task"}
    expected = [m for m in _modules("") if m not in core_without]
    expected += [m for package in ("das", "dengue", "rice", "seismic") for m in _modules(package)]
    missing = [m for m in expected if _runnable(m) == 0]
    assert not missing, f"these modules show no runnable example: {missing}"
