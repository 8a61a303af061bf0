"""The grid of a sweep: its points, their run names, and the checks before anything runs.

A grid maps each swept parameter of a notebook to its values; a sweep runs once per combination
(:func:`grid_points`), each under a file-system-safe name (:func:`run_names`). :func:`check_grid` checks every
value against the notebook's ``parameters`` cell before the sweep starts; :func:`parse_grid` reads the
command line's ``--grid NAME=V1,V2``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from typing import Any

__all__ = ["check_grid", "grid_points", "parse_grid", "run_name", "run_names"]

_MAX_NAME = 120


def grid_points(grid: dict[str, list]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, first parameter varying slowest.

    >>> grid_points({"bands": ["RGBN", "RGBNE"], "model": ["unet", "dnn"]})[1]
    {'bands': 'RGBN', 'model': 'dnn'}
    """
    names = list(grid)
    return [dict(zip(names, combo)) for combo in itertools.product(*(grid[n] for n in names))]


def _slug(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (list, dict, bool)) or value is None else str(value)
    return re.sub(r"[^A-Za-z0-9.-]+", "_", text).strip("_.") or "_"


def run_name(stem: str, point: dict[str, Any]) -> str:
    """A file-system-safe run name for one grid point: ``stem__bands-RGBN__model-unet``.

    Characters other than letters, digits, ``.`` and ``-`` become ``_`` (what ``run_notebook`` accepts as a
    name); names longer than 120 characters are cut and given a hash of the point, so they stay unique.
    """
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("_.-") or "run"
    name = "__".join([base] + [f"{_slug(k)}-{_slug(v)}" for k, v in point.items()])
    if len(name) > _MAX_NAME:
        digest = hashlib.sha1(json.dumps(point, sort_keys=True, default=str).encode()).hexdigest()[:10]
        name = f"{name[: _MAX_NAME - 12]}__{digest}"
    return name


def run_names(stem: str, points: list[dict[str, Any]]) -> list[str]:
    """``run_name`` for every point; points whose names collide (``"a b"``, ``"a_b"``) get a hash suffix."""
    names = [run_name(stem, p) for p in points]
    seen: dict[str, int] = {}
    for n in names:
        seen[n] = seen.get(n, 0) + 1
    out = []
    for name, point in zip(names, points):
        if seen[name] > 1:
            digest = hashlib.sha1(json.dumps(point, sort_keys=True, default=str).encode()).hexdigest()[:8]
            name = f"{name}__{digest}"
        out.append(name)
    return out


def check_grid(
    notebook: str | os.PathLike, grid: dict[str, Any], fixed: dict[str, Any] | None = None
) -> tuple[dict[str, list], list[dict[str, Any]]]:
    """Validate a grid against the notebook's declared parameters before anything runs.

    Every value of every parameter is checked against its type hint (``terralab.params.validate_parameters``),
    as is every fixed parameter; all problems are reported at once.

    Returns
    -------
    (grid, points)
        The grid with values converted to the declared types, and its points (each with the fixed values).

    Raises
    ------
    ParameterError
        For an empty grid, an empty or duplicated value list, a name also given as fixed, an undeclared name,
        or a value that does not fit its parameter's type.
    """
    from .errors import ParameterError
    from .params import validate_parameters

    fixed = dict(fixed or {})
    if not isinstance(grid, dict) or not grid:
        raise ParameterError(
            "the grid is empty: give at least one parameter with its values, e.g. {'model': ['unet', 'dnn']} "
            "or --grid model=unet,dnn"
        )
    problems = []
    both = sorted(set(grid) & set(fixed))
    if both:
        problems.append(f"{', '.join(both)} given both in the grid and as fixed parameters; keep one")
    checked_fixed = {}
    try:
        checked_fixed = validate_parameters(notebook, fixed)
    except ParameterError as exc:
        problems.append(str(exc))
    checked: dict[str, list] = {}
    for name, values in grid.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            values = [values]
        values = list(values)
        if not values:
            problems.append(f"grid parameter {name!r} has no values")
            continue
        converted = []
        for value in values:
            try:
                converted.append(validate_parameters(notebook, {name: value})[name])
            except ParameterError as exc:
                problems.append(str(exc))
                if "does not declare" in str(exc):
                    break
        dupes = [v for i, v in enumerate(converted) if v in converted[:i]]
        if dupes:
            problems.append(f"grid parameter {name!r} repeats the value(s) {dupes!r}")
        checked[name] = converted
    if problems:
        raise ParameterError("the sweep was not started: " + " | ".join(problems))
    points = [{**checked_fixed, **p} for p in grid_points(checked)]
    return checked, points


def parse_grid(notebook: str | os.PathLike, items: list[str]) -> dict[str, list]:
    """Turn command-line ``NAME=V1,V2`` strings into a typed grid for ``notebook``.

    Values are split on commas and typed like ``-p`` values of ``terralab run`` (``str`` parameters keep
    text, others are read as YAML). A value list that itself holds commas is written as a YAML list:
    ``sizes=[[64, 64], [128, 128]]``.
    """
    import yaml

    from .errors import ParameterError
    from .params import parse_parameter_text

    grid: dict[str, list] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ParameterError(f"--grid {item!r}: write NAME=V1,V2 (e.g. --grid model=unet,dnn)")
        if name in grid:
            raise ParameterError(f"--grid {name} is given twice; list all its values once: {name}=V1,V2")
        if text.lstrip().startswith("["):
            try:
                raw = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise ParameterError(f"--grid {item!r}: the value list is not valid YAML ({exc})") from exc
            if not isinstance(raw, list):
                raise ParameterError(f"--grid {item!r}: expected a YAML list after '='")
            grid[name] = [
                parse_parameter_text(notebook, {name: v})[name] if isinstance(v, str) else v for v in raw
            ]
        else:
            grid[name] = [parse_parameter_text(notebook, {name: v.strip()})[name] for v in text.split(",")]
    return grid
