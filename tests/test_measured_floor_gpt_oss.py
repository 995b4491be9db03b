"""The vLLM gpt-oss-120b rows at 512 requests in flight on H100 (InferenceMAX, vLLM 0.11.2) against
the HBM floor of a decode step (Round 14 (S2) in docs/serving-experiments.md): their mean TPOT
is below the time any decode step holding the requests in flight takes just to read its weights
and KV cache at the datasheet bandwidth, so their TTFT / TPOT split is not a closed loop's steps
as the engine ran them (the benchmark client reading buffered tokens late, in bursts: its own
KNOWN_LIMITATION file says it becomes client-bound at high request rates), and the model is not
to be fitted to them. Oracle: config.json dimensions, the MXFP4 format and the H100's datasheet
bandwidth, no planner code."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "serving-measured-hopper-dev.csv"

# openai/gpt-oss-120b config.json; experts MXFP4 (4.25 bits), the rest bf16 (modules_to_not_convert)
H, L, E, TOP_K, V = 2880, 36, 128, 4, 201088
EXPERT_BYTES = (H * 2 * H + 2 * H + H * H + H) * 4.25 / 8
NON_EXPERT_BYTES = (L * (26_550_144 + H * E + E + 2 * H) + V * H) * 2.0   # attention, router, norms, LM head
KV_BYTES_PER_TOKEN_LAYER = 2 * 8 * 64 * 2                                 # K and V, 8 heads of 64, bf16
GLOBAL_LAYERS = SLIDING_LAYERS = 18
WINDOW = 128
H100_BYTES_PER_S = 3.35e12                                                # H100 SXM datasheet HBM3


def step_floor_s(n_seq: float, context: float, tp: int) -> float:
    """Reading the touched experts, the other weights and the KV cache of ``n_seq`` sequences at
    ``context`` tokens once, per device, at the full datasheet bandwidth (compute, kernels and
    collectives cost nothing): a lower bound on any decode step."""
    touched = E * (1.0 - (1.0 - TOP_K / E) ** n_seq)  # expected experts a step's tokens route to, per layer
    kv = n_seq * (GLOBAL_LAYERS * context + SLIDING_LAYERS * min(context, WINDOW)) * KV_BYTES_PER_TOKEN_LAYER
    return (L * touched * EXPERT_BYTES + NON_EXPERT_BYTES + kv) / tp / H100_BYTES_PER_S


def _rows():
    if not DATA.exists():
        pytest.skip("shared measurements not present")
    with DATA.open() as f:
        for r in csv.DictReader(f):
            if (r["model_path"] == "openai/gpt-oss-120b" and r["backend"] == "vllm" and r["system"] == "h100_sxm"
                    and float(r["batch_size"]) == 512):
                yield r


def test_the_512_rows_decode_faster_than_hbm_allows():
    rows = list(_rows())
    assert len(rows) == 7
    below_all, below_little = 0, 0
    for r in rows:
        tp, P, G = int(float(r["tp_size"])), float(r["isl"]), float(r["osl"])
        ttft_s, tpot_s = float(r["silicon_ttft_ms"]) / 1e3, float(r["silicon_tpot_ms"]) / 1e3
        decode_s = (G - 1) * tpot_s
        # Little's law in the closed loop: the requests decoding at once, C x decode time / cycle
        n_decoding = 512 * decode_s / (ttft_s + decode_s)
        assert 90 < n_decoding < 110  # ~100 whatever the TP degree and lengths: not the KV cache's cap
        context = P + G / 2
        below_all += tpot_s < step_floor_s(512, context, tp)
        below_little += tpot_s < step_floor_s(n_decoding, context, tp)
    # all 512 decoding: 6 of the 7 rows measure a TPOT below the floor; even the ~100 that
    # Little's law leaves decoding: 3 of 7 (TP2 and TP4)
    assert below_all == 6
    assert below_little == 3
