"""Forecasting models behind one interface: baselines, covariate models, an LSTM and DengueNet.

Every model is a :class:`Forecaster`. :func:`terralab.dengue.backtest` builds a :class:`Panel` (validated cases,
aligned covariates, image features, horizon, lookback, seed), calls ``fit(panel, train_end)`` once with targets
up to the week before the test window, then ``forecast(panel, origins)`` for every forecast origin (target week
minus ``horizon``). A model uses only data at or before each origin; ``tests/dengue/test_dengue_models.py`` checks
that changing later weeks leaves every forecast unchanged.

========================  ==========================================================================================
name                      model
========================  ==========================================================================================
``persistence``           last observed week
``moving_mean``           mean of the last ``window_weeks`` weeks (default 4)
``seasonal_naive``        the same MMWR week one year earlier (week 53 → week 52)
``median_ar``             pooled linear autoregression on scale-free lags (+ covariates), fitted by least absolute
                          deviation (median regression, statsmodels QuantReg)
``gbm``                   pooled gradient boosting (LightGBM) of the change in log1p cases on the pooled model's
                          features; quantiles by split conformal
``nb_glm``                negative-binomial GLM per location (log link) on log lags, season and covariates;
                          dispersion from the Cameron–Trivedi auxiliary regression
``pooled``                one global log-linear model over all locations: lags, location level, climatology,
                          season (covariates optional); quantiles from held-out errors (split conformal)
``lstm``                  pooled two-layer LSTM on the lookback window of cases (+ covariates), quantile head for
                          every horizon at once (pinball loss)
``denguenet``             DengueNet (Kuo et al. 2024): ViT and radiomics image-feature branches, each a stacked
                          LSTM (60, 30, 5), merged into dense 30 → 1; per location; MAE on min-max-scaled cases
========================  ==========================================================================================
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InvalidInputError
from . import weeks as _weeks

WEEK = pd.Timedelta(days=7)


def whole_weeks(value: Any, name: str, minimum: int = 1) -> int:
    """``value`` as a whole number of weeks ≥ ``minimum``; anything else (1.7, "2", True, 0) is refused.

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
    progress: bool = False
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

    def fit_horizons(self, panel: Panel, train_end: pd.Timestamp, horizons) -> dict[int, Forecaster]:
        """A model for each horizon, fitted on targets up to ``train_end`` (``panel.horizon`` is ignored).

        Default: one copy per horizon, each fitted on its own (a direct model per horizon). A model whose one fit
        serves every horizon (the LSTM's multi-horizon head) overrides this and returns itself for each.
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
    #: What ``forecast`` is: "median" or "mean" of the predictive distribution, or "point" (a rule, e.g. last week).
    point_kind = "median"

    def calibration_origins(self, panel: Panel, train_end: pd.Timestamp) -> pd.DatetimeIndex:
        """Origins whose errors calibrate the quantiles: every training origin (targets up to ``train_end``)."""
        return _train_origins(panel, train_end, self.history_weeks(panel))

    def calibrate(self, panel: Panel, train_end: pd.Timestamp) -> Forecaster:
        """Learn the spread of the forecasts from data up to ``train_end`` (after :meth:`fit`).

        Default: the errors log1p(y) − log1p(forecast) of the fitted model on :meth:`calibration_origins`, pooled
        over locations (a multiplicative spread, so that it scales with the level of each location).
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
        return _tidy(np.expm1(base[..., None] + shift))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"


@contextlib.contextmanager
def single_thread(torch: bool = False):
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


def _tidy(values: np.ndarray) -> np.ndarray:
    """Quantiles non-negative and non-crossing along the last axis."""
    return np.sort(np.clip(np.nan_to_num(values, nan=0.0), 0.0, None), axis=-1)


# --------------------------------------------------------------------------------------------------
# baselines
# --------------------------------------------------------------------------------------------------
class _Baseline(Forecaster):
    """A rule without parameters; its quantiles come from its own past errors at the same horizon.

    As the forecast hubs' baseline: for each location, the empirical distribution of the rule's errors
    y_{t+h} − forecast_t over the ``calibration_weeks`` origins before the fit (default: every origin with enough
    history), added to the forecast; counts below 0 are set to 0. ``symmetric`` mirrors the errors (±e) so that the
    median stays the rule's value, as the COVID-19 Forecast Hub baseline does.
    """

    quantile_method = "empirical quantiles of the rule's own past errors at this horizon, per location"
    point_kind = "point"

    def __init__(
        self, calibration_weeks: int | None = None, symmetric: bool = False, *, _rule: dict | None = None
    ) -> None:
        cal = None if calibration_weeks is None else whole_weeks(calibration_weeks, "calibration_weeks", 10)
        super().__init__(**(_rule or {}), calibration_weeks=cal, symmetric=bool(symmetric))

    def calibration_origins(self, panel: Panel, train_end: pd.Timestamp) -> pd.DatetimeIndex:
        origins = _train_origins(panel, train_end, self.history_weeks(panel))
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
        return _tidy(point[panel.locations].to_numpy()[..., None] + shift[None, :, :])


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
    """Mean of the last ``window_weeks`` observed weeks (default 4, the DengueNet comparison's "4-week mean")."""

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
                f"seasonal_naive needs the same week one year before {_weeks.week_label(targets[p < 0][0])}, which "
                "is before the first week of the data"
            )
        return pd.DataFrame(panel.cases.to_numpy()[p], index=origins, columns=panel.locations)


# --------------------------------------------------------------------------------------------------
# feature matrices for the trained models
# --------------------------------------------------------------------------------------------------
def _season(targets: pd.DatetimeIndex) -> np.ndarray:
    doy = targets.day_of_year.to_numpy(dtype=float)
    ang = 2 * np.pi * doy / 365.25
    return np.column_stack([np.sin(ang), np.cos(ang)])


def _cov_stats(panel: Panel, train_end: pd.Timestamp) -> tuple[pd.Series, pd.Series]:
    train = panel.covariates.loc[:train_end]
    mean = train.mean()
    std = train.std().replace(0, 1.0).fillna(1.0)
    return mean, std


def _design(
    panel: Panel,
    origins: pd.DatetimeIndex,
    location,
    *,
    scale: float,
    transform: str,
    cov_stats: tuple | None,
    n_lags: int,
) -> np.ndarray:
    """One row per origin: lags 0..n_lags-1 of cases (scaled), season of the target week, covariate lags."""
    y = panel.cases[location].to_numpy()
    p = panel.pos(origins)
    lag_idx = p[:, None] - np.arange(n_lags)[None, :]
    lags = y[lag_idx]
    lags = np.log1p(lags) if transform == "log" else lags / scale
    cols = [lags, _season(origins + panel.horizon * WEEK)]
    if cov_stats is not None and panel.covariates is not None:
        mean, std = cov_stats
        for var in dict.fromkeys(panel.covariates.columns.get_level_values(0)):
            c = panel.covariates[(var, location)].to_numpy()
            z = (c - mean[(var, location)]) / std[(var, location)]
            cols.append(z[lag_idx])
    return np.column_stack(cols)


def _design_names(panel: Panel, n_lags: int, transform: str, with_covariates: bool) -> list[str]:
    """Column names of :func:`_design`: cases lags (``log1p_cases_lag0`` = origin week), season, covariate lags."""
    stem = "log1p_cases" if transform == "log" else "scaled_cases"
    names = [f"{stem}_lag{k}" for k in range(n_lags)] + ["season_sin", "season_cos"]
    if with_covariates and panel.covariates is not None:
        for var in dict.fromkeys(panel.covariates.columns.get_level_values(0)):
            names += [f"{var}_lag{k}" for k in range(n_lags)]
    return names


def _train_origins(panel: Panel, train_end: pd.Timestamp, need: int) -> pd.DatetimeIndex:
    idx = panel.cases.index
    last_origin = train_end - panel.horizon * WEEK
    origins = idx[(need - 1) :][idx[(need - 1) :] <= last_origin]
    if len(origins) < 10:
        raise InvalidInputError(
            f"lookback of {panel.lookback} weeks leaves {len(origins)} training sample(s) before "
            f"{_weeks.week_label(train_end + WEEK)}; shorten lookback or move test_start later (need ≥ 10)"
        )
    return origins


class _Pooled(Forecaster):
    """Shared plumbing for models fitted on all locations at once with per-location scaling."""

    uses_covariates = True
    trained = True
    transform = "scale"

    def _fit_common(self, panel: Panel, train_end: pd.Timestamp):
        self.scale_ = {c: float(panel.cases.loc[:train_end, c].mean()) + 1.0 for c in panel.locations}
        self.cov_stats_ = _cov_stats(panel, train_end) if panel.covariates is not None else None
        origins = _train_origins(panel, train_end, self.history_weeks(panel))
        X, y = [], []
        for loc in panel.locations:
            X.append(self._design(panel, origins, loc))
            target = panel.cases[loc].to_numpy()[panel.pos(origins) + panel.horizon]
            y.append(self._target(target, loc))
        return np.vstack(X), np.concatenate(y)

    def _design(self, panel, origins, loc):
        return _design(
            panel,
            origins,
            loc,
            scale=self.scale_[loc],
            transform=self.transform,
            cov_stats=self.cov_stats_,
            n_lags=panel.lookback,
        )

    def _target(self, y, loc):
        return y / self.scale_[loc]

    def _untarget(self, f, loc):
        return f * self.scale_[loc]

    def forecast(self, panel: Panel, origins: pd.DatetimeIndex) -> pd.DataFrame:
        out = {}
        for loc in panel.locations:
            f = self.model_.predict(self._design(panel, origins, loc))
            out[loc] = np.clip(self._untarget(f, loc), 0, None)
        return pd.DataFrame(out, index=origins)


class _Linear:
    """A fitted linear predictor (intercept first) with scikit-learn's ``predict``."""

    def __init__(self, coef: np.ndarray) -> None:
        self.coef_ = np.asarray(coef, dtype=float)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.coef_[0] + X @ self.coef_[1:]


class MedianAR(_Pooled):
    """Pooled linear autoregression fitted by least absolute deviation on lags divided by each city's mean."""

    name = "median_ar"

    def __init__(self, quantile: float = 0.5) -> None:
        super().__init__(quantile=float(quantile))

    def fit(self, panel: Panel, train_end: pd.Timestamp) -> MedianAR:
        import statsmodels.api as sm

        X, y = self._fit_common(panel, train_end)
        # statsmodels' IRLS quantile regression: scikit-learn's exact LP (HiGHS) took minutes and gigabytes on
        # the 47,000 rows of 100 pooled municipalities
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = sm.QuantReg(y, sm.add_constant(X, has_constant="add")).fit(
                q=self.params["quantile"], max_iter=300
            )
        self.model_ = _Linear(fit.params)
        return self


def log_link_irls(
    X: np.ndarray, y: np.ndarray, alpha: float = 0.0, *, tol: float = 1e-8, max_iter: int = 100
) -> np.ndarray:
    """Coefficients of a Poisson (``alpha`` = 0) or negative-binomial (Var = μ + αμ², α fixed) GLM with log link.

    Iteratively reweighted least squares as statsmodels' ``GLM.fit()`` does it (start μ = (y + ȳ)/2, stop when
    the deviance changes by less than ``tol`` relative), in plain numpy: the same estimates without its
    per-fit overhead, which dominated rolling evaluations over hundreds of locations
    (``tests/dengue/test_dengue_models.py`` compares the two).
    """
    y = np.asarray(y, dtype=float)
    mu = (y + y.mean()) / 2.0
    eta = np.log(mu)

    def deviance(m):
        with np.errstate(divide="ignore", invalid="ignore"):
            ylog = np.where(y > 0, y * np.log(y / m), 0.0)
            if alpha == 0:
                return 2 * np.sum(ylog - (y - m))
            return 2 * np.sum(ylog - (y + 1 / alpha) * np.log((1 + alpha * y) / (1 + alpha * m)))

    dev = deviance(mu)
    beta = np.zeros(X.shape[1])
    for _ in range(max_iter):
        w = mu / (1 + alpha * mu)
        z = eta + (y - mu) / mu
        sw = np.sqrt(w)
        beta = np.linalg.lstsq(X * sw[:, None], z * sw, rcond=None)[0]
        eta = np.clip(X @ beta, -30, 30)
        mu = np.exp(eta)
        new = deviance(mu)
        if abs(new - dev) <= tol * (abs(dev) + tol):
            break
        dev = new
    return beta


class NegBinGLM(Forecaster):
    """Negative-binomial GLM per location: log E[y_{t+h}] = b0 + Σ b_k log(1 + y_{t-k}) + season + covariates.

    The dispersion α (Var = μ + α μ²) is estimated from a Poisson fit by the Cameron–Trivedi auxiliary regression,
    then the NB GLM is refitted with it (statsmodels). After ``fit``: ``coefficients_`` (term × location; covariate
    terms are per standard deviation of the training weeks, ``<var>_lag<k>`` = k weeks before the origin) and
    ``alpha_`` (location → α).
    """

    name = "nb_glm"
    uses_covariates = True
    trained = True
    quantile_method = (
        "quantiles of the fitted negative binomial (mean of the GLM, the location's dispersion α)"
    )
    point_kind = "mean"

    def calibrate(self, panel: Panel, train_end: pd.Timestamp) -> NegBinGLM:
        return self  # the predictive distribution is the fitted NB itself

    def forecast_quantiles(
        self, panel: Panel, origins: pd.DatetimeIndex, point: pd.DataFrame, levels: np.ndarray
    ) -> np.ndarray:
        from scipy import stats

        mu = np.clip(point[panel.locations].to_numpy(), 1e-9, None)[..., None]
        alpha = np.array([self.alpha_[loc] for loc in panel.locations])[None, :, None]
        n = 1.0 / alpha
        return _tidy(stats.nbinom.ppf(np.asarray(levels)[None, None, :], n, n / (n + mu)))

    def fit(self, panel: Panel, train_end: pd.Timestamp) -> NegBinGLM:
        self.cov_stats_ = _cov_stats(panel, train_end) if panel.covariates is not None else None
        origins = _train_origins(panel, train_end, self.history_weeks(panel))
        self.params_, self.alpha_, self.log_cap_ = {}, {}, {}
        for loc in panel.locations:
            X = np.column_stack([np.ones(len(origins)), self._design(panel, origins, loc)])
            y = panel.cases[loc].to_numpy()[panel.pos(origins) + panel.horizon]
            mu = np.exp(np.clip(X @ log_link_irls(X, y, alpha=0.0), -30, 30))
            alpha = float(np.sum((y - mu) ** 2 - y) / np.sum(mu**2))
            alpha = min(max(alpha, 1e-4), 10.0)
            self.params_[loc] = log_link_irls(X, y, alpha=alpha)
            self.alpha_[loc] = alpha
            # a GLM with many covariate lags on a short history can extrapolate exp() without bound (DengAI Iquitos,
            # two years of data, forecast 5e8 cases): no more than ten times the largest weekly count seen
            self.log_cap_[loc] = float(np.log(10.0 * (panel.cases.loc[:train_end, loc].max() + 1.0)))
        names = ["const"] + _design_names(panel, panel.lookback, "log", self.cov_stats_ is not None)
        self.coefficients_ = pd.DataFrame(self.params_, index=names)
        return self

    def _design(self, panel, origins, loc):
        return _design(
            panel, origins, loc, scale=1.0, transform="log", cov_stats=self.cov_stats_, n_lags=panel.lookback
        )

    def forecast(self, panel: Panel, origins: pd.DatetimeIndex) -> pd.DataFrame:
        out = {}
        for loc in panel.locations:
            X = np.column_stack([np.ones(len(origins)), self._design(panel, origins, loc)])
            # the linear predictor is clipped so one wild covariate week cannot overflow exp()
            eta = np.clip(X @ self.params_[loc], -20, min(20.0, self.log_cap_[loc]))
            out[loc] = np.exp(eta)
        return pd.DataFrame(out, index=origins)


# --------------------------------------------------------------------------------------------------
# the pooled (global) model
# --------------------------------------------------------------------------------------------------
def _climatology(logy: np.ndarray, half_width: int = 2) -> np.ndarray:
    """Mean of log1p cases around the same week in every earlier year, for each row (NaN without an earlier year).

    Row i averages rows i − 52j − w … i − 52j + w (w = ``half_width``) over the years j ≥ 1 that exist: only weeks
    at least 52 − w weeks before row i, so a forecast of week t + h (h ≤ 52 − w) uses nothing after its origin t.
    """
    n = logy.shape[0]
    pad = np.vstack(
        [np.full((half_width, logy.shape[1]), np.nan), logy, np.full((half_width, logy.shape[1]), np.nan)]
    )
    win = np.nanmean(
        np.stack([pad[k : k + n] for k in range(2 * half_width + 1)]), axis=0
    )  # centred window mean
    total = np.zeros_like(logy)
    count = np.zeros_like(logy)
    for j in range(1, n // 52 + 1):
        src = win[: n - 52 * j]
        ok = np.isfinite(src)
        total[52 * j :] += np.where(ok, src, 0.0)
        count[52 * j :] += ok
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _conformal_params(
    calibration_weeks, spread, level_bins, covariates, min_calibration_rows, max_folds, min_regression_rows
) -> dict:
    """Checked settings of the pooled models' features and split-conformal quantiles."""
    if spread not in ("auto", "regression", "binned"):
        raise InvalidInputError(f"spread must be 'auto', 'regression' or 'binned', got {spread!r}")
    return {
        "calibration_weeks": whole_weeks(calibration_weeks, "calibration_weeks", 13),
        "spread": spread,
        "level_bins": whole_weeks(level_bins, "level_bins"),
        "covariates": bool(covariates),
        "min_calibration_rows": whole_weeks(min_calibration_rows, "min_calibration_rows"),
        "max_folds": whole_weeks(max_folds, "max_folds"),
        "min_regression_rows": whole_weeks(min_regression_rows, "min_regression_rows"),
    }


class Pooled(Forecaster):
    """One model for all locations (global), on log1p counts, with quantiles from its own held-out errors.

    For location l, origin t and horizon h the target log1p(y_{l,t+h}) is regressed (least squares, pooled over
    locations, one model per horizon) on:

    * lagged cases: log1p(y_{t−k}), k = 0 … lookback − 1, and log1p of the 13-week mean;
    * location effects: the location's mean log1p count over the training weeks;
    * seasonality: the location's climatology (mean log1p count around the same week of every earlier year)
      at the target week and at the origin week, and sin/cos of the target's week of the year (two harmonics);
    * with ``interactions``, the lags and seasonal terms times the location's mean level (dynamics differ with size);
    * with ``covariates`` and a source that has them: each covariate's mean over weeks t−3 … t and t−11 … t−4
      (standardised per location on the training weeks), the lags at which temperature and rain act on mosquitoes.

    Quantiles (split conformal): the errors log1p(y) − prediction of copies fitted before held-out windows of
    ``calibration_weeks`` at the end of the training weeks. One window when it holds ≥ ``min_calibration_rows``
    (location × origin) errors; with few locations (a single series) up to ``max_folds`` consecutive windows, each
    scored by a copy fitted on the weeks before it, so that one calm or one epidemic year does not set the width.
    ``spread``: ``"regression"`` standardises the errors by a regression of their size on the features
    (location-scale); ``"binned"`` takes the errors' empirical quantiles in ``level_bins`` bins of the predicted level;
    ``"auto"`` (default) uses the regression when there are ≥ ``min_regression_rows`` errors, else the bins (a
    regression of ~25 coefficients on one series' few dozen errors fits them, and its intervals come out too
    narrow). ``forecast`` is the predictive median. Non-negative and non-crossing.
    """

    name = "pooled"
    uses_covariates = True
    trained = True
    point_kind = "median"
    quantile_method = (
        "split conformal: empirical quantiles of held-out log1p-scale errors (windows of "
        "calibration_weeks before the fit's end, scored by copies fitted before them), standardised "
        "by a regression of their size or binned by predicted level, pooled over locations"
    )

    def __init__(
        self,
        calibration_weeks: int = 52,
        spread: str = "auto",
        level_bins: int = 5,
        interactions: bool = True,
        ridge: float = 1e-3,
        ridge_prior: float = 40.0,
        covariates: bool = False,
        min_calibration_rows: int = 1000,
        max_folds: int = 4,
        min_regression_rows: int = 750,
    ) -> None:
        if not (np.isfinite(ridge) and ridge >= 0 and np.isfinite(ridge_prior) and ridge_prior >= 0):
            raise InvalidInputError(f"ridge and ridge_prior must be ≥ 0, got {ridge!r}, {ridge_prior!r}")
        super().__init__(
            interactions=bool(interactions),
            ridge=float(ridge),
            ridge_prior=float(ridge_prior),
            **_conformal_params(
                calibration_weeks,
                spread,
                level_bins,
                covariates,
                min_calibration_rows,
                max_folds,
                min_regression_rows,
            ),
        )

    def history_weeks(self, panel: Panel) -> int:
        return max(panel.lookback, 13)

    # features ---------------------------------------------------------------------------------------
    def _prepare(self, panel: Panel, train_end: pd.Timestamp) -> None:
        cases = panel.cases.to_numpy(dtype=float)
        self._logy = np.log1p(cases)
        # rows past the data (targets of the last origins) get their climatology from the earlier years too
        beyond = np.full((panel.horizon, cases.shape[1]), np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore", RuntimeWarning
            )  # weeks without any earlier year: NaN, filled later
            self._clim = _climatology(np.vstack([self._logy, beyond]))
        csum = np.vstack([np.zeros((1, cases.shape[1])), np.cumsum(cases, axis=0)])
        self._mean13 = np.full_like(cases, np.nan)
        self._mean13[12:] = np.log1p((csum[13:] - csum[:-13]) / 13)
        train = panel.cases.index <= train_end
        self.loc_mean_ = self._logy[train].mean(axis=0)
        self.log_max_ = self._logy[train].max(axis=0)
        self._cov = None
        if self.params["covariates"] and panel.covariates is not None:
            # per variable: (week × location) standardised on the training weeks, then the means of weeks
            # t-3..t and t-11..t-4 (one row per origin t)
            mean, std = _cov_stats(panel, train_end)
            blocks = []
            for var in dict.fromkeys(panel.covariates.columns.get_level_values(0)):
                cols = [(var, loc) for loc in panel.locations]
                z = ((panel.covariates[cols] - mean[cols]) / std[cols]).to_numpy(dtype=float)
                cz = np.vstack([np.zeros((1, z.shape[1])), np.cumsum(z, axis=0)])
                recent = np.full_like(z, np.nan)
                recent[3:] = (cz[4:] - cz[:-4]) / 4
                earlier = np.full_like(z, np.nan)
                earlier[11:] = (cz[8:-4] - cz[:-12]) / 8  # weeks t-11 .. t-4
                blocks += [recent, earlier]
            self._cov = np.stack(blocks, axis=-1)  # week × location × 2·variables

    def _features(self, panel: Panel, origins: pd.DatetimeIndex) -> np.ndarray:
        """(origin × location) rows, flattened origin-major, × features."""
        p = panel.pos(origins)
        n_o, n_l = len(p), panel.cases.shape[1]
        lags = np.stack([self._logy[p - k] for k in range(panel.lookback)], axis=-1)  # o × l × k
        fill = self.loc_mean_[None, :]
        clim_t = self._clim[p + panel.horizon]
        clim_o = self._clim[p]
        clim_t = np.where(np.isfinite(clim_t), clim_t, fill)
        clim_o = np.where(np.isfinite(clim_o), clim_o, fill)
        ang = 2 * np.pi * (origins + panel.horizon * WEEK).day_of_year.to_numpy(dtype=float) / 365.25
        season = np.column_stack([np.sin(ang), np.cos(ang), np.sin(2 * ang), np.cos(2 * ang)])
        cols = [
            lags,
            self._mean13[p][..., None],
            np.broadcast_to(self.loc_mean_[None, :, None], (n_o, n_l, 1)),
            clim_t[..., None],
            clim_o[..., None],
            (clim_t - clim_o)[..., None],
            np.broadcast_to(season[:, None, :], (n_o, n_l, season.shape[1])),
        ]
        X = np.concatenate(cols, axis=-1).reshape(n_o * n_l, -1)
        if self.params.get("interactions", False):
            # dynamics differ with the size of the location: lags and seasonal terms times its mean level
            k = panel.lookback + 1
            size = X[:, k : k + 1] - 2.0
            X = np.column_stack([X, X[:, :k] * size, X[:, k + 1 : k + 4] * size])
        if self._cov is not None:
            X = np.column_stack([X, self._cov[p].reshape(n_o * n_l, -1)])
        return X

    # the point model (least squares here; GradientBoosting overrides these two) -------------------------
    def _fit_point(self, X: np.ndarray, y: np.ndarray, seed: int):
        return self._solve(X, y)

    def _predict_point(self, model, X: np.ndarray) -> np.ndarray:
        return self._predict(model, X)

    def _solve(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        A = np.column_stack([np.ones(len(X)), X])
        # ridge × rows keeps the penalty's weight fixed relative to the data; ridge_prior is a fixed amount on top,
        # which only matters when the rows are few (one series: a few hundred rows for ~25 coefficients)
        strength = self.params.get("ridge", 1e-3) * len(A) + self.params.get("ridge_prior", 0.0)
        reg = strength * np.eye(A.shape[1])
        reg[0, 0] = 0.0
        return np.linalg.solve(A.T @ A + reg, A.T @ y)

    @staticmethod
    def _predict(coef: np.ndarray, X: np.ndarray) -> np.ndarray:
        return coef[0] + X @ coef[1:]

    def _training(self, panel: Panel, end: pd.Timestamp) -> tuple[np.ndarray, np.ndarray]:
        origins = _train_origins(panel, end, self.history_weeks(panel))
        X = self._features(panel, origins)
        y = self._logy[panel.pos(origins) + panel.horizon].ravel()
        ok = np.isfinite(X).all(axis=1)
        return X[ok], y[ok]

    # fit / forecast -------------------------------------------------------------------------------------
    def _held_out(self, panel: Panel, train_end: pd.Timestamp) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Features, targets and predictions of the calibration windows, each by a copy fitted before it."""
        cw, idx, n_loc = self.params["calibration_weeks"], panel.cases.index, panel.cases.shape[1]
        need = self.history_weeks(panel)
        Xs, ys, preds = [], [], []
        for k in range(self.params["max_folds"]):
            hi = train_end - k * cw * WEEK
            lo = hi - cw * WEEK
            targets = idx + panel.horizon * WEEK
            origins = idx[(targets > lo) & (targets <= hi)]
            origins = origins[panel.pos(origins) >= need - 1]
            try:
                Xc, yc = self._training(panel, lo)
            except InvalidInputError:  # too short a history for this window
                break
            if k and len(yc) < 52 * n_loc:  # later windows only while their copy has a year of training weeks
                break
            Xv = self._features(panel, origins)
            yv = self._logy[panel.pos(origins) + panel.horizon].ravel()
            ok = np.isfinite(Xv).all(axis=1)
            Xs.append(Xv[ok])
            ys.append(yv[ok])
            preds.append(self._predict_point(self._fit_point(Xc, yc, panel.seed), Xv[ok]))
            if sum(len(v) for v in ys) >= self.params["min_calibration_rows"]:
                break
        if not Xs:  # not even one held-out window: in-sample errors
            origins = _train_origins(panel, train_end, need)
            Xv = self._features(panel, origins)
            yv = self._logy[panel.pos(origins) + panel.horizon].ravel()
            ok = np.isfinite(Xv).all(axis=1)
            return Xv[ok], yv[ok], self._predict_point(self.model_, Xv[ok])
        self.calibration_folds_ = len(Xs)
        return np.vstack(Xs), np.concatenate(ys), np.concatenate(preds)

    def fit(self, panel: Panel, train_end: pd.Timestamp) -> Pooled:
        self._prepare(panel, train_end)
        X, y = self._training(panel, train_end)
        self.model_ = self._fit_point(X, y, panel.seed)
        self.calibration_folds_ = 0
        Xv, yv, pred = self._held_out(panel, train_end)
        spread = self.params["spread"]
        if spread == "auto":
            spread = "regression" if len(yv) >= self.params["min_regression_rows"] else "binned"
        self.spread_ = spread
        if spread == "regression":
            # location-scale: the size of the held-out errors regressed on the features, errors standardised by it
            err = yv - pred
            self.spread_coef_ = self._solve(Xv, np.log(np.abs(err) + 0.05))
            self._set_errors(np.zeros(len(err)), err / self._spread(Xv), bins=1)
        else:
            self.spread_coef_ = None
            self._set_errors(pred, yv - pred, bins=self.params["level_bins"])
        return self

    def _spread(self, X: np.ndarray) -> np.ndarray:
        # bounded so that a feature far outside the calibration weeks cannot blow the intervals up (or shut them)
        return np.exp(np.clip(self._predict(self.spread_coef_, X), np.log(0.02), np.log(3.0)))

    def _scale(self, panel: Panel, origins: pd.DatetimeIndex) -> np.ndarray | float:
        if self.spread_coef_ is None:
            return 1.0
        X = np.nan_to_num(self._features(panel, origins))
        return self._spread(X).reshape(len(origins), -1)

    def _set_errors(self, pred: np.ndarray, err: np.ndarray, bins: int) -> None:
        bins = max(1, min(bins, len(pred) // 50))
        edges = np.quantile(pred, np.linspace(0, 1, bins + 1)[1:-1]) if bins > 1 else np.array([])
        which = np.searchsorted(edges, pred)
        self.bin_edges_ = edges
        self.bin_errors_ = [np.sort(err[which == b]) for b in range(bins)]

    def _point_log(self, panel: Panel, origins: pd.DatetimeIndex) -> np.ndarray:
        X = self._features(panel, origins)
        pred = self._predict_point(self.model_, np.nan_to_num(X)).reshape(len(origins), -1)
        # a linear model extrapolates without bound: no more than ten times the largest weekly count seen
        return np.clip(pred, 0.0, self.log_max_ + np.log(10.0))

    def _shift(self, pred: np.ndarray, levels: np.ndarray) -> np.ndarray:
        which = np.searchsorted(self.bin_edges_, pred)
        table = np.stack([np.quantile(e, levels) for e in self.bin_errors_])  # bin × level
        return table[which]

    def forecast(self, panel: Panel, origins: pd.DatetimeIndex) -> pd.DataFrame:
        pred = self._point_log(panel, origins)
        key = pred if self.spread_coef_ is None else np.zeros_like(pred)
        med = np.expm1(pred + self._scale(panel, origins) * self._shift(key, np.array([0.5]))[..., 0])
        return pd.DataFrame(np.clip(med, 0, None), index=origins, columns=panel.locations)

    def calibrate(self, panel: Panel, train_end: pd.Timestamp) -> Pooled:
        return self  # the held-out errors were collected in fit

    def forecast_quantiles(
        self, panel: Panel, origins: pd.DatetimeIndex, point: pd.DataFrame, levels: np.ndarray
    ) -> np.ndarray:
        pred = self._point_log(panel, origins)
        key = pred if self.spread_coef_ is None else np.zeros_like(pred)
        scale = self._scale(panel, origins)
        scale = scale[..., None] if isinstance(scale, np.ndarray) else scale
        return _tidy(np.expm1(pred[..., None] + scale * self._shift(key, np.asarray(levels))))


class GradientBoosting(Pooled):
    """Pooled gradient-boosted trees (LightGBM) on the pooled model's features, quantiles by split conformal.

    The trees learn the change log1p(y_{t+h}) − log1p(y_t) from the features of :class:`Pooled` (lags, 13-week
    mean, location level, climatology, season; no interaction terms: trees find them), squared error, one model per
    horizon; learning the change rather than the level lets them forecast counts larger than any seen in training.
    Quantiles as :class:`Pooled`: held-out errors of a copy fitted before the last ``calibration_weeks``. One
    thread, fixed seed: deterministic. Replaces a scikit-learn HistGradientBoosting on scaled counts that fitted
    35 s per refit on 100 municipalities (a second copy for its conformal errors); this one fits in ~8 s.
    """

    name = "gbm"
    quantile_method = (
        "split conformal: held-out log1p-scale errors of a copy fitted before the last "
        "calibration_weeks, standardised by a regression of their size, pooled over locations"
    )

    def __init__(
        self,
        n_estimators: int = 200,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_child_samples: int = 20,
        calibration_weeks: int = 52,
        spread: str = "auto",
        level_bins: int = 5,
        covariates: bool = False,
        min_calibration_rows: int = 1000,
        max_folds: int = 4,
        min_regression_rows: int = 750,
    ) -> None:
        Forecaster.__init__(
            self,
            n_estimators=whole_weeks(n_estimators, "n_estimators"),
            learning_rate=float(learning_rate),
            num_leaves=whole_weeks(num_leaves, "num_leaves", 2),
            min_child_samples=whole_weeks(min_child_samples, "min_child_samples"),
            **_conformal_params(
                calibration_weeks,
                spread,
                level_bins,
                covariates,
                min_calibration_rows,
                max_folds,
                min_regression_rows,
            ),
        )

    def _fit_point(self, X: np.ndarray, y: np.ndarray, seed: int):
        import lightgbm as lgb

        model = lgb.LGBMRegressor(
            n_estimators=self.params["n_estimators"],
            learning_rate=self.params["learning_rate"],
            num_leaves=self.params["num_leaves"],
            min_child_samples=self.params["min_child_samples"],
            random_state=seed,
            n_jobs=1,
            deterministic=True,
            force_row_wise=True,
            verbose=-1,
        )
        return model.fit(X, y - X[:, 0])  # column 0: log1p of the origin week's count

    def _predict_point(self, model, X: np.ndarray) -> np.ndarray:
        return X[:, 0] + model.predict(X)


# --------------------------------------------------------------------------------------------------
# neural models
# --------------------------------------------------------------------------------------------------
def _torch_seed(seed: int):
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    return torch


def _train_torch(
    net,
    X,
    y,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    progress: bool,
    desc: str,
    X_val=None,
    y_val=None,
    patience: int | None = None,
):
    """Minimise mean absolute error with Adam; with validation data keep the epoch with the lowest validation MAE
    (and stop after ``patience`` epochs without improvement)."""
    import copy

    import torch
    from tqdm import tqdm

    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    Xt = [torch.as_tensor(a, dtype=torch.float32) for a in (X if isinstance(X, (list, tuple)) else [X])]
    yt = torch.as_tensor(y, dtype=torch.float32)
    if X_val is not None:
        Xv = [
            torch.as_tensor(a, dtype=torch.float32)
            for a in (X_val if isinstance(X_val, (list, tuple)) else [X_val])
        ]
        yv = torch.as_tensor(y_val, dtype=torch.float32)
    best, best_state, history = np.inf, None, []
    n = len(yt)
    for _ in tqdm(range(epochs), desc=desc, disable=not progress, leave=False):
        net.train()
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, batch_size):
            b = perm[i : i + batch_size]
            opt.zero_grad()
            loss = torch.mean(torch.abs(net(*[x[b] for x in Xt]).squeeze(-1) - yt[b]))
            loss.backward()
            opt.step()
        if X_val is not None:
            net.eval()
            with torch.no_grad():
                v = float(torch.mean(torch.abs(net(*Xv).squeeze(-1) - yv)))
            history.append(v)
            if v < best:
                best, best_state = v, copy.deepcopy(net.state_dict())
            elif patience is not None and len(history) - 1 - int(np.argmin(history)) >= patience:
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return history


class LSTMForecaster(Forecaster):
    """Pooled two-layer LSTM over the lookback window of scaled cases (+ standardised covariates), quantile head.

    One network per fit serves every horizon: its head gives, for each horizon, the predictive quantiles at
    ``levels`` (default the hubs' 23) of the count divided by the location's training mean + 1, trained by the
    mean pinball loss over levels and horizons (the median's pinball loss is half its absolute error, so the
    ``forecast`` column, the 0.5 quantile, is trained as the MAE-loss LSTM was). :func:`rolling_backtest` fits one
    network per refit for all its horizons (:meth:`fit_horizons`) instead of one per horizon. Adam, fixed seed.

    The training budget is ``epochs`` passes over the windows, or, when ``steps`` is given, that many gradient
    steps whatever the data size (as many passes as it takes): 100 municipalities give ~190 batches of 256 a pass,
    one city 2, so a budget in passes is either too long for the one or too short for the other.
    """

    name = "lstm"
    uses_covariates = True
    uses_torch = True
    trained = True
    point_kind = "median"
    quantile_method = "quantile head: the network's own quantiles, trained with the pinball loss (in-sample)"

    def __init__(
        self,
        hidden: int = 32,
        epochs: int = 60,
        batch_size: int = 64,
        lr: float = 1e-3,
        levels: tuple | None = None,
        steps: int | None = None,
    ) -> None:
        from .probabilistic import QUANTILES, check_quantiles

        levels = check_quantiles(QUANTILES if levels is None else levels)
        if 0.5 not in levels:
            raise InvalidInputError(f"lstm levels must include the median 0.5, got {levels}")
        super().__init__(
            hidden=whole_weeks(hidden, "hidden"),
            epochs=whole_weeks(epochs, "epochs"),
            batch_size=whole_weeks(batch_size, "batch_size"),
            lr=float(lr),
            levels=levels,
            steps=None if steps is None else whole_weeks(steps, "steps"),
        )

    def _windows(self, panel: Panel, origins: pd.DatetimeIndex, loc) -> np.ndarray:
        p = panel.pos(origins)
        idx = p[:, None] - np.arange(panel.lookback)[::-1][None, :]
        chans = [panel.cases[loc].to_numpy()[idx] / self.scale_[loc]]
        if self.cov_stats_ is not None:
            mean, std = self.cov_stats_
            for var in dict.fromkeys(panel.covariates.columns.get_level_values(0)):
                c = panel.covariates[(var, loc)].to_numpy()
                chans.append(((c - mean[(var, loc)]) / std[(var, loc)])[idx])
        return np.stack(chans, axis=-1)

    def fit(self, panel: Panel, train_end: pd.Timestamp) -> LSTMForecaster:
        return self._fit(panel, train_end, (panel.horizon,))

    def fit_horizons(self, panel: Panel, train_end: pd.Timestamp, horizons) -> dict[int, Forecaster]:
        self._fit(panel, train_end, tuple(horizons))
        return dict.fromkeys(horizons, self)

    def _fit(self, panel: Panel, train_end: pd.Timestamp, horizons: tuple[int, ...]) -> LSTMForecaster:
        torch = _torch_seed(panel.seed)
        self.horizons_ = tuple(int(h) for h in horizons)
        self.scale_ = {c: float(panel.cases.loc[:train_end, c].mean()) + 1.0 for c in panel.locations}
        self.cov_stats_ = _cov_stats(panel, train_end) if panel.covariates is not None else None
        # every origin with a target for the shortest horizon; the longer horizons' missing targets are masked
        one = Panel(cases=panel.cases, horizon=min(self.horizons_), lookback=panel.lookback)
        origins = _train_origins(one, train_end, panel.lookback)
        p = panel.pos(origins)
        X = np.concatenate([self._windows(panel, origins, loc) for loc in panel.locations])
        last = panel.cases.index.get_loc(train_end)
        y = []
        for loc in panel.locations:
            col = panel.cases[loc].to_numpy(dtype=float) / self.scale_[loc]
            y.append(
                np.column_stack(
                    [np.where(p + h <= last, col[np.minimum(p + h, last)], np.nan) for h in self.horizons_]
                )
            )
        y = np.concatenate(y)
        hidden, n_out = self.params["hidden"], len(self.horizons_) * len(self.params["levels"])

        class Net(torch.nn.Module):
            def __init__(self, n_in):
                super().__init__()
                self.lstm = torch.nn.LSTM(n_in, hidden, num_layers=2, batch_first=True)
                self.head = torch.nn.Linear(hidden, n_out)

            def forward(self, x):
                out, _ = self.lstm(x)
                return self.head(out[:, -1])

        self.net_ = Net(X.shape[-1])
        epochs = self.params["epochs"]
        if self.params["steps"] is not None:
            epochs = int(np.ceil(self.params["steps"] / np.ceil(len(X) / self.params["batch_size"])))
        _train_quantiles(
            self.net_,
            X,
            y,
            np.asarray(self.params["levels"]),
            epochs=epochs,
            batch_size=self.params["batch_size"],
            lr=self.params["lr"],
            seed=panel.seed,
            progress=panel.progress,
        )
        return self

    def _quantiles(self, panel: Panel, origins: pd.DatetimeIndex) -> np.ndarray:
        """origin × location × level (the model's levels) in cases/week, for ``panel.horizon``."""
        import torch

        if panel.horizon not in self.horizons_:
            raise InvalidInputError(
                f"this lstm was fitted for horizons {self.horizons_}, not {panel.horizon}"
            )
        k, n_lev = self.horizons_.index(panel.horizon), len(self.params["levels"])
        out = []
        with torch.no_grad():
            for loc in panel.locations:
                x = torch.as_tensor(self._windows(panel, origins, loc), dtype=torch.float32)
                q = self.net_(x).numpy().reshape(len(origins), len(self.horizons_), n_lev)[:, k]
                out.append(q * self.scale_[loc])
        return _tidy(np.stack(out, axis=1))

    def forecast(self, panel: Panel, origins: pd.DatetimeIndex) -> pd.DataFrame:
        med = self._quantiles(panel, origins)[..., list(self.params["levels"]).index(0.5)]
        return pd.DataFrame(med, index=origins, columns=panel.locations)

    def calibrate(self, panel: Panel, train_end: pd.Timestamp) -> LSTMForecaster:
        return self  # the quantiles come from the network's head

    def forecast_quantiles(
        self, panel: Panel, origins: pd.DatetimeIndex, point: pd.DataFrame, levels: np.ndarray
    ) -> np.ndarray:
        q = self._quantiles(panel, origins)
        own = np.asarray(self.params["levels"])
        # other levels: linear in the level between the head's quantiles (held at its outermost beyond them)
        pos = np.interp(np.asarray(levels, dtype=float), own, np.arange(len(own)))
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, len(own) - 1)
        w = pos - lo
        return _tidy(q[..., lo] * (1 - w) + q[..., hi] * w)


def _train_quantiles(
    net,
    X: np.ndarray,
    y: np.ndarray,
    levels: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    progress: bool,
) -> None:
    """Minimise the mean pinball loss of ``net``'s (target × level) outputs with Adam; NaN targets are skipped."""
    import torch
    from tqdm import tqdm

    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    Xt = torch.as_tensor(X, dtype=torch.float32)
    mask = torch.as_tensor(np.isfinite(y), dtype=torch.float32)
    yt = torch.as_tensor(np.nan_to_num(y), dtype=torch.float32)
    tau = torch.as_tensor(levels, dtype=torch.float32)
    n, n_t, n_l = len(yt), y.shape[1], len(levels)
    for _ in tqdm(range(epochs), desc="lstm", disable=not progress, leave=False):
        net.train()
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, batch_size):
            b = perm[i : i + batch_size]
            opt.zero_grad()
            q = net(Xt[b]).view(len(b), n_t, n_l)
            diff = yt[b][..., None] - q
            loss = (torch.maximum(tau * diff, (tau - 1) * diff) * mask[b][..., None]).sum() / (
                mask[b].sum() * n_l
            ).clamp(min=1.0)
            loss.backward()
            opt.step()
    net.eval()


class DengueNet(Forecaster):
    """DengueNet (Kuo et al. 2024) re-implemented in PyTorch.

    Per location: each image-feature branch (ViT embedding; radiomics of B12 tiles) goes through its own stacked
    LSTM (60, 30, 5); the branch outputs are concatenated into dense 30 → 1. Input: the ``lookback`` (5) weeks
    of features up to the origin; target: min-max-scaled cases ``horizon`` weeks later; MAE loss, Adam with lr
    1e-4, batch 8. The ``val_weeks`` (16) weeks before the test window pick the epoch kept (published split
    124 / 16 / 16). ``branches`` may add ``"cases"`` (past cases as a third branch), which the paper does not use.

    Parameters
    ----------
    epochs : int
        Most training epochs (the paper does not state it; 300 by default).
    patience : int or None
        Stop when the validation MAE has not improved for this many epochs (None: run all epochs).
    """

    name = "denguenet"
    uses_images = True
    uses_torch = True
    trained = True
    quantile_method = "conformal: empirical quantiles of the log1p-scale errors on the validation weeks"

    def calibration_origins(self, panel: Panel, train_end: pd.Timestamp) -> pd.DatetimeIndex:
        # the validation weeks picked the epoch but were not trained on; the training weeks are fitted too closely
        last = train_end - panel.horizon * WEEK
        return pd.date_range(last - (self.params["val_weeks"] - 1) * WEEK, last, freq="W-SAT")

    def __init__(
        self,
        epochs: int = 300,
        lr: float = 1e-4,
        batch_size: int = 8,
        val_weeks: int = 16,
        patience: int | None = 50,
        branches: tuple = ("vit", "radiomics"),
        lstm_units: tuple = (60, 30, 5),
        dense_units: int = 30,
    ):
        super().__init__(
            epochs=int(epochs),
            lr=float(lr),
            batch_size=int(batch_size),
            val_weeks=int(val_weeks),
            patience=None if patience is None else int(patience),
            branches=tuple(branches),
            lstm_units=tuple(lstm_units),
            dense_units=int(dense_units),
        )
        unknown = set(self.params["branches"]) - {"vit", "radiomics", "cases"}
        if unknown or not self.params["branches"]:
            raise InvalidInputError(f"branches must be drawn from vit, radiomics, cases; got {branches!r}")

    def _branch_arrays(self, panel: Panel, loc) -> dict[str, pd.DataFrame]:
        feats = panel.features
        out = {}
        for b in self.params["branches"]:
            if b == "cases":
                out[b] = panel.cases[[loc]].astype(float)
                continue
            if feats is None or b not in feats:
                raise InvalidInputError(f"denguenet branch {b!r} needs image features; pass images=")
            da = feats[b].sel(location=loc)
            flat = da.to_numpy().reshape(da.sizes["week"], -1)
            index = pd.DatetimeIndex(da["week"].to_numpy())
            if len(index) > 1 and ((index[1:] - index[:-1]) != WEEK).any():
                raise InvalidInputError(
                    f"denguenet: {b} features must be on consecutive weeks (one image per week)"
                )
            if not np.isfinite(flat).all():
                raise InvalidInputError(f"denguenet: {b} features of location {loc!r} contain NaN or inf")
            out[b] = pd.DataFrame(flat, index=index)
        return out

    def _windows(self, arrays, stats, origins):
        res = []
        for b, frame in arrays.items():
            lo, hi = stats[b]
            vals = (frame.to_numpy() - lo) / hi
            p = frame.index.get_indexer(origins)
            if (p < self._lookback - 1).any():
                bad = origins[p < self._lookback - 1][0]
                raise InvalidInputError(
                    f"denguenet: no {b} features for the {self._lookback} weeks up to {_weeks.week_label(bad)}; "
                    "the image cubes must cover every lookback window"
                )
            idx = p[:, None] - np.arange(self._lookback)[::-1][None, :]
            res.append(vals[idx])
        return res

    def fit(self, panel: Panel, train_end: pd.Timestamp) -> DengueNet:
        torch = _torch_seed(panel.seed)
        self._lookback = panel.lookback
        units, dense = self.params["lstm_units"], self.params["dense_units"]

        class Branch(torch.nn.Module):
            def __init__(self, n_in):
                super().__init__()
                sizes = (n_in,) + tuple(units)
                self.layers = torch.nn.ModuleList(
                    [torch.nn.LSTM(sizes[i], sizes[i + 1], batch_first=True) for i in range(len(units))]
                )

            def forward(self, x):
                for layer in self.layers:
                    x, _ = layer(x)
                return x[:, -1]

        class Net(torch.nn.Module):
            def __init__(self, n_ins):
                super().__init__()
                self.branches = torch.nn.ModuleList([Branch(n) for n in n_ins])
                self.dense = torch.nn.Sequential(
                    torch.nn.Linear(units[-1] * len(n_ins), dense), torch.nn.ReLU(), torch.nn.Linear(dense, 1)
                )

            def forward(self, *xs):
                return self.dense(torch.cat([br(x) for br, x in zip(self.branches, xs)], dim=-1))

        self.nets_, self.stats_, self.yrange_, self.val_history_ = {}, {}, {}, {}
        val_start = train_end - (self.params["val_weeks"] - 1) * WEEK
        for k, loc in enumerate(panel.locations):
            arrays = self._branch_arrays(panel, loc)
            common = panel.cases.index
            for frame in arrays.values():
                common = common.intersection(frame.index)
            origins_all = common[panel.lookback - 1 :]
            origins_all = origins_all[(origins_all + panel.horizon * WEEK).isin(panel.cases.index)]
            origins_all = origins_all[origins_all + panel.horizon * WEEK <= train_end]
            tr = origins_all[origins_all + panel.horizon * WEEK < val_start]
            va = origins_all[origins_all + panel.horizon * WEEK >= val_start]
            if len(tr) < 10:
                raise InvalidInputError(
                    f"denguenet: only {len(tr)} training weeks with images for location {loc!r} before the "
                    f"validation window; image cubes must cover more weeks before test_start"
                )
            # feature scaling from training weeks only
            tr_rows = {b: f.loc[f.index <= tr[-1]] for b, f in arrays.items()}
            self.stats_[loc] = {
                b: (
                    f.min().to_numpy(),
                    np.where((f.max() - f.min()).to_numpy() > 0, (f.max() - f.min()).to_numpy(), 1.0),
                )
                for b, f in tr_rows.items()
            }
            y_all = panel.cases[loc]
            y_tr = y_all.loc[tr + panel.horizon * WEEK].to_numpy()
            lo, hi = float(y_tr.min()), float(y_tr.max())
            self.yrange_[loc] = (lo, hi - lo if hi > lo else 1.0)
            sy = lambda v, loc=loc: (v - self.yrange_[loc][0]) / self.yrange_[loc][1]
            Xtr = self._windows(arrays, self.stats_[loc], tr)
            Xva = self._windows(arrays, self.stats_[loc], va) if len(va) else None
            net = Net([a.shape[-1] for a in Xtr])
            self.val_history_[loc] = _train_torch(
                net,
                Xtr,
                sy(y_tr),
                epochs=self.params["epochs"],
                batch_size=self.params["batch_size"],
                lr=self.params["lr"],
                seed=panel.seed + k,
                progress=panel.progress,
                desc=f"denguenet {loc}",
                X_val=Xva,
                y_val=sy(y_all.loc[va + panel.horizon * WEEK].to_numpy()) if len(va) else None,
                patience=self.params["patience"],
            )
            self.nets_[loc] = net
        return self

    def forecast(self, panel: Panel, origins: pd.DatetimeIndex) -> pd.DataFrame:
        import torch

        out = {}
        with torch.no_grad():
            for loc in panel.locations:
                X = self._windows(self._branch_arrays(panel, loc), self.stats_[loc], origins)
                f = self.nets_[loc](*[torch.as_tensor(x, dtype=torch.float32) for x in X]).squeeze(-1).numpy()
                lo, span = self.yrange_[loc]
                out[loc] = np.clip(f * span + lo, 0, None)
        return pd.DataFrame(out, index=origins)


MODELS: dict[str, type[Forecaster]] = {
    cls.name: cls
    for cls in (
        Persistence,
        MovingMean,
        SeasonalNaive,
        MedianAR,
        GradientBoosting,
        NegBinGLM,
        Pooled,
        LSTMForecaster,
        DengueNet,
    )
}
BASELINES = ("persistence", "moving_mean", "seasonal_naive")


def make_model(model: str | Forecaster, **params: Any) -> Forecaster:
    """A :class:`Forecaster` from a name of :data:`MODELS` (with its parameters) or an instance (returned as is)."""
    if isinstance(model, Forecaster):
        if params:
            raise InvalidInputError("pass model parameters either to the model instance or by name, not both")
        return model
    if not isinstance(model, str) or model not in MODELS:
        raise InvalidInputError(f"unknown model {model!r}; available: {', '.join(MODELS)}")
    try:
        return MODELS[model](**params)
    except TypeError as exc:
        raise InvalidInputError(f"model {model!r}: {exc}") from exc
