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
"""

from __future__ import annotations

import numpy as np

from planner.accuracy.profile import Profile, load_profile


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
    """[lo, hi] of predict(...) over the bootstrap replicates, or None without any."""
    from planner.accuracy.predict import predict

    reps = replicate_profiles(profile)
    if not reps:
        return None
    from planner.accuracy import special

    vals = np.stack([np.asarray(predict(r, strategy, samples, gen_len, **kw), float) for r in reps])
    lo, hi = np.quantile(vals, [(1 - level) / 2, (1 + level) / 2], axis=0)
    unc = load_profile(profile).spec.uncertainty
    if unc.samples_per_problem and unc.extrapolation_error_per_decade > 0:
        z = float(_normal_quantile((1 + level) / 2, special))
        decades = np.log10(np.maximum(np.asarray(samples, float) / unc.samples_per_problem, 1.0))
        widen = z * unc.extrapolation_error_per_decade * decades
        lo, hi = np.clip(lo - widen, 0.0, 1.0), np.clip(hi + widen, 0.0, 1.0)
    return lo, hi


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
