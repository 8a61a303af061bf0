"""The docstring examples of every dengue module run and give what they show (``+SKIP`` only where an example
needs the network, Earth Engine or the shared data)."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

DENGUE = sorted(
    p.stem for p in (Path(__file__).resolve().parents[2] / "lib" / "terralab" / "dengue").glob("*.py")
)


@pytest.mark.parametrize("name", DENGUE)
def test_docstring_examples_of_the_dengue_module_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    module = importlib.import_module("terralab.dengue" if name == "__init__" else f"terralab.dengue.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, report=True)
    assert result.failed == 0, (
        f"{result.failed} of {result.attempted} examples in terralab.dengue.{name} failed"
    )


def test_the_dengue_modules_that_show_examples_have_runnable_ones():
    runnable = {}
    for name in DENGUE:
        module = importlib.import_module(
            "terralab.dengue" if name == "__init__" else f"terralab.dengue.{name}"
        )
        tests = doctest.DocTestFinder().find(module)
        runnable[name] = sum(1 for t in tests for e in t.examples if not e.options.get(doctest.SKIP, False))
    assert all(runnable[n] > 0 for n in ("models", "pooled", "protocol", "weeks", "probabilistic")), runnable
