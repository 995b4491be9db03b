"""The search's accuracy arrays, cached on disk (planner.array_cache): what
`planner recommend` asks of the accuracy model per (profile, strategy, grid), keyed by
the model's own sources (ACCURACY_SOURCES), so a scenario asked again, or the default
scenario on a fresh install (the shipped cache, disk_cache.SHIPPED_CACHE), loads no model.
"""

from __future__ import annotations

INTERVAL_LEVEL = 0.8  # the interval `planner recommend` shows (acc 80%)

# The package's sources the search's accuracy arrays depend on (their cache key,
# planner.array_cache.code_stamp): planner.accuracy (this module included) and every
# module it imports. tests/test_precomputed.py checks that this is the import closure, so
# an edit elsewhere in the package keeps the cached (and the shipped) arrays.
ACCURACY_SOURCES = ("accuracy", "array_cache.py", "bounds.py", "catalog.py", "disk_cache.py", "dtypes.py", "errors.py",
                    "files.py", "locations.py", "quantization.py", "safeload.py", "scenario_checks.py", "specs.py",
                    "units.py")


def _cached_accuracy(kind: str, compute, profile, strategy, arrays, quality: dict):
    """``compute()`` (an accuracy array, or with ``kind`` "interval" a (lo, hi) pair or
    None), cached on disk by planner.array_cache in ``disk_cache.cache_dir()/accuracy``: keyed
    by the code (ACCURACY_SOURCES), the profile's full content (its spec as JSON), the
    strategy, the verifier quality and every array argument."""
    from planner.accuracy.profile import load_profile
    from planner.array_cache import cached_array

    prof = load_profile(profile)
    key = f"{kind}|{strategy}|{sorted(quality.items())!r}|{prof.spec.model_dump_json()}"
    return cached_array("accuracy", compute, key, arrays, pair=kind == "interval", sources=ACCURACY_SOURCES)


def accuracy_for_search(profile, strategy, samples, gen_len, weight_dtype, act_dtype, kv_dtype, kv_budget,
                        verifier=None):
    """The accuracy model, broadcast over (samples, gen_len, kv_budget) arrays; a named
    verifier brings its own quality on the task (accuracy.verifiers, else the profile's).
    Cached on disk (_cached_accuracy)."""
    from planner.accuracy.verifiers import verifier_quality

    vq = verifier_quality(verifier, profile)

    def compute():
        from planner.accuracy.predict import predict

        return predict(profile, strategy, samples, gen_len, weight_dtype=weight_dtype, act_dtype=act_dtype,
                       kv_dtype=kv_dtype, kv_budget=kv_budget, verifier_completeness=vq["completeness"],
                       verifier_soundness=vq["soundness"], reward_auc=vq["reward_auc"])

    quality = {k: vq[k] for k in ("completeness", "soundness", "reward_auc")}
    return _cached_accuracy("accuracy", compute, profile, strategy,
                            (samples, gen_len, weight_dtype, act_dtype, kv_dtype, kv_budget), quality)


def interval_for_search(profile, strategy, samples, gen_len, weight_dtype, act_dtype, kv_dtype, kv_budget,
                        verifier=None):
    """The 80% interval of :func:`accuracy_for_search` (planner.accuracy.uncertainty): the
    same prediction, with the same verifier quality, over the profile's bootstrap
    replicates; None without replicates."""
    from planner.accuracy.profile import load_profile
    from planner.accuracy.verifiers import verifier_quality

    vq = verifier_quality(verifier, profile)

    def compute():
        from planner.accuracy.uncertainty import interval

        return interval(profile, strategy, samples, gen_len, level=INTERVAL_LEVEL, weight_dtype=weight_dtype,
                        act_dtype=act_dtype, kv_dtype=kv_dtype, kv_budget=kv_budget,
                        verifier_completeness=vq["completeness"], verifier_soundness=vq["soundness"],
                        reward_auc=vq["reward_auc"])

    prof = load_profile(profile)
    unc = prof.spec.uncertainty
    if unc is None or not unc.replicates:
        return compute()  # no replicates (None): nothing to cache
    quality = {k: vq[k] for k in ("completeness", "soundness", "reward_auc")}
    return _cached_accuracy("interval", compute, prof, strategy,
                            (samples, gen_len, weight_dtype, act_dtype, kv_dtype, kv_budget), quality)
