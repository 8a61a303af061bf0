"""DAS traffic monitoring: read fibre records, detect vehicles (speed, direction, car/truck), stream files.

Submodules are imported on first use so that ``import terralab.das`` stays fast:

* :mod:`~terralab.das.io` - ``read`` (DASCore vendor formats, npz, NetCDF/Zarr; readers in
  :mod:`~terralab.das.formats`), gap reports;
* :mod:`~terralab.das.synthetic` - ``traffic``, ``highway_bridge``, ``urban_street`` with ground truth, and
  ``random_scene`` from either simulator, their per-scene options in :mod:`~terralab.das.scene_options` (the
  bump simulator's vehicles in :mod:`~terralab.das.bump_fleet`, its signals in
  :mod:`~terralab.das.bump_render`; truth columns in :mod:`~terralab.das.truth`);
* :mod:`~terralab.das.halfspace` - a second, independent simulator (Boussinesq half-space, Rayleigh waves;
  its vehicles in :mod:`~terralab.das.halfspace_fleet`, its fields in :mod:`~terralab.das.halfspace_render`);
* :mod:`~terralab.das.diagnose` - ``diagnose``: noise, dead/saturated channels and coupling per channel;
* :mod:`~terralab.das.detect` - ``detect_vehicles`` and its ``DetectParams`` (settings in
  :mod:`~terralab.das.params`; the steps in :mod:`~terralab.das.lines` (speed bands, Hough segments),
  :mod:`~terralab.das.tracks` (ridge following, merging), :mod:`~terralab.das.chains` (sign-less ghost
  chains), :mod:`~terralab.das.peel` (the optional second pass) and :mod:`~terralab.das.energy` (the energy
  image));
* :mod:`~terralab.das.classify` - the packaged car/truck classifier and its re-training;
  :mod:`~terralab.das.trams` joins a tram's bogie tracks, and a long heavy vehicle's two lobes, once they are
  classified; :mod:`~terralab.das.restack` re-reads every vehicle's speed from the stacked strain image;
* :mod:`~terralab.das.streaming` - ``stream`` over arriving files, ``process_archive`` on dask;
* :mod:`~terralab.das.modal` - ``bridge_modes`` from quiet intervals;
* :mod:`~terralab.das.evaluate` - ``score`` and ``match`` against truth (pooled over scenes, with intervals
  over scenes, in :mod:`~terralab.das.intervals`); :mod:`~terralab.das.losses` gives each missed vehicle and
  each false detection a reason; :mod:`~terralab.das.oracle` the ceiling any detector of the same image meets;
* :mod:`~terralab.das.plot` - waterfall and summary figures.

Examples
--------
>>> from terralab import das
>>> data, truth = das.synthetic.highway_bridge(duration_s=60, n_channels=200, seed=0)   # doctest: +SKIP
>>> vehicles = das.detect_vehicles(data)                                                 # doctest: +SKIP
>>> das.score(vehicles, truth).loc[0, "recall"]                                         # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

_SUBMODULES = (
    "io",
    "formats",
    "synthetic",
    "bump_fleet",
    "bump_render",
    "halfspace",
    "halfspace_fleet",
    "halfspace_render",
    "detect",
    "params",
    "lines",
    "tracks",
    "chains",
    "peel",
    "energy",
    "truth",
    "scene_options",
    "classify",
    "trams",
    "restack",
    "streaming",
    "modal",
    "evaluate",
    "losses",
    "oracle",
    "intervals",
    "filters",
    "plot",
    "diagnose",
)
_FUNCTIONS = {
    "read": ("io", "read"),
    "gap_table": ("io", "gap_table"),
    "open_dataset": ("io", "open_dataset"),
    "write_files": ("io", "write_files"),
    "detect_vehicles": ("detect", "detect_vehicles"),
    "DetectParams": ("detect", "DetectParams"),
    "preprocess": ("detect", "preprocess"),
    "load_classifier": ("classify", "load_classifier"),
    "stream": ("streaming", "stream"),
    "process_archive": ("streaming", "process_archive"),
    "collect": ("streaming", "collect"),
    "bridge_modes": ("modal", "bridge_modes"),
    "quiet_intervals": ("modal", "quiet_intervals"),
    "score": ("evaluate", "score"),
    "diagnose": ("diagnose", "diagnose"),
    "match": ("evaluate", "match"),
}

__all__ = [
    "DetectParams",
    "bridge_modes",
    "classify",
    "collect",
    "detect",
    "detect_vehicles",
    "diagnose",
    "evaluate",
    "filters",
    "gap_table",
    "halfspace",
    "intervals",
    "io",
    "load_classifier",
    "losses",
    "match",
    "modal",
    "open_dataset",
    "oracle",
    "plot",
    "preprocess",
    "process_archive",
    "quiet_intervals",
    "read",
    "score",
    "stream",
    "streaming",
    "synthetic",
    "write_files",
]


# ``diagnose`` names both a submodule and its function: importing the submodule binds the package attribute to
# the module, which would shadow the lazy function after its first use. Bind the function eagerly (the module
# only needs numpy at import time).
from .diagnose import diagnose


def __getattr__(name: str) -> Any:
    if name in _FUNCTIONS:
        mod, attr = _FUNCTIONS[name]
        return getattr(importlib.import_module(f".{mod}", __name__), attr)
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
