"""A sweep's bookkeeping in ``sweep.json``: its attempts, which grid points are done, what to run next.

Every call of ``terralab.sweep.sweep`` is an *attempt*. :func:`plan_attempt` reads the output's earlier
``sweep.json`` and decides what this attempt keeps and what it runs: after an unfinished attempt (Ctrl-C,
SIGTERM, a killed client, a timeout) of the same notebook and fixed parameters, the grid points that
succeeded are kept, including runs a remote cluster finished after their client had gone; with
``retry_failed`` every successful point is kept; otherwise all run. :meth:`SweepPlan.save` rewrites
``sweep.json`` atomically after every finished run, so a client killed at any moment leaves a state the next
attempt can resume from.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import FileFormatError, InvalidInputError
from .sweep_grid import check_grid, run_names

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

__all__ = [
    "STATE_FILE",
    "SweepPlan",
    "describe_exception",
    "failure_record",
    "lost_worker",
    "plan_attempt",
    "read_state",
    "same_values",
]

STATE_FILE = "sweep.json"
_log = logging.getLogger(__name__)


def read_state(fs: AbstractFileSystem, root: str) -> dict[str, Any] | None:
    """The ``sweep.json`` at ``root`` of ``fs``, or None if there is none; FileFormatError if unreadable."""
    path = f"{root}/{STATE_FILE}"
    if not fs.exists(path):
        return None
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


def same_values(a: Any, b: Any) -> bool:
    """Parameter values compared as JSON would store them (a record read back has lists, not tuples).

    >>> same_values({"bands": ("R", "G"), "n": 2}, {"n": 2, "bands": ["R", "G"]})
    True
    """
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
            and same_values(record.get("parameters"), params)
        ):
            found[name] = record
    return found


def failure_record(
    name: str, notebook: str, parameters: dict[str, Any], ename: str, evalue: str
) -> dict[str, Any]:
    """The record of a run that produced no files (a lost worker, a cancelled or timed-out run)."""
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


def lost_worker() -> tuple[str, str]:
    """(ename, evalue) of a run whose Dask worker died."""
    return "KilledWorker", (
        "the Dask worker running this run died (killed, out of memory, or its node was lost); "
        "the other runs were not affected. Rerun it with --retry-failed"
    )


def describe_exception(exc: BaseException) -> tuple[str, str]:
    """(ename, evalue) of the exception a run's task raised: its type and the first line of its message.

    >>> describe_exception(KeyError("B13"))
    ('KeyError', "'B13'")
    """
    kind = type(exc).__name__
    if kind == "KilledWorker":
        return lost_worker()
    text = str(exc).strip()
    return kind, text.splitlines()[0] if text else repr(exc)


def now() -> str:
    """The current UTC time as sweep.json stores it."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class SweepPlan:
    """One attempt of a sweep: its grid, what it keeps from earlier attempts, what it runs and where."""

    notebook: Path
    notebook_sha256: str
    grid: dict[str, list]
    fixed: dict[str, Any]
    names: list[str]
    points: list[dict[str, Any]]
    sweep_id: str
    attempts: list[dict[str, Any]]
    records: dict[str, dict[str, Any]]
    fs: Any
    root: str
    output: str
    local: bool
    todo: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def attempt(self) -> dict[str, Any]:
        """This attempt's entry of ``attempts`` (the last)."""
        return self.attempts[-1]

    @property
    def state_path(self) -> str:
        return f"{self.root}/{STATE_FILE}"

    def task_fields(self) -> dict[str, Any]:
        """What each run's record says about the sweep that made it."""
        return {
            "sweep_id": self.sweep_id,
            "attempt": self.attempt["attempt"],
            "notebook_sha256": self.notebook_sha256,
        }

    def describe(self) -> str:
        """One line for the log: the attempt, what it runs and keeps, where."""
        a = self.attempt
        return (
            f"attempt {a['attempt']} ({a['mode']}): {len(self.todo)} run(s) to do, {len(self.records)} kept, "
            f"on {a['scheduler']}, outputs to {self.output}"
        )

    def save(self) -> None:
        """Write ``sweep.json`` (atomically) with every run recorded so far, in grid order."""
        from .files import write_json_atomic

        state = {
            "version": 2,
            "id": self.sweep_id,
            "notebook": str(self.notebook),
            "notebook_sha256": self.notebook_sha256,
            "grid": self.grid,
            "parameters": self.fixed,
            "output": self.output,
            "updated": now(),
            "attempts": self.attempts,
            "runs": [self.records[n] for n in self.names if n in self.records],
        }
        write_json_atomic(self.state_path, state, fs=self.fs, default=str)

    def end(self, outcome: str) -> None:
        """Give the attempt its outcome (unless the runs gave one, such as "timed out") and its end time."""
        if self.attempt["outcome"] == "running":
            self.attempt["outcome"] = outcome
        self.attempt["ended"] = now()


def plan_attempt(
    notebook: Path,
    grid: dict[str, list] | None,
    parameters: dict[str, Any] | None,
    output: str | os.PathLike,
    *,
    retry_failed: bool,
    fresh: bool,
    scheduler_text: str,
) -> SweepPlan:
    """The next attempt of the sweep of ``notebook`` into ``output`` (see the module's description).

    Raises ParameterError for a bad grid, InvalidInputError when ``retry_failed`` finds no earlier sweep of
    this notebook with the same fixed parameters, OutputLocationError when ``output`` cannot be written.
    """
    from . import storage

    if grid is not None:
        grid, points = check_grid(notebook, grid, parameters)
    fs, root, output_text = storage.open_output(output, what="sweep output")
    local = storage.is_local(fs)
    if local:
        output_text = root
    notebook_sha = hashlib.sha256(notebook.read_bytes()).hexdigest()
    previous = _previous_state(fs, root, output_text, notebook, retry_failed=retry_failed, fresh=fresh)
    if grid is None:
        parameters = (previous.get("parameters") or {}) if parameters is None else parameters
        grid, points = check_grid(notebook, previous["grid"], parameters)
    fixed = {k: v for k, v in points[0].items() if k not in grid}
    same_fixed = previous is not None and same_values(previous.get("parameters") or {}, fixed)
    if retry_failed and not same_fixed:
        # Runs are matched by grid point only; reusing them under other fixed values would mix two sweeps.
        raise InvalidInputError(
            f"--retry-failed: the fixed parameters {fixed} differ from the earlier sweep's "
            f"{previous.get('parameters') or {}} in {output_text}; give the same -p values, or rerun the "
            "whole sweep without --retry-failed"
        )
    resume = False
    if previous is not None and same_fixed:
        last = (previous.get("attempts") or [{}])[-1]
        unfinished = last.get("outcome") in ("running", "interrupted", "timed out")
        resume = retry_failed or (unfinished and previous.get("notebook_sha256") == notebook_sha)
    plan = SweepPlan(
        notebook=notebook,
        notebook_sha256=notebook_sha,
        grid=grid,
        fixed=fixed,
        names=run_names(notebook.stem, [{k: p[k] for k in grid} for p in points]),
        points=points,
        sweep_id=previous.get("id") if resume and previous.get("id") else uuid.uuid4().hex[:12],
        attempts=[],
        records={},
        fs=fs,
        root=root,
        output=output_text,
        local=local,
    )
    if resume:
        _keep_finished(plan, previous)
    plan.todo = [(n, p) for n, p in zip(plan.names, plan.points) if n not in plan.records]
    mode = "retry-failed" if retry_failed else ("resume" if resume else "new")
    plan.attempts.append(
        {
            "attempt": len(plan.attempts) + 1,
            "started": now(),
            "ended": None,
            "outcome": "running",
            "mode": mode,
            "scheduler": scheduler_text,
            "kept": len(plan.records),
            "todo": len(plan.todo),
        }
    )
    return plan


def _previous_state(
    fs, root: str, output_text: str, notebook: Path, *, retry_failed: bool, fresh: bool
) -> dict[str, Any] | None:
    """The earlier sweep.json at the output that this attempt may build on, or None."""
    if retry_failed:
        previous = read_state(fs, root)
        if previous is None:
            raise InvalidInputError(
                f"--retry-failed: there is no earlier sweep in {output_text} (no {STATE_FILE}); run the "
                "sweep without --retry-failed first"
            )
    else:
        try:
            previous = None if fresh else read_state(fs, root)
        except FileFormatError:
            previous = None  # a broken state of some earlier sweep: this one starts afresh and replaces it
    if previous is not None and Path(previous.get("notebook", "")).stem != notebook.stem:
        if retry_failed:
            raise InvalidInputError(
                f"{output_text} holds a sweep of {previous.get('notebook')}, not {notebook}; choose another "
                "output"
            )
        previous = None
    return previous


def _keep_finished(plan: SweepPlan, previous: dict[str, Any]) -> None:
    """Put the earlier attempts, and the grid points that succeeded in them, into ``plan``."""
    plan.attempts = [dict(a) for a in previous.get("attempts") or []]
    if not plan.attempts:  # a sweep.json written before attempts were counted: its runs were attempt 1
        plan.attempts = [{"attempt": 1, "outcome": "completed"}]
    earlier = {r.get("name"): r for r in previous["runs"] if isinstance(r, dict)}
    for n, p in zip(plan.names, plan.points):
        rec = earlier.get(n)
        if rec and rec.get("status") == "ok" and same_values(rec.get("parameters"), p):
            plan.records[n] = {"attempt": 1, **rec}
    wanted = {n: p for n, p in zip(plan.names, plan.points) if n not in plan.records}
    plan.records.update(_finished_outputs(plan.fs, plan.root, wanted, plan.sweep_id))
