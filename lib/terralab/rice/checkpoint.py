"""The trained rice model and its checkpoint: :class:`RiceModel` (network, band names, normalisation, classes,
config, history), :meth:`RiceModel.save` and :func:`load`.

A checkpoint is a ``torch.save`` dict tagged ``format: terralab.rice.model/1`` and read back with
``weights_only=True``; the RandomForest baseline travels as a pickled sklearn estimator inside it.

Example
-------
>>> from terralab import rice
>>> stack, truth = rice.synthetic.scene(height_px=32, width_px=32, seed=0)
>>> model = rice.fit(stack, truth, model="dnn", bands="RGBN", epochs=1, hidden=[8], progress=False)
>>> model
RiceModel(dnn, 8 bands, 5 classes, 133 parameters, cloud-masked before+during)
>>> loaded = load(model.save("rice_dnn.pt"))
>>> loaded.bands == model.bands and loaded.normalisation == model.normalisation, loaded.input_names[-2:]
(True, ['valid_optical_before', 'valid_optical_during'])
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataNotAvailableError, FileFormatError
from ..files import atomic_path
from .features import Normalisation
from .networks import build_net, import_torch

__all__ = ["FORMAT", "RiceModel", "load"]

#: The ``format`` tag of a rice checkpoint.
FORMAT = "terralab.rice.model/1"


@dataclass
class RiceModel:
    """A trained rice-mapping model with what it needs to be applied again.

    Attributes
    ----------
    kind
        ``"unet"``, ``"dnn"`` or ``"rf"``.
    bands
        Band names the model reads, in order.
    normalisation
        Per-band mean/std applied before the network (ignored by ``rf``).
    class_names
        Name of each class id.
    config
        Architecture and training settings.
    net
        The torch module (unet, dnn) or sklearn estimator (rf).
    history
        Per-epoch ``train_loss``, ``val_loss``, ``val_accuracy`` (empty for rf).
    """

    kind: str
    bands: list[str]
    normalisation: Normalisation
    class_names: list[str]
    config: dict
    net: Any
    history: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def masked_groups(self) -> list[str]:
        """Optical groups (``optical_before``, ``optical_during``) the model masks for clouds and nodata."""
        masking = self.config.get("masking") or {}
        return list(masking.get("groups", []))

    @property
    def input_names(self) -> list[str]:
        """The network's inputs: :attr:`bands`, then one ``valid_<group>`` channel per masked group."""
        return list(self.bands) + [f"valid_{g}" for g in self.masked_groups]

    @property
    def temperature(self) -> float:
        """Softmax temperature from :func:`calibrate` (1 = uncalibrated)."""
        return float(self.config.get("temperature", 1.0))

    @property
    def stride(self) -> int:
        """Input sizes must be multiples of this (the U-Net's total downsampling); 1 for per-pixel models."""
        return 2 ** int(self.config.get("encoder_depth", 0)) if self.kind == "unet" else 1

    def n_parameters(self) -> int:
        if self.kind == "rf":
            return 0
        return int(sum(p.numel() for p in self.net.parameters()))

    def __repr__(self) -> str:
        extra = f", {self.n_parameters():,} parameters" if self.kind != "rf" else ""
        masks = (
            f", cloud-masked {'+'.join(g.split('_', 1)[1] for g in self.masked_groups)}"
            if self.masked_groups
            else ""
        )
        return f"RiceModel({self.kind}, {len(self.bands)} bands, {self.n_classes} classes{extra}{masks})"

    def save(self, path: str | Path) -> Path:
        """Write a checkpoint (weights, band names, normalisation, classes, config, history), atomically."""
        torch = import_torch()
        path = Path(path)
        payload = {
            "format": FORMAT,
            "kind": self.kind,
            "bands": list(self.bands),
            "normalisation": self.normalisation.to_dict(),
            "class_names": list(self.class_names),
            "config": to_plain(self.config),
            "history": {k: [float(v) for v in self.history[k]] for k in self.history.columns},
        }
        if self.kind == "rf":
            payload["sklearn_pickle"] = pickle.dumps(self.net)
        else:
            payload["state_dict"] = self.net.state_dict()
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
        return path


def to_plain(obj: Any) -> Any:
    """``obj`` with numpy scalars as Python numbers and tuples as lists (for a weights-only checkpoint)."""
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    return obj


def load(path: str | Path, *, device: str = "cpu") -> RiceModel:
    """Load a checkpoint written by :meth:`RiceModel.save`.

    RandomForest checkpoints hold a pickled sklearn estimator: load only files you trust.
    """
    torch = import_torch()
    path = Path(path)
    if not path.exists():
        raise DataNotAvailableError(f"model checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:
        raise FileFormatError(
            f"{path} is not a terralab rice model checkpoint ({err.__class__.__name__}: {err})"
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise FileFormatError(f"{path} is not a terralab rice model checkpoint (format {FORMAT} expected)")
    kind = payload["kind"]
    config = payload["config"]
    norm = Normalisation.from_dict(payload["normalisation"])
    if kind == "rf":
        net = pickle.loads(payload["sklearn_pickle"])
    else:
        n_inputs = len(payload["bands"]) + len((config.get("masking") or {}).get("groups", []))
        net = build_net(kind, n_inputs, len(payload["class_names"]), config, load_encoder=False)
        net.load_state_dict(payload["state_dict"])
        net.to(device).eval()
    history = pd.DataFrame(payload.get("history", {}))
    return RiceModel(kind, list(payload["bands"]), norm, list(payload["class_names"]), config, net, history)
