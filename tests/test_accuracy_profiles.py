"""Shipped task profiles: they load, reproduce the published pass@1, and the thinking-budget
and sparse-attention models reproduce the Kinetics per-sample data they were fitted on."""

import numpy as np
import pytest

from planner.accuracy import find_profile, list_profiles, list_tasks, load_profile, predict, profiles_for_task
from planner.accuracy.profile import TaskProfile
from planner.errors import InputError

# Published single-sample accuracies (REFERENCES.md: Kinetics LiteSys README; Qwen3 blog;
# DeepSeek-R1 paper; Llama 3.1 model card).
PUBLISHED = {
    ("aime24", "qwen3-0.6b"): 0.115, ("aime24", "qwen3-1.7b"): 0.459, ("aime24", "qwen3-4b"): 0.717,
    ("aime24", "qwen3-8b"): 0.752, ("aime24", "qwen3-14b"): 0.796, ("aime24", "qwen3-32b"): 0.821,
    ("aime25", "qwen3-0.6b"): 0.165, ("aime25", "qwen3-1.7b"): 0.386, ("aime25", "qwen3-4b"): 0.655,
    ("aime25", "qwen3-8b"): 0.688, ("aime25", "qwen3-14b"): 0.736, ("aime25", "qwen3-32b"): 0.729,
    ("aime24", "qwen3-30b-a3b"): 0.804, ("aime24", "qwen3-235b-a22b"): 0.857,
    ("aime25", "qwen3-30b-a3b"): 0.709, ("aime25", "qwen3-235b-a22b"): 0.815,
    ("livecodebench-v5", "qwen3-1.7b"): 0.320, ("livecodebench-v5", "qwen3-4b"): 0.527,
    ("livecodebench-v5", "qwen3-8b"): 0.566, ("livecodebench-v5", "qwen3-14b"): 0.617,
    ("livecodebench-v5", "qwen3-32b"): 0.638,
    ("gsm8k", "qwen3-0.6b"): 0.744,
    ("math500", "llama-3.1-8b"): 0.519, ("math500", "llama-3.1-70b"): 0.680,
    ("gsm8k", "llama-3.1-8b"): 0.845, ("gsm8k", "llama-3.1-70b"): 0.951,
    ("humaneval", "llama-3.1-8b"): 0.726, ("humaneval", "llama-3.1-70b"): 0.805,
    ("aime24", "deepseek-r1"): 0.798, ("math500", "deepseek-r1"): 0.973,
}


def test_every_profile_is_listed_and_published():
    assert set(list_profiles()) == set(PUBLISHED)
    assert {"aime24", "aime25", "math500", "gsm8k", "livecodebench-v5", "humaneval"} <= set(list_tasks())


@pytest.mark.parametrize("task,model", sorted(PUBLISHED))
def test_profile_reproduces_published_pass_at_1(task, model):
    """The file carries the published figure, and the predictions agree with a Monte-Carlo
    brute force over problems drawn from the profile's difficulty distribution: a problem
    solved with probability p is solved by one of k samples with probability 1 - (1 - p)^k
    (the pass@k definition of Chen et al. 2021), so single and pass@k accuracies are the
    sample means of p and of 1 - (1 - p)^k (n = 400,000 problems; 5 standard errors)."""
    prof = find_profile(model, task)
    assert prof.spec.pass_at_1 == PUBLISHED[(task, model)]
    assert {"pass_at_1", "difficulty", "trace_length"} <= set(prof.spec.sources)
    assert prof.spec.assumptions
    p = prof.difficulty.sample_p(np.random.default_rng(7), 400_000)
    for k in (1, 4, 64):
        solved = 1.0 - (1.0 - p) ** k
        tol = 5 * solved.std() / np.sqrt(p.size) + 1e-4  # + the profile's quadrature error
        assert float(predict(prof, "pass@k", k)) == pytest.approx(solved.mean(), abs=tol)
    assert float(predict(prof, "single", 1)) == pytest.approx(p.mean(), abs=5 * p.std() / np.sqrt(p.size) + 1e-4)


def test_exact_figure_qwen3_8b_aime24():
    prof = load_profile("qwen3-8b/aime24")
    assert float(predict(prof, "single", 1, 30768)) == pytest.approx(0.752, abs=1e-6)
    assert load_profile("aime24/qwen3-8b") is prof or load_profile("aime24/qwen3-8b").name == prof.name
    assert load_profile("aime24--qwen3-8b").name == "aime24--qwen3-8b"


def test_profiles_for_task_and_code_checker():
    models = [p.model for p in profiles_for_task("aime24")]
    assert {"qwen3-0.6b", "qwen3-8b", "qwen3-32b", "qwen3-235b-a22b", "deepseek-r1"} <= set(models)
    assert all(p.spec.perfect_checker for p in profiles_for_task("livecodebench-v5"))
    assert not any(p.spec.perfect_checker for p in profiles_for_task("aime24"))


def test_unknown_profiles_are_input_errors():
    with pytest.raises(InputError, match="unknown task"):
        find_profile("qwen3-8b", "aime99")
    with pytest.raises(InputError, match="no profile for this model"):
        find_profile("gpt-9", "aime24")
    with pytest.raises(InputError, match="unknown task profile"):
        load_profile("nobody/nothing")
    with pytest.raises(InputError, match="file not found"):
        load_profile("/tmp/definitely-missing-profile.yaml")


def test_profile_validation_rejects_inconsistent_mean(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("task: t\nmodel: m\ntask_kind: math_answer\npass_at_1: 0.5\nreference_gen_len: 100\n"
                   "difficulty: {kind: beta, a: 1.0, b: 3.0}\ntrace_length: {median_tokens: 50, sigma: 0.5}\n"
                   "sources: {pass_at_1: x}\n")
    with pytest.raises(InputError, match="does not match pass_at_1"):
        load_profile(str(bad))


# ---------------------------------------------------------------------------------------
# Thinking budget: Kinetics AIME24 traces of Qwen3-8B (30 problems x 32 samples). The
# accuracy a budget L would give under truncation, computed from those traces, is
# 0.032 / 0.281 / 0.480 / 0.592 / 0.690 at 4K / 8K / 12K / 16K / 24K tokens.
# ---------------------------------------------------------------------------------------
def test_thinking_budget_matches_kinetics_traces():
    prof = load_profile("qwen3-8b/aime24")
    L = np.array([4096, 8192, 12288, 16384, 24576])
    observed = np.array([0.032, 0.281, 0.480, 0.592, 0.690])
    pred = predict(prof, "single", 1, L)
    assert np.max(np.abs(pred - observed)) < 0.04
    # an 8B model at 2K generated tokens is far below its 32K accuracy (most traces truncated)
    assert float(predict(prof, "single", 1, 2048)) < 0.05


def test_smaller_models_are_longer_and_weaker():
    acc = {m: float(predict(load_profile(f"{m}/aime24"), "single", 1, 16384)) for m in
           ("qwen3-0.6b", "qwen3-1.7b", "qwen3-8b", "qwen3-32b")}
    assert acc["qwen3-0.6b"] < acc["qwen3-1.7b"] < acc["qwen3-8b"] < acc["qwen3-32b"]


# ---------------------------------------------------------------------------------------
# Sparse attention: Kinetics block top-k data for Qwen3-8B on AIME24 at the 30.7K budget:
# pass@1 0.735 at KV budget 1024 and 0.452 at 256 (dense 0.752).
# ---------------------------------------------------------------------------------------
def test_sparse_attention_matches_kinetics_block_topk():
    prof = load_profile("qwen3-8b/aime24")
    acc = predict(prof, "single", 1, 30768, kv_budget=np.array([0, 256, 1024, 2048, 4096]))
    assert acc[0] == pytest.approx(0.752, abs=1e-6)
    assert acc[1] == pytest.approx(0.452, abs=0.02)
    assert acc[2] == pytest.approx(0.735, abs=0.02)
    assert acc[3] > 0.752 - 0.015 and acc[4] > 0.752 - 0.005       # near dense at 1-2K budgets
    # close to dense at 16-32K generation with a 1-2K budget
    for L in (16384, 30768):
        dense = float(predict(prof, "single", 1, L))
        assert float(predict(prof, "single", 1, L, kv_budget=2048)) > dense - 0.03
    # a budget covering the whole generation is dense
    assert float(predict(prof, "single", 1, 4096, kv_budget=8192)) == pytest.approx(
        float(predict(prof, "single", 1, 4096)), abs=1e-12)
    # very small budgets collapse
    assert float(predict(prof, "single", 1, 30768, kv_budget=64)) < 0.2


def test_quantization_penalties_follow_the_literature():
    p8 = load_profile("qwen3-8b/aime24")
    base = float(predict(p8, "single", 1))
    drop = lambda prof, **kw: float(predict(prof, "single", 1)) - float(predict(prof, "single", 1, **kw))
    assert drop(p8, weight_dtype="fp8") < 0.002                        # W8A8-FP8 lossless (Kurtic)
    assert drop(p8, weight_dtype="int8") < 0.01                        # W8A8-INT ~1% (Kurtic, Liu)
    assert 0.0 < drop(p8, weight_dtype="int4") < 0.03                  # W4A16 near lossless (Liu)
    assert drop(p8, kv_dtype="int4") < 0.015                           # KV4 near lossless (Liu)
    small = load_profile("qwen3-1.7b/aime24")
    assert drop(small, weight_dtype="int4", act_dtype="int4", kv_dtype="int4") > 0.10   # W4A4KV4 >10 pts (Liu)
    gsm = load_profile("llama-3.1-8b/gsm8k")
    # harder tasks degrade more than GSM8K (Liu et al. 2025)
    assert drop(p8, weight_dtype="int4") > 3 * drop(gsm, weight_dtype="int4")
    assert base > 0


def test_inline_profile_object(tmp_path):
    mean = 0.5 * 0.2 / 1.2 + 0.5 * 3.0 / 4.8
    spec = TaskProfile.model_validate(dict(
        task="t", model="m", task_kind="code_tests", pass_at_1=round(mean, 6), reference_gen_len=1000,
        difficulty=dict(kind="mixture", components=[dict(weight=0.5, a=0.2, b=1.0), dict(weight=0.5, a=3.0, b=1.8)]),
        trace_length=dict(median_tokens=300, sigma=0.5), sources={"pass_at_1": "test"}))
    assert spec.perfect_checker
    assert float(predict(spec, "single", 1)) == pytest.approx(mean, abs=1e-9)
    assert float(predict(spec, "pass@k", 8)) == pytest.approx(float(spec.difficulty.build().pass_at_k(8)), abs=5e-4)
