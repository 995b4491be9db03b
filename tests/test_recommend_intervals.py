"""`planner recommend` says how sure it is and which profile it used: each row's 80%
accuracy interval (the oracle: `planner accuracy --json` on the same configuration),
`--conservative` ranking by the interval's lower end (brute force over a small grid),
and the serving profile of `--engine` (the oracle: `planner estimate --engine` on the row)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from planner.cli import main

TASK = "h6task"
SMALL = ["--task", TASK, "--models", "qwen3-8b", "--hardware", "h100-sxm", "--no-budgets"]


def _json(capsys, *args) -> dict:
    capsys.readouterr()
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture()
def fitted(tmp_path, monkeypatch, capsys):
    """A profile fitted by `planner fit` (so it carries bootstrap replicates) for a catalog
    model, found through $PLANNER_PATH."""
    rng = np.random.default_rng(6)
    p = rng.beta(0.6, 1.5, 60)
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps({"problem": f"q{i}", "n": 40, "correct": int(c)}) + "\n"
                           for i, c in enumerate(rng.binomial(40, p))))
    (tmp_path / "tasks").mkdir()
    out = tmp_path / "tasks" / f"{TASK}--qwen3-8b.yaml"
    assert main(["fit", str(log), "-m", "qwen3-8b", "-t", TASK, "-o", str(out), "--gen-len", "4096"]) == 0
    capsys.readouterr()
    monkeypatch.setenv("PLANNER_PATH", str(tmp_path))
    return out


def _scenario(tmp_path, **extra) -> str:
    import yaml

    f = tmp_path / "scn.yaml"
    f.write_text(yaml.safe_dump({"task": TASK, "models": ["qwen3-8b"], "hardware": ["h100-sxm"],
                                 "strategies": ["single", "majority", "pass@k"], "samples": [1, 4, 16],
                                 "gen_lens": [1024, 4096], "quantizations": ["bf16", "int4"],
                                 "kv_dtypes": ["bf16"], "batches": [1, 16], "devices": [1, 2], "sparse": False,
                                 "top": 1000, **extra}))
    return str(f)


def test_rows_carry_the_interval_of_planner_accuracy(fitted, tmp_path, capsys):
    d = _json(capsys, "recommend", "--scenario", _scenario(tmp_path), "--top", "40")
    assert d["intervals"]["qwen3-8b"].startswith("bootstrap")
    rows = d["recommendations"] + d["frontier"]
    assert rows
    for r in rows[:12]:
        lo, hi = r["interval_80"]
        assert 0 <= lo <= hi <= 1  # a percentile bootstrap need not hold the point estimate
        acc = _json(capsys, "accuracy", "-p", str(fitted), "-s", r["strategy"], "-k", str(r["samples"]),
                    "--gen-len", str(r["gen_len"]), "--weight-dtype", r["weight_dtype"], "--kv-dtype", r["kv_dtype"],
                    "--act-dtype", r["act_dtype"])
        assert acc["interval_80"] == pytest.approx([lo, hi], abs=2e-6)  # the search keeps float32
        assert acc["accuracy"] == pytest.approx(r["accuracy"], abs=2e-6)


def test_conservative_ranks_and_filters_by_the_lower_end(fitted, tmp_path, capsys):
    """Brute force: with top = the whole grid, every row is listed; --conservative orders
    them by the lower end, and the floor keeps exactly the rows whose lower end reaches it."""
    scn = _scenario(tmp_path)
    plain = _json(capsys, "recommend", "--scenario", scn)
    cons = _json(capsys, "recommend", "--scenario", scn, "--conservative")
    assert cons["conservative"] and not plain["conservative"]
    los = [r["interval_80"][0] for r in cons["recommendations"]]
    assert los == sorted(los, reverse=True) and len(los) == plain["within_budgets"]
    # the point ranking differs from the conservative one somewhere (wide intervals at large k)
    assert [r["accuracy"] for r in plain["recommendations"]] == sorted(
        [r["accuracy"] for r in plain["recommendations"]], reverse=True)
    floor = float(np.median(los))
    f = _json(capsys, "recommend", "--scenario", scn, "--conservative", "--min-accuracy", f"{floor:.6f}")
    assert all(r["interval_80"][0] >= floor - 1e-9 for r in f["recommendations"])
    assert len(f["recommendations"]) == sum(lo >= float(f"{floor:.6f}") - 1e-9 for lo in los)
    # the point accuracy passes the floor on more rows than the lower end does
    p = _json(capsys, "recommend", "--scenario", scn, "--min-accuracy", f"{floor:.6f}")
    assert len(p["recommendations"]) > len(f["recommendations"])


def test_table_shows_the_interval_column_and_the_conservative_header(fitted, tmp_path, capsys):
    capsys.readouterr()
    assert main(["recommend", "--scenario", _scenario(tmp_path), "--top", "3", "--conservative", "--wide"]) == 0
    out = capsys.readouterr().out
    header = next(x for x in out.splitlines() if x.startswith("model "))
    assert "acc 80%" in header and "conservative: ranked by the lower end" in out
    row = next(x for x in out.splitlines() if x.startswith("qwen3-8b"))
    lo_hi = [c for c in row.split() if "-" in c and c[0].isdigit()]
    assert lo_hi and all(0 <= float(a) <= float(b) <= 1 for a, b in (c.split("-") for c in lo_hi))


def test_shipped_profiles_say_why_there_is_no_interval(capsys):
    d = _json(capsys, "recommend", "--task", "aime24", "--models", "qwen3-8b", "--top", "2")
    assert all(r["interval_80"] is None for r in d["recommendations"])
    assert "no bootstrap replicates" in d["intervals"]["qwen3-8b"]
    capsys.readouterr()
    assert main(["recommend", "--task", "aime24", "--models", "qwen3-8b", "--top", "2", "--wide"]) == 0
    out = capsys.readouterr().out
    assert "n/a" in out and "no bootstrap replicates" in out


@pytest.mark.parametrize("hw", ["h200", "h100-sxm"])
def test_engine_rows_re_estimate_to_the_same_latency(capsys, hw):
    """Oracle: `planner estimate --engine vllm` on a recommended row (single strategy: one
    generate stage) gives the row's latency, energy and dollars; the answer names the
    serving profile fitted for that device and engine."""
    d = _json(capsys, "recommend", "--task", "aime24", "--models", "qwen3-8b", "--hardware", hw, "--engine", "vllm",
              "--no-budgets", "--top", "4", "--no-sparse")
    assert f"calibration/serving/{hw}.vllm.yaml" in d["profiles_used"][hw]
    rows = [r for r in d["recommendations"] + d["frontier"] if r["strategy"] == "single"]
    assert rows
    for r in rows[:4]:
        e = _json(capsys, "estimate", "-m", r["model"], "-H", hw, "--engine", "vllm", "--devices", str(r["devices"]),
                  "--batch", str(r["batch"]), "--prompt-len", str(d["prompt_len"]), "--gen-len", str(r["gen_len"]),
                  "--weight-dtype", r["weight_dtype"], "--act-dtype", r["act_dtype"], "--kv-dtype", r["kv_dtype"])
        assert f"{hw}.vllm.yaml" in e["efficiency"]
        assert r["latency_s"] == pytest.approx(e["latency_s"], rel=1e-4)  # the search runs in float32
        assert r["cost_usd"] == pytest.approx(e["cost_usd"], rel=1e-4)
    # with the generic engine the device keeps its datasheet defaults, and says so
    plain = _json(capsys, "recommend", "--task", "aime24", "--models", "qwen3-8b", "--hardware", hw, "--engine",
                  "generic", "--top", "1")
    assert plain["profiles_used"][hw].startswith("defaults")
    # no --engine: the default scenario's (vLLM), so the fitted profile again
    dflt = _json(capsys, "recommend", "--task", "aime24", "--models", "qwen3-8b", "--hardware", hw, "--top", "1")
    assert f"calibration/serving/{hw}.vllm.yaml" in dflt["profiles_used"][hw]


def test_unmeasured_device_says_datasheet_plus_carried(capsys):
    d = _json(capsys, "recommend", "--task", "aime24", "--models", "qwen3-8b", "--hardware", "b200", "--engine",
              "sglang", "--top", "1")
    assert d["profiles_used"]["b200"].startswith("datasheet + carried sglang parameters")
    capsys.readouterr()
    assert main(["recommend", "--task", "aime24", "--models", "qwen3-8b", "--hardware", "b200", "--engine", "sglang",
                 "--top", "1"]) == 0
    assert "profile for b200: datasheet + carried sglang parameters" in capsys.readouterr().out


def test_unknown_engine_exits_2(capsys):
    assert main(["recommend", "--engine", "tgi", "--top", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "engine" in err and "tgi" in err and "\n" not in err
