"""Data: CEED round trip through the synthetic file, laziness, corrupt files, SeisBench format, PhaseNet npz,
ObsPy."""

from __future__ import annotations

import tracemalloc

import h5py
import numpy as np
import pandas as pd
import pytest

from terralab.errors import DataNotAvailableError, FileFormatError, InvalidInputError
from terralab.seismic import io, synthetic


@pytest.fixture(scope="module")
def ceed_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ceed") / "2023.h5"
    truth = synthetic.write_synthetic_ceed(path, n_events=3, n_stations=4, seed=1)
    return path, truth


def test_ceed_round_trip_through_synthetic_file(ceed_file):
    path, truth = ceed_file
    with io.open_ceed(path) as ceed:
        assert len(ceed) == 3
        events = ceed.events
        assert set(io.CEED_EVENT_ATTRS) <= set(events.columns)
        assert (events["nt"] == 12000).all() and (events["sampling_rate"] == 100).all()
        picks = ceed.picks
        merged = truth.merge(picks, on=["event_id", "station_id"], suffixes=("_truth", ""))
        assert len(merged) == len(truth) == 12
        assert (merged["p_phase_index_truth"] == merged["p_phase_index"]).all()
        assert (merged["s_phase_index_truth"] == merged["s_phase_index"]).all()
        assert (merged["p_phase_polarity_truth"] == merged["p_phase_polarity"]).all()
        dt = (merged["p_phase_time_truth"] - merged["p_phase_time"]).dt.total_seconds().abs()
        assert dt.max() < 1e-5  # CEED stores times with microseconds
        row = truth.iloc[5]
        event = ceed[row.event_id]
        assert row.station_id in event.station_ids
        wave = event[row.station_id]
        assert wave.dims == ("component", "time") and wave.shape == (3, 12000)
        assert list(wave["component"].values) == ["E", "N", "Z"]
        assert wave.attrs["p_phase_polarity"] == row.p_phase_polarity
        p_time = pd.Timestamp(wave["time"].values[int(row.p_phase_index)], tz="UTC")
        assert abs((p_time - row.p_phase_time).total_seconds()) < 1e-5
        # the P onset is where the synthetic data say it is: quiet before, strong after
        z = wave.sel(component="Z").values
        i = int(row.p_phase_index)
        assert np.abs(z[i : i + 50]).max() > 3 * np.abs(z[i - 500 : i - 10]).std()
        records = ceed.to_records()
        assert records.sizes["record"] == 12
        assert np.isfinite(records["trace_p_arrival_sample"]).all()
        assert sum(1 for _ in ceed) == 3 and sum(1 for _ in event) == 4


def test_open_ceed_reads_one_trace_without_loading_the_file(tmp_path):
    path = tmp_path / "big.h5"
    synthetic.write_synthetic_ceed(path, n_events=8, n_stations=5, seed=2)  # 40 traces, ~5.8 MB
    assert path.stat().st_size > 5e6
    tracemalloc.start()
    try:
        with io.open_ceed(path) as ceed:
            eid = ceed.event_ids[3]
            wave = ceed[eid][ceed[eid].station_ids[2]]
            _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert wave.shape == (3, 12000)
    assert peak < 1.5e6  # one trace is 144 kB (+ its time axis); the file is 40 times that


def test_corrupt_hdf5_raises_file_format_error(tmp_path, ceed_file):
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 40)
    with pytest.raises(FileFormatError, match="corrupt"):
        io.open_ceed(garbage)
    truncated = tmp_path / "truncated.h5"
    data = ceed_file[0].read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    with pytest.raises(FileFormatError), io.open_ceed(truncated) as ceed:
        for event in ceed:
            for _ in event:
                pass
    with pytest.raises(DataNotAvailableError):
        io.open_ceed(tmp_path / "missing.h5")


def test_ceed_event_missing_attributes_raises(tmp_path):
    path = tmp_path / "broken.h5"
    synthetic.write_synthetic_ceed(path, n_events=2, n_stations=2, seed=3)
    with h5py.File(path, "r+") as f:
        eid = list(f.keys())[1]
        del f[eid].attrs["begin_time"]
        del f[eid].attrs["magnitude"]
    with io.open_ceed(path) as ceed:
        good = ceed[ceed.event_ids[0]]
        assert len(list(good)) == 2  # the intact event still reads
        with pytest.raises(FileFormatError, match=r"lacks the CEED attributes \['magnitude', 'begin_time'\]"):
            ceed[eid]
        with pytest.raises(FileFormatError, match=eid):
            _ = ceed.events
        with pytest.raises(InvalidInputError):
            ceed["no_such_event"]


def test_seisbench_round_trip(tmp_path, ceed_file):
    with io.open_ceed(ceed_file[0]) as ceed:
        records = ceed.to_records()
    out = io.write_seisbench(records, tmp_path / "sb")
    meta = pd.read_csv(out / "metadata.csv")
    for col in (
        "trace_name",
        "trace_p_arrival_sample",
        "trace_s_arrival_sample",
        "trace_sampling_rate_hz",
        "source_latitude_deg",
        "source_magnitude",
        "station_code",
        "station_network_code",
    ):
        assert col in meta.columns
    with h5py.File(out / "waveforms.hdf5") as f:
        assert f["data_format/component_order"][()].decode() == "ZNE"
        assert f["data_format/dimension_order"][()].decode() == "CW"
        first = f["data"][meta["trace_name"][0]][()]
    np.testing.assert_array_equal(first[0], records.values[0, 2])  # Z first in ZNE order
    with io.read_seisbench(out) as ds:
        assert len(ds) == 12
        back = ds.to_records()
        wave = ds[3]
    np.testing.assert_array_equal(back.values, records.values)
    np.testing.assert_array_equal(
        back["trace_p_arrival_sample"].values, records["trace_p_arrival_sample"].values
    )
    assert list(back["trace_p_polarity"].values) == list(records["trace_p_polarity"].values)
    assert list(back["station_code"].values) == list(records["station_code"].values)
    assert list(back["station_location_code"].values) == [""] * 12
    assert (
        back["trace_start_time"].values == records["trace_start_time"].values.astype("datetime64[us]")
    ).all()
    assert list(wave["component"].values) == ["E", "N", "Z"]
    assert not list(tmp_path.joinpath("sb").glob(".*.tmp*"))


def test_seisbench_reads_bucketed_traces(tmp_path):
    rng = np.random.default_rng(0)
    block = rng.standard_normal((2, 3, 500)).astype(np.float32)
    d = tmp_path / "bucketed"
    d.mkdir()
    with h5py.File(d / "waveforms.hdf5", "w") as f:
        f.create_dataset("data_format/component_order", data="ZNE")
        f.create_dataset("data_format/dimension_order", data="CW")
        f.create_dataset("data/bucket0", data=block)
    pd.DataFrame(
        {
            "trace_name": ["bucket0$0,:3,:500", "bucket0$1,:3,:400"],
            "trace_sampling_rate_hz": [100, 100],
            "trace_p_arrival_sample": [100, 120],
        }
    ).to_csv(d / "metadata.csv", index=False)
    with io.read_seisbench(d) as ds:
        a, b = ds[0], ds[1]
    np.testing.assert_array_equal(a.sel(component="Z").values, block[0, 0])
    np.testing.assert_array_equal(b.sel(component="E").values, block[1, 2, :400])


def test_seisbench_bad_inputs(tmp_path):
    with pytest.raises(DataNotAvailableError):
        io.read_seisbench(tmp_path)
    (tmp_path / "metadata.csv").write_text("trace_name\nx\n")
    (tmp_path / "waveforms.hdf5").write_bytes(b"nonsense")
    with pytest.raises(FileFormatError):
        io.read_seisbench(tmp_path)
    with pytest.raises(InvalidInputError):
        io.write_seisbench(np.zeros((2, 3, 10)), tmp_path / "x")


def test_embedded_sample_is_the_first_20_shared_records(shared_data):
    sample = io.read_sample()
    shared = io.read_phasenet_npz(
        shared_data / "seismic/phasenet_ncedc/waveform_train.tar.gz", max_records=20
    )
    assert sample.sizes == {"record": 20, "component": 3, "time": 9001}
    assert list(sample["record"].values) == list(shared["record"].values)
    np.testing.assert_array_equal(sample.values, shared.values)
    csv = pd.read_csv(shared_data / "seismic/phasenet_ncedc/waveform.csv").head(20)
    assert list(sample["trace_p_arrival_sample"].values) == list(csv["itp"])
    assert list(sample["trace_s_arrival_sample"].values) == list(csv["its"])


def test_read_phasenet_npz_from_directory_and_single_file(tmp_path):
    sample = io.read_sample(max_records=3)
    for i in range(3):
        np.savez(
            tmp_path / str(sample["record"].values[i]),
            data=sample.values[i].T.astype(np.float64),
            itp=int(sample["trace_p_arrival_sample"][i]),
            its=int(sample["trace_s_arrival_sample"][i]),
            channels=str(sample["trace_channel"].values[i]),
        )
    from_dir = io.read_phasenet_npz(tmp_path)
    assert from_dir.sizes["record"] == 3
    np.testing.assert_array_equal(from_dir.sel(record=sample["record"].values).values, sample.values)
    one = io.read_phasenet_npz(tmp_path / str(sample["record"].values[1]))
    assert one.sizes["record"] == 1 and float(one["trace_p_arrival_sample"][0]) == 3000
    assert one["trace_start_time"].values[0] == sample["trace_start_time"].values[1]


def test_read_phasenet_npz_bad_inputs(tmp_path):
    with pytest.raises(DataNotAvailableError):
        io.read_phasenet_npz(tmp_path / "none.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, data=np.zeros((100, 3)))
    with pytest.raises(FileFormatError, match="lacks"):
        io.read_phasenet_npz(bad)
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(FileFormatError):
        io.read_phasenet_npz(corrupt)


def test_obspy_file_round_trip(tmp_path):
    sample = io.read_sample(max_records=1)
    wave = io.record_waveform(sample, 0)
    path = tmp_path / "rec.mseed"
    io.dataarray_to_stream(wave).write(str(path), format="MSEED")
    stream = io.read_waveforms(path)
    assert [tr.stats.channel for tr in stream] == ["EHE", "EHN", "EHZ"]
    np.testing.assert_allclose(
        stream.select(channel="EHZ")[0].data, wave.sel(component="Z").values, rtol=1e-6
    )
    with pytest.raises(FileFormatError):
        (tmp_path / "junk.xyz").write_text("no seismogram")
        io.read_waveforms(tmp_path / "junk.xyz")


def test_catalog_names_open_the_seismic_entries():
    from terralab import catalog

    sample = catalog.open("seismic_phasenet_ncedc_sample")
    assert sample.dims == ("record", "component", "time") and sample.sizes["record"] == 20
    ceed = catalog.open("seismic_ceed_synthetic")
    try:
        assert len(ceed) == 3 and len(ceed.picks) == 12
    finally:
        ceed.close()


def test_record_helpers(tmp_path):
    sample = io.read_sample(max_records=2)
    ref = io.reference_picks(sample)
    assert list(ref["phase"]) == ["P", "S", "P", "S"]
    wave = io.record_waveform(sample, 1)
    assert pd.Timestamp(wave.attrs["p_time"]) == ref.loc[2, "time"]
    stitched, picks = io.stitch_records(sample)
    assert stitched.sizes["time"] == 2 * 9001 and len(picks) == 4
    path = io.save_records_npz(sample, tmp_path / "s.npz")
    np.testing.assert_array_equal(io.read_phasenet_npz(path).values, sample.values)
    with pytest.raises(InvalidInputError):
        io.record_waveform(sample.values, 0)


def test_load_records_by_name_and_path(tmp_path, ceed_file):
    assert io.load_records("sample", max_records=3).sizes["record"] == 3
    from_ceed = io.load_records(str(ceed_file[0]), max_records=5)
    assert from_ceed.sizes == {"record": 5, "component": 3, "time": 12000}
    io.write_seisbench(from_ceed, tmp_path / "sb")
    assert io.load_records(str(tmp_path / "sb")).sizes["record"] == 5
    with pytest.raises(DataNotAvailableError, match="neither"):
        io.load_records("no-such-dataset")
    assert io.three_component(io.read_sample()).sizes["record"] == 13


def test_synthetic_ceed_rejects_traces_too_short_to_hold_the_p_arrivals(tmp_path):
    """nt=3000 used to fail deep inside numpy; now a typed error names the problem and the minimum."""
    path = tmp_path / "short.h5"
    path.write_bytes(b"an earlier file")  # an earlier output must survive a refused call
    for nt in (3000, synthetic.MIN_CEED_SAMPLES - 1, 0, -5):
        with pytest.raises(InvalidInputError, match=f"at least {synthetic.MIN_CEED_SAMPLES}"):
            synthetic.write_synthetic_ceed(path, nt=nt)
    with pytest.raises(InvalidInputError, match="whole number"):
        synthetic.write_synthetic_ceed(path, nt=6000.5)
    assert path.read_bytes() == b"an earlier file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["short.h5"]  # no temporary left behind
    truth = synthetic.write_synthetic_ceed(path, n_events=1, n_stations=3, nt=synthetic.MIN_CEED_SAMPLES)
    assert (truth["p_phase_index"] < synthetic.MIN_CEED_SAMPLES).all()  # the minimum holds every P
    with io.open_ceed(path) as ceed:
        assert ceed.to_records().sizes["time"] == synthetic.MIN_CEED_SAMPLES
