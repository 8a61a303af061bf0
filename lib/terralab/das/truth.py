"""The columns of the simulators' truth tables (one row per vehicle), shared by both simulators.

:mod:`terralab.das.synthetic` (Gaussian bumps) writes :data:`TRUTH_COLUMNS`; :mod:`terralab.das.halfspace`
writes :data:`HALFSPACE_TRUTH_COLUMNS`, the same with the vehicle ``kind`` and its lane, coverage and
stop/turn/complete columns. :func:`terralab.das.evaluate.match` needs only ``time``, ``speed_kmh`` and
``direction``.

>>> from terralab.das.truth import HALFSPACE_TRUTH_COLUMNS, TRUTH_COLUMNS
>>> set(TRUTH_COLUMNS) < set(HALFSPACE_TRUTH_COLUMNS)
True
"""

from __future__ import annotations

__all__ = ["HALFSPACE_TRUTH_COLUMNS", "TRUTH_COLUMNS"]

#: Truth columns of every simulator, in order.
TRUTH_COLUMNS = [
    "vehicle_id",
    "time",
    "speed_kmh",
    "direction",
    "vehicle_class",
    "t_enter",
    "t_exit",
    "speed_change",
    "n_axles",
    "length_m",
    "gross_load_kn",
    "vib_freq_hz",
    "lane_coupling",
    "platoon_id",
    "overtaking",
]
#: Truth columns of the half-space simulator, in order: the vehicle kind after its class, lane and fate last.
HALFSPACE_TRUTH_COLUMNS = [
    *TRUTH_COLUMNS[:5],
    "kind",
    *TRUTH_COLUMNS[5:],
    "lane_y_m",
    "coverage",
    "stopped",
    "turning",
    "complete",
]
