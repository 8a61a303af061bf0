"""Per-record diagnostics: which channels to trust, how noisy they are, and how well each is coupled.

:func:`diagnose` tells a user when not to trust a count: dead, NaN, saturated (clipped) and noisy channels,
the noise level of every channel, and a coupling estimate taken from the record's own traffic (vehicles load
every channel of a road alike on average, so a channel that sees them weaker than its neighbours is coupled
worse). It also says how much of the detector's image lies beyond its soft clip: on a record whose traffic
stands far higher above the noise than on the scenes the defaults were chosen on, a vehicle's strain and its
slow tail become plateaus seconds long whose edges the track search takes for vehicles (over-counting).

Examples
--------
>>> from terralab import das
>>> data, _ = das.synthetic.halfspace_scene("urban", 3)          # doctest: +SKIP
>>> channels = das.diagnose(data)                                # doctest: +SKIP
>>> channels["status"].value_counts()                            # doctest: +SKIP
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

__all__ = ["BEYOND_CLIP_ADVICE", "beyond_clip", "diagnose"]

#: Share of the detector's noise-normalised image beyond its soft clip above which :func:`diagnose` warns of
#: over-counting. Chosen on the development seeds (100-107, 200-211) of both simulators and sites, each
#: rendered at its own noise and quiet (:data:`~terralab.das.synthetic.QUIET_NOISE`): above 0.12 lay 7 % of
#: the normal and 89 % of the quiet renders, and the packaged detector's precision there was 0.79 against
#: 0.92 on the rest. Above the same bound (on its own image, see there) the detector's track search clips
#: each channel relative to its own signal (``DetectParams.quiet_clip``,
#: :func:`~terralab.das.restack.search_clipped`).
BEYOND_CLIP_ADVICE = 0.12

logger = logging.getLogger(__name__)


def diagnose(
    data: xr.DataArray,
    *,
    noisy_factor: float = 5.0,
    saturation_fraction: float = 0.005,
    max_samples: int = 200_000,
) -> pd.DataFrame:
    """Per-channel quality of a DAS record.

    Parameters
    ----------
    data : xarray.DataArray
        DAS record ``(time, distance)`` (as for :func:`terralab.das.detect_vehicles`).
    noisy_factor : float
        A channel whose noise exceeds this times the median channel noise is "noisy" (the detector masks it).
    saturation_fraction : float
        A channel with more than this fraction of its samples at its own extreme value (a clipped,
        flat-topped trace) is "saturated".
    max_samples : int
        At most this many time samples (evenly strided) are inspected per channel (speed on long records).

    Returns
    -------
    pandas.DataFrame
        One row per channel: ``distance_m``, ``status`` ("ok", "dead", "nan", "saturated", "noisy"),
        ``nan_fraction``, ``noise`` (robust standard deviation of the sample-to-sample difference / sqrt 2, in
        the record's units: white-noise level, little affected by traffic), ``noise_ratio`` (to the median of
        good channels), ``coupling`` (traffic amplitude seen by the channel relative to the median good
        channel, estimated from the detector's low-passed image; NaN for bad channels). ``attrs`` summarise
        the record: ``n_bad``, ``bad_fraction``, ``coupling_spread`` (90th / 10th percentile),
        ``beyond_clip`` (share of the detector's noise-normalised low-passed image beyond its soft clip,
        ``DetectParams.clip_sigma``; NaN when the detector cannot read the record), ``advice`` (it warns
        of over-counting above :data:`BEYOND_CLIP_ADVICE`).
    """
    import pandas as pd

    from . import io

    data = io.check(data)
    x = np.asarray(data["distance"].values, dtype=float)
    n_t = data.sizes["time"]
    step = max(1, n_t // max_samples)
    v = np.asarray(data.values[::step], dtype=np.float64)
    finite = np.isfinite(v)
    nan_frac = 1.0 - finite.mean(axis=0)
    vz = np.where(finite, v, np.nan)
    with np.errstate(invalid="ignore"), _quiet():
        d = (
            np.diff(vz, axis=0)
            if step == 1
            else np.diff(np.asarray(data.values[: min(n_t, max_samples)], dtype=np.float64), axis=0)
        )
        med_d = np.nanmedian(d, axis=0)
        noise = 1.4826 * np.nanmedian(np.abs(d - med_d), axis=0) / np.sqrt(2.0)
        spread = np.nanmax(vz, axis=0) - np.nanmin(vz, axis=0)
        peak = np.nanmax(np.abs(vz), axis=0)
        at_peak = np.nanmean(np.abs(vz) >= 0.999 * peak[None, :], axis=0)
    status = np.full(len(x), "ok", dtype=object)
    dead = ~(spread > 0) | ~np.isfinite(spread)
    status[dead] = "dead"
    status[nan_frac > 0.5] = "nan"
    sat = (~dead) & (at_peak > saturation_fraction) & (peak > 0)
    status[sat & (status == "ok")] = "saturated"
    good = status == "ok"
    ref = float(np.nanmedian(noise[good])) if good.any() else float("nan")
    ratio = noise / ref if ref > 0 else np.full(len(x), np.nan)
    status[good & (ratio > noisy_factor)] = "noisy"
    good = status == "ok"

    coupling, beyond = _traffic_image(data, x, good)
    out = pd.DataFrame(
        {
            "distance_m": x,
            "status": status,
            "nan_fraction": nan_frac,
            "noise": noise,
            "noise_ratio": ratio,
            "coupling": coupling,
        }
    )
    out.attrs.update(_summary(status, coupling, beyond))
    return out


def _traffic_image(data, x, good) -> tuple[np.ndarray, float]:
    """From the detector's low-passed image: the traffic amplitude per channel relative to the median good
    channel (NaN for bad channels), and the share of the image beyond the detector's soft clip in units of
    each channel's robust level (both NaN when the detector cannot read the record)."""
    from .detect import channel_levels, preprocess
    from .params import DetectParams

    coupling, beyond = np.full(len(x), np.nan), float("nan")
    try:
        dx = float(np.median(np.abs(np.diff(x))))
        lf = preprocess(data, channel_bin_m=dx, common_mode=True)
        img = np.asarray(lf.values, dtype=np.float64)
        xl = np.asarray(lf["distance"].values)
        level = channel_levels(img)
        live = level > 0
        if live.any():
            beyond = beyond_clip(img[:, live] / level[live], DetectParams().clip_sigma)
        # traffic amplitude per channel: a high quantile of |strain| after removing each channel's median
        amp = np.percentile(np.abs(img - np.median(img, axis=0)), 99, axis=0)
        order = np.argsort(x)
        amp_x = np.interp(x[order], xl, amp)
        c = np.empty(len(x))
        c[order] = amp_x
        ref_c = float(np.median(c[good])) if good.any() else float("nan")
        coupling = np.where(good, c / ref_c, np.nan) if ref_c > 0 else coupling
    except Exception:  # a record the detector cannot read still gets its channel table
        logger.debug("no coupling estimate: the detector could not read this record", exc_info=True)
    return coupling, beyond


def beyond_clip(image: np.ndarray, clip_sigma: float) -> float:
    """Share of a noise-normalised image (each channel in units of its robust level) whose magnitude is
    beyond the detector's soft clip ``clip_sigma`` (``diagnose``'s ``beyond_clip``; the DAS losses benchmark
    applies it to the detector's own image).

    >>> import numpy as np
    >>> beyond_clip(np.array([[0.5, -7.0], [8.0, 1.0]]), 6.0)
    0.5
    """
    return float((np.abs(image) > clip_sigma).mean())


def _summary(status, coupling, beyond: float) -> dict:
    """The record's summary: bad channels, coupling spread (90th / 10th percentile), the image's share beyond
    the soft clip, and advice."""
    n_bad = int((status != "ok").sum())
    cg = coupling[np.isfinite(coupling)]
    spread_c = float(np.percentile(cg, 90) / np.percentile(cg, 10)) if len(cg) > 4 else float("nan")
    advice = []
    if n_bad / len(status) > 0.2:
        advice.append(f"{n_bad} of {len(status)} channels are bad: counts may miss vehicles seen only there")
    if np.isfinite(spread_c) and spread_c > 3.0:
        advice.append(
            f"coupling varies {spread_c:.1f}x along the fibre: amplitudes (car/truck) are less reliable"
        )
    if beyond > BEYOND_CLIP_ADVICE:
        advice.append(
            f"{beyond:.0%} of the detector's image is beyond its soft clip (the traffic stands far above the "
            "noise): a vehicle's strain and its slow tail may give extra tracks, counts may be too high"
        )
    return {
        "n_bad": n_bad,
        "bad_fraction": n_bad / len(status),
        "coupling_spread": spread_c,
        "beyond_clip": beyond,
        "advice": "; ".join(advice) or "no problem found",
    }


class _quiet:
    """Silence numpy's all-NaN-slice warnings inside the block (dead channels are expected here)."""

    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)
        return self

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)
