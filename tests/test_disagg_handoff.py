"""What a disaggregated request meets on the decode side after its prefill
(planner.cost.disagg.handed_off): the wait for a decode slot when the requests in flight
exceed what the decode workers hold, and the admission at a decode step boundary.

Oracles: a brute-force event simulation of a closed loop whose requests each hold one of
``R`` slots for a fixed time (the queue, not the cost model); a Monte Carlo of KV arrivals
at random phases of a deterministic step clock; the measured rows' own deployments (a run
that was measured held its decode batch)."""

from __future__ import annotations

import heapq
from pathlib import Path

import numpy as np
import pytest

from one_row import one_row_ctx

from planner.catalog import load_hardware, load_model
from planner.cost.disagg import ADMISSION_STEPS, decode_worker_capacity, disaggregated_rows, handed_off
from planner.cost.serving import disaggregated
from planner.cost.tables import HardwareTable

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "data" / "serving-measured-hopper-dev.csv"


def _closed_loop_slot_wait(C: int, R: int, hold_s: float, cycles: int = 60) -> float:
    """Mean wait for one of ``R`` slots in a closed loop of ``C`` clients, each holding a
    slot ``hold_s`` and returning at once (event simulation, FIFO; the mean over the
    steady cycles after the first)."""
    free = [0.0] * R  # times the slots free up
    heapq.heapify(free)
    ready = [0.0] * C  # when each client asks for a slot
    waits = []
    for k in range(cycles * C):
        i = k % C
        t_free = heapq.heappop(free)
        start = max(ready[i], t_free)
        if k >= 2 * C:
            waits.append(start - ready[i])
        ready[i] = start + hold_s
        heapq.heappush(free, start + hold_s)
    return float(np.mean(waits))


@pytest.mark.parametrize("C_over_R", [1.0, 1.5, 2.0, 4.0])
def test_wait_for_a_decode_slot_is_the_closed_loop_queue(C_over_R):
    """Llama-3.1-8B bf16 on one h100-sxm per decode worker, 8,192 + 1,024 tokens: the
    decode workers hold ``R`` requests (their free memory); at ``C`` in flight the extra
    TTFT is the wait a brute-force closed loop of ``C`` clients over ``R`` slots gives with
    the request's own slot time (its e2e latency without waiting), within 2%."""
    m, h = load_model("llama-3.1-8b"), load_hardware("h100-sxm")
    P, G, Y = 8192, 1024, 2
    x_pre, x_dec = one_row_ctx(m, h, 1, P, G), one_row_ctx(m, h, 1, P, G)
    b_max = float(np.asarray(decode_worker_capacity(x_dec, P, G, 1 << 30)).ravel()[0])
    assert 4 <= b_max <= 64  # ~50 GB free over ~1.2 GB per request at full length
    R = int(Y * b_max)
    C = int(round(C_over_R * R))
    out = {k: float(np.asarray(v).ravel()[0])
           for k, v in handed_off(x_pre, x_dec, C, P, G, 8192.0, 1e-3, 4.0, Y, 0.01, 1 << 30).items()}
    hold = out["latency_s"] - out["decode_wait_s"]
    want = _closed_loop_slot_wait(C, R, hold)
    assert out["decode_wait_s"] == pytest.approx(want, rel=0.02, abs=1e-9)
    if C <= R:
        assert out["decode_wait_s"] == 0.0


def test_admission_is_a_step_boundary_and_a_step(monkeypatch):
    """A prompt's KV lands at a uniformly random phase of the decode worker's running step
    (Monte Carlo over the phase); it waits for the step to end and rides the next one, which
    emits its first token: 1.5 steps, what handed_off adds to the scheduler algebra of
    planner.cost.closed_loop.disaggregated when no slot is short (the decode batch held at
    every request in flight here, as that algebra has it: the occupancy rounds are
    tests/test_disagg_occupancy.py's)."""
    import planner.cost.disagg as D

    monkeypatch.setattr(D, "OCCUPANCY_ROUNDS", 0)
    rng = np.random.default_rng(3)
    phase = rng.uniform(0.0, 1.0, 200_000)
    mc_steps = float(np.mean((1.0 - phase) + 1.0))
    assert ADMISSION_STEPS == pytest.approx(mc_steps, abs=0.01)
    m, h = load_model("qwen3-32b"), load_hardware("h200")
    P, G, C = 2048, 512, 16
    x_pre, x_dec = one_row_ctx(m, h, 2, P, G), one_row_ctx(m, h, 2, P, G)
    one = lambda d: {k: float(np.asarray(v).ravel()[0]) for k, v in d.items()}  # noqa: E731
    base = one(disaggregated(x_pre, x_dec, C, P, G, 8192.0, 1e-3, 1.0, 2.0, 0.005))
    out = one(handed_off(x_pre, x_dec, C, P, G, 8192.0, 1e-3, 1.0, 2.0, 0.005, 1 << 30))
    assert out["decode_wait_s"] == 0.0
    assert out["ttft_s"] - base["ttft_s"] == pytest.approx(mc_steps * base["tpot_s"], rel=0.01)
    assert out["tpot_s"] == pytest.approx(base["tpot_s"], rel=1e-12)


def test_ttft_grows_with_concurrency_past_the_decode_slots():
    """Past the decode workers' running set TTFT grows linearly with the requests in flight
    (each added client waits one more slot time over R) while TPOT stays the full running
    set's; below it nothing waits."""
    m, h = load_model("llama-3.1-8b"), load_hardware("h100-sxm")
    P, G, Y = 8192, 1024, 1
    x = one_row_ctx(m, h, 1, P, G)
    R = float(np.asarray(decode_worker_capacity(x, P, G, 1 << 30)).ravel()[0])
    Cs = np.array([R, 2 * R, 3 * R, 4 * R])
    out = handed_off(x, x, Cs, P, G, 8192.0, 1e-3, 2.0, Y, 0.01, 1 << 30)
    steps = np.diff(out["ttft_s"])
    assert np.all(steps > 0)
    assert steps == pytest.approx(np.full(3, steps[0]), rel=1e-9)
    assert np.ptp(out["tpot_s"]) == pytest.approx(0.0, abs=1e-15)


@pytest.mark.skipif(not DEV.is_file(), reason="dev data not present")
def test_measured_deployments_wait_for_no_decode_slot():
    """A measured run with its worker counts held its decode batch (it ran): replayed, none
    of the 29 written-out disaggregated rows of the dev file waits for a decode slot, though
    a bf16 KV cache at full length would not hold the batch on some (the KV dtype is not in
    the data); rows without counts derive their decode workers from that memory
    (derive_workers), so they do not wait either."""
    from planner import serving_params as SP
    from planner.measured import read_measured
    from planner.replay import Prepared

    runs = read_measured(DEV)
    r = runs.take(runs.mode == "disagg")
    prep = Prepared(r)
    assert (prep.status == "ok").all()
    sets = prep.parameter_sets(None)
    effs = [SP.efficiency(prep.hw[g], v, name) for g, (name, v) in zip(prep.gnames, sets)]
    ht = HardwareTable.build([prep.hw[g] for g in prep.gnames], effs)
    counted = np.isfinite(prep.workers["decode"])
    common = dict(prefill=prep.sides["prefill"], decode=prep.sides["decode"], concurrency=prep.C,
                  prefill_workers=prep.workers["prefill"], decode_workers=prep.workers["decode"],
                  min_decode_workers=prep.min_decode)
    given = disaggregated_rows(prep.cols, prep.mt, ht, **common, decode_running=np.where(counted, prep.C, np.nan))
    memory = disaggregated_rows(prep.cols, prep.mt, ht, **common)
    assert counted.sum() == 29
    assert np.all(given["ttft_s"] <= memory["ttft_s"] + 1e-12)
    assert np.any(memory["ttft_s"][counted] > 1.5 * given["ttft_s"][counted])  # bf16 KV would not hold them
    assert np.allclose(given["ttft_s"][~counted], memory["ttft_s"][~counted])


def test_a_decode_worker_that_cannot_hold_its_weights_is_costed_as_if_it_fit():
    """Llama-3.1-70B bf16 on one h100-sxm (141 GB of weights on 80 GB): no request fits;
    the estimate says so, and the times are those of the deployment as if it fit, not an
    endless queue for a slot."""
    m, h = load_model("llama-3.1-70b"), load_hardware("h100-sxm")
    x = one_row_ctx(m, h, 1, 2048, 512)
    assert float(np.asarray(decode_worker_capacity(x, 2048, 512, 1 << 30)).ravel()[0]) == 0.0
    out = handed_off(x, x, 16, 2048, 512, 8192.0, 1e-3, 1.0, 1.0, 0.002, 1 << 30)
    assert float(np.asarray(out["decode_wait_s"]).ravel()[0]) == 0.0
    assert float(np.asarray(out["running"]).ravel()[0]) == 16.0
