"""Image features of weekly cubes: ViT embeddings and the nine DengueNet radiomics texture features.

ViT (:func:`vit_embeddings`)
    B04, B03, B02 (true colour) of each week, scaled to [0, 1], resized to the model's input size and passed
    through a timm Vision Transformer without its head; the pooled token is the week's embedding. **Weights:**
    loaded from a local file when ``weights_path`` is given (``timm.create_model(..., pretrained_cfg_overlay=
    {"file": path})``), otherwise the network is **randomly initialised** from ``seed`` — nothing is ever
    downloaded. DengueNet used ``vit_base_patch16_224.augreg_in21k`` (Hugging Face
    ``google/vit-base-patch16-224- in21k``, 768-d); to reproduce that, save its timm weights once
    (``timm.create_model(name, pretrained=True)`` on a machine with internet, then
    ``torch.save(model.state_dict(), "vit_base_in21k.pth")``) and pass
    ``model_name="vit_base_patch16_224.augreg_in21k", weights_path="vit_base_in21k.pth"``. The default here is
    the small ``vit_tiny_patch16_224`` (192-d); ``"vit_micro"`` is a two-block, 64-d ViT for tests.

Radiomics (:func:`terralab.dengue.radiomics.radiomics_features`)
    The nine DengueNet texture features of B12 per tile, in :mod:`terralab.dengue.radiomics`.

:func:`image_features` runs both for every location of a cube: the inputs of DengueNet's image branches.

Examples
--------
>>> from terralab.dengue.synthetic import synthetic_s2_cubes
>>> cubes = synthetic_s2_cubes(6, [1, 2], size_px=16, n_tiles=2, seed=0)
>>> ds = image_features(cubes, n_tiles=2, vit_model="vit_micro", image_size=32)
>>> ds["vit"].dims, ds["radiomics"].shape, ds["tile_class"].shape
(('location', 'week', 'vit_feature'), (2, 6, 4, 9), (2, 6, 2, 2))
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import FileFormatError, InvalidInputError
from ..progress import import_quietly, progress_bar
from ..seeding import seed_torch
from .clouds import CLEAR, cloud_shadow_tiles, replace_cloud_tiles, time_dim
from .radiomics import radiomics_features

__all__ = ["build_vit", "image_features", "vit_embeddings"]

if TYPE_CHECKING:
    import torch

    from .weeks import WeekLike


# --------------------------------------------------------------------------------------------------
# ViT
# --------------------------------------------------------------------------------------------------
def build_vit(
    model_name: str = "vit_tiny_patch16_224",
    weights_path: str | Path | None = None,
    seed: int = 0,
    image_size: int = 224,
) -> torch.nn.Module:
    """A timm ViT without classifier head: local weights when ``weights_path`` is given, else random init."""
    import torch

    # timm's hub helpers import tqdm.auto, which warns in kernels without ipywidgets
    timm = import_quietly("timm")
    seed_torch(seed)
    if model_name == "vit_micro":
        from timm.models.vision_transformer import VisionTransformer

        model = VisionTransformer(
            img_size=image_size, patch_size=16, embed_dim=64, depth=2, num_heads=2, num_classes=0
        )
        if weights_path is not None:
            state = torch.load(Path(weights_path), map_location="cpu", weights_only=True)
            model.load_state_dict(state)
    elif weights_path is not None:
        path = Path(weights_path)
        if not path.is_file():
            raise FileFormatError(
                f"ViT weights {path} do not exist; give a local .pth/.safetensors/.bin file"
            )
        model = timm.create_model(
            model_name, pretrained=True, num_classes=0, pretrained_cfg_overlay={"file": str(path)}
        )
    else:
        try:
            model = timm.create_model(model_name, pretrained=False, num_classes=0)
        except RuntimeError as exc:
            raise InvalidInputError(f"timm has no model {model_name!r}: {exc}") from exc
    model.eval()
    return model


def vit_embeddings(
    cube: xr.DataArray,
    *,
    model_name: str = "vit_tiny_patch16_224",
    weights_path: str | Path | None = None,
    rgb_bands: Sequence[str] = ("B04", "B03", "B02"),
    reflectance_max: float | None = None,
    image_size: int | None = None,
    batch_size: int = 16,
    seed: int = 0,
    progress: bool | None = None,
    model: torch.nn.Module | None = None,
) -> xr.DataArray:
    """ViT embedding of each week's true-colour image, as ``(week, vit_feature)``.

    Parameters
    ----------
    cube : DataArray (week, band, y, x)
    model_name : str
        A timm ViT name, or ``"vit_micro"``. Randomly initialised (from ``seed``) unless ``weights_path``.
    weights_path : path, optional
        Local weights file for ``model_name`` (never downloaded).
    reflectance_max : float, optional
        Value mapped to full brightness (default: the cube's 99th percentile of the RGB bands).
    image_size : int, optional
        Input side in pixels (default: the model's, 224).

    Returns
    -------
    DataArray (week, vit_feature); ``attrs["weights"]`` says whether they are random or loaded.
    """
    import torch

    t = time_dim(cube)
    missing = [b for b in rgb_bands if b not in cube["band"].to_numpy().tolist()]
    if missing:
        raise InvalidInputError(f"cube lacks bands {missing} for the ViT")
    if model is None:
        model = build_vit(model_name, weights_path, seed, image_size or 224)
    size = image_size or int(model.patch_embed.img_size[0])
    rgb = cube.sel(band=list(rgb_bands)).transpose(t, "band", "y", "x").to_numpy().astype(np.float32)
    if reflectance_max is None:
        finite = rgb[np.isfinite(rgb)]
        reflectance_max = float(np.percentile(finite, 99)) if finite.size else 1.0
    rgb = np.nan_to_num(np.clip(rgb / max(reflectance_max, 1e-12), 0, 1))
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    mean = torch.tensor(cfg.get("mean", (0.5, 0.5, 0.5)), dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(cfg.get("std", (0.5, 0.5, 0.5)), dtype=torch.float32).view(1, 3, 1, 1)
    feats = []
    with torch.no_grad():
        for s in progress_bar(range(0, len(rgb), batch_size), desc="ViT", enabled=progress, leave=False):
            x = torch.as_tensor(rgb[s : s + batch_size])
            x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
            feats.append(model((x - mean) / std).numpy())
    emb = np.concatenate(feats).astype(np.float32)
    weights = f"local file {weights_path}" if weights_path else f"random initialisation (seed={seed})"
    return xr.DataArray(
        emb,
        dims=(t, "vit_feature"),
        coords={t: cube[t].to_numpy(), "vit_feature": np.arange(emb.shape[1])},
        attrs={
            "model_name": model_name,
            "weights": weights,
            "image_size": size,
            "rgb_bands": list(rgb_bands),
        },
    )


# --------------------------------------------------------------------------------------------------
# the DengueNet feature pipeline
# --------------------------------------------------------------------------------------------------
def image_features(
    cubes: xr.DataArray,
    *,
    train_end: WeekLike | None = None,
    n_tiles: int = 16,
    radiomics_tiles: int | None = None,
    vit_model: str = "vit_tiny_patch16_224",
    weights_path: str | Path | None = None,
    image_size: int | None = None,
    n_levels: int = 16,
    seed: int = 0,
    progress: bool | None = None,
    n_jobs: int | None = 1,
) -> xr.Dataset:
    """DengueNet's image branch inputs for every location: cloud/shadow tiles replaced, then ViT and
    radiomics.

    Parameters
    ----------
    cubes : DataArray (location, week, band, y, x) or (week, band, y, x)
    train_end : week label or date, optional
        Last training week: cloud thresholds, replacement tiles and the radiomics grey-level range use only
        weeks up to it (None: all weeks).
    n_tiles : int
        Tiles per side for the cloud/shadow rule; ``radiomics_tiles`` (default the same) for the radiomics
        grid.
    vit_model, weights_path, image_size : see :func:`vit_embeddings`
    n_jobs : int or None
        Locations worked on at once, in threads of this process (joblib's convention: -1 every core); each
        runs its torch and BLAS calls on one thread, so the features equal those of ``n_jobs=1`` bit for bit.

    Returns
    -------
    Dataset with ``vit`` (location, week, vit_feature), ``radiomics`` (location, week, tile,
    radiomics_feature) and ``tile_class`` (location, week, tile_y, tile_x).
    """
    if "location" not in cubes.dims:
        cubes = cubes.expand_dims(location=[cubes.attrs.get("location", 0)])
    if set(cubes.dims) != {"location", "week", "band", "y", "x"}:
        raise InvalidInputError(f"cubes must have dims (location, week, band, y, x), got {cubes.dims}")
    from joblib import Parallel, delayed

    from .models import single_thread

    def one(loc: Any) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray]:
        cube = cubes.sel(location=loc)
        flags = cloud_shadow_tiles(cube, train_end, n_tiles=n_tiles)
        clean = replace_cloud_tiles(cube, flags, train_end)
        rad = radiomics_features(
            clean,
            n_tiles=radiomics_tiles or n_tiles,
            n_levels=n_levels,
            value_range=_training_range(clean, train_end),
            progress=progress,
        )
        vit = vit_embeddings(
            clean,
            model_name=vit_model,
            weights_path=weights_path,
            image_size=image_size,
            seed=seed,
            progress=progress,
            model=model,
        )
        return vit, rad, flags

    locations = cubes["location"].to_numpy()
    with single_thread(torch=True):
        model = build_vit(vit_model, weights_path, seed, image_size or 224)
        parts = Parallel(n_jobs=n_jobs, prefer="threads")(delayed(one)(loc) for loc in locations)
    vits, rads, flags = (list(x) for x in zip(*parts, strict=True))
    loc_index = pd.Index(locations, name="location")
    ds = xr.Dataset(
        {
            "vit": xr.concat(vits, dim=loc_index),
            "radiomics": xr.concat(rads, dim=loc_index),
            "tile_class": xr.concat(flags, dim=loc_index),
        }
    )
    ds.attrs = {
        "vit_weights": vits[0].attrs["weights"],
        "vit_model": vit_model,
        "train_end": str(train_end) if train_end is not None else "all weeks",
        "cloud_tile_fraction": float((ds["tile_class"] != CLEAR).mean()),
    }
    return ds


def _training_range(clean: xr.DataArray, train_end: WeekLike | None) -> tuple[float, float] | None:
    """1st-99th percentile of B12 over the training weeks (the radiomics grey-level range), or None."""
    weeks = pd.DatetimeIndex(clean["week"].to_numpy())
    b12 = clean.sel(week=weeks[weeks <= _end(train_end, weeks)]).sel(band="B12").to_numpy()
    b12 = b12[np.isfinite(b12)]
    if not b12.size:
        return None
    lo, hi = float(np.percentile(b12, 1)), float(np.percentile(b12, 99))
    return (lo, lo + 1e-6) if hi <= lo else (lo, hi)


def _end(train_end, weeks: pd.DatetimeIndex) -> pd.Timestamp:
    from .weeks import week_end

    if train_end is None:
        return weeks[-1]
    return week_end(train_end) if isinstance(train_end, (str, tuple)) else pd.Timestamp(train_end)
