"""Where a detector loses: a reason for each missed vehicle and each false detection of a simulated scene.

Precision and recall say how much is lost, not what; a user choosing a method or a parameter needs to know
whether the misses are vehicles never seen, vehicles sharing one detection with a neighbour, or vehicles
found at the wrong speed or place. :func:`explain_scene` scores a scene as the cross-simulator table does
(:func:`~terralab.das.evaluate.match_scene`, same direction only) and gives every unmatched whole vehicle
and every unmatched detection one of the reasons in :data:`MISSED_REASONS` and :data:`FALSE_REASONS`;
:func:`loss_counts` pools them over scenes (``benchmarks/das_losses.py`` prints the table).
:func:`track_evidence` reads each true vehicle's track in the detector's band images, so a missed vehicle
is also said to be too weak for the search, on a stronger neighbour's flank, or lost with a ridge of its own;
:func:`search_stages` follows its own track through the detector's steps, so a miss is said to be the
search's (no track ever) or a named rule's.
For the classifier, :func:`class_errors` lists each matched vehicle's true kind, true and predicted class
(``benchmarks/das_class_errors.py``).

Examples
--------
Two cars 1.5 s apart found as one detection, a third car found 40 % too fast, a fourth not at all, and a
detection where no vehicle passed:

>>> import pandas as pd
>>> from terralab.das.losses import explain_scene
>>> t0 = pd.Timestamp("2024-01-01")
>>> at = lambda s: [t0 + pd.Timedelta(seconds=x) for x in s]
>>> truth = pd.DataFrame({"time": at([10.0, 11.5, 30.0, 50.0]), "speed_kmh": 40.0, "direction": 1})
>>> det = pd.DataFrame({"time": at([10.5, 30.2, 70.0]), "speed_kmh": [40.0, 56.0, 40.0], "direction": 1})
>>> vehicles, false = explain_scene(det, truth)
>>> vehicles["reason"].tolist(), false["reason"].tolist()
(['found', 'shared', 'speed', 'unseen'], ['misplaced', 'ghost'])
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidInputError
from .evaluate import match_scene, pair_gaps
from .oracle import track_statistic
from .params import KMH, has_flag

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

    from .params import DetectParams

__all__ = [
    "ABREAST_S",
    "EVIDENCE",
    "FALSE_REASONS",
    "HEADWAY_BINS_S",
    "MISSED_REASONS",
    "STAGES",
    "STAGE_S",
    "class_errors",
    "duplicate_mask",
    "explain_scene",
    "loss_counts",
    "reason_table",
    "search_stages",
    "track_evidence",
    "true_track_classes",
]

#: Why a whole vehicle was missed (the first that applies, in this order; same direction throughout).
MISSED_REASONS = {
    "shared": "a detection matched to another vehicle is within the match tolerances of this one too: one "
    "detection for two vehicles (a platoon or queue merged, or the track search found one line)",
    "speed": "an unmatched detection passes within the time tolerance but its speed is off by more than the "
    "speed tolerance (a mis-fitted track, a stop-and-go vehicle read at its average speed)",
    "time": "an unmatched detection at a matching speed passes within ``reach`` x the time tolerance but "
    "beyond it (a detection on one strain lobe, or displaced by a neighbour)",
    "unseen": "no detection of its direction near it (too weak, or lost in the track search)",
}
#: Why a detection is false (the first that applies, in this order).
FALSE_REASONS = {
    "duplicate": "repeats a matched vehicle (:func:`~terralab.das.evaluate.duplicates`)",
    "misplaced": "within ``reach`` x the time tolerance of a missed vehicle of its direction: that vehicle's "
    "detection at the wrong speed or place",
    "ghost": "no vehicle of its direction near it (an echo, a line through noise or a neighbour's ridge)",
}
#: What the detector's band images show along a vehicle's true track (:func:`track_evidence`).
EVIDENCE = {
    "below": "its band's envelope along the track (the oracle's statistic: the median over the live channels "
    "of the largest value near the track) is at or below the band's detection threshold: too weak for this "
    "search",
    "flank": "above the threshold, but the nearest peak of the envelope lies more than :data:`RIDGE_M` of "
    "travel off the track: it sits on the flank of another vehicle's envelope with no ridge of its own",
    "ridge": "above the threshold with a ridge of its own: the track search or the merging lost it",
    "outside": "its speed lies outside the speed bands searched (the site's plausible range)",
}
#: The steps of the detector whose tracks ``detect_vehicles(..., return_products=True)`` keeps in its details'
#: ``"stages"`` (:func:`search_stages`), in order, with what each does to the tracks.
STAGES = {
    "search": "the band images' Hough segments clustered and each cluster's ridge followed into tracks",
    "second pass": "tracks of the residual search (``peel_sigma``) and of the energy image (``image``)",
    "dedupe": "tracks whose ridge mostly lies on a stronger track of the same direction dropped",
    "sign and merge": "sign-less second-pass tracks dropped; parallel tracks of one vehicle merged",
    "speed range": "tracks outside the site's speeds dropped",
    "chains": "bent sign-less tracks and ghost chains across a vehicle dropped",
    "trams and heavy pairs": "a tram's bogies and the tracks around it, a heavy vehicle's two lobes: one",
    "speed re-read and re-centring": "speeds re-read from the stacked strain image, lone vehicles re-centred",
}
#: A track is a vehicle's own (:func:`search_stages`) within this many seconds of its mid-section passage,
#: or :data:`RIDGE_M` of travel where that is longer, at its speed within the scorer's 25 %, and nearer to it
#: than to any other vehicle of its direction.
STAGE_S = 0.5
#: Largest distance (m of travel, median over the channels) from a vehicle's true track to the nearest peak
#: of its band envelope for "ridge": the scorer's distance tolerance (a ridge on one of its strain lobes,
#: a few metres off its load centre, is still its own).
RIDGE_M = 10.0
#: A band is read for a vehicle whose speed lies within this factor beyond its edges: its velocity fan passes
#: that much (:func:`~terralab.das.lines.band_image`), and a vehicle near an edge shows in both neighbours.
FAN_MARGIN = 1.2
#: Bins of a vehicle's headway (s, to the nearest true vehicle of its direction) for :func:`loss_counts`.
HEADWAY_BINS_S = (3.0, 6.0)
#: A vehicle with another of its direction passing within this many seconds is abreast of it, in another
#: lane: both simulators keep at least 1.2 s between vehicles of one lane, and a fibre along the road sees two
#: vehicles side by side as one (``abreast`` of :func:`loss_counts`).
ABREAST_S = 0.6


def duplicate_mask(
    detections: pd.DataFrame,
    truth: pd.DataFrame,
    pairs: pd.DataFrame,
    time_tolerance_s: float = 2.5,
    speed_tolerance: float = 0.25,
) -> np.ndarray:
    """Per row of ``detections``: is it one of :func:`~terralab.das.evaluate.duplicates` (an unmatched
    detection of a matched vehicle's direction and speed within ``time_tolerance_s`` or the time to travel
    10 m of it), given the ``pairs`` of :func:`~terralab.das.evaluate.match`."""
    out = np.zeros(len(detections), dtype=bool)
    if len(detections) == 0 or len(pairs) == 0:
        return out
    extra = ~detections.index.isin(pairs["det_index"])
    hit = truth.loc[pairs["truth_index"].to_numpy()]
    gap, window, log_speed, same = pair_gaps(detections[extra], hit, time_tolerance_s, 10.0)
    near = np.abs(gap) <= window
    speed_ok = log_speed <= np.log1p(speed_tolerance)
    out[extra] = np.any(near & same & speed_ok, axis=1)
    return out


def explain_scene(
    detections: pd.DataFrame,
    truth: pd.DataFrame,
    *,
    time_tolerance_s: float = 1.5,
    distance_tolerance_m: float = 10.0,
    speed_tolerance: float = 0.25,
    reach: float = 3.0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(vehicles, false): every whole vehicle of ``truth`` (``truth_index``; ``reason``: "found" or one of
    :data:`MISSED_REASONS`; ``headway_s`` to the nearest other whole vehicle of its direction, infinite where
    there is none; the truth's ``kind``, ``stopped`` and ``vehicle_class`` where it has them) and the
    unmatched detections (``det_index``, ``reason``), scored with :func:`~terralab.das.evaluate.match_scene`
    and these tolerances (detections of partly recorded vehicles, ``truth.attrs["outside_record"]``, count
    neither way)."""
    import pandas as pd

    tol = {"time_tolerance_s": time_tolerance_s, "distance_tolerance_m": distance_tolerance_m}
    kept, pairs = match_scene(detections, truth, same_direction=True, speed_tolerance=speed_tolerance, **tol)
    gap, win, log_speed, same = pair_gaps(kept, truth, time_tolerance_s, distance_tolerance_m)
    gap = np.abs(gap)  # detections x vehicles
    speed_ok = log_speed <= np.log1p(speed_tolerance)
    hit_t = truth.index.get_indexer(pairs["truth_index"].to_numpy())
    hit_d = kept.index.get_indexer(pairs["det_index"].to_numpy())
    is_hit_t, is_hit_d = np.zeros(len(truth), bool), np.zeros(len(kept), bool)
    is_hit_t[hit_t], is_hit_d[hit_d] = True, True
    near = same & (gap <= win)
    close = same & (gap <= reach * win)
    reasons = np.full(len(truth), "found", dtype=object)
    for j in np.flatnonzero(~is_hit_t):
        reasons[j] = _missed_reason(j, near, close, speed_ok, is_hit_d)
    vehicles = pd.DataFrame({"truth_index": truth.index, "reason": reasons})
    between, _, _, one_direction = pair_gaps(truth, truth, 0.0, 0.0)
    headway = np.where(one_direction, np.abs(between), np.inf)
    np.fill_diagonal(headway, np.inf)
    vehicles["headway_s"] = headway.min(axis=1) if len(truth) else np.zeros(0)
    for col in ("kind", "stopped", "vehicle_class"):
        if col in truth:
            vehicles[col] = truth[col].to_numpy()
    dup = duplicate_mask(kept, truth, pairs)
    by_missed = np.any(close[:, ~is_hit_t], axis=1)
    false_reason = np.where(dup, "duplicate", np.where(by_missed, "misplaced", "ghost"))[~is_hit_d]
    false = pd.DataFrame({"det_index": kept.index[~is_hit_d], "reason": false_reason.astype(object)})
    return vehicles, false


def class_errors(detections: pd.DataFrame, truth: pd.DataFrame, **tolerances: Any) -> pd.DataFrame:
    """One row per whole vehicle matched as :func:`explain_scene` matches (same direction; ``tolerances`` as
    there): ``truth_index``, ``kind`` (the truth's kind, e.g. "van" or "bus", else its class), ``true`` and
    ``predicted`` class, ``ok`` (the table's class column), ``near`` (the detection's "near" flag: another
    vehicle passed within 2 s) and ``amplitude`` (the classifier's amplitude feature, NaN without one).

    >>> import pandas as pd
    >>> t0 = pd.Timestamp("2024-01-01")
    >>> truth = pd.DataFrame({"time": [t0], "speed_kmh": 50.0, "direction": 1, "vehicle_class": "truck"})
    >>> det = truth.assign(vehicle_class="car", flags="near")
    >>> class_errors(det, truth)[["kind", "predicted", "ok", "near"]].values.tolist()
    [['truck', 'car', False, True]]
    """
    for name, table in (("detections", detections), ("truth", truth)):
        if "vehicle_class" not in table:
            raise InvalidInputError(
                f"{name} has no 'vehicle_class' column: class_errors compares classes; pass a table of "
                "das.detect_vehicles and a scene's truth (both have one)"
            )
    import pandas as pd

    kept, pairs = match_scene(detections, truth, same_direction=True, **tolerances)  # match's defaults
    hit = kept.loc[pairs["det_index"].to_numpy()]
    true = truth.loc[pairs["truth_index"].to_numpy()]
    n = len(pairs)
    flags = hit["flags"] if "flags" in hit else [""] * n
    amplitude = hit["feat_amplitude"].to_numpy(float) if "feat_amplitude" in hit else np.full(n, np.nan)
    return pd.DataFrame(
        {
            "truth_index": pairs["truth_index"].to_numpy(),
            "kind": (true["kind"] if "kind" in true else true["vehicle_class"]).to_numpy(),
            "true": true["vehicle_class"].to_numpy(),
            "predicted": hit["vehicle_class"].to_numpy(),
            "ok": pairs["class_ok"].to_numpy(dtype=bool),
            "near": np.array(has_flag(flags, "near"), dtype=bool),
            "amplitude": amplitude,
        }
    )


def true_track_classes(
    data: xr.DataArray,
    truth: pd.DataFrame,
    *,
    site: str = "any",
    params: DetectParams | None = None,
    classifier: Any = None,
) -> pd.DataFrame:
    """Every whole vehicle of ``truth`` classified from the classifier's features read along its *true* track
    (the simulator's path where the truth carries it, else its time, speed and direction) in the detector's
    products of ``data``, by the packaged model (or ``classifier``): the class accuracy with no detection
    error, what the features and the model allow. One row per truth row: ``truth_index``, ``kind`` (the
    truth's kind, else its class), ``true`` and ``predicted`` class, ``ok``. The amplitude feature is relative
    to the lower-quartile vehicle of all of them (weak vehicles a detector misses included)."""
    import pandas as pd

    from .classify import load_classifier, vehicle_features
    from .detect import decimate, normalised_image
    from .params import resolve_params
    from .truth import true_tracks

    p = resolve_params(params, {"site": site})
    x = np.asarray(data["distance"].values, dtype=float)
    if "vehicle_class" not in truth or x[0] > x[-1]:
        raise InvalidInputError(
            "need a truth table with 'vehicle_class' and a record whose distance increases"
        )
    prod, dec, x = decimate(data, p)
    z, valid = normalised_image(prod.lf.astype(np.float32), p)
    t_ref = int(prod.lf_time_ns[0])
    xb = dec.bin_distance
    x_mid = 0.5 * (xb[0] + xb[-1])
    rows = []
    for tc, kmh, d in zip(
        true_tracks(truth, xb, truth.attrs.get("section_m", (x[0], x[-1])), t_ref),
        truth["speed_kmh"].to_numpy(dtype=float),
        truth["direction"].to_numpy(),
    ):
        ok = np.isfinite(tc) if tc is not None else np.zeros(len(xb), dtype=bool)
        xs, ts = (xb[ok], tc[ok]) if ok.any() else (xb[:1], np.full(1, np.nan))
        track = lambda u, xs=xs, ts=ts: np.interp(np.asarray(u) + x_mid, xs, ts)
        rows.append({"speed_kmh": kmh, "direction": d, "x_lo": xs.min(), "x_hi": xs.max(), "poly": track})
    t = (prod.lf_time_ns - t_ref) / 1e9
    feats = vehicle_features(pd.DataFrame(rows), prod, dec, z, t, xb, valid, t_ref_ns=t_ref)
    model = classifier if classifier is not None else load_classifier()
    predicted = np.asarray(model.predict(feats, trams=p.trams)) if len(truth) else np.zeros(0, dtype=object)
    true = truth["vehicle_class"].to_numpy()
    kind = truth["kind"] if "kind" in truth else truth["vehicle_class"]
    return pd.DataFrame(
        {"truth_index": truth.index, "kind": kind.to_numpy(), "true": true, "predicted": predicted}
    ).assign(ok=lambda f: f["true"] == f["predicted"])


def track_evidence(data: xr.DataArray, truth: pd.DataFrame, details: dict[str, Any]) -> pd.Series:
    """For each vehicle of ``truth`` one of :data:`EVIDENCE`: what the detector's band images of the record
    ``data`` (``details`` from ``detect_vehicles(data, ..., return_products=True)``) show along the vehicle's
    true track (:func:`~terralab.das.truth.true_track`: the simulator's path where the truth carries it,
    else through its section entry, middle and exit times), in the speed bands whose velocity fan passes its
    speed (:data:`FAN_MARGIN`; short and long pulse; the larger envelope and the nearer peak).

    "below": the band envelope on the track (:func:`~terralab.das.oracle.track_statistic`, the oracle's
    statistic) is at or below the band threshold; else per live channel the envelope's local maximum in time
    above the threshold nearest to the track, and its median distance over the channels, in metres of
    travel: "ridge" within :data:`RIDGE_M` (or one band row), "flank" farther. So a missed vehicle was lost
    to its signal ("below"), to a stronger neighbour's response ("flank") or to the search and merging
    ("ridge"). Raises ``InvalidInputError`` where ``details`` hold no band images.
    """
    import pandas as pd

    from .truth import true_tracks

    if not all(k in details for k in ("bands", "distance", "valid", "t_ref_ns")):
        raise InvalidInputError(
            "details hold no band images to read (detect_vehicles(..., return_products=True) gives them "
            "only where the record has at least two live channels and eight low-rate samples): pass the "
            "details of a record the detector searched"
        )
    bands, valid = details["bands"], np.asarray(details["valid"])
    cols = np.flatnonzero(valid)
    xc = np.asarray(details["distance"])[cols]
    section = (float(data["distance"][0]), float(data["distance"][-1]))
    start = int(data["time"].values[0].astype("datetime64[ns]").astype(np.int64)) - details["t_ref_ns"]
    tracks = true_tracks(truth, xc, section, details["t_ref_ns"], start / 1e9)
    speeds = truth["speed_kmh"].to_numpy(dtype=float) * KMH
    directions = truth["direction"].to_numpy().astype(int)
    out = [_evidence(bands, tc, v, d, cols) for tc, v, d in zip(tracks, speeds, directions)]
    return pd.Series(out, index=truth.index, name="evidence", dtype=object)


def _evidence(bands, tc, v: float, d: int, cols: np.ndarray) -> str:
    """:data:`EVIDENCE` of one vehicle from its true track times ``tc`` at the live columns ``cols``."""
    level, offset, inside = 0.0, np.inf, False
    for b in bands:
        if tc is None or b.direction != d or not b.v_lo / FAN_MARGIN <= v < FAN_MARGIN * b.v_hi:
            continue
        inside = True
        stat = track_statistic(b, tc, v, cols) if b.thr > 0 else np.nan
        if not np.isfinite(stat):
            continue
        level = max(level, stat * b.sigma / b.thr)
        w = max(2, int(np.ceil(3.0 * RIDGE_M / v / b.dt)))
        rows = np.round((np.nan_to_num(tc, nan=-1e9) - b.t[0]) / b.dt).astype(int)
        ok = (rows > w) & (rows < len(b.t) - w - 1)
        r, k = rows[ok], np.arange(-w, w + 1)
        env = b.env[r[:, None] + k[None, :], cols[ok][:, None]]
        peak = (env[:, 1:-1] >= env[:, :-2]) & (env[:, 1:-1] >= env[:, 2:]) & (env[:, 1:-1] > b.thr)
        rows_off = np.where(peak, np.abs(k[1:-1])[None, :], np.inf).min(axis=1)
        # a peak within one band row counts as on the track
        offset = min(offset, max(float(np.median(rows_off)) - 1.0, 0.0) * b.dt * v)
    if not inside:
        return "outside"
    return "below" if level <= 1.0 else "ridge" if offset <= RIDGE_M else "flank"


def search_stages(
    truth: pd.DataFrame, details: dict[str, Any], *, speed_tolerance: float = 0.25
) -> pd.Series:
    """For each vehicle of ``truth`` what became of its own track in the detector (``details`` from
    ``detect_vehicles(data, ..., return_products=True)``, whose ``"stages"`` hold each step's tracks): "no
    track" where no step had one, "kept" where the detections hold it, else the step of :data:`STAGES` that
    removed it (or moved it more than the tolerance away). A track is a vehicle's own when it passes
    mid-section within :data:`STAGE_S` (or :data:`RIDGE_M` of travel) of it, in its direction, at its speed
    within ``speed_tolerance``, and no other such vehicle is nearer (in units of that window). So a missed
    vehicle is lost to the search or to a named rule. Raises ``InvalidInputError`` where ``details`` hold no
    stages.

    >>> import numpy as np, pandas as pd
    >>> truth = pd.DataFrame({"time": pd.to_datetime([10e9, 20e9, 30e9]), "speed_kmh": 72.0, "direction": 1})
    >>> at = lambda *ts: np.array([[t, 1, 72.0] for t in ts]).reshape(-1, 3)
    >>> stages = [("search", at(10.1, 20.2)), ("dedupe", at(10.1)), ("chains", at(10.0))]
    >>> search_stages(truth, {"stages": stages, "t_ref_ns": 0}).tolist()
    ['kept', 'dedupe', 'no track']
    """
    import pandas as pd

    if "stages" not in details or "t_ref_ns" not in details:
        raise InvalidInputError(
            "details hold no stages to read (detect_vehicles(..., return_products=True) gives them where the "
            "record has at least two live channels and eight low-rate samples): pass the details of a record "
            "the detector searched"
        )
    stages = details["stages"]
    last = np.full(len(truth), -1)
    for k, (_, tracks) in enumerate(stages):
        if not len(tracks) or not len(truth):
            continue
        found = pd.DataFrame(
            {
                "time": pd.to_datetime(details["t_ref_ns"] + np.round(tracks[:, 0] * 1e9).astype(np.int64)),
                "direction": tracks[:, 1],
                "speed_kmh": tracks[:, 2],
            }
        )
        gap, window, log_speed, same = pair_gaps(found, truth, STAGE_S, RIDGE_M)
        gap = np.abs(gap) / window
        ok = same & (gap <= 1.0) & (log_speed <= np.log1p(speed_tolerance))
        gap = np.where(ok, gap, np.inf)
        owner = gap.argmin(axis=1)[np.isfinite(gap.min(axis=1))]
        last[owner] = k
    names = [name for name, _ in stages]
    out = ["no track" if k < 0 else "kept" if k == len(names) - 1 else names[k + 1] for k in last]
    return pd.Series(out, index=truth.index, name="stage", dtype=object)


def _missed_reason(j, near, close, speed_ok, is_hit_d) -> str:
    """The first of :data:`MISSED_REASONS` that applies to the missed vehicle ``j``."""
    if np.any(near[is_hit_d, j] & speed_ok[is_hit_d, j]):
        return "shared"
    if np.any(near[~is_hit_d, j]):
        return "speed"
    if np.any(close[~is_hit_d, j] & speed_ok[~is_hit_d, j]):
        return "time"
    return "unseen"


def loss_counts(scenes: Iterable[tuple[pd.DataFrame, pd.DataFrame]]) -> dict[str, Any]:
    """Pool :func:`explain_scene` over scenes given as its (vehicles, false) tables: ``n_true``, the number
    of missed vehicles per reason (``missed_<reason>``), of false detections per reason (``false_<reason>``),
    ``recall_headway``: (n, recall) per headway bin of :data:`HEADWAY_BINS_S` (below the first, between,
    from the last on; recall NaN for an empty bin), ``recall_headway_by_class``: the same per true
    ``vehicle_class`` (empty where a scene's truth has no classes), and where every vehicles table has an
    ``evidence`` column (:func:`track_evidence`), ``evidence_missed`` and ``evidence_found``: the number of
    missed and of found vehicles per kind of :data:`EVIDENCE`; where every one has a ``stage`` column
    (:func:`search_stages`), ``stage_missed`` and ``stage_found``: the same per outcome ("no track", each of
    :data:`STAGES`, "kept"); ``found``: the vehicles found; ``abreast``: (n,
    found) of the vehicles with another of their direction within :data:`ABREAST_S` (side by side, which one
    fibre cannot resolve)."""
    import pandas as pd

    scenes = list(scenes)
    by_class = bool(scenes) and all("vehicle_class" in v for v, _ in scenes)
    evidence = bool(scenes) and all("evidence" in v for v, _ in scenes)
    staged = bool(scenes) and all("stage" in v for v, _ in scenes)
    cols = ["reason", "headway_s"] + (["vehicle_class"] if by_class else [])
    cols += (["evidence"] if evidence else []) + (["stage"] if staged else [])
    veh = pd.concat([v[cols] for v, _ in scenes] or [pd.DataFrame(columns=cols)], ignore_index=True)
    false = pd.concat([f[["reason"]] for _, f in scenes] or [pd.DataFrame(columns=["reason"])])
    out: dict[str, Any] = {"n_true": len(veh)}
    for r in MISSED_REASONS:
        out[f"missed_{r}"] = int((veh["reason"] == r).sum())
    for r in FALSE_REASONS:
        out[f"false_{r}"] = int((false["reason"] == r).sum())
    found = (veh["reason"] == "found").to_numpy()
    out["found"] = int(found.sum())
    if evidence:
        ev = veh["evidence"].to_numpy()
        out["evidence_missed"] = {e: int(np.sum(~found & (ev == e))) for e in EVIDENCE}
        out["evidence_found"] = {e: int(np.sum(found & (ev == e))) for e in EVIDENCE}
    if staged:
        st = veh["stage"].to_numpy()
        order = ["no track", *STAGES, "kept"]
        out["stage_missed"] = {e: int(np.sum(~found & (st == e))) for e in order}
        out["stage_found"] = {e: int(np.sum(found & (st == e))) for e in order}
    h = veh["headway_s"].to_numpy(dtype=float)
    out["recall_headway"] = _headway_recall(found, h)
    out["abreast"] = (int(np.sum(h < ABREAST_S)), int(np.sum(found & (h < ABREAST_S))))
    out["recall_headway_by_class"] = {}
    if by_class:
        cls = veh["vehicle_class"].astype(str).to_numpy()
        for c in sorted(set(cls)):
            out["recall_headway_by_class"][c] = _headway_recall(found[cls == c], h[cls == c])
    return out


def _headway_recall(found: np.ndarray, headway: np.ndarray) -> list[tuple[int, float]]:
    """(n, recall) of the vehicles in each headway bin of :data:`HEADWAY_BINS_S` (NaN recall where empty)."""
    out = []
    for lo, hi in pairwise((0.0, *HEADWAY_BINS_S, np.inf)):
        inside = (headway >= lo) & ((headway < hi) | (hi == np.inf))  # a lone vehicle's headway is infinite
        n = int(inside.sum())
        out.append((n, float(found[inside].mean()) if n else float("nan")))
    return out


def reason_table(scenes: Iterable[tuple[pd.DataFrame, pd.DataFrame]]) -> pd.DataFrame:
    """:func:`loss_counts` of the scenes as a table indexed by (``kind``: "missed" or "false", ``reason``),
    with the ``count`` and the reason's ``meaning``.

    >>> import pandas as pd
    >>> vehicles = pd.DataFrame({"reason": ["found", "unseen"], "headway_s": [2.0, 2.0]})
    >>> reason_table([(vehicles, pd.DataFrame({"reason": ["ghost"]}))])["count"].tolist()
    [0, 0, 0, 1, 0, 0, 1]
    """
    import pandas as pd

    counts = loss_counts(scenes)
    rows = [("missed", r, counts[f"missed_{r}"], text) for r, text in MISSED_REASONS.items()]
    rows += [("false", r, counts[f"false_{r}"], text) for r, text in FALSE_REASONS.items()]
    return pd.DataFrame(rows, columns=["kind", "reason", "count", "meaning"]).set_index(["kind", "reason"])
