"""Compare detected vehicles with ground truth: matching, precision, recall, speed error, class accuracy."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InvalidInputError

__all__ = ["duplicates", "evaluate_runs", "evaluate_scenes", "match", "oracle_detectability", "score"]


def match(detections, truth, *, time_tol_s: float = 1.5, distance_tol_m: float = 10.0, speed_tol: float = 0.25):
    """One-to-one matching of detections to true vehicles (Hungarian assignment).

    A pair may match when the mid-section times differ by at most ``time_tol_s`` seconds or, for slow
    vehicles, by the time the vehicle needs to travel ``distance_tol_m`` (an 18 m truck at 12 km/h takes 5 s to
    pass a point), and the speeds by at most ``speed_tol`` (relative). The cost prefers close times, close
    speeds and equal directions.

    Returns
    -------
    pandas.DataFrame
        ``det_index``, ``truth_index`` (row labels), ``dt_s`` (detected - true time), ``speed_err`` (relative),
        ``direction_ok``, ``class_ok``.
    """
    import pandas as pd
    from scipy.optimize import linear_sum_assignment

    for name, df in (("detections", detections), ("truth", truth)):
        for col in ("time", "speed_kmh", "direction"):
            if col not in df.columns:
                raise InvalidInputError(f"{name} lacks column {col!r}")
    cols = ["det_index", "truth_index", "dt_s", "speed_err", "direction_ok", "class_ok"]
    if len(detections) == 0 or len(truth) == 0:
        return pd.DataFrame(columns=cols)
    td = detections["time"].to_numpy().astype("datetime64[ns]").astype(np.int64) / 1e9
    tt = truth["time"].to_numpy().astype("datetime64[ns]").astype(np.int64) / 1e9
    vd = detections["speed_kmh"].to_numpy(dtype=float)
    vt = truth["speed_kmh"].to_numpy(dtype=float)
    dd = detections["direction"].to_numpy()
    dtr = truth["direction"].to_numpy()
    dt = td[:, None] - tt[None, :]
    sv = np.abs(np.log(vd[:, None] / vt[None, :]))
    tol = np.maximum(time_tol_s, distance_tol_m / (vt / 3.6))[None, :]
    ok = (np.abs(dt) <= tol) & (sv <= np.log1p(speed_tol))
    cost = np.abs(dt) / tol + sv / np.log1p(speed_tol) + 2.0 * (dd[:, None] != dtr[None, :])
    big = 1e6
    cost = np.where(ok, cost, big)
    ri, ci = linear_sum_assignment(cost)
    keep = cost[ri, ci] < big
    ri, ci = ri[keep], ci[keep]
    out = pd.DataFrame({
        "det_index": detections.index.to_numpy()[ri],
        "truth_index": truth.index.to_numpy()[ci],
        "dt_s": dt[ri, ci],
        "speed_err": vd[ri] / vt[ci] - 1.0,
        "direction_ok": dd[ri] == dtr[ci],
    })
    if "vehicle_class" in detections.columns and "vehicle_class" in truth.columns:
        out["class_ok"] = detections["vehicle_class"].to_numpy()[ri] == truth["vehicle_class"].to_numpy()[ci]
    else:
        out["class_ok"] = np.nan
    return out[cols]


def score(detections, truth, **match_kwargs: Any) -> dict[str, float]:
    """Headline metrics of a detection run against truth.

    Returns a dict with ``n_true``, ``n_detected``, ``true_positives``, ``precision``, ``recall``, ``f1``,
    ``speed_error_median_pct`` / ``speed_error_p95_pct`` (absolute, %), ``speed_within_5pct`` (fraction of
    matches), ``time_error_median_s``, ``direction_accuracy`` and ``class_accuracy`` (over matches), and
    ``count_error_pct`` (detected vs true count).
    """
    pairs = match(detections, truth, **match_kwargs)
    n_true, n_det, tp = len(truth), len(detections), len(pairs)
    precision = tp / n_det if n_det else float("nan")
    recall = tp / n_true if n_true else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    err = np.abs(pairs["speed_err"].to_numpy(dtype=float)) * 100 if tp else np.array([np.nan])
    out = {
        "n_true": int(n_true),
        "n_detected": int(n_det),
        "true_positives": int(tp),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "count_error_pct": float(100 * (n_det - n_true) / n_true) if n_true else float("nan"),
        "speed_error_median_pct": float(np.median(err)),
        "speed_error_p95_pct": float(np.percentile(err, 95)),
        "speed_within_5pct": float(np.mean(err <= 5.0)) if tp else float("nan"),
        "time_error_median_s": float(np.median(np.abs(pairs["dt_s"]))) if tp else float("nan"),
        "direction_accuracy": float(pairs["direction_ok"].mean()) if tp else float("nan"),
        "class_accuracy": float(pairs["class_ok"].astype(float).mean()) if tp else float("nan"),
    }
    return out


def duplicates(detections, truth, pairs=None, *, time_tol_s: float = 2.5, speed_tol: float = 0.25) -> int:
    """Unmatched detections that repeat a matched vehicle: same direction, speed within ``speed_tol`` and
    mid-section time within ``time_tol_s`` (or the time to travel 10 m) of a true vehicle already matched."""
    if pairs is None:
        pairs = match(detections, truth)
    if len(detections) == 0 or len(pairs) == 0:
        return 0
    extra = detections.drop(index=pairs["det_index"].to_numpy())
    if len(extra) == 0:
        return 0
    hit = truth.loc[pairs["truth_index"].to_numpy()]
    te = extra["time"].to_numpy().astype("datetime64[ns]").astype(np.int64) / 1e9
    th = hit["time"].to_numpy().astype("datetime64[ns]").astype(np.int64) / 1e9
    vt = hit["speed_kmh"].to_numpy(dtype=float)
    tol = np.maximum(time_tol_s, 10.0 / (vt / 3.6))
    near = np.abs(te[:, None] - th[None, :]) <= tol[None, :]
    same = extra["direction"].to_numpy()[:, None] == hit["direction"].to_numpy()[None, :]
    sv = np.abs(np.log(extra["speed_kmh"].to_numpy(dtype=float)[:, None] / vt[None, :])) <= np.log1p(speed_tol)
    return int(np.any(near & same & sv, axis=1).sum())


def evaluate_scenes(simulator: str, site: str, seeds, *, detect_kwargs: dict | None = None, progress: bool = False):
    """Detect vehicles in random scenes of one simulator and site; pooled metrics and per-scene rows.

    Vehicles a scene records only partly (``truth.attrs["outside_record"]``) count neither way: a detection
    matched to one of them is dropped before scoring.

    Returns
    -------
    (dict, pandas.DataFrame)
        Pooled ``precision``, ``recall``, ``count_error_pct`` (|detected - true| / true over the pool),
        ``duplicates`` (count), ``speed_mae_kmh``, ``class_accuracy``, ``n_true``, ``n_detected``,
        ``n_scenes``; and one row per scene.
    """
    return evaluate_runs(simulator, site, seeds, {"run": dict(detect_kwargs or {})}, progress=progress)["run"]


def evaluate_runs(simulator: str, site: str, seeds, runs: dict[str, dict], *, progress: bool = False):
    """:func:`evaluate_scenes` for several detector settings at once, each scene made only once.

    ``runs`` maps a name to the keyword arguments of :func:`~terralab.das.detect.detect_vehicles` (a
    ``classifier`` may be among them). Returns ``{name: (pooled, per_scene)}``.
    """
    import pandas as pd

    from . import synthetic
    from .detect import detect_vehicles

    acc = {name: {"rows": [], "errs": [], "cls": []} for name in runs}
    it = list(seeds)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=f"{simulator}/{site}")
    for seed in it:
        data, truth = synthetic.random_scene(simulator, site, int(seed))
        outside = truth.attrs.get("outside_record")
        for name, kw in runs.items():
            det = detect_vehicles(data, **kw)
            if outside is not None and len(outside) and len(det):
                po = match(det, outside)
                det = det.drop(index=po["det_index"].to_numpy())
            pairs = match(det, truth)
            n_dup = duplicates(det, truth, pairs)
            e = (det.loc[pairs["det_index"].to_numpy(), "speed_kmh"].to_numpy()
                 - truth.loc[pairs["truth_index"].to_numpy(), "speed_kmh"].to_numpy())
            a = acc[name]
            a["errs"].append(np.abs(e))
            a["cls"].append(pairs["class_ok"].to_numpy(dtype=float))
            a["rows"].append({"simulator": simulator, "site": site, "seed": int(seed), "n_true": len(truth),
                              "n_detected": len(det), "true_positives": len(pairs), "duplicates": n_dup,
                              "speed_mae_kmh": float(np.mean(np.abs(e))) if len(e) else np.nan,
                              "class_accuracy": float(np.mean(a["cls"][-1])) if len(pairs) else np.nan})
        del data
    out = {}
    for name, a in acc.items():
        df = pd.DataFrame(a["rows"])
        n_true, n_det, tp = int(df["n_true"].sum()), int(df["n_detected"].sum()), int(df["true_positives"].sum())
        err = np.concatenate(a["errs"]) if a["errs"] else np.zeros(0)
        ok = np.concatenate(a["cls"]) if a["cls"] else np.zeros(0)
        pooled = {
            "simulator": simulator, "site": site, "n_scenes": len(df), "n_true": n_true, "n_detected": n_det,
            "precision": tp / n_det if n_det else float("nan"), "recall": tp / n_true if n_true else float("nan"),
            "count_error_pct": 100.0 * abs(n_det - n_true) / n_true if n_true else float("nan"),
            "duplicates": int(df["duplicates"].sum()),
            "speed_mae_kmh": float(np.mean(err)) if len(err) else float("nan"),
            "class_accuracy": float(np.mean(ok)) if len(ok) else float("nan"),
        }
        out[name] = (pooled, df)
    return out


def oracle_detectability(data, truth, *, site: str = "any", false_alarm: float = 0.01, n_null: int = 200,
                         min_gap_s: float = 3.0, seed: int = 0, params=None) -> dict[str, Any]:
    """How many true vehicles stand out of the record's own noise when their track is *known* (a ceiling).

    The detector's strain image is made as :func:`~terralab.das.detect.detect_vehicles` makes it (low-pass,
    integration, channel bins, common-mode removal, robust per-channel scaling); for each true vehicle, the
    velocity-tuned envelope of the speed band and direction it belongs to (the detector's band image at its short
    pulse scale) is read along its true track (a parabola through its section entry, middle and exit times, so
    braking and accelerating vehicles are followed; straight for vehicles turning off or in): per channel the largest value within ``max(0.3 s, 5 m / v)`` of
    the track, its median over the live channels (robust to the few channels where a track crosses another vehicle). The same statistic along ``n_null`` random tracks (speeds drawn
    from the true vehicles', mid-section times at least ``min_gap_s`` from every vehicle of that direction, the
    ones only partly recorded included) gives the noise distribution. A vehicle is *detectable* when its
    statistic exceeds the ``1 - false_alarm`` quantile of the null. No track search, no thresholds to choose:
    a detector working on this image cannot be expected to find vehicles this oracle misses.

    Returns
    -------
    dict
        ``n_true``, ``detectable`` (fraction), ``auc`` (probability a vehicle beats a random null track), and
        ``per_vehicle`` (array of the statistic, in null standard deviations above the null median).
    """
    from .detect import DetectParams, KMH, _band_image, make_decimator, _params
    from . import io

    p = params if params is not None else _params(None, {"site": site, "classify": False})
    data = io.check(data)
    fs = io.sampling_rate_hz(data)
    x = np.asarray(data["distance"].values, dtype=float)
    dec = make_decimator(fs, x, p, str(data.attrs.get("measurand", "unknown")))
    t0_ns = int(data["time"].values[0].astype("datetime64[ns]").astype(np.int64))
    prod = dec.process(data.values, t0_ns)
    lf = prod.lf.astype(np.float32)
    t = (prod.lf_time_ns - t0_ns) / 1e9
    dt = float(np.median(np.diff(t)))
    xb = dec.bin_distance
    dxb = float(np.median(np.diff(xb)))
    valid = np.abs(lf).max(axis=0) > 0
    if p.common_mode and valid.sum() >= 5:
        lf = lf - np.median(lf[:, valid], axis=1, keepdims=True)
    mad = np.median(np.abs(lf - np.median(lf, axis=0)), axis=0) * 1.4826
    valid &= mad > 0
    z = np.zeros_like(lf)
    z[:, valid] = lf[:, valid] / mad[valid]
    if p.clip_sigma > 0:
        z = (p.clip_sigma * np.tanh(z / p.clip_sigma)).astype(np.float32)
    section = truth.attrs.get("section_m", (float(x[0]), float(x[-1])))
    x_mid = 0.5 * (section[0] + section[1])
    edges = np.geomspace(p.speed_min_kmh * KMH, p.speed_max_kmh * KMH,
                         int(np.ceil(np.log(p.speed_max_kmh / p.speed_min_kmh) / np.log(p.band_ratio))) + 1)
    cache: dict = {}

    def band_of(v, d):
        k = int(np.clip(np.searchsorted(edges, v) - 1, 0, len(edges) - 2))
        if (k, d) not in cache:
            cache[(k, d)] = _band_image(z, t, dt, xb, dxb, valid, edges[k], edges[k + 1], d, p, p.pulse_m)
        return cache[(k, d)]

    cols = np.flatnonzero(valid)

    def stat(t_mid, v, d, t_in=None, t_out=None, path=None):
        b = band_of(v, d)
        tc = t_mid + d * (xb[cols] - x_mid) / v
        if path is not None:
            # the simulator's own track of the load centre (stop-and-go, turning): time it passes each channel
            tp, xp = (np.asarray(a, dtype=float) for a in path)
            xp = xp if d > 0 else -xp
            xp = np.maximum.accumulate(xp)
            inside = (d * xb[cols] >= xp.min()) & (d * xb[cols] <= xp.max())
            tc = np.where(inside, np.interp(d * xb[cols], xp, tp), np.nan)
        elif t_in is not None and np.isfinite(t_in) and np.isfinite(t_out):
            # the true track bends where the vehicle brakes or accelerates: a parabola through entry, middle, exit
            xe = np.array([section[0], x_mid, section[1]]) - x_mid
            te = np.array([t_in, t_mid, t_out]) if d > 0 else np.array([t_out, t_mid, t_in])
            if np.all(np.diff(te) * d > 0):
                tc = np.polyval(np.polyfit(xe, te, 2), xb[cols] - x_mid)
        w = max(0.3, 5.0 / v)
        offs = np.arange(-w, w + 1e-9, b.dt)
        rows = np.round((np.nan_to_num(tc, nan=-1e9)[:, None] + offs[None, :] - b.t[0]) / b.dt).astype(int)
        inside = (rows >= 0) & (rows < len(b.t))
        if inside.all(axis=1).mean() < 0.3:
            return np.nan
        vals = np.where(inside, b.env[np.clip(rows, 0, len(b.t) - 1), cols[:, None]], np.nan)
        # median over channels: a random track crossing another vehicle gains on a few channels only
        return float(np.nanmedian(np.nanmax(vals, axis=1)) / b.sigma)

    def secs(df):
        return (df["time"].to_numpy().astype("datetime64[ns]").astype(np.int64) - t0_ns) / 1e9

    outside = truth.attrs.get("outside_record")
    every = [truth] + ([outside] if outside is not None and len(outside) else [])
    t_all = np.concatenate([secs(df) for df in every])
    d_all = np.concatenate([df["direction"].to_numpy() for df in every])
    v_true = truth["speed_kmh"].to_numpy(dtype=float) * KMH
    ends = {}
    for c in ("t_enter", "t_exit"):
        ends[c] = secs(truth.rename(columns={c: "time", "time": "_t"})) if c in truth.columns else np.full(len(truth), np.nan)
    # vehicles that enter or leave by a side street do not cover the section: their track is the straight line
    turning = truth["turning"].to_numpy(dtype=bool) if "turning" in truth.columns else np.zeros(len(truth), bool)
    ends["t_enter"] = np.where(turning, np.nan, ends["t_enter"])
    paths = truth.attrs.get("tracks")
    paths = paths if paths is not None and len(paths) == len(truth) else [None] * len(truth)
    sig = np.array([stat(tm, v, int(d), a, b, path) for tm, v, d, a, b, path in
                    zip(secs(truth), v_true, truth["direction"].to_numpy(), ends["t_enter"], ends["t_exit"], paths)])
    rng = np.random.default_rng(seed)
    null = []
    tries = 0
    crossing = abs(section[1] - section[0]) / max(float(v_true.min()) if len(v_true) else 10.0, 1.0)
    while len(null) < n_null and tries < 50 * n_null and len(v_true):
        tries += 1
        d = int(rng.choice([-1, 1]))
        v = float(rng.choice(v_true)) * float(rng.uniform(0.9, 1.1))
        tm = float(rng.uniform(t[0] + 0.5 * crossing, t[-1] - 0.5 * crossing))
        same = d_all == d
        if same.any() and np.min(np.abs(t_all[same] - tm)) < min_gap_s:
            continue
        s = stat(tm, v, d)
        if np.isfinite(s):
            null.append(s)
    null = np.asarray(null)
    ok = np.isfinite(sig)
    if len(null) < 20 or not ok.any():
        return {"n_true": int(len(truth)), "detectable": float("nan"), "auc": float("nan"), "n_detectable": 0,
                "n_scored": 0,
                "per_vehicle": sig, "n_null": int(len(null))}
    thr = np.quantile(null, 1.0 - false_alarm)
    med, spread = np.median(null), np.std(null) + 1e-12
    return {
        "n_true": int(len(truth)),
        "detectable": float(np.mean(sig[ok] > thr)),
        "n_detectable": int(np.sum(sig[ok] > thr)), "n_scored": int(ok.sum()),
        "auc": float(np.mean(sig[ok][:, None] > null[None, :])),
        "per_vehicle": (sig - med) / spread,
        "n_null": int(len(null)),
    }
