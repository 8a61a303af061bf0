"""The dengue package keeps the house style: ruff-clean at the configured 110 columns (E501 on), formatted,
no module over 600 lines, and no module reading another dengue module's private names."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "lib" / "terralab" / "dengue"
FILES = [
    *sorted(PACKAGE.glob("*.py")),
    *sorted((ROOT / "tests" / "dengue").glob("*.py")),
    *sorted((ROOT / "benchmarks").glob("dengue_*.py")),
]


def _ruff(*args: str) -> subprocess.CompletedProcess:
    beside = Path(sys.executable).with_name("ruff")
    ruff = str(beside) if beside.is_file() else shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (it comes with the dev extra: pip install -e '.[dev]')")
    paths = [str(p.relative_to(ROOT)) for p in FILES]
    return subprocess.run(
        [ruff, *args, "--no-cache", *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_dengue_files_pass_ruff_check_with_the_line_length_on():
    proc = _ruff("check", "--extend-select", "E501", "--output-format", "concise")
    assert proc.returncode == 0, f"ruff check found problems:\n{proc.stdout}"


def test_dengue_files_are_ruff_formatted():
    proc = _ruff("format", "--check")
    assert proc.returncode == 0, f"run `ruff format` on these files:\n{proc.stdout}{proc.stderr}"


def test_no_dengue_module_is_over_600_lines():
    long = {p.name: n for p in PACKAGE.glob("*.py") if (n := len(p.read_text().splitlines())) > 600}
    assert not long, f"split these by job: {long}"


def test_dengue_modules_use_no_private_name_of_another_module():
    modules = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    attribute = re.compile(rf"\b_?(?:{'|'.join(modules)})\._[a-z]\w*")
    # ``from . import weeks as _weeks`` is a private alias of a public module, not a private name
    imported = re.compile(r"^\s*from \.+[\w.]* import [^#\n]*(?<!as )\b_[a-z]\w*", re.MULTILINE)
    found = []
    for path in sorted(PACKAGE.glob("*.py")):
        text = path.read_text()
        found += [
            f"{path.name}: {m.group(0).strip()}"
            for m in (*attribute.finditer(text), *imported.finditer(text))
        ]
    assert not found, "make the helper public or move it:\n" + "\n".join(found)
