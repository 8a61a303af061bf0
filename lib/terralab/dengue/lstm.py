"""``lstm``: a pooled two-layer LSTM with a quantile head for every horizon at once (PyTorch, imported
lazily).

Example
-------
One epoch of a small network on two synthetic locations; its quantiles never cross:

>>> from terralab.dengue import backtest
>>> from terralab.dengue.synthetic import synthetic_cases
>>> cases = synthetic_cases(80, 2, seed=0)
>>> model = LSTMForecaster(hidden=8, epochs=1)
>>> fc = backtest(
...     cases, model, covariates=False, test_start="2013w20", test_end="2013w23", quantiles=(0.1, 0.5, 0.9)
... )
>>> fc.shape, list(fc.columns)
((8, 7), ['week', 'location', 'observed', 'forecast', 'q0.1', 'q0.5', 'q0.9'])
>>> bool((fc["q0.1"] <= fc["q0.5"]).all() and (fc["q0.5"] <= fc["q0.9"]).all() and (fc["q0.1"] >= 0).all())
True
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import InvalidInputError
from ..training import fit_epochs, shuffled_batches
from .base import Forecaster, Panel, covariate_stats, torch_seed, train_origins, whole_weeks
from .probabilistic import tidy_quantiles

if TYPE_CHECKING:
    import torch


class LSTMForecaster(Forecaster):
    """Pooled two-layer LSTM over the lookback window of scaled cases (+ standardised covariates), quantile
    head.

    One network per fit serves every horizon: its head gives, for each horizon, the predictive quantiles at
    ``levels`` (default the hubs' 23) of the count divided by the location's training mean + 1, trained by the
    mean pinball loss over levels and horizons (the median's pinball loss is half its absolute error, so the
    ``forecast`` column, the 0.5 quantile, is trained as the MAE-loss LSTM was). :func:`rolling_backtest` fits
    one network per refit for all its horizons (:meth:`fit_horizons`) instead of one per horizon. Adam, fixed
    seed.

    The training budget is ``epochs`` passes over the windows, or, when ``steps`` is given, that many gradient
    steps whatever the data size (as many passes as it takes): 100 municipalities give ~190 batches of 256 a
    pass, one city 2, so a budget in passes is either too long for the one or too short for the other.
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

    def fit_horizons(
        self, panel: Panel, train_end: pd.Timestamp, horizons: Iterable[int]
    ) -> dict[int, Forecaster]:
        self._fit(panel, train_end, tuple(horizons))
        return dict.fromkeys(horizons, self)

    def _fit(self, panel: Panel, train_end: pd.Timestamp, horizons: tuple[int, ...]) -> LSTMForecaster:
        torch = torch_seed(panel.seed)
        self.horizons_ = tuple(int(h) for h in horizons)
        self.scale_ = {c: float(panel.cases.loc[:train_end, c].mean()) + 1.0 for c in panel.locations}
        self.cov_stats_ = covariate_stats(panel, train_end) if panel.covariates is not None else None
        # every origin with a target for the shortest horizon; the longer horizons' missing targets are masked
        one = Panel(cases=panel.cases, horizon=min(self.horizons_), lookback=panel.lookback)
        origins = train_origins(one, train_end, panel.lookback)
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
            def __init__(self, n_in: int) -> None:
                super().__init__()
                self.lstm = torch.nn.LSTM(n_in, hidden, num_layers=2, batch_first=True)
                self.head = torch.nn.Linear(hidden, n_out)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                out, _ = self.lstm(x)
                return self.head(out[:, -1])

        self.net_ = Net(X.shape[-1])
        epochs = self.params["epochs"]
        if self.params["steps"] is not None:
            epochs = int(np.ceil(self.params["steps"] / np.ceil(len(X) / self.params["batch_size"])))
        train_quantiles(
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
        return tidy_quantiles(np.stack(out, axis=1))

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
        return tidy_quantiles(q[..., lo] * (1 - w) + q[..., hi] * w)


def train_quantiles(
    net: torch.nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    levels: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    progress: bool | None,
) -> None:
    """Minimise the mean pinball loss of ``net``'s (target × level) outputs with Adam; NaN targets are
    skipped. The epochs run in :func:`terralab.training.fit_epochs` (no validation: every epoch runs)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    Xt = torch.as_tensor(X, dtype=torch.float32)
    mask = torch.as_tensor(np.isfinite(y), dtype=torch.float32)
    yt = torch.as_tensor(np.nan_to_num(y), dtype=torch.float32)
    tau = torch.as_tensor(levels, dtype=torch.float32)
    n, n_t, n_l = len(yt), y.shape[1], len(levels)

    def step_epoch(epoch: int) -> None:
        for b in shuffled_batches(n, batch_size, gen):
            opt.zero_grad()
            q = net(Xt[b]).view(len(b), n_t, n_l)
            diff = yt[b][..., None] - q
            loss = (torch.maximum(tau * diff, (tau - 1) * diff) * mask[b][..., None]).sum() / (
                mask[b].sum() * n_l
            ).clamp(min=1.0)
            loss.backward()
            opt.step()

    if epochs >= 1:  # (0 epochs: nothing to train, as before the shared loop)
        fit_epochs(step_epoch, epochs=epochs, model=net, progress=progress, desc="lstm", leave=False)
    net.eval()
