"""Options shared by the ``terralab`` commands and the functions behind them: one spelling, one check.

The library functions (``run_notebook``, ``sweep``) check their numbers with :func:`check_seconds` and
:func:`check_count` and raise :class:`terralab.errors.InvalidInputError`; the command line reads the same
options through :func:`seconds_option` and :func:`count_option`, so a bad ``--workers 0`` is refused with the
same words before anything starts.

>>> from terralab.options import check_seconds, check_count
>>> check_seconds("cell_timeout_s", "2.5"), check_seconds("timeout_s", None)
(2.5, None)
>>> check_count("n_workers", 4)
4
>>> check_count("n_workers", 0)
Traceback (most recent call last):
...
terralab.errors.InvalidInputError: n_workers must be at least 1 (a whole number), got 0
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, fields, replace
from typing import Any, TypeVar

from .errors import InvalidInputError

__all__ = [
    "DEFAULT_KERNEL",
    "add_kernel_option",
    "add_output_option",
    "check_count",
    "check_seconds",
    "count_option",
    "options_from",
    "seconds_option",
]

_T = TypeVar("_T")

#: The Jupyter kernel every run uses unless told otherwise (``make setup`` registers it).
DEFAULT_KERNEL = "terralab"


def check_seconds(name: str, value: Any, *, allow_none: bool = True) -> float | None:
    """``value`` as a positive, finite number of seconds; None passes when ``allow_none``.

    Raises InvalidInputError naming ``name`` for text that is not a number, zero, a negative number, NaN or
    infinity (write nothing, or leave the option out, for "no limit").
    """
    if value is None and allow_none:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number of seconds, got {value!r}") from None
    if isinstance(value, bool) or not (math.isfinite(seconds) and seconds > 0):
        raise InvalidInputError(f"{name} must be a positive, finite number of seconds, got {value!r}")
    return seconds


def check_count(name: str, value: Any, *, minimum: int = 1, allow_none: bool = True) -> int | None:
    """``value`` as a whole number of at least ``minimum``; None passes when ``allow_none``."""
    if value is None and allow_none:
        return None
    count: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        count = value
    elif (isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value)) or (
        isinstance(value, float) and value.is_integer()
    ):
        count = int(value)
    if count is None or count < minimum:
        raise InvalidInputError(f"{name} must be at least {minimum} (a whole number), got {value!r}")
    return count


def _argparse_type(check: Callable[..., Any], kind: str, **kwargs: Any) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            # argparse puts "argument --workers: " in front of the message
            return check("the value", text, allow_none=False, **kwargs)
        except InvalidInputError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = kind  # how argparse names the type if anything else goes wrong
    return convert


def seconds_option() -> Callable[[str], float]:
    """An argparse ``type`` for a positive number of seconds (``--cell-timeout``, ``--timeout``).

    >>> seconds_option()("0")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: the value must be a positive, finite number of seconds, got '0'
    """
    return _argparse_type(check_seconds, "seconds")


def count_option(*, minimum: int = 1) -> Callable[[str], int]:
    """An argparse ``type`` for a whole number of at least ``minimum`` (``--workers``)."""
    return _argparse_type(check_count, "count", minimum=minimum)


def add_output_option(parser: argparse.ArgumentParser, *, default: str | None, help: str) -> None:
    """``-o/--output`` (old spelling ``--output-dir`` still accepted), stored as ``args.output``."""
    parser.add_argument(
        "-o",
        "--output",
        "--output-dir",
        dest="output",
        default=default,
        metavar="DIR_OR_URL",
        help=help + " (--output-dir: the old spelling, still accepted)",
    )


def add_kernel_option(parser: argparse.ArgumentParser) -> None:
    """``--kernel NAME`` with :data:`DEFAULT_KERNEL` as its default."""
    parser.add_argument(
        "--kernel",
        default=DEFAULT_KERNEL,
        metavar="NAME",
        help=f"registered Jupyter kernel to run on (default: {DEFAULT_KERNEL})",
    )


def options_from(
    cls: type[_T], given: Mapping[str, Any], *, base: _T | None = None, caller: str, hint: str = ""
) -> _T:
    """An options dataclass ``cls`` from keyword arguments, refusing names that are no option of it.

    The one way a function with many knobs takes them (house rule: at most 12 parameters): the few that
    matter most stay named, the rest are ``**options`` checked here against a frozen dataclass. ``base`` (an
    instance of ``cls``) gives the values not in ``given``; without it, a field with no default must be given.
    ``caller`` names the function in the message; ``hint`` (a sentence) is added to it, e.g. where the other
    arguments are documented.

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Knobs:
    ...     width: int = 3
    ...     depth: int = 1
    >>> options_from(Knobs, {"depth": 2}, caller="build")
    Knobs(width=3, depth=2)
    >>> options_from(Knobs, {"hight": 2}, caller="build")
    Traceback (most recent call last):
    ...
    terralab.errors.InvalidInputError: build() got unknown option(s) 'hight'; its options are: depth, width
    """
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(given) - names)
    tail = f"; {hint}" if hint else ""
    if unknown:
        raise InvalidInputError(
            f"{caller}() got unknown option(s) {', '.join(map(repr, unknown))}; its options are: "
            f"{', '.join(sorted(names))}{tail}"
        )
    if base is not None:
        return replace(base, **given)  # type: ignore[type-var]
    missing = [
        f.name
        for f in fields(cls)  # type: ignore[arg-type]
        if f.default is MISSING and f.default_factory is MISSING and f.name not in given
    ]
    if missing:
        raise InvalidInputError(f"{caller}() needs the option(s) {', '.join(map(repr, missing))}{tail}")
    return cls(**given)
