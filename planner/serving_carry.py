"""What a (device, engine) pair without a fit takes from the fitted pairs: the carry rules.

The fitted parameters (planner.serving_params) belong to an engine's scheduler, a die, a
fabric or a device. A pair nobody measured (a B200 under vLLM, an MI300X under SGLang) takes
its datasheet defaults and, over them, the parameters of the rule :data:`CARRY_RULE` from the
pairs fitted for its engine (:func:`carried_over`, :func:`unmeasured`): the one rule the replay
(planner.replay) and every command (planner.serving_profile.resolve_serving) follow. The
candidate rules and the cross-validation that chose among them are here, beside the rule.
"""

from __future__ import annotations

import numpy as np

from planner.serving_params import ENGINE_SCOPE, PARAMS, Values, defaults

# The device-scoped achieved fractions of the datasheet (and the per-kernel time) a device
# reaches; "carried" means an unmeasured GPU of the same vendor is taken to reach the median
# of the fitted devices' fractions of ITS OWN datasheet peaks.
DEVICE_FRACTIONS = ("memory_efficiency", "compute_efficiency", "kernel_time_s", "link_efficiency")
# The engine-scoped parameters less the wave synchrony: the scheduler's host time and request
# overhead. ``wave_sync`` is identified only by fixed-length rows at more than one request in
# flight (planner.cost.waves: a spread row's waves are never in step), so a fit on one device's
# rows (leave-one-device-out) sets it from a few rows of that device's models, or from none
# (h200/trtllm: 0 of 262 rows fixed, the fit left it at 0.996): a rule without it leaves an
# unmeasured device the default, the middle of its range (docs/serving-experiments.md, Round 13 (S6)).
# Nor the host time per request (the dev file's Hopper hosts'): leave-one-device-out 36.45% / 16.47%
# without it, 36.95% / 17.00% with it; B200 gpt-oss-120b TPOT 10% against 17% (Round 18).
SCHEDULER = tuple(k for k in ENGINE_SCOPE if k not in ("wave_sync", "step_host_s_per_request"))
# A rule token: the die-scoped parameters of the fitted devices of the unmeasured device's die, the
# fabric-scoped one of its fabric (hardware/*.yaml ``die`` / ``fabric``), over the rest of the rule.
SAME_SILICON = "same-silicon"
# The candidate rules for what an unmeasured device takes from the fitted ones, judged by
# leave-one-device-out cross-validation (benchmarks/serving_fidelity.py --carry-rules;
# README "What an unmeasured device gets, and its measured error") and by published
# Blackwell figures (benchmarks/blackwell_published.py). "none" is the datasheet alone.
CARRY_RULES = {
    "none": (),
    "engine": ENGINE_SCOPE,
    "engine+efficiencies": ENGINE_SCOPE + ("memory_efficiency", "compute_efficiency"),
    "engine+kernel": ENGINE_SCOPE + ("kernel_time_s",),
    "engine+link": ENGINE_SCOPE + ("link_efficiency",),
    "engine+kernel+link": ENGINE_SCOPE + ("kernel_time_s", "link_efficiency"),
    "engine+device": ENGINE_SCOPE + DEVICE_FRACTIONS,
    "engine+link+silicon": ENGINE_SCOPE + ("link_efficiency", SAME_SILICON),
    "scheduler+link": SCHEDULER + ("link_efficiency",),
    "scheduler+link+silicon": SCHEDULER + ("link_efficiency", SAME_SILICON),
    "scheduler+kernel+link": SCHEDULER + ("kernel_time_s", "link_efficiency"),
}
# Chosen among the rules above, fixed beforehand, by leave-one-device-out on the dev file (fit
# on h100-sxm, predict h200, and back) and by the published runs of devices nobody measured
# (tests/data/inferencemax-nvidia.csv: 47 InferenceX Blackwell runs; tests/test_blackwell_rows.py;
# benchmarks/unmeasured_devices.py). The figures live in one place, README "What an unmeasured
# device gets, and its measured error". Round 15: "scheduler+kernel+link" against the earlier
# "scheduler+link": leave-one-device-out all rows 37% / 18% against 37% / 19% (TTFT / TPOT), the
# 47 Blackwell runs' TPOT 8% (signed -1%) against 28% (-28%), TTFT 39% against 40%. Physically: the
# fraction of the NVLink bandwidth an all-reduce of decode-sized messages reaches is set by the
# collective library's protocols at those sizes, not by the part, so it carries to any GPU of the
# vendor; the fixed time per kernel (launch, ramp and tail of a short kernel) is the vendor's
# kernel libraries' more than the die's: NVIDIA's own measured kernel tables (aiconfigurator
# 0.12.0, TensorRT-LLM 1.3.0rc20; benchmarks/published_kernels.py, docs/serving-experiments.md
# "Round 15 (S1b)") put a B200, GB200 or B300 decode layer's fixed time per kernel at 1.1-1.3x
# H100's on the same GEMM path, where the spec's generic 4 us is half of it. The carried time
# follows each row's GEMM path where the tables have it (:data:`CARRIED_KERNEL_BY_PATH`); known
# cost left: the single-request SGLang B200 run of the weight-only (W4A16) gpt-oss-120b comes out
# ~+67% (tests/test_blackwell_rows.py). The compute fraction is the die's and the memory fraction the
# device's, so neither carries.
CARRY_RULE = "scheduler+kernel+link"
# A device fitted with other engines keeps its own fitted fractions (:func:`carried_over`'s
# ``own``; round 15: leave-one-model-out 33.29% / 15.45% -> 33.21% / 14.34%, the other checks
# unchanged: no Blackwell or AMD part has a fit with any engine).
OWN_FRACTIONS = True
CARRIED = CARRY_RULES[CARRY_RULE]
# A carried ``kernel_time_s`` follows the GEMM path of each row on a device with published NVIDIA
# kernel tables (planner.kernel_paths: carried x the family table's time of the row's path over its
# mean at the fitted rows' mix; weight-only rows keep the scalar). Round 15 (S1d): leave-one-device-out
# 36.91% / 18.37% -> 36.93% / 17.03% (h100-sxm held out TPOT 19% -> 17%), leave-one-model-out unchanged,
# the 47 Blackwell runs' TPOT 8% -> 5% (docs/serving-experiments.md). The carried values say so in
# their typed field planner.serving_params.Values.kernel_mix, which planner.serving_params.efficiency reads.
CARRIED_KERNEL_BY_PATH = True
DATASHEET = "datasheet"  # the profile name of a pair that takes its datasheet alone

def carried_mix(sources) -> dict[str, float] | None:
    """The mix (compute dtype -> rows) behind a kernel time carried as the median over the values
    ``sources``: each count the median over the sources, as the time is; None when a source does
    not say its mix (planner.kernel_paths then leaves the carried time one scalar)."""
    mixes = [getattr(v, "gemm_mix", None) for v in sources]
    if not mixes or not all(mixes):
        return None
    dtypes = sorted(set().union(*mixes))
    return {d: float(np.median([m.get(d, 0) for m in mixes])) for d in dtypes}


def _hardware(device: str):
    from planner.catalog import load_hardware
    from planner.errors import InputError

    try:
        return load_hardware(device)
    except InputError:  # a fitted device the catalog lacks: no device fractions from it
        return None


def _same_silicon(hw, params: dict) -> tuple[dict, list[str]]:
    """The die-scoped parameters of the fitted pairs whose device is cut from ``hw``'s die and
    the fabric-scoped ones of those of its fabric (each the median over those pairs, any
    engine: the pooled fit shares them between a device's engines), with the words naming them."""
    vals, words = {}, []
    for scope in ("die", "fabric"):
        mine = getattr(hw, scope, "")
        if not mine:
            continue
        pairs = [(g, v) for g, (_, v) in sorted(params.items())
                 if g.split("/", 1)[0] != hw.name and getattr(_hardware(g.split("/", 1)[0]), scope, None) == mine]
        names = [p.name for p in PARAMS if p.scope == scope and any(p.name in v for _, v in pairs)]
        if names:
            vals.update({k: float(np.median([v[k] for _, v in pairs if k in v])) for k in names})
            words.append(f"{', '.join(names)} of {scope} {mine} ({', '.join(sorted({g for g, _ in pairs}))})")
    return vals, words


def carried_over(engine: str, params: dict, hw=None, carry: tuple[str, ...] | None = None,
                 own: bool | None = None) -> tuple[str, dict] | None:
    """For a (device, engine) pair without a fit: what the fits in ``params`` ("device/engine"
    -> (name, values)) give it, with a name saying what came from where; None when nothing
    does (no fit of the engine, nor of the device ``hw`` with another engine).

    * The parameters of rule ``carry`` (default :data:`CARRIED`), each the median over the
      devices fitted for that engine. Engine-scoped ones (host time, scheduler behaviour)
      carry to any device; a device-scoped fraction (:data:`DEVICE_FRACTIONS`) only to a
      device ``hw`` of the same vendor as every fitted device it would come from (an
      achieved fraction of a datasheet is a property of the vendor's kernels and parts);
      without ``hw`` it does not carry.
    * With :data:`SAME_SILICON` in the rule, the die- and fabric-scoped parameters of fitted
      devices of ``hw``'s die / fabric (:func:`_same_silicon`), over the rest.
    * With ``own`` (default :data:`OWN_FRACTIONS`, on), a device fitted with OTHER engines
      keeps its own fitted fractions (all of :data:`DEVICE_FRACTIONS`, the median over its
      pairs) instead of other devices' or its datasheet's: the pooled fit
      (planner.serving_fit.fit_all) shares them between the engines of a device, so they are
      that device's measured fractions. Leave-one-model-out on the dev file is the one place it
      acts (h100-sxm/sglang without Qwen3-32B): 33.21% / 14.34% with it, 33.29% / 15.45%
      without under the shipped rule (33.29% / 14.48% under the earlier "scheduler+link"), round
      15 (README "What an unmeasured device gets, and its measured error")."""
    carry = CARRIED if carry is None else tuple(carry)
    own = OWN_FRACTIONS if own is None else own
    fitted = [(g, v) for g, (_, v) in sorted(params.items()) if g.split("/", 1)[-1] == engine]
    mine = [(g, v) for g, (_, v) in sorted(params.items())
            if own and hw is not None and g.split("/", 1)[0] == hw.name]

    def median(k, pairs):
        return float(np.median([v[k] for _, v in pairs if k in v]))

    own_vals = {k: median(k, mine) for k in DEVICE_FRACTIONS if any(k in v for _, v in mine)}
    silicon, silicon_words = (_same_silicon(hw, params) if SAME_SILICON in carry and hw is not None and not own_vals
                              else ({}, []))
    devices = sorted({g.split("/", 1)[0] for g, _ in fitted})
    same_vendor = hw is not None and all(getattr(_hardware(d), "vendor", None) == getattr(hw, "vendor", None)
                                         for d in devices)
    names = [k for k in carry if k not in own_vals and k not in silicon
             and (k in ENGINE_SCOPE or (k in DEVICE_FRACTIONS and same_vendor))]
    vals = {k: median(k, fitted) for k in names if any(k in v for _, v in fitted)}
    # another device's kernel time follows the row's GEMM path at the mix it was fitted on (efficiency)
    mix = (carried_mix([v for _, v in fitted if "kernel_time_s" in v])
           if CARRIED_KERNEL_BY_PATH and "kernel_time_s" in vals else None)
    parts = ([f"{', '.join(vals)} of {', '.join(g for g, _ in fitted)}"] if vals else []) + silicon_words + (
        [f"{', '.join(own_vals)} of {', '.join(g for g, _ in mine)}"] if own_vals else [])
    if not parts:
        return None  # nothing carries: the datasheet alone
    return f"datasheet + {engine} {'; '.join(parts)}", Values({**vals, **silicon, **own_vals}, kernel_mix=mix)


def unmeasured(hw, engine: str, engine_profile, params: dict, carry: tuple[str, ...] | None = None,
               own: bool | None = None) -> tuple[str, dict]:
    """The one rule for a (device, engine) pair without a fit (the replay's and every
    command's, through planner.serving_profile.resolve_serving): (profile name, values) =
    the datasheet defaults with what :func:`carried_over` gives over them, or ("datasheet",
    defaults) when it gives nothing."""
    base = defaults(hw, engine_profile)
    carried = carried_over(engine, params, hw, carry, own)
    if carried is None:
        return DATASHEET, Values(base)
    return carried[0], Values({**base, **carried[1]}, kernel_mix=carried[1].kernel_mix)
