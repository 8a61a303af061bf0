"""``benchmarks/das_oracle.py --recall``: the detector's recall per bin of the oracle statistic; ``--scan``:
the recall ceiling at a precision."""

from __future__ import annotations

import math


def test_recall_bins_cover_every_scored_vehicle_and_the_printout_has_them(capsys, load_benchmark):
    bench = load_benchmark("das_oracle")
    r = bench.run("bump", "urban", [503], recall=True)
    counts = [n for n, _ in r["recall_by_stat"]]
    assert len(counts) == len(bench.STAT_BINS) + 1 and sum(counts) == r["n"] > 0
    assert all(math.isnan(rec) if n == 0 else 0.0 <= rec <= 1.0 for n, rec in r["recall_by_stat"])
    assert r["inflation"] > 0.5
    assert bench.main(["--seeds", "503-503", "--simulators", "bump", "--sites", "urban", "--recall"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "recall >20 sd (n)" in out[0] and "noise x traffic" in out[0]
    assert out[1].split()[:3] == ["bump", "urban", str(r["n"])]


def test_the_scan_prints_a_ceiling_per_statistic_within_zero_and_one(capsys, load_benchmark):
    bench = load_benchmark("das_oracle")
    r = bench.run("halfspace", "urban", [503], scan=True, precision=0.9, isolated=True)
    assert sorted(r["ceiling"]) == sorted(r["isolated"]) == sorted(bench.SCAN_STATISTICS)
    for c in [*r["ceiling"].values(), *r["isolated"].values()]:
        assert c["n_scored"] == r["n"] and 0.0 <= c["recall_ceiling"] <= 1.0
        assert c["false_peaks"] <= 0.1 / 0.9 * c["n_scored"]
    for st in bench.SCAN_STATISTICS:  # the same noise scans, so the same threshold
        assert r["isolated"][st]["threshold"] == r["ceiling"][st]["threshold"]
    args = ["--seeds", "503-503", "--sites", "urban", "--scan", "--precision", "0.9", "--isolated"]
    assert bench.main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert "ceiling@P0.9 median (thr, false)" in out[0] and "ceiling@P0.9 mean (thr, false)" in out[0]
    assert out[0].split()[-4:] == ["alone", "median", "alone", "mean"]
    assert out[1].split()[:2] == ["bump", "urban"] and out[1].split()[-2:] == ["-", "-"]
    assert out[2].split()[:3] == ["halfspace", "urban", str(r["n"])]
    assert float(out[2].split()[5]) == round(r["ceiling"]["median"]["recall_ceiling"], 3)
    assert float(out[2].split()[-2]) == round(r["isolated"]["median"]["recall_ceiling"], 3)


def test_with_recall_the_scan_scores_the_detector_on_the_vehicles_above_the_ceiling(load_benchmark):
    bench = load_benchmark("das_oracle")
    r = bench.run("halfspace", "urban", [503], scan=True, recall=True)
    n_above, recall = r["recall_above"]
    assert n_above == round(r["ceiling"]["median"]["recall_ceiling"] * r["n"])
    assert 0.0 <= recall <= 1.0
    found_all = sum(n * rec for n, rec in r["recall_by_stat"] if n)
    assert recall * n_above <= found_all + 1e-9
