"""The Dask cluster a sweep runs on: a LocalCluster of its own, or a running scheduler it connects to.

:func:`local_cluster` starts one single-threaded worker process per run on this machine, with this module as
the workers' preload (:func:`dask_setup`, :func:`dask_teardown`); :class:`ClusterStart` brings it up in the
background while the sweep is checked. :func:`connect` returns a client for either kind and turns an
unreachable or wrong address into a SchedulerError that says what to check.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import traceback
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from distributed import Client, LocalCluster, Worker

__all__ = [
    "ClusterStart",
    "connect",
    "dask_setup",
    "dask_teardown",
    "local_cluster",
    "publishing",
    "wait_for_warm_up",
]

_log = logging.getLogger(__name__)


def local_cluster(n_workers: int, **scheduler_kwargs: Any) -> LocalCluster:
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


def dask_setup(worker: Worker) -> None:
    """Set-up of each LocalCluster worker process (a Dask preload; ``local_cluster`` names this module).

    Ctrl-C in a terminal reaches every process of the command; the sweep stops its workers itself (and records
    what finished), so the workers ignore it instead of each printing a KeyboardInterrupt traceback.
    """
    import atexit
    import signal
    import threading

    global _WARM_UP
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    atexit.register(_leave_at_once)
    # nbformat imports jsonschema, whose optional IRI format checker compiles a Lark grammar on import
    # (rfc3987-syntax: 1.6 s of CPU here, half of a worker's start-up). Notebook validation uses
    # fastjsonschema and never checks IRIs, so these dedicated worker processes go without it.
    sys.modules.setdefault("rfc3987_syntax", None)
    # The worker registers at once and imports what a run needs meanwhile, while the sweep is still checking
    # its input and connecting; otherwise each worker's first run waited for these imports (about a second
    # of CPU per worker, the largest part of a cold sweep's start after the processes themselves).
    _WARM_UP = threading.Thread(target=_warm_up, name="terralab-warm-up", daemon=True)
    _WARM_UP.start()


_WARM_UP: threading.Thread | None = None


def _warm_up() -> None:
    """Do once what a worker's first run would otherwise do first: import the runner (papermill, nbconvert,
    the kernel client, numpy and pandas for the run's record), look up the kernels and the machine's
    addresses, and draw a small report (templates, markdown)."""
    try:
        import jupyter_client.manager  # noqa: F401 - imported for a run to find
        import nbformat
        import papermill  # noqa: F401
        import zmq  # noqa: F401
        from jupyter_client.kernelspec import KernelSpecManager
        from jupyter_client.localinterfaces import is_local_ip

        from . import report
        from .render import render_html
        from .run import run_notebook  # noqa: F401

        KernelSpecManager().find_kernel_specs()
        is_local_ip("127.0.0.1")
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("*warm-up*")])
        run = {"name": "warm-up", "status": "ok", "metrics": {"x": 1.0}, "parameters": {"n": 1}}
        render_html(nb, report.to_jsonable(run, "run"))
    except Exception:  # noqa: BLE001, S110 - a run that needs what failed here reports it itself
        pass


def wait_for_warm_up(timeout_s: float = 120.0) -> None:
    """Wait until this worker's warm-up (``dask_setup``) is done, so a run never imports beside it.

    Returns at once in a process without one (a ``dask worker`` of a remote cluster, or after it finished).
    """
    if _WARM_UP is not None:
        _WARM_UP.join(timeout_s)


def dask_teardown(worker: Worker) -> None:
    """A closing LocalCluster worker stops the kernel of a run it was still executing, at once and quietly.

    The run's thread then only logs that its kernel died; the worker is going away, so its logging goes first.
    A run whose files are being put at the output finishes that first (see :func:`publishing`); any run that
    ends later publishes nothing, so a stopped sweep leaves no files of a run it did not record.
    """
    import logging

    from .kernels import kill_running_kernels

    global _CLOSED
    logging.disable(logging.CRITICAL)
    kill_running_kernels()
    # A copy in progress is let finish (bounded: a stuck upload must not keep the worker alive).
    held = _PUBLISHING.acquire(timeout=30)
    _CLOSED = True
    if held:
        _PUBLISHING.release()


_CLOSED = False
_PUBLISHING = threading.Lock()


@contextlib.contextmanager
def publishing() -> Iterator[bool]:
    """Hold off a closing LocalCluster worker while a run's files are put at the output.

    Yields False once the worker has closed (``dask_teardown``): the sweep that submitted the run has stopped
    and recorded it as not finished, and its files must not appear beside the runs it did record. Outside
    such a worker (a ``dask worker`` of a remote cluster) it always yields True.

    >>> with publishing() as allowed:
    ...     allowed
    True
    """
    with _PUBLISHING:
        yield not _CLOSED


def _leave_at_once() -> None:
    """Exit a LocalCluster worker that has closed normally without the interpreter's teardown.

    Tearing down every module a run imported (papermill, nbconvert, …) takes 0.6 s here, and the sweep waits
    for its workers' processes to end. After ``dask_teardown`` nothing is left to tidy up; a worker that ends
    any other way exits as usual, with its own exit code.
    """
    if not _CLOSED:
        return
    # A run still putting its files at the output (started before the close) finishes that first.
    if _PUBLISHING.acquire(timeout=30):
        _PUBLISHING.release()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001, S110 - a closed stream has nothing to flush
            pass
    os._exit(0)


class ClusterStart:
    """A LocalCluster coming up in a background thread while this process prepares the sweep.

    Starting the scheduler and the worker processes is most of a sweep's fixed cost; the main process
    meanwhile checks the kernel, reads the notebook and imports what it needs, so both happen at once.
    """

    def __init__(self, n_workers: int):
        import concurrent.futures

        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="terralab-cluster")
        # allowed_failures=0 marks a run whose worker died as failed at once instead of replaying it on the
        # next worker.
        self._future = self._pool.submit(local_cluster, n_workers, allowed_failures=0)
        self._pool.shutdown(wait=False)

    def result(self) -> LocalCluster:
        """The started cluster (waits for it)."""
        return self._future.result()

    def discard(self) -> None:
        """Close the cluster once it has started (it may be half-way up): nothing is left running."""
        try:
            cluster = self._future.result()
        except BaseException:  # noqa: BLE001 - a failed start left nothing to close
            return
        cluster.close()


def connect(
    scheduler: Any, n_workers: int, connect_timeout_s: float, starting: ClusterStart | None = None
) -> tuple[Client, LocalCluster | None]:
    """(client, cluster we own or None).

    A LocalCluster when ``scheduler`` is None (``starting``, if given), else a client of that scheduler.
    """
    from .errors import MissingDependencyError, SchedulerError

    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - distributed is a core dependency
        raise MissingDependencyError("sweeps need dask.distributed: pip install 'distributed'") from exc

    _quiet_distributed_cancel_race()
    if isinstance(scheduler, Client):
        return scheduler, None
    if scheduler is None:
        starting = starting or ClusterStart(n_workers)
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
        "Check that the scheduler runs, that the address is tcp://HOST:PORT (default port 8786) and that "
        "this machine can reach it; or leave --scheduler out to run on a LocalCluster here"
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


class _CancelRaceFilter(logging.Filter):
    """Drops the one error record of a race in ``distributed.utils.sync`` (distributed 2026.7).

    Ctrl-C while the client waits makes ``sync`` schedule its ``cancel`` callback on the event loop; when
    the interrupt came before the awaited call had started, ``cancel`` reads a variable not yet bound and
    tornado logs that NameError with its traceback, although the sweep then stops cleanly. Every other record
    passes.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, NameError) or "'future'" not in str(exc):
            return True
        frames = traceback.extract_tb(exc.__traceback__)
        return not (frames and frames[-1].name == "cancel" and "distributed" in frames[-1].filename)


def _quiet_distributed_cancel_race() -> None:
    """Install :class:`_CancelRaceFilter` on tornado's callback logger, once per process."""
    logger = logging.getLogger("tornado.application")
    if not any(isinstance(f, _CancelRaceFilter) for f in logger.filters):
        logger.addFilter(_CancelRaceFilter())


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
