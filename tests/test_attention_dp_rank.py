"""Attention data parallelism: a request is ONE rank's (planner.cost.expert_parallel
busiest_rank_excess_tokens, rank_local_prefill_s, step_budget) and MLA's counts, each
against an outside oracle: brute-force placements of prompts on ranks, hand counts from
DeepSeek-V3's config.json, the engines' documented budgets, monotonicity."""

from __future__ import annotations

import math

import numpy as np
import pytest

from planner.catalog import load_hardware, load_model
from planner.cost.api import columns
from planner.cost.context import Ctx
from planner.cost.expert_parallel import busiest_rank_excess_tokens, rank_local_prefill_s, step_budget
from planner.cost.ops import VECTOR
from planner.cost.steps import step_time
from planner.cost.tables import HardwareTable, ModelTable
from planner.engine_profiles import load_engine

# deepseek-ai/DeepSeek-V3 config.json
H, L, HEADS, V = 7168, 61, 128, 129280
Q_LORA, KV_LORA, NOPE, ROPE, VDIM = 1536, 512, 128, 64, 128
DENSE_LAYERS, INTER, EXPERT_INTER, SHARED, ROUTED, TOPK = 3, 18432, 2048, 1, 256, 8


def _busiest_brute(n_prompts, P, a):
    """Prompt tokens on the busiest of ``a`` ranks when ``n_prompts`` whole prompts are
    placed one per rank in turn (the balanced placement), less the even share."""
    per_rank = np.bincount(np.arange(n_prompts) % a, minlength=a) * P
    return per_rank.max() - n_prompts * P / a


@pytest.mark.parametrize("a", [1, 2, 4, 8, 16])
@pytest.mark.parametrize("n_prompts", [1, 2, 3, 4, 8, 16, 24, 32])
def test_busiest_rank_excess_against_placements(a, n_prompts):
    """Exact where the prompts number at most a rank each or a multiple of the ranks (the
    balanced placement's max), a lower bound of it otherwise; 0 at a = 1."""
    P = 1024.0
    got = float(busiest_rank_excess_tokens(np, float(a), n_prompts * P, P))
    brute = _busiest_brute(n_prompts, P, a)
    if a == 1:
        assert got == 0.0
    if n_prompts <= a or n_prompts % a == 0:
        assert got == pytest.approx(brute, abs=1e-9)
    else:
        assert 0.0 <= got <= brute + 1e-9


def test_a_chunk_is_one_ranks():
    """A prefill chunk shorter than the prompt is one rank's too: p < P gives p (1 - 1/a)."""
    assert float(busiest_rank_excess_tokens(np, 8.0, 512.0, 8192.0)) == pytest.approx(512.0 * 7 / 8)


def test_step_budget_follows_the_engines():
    """TensorRT-LLM and vLLM schedule each attention-DP rank under its own budget, SGLang
    divides its chunked-prefill size over the ranks (engines/*.yaml sources)."""
    for name, per_rank in (("trtllm", True), ("vllm", True), ("sglang", False), ("generic", False)):
        e = load_engine(name)
        assert e.dp_rank_budget is per_rank
        assert step_budget(e.token_budget, 8.0, float(e.dp_rank_budget)) == e.token_budget * (8 if per_rank else 1)
        assert step_budget(e.token_budget, 1.0, float(e.dp_rank_budget)) == e.token_budget


def _ctx(model, devices=1, attn_dp=8, ep=8):
    mt = ModelTable.build([load_model(model)])
    ht = HardwareTable.build([load_hardware("h200")])
    cols = columns(1, model=0, hardware=0, devices=devices, batch=1, concurrency=1, prompt_len=8192, gen_len=1024,
                   samples=1, weight_dtype="fp8", act_dtype="fp8", kv_dtype="bf16", kv_budget=0,
                   prefix_sharing=False, ep=ep, attn_dp=attn_dp)
    return Ctx(cols, mt, ht, xp=VECTOR)


def test_rank_local_work_hand_count_deepseek_v3():
    """The rank-local GEMMs of one DeepSeek-V3 token are its non-routed matmul weights,
    counted by hand from config.json: MLA projections (q_a, q_b, kv_a with the rope key,
    kv_b decompressing K and V per token in the prefill, o), 3 dense MLPs, 58 shared
    experts and routers; the attention of one token at context c is
    2 heads (qk_nope + qk_rope) + 2 heads v_head FLOPs per key and layer (MHA prefill)."""
    x = _ctx("deepseek-v3", devices=1)
    mla = (H * Q_LORA + Q_LORA * HEADS * (NOPE + ROPE) + H * (KV_LORA + ROPE) + KV_LORA * HEADS * (NOPE + VDIM)
           + HEADS * VDIM * H)
    moe_layers = L - DENSE_LAYERS
    dense = L * mla + DENSE_LAYERS * 3 * H * INTER + moe_layers * (SHARED * 3 * H * EXPERT_INTER + H * ROUTED)
    ctx = 4096.0
    attn_per_key = 2 * HEADS * (NOPE + ROPE) + 2 * HEADS * VDIM
    want = 2.0 * dense * float(x.s_per_gemm_flop.ravel()[0]) + L * ctx * attn_per_key * float(
        x.s_per_attn_flop.ravel()[0])
    got = float(np.asarray(rank_local_prefill_s(x, 1.0, ctx)).ravel()[0])
    # within 1e-5: the model also counts MLA's two latent RMSNorm vectors (1,536 + 512 per
    # layer) and the routers' bias (256 per MoE layer), 140k of 16.5B weights, with the GEMMs
    assert got == pytest.approx(want, rel=1e-5)
    # the rank's t devices split it
    x2 = _ctx("deepseek-v3", devices=2, attn_dp=4)
    assert float(np.asarray(rank_local_prefill_s(x2, 1.0, ctx)).ravel()[0]) == pytest.approx(got / 2, rel=1e-9)


def test_mla_counts_from_config():
    """MLA per layer (DeepSeek-V3 paper, section 2.1.1; config.json): the cache holds the
    512-wide latent plus the 64-wide rope key per token; the absorbed decode attends over
    them (scores 576, values 512 per head); the prefill runs multi-head attention on the
    decompressed keys (192) and values (128)."""
    m = ModelTable.build([load_model("deepseek-v3")]).cols
    assert m["kv_elems"][0] == KV_LORA + ROPE
    assert m["attn_dec"][0] == 2 * HEADS * (KV_LORA + ROPE) + 2 * HEADS * KV_LORA
    assert m["attn_pre"][0] == 2 * HEADS * (NOPE + ROPE) + 2 * HEADS * VDIM
    # 70,272 bytes of bf16 cache per token over the 61 layers
    assert m["kv_elems"][0] * 2 * L == 70272


def test_a_lone_prompt_step_is_its_ranks():
    """A step carrying one 8,192-token prompt on attention DP 8 takes longer than the same
    tokens spread evenly (the old charge), by the rank-local work of 7/8 of the prompt,
    and no longer than the prompt's dense work on one rank plus the spread step; eight
    prompts (one per rank) cost exactly the spread step: no excess."""
    x = _ctx("deepseek-r1", devices=1, attn_dp=8, ep=8)
    P = 8192.0
    pre = 0.5 * (P + 1.0)
    lone = float(np.asarray(step_time(x, 0.0, P, 1.0, 0.0, pre)).ravel()[0])
    scale = float(np.asarray(x.hw["time_scale"]).ravel()[0])
    excess = float(np.asarray(rank_local_prefill_s(x, P * 7 / 8, pre)).ravel()[0]) * scale
    assert excess > 0
    from planner.cost.steps import attention_time, linear_time
    spread = float(np.asarray(linear_time(x, P, 1.0) + attention_time(x, 0.0, 0.0, P, pre)).ravel()[0]) * scale
    assert lone == pytest.approx(spread + excess, rel=1e-9)
    # bounds that need no placement: the rank holding the prompt does all of its rank-local
    # work (hand-counted above), and no more than that is added to the even spread
    whole = float(np.asarray(rank_local_prefill_s(x, P, pre)).ravel()[0]) * scale
    assert whole <= lone <= spread + whole
    eight = float(np.asarray(step_time(x, 0.0, 8 * P, 8.0, 0.0, pre)).ravel()[0])
    spread8 = float(np.asarray(linear_time(x, 8 * P, 8.0) + attention_time(x, 0.0, 0.0, 8 * P, pre)).ravel()[0])
    assert eight == pytest.approx(spread8 * scale, rel=1e-9)
    # monotone in the prompt: a longer lone prompt never takes less
    times = [float(np.asarray(step_time(x, 0.0, p, 1.0, 0.0, 0.5 * (p + 1))).ravel()[0]) for p in (512, 2048, 8192)]
    assert times == sorted(times)
    assert math.isfinite(times[-1])
