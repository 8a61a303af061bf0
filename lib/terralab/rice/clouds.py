"""Clouds, shadows and nodata: per-pixel validity masks of each season's bands, and cloud/shadow augmentation.

Bhutan's rice grows in the monsoon, so the "during" (Jul–Sep) optical median is the cloudiest of the year. The
bands of a stack fall into **groups** that share one validity mask: ``optical_before`` and ``optical_during``
(red, green, blue, nir and the indices of that season), ``radar_<orbit>_<season>`` (Sentinel-1; clouds do not
matter, only nodata), ``terrain`` (elevation, slope). :func:`validity` says, per group and pixel, whether the
group's values can be trusted, from (first that applies):

1. **the data's own mask**: NaN (or the file's nodata) in any band of the group;
2. **an explicit mask** the caller passes (``cloud_mask``: True = cloud, shadow or otherwise unusable);
3. **Sentinel-2 masks in the stack**: a ``cloud_prob_<season>`` band (s2cloudless probability, %), invalid
   above :attr:`CloudTest.cloud_probability_max`; or a ``scl_<season>`` band (the L2A scene classification),
   invalid for classes 0 no data, 1 saturated, 3 cloud shadow, 8/9 cloud medium/high probability, 10 cirrus;
4. **a brightness / whiteness / shadow test** for NICFI-like RGBN medians (no SWIR, no thermal), with the
   thresholds of :class:`CloudTest`:

   * *cloud*: the haze-optimised transform HOT = blue − 0.5·red − 0.08 > 0 (Zhang, Guindon & Cihlar 2002;
     the same test is Fmask's, Zhu & Woodcock 2012): clouds are bright and relatively blue, while soil, roofs
     and vegetation are redder than the clear-sky line; **and** whiteness Σ|b − mean|/mean over R, G, B < 0.7
     (flat visible spectrum, Fmask's whiteness test); **and** NDVI < 0.5 (a cloud hides the canopy); **and** a
     visible mean 0.04 above the other season's or above 0.22 in absolute terms (roofs are bright in both
     seasons, a cloud in one);
   * *shadow*: the pixel is uniformly darker than in the other season — NIR below ``shadow_ratio`` (0.6) times
     the other season's NIR *and* the visible mean below 0.6 times the other season's — where the other
     season's NIR is ≥ 0.1 (not water, which is dark in every season) and the other season is not cloudy; a
     cloud shadow dims direct light in every band alike, while crops change the *shape* of the spectrum (rice:
     NIR up, visible down), not its level. Or dark in absolute terms: NIR < 0.12 and visible mean < 0.03 (no
     sunlit land surface is both; water is dark in NIR, not in the visible);
   * both tests are cleaned with a 3 × 3 majority (clouds and shadows are blobs, per-pixel noise is not) and
     dilated by ``buffer_px`` (thin cloud edges, as Fmask's buffer).

The thresholds are physical defaults, not fitted; on the synthetic valleys the test finds ~90 % of cloud
pixels and ~40 % of shadow pixels (the faint half-shadows at cloud edges are missed), and flags < 1 % of clear
ground (tests/rice/test_rice_clouds.py checks it on a valley and cloud shapes it was not looked at on). On
real data, check it on your scenes, or give the data's own mask.

Pixels that no test flags can still carry thin haze; the models are trained with :func:`augment` (random cloud
blobs with shadows offset along a random sun direction on the during-season bands) so that they learn to use
the other bands where the mask says "invalid" and to tolerate what the mask misses.

Example
-------
>>> from terralab.rice import clouds, synthetic
>>> stack, truth = synthetic.scene(height_px=64, width_px=64, seed=0, cloud_fraction=0.2)
>>> valid = clouds.validity(stack)
>>> valid["group"].values.tolist()[:2]
['optical_before', 'optical_during']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import xarray as xr

from ..errors import InvalidInputError
from .features import INDICES, SEASONS, check_stack

__all__ = [
    "MASK_BAND_PREFIXES",
    "OPTICAL_BANDS",
    "SCL_INVALID",
    "CloudTest",
    "augment",
    "band_group",
    "cloud_layer",
    "feature_bands",
    "group_bands",
    "is_optical",
    "season_masks",
    "validity",
    "validity_array",
]

#: Band-name prefixes of mask bands: never features, read only by :func:`validity`.
MASK_BAND_PREFIXES = ("cloud_prob_", "scl_")
OPTICAL_BANDS = ("red", "green", "blue", "nir") + tuple(INDICES)
#: Sentinel-2 L2A scene classes that make a pixel unusable.
SCL_INVALID = (0, 1, 3, 8, 9, 10)


@dataclass(frozen=True)
class CloudTest:
    """Thresholds of the RGBN cloud and shadow tests (reflectance 0–1), and of the Sentinel-2 masks.

    Attributes
    ----------
    hot_offset
        HOT = blue − 0.5·red − ``hot_offset``; a cloud has HOT > 0.
    whiteness_max
        Σ|b − mean|/mean over R, G, B must be below this for a cloud (Fmask's 0.7).
    ndvi_max
        A cloud has NDVI below this.
    cloud_brightening, cloud_bright
        A cloud also has a visible mean at least ``cloud_brightening`` above the other season's, or above
        ``cloud_bright`` (a cloud over the same pixel in both seasons); bright roofs are bright in both
        seasons.
    dark_nir, dark_visible
        A shadow is also any pixel darker than both (no clear land surface is, in NIR; water is dark in NIR
        but not in the visible).
    shadow_ratio
        A shadow has NIR and visible mean below this fraction of the other season's.
    shadow_min_nir_other
        The other season's NIR must be at least this (excludes water).
    buffer_px
        Dilation of the cloud and shadow masks, pixels.
    cleanup
        Apply the 3 × 3 majority to the test results.
    cloud_probability_max
        A ``cloud_prob_<season>`` band above this (%) marks the season's optical bands invalid.
    """

    hot_offset: float = 0.08
    whiteness_max: float = 0.7
    ndvi_max: float = 0.5
    cloud_brightening: float = 0.04
    cloud_bright: float = 0.22
    shadow_ratio: float = 0.6
    shadow_min_nir_other: float = 0.1
    dark_nir: float = 0.12
    dark_visible: float = 0.03
    buffer_px: int = 1
    cleanup: bool = True
    cloud_probability_max: float = 40.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping | None) -> CloudTest:
        return cls(**dict(d or {}))


def is_mask_band(name: str) -> bool:
    return str(name).startswith(MASK_BAND_PREFIXES)


def feature_bands(names: Sequence[str]) -> list[str]:
    """The names that are features (everything but the Sentinel-2 mask bands)."""
    return [str(n) for n in names if not is_mask_band(n)]


def band_group(name: str) -> str:
    """Validity group of a band: ``optical_<season>``, ``radar_<orbit>_<season>``, ``terrain`` or the name."""
    parts = str(name).split("_")
    if parts[0] in OPTICAL_BANDS and len(parts) == 2 and parts[1] in SEASONS:
        return f"optical_{parts[1]}"
    if parts[0] in ("vv", "vh") and len(parts) == 3:
        return f"radar_{parts[1]}_{parts[2]}"
    if name in ("elevation", "slope"):
        return "terrain"
    return str(name)


def is_optical(group: str) -> bool:
    return group.startswith("optical_")


def group_bands(names: Sequence[str]) -> dict[str, list[int]]:
    """Band indices of each validity group, groups in first-seen order (optical groups first)."""
    groups: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        if is_mask_band(n):
            continue
        groups.setdefault(band_group(n), []).append(i)
    return dict(sorted(groups.items(), key=lambda kv: (not is_optical(kv[0]), kv[1][0])))


def _majority3(mask: np.ndarray) -> np.ndarray:
    from scipy.ndimage import uniform_filter

    return uniform_filter(mask.astype(np.float32), size=3, mode="nearest") > 0.5


def _dilate(mask: np.ndarray, px: int) -> np.ndarray:
    """Grow a mask by ``px`` pixels (a square window: separable, so fast on large tiles)."""
    if px <= 0 or not mask.any():
        return mask
    from scipy.ndimage import maximum_filter

    return maximum_filter(mask.view(np.uint8), size=2 * int(px) + 1, mode="nearest").view(bool)


def _rgbn(values: np.ndarray, index: Mapping[str, int], season: str) -> tuple[np.ndarray, ...] | None:
    names = [f"{b}_{season}" for b in ("red", "green", "blue", "nir")]
    if not all(n in index for n in names):
        return None
    return tuple(values[index[n]].astype(np.float32) for n in names)


def _cloud_test(red, green, blue, nir, test: CloudTest) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        hot = blue - 0.5 * red - test.hot_offset
        vis = (red + green + blue) / 3
        white = (np.abs(red - vis) + np.abs(green - vis) + np.abs(blue - vis)) / vis
        ndvi = (nir - red) / (nir + red)
    return (hot > 0) & (white < test.whiteness_max) & (ndvi < test.ndvi_max)


def _brighter(own, other, test: CloudTest) -> np.ndarray:
    """Visible mean clearly above the other season's, or bright in absolute terms (cloud in both seasons)."""
    vis = (own[0] + own[1] + own[2]) / 3
    if other is None:
        return np.ones(vis.shape, bool)
    vis_o = (other[0] + other[1] + other[2]) / 3
    with np.errstate(invalid="ignore"):
        return (vis - vis_o > test.cloud_brightening) | (vis > test.cloud_bright)


def _shadow_test(own, other, test: CloudTest) -> np.ndarray:
    r, g, b, n = own
    with np.errstate(invalid="ignore"):
        vis = (r + g + b) / 3
        dark = (n < test.dark_nir) & (vis < test.dark_visible)
        if other is None:
            return dark
        ro, go, bo, no = other
        vis_o = (ro + go + bo) / 3
        dimmed = (
            (n < test.shadow_ratio * no)
            & (vis < test.shadow_ratio * vis_o)
            & (no >= test.shadow_min_nir_other)
        )
        return dark | dimmed


def validity_array(
    values: np.ndarray,
    names: Sequence[str],
    *,
    test: CloudTest | None = None,
    cloud_mask: Mapping[str, np.ndarray] | None = None,
    detect: bool = True,
) -> tuple[list[str], np.ndarray]:
    """:func:`validity` on a numpy (band, y, x) block; returns (group names, bool (group, y, x), True =
    valid).

    ``cloud_mask`` maps a season (or a group name) to a bool (y, x) array, True = unusable. ``detect=False``
    skips the RGBN brightness/shadow test (only NaN, explicit and Sentinel-2 masks).
    """
    test = test or CloudTest()
    names = [str(n) for n in names]
    index = {n: i for i, n in enumerate(names)}
    groups = group_bands(names)
    shape = values.shape[1:]
    valid = np.ones((len(groups), *shape), bool)
    for g, (group, idx) in enumerate(groups.items()):
        valid[g] = np.isfinite(values[idx]).all(axis=0)
    flagged: dict[str, np.ndarray] = {}
    rgbn = {season: _rgbn(values, index, season) for season in SEASONS}
    bright = {season: _cloud_test(*v, test) for season, v in rgbn.items() if v is not None}
    for season in SEASONS:
        group = f"optical_{season}"
        if group not in groups:
            continue
        bad = np.zeros(shape, bool)
        prob, scl = index.get(f"cloud_prob_{season}"), index.get(f"scl_{season}")
        if prob is not None:
            with np.errstate(invalid="ignore"):
                bad |= values[prob] > test.cloud_probability_max
        if scl is not None:
            bad |= np.isin(np.nan_to_num(values[scl], nan=0).astype(np.int64), SCL_INVALID)
        if detect and prob is None and scl is None:
            own = rgbn[season]
            if own is not None:
                other_season = next(s for s in SEASONS if s != season)
                other = rgbn[other_season]
                cloud = bright[season] & _brighter(own, other, test)
                shadow = _shadow_test(own, other, test)
                if other is not None:  # "darker than the other season" means nothing where that one is cloudy
                    shadow &= ~_dilate(bright[other_season], test.buffer_px + 1)
                if test.cleanup:
                    cloud, shadow = _majority3(cloud), _majority3(shadow)
                bad |= _dilate(cloud | shadow, test.buffer_px)
        flagged[group] = bad
    for key, mask in (cloud_mask or {}).items():
        group = key if key in groups else f"optical_{key}"
        if group not in groups:
            continue
        mask = np.asarray(mask, bool)
        if mask.shape != shape:
            raise InvalidInputError(f"the cloud mask of {key!r} has shape {mask.shape}, the stack {shape}")
        flagged[group] = flagged.get(group, np.zeros(shape, bool)) | mask
    order = list(groups)
    for group, bad in flagged.items():
        valid[order.index(group)] &= ~bad
    return order, valid


def season_masks(cloud_mask: xr.DataArray | None, stack: xr.DataArray) -> dict[str, np.ndarray] | None:
    """Check an explicit mask lies on the stack's grid; return {season or group: bool array}."""
    if cloud_mask is None:
        return None
    from .labels import align_labels

    if not isinstance(cloud_mask, xr.DataArray):
        raise InvalidInputError(
            "cloud_mask must be an xr.DataArray (y, x) or (season, y, x) of booleans (True = cloudy) on the "
            "stack's grid"
        )
    if cloud_mask.ndim == 2:
        cloud_mask = cloud_mask.expand_dims(season=["during"])
    lead = [d for d in cloud_mask.dims if d not in ("y", "x")]
    if len(lead) != 1 or set(cloud_mask.dims) != {lead[0], "y", "x"}:
        raise InvalidInputError(f"cloud_mask must have dims (y, x) or (season, y, x), got {cloud_mask.dims}")
    out = {}
    for key in cloud_mask[lead[0]].values:
        layer = cloud_mask.sel({lead[0]: key}, drop=True).astype(np.int16)
        try:
            layer = align_labels(layer, stack)
        except InvalidInputError as err:
            raise InvalidInputError(f"the cloud mask is on a different grid than the stack: {err}") from None
        out[str(key)] = layer.values.astype(bool)
    return out


def validity(
    stack: xr.DataArray,
    *,
    cloud_mask: xr.DataArray | None = None,
    test: CloudTest | None = None,
    detect: bool = True,
) -> xr.DataArray:
    """Per-group, per-pixel validity of a stack's bands (True = usable); see the module docstring for the
    rules.

    Parameters
    ----------
    stack
        (band, y, x) feature stack; ``cloud_prob_<season>`` / ``scl_<season>`` bands, if present, are used as
        masks (never as features).
    cloud_mask
        Optional bool ``(y, x)`` (the during season) or ``(season, y, x)`` mask on the stack's grid, True =
        cloud, shadow or otherwise unusable.
    test
        Thresholds of the RGBN tests.
    detect
        Run the RGBN brightness/shadow test where no Sentinel-2 mask band exists.

    Returns
    -------
    xr.DataArray
        bool ``(group, y, x)`` on the stack's grid.

    Raises
    ------
    InvalidInputError
        The mask is not on the stack's grid.
    """
    stack = check_stack(stack)
    masks = season_masks(cloud_mask, stack)
    names = [str(b) for b in stack["band"].values]
    groups, valid = validity_array(stack.values, names, test=test, cloud_mask=masks, detect=detect)
    out = xr.DataArray(
        valid,
        dims=("group", "y", "x"),
        coords={"group": groups, "y": stack["y"].values, "x": stack["x"].values},
        name="valid",
        attrs={"long_name": "band group holds usable data", "units": "1"},
    )
    if stack.rio.crs is not None:
        out = out.rio.write_crs(stack.rio.crs)
    return out


# --- cloud layers: shared by the synthetic scenes and the training augmentation -----------------------------


def cloud_layer(
    rng: np.random.Generator,
    shape: tuple[int, int],
    fraction: float,
    *,
    scale_px: float,
    anisotropy: float = 1.0,
    edge: float = 3.0,
    shadow_offset_px: tuple[float, float] = (0.0, 0.0),
) -> tuple[np.ndarray, np.ndarray]:
    """Cloud opacity and shadow strength (both 0–1, (y, x)) of a blob field covering ``fraction`` of
    ``shape``.

    Blobs are a thresholded Gaussian random field of correlation length ``scale_px`` (``anisotropy`` > 1
    stretches them along x: streaks); opacity ramps from 0.3 at the blob edge to 1 inside (thin edges, which a
    brightness test partly misses). The shadow is the opacity moved by ``shadow_offset_px`` (dy, dx) — clouds
    outside the frame cast shadows into it, so the field is drawn on a canvas padded by the offset.
    """
    from scipy.ndimage import gaussian_filter

    h, w = shape
    if fraction <= 0:
        z = np.zeros(shape, np.float32)
        return z, z.copy()
    dy, dx = (round(float(v)) for v in shadow_offset_px)
    pad_y, pad_x = abs(dy), abs(dx)
    H, W = h + 2 * pad_y, w + 2 * pad_x
    field = gaussian_filter(
        rng.standard_normal((H, W)), sigma=(max(scale_px, 0.5), max(scale_px * anisotropy, 0.5)), mode="wrap"
    )
    field = (field - field.mean()) / (field.std() + 1e-12)
    inner = field[pad_y : pad_y + h, pad_x : pad_x + w]
    cut = np.quantile(inner, 1 - min(fraction, 1.0))
    opacity_full = np.where(field > cut, np.clip((field - cut) * edge, 0.3, 1.0), 0.0).astype(np.float32)
    opacity = opacity_full[pad_y : pad_y + h, pad_x : pad_x + w]
    # the shadow at (r, c) is cast by the cloud at (r - dy, c - dx)
    shadow = opacity_full[pad_y - dy : pad_y - dy + h, pad_x - dx : pad_x - dx + w]
    return opacity, np.where(opacity > 0, 0.0, shadow).astype(np.float32)


#: Reflectance of a thick cloud in red, green, blue, nir (bright, flat, slightly blue).
CLOUD_REFLECTANCE = (0.32, 0.33, 0.35, 0.38)


def apply_clouds(
    optical: np.ndarray,
    opacity: np.ndarray,
    shadow: np.ndarray,
    *,
    cloud_reflectance: Sequence[float] = CLOUD_REFLECTANCE,
    shadow_light: float = 0.4,
) -> np.ndarray:
    """Blend cloud reflectance into (4, y, x) red/green/blue/nir by ``opacity``; dim by ``shadow``.

    A full shadow keeps ``shadow_light`` of the light (the diffuse sky), in every band alike.
    """
    bright = np.asarray(cloud_reflectance, np.float32)[:, None, None]
    out = (1 - opacity) * optical + opacity * bright
    return (out * (1 - shadow * (1 - shadow_light))).astype(optical.dtype)


def augment(
    values: np.ndarray,
    names: Sequence[str],
    rng: np.random.Generator,
    *,
    seasons: Sequence[str] = ("during",),
    probability: float = 0.5,
    max_fraction: float = 0.5,
    return_cores: bool = False,
) -> np.ndarray | tuple[np.ndarray, dict[str, np.ndarray]]:
    """Training-time clouds and shadows on a raw (band, y, x) patch (reflectance 0–1), per season with
    probability ``probability``: cover 5 %–``max_fraction``, blob size 3–20 px, streak ratio 1–3, thin edges,
    shadow offset 4–25 px along a random sun azimuth, shadows keeping 25–60 % of the light, cloud brightness
    ±30 %. Returns a new array (the input is not changed); with ``return_cores`` also ``{season: bool (y,
    x)}`` where the drawn cloud or shadow is at least half strength (for masks that cannot see drawn clouds).
    """
    index = {str(n): i for i, n in enumerate(names)}
    out = values
    cores: dict[str, np.ndarray] = {}
    for season in seasons:
        idx = [index.get(f"{b}_{season}") for b in ("red", "green", "blue", "nir")]
        if any(i is None for i in idx) or rng.random() >= probability:
            continue
        if out is values:
            out = values.copy()
        h, w = values.shape[1:]
        azimuth = rng.uniform(0, 2 * np.pi)
        length = rng.uniform(4, 25)
        opacity, shadow = cloud_layer(
            rng,
            (h, w),
            rng.uniform(0.05, max_fraction),
            scale_px=rng.uniform(3, 20),
            anisotropy=rng.uniform(1, 3),
            edge=rng.uniform(1.5, 5),
            shadow_offset_px=(length * np.cos(azimuth), length * np.sin(azimuth)),
        )
        if h == w and rng.random() < 0.5:  # streaks along y as often as along x
            opacity, shadow = opacity.T.copy(), shadow.T.copy()
        gain = rng.uniform(0.7, 1.3)
        out[idx] = apply_clouds(
            out[idx],
            opacity,
            shadow,
            cloud_reflectance=np.asarray(CLOUD_REFLECTANCE) * gain,
            shadow_light=rng.uniform(0.25, 0.6),
        )
        cores[season] = (opacity >= 0.5) | (shadow >= 0.5)
    return (out, cores) if return_cores else out
