"""Sentinel-2 request builders (Earth Engine and STAC, both mocked), cloud/shadow tiles, and the sample
readers."""

import math
import sys
import types

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from terralab.dengue import imagery as I
from terralab.dengue import synthetic as S
from terralab.errors import CredentialsError, DataNotAvailableError, FileFormatError, MissingDependencyError


# --------------------------------------------------------------------------------------------------
# a fake `ee` that records the query it is given
# --------------------------------------------------------------------------------------------------
class _Node:
    def __init__(self, log, op, *args):
        self.log, self.op, self.args = log, op, args
        log.append((op,) + args)

    def filterBounds(self, geom):
        return _Node(self.log, "filterBounds", geom)

    def filterDate(self, start, end):
        return _Node(self.log, "filterDate", start, end)

    def filter(self, f):
        return _Node(self.log, "filter", f)

    def sort(self, prop, ascending=True):
        return _Node(self.log, "sort", prop, ascending)

    def mosaic(self):
        return _Node(self.log, "mosaic")

    def select(self, names, new_names=None):
        return _Node(self.log, "select", tuple(names), tuple(new_names or ()))

    def size(self):
        return ("size",)

    def aggregate_min(self, prop):
        return ("aggregate_min", prop)


def _fake_ee(log, images_per_week):
    ee = types.ModuleType("ee")
    ee.ImageCollection = lambda name: _Node(log, "ImageCollection", name)
    ee.Geometry = types.SimpleNamespace(Rectangle=lambda coords: ("Rectangle", tuple(coords)))
    ee.Filter = types.SimpleNamespace(lt=lambda prop, v: ("lt", prop, v))

    class Dictionary:
        def __init__(self, d):
            self.d = d

        def getInfo(self):
            # the week of the most recent filterDate decides how many images there are
            start = [e for e in log if e[0] == "filterDate"][-1][1]
            n = images_per_week.get(start, 1)
            return {"n": n, "cloud": 12.5 if n else None}

    ee.Dictionary = Dictionary
    return ee


@pytest.fixture
def fake_earthengine(monkeypatch):
    log, calls = [], []
    images_per_week = {"2018-09-16": 0}  # the week 2018w38 has no image

    def initialize(project=None):
        return _fake_ee(log, images_per_week)

    def compute_pixels(image, region, *, scale_m, crs="EPSG:4326", bands=None):
        calls.append({"image": image, "region": region, "scale_m": scale_m, "crs": crs, "bands": bands})
        data = np.full((len(bands), 4, 5), len(calls), dtype=np.float32)
        return xr.DataArray(
            data, dims=("band", "y", "x"), coords={"band": bands, "y": np.arange(4.0), "x": np.arange(5.0)}
        )

    fake = types.ModuleType("terralab.earthengine")
    fake.initialize, fake.compute_pixels = initialize, compute_pixels
    monkeypatch.setitem(sys.modules, "terralab.earthengine", fake)
    return log, calls


def test_ee_request_is_the_least_cloudy_weekly_mosaic_of_a_7_5_km_square(fake_earthengine):
    log, calls = fake_earthengine
    cube = I.s2_weekly_mosaics_ee(5001, ["2018w37", "2018w38", "2018w39"], progress=False)
    assert cube.dims == ("week", "band", "y", "x") and list(cube["band"].values) == list(I.S2_BANDS)
    assert list(cube["week"].values) == list(pd.to_datetime(["2018-09-15", "2018-09-22", "2018-09-29"]))
    assert ("ImageCollection", "COPERNICUS/S2_SR_HARMONIZED") in log
    # Sunday..Saturday, end exclusive
    assert ("filterDate", "2018-09-09", "2018-09-16") in log
    # most cloudy first, so mosaic() leaves the least cloudy on top
    assert ("sort", "CLOUDY_PIXEL_PERCENTAGE", False) in log
    sel = next(e for e in log if e[0] == "select")
    assert sel[1][:2] == ("B1", "B2") and "B8A" in sel[1] and sel[2] == tuple(I.S2_BANDS)
    # two requests of 6 bands per week (size limit); the empty week is NaN and costs no pixel request
    assert len(calls) == 4 and [len(c["bands"]) for c in calls] == [6, 6, 6, 6]
    assert np.isnan(cube.sel(week="2018-09-22")).all()
    assert float(cube["cloud_pct"][0]) == 12.5
    lon0, lat0, lon1, lat1 = calls[0]["region"]
    width_km = (lon1 - lon0) * 111.32 * math.cos(math.radians((lat0 + lat1) / 2))
    assert width_km == pytest.approx(7.5, rel=0.01) and (lat1 - lat0) * 110.574 == pytest.approx(
        7.5, rel=0.01
    )
    assert calls[0]["scale_m"] == 10.0


def test_ee_without_credentials_raises_credentials_error(monkeypatch):
    fake = types.ModuleType("terralab.earthengine")

    def initialize(project=None):
        raise CredentialsError("no Earth Engine credentials")

    fake.initialize = initialize
    monkeypatch.setitem(sys.modules, "terralab.earthengine", fake)
    with pytest.raises(CredentialsError):
        I.s2_weekly_mosaics_ee(5001, ["2018w37"], progress=False)


# --------------------------------------------------------------------------------------------------
# a fake pystac-client and odc-stac
# --------------------------------------------------------------------------------------------------
@pytest.fixture
def fake_stac(monkeypatch):
    """A fake STAC API; ``searches`` records each search, ``failures["search"]`` / ``failures["open"]``
    make the next that many calls raise a ConnectionError (a dropped connection), ``waits`` records the
    backoff sleeps."""
    searches = []
    failures = {"search": 0, "open": 0}
    waits = []
    monkeypatch.setattr(I, "_sleep", waits.append)

    class Item:
        def __init__(self, day, cloud):
            self.datetime = pd.Timestamp(day).to_pydatetime()
            self.properties = {"eo:cloud_cover": cloud}

    class Search:
        def __init__(self, kw):
            self.kw = kw

        def items(self):
            return [Item("2018-09-10", 80.0), Item("2018-09-13", 5.0)]

    class Client:
        @staticmethod
        def open(url):
            if failures["open"] > 0:
                failures["open"] -= 1
                raise ConnectionError("connection reset by peer")
            c = Client()
            c.url = url
            return c

        def search(self, **kw):
            searches.append(kw)
            if failures["search"] > 0:
                failures["search"] -= 1
                raise ConnectionError("connection reset by peer")
            return Search(kw)

    def load(items, bands, bbox, resolution, groupby):
        times = pd.to_datetime(["2018-09-10", "2018-09-13"])
        cloudy = np.full((2, 3), 900.0)
        clear = np.full((2, 3), 100.0)
        clear[0, 0] = 0.0  # nodata in the least cloudy day: filled from the cloudy one
        data = {b: (("time", "y", "x"), np.stack([cloudy, clear])) for b in bands}
        return xr.Dataset(data, coords={"time": times, "y": [1.0, 0.0], "x": [0.0, 1.0, 2.0]})

    pystac_client = types.ModuleType("pystac_client")
    pystac_client.Client = Client
    odc = types.ModuleType("odc")
    odc_stac = types.ModuleType("odc.stac")
    odc_stac.load = load
    odc.stac = odc_stac
    monkeypatch.setitem(sys.modules, "pystac_client", pystac_client)
    monkeypatch.setitem(sys.modules, "odc", odc)
    monkeypatch.setitem(sys.modules, "odc.stac", odc_stac)
    return types.SimpleNamespace(searches=searches, failures=failures, waits=waits)


def test_stac_mosaic_puts_the_least_cloudy_day_first_and_fills_its_gaps(fake_stac):
    cube = I.s2_weekly_mosaics_stac(76001, ["2018w37"], max_cloud_pct=90, progress=False)
    assert cube.dims == ("week", "band", "y", "x") and cube.sizes["band"] == 12
    assert float(cube[0, 0, 0, 1]) == 100.0  # from the 5 % cloud day
    assert float(cube[0, 0, 0, 0]) == 900.0  # its nodata pixel filled from the cloudy day
    kw = fake_stac.searches[0]
    assert kw["collections"] == ["sentinel-2-l2a"] and kw["datetime"] == "2018-09-09/2018-09-15"
    assert kw["query"] == {"eo:cloud_cover": {"lt": 90.0}}
    assert float(cube["cloud_pct"][0]) == 5.0


def test_stac_search_is_retried_with_backoff_after_dropped_connections(fake_stac):
    fake_stac.failures.update(open=1, search=2)
    cube = I.s2_weekly_mosaics_stac(76001, ["2018w37"], progress=False)
    assert float(cube[0, 0, 0, 1]) == 100.0  # the third search came through
    assert len(fake_stac.searches) == 3
    assert fake_stac.waits == [1.0, 1.0, 2.0]  # open: one wait; search: waits doubling


def test_stac_search_that_keeps_failing_raises_a_clear_error(fake_stac):
    fake_stac.failures["search"] = 100
    with pytest.raises(DataNotAvailableError, match=r"failed 4 times.*ConnectionError.*image_source"):
        I.s2_weekly_mosaics_stac(76001, ["2018w37"], progress=False)
    assert len(fake_stac.searches) == I.STAC_ATTEMPTS
    assert fake_stac.waits == [1.0, 2.0, 4.0]


def test_stac_path_without_its_packages_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pystac_client", None)
    with pytest.raises(MissingDependencyError, match=r"\.\[cloud\]"):
        I.s2_weekly_mosaics_stac(5001, ["2018w37"], progress=False)


# --------------------------------------------------------------------------------------------------
# DengueNet cloud / shadow tiles
# --------------------------------------------------------------------------------------------------
def test_tile_rule_finds_the_synthetic_cloud_and_shadow_tiles():
    ds = S.synthetic_s2_cube(40, size_px=48, n_tiles=4, cloud_prob=0.15, shadow_prob=0.05, seed=4)
    flags = I.cloud_shadow_tiles(ds["cube"], n_tiles=4)
    truth, found = ds["tile_class"].to_numpy(), flags.to_numpy()
    assert (truth == I.CLOUD).sum() > 10 and (truth == I.SHADOW).sum() > 3
    assert (found == truth).mean() >= 0.98
    clean = I.replace_cloud_tiles(ds["cube"], flags)
    err_before = float(np.abs(ds["cube"] - ds["clear"]).mean())
    err_after = float(np.abs(clean - ds["clear"]).mean())
    assert err_after < 0.1 * err_before


def test_thresholds_come_from_the_training_weeks_only():
    ds = S.synthetic_s2_cube(30, size_px=32, n_tiles=4, seed=1)
    train_end = ds["week"].values[19]
    a = I.cloud_shadow_tiles(ds["cube"], train_end, n_tiles=4)
    brighter = ds["cube"].copy()
    brighter[20:] = brighter[20:] * 3
    b = I.cloud_shadow_tiles(brighter, train_end, n_tiles=4)
    assert a.attrs["cloud_threshold"] == b.attrs["cloud_threshold"]
    assert (
        b[20:] == I.CLOUD
    ).mean() > 0.9  # later, tripled weeks look like cloud against training thresholds


def test_hazy_reference_scene_is_replaced_and_clear_scenes_are_kept(shared_data):
    scenes = I.read_reference_scenes(
        shared_data / "dengue/sentinel2_samples/slovenia_eolearn/REFERENCE_SCENES.npy"
    )
    assert scenes.dims == ("time", "band", "y", "x") and scenes.sizes["band"] == 13
    flags = I.cloud_shadow_tiles(scenes, n_tiles=4)
    assert (flags[0] == I.CLOUD).all()  # scene 0: bright haze over everything
    assert (flags[2:4] == I.CLEAR).all()  # scenes 2 and 3: clear
    clean = I.replace_cloud_tiles(scenes, flags)
    vis = ["B02", "B03", "B04"]
    clear_level = float(scenes.sel(band=vis)[2:].mean())
    assert float(scenes.sel(band=vis)[0].mean()) > 3 * clear_level
    assert float(clean.sel(band=vis)[0].mean()) == pytest.approx(clear_level, rel=0.5)


def test_read_eopatch_gives_named_dims_utm_coordinates_and_dates(shared_data):
    ds = I.read_eopatch(shared_data / "dengue/sentinel2_samples/slovenia_eolearn/TestEOPatch")
    assert ds["NDVI"].dims == ("time", "y", "x") and ds.sizes == {"time": 68, "y": 101, "x": 100}
    assert ds["DEM"].dims == ("y", "x") and ds.attrs["crs"] == "EPSG:32633"
    assert np.diff(ds["x"]).mean() == pytest.approx(10.0, abs=0.01) and np.diff(ds["y"]).mean() < 0
    assert ds["time"].values[0] == np.datetime64("2015-07-11T10:00:08")


def test_catalog_opens_the_eopatch_through_the_dengue_reader(shared_data):
    from terralab import catalog

    ds = catalog.open("dengue_s2_slovenia_eopatch")
    assert isinstance(ds, xr.Dataset) and "CLM" in ds


def test_cloud_mask_tiles_of_the_eopatch_are_replaced_by_clear_averages(shared_data):
    ds = I.read_eopatch(shared_data / "dengue/sentinel2_samples/slovenia_eolearn/TestEOPatch")
    flags = I.cloud_shadow_tiles(ds["NDVI"], mask=ds["CLM"], n_tiles=4)
    overcast = ds["CLM"].mean(dim=("y", "x")).to_numpy() == 1.0
    assert overcast.sum() >= 10 and (flags[overcast] == I.CLOUD).all()
    clean = I.replace_cloud_tiles(ds["NDVI"], flags)
    before = ds["NDVI"][overcast].mean(dim=("y", "x")).to_numpy()
    after = clean[overcast].mean(dim=("y", "x")).to_numpy()
    assert np.median(before) < 0.1 and after.min() > 0.4


def test_read_eopatch_refuses_missing_and_malformed_patches(tmp_path):
    with pytest.raises(DataNotAvailableError):
        I.read_eopatch(tmp_path / "nope")
    (tmp_path / "p" / "data").mkdir(parents=True)
    np.save(tmp_path / "p" / "data" / "NDVI.npy", np.zeros((3, 4)))
    with pytest.raises(FileFormatError):
        I.read_eopatch(tmp_path / "p")


def test_unknown_city_centre_asks_for_coordinates():
    from terralab.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="lon"):
        I.city_bbox(99999)
    assert I.city_bbox(lon=-75.0, lat=4.0, size_km=1.0)[0] < -75.0


def test_ee_cube_through_the_real_earthengine_helper_splits_bands_under_the_request_limit(monkeypatch):
    """terralab.earthengine.compute_pixels on a fake `ee`: a 7.5 km, 10 m, 12-band week needs two requests."""
    import importlib

    earthengine = importlib.import_module("terralab.earthengine")
    log, requests = [], []
    ee = _fake_ee(log, {})
    ee.Initialize = lambda **kw: None

    def compute(request):
        requests.append(request)
        dims = request["grid"]["dimensions"]
        dtype = [(b, "<f8") for b in request["bandIds"]]
        out = np.zeros((dims["height"], dims["width"]), dtype=dtype)
        for k, b in enumerate(request["bandIds"]):
            out[b] = I.S2_BANDS.index(b)
        return out

    ee.data = types.SimpleNamespace(computePixels=compute)
    for var in ("EE_SERVICE_ACCOUNT", "EE_PRIVATE_KEY_FILE", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setitem(sys.modules, "ee", ee)
    monkeypatch.setattr(earthengine, "_STATE", {"initialised": False, "project": None})
    cube = I.s2_weekly_mosaics_ee(50001, ["2018w37"], progress=False)
    assert len(requests) == 2 and all(len(r["bandIds"]) * 8 * 760 * 760 < 48 * 2**20 for r in requests)
    assert list(cube["band"].values) == list(I.S2_BANDS)
    np.testing.assert_array_equal(cube[0, :, 0, 0].to_numpy(), np.arange(12))
    assert 740 <= cube.sizes["x"] <= 770 and 740 <= cube.sizes["y"] <= 770
