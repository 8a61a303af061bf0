"""``rice.fit``: train a U-Net, DNN or RandomForest on a feature stack and label raster, or on labelled
points.

This module prepares the data (band selection, label alignment, cloud masks, the masked normalisation, the
validation hold-out) and hands over to the per-model training in :mod:`terralab.rice.unet` and
:mod:`terralab.rice.dnn`. Per-model options (``patch_size_px``, ``hidden``, ``n_estimators`` …) are keyword
arguments checked against :mod:`terralab.rice.options`.

Model options
-------------
The keyword options of :func:`fit` (``**model_params``):

``class_weighting`` (all models)
    ``"none"`` (default) or ``"balanced"`` (weights the loss by inverse class frequency: more recall
    for rare classes, less precision for common ones). On the development valley of seed 102 (with and
    without clouds), balanced weights cost the U-Net 0.005 rice F1 (rice covers half the valley
    floor), so the default is none.
``learning_rate``, ``batch_size`` (unet, dnn)
    Adam settings (defaults: 3e-3 with cosine decay and 16 patches for unet; 1e-3 and 256 points for
    dnn).
``patience`` (unet, dnn)
    Stop after this many epochs without a lower validation loss (default 10); the best epoch's weights
    are kept.
``patch_size_px``, ``patches_per_epoch`` (unet)
    Training patches: side (multiple of the stride 2**encoder_depth; smaller sizes are padded) and
    number drawn at random per epoch (each around a labelled pixel, with flips and rotations). The
    defaults (64 px, 256 per epoch, batches of 16) were chosen on development valleys (seeds 101–102;
    the report seeds of benchmarks/rice_clouds.py are others); with 64 patches per epoch the network
    is still under-trained after 20 epochs.
``encoder``, ``encoder_depth``, ``encoder_weights``, ``decoder_channels`` (unet)
    The smp U-Net (default ``"resnet18"`` cut at depth 3). ``encoder_weights``: None (from scratch), a
    local ``.pth`` encoder state_dict, or an smp weights name (downloads — not offline).
``augment_clouds`` (unet)
    Share of training patches that get random clouds and shadows on the during-season bands
    (:func:`terralab.rice.clouds.augment`; default 0.5); 0 turns it off.
``hidden``, ``dropout``, ``n_members`` (dnn)
    Layer widths, dropout, and number of ensemble members (averaged softmax).
``n_estimators`` (rf)
    RandomForest trees (default 500).
``reproject`` (stack)
    If the labels' CRS/grid differ from the stack's: resample them (nearest) instead of raising.
``mask_clouds`` (stack)
    Mask each season's optical bands where :func:`terralab.rice.clouds.validity` says they are cloudy,
    shadowed or nodata (default True) — their values are replaced by the band mean and one
    ``valid_<group>`` input channel per season tells the model; pixels with no valid optical or radar
    band are nodata (never teach, never predicted).
``cloud_mask`` (stack)
    Optional explicit mask (True = cloud) ``(y, x)`` for the during season or ``(season, y, x)``, on
    the stack's grid, added to what the stack's own data says.
``cloud_test`` (stack)
    Thresholds of the RGBN cloud/shadow test (:class:`terralab.rice.clouds.CloudTest`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InvalidInputError
from ..seeding import seed_torch
from .checkpoint import RiceModel
from .clouds import CloudTest, feature_bands, season_masks, validity_array
from .dnn import fit_pixels
from .features import check_stack, select_bands
from .inputs import (
    fit_masked_normalisation,
    masking_config,
    model_inputs,
    point_bands,
    point_matrix,
    refuse_all_cloudy,
    refuse_empty_bands,
    select_features,
    warn_single_class,
)
from .labels import NODATA, align_labels, split
from .networks import import_torch
from .options import RunSettings, StackParams, split_model_params
from .unet import AugmentContext, fit_unet

__all__ = ["MODEL_KINDS", "fit"]

MODEL_KINDS = ("unet", "dnn", "rf")


def seed_everything(seed: int) -> None:
    """Seed torch's generator for weight initialisation (the training loops draw batches from their own
    seeded generators; NumPy's global state is left alone)."""
    import_torch()
    seed_torch(seed)


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
    calibrate: bool = True,
    device: str = "cpu",
    progress: bool | None = None,
    **model_params: Any,
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
    calibrate
        Fit a softmax temperature on the validation labels (:func:`~terralab.rice.calibration.calibrate`), so
        that the class probabilities of :func:`predict` are calibrated.
    device
        ``"cpu"``, ``"cuda"``, or ``"auto"``.
    progress
        A bar over epochs: None (default) when a person is watching, never in a report run
        (:func:`terralab.progress.progress_bar`).
    **model_params
        Options of the chosen model (:class:`~terralab.rice.options.UNetParams`, ``DNNParams``, ``RFParams``)
        and, for stack input, of the stack (:class:`~terralab.rice.options.StackParams`), described under
        "Model options" in :mod:`terralab.rice.training`; any other name is an
        :class:`~terralab.errors.InvalidInputError`.

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
    params, stack_params = split_model_params(model, model_params)
    torch = import_torch()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    seed_everything(seed)
    run = RunSettings(seed, epochs, class_names, calibrate, device, progress)
    if isinstance(data, pd.DataFrame):
        return _fit_points(data, validation, model=model, bands=bands, params=params, run=run)
    return _fit_stack(
        data, labels, validation, model=model, bands=bands, params=params, stack=stack_params, run=run
    )


def _fit_points(
    points: pd.DataFrame, validation, *, model: str, bands, params, run: RunSettings
) -> RiceModel:
    if model == "unet":
        raise InvalidInputError(
            "a U-Net needs a feature stack and a label raster, not points: call fit(stack, labels, "
            "model='unet'), or use model='dnn' / 'rf' for points"
        )
    names = point_bands(points, bands)
    if "class" not in points.columns:
        raise InvalidInputError("the points need a 'class' column of class ids")
    X = point_matrix(points, names)
    y = points["class"].to_numpy()
    if isinstance(validation, pd.DataFrame):
        Xv, yv = point_matrix(validation, names), validation["class"].to_numpy()
    else:
        Xv = yv = None
    attrs_names = None
    if "class_name" in points.columns:
        pairs = points[["class", "class_name"]].drop_duplicates().sort_values("class")
        if pairs["class"].is_unique and (pairs["class"].to_numpy() == np.arange(len(pairs))).all():
            attrs_names = list(pairs["class_name"])
    return fit_pixels(X, y, Xv, yv, names, params=params, run=run, attrs_names=attrs_names)


def _fit_stack(
    data: xr.DataArray, labels, validation, *, model: str, bands, params, stack: StackParams, run: RunSettings
) -> RiceModel:
    stack_da = check_stack(data)
    if labels is None:
        raise InvalidInputError(
            "fit(stack, labels): a stack needs a label raster (y, x) with −1 where unlabelled"
        )
    all_names = [str(b) for b in stack_da["band"].values]
    chosen = select_bands(stack_da, bands if bands is not None else feature_bands(all_names))
    names = [str(b) for b in chosen["band"].values]
    refuse_empty_bands(chosen)
    labels = align_labels(labels, stack_da, reproject=stack.reproject)
    masks = season_masks(stack.cloud_mask, stack_da)
    test = stack.cloud_test or CloudTest()
    masking = masking_config(names, all_names, enabled=stack.mask_clouds, test=test)
    raw = stack_da.values.astype(np.float32)
    valid = None
    if masking is not None:
        valid = validity_array(raw, all_names, test=test, cloud_mask=masks, detect=masking["detect"])
    refuse_all_cloudy(masking, valid, labels.values >= 0)
    feats = select_features(names, raw, all_names)
    norm = fit_masked_normalisation(names, feats, masking, valid)
    x, nodata, _ = model_inputs(names, norm, masking, raw, all_names, valid=valid, feats=feats)
    lab = np.where(nodata, NODATA, labels.values).astype(np.int64)
    if not (lab >= 0).any():
        raise InvalidInputError(
            "the training split holds no labelled, valid pixel (all −1, or no valid band at any labelled "
            "pixel): nothing to learn from"
        )
    lab, val = _raster_holdout(labels, lab, validation, nodata, stack_da, stack.reproject, run.seed)
    if not (lab >= 0).any():
        raise InvalidInputError(
            "the training split holds no labelled, valid pixel (all −1 or NaN in the stack): nothing to "
            "learn from"
        )
    warn_single_class(lab)
    attrs_names = labels.attrs.get("class_names")
    if model != "unet":
        sel, vsel = lab >= 0, val >= 0
        Xv, yv = (x[:, vsel].T, val[vsel]) if vsel.any() else (None, None)
        return fit_pixels(
            x[:, sel].T,
            lab[sel],
            Xv,
            yv,
            names,
            params=params,
            run=run,
            attrs_names=attrs_names,
            norm=norm,
            masking=masking,
        )
    context = AugmentContext(raw, all_names, names, norm, masking, masks, params.augment_clouds)
    return fit_unet(x, lab, val, names, norm, context, params=params, run=run, attrs_names=attrs_names)


def _raster_holdout(labels, lab, validation, nodata, stack_da, reproject: bool, seed: int):
    """Training and validation label arrays: ``validation`` on the stack's grid, or 15 % of the labels held
    out by blocks (by pixels when there are too few blocks; none at all for a handful of labels)."""
    if validation is not None:
        if isinstance(validation, pd.DataFrame):
            raise InvalidInputError("with a stack, validation must be a label raster on the same grid")
        val = align_labels(validation, stack_da, reproject=reproject).values
        return lab, np.where(nodata, NODATA, val).astype(np.int64)
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
    return held["train"].values.astype(np.int64), held["val"].values.astype(np.int64)
