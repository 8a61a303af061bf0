"""Bridge modal frequencies from the quiet intervals of a record."""

from __future__ import annotations

import numpy as np
import pytest

from terralab import das
from terralab.das import synthetic
from terralab.errors import InvalidInputError


def test_bridge_modes_recover_the_synthetic_modal_frequencies():
    data, _ = synthetic.highway_bridge(duration_s=150, n_channels=200, rate_per_min=2, seed=3)
    modes, ds = das.bridge_modes(data, return_spectrum=True)
    true = np.array([m[0] for m in synthetic.SCENES["highway_bridge"]["modes"]])
    found = modes["freq_hz"].to_numpy()
    assert len(found) <= 5
    for f in true:
        assert np.min(np.abs(found - f) / f) < 0.02, (f, found)
    assert ds["mode_shape"].sizes["mode"] == len(modes)
    assert modes.attrs["quiet_s"] > 30


def test_records_without_a_quiet_interval_raise_or_return_empty():
    data, _ = synthetic.highway_bridge(duration_s=40, n_channels=150, rate_per_min=30, seed=1)
    vehicles = das.detect_vehicles(data)
    busy = vehicles.assign(t_start=data.time.values[0], t_end=data.time.values[-1]).iloc[:1]
    with pytest.raises(InvalidInputError, match="quiet"):
        das.bridge_modes(data, busy)
    assert das.bridge_modes(data, busy, missing="empty").empty
