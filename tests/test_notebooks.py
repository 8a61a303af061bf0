"""Every notebook in notebooks/ is well-formed and runs under papermill with small parameters, offline, as on
a fresh clone: no data mirror, an empty cache, and the network made to fail inside the kernel.

The small parameters come from tests/notebook_params.yaml (``notebooks/<file>.ipynb: {name: value}``); a
notebook missing from it runs on its defaults. Each run must record every metric the notebook's source records
(every ``report.record("name", ...)`` call, read statically), so a section that silently skips when its data
is missing fails the test instead of shrinking the report. With no notebooks at all, pytest reports the
parametrized tests as skipped ("got empty parameter set"), which CI's skip guard refuses.

How "offline" is made (:func:`offline_kernel_env`): ``TERRALAB_DATA_MIRROR`` and ``TERRALAB_SHARED_DATA``
unset, ``TERRALAB_CACHE``, ``TORCH_HOME`` and ``HF_HOME`` empty folders, no Earth Engine credentials, and a
``sitecustomize.py`` (tests/offline_guard.py) first on the kernel's PYTHONPATH that makes every non-loopback
connection and name lookup raise and refuses reads below the real-data folder. ``run.run_notebook`` starts the
kernel with this process's environment, so the kernel and whatever it starts get all of it; proxy variables
point at a closed loopback port so C libraries with their own HTTP client (GDAL's curl) fail as well.
"""

from __future__ import annotations

import ast
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import yaml

import offline_guard
from conftest import SHARED_DATA
from terralab import run

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
PARAMS_FILE = Path(__file__).parent / "notebook_params.yaml"
# A hung cell must fail the test suite, not stall it.
CELL_TIMEOUT_S = 600
# Port 9 (discard) on loopback: nothing listens, so a proxied request is refused at once.
DEAD_PROXY = "http://127.0.0.1:9"
PROXY_VARS = (
    "http_proxy",
    "https_proxy",
    "ftp_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "FTP_PROXY",
    "ALL_PROXY",
)
EE_VARS = ("EE_SERVICE_ACCOUNT", "EE_PRIVATE_KEY_FILE", "EE_PROJECT", "GOOGLE_APPLICATION_CREDENTIALS")


def _ids(path: Path) -> str:
    return path.name


def _params_by_notebook() -> dict:
    if not PARAMS_FILE.exists():
        return {}
    data = yaml.safe_load(PARAMS_FILE.read_text()) or {}
    assert isinstance(data, dict), f"{PARAMS_FILE} must map notebooks/<file>.ipynb to a mapping of parameters"
    return data


# --------------------------------------------------------------------------------------------------
# the metrics a notebook promises: every report.record("name", ...) in its source
# --------------------------------------------------------------------------------------------------
def _is_record_call(func: ast.expr) -> bool:
    """``report.record``, ``terralab.report.record`` or a bare ``record`` (``from terralab.report import
    record``)."""
    if isinstance(func, ast.Attribute) and func.attr == "record":
        owner = func.value
        return (isinstance(owner, ast.Name) and owner.id == "report") or (
            isinstance(owner, ast.Attribute) and owner.attr == "report"
        )
    return isinstance(func, ast.Name) and func.id == "record"


def expected_metrics(notebook: Path) -> set[str]:
    """The metric names a notebook records, read from its code cells without running them.

    Every ``report.record`` call counts, also those inside an ``if`` or ``try``: a default run must reach them
    all. A name that is not a string literal cannot be checked, so it is an error.
    """
    nb = nbformat.read(notebook, as_version=4)
    names: set[str] = set()
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        # IPython magics and shell escapes are not Python; blank them so the cell parses.
        source = "\n".join(
            "" if line.lstrip().startswith(("%", "!")) else line for line in cell.source.splitlines()
        )
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call) and _is_record_call(node.func):
                first = (
                    node.args[0]
                    if node.args
                    else next((k.value for k in node.keywords if k.arg == "name"), None)
                )
                if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                    raise AssertionError(
                        f"{notebook.name}, code cell {index}: `{ast.unparse(node)[:80]}` "
                        f"records a metric whose name "
                        "is not a string literal; the offline test cannot check that it is recorded"
                    )
                names.add(first.value)
    return names


def _empty(value) -> bool:
    """True for a metric that was recorded without content: None (or NaN), an empty table, dict or list."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    if isinstance(value, dict) and value.get("type") == "table":
        return not value.get("data")
    return isinstance(value, (dict, list)) and not value


def test_expected_metrics_are_every_record_call_in_the_source(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("x: int = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_markdown_cell('report.record("not_code", 1)'),
        nbformat.v4.new_code_cell(
            '%matplotlib inline\nfrom terralab import report\nreport.record("always", 1)'
        ),
        nbformat.v4.new_code_cell(
            'if x > 2:\n    report.record("in_a_branch", x)\ntry:\n'
            '    terralab.report.record(name="dotted", value=2)\n'
            "except OSError:\n    pass\nrecords = [1]\nprint(records)"
        ),
    ]
    path = tmp_path / "demo.ipynb"
    nbformat.write(nb, path)
    assert expected_metrics(path) == {"always", "in_a_branch", "dotted"}
    nb.cells.append(nbformat.v4.new_code_cell('for k in "ab":\n    report.record(f"m_{k}", 1)'))
    nbformat.write(nb, path)
    with pytest.raises(AssertionError, match="not a string literal"):
        expected_metrics(path)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_every_notebook_records_metrics_by_literal_name(path):
    assert expected_metrics(path), f"{path.name} records no metric (call terralab.report.record)"


# --------------------------------------------------------------------------------------------------
# offline: no mirror, an empty cache, and a network that refuses
# --------------------------------------------------------------------------------------------------
def _forbidden_folders() -> list[Path]:
    """The real-data folders a fresh clone does not have."""
    return [SHARED_DATA, ROOT.parent / "shared"]


@pytest.fixture
def offline_kernel_env(tmp_path, monkeypatch) -> Path:
    """This process's environment (which the kernel inherits) made to look like a fresh machine offline.

    Returns the (empty) catalog cache the run gets.
    """
    site = tmp_path / "offline-site"
    site.mkdir()
    shutil.copyfile(Path(offline_guard.__file__), site / "sitecustomize.py")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv(offline_guard.FORBID_ENV, os.pathsep.join(str(p) for p in _forbidden_folders()))
    for var in ("TERRALAB_DATA_MIRROR", "TERRALAB_SHARED_DATA", "no_proxy", "NO_PROXY", *EE_VARS):
        monkeypatch.delenv(var, raising=False)
    for var in PROXY_VARS:
        monkeypatch.setenv(var, DEAD_PROXY)
    monkeypatch.setenv("EARTHENGINE_CREDENTIALS", str(tmp_path / "no-earthengine-credentials"))
    empty = {}
    for var, name in (
        ("TERRALAB_CACHE", "empty-cache"),
        ("TORCH_HOME", "empty-torch-home"),
        ("HF_HOME", "empty-hf-home"),
    ):
        empty[var] = tmp_path / name
        empty[var].mkdir()
        monkeypatch.setenv(var, str(empty[var]))
    # The runner in this process does not need the network either.
    offline_guard.block_network(monkeypatch.setattr)
    return empty["TERRALAB_CACHE"]


def test_network_access_fails_fast_in_a_python_process_below_the_test(offline_kernel_env):
    code = (
        "import socket, time\n"
        "t = time.perf_counter()\n"
        "try:\n"
        "    socket.create_connection(('192.0.2.1', 80), timeout=20)\n"  # TEST-NET-1: never answers
        "except OSError as exc:\n"
        "    print(type(exc).__name__, exc, round(time.perf_counter() - t, 3))\n"
        "else:\n"
        "    print('connected')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert offline_guard.MESSAGE in out.stdout, out.stdout + out.stderr
    assert float(out.stdout.split()[-1]) < 1.0


def test_network_access_fails_fast_inside_the_notebook_kernel(offline_kernel_env, tmp_path):
    probe = (
        "import socket, time, urllib.request\n"
        "from terralab import report\n"
        "attempts = {\n"
        "    'tcp': lambda: socket.create_connection(('192.0.2.1', 443), timeout=20),\n"
        "    'raw_socket': lambda: socket.socket().connect(('1.1.1.1', 53)),\n"
        "    'dns': lambda: socket.getaddrinfo('example.org', 443),\n"
        "    'https_direct': lambda: urllib.request.build_opener(urllib.request.ProxyHandler({}))\n"
        "                             .open('https://example.org/', timeout=20),\n"
        "    'https_through_proxy_variables': lambda: "
        "urllib.request.urlopen('https://example.org/', timeout=20),\n"
        "}\n"
        "errors, t0 = {}, time.perf_counter()\n"
        "for name, attempt in attempts.items():\n"
        "    try:\n"
        "        attempt()\n"
        "        errors[name] = 'connected'\n"
        "    except Exception as exc:\n"
        "        errors[name] = f'{type(exc).__name__}: {exc}'\n"
        "report.record('errors', errors)\n"
        "report.record('seconds', time.perf_counter() - t0)\n"
        "server = socket.socket()\n"
        "server.bind(('127.0.0.1', 0))\n"
        "server.listen()\n"
        "socket.create_connection(server.getsockname(), timeout=5).close()\n"
        "report.record('loopback_connects', True)\n"
        "try:\n"
        f"    open({str(SHARED_DATA / 'SOURCES.md')!r}).close()\n"
        "    report.record('shared_data_read', 'read')\n"
        "except OSError as exc:\n"
        "    report.record('shared_data_read', f'{type(exc).__name__}: {exc}')\n"
    )
    nb = nbformat.v4.new_notebook(
        metadata={
            "kernelspec": {"name": "terralab", "display_name": "Python (terralab)", "language": "python"}
        }
    )
    nb.cells = [nbformat.v4.new_code_cell(probe)]
    path = tmp_path / "network_probe.ipynb"
    nbformat.write(nb, path)
    result = run.run_notebook(path, {}, tmp_path / "out", progress=False, cell_timeout_s=120)
    assert result.status == "ok", result.describe_error()
    errors = result.metrics["errors"]
    assert set(errors) == {"tcp", "raw_socket", "dns", "https_direct", "https_through_proxy_variables"}
    via_proxy = errors.pop("https_through_proxy_variables")
    assert "Connection refused" in via_proxy, f"the dead proxy {DEAD_PROXY} must refuse: {via_proxy}"
    for name, error in errors.items():
        assert offline_guard.MESSAGE in error, f"{name}: {error}"
    assert result.metrics["seconds"] < 2.0, "a refused connection must fail at once, not time out"
    assert result.metrics["loopback_connects"] is True  # the kernel's own ZMQ traffic stays possible
    assert offline_guard.MESSAGE in result.metrics["shared_data_read"]


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
def test_notebook_runs_offline_with_small_parameters_and_records_every_metric(
    path, tmp_path, offline_kernel_env
):
    params = _params_by_notebook().get(f"notebooks/{path.name}") or {}
    t0 = time.perf_counter()
    result = run.run_notebook(path, params, tmp_path / "out", cell_timeout_s=CELL_TIMEOUT_S, progress=False)
    took = time.perf_counter() - t0
    assert result.status == "ok", (
        f"{path.name} failed offline (no mirror, empty cache, network refused) at {result.describe_error()}; "
        f"see {result.html}"
    )
    assert result.html.exists() and result.output_notebook.exists()
    expected = expected_metrics(path)
    missing = sorted(expected - set(result.metrics))
    assert not missing, (
        f"{path.name} ran offline but did not record {missing}: a section skipped "
        f"(its data is not embedded, or "
        f"its parameters in {PARAMS_FILE.name} turn it off); see {result.html}"
    )
    empty = sorted(name for name in expected if _empty(result.metrics[name]))
    assert not empty, (
        f"{path.name} recorded {empty} without content (None/NaN or an empty table); see {result.html}"
    )
    noise = console_noise(nbformat.read(result.output_notebook, as_version=4))
    assert not noise, (
        f"{path.name}'s report carries console noise (a report should read like a figure page: no stderr, "
        f"progress frames or raw array reprs): {noise[:3]}; see {result.html}"
    )
    print(f"{path.name}: {len(expected)} metrics recorded offline in {took:.1f} s")


def console_noise(nb) -> list[str]:
    """What in an executed notebook's outputs is console noise rather than a result: text on stderr,
    progress-bar frames, the "IProgress not found" warning, and bare numpy array reprs as a cell's result."""
    found = []
    for cell in (c for c in nb.cells if c.cell_type == "code"):
        i = f"In [{cell.get('execution_count')}]"
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                text = out.get("text", "")
                if out.get("name") == "stderr" and text.strip():
                    found.append(f"{i} stderr: {text.strip()[:120]!r}")
                elif "\r" in text or "it/s]" in text or "IProgress" in text:
                    found.append(f"{i} progress frames: {text.strip()[:120]!r}")
            elif out.get("output_type") == "execute_result":
                data = out.get("data", {})
                plain = data.get("text/plain", "")
                if plain.lstrip().startswith("array(") and "text/html" not in data:
                    found.append(f"{i} raw array repr: {plain[:80]!r}")
    return found


def test_console_noise_finds_stderr_progress_frames_and_array_reprs():
    nb = nbformat.v4.new_notebook()
    clean = nbformat.v4.new_code_cell("x")
    clean.outputs = [nbformat.v4.new_output("stream", name="stdout", text="3 locations, 52 weeks\n")]
    noisy = nbformat.v4.new_code_cell("y")
    noisy.execution_count = 7
    noisy.outputs = [
        nbformat.v4.new_output("stream", name="stderr", text="TqdmWarning: IProgress not found\n"),
        nbformat.v4.new_output(
            "stream", name="stdout", text="epoch:  50%|#####     | 1/2 [00:01<00:01, 1.0it/s]"
        ),
        nbformat.v4.new_output("execute_result", data={"text/plain": "array([1, 2, 3])"}, execution_count=1),
    ]
    nb.cells = [clean]
    assert console_noise(nb) == []
    nb.cells = [clean, noisy]
    assert [n.split(":")[0] for n in console_noise(nb)] == [
        "In [7] stderr",
        "In [7] progress frames",
        "In [7] raw array repr",
    ]
