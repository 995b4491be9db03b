"""Busy-machine handling in calibration: the reference kernel's drift, which take of a
benchmark is kept, and the refusal of a profile whose benchmarks stayed disturbed."""

from __future__ import annotations

import pytest

from planner.calibrate.timing import DRIFT, Sentinel


def _sentinel(times):
    """A Sentinel whose kernel 'takes' the given seconds, one probe per value (a fake clock)."""
    import planner.calibrate.timing as T

    seq = iter(times)
    now = [0.0]

    def fn():
        now[0] += next(seq, times[-1])

    s = Sentinel.__new__(Sentinel)
    s.fn, s.sync, s.calls, s.times = fn, (lambda: None), 1, []
    return s, now, T


def test_sentinel_drift_is_against_the_fastest_probe(monkeypatch):
    s, now, T = _sentinel([0.010, 0.010, 0.013, 0.009])
    monkeypatch.setattr(T.time, "perf_counter", lambda: now[0])
    probes = [s.probe() for _ in range(4)]
    assert probes == pytest.approx([0.010, 0.010, 0.013, 0.009])
    assert s.best == pytest.approx(0.009)
    assert s.drift(0.013) == pytest.approx(0.013 / 0.009 - 1)  # 44% slower: disturbed
    assert s.drift(0.0095) < DRIFT


def test_disturbed_rows_and_which_take_is_kept():
    from planner.calibrate.bench import _trusted_faster, disturbed

    class Fixed:  # a sentinel whose fastest probe is 10 ms
        def drift(self, p):
            return p / 0.010 - 1

    s = Fixed()
    quiet_slow = {"seconds": 2.0, "other_cpu": 0.0, "_probes": (0.010, 0.0105)}
    busy_fast = {"seconds": 1.0, "other_cpu": 0.0, "_probes": (0.010, 0.020)}  # reference kernel 2x slower after
    cpu_busy = {"seconds": 0.9, "other_cpu": 0.5, "_probes": (0.010, 0.010)}
    quiet_fast = {"seconds": 1.5, "other_cpu": 0.01, "_probes": (0.0101, 0.010)}
    assert not disturbed({"other_cpu": 0.1, "drift": 0.1})
    assert disturbed({"other_cpu": 0.2}) and disturbed({"drift": 0.3})
    # a trusted take beats a disturbed one even when slower; between trusted takes the faster wins
    assert not _trusted_faster(busy_fast, quiet_slow, s)
    assert not _trusted_faster(cpu_busy, quiet_slow, s)
    assert _trusted_faster(quiet_slow, busy_fast, s)
    assert _trusted_faster(quiet_fast, quiet_slow, s)
    assert busy_fast["drift"] == pytest.approx(1.0)


def test_a_profile_with_too_many_disturbed_benchmarks_is_refused(capsys):
    from planner.commands.calibrate import _check_busy
    from planner.errors import InputError

    busy = {"disturbed": 40, "benchmarks": 120, "retaken": 55, "load_average": [6.5, 7.1]}
    with pytest.raises(InputError) as e:
        _check_busy(busy, False, "/tmp/p.yaml")
    msg = e.value.one_line()
    assert "40 of 120 benchmarks disturbed" in msg and "--allow-busy" in msg and "6.5 -> 7.1" in msg
    assert "\n" not in msg and msg.endswith("--allow-busy")  # one line, nothing clipped
    _check_busy(busy, True, "/tmp/p.yaml")  # --allow-busy: written, with a warning
    assert "writing it anyway" in capsys.readouterr().err
    _check_busy({"disturbed": 12, "benchmarks": 120}, False, "/tmp/p.yaml")  # 10%: accepted
