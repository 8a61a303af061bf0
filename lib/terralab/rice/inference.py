"""Applying a rice model: windowed tiled inference with blending (one code path for arrays and GeoTIFFs),
per-pixel probabilities for points, the ``quality`` flag, and the majority-filter clean-up.

:func:`run_tiled` reads a :class:`WindowSource` strip by strip: memory stays O(classes × tile × width + bands
× tile² × batch) whatever the raster size. :func:`predict` runs it over an in-memory stack;
:func:`terralab.rice.geotiff.predict_geotiff` over a GeoTIFF.

Example
-------
>>> from terralab import rice
>>> stack, truth = rice.synthetic.scene(height_px=32, width_px=32, seed=0)
>>> model = rice.fit(stack, truth, model="dnn", bands="RGBN", epochs=1, hidden=[8], progress=False)
>>> classes = predict(model, stack, tile=32, overlap=8, progress=False)
>>> classes.dims, classes.shape, str(classes.dtype), str(classes["quality"].dtype)
(('y', 'x'), (32, 32), 'int16', 'int8')
>>> bool(((classes >= -1) & (classes < 5)).all())
True
>>> window_starts(100, 32, 24)  # tiles of 32 px every 24 px; the last one ends at the edge
[0, 24, 48, 68]
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, overload

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InvalidInputError
from ..progress import progress_bar
from .checkpoint import RiceModel
from .clouds import MASK_BAND_PREFIXES, band_group, is_optical, season_masks
from .features import INDICES, SEASONS, check_stack, select_bands
from .inputs import model_inputs, pad_to, point_matrix, select_features
from .labels import NODATA
from .networks import import_torch

__all__ = [
    "QUALITY_ATTRS",
    "WindowSource",
    "block_inputs",
    "check_something_observed",
    "majority_filter",
    "point_inputs",
    "predict",
    "predict_proba_matrix",
    "read_bands",
    "run_tiled",
    "window_starts",
]

#: Meaning of the ``quality`` flag of predictions (CF flag conventions).
QUALITY_ATTRS = {
    "long_name": "what the prediction rests on",
    "flag_values": [-1, 0, 1, 2],
    "flag_meanings": "nodata all_optical_seasons_clear some_optical_season_masked no_optical_data",
    "units": "1",
}

#: ``write_rows(r0, classes (h, w), proba (K, h, w) or None, quality (h, w))`` receives finished rows.
RowWriter = Callable[[int, np.ndarray, "np.ndarray | None", np.ndarray], None]


@dataclass(frozen=True)
class WindowSource:
    """A raster read window by window: ``read(r0, r1, c0, c1)`` gives float32 ``(band, h, w)`` of ``bands``;
    ``read_mask`` (optional) the explicit cloud masks ``{season: bool (h, w)}`` of that window."""

    read: Callable[[int, int, int, int], np.ndarray]
    height: int
    width: int
    bands: Sequence[str]
    read_mask: Callable[[int, int, int, int], dict | None] | None = None

    def mask(self, r0: int, r1: int, c0: int, c1: int) -> dict | None:
        return None if self.read_mask is None else self.read_mask(r0, r1, c0, c1)

    def inputs(
        self, model: RiceModel, r0: int, r1: int, c0: int, c1: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(x, nodata, quality)`` of the window for ``model`` (see :func:`block_inputs`)."""
        return block_inputs(model, self.read(r0, r1, c0, c1), self.bands, self.mask(r0, r1, c0, c1))


def _blend_window(tile: int, overlap: int) -> np.ndarray:
    """Separable weights that ramp linearly over ``overlap`` pixels at each edge (never zero)."""
    i = np.arange(tile, dtype=np.float32)
    ramp = (
        np.minimum(1.0, np.minimum(i + 1, tile - i) / (overlap + 1))
        if overlap > 0
        else np.ones(tile, np.float32)
    )
    return np.outer(ramp, ramp).astype(np.float32)


def window_starts(n: int, tile: int, step: int) -> list[int]:
    """Starts of windows of ``tile`` px every ``step`` px over ``n`` px; the last one ends at ``n``."""
    if n <= tile:
        return [0]
    s = list(range(0, n - tile + 1, step))
    if s[-1] + tile < n:
        s.append(n - tile)
    return s


def block_inputs(
    model: RiceModel, block: np.ndarray, band_list: Sequence[str], cloud_mask: dict | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x (inputs, h, w), nodata (h, w), quality (h, w) int8) of a raw block for any model."""
    if model.config.get("stack_inputs"):
        return model_inputs(
            model.bands,
            model.normalisation,
            model.config.get("masking"),
            block,
            band_list,
            cloud_mask=cloud_mask,
        )
    feats = select_features(model.bands, block, band_list)  # a model trained on points reads raw values
    nodata = np.isnan(feats).any(axis=0)
    return feats, nodata, np.where(nodata, -1, 0).astype(np.int8)


def read_bands(model: RiceModel, available: Sequence[str]) -> list[str]:
    """Bands to read from a source: the model's, the RGBN of each season it reads optically (for indices and
    the cloud test) and Sentinel-2 mask bands."""
    seasons = {g.split("_", 1)[1] for g in (band_group(b) for b in model.bands) if is_optical(g)}
    # the shadow test compares a season with the other one: a masked model reads both seasons' RGBN
    extra = [
        f"{b}_{s}"
        for s in SEASONS
        for b in ("red", "green", "blue", "nir")
        if s in seasons or model.masked_groups
    ]
    extra += [f"{p}{s}" for s in SEASONS for p in MASK_BAND_PREFIXES]
    wanted = [b for b in model.bands if b in available] + [b for b in extra if b in available]
    return list(dict.fromkeys(wanted))


def run_tiled(
    model: RiceModel,
    source: WindowSource,
    write_rows: RowWriter,
    *,
    tile: int,
    overlap: int,
    batch_size: int,
    want_proba: bool,
    device: str,
    flips: bool = False,
    progress: bool | None = None,
) -> None:
    """Tiled inference over a raster read and written strip by strip.

    ``write_rows(r0, classes, proba, quality)`` receives finished rows. Memory stays O(classes × tile × width
    + bands × tile² × batch): tiles are read a batch at a time and blended into a strip accumulator; rows that
    no later tile touches are final and are written out before the next row of tiles is read. Per-pixel models
    (dnn, rf) read strips of about a million pixels instead.
    """
    if model.kind != "unet":
        _run_per_pixel(model, source, write_rows, want_proba=want_proba, device=device, progress=progress)
        return
    if overlap < 0 or overlap >= tile:
        raise InvalidInputError(f"overlap must be in [0, tile) pixels, got overlap={overlap}, tile={tile}")
    stride = model.stride
    # the network needs sides that are multiples of its stride: pad the tile (and small rasters) up
    tile_p = int(math.ceil(max(tile, stride) / stride) * stride)
    step = max(1, tile - overlap)
    weight = _blend_window(tile_p, overlap)
    row_starts = window_starts(source.height, tile, step)
    col_starts = window_starts(source.width, tile, step)
    strip = _Strip(model.n_classes, min(tile, source.height), source.width, write_rows, want_proba)
    net = model.net.to(device).eval()
    for r0 in progress_bar(row_starts, desc="predict", total=len(row_starts), enabled=progress):
        strip.flush(r0)
        r1 = min(source.height, r0 + tile)
        off, h = r0 - strip.start, r1 - r0
        # one batch of tiles at a time: the input held in memory is batch_size tiles, not the whole strip
        for i in range(0, len(col_starts), batch_size):
            spans = [(c0, min(source.width, c0 + tile)) for c0 in col_starts[i : i + batch_size]]
            xs = []
            for c0, c1 in spans:
                # each tile gets its own cloud test, so in-memory and GeoTIFF runs see the very same inputs
                x, nodata, quality = source.inputs(model, r0, r1, c0, c1)
                strip.mark(off, h, c0, c1, nodata, quality)
                xs.append(pad_to(x, tile_p, tile_p, 0.0))
            xb = np.stack(xs)
            del xs
            probs = _tile_probabilities(net, xb, model.temperature, flips=flips, device=device)
            for (c0, c1), p in zip(spans, probs):
                strip.add(off, h, c0, c1, p, weight)
    strip.flush(source.height)


def _run_per_pixel(
    model: RiceModel, source: WindowSource, write_rows: RowWriter, *, want_proba: bool, device: str, progress
) -> None:
    """dnn / rf over strips of about a million pixels."""
    K, height, width = model.n_classes, source.height, source.width
    rows = max(1, min(height, (1 << 20) // max(width, 1)))
    starts = range(0, height, rows)
    for r0 in progress_bar(starts, desc="predict", total=len(starts), enabled=progress):
        r1 = min(height, r0 + rows)
        x, nodata, quality = source.inputs(model, r0, r1, 0, width)
        flat = x.reshape(x.shape[0], -1).T
        ok = ~nodata.ravel()
        proba = np.zeros((flat.shape[0], K), np.float32)
        if ok.any():
            proba[ok] = predict_proba_matrix(
                model, flat[ok], device, inputs=bool(model.config.get("stack_inputs"))
            )
        classes = np.where(ok, proba.argmax(1), NODATA).reshape(r1 - r0, width).astype(np.int16)
        write_rows(r0, classes, proba.T.reshape(K, r1 - r0, width) if want_proba else None, quality)


def _tile_probabilities(net, xb: np.ndarray, temperature: float, *, flips: bool, device: str) -> np.ndarray:
    """Softmax probabilities (tiles, K, h, w) of a batch of input tiles at ``temperature``."""
    torch = import_torch()
    with torch.no_grad():
        xt = torch.as_tensor(xb, device=device)
        probs = torch.softmax(net(xt) / temperature, dim=1)
        if flips:  # test-time augmentation: the mean over the four flips of each tile
            for dims in ((3,), (2,), (2, 3)):
                probs += torch.softmax(net(torch.flip(xt, dims)) / temperature, dim=1).flip(dims)
            probs /= 4
        return probs.cpu().numpy()


class _Strip:
    """Blended probabilities of the rows that a row of tiles reaches; finished rows go to ``write_rows``."""

    def __init__(self, n_classes: int, rows: int, width: int, write_rows: RowWriter, want_proba: bool):
        self.rows, self.write_rows, self.want_proba = rows, write_rows, want_proba
        self.acc = np.zeros((n_classes, rows, width), np.float32)
        self.wsum = np.zeros((rows, width), np.float32)
        self.bad = np.zeros((rows, width), bool)
        self.qual = np.zeros((rows, width), np.int8)
        self.start = 0  # raster row of the buffers' first row

    def mark(self, off: int, h: int, c0: int, c1: int, nodata: np.ndarray, quality: np.ndarray) -> None:
        """Record a tile's nodata and quality (the worst quality over overlapping tiles)."""
        self.bad[off : off + h, c0:c1] |= nodata
        np.maximum(self.qual[off : off + h, c0:c1], quality, out=self.qual[off : off + h, c0:c1])

    def add(self, off: int, h: int, c0: int, c1: int, p: np.ndarray, weight: np.ndarray) -> None:
        """Blend a tile's probabilities ``p`` (K, ≥h, ≥w) in with the ramp ``weight``."""
        w = c1 - c0
        wt = weight[:h, :w]
        self.acc[:, off : off + h, c0:c1] += p[:, :h, :w] * wt
        self.wsum[off : off + h, c0:c1] += wt

    def flush(self, upto: int) -> None:
        """Write rows before raster row ``upto`` (no later tile reaches them) and shift the rest up."""
        n = upto - self.start
        if n <= 0:
            return
        acc, wsum, bad, qual = self.acc, self.wsum, self.bad, self.qual
        classes = np.where(bad[:n], NODATA, acc[:, :n].argmax(0)).astype(np.int16)
        proba = acc[:, :n] / np.maximum(wsum[:n], 1e-12) if self.want_proba else None
        self.write_rows(self.start, classes, proba, np.where(bad[:n], -1, qual[:n]).astype(np.int8))
        keep = self.rows - n  # rows still receiving contributions move to the top of the buffers
        for buf in (acc[:], wsum[None], bad[None], qual[None]):
            if keep > 0:
                buf[:, :keep] = buf[:, n:].copy()
            buf[:, max(keep, 0) :] = 0
        self.start = upto


@overload
def predict(
    model: RiceModel,
    data: xr.DataArray,
    *,
    tile: int = ...,
    overlap: int = ...,
    batch_size: int = ...,
    output: str = ...,
    return_proba: Literal[False] = ...,
    cloud_mask: xr.DataArray | None = ...,
    flips: bool = ...,
    device: str = ...,
    progress: bool | None = ...,
) -> xr.DataArray: ...


@overload
def predict(
    model: RiceModel,
    data: xr.DataArray,
    *,
    tile: int = ...,
    overlap: int = ...,
    batch_size: int = ...,
    output: str = ...,
    return_proba: Literal[True],
    cloud_mask: xr.DataArray | None = ...,
    flips: bool = ...,
    device: str = ...,
    progress: bool | None = ...,
) -> xr.Dataset: ...


@overload
def predict(
    model: RiceModel,
    data: pd.DataFrame,
    *,
    tile: int = ...,
    overlap: int = ...,
    batch_size: int = ...,
    output: str = ...,
    return_proba: bool = ...,
    cloud_mask: xr.DataArray | None = ...,
    flips: bool = ...,
    device: str = ...,
    progress: bool | None = ...,
) -> pd.Series | pd.DataFrame: ...


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
    progress: bool | None = None,
) -> xr.DataArray | xr.Dataset | pd.Series | pd.DataFrame:
    """Apply a model to a feature stack (tiled, blended); for points see :func:`predict_points`.

    Each input has one return type: a stack gives a DataArray (``return_proba=True``: a Dataset); points
    (deprecated here, use :func:`terralab.rice.predict_points`) give what they always did, a Series or a
    DataFrame, with a DeprecationWarning.

    Parameters
    ----------
    model
        From :func:`fit` or :func:`load`.
    data
        ``xr.DataArray (band, y, x)`` holding (at least) the model's bands (a DataFrame of points is
        deprecated: :func:`terralab.rice.predict_points`).
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
    flips
        Test-time augmentation (U-Net): average the probabilities over the four flips of each tile.
    device
        Torch device.
    progress
        Progress bar over rows of tiles: None (default) when a person is watching, never in a report run
        (:func:`terralab.progress.progress_bar`).

    Returns
    -------
    xr.DataArray or xr.Dataset or pd.Series or pd.DataFrame
        Stack input: int16 ``(y, x)`` class ids on the same grid and CRS, −1 where nothing usable was
        observed, with a ``quality`` coordinate (int8: 0 every optical season clear, 1 some season
        cloudy/shadowed, 2 predicted without optical data — from radar and terrain only —, −1 nodata).
        ``output="proba"``: float32 ``(class, y, x)`` probabilities. ``return_proba=True``: an ``xr.Dataset``
        with ``classes`` (the class map), ``probability`` (class, y, x), ``confidence`` (the largest
        probability) and ``quality``. Points (deprecated): a Series of class ids (−1 for rows with NaN);
        ``output="proba"``: a DataFrame of probabilities, one column per class name; ``return_proba=True``:
        that DataFrame with ``class`` and ``confidence`` columns first.
    """
    if not isinstance(model, RiceModel):
        raise InvalidInputError(
            f"model must be a RiceModel (from rice.fit or rice.load), got {type(model).__name__}"
        )
    if output not in ("class", "proba"):
        raise InvalidInputError("output must be 'class' or 'proba'")
    if isinstance(data, pd.DataFrame):
        from .points import predict_points

        warnings.warn(
            "rice.predict(model, points) is deprecated: use rice.predict_points(model, points), which always "
            "returns a DataFrame (column 'class', or probabilities)",
            DeprecationWarning,
            stacklevel=2,
        )
        table = predict_points(model, data, output=output, return_proba=return_proba, device=device)
        return table["class"] if output == "class" and not return_proba else table
    stack = check_stack(data)
    select_bands(stack.isel(y=slice(0, 1), x=slice(0, 1)), model.bands)  # fail early on missing bands
    want_proba = output == "proba" or return_proba
    target = _ArrayTarget(model.n_classes, stack.sizes["y"], stack.sizes["x"], want_proba)
    run_tiled(
        model,
        _array_source(stack, season_masks(cloud_mask, stack)),
        target.write_rows,
        tile=tile,
        overlap=overlap,
        batch_size=batch_size,
        want_proba=want_proba,
        device=device,
        flips=flips,
        progress=progress,
    )
    check_something_observed(model, target.quality)
    return _stack_result(
        model, stack, target.classes, target.quality, target.proba, output=output, return_proba=return_proba
    )


def _array_source(stack: xr.DataArray, masks: dict | None) -> WindowSource:
    """An in-memory stack (and its explicit cloud masks) read window by window."""
    values = stack.values

    def read_window(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        return values[:, r0:r1, c0:c1].astype(np.float32)

    def read_mask(r0: int, r1: int, c0: int, c1: int):
        return {k: m[r0:r1, c0:c1] for k, m in masks.items()} if masks else None

    bands = [str(b) for b in stack["band"].values]
    return WindowSource(read_window, stack.sizes["y"], stack.sizes["x"], bands, read_mask)


class _ArrayTarget:
    """In-memory class map, quality flag and (optionally) probabilities that :func:`run_tiled` writes into."""

    def __init__(self, n_classes: int, height: int, width: int, want_proba: bool):
        self.classes = np.full((height, width), NODATA, np.int16)
        self.quality = np.full((height, width), -1, np.int8)
        self.proba = np.zeros((n_classes, height, width), np.float32) if want_proba else None

    def write_rows(self, r0: int, classes: np.ndarray, proba, quality: np.ndarray) -> None:
        r1 = r0 + classes.shape[0]
        self.classes[r0:r1] = classes
        self.quality[r0:r1] = quality
        if self.proba is not None and proba is not None:
            self.proba[:, r0:r1] = np.where(classes[None] >= 0, proba, np.nan)


def _stack_result(
    model: RiceModel,
    stack: xr.DataArray,
    out: np.ndarray,
    quality: np.ndarray,
    proba_out: np.ndarray | None,
    *,
    output: str,
    return_proba: bool,
) -> xr.DataArray | xr.Dataset:
    """The class map / probabilities / Dataset of :func:`predict` on the stack's grid and CRS."""
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
    if proba_out is not None:
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


def predict_proba_matrix(
    model: RiceModel,
    X: np.ndarray,
    device: str = "cpu",
    *,
    inputs: bool = False,
    calibrated: bool = True,
) -> np.ndarray:
    """Class probabilities (n, K) of per-pixel rows X for dnn and rf: raw band values, or (``inputs``) the
    network inputs of :func:`model_inputs`. ``calibrated`` applies the model's temperature."""
    if model.kind == "rf":
        proba = np.zeros((X.shape[0], model.n_classes), np.float32)
        if X.shape[0]:
            proba[:, model.net.classes_.astype(int)] = model.net.predict_proba(X)
        log_p = np.log(np.clip(proba, 1e-4, 1.0)) if calibrated and model.temperature != 1.0 else None
    else:
        torch = import_torch()
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


def point_inputs(model: RiceModel, points: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Rows of network inputs (n, inputs) and a nodata flag (n,) for points, for any model."""
    if not model.config.get("stack_inputs"):
        X = point_matrix(points, model.bands)
        return X, np.isnan(X).any(axis=1)
    have = [c for c in read_bands(model, list(points.columns))]
    for b in model.bands:
        if b not in have and b.split("_")[0] not in INDICES:
            raise InvalidInputError(
                f"the points lack column {b!r} the model needs; they hold {list(points.columns)}"
            )
    raw = points[have].to_numpy(dtype=np.float32).T[:, :, None]  # (band, n, 1): the per-pixel tests only
    masking = dict(model.config.get("masking") or {}) or None
    if masking is not None:
        masking["test"] = {**masking["test"], "cleanup": False, "buffer_px": 0}
    x, nodata, _ = model_inputs(model.bands, model.normalisation, masking, raw, have)
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


def check_something_observed(model: RiceModel, quality: np.ndarray) -> None:
    """All pixels cloudy (or nodata), nothing else to predict from: say so instead of returning all −1."""
    if model.masked_groups and quality.size and (quality < 0).all():
        raise InvalidInputError(
            "no pixel of the stack holds a usable optical or radar band: every pixel is cloudy, shadowed or "
            "nodata "
            "in every season the model reads (all pixels cloudy). Use a clearer image, or a model with "
            "Sentinel-1 bands (band set RGBNS or RGBNES)"
        )
