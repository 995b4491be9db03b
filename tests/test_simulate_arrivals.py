"""The simulators' initial arrivals (planner.cost.simulate.initial_arrivals, shared by the
one-engine and the pipeline simulator): a Poisson stream at the asked rate, a closed
loop's first wave at t = 0 or spread evenly."""

from __future__ import annotations

import numpy as np
import pytest

from planner.cost.simulate import initial_arrivals


def test_poisson_arrivals_are_a_poisson_stream_at_the_rate():
    n, rate = 20_000, 7.0
    arrive = np.full(n, np.inf)
    assert initial_arrivals(arrive, "poisson", 0, rate, np.random.default_rng(1)) == n
    gaps = np.diff(np.concatenate([[0.0], arrive]))
    assert np.all(gaps > 0.0)
    # exponential gaps: mean 1/rate (within 4 standard errors) and coefficient of variation 1
    assert abs(gaps.mean() * rate - 1.0) < 4.0 / np.sqrt(n)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.05)
    # counts in unit windows: Poisson, so variance = mean
    counts = np.bincount(arrive.astype(int))[:-1]
    assert counts.var() / counts.mean() == pytest.approx(1.0, abs=0.15)


@pytest.mark.parametrize("concurrency, n, spread_s", [(8, 100, 0.0), (8, 100, 2.0), (50, 10, 1.0), (0, 5, 0.0)])
def test_closed_loop_first_wave(concurrency, n, spread_s):
    arrive = np.full(n, np.inf)
    wave = initial_arrivals(arrive, "closed", concurrency, None, np.random.default_rng(0), spread_s)
    assert wave == min(concurrency, n)
    assert np.all(np.isinf(arrive[wave:]))  # the rest are sent as requests finish
    if wave:
        # evenly spread from t = 0, the last one a gap before spread_s (all at 0 without a spread)
        assert arrive[0] == 0.0 and np.allclose(np.diff(arrive[:wave]), spread_s / wave)
        assert arrive[wave - 1] == pytest.approx(spread_s * (wave - 1) / wave)
