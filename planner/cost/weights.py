"""Weights a forward pass reads and the rows its GEMMs see: dense weights always,
routed experts as far as the pass's tokens touch them (uniform routing)."""

from __future__ import annotations


def touched_experts(x, tokens):
    """Expected distinct experts one MoE layer runs for ``tokens`` tokens each routing
    top-k of E uniformly: ``E (1 - (1 - k/E)^n)`` (the occupancy of E bins after n k
    draws). Dense models (E = 0) touch none."""
    M = x.model
    return M["num_experts"] * (1.0 - x.xp.exp(tokens * M["log_miss"]))


def fixed_params_read(x):
    """Weights every forward pass reads whatever the routing, LM head excluded:
    attention, dense MLPs, shared experts, routers, norms."""
    M = x.model
    return M["read_fixed"] - M["lm_head"]


def expert_params_read(x, touched):
    """Routed-expert weights one forward pass reads: every touched expert (``touched``
    per layer, :func:`touched_experts`) in every MoE layer, whole (a grouped GEMM streams
    an expert's matrices once however few tokens it serves)."""
    return touched * x.model["expert_params_per"]


def tokens_per_expert(x, tokens_per_pass, touched, slots=None):
    """Rows of each expert's GEMM: the pass's routed token slots (``n k``, or under
    expert parallelism the busiest device's ``slots``) over the experts they touch
    (``slots / touched``; ~1 at small batch, where grouped GEMMs run far below peak;
    vLLM tunes its fused_moe kernel configs per M for that reason). Dense models: the
    pass's tokens."""
    xp = x.xp
    if slots is None:
        slots = tokens_per_pass * x.model["experts_per_token"]
    return xp.where(touched > 0, slots / xp.maximum(touched, 1e-30), tokens_per_pass)
