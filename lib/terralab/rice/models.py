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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import FileFormatError, InvalidInputError, MissingDependencyError
from ..files import atomic_path
from .features import (
    INDICES, Normalisation, band_names, check_stack, fit_normalisation, index_values, select_bands,
)
from .labels import ACES_CLASSES, NODATA, align_labels, class_weights, split

__all__ = ["POINT_META_COLUMNS", "RiceModel", "fit", "load", "predict", "predict_geotiff"]

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
    def stride(self) -> int:
        """Input sizes must be multiples of this (the U-Net's total downsampling); 1 for per-pixel models."""
        return 2 ** int(self.config.get("encoder_depth", 0)) if self.kind == "unet" else 1

    def n_parameters(self) -> int:
        if self.kind == "rf":
            return 0
        return int(sum(p.numel() for p in self.net.parameters()))

    def __repr__(self) -> str:
        extra = f", {self.n_parameters():,} parameters" if self.kind != "rf" else ""
        return f"RiceModel({self.kind}, {len(self.bands)} bands, {self.n_classes} classes{extra})"

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
        raise FileFormatError(f"{path} is not a terralab rice model checkpoint ({err.__class__.__name__}: {err})") from err
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise FileFormatError(f"{path} is not a terralab rice model checkpoint (format {_FORMAT} expected)")
    kind = payload["kind"]
    config = payload["config"]
    norm = Normalisation.from_dict(payload["normalisation"])
    if kind == "rf":
        net = pickle.loads(payload["sklearn_pickle"])
    else:
        net = _build_net(kind, len(payload["bands"]), len(payload["class_names"]), config, load_encoder=False)
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
                raise InvalidInputError(f"encoder weight {key!r} has shape {tuple(value.shape)}, expected {tuple(target.shape)}")
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
        names = [c for c in points.columns if c not in POINT_META_COLUMNS and pd.api.types.is_numeric_dtype(points[c])]
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
    class_weighting: str | None = None,
    learning_rate: float | None = None,
    batch_size: int | None = None,
    patience: int = 10,
    patch_size_px: int = 64,
    patches_per_epoch: int = 64,
    encoder: str = "resnet18",
    encoder_depth: int = 3,
    encoder_weights: str | Path | None = None,
    decoder_channels: Sequence[int] | None = None,
    hidden: Sequence[int] = (256, 128, 64, 32),
    dropout: float = 0.2,
    n_members: int = 1,
    n_estimators: int = 500,
    reproject: bool = False,
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
        ``"balanced"`` weights the loss by inverse class frequency; ``"none"`` does not. Default: balanced for
        label rasters (classes cover very different areas), none for points (usually sampled per class).
    learning_rate, batch_size
        Adam settings (defaults: 3e-3 with cosine decay and 8 patches for unet; 1e-3 and 256 points for dnn).
    patience
        Stop after this many epochs without a lower validation loss; the best epoch's weights are kept.
    patch_size_px, patches_per_epoch
        U-Net training patches: side (multiple of the stride 2**encoder_depth; smaller sizes are padded)
        and number drawn at random per epoch (each around a labelled pixel, with flips and rotations).
    encoder, encoder_depth, encoder_weights, decoder_channels
        The smp U-Net. ``encoder_weights``: None (from scratch), a local ``.pth`` encoder state_dict, or an
        smp weights name (downloads — not offline).
    hidden, dropout, n_members
        DNN layer widths, dropout, and number of ensemble members (averaged softmax).
    n_estimators
        RandomForest trees.
    reproject
        If the labels' CRS/grid differ from the stack's: resample them (nearest) instead of raising.
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
    if class_weighting is None:
        class_weighting = "none" if isinstance(data, pd.DataFrame) else "balanced"
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
            X, y, Xv, yv, names, model=model, seed=seed, epochs=epochs, class_names=class_names,
            attrs_names=attrs_names, class_weighting=class_weighting, learning_rate=learning_rate,
            batch_size=batch_size, patience=patience, hidden=hidden, dropout=dropout, n_members=n_members,
            n_estimators=n_estimators, device=device, progress=progress,
        )

    stack = check_stack(data)
    if labels is None:
        raise InvalidInputError("fit(stack, labels): a stack needs a label raster (y, x) with −1 where unlabelled")
    stack = select_bands(stack, bands)
    names = [str(b) for b in stack["band"].values]
    labels = align_labels(labels, stack, reproject=reproject)
    values = stack.values.astype(np.float32)
    invalid = np.isnan(values).any(axis=0)
    lab = np.where(invalid, NODATA, labels.values).astype(np.int64)
    if not (lab >= 0).any():
        raise InvalidInputError(
            "the training split holds no labelled, valid pixel (all −1 or NaN in the stack): nothing to learn from"
        )
    if validation is not None:
        if isinstance(validation, pd.DataFrame):
            raise InvalidInputError("with a stack, validation must be a label raster on the same grid")
        val = np.where(invalid, NODATA, align_labels(validation, stack, reproject=reproject).values).astype(np.int64)
    else:
        to_split = labels.copy(data=lab.astype(np.int16))
        try:
            held = split(to_split, kind="blocked", fractions=(0.85, 0.15, 0.0),
                         block_size_px=min(64, max(8, min(lab.shape) // 4)), seed=seed)
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
    if model != "unet":
        sel = lab >= 0
        X = values[:, sel].T
        Xv = values[:, val >= 0].T if (val >= 0).any() else None
        yv = val[val >= 0] if (val >= 0).any() else None
        return _fit_pixels(
            X, lab[sel], Xv, yv, names, model=model, seed=seed, epochs=epochs, class_names=class_names,
            attrs_names=labels.attrs.get("class_names"), class_weighting=class_weighting,
            learning_rate=learning_rate, batch_size=batch_size, patience=patience, hidden=hidden,
            dropout=dropout, n_members=n_members, n_estimators=n_estimators, device=device, progress=progress,
        )
    return _fit_unet(
        stack, values, lab, val, names, seed=seed, epochs=epochs, class_names=class_names,
        attrs_names=labels.attrs.get("class_names"), class_weighting=class_weighting, learning_rate=learning_rate,
        batch_size=batch_size or 8, patience=patience, patch_size_px=patch_size_px,
        patches_per_epoch=patches_per_epoch, encoder=encoder, encoder_depth=encoder_depth,
        encoder_weights=encoder_weights, decoder_channels=decoder_channels, device=device, progress=progress,
    )


def _n_classes(*ys) -> int:
    top = max(int(np.max(y)) for y in ys if y is not None and np.size(y))
    return top + 1


def _fit_pixels(
    X, y, Xv, yv, names, *, model, seed, epochs, class_names, attrs_names, class_weighting, learning_rate,
    batch_size, patience, hidden, dropout, n_members, n_estimators, device, progress,
) -> RiceModel:
    torch = _torch()
    keep = (y >= 0) & ~np.isnan(X).any(axis=1)
    X, y = X[keep], y[keep].astype(np.int64)
    if y.size == 0:
        raise InvalidInputError("the training set is empty (no labelled point with valid band values)")
    n_classes = _n_classes(y, yv)
    names_c = _class_names(n_classes, class_names, attrs_names)
    n_classes = max(n_classes, len(names_c))
    norm = fit_normalisation(pd.DataFrame(X, columns=names), names)
    if model == "rf":
        from sklearn.ensemble import RandomForestClassifier

        rf = RandomForestClassifier(
            n_estimators=n_estimators, random_state=seed, n_jobs=-1,
            class_weight="balanced" if class_weighting == "balanced" else None,
        )
        rf.fit(X, y)
        config = {"n_estimators": n_estimators, "seed": seed, "class_weighting": class_weighting}
        return RiceModel("rf", list(names), norm, names_c, config, rf, pd.DataFrame())

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
        "hidden": [int(h) for h in hidden], "dropout": float(dropout), "n_members": int(n_members),
        "epochs": int(epochs), "learning_rate": float(learning_rate), "batch_size": int(batch_size or 256),
        "patience": int(patience), "seed": int(seed), "class_weighting": class_weighting,
    }
    weights = class_weights(y, n_classes, method="balanced" if class_weighting == "balanced" else "none")
    Xt = torch.as_tensor(norm.apply(X, axis=1), device=device)
    yt = torch.as_tensor(y, device=device)
    Xvt = torch.as_tensor(norm.apply(Xv, axis=1), device=device)
    yvt = torch.as_tensor(yv, device=device)
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.tensor(np.array(weights.values), dtype=torch.float32, device=device))
    members, history = [], []
    bs = config["batch_size"]
    for m in range(int(n_members)):
        torch.manual_seed(seed + 1000 * m)
        net = _build_net("dnn", len(names), n_classes, {**config, "n_members": 1}).members[0].to(device)
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
            history.append({"member": m, "epoch": epoch, "train_loss": total / y.size, "val_loss": vloss, "val_accuracy": vacc})
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
    return RiceModel("dnn", list(names), norm, names_c, config, ens, pd.DataFrame(history))


def _pad_to(arr: np.ndarray, h: int, w: int, value: float) -> np.ndarray:
    ph, pw = h - arr.shape[-2], w - arr.shape[-1]
    if ph <= 0 and pw <= 0:
        return arr
    pad = [(0, 0)] * (arr.ndim - 2) + [(0, max(ph, 0)), (0, max(pw, 0))]
    return np.pad(arr, pad, constant_values=value)


def _fit_unet(
    stack, values, lab, val, names, *, seed, epochs, class_names, attrs_names, class_weighting, learning_rate,
    batch_size, patience, patch_size_px, patches_per_epoch, encoder, encoder_depth, encoder_weights,
    decoder_channels, device, progress,
) -> RiceModel:
    torch = _torch()
    stride = 2**encoder_depth
    patch = max(stride, math.ceil(patch_size_px / stride) * stride)
    n_classes = _n_classes(lab, val)
    names_c = _class_names(n_classes, class_names, attrs_names)
    n_classes = max(n_classes, len(names_c))
    norm = fit_normalisation(stack.copy(data=values))
    x = np.nan_to_num(norm.apply(values), nan=0.0)
    # pad the scene to at least one patch: small scenes (and tiles smaller than the stride) still train
    H, W = lab.shape
    x = _pad_to(x, max(H, patch), max(W, patch), 0.0)
    lab_p = _pad_to(lab, max(H, patch), max(W, patch), NODATA)
    val_p = _pad_to(val, max(H, patch), max(W, patch), NODATA)
    Hp, Wp = lab_p.shape
    dec = list(decoder_channels) if decoder_channels is not None else [16 * 2 ** (encoder_depth - 1 - i) for i in range(encoder_depth)]
    if len(dec) != encoder_depth:
        raise InvalidInputError(f"decoder_channels needs {encoder_depth} entries (one per encoder stage), got {dec}")
    config = {
        "encoder": encoder, "encoder_depth": int(encoder_depth), "decoder_channels": [int(c) for c in dec],
        "encoder_weights": None if encoder_weights is None else str(encoder_weights), "patch_size_px": patch,
        "patches_per_epoch": int(patches_per_epoch), "epochs": int(epochs), "learning_rate": float(learning_rate),
        "batch_size": int(batch_size), "patience": int(patience), "seed": int(seed), "class_weighting": class_weighting,
    }
    net = _build_net("unet", len(names), n_classes, config).to(device)
    weights = class_weights(lab, n_classes, method="balanced" if class_weighting == "balanced" else "none")
    loss_fn = torch.nn.CrossEntropyLoss(
        weight=torch.tensor(np.array(weights.values), dtype=torch.float32, device=device), ignore_index=NODATA
    )
    opt = torch.optim.Adam(net.parameters(), lr=learning_rate)
    # cosine decay over the planned epochs: large steps early, fine convergence late
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs), eta_min=learning_rate * 0.02)
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
            best, stale = (vloss if np.isfinite(vloss) else math.inf, {k: v.detach().clone() for k, v in net.state_dict().items()}), 0
        else:
            stale += 1
            if stale >= patience:
                break
    if best[1] is not None:
        net.load_state_dict(best[1])
    net.eval()
    return RiceModel("unet", names, norm, names_c, config, net, pd.DataFrame(history))


def _grid_windows(H: int, W: int, patch: int, val: np.ndarray) -> list[tuple[int, int]]:
    return [
        (r, c) for r in _starts(H, patch, patch) for c in _starts(W, patch, patch)
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
            xb = torch.as_tensor(np.stack([x[:, r : r + patch, c : c + patch] for r, c in chunk]), device=device)
            yb = torch.as_tensor(np.stack([val[r : r + patch, c : c + patch] for r, c in chunk]), device=device)
            logits = net(xb)
            n = int((yb >= 0).sum())
            if n:
                total_loss += float(loss_fn(logits, yb)) * n
                correct += int(((logits.argmax(1) == yb) & (yb >= 0)).sum())
                total_n += n
    return (total_loss / total_n, correct / total_n) if total_n else (float("nan"), float("nan"))


# --- inference -------------------------------------------------------------------------------------------


def _blend_window(tile: int, overlap: int) -> np.ndarray:
    """Separable weights that ramp linearly over ``overlap`` pixels at each edge (never zero)."""
    i = np.arange(tile, dtype=np.float32)
    ramp = np.minimum(1.0, np.minimum(i + 1, tile - i) / (overlap + 1)) if overlap > 0 else np.ones(tile, np.float32)
    return np.outer(ramp, ramp).astype(np.float32)


def _starts(n: int, tile: int, step: int) -> list[int]:
    if n <= tile:
        return [0]
    s = list(range(0, n - tile + 1, step))
    if s[-1] + tile < n:
        s.append(n - tile)
    return s


def _features_for(model: RiceModel, block: np.ndarray, band_list: Sequence[str]) -> np.ndarray:
    """Order a (band, h, w) block as the model's bands, computing indices the model needs."""
    if list(band_list) == list(model.bands):
        return block
    da = xr.DataArray(block, dims=("band", "y", "x"), coords={"band": list(band_list)})
    return select_bands(da, model.bands).values


def _run_tiled(
    model: RiceModel,
    read_window: Callable[[int, int, int, int], np.ndarray],
    write_rows: Callable[[int, np.ndarray, np.ndarray | None], None],
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
) -> None:
    """Tiled inference over a raster read and written strip by strip.

    Memory stays O(classes × tile × width + bands × tile² × batch): tiles are read a batch at a time and blended
    into a strip accumulator; rows that no later tile touches are final and are written out before the next row
    of tiles is read.
    """
    torch = _torch()
    K = model.n_classes
    if model.kind != "unet":
        rows = max(1, min(height, (1 << 20) // max(width, 1)))
        starts = range(0, height, rows)
        for r0 in _progress(starts, progress, desc="predict", total=len(starts)):
            r1 = min(height, r0 + rows)
            block = _features_for(model, read_window(r0, r1, 0, width), band_list)
            flat = block.reshape(block.shape[0], -1).T
            ok = ~np.isnan(flat).any(axis=1)
            proba = np.zeros((flat.shape[0], K), np.float32)
            if ok.any():
                proba[ok] = _predict_proba_matrix(model, flat[ok], device)
            classes = np.where(ok, proba.argmax(1), NODATA).reshape(r1 - r0, width).astype(np.int16)
            write_rows(r0, classes, proba.T.reshape(K, r1 - r0, width) if want_proba else None)
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
    buf_start = 0
    net = model.net.to(device).eval()

    def flush(upto: int) -> None:
        nonlocal buf_start
        n = upto - buf_start
        if n <= 0:
            return
        classes = np.where(bad[:n], NODATA, acc[:, :n].argmax(0)).astype(np.int16)
        proba = acc[:, :n] / np.maximum(wsum[:n], 1e-12) if want_proba else None
        write_rows(buf_start, classes, proba)
        keep = buf_h - n  # rows still receiving contributions move to the top of the buffers
        if keep > 0:
            acc[:, :keep] = acc[:, n:].copy()
            wsum[:keep] = wsum[n:].copy()
            bad[:keep] = bad[n:].copy()
        acc[:, max(keep, 0) :] = 0
        wsum[max(keep, 0) :] = 0
        bad[max(keep, 0) :] = False
        buf_start = upto

    for r0 in _progress(row_starts, progress, desc="predict", total=len(row_starts)):
        flush(r0)
        r1 = min(height, r0 + tile)
        off = r0 - buf_start
        h = r1 - r0
        # one batch of tiles at a time: the input held in memory is batch_size tiles, not the whole strip
        for i in range(0, len(col_starts), batch_size):
            group = col_starts[i : i + batch_size]
            g0, g1 = group[0], min(width, group[-1] + tile)
            block = _features_for(model, read_window(r0, r1, g0, g1), band_list).astype(np.float32, copy=False)
            bad[off : off + h, g0:g1] |= np.isnan(block).any(axis=0)
            norm = np.nan_to_num(model.normalisation.apply(block), nan=0.0)
            del block
            spans = [(c0, min(width, c0 + tile)) for c0 in group]
            xb = np.stack([_pad_to(norm[:, :, c0 - g0 : c1 - g0], tile_p, tile_p, 0.0) for c0, c1 in spans])
            with torch.no_grad():
                probs = torch.softmax(net(torch.as_tensor(xb, device=device)), dim=1).cpu().numpy()
            for (c0, c1), p in zip(spans, probs):
                w = c1 - c0
                wt = weight[:h, :w]
                acc[:, off : off + h, c0:c1] += p[:, :h, :w] * wt
                wsum[off : off + h, c0:c1] += wt
    flush(height)


def _predict_proba_matrix(model: RiceModel, X: np.ndarray, device: str = "cpu") -> np.ndarray:
    """Class probabilities (n, K) of per-pixel features X (n, bands) for dnn and rf."""
    if model.kind == "rf":
        proba = np.zeros((X.shape[0], model.n_classes), np.float32)
        proba[:, model.net.classes_.astype(int)] = model.net.predict_proba(X)
        return proba
    torch = _torch()
    Xn = model.normalisation.apply(X, axis=1)
    out = []
    with torch.no_grad():
        net = model.net.to(device).eval()
        for i in range(0, Xn.shape[0], 65536):
            out.append(torch.exp(net(torch.as_tensor(Xn[i : i + 65536], device=device))).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.n_classes), np.float32)


def predict(
    model: RiceModel,
    data: xr.DataArray | pd.DataFrame,
    *,
    tile: int = 256,
    overlap: int = 32,
    batch_size: int = 4,
    output: str = "class",
    device: str = "cpu",
    progress: bool = True,
) -> xr.DataArray | pd.Series | pd.DataFrame:
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
        ``"class"`` (class ids) or ``"proba"`` (class probabilities).
    device, progress
        Torch device; progress bar.

    Returns
    -------
    xr.DataArray or pd.Series or pd.DataFrame
        Stack input: int16 ``(y, x)`` class ids on the same grid and CRS, −1 where any input band is NaN
        (``output="proba"``: float32 ``(class, y, x)``). Points: a Series of class ids (−1 for rows with NaN),
        or a DataFrame of probabilities with one column per class name.
    """
    if not isinstance(model, RiceModel):
        raise InvalidInputError(f"model must be a RiceModel (from rice.fit or rice.load), got {type(model).__name__}")
    if output not in ("class", "proba"):
        raise InvalidInputError("output must be 'class' or 'proba'")
    if isinstance(data, pd.DataFrame):
        if model.kind == "unet":
            raise InvalidInputError(
                "a U-Net predicts on a stack, not points: predict the stack, then sample the class map at the points "
                "(rice.evaluate.sample_at)"
            )
        X = _point_matrix(data, model.bands)
        ok = ~np.isnan(X).any(axis=1)
        proba = np.zeros((len(data), model.n_classes), np.float32)
        if ok.any():
            proba[ok] = _predict_proba_matrix(model, X[ok], device)
        if output == "proba":
            proba[~ok] = np.nan
            return pd.DataFrame(proba, index=data.index, columns=model.class_names)
        return pd.Series(np.where(ok, proba.argmax(1), NODATA).astype(np.int64), index=data.index, name="class")

    stack = check_stack(data)
    band_list = [str(b) for b in stack["band"].values]
    select_bands(stack.isel(y=slice(0, 1), x=slice(0, 1)), model.bands)  # fail early on missing bands
    H, W = stack.sizes["y"], stack.sizes["x"]
    values = stack.values
    out = np.full((H, W), NODATA, np.int16)
    proba_out = np.zeros((model.n_classes, H, W), np.float32) if output == "proba" else None

    def read_window(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        return values[:, r0:r1, c0:c1].astype(np.float32)

    def write_rows(r0: int, classes: np.ndarray, proba) -> None:
        out[r0 : r0 + classes.shape[0]] = classes
        if proba_out is not None and proba is not None:
            proba_out[:, r0 : r0 + classes.shape[0]] = np.where(classes[None] >= 0, proba, np.nan)

    _run_tiled(
        model, read_window, write_rows, H, W, band_list, tile=tile, overlap=overlap, batch_size=batch_size,
        progress=progress, want_proba=output == "proba", device=device,
    )
    coords = {"y": stack["y"].values, "x": stack["x"].values}
    if output == "proba":
        result = xr.DataArray(
            proba_out, dims=("class", "y", "x"), coords={"class": model.class_names, **coords}, name="probability",
            attrs={"units": "1", "long_name": "class probability"},
        )
    else:
        result = xr.DataArray(
            out, dims=("y", "x"), coords=coords, name="class",
            attrs={"class_names": list(model.class_names), "long_name": f"{model.kind} class map", "units": "1"},
        )
    import rioxarray  # noqa: F401

    if stack.rio.crs is not None:
        result = result.rio.write_crs(stack.rio.crs).rio.write_transform(stack.rio.transform())
    if output == "class":
        result = result.rio.write_nodata(NODATA)
    return result


def predict_geotiff(
    model: RiceModel,
    src_path: str | Path,
    dst_path: str | Path,
    *,
    tile: int = 256,
    overlap: int = 32,
    batch_size: int = 4,
    device: str = "cpu",
    gdal_cache_mb: int = 128,
    progress: bool = True,
) -> Path:
    """Classify a feature GeoTIFF into a class GeoTIFF, reading and writing window by window.

    ``gdal_cache_mb`` caps GDAL's block cache (MiB). Band names come from the source's band descriptions (as written by :func:`~terralab.rice.features.write_stack`).
    Memory is bounded by a strip of ``tile`` rows, whatever the raster size. The output (int16, nodata −1,
    tiled, deflate) is written to a temporary file beside ``dst_path`` and renamed when complete.

    Raises
    ------
    FileFormatError
        The source is not a readable raster (corrupt or truncated); nothing is left at ``dst_path``.
    InvalidInputError
        The source lacks a band the model needs.
    """
    import rasterio
    from rasterio.errors import RasterioError
    from rasterio.windows import Window

    src_path, dst_path = Path(src_path), Path(dst_path)
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
            needed = [b for b in model.bands if b in names]
            probe = xr.DataArray(np.zeros((len(names), 1, 1), np.float32), dims=("band", "y", "x"), coords={"band": names})
            select_bands(probe, model.bands)  # raises with the list of missing bands
            if len(needed) < len(model.bands):  # indices computed on the fly need their RGBN bands
                extra = [f"{b}_{n.split('_', 1)[1]}" for n in model.bands if n not in names and n.split("_")[0] in INDICES
                         for b in ("red", "green", "blue", "nir")]
                needed = list(dict.fromkeys(needed + [e for e in extra if e in names]))
            indexes = [names.index(b) + 1 for b in needed]
            nodata = src.nodata
            H, W = src.height, src.width
            profile = {
                "driver": "GTiff", "dtype": "int16", "count": 1, "height": H, "width": W, "crs": src.crs,
                "transform": src.transform, "nodata": NODATA, "tiled": True, "blockxsize": 256, "blockysize": 256,
                "compress": "deflate",
            }
            with rasterio.open(tmp, "w", **profile) as dst:
                dst.set_band_description(1, "class")
                dst.update_tags(class_names=",".join(model.class_names), model=model.kind)

                def read_window(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
                    block = src.read(indexes, window=Window(c0, r0, c1 - c0, r1 - r0)).astype(np.float32)
                    if nodata is not None and not np.isnan(nodata):
                        block[block == nodata] = np.nan
                    return block

                def write_rows(r0: int, classes: np.ndarray, proba) -> None:
                    dst.write(classes[None], window=Window(0, r0, W, classes.shape[0]))

                _run_tiled(
                    model, read_window, write_rows, H, W, needed, tile=tile, overlap=overlap, batch_size=batch_size,
                    progress=progress, want_proba=False, device=device,
                )
    except RasterioError as err:
        raise FileFormatError(f"{src_path} is not a readable GeoTIFF ({err}); the file is corrupt or truncated") from err
    return dst_path
