"""benchmarks/repeat_spread.py: the error the measured file itself forces.

Oracles: closed forms for the log-median of small groups; brute force (a dense grid of
constants; tuple grouping); the shipped profiles' own in-sample error on the dev file; the
lab book's twins (Round 13 (S2): TensorRT-LLM H200 DeepSeek-R1 8k/1k at 9 in flight,
5.55 / 5.57 / 10.93 ms TPOT) and the brief's near twins (TensorRT-LLM Llama-3.1-8B h100 TP2
at 8 in flight: TTFT 129 / 208 / 368 ms at 128 / 256 / 512 out).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.repeat_spread import analyse, fact_columns, floor_errors, group_ids, group_spread, log_median

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "data" / "serving-measured-hopper-dev.csv"
SCRIPT = ROOT / "benchmarks" / "repeat_spread.py"


def _abs_log_loss(c, m):
    return float(np.sum(np.abs(np.log(np.asarray(c, float) / np.asarray(m, float)))))


# --- the floor on synthetic groups -------------------------------------------------------

@pytest.mark.parametrize("a, b", [(1.0, 4.0), (5.55, 10.93), (7.0, 7.0), (3.0, 0.5)])
def test_pair_floor_is_the_geometric_mean(a, b):
    """A group of two: c = sqrt(a b), errors sqrt(b/a) - 1 and sqrt(a/b) - 1 (closed form)."""
    e = floor_errors([a, b], [0, 0])
    assert e[0] == pytest.approx(np.sqrt(b / a) - 1.0, rel=1e-12, abs=1e-15)
    assert e[1] == pytest.approx(np.sqrt(a / b) - 1.0, rel=1e-12, abs=1e-15)


def test_odd_group_takes_its_middle_value_and_singletons_err_zero():
    m = np.array([2.0, 9.0, 3.0, 4.0, 100.0])
    g = np.array([0, 0, 0, 1, 2])
    c = log_median(m, g)
    assert c.tolist() == [3.0, 3.0, 3.0, 4.0, 100.0]
    assert floor_errors(m, g)[3:].tolist() == [0.0, 0.0]


def test_unmeasured_rows_neither_count_nor_get_a_value():
    c = log_median([np.nan, 2.0, 8.0, 0.0], [0, 0, 0, 0])
    assert np.isnan(c[0]) and np.isnan(c[3])
    assert c[1] == c[2] == pytest.approx(4.0)


@given(st.lists(st.floats(0.01, 1e4), min_size=1, max_size=9))
@settings(max_examples=60, deadline=None)
def test_log_median_minimises_the_abs_log_loss_on_a_grid(values):
    """Brute force: no constant on a dense grid spanning the group does better."""
    m = np.array(values)
    c = log_median(m, np.zeros(m.size, dtype=int))[0]
    best = _abs_log_loss(np.full(m.size, c), m)
    grid = np.exp(np.linspace(np.log(m.min()) - 0.5, np.log(m.max()) + 0.5, 2001))
    losses = np.abs(np.log(grid[:, None] / m[None, :])).sum(axis=1)
    assert best <= losses.min() + 1e-9


groups_strategy = st.lists(st.tuples(st.integers(0, 5), st.floats(0.01, 1e4)), min_size=1, max_size=40)


@given(groups_strategy, st.integers(0, 2**31 - 1))
@settings(max_examples=80, deadline=None)
def test_floor_beats_every_other_within_group_constant(rows, seed):
    """The floor's total |log| error is never above that of another predictor constant
    within each group: the group's mean, min, max, geometric mean or a random member."""
    g = np.array([r[0] for r in rows])
    m = np.array([r[1] for r in rows])
    floor = _abs_log_loss(log_median(m, g), m)
    rng = np.random.default_rng(seed)
    for rule in (np.mean, np.min, np.max, lambda x: np.exp(np.mean(np.log(x))), lambda x: rng.choice(x)):
        c = np.empty(m.size)
        for k in np.unique(g):
            c[g == k] = rule(m[g == k])
        assert floor <= _abs_log_loss(c, m) + 1e-9


def test_the_median_abs_error_is_not_a_strict_bound():
    """What the docstring warns: for the median of |c / m - 1| another constant can do
    better (here the arithmetic mean: a group {1, 2} and two exact singletons)."""
    m = np.array([1.0, 2.0, 5.0, 7.0])
    g = np.array([0, 0, 1, 2])
    floor_med = np.median(np.abs(floor_errors(m, g)))              # errors 0.414, 0.293, 0, 0
    mean_med = np.median(np.abs(np.array([1.5, 1.5, 5.0, 7.0]) / m - 1))  # 0.5, 0.25, 0, 0
    assert mean_med < floor_med


# --- grouping ----------------------------------------------------------------------------

@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), st.sampled_from([1.0, 2.0, np.nan]), st.booleans()),
                min_size=1, max_size=30))
@settings(max_examples=60, deadline=None)
def test_group_ids_match_tuple_grouping(rows):
    """Rows share a group iff every column is equal (an empty cell equals an empty cell)."""
    cols = {"s": np.array([r[0] for r in rows]), "x": np.array([r[1] for r in rows]),
            "f": np.array([r[2] for r in rows])}
    g = group_ids(cols)
    key = [(r[0], "nan" if np.isnan(r[1]) else r[1], r[2]) for r in rows]
    for i in range(len(rows)):
        for j in range(len(rows)):
            assert (g[i] == g[j]) == (key[i] == key[j])
    g2 = group_ids(cols, drop=("x",))
    for i in range(len(rows)):
        for j in range(len(rows)):
            assert (g2[i] == g2[j]) == (key[i][::2] == key[j][::2])


def test_group_spread_is_max_over_min():
    assert group_spread([2.0, 5.0, 3.0, 7.0], [0, 0, 0, 1]) == {0: 2.5}


# --- the dev file ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dev():
    if not DEV.exists():
        pytest.skip("the dev file ../shared/data/serving-measured-hopper-dev.csv is not here")
    from planner.measured import read_measured
    from planner.replay import Prepared
    from planner.serving_profile import load_serving

    runs = read_measured(DEV)
    pred = Prepared(runs).run(load_serving(None))
    return runs, pred, analyse(runs, pred)


def test_the_key_makes_the_replay_constant_within_every_group(dev):
    runs, pred, a = dev
    assert a["groups_multi"] > 50
    assert a["prediction_not_constant"] == []


def test_the_constancy_check_can_fail(dev):
    """Negative control: a key without the output length, or without the concurrency (the
    batch column and the provenance's total, which repeats it), lumps rows the replay tells
    apart, and the same check sees it."""
    runs, pred, _ = dev
    for facts in (("osl",), ("concurrency", "total_concurrency")):
        g = group_ids(fact_columns(runs), drop=facts)
        assert max(group_spread(pred.ttft_s, g).values()) > 1.01, facts


def test_the_key_reads_every_fact_of_the_reader(dev):
    """Every parsed column of planner.measured.MeasuredRuns but labels and measurements."""
    runs, _, a = dev
    for name in ("model", "system", "engine", "engine_version", "quant", "mode", "isl", "osl", "concurrency", "tp",
                 "pp", "dp", "moe_tp", "ep", "total_concurrency", "range_ratio", "kv_dtype", "spec_tokens",
                 "recv_interval", "decode_num_workers", "prefill_tp_size"):
        assert name in a["key"], name
    for label in ("ids", "line", "measured_ttft_s", "measured_tpot_s"):
        assert label not in a["key"]


def test_the_floor_is_below_the_shipped_profiles_in_sample_error(dev):
    from planner.replay_scoring import summarize

    runs, pred, a = dev
    shipped = summarize(pred, runs)  # the shipped profiles are fitted on every row: in-sample
    for m in ("ttft", "tpot"):
        assert a[m]["floor"]["median_abs"] < shipped[m]["median_abs"]
        assert a[m]["floor"]["p90_abs"] < shipped[m]["p90_abs"]
        assert a[m]["floor_multi"]["p90_abs"] < a[m]["in_sample_multi"]["p90_abs"]
        ml = a[m]["mean_abs_log"]
        assert 0 < ml["floor"] < ml["in_sample"]


def test_the_lab_books_mtp_twins_are_one_group(dev):
    """Round 13 (S2): TensorRT-LLM H200 8k/1k at 9 in flight, TPOT 5.55 / 5.57 / 10.93 ms."""
    runs, _, _ = dev
    g = group_ids(fact_columns(runs))
    tpot_ms = runs.measured_tpot_s * 1e3
    rows = [int(np.flatnonzero(np.isclose(tpot_ms, v, atol=0.005) & (runs.model == "deepseek-ai/DeepSeek-R1")
                               & (runs.isl == 8192))[0]) for v in (5.547, 5.573, 10.93)]
    assert len({g[i] for i in rows}) == 1
    assert group_spread(runs.measured_tpot_s, g)[g[rows[0]]] == pytest.approx(10.93 / 5.547, rel=0.01)


def test_the_same_run_under_two_labels_is_found(dev):
    """The lab book (docs/serving-experiments.md, "the written-out deployment of a repeated
    run"): the counted DeepSeek-V3-labelled `dsr1_..._cfgN` rows record the
    same runs as DeepSeek-R1 rows (e.g. 3,584 in flight: 4,741.9 ms / 48.587 ms in both)."""
    runs, _, a = dev
    rl = a["relabelled"]
    assert rl["sets"] >= 10 and any("model" in k for k in rl["by_facts"])
    hit = np.flatnonzero(np.isclose(runs.measured_ttft_s * 1e3, 4741.9, atol=0.05)
                         & np.isclose(runs.measured_tpot_s * 1e3, 48.587, atol=0.0005))
    assert {"deepseek-ai/DeepSeek-R1", "deepseek-ai/DeepSeek-V3"} <= set(runs.model[hit].tolist())


def test_near_twins_and_the_model_claim(dev):
    """The brief's near twins are found; the replay's TTFT barely moves with the output
    length at <= 8 in flight (the physical claim the table rests on), the data's does."""
    runs, _, a = dev
    nt = a["near_twins"]
    assert nt["groups"] > 20
    assert nt["predicted_spread"]["median"] < 1.05
    assert nt["spread"]["p90"] > nt["predicted_spread"]["p90"]
    llama = [w for w in nt["worst"] if "Llama-3.1-8B" in w["facts"] and "tp 2, 1024 in, 8 in flight" in w["facts"]
             and [round(r["measured_ms"]) for r in w["rows"]] == [129, 209, 368]]
    assert llama and [r["osl"] for r in llama[0]["rows"]] == [128, 256, 512]
    # the rows' TTFT against osl x TPOT / C (TPOT 5.21 / 4.93 / 4.83 ms at 8 in flight): by hand,
    # (367.8 - 129.4) / (512 x 4.827 - 128 x 5.212) x 8 = 1.06 from the end points
    assert llama[0]["slope"] == pytest.approx(1.06, abs=0.03)


def test_script_runs_and_refuses_a_bad_file(tmp_path):
    if not DEV.exists():
        pytest.skip("no dev file")
    out = subprocess.run([sys.executable, str(SCRIPT), "--worst", "2"], capture_output=True, text=True, timeout=120,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "floor" in out.stdout and "NEAR TWINS" in out.stdout
    # a file without a single repeat (the published B200 rows) prints its tables all the same
    none = subprocess.run([sys.executable, str(SCRIPT), str(ROOT / "tests" / "data" / "vultr-b200.csv")],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert none.returncode == 0 and "0 sets hold more than one row" in none.stdout, none.stderr[-2000:]
    bad = tmp_path / "bad.csv"
    bad.write_text(DEV.read_text(encoding="utf-8").splitlines()[0] + "\n" + "x," * 5 + "\n", encoding="utf-8")
    out = subprocess.run([sys.executable, str(SCRIPT), str(bad)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    for worst in ("-3", "x"):  # a number of groups below 0, or not a number: a usage error, exit 2
        out = subprocess.run([sys.executable, str(SCRIPT), "--worst", worst], capture_output=True, text=True,
                             timeout=120, cwd=ROOT)
        assert out.returncode == 2 and "argument --worst" in out.stderr and "Traceback" not in out.stderr
