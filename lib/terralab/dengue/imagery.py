"""Weekly Sentinel-2 cubes per municipality, DengueNet's cloud/shadow tile replacement, and sample readers.

Cubes are ``xarray.DataArray`` with dims ``(week, band, y, x)``: ``week`` holds MMWR week-ending Saturdays,
``band`` the Sentinel-2 band names (``B01`` … ``B12``), values in the units of ``attrs["units"]``. Several
locations stack into ``(location, week, band, y, x)``.

Two request paths build the weekly least-cloudy mosaics of a ~7.5 km square around a city centre:

* Earth Engine (:func:`s2_weekly_mosaics_ee`): ``COPERNICUS/S2_SR_HARMONIZED`` (or ``S2_HARMONIZED``) filtered to
  the square and the Sunday–Saturday week, images sorted by ``CLOUDY_PIXEL_PERCENTAGE`` and mosaicked with the
  least cloudy on top, 12 bands, pixels fetched by :func:`terralab.earthengine.compute_pixels`.
* STAC (:func:`s2_weekly_mosaics_stac`): the same through a STAC API (Earth Search by default) with pystac-client
  and odc-stac (``pip install -e '.[cloud]'``), for users without Earth Engine.

Cloud and shadow handling follows DengueNet (Kuo et al. 2024): the image is cut into a grid of
``n_tiles`` × ``n_tiles`` tiles; a tile is cloud when at least half of its pixels are brighter than the 70th
percentile of the training weeks, shadow when at least half are darker than the 10th percentile; such a tile is
replaced by the average of that tile over the clear training weeks (:func:`cloud_shadow_tiles`,
:func:`replace_cloud_tiles`). Brightness is the mean of B02–B04. The paper's "16 × 16 tiles" is read here as a
16 × 16 grid (``n_tiles=16``); pass another ``n_tiles`` for other tilings.
"""

from __future__ import annotations

import importlib
import itertools
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import DataNotAvailableError, FileFormatError, InvalidInputError, MissingDependencyError
from . import weeks as _weeks

#: The 12 bands of Sentinel-2 L2A (B10, cirrus, exists only in L1C), in DengueNet's order.
S2_BANDS: tuple[str, ...] = (
    "B01",
    "B02",
    "B03",
    "B04",
    "B05",
    "B06",
    "B07",
    "B08",
    "B8A",
    "B09",
    "B11",
    "B12",
)
#: The 13 bands of Sentinel-2 L1C (eo-learn's REFERENCE_SCENES order).
S2_BANDS_L1C: tuple[str, ...] = S2_BANDS[:10] + ("B10",) + S2_BANDS[10:]
#: Earth Engine band names of :data:`S2_BANDS`.
EE_BAND_NAMES: dict[str, str] = {b: ("B8A" if b == "B8A" else "B" + str(int(b[1:]))) for b in S2_BANDS}
#: Earth Search (STAC) asset names of :data:`S2_BANDS`.
EARTH_SEARCH_ASSETS: dict[str, str] = dict(
    zip(
        S2_BANDS,
        (
            "coastal",
            "blue",
            "green",
            "red",
            "rededge1",
            "rededge2",
            "rededge3",
            "nir",
            "nir08",
            "nir09",
            "swir16",
            "swir22",
        ),
    )
)
EARTH_SEARCH_URL = "https://earth-search.aws.element84.com/v1"
EE_COLLECTIONS = ("COPERNICUS/S2_SR_HARMONIZED", "COPERNICUS/S2_HARMONIZED")

#: Approximate city-centre (lon, lat) in degrees of the ten municipalities with covariates (DANE code).
CITY_CENTRES: dict[int, tuple[float, float]] = {
    5001: (-75.5636, 6.2518),  # Medellín
    76001: (-76.5320, 3.4516),  # Cali
    73001: (-75.2322, 4.4389),  # Ibagué
    50001: (-73.6266, 4.1420),  # Villavicencio
    54001: (-72.5078, 7.8939),  # Cúcuta
    5360: (-75.6114, 6.1719),  # Itagüí
    8001: (-74.7813, 10.9685),  # Barranquilla
    23001: (-75.8814, 8.7479),  # Montería
    41001: (-75.2819, 2.9273),  # Neiva
    68001: (-73.1227, 7.1193),  # Bucaramanga
}

REFLECTANCE_SCALE = 1e4


# --------------------------------------------------------------------------------------------------
# geometry
# --------------------------------------------------------------------------------------------------
def city_bbox(
    location: int | None = None, *, lon: float | None = None, lat: float | None = None, size_km: float = 7.5
) -> tuple[float, float, float, float]:
    """(lon_min, lat_min, lon_max, lat_max) of a ``size_km`` square centred on a city (degrees, WGS 84).

    Parameters
    ----------
    location : int, optional
        DANE code in :data:`CITY_CENTRES`; or give ``lon`` and ``lat`` (degrees) of any centre.
    size_km : float
        Side of the square; DengueNet used about 7.5 km.
    """
    if location is not None:
        if location not in CITY_CENTRES:
            raise InvalidInputError(
                f"no centre known for location {location!r}; known: {sorted(CITY_CENTRES)}. Pass lon= and lat= instead"
            )
        lon, lat = CITY_CENTRES[location]
    if lon is None or lat is None:
        raise InvalidInputError("give a location code or both lon= and lat= (degrees)")
    if not (-180 <= lon <= 180 and -90 < lat < 90):
        raise InvalidInputError(f"lon {lon}, lat {lat} are not WGS 84 degrees")
    if not size_km > 0:
        raise InvalidInputError(f"size_km must be > 0, got {size_km}")
    half_lat = size_km / 2 / 110.574
    half_lon = size_km / 2 / (111.320 * math.cos(math.radians(lat)))
    return (lon - half_lon, lat - half_lat, lon + half_lon, lat + half_lat)


def _week_span(week) -> tuple[pd.Timestamp, pd.Timestamp]:
    end = _weeks.week_end(week)
    return end - pd.Timedelta(days=6), end


def _weeks_of(weeks) -> pd.DatetimeIndex:
    if isinstance(weeks, tuple) and len(weeks) == 2 and all(isinstance(w, str) for w in weeks):
        return _weeks.week_index(*weeks)
    if isinstance(weeks, (str, pd.Timestamp)):
        weeks = [weeks]
    out = pd.DatetimeIndex([_weeks.week_end(w) for w in weeks], name="week")
    if out.empty:
        raise InvalidInputError("no weeks requested")
    return out


# --------------------------------------------------------------------------------------------------
# Earth Engine
# --------------------------------------------------------------------------------------------------
def s2_week_collection(
    ee,
    bbox: Sequence[float],
    week,
    *,
    collection: str = EE_COLLECTIONS[0],
    max_cloud_pct: float | None = None,
):
    """The ``ee.ImageCollection`` of Sentinel-2 images over ``bbox`` in the MMWR week ``week`` (request builder).

    Sorted by ``CLOUDY_PIXEL_PERCENTAGE`` from most to least cloudy, so that ``mosaic()`` puts the least cloudy on
    top. Nothing is computed until the caller asks.
    """
    if collection not in EE_COLLECTIONS:
        raise InvalidInputError(f"collection must be one of {EE_COLLECTIONS}, got {collection!r}")
    start, end = _week_span(week)
    col = (
        ee.ImageCollection(collection)
        .filterBounds(ee.Geometry.Rectangle(list(bbox)))
        .filterDate(start.strftime("%Y-%m-%d"), (end + pd.Timedelta(days=1)).strftime("%Y-%m-%d"))
    )
    if max_cloud_pct is not None:
        col = col.filter(ee.Filter.lt("CLOUDY_PIXEL_PERCENTAGE", float(max_cloud_pct)))
    return col.sort("CLOUDY_PIXEL_PERCENTAGE", False)


def s2_week_image(
    ee,
    bbox: Sequence[float],
    week,
    *,
    collection: str = EE_COLLECTIONS[0],
    max_cloud_pct: float | None = None,
    bands: Sequence[str] = S2_BANDS,
):
    """Least-cloudy-on-top weekly mosaic as an ``ee.Image`` with the 12 bands (request builder)."""
    col = s2_week_collection(ee, bbox, week, collection=collection, max_cloud_pct=max_cloud_pct)
    return col.mosaic().select([EE_BAND_NAMES[b] for b in bands], list(bands))


def _nan_slice(bands: Sequence[str], shape: tuple[int, int]) -> np.ndarray:
    return np.full((len(bands),) + shape, np.nan, dtype=np.float32)


def _stack_weeks(
    slices: list, weeks: pd.DatetimeIndex, bands, template: xr.DataArray | None, attrs: dict, cloud_pct: list
) -> xr.DataArray:
    if template is None:
        raise DataNotAvailableError(
            "no Sentinel-2 image was found in any requested week; widen the weeks or relax max_cloud_pct"
        )
    ny, nx = template.sizes["y"], template.sizes["x"]
    data = np.stack([s if s is not None else _nan_slice(bands, (ny, nx)) for s in slices]).astype(np.float32)
    cube = xr.DataArray(
        data,
        dims=("week", "band", "y", "x"),
        coords={
            "week": weeks,
            "band": list(bands),
            "y": template["y"].to_numpy(),
            "x": template["x"].to_numpy(),
            "cloud_pct": ("week", np.asarray(cloud_pct, dtype=float)),
        },
        attrs=attrs,
    )
    cube["cloud_pct"].attrs["units"] = "%"
    return cube


_PIXELS_REQUEST_BYTES = 40 * 2**20  # below computePixels' 48 MiB per request, counting 8 bytes a value


def _band_groups(bands: list[str], size_km: float, scale_m: float) -> list[list[str]]:
    """Split the bands so that each computePixels request stays under its size limit (12 bands of a 7.5 km
    square at 10 m would need ~52 MiB in one request)."""
    side_px = size_km * 1000.0 / scale_m * 1.02 + 2
    per_band = side_px * side_px * 8
    per_request = max(1, int(_PIXELS_REQUEST_BYTES // per_band))
    n_groups = math.ceil(len(bands) / per_request)
    return [list(g) for g in np.array_split(np.asarray(bands, dtype=object), n_groups)]


def s2_weekly_mosaics_ee(
    location: int | None = None,
    weeks=("2016w01", "2018w52"),
    *,
    lon: float | None = None,
    lat: float | None = None,
    size_km: float = 7.5,
    scale_m: float = 10.0,
    collection: str = EE_COLLECTIONS[0],
    max_cloud_pct: float | None = None,
    bands: Sequence[str] = S2_BANDS,
    project: str | None = None,
    progress: bool = True,
) -> xr.DataArray:
    """Weekly least-cloudy Sentinel-2 mosaics of one city from Earth Engine, as ``(week, band, y, x)``.

    Parameters
    ----------
    location : int, optional
        DANE code with a known centre (:data:`CITY_CENTRES`), or give ``lon``/``lat`` in degrees.
    weeks : (first, last) labels or a list of weeks
        e.g. ``("2016w01", "2018w52")``, DengueNet's 156 weeks.
    size_km, scale_m : float
        Side of the square (km) and pixel size (m).
    collection : str
        ``COPERNICUS/S2_SR_HARMONIZED`` (L2A surface reflectance) or ``COPERNICUS/S2_HARMONIZED`` (L1C).
    max_cloud_pct : float, optional
        Drop images whose ``CLOUDY_PIXEL_PERCENTAGE`` exceeds this.
    project : str, optional
        Earth Engine cloud project for :func:`terralab.earthengine.initialize`.

    Returns
    -------
    DataArray (week, band, y, x) of reflectance × 10⁴; weeks without any image are NaN, and coordinate
    ``cloud_pct`` holds the least cloudy image's ``CLOUDY_PIXEL_PERCENTAGE`` per week. The bands of a week are
    fetched in as few ``computePixels`` requests as its size limit allows (two for 12 bands at 7.5 km / 10 m).

    Raises
    ------
    CredentialsError
        No Earth Engine credentials are configured (raised by :mod:`terralab.earthengine`).
    """
    from tqdm import tqdm

    earthengine = importlib.import_module("terralab.earthengine")
    bbox = city_bbox(location, lon=lon, lat=lat, size_km=size_km)
    wk = _weeks_of(weeks)
    ee = earthengine.initialize(project=project)
    band_groups = _band_groups(list(bands), size_km, scale_m)
    slices, cloud, template = [], [], None
    for week in tqdm(wk, desc="S2 weeks (Earth Engine)", disable=not progress):
        col = s2_week_collection(ee, bbox, week, collection=collection, max_cloud_pct=max_cloud_pct)
        info = ee.Dictionary(
            {"n": col.size(), "cloud": col.aggregate_min("CLOUDY_PIXEL_PERCENTAGE")}
        ).getInfo()
        if not info or not info.get("n"):
            slices.append(None)
            cloud.append(np.nan)
            continue
        image = col.mosaic().select([EE_BAND_NAMES[b] for b in bands], list(bands))
        parts = [
            earthengine.compute_pixels(image, bbox, scale_m=scale_m, crs="EPSG:4326", bands=chunk)
            for chunk in band_groups
        ]
        if any(tuple(p.dims) != ("band", "y", "x") for p in parts):
            raise FileFormatError(f"compute_pixels returned dims {parts[0].dims}, expected (band, y, x)")
        da = xr.concat(parts, dim="band") if len(parts) > 1 else parts[0]
        if template is not None and (da.sizes["y"], da.sizes["x"]) != (
            template.sizes["y"],
            template.sizes["x"],
        ):
            raise FileFormatError("weekly mosaics came back on different grids; fix scale_m and crs")
        template = da if template is None else template
        slices.append(da.sel(band=list(bands)).to_numpy().astype(np.float32))
        cloud.append(float(info.get("cloud", np.nan)))
    attrs = {
        "units": "reflectance x 1e4",
        "source": f"Earth Engine {collection}",
        "location": location,
        "bbox_lonlat": list(bbox),
        "size_km": size_km,
        "scale_m": scale_m,
        "crs": "EPSG:4326",
        "mosaic": "least CLOUDY_PIXEL_PERCENTAGE on top",
    }
    return _stack_weeks(slices, wk, bands, template, attrs, cloud)


# --------------------------------------------------------------------------------------------------
# STAC
# --------------------------------------------------------------------------------------------------
def _require(module: str, extra: str = "cloud"):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{module} is needed for the STAC path; install it with `pip install -e '.[{extra}]'` "
            f"(pystac-client and odc-stac)"
        ) from exc


#: Attempts of each STAC request and the wait before the first retry (doubled after each failure).
STAC_ATTEMPTS = 4
STAC_FIRST_WAIT_S = 1.0
_sleep = time.sleep  # tests replace it so that the backoff costs no time


def _stac_retryable(pystac_client) -> tuple[type[BaseException], ...]:
    """Errors worth another try: the network (OSError covers requests' and urllib3's) and the API's own errors."""
    errors: list[type[BaseException]] = [OSError, TimeoutError]
    api_error = getattr(getattr(pystac_client, "exceptions", None), "APIError", None)
    if isinstance(api_error, type) and issubclass(api_error, BaseException):
        errors.append(api_error)
    return tuple(errors)


def _with_retries(call, what: str, url: str, retryable: tuple[type[BaseException], ...]):
    """``call()``, retried with exponential backoff on ``retryable`` errors; then a clear DataNotAvailableError."""
    wait = STAC_FIRST_WAIT_S
    for attempt in range(1, STAC_ATTEMPTS + 1):
        try:
            return call()
        except retryable as exc:
            if attempt == STAC_ATTEMPTS:
                raise DataNotAvailableError(
                    f"STAC {what} at {url} failed {STAC_ATTEMPTS} times (waits {STAC_FIRST_WAIT_S:g} s doubling): "
                    f"{type(exc).__name__}: {exc}. Check the network and the API URL, or use image_source="
                    "'synthetic' / 'earthengine'"
                ) from exc
            _sleep(wait)
            wait *= 2


def s2_weekly_mosaics_stac(
    location: int | None = None,
    weeks=("2016w01", "2018w52"),
    *,
    lon: float | None = None,
    lat: float | None = None,
    size_km: float = 7.5,
    resolution_m: float = 10.0,
    url: str = EARTH_SEARCH_URL,
    collection: str = "sentinel-2-l2a",
    assets: dict[str, str] | None = None,
    max_cloud_pct: float | None = None,
    bands: Sequence[str] = S2_BANDS,
    progress: bool = True,
) -> xr.DataArray:
    """Weekly least-cloudy Sentinel-2 mosaics of one city through a STAC API, as ``(week, band, y, x)``.

    Items of each Sunday–Saturday week are searched with pystac-client (each request tried up to
    :data:`STAC_ATTEMPTS` times with exponential backoff, then a DataNotAvailableError), loaded with
    ``odc.stac.load`` on the items' UTM grid at ``resolution_m``, and mosaicked pixel by pixel: the least cloudy day
    (``eo:cloud_cover``)
    first, gaps (nodata 0) filled from the next. ``assets`` maps band names to the API's asset keys (default:
    Earth Search's ``blue``, ``green``, …; Planetary Computer uses the band names themselves).

    Returns
    -------
    DataArray (week, band, y, x) of reflectance × 10⁴ (as stored by the provider); NaN where no image exists.
    """
    from tqdm import tqdm

    pystac_client = _require("pystac_client")
    odc_stac = _require("odc.stac")
    assets = dict(assets or EARTH_SEARCH_ASSETS)
    missing = [b for b in bands if b not in assets]
    if missing:
        raise InvalidInputError(f"no asset name for bands {missing}; pass assets={{band: asset}}")
    bbox = city_bbox(location, lon=lon, lat=lat, size_km=size_km)
    wk = _weeks_of(weeks)
    retryable = _stac_retryable(pystac_client)
    client = _with_retries(lambda: pystac_client.Client.open(url), "connection", url, retryable)
    slices, cloud, template = [], [], None
    for week in tqdm(wk, desc="S2 weeks (STAC)", disable=not progress):
        start, end = _week_span(week)
        query = {"eo:cloud_cover": {"lt": float(max_cloud_pct)}} if max_cloud_pct is not None else None
        window = f"{start:%Y-%m-%d}/{end:%Y-%m-%d}"
        items = _with_retries(
            lambda window=window, query=query: list(
                client.search(collections=[collection], bbox=list(bbox), datetime=window, query=query).items()
            ),
            f"search of week {_weeks.week_label(week)}",
            url,
            retryable,
        )
        if not items:
            slices.append(None)
            cloud.append(np.nan)
            continue
        ds = odc_stac.load(
            items,
            bands=[assets[b] for b in bands],
            bbox=list(bbox),
            resolution=resolution_m,
            groupby="solar_day",
        )
        # cloud cover of each loaded day = that of its least cloudy item
        day_cloud = {}
        for it in items:
            day = pd.Timestamp(it.datetime).tz_localize(None).normalize() if it.datetime is not None else None
            cc = float(it.properties.get("eo:cloud_cover", 100.0))
            day_cloud[day] = min(cc, day_cloud.get(day, np.inf))
        days = pd.DatetimeIndex(ds["time"].to_numpy()).normalize()
        order = np.argsort([day_cloud.get(d, 100.0) for d in days], kind="stable")
        stack = np.stack([ds[assets[b]].to_numpy() for b in bands], axis=1).astype(
            np.float32
        )  # time, band, y, x
        stack[stack == 0] = np.nan
        mosaic = np.full(stack.shape[1:], np.nan, dtype=np.float32)
        for t in order:
            gap = np.isnan(mosaic)
            mosaic[gap] = stack[t][gap]
        grid = xr.DataArray(
            mosaic,
            dims=("band", "y", "x"),
            coords={"band": list(bands), "y": ds["y"].to_numpy(), "x": ds["x"].to_numpy()},
        )
        if template is not None and grid.shape != template.shape:
            raise FileFormatError("weekly STAC loads came back on different grids (items in two UTM zones?)")
        template = grid if template is None else template
        slices.append(mosaic)
        cloud.append(min(day_cloud.values()))
    crs = None
    try:
        crs = str(ds.odc.crs)  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - the odc accessor is optional metadata
        crs = None
    attrs = {
        "units": "reflectance x 1e4",
        "source": f"STAC {url} {collection}",
        "location": location,
        "bbox_lonlat": list(bbox),
        "size_km": size_km,
        "resolution_m": resolution_m,
        "crs": crs,
        "mosaic": "least eo:cloud_cover first, gaps filled from the next",
    }
    return _stack_weeks(slices, wk, bands, template, attrs, cloud)


# --------------------------------------------------------------------------------------------------
# sample readers
# --------------------------------------------------------------------------------------------------
def read_reference_scenes(path: str | Path | None = None) -> xr.DataArray:
    """eo-learn's five real Sentinel-2 L1C scenes as ``(time, band, y, x)`` reflectance with the 13 L1C bands.

    Parameters
    ----------
    path : path of ``REFERENCE_SCENES.npy``; default: catalog ``dengue_s2_slovenia_reference_scenes``.
    """
    if path is None:
        from .. import catalog

        path = catalog.fetch("dengue_s2_slovenia_reference_scenes", progress=False)
    arr = np.load(Path(path))
    if arr.ndim != 4 or arr.shape[-1] != 13:
        raise FileFormatError(f"{path}: expected (time, y, x, 13) reflectance, got shape {arr.shape}")
    da = xr.DataArray(
        np.moveaxis(arr, -1, 1).astype(np.float32),
        dims=("time", "band", "y", "x"),
        coords={"time": np.arange(arr.shape[0]), "band": list(S2_BANDS_L1C)},
        attrs={"units": "reflectance", "source": "eo-learn REFERENCE_SCENES (Sentinel-2 L1C)"},
    )
    return da


def _eopatch_array(path: Path) -> np.ndarray:
    if path.suffix == ".gz":
        import gzip

        with gzip.open(path, "rb") as fh:
            return np.load(fh)
    return np.load(path)


def read_eopatch(path: str | Path) -> xr.Dataset:
    """Read an eo-learn EOPatch directory (numpy features) into an ``xarray.Dataset``.

    Temporal features (``data/``, ``mask/``; arrays (time, y, x, channels)) become variables on (time, y, x),
    timeless ones (``data_timeless/``, ``mask_timeless/``) on (y, x); several channels add a ``<name>_channel``
    dim. Coordinates x, y are pixel centres in the CRS of ``bbox.geojson`` (``attrs["crs"]``), time from
    ``timestamps.json``. This is the catalog reader of format ``eopatch``.

    Examples
    --------
    >>> ds = read_eopatch("shared/data/dengue/sentinel2_samples/slovenia_eolearn/TestEOPatch")  # doctest: +SKIP
    >>> ds["NDVI"].dims                                                                      # doctest: +SKIP
    ('time', 'y', 'x')
    """
    root = Path(path)
    if not root.is_dir():
        raise DataNotAvailableError(f"EOPatch directory {root} does not exist")
    ts_file = root / "timestamps.json"
    times = None
    if ts_file.is_file():
        try:
            times = pd.DatetimeIndex(pd.to_datetime(json.loads(ts_file.read_text())))
        except (ValueError, json.JSONDecodeError) as exc:
            raise FileFormatError(f"{ts_file}: cannot read timestamps: {exc}") from exc
    variables: dict[str, xr.DataArray] = {}
    shape_yx = None
    for group, temporal in (
        ("data", True),
        ("mask", True),
        ("data_timeless", False),
        ("mask_timeless", False),
    ):
        gdir = root / group
        if not gdir.is_dir():
            continue
        for f in sorted(gdir.iterdir()):
            if not (f.name.endswith(".npy") or f.name.endswith(".npy.gz")):
                continue
            name = f.name.split(".npy")[0]
            arr = _eopatch_array(f)
            want = 4 if temporal else 3
            if arr.ndim != want:
                raise FileFormatError(
                    f"{f}: expected {want} dims ({'time, ' if temporal else ''}y, x, channels), "
                    f"got shape {arr.shape}"
                )
            if shape_yx is None:
                shape_yx = arr.shape[-3:-1]
            elif arr.shape[-3:-1] != shape_yx:
                raise FileFormatError(f"{f}: grid {arr.shape[-3:-1]} differs from {shape_yx}")
            dims = (("time",) if temporal else ()) + ("y", "x")
            if arr.shape[-1] == 1:
                data = arr[..., 0]
            else:
                axis = 1 if temporal else 0
                data = np.moveaxis(arr, -1, axis)
                dims = dims[:axis] + (f"{name}_channel",) + dims[axis:]
            if temporal and times is not None and data.shape[0] != len(times):
                raise FileFormatError(f"{f}: {data.shape[0]} dates but timestamps.json lists {len(times)}")
            variables[name] = xr.DataArray(data, dims=dims, attrs={"group": group})
    if not variables:
        raise FileFormatError(f"{root} holds no EOPatch features (data/, mask/, *_timeless/ .npy files)")
    coords: dict = {}
    attrs: dict = {"source": str(root)}
    bbox_file = root / "bbox.geojson"
    if bbox_file.is_file() and shape_yx is not None:
        try:
            gj = json.loads(bbox_file.read_text())
            ring = np.asarray(gj["coordinates"][0], dtype=float)
            crs_name = gj.get("crs", {}).get("properties", {}).get("name", "")
        except (KeyError, ValueError, json.JSONDecodeError) as exc:
            raise FileFormatError(f"{bbox_file}: not a polygon GeoJSON: {exc}") from exc
        xmin, ymin = ring.min(axis=0)
        xmax, ymax = ring.max(axis=0)
        ny, nx = shape_yx
        dx, dy = (xmax - xmin) / nx, (ymax - ymin) / ny
        coords["x"] = ("x", xmin + dx * (np.arange(nx) + 0.5), {"units": "m"})
        coords["y"] = ("y", ymax - dy * (np.arange(ny) + 0.5), {"units": "m"})
        epsg = crs_name.rsplit(":", 1)[-1] if crs_name else ""
        attrs.update(
            {
                "crs": f"EPSG:{epsg}" if epsg.isdigit() else crs_name,
                "bbox": [float(xmin), float(ymin), float(xmax), float(ymax)],
                "resolution_m": [float(dx), float(dy)],
            }
        )
    if times is not None:
        coords["time"] = times
    ds = xr.Dataset(variables, coords=coords, attrs=attrs)
    units = {"NDVI": "1", "CLP": "probability", "CLM": "1 = cloud", "DEM": "m", "LULC": "class"}
    for name, u in units.items():
        if name in ds:
            ds[name].attrs["units"] = u
    return ds


# --------------------------------------------------------------------------------------------------
# DengueNet cloud / shadow tiles
# --------------------------------------------------------------------------------------------------
CLEAR, CLOUD, SHADOW = 0, 1, 2


def _time_dim(cube: xr.DataArray) -> str:
    for d in ("week", "time"):
        if d in cube.dims:
            return d
    raise InvalidInputError(f"cube needs a 'week' (or 'time') dim, has {cube.dims}")


def _check_cube(cube: xr.DataArray) -> str:
    if not isinstance(cube, xr.DataArray):
        raise InvalidInputError(f"expected an xarray DataArray (week, band, y, x), got {type(cube).__name__}")
    t = _time_dim(cube)
    if set(cube.dims) != {t, "band", "y", "x"}:
        raise InvalidInputError(f"cube dims must be ({t}, band, y, x), got {cube.dims}")
    return t


def tile_edges(n_pixels: int, n_tiles: int) -> list[tuple[int, int]]:
    """(start, stop) pixel ranges of ``n_tiles`` nearly equal tiles along an axis of ``n_pixels``."""
    if not 1 <= n_tiles <= n_pixels:
        raise InvalidInputError(f"cannot cut {n_pixels} pixels into {n_tiles} tiles")
    cuts = np.linspace(0, n_pixels, n_tiles + 1).round().astype(int)
    return list(itertools.pairwise(cuts))


def _train_mask(cube: xr.DataArray, t: str, train) -> np.ndarray:
    n = cube.sizes[t]
    if train is None:
        return np.ones(n, bool)
    if isinstance(train, (str, pd.Timestamp, np.datetime64)) or hasattr(train, "year"):
        end = _weeks.week_end(train) if isinstance(train, str) else pd.Timestamp(train)
        m = pd.DatetimeIndex(cube[t].to_numpy()) <= end
    else:
        m = np.asarray(train, dtype=bool)
        if m.shape != (n,):
            raise InvalidInputError(f"train mask has shape {m.shape}, cube has {n} {t}s")
    if not m.any():
        raise InvalidInputError("no training weeks: the cube has no week at or before the training end")
    return m


def _brightness(cube: xr.DataArray, t: str, reference_bands: Sequence[str]) -> np.ndarray:
    missing = [b for b in reference_bands if b not in cube["band"].to_numpy().tolist()]
    if missing:
        raise InvalidInputError(
            f"cube lacks reference bands {missing}; it has {cube['band'].to_numpy().tolist()}"
        )
    return (
        cube.sel(band=list(reference_bands))
        .transpose(t, "band", "y", "x")
        .to_numpy()
        .astype(float)
        .mean(axis=1)
    )


def cloud_shadow_tiles(
    cube: xr.DataArray,
    train=None,
    *,
    n_tiles: int = 16,
    cloud_percentile: float = 70.0,
    shadow_percentile: float = 10.0,
    min_fraction: float = 0.5,
    reference_bands: Sequence[str] = ("B02", "B03", "B04"),
    mask: xr.DataArray | None = None,
) -> xr.DataArray:
    """Classify every tile of every week as clear (0), cloud (1) or shadow (2), DengueNet's rule.

    Parameters
    ----------
    cube : DataArray (week, band, y, x)
    train : last training week (label or date), boolean mask over weeks, or None (all weeks)
        The percentiles come from these weeks only.
    n_tiles : int
        Tiles per side (grid ``n_tiles`` × ``n_tiles``).
    cloud_percentile, shadow_percentile : float
        Brightness percentiles (of all training pixels) above / below which a pixel counts as cloud / shadow.
    min_fraction : float
        Fraction of a tile's pixels that must be cloud (or shadow) for the tile to be replaced.
    mask : DataArray (week, y, x) of bool, optional
        A given cloud mask (e.g. s2cloudless ``CLM``) used instead of the brightness rule: tiles with at least
        ``min_fraction`` masked pixels are cloud.

    Returns
    -------
    DataArray (week, tile_y, tile_x) of int8 classes; ``attrs`` hold the thresholds.
    """
    t = _check_cube(cube) if mask is None or "band" in cube.dims else _time_dim(cube)
    ny, nx = cube.sizes["y"], cube.sizes["x"]
    ey, ex = tile_edges(ny, n_tiles), tile_edges(nx, n_tiles)
    nt = cube.sizes[t]
    if not 0 < min_fraction <= 1:
        raise InvalidInputError(f"min_fraction must be in (0, 1], got {min_fraction}")
    attrs: dict = {"classes": "0 clear, 1 cloud, 2 shadow", "n_tiles": n_tiles, "min_fraction": min_fraction}
    if mask is not None:
        m = mask.transpose(_time_dim(mask), "y", "x").to_numpy().astype(bool)
        if m.shape != (nt, ny, nx):
            raise InvalidInputError(f"mask shape {m.shape} differs from the cube's ({nt}, {ny}, {nx})")
        hi_px, lo_px = m, np.zeros_like(m)
        attrs["rule"] = "given mask"
    else:
        train_m = _train_mask(cube, t, train)
        bright = _brightness(cube, t, reference_bands)
        ref = bright[train_m]
        ref = ref[np.isfinite(ref)]
        if ref.size == 0:
            raise InvalidInputError("training weeks hold no finite pixels")
        hi, lo = np.percentile(ref, cloud_percentile), np.percentile(ref, shadow_percentile)
        with np.errstate(invalid="ignore"):
            hi_px, lo_px = bright > hi, bright < lo
        attrs.update(
            {
                "rule": f"brightness > p{cloud_percentile:g} (cloud) / < p{shadow_percentile:g} (shadow)",
                "cloud_threshold": float(hi),
                "shadow_threshold": float(lo),
                "reference_bands": list(reference_bands),
            }
        )
    flags = np.zeros((nt, n_tiles, n_tiles), dtype=np.int8)
    for i, (y0, y1) in enumerate(ey):
        for j, (x0, x1) in enumerate(ex):
            cloud_frac = hi_px[:, y0:y1, x0:x1].mean(axis=(1, 2))
            shadow_frac = lo_px[:, y0:y1, x0:x1].mean(axis=(1, 2))
            flags[:, i, j] = np.where(
                cloud_frac >= min_fraction, CLOUD, np.where(shadow_frac >= min_fraction, SHADOW, CLEAR)
            )
    return xr.DataArray(
        flags,
        dims=(t, "tile_y", "tile_x"),
        coords={t: cube[t].to_numpy(), "tile_y": np.arange(n_tiles), "tile_x": np.arange(n_tiles)},
        attrs=attrs,
    )


def replace_cloud_tiles(cube: xr.DataArray, flags: xr.DataArray, train=None) -> xr.DataArray:
    """Replace every cloud or shadow tile by that tile's average over the clear training weeks.

    Where a tile is never clear in the training weeks, its average over all training weeks is used. NaN pixels
    (weeks without an image) are treated like clouds: the whole week is replaced.

    Parameters
    ----------
    cube : DataArray (week, band, y, x) or (week, y, x)
    flags : DataArray (week, tile_y, tile_x) from :func:`cloud_shadow_tiles`
    train : as in :func:`cloud_shadow_tiles`
    """
    t = _time_dim(cube)
    if "band" not in cube.dims:
        return replace_cloud_tiles(cube.expand_dims(band=["_"], axis=1), flags, train).isel(band=0, drop=True)
    _check_cube(cube)
    order = (t, "band", "y", "x")
    data = cube.transpose(*order).to_numpy().astype(np.float32).copy()
    f = flags.to_numpy()
    n_tiles = f.shape[1]
    if f.shape[0] != data.shape[0] or f.shape[1] != f.shape[2]:
        raise InvalidInputError(f"flags shape {f.shape} does not match the cube's {data.shape[0]} {t}s")
    train_m = _train_mask(cube, t, train)
    empty_week = ~np.isfinite(data).all(axis=(1, 2, 3))
    ey, ex = tile_edges(data.shape[2], n_tiles), tile_edges(data.shape[3], n_tiles)
    replaced = 0
    for i, (y0, y1) in enumerate(ey):
        for j, (x0, x1) in enumerate(ex):
            tile = data[:, :, y0:y1, x0:x1]
            finite = np.isfinite(tile).all(axis=(1, 2, 3))
            bad = (f[:, i, j] != CLEAR) | ~finite
            good_train = train_m & ~bad
            pool = good_train if good_train.any() else train_m & finite
            if not pool.any():
                continue
            mean_tile = tile[pool].mean(axis=0)
            tile[bad] = mean_tile
            replaced += int(bad.sum())
    out = xr.DataArray(
        data,
        dims=order,
        coords={k: v for k, v in cube.coords.items()},
        attrs=dict(cube.attrs, cloud_tiles_replaced=replaced, empty_weeks=int(empty_week.sum())),
    )
    return out.transpose(*cube.dims)


def city_cubes(
    locations: Sequence[int],
    weeks=("2016w01", "2018w52"),
    *,
    source: str = "synthetic",
    size_px: int = 64,
    n_tiles: int = 4,
    seed: int = 0,
    progress: bool = True,
    **request_kwargs,
) -> xr.DataArray:
    """Weekly image cubes of several cities, stacked as ``(location, week, band, y, x)``.

    Parameters
    ----------
    locations : DANE codes (with a centre in :data:`CITY_CENTRES` for the real sources)
    weeks : (first, last) labels or a list of weeks
    source : {"synthetic", "earthengine", "stac"}
        ``"synthetic"``: :func:`terralab.dengue.synthetic.synthetic_s2_cubes` (``size_px`` pixels, clouds on an
        ``n_tiles`` grid; carries no information about real cases). ``"earthengine"`` / ``"stac"``:
        :func:`s2_weekly_mosaics_ee` / :func:`s2_weekly_mosaics_stac` per city with ``request_kwargs``.
    """
    locations = list(locations)
    if source == "synthetic":
        from .synthetic import synthetic_s2_cubes

        return synthetic_s2_cubes(_weeks_of(weeks), locations, size_px=size_px, n_tiles=n_tiles, seed=seed)
    fetchers = {"earthengine": s2_weekly_mosaics_ee, "stac": s2_weekly_mosaics_stac}
    if source not in fetchers:
        raise InvalidInputError(f"image source must be synthetic, earthengine or stac, got {source!r}")
    cubes = [fetchers[source](loc, weeks, progress=progress, **request_kwargs) for loc in locations]
    shapes = {c.shape for c in cubes}
    if len(shapes) > 1:
        raise FileFormatError(f"cities came back on different grids {shapes}; they cannot be stacked")
    out = xr.concat([c.drop_vars(["y", "x"]) for c in cubes], dim=pd.Index(locations, name="location"))
    out.attrs = dict(cubes[0].attrs, location=None)
    return out
