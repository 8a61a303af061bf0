"""The dengue models by name: :data:`MODELS`, :func:`make_model`, and every model class (re-exported).

Every model is a :class:`~terralab.dengue.base.Forecaster` (module :mod:`~terralab.dengue.base`, with the
:class:`~terralab.dengue.base.Panel` it looks at). A model uses only data at or before each forecast origin;
``tests/dengue/test_dengue_models.py`` checks that changing later weeks leaves every forecast unchanged.

==================  ==============  ==========================================================================
name                module          model
==================  ==============  ==========================================================================
``persistence``     ``baselines``   last observed week
``moving_mean``     ``baselines``   mean of the last ``window_weeks`` weeks (default 4)
``seasonal_naive``  ``baselines``   the same MMWR week one year earlier (week 53 → week 52)
``median_ar``       ``regression``  pooled linear autoregression on scale-free lags (+ covariates), fitted by
                                    least absolute deviation (median regression, statsmodels QuantReg)
``gbm``             ``pooled``      pooled gradient boosting (LightGBM) of the change in log1p cases on the
                                    pooled model's features; quantiles by split conformal
``nb_glm``          ``regression``  negative-binomial GLM per location (log link) on log lags, season and
                                    covariates; dispersion from the Cameron–Trivedi auxiliary regression
``pooled``          ``pooled``      one global log-linear model over all locations: lags, location level,
                                    climatology, season (covariates optional); quantiles from held-out errors
                                    (split conformal)
``lstm``            ``lstm``        pooled two-layer LSTM on the lookback window of cases (+ covariates),
                                    quantile head for every horizon at once (pinball loss)
``denguenet``       ``denguenet``   DengueNet (Kuo et al. 2024): ViT and radiomics image-feature branches,
                                    each a stacked LSTM (60, 30, 5), merged into dense 30 → 1; per location;
                                    MAE on min-max-scaled cases
==================  ==============  ==========================================================================

>>> from terralab.dengue.models import make_model
>>> make_model("moving_mean", window_weeks=3)
MovingMean(window_weeks=3, calibration_weeks=None, symmetric=False)
>>> sorted(MODELS)[:3]
['denguenet', 'gbm', 'lstm']
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInputError
from .base import (
    WEEK,
    Forecaster,
    Panel,
    covariate_stats,
    single_thread,
    torch_seed,
    train_origins,
    whole_weeks,
)
from .baselines import MovingMean, Persistence, SeasonalNaive
from .denguenet import DengueNet
from .lstm import LSTMForecaster, train_quantiles
from .pooled import GradientBoosting, Pooled
from .probabilistic import tidy_quantiles
from .regression import MedianAR, NegBinGLM, lag_design, lag_design_names, log_link_irls

__all__ = [
    "BASELINES",
    "MODELS",
    "WEEK",
    "DengueNet",
    "Forecaster",
    "GradientBoosting",
    "LSTMForecaster",
    "MedianAR",
    "MovingMean",
    "NegBinGLM",
    "Panel",
    "Persistence",
    "Pooled",
    "SeasonalNaive",
    "covariate_stats",
    "lag_design",
    "lag_design_names",
    "log_link_irls",
    "make_model",
    "single_thread",
    "tidy_quantiles",
    "torch_seed",
    "train_origins",
    "train_quantiles",
    "whole_weeks",
]

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
    """A :class:`Forecaster` from a name of :data:`MODELS` (with its parameters) or an instance (returned
    as is)."""
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
