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
from terralab.dengue.protocol import evaluation_series, rolling_evaluation
from terralab.errors import InvalidInputError

QCOLS = [P.quantile_column(q) for q in dengue.QUANTILES]


@pytest.fixture(scope="module")
def synthetic():
    return S.synthetic_cases(300, 3, start="2012w01", seed=7)


@pytest.fixture(scope="module")
def rolled(synthetic):
    return dengue.rolling_backtest(
        synthetic,
        ["persistence", "nb_glm", "pooled", "ensemble"],
        "2016w01",
        "2016w26",
        n_jobs=1,
        progress=False,
        covariates=False,
    )


def test_rolling_backtest_forecasts_every_target_week_at_every_horizon(rolled, synthetic):
    assert list(rolled.columns[:7]) == [
        "model",
        "location",
        "origin",
        "horizon",
        "week",
        "observed",
        "forecast",
    ]
    assert list(rolled.columns[7:]) == QCOLS
    assert list(dict.fromkeys(rolled["model"])) == ["persistence", "nb_glm", "pooled", "ensemble"]
    assert len(rolled) == 4 * 3 * 26 * 4  # models × locations × target weeks × horizons
    assert (rolled["week"] - rolled["origin"] == pd.to_timedelta(rolled["horizon"] * 7, unit="D")).all()
    assert rolled["week"].min() == dengue.week_end("2016w01") and rolled["week"].max() == dengue.week_end(
        "2016w26"
    )
    obs = synthetic.stack()
    assert (
        rolled["observed"].to_numpy() == obs.loc[list(zip(rolled["week"], rolled["location"]))].to_numpy()
    ).all()
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
    dengue.rolling_backtest(
        synthetic, [_Spy()], "2016w01", "2016w26", n_jobs=1, progress=False, quantiles=None
    )
    refits = [dengue.week_end(w) for w in ("2015w49", "2016w10", "2016w23")]
    ends = [refits[1] - pd.Timedelta(weeks=1), refits[2] - pd.Timedelta(weeks=1), dengue.week_end("2016w25")]
    assert sorted({(r, e) for r, e, _ in _Spy.seen}) == list(zip(refits, ends))
    assert {h for *_, h in _Spy.seen} == {1, 2, 3, 4}


@pytest.mark.parametrize("name", ["persistence", "nb_glm", "pooled", "gbm", "lstm"])
def test_changing_later_weeks_moves_no_forecast_made_before_them(synthetic, name):
    kw = {
        "start": "2016w01",
        "end": "2016w20",
        "n_jobs": 1,
        "progress": False,
        "covariates": False,
        "model_params": {"lstm": {"steps": 30, "batch_size": 64}},
    }
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


def test_ensemble_can_take_the_quantile_wise_median_of_its_members(synthetic):
    fc = dengue.rolling_backtest(
        synthetic,
        ["persistence", "moving_mean", "nb_glm", "ensemble"],
        "2016w01",
        "2016w08",
        n_jobs=1,
        progress=False,
        covariates=False,
        ensemble_members=["persistence", "moving_mean", "nb_glm"],
        ensemble_how="median",
    )
    keys = ["location", "origin", "horizon"]
    members = fc[fc["model"] != "ensemble"].groupby(keys)[QCOLS].median().sort_index()
    ens = fc[fc["model"] == "ensemble"].set_index(keys)[QCOLS].sort_index()
    np.testing.assert_allclose(ens.to_numpy(), np.sort(members.to_numpy(), axis=1))
    assert fc.attrs["quantile_method"]["ensemble"].startswith("quantile-wise median")
    with pytest.raises(InvalidInputError, match="ensemble_how"):
        dengue.rolling_backtest(
            synthetic,
            ["nb_glm", "pooled", "ensemble"],
            "2016w01",
            "2016w08",
            n_jobs=1,
            progress=False,
            covariates=False,
            ensemble_how="trimmed",
        )


def test_the_lstm_is_fitted_once_per_refit_for_all_four_horizons(synthetic, monkeypatch):
    fits = []
    original = M.LSTMForecaster._fit

    def counting(self, panel, train_end, horizons):
        fits.append((train_end, horizons))
        return original(self, panel, train_end, horizons)

    monkeypatch.setattr(M.LSTMForecaster, "_fit", counting)
    fc = dengue.rolling_backtest(
        synthetic,
        ["lstm"],
        "2016w01",
        "2016w26",
        n_jobs=1,
        progress=False,
        covariates=False,
        model_params={"lstm": {"steps": 20}},
    )
    # three refits, one network each; the last serves origins 2016w23-w25, too late for a 4-week forecast in
    # 2016w26
    assert [h for _, h in fits] == [(1, 2, 3, 4), (1, 2, 3, 4), (1, 2, 3)]
    assert set(fc["horizon"]) == {1, 2, 3, 4} and fc.attrs["cpu_seconds"]["lstm"] > 0


def test_parallel_workers_give_the_serial_result(synthetic):
    kw = {"start": "2016w01", "end": "2016w13", "horizons": (1, 3), "progress": False, "covariates": False}
    serial = dengue.rolling_backtest(synthetic, ["moving_mean", "pooled"], n_jobs=1, **kw)
    parallel = dengue.rolling_backtest(synthetic, ["moving_mean", "pooled"], n_jobs=2, **kw)
    pd.testing.assert_frame_equal(serial, parallel)


# --------------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
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
    ],
)
def test_bad_settings_are_refused(synthetic, kwargs, match):
    kw = {
        "models": ["persistence"],
        "start": "2016w01",
        "end": "2016w10",
        "progress": False,
        "n_jobs": 1,
    } | kwargs
    with pytest.raises(InvalidInputError, match=match):
        dengue.rolling_backtest(synthetic, **kw)


def test_location_with_too_few_weeks_before_the_first_origin_is_refused(synthetic):
    late = synthetic.copy()
    late.loc[: dengue.week_end("2015w45"), 2] = np.nan  # location 2 starts four weeks before the first origin
    with pytest.raises(InvalidInputError, match=r"location 2 has 4 week\(s\).*lookback \+ horizon = 9"):
        dengue.rolling_backtest(late, ["persistence"], "2016w01", "2016w10", progress=False, n_jobs=1)
    short = synthetic.loc[dengue.week_end("2015w40") :]
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
    maes = {
        m: dengue.score(dengue.backtest(five, m))["mae"].mean()
        for m in ("persistence", "moving_mean", "nb_glm", "pooled")
    }
    assert maes["pooled"] == pytest.approx(7.87, abs=0.006)  # deterministic (least squares), as printed
    assert maes["pooled"] < min(v for k, v in maes.items() if k != "pooled")


@pytest.fixture(scope="module")
def colombia_100(shared_data, tmp_path_factory):
    """The README's rolling evaluation without the LSTM and median_ar (benchmarks/dengue_rolling.py runs those
    too).

    100 municipalities with the most cases 2007-2015, every target week 2016w01-2019w52, horizons 1-4, refits
    every 13 weeks; model settings and the ensemble (quantile-wise mean of gbm, nb_glm and pooled) were chosen
    on 2012-2015 (benchmarks/dengue_design_selection.py). Every model here is deterministic (least squares,
    IRLS, single-thread fixed-seed LightGBM), so the figures are tested to the printed three decimals.
    """
    with pytest.MonkeyPatch.context() as mp:  # module scope: the per-test mirror and cache are not set yet
        mp.setenv("TERRALAB_DATA_MIRROR", str(shared_data))
        mp.setenv("TERRALAB_CACHE", str(tmp_path_factory.mktemp("terralab-cache")))
        (run,) = evaluation_series("colombia", 100)  # targets 2016w01-2019w52, covariates off
    assert (run.start, run.end, run.covariates) == ("2016w01", "2019w52", False)
    return rolling_evaluation(
        run.cases,
        ["persistence", "moving_mean", "seasonal_naive", "gbm", "nb_glm", "pooled", "ensemble"],
        run.start,
        run.end,
        n_jobs=2,
        progress=False,
        covariates=run.covariates,
    )


@pytest.mark.slow
def test_colombia_100_rolling_evaluation_covers_every_origin_and_uses_the_chosen_ensemble(colombia_100):
    fc = colombia_100
    assert fc["location"].nunique() == 100 and fc["origin"].nunique() == 211
    assert fc.attrs["ensemble_members"] == ["gbm", "nb_glm", "pooled"] and fc.attrs["ensemble_how"] == "mean"
    table = dengue.score(fc, by=[])
    assert table.loc[["persistence", "moving_mean", "seasonal_naive"], "wis"].idxmin() == "persistence"


# README figures, 100 Colombian municipalities 2016-2019 (as benchmarks/dengue_rolling.py prints them)
@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "wis", "rel_wis", "coverage_50", "coverage_90"),
    [
        ("persistence", 2.469, 1.000, 0.634, 0.914),
        ("moving_mean", 2.647, 1.072, 0.582, 0.898),
        ("seasonal_naive", 7.440, 3.013, 0.599, 0.893),
        ("gbm", 2.069, 0.838, 0.502, 0.898),
        ("nb_glm", 2.118, 0.858, 0.662, 0.933),
        ("pooled", 2.207, 0.894, 0.501, 0.897),
        (
            "ensemble",
            2.057,
            0.833,
            0.495,
            0.898,
        ),  # goal WIS <= 0.85 x best baseline: met; 90 % coverage 0.85-0.95: met
    ],
)
def test_colombia_100_wis_and_coverage_are_the_readme_figures(
    colombia_100, model, wis, rel_wis, coverage_50, coverage_90
):
    row = dengue.score(colombia_100, by=[], baseline="persistence").loc[model]
    assert row["wis"] == pytest.approx(wis, abs=0.0006)
    assert row["rel_wis"] == pytest.approx(rel_wis, abs=0.0006)
    assert row["coverage_50"] == pytest.approx(coverage_50, abs=0.0006)
    assert row["coverage_90"] == pytest.approx(coverage_90, abs=0.0006)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "ratio", "lo", "hi"),
    [("ensemble", 0.834, 0.814, 0.850), ("gbm", 0.837, 0.822, 0.854), ("pooled", 0.895, 0.863, 0.923)],
)
def test_colombia_100_paired_test_against_persistence(colombia_100, model, ratio, lo, hi):
    t = dengue.paired_test(colombia_100, model, "persistence")
    assert t["n_origins"] == 211
    assert t["ratio"] == pytest.approx(ratio, abs=0.0006)
    assert t["ratio_ci95"][0] == pytest.approx(lo, abs=0.0006) and t["ratio_ci95"][1] == pytest.approx(
        hi, abs=0.0006
    )
    assert t["p_value"] < 1e-10 and t["p_bootstrap"] < 0.05  # printed: p = 1.3e-30 / 1.5e-27 / 1.9e-13


def test_a_dask_client_runs_the_tasks_with_the_same_result(synthetic):
    from distributed import Client

    kw = {"start": "2016w01", "end": "2016w13", "horizons": (1, 2), "progress": False, "covariates": False}
    serial = dengue.rolling_backtest(synthetic, ["persistence", "pooled"], n_jobs=1, **kw)
    with Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as client:
        on_dask = dengue.rolling_backtest(synthetic, ["persistence", "pooled"], client=client, **kw)
    pd.testing.assert_frame_equal(serial, on_dask)


def _single_series_rolling(shared_data, tmp_path_factory, source):
    """benchmarks/dengue_rolling.py --source rio|dengai without the LSTM and pooled: the same windows, the
    chosen single-series ensemble (quantile-wise median of median_ar, gbm, nb_glm; chosen on earlier
    years)."""
    models = ["persistence", "moving_mean", "seasonal_naive", "median_ar", "gbm", "nb_glm", "ensemble"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TERRALAB_DATA_MIRROR", str(shared_data))
        mp.setenv("TERRALAB_CACHE", str(tmp_path_factory.mktemp("terralab-cache")))
        frames = [
            rolling_evaluation(
                s.cases, models, s.start, s.end, n_jobs=2, progress=False, covariates=s.covariates
            )
            for s in evaluation_series(source)  # Rio 2018w01-2023w52; each DengAI city's last 208 weeks
        ]
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


# README figures (benchmarks/dengue_rolling.py --source rio / --source dengai print the same, to three
# decimals)
@pytest.mark.slow
@pytest.mark.parametrize(
    ("source", "persistence_wis", "ensemble_wis", "rel_wis", "coverage_90"),
    [
        ("rio", 42.749, 27.085, 0.634, 0.848),
        (
            "dengai",
            5.275,
            4.463,
            0.846,
            0.840,
        ),  # 90 % coverage below the 0.85-0.95 goal on these single series
    ],
)
def test_single_series_sources_rolling_ensemble_figures(
    shared_data, tmp_path_factory, source, persistence_wis, ensemble_wis, rel_wis, coverage_90
):
    fc = _single_series_rolling(shared_data, tmp_path_factory, source)
    table = dengue.score(fc, by=[], baseline="persistence")
    assert table.loc[["persistence", "moving_mean", "seasonal_naive"], "wis"].idxmin() == "persistence"
    assert table.loc["persistence", "wis"] == pytest.approx(persistence_wis, abs=0.0006)
    assert table.loc["ensemble", "wis"] == pytest.approx(ensemble_wis, abs=0.0006)
    assert table.loc["ensemble", "rel_wis"] == pytest.approx(rel_wis, abs=0.0006)
    assert table.loc["ensemble", "coverage_90"] == pytest.approx(coverage_90, abs=0.0006)
    assert dengue.paired_test(fc, "ensemble", "persistence")["p_value"] < 0.05


def test_rolling_evaluation_runs_the_reported_protocol(synthetic):
    fc = rolling_evaluation(synthetic, ["persistence"], "2016w01", "2016w04", n_jobs=1, progress=False)
    assert fc.attrs["horizons"] == [1, 2, 3, 4] and fc.attrs["refit_every_weeks"] == 13
    kw = {"horizons": (1, 2, 3, 4), "refit_every_weeks": 13, "seed": 0, "n_jobs": 1, "progress": False}
    same = dengue.rolling_backtest(synthetic, ["persistence"], "2016w01", "2016w04", **kw)
    pd.testing.assert_frame_equal(fc, same)


def test_evaluation_series_refuses_an_unknown_source_and_a_design_window_rio_does_not_have():
    with pytest.raises(InvalidInputError, match="source must be"):
        evaluation_series("lima")
    with pytest.raises(InvalidInputError, match="no design window"):
        evaluation_series("rio", design=True)


def test_dengai_design_weeks_are_the_208_before_the_reported_ones(shared_data):
    reported, design = evaluation_series("dengai"), evaluation_series("dengai", design=True)
    for r, d in zip(reported, design):
        idx = r.cases.index
        assert r.label == d.label and (r.start, r.end) == (idx[-208], idx[-1])
        assert (d.start, d.end) == (idx[-416], idx[-209])


def test_an_unknown_rolling_option_is_refused_with_the_options(synthetic):
    with pytest.raises(
        InvalidInputError, match="unknown option\\(s\\) 'lookback_weeks'.*covariates.*lookback"
    ):
        dengue.rolling_backtest(synthetic, ["persistence"], "2016w01", "2016w04", lookback_weeks=5)
