"""The closed loop on pipeline stages: S groups (virtual engines) of c requests each keep
their share, so with fixed lengths each group runs the one-engine closed loop at c in
flight (no sends: exactly, request for request); the analytic closed pipeline
(``estimate --pp S --concurrency S c``) and ``--simulate`` agree on TPOT.

Before the fix, a replacement arrived at the end of a round (its predecessor's finish),
its phase in that round read 1.0, and it joined the LAST group: after the first wave every
request ran in one group, the pipeline's other stages idle (TTFT of 8 prompts, not 4)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from planner.cli import main
from planner.cost.simulate import simulate
from planner.cost.simulate_pipeline import simulate_pipeline
from planner.cost.steps import StepTable
from test_serving import ctx


@pytest.mark.parametrize("S, c, w, kind", [(2, 4, 1, (True, True)), (2, 4, 4, (True, True)),
                                            (4, 3, 2, (True, True)), (3, 5, 1, (False, True)),
                                            (2, 6, 1, (True, False)), (4, 2, 8, (True, True))])
def test_each_group_runs_the_one_engine_closed_loop(S, c, w, kind):
    """Brute-force oracle: S identical groups stepping in rounds of max_j T_j = T are S
    copies of the one-engine closed loop at c in flight; the per-request TTFT and TPOT
    (sorted) are the one-engine simulator's, each value S times."""
    chunked, mixed = kind
    tab = StepTable(ctx(), 9000, 1e-3)
    kw = dict(prompt_len=1024, gen_len=48, token_budget=4096, max_running=4096, chunked=chunked, mixed=mixed,
              arrival="closed", width=w)
    one = simulate(tab, concurrency=c, n_requests=6 * c, **kw)
    pipe = simulate_pipeline(tab, pp=S, send_lat_s=0.0, send_s_per_token=0.0, concurrency=S * c,
                             n_requests=6 * S * c, **kw)
    for key in ("ttft", "tpot"):
        np.testing.assert_allclose(np.sort(pipe[key]), np.sort(np.repeat(one[key], S)), rtol=1e-9)


def _estimate(capsys, *extra):
    capsys.readouterr()
    rc = main(["estimate", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--engine", "vllm", "--prompt-len", "1024",
               "--gen-len", "128", "--json", "--simulate", *extra])
    assert rc in (0, None)
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("pp, k", [(2, 1), (2, 4), (4, 4)])
def test_closed_pipeline_tpot_agrees_with_its_simulator(capsys, pp, k):
    """``estimate --pp S --concurrency 4 S --samples k --simulate``: the analytic TPOT (one
    microbatch of 4 requests, plus the stage sends) within 5% of the pipeline simulator's,
    and the simulated TTFT that of 4 prompts a group (one stage at 4 in flight, within 5%),
    not of 4 S prompts in one group."""
    r = _estimate(capsys, "--pp", str(pp), "--concurrency", str(4 * pp), "--samples", str(k))
    sim = r["simulation"]
    assert r["tpot_s"] == pytest.approx(sim["tpot"]["mean_s"], rel=0.05)
    one = _estimate(capsys, "--concurrency", "4", "--samples", str(k))["simulation"]
    assert sim["ttft"]["mean_s"] == pytest.approx(one["ttft"]["mean_s"], rel=0.05)
    assert sim["throughput_req_s"] == pytest.approx(pp * one["throughput_req_s"], rel=0.05)
