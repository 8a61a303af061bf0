"""The synthetic valley carries the signals rice mapping relies on, with known truth."""

from __future__ import annotations

import numpy as np
import pytest

from terralab.errors import InvalidInputError
from terralab.rice import features, labels, synthetic

CROP, RICE, FOREST, URBAN, WATER = range(5)


@pytest.fixture(scope="module")
def scene():
    return synthetic.scene(height_px=160, width_px=160, seed=0)


def _median(stack, truth, band, cls):
    values = stack.sel(band=band).values[truth.values == cls]
    return float(np.nanmedian(values))


def test_same_seed_gives_the_same_scene_and_another_seed_another():
    a = synthetic.scene(height_px=40, width_px=40, seed=5)
    b = synthetic.scene(height_px=40, width_px=40, seed=5)
    c = synthetic.scene(height_px=40, width_px=40, seed=6)
    np.testing.assert_array_equal(a.stack.values, b.stack.values)
    assert not np.array_equal(a.truth.values, c.truth.values)


def test_scene_has_all_rgbnes_bands_five_classes_and_a_crs(scene):
    stack, truth = scene
    assert list(stack["band"].values) == features.band_names("RGBNES")
    assert set(np.unique(truth.values)) == {0, 1, 2, 3, 4}
    assert stack.rio.crs.to_epsg() == 32645 and truth.rio.crs == stack.rio.crs
    assert truth.attrs["class_names"][RICE] == "rice"


def test_rice_is_bare_before_and_green_during(scene):
    stack, truth = scene
    ndvi = features.add_indices(stack, ["ndvi"])
    rice_before = _median(ndvi, truth, "ndvi_before", RICE)
    rice_during = _median(ndvi, truth, "ndvi_during", RICE)
    crop_before = _median(ndvi, truth, "ndvi_before", CROP)
    assert rice_before < 0.35
    assert rice_during > 0.6
    assert crop_before > rice_before + 0.1  # other crops are already green before


def test_flooded_paddies_are_dark_in_vh_before_planting():
    # the generator's means differ by 3 dB; a whole 256-px valley has enough fields for the medians to show it
    stack, truth = synthetic.scene(height_px=256, width_px=256, seed=0)
    for orbit in ("asc", "desc"):
        rice = _median(stack, truth, f"vh_{orbit}_before", RICE)
        crop = _median(stack, truth, f"vh_{orbit}_before", CROP)
        rice_during = _median(stack, truth, f"vh_{orbit}_during", RICE)
        assert rice < crop - 2.0 and rice < rice_during - 4.0


def test_dem_is_terraced_where_rice_grows(scene):
    stack, truth = scene
    slope = stack.sel(band="slope").values
    rice_slope = slope[(truth.values == RICE) & np.isfinite(slope)]
    forest_slope = slope[(truth.values == FOREST) & np.isfinite(slope)]
    assert np.mean(rice_slope < 1.0) > 0.3  # flat treads
    assert np.mean(rice_slope > 5.0) > 0.02  # and risers between them
    assert np.median(forest_slope) > np.median(rice_slope)


def test_clouds_brighten_the_during_median_and_the_gap_is_nan_in_every_band():
    stack, truth = synthetic.scene(
        height_px=96, width_px=96, seed=1, cloud_fraction=0.1, nodata_fraction=0.04
    )
    natural = truth.values != URBAN  # roofs can be bright; vegetation, soil and water are not
    blue = stack.sel(band="blue_during").values[natural]
    assert np.nanmean(blue > 0.2) > 0.05
    gap = np.isnan(stack.values)
    assert (gap.any(axis=0) == gap.all(axis=0)).all()
    assert gap.all(axis=0).mean() == pytest.approx(0.04, abs=0.01)
    clear = synthetic.scene(height_px=96, width_px=96, seed=1, cloud_fraction=0.0, nodata_fraction=0.0)
    assert not np.isnan(clear.stack.values).any()
    assert np.mean(clear.stack.sel(band="blue_during").values[clear.truth.values != URBAN] > 0.2) < 0.001


def test_too_small_or_wrong_parameters_are_refused():
    with pytest.raises(InvalidInputError):
        synthetic.scene(height_px=16, width_px=64)
    with pytest.raises(InvalidInputError):
        synthetic.scene(height_px=64, width_px=64, cloud_fraction=0.9)


def test_an_unknown_scene_option_is_refused_with_the_options_there_are():
    with pytest.raises(InvalidInputError, match=r"unknown option\(s\) 'cloud_size_px'.*cloud_scale_px"):
        synthetic.scene(height_px=32, width_px=32, cloud_size_px=4.0)
    with pytest.raises(InvalidInputError, match="valley_width_fraction"):
        synthetic.scene(height_px=32, width_px=32, valley_width_fraction=0.6)


def test_remapped_landcover_gives_weak_labels_close_to_the_truth(scene):
    _, truth = scene
    lc = synthetic.landcover(truth, block_px=3, error_rate=0.1, seed=0)
    weak = labels.remap_classes(lc, synthetic.LANDCOVER_TO_CLASS)
    agree = float((weak.values == truth.values).mean())
    assert 0.75 < agree < 0.97  # coarse and noisy, but mostly right: what weak labels are
