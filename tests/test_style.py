"""House style is checked, not hoped for: ruff's linter and formatter, module size and private names.

ruff check covers the core modules (``lib/terralab/*.py``), the four workflow packages, every test and
benchmark; ruff format the whole tree. Settings come from pyproject.toml (``[tool.ruff]``, line
length 110). The line length (E501, not in ruff's default rules) is checked on the core modules and on
every workflow's modules, tests and benchmarks; pyproject selects E501, so ruff check enforces it everywhere.
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
WORKFLOWS = ("das", "dengue", "rice", "seismic")
CHECKED += [p for pkg in WORKFLOWS for p in sorted(ROOT.glob(f"lib/terralab/{pkg}/*.py"))]
CHECKED += sorted(ROOT.glob("tests/*/*.py")) + sorted(ROOT.glob("benchmarks/*.py"))
CORE = sorted(ROOT.glob("lib/terralab/*.py"))
LINE_LENGTH_CHECKED = CORE + [
    p
    for pattern in ("lib/terralab/{}/*.py", "tests/{}/*.py", "benchmarks/{}_*.py")
    for pkg in ("das", "dengue", "rice", "seismic")
    for p in sorted(ROOT.glob(pattern.format(pkg)))
]
LINE_LENGTH_CHECKED += [ROOT / "benchmarks" / "phasenet_throughput.py"]  # seismic's, not named seismic_*
#: Modules still over the ~600-line aim, each waiting for its split (the test fails once one is split, so the
#: list only shrinks).
KNOWN_LONG: set[str] = set()


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


def test_modules_tests_and_benchmarks_keep_within_the_configured_line_length():
    proc = _run(
        "check", "--no-cache", "--output-format", "concise", "--select", "E501", files=LINE_LENGTH_CHECKED
    )
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


def _packages() -> list[Path]:
    return [ROOT / "lib" / "terralab", *(ROOT / "lib" / "terralab" / pkg for pkg in WORKFLOWS)]


def test_no_module_uses_a_private_name_of_another_module_of_its_package():
    # ``from . import weeks as _weeks`` is a private alias of a public module, not a private name
    imported = re.compile(r"^\s*from \.+[\w.]* import [^#\n]*(?<!as )\b_[a-z]\w*", re.MULTILINE)
    found = []
    for package in _packages():
        modules = sorted(p.stem for p in package.glob("*.py") if p.stem != "__init__")
        attribute = re.compile(rf"\b_?(?:{'|'.join(modules)})\._[a-z]\w*")
        for path in sorted(package.glob("*.py")):
            text = path.read_text()
            # ``ceed._group`` inside ceed.py is an object of that module reaching its own private names
            foreign = [
                m for m in attribute.finditer(text) if m.group(0).lstrip("_").split(".")[0] != path.stem
            ]
            found += [
                f"{path.relative_to(ROOT)}: {m.group(0).strip()}"
                for m in (*foreign, *imported.finditer(text))
            ]
    assert not found, "make the helper public or move it:\n" + "\n".join(found)


def test_no_module_is_over_600_lines_but_the_known_ones():
    sizes = {
        p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines())
        for package in _packages()
        for p in package.glob("*.py")
    }
    long = {name for name, n in sizes.items() if n > 600}
    assert long <= KNOWN_LONG, (
        f"split these by job (or, for now, name them in KNOWN_LONG): {sorted(long - KNOWN_LONG)}"
    )
    assert KNOWN_LONG <= long, f"now under 600 lines: drop from KNOWN_LONG {sorted(KNOWN_LONG - long)}"
