"""The stateful multi-stage decimator: exact CIC stage, seamless file joins, alias rejection, no delay."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from terralab.das import synthetic
from terralab.das.filters import Decimator, cic2_response
from terralab.errors import InvalidInputError


def test_cic_stage_equals_the_triangular_fir_it_stands_for():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20000, 5)).astype(np.float32)
    dec = Decimator(1000.0, np.arange(5.0), channel_bin_m=1.0)
    out = dec.process(x, 0)
    q = dec.q1
    h = np.convolve(np.ones(q), np.ones(q)) / q**2
    ref = np.stack([np.convolve(x[:, c].astype(float), h[::-1], mode="valid")[::q] for c in range(5)], axis=1)
    np.testing.assert_allclose(out.mid, ref[: len(out.mid)], atol=2e-6)
    assert out.mid.dtype == np.float32 and out.lf.dtype == np.float32


def test_feeding_files_one_by_one_gives_the_same_samples_as_one_pass():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((25000, 8)).astype(np.float32)
    one = Decimator(625.0, 5.0 * np.arange(8)).process(x, 0)
    dec = Decimator(625.0, 5.0 * np.arange(8))
    parts = [dec.process(x[i : i + 3127], int(i * 1e9 / 625.0)) for i in range(0, len(x), 3127)]
    for name in ("mid", "lf", "mid_time_ns", "lf_time_ns"):
        joined = np.concatenate([getattr(p, name) for p in parts])
        np.testing.assert_array_equal(joined, getattr(one, name))


def test_frequencies_that_would_alias_onto_the_traffic_band_are_rejected():
    fs, n = 1000.0, 60000
    t = np.arange(n) / fs
    dec = Decimator(fs, np.arange(2.0), channel_bin_m=1.0, measurand="strain")
    rng = np.random.default_rng(0)
    # channel 0: a 0.5 Hz signal; channel 1: 100.5 Hz, which folds onto 0.5 Hz at the ~100 Hz stage (plus a
    # little noise so that the channel is not masked as dead)
    x = np.stack(
        [
            np.sin(2 * np.pi * 0.5 * t),
            np.sin(2 * np.pi * (fs / dec.q1 + 0.5) * t) + 1e-2 * rng.standard_normal(n),
        ],
        axis=1,
    )
    out = dec.process(x.astype(np.float32), 0)
    assert out.masked_channels.size == 0
    tl = (out.lf_time_ns - out.lf_time_ns[0]) / 1e9
    probe = np.exp(-2j * np.pi * 0.5 * tl)[200:]
    a0 = abs(np.mean(out.lf[200:, 0] * probe))
    a1 = abs(np.mean(out.lf[200:, 1] * probe))
    assert 20 * np.log10(a1 / a0) < -60
    assert cic2_response(fs / dec.q1 + 0.5, fs, dec.q1) < 1e-3


def test_decimated_times_are_corrected_for_the_filter_delay():
    veh = pd.DataFrame({"time_s": [30.0], "speed_kmh": [80.0], "direction": [1], "vehicle_class": ["car"]})
    data, _ = synthetic.highway_bridge(
        duration_s=60,
        n_channels=60,
        vehicles=veh,
        seed=2,
        white_noise=1e-9,
        coloured_noise=0,
        common_mode_noise=0,
        modes=(),
        span_bending=0,
        dead_channels=0,
        nan_channels=0,
        noisy_channels=0,
        gain_spread=0.0,
        width_spread=0.0,
    )
    x = data["distance"].values
    dec = Decimator(1000.0, x, channel_bin_m=1.0)
    t0 = int(data.time.values[0].astype("datetime64[ns]").astype(np.int64))
    out = dec.process(data.values, t0)
    c = 30
    t_peak = (out.lf_time_ns[np.argmax(np.abs(out.lf[:, c]))] - t0) / 1e9
    expected = 30.0 + (x[c] - 0.5 * (x[0] + x[-1])) / (80 / 3.6)
    assert abs(t_peak - expected) < 0.15  # a causal low-pass without compensation is ~0.35 s late here
    assert dec.lp_delay_s > 0.2


def test_nan_and_dead_channels_are_masked_not_propagated():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((10000, 10)).astype(np.float32)
    x[:, 2] = np.nan
    x[:, 5] = 0.0
    x[500:700, 7] = np.nan
    out = Decimator(1000.0, np.arange(10.0), channel_bin_m=1.0).process(x, 0)
    assert np.isfinite(out.lf).all() and np.isfinite(out.mid).all()
    assert {2, 5} <= set(out.masked_channels.tolist())


def test_too_low_sampling_rate_is_refused():
    with pytest.raises(InvalidInputError, match="too low"):
        Decimator(3.0, np.arange(4.0), lowpass_hz=1.0)


def test_energy_product_joins_files_seamlessly_and_peaks_when_the_vehicle_passes():
    """The band-limited energy image (the detector's optional second image) is stateful like the others and
    stamped on the lf times: its peak at a channel is the vehicle's passage there, whatever the sign of its
    strain (the difference of neighbouring bins cancels what arrives everywhere at once)."""
    veh = pd.DataFrame({"time_s": [20.0], "speed_kmh": [60.0], "direction": [1], "vehicle_class": ["car"]})
    data, _ = synthetic.urban_street(
        duration_s=40, n_channels=40, vehicles=veh, seed=5, dead_channels=0, nan_channels=0, noisy_channels=0
    )
    x = data["distance"].values
    bands = ((0.3, 1.0), (0.7, 3.0), (3.0, 10.0))
    one = Decimator(625.0, x, energy_bands_hz=bands).process(data.values, 0)
    dec = Decimator(625.0, x, energy_bands_hz=bands)
    parts = [dec.process(data.values[i : i + 6250], int(i * 1e9 / 625.0)) for i in range(0, len(data), 6250)]
    joined = np.concatenate([p.energy for p in parts])
    np.testing.assert_allclose(joined, one.energy, rtol=1e-3, atol=1e-6 * one.energy.max())
    assert one.energy.shape == (len(one.lf), dec.n_bins, 3) and one.energy.dtype == np.float32
    assert dec.energy_diff == [True, True, False]
    t = one.lf_time_ns / 1e9
    # the strain rate of a load is two lobes of opposite sign, so the energy of one passage may have two
    # humps: its centroid, not its highest sample, is the passage
    errors = []
    for c in range(2, dec.n_bins - 2):
        expected = 20.0 + (dec.bin_distance[c] - 0.5 * (x[0] + x[-1])) / (60 / 3.6)
        for k in range(2):
            w = np.abs(t - dec.energy_delay_s[k] - expected) < 1.5
            e = one.energy[w, c, k]
            errors.append(np.sum((t[w] - dec.energy_delay_s[k]) * e) / np.sum(e) - expected)
    # measured: median 0.13 s, largest 0.32 s (5 m of travel at 60 km/h): the image is for detection, the
    # strain image times the vehicles
    assert np.median(np.abs(errors)) < 0.2 and np.max(np.abs(errors)) < 0.4, np.round(errors, 2)


def test_the_leaky_integrator_leaves_an_opposite_tail_of_the_pulse_area_decaying_at_its_corner():
    # strain rate of a unipolar strain pulse (one wheel load passing a channel): the lf product is the pulse,
    # then a tail of the other sign that gives back the pulse's area with the integrator's time constant
    # 1 / (2 pi highpass_hz) = 3.2 s. On a quiet record that tail stands far above the noise.
    fs, t = 500.0, np.arange(0, 40, 1 / 500.0)
    strain = np.exp(-0.5 * ((t - 10.0) / 0.3) ** 2)
    rate = np.gradient(strain, 1 / fs)[:, None].repeat(2, axis=1)
    dec = Decimator(fs, np.array([0.0, 10.0]))
    out = dec.process(rate, 0)
    tl = out.lf_time_ns / 1e9
    y = out.lf[:, 0].astype(float)
    dt = float(np.median(np.diff(tl)))
    pulse, tail = (tl > 8) & (tl < 11.5), (tl > 12) & (tl < 35)
    assert y[pulse].max() > 0.7 and (y[tail] < 0).all()  # the 1 Hz low-pass lowers and widens the pulse
    assert -y[tail].min() > 0.15 * y[pulse].max()  # measured 0.17 / 0.81: a fifth of the pulse
    area = y[(tl > 8) & (tl < 11)].sum() * dt
    np.testing.assert_allclose(y[tl > 11].sum() * dt, -area, rtol=0.1)
    late = (tl > 14) & (tl < 24)
    slope = np.polyfit(tl[late], np.log(-y[late]), 1)[0]
    np.testing.assert_allclose(-1 / slope, 1 / (2 * np.pi * dec.highpass_hz), rtol=0.05)
