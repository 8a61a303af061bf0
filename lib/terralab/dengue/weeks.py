"""Epidemiological weeks: CDC/MMWR weeks (Sunday–Saturday), ISO weeks (Monday–Sunday) and the week-53 rule.

Every weekly table in :mod:`terralab.dengue` is indexed by the **last day of the MMWR epi-week** (a Saturday),
computed with the `epiweeks <https://pypi.org/project/epiweeks/>`_ library. Colombia's INS (SIVIGILA) and
Brazil's SINAN use the same calendar: week 1 is the first Sunday–Saturday week with at least four days in
January, so a year has 52 or 53 weeks (53 in 2008, 2014, 2020, 2025, ...).

Week-53 rule
------------
1. In a year with 53 MMWR weeks, week 53 is a real week: it keeps its own row on the weekly axis.
2. A "week 53" label in a year that has only 52 MMWR weeks (DATASUS exports do this, e.g. Rio 2015 and 2023,
   where the row holds a handful of cases dated into the next epi-year) is **folded into week 52** of that
   year: its count is added to week 52 (``week53="fold"``, the default of :func:`week_end`), or rejected
   (``week53="raise"``).
3. Tables with exactly 52 week columns per year (the Colombian SIVIGILA table) have no week-53 count;
   :func:`terralab.dengue.load_cases` places column ``YYYY/wNN`` on MMWR week NN of YYYY and fills the missing
   week 53 of 53-week years as its ``week53_fill`` argument says (see there).
4. Season-aligned comparisons ("the same week last year", :func:`same_week_last_year`) compare week 53 with
   week 52 of the year before; :func:`fold_week53` turns a weekly series into a 52-weeks-a-year table by
   adding week 53 to week 52.

ISO weeks (DengAI) run Monday–Sunday and share six days (Monday–Saturday) with one MMWR week; an ISO week is
placed on the Saturday of that shared MMWR week (:func:`iso_week_end`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

from ..errors import InvalidInputError

WeekLike = str | dt.date | pd.Timestamp | np.datetime64 | tuple

_WEEK_RE = re.compile(r"^\s*(\d{4})\s*[-/ ]?\s*[wW]\s*(\d{1,2})\s*$")
_CDC_RE = re.compile(r"^\s*(\d{4})(\d{2})\s*$")


def n_weeks(year: int, *, system: str = "cdc") -> int:
    """Number of epi-weeks (52 or 53) in ``year`` for ``system`` "cdc" (MMWR) or "iso"."""
    import epiweeks

    return epiweeks.Year(int(year), system=system).totalweeks()


def _epiweek(year: int, week: int, system: str = "cdc"):
    import epiweeks

    try:
        return epiweeks.Week(int(year), int(week), system=system)
    except ValueError as exc:
        raise InvalidInputError(
            f"{year}w{week:02d} is not a {system.upper()} week: {year} has {n_weeks(year, system=system)} "
            "weeks"
        ) from exc


def parse_week(text: str) -> tuple[int, int]:
    """Year and week number of a week label.

    Accepts ``"2018w37"``, ``"2018W37"``, ``"2018-W37"``, ``"2018/w37"`` (the Colombian table's column names)
    and the CDC form ``"201837"``.

    Examples
    --------
    >>> parse_week("2018w37")
    (2018, 37)
    >>> parse_week("2018/w05")
    (2018, 5)
    """
    if not isinstance(text, str):
        raise InvalidInputError(f"week label must be a string like '2018w37', got {text!r}")
    m = _WEEK_RE.match(text) or _CDC_RE.match(text)
    if not m:
        raise InvalidInputError(
            f"cannot read {text!r} as a week: write it like '2018w37' (year, 'w', week 1–53)"
        )
    year, week = int(m.group(1)), int(m.group(2))
    if not 1 <= week <= 53:
        raise InvalidInputError(f"week number {week} in {text!r} is outside 1–53")
    return year, week


def week_end(value: WeekLike, *, week53: str = "fold") -> pd.Timestamp:
    """Saturday ending the MMWR epi-week that ``value`` names or contains.

    Parameters
    ----------
    value : str, date, Timestamp or (year, week)
        ``"2018w37"``-style label, ``(year, week)`` tuple, or any date (the week containing it).
    week53 : {"fold", "raise"}
        What a week-53 label means in a year with 52 MMWR weeks: its week 52 ("fold"), or an error.

    Examples
    --------
    >>> week_end("2018w37")
    Timestamp('2018-09-15 00:00:00')
    >>> week_end("2018-09-10")
    Timestamp('2018-09-15 00:00:00')
    """
    if week53 not in ("fold", "raise"):
        raise InvalidInputError(f"week53 must be 'fold' or 'raise', got {week53!r}")
    if isinstance(value, tuple):
        year, week = int(value[0]), int(value[1])
    elif isinstance(value, str) and (_WEEK_RE.match(value) or _CDC_RE.match(value)):
        year, week = parse_week(value)
    else:
        return _saturday_of(value)
    if week == 53 and n_weeks(year) == 52:
        if week53 == "raise":
            raise InvalidInputError(
                f"{year} has 52 MMWR weeks, so {year}w53 does not exist (week53='fold' maps it to week 52)"
            )
        week = 52
    return pd.Timestamp(_epiweek(year, week).enddate())


def _saturday_of(value) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"cannot read {value!r} as a date or a week like '2018w37'") from exc
    if ts is pd.NaT:
        raise InvalidInputError("a week cannot be NaT")
    ts = ts.normalize().tz_localize(None) if ts.tzinfo is not None else ts.normalize()
    # Sunday=6 in pandas; the MMWR week runs Sunday..Saturday (dayofweek 5)
    return ts + pd.Timedelta(days=(5 - ts.day_of_week) % 7)


def week_ends(values: Iterable[WeekLike] | pd.Index | np.ndarray) -> pd.DatetimeIndex:
    """Saturdays ending the MMWR weeks of many dates (vectorised :func:`week_end` for dates)."""
    idx = pd.DatetimeIndex(pd.to_datetime(values)).normalize()
    return idx + pd.to_timedelta((5 - idx.day_of_week) % 7, unit="D")


def epiweek_of(date: WeekLike) -> tuple[int, int]:
    """MMWR (year, week) of a date.

    Examples
    --------
    >>> epiweek_of("2019-01-01")
    (2019, 1)
    >>> epiweek_of("2009-01-02")
    (2008, 53)
    """
    import epiweeks

    w = epiweeks.Week.fromdate(_saturday_of(date).date(), system="cdc")
    return w.year, w.week


def week_label(date: WeekLike) -> str:
    """``"2018w37"`` label of the MMWR week containing ``date``."""
    y, w = epiweek_of(date)
    return f"{y}w{w:02d}"


def week_index(start: WeekLike, end: WeekLike) -> pd.DatetimeIndex:
    """All MMWR week-ending Saturdays from ``start`` to ``end`` inclusive (frequency ``W-SAT``)."""
    s, e = week_end(start), week_end(end)
    if e < s:
        raise InvalidInputError(f"week range ends ({week_label(e)}) before it starts ({week_label(s)})")
    return pd.date_range(s, e, freq="W-SAT", name="week", unit="ns")


def iso_week_end(year: int, week: int) -> pd.Timestamp:
    """Saturday of ISO week (year, week): the end of the MMWR week sharing its Monday–Saturday.

    Examples
    --------
    >>> iso_week_end(1990, 18)
    Timestamp('1990-05-05 00:00:00')
    """
    try:
        monday = dt.date.fromisocalendar(int(year), int(week), 1)
    except ValueError as exc:
        raise InvalidInputError(f"{year}-W{week:02d} is not an ISO week") from exc
    return pd.Timestamp(monday + dt.timedelta(days=5))


def same_week_last_year(date: WeekLike) -> pd.Timestamp:
    """Saturday ending the same MMWR week number one year earlier; week 53 maps to week 52 (rule 4).

    Examples
    --------
    >>> same_week_last_year("2018w37")
    Timestamp('2017-09-16 00:00:00')
    >>> same_week_last_year("2021w01")
    Timestamp('2020-01-04 00:00:00')
    """
    year, week = epiweek_of(week_end(date) if isinstance(date, (str, tuple)) else date)
    if week == 53 and n_weeks(year - 1) == 52:
        week = 52
    return pd.Timestamp(_epiweek(year - 1, week).enddate())


def fold_week53(series: pd.Series | pd.DataFrame) -> pd.DataFrame:
    """A weekly series as a 52-weeks-a-year table: week 53 is added to week 52 (rule 4).

    Parameters
    ----------
    series : Series or DataFrame indexed by MMWR week-ending Saturdays

    Returns
    -------
    DataFrame indexed by (year, week) with week in 1–52, one column per input column.
    """
    frame = series.to_frame() if isinstance(series, pd.Series) else series
    yw = [epiweek_of(d) for d in frame.index]
    years = [y for y, _ in yw]
    weeks = [min(w, 52) for _, w in yw]
    out = frame.groupby([pd.Index(years, name="year"), pd.Index(weeks, name="week")], sort=True).sum(
        min_count=1
    )
    return out
