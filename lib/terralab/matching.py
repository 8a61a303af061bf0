"""One-to-one matching of two sets (detections to truth, picks to picks, events to events) within a tolerance.

Every workflow that scores against a reference pairs items one to one: a detection may match one true vehicle,
a pick one analyst pick, an event one event of the other catalog. :func:`match_one_to_one` does that once for
all of them, on a cost per candidate pair; the workflow decides what the cost is and which pairs may match
(its tolerances, in its units), this module only chooses the pairs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .errors import InvalidInputError

__all__ = ["MATCH_METHODS", "match_one_to_one"]

#: ``"hungarian"``: most pairs, then least total cost (optimal; Hungarian assignment per connected group of
#: candidate pairs). ``"greedy"``: candidate pairs in order of increasing cost (ties in the order given), each
#: item used at most once -- nearest first, as pick matchers traditionally do.
MATCH_METHODS = ("hungarian", "greedy")

#: Cost given to forbidden pairs inside a group solved by the Hungarian assignment (raised when the allowed
#: costs could add up to it, so that more pairs always beat a lower cost).
_FORBIDDEN = 1e6


def match_one_to_one(cost: Any, tolerance: float = np.inf, *, method: str = "hungarian") -> pd.DataFrame:
    """Pair rows with columns one to one, only pairs whose cost is within ``tolerance``.

    Parameters
    ----------
    cost : array-like (n_rows, n_columns) or pandas.DataFrame of candidate pairs
        A dense cost matrix (NaN or inf: the pair may not match), or a long table with integer ``row`` and
        ``column`` (positions) and a ``cost`` column, one row per pair that may match (for large sparse
        problems, e.g. two catalogs of thousands of events); other columns of the table are kept.
    tolerance : float
        Largest cost of a pair that may match (inclusive); in the cost's units. Default: any finite cost.
    method : {"hungarian", "greedy"}
        ``"hungarian"`` (default) gives the most pairs and, among those, the least total cost; ``"greedy"``
        takes pairs in order of increasing cost (see :data:`MATCH_METHODS`).

    Returns
    -------
    pandas.DataFrame
        One row per matched pair, sorted by ``row`` then ``column``: ``row``, ``column``, ``cost`` (and, for a
        table of candidates, its other columns; the index holds the candidates' labels).

    Example
    -------
    >>> pairs = match_one_to_one(np.abs(np.subtract.outer([0.0, 1.0, 5.0], [0.9, 0.1])), tolerance=0.5)
    >>> pairs[["row", "column"]].to_numpy().tolist()
    [[0, 1], [1, 0]]
    """
    if method not in MATCH_METHODS:
        raise InvalidInputError(f"method must be one of {MATCH_METHODS}, got {method!r}")
    if not tolerance >= 0:
        raise InvalidInputError(f"tolerance must be a non-negative number, got {tolerance!r}")
    candidates = _candidates(cost)
    c = candidates["cost"].to_numpy(dtype=float)
    candidates = candidates[np.isfinite(c) & (c <= tolerance)]
    if method == "greedy":
        chosen = _greedy(candidates)
    else:
        chosen = _hungarian(candidates)
    return candidates.iloc[chosen].sort_values(["row", "column"], kind="stable")


def _candidates(cost: Any) -> pd.DataFrame:
    """The candidate table of a dense matrix (row-major order) or a checked copy of a given table."""
    if isinstance(cost, pd.DataFrame):
        missing = [c for c in ("row", "column", "cost") if c not in cost.columns]
        if missing:
            raise InvalidInputError(
                f"a table of candidate pairs needs columns row, column and cost; it lacks {missing}"
            )
        for col in ("row", "column"):
            if not pd.api.types.is_integer_dtype(cost[col]):
                raise InvalidInputError(
                    f"candidate {col!r} must hold integer positions, got {cost[col].dtype}"
                )
        return cost
    mat = np.asarray(cost, dtype=float)
    if mat.ndim != 2:
        raise InvalidInputError(f"the cost matrix must be 2-D (rows, columns), got shape {mat.shape}")
    rows, cols = np.nonzero(~np.isnan(mat))
    return pd.DataFrame({"row": rows, "column": cols, "cost": mat[rows, cols]})


def _greedy(candidates: pd.DataFrame) -> np.ndarray:
    """Positions of the pairs taken in order of increasing cost, each row and column at most once."""
    order = np.argsort(candidates["cost"].to_numpy(dtype=float), kind="stable")
    rows, cols = candidates["row"].to_numpy(), candidates["column"].to_numpy()
    used_r, used_c, chosen = set(), set(), []
    for e in order:
        if rows[e] in used_r or cols[e] in used_c:
            continue
        used_r.add(rows[e])
        used_c.add(cols[e])
        chosen.append(e)
    return np.array(chosen, dtype=int)


def _hungarian(candidates: pd.DataFrame) -> np.ndarray:
    """Positions of the most pairs of least total cost; one assignment per connected group of candidates."""
    from scipy.optimize import linear_sum_assignment
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if len(candidates) == 0:
        return np.zeros(0, dtype=int)
    rows, cols = candidates["row"].to_numpy(), candidates["column"].to_numpy()
    cost = candidates["cost"].to_numpy(dtype=float)
    ur, ri_all = np.unique(rows, return_inverse=True)
    uc, ci_all = np.unique(cols, return_inverse=True)
    nr = ur.size
    graph = coo_matrix((np.ones(len(rows)), (ri_all, nr + ci_all)), shape=(nr + uc.size, nr + uc.size))
    _, labels = connected_components(graph, directed=False)
    comp = labels[ri_all]
    chosen = []
    for c in np.unique(comp):
        sel = np.flatnonzero(comp == c)
        ra, ca = np.unique(rows[sel]), np.unique(cols[sel])
        big = max(_FORBIDDEN, 1.0 + 2.0 * float(np.abs(cost[sel]).sum()))
        mat = np.full((ra.size, ca.size), big)
        ri, ci = np.searchsorted(ra, rows[sel]), np.searchsorted(ca, cols[sel])
        mat[ri, ci] = cost[sel]
        where = np.full((ra.size, ca.size), -1)
        where[ri, ci] = sel
        for r, k in zip(*linear_sum_assignment(mat)):
            if where[r, k] >= 0:
                chosen.append(where[r, k])
    return np.array(chosen, dtype=int)
