"""Record metrics from inside a notebook (the index of runs is built by :mod:`terralab.runs`).

Inside a notebook::

    from terralab import report
    report.record("rice_f1", 0.91)
    report.record("scores", scores_df)      # a small table

Each call stores the value in the run's ``metrics.json`` (the file named by the environment variable
``TERRALAB_METRICS_FILE``, which ``terralab run`` sets) and displays it as an output with the MIME type
``application/vnd.terralab.metric+json``, from which the runner copies every metric into the executed
notebook's metadata (``metadata.terralab.metrics``). Outside a run the values stay in memory
(``report.metrics()``). The "recorded …" lines show in the notebook but not in the rendered HTML report,
whose summary table at the top lists every metric.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

from .files import write_json_atomic
from .pages import is_number, render

__all__ = [
    "MAX_TABLE_CELLS",
    "METRICS_ENV",
    "METRIC_MIME",
    "STATUS_COLOURS",
    "best_runs",
    "build_index",
    "cell",
    "error_text",
    "format_value",
    "index_html",
    "is_table",
    "load_runs",
    "metric_direction",
    "metrics",
    "metrics_from_notebook",
    "page_html",
    "parse_run",
    "record",
    "record_problem",
    "run_summary_html",
    "runs_from_records",
    "runs_table_html",
    "table_html",
    "to_jsonable",
]

_log = logging.getLogger(__name__)
METRIC_MIME = "application/vnd.terralab.metric+json"
METRICS_ENV = "TERRALAB_METRICS_FILE"
MAX_TABLE_CELLS = 5000

_METRICS: dict[str, Any] = {}


def to_jsonable(value: Any, name: str) -> Any:
    """Convert a scalar, dict, sequence, numpy value or small pandas object into plain JSON data."""
    from .errors import InvalidInputError

    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a hard dependency
        np = None
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover
        pd = None

    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return None if math.isnan(value) else (value if math.isfinite(value) else str(value))
    if np is not None:
        if isinstance(value, np.bool_):
            return bool(value)
        if isinstance(value, np.integer):
            return int(value)
        if isinstance(value, np.floating):
            return to_jsonable(float(value), name)
        if isinstance(value, np.datetime64):
            return str(value)
        if isinstance(value, np.ndarray):
            if value.size > MAX_TABLE_CELLS:
                raise InvalidInputError(
                    f"metric {name!r}: array of {value.size} values is too large to record "
                    f"(limit {MAX_TABLE_CELLS}); record a summary instead"
                )
            return [to_jsonable(v, name) for v in value.tolist()]
    if pd is not None:
        if isinstance(value, pd.Series):
            value = value.to_frame()
        if isinstance(value, pd.DataFrame):
            if value.size > MAX_TABLE_CELLS:
                raise InvalidInputError(
                    f"metric {name!r}: table of {value.shape[0]}×{value.shape[1]} is too large to record "
                    f"(limit {MAX_TABLE_CELLS} cells); record a summary instead"
                )
            frame = value.reset_index() if not isinstance(value.index, pd.RangeIndex) else value
            return {
                "type": "table",
                "columns": [str(c) for c in frame.columns],
                "data": [[to_jsonable(v, name) for v in row] for row in frame.itertuples(index=False)],
            }
        if isinstance(value, pd.Timestamp):
            return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v, name) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, name) for v in value]
    if hasattr(value, "item"):
        return to_jsonable(value.item(), name)
    raise InvalidInputError(
        f"metric {name!r}: cannot record a value of type {type(value).__name__}; "
        "record a number, string, bool, dict, list or small pandas DataFrame"
    )


def record(name: str, value: Any) -> Any:
    """Record a metric of the current run; returns ``value`` unchanged.

    Parameters
    ----------
    name : str
        Metric name, e.g. ``"rice_f1"``. Recording the same name again replaces the value.
    value : scalar, dict, list, numpy value or small pandas DataFrame/Series (≤ 5000 cells)
    """
    from .errors import InvalidInputError

    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"metric name must be a non-empty string, got {name!r}")
    payload = to_jsonable(value, name)
    _METRICS[name] = payload

    target = os.environ.get(METRICS_ENV)
    if target:
        existing: dict[str, Any] = {}
        if Path(target).exists():
            try:
                existing = json.loads(Path(target).read_text()) or {}
            except (OSError, json.JSONDecodeError):
                existing = {}
        metrics = existing.get("metrics", {}) if isinstance(existing, dict) else {}
        metrics[name] = payload
        existing = existing if isinstance(existing, dict) else {}
        existing["metrics"] = metrics
        write_json_atomic(target, existing)

    try:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:
            if isinstance(payload, dict) and payload.get("type") == "table":
                text = f"recorded {name}: table {len(payload['data'])}×{len(payload['columns'])}"
            else:
                text = f"recorded {name} = {payload}"
            display({METRIC_MIME: {"name": name, "value": payload}, "text/plain": text}, raw=True)
    except ImportError:  # pragma: no cover - IPython comes with ipykernel
        pass
    return value


def metrics() -> dict[str, Any]:
    """The metrics recorded so far in this process, as plain JSON data."""
    return dict(_METRICS)


def metrics_from_notebook(nb: Any) -> dict[str, Any]:
    """Collect every recorded metric from the outputs of an executed notebook (nbformat node)."""
    found: dict[str, Any] = {}
    for nb_cell in nb.get("cells", []):
        for out in nb_cell.get("outputs", []) or []:
            data = out.get("data") or {}
            if METRIC_MIME in data:
                item = data[METRIC_MIME]
                if isinstance(item, str):
                    item = json.loads(item)
                found[item["name"]] = item["value"]
    return found


# --- index of runs ---------------------------------------------------------------------------------
# Metric names that say which way is better, so the index can mark the best run. Matched against the
# lower-cased name split on non-letters; a name matching neither list is left unmarked.
_LOWER_IS_BETTER = ("mae", "rmse", "mse", "mape", "smape", "loss", "error", "err", "residual", "rms", "bias")
_HIGHER_IS_BETTER = (
    "f1",
    "acc",
    "accuracy",
    "precision",
    "recall",
    "iou",
    "miou",
    "kappa",
    "auc",
    "r2",
    "mcc",
    "oa",
    "score",
    "skill",
    "sensitivity",
    "specificity",
)

STATUS_COLOURS = {"ok": "#1b7f3b", "failed": "#b3261e", "incomplete": "#8a6d00", "unreadable": "#8a6d00"}


def is_table(value: Any) -> bool:
    """True for a recorded table (what :func:`to_jsonable` makes of a DataFrame or Series)."""
    return isinstance(value, dict) and value.get("type") == "table"


def format_value(value: Any) -> str:
    """Short human text for a recorded value: 4 significant digits below 1000, 6 above; tables summarised.

    >>> format_value(0.912345), metric_direction("rice_f1"), metric_direction("val_mae")
    ('0.9123', 'max', 'min')
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:.6g}"
    if is_table(value):
        return f"table {len(value.get('data', []))}×{len(value.get('columns', []))}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {format_value(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return str(value)


def metric_direction(name: str) -> str | None:
    """``"min"`` or ``"max"`` when a metric's name says which way is better (``rmse``, ``f1``), else None."""
    import re

    words = [w for w in re.split(r"[^a-z0-9]+", name.lower()) if w]
    if any(w in _LOWER_IS_BETTER for w in words):
        return "min"
    if any(w in _HIGHER_IS_BETTER for w in words):
        return "max"
    return None


def table_html(payload: dict[str, Any], max_rows: int = 50, table_id: str | None = None) -> str:
    """A recorded table (``{"type": "table", "columns", "data"}``) as HTML, its first ``max_rows`` rows."""
    return render("tables.html.j2", "recorded_table", **_recorded_table(payload, max_rows, table_id))


def _recorded_table(payload: dict[str, Any], max_rows: int = 50, table_id: str | None = None) -> dict:
    data = payload.get("data", [])
    return {
        "table_id": table_id,
        "columns": payload.get("columns", []),
        "rows": [[(format_value(v), is_number(v)) for v in row] for row in data[:max_rows]],
        "more": max(len(data) - max_rows, 0),
    }


def error_text(error: dict[str, Any] | None) -> str:
    """One line saying where a run failed and why, from its record's ``error`` (empty for no error)."""
    if not error:
        return ""
    where = f"cell {error['cell_index']}" if error.get("cell_index") is not None else "before any cell"
    count = f" (In [{error['execution_count']}])" if error.get("execution_count") is not None else ""
    return f"{where}{count}: {error.get('ename', '')}: {error.get('evalue', '')}".rstrip(": ")


def run_summary_html(run: dict[str, Any]) -> str:
    """The header of a run's HTML report: status, timing, parameters and every recorded metric.

    ``run`` is the content of a ``<name>.metrics.json`` (see ``terralab.run``). Scalars go in one table;
    each recorded table gets its own, with the anchor ``metric-<name>`` that the index links to.
    """
    params = dict(run.get("defaults") or {})
    overrides = run.get("parameters") or {}
    params.update(overrides)
    metrics = run.get("metrics") or {}
    status = run.get("status", "")
    return render(
        "run_summary.html.j2",
        name=run.get("name", ""),
        status=status,
        colour=STATUS_COLOURS.get(status, "#57606a"),
        notebook=run.get("notebook", ""),
        started=run.get("started", ""),
        duration_s=run.get("duration_s"),
        error=error_text(run["error"]) if run.get("error") else "",
        parameters=[(k, format_value(v), k in overrides) for k, v in params.items()],
        any_override=bool(overrides) and bool(params),
        scalars=[(k, format_value(v), is_number(v)) for k, v in metrics.items() if not is_table(v)],
        tables=[(k, _recorded_table(v, table_id=f"metric-{k}")) for k, v in metrics.items() if is_table(v)],
    )


# Reading runs and writing the index live in :mod:`terralab.runs` (which imports the helpers above);
# the names stay importable from here.
from .runs import (
    best_runs,
    build_index,
    cell,
    index_html,
    load_runs,
    page_html,
    parse_run,
    record_problem,
    runs_from_records,
    runs_table_html,
)
