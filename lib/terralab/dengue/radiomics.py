"""The nine DengueNet radiomics texture features of a band, per tile and week.

On B12 (:func:`radiomics_features`), per tile of an ``n_tiles`` × ``n_tiles`` grid, the nine features
DengueNet kept, with the IBSI / pyradiomics definitions: first order ``Skewness`` and
``MeanAbsoluteDeviation`` (on the raw values); GLCM ``JointAverage``, ``ClusterShade``,
``ClusterProminence``, ``ClusterTendency``, ``Idm``, ``MCC`` (symmetric co-occurrence at distance 1 in the
four 2-D directions, each feature averaged over directions; matrix from scikit-image); GLRLM
``RunPercentage`` (own run-length matrix, four directions, averaged). Grey levels come from a
fixed-bin-number discretisation (``n_levels``) of a fixed value range, so texture is comparable across
weeks. A grey-level size-zone matrix (GLSZM, 8-connected zones) and its features are provided too
(:func:`glszm_matrix`, :func:`glszm_features`); none of the nine uses it.

The matrix functions (:func:`glcm_matrices`, :func:`glrlm_matrix`, :func:`glszm_matrix`, ``*_features``) work
on 2-D integer numpy arrays of grey levels 1..Ng, like scikit-image's; the xarray entry point is
:func:`radiomics_features`, which :func:`terralab.dengue.features.image_features` runs beside the ViT.

Examples
--------
>>> glcm_features(np.diag([2.0, 2.0, 4.0]))["JointAverage"]  # pairs (1,1), (2,2), (3,3) x2: mean level
2.25
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..errors import InvalidInputError
from ..progress import progress_bar
from .clouds import tile_edges, time_dim

__all__ = [
    "DIRECTIONS",
    "RADIOMICS_FEATURES",
    "discretize",
    "first_order_features",
    "glcm_features",
    "glcm_matrices",
    "glrlm_features",
    "glrlm_matrix",
    "glszm_features",
    "glszm_matrix",
    "radiomics_features",
    "run_counts",
    "tile_radiomics",
]

#: The nine radiomics features DengueNet kept, in its order.
RADIOMICS_FEATURES: tuple[str, ...] = (
    "ClusterShade",
    "ClusterProminence",
    "Skewness",
    "RunPercentage",
    "JointAverage",
    "ClusterTendency",
    "MeanAbsoluteDeviation",
    "Idm",
    "MCC",
)
#: The four 2-D directions as (dy, dx) offsets: 0°, 45°, 90°, 135°.
DIRECTIONS: tuple[tuple[int, int], ...] = ((0, 1), (-1, 1), (-1, 0), (-1, -1))


# --------------------------------------------------------------------------------------------------
# discretisation and first order
# --------------------------------------------------------------------------------------------------
def discretize(values: np.ndarray, n_levels: int, value_range: tuple[float, float]) -> np.ndarray:
    """Grey levels 1..n_levels of ``values`` by fixed bin number over ``value_range`` (IBSI FBN, values
    clipped)."""
    lo, hi = float(value_range[0]), float(value_range[1])
    if not hi > lo:
        raise InvalidInputError(f"value_range must increase, got {value_range}")
    if int(n_levels) < 2:
        raise InvalidInputError(f"n_levels must be ≥ 2, got {n_levels}")
    scaled = (np.clip(np.asarray(values, dtype=float), lo, hi) - lo) / (hi - lo)
    return np.minimum((scaled * n_levels).astype(int) + 1, n_levels)


def first_order_features(values: np.ndarray) -> dict[str, float]:
    """IBSI first-order ``Skewness`` (μ₃/σ³, 0 for a flat tile) and ``MeanAbsoluteDeviation`` (mean |x −
    x̄|)."""
    x = np.asarray(values, dtype=float).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        return {"Skewness": np.nan, "MeanAbsoluteDeviation": np.nan}
    d = x - x.mean()
    m2, m3 = np.mean(d**2), np.mean(d**3)
    return {
        "Skewness": float(m3 / m2**1.5) if m2 > 0 else 0.0,
        "MeanAbsoluteDeviation": float(np.mean(np.abs(d))),
    }


# --------------------------------------------------------------------------------------------------
# GLCM
# --------------------------------------------------------------------------------------------------
def glcm_matrices(levels: np.ndarray, n_levels: int, distance: int = 1) -> np.ndarray:
    """Symmetric grey-level co-occurrence counts, shape (Ng, Ng, 4): one matrix per direction of
    :data:`DIRECTIONS` (scikit-image ``graycomatrix``, levels 1..Ng on input)."""
    from skimage.feature import graycomatrix

    img = np.asarray(levels)
    if img.ndim != 2 or img.min() < 1 or img.max() > n_levels:
        raise InvalidInputError(f"levels must be a 2-D array of grey levels 1..{n_levels}")
    angles = [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4]
    P = graycomatrix(
        (img - 1).astype(np.uint16),
        distances=[distance],
        angles=angles,
        levels=n_levels,
        symmetric=True,
        normed=False,
    )
    return P[:, :, 0, :].astype(float)


_GLCM_NAMES = ("JointAverage", "ClusterShade", "ClusterProminence", "ClusterTendency", "Idm", "MCC")


def glcm_features(P: np.ndarray) -> dict[str, float]:
    """The six GLCM features of one co-occurrence matrix P (Ng × Ng counts or probabilities), pyradiomics
    names.

    With p = P / ΣP, grey levels i, j = 1..Ng, marginals px, py and means μx, μy:
    JointAverage = Σ i p(i,j); ClusterTendency / Shade / Prominence = Σ (i + j − μx − μy)^{2,3,4} p(i,j);
    Idm = Σ p(i,j) / (1 + (i − j)²); MCC = √(second largest eigenvalue of Q), Q(i,j) = Σ_k p(i,k) p(j,k) /
    (px(i) py(k)), and 1 when a single grey level occurs. A matrix without pairs gives NaN.
    """
    vals = _glcm_features_batch(np.asarray(P, dtype=float)[None])
    return {k: float(vals[k][0]) for k in _GLCM_NAMES}


def _glcm_features_batch(P: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`glcm_features` for a stack of matrices (n, Ng, Ng) at once."""
    total = P.sum(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = P / total[:, None, None]
    ng = p.shape[1]
    i, j = np.meshgrid(np.arange(1, ng + 1), np.arange(1, ng + 1), indexing="ij")
    px, py = p.sum(axis=2), p.sum(axis=1)
    mux, muy = np.einsum("nij,ij->n", p, i), np.einsum("nij,ij->n", p, j)
    c = i[None] + j[None] - (mux + muy)[:, None, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        A = np.nan_to_num(p / px[:, :, None], nan=0.0, posinf=0.0)
        B = np.nan_to_num(p / py[:, None, :], nan=0.0, posinf=0.0)
    Q = A @ np.swapaxes(B, 1, 2)
    ev = np.sort(np.abs(np.linalg.eigvals(np.nan_to_num(Q))), axis=1)[:, ::-1]
    n_present = ((px > 0) | (py > 0)).sum(axis=1)
    mcc = np.where(n_present < 2, 1.0, np.sqrt(np.clip(ev[:, 1].real if ng > 1 else 0.0, 0.0, 1.0)))
    out = {
        "JointAverage": mux,
        "ClusterShade": np.einsum("nij,nij->n", c**3, p),
        "ClusterProminence": np.einsum("nij,nij->n", c**4, p),
        "ClusterTendency": np.einsum("nij,nij->n", c**2, p),
        "Idm": np.einsum("nij,ij->n", p, 1.0 / (1.0 + (i - j) ** 2)),
        "MCC": mcc,
    }
    empty = total <= 0
    return {k: np.where(empty, np.nan, v) for k, v in out.items()}


# --------------------------------------------------------------------------------------------------
# GLRLM
# --------------------------------------------------------------------------------------------------
def _lines(img: np.ndarray, direction: tuple[int, int]) -> list[np.ndarray]:
    dy, dx = direction
    if (dy, dx) == (0, 1):
        return list(img)
    if (dy, dx) == (-1, 0):
        return list(img.T)
    if (dy, dx) == (-1, -1):  # 135°: the main diagonals (top-left to bottom-right)
        return [np.diagonal(img, k) for k in range(-img.shape[0] + 1, img.shape[1])]
    if (dy, dx) == (-1, 1):  # 45°: the anti-diagonals
        flipped = img[:, ::-1]
        return [np.diagonal(flipped, k) for k in range(-img.shape[0] + 1, img.shape[1])]
    raise InvalidInputError(f"direction {direction} is not one of {DIRECTIONS}")


def glrlm_matrix(levels: np.ndarray, n_levels: int, direction: tuple[int, int] = (0, 1)) -> np.ndarray:
    """Grey-level run-length matrix R (Ng × longest possible run) along one direction of :data:`DIRECTIONS`.

    R[i − 1, l − 1] counts the maximal runs of grey level i of length l.
    """
    img = np.asarray(levels)
    if img.ndim != 2 or img.min() < 1 or img.max() > n_levels:
        raise InvalidInputError(f"levels must be a 2-D array of grey levels 1..{n_levels}")
    R = np.zeros((n_levels, max(img.shape)), dtype=float)
    for line in _lines(img, direction):
        if line.size == 0:
            continue
        change = np.flatnonzero(np.diff(line) != 0)
        starts = np.r_[0, change + 1]
        lengths = np.diff(np.r_[starts, line.size])
        np.add.at(R, (line[starts] - 1, lengths - 1), 1)
    return R


def run_counts(levels: np.ndarray) -> np.ndarray:
    """Number of runs Nr in each direction of :data:`DIRECTIONS` (= the sums of the four GLRLMs), fast.

    A pixel starts a run unless its predecessor along the direction has the same grey level, so
    Nr = Np − (number of equal neighbouring pairs along the direction).
    """
    lv = np.asarray(levels)
    n = lv.size
    return np.array(
        [
            n - np.count_nonzero(lv[:, 1:] == lv[:, :-1]),  # 0°
            n - np.count_nonzero(lv[1:, :-1] == lv[:-1, 1:]),  # 45°
            n - np.count_nonzero(lv[1:, :] == lv[:-1, :]),  # 90°
            n - np.count_nonzero(lv[1:, 1:] == lv[:-1, :-1]),  # 135°
        ],
        dtype=float,
    )


def _length_features(M: np.ndarray, n_pixels: int, names: dict[str, str]) -> dict[str, float]:
    """Features shared by run-length and size-zone matrices (columns = length or size 1, 2, …).

    ``names`` maps each role (``percentage``, ``small``, ``large``, ``grey_nu``, ``length_nu``) to its
    pyradiomics name, in the order the result lists them; all are NaN when the matrix is empty.
    """
    M = np.asarray(M, dtype=float)
    n = M.sum()
    if n == 0:
        return dict.fromkeys(names.values(), np.nan)
    lengths = np.arange(1, M.shape[1] + 1)
    values = {
        "percentage": float(n / n_pixels),
        "small": float(np.sum(M / lengths**2) / n),
        "large": float(np.sum(M * lengths**2) / n),
        "grey_nu": float(np.sum(M.sum(axis=1) ** 2) / n),
        "length_nu": float(np.sum(M.sum(axis=0) ** 2) / n),
    }
    return {name: values[role] for role, name in names.items()}


_GLRLM_NAMES = {
    "percentage": "RunPercentage",
    "small": "ShortRunEmphasis",
    "large": "LongRunEmphasis",
    "grey_nu": "GrayLevelNonUniformity",
    "length_nu": "RunLengthNonUniformity",
}
_GLSZM_NAMES = {
    "small": "SmallAreaEmphasis",
    "large": "LargeAreaEmphasis",
    "percentage": "ZonePercentage",
    "grey_nu": "GrayLevelNonUniformity",
    "length_nu": "SizeZoneNonUniformity",
}


def glrlm_features(R: np.ndarray, n_pixels: int) -> dict[str, float]:
    """Run-length features of one matrix: RunPercentage = Nr / Np, Short/LongRunEmphasis,
    GrayLevelNonUniformity, RunLengthNonUniformity (pyradiomics names)."""
    return _length_features(R, n_pixels, _GLRLM_NAMES)


# --------------------------------------------------------------------------------------------------
# GLSZM
# --------------------------------------------------------------------------------------------------
def glszm_matrix(levels: np.ndarray, n_levels: int) -> np.ndarray:
    """Grey-level size-zone matrix Z (Ng × Np): Z[i − 1, s − 1] counts 8-connected zones of grey level i
    and size s."""
    from scipy import ndimage

    img = np.asarray(levels)
    if img.ndim != 2 or img.min() < 1 or img.max() > n_levels:
        raise InvalidInputError(f"levels must be a 2-D array of grey levels 1..{n_levels}")
    Z = np.zeros((n_levels, img.size), dtype=float)
    structure = np.ones((3, 3), dtype=int)
    for g in np.unique(img):
        labels, _n = ndimage.label(img == g, structure=structure)
        sizes = np.bincount(labels.ravel())[1:]
        np.add.at(Z, (g - 1, sizes - 1), 1)
    return Z


def glszm_features(Z: np.ndarray, n_pixels: int) -> dict[str, float]:
    """Size-zone features: SmallAreaEmphasis, LargeAreaEmphasis, ZonePercentage = Nz / Np,
    GrayLevelNonUniformity, SizeZoneNonUniformity (pyradiomics names)."""
    return _length_features(Z, n_pixels, _GLSZM_NAMES)


def tile_radiomics(values: np.ndarray, n_levels: int, value_range: tuple[float, float]) -> dict[str, float]:
    """The nine DengueNet features of one 2-D tile of raw values."""
    vals = np.asarray(values, dtype=float)
    if not np.isfinite(vals).all():
        return {k: np.nan for k in RADIOMICS_FEATURES}
    lv = discretize(vals, n_levels, value_range)
    glcm = _glcm_features_batch(np.moveaxis(glcm_matrices(lv, n_levels), -1, 0))
    rp = np.mean(run_counts(lv) / lv.size)  # RunPercentage averaged over the four directions
    # directions without pairs (a one-pixel-wide tile) are left out of the average
    out = {k: float(np.nanmean(v)) if np.isfinite(v).any() else np.nan for k, v in glcm.items()}
    out.update(first_order_features(vals))
    out["RunPercentage"] = float(rp)
    return {k: out[k] for k in RADIOMICS_FEATURES}


def radiomics_features(
    cube: xr.DataArray,
    *,
    band: str = "B12",
    n_tiles: int = 16,
    n_levels: int = 16,
    value_range: tuple[float, float] | None = None,
    progress: bool | None = None,
) -> xr.DataArray:
    """The nine DengueNet radiomics features of ``band`` for every tile of every week.

    Parameters
    ----------
    cube : DataArray (week, band, y, x)
    band : str
        Band to describe; DengueNet used B12 (SWIR 2.2 µm).
    n_tiles : int
        Tiles per side.
    n_levels : int
        Grey levels of the fixed-bin-number discretisation.
    value_range : (low, high), optional
        Range discretised into ``n_levels`` bins (values outside are clipped); default the 1st–99th percentile
        of the whole cube's ``band``. Pass the training weeks' range to keep test weeks out of it.

    Returns
    -------
    DataArray (week, tile, radiomics_feature); ``tile`` numbers tiles row by row.
    """

    t = time_dim(cube)
    if band not in cube["band"].to_numpy().tolist():
        raise InvalidInputError(f"cube has no band {band!r}")
    img = cube.sel(band=band).transpose(t, "y", "x").to_numpy().astype(float)
    if value_range is None:
        finite = img[np.isfinite(img)]
        if finite.size == 0:
            raise InvalidInputError(f"band {band} holds no finite values")
        value_range = (float(np.percentile(finite, 1)), float(np.percentile(finite, 99)))
        if value_range[1] <= value_range[0]:
            value_range = (value_range[0], value_range[0] + 1e-6)
    ey, ex = tile_edges(img.shape[1], n_tiles), tile_edges(img.shape[2], n_tiles)
    out = np.full((img.shape[0], n_tiles * n_tiles, len(RADIOMICS_FEATURES)), np.nan)
    for w in progress_bar(range(img.shape[0]), desc="radiomics", enabled=progress, leave=False):
        for i, (y0, y1) in enumerate(ey):
            for j, (x0, x1) in enumerate(ex):
                feats = tile_radiomics(img[w, y0:y1, x0:x1], n_levels, value_range)
                out[w, i * n_tiles + j] = [feats[k] for k in RADIOMICS_FEATURES]
    return xr.DataArray(
        out,
        dims=(t, "tile", "radiomics_feature"),
        coords={
            t: cube[t].to_numpy(),
            "tile": np.arange(n_tiles * n_tiles),
            "radiomics_feature": list(RADIOMICS_FEATURES),
        },
        attrs={
            "band": band,
            "n_tiles": n_tiles,
            "n_levels": n_levels,
            "value_range": list(map(float, value_range)),
            "definitions": "IBSI / pyradiomics",
        },
    )
