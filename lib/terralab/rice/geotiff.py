"""Classify a feature GeoTIFF of any size into a class GeoTIFF, window by window (:func:`predict_geotiff`).

The same tiled inference as :func:`terralab.rice.predict` (:func:`terralab.rice.inference.run_tiled`), read
from and written to rasterio windows; the output is written to a temporary file and renamed when complete.

Example
-------
>>> import rasterio
>>> from terralab import rice
>>> stack, truth = rice.synthetic.scene(height_px=32, width_px=32, seed=0)
>>> model = rice.fit(stack, truth, model="dnn", bands="RGBN", epochs=1, hidden=[8], progress=False)
>>> src = rice.features.write_stack(stack, "features.tif")
>>> predict_geotiff(model, src, "classes.tif", tile=32, overlap=8, progress=False).name
'classes.tif'
>>> with rasterio.open("classes.tif") as out:
...     out.descriptions, out.dtypes[0], out.shape
(('class', 'quality', 'confidence'), 'int16', (32, 32))
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import DataNotAvailableError, FileFormatError, InvalidInputError, OutputLocationError
from ..files import atomic_path
from .checkpoint import RiceModel
from .features import select_bands
from .inference import WindowSource, read_bands, run_tiled
from .labels import NODATA

__all__ = ["predict_geotiff"]

_PROBABILITY = ("max", "all", None)
_QUALITY_TAG = "0 all optical seasons clear, 1 some optical season masked, 2 no optical data"


def _check_output_path(dst_path: Path, src_path: Path) -> None:
    """Refuse an output path that cannot become a file before any work is done."""
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
    progress: bool | None = None,
) -> Path:
    """Classify a feature GeoTIFF into a class GeoTIFF, reading and writing window by window.

    Band names come from the source's band descriptions (as written by
    :func:`~terralab.rice.features.write_stack`); ``cloud_prob_<season>`` / ``scl_<season>`` bands, if
    present, are used as cloud masks. Memory is bounded by a strip of ``tile`` rows, whatever the raster size.

    The output is int16, nodata −1, tiled, deflate: band 1 ``class``; band 2 ``quality`` (0 every optical
    season clear, 1 some season masked, 2 predicted without optical data); then, with ``probability="max"``
    (default) one band ``confidence`` (the predicted class's calibrated probability), with ``"all"`` one band
    per class (``p_<class name>``), with None none. Probabilities are stored × 10,000 (band scale 1e-4, which
    ``rioxarray.open_rasterio(mask_and_scale=True)`` applies). It is written to a temporary file beside
    ``dst_path`` and renamed when complete. ``gdal_cache_mb`` caps GDAL's block cache (MiB). ``progress``:
    a bar over rows of tiles, None (default) when a person is watching
    (:func:`terralab.progress.progress_bar`).

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

    src_path, dst_path = Path(src_path), Path(dst_path)
    if probability not in _PROBABILITY:
        raise InvalidInputError(f"probability must be 'max', 'all' or None, got {probability!r}")
    _check_output_path(dst_path, src_path)
    if not src_path.exists():
        raise DataNotAvailableError(f"{src_path} does not exist")
    prob_names = {"max": ["confidence"], "all": [f"p_{c}" for c in model.class_names], None: []}[probability]
    try:
        # GDAL's block cache defaults to 5 % of RAM and would grow with the raster: cap it
        with (
            atomic_path(dst_path) as tmp,
            rasterio.Env(GDAL_CACHEMAX=int(gdal_cache_mb) * 1024 * 1024),
            rasterio.open(src_path) as src,
        ):
            source = _source(model, src)
            with rasterio.open(tmp, "w", **_profile(src, 2 + len(prob_names))) as dst:
                _describe(dst, model, prob_names)
                run_tiled(
                    model,
                    source,
                    _row_writer(dst, probability),
                    tile=tile,
                    overlap=overlap,
                    batch_size=batch_size,
                    want_proba=probability is not None,
                    device=device,
                    progress=progress,
                )
    except RasterioError as err:
        raise FileFormatError(
            f"{src_path} is not a readable GeoTIFF ({err}); the file is corrupt or truncated"
        ) from err
    return dst_path


def _source(model: RiceModel, src) -> WindowSource:
    """The bands the model reads from an open rasterio dataset, window by window, source nodata as NaN."""
    from rasterio.windows import Window

    names = [d or f"band_{i + 1}" for i, d in enumerate(src.descriptions)]
    probe = xr.DataArray(
        np.zeros((len(names), 1, 1), np.float32), dims=("band", "y", "x"), coords={"band": names}
    )
    select_bands(probe, model.bands)  # raises with the list of missing bands
    needed = read_bands(model, names)
    indexes = [names.index(b) + 1 for b in needed]
    nodata = src.nodata

    def read_window(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        block = src.read(indexes, window=Window(c0, r0, c1 - c0, r1 - r0)).astype(np.float32)
        if nodata is not None and not np.isnan(nodata):
            block[block == nodata] = np.nan
        return block

    return WindowSource(read_window, src.height, src.width, needed)


def _profile(src, count: int) -> dict:
    return {
        "driver": "GTiff",
        "dtype": "int16",
        "count": count,
        "height": src.height,
        "width": src.width,
        "crs": src.crs,
        "transform": src.transform,
        "nodata": NODATA,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
        "interleave": "band",
    }


def _describe(dst, model: RiceModel, prob_names: list[str]) -> None:
    for i, name in enumerate(["class", "quality", *prob_names], start=1):
        dst.set_band_description(i, name)
    dst.scales = [1.0, 1.0] + [1e-4] * len(prob_names)
    dst.update_tags(
        class_names=",".join(model.class_names),
        model=model.kind,
        quality=_QUALITY_TAG,
        temperature=str(model.temperature),
    )


def _row_writer(dst, probability: str | None):
    from rasterio.windows import Window

    width = dst.width

    def write_rows(r0: int, classes: np.ndarray, proba, quality: np.ndarray) -> None:
        window = Window(0, r0, width, classes.shape[0])
        dst.write(classes, 1, window=window)
        dst.write(quality.astype(np.int16), 2, window=window)
        if probability is None:
            return
        p = proba.max(axis=0, keepdims=True) if probability == "max" else proba
        scaled = np.where(classes[None] >= 0, np.rint(p * 10_000), NODATA).astype(np.int16)
        for j, layer in enumerate(scaled, start=3):
            dst.write(layer, j, window=window)

    return write_rows
