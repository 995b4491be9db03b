"""Replay measured serving runs: predict each row's TTFT and TPOT and score the error.

The predictor is one function, :func:`predict`: measured runs (column arrays, see
:mod:`planner.measured`) and the parameter sets per (device, engine) in, arrays of
predicted TTFT and TPOT, a status per row and the profile name per row out. It makes ONE
call of the vectorized engine :func:`planner.cost.engine.evaluate` over all predictable
rows (no Python loop over rows), in the engine's serving mode: concurrency =
``batch_size``, devices = ``tp_size``. Each (device, engine) pair is one row of the
hardware table, with its own efficiencies, so fitted parameters apply per pair.

Each row runs under the closed-loop arrival pattern the benchmarks use (all requests
start together, a finished one is replaced at once: planner.cost.closed_loop.closed_loop),
with the scheduler facts of its engine (engines/*.yaml: token budget, chunked prefill,
mixed batches, running limit) and the named parameters of its (device, engine) pair
(:mod:`planner.serving_params`): the efficiencies enter the hardware table, the host time
per step the scheduler's steps, the wave synchrony and the request overhead the closed
loop (planner.cost.waves.smeared_waves). ``today=True`` gives the
engine as it was before the scheduler model (steady state, no host time).

Rows the engine cannot express yet (pipeline parallelism, expert or attention-data
parallelism on a dense model, a disaggregated row that gives neither worker counts nor its
total concurrency) are ``unsupported: <reason>``. Disaggregated rows without worker counts
take the smallest deployment of their layouts (planner.cost.disagg.derive_workers) with at
least the decode workers their concurrency implies (planner.measured_layouts.sweep_decode_workers);
tensor-parallel groups beyond one NVLink domain run their all-reduces hierarchically over
the network (planner.cost.interconnect), except the dev file's product-encoded layouts
(planner.measured_layouts.product_encoded). Each such assumption is the row's ``note``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner import serving_params as SP
from planner import serving_carry as SC
from planner.cost.api import PROFILE_COLUMNS
from planner.cost.context import kernels_per_pass
from planner.cost.serving import ARRIVAL_CODE
from planner.cost.waves import request_overhead_s
from planner.harness import resolve_recv_interval
from planner.measured import MeasuredRuns, mean_tokens
from planner.measured_layouts import moe_layout, sweep_decode_workers
from planner.plausibility import row_flags
from planner.replay_rows import DISAGG_COUNTS, LAYOUT_KEYS, disagg_value, has_columns, in_flight, read_rows

DATASHEET = SC.DATASHEET
TODAY = "engine-today"  # datasheet efficiencies, no host time, no wave wait: the engine as it is


@dataclass
class Prediction:
    ttft_s: np.ndarray      # NaN where not predicted
    tpot_s: np.ndarray
    status: np.ndarray      # "ok" or "unsupported: <reason>"
    profile: np.ndarray     # parameter set used per row ("" where not predicted)
    group: np.ndarray       # "device/engine" per row ("" where the device is unknown)
    device: np.ndarray      # catalog device name ("" where unknown)
    model: np.ndarray       # catalog model name (the CSV's name where unknown)
    note: np.ndarray = None  # per-row assumption the prediction made ("" where none)
    flags: list = None       # per row, why the datasheet rules the measurement out (planner.plausibility)


def predict(runs: MeasuredRuns, params: dict | None = None, *, today: bool = False) -> Prediction:
    """Predict every row. ``params`` maps "device/engine" (catalog device name) to
    ``(profile name, {parameter: value})``; pairs not in it take the datasheet defaults
    (or, with ``today=True``, the engine exactly as it is)."""
    return Prepared(runs).run(params, today=today)


class Prepared:
    """The parameter-free part of a replay, done once: names resolved, per-row status,
    dtypes and the engine's input columns. :meth:`run` evaluates it under a parameter set
    (one engine call), so a fit calls only that."""

    def __init__(self, runs: MeasuredRuns):
        from planner.cost.api import columns
        from planner.cost.tables import ModelTable

        self.runs = runs
        n = len(runs)
        rows = read_rows(runs)
        models, hws, profiles = rows.models, rows.hws, rows.profiles
        status, dev, mname, group = rows.status, rows.device, rows.model, rows.group
        wdt, adt, kdt, layout_note = rows.wdt, rows.adt, rows.kdt, rows.note
        tp, moe_tp, dp, ep = rows.tp, rows.moe_tp, rows.dp, rows.ep
        self.status, self.device, self.model, self.group = status, dev, mname, group
        self.layout_note = layout_note
        # rows whose deployment the prediction assumes (disaggregated without worker counts:
        # planner.cost.disagg.derive_workers): scored, but a fit leaves them out (serving_fit)
        self.assumed = np.array([runs.mode[i] == "disagg" and not has_columns(runs, DISAGG_COUNTS, i)
                                 for i in range(n)], dtype=bool)
        self.idx = idx = np.flatnonzero(status == "ok")
        self.gnames = sorted(set(group[idx].tolist()))
        self.hw = {g: hws[runs.system[idx[group[idx] == g][0]]] for g in self.gnames}
        if idx.size:
            mnames = sorted(set(mname[idx].tolist()))
            self.mt = ModelTable.build([models[runs.model[idx[mname[idx] == m][0]]] for m in mnames])
            m_idx = np.searchsorted(np.array(mnames, dtype=object), mname[idx])
            self.kernels = kernels_per_pass(self.mt.cols)[m_idx]  # one forward pass's, per predicted row
            self.g_idx = np.searchsorted(np.array(self.gnames, dtype=object), group[idx])
            self.dis = runs.mode[idx] == "disagg"
            side = {sd: {k: np.array([disagg_value(runs, f"{sd}_{k}", i) for i in idx]) for k in LAYOUT_KEYS}
                    for sd in ("prefill", "decode")}
            for sd, layout in side.items():  # each side's (tp, ep, attn_dp), read as the aggregated columns are
                layout["ep"], layout["attn_dp"] = moe_layout(layout["tp_size"], layout["attention_dp_size"],
                                                             layout["moe_tp_size"], layout["moe_ep_size"])
            self.sides = {sd: {"devices": v["tp_size"][self.dis].astype(np.int64), "ep": v["ep"][self.dis],
                               "attn_dp": v["attn_dp"][self.dis]} for sd, v in side.items()}
            # worker counts; NaN on a row without them: derived (planner.cost.disagg.derive_workers)
            counted = np.array([has_columns(runs, DISAGG_COUNTS, i) for i in idx[self.dis]], dtype=bool)
            self.workers = {sd: np.where(counted, [disagg_value(runs, f"{sd}_num_workers", i) for i in idx[self.dis]],
                                         np.nan) for sd in ("prefill", "decode")}
            # a disaggregated row's requests in flight: the decode batch on every decode worker
            self.C = in_flight(runs)[idx]
            # a countless row's decode workers: at least what its concurrency implies (planner.measured)
            dec = self.sides["decode"]
            self.min_decode = sweep_decode_workers(self.C[self.dis], dec["devices"] * dec["attn_dp"])
            ep, attn_dp = moe_layout(tp[idx], dp[idx], moe_tp[idx], ep[idx])
            # the benchmark's mean lengths: drawn per request where its client spreads them
            # (planner.harness.harness_range_ratio), the row's own otherwise
            self.isl = mean_tokens(runs.isl[idx], runs.range_ratio[idx])
            self.osl = mean_tokens(runs.osl[idx], runs.range_ratio[idx])
            self.cols = columns(len(idx), model=m_idx, hardware=self.g_idx, devices=np.maximum(tp[idx], 1).astype(np.int64),
                                batch=1, concurrency=self.C.astype(np.int64), prompt_len=self.isl.astype(np.int64),
                                gen_len=self.osl.astype(np.int64), samples=1, weight_dtype=wdt[idx].astype(str),
                                act_dtype=adt[idx].astype(str), kv_dtype=kdt[idx].astype(str), kv_budget=0,
                                prefix_sharing=False, ep=ep, attn_dp=attn_dp)
            self.G = runs.osl[idx]
            self._pipeline(runs, idx, models, hws, adt)
            # the scheduler facts of each row's engine (engines/*.yaml), a closed loop at C
            self.engines = {e: profiles[e] for e in sorted(set(runs.engine[idx].tolist()))}
            # each as the engine configures itself on the row's device (its defaults by GPU class)
            eng = [self.engines[e].on_device(hws[s]) for e, s in zip(runs.engine[idx], runs.system[idx])]
            self.cols.update(
                arrival=np.full(len(idx), ARRIVAL_CODE["closed"]),
                rate=np.zeros(len(idx)),
                token_budget=np.array([e.token_budget for e in eng], dtype=np.int64),
                max_running=np.array([e.max_running for e in eng], dtype=np.int64),
                chunked=np.array([int(e.chunked_prefill) for e in eng], dtype=np.int64),
                mixed=np.array([int(e.mixed_batches) for e in eng], dtype=np.int64),
                host_step_s=np.array([e.host_step_s for e in eng], dtype=float),
                dp_rank_budget=np.array([int(e.dp_rank_budget) for e in eng], dtype=np.int64),
                adp_balance_iters=np.array([e.adp_balance_timeout_iters for e in eng], dtype=np.int64),
                range_ratio=runs.range_ratio[idx],  # the benchmark's length spread (planner.measured)
                spec_tokens=runs.spec_tokens[idx],  # MTP drafts per step where the row says (planner.measured)
                recv_interval=self._recv_interval(runs, idx, hws),
                spec_accept=np.array([e.spec_acceptance for e in eng], dtype=float),
                **{key: np.array([e.kv_columns()[key] for e in eng], dtype=float)
                   for key in ("kv_reserve", "kv_fraction", "kv_of_free")})
        # rows their stated deployment cannot produce on the datasheet (planner.plausibility):
        # predicted and scored like the others, never fitted (planner.serving_fit), listed by validate
        self.plausibility = row_flags(self)
        self.flagged = self.plausibility.flagged

    def _recv_interval(self, runs: MeasuredRuns, idx, hws) -> np.ndarray:
        """Each row's scheduler poll interval: its own, or the harness's by device and
        requests in flight (planner.harness.resolve_recv_interval: on a Blackwell-class part,
        planner.specs.Hardware.blackwell_class)."""
        blackwell = np.array([hws[s].blackwell_class for s in runs.system[idx]], dtype=bool)
        return resolve_recv_interval(runs.recv_interval[idx], runs.recv_by_harness[idx], self.C, blackwell)

    def _pipeline(self, runs: MeasuredRuns, idx, models, hws, adt) -> None:
        """Aggregated pipeline-parallel rows (``pp_size`` > 1), as planner.cost.api's
        closed-loop pipeline (``estimate(pp=, arrival="closed")``): one microbatch of
        ``ceil(C / pp)`` clients on the tensor-parallel group (its concurrency column),
        ``n_mb = min(pp, ceil(C / micro))`` microbatches at once, and each step's
        ``pp - 1`` stage-to-stage sends of the microbatch's hidden states (its prompt's at
        prefill; planner.cost.layout.send_coefficients). The running set and the pipeline
        formulas are applied in :meth:`run` (they need the hardware table)."""
        from planner.cost.layout import send_coefficients
        from planner.dtypes import BITS

        pp = np.where(runs.mode[idx] == "agg", np.maximum(runs.pp[idx], 1.0), 1.0)
        self.pp_rows = pp > 1
        C = self.C.astype(float)
        micro = np.ceil(C / pp)
        self.pp = pp
        self.n_mb = np.minimum(pp, np.ceil(C / np.maximum(micro, 1.0)))
        lat_s, per_token_s = np.zeros(idx.size), np.zeros(idx.size)
        for j in np.flatnonzero(self.pp_rows):  # the rows' (device, model, dtype) link figures; not a hot path
            i = idx[j]
            lat_s[j], per_token_s[j] = send_coefficients(hws[runs.system[i]], models[runs.model[i]].hidden_size,
                                                         BITS[adt[i]] / 8.0)
        with np.errstate(invalid="ignore"):
            self.dec_send_s = np.where(self.pp_rows, (pp - 1) * (lat_s + micro * per_token_s), 0.0)
            self.pre_send_s = np.where(self.pp_rows, (pp - 1) * (lat_s + micro * self.isl * per_token_s), 0.0)
        self.cols["concurrency"] = np.where(self.pp_rows, micro, self.C).astype(np.int64)

    def _stage_running(self, cols: dict, ht, rows: np.ndarray, pp, n_mb, today: bool) -> None:
        """The running set of a pipeline row's microbatch (planner.cost.api._closed_microbatch):
        the engine's max_running capped by the share ``1 / n_mb`` of the requests a STAGE's
        KV memory holds (planner.cost.layout.pipeline_memory), applied as the cap (no KV
        column left). The steady state (``today``) has no cap, as the API's."""
        from planner.cost.context import Ctx
        from planner.cost.layout import microbatch_running

        if today or not rows.any():
            return
        sub = {key: v[rows] for key, v in cols.items()}
        P, G = sub["prompt_len"].astype(float), sub["gen_len"].astype(float)
        with np.errstate(all="ignore"):
            running = microbatch_running(Ctx(sub, self.mt, ht), pp[rows], n_mb[rows], sub["max_running"], 1.0, P, G,
                                         False, sub["kv_reserve"], sub["kv_fraction"], sub["kv_of_free"])
        cols["max_running"] = cols["max_running"].copy()
        cols["kv_reserve"] = cols["kv_reserve"].copy()
        cols["max_running"][rows] = running.astype(np.int64)
        cols["kv_reserve"][rows] = -1.0

    def parameter_sets(self, params: dict | None, today: bool = False) -> list[tuple[str, dict]]:
        """(profile name, values) per group, in :attr:`gnames` order. A pair without
        parameters takes its device's datasheet plus, when other devices of its engine
        are fitted, the carried parameters (serving_carry.unmeasured)."""
        params = params or {}
        sets = []
        for g in self.gnames:
            hw = self.hw[g]
            if g in params:
                sets.append(params[g])
            elif today:
                sets.append((TODAY, {**SP.defaults(hw), "step_host_s": 0.0}))
            else:  # the rule every command follows for an unmeasured pair
                sets.append(SC.unmeasured(hw, g.split("/", 1)[1], self.engine_of(g), params))
        return sets

    def engine_of(self, group: str):
        """The engine profile of a "device/engine" pair."""
        return self.engines[group.split("/", 1)[1]]

    def run(self, params: dict | None = None, *, today: bool = False, only: str | None = None) -> Prediction:
        """Predict under a parameter set: one engine call over the predictable rows (only
        the rows of the pair ``only``, when given: what a fit of that pair needs)."""
        from planner.cost.engine import evaluate
        from planner.cost.tables import HardwareTable

        n = len(self.runs)
        ttft = np.full(n, np.nan)
        tpot = np.full(n, np.nan)
        status = self.status.copy()
        profile = np.full(n, "", dtype=object)
        note = self.layout_note.copy()
        sel = np.ones(self.idx.size, dtype=bool) if only is None else self.group[self.idx] == only
        idx = self.idx[sel]
        if idx.size:
            sets = self.parameter_sets(params, today)
            effs = [SP.efficiency(self.hw[g], v, name) for g, (name, v) in zip(self.gnames, sets)]
            ht = HardwareTable.build([self.hw[g] for g in self.gnames], effs)
            g_idx = self.g_idx[sel]

            def pick(key, absent=None):  # each row's set's value (``absent``: where a set may lack it)
                return np.array([v[key] if absent is None else v.get(key, absent) for _, v in sets])[g_idx]

            cols = {key: v[sel] for key, v in self.cols.items()}
            # the sets' serving columns (planner.cost.api.PROFILE_COLUMNS), a parameter a profile may
            # lack (SP.OPTIONAL) at 0; the engine as it was (``today``) takes the host times alone
            for key, col in PROFILE_COLUMNS.items():
                if not today or col in ("host_step_s", "host_request_s"):
                    cols[col] = pick(key, 0.0 if key in SP.OPTIONAL else None)
            if today:  # the engine as it was: steady-state serving
                cols["arrival"] = np.full(idx.size, ARRIVAL_CODE["steady"])
            dis = self.dis[sel]
            agg = {key: v[~dis] for key, v in cols.items()}
            pp, n_mb = self.pp[sel][~dis], self.n_mb[sel][~dis]
            piped = self.pp_rows[sel][~dis]
            self._stage_running(agg, ht, piped, pp, n_mb, today)
            r = evaluate(agg, self.mt, ht) if (~dis).any() else {"tpot_s": [], "ttft_s": []}
            if piped.any():  # the pipeline's TTFT and TPOT (planner.cost.layout.pipeline_rows)
                from planner.cost.layout import pipeline_rows

                with np.errstate(all="ignore"):
                    pr = pipeline_rows(np, {k: np.asarray(v)[piped] for k, v in r.items()}, pp[piped],
                                       n_mb[piped], self.dec_send_s[sel][~dis][piped],
                                       self.pre_send_s[sel][~dis][piped])
                r = {"tpot_s": np.array(r["tpot_s"], dtype=float), "ttft_s": np.array(r["ttft_s"], dtype=float)}
                r["tpot_s"][piped], r["ttft_s"][piped] = pr["tpot_s"], pr["ttft_s"]
            tpot[idx[~dis]] = r["tpot_s"]
            ttft[idx[~dis]] = r["ttft_s"]
            if dis.any():  # prefill and decode workers apart (planner.cost.disagg), no waves to smear
                from planner.cost.disagg import disaggregated_rows

                d_sel = sel[self.dis]
                side = {sd: {k: v[d_sel] for k, v in self.sides[sd].items()} for sd in self.sides}
                d = disaggregated_rows({key: v[dis] for key, v in cols.items()}, self.mt, ht, prefill=side["prefill"],
                                       decode=side["decode"], concurrency=self.C[sel][dis],
                                       prefill_workers=self.workers["prefill"][d_sel],
                                       decode_workers=self.workers["decode"][d_sel],
                                       min_decode_workers=self.min_decode[d_sel],
                                       decode_running=np.where(np.isfinite(self.workers["decode"][d_sel]),
                                                               self.C[sel][dis], np.nan))
                tpot[idx[dis]] = d["tpot_s"]
                ttft[idx[dis]] = d["ttft_s"] + request_overhead_s(
                    cols["request_overhead_s"][dis], cols["request_overhead_s_per_kernel"][dis],
                    self.kernels[sel][dis])
                for j, i in enumerate(idx[dis]):
                    if d["derived"][j]:
                        note[i] = (f"workers derived (README 'Measured serving runs'): {d['prefill_workers'][j]:.0f} "
                                   f"prefill, {d['decode_workers'][j]:.0f} decode, "
                                   f"{self.C[sel][dis][j] / d['decode_workers'][j]:.4g} requests per decode worker")
            profile[idx] = np.array([name for name, _ in sets], dtype=object)[g_idx]
            bad = ~(np.isfinite(tpot[idx]) & np.isfinite(ttft[idx]))
            if bad.any():
                status[idx[bad]] = "unsupported: the engine gave no finite time"
                ttft[idx[bad]] = tpot[idx[bad]] = np.nan
                profile[idx[bad]] = note[idx[bad]] = ""
        return Prediction(ttft, tpot, status, profile, self.group, self.device, self.model, note,
                          self.plausibility.flags)
