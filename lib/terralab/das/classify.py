"""Car/truck classification of detected vehicles.

Per-vehicle features are measured around the vehicle's track near mid-section:

* ``lf_peak``: quasi-static strain peak in noise units (load);
* ``footprint_m``: width of the strain bump at half maximum times speed (vehicle length + spreading);
* ``band_1`` ... ``band_4``: vibration power in 1.5-4, 4-8, 8-16 and 16-32 Hz relative to the channel's own noise
  (log10), from the ~100 Hz product, corrected for the decimator's passband droop;
* ``centroid_hz``: spectral centroid of the excess vibration power (log10 Hz);
* ``q50``, ``q90``, ``q99``: quantiles of |strain rate| during the passage in noise units (log10);
* ``speed``: log10 km/h (strain rate scales with speed).

The classifier is a gradient-boosted tree ensemble (scikit-learn ``HistGradientBoostingClassifier``) trained on
vehicles *detected* in synthetic highway and urban scenes (so the features carry the detector's own errors),
with whole scenes held out for testing. It is stored as plain JSON in ``car_truck_classifier.json`` (trees
as arrays, evaluated with numpy, so no pickle and no scikit-learn version lock) and loaded once, never refitted
per call. Re-train reproducibly with::

    python -m terralab.das.classify --retrain

The held-out accuracy is stored in the JSON (``metrics``) and checked by the tests.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FileFormatError, InvalidInputError
from ..files import write_text_atomic

__all__ = [
    "FEATURES",
    "MODEL_PATH",
    "CarTruckClassifier",
    "load_classifier",
    "make_training_set",
    "train",
    "vehicle_features",
]

MODEL_PATH = Path(__file__).with_name("car_truck_classifier.json")
FEATURES = ["lf_peak", "footprint_m", "band_1", "band_2", "band_3", "band_4", "centroid_hz", "q50", "q90", "q99",
            "speed"]
BANDS_HZ = ((1.5, 4.0), (4.0, 8.0), (8.0, 16.0), (16.0, 32.0))
KMH = 1.0 / 3.6


# --------------------------------------------------------------------------------------------------
# features
# --------------------------------------------------------------------------------------------------
def vehicle_features(vehicles, prod, dec, z, t, xb, valid, *, t_ref_ns: int, n_bins: int = 5, nfft: int = 256):
    """Features of each detected vehicle (internal track table) as a DataFrame with :data:`FEATURES` columns.

    Spectra use a fixed window of ``nfft`` samples of the ~100 Hz product centred on the passage; the noise
    spectrum of each channel bin is the median Welch spectrum of the whole batch (robust to the traffic in it).
    """
    import pandas as pd
    from scipy import signal

    from .filters import cic2_response

    mid = prod.mid
    tm = (prod.mid_time_ns - t_ref_ns) / 1e9
    fs_mid = dec.fs_mid
    dt_lf = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
    x_mid = 0.5 * (xb[0] + xb[-1])
    nfft = int(min(nfft, max(16, len(mid) // 2)))
    rows = []
    if len(mid) >= 2 * nfft:
        freqs, noise_psd = signal.welch(mid, fs=fs_mid, nperseg=nfft, axis=0, average="median")
        droop = np.maximum(cic2_response(freqs, dec.fs, dec.q1), 1e-3) if dec.q1 > 1 else np.ones_like(freqs)
        noise_rms = 1.4826 * np.median(np.abs(mid - np.median(mid, axis=0)), axis=0)
        win = signal.get_window("hann", nfft)
        win_norm = fs_mid * np.sum(win**2)
    else:
        freqs = None
    for tr in vehicles.itertuples(index=False):
        poly = tr.poly
        v = tr.speed_kmh * KMH
        cand = np.flatnonzero(valid & (xb >= tr.x_lo) & (xb <= tr.x_hi))
        if len(cand) == 0:
            cand = np.flatnonzero(valid)
        cols = cand[np.argsort(np.abs(xb[cand] - x_mid))[:n_bins]]
        tc = poly(xb[cols] - x_mid)
        # quasi-static peak in the noise-normalised lf image
        rc = np.round((tc - t[0]) / dt_lf).astype(int)
        w = max(1, int(round(0.5 / dt_lf)))
        peaks = [np.max(np.abs(z[max(r - w, 0):r + w + 1, c])) for c, r in zip(cols, rc) if 0 <= r < len(z)]
        feats = {k: np.nan for k in FEATURES}
        feats["lf_peak"] = float(np.log10(max(np.median(peaks), 1e-3))) if peaks else np.nan
        feats["speed"] = float(np.log10(tr.speed_kmh))
        if freqs is None:
            rows.append(feats)
            continue
        specs, noise, amps, widths = [], [], [], []
        half_fp = max(1.0, 30.0 / max(v, 0.5))
        for c, tcen in zip(cols, tc):
            if noise_rms[c] <= 0:
                continue
            i0 = int(np.searchsorted(tm, tcen)) - nfft // 2
            if i0 < 0 or i0 + nfft > len(tm):
                continue
            x = mid[i0:i0 + nfft, c].astype(np.float64)
            spec = np.abs(np.fft.rfft((x - x.mean()) * win)) ** 2 / win_norm
            spec[1:-1] *= 2
            specs.append(spec / droop)
            noise.append(noise_psd[:, c] / droop)
            amps.append(np.abs(x) / noise_rms[c])
            j0 = int(np.searchsorted(tm, tcen - half_fp))
            j1 = int(np.searchsorted(tm, tcen + half_fp))
            seg = mid[max(j0, 0):j1, c].astype(np.float64)
            if len(seg) > 4:
                strain = np.cumsum(seg - seg.mean()) / fs_mid
                strain -= np.linspace(strain[0], strain[-1], len(strain))
                widths.append(_half_max_width(strain) / fs_mid * v)
        if not specs:
            rows.append(feats)
            continue
        ps = np.mean(specs, axis=0)
        pn = np.mean(noise, axis=0)
        feats["footprint_m"] = float(np.log10(max(np.median(widths), 0.5))) if widths else np.nan
        for k, (lo, hi) in enumerate(BANDS_HZ, start=1):
            sel = (freqs >= lo) & (freqs < min(hi, 0.45 * fs_mid))
            feats[f"band_{k}"] = (float(np.log10(max(ps[sel].sum(), 1e-300) / max(pn[sel].sum(), 1e-300)))
                                  if sel.any() else 0.0)
        sel = (freqs >= BANDS_HZ[0][0]) & (freqs < min(BANDS_HZ[-1][1], 0.45 * fs_mid))
        excess = np.clip(ps[sel] - pn[sel], 0, None)
        cen = float(np.sum(freqs[sel] * excess) / np.sum(excess)) if excess.sum() > 0 else 8.0
        feats["centroid_hz"] = float(np.log10(max(cen, 0.5)))
        a = np.concatenate(amps)
        for q in (50, 90, 99):
            feats[f"q{q}"] = float(np.log10(max(np.percentile(a, q), 1e-3)))
        rows.append(feats)
    return pd.DataFrame(rows, columns=FEATURES)


def _half_max_width(s: np.ndarray) -> float:
    """Samples over which |s| exceeds half its maximum, around the maximum."""
    a = np.abs(s)
    k = int(np.argmax(a))
    half = 0.5 * a[k]
    lo = k
    while lo > 0 and a[lo - 1] >= half:
        lo -= 1
    hi = k
    while hi < len(a) - 1 and a[hi + 1] >= half:
        hi += 1
    return float(hi - lo + 1)


# --------------------------------------------------------------------------------------------------
# model: gradient-boosted trees stored as JSON, evaluated with numpy
# --------------------------------------------------------------------------------------------------
class CarTruckClassifier:
    """A binary tree-ensemble classifier (truck = 1) loaded from JSON; ``predict_proba`` gives P(truck)."""

    def __init__(self, spec: dict[str, Any]):
        try:
            self.features: list[str] = list(spec["features"])
            self.baseline = float(spec["baseline"])
            self.trees = [
                {k: np.asarray(v) for k, v in tree.items()} for tree in spec["trees"]
            ]
            self.fill = np.asarray(spec.get("fill", [0.0] * len(self.features)), dtype=float)
        except (KeyError, TypeError, ValueError) as exc:
            raise FileFormatError(f"classifier spec is malformed: {exc}") from exc
        self.metrics = dict(spec.get("metrics", {}))
        self.meta = {k: v for k, v in spec.items() if k not in ("trees",)}

    @classmethod
    def load(cls, path: str | os.PathLike = MODEL_PATH) -> CarTruckClassifier:
        path = Path(path)
        if not path.exists():
            raise FileFormatError(
                f"{path}: car/truck classifier file missing; re-create it with "
                "`python -m terralab.das.classify --retrain`"
            )
        try:
            spec = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise FileFormatError(f"{path}: not valid JSON ({exc}); re-train the classifier") from exc
        return cls(spec)

    def decision_function(self, X) -> np.ndarray:
        arr = self._matrix(X)
        raw = np.full(len(arr), self.baseline)
        for tree in self.trees:
            raw += _eval_tree(tree, arr)
        return raw

    def predict_proba(self, X) -> np.ndarray:
        """P(truck) for each row of X (DataFrame with the feature columns, or an array in FEATURES order)."""
        return 1.0 / (1.0 + np.exp(-self.decision_function(X)))

    def predict(self, X) -> np.ndarray:
        return np.where(self.predict_proba(X) >= 0.5, "truck", "car")

    def _matrix(self, X) -> np.ndarray:
        import pandas as pd

        if isinstance(X, pd.DataFrame):
            missing = [f for f in self.features if f not in X.columns]
            if missing:
                raise InvalidInputError(f"features {missing} missing; compute them with vehicle_features")
            arr = X[self.features].to_numpy(dtype=float)
        else:
            arr = np.asarray(X, dtype=float)
            if arr.ndim != 2 or arr.shape[1] != len(self.features):
                raise InvalidInputError(f"expected (n, {len(self.features)}) features, got {arr.shape}")
        return arr


def _eval_tree(tree: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """Evaluate one exported tree (arrays feature, threshold, left, right, value, is_leaf, missing_left)."""
    node = np.zeros(len(X), dtype=np.int64)
    feat, thr = tree["feature"], tree["threshold"]
    left, right, leaf = tree["left"], tree["right"], tree["is_leaf"].astype(bool)
    miss_left = tree["missing_left"].astype(bool)
    for _ in range(64):
        active = ~leaf[node]
        if not active.any():
            break
        idx = np.flatnonzero(active)
        n = node[idx]
        xv = X[idx, feat[n]]
        go_left = np.where(np.isnan(xv), miss_left[n], xv <= thr[n])
        node[idx] = np.where(go_left, left[n], right[n])
    return tree["value"][node].astype(float)


def _export_hgb(model, features: Sequence[str], fill) -> dict[str, Any]:
    """Trees of a fitted binary HistGradientBoostingClassifier as JSON-able arrays."""
    trees = []
    for (pred,) in model._predictors:
        nodes = pred.nodes
        trees.append({
            "feature": nodes["feature_idx"].astype(int).tolist(),
            "threshold": nodes["num_threshold"].astype(float).tolist(),
            "left": nodes["left"].astype(int).tolist(),
            "right": nodes["right"].astype(int).tolist(),
            "value": nodes["value"].astype(float).tolist(),
            "is_leaf": nodes["is_leaf"].astype(int).tolist(),
            "missing_left": nodes["missing_go_to_left"].astype(int).tolist(),
        })
    baseline = float(np.ravel(model._baseline_prediction)[0])
    return {"features": list(features), "baseline": baseline, "trees": trees, "fill": list(map(float, fill))}


@lru_cache(maxsize=4)
def _load_cached(path: str, mtime: float) -> CarTruckClassifier:
    return CarTruckClassifier.load(path)


def load_classifier(path: str | os.PathLike | None = None) -> CarTruckClassifier:
    """The packaged car/truck classifier (cached after the first load)."""
    p = Path(path) if path is not None else MODEL_PATH
    if not p.exists():
        return CarTruckClassifier.load(p)  # raises with the re-train hint
    return _load_cached(str(p), p.stat().st_mtime)


# --------------------------------------------------------------------------------------------------
# training on synthetic traffic
# --------------------------------------------------------------------------------------------------
def make_training_set(n_scenes: int = 40, *, seed: int = 1000, progress: bool = True):
    """Features and true classes of vehicles detected in ``n_scenes`` randomised synthetic scenes.

    Scenes alternate between highway bridges and urban streets; noise levels, coupling, truck share and
    fibre length are drawn at random. Only detections matched to a true vehicle are kept; ``scene`` says which
    scene each row comes from (for scene-wise train/test splits).
    """
    import pandas as pd

    from . import synthetic
    from .detect import detect_vehicles
    from .evaluate import match

    rng = np.random.default_rng(seed)
    frames = []
    it = range(n_scenes)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="training scenes")
    for i in it:
        kind = "highway_bridge" if i % 2 == 0 else "urban_street"
        over: dict[str, Any] = {
            "seed": int(seed + i),
            "truck_fraction": float(rng.uniform(0.25, 0.5)),
            "white_noise": float(5e-7 * rng.uniform(0.5, 2.0)),
            "coloured_noise": float(4e-8 * rng.uniform(0.5, 2.0)),
            "gain_spread": float(rng.uniform(0.2, 0.5)),
            "strain_per_kn": float(2e-8 * rng.uniform(0.6, 1.6)),
        }
        if kind == "highway_bridge":
            over.update(n_channels=int(rng.integers(200, 401)), duration_s=90.0)
        else:
            over.update(n_channels=int(rng.integers(40, 81)), duration_s=180.0, rate_per_min=8.0)
        data, truth = synthetic.scene(kind, **over)
        det = detect_vehicles(data, classify=False)
        pairs = match(det, truth)
        if len(pairs) == 0:
            continue
        feats = det.loc[pairs["det_index"].to_numpy(), [f"feat_{f}" for f in FEATURES]]
        feats.columns = FEATURES
        feats = feats.reset_index(drop=True)
        feats["truck"] = (truth.loc[pairs["truth_index"].to_numpy(), "vehicle_class"].to_numpy() == "truck")
        feats["scene"] = i
        feats["scene_kind"] = kind
        frames.append(feats)
    return pd.concat(frames, ignore_index=True)


def train(n_scenes: int = 48, *, test_fraction: float = 0.25, seed: int = 1000, path: str | os.PathLike = MODEL_PATH,
          progress: bool = True) -> dict[str, Any]:
    """Train the car/truck classifier on synthetic traffic, test it on held-out scenes, and save it as JSON.

    Returns the metrics written into the file (held-out accuracy, balanced accuracy, class counts).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix

    df = make_training_set(n_scenes, seed=seed, progress=progress)
    scenes = np.unique(df["scene"])
    n_test = max(2, int(round(test_fraction * len(scenes))))
    test_scenes = scenes[-n_test:]
    test = df["scene"].isin(test_scenes)
    X = df[FEATURES].to_numpy(dtype=float)
    y = df["truck"].to_numpy().astype(int)
    model = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.08, max_leaf_nodes=15, l2_regularization=1.0,
                                           random_state=seed)
    model.fit(X[~test], y[~test])
    fill = np.nanmedian(X[~test], axis=0)
    spec = _export_hgb(model, FEATURES, fill)
    clf = CarTruckClassifier(spec)
    pred = (clf.predict_proba(X[test]) >= 0.5).astype(int)
    ref = model.predict(X[test])
    if np.mean(pred == ref) < 0.99:
        raise RuntimeError("exported trees disagree with scikit-learn; the export is broken")
    cm = confusion_matrix(y[test], pred, labels=[0, 1])
    metrics = {
        "heldout_accuracy": float(accuracy_score(y[test], pred)),
        "heldout_balanced_accuracy": float(balanced_accuracy_score(y[test], pred)),
        "heldout_confusion_car_truck": cm.tolist(),
        "n_train": int((~test).sum()),
        "n_test": int(test.sum()),
        "n_train_trucks": int(y[~test].sum()),
        "n_test_trucks": int(y[test].sum()),
        "train_scenes": int(len(scenes) - n_test),
        "test_scenes": int(n_test),
        "seed": int(seed),
    }
    spec["metrics"] = metrics
    spec["trained_with"] = "python -m terralab.das.classify --retrain"
    write_text_atomic(path, json.dumps(spec, separators=(",", ":")))
    _load_cached.cache_clear()
    return metrics


def _main(argv: Sequence[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m terralab.das.classify", description=__doc__.split("\n")[0])
    ap.add_argument("--retrain", action="store_true", help="re-train on synthetic traffic and overwrite the model")
    ap.add_argument("--scenes", type=int, default=48, help="number of synthetic scenes (default 48)")
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--out", default=str(MODEL_PATH))
    args = ap.parse_args(argv)
    if not args.retrain:
        clf = load_classifier(args.out)
        print(json.dumps(clf.metrics, indent=2))
        return 0
    metrics = train(args.scenes, seed=args.seed, path=args.out)
    print(json.dumps(metrics, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(_main())
