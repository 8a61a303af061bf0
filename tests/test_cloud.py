"""Cloud runs for real (issue 14): a Dask cluster of separate processes, started with the ``dask scheduler``
and ``dask worker`` commands users run on a cloud or HPC node, and an S3-compatible object store spoken to
over HTTP (moto's server, in this process). Nothing here is simulated in-process: the sweeps are ``terralab``
commands in their own processes, their runs execute in the worker processes, and every file goes through the
S3 protocol.

* ``terralab run -o s3://…``, ``terralab demo -o s3://…`` and ``terralab sweep -o s3://…`` put every run's
  files, the index and the comparison page in the bucket; ``terralab report s3://…`` rebuilds the index from
  it; credentials come from the environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
  ``AWS_ENDPOINT_URL``) and no output file holds them.
* A worker killed in the middle of a sweep loses its run only: the run is listed as failed and
  ``--retry-failed`` completes it.
* A sweep whose client dies (SIGKILL) or is stopped (Ctrl-C, SIGTERM) resumes when the same command runs
  again: grid points that finished are kept, also one that a worker finished after its client had gone.

The toy notebook ``tests/notebooks_sweep/sweep_toy.ipynb`` holds a run while a marker file exists
(``hold_marker``), writing the pid of the worker process running it beside the marker.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from terralab import cli

TESTS = Path(__file__).parent
ROOT = TESTS.parent
TOY = TESTS / "notebooks_sweep" / "sweep_toy.ipynb"
SQUARE = TESTS / "notebooks" / "square.ipynb"
BIN = Path(sys.executable).parent
BUCKET = "terralab-test"
# Every process a test starts carries this tag in its environment (kernels inherit it too), so the tests can
# show that nothing they started is left running.
TAG = f"terralab-test-{uuid.uuid4().hex[:8]}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(condition, timeout_s: float, what: str, logs: list[Path] = ()) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            tails = "".join(f"\n--- {p.name}:\n{p.read_text()[-2000:]}" for p in logs if p.exists())
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}{tails}")
        time.sleep(0.1)


def _tagged_processes(tag: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("TERRALAB_TEST_TAG") == tag:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def _stop(processes: list[psutil.Process], timeout_s: float = 10) -> None:
    for proc in processes:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(processes, timeout=timeout_s)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=timeout_s)


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "TERRALAB_TEST_TAG": TAG, "PYTHONUNBUFFERED": "1", **extra}


def _terralab(*args, timeout_s: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "terralab"), *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=_env(),
        check=False,
    )


def _start_terralab(*args) -> subprocess.Popen:
    # A command typed in a terminal starts with Ctrl-C at its default action. A child inherits an ignored
    # SIGINT (and Python then leaves it ignored), so whatever this process's own state, the child gets a
    # handled one (handlers, unlike SIG_IGN, are reset to the default on exec).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(
            [str(BIN / "terralab"), *map(str, args)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
            start_new_session=True,  # a process group of its own, as a command typed in a terminal
        )
    finally:
        signal.signal(signal.SIGINT, previous)


def _assert_no_credentials(fs, prefix: str, env: dict[str, str]) -> None:
    paths = fs.find(prefix)
    assert paths, f"nothing under {prefix}"
    for path in paths:
        content = fs.cat_file(path)
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            assert env[name].encode() not in content, f"{path} holds {name}"


# --- fixtures ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def s3():
    """An S3 endpoint on a free loopback port with one bucket; credentials and endpoint in the environment,
    as a user sets them (``AWS_ENDPOINT_URL`` is what points boto-based clients, s3fs included, at it)."""
    import logging

    import s3fs
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ACCESS_KEY_ID": f"AKIATL{secrets.token_hex(7).upper()}",
        "AWS_SECRET_ACCESS_KEY": f"tl-secret-{secrets.token_hex(16)}",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
    }
    try:
        with pytest.MonkeyPatch.context() as mp:
            for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_CONFIG_FILE"):
                mp.delenv(name, raising=False)
            for name, value in env.items():
                mp.setenv(name, value)
            mp.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
            s3fs.S3FileSystem.clear_instance_cache()
            fs = s3fs.S3FileSystem()
            fs.mkdir(BUCKET)
            yield SimpleNamespace(fs=fs, url=f"s3://{BUCKET}", env=env)
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        server.stop()


@pytest.fixture(scope="module")
def dask_cluster(s3, tmp_path_factory):
    """``dask scheduler`` and two ``dask worker --nthreads 1`` processes on loopback, as on a cluster's nodes.

    Started after the S3 fixture, so the workers have the bucket's credentials in their environment (as the
    README tells users). Every process, and whatever it started, is stopped at the end.
    """
    work = tmp_path_factory.mktemp("dask-cluster")
    scheduler_file = work / "scheduler.json"
    logs, started = [], []

    # One run per single-threaded worker at a time (Dask's default lets a worker hold a second task in its
    # own queue, where it would wait behind a held run instead of going to the free worker).
    env = _env(DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION="1.0")

    def start(name: str, *args: str) -> subprocess.Popen:
        log = work / f"{name}.log"
        logs.append(log)
        with open(log, "w") as fh:
            proc = subprocess.Popen(
                [str(BIN / "dask"), *args],
                cwd=work,
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        started.append(proc)
        return proc

    try:
        start(
            "scheduler",
            "scheduler",
            "--host", "127.0.0.1",
            "--port", "0",  # any free port; the workers and the tests read it from the scheduler file
            "--no-dashboard",
            "--scheduler-file", str(scheduler_file),
        )  # fmt: skip
        _wait_for(scheduler_file.exists, 120, "the scheduler", logs)
        address = json.loads(scheduler_file.read_text())["address"]
        workers = [
            start(
                f"worker-{i}",
                "worker",
                address,
                "--nthreads",
                "1",
                "--nworkers",
                "1",
                "--host",
                "127.0.0.1",
                "--no-dashboard",
                "--name",
                f"w{i}",
                "--death-timeout",
                "60",  # a worker whose scheduler is gone exits by itself
                "--local-directory",
                str(work / f"w{i}"),
            )
            for i in (1, 2)
        ]
        from distributed import Client

        with Client(address, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=180)
            worker_pids = set(client.run(os.getpid).values())
        yield SimpleNamespace(address=address, workers=workers, worker_pids=worker_pids, logs=logs)
    finally:
        family = []
        for proc in started:
            try:
                family += [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        _stop(family)
        for proc in started:
            proc.wait(timeout=30)


@pytest.fixture(autouse=True, scope="module")
def _nothing_left_running():
    """After the module, no process started by these tests (scheduler, workers, kernels, CLIs) is running."""
    yield
    left = []
    deadline = time.monotonic() + 15  # a kernel whose worker died notices within a second or two
    while time.monotonic() < deadline:
        left = _tagged_processes(TAG)
        if not left:
            break
        time.sleep(0.5)
    described = []
    for proc in left:  # named before they are stopped: a stopped process has no name to read
        try:
            described.append((proc.pid, proc.name(), " ".join(proc.cmdline())[:200]))
        except psutil.Error:
            described.append((proc.pid, "(gone)", ""))
    _stop(left)
    assert not left, f"processes left running: {described}"


# --- object storage ------------------------------------------------------------------------------------
def test_run_writes_its_three_files_to_the_bucket_and_report_rebuilds_the_index_there(s3, capsys):
    url = f"{s3.url}/runs"
    assert cli.main(["run", str(SQUARE), "-p", "n_points", "3", "-o", url, "--no-progress"]) == 0
    assert f"{url}/square.html" in capsys.readouterr().out
    names = sorted(p.rsplit("/", 1)[1] for p in s3.fs.ls(url))
    assert names == ["square.html", "square.ipynb", "square.metrics.json"], "no temporaries may be left"
    record = json.loads(s3.fs.cat_file(f"{url}/square.metrics.json"))
    assert record["status"] == "ok" and record["metrics"]["total"] == pytest.approx(6.0)
    assert b"data:image/png;base64," in s3.fs.cat_file(f"{url}/square.html")

    assert cli.main(["report", url, "--title", "Runs in the bucket"]) == 0
    assert f"{url}/index.html  (1 run)" in capsys.readouterr().out
    index = s3.fs.cat_file(f"{url}/index.html").decode()
    assert "<title>Runs in the bucket</title>" in index and '<a href="square.html">square</a>' in index
    _assert_no_credentials(s3.fs, url, s3.env)


def test_demo_writes_every_report_and_the_index_to_the_bucket(s3, tmp_path, capsys):
    """`terralab demo -o s3://…` over a folder of two small notebooks (one fails): every run's three files and
    the index land in the bucket, nothing else, and no file holds the credentials."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    for nb in (SQUARE, TESTS / "notebooks" / "fails.ipynb"):
        (notebooks / nb.name).write_bytes(nb.read_bytes())
    url = f"{s3.url}/demo"
    code = cli.main(["demo", "--notebooks-dir", str(notebooks), "-o", url, "--no-progress"])
    captured = capsys.readouterr()
    assert code == 1, captured.err
    assert f"1/2 notebooks ok; index: {url}/index.html" in captured.out and "failed: fails" in captured.err
    names = sorted(p.rsplit("/", 1)[1] for p in s3.fs.ls(url))
    assert names == sorted(
        ["index.html"]
        + [f"{n}{ext}" for n in ("fails", "square") for ext in (".html", ".ipynb", ".metrics.json")]
    ), "no temporaries may be left"
    index = s3.fs.cat_file(f"{url}/index.html").decode()
    assert '<a href="square.html">square</a>' in index and '<a href="fails.html">fails</a>' in index
    assert json.loads(s3.fs.cat_file(f"{url}/square.metrics.json"))["status"] == "ok"
    assert json.loads(s3.fs.cat_file(f"{url}/fails.metrics.json"))["status"] == "failed"
    _assert_no_credentials(s3.fs, url, s3.env)

    assert cli.main(["demo", "--notebooks-dir", str(notebooks), "-o", "s3://no-such-bucket-here/demo"]) == 2
    assert "cannot write to the output directory s3://no-such-bucket-here/demo" in capsys.readouterr().err


def test_a_bucket_that_does_not_exist_is_refused_before_the_run(s3, capsys):
    assert cli.main(["run", str(SQUARE), "-o", "s3://no-such-bucket-here/runs", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert (
        "cannot write to the output directory s3://no-such-bucket-here/runs" in err and "Traceback" not in err
    )
    assert cli.main(["report", f"{s3.url}/nothing-here"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_sweep_on_a_cluster_of_separate_processes_writes_every_run_and_the_comparison_to_the_bucket(
    s3, dask_cluster
):
    url = f"{s3.url}/sweeps/toy"
    proc = _terralab(
        "sweep", TOY, "--grid", "n=1,2", "--grid", "model=unet,dnn",
        "--scheduler", dask_cluster.address, "-o", url, "--no-progress",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "4/4 runs ok" in proc.stdout and f"comparison: {url}/index.html" in proc.stdout
    names = sorted(p.rsplit("/", 1)[1] for p in s3.fs.ls(url))
    runs = [f"sweep_toy__n-{n}__model-{m}" for n in (1, 2) for m in ("unet", "dnn")]
    assert names == sorted(
        ["index.html", "sweep.json"] + [r + ext for r in runs for ext in (".html", ".ipynb", ".metrics.json")]
    )
    state = json.loads(s3.fs.cat_file(f"{url}/sweep.json"))
    for run in state["runs"]:
        assert run["status"] == "ok" and run["attempt"] == 1
        assert run["worker"]["pid"] in dask_cluster.worker_pids, "each run executes in a dask worker process"
        n, model = run["parameters"]["n"], run["parameters"]["model"]
        assert run["metrics"]["score"] == n * {"unet": 1.0, "dnn": 0.5}[model]
    page = s3.fs.cat_file(f"{url}/index.html").decode()
    assert 'id="pivot-score"' in page and "sweep_toy__n-2__model-unet" in re.search(
        r'<p id="best-run".*?</p>', page, re.DOTALL
    ).group(0)
    # `terralab report` on the sweep's URL rebuilds its comparison page from sweep.json and the runs' files
    s3.fs.rm_file(f"{url}/index.html")
    assert cli.main(["report", url]) == 0
    assert 'id="pivot-score"' in s3.fs.cat_file(f"{url}/index.html").decode()
    _assert_no_credentials(s3.fs, url, s3.env)


# --- resuming ------------------------------------------------------------------------------------------
def _start_held_sweep(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen, Path, Path, list[str]]:
    """`terralab sweep` over n=1,2,3 with n=2 held; returns once n=1 and n=3 are recorded and n=2 is held."""
    out, markers = tmp_path / "out", tmp_path / "markers"
    markers.mkdir()
    (markers / "hold-2").touch()
    command = ["sweep", TOY, "--grid", "n=1,2,3", "-p", "hold_marker", f"{markers}/hold-{{n}}", "-o", out,
               "--no-progress", *extra]  # fmt: skip
    proc = _start_terralab(*command)

    def recorded() -> bool:  # n=1 and n=3 finished and the client has recorded them
        try:
            runs = json.loads((out / "sweep.json").read_text())["runs"]
        except (OSError, ValueError, KeyError):
            return False
        return {(r["name"], r["status"]) for r in runs} >= {
            ("sweep_toy__n-1", "ok"),
            ("sweep_toy__n-3", "ok"),
        }

    try:
        _wait_for(lambda: (markers / "hold-2.pid").exists() and recorded() or proc.poll() is not None,
                  240, "n=1 and n=3 to finish while n=2 is held")  # fmt: skip
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    assert proc.poll() is None, proc.communicate()
    return proc, out, markers, command


def test_a_sweep_whose_client_died_resumes_with_the_same_command(dask_cluster, tmp_path):
    """The client is killed outright (SIGKILL: nothing can be recorded then). The run it was waiting for
    goes on in its worker and writes its files after the client has gone. The same command then keeps all
    three finished points and runs nothing again."""
    proc, out, markers, command = _start_held_sweep(tmp_path, "--scheduler", dask_cluster.address)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    state = json.loads((out / "sweep.json").read_text())
    assert state["attempts"][-1]["outcome"] == "running"
    assert sorted(r["name"] for r in state["runs"]) == ["sweep_toy__n-1", "sweep_toy__n-3"]
    finished = {n: (out / f"sweep_toy__n-{n}.metrics.json").read_bytes() for n in (1, 3)}

    (markers / "hold-2").unlink()  # n=2, its client gone, finishes on its worker and writes its files
    _wait_for(
        (out / "sweep_toy__n-2.metrics.json").exists, 120, "the orphaned run to finish", dask_cluster.logs
    )

    again = _terralab(*command)
    assert again.returncode == 0, again.stdout + again.stderr[-3000:]
    assert "resuming the unfinished sweep (attempt 2): 3 grid point(s) already done are kept, 0 to run" in (
        again.stdout
    )
    assert "3/3 runs ok" in again.stdout
    assert {n: (out / f"sweep_toy__n-{n}.metrics.json").read_bytes() for n in (1, 3)} == finished
    state = json.loads((out / "sweep.json").read_text())
    assert [r["attempt"] for r in state["runs"]] == [1, 1, 1]
    assert [a["outcome"] for a in state["attempts"]] == ["running", "completed"]
    page = (out / "index.html").read_text()
    assert "never finished (its client died" in page and 'id="sweep-attempts"' in page


def test_ctrl_c_stops_a_local_sweep_quietly_and_the_same_command_resumes_it(tmp_path):
    """On the LocalCluster `terralab sweep` starts by itself: Ctrl-C stops the workers and the held run's
    kernel, says how to resume, and the same command then runs only n=2, as attempt 2."""
    proc, out, markers, command = _start_held_sweep(tmp_path, "--workers", "2")
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal sends to the whole foreground group
    try:
        _, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:  # say where it hung, and leave nothing running
        os.killpg(proc.pid, signal.SIGKILL)
        _, stderr = proc.communicate(timeout=30)
        pytest.fail(f"the sweep did not stop within 120 s of Ctrl-C; its stderr:\n{stderr[-4000:]}")
    assert proc.returncode == 130
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert stderr.strip().splitlines()[-2:] == [
        (
            "the sweep was stopped; runs that finished are kept in its sweep.json. "
            "Run the same command again "
            "to resume it"
        ),
        "terralab: interrupted",
    ]
    state = json.loads((out / "sweep.json").read_text())
    assert state["attempts"][-1]["outcome"] == "interrupted"
    assert [(r["name"], r["status"]) for r in state["runs"]] == [
        ("sweep_toy__n-1", "ok"), ("sweep_toy__n-2", "failed"), ("sweep_toy__n-3", "ok")
    ]  # fmt: skip
    finished = {n: (out / f"sweep_toy__n-{n}.metrics.json").read_bytes() for n in (1, 3)}

    (markers / "hold-2").unlink()
    again = _terralab(*command)
    assert again.returncode == 0, again.stdout + again.stderr[-3000:]
    assert "resuming the unfinished sweep (attempt 2): 2 grid point(s) already done are kept, 1 to run" in (
        again.stdout
    )
    assert {n: (out / f"sweep_toy__n-{n}.metrics.json").read_bytes() for n in (1, 3)} == finished
    state = json.loads((out / "sweep.json").read_text())
    assert [r["attempt"] for r in state["runs"]] == [1, 2, 1] and {r["status"] for r in state["runs"]} == {
        "ok"
    }
    page = (out / "index.html").read_text()
    table = re.search(r'<table class="tl sortable" id="sweep-runs">.*?</table>', page, re.DOTALL).group(0)
    assert "<th>attempt</th>" in table


def test_sigterm_stops_a_local_sweep_cleanly_and_the_same_command_resumes_it(tmp_path):
    """SIGTERM to the `terralab sweep` process alone (what `kill`, a batch scheduler or a container runtime
    sends): it exits 143 without a traceback, stops its LocalCluster's workers and the held run's kernel
    (no process it started is left), leaves no partial file of the held run, and the same command then runs
    only n=2."""
    proc, out, markers, command = _start_held_sweep(tmp_path, "--workers", "2")
    family = psutil.Process(proc.pid).children(recursive=True)
    worker_pid = int((markers / "hold-2.pid").read_text())  # the worker running n=2
    assert worker_pid in {p.pid for p in family}, "the held run executes in a worker the sweep started"
    assert psutil.Process(worker_pid).children(), "the held run's kernel runs under its worker"
    proc.send_signal(signal.SIGTERM)
    try:
        _, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, stderr = proc.communicate(timeout=30)
        pytest.fail(f"the sweep did not stop within 120 s of SIGTERM; its stderr:\n{stderr[-4000:]}")
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr, stderr
    assert stderr.strip().splitlines()[-1] == "terralab: terminated"
    assert "Run the same command again to resume it" in stderr
    _, alive = psutil.wait_procs(family, timeout=15)
    described = [(p.pid, " ".join(p.cmdline())[:120]) for p in alive if p.is_running()]
    _stop(alive)
    assert not described, f"processes left running after SIGTERM: {described}"

    state = json.loads((out / "sweep.json").read_text())
    assert state["attempts"][-1]["outcome"] == "interrupted"
    assert [(r["name"], r["status"]) for r in state["runs"]] == [
        ("sweep_toy__n-1", "ok"), ("sweep_toy__n-2", "failed"), ("sweep_toy__n-3", "ok")
    ]  # fmt: skip
    complete = sorted(
        f"sweep_toy__n-{n}{ext}" for n in (1, 3) for ext in (".html", ".ipynb", ".metrics.json")
    )
    assert sorted(p.name for p in out.iterdir()) == sorted(["sweep.json", *complete]), (
        "only whole runs and the state: no partial or temporary file of the stopped run"
    )

    (markers / "hold-2").unlink()
    again = _terralab(*command)
    assert again.returncode == 0, again.stdout + again.stderr[-3000:]
    assert "resuming the unfinished sweep (attempt 2): 2 grid point(s) already done are kept, 1 to run" in (
        again.stdout
    )
    assert "3/3 runs ok" in again.stdout
    state = json.loads((out / "sweep.json").read_text())
    assert [r["attempt"] for r in state["runs"]] == [1, 2, 1]


# --- a lost worker (last: it leaves the cluster one worker short) ------------------------------------------
def test_a_worker_killed_mid_sweep_loses_only_its_run_and_retry_failed_completes_it(dask_cluster, tmp_path):
    """The node running n=2 is lost: its `dask worker` process and the worker process under it are killed
    (SIGKILL). The scheduler would send the run to the other worker; the sweep lists it as failed instead, the
    other runs finish, and `--retry-failed` runs n=2 alone."""
    proc, out, markers, _ = _start_held_sweep(tmp_path, "--scheduler", dask_cluster.address)
    worker_pid = int((markers / "hold-2.pid").read_text())
    assert worker_pid in dask_cluster.worker_pids
    node = next(p for p in dask_cluster.workers if p.pid == psutil.Process(worker_pid).ppid())
    os.killpg(node.pid, signal.SIGKILL)  # the nanny and its worker process: a lost node
    node.wait(timeout=30)
    try:
        stdout, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 1, stdout + stderr[-3000:]
    killed = (
        r"failed\s+sweep_toy__n-2\s+— before any cell: KilledWorker: the Dask worker running this run died"
    )
    assert re.search(killed, stdout), stdout
    assert "2/3 runs ok" in stdout and "--retry-failed" in stdout
    finished = {n: (out / f"sweep_toy__n-{n}.metrics.json").read_bytes() for n in (1, 3)}
    assert not (out / "sweep_toy__n-2.metrics.json").exists()

    (markers / "hold-2").unlink()
    retry = _terralab("sweep", TOY, "--retry-failed", "--scheduler", dask_cluster.address, "-o", out,
                      "--no-progress")  # fmt: skip
    assert retry.returncode == 0, retry.stdout + retry.stderr[-3000:]
    assert (
        "attempt 2: 2 successful run(s) kept, 1 to run again" in retry.stdout
        and "3/3 runs ok" in retry.stdout
    )
    assert {n: (out / f"sweep_toy__n-{n}.metrics.json").read_bytes() for n in (1, 3)} == finished
    state = json.loads((out / "sweep.json").read_text())
    assert [(r["status"], r["attempt"]) for r in state["runs"]] == [("ok", 1), ("ok", 2), ("ok", 1)]
    assert [a["mode"] for a in state["attempts"]] == ["new", "retry-failed"]


_CANCEL_RACE = """
import asyncio, os, signal, sys, threading, time
from distributed.utils import LoopRunner, sync
if sys.argv[1] == "filtered":  # what a sweep does: connect() to its cluster (here an in-process one)
    from distributed import Client
    from terralab import cluster
    with Client(processes=False, n_workers=1, dashboard_address=":0") as client:
        assert cluster.connect(client, 1, 5.0) == (client, None)
runner = LoopRunner(asynchronous=False)
runner.start()
runner.loop.add_callback(time.sleep, 1.0)  # the loop is busy: sync's call has not started yet
threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
try:
    sync(runner.loop, asyncio.sleep, 5)
except KeyboardInterrupt:
    print("interrupted")
time.sleep(1.5)  # the loop runs sync's cancel callback meanwhile
runner.stop()
"""


def _record_of(source: str, filename: str) -> logging.LogRecord:
    """The record tornado logs for an exception that ``source``'s ``cancel()`` raises in ``filename``."""
    namespace: dict = {}
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - our own few-line source
    try:
        namespace["outer"]()()
    except Exception:  # noqa: BLE001
        exc_info = sys.exc_info()
    return logging.LogRecord(
        "tornado.application", logging.ERROR, filename, 1, "Exception in callback", (), exc_info
    )


def test_ctrl_c_before_distributed_s_call_starts_prints_no_traceback_and_other_loop_errors_still_do():
    """Ctrl-C while distributed's ``sync`` waits for a call the busy event loop has not started yet makes its
    ``cancel`` callback raise a NameError that tornado logs with a traceback (distributed 2026.7; seen once in
    CI on the Ctrl-C test above). ``cluster.connect`` (every sweep's way to its cluster) installs a logging
    filter that drops that record alone; the filtered run goes through it."""
    import inspect

    import distributed.utils

    from terralab import cluster

    env = {**os.environ, "PYTHONPATH": str(TESTS.parent / "lib")}
    runs = {
        how: subprocess.run(
            [sys.executable, "-c", _CANCEL_RACE, how],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        for how in ("plain", "filtered")
    }
    assert [r.stdout.strip() for r in runs.values()] == ["interrupted", "interrupted"], runs
    race_left = "future: asyncio.Future" in inspect.getsource(distributed.utils.sync)
    assert ("free variable 'future'" in runs["plain"].stderr) == race_left, runs["plain"].stderr
    assert "Traceback" not in runs["filtered"].stderr, runs["filtered"].stderr

    unbound = (
        "def outer():\n    future: object\n    def cancel():\n        return future\n    return cancel\n"
    )
    other = "def outer():\n    def cancel():\n        return 1 / 0\n    return cancel\n"
    filter_ = cluster._CancelRaceFilter()
    assert not filter_.filter(_record_of(unbound, "/site-packages/distributed/utils.py"))
    assert filter_.filter(
        _record_of(unbound, "/site-packages/ours/utils.py")
    )  # another library's error stays
    assert filter_.filter(_record_of(other, "/site-packages/distributed/utils.py"))  # other errors stay
    assert filter_.filter(
        logging.LogRecord("tornado.application", logging.ERROR, "x", 1, "no exception", (), None)
    )
    for _ in range(2):
        cluster._quiet_distributed_cancel_race()
    logger = logging.getLogger("tornado.application")
    assert sum(isinstance(f, cluster._CancelRaceFilter) for f in logger.filters) == 1
