"""Intervals on a prediction from the fit's uncertainty.

A profile fitted by `planner fit` carries ``uncertainty.replicates``: its difficulty model
refitted on bootstrap resamples of the eval log (selection.bootstrap_replicates). The
interval of a prediction is the (1 - level)/2 and (1 + level)/2 quantiles of the same
prediction made with each replicate in place of the fitted difficulty; everything else
(trace length, penalties, strategy parameters) is held at the profile's values. A profile
without replicates (shipped from published figures) has no interval: None.
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
    vals = np.stack([np.asarray(predict(r, strategy, samples, gen_len, **kw), float) for r in reps])
    lo, hi = np.quantile(vals, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return lo, hi
