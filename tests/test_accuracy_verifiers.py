"""Verifiers with their own quality (issue 12 item 2): a better verifier gives better
accuracy, a pair without a verifier profile falls back with a note, an unknown verifier
model exits 2 naming 'verifier', and every shipped verifier number has a source."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.accuracy import find_profile, predict
from planner.accuracy.verifiers import QUALITY_FIELDS, find_verifier, list_verifiers, verifier_quality
from planner.cli import main


@settings(max_examples=25, deadline=None)
@given(auc=st.floats(0.55, 0.97), gain=st.floats(0.01, 0.02), k=st.sampled_from([2, 4, 16, 64]),
       L=st.sampled_from([2048, 8192, 32768]))
def test_higher_auc_gives_higher_best_of_k(auc, gain, k, L):
    prof = find_profile("llama-3.1-8b", "math500")
    lo = float(predict(prof, "best-of-k", k, L, reward_auc=auc))
    hi = float(predict(prof, "best-of-k", k, L, reward_auc=auc + gain))
    assert hi > lo


def test_shipped_verifier_profiles_are_sourced_and_ordered():
    pairs = list_verifiers()
    assert ("math500", "qwen2.5-72b") in pairs
    for task, v in pairs:
        vp, _ = find_verifier(v, task)
        assert set(QUALITY_FIELDS) <= set(vp.sources)
    strong, _ = find_verifier("qwen2.5-72b", "math500")
    weak, _ = find_verifier("llama-3.1-8b", "math500")
    assert strong.reward_auc > weak.reward_auc and strong.soundness > weak.soundness


def test_verifier_changes_accuracy_through_the_cli(capsys):
    accs = {}
    for v in ("qwen2.5-72b", "llama-3.1-8b"):
        for strat in ("best-of-k", "verify"):
            assert main(["accuracy", "--model", "llama-3.1-70b", "--task", "math500", "--strategy", strat,
                         "--samples", "8", "--verifier", v, "--json"]) == 0
            out = json.loads(capsys.readouterr().out)
            assert out["verifier_profile"].endswith(f"math500--{v}.yaml") and out["notes"] == []
            accs[v, strat] = out["accuracy"]
    assert accs["qwen2.5-72b", "best-of-k"] > accs["llama-3.1-8b", "best-of-k"]
    assert accs["qwen2.5-72b", "verify"] > accs["llama-3.1-8b", "verify"]


def test_unknown_pair_falls_back_with_a_note(capsys):
    prof = find_profile("qwen3-8b", "aime24")
    vq = verifier_quality("qwen3-32b", prof)
    d = prof.spec.defaults
    assert (vq["completeness"], vq["soundness"], vq["reward_auc"]) == (
        d.verifier_completeness, d.verifier_soundness, d.reward_auc)
    assert "no verifier profile" in vq["note"]
    assert main(["accuracy", "--model", "qwen3-8b", "--task", "aime24", "--strategy", "verify", "--samples", "4",
                 "--verifier", "qwen3-32b", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["verifier_profile"] is None and "no verifier profile for qwen3-32b" in out["notes"][0]
    base = float(predict(prof, "verify", 4))
    assert out["accuracy"] == pytest.approx(base, abs=1e-12)


def test_explicit_flags_win_over_the_verifier_profile(capsys):
    assert main(["accuracy", "--model", "deepseek-r1", "--task", "math500", "--strategy", "verify", "--samples", "8",
                 "--verifier", "qwen2.5-72b", "--verifier-soundness", "0.99", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["strategy_params"] == {"verifier_completeness": 0.931, "verifier_soundness": 0.99}


@pytest.mark.parametrize("cmd", [
    ["accuracy", "--model", "qwen3-8b", "--task", "aime24", "--strategy", "verify", "--samples", "4"],
    ["recommend", "--task", "math500", "--hardware", "h100-sxm"],
])
def test_bad_verifier_name_exits_2_naming_verifier(cmd, capsys):
    assert main(cmd + ["--verifier", "no-such-model"]) == 2
    err = capsys.readouterr().err
    assert "field 'verifier'" in err and "field 'model'" not in err and "Traceback" not in err


def test_recommend_uses_the_verifier_quality(capsys):
    """The verifier strategies alone (with the published verifier figures majority voting
    dominates them on this task, so the full frontier does not show the verifier); budgets
    well above the cheapest verified configuration (~$0.01 per request, the default
    budget's edge), so that the verifier's quality decides the frontier's top."""
    import planner

    res = {}
    for v in ("qwen2.5-72b", "llama-3.1-8b"):
        out = planner.recommend(task="math500", models=["llama-3.1-70b"], hardware=["h100-sxm"], verifier=v,
                                strategies=["best-of-k", "verify"], max_usd=0.05, max_latency_s=600)
        assert out["verifier_quality"]["llama-3.1-70b"]["source"].endswith(f"math500--{v}.yaml")
        res[v] = max(r["accuracy"] for r in out["frontier"])
    assert res["qwen2.5-72b"] > res["llama-3.1-8b"]
    assert np.isfinite(list(res.values())).all()


def _scored_log(path, c, s, dprime, n_problems=300, k=8, seed=0, p_correct=0.5):
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n_problems):
        for _ in range(k):
            ok = bool(rng.random() < p_correct)
            acc = bool(rng.random() < (c if ok else 1.0 - s))
            score = float(rng.normal(dprime if ok else 0.0, 1.0))
            lines.append(json.dumps({"problem": f"p{i}", "correct": ok, "accepted": acc, "score": round(score, 5)}))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_fit_verifier_recovers_known_quality_and_is_used(tmp_path, monkeypatch, capsys):
    from scipy.stats import norm

    log = _scored_log(tmp_path / "v.jsonl", 0.92, 0.7, 1.2)
    d = tmp_path / "lib" / "tasks" / "verifiers"
    d.mkdir(parents=True)
    out = d / "aime24--qwen3-32b.yaml"
    assert main(["fit", str(log), "--verifier", "--model", "qwen3-32b", "--task", "aime24", "-o", str(out),
                 "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["completeness"] == pytest.approx(0.92, abs=0.02)
    assert res["soundness"] == pytest.approx(0.70, abs=0.03)
    assert res["reward_auc"] == pytest.approx(float(norm.cdf(1.2 / np.sqrt(2))), abs=0.02)
    monkeypatch.setenv("PLANNER_PATH", str(tmp_path / "lib"))
    vq = verifier_quality("qwen3-32b", find_profile("qwen3-8b", "aime24"))
    assert vq["note"] is None and vq["soundness"] == pytest.approx(res["soundness"])


def test_fit_verifier_refuses_a_log_without_wrong_samples(tmp_path, capsys):
    log = _scored_log(tmp_path / "v.jsonl", 0.9, 0.7, 1.0, n_problems=20, p_correct=1.0)
    out = tmp_path / "v.yaml"
    assert main(["fit", str(log), "--verifier", "--model", "qwen3-32b", "--task", "aime24", "-o", str(out)]) == 2
    assert "field 'accepted'" in capsys.readouterr().err and not out.exists()
