"""Checks of the tables every model takes: weekly cases (:func:`validate_cases`) and covariates aligned to
them (:func:`align_covariates`), both re-exported by :mod:`terralab.dengue.cases` and the package.

Examples
--------
>>> from terralab.dengue.synthetic import synthetic_cases
>>> cases = synthetic_cases(60, 2, seed=0)
>>> validate_cases(cases).shape
(60, 2)
>>> cases.iloc[3, 0] = -1
>>> validate_cases(cases)
Traceback (most recent call last):
...
terralab.errors.InvalidInputError: negative case count -1 at 2012w04 for location 1; counts must be ≥ 0
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InvalidInputError
from . import weeks as _weeks

__all__ = ["align_covariates", "validate_cases"]


def validate_cases(cases: pd.DataFrame) -> pd.DataFrame:
    """Check that ``cases`` is a regular weekly table of finite non-negative whole counts; return a float
    copy.

    Raises
    ------
    InvalidInputError
        Not a DataFrame with a DatetimeIndex of Saturdays; duplicated or missing weeks; NaN, negative or
        non-integer counts.
    """
    if not isinstance(cases, pd.DataFrame):
        raise InvalidInputError(
            f"cases must be a DataFrame (week × location) from load_cases, got {type(cases).__name__}"
        )
    if cases.empty or cases.shape[1] == 0:
        raise InvalidInputError("cases is empty: it needs at least one location column and some weeks")
    if not isinstance(cases.index, pd.DatetimeIndex):
        raise InvalidInputError("cases must be indexed by week-ending dates (a DatetimeIndex of Saturdays)")
    if cases.columns.duplicated().any():
        raise InvalidInputError(f"location columns repeat: {list(cases.columns[cases.columns.duplicated()])}")
    idx = cases.index
    if idx.duplicated().any():
        dups = sorted({_weeks.week_label(d) for d in idx[idx.duplicated()]})
        raise InvalidInputError(
            f"weeks {dups[:5]} appear more than once; aggregate them (e.g. "
            "cases.groupby(level=0).sum()) before forecasting"
        )
    if not idx.is_monotonic_increasing:
        raise InvalidInputError("weeks are not in increasing order; sort with cases.sort_index()")
    not_sat = idx[idx.day_of_week != 5]
    if len(not_sat):
        raise InvalidInputError(
            f"{len(not_sat)} index dates are not Saturdays (first {not_sat[0].date()}): index weeks by the "
            "last day of the MMWR epi-week, e.g. with terralab.dengue.weeks.week_ends(dates)"
        )
    gaps = np.flatnonzero((idx[1:] - idx[:-1]) != pd.Timedelta(days=7)) if len(idx) > 1 else []
    if len(gaps):
        first = idx[gaps[0]] + pd.Timedelta(days=7)
        raise InvalidInputError(
            f"{len(gaps)} gap(s) in the weekly index, first missing week {_weeks.week_label(first)}; "
            "every week between the first and last must be present (reindex and fill them, see load_cases' "
            "week53_fill)"
        )
    try:
        values = cases.astype(float)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"cases must be numeric counts: {exc}") from exc
    arr = values.to_numpy()
    if np.isnan(arr).any():
        r, c = np.argwhere(np.isnan(arr))[0]
        raise InvalidInputError(
            f"{int(np.isnan(arr).sum())} NaN count(s), first at {_weeks.week_label(idx[r])} for location "
            f"{cases.columns[c]!r}; fill or drop them before forecasting"
        )
    if np.isinf(arr).any():
        raise InvalidInputError("cases contain infinite values")
    if (arr < 0).any():
        r, c = np.argwhere(arr < 0)[0]
        raise InvalidInputError(
            f"negative case count {arr[r, c]:g} at {_weeks.week_label(idx[r])} for location "
            f"{cases.columns[c]!r}; counts must be ≥ 0"
        )
    fractional = arr != np.round(arr)
    if fractional.any():
        r, c = np.argwhere(fractional)[0]
        raise InvalidInputError(
            f"{int(fractional.sum())} case count(s) are not whole numbers, first {arr[r, c]:g} at "
            f"{_weeks.week_label(idx[r])} for location {cases.columns.tolist()[c]!r}; the models forecast "
            "counts of cases: round them (cases.round()) or, for incidence rates, multiply by the population "
            "first"
        )
    values.attrs = dict(cases.attrs)
    return values


def align_covariates(covariates: pd.DataFrame, cases: pd.DataFrame) -> pd.DataFrame:
    """Covariates restricted to the weeks and locations of ``cases``; raises when they do not line up.

    Parameters
    ----------
    covariates : DataFrame (week × (variable, location)) from :func:`load_covariates`
    cases : DataFrame (week × location)
    """
    if (
        not isinstance(covariates, pd.DataFrame)
        or not isinstance(covariates.columns, pd.MultiIndex)
        or covariates.columns.nlevels != 2
    ):
        raise InvalidInputError(
            "covariates must be a DataFrame with (variable, location) columns, as load_covariates returns"
        )
    if not isinstance(covariates.index, pd.DatetimeIndex):
        raise InvalidInputError("covariates must be indexed by week-ending dates (Saturdays) like the cases")
    if covariates.index.duplicated().any():
        raise InvalidInputError("covariate weeks repeat; aggregate them first")
    missing_weeks = cases.index.difference(covariates.index)
    if len(missing_weeks):
        off = (covariates.index.day_of_week != 5).any()
        raise InvalidInputError(
            f"covariates are not aligned to the case weeks: {len(missing_weeks)} case week(s) have no "
            f"covariate row (first {_weeks.week_label(missing_weeks[0])})"
            + ("; the covariate index is not on Saturdays (week ends)" if off else "")
            + ". Index covariates by the Saturday ending each epi-week and cover every case week."
        )
    variables = list(dict.fromkeys(covariates.columns.get_level_values(0)))
    locs = set(covariates.columns.get_level_values(1))
    lacking = [c for c in cases.columns if c not in locs]
    if lacking:
        raise InvalidInputError(f"covariates have no columns for locations {lacking}")
    cols = pd.MultiIndex.from_product([variables, list(cases.columns)], names=["variable", "location"])
    out = covariates.loc[cases.index, cols].astype(float)
    if out.isna().any().any():
        bad = out.columns[out.isna().any()].tolist()[:3]
        raise InvalidInputError(f"covariates have NaN in the case weeks for {bad}; fill them first")
    out.attrs = dict(covariates.attrs)
    return out
