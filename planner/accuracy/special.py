"""Special functions for the accuracy model in plain numpy (no scipy on the predict path).

``from scipy import special`` costs ~0.4 s of start-up (its array-API backends), more than
the whole accuracy model of a `planner recommend` search, so the functions the model
needs are implemented here (tests/test_accuracy_special.py compares each with scipy over
wide ranges; the figures below are the measured worst cases there):

- ``expit``, ``logit``: the logistic function and its inverse (scipy's formulas; relative
  error ~1e-16).
- ``erfc``, ``ndtr``: W. J. Cody's rational Chebyshev approximations of erf / erfc
  ("Rational Chebyshev approximations for the error function", Math. Comp. 23 (1969)
  631-638; the SPECFUN CALERF coefficients), with exp(-y^2) split as in CALERF so the
  tail keeps its relative precision. ndtr(x) = erfc(-x / sqrt 2) / 2: absolute error
  < 1e-16, relative ~1e-14 down to x = -37.
- ``gammaln``: log|Gamma(x)|: Lanczos (g = 7, n = 9) on [0.5, 15), the Stirling series
  beyond (to 1e-16 relative), Gamma(x) = Gamma(x+1)/x below 0.5, reflection for x < 0.
  Absolute error < 3e-14 (relative < 1e-13 where |lgamma| > 0.1, i.e. away from the
  zeros at 1 and 2).
- ``betaln``: log B(a, b); where the larger argument is >= 15, lgamma(b) - lgamma(a+b) is
  formed from the Stirling series with log1p (no cancellation of large terms), so the
  ratios B(a, b+k)/B(a, b) of beta_pass_at_k keep ~1e-14 relative precision for k to 1e7.
- ``logsumexp`` (over an axis, max-shifted).
"""

from __future__ import annotations

import numpy as np

_LOG_SQRT_2PI = 0.91893853320467274178032973640562
_SQRT1_2 = 0.70710678118654752440084436210485
_SQRPI = 5.6418958354775628695e-1  # 1 / sqrt(pi)

# Cody (1969), SPECFUN CALERF: erf on |x| <= 0.46875 (A, B), erfc on (0.46875, 4] (C, D),
# erfc beyond 4 (P, Q, asymptotic in 1/x^2).
_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
      3.20937758913846947e03, 1.85777706184603153e-1)
_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
      2.84423683343917062e03)
_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
      2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
      2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
      1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
      3.43936767414372164e03, 1.23033935480374942e03)
_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
      1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1,
      6.05183413124413191e-2, 2.33520497626869185e-3)
_XBIG = 26.543  # erfc(x) underflows beyond

# Lanczos approximation, g = 7, n = 9
_LANCZOS_G = 7.0
_LANCZOS = (0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
            -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
            1.5056327351493116e-7)
# Stirling series of lgamma(x) - [(x - 1/2) ln x - x + ln sqrt(2 pi)]: B_2n / (2n (2n-1) x^(2n-1))
_STIRLING = (1.0 / 12, -1.0 / 360, 1.0 / 1260, -1.0 / 1680, 1.0 / 1188, -691.0 / 360360,
             1.0 / 156, -3617.0 / 122400)
_STIRLING_MIN = 15.0


def _f(x):
    return np.asarray(x, dtype=float)


def _out(r, x):
    return r if np.ndim(x) else r[()]


def expit(x):
    """1 / (1 + exp(-x)), without overflow."""
    x = _f(x)
    with np.errstate(over="ignore"):
        e = np.exp(-np.abs(x))
        r = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return _out(r, x)


def logit(p):
    """ln(p / (1 - p)); near p = 1/2 as log1p(s) - log1p(-s), s = 2p - 1 (as scipy)."""
    p = _f(p)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = 2.0 * (p - 0.5)
        mid = (p >= 0.3) & (p <= 0.65)
        r = np.where(mid, np.log1p(s) - np.log1p(-s), np.log(p / (1.0 - p)))
    return _out(r, x=p)


_CHUNK = 16384   # elements per block: the rational evaluations stay in cache


def _horner(x, lead, coeffs):
    """((lead x + c0) x + c1) x ... + c_last: Cody's rational-function numerators and
    denominators, evaluated in his operation order."""
    acc = lead * x
    for c in coeffs[:-1]:
        acc += c
        acc *= x
    acc += coeffs[-1]
    return acc


def _erfc_block(y, out):
    """erfc(y) for a block of y >= 0 into out, Cody's three intervals."""
    r1 = y <= 0.46875
    r3 = y > 4.0
    r2 = ~(r1 | r3)                    # (NaN lands here and stays NaN)
    if r1.any():
        x = y[r1]
        z = x * x
        num = _A[4] * z
        den = z + _B[0]
        num += _A[0]
        num *= z
        den *= z
        for i in (1, 2):
            num += _A[i]
            num *= z
            den += _B[i]
            den *= z
        out[r1] = 1.0 - x * (num + _A[3]) / (den + _B[3])
    for sel, region in ((r2, 2), (r3, 3)):
        if not sel.any():
            continue
        x = y[sel]
        if region == 2:
            res = _horner(x, _C[8], _C[:8]) / _horner(x, 1.0, _D[:8])
        else:
            z = 1.0 / (x * x)
            res = (_SQRPI - z * _horner(z, _P[5], _P[:5]) / _horner(z, 1.0, _Q[:5])) / x
        # exp(-x^2) = exp(-xs^2) exp(-(x - xs)(x + xs)), xs = x rounded down to 1/16
        xs = np.trunc(x * 16.0)
        xs *= 0.0625
        d = (x - xs) * (x + xs)
        xs *= xs
        np.negative(xs, out=xs)
        np.exp(xs, out=xs)
        np.negative(d, out=d)
        np.exp(d, out=d)
        res *= xs
        res *= d
        out[sel] = np.where(x < _XBIG, res, 0.0) if region == 3 else res
    return out


def _erfc_blocks(x, scale, lower):
    """Block by block over the flat x: erfc(scale |x|), then for negative x either
    2 - erfc (lower=False: erfc(x) itself) or, with lower=True, the normal CDF
    (erfc(|x| / sqrt 2) / 2 below 0, 1 - that above)."""
    flat = np.ascontiguousarray(x, dtype=float).ravel()
    out = np.empty_like(flat)
    with np.errstate(invalid="ignore", over="ignore"):
        for s in range(0, flat.size, _CHUNK):
            xb = flat[s:s + _CHUNK]
            ob = out[s:s + _CHUNK]
            y = np.abs(xb)
            if scale != 1.0:
                y *= scale
            _erfc_block(y, ob)
            neg = xb < 0
            if lower:
                ob *= 0.5
                np.subtract(1.0, ob, out=ob, where=~neg)
            else:
                np.subtract(2.0, ob, out=ob, where=neg)
    return out.reshape(np.shape(x))


def erfc(x):
    """Complementary error function (Cody 1969)."""
    x = _f(x)
    return _out(_erfc_blocks(x, 1.0, lower=False), x)


def ndtr(x):
    """Standard normal CDF: erfc(-x / sqrt 2) / 2."""
    x = _f(x)
    return _out(_erfc_blocks(x, _SQRT1_2, lower=True), x)


def _stirling_corr(x):
    """lgamma(x) - [(x - 1/2) ln x - x + ln sqrt(2 pi)] for x >= _STIRLING_MIN."""
    z = 1.0 / (x * x)
    acc = _STIRLING[-1]
    for c in _STIRLING[-2::-1]:
        acc = acc * z + c
    return acc / x


def _lgamma_pos(x):
    """lgamma for x > 0 (array)."""
    out = np.empty_like(x)
    big = x >= _STIRLING_MIN
    if big.any():
        xb = x[big]
        out[big] = (xb - 0.5) * np.log(xb) - xb + _LOG_SQRT_2PI + _stirling_corr(xb)
    mid = (x >= 0.5) & ~big
    small = x < 0.5
    if mid.any() or small.any():
        # Gamma(x) = Gamma(x + 1) / x below 1/2 (x + 1 in [1, 1.5))
        xm = np.where(small, x + 1.0, x)[mid | small]
        z = xm - 1.0
        s = _LANCZOS[0]
        for i in range(1, 9):
            s = s + _LANCZOS[i] / (z + i)
        t = z + _LANCZOS_G + 0.5
        lg = _LOG_SQRT_2PI + (z + 0.5) * np.log(t) - t + np.log(s)
        xs = x[mid | small]
        out[mid | small] = np.where(xs < 0.5, lg - np.log(xs), lg)
    return out


def gammaln(x):
    """log|Gamma(x)| (inf at 0 and the negative integers)."""
    x = _f(x)
    xa = np.atleast_1d(x).astype(float, copy=True)
    out = np.full(xa.shape, np.inf)
    pos = xa > 0
    if pos.any():
        out[pos] = _lgamma_pos(xa[pos])
    neg = (xa <= 0) & (xa != np.floor(xa))
    if neg.any():
        xn = xa[neg]
        # reflection: |Gamma(x)| = pi / (|sin(pi x)| Gamma(1 - x)); sin(pi x) from the
        # fractional part, so large |x| keeps precision
        frac = xn - np.floor(xn)
        out[neg] = np.log(np.pi / np.abs(np.sin(np.pi * frac))) - _lgamma_pos(1.0 - xn)
    out[np.isnan(xa)] = np.nan
    out[np.isneginf(xa)] = np.inf
    return _out(out.reshape(x.shape), x)


def betaln(a, b):
    """log B(a, b) = lgamma(a) + lgamma(b) - lgamma(a + b) for a, b > 0."""
    a, b = np.broadcast_arrays(_f(a), _f(b))
    shape = a.shape
    lo = np.minimum(a, b).ravel()
    hi = np.maximum(a, b).ravel()
    out = np.empty(lo.shape)
    big = hi >= _STIRLING_MIN
    if big.any():
        x, y = lo[big], hi[big]
        s = x + y
        # lgamma(y) - lgamma(x + y) by Stirling, the large terms combined exactly
        d = (-(y - 0.5) * np.log1p(x / y) - x * np.log(s) + x
             + _stirling_corr(y) - _stirling_corr(s))
        out[big] = gammaln(x) + d
    rest = ~big
    if rest.any():
        x, y = lo[rest], hi[rest]
        out[rest] = gammaln(x) + gammaln(y) - gammaln(x + y)
    bad = ~((lo > 0) & (hi > 0))
    if bad.any():
        with np.errstate(invalid="ignore"):
            out[bad] = np.where(np.isnan(lo[bad]) | np.isnan(hi[bad]), np.nan,
                                np.where(lo[bad] == 0, np.inf, np.nan))
    return _out(out.reshape(shape), a)


def logsumexp(a, axis=None, keepdims: bool = False):
    """ln sum exp(a) over ``axis`` (all axes when None), shifted by the maximum."""
    a = _f(a)
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        r = np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m
    if not keepdims:
        r = np.squeeze(r, axis=axis) if axis is not None else r.reshape(())
    return r if np.ndim(r) else r[()]


def unique_sorted(values) -> np.ndarray:
    """The sorted distinct values of an array without NaN: ``np.unique(values)``, which
    on numpy >= 2.3 imports numpy.ma on its first call without return flags (20-250 ms
    of a command's start-up, inside the search's accuracy threads). Same values, same
    dtype."""
    a = np.sort(np.asarray(values).ravel())
    if a.size < 2:
        return a
    keep = np.empty(a.size, dtype=bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]
