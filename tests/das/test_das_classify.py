"""The packaged vehicle classifier: transferable features, loaded not refitted, accuracy measured on unseen
scenes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from terralab import das
from terralab.das import classify, synthetic
from terralab.errors import FileFormatError, InvalidInputError


def test_packaged_classifier_loads_once_and_knows_cars_trucks_and_trams():
    clf = das.load_classifier()
    assert clf is das.load_classifier()  # cached, loaded once per process
    assert clf.features == classify.FEATURES
    assert clf.classes == ["car", "truck", "tram"]  # trained on the half-space simulator, which has trams
    assert clf.metrics["simulator"] == "halfspace" and clf.metrics["n_train"] >= 100
    other = classify.load_classifier(classify.MODEL_PATH.with_name("vehicle_classifier_bump.json"))
    assert other.metrics["simulator"] == "bump" and other.classes == ["car", "truck"]
    both = classify.load_classifier(classify.MODEL_PATH.with_name("vehicle_classifier_both.json"))
    assert both.metrics["simulator"] == "both" and both.classes == ["car", "truck", "tram"]


@pytest.fixture(scope="module")
def heldout():
    """Detections matched to truth on two unseen scenes per simulator and site (seeds 600-601: never used in
    training, which draws seeds 2000+, nor in choosing detector parameters, seeds 100-107), with the features
    of the packaged detector; ``attrs["scenes"]`` keeps each scene's detections and truth."""
    frames, scenes = [], {}
    for sim in ("bump", "halfspace"):
        for site, kw in (("highway", {"n_channels": 200, "duration_s": 60.0}), ("urban", {})):
            for seed in (600, 601):
                data, truth = synthetic.random_scene(sim, site, seed, **kw)
                det = das.detect_vehicles(data, site=site, classify=False)
                scenes[(sim, site, seed)] = (det, truth)
                f = classify._matched_features(det, truth, scene=seed, site=site)
                frames.append(f.assign(simulator=sim))
    out = pd.concat(frames, ignore_index=True)
    out.attrs["scenes"] = scenes
    return out


def test_classifier_accuracy_measured_on_unseen_scenes_of_both_simulators(heldout):
    """Accuracy over matched vehicles, measured here (not read from the JSON), for the model trained on each
    simulator and on both, on both simulators.

    The 20-scene figures are printed by ``benchmarks/das_cross_simulator.py``; this test holds floors on two
    unseen scenes per simulator and site (61 matched vehicles with the defaults of a8d9f47). Measured here
    (trained on -> scored on) with the length relative to the record's median vehicle, trams' training weight
    halved, C = 0.1 and 48 training scenes, models re-trained with the commands in their ``trained_with``:
    half-space -> half-space 0.93, half-space -> bump 0.90, bump -> bump 0.90, bump -> half-space 0.85, both
    -> half-space 0.90, both -> bump 0.90 (before: absolute length, 24 scenes, C = 1, same 61: 0.88, 0.80,
    1.00, 0.85, 0.88, 0.85; with the strain integrated from the ~100 Hz product on 7 bins relative to the
    median vehicle, detector of fa8c8ed, 57 vehicles: 0.70, 0.75, 1.00, 0.78, 0.76, 0.85). The floors are the
    figures minus 0.2, the spread between the two seeds (single scenes hold 5-15 vehicles), rounded down to
    0.05. Target 0.92 across simulators: NOT MET (20 unseen scenes per simulator and site: half-space urban
    0.755, half-space highway 0.841).
    """
    models = {
        "halfspace": das.load_classifier(),
        "bump": classify.load_classifier(classify.MODEL_PATH.with_name("vehicle_classifier_bump.json")),
        "both": classify.load_classifier(classify.MODEL_PATH.with_name("vehicle_classifier_both.json")),
    }
    acc = {}
    for trained, model in models.items():
        for sim in ("bump", "halfspace"):
            rows = heldout[heldout["simulator"] == sim]
            ok = [
                classify.accuracy(model, rows[rows["site"] == site], trams=site == "urban")
                for site in ("highway", "urban")
            ]
            n = [int((rows["site"] == site).sum()) for site in ("highway", "urban")]
            acc[(trained, sim)] = float(np.average(ok, weights=n))
    print(len(heldout), {k: round(v, 2) for k, v in acc.items()})
    assert len(heldout) >= 50
    # trained on the same simulator (unseen scenes)
    assert acc[("bump", "bump")] >= 0.7, acc
    assert acc[("halfspace", "halfspace")] >= 0.7, acc
    # trained on the other simulator: the transfer the issue asks about (floors, not met targets)
    assert acc[("halfspace", "bump")] >= 0.7, acc
    assert acc[("bump", "halfspace")] >= 0.65, acc
    # trained on both
    assert acc[("both", "halfspace")] >= 0.7, acc
    assert acc[("both", "bump")] >= 0.7, acc


def test_two_class_sites_never_get_trams():
    clf = das.load_classifier()
    X = pd.DataFrame(
        {
            "length_m": [1.6, 0.7],
            "axle_groups": [4.0, 1.0],
            "amplitude": [0.6, -0.1],
            "freq_hz": [1.5, 1.1],
            "speed": [1.5, 1.7],
        }
    )
    assert set(clf.predict(X, trams=False)) <= {"car", "truck"}
    p = clf.predict_proba(X)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(clf.p_heavy(X), 1.0 - p[:, 0])


def test_classifier_is_never_refitted_per_call(monkeypatch):
    import sklearn.linear_model

    def no_fit(*a, **k):
        raise AssertionError("the classifier must not be refitted per call")

    monkeypatch.setattr(sklearn.linear_model.LogisticRegression, "fit", no_fit)
    data, _ = synthetic.highway_bridge(duration_s=60, n_channels=200, seed=31, truck_fraction=0.4)
    det = das.detect_vehicles(data)
    assert set(det["vehicle_class"]) <= {"car", "truck"} and len(det) > 3
    assert det["p_truck"].between(0, 1).all()


def test_length_is_relative_to_the_records_median_vehicle(heldout):
    # the ground's spreading and the gauge length widen every vehicle of a record alike: the feature is the
    # log10 RMS width less the record's median, so the median detected vehicle has length 0 and the trucks
    # come out longer than the cars (scene of the held-out set: 4 cars, 3 trucks)
    det, truth = heldout.attrs["scenes"][("bump", "highway", 601)]
    lengths = det["feat_length_m"].to_numpy()
    assert np.isfinite(lengths).sum() >= 4 and np.nanmedian(lengths) == pytest.approx(0.0, abs=1e-12)
    pairs = das.evaluate.match(det, truth)
    cls = truth.loc[pairs["truth_index"], "vehicle_class"].to_numpy()
    matched = det.loc[pairs["det_index"], "feat_length_m"].to_numpy()
    assert (cls == "truck").sum() >= 2 and (cls == "car").sum() >= 2
    assert np.nanmedian(matched[cls == "truck"]) > np.nanmedian(matched[cls == "car"])


def test_coupling_is_estimated_from_the_records_own_traffic():
    # three vehicles seen on four channels; channel 2 is coupled 4x weaker: the relative loads come out
    # unchanged (relative to the lower quartile of the logs: halfway between loads 1 and 2)
    load = np.array([1.0, 2.0, 8.0])
    coupling = np.array([1.0, 1.0, 0.25, 1.0])
    amp = load[:, None] * coupling[None, :]
    rel = classify._coupling_normalised_amplitude(amp)
    np.testing.assert_allclose(rel, np.log10(load / np.sqrt(2.0)), atol=1e-9)


def test_amplitude_is_relative_to_the_lower_quartile_vehicle_of_its_own_direction():
    # direction +1 runs in the near lane (coupling 1), direction -1 in the far lane (4x weaker): the same
    # loads come out alike in both; a direction with fewer than three vehicles falls back to the record's
    # lower quartile
    assert classify.REFERENCE_QUANTILE == 0.25 and classify.MIN_PER_DIRECTION == 3
    load = np.array([1.0, 2.0, 8.0, 1.0, 2.0, 8.0])
    lane = np.array([1.0, 1.0, 1.0, 0.25, 0.25, 0.25])
    amp = (load * lane)[:, None] * np.ones((1, 4))
    rel = classify._coupling_normalised_amplitude(amp, np.array([1, 1, 1, -1, -1, -1]))
    np.testing.assert_allclose(rel, np.log10(load / np.sqrt(2.0)), atol=1e-9)
    few = classify._coupling_normalised_amplitude(amp[:4], np.array([1, 1, 1, -1]))
    np.testing.assert_allclose(few[:3], np.log10(load[:3] / np.sqrt(2.0)), atol=1e-9)
    # the record's lower quartile of the 4 logs (loads x lanes 0.25, 1, 2, 8)
    ref = np.quantile(np.log10([0.25, 1.0, 2.0, 8.0]), 0.25)
    np.testing.assert_allclose(few[3], np.log10(0.25) - ref, atol=1e-9)
    # a short window with two trucks (load 8) and one car: the reference stays nearer the car than the median
    short = classify._coupling_normalised_amplitude(np.array([[1.0], [8.0], [8.0]]))
    assert short[1] > 0.4 and short[0] < 0


def test_amplitude_is_the_strain_peak_along_the_track_above_the_bins_own_level():
    # a vehicle at 10 m/s over bins 0-90 m (t = 30 s at x = 45 m) lifts the strain image by 5 noise units
    # within 6 m of travel of its track, on top of each bin's own level; bins off its track stay NaN
    from types import SimpleNamespace

    t = np.arange(0.0, 60.0, 0.1)
    xb = np.arange(0.0, 100.0, 10.0)
    poly = np.poly1d([0.1, 30.0])  # t(x - 45 m)
    level = np.linspace(-2.0, 3.0, len(xb))
    z = np.tile(level, (len(t), 1))
    z[np.abs(t[:, None] - poly(xb - 45.0)[None, :]) <= 0.3] += 5.0
    out = np.full(len(xb), np.nan)
    tr = SimpleNamespace(x_lo=0.0, x_hi=90.0, poly=poly)
    classify._strain_peaks(out, z, t, xb, np.ones(len(xb), bool), tr, 10.0, 45.0)
    np.testing.assert_allclose(out[:10], 5.0)
    out[:] = np.nan
    classify._strain_peaks(
        out, z, t, xb, xb != 20.0, SimpleNamespace(x_lo=15.0, x_hi=45.0, poly=poly), 10.0, 45.0
    )
    assert np.isnan(out[[0, 1, 2, 5, 9]]).all() and np.allclose(out[[3, 4]], 5.0)


def test_length_is_the_rms_width_of_the_passage_in_metres():
    # two axle groups 12 m apart at 10 m/s, sampled at 100 Hz: the RMS width is half their spacing, in metres
    e = np.zeros(1000)
    e[440], e[560] = 1.0, 1.0
    assert classify._rms_width(e, 440, 0.0, 100.0, 10.0) == pytest.approx(6.0)
    assert classify._rms_width(np.zeros(100), 50, 0.0, 100.0, 10.0) is None


def test_missing_features_or_model_files_are_refused_with_the_retrain_hint(tmp_path):
    clf = das.load_classifier()
    X = pd.DataFrame(np.zeros((3, len(clf.features))), columns=clf.features)
    with pytest.raises(InvalidInputError, match="missing"):
        clf.predict_proba(X.drop(columns=["speed"]))
    with pytest.raises(FileFormatError, match="terralab das retrain-classifier"):
        classify.VehicleClassifier.load(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(FileFormatError, match="JSON"):
        classify.VehicleClassifier.load(bad)
    bad.write_text(json.dumps({"features": ["a"]}))
    with pytest.raises(FileFormatError, match="malformed"):
        classify.VehicleClassifier.load(bad)
