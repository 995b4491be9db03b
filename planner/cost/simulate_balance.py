"""TensorRT-LLM's attention-DP balancer in the discrete-event simulator
(planner.cost.simulate): which rank each request lands on and, every iteration, whether the
waiting prompts may run. The analytic counterpart is planner.cost.adp_balance.adp_balance_wait_steps;
tests/test_serving_balance.py checks the two agree.

The engine's rules (TensorRT-LLM PyExecutor and its request queue):

* routing (``_schedule_attention_dp_requests`` / ``_balance_requests_across_ranks``): the
  requests fetched in one iteration go, one by one, to the rank with the fewest active
  prompt tokens (``py_orig_prompt_len`` summed; the simulator's prompts are all ``P`` long,
  so the fewest active requests, ties to the lowest rank), among the ranks holding fewer
  than ``max(ceil((active + new) / a), the busiest rank's count)``; a prompt waiting for
  the balancer is active;
* the balancer (``_balance_adp_requests``, ``attention_dp_config.enable_balance``): every
  iteration the ranks all-gather their scheduled context and generation counts; where
  every rank holds a context request the context requests run and the counter is reset;
  otherwise none runs and the counter advances, and whatever waits runs once it reaches
  ``timeout_iters`` or at once when some rank holds no generation request (then the
  counter is reset). The counter advances whether or not a prompt waits (the free-running
  counter of the closed form). ``batching_wait_iters`` is 0 in the recommended
  configurations (engines/trtllm.yaml), so a covered iteration runs at once.

Not modelled: the rule's free-slot condition (every rank below ``max_batch_size``
generation requests): the simulator admits no prompt past the worker's running limit.
State is per-rank counts (``a`` entries) updated per event."""

from __future__ import annotations

import math


class AdpBalancer:
    """Per-rank counts of a worker's ``ranks`` attention-DP ranks and the balancer's
    counter (``timeout_iters``); ``n_requests`` sizes the request -> rank map. The counts are
    Python lists with running tallies of the ranks that hold none: a worker has a few to 64
    ranks, where a numpy call per event costs more than the event."""

    def __init__(self, ranks: int, timeout_iters: int, n_requests: int):
        self.a, self.tau = int(ranks), int(timeout_iters)
        self.rank = [0] * int(n_requests)
        self.ctx = [0] * self.a   # admitted prompts not yet complete
        self.gen = [0] * self.a   # generation (decoding) requests
        self.ctx_empty = self.gen_empty = self.a  # ranks holding none
        self.waiting = 0
        self.counter = 0
        self.held = False
        self.routed = 0        # requests routed to a rank
        self.held_iters = 0    # prompt-iterations held (the mean hold: held_iters / routed)

    def assign(self, ids) -> None:
        """Route one iteration's fetched requests (the engine's heap, fewest active first)."""
        if not ids:
            return
        active = [c + g for c, g in zip(self.ctx, self.gen)]
        expected = max(-(-(sum(active) + len(ids)) // self.a), max(active))
        for i in ids:
            r = min((n, r) for r, n in enumerate(active) if n < expected)[1]  # the first least-loaded rank
            active[r] += 1
            self.rank[i] = r
            self.ctx_empty -= self.ctx[r] == 0
            self.ctx[r] += 1
        self.waiting += len(ids)
        self.routed += len(ids)

    def prompts_done(self, ids) -> None:
        for i in ids:
            r = self.rank[i]
            self.ctx[r] -= 1
            self.ctx_empty += self.ctx[r] == 0
        self.waiting -= len(ids)

    def joined(self, ids) -> None:
        for i in ids:
            r = self.rank[i]
            self.gen_empty -= self.gen[r] == 0
            self.gen[r] += 1

    def finished(self, ids) -> None:
        for i in ids:
            r = self.rank[i]
            self.gen[r] -= 1
            self.gen_empty += self.gen[r] == 0

    def check(self) -> bool:
        """One iteration's rule: True where the waiting context requests may run."""
        if self.ctx_empty == 0:
            self.counter, self.held = 0, False
            return True
        self.counter += 1
        if self.counter >= self.tau or self.gen_empty:
            self.counter, self.held = 0, False
            return True
        self.held = self.waiting > 0
        self.held_iters += self.waiting
        return False

    def quiet_steps(self) -> float:
        """Iterations, this one included, that a decode-only stretch may run before the rule
        can release without an event (arrival, finish): up to the timeout where a prompt is
        held; one where prompts wait unreleased for room; unbounded where none waits."""
        if self.held:
            return float(self.tau - self.counter)
        return 1.0 if self.waiting else math.inf

    def skip(self, k: int) -> None:
        """The checks of a stretch's ``k - 1`` iterations after the first (counts unchanged)."""
        if k <= 1:
            return
        if self.gen_empty:
            self.counter = 0
        elif self.held:
            self.counter += k - 1
            self.held_iters += self.waiting * (k - 1)
        else:
            self.counter = (self.counter + k - 1) % self.tau
