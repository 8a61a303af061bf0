"""Baselines: persistence, moving mean and seasonal naive, with quantiles from their own past errors.

Examples
--------
Persistence forecasts last week's count; with ``symmetric=True`` its median is that count too:

>>> from terralab.dengue import backtest
>>> from terralab.dengue.synthetic import synthetic_cases
>>> cases = synthetic_cases(120, 1, seed=0)
>>> model = Persistence(symmetric=True)
>>> fc = backtest(cases, model, test_start="2014w01", test_end="2014w04", quantiles=(0.1, 0.5, 0.9))
>>> bool((fc["forecast"].to_numpy()[1:] == fc["observed"].to_numpy()[:-1]).all())
True
>>> bool((fc["q0.5"] == fc["forecast"]).all()) and bool((fc["q0.1"] < fc["forecast"]).all())
True
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InvalidInputError
from . import weeks as _weeks
from .base import WEEK, Forecaster, Panel, train_origins, whole_weeks
from .probabilistic import tidy_quantiles


class _Baseline(Forecaster):
    """A rule without parameters; its quantiles come from its own past errors at the same horizon.

    As the forecast hubs' baseline: for each location, the empirical distribution of the rule's errors y_{t+h}
    − forecast_t over the ``calibration_weeks`` origins before the fit (default: every origin with enough
    history), added to the forecast; counts below 0 are set to 0. ``symmetric`` mirrors the errors (±e) so
    that the median stays the rule's value, as the COVID-19 Forecast Hub baseline does.
    """

    quantile_method = "empirical quantiles of the rule's own past errors at this horizon, per location"
    point_kind = "point"

    def __init__(
        self, calibration_weeks: int | None = None, symmetric: bool = False, *, _rule: dict | None = None
    ) -> None:
        cal = None if calibration_weeks is None else whole_weeks(calibration_weeks, "calibration_weeks", 10)
        super().__init__(**(_rule or {}), calibration_weeks=cal, symmetric=bool(symmetric))

    def calibration_origins(self, panel: Panel, train_end: pd.Timestamp) -> pd.DatetimeIndex:
        origins = train_origins(panel, train_end, self.history_weeks(panel))
        cal = self.params.get("calibration_weeks")
        return origins[-cal:] if cal else origins

    def calibrate(self, panel: Panel, train_end: pd.Timestamp) -> _Baseline:
        origins = self.calibration_origins(panel, train_end)
        f = self.forecast(panel, origins)[panel.locations].to_numpy()
        err = panel.cases.to_numpy()[panel.pos(origins) + panel.horizon] - f
        self.errors_ = np.concatenate([err, -err]) if self.params.get("symmetric") else err
        return self

    def forecast_quantiles(
        self, panel: Panel, origins: pd.DatetimeIndex, point: pd.DataFrame, levels: np.ndarray
    ) -> np.ndarray:
        shift = np.quantile(self.errors_, levels, axis=0).T  # location × level
        return tidy_quantiles(point[panel.locations].to_numpy()[..., None] + shift[None, :, :])


class Persistence(_Baseline):
    """Next week equals the last observed week."""

    name = "persistence"

    def history_weeks(self, panel: Panel) -> int:
        return 1

    def forecast(self, panel: Panel, origins: pd.DatetimeIndex) -> pd.DataFrame:
        return pd.DataFrame(
            panel.cases.to_numpy()[panel.pos(origins)], index=origins, columns=panel.locations
        )


class MovingMean(_Baseline):
    """Mean of the last ``window_weeks`` observed weeks (default 4, the DengueNet comparison's "4-week
    mean")."""

    name = "moving_mean"

    def __init__(
        self, window_weeks: int = 4, calibration_weeks: int | None = None, symmetric: bool = False
    ) -> None:
        window_weeks = whole_weeks(window_weeks, "window_weeks")
        super().__init__(
            calibration_weeks=calibration_weeks, symmetric=symmetric, _rule={"window_weeks": window_weeks}
        )
        self.window = int(window_weeks)

    def history_weeks(self, panel: Panel) -> int:
        return self.window

    def forecast(self, panel: Panel, origins: pd.DatetimeIndex) -> pd.DataFrame:
        csum = np.vstack([np.zeros((1, panel.cases.shape[1])), np.cumsum(panel.cases.to_numpy(), axis=0)])
        p = panel.pos(origins)
        vals = (csum[p + 1] - csum[p + 1 - self.window]) / self.window
        return pd.DataFrame(vals, index=origins, columns=panel.locations)


class SeasonalNaive(_Baseline):
    """The same MMWR week one year before the target week (week 53 compared with week 52)."""

    name = "seasonal_naive"

    def history_weeks(self, panel: Panel) -> int:
        return 53

    def forecast(self, panel: Panel, origins: pd.DatetimeIndex) -> pd.DataFrame:
        if panel.horizon > 52:
            raise InvalidInputError(
                "seasonal_naive needs horizon ≤ 52 weeks (last year's week must be known)"
            )
        targets = origins + panel.horizon * WEEK
        last_year = pd.DatetimeIndex([_weeks.same_week_last_year(t) for t in targets])
        p = panel.cases.index.get_indexer(last_year)
        if (p < 0).any():
            raise InvalidInputError(
                f"seasonal_naive needs the same week one year before {_weeks.week_label(targets[p < 0][0])}, "
                "which is before the first week of the data"
            )
        return pd.DataFrame(panel.cases.to_numpy()[p], index=origins, columns=panel.locations)
