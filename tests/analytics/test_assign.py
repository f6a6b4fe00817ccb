"""The gated assignment: the numpy solver against brute force and scipy, and the gating rule."""

import itertools

import numpy as np
import pytest

from edgekit.analytics.assign import linear_assignment, lsa_numpy


def brute_force(cost):
    """The minimum-cost full assignment by trying every one (small matrices)."""
    nr, nc = cost.shape
    best, best_pairs = None, None
    if nr <= nc:
        for cols in itertools.permutations(range(nc), nr):
            total = sum(cost[r, c] for r, c in enumerate(cols))
            if best is None or total < best:
                best, best_pairs = total, list(enumerate(cols))
    else:
        for rows in itertools.permutations(range(nr), nc):
            total = sum(cost[r, c] for c, r in enumerate(rows))
            if best is None or total < best:
                best, best_pairs = total, sorted((r, c) for c, r in enumerate(rows))
    return best, best_pairs


def gated_brute_force(cost, thresh):
    """The matching with the largest total gain thresh - cost over pairs with cost <= thresh."""
    nr, nc = cost.shape
    allowed = [(r, c) for r in range(nr) for c in range(nc) if cost[r, c] <= thresh]
    best, best_pairs = 0.0, []
    for k in range(1, min(nr, nc) + 1):
        for combo in itertools.combinations(allowed, k):
            if len(set(r for r, _ in combo)) < k or len(set(c for _, c in combo)) < k:
                continue
            gain = sum(thresh - cost[r, c] for r, c in combo)
            if gain > best + 1e-12:
                best, best_pairs = gain, sorted(combo)
    return best_pairs


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (4, 6), (6, 4), (5, 5), (2, 7), (7, 2)])
def test_numpy_solver_finds_the_optimum(shape):
    rng = np.random.RandomState(sum(shape))
    for _ in range(5):
        cost = rng.rand(*shape)
        rows, cols = lsa_numpy(cost)
        best, pairs = brute_force(cost)
        assert sorted(zip(rows.tolist(), cols.tolist())) == pairs
        assert cost[rows, cols].sum() == pytest.approx(best)
        assert list(rows) == sorted(rows)


def test_numpy_solver_agrees_with_scipy_on_random_matrices():
    scipy_opt = pytest.importorskip("scipy.optimize")
    rng = np.random.RandomState(0)
    for trial in range(60):
        shape = (rng.randint(1, 30), rng.randint(1, 30))
        cost = rng.rand(*shape) * rng.choice([1.0, 100.0])
        if trial % 3 == 0:
            cost = np.round(cost * 4) / 4           # ties: the optimum's value must still agree
        r1, c1 = lsa_numpy(cost)
        r2, c2 = scipy_opt.linear_sum_assignment(cost)
        assert cost[r1, c1].sum() == pytest.approx(cost[r2, c2].sum())
        if trial % 3:
            assert r1.tolist() == r2.tolist() and c1.tolist() == c2.tolist()


@pytest.mark.parametrize("seed", range(8))
def test_gated_assignment_is_the_best_gated_matching(seed):
    rng = np.random.RandomState(seed)
    cost = rng.rand(rng.randint(1, 6), rng.randint(1, 6))
    thresh = 0.6
    m, un_r, un_c = linear_assignment(cost, thresh, solver=lsa_numpy)
    assert [tuple(p) for p in m.tolist()] == gated_brute_force(cost, thresh)
    assert all(cost[r, c] <= thresh for r, c in m.tolist())
    assert sorted(un_r.tolist() + m[:, 0].tolist()) == list(range(cost.shape[0]))
    assert sorted(un_c.tolist() + m[:, 1].tolist()) == list(range(cost.shape[1]))


def test_gated_assignment_same_with_either_solver_on_tracking_like_matrices():
    scipy_opt = pytest.importorskip("scipy.optimize")
    rng = np.random.RandomState(1)
    for _ in range(40):
        n, m = rng.randint(1, 40), rng.randint(1, 40)
        cost = np.ones((n, m))
        # sparse, clustered overlaps as in a busy frame: most pairs impossible
        for _ in range(n + m):
            cost[rng.randint(n), rng.randint(m)] = rng.rand() * 0.9
        a = linear_assignment(cost, 0.8, solver=lsa_numpy)
        b = linear_assignment(cost, 0.8, solver=scipy_opt.linear_sum_assignment)
        for x, y in zip(a, b):
            assert x.tolist() == y.tolist()


def test_nothing_below_the_threshold_matches_nothing():
    m, un_r, un_c = linear_assignment(np.full((3, 2), 0.9), 0.8)
    assert m.shape == (0, 2) and un_r.tolist() == [0, 1, 2] and un_c.tolist() == [0, 1]
    m, un_r, un_c = linear_assignment(np.zeros((0, 4)), 0.8)
    assert m.shape == (0, 2) and un_c.tolist() == [0, 1, 2, 3]


def test_gating_prefers_two_good_pairs_over_one_best():
    # row 0 could take col 0 (0.1), but then row 1 has nothing: taking (0,1) and (1,0) gains more
    cost = np.array([[0.1, 0.2], [0.15, 0.95]])
    m, _, _ = linear_assignment(cost, 0.8)
    assert m.tolist() == [[0, 1], [1, 0]]
