"""Parameter sweeps of a notebook on ``dask.distributed``, compared on one page.

One papermill run per grid point, each a task on a Dask cluster: by default a ``LocalCluster`` on this
machine with one worker process per run (up to the number of cores); given a scheduler address, any Dask
deployment (Kubernetes, an HPC job queue, ``dask-scheduler`` by hand). Each task runs the notebook with
``terralab.run.run_notebook`` into a scratch folder on its worker, then copies the three outputs to the
sweep's output location — a local folder, or any fsspec URL (``s3://``, ``gs://`` with the ``cloud`` extra).
The sweep writes ``sweep.json`` (the grid and every run's record) and ``index.html``, the comparison
report of ``terralab.compare``.

Failures stay per run: a cell that raises, a kernel or a worker process that dies, are recorded for that
run and listed; the others finish. ``retry_failed=True`` reruns only the grid points without a successful run.
A run whose worker dies is failed on any cluster, not replayed elsewhere by the scheduler.

Every call is an *attempt*, numbered in ``sweep.json`` and in each run's record. An attempt that did not finish
(Ctrl-C, SIGTERM, a killed client, a timeout) is resumed by the same call: grid points that succeeded with the
same notebook and fixed parameters are kept, also runs a remote cluster finished after their client had gone.

Example
-------
>>> from terralab.sweep import sweep
>>> result = sweep("notebooks/rice_mapping.ipynb",
...                {"bands": ["RGBN", "RGBNE", "RGBNS", "RGBNES"], "model": ["unet", "dnn"]})  # doctest: +SKIP
>>> result.index, [r.name for r in result.failed]                                            # doctest: +SKIP
"""

from __future__ import annotations

import concurrent.futures
import datetime as _dt
import hashlib
import itertools
import json
import logging
import os
import re
import socket
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .options import DEFAULT_KERNEL, check_count, check_seconds

STATE_FILE = "sweep.json"
_log = logging.getLogger(__name__)
# The pid of the Dask worker process running a task, exported to its kernel: lets a test notebook kill
# its worker the way a lost node would.
WORKER_PID_ENV = "TERRALAB_SWEEP_WORKER_PID"
# Copied in this order: metrics last, so its presence at the destination means the run is complete.
_OUTPUT_SUFFIXES = (".ipynb", ".html", ".metrics.json")
_MAX_NAME = 120


# --- grid ------------------------------------------------------------------------------------------
def grid_points(grid: dict[str, list]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, first parameter varying slowest.

    >>> grid_points({"bands": ["RGBN", "RGBNE"], "model": ["unet", "dnn"]})[1]
    {'bands': 'RGBN', 'model': 'dnn'}
    """
    names = list(grid)
    return [dict(zip(names, combo)) for combo in itertools.product(*(grid[n] for n in names))]


def _slug(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (list, dict, bool)) or value is None else str(value)
    return re.sub(r"[^A-Za-z0-9.-]+", "_", text).strip("_.") or "_"


def run_name(stem: str, point: dict[str, Any]) -> str:
    """A file-system-safe run name for one grid point: ``stem__bands-RGBN__model-unet``.

    Characters other than letters, digits, ``.`` and ``-`` become ``_`` (what ``run_notebook`` accepts as a
    name); names longer than 120 characters are cut and given a hash of the point, so they stay unique.
    """
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("_.-") or "run"
    name = "__".join([base] + [f"{_slug(k)}-{_slug(v)}" for k, v in point.items()])
    if len(name) > _MAX_NAME:
        digest = hashlib.sha1(json.dumps(point, sort_keys=True, default=str).encode()).hexdigest()[:10]
        name = f"{name[: _MAX_NAME - 12]}__{digest}"
    return name


def run_names(stem: str, points: list[dict[str, Any]]) -> list[str]:
    """``run_name`` for every point; points whose names collide (``"a b"`` and ``"a_b"``) get a hash suffix."""
    names = [run_name(stem, p) for p in points]
    seen: dict[str, int] = {}
    for n in names:
        seen[n] = seen.get(n, 0) + 1
    out = []
    for name, point in zip(names, points):
        if seen[name] > 1:
            digest = hashlib.sha1(json.dumps(point, sort_keys=True, default=str).encode()).hexdigest()[:8]
            name = f"{name}__{digest}"
        out.append(name)
    return out


def check_grid(
    notebook: str | os.PathLike, grid: dict[str, Any], fixed: dict[str, Any] | None = None
) -> tuple[dict[str, list], list[dict[str, Any]]]:
    """Validate a grid against the notebook's declared parameters before anything runs.

    Every value of every parameter is checked against its type hint (``terralab.run.validate_parameters``),
    as is every fixed parameter; all problems are reported at once.

    Returns
    -------
    (grid, points)
        The grid with values converted to the declared types, and its points (each with the fixed values).

    Raises
    ------
    ParameterError
        For an empty grid, an empty or duplicated value list, a name also given as fixed, an undeclared name,
        or a value that does not fit its parameter's type.
    """
    from .errors import ParameterError
    from .run import validate_parameters

    fixed = dict(fixed or {})
    if not isinstance(grid, dict) or not grid:
        raise ParameterError(
            "the grid is empty: give at least one parameter with its values, e.g. {'model': ['unet', 'dnn']} "
            "or --grid model=unet,dnn"
        )
    problems = []
    both = sorted(set(grid) & set(fixed))
    if both:
        problems.append(f"{', '.join(both)} given both in the grid and as fixed parameters; keep one")
    checked_fixed = {}
    try:
        checked_fixed = validate_parameters(notebook, fixed)
    except ParameterError as exc:
        problems.append(str(exc))
    checked: dict[str, list] = {}
    for name, values in grid.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            values = [values]
        values = list(values)
        if not values:
            problems.append(f"grid parameter {name!r} has no values")
            continue
        converted = []
        for value in values:
            try:
                converted.append(validate_parameters(notebook, {name: value})[name])
            except ParameterError as exc:
                problems.append(str(exc))
                if "does not declare" in str(exc):
                    break
        dupes = [v for i, v in enumerate(converted) if v in converted[:i]]
        if dupes:
            problems.append(f"grid parameter {name!r} repeats the value(s) {dupes!r}")
        checked[name] = converted
    if problems:
        raise ParameterError("the sweep was not started: " + " | ".join(problems))
    points = [{**checked_fixed, **p} for p in grid_points(checked)]
    return checked, points


def parse_grid(notebook: str | os.PathLike, items: list[str]) -> dict[str, list]:
    """Turn command-line ``NAME=V1,V2`` strings into a typed grid for ``notebook``.

    Values are split on commas and typed like ``-p`` values of ``terralab run`` (``str`` parameters keep
    text, others are read as YAML). A value list that itself holds commas is written as a YAML list:
    ``sizes=[[64, 64], [128, 128]]``.
    """
    import yaml

    from .errors import ParameterError
    from .run import parse_parameter_text

    grid: dict[str, list] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ParameterError(f"--grid {item!r}: write NAME=V1,V2 (e.g. --grid model=unet,dnn)")
        if name in grid:
            raise ParameterError(f"--grid {name} is given twice; list all its values once: {name}=V1,V2")
        if text.lstrip().startswith("["):
            try:
                raw = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise ParameterError(f"--grid {item!r}: the value list is not valid YAML ({exc})") from exc
            if not isinstance(raw, list):
                raise ParameterError(f"--grid {item!r}: expected a YAML list after '='")
            grid[name] = [
                parse_parameter_text(notebook, {name: v})[name] if isinstance(v, str) else v for v in raw
            ]
        else:
            grid[name] = [parse_parameter_text(notebook, {name: v.strip()})[name] for v in text.split(",")]
    return grid


# --- output location -------------------------------------------------------------------------------
def _open_output(output: str | os.PathLike):
    """(filesystem, root path, normalised output) of a local folder or fsspec URL that we can write."""
    from . import storage

    return storage.open_output(output, what="sweep output")


def _is_local(fs) -> bool:
    from . import storage

    return storage.is_local(fs)


def _write_json(fs, target: str, data: Any) -> None:
    from .files import write_json_atomic

    write_json_atomic(target, data, fs=fs, default=str)


def _read_state(fs, root: str) -> dict[str, Any] | None:
    path = f"{root}/{STATE_FILE}"
    if not fs.exists(path):
        return None
    from .errors import FileFormatError

    try:
        state = json.loads(fs.cat_file(path).decode("utf-8"))
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise FileFormatError(
            f"{path} is not a readable sweep state ({exc}); remove it and rerun the whole sweep"
        ) from exc
    if not isinstance(state, dict) or not isinstance(state.get("runs"), list):
        raise FileFormatError(
            f"{path} is not a sweep state (no 'runs' list); remove it and rerun the whole sweep"
        )
    return state


def _same_values(a: Any, b: Any) -> bool:
    """Parameter values compared as JSON would store them (a record read back has lists, not tuples)."""
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def _finished_outputs(fs, root: str, wanted: dict[str, dict[str, Any]], sweep_id: str) -> dict[str, dict]:
    """Successful runs of this sweep found at the output but missing from its sweep.json.

    A client that died (or was interrupted) while a worker of a remote cluster was still running a task
    leaves that run to finish on its own; its files arrive after the client has gone. They are this
    sweep's when their record names the sweep's id and the same parameters; ``wanted`` maps run names to
    the parameters they must have.
    """
    try:
        present = {p.rsplit("/", 1)[-1] for p in fs.glob(f"{root}/*.metrics.json")}
    except Exception:  # noqa: BLE001 - listing is an optimisation; without it nothing is adopted
        return {}
    found = {}
    for name, params in wanted.items():
        if f"{name}.metrics.json" not in present:
            continue
        try:
            record = json.loads(fs.cat_file(f"{root}/{name}.metrics.json").decode("utf-8"))
        except (OSError, ValueError):
            continue
        if (
            isinstance(record, dict)
            and record.get("status") == "ok"
            and record.get("sweep_id") == sweep_id
            and _same_values(record.get("parameters"), params)
        ):
            found[name] = record
    return found


# --- the task each worker runs ---------------------------------------------------------------------
def _claim(key: str) -> bool:
    """Mark run ``key`` as started on the scheduler; True if it had been started before (by a lost worker).

    A scheduler sends a task whose worker died to another worker (up to its ``allowed-failures``, 3 by
    default). A sweep does not want that: a notebook that killed its worker (out of memory, say) would take
    the next worker down too, and a lost run should be listed and rerun on request (``--retry-failed``),
    as on the LocalCluster. The mark is a ``distributed.Event`` named after the task (the sweep clears it).
    """
    from distributed import Event, get_client

    started = Event(f"{key}-started", client=get_client())
    if started.is_set():
        return True
    started.set()
    return False


def _execute_point(
    notebook_path: str,
    notebook_text: str,
    name: str,
    parameters: dict[str, Any],
    destination: str,
    kernel: str,
    show_code: bool,
    cell_timeout_s: float | None,
    sweep: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run one grid point on a worker and copy its three outputs to ``destination``; returns its record.

    The notebook runs from its own path when this worker sees the same file (so relative paths in it
    work); a worker on another machine gets the text and runs it from a scratch folder. ``sweep`` holds
    the sweep's ``id``, ``attempt`` and ``notebook_sha256`` (stored in the record) and ``claim``: the
    task key to claim (see ``_claim``), or None where the scheduler already fails a lost run itself.
    """
    import fsspec

    from . import storage
    from .files import put_together
    from .run import run_notebook

    sweep = sweep or {}
    os.environ[WORKER_PID_ENV] = str(os.getpid())
    if sweep.get("claim") and _claim(sweep["claim"]):
        record = _failure_record(name, notebook_path, parameters, *_lost_worker())
        return {**record, **_sweep_fields(sweep)}
    with tempfile.TemporaryDirectory(prefix="terralab-sweep-") as tmp:
        notebook = Path(notebook_path)
        try:
            same = notebook.is_file() and notebook.read_text(encoding="utf-8") == notebook_text
        except OSError:
            same = False
        if not same:
            notebook = Path(tmp, Path(notebook_path).name)
            notebook.write_text(notebook_text, encoding="utf-8")
        out = Path(tmp, "out")
        result = run_notebook(
            notebook,
            parameters,
            out,
            name=name,
            kernel=kernel,
            show_code=show_code,
            cell_timeout_s=cell_timeout_s,
            progress=False,
        )
        record = json.loads(result.metrics_json.read_text())
        record["notebook"] = notebook_path
        record["worker"] = {"host": socket.gethostname(), "pid": os.getpid()}
        record.update(_sweep_fields(sweep))
        Path(out, f"{name}.metrics.json").write_text(json.dumps(record, indent=2))
        fs, root = fsspec.core.url_to_fs(destination)
        root = root.rstrip("/")
        if storage.is_local(fs):
            fs.makedirs(root, exist_ok=True)
        put_together(
            fs, [(Path(out, name + suffix), f"{root}/{name}{suffix}") for suffix in _OUTPUT_SUFFIXES]
        )
    return record


def _sweep_fields(sweep: dict[str, Any]) -> dict[str, Any]:
    return {k: sweep[k] for k in ("attempt", "sweep_id", "notebook_sha256") if k in sweep}


# --- cluster ---------------------------------------------------------------------------------------
def local_cluster(n_workers: int, **scheduler_kwargs: Any):
    """A ``distributed.LocalCluster`` shaped for sweeps, as ``sweep()`` starts one.

    One single-threaded worker process per run: notebooks run their own kernels, and a run that kills its
    worker takes nothing else down. Loopback only, no dashboard: the cluster lives as long as the sweep.
    ``scheduler_kwargs`` go to the scheduler (e.g. ``allowed_failures=0``).
    """
    import logging

    from distributed import LocalCluster

    return LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",
        silence_logs=logging.ERROR,
        scheduler_kwargs={"dashboard": False, **scheduler_kwargs},
        preload=[__name__],  # dask_setup / dask_teardown below
    )


def dask_setup(worker) -> None:
    """Set-up of each LocalCluster worker process (a Dask preload; ``local_cluster`` names this module).

    Ctrl-C in a terminal reaches every process of the command; the sweep stops its workers itself (and records
    what finished), so the workers ignore it instead of each printing a KeyboardInterrupt traceback.
    """
    import atexit
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    atexit.register(_leave_at_once)
    # nbformat imports jsonschema, whose optional IRI format checker compiles a Lark grammar on import
    # (rfc3987-syntax: 1.6 s of CPU here, half of a worker's start-up). Notebook validation uses fastjsonschema
    # and never checks IRIs, so these dedicated worker processes go without it.
    sys.modules.setdefault("rfc3987_syntax", None)


def dask_teardown(worker) -> None:
    """A closing LocalCluster worker stops the kernel of a run it was still executing, at once and quietly.

    The run's thread then only logs that its kernel died; the worker is going away, so its logging goes first.
    """
    import logging

    from .run import kill_running_kernels

    global _CLOSED
    logging.disable(logging.CRITICAL)
    kill_running_kernels()
    _CLOSED = True


_CLOSED = False


def _leave_at_once() -> None:
    """Exit a LocalCluster worker that has closed normally without the interpreter's teardown.

    Tearing down every module a run imported (papermill, nbconvert, …) takes 0.6 s here, and the sweep waits
    for its workers' processes to end. After ``dask_teardown`` nothing is left to tidy up; a worker that ends
    any other way exits as usual, with its own exit code.
    """
    if not _CLOSED:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001, S110 - a closed stream has nothing to flush
            pass
    os._exit(0)


class _ClusterStart:
    """A LocalCluster coming up in a background thread while this process prepares the sweep.

    Starting the scheduler and the worker processes is most of a sweep's fixed cost; the main process meanwhile
    checks the kernel, reads the notebook and imports what it needs, so both happen at once.
    """

    def __init__(self, n_workers: int):
        import concurrent.futures

        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="terralab-cluster")
        # allowed_failures=0 marks a run whose worker died as failed at once instead of replaying it on the
        # next worker.
        self._future = self._pool.submit(local_cluster, n_workers, allowed_failures=0)
        self._pool.shutdown(wait=False)

    def result(self):
        """The started cluster (waits for it)."""
        return self._future.result()

    def discard(self) -> None:
        """Close the cluster once it has started (it may be half-way up): nothing is left running."""
        try:
            cluster = self._future.result()
        except BaseException:  # noqa: BLE001 - a failed start left nothing to close
            return
        cluster.close()


def _connect(scheduler: Any, n_workers: int, connect_timeout_s: float, starting: _ClusterStart | None = None):
    """(client, cluster we own or None). A LocalCluster when ``scheduler`` is None (``starting``, if given)."""
    from .errors import MissingDependencyError, SchedulerError

    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - distributed is a core dependency
        raise MissingDependencyError("sweeps need dask.distributed: pip install 'distributed'") from exc

    if isinstance(scheduler, Client):
        return scheduler, None
    if scheduler is None:
        starting = starting or _ClusterStart(n_workers)
        cluster = starting.result()
        _log.info("LocalCluster up at %s", getattr(cluster, "scheduler_address", "?"))
        try:
            return Client(cluster, set_as_default=False), cluster
        except BaseException:
            cluster.close()
            raise
    address = str(scheduler)
    if "://" not in address:
        address = f"tcp://{address}"
    advice = (
        "Check that the scheduler runs, that the address is tcp://HOST:PORT (default port 8786) and that this "
        "machine can reach it; or leave --scheduler out to run on a LocalCluster here"
    )
    try:
        identity = _probe_scheduler(address, connect_timeout_s)
    except Exception as exc:  # OSError, TimeoutError, ValueError for a malformed address
        raise SchedulerError(
            f"could not reach the Dask scheduler at {address} within {connect_timeout_s:g} s "
            f"({type(exc).__name__}: {str(exc) or 'no answer'}). {advice}"
        ) from exc
    if not isinstance(identity, dict) or identity.get("type") != "Scheduler":
        raise SchedulerError(
            f"{address} answered, but not as a Dask scheduler ({str(identity)[:200]}). {advice}"
        )
    _log.info("connecting to the Dask scheduler at %s", address)
    try:
        client = Client(address, timeout=connect_timeout_s, set_as_default=False)
    except Exception as exc:  # the scheduler went away between the probe and the connection
        raise SchedulerError(
            f"could not connect to the Dask scheduler at {address}: {exc}. {advice}"
        ) from exc
    return client, None


def _probe_scheduler(address: str, timeout_s: float) -> Any:
    """Ask ``address`` for its identity, giving up after ``timeout_s`` seconds whatever the peer does.

    ``Client(address, timeout=…)`` alone waits forever on a peer that accepts the connection and then says
    nothing; this probe bounds the whole exchange. It runs its own event loop in a helper thread so that it
    also works where a loop is already running (inside Jupyter).
    """
    import asyncio
    import concurrent.futures

    from distributed.comm import connect

    async def ask() -> Any:
        comm = await connect(address, timeout=timeout_s)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    def run() -> Any:
        return asyncio.run(asyncio.wait_for(ask(), timeout_s))

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result(timeout=timeout_s + 5)


def _failure_record(
    name: str, notebook: str, parameters: dict[str, Any], ename: str, evalue: str
) -> dict[str, Any]:
    return {
        "name": name,
        "notebook": notebook,
        "parameters": parameters,
        "status": "failed",
        "started": None,
        "duration_s": None,
        "metrics": {},
        "html": None,
        "output_notebook": None,
        "error": {
            "cell_index": None,
            "execution_count": None,
            "ename": ename,
            "evalue": evalue,
            "source": "",
        },
    }


def _lost_worker() -> tuple[str, str]:
    return "KilledWorker", (
        "the Dask worker running this run died (killed, out of memory, or its node was lost); "
        "the other runs were not affected. Rerun it with --retry-failed"
    )


def _describe_exception(exc: BaseException) -> tuple[str, str]:
    kind = type(exc).__name__
    if kind == "KilledWorker":
        return _lost_worker()
    text = str(exc).strip()
    return kind, text.splitlines()[0] if text else repr(exc)


# --- results ---------------------------------------------------------------------------------------
@dataclass
class SweepResult:
    """What a sweep produced: every run in grid order, and where its comparison report is.

    Iterating a SweepResult, or ``len()``, goes over ``runs``. For a local output, the paths in each
    ``RunResult`` are ``Path`` objects; for a URL output they are URL strings.
    """

    notebook: Path
    output: str
    grid: dict[str, list]
    runs: list = field(default_factory=list)
    index: str = ""
    state: str = ""
    attempts: list = field(default_factory=list)

    @property
    def failed(self) -> list:
        """The runs that did not succeed."""
        return [r for r in self.runs if r.status != "ok"]

    @property
    def ok(self) -> bool:
        """True when every run succeeded."""
        return not self.failed

    def __iter__(self):
        return iter(self.runs)

    def __len__(self) -> int:
        return len(self.runs)


def _as_run_result(record: dict[str, Any], output: str, local: bool):
    from .run import RunResult

    def where(name: str | None):
        if not name:
            return None
        return Path(output, name) if local else f"{output.rstrip('/')}/{name}"

    return RunResult(
        name=record["name"],
        notebook=Path(record.get("notebook") or ""),
        status=record.get("status", "failed"),
        output_notebook=where(record.get("output_notebook")),
        html=where(record.get("html")),
        metrics_json=where(f"{record['name']}.metrics.json") if record.get("html") else None,
        parameters=record.get("parameters") or {},
        duration_s=record.get("duration_s"),
        started=record.get("started"),
        error=record.get("error"),
        metrics=record.get("metrics") or {},
    )


# --- the sweep -------------------------------------------------------------------------------------
def sweep(
    notebook: str | os.PathLike,
    grid: dict[str, list] | None,
    *,
    parameters: dict[str, Any] | None = None,
    scheduler: Any = None,
    output: str | os.PathLike | None = None,
    n_workers: int | None = None,
    retry_failed: bool = False,
    fresh: bool = False,
    timeout_s: float | None = None,
    connect_timeout_s: float = 10.0,
    cell_timeout_s: float | None = None,
    kernel: str = DEFAULT_KERNEL,
    show_code: bool = False,
    metric: str | None = None,
    directions: dict[str, str] | None = None,
    progress: bool = True,
    on_start: Callable[[dict[str, Any]], None] | None = None,
) -> SweepResult:
    """Run a notebook once per grid point on Dask and write the comparison report.

    Parameters
    ----------
    notebook : path
        The notebook; grid names must be declared in its ``parameters`` cell.
    grid : dict of list
        ``{parameter: [values...]}``; one run per combination. May be None with ``retry_failed`` (the grid
        of the previous sweep in ``output`` is used).
    parameters : dict, optional
        Values set to the same thing in every run (e.g. ``{"epochs": 3}``).
    scheduler : str or distributed.Client, optional
        Address of a running Dask scheduler (``tcp://host:8786``) or a Client. Default: a LocalCluster
        on this machine, one single-threaded worker process per run, at most one per core.
    output : path or fsspec URL, optional
        Where the runs, ``sweep.json`` and ``index.html`` go; default ``reports/sweep-<notebook stem>``.
        With a remote scheduler it must be a location every worker can write: a shared file system or an
        object store (``s3://bucket/sweeps/rice``, ``gs://…``; install the ``cloud`` extra).
    n_workers : int, optional
        Worker processes of the LocalCluster (ignored with ``scheduler``); default min(runs, cores).
    retry_failed : bool
        Rerun only the grid points without a successful run in ``output``'s ``sweep.json`` (also after the
        notebook was changed, to fix what failed).
    fresh : bool
        Run every grid point, even when ``output`` holds an unfinished attempt of the same sweep.
    timeout_s : float, optional
        Wall-clock limit of the whole sweep in seconds; runs not finished by then are cancelled and marked
        failed. (On a cluster you do not own, a cancelled run may still finish in the background.)
    connect_timeout_s : float
        Seconds to wait for the scheduler before raising SchedulerError.
    cell_timeout_s : float, optional
        Per-cell limit inside each run (see ``run_notebook``).
    kernel, show_code
        Passed to ``run_notebook``.
    metric : str, optional
        Headline metric that picks the best run in the report.
    directions : dict, optional
        ``{metric: "min" | "max"}`` for metrics whose name does not say which way is better.
    progress : bool
        Show a progress bar over runs.
    on_start : callable, optional
        Called with the new attempt's entry of ``sweep.json`` (``attempt``, ``kept``, ``todo`` …) before the
        first run is submitted; the CLI prints what is resumed.

    Returns
    -------
    SweepResult
        ``runs`` in grid order (``RunResult``; failed ones carry ``error``), ``index`` the report's location.

    Notes
    -----
    **Attempts and resuming.** Every call is an *attempt*, numbered in ``sweep.json``; each run's record
    says which attempt made it, and the comparison page shows it. When the last attempt in ``output`` did
    not finish (interrupted by Ctrl-C or SIGTERM, its client killed, or over ``timeout_s``), the same call
    resumes it: grid points that already succeeded with the same notebook (by content) and the same fixed
    parameters are kept, including runs that a remote cluster finished after their client had gone.
    Otherwise (the last attempt finished, or the notebook changed, or ``fresh=True``) every point runs.

    **Lost workers.** A run whose worker dies is failed and listed at once, on any cluster (a remote
    scheduler would otherwise send it to another worker), and rerun with ``retry_failed``.

    The default LocalCluster starts worker processes the way ``multiprocessing`` does, by importing the
    main module again: in a script, call ``sweep`` under ``if __name__ == "__main__":``.

    Raises
    ------
    ParameterError
        A grid or fixed value that the notebook does not declare or whose type does not fit; nothing runs.
    OutputLocationError, MissingDependencyError
        The output cannot be written (or its fsspec driver is missing); checked before anything runs.
    SchedulerError
        The scheduler could not be reached within ``connect_timeout_s``.
    """
    from . import compare
    from .errors import FileFormatError, InvalidInputError, ParameterError
    from .run import read_notebook

    notebook = Path(notebook)
    read_notebook(notebook)
    stem = notebook.stem
    if grid is None and not retry_failed:
        raise ParameterError("no grid given: pass {parameter: [values]} (or --grid NAME=V1,V2)")
    n_workers = check_count("n_workers", n_workers)
    timeout_s = check_seconds("timeout_s", timeout_s)
    connect_timeout_s = check_seconds("connect_timeout_s", connect_timeout_s, allow_none=False)
    cell_timeout_s = check_seconds("cell_timeout_s", cell_timeout_s)
    if retry_failed and fresh:
        raise InvalidInputError("retry_failed and fresh contradict each other: give one of them")
    if grid is not None:
        grid, points = check_grid(notebook, grid, parameters)
    output = output if output is not None else Path("reports") / f"sweep-{stem}"
    fs, root, output_text = _open_output(output)
    local = _is_local(fs)
    if local:
        output_text = root
    notebook_bytes = notebook.read_bytes()
    notebook_sha = hashlib.sha256(notebook_bytes).hexdigest()

    if retry_failed:
        previous = _read_state(fs, root)
        if previous is None:
            raise InvalidInputError(
                f"--retry-failed: there is no earlier sweep in {output_text} (no {STATE_FILE}); run the sweep "
                "without --retry-failed first"
            )
    else:
        try:
            previous = None if fresh else _read_state(fs, root)
        except FileFormatError:
            previous = None  # a broken state of some earlier sweep: this one starts afresh and replaces it
    if previous is not None and Path(previous.get("notebook", "")).stem != stem:
        if retry_failed:
            raise InvalidInputError(
                f"{output_text} holds a sweep of {previous.get('notebook')}, not {notebook}; choose another output"
            )
        previous = None
    if grid is None:
        parameters = (previous.get("parameters") or {}) if parameters is None else parameters
        grid, points = check_grid(notebook, previous["grid"], parameters)
    fixed = {k: v for k, v in points[0].items() if k not in grid}
    same_fixed = previous is not None and _same_values(previous.get("parameters") or {}, fixed)
    if retry_failed and not same_fixed:
        # Runs are matched by grid point only; reusing them under other fixed values would mix two sweeps.
        raise InvalidInputError(
            f"--retry-failed: the fixed parameters {fixed} differ from the earlier sweep's "
            f"{previous.get('parameters') or {}} in {output_text}; give the same -p values, or rerun the whole "
            "sweep without --retry-failed"
        )
    names = run_names(stem, [{k: p[k] for k in grid} for p in points])

    attempts: list[dict[str, Any]] = []
    resume = False
    if previous is not None and same_fixed:
        last = (previous.get("attempts") or [{}])[-1]
        unfinished = last.get("outcome") in ("running", "interrupted", "timed out")
        resume = retry_failed or (unfinished and previous.get("notebook_sha256") == notebook_sha)
    sweep_id = previous.get("id") if resume and previous.get("id") else uuid.uuid4().hex[:12]
    records: dict[str, dict[str, Any]] = {}
    if resume:
        attempts = [dict(a) for a in previous.get("attempts") or []]
        if not attempts:  # a sweep.json written before attempts were counted: its runs were attempt 1
            attempts = [{"attempt": 1, "outcome": "completed"}]
        earlier = {r.get("name"): r for r in previous["runs"] if isinstance(r, dict)}
        for n, p in zip(names, points):
            rec = earlier.get(n)
            if rec and rec.get("status") == "ok" and _same_values(rec.get("parameters"), p):
                records[n] = {"attempt": 1, **rec}
        records.update(
            _finished_outputs(fs, root, {n: p for n, p in zip(names, points) if n not in records}, sweep_id)
        )
    todo = [(n, p) for n, p in zip(names, points) if n not in records]

    attempt = {
        "attempt": len(attempts) + 1,
        "started": _now(),
        "ended": None,
        "outcome": "running",
        "mode": "retry-failed" if retry_failed else ("resume" if resume else "new"),
        "scheduler": "LocalCluster" if scheduler is None else _scheduler_text(scheduler),
        "kept": len(records),
        "todo": len(todo),
    }
    attempts.append(attempt)
    state_path = f"{root}/{STATE_FILE}"
    _log.info(
        "sweep of %s, attempt %d (%s): %d run(s) to do, %d kept, on %s, outputs to %s",
        notebook,
        attempt["attempt"],
        attempt["mode"],
        len(todo),
        len(records),
        attempt["scheduler"],
        output_text,
    )

    def save_state() -> None:
        runs = [records[n] for n in names if n in records]
        _write_json(
            fs,
            state_path,
            {
                "version": 2,
                "id": sweep_id,
                "notebook": str(notebook),
                "notebook_sha256": notebook_sha,
                "grid": grid,
                "parameters": fixed,
                "output": output_text,
                "updated": _now(),
                "attempts": attempts,
                "runs": runs,
            },
        )

    starting = None
    if todo and scheduler is None:
        # The LocalCluster comes up while this process checks the kernel and connects.
        starting = _ClusterStart(n_workers or min(len(todo), os.cpu_count() or 1))
    if on_start is not None:
        on_start(dict(attempt))
    written = False
    close = None

    def connected() -> None:
        # The attempt goes on record once the cluster answers and before any run starts: a client killed
        # from now on leaves it "running", which the next call resumes. Until then the earlier state stays.
        nonlocal written
        save_state()
        written = True

    try:
        if todo:
            close = _run_todo(
                notebook=notebook,
                notebook_text=notebook_bytes.decode("utf-8"),
                todo=todo,
                records=records,
                scheduler=scheduler,
                starting=starting,
                connect_timeout_s=connect_timeout_s,
                output_text=output_text,
                fs=fs,
                root=root,
                kernel=kernel,
                show_code=show_code,
                cell_timeout_s=cell_timeout_s,
                timeout_s=timeout_s,
                save_state=save_state,
                connected=connected,
                progress=progress,
                stem=stem,
                task_sweep={
                    "sweep_id": sweep_id,
                    "attempt": attempt["attempt"],
                    "notebook_sha256": notebook_sha,
                },
                attempt=attempt,
            )
            starting = None
    except BaseException:
        if starting is not None:
            starting.discard()
        if written:
            if attempt["outcome"] == "running":
                attempt["outcome"] = "interrupted"
            attempt["ended"] = _now()
            save_state()
        raise
    if attempt["outcome"] == "running":
        attempt["outcome"] = "completed"
    attempt["ended"] = _now()
    closing = None
    if close is not None:
        # The cluster shuts down (mostly waiting for its processes to exit) while the page is drawn.
        closing = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="terralab-close")
        closed = closing.submit(close)
    try:
        save_state()
        ordered = [records[n] for n in names]
        index = compare.write_comparison(
            output_text,
            grid,
            records=ordered,
            notebook=str(notebook),
            fixed=fixed,
            metric=metric,
            directions=directions,
            attempts=attempts,
        )
    finally:
        if closing is not None:
            closing.shutdown(wait=True)
            closed.result()
    return SweepResult(
        notebook=notebook,
        output=output_text,
        grid=grid,
        runs=[_as_run_result(r, output_text, local) for r in ordered],
        index=index,
        state=state_path if local else f"{output_text.rstrip('/')}/{STATE_FILE}",
        attempts=attempts,
    )


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _prepare_comparison() -> None:
    """Import and warm up what the comparison page draws with (pandas, matplotlib's Agg canvas).

    Runs in a background thread while the sweep's runs execute elsewhere, so the page is not delayed by
    imports after the last run. Anything that goes wrong here is left for the page itself to report.
    """
    try:
        import io

        import pandas  # noqa: F401
        from matplotlib.figure import Figure

        Figure(figsize=(1, 1)).savefig(io.BytesIO(), format="png")  # loads the font cache and the Agg canvas
    except Exception:  # noqa: BLE001, S110
        pass


def _scheduler_text(scheduler: Any) -> str:
    address = getattr(scheduler, "scheduler", None)
    address = getattr(address, "address", None) or str(scheduler)
    return address if "://" in address or not isinstance(scheduler, str) else f"tcp://{address}"


def _run_todo(
    *,
    notebook: Path,
    notebook_text: str,
    todo: list[tuple[str, dict[str, Any]]],
    records: dict[str, dict[str, Any]],
    scheduler: Any,
    starting: _ClusterStart | None,
    connect_timeout_s: float,
    output_text: str,
    fs,
    root: str,
    kernel: str,
    show_code: bool,
    cell_timeout_s: float | None,
    timeout_s: float | None,
    save_state: Callable[[], None],
    connected: Callable[[], None],
    progress: bool,
    stem: str,
    task_sweep: dict[str, Any],
    attempt: dict[str, Any],
) -> Callable[[], None]:
    """Connect (or wait for the LocalCluster) and run ``todo`` on it.

    ``connected`` is called once the cluster answers, before the first run is submitted. Returns the
    function that closes what this call opened, so that the caller can close the cluster while it writes the
    comparison page; on an error it is closed here.
    """
    from .progress import progress_bar
    from .run import check_kernel

    if scheduler is None:
        check_kernel(kernel)  # workers of a remote cluster have their own kernels
    client, cluster = _connect(scheduler, 1, connect_timeout_s, starting)

    def close() -> None:
        if cluster is not None:
            client.close()
            cluster.close()
        elif not hasattr(scheduler, "submit"):
            client.close()

    try:
        connected()
        # This process waits while the runs execute; it gets ready to draw the comparison page meanwhile
        # (started only now, so that it does not slow the cluster's start-up).
        threading.Thread(target=_prepare_comparison, name="terralab-page-warm-up", daemon=True).start()
        bar = progress_bar(total=len(todo), desc=f"sweep {stem}", unit="run", enabled=progress)
        _run_on_cluster(
            client,
            notebook=notebook,
            notebook_text=notebook_text,
            todo=todo,
            records=records,
            output_text=output_text,
            fs=fs,
            root=root,
            kernel=kernel,
            show_code=show_code,
            cell_timeout_s=cell_timeout_s,
            timeout_s=timeout_s,
            save_state=save_state,
            bar=bar,
            throttle=cluster is not None,
            task_sweep=task_sweep,
            attempt=attempt,
        )
    except BaseException:
        close()
        raise
    return close


def _run_on_cluster(
    client,
    *,
    notebook: Path,
    notebook_text: str,
    todo: list[tuple[str, dict[str, Any]]],
    records: dict[str, dict[str, Any]],
    output_text: str,
    fs,
    root: str,
    kernel: str,
    show_code: bool,
    cell_timeout_s: float | None,
    timeout_s: float | None,
    save_state: Callable[[], None],
    bar,
    throttle: bool,
    task_sweep: dict[str, Any],
    attempt: dict[str, Any],
) -> None:
    """Submit the runs, collect each as it finishes, and record a failure for whatever did not finish.

    ``todo`` holds (run name, parameters) pairs; each finished run's record goes into ``records`` (by
    name) and ``save_state`` is called after it.

    With ``throttle`` (our own LocalCluster) a run is submitted only while a worker thread is free, so no
    worker ever holds a second run in its queue: when a worker dies, only the run it was executing is lost.
    (That scheduler fails a task on the first death of its worker.) On a cluster we do not own every run
    is submitted at once, so that an adaptive deployment sees them all and scales up; each task claims
    its run when it starts (``_claim``), so a run whose worker died is failed, not replayed elsewhere.
    """
    from distributed import Event, as_completed

    nb_path = str(notebook.resolve())
    queue = list(todo)
    in_flight: dict[Any, tuple[str, dict[str, Any]]] = {}
    finished = as_completed(loop=client.loop, timeout=timeout_s)
    token = uuid.uuid4().hex[:8]
    claimed: list[str] = []

    def submit_more() -> None:
        capacity = max(1, sum(client.nthreads().values())) if throttle else len(queue)
        while queue and len(in_flight) < capacity:
            name, params = queue.pop(0)
            key = f"terralab-sweep-{token}-{name}"
            claim = None if throttle else key
            if claim:
                claimed.append(claim)
            fut = client.submit(
                _execute_point,
                nb_path,
                notebook_text,
                name,
                params,
                output_text,
                kernel,
                show_code,
                cell_timeout_s,
                {**task_sweep, "claim": claim},
                key=key,
                pure=False,
                retries=0,
            )
            in_flight[fut] = (name, params)
            finished.add(fut)

    def failure(name: str, params: dict[str, Any], ename: str, evalue: str) -> dict[str, Any]:
        return {**_failure_record(name, str(notebook), params, ename, evalue), **_sweep_fields(task_sweep)}

    timed_out = False
    try:
        submit_more()
        try:
            for fut in finished:
                name, params = in_flight.pop(fut)
                try:
                    record = fut.result()
                    if record.get("status") == "ok" and not fs.exists(f"{root}/{name}.metrics.json"):
                        record = failure(
                            name,
                            params,
                            "OutputNotVisible",
                            f"the worker wrote its outputs to {output_text}, but they are not visible there from "
                            "this machine: with a remote scheduler, use a shared file system or an object store "
                            "URL (s3://, gs://) that every worker and this machine can reach",
                        )
                except Exception as exc:  # noqa: BLE001 - any task failure is that run's failure
                    record = failure(name, params, *_describe_exception(exc))
                records[name] = record
                bar.set_postfix_str(f"{name}: {record['status']}", refresh=False)
                bar.update(1)
                save_state()
                submit_more()
        except TimeoutError:
            timed_out = True
            attempt["outcome"] = "timed out"
    finally:
        unfinished = list(in_flight.values()) + queue
        for name, params in unfinished:
            records[name] = failure(
                name,
                params,
                "TimeoutError" if timed_out else "Cancelled",
                f"not finished within the sweep's timeout_s={timeout_s:g} s"
                if timed_out
                else "the sweep was interrupted before this run finished; run the same command again to resume",
            )
        if in_flight:
            client.cancel(list(in_flight), force=True)
        for key in claimed:
            try:
                Event(f"{key}-started", client=client).clear()  # clearing removes it from the scheduler
            except Exception:  # noqa: BLE001, S110 - a mark left behind costs the scheduler a few bytes
                pass
        bar.close()
        save_state()


# --- command line ----------------------------------------------------------------------------------
def add_cli(subparsers) -> None:
    """Register ``terralab sweep`` on an argparse sub-parser collection; it calls ``main_sweep``."""
    from .options import add_kernel_option, add_output_option, count_option, seconds_option

    p = subparsers.add_parser(
        "sweep",
        help="run a notebook over a parameter grid on Dask and compare the runs",
        description="Run NOTEBOOK once per point of the grid on a Dask cluster (a LocalCluster here unless "
        "--scheduler is given) and write the runs, sweep.json and a comparison index.html to -o. An "
        "interrupted sweep (Ctrl-C, SIGTERM, a killed client) resumes when the same command is run again.",
    )
    p.add_argument("notebook", help="the notebook to sweep")
    p.add_argument(
        "--grid",
        "-g",
        action="append",
        default=[],
        metavar="NAME=V1,V2",
        help="a grid parameter and its values (repeat for more parameters)",
    )
    p.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a parameter set to the same value in every run",
    )
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="address of a running Dask scheduler (tcp://HOST:8786); default a LocalCluster here",
    )
    add_output_option(
        p,
        default=None,
        help="folder or fsspec URL (s3://…, gs://…) for the outputs; default reports/sweep-<notebook>",
    )
    p.add_argument(
        "--workers",
        type=count_option(),
        default=None,
        metavar="N",
        help="worker processes of the LocalCluster (default: one per run, at most one per core)",
    )
    p.add_argument(
        "--retry-failed",
        action="store_true",
        help="rerun only the grid points without a successful run in the output's sweep.json "
        "(the grid comes from there when no --grid is given)",
    )
    p.add_argument(
        "--fresh",
        action="store_true",
        help="run every grid point, even when the output holds an unfinished attempt of the same sweep "
        "(by default that attempt is resumed: points that succeeded are kept)",
    )
    p.add_argument("--metric", default=None, help="headline metric that picks the best run in the report")
    add_kernel_option(p)
    p.add_argument(
        "--cell-timeout", type=seconds_option(), default=None, metavar="SECONDS", help="per-cell time limit"
    )
    p.add_argument(
        "--timeout",
        type=seconds_option(),
        default=None,
        metavar="SECONDS",
        help="time limit of the whole sweep; unfinished runs are marked failed",
    )
    p.add_argument(
        "--connect-timeout",
        type=seconds_option(),
        default=10.0,
        metavar="SECONDS",
        help="seconds to wait for --scheduler (default 10)",
    )
    p.add_argument("--show-code", action="store_true", help="keep code cells in the HTML reports")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=main_sweep)


def main_sweep(args) -> int:
    """Run ``terralab sweep`` from parsed arguments; prints one line per run. Exit code 1 if any run failed."""
    import sys

    from .errors import ParameterError
    from .run import parse_parameter_text

    if not args.grid and not args.retry_failed:
        raise ParameterError("give at least one --grid NAME=V1,V2")
    grid = parse_grid(args.notebook, args.grid) if args.grid else None
    fixed = parse_parameter_text(args.notebook, dict(args.parameter)) if args.parameter else None

    def announce(attempt: dict[str, Any]) -> None:
        if attempt["mode"] == "resume":
            print(
                f"resuming the unfinished sweep (attempt {attempt['attempt']}): {attempt['kept']} grid point(s) "
                f"already done are kept, {attempt['todo']} to run (--fresh runs them all again)",
                flush=True,
            )
        elif attempt["mode"] == "retry-failed":
            print(
                f"attempt {attempt['attempt']}: {attempt['kept']} successful run(s) kept, "
                f"{attempt['todo']} to run again",
                flush=True,
            )

    try:
        result = sweep(
            args.notebook,
            grid,
            parameters=fixed,
            scheduler=args.scheduler,
            output=args.output,
            n_workers=args.workers,
            retry_failed=args.retry_failed,
            fresh=args.fresh,
            timeout_s=args.timeout,
            connect_timeout_s=args.connect_timeout,
            cell_timeout_s=args.cell_timeout,
            kernel=args.kernel,
            show_code=args.show_code,
            metric=args.metric,
            progress=not args.no_progress,
            on_start=announce,
        )
    except KeyboardInterrupt:
        print(
            "the sweep was stopped; runs that finished are kept in its sweep.json. Run the same command again "
            "to resume it",
            file=sys.stderr,
            flush=True,
        )
        raise
    for run in result.runs:
        line = f"{run.status:7s} {run.name}"
        if run.status != "ok":
            line += f"  — {run.describe_error()}"
        print(line)
    print(f"{len(result.runs) - len(result.failed)}/{len(result.runs)} runs ok · comparison: {result.index}")
    if result.failed:
        print(
            f"rerun the failed ones with: terralab sweep {args.notebook} "
            + " ".join(f"--grid {g}" for g in args.grid)
            + f" -o {result.output} --retry-failed"
        )
        return 1
    return 0
