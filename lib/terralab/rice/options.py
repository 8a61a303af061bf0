"""Per-model training options of :func:`terralab.rice.fit`, as small frozen dataclasses.

``rice.fit(stack, labels, model="unet", patch_size_px=32)`` passes ``patch_size_px`` on to
:class:`UNetParams`; a name that belongs to no option of the chosen model is refused with the names that do.

>>> from terralab.rice.options import split_model_params
>>> params, stack = split_model_params("dnn", {"hidden": (64, 32), "reproject": True})
>>> params.hidden, params.learning_rate, stack.reproject
((64, 32), 0.001, True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError
from .clouds import CloudTest

__all__ = ["DNNParams", "RFParams", "RunSettings", "StackParams", "UNetParams", "split_model_params"]

_WEIGHTINGS = ("balanced", "none")


def _check_weighting(value: str) -> None:
    if value not in _WEIGHTINGS:
        raise InvalidInputError("class_weighting must be 'balanced' or 'none'")


@dataclass(frozen=True)
class UNetParams:
    """Patch U-Net (segmentation-models-pytorch) options; see :func:`terralab.rice.fit` for their meaning."""

    class_weighting: str = "none"
    learning_rate: float = 3e-3
    batch_size: int = 16
    patience: int = 10
    patch_size_px: int = 64
    patches_per_epoch: int = 256
    encoder: str = "resnet18"
    encoder_depth: int = 3
    encoder_weights: str | Path | None = None
    decoder_channels: Sequence[int] | None = None
    augment_clouds: float = 0.5

    def __post_init__(self) -> None:
        _check_weighting(self.class_weighting)


@dataclass(frozen=True)
class DNNParams:
    """Per-pixel MLP (ACES: 256-128-64-32, dropout 0.2) options; see :func:`terralab.rice.fit`."""

    class_weighting: str = "none"
    learning_rate: float = 1e-3
    batch_size: int = 256
    patience: int = 10
    hidden: Sequence[int] = (256, 128, 64, 32)
    dropout: float = 0.2
    n_members: int = 1

    def __post_init__(self) -> None:
        _check_weighting(self.class_weighting)


@dataclass(frozen=True)
class RFParams:
    """RandomForest baseline options; see :func:`terralab.rice.fit`."""

    class_weighting: str = "none"
    n_estimators: int = 500

    def __post_init__(self) -> None:
        _check_weighting(self.class_weighting)


@dataclass(frozen=True)
class StackParams:
    """How a feature stack's labels and clouds are read, for any model trained on a stack (not on points)."""

    reproject: bool = False
    mask_clouds: bool = True
    cloud_mask: Any = None
    cloud_test: CloudTest | None = None


@dataclass(frozen=True)
class RunSettings:
    """What every model's training shares: seed, epochs, class names, calibration, device and progress."""

    seed: int = 0
    epochs: int = 30
    class_names: Sequence[str] | dict | None = None
    calibrate: bool = True
    device: str = "cpu"
    progress: bool | None = None


_MODEL_PARAMS = {"unet": UNetParams, "dnn": DNNParams, "rf": RFParams}
#: ``None`` for these means "the model's default" (the old signature's spelling).
_NONE_IS_DEFAULT = ("learning_rate", "batch_size")


def _names(cls) -> list[str]:
    return [f.name for f in fields(cls)]


def split_model_params(
    model: str, given: Mapping[str, Any]
) -> tuple[UNetParams | DNNParams | RFParams, StackParams]:
    """Split ``fit``'s extra keyword arguments into the model's options and the stack options, checking names.

    Raises
    ------
    InvalidInputError
        A name that is no option of ``model`` (the message names the model it belongs to, if any, and the
        options ``model`` has), or a ``class_weighting`` other than "balanced" / "none".
    """
    cls = _MODEL_PARAMS[model]
    own, stack_names = set(_names(cls)), set(_names(StackParams))
    unknown = sorted(set(given) - own - stack_names)
    if unknown:
        owners = {
            name: [kind for kind, other in _MODEL_PARAMS.items() if name in _names(other)] for name in unknown
        }
        said = "; ".join(
            f"{name!r} is an option of model={' / '.join(repr(k) for k in kinds)}"
            if kinds
            else f"{name!r} is no option of any model"
            for name, kinds in owners.items()
        )
        raise InvalidInputError(
            f"fit(model={model!r}) got unknown option(s): {said}. Options of {model!r}: "
            f"{', '.join(sorted(own | stack_names))}"
        )
    mine = {k: v for k, v in given.items() if k in own and not (v is None and k in _NONE_IS_DEFAULT)}
    return cls(**mine), StackParams(**{k: v for k, v in given.items() if k in stack_names})
