"""The task a sweep's Dask worker runs for one grid point: run the notebook, put its files at the output.

Submitted by ``terralab.sweep``; it lives apart so that a worker imports only what a run needs.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

from .sweep_state import failure_record, lost_worker

__all__ = ["WORKER_PID_ENV", "execute_point"]

# The pid of the Dask worker process running a task, exported to its kernel: lets a test notebook kill
# its worker the way a lost node would.
WORKER_PID_ENV = "TERRALAB_SWEEP_WORKER_PID"
# Copied in this order: metrics last, so its presence at the destination means the run is complete.
_OUTPUT_SUFFIXES = (".ipynb", ".html", ".metrics.json")


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


def execute_point(
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
    from .cluster import publishing, wait_for_warm_up

    wait_for_warm_up()  # imports below never run beside the worker's warm-up imports
    import fsspec

    from . import storage
    from .files import put_together
    from .run import run_notebook

    sweep = sweep or {}
    os.environ[WORKER_PID_ENV] = str(os.getpid())
    if sweep.get("claim") and _claim(sweep["claim"]):
        record = failure_record(name, notebook_path, parameters, *lost_worker())
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
        with publishing() as allowed:
            if not allowed:  # the sweep stopped and closed this worker while the run was ending
                return {
                    **failure_record(name, notebook_path, parameters, *_stopped()),
                    **_sweep_fields(sweep),
                }
            put_together(
                fs, [(Path(out, name + suffix), f"{root}/{name}{suffix}") for suffix in _OUTPUT_SUFFIXES]
            )
    return record


def _stopped() -> tuple[str, str]:
    return "Cancelled", "the sweep was stopped before this run finished; its files were not kept"


def _sweep_fields(sweep: dict[str, Any]) -> dict[str, Any]:
    return {k: sweep[k] for k in ("attempt", "sweep_id", "notebook_sha256") if k in sweep}
