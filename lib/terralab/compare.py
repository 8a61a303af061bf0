"""Comparison report of a parameter sweep: grid parameters × recorded metrics on one page.

``terralab.sweep`` writes this page as the sweep's ``index.html``. It holds

* a sortable table, one row per run in grid order, with the grid parameters, status, duration and every
  scalar metric, the best run per metric starred (``terralab.report.best_runs``);
* a line naming the best run by the headline metric (``metric=``, default the first metric whose name says
  which way is better: ``rmse`` lowest, ``f1`` highest);
* when exactly two grid parameters vary, a pivot per numeric metric, rows the first parameter's values and
  columns the second's — the rice sweep ``bands × model`` comes out like the paper's table;
* a figure per numeric metric that varies: the metric along each varying parameter, one line per
  combination of the others (embedded PNG, readable offline);
* the failed runs with their errors.

A metric recorded as a dict (``accuracy = {"f1": …, "kappa": …}``) is spread into one column per entry
(``accuracy.f1``), each judged by its own key.

It can be rebuilt from any folder of runs::

    from terralab import compare
    compare.write_comparison("reports/sweep-rice_mapping",
                             grid={"bands": ["RGBN", "RGBNE"], "model": ["unet", "dnn"]})
"""

from __future__ import annotations

import base64
import datetime as _dt
import io
import itertools
import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .files import write_text_atomic
from .pages import is_number, markup, render

if TYPE_CHECKING:
    import pandas as pd

MAX_FIGURES = 8
MAX_PIVOTS = 8
MAX_LINES_PER_AXES = 10


def _same(a: Any, b: Any) -> bool:
    """Grid values compare by value, and by text for values a JSON round trip may have changed."""
    if a is None or b is None:
        return a is b
    try:
        equal = bool(a == b)
    except (TypeError, ValueError):  # arrays and other values without a plain truth: compare their text
        equal = False
    return equal or str(a) == str(b)


def varying_parameters(grid: dict[str, list]) -> list[str]:
    """Names of the grid parameters with more than one value, in grid order.

    >>> varying_parameters({"bands": ["RGBN", "RGBNE"], "model": ["unet"], "seed": [0, 1, 2]})
    ['bands', 'seed']
    """
    return [name for name, values in grid.items() if len(values) > 1]


def flatten_metrics(runs: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """Spread dict-valued metrics into one column per entry: ``metric.accuracy`` → ``metric.accuracy.f1``, ….

    A notebook that records ``{"f1": 0.9, "precision": 0.8}`` under one name gets a sortable column, a pivot
    and a figure per entry. Recorded tables (``{"type": "table", ...}``) stay as they are.

    Returns
    -------
    (runs, leaves)
        The widened frame, and for every new metric name (``accuracy.f1``) its own key (``f1``), which is
        what says whether higher or lower is better.
    """
    import pandas as pd

    runs = runs.copy()
    leaves: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for col in [c for c in runs.columns if str(c).startswith("metric.")]:
            values = [v for v in runs[col] if v is not None and not (isinstance(v, float) and math.isnan(v))]
            if not values or not all(isinstance(v, dict) and v.get("type") != "table" for v in values):
                continue
            keys: list[str] = []
            for v in values:
                keys += [str(k) for k in v if str(k) not in keys]
            spread = pd.DataFrame(
                {f"{col}.{k}": [v.get(k) if isinstance(v, dict) else None for v in runs[col]] for k in keys},
                index=runs.index,
            )
            leaves.update({f"{col}.{k}"[len("metric.") :]: k for k in keys})
            at = list(runs.columns).index(col)
            runs = pd.concat([runs.iloc[:, :at], spread, runs.iloc[:, at + 1 :]], axis=1)
            changed = True
    return runs, leaves


def grid_order(runs: pd.DataFrame, grid: dict[str, list]) -> pd.DataFrame:
    """``runs`` sorted in the grid's order (first parameter slowest); runs off the grid go last, by name."""
    keys = []
    for _, run in runs.iterrows():
        key = []
        for name, values in grid.items():
            value = run.get(f"param.{name}")
            pos = next((i for i, v in enumerate(values) if _same(v, value)), len(values))
            key.append(pos)
        keys.append((tuple(key), str(run.get("name"))))
    order = sorted(range(len(runs)), key=lambda i: keys[i])
    return runs.iloc[order].reset_index(drop=True)


def numeric_metrics(runs: pd.DataFrame) -> list[str]:
    """Metrics with a finite number in at least one successful run and nothing but numbers otherwise."""
    names = []
    ok = runs[runs["status"] == "ok"] if "status" in runs else runs
    for col in [c for c in runs.columns if str(c).startswith("metric.")]:
        values = [v for v in ok[col] if v is not None and not (isinstance(v, float) and math.isnan(v))]
        if values and all(is_number(v) for v in values):
            names.append(col[len("metric.") :])
    return names


def _direction(name: str, directions: dict[str, str | None]) -> str | None:
    """``directions[name]`` when given (None there means "unknown"), else what the name says."""
    from . import report

    return directions[name] if name in directions else report.metric_direction(name)


def headline_metric(
    runs: pd.DataFrame, metric: str | None = None, directions: dict[str, str] | None = None
) -> tuple[str, str] | None:
    """The metric that picks the best run and which way is better, ``(name, "min" | "max")``, or None."""
    from .errors import InvalidInputError

    directions = directions or {}
    candidates = numeric_metrics(runs)
    if metric is not None:
        if metric not in candidates:
            raise InvalidInputError(
                f"metric {metric!r} is not a numeric metric of these runs; recorded numeric metrics: "
                f"{', '.join(candidates) or 'none'}"
            )
        way = _direction(metric, directions) or "max"
        return metric, way
    for name in candidates:
        way = _direction(name, directions)
        if way:
            return name, way
    return None


def pivot(runs: pd.DataFrame, grid: dict[str, list], metric: str, rows: str, columns: str) -> pd.DataFrame:
    """``metric`` of the successful runs laid out with ``rows`` × ``columns`` grid values (NaN where missing).

    Runs that share a cell (other grid parameters held at one value each) must not exist: the pivot is only
    drawn when exactly two parameters vary.
    """
    import pandas as pd

    from . import report

    table = pd.DataFrame(
        index=[report.format_value(v) for v in grid[rows]],
        columns=[report.format_value(v) for v in grid[columns]],
        dtype=float,
    )
    table.index.name, table.columns.name = rows, columns
    for _, run in runs[runs["status"] == "ok"].iterrows():
        value = run.get(f"metric.{metric}")
        if not is_number(value):
            continue
        r = next((i for i, v in enumerate(grid[rows]) if _same(v, run.get(f"param.{rows}"))), None)
        c = next((i for i, v in enumerate(grid[columns]) if _same(v, run.get(f"param.{columns}"))), None)
        if r is not None and c is not None:
            table.iat[r, c] = float(value)
    return table


def _pivot_table(table: pd.DataFrame, metric: str, way: str | None) -> dict[str, Any]:
    """A pivot (``pivot``) for ``templates/comparison.html.j2``: formatted cells, the best one marked."""
    import numpy as np

    from . import report

    values = table.to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    best = None
    if way in ("min", "max") and finite.size >= 2:
        best = finite.min() if way == "min" else finite.max()
    rows = [
        (
            label,
            [
                ("", False)
                if math.isnan(value)
                else (report.format_value(float(value)), best is not None and value == best)
                for value in row
            ],
        )
        for label, row in table.iterrows()
    ]
    note = {"min": "lower is better", "max": "higher is better"}.get(way or "", "direction unknown")
    return {"metric": metric, "note": note, "columns": list(table.columns), "rows": rows}


def metric_figure(runs: pd.DataFrame, grid: dict[str, list], metric: str) -> bytes | None:
    """PNG of ``metric`` along each varying grid parameter, one line per combination of the others.

    Returns None when the metric does not vary or no parameter varies. Uses matplotlib's object API, so
    it neither needs nor changes a pyplot backend.
    """
    from matplotlib.figure import Figure

    from . import report

    params = varying_parameters(grid)
    ok = runs[runs["status"] == "ok"]
    values = [v for v in ok.get(f"metric.{metric}", []) if is_number(v)]
    if not params or len(set(values)) < 2:
        return None
    fig = Figure(figsize=(3.6 * len(params[:3]), 2.8), dpi=100, layout="constrained")
    axes = fig.subplots(1, len(params[:3]), squeeze=False)[0]
    for ax, param in zip(axes, params[:3]):
        others = [p for p in params if p != param]
        combos = list(itertools.product(*[grid[p] for p in others]))[:MAX_LINES_PER_AXES]
        for combo in combos:
            xs, ys = [], []
            for i, x in enumerate(grid[param]):
                match = ok
                for p, v in zip(others + [param], list(combo) + [x]):
                    match = match[[_same(v, w) for w in match.get(f"param.{p}", [])]]
                vals = [v for v in match.get(f"metric.{metric}", []) if is_number(v)]
                if vals:
                    xs.append(i)
                    ys.append(float(vals[0]))
            if ys:
                label = ", ".join(f"{p}={report.format_value(v)}" for p, v in zip(others, combo)) or None
                ax.plot(xs, ys, marker="o", label=label)
        ax.set_xticks(range(len(grid[param])))
        ax.set_xticklabels(
            [report.format_value(v) for v in grid[param]], rotation=30 if len(grid[param]) > 4 else 0
        )
        ax.set_xlabel(param)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        if others:
            ax.legend(fontsize="x-small")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _headline_first(names: list[str], headline: tuple[str, str] | None) -> list[str]:
    if headline and headline[0] in names:
        return [headline[0]] + [n for n in names if n != headline[0]]
    return list(names)


def comparison_html(
    runs: pd.DataFrame,
    grid: dict[str, list],
    *,
    title: str,
    notebook: str | None = None,
    fixed: dict[str, Any] | None = None,
    metric: str | None = None,
    directions: dict[str, str] | None = None,
    attempts: list[dict[str, Any]] | None = None,
) -> str:
    """The self-contained comparison page over ``runs`` (rows of ``terralab.report.load_runs``).

    Parameters
    ----------
    runs : DataFrame
        One row per run, with ``param.<name>`` and ``metric.<name>`` columns.
    grid : dict of list
        The sweep's grid, ``{parameter: [values...]}``; its order sets row, pivot and axis order.
    title : str
        Page title.
    notebook : str, optional
        The notebook swept, shown under the title.
    fixed : dict, optional
        Parameters set to one value for every run, shown under the title.
    metric : str, optional
        Headline metric that picks the best run; default the first metric whose name gives a direction.
    directions : dict, optional
        ``{metric: "min" | "max"}`` for metrics whose name does not say which way is better.
    attempts : list of dict, optional
        The sweep's attempts (``sweep.json``). With more than one, the runs table gets an ``attempt``
        column (which attempt made each run) and the page a table of the attempts.
    """
    from . import report

    runs, leaves = flatten_metrics(runs)
    runs = grid_order(runs, grid)
    metrics = [c[len("metric.") :] for c in runs.columns if str(c).startswith("metric.")]
    # An entry of a dict metric is judged by its own key: in accuracy.n_detected, "accuracy" says nothing.
    directions = {name: report.metric_direction(leaf) for name, leaf in leaves.items()} | dict(
        directions or {}
    )
    headline = headline_metric(runs, metric, directions)
    if headline:
        directions.setdefault(*headline)
    several = len(attempts or []) > 1 or (
        "attempt" in runs and any(is_number(a) and a > 1 for a in runs["attempt"])
    )
    runs_table = report.runs_table_html(
        runs,
        table_id="sweep-runs",
        parameters=list(grid),
        metrics=metrics,
        directions=directions,
        extra=[("attempt", "attempt")] if several else None,
    )
    # A metric that is the same in every run (a checksum, a count of input rows) has nothing to compare.
    ok = runs[runs["status"] == "ok"] if len(runs) else runs
    varied = [m for m in numeric_metrics(runs) if len({v for v in ok[f"metric.{m}"] if is_number(v)}) > 1]
    varied = _headline_first(varied, headline)
    failed = runs[runs["status"] != "ok"] if len(runs) else runs
    return render(
        "comparison.html.j2",
        title=title,
        subtitle=_subtitle(runs, grid, notebook, fixed),
        best=_best_run(runs, grid, headline),
        runs_table=markup(runs_table),
        attempts=_attempt_rows(attempts, runs) if several and attempts else [],
        pivots=_pivots(runs, grid, varied, directions),
        figures=_figures(runs, grid, varied),
        failed=[
            {"name": run["name"], "html": run.get("html"), "error": err if isinstance(err, str) else ""}
            for _, run in failed.iterrows()
            for err in [run.get("error")]
        ],
    )


def _subtitle(
    runs: pd.DataFrame, grid: dict[str, list], notebook: str | None, fixed: dict[str, Any] | None
) -> str:
    """The line under the title: notebook, runs ok and failed, the grid, fixed parameters, when."""
    from . import report

    n_ok = int((runs["status"] == "ok").sum()) if len(runs) else 0
    sub = [f"{len(runs)} runs: {n_ok} ok, {len(runs) - n_ok} failed"]
    if notebook:
        sub.insert(0, f"notebook {notebook}")
    grid_text = " × ".join(
        f"{p} ∈ {{{', '.join(report.format_value(v) for v in vals)}}}" for p, vals in grid.items()
    )
    sub.append(f"grid {grid_text}")
    if fixed:
        sub.append("fixed " + ", ".join(f"{k}={report.format_value(v)}" for k, v in fixed.items()))
    sub.append(f"generated {_dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds')}")
    return " · ".join(sub)


def _best_run(
    runs: pd.DataFrame, grid: dict[str, list], headline: tuple[str, str] | None
) -> dict[str, Any] | None:
    """The best run by the headline metric (the only successful run if there is one), or None."""
    from . import report

    if not headline:
        return None
    name, way = headline
    best = report.best_runs(runs, {name: way}).get(name)
    ok = runs.index[runs["status"] == "ok"]
    if best is None and len(ok) == 1:
        best = ok[0]
    if best is None:
        return None
    row = runs.loc[best]
    return {
        "metric": name,
        "better": "lowest" if way == "min" else "highest",
        "name": row["name"],
        "html": row.get("html"),
        "point": ", ".join(f"{p}={report.format_value(row.get(f'param.{p}'))}" for p in grid),
        "value": report.format_value(row.get(f"metric.{name}")),
    }


def _pivots(
    runs: pd.DataFrame, grid: dict[str, list], metrics: list[str], directions: dict[str, str | None]
) -> dict[str, Any] | None:
    """One pivot per metric when exactly two grid parameters vary, else None."""
    varying = varying_parameters(grid)
    if len(varying) != 2 or not metrics:
        return None
    rows, columns = varying
    tables = [
        _pivot_table(pivot(runs, grid, name, rows, columns), name, _direction(name, directions))
        for name in metrics[:MAX_PIVOTS]
    ]
    return {"rows": rows, "columns": columns, "tables": tables}


def _figures(runs: pd.DataFrame, grid: dict[str, list], metrics: list[str]) -> list[dict[str, str]]:
    """Each metric along the varying grid parameters, as base64 PNG for an inline image."""
    figures = []
    for name in metrics[:MAX_FIGURES]:
        png = metric_figure(runs, grid, name)
        if png:
            figures.append(
                {
                    "metric": name,
                    "png": base64.b64encode(png).decode("ascii"),
                    "along": ", ".join(varying_parameters(grid)),
                }
            )
    return figures


_OUTCOMES = {
    "completed": "finished",
    "interrupted": "interrupted (Ctrl-C or SIGTERM)",
    "timed out": "stopped at its time limit",
    "running": "never finished (its client died, or it is still running)",
}


def _attempt_rows(attempts: list[dict[str, Any]], runs: pd.DataFrame) -> list[list[Any]]:
    """The rows of a sweep's table of attempts: when, how each ended, and the runs it made."""
    rows = []
    for entry in attempts:
        number = entry.get("attempt")
        made = runs[runs["attempt"] == number] if "attempt" in runs else runs.iloc[:0]
        n_ok = int((made["status"] == "ok").sum())
        outcome = entry.get("outcome", "")
        rows.append(
            [
                number,
                entry.get("mode", ""),
                entry.get("started") or "",
                entry.get("ended") or "",
                _OUTCOMES.get(outcome, outcome),
                entry.get("scheduler", ""),
                f"{n_ok} ok, {len(made) - n_ok} failed",
                entry.get("kept", ""),
            ]
        )
    return rows


def write_comparison(
    output: str | os.PathLike,
    grid: dict[str, list] | None = None,
    *,
    records: list[dict[str, Any]] | None = None,
    title: str | None = None,
    notebook: str | None = None,
    fixed: dict[str, Any] | None = None,
    metric: str | None = None,
    directions: dict[str, str] | None = None,
    attempts: list[dict[str, Any]] | None = None,
) -> str:
    """Write ``<output>/index.html`` comparing the runs of a sweep; returns its path or URL.

    Parameters
    ----------
    output : path or fsspec URL
        The sweep's folder (or URL) holding its ``*.metrics.json`` files and ``sweep.json``.
    grid : dict of list, optional
        The grid; default the sweep's ``sweep.json`` in ``output``.
    records : list of dict, optional
        Run records (``*.metrics.json`` contents) to compare instead of reading ``output``.
    title, notebook, fixed, metric, directions, attempts
        See ``comparison_html``; ``attempts`` defaults to those of the sweep's ``sweep.json``.
    """
    from . import report, storage
    from .errors import InvalidInputError

    output = str(output)
    state = None
    if records is None or grid is None or attempts is None:
        fs, root = storage.filesystem(output)
        if fs.exists(f"{root}/sweep.json"):
            state = json.loads(fs.cat_file(f"{root}/sweep.json").decode("utf-8"))
    if grid is None:
        if state is None:
            raise InvalidInputError(
                f"no grid given and no sweep.json in {output}: pass grid={{name: [values]}}"
            )
        grid = state["grid"]
        notebook = notebook or state.get("notebook")
        fixed = fixed if fixed is not None else state.get("parameters")
    if records is None:
        runs = report.load_runs(output)
        if state is not None:
            names = {r["name"] for r in state.get("runs", [])}
            runs = runs[runs["name"].isin(names)].reset_index(drop=True)
    else:
        runs = report.runs_from_records(records)
    if title is None:
        stem = Path(notebook).stem if notebook else Path(output.rstrip("/")).name
        title = f"Sweep of {stem}"
    if attempts is None and state is not None:
        attempts = state.get("attempts")
    page = comparison_html(
        runs,
        grid,
        title=title,
        notebook=notebook,
        fixed=fixed,
        metric=metric,
        directions=directions,
        attempts=attempts,
    )
    return write_text_atomic(output.rstrip("/") + "/index.html", page)
