"""Earth Engine request builders for the rice stack: the requests built, with `ee` replaced by a recorder."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from terralab import earthengine
from terralab.errors import InvalidInputError
from terralab.rice import acquire, features

PARO = (89.39, 27.42, 89.42, 27.45)


@pytest.fixture
def fake_ee(monkeypatch):
    monkeypatch.setenv("EE_PROJECT", "test-project")
    for var in ("EE_SERVICE_ACCOUNT", "EE_PRIVATE_KEY_FILE", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(var, raising=False)

    def pixels(request):
        dims = request["grid"]["dimensions"]
        out = np.zeros((dims["height"], dims["width"]), dtype=[(b, "<f4") for b in request["bandIds"]])
        for i, b in enumerate(request["bandIds"]):
            out[b] = i
        return out

    fake = earthengine.recording_ee(compute_pixels=pixels)
    monkeypatch.setitem(sys.modules, "ee", fake)
    earthengine._reset_state()
    yield fake
    earthengine._reset_state()


def test_nicfi_seasonal_median_filters_the_season_and_scales_to_reflectance(fake_ee):
    image = acquire.nicfi_seasonal_median(PARO, 2021, "before")
    text = repr(image)
    assert text.startswith("ImageCollection('projects/planet-nicfi/assets/basemaps/asia')")
    assert ".filterDate('2021-03-01', '2021-06-01')" in text
    assert ".select(['R', 'G', 'B', 'N'], ['red', 'green', 'blue', 'nir']).median().multiply(0.0001)" in text
    assert ".rename(['red_before', 'green_before', 'blue_before', 'nir_before'])" in text
    during = repr(acquire.nicfi_seasonal_median(PARO, 2021, "during"))
    assert ".filterDate('2021-07-01', '2021-10-01')" in during


def test_sentinel1_request_is_iw_dual_pol_one_orbit_flattened_and_speckle_filtered(fake_ee):
    image = acquire.sentinel1_seasonal(PARO, 2021, "during", orbit="desc")
    text = repr(image)
    assert "ImageCollection('COPERNICUS/S1_GRD')" in text
    assert "Filter.eq('instrumentMode', 'IW')" in text
    assert "Filter.listContains('transmitterReceiverPolarisation', 'VV')" in text
    assert "Filter.listContains('transmitterReceiverPolarisation', 'VH')" in text
    assert "Filter.eq('orbitProperties_pass', 'DESCENDING')" in text
    for month in (7, 8, 9):  # one median per month of the season
        assert f"Filter.calendarRange({month}, {month}, 'month')).median().set('month', {month})" in text
    assert "Terrain.slope(Image('USGS/SRTMGL1_003'))" in text and "<element>.select('angle')" in text
    assert "reduceNeighborhood(reducer=Reducer.variance()" in text  # the Lee filter
    assert text.endswith(
        ".mean().log10().multiply(10).rename(['vv_desc_during', 'vh_desc_during']).toFloat()"
    )


def test_sentinel1_refuses_unknown_orbits_and_months(fake_ee):
    with pytest.raises(InvalidInputError, match="orbit"):
        acquire.sentinel1_monthly_medians(PARO, 2021, [3], orbit="up")
    with pytest.raises(InvalidInputError, match="months"):
        acquire.sentinel1_monthly_medians(PARO, 2021, [13])


def test_dem_gives_elevation_and_slope_in_degrees(fake_ee):
    text = repr(acquire.dem_and_slope(PARO))
    assert text.startswith("Image('USGS/SRTMGL1_003').select(0).rename('elevation').addBands(Terrain.slope(")
    assert ".rename('slope')" in text


def test_feature_image_requests_only_what_the_band_set_needs(fake_ee):
    rgbn = repr(acquire.feature_image(PARO, 2021, "RGBN"))
    assert "S1_GRD" not in rgbn and "SRTMGL1" not in rgbn
    full = repr(acquire.feature_image(PARO, 2021, "RGBNES"))
    assert "S1_GRD" in full and "SRTMGL1" in full
    assert full.endswith(f".select({features.band_names('RGBNES')!r})".replace('"', "'"))


def test_fetch_stack_returns_the_bands_in_aces_order_with_indices_added_locally(fake_ee):
    stack = acquire.fetch_stack(PARO, year=2021, bands="RGBNE+NDVI", scale_m=30)
    assert list(stack["band"].values) == features.band_names("RGBNE+NDVI")
    assert stack.rio.crs.to_epsg() == 4326
    request = fake_ee.requests[-1]
    assert request["bandIds"] == features.band_names("RGBNE")
    assert (stack.sel(band="slope").values == 9).all()  # the recorder's value for the tenth band
    assert fake_ee.calls[0] == "Initialize(project='test-project')"


def test_export_stack_starts_a_tfrecord_task(fake_ee):
    acquire.export_stack(PARO, description="paro_rgbnes_2021", bucket="rice-bucket", folder="paro")
    text = fake_ee.text()
    assert "toCloudStorage(bucket='rice-bucket', fileNamePrefix='paro/paro_rgbnes_2021'" in text
    assert text.splitlines()[-1].endswith(".start()")


def test_band_sets_without_earth_engine_bands_are_refused(fake_ee):
    with pytest.raises(InvalidInputError):
        acquire.feature_image(PARO, 2021, ["ndvi_before"])
