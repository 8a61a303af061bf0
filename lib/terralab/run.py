"""Execute a notebook with parameters (papermill) and render it as a self-contained HTML report (nbconvert).

One run writes three files into the output directory::

    <name>.ipynb          the executed notebook; metadata.terralab holds parameters, metrics, status, timing
    <name>.html           the report: run summary, then the notebook (code hidden unless show_code),
                          figures embedded
    <name>.metrics.json   {name, notebook, parameters, defaults, status, started, duration_s, metrics,
                          error, html, output_notebook}

A failing notebook still writes all three (with papermill's error banner) and returns ``status="failed"``.
The three replace an earlier run's files together, at the end: a rerun that is interrupted (Ctrl-C,
SIGTERM) or dies leaves the earlier run whole, and stops its kernel without a word. The output may be an
fsspec URL (``s3://bucket/runs``); the run is then staged locally and uploaded.
Bad input is refused before anything runs: a missing notebook or kernel, a parameter the notebook does not
declare, a value that does not fit a parameter's type hint, an unreadable parameter file.

This module executes and writes; the jobs around it live beside it: ``terralab.params`` (what a notebook
declares and checking values against it), ``terralab.kernels`` (the kernel: checked, started with the run's
environment, stopped on Ctrl-C/SIGTERM) and ``terralab.render`` (where a run failed, and its HTML page).
Their public names are importable from here as well.

Example
-------
>>> from terralab.run import run_notebook
>>> result = run_notebook("notebooks/das_traffic.ipynb", {"speed_min_kmh": 30}, "reports")   # doctest: +SKIP
>>> result.status, result.html                                                             # doctest: +SKIP
"""

from __future__ import annotations

import copy
import datetime as _dt
import difflib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import report, storage
from .errors import (
    InvalidInputError,
    NotebookExecutionError,
    NotebookNotFoundError,
    OutputLocationError,
    ParameterError,
)
from .files import atomic_paths, put_together
from .kernels import (
    Interrupted,
    check_kernel,
    kernel_manager_class,
    kill_running_kernels,
    stop_kernels_on_signals,
)
from .options import DEFAULT_KERNEL, check_seconds
from .params import (
    Parameter,
    ParamType,
    declared_parameters,
    load_parameters_file,
    parse_parameter_text,
    read_notebook,
    validate_parameters,
)
from .progress import REPORT_RUN_ENV, progress_bar
from .render import locate_error, mark_failure, render_html

__all__ = [
    "DEFAULT_KERNEL",
    "KERNEL_START_ATTEMPTS",
    "Interrupted",
    "ParamType",
    "Parameter",
    "RunResult",
    "check_kernel",
    "declared_parameters",
    "kill_running_kernels",
    "load_parameters_file",
    "parse_parameter_text",
    "read_notebook",
    "render_html",
    "run_all",
    "run_notebook",
    "validate_parameters",
]

_log = logging.getLogger(__name__)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# The three files of a run, in the order they replace an earlier run's: metrics last, so its presence
# (what `terralab report` and sweeps look for) means the run is complete.
_OUTPUT_SUFFIXES = (".ipynb", ".html", ".metrics.json")


# --- results ---------------------------------------------------------------------------------------
@dataclass
class RunResult:
    """What one notebook run produced. ``status`` is ``"ok"`` or ``"failed"``; the files exist either way."""

    name: str
    notebook: Path
    status: str
    output_notebook: Path
    html: Path
    metrics_json: Path
    parameters: dict[str, Any]
    duration_s: float
    started: str
    error: dict[str, Any] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def describe_error(self) -> str:
        """One line naming the failing cell and the exception, or ``""`` when the run succeeded."""
        return report.error_text(self.error)

    def raise_for_status(self) -> RunResult:
        """Raise NotebookExecutionError when the run failed; return self otherwise."""
        if not self.ok:
            raise NotebookExecutionError(
                f"notebook {self.notebook} failed at {self.describe_error()}; see {self.html}"
            )
        return self


def _prepare_output_dir(output_dir: str | os.PathLike) -> Path:
    out = storage.local_path(output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".terralab-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputLocationError(
            f"cannot write to output directory {out} ({exc.strerror or exc}); choose another with -o"
        ) from exc
    return out


def _check_output(output_dir: str | os.PathLike) -> None:
    """Refuse an output folder or URL that cannot be written, before anything runs."""
    if storage.is_url(output_dir):
        storage.open_output(output_dir, what="output directory")
    else:
        _prepare_output_dir(output_dir)


def _recorded_metrics(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    metrics = data.get("metrics") if isinstance(data, dict) else None
    return metrics if isinstance(metrics, dict) else {}


def _jsonable_defaults(declared: dict[str, Parameter]) -> dict[str, Any]:
    out = {}
    for name, p in declared.items():
        if p.has_literal_default:
            try:
                out[name] = report.to_jsonable(p.default, name)
                continue
            except InvalidInputError:
                pass
        out[name] = p.default_text or None
    return out


def run_notebook(
    notebook: str | os.PathLike,
    parameters: dict[str, Any] | None = None,
    output_dir: str | os.PathLike = "reports",
    *,
    name: str | None = None,
    kernel: str = DEFAULT_KERNEL,
    show_code: bool = False,
    cell_timeout_s: float | None = None,
    progress: bool = True,
    parameters_file: str | os.PathLike | None = None,
) -> RunResult:
    """Execute a notebook with papermill and write ``<name>.ipynb``, ``<name>.html``, ``<name>.metrics.json``.

    Parameters
    ----------
    notebook : path
        The ``.ipynb`` to run. It executes in its own directory, so relative paths inside it work.
    parameters : dict, optional
        Values for names declared in the notebook's ``parameters`` cell; they override ``parameters_file``.
    output_dir : path or URL
        Where the three files go (created if missing): a folder, or an fsspec URL such as
        ``s3://bucket/runs`` (the run is staged locally and its files uploaded when it ends; credentials
        come from the environment, see ``terralab.storage``). An earlier run of the same name keeps its
        three files until the new three replace them together, so an interrupted or failed rerun loses
        nothing.
    name : str, optional
        Base name of the outputs; default the notebook's file stem.
    kernel : str
        Registered Jupyter kernel to execute on.
    show_code : bool
        Keep the code cells in the HTML (hidden by default).
    cell_timeout_s : float, optional
        Fail the run when one cell runs longer than this many seconds.
    progress : bool
        Show papermill's progress bar.
    parameters_file : path, optional
        A YAML file with one mapping of parameter values.

    Returns
    -------
    RunResult
        ``status`` is ``"failed"`` when a cell raised; the output files are written in both cases.

    Raises
    ------
    NotebookNotFoundError, KernelNotFoundError, ParameterError, OutputLocationError, InvalidInputError
        Before anything is executed or written.
    """
    notebook = Path(notebook)
    cell_timeout_s = check_seconds("cell_timeout_s", cell_timeout_s)
    nb_source = read_notebook(notebook)
    check_kernel(kernel)
    requested: dict[str, Any] = {}
    if parameters_file is not None:
        requested.update(load_parameters_file(parameters_file))
    requested.update(parameters or {})
    params = validate_parameters(notebook, requested)
    declared = declared_parameters(notebook)
    name = name or notebook.stem
    if not _NAME_RE.match(name):
        raise InvalidInputError(
            f"run name {name!r} must be a plain file name (letters, digits, '.', '_', '-'), not a path"
        )
    remote = storage.is_url(output_dir)
    if remote:
        # An object store has no rename and no partial files to watch: the run is staged in a local
        # scratch folder and its three files are uploaded together when it ends.
        target = storage.open_output(output_dir, what="output directory")
        out = Path(tempfile.mkdtemp(prefix="terralab-run-"))
    else:
        out = _prepare_output_dir(output_dir)
    _log.info("running %s as %r on kernel %r, outputs to %s", notebook, name, kernel, os.fspath(output_dir))
    _log.debug("parameters of %r: %s", name, params)
    try:
        result = _execute(
            notebook,
            nb_source,
            params,
            declared,
            out,
            name=name,
            kernel=kernel,
            show_code=show_code,
            cell_timeout_s=cell_timeout_s,
            progress=progress,
        )
        if remote:
            _upload(result, out, *target)
    finally:
        if remote:
            shutil.rmtree(out, ignore_errors=True)
    _log.info("%s: %s in %.1f s, report %s", name, result.status, result.duration_s, result.html)
    return result


def _upload(result: RunResult, staging: Path, fs, root: str, url: str) -> None:
    """Put a run's three staged files at ``root`` of ``fs`` together; ``result`` then names their URLs."""
    put_together(
        fs,
        [(staging / f"{result.name}{s}", storage.join(root, f"{result.name}{s}")) for s in _OUTPUT_SUFFIXES],
    )
    result.output_notebook = storage.join(url, f"{result.name}.ipynb")
    result.html = storage.join(url, f"{result.name}.html")
    result.metrics_json = storage.join(url, f"{result.name}.metrics.json")


def _kernel_env(recorded_path: Path) -> dict[str, str]:
    """What a run's kernel gets added to its environment."""
    # The kernel gets the inline plotting backend even when MPLBACKEND=Agg (the Makefile and the tests set
    # it for headless plotting), which would otherwise keep figures out of the notebook.
    # TERRALAB_REPORT_RUN keeps terralab's progress bars (terralab.progress) out of the report.
    env = {
        report.METRICS_ENV: str(recorded_path),
        REPORT_RUN_ENV: "1",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }
    # OpenMP threads that spin while waiting (torch's default) starve every other process on a busy machine:
    # the rice notebook took 41 s instead of 12 s beside one busy core (10.2 s vs 11.4 s when idle).
    # Sweeps put several kernels on the same cores, so kernels wait passively unless the user chose otherwise.
    env["OMP_WAIT_POLICY"] = os.environ.get("OMP_WAIT_POLICY") or "PASSIVE"
    return env


#: Tries to start a run's kernel: one that dies or stays silent before it answers (jupyter_client's
#: "Kernel died before replying to kernel_info"; seen under load, when several kernels start at once on a busy
#: machine) ran none of the notebook, so the run starts another one instead of failing.
KERNEL_START_ATTEMPTS = 2
_KERNEL_START_FAILURES = ("Kernel died before replying to kernel_info", "Kernel didn't respond in")


def _papermill(
    notebook: Path,
    running_path: Path,
    params: dict[str, Any],
    kernel_manager,
    *,
    kernel: str,
    cell_timeout_s: float | None,
    progress: bool,
) -> tuple[dict[str, Any] | None, bool, float]:
    """Execute with papermill into ``running_path``: (error or None, raised outside a cell?, seconds)."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    error: dict[str, Any] | None = None
    raised_outside = False
    t0 = time.perf_counter()
    try:
        for attempt in range(1, KERNEL_START_ATTEMPTS + 1):
            try:
                papermill.execute_notebook(
                    str(notebook),
                    str(running_path),
                    parameters=params,
                    kernel_name=kernel,
                    progress_bar=progress,
                    execution_timeout=cell_timeout_s,
                    kernel_manager_class=kernel_manager,
                )
                break
            except RuntimeError as exc:
                if attempt == KERNEL_START_ATTEMPTS or not str(exc).startswith(_KERNEL_START_FAILURES):
                    raise
                _log.warning("%s: the kernel did not start (%s); starting another", notebook.name, exc)
    except PapermillExecutionError as exc:
        error = {
            "cell_index": exc.cell_index,
            "execution_count": exc.exec_count,
            "ename": exc.ename,
            "evalue": exc.evalue,
            "source": "",
        }
    except Exception as exc:  # noqa: BLE001 - timeouts, a dead kernel, a kernel that never started
        raised_outside = True
        text = str(exc).strip()
        error = {
            "cell_index": None,
            "execution_count": None,
            "ename": type(exc).__name__,
            "evalue": text.splitlines()[0] if text else "",
            "source": "",
        }
    return error, raised_outside, round(time.perf_counter() - t0, 3)


def _located(nb, error: dict[str, Any] | None, raised_outside: bool) -> dict[str, Any] | None:
    """``error`` with the user's cell position from the executed notebook, where it can be found."""
    located = locate_error(nb) if error is not None else None
    if located is None:
        return error
    # The notebook knows the user's cell position. For a cell error it also knows the exception; for a
    # timeout or a dead kernel the runner's exception says what happened.
    if raised_outside:
        return {**located, "ename": error["ename"], "evalue": error["evalue"]}
    return {
        **located,
        "ename": located["ename"] or error["ename"],
        "evalue": located["evalue"] or error["evalue"],
    }


def _execute(
    notebook: Path,
    nb_source,
    params: dict[str, Any],
    declared: dict[str, Parameter],
    out: Path,
    *,
    name: str,
    kernel: str,
    show_code: bool,
    cell_timeout_s: float | None,
    progress: bool,
) -> RunResult:
    """Run the notebook and write its three files into the local folder ``out`` (see ``run_notebook``)."""
    import nbformat

    paths = [out / f"{name}{suffix}" for suffix in _OUTPUT_SUFFIXES]
    running_path = out / f".{name}.running.ipynb"
    # record() writes here while the kernel runs. An earlier run's three files stay untouched until the new
    # three replace them together, so an interrupted rerun loses nothing.
    recorded_path = out / f".{name}.running-metrics.json"
    recorded_path.unlink(missing_ok=True)  # left by a run that was killed outright
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    kernels: list = []
    manager = kernel_manager_class(_kernel_env(recorded_path), str(notebook.resolve().parent), kernels)
    try:
        with stop_kernels_on_signals(kernels):
            error, raised_outside, duration_s = _papermill(
                notebook,
                running_path,
                params,
                manager,
                kernel=kernel,
                cell_timeout_s=cell_timeout_s,
                progress=progress,
            )
            nb = (
                nbformat.read(running_path, as_version=4)
                if running_path.exists()
                else copy.deepcopy(nb_source)
            )
            error = _located(nb, error, raised_outside)
            if error is not None:
                mark_failure(nb, error)
            metrics = _recorded_metrics(recorded_path)
            metrics.update(report.metrics_from_notebook(nb))
            run = {
                "name": name,
                "notebook": str(notebook),
                "parameters": report.to_jsonable(params, "parameters"),
                "defaults": _jsonable_defaults(declared),
                "status": "ok" if error is None else "failed",
                "started": started,
                "duration_s": duration_s,
                "metrics": metrics,
                "error": error,
                "kernel": kernel,
                "html": paths[1].name,
                "output_notebook": paths[0].name,
            }
            _write_outputs(nb, run, paths, show_code=show_code, resources_path=notebook.resolve().parent)
    finally:
        running_path.unlink(missing_ok=True)
        recorded_path.unlink(missing_ok=True)
    return RunResult(
        name=name,
        notebook=notebook,
        status=run["status"],
        output_notebook=paths[0],
        html=paths[1],
        metrics_json=paths[2],
        parameters=params,
        duration_s=duration_s,
        started=started,
        error=error,
        metrics=metrics,
    )


def _write_outputs(
    nb, run: dict[str, Any], paths: list[Path], *, show_code: bool, resources_path: Path
) -> None:
    """Write the executed notebook, its HTML report and the metrics JSON to ``paths``, all or none."""
    import nbformat

    nb.metadata["terralab"] = {
        k: run[k] for k in ("parameters", "defaults", "metrics", "status", "duration_s", "started", "error")
    }
    html = render_html(nb, run, show_code=show_code, resources_path=resources_path)
    with atomic_paths(*paths) as (nb_tmp, html_tmp, metrics_tmp):
        nbformat.write(nb, str(nb_tmp))
        html_tmp.write_text(html, encoding="utf-8")
        metrics_tmp.write_text(json.dumps(run, indent=2), encoding="utf-8")


def _match_notebook_keys(
    notebooks: list[Path], parameters_by_notebook: dict[str, Any], notebooks_dir: Path
) -> dict[Path, dict[str, Any]]:
    by_key: dict[str, Path] = {}
    for nb in notebooks:
        for key in (str(nb), nb.name, nb.stem, f"{notebooks_dir.name}/{nb.name}"):
            by_key.setdefault(key, nb)
    out: dict[Path, dict[str, Any]] = {}
    for key, params in parameters_by_notebook.items():
        nb = by_key.get(str(key)) or by_key.get(str(Path(str(key))))
        if nb is None:
            choices = sorted({n.name for n in notebooks})
            close = difflib.get_close_matches(Path(str(key)).name, choices, n=1)
            raise ParameterError(
                f"parameters given for {key!r}, which is not a notebook in {notebooks_dir}"
                + (f" (did you mean {close[0]!r}?)" if close else "")
                + f"; notebooks: {', '.join(choices) or 'none'}"
            )
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise ParameterError(
                f"parameters for {key!r} must be a mapping of names to values, got {params!r}"
            )
        out[nb] = params
    return out


def run_all(
    notebooks_dir: str | os.PathLike = "notebooks",
    output_dir: str | os.PathLike = "reports",
    parameters_by_notebook: dict[str, dict[str, Any]] | None = None,
    *,
    kernel: str = DEFAULT_KERNEL,
    show_code: bool = False,
    cell_timeout_s: float | None = None,
    progress: bool = True,
    on_result: Callable[[RunResult], None] | None = None,
) -> list[RunResult]:
    """Run every ``*.ipynb`` in ``notebooks_dir`` (defaults unless given parameters), then write the index.

    ``parameters_by_notebook`` maps a notebook (``notebooks/x.ipynb``, ``x.ipynb`` or ``x``) to its
    parameters.
    All parameters are checked before the first notebook starts; a failing notebook does not stop the others.
    ``on_result`` is called after each run (the CLI prints a line). ``<output_dir>/index.html`` is
    written last. With ``progress``, a bar over the notebooks (``terralab.progress``: drawn when a person is
    watching) sits above each run's bar over its cells.
    """
    notebooks_dir = Path(notebooks_dir)
    cell_timeout_s = check_seconds("cell_timeout_s", cell_timeout_s)
    if not notebooks_dir.is_dir():
        raise NotebookNotFoundError(f"notebook directory {notebooks_dir} does not exist")
    notebooks = sorted(p for p in notebooks_dir.glob("*.ipynb") if not p.name.startswith("."))
    if not notebooks:
        raise NotebookNotFoundError(f"no notebooks (*.ipynb) in {notebooks_dir}")
    check_kernel(kernel)
    chosen = _match_notebook_keys(notebooks, parameters_by_notebook or {}, notebooks_dir)
    checked = {nb: validate_parameters(nb, chosen.get(nb, {})) for nb in notebooks}
    _check_output(output_dir)
    _log.info("running %d notebook(s) from %s", len(notebooks), notebooks_dir)
    results = []
    with progress_bar(
        total=len(notebooks), desc="notebooks", unit="notebook", enabled=None if progress else False
    ) as bar:
        for nb in notebooks:
            bar.set_postfix_str(nb.stem)
            result = run_notebook(
                nb,
                checked[nb],
                output_dir,
                kernel=kernel,
                show_code=show_code,
                cell_timeout_s=cell_timeout_s,
                progress=progress,
            )
            results.append(result)
            bar.update(1)
            if on_result is not None:
                with bar.external_write_mode():  # the caller's lines go above the bar, not through it
                    on_result(result)
    report.build_index(output_dir)
    return results
