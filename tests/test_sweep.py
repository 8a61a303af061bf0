"""Sweeps on Dask: one run per grid point, failures kept per run, retries, outputs to fsspec URLs, and the
comparison report; every bad input of issue 7 refused early with a terralab error.

The tiny notebook ``tests/notebooks_sweep/sweep_toy.ipynb`` records ``score = n × {unet: 1, dnn: 0.5}[model]``
and ``loss = 1 / (1 + score)``, and can be told to raise, to kill its kernel, or to kill the Dask worker that
runs it. One LocalCluster (two single-threaded worker processes) serves the module.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from terralab import sweep as sw
from terralab.errors import (
    InvalidInputError,
    MissingDependencyError,
    OutputLocationError,
    ParameterError,
    SchedulerError,
)

ROOT = Path(__file__).resolve().parents[1]
TOY = Path(__file__).parent / "notebooks_sweep" / "sweep_toy.ipynb"


def _score(n: int, model: str) -> float:
    return n * {"unet": 1.0, "dnn": 0.5}[model]


def _closed_port_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"tcp://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster shaped like the one sweep() starts: one thread per worker process."""
    with sw.local_cluster(2) as c:
        yield c


# --- runs --------------------------------------------------------------------------------------------
# The README's "Running on a cluster" example, as a user types it (LocalCluster started by the command).
README_EXAMPLE = (
    "terralab sweep tests/notebooks_sweep/sweep_toy.ipynb --grid n=1,2 --grid model=unet,dnn -o {out}"
)


def test_readme_example_runs_every_grid_point_and_writes_the_comparison(tmp_path):
    terralab = Path(sys.executable).with_name("terralab")
    argv = README_EXAMPLE.format(out=tmp_path / "sweep-toy").split()
    proc = subprocess.run(
        [str(terralab), *argv[1:], "--no-progress"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    out = tmp_path / "sweep-toy"
    names = [
        "sweep_toy__n-1__model-unet",
        "sweep_toy__n-1__model-dnn",
        "sweep_toy__n-2__model-unet",
        "sweep_toy__n-2__model-dnn",
    ]
    assert [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("ok ")] == names
    assert "4/4 runs ok" in proc.stdout

    state = json.loads((out / "sweep.json").read_text())
    assert state["grid"] == {"n": [1, 2], "model": ["unet", "dnn"]}
    assert [r["name"] for r in state["runs"]] == names and {r["status"] for r in state["runs"]} == {"ok"}
    for run in state["runs"]:
        n, model = run["parameters"]["n"], run["parameters"]["model"]
        assert run["metrics"]["score"] == pytest.approx(_score(n, model))
        assert all((out / f"{run['name']}{ext}").is_file() for ext in (".html", ".ipynb", ".metrics.json"))

    page = (out / "index.html").read_text()
    # The best run by score (higher is better) is n=2, unet.
    best = re.search(r'<p id="best-run".*?</p>', page, re.DOTALL).group(0)
    assert "sweep_toy__n-2__model-unet" in best and "score" in best
    # Two grid parameters → a pivot per metric: rows are n's values, columns model's values.
    pivot = re.search(r'<table class="tl tl-pivot" id="pivot-score">.*?</table>', page, re.DOTALL).group(0)
    rows = re.findall(r"<tr>(.*?)</tr>", pivot, re.DOTALL)
    header = re.findall(r"<th>(.*?)</th>", rows[0])
    assert header[1:] == ["unet", "dnn"]
    cells = [
        [re.sub(r"<.*?>|★", "", c).strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r)]
        for r in rows[1:]
    ]
    assert cells == [["1", "1", "0.5"], ["2", "2", "1"]]
    assert 'id="figure-score"' in page and "data:image/png;base64," in page
    assert 'class="tl sortable"' in page


def test_a_dying_worker_fails_only_its_own_run(tmp_path):
    """The notebook kills the Dask worker process running it; the run beside it still finishes.
    Uses sweep()'s own LocalCluster (two single-threaded workers, a run fails on its worker's first death)."""
    result = sw.sweep(TOY, {"crash": ["none", "worker"]}, output=tmp_path, n_workers=2, progress=False)

    healthy, killed = result.runs
    assert healthy.status == "ok" and healthy.metrics["score"] == 3.0 and Path(healthy.html).is_file()
    assert killed.status == "failed" and killed.error["ename"] == "KilledWorker" and killed.html is None
    assert "worker" in killed.error["evalue"] and "--retry-failed" in killed.error["evalue"]
    assert [r.name for r in result.failed] == ["sweep_toy__crash-worker"]

    state = json.loads((tmp_path / "sweep.json").read_text())
    assert [r["status"] for r in state["runs"]] == ["ok", "failed"]
    page = Path(result.index).read_text()
    failed_list = re.search(r'<ul id="failed-runs">.*?</ul>', page, re.DOTALL).group(0)
    assert "sweep_toy__crash-worker" in failed_list and "KilledWorker" in failed_list


def test_local_cluster_workers_leave_ctrl_c_to_the_sweep_and_skip_the_slow_iri_checker(cluster):
    """The LocalCluster's preload (``dask_setup``): Ctrl-C reaches every process of a terminal command, and
    the sweep, not each worker, handles it; nbformat's jsonschema goes without its 1.6-s IRI grammar."""
    import signal

    from distributed import Client

    def state():
        return signal.getsignal(signal.SIGINT) == signal.SIG_IGN, sys.modules.get("rfc3987_syntax", "absent")

    with Client(cluster, set_as_default=False) as client:
        assert set(client.run(state).values()) == {(True, None)}


def test_local_cluster_workers_import_what_a_run_needs_before_their_first_run(cluster):
    """The preload starts importing the runner as the worker comes up (cold-start speed-up, issue 14)."""
    from distributed import Client

    def warmed() -> tuple[bool, ...]:
        from terralab.cluster import wait_for_warm_up

        wait_for_warm_up()
        return tuple(
            m in sys.modules for m in ("papermill", "nbconvert", "jupyter_client.manager", "terralab.run")
        )

    with Client(cluster, set_as_default=False) as client:
        assert set(client.run(warmed).values()) == {(True, True, True, True)}


def test_a_sweep_refused_for_bad_input_leaves_no_worker_running(tmp_path):
    """The LocalCluster starts while the grid is checked; a refused sweep closes it before raising."""
    import psutil

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(ParameterError, match="'n'.*int"):
        sw.sweep(TOY, {"n": ["x"]}, output=tmp_path / "out", progress=False)
    starting = [t.name for t in threading.enumerate() if t.name.startswith("terralab-cluster")]
    assert not starting, "the cluster must be closed, not left starting in the background"
    # multiprocessing's resource tracker serves this interpreter until it exits: not the sweep's to stop
    started = [
        p
        for p in psutil.Process().children(recursive=True)
        if p.pid not in before and "resource_tracker" not in " ".join(p.cmdline())
    ]
    _, alive = psutil.wait_procs(started, timeout=15)
    assert not alive, f"left running: {[' '.join(p.cmdline())[:100] for p in alive]}"
    assert not (tmp_path / "out").exists()


def test_outputs_go_to_an_fsspec_url_and_each_run_comes_back_with_its_files(cluster, tmp_path):
    """Workers copy their outputs through fsspec (here a file:// URL, as they would to s3:// or gs://)."""
    out = tmp_path / "remote"
    result = sw.sweep(
        TOY,
        {"model": ["unet", "dnn"]},
        scheduler=cluster.scheduler_address,
        output=f"file://{out}",
        progress=False,
    )
    assert [r.name for r in result] == ["sweep_toy__model-unet", "sweep_toy__model-dnn"]
    assert result.ok and not result.failed and Path(result.index) == out / "index.html"
    for run in result:
        assert run.metrics["score"] == pytest.approx(_score(3, run.parameters["model"]))
        for path in (run.html, run.output_notebook, run.metrics_json):
            assert Path(path).is_file() and Path(path).parent == out
        assert json.loads(Path(run.metrics_json).read_text())["parameters"] == {
            "model": run.parameters["model"]
        }
    assert sorted(p.name for p in out.iterdir()) == [
        "index.html",
        "sweep.json",
        "sweep_toy__model-dnn.html",
        "sweep_toy__model-dnn.ipynb",
        "sweep_toy__model-dnn.metrics.json",
        "sweep_toy__model-unet.html",
        "sweep_toy__model-unet.ipynb",
        "sweep_toy__model-unet.metrics.json",
    ]


def test_outputs_go_to_an_object_store_through_a_client(tmp_path):
    """memory:// is an object store without renames on disk; an in-process cluster shares it with the test."""
    import distributed
    import fsspec

    mem = fsspec.filesystem("memory")
    with (
        distributed.LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=False,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
            scheduler_kwargs={"dashboard": False},
        ) as local,
        distributed.Client(local, set_as_default=False) as client,
    ):
        result = sw.sweep(TOY, {"n": [4]}, scheduler=client, output="memory://sweeps/toy", progress=False)
    try:
        assert result.ok and result.runs[0].metrics["score"] == 4.0
        assert result.index == "memory://sweeps/toy/index.html"
        names = sorted(p.rsplit("/", 1)[1] for p in mem.ls("/sweeps/toy", detail=False))
        assert names == [
            "index.html",
            "sweep.json",
            "sweep_toy__n-4.html",
            "sweep_toy__n-4.ipynb",
            "sweep_toy__n-4.metrics.json",
        ]
        assert "sweep_toy__n-4" in mem.cat("/sweeps/toy/index.html").decode()
    finally:
        mem.rm("/sweeps", recursive=True)


# --- comparison page --------------------------------------------------------------------------------
def _record(name: str, params: dict, metrics: dict, status: str = "ok") -> dict:
    return {
        "name": name,
        "notebook": "rice_mapping.ipynb",
        "parameters": params,
        "status": status,
        "metrics": metrics,
        "html": f"{name}.html",
        "duration_s": 1.0,
    }


def _pivot_cells(page: str, metric: str) -> list[list[str]]:
    table = re.search(
        rf'<table class="tl tl-pivot" id="pivot-{re.escape(metric)}">.*?</table>', page, re.DOTALL
    )
    assert table, f"no pivot for {metric}"
    rows = re.findall(r"<tr>(.*?)</tr>", table.group(0), re.DOTALL)
    return [
        [re.sub(r"<.*?>", "", c).strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r)] for r in rows
    ]


def test_rice_grid_comes_out_as_band_sets_by_models_with_dict_metrics_spread(tmp_path):
    """The layout of the paper's table: band sets down, models across; a metric recorded as a dict
    (``accuracy = {"f1": …, "kappa": …}``) becomes one sortable column and one pivot per entry."""
    from terralab import compare

    bands, models = ["RGBN", "RGBNE", "RGBNS", "RGBNES"], ["unet", "dnn"]
    records = []
    for i, b in enumerate(bands):
        for j, m in enumerate(models):
            f1 = 0.80 + 0.01 * i - 0.05 * j  # made-up layout values: best is RGBNES × unet
            records.append(
                _record(
                    sw.run_name("rice_mapping", {"bands": b, "model": m}),
                    {"bands": b, "model": m},
                    {"accuracy": {"f1": f1, "kappa": f1 - 0.1}, "n_points": 1219},
                )
            )
    records.append(
        _record("rice_mapping__bands-RGBN__model-broken", {"bands": "RGBN", "model": "dnn"}, {}, "failed")
    )
    index = compare.write_comparison(
        tmp_path, {"bands": bands, "model": models}, records=records, notebook="notebooks/rice_mapping.ipynb"
    )
    page = Path(index).read_text()

    cells = _pivot_cells(page, "accuracy.f1")
    assert cells[0] == ["bands \\ model", "unet", "dnn"]
    assert [row[0] for row in cells[1:]] == bands
    assert cells[1][1:] == ["0.8", "0.75"] and cells[4][1:] == ["0.83 ★", "0.78"]
    # A constant (the number of test points) has nothing to compare: no pivot for it.
    assert "pivot-accuracy.kappa" in page and "pivot-n_points" not in page
    best = re.search(r'<p id="best-run".*?</p>', page, re.DOTALL).group(0)
    assert "rice_mapping__bands-RGBNES__model-unet" in best and "accuracy.f1" in best
    assert re.search(r"<th>(?:<span[^>]*>)?accuracy\.f1<", page), "no table column for accuracy.f1"
    assert '"f1":' not in page, "the dict must be spread, not printed as JSON"
    assert 'id="figure-accuracy.f1"' in page
    assert "rice_mapping__bands-RGBN__model-broken" in re.search(
        r'<ul id="failed-runs">.*?</ul>', page, re.DOTALL
    ).group(0)


# --- names and grid ---------------------------------------------------------------------------------
def test_run_names_are_file_system_safe_and_unique():
    points = [
        {"label": "a b"},
        {"label": "a_b"},
        {"label": "../etc/passwd"},
        {"ratio": 0.5, "flag": True},
        {"lr": 1e25, "tag": "x+y=z"},
    ]
    names = sw.run_names("rice mapping", points)
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", n) for n in names), names
    assert names[2] == "rice_mapping__label-etc_passwd"
    assert names[3] == "rice_mapping__ratio-0.5__flag-true"
    assert names[4] == "rice_mapping__lr-1e_25__tag-x_y_z"
    long = sw.run_name("nb", {"x": "y" * 500})
    assert len(long) <= 120 and long != sw.run_name("nb", {"x": "y" * 499})


def test_grid_values_are_typed_from_the_command_line():
    grid = sw.parse_grid(TOY, ["n=1, 2", "model=unet,dnn", "fail_marker=[a, 'b,c']"])
    assert grid == {"n": [1, 2], "model": ["unet", "dnn"], "fail_marker": ["a", "b,c"]}
    with pytest.raises(ParameterError, match="NAME=V1,V2"):
        sw.parse_grid(TOY, ["n"])
    with pytest.raises(ParameterError, match="twice"):
        sw.parse_grid(TOY, ["n=1", "n=2"])
    with pytest.raises(ParameterError, match="'n'.*int"):
        sw.parse_grid(TOY, ["n=1,two"])


# --- bad input --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({"n": [1, "two"]}, r"parameter 'n' .*expects int.*'two'"),
        ({"n": [1.5]}, r"parameter 'n' .*expects int"),
        ({"modle": ["unet"]}, r"does not declare .*'modle' \(did you mean 'model'\?\)"),
        ({}, r"grid is empty"),
        ({"n": []}, r"'n' has no values"),
        ({"n": [1, 1]}, r"repeats"),
    ],
)
def test_bad_grid_is_refused_before_anything_runs(tmp_path, grid, message):
    """An unreachable scheduler would raise SchedulerError: the grid is checked before any connection."""
    out = tmp_path / "out"
    with pytest.raises(ParameterError, match=message):
        sw.sweep(TOY, grid, scheduler=_closed_port_address(), output=out, connect_timeout_s=30)
    assert not out.exists(), "nothing may be written for a refused grid"


def test_all_bad_grid_values_are_reported_at_once():
    with pytest.raises(ParameterError) as info:
        sw.check_grid(TOY, {"n": ["x", 2.5], "model": ["unet"]}, {"work_n": "lots"})
    text = str(info.value)
    assert "'x'" in text and "2.5" in text and "'work_n'" in text and "'lots'" in text


@pytest.mark.parametrize("kind", ["closed port", "silent listener"])
def test_unreachable_scheduler_raises_within_the_connect_timeout(tmp_path, kind):
    listener = None
    if kind == "closed port":
        address = _closed_port_address()
    else:  # accepts the TCP connection and never answers: Client() alone would wait forever
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        address = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    t0 = time.monotonic()
    try:
        with pytest.raises(SchedulerError, match=r"could not reach the Dask scheduler .* within 2 s"):
            sw.sweep(TOY, {"n": [1]}, scheduler=address, output=tmp_path, connect_timeout_s=2)
    finally:
        if listener is not None:
            listener.close()
    assert time.monotonic() - t0 < 8


def test_unwritable_output_is_refused_before_connecting(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputLocationError, match="cannot write to the sweep output"):
        sw.sweep(
            TOY, {"n": [1]}, scheduler=_closed_port_address(), output=blocker / "sweep", connect_timeout_s=30
        )
    with pytest.raises(OutputLocationError, match="cannot use output location"):
        sw.sweep(TOY, {"n": [1]}, scheduler=_closed_port_address(), output="nosuchproto://bucket/x")


def test_cloud_url_without_its_driver_names_the_cloud_extra(monkeypatch):
    """As on a machine without s3fs: the import fails (None in sys.modules) and fsspec has not cached it."""
    import importlib

    registry = importlib.import_module("fsspec.registry")  # the module; fsspec.registry is its read-only view
    monkeypatch.setitem(sys.modules, "s3fs", None)
    monkeypatch.delitem(registry._registry, "s3", raising=False)
    with pytest.raises(MissingDependencyError, match=r"s3://.*\[cloud\]"):
        sw.sweep(TOY, {"n": [1]}, scheduler=_closed_port_address(), output="s3://bucket/sweep")


def test_retry_with_other_fixed_parameters_is_refused(tmp_path):
    (tmp_path / "sweep.json").write_text(
        json.dumps({"notebook": str(TOY), "grid": {"n": [1]}, "parameters": {"model": "unet"}, "runs": []})
    )
    with pytest.raises(InvalidInputError, match="fixed parameters .* differ"):
        sw.sweep(
            TOY,
            None,
            parameters={"model": "dnn"},
            retry_failed=True,
            output=tmp_path,
            scheduler=_closed_port_address(),
        )


def test_zero_workers_is_refused(tmp_path):
    with pytest.raises(InvalidInputError, match="n_workers must be at least 1"):
        sw.sweep(TOY, {"n": [1]}, n_workers=0, output=tmp_path)


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("n_workers", 2.5, "n_workers must be at least 1 (a whole number)"),
        ("n_workers", "two", "n_workers must be at least 1 (a whole number)"),
        ("timeout_s", 0, "timeout_s must be a positive, finite number of seconds"),
        ("timeout_s", float("nan"), "timeout_s must be a positive, finite number of seconds"),
        ("connect_timeout_s", None, "connect_timeout_s must be a number of seconds"),
        ("connect_timeout_s", -1, "connect_timeout_s must be a positive"),
        ("cell_timeout_s", "later", "cell_timeout_s must be a number of seconds"),
    ],
)
def test_numbers_that_make_no_sense_are_refused_before_anything_runs(tmp_path, option, value, message):
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        sw.sweep(TOY, {"n": [1]}, output=tmp_path / "out", **{option: value})
    assert not (tmp_path / "out").exists()


def test_an_unknown_option_is_refused_with_the_names_there_are(tmp_path):
    with pytest.raises(
        InvalidInputError, match=r"sweep\(\) got unknown option\(s\) 'cell_timeout'.*cell_timeout_s"
    ):
        sw.sweep(TOY, {"n": [1]}, output=tmp_path / "out", cell_timeout=5)
    assert not (tmp_path / "out").exists()


def test_retry_without_an_earlier_sweep_says_so(tmp_path):
    with pytest.raises(InvalidInputError, match="no earlier sweep"):
        sw.sweep(TOY, None, retry_failed=True, output=tmp_path, scheduler=_closed_port_address())


# --- attempts and resuming --------------------------------------------------------------------------
def _toy_sha() -> str:
    import hashlib

    return hashlib.sha256(TOY.read_bytes()).hexdigest()


def _toy_record(n: int, *, sweep_id: str = "s1", attempt: int = 1, status: str = "ok") -> dict:
    name = f"sweep_toy__n-{n}"
    return {
        "name": name,
        "notebook": str(TOY),
        "parameters": {"n": n},
        "status": status,
        "started": "2026-01-01T00:00:00+00:00",
        "duration_s": 1.0,
        "metrics": {"score": float(n)} if status == "ok" else {},
        "error": None if status == "ok" else {"ename": "Cancelled", "evalue": "interrupted"},
        "html": f"{name}.html" if status == "ok" else None,
        "output_notebook": f"{name}.ipynb" if status == "ok" else None,
        "attempt": attempt,
        "sweep_id": sweep_id,
    }


def _interrupted_sweep(out: Path, runs: list[dict], *, outcome: str = "interrupted", sha: str | None = None):
    """An output folder as an attempt of `terralab sweep TOY --grid n=1,2` leaves it when stopped."""
    out.mkdir(parents=True, exist_ok=True)
    state = {
        "version": 2,
        "id": "s1",
        "notebook": str(TOY),
        "notebook_sha256": sha or _toy_sha(),
        "grid": {"n": [1, 2]},
        "parameters": {},
        "attempts": [{"attempt": 1, "outcome": outcome, "mode": "new", "scheduler": "LocalCluster"}],
        "runs": runs,
    }
    (out / "sweep.json").write_text(json.dumps(state))
    for run in runs:
        if run["status"] == "ok":
            for ext in (".html", ".ipynb"):
                (out / f"{run['name']}{ext}").write_text("x")
            (out / f"{run['name']}.metrics.json").write_text(json.dumps(run))
    return state


def test_restarting_an_interrupted_sweep_keeps_finished_points_and_adopts_runs_that_finished_late(tmp_path):
    """n=1 finished before the interrupt; n=2 was still running on a remote worker when its client died and
    wrote its files afterwards (not in sweep.json). The same command finds both: nothing is left to run,
    so it does not even connect, and the page says which attempt made each run."""
    out = tmp_path / "out"
    _interrupted_sweep(out, [_toy_record(1), _toy_record(2, status="failed")])
    (out / "sweep_toy__n-2.metrics.json").write_text(json.dumps(_toy_record(2)))  # the late finisher
    seen = []
    result = sw.sweep(
        TOY, {"n": [1, 2]}, output=out, scheduler=_closed_port_address(), progress=False, on_start=seen.append
    )
    assert result.ok and [r.metrics["score"] for r in result.runs] == [1.0, 2.0]
    assert seen[0]["mode"] == "resume" and seen[0]["kept"] == 2 and seen[0]["todo"] == 0
    state = json.loads((out / "sweep.json").read_text())
    assert [a["outcome"] for a in state["attempts"]] == ["interrupted", "completed"]
    assert [r["attempt"] for r in state["runs"]] == [1, 1] and state["id"] == "s1"
    page = Path(result.index).read_text()
    assert 'id="sweep-attempts"' in page and "interrupted (Ctrl-C or SIGTERM)" in page
    assert re.search(r"<th>attempt</th>", page)


@pytest.mark.parametrize(
    ("case", "mode", "todo"),
    [
        ("interrupted, same notebook", "resume", 1),
        ("interrupted, notebook changed", "new", 2),
        ("interrupted, --fresh", "new", 2),
        ("completed", "new", 2),
        ("files of another sweep", "resume", 2),
    ],
)
def test_what_a_restart_runs_again(tmp_path, case, mode, todo):
    """Only an unfinished attempt of the same notebook (by content) is resumed; a finished sweep, a changed
    notebook or --fresh runs every point. A start that cannot reach its cluster leaves sweep.json as it
    was."""
    out = tmp_path / "out"
    first = _toy_record(1, sweep_id="other" if case == "files of another sweep" else "s1")
    state = _interrupted_sweep(
        out,
        [first],
        outcome="completed" if case == "completed" else "interrupted",
        sha="0" * 64 if "changed" in case else None,
    )
    if case == "files of another sweep":  # n=1's files are there, not listed, and made by another sweep
        state["runs"] = []
        (out / "sweep.json").write_text(json.dumps(state))
    seen = []
    with pytest.raises(SchedulerError):
        sw.sweep(
            TOY,
            {"n": [1, 2]},
            output=out,
            scheduler=_closed_port_address(),
            connect_timeout_s=2,
            fresh=case.endswith("--fresh"),
            on_start=seen.append,
        )
    assert (seen[0]["mode"], seen[0]["todo"]) == (mode, todo)
    assert json.loads((out / "sweep.json").read_text()) == state


def test_retry_failed_and_fresh_together_are_refused(tmp_path):
    with pytest.raises(InvalidInputError, match="contradict"):
        sw.sweep(TOY, None, retry_failed=True, fresh=True, output=tmp_path)


def test_comparison_page_shows_the_attempt_of_each_run():
    from terralab import compare, report

    records = [_toy_record(1, attempt=1), _toy_record(2, attempt=2)]
    attempts = [
        {"attempt": 1, "outcome": "running", "mode": "new", "started": "t1", "scheduler": "tcp://s:8786"},
        {"attempt": 2, "outcome": "completed", "mode": "resume", "kept": 1, "scheduler": "tcp://s:8786"},
    ]
    page = compare.comparison_html(
        report.runs_from_records(records), {"n": [1, 2]}, title="t", attempts=attempts
    )
    table = re.search(r'<table class="tl sortable" id="sweep-runs">.*?</table>', page, re.DOTALL).group(0)
    header = re.findall(r"<th>(?:<span[^>]*>)?([^<]*)", table.split("<tbody>")[0])
    assert header[:5] == ["run", "status", "duration (s)", "attempt", "n"]
    rows = re.findall(r"<tr><td>.*?</tr>", table)
    assert [re.findall(r"<td[^>]*>(.*?)</td>", r)[3] for r in rows] == ["1", "2"]
    attempts_table = re.search(r'<table class="tl" id="sweep-attempts">.*?</table>', page, re.DOTALL).group(0)
    assert "never finished (its client died" in attempts_table and "1 ok, 0 failed" in attempts_table
    single = compare.comparison_html(
        report.runs_from_records(records[:1]), {"n": [1]}, title="t", attempts=attempts[:1]
    )
    assert "sweep-attempts" not in single and "<th>attempt</th>" not in single


# --- command line -----------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    from terralab import cli

    return cli.build_parser()


def test_cli_sweep_lists_failures_and_retry_failed_reruns_only_those(cluster, tmp_path, capsys):
    (tmp_path / "fail-2").touch()  # the notebook raises while fail-<n> exists
    out = tmp_path / "out"
    common = ["-p", "fail_marker", str(tmp_path / "fail-{n}"), "--scheduler", cluster.scheduler_address]
    common += ["-o", str(out), "--no-progress"]
    args = _parser().parse_args(["sweep", str(TOY), "--grid", "n=1,2", *common])
    assert args.func(args) == 1
    text = capsys.readouterr().out
    assert re.search(r"failed\s+sweep_toy__n-2\s+— cell \d+ .*RuntimeError", text)
    assert "1/2 runs ok" in text and "--retry-failed" in text
    ok_json = out / "sweep_toy__n-1.metrics.json"
    first_ok = ok_json.stat().st_mtime_ns, json.loads(ok_json.read_text())["started"]

    (tmp_path / "fail-2").unlink()
    args = _parser().parse_args(
        ["sweep", str(TOY), "--retry-failed", *common]
    )  # the grid comes from sweep.json
    assert args.func(args) == 0
    assert "2/2 runs ok" in capsys.readouterr().out
    assert (ok_json.stat().st_mtime_ns, json.loads(ok_json.read_text())["started"]) == first_ok, (
        "the successful run must not run again"
    )
    state = json.loads((out / "sweep.json").read_text())
    assert [(r["name"], r["status"]) for r in state["runs"]] == [
        ("sweep_toy__n-1", "ok"),
        ("sweep_toy__n-2", "ok"),
    ]
    assert state["runs"][1]["metrics"]["score"] == 2.0


def test_cli_refuses_a_bad_grid_value_with_exit_code_2_and_no_traceback(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "terralab",
            "sweep",
            str(TOY),
            "--grid",
            "n=1,two",
            "-o",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert "parameter 'n'" in proc.stderr and "expects int" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_importing_sweep_and_compare_stays_light():
    code = (
        "import sys, terralab.sweep, terralab.compare; "
        "print(','.join(m for m in ('distributed', 'matplotlib', 'papermill', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"importing terralab.sweep loads {out.stdout.strip()}"


def test_terralab_cli_has_the_sweep_command():
    from terralab import cli

    args = cli.build_parser().parse_args(["sweep", str(TOY), "--grid", "n=1,2"])
    assert args.func is cli._cmd_sweep


# Last in the module: the timed-out run keeps its worker busy for a few seconds after the sweep returns.
def test_sweep_timeout_marks_unfinished_runs_failed(cluster, tmp_path):
    t0 = time.monotonic()
    result = sw.sweep(
        TOY,
        {"work_n": [60_000_000]},
        scheduler=cluster.scheduler_address,
        output=tmp_path,
        timeout_s=1.0,
        progress=False,
    )
    assert time.monotonic() - t0 < 15
    assert result.runs[0].status == "failed" and result.runs[0].error["ename"] == "TimeoutError"
    assert "timeout_s=1" in result.runs[0].error["evalue"]
