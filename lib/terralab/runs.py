"""Runs on disk or in a bucket: read each run's record, tabulate them, and write the index page.

``terralab run`` leaves ``<name>.metrics.json`` (the run record: status, parameters, metrics, error) beside
its notebook and HTML; :func:`load_runs` reads every record in a folder or under a URL, :func:`best_runs`
marks the best run per metric, and :func:`build_index` writes ``index.html`` over them. Recording metrics
from a notebook is :mod:`terralab.report`, which re-exports these names.

>>> import tempfile
>>> from pathlib import Path
>>> folder = Path(tempfile.mkdtemp())
>>> len(load_runs(folder))
0
>>> build_index(folder).name
'index.html'
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .files import write_text_atomic
from .pages import is_number, markup, render
from .report import STATUS_COLOURS, error_text, format_value, is_table, metric_direction

if TYPE_CHECKING:
    import pandas as pd

_log = logging.getLogger("terralab.report")


# Fields of a run record and the JSON types each may hold; a record that breaks this is shown as
# "unreadable" (like a truncated file) instead of breaking the whole index.
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "notebook": (str, type(None)),
    "status": (str,),
    "started": (str, type(None)),
    "duration_s": (int, float, type(None)),
    "html": (str, type(None)),
    "output_notebook": (str, type(None)),
    "error": (dict, type(None)),
    "parameters": (dict, type(None)),
    "defaults": (dict, type(None)),
    "metrics": (dict, type(None)),
    "attempt": (int, type(None)),
}
_JSON_NAMES = {
    dict: "a mapping",
    list: "a list",
    str: "text",
    int: "a number",
    float: "a number",
    bool: "true/false",
    type(None): "null",
}


def record_problem(data: Any) -> str | None:
    """Why ``data`` is not a usable run record (the content of a ``*.metrics.json``), or None if it is."""
    if not isinstance(data, dict):
        return f"not a mapping but {_JSON_NAMES.get(type(data), type(data).__name__)}"
    for key, types in _FIELD_TYPES.items():
        if key in data and (not isinstance(data[key], types) or isinstance(data[key], bool)):
            wanted = " or ".join(dict.fromkeys(_JSON_NAMES[t] for t in types))
            got = _JSON_NAMES.get(type(data[key]), type(data[key]).__name__)
            return f"field {key!r} is {got}, expected {wanted}"
    return None


def _read_run(path: Path) -> dict[str, Any]:
    return parse_run(path.read_bytes() if path.is_file() else None, path.name)


def parse_run(content: bytes | None, filename: str) -> dict[str, Any]:
    """The run record in a ``*.metrics.json`` file's bytes; a broken file becomes an "unreadable" record.

    Not UTF-8, not JSON, not a mapping, or a field of the wrong type (``"metrics": "oops"``): the record
    keeps the run's name (from ``filename``) with ``status="unreadable"`` and says what is wrong in its error.
    """
    stem = filename.removesuffix(".metrics.json")

    def unreadable(ename: str, evalue: str) -> dict[str, Any]:
        return {"name": stem, "status": "unreadable", "error": {"ename": ename, "evalue": evalue}}

    if content is None:
        return unreadable("FileNotFoundError", f"{filename} could not be read")
    try:
        data = json.loads(content.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return unreadable("UnicodeDecodeError", f"not UTF-8 text ({exc.reason} at byte {exc.start})")
    except json.JSONDecodeError as exc:
        return unreadable(type(exc).__name__, str(exc))
    problem = record_problem(data)
    if problem:
        return unreadable("FileFormatError", problem)
    return _complete_record(data, stem)


def _complete_record(data: dict[str, Any], name: str) -> dict[str, Any]:
    if "status" not in data:
        # Only record() has written here: the run is still going or died before the runner finished it.
        data = {**data, "status": "incomplete"}
    data.setdefault("name", name)
    return data


def _run_files(directory: str | os.PathLike) -> tuple[Any, str, list[str]]:
    """(fs, root, sorted paths of ``*.metrics.json``) in a local folder or an fsspec URL."""
    from . import storage
    from .errors import OutputLocationError

    hint = "run `terralab run` or `terralab demo` first"
    if storage.is_url(directory):
        fs, root = storage.filesystem(directory)
        try:
            if not fs.isdir(root):
                if fs.isfile(root):
                    raise OutputLocationError(
                        f"{directory} is a file, not a folder of runs; give the folder that holds the "
                        "*.metrics.json files"
                    )
                raise OutputLocationError(
                    f"report location {directory} does not exist (no files there); {hint}"
                )
            paths = fs.glob(f"{root}/*.metrics.json")
        except OutputLocationError:
            raise
        except Exception as exc:  # every backend has its own errors for "cannot read here"
            raise OutputLocationError(
                f"cannot read {directory} ({type(exc).__name__}: {exc}); check the URL and its credentials"
            ) from exc
        return fs, root, sorted(p for p in paths if not p.rsplit("/", 1)[-1].startswith("."))
    path = storage.local_path(directory)
    if path.is_file():
        raise OutputLocationError(
            f"{directory} is a file, not a folder; give the folder that holds the runs' *.metrics.json files "
            f"(here: {path.parent})"
        )
    if not path.is_dir():
        raise OutputLocationError(f"report directory {directory} does not exist; {hint}")
    files = sorted(str(p) for p in path.glob("*.metrics.json") if not p.name.startswith("."))
    return None, str(path), files


def load_runs(directory: str | os.PathLike) -> pd.DataFrame:
    """One row per ``*.metrics.json`` in ``directory`` (a folder or an fsspec URL), sorted by run name.

    Columns: ``name, notebook, status, started, duration_s, html, output_notebook, error`` (text),
    ``attempt`` (a sweep's attempt that made the run, else empty), ``parameters`` (the values set for the
    run), ``defaults``, ``metrics`` (dicts), ``path`` (the JSON file), then ``param.<name>`` for every
    effective parameter value and ``metric.<name>`` for every metric (a recorded table stays a dict). Paths
    in ``html``/``output_notebook`` are relative to ``directory``. A file that cannot be read as a run
    record is a row with status ``unreadable``.

    Example
    -------
    >>> import json, tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> record = {"name": "rice", "status": "ok", "metrics": {"rice_f1": 0.91}}
    >>> _ = (folder / "rice.metrics.json").write_text(json.dumps(record))
    >>> load_runs(folder)[["name", "status", "metric.rice_f1"]]
       name status  metric.rice_f1
    0  rice     ok            0.91
    """
    fs, _, paths = _run_files(directory)
    records = []
    for p in paths:
        name = p.rsplit("/", 1)[-1]
        try:
            content = Path(p).read_bytes() if fs is None else fs.cat_file(p)
        except (OSError, FileNotFoundError):
            content = None
        records.append(parse_run(content, name))
    shown = (
        paths if fs is None else [f"{os.fspath(directory).rstrip('/')}/{p.rsplit('/', 1)[-1]}" for p in paths]
    )
    return _runs_frame(records, shown)


def runs_from_records(records: list[dict[str, Any]]) -> pd.DataFrame:
    """:func:`load_runs`' frame built from run records (the contents of ``*.metrics.json`` files).

    A sweep whose outputs live in object storage gets exactly the columns a local folder of runs would;
    ``path`` is empty.
    """
    # In the order load_runs reads files, so the param./metric. columns come out in the same order too.
    records = sorted(records, key=lambda rec: f"{rec['name']}.metrics.json")
    records = [_complete_record(dict(rec), rec["name"]) for rec in records]
    return _runs_frame(records, [None] * len(records))


def _runs_frame(records: list[dict[str, Any]], paths: list[str | None]) -> pd.DataFrame:
    import pandas as pd

    rows = []
    for run, path in zip(records, paths):
        params = dict(run.get("defaults") or {})
        params.update(run.get("parameters") or {})
        metrics = run.get("metrics") or {}
        row = {
            "name": run.get("name"),
            "notebook": run.get("notebook"),
            "status": run.get("status"),
            "started": run.get("started"),
            "duration_s": run.get("duration_s"),
            "html": run.get("html"),
            "output_notebook": run.get("output_notebook"),
            "error": error_text(run.get("error")) or None,
            "attempt": run.get("attempt"),
            "parameters": run.get("parameters") or {},
            "defaults": run.get("defaults") or {},
            "metrics": metrics,
            "path": path,
        }
        row.update({f"param.{k}": v for k, v in params.items()})
        row.update({f"metric.{k}": v for k, v in metrics.items()})
        rows.append(row)
    base = [
        "name",
        "notebook",
        "status",
        "started",
        "duration_s",
        "html",
        "output_notebook",
        "error",
        "attempt",
        "parameters",
        "defaults",
        "metrics",
        "path",
    ]
    frame = pd.DataFrame(rows, columns=None if rows else base)
    if rows:
        frame = frame.sort_values("name", kind="stable").reset_index(drop=True)
    return frame


def best_runs(runs: pd.DataFrame, directions: dict[str, str] | None = None) -> dict[str, Any]:
    """Index label of the best successful run per numeric ``metric.<name>`` column.

    ``directions`` maps a metric name to ``"min"`` or ``"max"``; other metrics use ``metric_direction``.
    A "min" metric that takes negative values is a signed error: the value closest to zero wins.
    Metrics with no known direction, or fewer than two successful numeric values, get no best run.
    """
    directions = directions or {}
    best: dict[str, Any] = {}
    ok = runs[runs["status"] == "ok"] if "status" in runs else runs
    for col in [c for c in runs.columns if str(c).startswith("metric.")]:
        metric = col[len("metric.") :]
        way = directions.get(metric, metric_direction(metric))
        if way not in ("min", "max"):
            continue
        values = {i: v for i, v in ok[col].items() if is_number(v)}
        if len(values) < 2:
            continue
        if way == "min" and min(values.values()) < 0:
            # an error-like metric with negative values is signed (a bias): closest to zero is best
            values = {i: abs(v) for i, v in values.items()}
        best[metric] = (min if way == "min" else max)(values, key=values.get)
    return best


def cell(
    value: Any = None,
    *,
    text: str | None = None,
    best: bool = False,
    bold: bool = False,
    href: str | None = None,
    badge: str | None = None,
    classes: str = "",
    sort: str | None = None,
) -> dict[str, Any]:
    """One cell of a runs table, for the ``cell`` macro of ``templates/tables.html.j2``.

    A number is right-aligned and sorts by its value; ``best`` stars it, ``bold`` marks a parameter set for
    the run, ``href`` links the text, ``badge`` (a colour) shows it as a status badge.
    """
    number = is_number(value)
    return {
        "text": format_value(value) if text is None else text,
        "classes": " ".join(c for c in ("num" if number else "", "best" if best else "", classes) if c),
        "sort": repr(value) if number else sort,
        "bold": bold,
        "best": best,
        "href": href or None,
        "badge": badge,
    }


def runs_table_html(
    runs: pd.DataFrame,
    *,
    table_id: str = "runs",
    parameters: list[str] | None = None,
    metrics: list[str] | None = None,
    directions: dict[str, str] | None = None,
    extra: list[tuple[str, str]] | None = None,
) -> str:
    """A sortable HTML table of runs (rows of ``load_runs``): link, status, duration, parameters, metrics.

    Each parameter and scalar metric gets a column (default: every ``param.*`` / ``metric.*`` column
    present); recorded tables show as a link into the run's report. The best run per metric is starred
    (see ``best_runs``). A sweep's comparison page reuses this with its grid parameters. ``extra`` adds
    columns after the duration, as ``(header, column of runs)`` pairs (a sweep's ``attempt``).
    """
    extra = list(extra or [])
    if parameters is None:
        parameters = [c[len("param.") :] for c in runs.columns if str(c).startswith("param.")]
    if metrics is None:
        metrics = [c[len("metric.") :] for c in runs.columns if str(c).startswith("metric.")]
    best = best_runs(runs, directions)
    show_error = "error" in runs and runs["error"].notna().any()
    head = (
        [("run", None), ("status", None), ("duration (s)", None)]
        + [(h, None) for h, _ in extra]
        + [(p, "parameter") for p in parameters]
        + [(m, "metric") for m in metrics]
        + ([("error", None)] if show_error else [])
    )
    groups = [("", 3 + len(extra))]
    groups += [("parameters", len(parameters))] if parameters else []
    groups += [("metrics", len(metrics))] if metrics else []
    groups += [("", 1)] if show_error else []
    rows = [
        _run_cells(idx, run, extra, parameters, metrics, best, show_error) for idx, run in runs.iterrows()
    ]
    return render("tables.html.j2", "runs_table", table_id=table_id, groups=groups, head=head, rows=rows)


def _run_cells(
    idx: Any,
    run: pd.Series,
    extra: list[tuple[str, str]],
    parameters: list[str],
    metrics: list[str],
    best: dict[str, Any],
    show_error: bool,
) -> list[dict[str, Any]]:
    """The cells of one run's row in ``runs_table_html``."""
    html_name = run.get("html")
    status = run.get("status") or ""
    duration = run.get("duration_s")
    cells = [
        cell(text=run["name"], href=html_name),
        cell(text=status, badge=STATUS_COLOURS.get(status, "#57606a"), sort=status),
        cell(round(duration, 1) if is_number(duration) else None),
    ]
    cells += [cell(None if _missing(run.get(column)) else run.get(column)) for _, column in extra]
    overrides = run.get("parameters") or {}
    for p in parameters:
        value = run.get(f"param.{p}")
        cells.append(cell(None if _missing(value) else value, bold=p in overrides))
    for m in metrics:
        value = run.get(f"metric.{m}")
        if is_table(value):
            cells.append(
                cell(text=format_value(value), href=f"{html_name}#metric-{m}" if html_name else None)
            )
        else:
            cells.append(cell(None if _missing(value) else value, best=best.get(m) == idx))
    if show_error:
        err = run.get("error")
        cells.append(cell(text=err if isinstance(err, str) else "", classes="tl-error"))
    return cells


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _telling_parameters(runs: pd.DataFrame) -> list[str]:
    """The parameters worth a column: set explicitly for some run, or differing between runs.

    Defaults every run shares stay in each run's own report; listing them all would push the metrics off the
    page.
    """
    names = [c[len("param.") :] for c in runs.columns if str(c).startswith("param.")]
    overridden: set[str] = set()
    for value in runs.get("parameters", []):
        if isinstance(value, dict):
            overridden |= set(value)
    keep = []
    for name in names:
        values = {json.dumps(v, sort_keys=True, default=str) for v in runs[f"param.{name}"]}
        if name in overridden or len(values) > 1:
            keep.append(name)
    return keep


def index_html(
    runs: pd.DataFrame, title: str, *, extra_html: str = "", directions: dict[str, str] | None = None
) -> str:
    """A self-contained HTML page over runs: one sortable table per notebook, then ``extra_html``.

    Runs of the same notebook share a table so their parameters and metrics line up as columns.
    No external assets: CSS and the sorting script are inline, so the page reads offline.
    """
    import datetime as _dt

    n_ok = int((runs["status"] == "ok").sum()) if len(runs) else 0
    sections = []
    if len(runs):
        notebooks = runs["notebook"].fillna("(unknown notebook)")
        for k, (notebook, group) in enumerate(runs.groupby(notebooks, sort=True)):
            group = group.dropna(axis=1, how="all")
            table = runs_table_html(
                group, parameters=_telling_parameters(group), table_id=f"runs-{k}", directions=directions
            )
            sections.append(
                {"notebook": notebook, "count": _plural(len(group), "run"), "table": markup(table)}
            )
    generated = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    summary = f"{_plural(len(runs), 'run')}: {n_ok} ok, {len(runs) - n_ok} not ok · generated {generated}"
    return render(
        "index.html.j2",
        title=title,
        summary=summary,
        sections=sections,
        extra_html=markup(extra_html),
    )


def page_html(title: str, body: str, *, extra_style: str = "") -> str:
    """A self-contained HTML page in the reports' look: ``body`` (HTML), then the note on sorting.

    CSS and the script that sorts every ``table.tl`` by a click on its header are inline, so the page reads
    offline. ``extra_style`` is CSS appended to the shared style sheet.
    """
    return render("page.html.j2", title=title, body=markup(body), extra_style=markup(extra_style))


def build_index(
    directory: str | os.PathLike, title: str | None = None, directions: dict[str, str] | None = None
) -> Path | str:
    """Write ``<directory>/index.html`` over every run whose ``*.metrics.json`` is in ``directory``.

    Parameters
    ----------
    directory : path or URL
        Folder holding run outputs (``terralab run -o DIR``), or an fsspec URL such as ``s3://bucket/runs``
        (the index is rebuilt from the objects there and written beside them).
    title : str, optional
        Page title; default ``"terralab runs — <directory name>"``.
    directions : dict, optional
        ``{metric: "min" | "max"}`` for metrics whose name does not say which way is better.

    Returns
    -------
    Path of the written index.html, or its URL.
    """
    from . import storage

    runs = load_runs(directory)
    if storage.is_url(directory):
        url = storage.join(os.fspath(directory), "index.html")
        title = title or f"terralab runs — {os.fspath(directory).rstrip('/').rsplit('/', 1)[-1]}"
        _log.info("index of %d run(s) at %s", len(runs), url)
        return write_text_atomic(url, index_html(runs, title, directions=directions))
    folder = storage.local_path(directory)
    title = title or f"terralab runs — {folder.name}"
    target = (folder if os.fspath(directory).startswith("file://") else Path(directory)) / "index.html"
    write_text_atomic(target, index_html(runs, title, directions=directions))
    _log.info("index of %d run(s) at %s", len(runs), target)
    return target
