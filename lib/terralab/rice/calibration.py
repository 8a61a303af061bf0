"""Calibrated class probabilities: temperature scaling (Guo et al. 2017) of a rice model's softmax.

:func:`fit_temperature` finds the temperature from logits and labels (the training loops call it on their
validation split); :func:`calibrate` refits it on held-out labels of a stack or points.

>>> import numpy as np
>>> from terralab.rice.calibration import fit_temperature
>>> fit_temperature(np.zeros((3, 2)), np.array([-1, -1, -1]))   # no usable label: uncalibrated
1.0
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InvalidInputError
from .checkpoint import RiceModel
from .features import check_stack
from .inference import predict
from .labels import align_labels
from .points import predict_points

__all__ = ["calibrate", "fit_temperature"]


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The softmax temperature T minimising the negative log-likelihood of ``labels`` under softmax(logits /
    T) (temperature scaling, Guo et al. 2017). Logits may be log-probabilities. Returns 1 for no usable
    labels."""
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax

    logits = np.asarray(logits, np.float64)
    labels = np.asarray(labels, np.int64)
    ok = (labels >= 0) & (labels < logits.shape[1]) & np.isfinite(logits).all(axis=1)
    logits, labels = logits[ok], labels[ok]
    if labels.size == 0:
        return 1.0

    def nll(log_t: float) -> float:
        return float(-log_softmax(logits / np.exp(log_t), axis=1)[np.arange(labels.size), labels].mean())

    result = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(result.x))


def calibrate(
    model: RiceModel,
    data: xr.DataArray | pd.DataFrame,
    labels: xr.DataArray | None = None,
    *,
    tile: int = 256,
    overlap: int = 32,
    cloud_mask: xr.DataArray | None = None,
    progress: bool | None = None,
) -> RiceModel:
    """Fit the model's softmax temperature on held-out labels (temperature scaling, Guo et al. 2017) and
    return the model (changed in place). :func:`fit` already does this on its validation split.

    ``data`` is a stack with a label raster ``labels`` on its grid (−1 = not used), or points with a ``class``
    column. The class map does not change (a temperature keeps the order of the probabilities); only how sure
    the probabilities are.
    """
    before = model.config.get("temperature", 1.0)
    model.config["temperature"] = 1.0
    try:
        if isinstance(data, pd.DataFrame):
            if "class" not in data.columns:
                raise InvalidInputError("calibration points need a 'class' column")
            proba = predict_points(model, data, output="proba").to_numpy()
            truth = data["class"].to_numpy()
        else:
            if labels is None:
                raise InvalidInputError("calibrate(model, stack, labels): a stack needs a label raster")
            labels = align_labels(labels, check_stack(data))
            proba_da = predict(
                model,
                data,
                output="proba",
                tile=tile,
                overlap=overlap,
                cloud_mask=cloud_mask,
                progress=progress,
            )
            proba = proba_da.values.reshape(model.n_classes, -1).T
            truth = labels.values.ravel()
        ok = (truth >= 0) & np.isfinite(proba).all(axis=1)
        if not ok.any():
            raise InvalidInputError("no labelled pixel or point with a prediction to calibrate on")
        model.config["temperature"] = fit_temperature(np.log(np.clip(proba[ok], 1e-7, 1.0)), truth[ok])
    except BaseException:
        model.config["temperature"] = before
        raise
    return model
