"""CI cannot pass by skipping.

* ``TERRALAB_REQUIRE_DATA=1`` turns a missing real-data folder, browser or server into a failing test (checked
  by running real tests of this suite in a pytest subprocess with the data folder "renamed away");
* the skip guard (``.ci/skip_guard.py``) records every skip, xfail and skipped collection with its reason, and
  fails on any the allow-list does not explain — also when reasons quote paths and ids carry brackets;
* ``.ci/run`` sets both up around ``make test`` (checked with a stand-in ``make``) and stops at once when the
  data folder is missing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CI = ROOT / ".ci"
# A private name: under .ci/run the same file is already loaded as the plugin `skip_guard`.
_spec = importlib.util.spec_from_file_location("_terralab_ci_skip_guard", CI / "skip_guard.py")
skip_guard = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = skip_guard
_spec.loader.exec_module(skip_guard)


def _clean_env(**extra: str) -> dict[str, str]:
    """This environment without any TERRALAB_* setting (the suite's own fixtures set some), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERRALAB_") and k != "PYTEST_ADDOPTS"}
    env.update(extra)
    return env


def _pytest(args: list[str], env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


# --------------------------------------------------------------------------------------------------
# TERRALAB_REQUIRE_DATA
# --------------------------------------------------------------------------------------------------
SHARED_DATA_TEST = "tests/test_catalog.py::test_shared_data_mirror_hit_is_verified"
BROWSER_TEST = "tests/test_browser.py::test_run_report_shows_its_metrics_and_figure"


def test_missing_data_folder_fails_a_real_data_test_in_ci_and_skips_it_elsewhere(tmp_path):
    renamed_away = tmp_path / "shared" / "data"  # what .ci/run points the mirror at, absent
    ci = _pytest(
        [SHARED_DATA_TEST], _clean_env(TERRALAB_REQUIRE_DATA="1", TERRALAB_DATA_MIRROR=str(renamed_away))
    )
    assert ci.returncode == 1, ci.stdout + ci.stderr
    assert re.search(r"\b1 (failed|error)\b", ci.stdout)  # a failing fixture reports as an error
    assert f"TERRALAB_REQUIRE_DATA=1 but real data not found at {renamed_away}" in ci.stdout

    user = _pytest([SHARED_DATA_TEST], _clean_env(TERRALAB_DATA_MIRROR=str(renamed_away)))
    assert user.returncode == 0, user.stdout + user.stderr
    assert "1 skipped" in user.stdout and f"real data not found at {renamed_away}" in user.stdout


def test_missing_browser_fails_the_browser_test_in_ci_and_skips_it_elsewhere(tmp_path):
    missing = {
        "TERRALAB_CHROMIUM": str(tmp_path / "no-chromium"),
        "TERRALAB_CHROMEDRIVER": str(tmp_path / "no-driver"),
    }
    ci = _pytest([BROWSER_TEST], _clean_env(TERRALAB_REQUIRE_DATA="1", **missing))
    assert ci.returncode == 1 and re.search(r"\b1 (failed|error)\b", ci.stdout), ci.stdout + ci.stderr
    assert "TERRALAB_REQUIRE_DATA=1 but headless Chromium not found" in ci.stdout

    user = _pytest([BROWSER_TEST], _clean_env(**missing))
    assert user.returncode == 0 and "1 skipped" in user.stdout, user.stdout + user.stderr


# --------------------------------------------------------------------------------------------------
# the skip guard
# --------------------------------------------------------------------------------------------------
PATH_REASON = r"real data not found at /tmp/a [copy]/shared (x)/data?*.csv (set TERRALAB_SHARED_DATA)"
PROBE = f"""
import pytest


def test_passes():
    pass


def test_skip_quoting_a_path():
    pytest.skip({PATH_REASON!r})


@pytest.mark.parametrize("case", ["a/b[1]", "c d"])
def test_param(case):
    pytest.skip(f"chromium for {{case}} not found")


@pytest.mark.xfail(reason="known bug")
def test_known_bug():
    assert False


@pytest.mark.parametrize("x", [])
def test_of_nothing(x):
    pass


@pytest.fixture
def needs_server():
    pytest.skip("server did not start")


def test_skipped_in_setup(needs_server):
    pass
"""


@pytest.fixture(scope="module", params=[1, 2], ids=["one-process", "two-xdist-workers"])
def probe_report(request, tmp_path_factory) -> list[dict]:
    """The skip report of a pytest run over PROBE with the guard plugin loaded as .ci/run loads it, in one
    process and spread over two pytest-xdist workers as ``make test`` runs it (the controller, which receives
    every worker's reports, writes it)."""
    folder = tmp_path_factory.mktemp("probe")
    (folder / "test_probe.py").write_text(PROBE)
    (folder / "pytest.ini").write_text("[pytest]\n")
    report = folder / "skips.json"
    out = _pytest(
        [
            "-c",
            str(folder / "pytest.ini"),
            "--rootdir",
            str(folder),
            "-p",
            "skip_guard",
            f"--skip-report={report}",
            *(["-n", str(request.param)] if request.param > 1 else []),
            "test_probe.py",
        ],
        _clean_env(PYTHONPATH=str(CI)),
        cwd=folder,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    data = json.loads(report.read_text())
    assert data["exitstatus"] == 0
    return data["skips"]


def test_guard_records_every_kind_of_skip_with_its_reason_verbatim(probe_report):
    by_id = {s["nodeid"]: s["reason"] for s in probe_report}
    assert by_id["test_probe.py::test_skip_quoting_a_path"] == PATH_REASON
    assert by_id["test_probe.py::test_param[a/b[1]]"] == "chromium for a/b[1] not found"
    assert by_id["test_probe.py::test_param[c d]"] == "chromium for c d not found"
    assert by_id["test_probe.py::test_known_bug"] == "xfail: known bug"
    assert by_id["test_probe.py::test_skipped_in_setup"] == "server did not start"
    empty = [nodeid for nodeid, reason in by_id.items() if "got empty parameter set" in reason]
    assert len(empty) == 1 and "test_of_nothing" in empty[0]
    assert "test_probe.py::test_passes" not in by_id


def _allow(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "allowed-skips.txt"
    path.write_text(textwrap.dedent(text))
    return path


def _check(tmp_path: Path, skips: list[dict], allow: Path) -> tuple[int, str]:
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"version": 1, "exitstatus": 0, "skips": skips}))
    out = subprocess.run(
        [sys.executable, str(CI / "skip_guard.py"), "check", str(report), str(allow)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return out.returncode, out.stdout + out.stderr


def test_guard_fails_on_skips_off_the_list_and_names_each(probe_report, tmp_path):
    allow = _allow(
        tmp_path,
        f"""\
        # literal brackets, parentheses, '?' and '*' inside the reason; '*' at the end is the wildcard
        test_probe.py::test_skip_quoting_a_path | {PATH_REASON}  # a probe
        test_probe.py::test_param[*] | chromium for * not found  # another probe
    """,
    )
    code, text = _check(tmp_path, probe_report, allow)
    assert code == 1
    assert "3 skip(s) not on the allow-list" in text
    for nodeid in (
        "test_probe.py::test_known_bug",
        "test_probe.py::test_skipped_in_setup",
        "test_of_nothing",
    ):
        assert nodeid in text
    assert "SKIPPED test_probe.py::test_skip_quoting_a_path" not in text
    assert "SKIPPED test_probe.py::test_param" not in text


def test_guard_passes_when_every_skip_is_explained(probe_report, tmp_path):
    allow = _allow(
        tmp_path,
        """\
        test_probe.py::test_skip_quoting_a_path | real data not found at /tmp/a [copy]/shared (x)/data?*  # probe
        test_probe.py::test_param[a/b[1]]  # brackets in the id are literal
        test_probe.py::test_param[c d]  # a space in the id
        test_probe.py::test_known_bug | xfail: known bug  # an xfail needs an entry too
        test_probe.py::test_skipped_in_setup  # a skip from a fixture
        test_probe.py::test_of_nothing*  # an empty parameter set
        tests/never.py::test_never  # an entry that allows nothing is noted, not an error
    """,  # noqa: E501 - the allow-list lines are the data under test
    )
    code, text = _check(tmp_path, probe_report, allow)
    assert code == 0, text
    assert "6 skip(s), 6 on the allow-list, 0 unexpected" in text
    assert "allowed no skip in this run" in text


@pytest.mark.parametrize(
    "line, why",
    [
        ("test_probe.py::test_param[c d]", "comment"),
        ("test_probe.py::test_param[c d]  #   ", "comment"),
        ("test_x | # why", "node-id pattern"),
    ],
)
def test_allow_list_entry_without_a_reason_is_refused(tmp_path, line, why):
    with pytest.raises(skip_guard.AllowListError, match=why):
        skip_guard.parse_allow_list(line)
    code, text = _check(tmp_path, [], _allow(tmp_path, line + "\n"))
    assert code == 2 and why in text


def test_patterns_take_only_star_as_wildcard():
    entry = skip_guard.parse_allow_list("tests/a.py::test_x[?]  # why")[0]
    assert entry.matches({"nodeid": "tests/a.py::test_x[?]", "reason": "r"})
    assert not entry.matches({"nodeid": "tests/a.py::test_x[a]", "reason": "r"})  # fnmatch would match this
    prefix = skip_guard.parse_allow_list("tests/a.py::test_x*  # why")[0]
    assert prefix.matches({"nodeid": "tests/a.py::test_x[1-2]", "reason": "r"})
    assert not prefix.matches({"nodeid": "tests/b.py::test_x", "reason": "r"})


def test_guard_refuses_a_missing_or_unreadable_report(tmp_path):
    allow = _allow(tmp_path, "")
    out = subprocess.run(
        [sys.executable, str(CI / "skip_guard.py"), "check", str(tmp_path / "none.json"), str(allow)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2 and "cannot read the skip report" in out.stderr


def test_the_project_allow_list_gives_a_reason_for_every_entry():
    entries = skip_guard.parse_allow_list((CI / "allowed-skips.txt").read_text())
    assert all(e.why for e in entries)


# --------------------------------------------------------------------------------------------------
# .ci/run, with a stand-in make
# --------------------------------------------------------------------------------------------------
FAKE_MAKE = """#!{python}
import json, os, shutil, sys
args = sys.argv[1:]
env = {{k: os.environ.get(k) for k in ("TERRALAB_REQUIRE_DATA", "TERRALAB_DATA_MIRROR", "PYTHONPATH")}}
with open(os.environ["FAKE_MAKE_LOG"], "w") as fh:
    json.dump({{"args": args, "env": env}}, fh)
pytest_args = next(a for a in args if a.startswith("PYTEST_ARGS=")).split("=", 1)[1].split()
report = next(a.split("=", 1)[1] for a in pytest_args if a.startswith("--skip-report="))
shutil.copyfile(os.environ["FAKE_SKIPS"], report)
sys.exit(int(os.environ.get("FAKE_MAKE_RC", "0")))
"""


@pytest.fixture
def ci_checkout(tmp_path) -> dict:
    """A copy of .ci/ in a folder with ../shared/data beside it, and a PATH whose make is a stand-in."""
    repo = tmp_path / "work" / "repo"
    shutil.copytree(CI, repo / ".ci")
    data = tmp_path / "work" / "shared" / "data"
    data.mkdir(parents=True)
    (data / "SOURCES.md").write_text("stand-in\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    make = bin_dir / "make"
    make.write_text(FAKE_MAKE.format(python=sys.executable))
    for name in ("chromium", "chromedriver"):  # present, so .ci/run does not try apt-get
        (bin_dir / name).write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "python3").symlink_to(sys.executable)
    for exe in bin_dir.iterdir():
        exe.chmod(0o755)
    skips = tmp_path / "skips.json"
    skips.write_text(json.dumps({"version": 1, "exitstatus": 0, "skips": []}))
    env = _clean_env(
        PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        FAKE_MAKE_LOG=str(tmp_path / "make.json"),
        FAKE_SKIPS=str(skips),
    )
    env.pop("PYTHONPATH", None)
    return {"repo": repo, "data": data, "env": env, "skips": skips, "log": tmp_path / "make.json"}


def _ci_run(checkout: dict, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(checkout["repo"] / ".ci" / "run")],
        env={**checkout["env"], **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_ci_run_requires_the_data_and_runs_make_test_with_the_skip_guard(ci_checkout):
    out = _ci_run(ci_checkout)
    assert out.returncode == 0, out.stdout + out.stderr
    called = json.loads(ci_checkout["log"].read_text())
    assert called["args"][0] == "test"
    assert called["env"]["TERRALAB_REQUIRE_DATA"] == "1"
    assert Path(called["env"]["TERRALAB_DATA_MIRROR"]).resolve() == ci_checkout["data"].resolve()
    assert called["env"]["PYTHONPATH"].split(os.pathsep)[0] == str(ci_checkout["repo"] / ".ci")
    assert "-p skip_guard --skip-report=" in " ".join(called["args"])
    assert "0 unexpected" in out.stdout


def test_ci_run_fails_on_a_skip_off_the_allow_list(ci_checkout):
    skip = {
        "nodeid": "tests/test_x.py::test_y",
        "when": "setup",
        "reason": "chromium not found",
        "location": "",
    }
    ci_checkout["skips"].write_text(json.dumps({"version": 1, "exitstatus": 0, "skips": [skip]}))
    out = _ci_run(ci_checkout)
    assert out.returncode == 1
    assert "SKIPPED tests/test_x.py::test_y" in out.stderr and "chromium not found" in out.stderr


def test_ci_run_fails_when_the_tests_fail(ci_checkout):
    out = _ci_run(ci_checkout, FAKE_MAKE_RC="2")
    assert out.returncode == 2 and "make test failed" in out.stderr


def test_ci_run_stops_at_once_without_the_data_folder(ci_checkout):
    shutil.rmtree(ci_checkout["data"])
    out = _ci_run(ci_checkout)
    assert out.returncode == 1
    assert "real data folder" in out.stderr and "missing" in out.stderr
    assert not ci_checkout["log"].exists(), "make test must not start without the data"
