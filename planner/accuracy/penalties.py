"""Accuracy penalties: quantization (weights, activations, KV cache) and sparse attention.

Quantization is a shift in logit: p -> sigmoid(logit(p) - s * D), applied per problem,
where D is the sum of the table entries below for the weight, activation and KV formats
and s is the profile's ``quant_sensitivity``. Why logit: the absolute loss on a problem is
~p(1-p) D, so problems the model always (or never) solves barely move and the loss
concentrates on the uncertain ones. The task-level loss is then E[p(1-p)] * s * D, and
``quant_sensitivity`` carries what the literature reports on top of that: harder tasks
lose up to 4x more than GSM8K and small models lose more than large ones (Liu et al.
2025). Convention: s = 1 for competition maths (AIME) on a ~8B reasoning model; shipped
profiles use 0.25 for GSM8K, 0.5 for MATH-500, 1.0 for LiveCodeBench, and scale with
model size as documented in each profile.

Sparse attention (a KV budget of T tokens, block top-k) acts in two ways, both fitted to
the Kinetics per-sample data for Qwen3-8B on AIME24 (block top-k, budgets 256 and 1024;
Infini-AI-Lab/Kinetics cost_model/aime24/block_topk CSVs, 30 problems x 32 samples):
  1. traces get longer: the log-median shifts by delta(T) (median 11.6K dense -> 12.8K at
     T=1024 -> 22.5K at T=256; truncated at 30.7K: 4.6% -> 15.9% -> 42.6% of traces);
  2. the answer itself is worse: p -> q(T) p, multiplicative, because at T=256 problems
     the dense model always solves drop too (32/32 -> 13/32), which a logit shift
     cannot produce.
With x = clip(1 - T / min(L, median trace), 0, 1) (no penalty once the budget covers
the whole generation):
    delta = 0.150 (1024/T)^1.08 x,     ln q = -0.30 (256/T)^2.5 x.
delta is the fitted log-median shift of the traces (censored log-normal fit with the
per-problem dense medians as baseline: 0.137 at T=1024, 0.652 at T=256); q is then set
so that pass@1 at the 30.7K reference budget matches: predicted 0.732 at T=1024
(observed 0.735), 0.453 at T=256 (observed 0.452), dense 0.752; held out, T=512 predicts
0.677 (observed 0.659, block32_topk16 CSV). T >= 2048 stays within
1 point of dense, in line with Kinetics' finding of near-dense accuracy at KV budgets of
1-2K tokens; below 256 accuracy collapses. (The sparse traces are also more spread out;
widening the log-normal was left out because extrapolated to tiny budgets it would make
short generations finish more often.) Calibrated on block top-k; oracle top-k keeps
accuracy to smaller budgets, so the model is pessimistic for it.
"""

from __future__ import annotations

import numpy as np

from planner.errors import InputError

# ---------------------------------------------------------------------------------------
# Quantization: logit penalty D per format, at quant_sensitivity = 1 (AIME-like task,
# ~8B reasoning model). Each figure with the evidence it is set from.
# ---------------------------------------------------------------------------------------
WEIGHT_PENALTY = {
    "fp32": (0.0, "reference precision"),
    "tf32": (0.0, "reference precision"),
    "bf16": (0.0, "reference precision"),
    "fp16": (0.0, "reference precision"),
    "fp8": (0.01, "Kurtic et al. 2025: W8A8-FP8 is lossless on Llama-3.1 (recovery ~100%)"),
    "int8": (0.04, "Kurtic et al. 2025: tuned W8A8-INT loses 1-3%; Liu et al. 2025: W8A8 "
                   "within 1.2 points on MATH-500 for reasoning models"),
    "int4": (0.15, "Liu et al. 2025: W4A16 (AWQ/GPTQ) near lossless on reasoning models, a few "
                   "points on AIME for small ones; Kurtic et al. 2025: W4A16 recovers 93-99.7% on "
                   "Llama-3.1-8B (Arena-Hard 93.0%, HumanEval 99.7%)"),
    "fp4": (0.25, "Liu et al. 2025: MXFP4 weights lose more than INT4 group quantization; set "
                  "between W4A16 and W4A4 (assumption)"),
}
ACT_PENALTY = {
    "fp32": (0.0, "reference precision"),
    "tf32": (0.0, "reference precision"),
    "bf16": (0.0, "reference precision"),
    "fp16": (0.0, "reference precision"),
    "fp8": (0.0, "Kurtic et al. 2025: W8A8-FP8 lossless"),
    "int8": (0.04, "Kurtic et al. 2025: W8A8-INT 1-3% with tuned SmoothQuant/GPTQ"),
    "int4": (0.90, "Liu et al. 2025: W4A4KV4 costs a 1.5B reasoning model >10 points on AIME"),
    "fp4": (0.60, "Liu et al. 2025: 4-bit activations are the least robust setting; FP4 "
                  "microscaling assumed milder than INT4 (assumption)"),
}
KV_PENALTY = {
    "fp32": (0.0, "reference precision"),
    "tf32": (0.0, "reference precision"),
    "bf16": (0.0, "reference precision"),
    "fp16": (0.0, "reference precision"),
    "fp8": (0.01, "Liu et al. 2025: 8-bit KV lossless"),
    "int8": (0.02, "Liu et al. 2025: 8-bit KV lossless"),
    "int4": (0.10, "Liu et al. 2025: KV4 (QuaRot/KVQuant) near lossless on reasoning models"),
    "fp4": (0.15, "KV4 with FP4 assumed slightly worse than INT4 with rotation (assumption)"),
}
FORMATS = tuple(WEIGHT_PENALTY)
_CODE = {d: i for i, d in enumerate(FORMATS)}
_W = np.array([WEIGHT_PENALTY[d][0] for d in FORMATS])
_A = np.array([ACT_PENALTY[d][0] for d in FORMATS])
_KV = np.array([KV_PENALTY[d][0] for d in FORMATS])


def dtype_codes(values, field: str) -> np.ndarray:
    """Map a dtype string (or array of strings) to integer codes; InputError on unknowns."""
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    flat = arr.ravel()
    uniq, inv = np.unique(flat.astype(str), return_inverse=True)
    codes = np.empty(len(uniq), dtype=np.int64)
    for i, u in enumerate(uniq):
        key = str(u).lower()
        if key not in _CODE:
            raise InputError(f"unknown dtype (choose from {', '.join(FORMATS)})", field=field, value=str(u))
        codes[i] = _CODE[key]
    return codes[inv].reshape(arr.shape)


def default_act_codes(weight_codes: np.ndarray) -> np.ndarray:
    """Activation format when not given (:func:`planner.quantization.default_act_dtype`:
    W8A8 for 8-bit weights, else bf16)."""
    from planner.quantization import default_act_dtype

    by_weight = np.array([_CODE[default_act_dtype(d)] for d in FORMATS], dtype=np.int64)
    return by_weight[weight_codes]


def quant_logit_penalty(weight_codes, act_codes, kv_codes) -> np.ndarray:
    """Summed logit penalty D (before the profile's sensitivity) for code arrays."""
    return _W[weight_codes] + _A[act_codes] + _KV[kv_codes]


# ---------------------------------------------------------------------------------------
# Sparse attention (block top-k KV budget)
# ---------------------------------------------------------------------------------------
SPARSE_SHIFT = (0.150, 1024.0, 1.08)     # delta = c (T0/T)^g
SPARSE_QUALITY = (0.30, 256.0, 2.5)      # -ln q = c (T0/T)^g


def sparse_effect(kv_budget, gen_len, median_trace):
    """(log-median shift, extra log-sd (0: not modelled), log quality factor) for KV budgets
    T (0 = dense).

    Vectorized over kv_budget and gen_len; the effect is scaled by
    x = clip(1 - T / min(gen_len, median_trace), 0, 1)."""
    T = np.asarray(kv_budget, float)
    L = np.asarray(gen_len, float)
    dense = T <= 0
    Ts = np.where(dense, 1.0, T)
    horizon = np.minimum(L, float(median_trace))
    x = np.clip(1.0 - Ts / np.maximum(horizon, 1.0), 0.0, 1.0)
    x = np.where(dense, 0.0, x)
    c, t0, g = SPARSE_SHIFT
    shift = c * (t0 / Ts) ** g * x
    extra = np.zeros_like(shift)
    c, t0, g = SPARSE_QUALITY
    log_q = -c * (t0 / Ts) ** g * x
    return shift, extra, log_q
