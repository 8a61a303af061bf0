"""Streaming over files: same vehicles as one batch, stable ids, latency, gaps, and dask archives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from terralab import das
from terralab.das import synthetic
from terralab.errors import InvalidInputError

# a 200 m section at the default 8 km/h minimum needs 90 s windows; that warning is tested once, below
pytestmark = pytest.mark.filterwarnings("ignore:vehicles slower than")


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    data, truth = synthetic.highway_bridge(duration_s=120, n_channels=200, seed=11)
    folder = tmp_path_factory.mktemp("das_files")
    das.write_files(data, folder, file_s=10.0)
    return data, truth, folder


def test_streaming_10s_files_gives_the_same_vehicles_as_one_batch(record):
    data, _, folder = record
    one = das.detect_vehicles(data)
    streamed, _ = das.collect(das.stream(folder, batch_s=60, step_s=20))
    assert len(one) >= 8
    # the 60 s windows and the whole record normalise noise over different spans, so a marginal track (here a
    # 136 km/h false one at 5.8 sigma) may be found in one and not the other (measured: 14 in one batch, 13
    # streamed, 12 identical within 0.3 s and 3 %; the stream has all 13 true vehicles but one)
    assert abs(len(streamed) - len(one)) <= 1
    m = das.match(streamed, one, time_tolerance_s=0.3, speed_tolerance=0.03)
    assert len(m) >= len(one) - 2
    assert m["direction_ok"].all()
    assert m["class_ok"].mean() >= 0.9  # a vehicle with p_truck near 0.5 may flip
    assert np.abs(m["dt_s"]).max() < 0.3


def test_stream_ids_are_unique_and_each_vehicle_reported_once(record):
    _, truth, folder = record
    streamed, _ = das.collect(das.stream(folder, batch_s=60, step_s=20))
    assert streamed["vehicle_id"].is_unique
    assert list(streamed["vehicle_id"]) == list(range(len(streamed)))
    m = das.match(streamed, truth)
    assert m["truth_index"].is_unique and len(m) >= 0.9 * len(truth)


def test_each_batch_reports_its_window_compute_time_and_latency(record):
    _, _, folder = record
    _, batches = das.collect(das.stream(folder, batch_s=60, step_s=20))
    assert len(batches) == 4  # windows ending at 60, 80, 100 s and the final one
    assert (batches["compute_s"] > 0).all() and (batches["latency_s"] >= 0).all()
    ends = pd.to_datetime(batches["batch_end"])
    assert (np.diff(ends.values[:3]) == np.timedelta64(20, "s")).all()
    assert batches["n_files"].sum() == 12


def test_a_gap_in_the_files_restarts_the_filters_with_a_warning(record, tmp_path):
    data, _, _ = record
    das.write_files(data.isel(time=slice(0, 50000)), tmp_path, file_s=10.0)
    das.write_files(data.isel(time=slice(60000, 120000)), tmp_path, file_s=10.0)
    with pytest.warns(UserWarning, match="gap"):
        _, batches = das.collect(das.stream(tmp_path, batch_s=60, step_s=20))
    assert batches["gap"].sum() == 1


def test_archive_runs_on_a_local_dask_cluster_with_the_same_vehicles(record):
    from dask.distributed import Client, LocalCluster

    _, _, folder = record
    serial, _ = das.collect(das.stream(folder, batch_s=60, step_s=20))
    with (
        LocalCluster(processes=False, n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        parallel = das.process_archive(folder, client=client, files_per_task=4)
    assert parallel.attrs["tasks"] == 3
    assert len(parallel) == len(serial)
    m = das.match(parallel, serial, time_tolerance_s=0.3, speed_tolerance=0.03)
    assert len(m) == len(serial)


def test_follow_mode_processes_files_in_a_watched_directory(record, tmp_path):
    data, _, _ = record
    das.write_files(data.isel(time=slice(0, 40000)), tmp_path, file_s=10.0)
    _, batches = das.collect(das.stream(tmp_path, follow=True, poll_s=0.05, idle_timeout_s=0.3))
    assert batches["n_files"].sum() == 4


def test_bad_batch_settings_are_refused(record):
    _, _, folder = record
    with pytest.raises(InvalidInputError, match="step_s"):
        next(das.stream(folder, batch_s=20, step_s=30))


@pytest.mark.filterwarnings("default")
def test_stream_warns_when_slow_vehicles_cannot_fit_a_window(record):
    _, _, folder = record
    with pytest.warns(UserWarning, match="vehicles slower than 13 km/h"):
        next(das.stream(folder, batch_s=60, step_s=20))


def test_streaming_on_a_highway_site_runs_the_second_pass_as_one_batch_does(record):
    # site="highway" turns the second pass on (params.PEEL_SITES). Measured: 13 vehicles in one batch (one of
    # them peeled), 12 streamed, all 12 in one batch within 0.13 s and 3 %; 12 true vehicles in each
    data, _, folder = record
    one = das.detect_vehicles(data, site="highway")
    assert one.attrs["params"]["peel_sigma"] == 3.5
    streamed, _ = das.collect(das.stream(folder, batch_s=60, step_s=20, site="highway"))
    assert len(one) >= 8 and abs(len(streamed) - len(one)) <= 1
    assert streamed["vehicle_id"].is_unique
    m = das.match(streamed, one, time_tolerance_s=0.3, speed_tolerance=0.03)
    assert len(m) >= len(one) - 2 and m["direction_ok"].all()


def test_streaming_with_the_energy_image_gives_the_same_vehicles_as_one_batch(record):
    data, _, folder = record
    """The energy product is carried and trimmed with the stream's buffers (measured: 13 vehicles in one
    batch, 17 streamed, 11 in common within 0.3 s and 3 %; 14 in one batch before ``incoherent_speed_change``
    dropped a false track there that the 60-s windows keep; of the 13 true vehicles the batch and the stream
    each find 12; the energy image's extra tracks are marginal, which is why it is not the default)."""
    one = das.detect_vehicles(data, image="both")
    streamed, _ = das.collect(das.stream(folder, batch_s=60, step_s=20, image="both"))
    assert len(one) >= 8 and abs(len(streamed) - len(one)) <= 4
    assert streamed["vehicle_id"].is_unique
    m = das.match(streamed, one, time_tolerance_s=0.3, speed_tolerance=0.03)
    assert len(m) >= len(one) - 3
