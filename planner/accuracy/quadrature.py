"""A fixed quadrature rule over the per-problem success probability p.

Every strategy is an expectation over problems, E[f(p)], where p follows a Beta, a
mixture of Betas, or a mixture of per-problem posterior Betas (an empirical profile).
``beta_mixture_grid`` turns any such distribution into nodes x_j and weights w_j with
E[f(p)] ~= sum_j w_j f(x_j), built once per profile and reused for every configuration.

Construction. The unit interval is cut into cells of equal width in logit(p) (so the
left tail, where pass@k at large k is decided, p ~ 1/k, is resolved down to p ~ 1e-9)
plus one cell for each tail. In every cell the first four moments of p restricted to the
cell are computed (Gauss-Legendre quadrature in logit p, a series in the two tail cells;
~1e-13 relative, see _mixture_cell_moments), and the 2-point Gauss rule of that cell
measure is formed. The rule is therefore exact for any function
that is a cubic polynomial within each cell; the total weight is exactly 1 and the mean
E[p] is reproduced exactly (so single-sample accuracy at the reference budget is exact).
Measured error against the Beta closed form for pass@k, k = 1..1e5, over the shipped
profiles and a grid of (a, b): below 5e-4 absolute (tests/test_accuracy_strategies.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.accuracy import special

# Cell edges in logit space: [-LOGIT_MAX_LEFT, LOGIT_MAX_RIGHT] in steps of LOGIT_STEP.
LOGIT_MAX_LEFT = 20.0
LOGIT_MAX_RIGHT = 16.0
LOGIT_STEP = 1.0
# graded refinement around a split point (majority vote)
SPLIT_LEVELS = 6


@dataclass(frozen=True)
class Grid:
    """Quadrature nodes (success probabilities) and weights (probability mass); ``cell``
    is the cell index of each node, ``edges`` the cell boundaries, ``components`` the
    (weights, a, b) of the Beta mixture the grid was built for."""

    nodes: np.ndarray
    weights: np.ndarray
    cell: np.ndarray = None
    edges: np.ndarray = None
    components: tuple = None
    weights_total: float = 1.0

    def expect(self, values: np.ndarray) -> np.ndarray:
        """E[f(p)] for values of shape (..., G)."""
        return values @ self.weights


def _edges() -> np.ndarray:
    x = np.arange(-LOGIT_MAX_LEFT, LOGIT_MAX_RIGHT + 0.5 * LOGIT_STEP, LOGIT_STEP)
    return special.expit(x)


_EDGE_LO, _EDGE_HI = float(special.expit(-LOGIT_MAX_LEFT)), float(special.expit(LOGIT_MAX_RIGHT))


# Cell moments by Gauss-Legendre quadrature in x = logit p: the Beta(a, b) measure is
# p^a (1-p)^b / B(a, b) dx there, log-concave and analytic within pi of the real axis.
# Each cell is cut into panels of _GL_POINTS nodes, as many as keep the log-density's
# slope (a + r) sigmoid(-x) - b sigmoid(x) (monotone, so bounded by its values at the
# cell's ends) below _MAX_SLOPE per panel half-width and the panel within a few standard
# deviations of the Beta's logit-normal width ((a + b) / 4 curvature); for the shipped
# profiles (a, b < 1) that is one panel per cell. Narrow, smooth cells (slope and
# sqrt(curvature) times the half-width <= _SMOOTH: most of split_at's sub-cells) take one
# 8-point panel. The logit width of a cell is formed from hi - lo with log1p, so tiny
# sub-cells (split_at) keep their relative precision. The
# two tail cells (p below sigmoid(-LOGIT_MAX_LEFT), above sigmoid(LOGIT_MAX_RIGHT)) use
# the series of (1-p)^(b-1) (resp. p^(a-1)) integrated term by term, valid while
# b p (a (1-p)) << 1 there, i.e. for a, b up to ~1e6. Error against mpmath (and scipy's
# incomplete Beta where that is accurate; tests/test_accuracy_special.py): ~1e-13
# relative.
_GL_POINTS = 16
_GL_X, _GL_W = np.polynomial.legendre.leggauss(_GL_POINTS)
_GL8_X, _GL8_W = np.polynomial.legendre.leggauss(8)
_MAX_SLOPE = 6.0      # |d/dx log density| * panel half-width
_MAX_SD = 1.5         # sqrt(curvature) * panel half-width
_SMOOTH = 0.5         # ... below which (and half-width <= 1/2) 8 nodes suffice
_TAIL_TERMS = 14


def _log_sigmoid(x):
    """(ln sigmoid(x), ln sigmoid(-x)), stable for any x."""
    lp = np.where(x >= 0, 0.0, x) - np.log1p(np.exp(-np.abs(x)))
    return lp, lp - x


def _logit_interior(wts, a, b, lbeta, lo, hi) -> np.ndarray:
    """Moments r = 0..3 of the mixture on interior cells [lo, hi] (0 < lo < hi < 1)."""
    xl = special.logit(lo)
    d = hi - lo
    width = np.log1p(d / lo) - np.log1p(-d / (1.0 - lo))
    xh = xl + width
    sl, sh = special.expit(xl), special.expit(xh)
    # largest |slope| of the log density over the cell and r = 0..3, over components
    slope = np.zeros(len(lo))
    for r in (0.0, 3.0):
        for s in (sl, sh):
            slope = np.maximum(slope, np.max(np.abs((a[:, None] + r) * (1.0 - s)[None, :]
                                                    - b[:, None] * s[None, :]), axis=0))
    curv = float(np.max(a + b)) / 4.0 + 1.0
    rate = np.maximum(slope, np.sqrt(curv))
    n_pan = np.maximum(1, np.ceil(width * np.maximum(slope / (2 * _MAX_SLOPE),
                                                     np.sqrt(curv) / (2 * _MAX_SD)))).astype(np.int64)
    # narrow, smooth cells (most of split_at's sub-cells): one 8-point panel is exact to
    # ~1e-20 there (|slope| and sqrt(curvature) times the half-width <= 1/2)
    small = (0.5 * width * rate <= _SMOOTH) & (width <= 1.0)
    out = np.empty((4, len(lo)))
    sel = np.flatnonzero(small)
    if len(sel):
        out[:, sel] = _panels(wts, a, b, lbeta, xl[sel], width[sel], np.ones(len(sel), np.int64), _GL8_X, _GL8_W)
    sel = np.flatnonzero(~small)
    if len(sel):
        out[:, sel] = _panels(wts, a, b, lbeta, xl[sel], width[sel], n_pan[sel], _GL_X, _GL_W)
    return out


def _panels(wts, a, b, lbeta, xl, width, n_pan, gl_x, gl_w) -> np.ndarray:
    """Moments r = 0..3 over cells [xl, xl + width] (logit), each cut into n_pan equal
    panels with the Gauss-Legendre rule (gl_x, gl_w)."""
    cell = np.repeat(np.arange(len(xl)), n_pan)
    first = np.concatenate([[0], np.cumsum(n_pan)[:-1]])
    j = np.arange(len(cell)) - first[cell]
    h = 0.5 * width[cell] / n_pan[cell]
    centre = xl[cell] + (2 * j + 1) * h
    x = centre[:, None] + h[:, None] * gl_x[None, :]             # (panels, GL)
    gw = h[:, None] * gl_w[None, :]
    lp, lq = _log_sigmoid(x)
    if len(a) == 1:
        f = np.exp(lp * a[0] + lq * b[0] - lbeta[0]) * (wts[0] * gw)
    else:
        f = (np.exp(lp[..., None] * a + lq[..., None] * b - lbeta) @ wts) * gw
    p = np.exp(lp)
    out = np.empty((4, len(xl)))
    for r in range(4):
        out[r] = np.bincount(cell, weights=f.sum(axis=1), minlength=len(xl))
        if r < 3:
            f = f * p
    return out


def _tail_series(alpha, beta, lo, hi, lbeta):
    """Int_lo^hi p^(alpha-1) (1-p)^(beta-1) dp / exp(lbeta) for small p (hi << 1/beta):
    sum_j c_j (hi^(alpha+j) - lo^(alpha+j)) / (alpha + j), c_j = prod_{i<=j} (i - beta) / i,
    all _TAIL_TERMS terms at once. alpha, beta, lbeta broadcast to (..., M, 1); lo, hi:
    (C,). -> (..., M, C)."""
    pos = hi > 0
    with np.errstate(divide="ignore"):
        lhi = np.log(np.where(pos, hi, 1.0))
        lratio = np.log(np.where(pos, lo / np.where(pos, hi, 1.0), 1.0))  # -inf where lo = 0
    j = np.arange(_TAIL_TERMS, dtype=float).reshape((-1,) + (1,) * np.ndim(alpha))
    alpha = np.asarray(alpha, float)
    beta = np.asarray(beta, float)
    c = np.cumprod(np.where(j == 0, 1.0, (j - beta) / np.maximum(j, 1.0)), axis=0)   # (J, ..., M, 1)
    hij = np.exp(j * lhi)                                                           # (J, ..., C)
    with np.errstate(over="ignore", invalid="ignore"):
        frac = np.where(np.isneginf(lratio), 1.0, -np.expm1((alpha + j) * lratio))
    acc = (c * hij * frac / (alpha + j)).sum(axis=0)
    return np.where(pos, np.exp(alpha * lhi - lbeta) * acc, 0.0)


def _mixture_cell_moments(wts, a, b, lo, hi) -> np.ndarray:
    """E[p^r ; lo < p <= hi], r = 0..3, for the Beta mixture sum_m wts[m] Beta(a[m], b[m]).
    lo, hi: (C,) cell bounds. -> (4, C)."""
    lo = np.asarray(lo, float)
    hi = np.asarray(hi, float)
    wts = np.asarray(wts, float)
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    lbeta = special.betaln(a, b)
    out = np.zeros((4, lo.size))
    left = hi <= _EDGE_LO * (1.0 + 1e-12)
    right = lo >= _EDGE_HI * (1.0 - 1e-15)
    mid = ~(left | right) & (hi > lo)
    if mid.any():
        out[:, mid] = _logit_interior(wts, a, b, lbeta, lo[mid], hi[mid])
    r = np.arange(4.0)[:, None, None]
    A, B, LB = a[None, :, None], b[None, :, None], lbeta[None, :, None]
    if left.any():       # p^(a+r-1) (1-p)^(b-1)
        t = _tail_series(A + r, B, lo[left], hi[left], LB)
        out[:, left] = np.einsum("m,rmc->rc", wts, np.clip(t, 0.0, None))
    if right.any():      # q = 1 - p: q^(b-1) (1-q)^(a+r-1)
        t = _tail_series(B, A + r, 1.0 - hi[right], 1.0 - lo[right], LB)
        out[:, right] = np.einsum("m,rmc->rc", wts, np.clip(t, 0.0, None))
    return out


def _gauss2(m0, m1, m2, m3, lo, hi):
    """Vectorized 2-point Gauss rule of cell measures from their raw moments.

    Returns nodes (n, 2) and weights (n, 2); cells with no variance (or tails) get one node
    at the mean and a zero-weight duplicate."""
    m0 = np.asarray(m0, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        mu1 = np.where(m0 > 1e-300, m1 / m0, 0.5 * (lo + hi))
        mu2 = np.where(m0 > 1e-300, m2 / m0, mu1 * mu1)
        mu3 = np.where(m0 > 1e-300, m3 / m0, mu1 ** 3)
        var = mu2 - mu1 * mu1
        good = var > 1e-14 * np.maximum(mu1 * mu1, 1e-300)
        c1 = np.where(good, (mu1 * mu2 - mu3) / np.where(good, var, 1.0), 0.0)
        c0 = -mu2 - c1 * mu1
        disc = c1 * c1 - 4.0 * c0
        good &= disc > 0
        sq = np.sqrt(np.where(good, disc, 0.0))
        x1 = (-c1 - sq) / 2.0
        x2 = (-c1 + sq) / 2.0
        good &= (x1 >= lo - 1e-12) & (x2 <= hi + 1e-12) & (x2 > x1)
        w1 = np.where(good, m0 * (x2 - mu1) / np.where(good, x2 - x1, 1.0), m0)
    nodes = np.stack([np.where(good, x1, mu1), np.where(good, x2, mu1)], axis=-1)
    weights = np.stack([w1, np.where(good, m0 - w1, 0.0)], axis=-1)
    return np.clip(nodes, 0.0, 1.0), weights


def beta_mixture_grid(weights, a, b) -> Grid:
    """Quadrature grid for sum_m weights[m] * Beta(a[m], b[m]) (weights sum to 1)."""
    wts = np.atleast_1d(np.asarray(weights, dtype=float))
    a = np.atleast_1d(np.asarray(a, dtype=float))
    b = np.atleast_1d(np.asarray(b, dtype=float))
    wts = wts / wts.sum()
    inner = _edges()
    edges = np.concatenate([[0.0], inner, [1.0]])
    lo, hi = edges[:-1], edges[1:]
    m = list(_mixture_cell_moments(wts, a, b, lo, hi))
    nodes, wout = _gauss2(*m, lo, hi)
    n_cells = len(lo)
    # tails: a single node at the cell mean
    for c in (0, n_cells - 1):
        if m[0][c] > 1e-300:
            nodes[c] = [m[1][c] / m[0][c]] * 2
            wout[c] = [m[0][c], 0.0]
    cell = np.repeat(np.arange(n_cells), 2)
    nodes, wout = nodes.ravel(), wout.ravel()
    keep = wout > 0
    w_a = wout[keep]
    total = w_a.sum()
    return Grid(nodes=nodes[keep], weights=w_a / total, cell=cell[keep], edges=edges,
                components=(wts, a, b), weights_total=float(total))


def split_at(grid: Grid, x_split) -> tuple[np.ndarray, np.ndarray]:
    """Per split point x*, the grid with the cell that contains x* cut in two at x* (each
    part with its own 2-point Gauss rule). Integrands with a jump at x* (majority vote in
    the limit of many samples) are then integrated exactly on either side of it.

    The two parts are cut further into SPLIT_LEVELS + 1 sub-cells each, halving in width
    toward x*. Returns nodes and weights of shape (len(x_split), G + 4 (SPLIT_LEVELS + 1));
    the replaced nodes keep their place with zero weight."""
    xs = np.atleast_1d(np.asarray(x_split, float))
    if grid.components is None:     # point masses (a logit-grid prior): nothing to split
        shape = (len(xs), len(grid.nodes))
        return np.broadcast_to(grid.nodes, shape).copy(), np.broadcast_to(grid.weights, shape).copy()
    wts, a, b = grid.components
    edges = grid.edges
    c = np.clip(np.searchsorted(edges, xs, side="right") - 1, 0, len(edges) - 2)
    lo, hi = edges[c], edges[c + 1]
    inside = (xs > lo) & (xs < hi)
    xin = np.where(inside, xs, hi)
    # graded sub-cells on each side, halving toward x* (resolves transitions of any width)
    fr = np.concatenate([[1.0], 0.5 ** np.arange(1, SPLIT_LEVELS + 1), [0.0]])
    left_b = xin[:, None] - (xin - lo)[:, None] * fr[None, :]          # lo ... x*
    right_b = xin[:, None] + (hi - xin)[:, None] * fr[::-1][None, :]   # x* ... hi
    bounds = [(left_b[:, i], left_b[:, i + 1]) for i in range(len(fr) - 1)]
    bounds += [(right_b[:, i], right_b[:, i + 1]) for i in range(len(fr) - 1)]
    lefts = np.concatenate([bl for bl, _ in bounds])
    rights = np.concatenate([br for _, br in bounds])
    mm = _mixture_cell_moments(wts, a, b, lefts, rights)
    n = len(xs)
    n_part = len(bounds)
    pn, pw = _gauss2(*mm, lefts, rights)                    # (n_part * n, 2), part-major
    n_nodes = pn.reshape(n_part, n, 2).transpose(1, 0, 2).reshape(n, 2 * n_part)
    n_wts = pw.reshape(n_part, n, 2).transpose(1, 0, 2).reshape(n, 2 * n_part) / grid.weights_total
    base_n = np.broadcast_to(grid.nodes, (len(xs), len(grid.nodes)))
    base_w = np.where(grid.cell[None, :] == c[:, None], 0.0, grid.weights[None, :])
    # where x* sits on an edge nothing is replaced
    base_w = np.where(inside[:, None], base_w, grid.weights[None, :])
    n_wts = np.where(inside[:, None], n_wts, 0.0)
    return np.concatenate([base_n, n_nodes], axis=1), np.concatenate([base_w, n_wts], axis=1)
