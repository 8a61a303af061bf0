"""Rolling-origin evaluation: refit schedule, no look-ahead, the ensemble, parallel runs, bad input, and the
headline comparison on real SIVIGILA counts."""

import typing

import numpy as np
import pandas as pd
import pytest

from terralab import dengue
from terralab.dengue import models as M
from terralab.dengue import probabilistic as P
from terralab.dengue import synthetic as S
from terralab.errors import InvalidInputError

QCOLS = [P.quantile_column(q) for q in dengue.QUANTILES]


@pytest.fixture(scope="module")
def synthetic():
    return S.synthetic_cases(300, 3, start="2012w01", seed=7)


@pytest.fixture(scope="module")
def rolled(synthetic):
    return dengue.rolling_backtest(synthetic, ["persistence", "nb_glm", "pooled", "ensemble"], "2016w01", "2016w26",
                                   n_jobs=1, progress=False, covariates=False)


def test_rolling_backtest_forecasts_every_target_week_at_every_horizon(rolled, synthetic):
    assert list(rolled.columns[:7]) == ["model", "location", "origin", "horizon", "week", "observed", "forecast"]
    assert list(rolled.columns[7:]) == QCOLS
    assert list(dict.fromkeys(rolled["model"])) == ["persistence", "nb_glm", "pooled", "ensemble"]
    assert len(rolled) == 4 * 3 * 26 * 4  # models × locations × target weeks × horizons
    assert (rolled["week"] - rolled["origin"] == pd.to_timedelta(rolled["horizon"] * 7, unit="D")).all()
    assert rolled["week"].min() == dengue.week_end("2016w01") and rolled["week"].max() == dengue.week_end("2016w26")
    obs = synthetic.stack()
    assert (rolled["observed"].to_numpy() == obs.loc[list(zip(rolled["week"], rolled["location"]))].to_numpy()).all()
    q = rolled[QCOLS].to_numpy()
    assert (q >= 0).all() and (np.diff(q, axis=1) >= 0).all()


def test_models_are_refitted_every_13_weeks_from_the_first_origin(rolled):
    # first origin 2015w49 (2016w01 four weeks ahead); the last refit serves the origins up to 2016w25
    assert rolled.attrs["refits"] == ["2015w49", "2016w10", "2016w23"]
    assert rolled.attrs["horizons"] == [1, 2, 3, 4] and rolled.attrs["refit_every_weeks"] == 13


class _Spy(M.Persistence):
    """Persistence that records what each refit was handed."""

    name = "spy"
    trained = True
    seen: typing.ClassVar[list] = []

    def fit(self, panel, train_end):
        _Spy.seen.append((train_end, panel.cases.index[-1], panel.horizon))
        return self


def test_each_refit_sees_only_the_weeks_up_to_the_last_origin_it_serves(synthetic):
    _Spy.seen.clear()
    dengue.rolling_backtest(synthetic, [_Spy()], "2016w01", "2016w26", n_jobs=1, progress=False, quantiles=None)
    refits = [dengue.week_end(w) for w in ("2015w49", "2016w10", "2016w23")]
    ends = [refits[1] - pd.Timedelta(weeks=1), refits[2] - pd.Timedelta(weeks=1), dengue.week_end("2016w25")]
    assert sorted({(r, e) for r, e, _ in _Spy.seen}) == list(zip(refits, ends))
    assert {h for *_, h in _Spy.seen} == {1, 2, 3, 4}


@pytest.mark.parametrize("name", ["persistence", "nb_glm", "pooled"])
def test_changing_later_weeks_moves_no_forecast_made_before_them(synthetic, name):
    kw = {"start": "2016w01", "end": "2016w20", "n_jobs": 1, "progress": False, "covariates": False}
    base = dengue.rolling_backtest(synthetic, [name], **kw)
    cut = dengue.week_end("2016w08")
    changed = synthetic.copy()
    changed.loc[cut:] = changed.loc[cut:] * 5 + 40
    alt = dengue.rolling_backtest(changed, [name], **kw)
    before = base["origin"] < cut
    assert before.sum() > 100
    cols = ["forecast"] + QCOLS
    np.testing.assert_allclose(base.loc[before, cols].to_numpy(), alt.loc[before, cols].to_numpy(), rtol=1e-9)
    assert not np.allclose(base.loc[~before, "forecast"], alt.loc[~before, "forecast"])


def test_ensemble_is_the_quantile_wise_mean_of_its_members(rolled):
    keys = ["location", "origin", "horizon"]
    members = rolled[rolled["model"].isin(["nb_glm", "pooled"])].groupby(keys)[QCOLS].mean()
    ens = rolled[rolled["model"] == "ensemble"].set_index(keys)[QCOLS]
    np.testing.assert_allclose(ens.sort_index().to_numpy(), np.sort(members.sort_index().to_numpy(), axis=1))
    assert rolled.attrs["ensemble_members"] == ["nb_glm", "pooled"]


def test_parallel_workers_give_the_serial_result(synthetic):
    kw = {"start": "2016w01", "end": "2016w13", "horizons": (1, 3), "progress": False, "covariates": False}
    serial = dengue.rolling_backtest(synthetic, ["moving_mean", "pooled"], n_jobs=1, **kw)
    parallel = dengue.rolling_backtest(synthetic, ["moving_mean", "pooled"], n_jobs=2, **kw)
    pd.testing.assert_frame_equal(serial, parallel)


# --------------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "match"), [
    ({"quantiles": [0.1, 0.5, 1.0]}, "between 0 and 1"),
    ({"quantiles": [0.9, 0.5, 0.1]}, "increasing"),
    ({"start": "2016w20", "end": "2016w10"}, "after"),
    ({"horizons": (0, 1)}, "horizon must be ≥ 1"),
    ({"horizons": (1.5,)}, "horizon must be a whole number"),
    ({"refit_every_weeks": 0}, "refit_every_weeks must be ≥ 1"),
    ({"refit_every_weeks": 2.5}, "refit_every_weeks must be a whole number"),
    ({"models": ["denguenet"]}, "image"),
    ({"models": ["prophet"]}, "unknown model"),
    ({"models": ["persistence", "ensemble"]}, "ensemble needs"),
])
def test_bad_settings_are_refused(synthetic, kwargs, match):
    kw = {"models": ["persistence"], "start": "2016w01", "end": "2016w10", "progress": False, "n_jobs": 1} | kwargs
    with pytest.raises(InvalidInputError, match=match):
        dengue.rolling_backtest(synthetic, **kw)


def test_location_with_too_few_weeks_before_the_first_origin_is_refused(synthetic):
    late = synthetic.copy()
    late.loc[: dengue.week_end("2015w45"), 2] = np.nan  # location 2 starts four weeks before the first origin
    with pytest.raises(InvalidInputError, match=r"location 2 has 4 week\(s\).*lookback \+ horizon = 9"):
        dengue.rolling_backtest(late, ["persistence"], "2016w01", "2016w10", progress=False, n_jobs=1)
    short = synthetic.loc[dengue.week_end("2015w40"):]
    with pytest.raises(InvalidInputError, match="needs"):
        dengue.rolling_backtest(short, ["pooled"], "2016w01", "2016w10", progress=False, n_jobs=1)


@pytest.mark.parametrize(("value", "match"), [(-3.0, "negative"), (2.5, "whole numbers")])
def test_negative_or_fractional_counts_are_refused(synthetic, value, match):
    bad = synthetic.copy()
    bad.iloc[100, 1] = value
    with pytest.raises(InvalidInputError, match=match):
        dengue.rolling_backtest(bad, ["persistence"], "2016w01", "2016w10", progress=False, n_jobs=1)


# --------------------------------------------------------------------------------------------------
# real SIVIGILA counts
# --------------------------------------------------------------------------------------------------
def test_denguenet_split_best_mae_is_the_pooled_models(shared_data):
    five = dengue.load_cases()
    maes = {m: dengue.score(dengue.backtest(five, m))["mae"].mean() for m in
            ("persistence", "moving_mean", "nb_glm", "pooled")}
    assert maes["pooled"] == pytest.approx(7.70, abs=0.006)  # deterministic (least squares), as printed
    assert maes["pooled"] < min(v for k, v in maes.items() if k != "pooled")


@pytest.mark.slow
def test_pooled_model_beats_the_best_baseline_over_100_municipalities_2016_to_2019(shared_data):
    """The README's rolling figures for the pooled model (the ensemble's come from benchmarks/dengue_rolling.py).

    100 municipalities with the most cases 2007-2015, every target week 2016w01-2019w52, horizons 1-4, refits every
    13 weeks; model settings were chosen on 2012-2015. Deterministic (least squares): tested to the printed digits.
    """
    cases = dengue.top_locations(dengue.load_cases("colombia"), 100, end="2015w52")
    fc = dengue.rolling_backtest(cases, ["persistence", "moving_mean", "seasonal_naive", "pooled"], "2016w01",
                                 "2019w52", n_jobs=1, progress=False, covariates=False)
    assert fc["location"].nunique() == 100 and fc["origin"].nunique() == 211
    table = dengue.score(fc, by=[], baseline="persistence")
    assert table.loc[["persistence", "moving_mean", "seasonal_naive"], "wis"].idxmin() == "persistence"
    assert table.loc["persistence", "wis"] == pytest.approx(2.469, abs=0.0006)
    assert table.loc["pooled", "wis"] == pytest.approx(2.206, abs=0.0006)
    assert table.loc["pooled", "rel_wis"] == pytest.approx(0.893, abs=0.0006)  # goal 0.85: not met by pooled alone
    assert table.loc["pooled", "coverage_90"] == pytest.approx(0.897, abs=0.0006)
    assert table.loc["pooled", "coverage_50"] == pytest.approx(0.501, abs=0.0006)
    paired = dengue.paired_test(fc, "pooled", "persistence")
    assert paired["p_value"] < 0.05 and paired["ratio_ci95"][1] < 1.0


def test_a_dask_client_runs_the_tasks_with_the_same_result(synthetic):
    from distributed import Client

    kw = {"start": "2016w01", "end": "2016w13", "horizons": (1, 2), "progress": False, "covariates": False}
    serial = dengue.rolling_backtest(synthetic, ["persistence", "pooled"], n_jobs=1, **kw)
    with Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as client:
        on_dask = dengue.rolling_backtest(synthetic, ["persistence", "pooled"], client=client, **kw)
    pd.testing.assert_frame_equal(serial, on_dask)
