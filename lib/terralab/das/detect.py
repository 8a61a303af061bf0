"""Detect vehicles in DAS records: speed, direction, time at mid-section, car or truck.

The chain (after Truong et al., arXiv 2410.16278, with its weak points fixed):

1. **Low-pass + decimate once** (:mod:`terralab.das.filters`): float32, multi-stage, stateful, shared by both
   travel directions; strain rate is integrated to strain; time stamps are corrected for the filter delay
   (the published causal low-pass reports vehicles ~1 s late). Dead, NaN and noisy channels are masked;
   channels are binned to ``channel_bin_m``.
2. **Normalise**: common-mode removal (median over channels), per-channel robust noise scaling and a soft
   saturation at ``clip_sigma`` (coupling differences would otherwise smear strong trucks into every band); on
   a quiet record, where much of the image lies beyond it, the search's clip follows each channel's own
   signal instead (``quiet_clip``), so a vehicle's slow opposite tail does not become a plateau.
3. **Speed bands**: the speed range is split into octave bands (the published chain used one 80-85 km/h band
   per pass); each band works on an image whose time step keeps its tracks near the diagonal, so one default
   covers 8-160 km/h on 1 m / 1000 Hz highway bridges and 5 m / 625 Hz streets alike.
4. **Velocity-tuned filtering** per band and direction: a band-pass along time matched to the strain pulse at
   the band's speed (for a local bump of ``pulse_m`` and a span-long response of ``long_pulse_m``), an f-k
   fan that keeps the band's apparent velocities in one direction, the analytic envelope (one ridge per
   vehicle), and a Gaussian of ``smoothing_m`` along the band's track direction, normalised to unit noise.
5. **Adaptive threshold and thin edges**: ``threshold_sigma`` times the robust noise level of each band's
   image (no fixed amplitude), non-maximum suppression (along time; along distance in slow bands whose
   tracks are steep), and suppression of ridge pixels that a band of another speed or direction explains
   better (ghosts of strong vehicles).
6. **Hough lines** (``skimage.transform.probabilistic_hough_line``) over the band's angles only.
7. **DBSCAN merge** of segments with the mean time offset between two segments over their shared distance
   (extrapolated across gaps), plus a speed-mismatch term so that overtaking vehicles stay apart.
8. **Track refinement**: the ridge is followed along each merged track (nearest envelope peak per channel), a
   quadratic t(x) is fitted robustly (braking and accelerating vehicles), and the track must cover
   ``min_coverage`` of the section in metres and show on ``min_fill`` of the channels along it (the published
   OpenCV length check is per axis, so a track as long as the section could never pass it), and no vehicle
   may need to brake harder than ``max_accel_ms2`` (about 1 g) or speed up harder than ``SPEEDUP_SHARE``
   (0.6) of it to follow it. Tracks whose points mostly belong to a stronger track are dropped. Speed and
   time are read at mid-section.
   **Peeling** (``peel_sigma``; off by default, on with ``site="highway"`` or ``"urban"``): every track's
   modelled response is subtracted from the complex band images and the residual searched again, so a car
   on the envelope flank of a stronger vehicle of its speed 2-3 s ahead or behind (no ridge of its own) gets
   a track (flag "peeled").
9. **Merge and explain away**: a track whose ridge mostly lies on a stronger track of the same direction is
   that vehicle again; a much weaker track of the other direction built on a strong vehicle's ridge is its
   echo; parallel tracks of one speed (``merge_speed_change``) joined by signal within ``max_vehicle_m``
   (and ``max_merge_s``: a slow platoon's vehicles follow closer than a long vehicle takes to pass) are one
   vehicle (axle groups, bogies), reported at their load-weighted centre; two same-signed lobes of
   comparable strength within ``pair_merge_m`` are one vehicle at their midpoint; a track that bends by
   more than ``incoherent_speed_change`` with no consistent strain sign is a chain across a platoon and is
   dropped, and so is a track with no consistent sign that is much faster than a ``crossing_ratio`` times
   stronger vehicle of its direction and crosses it within the section (a ghost stitched through that
   vehicle's ridge), or that crosses a not much weaker vehicle where both pass mid-section (a line pivoting
   on that vehicle's response; in the other direction only a vehicle without a sign;
   :mod:`terralab.das.chains`).
   ``site`` presets bound the speeds to what the site allows.
10. **Classify** car / truck (/ tram on sites with a tram line) with the packaged classifier
    (:mod:`terralab.das.classify`), from features that transfer between sites. Then
    (:mod:`terralab.das.trams`) where trams run the tracks of one tram's bogies (heavy, one speed, within
    ``tram_group_m``, one of them called a tram) become one tram and other tracks at its speed within
    ``tram_group_m`` of it (its lobes and vibration) are dropped, and on every site two trucks of one speed
    25-45 m apart (``heavy_pair_m``), one long heavy vehicle's two lobes, become one truck.
11. **Speed re-read** (``restack_m``; :mod:`terralab.das.restack`): each vehicle's speed is the nearest peak,
    within 25 % of the fitted one, of the strain image's power stacked over the track's channels along
    straight lines through its mid-section passage (the fit follows ridge points that hop between a
    vehicle's strain centre, lobes and axle groups; the stack lines them all up at once).

``image="both"`` adds a second detection image, the band-limited energy of the strain rate
(:mod:`terralab.das.filters`), searched by slant stacking; it sees a signature whatever its sign or band, but
on both simulators it added more false tracks than vehicles, so the packaged default is the strain image alone
(``benchmarks/das_cross_simulator.py``; the defaults were chosen there on development scenes, see
:data:`CHOSEN`).

Examples
--------
>>> from terralab import das
>>> data, truth = das.synthetic.highway_bridge(duration_s=60, n_channels=200, seed=0)   # doctest: +SKIP
>>> vehicles = das.detect_vehicles(data)                                                 # doctest: +SKIP
>>> vehicles[["time", "speed_kmh", "direction", "vehicle_class", "score"]]              # doctest: +SKIP
"""

from __future__ import annotations

import time as _time
import warnings
from dataclasses import asdict
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidInputError
from .chains import drop_crossing_chains, drop_incoherent
from .energy import energy_image, energy_tracks, fuse_tracks
from .lines import Band, band_image, band_segments, cluster_segments, speed_band_edges, suppress_non_winners
from .params import (
    CHOSEN,
    FLAGS,
    KMH,
    LOBE_POLARITY,
    RESPLIT_ROUNDS,
    SITES,
    TRAM_SITES,
    VEHICLE_COLUMNS,
    DetectParams,
    resolve_params,
)
from .peel import peeled_tracks, signed
from .restack import recentre_alone, reread_speeds, search_clipped
from .tracks import (
    dedupe_tracks,
    merge_parallel,
    refine_track,
    set_flags,
    track_polarity,
)
from .trams import absorb_tram_halos, merge_heavy_pairs, merge_tram_groups

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

    from .classify import VehicleClassifier
    from .filters import Decimator, Products

__all__ = [
    "CHOSEN",
    "FLAGS",
    "KMH",
    "LOBE_POLARITY",
    "SITES",
    "TRAM_SITES",
    "VEHICLE_COLUMNS",
    "DetectParams",
    "ShortRecordWarning",
    "channel_levels",
    "decimate",
    "detect_in_products",
    "detect_vehicles",
    "empty_vehicle_table",
    "make_decimator",
    "normalised_image",
    "preprocess",
    "resolve_params",
]


class ShortRecordWarning(UserWarning):
    """The record is shorter than one crossing of the section: the vehicle table is empty."""


# --------------------------------------------------------------------------------------------------
# public entry points
# --------------------------------------------------------------------------------------------------
def detect_vehicles(
    data: xr.DataArray,
    *,
    params: DetectParams | None = None,
    classifier: VehicleClassifier | None = None,
    return_products: bool = False,
    **kwargs: Any,
) -> pd.DataFrame | tuple[pd.DataFrame, dict[str, Any]]:
    """Detect vehicles crossing the fibre section of ``data``.

    Parameters
    ----------
    data : xarray.DataArray
        DAS record with dims ``("time", "distance")`` (a ``(distance, time)`` array is transposed), evenly
        sampled, distance in metres; ``attrs["measurand"]`` says whether it is strain rate (integrated) or
        strain / phase (used as is); NaN and dead channels are masked.
    params : DetectParams, optional
        Detector parameters; keyword arguments override single fields, e.g. ``speed_min_kmh=30``.
    classifier : CarTruckClassifier, optional
        Defaults to the classifier shipped with the package.
    return_products : bool
        Also return the decimated image and per-band details (for plots), and each step's tracks
        (``"stages"``: mid-section time, direction and speed; :func:`terralab.das.losses.search_stages`).

    Returns
    -------
    pandas.DataFrame
        One row per vehicle, sorted by time: ``vehicle_id``, ``time`` (datetime64[ns], passage of the middle
        of the section), ``speed_kmh`` (at mid-section; re-read from the strain image stacked along the
        track, ``restack_m``, while ``t_start``, ``t_end`` and ``speed_change`` come from the track's fitted
        t(x)), ``direction`` (+1 towards increasing distance),
        ``vehicle_class`` ("car"/"truck", or "tram" with ``trams=True``), ``score`` (fraction of the section
        along which the track was seen), ``p_truck`` (probability of a heavy vehicle: truck, bus or tram),
        ``t_start``/``t_end`` (section entry/exit), ``distance_start_m``/``distance_end_m`` (distance range
        seen), ``coverage``, ``snr``, ``speed_change`` (relative, exit vs entry). ``attrs`` hold the
        parameters, masked channels and timing.

    Raises
    ------
    InvalidInputError
        Wrong dims or coordinates, uneven or duplicated times, fewer than 2 channels, or a sampling rate too
        low for the requested speeds.
    """
    p = resolve_params(params, kwargs)
    t_start = _time.perf_counter()
    prod, dec, x = decimate(data, p, check_rates=True)
    fs, measurand = dec.fs, str(data.attrs.get("measurand", "unknown"))
    flip = float(data["distance"][0]) > float(data["distance"][-1])
    section = (float(x[0]), float(x[-1]))
    duration_s = data.sizes["time"] / fs
    shortest = abs(x[-1] - x[0]) / (p.speed_max_kmh * KMH)
    if duration_s < shortest:
        warnings.warn(
            f"the record lasts {duration_s:.2f} s, less than one crossing "
            f"of this {abs(x[-1] - x[0]):g} m section "
            f"even at speed_max_kmh={p.speed_max_kmh:g} ({shortest:.2f} s): no vehicle can be detected; the "
            "result is an empty table (with every column). Pass a longer record",
            ShortRecordWarning,
            stacklevel=2,
        )
    out = detect_in_products(
        prod, dec, section=section, params=p, classifier=classifier, return_details=return_products
    )
    vehicles, details = out if return_products else (out, None)
    elapsed = _time.perf_counter() - t_start
    duration = data.sizes["time"] / fs
    vehicles.attrs.update(
        {
            "processing_s": elapsed,
            "realtime_factor": duration / elapsed if elapsed > 0 else float("inf"),
            "masked_channels_m": x[prod.masked_channels].tolist(),
            "section_m": section,
            "measurand": measurand,
        }
    )
    if flip:
        vehicles.attrs["note"] = "distance decreases along the data; directions refer to increasing distance"
    if return_products:
        return vehicles, details
    return vehicles


def preprocess(data: xr.DataArray, *, params: DetectParams | None = None, **kwargs: Any) -> xr.DataArray:
    """The detector's decimated, integrated, binned image as ``xr.DataArray (time, distance)`` (for plots).

    Units: strain for strain-rate input (after the leaky integrator); the input's units otherwise.
    """
    import xarray as xr

    p = resolve_params(params, kwargs)
    prod, dec, _ = decimate(data, p)
    lf = prod.lf
    if p.common_mode and lf.shape[1] >= 5:
        lf = lf - np.median(lf, axis=1, keepdims=True)
    units = "1" if dec.integrate and data.attrs.get("units") == "1/s" else data.attrs.get("units", "")
    return xr.DataArray(
        lf,
        dims=("time", "distance"),
        coords={"time": prod.lf_time_ns.astype("datetime64[ns]"), "distance": dec.bin_distance},
        attrs={
            "units": units,
            "measurand": "strain" if dec.integrate else data.attrs.get("measurand", ""),
            "sampling_rate_hz": dec.fs_lf,
            "description": "low-passed, decimated, channel-binned DAS image",
        },
        name="lf",
    )


def decimate(
    data: xr.DataArray, p: DetectParams, *, check_rates: bool = False
) -> tuple[Products, Decimator, np.ndarray]:
    """A record (checked by :func:`~terralab.das.io.check`) through the detector's
    :class:`~terralab.das.filters.Decimator` for ``p``, its channels in increasing distance: (products,
    decimator, channel distances). ``check_rates`` first refuses, as the detector does, a sampling rate or
    section too short for ``p``'s speeds (:class:`~terralab.errors.InvalidInputError`)."""
    from . import io

    data = io.check(data)
    fs = io.sampling_rate_hz(data)
    x = np.asarray(data["distance"].values, dtype=float)
    values = data.values
    if x[0] > x[-1]:
        x, values = x[::-1], np.ascontiguousarray(values[:, ::-1])
    if check_rates:
        _check_rates(fs, x, p)
    dec = make_decimator(fs, x, p, str(data.attrs.get("measurand", "unknown")))
    return dec.process(values, int(data["time"].values[0].astype("datetime64[ns]").astype(np.int64))), dec, x


def make_decimator(fs: float, x: np.ndarray, p: DetectParams, measurand: str) -> Decimator:
    """The :class:`~terralab.das.filters.Decimator` the detector needs for parameters ``p``."""
    from .filters import Decimator

    bands = p.energy_bands_hz if p.image != "strain" else ()
    return Decimator(
        fs,
        x,
        lowpass_hz=p.lowpass_hz,
        lf_rate_hz=p.lf_rate_hz,
        channel_bin_m=p.channel_bin_m,
        measurand=measurand,
        noisy_factor=p.noisy_factor,
        energy_bands_hz=bands,
        energy_lowpass_hz=p.energy_lowpass_hz,
        energy_diff_max_hz=p.energy_diff_max_hz,
    )


def _check_rates(fs: float, x: np.ndarray, p: DetectParams) -> None:
    if fs < 4 * p.lowpass_hz:
        raise InvalidInputError(
            f"sampling rate {fs:g} Hz is too low for lowpass_hz={p.lowpass_hz:g}: "
            f"need >= {4 * p.lowpass_hz:g} Hz"
        )
    length = abs(x[-1] - x[0])
    fs_lf = fs / max(1, int(np.floor(fs / 100.0))) if fs >= 100 else fs
    fs_lf = fs_lf / max(1, int(np.floor(fs_lf / p.lf_rate_hz)))
    crossing = length / (p.speed_max_kmh * KMH)
    need = 8.0 / crossing if crossing > 0 else np.inf
    if fs_lf >= need:
        return
    v_ok = length / (8.0 / fs_lf) / KMH if np.isfinite(need) else 0.0
    if fs_lf >= 0.9 * p.lf_rate_hz or fs >= need:
        # the image already runs at lf_rate_hz: recording faster changes nothing, the section is too short
        raise InvalidInputError(
            f"this {length:g} m section is too short for speeds up to {p.speed_max_kmh:g} km/h: "
            f"a crossing lasts "
            f"{crossing:.2f} s, which must span >= 8 samples of the detector's {fs_lf:.3g} Hz image "
            f"(lf_rate_hz={p.lf_rate_hz:g}); use a longer section "
            f"(>= {8.0 / fs_lf * p.speed_max_kmh * KMH:.0f} m), "
            f"lower speed_max_kmh (<= {v_ok:.0f}), or raise lf_rate_hz (>= {need:.1f})"
        )
    raise InvalidInputError(
        f"sampling rate {fs:g} Hz is too low for speeds up to {p.speed_max_kmh:g} km/h over this "
        f"{length:g} m section: a crossing lasts {crossing:.2f} s, which must span >= 8 samples of the "
        f"decimated image ({need:.1f} Hz needed); record faster, use a longer section or lower speed_max_kmh"
    )


# --------------------------------------------------------------------------------------------------
# the detector on decimated products (shared with the streaming path)
def detect_in_products(
    prod: Products,
    dec: Decimator,
    *,
    section: tuple[float, float],
    params: DetectParams,
    classifier: VehicleClassifier | None = None,
    return_details: bool = False,
    t_ref_ns: int | None = None,
) -> pd.DataFrame | tuple[pd.DataFrame, dict[str, Any]]:
    """Run the detector on a Decimator's products (used by :func:`detect_vehicles` and the stream)."""
    import pandas as pd

    p = params
    lf = prod.lf.astype(np.float32, copy=False)
    z, valid = normalised_image(lf, p) if len(lf) >= 8 else (None, None)
    if z is None:
        empty = empty_vehicle_table()
        return (empty, {}) if return_details else empty
    t_ref_ns = int(prod.lf_time_ns[0]) if t_ref_ns is None else t_ref_ns
    t = (prod.lf_time_ns - t_ref_ns) / 1e9
    dt = float(np.median(np.diff(t)))
    xb = dec.bin_distance
    dxb = float(np.median(np.diff(xb))) if len(xb) > 1 else 1.0
    x_mid = 0.5 * (section[0] + section[1])
    length = abs(section[1] - section[0])
    ze = None
    if p.image == "both" and prod.energy is not None:
        ze = energy_image(prod.energy, dec.energy_delay_s, dt, valid, p)
    bands = _speed_bands(z, t, dt, xb, dxb, valid, p)
    stages: list[tuple[str, np.ndarray]] = []
    tracks = _strain_tracks(bands, xb, dxb, valid, x_mid, length, section, p)
    stages.append(("search", _stage(tracks)))
    if p.peel_sigma > 0 and tracks:
        search = lambda res: _strain_tracks(res, xb, dxb, valid, x_mid, length, section, p)
        tracks += peeled_tracks(bands, tracks, xb, dxb, valid, x_mid, length, search, p)
    if ze is not None:
        tracks = fuse_tracks(tracks, energy_tracks(ze, t, dt, xb, dxb, valid, x_mid, length, section, p), p)
    stages.append(("second pass", _stage(tracks)))
    tracks = _track_rules(tracks, bands, z, t, dt, xb, dxb, valid, x_mid, p, stages)
    if not tracks:
        vehicles = empty_vehicle_table()
    else:
        vehicles = pd.DataFrame(tracks)
        vehicles = vehicles.sort_values("t_mid").reset_index(drop=True)
        _classify(vehicles, prod, dec, z, t, xb, valid, p, classifier, t_ref_ns)
        vehicles = merge_heavy_pairs(absorb_tram_halos(merge_tram_groups(vehicles, p), p), p)
        stages.append(("trams and heavy pairs", _stage(vehicles)))
        reread_speeds(vehicles, z, t, xb, valid, x_mid, p)
        recentre_alone(vehicles, z, t, xb, valid, x_mid, p)
        vehicles = vehicles.sort_values("t_mid", kind="stable").reset_index(drop=True)
        stages.append(("speed re-read and re-centring", _stage(vehicles)))
        vehicles = _to_frame(vehicles, t_ref_ns)
    vehicles.attrs["params"] = asdict(p)
    vehicles.attrs["lf_rate_hz"] = 1.0 / dt
    if not return_details:
        return vehicles
    details = {
        "bands": bands,
        "t_ref_ns": t_ref_ns,
        "lf_time_ns": prod.lf_time_ns,
        "distance": xb,
        "z": z,
        "valid": valid,
        "stages": stages,
    }
    if ze is not None:
        details["energy"] = ze
    return vehicles, details


def _track_rules(tracks, bands, z, t, dt, xb, dxb, valid, x_mid, p: DetectParams, stages) -> list[dict]:
    """Step 9: the searched tracks deduplicated, merged and bounded, ghost chains dropped, flags set; each
    step's tracks are appended to ``stages`` (:func:`_stage`)."""
    tracks = dedupe_tracks(tracks, p)
    stages.append(("dedupe", _stage(tracks)))
    if (
        p.lobe_merge
        or p.pair_merge_m > 0
        or p.incoherent_speed_change > 0
        or p.crossing_ratio > 0
        or any(tr.get("peeled") for tr in tracks)
    ):
        for tr in tracks:
            tr["polarity"] = track_polarity(tr, z, t, dt, xb, dxb, x_mid, p)
        tracks = signed(tracks)
    tracks = merge_parallel(tracks, xb, valid, x_mid, p, max_vehicle_m=p.max_vehicle_m, bands=bands)
    stages.append(("sign and merge", _stage(tracks)))
    tracks = [tr for tr in tracks if p.speed_min_kmh <= tr["speed_kmh"] <= p.speed_max_kmh]
    stages.append(("speed range", _stage(tracks)))
    tracks = drop_crossing_chains(drop_incoherent(tracks, p), p)
    stages.append(("chains", _stage(tracks)))
    set_flags(tracks)
    return tracks


def _stage(tracks) -> np.ndarray:
    """(n, 3) array of the tracks' (or vehicle table's) ``t_mid`` (s), ``direction`` and ``speed_kmh``."""
    cols = ("t_mid", "direction", "speed_kmh")
    if hasattr(tracks, "columns"):
        return tracks[list(cols)].to_numpy(dtype=float).reshape(-1, 3)
    return np.array([[tr[c] for c in cols] for tr in tracks], dtype=float).reshape(-1, 3)


def channel_levels(image: np.ndarray) -> np.ndarray:
    """Robust level of each channel (column) of a (time, channel) image: 1.4826 x the median absolute
    deviation over time (the noise's standard deviation where most samples are quiet; traffic raises it)."""
    return np.median(np.abs(image - np.median(image, axis=0)), axis=0) * 1.4826


def normalised_image(lf: np.ndarray, p: DetectParams) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(z, valid): the image in robust noise units per channel after common-mode removal; (None, None) when
    fewer than 2 channels are live."""
    valid = np.abs(lf).max(axis=0) > 0
    if p.common_mode and valid.sum() >= 5:
        lf = lf - np.median(lf[:, valid], axis=1, keepdims=True)
    mad = channel_levels(lf)
    valid &= mad > 0
    if valid.sum() < 2:
        return None, None
    z = np.zeros_like(lf)
    z[:, valid] = lf[:, valid] / mad[valid]
    return z, valid


def _speed_bands(z, t, dt, xb, dxb, valid, p: DetectParams) -> list[Band]:
    """Every speed band's image, direction and pulse scale, with ghosts suppressed and Hough segments
    found."""
    # soft saturation: channel-to-channel coupling differences modulate a strong truck's ridge, and that
    # modulation leaks into every speed band and the other direction (ghost tracks); clipped ridges do not.
    # On a quiet record the clip follows each channel's signal (``quiet_clip``)
    zc = search_clipped(z, p, valid)
    edges = speed_band_edges(p)
    bands: list[Band] = []
    scales = (p.pulse_m,) + ((p.long_pulse_m,) if p.long_pulse_m and p.long_pulse_m > p.pulse_m else ())
    for direction in (1, -1):
        for v_lo, v_hi in pairwise(edges):
            for pulse in scales:
                bands.append(band_image(zc, t, dt, xb, dxb, valid, v_lo, v_hi, direction, p, pulse))
    suppress_non_winners(bands, len(zc), p.ghost_ratio)
    for i, b in enumerate(bands):
        band_segments(b, i, xb, dxb, valid, p)
    return bands


def _strain_tracks(bands: list[Band], xb, dxb, valid, x_mid, length, section, p: DetectParams) -> list[dict]:
    """One refined track per DBSCAN cluster of each direction's Hough segments (clusters that fail are
    dropped)."""
    tracks = []
    for direction in (1, -1):
        segs = [s for b in bands if b.direction == direction for s in b.segments]
        if not segs:
            continue
        labels = cluster_segments([s[:4] for s in segs], p.merge_eps_s)
        for lab in np.unique(labels):
            member = [segs[i] for i in np.flatnonzero(labels == lab)]
            tracks.extend(
                _cluster_tracks(member, bands, xb, dxb, valid, x_mid, length, section, direction, p)
            )
    return tracks


def _cluster_tracks(member, bands, xb, dxb, valid, x_mid, length, section, direction, p: DetectParams):
    """The refined track of one cluster of segments, then (``p.resplit_s``) those of the largest group of the
    segments each new track leaves unexplained: a platoon chained into one cluster gives one track per
    vehicle. A cluster whose segments fit no single track is split at ``p.split_eps_s``; its parts count when
    at least two of them refine into tracks (a lone part is the remnant of a chain of other ridges)."""

    def refine(segs):
        return refine_track(segs, bands, xb, dxb, valid, x_mid, length, section, direction, p)

    out: list[dict] = []
    for rnd in range(1 + (RESPLIT_ROUNDS if p.resplit_s > 0 else 0)):
        tr = refine(member)
        if tr is None:
            if rnd == 0 and p.split_eps_s > 0:
                sub = cluster_segments([s[:4] for s in member], p.split_eps_s)
                if sub.max() > 0:  # (one group would be the cluster itself)
                    parts = [
                        refine([member[i] for i in np.flatnonzero(sub == lab)]) for lab in np.unique(sub)
                    ]
                    parts = [t for t in parts if t is not None]
                    out.extend(parts if len(parts) >= 2 else [])
            break
        out.append(tr)
        rest = [
            s
            for s in member
            if abs(0.5 * (s[1] + s[3]) - tr["poly"](0.5 * (s[0] + s[2]) - x_mid)) > p.resplit_s
        ]
        if p.resplit_s <= 0 or not rest:
            break
        sub = cluster_segments([s[:4] for s in rest], p.merge_eps_s)
        member = [rest[i] for i in np.flatnonzero(sub == np.bincount(sub).argmax())]
    return out


def empty_vehicle_table() -> pd.DataFrame:
    """An empty vehicle table with every column (and the classifier features) and their dtypes."""
    import pandas as pd

    from .classify import FEATURES

    df = pd.DataFrame({c: pd.Series(dtype="float64") for c in VEHICLE_COLUMNS})
    for c in ("time", "t_start", "t_end"):
        df[c] = pd.Series(dtype="datetime64[ns]")
    df["vehicle_class"] = pd.Series(dtype="object")
    df["flags"] = pd.Series(dtype="object")
    df["direction"] = pd.Series(dtype="int64")
    df["vehicle_id"] = pd.Series(dtype="int64")
    for f in FEATURES:
        df["feat_" + f] = pd.Series(dtype="float64")
    return df


def _classify(vehicles, prod, dec, z, t, xb, valid, p: DetectParams, classifier, t_ref_ns):
    from . import classify as _cls

    feats = _cls.vehicle_features(vehicles, prod, dec, z, t, xb, valid, t_ref_ns=t_ref_ns)
    for c in feats.columns:
        vehicles["feat_" + c] = feats[c].values
    if not p.classify:
        vehicles["vehicle_class"] = "unknown"
        vehicles["p_truck"] = np.nan
        return
    model = classifier if classifier is not None else _cls.load_classifier()
    vehicles["p_truck"] = model.p_heavy(feats)
    vehicles["vehicle_class"] = model.predict(feats, trams=p.trams)


def _to_frame(v, t_ref_ns):
    import pandas as pd

    def ts(sec):
        return (
            (t_ref_ns + np.round(np.asarray(sec, dtype=float) * 1e9)).astype("int64").astype("datetime64[ns]")
        )

    out = pd.DataFrame(
        {
            "vehicle_id": np.arange(len(v), dtype=np.int64),
            "time": ts(v["t_mid"]),
            "speed_kmh": v["speed_kmh"].astype(float),
            "direction": v["direction"].astype(np.int64),
            "vehicle_class": v["vehicle_class"].astype(object),
            "score": v["score"].astype(float),
            "p_truck": v["p_truck"].astype(float),
            "t_start": ts(v["t_in"]),
            "t_end": ts(v["t_out"]),
            "distance_start_m": v["x_lo"].astype(float),
            "distance_end_m": v["x_hi"].astype(float),
            "coverage": v["coverage"].astype(float),
            "snr": v["snr"].astype(float),
            "speed_change": v["speed_change"].astype(float),
            "flags": v["flags"].astype(object),
        }
    )
    for c in v.columns:
        if c.startswith("feat_"):
            out[c] = v[c].values
    return out
