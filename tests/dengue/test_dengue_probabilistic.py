"""Quantile forecasts and their scores: WIS by hand, coverage, PIT, the paired test, quantiles of every
model."""

import numpy as np
import pandas as pd
import pytest

from terralab import dengue
from terralab.dengue import models as M
from terralab.dengue import probabilistic as P
from terralab.dengue import synthetic as S
from terralab.errors import InvalidInputError


def test_quantiles_are_the_hubs_23_levels_with_their_column_names():
    assert len(dengue.QUANTILES) == 23
    assert dengue.QUANTILES[:4] == (0.01, 0.025, 0.05, 0.1) and dengue.QUANTILES[-4:] == (
        0.9,
        0.95,
        0.975,
        0.99,
    )
    assert 0.5 in dengue.QUANTILES
    assert np.allclose(np.array(dengue.QUANTILES) + np.array(dengue.QUANTILES[::-1]), 1.0)
    names = [P.quantile_column(q) for q in dengue.QUANTILES]
    assert names[:3] == ["q0.01", "q0.025", "q0.05"] and names[11] == "q0.5" and names[-1] == "q0.99"


def test_wis_matches_the_interval_formula_computed_by_hand():
    # median 8, 50 % interval [6, 12], 90 % interval [2, 20]; K = 2 intervals
    levels = [0.05, 0.25, 0.5, 0.75, 0.95]
    q = np.array([[2.0, 6.0, 8.0, 12.0, 20.0]] * 2)
    y = np.array([10.0, 25.0])
    # y = 10 inside both: (0.5*2 + 0.05*18 + 0.25*6) / 2.5 = 3.4 / 2.5
    # y = 25 above both: (0.5*17 + 0.05*(18 + 20*5) + 0.25*(6 + 4*13)) / 2.5 = (8.5 + 5.9 + 14.5) / 2.5
    assert P.wis(y, q, levels) == pytest.approx([1.36, 11.56])


def test_wis_of_the_23_levels_equals_bracher_et_als_interval_sum():
    rng = np.random.default_rng(0)
    levels = np.array(dengue.QUANTILES)
    q = np.sort(rng.gamma(2.0, 10.0, size=(200, 23)), axis=1)
    y = rng.poisson(20, size=200).astype(float)
    alphas = 2 * levels[:11]  # 0.02, 0.05, 0.1, 0.2, ..., 0.9
    total = 0.5 * np.abs(y - q[:, 11])
    for k, a in enumerate(alphas):
        lo, hi = q[:, k], q[:, 22 - k]
        interval = (hi - lo) + 2 / a * (lo - y) * (y < lo) + 2 / a * (y - hi) * (y > hi)
        total += a / 2 * interval
    assert P.wis(y, q, levels) == pytest.approx(total / 11.5, rel=1e-12)


def test_wis_agrees_with_the_scoringrules_library():
    """Our WIS against scoringrules' interval and quantile scores (an independent implementation).

    scoringrules 0.10's own ``weighted_interval_score`` on its numpy backend adds w_median * median where
    Bracher et al. have w_median * |y - median| (its numba kernel has the absolute error), so the WIS is
    assembled here from its ``interval_score`` (Winkler score) and checked a second way through its
    ``quantile_score`` (pinball loss).
    """
    import scoringrules as sr  # a test dependency (scoringrules >= 0.10)

    rng = np.random.default_rng(4)
    levels = np.array(dengue.QUANTILES)
    q = np.sort(rng.gamma(2.0, 15.0, size=(300, 23)), axis=1)
    y = rng.negative_binomial(3, 0.1, size=300).astype(float)
    alphas = 2 * levels[:11]
    intervals = np.asarray(sr.interval_score(y, q[:, :11], q[:, 22:11:-1], alphas, backend="numpy"))
    total = 0.5 * np.abs(y - q[:, 11]) + (alphas / 2 * intervals).sum(axis=1)
    assert P.wis(y, q, levels) == pytest.approx(total / 11.5, rel=1e-12)
    pinball = np.stack(
        [np.asarray(sr.quantile_score(y, q[:, j], levels[j], backend="numpy")) for j in range(23)], 1
    )
    assert P.wis(y, q, levels) == pytest.approx(pinball.sum(axis=1) / 11.5, rel=1e-12)


def test_wis_of_a_point_forecast_is_its_absolute_error():
    # all 23 quantiles at m: the pinball weights of the symmetric levels sum to K + 0.5, so WIS = |y - m|
    q = np.full((2, 23), 7.0)
    assert P.wis(np.array([10.0, 4.0]), q, dengue.QUANTILES) == pytest.approx([3.0, 3.0])


def test_interval_coverage_counts_the_ends_as_inside():
    levels = [0.05, 0.25, 0.5, 0.75, 0.95]
    q = np.array([[2.0, 6.0, 8.0, 12.0, 20.0]] * 4)
    y = np.array([2.0, 13.0, 20.0, 21.0])
    assert P.interval_coverage(y, q, levels, 0.9).tolist() == [1, 1, 1, 0]
    assert P.interval_coverage(y, q, levels, 0.5).tolist() == [0, 0, 0, 0]


@pytest.mark.parametrize("bad", [[0.0, 0.5], [0.5, 1.0], [0.6, 0.4], [0.1, 0.1, 0.5], [], ["a"], [1.5]])
def test_quantile_levels_outside_0_1_or_unsorted_are_refused(bad):
    with pytest.raises(InvalidInputError):
        dengue.check_quantiles(bad)


def test_pit_of_exact_quantiles_is_uniform():
    rng = np.random.default_rng(1)
    from scipy import stats

    levels = np.array(dengue.QUANTILES)
    mu = rng.uniform(50, 500, size=4000)
    y = rng.normal(mu, 0.2 * mu)
    q = stats.norm.ppf(levels[None, :], mu[:, None], 0.2 * mu[:, None])
    frame = pd.DataFrame(q, columns=[P.quantile_column(t) for t in levels]).assign(observed=y)
    hist = np.histogram(dengue.pit_values(frame), bins=10, range=(0, 1))[0] / len(y)
    assert np.abs(hist - 0.1).max() < 0.02


def _two_models(shift):
    """Long frame of two models on the same observations; model 'b' is off by ``shift`` cases more than
    'a'."""
    rng = np.random.default_rng(2)
    origins = pd.date_range("2016-01-02", periods=60, freq="W-SAT")
    truth = [(o, loc, float(rng.poisson(30)), rng.normal(0, 3, size=2)) for o in origins for loc in (1, 2)]
    rows = []
    for k, (m, extra) in enumerate((("a", 0.0), ("b", shift))):
        for o, loc, y, noise in truth:
            centre = y + noise[k] + extra
            rows.append(
                {
                    "model": m,
                    "location": loc,
                    "origin": o,
                    "horizon": 1,
                    "week": o,
                    "observed": y,
                    "forecast": centre,
                    **{P.quantile_column(t): centre + 5 * (t - 0.5) for t in dengue.QUANTILES},
                }
            )
    return pd.DataFrame(rows)


def test_paired_test_finds_a_real_difference_and_not_an_absent_one():
    clear = dengue.paired_test(_two_models(6.0), "a", "b")
    assert clear["ratio"] < 0.8 and clear["p_value"] < 0.01 and clear["p_bootstrap"] < 0.01
    assert clear["n_origins"] == 60 and clear["n_pairs"] == 120
    same = _two_models(0.0)
    same.loc[same["model"] == "b", [c for c in same.columns if c.startswith("q") or c == "forecast"]] = (
        same.loc[
            same["model"] == "a", [c for c in same.columns if c.startswith("q") or c == "forecast"]
        ].to_numpy()
    )
    tie = dengue.paired_test(same, "a", "b")
    assert tie["ratio"] == pytest.approx(1.0) and tie["p_value"] == pytest.approx(1.0)


def test_score_adds_wis_coverage_and_wis_relative_to_a_named_baseline():
    frame = _two_models(6.0)
    table = dengue.score(frame, by=["horizon"], baseline="b")
    assert {"wis", "coverage_50", "coverage_90", "mae", "rmse", "smape", "rel_wis", "rel_mae"} <= set(
        table.columns
    )
    assert table.loc[("b", 1), "rel_wis"] == pytest.approx(1.0)
    y, q, lv = P._arrays(frame[frame["model"] == "a"])
    assert table.loc[("a", 1), "wis"] == pytest.approx(P.wis(y, q, lv).mean())
    assert table.loc[("a", 1), "rel_wis"] == pytest.approx(
        table.loc[("a", 1), "wis"] / table.loc[("b", 1), "wis"]
    )
    per_location = dengue.score(frame)  # default: by location, model first
    assert per_location.index.names == ["model", "location"]
    with pytest.raises(InvalidInputError, match="baseline"):
        dengue.score(frame, baseline="c")


# --------------------------------------------------------------------------------------------------
# every model's quantiles
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def synthetic_panel():
    cases = S.synthetic_cases(200, 2, seed=5)
    return cases, S.synthetic_covariates(200, 2, seed=5)


@pytest.mark.parametrize("name", dengue.available_models(images=False))
def test_every_model_gives_23_monotone_non_negative_quantiles(synthetic_panel, name):
    cases, cov = synthetic_panel
    params = {"epochs": 2} if name == "lstm" else None
    fc = dengue.backtest(
        cases,
        name,
        covariates=cov,
        test_start=cases.index[-20],
        test_end=cases.index[-1],
        horizon=2,
        quantiles=dengue.QUANTILES,
        model_params=params,
    )
    cols = [P.quantile_column(q) for q in dengue.QUANTILES]
    assert list(fc.columns) == ["week", "location", "observed", "forecast"] + cols
    q = fc[cols].to_numpy()
    assert np.isfinite(q).all() and (q >= 0).all() and (np.diff(q, axis=1) >= 0).all()
    assert (q[:, -1] > q[:, 0]).mean() > 0.9  # real intervals, not a point
    assert fc.attrs["quantile_method"] and fc.attrs["point_kind"] in {"median", "mean", "point"}


def test_persistence_quantiles_are_its_past_errors_at_that_horizon():
    index = dengue.week_index("2015w01", (2017, 16))
    cases = pd.DataFrame({1: np.resize([10.0, 20.0], len(index))}, index=index)
    # one week ahead the count flips by ±10: past errors are +10 and -10, half each
    fc = dengue.backtest(
        cases, "persistence", test_start=cases.index[-6], test_end=cases.index[-1], quantiles=[0.1, 0.5, 0.9]
    )
    for _, row in fc.iterrows():
        assert row["q0.1"] == pytest.approx(max(row["forecast"] - 10, 0))
        assert row["q0.9"] == pytest.approx(row["forecast"] + 10)


def test_nb_glm_quantiles_are_those_of_its_negative_binomial():
    from scipy import stats

    cases = S.synthetic_cases(260, 1, seed=6)
    model = M.NegBinGLM()
    fc = dengue.backtest(
        cases,
        model,
        covariates=False,
        test_start=cases.index[-5],
        test_end=cases.index[-1],
        quantiles=[0.1, 0.9],
    )
    a = model.alpha_[1]
    mu = fc["forecast"].to_numpy()
    expected = stats.nbinom.ppf(0.9, 1 / a, 1 / (1 + a * mu))
    assert fc["q0.9"].to_numpy() == pytest.approx(expected)


def test_numpy_irls_gives_statsmodels_glm_estimates():
    import statsmodels.api as sm

    rng = np.random.default_rng(3)
    X = np.column_stack([np.ones(400), rng.normal(size=(400, 3))])
    y = rng.negative_binomial(5, 5 / (5 + np.exp(X @ [2.0, 0.3, -0.2, 0.1])))
    for alpha, family in ((0.0, sm.families.Poisson()), (0.2, sm.families.NegativeBinomial(alpha=0.2))):
        ours = M.log_link_irls(X, y, alpha=alpha)
        theirs = sm.GLM(y, X, family=family).fit().params
        assert ours == pytest.approx(theirs, abs=1e-6)


def test_quantile_levels_are_checked_by_backtest():
    cases = S.synthetic_cases(120, 1)
    with pytest.raises(InvalidInputError, match="between 0 and 1"):
        dengue.backtest(
            cases, "persistence", test_start=cases.index[-4], test_end=cases.index[-1], quantiles=[0.5, 1.2]
        )
