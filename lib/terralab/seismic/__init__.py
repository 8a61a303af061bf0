"""Seismic ML: CEED / SeisBench / PhaseNet data, PhaseNet with the original weights, picking, polarity,
catalogs.

Submodules mirror SeisBench's split: :mod:`~terralab.seismic.io` (datasets), :mod:`~terralab.seismic.phasenet`
(the model), :mod:`~terralab.seismic.picking` (continuous annotation and picks; input preparation in
:mod:`~terralab.seismic.waveforms`), :mod:`~terralab.seismic.polarity`,
:mod:`~terralab.seismic.train`, :mod:`~terralab.seismic.evaluate`, :mod:`~terralab.seismic.catalog`,
:mod:`~terralab.seismic.synthetic`. The names below are imported on first use, so ``import terralab.seismic``
loads neither torch nor ObsPy.

Example
-------
>>> from terralab import seismic
>>> records = seismic.read_sample()                          # 20 real NCEDC records (MIT)
>>> picks = seismic.pick(seismic.record_waveform(records, 0))
>>> list(picks["phase"])
['P', 'S']
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    # io
    "open_ceed": "io",
    "CEEDFile": "io",
    "read_seisbench": "io",
    "write_seisbench": "io",
    "read_phasenet_npz": "io",
    "read_sample": "io",
    "read_waveforms": "io",
    "record_waveform": "io",
    "reference_picks": "io",
    "stitch_records": "io",
    "make_records": "io",
    "dataarray_to_stream": "io",
    "waveform_dataarray": "io",
    "save_records_npz": "io",
    # model
    "load_phasenet": "phasenet",
    "PhaseNet": "phasenet",
    # picking
    "annotate": "picking",
    "pick": "picking",
    "picks_from_annotations": "picking",
    "annotate_records": "picking",
    "plot_picks": "picking",
    # polarity
    "first_motion_polarity": "polarity",
    # training / evaluation
    "train_phasenet": "train",
    "gaussian_labels": "train",
    "evaluate_picks": "evaluate",
    "polarity_accuracy": "evaluate",
    "phasenet_protocol": "evaluate",
    "protocol_picks": "evaluate",
    "published_figures": "evaluate",
    "evaluate_records": "evaluate",
    "pick_records": "evaluate",
    "window_offset_stability": "evaluate",
    "comparison_table": "evaluate",
    # catalogs
    "read_catalog": "catalog",
    "read_stations": "catalog",
    "ridgecrest": "catalog",
    "b_value": "catalog",
    "magnitude_of_completeness": "catalog",
    "match_catalogs": "catalog",
    "plot_catalog_map": "catalog",
    "frequency_magnitude": "catalog",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
