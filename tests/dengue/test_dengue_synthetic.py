"""The synthetic generators: reproducible, shaped like the real data, carrying the truth they claim."""

import numpy as np
import pandas as pd
import pytest

from terralab import dengue
from terralab.dengue import synthetic as S


def test_synthetic_cases_are_reproducible_weekly_counts_with_their_truth():
    a = S.synthetic_cases(120, 3, seed=5)
    b = S.synthetic_cases(120, 3, seed=5)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(S.synthetic_cases(120, 3, seed=6))
    dengue.validate_cases(a)  # a regular weekly table of non-negative counts
    assert a.attrs["truth"]["rain_lag_weeks"] == 3 and len(a.attrs["truth"]["mu"][1]) == 120


def test_synthetic_counts_follow_the_negative_binomial_mean_and_variance():
    cases = S.synthetic_cases(
        3000,
        1,
        seed=0,
        season_amplitude=0.0,
        rain_effect=0.0,
        ar=0.0,
        noise_sd=0.0,
        base_rate=50.0,
        dispersion=0.1,
    )
    y = cases[1].to_numpy()
    assert y.mean() == pytest.approx(50, rel=0.05)
    assert y.var() == pytest.approx(50 + 0.1 * 50**2, rel=0.15)


def test_covariates_share_the_weeks_and_the_seed_of_the_cases():
    cases = S.synthetic_cases(60, [10, 20], seed=2)
    cov = S.synthetic_covariates(60, [10, 20], seed=2)
    aligned = dengue.align_covariates(cov, cases)
    assert aligned.shape == (60, 4)
    assert (cov["rain"] >= 0).all().all()


def test_synthetic_cube_clouds_are_bright_and_shadows_dark():
    ds = S.synthetic_s2_cube(20, size_px=32, n_tiles=4, seed=3)
    assert ds["cube"].dims == ("week", "band", "y", "x") and ds["cube"].sizes["band"] == 12
    tc = ds["tile_class"].to_numpy()
    edges = 8
    w, i, j = np.argwhere(tc == 1)[0]
    tile = ds["cube"][w, :, i * edges : (i + 1) * edges, j * edges : (j + 1) * edges]
    assert float(tile.mean()) > 0.5
    clear_tiles = np.argwhere(tc == 0)[0]
    w, i, j = clear_tiles
    np.testing.assert_array_equal(
        ds["cube"][w, :, i * edges : (i + 1) * edges, j * edges : (j + 1) * edges],
        ds["clear"][w, :, i * edges : (i + 1) * edges, j * edges : (j + 1) * edges],
    )


def test_greener_vegetation_follows_the_driver():
    driver = np.r_[np.full(5, -3.0), np.full(5, 3.0)]
    ds = S.synthetic_s2_cube(10, size_px=32, cloud_prob=0.0, shadow_prob=0.0, driver=driver, seed=0)
    nir = ds["clear"].sel(band="B08").mean(dim=("y", "x")).to_numpy()
    red = ds["clear"].sel(band="B04").mean(dim=("y", "x")).to_numpy()
    ndvi = (nir - red) / (nir + red)
    assert ndvi[5:].mean() > ndvi[:5].mean() + 0.1


def test_catalog_synthetic_entries_open(shared_data):
    from terralab import catalog

    cases = catalog.open("dengue_synthetic_cases", n_weeks=30)
    assert cases.shape == (30, 3)
    cubes = catalog.open("dengue_synthetic_s2_cubes", weeks=3, size_px=8, n_tiles=2)
    assert cubes.dims == ("location", "week", "band", "y", "x") and cubes.sizes["location"] == 5
