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

Example
-------
>>> from terralab.run import run_notebook
>>> result = run_notebook("notebooks/das_traffic.ipynb", {"speed_min_kmh": 30}, "reports")   # doctest: +SKIP
>>> result.status, result.html                                                             # doctest: +SKIP
"""

from __future__ import annotations

import ast
import contextlib
import copy
import datetime as _dt
import difflib
import io
import json
import logging
import os
import re
import shutil
import tempfile
import time
import tokenize
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html import escape as html_escape
from pathlib import Path
from typing import Any

from . import report, storage
from .errors import (
    FileFormatError,
    InvalidInputError,
    KernelNotFoundError,
    NotebookExecutionError,
    NotebookNotFoundError,
    OutputLocationError,
    ParameterError,
)
from .files import atomic_paths, put_together
from .options import DEFAULT_KERNEL, check_seconds
from .progress import REPORT_RUN_ENV, progress_bar

_log = logging.getLogger(__name__)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# Cells papermill adds to the executed notebook; they are not the user's cells when counting positions.
_PAPERMILL_TAGS = {"injected-parameters", "papermill-error-cell-tag"}


# --- parameters ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ParamType:
    """A parameter's type as far as terralab checks it.

    ``kind`` is one of int, float, number (int or float; inferred from a numeric default), str, path, bool,
    list, tuple, dict, literal (``args`` = allowed values), union (``args`` = member types), any.
    """

    kind: str
    args: tuple = ()

    def __str__(self) -> str:
        if self.kind == "literal":
            return "one of " + ", ".join(repr(a) for a in self.args)
        if self.kind == "union":
            return " | ".join(str(a) for a in self.args)
        if self.kind in ("list", "tuple") and self.args:
            return f"{self.kind}[{self.args[0]}]"
        return {"number": "number (int or float)", "path": "str (a path)", "none": "None"}.get(
            self.kind, self.kind
        )


_ANY = ParamType("any")
_NONE = ParamType("none")
_SIMPLE = {
    "int": "int",
    "float": "float",
    "str": "str",
    "bool": "bool",
    "list": "list",
    "List": "list",
    "tuple": "tuple",
    "Tuple": "tuple",
    "dict": "dict",
    "Dict": "dict",
    "Path": "path",
    "PathLike": "path",
    "Any": "any",
    "object": "any",
    "None": "none",
}


@dataclass(frozen=True)
class Parameter:
    """One name declared in a notebook's ``parameters`` cell."""

    name: str
    type: ParamType
    annotation: str | None
    default: Any
    default_text: str
    has_literal_default: bool
    help: str = ""

    @property
    def declaration(self) -> str:
        hint = f": {self.annotation}" if self.annotation else ""
        return f"{self.name}{hint} = {self.default_text}" if self.default_text else f"{self.name}{hint}"


def _annotation_type(node: ast.expr | None) -> ParamType:
    if node is None:
        return _ANY
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # a quoted forward reference
        try:
            return _annotation_type(ast.parse(node.value, mode="eval").body)
        except SyntaxError:
            return _ANY
    if isinstance(node, ast.Constant) and node.value is None:
        return _NONE
    if isinstance(node, ast.Name):
        return ParamType(_SIMPLE.get(node.id, "any"))
    if isinstance(node, ast.Attribute):  # pathlib.Path, typing.Any, os.PathLike
        return ParamType(_SIMPLE.get(node.attr, "any"))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _union(_annotation_type(node.left), _annotation_type(node.right))
    if isinstance(node, ast.Subscript):
        base = node.value.attr if isinstance(node.value, ast.Attribute) else getattr(node.value, "id", "")
        inner = node.slice
        items = list(inner.elts) if isinstance(inner, ast.Tuple) else [inner]
        if base == "Optional":
            return _union(_annotation_type(items[0]), _NONE)
        if base == "Union":
            return _union(*[_annotation_type(i) for i in items])
        if base == "Literal":
            try:
                return ParamType("literal", tuple(ast.literal_eval(i) for i in items))
            except ValueError:
                return _ANY
        kind = _SIMPLE.get(base, "any")
        if (
            kind in ("list", "tuple")
            and len(items) == 1
            or (
                kind == "tuple"
                and len(items) == 2
                and isinstance(items[1], ast.Constant)
                and items[1].value is Ellipsis
            )
        ):
            return ParamType(kind, (_annotation_type(items[0]),))
        return ParamType(kind)
    return _ANY


def _union(*members: ParamType) -> ParamType:
    flat: list[ParamType] = []
    for m in members:
        for item in m.args if m.kind == "union" else (m,):
            if item not in flat:
                flat.append(item)
    if any(m.kind == "any" for m in flat):
        return _ANY
    return flat[0] if len(flat) == 1 else ParamType("union", tuple(flat))


def _inferred_type(default: Any) -> ParamType:
    # Without a hint the literal default tells the type. Numbers stay interchangeable: `threshold = 1`
    # should still take 0.5.
    if isinstance(default, bool):
        return ParamType("bool")
    if isinstance(default, (int, float)):
        return ParamType("number")
    if isinstance(default, str):
        return ParamType("str")
    if isinstance(default, (list, tuple)):
        return ParamType("list")
    if isinstance(default, dict):
        return ParamType("dict")
    return _ANY


def _comments_by_line(source: str) -> dict[int, str]:
    comments: dict[int, str] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                comments[tok.start[0]] = tok.string.lstrip("#").strip()
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return comments


def _parse_parameters_cell(source: str) -> dict[str, Parameter]:
    # IPython magics and shell escapes are not Python; blank them so line numbers stay right.
    lines = [("" if line.lstrip().startswith(("%", "!")) else line) for line in source.splitlines()]
    code = "\n".join(lines)
    tree = ast.parse(code)
    comments = _comments_by_line(code)
    params: dict[str, Parameter] = {}
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            targets, value, annotation = [node.target], node.value, node.annotation
        elif isinstance(node, ast.Assign):
            targets, value, annotation = [], node.value, None
            for t in node.targets:
                targets.extend(t.elts if isinstance(t, (ast.Tuple, ast.List)) else [t])
            if len(node.targets) == 1 and isinstance(node.targets[0], (ast.Tuple, ast.List)):
                value = None  # `a, b = 1, 2`: no single default per name
        else:
            continue
        default, literal = None, False
        if value is not None:
            try:
                default, literal = ast.literal_eval(value), True
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                pass
        for target in targets:
            if not isinstance(target, ast.Name):
                continue
            declared = _annotation_type(annotation)
            if annotation is None:
                declared = _inferred_type(default) if literal else _ANY
            elif literal and default is None and declared.kind not in ("any", "none"):
                declared = _union(declared, _NONE)  # `max_files: int = None` means "int or None"
            params[target.id] = Parameter(
                name=target.id,
                type=declared,
                annotation=ast.get_source_segment(code, annotation) if annotation is not None else None,
                default=default,
                default_text=ast.get_source_segment(code, value) if value is not None else "",
                has_literal_default=literal,
                help=comments.get(node.end_lineno, ""),
            )
    return params


def read_notebook(notebook: str | os.PathLike):
    """The notebook at ``notebook`` as an ``nbformat`` v4 node.

    Raises
    ------
    NotebookNotFoundError
        No such file (naming close matches in the same folder).
    FileFormatError
        The file is not a readable Jupyter notebook.
    """
    import nbformat

    path = Path(notebook)
    if not path.is_file():
        close = []
        if path.parent.is_dir():
            close = difflib.get_close_matches(path.name, [p.name for p in path.parent.glob("*.ipynb")], n=3)
        hint = f"; did you mean {', '.join(str(path.parent / c) for c in close)}?" if close else ""
        raise NotebookNotFoundError(f"notebook {path} does not exist{hint}")
    try:
        return nbformat.read(path, as_version=4)
    except Exception as exc:  # nbformat raises several unrelated types for a bad file
        raise FileFormatError(
            f"{path} is not a readable Jupyter notebook ({type(exc).__name__}: {exc})"
        ) from exc


def _parameters_cell(nb) -> Any | None:
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in (cell.get("metadata", {}).get("tags") or []):
            return cell
    return None


def declared_parameters(notebook: str | os.PathLike) -> dict[str, Parameter]:
    """The parameters a notebook declares in its ``parameters``-tagged cell, by name, in order.

    Each has its type (from the type hint, or inferred from a literal default), default and help comment.
    A notebook without such a cell declares none.
    """
    nb = read_notebook(notebook)
    cell = _parameters_cell(nb)
    if cell is None:
        return {}
    try:
        return _parse_parameters_cell(cell.source)
    except SyntaxError as exc:
        raise FileFormatError(
            f"the parameters cell of {notebook} is not valid Python "
            f"(line {exc.lineno}: {exc.msg}); fix the cell"
        ) from exc


class _Mismatch(Exception):
    pass


def _text_is_kept(t: ParamType) -> bool:
    return t.kind in ("str", "path") or (t.kind == "literal" and all(isinstance(a, str) for a in t.args))


def _coerce(value: Any, t: ParamType) -> Any:
    """``value`` converted to ``t`` where that is lossless and obvious; raise _Mismatch otherwise."""
    import yaml

    kind = t.kind
    if kind == "any":
        return value
    if kind == "union":
        if isinstance(value, str) and any(_text_is_kept(m) for m in t.args):
            return value
        for member in t.args:
            try:
                return _coerce(value, member)
            except _Mismatch:
                continue
        raise _Mismatch
    if kind == "none" and value in ("None", "none"):
        return None
    if isinstance(value, str) and not _text_is_kept(t):
        # Text from the command line, a grid or a YAML string: read it as YAML, as papermill does.
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise _Mismatch from exc
        if isinstance(parsed, str) and kind in ("int", "float", "number"):
            try:  # YAML 1.1 reads "1e3" as text
                parsed = float(parsed)
            except ValueError:
                raise _Mismatch from None
        elif isinstance(parsed, str) and kind != "none":
            raise _Mismatch
        value = parsed
    if kind == "none":
        if value is None:
            return None
        raise _Mismatch
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _Mismatch
    if kind in ("float", "number"):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value) if kind == "float" else value
        raise _Mismatch
    if kind in ("str", "path"):
        if isinstance(value, str):
            return value
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise _Mismatch
    if kind in ("list", "tuple"):
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        return [_coerce(v, t.args[0]) for v in value] if t.args else list(value)
    if kind == "dict":
        if isinstance(value, dict):
            return value
        raise _Mismatch
    if kind == "literal":
        for allowed in t.args:
            if value == allowed and type(value) is type(allowed):
                return value
        raise _Mismatch
    return value


def _undeclared_message(notebook: Any, unknown: list[str], declared: dict[str, Parameter]) -> str:
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name, list(declared), n=1)
        parts.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    listing = "; ".join(p.declaration for p in declared.values()) if declared else "none"
    where = "its cell tagged `parameters`" if declared else "a cell tagged `parameters` (it has none)"
    return (
        f"notebook {notebook} does not declare the parameter{'s' if len(unknown) > 1 else ''} "
        f"{', '.join(parts)}. "
        f"A notebook declares parameters in {where}. Declared: {listing}"
    )


def validate_parameters(notebook: str | os.PathLike, params: dict[str, Any] | None) -> dict[str, Any]:
    """Check run parameters against a notebook's ``parameters`` cell and return them converted.

    Every name must be declared in the cell, and every value must fit the declared type hint (or the type
    of a literal default): ``int`` takes 3 or 3.0 but not 3.5, ``float`` takes ints, ``bool`` only
    true/false, ``str`` takes text and numbers, ``list[int]`` checks each item, ``Literal[...]`` the choices.
    Text values for non-text parameters are read as YAML (``"3"`` → 3, ``"[1, 2]"`` → [1, 2]), so grid
    and command-line values work unchanged.

    Raises
    ------
    ParameterError
        Naming the undeclared parameter (with a close match) or the value and the type it should have.

    Example
    -------
    >>> validate_parameters("notebooks/das_traffic.ipynb", {"speed_min_kmh": "30"})   # doctest: +SKIP
    {'speed_min_kmh': 30.0}
    """
    params = dict(params or {})
    if not params:
        read_notebook(notebook)
        return {}
    declared = declared_parameters(notebook)
    unknown = [name for name in params if name not in declared]
    if unknown:
        raise ParameterError(_undeclared_message(notebook, unknown, declared))
    out = {}
    for name, value in params.items():
        spec = declared[name]
        try:
            out[name] = _coerce(value, spec.type)
        except _Mismatch:
            raise ParameterError(
                f"parameter {name!r} of {notebook} expects {spec.type} (declared `{spec.declaration}`), "
                f"got {value!r} ({type(value).__name__})"
            ) from None
    return out


def parse_parameter_text(notebook: str | os.PathLike, texts: dict[str, str]) -> dict[str, Any]:
    """Turn command-line text values (``-p NAME VALUE``) into typed values for a notebook.

    Text stays text for ``str`` parameters (``-p station 001`` keeps ``"001"``); any other value is read as
    YAML like papermill does (``30`` → int, ``0.5`` → float, ``true`` → bool, ``[1, 2]`` → list), then checked
    with ``validate_parameters``.
    """
    import yaml

    declared = declared_parameters(notebook)
    unknown = [name for name in texts if name not in declared]
    if unknown:
        raise ParameterError(_undeclared_message(notebook, unknown, declared))
    values: dict[str, Any] = {}
    for name, text in texts.items():
        # Typed parameters read text themselves (validate_parameters); only untyped ones need YAML here.
        if declared[name].type.kind == "any":
            try:
                values[name] = yaml.safe_load(text)
            except yaml.YAMLError:
                values[name] = text
        else:
            values[name] = text
    return validate_parameters(notebook, values)


def load_parameters_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML (or JSON) parameter file holding one mapping ``{name: value}``.

    Raises ParameterError when the file is missing, is not valid YAML, or is not a mapping.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"parameter file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ParameterError(
            f"parameter file {path} is not valid YAML{where}: {getattr(exc, 'problem', exc)}"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ParameterError(f"parameter file {path} is not a text file ({exc})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise ParameterError(
            f"parameter file {path} must hold a mapping of parameter names to values "
            f"(like `speed_min_kmh: 30`), "
            f"got {type(data).__name__}"
        )
    return data


# --- kernel ----------------------------------------------------------------------------------------
def check_kernel(kernel: str = DEFAULT_KERNEL) -> None:
    """Raise KernelNotFoundError, saying how to register it, when the Jupyter kernel ``kernel`` is missing."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    manager = KernelSpecManager()
    try:
        manager.get_kernel_spec(kernel)
    except NoSuchKernel:
        available = ", ".join(sorted(manager.find_kernel_specs())) or "none"
        how = (
            "Run `make setup`, or register it with "
            '`python -m ipykernel install --sys-prefix --name terralab --display-name "Python (terralab)"` '
            "from the environment terralab is installed in"
            if kernel == DEFAULT_KERNEL
            else f"Register it (`python -m ipykernel install --sys-prefix --name {kernel}`) "
            "or pick one of those "
            "with --kernel"
        )
        raise KernelNotFoundError(
            f"Jupyter kernel {kernel!r} is not registered (available: {available}). {how}."
        )


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


def _kernel_manager_class(env: dict[str, str], cwd: str, started: list | None = None):
    """nbclient's kernel manager, starting the kernel with ``env`` added to its environment and in ``cwd``.

    Handing both to the kernel process (instead of changing os.environ and chdir, as papermill's ``cwd``
    does) keeps runs in threads of one process apart. The manager also asks for CurveZMQ encryption where
    zmq and the kernel support it: kernel traffic is then encrypted on shared machines, and ipykernel stops
    warning "running over TCP without encryption" on every run. Every manager that starts a kernel is
    appended to ``started``, so an interrupt can stop that kernel at once.
    """
    import zmq
    from jupyter_client.manager import AsyncKernelManager

    encrypt = zmq.has("curve") and "transport_encryption" in AsyncKernelManager.class_trait_names()

    class _RunKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            if encrypt:
                kwargs.setdefault("transport_encryption", "auto")
            super().__init__(**kwargs)

        async def _async_interrupt_kernel(self):
            # jupyter_client interrupts a kernel before asking it to shut down. After the last cell the kernel
            # may still be finishing that cell's reply, and the interrupt then prints "KeyboardInterrupt caught
            # in kernel." on every few runs. An idle kernel needs no interrupt to shut down; a busy one (a cell
            # that timed out) is killed after shutdown_wait_time.
            if self.shutting_down:
                return
            await super()._async_interrupt_kernel()

        async def start_kernel(self, **kw):
            kw["env"] = {**(kw.get("env") or os.environ), **env}
            kw.setdefault("cwd", cwd)
            if started is not None:
                started.append(self)
            _LIVE_KERNELS.add(self)
            return await super().start_kernel(**kw)

    return _RunKernelManager


# Every kernel manager a run in this process started (weakly held: gone once its run is done).
_LIVE_KERNELS: weakref.WeakSet = weakref.WeakSet()


def kill_running_kernels() -> None:
    """Kill every kernel that runs of this process still have: what a closing sweep worker does."""
    _kill_kernels(list(_LIVE_KERNELS))


class Interrupted(KeyboardInterrupt):
    """A run stopped by SIGINT (Ctrl-C) or SIGTERM; ``signum`` says which. The CLI exits 130 or 143."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _kill_kernels(managers: list) -> None:
    """SIGKILL the process group of every kernel these managers started (each kernel leads its own).

    A kernel asked to shut down while a cell runs prints a screenful of ZMQ errors; one killed outright
    says nothing, and nbclient's cleanup then only removes its connection file.
    """
    import signal

    for km in managers:
        process = getattr(getattr(km, "provisioner", None), "process", None)
        pid = getattr(process, "pid", None)
        if not pid:
            continue
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, OSError):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


@contextlib.contextmanager
def _stop_kernels_on_signals(managers: list) -> Iterator[None]:
    """While the block runs, SIGINT and SIGTERM kill this run's kernels and raise :class:`Interrupted`.

    Only in the main thread (where Python delivers signals); runs in other threads, such as sweep tasks on
    a Dask worker, are left to their process's own handling.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        _kill_kernels(managers)
        raise Interrupted(signum)

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):  # not settable here (an embedded interpreter)
            pass
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


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


def _error_from_notebook(nb) -> dict[str, Any] | None:
    """The first failing user cell of an executed notebook: its position in the source notebook and the error.

    A cell with an error output wins; otherwise a cell papermill marked as failed or still running (a
    timeout); otherwise the last cell that started (a kernel that died leaves no other trace).
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


def _mark_failure(nb, error: dict[str, Any]) -> None:
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
    style = 'style="color:red; font-family:Helvetica Neue, Helvetica, Arial, sans-serif; font-size:2em;"'
    what = html_escape(f"{error.get('ename', '')}: {error.get('evalue', '')}".strip(": "))
    banner = nbformat.v4.new_markdown_cell(
        f'<span {style}>The run stopped at <a href="#papermill-error-cell">this cell</a>: {what}</span>'
    )
    anchor = nbformat.v4.new_markdown_cell(
        f'<span id="papermill-error-cell" {style}>Execution stopped here: {what}</span>'
    )
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

    # The lab template links require.js, MathJax and mermaid from a CDN; drop them so the page is whole
    # offline. MathJax comes back only when the notebook's markdown has math, and then only adds to it.
    template = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}
{%- if resources.terralab_mathjax -%}{{ super() }}{%- endif -%}
{%- endblock -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block body_header -%}{{ super() }}{{ resources.terralab_summary }}{%- endblock body_header -%}
"""
    return HTMLExporter(
        extra_loaders=[jinja2.DictLoader({"terralab_run.html.j2": template})],
        template_file="terralab_run.html.j2",
        exclude_input=not show_code,
        exclude_input_prompt=not show_code,
        exclude_output_prompt=not show_code,
        embed_images=True,
    )


def render_html(
    nb, run: dict[str, Any], *, show_code: bool = False, resources_path: Path | None = None
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
    declared = declared_parameters(notebook) if _parameters_cell(nb_source) is not None else {}

    name = name or notebook.stem
    if not _NAME_RE.match(name):
        raise InvalidInputError(
            f"run name {name!r} must be a plain file name (letters, digits, '.', '_', '-'), not a path"
        )
    remote = storage.is_url(output_dir)
    if remote:
        # An object store has no rename and no partial files to watch: the run is staged in a local
        # scratch folder and its three files are uploaded together when it ends.
        fs, root, out_url = storage.open_output(output_dir, what="output directory")
        staging = Path(tempfile.mkdtemp(prefix="terralab-run-"))
        out = staging
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
            targets = {suffix: storage.join(out_url, f"{name}{suffix}") for suffix in _OUTPUT_SUFFIXES}
            put_together(
                fs,
                [
                    (out / f"{name}{suffix}", storage.join(root, f"{name}{suffix}"))
                    for suffix in _OUTPUT_SUFFIXES
                ],
            )
            result.output_notebook = targets[".ipynb"]
            result.html = targets[".html"]
            result.metrics_json = targets[".metrics.json"]
    finally:
        if remote:
            shutil.rmtree(staging, ignore_errors=True)
    _log.info("%s: %s in %.1f s, report %s", name, result.status, result.duration_s, result.html)
    return result


# The three files of a run, in the order they replace an earlier run's: metrics last, so its presence
# (what `terralab report` and sweeps look for) means the run is complete.
_OUTPUT_SUFFIXES = (".ipynb", ".html", ".metrics.json")


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
    import papermill
    from papermill.exceptions import PapermillExecutionError

    ipynb_path = out / f"{name}.ipynb"
    html_path = out / f"{name}.html"
    metrics_path = out / f"{name}.metrics.json"
    running_path = out / f".{name}.running.ipynb"
    # record() writes here while the kernel runs. An earlier run's three files stay untouched until the new
    # three replace them together, so an interrupted rerun loses nothing.
    recorded_path = out / f".{name}.running-metrics.json"
    recorded_path.unlink(missing_ok=True)  # left by a run that was killed outright

    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    # The kernel gets the inline plotting backend even when MPLBACKEND=Agg (the Makefile and the tests set
    # it for headless plotting), which would otherwise keep figures out of the notebook.
    # TERRALAB_REPORT_RUN keeps terralab's progress bars (terralab.progress) out of the report.
    kernel_env = {
        report.METRICS_ENV: str(recorded_path),
        REPORT_RUN_ENV: "1",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }
    # OpenMP threads that spin while waiting (torch's default) starve every other process on a busy machine:
    # the rice notebook took 41 s instead of 12 s beside one busy core (10.2 s vs 11.4 s when idle).
    # Sweeps put several kernels on the same cores, so kernels wait passively unless the user chose otherwise.
    kernel_env["OMP_WAIT_POLICY"] = os.environ.get("OMP_WAIT_POLICY") or "PASSIVE"
    error: dict[str, Any] | None = None
    raised_outside = False
    kernels: list = []
    try:
        with _stop_kernels_on_signals(kernels):
            t0 = time.perf_counter()
            try:
                papermill.execute_notebook(
                    str(notebook),
                    str(running_path),
                    parameters=params,
                    kernel_name=kernel,
                    progress_bar=progress,
                    execution_timeout=cell_timeout_s,
                    kernel_manager_class=_kernel_manager_class(
                        kernel_env, str(notebook.resolve().parent), kernels
                    ),
                )
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
                error = {
                    "cell_index": None,
                    "execution_count": None,
                    "ename": type(exc).__name__,
                    "evalue": str(exc).strip().splitlines()[0] if str(exc).strip() else "",
                    "source": "",
                }
            finally:
                duration_s = round(time.perf_counter() - t0, 3)

            if running_path.exists():
                nb = nbformat.read(running_path, as_version=4)
            else:
                nb = copy.deepcopy(nb_source)
            if error is not None:
                located = _error_from_notebook(nb)
                if located is not None:
                    # The notebook knows the user's cell position. For a cell error it also knows the
                    # exception; for a timeout or a dead kernel the runner's exception says what happened.
                    error = (
                        {**located, "ename": error["ename"], "evalue": error["evalue"]}
                        if raised_outside
                        else {
                            **located,
                            "ename": located["ename"] or error["ename"],
                            "evalue": located["evalue"] or error["evalue"],
                        }
                    )
            status = "ok" if error is None else "failed"
            if error is not None:
                _mark_failure(nb, error)
            metrics = _recorded_metrics(recorded_path)
            metrics.update(report.metrics_from_notebook(nb))
            run = {
                "name": name,
                "notebook": str(notebook),
                "parameters": report.to_jsonable(params, "parameters"),
                "defaults": _jsonable_defaults(declared),
                "status": status,
                "started": started,
                "duration_s": duration_s,
                "metrics": metrics,
                "error": error,
                "kernel": kernel,
                "html": html_path.name,
                "output_notebook": ipynb_path.name,
            }
            nb.metadata["terralab"] = {
                k: run[k]
                for k in ("parameters", "defaults", "metrics", "status", "duration_s", "started", "error")
            }
            html = render_html(nb, run, show_code=show_code, resources_path=notebook.resolve().parent)
            with atomic_paths(ipynb_path, html_path, metrics_path) as (nb_tmp, html_tmp, metrics_tmp):
                nbformat.write(nb, str(nb_tmp))
                html_tmp.write_text(html, encoding="utf-8")
                metrics_tmp.write_text(json.dumps(run, indent=2), encoding="utf-8")
    finally:
        running_path.unlink(missing_ok=True)
        recorded_path.unlink(missing_ok=True)

    return RunResult(
        name=name,
        notebook=notebook,
        status=status,
        output_notebook=ipynb_path,
        html=html_path,
        metrics_json=metrics_path,
        parameters=params,
        duration_s=duration_s,
        started=started,
        error=error,
        metrics=metrics,
    )


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
