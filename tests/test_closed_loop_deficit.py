"""benchmarks/closed_loop_deficit.py's Little's-law reading recovers the clients a closed
loop kept waiting: a synthetic loop where only L of C clients are served at once (server
lifetime S each, throughput L / S), the other C - L waiting W = (C - L) S / L before their
first token, is read back as C - L from the measured TTFT, TPOT and the server's TTFT."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from closed_loop_deficit import deficit  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(C=st.integers(1, 1024), frac=st.floats(0.05, 1.0), osl=st.integers(1, 8192),
       ttft_s=st.floats(1e-3, 10.0), tpot_s=st.floats(1e-4, 0.2))
def test_waiting_clients_recovered(C, frac, osl, ttft_s, tpot_s):
    L = max(frac * C, 1e-3)
    server_life = ttft_s + (osl - 1) * tpot_s
    wait = (C - L) * server_life / L
    life, waiting, rate = deficit(C, osl, ttft_s + wait, tpot_s, ttft_s)
    assert np.isclose(waiting, C - L, rtol=1e-9, atol=1e-9 * C)
    assert np.isclose(life, C * server_life / L, rtol=1e-12)
    assert np.isclose(rate, L * osl / server_life, rtol=1e-9)  # the loop's output tokens a second


def test_replay_waiting_longer_reads_negative():
    _, waiting, _ = deficit(8, 128, 0.1, 0.01, 0.3)
    assert waiting < 0
