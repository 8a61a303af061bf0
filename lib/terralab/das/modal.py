"""Modal frequencies of a bridge section from the quiet intervals of a DAS record.

Between vehicles the deck still vibrates, driven by wind and ground noise, at its natural frequencies. The
record is decimated to ~100 Hz (channels binned), the intervals with no vehicle on the section (plus a margin)
are cut into Welch segments, and the cross-spectral matrix over up to ``max_bins`` channel bins is averaged.
Its first singular value (frequency domain decomposition, FDD) peaks at the modal frequencies, since a mode is
coherent along the fibre while instrument noise is not; the singular vector at a peak is the mode's strain
shape. Damping is estimated from the half-power width of each peak (a rough figure with short records).

Examples
--------
>>> from terralab import das
>>> data, truth = das.synthetic.highway_bridge(duration_s=180, rate_per_min=2, seed=3)   # doctest: +SKIP
>>> das.bridge_modes(data)                                                                # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

__all__ = ["bridge_modes", "quiet_intervals"]


def quiet_intervals(
    vehicles: pd.DataFrame,
    start: np.datetime64,
    end: np.datetime64,
    *,
    margin_s: float = 3.0,
    min_quiet_s: float = 10.0,
) -> pd.DataFrame:
    """Intervals (pandas DataFrame ``start``, ``end``, ``duration_s``) with no vehicle on the section.

    A vehicle occupies the section from ``t_start`` to ``t_end`` (as given by :func:`detect_vehicles`),
    widened by ``margin_s`` on both sides; intervals shorter than ``min_quiet_s`` are dropped.
    """
    import pandas as pd

    start = np.datetime64(pd.Timestamp(start).to_datetime64(), "ns")
    end = np.datetime64(pd.Timestamp(end).to_datetime64(), "ns")
    busy = []
    margin = np.timedelta64(int(margin_s * 1e9), "ns")
    for row in vehicles.itertuples(index=False):
        a, b = sorted((np.datetime64(row.t_start, "ns"), np.datetime64(row.t_end, "ns")))
        busy.append((a - margin, b + margin))
    busy.sort()
    free = []
    cur = start
    for a, b in busy:
        if a > cur:
            free.append((cur, min(a, end)))
        cur = max(cur, b)
        if cur >= end:
            break
    if cur < end:
        free.append((cur, end))
    rows = [
        (a, b, (b - a) / np.timedelta64(1, "s"))
        for a, b in free
        if (b - a) / np.timedelta64(1, "s") >= min_quiet_s
    ]
    return pd.DataFrame(rows, columns=["start", "end", "duration_s"])


def bridge_modes(
    data: xr.DataArray,
    vehicles: pd.DataFrame | None = None,
    *,
    fmin_hz: float = 0.8,
    fmax_hz: float = 20.0,
    n_modes: int = 5,
    segment_s: float = 10.0,
    margin_s: float = 3.0,
    min_prominence_db: float = 6.0,
    max_bins: int = 32,
    return_spectrum: bool = False,
    missing: str = "raise",
    **detect_kwargs: Any,
) -> pd.DataFrame | tuple[pd.DataFrame, xr.Dataset]:
    """Modal frequencies of the section from spectral peaks of its quiet intervals (FDD).

    Parameters
    ----------
    data : xarray.DataArray
        DAS record ``(time, distance)``.
    vehicles : pandas.DataFrame, optional
        Detected vehicles (with ``t_start``/``t_end``); detected here when not given.
    fmin_hz, fmax_hz : float
        Frequency range searched (Hz).
    n_modes : int
        At most this many peaks, strongest first.
    segment_s : float
        Welch segment length (s); the frequency resolution is 1/segment_s.
    margin_s : float
        Time kept free before a vehicle enters and after it leaves the section (s).
    min_prominence_db : float
        A peak must stand this many dB above its surroundings.
    max_bins : int
        Channel bins used for the cross-spectral matrix (evenly spread along the section).
    return_spectrum : bool
        Also return an ``xr.Dataset`` with the first singular value spectrum (``frequency``) and the mode
        shapes (``mode``, ``distance``).
    missing : {"raise", "empty"}
        What to do when no quiet interval is long enough: raise, or return an empty table (and spectrum).

    Returns
    -------
    pandas.DataFrame
        ``mode``, ``freq_hz``, ``damping_ratio``, ``prominence_db``, sorted by frequency; ``attrs`` give the
        quiet time used (``quiet_s``) and the number of Welch segments.

    Raises
    ------
    InvalidInputError
        When the quiet intervals are shorter than one Welch segment (lower ``segment_s`` or give a longer
        record).
    """
    from . import io
    from .detect import detect_vehicles

    if missing not in ("raise", "empty"):
        raise InvalidInputError(f"missing must be 'raise' or 'empty', got {missing!r}")
    data = io.check(data)
    if vehicles is None:
        vehicles = detect_vehicles(data, classify=False, **detect_kwargs)
    mid, tm, fs_mid, bin_distance = _mid_rate_image(data, detect_kwargs)
    fmax_hz = min(0.45 * fs_mid, fmax_hz)
    live = np.flatnonzero(np.abs(mid).max(axis=0) > 0)
    if len(live) < 2:
        raise InvalidInputError("fewer than two live channel bins; cannot form a cross-spectral matrix")
    cols = live[np.unique(np.round(np.linspace(0, len(live) - 1, min(max_bins, len(live)))).astype(int))]
    quiet = quiet_intervals(
        vehicles, data["time"].values[0], data["time"].values[-1], margin_s=margin_s, min_quiet_s=segment_s
    )
    f, csd, n_seg, quiet_s = _quiet_csd(mid[:, cols], tm, quiet, fs_mid, round(float(segment_s * fs_mid)))
    if csd is None and missing == "empty":
        return _no_modes(quiet_s, segment_s, return_spectrum)
    if csd is None:
        raise InvalidInputError(
            f"no quiet interval of at least segment_s={segment_s:g} s without vehicles; use a longer record, "
            "a shorter segment_s or a smaller margin_s"
        )
    sel = (f >= fmin_hz) & (f <= fmax_hz)
    fsel = f[sel]
    s1, vecs = _first_singular(csd[sel], len(cols))
    modes, shapes = _spectral_peaks(fsel, s1, vecs, n_modes, min_prominence_db)
    modes.attrs.update({"quiet_s": quiet_s, "n_segments": int(n_seg), "segment_s": segment_s})
    if not return_spectrum:
        return modes
    return modes, _spectrum_dataset(fsel, s1, shapes, modes, bin_distance[cols])


def _mid_rate_image(data, detect_kwargs: dict):
    """(image, times ns, rate Hz, bin distances) of ``data`` low-passed and channel-binned at the mid rate."""
    from . import io
    from .filters import Decimator
    from .params import resolve_params

    p = resolve_params(None, detect_kwargs)
    fs = io.sampling_rate_hz(data)
    x = np.asarray(data["distance"].values, dtype=float)
    values = data.values
    if x[0] > x[-1]:
        x, values = x[::-1], np.ascontiguousarray(values[:, ::-1])
    dec = Decimator(
        fs,
        x,
        lowpass_hz=min(p.lowpass_hz, 0.2 * fs),
        channel_bin_m=p.channel_bin_m,
        measurand=str(data.attrs.get("measurand", "unknown")),
        noisy_factor=p.noisy_factor,
    )
    t0 = int(data["time"].values[0].astype("datetime64[ns]").astype(np.int64))
    prod = dec.process(values, t0)
    return prod.mid, prod.mid_time_ns, dec.fs_mid, dec.bin_distance


def _quiet_csd(mid, tm, quiet, fs_mid: float, nper: int):
    """(frequencies, summed cross-spectral matrices (freq, bin, bin), Welch segments, quiet seconds used)."""
    from scipy import signal

    f, csd = None, None
    n_seg = 0
    quiet_s = 0.0
    for q in quiet.itertuples(index=False):
        a = int(np.searchsorted(tm, np.datetime64(q.start, "ns").astype(np.int64)))
        b = int(np.searchsorted(tm, np.datetime64(q.end, "ns").astype(np.int64)))
        seg = mid[a:b].astype(np.float64)
        if len(seg) < nper:
            continue
        quiet_s += len(seg) / fs_mid
        seg = seg / (np.std(seg, axis=0, keepdims=True) + 1e-30)  # equal weight per bin (coupling differs)
        f, _, z = signal.stft(
            seg,
            fs=fs_mid,
            window="hann",
            nperseg=nper,
            noverlap=nper // 2,
            axis=0,
            boundary=None,
            padded=False,
        )
        # z: (n_freq, bins, n_segments)
        g = np.einsum("fis,fjs->fij", z, np.conj(z))
        csd = g if csd is None else csd + g
        n_seg += z.shape[-1]
    return f, csd, n_seg, quiet_s


def _no_modes(quiet_s: float, segment_s: float, return_spectrum: bool):
    """The empty mode table (and spectrum) of a record without a long enough quiet interval."""
    import pandas as pd
    import xarray as xr

    empty = pd.DataFrame(columns=["mode", "freq_hz", "damping_ratio", "prominence_db"])
    empty.attrs.update({"quiet_s": quiet_s, "n_segments": 0, "segment_s": segment_s})
    if not return_spectrum:
        return empty
    ds = xr.Dataset({"spectrum": xr.DataArray(np.zeros(0), dims=("frequency",), coords={"frequency": []})})
    return empty, ds


def _first_singular(csd, n_bins: int):
    """First singular value per frequency of the cross-spectral matrices, and its vector (real,
    phase-aligned)."""
    s1 = np.empty(len(csd))
    vecs = np.empty((len(csd), n_bins))
    for k, gi in enumerate(csd):
        u, sv, _ = np.linalg.svd(gi)
        s1[k] = sv[0].real
        vecs[k] = np.real(u[:, 0] * np.exp(-1j * np.angle(u[np.argmax(np.abs(u[:, 0])), 0])))
    return s1, vecs


def _spectral_peaks(fsel, s1, vecs, n_modes: int, min_prominence_db: float):
    """(modes table, mode shapes): the ``n_modes`` most prominent peaks of ``s1``, with half-power damping."""
    import pandas as pd
    from scipy import signal

    db = 10 * np.log10(s1 / np.median(s1))
    df = fsel[1] - fsel[0] if len(fsel) > 1 else 1.0
    peaks, props = signal.find_peaks(db, prominence=min_prominence_db, distance=max(1, int(0.2 / df)))
    order = np.argsort(props["prominences"])[::-1][:n_modes]
    rows = []
    for i in order:
        k = peaks[i]
        fk = fsel[k]
        if 0 < k < len(s1) - 1:  # parabolic interpolation on the dB spectrum
            y0, y1, y2 = db[k - 1], db[k], db[k + 1]
            den = y0 - 2 * y1 + y2
            if den < 0:
                fk = fk + 0.5 * (y0 - y2) / den * df
        half = s1[k] / 2
        lo = k
        while lo > 0 and s1[lo] > half:
            lo -= 1
        hi = k
        while hi < len(s1) - 1 and s1[hi] > half:
            hi += 1
        zeta = (fsel[hi] - fsel[lo]) / (2 * fk) if hi > lo else np.nan
        rows.append(
            {
                "freq_hz": float(fk),
                "damping_ratio": float(zeta),
                "prominence_db": float(props["prominences"][i]),
                "shape_index": int(k),
            }
        )
    modes = pd.DataFrame(rows, columns=["freq_hz", "damping_ratio", "prominence_db", "shape_index"])
    modes = modes.sort_values("freq_hz").reset_index(drop=True)
    modes.insert(0, "mode", np.arange(1, len(modes) + 1))
    shapes = vecs[modes["shape_index"].to_numpy()] if len(modes) else np.zeros((0, vecs.shape[1]))
    return modes.drop(columns="shape_index"), shapes


def _spectrum_dataset(fsel, s1, shapes, modes, distance):
    """The first singular value spectrum and the mode shapes as one ``xr.Dataset``."""
    import xarray as xr

    spec = xr.DataArray(
        s1,
        dims=("frequency",),
        coords={"frequency": fsel},
        name="first_singular_value",
        attrs={
            "units": "normalised",
            "description": "first singular value of the quiet-interval cross-spectral matrix",
        },
    )
    shape_da = xr.DataArray(
        shapes,
        dims=("mode", "distance"),
        coords={"mode": modes["mode"].to_numpy(), "distance": distance},
        name="mode_shape",
        attrs={"units": "normalised strain"},
    )
    return xr.Dataset({"spectrum": spec, "mode_shape": shape_da})
