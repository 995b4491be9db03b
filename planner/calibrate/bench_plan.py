"""The plan of calibration benchmarks: which GEMM, streaming, attention and overhead
measurements to take for a device type and scale (``tiny`` for tests, ``quick``, ``full``).

torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from planner.errors import InputError

SCALES = ("tiny", "quick", "full")


SPREAD_TAKES = 2
"""Takes per pass of the benchmarks that set decode, memory-bound: the one-row GEMMs and
the reference decoder's decode passes (~3 s of timing a pass, on ~30 s; its prefill
passes are compute-bound and cost ~7 s a take). On the shared VM the shipped profile
comes from, memory bandwidth moves by 10-20% for seconds at a time (a 1 GB GEMV ran at
9.0 GB/s in one quick run, 11.0-11.1 GB/s in two others minutes apart), and a 16 MB GEMV
is timed in ~10 ms. With one take per pass (the faster of two kept), the reference
decoder's batch-1 decode over the fitted one-row GEMM model's time was 1.10, 0.92 and
1.15 in three quick runs (2026-11-30 00:13-00:30 UTC). A second take in the middle of each
pass, half a pass from the first, gives each of them four takes spread over the run."""


@dataclass
class Job:
    kind: str
    params: dict
    label: str
    weight: float = 1.0  # rough relative cost, for the progress bar
    takes: int = 1       # takes per pass, spread over the pass (see SPREAD_TAKES)


@dataclass
class Plan:
    device: str
    scale: str
    dtypes: list[str]
    jobs: list[Job] = field(default_factory=list)


def pass_schedule(jobs: list[Job]) -> list[int]:
    """The order of one pass (indices into ``jobs``): every job in plan order, and take
    ``j`` (1 .. takes - 1) of job ``i`` right after job ``(i + j n // takes) mod n``, a
    ``j / takes`` of the pass after its first take (n jobs): a job's takes are evenly
    spread over the pass, cyclically."""
    n = len(jobs)
    after: dict[int, list[int]] = {}
    for i, job in enumerate(jobs):
        for j in range(1, max(1, job.takes)):
            after.setdefault((i + (j * n) // job.takes) % n, []).append(i)
    order: list[int] = []
    for i in range(n):
        order.append(i)
        order.extend(after.get(i, []))
    return order


def default_dtypes(device_type: str) -> list[str]:
    """Compute dtypes to calibrate: CPU math runs in fp32 (bf16 measured too), GPUs in
    bf16/fp16 (fp32 measured too)."""
    if device_type == "cpu":
        return ["fp32", "bf16"]
    if device_type == "mps":
        return ["fp16", "fp32"]
    return ["bf16", "fp16", "fp32"]


def plan(device_type: str, scale: str, dtypes: list[str] | None = None, mem_limit: int = 1 << 30) -> Plan:
    """The benchmarks for a scale. ``mem_limit`` caps one streamed buffer or KV cache."""
    if scale not in SCALES:
        raise InputError(f"unknown scale (choose from {', '.join(SCALES)})", field="scale", value=scale)
    dtypes = dtypes or default_dtypes(device_type)
    main = dtypes[0]
    p = Plan(device_type, scale, dtypes)
    gpu = device_type != "cpu"
    add = p.jobs.append

    # GEMM shapes (K, N) of decoder layers and LM heads; skinny M (decode) and large M (prefill)
    if scale == "tiny":
        kn = [(64, 128)]
        skinny, wide, squares = [1, 4], [32], [64]
        lm = []
    elif scale == "quick":
        # layer matrices of 0.5-3B models, from 4M to 32M weights (an MLP up/down projection
        # is the largest: GEMM speed at a given row count varies by ~20% with the shape)
        kn = [(1024, 4096), (2048, 2048), (4096, 1024), (2048, 8192), (2048, 16384), (8192, 2048)]
        skinny, wide, squares = [1, 2, 4, 8, 16, 32, 64], [128, 512], [512, 1024, 2048]
        lm = [(1024, 32768), (2048, 32768)]
    else:
        kn = [(1024, 4096), (2048, 2048), (4096, 1024), (2048, 8192), (4096, 4096), (8192, 2048), (1024, 1024)]
        skinny, wide, squares = [1, 2, 4, 8, 16, 24, 32, 48, 64], [96, 128, 256, 512, 1024, 2048], [256, 512, 1024, 2048, 4096]
        lm = [(1024, 32768), (2048, 32768), (2048, 65536), (4096, 32768)]
    if gpu and scale != "tiny":
        skinny = skinny + [128, 256]
        wide = wide + [4096, 8192]
        squares = squares + [4096, 8192]
    for dt in dtypes:
        sub = dt != main
        if sub and scale == "quick":  # secondary dtypes: a few shapes
            shapes = [(m, 2048, 2048) for m in (1, 16)] + [(512, 512, 512)]
        elif sub and scale == "tiny":
            shapes = [(m, k, n) for (k, n) in kn[:1] for m in (skinny[0], wide[0])]
        elif sub:  # full: a lighter sweep of the secondary dtypes
            shapes = [(m, k, n) for (k, n) in kn[:3] for m in (1, 4, 16, 64, 256)]
            shapes += [(s, s, s) for s in squares[:3]]
        else:
            shapes = [(m, k, n) for (k, n) in kn for m in skinny + wide]
            shapes += [(s, s, s) for s in squares]
            shapes += [(m, k, n) for (k, n) in lm for m in skinny[::2]]
        for m, k, n in shapes:
            add(Job("gemm", {"dtype": dt, "m": m, "k": k, "n": n}, f"gemm {dt} {m}x{k}x{n}",
                    weight=1.0 + 2.0 * m * k * n / 2e10 + 4.0 * k * n / 2e9,
                    takes=SPREAD_TAKES if (m == 1 and not sub and scale != "tiny") else 1))

    # memory streaming: read (reduction), copy, and weights through a matrix-vector product
    if scale == "tiny":
        sizes = [1 << 14, 1 << 18]
    elif scale == "quick":
        sizes = [1 << s for s in range(14, 31, 2)]
    else:
        sizes = [1 << s for s in range(12, 33)]
    sizes = [s for s in sizes if s <= mem_limit]
    for s in sizes:
        add(Job("stream_read", {"dtype": "fp32", "bytes": s}, f"read {s >> 10} KiB", weight=1.0 + s / 2e8))
        add(Job("stream_copy", {"dtype": "fp32", "bytes": s}, f"copy {s >> 10} KiB", weight=1.0 + s / 1e8))
    esize = 2 if main in ("bf16", "fp16") else 4
    k_gemv = 64 if scale == "tiny" else 2048
    for s in sizes:
        n = s // (esize * k_gemv)
        if n >= 8:
            add(Job("gemv", {"dtype": main, "m": 1, "k": k_gemv, "n": n}, f"gemv {s >> 10} KiB", weight=1.0 + s / 2e8,
                    takes=SPREAD_TAKES if scale != "tiny" else 1))

    # decode attention: a batch of queries against a KV cache, over contexts and layouts
    if scale == "tiny":
        layouts, batches, contexts = [(4, 2, 16)], [1, 2], [16, 64]
    elif scale == "quick":
        layouts, batches, contexts = [(16, 8, 128), (32, 8, 64)], [1, 4, 16], [256, 1024, 4096]
    else:
        layouts = [(16, 8, 128), (32, 8, 64), (32, 4, 128), (16, 16, 64)]
        batches, contexts = [1, 2, 4, 8, 16], [128, 512, 1024, 2048, 4096, 8192]
    for H, Hkv, d in layouts:
        for b in batches:
            for c in contexts:
                kv = 2 * b * Hkv * c * d * esize
                if kv <= mem_limit:
                    add(Job("attention", {"dtype": main, "batch": b, "context": c, "heads": H, "kv_heads": Hkv,
                                          "head_dim": d}, f"attention b{b} c{c} {H}/{Hkv}x{d}", weight=1.0 + kv / 2e8))
    # causal prefill attention (recorded for information; the engine times it with the GEMM curve)
    pre = [32] if scale == "tiny" else ([512, 1024] if scale == "quick" else [256, 512, 1024, 2048, 4096])
    for P in pre:
        H, Hkv, d = (4, 2, 16) if scale == "tiny" else (16, 8, 128)
        add(Job("prefill_attention", {"dtype": main, "batch": 1, "context": P, "heads": H, "kv_heads": Hkv,
                                      "head_dim": d}, f"prefill attention {P}", weight=1.0 + P * P / 2e6))

    # end-to-end passes of the reference decoder (planner.calibrate.end_to_end)
    if scale == "tiny":
        passes = [("prefill", 1, 8), ("decode", 1, 16)]
    else:
        passes = [("prefill", 1, 256), ("prefill", 4, 128), ("decode", 1, 512), ("decode", 4, 1024),
                  ("decode", 16, 256)]
    for phase, b, c in passes:
        params = {"dtype": main, "phase": phase, "batch": b, "context": c}
        if scale == "tiny":
            params["tiny"] = True
        add(Job("decoder", params, f"reference decoder {phase} b{b} c{c}", weight=3.0 if scale != "tiny" else 1.0,
                takes=SPREAD_TAKES if (phase == "decode" and scale != "tiny") else 1))

    # overheads: a tiny op, and decoder layers with negligible work (decode step)
    add(Job("tiny_op", {"dtype": main}, "tiny op"))
    for n_layers in (1, 3):
        add(Job("tiny_decoder", {"dtype": main, "layers": n_layers}, f"tiny decoder, {n_layers} layers"))
    return p
