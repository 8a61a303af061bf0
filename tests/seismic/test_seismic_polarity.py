"""First-motion polarity on synthetic P onsets of known sign."""

from __future__ import annotations

import numpy as np
import pytest

from terralab.errors import InvalidInputError
from terralab.seismic import polarity, synthetic


def _score(traces, **kwargs):
    res = [
        polarity.first_motion_polarity(traces.isel(record=i), traces["pick_time"].values[i], **kwargs)
        for i in range(traces.sizes["record"])
    ]
    pol = np.array([r[0] for r in res])
    conf = np.array([r[1] for r in res])
    called = pol != "N"
    truth = traces["polarity"].values
    accuracy = (pol[called] == truth[called]).mean() if called.any() else np.nan
    return called.mean(), accuracy, conf, pol


def _over_seeds(snr, seeds=range(10), n=100):
    """Called fraction and accuracy of called per seed: ``polarity.synthetic_accuracy`` (what the notebook
    runs)."""
    rows = [polarity.synthetic_accuracy(snrs=(snr,), n=n, seed=s).iloc[0] for s in seeds]
    return np.array([r["called"] for r in rows]), np.array([r["accuracy"] for r in rows])


def test_first_motion_at_snr_5_over_ten_seeds():
    """README: SNR 5 — 97 ± 2 % called, 98.9 ± 0.9 % of those correct (synthetic onsets, ±0.02 s pick error).

    Measured on seeds 0–9 × 100 traces: called 0.968 (seed-to-seed sd 0.018, range 0.94–0.99), accuracy
    0.989 (sd 0.009, range 0.979–1.000). The means are asserted within one seed-to-seed sd of the printed
    figure; the spread itself, and the worst seed, are checked too. (A single draw of 100, as in the
    notebook, can land at 94 % / 97.9 %.)
    """
    called, accuracy = _over_seeds(5.0)
    assert called.mean() == pytest.approx(0.97, abs=0.018)
    assert accuracy.mean() == pytest.approx(0.989, abs=0.009)
    assert called.std(ddof=1) <= 0.03 and accuracy.std(ddof=1) <= 0.015
    assert called.min() >= 0.90 and accuracy.min() >= 0.97


def test_first_motion_at_snr_10_over_ten_seeds():
    """README: SNR 10 — 100 % called, 100 % correct (seeds 0–9 × 100 traces, ±0.02 s pick error).

    Measured: every seed 100 % / 100 %; on the odd seeds 1–39 called 99.75 % (sd 0.4 %), accuracy 100 %.
    Asserted: mean called 1.00 within that sd, every call correct.
    """
    called, accuracy = _over_seeds(10.0)
    assert called.mean() == pytest.approx(1.0, abs=0.005)
    assert (accuracy == 1.0).all()
    traces = synthetic.first_motion_traces(n=120, snr=10.0, pick_error_s=0.02, seed=3)
    assert set(traces["polarity"].values) == {"U", "D"}  # both signs are drawn
    assert np.median(_score(traces)[2]) > 0.7  # and confidently


def test_both_signs_are_recovered():
    for sign in ("U", "D"):
        traces = synthetic.first_motion_traces(n=30, snr=15.0, pick_error_s=0.01, polarity=sign, seed=11)
        _, _, _, pol = _score(traces)
        assert (pol == sign).mean() >= 0.9


def test_noise_alone_gives_mostly_undetermined_polarity():
    traces = synthetic.first_motion_traces(n=80, snr=1.0, pick_error_s=0.02, seed=5)
    called, _, conf, _ = _score(traces)
    assert called <= 0.3
    assert np.median(conf) < 0.2


def test_confidence_grows_with_signal_to_noise():
    medians = []
    for snr in (3.0, 6.0, 20.0):
        traces = synthetic.first_motion_traces(n=60, snr=snr, pick_error_s=0.02, seed=7)
        medians.append(np.median(_score(traces)[2]))
    assert medians[0] < medians[1] < medians[2]


def test_low_level_first_motion_handles_edges_and_bad_input():
    z = np.zeros(500)
    z[300:310] = 5.0
    assert polarity.first_motion(z, 300.0)[0] == "U"  # flat pre-pick noise: any motion is clear
    assert polarity.first_motion(z, np.nan) == ("N", 0.0)
    assert polarity.first_motion(z, 3.0) == ("N", 0.0)  # no noise window before the pick
    with pytest.raises(InvalidInputError):
        polarity.first_motion(np.zeros((2, 10)), 5.0)


def test_vertical_is_found_by_component_name():
    traces = synthetic.first_motion_traces(n=1, snr=20.0, pick_error_s=0.0, polarity="D", seed=2)
    one = traces.isel(record=0)
    wave = one.expand_dims(component=["HHZ"]).transpose("component", "time")
    assert polarity.first_motion_polarity(wave, one["pick_time"].values)[0] == "D"
    with pytest.raises(InvalidInputError, match="no vertical"):
        polarity.first_motion_polarity(wave.assign_coords(component=["HHE"]), one["pick_time"].values)
