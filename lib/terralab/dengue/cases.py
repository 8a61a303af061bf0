"""Weekly dengue case counts and covariates in one tidy form.

:func:`load_cases` returns a ``pandas.DataFrame`` indexed by the Saturday ending each MMWR epi-week (index
name ``week``, frequency ``W-SAT``), one float column per location, values in cases per week. Colombian and
Brazilian locations are integer DANE / IBGE municipality codes; DengAI's cities are ``"sj"`` (San Juan) and
``"iq"`` (Iquitos). Metadata travel in ``DataFrame.attrs``:

``source``           the source name passed to :func:`load_cases`
``units``            ``"cases/week"``
``location_names``   {code: municipality name}
``population``       {code: {year: persons}} where the source has it (Colombia: DANE yearly projections),
                     else {}. :func:`population` returns it as a year × location DataFrame.
``imputed_weeks``    labels (``"2008w53"``) of rows the source has no count for and that were filled
                     (week-53 rule)
``week_system``      ``"MMWR"`` (or how ISO weeks were mapped onto it, for DengAI)

Sources (:func:`available_sources`):

=====================  ===================================================================================
``colombia_denguenet``  embedded extract (package data, offline): the five DengueNet municipalities,
                        2007w01–2019w52, from the SIVIGILA table below (default)
``colombia``            catalog ``dengue_colombia_weekly_cases``: 1,122 municipalities, 2007w01–2019w52
``colombia_top10``      catalog ``dengue_colombia_top10_climate_cases``: 10 municipalities with MODIS
                        temperature and CHIRPS precipitation
``dengai``              embedded copy (package data, offline) of catalog ``dengue_dengai_labels_train``
                        (+ features): San Juan 1990–2008, Iquitos 2000–2010
``rio``                 catalog ``dengue_rio_cases``: Rio de Janeiro (IBGE 330455), 2015–2023
=====================  ===================================================================================

Week 53 in the Colombian table
------------------------------
The SIVIGILA table has 52 week columns per year. MMWR years 2008 and 2014 have 53 weeks, and the table has no
separate count for week 53: the 52 columns sum exactly to the yearly totals, and week 52 is not inflated
(2008: w51 676, w52 484 cases nationally; 2014: 2081, 2038), so week 53 was not added to week 52 either.
Column ``YYYY/wNN`` is therefore placed on MMWR week NN of YYYY, and the missing week 53 is filled according
to ``week53_fill``: ``"interpolate"`` (default; the rounded mean of weeks 52 and the next week 01, so the
weekly axis stays regular) or ``"nan"``. Filled rows are listed in ``attrs["imputed_weeks"]``. The five
DengueNet test weeks (2018w37–w52) are not affected.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataNotAvailableError, FileFormatError, InvalidInputError
from . import weeks as _weeks
from .validation import align_covariates, validate_cases

__all__ = [
    "DENGAI_CITIES",
    "DENGUENET_MUNICIPALITIES",
    "EMBEDDED_CASES",
    "EMBEDDED_POPULATION",
    "PACKAGE_DATA",
    "RIO_CODE",
    "UnknownLocationError",
    "align_covariates",
    "available_sources",
    "has_covariates",
    "list_locations",
    "load_cases",
    "load_covariates",
    "population",
    "top_locations",
    "validate_cases",
]

PACKAGE_DATA = Path(__file__).resolve().parents[1] / "data" / "dengue"
EMBEDDED_CASES = PACKAGE_DATA / "colombia_denguenet_weekly_cases.csv"
EMBEDDED_POPULATION = PACKAGE_DATA / "colombia_denguenet_population.csv"

#: The five municipalities of DengueNet (Kuo et al. 2024), DANE code -> name.
DENGUENET_MUNICIPALITIES: dict[int, str] = {
    5001: "Medellín",
    76001: "Cali",
    73001: "Ibagué",
    50001: "Villavicencio",
    54001: "Cúcuta",
}
DENGAI_CITIES: dict[str, str] = {"sj": "San Juan", "iq": "Iquitos"}
RIO_CODE = 330455

_SOURCES: dict[str, str] = {
    "colombia_denguenet": "embedded extract: five DengueNet municipalities, SIVIGILA weekly cases 2007–2019",
    "colombia": "SIVIGILA weekly cases, 1,122 Colombian municipalities, 2007–2019 (catalog "
    "dengue_colombia_weekly_cases)",
    "colombia_top10": "10 Colombian municipalities with MODIS temperature and CHIRPS precipitation (catalog "
    "dengue_colombia_top10_climate_cases)",
    "dengai": "DengAI: San Juan 1990–2008, Iquitos 2000–2010, with NOAA weather and NDVI (embedded copy of "
    "catalog dengue_dengai_labels_train)",
    "rio": "Rio de Janeiro weekly probable cases 2015–2023, DATASUS (catalog dengue_rio_cases)",
}
_COVARIATE_SOURCES = ("colombia_denguenet", "colombia", "colombia_top10", "dengai")
WEEK53_FILLS = ("interpolate", "nan")


class UnknownLocationError(InvalidInputError, KeyError):
    """A location code that the source does not have. The message suggests close codes."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def available_sources() -> dict[str, str]:
    """Names of the case sources :func:`load_cases` reads, with a one-line description each."""
    return dict(_SOURCES)


# --------------------------------------------------------------------------------------------------
# file access
# --------------------------------------------------------------------------------------------------
def _fetch(name: str) -> Path:
    from .. import catalog

    return catalog.fetch(name, progress=False)


@functools.lru_cache(maxsize=8)
def _read_csv_cached(path: str, mtime: float, **kwargs) -> pd.DataFrame:
    kwargs = {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}
    try:
        return pd.read_csv(path, **kwargs)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise FileFormatError(f"cannot read {path} as CSV: {exc}") from exc


def _read_csv(path: Path, **kwargs) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise DataNotAvailableError(f"{path} does not exist")
    frozen = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    return _read_csv_cached(str(path), path.stat().st_mtime, **frozen).copy()


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------
def _as_code(value, *, numeric: bool):
    if not numeric:
        return str(value).strip().lower()
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise UnknownLocationError(
            f"location {value!r} is not a municipality code (an integer like 5001)"
        ) from None
    if not np.isfinite(f) or f != int(f):
        raise UnknownLocationError(f"location {value!r} is not a municipality code (an integer like 5001)")
    return int(f)


def _select(available: Sequence, locations: Iterable | None, source: str, numeric: bool = True) -> list:
    if locations is None:
        return list(available)
    if isinstance(locations, (str, int, np.integer)):
        locations = [locations]
    wanted = [_as_code(v, numeric=numeric) for v in locations]
    if not wanted:
        raise InvalidInputError("locations is empty: pass None for all locations or a list of codes")
    if len(set(wanted)) != len(wanted):
        dup = sorted({w for w in wanted if wanted.count(w) > 1}, key=str)
        raise InvalidInputError(f"locations lists {dup} more than once")
    have = set(available)
    missing = [w for w in wanted if w not in have]
    if missing:
        hints = []
        for m in missing[:3]:
            close = difflib.get_close_matches(str(m), [str(a) for a in available], n=3, cutoff=0.6)
            hints.append(f"{m} (close: {', '.join(close) or 'none'})")
        raise UnknownLocationError(
            f"source {source!r} has no location {', '.join(hints)}; it has {len(available)} locations "
            f"(list them with terralab.dengue.list_locations({source!r}))"
        )
    return wanted


def _regularize(frame: pd.DataFrame, fill: str, *, round_counts: bool) -> tuple[pd.DataFrame, list[str]]:
    """Reindex onto every MMWR Saturday between the first and last rows; fill the rows the source lacks."""
    if fill not in WEEK53_FILLS:
        raise InvalidInputError(f"week53_fill must be one of {WEEK53_FILLS}, got {fill!r}")
    frame = frame.sort_index()
    full = pd.date_range(frame.index[0], frame.index[-1], freq="W-SAT", name="week")
    missing = full.difference(frame.index)
    out = frame.reindex(full)
    if len(missing) and fill == "interpolate":
        filled = out.interpolate(method="linear", limit_area="inside")
        if round_counts:
            filled = filled.round()
        out.loc[missing] = filled.loc[missing]
    return out, [_weeks.week_label(d) for d in missing]


def _finish(
    frame: pd.DataFrame,
    *,
    source: str,
    names: dict,
    population: dict,
    imputed: list[str],
    week_system: str = "MMWR",
) -> pd.DataFrame:
    frame = frame.astype(float)
    try:
        frame.index = pd.DatetimeIndex(frame.index, freq="W-SAT").as_unit("ns")
    except ValueError:  # not one regular weekly run (e.g. several sources' spans); validate_cases will say so
        frame.index = pd.DatetimeIndex(frame.index).as_unit("ns")
    frame.index.name = "week"
    frame.columns.name = "location"
    frame.attrs = {
        "source": source,
        "units": "cases/week",
        "location_names": {k: names.get(k, str(k)) for k in frame.columns},
        "population": {k: population[k] for k in frame.columns if k in population},
        "imputed_weeks": imputed,
        "week_system": week_system,
    }
    return frame


def _colombia_wide(
    raw: pd.DataFrame, code_col: str, name_col: str | None, locations, source: str, fill: str
) -> pd.DataFrame:
    if code_col not in raw.columns:
        raise FileFormatError(f"{source}: column {code_col!r} missing; is this the SIVIGILA table?")
    codes = raw[code_col].astype(int).tolist()
    if len(set(codes)) != len(codes):
        raise FileFormatError(f"{source}: municipality codes repeat in the table")
    chosen = _select(codes, locations, source)
    table = raw.set_index(raw[code_col].astype(int))
    week_cols = [c for c in raw.columns if "/w" in str(c)]
    if not week_cols:
        raise FileFormatError(f"{source}: no week columns named like '2018/w37'")
    ends = [_weeks.week_end(_weeks.parse_week(c), week53="raise") for c in week_cols]
    counts = table.loc[chosen, week_cols].T
    counts.index = pd.DatetimeIndex(ends)
    if counts.index.duplicated().any():
        raise FileFormatError(f"{source}: week columns name the same week twice")
    counts, imputed = _regularize(counts, fill, round_counts=True)
    pop_cols = [c for c in raw.columns if str(c).replace(" ", "").startswith("Population")]
    population = {
        code: {int(str(c).replace(" ", "")[len("Population") :]): int(table.at[code, c]) for c in pop_cols}
        for code in chosen
    }
    names = {code: str(table.at[code, name_col]) for code in chosen} if name_col else {}
    return _finish(counts, source=source, names=names, population=population, imputed=imputed)


# --------------------------------------------------------------------------------------------------
# per-source loaders
# --------------------------------------------------------------------------------------------------
def _load_embedded(locations, fill):
    if not EMBEDDED_CASES.is_file():
        raise DataNotAvailableError(f"embedded extract {EMBEDDED_CASES} is missing; reinstall terralab")
    raw = _read_csv(EMBEDDED_CASES)
    codes = [int(c) for c in raw.columns if c not in ("year", "week")]
    chosen = _select(codes, locations, "colombia_denguenet")
    ends = [_weeks.week_end((y, w), week53="raise") for y, w in zip(raw["year"], raw["week"])]
    counts = raw[[str(c) for c in chosen]].set_axis(chosen, axis=1)
    counts.index = pd.DatetimeIndex(ends)
    counts, imputed = _regularize(counts, fill, round_counts=True)
    pop = _read_csv(EMBEDDED_POPULATION, index_col="year")
    population = {c: {int(y): int(v) for y, v in pop[str(c)].items()} for c in chosen}
    return _finish(
        counts,
        source="colombia_denguenet",
        names=DENGUENET_MUNICIPALITIES,
        population=population,
        imputed=imputed,
    )


def _load_colombia(locations, fill):
    raw = _read_csv(_fetch("dengue_colombia_weekly_cases"), encoding="latin-1")
    return _colombia_wide(raw, "Municipalitycode", "Municipality", locations, "colombia", fill)


def _top10_table() -> pd.DataFrame:
    raw = _read_csv(_fetch("dengue_colombia_top10_climate_cases"), parse_dates=["date"])
    return raw.set_index("date")


def _load_top10(locations, fill):
    raw = _top10_table()
    codes = [int(c.split("_", 1)[1]) for c in raw.columns if c.startswith("cases_")]
    chosen = _select(codes, locations, "colombia_top10")
    counts = raw[[f"cases_{c}" for c in chosen]].set_axis(chosen, axis=1)
    counts.index = _weeks.week_ends(counts.index)
    counts, imputed = _regularize(counts, fill, round_counts=True)
    names, population = {}, {}
    try:
        socio = _read_csv(_fetch("dengue_colombia_top10_sociodemographic"), index_col=0)
        socio = socio.set_index(socio["Municipality code"].astype(int))
        pop_cols = [c for c in socio.columns if c.startswith("Population")]
        for c in chosen:
            if c in socio.index:
                names[c] = str(socio.at[c, "Municipality"])
                population[c] = {int(p[len("Population") :]): int(socio.at[c, p]) for p in pop_cols}
    except DataNotAvailableError:
        pass  # names and population are extras; the counts stand on their own
    return _finish(counts, source="colombia_top10", names=names, population=population, imputed=imputed)


def _dengai_table() -> pd.DataFrame:
    # the embedded copies (byte-identical to the catalog's DengAI files once decompressed) work offline
    feats = _read_csv(_fetch("dengue_dengai_features_train_package"), parse_dates=["week_start_date"])
    labels = _read_csv(_fetch("dengue_dengai_labels_train_package"))
    merged = labels.merge(feats, on=["city", "year", "weekofyear"], how="left", validate="one_to_one")
    if merged["week_start_date"].isna().any():
        raise FileFormatError("DengAI labels name weeks that the features file lacks")
    start = merged["week_start_date"]
    # DengAI counts 7-day periods from 1 January and labels them with the ISO week of their first day;
    # the ISO week of that day is the week we place the row on (Monday..Sunday -> its Saturday).
    monday = start - pd.to_timedelta(start.dt.day_of_week, unit="D")
    merged["week"] = monday + pd.Timedelta(days=5)
    return merged


def _load_dengai(locations, fill):
    table = _dengai_table()
    chosen = _select(list(DENGAI_CITIES), locations, "dengai", numeric=False)
    parts, imputed = [], []
    for city in chosen:
        sub = table[table["city"] == city].set_index("week")["total_cases"]
        if sub.index.duplicated().any():
            raise FileFormatError(f"DengAI {city}: two rows fall on the same week")
        reg, imp = _regularize(sub.to_frame(city), fill, round_counts=True)
        parts.append(reg)
        imputed += [f"{city}:{w}" for w in imp]
    counts = pd.concat(parts, axis=1) if len(parts) > 1 else parts[0]
    return _finish(
        counts,
        source="dengai",
        names=DENGAI_CITIES,
        population={},
        imputed=imputed,
        week_system="ISO weeks of DengAI's week_start_date, placed on the Saturday of the MMWR week "
        "sharing their Monday–Saturday",
    )


def _load_rio(locations, fill):
    chosen = _select([RIO_CODE], locations, "rio")
    raw = _read_csv(_fetch("dengue_rio_cases"))
    missing = {"cases", "epiweek", "year"} - set(raw.columns)
    if missing:
        raise FileFormatError(f"rio cases file lacks columns {sorted(missing)}")
    ends = [_weeks.week_end((y, w), week53="fold") for y, w in zip(raw["year"], raw["epiweek"])]
    # rule 2 of the week-53 rule: a week-53 row of a 52-week year is added to week 52
    series = (
        pd.Series(raw["cases"].to_numpy(dtype=float), index=pd.DatetimeIndex(ends)).groupby(level=0).sum()
    )
    counts, imputed = _regularize(series.to_frame(RIO_CODE), fill, round_counts=True)
    return _finish(
        counts[chosen], source="rio", names={RIO_CODE: "Rio de Janeiro"}, population={}, imputed=imputed
    )


_LOADERS = {
    "colombia_denguenet": _load_embedded,
    "colombia": _load_colombia,
    "colombia_top10": _load_top10,
    "dengai": _load_dengai,
    "rio": _load_rio,
}


def _check_source(source: str) -> str:
    if not isinstance(source, str) or source not in _LOADERS:
        close = difflib.get_close_matches(str(source), list(_LOADERS), n=2)
        raise InvalidInputError(
            f"unknown case source {source!r}; choose one of {', '.join(_LOADERS)}"
            + (f" (did you mean {close[0]!r}?)" if close else "")
        )
    return source


def load_cases(
    source: str = "colombia_denguenet", locations: Iterable | None = None, *, week53_fill: str = "interpolate"
) -> pd.DataFrame:
    """Weekly dengue cases, one column per location, indexed by the Saturday ending each MMWR epi-week.

    Parameters
    ----------
    source : str
        One of :func:`available_sources`; default the embedded five-city extract (works offline).
    locations : list of int or str, optional
        DANE municipality codes for Colombia (e.g. ``[5001, 76001]``), ``"sj"``/``"iq"`` for DengAI,
        ``330455`` for Rio. None: every location of the source.
    week53_fill : {"interpolate", "nan"}
        How weeks the source has no row for (week 53 in the Colombian table; a few DengAI year ends) are
        filled.

    Returns
    -------
    DataFrame (week × location) of cases/week; metadata in ``attrs`` (module docstring), population via
    :func:`population`.

    Examples
    --------
    >>> from terralab import dengue
    >>> cases = dengue.load_cases(locations=[5001, 76001])  # Medellín and Cali, embedded: offline
    >>> cases.loc["2018-09-15"]
    location
    5001     12.0
    76001    23.0
    Name: 2018-09-15 00:00:00, dtype: float64
    """
    return _LOADERS[_check_source(source)](locations, week53_fill)


def top_locations(cases: pd.DataFrame, n: int = 100, end: _weeks.WeekLike = "2015w52") -> pd.DataFrame:
    """The ``n`` locations with the most cases up to week ``end`` (inclusive), most first, attrs kept.

    Choosing them on weeks before the evaluation window keeps the choice free of the weeks being scored.
    """
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise InvalidInputError(f"n must be a positive integer, got {n!r}")
    last = _weeks.week_end(end, week53="raise")
    totals = cases.loc[:last].sum()
    if len(cases.loc[:last]) == 0:
        raise InvalidInputError(f"no weeks up to {_weeks.week_label(last)} to rank locations by")
    chosen = list(totals.sort_values(ascending=False, kind="stable").index[:n])
    out = cases[chosen].copy()
    out.attrs = dict(cases.attrs)
    out.attrs["location_names"] = {
        k: v for k, v in cases.attrs.get("location_names", {}).items() if k in chosen
    }
    out.attrs["population"] = {k: v for k, v in cases.attrs.get("population", {}).items() if k in chosen}
    out.attrs["selected_by"] = f"top {n} by cases up to {_weeks.week_label(last)}"
    return out


def list_locations(source: str = "colombia_denguenet") -> pd.DataFrame:
    """Codes and names of every location of ``source``."""
    cases = load_cases(source)
    names = cases.attrs["location_names"]
    return pd.DataFrame({"location": list(cases.columns), "name": [names[c] for c in cases.columns]})


def population(cases: pd.DataFrame) -> pd.DataFrame:
    """Yearly population (persons) of the locations of ``cases``, as a year × location DataFrame.

    Empty when the source has no population (DengAI, Rio).
    """
    pop = cases.attrs.get("population") or {}
    frame = pd.DataFrame({k: pd.Series(v, dtype=float) for k, v in pop.items()})
    frame.index.name = "year"
    frame.columns.name = "location"
    frame.attrs["units"] = "persons"
    return frame


# --------------------------------------------------------------------------------------------------
# covariates
# --------------------------------------------------------------------------------------------------
_DENGAI_UNITS = {
    "precipitation_amt_mm": "mm/week",
    "reanalysis_precip_amt_kg_per_m2": "kg/m2/week",
    "reanalysis_sat_precip_amt_mm": "mm/week",
    "station_precip_mm": "mm/week",
    "reanalysis_relative_humidity_percent": "%",
    "reanalysis_specific_humidity_g_per_kg": "g/kg",
    "station_avg_temp_c": "degC",
    "station_diur_temp_rng_c": "degC",
    "station_max_temp_c": "degC",
    "station_min_temp_c": "degC",
}


def _stack_covariates(frames: dict[str, pd.DataFrame], units: dict[str, str], source: str) -> pd.DataFrame:
    out = pd.concat(frames, axis=1, names=["variable", "location"])
    out.index = pd.DatetimeIndex(out.index).as_unit("ns")
    out.index.name = "week"
    out.attrs = {"source": source, "units": units}
    return out


def _colombia_covariates(locations, source: str) -> pd.DataFrame:
    if source == "colombia_top10":
        raw = _top10_table()
        raw.index = _weeks.week_ends(raw.index)
    else:
        # the five DengueNet municipalities are embedded (offline); the other five come from the catalog
        embedded = source == "colombia_denguenet" or (
            locations is not None
            and {_as_code(v, numeric=True) for v in locations} <= set(DENGUENET_MUNICIPALITIES)
        )
        stem = "dengue_colombia_denguenet_" if embedded else "dengue_colombia_"
        temp = _read_csv(_fetch(stem + "temperature"), parse_dates=["LastDayWeek"]).set_index("LastDayWeek")
        prec = _read_csv(_fetch(stem + "precipitation"), parse_dates=["LastDayWeek"]).set_index("LastDayWeek")
        raw = pd.concat([temp, prec], axis=1)
        raw.index = _weeks.week_ends(raw.index)
    frames = {}
    for var in ("temperature", "precipitation"):
        cols = {int(c.split("_", 1)[1]): c for c in raw.columns if c.startswith(var + "_")}
        if locations is None:
            chosen = sorted(cols)
        else:
            chosen = [_as_code(v, numeric=True) for v in locations]
            lacking = [c for c in chosen if c not in cols]
            if lacking:
                raise DataNotAvailableError(
                    f"{source}: no {var} covariate for municipalities {lacking}; covariates exist only for "
                    f"{sorted(cols)}. Pass covariates=False to backtest without them."
                )
        part = raw[[cols[c] for c in chosen]].set_axis(chosen, axis=1).astype(float)
        # covariates are smooth in time, so linear interpolation of the week-53 gap is harmless
        frames[var], _ = _regularize(part, "interpolate", round_counts=False)
    units = {
        "temperature": "degC (MODIS land-surface temperature, weekly mean)",
        "precipitation": "mm/day (CHIRPS, weekly mean of daily totals as aggregated by the source)",
    }
    return _stack_covariates(frames, units, source)


def _dengai_covariates(locations) -> pd.DataFrame:
    table = _dengai_table()
    chosen = _select(list(DENGAI_CITIES), locations, "dengai", numeric=False)
    variables = [
        c for c in table.columns if c.startswith(("ndvi_", "reanalysis_", "station_", "precipitation"))
    ]
    frames: dict[str, pd.DataFrame] = {}
    for var in variables:
        per_city = {}
        for city in chosen:
            s = table[table["city"] == city].set_index("week")[var].astype(float)
            # DengAI leaves gaps in its weather and NDVI series; carry the last value forward (then back at
            # the start)
            reg, _ = _regularize(s.to_frame(city), "interpolate", round_counts=False)
            per_city[city] = reg[city].ffill().bfill()
        frames[var] = pd.DataFrame(per_city)
    units = {
        v: _DENGAI_UNITS.get(v, "K" if v.endswith("_k") else "NDVI" if v.startswith("ndvi") else "")
        for v in variables
    }
    return _stack_covariates(frames, units, "dengai")


def has_covariates(source: str) -> bool:
    """Whether :func:`load_covariates` has weekly covariates for ``source``."""
    return _check_source(source) in _COVARIATE_SOURCES


def load_covariates(source: str = "colombia_denguenet", locations: Iterable | None = None) -> pd.DataFrame:
    """Weekly covariates indexed like :func:`load_cases`, columns (variable, location).

    Colombia (all three Colombian sources): MODIS land-surface ``temperature`` (°C) and CHIRPS
    ``precipitation`` for the ten municipalities that have them (the five DengueNet ones among them, embedded:
    offline). DengAI: its 20 NOAA weather and NDVI features (gaps forward-filled). Rio: none (raises
    DataNotAvailableError).

    Examples
    --------
    >>> cov = load_covariates("colombia_denguenet", [5001])
    >>> cov["temperature"][5001].head(3).round(2)
    week
    2007-01-06    18.89
    2007-01-13    22.23
    2007-01-20    22.27
    Freq: W-SAT, Name: 5001, dtype: float64
    """
    source = _check_source(source)
    if source == "dengai":
        return _dengai_covariates(locations)
    if source in ("colombia_denguenet", "colombia", "colombia_top10"):
        return _colombia_covariates(locations, source)
    raise DataNotAvailableError(
        f"source {source!r} has no weekly covariates; backtest it with covariates=False"
    )
