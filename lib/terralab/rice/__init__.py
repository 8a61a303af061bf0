"""Rice mapping (after SERVIR's ACES study in Paro, Bhutan): feature stacks, Earth Engine acquisition, weak
labels and honest splits, cloud and shadow masks, a point DNN and a patch U-Net in PyTorch, tiled inference
with calibrated probabilities, evaluation, and rice area in hectares with confidence intervals.

Example
-------
>>> from terralab import rice
>>> stack, truth = rice.synthetic.scene(height_px=128, width_px=128, seed=0)
>>> parts = rice.labels.split(truth, kind="half")
>>> model = rice.fit(stack, parts["train"], model="unet", epochs=5, seed=0)      # doctest: +SKIP
>>> classes = rice.predict(model, stack, tile=128, overlap=32)                   # doctest: +SKIP
>>> rice.evaluate.scores(parts["test"], classes)                                  # doctest: +SKIP
>>> points = rice.sample_reference(classes, n_per_class=50, seed=0, reference_map=truth)  # doctest: +SKIP
>>> rice.area_estimate(classes, points)[["mapped_ha", "adjusted_ha", "ci95_ha"]]            # doctest: +SKIP

Heavy dependencies (torch, segmentation-models-pytorch, ee) are imported only inside the functions that use
them, so importing this package is fast.
"""

from . import area, clouds, evaluate, features, labels, plots, synthetic, tfrecord, workflow
from .area import area_estimate, sample_reference
from .evaluate import scores
from .features import BAND_SETS, band_names, select_bands
from .labels import ACES_CLASSES, split
from .models import RiceModel, calibrate, fit, load, majority_filter, predict, predict_geotiff, predict_points

__all__ = [
    "ACES_CLASSES",
    "BAND_SETS",
    "RiceModel",
    "area",
    "area_estimate",
    "band_names",
    "calibrate",
    "clouds",
    "evaluate",
    "features",
    "fit",
    "labels",
    "load",
    "majority_filter",
    "plots",
    "predict",
    "predict_geotiff",
    "predict_points",
    "sample_reference",
    "scores",
    "select_bands",
    "split",
    "synthetic",
    "tfrecord",
    "workflow",
]
