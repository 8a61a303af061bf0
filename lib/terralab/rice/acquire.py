"""Earth Engine request builders for the rice feature stack (ACES's inputs), on :mod:`terralab.earthengine`.

* NICFI/Planet basemaps (``projects/planet-nicfi/assets/basemaps/asia``; bands B, G, R, N as reflectance
  × 10⁴): seasonal medians *before* (Mar–May) and *during* (Jul–Sep), scaled to reflectance and named
  ``red_before … nir_during``;
* Sentinel-1 GRD (``COPERNICUS/S1_GRD``): IW mode, VV+VH, one orbit direction at a time; each scene
  terrain-flattened with the volume model of Vollrath et al. (2020) and speckle-filtered (Lee), then
  monthly medians, averaged over each season: ``vv_asc_before … vh_desc_during`` (dB);
* DEM (SRTM 30 m by default): ``elevation`` (m) and ``slope`` (degrees).

Nothing runs until an Earth Engine call asks for pixels: :func:`fetch_stack` (small areas, computePixels →
``xr.DataArray``) or :func:`export_stack` (large areas → TFRecord patches; read back with
:func:`terralab.rice.tfrecord.read_image_patches`). NICFI imagery needs the NICFI programme's access
(https://www.planet.com/nicfi/) and its terms: attribution, non-commercial use, no redistribution.

Example
-------
>>> from terralab.rice import acquire
>>> paro = (89.38, 27.40, 89.45, 27.46)
>>> stack = acquire.fetch_stack(paro, year=2021, bands="RGBNES", scale_m=10)          # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import xarray as xr

from .. import earthengine
from ..errors import InvalidInputError
from .features import BAND_SETS, ELEVATION, RGBN, SENTINEL1, band_names

if TYPE_CHECKING:
    import ee

__all__ = [
    "DEFAULT_DEM",
    "NICFI_ASIA",
    "S1_COLLECTION",
    "SEASON_MONTHS",
    "dem_and_slope",
    "export_stack",
    "feature_image",
    "fetch_stack",
    "nicfi_seasonal_median",
    "sentinel1_monthly_medians",
    "sentinel1_seasonal",
]

NICFI_ASIA = "projects/planet-nicfi/assets/basemaps/asia"
S1_COLLECTION = "COPERNICUS/S1_GRD"
DEFAULT_DEM = "USGS/SRTMGL1_003"
#: Calendar months (first, last) of each season, as in the paper.
SEASON_MONTHS = {"before": (3, 5), "during": (7, 9)}
_ORBITS = {"asc": "ASCENDING", "desc": "DESCENDING"}


def _season(season: str) -> tuple[int, int]:
    if season not in SEASON_MONTHS:
        raise InvalidInputError(f"season must be one of {sorted(SEASON_MONTHS)}, got {season!r}")
    return SEASON_MONTHS[season]


def _dates(year: int, first_month: int, last_month: int) -> tuple[str, str]:
    end_year, end_month = (year + 1, 1) if last_month == 12 else (year, last_month + 1)
    return f"{year:04d}-{first_month:02d}-01", f"{end_year:04d}-{end_month:02d}-01"


def nicfi_seasonal_median(region: Any, year: int, season: str, *, collection: str = NICFI_ASIA) -> ee.Image:
    """Median NICFI basemap of a season, as reflectance bands ``red_<season>, green_…, blue_…, nir_…``."""
    ee = earthengine.ensure_initialized()
    start, end = _dates(year, *_season(season))
    geom = earthengine.geometry(region)
    return (
        ee.ImageCollection(collection)
        .filterBounds(geom)
        .filterDate(start, end)
        .select(["R", "G", "B", "N"], ["red", "green", "blue", "nir"])
        .median()
        .multiply(1e-4)
        .rename([f"{b}_{season}" for b in ("red", "green", "blue", "nir")])
        .toFloat()
    )


def _terrain_flatten(image, dem):
    """Volume-model terrain flattening of one S1 GRD scene (Vollrath, Mullissa & Reiche 2020), linear."""
    ee = earthengine.ensure_initialized()
    theta_i = image.select("angle")
    # the satellite heading, from the incidence-angle gradient across the swath
    phi_i = (
        ee.Terrain.aspect(theta_i)
        .reduceRegion(reducer=ee.Reducer.mean(), geometry=theta_i.get("system:footprint"), scale=1000)
        .get("aspect")
    )
    alpha_s = ee.Terrain.slope(dem).select("slope")
    phi_s = ee.Terrain.aspect(dem).select("aspect")
    phi_r = ee.Image.constant(phi_i).subtract(phi_s)
    to_rad = 3.141592653589793 / 180.0
    theta_rad = theta_i.multiply(to_rad)
    alpha_r = alpha_s.multiply(to_rad).tan().multiply(phi_r.multiply(to_rad).cos()).atan()
    linear = ee.Image.constant(10).pow(image.select(["VV", "VH"]).divide(10))
    gamma0 = linear.divide(theta_rad.cos())
    ninety = ee.Image.constant(90 * to_rad)
    # volume model: scale by tan(90° − θi + αr) / tan(90° − θi)
    correction = ninety.subtract(theta_rad).add(alpha_r).tan().divide(ninety.subtract(theta_rad).tan())
    # layover and shadow: drop the pixels the model cannot correct
    valid = alpha_r.lt(ninety.subtract(theta_rad)).And(alpha_r.gt(theta_rad.multiply(-1)))
    return gamma0.divide(correction).updateMask(valid).copyProperties(image, ["system:time_start"])


def _lee_filter(image, kernel_px: int = 7, looks: float = 4.4):
    """Lee speckle filter in linear power (ENL ``looks``; ~4.4 for IW GRD)."""
    ee = earthengine.ensure_initialized()
    kernel = ee.Kernel.square(kernel_px // 2, "pixels")
    mean = image.reduceNeighborhood(reducer=ee.Reducer.mean(), kernel=kernel)
    variance = image.reduceNeighborhood(reducer=ee.Reducer.variance(), kernel=kernel)
    ci2 = variance.divide(mean.multiply(mean))
    weight = ee.Image.constant(1).subtract(ee.Image.constant(1.0 / looks).divide(ci2)).clamp(0, 1)
    return (
        mean.add(weight.multiply(image.subtract(mean)))
        .rename(["VV", "VH"])
        .copyProperties(image, ["system:time_start"])
    )


def sentinel1_monthly_medians(
    region: Any,
    year: int,
    months: Sequence[int],
    *,
    orbit: str = "asc",
    dem: str = DEFAULT_DEM,
    speckle_filter: bool = True,
    terrain_flatten: bool = True,
) -> ee.ImageCollection:
    """Monthly medians of Sentinel-1 IW VV+VH for one orbit direction, in linear power.

    Returns an ``ee.ImageCollection`` with one image per month (bands ``VV``, ``VH``).
    """
    ee = earthengine.ensure_initialized()
    if orbit not in _ORBITS:
        raise InvalidInputError(f"orbit must be 'asc' or 'desc', got {orbit!r}")
    if not months or any(not 1 <= int(m) <= 12 for m in months):
        raise InvalidInputError(f"months must be calendar months 1–12, got {list(months)}")
    geom = earthengine.geometry(region)
    dem_image = ee.Image(dem)
    scenes = (
        ee.ImageCollection(S1_COLLECTION)
        .filterBounds(geom)
        .filter(ee.Filter.eq("instrumentMode", "IW"))
        .filter(ee.Filter.listContains("transmitterReceiverPolarisation", "VV"))
        .filter(ee.Filter.listContains("transmitterReceiverPolarisation", "VH"))
        .filter(ee.Filter.eq("orbitProperties_pass", _ORBITS[orbit]))
        .filter(ee.Filter.calendarRange(year, year, "year"))
    )
    if terrain_flatten:
        scenes = scenes.map(lambda img: _terrain_flatten(img, dem_image))
    else:
        scenes = scenes.map(
            lambda img: (
                ee.Image.constant(10)
                .pow(img.select(["VV", "VH"]).divide(10))
                .copyProperties(img, ["system:time_start"])
            )
        )
    if speckle_filter:
        scenes = scenes.map(_lee_filter)
    monthly = [
        scenes.filter(ee.Filter.calendarRange(int(m), int(m), "month")).median().set("month", int(m))
        for m in months
    ]
    return ee.ImageCollection(monthly)


def sentinel1_seasonal(region: Any, year: int, season: str, *, orbit: str = "asc", **kwargs: Any) -> ee.Image:
    """Season mean of the monthly S1 medians in dB: bands ``vv_<orbit>_<season>``, ``vh_<orbit>_<season>``."""
    first, last = _season(season)
    monthly = sentinel1_monthly_medians(region, year, list(range(first, last + 1)), orbit=orbit, **kwargs)
    return (
        monthly.mean().log10().multiply(10).rename([f"vv_{orbit}_{season}", f"vh_{orbit}_{season}"]).toFloat()
    )


def dem_and_slope(region: Any, *, dem: str = DEFAULT_DEM) -> ee.Image:
    """``elevation`` (m) and ``slope`` (degrees) from a DEM asset (SRTM 30 m by default)."""
    ee = earthengine.ensure_initialized()
    image = ee.Image(dem).select(0).rename("elevation")
    slope = ee.Terrain.slope(image).rename("slope")
    return image.addBands(slope).clip(earthengine.geometry(region)).toFloat()


def feature_image(
    region: Any, year: int = 2021, bands: str | Sequence[str] = "RGBNES", *, dem: str = DEFAULT_DEM
) -> ee.Image:
    """One ``ee.Image`` with the bands of a set (ACES order: RGBN, elevation/slope, Sentinel-1).

    Only the parts the set needs are requested; indices (``"RGBN+NDVI"``) are computed locally afterwards
    with :func:`terralab.rice.features.add_indices`, not here.
    """
    names = [n for n in band_names(bands) if n in set(RGBN + ELEVATION + SENTINEL1)]
    if not names:
        raise InvalidInputError(
            f"band set {bands!r} holds no band Earth Engine can provide; use e.g. 'RGBNES'"
        )
    parts = []
    if any(n in RGBN for n in names):
        parts += [nicfi_seasonal_median(region, year, s) for s in ("before", "during")]
    if any(n in ELEVATION for n in names):
        parts.append(dem_and_slope(region, dem=dem))
    if any(n in SENTINEL1 for n in names):
        parts += [
            sentinel1_seasonal(region, year, s, orbit=o, dem=dem)
            for o in ("asc", "desc")
            for s in ("before", "during")
        ]
    image = parts[0]
    for part in parts[1:]:
        image = image.addBands(part)
    return image.select(names)


def fetch_stack(
    region: Any,
    *,
    year: int = 2021,
    bands: str | Sequence[str] = "RGBNES",
    scale_m: float = 10.0,
    crs: str = "EPSG:4326",
) -> xr.DataArray:
    """Fetch a (small) feature stack ``xr.DataArray (band, y, x)`` through computePixels.

    For areas above computePixels' 48 MiB limit use :func:`export_stack`.
    """
    from .features import select_bands

    image = feature_image(region, year, bands)
    names = [n for n in band_names(bands) if n in set(RGBN + ELEVATION + SENTINEL1)]
    stack = earthengine.compute_pixels(image, region, scale_m=scale_m, crs=crs, bands=names)
    stack.attrs.update(year=year, band_set=str(bands) if isinstance(bands, str) else "custom")
    return select_bands(stack, bands)


def export_stack(
    region: Any,
    *,
    description: str,
    year: int = 2021,
    bands: str | Sequence[str] = "RGBNES",
    scale_m: float = 10.0,
    patch_size: int = 256,
    bucket: str | None = None,
    folder: str | None = None,
    crs: str = "EPSG:4326",
) -> Any:
    """Start a TFRecord export of the feature stack over a large area; returns the started task."""
    image = feature_image(region, year, bands)
    return earthengine.export_tfrecord(
        image,
        region,
        scale_m=scale_m,
        description=description,
        patch_size=patch_size,
        bucket=bucket,
        folder=folder,
        crs=crs,
    )


# the band sets the request builders can serve, for discoverability
SUPPORTED_BAND_SETS = tuple(BAND_SETS)
