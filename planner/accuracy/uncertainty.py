"""Intervals on a prediction from the fit's uncertainty.

A profile fitted by `planner fit` carries ``uncertainty.replicates``: its difficulty model
refitted on bootstrap resamples of the eval log (selection.bootstrap_replicates). The
interval of a prediction is the (1 - level)/2 and (1 + level)/2 quantiles of the same
prediction made with each replicate in place of the fitted difficulty; everything else
(trace length, penalties, strategy parameters) is held at the profile's values. A profile
without replicates (shipped from published figures) has no interval: None.

Beyond the samples the fit saw (k > samples_per_problem) the spread of the replicates
misses the error of extrapolating the tail's shape, which the fit measures on the log
itself (selection.extrapolation_error: fitted on a tenth of the samples, predicting
pass@n one decade out): e, an RMS error per decade. The interval is widened on both sides
by z * e * log10(k / samples_per_problem), z = 1.2816 for 80% (e read as the standard
deviation of a normal error, growing linearly in decades as a power-law tail's error does).
For pass@k, which cannot fall as k grows, the lower end beyond the samples seen is the
largest lower end over fixed k' (16 a decade) between the samples seen and k, so it never
falls with k either.
"""

from __future__ import annotations

import numpy as np

from planner.accuracy.profile import Profile, load_profile


# Points per decade of k (from the samples seen up) at which the lower end of a pass@k
# interval is evaluated beyond the samples seen (see interval).
ENVELOPE_PER_DECADE = 16


def replicate_profiles(profile) -> list:
    prof = load_profile(profile)
    unc = prof.spec.uncertainty
    if unc is None:
        return []
    out = []
    for rep in unc.replicates:
        spec = prof.spec.model_copy(update={"difficulty": rep, "pass_at_1": float(rep.mean())})
        out.append(Profile(spec=spec, path=f"{prof.path} (bootstrap replicate)"))
    return out


def interval(profile, strategy: str, samples, gen_len=None, *, level: float = 0.8, **kw):
    """[lo, hi] of predict(...) over the bootstrap replicates, or None without any; the
    interval always holds the profile's own prediction (a bootstrap quantile need not)."""
    reps = replicate_profiles(profile)
    if not reps:
        return None
    from planner.accuracy.predict import predict
    from planner.accuracy import special

    unc = load_profile(profile).spec.uncertainty
    z = float(_normal_quantile((1 + level) / 2, special))

    def bounds(k):
        vals = np.stack([np.asarray(predict(r, strategy, k, gen_len, **kw), float) for r in reps])
        lo, hi = np.quantile(vals, [(1 - level) / 2, (1 + level) / 2], axis=0)
        if unc.samples_per_problem and unc.extrapolation_error_per_decade > 0:
            decades = np.log10(np.maximum(np.asarray(k, float) / unc.samples_per_problem, 1.0))
            widen = z * unc.extrapolation_error_per_decade * decades
            lo, hi = np.clip(lo - widen, 0.0, 1.0), np.clip(hi + widen, 0.0, 1.0)
        return lo, hi

    lo, hi = bounds(samples)
    scalar_rest = np.ndim(gen_len) == 0 and all(np.ndim(v) == 0 for v in kw.values())
    if (strategy == "pass@k" and scalar_rest and unc.samples_per_problem
            and unc.extrapolation_error_per_decade > 0):
        # pass@k never falls as k grows, so a lower end at any k' <= k is one at k too.
        # Beyond the samples seen the lower end is the largest over the fixed points
        # k' = n 10^(j / ENVELOPE_PER_DECADE) <= k (a step function, exactly non-decreasing;
        # the widening alone would let it fall where the prediction saturates).
        k = np.asarray(samples, float)
        n_seen = float(unc.samples_per_problem)
        top = max(float(k.max()), n_seen)
        g = n_seen * 10.0 ** (np.arange(int(np.ceil(ENVELOPE_PER_DECADE * np.log10(top / n_seen))) + 1)
                              / ENVELOPE_PER_DECADE)
        lo_g = np.maximum.accumulate(np.asarray(bounds(g)[0], float))
        idx = np.searchsorted(g, k * (1 + 1e-12), side="right") - 1
        lo = np.where(k > n_seen, lo_g[np.clip(idx, 0, len(g) - 1)], lo)
    point = np.asarray(predict(profile, strategy, samples, gen_len, **kw), float)
    return np.minimum(lo, point), np.maximum(hi, point)


def _normal_quantile(q: float, special) -> float:
    """Inverse of the standard normal CDF by bisection on special.ndtr (no scipy here)."""
    lo, hi = -10.0, 10.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if float(special.ndtr(mid)) < q:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)
