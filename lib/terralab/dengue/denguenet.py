"""``denguenet``: DengueNet (Kuo et al. 2024), image-feature branches of stacked LSTMs, in PyTorch (lazy
import).

Example
-------
One epoch on a Dataset of weekly image features (here random radiomics, as
:func:`terralab.dengue.features.image_features` would give) plus past cases as a second branch:

>>> import numpy as np
>>> import xarray as xr
>>> from terralab.dengue import backtest
>>> from terralab.dengue.synthetic import synthetic_cases
>>> cases = synthetic_cases(60, 1, seed=0)
>>> radiomics = np.random.default_rng(0).random((1, 60, 3))  # (location, week, feature)
>>> feats = xr.Dataset(
...     {"radiomics": (("location", "week", "feature"), radiomics)},
...     coords={"location": [1], "week": cases.index},
... )
>>> model = DengueNet(epochs=1, val_weeks=4, branches=("radiomics", "cases"))
>>> fc = backtest(cases, model, images=feats, test_start=cases.index[-2], test_end=cases.index[-1])
>>> list(fc.columns), bool((fc["forecast"] >= 0).all())
(['week', 'location', 'observed', 'forecast'], True)
>>> [[layer.hidden_size for layer in branch.layers] for branch in model.nets_[1].branches]
[[60, 30, 5], [60, 30, 5]]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import InvalidInputError
from ..training import fit_epochs, shuffled_batches
from . import weeks as _weeks
from .base import WEEK, Forecaster, Panel, torch_seed

if TYPE_CHECKING:
    import torch


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
) -> list[float]:
    """Minimise mean absolute error with Adam; with validation data keep the epoch with the lowest
    validation MAE (and stop after ``patience`` epochs without improvement): :func:`terralab.training.
    fit_epochs`. Returns the validation MAE per epoch (empty without validation data)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    Xt = [torch.as_tensor(a, dtype=torch.float32) for a in (X if isinstance(X, (list, tuple)) else [X])]
    yt = torch.as_tensor(y, dtype=torch.float32)
    validate = None
    if X_val is not None:
        Xv = [
            torch.as_tensor(a, dtype=torch.float32)
            for a in (X_val if isinstance(X_val, (list, tuple)) else [X_val])
        ]
        yv = torch.as_tensor(y_val, dtype=torch.float32)

        def validate(epoch: int) -> float:
            with torch.no_grad():
                return float(torch.mean(torch.abs(net(*Xv).squeeze(-1) - yv)))

    def step_epoch(epoch: int) -> None:
        for b in shuffled_batches(len(yt), batch_size, gen):
            opt.zero_grad()
            loss = torch.mean(torch.abs(net(*[x[b] for x in Xt]).squeeze(-1) - yt[b]))
            loss.backward()
            opt.step()

    if epochs < 1:  # nothing to train (as before the shared loop: no error)
        net.eval()
        return []
    state = fit_epochs(
        step_epoch,
        validate,
        epochs=epochs,
        model=net,
        patience=patience,
        progress=progress,
        desc=desc,
        leave=False,
    )
    return state.column("val_loss")


class DengueNet(Forecaster):
    """DengueNet (Kuo et al. 2024) re-implemented in PyTorch.

    Per location: each image-feature branch (ViT embedding; radiomics of B12 tiles) goes through its own
    stacked LSTM (60, 30, 5); the branch outputs are concatenated into dense 30 → 1. Input: the ``lookback``
    (5) weeks of features up to the origin; target: min-max-scaled cases ``horizon`` weeks later; MAE loss,
    Adam with lr 1e-4, batch 8. The ``val_weeks`` (16) weeks before the test window pick the epoch kept
    (published split 124 / 16 / 16). ``branches`` may add ``"cases"`` (past cases as a third branch), which
    the paper does not use.

    Parameters
    ----------
    epochs : int
        Most training epochs (the paper does not state it; 300 by default).
    patience : int or None
        Stop when the validation MAE has not improved for this many epochs (None: run all epochs).
    n_jobs : int or None
        Locations trained at once, in threads of this process (joblib's convention: -1 every core); the
        weights equal those of ``n_jobs=1`` (each location: its own seed and batch order, one torch thread).
    """

    name = "denguenet"
    uses_images = True
    uses_torch = True
    trained = True
    quantile_method = "conformal: empirical quantiles of the log1p-scale errors on the validation weeks"

    def calibration_origins(self, panel: Panel, train_end: pd.Timestamp) -> pd.DatetimeIndex:
        # the validation weeks picked the epoch but were not trained on; the training weeks are fitted too
        # closely
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
        n_jobs: int | None = 1,
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
            n_jobs=n_jobs,
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
                    f"denguenet: no {b} features for the {self._lookback} weeks up to "
                    f"{_weeks.week_label(bad)}; the image cubes must cover every lookback window"
                )
            idx = p[:, None] - np.arange(self._lookback)[::-1][None, :]
            res.append(vals[idx])
        return res

    def fit(self, panel: Panel, train_end: pd.Timestamp) -> DengueNet:
        from joblib import Parallel, delayed

        torch = torch_seed(panel.seed)
        self._lookback = panel.lookback
        units, dense = self.params["lstm_units"], self.params["dense_units"]

        class Branch(torch.nn.Module):
            def __init__(self, n_in: int) -> None:
                super().__init__()
                sizes = (n_in,) + tuple(units)
                self.layers = torch.nn.ModuleList(
                    [torch.nn.LSTM(sizes[i], sizes[i + 1], batch_first=True) for i in range(len(units))]
                )

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                for layer in self.layers:
                    x, _ = layer(x)
                return x[:, -1]

        class Net(torch.nn.Module):
            def __init__(self, n_ins: list[int]) -> None:
                super().__init__()
                self.branches = torch.nn.ModuleList([Branch(n) for n in n_ins])
                self.dense = torch.nn.Sequential(
                    torch.nn.Linear(units[-1] * len(n_ins), dense), torch.nn.ReLU(), torch.nn.Linear(dense, 1)
                )

            def forward(self, *xs: torch.Tensor) -> torch.Tensor:
                return self.dense(torch.cat([br(x) for br, x in zip(self.branches, xs)], dim=-1))

        self.nets_, self.stats_, self.yrange_, self.val_history_ = {}, {}, {}, {}
        val_start = train_end - (self.params["val_weeks"] - 1) * WEEK
        # nets built one after another draw the same initial weights as before; the locations then train at
        # once in threads, each with its own batch-order generator and one torch thread
        jobs = []
        for k, loc in enumerate(panel.locations):
            data = self._training_data(panel, loc, train_end, val_start)
            net = Net([a.shape[-1] for a in data["X"]])
            jobs.append((loc, net, dict(data, seed=panel.seed + k, desc=f"denguenet {loc}")))
        common = {k: self.params[k] for k in ("epochs", "batch_size", "lr", "patience")}
        histories = Parallel(n_jobs=self.params["n_jobs"], prefer="threads")(
            delayed(_train_torch)(net, **kw, **common, progress=panel.progress) for _, net, kw in jobs
        )
        for (loc, net, _), history in zip(jobs, histories, strict=True):
            self.val_history_[loc], self.nets_[loc] = history, net
        return self

    def _training_data(
        self, panel: Panel, loc: Any, train_end: pd.Timestamp, val_start: pd.Timestamp
    ) -> dict[str, Any]:
        """Scaled training and validation windows of one location (sets its feature and case scaling)."""
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
        span = hi - lo if hi > lo else 1.0
        self.yrange_[loc] = (lo, span)
        return {
            "X": self._windows(arrays, self.stats_[loc], tr),
            "y": (y_tr - lo) / span,
            "X_val": self._windows(arrays, self.stats_[loc], va) if len(va) else None,
            "y_val": (y_all.loc[va + panel.horizon * WEEK].to_numpy() - lo) / span if len(va) else None,
        }

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
