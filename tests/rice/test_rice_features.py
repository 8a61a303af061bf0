"""Band sets by name, indices, per-band normalisation, GeoTIFF round trips."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from terralab.errors import FileFormatError, InvalidInputError
from terralab.rice import features, synthetic


@pytest.fixture(scope="module")
def scene():
    return synthetic.scene(height_px=48, width_px=40, seed=2)


@pytest.mark.parametrize("name, n_bands", [("RGBN", 8), ("RGBNE", 10), ("RGBNS", 16), ("RGBNES", 18)])
def test_band_sets_have_the_papers_band_counts(name, n_bands):
    assert len(features.band_names(name)) == n_bands
    assert len(set(features.band_names(name))) == n_bands


def test_band_set_names_follow_aces():
    assert features.band_names("RGBN")[:4] == ["red_before", "green_before", "blue_before", "nir_before"]
    assert features.band_names("RGBNE")[8:] == ["elevation", "slope"]
    assert features.band_names("RGBNS")[8:10] == ["vv_asc_before", "vh_asc_before"]
    assert features.band_names("rgbn+ndvi+EVI")[-4:] == [
        "ndvi_before",
        "ndvi_during",
        "evi_before",
        "evi_during",
    ]


def test_unknown_set_or_index_is_an_invalid_input():
    with pytest.raises(InvalidInputError, match="RGBNES"):
        features.band_names("RGB")
    with pytest.raises(InvalidInputError, match="NDVI"):
        features.band_names("RGBN+SAVI")


def test_select_bands_keeps_the_order_and_georeference(scene):
    stack, _ = scene
    sub = features.select_bands(stack, "RGBNE")
    assert list(sub["band"].values) == features.band_names("RGBNE")
    assert sub.rio.crs == stack.rio.crs and sub.rio.transform() == stack.rio.transform()
    assert (
        features.select_bands(stack, None) is not None
        and features.select_bands(stack, None).sizes["band"] == 18
    )


def test_a_band_missing_for_the_requested_set_names_it(scene):
    stack, _ = scene
    rgbn = features.select_bands(stack, "RGBN")
    with pytest.raises(InvalidInputError) as err:
        features.select_bands(rgbn, "RGBNE")
    assert "elevation" in str(err.value) and "slope" in str(err.value)


def test_indices_follow_their_formulas(scene):
    stack, _ = scene
    out = features.add_indices(stack)
    red, nir = stack.sel(band="red_during").values, stack.sel(band="nir_during").values
    green, blue = stack.sel(band="green_during").values, stack.sel(band="blue_during").values
    np.testing.assert_allclose(out.sel(band="ndvi_during").values, (nir - red) / (nir + red), rtol=1e-5)
    np.testing.assert_allclose(out.sel(band="ndwi_during").values, (green - nir) / (green + nir), rtol=1e-5)
    np.testing.assert_allclose(
        out.sel(band="evi_during").values, 2.5 * (nir - red) / (nir + 6 * red - 7.5 * blue + 1), rtol=1e-4
    )
    assert out.sizes["band"] == 18 + 6


def test_normalisation_ignores_nan_and_keeps_constant_bands_finite():
    data = np.array([[[1.0, 3.0], [np.nan, 5.0]], [[2.0, 2.0], [2.0, 2.0]]], np.float32)
    stack = features.make_stack(data, ["a", "b"])
    norm = features.fit_normalisation(stack)
    assert norm.mean == pytest.approx([3.0, 2.0]) and norm.std[0] == pytest.approx(np.std([1, 3, 5]))
    assert norm.std[1] == 1.0
    z = norm.apply(data)
    assert np.isnan(z[0, 1, 0]) and np.isfinite(z[1]).all()
    again = features.Normalisation.from_dict(norm.to_dict())
    assert again == norm


def test_normalisation_of_points_uses_their_columns():
    points = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.0, 0.0, 1.0], "class": [0, 1, 1]})
    norm = features.fit_normalisation(points)
    assert norm.bands == ["a", "b"]


def test_geotiff_round_trip_keeps_band_names_nodata_and_grid(scene, tmp_path):
    stack, _ = scene
    path = features.write_stack(stack, tmp_path / "stack.tif")
    back = features.read_stack(path)
    assert list(back["band"].values) == list(stack["band"].values)
    np.testing.assert_array_equal(np.isnan(back.values), np.isnan(stack.values))
    np.testing.assert_allclose(back.values, stack.values, equal_nan=True)
    assert back.rio.crs == stack.rio.crs and back.rio.transform() == stack.rio.transform()
    assert [p.name for p in tmp_path.iterdir()] == ["stack.tif"]  # no temporary file left behind


def test_a_corrupt_geotiff_is_a_file_format_error(scene, tmp_path):
    stack, _ = scene
    path = features.write_stack(stack, tmp_path / "stack.tif")
    raw = path.read_bytes()
    bad = tmp_path / "bad.tif"
    bad.write_bytes(raw[:200])
    with pytest.raises(FileFormatError):
        features.read_stack(bad)
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"not a tiff at all" * 10)
    with pytest.raises(FileFormatError):
        features.read_stack(junk)
