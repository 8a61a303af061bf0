"""The docstring examples of every rice module run and give what they show (``+SKIP`` only where an example
trains a network, needs Earth Engine or the shared data)."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

RICE = sorted(
    p.stem for p in (Path(__file__).resolve().parents[2] / "lib" / "terralab" / "rice").glob("*.py")
)


@pytest.mark.parametrize("name", RICE)
def test_docstring_examples_of_the_rice_module_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    module = importlib.import_module("terralab.rice" if name == "__init__" else f"terralab.rice.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, report=True)
    assert result.failed == 0, (
        f"{result.failed} of {result.attempted} examples in terralab.rice.{name} failed"
    )
