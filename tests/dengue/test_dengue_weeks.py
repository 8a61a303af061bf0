"""Epi-weeks: MMWR weeks via the epiweeks library, label parsing, ISO weeks, and the week-53 rule."""

import pandas as pd
import pytest

from terralab.dengue import weeks
from terralab.errors import InvalidInputError


def test_2018w37_ends_on_saturday_15_september():
    assert weeks.week_end("2018w37") == pd.Timestamp("2018-09-15")
    assert weeks.week_end("2018/w37") == weeks.week_end("2018-W37") == weeks.week_end("201837")
    assert weeks.week_end((2018, 37)) == pd.Timestamp("2018-09-15")


def test_any_date_maps_to_the_saturday_ending_its_sunday_to_saturday_week():
    # Sunday 9 Sept starts MMWR 2018w37, Saturday 15 Sept ends it, Sunday 16 starts w38
    assert weeks.week_end("2018-09-09") == pd.Timestamp("2018-09-15")
    assert weeks.week_end("2018-09-15") == pd.Timestamp("2018-09-15")
    assert weeks.week_end("2018-09-16") == pd.Timestamp("2018-09-22")
    assert weeks.week_label("2018-09-12") == "2018w37"


def test_mmwr_years_2008_2014_2020_have_53_weeks_and_others_52():
    assert [y for y in range(2005, 2022) if weeks.n_weeks(y) == 53] == [2008, 2014, 2020]
    assert weeks.epiweek_of("2009-01-02") == (2008, 53)
    assert weeks.week_end("2008w53") == pd.Timestamp("2009-01-03")


def test_week53_label_in_a_52_week_year_folds_into_week_52_or_raises():
    assert weeks.week_end("2015w53") == weeks.week_end("2015w52")
    with pytest.raises(InvalidInputError, match="52 MMWR weeks"):
        weeks.week_end("2015w53", week53="raise")


def test_iso_week_is_placed_on_the_saturday_of_its_monday_to_saturday():
    # DengAI's first San Juan row: ISO 1990-W18 starts Monday 30 April 1990
    assert weeks.iso_week_end(1990, 18) == pd.Timestamp("1990-05-05")
    assert pd.Timestamp("1990-05-05").day_of_week == 5
    with pytest.raises(InvalidInputError):
        weeks.iso_week_end(1991, 53)


def test_same_week_last_year_uses_week_52_for_week_53():
    assert weeks.same_week_last_year("2018w37") == weeks.week_end("2017w37")
    assert weeks.same_week_last_year("2020w53") == weeks.week_end("2019w52")
    assert weeks.same_week_last_year("2009w10") == weeks.week_end("2008w10")


def test_fold_week53_adds_week_53_to_week_52():
    idx = weeks.week_index("2020w51", "2021w01")
    s = pd.Series([1.0, 2.0, 4.0, 8.0], index=idx)
    table = weeks.fold_week53(s)
    assert table.loc[(2020, 52)].iloc[0] == 6.0
    assert list(table.index) == [(2020, 51), (2020, 52), (2021, 1)]


def test_week_index_is_regular_saturdays():
    idx = weeks.week_index("2016w01", "2018w52")
    assert len(idx) == 156 and (idx.day_of_week == 5).all()


@pytest.mark.parametrize("bad", ["2018w54", "2018x37", "w37", "", "2018w0"])
def test_malformed_week_labels_raise(bad):
    with pytest.raises(InvalidInputError):
        weeks.parse_week(bad)
