"""The rolling evaluation behind the README's dengue tables, defined once for the benchmarks and the tests.

Every reported rolling figure comes from :func:`rolling_evaluation` on the series of
:func:`evaluation_series`: horizons 1–4, a refit every 13 weeks, seed 0, the LSTM's fixed step budget; model
settings and ensembles were chosen on the design windows (``benchmarks/dengue_design_selection.py``), never on
the reported ones.

>>> from terralab.dengue.protocol import REPORTED_WINDOWS, ROLLING_PROTOCOL
>>> REPORTED_WINDOWS["colombia"]
('2016w01', '2019w52')
>>> ROLLING_PROTOCOL
{'horizons': (1, 2, 3, 4), 'refit_every_weeks': 13, 'seed': 0}
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..errors import InvalidInputError
from . import cases as _cases
from .base import Forecaster
from .rolling import rolling_backtest

__all__ = [
    "COVARIATES",
    "DENGAI_WEEKS",
    "DESIGN_WINDOWS",
    "LSTM_BUDGET",
    "RANKED_UP_TO",
    "REPORTED_WINDOWS",
    "ROLLING_PROTOCOL",
    "EvaluationSeries",
    "evaluation_series",
    "rolling_evaluation",
]

#: Horizons, refit interval and seed of every reported rolling evaluation.
ROLLING_PROTOCOL: dict[str, Any] = {"horizons": (1, 2, 3, 4), "refit_every_weeks": 13, "seed": 0}
#: The LSTM's training budget in the rolling evaluations: gradient steps, not passes, so one series and 100
#: municipalities train alike.
LSTM_BUDGET: dict[str, Any] = {"steps": 600, "batch_size": 256, "lr": 3e-3}
#: Target weeks reported per source (first, last); DengAI: each city's last :data:`DENGAI_WEEKS` labelled
#: weeks.
REPORTED_WINDOWS: dict[str, tuple[str, str]] = {
    "colombia": ("2016w01", "2019w52"),
    "rio": ("2018w01", "2023w52"),
}
#: Target weeks on which settings were chosen; DengAI: the :data:`DENGAI_WEEKS` weeks before the reported
#: ones.
DESIGN_WINDOWS: dict[str, tuple[str, str]] = {"colombia": ("2012w01", "2015w52")}
DENGAI_WEEKS = 208
#: Colombian municipalities are ranked by their cases up to this week (before every window).
RANKED_UP_TO = "2015w52"
#: Covariates in the reported runs: none for the Colombia-wide municipalities (most have none) and Rio (case
#: models only); DengAI's own (``None``: loaded for the covariate models).
COVARIATES: dict[str, bool | None] = {"colombia": False, "rio": False, "dengai": None}


@dataclass(frozen=True)
class EvaluationSeries:
    """One run of an evaluation: its cases, first and last target week, and the covariates setting."""

    label: str
    cases: pd.DataFrame
    start: Any
    end: Any
    covariates: bool | None


def evaluation_series(source: str, locations: int = 100, *, design: bool = False) -> list[EvaluationSeries]:
    """The runs of the rolling evaluation of ``source``: one for ``"colombia"`` and ``"rio"``, one per DengAI
    city.

    Parameters
    ----------
    source : {"colombia", "rio", "dengai"}
        ``"colombia"``: the ``locations`` municipalities with the most cases up to :data:`RANKED_UP_TO`.
    locations : int
        Colombia only: how many municipalities (100 in the README).
    design : bool
        The design window (settings were chosen there) instead of the reported one; Rio has none.
    """
    cov = COVARIATES.get(source)
    if source == "colombia":
        cases = _cases.top_locations(_cases.load_cases("colombia"), n=locations, end=RANKED_UP_TO)
        start, end = (DESIGN_WINDOWS if design else REPORTED_WINDOWS)["colombia"]
        return [EvaluationSeries("colombia", cases, start, end, cov)]
    if source == "rio":
        if design:
            raise InvalidInputError("Rio has no design window (all of it before 2018 is training history)")
        return [EvaluationSeries("rio", _cases.load_cases("rio"), *REPORTED_WINDOWS["rio"], cov)]
    if source == "dengai":
        out = []
        for city in ("sj", "iq"):
            cases = _cases.load_cases("dengai", [city])
            last = -1 - DENGAI_WEEKS if design else -1
            out.append(
                EvaluationSeries(city, cases, cases.index[last - DENGAI_WEEKS + 1], cases.index[last], cov)
            )
        return out
    raise InvalidInputError(f"source must be 'colombia', 'rio' or 'dengai', got {source!r}")


def rolling_evaluation(
    cases: pd.DataFrame, models: Iterable[str | Forecaster], start: Any, end: Any, **kwargs: Any
) -> pd.DataFrame:
    """:func:`~terralab.dengue.rolling_backtest` under :data:`ROLLING_PROTOCOL` with the LSTM's
    :data:`LSTM_BUDGET`.

    ``kwargs`` go to ``rolling_backtest`` (``n_jobs``, ``covariates``, ``progress`` …); ``model_params`` are
    added to the LSTM budget (a model's own entry wins).
    """
    params = {"lstm": LSTM_BUDGET, **(kwargs.pop("model_params", None) or {})}
    return rolling_backtest(
        cases, models, start, end, **{**ROLLING_PROTOCOL, **kwargs, "model_params": params}
    )
