"""Vehicle detection: count, speed, direction, class on highway and urban scenes with the same defaults."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from terralab import das
from terralab.das import synthetic
from terralab.errors import InvalidInputError

# Seeds 21-22 were never used while developing the detector (tuning used seeds 1-4), so these figures are
# what the defaults achieve on unseen scenes; thresholds leave a margin below them.
SEEDS = (21, 22)


def _pooled(scene, **kw):
    dets, truths = [], []
    for seed in SEEDS:
        data, truth = synthetic.scene(scene, seed=seed, **kw)
        dets.append(das.detect_vehicles(data).assign(scene_seed=seed))
        truths.append(truth.assign(scene_seed=seed))
    pairs = [das.match(d, t) for d, t in zip(dets, truths)]
    n_true = sum(len(t) for t in truths)
    n_det = sum(len(d) for d in dets)
    matched = pd.concat(pairs, ignore_index=True)
    return n_true, n_det, matched


@pytest.fixture(scope="module")
def highway():
    return _pooled("highway_bridge", duration_s=90.0, n_channels=300)


@pytest.fixture(scope="module")
def urban():
    return _pooled("urban_street")


# Measured with the packaged defaults (re-chosen on the half-space simulator's development seeds after its
# audit, see detect.CHOSEN) on these bump scenes: highway R 0.97 P 1.00 count error 3 % speed within 5 % for
# 0.97; urban R 0.94 P 0.97 count error 3 % within 5 % for 1.00 (0.94 and 0.88 before the speed re-read
# ``restack_m``; urban R 0.89, P 1.00, count error 11 %, 0.87 before
# ``max_merge_s``; R 0.83, count error 17 %, 0.86 before ``split_eps_s``). The previous defaults (2 Hz at 12
# Hz, chosen on the pre-audit half-space simulator) gave urban R 0.91 P 0.97 count error 6 % within 5 % 0.97.
# Floors: measured minus a margin.
FLOORS = {
    "highway": {"recall": 0.93, "precision": 0.95, "count": 0.08, "within5": 0.93},
    "urban": {"recall": 0.8, "precision": 0.95, "count": 0.2, "within5": 0.95},
}


@pytest.mark.parametrize("name", ["highway", "urban"])
def test_defaults_recover_count_speed_direction_and_class(name, request):
    n_true, n_det, m = request.getfixturevalue(name)
    recall, precision = len(m) / n_true, len(m) / n_det
    floor = FLOORS[name]
    assert n_true >= 25
    assert recall >= floor["recall"], recall
    assert precision >= floor["precision"], precision
    assert abs(n_det - n_true) / n_true <= floor["count"]
    speed_err = np.abs(m["speed_err"].to_numpy())
    assert np.median(speed_err) < 0.02
    assert np.mean(speed_err <= 0.05) >= floor["within5"]
    assert m["direction_ok"].all()
    # the packaged classifier was trained on the other (half-space) simulator: this is its transfer to the
    # bump simulator (measured 0.94 highway, 0.94 urban on these scenes with max_merge_s, which adds urban
    # vehicles; 0.94 / 0.97 before it with the length relative to the record's median vehicle, f8f4088; 0.94 /
    # 1.00 with the amplitude from the low-passed strain image along the track; 0.94 / 0.86 with the
    # strain-amplitude features and square-root class weights, 0.88 / 0.72 before them, 0.61 / 0.63 before the
    # half-space audit; 20-scene figures in the benchmark)
    assert m["class_ok"].mean() >= 0.75
    assert np.median(np.abs(m["dt_s"])) < 0.25


def test_real_bridge_record_gives_one_vehicle_at_a_plausible_speed(shared_data):
    data = das.read(shared_data / "das/bridge_vehicle/fig1.npz")
    vehicles = das.detect_vehicles(data)
    assert len(vehicles) == 1
    v = vehicles.iloc[0]
    assert 30 <= v.speed_kmh <= 90  # the track in the 0.3-3 Hz band crosses ~80 m in ~5.5 s
    assert v.direction == -1
    assert abs((v.time - pd.Timestamp("2023-09-20T00:15:56.8")).total_seconds()) < 1.5
    # the real record is not one das.diagnose warns of over-counting on (measured 0.036 of its image beyond
    # the detector's soft clip; the advice starts above 0.12)
    from terralab.das.diagnose import BEYOND_CLIP_ADVICE

    assert das.diagnose(data).attrs["beyond_clip"] < BEYOND_CLIP_ADVICE / 2


# Every threshold and smoothing parameter, changed by -20 % and +20 %.
SWEPT = [
    "threshold_sigma",
    "smoothing_m",
    "pulse_m",
    "long_pulse_m",
    "ghost_ratio",
    "clip_sigma",
    "hough_votes",
    "min_segment",
    "max_gap",
    "merge_eps_s",
    "search_s",
    "min_coverage",
    "min_fill",
    "lowpass_hz",
    "noisy_factor",
    "max_vehicle_m",
    "pair_merge_m",
    "max_merge_s",
    "merge_speed_change",
    "incoherent_speed_change",
    "crossing_ratio",
    "max_accel_ms2",
    "resplit_s",
    "split_eps_s",
    "restack_m",
]


@pytest.mark.parametrize("peel_sigma", [0.0, 3.5], ids=["default", "second_pass"])
def test_real_bridge_record_under_20_percent_parameter_changes(shared_data, peel_sigma, monkeypatch):
    """Issue 11 asks for one vehicle within 2 km/h under every +-20 % change: NOT MET (49 of 50 settings).

    Measured with the packaged defaults (this test prints it; defaults re-chosen on the half-space simulator's
    development seeds after its audit: low-pass 1 Hz at 8 Hz, lobe merge, stacked speed; then the three track
    rules ``pair_merge_m``, ``incoherent_speed_change``, ``crossing_ratio``; and the physical bound
    ``max_accel_ms2`` = 10 m/s^2 on a track's mean braking, 6 m/s^2 on its speeding up (``SPEEDUP_SHARE``),
    not tuned; then ``resplit_s``, ``split_eps_s`` and ``max_merge_s``, which change nothing here; then the
    speed re-read from the stacked strain image, ``restack_m``; then ``merge_speed_change``, which changes
    nothing here): 49 of 50 settings (25 parameters x 0.8, 1.2; 47 of 48 before ``merge_speed_change`` joined
    the sweep) give exactly one vehicle (before the bound: 25 of 38; 37 of 44 before the crossing rule's
    mid-section pivot; 42 of 44 before the speed-up share). The default gives one vehicle at 49.1 km/h,
    direction -1 (47.8 from the track's fit before ``restack_m``). A vehicle in direction -1 is found in all
    50 settings, at 46.2-50.0 km/h, in 49 of 50 within 2 km/h of the default's speed (before ``restack_m``:
    44.5-57.2 km/h, 41 of 46; the one left is ``pulse_m`` x 0.8, 46.2 km/h, whose ridge covers only 22-92 m of
    the section).
    The extra track (false: one vehicle crosses): 68 km/h braking 3.8 m/s^2 a second behind it (``min_fill``
    x 0.8; sign agreement 0.33). The speed-up share removed a 152 km/h track in the other direction 3 s later
    (``pulse_m`` x 1.2; its fit needs the "vehicle" to speed up at 9.55 m/s^2). The pivot rule of
    :func:`~terralab.das.chains.drop_crossing_chains` removed five others, sign-less lines through the
    sign-less vehicle's mid-section passage: 4 at 102-105 km/h in its direction (``threshold_sigma`` x 1.2,
    ``min_segment`` x 0.8 and 1.2, ``merge_eps_s`` x 1.2; as strong as the vehicle or up to 1.3 times
    stronger), 1 at 109 km/h in the other (``ghost_ratio`` x 0.8).
    What the test holds: the vehicle is never lost, never reported in the wrong direction, its speed stays
    within 40-60 km/h and in at least 49 settings within 2 km/h of the default's, at least 49 settings give
    exactly one vehicle, the default gives exactly one, the bound is what removes the bent chains (with it
    off, ``threshold_sigma`` x 0.8 gives 3 tracks), the speed-up share the 152 km/h one (with braking's bound
    for speeding up too, ``pulse_m`` x 1.2 gives 2) and the crossing rule the 102 km/h pivot (with it off,
    ``threshold_sigma`` x 1.2 gives 2). All of it with the optional second pass too (``peel_sigma`` 3.5: the
    same counts; its own 151 and 69 km/h residual tracks are dropped by its flank and sign rules).
    """
    from terralab.das import tracks

    data = das.read(shared_data / "das/bridge_vehicle/fig1.npz")
    base = das.DetectParams(peel_sigma=peel_sigma)
    default = das.detect_vehicles(data, params=base)
    assert len(default) == 1
    speed = float(default["speed_kmh"].iloc[0])
    low = base.threshold_sigma * 0.8
    assert len(das.detect_vehicles(data, params=base, threshold_sigma=low)) == 1
    assert len(das.detect_vehicles(data, params=base, threshold_sigma=low, max_accel_ms2=0.0)) == 3
    wide = base.pulse_m * 1.2
    assert len(das.detect_vehicles(data, params=base, pulse_m=wide)) == 1
    with monkeypatch.context() as m:
        m.setattr(tracks, "SPEEDUP_SHARE", 1.0)
        assert len(das.detect_vehicles(data, params=base, pulse_m=wide)) == 2
    high = base.threshold_sigma * 1.2
    assert len(das.detect_vehicles(data, params=base, threshold_sigma=high, crossing_ratio=0.0)) == 2
    single, close, rows = 0, 0, []
    for name in SWEPT:
        for f in (0.8, 1.2):
            value = getattr(base, name) * f
            if name in ("min_coverage", "min_fill", "ghost_ratio"):
                value = min(value, 1.0)
            v = das.detect_vehicles(data, params=base, **{name: value})
            rows.append((name, f, len(v), v["speed_kmh"].round(1).tolist()))
            real = v[(v["direction"] == -1) & v["speed_kmh"].between(40, 60)]
            assert len(real) >= 1, (name, f, v[["speed_kmh", "direction"]])
            single += len(v) == 1
            close += bool((real["speed_kmh"] - speed).abs().min() <= 2.0)
    print(
        "\n".join(map(str, rows)),
        f"\ndefault {speed:.1f} km/h; one vehicle {single}, within 2 km/h {close}",
    )
    assert single >= 49 and close >= 49, rows


def test_times_are_not_delayed_by_the_low_pass():
    veh = pd.DataFrame(
        {
            "time_s": [25.0, 40.0],
            "speed_kmh": [70.0, 100.0],
            "direction": [1, -1],
            "vehicle_class": ["car", "car"],
        }
    )
    data, truth = synthetic.highway_bridge(duration_s=65, n_channels=200, vehicles=veh, seed=4)
    m = das.match(das.detect_vehicles(data), truth)
    assert len(m) == 2 and np.abs(m["dt_s"]).max() < 0.2


def test_one_default_covers_slow_and_fast_vehicles():
    veh = pd.DataFrame(
        {
            "time_s": [70.0, 120.0, 150.0],
            "speed_kmh": [12.0, 45.0, 140.0],
            "direction": [1, -1, 1],
            "vehicle_class": ["car", "truck", "car"],
        }
    )
    data, truth = synthetic.urban_street(duration_s=200, n_channels=50, vehicles=veh, seed=6)
    m = das.match(das.detect_vehicles(data), truth)
    assert len(m) == 3
    assert np.abs(m["speed_err"]).max() < 0.05


def test_braking_vehicle_speed_is_read_at_mid_section():
    veh = pd.DataFrame(
        {
            "time_s": [40.0],
            "speed_kmh": [90.0],
            "direction": [1],
            "vehicle_class": ["car"],
            "speed_change": [-0.2],
        }
    )
    data, truth = synthetic.highway_bridge(duration_s=80, n_channels=400, vehicles=veh, seed=8)
    det = das.detect_vehicles(data)
    m = das.match(det, truth)
    assert len(m) == 1 and abs(m["speed_err"].iloc[0]) < 0.05
    assert det["speed_change"].iloc[0] < -0.05


def test_nan_and_dead_channels_are_masked_never_a_crash():
    data, _ = synthetic.highway_bridge(duration_s=60, n_channels=200, seed=9, rate_per_min=20)
    bad = data.copy()
    bad.values[:, 20:30] = np.nan
    bad.values[:, 100:104] = 0.0
    bad.values[1000:3000, 150] = np.nan
    clean = das.detect_vehicles(data)
    masked = das.detect_vehicles(bad)
    assert len(masked) >= len(clean) - 1
    assert {20.0, 25.0, 100.0} <= set(masked.attrs["masked_channels_m"])
    allnan = data.copy(data=np.full(data.shape, np.nan, dtype=np.float32))
    with pytest.raises(InvalidInputError, match="dead"):
        das.detect_vehicles(allnan)


def test_distance_time_arrays_are_transposed_and_give_the_same_vehicles():
    data, _ = synthetic.urban_street(duration_s=120, n_channels=30, seed=3)
    a = das.detect_vehicles(data)
    b = das.detect_vehicles(data.transpose("distance", "time"))
    pd.testing.assert_series_equal(a["time"], b["time"])


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d * 1e9,  # nanostrain/s instead of strain/s: every threshold is relative to the noise
        lambda d: d * 1e-3,
        lambda d: d.astype("float64"),
        lambda d: d.assign_coords(distance=d["distance"] + 1234.5),  # another origin along the fibre
        lambda d: d.isel(distance=slice(None, None, -1)),  # the distance axis stored descending
    ],
    ids=["nano", "milli", "float64", "origin", "descending"],
)
def test_units_dtype_origin_and_axis_order_do_not_change_the_vehicles(change):
    data, _ = synthetic.urban_street(duration_s=120, n_channels=30, seed=3)
    a, b = das.detect_vehicles(data), das.detect_vehicles(change(data))
    assert len(a) == len(b) >= 5
    assert (a["direction"] == b["direction"]).all() and (a["vehicle_class"] == b["vehicle_class"]).all()
    np.testing.assert_allclose(b["speed_kmh"], a["speed_kmh"], rtol=1e-4)
    assert (a["time"] - b["time"]).abs().max() < pd.Timedelta("1ms")


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.isel(distance=[0]), "at least 2"),
        (lambda d: d.isel(time=np.r_[np.arange(100, 200), np.arange(0, 100)]), "not increasing"),
        (lambda d: d.drop_vars("time"), "coordinate"),
        (lambda d: d.rename({"time": "t"}), "dims"),
    ],
)
def test_malformed_input_raises_invalid_input(mutate, message):
    data, _ = synthetic.urban_street(duration_s=20, n_channels=10, seed=0)
    with pytest.raises(InvalidInputError, match=message):
        das.detect_vehicles(mutate(data))


def test_sampling_rate_too_low_for_the_requested_speeds_is_refused():
    data, _ = synthetic.urban_street(duration_s=60, n_channels=8, seed=0)  # 35 m section
    slow = data.isel(time=slice(None, None, 125))  # 5 Hz
    with pytest.raises(InvalidInputError, match="too low"):
        das.detect_vehicles(slow, lowpass_hz=1.0)  # 160 km/h crosses 35 m in 0.8 s: 4 samples
    with pytest.raises(InvalidInputError, match="too low"):
        das.detect_vehicles(slow)  # default speeds up to 160 km/h, default 1 Hz low-pass
    with pytest.raises(InvalidInputError, match="lowpass_hz=2"):
        das.detect_vehicles(slow, lowpass_hz=2.0)  # a 2 Hz low-pass needs >= 8 Hz
    das.detect_vehicles(slow, speed_max_kmh=40.0, lowpass_hz=1.0)  # 3.2 s crossing: fine
    with pytest.raises(InvalidInputError, match="too low"):
        das.detect_vehicles(data.isel(time=slice(None, None, 250)))  # 2.5 Hz < 4 x lowpass_hz


def test_unknown_or_inconsistent_parameters_are_refused():
    data, _ = synthetic.urban_street(duration_s=20, n_channels=10, seed=0)
    with pytest.raises(InvalidInputError, match="unknown detector parameter"):
        das.detect_vehicles(data, speed_max=100)
    with pytest.raises(InvalidInputError, match="speed_min_kmh"):
        das.detect_vehicles(data, speed_min_kmh=100, speed_max_kmh=50)
    with pytest.raises(InvalidInputError, match="pair_merge_m must be >= 0"):
        das.detect_vehicles(data, pair_merge_m=-5.0)
    with pytest.raises(InvalidInputError, match="incoherent_speed_change must be >= 0"):
        das.detect_vehicles(data, incoherent_speed_change=float("nan"))
    with pytest.raises(InvalidInputError, match="crossing_ratio must be >= 0"):
        das.detect_vehicles(data, crossing_ratio=-1.0)
    with pytest.raises(InvalidInputError, match="max_accel_ms2 must be >= 0"):
        das.detect_vehicles(data, max_accel_ms2=-10.0)
    with pytest.raises(InvalidInputError, match="resplit_s must be >= 0"):
        das.detect_vehicles(data, resplit_s=-1.5)
    with pytest.raises(InvalidInputError, match="split_eps_s must be >= 0"):
        das.detect_vehicles(data, split_eps_s=-0.5)
    with pytest.raises(InvalidInputError, match="max_merge_s must be >= 0"):
        das.detect_vehicles(data, max_merge_s=-2.0)
    with pytest.raises(InvalidInputError, match="merge_speed_change must be >= 0"):
        das.detect_vehicles(data, merge_speed_change=-0.2)


def test_output_columns_and_types():
    data, _ = synthetic.urban_street(duration_s=120, n_channels=30, seed=3)
    v = das.detect_vehicles(data)
    for col in (
        "vehicle_id",
        "time",
        "speed_kmh",
        "direction",
        "vehicle_class",
        "score",
        "t_start",
        "t_end",
        "distance_start_m",
        "distance_end_m",
    ):
        assert col in v.columns
    assert v["time"].dtype == np.dtype("datetime64[ns]")
    assert (v["speed_kmh"] > 0).all() and set(v["direction"]) <= {1, -1}
    assert set(v["vehicle_class"]) <= {"car", "truck"} and v["score"].between(0, 1).all()
    assert v["time"].is_monotonic_increasing


def test_importing_the_workflow_is_light():
    code = (
        "import sys, time; t = time.perf_counter(); import terralab.das; "
        "dt = time.perf_counter() - t; heavy = [m for m in ('dascore', 'skimage', 'sklearn', 'torch', "
        "'distributed') if m in sys.modules]; print(dt, heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    dt, heavy = out.split(" ", 1)
    assert float(dt) < 1.0 and heavy.strip() == "[]"


def test_a_weak_track_of_the_other_direction_built_on_a_strong_vehicles_ridge_is_dropped_as_its_echo():
    from terralab.das.tracks import dedupe_tracks

    def track(direction, speed_kmh, strength, xs, ts):
        v = speed_kmh / 3.6
        return {
            "direction": direction,
            "speed_kmh": speed_kmh,
            "strength": strength,
            "pulse_m": 6.0,
            "poly": np.poly1d([direction / v, 0.0]),
            "pts": (np.asarray(xs, float), np.asarray(ts, float)),
        }

    x = np.linspace(-100, 100, 41)
    strong = track(-1, 60.0, 100.0, x, -x / (60 / 3.6))
    # an echo: ridge points that sit on the strong vehicle's ridge, fitted with the other direction
    echo = track(1, 150.0, 10.0, x, -x / (60 / 3.6) + 0.05)
    # a real vehicle of the other direction crossing the strong one: shares only the crossing
    crossing = track(1, 60.0, 10.0, x, x / (60 / 3.6))
    kept = dedupe_tracks([strong, echo, crossing], das.DetectParams())
    assert strong in kept and crossing in kept and echo not in kept


def _lobe_tracks(offset_m: float, strengths=(100.0, 90.0), polarities=(0.8, 0.7)):
    """Two parallel 40 km/h tracks ``offset_m`` apart on a band image whose envelope dips between them."""
    from terralab.das.lines import Band

    v = 40 / 3.6
    xb = np.arange(0.0, 200.0, 5.0)
    t = np.arange(0.0, 80.0, 0.125)
    times = (30.0, 30.0 + offset_m / v)
    env = sum(np.exp(-0.5 * ((t[:, None] - (tm + (xb[None, :] - 100.0) / v)) / 0.25) ** 2) for tm in times)
    band = Band(
        20 / 3.6, 40 / 3.6, 1, 1, 0.125, v * 0.125 / 5.0, t, env.astype(np.float32), 1.0, 0.5, env > 0.5
    )
    tracks = [
        {
            "direction": 1,
            "speed_kmh": 40.0,
            "t_mid": tm,
            "t_in": tm - 9.0,
            "t_out": tm + 9.0,
            "poly": np.poly1d([1 / v, tm]),
            "x_lo": 0.0,
            "x_hi": 195.0,
            "strength": s,
            "polarity": pol,
            "merged": 0,
            "band_obj": band,
        }
        for tm, s, pol in zip(times, strengths, polarities)
    ]
    return tracks, xb, np.ones(len(xb), dtype=bool)


def test_two_same_signed_lobes_of_comparable_strength_are_one_vehicle_at_their_midpoint():
    from terralab.das.tracks import merge_parallel

    p = das.DetectParams()
    tracks, xb, valid = _lobe_tracks(18.0)
    kept = merge_parallel(tracks, xb, valid, 100.0, p, max_vehicle_m=p.max_vehicle_m)
    assert len(kept) == 1 and kept[0]["merged"] == 1
    assert abs(kept[0]["t_mid"] - (30.0 + 0.5 * 18.0 / (40 / 3.6))) < 1e-9
    # switched off, farther apart than pair_merge_m, a much weaker second track, or one without a sign: two
    for tracks, kw in (
        (_lobe_tracks(18.0)[0], {"pair_merge_m": 0.0}),
        (_lobe_tracks(30.0)[0], {}),
        (_lobe_tracks(18.0, strengths=(100.0, 50.0))[0], {}),
        (_lobe_tracks(18.0, polarities=(0.8, 0.05))[0], {}),
    ):
        q = das.DetectParams(**kw)
        assert len(merge_parallel(tracks, xb, valid, 100.0, q, max_vehicle_m=q.max_vehicle_m)) == 2, kw


def test_tracks_whose_fitted_speeds_differ_up_to_merge_speed_change_are_compared_in_the_merge():
    """A weak track's fitted speed is loose (``merge_speed_change`` 0.2; 0.1 before, which left the
    opposite-signed lobe of a vehicle whose fit came out 14 % faster as a second vehicle)."""
    from terralab.das.tracks import merge_parallel

    def lobes(second_kmh):
        tracks, xb, valid = _lobe_tracks(12.0, polarities=(0.8, -0.8))
        tracks[1]["speed_kmh"] = second_kmh
        return tracks, xb, valid

    assert das.DetectParams().merge_speed_change == 0.2
    for second_kmh, kw, n in (
        (40.0, {}, 1),
        (46.0, {}, 1),  # log(46 / 40) = 0.14
        (46.0, {"merge_speed_change": 0.1}, 2),
        (52.0, {}, 2),  # 0.26: another vehicle
    ):
        tracks, xb, valid = lobes(second_kmh)
        q = das.DetectParams(**kw)
        kept = merge_parallel(tracks, xb, valid, 100.0, q, max_vehicle_m=q.max_vehicle_m)
        assert len(kept) == n, (second_kmh, kw)
        assert kept[0]["t_mid"] == 30.0 and kept[0]["speed_kmh"] == 40.0


def test_a_bending_track_without_a_sign_beside_a_vehicle_is_dropped_but_never_a_lone_one():
    from terralab.das.chains import drop_incoherent

    def track(t_mid, polarity, speed_change, direction=1):
        return {"t_mid": t_mid, "polarity": polarity, "speed_change": speed_change, "direction": direction}

    p = das.DetectParams()
    vehicle, chain = track(30.0, -0.9, 0.0), track(31.0, 0.1, 0.6)
    assert drop_incoherent([vehicle, chain], p) == [vehicle]
    # a lone track stays (the real bridge record's vehicle bends and has no consistent sign)
    assert drop_incoherent([chain], p) == [chain]
    assert len(drop_incoherent([track(30.0, 0.1, 0.0), chain], p)) == 2  # its neighbour has no sign either
    assert len(drop_incoherent([track(30.0, -0.9, 0.0, direction=-1), chain], p)) == 2  # other direction
    assert len(drop_incoherent([track(27.0, -0.9, 0.0), chain], p)) == 2  # more than 2 s apart
    assert len(drop_incoherent([vehicle, track(31.0, 0.1, 0.3)], p)) == 2  # bends less than 40 %
    assert len(drop_incoherent([vehicle, chain], das.DetectParams(incoherent_speed_change=0.0))) == 2


def test_a_faster_track_without_a_sign_crossing_a_stronger_vehicle_or_pivoting_on_one_is_dropped():
    from terralab.das.chains import drop_crossing_chains

    x = np.linspace(-100.0, 100.0, 41)

    def track(t_mid, speed_kmh, strength, polarity, direction=1):
        poly = np.poly1d([direction / (speed_kmh / 3.6), t_mid])
        return {
            "t_mid": t_mid,
            "speed_kmh": speed_kmh,
            "strength": strength,
            "polarity": polarity,
            "direction": direction,
            "poly": poly,
            "pts": (x, poly(x)),
        }

    p = das.DetectParams()
    vehicle, chain = track(30.0, 30.0, 1000.0, -0.9), track(30.5, 60.0, 300.0, 0.1)
    assert drop_crossing_chains([vehicle, chain], p) == [vehicle]
    assert len(drop_crossing_chains([vehicle, track(30.5, 60.0, 300.0, -0.8)], p)) == 2  # it has a sign
    assert len(drop_crossing_chains([vehicle, track(30.5, 60.0, 900.0, 0.1)], p)) == 2  # not much weaker
    assert len(drop_crossing_chains([vehicle, track(30.5, 33.0, 300.0, 0.1)], p)) == 2  # about as fast
    assert len(drop_crossing_chains([vehicle, track(50.0, 60.0, 300.0, 0.1)], p)) == 2  # never crosses it
    other = track(30.5, 60.0, 300.0, 0.1, direction=-1)
    assert len(drop_crossing_chains([vehicle, other], p)) == 2  # other direction, not at mid-section
    # where both pass mid-section (within the vehicle's ridge time: 0.36 s for a 6 m pulse at 30 km/h) a
    # sign-less faster line of its direction pivots on the vehicle: dropped unless much stronger than it
    assert drop_crossing_chains([vehicle, track(30.1, 60.0, 1200.0, 0.1)], p) == [vehicle]
    assert len(drop_crossing_chains([vehicle, track(30.1, 60.0, 1600.0, 0.1)], p)) == 2  # 1.6x stronger
    assert len(drop_crossing_chains([vehicle, track(30.1, 60.0, 1200.0, -0.8)], p)) == 2  # it has a sign
    assert len(drop_crossing_chains([vehicle, track(30.1, 33.0, 1200.0, 0.1)], p)) == 2  # about as fast
    assert len(drop_crossing_chains([vehicle, track(30.6, 60.0, 1200.0, 0.1)], p)) == 2  # 0.6 s later
    # vehicles of the two directions meet at mid-section all the time: no pivot on a vehicle with a sign,
    # but two sign-less lines through one point of the other direction (a bridge deck's standing strain) are
    assert len(drop_crossing_chains([vehicle, track(30.1, 60.0, 1200.0, 0.1, direction=-1)], p)) == 2
    signless = track(30.0, 30.0, 1000.0, 0.0)
    assert drop_crossing_chains([signless, track(30.1, 60.0, 1200.0, 0.1, direction=-1)], p) == [signless]
    assert len(drop_crossing_chains([signless, track(30.6, 60.0, 1200.0, 0.1, direction=-1)], p)) == 2
    assert drop_crossing_chains([chain], p) == [chain]
    assert len(drop_crossing_chains([vehicle, chain], das.DetectParams(crossing_ratio=0.0))) == 2


def test_implied_acceleration_of_a_track():
    """t(x) = x / v0 + c x^2 over +-50 m: the vehicle runs at 1 / t'(x), 25 m/s at the entry and 16.7 m/s at
    the exit, a mean deceleration of (25^2 - 16.7^2) / (2 x 100 m) = 1.74 m/s^2; a track whose slope changes
    sign would need the vehicle to stop and turn back."""
    from terralab.das.tracks import implied_accel

    xr = np.linspace(-50.0, 50.0, 11)
    v0, c = 20.0, 1e-4
    a = implied_accel(np.poly1d([c, 1 / v0, 3.0]), xr, 1)
    assert a == pytest.approx((25.0**2 - (1 / 0.06) ** 2) / 200.0)
    assert implied_accel(np.poly1d([-c, 1 / v0, 3.0]), xr, 1) == pytest.approx(a)  # speeding up alike
    assert implied_accel(np.poly1d([c, 1 / v0, 3.0]), xr, 1, signed=True) == pytest.approx(-a)  # braking
    assert implied_accel(np.poly1d([-c, 1 / v0, 3.0]), xr, 1, signed=True) == pytest.approx(a)
    # the same t(x) driven the other way round: entering at +50 m, it speeds up from 16.7 to 25 m/s
    assert implied_accel(np.poly1d([-c, -1 / v0, 3.0]), xr, -1, signed=True) == pytest.approx(a)
    assert implied_accel(np.poly1d([1 / v0, 3.0]), xr, 1) == 0.0  # constant speed
    assert implied_accel(np.poly1d([1 / v0, 3.0]), xr, -1) == np.inf  # wrong direction
    assert implied_accel(np.poly1d([2e-3, 1 / v0, 3.0]), xr, 1) == np.inf  # turns back inside the section


def test_the_acceleration_bound_keeps_braking_and_speeding_vehicles():
    """``max_accel_ms2`` (about 1 g) drops only tracks no vehicle could follow: a car braking hard across the
    section and a truck speeding up are found at their mid-section speeds with the bound on, as with it off.
    (What it drops, measured on the real bridge record: see the parameter sweep test below.)"""
    veh = pd.DataFrame(
        {
            "time_s": [40.0, 80.0],
            "speed_kmh": [90.0, 40.0],
            "direction": [1, -1],
            "vehicle_class": ["car", "truck"],
            "speed_change": [-0.3, 0.3],
        }
    )
    data, truth = synthetic.highway_bridge(duration_s=120, n_channels=200, vehicles=veh, seed=5)
    for p in (das.DetectParams(), das.DetectParams(max_accel_ms2=0.0)):
        m = das.match(das.detect_vehicles(data, params=p), truth)
        assert len(m) == 2 and np.abs(m["speed_err"]).max() < 0.05


def test_a_peeled_track_never_displaces_a_first_pass_vehicle_however_strong_on_its_residual():
    # the real bridge record with smoothing_m x 1.2: a 151 km/h second-pass track measured 139 on its residual
    # and displaced the 47.8 km/h vehicle (108); peeled tracks now rank after every first-pass track
    from terralab.das.chains import drop_crossing_chains
    from terralab.das.tracks import dedupe_tracks

    x = np.linspace(-60, 60, 25)

    def track(speed_kmh, strength, peeled):
        v = 47.8 / 3.6  # both on the vehicle's ridge
        return {
            "direction": 1,
            "speed_kmh": speed_kmh,
            "strength": strength,
            "pulse_m": 6.0,
            "poly": np.poly1d([1 / v, 0.0]),
            "pts": (x, x / (47.8 / 3.6) + 0.02 * (x > 0)),
            "polarity": 0.0,
            "peeled": peeled,
        }

    p = das.DetectParams()
    vehicle, peeled = track(47.8, 108.0, False), track(151.0, 139.0, True)
    assert dedupe_tracks([peeled, vehicle], p) == [vehicle]
    assert dedupe_tracks([peeled, dict(vehicle, peeled=True)], p) == [peeled]  # both peeled: the stronger
    # a first-pass vehicle without a sign crossed by a slower track three times as strong: a chain when that
    # track is a first-pass one, kept when it is peeled
    fast = dict(vehicle, speed_kmh=80.0, poly=np.poly1d([3.6 / 80.0, 0.0]))
    slow = dict(vehicle, strength=330.0)
    assert drop_crossing_chains([slow, fast], p) == [slow]
    assert drop_crossing_chains([dict(slow, peeled=True), fast], p)[-1] is fast


def test_the_second_pass_is_off_by_default_and_finds_platoon_cars_on_their_neighbours_flank():
    # bump simulator, urban site, test seed 503: the first pass gives 22 tracks, 22 of the 27 vehicles (and a
    # duplicate before merge_speed_change; 21 of 21 before max_merge_s); with the second pass 24, 24 true: the
    # two added are cars 2-3 s from a vehicle of their speed, and the pass adds no false track
    assert das.DetectParams().peel_sigma == 0
    data, truth = synthetic.random_scene("bump", "urban", 503)
    off = das.detect_vehicles(data, site="urban", classify=False, peel_sigma=0.0)
    on = das.detect_vehicles(data, site="urban", classify=False, peel_sigma=3.5)
    assert not off["flags"].str.contains("peeled").any()
    peeled = on["flags"].str.contains("peeled")
    assert peeled.sum() >= 2 and len(on) == len(off) + peeled.sum()
    hits_on, hits_off = len(das.match(on, truth)), len(das.match(off, truth))
    assert hits_on >= hits_off + 2 and len(on) - hits_on == len(off) - hits_off


def test_the_highway_and_urban_sites_turn_the_second_pass_on_unless_it_is_given():
    from terralab.das.params import PEEL_SITES, resolve_params, site_defaults

    assert PEEL_SITES == {"highway": 3.5, "urban": 3.5}
    for site in ("any", "bridge"):
        assert resolve_params(None, {"site": site}).peel_sigma == 0
        assert das.DetectParams.for_site(site).peel_sigma == 0
    for site in ("highway", "urban"):
        assert resolve_params(None, {"site": site}).peel_sigma == 3.5
        assert das.DetectParams.for_site(site).peel_sigma == 3.5
        assert resolve_params(None, {"site": site, "peel_sigma": 0.0}).peel_sigma == 0
        assert das.DetectParams.for_site(site, peel_sigma=0.0).peel_sigma == 0
    assert site_defaults("nowhere") == {}
    with pytest.raises(InvalidInputError, match="unknown site 'nowhere'"):
        das.DetectParams.for_site("nowhere")
    with pytest.raises(InvalidInputError, match="unknown detector parameter"):
        das.DetectParams.for_site("highway", no_such_setting=1.0)
    # bump simulator, highway test seed 500 (29 vehicles): 26 found, all true, without the pass; with the
    # site's default one more, flagged peeled, also true
    data, truth = synthetic.random_scene("bump", "highway", 500)
    on = das.detect_vehicles(data, site="highway", classify=False)
    off = das.detect_vehicles(data, site="highway", classify=False, peel_sigma=0.0)
    assert on.attrs["params"]["peel_sigma"] == 3.5 and off.attrs["params"]["peel_sigma"] == 0
    peeled = on["flags"].str.contains("peeled")
    assert peeled.sum() >= 1 and not off["flags"].str.contains("peeled").any()
    assert len(das.match(on, truth)) == len(on) >= len(das.match(off, truth)) + 1


def test_a_peeled_track_must_flank_a_vehicle_of_its_speed_and_have_a_strain_sign():
    from terralab.das.peel import FLANK_S, flanks, signed

    vehicle = {"t_mid": 10.0, "speed_kmh": 30.0}
    assert flanks({"t_mid": 12.5, "speed_kmh": 31.0}, vehicle)  # a platoon car 2.5 s behind
    assert not flanks({"t_mid": 10.0 + FLANK_S + 0.5, "speed_kmh": 30.0}, vehicle)  # too far
    assert not flanks({"t_mid": 10.4, "speed_kmh": 95.0}, vehicle)  # the bridge's fast residual
    tracks = [
        {"peeled": False, "polarity": 0.0},  # a first-pass track keeps its place without a sign
        {"peeled": True, "polarity": -0.6},
        {"peeled": True, "polarity": 0.12},  # the bridge's 69 km/h residual at pulse_m x 1.2
    ]
    assert signed(tracks) == tracks[:2]
