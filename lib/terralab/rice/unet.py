"""The patch U-Net's training: random labelled patches with flips, rotations and drawn clouds, Adam with
cosine decay, early stopping on fixed validation windows, and temperature calibration.

The network itself is :func:`terralab.rice.networks.build_net` (segmentation-models-pytorch); reached
through :func:`terralab.rice.fit` with ``model="unet"``.

Example
-------
One short epoch on a small synthetic valley:

>>> from terralab import rice
>>> stack, truth = rice.synthetic.scene(height_px=32, width_px=32, seed=0)
>>> model = rice.fit(
...     stack, truth, model="unet", bands="RGBN", epochs=1, progress=False,
...     patch_size_px=32, patches_per_epoch=4, batch_size=4,
... )
>>> model.kind, model.stride, list(model.history.columns)
('unet', 8, ['epoch', 'train_loss', 'val_loss', 'val_accuracy'])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import InvalidInputError
from ..training import fit_epochs
from . import clouds as clouds_mod
from .calibration import fit_temperature
from .checkpoint import RiceModel
from .features import SEASONS, Normalisation
from .inference import window_starts
from .inputs import count_classes, model_inputs, pad_to, resolve_class_names
from .labels import NODATA, class_weights
from .networks import build_net, import_torch
from .options import RunSettings, UNetParams

__all__ = ["AugmentContext", "fit_unet"]

_NO_VALIDATION = {"val_loss": float("nan"), "val_accuracy": float("nan")}


@dataclass
class AugmentContext:
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
        self, rng: np.random.Generator, r0: int, c0: int, patch: int, shape: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Inputs and nodata of the patch at (r0, c0) under drawn clouds (padded to ``patch``), or None."""
        if self.masking is None or self.probability <= 0 or rng.random() >= self.probability:
            return None
        H, W = shape
        raw = self.raw[:, r0 : min(H, r0 + patch), c0 : min(W, c0 + patch)]
        raw = pad_to(raw, patch, patch, np.nan)
        seasons = [s for s in ("during",) if f"optical_{s}" in self.masking["groups"]]
        aug, cores = clouds_mod.augment(
            raw, self.band_list, rng, seasons=seasons, probability=1.0, return_cores=True
        )
        masks = {}
        for key, m in (self.season_masks or {}).items():
            masks[key] = pad_to(m[r0 : min(H, r0 + patch), c0 : min(W, c0 + patch)], patch, patch, False)
        detected = self.seasons_detected()
        for season, core in cores.items():
            if (
                season not in detected
            ):  # mask bands cannot see the clouds we drew: flag their cores explicitly
                masks[season] = masks.get(season, np.zeros(core.shape, bool)) | core
        x, nodata, _ = model_inputs(
            self.names, self.norm, self.masking, aug, self.band_list, cloud_mask=masks
        )
        return x, nodata


def fit_unet(
    x: np.ndarray,
    lab: np.ndarray,
    val: np.ndarray,
    names: Sequence[str],
    norm: Normalisation,
    context: AugmentContext,
    *,
    params: UNetParams,
    run: RunSettings,
    attrs_names: Sequence[str] | None = None,
) -> RiceModel:
    """Train a U-Net on network inputs ``x`` (inputs, H, W) with training labels ``lab`` and validation labels
    ``val`` (H, W; −1 = unlabelled); the best epoch's weights are kept."""
    torch = import_torch()
    stride = 2**params.encoder_depth
    patch = max(stride, math.ceil(params.patch_size_px / stride) * stride)
    n_classes = count_classes(lab, val)
    names_c = resolve_class_names(n_classes, run.class_names, attrs_names)
    n_classes = max(n_classes, len(names_c))
    # pad the scene to at least one patch: small scenes (and tiles smaller than the stride) still train
    H, W = lab.shape
    x = pad_to(x, max(H, patch), max(W, patch), 0.0)
    lab_p = pad_to(lab, max(H, patch), max(W, patch), NODATA)
    val_p = pad_to(val, max(H, patch), max(W, patch), NODATA)
    config = _unet_config(params, run, patch, context)
    device = run.device
    net = build_net("unet", x.shape[0], n_classes, config).to(device)
    weights = class_weights(
        lab, n_classes, method="balanced" if params.class_weighting == "balanced" else "none"
    )
    loss_fn = torch.nn.CrossEntropyLoss(
        weight=torch.tensor(np.array(weights.values), dtype=torch.float32, device=device), ignore_index=NODATA
    )
    opt = torch.optim.Adam(net.parameters(), lr=params.learning_rate)
    # cosine decay over the planned epochs: large steps early, fine convergence late
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        opt, T_max=max(1, run.epochs), eta_min=params.learning_rate * 0.02
    )
    sampler = _PatchSampler(x, lab_p, context, patch, (H, W), np.random.default_rng(run.seed))
    # validation: every patch-grid window holding validation labels, fixed for the whole run
    val_windows = _grid_windows(*lab_p.shape, patch, val_p)
    # no validation windows (a handful of labels): no early stopping, the last epoch's weights are kept
    validate = None
    if val_windows:

        def validate(epoch: int) -> dict[str, float]:
            vloss, vacc = _unet_validation(
                net, x, val_p, val_windows, patch, loss_fn, params.batch_size, device
            )
            return {"val_loss": vloss, "val_accuracy": vacc}

    def step_epoch(epoch: int) -> dict[str, float]:
        train_loss = _train_epoch(net, opt, loss_fn, sampler, params, device)
        schedule.step()
        return {"train_loss": train_loss}

    state = fit_epochs(
        step_epoch,
        validate,
        epochs=run.epochs,
        model=net,
        patience=params.patience,
        min_delta=1e-4,
        progress=run.progress,
        desc="unet",
    )
    history = state.rows if val_windows else [{**row, **_NO_VALIDATION} for row in state.rows]
    net.eval()
    if run.calibrate and val_windows:
        logits, truth = _unet_logits_at(net, x, val_p, val_windows, patch, params.batch_size, device)
        config["temperature"] = fit_temperature(logits, truth)
    return RiceModel("unet", list(names), norm, names_c, config, net, pd.DataFrame(history))


def _unet_config(params: UNetParams, run: RunSettings, patch: int, context: AugmentContext) -> dict:
    """The config a U-Net checkpoint records (architecture and training settings)."""
    depth = params.encoder_depth
    dec = (
        list(params.decoder_channels)
        if params.decoder_channels is not None
        else [16 * 2 ** (depth - 1 - i) for i in range(depth)]
    )
    if len(dec) != depth:
        raise InvalidInputError(f"decoder_channels needs {depth} entries (one per encoder stage), got {dec}")
    return {
        "encoder": params.encoder,
        "encoder_depth": int(depth),
        "decoder_channels": [int(c) for c in dec],
        "encoder_weights": None if params.encoder_weights is None else str(params.encoder_weights),
        "patch_size_px": patch,
        "patches_per_epoch": int(params.patches_per_epoch),
        "epochs": int(run.epochs),
        "learning_rate": float(params.learning_rate),
        "batch_size": int(params.batch_size),
        "patience": int(params.patience),
        "seed": int(run.seed),
        "class_weighting": params.class_weighting,
        "masking": context.masking,
        "augment_clouds": float(context.probability),
        "stack_inputs": True,
    }


@dataclass
class _PatchSampler:
    """Random training patches around labelled pixels, rotated, flipped and (sometimes) under drawn clouds."""

    x: np.ndarray
    lab: np.ndarray
    context: AugmentContext
    patch: int
    shape: tuple[int, int]  # the scene's (H, W) before padding
    rng: np.random.Generator

    def __post_init__(self) -> None:
        self.labelled = np.flatnonzero(self.lab.ravel() >= 0)

    def batch(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """``size`` input patches (size, inputs, p, p) and their labels (size, p, p)."""
        rng, patch = self.rng, self.patch
        Hp, Wp = self.lab.shape
        xb, yb = [], []
        for flat in rng.choice(self.labelled, size):
            r, c = divmod(int(flat), Wp)
            r0 = int(np.clip(r - rng.integers(0, patch), 0, Hp - patch))
            c0 = int(np.clip(c - rng.integers(0, patch), 0, Wp - patch))
            xp = self.x[:, r0 : r0 + patch, c0 : c0 + patch]
            yp = self.lab[r0 : r0 + patch, c0 : c0 + patch]
            clouded = self.context.patch(rng, r0, c0, patch, self.shape)
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
        return np.stack(xb), np.stack(yb)


def _train_epoch(net, opt, loss_fn, sampler: _PatchSampler, params: UNetParams, device: str) -> float:
    """One epoch of ``patches_per_epoch // batch_size`` batches (at least one); the mean batch loss."""
    torch = import_torch()
    net.train()
    total, count = 0.0, 0
    for _ in range(max(1, params.patches_per_epoch // params.batch_size)):
        xb, yb = sampler.batch(params.batch_size)
        xt = torch.as_tensor(xb, device=device)
        yt = torch.as_tensor(yb, device=device)
        opt.zero_grad()
        loss = loss_fn(net(xt), yt)
        loss.backward()
        opt.step()
        total += loss.item()
        count += 1
    return total / count


def _grid_windows(H: int, W: int, patch: int, val: np.ndarray) -> list[tuple[int, int]]:
    return [
        (r, c)
        for r in window_starts(H, patch, patch)
        for c in window_starts(W, patch, patch)
        if (val[r : r + patch, c : c + patch] >= 0).any()
    ]


def _unet_validation(net, x, val, windows, patch, loss_fn, batch_size, device) -> tuple[float, float]:
    torch = import_torch()
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
    """Logits (n, K) and labels (n,) at labelled pixels of the windows (at most ``max_pixels``, evenly)."""
    torch = import_torch()
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
