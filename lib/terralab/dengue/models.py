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
                          deviation (median regression)
``gbm``                   pooled gradient boosting (scikit-learn HistGradientBoosting, absolute-error loss) on
                          lags, season and covariates
``nb_glm``                negative-binomial GLM per location (log link) on log lags, season and covariates;
                          dispersion from the Cameron–Trivedi auxiliary regression
``lstm``                  pooled two-layer LSTM on the lookback window of cases (+ covariates), MAE loss
``denguenet``             DengueNet (Kuo et al. 2024): ViT and radiomics image-feature branches, each a stacked
                          LSTM (60, 30, 5), merged into dense 30 → 1; per location; MAE on min-max-scaled cases
========================  ==========================================================================================
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field
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
    if not ok and isinstance(value, (float, np.floating)) and np.isfinite(value) and float(value).is_integer():
        ok = True
    if not ok:
        raise InvalidInputError(f"{name} must be a whole number of weeks, got {value!r} "
                                f"({type(value).__name__}); pass an integer such as {max(minimum, 1)}")
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


# --------------------------------------------------------------------------------------------------
# baselines
# --------------------------------------------------------------------------------------------------
class Persistence(Forecaster):
    """Next week equals the last observed week."""

    name = "persistence"

    def history_weeks(self, panel: Panel) -> int:
        return 1

    def forecast(self, panel: Panel, origins: pd.DatetimeIndex) -> pd.DataFrame:
        return pd.DataFrame(panel.cases.to_numpy()[panel.pos(origins)], index=origins, columns=panel.locations)


class MovingMean(Forecaster):
    """Mean of the last ``window_weeks`` observed weeks (default 4, the DengueNet comparison's "4-week mean")."""

    name = "moving_mean"

    def __init__(self, window_weeks: int = 4) -> None:
        window_weeks = whole_weeks(window_weeks, "window_weeks")
        super().__init__(window_weeks=window_weeks)
        self.window = int(window_weeks)

    def history_weeks(self, panel: Panel) -> int:
        return self.window

    def forecast(self, panel: Panel, origins: pd.DatetimeIndex) -> pd.DataFrame:
        csum = np.vstack([np.zeros((1, panel.cases.shape[1])), np.cumsum(panel.cases.to_numpy(), axis=0)])
        p = panel.pos(origins)
        vals = (csum[p + 1] - csum[p + 1 - self.window]) / self.window
        return pd.DataFrame(vals, index=origins, columns=panel.locations)


class SeasonalNaive(Forecaster):
    """The same MMWR week one year before the target week (week 53 compared with week 52)."""

    name = "seasonal_naive"

    def history_weeks(self, panel: Panel) -> int:
        return 53

    def forecast(self, panel: Panel, origins: pd.DatetimeIndex) -> pd.DataFrame:
        if panel.horizon > 52:
            raise InvalidInputError("seasonal_naive needs horizon ≤ 52 weeks (last year's week must be known)")
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


def _design(panel: Panel, origins: pd.DatetimeIndex, location, *, scale: float, transform: str,
            cov_stats: tuple | None, n_lags: int) -> np.ndarray:
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
    origins = idx[(need - 1):][idx[(need - 1):] <= last_origin]
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
        return _design(panel, origins, loc, scale=self.scale_[loc], transform=self.transform,
                       cov_stats=self.cov_stats_, n_lags=panel.lookback)

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


class MedianAR(_Pooled):
    """Pooled linear autoregression fitted by least absolute deviation on lags divided by each city's mean."""

    name = "median_ar"

    def __init__(self, quantile: float = 0.5) -> None:
        super().__init__(quantile=float(quantile))

    def fit(self, panel: Panel, train_end: pd.Timestamp) -> MedianAR:
        from sklearn.linear_model import QuantileRegressor

        X, y = self._fit_common(panel, train_end)
        self.model_ = QuantileRegressor(quantile=self.params["quantile"], alpha=0.0, solver="highs").fit(X, y)
        return self


class GradientBoosting(_Pooled):
    """Pooled gradient-boosted trees (HistGradientBoostingRegressor) on scaled lags, season and covariates."""

    name = "gbm"

    def __init__(self, loss: str = "absolute_error", max_iter: int = 300, learning_rate: float = 0.05,
                 max_leaf_nodes: int = 15, min_samples_leaf: int = 20) -> None:
        super().__init__(loss=loss, max_iter=int(max_iter), learning_rate=float(learning_rate),
                         max_leaf_nodes=int(max_leaf_nodes), min_samples_leaf=int(min_samples_leaf))

    def fit(self, panel: Panel, train_end: pd.Timestamp) -> GradientBoosting:
        from sklearn.ensemble import HistGradientBoostingRegressor

        X, y = self._fit_common(panel, train_end)
        self.model_ = HistGradientBoostingRegressor(random_state=panel.seed, **self.params).fit(X, y)
        return self


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

    def fit(self, panel: Panel, train_end: pd.Timestamp) -> NegBinGLM:
        import statsmodels.api as sm

        self.cov_stats_ = _cov_stats(panel, train_end) if panel.covariates is not None else None
        origins = _train_origins(panel, train_end, self.history_weeks(panel))
        self.fits_, self.alpha_ = {}, {}
        for loc in panel.locations:
            X = sm.add_constant(self._design(panel, origins, loc), has_constant="add")
            y = panel.cases[loc].to_numpy()[panel.pos(origins) + panel.horizon]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mu = sm.GLM(y, X, family=sm.families.Poisson()).fit().mu
                alpha = float(np.sum((y - mu) ** 2 - y) / np.sum(mu**2))
                alpha = min(max(alpha, 1e-4), 10.0)
                self.fits_[loc] = sm.GLM(y, X, family=sm.families.NegativeBinomial(alpha=alpha)).fit()
            self.alpha_[loc] = alpha
        names = ["const"] + _design_names(panel, panel.lookback, "log", self.cov_stats_ is not None)
        self.coefficients_ = pd.DataFrame({loc: f.params for loc, f in self.fits_.items()}, index=names)
        return self

    def _design(self, panel, origins, loc):
        return _design(panel, origins, loc, scale=1.0, transform="log", cov_stats=self.cov_stats_,
                       n_lags=panel.lookback)

    def forecast(self, panel: Panel, origins: pd.DatetimeIndex) -> pd.DataFrame:
        import statsmodels.api as sm

        out = {}
        for loc in panel.locations:
            X = sm.add_constant(self._design(panel, origins, loc), has_constant="add")
            # the linear predictor is clipped so one wild covariate week cannot overflow exp()
            eta = np.clip(X @ self.fits_[loc].params, -20, 20)
            out[loc] = np.exp(eta)
        return pd.DataFrame(out, index=origins)


# --------------------------------------------------------------------------------------------------
# neural models
# --------------------------------------------------------------------------------------------------
def _torch_seed(seed: int):
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    return torch


def _train_torch(net, X, y, *, epochs: int, batch_size: int, lr: float, seed: int, progress: bool, desc: str,
                 X_val=None, y_val=None, patience: int | None = None):
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
        Xv = [torch.as_tensor(a, dtype=torch.float32) for a in (X_val if isinstance(X_val, (list, tuple)) else
                                                                  [X_val])]
        yv = torch.as_tensor(y_val, dtype=torch.float32)
    best, best_state, history = np.inf, None, []
    n = len(yt)
    for _ in tqdm(range(epochs), desc=desc, disable=not progress, leave=False):
        net.train()
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, batch_size):
            b = perm[i:i + batch_size]
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
    """Pooled two-layer LSTM over the lookback window of scaled cases (+ standardised covariates), MAE loss."""

    name = "lstm"
    uses_covariates = True
    uses_torch = True
    trained = True

    def __init__(self, hidden: int = 32, epochs: int = 60, batch_size: int = 64, lr: float = 1e-3) -> None:
        super().__init__(hidden=int(hidden), epochs=int(epochs), batch_size=int(batch_size), lr=float(lr))

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
        torch = _torch_seed(panel.seed)
        self.scale_ = {c: float(panel.cases.loc[:train_end, c].mean()) + 1.0 for c in panel.locations}
        self.cov_stats_ = _cov_stats(panel, train_end) if panel.covariates is not None else None
        origins = _train_origins(panel, train_end, panel.lookback)
        X = np.concatenate([self._windows(panel, origins, loc) for loc in panel.locations])
        y = np.concatenate([panel.cases[loc].to_numpy()[panel.pos(origins) + panel.horizon] / self.scale_[loc]
                            for loc in panel.locations])
        hidden = self.params["hidden"]

        class Net(torch.nn.Module):
            def __init__(self, n_in):
                super().__init__()
                self.lstm = torch.nn.LSTM(n_in, hidden, num_layers=2, batch_first=True)
                self.head = torch.nn.Linear(hidden, 1)

            def forward(self, x):
                out, _ = self.lstm(x)
                return self.head(out[:, -1])

        self.net_ = Net(X.shape[-1])
        _train_torch(self.net_, X, y, epochs=self.params["epochs"], batch_size=self.params["batch_size"],
                     lr=self.params["lr"], seed=panel.seed, progress=panel.progress, desc="lstm")
        return self

    def forecast(self, panel: Panel, origins: pd.DatetimeIndex) -> pd.DataFrame:
        import torch

        out = {}
        with torch.no_grad():
            for loc in panel.locations:
                x = torch.as_tensor(self._windows(panel, origins, loc), dtype=torch.float32)
                out[loc] = np.clip(self.net_(x).squeeze(-1).numpy() * self.scale_[loc], 0, None)
        return pd.DataFrame(out, index=origins)


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

    def __init__(self, epochs: int = 300, lr: float = 1e-4, batch_size: int = 8, val_weeks: int = 16,
                 patience: int | None = 50, branches: tuple = ("vit", "radiomics"), lstm_units: tuple = (60, 30, 5),
                 dense_units: int = 30):
        super().__init__(epochs=int(epochs), lr=float(lr), batch_size=int(batch_size), val_weeks=int(val_weeks),
                         patience=None if patience is None else int(patience), branches=tuple(branches),
                         lstm_units=tuple(lstm_units), dense_units=int(dense_units))
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
                raise InvalidInputError(f"denguenet: {b} features must be on consecutive weeks (one image per week)")
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
                    [torch.nn.LSTM(sizes[i], sizes[i + 1], batch_first=True) for i in range(len(units))])

            def forward(self, x):
                for layer in self.layers:
                    x, _ = layer(x)
                return x[:, -1]

        class Net(torch.nn.Module):
            def __init__(self, n_ins):
                super().__init__()
                self.branches = torch.nn.ModuleList([Branch(n) for n in n_ins])
                self.dense = torch.nn.Sequential(torch.nn.Linear(units[-1] * len(n_ins), dense), torch.nn.ReLU(),
                                                 torch.nn.Linear(dense, 1))

            def forward(self, *xs):
                return self.dense(torch.cat([br(x) for br, x in zip(self.branches, xs)], dim=-1))

        self.nets_, self.stats_, self.yrange_, self.val_history_ = {}, {}, {}, {}
        val_start = train_end - (self.params["val_weeks"] - 1) * WEEK
        for k, loc in enumerate(panel.locations):
            arrays = self._branch_arrays(panel, loc)
            common = panel.cases.index
            for frame in arrays.values():
                common = common.intersection(frame.index)
            origins_all = common[panel.lookback - 1:]
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
            self.stats_[loc] = {b: (f.min().to_numpy(), np.where((f.max() - f.min()).to_numpy() > 0,
                                                                   (f.max() - f.min()).to_numpy(), 1.0))
                                for b, f in tr_rows.items()}
            y_all = panel.cases[loc]
            y_tr = y_all.loc[tr + panel.horizon * WEEK].to_numpy()
            lo, hi = float(y_tr.min()), float(y_tr.max())
            self.yrange_[loc] = (lo, hi - lo if hi > lo else 1.0)
            sy = lambda v, loc=loc: (v - self.yrange_[loc][0]) / self.yrange_[loc][1]
            Xtr = self._windows(arrays, self.stats_[loc], tr)
            Xva = self._windows(arrays, self.stats_[loc], va) if len(va) else None
            net = Net([a.shape[-1] for a in Xtr])
            self.val_history_[loc] = _train_torch(
                net, Xtr, sy(y_tr), epochs=self.params["epochs"], batch_size=self.params["batch_size"],
                lr=self.params["lr"], seed=panel.seed + k, progress=panel.progress, desc=f"denguenet {loc}",
                X_val=Xva, y_val=sy(y_all.loc[va + panel.horizon * WEEK].to_numpy()) if len(va) else None,
                patience=self.params["patience"])
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
    for cls in (Persistence, MovingMean, SeasonalNaive, MedianAR, GradientBoosting, NegBinGLM, LSTMForecaster,
                DengueNet)
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
