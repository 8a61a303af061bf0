"""Per-series design matrices and the regressions on them: ``median_ar`` (pooled least absolute deviation) and
``nb_glm`` (negative-binomial GLM per location, numpy IRLS).

Example
-------
The GLM's terms, with two weeks of lags of cases and of each covariate:

>>> from terralab.dengue import backtest
>>> from terralab.dengue.synthetic import synthetic_cases, synthetic_covariates
>>> cases, cov = synthetic_cases(120, 2, seed=0), synthetic_covariates(120, 2, seed=0)
>>> model = NegBinGLM()
>>> fc = backtest(cases, model, covariates=cov, test_start="2014w01", test_end="2014w04", lookback=2)
>>> list(model.coefficients_.index)  # doctest: +NORMALIZE_WHITESPACE
['const', 'log1p_cases_lag0', 'log1p_cases_lag1', 'season_sin', 'season_cos',
 'rain_lag0', 'rain_lag1', 'temperature_lag0', 'temperature_lag1']
>>> fc.shape, bool((fc["forecast"] > 0).all())
((8, 4), True)
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .base import WEEK, Forecaster, Panel, covariate_stats, train_origins
from .probabilistic import tidy_quantiles


def _season(targets: pd.DatetimeIndex) -> np.ndarray:
    doy = targets.day_of_year.to_numpy(dtype=float)
    ang = 2 * np.pi * doy / 365.25
    return np.column_stack([np.sin(ang), np.cos(ang)])


def lag_design(
    panel: Panel,
    origins: pd.DatetimeIndex,
    location: str,
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


def lag_design_names(panel: Panel, n_lags: int, transform: str, with_covariates: bool) -> list[str]:
    """Column names of :func:`lag_design`: cases lags (``log1p_cases_lag0`` = origin week), season,
    covariate lags."""
    stem = "log1p_cases" if transform == "log" else "scaled_cases"
    names = [f"{stem}_lag{k}" for k in range(n_lags)] + ["season_sin", "season_cos"]
    if with_covariates and panel.covariates is not None:
        for var in dict.fromkeys(panel.covariates.columns.get_level_values(0)):
            names += [f"{var}_lag{k}" for k in range(n_lags)]
    return names


class _PooledRegression(Forecaster):
    """Shared plumbing for models fitted on all locations at once with per-location scaling."""

    uses_covariates = True
    trained = True
    transform = "scale"

    def _fit_common(self, panel: Panel, train_end: pd.Timestamp):
        self.scale_ = {c: float(panel.cases.loc[:train_end, c].mean()) + 1.0 for c in panel.locations}
        self.cov_stats_ = covariate_stats(panel, train_end) if panel.covariates is not None else None
        origins = train_origins(panel, train_end, self.history_weeks(panel))
        X, y = [], []
        for loc in panel.locations:
            X.append(self._design(panel, origins, loc))
            target = panel.cases[loc].to_numpy()[panel.pos(origins) + panel.horizon]
            y.append(self._target(target, loc))
        return np.vstack(X), np.concatenate(y)

    def _design(self, panel, origins, loc):
        return lag_design(
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


class MedianAR(_PooledRegression):
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
    """Coefficients of a Poisson (``alpha`` = 0) or negative-binomial (Var = μ + αμ², α fixed) GLM with log
    link.

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

    The dispersion α (Var = μ + α μ²) is estimated from a Poisson fit by the Cameron–Trivedi auxiliary
    regression, then the NB GLM is refitted with it (statsmodels). After ``fit``: ``coefficients_`` (term ×
    location; covariate terms are per standard deviation of the training weeks, ``<var>_lag<k>`` = k weeks
    before the origin) and ``alpha_`` (location → α).
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
        return tidy_quantiles(stats.nbinom.ppf(np.asarray(levels)[None, None, :], n, n / (n + mu)))

    def fit(self, panel: Panel, train_end: pd.Timestamp) -> NegBinGLM:
        self.cov_stats_ = covariate_stats(panel, train_end) if panel.covariates is not None else None
        origins = train_origins(panel, train_end, self.history_weeks(panel))
        self.params_, self.alpha_, self.log_cap_ = {}, {}, {}
        for loc in panel.locations:
            X = np.column_stack([np.ones(len(origins)), self._design(panel, origins, loc)])
            y = panel.cases[loc].to_numpy()[panel.pos(origins) + panel.horizon]
            mu = np.exp(np.clip(X @ log_link_irls(X, y, alpha=0.0), -30, 30))
            alpha = float(np.sum((y - mu) ** 2 - y) / np.sum(mu**2))
            alpha = min(max(alpha, 1e-4), 10.0)
            self.params_[loc] = log_link_irls(X, y, alpha=alpha)
            self.alpha_[loc] = alpha
            # a GLM with many covariate lags on a short history can extrapolate exp() without bound (DengAI
            # Iquitos, two years of data, forecast 5e8 cases): no more than ten times the largest weekly count
            # seen
            self.log_cap_[loc] = float(np.log(10.0 * (panel.cases.loc[:train_end, loc].max() + 1.0)))
        names = ["const"] + lag_design_names(panel, panel.lookback, "log", self.cov_stats_ is not None)
        self.coefficients_ = pd.DataFrame(self.params_, index=names)
        return self

    def _design(self, panel, origins, loc):
        return lag_design(
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
