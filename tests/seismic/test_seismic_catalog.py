"""Catalogs: b-value and Mc on synthetic Gutenberg–Richter samples, catalog matching, Ridgecrest files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from terralab.errors import DataNotAvailableError, FileFormatError, InvalidInputError
from terralab.seismic import catalog, synthetic


def test_b_value_recovers_synthetic_gutenberg_richter():
    for b_true, seed in ((1.0, 0), (0.8, 1), (1.3, 2)):
        cat = synthetic.gutenberg_richter_catalog(n=3000, b_value=b_true, mc=1.5, bin_width=0.1, seed=seed)
        est = catalog.b_value(cat, mc=1.5, bin_width=0.1)
        assert est["n"] == 3000
        assert abs(est["b"] - b_true) < 3 * est["b_std_shi_bolt"]
        assert est["b_std_shi_bolt"] == pytest.approx(b_true / np.sqrt(3000), rel=0.2)


def test_shi_bolt_uncertainty_matches_the_spread_of_estimates():
    estimates, sigmas = [], []
    for seed in range(40):
        cat = synthetic.gutenberg_richter_catalog(n=400, b_value=1.0, mc=1.0, seed=100 + seed)
        est = catalog.b_value(cat, mc=1.0)
        estimates.append(est["b"])
        sigmas.append(est["b_std_shi_bolt"])
    assert np.std(estimates) == pytest.approx(np.mean(sigmas), rel=0.35)
    assert abs(np.mean(estimates) - 1.0) < 3 * np.mean(sigmas) / np.sqrt(40) + 0.01


def test_binning_correction_matters():
    cat = synthetic.gutenberg_richter_catalog(n=5000, b_value=1.0, mc=1.0, bin_width=0.1, seed=4)
    right = catalog.b_value(cat, 1.0, bin_width=0.1)["b"]
    naive = catalog.b_value(cat, 1.0, bin_width=0.0)["b"]  # ignores that magnitudes are binned
    assert abs(right - 1.0) < abs(naive - 1.0)


def test_bootstrap_uncertainty_is_close_to_analytic():
    cat = synthetic.gutenberg_richter_catalog(n=1000, b_value=1.0, mc=1.0, seed=5)
    est = catalog.b_value(cat, 1.0, n_bootstrap=300, seed=0)
    assert est["b_std_bootstrap"] == pytest.approx(est["b_std_shi_bolt"], rel=0.25)


def test_mc_recovered_on_incomplete_catalog():
    for seed in range(3):
        cat = synthetic.gutenberg_richter_catalog(n=2000, b_value=1.0, mc=1.0, incomplete_below=-0.5, seed=seed)
        assert len(cat) > 2000
        for method in ("maxc", "mbs"):
            assert abs(catalog.magnitude_of_completeness(cat, method=method) - 1.0) <= 0.2 + 1e-9


def test_frequency_magnitude_table():
    fmd = catalog.frequency_magnitude([1.0, 1.0, 1.1, 1.3], bin_width=0.1)
    assert fmd["magnitude"].tolist() == [1.0, 1.1, 1.2, 1.3]
    assert fmd["count"].tolist() == [2, 1, 0, 1] and fmd["cumulative"].tolist() == [4, 2, 1, 1]


def test_bad_magnitude_inputs():
    with pytest.raises(InvalidInputError, match="only 1"):
        catalog.b_value([1.0, 0.5], mc=1.0)
    with pytest.raises(InvalidInputError):
        catalog.b_value([np.nan], mc=1.0)
    with pytest.raises(InvalidInputError):
        catalog.magnitude_of_completeness([1.0, 2.0], method="guess")


def _perturbed_copy(cat, seed):
    rng = np.random.default_rng(seed)
    other = cat.copy()
    other["time"] = other["time"] + pd.to_timedelta(rng.uniform(-1, 1, len(other)), unit="s")
    other["latitude"] = other["latitude"] + rng.normal(0, 0.02, len(other))
    return other


def test_match_catalogs_recovers_known_pairs():
    ref = synthetic.gutenberg_richter_catalog(n=300, seed=6)
    other = _perturbed_copy(ref, 7)
    dropped = other.index[::10]                       # 30 events the other catalog misses
    extras = other.iloc[:25].copy()
    extras["time"] = extras["time"] + pd.Timedelta(minutes=17)  # 25 events only in the other catalog
    extras["latitude"] += 5.0
    other = pd.concat([other.drop(index=dropped), extras], ignore_index=False)
    other.index = pd.RangeIndex(len(other))
    res = catalog.match_catalogs(ref, other, time_tolerance_s=3.0, distance_tolerance_km=10.0)
    assert res.summary["n_matched"] == 270
    assert len(res.missed) == 30 and set(res.missed.index) == set(dropped)
    assert len(res.extra) == 25
    assert (res.matched["dt_s"].abs() <= 1.0 + 1e-6).all()
    assert res.summary["recall"] == pytest.approx(0.9)


def test_matching_is_one_to_one_for_doublets():
    t = pd.Timestamp("2019-07-04T18:00:00", tz="UTC")
    ref = pd.DataFrame({"time": [t, t + pd.Timedelta(seconds=1.5)], "latitude": [35.7, 35.7],
                        "longitude": [-117.5, -117.5], "magnitude": [2.0, 1.5]})
    other = pd.DataFrame({"time": [t + pd.Timedelta(seconds=0.9)], "latitude": [35.7], "longitude": [-117.5],
                          "magnitude": [1.9]})
    res = catalog.match_catalogs(ref, other, 3.0, 10.0)
    assert res.summary["n_matched"] == 1 and len(res.missed) == 1
    assert res.matched["index_ref"].item() == 1  # the closer in time (0.6 s) wins over 0.9 s


def test_ridgecrest_catalogs_as_geodataframes(shared_data):
    cats = catalog.ridgecrest(shared_data / "seismic/ridgecrest_catalog")
    assert {k: len(v) for k, v in cats.items()} == {"scsn": 703, "gamma": 1479, "stations": 58}
    for key in ("scsn", "gamma"):
        assert cats[key].crs.to_epsg() == 4326
        assert str(cats[key]["time"].dt.tz) == "UTC"
        assert cats[key]["depth_km"].between(-5, 60).all()
    assert cats["stations"]["network"].isin(["CI", "NP", "PB"]).all()
    res = catalog.match_catalogs(cats["scsn"], cats["gamma"])
    assert res.summary["n_matched"] > 600
    via_names = catalog.ridgecrest()  # through terralab.catalog and the mirror
    assert len(via_names["scsn"]) == 703


def test_reading_bad_catalog_files(tmp_path):
    with pytest.raises(DataNotAvailableError):
        catalog.read_catalog(tmp_path / "none.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(FileFormatError, match="lacks catalog columns"):
        catalog.read_catalog(bad)
    with pytest.raises(DataNotAvailableError):
        catalog.ridgecrest(tmp_path)


def test_catalog_plots(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    cat = synthetic.gutenberg_richter_catalog(n=300, seed=8)
    ax = catalog.plot_catalog_map(cat, other=_perturbed_copy(cat, 9))
    assert len(ax.collections) == 2
    est = catalog.b_value(cat, 1.0)
    ax = catalog.plot_frequency_magnitude(cat, mc=1.0, b=est)
    assert ax.get_yscale() == "log"
