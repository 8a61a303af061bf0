"""The global models: ``pooled`` (one log-linear model over all locations) and ``gbm`` (LightGBM on its
features), both with split-conformal quantiles from held-out errors."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InvalidInputError
from .base import WEEK, Forecaster, Panel, covariate_stats, train_origins, whole_weeks
from .probabilistic import tidy_quantiles


def _climatology(logy: np.ndarray, half_width: int = 2) -> np.ndarray:
    """Mean of log1p cases around the same week in every earlier year, for each row (NaN without an earlier
    year).

    Row i averages rows i − 52j − w … i − 52j + w (w = ``half_width``) over the years j ≥ 1 that exist: only
    weeks at least 52 − w weeks before row i, so a forecast of week t + h (h ≤ 52 − w) uses nothing after its
    origin t.
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


@dataclass(frozen=True)
class ConformalParams:
    """Settings of the split-conformal quantiles (and covariate features) shared by ``pooled`` and ``gbm``.

    See :class:`Pooled` for what each does; both models take them as keyword arguments.
    """

    calibration_weeks: int = 52
    spread: str = "auto"
    level_bins: int = 5
    covariates: bool = False
    min_calibration_rows: int = 1000
    max_folds: int = 4
    min_regression_rows: int = 750


def conformal_params(model: str, **params: Any) -> dict:
    """Checked :class:`ConformalParams` as a dict (field order); an unknown keyword names the model's options.

    >>> conformal_params("pooled", max_folds=1)["max_folds"]
    1
    >>> conformal_params("pooled", folds=1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    terralab.errors.InvalidInputError: model 'pooled' has no option 'folds'; its conformal options: ...
    """
    names = [f.name for f in fields(ConformalParams)]
    for key in params:
        if key not in names:
            raise InvalidInputError(
                f"model {model!r} has no option {key!r}; its conformal options: {', '.join(names)}"
            )
    p = ConformalParams(**params)
    if p.spread not in ("auto", "regression", "binned"):
        raise InvalidInputError(f"spread must be 'auto', 'regression' or 'binned', got {p.spread!r}")
    return {
        "calibration_weeks": whole_weeks(p.calibration_weeks, "calibration_weeks", 13),
        "spread": p.spread,
        "level_bins": whole_weeks(p.level_bins, "level_bins"),
        "covariates": bool(p.covariates),
        "min_calibration_rows": whole_weeks(p.min_calibration_rows, "min_calibration_rows"),
        "max_folds": whole_weeks(p.max_folds, "max_folds"),
        "min_regression_rows": whole_weeks(p.min_regression_rows, "min_regression_rows"),
    }


class Pooled(Forecaster):
    """One model for all locations (global), on log1p counts, with quantiles from its own held-out errors.

    For location l, origin t and horizon h the target log1p(y_{l,t+h}) is regressed (least squares, pooled
    over locations, one model per horizon) on:

    * lagged cases: log1p(y_{t−k}), k = 0 … lookback − 1, and log1p of the 13-week mean;
    * location effects: the location's mean log1p count over the training weeks;
    * seasonality: the location's climatology (mean log1p count around the same week of every earlier year)
      at the target week and at the origin week, and sin/cos of the target's week of the year (two harmonics);
    * with ``interactions``, the lags and seasonal terms times the location's mean level (dynamics differ with
      size);
    * with ``covariates`` and a source that has them: each covariate's mean over weeks t−3 … t and t−11 … t−4
      (standardised per location on the training weeks), the lags at which temperature and rain act on
      mosquitoes.

    Quantiles (split conformal): the errors log1p(y) − prediction of copies fitted before held-out windows of
    ``calibration_weeks`` at the end of the training weeks. One window when it holds ≥
    ``min_calibration_rows`` (location × origin) errors; with few locations (a single series) up to
    ``max_folds`` consecutive windows, each scored by a copy fitted on the weeks before it, so that one calm
    or one epidemic year does not set the width. ``spread``: ``"regression"`` standardises the errors by a
    regression of their size on the features (location-scale); ``"binned"`` takes the errors' empirical
    quantiles in ``level_bins`` bins of the predicted level; ``"auto"`` (default) uses the regression when
    there are ≥ ``min_regression_rows`` errors, else the bins (a regression of ~25 coefficients on one series'
    few dozen errors fits them, and its intervals come out too narrow). ``forecast`` is the predictive median.
    Non-negative and non-crossing.

    Options are keywords: ``interactions``, ``ridge``, ``ridge_prior`` and those of :class:`ConformalParams`
    (``Pooled(max_folds=1, spread="regression")``); any other is an InvalidInputError that lists them.
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
        self, *, interactions: bool = True, ridge: float = 1e-3, ridge_prior: float = 40.0, **conformal: Any
    ) -> None:
        if not (np.isfinite(ridge) and ridge >= 0 and np.isfinite(ridge_prior) and ridge_prior >= 0):
            raise InvalidInputError(f"ridge and ridge_prior must be ≥ 0, got {ridge!r}, {ridge_prior!r}")
        super().__init__(
            interactions=bool(interactions),
            ridge=float(ridge),
            ridge_prior=float(ridge_prior),
            **conformal_params(self.name, **conformal),
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
            mean, std = covariate_stats(panel, train_end)
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
        # ridge × rows keeps the penalty's weight fixed relative to the data; ridge_prior is a fixed amount on
        # top, which only matters when the rows are few (one series: a few hundred rows for ~25 coefficients)
        strength = self.params.get("ridge", 1e-3) * len(A) + self.params.get("ridge_prior", 0.0)
        reg = strength * np.eye(A.shape[1])
        reg[0, 0] = 0.0
        return np.linalg.solve(A.T @ A + reg, A.T @ y)

    @staticmethod
    def _predict(coef: np.ndarray, X: np.ndarray) -> np.ndarray:
        return coef[0] + X @ coef[1:]

    def _training(self, panel: Panel, end: pd.Timestamp) -> tuple[np.ndarray, np.ndarray]:
        origins = train_origins(panel, end, self.history_weeks(panel))
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
            origins = train_origins(panel, train_end, need)
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
            # location-scale: the size of the held-out errors regressed on the features, errors standardised
            # by it
            err = yv - pred
            self.spread_coef_ = self._solve(Xv, np.log(np.abs(err) + 0.05))
            self._set_errors(np.zeros(len(err)), err / self._spread(Xv), bins=1)
        else:
            self.spread_coef_ = None
            self._set_errors(pred, yv - pred, bins=self.params["level_bins"])
        return self

    def _spread(self, X: np.ndarray) -> np.ndarray:
        # bounded so that a feature far outside the calibration weeks cannot blow the intervals up (or shut
        # them)
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
        return tidy_quantiles(np.expm1(pred[..., None] + scale * self._shift(key, np.asarray(levels))))


class GradientBoosting(Pooled):
    """Pooled gradient-boosted trees (LightGBM) on the pooled model's features, quantiles by split conformal.

    The trees learn the change log1p(y_{t+h}) − log1p(y_t) from the features of :class:`Pooled` (lags, 13-week
    mean, location level, climatology, season; no interaction terms: trees find them), squared error, one
    model per horizon; learning the change rather than the level lets them forecast counts larger than any
    seen in training. Quantiles as :class:`Pooled`: held-out errors of a copy fitted before the last
    ``calibration_weeks``. One thread, fixed seed: deterministic. Replaces a scikit-learn HistGradientBoosting
    on scaled counts that fitted 35 s per refit on 100 municipalities (a second copy for its conformal
    errors); this one fits in ~8 s. Options are keywords: ``n_estimators``, ``learning_rate``, ``num_leaves``,
    ``min_child_samples`` and those of :class:`ConformalParams`.
    """

    name = "gbm"
    quantile_method = (
        "split conformal: held-out log1p-scale errors of a copy fitted before the last "
        "calibration_weeks, standardised by a regression of their size, pooled over locations"
    )

    def __init__(
        self,
        *,
        n_estimators: int = 200,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_child_samples: int = 20,
        **conformal: Any,
    ) -> None:
        Forecaster.__init__(
            self,
            n_estimators=whole_weeks(n_estimators, "n_estimators"),
            learning_rate=float(learning_rate),
            num_leaves=whole_weeks(num_leaves, "num_leaves", 2),
            min_child_samples=whole_weeks(min_child_samples, "min_child_samples"),
            **conformal_params(self.name, **conformal),
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
