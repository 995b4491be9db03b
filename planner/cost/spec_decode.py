"""Speculative decoding with multi-token prediction (MTP, DeepSeek-V3 / R1's own draft
module): tokens per step and the cost of the draft and the verification.

With ``m`` draft tokens per step (TensorRT-LLM ``speculative_config: decoding_type: MTP,
num_nextn_predict_layers: m``; SGLang ``--speculative-algorithm EAGLE
--speculative-num-steps m`` with DeepSeek's NextN module), one engine iteration over ``d``
running requests:

* drafts: ``m`` sequential passes of the MTP module over the ``d`` requests' last tokens.
  The module is one decoder layer at the model's dimensions (MLA attention and an MoE
  block) plus a ``2h x h`` projection, sharing the model's embedding and LM head
  (DeepSeek-V3 Technical Report, arXiv 2412.19437, section 2.2 and Figure 3; the 14B MTP
  weights of the R1 / V3 checkpoints = one layer's ~11.5B plus the shared head), so a pass
  costs one layer's share of a decode pass plus the LM head for ``d`` rows;
* verification: one pass of the whole model over ``d (1 + m)`` tokens (each request's
  last token and its ``m`` drafts): ``1 + m`` GEMM rows per request, attention over the
  same cached context with ``1 + m`` queries (compute ``x (1 + m)``, the KV read once);
* accepted: the drafts agree with the model up to the first miss, then one token from the
  model; with a per-position acceptance ``a`` (the i-th draft accepted given the earlier
  ones were, taken equal for every position) a request gains on average
  ``tau = 1 + a + a^2 + ... + a^m = (1 - a^(m+1)) / (1 - a)`` tokens per iteration
  (Leviathan et al. 2023, "Fast Inference from Transformers via Speculative Decoding",
  equation 1, with the draft length fixed at m).

The time per output token of a decode-only step is the iteration's time over ``tau``
(:func:`planner.cost.steps.step_time`). A step that also carries prompt tokens keeps the
iteration's time per step (its decodes still gain ``tau`` tokens, which the scheduler's
one-token-per-step count does not credit: an overestimate of TPOT through mixed steps
only). ``m = 0`` is plain decoding, exactly.
"""

from __future__ import annotations

import numpy as np


def tokens_per_step(draft_tokens, acceptance):
    """``tau``: expected tokens a request gains per iteration with ``draft_tokens`` drafts
    at per-position ``acceptance`` (module docstring). 1 at ``m = 0``; ``m + 1`` at
    ``a = 1``. Arrays broadcast."""
    m = np.maximum(np.asarray(draft_tokens, dtype=float), 0.0)
    a = np.clip(np.asarray(acceptance, dtype=float), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        geo = (1.0 - a ** (m + 1.0)) / (1.0 - a)
    out = np.where(a >= 1.0, m + 1.0, geo)
    return float(out) if out.ndim == 0 else out


def verify_rows(d, draft_tokens):
    """Token rows of the verification pass over ``d`` decodes: ``d (1 + m)``."""
    return d * (1.0 + draft_tokens)


def draft_share(layers):
    """The MTP module's share of one decode pass of the model's layers: one layer of
    ``layers`` (module docstring); the LM head is charged separately."""
    return 1.0 / np.maximum(layers, 1.0)


def head_s(x, rows):
    """The LM head for ``rows`` positions on one device (s, before the end-to-end scale): its
    weights read once (``lm_head`` parameters at the head's bytes per parameter, split over
    the devices) or its ``2 lm_head rows`` FLOPs, whichever is longer (one roofline)."""
    xp, M = x.xp, x.model
    read = M["lm_head"] * x.head_bytes_per_param / x.devices * x.s_per_byte
    math = 2.0 * M["lm_head"] * rows / x.devices * x.s_per_gemm_flop
    return xp.maximum(read, math)
