"""Rice-mapping models: point DNN (MLP), patch U-Net (segmentation-models-pytorch) and a RandomForest
baseline; training with seed, early stopping and progress bar; windowed tiled inference with blending;
checkpoints that carry band names and normalisation.

The calls::

    model = rice.fit(stack, labels, model="unet", bands=None, epochs=30, seed=0)
    model = rice.fit(points, model="dnn", epochs=200, seed=0)
    classes = rice.predict(model, stack, tile=256, overlap=32)          # xr.DataArray (y, x), −1 = nodata
    classes = rice.predict(model, points)                               # pd.Series of class ids per row
    rice.predict_geotiff(model, "features.tif", "classes.tif")          # window by window, any size
    model.save("rice_unet.pt"); model = rice.load("rice_unet.pt")

The U-Net's default encoder is a ResNet-18 cut after its second stage (``encoder_depth=3``: stride 8,
receptive field ≈ 100 px = 1 km at 10 m, ~0.9 M parameters): fields in Paro are a few pixels to a few
tens of pixels wide, and the cut keeps CPU training and inference fast. ``encoder_depth=4`` or 5 and other
smp encoders (``encoder="timm-mobilenetv3_small_minimal_100"``, ``"efficientnet-b0"``, …) are one argument
away. Weights are never downloaded unless asked for: ``encoder_weights=None`` (default) trains from scratch,
a path loads a local encoder ``state_dict``.
"""

from __future__ import annotations

import math
import os
import pickle
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import FileFormatError, InvalidInputError, MissingDependencyError
from ..files import atomic_path
from . import clouds as clouds_mod
from .clouds import CloudTest, band_group, feature_bands, is_optical, validity_array
from .features import (
    INDICES,
    SEASONS,
    Normalisation,
    band_names,
    check_stack,
    fit_normalisation,
    index_values,
    select_bands,
)
from .labels import ACES_CLASSES, NODATA, align_labels, class_weights, split

__all__ = [
    "POINT_META_COLUMNS",
    "QUALITY_ATTRS",
    "RiceModel",
    "calibrate",
    "fit",
    "fit_temperature",
    "load",
    "majority_filter",
    "predict",
    "predict_geotiff",
]

MODEL_KINDS = ("unet", "dnn", "rf")
#: Columns of a points table that are never features.
POINT_META_COLUMNS = ("class", "class_name", "split", "row", "col", "x", "y", "lon", "lat", "geometry", "id")
_FORMAT = "terralab.rice.model/1"


def _torch():
    try:
        import torch
    except ImportError as err:  # pragma: no cover - torch is a core dependency
        raise MissingDependencyError("PyTorch is needed for the rice models: pip install torch") from err
    return torch


def _progress(iterable, enabled: bool, **kwargs):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, **kwargs)


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
        """Optical band groups (``optical_before``, ``optical_during``) the model masks for clouds and nodata."""
        masking = self.config.get("masking") or {}
        return list(masking.get("groups", []))

    @property
    def input_names(self) -> list[str]:
        """The network's input channels: :attr:`bands`, then one ``valid_<group>`` channel per masked group."""
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
        torch = _torch()
        path = Path(path)
        payload = {
            "format": _FORMAT,
            "kind": self.kind,
            "bands": list(self.bands),
            "normalisation": self.normalisation.to_dict(),
            "class_names": list(self.class_names),
            "config": _plain(self.config),
            "history": {k: [float(v) for v in self.history[k]] for k in self.history.columns},
        }
        if self.kind == "rf":
            payload["sklearn_pickle"] = pickle.dumps(self.net)
        else:
            payload["state_dict"] = self.net.state_dict()
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
        return path


def _plain(obj):
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    return obj


def load(path: str | Path, *, device: str = "cpu") -> RiceModel:
    """Load a checkpoint written by :meth:`RiceModel.save`.

    RandomForest checkpoints hold a pickled sklearn estimator: load only files you trust.
    """
    torch = _torch()
    path = Path(path)
    if not path.exists():
        from ..errors import DataNotAvailableError

        raise DataNotAvailableError(f"model checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:
        raise FileFormatError(
            f"{path} is not a terralab rice model checkpoint ({err.__class__.__name__}: {err})"
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise FileFormatError(f"{path} is not a terralab rice model checkpoint (format {_FORMAT} expected)")
    kind = payload["kind"]
    config = payload["config"]
    norm = Normalisation.from_dict(payload["normalisation"])
    if kind == "rf":
        net = pickle.loads(payload["sklearn_pickle"])
    else:
        n_inputs = len(payload["bands"]) + len((config.get("masking") or {}).get("groups", []))
        net = _build_net(kind, n_inputs, len(payload["class_names"]), config, load_encoder=False)
        net.load_state_dict(payload["state_dict"])
        net.to(device).eval()
    history = pd.DataFrame(payload.get("history", {}))
    return RiceModel(kind, list(payload["bands"]), norm, list(payload["class_names"]), config, net, history)


# --- networks ------------------------------------------------------------------------------------------


def _build_net(kind: str, n_bands: int, n_classes: int, config: dict, load_encoder: bool = True):
    torch = _torch()
    nn = torch.nn
    if kind == "dnn":
        members = []
        for _ in range(int(config.get("n_members", 1))):
            layers: list = []
            width = n_bands
            for hidden in config["hidden"]:
                layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(float(config["dropout"]))]
                width = hidden
            layers.append(nn.Linear(width, n_classes))
            members.append(nn.Sequential(*layers))
        return _Ensemble(members)
    try:
        import segmentation_models_pytorch as smp
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
    torch = _torch()
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


def _Ensemble(members):
    torch = _torch()

    class Ensemble(torch.nn.Module):
        """Average of the members' softmax probabilities (a deep ensemble); returns log-probabilities."""

        def __init__(self, nets):
            super().__init__()
            self.members = torch.nn.ModuleList(nets)

        def forward(self, x):
            probs = torch.stack([torch.softmax(m(x), dim=1) for m in self.members]).mean(0)
            return torch.log(probs.clamp_min(1e-12))

    return Ensemble(members)


# --- fitting ---------------------------------------------------------------------------------------------


def _seed_everything(seed: int) -> None:
    torch = _torch()
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


def _class_names(n_classes: int, given: Sequence[str] | dict | None, attrs_names=None) -> list[str]:
    if given is not None:
        names = [given[k] for k in sorted(given)] if isinstance(given, dict) else list(given)
    elif attrs_names is not None:
        names = list(attrs_names)
    elif n_classes <= len(ACES_CLASSES):
        names = [ACES_CLASSES[k] for k in range(n_classes)]
    else:
        names = [f"class_{k}" for k in range(n_classes)]
    if len(names) < n_classes:
        raise InvalidInputError(f"{len(names)} class names for {n_classes} classes (ids 0…{n_classes - 1})")
    return [str(n) for n in names]


def _point_bands(points: pd.DataFrame, bands) -> list[str]:
    if bands is None:
        names = [
            c
            for c in points.columns
            if c not in POINT_META_COLUMNS and pd.api.types.is_numeric_dtype(points[c])
        ]
    else:
        names = band_names(bands)
    return names


def _point_matrix(points: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
    missing = [n for n in names if n not in points.columns and n.split("_")[0] not in INDICES]
    if missing:
        raise InvalidInputError(
            f"the points lack columns {missing}; they hold {list(points.columns)}. Choose a band set they have"
        )
    cols = []
    for name in names:
        if name in points.columns:
            cols.append(points[name].to_numpy(dtype=np.float32))
            continue
        index, season = name.split("_", 1)
        need = {b: f"{b}_{season}" for b in ("red", "green", "blue", "nir")}
        lacking = [v for v in need.values() if v not in points.columns]
        if lacking:
            raise InvalidInputError(f"cannot compute {name}: the points lack {lacking}")
        v = index_values(index, *(points[c].to_numpy(dtype=np.float64) for c in need.values()))
        cols.append(np.where(np.isfinite(v), v, np.nan).astype(np.float32))
    return np.column_stack(cols) if cols else np.zeros((len(points), 0), np.float32)


def fit(
    data: xr.DataArray | pd.DataFrame,
    labels: xr.DataArray | None = None,
    *,
    model: str = "unet",
    bands: str | Sequence[str] | None = None,
    epochs: int = 30,
    seed: int = 0,
    validation: xr.DataArray | pd.DataFrame | None = None,
    class_names: Sequence[str] | dict | None = None,
    class_weighting: str = "none",
    learning_rate: float | None = None,
    batch_size: int | None = None,
    patience: int = 10,
    patch_size_px: int = 64,
    patches_per_epoch: int = 256,
    encoder: str = "resnet18",
    encoder_depth: int = 3,
    encoder_weights: str | Path | None = None,
    decoder_channels: Sequence[int] | None = None,
    hidden: Sequence[int] = (256, 128, 64, 32),
    dropout: float = 0.2,
    n_members: int = 1,
    n_estimators: int = 500,
    reproject: bool = False,
    mask_clouds: bool = True,
    cloud_mask: xr.DataArray | None = None,
    cloud_test: CloudTest | None = None,
    augment_clouds: float = 0.5,
    calibrate: bool = True,
    device: str = "cpu",
    progress: bool = True,
) -> RiceModel:
    """Train a rice-mapping model on a feature stack and label raster, or on labelled points.

    Parameters
    ----------
    data
        ``xr.DataArray (band, y, x)`` feature stack (U-Net, or per-pixel dnn/rf on its labelled pixels), or
        a DataFrame with one column per band and a ``class`` column (dnn, rf).
    labels
        ``xr.DataArray (y, x)`` of class ids, −1 where unlabelled, on the stack's grid (stack input only).
    model
        ``"unet"`` (patch U-Net), ``"dnn"`` (per-pixel MLP 256-128-64-32, dropout 0.2, as ACES) or ``"rf"``
        (RandomForest baseline).
    bands
        ``None`` uses every band (every numeric non-meta column of points); a set name like ``"RGBNE"``
        or ``"RGBN+NDVI"`` or a list selects those bands (missing ones are an error).
    epochs
        Maximum number of epochs (early stopping may end sooner).
    seed
        Seeds numpy and torch: the same seed and data give the same model.
    validation
        Validation labels (raster on the same grid) or points, for early stopping and the history. If
        None, 15 % of the training labels are held out: by 64-px blocks for rasters, at random for points.
    class_names
        Names of the class ids (default: the labels' ``class_names`` attr, else ACES's five classes).
    class_weighting
        ``"none"`` (default) or ``"balanced"`` (weights the loss by inverse class frequency: more recall for rare
        classes, less precision for common ones). On the development valley of seed 102 (with and without
        clouds), balanced weights cost the U-Net 0.005 rice F1 (rice covers half the valley floor), so the
        default is none.
    learning_rate, batch_size
        Adam settings (defaults: 3e-3 with cosine decay and 16 patches for unet; 1e-3 and 256 points for dnn).
    patience
        Stop after this many epochs without a lower validation loss; the best epoch's weights are kept.
    patch_size_px, patches_per_epoch
        U-Net training patches: side (multiple of the stride 2**encoder_depth; smaller sizes are padded)
        and number drawn at random per epoch (each around a labelled pixel, with flips and rotations). The
        defaults (64 px, 256 per epoch, batches of 16) were chosen on development valleys (seeds 101–102; the
        report seeds of benchmarks/rice_clouds.py are others); with 64 patches per epoch the network is still
        under-trained after 20 epochs.
    encoder, encoder_depth, encoder_weights, decoder_channels
        The smp U-Net. ``encoder_weights``: None (from scratch), a local ``.pth`` encoder state_dict, or an
        smp weights name (downloads — not offline).
    hidden, dropout, n_members
        DNN layer widths, dropout, and number of ensemble members (averaged softmax).
    n_estimators
        RandomForest trees.
    reproject
        If the labels' CRS/grid differ from the stack's: resample them (nearest) instead of raising.
    mask_clouds
        Stack input: mask each season's optical bands where :func:`terralab.rice.clouds.validity` says they are
        cloudy, shadowed or nodata — their values are replaced by the band mean and one ``valid_<group>`` input
        channel per season tells the model; pixels with no valid optical or radar band are nodata (never teach,
        never predicted).
    cloud_mask
        Optional explicit mask (True = cloud) ``(y, x)`` for the during season or ``(season, y, x)``, on the
        stack's grid, added to what the stack's own data says.
    cloud_test
        Thresholds of the RGBN cloud/shadow test (:class:`terralab.rice.clouds.CloudTest`).
    augment_clouds
        U-Net: share of training patches that get random clouds and shadows on the during-season bands
        (:func:`terralab.rice.clouds.augment`); 0 turns it off.
    calibrate
        Fit a softmax temperature on the validation labels (:func:`calibrate`), so that the class
        probabilities of :func:`predict` are calibrated.
    device
        ``"cpu"``, ``"cuda"``, or ``"auto"``.
    progress
        Show a tqdm bar over epochs.

    Returns
    -------
    RiceModel

    Example
    -------
    >>> from terralab import rice
    >>> stack, truth = rice.synthetic.scene(height_px=96, width_px=96)
    >>> model = rice.fit(stack, truth, model="unet", epochs=1, progress=False)   # doctest: +SKIP
    """
    if model not in MODEL_KINDS:
        raise InvalidInputError(f"unknown model {model!r}: use one of {MODEL_KINDS}")
    if epochs < 1:
        raise InvalidInputError("epochs must be ≥ 1")
    torch = _torch()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    _seed_everything(seed)
    if learning_rate is None:
        learning_rate = 3e-3 if model == "unet" else 1e-3
    if class_weighting not in ("balanced", "none"):
        raise InvalidInputError("class_weighting must be 'balanced' or 'none'")

    if isinstance(data, pd.DataFrame):
        if model == "unet":
            raise InvalidInputError(
                "a U-Net needs a feature stack and a label raster, not points: call fit(stack, labels, "
                "model='unet'), or use model='dnn' / 'rf' for points"
            )
        names = _point_bands(data, bands)
        if "class" not in data.columns:
            raise InvalidInputError("the points need a 'class' column of class ids")
        X = _point_matrix(data, names)
        y = data["class"].to_numpy()
        if isinstance(validation, pd.DataFrame):
            Xv, yv = _point_matrix(validation, names), validation["class"].to_numpy()
        else:
            Xv = yv = None
        attrs_names = None
        if "class_name" in data.columns:
            pairs = data[["class", "class_name"]].drop_duplicates().sort_values("class")
            if pairs["class"].is_unique and (pairs["class"].to_numpy() == np.arange(len(pairs))).all():
                attrs_names = list(pairs["class_name"])
        return _fit_pixels(
            X,
            y,
            Xv,
            yv,
            names,
            model=model,
            seed=seed,
            epochs=epochs,
            class_names=class_names,
            attrs_names=attrs_names,
            class_weighting=class_weighting,
            learning_rate=learning_rate,
            batch_size=batch_size,
            patience=patience,
            hidden=hidden,
            dropout=dropout,
            n_members=n_members,
            n_estimators=n_estimators,
            device=device,
            progress=progress,
            calibrate=calibrate,
        )

    stack = check_stack(data)
    if labels is None:
        raise InvalidInputError(
            "fit(stack, labels): a stack needs a label raster (y, x) with −1 where unlabelled"
        )
    all_names = [str(b) for b in stack["band"].values]
    chosen = select_bands(stack, bands if bands is not None else feature_bands(all_names))
    names = [str(b) for b in chosen["band"].values]
    _refuse_empty_bands(chosen)
    labels = align_labels(labels, stack, reproject=reproject)
    season_masks = clouds_mod._as_season_masks(cloud_mask, stack)
    test = cloud_test or CloudTest()
    masking = _masking_config(names, all_names, enabled=mask_clouds, test=test)
    raw = stack.values.astype(np.float32)
    valid = None
    if masking is not None:
        valid = validity_array(raw, all_names, test=test, cloud_mask=season_masks, detect=masking["detect"])
    _refuse_all_cloudy(masking, valid, labels.values >= 0)
    feats = _select_features(names, raw, all_names)
    norm = _fit_masked_normalisation(names, feats, masking, valid)
    x, nodata, _ = _model_inputs(names, norm, masking, raw, all_names, valid=valid, feats=feats)
    lab = np.where(nodata, NODATA, labels.values).astype(np.int64)
    if not (lab >= 0).any():
        raise InvalidInputError(
            "the training split holds no labelled, valid pixel (all −1, or no valid band at any labelled pixel): "
            "nothing to learn from"
        )
    if validation is not None:
        if isinstance(validation, pd.DataFrame):
            raise InvalidInputError("with a stack, validation must be a label raster on the same grid")
        val = np.where(nodata, NODATA, align_labels(validation, stack, reproject=reproject).values).astype(
            np.int64
        )
    else:
        to_split = labels.copy(data=lab.astype(np.int16))
        try:
            held = split(
                to_split,
                kind="blocked",
                fractions=(0.85, 0.15, 0.0),
                block_size_px=min(64, max(8, min(lab.shape) // 4)),
                seed=seed,
            )
        except InvalidInputError:  # too few labelled blocks: hold out pixels instead
            try:
                held = split(to_split, kind="random", fractions=(0.85, 0.15, 0.0), seed=seed)
            except InvalidInputError:  # a handful of labels: train on all, no early stopping
                held = {"train": to_split, "val": to_split.copy(data=np.full(lab.shape, NODATA, np.int16))}
        lab, val = held["train"].values.astype(np.int64), held["val"].values.astype(np.int64)
    if not (lab >= 0).any():
        raise InvalidInputError(
            "the training split holds no labelled, valid pixel (all −1 or NaN in the stack): nothing to learn from"
        )
    _warn_single_class(lab)
    if model != "unet":
        sel = lab >= 0
        X = x[:, sel].T
        Xv = x[:, val >= 0].T if (val >= 0).any() else None
        yv = val[val >= 0] if (val >= 0).any() else None
        return _fit_pixels(
            X,
            lab[sel],
            Xv,
            yv,
            names,
            model=model,
            seed=seed,
            epochs=epochs,
            class_names=class_names,
            attrs_names=labels.attrs.get("class_names"),
            class_weighting=class_weighting,
            learning_rate=learning_rate,
            batch_size=batch_size,
            patience=patience,
            hidden=hidden,
            dropout=dropout,
            n_members=n_members,
            n_estimators=n_estimators,
            device=device,
            progress=progress,
            norm=norm,
            masking=masking,
            calibrate=calibrate,
        )
    context = _AugmentContext(raw, all_names, names, norm, masking, season_masks, augment_clouds)
    return _fit_unet(
        x,
        lab,
        val,
        names,
        norm,
        context,
        seed=seed,
        epochs=epochs,
        class_names=class_names,
        attrs_names=labels.attrs.get("class_names"),
        class_weighting=class_weighting,
        learning_rate=learning_rate,
        batch_size=batch_size or 16,
        patience=patience,
        patch_size_px=patch_size_px,
        patches_per_epoch=patches_per_epoch,
        encoder=encoder,
        encoder_depth=encoder_depth,
        encoder_weights=encoder_weights,
        decoder_channels=decoder_channels,
        device=device,
        progress=progress,
        calibrate=calibrate,
    )


# --- model inputs: band selection, cloud masks, normalisation ------------------------------------------------


def _refuse_empty_bands(chosen: xr.DataArray) -> None:
    """An all-NaN band is a stack problem, not a label problem: name it."""
    values = chosen.values
    empty = [str(b) for b, v in zip(chosen["band"].values, values) if not np.isfinite(v).any()]
    if empty:
        raise InvalidInputError(
            f"band(s) {empty} hold no value (NaN everywhere): fix the stack, or leave them out with bands=[...] "
            "(or a smaller band set)"
        )


def _warn_single_class(lab: np.ndarray) -> None:
    present = np.unique(lab[lab >= 0])
    if present.size == 1:
        warnings.warn(
            f"the training labels hold a single class ({int(present[0])}): the model can only ever predict it. "
            "Label pixels of the other classes too",
            UserWarning,
            stacklevel=3,
        )


def _masking_config(
    names: Sequence[str], available: Sequence[str], *, enabled: bool, test: CloudTest
) -> dict | None:
    groups = [g for g in dict.fromkeys(band_group(b) for b in names) if is_optical(g)]
    if not enabled or not groups:
        return None
    return {"groups": groups, "test": test.to_dict(), "detect": True}


def _select_features(names: Sequence[str], raw: np.ndarray, band_list: Sequence[str]) -> np.ndarray:
    """The model's bands (in order) from a raw (band, …) block, computing spectral indices it needs."""
    index = {str(b): i for i, b in enumerate(band_list)}
    if all(n in index for n in names):
        if [index[n] for n in names] == list(range(len(names))) and len(names) == raw.shape[0]:
            return raw.astype(np.float32, copy=False)
        return raw[[index[n] for n in names]].astype(np.float32, copy=False)
    out = np.empty((len(names), *raw.shape[1:]), np.float32)
    for j, n in enumerate(names):
        if n in index:
            out[j] = raw[index[n]]
            continue
        idx, season = n.split("_", 1)
        need = [f"{b}_{season}" for b in ("red", "green", "blue", "nir")]
        missing = [b for b in need if b not in index]
        if idx not in INDICES or missing:
            raise InvalidInputError(f"cannot make band {n!r}: the data lacks {missing or [n]}")
        v = index_values(idx, *(raw[index[b]].astype(np.float64) for b in need))
        out[j] = np.where(np.isfinite(v), v, np.nan)
    return out


def _group_validity(masking: dict, valid, shape) -> np.ndarray:
    """(masked group, …) validity from validity_array's (groups, valid); a group the data lacks is invalid."""
    groups, v = valid
    where = {g: i for i, g in enumerate(groups)}
    return np.stack([v[where[g]] if g in where else np.zeros(shape, bool) for g in masking["groups"]])


def _fit_masked_normalisation(names, feats: np.ndarray, masking: dict | None, valid) -> Normalisation:
    """Per-band mean/std over the pixels where the band is valid (clouds would shift the optical statistics)."""
    if masking is None:
        return fit_normalisation(xr.DataArray(feats, dims=("band", "y", "x"), coords={"band": list(names)}))
    gvalid = _group_validity(masking, valid, feats.shape[1:])
    clean = feats.copy()
    for j, n in enumerate(names):
        g = band_group(n)
        if g in masking["groups"]:
            clean[j][~gvalid[masking["groups"].index(g)]] = np.nan
    empty = [n for n, v in zip(names, clean) if not np.isfinite(v).any()]
    if empty:
        raise InvalidInputError(
            f"band(s) {empty} are cloudy, shadowed or nodata at every pixel (all pixels cloudy): nothing to learn "
            "them from. Leave that season out (bands=[...]) or pass a clearer image"
        )
    return fit_normalisation(xr.DataArray(clean, dims=("band", "y", "x"), coords={"band": list(names)}))


def _refuse_all_cloudy(masking: dict | None, valid, labelled: np.ndarray) -> None:
    if masking is None or not labelled.any():  # no label at all is reported as an empty training split
        return
    gvalid = _group_validity(masking, valid, labelled.shape)
    for g, v in zip(masking["groups"], gvalid):
        if not (v & labelled).any():
            raise InvalidInputError(
                f"every labelled pixel is cloudy, shadowed or nodata in {g} (all pixels cloudy): the model cannot "
                f"learn what those bands mean. Leave the {g.split('_', 1)[1]} season out (bands=[...]), label "
                "clear pixels too, or pass mask_clouds=False if the mask is wrong"
            )


def _model_inputs(
    names: Sequence[str],
    norm: Normalisation,
    masking: dict | None,
    raw: np.ndarray,
    band_list: Sequence[str],
    *,
    cloud_mask: Mapping[str, np.ndarray] | None = None,
    valid=None,
    feats: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Network input of a raw (band, h, w) block: ``(x (inputs, h, w), nodata (h, w), quality (h, w) int8)``.

    Bands of a masked group are standardised and set to 0 (the band mean) where the group is invalid, and one
    0/1 channel per masked group says where it is valid. A pixel is nodata when a band outside the masked groups
    is NaN, or when no optical group and no radar band is valid. Quality: 0 every optical season valid, 1 some
    masked, 2 none (predicted from radar / terrain only), −1 nodata.
    """
    if feats is None:
        feats = _select_features(names, raw, band_list)
    shape = feats.shape[1:]
    if masking is None:
        nodata = np.isnan(feats).any(axis=0)
        x = np.nan_to_num(norm.apply(feats), nan=0.0)
        return x, nodata, np.where(nodata, -1, 0).astype(np.int8)
    if valid is None:
        valid = validity_array(
            raw,
            band_list,
            test=CloudTest.from_dict(masking["test"]),
            cloud_mask=cloud_mask,
            detect=masking["detect"],
        )
    groups = masking["groups"]
    gvalid = _group_validity(masking, valid, shape)
    z = norm.apply(feats)
    in_group = np.array([band_group(n) in groups for n in names])
    for j, n in enumerate(names):
        if in_group[j]:
            z[j][~gvalid[groups.index(band_group(n))]] = 0.0
    other = np.flatnonzero(~in_group)
    nodata = np.isnan(feats[other]).any(axis=0) if other.size else np.zeros(shape, bool)
    observed = gvalid.any(axis=0)
    radar = [j for j in other if band_group(names[j]).startswith("radar_")]
    if radar:
        observed |= np.isfinite(feats[radar]).all(axis=0)
    nodata |= ~observed
    n_valid = gvalid.sum(axis=0)
    quality = np.where(nodata, -1, np.where(n_valid == len(groups), 0, np.where(n_valid == 0, 2, 1))).astype(
        np.int8
    )
    x = np.concatenate([np.nan_to_num(z, nan=0.0), gvalid.astype(np.float32)])
    return x.astype(np.float32, copy=False), nodata, quality


@dataclass
class _AugmentContext:
    """What the U-Net needs to redraw a training patch under random clouds."""

    raw: np.ndarray
    band_list: list[str]
    names: list[str]
    norm: Normalisation
    masking: dict | None
    season_masks: dict | None
    probability: float

    def seasons_detected(self) -> set[str]:
        """Seasons whose mask comes from the RGBN test (re-run on augmented data), not from mask bands."""
        have = set(self.band_list)
        return {s for s in SEASONS if f"cloud_prob_{s}" not in have and f"scl_{s}" not in have}

    def patch(
        self, rng, r0: int, c0: int, patch: int, shape: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Augmented inputs and nodata of the patch at (r0, c0) (padded to ``patch``), or None (not augmented)."""
        if self.masking is None or self.probability <= 0 or rng.random() >= self.probability:
            return None
        H, W = shape
        raw = self.raw[:, r0 : min(H, r0 + patch), c0 : min(W, c0 + patch)]
        raw = _pad_to(raw, patch, patch, np.nan)
        seasons = [s for s in ("during",) if f"optical_{s}" in self.masking["groups"]]
        aug, cores = clouds_mod.augment(
            raw, self.band_list, rng, seasons=seasons, probability=1.0, return_cores=True
        )
        masks = {}
        for key, m in (self.season_masks or {}).items():
            masks[key] = _pad_to(m[r0 : min(H, r0 + patch), c0 : min(W, c0 + patch)], patch, patch, False)
        detected = self.seasons_detected()
        for season, core in cores.items():
            if (
                season not in detected
            ):  # mask bands cannot see the clouds we drew: flag their cores explicitly
                masks[season] = masks.get(season, np.zeros(core.shape, bool)) | core
        x, nodata, _ = _model_inputs(
            self.names, self.norm, self.masking, aug, self.band_list, cloud_mask=masks
        )
        return x, nodata


def _n_classes(*ys) -> int:
    top = max(int(np.max(y)) for y in ys if y is not None and np.size(y))
    return top + 1


def _fit_pixels(
    X,
    y,
    Xv,
    yv,
    names,
    *,
    model,
    seed,
    epochs,
    class_names,
    attrs_names,
    class_weighting,
    learning_rate,
    batch_size,
    patience,
    hidden,
    dropout,
    n_members,
    n_estimators,
    device,
    progress,
    norm=None,
    masking=None,
    calibrate=True,
) -> RiceModel:
    """Per-pixel models. Points: X holds raw band values (normalised here). Stacks: X holds the network inputs
    of :func:`_model_inputs` already (``norm`` given), with the mask channels."""
    torch = _torch()
    keep = (y >= 0) & ~np.isnan(X).any(axis=1)
    X, y = X[keep], y[keep].astype(np.int64)
    if y.size == 0:
        raise InvalidInputError("the training set is empty (no labelled point with valid band values)")
    _warn_single_class(y)
    n_classes = _n_classes(y, yv)
    names_c = _class_names(n_classes, class_names, attrs_names)
    n_classes = max(n_classes, len(names_c))
    stack_inputs = norm is not None
    if norm is None:
        norm = fit_normalisation(pd.DataFrame(X, columns=names), names)
    base = {"stack_inputs": True, "masking": masking} if stack_inputs else {}
    if model == "rf":
        from sklearn.ensemble import RandomForestClassifier

        rf = RandomForestClassifier(
            n_estimators=n_estimators,
            random_state=seed,
            n_jobs=-1,
            class_weight="balanced" if class_weighting == "balanced" else None,
        )
        rf.fit(X, y)
        config = {"n_estimators": n_estimators, "seed": seed, "class_weighting": class_weighting, **base}
        fitted = RiceModel("rf", list(names), norm, names_c, config, rf, pd.DataFrame())
        if calibrate and Xv is not None:
            vkeep = (yv >= 0) & ~np.isnan(Xv).any(axis=1)
            if vkeep.any():
                proba = _predict_proba_matrix(
                    fitted, Xv[vkeep], device, inputs=stack_inputs, calibrated=False
                )
                fitted.config["temperature"] = fit_temperature(np.log(np.clip(proba, 1e-4, 1)), yv[vkeep])
        return fitted

    rng = np.random.default_rng(seed)
    if Xv is None:
        order = rng.permutation(y.size)
        n_val = max(1, round(0.15 * y.size))
        val_idx, tr_idx = order[:n_val], order[n_val:]
        Xv, yv = X[val_idx], y[val_idx]
        X, y = X[tr_idx], y[tr_idx]
    else:
        vkeep = (yv >= 0) & ~np.isnan(Xv).any(axis=1)
        Xv, yv = Xv[vkeep], yv[vkeep].astype(np.int64)
        if yv.size == 0:
            raise InvalidInputError(
                "the validation points hold no labelled row with every band valid; pass validation points "
                "with class ids ≥ 0 and no NaN bands, or validation=None to hold out 15 % of the training points"
            )
    if y.size == 0:
        raise InvalidInputError("the training split is empty after holding out validation points")
    config = {
        "hidden": [int(h) for h in hidden],
        "dropout": float(dropout),
        "n_members": int(n_members),
        "epochs": int(epochs),
        "learning_rate": float(learning_rate),
        "batch_size": int(batch_size or 256),
        "patience": int(patience),
        "seed": int(seed),
        "class_weighting": class_weighting,
        **base,
    }
    weights = class_weights(y, n_classes, method="balanced" if class_weighting == "balanced" else "none")

    def prepare(A: np.ndarray) -> np.ndarray:
        return A.astype(np.float32) if stack_inputs else norm.apply(A, axis=1)

    Xt = torch.as_tensor(prepare(X), device=device)
    yt = torch.as_tensor(y, device=device)
    Xvt = torch.as_tensor(prepare(Xv), device=device)
    yvt = torch.as_tensor(yv, device=device)
    loss_fn = torch.nn.CrossEntropyLoss(
        weight=torch.tensor(np.array(weights.values), dtype=torch.float32, device=device)
    )
    members, history = [], []
    bs = config["batch_size"]
    for m in range(int(n_members)):
        torch.manual_seed(seed + 1000 * m)
        net = _build_net("dnn", X.shape[1], n_classes, {**config, "n_members": 1}).members[0].to(device)
        opt = torch.optim.Adam(net.parameters(), lr=learning_rate)
        best = (math.inf, None)
        stale = 0
        bar = _progress(range(epochs), progress, desc=f"dnn {m + 1}/{n_members}", leave=False)
        gen = torch.Generator().manual_seed(seed + m)
        for epoch in bar:
            net.train()
            perm = torch.randperm(y.size, generator=gen)
            total = 0.0
            for i in range(0, y.size, bs):
                idx = perm[i : i + bs].to(device)
                opt.zero_grad()
                loss = loss_fn(net(Xt[idx]), yt[idx])
                loss.backward()
                opt.step()
                total += loss.item() * idx.numel()
            net.eval()
            with torch.no_grad():
                logits = net(Xvt)
                vloss = float(loss_fn(logits, yvt))
                vacc = float((logits.argmax(1) == yvt).float().mean())
            history.append(
                {
                    "member": m,
                    "epoch": epoch,
                    "train_loss": total / y.size,
                    "val_loss": vloss,
                    "val_accuracy": vacc,
                }
            )
            if progress:
                bar.set_postfix(train=f"{total / y.size:.3f}", val=f"{vloss:.3f}")
            if vloss < best[0] - 1e-4:
                best, stale = (vloss, {k: v.detach().clone() for k, v in net.state_dict().items()}), 0
            else:
                stale += 1
                if stale >= patience:
                    break
        net.load_state_dict(best[1])
        members.append(net.eval())
    ens = _Ensemble(members).to(device).eval()
    if calibrate:
        with torch.no_grad():
            config["temperature"] = fit_temperature(ens(Xvt).cpu().numpy(), yv)
    return RiceModel("dnn", list(names), norm, names_c, config, ens, pd.DataFrame(history))


def _pad_to(arr: np.ndarray, h: int, w: int, value: float) -> np.ndarray:
    ph, pw = h - arr.shape[-2], w - arr.shape[-1]
    if ph <= 0 and pw <= 0:
        return arr
    pad = [(0, 0)] * (arr.ndim - 2) + [(0, max(ph, 0)), (0, max(pw, 0))]
    return np.pad(arr, pad, constant_values=value)


def _fit_unet(
    x,
    lab,
    val,
    names,
    norm,
    context,
    *,
    seed,
    epochs,
    class_names,
    attrs_names,
    class_weighting,
    learning_rate,
    batch_size,
    patience,
    patch_size_px,
    patches_per_epoch,
    encoder,
    encoder_depth,
    encoder_weights,
    decoder_channels,
    device,
    progress,
    calibrate,
) -> RiceModel:
    torch = _torch()
    stride = 2**encoder_depth
    patch = max(stride, math.ceil(patch_size_px / stride) * stride)
    n_classes = _n_classes(lab, val)
    names_c = _class_names(n_classes, class_names, attrs_names)
    n_classes = max(n_classes, len(names_c))
    # pad the scene to at least one patch: small scenes (and tiles smaller than the stride) still train
    H, W = lab.shape
    x = _pad_to(x, max(H, patch), max(W, patch), 0.0)
    lab_p = _pad_to(lab, max(H, patch), max(W, patch), NODATA)
    val_p = _pad_to(val, max(H, patch), max(W, patch), NODATA)
    Hp, Wp = lab_p.shape
    dec = (
        list(decoder_channels)
        if decoder_channels is not None
        else [16 * 2 ** (encoder_depth - 1 - i) for i in range(encoder_depth)]
    )
    if len(dec) != encoder_depth:
        raise InvalidInputError(
            f"decoder_channels needs {encoder_depth} entries (one per encoder stage), got {dec}"
        )
    config = {
        "encoder": encoder,
        "encoder_depth": int(encoder_depth),
        "decoder_channels": [int(c) for c in dec],
        "encoder_weights": None if encoder_weights is None else str(encoder_weights),
        "patch_size_px": patch,
        "patches_per_epoch": int(patches_per_epoch),
        "epochs": int(epochs),
        "learning_rate": float(learning_rate),
        "batch_size": int(batch_size),
        "patience": int(patience),
        "seed": int(seed),
        "class_weighting": class_weighting,
        "masking": context.masking,
        "augment_clouds": float(context.probability),
        "stack_inputs": True,
    }
    net = _build_net("unet", x.shape[0], n_classes, config).to(device)
    weights = class_weights(lab, n_classes, method="balanced" if class_weighting == "balanced" else "none")
    loss_fn = torch.nn.CrossEntropyLoss(
        weight=torch.tensor(np.array(weights.values), dtype=torch.float32, device=device), ignore_index=NODATA
    )
    opt = torch.optim.Adam(net.parameters(), lr=learning_rate)
    # cosine decay over the planned epochs: large steps early, fine convergence late
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        opt, T_max=max(1, epochs), eta_min=learning_rate * 0.02
    )
    rng = np.random.default_rng(seed)
    labelled = np.flatnonzero(lab_p.ravel() >= 0)

    # validation: every patch-grid window holding validation labels, fixed for the whole run
    val_windows = _grid_windows(Hp, Wp, patch, val_p)
    history = []
    best = (math.inf, None)
    stale = 0
    bar = _progress(range(epochs), progress, desc="unet")
    for epoch in bar:
        net.train()
        total, count = 0.0, 0
        n_batches = max(1, patches_per_epoch // batch_size)
        for _ in range(n_batches):
            centres = rng.choice(labelled, batch_size)
            xb, yb = [], []
            for flat in centres:
                r, c = divmod(int(flat), Wp)
                r0 = int(np.clip(r - rng.integers(0, patch), 0, Hp - patch))
                c0 = int(np.clip(c - rng.integers(0, patch), 0, Wp - patch))
                xp = x[:, r0 : r0 + patch, c0 : c0 + patch]
                yp = lab_p[r0 : r0 + patch, c0 : c0 + patch]
                clouded = context.patch(rng, r0, c0, patch, (H, W))
                if (
                    clouded is not None
                ):  # the same patch under random clouds; pixels left with no data never teach
                    xp, nodata = clouded
                    yp = np.where(nodata, NODATA, yp)
                k = int(rng.integers(0, 4))
                xp, yp = np.rot90(xp, k, axes=(1, 2)), np.rot90(yp, k)
                if rng.random() < 0.5:
                    xp, yp = xp[:, :, ::-1], yp[:, ::-1]
                xb.append(np.ascontiguousarray(xp))
                yb.append(np.ascontiguousarray(yp))
            xt = torch.as_tensor(np.stack(xb), device=device)
            yt = torch.as_tensor(np.stack(yb), device=device)
            opt.zero_grad()
            loss = loss_fn(net(xt), yt)
            loss.backward()
            opt.step()
            total += loss.item()
            count += 1
        schedule.step()
        vloss, vacc = _unet_validation(net, x, val_p, val_windows, patch, loss_fn, batch_size, device)
        history.append({"epoch": epoch, "train_loss": total / count, "val_loss": vloss, "val_accuracy": vacc})
        if progress:
            bar.set_postfix(train=f"{total / count:.3f}", val=f"{vloss:.3f}")
        if not np.isfinite(vloss) or vloss < best[0] - 1e-4:
            best, stale = (
                (
                    vloss if np.isfinite(vloss) else math.inf,
                    {k: v.detach().clone() for k, v in net.state_dict().items()},
                ),
                0,
            )
        else:
            stale += 1
            if stale >= patience:
                break
    if best[1] is not None:
        net.load_state_dict(best[1])
    net.eval()
    if calibrate and val_windows:
        logits, truth = _unet_logits_at(net, x, val_p, val_windows, patch, batch_size, device)
        config["temperature"] = fit_temperature(logits, truth)
    return RiceModel("unet", list(names), norm, names_c, config, net, pd.DataFrame(history))


def _grid_windows(H: int, W: int, patch: int, val: np.ndarray) -> list[tuple[int, int]]:
    return [
        (r, c)
        for r in _starts(H, patch, patch)
        for c in _starts(W, patch, patch)
        if (val[r : r + patch, c : c + patch] >= 0).any()
    ]


def _unet_validation(net, x, val, windows, patch, loss_fn, batch_size, device) -> tuple[float, float]:
    torch = _torch()
    if not windows:
        return float("nan"), float("nan")
    net.eval()
    total_loss, total_n, correct = 0.0, 0, 0
    with torch.no_grad():
        for i in range(0, len(windows), batch_size):
            chunk = windows[i : i + batch_size]
            xb = torch.as_tensor(
                np.stack([x[:, r : r + patch, c : c + patch] for r, c in chunk]), device=device
            )
            yb = torch.as_tensor(
                np.stack([val[r : r + patch, c : c + patch] for r, c in chunk]), device=device
            )
            logits = net(xb)
            n = int((yb >= 0).sum())
            if n:
                total_loss += float(loss_fn(logits, yb)) * n
                correct += int(((logits.argmax(1) == yb) & (yb >= 0)).sum())
                total_n += n
    return (total_loss / total_n, correct / total_n) if total_n else (float("nan"), float("nan"))


def _unet_logits_at(net, x, labels, windows, patch, batch_size, device, max_pixels: int = 200_000):
    """Logits (n, K) and labels (n,) at the labelled pixels of the windows (at most ``max_pixels``, evenly)."""
    torch = _torch()
    logits, truth = [], []
    net.eval()
    with torch.no_grad():
        for i in range(0, len(windows), batch_size):
            chunk = windows[i : i + batch_size]
            xb = torch.as_tensor(
                np.stack([x[:, r : r + patch, c : c + patch] for r, c in chunk]), device=device
            )
            out = net(xb).cpu().numpy()
            for (r, c), o in zip(chunk, out):
                y = labels[r : r + patch, c : c + patch]
                sel = y >= 0
                logits.append(o[:, sel].T)
                truth.append(y[sel])
    logits, truth = np.concatenate(logits), np.concatenate(truth)
    if truth.size > max_pixels:
        keep = np.linspace(0, truth.size - 1, max_pixels).astype(np.int64)
        logits, truth = logits[keep], truth[keep]
    return logits, truth


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The softmax temperature T minimising the negative log-likelihood of ``labels`` under softmax(logits / T)
    (temperature scaling, Guo et al. 2017). Logits may be log-probabilities. Returns 1 for no usable labels."""
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


# --- inference -------------------------------------------------------------------------------------------


def _blend_window(tile: int, overlap: int) -> np.ndarray:
    """Separable weights that ramp linearly over ``overlap`` pixels at each edge (never zero)."""
    i = np.arange(tile, dtype=np.float32)
    ramp = (
        np.minimum(1.0, np.minimum(i + 1, tile - i) / (overlap + 1))
        if overlap > 0
        else np.ones(tile, np.float32)
    )
    return np.outer(ramp, ramp).astype(np.float32)


def _starts(n: int, tile: int, step: int) -> list[int]:
    if n <= tile:
        return [0]
    s = list(range(0, n - tile + 1, step))
    if s[-1] + tile < n:
        s.append(n - tile)
    return s


def _block_inputs(model: RiceModel, block: np.ndarray, band_list: Sequence[str], cloud_mask=None):
    """(x (inputs, h, w), nodata (h, w), quality (h, w) int8) of a raw block for any model."""
    if model.config.get("stack_inputs"):
        return _model_inputs(
            model.bands,
            model.normalisation,
            model.config.get("masking"),
            block,
            band_list,
            cloud_mask=cloud_mask,
        )
    feats = _select_features(model.bands, block, band_list)  # a model trained on points reads raw values
    nodata = np.isnan(feats).any(axis=0)
    return feats, nodata, np.where(nodata, -1, 0).astype(np.int8)


def _read_bands(model: RiceModel, available: Sequence[str]) -> list[str]:
    """Bands to read from a source: the model's, the RGBN of each season it reads optically (for indices and the
    cloud test) and Sentinel-2 mask bands."""
    seasons = {g.split("_", 1)[1] for g in (band_group(b) for b in model.bands) if is_optical(g)}
    # the shadow test compares a season with the other one: a masked model reads both seasons' RGBN
    extra = [
        f"{b}_{s}"
        for s in SEASONS
        for b in ("red", "green", "blue", "nir")
        if s in seasons or model.masked_groups
    ]
    extra += [f"{p}{s}" for s in SEASONS for p in clouds_mod.MASK_BAND_PREFIXES]
    wanted = [b for b in model.bands if b in available] + [b for b in extra if b in available]
    return list(dict.fromkeys(wanted))


def _run_tiled(
    model: RiceModel,
    read_window: Callable[[int, int, int, int], np.ndarray],
    write_rows: Callable[[int, np.ndarray, np.ndarray | None, np.ndarray], None],
    height: int,
    width: int,
    band_list: Sequence[str],
    *,
    tile: int,
    overlap: int,
    batch_size: int,
    progress: bool,
    want_proba: bool,
    device: str,
    read_mask: Callable[[int, int, int, int], dict] | None = None,
    flips: bool = False,
) -> None:
    """Tiled inference over a raster read and written strip by strip.

    ``write_rows(r0, classes, proba, quality)`` receives finished rows. Memory stays O(classes × tile × width +
    bands × tile² × batch): tiles are read a batch at a time and blended into a strip accumulator; rows that no
    later tile touches are final and are written out before the next row of tiles is read.
    """
    torch = _torch()
    K = model.n_classes
    masks = read_mask or (lambda r0, r1, c0, c1: None)
    if model.kind != "unet":
        rows = max(1, min(height, (1 << 20) // max(width, 1)))
        starts = range(0, height, rows)
        for r0 in _progress(starts, progress, desc="predict", total=len(starts)):
            r1 = min(height, r0 + rows)
            x, nodata, quality = _block_inputs(
                model, read_window(r0, r1, 0, width), band_list, masks(r0, r1, 0, width)
            )
            flat = x.reshape(x.shape[0], -1).T
            ok = ~nodata.ravel()
            proba = np.zeros((flat.shape[0], K), np.float32)
            if ok.any():
                proba[ok] = _predict_proba_matrix(
                    model, flat[ok], device, inputs=bool(model.config.get("stack_inputs"))
                )
            classes = np.where(ok, proba.argmax(1), NODATA).reshape(r1 - r0, width).astype(np.int16)
            write_rows(r0, classes, proba.T.reshape(K, r1 - r0, width) if want_proba else None, quality)
        return

    stride = model.stride
    if overlap < 0 or overlap >= tile:
        raise InvalidInputError(f"overlap must be in [0, tile) pixels, got overlap={overlap}, tile={tile}")
    # the network needs sides that are multiples of its stride: pad the tile (and small rasters) up
    tile_p = int(math.ceil(max(tile, stride) / stride) * stride)
    step = max(1, tile - overlap)
    weight = _blend_window(tile_p, overlap)
    row_starts = _starts(height, tile, step)
    col_starts = _starts(width, tile, step)
    buf_h = min(tile, height)
    acc = np.zeros((K, buf_h, width), np.float32)
    wsum = np.zeros((buf_h, width), np.float32)
    bad = np.zeros((buf_h, width), bool)
    qual = np.zeros((buf_h, width), np.int8)
    buf_start = 0
    net = model.net.to(device).eval()
    temperature = model.temperature

    def flush(upto: int) -> None:
        nonlocal buf_start
        n = upto - buf_start
        if n <= 0:
            return
        classes = np.where(bad[:n], NODATA, acc[:, :n].argmax(0)).astype(np.int16)
        proba = acc[:, :n] / np.maximum(wsum[:n], 1e-12) if want_proba else None
        write_rows(buf_start, classes, proba, np.where(bad[:n], -1, qual[:n]).astype(np.int8))
        keep = buf_h - n  # rows still receiving contributions move to the top of the buffers
        for buf in (acc[:], wsum[None], bad[None], qual[None]):
            if keep > 0:
                buf[:, :keep] = buf[:, n:].copy()
            buf[:, max(keep, 0) :] = 0
        buf_start = upto

    for r0 in _progress(row_starts, progress, desc="predict", total=len(row_starts)):
        flush(r0)
        r1 = min(height, r0 + tile)
        off = r0 - buf_start
        h = r1 - r0
        # one batch of tiles at a time: the input held in memory is batch_size tiles, not the whole strip
        for i in range(0, len(col_starts), batch_size):
            group = col_starts[i : i + batch_size]
            spans = [(c0, min(width, c0 + tile)) for c0 in group]
            xs = []
            for c0, c1 in spans:
                # each tile gets its own cloud test, so in-memory and GeoTIFF runs see the very same inputs
                x, nodata, quality = _block_inputs(
                    model, read_window(r0, r1, c0, c1), band_list, masks(r0, r1, c0, c1)
                )
                bad[off : off + h, c0:c1] |= nodata
                np.maximum(qual[off : off + h, c0:c1], quality, out=qual[off : off + h, c0:c1])
                xs.append(_pad_to(x, tile_p, tile_p, 0.0))
            xb = np.stack(xs)
            del xs
            with torch.no_grad():
                xt = torch.as_tensor(xb, device=device)
                probs = torch.softmax(net(xt) / temperature, dim=1)
                if flips:  # test-time augmentation: the mean over the four flips of each tile
                    for dims in ((3,), (2,), (2, 3)):
                        probs += torch.softmax(net(torch.flip(xt, dims)) / temperature, dim=1).flip(dims)
                    probs /= 4
                probs = probs.cpu().numpy()
            for (c0, c1), p in zip(spans, probs):
                w = c1 - c0
                wt = weight[:h, :w]
                acc[:, off : off + h, c0:c1] += p[:, :h, :w] * wt
                wsum[off : off + h, c0:c1] += wt
    flush(height)


def _predict_proba_matrix(
    model: RiceModel,
    X: np.ndarray,
    device: str = "cpu",
    *,
    inputs: bool = False,
    calibrated: bool = True,
) -> np.ndarray:
    """Class probabilities (n, K) of per-pixel rows X for dnn and rf: raw band values, or (``inputs``) the network
    inputs of :func:`_model_inputs`. ``calibrated`` applies the model's temperature."""
    if model.kind == "rf":
        proba = np.zeros((X.shape[0], model.n_classes), np.float32)
        if X.shape[0]:
            proba[:, model.net.classes_.astype(int)] = model.net.predict_proba(X)
        log_p = np.log(np.clip(proba, 1e-4, 1.0)) if calibrated and model.temperature != 1.0 else None
    else:
        torch = _torch()
        Xn = X.astype(np.float32) if inputs else model.normalisation.apply(X, axis=1)
        out = []
        with torch.no_grad():
            net = model.net.to(device).eval()
            for i in range(0, Xn.shape[0], 65536):
                out.append(net(torch.as_tensor(Xn[i : i + 65536], device=device)).cpu().numpy())
        log_p = np.concatenate(out) if out else np.zeros((0, model.n_classes), np.float32)
        if not calibrated:
            return np.exp(log_p)
    if log_p is None:
        return proba
    from scipy.special import softmax

    return softmax(log_p / model.temperature, axis=1).astype(np.float32)


def _point_inputs(model: RiceModel, points: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Rows of network inputs (n, inputs) and a nodata flag (n,) for points, for any model."""
    if not model.config.get("stack_inputs"):
        X = _point_matrix(points, model.bands)
        return X, np.isnan(X).any(axis=1)
    have = [c for c in _read_bands(model, list(points.columns))]
    for b in model.bands:
        if b not in have and b.split("_")[0] not in INDICES:
            raise InvalidInputError(
                f"the points lack column {b!r} the model needs; they hold {list(points.columns)}"
            )
    raw = points[have].to_numpy(dtype=np.float32).T[:, :, None]  # (band, n, 1): the per-pixel tests only
    masking = dict(model.config.get("masking") or {}) or None
    if masking is not None:
        masking["test"] = {**masking["test"], "cleanup": False, "buffer_px": 0}
    x, nodata, _ = _model_inputs(model.bands, model.normalisation, masking, raw, have)
    return x[:, :, 0].T, nodata[:, 0]


def majority_filter(classes: xr.DataArray, size_px: int = 5) -> xr.DataArray:
    """Each pixel takes the most frequent class in the ``size_px`` × ``size_px`` window around it (ties: the
    lowest id); nodata (−1) pixels stay nodata and do not vote. The classic clean-up of per-pixel maps."""
    from scipy.ndimage import uniform_filter

    if size_px < 1 or size_px % 2 == 0:
        raise InvalidInputError(f"size_px must be an odd number ≥ 1, got {size_px}")
    values = classes.transpose("y", "x").values
    k = int(values.max(initial=-1)) + 1
    if k == 0:
        return classes.copy()
    votes = np.stack(
        [uniform_filter((values == c).astype(np.float32), size_px, mode="nearest") for c in range(k)]
    )
    out = np.where(values < 0, NODATA, votes.argmax(0)).astype(values.dtype)
    result = classes.transpose("y", "x").copy(data=out)
    result.attrs = dict(
        classes.attrs,
        long_name=f"{classes.attrs.get('long_name', 'class map')}, {size_px}×{size_px} majority",
    )
    return result


def predict(
    model: RiceModel,
    data: xr.DataArray | pd.DataFrame,
    *,
    tile: int = 256,
    overlap: int = 32,
    batch_size: int = 4,
    output: str = "class",
    return_proba: bool = False,
    cloud_mask: xr.DataArray | None = None,
    flips: bool = False,
    device: str = "cpu",
    progress: bool = True,
) -> xr.DataArray | xr.Dataset | pd.Series | pd.DataFrame:
    """Apply a model to a feature stack (tiled, blended) or to points.

    Parameters
    ----------
    model
        From :func:`fit` or :func:`load`.
    data
        ``xr.DataArray (band, y, x)`` holding (at least) the model's bands, or a DataFrame of points.
    tile, overlap
        Tile side and overlap in pixels (U-Net). Overlapping predictions are blended with weights that ramp
        down towards tile edges; tiles are padded to a multiple of the network's stride.
    batch_size
        Tiles per forward pass.
    output
        ``"class"`` (class ids) or ``"proba"`` (class probabilities only).
    return_proba
        Return the class map together with its calibrated probabilities (see Returns).
    cloud_mask
        Optional explicit cloud mask (True = cloud) on the stack's grid, ``(y, x)`` (during season) or
        ``(season, y, x)``, added to what the data itself says (models trained with ``mask_clouds``).
    device, progress
        Torch device; progress bar.

    Returns
    -------
    xr.DataArray or xr.Dataset or pd.Series or pd.DataFrame
        Stack input: int16 ``(y, x)`` class ids on the same grid and CRS, −1 where nothing usable was observed,
        with a ``quality`` coordinate (int8: 0 every optical season clear, 1 some season cloudy/shadowed, 2
        predicted without optical data — from radar and terrain only —, −1 nodata). ``output="proba"``: float32
        ``(class, y, x)`` probabilities. ``return_proba=True``: an ``xr.Dataset`` with ``classes`` (the
        class map), ``probability`` (class, y, x), ``confidence`` (the largest probability) and ``quality``. Points: a Series
        of class ids (−1 for rows with NaN); ``output="proba"``: a DataFrame of probabilities, one column per
        class name; ``return_proba=True``: that DataFrame with ``class`` and ``confidence`` columns first.
    """
    if not isinstance(model, RiceModel):
        raise InvalidInputError(
            f"model must be a RiceModel (from rice.fit or rice.load), got {type(model).__name__}"
        )
    if output not in ("class", "proba"):
        raise InvalidInputError("output must be 'class' or 'proba'")
    stack_inputs = bool(model.config.get("stack_inputs"))
    if isinstance(data, pd.DataFrame):
        if model.kind == "unet":
            raise InvalidInputError(
                "a U-Net predicts on a stack, not points: predict the stack, then sample the class map at the points "
                "(rice.evaluate.sample_at)"
            )
        X, nodata = _point_inputs(model, data)
        ok = ~nodata
        proba = np.zeros((len(data), model.n_classes), np.float32)
        if ok.any():
            proba[ok] = _predict_proba_matrix(model, X[ok], device, inputs=stack_inputs)
        classes = pd.Series(
            np.where(ok, proba.argmax(1), NODATA).astype(np.int64), index=data.index, name="class"
        )
        if output == "class" and not return_proba:
            return classes
        proba[~ok] = np.nan
        frame = pd.DataFrame(proba, index=data.index, columns=model.class_names)
        if return_proba:
            frame.insert(0, "confidence", frame.max(axis=1))
            frame.insert(0, "class", classes)
        return frame

    stack = check_stack(data)
    band_list = [str(b) for b in stack["band"].values]
    select_bands(stack.isel(y=slice(0, 1), x=slice(0, 1)), model.bands)  # fail early on missing bands
    season_masks = clouds_mod._as_season_masks(cloud_mask, stack)
    H, W = stack.sizes["y"], stack.sizes["x"]
    values = stack.values
    want_proba = output == "proba" or return_proba
    out = np.full((H, W), NODATA, np.int16)
    quality = np.full((H, W), -1, np.int8)
    proba_out = np.zeros((model.n_classes, H, W), np.float32) if want_proba else None

    def read_window(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        return values[:, r0:r1, c0:c1].astype(np.float32)

    def read_mask(r0: int, r1: int, c0: int, c1: int):
        return {k: m[r0:r1, c0:c1] for k, m in season_masks.items()} if season_masks else None

    def write_rows(r0: int, classes: np.ndarray, proba, q: np.ndarray) -> None:
        out[r0 : r0 + classes.shape[0]] = classes
        quality[r0 : r0 + classes.shape[0]] = q
        if proba_out is not None and proba is not None:
            proba_out[:, r0 : r0 + classes.shape[0]] = np.where(classes[None] >= 0, proba, np.nan)

    _run_tiled(
        model,
        read_window,
        write_rows,
        H,
        W,
        band_list,
        tile=tile,
        overlap=overlap,
        batch_size=batch_size,
        progress=progress,
        want_proba=want_proba,
        device=device,
        read_mask=read_mask,
        flips=flips,
    )
    _check_something_observed(model, quality)
    import rioxarray  # noqa: F401

    coords = {"y": stack["y"].values, "x": stack["x"].values}
    quality_da = xr.DataArray(quality, dims=("y", "x"), coords=coords, name="quality", attrs=QUALITY_ATTRS)
    classes_da = xr.DataArray(
        out,
        dims=("y", "x"),
        coords=coords,
        name="class",
        attrs={"class_names": list(model.class_names), "long_name": f"{model.kind} class map", "units": "1"},
    )
    proba_da = None
    if want_proba:
        proba_da = xr.DataArray(
            proba_out,
            dims=("class", "y", "x"),
            coords={"class": model.class_names, **coords},
            name="probability",
            attrs={"units": "1", "long_name": "class probability", "temperature": model.temperature},
        )
    crs = stack.rio.crs

    def geo(da):
        return da.rio.write_crs(crs).rio.write_transform(stack.rio.transform()) if crs is not None else da

    if output == "proba" and not return_proba:
        return geo(proba_da)
    classes_da = geo(classes_da).rio.write_nodata(NODATA).assign_coords(quality=quality_da)
    if not return_proba:
        return classes_da
    confidence = proba_da.max("class", skipna=True).where(out >= 0)
    confidence.attrs = {"units": "1", "long_name": "probability of the predicted class"}
    result = xr.Dataset(
        {
            "classes": classes_da.drop_vars("quality"),
            "probability": proba_da,
            "confidence": confidence,
            "quality": quality_da,
        }
    )
    return geo(result)


def calibrate(
    model: RiceModel,
    data: xr.DataArray | pd.DataFrame,
    labels: xr.DataArray | None = None,
    *,
    tile: int = 256,
    overlap: int = 32,
    cloud_mask: xr.DataArray | None = None,
    progress: bool = False,
) -> RiceModel:
    """Fit the model's softmax temperature on held-out labels (temperature scaling, Guo et al. 2017) and return
    the model (changed in place). :func:`fit` already does this on its validation split.

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
            proba = predict(model, data, output="proba", progress=progress).to_numpy()
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


#: Meaning of the ``quality`` flag of predictions (CF flag conventions).
QUALITY_ATTRS = {
    "long_name": "what the prediction rests on",
    "flag_values": [-1, 0, 1, 2],
    "flag_meanings": "nodata all_optical_seasons_clear some_optical_season_masked no_optical_data",
    "units": "1",
}


def _check_something_observed(model: RiceModel, quality: np.ndarray) -> None:
    """All pixels cloudy (or nodata) and nothing else to predict from: say so instead of returning −1 everywhere."""
    if model.masked_groups and quality.size and (quality < 0).all():
        raise InvalidInputError(
            "no pixel of the stack holds a usable optical or radar band: every pixel is cloudy, shadowed or nodata "
            "in every season the model reads (all pixels cloudy). Use a clearer image, or a model with Sentinel-1 "
            "bands (band set RGBNS or RGBNES)"
        )


def _check_output_path(dst_path: Path, src_path: Path) -> None:
    """Refuse an output path that cannot become a file before any work is done."""
    from ..errors import OutputLocationError

    if dst_path.is_dir():
        raise OutputLocationError(
            f"{dst_path} is a folder: give the path of the GeoTIFF to write, e.g. {dst_path / 'classes.tif'}"
        )
    for parent in dst_path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputLocationError(f"cannot write {dst_path}: {parent} is a file, not a folder")
            if not os.access(parent, os.W_OK):
                raise OutputLocationError(f"cannot write {dst_path}: the folder {parent} is not writable")
            break
    if dst_path.exists() and src_path.exists() and dst_path.resolve() == src_path.resolve():
        raise OutputLocationError(f"{dst_path} is the source raster: write the classes to another path")


def predict_geotiff(
    model: RiceModel,
    src_path: str | Path,
    dst_path: str | Path,
    *,
    tile: int = 256,
    overlap: int = 32,
    batch_size: int = 4,
    probability: str | None = "max",
    device: str = "cpu",
    gdal_cache_mb: int = 128,
    progress: bool = True,
) -> Path:
    """Classify a feature GeoTIFF into a class GeoTIFF, reading and writing window by window.

    Band names come from the source's band descriptions (as written by
    :func:`~terralab.rice.features.write_stack`); ``cloud_prob_<season>`` / ``scl_<season>`` bands, if present,
    are used as cloud masks. Memory is bounded by a strip of ``tile`` rows, whatever the raster size.

    The output is int16, nodata −1, tiled, deflate: band 1 ``class``; band 2 ``quality`` (0 every optical season
    clear, 1 some season masked, 2 predicted without optical data); then, with ``probability="max"`` (default)
    one band ``confidence`` (the predicted class's calibrated probability), with ``"all"`` one band per class
    (``p_<class name>``), with None none. Probabilities are stored × 10,000 (band scale 1e-4, which
    ``rioxarray.open_rasterio(mask_and_scale=True)`` applies). It is written to a temporary file beside
    ``dst_path`` and renamed when complete. ``gdal_cache_mb`` caps GDAL's block cache (MiB).

    Raises
    ------
    OutputLocationError
        ``dst_path`` is a folder, under a file, in a folder that cannot be written, or the source itself —
        checked before any prediction.
    FileFormatError
        The source is not a readable raster (corrupt or truncated); nothing is left at ``dst_path``.
    InvalidInputError
        The source lacks a band the model needs; ``probability`` is not "max", "all" or None.
    """
    import rasterio
    from rasterio.errors import RasterioError
    from rasterio.windows import Window

    src_path, dst_path = Path(src_path), Path(dst_path)
    if probability not in ("max", "all", None):
        raise InvalidInputError(f"probability must be 'max', 'all' or None, got {probability!r}")
    _check_output_path(dst_path, src_path)
    if not src_path.exists():
        from ..errors import DataNotAvailableError

        raise DataNotAvailableError(f"{src_path} does not exist")
    try:
        # GDAL's block cache defaults to 5 % of RAM and would grow with the raster: cap it
        with (
            atomic_path(dst_path) as tmp,
            rasterio.Env(GDAL_CACHEMAX=int(gdal_cache_mb) * 1024 * 1024),
            rasterio.open(src_path) as src,
        ):
            names = [d or f"band_{i + 1}" for i, d in enumerate(src.descriptions)]
            probe = xr.DataArray(
                np.zeros((len(names), 1, 1), np.float32), dims=("band", "y", "x"), coords={"band": names}
            )
            select_bands(probe, model.bands)  # raises with the list of missing bands
            needed = _read_bands(model, names)
            indexes = [names.index(b) + 1 for b in needed]
            nodata = src.nodata
            H, W = src.height, src.width
            prob_names = {"max": ["confidence"], "all": [f"p_{c}" for c in model.class_names], None: []}[
                probability
            ]
            count = 2 + len(prob_names)
            profile = {
                "driver": "GTiff",
                "dtype": "int16",
                "count": count,
                "height": H,
                "width": W,
                "crs": src.crs,
                "transform": src.transform,
                "nodata": NODATA,
                "tiled": True,
                "blockxsize": 256,
                "blockysize": 256,
                "compress": "deflate",
                "interleave": "band",
            }
            with rasterio.open(tmp, "w", **profile) as dst:
                for i, name in enumerate(["class", "quality", *prob_names], start=1):
                    dst.set_band_description(i, name)
                dst.scales = [1.0, 1.0] + [1e-4] * len(prob_names)
                dst.update_tags(
                    class_names=",".join(model.class_names),
                    model=model.kind,
                    quality="0 all optical seasons clear, 1 some optical season masked, 2 no optical data",
                    temperature=str(model.temperature),
                )

                def read_window(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
                    block = src.read(indexes, window=Window(c0, r0, c1 - c0, r1 - r0)).astype(np.float32)
                    if nodata is not None and not np.isnan(nodata):
                        block[block == nodata] = np.nan
                    return block

                def write_rows(r0: int, classes: np.ndarray, proba, quality: np.ndarray) -> None:
                    window = Window(0, r0, W, classes.shape[0])
                    dst.write(classes, 1, window=window)
                    dst.write(quality.astype(np.int16), 2, window=window)
                    if probability is None:
                        return
                    p = proba.max(axis=0, keepdims=True) if probability == "max" else proba
                    scaled = np.where(classes[None] >= 0, np.rint(p * 10_000), NODATA).astype(np.int16)
                    for j, layer in enumerate(scaled, start=3):
                        dst.write(layer, j, window=window)

                _run_tiled(
                    model,
                    read_window,
                    write_rows,
                    H,
                    W,
                    needed,
                    tile=tile,
                    overlap=overlap,
                    batch_size=batch_size,
                    progress=progress,
                    want_proba=probability is not None,
                    device=device,
                )
    except RasterioError as err:
        raise FileFormatError(
            f"{src_path} is not a readable GeoTIFF ({err}); the file is corrupt or truncated"
        ) from err
    return dst_path
