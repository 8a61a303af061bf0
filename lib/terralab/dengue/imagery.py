"""Weekly Sentinel-2 cubes per municipality, DengueNet's cloud/shadow tile replacement, and sample readers.

Cubes are ``xarray.DataArray`` with dims ``(week, band, y, x)``: ``week`` holds MMWR week-ending Saturdays,
``band`` the Sentinel-2 band names (``B01`` … ``B12``), values in the units of ``attrs["units"]``. Several
locations stack into ``(location, week, band, y, x)``.

Two request paths build the weekly least-cloudy mosaics of a ~7.5 km square around a city centre:

* Earth Engine (:func:`s2_weekly_mosaics_ee`): ``COPERNICUS/S2_SR_HARMONIZED`` (or ``S2_HARMONIZED``) filtered
  to the square and the Sunday–Saturday week, images sorted by ``CLOUDY_PIXEL_PERCENTAGE`` and mosaicked with
  the least cloudy on top, 12 bands, pixels fetched by :func:`terralab.earthengine.compute_pixels`.
* STAC (:func:`s2_weekly_mosaics_stac`): the same through a STAC API (Earth Search by default) with
  pystac-client and odc-stac (``pip install -e '.[cloud]'``), for users without Earth Engine.

Cloud and shadow handling follows DengueNet (Kuo et al. 2024): the image is cut into a grid of ``n_tiles`` ×
``n_tiles`` tiles; a tile is cloud when at least half of its pixels are brighter than the 70th percentile of
the training weeks, shadow when at least half are darker than the 10th percentile; such a tile is replaced by
the average of that tile over the clear training weeks (:func:`cloud_shadow_tiles`,
:func:`replace_cloud_tiles`, in :mod:`~terralab.dengue.clouds`). Brightness is the mean of B02–B04. The
paper's "16 × 16 tiles" is read here as a 16 × 16 grid (``n_tiles=16``); pass another ``n_tiles`` for other
tilings. The readers of the small real samples are in :mod:`~terralab.dengue.samples`; both are re-exported
here.

Examples
--------
>>> [round(v, 4) for v in city_bbox(76001)]  # Cali: (lon_min, lat_min, lon_max, lat_max) of 7.5 km
[-76.5657, 3.4177, -76.4983, 3.4855]
>>> [EE_BAND_NAMES[b] for b in ("B02", "B8A")], [EARTH_SEARCH_ASSETS[b] for b in ("B02", "B8A")]
(['B2', 'B8A'], ['blue', 'nir08'])
"""

from __future__ import annotations

import importlib
import math
import time
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import DataNotAvailableError, FileFormatError, InvalidInputError, MissingDependencyError
from ..progress import progress_bar
from . import weeks as _weeks
from .clouds import (
    CLEAR,
    CLOUD,
    SHADOW,
    check_cube,
    cloud_shadow_tiles,
    replace_cloud_tiles,
    tile_edges,
    time_dim,
)
from .samples import read_eopatch, read_reference_scenes

if TYPE_CHECKING:
    import ee as _ee_api

    from .weeks import WeekLike

__all__ = [
    "CITY_CENTRES",
    "CLEAR",
    "CLOUD",
    "EARTH_SEARCH_ASSETS",
    "EARTH_SEARCH_URL",
    "EE_BAND_NAMES",
    "EE_COLLECTIONS",
    "REFLECTANCE_SCALE",
    "S2_BANDS",
    "S2_BANDS_L1C",
    "SHADOW",
    "STAC_ATTEMPTS",
    "STAC_FIRST_WAIT_S",
    "check_cube",
    "city_bbox",
    "city_cubes",
    "cloud_shadow_tiles",
    "read_eopatch",
    "read_reference_scenes",
    "replace_cloud_tiles",
    "s2_week_collection",
    "s2_week_image",
    "s2_weekly_mosaics_ee",
    "s2_weekly_mosaics_stac",
    "tile_edges",
    "time_dim",
]

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
                f"no centre known for location {location!r}; known: {sorted(CITY_CENTRES)}. Pass lon= and "
                "lat= instead"
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
    ee: ModuleType,
    bbox: Sequence[float],
    week: WeekLike,
    *,
    collection: str = EE_COLLECTIONS[0],
    max_cloud_pct: float | None = None,
) -> _ee_api.ImageCollection:
    """The ``ee.ImageCollection`` of Sentinel-2 images over ``bbox`` in the MMWR week ``week`` (request
    builder).

    Sorted by ``CLOUDY_PIXEL_PERCENTAGE`` from most to least cloudy, so that ``mosaic()`` puts the least
    cloudy on top. Nothing is computed until the caller asks.
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
    ee: ModuleType,
    bbox: Sequence[float],
    week: WeekLike,
    *,
    collection: str = EE_COLLECTIONS[0],
    max_cloud_pct: float | None = None,
    bands: Sequence[str] = S2_BANDS,
) -> _ee_api.Image:
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
    weeks: Sequence[WeekLike] | WeekLike = ("2016w01", "2018w52"),
    *,
    lon: float | None = None,
    lat: float | None = None,
    size_km: float = 7.5,
    scale_m: float = 10.0,
    collection: str = EE_COLLECTIONS[0],
    max_cloud_pct: float | None = None,
    bands: Sequence[str] = S2_BANDS,
    project: str | None = None,
    progress: bool | None = None,
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

    earthengine = importlib.import_module("terralab.earthengine")
    bbox = city_bbox(location, lon=lon, lat=lat, size_km=size_km)
    wk = _weeks_of(weeks)
    ee = earthengine.initialize(project=project)
    band_groups = _band_groups(list(bands), size_km, scale_m)
    slices, cloud, template = [], [], None
    for week in progress_bar(wk, desc="S2 weeks (Earth Engine)", enabled=progress):
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
    """Errors worth another try: the network (OSError covers requests' and urllib3's) and the API's own
    errors."""
    errors: list[type[BaseException]] = [OSError, TimeoutError]
    api_error = getattr(getattr(pystac_client, "exceptions", None), "APIError", None)
    if isinstance(api_error, type) and issubclass(api_error, BaseException):
        errors.append(api_error)
    return tuple(errors)


def _with_retries(call, what: str, url: str, retryable: tuple[type[BaseException], ...]):
    """``call()``, retried with exponential backoff on ``retryable`` errors; then a clear
    DataNotAvailableError."""
    wait = STAC_FIRST_WAIT_S
    for attempt in range(1, STAC_ATTEMPTS + 1):
        try:
            return call()
        except retryable as exc:
            if attempt == STAC_ATTEMPTS:
                raise DataNotAvailableError(
                    f"STAC {what} at {url} failed {STAC_ATTEMPTS} times (waits {STAC_FIRST_WAIT_S:g} s "
                    f"doubling): {type(exc).__name__}: {exc}. Check the network and the API URL, or use "
                    "image_source='synthetic' / 'earthengine'"
                ) from exc
            _sleep(wait)
            wait *= 2


def _stac_week_items(
    client: Any,
    week: pd.Timestamp,
    collection: str,
    bbox: Sequence[float],
    max_cloud_pct: float | None,
    url: str,
    retryable: tuple[type[BaseException], ...],
) -> list:
    """The items of ``collection`` over ``bbox`` in the Sunday–Saturday week ``week`` (search retried)."""
    start, end = _week_span(week)
    query = {"eo:cloud_cover": {"lt": float(max_cloud_pct)}} if max_cloud_pct is not None else None
    window = f"{start:%Y-%m-%d}/{end:%Y-%m-%d}"
    return _with_retries(
        lambda: list(
            client.search(collections=[collection], bbox=list(bbox), datetime=window, query=query).items()
        ),
        f"search of week {_weeks.week_label(week)}",
        url,
        retryable,
    )


def _stac_day_cloud(items: Sequence[Any]) -> dict:
    """Cloud cover of each day of ``items`` = that of its least cloudy item."""
    day_cloud = {}
    for it in items:
        day = pd.Timestamp(it.datetime).tz_localize(None).normalize() if it.datetime is not None else None
        cc = float(it.properties.get("eo:cloud_cover", 100.0))
        day_cloud[day] = min(cc, day_cloud.get(day, np.inf))
    return day_cloud


def _stac_mosaic(ds: xr.Dataset, band_keys: Sequence[str], day_cloud: Mapping) -> np.ndarray:
    """(band, y, x) mosaic of the loaded days: the least cloudy first, its gaps (nodata 0) filled from the
    next."""
    days = pd.DatetimeIndex(ds["time"].to_numpy()).normalize()
    order = np.argsort([day_cloud.get(d, 100.0) for d in days], kind="stable")
    stack = np.stack([ds[k].to_numpy() for k in band_keys], axis=1).astype(np.float32)  # time, band, y, x
    stack[stack == 0] = np.nan
    mosaic = np.full(stack.shape[1:], np.nan, dtype=np.float32)
    for t in order:
        gap = np.isnan(mosaic)
        mosaic[gap] = stack[t][gap]
    return mosaic


def s2_weekly_mosaics_stac(
    location: int | None = None,
    weeks: Sequence[WeekLike] | WeekLike = ("2016w01", "2018w52"),
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
    progress: bool | None = None,
) -> xr.DataArray:
    """Weekly least-cloudy Sentinel-2 mosaics of one city through a STAC API, as ``(week, band, y, x)``.

    Items of each Sunday–Saturday week are searched with pystac-client (each request tried up to
    :data:`STAC_ATTEMPTS` times with exponential backoff, then a DataNotAvailableError), loaded with
    ``odc.stac.load`` on the items' UTM grid at ``resolution_m``, and mosaicked pixel by pixel: the least
    cloudy day (``eo:cloud_cover``) first, gaps (nodata 0) filled from the next. ``assets`` maps band names to
    the API's asset keys (default: Earth Search's ``blue``, ``green``, …; Planetary Computer uses the band
    names themselves).

    Returns
    -------
    DataArray (week, band, y, x) of reflectance × 10⁴ (as stored by the provider); NaN where no image exists.
    """

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
    slices, cloud, template, ds = [], [], None, None
    for week in progress_bar(wk, desc="S2 weeks (STAC)", enabled=progress):
        items = _stac_week_items(client, week, collection, bbox, max_cloud_pct, url, retryable)
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
        day_cloud = _stac_day_cloud(items)
        mosaic = _stac_mosaic(ds, [assets[b] for b in bands], day_cloud)
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


def city_cubes(
    locations: Sequence[int],
    weeks: Sequence[WeekLike] | WeekLike = ("2016w01", "2018w52"),
    *,
    source: str = "synthetic",
    size_px: int = 64,
    n_tiles: int = 4,
    seed: int = 0,
    progress: bool | None = None,
    **request_kwargs: Any,
) -> xr.DataArray:
    """Weekly image cubes of several cities, stacked as ``(location, week, band, y, x)``.

    Parameters
    ----------
    locations : DANE codes (with a centre in :data:`CITY_CENTRES` for the real sources)
    weeks : (first, last) labels or a list of weeks
    source : {"synthetic", "earthengine", "stac"}
        ``"synthetic"``: :func:`terralab.dengue.synthetic.synthetic_s2_cubes` (``size_px`` pixels, clouds on
        an ``n_tiles`` grid; carries no information about real cases). ``"earthengine"`` / ``"stac"``:
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
