"""Rice mapping (after SERVIR's ACES study in Paro, Bhutan): feature stacks, Earth Engine acquisition, weak
labels and honest splits, a point DNN and a patch U-Net in PyTorch, tiled inference, evaluation.

Example
-------
>>> from terralab import rice
>>> stack, truth = rice.synthetic.scene(height_px=128, width_px=128, seed=0)
>>> parts = rice.labels.split(truth, kind="half")
>>> model = rice.fit(stack, parts["train"], model="unet", epochs=5, seed=0)      # doctest: +SKIP
>>> classes = rice.predict(model, stack, tile=128, overlap=32)                   # doctest: +SKIP
>>> rice.evaluate.scores(parts["test"], classes).per_class                        # doctest: +SKIP

Heavy dependencies (torch, segmentation-models-pytorch, ee) are imported only inside the functions that use
them, so importing this package is fast.
"""

from . import evaluate, features, labels, plots, synthetic, tfrecord, workflow
from .evaluate import scores
from .features import BAND_SETS, band_names, select_bands
from .labels import ACES_CLASSES, split
from .models import RiceModel, fit, load, predict, predict_geotiff

__all__ = [
    "ACES_CLASSES",
    "BAND_SETS",
    "RiceModel",
    "band_names",
    "evaluate",
    "features",
    "fit",
    "labels",
    "load",
    "plots",
    "predict",
    "predict_geotiff",
    "scores",
    "select_bands",
    "split",
    "synthetic",
    "tfrecord",
    "workflow",
]
