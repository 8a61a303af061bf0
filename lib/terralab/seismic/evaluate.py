"""Pick evaluation: precision / recall / F1 at time tolerances, residual statistics, polarity accuracy.

Matching is one-to-one per trace (or record) and phase: pairs within the tolerance are taken in order of
increasing |residual|, each reference and each predicted pick used at most once
(:func:`terralab.matching.match_one_to_one` with ``method="greedy"``). Every unmatched predicted
pick is a false positive, every unmatched reference pick a false negative. A pick exactly at the tolerance
counts as matched. Residual = predicted − reference, in s.

:func:`phasenet_protocol` is the 154-record check of ``WEIGHTS.md`` (one 30-s window per record, start
drawn by ``numpy.random.default_rng(seed)``, peaks ≥ 0.3 at least 50 samples apart); on PhaseNet's
records it gives P F1 0.938 and S F1 0.846 with the original weights.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InvalidInputError
from ..matching import match_one_to_one

METRIC_COLUMNS = [
    "phase",
    "tolerance_s",
    "n_reference",
    "n_predicted",
    "n_matched",
    "precision",
    "recall",
    "f1",
    "residual_mean_s",
    "residual_std_s",
    "residual_mae_s",
]


#: Units of the score columns (``attrs["units"]`` of the score tables): "count", "1" (a fraction), "s".
METRIC_UNITS = {
    "tolerance_s": "s",
    "n_reference": "count",
    "n_predicted": "count",
    "n_matched": "count",
    "precision": "1",
    "recall": "1",
    "f1": "1",
    "residual_mean_s": "s",
    "residual_std_s": "s",
    "residual_mae_s": "s",
    "n_called": "count",
    "shift_s": "s",
    "n_full": "count",
    "n_shifted": "count",
    "n_same": "count",
    "fraction_same": "1",
    "max_dt_s": "s",
    "coverage": "1",
    "accuracy": "1",
}


def _with_units(df: pd.DataFrame) -> pd.DataFrame:
    df.attrs["units"] = {c: METRIC_UNITS[c] for c in df.columns if c in METRIC_UNITS}
    return df


def _seconds(values: pd.Series) -> np.ndarray:
    """Times (UTC Timestamps / datetime64) or numbers (s) as float seconds."""
    if pd.api.types.is_datetime64_any_dtype(values):
        v = pd.to_datetime(values, utc=True)
        return (v - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
    return values.to_numpy(dtype=np.float64)


def match_picks(
    predicted: pd.DataFrame, reference: pd.DataFrame, tolerance_s: float = 0.1, key: str = "trace_id"
) -> pd.DataFrame:
    """Pair predicted and reference picks one-to-one within ``tolerance_s`` per ``key`` and phase.

    Parameters
    ----------
    predicted, reference : pd.DataFrame
        Columns ``key``, ``phase``, ``time`` (UTC Timestamps or seconds).
    tolerance_s : float
    key : str
        Column identifying the trace (``trace_id``, or ``record`` for record sets).

    Returns
    -------
    pd.DataFrame
        One row per predicted or reference pick: ``key``, ``phase``, ``predicted_index``,
        ``reference_index`` (row labels; NaN when unmatched), ``residual_s``, ``status``
        ("matched", "false_positive", "missed").
    """
    for name, df in (("predicted", predicted), ("reference", reference)):
        missing = [c for c in (key, "phase", "time") if c not in df.columns]
        if missing:
            raise InvalidInputError(f"{name} picks lack columns {missing}")
    if not tolerance_s > 0:
        raise InvalidInputError(f"tolerance_s must be positive, got {tolerance_s}")
    pred_t = pd.Series(_seconds(predicted["time"]), index=predicted.index)
    ref_t = pd.Series(_seconds(reference["time"]), index=reference.index)
    rows = []
    groups_p = predicted.groupby([key, "phase"]).groups
    groups_r = reference.groupby([key, "phase"]).groups
    for group in sorted(set(groups_p) | set(groups_r), key=str):
        pi = np.asarray(groups_p.get(group, []))
        ri = np.asarray(groups_r.get(group, []))
        used_p, used_r = set(), set()
        if len(pi) and len(ri):
            d = pred_t[pi].to_numpy()[:, None] - ref_t[ri].to_numpy()[None, :]
            pairs = match_one_to_one(np.abs(d), tolerance_s + 1e-9, method="greedy")
            for a, b in pairs.sort_values("cost", kind="stable")[["row", "column"]].to_numpy():
                used_p.add(a)
                used_r.add(b)
                rows.append((*group, pi[a], ri[b], float(d[a, b]), "matched"))
        rows += [(*group, pi[a], np.nan, np.nan, "false_positive") for a in range(len(pi)) if a not in used_p]
        rows += [(*group, np.nan, ri[b], np.nan, "missed") for b in range(len(ri)) if b not in used_r]
    return pd.DataFrame(
        rows, columns=[key, "phase", "predicted_index", "reference_index", "residual_s", "status"]
    )


def evaluate_picks(
    predicted: pd.DataFrame,
    reference: pd.DataFrame,
    tolerances_s: Iterable[float] = (0.1, 0.5),
    key: str = "trace_id",
    phases: Iterable[str] = ("P", "S"),
) -> pd.DataFrame:
    """Precision, recall, F1 and residual mean/std/MAE per phase and tolerance.

    Parameters
    ----------
    predicted, reference : pd.DataFrame
        Columns ``key``, ``phase``, ``time``.
    tolerances_s : sequence of float
        Time tolerances, in s (default 0.1 and 0.5).
    key : str
        Trace identifier column.
    phases : sequence of str

    Returns
    -------
    pd.DataFrame with columns ``phase, tolerance_s, n_reference, n_predicted, n_matched, precision, recall,
    f1, residual_mean_s, residual_std_s, residual_mae_s`` (residuals over matched picks; std with ddof 0);
    one row per phase and tolerance, units in ``attrs["units"]``.

    Example
    -------
    >>> from terralab.seismic import io
    >>> records = io.read_sample(max_records=4)            # real NCEDC records with analyst picks
    >>> picks = pick_records(records)                      # PhaseNet, original weights
    >>> scores = evaluate_picks(picks, io.reference_picks(records), key="record")
    >>> scores[["phase", "tolerance_s", "n_reference", "n_predicted", "precision", "recall"]]
      phase  tolerance_s  n_reference  n_predicted  precision  recall
    0     P          0.1            4            5       0.80    1.00
    1     S          0.1            4            4       0.75    0.75
    2     P          0.5            4            5       0.80    1.00
    3     S          0.5            4            4       0.75    0.75
    """
    rows = []
    for tol in tolerances_s:
        m = match_picks(predicted, reference, tol, key)
        for phase in phases:
            sub = m[m["phase"] == phase]
            tp = int((sub["status"] == "matched").sum())
            n_pred = int(sub["predicted_index"].notna().sum())
            n_ref = int(sub["reference_index"].notna().sum())
            precision = tp / n_pred if n_pred else np.nan
            recall = tp / n_ref if n_ref else np.nan
            f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
            res = sub.loc[sub["status"] == "matched", "residual_s"].to_numpy()
            rows.append(
                {
                    "phase": phase,
                    "tolerance_s": float(tol),
                    "n_reference": n_ref,
                    "n_predicted": n_pred,
                    "n_matched": tp,
                    "precision": precision,
                    "recall": recall,
                    "f1": f1,
                    "residual_mean_s": float(res.mean()) if res.size else np.nan,
                    "residual_std_s": float(res.std()) if res.size else np.nan,
                    "residual_mae_s": float(np.abs(res).mean()) if res.size else np.nan,
                }
            )
    return _with_units(pd.DataFrame(rows, columns=METRIC_COLUMNS))


def polarity_accuracy(
    predicted: pd.DataFrame, reference: pd.DataFrame, tolerance_s: float = 0.1, key: str = "trace_id"
) -> pd.DataFrame:
    """Accuracy of first-motion polarities on P picks matched to reference picks that carry U or D.

    Returns a one-row DataFrame: ``n_reference`` (matched P picks with a U/D reference polarity),
    ``n_called`` (of them, predicted U or D), ``coverage`` = n_called / n_reference, ``accuracy`` = correct /
    n_called; units in ``attrs["units"]``.
    """
    for name, df in (("predicted", predicted), ("reference", reference)):
        if "polarity" not in df.columns:
            raise InvalidInputError(f"{name} picks have no polarity column")
    m = match_picks(
        predicted[predicted["phase"] == "P"], reference[reference["phase"] == "P"], tolerance_s, key
    )
    m = m[m["status"] == "matched"]
    ref_pol = (
        reference.loc[m["reference_index"].astype(int), "polarity"].to_numpy() if len(m) else np.array([])
    )
    pred_pol = (
        predicted.loc[m["predicted_index"].astype(int), "polarity"].to_numpy() if len(m) else np.array([])
    )
    has_ref = np.isin(ref_pol, ["U", "D"])
    called = has_ref & np.isin(pred_pol, ["U", "D"])
    n_ref, n_called = int(has_ref.sum()), int(called.sum())
    correct = int((ref_pol[called] == pred_pol[called]).sum())
    row = {
        "n_reference": n_ref,
        "n_called": n_called,
        "coverage": n_called / n_ref if n_ref else np.nan,
        "accuracy": correct / n_called if n_called else np.nan,
    }
    return _with_units(pd.DataFrame([row]))


def protocol_windows(
    records: xr.DataArray, seed: int = 0, window: int = 3000, margin: int = 100
) -> np.ndarray:
    """Window starts of the reference protocol: per record, in order, ``rng.integers(lo, hi + 1)``.

    ``lo = max(0, its + margin − window)``, ``hi = min(itp − margin, n − window)`` (``n`` = record length),
    so both analyst picks lie at least ``margin`` samples inside the window. Records lacking an S pick use
    ``lo = 0``; a record whose range is empty gets ``lo``.
    """
    from .records import check_records

    check_records(records)
    rng = np.random.default_rng(seed)
    n = records.sizes["time"]
    starts = []
    for itp, its in zip(records["trace_p_arrival_sample"].values, records["trace_s_arrival_sample"].values):
        lo = max(0, int(its) + margin - window) if np.isfinite(its) else 0
        hi = min(int(itp) - margin, n - window) if np.isfinite(itp) else n - window
        starts.append(int(rng.integers(lo, max(hi, lo) + 1)))
    return np.array(starts)


def protocol_picks(
    records: xr.DataArray,
    model: Any = None,
    seed: int = 0,
    threshold: float = 0.3,
    batch_size: int = 32,
    num_threads: int | None = None,
) -> pd.DataFrame:
    """The picks of the reference check of ``WEIGHTS.md`` (see :func:`phasenet_protocol`).

    Parameters
    ----------
    records : xr.DataArray (record, component [E,N,Z], time) at 100 Hz, e.g. :func:`read_phasenet_npz`
    model : torch.nn.Module, optional
        Default: the original PhaseNet.
    seed : int
        Seed of the window draws (``numpy.random.default_rng(seed)``, record by record in order).
    threshold : float
        Peak height for P and S picks.
    batch_size : int
    num_threads : int, optional
        torch threads for this call.

    Returns
    -------
    pd.DataFrame with ``record``, ``phase``, ``time`` (s within the record), ``sample``, ``probability``
    """
    from .picking import find_pick_indices, inference, model_or_default, predict_windows

    if records.sizes["component"] != 3 or [str(c) for c in records["component"].values] != ["E", "N", "Z"]:
        raise InvalidInputError("the protocol needs records with components E, N, Z")
    sr = float(records.attrs.get("sampling_rate_hz", 100.0))
    if abs(sr - 100.0) > 1e-6:
        raise InvalidInputError(f"the protocol needs 100 Hz records, got {sr} Hz")
    model = model_or_default(model)
    starts = protocol_windows(records, seed)
    values = records.values
    windows = np.stack([values[i, :, s : s + 3000] for i, s in enumerate(starts)])
    with inference(model, num_threads):
        prob = predict_windows(model, windows, batch_size)
    rows = []
    for i, name in enumerate(records["record"].values):
        for k, phase in ((1, "P"), (2, "S")):
            pos, heights = find_pick_indices(prob[i, k], threshold, 50, refine=False)
            for x, h in zip(pos, heights):
                sample = starts[i] + x
                rows.append(
                    {
                        "record": str(name),
                        "phase": phase,
                        "time": sample / sr,
                        "sample": sample,
                        "probability": float(h),
                    }
                )
    return pd.DataFrame(rows, columns=["record", "phase", "time", "sample", "probability"])


def phasenet_protocol(
    records: xr.DataArray,
    model: Any = None,
    seed: int = 0,
    threshold: float = 0.3,
    tolerances_s: Iterable[float] = (0.1, 0.5),
    batch_size: int = 32,
    num_threads: int | None = None,
) -> pd.DataFrame:
    """The reference check of ``WEIGHTS.md``: one 30-s window per record, peaks ≥ threshold, ≥ 50 samples
    apart.

    The picks themselves come from :func:`protocol_picks` (same arguments but ``tolerances_s``).

    Parameters
    ----------
    records : xr.DataArray (record, component [E,N,Z], time) at 100 Hz, e.g. :func:`read_phasenet_npz`
    model : torch.nn.Module, optional
        Default: the original PhaseNet.
    seed : int
        Seed of the window draws (``numpy.random.default_rng(seed)``, record by record in order).
    threshold : float
        Peak height for P and S picks.
    tolerances_s : sequence of float
        Tolerances at which to score (0.1 s is the protocol's).
    batch_size : int
    num_threads : int, optional
        torch threads for this call.

    Returns
    -------
    pd.DataFrame (as :func:`evaluate_picks`): one row per phase and tolerance.
    """
    picks = protocol_picks(records, model, seed, threshold, batch_size, num_threads)
    sr = float(records.attrs.get("sampling_rate_hz", 100.0))
    ref = []
    for i, name in enumerate(records["record"].values):
        for phase in ("P", "S"):
            idx = float(records[f"trace_{phase.lower()}_arrival_sample"].values[i])
            if np.isfinite(idx):
                ref.append({"record": str(name), "phase": phase, "time": idx / sr})
    return evaluate_picks(picks, pd.DataFrame(ref), tolerances_s, key="record")


def published_figures() -> pd.DataFrame:
    """PhaseNet's published scores and the port check of ``WEIGHTS.md``, for tables beside new results.

    Rows: the paper (Zhu & Beroza 2019, its NCEDC test set, 0.1 s; rounded to two decimals as ANCHORS.md
    quotes them) and the 154-record port check (these
    records were in PhaseNet's training pool: they check a port, they are not a held-out score).
    """
    return pd.DataFrame(
        [
            {
                "source": "Zhu & Beroza 2019 (paper, test set)",
                "phase": "P",
                "precision": 0.94,
                "recall": 0.86,
                "f1": 0.90,
                "residual_mean_s": np.nan,
                "residual_std_s": np.nan,
            },
            {
                "source": "Zhu & Beroza 2019 (paper, test set)",
                "phase": "S",
                "precision": 0.85,
                "recall": 0.76,
                "f1": 0.80,
                "residual_mean_s": np.nan,
                "residual_std_s": np.nan,
            },
            {
                "source": "WEIGHTS.md 154-record port check",
                "phase": "P",
                "precision": 0.941,
                "recall": 0.935,
                "f1": 0.938,
                "residual_mean_s": 0.002,
                "residual_std_s": 0.022,
            },
            {
                "source": "WEIGHTS.md 154-record port check",
                "phase": "S",
                "precision": 0.875,
                "recall": 0.818,
                "f1": 0.846,
                "residual_mean_s": 0.002,
                "residual_std_s": 0.036,
            },
        ]
    )


def pick_records(
    records: xr.DataArray,
    model: Any = None,
    p_threshold: float = 0.3,
    s_threshold: float = 0.3,
    progress: bool = False,
    **pick_kwargs: Any,
) -> pd.DataFrame:
    """Continuous picking (sliding windows, :func:`terralab.seismic.pick`) on every record of a record set.

    Returns the picks of all records with an extra ``record`` column (the key to score them against
    :func:`terralab.seismic.io.reference_picks`).
    """
    import warnings

    from ..progress import progress_bar
    from .io import record_waveform
    from .picking import MissingComponentWarning, model_or_default, pick
    from .records import check_records

    check_records(records)
    model = model_or_default(model)
    frames = []
    for i in progress_bar(range(records.sizes["record"]), enabled=progress, desc="picking records"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MissingComponentWarning)
            picks = pick(record_waveform(records, i), model, p_threshold, s_threshold, **pick_kwargs)
        picks.insert(0, "record", str(records["record"].values[i]))
        frames.append(picks)
    return pd.concat(frames, ignore_index=True)


def evaluate_records(
    records: xr.DataArray,
    model: Any = None,
    tolerances_s: Iterable[float] = (0.1, 0.5),
    p_threshold: float = 0.3,
    s_threshold: float = 0.3,
    progress: bool = False,
    **pick_kwargs: Any,
) -> pd.DataFrame:
    """Pick whole records continuously and score against their analyst picks.

    Unlike :func:`phasenet_protocol` (one window per record), every pick anywhere in the record counts;
    picks of other, unlabelled events in a record are counted as false positives. For the picks themselves
    and their polarity accuracy, call the steps: :func:`pick_records`, then :func:`evaluate_picks` and
    :func:`polarity_accuracy` against :func:`terralab.seismic.io.reference_picks` (``key="record"``).

    Returns
    -------
    pd.DataFrame (as :func:`evaluate_picks`): one row per phase and tolerance.
    """
    from .io import reference_picks

    picks = pick_records(records, model, p_threshold, s_threshold, progress, **pick_kwargs)
    return evaluate_picks(picks, reference_picks(records), tolerances_s, key="record")


def window_offset_stability(
    waveform: Any, shift_s: float = 7.0, model: Any = None, tolerance_s: float = 0.02, **pick_kwargs: Any
) -> pd.DataFrame:
    """How many picks stay put when the same data start ``shift_s`` later (the first 30 s after the new start
    excluded).

    Returns a one-row DataFrame: ``shift_s``, ``n_full``, ``n_shifted`` (picks in the common part), ``n_same``
    (matched within ``tolerance_s``), ``fraction_same`` (n_same / max(n_full, n_shifted)), ``max_dt_s`` over
    matched picks; units in ``attrs["units"]``.
    """
    from .picking import SAMPLING_RATE_HZ, model_or_default, pick

    model = model_or_default(model)
    k = round(float(shift_s * SAMPLING_RATE_HZ))
    full = pick(waveform, model, **pick_kwargs)
    shifted = pick(waveform.isel(time=slice(k, None)), model, **pick_kwargs)
    t0 = pd.Timestamp(waveform["time"].values[k], tz="UTC") + pd.Timedelta(seconds=30)
    a, b = full[full["time"] > t0], shifted[shifted["time"] > t0]
    m = match_picks(a, b, tolerance_s)
    same = m[m["status"] == "matched"]
    row = {
        "shift_s": shift_s,
        "n_full": len(a),
        "n_shifted": len(b),
        "n_same": len(same),
        "fraction_same": len(same) / max(len(a), len(b), 1),
        "max_dt_s": float(same["residual_s"].abs().max()) if len(same) else np.nan,
    }
    return _with_units(pd.DataFrame([row]))


def comparison_table(metrics: pd.DataFrame, label: str, tolerance_s: float = 0.1) -> pd.DataFrame:
    """``metrics`` at one tolerance beside PhaseNet's published figures (:func:`published_figures`)."""
    ours = metrics[np.isclose(metrics["tolerance_s"], tolerance_s)].assign(source=label)
    cols = ["source", "phase", "precision", "recall", "f1", "residual_mean_s", "residual_std_s"]
    return pd.concat([published_figures()[cols], ours[cols]], ignore_index=True)
