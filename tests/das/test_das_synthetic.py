"""The synthetic traffic generator: reproducible, physically sensible, with the promised imperfections."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from terralab.das import synthetic
from terralab.errors import InvalidInputError


@pytest.fixture(scope="module")
def scene():
    return synthetic.urban_street(duration_s=180.0, n_channels=40, seed=5)


def test_same_seed_gives_the_same_record_and_truth(scene):
    data, truth = scene
    data2, truth2 = synthetic.urban_street(duration_s=180.0, n_channels=40, seed=5)
    np.testing.assert_array_equal(data.values, data2.values)
    pd.testing.assert_frame_equal(truth, truth2)


def test_truth_respects_the_requested_speeds_directions_and_completeness(scene):
    data, truth = scene
    assert len(truth) > 5
    assert truth["speed_kmh"].between(10 * 0.85, 60 * 1.35).all()  # speed changes and overtaking cars
    assert set(truth["direction"]) == {1, -1}
    assert set(truth["vehicle_class"]) <= {"car", "truck"}
    assert (truth["t_enter"] >= data.time.values[0]).all() and (truth["t_exit"] <= data.time.values[-1]).all()
    assert data.attrs["units"] == "1/s" and data.dims == ("time", "distance")


def test_record_has_dead_nan_and_noisy_channels_listed_in_attrs(scene):
    data, _ = scene
    x = data["distance"].values
    for key in ("dead_channels_m", "nan_channels_m", "noisy_channels_m"):
        assert len(data.attrs[key]) >= 1
    dead = np.isin(x, data.attrs["dead_channels_m"])
    nan = np.isin(x, data.attrs["nan_channels_m"])
    noisy = np.isin(x, data.attrs["noisy_channels_m"])
    assert (data.values[:, dead] == 0).all() and np.isnan(data.values[:, nan]).all()
    ok = ~(dead | nan | noisy)
    assert data.values[:, noisy].std() > 3 * np.nanstd(data.values[:, ok])


def test_trucks_strain_the_fibre_more_than_cars():
    vehicles = pd.DataFrame(
        {
            "time_s": [20.0, 50.0],
            "speed_kmh": [50.0, 50.0],
            "direction": [1, 1],
            "vehicle_class": ["car", "truck"],
        }
    )
    data, truth = synthetic.urban_street(
        duration_s=70.0,
        n_channels=30,
        vehicles=vehicles,
        seed=1,
        white_noise=0.0,
        coloured_noise=0.0,
        common_mode_noise=0.0,
        dead_channels=0,
        nan_channels=0,
        noisy_channels=0,
    )
    strain = np.cumsum(data.values, axis=0) / data.attrs["sampling_rate_hz"]
    t = (data.time.values - data.time.values[0]) / np.timedelta64(1, "s")
    car = np.abs(strain[(t > 10) & (t < 30)]).max()
    truck = np.abs(strain[(t > 40) & (t < 60)]).max()
    assert truck > 1.5 * car
    assert truth.loc[1, "gross_load_kn"] > truth.loc[0, "gross_load_kn"]


def test_explicit_schedule_is_validated():
    with pytest.raises(InvalidInputError, match="columns"):
        synthetic.traffic(vehicles=pd.DataFrame({"time_s": [1.0]}), duration_s=10, n_channels=10)
    with pytest.raises(InvalidInputError, match="scene"):
        synthetic.scene("motorway")
