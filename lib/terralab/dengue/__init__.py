"""Dengue forecasting: epi-weeks, case data, Sentinel-2 weekly imagery, DengueNet and honest baselines.

Typical use::

    from terralab import dengue
    cases = dengue.load_cases("colombia_denguenet")                 # five DengueNet cities, offline
    fc = dengue.backtest(cases, model="persistence", test_start="2018w37", test_end="2018w52")
    dengue.score(fc)                                                 # mae, rmse, smape per location

Heavy dependencies (torch, timm, ee, pystac-client, odc-stac) are imported inside the functions that need them.
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
    validate_cases,
)
from .weeks import parse_week, same_week_last_year, week_end, week_index, week_label

#: DengueNet's published average MAE over its five cities (Kuo et al. 2024), for comparison tables.
DENGUENET_PUBLISHED_MAE = 43.92

__all__ = [
    "DENGUENET_MUNICIPALITIES",
    "DENGUENET_PUBLISHED_MAE",
    "align_covariates",
    "available_models",
    "available_sources",
    "backtest",
    "backtest_many",
    "dengai_holdout",
    "dengai_score_table",
    "has_covariates",
    "list_locations",
    "load_cases",
    "load_covariates",
    "parse_week",
    "population",
    "same_week_last_year",
    "score",
    "score_table",
    "select_model",
    "validate_cases",
    "week_end",
    "week_index",
    "week_label",
]
