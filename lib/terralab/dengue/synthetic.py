"""Synthetic dengue data with known structure: weekly cases, covariates and Sentinel-2-like cubes with clouds.

Generative model per location ℓ and week t (all documented numbers are returned in ``attrs["truth"]``):

* rain_t (mm/day) = max(0, 5 + 3 sin(2π t/52 + φℓ + 1) + N(0, 1.5)); temperature_t (°C) = 25 + 2 sin(2π t/52 +
  φℓ) + N(0, 0.5); z_t is rain standardised over the whole series.
* log μ_t = log(base_rate) + season_amplitude · sin(2π t/52 + φℓ) + rain_effect · z_{t − rain_lag_weeks} +
  u_t, with u_t = ar · u_{t−1} + N(0, noise_sd) (a latent AR(1) outbreak process).
* cases_t ~ NegativeBinomial(mean μ_t, Var = μ_t + dispersion · μ_t²).

Image cubes (:func:`synthetic_s2_cube`) show a fixed landscape of vegetation, built-up and water pixels with
12-band spectra; each week the vegetation's greenness follows a chosen driver (by default the rain anomaly
z_t, so images carry the same information as the rain covariate). Cloud tiles (bright, flat spectrum) and
shadow tiles (dark) are drawn at random on the ``n_tiles`` grid; their classes are returned, as is the clear
cube.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InvalidInputError
from . import weeks as _weeks
from .clouds import CLEAR, CLOUD, SHADOW, tile_edges
from .imagery import S2_BANDS

# mean reflectance spectra of three surface types over S2_BANDS (typical values, L2A)
_SPECTRA = {
    "vegetation": np.array([0.03, 0.04, 0.07, 0.04, 0.10, 0.25, 0.30, 0.33, 0.35, 0.36, 0.18, 0.09]),
    "builtup": np.array([0.10, 0.12, 0.14, 0.16, 0.18, 0.20, 0.21, 0.22, 0.23, 0.23, 0.28, 0.25]),
    "water": np.array([0.06, 0.07, 0.06, 0.04, 0.03, 0.02, 0.02, 0.02, 0.02, 0.02, 0.01, 0.01]),
}
_BARE_SOIL = np.array([0.08, 0.10, 0.13, 0.17, 0.20, 0.22, 0.24, 0.25, 0.26, 0.27, 0.33, 0.28])


def _locations(locations) -> list:
    if isinstance(locations, (int, np.integer)):
        return list(range(1, int(locations) + 1))
    locs = list(locations)
    if not locs:
        raise InvalidInputError("need at least one location")
    return locs


def _drivers(n_weeks: int, locations: list, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    t = np.arange(n_weeks)
    out = {}
    for k, loc in enumerate(locations):
        phase = 2 * np.pi * k / max(len(locations), 1)
        rain = np.maximum(0.0, 5 + 3 * np.sin(2 * np.pi * t / 52 + phase + 1) + rng.normal(0, 1.5, n_weeks))
        temp = 25 + 2 * np.sin(2 * np.pi * t / 52 + phase) + rng.normal(0, 0.5, n_weeks)
        out[loc] = {
            "phase": phase,
            "rain": rain,
            "temperature": temp,
            "z": (rain - rain.mean()) / rain.std(),
            "rng_state": int(rng.integers(2**31)),
        }
    return out


def synthetic_covariates(
    n_weeks: int = 312, locations: int | Sequence[Hashable] = 3, start: str = "2012w01", seed: int = 0
) -> pd.DataFrame:
    """Weekly ``rain`` (mm/day) and ``temperature`` (°C) per location, columns (variable, location).

    The same ``n_weeks``, ``locations``, ``start`` and ``seed`` as :func:`synthetic_cases` give the covariates
    that drove those cases.
    """
    locs = _locations(locations)
    idx = _weeks.week_index(start, _weeks.week_end(start) + pd.Timedelta(weeks=n_weeks - 1))
    d = _drivers(n_weeks, locs, seed)
    frames = {
        var: pd.DataFrame({loc: d[loc][var] for loc in locs}, index=idx) for var in ("rain", "temperature")
    }
    out = pd.concat(frames, axis=1, names=["variable", "location"])
    out.index.name = "week"
    out.attrs = {"source": "synthetic", "units": {"rain": "mm/day", "temperature": "degC"}}
    return out


def synthetic_cases(
    n_weeks: int = 312,
    locations: int | Sequence[Hashable] = 3,
    start: str = "2012w01",
    seed: int = 0,
    *,
    base_rate: float | Sequence[float] = 40.0,
    season_amplitude: float = 0.8,
    rain_effect: float = 0.5,
    rain_lag_weeks: int = 3,
    ar: float = 0.8,
    noise_sd: float = 0.15,
    dispersion: float = 0.02,
) -> pd.DataFrame:
    """Weekly case counts with seasonal, covariate-driven and autoregressive structure (module docstring).

    Parameters
    ----------
    n_weeks : int
        Length of the series.
    locations : int or list
        Number of locations (codes 1..n) or their codes.
    start : week label
        First week.
    base_rate : float or one per location
        Median cases per week.
    season_amplitude : float
        Amplitude of the annual cycle of log μ.
    rain_effect, rain_lag_weeks : float, int
        Effect on log μ of one standard deviation of rain, ``rain_lag_weeks`` weeks earlier.
    ar, noise_sd : float
        AR(1) coefficient and innovation s.d. of the latent log-intensity.
    dispersion : float
        Negative-binomial α (0 gives Poisson).

    Returns
    -------
    DataFrame (week × location) like :func:`terralab.dengue.load_cases`, with ``attrs["truth"]`` (the
    parameters and the latent mean ``mu`` per location as lists).
    >>> cases = synthetic_cases(104, 3, start="2012w01", seed=0)
    >>> cases.shape, cases.index[0].date(), list(cases.columns)
    ((104, 3), datetime.date(2012, 1, 7), [1, 2, 3])
    """
    locs = _locations(locations)
    if n_weeks < rain_lag_weeks + 2:
        raise InvalidInputError("n_weeks must exceed rain_lag_weeks + 1")
    rates = np.broadcast_to(np.asarray(base_rate, dtype=float), (len(locs),))
    d = _drivers(n_weeks, locs, seed)
    idx = _weeks.week_index(start, _weeks.week_end(start) + pd.Timedelta(weeks=n_weeks - 1))
    t = np.arange(n_weeks)
    data, mus = {}, {}
    for k, loc in enumerate(locs):
        rng = np.random.default_rng(d[loc]["rng_state"])
        u = np.zeros(n_weeks)
        eps = rng.normal(0, noise_sd, n_weeks)
        for i in range(1, n_weeks):
            u[i] = ar * u[i - 1] + eps[i]
        z_lag = np.r_[np.zeros(rain_lag_weeks), d[loc]["z"][: n_weeks - rain_lag_weeks]]
        mu = np.exp(
            np.log(rates[k])
            + season_amplitude * np.sin(2 * np.pi * t / 52 + d[loc]["phase"])
            + rain_effect * z_lag
            + u
        )
        if dispersion > 0:
            shape = 1.0 / dispersion
            lam = rng.gamma(shape, mu / shape)
        else:
            lam = mu
        data[loc] = rng.poisson(lam).astype(float)
        mus[loc] = mu.tolist()
    cases = pd.DataFrame(data, index=idx)
    cases.columns.name = "location"
    cases.attrs = {
        "source": "synthetic",
        "units": "cases/week",
        "location_names": {c: f"synthetic {c}" for c in locs},
        "population": {},
        "imputed_weeks": [],
        "week_system": "MMWR",
        "truth": {
            "base_rate": rates.tolist(),
            "season_amplitude": season_amplitude,
            "rain_effect": rain_effect,
            "rain_lag_weeks": rain_lag_weeks,
            "ar": ar,
            "noise_sd": noise_sd,
            "dispersion": dispersion,
            "seed": seed,
            "mu": mus,
        },
    }
    return cases


def _landscape(size_px: int, rng: np.random.Generator) -> np.ndarray:
    """Per-pixel surface class 0 vegetation, 1 built-up, 2 water, as smooth random patches."""
    from scipy import ndimage

    field = ndimage.gaussian_filter(
        rng.normal(size=(2, size_px, size_px)), sigma=(0, size_px / 12, size_px / 12)
    )
    classes = np.zeros((size_px, size_px), dtype=int)
    classes[field[0] > np.quantile(field[0], 0.6)] = 1
    classes[field[1] > np.quantile(field[1], 0.9)] = 2
    return classes


def synthetic_s2_cube(
    weeks: pd.DatetimeIndex | int = 60,
    *,
    size_px: int = 64,
    n_tiles: int = 4,
    cloud_prob: float = 0.15,
    shadow_prob: float = 0.05,
    driver: np.ndarray | None = None,
    start: str = "2016w01",
    seed: int = 0,
) -> xr.Dataset:
    """One location's weekly 12-band cube with cloud and shadow tiles of known position.

    Parameters
    ----------
    weeks : DatetimeIndex of week ends, or a number of weeks from ``start``
    size_px : int
        Image side in pixels (10 m each).
    n_tiles : int
        Tiles per side of the grid on which clouds and shadows fall.
    cloud_prob, shadow_prob : float
        Chance that a tile is cloud / shadow in a week.
    driver : array (n_weeks,), optional
        Standardised weekly signal that sets vegetation greenness (greener when positive); default: random
        AR(1).

    Returns
    -------
    Dataset: ``cube`` (week, band, y, x) reflectance with clouds, ``clear`` the same without them,
    ``tile_class`` (week, tile_y, tile_x) 0 clear / 1 cloud / 2 shadow, ``driver`` (week).
    """
    if isinstance(weeks, (int, np.integer)):
        weeks = _weeks.week_index(start, _weeks.week_end(start) + pd.Timedelta(weeks=int(weeks) - 1))
    weeks = pd.DatetimeIndex(weeks, name="week")
    n = len(weeks)
    if not (0 <= cloud_prob <= 1 and 0 <= shadow_prob <= 1 and cloud_prob + shadow_prob <= 1):
        raise InvalidInputError("cloud_prob and shadow_prob must be probabilities with sum ≤ 1")
    rng = np.random.default_rng(seed)
    if driver is None:
        driver = np.zeros(n)
        for i in range(1, n):
            driver[i] = 0.8 * driver[i - 1] + rng.normal(0, 0.6)
    driver = np.asarray(driver, dtype=float)
    if driver.shape != (n,):
        raise InvalidInputError(f"driver must have one value per week ({n}), got shape {driver.shape}")
    classes = _landscape(size_px, rng)
    texture = 1 + 0.08 * rng.normal(size=(size_px, size_px))
    green = 1 / (1 + np.exp(-driver))  # 0..1: share of green (vs dry) vegetation
    veg = green[:, None] * _SPECTRA["vegetation"][None, :] + (1 - green[:, None]) * _BARE_SOIL[None, :]
    clear = np.empty((n, len(S2_BANDS), size_px, size_px), dtype=np.float32)
    for c, spec in ((0, None), (1, _SPECTRA["builtup"]), (2, _SPECTRA["water"])):
        m = classes == c
        s = veg if spec is None else np.broadcast_to(spec, (n, len(S2_BANDS)))
        clear[:, :, m] = s[:, :, None] * texture[m][None, None, :]
    clear += rng.normal(0, 0.003, clear.shape).astype(np.float32)
    clear = np.clip(clear, 0.0005, 1.0)
    cube = clear.copy()
    draw = rng.random((n, n_tiles, n_tiles))
    tile_class = np.where(draw < cloud_prob, CLOUD, np.where(draw < cloud_prob + shadow_prob, SHADOW, CLEAR))
    ey, ex = tile_edges(size_px, n_tiles), tile_edges(size_px, n_tiles)
    for w in range(n):
        for i, (y0, y1) in enumerate(ey):
            for j, (x0, x1) in enumerate(ex):
                if tile_class[w, i, j] == CLOUD:
                    cube[w, :, y0:y1, x0:x1] = (0.55 + 0.1 * rng.random()) * (
                        1 + 0.03 * rng.normal(size=(len(S2_BANDS), y1 - y0, x1 - x0))
                    )
                elif tile_class[w, i, j] == SHADOW:
                    cube[w, :, y0:y1, x0:x1] *= 0.2
    coords = {
        "week": weeks,
        "band": list(S2_BANDS),
        "y": np.arange(size_px) * -10.0,
        "x": np.arange(size_px) * 10.0,
    }
    ds = xr.Dataset(
        {
            "cube": (("week", "band", "y", "x"), cube),
            "clear": (("week", "band", "y", "x"), clear),
            "tile_class": (("week", "tile_y", "tile_x"), tile_class.astype(np.int8)),
            "driver": ("week", driver),
        },
        coords=coords,
        attrs={
            "units": "reflectance",
            "n_tiles": n_tiles,
            "cloud_prob": cloud_prob,
            "shadow_prob": shadow_prob,
            "seed": seed,
            "source": "synthetic",
        },
    )
    return ds


def synthetic_s2_cubes(
    weeks: pd.DatetimeIndex | int = 60,
    locations: int | Sequence[Hashable] = 3,
    *,
    drivers: pd.DataFrame | None = None,
    size_px: int = 64,
    n_tiles: int = 4,
    cloud_prob: float = 0.15,
    shadow_prob: float = 0.05,
    start: str = "2016w01",
    seed: int = 0,
) -> xr.DataArray:
    """Cloudy weekly cubes for several locations, as ``(location, week, band, y, x)`` (reflectance).

    ``drivers`` (week × location), when given, sets each location's vegetation greenness per week (e.g. the
    standardised rain of :func:`synthetic_covariates`, so the images carry known information about the cases);
    otherwise each location gets an independent random driver and the images say nothing about any case
    series.
    """
    if isinstance(weeks, (int, np.integer)):
        weeks = _weeks.week_index(start, _weeks.week_end(start) + pd.Timedelta(weeks=int(weeks) - 1))
    weeks = pd.DatetimeIndex(weeks, name="week")
    locs = _locations(locations)
    cubes = []
    for k, loc in enumerate(locs):
        drv = None
        if drivers is not None:
            if loc not in drivers.columns:
                raise InvalidInputError(f"drivers has no column for location {loc!r}")
            drv = drivers[loc].reindex(weeks).to_numpy()
            if np.isnan(drv).any():
                raise InvalidInputError("drivers do not cover every requested week")
        ds = synthetic_s2_cube(
            weeks,
            size_px=size_px,
            n_tiles=n_tiles,
            cloud_prob=cloud_prob,
            shadow_prob=shadow_prob,
            driver=drv,
            seed=seed + 1000 * k,
        )
        cubes.append(ds["cube"])
    out = xr.concat(cubes, dim=pd.Index(locs, name="location"))
    out.attrs = {
        "units": "reflectance",
        "source": "synthetic (terralab.dengue.synthetic.synthetic_s2_cubes)",
        "informative": drivers is not None,
        "n_tiles": n_tiles,
    }
    return out


def synthetic_dengue_dataset(
    n_weeks: int = 200,
    locations: int | Sequence[Hashable] = 2,
    start: str = "2014w01",
    seed: int = 0,
    *,
    size_px: int = 32,
    n_tiles: int = 4,
    rain_lag_weeks: int = 3,
    **case_params: Any,
) -> dict:
    """Cases, covariates and image cubes sharing one driver: images show the rain that drives the cases.

    Returns
    -------
    dict with ``cases`` (week × location), ``covariates`` ((variable, location) columns) and ``images``
    (location, week, band, y, x).
    """
    cases = synthetic_cases(n_weeks, locations, start, seed, rain_lag_weeks=rain_lag_weeks, **case_params)
    cov = synthetic_covariates(n_weeks, locations, start, seed)
    rain = cov["rain"]
    z = (rain - rain.mean()) / rain.std()
    images = synthetic_s2_cubes(
        cases.index, list(cases.columns), drivers=z, size_px=size_px, n_tiles=n_tiles, seed=seed
    )
    return {"cases": cases, "covariates": cov, "images": images}
