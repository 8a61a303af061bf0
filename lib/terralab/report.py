"""Record metrics from inside a notebook, and build an index of runs.

Inside a notebook::

    from terralab import report
    report.record("rice_f1", 0.91)
    report.record("scores", scores_df)      # a small table

Each call stores the value in the run's ``metrics.json`` (the file named by the environment variable
``TERRALAB_METRICS_FILE``, which ``terralab run`` sets) and displays it as an output with the MIME type
``application/vnd.terralab.metric+json``, from which the runner copies every metric into the executed
notebook's metadata (``metadata.terralab.metrics``). Outside a run the values stay in memory
(``report.metrics()``).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

METRIC_MIME = "application/vnd.terralab.metric+json"
METRICS_ENV = "TERRALAB_METRICS_FILE"
MAX_TABLE_CELLS = 5000

_METRICS: dict[str, Any] = {}


def _to_jsonable(value: Any, name: str) -> Any:
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
            return _to_jsonable(float(value), name)
        if isinstance(value, np.datetime64):
            return str(value)
        if isinstance(value, np.ndarray):
            if value.size > MAX_TABLE_CELLS:
                raise InvalidInputError(
                    f"metric {name!r}: array of {value.size} values is too large to record "
                    f"(limit {MAX_TABLE_CELLS}); record a summary instead"
                )
            return [_to_jsonable(v, name) for v in value.tolist()]
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
                "data": [[_to_jsonable(v, name) for v in row] for row in frame.itertuples(index=False)],
            }
        if isinstance(value, pd.Timestamp):
            return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _to_jsonable(v, name) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(v, name) for v in value]
    if hasattr(value, "item"):
        return _to_jsonable(value.item(), name)
    raise InvalidInputError(
        f"metric {name!r}: cannot record a value of type {type(value).__name__}; "
        "record a number, string, bool, dict, list or small pandas DataFrame"
    )


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write JSON to ``path`` through a temporary file and a rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2, sort_keys=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    payload = _to_jsonable(value, name)
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
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []) or []:
            data = out.get("data") or {}
            if METRIC_MIME in data:
                item = data[METRIC_MIME]
                if isinstance(item, str):
                    item = json.loads(item)
                found[item["name"]] = item["value"]
    return found
