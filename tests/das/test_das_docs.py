"""Every das module shows a runnable docstring example (tests/test_doctests.py runs and checks them)."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

DAS = Path(__file__).resolve().parents[2] / "lib" / "terralab" / "das"
MODULES = [
    "terralab.das" if p.stem == "__init__" else f"terralab.das.{p.stem}" for p in sorted(DAS.glob("*.py"))
]


@pytest.mark.parametrize("name", MODULES)
def test_every_das_module_shows_a_runnable_example(name):
    found = doctest.DocTestFinder().find(importlib.import_module(name))
    runnable = [e for t in found for e in t.examples if not e.options.get(doctest.SKIP, False)]
    assert runnable, f"{name} shows no docstring example that runs (only +SKIP ones or none)"
