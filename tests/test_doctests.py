"""The docstring examples of the core modules run, and give what they show.

Examples marked ``+SKIP`` need the network, credentials, a registered kernel or the project's notebooks;
every other example runs here, and every core module shows at least one that runs (but for the few listed
in the last test). The workflow sub-packages join when their docstrings are converted to the
named synthetic examples (issue 15, item 8).
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

CORE = sorted(
    p.stem
    for p in (Path(__file__).resolve().parents[1] / "lib" / "terralab").glob("*.py")
    if p.stem != "__main__"
)


@pytest.mark.parametrize("name", CORE)
def test_docstring_examples_of_the_core_module_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    module = importlib.import_module(f"terralab.{name}" if name != "__init__" else "terralab")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, report=True)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in terralab.{name} failed"


def test_the_modules_that_show_examples_have_runnable_ones():
    runnable = {}
    for name in CORE:
        module = importlib.import_module(f"terralab.{name}" if name != "__init__" else "terralab")
        tests = doctest.DocTestFinder().find(module)
        runnable[name] = sum(1 for t in tests for e in t.examples if not e.options.get(doctest.SKIP, False))
    # the package's __init__, the command line and the error types, and the task a Dask worker runs for one
    # grid point (it runs a notebook) have nothing to show in a few lines
    without = {"__init__", "cli", "errors", "sweep_task"}
    assert {n for n in CORE if runnable[n] == 0} <= without, runnable
