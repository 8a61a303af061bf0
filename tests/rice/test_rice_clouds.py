"""Clouds, shadows and nodata: validity masks per season, cloudy synthetic valleys, the training augmentation,
and what predictions do where a season's optical data is missing."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from terralab import rice
from terralab.errors import InvalidInputError
from terralab.rice import clouds, features, synthetic

FAST = {"epochs": 1, "patches_per_epoch": 8, "batch_size": 4, "patch_size_px": 32, "progress": False}


def _mask_quality(stack, cloud_map, season):
    valid = clouds.validity(stack)
    flagged = ~valid.sel(group=f"optical_{season}").values
    gap = np.isnan(stack.values).all(axis=0)
    truth = cloud_map.sel(season=season).values
    cloud, clear = (truth == 1) & ~gap, (truth == 0) & ~gap
    return flagged[cloud].mean(), flagged[clear].mean()


@pytest.mark.parametrize(
    "settings",
    [
        {"cloud_fraction": 0.25},  # round monsoon blobs
        {
            "cloud_fraction": {"before": 0.2},
            "cloud_scale_px": 4.0,
            "cloud_anisotropy": 3.0,
            "sun_azimuth_deg": 60.0,
        },
    ],
    ids=["during-blobs", "before-streaks"],
)
def test_rgbn_cloud_test_finds_most_cloud_and_flags_little_clear_ground(settings):
    """Thresholds are physical (HOT, Fmask's whiteness), not fitted: checked here on a valley and cloud shapes
    (streaks in the other season, another sun) the thresholds were not looked at on."""
    stack, _, cloud_map = synthetic.scene(
        height_px=160, width_px=160, seed=41, return_clouds=True, **settings
    )
    season = "before" if "before" in str(settings["cloud_fraction"]) else "during"
    recall, false_alarm = _mask_quality(stack, cloud_map, season)
    assert recall > 0.8 and false_alarm < 0.03
    other = "during" if season == "before" else "before"
    assert (~clouds.validity(stack).sel(group=f"optical_{other}").values).mean() < 0.02


def test_the_data_own_nan_masks_one_season_and_the_pixel_keeps_its_other_bands():
    stack, _ = synthetic.scene(height_px=48, width_px=48, seed=2, cloud_fraction=0.0, nodata_fraction=0.0)
    stack = stack.copy(data=stack.values.copy())
    during = [
        i for i, b in enumerate(stack["band"].values) if b.endswith("_during") and not b.startswith("v")
    ]
    stack.values[during, :10, :10] = np.nan
    valid = clouds.validity(stack)
    assert list(valid["group"].values[:2]) == ["optical_before", "optical_during"]
    assert not valid.sel(group="optical_during").values[:10, :10].any()
    assert valid.drop_sel(group="optical_during").values[:, :10, :10].all()


def test_sentinel2_cloud_probability_and_scl_bands_mask_and_are_never_features():
    stack, truth = synthetic.scene(height_px=48, width_px=48, seed=3, cloud_fraction=0.0, nodata_fraction=0.0)
    prob = np.zeros((1, 48, 48), np.float32)
    prob[0, :, :12] = 90.0
    scl = np.full((1, 48, 48), 4.0, np.float32)  # vegetation
    scl[0, 40:, :] = 3.0  # cloud shadow
    extra = features.make_stack(np.concatenate([prob, scl]), ["cloud_prob_during", "scl_before"])
    both = xr.concat([stack, extra.assign_coords(x=stack["x"], y=stack["y"])], dim="band")
    valid = clouds.validity(both)
    assert (
        not valid.sel(group="optical_during").values[:, :12].any()
        and valid.sel(group="optical_during").values[:, 12:].all()
    )
    assert (
        not valid.sel(group="optical_before").values[40:].any()
        and valid.sel(group="optical_before").values[:40].all()
    )
    model = rice.fit(both.rio.write_crs(stack.rio.crs), truth, model="rf", n_estimators=5, progress=False)
    assert "cloud_prob_during" not in model.bands and "scl_before" not in model.bands
    assert model.input_names[-2:] == ["valid_optical_before", "valid_optical_during"]


def test_a_cloud_mask_on_another_grid_is_refused():
    stack, truth = synthetic.scene(height_px=48, width_px=48, seed=3)
    mask = xr.DataArray(
        np.zeros((40, 48), bool),
        dims=("y", "x"),
        coords={"y": stack["y"].values[:40], "x": stack["x"].values},
    )
    with pytest.raises(InvalidInputError, match="different grid"):
        clouds.validity(stack, cloud_mask=mask)
    with pytest.raises(InvalidInputError, match="different grid"):
        rice.fit(stack, truth, model="rf", n_estimators=5, cloud_mask=mask, progress=False)
    on_grid = truth.copy(data=np.zeros(truth.shape, bool))
    on_grid.values[:8] = True
    valid = clouds.validity(stack, cloud_mask=on_grid)
    assert not valid.sel(group="optical_during").values[:8].any()


def test_clouds_come_in_either_season_with_shadows_and_leave_the_landscape_alone():
    clear = synthetic.scene(height_px=96, width_px=96, seed=5, cloud_fraction=0.0)
    cloudy = synthetic.scene(
        height_px=96, width_px=96, seed=5, cloud_fraction={"before": 0.3, "during": 0.1}, return_clouds=True
    )
    np.testing.assert_array_equal(clear.truth.values, cloudy.truth.values)
    radar = [b for b in features.SENTINEL1]
    np.testing.assert_array_equal(clear.stack.sel(band=radar).values, cloudy.stack.sel(band=radar).values)
    cover = (cloudy.clouds == 1).mean(("y", "x"))
    assert float(cover.sel(season="before")) == pytest.approx(0.3, abs=0.01)
    assert float(cover.sel(season="during")) == pytest.approx(0.1, abs=0.01)
    shadow = cloudy.clouds.sel(season="before").values == 2
    nir_clear = clear.stack.sel(band="nir_before").values
    nir_cloudy = cloudy.stack.sel(band="nir_before").values
    assert shadow.mean() > 0.05 and np.nanmedian(nir_cloudy[shadow] / nir_clear[shadow]) < 0.8
    with pytest.raises(InvalidInputError, match="seasons"):
        synthetic.scene(height_px=64, width_px=64, cloud_fraction={"monsoon": 0.2})


def test_augmentation_draws_clouds_and_shadows_on_the_during_bands_only():
    stack, _ = synthetic.scene(height_px=64, width_px=64, seed=6, cloud_fraction=0.0, nodata_fraction=0.0)
    names = [str(b) for b in stack["band"].values]
    raw = stack.values.copy()
    out, cores = clouds.augment(raw, names, np.random.default_rng(1), probability=1.0, return_cores=True)
    np.testing.assert_array_equal(raw, stack.values)  # the input is not changed
    changed = [n for i, n in enumerate(names) if not np.array_equal(out[i], raw[i])]
    assert sorted(changed) == sorted(f"{b}_during" for b in ("red", "green", "blue", "nir"))
    core = cores["during"]
    blue = names.index("blue_during")
    assert 0.02 < core.mean() < 0.9 and (out[blue][core] != raw[blue][core]).all()
    assert np.array_equal(clouds.augment(raw, names, np.random.default_rng(1), probability=0.0), raw)


# --- models under clouds -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def half_cloudy():
    """A valley whose during-season optical bands are missing (NaN, as a provider's cloud mask) on the left
    half."""
    stack, truth = synthetic.scene(height_px=64, width_px=64, seed=8, cloud_fraction=0.0, nodata_fraction=0.0)
    stack = stack.copy(data=stack.values.copy())
    during = [
        i
        for i, b in enumerate(stack["band"].values)
        if b.split("_")[0] in ("red", "green", "blue", "nir") and b.endswith("_during")
    ]
    stack.values[during, :, :32] = np.nan
    return stack, truth


def test_pixels_without_optical_data_are_predicted_from_radar_and_marked(half_cloudy):
    stack, truth = half_cloudy
    both = stack.copy(data=stack.values.copy())
    before = [
        i
        for i, b in enumerate(both["band"].values)
        if b.split("_")[0] in ("red", "green", "blue", "nir") and b.endswith("_before")
    ]
    both.values[before, :16, :32] = np.nan  # no optical season at all there
    model = rice.fit(both, truth, model="unet", bands="RGBNES", seed=0, **FAST)
    out = rice.predict(model, both, tile=32, overlap=8, progress=False, return_proba=True)
    quality = out["quality"].values
    assert (quality[:16, :32] == 2).all() and (quality[16:, :32] == 1).all()
    assert (quality[:, 40:] == 0).mean() > 0.97  # the cloud test's rare false alarms on clear ground
    assert (out["classes"].values >= 0).all()  # radar and terrain still give a class
    np.testing.assert_allclose(out["probability"].sum("class").values, 1.0, atol=1e-5)
    np.testing.assert_allclose(out["confidence"].values, out["probability"].max("class").values)
    assert (
        rice.predict(model, both, tile=32, overlap=8, progress=False).coords["quality"].values == quality
    ).all()
    rgbn = rice.fit(both, truth, model="rf", bands="RGBN", n_estimators=5, progress=False)
    classes = rice.predict(rgbn, both, progress=False)
    assert (classes.values[:16, :32] == -1).all() and (classes.values[16:] >= 0).all()


def test_pixels_with_no_valid_band_never_teach(half_cloudy):
    """Forest labelled only where no optical season and no radar is valid: the model never sees forest."""
    stack, truth = half_cloudy
    rgbn = features.select_bands(stack, "RGBN")
    blind = rgbn.copy(data=rgbn.values.copy())
    blind.values[:4, :, :32] = np.nan  # before bands too: nothing observed on the left half
    labels = truth.copy(data=np.where((truth.values == 2) & (np.arange(64)[None, :] >= 32), -1, truth.values))
    assert (labels.values[:, :32] == 2).any()
    model = rice.fit(blind, labels, model="rf", n_estimators=5, progress=False)
    assert 2 not in model.net.classes_


def test_all_pixels_cloudy_is_a_typed_error_in_fit_and_predict(half_cloudy):
    stack, truth = half_cloudy
    overcast = stack.copy(data=stack.values.copy())
    during = [
        i
        for i, b in enumerate(stack["band"].values)
        if b.split("_")[0] in ("red", "green", "blue", "nir") and b.endswith("_during")
    ]
    overcast.values[during] = 0.4  # a white sheet of cloud in every during pixel
    with pytest.raises(InvalidInputError, match="all pixels cloudy"):
        rice.fit(overcast, truth, model="rf", n_estimators=5, progress=False)
    model = rice.fit(stack, truth, model="rf", bands="RGBN", n_estimators=5, progress=False)
    dark = features.select_bands(overcast, "RGBN").copy()
    dark.values[:4] = 0.4  # and the before season too
    with pytest.raises(InvalidInputError, match="all pixels cloudy"):
        rice.predict(model, dark, progress=False)
