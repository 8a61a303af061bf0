"""The rice networks: the ACES per-pixel MLP (optionally a deep ensemble) and the smp patch U-Net.

Only builders live here (no training, no data): :func:`build_net` makes the module a checkpoint or a training
loop needs from its config dict. torch and segmentation-models-pytorch are imported inside the functions.

Example
-------
A deep ensemble of two MLPs (4 bands → 8 → 3 classes) returns log-probabilities:

>>> import torch
>>> net = build_net("dnn", 4, 3, {"hidden": [8], "dropout": 0.0, "n_members": 2})
>>> len(net.members), tuple(net(torch.zeros(5, 4)).shape)
(2, (5, 3))
>>> bool(torch.allclose(net(torch.zeros(5, 4)).exp().sum(dim=1), torch.ones(5)))
True
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from ..errors import FileFormatError, InvalidInputError, MissingDependencyError
from ..progress import import_quietly

if TYPE_CHECKING:
    import torch

__all__ = ["build_net", "ensemble", "import_torch"]


def import_torch() -> ModuleType:
    """The ``torch`` module, or a :class:`~terralab.errors.MissingDependencyError` saying how to get it."""
    try:
        import torch
    except ImportError as err:  # pragma: no cover - torch is a core dependency
        raise MissingDependencyError("PyTorch is needed for the rice models: pip install torch") from err
    return torch


def build_net(
    kind: str, n_bands: int, n_classes: int, config: dict, load_encoder: bool = True
) -> torch.nn.Module:
    """A fresh ``"dnn"`` (ensemble of MLPs) or ``"unet"`` for ``n_bands`` inputs and ``n_classes`` outputs.

    ``load_encoder=False`` skips the U-Net encoder weights of ``config`` (a checkpoint brings its own).
    """
    if kind == "dnn":
        return _build_dnn(n_bands, n_classes, config)
    return _build_unet(n_bands, n_classes, config, load_encoder)


def _build_dnn(n_bands: int, n_classes: int, config: dict):
    nn = import_torch().nn
    members = []
    for _ in range(int(config.get("n_members", 1))):
        layers: list = []
        width = n_bands
        for hidden in config["hidden"]:
            layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(float(config["dropout"]))]
            width = hidden
        layers.append(nn.Linear(width, n_classes))
        members.append(nn.Sequential(*layers))
    return ensemble(members)


def _build_unet(n_bands: int, n_classes: int, config: dict, load_encoder: bool):
    nn = import_torch().nn
    try:
        smp = import_quietly("segmentation_models_pytorch")
    except ImportError as err:
        raise MissingDependencyError(
            "the U-Net needs segmentation-models-pytorch: pip install segmentation-models-pytorch"
        ) from err
    depth = int(config["encoder_depth"])
    weights = config.get("encoder_weights")
    local_weights = weights is not None and (os.sep in str(weights) or str(weights).endswith((".pt", ".pth")))
    net = smp.Unet(
        encoder_name=config["encoder"],
        encoder_depth=depth,
        encoder_weights=None if (local_weights or not load_encoder) else weights,
        decoder_channels=list(config["decoder_channels"]),
        in_channels=n_bands,
        classes=n_classes,
    )
    if config["encoder"].startswith("resnet"):
        # smp builds the whole ResNet even when fewer stages are used: drop the unused ones
        for stage in range(max(depth, 1), 5):
            if hasattr(net.encoder, f"layer{stage}"):
                setattr(net.encoder, f"layer{stage}", nn.Identity())
        if hasattr(net.encoder, "fc"):
            net.encoder.fc = nn.Identity()
    if local_weights and load_encoder:
        _load_encoder_weights(net.encoder, Path(weights), n_bands)
    return net


def _load_encoder_weights(encoder, path: Path, n_bands: int) -> None:
    """Load a local encoder state_dict; a first convolution trained on 3 channels is spread over n_bands."""
    torch = import_torch()
    if not path.exists():
        raise InvalidInputError(f"encoder weights {path} do not exist: give a local .pth state_dict or None")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise FileFormatError(f"{path} is not a torch state_dict ({err})") from err
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    own = encoder.state_dict()
    adapted = {}
    for key, value in state.items():
        if key not in own:
            continue
        target = own[key]
        if value.shape != target.shape:
            if value.ndim == 4 and value.shape[0] == target.shape[0] and value.shape[2:] == target.shape[2:]:
                reps = math.ceil(n_bands / value.shape[1])
                value = value.repeat(1, reps, 1, 1)[:, :n_bands] * (value.shape[1] / n_bands)
            else:
                raise InvalidInputError(
                    f"encoder weight {key!r} has shape {tuple(value.shape)}, expected {tuple(target.shape)}"
                )
        adapted[key] = value
    if not adapted:
        raise InvalidInputError(f"{path} holds no weight of this encoder: is it the right architecture?")
    encoder.load_state_dict(adapted, strict=False)


def ensemble(members: Sequence[torch.nn.Module]) -> torch.nn.Module:
    """A deep ensemble: the mean of the members' softmax probabilities, returned as log-probabilities."""
    torch = import_torch()

    class Ensemble(torch.nn.Module):
        """Average of the members' softmax probabilities (a deep ensemble); returns log-probabilities."""

        def __init__(self, nets):
            super().__init__()
            self.members = torch.nn.ModuleList(nets)

        def forward(self, x):
            probs = torch.stack([torch.softmax(m(x), dim=1) for m in self.members]).mean(0)
            return torch.log(probs.clamp_min(1e-12))

    return Ensemble(members)
