"""Rice-mapping models: point DNN (MLP), patch U-Net (segmentation-models-pytorch) and a RandomForest
baseline; training with seed, early stopping and progress bar; windowed tiled inference with blending;
checkpoints that carry band names and normalisation.

The calls::

    model = rice.fit(stack, labels, model="unet", bands=None, epochs=30, seed=0)
    model = rice.fit(points, model="dnn", epochs=200, seed=0)
    classes = rice.predict(model, stack, tile=256, overlap=32)          # xr.DataArray (y, x), −1 = nodata
    classes = rice.predict_points(model, points)                        # pd.DataFrame: column 'class'
    rice.predict_geotiff(model, "features.tif", "classes.tif")          # window by window, any size
    model.save("rice_unet.pt"); model = rice.load("rice_unet.pt")

The U-Net's default encoder is a ResNet-18 cut after its second stage (``encoder_depth=3``: stride 8,
receptive field ≈ 100 px = 1 km at 10 m, ~0.9 M parameters): fields in Paro are a few pixels to a few
tens of pixels wide, and the cut keeps CPU training and inference fast. ``encoder_depth=4`` or 5 and other
smp encoders (``encoder="timm-mobilenetv3_small_minimal_100"``, ``"efficientnet-b0"``, …) are one argument
away. Weights are never downloaded unless asked for: ``encoder_weights=None`` (default) trains from scratch,
a path loads a local encoder ``state_dict``.

This module gathers the public names; the code lives by job in :mod:`~terralab.rice.checkpoint` (the model and
its checkpoint), :mod:`~terralab.rice.networks` (the networks), :mod:`~terralab.rice.inputs` (what a model
reads), :mod:`~terralab.rice.options` (per-model options), :mod:`~terralab.rice.training` (``fit``),
:mod:`~terralab.rice.dnn` and :mod:`~terralab.rice.unet` (training loops), :mod:`~terralab.rice.inference`
(``predict``), :mod:`~terralab.rice.points` (``predict_points``), :mod:`~terralab.rice.calibration` and
:mod:`~terralab.rice.geotiff` (``predict_geotiff``).

Example
-------
A RandomForest of five trees on a small synthetic valley, its class map, and the map cleaned up:

>>> from terralab import rice
>>> stack, truth = rice.synthetic.scene(height_px=32, width_px=32, seed=0)
>>> model = fit(stack, truth, model="rf", bands="RGBN", n_estimators=5, progress=False)
>>> model
RiceModel(rf, 8 bands, 5 classes, cloud-masked before+during)
>>> classes = majority_filter(predict(model, stack, progress=False), size_px=3)
>>> classes.shape, bool(((classes >= -1) & (classes < model.n_classes)).all())
((32, 32), True)
"""

from __future__ import annotations

from .calibration import calibrate, fit_temperature
from .checkpoint import RiceModel, load
from .geotiff import predict_geotiff
from .inference import QUALITY_ATTRS, majority_filter, predict
from .inputs import POINT_META_COLUMNS
from .options import DNNParams, RFParams, StackParams, UNetParams
from .points import predict_points
from .training import MODEL_KINDS, fit

__all__ = [
    "MODEL_KINDS",
    "POINT_META_COLUMNS",
    "QUALITY_ATTRS",
    "DNNParams",
    "RFParams",
    "RiceModel",
    "StackParams",
    "UNetParams",
    "calibrate",
    "fit",
    "fit_temperature",
    "load",
    "majority_filter",
    "predict",
    "predict_geotiff",
    "predict_points",
]
