"""Gated linear assignment: which track takes which detection.

``linear_assignment(cost, thresh)`` returns the pairs ``(row, col)`` of the matching that maximises
the total gain ``thresh - cost[row, col]`` over pairs with ``cost <= thresh`` (what ByteTrack's
``lap.lapjv(..., cost_limit=thresh)`` solves): a pair is worth taking exactly when its cost is
below the threshold, and no row or column is used twice. Rows and columns left over are unmatched.

The gated graph of a tracking frame falls apart into small connected components (a detection
overlaps one or two predicted boxes), so each component is solved on its own; a 1x1 component
needs no solver. The solver is ``scipy.optimize.linear_sum_assignment`` when scipy imports
(JetPack has ``python3-scipy``), else ``lsa_numpy``: the same shortest-augmenting-path method
(Jonker-Volgenant without initialisation, as in scipy's implementation), in numpy. On a problem
with one optimum both give the same pairs; the tests compare them on random matrices.
"""

import numpy as np

try:  # pragma: no cover - depends on the machine
    from scipy.optimize import linear_sum_assignment as _scipy_lsa
except ImportError:  # pragma: no cover
    _scipy_lsa = None


def lsa_numpy(cost):
    """Minimum-cost assignment of a rectangular matrix (every row or every column assigned, whichever
    is fewer). Returns ``(rows, cols)`` sorted by row, like ``scipy.optimize.linear_sum_assignment``."""
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2:
        raise ValueError("cost must be a 2-D matrix")
    if cost.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if not np.all(np.isfinite(cost)):
        raise ValueError("cost matrix has non-finite entries")
    transposed = cost.shape[0] > cost.shape[1]
    if transposed:
        cost = cost.T
    nr, nc = cost.shape
    u = np.zeros(nr)
    v = np.zeros(nc)
    col4row = np.full(nr, -1, dtype=np.int64)
    row4col = np.full(nc, -1, dtype=np.int64)
    for cur_row in range(nr):
        shortest = np.full(nc, np.inf)
        path = np.full(nc, -1, dtype=np.int64)
        in_rows = np.zeros(nr, dtype=bool)
        in_cols = np.zeros(nc, dtype=bool)
        i = cur_row
        min_val = 0.0
        sink = -1
        while sink < 0:
            in_rows[i] = True
            remaining = ~in_cols
            reduced = min_val + cost[i] - u[i] - v
            better = remaining & (reduced < shortest)
            path[better] = i
            shortest[better] = reduced[better]
            cand = remaining.nonzero()[0]
            values = shortest[cand]
            lowest = values.min()
            ties = cand[values == lowest]
            free = ties[row4col[ties] < 0]
            j = int(free[0]) if free.size else int(ties[0])
            min_val = lowest
            in_cols[j] = True
            if row4col[j] < 0:
                sink = j
            else:
                i = int(row4col[j])
        u[cur_row] += min_val
        others = in_rows.copy()
        others[cur_row] = False
        u[others] += min_val - shortest[col4row[others]]
        v[in_cols] -= min_val - shortest[in_cols]
        j = sink
        while True:
            i = int(path[j])
            row4col[j] = i
            col4row[i], j = j, int(col4row[i])
            if i == cur_row:
                break
    rows = np.arange(nr, dtype=np.int64)
    cols = col4row
    if transposed:
        order = np.argsort(cols)
        return cols[order], rows[order]
    return rows, cols


def _solve(sub):
    if _scipy_lsa is not None:
        return _scipy_lsa(sub)
    return lsa_numpy(sub)


def _components(rows, cols):
    """Connected components of the bipartite graph with edges (rows[k], cols[k]):
    a list of (row indices, col indices)."""
    parent = {}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for r, c in zip(rows.tolist(), cols.tolist()):
        a, b = ("r", r), ("c", c)
        parent.setdefault(a, a)
        parent.setdefault(b, b)
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb
    groups = {}
    for node in parent:
        groups.setdefault(find(node), ([], []))[0 if node[0] == "r" else 1].append(node[1])
    return [(sorted(g[0]), sorted(g[1])) for g in groups.values()]


def linear_assignment(cost, thresh, solver=None):
    """``cost`` T x D, pairs allowed where ``cost <= thresh``. Returns ``(matches, unmatched_rows,
    unmatched_cols)``: matches an int array K x 2 sorted by row, the others sorted int arrays.
    ``solver`` (tests): a function like ``linear_sum_assignment``; default scipy, else ``lsa_numpy``."""
    cost = np.asarray(cost, dtype=np.float64)
    n_rows, n_cols = cost.shape
    if n_rows == 0 or n_cols == 0:
        return np.zeros((0, 2), dtype=np.int64), np.arange(n_rows), np.arange(n_cols)
    ok = cost <= thresh
    rows, cols = ok.nonzero()
    # an edge whose row and column have no other edge is taken without a solver
    lone = (ok.sum(axis=1)[rows] == 1) & (ok.sum(axis=0)[cols] == 1)
    if lone.all():          # the usual frame: every gated pair stands alone (nonzero gives them by row)
        m = np.stack([rows, cols], axis=1).astype(np.int64, copy=False).reshape(-1, 2)
        return m, _free(n_rows, m[:, 0]), _free(n_cols, m[:, 1])
    pairs = list(zip(rows[lone].tolist(), cols[lone].tolist()))
    solve = solver or _solve
    rest = ~lone
    for comp_rows, comp_cols in _components(rows[rest], cols[rest]):
        sub = cost[np.ix_(comp_rows, comp_cols)]
        gain = np.where(sub <= thresh, sub - thresh, 0.0)
        r_idx, c_idx = solve(gain)
        pairs.extend((comp_rows[r], comp_cols[c]) for r, c in zip(r_idx, c_idx) if sub[r, c] <= thresh)
    pairs.sort()
    m = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    return m, _free(n_rows, m[:, 0]), _free(n_cols, m[:, 1])


def _free(n, used):
    free = np.ones(n, dtype=bool)
    free[used] = False
    return free.nonzero()[0]
