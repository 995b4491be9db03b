"""Expert parallelism (``ep``) and attention data parallelism (``attn_dp``) of one
worker, DeepSeek / SGLang / TensorRT-LLM wide-EP style.

A worker has ``t x a`` devices (``t`` = the ``devices`` column, the attention's
tensor-parallel group; ``a`` = ``attn_dp`` groups, each running attention and the dense
layers for its own ``1/a`` of the requests with replicated weights). The routed experts
run over all ``t a`` devices: ``ep`` groups of whole experts (``E / ep`` local experts
per device group), each expert split tensor-wise over ``t a / ep`` devices.

Per step and device (the slowest device sets the pace):

* routed token slots on a device: ``n k`` slots spread over ``ep`` groups; a token's
  ``k`` distinct experts fall on a given group's ``E/ep`` experts hypergeometrically
  (mean ``k/ep``, variance ``k (1/ep)(1 - 1/ep)(E-k)/(E-1)``), independent across
  tokens; the busiest of ``ep`` groups carries about ``mu + z(ep) sigma`` slots
  (normal approximation of the load, Raab & Steger 1998 "Balls into bins -- a simple
  and tight analysis" for the ``sqrt(m ln n)`` order; ``z(n)`` = the expected maximum of
  n standard normals, Tippett 1925 / Harter 1961 tables, :data:`NORMAL_MAX_Z`), capped at
  ``n min(k, E/ep)``;
* expert weights read: the local experts those slots touch (the occupancy of
  :func:`planner.cost.weights.touched_experts` with the busiest group's tokens);
* dispatch and combine, where the tokens are split over attention data-parallel groups
  (``a > 1``): one all-to-all each per MoE layer, ``tokens x k x hidden x act bytes x
  (ep-1)/ep`` bytes per device (each token's hidden state goes to the devices of its k
  experts, the share on other devices crosses the link) over the link bandwidth plus the
  small-message latency, instead of the MoE's all-reduce. With tensor-parallel attention
  (``a = 1``) every device already holds every token after the attention's all-reduce:
  expert parallelism moves no token; each device runs its local experts on the tokens
  routed to them and the MoE's all-reduce over the group combines them, the collective
  the tensor-parallel MoE pays (SGLang docs "Expert Parallelism": ``--moe-a2a-backend
  none``, the default, "disables all-to-all for EP, uses All-Reduce or All-Gather";
  vLLM ``vllm/distributed/device_communicators/all2all.py``: its default dispatch
  all-gathers "from all dp ranks" and its combine reduce-scatters across them;
  TensorRT-LLM pull request 8968, communication_factory.py: "If attention does not use
  data parallelism (either uses TP or single card), no MoE communication is needed"; AWS
  Neuron's vLLM expert-parallelism design notes: each rank "processes all tokens against
  only its local experts", tokens exchanged across DP replicas only).

With ``ep = attn_dp = 1`` every quantity is today's tensor-parallel one exactly.
"""

from __future__ import annotations

import numpy as np

# expected maximum of n iid standard normals, n = 2^0 .. 2^10 (numerical integration of
# x n phi(x) Phi(x)^(n-1); matches Harter 1961 "Expected values of normal order statistics")
NORMAL_MAX_Z = np.array([0.0, 0.5642, 1.0294, 1.4236, 1.7660, 2.0697, 2.3437, 2.5946, 2.8269, 3.0439, 3.2482])


def normal_max_z(n):
    """``z(n)``: expected maximum of ``n`` standard normals (interpolated in log2 n;
    0 at n = 1). Numpy or float in, same out."""
    z = np.interp(np.log2(np.maximum(np.asarray(n, dtype=float), 1.0)), np.arange(NORMAL_MAX_Z.size), NORMAL_MAX_Z)
    return float(z) if np.ndim(z) == 0 else z


def max_device_slots(x, tokens):
    """Routed token slots (token x expert pairs) on the busiest expert-parallel group for
    ``tokens`` tokens routed top-k of E (``tokens k`` on one group when ep = 1)."""
    xp, M = x.xp, x.model
    k, E, ep = M["experts_per_token"], M["num_experts"], x.ep
    mean = tokens * k / ep
    if not x.expert_parallel:
        return mean
    var = tokens * k / ep * (1.0 - 1.0 / ep) * (E - k) / xp.maximum(E - 1.0, 1.0)
    local = E / ep
    return xp.minimum(mean + x.ep_max_z * var ** 0.5, tokens * xp.minimum(k, local))


def dispatches(x):
    """Where a MoE layer moves tokens between devices (module docstring): expert
    parallelism over attention data-parallel groups, ``ep > 1`` and ``a > 1``."""
    return (x.ep > 1.0) & (x.attn_dp > 1.0)


def a2a_s(x, tokens_per_pass, passes):
    """Dispatch and combine of ``passes`` passes: two all-to-alls per MoE layer, each
    ``(tokens / (t a)) k hidden act_bytes (ep-1)/ep`` bytes per device over the link,
    plus the small-message latency. Zero where ep = 1 or a = 1 (tensor-parallel
    attention: every token is on every device already; module docstring)."""
    xp, M = x.xp, x.model
    if not x.expert_parallel:
        return 0.0
    per_device_tokens = tokens_per_pass / x.group_devices
    nbytes = per_device_tokens * M["experts_per_token"] * M["hidden"] * x.act_bytes_per_value * (x.ep - 1.0) / x.ep
    one = xp.where(dispatches(x), nbytes * x.a2a_s_per_byte + x.a2a_latency_s, 0.0)
    return 2.0 * M["moe_layers"] * passes * one


# --- attention data parallelism: a request is one rank's ------------------------------

def step_budget(token_budget, attn_dp, per_rank):
    """Prompt and decode tokens one step of the WORKER may carry: the engine's token
    budget, times the attention-DP ranks where each rank schedules its own batch under it
    (``per_rank`` 1, else 0: an engine profile's ``dp_rank_budget``: TensorRT-LLM's
    ``max_num_tokens`` and vLLM's ``max_num_batched_tokens`` are per executor / engine
    core, one per rank; SGLang divides ``chunked_prefill_size`` over the DP ranks). Arrays
    or numbers."""
    return token_budget * (1.0 + (attn_dp - 1.0) * per_rank)


def busiest_rank_excess_tokens(xp, attn_dp, prompt_tokens, prompt_len):
    """Prompt tokens of one step on the busiest attention-data-parallel rank beyond the
    even share ``p / a`` that the step's other terms charge every rank.

    A request lives on ONE attention-DP rank (its KV cache is that rank's: TensorRT-LLM
    ``enable_attention_dp`` and SGLang ``--enable-dp-attention`` assign each request to a
    rank, which runs its attention and dense layers), so a step's prompt work does not
    spread over the ranks: the rank prefilling a whole prompt (or a chunk of one) carries
    ``min(p, P)`` prompt tokens where ``p / a`` is the mean. Every rank waits for the
    busiest one at each MoE layer's dispatch and combine (collective all-to-alls), so that
    rank sets the step. It carries at least ``min(p, P)`` and ``p / a`` (exact when the
    step's prompts number at most ``a`` or a multiple of it); returns
    ``max(min(p, P), p / a) - p / a``: 0 where ``a = 1`` or the prompts fill every rank
    evenly."""
    a = xp.maximum(attn_dp, 1.0)
    p = xp.maximum(prompt_tokens, 0.0)
    busiest = xp.maximum(xp.minimum(p, xp.maximum(prompt_len, 1.0)), p / a)
    return busiest - p / a


def rank_local_params(M):
    """Matmul weights each token meets on its own attention-DP rank: the active matmul
    weights less the LM head and the ``k`` routed experts it is dispatched to (attention
    projections, dense and shared MLPs, routers). Model-table columns or arrays."""
    return M["matmul_active"] - M["lm_head"] - M["experts_per_token"] * M["expert_params_per"]


def rank_local_prefill_s(x, tokens, pre_ctx):
    """Device time (s, before the end-to-end scale) of the rank-local work of ``tokens``
    prompt tokens on ONE attention-DP rank of ``t`` devices: the layers' dense GEMMs
    (attention projections, dense and shared MLPs: ``2 (active matmul weights - LM head -
    k expert weights)`` FLOPs per token) at the GEMM compute rate, and the causal
    attention at mean context ``pre_ctx`` over the full-attention layers at the attention
    kernel's rate. At prefill sizes these GEMMs are compute bound (a prompt's tokens are
    its GEMM rows). The routed experts run over all devices after the dispatch, so they
    are not rank-local and not counted."""
    M = x.model
    gemm_flops = 2.0 * rank_local_params(M) * tokens / x.devices
    attn_flops = tokens * M["global_layers"] * pre_ctx * M["attn_pre"] / x.devices
    return gemm_flops * x.s_per_gemm_flop + attn_flops * x.s_per_attn_flop


def whole_prompt_len(pre_ctx):
    """The prompt length ``P`` whose prefill has mean causal context ``pre_ctx``: token i
    of a prompt attends i keys, a mean of ``(P + 1) / 2`` over the prompt, so
    ``P = 2 pre_ctx - 1`` (the inverse of :func:`prompt_rank_excess_s`'s default). Where a
    step's caller gives only the context (planner.cost.steps.step_time), its prompts are
    taken to be whole ones of this length."""
    return 2.0 * pre_ctx - 1.0


def prompt_rank_excess_s(x, prompt_tokens, prompt_len, pre_ctx=None):
    """What a step carrying ``prompt_tokens`` prompt tokens (whole prompts of
    ``prompt_len``, mean causal context ``pre_ctx``, default ``(P + 1) / 2``) costs beyond
    its even spread over the attention-DP ranks: the busiest rank's excess tokens
    (:func:`busiest_rank_excess_tokens`) at :func:`rank_local_prefill_s`. Device seconds
    before the end-to-end scale; 0 without attention data parallelism."""
    pre = 0.5 * (prompt_len + 1.0) if pre_ctx is None else pre_ctx
    excess = busiest_rank_excess_tokens(x.xp, x.attn_dp, prompt_tokens, prompt_len)
    return rank_local_prefill_s(x, excess, pre)
