"""A prompt shared by a request's samples is read once a decode step only where the engine's
attention kernel does it (issue 10, item 6): each request's samples for a multi-level
cascade (the generic engine), a prefix common to every sequence of the step for vLLM V1
(``use_cascade_attention``: 256 prefix tokens, 8 sequences, no sliding window), never for
SGLang's and TensorRT-LLM's decode kernels. Oracle: the KV bytes the decode reads differ
by exactly the shared prompt's reads saved, ``(S - n) x G x P x`` the KV bytes of a token
(a request's share of them in the report)
over the layers (from the model's published shape), with ``S`` sequences and ``n`` reads of
the prompt a step; the KV memory held is the same either way."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from planner.catalog import load_model
from planner.cost.api import estimate
from planner.engine_profiles import load_engine

G = 64


def kv_token_bytes(name: str) -> float:
    """K and V of one token over every layer at 16 bits (the model's published config)."""
    m = load_model(name)
    return 2.0 * m.num_kv_heads * m.head_dim * 2.0 * m.num_layers


def run(engine, model="qwen3-8b", batch=1, samples=16, prompt=1024):
    return estimate(model, "h100-sxm", batch=batch, samples=samples, prompt_len=prompt, gen_len=G,
                    engine=None if engine is None else load_engine(engine))


def test_vllm_cascade_facts_have_sources():
    data = yaml.safe_load((Path(__file__).resolve().parents[1] / "engines" / "vllm.yaml").read_text())
    assert (data["cascade_prefix"], data["cascade_min_prefix_tokens"], data["cascade_min_sequences"]) == ("batch", 256, 8)
    for key in ("cascade_attention", "cascade_prefix", "cascade_min_prefix_tokens", "cascade_min_sequences"):
        assert "use_cascade_attention" in data["sources"][key] or "cascade" in data["sources"][key], key
    assert load_engine("sglang").attention_columns()["cascade"] == 0
    assert load_engine("trtllm").attention_columns()["cascade"] == 0
    assert load_engine(None).attention_columns()["cascade"] == 2


@pytest.mark.parametrize("batch, samples, reads_once", [(1, 16, 1), (1, 8, 1), (4, 16, 16), (1, 4, 4)])
def test_vllm_reads_the_prompt_once_only_when_one_request_is_the_step(batch, samples, reads_once):
    """vLLM against SGLang (no cascade kernel, every sequence reads the prompt): the saving is
    (S - 1) G P token-KVs when one request of >= 8 samples is the whole step, none with 4
    requests in the step (no prefix common to all) or with 4 samples (too few)."""
    P, S = 1024, batch * samples
    v, s = run("vllm", batch=batch, samples=samples), run("sglang", batch=batch, samples=samples)
    saved = s["bytes"]["kv_cache"] - v["bytes"]["kv_cache"]
    expected = (S - 1) * G * P * kv_token_bytes("qwen3-8b") if reads_once == 1 else 0.0
    assert saved == pytest.approx(expected, rel=1e-9, abs=1.0)
    assert v["memory"]["kv_cache_bytes"] == s["memory"]["kv_cache_bytes"]  # stored once either way


def test_generic_engine_reads_each_requests_prompt_once():
    """The generic engine's multi-level cascade: n requests of k samples read n prompts a step
    (the report's bytes are a request's: 1 / n of the batch's)."""
    P, n, k = 1024, 4, 16
    g, s = run(None, batch=n, samples=k), run("sglang", batch=n, samples=k)
    assert s["bytes"]["kv_cache"] - g["bytes"]["kv_cache"] == pytest.approx(
        (n * k - n) / n * G * P * kv_token_bytes("qwen3-8b"), rel=1e-9)


@pytest.mark.parametrize("model, prompt", [("qwen3-8b", 200), ("gemma-2-9b", 1024)])
def test_vllm_thresholds_short_prefix_and_sliding_window(model, prompt):
    """Below 256 prefix tokens, or with sliding-window layers, vLLM reads per sequence as SGLang does."""
    v = run("vllm", model=model, prompt=prompt)
    s = run("sglang", model=model, prompt=prompt)
    assert v["bytes"]["kv_cache"] == pytest.approx(s["bytes"]["kv_cache"], rel=1e-12)
    g = run(None, model=model, prompt=prompt)
    assert g["bytes"]["kv_cache"] < s["bytes"]["kv_cache"]  # the generic engine's kernel does share it


def test_serving_steady_state_follows_the_same_rule():
    """Continuous batching (steady state): 4 requests of 16 samples in flight under vLLM read
    every sequence's prompt (as SGLang), one request alone reads it once (as the generic engine)."""
    kw = dict(samples=16, prompt_len=1024, gen_len=G, arrival="steady")
    four = {e: estimate("qwen3-8b", "h100-sxm", concurrency=4, engine=load_engine(e), **kw)
            for e in ("vllm", "sglang")}
    assert four["vllm"]["bytes"]["kv_cache"] == pytest.approx(four["sglang"]["bytes"]["kv_cache"], rel=1e-12)
    one = {e: estimate("qwen3-8b", "h100-sxm", concurrency=1, engine=load_engine(e), **kw)
           for e in ("vllm", "sglang", None)}
    assert one["vllm"]["bytes"]["kv_cache"] == pytest.approx(one[None]["bytes"]["kv_cache"], rel=1e-12)
    assert one["vllm"]["bytes"]["kv_cache"] < one["sglang"]["bytes"]["kv_cache"]


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_recommend_costs_samples_with_the_named_engines_reads(capsys, engine):
    """Oracle: `planner estimate --engine E --samples k` on a recommended majority-vote row
    (one generate stage of k samples) gives the row's latency and dollars: the search reads
    the shared prompt as the named engine does (aime24's 150-token prompt is below vLLM's
    256, so neither engine reads it once; the generic engine would)."""
    import json

    from planner.cli import main

    def js(*argv):
        capsys.readouterr()
        assert main([*argv, "--json"]) in (0, None)
        return json.loads(capsys.readouterr().out)

    d = js("recommend", "--task", "aime24", "--models", "qwen3-8b", "--hardware", "h100-sxm", "--engine", engine,
           "--no-budgets", "--top", "30", "--no-sparse")
    rows = [r for r in d["recommendations"] + d["frontier"] if r["strategy"] == "majority" and r["samples"] >= 8]
    assert rows
    for r in rows[:3]:
        e = js("estimate", "-m", r["model"], "-H", "h100-sxm", "--engine", engine, "--devices", str(r["devices"]),
               "--batch", str(r["batch"]), "--samples", str(r["samples"]), "--prompt-len", str(d["prompt_len"]),
               "--gen-len", str(r["gen_len"]), "--weight-dtype", r["weight_dtype"], "--act-dtype", r["act_dtype"],
               "--kv-dtype", r["kv_dtype"])
        assert r["latency_s"] == pytest.approx(e["latency_s"], rel=1e-4)
        assert r["cost_usd"] == pytest.approx(e["cost_usd"], rel=1e-4)


def test_estimate_says_how_the_engine_reads_a_shared_prompt():
    """Every estimate with samples names the engine's read rule; one sample, or no sharing, says nothing."""
    from planner.estimating import estimate as full_estimate

    say = lambda e, **kw: [a for a in full_estimate("qwen3-8b", "h100-sxm", engine=e, **kw)["assumptions"]  # noqa: E731
                           if a.startswith("samples:")]
    assert "at least 8 sequences and 256 prompt tokens" in say("vllm", samples=16)[0]
    assert "per sequence (no shared-prefix decode kernel)" in say("sglang", samples=4)[0]
    assert "for each request's samples" in say(None, samples=4)[0]
    assert say("vllm", samples=1) == [] and say("vllm", samples=4, prefix_sharing=False) == []
