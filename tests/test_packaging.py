"""The package's layout promises: dependencies in step, light imports, one-way dependencies."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "lib" / "terralab"
WORKFLOWS = ["das", "seismic", "rice", "dengue"]
CORE = ["catalog", "run", "sweep", "report", "cli", "errors", "earthengine", "compare"]
CONDA_NAMES = {"torch": "pytorch"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req, maxsplit=1)[0].strip().lower().replace("_", "-")


def test_environment_yml_lists_every_pyproject_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        wanted |= {_name(r) for r in extra}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    have = {_name(d) for d in env["dependencies"] if isinstance(d, str)}
    missing = {w for w in wanted if CONDA_NAMES.get(w, w) not in have}
    assert not missing, f"environment.yml lacks {sorted(missing)}: keep it in step with pyproject.toml"


@pytest.mark.parametrize("module", ["terralab", "terralab.catalog", "terralab.report"]
                         + [f"terralab.{w}" for w in WORKFLOWS])
def test_import_does_not_pull_heavy_dependencies(module):
    heavy = ["torch", "ee", "dascore", "obspy", "timm", "segmentation_models_pytorch", "distributed", "tensorflow"]
    code = (
        f"import sys, importlib; importlib.import_module({module!r}); "
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"import {module} loads {out.stdout.strip()}: import them inside functions"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against the file's package
                parts = path.relative_to(PKG.parent).with_suffix("").parts[: -node.level]
                base = ".".join(parts)
                found.add(f"{base}.{node.module}" if node.module else base)
            elif node.module:
                found.add(node.module)
    return found


def test_core_imports_no_workflow_and_workflows_import_no_other_workflow():
    problems = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG).parts
        owner = rel[0] if len(rel) > 1 and rel[0] in WORKFLOWS else None
        for mod in _imports(path):
            if not mod.startswith("terralab."):
                continue
            target = mod.split(".")[1]
            if target in WORKFLOWS and target != owner:
                problems.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert not problems, "dependencies must point notebooks → workflows → core:\n" + "\n".join(problems)
