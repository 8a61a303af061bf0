"""Earth Engine TFRecord exports read back without TensorFlow, identical to the GeoTIFF and CSVs beside
them."""

from __future__ import annotations

import gzip
import json
import os
import struct

import numpy as np
import pandas as pd
import pytest
import rioxarray

from terralab.errors import DataNotAvailableError, FileFormatError
from terralab.rice import tfrecord

ACES = "rice/aces_paro_2021"


# --- a tiny TFRecord writer, so tests can make files with known content ---------------------------------
def _varint(n: int) -> bytes:
    out = b""
    n &= (1 << 64) - 1
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out += bytes([byte | 0x80])
        else:
            return out + bytes([byte])


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _example(features: dict) -> bytes:
    entries = b""
    for key, value in features.items():
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            feature = _field(2, _field(1, value.astype("<f4").tobytes()))
        elif isinstance(value, np.ndarray):
            feature = _field(3, _field(1, b"".join(_varint(int(v)) for v in value)))
        else:
            feature = _field(1, b"".join(_field(1, v) for v in value))
        entries += _field(1, _field(1, key.encode()) + _field(2, feature))
    return _field(1, entries)


def _write_tfrecord(path, payloads, compress=True) -> None:
    body = b""
    for data in payloads:
        header = struct.pack("<Q", len(data))
        body += header + struct.pack("<I", tfrecord.masked_crc32c(header)) + data
        body += struct.pack("<I", tfrecord.masked_crc32c(data))
    path.write_bytes(gzip.compress(body) if compress else body)


# --- CRC ----------------------------------------------------------------------------------------------
def test_crc32c_matches_the_standard_check_value():
    assert tfrecord.crc32c(b"123456789") == 0xE3069283
    assert tfrecord.crc32c(b"") == 0


def _crc32c_bitwise(data: bytes) -> int:
    """The textbook bit-at-a-time CRC-32C (reflected polynomial 0x82F63B78), independent of the library."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


@pytest.mark.parametrize("n_bytes", [1, 1023, 8193])
def test_crc32c_equals_the_textbook_bitwise_crc(n_bytes):
    data = np.random.default_rng(n_bytes).integers(0, 256, n_bytes, dtype=np.uint8).tobytes()
    assert tfrecord.crc32c(data) == _crc32c_bitwise(data)


# --- the ACES files -----------------------------------------------------------------------------------
def test_aces_image_patch_reads_back_identical_to_the_geotiff(shared_data):
    image = tfrecord.read_image_patches(shared_data / ACES / "tfrecord" / "images")
    tif = rioxarray.open_rasterio(shared_data / ACES / "aces_paro_2021_rgbn_before_during.tif")
    assert list(image["band"].values) == list(tif.attrs["long_name"])
    np.testing.assert_array_equal(image.values, tif.values)
    assert image.rio.crs == tif.rio.crs
    assert image.rio.transform() == tif.rio.transform()
    np.testing.assert_allclose(image["x"].values, tif["x"].values, rtol=0, atol=1e-12)
    np.testing.assert_allclose(image["y"].values, tif["y"].values, rtol=0, atol=1e-12)


@pytest.mark.parametrize("part, n_points", [("training", 8316), ("validation", 2385), ("testing", 1219)])
def test_aces_points_read_back_identical_to_the_csv_to_its_printed_precision(shared_data, part, n_points):
    points = tfrecord.read_points(
        shared_data / ACES / "tfrecord" / part / f"{part}.tfrecord.gz",
        class_names=["cropland_etc", "rice", "forest", "urban", "others_water_etc"],
    )
    csv = pd.read_csv(shared_data / ACES / f"aces_dnn_points_{part}.csv", dtype=str)
    assert len(points) == n_points == len(csv)
    assert list(points.columns) == list(csv.columns)
    for column in csv.columns[:8]:
        printed = [f"{v:.6f}" for v in points[column].astype(np.float64)]
        assert printed == list(csv[column]), column
    assert (points["class"].astype(str) == csv["class"]).all()
    assert (points["class_name"] == csv["class_name"]).all()


# --- framing, protobuf and mosaicking ----------------------------------------------------------------
def test_patches_are_mosaicked_by_patches_per_row_with_the_kernel_buffer_cropped(tmp_path):
    patch, kernel, per_row, total = 4, 2, 3, 5
    side = patch + kernel
    payloads = []
    for k in range(total):
        core = np.full((side, side), -1.0, np.float32)
        core[1:-1, 1:-1] = k  # only the core carries the patch number
        payloads.append(_example({"b1": core.ravel(), "b2": (core * 10).ravel()}))
    _write_tfrecord(tmp_path / "scene-00000.tfrecord.gz", payloads[:3])
    _write_tfrecord(tmp_path / "scene-00001.tfrecord.gz", payloads[3:])
    mixer = {
        "projection": {
            "crs": "EPSG:32645",
            "affine": {"doubleMatrix": [10.0, 0.0, 500000.0, 0.0, -10.0, 3000000.0]},
        },
        "patchDimensions": [patch, patch],
        "patchesPerRow": per_row,
        "totalPatches": total,
    }
    (tmp_path / "scene.json").write_text(json.dumps(mixer))
    image = tfrecord.read_image_patches(tmp_path)
    assert image.shape == (2, 2 * patch, per_row * patch)
    for k in range(total):
        r, c = divmod(k, per_row)
        block = image.sel(band="b1").values[r * patch : (r + 1) * patch, c * patch : (c + 1) * patch]
        assert (block == k).all()
    assert np.isnan(image.values[:, patch:, 2 * patch :]).all()  # the missing sixth patch
    assert image.rio.crs.to_epsg() == 32645
    assert float(image["x"][0]) == 500005.0 and float(image["y"][0]) == 2999995.0


def test_int64_bytes_and_unpacked_floats_are_decoded():
    payload = _example(
        {"class": np.array([3, -2], dtype=np.int64), "name": [b"rice"], "v": np.array([0.5], np.float32)}
    )
    example = tfrecord.parse_example(payload)
    assert example["class"].tolist() == [3, -2]
    assert example["name"] == [b"rice"]
    assert example["v"].tolist() == [0.5]
    # an unpacked float (wire type 5) is also valid protobuf
    unpacked = _field(
        1, _field(1, _field(1, b"v") + _field(2, _field(2, _varint(1 << 3 | 5) + struct.pack("<f", 2.0))))
    )
    assert tfrecord.parse_example(unpacked)["v"].tolist() == [2.0]


def test_a_flipped_byte_is_caught_by_the_crc(tmp_path, shared_data):
    raw = gzip.decompress((shared_data / ACES / "tfrecord" / "testing" / "testing.tfrecord.gz").read_bytes())
    bad = bytearray(raw)
    bad[5000] ^= 0x01
    path = tmp_path / "bad.tfrecord"
    path.write_bytes(bytes(bad))
    with pytest.raises(FileFormatError, match="CRC"):
        tfrecord.read_points(path)


def test_a_truncated_file_is_a_file_format_error(tmp_path, shared_data):
    raw = (shared_data / ACES / "tfrecord" / "testing" / "testing.tfrecord.gz").read_bytes()
    path = tmp_path / "cut.tfrecord.gz"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(FileFormatError, match="truncated|corrupt"):
        tfrecord.read_points(path)
    gz = gzip.decompress(raw)
    plain = tmp_path / "cut.tfrecord"
    plain.write_bytes(gz[:-100])
    with pytest.raises(FileFormatError, match="truncated"):
        tfrecord.read_points(plain)


def test_an_image_export_without_its_mixer_says_what_is_missing(tmp_path):
    _write_tfrecord(tmp_path / "img.tfrecord.gz", [_example({"b": np.zeros(4, np.float32)})])
    with pytest.raises(DataNotAvailableError, match="mixer"):
        tfrecord.read_image_patches(tmp_path)


def test_a_missing_file_is_data_not_available(tmp_path):
    with pytest.raises(DataNotAvailableError):
        tfrecord.read_points(tmp_path / "absent.tfrecord.gz")
    os.makedirs(tmp_path / "empty")
    with pytest.raises(DataNotAvailableError):
        tfrecord.read_points(tmp_path / "empty")
