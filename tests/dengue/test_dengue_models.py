"""Models on series with known structure: each baseline's exact behaviour, the GLM's recovered effect,
DengueNet."""

import numpy as np
import pandas as pd
import pytest

from terralab import dengue
from terralab.dengue import models as M
from terralab.dengue import synthetic as S
from terralab.errors import InvalidInputError


def _frame(values, start="2015w01"):
    idx = dengue.week_index(start, dengue.week_end(start) + pd.Timedelta(weeks=len(values) - 1))
    return pd.DataFrame({1: np.asarray(values, dtype=float)}, index=idx)


def test_persistence_and_moving_mean_on_a_linear_trend_lag_by_their_window():
    cases = _frame(np.arange(200))
    pers = dengue.score(dengue.backtest(cases, "persistence", test_start="2018w01", test_end="2018w10"))
    mm = dengue.score(dengue.backtest(cases, "moving_mean", test_start="2018w01", test_end="2018w10"))
    assert pers["mae"].iloc[0] == pytest.approx(1.0)
    assert mm["mae"].iloc[0] == pytest.approx(2.5)  # mean of t-1..t-4 is t-2.5
    h3 = dengue.score(
        dengue.backtest(cases, "persistence", test_start="2018w01", test_end="2018w10", horizon=3)
    )
    assert h3["mae"].iloc[0] == pytest.approx(3.0)


def test_seasonal_naive_is_exact_on_a_repeating_annual_cycle():
    cycle = np.round(50 + 40 * np.sin(2 * np.pi * np.arange(52) / 52))
    idx = dengue.week_index("2015w01", "2018w52")  # 2015-2018 all have 52 MMWR weeks
    cases = pd.DataFrame({1: np.tile(cycle, 4)}, index=idx)
    fc = dengue.backtest(cases, "seasonal_naive", test_start="2018w01", test_end="2018w52")
    assert dengue.score(fc)["mae"].iloc[0] == pytest.approx(0.0, abs=1e-9)


def test_median_ar_recovers_an_exact_autoregression():
    y = np.zeros(300)
    y[:2] = [50, 60]
    for t in range(2, 300):
        y[t] = 20 + 0.6 * y[t - 1] + 0.2 * y[t - 2] + 10 * np.sin(t / 3)
    cases = _frame(np.round(y))  # counts are whole numbers: rounding adds at most ±0.5 of noise
    fc = dengue.backtest(
        cases, "median_ar", test_start=cases.index[-20], test_end=cases.index[-1], lookback=3
    )
    persistence = dengue.backtest(cases, "persistence", test_start=cases.index[-20], test_end=cases.index[-1])
    assert dengue.score(fc)["mae"].iloc[0] < 0.2 * dengue.score(persistence)["mae"].iloc[0]


def test_nb_glm_recovers_the_rain_effect_and_dispersion_of_synthetic_cases():
    truth = {"ar": 0.0, "noise_sd": 0.05, "rain_effect": 0.5, "rain_lag_weeks": 3, "dispersion": 0.01}
    cases = S.synthetic_cases(400, 2, seed=1, **truth)
    cov = S.synthetic_covariates(400, 2, seed=1)
    panel = M.Panel(cases, dengue.align_covariates(cov, cases), horizon=1, lookback=5)
    model = M.NegBinGLM().fit(panel, cases.index[-1] - pd.Timedelta(weeks=1))
    # rain 3 weeks before the target = 2 weeks before the origin; coefficients per standard deviation of rain
    coef = model.coefficients_
    assert coef.loc["rain_lag2"].to_numpy() == pytest.approx([0.5, 0.5], abs=0.08)
    others = coef.loc[["rain_lag0", "rain_lag1", "rain_lag3", "rain_lag4"]].abs().to_numpy()
    assert others.max() < 0.1
    assert 0.0 < np.mean(list(model.alpha_.values())) < 0.03


@pytest.mark.parametrize("name", dengue.available_models(images=False))
def test_no_model_looks_past_the_forecast_origin(name):
    cases = S.synthetic_cases(150, 2, seed=3)
    cov = S.synthetic_covariates(150, 2, seed=3)
    start, end = cases.index[-10], cases.index[-1]
    params = {"epochs": 3} if name == "lstm" else None
    base = dengue.backtest(cases, name, covariates=cov, test_start=start, test_end=end, model_params=params)
    changed = cases.copy()
    cut = cases.index[-5]
    changed.loc[cut:] *= 3
    cov2 = cov.copy()
    cov2.loc[cut:] += 10
    alt = dengue.backtest(changed, name, covariates=cov2, test_start=start, test_end=end, model_params=params)
    before = base["week"] <= cut  # forecasts made from origins before the change
    np.testing.assert_allclose(base.loc[before, "forecast"], alt.loc[before, "forecast"], rtol=1e-6)


def test_denguenet_has_the_published_branch_shapes():
    ds = S.synthetic_dengue_dataset(n_weeks=60, locations=1, size_px=16, n_tiles=2)
    import terralab.dengue.features as F

    feats = F.image_features(ds["images"], n_tiles=2, vit_model="vit_micro", image_size=32)
    model = M.DengueNet(epochs=1)
    cases = ds["cases"]
    dengue.backtest(cases, model, images=feats, test_start=cases.index[-4], test_end=cases.index[-1])
    net = model.nets_[1]
    branch_sizes = [[layer.hidden_size for layer in br.layers] for br in net.branches]
    assert branch_sizes == [[60, 30, 5], [60, 30, 5]]
    assert (
        net.dense[0].in_features == 10 and net.dense[0].out_features == 30 and net.dense[2].out_features == 1
    )


@pytest.fixture(scope="module")
def synthetic_images():
    """Cases driven by rain 2 weeks earlier; cubes whose greenness shows that rain, and cubes that show
    noise."""
    import terralab.dengue.features as F

    ds = S.synthetic_dengue_dataset(
        n_weeks=150,
        locations=1,
        size_px=24,
        n_tiles=3,
        seed=2,
        ar=0.0,
        noise_sd=0.05,
        rain_effect=1.0,
        season_amplitude=0.5,
        rain_lag_weeks=2,
    )
    cases = ds["cases"]
    train_end = cases.index[-17]
    informative = F.image_features(
        ds["images"], train_end=train_end, n_tiles=3, vit_model="vit_micro", image_size=64
    )
    noise = S.synthetic_s2_cubes(cases.index, [1], size_px=24, n_tiles=3, seed=9)
    uninformative = F.image_features(
        noise, train_end=train_end, n_tiles=3, vit_model="vit_micro", image_size=64
    )
    return cases, informative, uninformative


@pytest.mark.slow
def test_denguenet_learns_from_images_that_carry_the_driver(synthetic_images):
    cases, informative, uninformative = synthetic_images
    start, end = cases.index[-16], cases.index[-1]
    kw = {"test_start": start, "test_end": end, "model_params": {"epochs": 80}}
    good = dengue.score(dengue.backtest(cases, "denguenet", images=informative, **kw))["mae"].iloc[0]
    blind = dengue.score(dengue.backtest(cases, "denguenet", images=uninformative, **kw))["mae"].iloc[0]
    train_mean = (
        (cases.loc[start:end] - cases.loc[: start - pd.Timedelta(weeks=1)].mean()).abs().mean().iloc[0]
    )
    assert good < 0.8 * train_mean
    assert good < 0.8 * blind


def test_denguenet_refuses_to_run_without_images():
    cases = S.synthetic_cases(80, 1)
    with pytest.raises(InvalidInputError, match="images"):
        dengue.backtest(cases, "denguenet", test_start=cases.index[-4], test_end=cases.index[-1])


def test_unknown_model_and_bad_parameters_are_refused():
    cases = S.synthetic_cases(80, 1)
    with pytest.raises(InvalidInputError, match="available"):
        dengue.backtest(cases, "prophet", test_start=cases.index[-4], test_end=cases.index[-1])
    with pytest.raises(InvalidInputError):
        dengue.backtest(
            cases,
            "moving_mean",
            test_start=cases.index[-4],
            test_end=cases.index[-1],
            model_params={"window": 3},
        )


def test_gbm_learns_the_change_so_it_can_forecast_counts_above_any_it_was_trained_on():
    # steady 1.5 % weekly growth: every test week is larger than any training week; trees on the level itself
    # could not go past the largest training target
    cases = _frame(np.round(20 * 1.015 ** np.arange(330)))
    fc = dengue.backtest(cases, "gbm", test_start=cases.index[-10], test_end=cases.index[-1])
    train_max = cases.loc[: cases.index[-11], 1].max()
    assert (fc["forecast"] > train_max).all()
    assert (
        dengue.score(fc)["mae"].iloc[0]
        < dengue.score(
            dengue.backtest(cases, "persistence", test_start=cases.index[-10], test_end=cases.index[-1])
        )["mae"].iloc[0]
    )


def test_gbm_is_deterministic():
    cases = S.synthetic_cases(260, 3, seed=2)
    kw = {"test_start": cases.index[-12], "test_end": cases.index[-1], "quantiles": dengue.QUANTILES}
    a, b = dengue.backtest(cases, "gbm", **kw), dengue.backtest(cases, "gbm", **kw)
    pd.testing.assert_frame_equal(a, b)


def test_pooled_calibrates_one_series_on_several_held_out_years_with_binned_errors():
    """With nothing to pool, one held-out year of one series (52 errors) cannot set a 98 % interval, and a
    spread regression of ~25 coefficients on it fits the errors: up to 4 held-out years and plain binned
    errors instead."""
    one = S.synthetic_cases(400, 1, seed=3)
    many = S.synthetic_cases(400, 30, seed=3)
    end = one.index[-1]
    single = M.Pooled().fit(M.Panel(one, horizon=2, lookback=5), end)
    assert single.calibration_folds_ == 4 and single.spread_ == "binned"
    assert sum(len(e) for e in single.bin_errors_) == 4 * 52
    pooled = M.Pooled().fit(M.Panel(many, horizon=2, lookback=5), end)
    assert pooled.calibration_folds_ == 1 and pooled.spread_ == "regression"  # 30 x 52 errors are enough
    first_release = M.Pooled(max_folds=1, spread="regression").fit(M.Panel(one, horizon=2, lookback=5), end)
    assert first_release.calibration_folds_ == 1 and first_release.spread_ == "regression"


def test_lstm_fits_one_network_for_every_horizon():
    cases = S.synthetic_cases(200, 2, seed=4)
    model = M.LSTMForecaster(epochs=2)
    panel = M.Panel(cases, horizon=1, lookback=5)
    fitted = model.fit_horizons(panel, cases.index[-5], (1, 2, 3, 4))
    assert all(m is model for m in fitted.values()) and model.horizons_ == (1, 2, 3, 4)
    origins = cases.index[-20:-4]
    outs = [fitted[h].forecast(M.Panel(cases, horizon=h, lookback=5), origins) for h in (1, 2, 3, 4)]
    assert not np.allclose(outs[0].to_numpy(), outs[3].to_numpy())  # one head per horizon
    with pytest.raises(InvalidInputError, match="fitted for horizons"):
        model.forecast(M.Panel(cases, horizon=6, lookback=5), origins)


def test_lstm_training_budget_in_steps_is_the_same_for_one_series_and_many():
    calls = {}

    def spy(net, X, y, levels, *, epochs, **kw):
        calls[len(X)] = epochs

    import unittest.mock

    from terralab.dengue import lstm

    with unittest.mock.patch.object(lstm, "train_quantiles", spy):
        for n_loc in (1, 20):
            cases = S.synthetic_cases(200, n_loc, seed=4)
            M.LSTMForecaster(steps=300, batch_size=64).fit(
                M.Panel(cases, horizon=1, lookback=5), cases.index[-2]
            )
    (n1, e1), (n20, e20) = sorted(calls.items())
    assert e1 * np.ceil(n1 / 64) >= 300 > (e1 - 1) * np.ceil(n1 / 64)
    assert e20 * np.ceil(n20 / 64) >= 300 > (e20 - 1) * np.ceil(n20 / 64)
    assert e1 > 10 * e20


def test_pooled_covariate_features_are_the_means_of_weeks_t_minus_3_to_t_and_t_minus_11_to_t_minus_4():
    cases = S.synthetic_cases(200, 2, seed=5)
    cov = dengue.align_covariates(S.synthetic_covariates(200, 2, seed=5), cases)
    panel = M.Panel(cases, cov, horizon=1, lookback=5)
    train_end = cases.index[-20]
    model = M.Pooled(covariates=True)
    model._prepare(panel, train_end)
    mean, std = M.covariate_stats(panel, train_end)
    var = cov.columns.get_level_values(0)[0]
    loc = panel.locations[1]
    z = (cov[(var, loc)] - mean[(var, loc)]) / std[(var, loc)]
    recent = z.rolling(4).mean().to_numpy()
    earlier = z.shift(4).rolling(8).mean().to_numpy()
    np.testing.assert_allclose(model._cov[:, 1, 0], recent, equal_nan=True)
    np.testing.assert_allclose(model._cov[:, 1, 1], earlier, equal_nan=True)
    # and the model with covariates fits and forecasts without look-ahead (guarded for every model above)
    fc = dengue.backtest(
        cases, M.Pooled(covariates=True), covariates=cov, test_start=cases.index[-8], test_end=cases.index[-1]
    )
    assert np.isfinite(fc["forecast"]).all()


def test_an_option_the_pooled_models_do_not_have_is_refused_with_their_options():
    with pytest.raises(
        InvalidInputError, match="model 'gbm' has no option 'interactions'.*calibration_weeks"
    ):
        M.GradientBoosting(interactions=False)
    with pytest.raises(InvalidInputError, match="model 'pooled' has no option 'folds'"):
        M.make_model("pooled", folds=2)
    assert M.Pooled(max_folds=1, ridge=0.1).params["max_folds"] == 1


def test_denguenet_and_image_features_in_threads_equal_one_location_after_another():
    import terralab.dengue.features as F

    ds = S.synthetic_dengue_dataset(n_weeks=60, locations=3, size_px=16, n_tiles=2, seed=4)
    cases = ds["cases"]
    feats = {
        n: F.image_features(ds["images"], n_tiles=2, vit_model="vit_micro", image_size=32, n_jobs=n)
        for n in (1, 2)
    }
    assert feats[1].identical(feats[2])
    kw = {"images": feats[1], "test_start": cases.index[-6], "test_end": cases.index[-1]}
    one, two = M.DengueNet(epochs=15, n_jobs=1), M.DengueNet(epochs=15, n_jobs=2)
    by_one, by_two = dengue.backtest(cases, one, **kw), dengue.backtest(cases, two, **kw)
    assert by_one.equals(by_two)
    assert one.val_history_ == two.val_history_ and len(one.val_history_) == 3
    for loc in one.nets_:
        for a, b in zip(one.nets_[loc].parameters(), two.nets_[loc].parameters(), strict=True):
            assert a.detach().equal(b.detach())
