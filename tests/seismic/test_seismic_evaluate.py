"""Evaluation: one-to-one matching, precision/recall/F1 at tolerances, residuals, polarity accuracy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from terralab.errors import InvalidInputError
from terralab.seismic import evaluate


def _picks(rows):
    df = pd.DataFrame(rows, columns=["trace_id", "phase", "time", "polarity"])
    df["time"] = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(df["time"], unit="s")
    return df


def test_evaluate_picks_counts_and_residuals():
    reference = _picks(
        [("A", "P", 10.0, "U"), ("A", "S", 15.0, None), ("B", "P", 20.0, "D"), ("B", "S", 27.0, None)]
    )
    predicted = _picks(
        [
            ("A", "P", 10.05, "U"),  # matched at 0.1 s
            ("A", "P", 10.08, "U"),  # second pick near the same arrival: a false positive
            ("A", "S", 15.3, None),  # matched only at 0.5 s
            ("B", "P", 19.98, "U"),  # matched, wrong polarity
            ("B", "P", 40.0, "N"),  # false positive
        ]
    )
    m = evaluate.evaluate_picks(predicted, reference, (0.1, 0.5)).set_index(["phase", "tolerance_s"])
    p01 = m.loc[("P", 0.1)]
    assert (p01.n_reference, p01.n_predicted, p01.n_matched) == (2, 4, 2)
    assert p01.precision == 0.5 and p01.recall == 1.0 and p01.f1 == pytest.approx(2 / 3)
    assert p01.residual_mean_s == pytest.approx((0.05 - 0.02) / 2, abs=1e-6)
    assert p01.residual_mae_s == pytest.approx(0.035, abs=1e-6)
    s01, s05 = m.loc[("S", 0.1)], m.loc[("S", 0.5)]
    assert s01.n_matched == 0 and s01.f1 == 0
    assert s05.n_matched == 1 and s05.precision == 1 and s05.recall == 0.5
    assert s05.residual_mean_s == pytest.approx(0.3, abs=1e-6)


def test_matching_is_one_to_one_and_prefers_the_closest():
    reference = _picks([("A", "P", 10.0, None)])
    predicted = _picks([("A", "P", 10.09, None), ("A", "P", 9.99, None)])
    m = evaluate.match_picks(predicted, reference, 0.1)
    matched = m[m["status"] == "matched"]
    assert len(matched) == 1 and matched["residual_s"].iloc[0] == pytest.approx(-0.01, abs=1e-6)
    assert (m["status"] == "false_positive").sum() == 1


def test_tolerance_is_inclusive_as_in_the_reference_protocol():
    reference = pd.DataFrame({"record": ["r"], "phase": ["P"], "time": [30.0]})
    predicted = pd.DataFrame({"record": ["r"], "phase": ["P"], "time": [30.1]})
    assert (
        evaluate.evaluate_picks(predicted, reference, (0.1,), key="record", phases=("P",))["n_matched"][0]
        == 1
    )


def test_polarity_accuracy():
    reference = _picks(
        [("A", "P", 10.0, "U"), ("B", "P", 20.0, "D"), ("C", "P", 30.0, "U"), ("D", "P", 40.0, None)]
    )
    predicted = _picks(
        [("A", "P", 10.01, "U"), ("B", "P", 20.0, "U"), ("C", "P", 30.02, "N"), ("D", "P", 40.0, "U")]
    )
    table = evaluate.polarity_accuracy(predicted, reference)
    assert len(table) == 1 and table.attrs["units"]["accuracy"] == "1"
    acc = table.iloc[0]
    assert acc["n_reference"] == 3 and acc["n_called"] == 2
    assert acc["accuracy"] == 0.5 and acc["coverage"] == pytest.approx(2 / 3)


def test_bad_inputs():
    good = _picks([("A", "P", 1.0, None)])
    with pytest.raises(InvalidInputError, match="lack columns"):
        evaluate.evaluate_picks(good.drop(columns="phase"), good)
    with pytest.raises(InvalidInputError, match="positive"):
        evaluate.match_picks(good, good, 0)
    with pytest.raises(InvalidInputError, match="polarity"):
        evaluate.polarity_accuracy(good.drop(columns="polarity"), good)


def test_protocol_windows_keep_both_picks_inside():
    from terralab.seismic import io

    records = io.read_sample()
    starts = evaluate.protocol_windows(records, seed=0)
    p = records["trace_p_arrival_sample"].values - starts
    s = records["trace_s_arrival_sample"].values - starts
    assert (p >= 100).all() and (s <= 2900).all()
    np.testing.assert_array_equal(starts, evaluate.protocol_windows(records, seed=0))


def test_published_figures_table():
    pub = evaluate.published_figures()
    assert set(pub["phase"]) == {"P", "S"}
    assert pub.loc[(pub["source"].str.startswith("WEIGHTS")) & (pub["phase"] == "P"), "f1"].item() == 0.938


def test_picks_and_polarities_on_synthetic_ceed_traces(tmp_path):
    from terralab.seismic import io, synthetic

    path = tmp_path / "ceed.h5"
    truth = synthetic.write_synthetic_ceed(path, n_events=2, n_stations=4, seed=4)
    with io.open_ceed(path) as ceed:
        records = ceed.to_records()
    picks = evaluate.pick_records(records)
    reference = io.reference_picks(records)
    metrics = evaluate.evaluate_picks(picks, reference, key="record")
    pd.testing.assert_frame_equal(evaluate.evaluate_records(records), metrics)  # the same steps in one call
    pol = evaluate.polarity_accuracy(picks, reference, key="record").iloc[0]
    p = metrics[(metrics["phase"] == "P") & (metrics["tolerance_s"] == 0.1)].iloc[0]
    assert p["recall"] >= 0.75  # PhaseNet finds the synthetic onsets
    assert pol["n_reference"] >= 6 and pol["coverage"] >= 0.75
    assert pol["accuracy"] >= 0.9  # and the first motions have the sign written into the file
    assert set(truth["p_phase_polarity"]) <= {"U", "D"}


def test_window_offset_stability_summary():
    """README: picks independent of the window offset — 100 % of picks identical when the stream starts 7 s
    later.

    The notebook's section 3 with its defaults: the 13 three-component records of the embedded sample (real
    NCEDC, PhaseNet's training pool) stitched into ≈ 19.5 min of continuous data; 32 picks beyond the first
    window, all at exactly the same sample. Deterministic (fixed data and weights).
    """
    from terralab.seismic import io

    wave, _ = io.stitch_records(io.three_component(io.read_sample()).isel(record=slice(0, 13)))
    table = evaluate.window_offset_stability(wave, 7.0)
    assert len(table) == 1 and table.attrs["units"]["max_dt_s"] == "s"
    summary = table.iloc[0]
    assert summary["n_full"] == summary["n_shifted"] == 32
    assert summary["fraction_same"] == 1.0 and summary["max_dt_s"] <= 0.005


def test_protocol_scores_the_protocol_picks_one_row_per_phase_and_tolerance():
    from terralab.seismic import io

    records = io.read_sample()
    metrics = evaluate.phasenet_protocol(records, seed=0)
    assert list(zip(metrics["phase"], metrics["tolerance_s"])) == [
        ("P", 0.1),
        ("S", 0.1),
        ("P", 0.5),
        ("S", 0.5),
    ]
    assert metrics.attrs["units"]["residual_std_s"] == "s" and metrics.attrs["units"]["f1"] == "1"
    picks = evaluate.protocol_picks(records, seed=0)
    assert list(picks.columns) == ["record", "phase", "time", "sample", "probability"]
    reference = io.reference_picks(records).assign(time=lambda df: df["sample"] / 100.0)
    rescored = evaluate.evaluate_picks(picks, reference[["record", "phase", "time"]], key="record")
    pd.testing.assert_frame_equal(rescored, metrics)
