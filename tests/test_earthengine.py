"""terralab.earthengine builds the right requests and handles credentials — with `ee` replaced by a
recorder."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from terralab import earthengine
from terralab.errors import CredentialsError, InvalidInputError, MissingDependencyError

PARO = (89.39, 27.42, 89.42, 27.45)


@pytest.fixture
def fake_ee(monkeypatch):
    for var in ("EE_SERVICE_ACCOUNT", "EE_PRIVATE_KEY_FILE", "GOOGLE_APPLICATION_CREDENTIALS", "EE_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    fake = earthengine.recording_ee()
    monkeypatch.setitem(sys.modules, "ee", fake)
    earthengine._reset_state()
    yield fake
    earthengine._reset_state()


def test_importing_earthengine_does_not_import_ee():
    code = "import sys, terralab.earthengine; print('ee' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.stdout.strip() == "False", out.stderr


def test_missing_ee_package_raises_missing_dependency_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ee", None)  # makes `import ee` fail
    earthengine._reset_state()
    with pytest.raises(MissingDependencyError, match=r"terralab\[ee\]"):
        earthengine.initialize()


def test_service_account_from_environment_is_used(fake_ee, monkeypatch, tmp_path):
    key = tmp_path / "key.json"
    key.write_text(
        json.dumps({"type": "service_account", "client_email": "sa@p.iam", "project_id": "key-project"})
    )
    monkeypatch.setenv("EE_SERVICE_ACCOUNT", "sa@p.iam")
    monkeypatch.setenv("EE_PRIVATE_KEY_FILE", str(key))
    ee = earthengine.initialize()
    assert ee is fake_ee
    text = fake_ee.text()
    assert f"ServiceAccountCredentials('sa@p.iam', key_file='{key}')" in text
    assert "Initialize(credentials=ServiceAccountCredentials(" in text and "project='key-project'" in text


def test_google_application_credentials_json_key_is_a_service_account(fake_ee, monkeypatch, tmp_path):
    key = tmp_path / "gac.json"
    key.write_text(json.dumps({"type": "service_account", "client_email": "bot@x.iam", "project_id": "x"}))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    earthengine.initialize(project="explicit")
    assert "ServiceAccountCredentials('bot@x.iam'" in fake_ee.text()
    assert "project='explicit'" in fake_ee.text()


def test_user_credentials_use_project_from_environment(fake_ee, monkeypatch):
    monkeypatch.setenv("EE_PROJECT", "my-ee-project")
    earthengine.initialize()
    assert fake_ee.calls[-1] == "Initialize(project='my-ee-project')"


def test_no_credentials_raise_credentials_error_explaining_both_ways(monkeypatch):
    for var in ("EE_SERVICE_ACCOUNT", "EE_PRIVATE_KEY_FILE", "GOOGLE_APPLICATION_CREDENTIALS", "EE_PROJECT"):
        monkeypatch.delenv(var, raising=False)

    def refuse(*args, **kwargs):
        raise RuntimeError("Please authorize access to your Earth Engine account")

    monkeypatch.setitem(sys.modules, "ee", earthengine.recording_ee(initialize=refuse))
    earthengine._reset_state()
    with pytest.raises(CredentialsError) as err:
        earthengine.initialize()
    message = str(err.value)
    assert "EE_SERVICE_ACCOUNT" in message and "earthengine authenticate" in message


def test_service_account_without_key_file_is_a_credentials_error(fake_ee, monkeypatch, tmp_path):
    monkeypatch.setenv("EE_SERVICE_ACCOUNT", "sa@p.iam")
    with pytest.raises(CredentialsError, match="together"):
        earthengine.initialize()
    monkeypatch.setenv("EE_PRIVATE_KEY_FILE", str(tmp_path / "absent.json"))
    with pytest.raises(CredentialsError, match="does not exist"):
        earthengine.initialize()


def test_pixel_grid_at_10_m_in_geographic_crs_uses_earth_engine_degrees():
    grid = earthengine.pixel_grid(PARO, scale_m=10, crs="EPSG:4326")
    a = grid["affineTransform"]
    assert a["scaleX"] == pytest.approx(8.983152841195215e-05, rel=1e-12)  # the ACES mixer's pixel size
    assert a["scaleY"] == pytest.approx(-a["scaleX"])
    assert a["translateX"] <= PARO[0] < a["translateX"] + a["scaleX"]
    assert a["translateY"] - a["scaleX"] < PARO[3] <= a["translateY"]
    w, h = grid["dimensions"]["width"], grid["dimensions"]["height"]
    assert a["translateX"] + w * a["scaleX"] >= PARO[2]
    assert a["translateY"] - h * a["scaleX"] <= PARO[1]
    assert w == pytest.approx((PARO[2] - PARO[0]) / a["scaleX"], abs=2)


def test_pixel_grid_in_utm_uses_metres():
    grid = earthengine.pixel_grid(PARO, scale_m=30, crs="EPSG:32645")
    a = grid["affineTransform"]
    assert a["scaleX"] == 30 and a["translateX"] % 30 == 0
    assert 700_000 < a["translateX"] < 800_000  # Paro lies east of UTM 45N's central meridian
    assert 100 < grid["dimensions"]["width"] < 130  # 0.03° of longitude ≈ 3 km


def test_compute_pixels_sends_numpy_request_and_returns_georeferenced_dataarray(fake_ee):
    def answer(request):
        dims = request["grid"]["dimensions"]
        out = np.zeros((dims["height"], dims["width"]), dtype=[("elevation", "<f4"), ("slope", "<f4")])
        out["elevation"] = np.arange(dims["width"])[None, :]
        out["slope"] = 7.0
        return out

    monkey = earthengine.recording_ee(compute_pixels=answer)
    sys.modules["ee"] = monkey
    earthengine._reset_state()
    image = monkey.Image("USGS/SRTMGL1_003")
    da = earthengine.compute_pixels(image, PARO, scale_m=30, crs="EPSG:4326", bands=["elevation", "slope"])
    request = monkey.requests[-1]
    assert request["fileFormat"] == "NUMPY_NDARRAY"
    assert request["bandIds"] == ["elevation", "slope"]
    assert repr(request["expression"]) == "Image('USGS/SRTMGL1_003').select(['elevation', 'slope'])"
    assert da.dims == ("band", "y", "x") and list(da["band"].values) == ["elevation", "slope"]
    assert da.rio.crs.to_epsg() == 4326
    a = request["grid"]["affineTransform"]
    assert da.rio.transform().c == pytest.approx(a["translateX"])
    assert float(da["x"][0]) == pytest.approx(a["translateX"] + a["scaleX"] / 2)
    np.testing.assert_array_equal(da.sel(band="elevation").values[0], np.arange(da.sizes["x"]))
    assert (da.sel(band="slope").values == 7).all()


def test_compute_pixels_refuses_areas_above_the_request_limit_and_points_to_export(fake_ee):
    image = fake_ee.Image("x")
    with pytest.raises(InvalidInputError, match="export_tfrecord"):
        earthengine.compute_pixels(image, (80.0, 20.0, 90.0, 30.0), scale_m=10, bands=["a", "b"])


def test_compute_pixels_rejects_a_box_that_is_not_lon_lat(fake_ee):
    with pytest.raises(InvalidInputError, match="xmin < xmax"):
        earthengine.compute_pixels(fake_ee.Image("x"), (89.5, 27.4, 89.4, 27.5), scale_m=10, bands=["a"])
    with pytest.raises(InvalidInputError, match="lon/lat"):
        earthengine.compute_pixels(
            fake_ee.Image("x"), (737000, 3039000, 738000, 3040000), scale_m=10, bands=["a"]
        )


def test_export_tfrecord_to_drive_starts_a_patch_export(fake_ee):
    task = earthengine.export_tfrecord(
        fake_ee.Image("img"), PARO, scale_m=10, description="paro_2021", folder="rice"
    )
    text = fake_ee.text()
    assert "batch.Export.image.toDrive(" in text
    assert "folder='rice'" in text and "fileNamePrefix='paro_2021'" in text
    assert (
        "fileFormat='TFRecord'" in text
        and "'patchDimensions': [256, 256]" in text
        and "'compressed': True" in text
    )
    assert "region=Geometry.Rectangle([89.39, 27.42, 89.42, 27.45], proj='EPSG:4326', geodesic=False)" in text
    assert "scale=10.0" in text and "crs='EPSG:4326'" in text
    assert fake_ee.calls[-1].endswith(".start()") and repr(task).startswith("batch.Export.image.toDrive(")


def test_export_tfrecord_to_cloud_storage_uses_bucket_and_prefix(fake_ee):
    earthengine.export_tfrecord(
        fake_ee.Image("img"),
        PARO,
        scale_m=10,
        description="paro",
        bucket="b",
        folder="exports/",
        patch_size=128,
        kernel_size=32,
    )
    text = fake_ee.text()
    assert "toCloudStorage(bucket='b', fileNamePrefix='exports/paro'" in text
    assert "'patchDimensions': [128, 128]" in text and "'kernelSize': [32, 32]" in text


def test_export_rejects_descriptions_earth_engine_refuses(fake_ee):
    with pytest.raises(InvalidInputError, match="description"):
        earthengine.export_tfrecord(fake_ee.Image("img"), PARO, scale_m=10, description="my export/2021")


def test_export_table_tfrecord_starts_a_table_export(fake_ee):
    earthengine.export_table_tfrecord(
        fake_ee.FeatureCollection("pts"), description="points", selectors=["a", "class"]
    )
    assert (
        "batch.Export.table.toDrive(folder=None, fileNamePrefix='points', collection=FeatureCollection('pts')"
        in fake_ee.text()
    )
    assert "selectors=['a', 'class']" in fake_ee.text()


def test_catalog_earth_engine_entries_initialise_through_the_one_initialize(fake_ee, monkeypatch, tmp_path):
    """catalog.open of an Earth Engine entry uses earthengine.initialize (same credential rules as the
    request builders): the service account's key project is billed, the entry's asset and bands are
    selected."""
    from terralab import catalog

    key = tmp_path / "key.json"
    key.write_text(
        json.dumps({"type": "service_account", "client_email": "sa@p.iam", "project_id": "key-project"})
    )
    monkeypatch.setenv("EE_SERVICE_ACCOUNT", "sa@p.iam")
    monkeypatch.setenv("EE_PRIVATE_KEY_FILE", str(key))
    dem = catalog.open("ee_nasadem")
    assert repr(dem) == "Image('NASA/NASADEM_HGT/001').select(['elevation'])"
    s2 = catalog.open("ee_sentinel2_sr_harmonized", bands=["B4", "B8"])
    assert repr(s2) == "ImageCollection('COPERNICUS/S2_SR_HARMONIZED').select(['B4', 'B8'])"
    inits = [c for c in fake_ee.calls if c.startswith("Initialize(")]
    assert len(inits) == 1 and "credentials=ServiceAccountCredentials(" in inits[0]
    assert "project='key-project'" in inits[0]
