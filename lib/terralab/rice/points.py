"""Applying a per-pixel rice model (DNN or RandomForest) to a table of points: :func:`predict_points`.

A stack goes through :func:`terralab.rice.predict` (tiled, a DataArray); a table of points comes here and
always gives a DataFrame, one row per point.

Example
-------
>>> from terralab import rice
>>> stack, truth = rice.synthetic.scene(height_px=32, width_px=32, seed=0)
>>> points = rice.labels.sample_points(stack, truth, 20, seed=0)
>>> model = rice.fit(points, model="rf", bands="RGBN", n_estimators=5)
>>> table = predict_points(model, points.head(3), return_proba=True)
>>> list(table.columns)
['class', 'confidence', 'cropland_etc', 'rice', 'forest', 'urban', 'others_water_etc']
>>> str(table["class"].dtype), bool(table["confidence"].between(0, 1).all())
('int64', True)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InvalidInputError
from .checkpoint import RiceModel
from .inference import point_inputs, predict_proba_matrix
from .labels import NODATA

__all__ = ["predict_points"]


def predict_points(
    model: RiceModel,
    points: pd.DataFrame,
    *,
    output: str = "class",
    return_proba: bool = False,
    device: str = "cpu",
) -> pd.DataFrame:
    """Apply a per-pixel model to points: one row per point, on the points' index.

    Parameters
    ----------
    model
        A DNN or RandomForest from :func:`terralab.rice.fit` or :func:`terralab.rice.load` (a U-Net needs a
        stack: predict the stack, then :func:`terralab.rice.evaluate.sample_at`).
    points
        A DataFrame with the model's band columns.
    output
        ``"class"`` (class ids) or ``"proba"`` (class probabilities only).
    return_proba
        Class ids together with their calibrated probabilities.
    device
        Torch device (DNN).

    Returns
    -------
    pd.DataFrame
        ``output="class"``: one int64 column ``class`` (−1 for rows with NaN); ``output="proba"``: one
        float32 column of probabilities per class name (NaN for rows with NaN); ``return_proba=True``:
        ``class``, ``confidence`` (the largest probability), then the probabilities.
    """
    if not isinstance(model, RiceModel):
        raise InvalidInputError(
            f"model must be a RiceModel (from rice.fit or rice.load), got {type(model).__name__}"
        )
    if output not in ("class", "proba"):
        raise InvalidInputError("output must be 'class' or 'proba'")
    if not isinstance(points, pd.DataFrame):
        raise InvalidInputError(
            f"points must be a DataFrame with the model's band columns, got {type(points).__name__}; "
            "for a stack use rice.predict"
        )
    if model.kind == "unet":
        raise InvalidInputError(
            "a U-Net predicts on a stack, not points: predict the stack, then sample the class map at the "
            "points (rice.evaluate.sample_at)"
        )
    X, nodata = point_inputs(model, points)
    ok = ~nodata
    proba = np.zeros((len(points), model.n_classes), np.float32)
    if ok.any():
        proba[ok] = predict_proba_matrix(model, X[ok], device, inputs=bool(model.config.get("stack_inputs")))
    classes = pd.Series(
        np.where(ok, proba.argmax(1), NODATA).astype(np.int64), index=points.index, name="class"
    )
    if output == "class" and not return_proba:
        return classes.to_frame()
    proba[~ok] = np.nan
    frame = pd.DataFrame(proba, index=points.index, columns=model.class_names)
    if return_proba:
        frame.insert(0, "confidence", frame.max(axis=1))
        frame.insert(0, "class", classes)
    return frame
