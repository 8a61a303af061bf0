"""One-to-one matching within a tolerance (terralab.matching): optimal and nearest-first pairs, bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from terralab.errors import InvalidInputError
from terralab.matching import match_one_to_one


def _pairs(frame: pd.DataFrame) -> list[tuple[int, int]]:
    return [tuple(p) for p in frame[["row", "column"]].to_numpy().tolist()]


def _brute_force(cost: np.ndarray, tolerance: float) -> tuple[int, float]:
    """(most pairs, least total cost among them) over every one-to-one assignment of a small matrix."""
    n, m = cost.shape
    best = (0, 0.0)
    for k in range(1, min(n, m) + 1):
        for rows in itertools.combinations(range(n), k):
            for cols in itertools.permutations(range(m), k):
                c = cost[list(rows), list(cols)]
                if np.all(np.isfinite(c) & (c <= tolerance)):
                    total = float(c.sum())
                    if k > best[0] or (k == best[0] and total < best[1]):
                        best = (k, total)
    return best


def test_hungarian_gives_the_most_pairs_where_nearest_first_gives_fewer():
    # 1.0 is nearest to 0.55, but taking that pair leaves 0.0 and 1.5 without a partner
    cost = np.abs(np.subtract.outer([0.0, 1.0], [0.55, 1.5]))
    assert _pairs(match_one_to_one(cost, tolerance=0.6)) == [(0, 0), (1, 1)]
    assert _pairs(match_one_to_one(cost, tolerance=0.6, method="greedy")) == [(1, 0)]


@pytest.mark.parametrize("seed", range(20))
def test_hungarian_matches_brute_force_on_small_random_problems(seed):
    rng = np.random.default_rng(seed)
    n, m = rng.integers(1, 5, 2)
    cost = rng.uniform(0, 1, (n, m))
    cost[rng.uniform(size=(n, m)) < 0.3] = np.inf
    got = match_one_to_one(cost, tolerance=0.7)
    k, total = _brute_force(cost, 0.7)
    assert len(got) == k
    assert got["cost"].sum() == pytest.approx(total, abs=1e-12)
    assert got["row"].is_unique and got["column"].is_unique


def test_tolerance_is_inclusive_and_nan_or_inf_forbid_a_pair():
    cost = np.array([[0.5, np.nan], [np.inf, 0.2]])
    assert _pairs(match_one_to_one(cost, tolerance=0.5)) == [(0, 0), (1, 1)]
    assert _pairs(match_one_to_one(cost, tolerance=0.49)) == [(1, 1)]
    assert _pairs(match_one_to_one(cost)) == [(0, 0), (1, 1)]


def test_greedy_takes_pairs_in_order_of_cost_ties_in_given_order():
    cost = np.array([[0.1, 0.1], [0.1, 0.3]])
    assert _pairs(match_one_to_one(cost, method="greedy")) == [(0, 0), (1, 1)]


def test_candidate_table_keeps_its_columns_and_labels_and_equals_the_dense_answer():
    rng = np.random.default_rng(3)
    a, b = np.sort(rng.uniform(0, 100, 200)), np.sort(rng.uniform(0, 100, 180))
    dense = np.abs(np.subtract.outer(a, b))
    rows, cols = np.nonzero(dense <= 0.4)
    table = pd.DataFrame(
        {"row": rows, "column": cols, "cost": dense[rows, cols], "dt": b[cols] - a[rows]},
        index=pd.RangeIndex(1000, 1000 + len(rows)),
    )
    sparse = match_one_to_one(table)
    assert _pairs(sparse) == _pairs(match_one_to_one(dense, tolerance=0.4))
    assert np.array_equal(sparse["dt"], table.loc[sparse.index, "dt"])
    assert sparse.index.min() >= 1000


def test_empty_problems_give_an_empty_table():
    for cost in (np.zeros((0, 3)), np.zeros((2, 0)), np.full((2, 2), np.inf)):
        got = match_one_to_one(cost)
        assert len(got) == 0 and list(got.columns) == ["row", "column", "cost"]


def test_bad_input_is_a_typed_error_that_says_what_is_wrong():
    with pytest.raises(InvalidInputError, match="method must be one of"):
        match_one_to_one(np.zeros((2, 2)), method="nearest")
    with pytest.raises(InvalidInputError, match="tolerance must be a non-negative number"):
        match_one_to_one(np.zeros((2, 2)), tolerance=-1.0)
    with pytest.raises(InvalidInputError, match="tolerance must be a non-negative number"):
        match_one_to_one(np.zeros((2, 2)), tolerance=float("nan"))
    with pytest.raises(InvalidInputError, match="must be 2-D"):
        match_one_to_one(np.zeros(3))
    with pytest.raises(InvalidInputError, match="it lacks \\['cost'\\]"):
        match_one_to_one(pd.DataFrame({"row": [0], "column": [0]}))
    with pytest.raises(InvalidInputError, match="must hold integer positions"):
        match_one_to_one(pd.DataFrame({"row": [0.5], "column": [0], "cost": [1.0]}))
