"""Earthquake catalogs: reading (Ridgecrest SCSN / GaMMA, stations) as GeoDataFrames, maps, magnitude of
completeness, Gutenberg–Richter b-value with uncertainty, and matching two catalogs.

* b-value: Aki (1965) maximum likelihood with Utsu's correction for binned magnitudes,
  ``b = log10(e) / (mean(M) − (Mc − ΔM/2))``; uncertainties by Aki (``b/√n``), Shi & Bolt (1982)
  (``2.30 b² √(Σ(M − M̄)² / (n(n−1)))``) and optionally a bootstrap.
* Mc: maximum curvature (the most populated magnitude bin, Wiemer & Wyss 2000) plus a correction
  (+0.2 by default, Woessner & Wiemer 2005), or b-value stability (Cao & Gao 2002, with Shi & Bolt's δb).
* Matching: one-to-one, minimising ``(Δt/t_tol)² + (Δd/d_tol)²`` over pairs within both tolerances
  (:func:`terralab.matching.match_one_to_one`: Hungarian assignment per connected group of candidate pairs),
  so close doublets are not matched twice.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import DataNotAvailableError, FileFormatError, InvalidInputError

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: Data-catalog names of the embedded copies (lib/terralab/data/seismic/ridgecrest/, MIT, from AI4EPS/GaMMA),
#: so the catalogs open offline with no mirror and no cache. The mirror entries without ``_package`` hold the
#: same bytes.
RIDGECREST_NAMES = {
    "scsn": "seismic_ridgecrest_catalog_scsn_package",
    "gamma": "seismic_ridgecrest_catalog_gamma_package",
    "stations": "seismic_ridgecrest_stations_package",
}
RIDGECREST_FILES = {"scsn": "catalog_scsn.csv", "gamma": "catalog_gamma.csv", "stations": "stations.csv"}
EARTH_RADIUS_KM = 6371.0
#: Units of the columns of :attr:`CatalogMatch.summary` ("count", "1" for a fraction, "s", "km").
SUMMARY_UNITS = {
    "n_reference": "count",
    "n_other": "count",
    "n_matched": "count",
    "n_missed": "count",
    "n_extra": "count",
    "recall": "1",
    "precision": "1",
    "dt_median_s": "s",
    "distance_median_km": "km",
    "time_tolerance_s": "s",
    "distance_tolerance_km": "km",
}


def _geodataframe(df: pd.DataFrame):
    import geopandas as gpd

    return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df["longitude"], df["latitude"]), crs="EPSG:4326")


def _read_table(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DataNotAvailableError(f"no catalog file at {path}")
    try:
        return pd.read_csv(path, sep=None, engine="python")  # the GaMMA test files are tab-separated
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise FileFormatError(f"{path} cannot be parsed as a delimited table: {exc}") from exc


def read_catalog(path: str | os.PathLike) -> Any:
    """Read an event catalog (CSV/TSV with ``time, magnitude, longitude, latitude`` and ``depth(m)`` or
    ``depth_km``).

    Returns
    -------
    geopandas.GeoDataFrame with ``time`` (UTC), ``magnitude``, ``latitude``, ``longitude``, ``depth_km`` and
    the file's other columns; point geometry in EPSG:4326, sorted by time.
    """
    path = Path(path)
    df = _read_table(path)
    if "depth(m)" in df.columns:
        df["depth_km"] = df.pop("depth(m)") / 1000.0
    missing = [c for c in ("time", "magnitude", "longitude", "latitude") if c not in df.columns]
    if missing:
        raise FileFormatError(f"{path.name} lacks catalog columns {missing}; it has {list(df.columns)}")
    df["time"] = pd.to_datetime(df["time"], utc=True, format="ISO8601")
    df = df.sort_values("time", ignore_index=True)
    out = _geodataframe(df)
    out.attrs.update({"source": path.name, "depth_units": "km"})
    return out


def read_stations(path: str | os.PathLike) -> Any:
    """Read a station table (``station`` as ``NET.STA.LOC.CH``, ``longitude``, ``latitude``,
    ``elevation(m)`` …).

    Returns
    -------
    geopandas.GeoDataFrame with ``station_id``, ``network``, ``station``, ``location``, ``instrument``,
    ``latitude``, ``longitude``, ``elevation_m`` and the other columns; EPSG:4326 points.
    """
    path = Path(path)
    df = _read_table(path)
    if "station" not in df.columns or "longitude" not in df.columns or "latitude" not in df.columns:
        raise FileFormatError(f"{path.name} lacks station, longitude or latitude columns")
    df = df.rename(columns={"station": "station_id", "elevation(m)": "elevation_m"})
    parts = df["station_id"].astype(str).str.split(".", expand=True).reindex(columns=range(4)).fillna("")
    df["network"], df["station"], df["location"], df["instrument"] = parts[0], parts[1], parts[2], parts[3]
    return _geodataframe(df)


def ridgecrest(catalog_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """The 2019 Ridgecrest catalogs (SCSN analyst, GaMMA machine learning) and the CI stations, as
    GeoDataFrames.

    By default the copies embedded in the package (data-catalog entries
    ``seismic_ridgecrest_catalog_scsn_package``, ``…_gamma_package``, ``seismic_ridgecrest_stations_package``;
    sha256-verified, no mirror or network needed). ``catalog_dir`` (a folder holding ``catalog_scsn.csv``,
    ``catalog_gamma.csv``, ``stations.csv``) is used instead when given.

    Returns
    -------
    dict with keys ``"scsn"``, ``"gamma"``, ``"stations"``.

    Raises
    ------
    DataNotAvailableError
        ``catalog_dir`` lacks one of the three files.
    """
    from terralab import catalog as data_catalog

    out = {}
    for key, name in RIDGECREST_NAMES.items():
        path = (
            Path(catalog_dir) / RIDGECREST_FILES[key]
            if catalog_dir is not None
            else Path(data_catalog.fetch(name))
        )
        out[key] = read_stations(path) if key == "stations" else read_catalog(path)
    return out


# ---------------------------------------------------------------------------------------------------
# frequency–magnitude statistics
# ---------------------------------------------------------------------------------------------------
def _magnitudes(magnitudes: Any) -> np.ndarray:
    if isinstance(magnitudes, pd.DataFrame):
        if "magnitude" not in magnitudes.columns:
            raise InvalidInputError("the catalog has no magnitude column")
        magnitudes = magnitudes["magnitude"]
    m = np.asarray(magnitudes, dtype=np.float64)
    m = m[np.isfinite(m)]
    if m.size == 0:
        raise InvalidInputError("no finite magnitudes")
    return m


def _bin(m: np.ndarray, bin_width: float) -> np.ndarray:
    return np.round(np.round(m / bin_width) * bin_width, 6) if bin_width > 0 else m


def frequency_magnitude(magnitudes: Any, bin_width: float = 0.1) -> pd.DataFrame:
    """Frequency–magnitude distribution: per magnitude bin, ``count`` and ``cumulative`` (events ≥ bin).

    Parameters
    ----------
    magnitudes : array-like, Series or catalog DataFrame
    bin_width : float
    """
    if bin_width <= 0:
        raise InvalidInputError("bin_width must be positive")
    m = _bin(_magnitudes(magnitudes), bin_width)
    lo, hi = m.min(), m.max()
    bins = np.round(np.arange(lo, hi + bin_width / 2, bin_width), 6)
    counts = np.array([(np.abs(m - b) < bin_width / 2).sum() for b in bins])
    return pd.DataFrame({"magnitude": bins, "count": counts, "cumulative": counts[::-1].cumsum()[::-1]})


def b_value(
    magnitudes: Any, mc: float, bin_width: float = 0.1, n_bootstrap: int = 0, seed: int = 0
) -> pd.Series:
    """Gutenberg–Richter b-value (Aki–Utsu maximum likelihood) of the events with magnitude ≥ mc.

    Parameters
    ----------
    magnitudes : array-like, Series or catalog DataFrame
    mc : float
        Magnitude of completeness (a bin centre when magnitudes are binned).
    bin_width : float
        Magnitude binning ΔM of the catalog (0 for continuous magnitudes).
    n_bootstrap : int
        Bootstrap resamples for ``b_std_bootstrap`` (0: skip).
    seed : int

    Returns
    -------
    pd.Series: ``b``, ``a`` (log10 of the number ≥ mc, plus b·mc), ``n``, ``mc``, ``mean_magnitude``,
    ``b_std_aki``, ``b_std_shi_bolt``, ``b_std_bootstrap``.

    Example
    -------
    >>> from terralab.seismic import synthetic
    >>> cat = synthetic.gutenberg_richter_catalog(n=2000, b_value=1.0, mc=1.0)   # true b = 1.0
    >>> fit = b_value(cat, mc=1.0)
    >>> round(float(fit["b"]), 2), round(float(fit["b_std_aki"]), 2)
    (0.99, 0.02)
    """
    m = _bin(_magnitudes(magnitudes), bin_width)
    m = m[m >= mc - 1e-9]
    n = m.size
    if n < 2:
        raise InvalidInputError(
            f"only {n} events at or above mc={mc}; a b-value needs many more (≥ 50 advisable)"
        )
    mean = m.mean()
    denom = mean - (mc - bin_width / 2)
    if denom <= 0:
        raise InvalidInputError("mean magnitude is not above mc − ΔM/2; check mc and bin_width")
    b = np.log10(np.e) / denom
    shi_bolt = 2.30 * b**2 * np.sqrt(((m - mean) ** 2).sum() / (n * (n - 1)))
    boot = np.nan
    if n_bootstrap > 0:
        rng = np.random.default_rng(seed)
        samples = rng.choice(m, size=(n_bootstrap, n), replace=True)
        bs = np.log10(np.e) / (samples.mean(axis=1) - (mc - bin_width / 2))
        boot = float(np.std(bs, ddof=1))
    return pd.Series(
        {
            "b": float(b),
            "a": float(np.log10(n) + b * mc),
            "n": int(n),
            "mc": float(mc),
            "mean_magnitude": float(mean),
            "b_std_aki": float(b / np.sqrt(n)),
            "b_std_shi_bolt": float(shi_bolt),
            "b_std_bootstrap": boot,
        }
    )


def magnitude_of_completeness(
    magnitudes: Any,
    method: str = "maxc",
    bin_width: float = 0.1,
    correction: float = 0.2,
    min_events: int = 50,
) -> float:
    """Magnitude of completeness Mc.

    Parameters
    ----------
    magnitudes : array-like, Series or catalog DataFrame
    method : {"maxc", "mbs"}
        ``"maxc"``: the most populated bin plus ``correction`` (maximum curvature, which underestimates
        Mc by ~0.2 for gradual roll-offs). ``"mbs"``: the smallest Mc whose b-value stays within Shi & Bolt's
        δb of the mean b over the next 0.5 magnitude units (Cao & Gao 2002; Woessner & Wiemer 2005).
    bin_width : float
    correction : float
        Added to the maximum-curvature estimate (``"maxc"`` only).
    min_events : int
        ``"mbs"``: trial Mc values need at least this many events above them.
    """
    fmd = frequency_magnitude(magnitudes, bin_width)
    maxc = float(fmd["magnitude"].iloc[int(np.argmax(fmd["count"].to_numpy()))])
    if method == "maxc":
        return round(maxc + correction, 6)
    if method != "mbs":
        raise InvalidInputError(f"method must be 'maxc' or 'mbs', got {method!r}")
    m = _bin(_magnitudes(magnitudes), bin_width)
    n_avg = round(float(0.5 / bin_width))
    trials = fmd["magnitude"].to_numpy()
    for mc in trials[trials >= maxc - 0.5]:
        if (m >= mc - 1e-9).sum() < min_events:
            break
        later = [c for c in mc + bin_width * np.arange(1, n_avg + 1) if (m >= c - 1e-9).sum() >= min_events]
        if len(later) < n_avg:
            break
        est = b_value(m, mc, bin_width)
        b_avg = np.mean([b_value(m, c, bin_width)["b"] for c in later] + [est["b"]])
        if abs(b_avg - est["b"]) <= est["b_std_shi_bolt"]:
            return round(float(mc), 6)
    return round(maxc + correction, 6)


def plot_frequency_magnitude(
    magnitudes: Any,
    mc: float | None = None,
    b: pd.Series | None = None,
    bin_width: float = 0.1,
    ax: Any = None,
    label: str | None = None,
) -> Axes:
    """Plot the cumulative and non-cumulative frequency–magnitude distribution, with the G-R fit if given."""
    import matplotlib.pyplot as plt

    fmd = frequency_magnitude(magnitudes, bin_width)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    line = ax.semilogy(fmd["magnitude"], fmd["cumulative"], "o", ms=3, label=f"{label or 'catalog'} N(≥M)")[0]
    ax.semilogy(
        fmd["magnitude"], fmd["count"].where(fmd["count"] > 0), "^", ms=3, color=line.get_color(), alpha=0.4
    )
    if b is not None:
        mm = fmd["magnitude"][fmd["magnitude"] >= b["mc"] - 1e-9]
        ax.semilogy(
            mm,
            10 ** (b["a"] - b["b"] * mm),
            "-",
            color=line.get_color(),
            label=f"b = {b['b']:.2f} ± {b['b_std_shi_bolt']:.2f}",
        )
    if mc is not None:
        ax.axvline(mc, ls="--", color=line.get_color(), lw=0.8)
    ax.set_xlabel("magnitude")
    ax.set_ylabel("number of events")
    ax.legend(fontsize=8)
    return ax


def plot_catalog_map(
    events: Any,
    stations: Any = None,
    other: Any = None,
    ax: Any = None,
    labels: tuple[str, str] = ("catalog", "other"),
) -> Axes:
    """Map of events (circles sized by magnitude) and stations (triangles); lon/lat axes, no basemap.

    Parameters
    ----------
    events : GeoDataFrame from :func:`read_catalog`
    stations : GeoDataFrame from :func:`read_stations`, optional
    other : GeoDataFrame, optional
        A second catalog drawn beneath (e.g. GaMMA beside SCSN).
    ax : matplotlib Axes, optional
    labels : names of ``events`` and ``other`` in the legend
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    size = lambda df: 2.0 * np.clip(df["magnitude"].to_numpy() + 1.0, 0.3, None) ** 2
    if other is not None:
        ax.scatter(
            other["longitude"],
            other["latitude"],
            s=size(other),
            facecolor="none",
            edgecolor="0.5",
            lw=0.5,
            label=f"{labels[1]} ({len(other)})",
        )
    ax.scatter(
        events["longitude"],
        events["latitude"],
        s=size(events),
        c="tab:red",
        alpha=0.6,
        lw=0,
        label=f"{labels[0]} ({len(events)})",
    )
    if stations is not None:
        sta = stations.drop_duplicates(["network", "station"])
        ax.scatter(sta["longitude"], sta["latitude"], marker="^", s=40, c="k", label=f"stations ({len(sta)})")
    ax.set_xlabel("longitude (°)")
    ax.set_ylabel("latitude (°)")
    ax.set_aspect(1 / np.cos(np.radians(np.nanmean(events["latitude"]))))
    ax.legend(fontsize=8, loc="best")
    return ax


# ---------------------------------------------------------------------------------------------------
# matching
# ---------------------------------------------------------------------------------------------------
def haversine_km(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> np.ndarray:
    """Great-circle distance in km between points given in degrees (broadcasting), on a 6371-km sphere.

    Kept rather than ``pyproj.Geod`` (WGS84 geodesic): the ellipsoid moves distances by ~0.04 % at Ridgecrest,
    which swaps 3 of the 703 SCSN–GaMMA pairs among near-simultaneous events (3 s / 20 km; counts unchanged),
    so catalog matches would no longer equal the published ones of this package.
    """
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlmb = np.radians(lon2) - np.radians(lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


@dataclass
class CatalogMatch:
    """Result of :func:`match_catalogs`."""

    matched: pd.DataFrame  #: one row per matched pair: reference and other columns, dt_s, distance_km
    missed: Any  #: reference events without a partner (GeoDataFrame)
    extra: Any  #: other events without a partner (GeoDataFrame)
    summary: pd.DataFrame  #: one row: counts, recall and precision of ``other`` against ``reference``


def match_catalogs(
    reference: Any,
    other: Any,
    time_tolerance_s: float = 3.0,
    distance_tolerance_km: float = 20.0,
) -> CatalogMatch:
    """Match two event catalogs one-to-one within a time and an epicentral-distance tolerance.

    Parameters
    ----------
    reference, other : DataFrame / GeoDataFrame
        Columns ``time`` (UTC), ``latitude``, ``longitude``, ``magnitude``.
    time_tolerance_s : float
        Largest origin-time difference of a match, in s.
    distance_tolerance_km : float
        Largest epicentral distance of a match, in km.

    Returns
    -------
    CatalogMatch with ``matched`` (columns ``time_ref, time_other, dt_s, distance_km, magnitude_ref,
    magnitude_other, dmag, index_ref, index_other`` …), ``missed``, ``extra`` and ``summary`` (a one-row
    DataFrame: ``n_reference, n_other, n_matched, n_missed, n_extra, recall, precision, dt_median_s,
    distance_median_km, time_tolerance_s, distance_tolerance_km``; units in ``attrs["units"]``).
    """
    for name, df in (("reference", reference), ("other", other)):
        missing = [c for c in ("time", "latitude", "longitude") if c not in df.columns]
        if missing:
            raise InvalidInputError(f"{name} catalog lacks columns {missing}")
    if time_tolerance_s <= 0 or distance_tolerance_km <= 0:
        raise InvalidInputError("tolerances must be positive")
    na, nb = len(reference), len(other)
    candidates = _candidate_pairs(reference, other, time_tolerance_s, distance_tolerance_km)
    pairs = _assign_one_to_one(*candidates)
    ia = np.array([p[0] for p in pairs], dtype=int)
    ib = np.array([p[1] for p in pairs], dtype=int)
    matched = _matched_table(reference, other, pairs, ia, ib)
    missed = reference.iloc[np.setdiff1d(np.arange(na), ia)]
    extra = other.iloc[np.setdiff1d(np.arange(nb), ib)]
    summary = pd.DataFrame(
        [
            {
                "n_reference": na,
                "n_other": nb,
                "n_matched": len(pairs),
                "n_missed": len(missed),
                "n_extra": len(extra),
                "recall": len(pairs) / na if na else np.nan,
                "precision": len(pairs) / nb if nb else np.nan,
                "dt_median_s": float(np.median(matched["dt_s"])) if len(pairs) else np.nan,
                "distance_median_km": float(np.median(matched["distance_km"])) if len(pairs) else np.nan,
                "time_tolerance_s": time_tolerance_s,
                "distance_tolerance_km": distance_tolerance_km,
            }
        ]
    )
    summary.attrs["units"] = dict(SUMMARY_UNITS)
    return CatalogMatch(matched, missed, extra, summary)


def _candidate_pairs(reference, other, time_tolerance_s: float, distance_tolerance_km: float):
    """(rows, cols, costs, dts, dds): every pair within both tolerances, its cost and differences."""
    ta = pd.to_datetime(reference["time"], utc=True).astype("int64").to_numpy() / 1e9
    tb = pd.to_datetime(other["time"], utc=True).astype("int64").to_numpy() / 1e9
    order_b = np.argsort(tb)
    tb_sorted = tb[order_b]
    rows, cols, costs, dts, dds = [], [], [], [], []
    lat_a, lon_a = reference["latitude"].to_numpy(), reference["longitude"].to_numpy()
    lat_b, lon_b = other["latitude"].to_numpy(), other["longitude"].to_numpy()
    lo = np.searchsorted(tb_sorted, ta - time_tolerance_s, side="left")
    hi = np.searchsorted(tb_sorted, ta + time_tolerance_s, side="right")
    for i in range(len(ta)):
        js = order_b[lo[i] : hi[i]]
        if js.size == 0:
            continue
        d = haversine_km(lat_a[i], lon_a[i], lat_b[js], lon_b[js])
        dt = tb[js] - ta[i]
        ok = d <= distance_tolerance_km
        for j, dti, di in zip(js[ok], dt[ok], d[ok]):
            rows.append(i)
            cols.append(j)
            costs.append((dti / time_tolerance_s) ** 2 + (di / distance_tolerance_km) ** 2)
            dts.append(dti)
            dds.append(di)
    return rows, cols, costs, dts, dds


def _assign_one_to_one(rows, cols, costs, dts, dds) -> list[tuple[int, int, float, float]]:
    """Least-cost one-to-one pairs (index_ref, index_other, dt, distance), sorted by both indices
    (:func:`terralab.matching.match_one_to_one` on the candidate pairs)."""
    from ..matching import match_one_to_one

    candidates = pd.DataFrame(
        {
            "row": np.asarray(rows, dtype=int),
            "column": np.asarray(cols, dtype=int),
            "cost": np.asarray(costs, dtype=float),
            "dt_s": np.asarray(dts, dtype=float),
            "distance_km": np.asarray(dds, dtype=float),
        }
    )
    chosen = match_one_to_one(candidates)
    return [
        (int(r), int(c), float(dt), float(d))
        for r, c, dt, d in zip(chosen["row"], chosen["column"], chosen["dt_s"], chosen["distance_km"])
    ]


def _matched_table(reference, other, pairs, ia, ib) -> pd.DataFrame:
    """One row per matched pair: indices, times, differences, positions and magnitudes of both events."""
    na, nb = len(reference), len(other)
    ref_t = pd.to_datetime(reference["time"], utc=True).to_numpy()
    oth_t = pd.to_datetime(other["time"], utc=True).to_numpy()
    lat_a, lon_a = reference["latitude"].to_numpy(), reference["longitude"].to_numpy()
    lat_b, lon_b = other["latitude"].to_numpy(), other["longitude"].to_numpy()
    mag_a = reference["magnitude"].to_numpy() if "magnitude" in reference.columns else np.full(na, np.nan)
    mag_b = other["magnitude"].to_numpy() if "magnitude" in other.columns else np.full(nb, np.nan)
    matched = pd.DataFrame(
        {
            "index_ref": reference.index.to_numpy()[ia],
            "index_other": other.index.to_numpy()[ib],
            "time_ref": pd.to_datetime(ref_t[ia], utc=True),
            "time_other": pd.to_datetime(oth_t[ib], utc=True),
            "dt_s": [p[2] for p in pairs],
            "distance_km": [p[3] for p in pairs],
            "latitude_ref": lat_a[ia],
            "longitude_ref": lon_a[ia],
            "latitude_other": lat_b[ib],
            "longitude_other": lon_b[ib],
            "magnitude_ref": mag_a[ia],
            "magnitude_other": mag_b[ib],
        }
    )
    matched["dmag"] = matched["magnitude_other"] - matched["magnitude_ref"]
    return matched


def completeness_table(
    catalogs: dict[str, Any],
    bin_width: float = 0.1,
    methods: Iterable[str] = ("maxc", "mbs"),
    n_bootstrap: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """Mc (each method) and the b-value at the maxc Mc with its uncertainties, one row per catalog."""
    rows = []
    for name, cat in catalogs.items():
        row: dict[str, Any] = {"catalog": name, "n_events": len(cat)}
        for method in methods:
            row[f"mc_{method}"] = magnitude_of_completeness(cat, method=method, bin_width=bin_width)
        mc = row[f"mc_{next(iter(methods))}"]
        b = b_value(cat, mc, bin_width, n_bootstrap=n_bootstrap, seed=seed)
        row.update(
            {
                "mc_used": mc,
                "n_above_mc": int(b["n"]),
                "b": b["b"],
                "b_std_aki": b["b_std_aki"],
                "b_std_shi_bolt": b["b_std_shi_bolt"],
                "b_std_bootstrap": b["b_std_bootstrap"],
                "a": b["a"],
            }
        )
        rows.append(row)
    return pd.DataFrame(rows)


def plot_completeness(
    catalogs: dict[str, Any], table: pd.DataFrame, bin_width: float = 0.1, ax: Any = None
) -> Axes:
    """Frequency–magnitude plots of several catalogs with their Mc and G-R fit (rows of
    :func:`completeness_table`)."""
    rows = table.set_index("catalog")
    for name, cat in catalogs.items():
        mc = float(rows.loc[name, "mc_used"])
        ax = plot_frequency_magnitude(
            cat, mc=mc, b=b_value(cat, mc, bin_width), bin_width=bin_width, ax=ax, label=name
        )
    return ax
