"""Fit the named serving parameters (planner.serving_params) of each (device, engine)
pair on measured runs, by a robust least-squares fit of log(predicted / measured)
(scipy.optimize.least_squares, soft-L1 loss at scale :data:`F_SCALE`: a row far off, e.g. a layout the
engine models badly, pulls the fit like an absolute error, not a squared one), the TTFT log ratios
weighted by :data:`TTFT_WEIGHT` against TPOT's. Loss, scale and weight were chosen by
leave-one-model-out cross-validation among a fixed grid (docs/serving-experiments.md, Round 17 (S2)).

:func:`fit_all` fits every pair at once (device-scoped and engine-scoped parameters,
:attr:`planner.serving_params.Param.scope`), in one pooled least-squares fit.

The fit runs in a box a little wider than the physical ranges, then refuses a result
outside them (an efficiency above 1, a host time below 0, ...) with a message naming the
parameter and why: a value at an unphysical edge means the model misses a physical
effect, and the fit must not hide it in a constant. ``physical=True`` fits inside the
physical ranges instead and reports the parameters that end at a limit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner import serving_params as SP
from planner.errors import InputError
from planner.measured import MeasuredRuns
from planner.replay import Prepared

# Loss, scale and TTFT weight: the best of a fixed grid (soft_l1 / huber / cauchy / arctan x scale 0.05 / 0.1 /
# 0.2, then a TTFT weight of 0.5) by leave-one-model-out, docs/serving-experiments.md Round 17 (S2): LOMO TTFT +
# TPOT 47.52 -> 46.92 points, LODO 53.59 -> 53.28 (was soft_l1, 0.1, weight 1); then the weight 0.4 that S2
# wrote down beforehand as the next candidate (the ratio of issue 11's two targets, TPOT 10% / TTFT 25%: each
# residual in units of its target), Round 17 (integrator): LOMO 46.97 -> 46.58, LODO 53.67 -> 53.23
LOSS = "soft_l1"
F_SCALE = 0.2            # (weighted) residuals, log ratios, beyond ~20% count linearly, not squared
TTFT_WEIGHT = 0.4        # TTFT log ratios weigh 10 / 25 of TPOT's: the targets' ratio (TTFT's spread is the wider)
MIN_ROWS = 8             # rows with both measurements a pair needs to be fitted
FITTED = ("memory_efficiency", "compute_efficiency", "step_host_s", "step_host_s_per_request", "wave_sync",
          "request_overhead_s", "request_overhead_s_per_kernel", "kernel_time_s", "link_efficiency",
          "gemm_rows_half")  # the last: Round 25 (leave-one-model-out 30.89% / 12.42% -> 30.54% / 12.29%)
# Parameters a fit takes only when asked (``extra=``): the routed experts' stream ceiling, whose
# pooled fit did not pass the keep rule on the dev file (leave-one-model-out TPOT 14.64% ->
# 15.31%: docs/serving-experiments.md, Round 14 (S1)); unfitted it keeps its inactive default.
EXPERT_CEILING = "expert_stream_bytes_per_s"
OPT_IN = (EXPERT_CEILING,)
# the search box: wider than the physical range, so that an unphysical optimum is seen
# (and refused) rather than silently clipped; lower ends keep the engine finite
BOX = {"memory_efficiency": (0.02, 2.0), "compute_efficiency": (0.02, 2.0), "step_host_s": (0.0, 0.1),
       "step_host_s_per_request": (0.0, 1e-3),
       "wave_sync": (0.0, 1.5), "request_overhead_s": (0.0, 2.0),
       "request_overhead_s_per_kernel": (0.0, 2e-3), "kernel_time_s": (0.0, 1e-4),
       "link_efficiency": (0.02, 2.0), EXPERT_CEILING: (0.2e12, 40e12), "gemm_rows_half": (0.0, 1024.0)}
SCALE = {"memory_efficiency": 1.0, "compute_efficiency": 1.0, "step_host_s": 1e-3, "step_host_s_per_request": 1e-6,
         "wave_sync": 1.0,
         "request_overhead_s": 1e-2, "request_overhead_s_per_kernel": 1e-5, "kernel_time_s": 1e-6,
         "link_efficiency": 1.0, EXPERT_CEILING: 1e12, "gemm_rows_half": 10.0}


def fit_start(hw, engine=None, names=FITTED) -> dict:
    """The start of a fit of ``names``: the datasheet defaults, with the experts' stream
    ceiling, when fitted, inside the range where it acts, half the device's datasheet
    bandwidth x its memory fraction (a ceiling above the rate it caps has no gradient: a
    fit started there never moves it)."""
    v = SP.defaults(hw, engine)
    if "gemm_rows_half" in names:  # a start inside its range (0 is its lower bound)
        v = {**v, "gemm_rows_half": 16.0}
    if EXPERT_CEILING not in names:
        return v
    return {**v, EXPERT_CEILING: 0.5 * float(hw.mem_bandwidth_gbps) * 1e9 * v["memory_efficiency"]}


def _moe_rows(prep: Prepared) -> np.ndarray:
    """Rows of a model with routed experts (the only ones the experts' ceiling acts on)."""
    from planner.catalog import load_model

    def moe(name: str) -> bool:
        try:
            return load_model(name).is_moe
        except InputError:
            return False

    names = {n: moe(n) for n in set(prep.model.tolist())}
    return np.array([names[n] for n in prep.model], dtype=bool)


def _unset_unseen_ceiling(vals: dict, hw, seen: bool) -> dict:
    """A ceiling no fitted row reaches (no MoE row among them) is not measured: the default."""
    return vals if seen else {**vals, EXPERT_CEILING: SP.defaults(hw)[EXPERT_CEILING]}


@dataclass
class GroupFit:
    group: str
    values: dict  # a planner.serving_params.Values: its gemm_mix the file's (:func:`gemm_mix`)
    rows: int
    rms_log_ttft: float
    rms_log_tpot: float
    cost: float
    problems: list
    at_limit: list  # parameters that ended at their physical limit (physical=True)


def gemm_mix(prep: Prepared) -> dict[str, int]:
    """Compute dtype -> predicted rows of the measured file on a GEMM path NVIDIA's kernel tables
    hold, weight-only rows left out (planner.kernel_paths.gemm_mix): the mix the fitted kernel
    times are read as a mean over when one is carried to a device with tables (planner.serving_params
    :class:`~planner.serving_params.Values`). Counted on the file a pooled fit reads, every pair's
    rows and the rows ``use`` leaves out included (the round 15 reading: a pair's own rows or the
    fitted rows alone are a model change to judge with the keep rule); recorded with the fit, so a
    refit keeps it true (a serving profile's ``provenance.gemm_mix``)."""
    from planner.dtypes import DTYPES  # the engine's dtype codes index it (planner.cost.tables.DTYPE_CODE)
    from planner.kernel_paths import gemm_mix as count

    if not prep.idx.size:
        return {}
    return count(*([DTYPES[c] for c in prep.cols[k].tolist()] for k in ("weight_dtype", "act_dtype")))


def _box(k: str, physical: bool) -> tuple[float, float]:
    if not physical:
        return BOX[k]
    p = SP.BY_NAME[k]
    return max(p.lo, BOX[k][0]), min(p.hi, BOX[k][1])


def fit_all(runs: MeasuredRuns, groups=None, *, strict: bool = True, physical: bool = False,
            prep: Prepared | None = None, use: np.ndarray | None = None, extra: tuple[str, ...] = ()
            ) -> dict[str, GroupFit]:
    """Fit every (device, engine) pair with enough rows, in ONE pooled fit: the
    device-scoped parameters (achieved efficiencies) are shared by every engine on a
    device, the engine-scoped ones (host time, wave synchrony, request overhead) by every
    device of an engine, the die- and fabric-scoped ones like the device-scoped ones (by every
    device of one die / fabric instead with planner.serving_params.TIE_SILICON, measured and
    off; :attr:`planner.serving_params.Param.scope`, :func:`planner.serving_params.owner`). Leave-one-model-out
    cross-validation chose this over one free set per pair (README "Measured serving
    runs": the pooled fit of the first five had 13 parameters on the dev file instead of
    30, and predicted a left-out model better; the kernel time and link efficiency joined
    as device parameters, which cross-validated better than one value shared by H100 and
    H200). Only the rows in the mask ``use`` count, if given, and never the rows whose
    deployment the replay assumed (disaggregated rows without worker counts: a fit on
    them would tune the parameters to the assumption), nor the rows their stated deployment
    cannot produce on the datasheet (planner.plausibility: a physical parameter fitted to
    them would absorb a prefix cache or an unrecorded draft model). With
    ``strict`` a result outside the physical ranges raises InputError naming the
    parameter and why. ``extra``: :data:`OPT_IN` parameters to fit as well (the experts'
    stream ceiling: one value per die, :attr:`planner.serving_params.Param.tied`)."""
    from scipy.optimize import least_squares

    names = FITTED + tuple(extra)
    prep = prep or Prepared(runs)
    # rows predicted on an assumed deployment (planner.replay.Prepared.assumed) and rows the datasheet
    # rules out as written (Prepared.flagged, planner.plausibility) are scored, not fitted
    base_ok = (prep.status == "ok") & (runs.measured_tpot_s > 0) & (runs.measured_ttft_s > 0) & ~prep.assumed \
        & ~prep.flagged
    if use is not None:
        base_ok &= use
    fitted = [g for g in (groups or prep.gnames) if (base_ok & (prep.group == g)).sum() >= MIN_ROWS]
    if not fitted:
        return {}
    mask = base_ok & np.isin(prep.group, fitted)
    owners = {(g, k): SP.owner(k, prep.hw[g], g.split("/", 1)[1]) for g in fitted for k in names}
    slots = [(k, o) for k in names for o in sorted({owners[(g, k)] for g in fitted})]

    def key_of(g: str, k: str) -> str:
        return owners[(g, k)]

    start = {g: fit_start(prep.hw[g], prep.engine_of(g), names) for g in fitted}
    x0 = np.array([next(start[g][k] for g in fitted if key_of(g, k) == o) / SCALE[k] for k, o in slots])
    lo = np.array([_box(k, physical)[0] / SCALE[k] for k, _ in slots])
    hi = np.array([_box(k, physical)[1] / SCALE[k] for k, _ in slots])

    def values(x) -> dict:
        by = {(k, o): v * SCALE[k] for (k, o), v in zip(slots, x)}
        return {g: ("fit", {**start[g], **{k: by[(k, key_of(g, k))] for k in names}}) for g in fitted}

    def residuals(x, m=mask):
        pred = prep.run(values(x))
        r = np.concatenate([TTFT_WEIGHT * np.log(pred.ttft_s[m] / runs.measured_ttft_s[m]),
                            np.log(pred.tpot_s[m] / runs.measured_tpot_s[m])])
        return np.where(np.isfinite(r), r, 10.0)

    res = least_squares(residuals, np.clip(x0, lo, hi), bounds=(lo, hi), loss=LOSS, f_scale=F_SCALE,
                        diff_step=1e-3, max_nfev=400)
    vals = {g: {k: (0.0 if SP.BY_NAME[k].unit == "s" and abs(v) < 1e-9 else float(v)) for k, v in v_.items()}
            for g, (_, v_) in values(res.x).items()}  # solver dust
    if EXPERT_CEILING in names:
        moe = mask & _moe_rows(prep)
        vals = {g: _unset_unseen_ceiling(v, prep.hw[g], any((moe & (prep.group == h)).any() for h in fitted
                                                            if key_of(h, EXPERT_CEILING) == key_of(g, EXPERT_CEILING)))
                for g, v in vals.items()}
    pred = prep.run({g: ("fit", v) for g, v in vals.items()})
    mix = gemm_mix(prep)
    out = {}
    for g in fitted:
        m = mask & (prep.group == g)
        rt = np.log(pred.ttft_s[m] / runs.measured_ttft_s[m])
        rp = np.log(pred.tpot_s[m] / runs.measured_tpot_s[m])
        problems = SP.check(vals[g], f"{g}: ")
        at_limit = [k for k in names if physical and SP.BY_NAME[k].hi < BOX[k][1]
                    and vals[g][k] >= SP.BY_NAME[k].hi - 1e-6]
        out[g] = GroupFit(g, SP.Values(vals[g], gemm_mix=mix), int(m.sum()), float(np.sqrt(np.mean(rt ** 2))),
                          float(np.sqrt(np.mean(rp ** 2))), float(res.cost), problems, at_limit)
        if strict and problems:
            raise InputError("refusing the fit: " + problems[0] + " (a physical effect is missing from the model "
                             "for these rows)", file=runs.file)
    return out


def as_params(fits: dict[str, GroupFit], name: str = "fitted") -> dict:
    """The replay's parameter mapping from fits."""
    return {g: (name, f.values) for g, f in fits.items()}
