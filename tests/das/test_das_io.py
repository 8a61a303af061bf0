"""Reading DAS files: vendor formats through DASCore, npz, NetCDF/Zarr, joins, gaps and bad files."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from terralab import das
from terralab.das import io
from terralab.errors import DataNotAvailableError, FileFormatError, InvalidInputError


def _record(n_t=2000, n_ch=12, fs=500.0, start="2024-01-01T00:00:00", seed=0):
    rng = np.random.default_rng(seed)
    t = np.datetime64(start, "ns") + (np.arange(n_t) * 1e9 / fs).astype("timedelta64[ns]")
    return xr.DataArray(
        rng.standard_normal((n_t, n_ch)).astype(np.float32),
        dims=("time", "distance"),
        coords={"time": t, "distance": 10.0 * np.arange(n_ch)},
        attrs={"units": "1/s", "measurand": "strain_rate"},
    )


def test_optodas_fixture_reads_with_time_distance_dims_coords_and_units(shared_data):
    da = das.read(shared_data / "das/optodas_fixture/decimated_optodas.hdf5")
    assert da.dims == ("time", "distance")
    assert da.shape == (5000, 51)
    assert da["time"].dtype == np.dtype("datetime64[ns]")
    assert str(da["time"].values[0]).startswith("2023-10-27T14:23:37.02")
    assert da.attrs["sampling_rate_hz"] == pytest.approx(500.0)
    assert da.attrs["units"] == "1/s" and da.attrs["measurand"] == "strain_rate"
    assert da.attrs["gauge_length_m"] == pytest.approx(10.213, abs=1e-3)
    assert da.attrs["channel_spacing_m"] == pytest.approx(51.065, abs=1e-3)
    assert float(da["distance"][0]) == pytest.approx(33192.256, abs=1e-2)
    assert da.dtype == np.float32
    assert "OptoDAS" in da.attrs["format"]


def test_bridge_npz_is_transposed_to_time_distance(shared_data):
    da = das.read(shared_data / "das/bridge_vehicle/fig1.npz")
    raw = np.load(shared_data / "das/bridge_vehicle/fig1.npz")
    assert da.dims == ("time", "distance") and da.shape == (3000, 107)
    np.testing.assert_allclose(da.values[:, 5], raw["data"][5].astype(np.float32))
    assert da.attrs["sampling_rate_hz"] == pytest.approx(200.0)
    assert da.attrs["channel_spacing_m"] == pytest.approx(1.0)


def test_catalog_opens_the_real_records_through_the_das_reader(shared_data):
    data, truth = das.open_dataset("das_bridge_vehicle")
    assert truth is None and data.dims == ("time", "distance") and data.sizes["distance"] == 107
    data, _ = das.open_dataset("das_optodas_fixture")
    assert data.attrs["units"] == "1/s"


def test_synthetic_catalog_entry_gives_data_and_truth():
    data, truth = das.open_dataset("das_synthetic_urban_street", duration_s=60.0, n_channels=20)
    assert data.sizes["distance"] == 20 and isinstance(truth, pd.DataFrame)


@pytest.mark.parametrize("fmt", ["netcdf", "zarr"])
def test_xarray_files_round_trip(tmp_path, fmt):
    da = _record()
    path = tmp_path / ("rec.nc" if fmt == "netcdf" else "rec.zarr")
    if fmt == "netcdf":
        da.to_netcdf(path)
    else:
        da.to_dataset(name="strain_rate").to_zarr(path)
    back = das.read(path)
    np.testing.assert_array_equal(back.values, da.values)
    assert back.attrs["measurand"] == "strain_rate"


def test_consecutive_files_join_on_time_without_gaps(tmp_path):
    da = _record(n_t=3000)
    files = das.write_files(da, tmp_path, file_s=2.0)
    assert len(files) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = das.read(tmp_path)
    np.testing.assert_array_equal(back.values, da.values)
    assert io.gap_table(back).empty


def test_gap_between_files_is_filled_with_nan_warned_and_listed(tmp_path):
    da = _record(n_t=3000)
    das.write_files(da.isel(time=slice(0, 1000)), tmp_path, file_s=2.0)
    das.write_files(da.isel(time=slice(1500, 3000)), tmp_path, file_s=3.0)
    with pytest.warns(io.DASGapWarning, match="gap"):
        back = das.read(tmp_path)
    assert back.sizes["time"] == 3000
    assert np.isnan(back.values[1000:1500]).all() and np.isfinite(back.values[:1000]).all()
    gaps = io.gap_table(back)
    assert list(gaps["kind"]) == ["gap"] and gaps["duration_s"].iloc[0] == pytest.approx(1.0)
    with pytest.raises(InvalidInputError, match="gap"):
        das.read(tmp_path, gaps="raise")


def test_overlapping_files_drop_duplicate_samples_and_report(tmp_path):
    da = _record(n_t=3000)
    das.write_files(da.isel(time=slice(0, 1600)), tmp_path / "a", file_s=10)
    das.write_files(da.isel(time=slice(1500, 3000)), tmp_path / "b", file_s=10)
    files = sorted((tmp_path / "a").glob("*.npz")) + sorted((tmp_path / "b").glob("*.npz"))
    with pytest.warns(io.DASGapWarning, match="overlap"):
        back = das.read(files)
    np.testing.assert_array_equal(back.values, da.values)
    assert list(io.gap_table(back)["kind"]) == ["overlap"]


def test_empty_file_raises_file_format_error(tmp_path):
    p = tmp_path / "empty.hdf5"
    p.write_bytes(b"")
    with pytest.raises(FileFormatError, match="empty"):
        das.read(p)


@pytest.mark.parametrize(
    "name, content", [("broken.hdf5", b"\x89HDF\r\n" + b"\x00" * 50), ("broken.npz", b"PK\x03\x04garbage")]
)
def test_corrupt_file_raises_file_format_error(tmp_path, name, content):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(FileFormatError):
        das.read(p)


def test_unsupported_format_raises_file_format_error(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("time,distance\n1,2\n")
    with pytest.raises(FileFormatError, match="format"):
        das.read(p)
    with pytest.raises(FileFormatError):
        das.read(tmp_path)  # a directory with no DAS file


def test_missing_path_raises_data_not_available(tmp_path):
    with pytest.raises(DataNotAvailableError):
        das.read(tmp_path / "nope.hdf5")


def test_check_transposes_distance_time_arrays():
    da = _record()
    out = io.check(da.transpose("distance", "time"))
    assert out.dims == ("time", "distance")


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.rename({"distance": "channel"}), "dims"),
        (lambda d: d.drop_vars("distance"), "coordinate"),
        (
            lambda d: d.assign_coords(time=np.concatenate([d.time.values[:10], d.time.values[9:-1]])),
            "duplicated",
        ),
        (lambda d: d.isel(time=np.r_[np.arange(10, 20), np.arange(0, 10)]), "not increasing"),
        (lambda d: d.isel(distance=[0]), "at least 2"),
        (
            lambda d: d.assign_coords(distance=np.r_[0.0, 0.0, 10.0 * np.arange(2, d.sizes["distance"])]),
            "monotonic",
        ),
    ],
)
def test_check_rejects_malformed_arrays_with_a_clear_message(mutate, message):
    with pytest.raises(InvalidInputError, match=message):
        io.check(mutate(_record()))
    with pytest.raises(InvalidInputError):
        io.check(np.zeros((10, 10)))


def test_time_range_reads_only_the_time_axis(shared_data, tmp_path):
    t0, t1 = io.time_range(shared_data / "das/optodas_fixture/decimated_optodas.hdf5")
    assert str(t0).startswith("2023-10-27T14:23:37.02") and (t1 - t0) / np.timedelta64(
        1, "s"
    ) == pytest.approx(9.998)
    da = _record()
    (path,) = das.write_files(da, tmp_path, file_s=100.0, fmt="netcdf")
    assert io.time_range(path) == (da.time.values[0], da.time.values[-1])
