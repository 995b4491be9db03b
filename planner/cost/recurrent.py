"""Linear-attention layers (Gated DeltaNet and kin): a fixed-size recurrent state per
sequence in place of a KV cache.

Per sequence and layer the state holds ``num_value_heads x key_head_dim x
value_head_dim`` values plus the causal convolution's last inputs
(planner.params.count, ``state_elems_per_seq_layer``); tensor parallelism splits the
value heads over the devices (``Ctx.state_bytes_per_seq`` is one sequence's state on one
device, every linear layer together). The costs, added to the attention roofline of the
phase or step that runs them:

* decode: each step reads and writes every decoding sequence's state once,
  ``2 x state`` bytes a sequence, whatever its context (the reason such layers exist:
  their decode traffic does not grow with the context, Yang et al. 2025, "Gated Delta
  Networks: Improving Mamba2 with Delta Rule", Sec. 3);
* FLOPs: the gated delta rule's update and read-out, ``7 dk dv`` per value head and token
  (planner.params.GDN_FLOPS_PER_STATE_VALUE), for decode and prefill tokens alike: prefill
  is linear in the prompt (the chunked kernel does the same work per token up to its
  intra-chunk terms), not quadratic as full attention is;
* memory: one state per sequence in flight (planner.cost.footprint).

A model without linear-attention layers has ``state_bytes_per_seq = 0`` and
``linear_flops_per_token = 0``: every term below vanishes.
"""

from __future__ import annotations


def recurrent_flops(x, tokens):
    """FLOPs per device of the linear-attention layers for ``tokens`` tokens (decode or
    prefill) of one step or phase, over the worker's attention data-parallel groups (each
    group runs its own share)."""
    return tokens / x.attn_dp * x.linear_flops_per_token


def recurrent_bytes(x, sequences):
    """Bytes per device moved by one decode step of ``sequences`` sequences: each
    sequence's state read and written once."""
    return 2.0 * sequences / x.attn_dp * x.state_bytes_per_seq


