"""A reason for each missed vehicle and false detection (:mod:`terralab.das.losses`), and its benchmark."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from terralab import das
from terralab.das import evaluate, synthetic
from terralab.das.losses import (
    EVIDENCE,
    FALSE_REASONS,
    MISSED_REASONS,
    STAGES,
    class_errors,
    explain_scene,
    loss_counts,
    search_stages,
    track_evidence,
)
from terralab.errors import InvalidInputError

T0 = pd.Timestamp("2024-01-01")


def frame(times, speeds, directions=None):
    n = len(times)
    return pd.DataFrame(
        {
            "time": [T0 + pd.Timedelta(seconds=s) for s in times],
            "speed_kmh": speeds,
            "direction": directions or [1] * n,
        }
    )


def test_every_reason_is_given_where_it_applies():
    # vehicles (40 km/h, 10 m = 0.9 s < 1.5 s tolerance): a pair 1.5 s apart, one found 40 % too fast, one
    # found 3 s late, one never found, one matched with a duplicate 2 s behind it, one of the other direction
    truth = frame([10.0, 11.5, 30.0, 50.0, 70.0, 90.0, 110.0], [40.0] * 7, [1, 1, 1, 1, 1, 1, -1])
    det = frame([10.5, 30.2, 53.0, 90.0, 92.0, 130.0, 110.0], [40.0, 56.0, 40.0, 40.0, 40.0, 40.0, 40.0])
    vehicles, false = explain_scene(det, truth)
    assert vehicles["reason"].tolist() == ["found", "shared", "speed", "time", "unseen", "found", "unseen"]
    # the detection at 110 s has the other direction: a ghost of its own direction, the vehicle unseen
    assert false["reason"].tolist() == ["misplaced", "misplaced", "duplicate", "ghost", "ghost"]
    assert false["det_index"].tolist() == [1, 2, 4, 5, 6]
    assert set(vehicles["reason"]) - {"found"} <= set(MISSED_REASONS)
    assert set(false["reason"]) <= set(FALSE_REASONS)
    # headway to the nearest vehicle of the same direction; the lone one of its direction has none
    assert vehicles["headway_s"].tolist()[:2] == [1.5, 1.5] and math.isinf(vehicles["headway_s"].iloc[6])


def test_nothing_detected_or_nothing_there():
    truth = frame([10.0, 20.0], [40.0, 60.0])
    vehicles, false = explain_scene(frame([], []), truth)
    assert vehicles["reason"].tolist() == ["unseen", "unseen"] and len(false) == 0
    vehicles, false = explain_scene(truth, frame([], []))
    assert len(vehicles) == 0 and false["reason"].tolist() == ["ghost", "ghost"]


def test_a_table_without_the_columns_scoring_needs_is_refused():
    from terralab.errors import InvalidInputError

    truth = frame([10.0], [40.0])
    with pytest.raises(InvalidInputError, match="speed_kmh"):
        explain_scene(frame([10.0], [40.0]), truth.drop(columns="speed_kmh"))
    with pytest.raises(InvalidInputError, match="direction"):
        explain_scene(frame([10.0], [40.0]).drop(columns="direction"), truth)


def test_pooled_counts_and_headway_bins():
    truth = frame([10.0, 11.5, 30.0, 50.0, 70.0], [40.0] * 5)
    det = frame([10.5, 30.2, 90.0], [40.0, 56.0, 40.0])
    scene = explain_scene(det, truth)
    out = loss_counts([scene, scene])
    assert out["n_true"] == 10
    assert (out["missed_shared"], out["missed_speed"], out["missed_unseen"], out["missed_time"]) == (
        2,
        2,
        4,
        0,
    )
    assert (out["false_misplaced"], out["false_ghost"], out["false_duplicate"]) == (2, 2, 0)
    # headways 1.5, 1.5 (found, shared), 18.5, 20, 20: bins < 3 s, 3-6 s, >= 6 s
    (n0, r0), (n1, r1), (n2, r2) = out["recall_headway"]
    assert (n0, r0, n1, n2, r2) == (4, 0.5, 0, 6, 0.0) and math.isnan(r1)
    empty = loss_counts([])
    assert empty["n_true"] == 0 and all(math.isnan(r) for _, r in empty["recall_headway"])
    assert out["recall_headway_by_class"] == {} == empty["recall_headway_by_class"]  # truth without classes
    assert out["abreast"] == (0, 0) == empty["abreast"]
    # two cars 0.4 s apart (side by side in two lanes) found as one; a third 22 s later found too
    side = explain_scene(frame([10.2, 32.0], [40.0] * 2), frame([10.0, 10.4, 32.0], [40.0] * 3))
    assert side[0]["reason"].tolist() == ["found", "shared", "found"]
    assert loss_counts([side])["abreast"] == (2, 1)


def test_recall_by_headway_of_each_true_class():
    # cars 1.5 s apart (one found, one shared), a lone truck found, a lone car and a tram missed
    truth = frame([10.0, 11.5, 30.0, 50.0, 70.0], [40.0] * 5)
    truth["vehicle_class"] = ["car", "car", "truck", "car", "tram"]
    det = frame([10.5, 30.2], [40.0, 40.0])
    vehicles, _ = explain_scene(det, truth)
    assert vehicles["vehicle_class"].tolist() == truth["vehicle_class"].tolist()
    out = loss_counts([(vehicles, _)])
    by = out["recall_headway_by_class"]
    assert sorted(by) == ["car", "tram", "truck"]
    (n0, r0), (n1, _r1), (n2, r2) = by["car"]
    assert (n0, r0, n1, n2, r2) == (2, 0.5, 0, 1, 0.0)
    assert by["truck"][2] == (1, 1.0) and by["tram"][2] == (1, 0.0) and by["truck"][0][0] == 0
    # the classes add up to the pooled bins
    for k, (n, rec) in enumerate(out["recall_headway"]):
        parts = [rows[k] for rows in by.values() if rows[k][0]]
        assert n == sum(m for m, _ in parts)
        assert rec == pytest.approx(sum(m * r for m, r in parts) / n) if n else math.isnan(rec)


def test_the_evidence_on_a_true_track_tells_a_ridge_from_a_flank_and_from_nothing():
    # one truck at 60 km/h (16.7 m/s) alone in an 80-s bump record; invented vehicles read on the same images
    one = pd.DataFrame({"time_s": [40.0], "speed_kmh": [60.0], "direction": [1], "vehicle_class": ["truck"]})
    data, truth = synthetic.traffic(
        duration_s=80.0, fs_hz=250.0, dx_m=2.0, n_channels=120, vehicles=one, seed=3
    )
    det, details = das.detect_vehicles(data, return_products=True)
    assert len(det) == 1
    t = truth["time"].iloc[0]
    at = [t + pd.Timedelta(seconds=m / (60.0 / 3.6)) for m in (0.0, 40.0, -30.0, 100.0, 0.0, 0.0)]
    fake = pd.DataFrame({"time": at, "speed_kmh": [60.0] * 5 + [300.0], "direction": [1, 1, 1, 1, -1, 1]})
    # on the truck: its own ridge; 40 m of travel behind or 30 m ahead of it: its flank (measured: a ridge
    # up to 20 m behind, a flank 10-30 m ahead and 25-60 m behind, below from 40 m ahead and 100 m behind: the
    # detection, and so the envelope's ridge, lies 6 m behind the load centre); 100 m behind: nothing;
    # the other direction at the truck's time: nothing (the ghosts lose to the truck's own band); 300 km/h:
    # beyond the speeds searched
    assert track_evidence(data, fake, details).tolist() == [
        "ridge",
        "flank",
        "flank",
        "below",
        "below",
        "outside",
    ]
    assert set(track_evidence(data, truth, details)) <= set(EVIDENCE)
    # a record with one live channel: the detector searched nothing, so there is nothing to read
    one_live = data.where(data["distance"] == data["distance"][0], 0.0)
    _, none = das.detect_vehicles(one_live, return_products=True)
    with pytest.raises(InvalidInputError, match="no band images"):
        track_evidence(data, truth, none)


def test_pooled_counts_split_the_evidence_between_missed_and_found_vehicles():
    a = pd.DataFrame({"reason": ["found", "unseen", "shared"], "headway_s": [9.0, 9.0, 1.0]})
    a["evidence"] = ["ridge", "flank", "ridge"]
    b = pd.DataFrame({"reason": ["unseen"], "headway_s": [4.0], "evidence": ["below"]})
    counts = loss_counts([(a, pd.DataFrame({"reason": []})), (b, pd.DataFrame({"reason": []}))])
    assert counts["evidence_missed"] == {"below": 1, "flank": 1, "ridge": 1, "outside": 0}
    assert counts["evidence_found"] == {"below": 0, "flank": 0, "ridge": 1, "outside": 0}
    assert "evidence_missed" not in loss_counts([(a.drop(columns="evidence"), pd.DataFrame({"reason": []}))])


def test_search_stages_name_the_step_that_removed_a_vehicles_own_track():
    # three cars at 72 km/h (20 m/s: the window is 0.5 s, 10 m of travel) 10, 11 and 30 s after T0
    truth = frame([10.0, 11.0, 30.0], [72.0] * 3)
    t_ref = int(T0.value)

    def tracks(*rows):
        return np.array(rows, dtype=float).reshape(-1, 3)

    stages = [
        # 10.4 s is within 0.5 s of the first car only; near the third: the other direction, 40 % too fast
        ("search", tracks((10.4, 1, 72.0), (11.1, 1, 70.0), (30.0, -1, 72.0), (30.1, 1, 101.0))),
        ("dedupe", tracks((10.4, 1, 72.0), (30.0, -1, 72.0))),
        ("chains", tracks((10.2, 1, 75.0))),
    ]
    got = search_stages(truth, {"stages": stages, "t_ref_ns": t_ref})
    assert got.tolist() == ["kept", "dedupe", "no track"] and got.index.equals(truth.index)
    # a track halfway between two cars 0.8 s apart is the nearer one's only
    close = frame([10.0, 10.8], [72.0, 72.0])
    mid = [("search", tracks((10.35, 1, 72.0)))]
    assert search_stages(close, {"stages": mid, "t_ref_ns": t_ref}).tolist() == ["kept", "no track"]
    # moved away by a later step counts as removed there; a wider speed tolerance takes the fast track
    moved = stages[:2] + [("chains", tracks((11.0, 1, 72.0), (30.0, -1, 72.0)))]
    assert search_stages(truth, {"stages": moved, "t_ref_ns": t_ref}).tolist() == [
        "chains",
        "kept",
        "no track",
    ]
    wide = search_stages(truth, {"stages": stages[:1], "t_ref_ns": t_ref}, speed_tolerance=0.5)
    assert wide.tolist() == ["kept", "kept", "kept"]
    with pytest.raises(InvalidInputError, match="no stages"):
        search_stages(truth, {"t_ref_ns": t_ref})


def test_every_step_of_the_detector_is_a_stage_and_a_rule_that_drops_all_is_named(monkeypatch):
    """Unseen half-space street scene 503: the stages are :data:`STAGES` in order, the last one is the
    detections; with the chain rule patched to drop every track, every vehicle whose own track reached it
    is said to be lost there, the others as before."""
    import terralab.das.detect as detect_module

    data, truth = synthetic.random_scene("halfspace", "urban", 503)
    det, details = das.detect_vehicles(data, site="urban", return_products=True)
    assert [name for name, _ in details["stages"]] == list(STAGES)
    last = details["stages"][-1][1]
    times = (det["time"].to_numpy().astype("datetime64[ns]").astype(np.int64) - details["t_ref_ns"]) / 1e9
    assert np.allclose(last[:, 0], times, atol=1e-6) and np.allclose(last[:, 2], det["speed_kmh"])
    before = search_stages(truth, details)
    assert set(before) <= {"no track", "kept", *STAGES} and (before == "kept").sum() >= 3
    monkeypatch.setattr(detect_module, "drop_crossing_chains", lambda tracks, p: [])
    none, dropped = das.detect_vehicles(data, site="urban", return_products=True)
    assert len(none) == 0
    after = search_stages(truth, dropped)
    reached = before.isin(["chains", "trams and heavy pairs", "speed re-read and re-centring", "kept"])
    assert (after[reached] == "chains").all() and after[~reached].equals(before[~reached])


@pytest.mark.parametrize("simulator", ["halfspace", "bump"])
def test_reasons_add_up_to_the_scores_of_the_cross_simulator_table(simulator):
    """On an unseen scene (seed 503, urban): found = the table's true positives, false duplicates = its
    duplicates, missed + found = true vehicles, false + found = detections scored."""
    data, truth = synthetic.random_scene(simulator, "urban", 503)
    det = das.detect_vehicles(data, site="urban")
    vehicles, false = explain_scene(det, truth)
    row = evaluate.evaluate_scenes(simulator, "urban", [503], detect_kwargs={"site": "urban"}, per_scene=True)
    row = row.iloc[0]
    found = int((vehicles["reason"] == "found").sum())
    assert len(vehicles) == row["n_true"] and found == row["true_positives"]
    assert found + len(false) == row["n_detected"]
    assert int((false["reason"] == "duplicate").sum()) == row["duplicates"]
    assert len(vehicles) > 5


def test_the_benchmark_prints_one_row_per_simulator_and_site(capsys, load_benchmark):
    bench = load_benchmark("das_losses")
    r = bench.run("bump", "urban", [503])
    missed = sum(r[f"missed_{k}"] for k in MISSED_REASONS)
    false = sum(r[f"false_{k}"] for k in FALSE_REASONS)
    assert r["n_true"] - missed + false == r["n_detected"]
    assert sum(n for n, _ in r["recall_headway"]) == r["n_true"]
    assert 0.0 <= r["beyond_clip"] <= 1.0 and r["dynamic_range"] > 0
    assert sum(n for n, _, _ in r["advice"].values()) == 1  # the scene is warned of or not
    assert sum(d for _, _, d in r["advice"].values()) == r["n_detected"]
    assert bench.main(["--seeds", "503-503", "--simulators", "bump", "--sites", "urban"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "miss:shared" in out[0] and "false:ghost" in out[0] and "recall headway <3s (n)" in out[0]
    assert out[1].split()[:4] == ["bump", "urban", str(r["n_true"]), str(r["n_detected"])]
    assert np.isfinite([rec for n, rec in r["recall_headway"] if n]).all()
    by = r["recall_headway_by_class"]
    assert set(by) <= {"car", "truck"} and sum(n for rows in by.values() for n, _ in rows) == r["n_true"]
    assert sum(": recall by headway <3s" in line for line in out[2:]) == len(by) > 0
    assert f"image: {r['beyond_clip']:.1%} beyond the soft clip" in out[-1]
    # every vehicle's true track read once: the evidence of the missed and of the found ones adds up
    assert sum(r["evidence_missed"].values()) == missed
    assert sum(r["evidence_found"].values()) == r["n_true"] - missed == r["found"]
    assert out[-3].strip().startswith("evidence on the true track: missed below ")
    # ... and each vehicle's own track followed through the steps once
    assert sum(r["stage_missed"].values()) == missed and sum(r["stage_found"].values()) == r["found"]
    assert (
        out[-2]
        .strip()
        .startswith(
            f"own track of the missed (losses.search_stages): no track {r['stage_missed']['no track']}"
        )
    )
    n_ab, found_ab = r["abreast"]
    assert 0 <= found_ab <= n_ab <= r["n_true"]
    assert (
        out[-4]
        .strip()
        .startswith(f"abreast (another of its direction within 0.6 s, side by side): {found_ab} of")
    )


def test_the_benchmark_scores_the_same_scene_rendered_quiet(capsys, load_benchmark):
    data, truth = synthetic.random_scene("bump", "urban", 503)
    quiet_data, quiet_truth = synthetic.random_scene("bump", "urban", 503, quiet=True)
    assert quiet_truth.equals(truth)  # the same traffic, only the instrument noise is lower
    ratio = das.diagnose(quiet_data)["noise"] / das.diagnose(data)["noise"]
    assert float(np.nanmedian(ratio)) < 0.05
    bench = load_benchmark("das_losses")
    assert bench.main(["--seeds", "503-503", "--simulators", "bump", "--sites", "urban", "--quiet"]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in out if line.startswith("bump")]
    assert [r[1] for r in rows] == ["urban", "urban-quiet"] and rows[0][2] == rows[1][2] == str(len(truth))
    # the quiet render leaves more of the detector's image beyond its soft clip (measured 1.4 % -> 8.7 %)
    clipped = [float(line.split("image:")[1].split("%")[0]) for line in out if "image:" in line]
    assert len(clipped) == 2 and clipped[1] > 2 * clipped[0]


def test_class_errors_list_each_matched_vehicle_with_its_kind_and_flags():
    # a van called truck beside another vehicle, a bus called truck alone, a car missed, a car of the other
    # direction detected in the wrong one (not matched)
    truth = frame([10.0, 30.0, 50.0, 70.0], [40.0] * 4, [1, 1, 1, -1]).assign(
        vehicle_class=["car", "truck", "car", "car"], kind=["van", "bus", "car", "car"]
    )
    det = frame([10.2, 30.1, 70.0], [40.0] * 3).assign(
        vehicle_class=["truck", "truck", "car"],
        flags=["speed_change,near", "", "near"],
        feat_amplitude=[0.4, 0.8, 0.0],
    )
    rows = class_errors(det, truth)
    assert rows["truth_index"].tolist() == [0, 1]
    assert rows["kind"].tolist() == ["van", "bus"] and rows["true"].tolist() == ["car", "truck"]
    assert rows["predicted"].tolist() == ["truck", "truck"] and rows["ok"].tolist() == [False, True]
    assert rows["near"].tolist() == [True, False]
    np.testing.assert_allclose(rows["amplitude"], [0.4, 0.8])
    # without kinds, flags or features: the class stands for the kind, nothing is near, no amplitude
    bare = class_errors(det[["time", "speed_kmh", "direction", "vehicle_class"]], truth.drop(columns="kind"))
    assert bare["kind"].tolist() == ["car", "truck"] and not bare["near"].any()
    assert bare["amplitude"].isna().all()
    assert len(class_errors(det.iloc[:0], truth)) == 0


def test_the_class_error_benchmark_counts_every_matched_vehicle(capsys, load_benchmark):
    bench = load_benchmark("das_class_errors")
    rows = bench.run("bump", "urban", [503])
    data, truth = synthetic.random_scene("bump", "urban", 503)
    found = explain_scene(das.detect_vehicles(data, site="urban"), truth)[0]
    assert len(rows) == int((found["reason"] == "found").sum()) > 5
    assert abs(rows["amplitude_c"].median()) < 1e-9
    quiet = bench.run("bump", "urban", [503], quiet=True)
    assert len(quiet) >= len(rows) - 2  # the same scene, less noise
    both = len(set(rows["truth_index"]) & set(quiet["truth_index"]))
    assert bench.compare(rows, quiet).startswith(f"vehicles found in both: {both}, accuracy ")
    assert bench.main(["--seeds", "503-503", "--simulators", "bump", "--sites", "urban"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"bump urban: n {len(rows)} accuracy ") and " spread " in out


def test_class_errors_need_classes_on_both_sides():
    truth = frame([10.0], [40.0]).assign(vehicle_class="car")
    with pytest.raises(InvalidInputError, match="detections has no 'vehicle_class'"):
        class_errors(frame([10.0], [40.0]), truth)
    with pytest.raises(InvalidInputError, match="truth has no 'vehicle_class'"):
        class_errors(truth, frame([10.0], [40.0]))


def test_classes_from_the_true_tracks_cover_every_vehicle_and_agree_with_the_found_ones():
    from terralab.das.losses import true_track_classes

    data, truth = synthetic.random_scene("bump", "urban", 503)
    rows = true_track_classes(data, truth, site="urban")
    assert rows["truth_index"].tolist() == truth.index.tolist()
    assert (rows["true"] == truth["vehicle_class"].to_numpy()).all()
    assert rows["ok"].tolist() == (rows["true"] == rows["predicted"]).tolist() and rows["ok"].mean() > 0.75
    # where the detector found a vehicle, its features (read on the detection's track) mostly give the class
    # the true track gives
    found = class_errors(das.detect_vehicles(data, site="urban"), truth)
    both = found.merge(rows, on="truth_index", suffixes=("_found", "_true"))
    assert len(both) > 15 and (both["predicted_found"] == both["predicted_true"]).mean() > 0.85

    class Trucks:  # any classifier with predict(features, trams=...)
        def predict(self, feats, trams=True):
            return ["truck"] * len(feats)

    stub = true_track_classes(data, truth, site="urban", classifier=Trucks())
    assert (stub["predicted"] == "truck").all()
    assert stub["ok"].tolist() == (truth["vehicle_class"] == "truck").tolist()
    with pytest.raises(InvalidInputError, match="'vehicle_class'"):
        true_track_classes(data, truth.drop(columns="vehicle_class"))
    with pytest.raises(InvalidInputError, match="distance increases"):
        true_track_classes(data.isel(distance=slice(None, None, -1)), truth)


def test_the_class_error_benchmark_prints_the_true_track_accuracy(capsys, load_benchmark):
    bench = load_benchmark("das_class_errors")
    rows = bench.run_true_tracks("bump", "urban", [503])
    _, truth = synthetic.random_scene("bump", "urban", 503)
    assert len(rows) == len(truth) and set(rows["scene"]) == {503}
    args = ["--seeds", "503-503", "--simulators", "bump", "--sites", "urban", "--true-tracks"]
    assert bench.main(args) == 0
    out = capsys.readouterr().out
    assert f"bump urban (true tracks): n {len(rows)} accuracy {rows['ok'].mean():.3f}" in out
    assert out.count("\n    car ") == 2 and out.count("\n    truck ") == 2  # per kind, both summaries
