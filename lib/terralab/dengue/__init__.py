"""Dengue forecasting: epi-weeks, case data, Sentinel-2 weekly imagery, DengueNet and honest baselines.

Typical use::

    from terralab import dengue
    cases = dengue.load_cases("colombia_denguenet")                 # five DengueNet cities, offline
    fc = dengue.backtest(cases, model="persistence", test_start="2018w37", test_end="2018w52")
    dengue.score(fc)                                                 # mae, rmse, smape per location

    # probabilistic, over rolling origins: 23 quantiles, WIS and coverage, paired test against a baseline
    models = ["persistence", "nb_glm", "pooled", "ensemble"]
    rolling = dengue.rolling_backtest(cases, models, "2016w01", "2019w52")
    dengue.score(rolling, by=["horizon"], baseline="persistence")     # wis, rel_wis, coverage_50/90, mae, …
    dengue.paired_test(rolling, "ensemble", "persistence")           # Diebold–Mariano and block-bootstrap p

Heavy dependencies (torch, timm, ee, pystac-client, odc-stac) are imported inside the functions that need
them.

Examples
--------
>>> from terralab import dengue
>>> cases = dengue.load_cases()  # the five DengueNet cities (embedded: offline)
>>> fc = dengue.backtest(cases, model="moving_mean")  # 2018w37–w52, one week ahead
>>> round(float(dengue.score(fc)["mae"].mean()), 2)  # the four-week mean baseline
8.43
"""

from .backtest import (
    available_models,
    backtest,
    backtest_many,
    dengai_holdout,
    dengai_score_table,
    score,
    score_table,
    select_model,
)
from .cases import (
    DENGUENET_MUNICIPALITIES,
    align_covariates,
    available_sources,
    has_covariates,
    list_locations,
    load_cases,
    load_covariates,
    population,
    top_locations,
    validate_cases,
)
from .probabilistic import QUANTILES, check_quantiles, coverage_curve, paired_test, pit_values, wis
from .rolling import CHOSEN_ENSEMBLES, ensemble, rolling_backtest
from .weeks import parse_week, same_week_last_year, week_end, week_index, week_label

#: DengueNet's published average MAE over its five cities (Kuo et al. 2024), on real Sentinel-2 images.
DENGUENET_PUBLISHED_MAE = 43.92

__all__ = [
    "CHOSEN_ENSEMBLES",
    "DENGUENET_MUNICIPALITIES",
    "DENGUENET_PUBLISHED_MAE",
    "QUANTILES",
    "align_covariates",
    "available_models",
    "available_sources",
    "backtest",
    "backtest_many",
    "check_quantiles",
    "coverage_curve",
    "dengai_holdout",
    "dengai_score_table",
    "ensemble",
    "has_covariates",
    "list_locations",
    "load_cases",
    "load_covariates",
    "paired_test",
    "parse_week",
    "pit_values",
    "population",
    "rolling_backtest",
    "same_week_last_year",
    "score",
    "score_table",
    "select_model",
    "top_locations",
    "validate_cases",
    "week_end",
    "week_index",
    "week_label",
    "wis",
]
