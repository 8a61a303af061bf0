"""Progress bars that show in an interactive session and never land in a rendered report.

Every long loop in terralab goes through :func:`progress_bar`: a plain ``tqdm.tqdm`` (never ``tqdm.auto``,
whose notebook widget warns "IProgress not found" in kernels without ipywidgets). Whether it draws:

* inside a ``terralab run`` / ``terralab sweep`` / ``terralab demo`` kernel (the runner sets
  ``TERRALAB_REPORT_RUN=1``): never, whatever the caller asked, so reports read like a paper's figure page;
* ``enabled=True`` / ``False``: as asked;
* ``enabled=None`` (the default): when a person is watching, that is when stderr is a terminal or the code
  runs in an interactive Jupyter kernel; not in pytest, a pipe or a log file.

>>> from terralab.progress import progress_bar
>>> total = 0
>>> for i in progress_bar(range(4), desc="summing", enabled=False):
...     total += i
>>> total
6
>>> with progress_bar(total=3, desc="files", enabled=False) as bar:
...     bar.update(3)
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from collections.abc import Iterable
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import tqdm

__all__ = ["REPORT_RUN_ENV", "import_quietly", "in_report_run", "progress_bar", "show_progress"]

#: Set to 1 by the notebook runner in every kernel it starts: the code runs to make a report.
REPORT_RUN_ENV = "TERRALAB_REPORT_RUN"
_TRUE = {"1", "true", "yes", "on"}


def in_report_run() -> bool:
    """True inside a kernel that ``terralab.run`` started to make a report (``TERRALAB_REPORT_RUN=1``)."""
    return os.environ.get(REPORT_RUN_ENV, "").strip().lower() in _TRUE


def _interactive_kernel() -> bool:
    """True in a Jupyter kernel (JupyterLab, Notebook, VS Code), where plain tqdm updates in place."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # noqa: BLE001 - a half-imported IPython is not a kernel
        return False
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def _stderr_is_terminal() -> bool:
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):  # no stderr, or a closed one
        return False


def show_progress(enabled: bool | None = None) -> bool:
    """Whether a progress bar should draw (see the module doc); for code that hands the choice on.

    >>> show_progress(False)
    False
    """
    if in_report_run():
        return False
    if enabled is None:
        return _stderr_is_terminal() or _interactive_kernel()
    return bool(enabled)


def progress_bar(
    iterable: Iterable[Any] | None = None,
    *,
    desc: str | None = None,
    total: float | None = None,
    enabled: bool | None = None,
    **tqdm_kwargs: Any,
) -> tqdm.tqdm:
    """A ``tqdm.tqdm`` over ``iterable`` (or a manual bar with ``total``) that draws only when it should.

    Parameters
    ----------
    iterable : iterable, optional
        What to loop over; leave out and call ``update`` for a manual bar.
    desc : str, optional
        Label in front of the bar.
    total : number, optional
        Number of expected iterations (default ``len(iterable)`` where it has one).
    enabled : bool, optional
        True/False to force it on or off; None (default) draws when a person is watching. Inside a report
        run (``TERRALAB_REPORT_RUN=1``) it never draws.
    **tqdm_kwargs
        Passed to ``tqdm.tqdm`` (``unit``, ``leave``, ``position`` …).

    Returns
    -------
    tqdm.tqdm
        Iterate it, use it as a context manager, ``set_postfix`` it: a disabled bar accepts every call.
    """
    from tqdm import tqdm

    # tqdm's own ``disable`` may only switch a bar off: a report run stays silent whatever a caller passes.
    disable = bool(tqdm_kwargs.pop("disable", False)) or not show_progress(enabled)
    tqdm_kwargs.setdefault("file", sys.stderr)
    return tqdm(iterable, desc=desc, total=total, disable=disable, **tqdm_kwargs)


def import_quietly(name: str) -> ModuleType:
    """Import ``name`` without tqdm's "IProgress not found" warning on stderr.

    Some libraries import ``tqdm.auto`` when they load (timm and segmentation-models-pytorch through
    huggingface_hub); in a kernel without ipywidgets that prints a ``TqdmWarning`` into the cell's output, and
    so into the report. Only that warning is silenced; the library's own bars are never drawn by terralab.

    >>> import_quietly("json").__name__
    'json'
    """
    with warnings.catch_warnings():
        try:
            from tqdm import TqdmWarning
        except ImportError:  # pragma: no cover - tqdm is a dependency
            pass
        else:
            warnings.simplefilter("ignore", TqdmWarning)
        return importlib.import_module(name)
