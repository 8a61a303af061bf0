"""The packaged defaults on scenes of two independently written simulators (small version of the benchmark).

``benchmarks/das_cross_simulator.py`` prints the full table (20 unseen scenes per simulator and site,
parameters chosen on either simulator); this test runs unseen scenes (seeds 500-502: seeds 500-599 are used
nowhere else; one highway scene, three urban ones) with the packaged defaults and the site preset, and holds
the floors below. It does not classify, so the tram merge (``tram_group_m``, which needs the classes) is off
here; ``tests/das/test_das_trams.py`` tests it.

The defaults were re-chosen after the half-space simulator's audit (Odemark equivalent depth, coupling
0.3-1.0) on its development seeds 100-107 only (``python benchmarks/das_cross_simulator.py --choose``:
low-pass 1 Hz at 8 Hz, threshold 3.5, merge 25 m; then ``lobe_merge`` and ``speed_stack`` on; then
``pair_merge_m`` 25 m and ``incoherent_speed_change`` 0.4 on the development seeds of both simulators, then
``crossing_ratio`` 1.5 the same way, see ``detect.CHOSEN``; ``max_accel_ms2`` is a physical bound; then
``resplit_s`` 1.5 s and ``split_eps_s`` 0.5 s, then ``max_merge_s`` 2 s, on the development seeds of both
simulators; then the speed re-read ``restack_m`` 20 m).
Measured with them on these unseen scenes (development machine):

* bump highway (seed 500): P 1.00, R 0.93, 0 duplicates, speed MAE 0.77 km/h;
* bump urban (500-502): P 1.00, R 0.88, 0 duplicates, speed MAE 0.14 km/h;
* half-space highway (500): P 0.76, R 0.93, 3 duplicates, speed MAE 1.39 km/h;
* half-space urban (500-502): P 0.47, R 0.57, 9 duplicates, speed MAE 0.50 km/h.

(Before ``restack_m``: speed MAE 1.05 / 0.41 / 2.99 / 1.13 km/h, half-space highway P 0.87 with 2 duplicates:
two detections of a 72 km/h platoon entering the record at its start, fitted at 81 and 90 km/h, then fell
to the partly recorded vehicles, which count neither way; re-read at 92 and 98 km/h they are false. On the
20-scene benchmark the step changes half-space highway precision by -0.003 / +0.001 on seeds 1000 / 16000.)

(Before the scorer matched in the vehicle's direction only and matched partly recorded vehicles together
with the whole ones, ``evaluate.match_scene``: half-space urban P 0.50, R 0.60, 8 duplicates, 1.30 km/h,
floors P 0.39, R 0.46, 9 duplicates; the rest unchanged. The notes below were measured with the scorer of
their time.)

(Before ``max_merge_s``, which stops the merge of two tracks more than 2 s apart - in slow platoons these
are two vehicles more often than one long one: half-space urban P 0.52, R 0.55, 5 duplicates, 1.31 km/h; the
rest unchanged.)

(Before ``site="highway"`` turned the second pass on, ``params.PEEL_SITES``: bump highway R 0.90, 1.04 km/h;
the rest unchanged.)

(Before ``split_eps_s``: half-space urban R 0.53, 1.34 km/h; the rest unchanged.)

(Before ``resplit_s``: half-space highway P 0.86, R 0.86, 3.23 km/h; half-space urban P 0.53, R 0.52,
3 duplicates, 1.38 km/h; the bump scenes unchanged.)

(Before ``crossing_ratio``: half-space urban P 0.52, R 0.55, 4 duplicates, 1.55 km/h; the rest unchanged.)

(Before ``pair_merge_m`` and ``incoherent_speed_change``: bump highway R 0.93; half-space highway P 0.80;
half-space urban P 0.51, R 0.59, 8 duplicates, 1.60 km/h; the rest unchanged. On the 20-scene benchmark the
two rules raise precision and cut the half-space duplicates by a quarter, at a recall cost of 0.005-0.015.)

Floors are these values minus (plus, for duplicates and speed error) the scene-to-scene standard deviation of
the same metric over the development seeds 100-107 with the same defaults (precision / recall / duplicates per
scene / speed MAE: bump highway 0.03 / 0.06 / 0 / 0.40, bump urban 0.02 / 0.12 / 0 / 0.22, half-space highway
0.05 / 0.11 / 0.3 / 0.82, half-space urban 0.11 / 0.14 / 0.9 / 0.48; duplicates rounded up, times sqrt(3) for
the three urban scenes). The issue-11 targets (P, R >= 0.97, no duplicates, speed MAE <= 2 km/h) are NOT MET
on the half-space simulator. An oracle that knows each vehicle's track finds 97 % of the unseen half-space
street vehicles above the noise, but a quarter of them only weakly, and the detector misses three in ten of
the strong ones (``benchmarks/das_oracle.py --recall``): the track search and the merging of a vehicle's
ridges are what is missing first. The floors hold today's state, not a quality claim.
"""

from __future__ import annotations

import pytest

from terralab.das import evaluate

SEEDS = {"highway": [500], "urban": [500, 501, 502]}


@pytest.mark.parametrize(
    "simulator, site, precision, recall, max_dups, max_speed_mae",
    [
        ("bump", "highway", 0.97, 0.83, 0, 1.2),
        ("bump", "urban", 0.98, 0.76, 0, 0.36),
        ("halfspace", "highway", 0.71, 0.74, 3, 2.2),
        ("halfspace", "urban", 0.36, 0.43, 11, 1.0),
    ],
)
def test_defaults_on_both_simulators_meet_the_stated_floors(
    simulator, site, precision, recall, max_dups, max_speed_mae
):
    table = evaluate.evaluate_scenes(
        simulator, site, SEEDS[site], detect_kwargs={"site": site, "classify": False}
    )
    assert len(table) == 1 and table.attrs["units"]["speed_mae_kmh"] == "km/h"
    pooled = table.iloc[0]
    assert pooled["n_true"] >= 10
    assert pooled["precision"] >= precision, pooled
    assert pooled["recall"] >= recall, pooled
    assert pooled["duplicates"] <= max_dups, pooled
    assert pooled["speed_mae_kmh"] <= max_speed_mae, pooled


def test_two_vehicles_more_than_max_merge_s_apart_are_not_merged_into_one():
    from terralab import das
    from terralab.das import synthetic

    # half-space urban test seed 500: two cars at 24 km/h pass 2.1 s after a car and a van (14 m: within
    # max_vehicle_m, 25 m); with max_merge_s = 0 the joined merge took each into its neighbour (12 of 27
    # vehicles found), with the default 2 s both stay (14 of 27) and no vehicle found before is lost
    assert das.DetectParams().max_merge_s == 2.0
    data, truth = synthetic.random_scene("halfspace", "urban", 500)
    capped = das.match(das.detect_vehicles(data, site="urban", classify=False), truth)
    merged = das.match(das.detect_vehicles(data, site="urban", classify=False, max_merge_s=0.0), truth)
    gained = set(capped["truth_index"]) - set(merged["truth_index"])
    assert len(gained) >= 2 and set(truth.loc[sorted(gained), "kind"]) == {"car"}
    assert set(merged["truth_index"]) <= set(capped["truth_index"])


def test_merging_tracks_whose_fitted_speeds_differ_by_up_to_20_percent_removes_duplicates_only():
    # half-space test scenes (highway 500, urban 500-502; measured): duplicates 3 -> 2 and 9 -> 7 with
    # merge_speed_change 0.1 -> 0.2 (the default), the same vehicles found (13 of 14, 33 of 58)
    from terralab import das

    assert das.DetectParams().merge_speed_change == 0.2
    dups, found = {0.1: 0, 0.2: 0}, {0.1: set(), 0.2: set()}
    for site, seeds in SEEDS.items():
        runs = {change: {"site": site, "classify": False, "merge_speed_change": change} for change in dups}
        for seed, truth, matched in evaluate.scene_matches("halfspace", site, seeds, runs):
            for change, (kept, pairs) in matched.items():
                dups[change] += evaluate.duplicates(kept, truth, pairs)
                found[change].update((site, seed, i) for i in pairs["truth_index"])
    assert dups[0.2] <= dups[0.1] - 2, dups
    assert found[0.2] == found[0.1]


def test_the_benchmark_applies_a_set_override_to_both_choices_and_refuses_unknown_names(
    capsys, load_benchmark
):
    bench = load_benchmark("das_cross_simulator")
    assert bench._override("peel_sigma=3.5") == ("peel_sigma", 3.5)
    assert bench._override("image=strain") == ("image", "strain")
    for bad in ("peel_sigma", "no_such_field=1"):
        with pytest.raises(SystemExit, match="DetectParams field"):
            bench._override(bad)
    args = ["--scenes", "1", "--first-seed", "503", "--simulators", "bump", "--sites", "urban"]
    assert bench.main(args + ["--set", "peel_sigma=0"]) == 0
    out = capsys.readouterr().out
    assert "overrides in both choices: {'peel_sigma': 0}" in out
    # the packaged choice on the scene of the second-pass test, which site="urban" turns on: 21 detected
    # with the pass turned off here (23 with it, the next test; 22 and 24 before absorb_tram_halos took a true
    # car 25 m behind a truck the classifier calls a tram, both in a 13 km/h queue; before the urban site
    # turned the pass on, 24 with --set peel_sigma=3.5; 25 before tram_group_m merged a truck the classifier
    # calls a tram with the truck the pass finds behind it; 23 and 21 before max_merge_s)
    rows = [line.split() for line in out.splitlines() if line.startswith("halfspace  bump")]
    assert len(rows) == 1 and rows[0][5] == "21"


def test_the_benchmark_prints_intervals_paired_differences_and_hough_seed_spreads(capsys, load_benchmark):
    bench = load_benchmark("das_cross_simulator")
    args = ["--scenes", "1", "--first-seed", "503", "--simulators", "bump", "--sites", "urban"]
    assert bench.main(args + ["--against", "max_merge_s=0"]) == 0
    out = capsys.readouterr().out
    rows = {
        line.split()[0]: line.split() for line in out.splitlines() if line.split()[1:3] == ["bump", "urban"]
    }
    # seed 503 (see the second-pass test, on with site="urban"): 23 detected with max_merge_s, 22 without
    # (24 and 23 before absorb_tram_halos took a true car in a queue behind a truck called a tram; 22 and 21
    # before the urban site turned the second pass on; 23 with max_merge_s before merge_speed_change 0.2
    # merged its one duplicate); F1 and its interval last
    assert rows["halfspace"][5] == "23" and rows["packaged-vs"][5] == "22"
    assert rows["halfspace"][-2].startswith("[") and rows["halfspace"][-1].endswith("]")
    assert "F1 packaged minus packaged with {'max_merge_s': 0}, same scenes: +" in out
    assert "F1 bump choice - half-space choice, same scenes:" in out
    assert bench.main(args + ["--hough-seeds", "0,1"]) == 0
    out = capsys.readouterr().out
    assert "halfspace: F1 over Hough seeds [0, 1]: mean" in out and "halfspace#1" in out
    with pytest.raises(SystemExit, match="do not combine"):
        bench.main(args + ["--hough-seeds", "0,1", "--against", "max_merge_s=0"])
