"""The time of one continuous-batching step of any composition: ``d`` decodes at a mean
context plus ``p`` prefill-chunk tokens, from the engine's roofline classes.

A step is one forward pass over ``n = d + p`` tokens (README "Cost model"):

* the layers' GEMMs, the LM head (for the ``n_logit`` positions that need logits: every
  decode and the last token of each prompt that completes) and the elementwise kernels,
  as :func:`planner.cost.dense.dense_kernels` times them for ``n`` rows;
* the all-reduces of tensor parallelism for ``n`` tokens and the kernel launches;
* attention, one roofline over the decodes' KV reads (``d x context`` tokens per layer)
  and the prefill chunks' causal attention (a chunk covering prompt positions a+1..b
  attends ``sum(a+1..b)`` keys) and KV writes;
* then the calibrated end-to-end scale, and the engine's host time per step
  (scheduling, sampling, detokenization; planner.engine_profiles) on top.

The same functions serve the analytic scheduler model (arrays over configurations,
planner.cost.serving) and the discrete-event simulator (one configuration, arrays over
steps, planner.cost.simulate), so the two can only differ in how they schedule.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from types import SimpleNamespace

import numpy as np

from planner.cost.context import Ctx
from planner.cost.expert_parallel import (busiest_rank_excess_tokens, prompt_rank_excess_s, rank_local_prefill_s,
                                          whole_prompt_len)
from planner.cost.interconnect import allreduce_s
from planner.cost.dense import dense_kernels
from planner.cost.roofline import launch_overhead_s
from planner.cost.spec_decode import draft_share, head_s, tokens_per_step, verify_rows

# Python-float arithmetic for the simulator's per-step terms (busiest_rank_excess_tokens' xp)
_FLOATS = SimpleNamespace(maximum=max, minimum=min)
# up to this many steps a stretch is timed step by step in Python floats (StepTable.time):
# numpy's ~1 us per call over the ~20 operations of StepTable.times costs more there
SCALAR_STEPS = 32


def linear_time(x: Ctx, n_tok, n_logit):
    """GEMMs + LM head + elementwise + all-reduce + launches for one pass of ``n_tok``
    tokens of which ``n_logit`` need logits (s, before the end-to-end scale)."""
    n = np.maximum(n_tok, 1.0)
    return dense_kernels(x, n, 1.0, np.maximum(n_logit, 1.0))[0] + allreduce_s(x, n, 1.0) + launch_overhead_s(x, 1.0)


def attention_time(x: Ctx, d, dec_ctx, p, pre_ctx, queries=None):
    """Attention of ``d`` decodes at mean context ``dec_ctx`` and ``p`` prefill tokens at
    mean causal context ``pre_ctx`` in one step: one roofline (compute vs KV traffic).
    ``queries``: query tokens per decode over its cached context (None: 1; ``1 + m`` when
    speculative drafts are verified, planner.cost.spec_decode): the compute scales with
    them, the KV traffic does not."""
    M, t = x.model, x.devices
    d, p = d / x.attn_dp, p / x.attn_dp  # attention data parallel: a group's own share
    ng, ns = M["global_layers"], M["sliding_layers"]
    L = M["layers"]
    kv_tok = x.kv_bytes_per_token_layer / x.kv_shard  # bytes per cached token per layer per device
    dec_keys = d * (ng * np.minimum(dec_ctx, x.kv_cap_global) + ns * np.minimum(dec_ctx, x.kv_cap_sliding))
    pre_keys = p * (ng * pre_ctx + ns * np.minimum(pre_ctx, M["window"]))
    q_keys = dec_keys if queries is None else queries * dec_keys  # the default: no extra array pass
    F = q_keys * M["attn_dec"] / t + pre_keys * M["attn_pre"] / t
    # linear-attention layers (planner.cost.recurrent; d and p are already a group's share)
    F = F + (d + p) * x.linear_flops_per_token
    tc = (F + L * x.attn_offset_flops) * x.s_per_attn_flop
    tm = ((dec_keys * kv_tok + 2.0 * d * x.state_bytes_per_seq + L * x.hw["mem_offset_bytes"]) * x.s_per_kv_byte
          + 2.0 * p * M["kv_layers"] * kv_tok * x.s_per_byte)
    ov = x.hw["overlap"]
    return ov * np.maximum(tc, tm) + (1.0 - ov) * (tc + tm)


def step_time(x: Ctx, d, p, n_logit, dec_ctx, pre_ctx, host_s=0.0):
    """Wall time of one step (s): device time times the calibrated scale, plus host time:
    the step's own ``host_s`` and ``x.host_request_s`` per request it decodes (the engine's
    per-request work each step that the device does not hide: walking the running
    requests to schedule them and build the step's inputs, and turning each request's new
    token into output -- detokenizing, stop checks, a streamed chunk; a serving profile's
    fitted ``step_host_s_per_request``, planner.serving_params).
    With speculative decoding (``x.spec``): the time per output token of a decode-only
    step (:func:`spec_iteration_s`)."""
    if x.spec:
        return spec_iteration_s(x, d, p, n_logit, dec_ctx, pre_ctx, host_s)
    dev = linear_time(x, d + p, n_logit) + attention_time(x, d, dec_ctx, p, pre_ctx)
    if x.layout_beyond_tp:  # attention data parallel: a prompt is one rank's (planner.cost.expert_parallel)
        dev = dev + prompt_rank_excess_s(x, p, whole_prompt_len(pre_ctx), pre_ctx)
    return dev * x.hw["time_scale"] + host_s + x.host_request_s * d


def spec_iteration_s(x: Ctx, d, p, n_logit, dec_ctx, pre_ctx, host_s=0.0):
    """One iteration with ``m = x.spec_tokens`` MTP drafts per decode (planner.cost.spec_decode):
    ``m`` draft passes of the one-layer MTP module over the ``d`` decodes (a layer's share of
    a ``d``-row pass and its attention, plus the LM head for ``d`` rows), then the
    verification pass over ``d (1 + m)`` decode rows and the ``p`` prompt tokens (attention
    compute for ``1 + m`` queries per decode, the cached context read once), host time
    once. A decode-only step returns the iteration over ``tau`` (tokens gained per request,
    :func:`planner.cost.spec_decode.tokens_per_step`); a step with prompt tokens returns
    the whole iteration. ``m = 0`` rows give :func:`step_time`'s value exactly."""
    xp = x.xp
    m = x.spec_tokens
    q = 1.0 + m
    rows = verify_rows(d, m)
    verify = linear_time(x, rows + p, n_logit + d * m) + attention_time(x, d, dec_ctx, p, pre_ctx, queries=q)
    if x.layout_beyond_tp:
        verify = verify + prompt_rank_excess_s(x, p, whole_prompt_len(pre_ctx), pre_ctx)
    d1 = xp.maximum(d, 1.0)
    # a layer's share of a d-row pass (its one-row LM head taken out) and of its attention, plus the head for d rows
    layer = (linear_time(x, d1, 1.0) - head_s(x, 1.0) + attention_time(x, d1, dec_ctx, 0.0, 0.0)) \
        * draft_share(x.model["layers"])
    draft = xp.where(d > 0, m * (layer + head_s(x, d1)), 0.0)
    tau = xp.values(tokens_per_step(m, x.spec_accept), x.dt)  # in the evaluation's float type
    per = xp.where(p > 0, 1.0, tau)
    return ((verify + draft) * x.hw["time_scale"] + host_s + x.host_request_s * d) / per


class StepTable:
    """Step times of ONE configuration (row 0 of ``x``) for the simulator: the pass time
    tabulated at every integer token count (the head's part by logit count, exact since
    the engine times the LM head as a kernel of its own); attention from the same
    coefficients as :func:`attention_time`, held as Python floats so that one step costs
    microseconds (a test checks ``time`` against :func:`step_time`)."""

    def __init__(self, x: Ctx, max_tokens: int, host_s: float, prompt_len: float | None = None):
        n = np.arange(max_tokens + 1, dtype=float)
        self.base = np.asarray(linear_time(x, n, 0.0), dtype=float).ravel()
        head1 = np.asarray(linear_time(x, 1.0, n), dtype=float).ravel()
        self.head = head1 - head1[0]
        self._base, self._head = self.base.tolist(), self.head.tolist()  # the same floats, read per step
        self._x = x  # for :meth:`prompt_shave`
        f = lambda v: float(np.asarray(v, dtype=float).ravel()[0])  # noqa: E731
        M, H = x.model, x.hw
        self.ng, self.ns, L = f(M["global_layers"]), f(M["sliding_layers"]), f(M["layers"])
        self.cap_g, self.cap_s, self.window = f(x.kv_cap_global), f(x.kv_cap_sliding), f(M["window"])
        kv_tok = f(x.kv_bytes_per_token_layer / x.kv_shard)
        t, a = f(x.devices), f(x.attn_dp)  # a: attention data parallel groups (their own share each)
        ax, bx_att, bx = f(x.s_per_attn_flop), f(x.s_per_kv_byte), f(x.s_per_byte)
        self.f_dec, self.f_pre = f(M["attn_dec"]) / t * ax / a, f(M["attn_pre"]) / t * ax / a
        self.c0 = L * f(x.attn_offset_flops) * ax
        self.m_dec, self.m0 = kv_tok * bx_att / a, L * f(H["mem_offset_bytes"]) * bx_att
        self.m_pre = 2.0 * f(M["kv_layers"]) * kv_tok * bx / a
        # linear-attention layers: FLOPs per token (decode or prefill), state traffic per decode
        self.f_rec = f(x.linear_flops_per_token) * ax / a
        self.m_rec = 2.0 * f(x.state_bytes_per_seq) * bx_att / a
        self.ov = f(H["overlap"])
        self.scale = f(H["time_scale"])
        self.host_s = host_s
        self.host_request_s = f(x.host_request_s)  # per decoding request (step_time)
        # attention data parallel: the busiest rank's whole prompt (step_time's term), linear in
        # the excess tokens and their causal context (planner.cost.expert_parallel)
        self.a, self.prompt_len = a, prompt_len
        self.rank_tok_s = f(rank_local_prefill_s(x, 1.0, 0.0)) if a > 1.0 else 0.0
        self.rank_key_s = f(rank_local_prefill_s(x, 1.0, 1.0)) - self.rank_tok_s if a > 1.0 else 0.0


    def prompt_shave(self, P: float, w: int) -> tuple[float, float]:
        """What a decode's context drops where the engine reads a ``P``-token prompt of a
        request's ``w`` sequences once a step (planner.cost.passes.shared_prompt_shave): with
        the request alone in the step, and among others (0 where it is read per sequence)."""
        from planner.cost.passes import shared_prompt_shave

        alone, many = (float(np.asarray(shared_prompt_shave(self._x, float(P), float(w), n)).ravel()[0])
                       for n in (1.0, 2.0))
        return alone, many

    def _rank_excess_s(self, xp, p, pre_ctx):
        """step_time's busiest-rank term (planner.cost.expert_parallel.prompt_rank_excess_s)
        from the tabulated coefficients; the prompt is the simulated one where given."""
        P = self.prompt_len if self.prompt_len is not None else whole_prompt_len(pre_ctx)
        return busiest_rank_excess_tokens(xp, self.a, p, P) * (self.rank_tok_s + self.rank_key_s * pre_ctx)

    def times(self, d, p, n_logit, dec_ctx, pre_ctx):
        """Step times (s) of d decodes at mean context ``dec_ctx`` and p prefill tokens at mean
        causal context ``pre_ctx`` (``n_logit`` positions with logits): :func:`step_time`'s formula
        from the tabulated coefficients, ``(linear(d + p, n_logit) + overlap x max(tc, tm) +
        (1 - overlap)(tc + tm)) x time_scale + host_s``, attention compute ``tc`` and memory ``tm``
        linear in the keys attended (``min(ctx, cap)`` per full / sliding layer); arguments scalars
        or arrays, ``d``, ``p``, ``n_logit`` integer-valued."""
        dec_keys = d * (self.ng * np.minimum(dec_ctx, self.cap_g) + self.ns * np.minimum(dec_ctx, self.cap_s))
        pre_keys = p * (self.ng * pre_ctx + self.ns * np.minimum(pre_ctx, self.window))
        tc = dec_keys * self.f_dec + pre_keys * self.f_pre + self.c0 + (d + p) * self.f_rec
        tm = dec_keys * self.m_dec + self.m0 + p * self.m_pre + d * self.m_rec
        att = self.ov * np.maximum(tc, tm) + (1.0 - self.ov) * (tc + tm)
        lin = self.base[np.asarray(d + p).astype(np.intp)] + self.head[np.asarray(n_logit).astype(np.intp)]
        if self.a > 1.0:
            lin = lin + self._rank_excess_s(np, np.asarray(p, dtype=float), pre_ctx)
        return (lin + att) * self.scale + self.host_s + self.host_request_s * d

    def time(self, d: int, p: int, n_logit: int, dec_ctx: float, pre_ctx: float) -> float:
        """One step's time (s), in plain Python arithmetic (min / max as comparisons: the
        same values, without the builtins' call)."""
        cap_g, cap_s, window = self.cap_g, self.cap_s, self.window
        dec_keys = d * (self.ng * (dec_ctx if dec_ctx <= cap_g else cap_g)
                        + self.ns * (dec_ctx if dec_ctx <= cap_s else cap_s))
        pre_keys = p * (self.ng * pre_ctx + self.ns * (pre_ctx if pre_ctx <= window else window))
        tc = dec_keys * self.f_dec + pre_keys * self.f_pre + self.c0 + (d + p) * self.f_rec
        tm = dec_keys * self.m_dec + self.m0 + p * self.m_pre + d * self.m_rec
        att = self.ov * (tc if tc >= tm else tm) + (1.0 - self.ov) * (tc + tm)
        rank = self._rank_excess_s(_FLOATS, float(p), pre_ctx) if self.a > 1.0 and p else 0.0
        return (self._base[d + p] + self._head[n_logit] + att + rank) * self.scale + self.host_s \
            + self.host_request_s * d

    def scalar_steps(self, k: int) -> bool:
        """Whether ``k`` decode-only steps are timed one by one with :meth:`time` (few steps,
        no attention data parallelism): the values :meth:`times` gives, in Python floats."""
        return k <= SCALAR_STEPS and self.a <= 1.0

    def decode_cumulative(self, d: int, c0: float, k: int):
        """Cumulative times of ``k`` decode-only steps of ``d`` sequences at contexts c0,
        c0+1, ...: ``np.cumsum(times(...))``, or for few steps (:meth:`scalar_steps`) the
        same running sum as a list of Python floats (the same values: both sum in order)."""
        if self.scalar_steps(k):
            out, total = [], 0.0
            for j in range(k):
                total += self.time(d, 0, d, c0 + j, 0.0)
                out.append(total)
            return out
        return np.cumsum(self.times(d, 0, d, c0 + np.arange(k, dtype=float), 0.0))

    def _att_parts(self, d, c):
        cap_g, cap_s = self.cap_g, self.cap_s
        keys = d * (self.ng * (c if c <= cap_g else cap_g) + self.ns * (c if c <= cap_s else cap_s))
        return keys * self.f_dec + self.c0 + d * self.f_rec, keys * self.m_dec + self.m0 + d * self.m_rec

    def decode_stretch(self, d: int, c0: float, k: int, horizon: float = float("inf")):
        """``k`` decode-only steps of ``d`` sequences at contexts c0, c0+1, ...: returns
        (steps taken, their total time). With a finite ``horizon`` (s) it stops after the
        step during which the horizon passes. The step time is linear in the context
        between the caps and the roofline's switch point, so a stretch with none inside
        is summed in closed form; others step through an array."""
        c1 = c0 + k - 1.0
        (tc0, tm0), (tc1, tm1) = self._att_parts(d, c0), self._att_parts(d, c1)
        linear = ((tc0 >= tm0) == (tc1 >= tm1) and (c0 >= self.cap_g) == (c1 >= self.cap_g)
                  and (c0 >= self.cap_s) == (c1 >= self.cap_s))
        if not linear:
            cum = self.decode_cumulative(d, c0, k)
            n = k if cum[-1] < horizon else first_at_least(cum, horizon) + 1
            return n, float(cum[n - 1])
        t0 = self.time(d, 0, d, c0, 0.0)
        slope = (self.time(d, 0, d, c1, 0.0) - t0) / (k - 1.0) if k > 1 else 0.0

        def total(n):
            return n * t0 + slope * n * (n - 1.0) * 0.5

        if total(k) < horizon:
            return k, total(k)
        # smallest n with total(n) >= horizon: root of slope/2 n^2 + (t0 - slope/2) n - horizon
        if slope > 0.0:
            b = t0 - 0.5 * slope
            n = math.ceil((-b + math.sqrt(b * b + 2.0 * slope * horizon)) / slope - 1e-12)
        else:
            n = math.ceil(horizon / t0 - 1e-12)
        n = min(max(n, 1), k)
        while n > 1 and total(n - 1) >= horizon:
            n -= 1
        while n < k and total(n) < horizon:
            n += 1
        return n, total(n)


def first_at_least(cum, value) -> int:
    """Index of the first entry of the non-decreasing ``cum`` (a list or an array) that is
    at least ``value`` (``np.searchsorted(cum, value)``, side left)."""
    if isinstance(cum, list):
        return bisect_left(cum, value)
    return int(np.searchsorted(cum, value))
