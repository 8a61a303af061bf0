"""The docstring examples of every seismic module run and give what they show, on the embedded NCEDC
records and the synthetic data of :mod:`terralab.seismic.synthetic` (``+SKIP`` only where an example needs
the network, credentials or a file that is not embedded, such as a real CEED year file)."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

SEISMIC = sorted(
    p.stem for p in (Path(__file__).resolve().parents[2] / "lib" / "terralab" / "seismic").glob("*.py")
)


def _module(name: str):
    return importlib.import_module("terralab.seismic" if name == "__init__" else f"terralab.seismic.{name}")


@pytest.mark.parametrize("name", SEISMIC)
def test_docstring_examples_of_the_seismic_module_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    result = doctest.testmod(
        _module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, report=True
    )
    assert result.failed == 0, (
        f"{result.failed} of {result.attempted} examples in terralab.seismic.{name} failed"
    )


def test_every_seismic_module_shows_a_runnable_example():
    runnable = {}
    for name in SEISMIC:
        tests = doctest.DocTestFinder().find(_module(name))
        runnable[name] = sum(1 for t in tests for e in t.examples if not e.options.get(doctest.SKIP, False))
    assert all(n > 0 for n in runnable.values()), runnable
