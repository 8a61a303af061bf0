"""Parameter sweeps of a notebook on ``dask.distributed``, compared on one page.

One papermill run per grid point, each a task on a Dask cluster: by default a ``LocalCluster`` on this
machine with one worker process per run (up to the number of cores); given a scheduler address, any Dask
deployment (Kubernetes, an HPC job queue, ``dask-scheduler`` by hand). Each task runs the notebook with
``terralab.run.run_notebook`` into a scratch folder on its worker, then copies the three outputs to the
sweep's output location — a local folder, or any fsspec URL (``s3://``, ``gs://`` with the ``cloud`` extra).
The sweep writes ``sweep.json`` (the grid and every run's record) and ``index.html``, the comparison
report of ``terralab.compare``.

This module runs an attempt; the jobs around it live beside it: ``terralab.sweep_grid`` (the grid, run names,
checks), ``terralab.sweep_state`` (``sweep.json``: attempts, resuming) and ``terralab.cluster`` (starting a
LocalCluster, connecting to a scheduler). ``terralab sweep`` is in ``terralab.cli``.

Failures stay per run: a cell that raises, a kernel or a worker process that dies, are recorded for that
run and listed; the others finish. ``retry_failed=True`` reruns only the grid points without a successful run.
A run whose worker dies is failed on any cluster, not replayed elsewhere by the scheduler.

Every call is an *attempt*, numbered in ``sweep.json`` and in each run's record. An attempt that did not
finish (Ctrl-C, SIGTERM, a killed client, a timeout) is resumed by the same call: grid points that succeeded
with the same notebook and fixed parameters are kept, also runs a remote cluster finished after their client
had gone.

Example
-------
>>> from terralab.sweep import sweep
>>> grid = {"bands": ["RGBN", "RGBNE", "RGBNS", "RGBNES"], "model": ["unet", "dnn"]}
>>> result = sweep("notebooks/rice_mapping.ipynb", grid)  # doctest: +SKIP
>>> result.index, [r.name for r in result.failed]  # doctest: +SKIP
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cluster import ClusterStart, connect, local_cluster
from .errors import InvalidInputError, ParameterError
from .options import DEFAULT_KERNEL, check_count, check_seconds, options_from
from .sweep_grid import check_grid, grid_points, parse_grid, run_name, run_names
from .sweep_state import (
    STATE_FILE,
    SweepPlan,
    describe_exception,
    failure_record,
    plan_attempt,
)
from .sweep_task import WORKER_PID_ENV, execute_point

__all__ = [
    "STATE_FILE",
    "WORKER_PID_ENV",
    "SweepOptions",
    "SweepResult",
    "check_grid",
    "grid_points",
    "local_cluster",
    "parse_grid",
    "run_name",
    "run_names",
    "sweep",
]

_log = logging.getLogger(__name__)


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
    metric: str | None = None,
    directions: dict[str, str] | None = None,
    **options: Any,
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
    metric : str, optional
        Headline metric that picks the best run in the report.
    directions : dict, optional
        ``{metric: "min" | "max"}`` for metrics whose name does not say which way is better.
    **options
        How each run runs, the fields of :class:`SweepOptions`: ``connect_timeout_s`` (seconds to wait for
        the scheduler before raising SchedulerError; 10), ``cell_timeout_s`` (per-cell limit inside each
        run, see ``run_notebook``), ``kernel`` and ``show_code`` (passed to ``run_notebook``), ``progress``
        (a progress bar over runs; True) and ``on_start`` (called with the new attempt's entry of
        ``sweep.json`` — ``attempt``, ``kept``, ``todo`` … — before the first run is submitted; the CLI
        prints what is resumed). Another name raises InvalidInputError.

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
    notebook = Path(notebook)
    _check_notebook(notebook)
    if grid is None and not retry_failed:
        raise ParameterError("no grid given: pass {parameter: [values]} (or --grid NAME=V1,V2)")
    n_workers = check_count("n_workers", n_workers)
    run_options = options_from(SweepOptions, options, caller="sweep")
    how = _Options(
        kernel=run_options.kernel,
        show_code=run_options.show_code,
        cell_timeout_s=check_seconds("cell_timeout_s", run_options.cell_timeout_s),
        timeout_s=check_seconds("timeout_s", timeout_s),
        connect_timeout_s=check_seconds("connect_timeout_s", run_options.connect_timeout_s, allow_none=False),
        progress=run_options.progress,
    )
    if retry_failed and fresh:
        raise InvalidInputError("retry_failed and fresh contradict each other: give one of them")
    # The LocalCluster comes up while this process reads and checks the notebook, the grid and the output,
    # then checks the kernel and connects: starting it is most of a sweep's fixed cost.
    starting = _start_early(notebook, grid, scheduler, n_workers)
    try:
        _check_notebook(notebook)
        plan = plan_attempt(
            notebook,
            grid,
            parameters,
            output if output is not None else Path("reports") / f"sweep-{notebook.stem}",
            retry_failed=retry_failed,
            fresh=fresh,
            scheduler_text="LocalCluster" if scheduler is None else _scheduler_text(scheduler),
        )
    except BaseException:
        if starting is not None:
            starting.discard()
        raise
    _log.info("sweep of %s, %s", notebook, plan.describe())
    if starting is not None and not plan.todo:
        starting.discard()  # everything was done already (a resumed sweep)
        starting = None
    elif starting is None and plan.todo and scheduler is None:
        starting = ClusterStart(n_workers or min(len(plan.todo), os.cpu_count() or 1))
    if run_options.on_start is not None:
        run_options.on_start(dict(plan.attempt))
    close = _run_attempt(plan, scheduler, starting, how)
    plan.end("completed")
    index = _write_page(plan, close, metric=metric, directions=directions)
    return SweepResult(
        notebook=notebook,
        output=plan.output,
        grid=plan.grid,
        runs=[_as_run_result(plan.records[n], plan.output, plan.local) for n in plan.names],
        index=index,
        state=plan.state_path if plan.local else f"{plan.output.rstrip('/')}/{STATE_FILE}",
        attempts=plan.attempts,
    )


def _start_early(notebook: Path, grid: Any, scheduler: Any, n_workers: int | None) -> ClusterStart | None:
    """Start the LocalCluster before the sweep is checked, where its size is known from the grid.

    One worker per grid point, at most one per core (a resumed sweep may need fewer; the extra worker idles).
    Nothing starts for a remote scheduler, a missing notebook or a grid taken from ``sweep.json``.
    """
    if scheduler is not None or grid is None or not isinstance(grid, dict) or not notebook.is_file():
        return None
    if n_workers is None:
        cores = os.cpu_count() or 1
        # As check_grid reads a grid: text or a scalar is one value; an iterable without a length (a
        # generator) is not counted here, so it gets one worker per core.
        sizes = [
            1
            if isinstance(v, (str, bytes)) or not hasattr(v, "__iter__")
            else len(v)
            if hasattr(v, "__len__")
            else cores
            for v in grid.values()
        ]
        n_workers = max(1, min(math.prod(sizes), cores))
    return ClusterStart(n_workers)


def _check_notebook(notebook: Path) -> None:
    from .params import read_notebook

    read_notebook(notebook)


@dataclass(frozen=True)
class SweepOptions:
    """How each run of a sweep runs: the ``**options`` of :func:`sweep` (see there for their meaning)."""

    connect_timeout_s: float = 10.0
    cell_timeout_s: float | None = None
    kernel: str = DEFAULT_KERNEL
    show_code: bool = False
    progress: bool = True
    on_start: Callable[[dict[str, Any]], None] | None = None


@dataclass(frozen=True)
class _Options:
    """How each run of an attempt runs, and how long the attempt may take."""

    kernel: str
    show_code: bool
    cell_timeout_s: float | None
    timeout_s: float | None
    connect_timeout_s: float
    progress: bool


def _run_attempt(
    plan: SweepPlan, scheduler: Any, starting: ClusterStart | None, options: _Options
) -> Callable[[], None] | None:
    """Run the plan's todo list; the function that closes the cluster (None when nothing ran).

    Whatever stops the attempt (Ctrl-C, SIGTERM, an error) closes the cluster, and once the attempt is on
    record marks it "interrupted" in ``sweep.json`` before it propagates.
    """
    written = False

    def connected() -> None:
        # The attempt goes on record once the cluster answers and before any run starts: a client killed
        # from now on leaves it "running", which the next call resumes. Until then the earlier state stays.
        nonlocal written
        plan.save()
        written = True

    if not plan.todo:
        return None
    try:
        return _run_todo(plan, scheduler, starting, options, connected)
    except BaseException:
        if starting is not None:
            starting.discard()
        if written:
            plan.end("interrupted")
            plan.save()
        raise


def _write_page(
    plan: SweepPlan,
    close: Callable[[], None] | None,
    *,
    metric: str | None,
    directions: dict[str, str] | None,
) -> str:
    """Save the final ``sweep.json``, write the comparison page while the cluster closes; its path."""
    from . import compare

    closing = closed = None
    if close is not None:
        # The cluster shuts down (mostly waiting for its processes to exit) while the page is drawn.
        closing = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="terralab-close")
        closed = closing.submit(close)
    try:
        plan.save()
        return compare.write_comparison(
            plan.output,
            plan.grid,
            records=[plan.records[n] for n in plan.names],
            notebook=str(plan.notebook),
            fixed=plan.fixed,
            metric=metric,
            directions=directions,
            attempts=plan.attempts,
        )
    finally:
        if closing is not None:
            closing.shutdown(wait=True)
            closed.result()


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
    plan: SweepPlan,
    scheduler: Any,
    starting: ClusterStart | None,
    options: _Options,
    connected: Callable[[], None],
) -> Callable[[], None]:
    """Connect (or wait for the LocalCluster) and run the plan's todo list on it.

    ``connected`` is called once the cluster answers, before the first run is submitted. Returns the
    function that closes what this call opened, so that the caller can close the cluster while it writes the
    comparison page; on an error it is closed here.
    """
    from .kernels import check_kernel
    from .progress import progress_bar

    if scheduler is None:
        check_kernel(options.kernel)  # workers of a remote cluster have their own kernels
    client, cluster = connect(scheduler, 1, options.connect_timeout_s, starting)

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
        bar = progress_bar(
            total=len(plan.todo), desc=f"sweep {plan.notebook.stem}", unit="run", enabled=options.progress
        )
        _Runs(client, plan, options, bar, throttle=cluster is not None).run()
    except BaseException:
        close()
        raise
    return close


class _Runs:
    """Submit an attempt's runs, collect each as it finishes, record a failure for whatever did not finish.

    Each finished run's record goes into ``plan.records`` and ``sweep.json`` is saved after it.

    With ``throttle`` (our own LocalCluster) a run is submitted only while a worker thread is free, so no
    worker ever holds a second run in its queue: when a worker dies, only the run it was executing is lost.
    (That scheduler fails a task on the first death of its worker.) On a cluster we do not own every run is
    submitted at once, so that an adaptive deployment sees them all and scales up; each task claims its run
    when it starts (``terralab.sweep_task``), so a run whose worker died is failed, not replayed elsewhere.
    """

    def __init__(self, client, plan: SweepPlan, options: _Options, bar, *, throttle: bool):
        from distributed import as_completed

        self.client, self.plan, self.options, self.bar, self.throttle = client, plan, options, bar, throttle
        self.queue = list(plan.todo)
        self.in_flight: dict[Any, tuple[str, dict[str, Any]]] = {}
        self.finished = as_completed(loop=client.loop, timeout=options.timeout_s)
        self.token = uuid.uuid4().hex[:8]
        self.claimed: list[str] = []
        self.notebook_path = str(plan.notebook.resolve())
        self.notebook_text = plan.notebook.read_bytes().decode("utf-8")

    def run(self) -> None:
        timed_out = False
        try:
            self.submit_more()
            try:
                for fut in self.finished:
                    self.collect(fut)
                    self.submit_more()
            except TimeoutError:
                timed_out = True
                self.plan.attempt["outcome"] = "timed out"
        finally:
            self.give_up(timed_out)

    def submit_more(self) -> None:
        capacity = max(1, sum(self.client.nthreads().values())) if self.throttle else len(self.queue)
        while self.queue and len(self.in_flight) < capacity:
            name, params = self.queue.pop(0)
            key = f"terralab-sweep-{self.token}-{name}"
            claim = None if self.throttle else key
            if claim:
                self.claimed.append(claim)
            fut = self.client.submit(
                execute_point,
                self.notebook_path,
                self.notebook_text,
                name,
                params,
                self.plan.output,
                self.options.kernel,
                self.options.show_code,
                self.options.cell_timeout_s,
                {**self.plan.task_fields(), "claim": claim},
                key=key,
                pure=False,
                retries=0,
            )
            self.in_flight[fut] = (name, params)
            self.finished.add(fut)

    def failure(self, name: str, params: dict[str, Any], ename: str, evalue: str) -> dict[str, Any]:
        return {
            **failure_record(name, str(self.plan.notebook), params, ename, evalue),
            **self.plan.task_fields(),
        }

    def collect(self, fut) -> None:
        """Record the run ``fut`` finished (a failure if it raised or its files are not visible here)."""
        name, params = self.in_flight.pop(fut)
        try:
            record = fut.result()
            if record.get("status") == "ok" and not self.plan.fs.exists(
                f"{self.plan.root}/{name}.metrics.json"
            ):
                record = self.failure(
                    name,
                    params,
                    "OutputNotVisible",
                    f"the worker wrote its outputs to {self.plan.output}, but they are not visible there "
                    "from this machine: with a remote scheduler, use a shared file system or an object store "
                    "URL (s3://, gs://) that every worker and this machine can reach",
                )
        except Exception as exc:  # noqa: BLE001 - any task failure is that run's failure
            record = self.failure(name, params, *describe_exception(exc))
        self.plan.records[name] = record
        self.bar.set_postfix_str(f"{name}: {record['status']}", refresh=False)
        self.bar.update(1)
        self.plan.save()

    def give_up(self, timed_out: bool) -> None:
        """Mark every run not finished as failed, cancel those in flight, clear the claims, save the state."""
        from distributed import Event

        for name, params in list(self.in_flight.values()) + self.queue:
            self.plan.records[name] = self.failure(
                name,
                params,
                "TimeoutError" if timed_out else "Cancelled",
                f"not finished within the sweep's timeout_s={self.options.timeout_s:g} s"
                if timed_out
                else (
                    "the sweep was interrupted before this run finished; run the same command again to resume"
                ),
            )
        if self.in_flight:
            self.client.cancel(list(self.in_flight), force=True)
        for key in self.claimed:
            try:
                Event(f"{key}-started", client=self.client).clear()  # clearing removes it from the scheduler
            except Exception:  # noqa: BLE001, S110 - a mark left behind costs the scheduler a few bytes
                pass
        self.bar.close()
        self.plan.save()
