"""``benchmarks/das_oracle.py --recall``: the detector's recall per bin of the oracle statistic."""

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
