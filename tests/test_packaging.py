"""The package's layout promises: dependencies in step, light imports, one-way dependencies."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the dev extra installs tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "lib" / "terralab"
WORKFLOWS = ["das", "seismic", "rice", "dengue"]
CORE = ["catalog", "run", "sweep", "report", "cli", "errors", "earthengine", "compare"]
CONDA_NAMES = {"torch": "pytorch"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req, maxsplit=1)[0].strip().lower().replace("_", "-")


def _needed_by(req: str, python: str) -> bool:
    """False for a requirement whose environment marker excludes that Python (e.g. tomli below 3.11)."""
    from packaging.requirements import Requirement

    marker = Requirement(req).marker
    return marker is None or marker.evaluate({"python_version": python})


def test_environment_yml_lists_every_pyproject_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    python = next(
        d.split("=", 1)[1] for d in env["dependencies"] if isinstance(d, str) and d.startswith("python=")
    )
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    wanted = {_name(r) for r in requirements if _needed_by(r, python)}
    have = {_name(d) for d in env["dependencies"] if isinstance(d, str)}
    missing = {w for w in wanted if CONDA_NAMES.get(w, w) not in have}
    assert not missing, f"environment.yml lacks {sorted(missing)}: keep it in step with pyproject.toml"


@pytest.mark.parametrize(
    "module", ["terralab", "terralab.catalog", "terralab.report"] + [f"terralab.{w}" for w in WORKFLOWS]
)
def test_import_does_not_pull_heavy_dependencies(module):
    heavy = [
        "torch",
        "ee",
        "dascore",
        "obspy",
        "timm",
        "segmentation_models_pytorch",
        "distributed",
        "tensorflow",
    ]
    code = (
        f"import sys, importlib; importlib.import_module({module!r}); "
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", (
        f"import {module} loads {out.stdout.strip()}: import them inside functions"
    )


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


def _canonical(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def _must_import() -> set[str]:
    """Distributions `make test` always installs: the dependencies and the dev extra (the test tools)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["dev"] + ["terralab"]
    return {_canonical(_name(r)) for r in wanted}


def test_no_test_importorskips_a_hard_dependency_or_the_project():
    """A broken install must fail the tests, not turn them into skips: import what `make test` installs."""
    from importlib.metadata import packages_distributions

    by_module = packages_distributions()
    hard = _must_import()
    problems = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "importorskip"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                continue
            module = node.args[0].value
            top = module.split(".")[0]
            dists = {_canonical(d) for d in by_module.get(top, [])} | (
                {"terralab"} if top == "terralab" else set()
            )
            if dists & hard:
                problems.append(f"{path.relative_to(ROOT)}:{node.lineno} importorskip({module!r})")
    assert not problems, (
        "hard dependencies (and terralab itself) are imported, not skipped over:\n" + "\n".join(problems)
    )


def _package_data_globs() -> list[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return pyproject["tool"]["setuptools"]["package-data"]["terralab"]


def _shipped_files() -> set[Path]:
    """Files under lib/terralab that setuptools' package-data globs put into the wheel."""
    import glob

    found: set[Path] = set()
    for pattern in _package_data_globs():
        found |= {Path(f) for f in glob.glob(str(PKG / pattern), recursive=True) if Path(f).is_file()}
    return found


def test_the_wheel_ships_the_html_templates_and_the_py_typed_marker():
    wanted = set((PKG / "templates").glob("*.j2")) | {PKG / "py.typed"}
    assert len(wanted) > 1 and all(p.is_file() for p in wanted)
    missing = sorted(p.relative_to(PKG).as_posix() for p in wanted - _shipped_files())
    assert not missing, f"add to [tool.setuptools.package-data] in pyproject.toml: {missing}"


def test_package_data_globs_ship_the_embedded_data():
    """The globs the check above relies on do match: every embedded sample under data/ is shipped."""
    data = {p for p in (PKG / "data").rglob("*") if p.is_file()}
    assert data and data <= _shipped_files()
