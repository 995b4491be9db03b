"""The shipped model catalog: every descriptor loads, is fully sourced, and its counted
parameters match the vendor's published figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.catalog import all_models, builtin_dir, load_model
from planner.params import count

REQUIRED = [
    "qwen3-0.6b", "qwen3-1.7b", "qwen3-4b", "qwen3-8b", "qwen3-14b", "qwen3-32b",
    "llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b", "llama-3.2-1b", "llama-3.2-3b",
    "mistral-7b", "gpt-oss-20b", "gpt-oss-120b", "qwen3-30b-a3b", "qwen3-235b-a22b",
    "mixtral-8x7b", "deepseek-v3", "deepseek-r1",
]
GEMMA_HYBRID = ["gemma-2-9b", "gemma-3-12b", "gemma-3-27b"]

TOL = 0.015
TOL_MLA = 0.03
# Vendors that publish an "active" count without the input-embedding lookup (it is a
# table read, not a matmul): OpenAI's gpt-oss model card (Table 1: "counting the
# unembedding but not the embedding") and DeepSeek (README_WEIGHTS: 36.6B activated,
# including the 0.9B output head). Compared against active - embedding.
# The Qwen3-30B-A3B card says "3.3B activated"; the architecture (whose counted total,
# 30,532,122,624, is exact to the parameter) gives 3.353B: the card truncates, so 1.61%.
# MiniMax publishes "10B active", a round figure: the architecture gives 10.4B without the
# input embedding (9.8B without the LM head as well), so 5%.
# Qwen publishes "17B activated" for Qwen3.5-397B-A17B, the round figure of its name: the
# architecture (counted total 396.3B against 397B) gives 17.35B, 2.1% over; a shared expert
# of 4096 (one reading of the config) would give 19.6B, so the check still tells them apart.
# Round figures of the same kind (each counted without the input embedding): Z.ai's "32B
# active" for GLM-4.5/4.6 (counted 32.86B, 2.7% over) and "12B active" for GLM-4.5-Air
# (12.80B, 6.7%; 12.2B without the LM head as well); the "A3B" of Qwen3-Next-80B-A3B and
# GLM-4.7-Flash (30B-A3B), whose cards give just "3B activated" (counted 3.56B and 3.58B,
# about 19% over; a dense-width shared expert, one misreading, would give 4.9B and more);
# Qwen3.5-35B-A3B's "3B activated" against a counted 2.95B (1.8% under).
ACTIVE_TOL_OVERRIDE = {"qwen3-30b-a3b": 0.02, "minimax-m2.5": 0.05, "qwen3.5-397b-a17b": 0.03,
                       "glm-4.5": 0.03, "glm-4.6": 0.03, "glm-4.5-air": 0.07,
                       "qwen3-next-80b-a3b": 0.20, "glm-4.7-flash": 0.20, "qwen3.5-35b-a3b": 0.02}

MODELS = {m.name: m for m in all_models()}


def _rel(a: float, b: float) -> float:
    return abs(a - b) / b


def test_catalog_size_and_file_names():
    assert len(MODELS) >= 20
    for path in builtin_dir("models").glob("*.yaml"):
        assert load_model(str(path)).name == path.stem, path


@pytest.mark.parametrize("name", REQUIRED)
def test_required_models_exist(name):
    assert name in MODELS


def test_a_gemma_hybrid_attention_model_exists():
    assert any(n in MODELS for n in GEMMA_HYBRID)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_number_is_sourced(name):
    m = MODELS[name]
    assert m.unsourced_fields() == []
    assert m.published_active_params is not None
    for f in ("published_total_params", "published_active_params", "max_context"):
        assert f in m.sources


@pytest.mark.parametrize("name", sorted(MODELS))
def test_counted_total_matches_published(name):
    m = MODELS[name]
    tol = TOL_MLA if m.mla is not None else TOL
    c = count(m)
    assert _rel(c.total_params, m.published_total_params) <= tol, (
        f"{name}: counted {c.total_params / 1e9:.3f}B vs published {m.published_total_params / 1e9:.3f}B")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_counted_active_matches_published(name):
    m = MODELS[name]
    tol = ACTIVE_TOL_OVERRIDE.get(name, TOL_MLA if m.mla is not None else TOL)
    c = count(m)
    active = c.active_params
    if m.published_active_excludes_embedding:
        active -= c.embedding_params
    assert _rel(active, m.published_active_params) <= tol, (
        f"{name}: counted {active / 1e9:.3f}B vs published {m.published_active_params / 1e9:.3f}B")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_dense_active_equals_total_and_moe_active_is_less(name):
    m = MODELS[name]
    c = count(m)
    if m.moe is None:
        assert c.active_params == c.total_params
        assert m.published_active_params == m.published_total_params
    else:
        assert c.active_params < c.total_params
        assert m.published_active_params < m.published_total_params


def test_kv_cache_per_token_llama_3_1_8b():
    c = count(MODELS["llama-3.1-8b"])
    assert c.kv_elems_per_token_layer == 2 * 8 * 128
    assert c.num_layers == 32 and c.num_sliding_layers == 0
    assert c.kv_elems_per_token_layer * c.num_layers * 2 == 131072  # bytes per token in bf16


def test_kv_cache_per_token_deepseek_v3_mla():
    m = MODELS["deepseek-v3"]
    c = count(m)
    assert m.attention_kind == "mla"
    assert c.kv_elems_per_token_layer == 512 + 64 == 576


def test_deepseek_moe_layout():
    for name in ("deepseek-v3", "deepseek-r1"):
        e = MODELS[name].moe
        assert (e.num_experts, e.experts_per_token, e.num_shared_experts, e.first_dense_layers) == (256, 8, 1, 3)
        assert count(MODELS[name]).num_moe_layers == 58


@pytest.mark.parametrize("name", [n for n in sorted(MODELS) if n.startswith(("gemma", "gpt-oss"))])
def test_sliding_window_models_have_sliding_layers(name):
    m = MODELS[name]
    assert m.sliding_window is not None and m.num_sliding_layers > 0
    assert m.num_sliding_layers < m.num_layers  # hybrid: some global layers remain
    assert count(m).num_global_layers == m.num_layers - m.num_sliding_layers


def test_gpt_oss_alternates_128_token_window_and_full_attention():
    for name in ("gpt-oss-20b", "gpt-oss-120b"):
        m = MODELS[name]
        assert m.sliding_window == 128 and 2 * m.num_sliding_layers == m.num_layers
        assert m.qkv_bias and m.o_bias and m.attention_sinks
        assert m.moe.expert_bias and m.moe.router_bias and m.moe.experts_per_token == 4


def test_mistral_7b_v0_3_vocabulary_and_tied_small_models():
    assert MODELS["mistral-7b"].vocab_size == 32768
    for name in ("qwen3-0.6b", "qwen3-1.7b", "qwen3-4b", "llama-3.2-1b", "llama-3.2-3b"):
        assert MODELS[name].tie_embeddings, name
    for name in ("qwen3-8b", "llama-3.1-8b", "gpt-oss-20b", "deepseek-v3"):
        assert not MODELS[name].tie_embeddings, name


def test_qwen3_dense_counts_match_kinetics_figures():
    # Kinetics (Sadhukhan et al. 2025) uses 0.752, 2.03, 4.02, 8.19, 14.77, 32.76 B; for the
    # tied 0.6B and 1.7B models it counts the LM head a second time (4.02B is the tied count).
    kinetics = {"qwen3-0.6b": 0.752e9, "qwen3-1.7b": 2.03e9, "qwen3-4b": 4.02e9, "qwen3-8b": 8.19e9,
                "qwen3-14b": 14.77e9, "qwen3-32b": 32.76e9}
    for name, p in kinetics.items():
        m = MODELS[name]
        c = count(m)
        untied = c.total_params + (c.embedding_params if m.tie_embeddings else 0)
        assert min(_rel(c.total_params, p), _rel(untied, p)) < 0.005, name


def test_models_import_from_a_file_path_and_planner_path(tmp_path, monkeypatch):
    src = builtin_dir("models") / "llama-3.1-8b.yaml"
    text = src.read_text(encoding="utf-8").replace("name: llama-3.1-8b", "name: my-llama")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "my-llama.yaml").write_text(text, encoding="utf-8")
    assert load_model(str(tmp_path / "models" / "my-llama.yaml")).name == "my-llama"
    monkeypatch.setenv("PLANNER_PATH", str(tmp_path))
    assert load_model("my-llama").hidden_size == 4096
    assert Path(src).is_file()
