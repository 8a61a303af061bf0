"""Continuous picking: window-offset independence, resampling, component mapping, gaps, NaNs, short traces."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from terralab.errors import InvalidInputError
from terralab.seismic import evaluate, io, picking
from terralab.seismic.phasenet import load_phasenet
from terralab.seismic.picking import GapWarning, MissingComponentWarning, ResamplingWarning


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(2)
    return load_phasenet()


@pytest.fixture(scope="module")
def sample():
    return io.read_sample()


@pytest.fixture(scope="module")
def stitched(sample):
    """The 3-component records of the embedded sample back to back: ~20 min of continuous real data."""
    return io.stitch_records(io.three_component(sample))


@pytest.fixture(scope="module")
def record(sample):
    return io.record_waveform(sample, 0)  # NC.MEM, 3 components


def _after(picks: pd.DataFrame, t0) -> pd.DataFrame:
    return picks[picks["time"] > t0]


def test_picks_independent_of_window_offset(stitched, model):
    wave, reference = stitched
    full = picking.pick(wave, model)
    later = picking.pick(wave.isel(time=slice(700, None)), model)  # the stream starts 7 s later
    # beyond the first window of the later stream both runs see the same data
    t0 = pd.Timestamp(wave["time"].values[700], tz="UTC") + pd.Timedelta(seconds=30)
    a, b = _after(full, t0), _after(later, t0)
    m = evaluate.match_picks(a, b, tolerance_s=0.02)
    assert len(a) >= 20
    assert (m["status"] == "matched").all(), m[m["status"] != "matched"]
    # and the picks are real: most analyst picks are among them
    found = evaluate.evaluate_picks(a, _after(reference, t0), (0.1,))
    assert found["recall"].min() > 0.75


def test_true_picks_barely_move_when_windows_start_elsewhere(stitched, model):
    """Without the UTC window grid the windows really are offset: analyst-confirmed picks still agree."""
    wave, reference = stitched
    full = picking.pick(wave, model, align_windows="start")
    later = picking.pick(wave.isel(time=slice(700, None)), model, align_windows="start")
    t0 = pd.Timestamp(wave["time"].values[700], tz="UTC") + pd.Timedelta(seconds=30)
    a, b = _after(full, t0), _after(later, t0)
    m = evaluate.match_picks(a, _after(reference, t0), 0.1)
    confirmed = a.loc[m.loc[m["status"] == "matched", "predicted_index"].astype(int)]
    again = evaluate.match_picks(confirmed, b, 0.05)
    assert len(confirmed) >= 15
    assert (again.loc[again["predicted_index"].notna(), "status"] == "matched").all()


def test_pick_finds_analyst_picks_of_a_real_record(record, model):
    picks = picking.pick(record, model)
    assert list(picks.columns) == picking.PICK_COLUMNS
    assert str(picks["time"].dt.tz) == "UTC"
    for phase in ("P", "S"):
        truth = pd.Timestamp(record.attrs[f"{phase.lower()}_time"])
        best = picks[picks["phase"] == phase]["time"].sub(truth).abs().min()
        assert best < pd.Timedelta(seconds=0.1)
    p = picks[picks["phase"] == "P"]
    assert set(p["polarity"]) <= {"U", "D", "N"}
    assert p["polarity_confidence"].between(0, 1).all()
    assert picks.loc[picks["phase"] == "S", "polarity"].isna().all()


def test_annotate_returns_probabilities_on_the_input_time_axis(record, model):
    prob = picking.annotate(record, model)
    assert prob.dims == ("phase", "time")
    assert list(prob["phase"].values) == ["noise", "P", "S"]
    np.testing.assert_array_equal(prob["time"].values, record["time"].values)
    np.testing.assert_allclose(prob.sum("phase").values, 1.0, atol=1e-4)


def test_max_merge_agrees_with_average_on_clear_picks(record, model):
    avg = picking.pick(record, model, merge="average")
    mx = picking.pick(record, model, merge="max")
    strong = avg[avg["probability"] > 0.8]
    m = evaluate.match_picks(strong, mx, 0.05)
    assert (m.loc[m["predicted_index"].notna(), "status"] == "matched").all()


def test_stream_and_dataarray_give_same_picks(record, model):
    stream = io.dataarray_to_stream(record)
    a = picking.pick(record, model)
    b = picking.pick(stream, model)
    assert set(b["trace_id"]) == {"NC.MEM..EH"}
    np.testing.assert_allclose((a["time"] - b["time"]).dt.total_seconds().to_numpy(), 0.0, atol=1e-6)
    prob = picking.annotate(stream, model)
    assert prob.dims == ("trace_id", "phase", "time")


def test_other_sampling_rate_is_resampled_with_a_warning(record, model):
    from scipy.signal import resample_poly

    up = resample_poly(record.values.astype(np.float64), 2, 1, axis=-1)
    wave200 = io.waveform_dataarray(up, pd.Timestamp(record["time"].values[0]), 200.0, trace_id="NC.MEM..EH")
    with pytest.warns(ResamplingWarning, match="200 Hz resampled to 100 Hz"):
        picks200 = picking.pick(wave200, model)
    picks100 = picking.pick(record, model)
    m = evaluate.match_picks(picks200[picks200["probability"] > 0.5], picks100, 0.03)
    assert (m.loc[m["predicted_index"].notna(), "status"] == "matched").all()


def test_z12_components_are_mapped_like_zne(record, model):
    renamed = record.assign_coords(component=["2", "1", "Z"])
    a = picking.annotate(record, model)
    b = picking.annotate(renamed, model)
    np.testing.assert_allclose(a.values, b.values, atol=1e-6)


def test_single_component_equals_zero_filled_horizontals(record, model):
    z_only = record.sel(component=["Z"])
    zeroed = record.copy(
        data=np.vstack(
            [np.zeros((2, record.sizes["time"]), np.float32), record.sel(component="Z").values[None]]
        )
    )
    with pytest.warns(MissingComponentWarning, match="filled with zeros"):
        a = picking.annotate(z_only, model)
    b = picking.annotate(zeroed, model)
    np.testing.assert_allclose(a.values, b.values, atol=1e-5)


def test_missing_horizontal_component_warns_and_still_picks(record, model):
    with pytest.warns(MissingComponentWarning, match=r"\['N'\]"):
        picks = picking.pick(record.sel(component=["E", "Z"]), model)
    assert (picks["phase"] == "P").any()


def test_gaps_in_a_stream_are_no_data(record, model):
    stream = io.dataarray_to_stream(record)
    cut = stream.copy()
    t0 = cut[0].stats.starttime
    cut.cutout(t0 + 60, t0 + 70)  # a 10-s gap after the P/S arrivals (30 s, ~33 s)
    assert len(cut) == 6
    with pytest.warns(GapWarning):
        prob = picking.annotate(cut, model).isel(trace_id=0)
    times = pd.DatetimeIndex(prob["time"].values)
    no_data = np.isnan(prob.values).all(axis=0)
    assert np.isnan(prob.values).any(axis=0).sum() == no_data.sum()
    assert 998 <= no_data.sum() <= 1001
    assert times[no_data].min() >= (t0 + 59.99).datetime and times[no_data].max() <= (t0 + 70.01).datetime
    with pytest.warns(GapWarning):
        picks = picking.pick(cut, model)
    truth = pd.Timestamp(record.attrs["p_time"])
    assert (picks[picks["phase"] == "P"]["time"].sub(truth).abs() < pd.Timedelta(seconds=0.1)).any()


def test_masked_traces_are_no_data(record, model):
    stream = io.dataarray_to_stream(record)
    for tr in stream:
        data = np.ma.masked_array(tr.data, mask=np.zeros(tr.data.size, bool))
        data.mask[7000:7500] = True
        tr.data = data
    with pytest.warns(GapWarning):
        prob = picking.annotate(stream, model).isel(trace_id=0)
    assert np.isnan(prob.values[:, 7000:7500]).all()
    assert np.isfinite(prob.values[:, :7000]).all()


def test_nan_samples_are_no_data(record, model):
    holed = record.copy(data=record.values.copy())
    holed.values[:, 6000:6300] = np.nan
    holed.values[0, 100:200] = np.nan  # one component only: the others still count
    with pytest.warns(GapWarning):
        prob = picking.annotate(holed, model)
    assert np.isnan(prob.values[:, 6000:6300]).all()
    assert np.isfinite(prob.values[:, 100:200]).all()
    clean = picking.annotate(record, model)
    # the P arrival (sample 3000) is far from the holes: its probability barely changes
    assert (
        abs(float(prob.sel(phase="P")[2990:3010].max()) - float(clean.sel(phase="P")[2990:3010].max())) < 0.1
    )


def test_pick_window_options_are_checked_and_match_annotate(record, model):
    """The window options travel as ``**options`` (at most 12 parameters): same picks as the annotate call."""
    opts = {"overlap_s": 10.0, "merge": "max", "taper_s": 3.0, "batch_size": 8, "align_windows": "start"}
    picks = picking.pick(record, model, 0.2, 0.25, **opts)
    expected = picking.picks_from_annotations(picking.annotate(record, model, **opts), 0.2, 0.25)
    pd.testing.assert_frame_equal(
        picks[["trace_id", "phase", "time", "probability"]],
        expected[["trace_id", "phase", "time", "probability"]],
    )
    with pytest.raises(InvalidInputError, match=r"unknown option\(s\) 'overlap'.*overlap_s"):
        picking.pick(record, model, overlap=10.0)


def test_short_traces_are_padded(record, model):
    short = record.isel(time=slice(2500, 3500))  # 10 s around the P pick
    prob = picking.annotate(short, model)
    assert prob.sizes["time"] == 1000
    picks = picking.pick(short, model)
    truth = pd.Timestamp(record.attrs["p_time"])
    assert (picks[picks["phase"] == "P"]["time"].sub(truth).abs() < pd.Timedelta(seconds=0.2)).any()


def test_bad_inputs_raise_typed_errors(record, model):
    with pytest.raises(InvalidInputError, match="obspy.Stream or an xr.DataArray"):
        picking.pick(record.values, model)
    with pytest.raises(InvalidInputError, match="dims"):
        picking.pick(record.expand_dims(station=["a"]), model)
    with pytest.raises(InvalidInputError, match="datetime64"):
        picking.pick(record.assign_coords(time=np.arange(record.sizes["time"]) / 100.0), model)
    with pytest.raises(InvalidInputError, match="no usable component"):
        picking.pick(record.assign_coords(component=["R", "T", "X"]), model)
    with pytest.raises(InvalidInputError, match="no finite samples"):
        picking.pick(record.copy(data=np.full(record.shape, np.nan, np.float32)), model)
    irregular = record.isel(time=np.r_[0:100, 105:2000])
    with pytest.raises(InvalidInputError, match="regularly sampled"):
        picking.pick(irregular, model)
    with pytest.raises(InvalidInputError, match="p_threshold"):
        picking.pick(record, model, p_threshold=0)
    with pytest.raises(InvalidInputError, match="overlap_s"):
        picking.annotate(record, model, overlap_s=30)
    with pytest.raises(InvalidInputError, match="merge"):
        picking.annotate(record, model, merge="median")
    import obspy

    with pytest.raises(InvalidInputError, match="no traces"):
        picking.pick(obspy.Stream(), model)


def test_window_starts_cover_data_and_follow_the_utc_grid():
    starts = picking.window_starts(10_000, 3000, 1500, first_grid=700)
    assert starts[0] == 0 and starts[-1] == 7000
    assert {700, 2200, 3700, 5200} <= set(starts)
    covered = np.zeros(10_000, bool)
    for s in starts:
        covered[s : s + 3000] = True
    assert covered.all()
    assert picking._first_grid_sample(pd.Timestamp("2020-01-01T00:00:07", tz="UTC"), 1500) == 800


def test_picks_from_annotations_match_pick_times(record, model):
    prob = picking.annotate(record, model)
    a = picking.picks_from_annotations(prob)
    b = picking.pick(record, model)
    np.testing.assert_allclose((a["time"] - b["time"]).dt.total_seconds(), 0.0, atol=1e-6)


def test_flipping_the_record_flips_the_first_motion(sample, model):
    called = 0
    for i in range(6):
        wave = io.record_waveform(sample, i)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MissingComponentWarning)
            a = picking.pick(wave, model)
            b = picking.pick(-wave, model)
        pa = a[(a["phase"] == "P") & (a["polarity"] != "N")]
        pb = b[b["phase"] == "P"]
        for _, row in pa.iterrows():
            j = (pb["time"] - row["time"]).abs().idxmin()
            if abs((pb.loc[j, "time"] - row["time"]).total_seconds()) < 0.02 and pb.loc[j, "polarity"] != "N":
                assert pb.loc[j, "polarity"] == {"U": "D", "D": "U"}[row["polarity"]]
                called += 1
    assert called >= 4


def test_annotate_records_gives_one_row_per_record(sample, model):
    prob = picking.annotate_records(sample.isel(record=slice(0, 2)), model)
    assert prob.dims == ("record", "phase", "time")
    assert prob.sizes["time"] == sample.sizes["time"]
    assert isinstance(prob, xr.DataArray)


def test_several_stations_in_one_stream(record, model):
    import obspy

    a = io.dataarray_to_stream(record)
    b = io.dataarray_to_stream(record.isel(time=slice(1000, None)).assign_attrs(trace_id="NC.OTHER..HH"))
    prob = picking.annotate(obspy.Stream(list(a) + list(b)), model)
    assert prob.dims == ("trace_id", "phase", "time")
    assert set(prob["trace_id"].values) == {"NC.MEM..EH", "NC.OTHER..HH"}
    other = prob.sel(trace_id="NC.OTHER..HH")
    assert np.isnan(other.values[:, :1000]).all() and np.isfinite(other.values[:, 1000:]).all()
    picks = picking.pick(obspy.Stream(list(a) + list(b)), model)
    truth = pd.Timestamp(record.attrs["p_time"])
    for tid in ("NC.MEM..EH", "NC.OTHER..HH"):
        p = picks[(picks["trace_id"] == tid) & (picks["phase"] == "P")]
        assert (p["time"].sub(truth).abs() < pd.Timedelta(seconds=0.1)).any()
