r"""A notebook's parameters: what its ``parameters`` cell declares, and run values checked against it.

The cell tagged ``parameters`` is read without running it: each assignment declares a name, with its type
from the type hint (or the type of a literal default), its default and the comment on its line as help.
Values for a run (from Python, a YAML file, ``-p NAME VALUE`` or a sweep's grid) are checked against those
types and converted where that is lossless and obvious, before anything runs.

>>> declared = parse_parameters_cell("speed_min_kmh: float = 20  # slowest vehicle kept\nstation = 'A1'")
>>> declared["speed_min_kmh"].type.kind, declared["speed_min_kmh"].help, str(declared["station"].type)
('float', 'slowest vehicle kept', 'str')
"""

from __future__ import annotations

import ast
import difflib
import io
import os
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import FileFormatError, NotebookNotFoundError, ParameterError

if TYPE_CHECKING:
    from nbformat import NotebookNode

__all__ = [
    "ParamType",
    "Parameter",
    "declared_parameters",
    "load_parameters_file",
    "parse_parameter_text",
    "parse_parameters_cell",
    "read_notebook",
    "validate_parameters",
]


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


def parse_parameters_cell(source: str) -> dict[str, Parameter]:
    """The parameters declared by the source text of a ``parameters`` cell, by name, in order.

    Raises SyntaxError when the text is not Python (``declared_parameters`` turns that into a
    FileFormatError naming the notebook).
    """
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


def read_notebook(notebook: str | os.PathLike) -> NotebookNode:
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
        return parse_parameters_cell(cell.source)
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
