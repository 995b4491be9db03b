"""The discrete-event simulator with pipeline parallelism: ``pp`` stages, each holding
1/pp of the layers, and the running set split into ``pp`` groups (virtual engines), one
microbatch each in the pipeline (vLLM's pipeline-parallel virtual engines, TensorRT-LLM's
microbatches). The reference planner.cost.open_loop's pipeline rule is checked against.

Each group schedules its own steps as :mod:`planner.cost.simulate` schedules the one
engine's (decodes plus prefill chunks up to the ``token_budget``, FIFO, the same
chunking and mixing rules); waiting requests are admitted while fewer than
``max_running`` run in all. The groups step in turn, 1/pp of a round apart, and a new
request joins the group whose turn comes next after it arrives (vLLM V1's scheduler
fills the next microbatch it schedules with the waiting requests): a Poisson arrival
during the last round joins the group of its phase in that round; a closed loop's
replacement, sent when its predecessor's group returns the last token, joins the group
after that one in turn (the finished group's next step was scheduled as the token came
back), so the groups keep their shares of the concurrency; a request that waited longer
joins the group running the fewest.

The physics, shared with planner.cost.layout (``estimate --pp``) and the open loop: a
group's step crosses every stage; each stage takes 1/pp of the whole-model step time of
that group's batch (:class:`planner.cost.steps.StepTable`, the same per-stage step times),
so its step takes ``pp x stage time = T(batch)`` plus ``pp - 1`` sends of its tokens'
hidden states over the link. The stages serve the groups in turn, FIFO: a microbatch
cannot overtake another in a chain of FIFO stages, so the groups keep their cyclic
order, and with a stage time proportional to the step's (the same on every stage) a
round in which every group takes one step lasts ``max_j (T_j + sends_j)``, the slowest
group's pass (Sigma_j T_j / pp, the stage's load, never exceeds it): throughput is set
by the slowest stage and a group with nothing to do is the pipeline's bubble.

Metrics as the one-engine simulator's (TTFT = first token - arrival, TPOT = decode time
over ``gen_len - 1``). ``width`` w: a request is w sequences sharing one prompt, as in
planner.cost.simulate (one prefill, w decodes a step, the running limit counting
sequences). Decode-only rounds up to the next event (a finish, an arrival) are one array
expression per group (their contexts grow one token a round).
"""

from __future__ import annotations

import heapq
from collections import deque
from itertools import accumulate

import numpy as np

from planner.cost.simulate import initial_arrivals, take_prefill
from planner.cost.steps import StepTable, first_at_least


class _Group:
    """One group's (virtual engine's) scheduler state: prompts being prefilled, and the
    decoders as in planner.cost.simulate (``D`` decode steps taken; decoders that joined at
    the same ``D`` finish together, kept in a heap by the ``D`` at which they finish)."""

    __slots__ = ("index", "prefill", "D", "n_dec", "sum_join", "finish_at", "heap")

    def __init__(self, index: int):
        self.index = index  # its turn in a round
        self.prefill: deque = deque()
        self.D, self.n_dec, self.sum_join = 0, 0, 0
        self.finish_at: dict[int, list] = {}
        self.heap: list[int] = []

    def running(self, w: int = 1) -> int:
        """Sequences held: w a prompt being prefilled, the decoders (``n_dec`` counts sequences)."""
        return len(self.prefill) * w + self.n_dec

    def mean_ctx(self, P: int) -> float:
        return P + 1.0 + self.D - self.sum_join / self.n_dec if self.n_dec else 0.0


def simulate_pipeline(table: StepTable, *, pp: int, send_lat_s: float, send_s_per_token: float, prompt_len: int,
                      gen_len: int, token_budget: int, max_running: int, chunked: bool, mixed: bool,
                      arrival: str = "poisson", concurrency: int = 1, rate: float | None = None,
                      n_requests: int = 1000, seed: int = 0, width: int = 1) -> dict[str, np.ndarray]:
    """Simulate ``n_requests`` requests on ``pp`` pipeline stages (``token_budget`` per
    group step, ``max_running`` sequences in all); one stage-to-stage send of ``n`` tokens
    takes ``send_lat_s + n x send_s_per_token``; ``width`` w: w sequences a request sharing
    its prompt (a request is admitted when its w fit, one at least when none run). Returns
    what planner.cost.simulate.simulate does."""
    P, G, N, B, S = int(prompt_len), int(gen_len), int(n_requests), int(token_budget), int(pp)
    w = max(int(width), 1)
    limit = max(int(np.ceil(max_running)), w) if np.isfinite(max_running) else max_running  # one request at least
    # a shared prompt read once a step where the engine's kernel does (planner.cost.simulate's rule, per group)
    shave_alone, shave_many = table.prompt_shave(P, w) if w > 1 else (0.0, 0.0)

    def ctx_of(g: _Group) -> float:
        return g.mean_ctx(P) - (shave_alone if g.n_dec == w and not g.prefill else shave_many) if g.n_dec else 0.0
    hops = S - 1
    arrive = np.full(N, np.inf)
    first = np.full(N, np.nan)
    finish = np.full(N, np.nan)
    after = np.full(N, -1)  # closed loop: the group after the one a request's predecessor left
    waiting: deque = deque()
    poisson = arrival == "poisson"
    spawned = initial_arrivals(arrive, arrival, concurrency, rate, np.random.default_rng(seed))
    if not poisson:  # the closed loop's first wave waits at t = 0; Poisson arrivals enter by time (ptr)
        waiting.extend(range(spawned))
    groups = [_Group(j) for j in range(S)]
    t, done, steps = 0.0, 0, 0
    last_start, last_len = 0.0, 0.0  # the last round: a request that arrived during it joins by its phase
    ptr = 0

    def send(tokens):
        return hops * (send_lat_s + tokens * send_s_per_token) if hops else 0.0

    def finish_ids(ids, when, gi):  # gi: the group the requests leave
        nonlocal done, spawned
        for i in ids:
            finish[i] = when
            done += 1
            if not poisson and spawned < N:
                arrive[spawned] = when
                after[spawned] = (gi + 1) % S  # the closed loop's replacement: the next group in turn
                waiting.append(spawned)
                spawned += 1

    def join(g: _Group, ids, when):
        if G == 1:
            finish_ids(ids, when, g.index)
            return
        key = g.D + G - 1
        if key not in g.finish_at:
            g.finish_at[key] = []
            heapq.heappush(g.heap, key)
        g.finish_at[key].extend(ids)
        g.n_dec += len(ids) * w
        g.sum_join += g.D * len(ids) * w

    def advance(g: _Group, when):
        ids = g.finish_at.pop(g.D, None)
        if ids is None:
            return
        heapq.heappop(g.heap)
        g.n_dec -= len(ids) * w
        g.sum_join -= (g.D - G + 1) * len(ids) * w
        finish_ids(ids, when, g.index)

    def plan(g: _Group):
        """The group's next step: (decodes carried, prefill tokens, prompts completed,
        mean causal context of the prefill tokens); chunk progress is taken."""
        d = g.n_dec if mixed else 0
        p, ctx_sum, completed = take_prefill(g.prefill, B - d, P, chunked, d)
        return d, p, completed, (ctx_sum / p if p else 0.0)

    while done < N:
        if poisson:
            while ptr < N and arrive[ptr] <= t:
                waiting.append(ptr)
                ptr += 1
        running = sum(g.running(w) for g in groups)
        while waiting and running + w <= limit:
            i = waiting.popleft()
            if after[i] >= 0 and arrive[i] == t:  # a closed loop's replacement, admitted as it arrives
                g = groups[after[i]]
            else:
                phase = (arrive[i] - last_start) / last_len if poisson and last_len > 0.0 else -1.0
                g = groups[min(int(phase * S), S - 1)] if phase >= 0.0 else min(groups, key=lambda grp: grp.running(w))
            g.prefill.append([i, 0])
            running += w
        if any(g.prefill for g in groups):
            plans, round_s = [], 0.0
            for g in groups:
                if g.prefill:
                    d, p, completed, pre_ctx = plan(g)
                    if p == 0:  # nothing fits (cannot happen with a budget > decodes) : decodes only
                        d = g.n_dec
                else:
                    d, p, completed, pre_ctx = g.n_dec, 0, [], 0.0
                if d + p == 0:
                    plans.append(None)
                    continue
                dt = table.time(d, p, d + len(completed), ctx_of(g), pre_ctx) + send(d + p)
                round_s = max(round_s, dt)
                plans.append((d, completed))
            last_start, last_len = t, round_s
            t += round_s
            steps += 1
            for g, pl in zip(groups, plans):
                if pl is None:
                    continue
                d, completed = pl
                for i in completed:
                    first[i] = t
                if d:
                    g.D += 1
                    advance(g, t)
                join(g, completed, t)
        elif any(g.n_dec for g in groups):
            busy = [g for g in groups if g.n_dec]
            k = min(g.heap[0] - g.D for g in busy)
            if table.scalar_steps(k):  # few rounds: step by step in Python floats (the same values)
                busy_d = [(g.n_dec, ctx_of(g), send(g.n_dec)) for g in busy]
                per_round = [max(table.time(d, 0, d, c + j, 0.0) + s for d, c, s in busy_d) for j in range(k)]
                cum = list(accumulate(per_round))
            else:
                ks = np.arange(k, dtype=float)
                per_round = np.max([table.times(g.n_dec, 0, g.n_dec, ctx_of(g) + ks, 0.0) + send(g.n_dec)
                                    for g in busy], axis=0)
                cum = np.cumsum(per_round)
            horizon = float(arrive[ptr]) - t if poisson and ptr < N else np.inf
            n = k if cum[-1] < horizon else first_at_least(cum, horizon) + 1
            last_start, last_len = t + (float(cum[n - 2]) if n > 1 else 0.0), float(per_round[n - 1])
            t += float(cum[n - 1])
            steps += n
            for g in busy:
                g.D += n
                advance(g, t)
        else:
            t = max(t, float(arrive[ptr]))
            last_start, last_len = t, 0.0
    ttft = first - arrive
    tpot = (finish - first) / max(G - 1, 1)
    return {"arrival": arrive, "first": first, "finish": finish, "ttft": ttft, "tpot": tpot,
            "e2e": finish - arrive, "steps": steps, "width": w}
