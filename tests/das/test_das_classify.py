"""The packaged car/truck classifier: loaded, not refitted, and as accurate as its stored held-out score says."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from terralab import das
from terralab.das import classify, synthetic
from terralab.errors import FileFormatError, InvalidInputError


def test_packaged_classifier_loads_once_and_reports_held_out_accuracy():
    clf = das.load_classifier()
    assert clf is das.load_classifier()  # cached, loaded once per process
    m = clf.metrics
    # trained on 48 synthetic scenes, tested on 16 other scenes (240 vehicles): 0.90 when trained
    assert m["n_test"] >= 150 and m["test_scenes"] >= 10
    assert m["heldout_accuracy"] >= 0.85
    assert m["heldout_balanced_accuracy"] >= 0.85
    assert clf.features == classify.FEATURES


def test_classifier_separates_cars_and_trucks_on_fresh_scenes(monkeypatch):
    # fitting is forbidden during detection: the stored model is only evaluated
    import sklearn.ensemble

    def no_fit(*a, **k):
        raise AssertionError("the classifier must not be refitted per call")

    monkeypatch.setattr(sklearn.ensemble.HistGradientBoostingClassifier, "fit", no_fit)
    hits, n = 0, 0
    for seed in (31, 32):
        data, truth = synthetic.highway_bridge(duration_s=90, n_channels=250, seed=seed, truck_fraction=0.4)
        det = das.detect_vehicles(data)
        m = das.match(det, truth)
        hits += int(m["class_ok"].sum())
        n += len(m)
    assert n >= 20
    assert hits / n >= 0.8


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
