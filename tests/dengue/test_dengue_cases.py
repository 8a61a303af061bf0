"""Case and covariate loaders: the embedded extract, the Colombian tables, DengAI and Rio, and bad input."""

import gzip
import hashlib
import socket

import numpy as np
import pandas as pd
import pytest

from terralab import dengue
from terralab.dengue import cases as C
from terralab.errors import DataNotAvailableError, InvalidInputError

FIVE = [5001, 76001, 73001, 50001, 54001]


def test_embedded_extract_has_the_five_denguenet_cities_weekly_2007_to_2019():
    cases = dengue.load_cases()
    assert list(cases.columns) == FIVE
    assert cases.index[0] == pd.Timestamp("2007-01-06") and cases.index[-1] == pd.Timestamp("2019-12-28")
    assert (cases.index.day_of_week == 5).all() and cases.index.freqstr == "W-SAT"
    assert cases.attrs["location_names"][5001] == "Medellín"
    # the two MMWR week-53s the source lacks are filled and listed
    assert cases.attrs["imputed_weeks"] == ["2008w53", "2014w53"]
    assert cases.loc["2018-09-15", 5001] == 12  # 2018w37 in the source table


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No data mirror, an empty cache, and every network connection refused."""
    monkeypatch.delenv("TERRALAB_DATA_MIRROR", raising=False)
    monkeypatch.setenv("TERRALAB_CACHE", str(tmp_path / "empty-cache"))

    def refuse(*args, **kwargs):
        raise OSError("network access is disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_five_city_covariates_and_dengai_load_offline_from_the_embedded_extracts(offline):
    cases = dengue.load_cases()
    cov = dengue.align_covariates(dengue.load_covariates("colombia_denguenet"), cases)
    assert cov.shape == (len(cases), 10) and not cov.isna().any().any()
    assert 15 < cov["temperature"].mean().mean() < 35
    assert (
        dengue.load_covariates("colombia", [5001, 54001]).shape[1] == 4
    )  # a subset of the five: embedded too
    dengai = dengue.load_cases("dengai")
    assert list(dengai.columns) == ["sj", "iq"] and dengai["sj"].sum() > 0
    assert dengue.load_covariates("dengai").shape[1] == 40


def test_embedded_covariates_are_the_source_columns_unchanged(shared_data):
    for var in ("temperature", "precipitation"):
        full = pd.read_csv(shared_data / f"dengue/colombia/{var}.csv", dtype=str, keep_default_na=False)
        ours = pd.read_csv(C.PACKAGE_DATA / f"colombia_denguenet_{var}.csv", dtype=str, keep_default_na=False)
        pd.testing.assert_frame_equal(ours, full[ours.columns])
        assert {int(c.split("_")[1]) for c in ours.columns[1:]} == set(FIVE)


def test_embedded_dengai_files_decompress_to_the_source_bytes(shared_data):
    for name in ("labels_train", "features_train"):
        ours = gzip.decompress((C.PACKAGE_DATA / f"dengai_{name}.csv.gz").read_bytes())
        source = (shared_data / f"dengue/dengai/dengue_{name}.csv").read_bytes()
        assert hashlib.sha256(ours).hexdigest() == hashlib.sha256(source).hexdigest()


def test_week53_fill_nan_leaves_the_missing_weeks_empty():
    cases = dengue.load_cases(week53_fill="nan")
    assert cases.loc[["2009-01-03", "2015-01-03"]].isna().all().all()
    assert cases.drop(pd.DatetimeIndex(["2009-01-03", "2015-01-03"])).notna().all().all()


def test_population_comes_with_the_colombian_cases():
    pop = dengue.population(dengue.load_cases(locations=[5001]))
    assert pop.loc[2018, 5001] == 2427129


def test_embedded_extract_equals_the_full_sivigila_table(shared_data):
    full = dengue.load_cases("colombia", locations=FIVE)
    pd.testing.assert_frame_equal(full, dengue.load_cases(), check_freq=False)
    assert full.attrs["population"] == dengue.load_cases().attrs["population"]


def test_full_colombian_table_has_1122_municipalities(shared_data):
    cases = dengue.load_cases("colombia")
    assert cases.shape == (678, 1122)
    assert (cases.to_numpy() >= 0).all()


def test_top10_source_matches_the_sivigila_table_and_has_covariates(shared_data):
    top = dengue.load_cases("colombia_top10", locations=FIVE)
    pd.testing.assert_frame_equal(top, dengue.load_cases(), check_freq=False)
    cov = dengue.load_covariates("colombia_top10", FIVE)
    assert set(cov.columns.get_level_values(0)) == {"temperature", "precipitation"}
    assert cov.index.equals(top.index)


def test_colombian_covariates_cover_every_case_week(shared_data):
    cases = dengue.load_cases()
    cov = dengue.load_covariates("colombia_denguenet", FIVE)
    aligned = dengue.align_covariates(cov, cases)
    assert aligned.shape == (len(cases), 10)
    assert 15 < aligned["temperature"].mean().mean() < 35


def test_dengai_cities_load_on_saturdays_with_their_own_spans(shared_data):
    sj = dengue.load_cases("dengai", ["sj"])
    iq = dengue.load_cases("dengai", ["iq"])
    assert sj.index[0] == pd.Timestamp("1990-05-05")  # ISO 1990-W18
    assert len(sj) == 939 and len(iq) == 522
    both = dengue.load_cases("dengai")
    assert both["iq"].first_valid_index() == iq.index[0]
    cov = dengue.load_covariates("dengai", ["sj"])
    assert not cov.isna().any().any() and cov.shape[1] == 20


def test_rio_folds_the_spurious_week_53_of_2015_into_week_52(shared_data):
    rio = dengue.load_cases("rio")
    raw = pd.read_csv(shared_data / "dengue/rio_de_janeiro/cases.csv")
    w52 = raw.query("year == 2015 and epiweek in (52, 53)")["cases"].sum()
    assert rio.loc[dengue.week_end("2015w52"), 330455] == w52
    assert rio.loc[dengue.week_end("2020w53"), 330455] == 5  # a real week 53 keeps its row
    assert rio[330455].sum() == raw["cases"].sum()


def test_unknown_municipality_code_is_refused_with_close_codes():
    with pytest.raises(C.UnknownLocationError, match="5002|close"):
        dengue.load_cases(locations=[5002])
    with pytest.raises(InvalidInputError):
        dengue.load_cases(locations=["medellin"])


def test_unknown_source_is_refused():
    with pytest.raises(InvalidInputError, match="colombia"):
        dengue.load_cases("colombiaa")


def test_rio_has_no_covariates():
    assert not dengue.has_covariates("rio")
    with pytest.raises(DataNotAvailableError):
        dengue.load_covariates("rio")


def _weekly(n=20):
    idx = dengue.week_index("2018w01", (2018, n))
    return pd.DataFrame({1: np.arange(n, dtype=float)}, index=idx)


def test_duplicated_weeks_are_refused():
    df = _weekly()
    with pytest.raises(InvalidInputError, match="more than once"):
        dengue.validate_cases(pd.concat([df, df.iloc[[3]]]).sort_index())


def test_missing_weeks_are_refused():
    with pytest.raises(InvalidInputError, match="gap"):
        dengue.validate_cases(_weekly().drop(_weekly().index[5]))


def test_negative_and_nan_counts_are_refused():
    df = _weekly()
    df.iloc[4, 0] = -1
    with pytest.raises(InvalidInputError, match="negative"):
        dengue.validate_cases(df)
    df.iloc[4, 0] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        dengue.validate_cases(df)


def test_fractional_counts_are_refused():
    df = _weekly()
    df.iloc[3, 0] = 2.5
    with pytest.raises(InvalidInputError, match="whole numbers.*2.5.*round"):
        dengue.validate_cases(df)


def test_index_not_on_saturdays_is_refused():
    df = _weekly()
    df.index = df.index - pd.Timedelta(days=6)  # Sundays (week starts)
    with pytest.raises(InvalidInputError, match="Saturdays"):
        dengue.validate_cases(df)


def test_covariates_not_aligned_to_the_weeks_are_refused():
    cases = _weekly()
    cov = pd.concat({"rain": cases.rename(columns={1: 1})}, axis=1, names=["variable", "location"])
    cov.index = cov.index - pd.Timedelta(days=6)
    with pytest.raises(InvalidInputError, match="not aligned"):
        dengue.align_covariates(cov, cases)
    with pytest.raises(InvalidInputError, match="not aligned"):
        dengue.align_covariates(cov.iloc[:10].set_axis(cases.index[:10]), cases)
