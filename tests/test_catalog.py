"""terralab.catalog: lookup order, sha256 verification, clear errors, readers, and the real catalog's
coverage.

No test touches the network: an autouse fixture makes every socket connect fail, and downloads are simulated
by replacing pooch's HTTP downloader (so pooch's own temp-file / hash / rename path still runs). Retries do
not wait: the back-off sleep is replaced by a recorder, so the tests see the delays that would have been
waited.
"""

from __future__ import annotations

import hashlib
import re
import socket
import sys
import types
from fractions import Fraction
from pathlib import Path

import pytest
import yaml

from terralab import catalog, catalog_fetch, catalog_readers
from terralab.errors import (
    CatalogError,
    ChecksumError,
    CredentialsError,
    DataNotAvailableError,
    FileFormatError,
    UnknownDatasetError,
)

ROOT = Path(__file__).resolve().parents[1]
URL = "https://raw.githubusercontent.com/example/repo/0123456789abcdef0123456789abcdef01234567/data/table.csv"
CONTENT = b"a,b\n1,2\n3,4\n"
SHA = hashlib.sha256(CONTENT).hexdigest()

FIXED_NAMES = [
    "das_bridge_vehicle",
    "das_optodas_fixture",
    "seismic_phasenet_ncedc_picks",
    "seismic_phasenet_ncedc_waveforms",
    "seismic_phasenet_weights",
    "seismic_phasenet_reference_io",
    "seismic_ridgecrest_catalog_scsn",
    "seismic_ridgecrest_catalog_gamma",
    "seismic_ridgecrest_stations",
    "rice_aces_paro_image_tfrecord",
    "rice_aces_paro_points_training_tfrecord",
    "rice_aces_paro_points_validation_tfrecord",
    "rice_aces_paro_points_testing_tfrecord",
    "rice_aces_paro_geotiff",
    "rice_aces_paro_points_training",
    "rice_aces_paro_points_validation",
    "rice_aces_paro_points_testing",
    "rice_aces_paro_preview",
    "rice_landsat_rgb",
    "dengue_colombia_weekly_cases",
    "dengue_colombia_yearly_2015_2019",
    "dengue_colombia_top10_climate_cases",
    "dengue_colombia_top10_sociodemographic",
    "dengue_colombia_temperature",
    "dengue_colombia_precipitation",
    "dengue_dengai_features_train",
    "dengue_dengai_labels_train",
    "dengue_dengai_features_test",
    "dengue_dengai_submission_format",
    "dengue_rio_cases",
    *[f"dengue_rio_datasus_{y}" for y in range(2015, 2024)],
    "dengue_s2_slovenia_reference_scenes",
    "dengue_s2_slovenia_eopatch",
    "dengue_s2_usa_b8a",
    "dengue_s2_usa_b11",
    "dengue_s2_usa_b12",
    "dengue_s2_usa_preview",
]


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Any attempt to open a connection fails, as on a machine without internet."""

    def refuse(*args, **kwargs):
        raise OSError("network disabled in terralab tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(autouse=True)
def waits(monkeypatch) -> list[float]:
    """The back-off delays the catalog would have slept, in order (nothing is actually waited)."""
    slept: list[float] = []
    monkeypatch.setattr(catalog_fetch, "_sleep", slept.append)
    return slept


@pytest.fixture
def http_failures() -> dict[str, list[BaseException]]:
    """url -> errors the fake server raises, one per request, before it serves the url."""
    return {}


@pytest.fixture
def fake_http(monkeypatch, http_failures):
    """Serve URLs from a dict through pooch's real download path; record what was requested."""
    import pooch.downloaders
    import requests

    served: dict[str, bytes] = {}
    requested: list[str] = []

    def call(self, url, output_file, pooch_obj, check_only=False):
        requested.append(url)
        if http_failures.get(url):
            raise http_failures[url].pop(0)
        if url not in served:
            raise requests.exceptions.ConnectionError(f"no route to host for {url}")
        data = served[url]
        if isinstance(output_file, (str, Path)):
            Path(output_file).write_bytes(data)
        else:
            output_file.write(data)

    monkeypatch.setattr(pooch.downloaders.HTTPDownloader, "__call__", call)
    return served, requested


@pytest.fixture
def no_mirror(monkeypatch):
    monkeypatch.delenv("TERRALAB_DATA_MIRROR", raising=False)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("TERRALAB_CACHE", str(path))
    return path


def _write_catalog(path: Path, datasets: dict) -> Path:
    path.write_text(yaml.safe_dump({"datasets": datasets}, sort_keys=False))
    return path


def _table_entry(**extra) -> dict:
    entry = {
        "kind": "file",
        "format": "csv",
        "path": "demo/table.csv",
        "url": URL,
        "sha256": SHA,
        "license": "CC0-1.0",
        "description": "a tiny table",
    }
    entry.update(extra)
    return entry


@pytest.fixture
def tiny(tmp_path) -> catalog.Catalog:
    """A one-entry catalog (demo_table) without the workflows' fragments."""
    return catalog.load_catalog(
        _write_catalog(tmp_path / "cat.yaml", {"demo_table": _table_entry()}), fragments=False
    )


# ------------------------------------------------------------------------------------------------
# names and errors
# ------------------------------------------------------------------------------------------------
def test_unknown_name_raises_and_suggests_close_names():
    with pytest.raises(UnknownDatasetError) as err:
        catalog.get("seismic_ridgecrest_catalog_scs")
    msg = str(err.value)
    assert "seismic_ridgecrest_catalog_scsn" in msg and "Did you mean" in msg
    with pytest.raises(KeyError):  # still a KeyError for callers that catch that
        catalog.open("das_brigde_vehicle")


def test_every_fixed_catalog_name_exists():
    missing = sorted(set(FIXED_NAMES) - set(catalog.names()))
    assert not missing, f"names fixed in the brief are missing from data_catalog.yaml: {missing}"


@pytest.mark.parametrize(
    "text, complaint",
    [
        ("datasets: [unclosed", "not valid YAML"),
        ("- just\n- a list\n", "top level"),
        ("datasets:\n  x: 3\n", "must be a mapping"),
        (
            (
                "datasets:\n  x: {kind: file, format: csv, path: a.csv, url: http://x, license: MIT, "
                "description: d}\n"
            ),
            "sha256",
        ),
        ("datasets:\n  x: {format: csv, path: a.csv, sha256: null, license: MIT, description: d}\n", "kind"),
        (
            (
                "datasets:\n  x: {kind: file, format: csv, path: a.csv, sha256: null, url: http://x, "
                "license: MIT, description: d}\n"
            ),
            "null only for kinds",
        ),
        (
            (
                "datasets:\n  x: {kind: file, format: csv, path: a.csv, sha256: abc, url: http://x, "
                "license: MIT, description: d}\n"
            ),
            "64 hex",
        ),
        (
            "datasets:\n  x: {kind: file, format: csv, path: a.csv, sha256: " + "a" * 64 + ", license: MIT, "
            "description: d}\n",
            "url",
        ),
        ("datasets:\n  x: {kind: tape, description: d, license: MIT}\n", "kind 'tape'"),
        ("datasets:\n  x: {kind: synthetic, description: d, generator: nocolon}\n", "module:function"),
        (
            "datasets:\n  x: {kind: file, format: csv, path: ../etc/passwd, sha256: "
            + "a" * 64
            + ", url: http://x, license: MIT, description: d}\n",
            "relative path",
        ),
    ],
)
def test_malformed_catalog_raises_catalog_error_naming_the_problem(tmp_path, text, complaint):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(CatalogError) as err:
        catalog.load_catalog(path, fragments=False)
    assert complaint in str(err.value)
    assert str(path) in str(err.value)


def test_catalog_env_var_selects_the_catalog_file(tmp_path, monkeypatch):
    path = _write_catalog(tmp_path / "mine.yaml", {"demo_table": _table_entry()})
    monkeypatch.setenv("TERRALAB_CATALOG", str(path))
    assert catalog.default_catalog_path() == path
    assert "demo_table" in catalog.names()
    monkeypatch.setenv("TERRALAB_CATALOG", str(tmp_path / "missing.yaml"))
    with pytest.raises(CatalogError, match="TERRALAB_CATALOG"):
        catalog.names()


def test_package_ships_the_same_catalog_as_the_repo_root():
    packaged = ROOT / "lib" / "terralab" / "data" / "data_catalog.yaml"
    assert packaged.read_bytes() == (ROOT / "data_catalog.yaml").read_bytes()


def test_fragment_entries_are_merged_and_the_main_file_wins(tmp_path, monkeypatch):
    frag = tmp_path / "wf" / "catalog_entries.yaml"
    frag.parent.mkdir()
    frag.write_text(
        yaml.safe_dump(
            {
                "demo_table": _table_entry(description="from the fragment"),
                "wf_ramp": {
                    "kind": "synthetic",
                    "generator": "fractions:Fraction",
                    "params": {"numerator": 1},
                    "description": "a fragment-only entry",
                },
            }
        )
    )
    monkeypatch.setattr(catalog, "_fragment_paths", lambda: [frag])
    cat = catalog.load_catalog(_write_catalog(tmp_path / "main.yaml", {"demo_table": _table_entry()}))
    assert cat.get("demo_table").description == "a tiny table"
    assert cat.open("wf_ramp") == Fraction(1)


# ------------------------------------------------------------------------------------------------
# lookup order and verification
# ------------------------------------------------------------------------------------------------
def test_mirror_hit_returns_the_mirror_file_without_download(tiny, tmp_path, monkeypatch, cache, fake_http):
    mirror = tmp_path / "mirror"
    (mirror / "demo").mkdir(parents=True)
    (mirror / "demo" / "table.csv").write_bytes(CONTENT)
    monkeypatch.setenv("TERRALAB_DATA_MIRROR", str(mirror))
    assert tiny.fetch("demo_table") == mirror / "demo" / "table.csv"
    assert tiny.open("demo_table")["b"].tolist() == [2, 4]
    assert fake_http[1] == [] and not cache.exists()


def test_shared_data_mirror_hit_is_verified(shared_data):
    path = catalog.fetch("seismic_ridgecrest_catalog_scsn")
    assert path == shared_data / "seismic" / "ridgecrest_catalog" / "catalog_scsn.csv"
    assert catalog.locate("seismic_ridgecrest_catalog_scsn") == ("mirror", path)


def test_corrupt_mirror_file_raises_checksum_error_and_is_left_in_place(tiny, tmp_path, monkeypatch, cache):
    mirror = tmp_path / "mirror"
    (mirror / "demo").mkdir(parents=True)
    bad = mirror / "demo" / "table.csv"
    bad.write_bytes(b"a,b\n9,9\n")
    monkeypatch.setenv("TERRALAB_DATA_MIRROR", str(mirror))
    with pytest.raises(ChecksumError) as err:
        tiny.fetch("demo_table")
    msg = str(err.value)
    assert SHA in msg and hashlib.sha256(b"a,b\n9,9\n").hexdigest() in msg and "mirror" in msg
    assert bad.exists()


def test_cache_hit_uses_the_cached_file_without_network(tiny, cache, no_mirror, fake_http):
    cached = cache / "demo" / "table.csv"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(CONTENT)
    assert tiny.fetch("demo_table") == cached
    assert fake_http[1] == []


def test_bad_cache_file_raises_expected_vs_actual_and_is_removed(tiny, cache, no_mirror):
    cached = cache / "demo" / "table.csv"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"tampered\n")
    with pytest.raises(ChecksumError) as err:
        tiny.fetch("demo_table")
    msg = str(err.value)
    assert f"expected {SHA}" in msg
    assert f"actual   {hashlib.sha256(b'tampered' + bytes([10])).hexdigest()}" in msg
    assert not cached.exists()


def test_download_lands_in_cache_then_serves_from_cache(tiny, cache, no_mirror, fake_http):
    served, requested = fake_http
    served[URL] = CONTENT
    first = tiny.fetch("demo_table", progress=False)
    assert first == cache / "demo" / "table.csv" and first.read_bytes() == CONTENT
    assert tiny.fetch("demo_table") == first
    assert requested == [URL]


def test_download_with_wrong_bytes_raises_checksum_error_and_keeps_nothing(
    tiny, cache, no_mirror, fake_http, waits
):
    fake_http[0][URL] = b"something else\n"
    with pytest.raises(ChecksumError) as err:
        tiny.fetch("demo_table", progress=False)
    assert SHA in str(err.value)
    assert not list(cache.rglob("*.csv")), "a download with the wrong hash must not stay in the cache"
    assert fake_http[1] == [URL] and waits == [], "a complete file with the wrong hash is not fetched again"


def _http_error(status: int):
    import requests

    response = requests.Response()
    response.status_code = status
    return requests.exceptions.HTTPError(f"{status} Error for url: {URL}", response=response)


def test_download_rides_out_passing_failures_with_a_doubling_back_off(
    tiny, cache, no_mirror, fake_http, http_failures, waits
):
    import requests

    served, requested = fake_http
    served[URL] = CONTENT
    http_failures[URL] = [requests.exceptions.ConnectionError("connection reset"), _http_error(503)]
    path = tiny.fetch("demo_table", progress=False)
    assert path.read_bytes() == CONTENT
    assert requested == [URL] * 3
    assert waits == [catalog.RETRY_BACKOFF_S, 2 * catalog.RETRY_BACKOFF_S]


def test_download_gives_up_after_its_tries_with_the_clear_not_available_error(
    tiny, cache, no_mirror, fake_http, waits
):
    with pytest.raises(DataNotAvailableError) as err:
        tiny.fetch("demo_table", progress=False)
    assert fake_http[1] == [URL] * catalog.DOWNLOAD_ATTEMPTS == [URL] * 3
    assert waits == [1.0, 2.0]
    msg = str(err.value)
    assert f"could not download {URL} after 3 tries (ConnectionError" in msg and "TERRALAB_DATA_MIRROR" in msg
    assert not list(cache.rglob("*.csv"))


@pytest.mark.parametrize("status", [404, 403])
def test_download_of_a_missing_or_forbidden_file_is_not_retried(
    tiny, cache, no_mirror, fake_http, http_failures, waits, status
):
    http_failures[URL] = [_http_error(status)]
    fake_http[0][URL] = CONTENT  # would be served on a second request, which must not happen
    with pytest.raises(DataNotAvailableError, match=f"{status} Error"):
        tiny.fetch("demo_table", progress=False)
    assert fake_http[1] == [URL] and waits == []


def test_a_mirror_folder_that_does_not_exist_is_named_as_the_cause(
    tiny, tmp_path, monkeypatch, cache, fake_http
):
    nope = tmp_path / "nope"
    monkeypatch.setenv("TERRALAB_DATA_MIRROR", str(nope))
    with pytest.raises(DataNotAvailableError) as err:
        tiny.fetch("demo_table", progress=False)
    msg = str(err.value)
    first_line = msg.splitlines()[0]
    assert first_line.startswith(f"TERRALAB_DATA_MIRROR is set to {nope}, which does not exist"), msg
    assert "unset TERRALAB_DATA_MIRROR" in first_line
    assert f"mirror {nope / 'demo' / 'table.csv'} (the mirror folder {nope} does not exist)" in msg


def test_describe_names_a_missing_mirror_folder_when_the_file_is_not_found(
    tiny, tmp_path, monkeypatch, cache
):
    monkeypatch.setenv("TERRALAB_DATA_MIRROR", str(tmp_path / "nope"))
    text = tiny.describe("demo_table")
    assert "available:   download needed" in text
    assert f"mirror:      TERRALAB_DATA_MIRROR is set to {tmp_path / 'nope'}, which does not exist" in text


def test_a_mirror_path_that_is_a_file_is_named_as_the_cause(tmp_path, monkeypatch, cache):
    entry = _table_entry(derived=True)
    del entry["url"]
    cat = catalog.load_catalog(_write_catalog(tmp_path / "c.yaml", {"d": entry}), fragments=False)
    not_a_folder = tmp_path / "mirror.txt"
    not_a_folder.write_text("oops")
    monkeypatch.setenv("TERRALAB_DATA_MIRROR", str(not_a_folder))
    with pytest.raises(
        DataNotAvailableError,
        match=r"^TERRALAB_DATA_MIRROR is set to .*mirror\.txt, which is not a "
        r"folder",
    ):
        cat.fetch("d")


def test_a_missing_mirror_folder_is_named_for_multi_file_entries_too(tmp_path, monkeypatch, cache):
    entry = {
        "kind": "file",
        "format": "text",
        "path": "demo/dir",
        "license": "MIT",
        "description": "derived",
        "derived": True,
        "files": [{"path": "one.txt", "sha256": SHA}],
    }
    cat = catalog.load_catalog(_write_catalog(tmp_path / "c.yaml", {"pair": entry}), fragments=False)
    monkeypatch.setenv("TERRALAB_DATA_MIRROR", "/nope/terralab-mirror")
    with pytest.raises(DataNotAvailableError) as err:
        cat.fetch("pair")
    assert str(err.value).startswith(
        "TERRALAB_DATA_MIRROR is set to /nope/terralab-mirror, which does not exist"
    )


def test_no_network_and_no_mirror_copy_names_url_and_mirror_path(
    tiny, tmp_path, monkeypatch, cache, fake_http
):
    mirror = tmp_path / "empty_mirror"
    mirror.mkdir()
    monkeypatch.setenv("TERRALAB_DATA_MIRROR", str(mirror))
    with pytest.raises(DataNotAvailableError) as err:
        tiny.fetch("demo_table", progress=False)
    msg = str(err.value)
    assert URL in msg
    assert str(mirror / "demo" / "table.csv") in msg
    assert "TERRALAB_DATA_MIRROR" in msg
    assert fake_http[1] == [URL] * catalog.DOWNLOAD_ATTEMPTS  # tried again before giving up


def test_unset_mirror_is_reported_when_nothing_is_found(tiny, cache, no_mirror, fake_http):
    with pytest.raises(DataNotAvailableError, match="TERRALAB_DATA_MIRROR is not set"):
        tiny.fetch("demo_table", progress=False)


def test_derived_file_without_url_says_it_ships_with_the_mirror(tmp_path, cache, no_mirror):
    entry = _table_entry(derived=True)
    del entry["url"]
    cat = catalog.load_catalog(_write_catalog(tmp_path / "c.yaml", {"d": entry}), fragments=False)
    with pytest.raises(DataNotAvailableError, match="derived data that ships with the project's data mirror"):
        cat.fetch("d")


def test_package_data_is_searched_before_the_mirror(tmp_path, monkeypatch, cache):
    pkg = tmp_path / "pkgdata"
    (pkg / "wf").mkdir(parents=True)
    (pkg / "wf" / "table.csv").write_bytes(CONTENT)
    monkeypatch.setattr(catalog_fetch, "PACKAGE_DATA", pkg)
    monkeypatch.setenv("TERRALAB_DATA_MIRROR", str(tmp_path / "nowhere"))
    entry = {
        "kind": "package",
        "format": "csv",
        "package_path": "wf/table.csv",
        "sha256": SHA,
        "license": "MIT",
        "description": "embedded sample",
    }
    cat = catalog.load_catalog(_write_catalog(tmp_path / "c.yaml", {"sample": entry}), fragments=False)
    assert cat.fetch("sample") == pkg / "wf" / "table.csv"
    assert cat.table().set_index("name").loc["sample", "location"] == "package"


def test_multi_file_entry_is_assembled_in_cache_from_mirror_and_download(
    tmp_path, monkeypatch, cache, fake_http
):
    one, two = b"first\n", b"second\n"
    url_two = URL.replace("table.csv", "two.txt")
    entry = {
        "kind": "file",
        "format": "text",
        "path": "demo/dir",
        "license": "MIT",
        "description": "two files",
        "files": [
            {
                "path": "one.txt",
                "url": URL.replace("table.csv", "one.txt"),
                "sha256": hashlib.sha256(one).hexdigest(),
            },
            {"path": "sub/two.txt", "url": url_two, "sha256": hashlib.sha256(two).hexdigest()},
        ],
    }
    cat = catalog.load_catalog(_write_catalog(tmp_path / "c.yaml", {"pair": entry}), fragments=False)
    mirror = tmp_path / "mirror"
    (mirror / "demo" / "dir").mkdir(parents=True)
    (mirror / "demo" / "dir" / "one.txt").write_bytes(one)
    monkeypatch.setenv("TERRALAB_DATA_MIRROR", str(mirror))
    fake_http[0][url_two] = two
    out = cat.fetch("pair", progress=False)
    assert out == cache / "demo" / "dir"
    assert (out / "one.txt").read_bytes() == one and (out / "sub" / "two.txt").read_bytes() == two
    assert fake_http[1] == [url_two]
    (mirror / "demo" / "dir" / "sub").mkdir()
    (mirror / "demo" / "dir" / "sub" / "two.txt").write_bytes(two)
    assert cat.fetch("pair") == mirror / "demo" / "dir"  # complete in the mirror: used in place


def test_hf_entry_without_sha256_is_used_with_a_warning(tmp_path, monkeypatch, cache):
    mirror = tmp_path / "mirror"
    (mirror / "ceed").mkdir(parents=True)
    (mirror / "ceed" / "2023.h5").write_bytes(b"\x89HDF")
    monkeypatch.setenv("TERRALAB_DATA_MIRROR", str(mirror))
    entry = {
        "kind": "hf",
        "format": "ceed-hdf5",
        "path": "ceed/2023.h5",
        "sha256": None,
        "license": "MIT",
        "url": "https://huggingface.co/datasets/AI4EPS/quakeflow_nc/resolve/main/waveform_h5/2023.h5",
        "description": "CEED year",
    }
    cat = catalog.load_catalog(_write_catalog(tmp_path / "c.yaml", {"ceed": entry}), fragments=False)
    with pytest.warns(catalog.UnverifiedDataWarning, match="unverified"):
        assert cat.fetch("ceed") == mirror / "ceed" / "2023.h5"


# ------------------------------------------------------------------------------------------------
# kinds other than files
# ------------------------------------------------------------------------------------------------
def make_ramp(n: int, step: float = 1.0) -> list[float]:
    """A generator with a known result, for the synthetic-kind test."""
    return [i * step for i in range(n)]


def test_synthetic_entry_calls_its_generator_with_params_and_overrides(tmp_path):
    entries = {
        "ramp": {
            "kind": "synthetic",
            "generator": f"{__name__}:make_ramp",
            "params": {"n": 4, "step": 0.5},
            "description": "a ramp",
            "license": "MIT",
        },
        "frac": {
            "kind": "synthetic",
            "generator": "fractions:Fraction",
            "params": {"numerator": 3, "denominator": 4},
            "description": "stdlib generator",
        },
    }
    cat = catalog.load_catalog(_write_catalog(tmp_path / "c.yaml", entries), fragments=False)
    assert cat.open("ramp") == [0.0, 0.5, 1.0, 1.5]
    assert cat.open("ramp", n=2) == [0.0, 0.5]
    assert cat.open("frac", denominator=8) == Fraction(3, 8)
    with pytest.raises(CatalogError, match="nothing to fetch|no file to fetch"):
        cat.fetch("ramp")


def test_earth_engine_entry_without_credentials_says_how_to_set_them(monkeypatch, tmp_path):
    for var in ("EE_SERVICE_ACCOUNT", "EE_PRIVATE_KEY_FILE", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("EARTHENGINE_CREDENTIALS", str(tmp_path / "none"))
    with pytest.raises(CredentialsError) as err:
        catalog.open("ee_sentinel2_sr_harmonized")
    msg = str(err.value)
    assert "COPERNICUS/S2_SR_HARMONIZED" in msg and "earthengine authenticate" in msg
    assert "EE_SERVICE_ACCOUNT" in msg


def test_earth_engine_entry_is_handed_to_terralab_earthengine_when_credentials_exist(monkeypatch, tmp_path):
    import sys
    import types

    key = tmp_path / "key.json"
    key.write_text("{}")
    monkeypatch.setenv("EE_SERVICE_ACCOUNT", "robot@example.iam.gserviceaccount.com")
    monkeypatch.setenv("EE_PRIVATE_KEY_FILE", str(key))
    fake = types.ModuleType("terralab.earthengine")
    fake.open_catalog_entry = lambda entry, **kw: ("handed off", entry.asset, kw)
    monkeypatch.setitem(sys.modules, "terralab.earthengine", fake)
    assert catalog.open("ee_nasadem", region="paro") == (
        "handed off",
        "NASA/NASADEM_HGT/001",
        {"region": "paro"},
    )


def test_stac_entry_needs_the_cloud_extra_or_the_network():
    from terralab.errors import MissingDependencyError

    with pytest.raises((MissingDependencyError, DataNotAvailableError)) as err:
        catalog.open("stac_earth_search_sentinel2_l2a", bbox=[89.3, 27.3, 89.5, 27.5], datetime="2021-07")
    assert "pip install -e '.[cloud]'" in str(err.value) or "earth-search" in str(err.value)


@pytest.fixture
def fake_stac(monkeypatch):
    """A stand-in ``pystac_client`` whose Client.open fails with the queued errors, then searches fine."""
    calls: list[tuple] = []
    failures: list[BaseException] = []

    class Search:
        def __init__(self, kwargs):
            self.kwargs = kwargs

        def item_collection(self):
            return ("items", self.kwargs)

    class Client:
        @classmethod
        def open(cls, url):
            calls.append(("open", url))
            if failures:
                raise failures.pop(0)
            return cls()

        def search(self, **kwargs):
            calls.append(("search", kwargs))
            return Search(kwargs)

        def get_collection(self, name):
            return ("collection", name)

    module = types.ModuleType("pystac_client")
    module.Client = Client
    monkeypatch.setitem(sys.modules, "pystac_client", module)
    return calls, failures


def test_stac_search_is_retried_after_passing_failures(fake_stac, waits):
    import requests

    calls, failures = fake_stac
    failures += [requests.exceptions.ConnectTimeout("timed out"), ConnectionResetError("reset by peer")]
    items = catalog.open("stac_earth_search_sentinel2_l2a", bbox=[89.3, 27.3, 89.5, 27.5], datetime="2021-07")
    assert items == (
        "items",
        {"collections": ["sentinel-2-l2a"], "bbox": [89.3, 27.3, 89.5, 27.5], "datetime": "2021-07"},
    )
    assert [c[0] for c in calls] == ["open", "open", "open", "search"]
    assert waits == [1.0, 2.0]


def test_stac_search_gives_up_after_its_tries_with_a_clear_error(fake_stac, waits):
    calls, failures = fake_stac
    failures += [OSError("network is unreachable")] * 5
    with pytest.raises(DataNotAvailableError) as err:
        catalog.open("stac_earth_search_sentinel2_l2a", bbox=[89.3, 27.3, 89.5, 27.5])
    assert "could not be reached or searched after 3 tries (OSError: network is unreachable)" in str(
        err.value
    )
    assert len(calls) == 3 and waits == [1.0, 2.0]


def test_stac_request_the_api_refuses_is_not_retried(fake_stac, waits):
    class APIError(Exception):
        status_code = 400

    calls, failures = fake_stac
    failures.append(APIError("bad bbox"))
    with pytest.raises(DataNotAvailableError, match="bad bbox"):
        catalog.open("stac_earth_search_sentinel2_l2a", bbox=[1, 2])
    assert len(calls) == 1 and waits == []


def test_catalog_has_the_remote_collections():
    nc = catalog.get("seismic_ceed_nc_2023")
    assert nc.kind == "hf" and nc.format == "ceed-hdf5" and nc.sha256 is None
    assert nc.url == "https://huggingface.co/datasets/AI4EPS/quakeflow_nc/resolve/main/waveform_h5/2023.h5"
    assert catalog.get("stac_earth_search_sentinel2_l2a").collection == "sentinel-2-l2a"
    assets = {catalog.get(n).asset for n in catalog.names() if catalog.get(n).kind == "earthengine"}
    assert {
        "projects/planet-nicfi/assets/basemaps/asia",
        "COPERNICUS/S1_GRD",
        "COPERNICUS/S2_SR_HARMONIZED",
        "NASA/NASADEM_HGT/001",
    } <= assets


# ------------------------------------------------------------------------------------------------
# readers
# ------------------------------------------------------------------------------------------------
def test_registered_reader_is_used_and_unknown_format_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(catalog_readers, "_READERS", dict(catalog_readers._READERS))

    @catalog.register_reader("shout")
    def read_shout(path, suffix="!"):
        return Path(path).read_text().strip().upper() + suffix

    mirror = tmp_path / "m"
    (mirror / "demo").mkdir(parents=True)
    (mirror / "demo" / "table.csv").write_bytes(CONTENT)
    monkeypatch.setenv("TERRALAB_DATA_MIRROR", str(mirror))
    entries = {
        "loud": _table_entry(format="shout", read_kwargs={"suffix": "?"}),
        "odd": _table_entry(format="no-such-format"),
    }
    cat = catalog.load_catalog(_write_catalog(tmp_path / "c.yaml", entries), fragments=False)
    assert cat.open("loud").endswith("3,4?")
    assert cat.open("loud", suffix="!!").endswith("!!")
    with pytest.raises(FileFormatError, match="register_reader"):
        cat.open("odd")


def test_workflow_formats_resolve_through_entry_points():
    eps = catalog_readers._entry_points()
    for fmt in ("das", "phasenet-npz", "ceed-hdf5", "ee-tfrecord-image", "ee-tfrecord-points", "eopatch"):
        assert fmt in eps, f"entry point for {fmt} missing: is the package installed (pip install -e .)?"


def test_open_returns_natural_objects_for_real_files(shared_data):
    import numpy as np
    import pandas as pd
    import xarray as xr

    scsn = catalog.open("seismic_ridgecrest_catalog_scsn")
    assert isinstance(scsn, pd.DataFrame) and len(scsn) == 703 and "depth(m)" in scsn.columns
    assert list(catalog.open("seismic_ridgecrest_stations").columns)[:3] == [
        "station",
        "longitude",
        "latitude",
    ]
    weekly = catalog.open("dengue_colombia_weekly_cases")
    assert len(weekly) == 1122 and "Medellín" in set(weekly["Municipality"])

    tif = catalog.open("rice_aces_paro_geotiff")
    assert isinstance(tif, xr.DataArray) and tif.dims == ("band", "y", "x")
    assert list(tif.band.values[:2]) == ["red_before", "green_before"] and tif.rio.crs.to_epsg() == 4326
    rgb = catalog.open("rice_landsat_rgb", masked=True)
    assert rgb.shape == (3, 718, 791) and bool(rgb.isnull().any())  # nodata collar masked
    jp2 = catalog.open("dengue_s2_usa_b11")
    assert jp2.shape == (1, 973, 967) and jp2.dtype == np.uint16

    scenes = catalog.open("dengue_s2_slovenia_reference_scenes")
    assert scenes.dims == ("time", "y", "x", "band") and scenes.shape == (5, 101, 100, 13)
    png = catalog.open("rice_aces_paro_preview")
    assert png.dims == ("y", "x", "channel") and png.sizes["channel"] == 3

    ref = catalog.open("seismic_phasenet_reference_io")
    assert isinstance(ref, xr.Dataset) and ref["prob"].dims == ("window", "phase", "time")
    np.testing.assert_allclose(ref["prob"].sum("phase"), 1.0, atol=1e-4)  # softmax over noise, P, S
    weights = catalog.open("seismic_phasenet_weights")
    assert isinstance(weights, dict) and sum(a.size for a in weights.values()) == 269_675


@pytest.mark.parametrize("year", range(2015, 2024))
def test_raw_datasus_exports_open_with_one_row_per_week_and_a_total(shared_data, year):
    df = catalog.open(f"dengue_rio_datasus_{year}")
    assert df.iloc[-1, 0] == "Total"
    weeks = df.iloc[:-1, 0].str.extract(r"(\d+)")[0].dropna().astype(int)
    assert 52 <= len(weeks) <= 54 and weeks.max() in (52, 53)
    rio = df["330455 Rio de Janeiro"]
    assert rio.iloc[:-1].fillna(0).sum() == rio.iloc[-1]  # weekly counts add up to the export's own total


def test_multi_file_entries_fetch_their_directories_from_the_shared_mirror(shared_data):
    eop = catalog.fetch("dengue_s2_slovenia_eopatch")
    assert eop == shared_data / "dengue" / "sentinel2_samples" / "slovenia_eolearn" / "TestEOPatch"
    assert len(catalog.get("dengue_s2_slovenia_eopatch").files) == 7
    img = catalog.fetch("rice_aces_paro_image_tfrecord")
    assert sorted(p.name for p in img.iterdir()) == ["image_2021.json", "image_2021.tfrecord.gz"]


# ------------------------------------------------------------------------------------------------
# the real catalog covers shared/data, with real hashes and pinned URLs
# ------------------------------------------------------------------------------------------------
def _shared_sums(shared: Path) -> dict[str, str]:
    sums = {}
    for line in (shared / "SHA256SUMS").read_text().splitlines():
        digest, rel = line.split(None, 1)
        sums[rel.removeprefix("./")] = digest
    return sums


def _covered_paths(cat: catalog.Catalog) -> dict[str, str]:
    """mirror-relative path -> catalog sha256, over single and multi-file entries."""
    out = {}
    for name in cat.names():
        e = cat.get(name)
        if e.files:
            out.update({f"{e.path}/{f.path}": f.sha256 for f in e.files})
        elif e.path:
            out[e.path] = e.sha256
    return out


def test_every_shared_file_has_an_entry_and_verifies(shared_data):
    cat = catalog.load_catalog(ROOT / "data_catalog.yaml", fragments=False)
    sums = _shared_sums(shared_data)
    covered = _covered_paths(cat)
    data_files = {p: s for p, s in sums.items() if Path(p).name != "LICENSE"}
    missing = sorted(set(data_files) - set(covered))
    assert not missing, f"files of SHA256SUMS without a catalog entry: {missing}"
    wrong = sorted(p for p in data_files if covered[p] != sums[p])
    assert not wrong, f"catalog sha256 differs from SHA256SUMS for {wrong}"
    for name in cat.names():  # every file entry present in the mirror verifies through fetch()
        e = cat.get(name)
        if e.kind == "file" and e.path and (shared_data / e.path).exists():
            assert Path(cat.fetch(name)).exists()


def test_every_public_file_entry_has_a_pinned_raw_github_url():
    cat = catalog.load_catalog(ROOT / "data_catalog.yaml", fragments=False)
    pinned = re.compile(r"^https://raw\.githubusercontent\.com/[\w.-]+/[\w.-]+/[0-9a-f]{40}/\S+$")
    problems = []
    for name in cat.names():
        e = cat.get(name)
        if e.kind != "file" or e.derived:
            continue
        urls = [(f.path, f.url) for f in e.files] or [(e.path, e.url)]
        for where, url in urls:
            if url is None:
                if not (e.note and "unverified" in e.note):
                    problems.append(f"{name} ({where}): no url and no note saying why")
            elif not pinned.match(url):
                problems.append(f"{name} ({where}): {url}")
            elif not url.endswith(Path(where).name):
                problems.append(f"{name} ({where}): url names another file: {url}")
        assert e.license and e.description
    assert not problems, "\n".join(problems)


def test_table_lists_every_entry_with_offline_flags(shared_data):
    df = catalog.table()
    assert list(df.columns) == ["name", "kind", "format", "license", "size_mb", "offline", "location"]
    assert sorted(df["name"]) == catalog.names()
    rows = df.set_index("name")
    assert rows.loc["rice_landsat_rgb", "location"] == "mirror" and rows.loc["rice_landsat_rgb", "offline"]
    assert not rows.loc["ee_nasadem", "offline"]
    text = catalog.describe("dengue_colombia_weekly_cases")
    assert "latin-1" in text and "raw.githubusercontent.com" in text and "available:   mirror" in text
