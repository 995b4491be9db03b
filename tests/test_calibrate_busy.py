"""Busy-machine handling in calibration (planner/calibrate/quiet.py, bench.py).

Outside oracle: synthetic timing streams with known, injected disturbances. The quiet
part of a stream is noise of a known, bounded size; episodes of contention (another
process's CPU time on our cores) and of drift (the reference kernel slowed down) are
injected at known benchmarks. The detector must flag those benchmarks and only those,
whatever the noise level, the number of probes, steal time or our own threads' CPU use.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.calibrate.quiet import (CONTENDED, DRIFT_CEIL, DRIFT_FLOOR, LoadMonitor, Sentinel, contention,
                                     drift_bound, is_disturbed, parse_proc_stat)

TICK_S = 0.01


def _fake_sentinel(times, monkeypatch):
    """A Sentinel whose kernel 'takes' the given seconds, one probe per value (a fake clock)."""
    import planner.calibrate.quiet as Q

    seq = iter(times)
    now = [0.0]

    def fn():
        now[0] += next(seq)

    monkeypatch.setattr(Q.time, "perf_counter", lambda: now[0])
    s = Sentinel.__new__(Sentinel)
    s.fn, s.sync, s.calls, s.times, s.quiet = fn, (lambda: None), 1, [], []
    return s


# ------------------------------------------------------------------------------------------
# drift
# ------------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(base=st.floats(0.002, 0.05), noise=st.floats(0.0, 0.08), n=st.integers(40, 400),
       seed=st.integers(0, 2**32 - 1), data=st.data())
def test_drift_flags_the_injected_slowdowns_and_only_those(base, noise, n, seed, data):
    """Quiet probes vary by +-noise (uniform, up to 8%); injected episodes (up to a fifth
    of the probes) slow the reference kernel by 1.6-3x. However many probes the run takes,
    exactly the benchmarks next to a slowed probe are flagged (the old rule, 15% over the
    fastest probe of the run, flagged quiet ones as the run went on)."""
    import random

    rng = random.Random(seed)
    slow = set(data.draw(st.lists(st.integers(0, n - 1), max_size=n // 5), label="slow probes"))
    quiet = [base * (1 + rng.uniform(-noise, noise)) for _ in range(9)]
    probes = [base * (1 + rng.uniform(-noise, noise)) * (rng.uniform(1.6, 3.0) if i in slow else 1.0)
              for i in range(n)]
    with pytest.MonkeyPatch.context() as m:
        s = _fake_sentinel(quiet + probes, m)
        s.settle(9)
        got = [s.probe() for _ in range(n)]
    assert got == pytest.approx(probes)
    assert DRIFT_FLOOR <= s.bound <= DRIFT_CEIL
    # benchmark i ran between probe i-1 (or the last quiet one) and probe i
    flagged = {i for i in range(n) if max(s.drift(p) for p in ((got[i - 1] if i else quiet[-1]), got[i])) > s.bound}
    expected = {i for i in range(n) if i in slow or (i - 1) in slow}
    assert flagged == expected


def test_a_run_busy_most_of_the_time_is_judged_against_its_quiet_start(monkeypatch):
    """Seven probes in ten slowed 2x: the run's median is the busy one, the quiet start
    probes are the reference, and the slowed benchmarks are flagged."""
    quiet = [0.010, 0.0101, 0.0099, 0.010, 0.0102, 0.0098, 0.010, 0.0101, 0.0099]
    probes = [0.020 if i % 10 < 7 else 0.010 for i in range(100)]
    s = _fake_sentinel(quiet + probes, monkeypatch)
    s.settle(9)
    for _ in probes:
        s.probe()
    assert s.reference == pytest.approx(0.010, rel=0.02)
    assert s.drift(0.020) > s.bound and s.drift(0.0102) < s.bound


def test_drift_bound_follows_the_quiet_spread():
    # steady reference: the floor; noisy: Z robust sigmas; wild: the ceiling
    assert drift_bound([1.0] * 9)[2] == DRIFT_FLOOR
    ref, spread, bound = drift_bound([0.9, 0.95, 0.95, 1.0, 1.0, 1.0, 1.05, 1.05, 1.1])  # MAD 0.05
    assert ref == 1.0 and spread == pytest.approx(1.4826 * 0.05) and bound == pytest.approx(4 * 1.4826 * 0.05)
    assert drift_bound([0.5, 0.7, 1.0, 1.3, 1.6, 2.0, 1.0, 0.6, 1.8])[2] == DRIFT_CEIL
    # one wildly disturbed probe (of nine) moves neither the reference nor the bound much
    r1, _, b1 = drift_bound([1.0, 1.01, 0.99, 1.0, 1.02, 0.98, 1.0, 1.01, 5.0])
    assert r1 == pytest.approx(1.0, abs=0.011) and b1 == DRIFT_FLOOR


def test_a_busy_start_does_not_set_the_reference(monkeypatch):
    """If the quiet probes at the start were in fact slow, the run's own median rules."""
    s = _fake_sentinel([0.02] * 9 + [0.01] * 30, monkeypatch)
    s.settle(9)
    for _ in range(30):
        s.probe()
    assert s.reference == pytest.approx(0.01)
    assert s.drift(0.0105) < s.bound < s.drift(0.02)


# ------------------------------------------------------------------------------------------
# contention
# ------------------------------------------------------------------------------------------
def _read(seconds: float, rng) -> float:
    """What a tick counter's difference shows for ``seconds`` of CPU time: the counter
    advances in whole ticks at an instant we do not know (a uniform phase), so the
    difference is off by less than one tick either way."""
    phase = rng.uniform(0.0, TICK_S)
    return (math.floor((phase + seconds) / TICK_S) - math.floor(phase / TICK_S)) * TICK_S


def _other_s(ours: float, others: float, cpus: int, rng) -> float:
    """Other processes' CPU seconds as the monitor derives them: /proc/stat's busy time
    (one counter per CPU, the load spread over them) minus our user and system time (two
    counters)."""
    busy = sum(_read((ours + others) / cpus, rng) for _ in range(cpus))
    user = rng.uniform(0.5, 1.0) * ours
    return max(0.0, busy - _read(user, rng) - _read(ours - user, rng))


@settings(max_examples=80, deadline=None)
@given(cpus=st.integers(1, 16), data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_contention_flags_other_processes_on_our_cores_only(cpus, data, seed):
    """Windows of 0.05-5 s on 1-16 CPUs, our 1..cpus threads. The oracle of *contended*
    is the definition, on the true CPU times: other processes needed more than the free
    cores (``cpus - threads``) by over CONTENDED of our cores. The counters are read in
    whole ticks (each of the cpus + 2 differences off by under a tick, simulated here,
    not taken from the library). The library's counter slack (``counter_slack_s``) is
    used only as the tolerance: a window within twice the slack above the bar is not
    drawn (the counters cannot tell it from one just under the bar). Every other window
    is judged right: a quiet one, however close to the bar, is never flagged, and a
    contended one always is. A window so short that twice the slack exceeds what is left
    of our cores above the bar (10 ticks on two CPUs: the slack is a whole core) can
    never be judged contended: only quiet windows are drawn there, and none is flagged."""
    import random

    from planner.calibrate.quiet import TICK_SLACK, counter_slack_s

    rng = random.Random(seed)
    threads = data.draw(st.integers(1, cpus), label="threads")
    free = cpus - threads
    for _ in range(20):
        wall = math.exp(rng.uniform(math.log(0.05), math.log(5.0)))
        ours_cores = threads * wall
        tolerance = counter_slack_s(wall, cpus, TICK_S) / ours_cores
        can_tell = CONTENDED + 2.0 * tolerance < 1.0
        if can_tell and rng.random() < 0.4:
            beyond = rng.uniform(CONTENDED + 2.0 * tolerance, 1.0)  # of our cores, beyond the free ones
        else:
            beyond = rng.uniform(-1.0, CONTENDED)  # < 0: the free cores absorbed them
        others = max(0.0, free * wall + beyond * ours_cores)
        truth = max(0.0, others - free * wall) / ours_cores > CONTENDED  # the oracle
        ours = min(ours_cores, cpus * wall - others) * rng.uniform(0.3, 1.0)
        other_s = _other_s(ours, others, cpus, rng)
        # the counters' error is within the resolution part of the library's slack
        assert abs(other_s - others) < TICK_SLACK * (cpus + 2) * TICK_S + 1e-9
        c = contention(other_s, wall, cpus, threads, TICK_S)
        assert 0.0 <= c <= 1.0
        assert (c > CONTENDED) == truth, (wall, threads, others, other_s, c)


def test_contention_examples():
    # 2 vCPUs, our 2 threads: another process holding a whole core takes half of ours
    slack_s = (4 + 3 * (2 * 100 / 4) ** 0.5) * TICK_S  # 4 counters' ticks, 3 sampling deviations
    assert contention(1.0, 1.0, 2, 2) == pytest.approx((1.0 - slack_s) / 2)
    # our 1 thread on 2 vCPUs: a process on the other core is not in our way
    assert contention(1.0, 1.0, 2, 1) == 0.0
    # a few ticks of kernel threads over a short benchmark are the counters' resolution, not load
    assert contention(0.03, 0.05, 2, 2) == 0.0


def test_proc_stat_steal_and_guest_are_not_busy():
    line = "cpu  100 20 30 400 5 6 7 800 50 9"
    busy, steal = parse_proc_stat(line, TICK_S)
    assert busy == pytest.approx((100 + 20 + 30 + 6 + 7) * TICK_S)  # guest is inside user already
    assert steal == pytest.approx(8.0)
    with pytest.raises(ValueError):
        parse_proc_stat("cpu0 1 2 3", TICK_S)


def test_load_monitor_does_not_count_our_own_threads():
    """Our own process burning CPU (here on two threads where there are two CPUs) is not
    'other': the monitor's contention stays at zero when nothing else runs. Only checked
    when the machine is otherwise idle enough to tell."""
    import os
    import threading
    import time

    if not os.path.exists("/proc/stat"):
        pytest.skip("no /proc/stat")
    idle = LoadMonitor(1)
    time.sleep(0.3)
    before = idle.read()
    if before is None or before["other_cpu"] > 0.05:
        pytest.skip("the machine is busy: other processes' share cannot be told from ours")

    def spin(until):
        x = 0
        while time.perf_counter() < until:
            x += 1

    mon = LoadMonitor(2)
    until = time.perf_counter() + 0.5
    ts = [threading.Thread(target=spin, args=(until,)) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    r = mon.read()
    after_idle = LoadMonitor(1)
    time.sleep(0.2)
    if after_idle.read()["other_cpu"] > 0.05:
        pytest.skip("the machine became busy meanwhile")
    assert r["contention"] < CONTENDED


# ------------------------------------------------------------------------------------------
# which take is kept, and the refusal
# ------------------------------------------------------------------------------------------
def test_disturbed_rows_and_which_take_is_kept():
    from planner.calibrate.bench import _trusted_faster, disturbed

    class Fixed:  # a sentinel whose quiet reference is 10 ms, bound 15%
        bound = 0.15

        def drift(self, p):
            return p / 0.010 - 1

    s = Fixed()
    quiet_slow = {"seconds": 2.0, "contention": 0.0, "_probes": (0.010, 0.0105)}
    busy_fast = {"seconds": 1.0, "contention": 0.0, "_probes": (0.010, 0.020)}  # reference kernel 2x slower after
    cpu_busy = {"seconds": 0.9, "contention": 0.5, "_probes": (0.010, 0.010)}
    quiet_fast = {"seconds": 1.5, "contention": 0.01, "_probes": (0.0101, 0.0095)}
    assert not disturbed({"contention": 0.1, "drift": 0.1}, 0.15)
    assert disturbed({"contention": 0.2}, 0.15) and disturbed({"drift": 0.3}, 0.15)
    assert not is_disturbed(None, None, 0.15)
    # a trusted take beats a disturbed one even when slower; between trusted takes the faster wins
    assert not _trusted_faster(busy_fast, quiet_slow, s)
    assert not _trusted_faster(cpu_busy, quiet_slow, s)
    assert _trusted_faster(quiet_slow, busy_fast, s)
    assert _trusted_faster(quiet_fast, quiet_slow, s)
    assert busy_fast["drift"] == pytest.approx(1.0)


def test_a_profile_with_too_many_disturbed_benchmarks_is_refused(capsys):
    from planner.commands.calibrate import _check_busy
    from planner.errors import InputError

    busy = {"disturbed": 40, "benchmarks": 120, "retaken": 55, "load_average": [6.5, 7.1],
            "disturbed_by": {"contention": 31, "drift": 22}}
    with pytest.raises(InputError) as e:
        _check_busy(busy, False, "/tmp/p.yaml")
    msg = e.value.one_line()
    assert "40 of 120 benchmarks disturbed" in msg and "--allow-busy" in msg and "6.5 -> 7.1" in msg
    assert "31 by CPU use" in msg and "22 by reference drift" in msg
    assert "\n" not in msg and msg.endswith("--allow-busy")  # one line, nothing clipped
    _check_busy(busy, True, "/tmp/p.yaml")  # --allow-busy: written, with a warning
    assert "writing it anyway" in capsys.readouterr().err
    _check_busy({"disturbed": 12, "benchmarks": 120}, False, "/tmp/p.yaml")  # 10%: accepted


def test_allow_busy_help_states_the_refusal_threshold():
    """The --allow-busy help spells MAX_DISTURBED out (the command module does not import
    planner.calibrate.quiet at start-up: statistics and decimal cost the CLI ~30 ms)."""
    import inspect

    from planner.calibrate.quiet import MAX_DISTURBED
    from planner.commands.calibrate import calibrate_cmd

    help_text = inspect.signature(calibrate_cmd).parameters["allow_busy"].default.help
    assert f"over {MAX_DISTURBED:.0%} of the benchmarks" in help_text


# ------------------------------------------------------------------------------------------
# takes spread over a pass
# ------------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(takes=st.lists(st.integers(1, 4), min_size=1, max_size=150))
def test_a_jobs_takes_are_spread_evenly_over_the_pass(takes):
    """A job with k takes runs k times in a pass, its takes at least a k-th of the plan
    apart (counted cyclically, in benchmarks run between them: the passes follow each
    other): a slow spell of a few benchmarks cannot catch all of a job's takes. The jobs
    of one take keep the plan's order."""
    from planner.calibrate.bench_plan import Job, pass_schedule

    jobs = [Job("gemm", {}, f"job {i}", takes=k) for i, k in enumerate(takes)]
    order = pass_schedule(jobs)
    n, total = len(jobs), len(order)
    assert sorted(order) == sorted(i for i, k in enumerate(takes) for _ in range(k))
    single = [i for i in order if takes[i] == 1]
    assert single == sorted(single)
    for i, k in enumerate(takes):
        t = [pos for pos, j in enumerate(order) if j == i]
        gaps = [b - a for a, b in zip(t, t[1:])] + [total - t[-1] + t[0]]
        assert len(gaps) == k
        if k > 1:
            assert min(gaps) >= n // k, (n, k, t)
