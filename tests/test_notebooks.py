"""Every notebook in notebooks/ is well-formed and runs under papermill with small parameters.

The small parameters come from tests/notebook_params.yaml (``notebooks/<file>.ipynb: {name: value}``);
a notebook missing from it runs on its defaults. With no notebooks at all, pytest reports the
parametrized tests as skipped ("got empty parameter set") rather than passing them.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import yaml

from terralab import run

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
PARAMS_FILE = Path(__file__).parent / "notebook_params.yaml"
# A hung cell must fail the test suite, not stall it.
CELL_TIMEOUT_S = 600


def _ids(path: Path) -> str:
    return path.name


def _params_by_notebook() -> dict:
    if not PARAMS_FILE.exists():
        return {}
    data = yaml.safe_load(PARAMS_FILE.read_text()) or {}
    assert isinstance(data, dict), f"{PARAMS_FILE} must map notebooks/<file>.ipynb to a mapping of parameters"
    return data


def test_notebook_params_file_names_existing_notebooks():
    for key, params in _params_by_notebook().items():
        assert (ROOT / key).is_file(), f"{PARAMS_FILE.name} has parameters for {key}, which does not exist"
        assert params is None or isinstance(params, dict), f"parameters of {key} must be a mapping"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_notebook_is_parameterised_and_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata.get("kernelspec", {}).get("name") == "terralab", "kernelspec name must be 'terralab'"
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert code_cells, "a notebook without code cells"
    assert "parameters" in (code_cells[0].metadata.get("tags") or []), (
        "the first code cell must be tagged parameters"
    )
    declared = run.declared_parameters(path)
    assert declared, "the parameters cell declares nothing"
    untyped = [name for name, p in declared.items() if p.annotation is None]
    assert not untyped, f"parameters without a type hint: {untyped}"
    for i, cell in enumerate(code_cells):
        assert not cell.outputs, f"code cell {i} has committed outputs; strip them"
        assert cell.execution_count is None, f"code cell {i} has an execution count; strip it"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_notebook_runs_with_small_parameters(path, tmp_path):
    by_notebook = _params_by_notebook()
    params = by_notebook.get(f"notebooks/{path.name}") or {}
    result = run.run_notebook(path, params, tmp_path, cell_timeout_s=CELL_TIMEOUT_S, progress=False)
    assert result.status == "ok", f"{path.name} failed at {result.describe_error()}; see {result.html}"
    assert result.metrics, f"{path.name} recorded no metric (call terralab.report.record)"
    assert result.html.exists() and result.output_notebook.exists()
