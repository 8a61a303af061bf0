"""House style is checked, not hoped for: ruff's linter and formatter pass on the core modules and tests.

Covers the core package modules (``lib/terralab/*.py``) and the top-level tests (``tests/test_*.py``); the
workflow sub-packages join once their style pass is done (issue 15). Settings come from pyproject.toml
(``[tool.ruff]``, line length 110). The line length (E501, not in ruff's default rules) is checked on the core
modules here; the tests join it once their long lines are re-wrapped.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKED = sorted(ROOT.glob("lib/terralab/*.py")) + sorted(ROOT.glob("tests/test_*.py"))
CHECKED += [p for pkg in ("das", "seismic") for p in sorted(ROOT.glob(f"lib/terralab/{pkg}/*.py"))]
CORE = sorted(ROOT.glob("lib/terralab/*.py"))


def _ruff() -> str:
    beside = Path(sys.executable).with_name("ruff")
    found = str(beside) if beside.is_file() else shutil.which("ruff")
    if found is None:
        pytest.skip("ruff is not installed (it comes with the dev extra: pip install -e '.[dev]')")
    return found


def _run(*args: str, files: list[Path] = CHECKED) -> subprocess.CompletedProcess:
    return subprocess.run(
        [_ruff(), *args, *(str(p.relative_to(ROOT)) for p in files)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_files_checked_include_the_core_modules_and_these_tests():
    names = {p.relative_to(ROOT).as_posix() for p in CHECKED}
    assert {"lib/terralab/run.py", "lib/terralab/cli.py", "tests/test_style.py"} <= names


def test_core_modules_and_top_level_tests_pass_ruff_check():
    proc = _run("check", "--no-cache", "--output-format", "concise")
    assert proc.returncode == 0, f"ruff check found problems (fix with `ruff check --fix`):\n{proc.stdout}"


def test_core_modules_keep_within_the_configured_line_length():
    proc = _run("check", "--no-cache", "--output-format", "concise", "--select", "E501", files=CORE)
    assert proc.returncode == 0, f"re-wrap these lines (the width is [tool.ruff] line-length):\n{proc.stdout}"


def test_core_modules_and_top_level_tests_are_ruff_formatted():
    proc = _run("format", "--check", "--no-cache")
    assert proc.returncode == 0, f"run `ruff format` on these files:\n{proc.stdout}{proc.stderr}"


def test_the_whole_tree_is_ruff_formatted():
    """Formatting (not yet lint) covers every package, test and benchmark."""
    proc = subprocess.run(
        [_ruff(), "format", "--check", "--no-cache", "lib", "tests", "benchmarks", ".ci"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"run `ruff format lib tests benchmarks .ci`:\n{proc.stdout}{proc.stderr}"


def test_core_modules_use_no_private_name_of_another_module():
    core = {p.stem for p in ROOT.glob("lib/terralab/*.py")}
    attribute = re.compile(rf"\b(?:{'|'.join(sorted(core))})\._[a-z]\w*")
    imported = re.compile(r"^\s*from \.+[\w.]* import [^#\n]*\b_[a-z]\w*", re.MULTILINE)
    found = []
    for path in sorted(ROOT.glob("lib/terralab/*.py")):
        text = path.read_text()
        found += [
            f"{path.name}: {m.group(0).strip()}"
            for m in (*attribute.finditer(text), *imported.finditer(text))
        ]
    assert not found, "make the helper public or move it:\n" + "\n".join(found)
