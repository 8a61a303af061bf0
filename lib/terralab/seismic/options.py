"""Options of the windowed PhaseNet inference of :func:`terralab.seismic.picking.pick`, as a frozen dataclass.

``seismic.pick(waveforms, model, overlap_s=10.0, merge="max")`` passes ``overlap_s`` and ``merge`` on to
:class:`WindowOptions`; a name that is no option is refused with the names that are.

>>> from terralab.seismic.options import window_options
>>> opts = window_options({"overlap_s": 10.0, "merge": "max"})
>>> opts.overlap_s, opts.merge, opts.taper_s
(10.0, 'max', 5.0)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..options import options_from

__all__ = ["WindowOptions", "window_options"]


@dataclass(frozen=True)
class WindowOptions:
    """How the data are cut into windows, run through the network and merged back (see
    :func:`terralab.seismic.picking.annotate`, whose arguments of the same names these are)."""

    overlap_s: float = 15.0
    merge: str = "average"
    taper_s: float = 5.0
    batch_size: int = 256
    num_threads: int | None = None
    align_windows: str = "utc"


def window_options(given: Mapping[str, Any], *, caller: str = "pick") -> WindowOptions:
    """The :class:`WindowOptions` of ``given`` keyword arguments, checking their names.

    Raises
    ------
    InvalidInputError
        A name that is no option (the message lists the options there are).
    """
    return options_from(
        WindowOptions, given, caller=caller, hint="besides its own arguments (see its docstring)"
    )
