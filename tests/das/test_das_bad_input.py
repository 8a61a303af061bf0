"""Bad input to the detector and readers: a typed error that names the problem, or a documented empty
result."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

from terralab import das
from terralab.das import synthetic
from terralab.das.detect import ShortRecordWarning
from terralab.errors import FileFormatError, InvalidInputError


def _record(n_t, n_ch, fs, dx=1.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.datetime64("2024-01-01T00:00:00", "ns") + np.round(np.arange(n_t) * 1e9 / fs).astype(
        "timedelta64[ns]"
    )
    return xr.DataArray(
        rng.standard_normal((n_t, n_ch)).astype(np.float32),
        dims=("time", "distance"),
        coords={"time": t, "distance": dx * np.arange(n_ch)},
        attrs={"measurand": "strain_rate"},
    )


@pytest.mark.parametrize("fs", [1000.0, 1e6, 1e9])
def test_a_short_section_blames_the_section_and_lf_rate_not_the_sampling_rate(fs):
    data = _record(2000, 10, fs)  # 10 channels x 1 m
    with pytest.raises(InvalidInputError, match="section is too short") as err:
        das.detect_vehicles(data)
    msg = str(err.value)
    assert "lf_rate_hz" in msg and "record faster" not in msg


def test_a_record_shorter_than_one_crossing_warns_and_keeps_every_column():
    data, _ = synthetic.urban_street(duration_s=120, n_channels=30, seed=3)
    full = das.detect_vehicles(data)
    assert len(full) > 0
    with pytest.warns(ShortRecordWarning, match="less than one crossing"):
        short = das.detect_vehicles(data.isel(time=slice(0, int(2.0 * 625))))  # 145 m at 160 km/h: 3.3 s
    assert short.empty and list(short.columns) == list(full.columns)


def test_infinite_samples_are_masked_like_nan_without_numpy_warnings():
    data, _ = synthetic.highway_bridge(duration_s=60, n_channels=200, seed=9, rate_per_min=20)
    nan, inf = data.copy(), data.copy()
    nan.values[1000:3000, 150] = np.nan
    inf.values[1000:3000, 150] = np.inf
    inf.values[5000:5010, 40] = -np.inf
    nan.values[5000:5010, 40] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        a = das.detect_vehicles(inf)
    b = das.detect_vehicles(nan)
    assert len(a) == len(b) and len(a) > 3
    np.testing.assert_allclose(a["speed_kmh"], b["speed_kmh"], rtol=1e-4)


def test_truncated_optodas_file_is_called_truncated_or_corrupt(shared_data, tmp_path):
    src = (shared_data / "das/optodas_fixture/decimated_optodas.hdf5").read_bytes()
    cut = tmp_path / "cut.hdf5"
    cut.write_bytes(src[: len(src) // 2])
    with pytest.raises(FileFormatError, match="truncated or corrupt"):
        das.read(cut)


@pytest.mark.parametrize("fill", [np.nan, 0.0])
def test_all_nan_or_all_zero_records_are_refused_as_dead(fill):
    data = _record(20000, 100, 1000.0)
    data.values[:] = fill
    with pytest.raises(InvalidInputError, match="dead"):
        das.detect_vehicles(data)


def test_integer_records_are_read_as_their_values():
    data, _ = synthetic.urban_street(duration_s=120, n_channels=30, seed=3)
    scaled = data.fillna(0.0) * 1e9  # counts, as some interrogators write them
    ints = scaled.astype(np.int32)
    a = das.detect_vehicles(scaled.astype(np.float32))
    b = das.detect_vehicles(ints)
    assert len(a) == len(b) > 0
    np.testing.assert_allclose(a["speed_kmh"], b["speed_kmh"], rtol=1e-3)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.isel(distance=[0]), "at least 2"),
        (lambda d: d.isel(time=np.r_[np.arange(100, 200), np.arange(0, 100)]), "not increasing"),
        (
            lambda d: d.assign_coords(time=np.concatenate([d.time.values[:10], d.time.values[9:-1]])),
            "duplicated",
        ),
    ],
)
def test_single_channel_and_bad_time_axes_are_refused(mutate, message):
    data = _record(5000, 40, 625.0, dx=5.0)
    with pytest.raises(InvalidInputError, match=message):
        das.detect_vehicles(mutate(data))


def test_a_street_site_never_reports_motorway_speeds_and_unknown_sites_are_refused():
    data, _ = synthetic.urban_street(duration_s=120, n_channels=30, seed=3)
    v = das.detect_vehicles(data, site="urban")
    assert v["speed_kmh"].max() <= das.detect.SITES["urban"][1]
    assert v.attrs["params"]["speed_max_kmh"] == 80.0
    assert das.detect_vehicles(data, site="urban", speed_max_kmh=100).attrs["params"]["speed_max_kmh"] == 100
    with pytest.raises(InvalidInputError, match="site"):
        das.detect_vehicles(data, site="motorway")


def test_every_vehicle_carries_quality_flags_from_the_documented_set():
    data, _ = synthetic.urban_street(duration_s=180, n_channels=50, seed=4, rate_per_min=10)
    v = das.detect_vehicles(data)
    assert "flags" in v.columns and len(v) > 5
    seen = {f for s in v["flags"] for f in s.split(",") if f}
    assert seen <= set(das.detect.FLAGS)
    t = v["time"].to_numpy().astype("datetime64[ns]").astype(np.int64) / 1e9
    for i, s in enumerate(v["flags"]):
        others = np.delete(t, i)
        assert ("near" in s.split(",")) == bool(len(others) and np.min(np.abs(others - t[i])) < 2.0)
    assert (("partial" in s.split(",")) == (c < 0.9) for s, c in zip(v["flags"], v["coverage"]))


def test_diagnose_finds_dead_nan_and_saturated_channels_and_estimates_coupling():
    from scipy.stats import spearmanr

    data, _ = synthetic.halfspace_scene("urban", 7, dead_channels=2, saturated_channels=2, nan_channels=1)
    ch = das.diagnose(data)
    x = ch["distance_m"].to_numpy()
    assert set(x[ch["status"] == "dead"]) == set(data.attrs["dead_channels_m"])
    assert set(x[ch["status"] == "saturated"]) == set(data.attrs["saturated_channels_m"])
    assert set(x[ch["status"] == "nan"]) == set(data.attrs["nan_channels_m"])
    ok = (ch["status"] == "ok").to_numpy()
    # coupling from the record's own traffic follows the simulated coupling (rank correlation 0.50 on this
    # scene)
    rho = spearmanr(np.asarray(data.attrs["coupling"])[ok], ch["coupling"].to_numpy()[ok]).statistic
    assert rho > 0.35
    assert {"n_bad", "coupling_spread", "beyond_clip", "advice"} <= set(ch.attrs)
    assert 0.0 <= ch.attrs["beyond_clip"] <= 1.0


def test_diagnose_warns_of_over_counting_when_much_of_the_image_is_beyond_the_soft_clip():
    # the same bump highway scene at the simulator's noise and at 1 % of it: the quiet record's image lies
    # beyond the detector's soft clip far more often (measured 0.020 -> 0.209), and only it gets the advice
    from terralab.das.diagnose import BEYOND_CLIP_ADVICE

    normal = das.diagnose(synthetic.random_scene("bump", "highway", 503)[0]).attrs
    quiet = das.diagnose(synthetic.random_scene("bump", "highway", 503, quiet=True)[0]).attrs
    assert normal["beyond_clip"] < BEYOND_CLIP_ADVICE / 2 < 0.1 < BEYOND_CLIP_ADVICE < quiet["beyond_clip"]
    assert "soft clip" not in normal["advice"]
    assert "beyond its soft clip" in quiet["advice"] and "counts may be too high" in quiet["advice"]
