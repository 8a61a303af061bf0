"""Synthetic rice-mapping scenes with known ground truth.

:func:`scene` draws a terraced mountain valley like Paro's: a meandering river, terraced fields on the valley
floor and lower slopes, forest above, villages, and two seasons of imagery that carry the signals rice mapping
relies on:

* rice is bare or puddled *before* planting (Mar–May, low NDVI) and a dense canopy *during* the monsoon
  (Jul–Sep, high NDVI); other crops are green in both seasons, less so during;
* flooded paddies are specular to radar: dark in Sentinel-1 VH (and VV) before, bright from the canopy during;
* the DEM is terraced: flat treads and steep risers, so slope separates fields from hillside;
* clouds (0–50 % of the scene, thin at their edges) brighten the optical median of either season, and their
  shadows, offset along the sun's azimuth by the cloud height, dim it (by default the monsoon "during" season
  has 4 %); radar sees through both; a missing-data patch (NaN in every band) plays the part of a gap in the
  mosaic. Clouds have their own random stream: the same ``seed`` gives the same landscape with or without
  them, and ``return_clouds=True`` returns where they are.

Pixels carry noise of realistic size (sub-pixel mixing in 4.77 m NICFI resampled to 10 m; residual speckle
in monthly Sentinel-1 medians), so a single pixel is ambiguous while a whole field is not: this is what
gives a patch model its edge over a per-pixel classifier, as in the paper.

Example
-------
>>> from terralab.rice import synthetic
>>> stack, truth = synthetic.scene(height_px=64, width_px=64, seed=1)
>>> stack.sizes["band"], sorted(set(truth.values.ravel().tolist()))[:2]
(18, [0, 1])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import xarray as xr

from ..errors import InvalidInputError
from ..options import options_from
from . import clouds
from .features import BAND_SETS, make_stack

__all__ = [
    "CLASS_NAMES",
    "LANDCOVER_CODES",
    "LANDCOVER_TO_CLASS",
    "CloudyScene",
    "Scene",
    "SceneParams",
    "landcover",
    "scene",
]

#: Class ids and names, as the ACES Paro points (0 cropland etc., 1 rice, 2 forest, 3 urban, 4 water etc.)
CLASS_NAMES = ("cropland_etc", "rice", "forest", "urban", "others_water_etc")

# mean reflectance (red, green, blue, nir) per class and season
_OPTICAL = {
    "before": np.array(
        [
            [0.080, 0.078, 0.058, 0.215],  # cropland: winter/spring crops, moderately green
            [0.095, 0.085, 0.065, 0.150],  # rice: bare, puddled soil
            [0.032, 0.050, 0.026, 0.270],  # forest
            [0.140, 0.130, 0.120, 0.180],  # urban
            [0.050, 0.060, 0.062, 0.030],  # water
        ]
    ),
    "during": np.array(
        [
            [0.062, 0.078, 0.042, 0.255],  # cropland: maize / vegetables
            [0.042, 0.072, 0.032, 0.330],  # rice: closed canopy
            [0.028, 0.050, 0.022, 0.310],  # forest
            [0.140, 0.130, 0.120, 0.185],  # urban
            [0.085, 0.085, 0.062, 0.050],  # water: monsoon-turbid river
        ]
    ),
}
# mean Sentinel-1 backscatter (dB) (VV, VH) per class and season
_RADAR = {
    "before": np.array([[-11.0, -18.0], [-13.5, -21.0], [-7.5, -13.0], [-4.5, -11.0], [-20.0, -27.0]]),
    "during": np.array([[-10.0, -16.5], [-9.0, -15.0], [-7.5, -13.0], [-4.5, -11.0], [-19.0, -26.0]]),
}


class Scene(NamedTuple):
    """A synthetic scene: the feature ``stack`` (band, y, x) and the ``truth`` class map (y, x)."""

    stack: xr.DataArray
    truth: xr.DataArray


class CloudyScene(NamedTuple):
    """A synthetic scene and where its clouds are: uint8 (season, y, x), 0 clear, 1 cloud, 2 shadow."""

    stack: xr.DataArray
    truth: xr.DataArray
    clouds: xr.DataArray


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], scale_px: float) -> np.ndarray:
    """Gaussian random field with correlation length ``scale_px``, zero mean, unit std."""
    from scipy.ndimage import gaussian_filter

    field = gaussian_filter(rng.standard_normal(shape), sigma=max(scale_px, 0.5), mode="wrap")
    return (field - field.mean()) / (field.std() + 1e-12)


@dataclass(frozen=True)
class SceneParams:
    """Landscape and cloud options of :func:`scene` beyond size, seed, cover fractions and grid."""

    field_size_px: float = 10.0
    noise_scale: float = 1.0
    valley_width_fraction: float = 0.28
    cloud_scale_px: float | None = None
    cloud_anisotropy: float = 1.0
    shadows: bool = True
    sun_azimuth_deg: float = 135.0
    sun_elevation_deg: float = 60.0
    cloud_height_m: float = 600.0
    cloud_seed: int | None = None


def _scene_params(given: Mapping[str, Any]) -> SceneParams:
    params = options_from(SceneParams, given, caller="scene")
    if not 0 < params.valley_width_fraction <= 0.45:
        raise InvalidInputError("valley_width_fraction must be in (0, 0.45]")
    return params


def scene(
    height_px: int = 256,
    width_px: int = 256,
    *,
    seed: int = 0,
    cloud_fraction: float | Mapping[str, float] = 0.04,
    nodata_fraction: float = 0.01,
    pixel_size_m: float = 10.0,
    crs: str = "EPSG:32645",
    origin_m: tuple[float, float] = (737_000.0, 3_039_000.0),
    return_clouds: bool = False,
    **params: Any,
) -> Scene | CloudyScene:
    """Draw a synthetic Paro-like valley: an 18-band RGBNES stack and its true class map.

    Parameters
    ----------
    height_px, width_px
        Size of the scene in pixels (≥ 32 each).
    seed
        Random seed; the same seed gives the same scene.
    cloud_fraction
        Fraction of the scene under cloud in the "during" optical median (0–0.5), or a mapping
        ``{"before": f, "during": f}`` for either season.
    nodata_fraction
        Fraction of the scene that is a gap (NaN in every band), placed as one rectangle (0–0.3).
    pixel_size_m
        Pixel size in metres (10 m, as the paper resamples to).
    crs
        CRS of the grid (default UTM 45N, which covers Bhutan).
    origin_m
        (x, y) of the upper-left corner in CRS units.
    return_clouds
        Also return the cloud/shadow map (:class:`CloudyScene`).
    **params
        Options of :class:`SceneParams` (another name is an :class:`~terralab.errors.InvalidInputError`):

        ``field_size_px``
            Mean field (parcel) size in pixels (default 10).
        ``noise_scale``
            Multiplier of the per-pixel noise (1 = the realistic default; 0 = noise-free).
        ``valley_width_fraction``
            Half-width of the valley floor as a fraction of the scene width (default 0.28; terraced fields lie
            within 1.25 ×).
        ``cloud_scale_px``, ``cloud_anisotropy``
            Correlation length of the cloud blobs (default 6 % of the smaller side) and their stretch along x
            (1 = round blobs, 3 = streaks).
        ``shadows``, ``sun_azimuth_deg``, ``sun_elevation_deg``, ``cloud_height_m``
            Cast cloud shadows; the sun's azimuth (clockwise from north) and elevation and the cloud height
            set the shadow offset (height / tan(elevation), away from the sun).
        ``cloud_seed``
            Seed of the clouds' own random stream (default: ``seed``); another value moves the clouds over the
            same landscape.

    Returns
    -------
    Scene or CloudyScene
        ``stack`` float32 (band, y, x) with the 18 RGBNES bands (reflectance 0–1, elevation m, slope degree,
        backscatter dB), NaN in the gap; ``truth`` int16 (y, x) with class ids 0–4 (see ``CLASS_NAMES``),
        defined everywhere. ``truth.attrs["nodata_mask"]`` is not stored: NaN in the stack marks the gap.
    """
    if height_px < 32 or width_px < 32:
        raise InvalidInputError(f"scene must be at least 32×32 pixels, got {height_px}×{width_px}")
    fractions = (
        dict(cloud_fraction) if isinstance(cloud_fraction, Mapping) else {"during": float(cloud_fraction)}
    )
    unknown = set(fractions) - {"before", "during"}
    if unknown:
        raise InvalidInputError(f"cloud_fraction seasons must be 'before' or 'during', got {sorted(unknown)}")
    if not all(0 <= f <= 0.5 for f in fractions.values()) or not 0 <= nodata_fraction <= 0.3:
        raise InvalidInputError("cloud_fraction must be in [0, 0.5] and nodata_fraction in [0, 0.3]")
    p = _scene_params(params)
    rng = np.random.default_rng(seed)
    h, w = int(height_px), int(width_px)
    terrain = _terrain(rng, h, w, p, pixel_size_m)
    truth, parcel, n_parcels = _fields(rng, h, w, p, terrain)
    bands = _optical(rng, truth, parcel, n_parcels, p.noise_scale)
    # clouds: their own random stream, so the landscape does not change with the cloud settings
    cloud_rng = np.random.default_rng([int(seed if p.cloud_seed is None else p.cloud_seed), 7])
    cloud_map = _add_clouds(cloud_rng, bands, fractions, p, pixel_size_m)
    bands["elevation"] = terrain["dem"]
    bands["slope"] = terrain["slope"]
    _add_radar(rng, bands, truth, parcel, n_parcels, terrain["gx"], p.noise_scale)

    names = BAND_SETS["RGBNES"]
    data = np.stack([bands[n] for n in names]).astype(np.float32)
    optical = [i for i, n in enumerate(names) if n.split("_")[0] in ("red", "green", "blue", "nir")]
    data[optical] = np.clip(data[optical], 0.001, 1.0)
    if nodata_fraction > 0:
        _cut_gap(rng, data, nodata_fraction)

    grid = (pixel_size_m, crs, origin_m)
    return _scene_arrays(data, names, truth, cloud_map if return_clouds else None, seed=seed, grid=grid)


def _scene_arrays(data, names, truth, cloud_map, *, seed: int, grid: tuple) -> Scene | CloudyScene:
    """The stack, truth (and cloud map, if given) as georeferenced DataArrays."""
    from affine import Affine

    pixel_size_m, crs, origin_m = grid
    transform = Affine(pixel_size_m, 0.0, origin_m[0], 0.0, -pixel_size_m, origin_m[1])
    stack = make_stack(
        data,
        names,
        transform=transform,
        crs=crs,
        attrs={"source": f"terralab.rice.synthetic.scene(seed={seed})", "pixel_size_m": pixel_size_m},
    )
    coords = {"y": stack["y"].values, "x": stack["x"].values}
    truth_da = xr.DataArray(
        truth.astype(np.int16),
        dims=("y", "x"),
        coords=coords,
        name="class",
        attrs={"class_names": list(CLASS_NAMES), "long_name": "true land-cover class", "units": "1"},
    )
    truth_da = truth_da.rio.write_crs(crs).rio.write_transform(transform)
    if cloud_map is None:
        return Scene(stack, truth_da)
    clouds_da = xr.DataArray(
        cloud_map,
        dims=("season", "y", "x"),
        coords={"season": ["before", "during"], **coords},
        name="clouds",
        attrs={
            "flag_values": [0, 1, 2],
            "flag_meanings": "clear cloud shadow",
            "long_name": "true clouds and shadows",
        },
    )
    return CloudyScene(stack, truth_da, clouds_da.rio.write_crs(crs).rio.write_transform(transform))


def _terrain(rng: np.random.Generator, h: int, w: int, p: SceneParams, pixel_size_m: float) -> dict:
    """A river meandering down the middle, a terraced valley floor, hillsides rising to the east and west."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    phase = rng.uniform(0, 2 * np.pi)
    centre = w / 2 + 0.12 * w * np.sin(2 * np.pi * yy / (1.3 * h) + phase)
    dist = np.abs(xx - centre)  # px from the river
    valley_px = p.valley_width_fraction * w
    rise_m = np.where(dist < valley_px, 0.6 * dist, 0.6 * valley_px + 4.0 * (dist - valley_px))
    dem = 2250.0 - 0.05 * yy * pixel_size_m / 10 + rise_m * pixel_size_m / 10
    dem += 6.0 * _smooth_field(rng, (h, w), 0.15 * w)
    terraced = dist < valley_px * 1.25
    step_m = 2.0
    dem = np.where(terraced, np.floor(dem / step_m) * step_m, dem)
    gy, gx = np.gradient(dem, pixel_size_m)
    slope = np.degrees(np.arctan(np.hypot(gx, gy)))
    return {
        "yy": yy,
        "xx": xx,
        "phase": phase,
        "dist": dist,
        "valley_px": valley_px,
        "dem": dem,
        "gx": gx,
        "slope": slope,
    }


def _fields(rng: np.random.Generator, h: int, w: int, p: SceneParams, terrain: dict):
    """Voronoi parcels, classes drawn by zone (valley floor or hillside), the river: (truth, parcel, n)."""
    from scipy.spatial import cKDTree

    yy, xx, phase = terrain["yy"], terrain["xx"], terrain["phase"]
    n_seeds = max(4, int(h * w / p.field_size_px**2))
    seeds = np.column_stack([rng.uniform(0, h, n_seeds), rng.uniform(0, w, n_seeds)])
    _, parcel = cKDTree(seeds).query(np.column_stack([yy.ravel(), xx.ravel()]))
    parcel = parcel.reshape(h, w)
    seed_dist = np.abs(seeds[:, 1] - (w / 2 + 0.12 * w * np.sin(2 * np.pi * seeds[:, 0] / (1.3 * h) + phase)))
    in_valley = seed_dist < terrain["valley_px"]
    p_valley = [0.25, 0.55, 0.05, 0.15, 0.0]
    p_hill = [0.15, 0.05, 0.75, 0.05, 0.0]
    parcel_class = np.where(
        in_valley, rng.choice(5, n_seeds, p=p_valley), rng.choice(5, n_seeds, p=p_hill)
    ).astype(np.int16)
    truth = parcel_class[parcel]
    truth[terrain["dist"] < max(1.5, 0.012 * w)] = 4  # the river
    return truth, parcel, n_seeds


def _optical(rng: np.random.Generator, truth, parcel, n_parcels: int, noise_scale: float) -> dict:
    """Optical seasons: class mean × field-level variation + per-pixel noise."""
    h, w = truth.shape
    bands: dict[str, np.ndarray] = {}
    for season in ("before", "during"):
        field_gain = rng.normal(1.0, 0.07, (n_parcels, 4))
        base = _OPTICAL[season][truth] * field_gain[parcel]
        texture = 0.5 * _smooth_field(rng, (h, w), 1.0)[..., None]  # sub-field heterogeneity
        pixel = rng.standard_normal((h, w, 4))
        urban_texture = np.where((truth == 3)[..., None], 0.35 * base * rng.standard_normal((h, w, 1)), 0.0)
        values = base * (1 + noise_scale * (0.15 * texture + 0.35 * pixel)) + noise_scale * urban_texture
        for i, name in enumerate(("red", "green", "blue", "nir")):
            bands[f"{name}_{season}"] = values[..., i]
    return bands


def _add_clouds(cloud_rng, bands: dict, fractions: dict, p: SceneParams, pixel_size_m: float) -> np.ndarray:
    """Clouds and shadows over the optical bands (in place); returns the (season, y, x) map 0/1/2."""
    h, w = bands["red_before"].shape
    cloud_map = np.zeros((2, h, w), np.uint8)
    length_px = (
        p.cloud_height_m / np.tan(np.radians(p.sun_elevation_deg)) / pixel_size_m if p.shadows else 0.0
    )
    az = np.radians(p.sun_azimuth_deg)
    offset = (length_px * np.cos(az), -length_px * np.sin(az))  # rows grow southwards; away from the sun
    for s_i, season in enumerate(("before", "during")):
        fraction = fractions.get(season, 0.0)
        if fraction <= 0:
            continue
        opacity, shadow = clouds.cloud_layer(
            cloud_rng,
            (h, w),
            fraction,
            scale_px=p.cloud_scale_px or 0.06 * min(h, w),
            anisotropy=p.cloud_anisotropy,
            shadow_offset_px=offset,
        )
        optical = np.stack([bands[f"{b}_{season}"] for b in ("red", "green", "blue", "nir")])
        optical = clouds.apply_clouds(optical, opacity, shadow if p.shadows else np.zeros_like(shadow))
        for i, b in enumerate(("red", "green", "blue", "nir")):
            bands[f"{b}_{season}"] = optical[i]
        cloud_map[s_i] = np.where(opacity > 0, 1, np.where(shadow > 0.05, 2, 0))
    return cloud_map


def _add_radar(
    rng: np.random.Generator, bands: dict, truth, parcel, n_parcels: int, gx, noise_scale: float
) -> None:
    """Radar: class mean + field variation + speckle; asc/desc orbits see opposite-facing slopes brighter."""
    h, w = truth.shape
    facing = np.degrees(np.arctan(gx))  # + where the ground rises to the east
    for orbit, sign in (("asc", 1.0), ("desc", -1.0)):
        for season in ("before", "during"):
            field_db = rng.normal(0.0, 0.8, (n_parcels, 2))
            base = _RADAR[season][truth] + field_db[parcel]
            speckle = noise_scale * 2.5 * rng.standard_normal((h, w, 2))
            values = base + speckle - sign * 0.25 * facing[..., None]
            bands[f"vv_{orbit}_{season}"] = values[..., 0]
            bands[f"vh_{orbit}_{season}"] = values[..., 1]


def _cut_gap(rng: np.random.Generator, data: np.ndarray, nodata_fraction: float) -> None:
    """Set one rectangle covering ``nodata_fraction`` of the scene to NaN in every band (in place)."""
    h, w = data.shape[1:]
    gap_h = max(1, round(h * float(np.sqrt(nodata_fraction))))
    gap_w = max(1, round(w * float(np.sqrt(nodata_fraction))))
    r0 = int(rng.integers(0, h - gap_h + 1))
    c0 = int(rng.integers(0, w - gap_w + 1))
    data[:, r0 : r0 + gap_h, c0 : c0 + gap_w] = np.nan


#: Codes of a regional land-cover product in the style of RLCMS (illustrative), used by :func:`landcover`.
LANDCOVER_CODES = {
    1: "forest",
    2: "shrubland",
    3: "grassland",
    4: "cropland",
    5: "paddy_rice",
    6: "built_up",
    7: "water",
    8: "barren",
}
#: Remapping table from :data:`LANDCOVER_CODES` to the five rice-mapping classes (weak labels).
LANDCOVER_TO_CLASS = {1: 2, 2: 4, 3: 4, 4: 0, 5: 1, 6: 3, 7: 4, 8: 4}
_CLASS_TO_CODE = {0: 4, 1: 5, 2: 1, 3: 6, 4: 7}


def landcover(
    truth: xr.DataArray, *, block_px: int = 3, error_rate: float = 0.1, seed: int = 0
) -> xr.DataArray:
    """A coarse, imperfect regional land-cover map made from a true class map (for weak-label demos).

    The truth is resampled to ``block_px``-pixel blocks (majority), coded as :data:`LANDCOVER_CODES`, and a
    fraction ``error_rate`` of blocks gets a random wrong code, like a regional product at coarser resolution.
    """
    if truth.ndim != 2 or set(truth.dims) != {"y", "x"}:
        raise InvalidInputError("truth must be a (y, x) class map")
    rng = np.random.default_rng(seed)
    t = truth.values.astype(np.int64)
    h, w = t.shape
    bh, bw = -(-h // block_px), -(-w // block_px)
    padded = np.full((bh * block_px, bw * block_px), -1, dtype=np.int64)
    padded[:h, :w] = t
    blocks = padded.reshape(bh, block_px, bw, block_px).transpose(0, 2, 1, 3).reshape(bh, bw, -1)
    counts = np.stack([(blocks == k).sum(-1) for k in range(5)], axis=-1)
    majority = counts.argmax(-1)
    codes = np.vectorize(_CLASS_TO_CODE.get)(majority)
    wrong = rng.random((bh, bw)) < error_rate
    codes = np.where(wrong, rng.choice(sorted(LANDCOVER_CODES), (bh, bw)), codes)
    full = np.repeat(np.repeat(codes, block_px, 0), block_px, 1)[:h, :w].astype(np.int16)
    out = truth.copy(data=full)
    out.name = "landcover"
    out.attrs = {
        "codes": {int(k): v for k, v in LANDCOVER_CODES.items()},
        "long_name": "regional land cover (synthetic)",
    }
    return out
