"""The torch kernels the calibration measures and the decoder validation runs.

Both use the same three building blocks, so what ``planner calibrate`` fits is what
``planner validate`` executes:

* :func:`linear` - a GEMM with the weight stored ``[N, K]`` (``nn.Linear`` layout). On CPU
  a skinny input (decode: a few rows) is computed as ``W @ x^T``: MKL packs the small
  operand then, whereas ``F.linear`` re-packs the whole weight on every call and runs
  2-3x slower for 2..16 rows (measured on the machine the shipped profile comes from).
* :func:`decode_attention` - one query per sequence against a KV cache (GQA grouped
  without copying the cache: queries reshaped to ``[B, Hkv, group, d]``).
* :func:`prefill_attention` - causal ``scaled_dot_product_attention``.

:class:`TorchDecoder` is a decoder-only transformer with random weights built from a
:class:`planner.specs.Model`: RMSNorm, fused QKV with RoPE (and QK-norm if the model has
it), GQA attention over a preallocated KV cache, SwiGLU (or plain GELU) MLP with fused
gate/up, optional top-k MoE, tied or separate LM head. torch is imported by the caller
(:func:`planner.calibrate.require_torch`) before this module is used.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from planner.errors import InputError

SKINNY_ROWS = 64  # CPU: at most this many rows use the W @ x^T layout

TORCH_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def torch_dtype(name: str):
    try:
        return TORCH_DTYPES[name]
    except KeyError:
        raise InputError(f"no torch dtype for this format (choose from {', '.join(TORCH_DTYPES)})",
                         field="dtype", value=name) from None


def linear(x, w, b=None):
    """``x @ w.T (+ b)`` for ``x [..., K]`` and ``w [N, K]``."""
    if x.device.type == "cpu":
        x2 = x.reshape(-1, x.shape[-1])
        if x2.shape[0] <= SKINNY_ROWS:
            y = torch.mm(w, x2.t()).t()
            if b is not None:
                y = y + b
            return y.reshape(*x.shape[:-1], w.shape[0])
    return F.linear(x, w, b)


def decode_attention(q, k, v):
    """One decode step: ``q [B, H, d]`` against ``k, v [B, Hkv, n, d]`` -> ``[B, H, d]``."""
    B, H, d = q.shape
    Hkv = k.shape[1]
    if q.device.type != "cpu":
        out = F.scaled_dot_product_attention(q.unsqueeze(2), k, v, enable_gqa=Hkv != H)
        return out.reshape(B, H, d)
    qg = q.reshape(B, Hkv, H // Hkv, d)
    s = torch.matmul(qg, k.transpose(-1, -2))
    s.mul_(1.0 / math.sqrt(d))
    p = torch.softmax(s, dim=-1)
    return torch.matmul(p, v).reshape(B, H, d)


def prefill_attention(q, k, v, window: int | None = None):
    """Causal attention of ``q [B, H, T, d]`` over ``k, v [B, Hkv, T, d]`` (from position 0)."""
    H, Hkv, T = q.shape[1], k.shape[1], q.shape[2]
    if window is not None and window < T:
        i = torch.arange(T, device=q.device)
        mask = (i[None, :] <= i[:, None]) & (i[:, None] - i[None, :] < window)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=Hkv != H)
    return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=Hkv != H)


def _rope_tables(max_pos: int, d: int, device, dtype, theta: float = 1e6):
    inv = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    ang = torch.arange(max_pos, dtype=torch.float64)[:, None] * inv[None, :]
    return ang.cos().to(device=device, dtype=dtype), ang.sin().to(device=device, dtype=dtype)


def _rope(x, cos, sin):
    """Rotate-half RoPE on ``x [B, heads, T, d]`` with ``cos, sin [T, d/2]``."""
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


class TorchDecoder:
    """A random-weight decoder built from a model descriptor, with a KV cache in place.

    ``forward(tokens, start)`` runs ``tokens [B, T]`` at positions ``start .. start+T-1``
    (prefill: start = 0; decode: T = 1 at start = context) and returns the logits.
    ``logits="all"`` computes the LM head at every position of a prefill (a plain forward
    pass, and what planner's engine counts); ``"last"`` only at the last one.
    """

    def __init__(self, model, *, device="cpu", dtype="fp32", max_batch=1, max_context=128,
                 seed=0, logits="all"):
        if model.mla is not None:
            raise InputError("validate builds GQA/MHA/MQA decoders; MLA is not implemented", field="model",
                             value=model.name)
        if getattr(model, "linear_attention", None) is not None or getattr(model, "attention_output_gate", False):
            raise InputError("validate builds GQA/MHA/MQA decoders; linear attention (Gated DeltaNet) and gated "
                             "attention are not implemented", field="model", value=model.name)
        self.m = model
        self.device = torch.device(device)
        self.dtype = torch_dtype(dtype)
        self.logits = logits
        self.max_batch, self.max_context = max_batch, max_context
        g = torch.Generator(device="cpu").manual_seed(seed)
        h, H, Hkv, d = model.hidden_size, model.num_heads, model.num_kv_heads, model.head_dim
        self.h, self.H, self.Hkv, self.d = h, H, Hkv, d
        dev, dt = self.device, self.dtype

        def w(*shape):
            # uniform with std 1/sqrt(fan_in): activations stay O(1) through random layers
            t = torch.empty(*shape, dtype=torch.float32)
            a = math.sqrt(3.0 / shape[-1])
            t.uniform_(-a, a, generator=g)
            return t.to(device=dev, dtype=dt)

        def ones(n):
            return torch.ones(n, device=dev, dtype=dt)

        self.embed = w(model.vocab_size, h)
        self.lm_head = self.embed if model.tie_embeddings else w(model.vocab_size, h)
        self.final_norm = ones(h)
        self.layers = []
        moe = model.moe
        for i in range(model.num_layers):
            L = {"in_norm": ones(h), "post_norm": ones(h),
                 "wqkv": w((H + 2 * Hkv) * d, h), "wo": w(h, H * d),
                 "bqkv": torch.zeros((H + 2 * Hkv) * d, device=dev, dtype=dt) if model.qkv_bias else None,
                 "bo": torch.zeros(h, device=dev, dtype=dt) if model.o_bias else None}
            if model.qk_norm:
                L["q_norm"], L["k_norm"] = ones(d), ones(d)
            if moe is not None and i >= moe.first_dense_layers:
                E, I = moe.num_experts, moe.expert_intermediate_size
                up = 2 * I if model.mlp_gated else I
                L["router"] = w(E, h)
                L["experts"] = [(w(up, h), w(h, I)) for _ in range(E)]
                if moe.num_shared_experts:
                    Is = moe.shared_expert_intermediate_size * moe.num_shared_experts
                    L["w_up"], L["w_down"] = w((2 if model.mlp_gated else 1) * Is, h), w(h, Is)
            else:
                I = model.intermediate_size
                L["w_up"], L["w_down"] = w((2 if model.mlp_gated else 1) * I, h), w(h, I)
            sliding = model.sliding_window is not None and i < model.num_sliding_layers
            L["window"] = model.sliding_window if sliding else None
            L["k_cache"] = torch.zeros(max_batch, Hkv, max_context, d, device=dev, dtype=dt)
            L["v_cache"] = torch.zeros(max_batch, Hkv, max_context, d, device=dev, dtype=dt)
            self.layers.append(L)
        self.cos, self.sin = _rope_tables(max_context, d, dev, dt)

    # -- pieces -------------------------------------------------------------------------
    def fill_cache(self, batch: int, context: int, value: float = 0.01) -> None:
        """Write ``context`` positions of KV for ``batch`` sequences (a decode step at
        context ``context`` then reads them). Real writes: untouched zero pages would be
        read from the shared zero page, not from memory."""
        for L in self.layers:
            L["k_cache"][:batch, :, :context].fill_(value)
            L["v_cache"][:batch, :, :context].fill_(value)

    def _mlp(self, L, x):
        if "router" in L:
            return self._moe(L, x)
        return self._dense_mlp(L["w_up"], L["w_down"], x)

    def _dense_mlp(self, w_up, w_down, x):
        u = linear(x, w_up)
        if self.m.mlp_gated:
            gate, up = u.chunk(2, dim=-1)
            u = F.silu(gate) * up
        else:
            u = F.gelu(u)
        return linear(u, w_down)

    def _moe(self, L, x):
        shape = x.shape
        xt = x.reshape(-1, shape[-1])
        k = self.m.moe.experts_per_token
        scores = torch.softmax(linear(xt, L["router"]).float(), dim=-1)
        topw, topi = scores.topk(k, dim=-1)
        topw = (topw / topw.sum(-1, keepdim=True)).to(x.dtype)
        out = torch.zeros_like(xt)
        for e in topi.unique().tolist():
            rows, slot = (topi == e).nonzero(as_tuple=True)
            w_up, w_down = L["experts"][e]
            y = self._dense_mlp(w_up, w_down, xt[rows])
            out.index_add_(0, rows, y * topw[rows, slot, None])
        if "w_up" in L:
            out = out + self._dense_mlp(L["w_up"], L["w_down"], xt)
        return out.reshape(shape)

    def _attention(self, L, x, start):
        B, T, _ = x.shape
        H, Hkv, d = self.H, self.Hkv, self.d
        qkv = linear(x, L["wqkv"], L["bqkv"])
        q, k, v = qkv.split([H * d, Hkv * d, Hkv * d], dim=-1)
        q = q.reshape(B, T, H, d).transpose(1, 2)
        k = k.reshape(B, T, Hkv, d).transpose(1, 2)
        v = v.reshape(B, T, Hkv, d).transpose(1, 2)
        if "q_norm" in L:
            q = F.rms_norm(q, (d,), L["q_norm"], 1e-6)
            k = F.rms_norm(k, (d,), L["k_norm"], 1e-6)
        cos, sin = self.cos[start:start + T], self.sin[start:start + T]
        q, k = _rope(q, cos, sin), _rope(k, cos, sin)
        kc, vc = L["k_cache"], L["v_cache"]
        kc[:B, :, start:start + T] = k
        vc[:B, :, start:start + T] = v
        end = start + T
        win = L["window"]
        if T == 1:
            lo = max(0, end - win) if win else 0
            o = decode_attention(q[:, :, 0], kc[:B, :, lo:end], vc[:B, :, lo:end]).reshape(B, 1, H * d)
        else:
            if start != 0:
                raise ValueError("prefill starts at position 0")
            o = prefill_attention(q, kc[:B, :, :end], vc[:B, :, :end], win).transpose(1, 2).reshape(B, T, H * d)
        return linear(o, L["wo"], L["bo"])

    # -- the pass -----------------------------------------------------------------------
    def forward(self, tokens, start: int = 0):
        B, T = tokens.shape
        if B > self.max_batch or start + T > self.max_context:
            raise ValueError("batch or context exceeds the allocated KV cache")
        x = F.embedding(tokens, self.embed)
        for L in self.layers:
            x = x + self._attention(L, F.rms_norm(x, (self.h,), L["in_norm"], 1e-6), start)
            x = x + self._mlp(L, F.rms_norm(x, (self.h,), L["post_norm"], 1e-6))
        if self.logits == "last" and T > 1:
            x = x[:, -1:]
        x = F.rms_norm(x, (self.h,), self.final_norm, 1e-6)
        return linear(x, self.lm_head)

    __call__ = forward
