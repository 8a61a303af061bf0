"""The notebook runner: parameters reach the kernel, reports are written, bad input is refused up front."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from terralab import params as notebook_params
from terralab import render, report, run
from terralab.errors import (
    FileFormatError,
    KernelNotFoundError,
    NotebookExecutionError,
    NotebookNotFoundError,
    OutputLocationError,
    ParameterError,
)

NOTEBOOKS = Path(__file__).parent / "notebooks"
SQUARE = NOTEBOOKS / "square.ipynb"
FAILS = NOTEBOOKS / "fails.ipynb"
CODE_MARKER = "known in closed form for the test"  # a comment in square.ipynb's code


@pytest.fixture(scope="module")
def square_run(tmp_path_factory):
    """square.ipynb run once with n_points from a parameter file and scale from the call (which wins)."""
    out = tmp_path_factory.mktemp("square")
    params_file = out / "params.yaml"
    params_file.write_text("scale: 100.0\nn_points: 5\n")
    # A previous run's metrics in the same place must not leak into this one.
    (out / "square.metrics.json").write_text(json.dumps({"metrics": {"stale_metric": 1}}))
    result = run.run_notebook(SQUARE, {"scale": "3"}, out, parameters_file=params_file, progress=False)
    return result


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("fails")
    return run.run_notebook(FAILS, {"message": "deliberate failure"}, out, progress=False)


def test_injected_parameters_reach_the_kernel_and_its_metric(square_run):
    assert square_run.status == "ok", square_run.error
    assert square_run.parameters == {"scale": 3.0, "n_points": 5}
    # total = scale * (0 + 1 + 2 + 3 + 4)
    assert square_run.metrics["total"] == pytest.approx(30.0)
    record = json.loads(square_run.metrics_json.read_text())
    assert record["metrics"]["total"] == pytest.approx(30.0)
    assert record["metrics"]["label"] == "base"
    assert record["metrics"]["values"]["type"] == "table"
    assert record["metrics"]["values"]["data"][-1] == [4, 12.0]
    assert record["status"] == "ok" and record["error"] is None
    assert record["parameters"] == {"scale": 3.0, "n_points": 5}
    assert record["defaults"]["sleep_s"] == 0.0
    assert record["html"] == "square.html" and record["output_notebook"] == "square.ipynb"
    assert "stale_metric" not in record["metrics"]
    assert record["duration_s"] > 0


def test_kernel_runs_in_the_notebook_folder_with_the_metrics_file_set(square_run):
    assert square_run.metrics["kernel_cwd"] == str(NOTEBOOKS.resolve())
    # record() writes to a hidden file beside the outputs while the kernel runs; it is gone afterwards
    recording = square_run.metrics_json.parent / ".square.running-metrics.json"
    assert square_run.metrics["metrics_file"] == str(recording)
    assert not recording.exists()
    # kernels wait passively for OpenMP work unless the user chose a policy (set in the test, or not)
    assert square_run.metrics["omp_wait_policy"] == (os.environ.get("OMP_WAIT_POLICY") or "PASSIVE")
    # handed to the kernel process only; this process's environment is left alone
    assert os.environ.get(report.METRICS_ENV) != str(square_run.metrics_json)


def test_executed_notebook_carries_run_metadata(square_run):
    nb = nbformat.read(square_run.output_notebook, as_version=4)
    meta = nb.metadata["terralab"]
    assert meta["status"] == "ok"
    assert meta["parameters"] == {"scale": 3.0, "n_points": 5}
    assert meta["metrics"]["total"] == pytest.approx(30.0)
    assert meta["started"] == square_run.started
    assert not list(square_run.output_notebook.parent.glob(".*")), "temporary files left behind"


def test_html_report_embeds_the_figure_and_the_metric_table(square_run):
    html = square_run.html.read_text()
    assert re.search(r'<img [^>]*src="data:image/png;base64,', html)
    assert 'id="terralab-metrics"' in html and ">total<" in html and ">30<" in html
    assert 'id="metric-values"' in html  # the recorded table, rendered
    assert "deliberate" not in html


def test_html_report_hides_code_by_default_and_needs_no_network(square_run):
    html = square_run.html.read_text()
    assert CODE_MARKER not in html
    assert "<script src=" not in html, "the report must not load scripts from a CDN"
    assert 'src="http' not in html and 'href="http' not in html.split("<body")[0]


def test_show_code_keeps_the_code_cells_and_threaded_runs_stay_apart(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        with_code = pool.submit(
            run.run_notebook,
            SQUARE,
            {"n_points": 2},
            tmp_path,
            show_code=True,
            name="with_code",
            progress=False,
        )
        other = pool.submit(run.run_notebook, SQUARE, {"n_points": 6}, tmp_path, name="other", progress=False)
        with_code, other = with_code.result(), other.result()
    assert with_code.html == tmp_path / "with_code.html"
    assert CODE_MARKER in with_code.html.read_text()
    assert CODE_MARKER not in other.html.read_text()
    # total = 2 * (0 + 1) and 2 * (0 + ... + 5); each run's metrics file is its own
    assert json.loads(with_code.metrics_json.read_text())["metrics"]["total"] == pytest.approx(2.0)
    assert json.loads(other.metrics_json.read_text())["metrics"]["total"] == pytest.approx(30.0)
    assert other.metrics["metrics_file"] == str(tmp_path / ".other.running-metrics.json")


def test_failing_notebook_still_writes_both_and_names_the_cell(failed_run):
    assert failed_run.status == "failed"
    assert failed_run.output_notebook.exists() and failed_run.html.exists()
    err = failed_run.error
    # fails.ipynb: 0 markdown, 1 parameters, 2 record, 3 raise
    assert err["cell_index"] == 3
    assert err["ename"] == "ValueError" and err["evalue"] == "deliberate failure"
    assert err["source"].startswith("raise ValueError")
    assert failed_run.metrics == {"before_failure": 1}  # recorded before the failure, nothing after
    record = json.loads(failed_run.metrics_json.read_text())
    assert record["status"] == "failed" and record["error"]["cell_index"] == 3
    html = failed_run.html.read_text()
    assert "An Exception was encountered" in html  # papermill's banner
    assert 'id="papermill-error-cell"' in html and "deliberate failure" in html
    with pytest.raises(NotebookExecutionError, match="cell 3"):
        failed_run.raise_for_status()


def test_cell_timeout_fails_the_run_at_the_slow_cell(tmp_path):
    # Long enough for the import cell on a loaded machine, far shorter than the sleep.
    result = run.run_notebook(SQUARE, {"sleep_s": 120}, tmp_path, cell_timeout_s=5, progress=False)
    assert result.status == "failed"
    assert result.error["ename"] == "CellTimeoutError"
    assert result.error["source"] == "time.sleep(sleep_s)"
    assert result.duration_s < 60
    assert result.metrics["total"] == pytest.approx(12.0)  # cells before the slow one still count
    html = result.html.read_text()
    assert 'id="papermill-error-cell"' in html and "Execution stopped here: CellTimeoutError" in html
    # the banner cells do not shift the cell positions read back from the saved notebook
    assert (
        render.locate_error(nbformat.read(result.output_notebook, as_version=4))["cell_index"]
        == result.error["cell_index"]
    )


def test_undeclared_parameter_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(ParameterError, match=r"'scal'.*did you mean 'scale'") as info:
        run.run_notebook(SQUARE, {"scal": 2.0}, tmp_path / "out", progress=False)
    assert "n_points: int = 4" in str(info.value)  # lists what is declared
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "params, message",
    [
        ({"n_points": 2.5}, r"'n_points'.*expects int"),
        ({"n_points": "many"}, r"'n_points'.*expects int"),
        ({"scale": True}, r"'scale'.*expects float"),
        ({"scale": [1, 2]}, r"'scale'.*expects float"),
        ({"label": ["a"]}, r"'label'.*expects str"),
    ],
)
def test_value_that_does_not_fit_the_type_hint_is_refused(tmp_path, params, message):
    with pytest.raises(ParameterError, match=message):
        run.run_notebook(SQUARE, params, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_values_are_converted_where_lossless():
    assert run.validate_parameters(SQUARE, {"scale": 2, "n_points": 3.0, "label": 7}) == {
        "scale": 2.0,
        "n_points": 3,
        "label": "7",
    }
    assert run.validate_parameters(SQUARE, {"scale": "1e3", "n_points": "12"}) == {
        "scale": 1000.0,
        "n_points": 12,
    }


def test_command_line_text_stays_text_for_str_parameters():
    assert run.parse_parameter_text(SQUARE, {"label": "001", "n_points": "7"}) == {
        "label": "001",
        "n_points": 7,
    }


@pytest.mark.parametrize(
    "source, name, good, bad",
    [
        ('bands: Literal["RGBN", "RGBNE"] = "RGBN"', "bands", "RGBNE", "RGB"),
        ("models: list[str] = ['unet']", "models", ["unet", "dnn"], "unet"),
        ("sizes: list[int] = [1]", "sizes", "[1, 2]", ["a"]),
        ("max_files: int = None", "max_files", None, 1.5),
        ("cut_hz: Optional[float] = None", "cut_hz", "null", "high"),
        ("threshold = 1", "threshold", 0.5, "high"),
        ("verbose = False", "verbose", "true", 1),
        ("mode: 'str | None' = None", "mode", "fast", 3.0 + 1j),
    ],
)
def test_type_hints_of_the_parameters_cell_are_enforced(source, name, good, bad):
    declared = notebook_params.parse_parameters_cell(source)
    notebook_params._coerce(good, declared[name].type)
    with pytest.raises(notebook_params._Mismatch):
        notebook_params._coerce(bad, declared[name].type)


def test_parameters_cell_parsing_keeps_help_and_skips_magics():
    declared = notebook_params.parse_parameters_cell(
        "%matplotlib inline\nspeed_min_kmh: float = 60.0  # slowest vehicle\nstations = load()\n"
    )
    assert declared["speed_min_kmh"].help == "slowest vehicle"
    assert declared["speed_min_kmh"].default == 60.0
    assert declared["stations"].type.kind == "any" and declared["stations"].default_text == "load()"


@pytest.mark.parametrize(
    "content, message",
    [
        ("scale: [1, 2\n", "not valid YAML at line"),
        ("- 1\n- 2\n", "must hold a mapping"),
        ("just text\n", "must hold a mapping"),
    ],
)
def test_invalid_parameter_file_is_refused(tmp_path, content, message):
    path = tmp_path / "params.yaml"
    path.write_text(content)
    with pytest.raises(ParameterError, match=message):
        run.run_notebook(SQUARE, None, tmp_path / "out", parameters_file=path, progress=False)
    assert not (tmp_path / "out").exists()


def test_missing_parameter_file_is_refused(tmp_path):
    with pytest.raises(ParameterError, match="does not exist"):
        run.load_parameters_file(tmp_path / "nope.yaml")


def test_undeclared_name_in_parameter_file_is_refused(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("n_point: 3\n")
    with pytest.raises(ParameterError, match="did you mean 'n_points'"):
        run.run_notebook(SQUARE, None, tmp_path / "out", parameters_file=path, progress=False)


def test_missing_notebook_is_refused_with_close_names(tmp_path):
    with pytest.raises(NotebookNotFoundError, match="square.ipynb"):
        run.run_notebook(NOTEBOOKS / "squre.ipynb", None, tmp_path)


def test_file_that_is_not_a_notebook_is_refused(tmp_path):
    path = tmp_path / "broken.ipynb"
    path.write_text("{not json")
    with pytest.raises(FileFormatError, match="not a readable Jupyter notebook"):
        run.run_notebook(path, None, tmp_path / "out")


def test_missing_kernel_says_how_to_register_it(tmp_path):
    with pytest.raises(KernelNotFoundError, match="ipykernel install") as info:
        run.run_notebook(SQUARE, None, tmp_path / "out", kernel="no-such-kernel-xyz")
    assert "no-such-kernel-xyz" in str(info.value)
    assert not (tmp_path / "out").exists()


def test_missing_default_kernel_points_to_make_setup(monkeypatch):
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    def missing(self, name):
        raise NoSuchKernel(name)

    monkeypatch.setattr(KernelSpecManager, "get_kernel_spec", missing)
    with pytest.raises(KernelNotFoundError, match="make setup"):
        run.check_kernel("terralab")


def test_unwritable_output_directory_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputLocationError, match="cannot write"):
        run.run_notebook(SQUARE, None, blocker / "out")


def test_run_name_must_be_a_file_name(tmp_path):
    from terralab.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="plain file name"):
        run.run_notebook(SQUARE, None, tmp_path, name="../escape")


def test_run_all_checks_every_notebook_before_running_any(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    for nb in (SQUARE, FAILS):
        (notebooks / nb.name).write_bytes(nb.read_bytes())
    with pytest.raises(ParameterError, match="'n_pionts'"):
        run.run_all(notebooks, tmp_path / "reports", {"notebooks/square.ipynb": {"n_pionts": 2}})
    with pytest.raises(ParameterError, match="did you mean 'square.ipynb'"):
        run.run_all(notebooks, tmp_path / "reports", {"squares.ipynb": {"n_points": 2}})
    assert not (tmp_path / "reports").exists()


def test_run_all_refuses_an_empty_directory(tmp_path):
    with pytest.raises(NotebookNotFoundError, match="no notebooks"):
        run.run_all(tmp_path, tmp_path / "reports")


def test_a_kernel_that_dies_is_reported_at_the_cell_that_killed_it(tmp_path):
    toy = Path(__file__).parent / "notebooks_sweep" / "sweep_toy.ipynb"
    result = run.run_notebook(toy, {"crash": "kernel"}, tmp_path, progress=False)
    assert result.status == "failed"
    assert result.error["ename"] == "DeadKernelError"
    # cell 4 (0-based, source notebook) is the one that kills its kernel; later cells never started
    assert result.error["cell_index"] == 4
    assert "crash" in result.error["source"]
    assert Path(result.html).exists() and Path(result.output_notebook).exists()


@pytest.mark.parametrize(
    ("message", "status", "calls"),
    [
        ("Kernel died before replying to kernel_info", "ok", 2),
        ("Kernel didn't respond in 60 seconds", "ok", 2),
        ("something else went wrong", "failed", 1),
    ],
)
def test_a_kernel_that_dies_before_it_starts_is_replaced_once(tmp_path, monkeypatch, message, status, calls):
    import papermill

    real, seen = papermill.execute_notebook, []

    def first_kernel_dies(*args, **kwargs):
        seen.append(1)
        if len(seen) == 1:
            raise RuntimeError(message)
        return real(*args, **kwargs)

    monkeypatch.setattr(papermill, "execute_notebook", first_kernel_dies)
    result = run.run_notebook(SQUARE, {"n_points": 3}, tmp_path, progress=False)
    assert (result.status, len(seen)) == (status, calls)
    if status == "failed":
        assert result.error["ename"] == "RuntimeError" and result.error["evalue"] == message


def test_a_kernel_that_never_starts_fails_the_run_after_the_last_try(tmp_path, monkeypatch):
    import papermill

    seen = []

    def never_starts(*args, **kwargs):
        seen.append(1)
        raise RuntimeError("Kernel died before replying to kernel_info")

    monkeypatch.setattr(papermill, "execute_notebook", never_starts)
    result = run.run_notebook(SQUARE, {"n_points": 3}, tmp_path, progress=False)
    assert result.status == "failed" and len(seen) == run.KERNEL_START_ATTEMPTS
    assert result.error["evalue"] == "Kernel died before replying to kernel_info"


# --- interrupted runs ------------------------------------------------------------------------------
def _wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def finished_square(tmp_path_factory):
    """A folder holding one finished run of square.ipynb (n_points=3, so total = 2 * 3 = 6)."""
    out = tmp_path_factory.mktemp("finished")
    assert run.run_notebook(SQUARE, {"n_points": 3}, out, progress=False).ok
    return out


@pytest.mark.parametrize(
    ("how", "code", "message"),
    [("ctrl-c", 130, "terralab: interrupted"), ("sigterm", 143, "terralab: terminated")],
    ids=["ctrl-c", "sigterm"],
)
def test_an_interrupted_rerun_keeps_the_finished_run_and_stops_its_kernel_quietly(
    finished_square, tmp_path, how, code, message
):
    """Issue 10: a rerun into a folder with a finished run, stopped while its kernel runs, used to delete the
    finished run's metrics.json (the index then showed 0 runs), print ~20 lines of kernel ZMQ errors on
    Ctrl-C, and leave a hidden notebook and a kernel connection file behind on SIGTERM."""
    out = tmp_path / "reports"
    shutil.copytree(finished_square, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(before) == ["square.html", "square.ipynb", "square.metrics.json"]

    scratch = tmp_path / "tmp"  # the kernel connection file is made in TMPDIR
    scratch.mkdir()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "terralab",
            "run",
            str(SQUARE),
            "-p",
            "sleep_s",
            "120",
            "-o",
            str(out),
            "--no-progress",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(scratch)},
        start_new_session=True,  # its own process group, like a command in a terminal
    )
    try:
        # the kernel has recorded the first metrics, so it is inside the notebook when the signal comes
        _wait_for(lambda: (out / ".square.running-metrics.json").exists(), 120, "the rerun's kernel")
        time.sleep(0.5)
        if how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)  # what the terminal sends to the foreground group
        else:
            proc.send_signal(signal.SIGTERM)  # what kill, a batch scheduler or a container runtime sends
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    assert proc.returncode == code
    assert stderr.strip() == message, stderr  # nothing from the kernel, no traceback
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert after == before, "the finished run's three files must be kept as they were"
    assert list(scratch.iterdir()) == [], "the kernel's connection file was left behind"
    runs = report.load_runs(out)
    assert list(runs["status"]) == ["ok"] and runs["metric.total"][0] == pytest.approx(6.0)
    # the kernel is gone: no process still names a connection file of that TMPDIR
    import psutil

    def kernel_alive() -> bool:
        for p in psutil.process_iter(["cmdline"]):
            if any(str(scratch) in part for part in (p.info["cmdline"] or [])):
                return True
        return False

    _wait_for(lambda: not kernel_alive(), 10, "the interrupted run's kernel to exit")


def test_a_run_that_fails_to_write_keeps_the_earlier_run(finished_square, tmp_path, monkeypatch):
    out = tmp_path / "reports"
    shutil.copytree(finished_square, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(*args, **kwargs):
        raise RuntimeError("renderer broke")

    monkeypatch.setattr(run, "render_html", broken)
    with pytest.raises(RuntimeError, match="renderer broke"):
        run.run_notebook(SQUARE, {"n_points": 5}, out, progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_report_run_has_no_progress_frames_no_stderr_and_no_recorded_lines(tmp_path):
    """The runner tells its kernel it makes a report: terralab's bars stay silent even when a caller asks
    for them, and record()'s "recorded …" lines stay in the notebook but out of the HTML page."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("steps: int = 50", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "import os\n"
            "from terralab import report\n"
            "from terralab.progress import in_report_run, progress_bar\n"
            "total = sum(progress_bar(range(steps), desc='summing', enabled=True, mininterval=0))\n"
            "report.record('total', total)\n"
            "report.record('report_run', in_report_run())"
        ),
    ]
    notebook = tmp_path / "quiet.ipynb"
    nbformat.write(nb, notebook)
    result = run.run_notebook(notebook, {}, tmp_path / "out", progress=False)
    assert result.status == "ok", result.error
    assert result.metrics == {"total": 1225, "report_run": True}
    executed = nbformat.read(result.output_notebook, as_version=4)
    streams = [o for c in executed.cells for o in c.get("outputs", []) if o.output_type == "stream"]
    assert not [o for o in streams if o.name == "stderr"], streams
    assert "recorded total" in json.dumps(executed.cells[1].outputs), "the notebook keeps record()'s lines"
    html = result.html.read_text()
    assert "recorded " not in html and "summing" not in html and "it/s" not in html
    assert ">total<" in html and ">1225<" in html, "the metric is still in the summary table"


@pytest.mark.parametrize("seconds", [0, -1.0, float("nan"), float("inf"), "soon", True])
def test_a_cell_timeout_that_is_not_a_positive_number_of_seconds_is_refused(tmp_path, seconds):
    from terralab.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="cell_timeout_s must be a"):
        run.run_notebook(SQUARE, {}, tmp_path / "out", cell_timeout_s=seconds, progress=False)
    with pytest.raises(InvalidInputError, match="cell_timeout_s must be a"):
        run.run_all(NOTEBOOKS, tmp_path / "out", cell_timeout_s=seconds, progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("watching", [True, False])
def test_run_all_shows_one_bar_across_the_notebooks_when_someone_watches(
    tmp_path, monkeypatch, capsys, watching
):
    from terralab import progress

    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    for source in (SQUARE, FAILS):
        (notebooks / source.name).write_bytes(source.read_bytes())
    monkeypatch.delenv(progress.REPORT_RUN_ENV, raising=False)
    monkeypatch.setattr(progress, "_stderr_is_terminal", lambda: watching)
    ran = []

    def fake_run(notebook, params, output_dir, **kwargs):
        ran.append((notebook.name, kwargs["progress"]))
        out = Path(output_dir)
        return run.RunResult(
            name=notebook.stem,
            notebook=notebook,
            status="ok",
            output_notebook=out / notebook.name,
            html=out / f"{notebook.stem}.html",
            metrics_json=out / f"{notebook.stem}.metrics.json",
            parameters=params,
            duration_s=0.1,
            started="2026-01-01T00:00:00+00:00",
        )

    monkeypatch.setattr(run, "run_notebook", fake_run)
    lines = []
    results = run.run_all(notebooks, tmp_path / "out", on_result=lambda r: lines.append(r.name))
    assert [r.name for r in results] == ["fails", "square"] == lines
    assert ran == [("fails.ipynb", True), ("square.ipynb", True)]
    err = capsys.readouterr().err
    if watching:
        assert "notebooks: 100%" in err and "2/2" in err and "square" in err
    else:
        assert err == "", "nobody watching: no bar"
    run.run_all(notebooks, tmp_path / "out", progress=False)
    assert capsys.readouterr().err == "" and ran[-1] == ("square.ipynb", False)
