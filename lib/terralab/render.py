"""The report of one run: where an executed notebook failed, its error banner, and its HTML page.

:func:`render_html` turns an executed notebook into one self-contained page (nbconvert's lab template
without CDN scripts, figures embedded, code hidden unless asked for) headed by the run summary of
``terralab.report``. :func:`locate_error` finds the user's failing cell in an executed notebook, and
:func:`mark_failure` adds papermill-style banners for failures papermill did not mark (a timeout, a dead
kernel), so every failed report reads the same way.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import report
from .pages import render, source

if TYPE_CHECKING:
    from nbformat import NotebookNode

__all__ = ["locate_error", "mark_failure", "render_html"]

# Cells papermill adds to the executed notebook; they are not the user's cells when counting positions.
_PAPERMILL_TAGS = {"injected-parameters", "papermill-error-cell-tag"}


def locate_error(nb: NotebookNode) -> dict[str, Any] | None:
    """The first failing user cell of an executed notebook: its position in the source notebook and the error.

    A cell with an error output wins; otherwise a cell papermill marked as failed or still running (a
    timeout); otherwise the last cell that started (a kernel that died leaves no other trace).

    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title")])
    >>> nb.cells.append(nbformat.v4.new_code_cell("ratio = 1 / 0", execution_count=1))
    >>> failed = nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="division by zero")
    >>> nb.cells[1].outputs = [failed]
    >>> error = locate_error(nb)
    >>> error["cell_index"], error["execution_count"], error["ename"], error["source"]
    (1, 1, 'ZeroDivisionError', 'ratio = 1 / 0')
    """
    position = -1
    last_started = None
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags") or [])
        if tags & _PAPERMILL_TAGS:
            continue
        position += 1
        if cell.cell_type != "code":
            continue
        pm = cell.get("metadata", {}).get("papermill", {})
        for out in cell.get("outputs", []) or []:
            if out.get("output_type") == "error":
                if out.get("ename") == "SystemExit" and out.get("evalue") in ("", "0"):
                    continue
                return _error_dict(position, cell, out.get("ename", ""), out.get("evalue", ""))
        if pm.get("exception") is True or pm.get("status") == "running":
            return _error_dict(position, cell, "", "")
        # papermill marks every cell "completed" when the run ends; only cells that started have a start time
        if pm.get("start_time") is not None:
            last_started = (position, cell)
    if last_started is not None:
        return _error_dict(*last_started, "", "")
    return None


def mark_failure(nb: NotebookNode, error: dict[str, Any]) -> None:
    """Add papermill-style banner cells for a failure papermill did not mark (a timeout, a dead kernel).

    The banner at the top links to an anchor placed just before the failing cell, as papermill does for an
    exception inside a cell, so every failed report reads the same way.
    """
    import nbformat

    if error.get("cell_index") is None:
        return
    if any("papermill-error-cell-tag" in (c.metadata.get("tags") or []) for c in nb.cells):
        return
    position, target = -1, None
    for i, cell in enumerate(nb.cells):
        if set(cell.get("metadata", {}).get("tags") or []) & _PAPERMILL_TAGS:
            continue
        position += 1
        if position == error["cell_index"]:
            target = i
            break
    if target is None:
        return
    what = f"{error.get('ename', '')}: {error.get('evalue', '')}".strip(": ")
    banner = nbformat.v4.new_markdown_cell(render("error_banner.html.j2", "banner", what=what))
    anchor = nbformat.v4.new_markdown_cell(render("error_banner.html.j2", "anchor", what=what))
    for cell in (banner, anchor):
        cell.metadata["tags"] = ["papermill-error-cell-tag"]
    nb.cells.insert(target, anchor)
    nb.cells.insert(0, banner)


def _error_dict(position: int, cell, ename: str, evalue: str) -> dict[str, Any]:
    first_line = next((line for line in cell.source.splitlines() if line.strip()), "")
    return {
        "cell_index": position,
        "execution_count": cell.get("execution_count"),
        "ename": ename,
        "evalue": evalue,
        "source": first_line[:120],
    }


def _exporter(show_code: bool):
    import jinja2
    from nbconvert import HTMLExporter

    return HTMLExporter(
        extra_loaders=[jinja2.DictLoader({"terralab_run.html.j2": source("nbconvert_run.html.j2")})],
        template_file="terralab_run.html.j2",
        exclude_input=not show_code,
        exclude_input_prompt=not show_code,
        exclude_output_prompt=not show_code,
        embed_images=True,
    )


def render_html(
    nb: NotebookNode, run: dict[str, Any], *, show_code: bool = False, resources_path: Path | None = None
) -> str:
    """Render an executed notebook as one self-contained HTML page headed by the run summary.

    ``run`` is the metrics.json content (see ``report.run_summary_html``). Figures are embedded as base64 PNG;
    with ``show_code=False`` the code cells and prompts are hidden and only outputs remain.
    """
    has_math = any(cell.cell_type == "markdown" and re.search(r"\$[^$]+\$", cell.source) for cell in nb.cells)
    resources = {
        "terralab_summary": report.run_summary_html(run),
        "terralab_mathjax": has_math,
        "metadata": {"path": str(resources_path) if resources_path else "", "name": run.get("name", "")},
    }
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            # ``report.record``'s "recorded …" outputs: the summary table at the top already shows every
            # metric, so the page reads like a figure page rather than a console log.
            cell.outputs = [o for o in cell.get("outputs", []) if report.METRIC_MIME not in o.get("data", {})]
        if cell.cell_type == "markdown" and "papermill-error-cell-tag" in (cell.metadata.get("tags") or []):
            # As inline HTML the markdown renderer splits papermill's banner apart; as a block it stays whole.
            cell.source = f"<div>\n{cell.source}\n</div>"
    body, _ = _exporter(show_code).from_notebook_node(nb, resources=resources)
    return body
