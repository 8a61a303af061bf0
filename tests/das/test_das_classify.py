"""The packaged car/truck classifier: loaded, not refitted, and as accurate as its stored held-out score says."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from terralab import das
from terralab.das import classify, synthetic
from terralab.errors import FileFormatError, InvalidInputError


def test_packaged_classifier_loads_once_and_is_the_stored_model():
    clf = das.load_classifier()
    assert clf is das.load_classifier()  # cached, loaded once per process
    assert clf.features == classify.FEATURES
    assert clf.metrics["n_test"] >= 150  # what the JSON says is not evidence; the tests below measure it


@pytest.fixture(scope="module")
def heldout_pairs():
    """Detections matched to truth on held-out scenes: random "bump" scenes (seeds 600-601, never used in
    training, which drew its scenes from seeds 1000+) and half-space scenes (a simulator it never saw)."""
    out = {}
    for sim in ("bump", "halfspace"):
        frames = []
        for seed in (600, 601):
            data, truth = synthetic.random_scene(sim, "highway", seed)
            det = das.detect_vehicles(data)
            frames.append(das.match(det, truth))
        out[sim] = pd.concat(frames, ignore_index=True)
    return out


def test_classifier_accuracy_measured_on_held_out_scenes(heldout_pairs, monkeypatch):
    """Car/truck accuracy over matched vehicles, measured here (not read from the JSON).

    Measured here: bump (the training simulator, unseen seeds 600-601) 0.94 on 17 matched vehicles (0.88 over
    the benchmark's 20 highway scenes); half-space (the other simulator) 0.36 on 14 matched vehicles. The
    0.92 target of issue 11 is NOT MET across simulators; the floors are what this test holds (bump: measured
    minus the 0.06 spread seen between seed sets; half-space: a regression floor).
    """
    m = heldout_pairs["bump"]
    assert len(m) >= 15
    assert m["class_ok"].mean() >= 0.8
    h = heldout_pairs["halfspace"]
    assert len(h) >= 10
    assert h["class_ok"].mean() >= 0.25


def test_classifier_is_never_refitted_per_call(monkeypatch):
    # fitting is forbidden during detection: the stored model is only evaluated
    import sklearn.ensemble

    def no_fit(*a, **k):
        raise AssertionError("the classifier must not be refitted per call")

    monkeypatch.setattr(sklearn.ensemble.HistGradientBoostingClassifier, "fit", no_fit)
    data, truth = synthetic.highway_bridge(duration_s=60, n_channels=200, seed=31, truck_fraction=0.4)
    det = das.detect_vehicles(data)
    assert set(det["vehicle_class"]) <= {"car", "truck"} and len(det) > 3


def test_probabilities_are_probabilities_and_missing_features_are_refused():
    clf = das.load_classifier()
    X = pd.DataFrame(np.zeros((3, len(clf.features))), columns=clf.features)
    p = clf.predict_proba(X)
    assert ((p >= 0) & (p <= 1)).all()
    with pytest.raises(InvalidInputError, match="missing"):
        clf.predict_proba(X.drop(columns=["speed"]))


def test_missing_or_broken_model_file_says_how_to_retrain(tmp_path):
    with pytest.raises(FileFormatError, match="--retrain"):
        classify.CarTruckClassifier.load(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(FileFormatError, match="JSON"):
        classify.CarTruckClassifier.load(bad)
    bad.write_text(json.dumps({"features": ["a"]}))
    with pytest.raises(FileFormatError, match="malformed"):
        classify.CarTruckClassifier.load(bad)
