"""The individual calibration benchmarks (GEMM/GEMV, memory streaming, decode and
prefill attention, tiny-op and tiny-decoder overheads), keyed by job kind in
:data:`BENCHES`. Each takes ``(torch, device, params, cold_bytes, opts)`` and returns
``(Timing, flops, bytes)``.

torch is passed in by the caller; :mod:`planner.calibrate.torch_model` is imported only
when a benchmark runs.
"""

from __future__ import annotations

import math

from planner.calibrate.timing import Rotating, measure


def _esize(torch, dt) -> int:
    return torch.empty((), dtype=dt).element_size()


def _bench_gemm(torch, dev, P, cold, opts):
    from planner.calibrate.torch_model import linear, torch_dtype

    dt = torch_dtype(P["dtype"])
    m, k, n = P["m"], P["k"], P["n"]
    es = _esize(torch, dt)
    ws = Rotating(lambda: torch.randn(n, k, device=dev, dtype=dt) / math.sqrt(k), n * k * es, cold)
    x = torch.randn(m, k, device=dev, dtype=dt)
    t = measure(lambda: linear(x, ws.next()), opts["sync"], **opts["timing"])
    return t, 2.0 * m * k * n, float((k * n + m * k + m * n) * es)


def _bench_stream(torch, dev, P, cold, opts, copy: bool):
    n = P["bytes"] // 4
    bufs = Rotating(lambda: torch.ones(n, device=dev, dtype=torch.float32), P["bytes"], cold)
    if copy:
        dst = torch.empty(n, device=dev, dtype=torch.float32)
        t = measure(lambda: dst.copy_(bufs.next()), opts["sync"], **opts["timing"])
        return t, 0.0, 2.0 * P["bytes"]
    t = measure(lambda: bufs.next().sum(), opts["sync"], **opts["timing"])
    return t, float(n), float(P["bytes"])


def _bench_attention(torch, dev, P, cold, opts):
    from planner.calibrate.torch_model import decode_attention, torch_dtype

    dt = torch_dtype(P["dtype"])
    b, c, H, Hkv, d = P["batch"], P["context"], P["heads"], P["kv_heads"], P["head_dim"]
    es = _esize(torch, dt)
    kv_bytes = 2 * b * Hkv * c * d * es

    def make():
        # a cache with room for more tokens, sliced to the context (as in the decoder)
        kc = torch.full((b, Hkv, c + 8, d), 0.01, device=dev, dtype=dt)
        vc = torch.full((b, Hkv, c + 8, d), 0.01, device=dev, dtype=dt)
        return kc[:, :, :c], vc[:, :, :c]

    caches = Rotating(make, kv_bytes, cold)
    q = torch.randn(b, H, d, device=dev, dtype=dt)

    def fn():
        k, v = caches.next()
        return decode_attention(q, k, v)

    t = measure(fn, opts["sync"], **opts["timing"])
    return t, 4.0 * b * H * d * c, float(kv_bytes + 2 * b * H * d * es)


def _bench_prefill_attention(torch, dev, P, cold, opts):
    from planner.calibrate.torch_model import prefill_attention, torch_dtype

    dt = torch_dtype(P["dtype"])
    b, T, H, Hkv, d = P["batch"], P["context"], P["heads"], P["kv_heads"], P["head_dim"]
    q = torch.randn(b, H, T, d, device=dev, dtype=dt)
    k = torch.randn(b, Hkv, T, d, device=dev, dtype=dt)
    v = torch.randn(b, Hkv, T, d, device=dev, dtype=dt)
    t = measure(lambda: prefill_attention(q, k, v), opts["sync"], **opts["timing"])
    es = _esize(torch, dt)
    return t, 4.0 * b * H * d * T * (T + 1) / 2.0, float((2 * b * H * T * d + 2 * b * Hkv * T * d) * es)


def _bench_tiny_op(torch, dev, P, cold, opts):
    x = torch.zeros(16, device=dev, dtype=torch.float32)
    t = measure(lambda: x.add_(1.0), opts["sync"], **opts["timing"])
    return t, 16.0, 128.0


def _bench_tiny_decoder(torch, dev, P, cold, opts):
    from planner.calibrate.end_to_end import tiny_model
    from planner.calibrate.torch_model import TorchDecoder

    dec = TorchDecoder(tiny_model(P["layers"]), device=dev, dtype=P["dtype"], max_batch=1, max_context=32)
    dec.fill_cache(1, 16)
    tok = torch.zeros(1, 1, dtype=torch.long, device=dev)
    t = measure(lambda: dec(tok, 16), opts["sync"], **opts["timing"])
    return t, 0.0, 0.0


def _bench_decoder(torch, dev, P, cold, opts):
    """One prefill or decode pass of the reference decoder (planner.calibrate.end_to_end)."""
    from planner.calibrate.end_to_end import reference_model
    from planner.calibrate.torch_model import TorchDecoder

    b, c = P["batch"], P["context"]
    dec = TorchDecoder(reference_model(tiny=bool(P.get("tiny"))), device=dev, dtype=P["dtype"], max_batch=b,
                       max_context=c + 1, logits="last")
    if P["phase"] == "prefill":
        tok = torch.zeros(b, c, dtype=torch.long, device=dev)
        t = measure(lambda: dec(tok, 0), opts["sync"], **opts["timing"])
    else:
        dec.fill_cache(b, c)
        tok = torch.zeros(b, 1, dtype=torch.long, device=dev)
        t = measure(lambda: dec(tok, c), opts["sync"], **opts["timing"])
    return t, 0.0, 0.0


def sentinel_kernel(torch, dev, tiny: bool = False):
    """The reference kernel :class:`planner.calibrate.quiet.Sentinel` times between
    benchmarks: a 16-row GEMM on a 2048 x 2048 weight (16 MB in fp32, compute and memory
    both matter) and a read of 32 MB (~2 ms on a 2-core CPU), each call on the next of
    three copies (144 MB in all), so every call finds its operands out of the cache
    whatever the benchmark before it left there."""
    from planner.calibrate.torch_model import linear

    k, n, s = (64, 64, 1 << 16) if tiny else (2048, 2048, 1 << 23)
    copies = [(torch.randn(n, k, device=dev) / math.sqrt(k), torch.ones(s, device=dev)) for _ in range(3)]
    x = torch.randn(16, k, device=dev)
    i = [0]

    def fn():
        i[0] = (i[0] + 1) % len(copies)
        w, buf = copies[i[0]]
        linear(x, w)
        return buf.sum()

    return fn


BENCHES = {
    "gemm": _bench_gemm,
    "gemv": _bench_gemm,
    "stream_read": lambda *a: _bench_stream(*a, copy=False),
    "stream_copy": lambda *a: _bench_stream(*a, copy=True),
    "attention": _bench_attention,
    "prefill_attention": _bench_prefill_attention,
    "tiny_op": _bench_tiny_op,
    "tiny_decoder": _bench_tiny_decoder,
    "decoder": _bench_decoder,
}
