"""Earth Engine requests, shared by the rice and dengue workflows.

``import ee`` happens only inside these functions, so terralab works without the ``ee`` extra until a
function here is called.

Credentials, in this order (Earth Engine's standard mechanisms):

1. a service account: environment variables ``EE_SERVICE_ACCOUNT`` (its e-mail) and ``EE_PRIVATE_KEY_FILE``
   (its JSON key), or ``GOOGLE_APPLICATION_CREDENTIALS`` naming a service-account JSON key;
2. user credentials stored by ``earthengine authenticate`` (or ``ee.Authenticate()``), with the Cloud project
   from the ``project`` argument or ``EE_PROJECT``.

Small areas come back as ``xr.DataArray (band, y, x)`` through ``ee.data.computePixels`` (NumPy format);
large ones are exported as TFRecord patches (read them back with :mod:`terralab.rice.tfrecord`).

Example
-------
>>> from terralab import earthengine
>>> ee = earthengine.initialize(project="my-project")                     # doctest: +SKIP
>>> dem = ee.Image("USGS/SRTMGL1_003")                                       # doctest: +SKIP
>>> da = earthengine.compute_pixels(dem, (89.39, 27.42, 89.42, 27.45), scale_m=30)   # doctest: +SKIP

Tests replace the ``ee`` module with :func:`recording_ee`, which records every call instead of sending it.
"""

from __future__ import annotations

import json
import math
import os
import re
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .errors import CredentialsError, InvalidInputError, MissingDependencyError

__all__ = [
    "COMPUTE_PIXELS_MAX_BYTES",
    "METRES_PER_DEGREE",
    "compute_pixels",
    "ensure_initialized",
    "export_table_tfrecord",
    "export_tfrecord",
    "geometry",
    "initialize",
    "open_catalog_entry",
    "pixel_grid",
    "recording_ee",
]

#: Earth Engine's metres per degree for scales given in metres in a geographic CRS (equatorial).
METRES_PER_DEGREE = 111_319.49079327357
#: computePixels refuses responses above 48 MiB.
COMPUTE_PIXELS_MAX_BYTES = 48 * 1024 * 1024
_MAX_SIDE_PX = 32_768

_STATE: dict[str, Any] = {"initialised": False, "project": None}

_HOW_TO = (
    "Configure Earth Engine credentials in one of two ways: (1) a service account — set EE_SERVICE_ACCOUNT "
    "to its e-mail and EE_PRIVATE_KEY_FILE to its JSON key file (or GOOGLE_APPLICATION_CREDENTIALS to the "
    "JSON key); or (2) your user account — run `earthengine authenticate` once and set EE_PROJECT (or pass "
    "project=...) to a Cloud project registered for Earth Engine."
)


def _import_ee():
    try:
        import ee
    except ImportError as err:
        raise MissingDependencyError(
            "Earth Engine support needs the `ee` extra: pip install 'terralab[ee]' (installs earthengine-api)"
        ) from err
    return ee


def _service_account() -> tuple[str, str, str | None] | None:
    """(e-mail, key file, project from the key) of a configured service account, or None."""
    email = os.environ.get("EE_SERVICE_ACCOUNT")
    key_file = os.environ.get("EE_PRIVATE_KEY_FILE")
    if email or key_file:
        if not (email and key_file):
            raise CredentialsError(
                "EE_SERVICE_ACCOUNT and EE_PRIVATE_KEY_FILE must be set together (the service account's "
                "e-mail and its JSON key file). " + _HOW_TO
            )
        if not Path(key_file).is_file():
            raise CredentialsError(f"EE_PRIVATE_KEY_FILE={key_file} does not exist. " + _HOW_TO)
        project = None
        try:
            project = json.loads(Path(key_file).read_text()).get("project_id")
        except (OSError, ValueError):
            pass  # a .pem key has no project; EE_PROJECT or the argument must give it
        return email, key_file, project
    gac = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if gac:
        try:
            info = json.loads(Path(gac).read_text())
        except (OSError, ValueError) as err:
            raise CredentialsError(
                f"GOOGLE_APPLICATION_CREDENTIALS={gac} is not a readable JSON key ({err}). " + _HOW_TO
            ) from err
        if info.get("type") == "service_account" and info.get("client_email"):
            return info["client_email"], gac, info.get("project_id")
    return None


def initialize(project: str | None = None) -> types.ModuleType:
    """Initialise Earth Engine and return the ``ee`` module.

    Parameters
    ----------
    project
        Google Cloud project to bill requests to (default: ``EE_PROJECT``, else the service account's
        project).

    Raises
    ------
    MissingDependencyError
        ``earthengine-api`` is not installed (the ``ee`` extra).
    CredentialsError
        No usable credentials; the message explains both ways to configure them.
    """
    ee = _import_ee()
    project = project or os.environ.get("EE_PROJECT")
    if _STATE["initialised"] and _STATE.get("module") is ee and project in (None, _STATE["project"]):
        return ee
    account = _service_account()
    try:
        if account is not None:
            email, key_file, key_project = account
            credentials = ee.ServiceAccountCredentials(email, key_file=key_file)
            project = project or key_project
            ee.Initialize(credentials=credentials, project=project)
        else:
            ee.Initialize(project=project)
    except Exception as err:
        who = f"service account {account[0]}" if account else "stored user credentials"
        raise CredentialsError(
            f"Earth Engine could not be initialised with {who}: {err}. " + _HOW_TO
        ) from err
    _STATE.update(initialised=True, project=project, module=ee)
    return ee


def ensure_initialized() -> types.ModuleType:
    """The `ee` module, initialised with :func:`initialize` on first use (request builders call this)."""
    ee = _import_ee()
    if not (_STATE["initialised"] and _STATE.get("module") is ee):
        return initialize()
    return ee


def open_catalog_entry(entry: Any, **kwargs: Any) -> Any:
    """The ``ee.Image`` or ``ee.ImageCollection`` a data-catalog Earth Engine entry names, bands selected.

    Initialises Earth Engine with :func:`initialize` (the one set of credential rules). ``kwargs``: ``bands``
    overrides the entry's bands; ``project`` the Cloud project. ``terralab.catalog.open`` calls this for
    entries of kind ``earthengine``.
    """
    ee = initialize(kwargs.get("project"))
    asset = entry.asset
    kind = (getattr(entry, "ee_type", None) or "").lower()
    obj = ee.Image(asset) if kind == "image" else ee.ImageCollection(asset)
    bands = kwargs.get("bands", getattr(entry, "bands", None))
    return obj.select(list(bands)) if bands else obj


def _is_bbox(region: Any) -> bool:
    return (
        isinstance(region, (tuple, list, np.ndarray))
        and len(region) == 4
        and all(isinstance(v, (int, float, np.integer, np.floating)) for v in region)
    )


def _check_bbox(region: Sequence[float]) -> tuple[float, float, float, float]:
    xmin, ymin, xmax, ymax = (float(v) for v in region)
    if not (xmin < xmax and ymin < ymax):
        raise InvalidInputError(
            f"region {tuple(region)} must be (xmin, ymin, xmax, ymax) with xmin < xmax and ymin < ymax"
        )
    if not (-180 <= xmin <= 180 and -180 <= xmax <= 180 and -90 <= ymin <= 90 and -90 <= ymax <= 90):
        raise InvalidInputError(f"region {tuple(region)} is not a lon/lat box in degrees (EPSG:4326)")
    return xmin, ymin, xmax, ymax


def geometry(region: Any) -> Any:
    """An ``ee.Geometry`` for a region: a lon/lat box (xmin, ymin, xmax, ymax) or already a geometry."""
    ee = ensure_initialized()
    if _is_bbox(region):
        xmin, ymin, xmax, ymax = _check_bbox(region)
        return ee.Geometry.Rectangle([xmin, ymin, xmax, ymax], proj="EPSG:4326", geodesic=False)
    return region


def _bounds_lonlat(region: Any) -> tuple[float, float, float, float]:
    if _is_bbox(region):
        return _check_bbox(region)
    try:
        ring = region.bounds(maxError=1).coordinates().getInfo()
    except AttributeError as err:
        raise InvalidInputError(
            "region must be (xmin, ymin, xmax, ymax) in lon/lat or an ee.Geometry, got "
            f"{type(region).__name__}"
        ) from err
    coords = np.asarray(ring, dtype=float).reshape(-1, 2)
    return (
        float(coords[:, 0].min()),
        float(coords[:, 1].min()),
        float(coords[:, 0].max()),
        float(coords[:, 1].max()),
    )


def pixel_grid(region: Any, *, scale_m: float, crs: str = "EPSG:4326") -> dict:
    """The pixel grid covering ``region`` at ``scale_m`` in ``crs``, as computePixels' ``grid`` dict.

    In a geographic CRS the pixel side is ``scale_m / 111 319.49`` degrees (what Earth Engine uses for a
    scale given in metres). The grid's upper-left corner is the region's, rounded down to whole pixels.
    """
    if not scale_m or scale_m <= 0:
        raise InvalidInputError(f"scale_m must be a positive number of metres, got {scale_m}")
    xmin, ymin, xmax, ymax = _bounds_lonlat(region)
    from pyproj import CRS, Transformer

    target = CRS.from_user_input(crs)
    if target.is_geographic:
        px = scale_m / METRES_PER_DEGREE
        x0, y0, x1, y1 = xmin, ymin, xmax, ymax
    else:
        px = float(scale_m)
        tr = Transformer.from_crs("EPSG:4326", target, always_xy=True)
        x0, y0, x1, y1 = tr.transform_bounds(xmin, ymin, xmax, ymax)
    left = math.floor(x0 / px) * px
    top = math.ceil(y1 / px) * px
    width = math.ceil((x1 - left) / px - 1e-9)
    height = math.ceil((top - y0) / px - 1e-9)
    return {
        "dimensions": {"width": max(width, 1), "height": max(height, 1)},
        "affineTransform": {
            "scaleX": px,
            "shearX": 0.0,
            "translateX": left,
            "shearY": 0.0,
            "scaleY": -px,
            "translateY": top,
        },
        "crsCode": crs,
    }


def compute_pixels(
    image: Any,
    region: Any,
    *,
    scale_m: float,
    crs: str = "EPSG:4326",
    bands: list[str] | None = None,
) -> xr.DataArray:
    """Fetch the pixels of an ``ee.Image`` over a small region as ``xr.DataArray (band, y, x)``.

    Parameters
    ----------
    image
        An ``ee.Image``.
    region
        ``ee.Geometry`` or a lon/lat box (xmin, ymin, xmax, ymax) in degrees.
    scale_m
        Pixel size in metres.
    crs
        Output CRS (EPSG code or WKT).
    bands
        Band names to fetch (default: all the image's bands, asked from Earth Engine).

    Returns
    -------
    xr.DataArray
        float32 (band, y, x) with band names, pixel-centre coordinates, CRS and transform (rioxarray).

    Raises
    ------
    InvalidInputError
        The area is too large for one computePixels request (48 MiB, 32 768 px a side): the message gives
        the size and suggests :func:`export_tfrecord`.
    """
    import rioxarray  # noqa: F401
    from affine import Affine

    ee = ensure_initialized()
    grid = pixel_grid(region, scale_m=scale_m, crs=crs)
    w, h = grid["dimensions"]["width"], grid["dimensions"]["height"]
    names = list(bands) if bands is not None else list(image.bandNames().getInfo())
    if not names:
        raise InvalidInputError("the image has no bands to fetch")
    n_bytes = w * h * len(names) * 8  # worst case: float64 bands
    if n_bytes > COMPUTE_PIXELS_MAX_BYTES or max(w, h) > _MAX_SIDE_PX:
        raise InvalidInputError(
            f"{w}×{h} px × {len(names)} bands at {scale_m} m is too large for computePixels (limit 48 MiB "
            "per request): use terralab.earthengine.export_tfrecord for large areas, a coarser scale_m, or a "
            "smaller region"
        )
    request = {
        "expression": image.select(names) if bands is not None else image,
        "fileFormat": "NUMPY_NDARRAY",
        "bandIds": names,
        "grid": grid,
    }
    result = ee.data.computePixels(request)
    arr = np.asarray(result)
    if arr.dtype.names:
        missing = [n for n in names if n not in arr.dtype.names]
        if missing:
            raise InvalidInputError(f"Earth Engine returned bands {arr.dtype.names}, not {missing}")
        data = np.stack([arr[n].astype(np.float32) for n in names])
    elif arr.ndim == 3 and arr.shape[-1] == len(names):
        data = np.moveaxis(arr, -1, 0).astype(np.float32)
    elif arr.ndim == 2 and len(names) == 1:
        data = arr[None].astype(np.float32)
    else:
        raise InvalidInputError(
            f"unexpected computePixels result of shape {arr.shape} for {len(names)} bands"
        )
    if data.shape[1:] != (h, w):
        raise InvalidInputError(f"computePixels returned {data.shape[1:]} pixels, expected {(h, w)}")
    a = grid["affineTransform"]
    transform = Affine(a["scaleX"], a["shearX"], a["translateX"], a["shearY"], a["scaleY"], a["translateY"])
    xs = a["translateX"] + a["scaleX"] * (np.arange(w) + 0.5)
    ys = a["translateY"] + a["scaleY"] * (np.arange(h) + 0.5)
    out = xr.DataArray(
        data,
        dims=("band", "y", "x"),
        coords={"band": names, "y": ys, "x": xs},
        name="ee_image",
        attrs={"source": "Earth Engine computePixels", "scale_m": float(scale_m)},
    )
    return out.rio.write_crs(crs).rio.write_transform(transform)


_DESCRIPTION = re.compile(r"^[A-Za-z0-9.,:;_\-]{1,100}$")


def _check_description(description: str) -> None:
    if not _DESCRIPTION.match(description or ""):
        raise InvalidInputError(
            f"task description {description!r} is not valid for Earth Engine: use 1–100 letters, digits "
            "or . , : ; _ -"
        )


def export_tfrecord(
    image: Any,
    region: Any,
    *,
    scale_m: float,
    description: str,
    patch_size: int = 256,
    bucket: str | None = None,
    folder: str | None = None,
    crs: str = "EPSG:4326",
    kernel_size: int = 0,
    max_file_size_bytes: int = 104_857_600,
) -> Any:
    """Start an export of an ``ee.Image`` as TFRecord patches (plus the "mixer" JSON georeference).

    Parameters
    ----------
    image, region, scale_m, crs
        As :func:`compute_pixels`.
    description
        Task name, also the file-name prefix.
    patch_size
        Patch side in pixels.
    bucket
        Cloud Storage bucket; ``None`` exports to Google Drive.
    folder
        Drive folder, or path prefix inside the bucket.
    kernel_size
        Extra pixels around each patch (``kernelSize``), e.g. for a network's receptive field; 0 for none.
    max_file_size_bytes
        Split output files above this size.

    Returns
    -------
    ee.batch.Task
        The started task (``task.status()`` to follow it).
    """
    ee = ensure_initialized()
    _check_description(description)
    if patch_size < 1:
        raise InvalidInputError("patch_size must be ≥ 1 pixel")
    if not scale_m or scale_m <= 0:
        raise InvalidInputError(f"scale_m must be a positive number of metres, got {scale_m}")
    options: dict[str, Any] = {
        "patchDimensions": [int(patch_size), int(patch_size)],
        "maxFileSize": int(max_file_size_bytes),
        "compressed": True,
    }
    if kernel_size:
        options["kernelSize"] = [int(kernel_size), int(kernel_size)]
    common = {
        "image": image,
        "description": description,
        "region": geometry(region),
        "scale": float(scale_m),
        "crs": crs,
        "fileFormat": "TFRecord",
        "formatOptions": options,
        "maxPixels": 1e13,
    }
    return _start_export(ee.batch.Export.image, description, bucket, folder, common)


def _start_export(
    export: Any, description: str, bucket: str | None, folder: str | None, common: dict[str, Any]
) -> Any:
    """Start ``export`` (``ee.batch.Export.image`` or ``.table``) to Drive, or to ``bucket``/``folder``."""
    if bucket is None:
        task = export.toDrive(folder=folder, fileNamePrefix=description, **common)
    else:
        prefix = f"{folder.strip('/')}/{description}" if folder else description
        task = export.toCloudStorage(bucket=bucket, fileNamePrefix=prefix, **common)
    task.start()
    return task


def export_table_tfrecord(
    collection: Any,
    *,
    description: str,
    selectors: Sequence[str] | None = None,
    bucket: str | None = None,
    folder: str | None = None,
) -> Any:
    """Start an export of an ``ee.FeatureCollection`` (e.g. sampled training points) as TFRecord.

    Read the result with :func:`terralab.rice.tfrecord.read_points`.
    """
    ee = ensure_initialized()
    _check_description(description)
    common: dict[str, Any] = {"collection": collection, "description": description, "fileFormat": "TFRecord"}
    if selectors is not None:
        common["selectors"] = list(selectors)
    return _start_export(ee.batch.Export.table, description, bucket, folder, common)


# --- a recording stand-in for the ee module, for tests -------------------------------------------------


class _Recorded:
    """An ee object that records how it was built: ``repr`` gives the call chain as Python-like text."""

    def __init__(self, fake: _RecordingEE, text: str):
        self._fake = fake
        self._text = text

    def __getattr__(self, name: str) -> _Recorded:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Recorded(self._fake, f"{self._text}.{name}")

    def __call__(self, *args, **kwargs) -> _Recorded:
        # a function mapped over a collection is run once on a placeholder, so its body is recorded too
        args = tuple(
            a(_Recorded(self._fake, "<element>")) if callable(a) and not isinstance(a, _Recorded) else a
            for a in args
        )
        parts = [_fmt(a) for a in args] + [f"{k}={_fmt(v)}" for k, v in kwargs.items()]
        text = f"{self._text}({', '.join(parts)})"
        self._fake.calls.append(text)
        if self._text.endswith(".getInfo"):
            return self._fake.get_info(self._text)
        return _Recorded(self._fake, text)

    def __repr__(self) -> str:
        return self._text

    def __iter__(self):
        raise TypeError(f"{self._text} is a server-side Earth Engine object; it cannot be iterated locally")


def _fmt(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_fmt(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return repr(value)


class _RecordingEE(types.ModuleType):
    """Module-like stand-in for ``ee``: attribute chains and calls are recorded in ``calls``."""

    def __init__(self, get_info=None, compute_pixels=None, initialize=None):
        super().__init__("ee")
        self.calls: list[str] = []
        self.requests: list[dict] = []
        self._get_info = get_info
        self.EEException = type("EEException", (Exception,), {})
        fake = self

        def _initialize(*args, **kwargs):
            shown = [_fmt(a) for a in args] + [f"{k}={_fmt(v)}" for k, v in kwargs.items()]
            fake.calls.append(f"Initialize({', '.join(shown)})")
            if initialize is not None:
                initialize(*args, **kwargs)

        def _compute(request):
            fake.requests.append(request)
            fake.calls.append("data.computePixels(...)")
            if compute_pixels is not None:
                return compute_pixels(request)
            g = request["grid"]["dimensions"]
            dtype = [(str(b), "<f4") for b in request["bandIds"]]
            return np.zeros((g["height"], g["width"]), dtype=dtype)

        self.Initialize = _initialize
        self.data = types.SimpleNamespace(computePixels=_compute)

    def get_info(self, text: str):
        if self._get_info is not None:
            return self._get_info(text)
        return None

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Recorded(self, name)

    def text(self) -> str:
        """All recorded calls, one per line (for ``assert "…" in fake.text()``)."""
        return "\n".join(self.calls)


def recording_ee(
    *,
    get_info: Callable[[str], Any] | None = None,
    compute_pixels: Callable[[dict], np.ndarray] | None = None,
    initialize: Callable[..., Any] | None = None,
) -> types.ModuleType:
    """A stand-in for the ``ee`` module that records the requests built, for tests without network.

    Parameters
    ----------
    get_info
        ``f(call_text) -> value`` answering ``.getInfo()`` calls (default None).
    compute_pixels
        ``f(request) -> numpy array`` answering ``ee.data.computePixels`` (default: zeros of the grid's size).
    initialize
        ``f(*args, **kwargs)`` run by ``ee.Initialize`` (raise from it to simulate missing credentials).

    Example
    -------
    >>> import sys
    >>> fake = recording_ee()
    >>> sys.modules["ee"] = fake                                             # doctest: +SKIP
    >>> fake.ImageCollection("COPERNICUS/S1_GRD").filterDate("2021-03-01", "2021-06-01")
    ImageCollection('COPERNICUS/S1_GRD').filterDate('2021-03-01', '2021-06-01')
    """
    fake = _RecordingEE(get_info=get_info, compute_pixels=compute_pixels, initialize=initialize)
    return fake


def _reset_state() -> None:
    """Forget the initialisation (tests switch ``ee`` modules)."""
    _STATE.update(initialised=False, project=None, module=None)
