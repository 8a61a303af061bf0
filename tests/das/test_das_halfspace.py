"""The second, independent simulator: elastic half-space mechanics, car-following traffic, field
imperfections."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from terralab.das import halfspace, halfspace_render, synthetic
from terralab.errors import InvalidInputError

#: Scene options that leave the interrogator's noise and bad channels out.
NOISELESS = {
    "white_noise": 0.0,
    "coloured_noise": 0.0,
    "burst_rate_per_min": 0.0,
    "dead_channels": 0,
    "saturated_channels": 0,
    "nan_channels": 0,
}

E, NU = 2e9, 0.3
G = E / (2 * (1 + NU))


def test_boussinesq_strain_is_the_derivative_of_the_displacement():
    x = np.linspace(-6, 6, 241)
    h = 1e-4
    for y, z in ((0.0, 1.0), (2.5, 0.8), (6.0, 1.2)):
        num = (
            halfspace.boussinesq_ux(x + h, y, z, 1e4, G, NU)
            - halfspace.boussinesq_ux(x - h, y, z, 1e4, G, NU)
        ) / (2 * h)
        ana = halfspace.boussinesq_strain_xx(x, y, z, 1e4, G, NU)
        np.testing.assert_allclose(ana, num, rtol=1e-5, atol=1e-12)


def test_a_line_of_boussinesq_loads_gives_flamants_plane_strain_solution():
    # q N/m along y is the integral of point loads q dy: eps_xx must equal Flamant's plane-strain strain
    y = np.linspace(-400, 400, 160001)
    dy = y[1] - y[0]
    for x, z in ((0.0, 1.0), (0.7, 1.0), (2.0, 0.6)):
        line = np.sum(halfspace.boussinesq_strain_xx(x, y, z, 1.0, G, NU)) * dy
        # beyond |y| = 400 m the integrand is -(1 - 2 nu) / (4 pi G y^2): add both tails analytically
        line += -2 * (1 - 2 * NU) / (4 * np.pi * G * 400.0)
        flamant = halfspace.flamant_strain_xx(x, z, 1.0, E, NU)
        assert line == pytest.approx(flamant, rel=1e-3, abs=1e-16)


def test_strain_is_extension_under_the_load_and_compression_on_both_sides():
    x = np.linspace(-5, 5, 1001)
    eps = halfspace.boussinesq_strain_xx(x, 0.0, 1.0, 1e4, G, NU)
    assert eps[500] > 0
    assert eps[np.abs(x - 1.5).argmin()] < 0 and eps[np.abs(x + 1.5).argmin()] < 0
    np.testing.assert_allclose(eps, eps[::-1], rtol=1e-9)  # symmetric about the load


def test_odemark_equivalent_depth_of_a_fibre_below_asphalt_and_base():
    # 0.15 m asphalt (3.5 GPa) over 0.30 m granular base (300 MPa) over an 80 MPa subgrade, fibre 1 m deep:
    # h_e = 0.9 h (E / E_sg)^(1/3) per layer above the fibre, plus the 0.55 m of subgrade above it
    z, e = halfspace.odemark_depth(1.0, ((0.15, 3.5e9), (0.30, 3e8)), 8e7)
    expect = 0.9 * 0.15 * (3.5e9 / 8e7) ** (1 / 3) + 0.9 * 0.30 * (3e8 / 8e7) ** (1 / 3) + 0.55
    assert e == 8e7 and z == pytest.approx(expect)
    # a fibre inside the base: its medium is the base, only the asphalt is transformed
    z, e = halfspace.odemark_depth(0.3, ((0.15, 3.5e9), (0.30, 3e8)), 8e7)
    assert e == 3e8 and z == pytest.approx(0.9 * 0.15 * (3.5e9 / 3e8) ** (1 / 3) + 0.15)
    assert halfspace.odemark_depth(1.2, (), 8e7) == (1.2, 8e7)  # bare ground


def test_a_cars_strain_at_the_fibre_has_the_magnitude_of_pavement_mechanics():
    # one 8 kN car axle over the typical pavement above, fibre 1 m deep right under the wheel path, 10 m
    # gauge: Boussinesq at Odemark's depth in the subgrade gives a few 1e-7 (peak to peak); an asphalt-stiff
    # half-space at the true depth (the range this simulator drew before the audit, 0.8-4 GPa) gives ten times
    # less
    u = np.arange(-40, 40, 0.02)
    z, e = halfspace.odemark_depth(1.0, ((0.15, 3.5e9), (0.30, 3e8)), 8e7)
    k = (
        halfspace_render.axle_kernel(0.0, 1.7, False, depth=z, gauge=10.0, shear=e / 2.6, poisson=0.3, u=u)
        * 8e3
    )
    stiff = (
        halfspace_render.axle_kernel(
            0.0, 1.7, False, depth=1.0, gauge=10.0, shear=2e9 / 2.6, poisson=0.3, u=u
        )
        * 8e3
    )
    assert 1e-7 < np.ptp(k) < 1e-6
    assert np.ptp(k) > 8 * np.ptp(stiff)


@pytest.fixture(scope="module")
def urban():
    return synthetic.halfspace_scene("urban", 5, tram=True, signal=True, side_streets=True)


def test_same_seed_same_scene_and_parameters_vary_between_seeds(urban):
    data, truth = urban
    data2, truth2 = synthetic.halfspace_scene("urban", 5, tram=True, signal=True, side_streets=True)
    np.testing.assert_array_equal(data.values, data2.values)
    pd.testing.assert_frame_equal(truth, truth2)
    a, b = halfspace.random_parameters("urban", 5), halfspace.random_parameters("urban", 6)
    assert a["depth_m"] != b["depth_m"] and a["young_pa"] != b["young_pa"]


def test_platoons_keep_at_least_the_minimum_headway_in_every_lane(urban):
    _, truth = urban
    outside = truth.attrs["outside_record"]
    both = pd.concat([truth, outside], ignore_index=True)
    for (_, lane), grp in both.groupby(["direction", "lane_y_m"]):
        t = np.sort(grp["time"].to_numpy().astype("datetime64[ns]").astype(np.int64) / 1e9)
        if len(t) > 1:
            assert np.diff(t).min() >= 1.2 - 0.05


def test_urban_scene_has_trams_and_both_directions_and_listed_bad_channels(urban):
    data, truth = urban
    assert "tram" in set(truth["vehicle_class"]) and set(truth["direction"]) == {1, -1}
    assert truth.loc[truth["kind"] == "tram", "length_m"].min() >= 30
    assert data.attrs["simulator"] == "halfspace" and data.dims == ("time", "distance")
    coupling = np.asarray(data.attrs["coupling"])
    assert coupling.min() >= 0.3 and coupling.max() <= 1.0  # strain transfer: a cable never stretches more
    x = data["distance"].values
    dead = np.isin(x, data.attrs["dead_channels_m"])
    assert (data.values[:, dead] == 0).all()


def test_vibration_outruns_the_vehicle_at_the_ground_wave_speed():
    veh = pd.DataFrame({"time_s": [20.0], "speed_kmh": [40.0], "direction": [1], "kind": ["truck"]})
    quiet = {
        **NOISELESS,
        "vehicles": veh,
        "duration_s": 40.0,
        "n_channels": 60,
        "fibre_y_m": 0.0,
    }
    data, _ = halfspace.halfspace_scene("urban", 3, **quiet)
    x = data["distance"].values
    t = (data.time.values - data.time.values[0]) / np.timedelta64(1, "s")
    fs = data.attrs["sampling_rate_hz"]
    # vibration (above 5 Hz) is felt 40 m ahead of the truck while its quasi-static strain is not there yet
    from scipy import signal

    sos = signal.butter(4, 5.0, "high", fs=fs, output="sos")
    hp = signal.sosfilt(sos, data.values.astype(float), axis=0)
    lp = signal.sosfilt(signal.butter(4, 1.0, "low", fs=fs, output="sos"), data.values.astype(float), axis=0)
    c = np.abs(x - (x[-1] / 2 + 40)).argmin()  # 40 m ahead of mid-section
    win = (t > 18.5) & (t < 20.0)  # truck still 17-40 m before mid-section
    assert np.abs(hp[win, c]).max() > 0.05 * np.abs(hp[:, c]).max()
    assert np.abs(lp[win, c]).max() < 0.15 * np.abs(lp[:, c]).max()


def test_bad_site_and_unknown_parameters_are_refused():
    with pytest.raises(InvalidInputError, match="site"):
        halfspace.halfspace_scene("motorway", 1)
    with pytest.raises(InvalidInputError, match="unknown half-space parameter"):
        halfspace.halfspace_scene("urban", 1, depth=2.0)
    with pytest.raises(InvalidInputError, match="simulator"):
        synthetic.random_scene("gaussian", "urban", 1)


def test_a_listed_vehicle_in_a_direction_without_a_lane_is_refused():
    veh = pd.DataFrame({"time_s": [10.0], "speed_kmh": [50.0], "direction": [2], "kind": ["car"]})
    with pytest.raises(InvalidInputError, match="has no lane"):
        halfspace.halfspace_scene("urban", 1, vehicles=veh, duration_s=20.0)


def test_each_vehicle_alone_adds_up_to_the_scene_without_noise():
    small = {"duration_s": 30.0, "n_channels": 120, **NOISELESS}
    data, truth = halfspace.halfspace_scene("highway", 503, **small)
    rows, total = [], np.zeros(data.shape, dtype=np.float64)
    for row, signal in halfspace.vehicle_signals("highway", 503, **small):
        assert signal.shape == data.shape
        assert row is None or np.abs(signal).max() > 0  # a whole vehicle crosses the record
        rows.append(row)
        total += signal
    assert sorted(r for r in rows if r is not None) == list(range(len(truth))) and len(truth) >= 3
    assert None in rows  # vehicles the record holds only partly are rendered too
    np.testing.assert_allclose(total, data.values, rtol=0, atol=1e-6 * np.abs(data.values).max())
    with pytest.raises(InvalidInputError, match="unknown half-space parameter"):
        next(halfspace.vehicle_signals("highway", 503, lanes_m=3))
