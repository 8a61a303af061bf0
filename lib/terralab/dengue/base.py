"""What every dengue model shares: the :class:`Panel` it looks at, the :class:`Forecaster` interface, checks.

:func:`terralab.dengue.backtest` and :func:`terralab.dengue.rolling_backtest` build a :class:`Panel`
(validated cases, aligned covariates, image features, horizon, lookback, seed), call ``fit(panel, train_end)``
with targets up to the week before the forecasts, then ``forecast(panel, origins)`` and
``forecast_quantiles``. The models live in :mod:`~terralab.dengue.baselines`,
:mod:`~terralab.dengue.regression`, :mod:`~terralab.dengue.pooled`, :mod:`~terralab.dengue.lstm` and
:mod:`~terralab.dengue.denguenet`; :mod:`~terralab.dengue.models` names them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import InvalidInputError
from ..seeding import seed_torch
from . import weeks as _weeks
from .probabilistic import tidy_quantiles

if TYPE_CHECKING:
    from types import ModuleType

WEEK = pd.Timedelta(days=7)


def whole_weeks(value: Any, name: str, minimum: int = 1) -> int:
    """``value`` as a whole number of weeks ≥ ``minimum``; anything else (1.7, "2", True, 0) is refused.

    >>> whole_weeks(2.0, "horizon")
    2
    >>> whole_weeks(1.5, "horizon")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    terralab.errors.InvalidInputError: horizon must be a whole number of weeks, got 1.5 (float); ...

    Raises
    ------
    InvalidInputError
        Not an integer (an integral float such as 2.0 is accepted), or below ``minimum``.
    """
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if (
        not ok
        and isinstance(value, (float, np.floating))
        and np.isfinite(value)
        and float(value).is_integer()
    ):
        ok = True
    if not ok:
        raise InvalidInputError(
            f"{name} must be a whole number of weeks, got {value!r} "
            f"({type(value).__name__}); pass an integer such as {max(minimum, 1)}"
        )
    if int(value) < minimum:
        raise InvalidInputError(f"{name} must be ≥ {minimum} week(s), got {value!r}")
    return int(value)


@dataclass
class Panel:
    """Everything a model may look at: cases (week × location), covariates, image features, settings."""

    cases: pd.DataFrame
    covariates: pd.DataFrame | None = None
    features: Any = None  # xr.Dataset (location, week, ...) of image features, or None
    horizon: int = 1
    lookback: int = 5
    seed: int = 0
    progress: bool | None = None  # None: a bar when a person watches (terralab.progress)
    extra: dict = field(default_factory=dict)

    @property
    def locations(self) -> list:
        return list(self.cases.columns)

    def pos(self, weeks: pd.DatetimeIndex) -> np.ndarray:
        """Row positions of ``weeks`` in the case index."""
        p = self.cases.index.get_indexer(weeks)
        if (p < 0).any():
            raise InvalidInputError(f"week {_weeks.week_label(weeks[p < 0][0])} is not in the case table")
        return p


class Forecaster:
    """Base class. Subclasses set ``name`` and implement :meth:`forecast` (and :meth:`fit` when trained)."""

    name = "base"
    uses_covariates = False
    uses_images = False
    uses_torch = False
    trained = False

    def __init__(self, **params: Any) -> None:
        self.params = params

    def history_weeks(self, panel: Panel) -> int:
        """Weeks of history (including the origin) needed at each origin."""
        return panel.lookback

    def fit(self, panel: Panel, train_end: pd.Timestamp) -> Forecaster:
        """Learn from targets up to ``train_end`` (inclusive); baselines need nothing."""
        return self

    def forecast(self, panel: Panel, origins: pd.DatetimeIndex) -> pd.DataFrame:
        """Forecast of week ``origin + horizon`` for every origin (rows) and location (columns)."""
        raise NotImplementedError

    def fit_horizons(
        self, panel: Panel, train_end: pd.Timestamp, horizons: Iterable[int]
    ) -> dict[int, Forecaster]:
        """A model for each horizon, fitted on targets up to ``train_end`` (``panel.horizon`` is ignored).

        Default: one copy per horizon, each fitted on its own (a direct model per horizon). A model whose one
        fit serves every horizon (the LSTM's multi-horizon head) overrides this and returns itself for each.
        """
        out = {}
        for h in horizons:
            model = type(self)(**self.params)
            if self.trained:
                model.fit(replace(panel, horizon=int(h)), train_end)
            out[int(h)] = model
        return out

    #: How :meth:`forecast_quantiles` makes its quantiles (shown in reports).
    quantile_method = (
        "empirical quantiles of the log1p-scale errors on the training origins, pooled over locations"
    )
    #: What ``forecast`` is: "median" or "mean" of the predictive distribution, or "point" (a rule, e.g. last
    #: week).
    point_kind = "median"

    def calibration_origins(self, panel: Panel, train_end: pd.Timestamp) -> pd.DatetimeIndex:
        """Origins whose errors calibrate the quantiles: every training origin (targets up to
        ``train_end``)."""
        return train_origins(panel, train_end, self.history_weeks(panel))

    def calibrate(self, panel: Panel, train_end: pd.Timestamp) -> Forecaster:
        """Learn the spread of the forecasts from data up to ``train_end`` (after :meth:`fit`).

        Default: the errors log1p(y) − log1p(forecast) of the fitted model on :meth:`calibration_origins`,
        pooled over locations (a multiplicative spread, so that it scales with the level of each location).
        """
        origins = self.calibration_origins(panel, train_end)
        f = self.forecast(panel, origins)[panel.locations].to_numpy()
        y = panel.cases.to_numpy()[panel.pos(origins) + panel.horizon]
        self.log_errors_ = (np.log1p(y) - np.log1p(np.clip(f, 0, None))).ravel()
        return self

    def forecast_quantiles(
        self, panel: Panel, origins: pd.DatetimeIndex, point: pd.DataFrame, levels: np.ndarray
    ) -> np.ndarray:
        """Predictive quantiles (origin × location × level) around the point forecast ``point``."""
        shift = np.quantile(self.log_errors_, levels)
        base = np.log1p(np.clip(point[panel.locations].to_numpy(), 0, None))
        return tidy_quantiles(np.expm1(base[..., None] + shift))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"


@contextlib.contextmanager
def single_thread(torch: bool = False) -> Iterator[None]:
    """Run BLAS/OpenMP (and torch, when ``torch``) on one thread for the duration.

    The models here are tiny; on a shared machine extra threads cost far more in contention than they gain
    (gradient boosting took 33 s with default threads and 1 s with one, on 2 busy cores).
    """
    from threadpoolctl import threadpool_limits

    tm = None
    if torch:
        import torch as tm

        n_torch = tm.get_num_threads()
    with threadpool_limits(1):
        if tm is not None:
            tm.set_num_threads(1)
        try:
            yield
        finally:
            if tm is not None:
                tm.set_num_threads(n_torch)


# --------------------------------------------------------------------------------------------------


def covariate_stats(panel: Panel, train_end: pd.Timestamp) -> tuple[pd.Series, pd.Series]:
    train = panel.covariates.loc[:train_end]
    mean = train.mean()
    std = train.std().replace(0, 1.0).fillna(1.0)
    return mean, std


def train_origins(panel: Panel, train_end: pd.Timestamp, need: int) -> pd.DatetimeIndex:
    idx = panel.cases.index
    last_origin = train_end - panel.horizon * WEEK
    origins = idx[(need - 1) :][idx[(need - 1) :] <= last_origin]
    if len(origins) < 10:
        raise InvalidInputError(
            f"lookback of {panel.lookback} weeks leaves {len(origins)} training sample(s) before "
            f"{_weeks.week_label(train_end + WEEK)}; shorten lookback or move test_start later (need ≥ 10)"
        )
    return origins


def torch_seed(seed: int) -> ModuleType:
    """torch, with its generator seeded for weight initialisation (:func:`terralab.seeding.seed_torch`)."""
    return seed_torch(seed)
