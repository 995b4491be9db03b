"""The configuration space, feasibility, objectives and the Pareto frontier.

The space is models x hardware x devices x (strategy, samples) x generation length x
quantization x KV dtype x batch x KV budget. Stage costs are evaluated by the engine once
per distinct stage configuration (the generate stage does not depend on the selection
rule, the verify stage not on the KV budget) and broadcast over the full grid; accuracy
is evaluated once per (model, strategy, samples, length, dtypes, budget) and broadcast over
hardware, devices and batch. Every configuration of the grid gets latency, energy,
dollars, accuracy and a feasibility verdict as one row of flat arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from planner import strategies as strat
from planner.cost.engine import BOTTLENECKS, evaluate
from planner.cost.tables import DTYPE_CODE, HardwareTable, ModelTable
from planner.errors import InputError
from planner.quantization import QUANTIZATIONS, act_dtype_for

OBJECTIVES = {
    # name: (score to maximize, cost axis of the frontier)
    "max-accuracy": ("accuracy", "cost_usd"),
    "min-cost": ("-cost_usd", "cost_usd"),
    "min-latency": ("-latency_s", "latency_s"),
    "min-energy": ("-energy_j", "energy_j"),
    "accuracy-per-usd": ("accuracy/cost_usd", "cost_usd"),
    "accuracy-per-joule": ("accuracy/energy_j", "energy_j"),
    "accuracy-per-second": ("accuracy/latency_s", "latency_s"),
}

INFEASIBLE_REASONS = ("memory", "dtype", "devices", "context")


@dataclass
class Space:
    """The grid axes the search spans (the models and devices are passed as specs)."""

    strategies: list[str]
    devices: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    samples: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16, 32, 64])
    gen_lens: list[int] = field(default_factory=lambda: [1024, 2048, 4096, 8192, 16384, 32768])
    quantizations: list[str] = field(default_factory=lambda: ["bf16", "fp8", "int8", "int4"])
    kv_dtypes: list[str] = field(default_factory=lambda: ["bf16", "fp8"])
    batches: list[int] = field(default_factory=lambda: [1, 4, 16, 64, 128, 256])
    kv_budgets: list[int] = field(default_factory=lambda: [0, 256, 512, 1024, 2048, 4096])
    prompt_len: int = 150


@dataclass
class Budgets:
    max_latency_s: Optional[float] = None
    max_usd: Optional[float] = None
    max_energy_j: Optional[float] = None
    min_accuracy: Optional[float] = None


@dataclass
class Block:
    """The configurations of one strategy: a full grid of shape ``shape`` over the axes
    (model, hardware, devices, samples, gen_len, quantization, KV dtype, batch, KV budget)."""

    strategy: int
    shape: tuple
    samples: np.ndarray  # the samples axis values of this block


@dataclass
class Result:
    """Per configuration (flat arrays over all blocks): accuracy, latency, energy, cost,
    bottleneck and feasibility; the axis values of a row are recovered on demand."""

    cols: dict[str, np.ndarray]
    blocks: list[Block]
    offsets: np.ndarray
    axes: dict[str, np.ndarray]
    labels: dict[str, list]
    act_code: np.ndarray  # [hardware, quantization] -> dtype code
    evaluated: int
    feasible: np.ndarray
    infeasible_counts: dict[str, int]
    stage_rows: int

    def row(self, i: int) -> dict:
        b = int(np.searchsorted(self.offsets, i, side="right") - 1)
        blk = self.blocks[b]
        im, ih, idv, ik, il, iq, iv, ib, it = np.unravel_index(int(i - self.offsets[b]), blk.shape)
        c, lab, ax = self.cols, self.labels, self.axes
        return {
            "model": lab["model"][im],
            "hardware": lab["hardware"][ih],
            "devices": int(ax["devices"][idv]),
            "strategy": lab["strategy"][blk.strategy],
            "samples": int(blk.samples[ik]),
            "gen_len": int(ax["gen_len"][il]),
            "weight_dtype": lab["weight_dtype"][iq],
            "act_dtype": lab["dtype"][self.act_code[ih, iq]],
            "kv_dtype": lab["kv_dtype"][iv],
            "batch": int(ax["batch"][ib]),
            "kv_budget": int(ax["kv_budget"][it]),
            "accuracy": float(c["accuracy"][i]),
            "latency_s": float(c["latency_s"][i]),
            "energy_j": float(c["energy_j"][i]),
            "cost_usd": float(c["cost_usd"][i]),
            "bottleneck": BOTTLENECKS[int(c["bottleneck"][i])],
        }


def _grid(*sizes):
    """Index arrays of a full product grid, each shaped for broadcasting."""
    n = len(sizes)
    return [np.arange(s).reshape([s if j == i else 1 for j in range(n)]) for i, s in enumerate(sizes)]


def evaluate_space(space: Space, models, hardware, efficiencies, profiles, accuracy_fn, verifier=None) -> Result:
    """Cost and accuracy of every configuration in ``space``.

    ``profiles[i]`` is the accuracy profile of ``models[i]``; ``accuracy_fn(profile,
    strategy, samples, gen_len, weight_dtype, act_dtype, kv_dtype, kv_budget)`` returns
    accuracies broadcast over its array arguments. ``verifier`` (a Model) runs the verify
    stages; by default each policy model verifies its own answers.
    """
    mt = ModelTable.build(list(models) + ([verifier] if verifier is not None else []))
    ht = HardwareTable.build(hardware, efficiencies)
    D = np.array(space.devices, dtype=float)
    K = np.array(space.samples, dtype=float)
    Ls = np.array(space.gen_lens, dtype=float)
    Bs = np.array(space.batches, dtype=float)
    Ts = np.array(space.kv_budgets, dtype=float)
    nq, nv = len(space.quantizations), len(space.kv_dtypes)
    nM, nH = len(models), len(hardware)

    # per (hardware, quantization): the weight and activation dtypes (planner.quantization)
    w_code = np.array([DTYPE_CODE[QUANTIZATIONS[q][0]] for q in space.quantizations])
    act_names = [[act_dtype_for(h, q) for q in space.quantizations] for h in hardware]
    dtype_ok = np.array([[a is not None for a in row] for row in act_names], dtype=bool).reshape(nH, nq)
    act_names = [[a or "bf16" for a in row] for row in act_names]
    act = np.array([[DTYPE_CODE[a] for a in row] for row in act_names], dtype=np.int64).reshape(nH, nq)
    kv_code = np.array([DTYPE_CODE[v] for v in space.kv_dtypes])

    P = float(space.prompt_len)
    # ---- generate stage: (M, H, D, K, L, Q, V, B, T) ------------------------------------
    shape = (nM, nH, len(D), len(K), len(Ls), nq, nv, len(Bs), len(Ts))
    im, ih, idv, ik, il, iq, iv, ib, it = _grid(*shape)
    full = np.broadcast_shapes(*(a.shape for a in (im, ih, idv, ik, il, iq, iv, ib, it)))

    def flat(a):
        return np.broadcast_to(a, full).ravel()

    gen_cols = {
        "model": flat(im), "hardware": flat(ih), "devices": flat(D[idv]), "batch": flat(Bs[ib]),
        "concurrency": np.zeros(1), "prompt_len": np.full(1, P), "gen_len": flat(Ls[il]),
        "samples": flat(K[ik]), "weight_dtype": flat(w_code[iq]), "act_dtype": flat(act[ih, iq]),
        "kv_dtype": flat(kv_code[iv]), "kv_budget": flat(Ts[it]), "prefix_sharing": np.ones(1, dtype=bool),
    }
    n_gen = int(np.prod(full))
    gen_cols = {k: np.broadcast_to(v, (n_gen,)) for k, v in gen_cols.items()}
    gen = evaluate(gen_cols, mt, ht, precision="float32")
    G = {k: gen[k].reshape(full) for k in ("latency_s", "energy_j", "cost_usd", "fits", "bottleneck")}
    stage_rows = n_gen

    # ---- verify stages: (M, H, D, K, L, Q, V, B, 1), one per distinct verifier length ------
    graphs = {s: strat.get(s) for s in space.strategies}
    verify_lens = sorted({a["verify_len"] for g in graphs.values() for _, a in g.nodes(data=True)
                          if a["op"] == "verify"})
    V: dict[int, dict] = {}
    if verify_lens:
        vfull = shape[:-1] + (1,)  # the verifier reads dense: no KV-budget axis

        def vflat(a):
            return np.broadcast_to(a, vfull).ravel()

        nv_rows = int(np.prod(vfull))
        for vl in verify_lens:
            vc = {
                "model": vflat(im) if verifier is None else np.full(1, nM), "hardware": vflat(ih),
                "devices": vflat(D[idv]),
                # each of the k answers is one verifier request: batch * k requests
                "batch": vflat(Bs[ib] * K[ik]), "concurrency": np.zeros(1),
                "prompt_len": vflat(P + Ls[il]), "gen_len": np.full(1, float(vl)), "samples": np.ones(1),
                "weight_dtype": vflat(w_code[iq]), "act_dtype": vflat(act[ih, iq]), "kv_dtype": vflat(kv_code[iv]),
                "kv_budget": np.zeros(1), "prefix_sharing": np.ones(1, dtype=bool),
            }
            vc = {k: np.broadcast_to(v, (nv_rows,)) for k, v in vc.items()}
            out = evaluate(vc, mt, ht, precision="float32")
            kk = K.reshape(1, 1, 1, -1, 1, 1, 1, 1, 1)
            V[vl] = {
                "latency_s": out["latency_s"].reshape(vfull),
                # per original request: its k verifier requests
                "energy_j": out["energy_j"].reshape(vfull) * kk,
                "cost_usd": out["cost_usd"].reshape(vfull) * kk,
                "fits": out["fits"].reshape(vfull),
            }
            stage_rows += nv_rows

    # ---- feasibility shared by all strategies -----------------------------------------------
    max_dev = np.array([h.max_devices for h in hardware], dtype=float)
    dev_ok = (D[idv] <= max_dev[ih])
    max_ctx = np.array([m.max_context for m in models], dtype=float)
    ctx_ok = (P + Ls[il]) <= max_ctx[im]
    dt_ok = dtype_ok[ih, iq]

    # ---- per strategy: combine stages over its graph, then accuracy --------------------------
    parts: list[dict] = []
    blocks: list[Block] = []
    for si, (sname, graph) in enumerate(graphs.items()):
        k_sel = [0] if sname == "single" else [i for i, k in enumerate(space.samples) if k > 1]
        if not k_sel:
            continue
        ks = np.array(k_sel)
        lat_nodes, sums = {}, {"energy_j": {}, "cost_usd": {}}
        fits = np.ones(1, dtype=bool)
        for node, attrs in graph.nodes(data=True):
            call = strat.stage_call(attrs)
            if call is None:
                continue
            # generate and revise (about one more single generation) read the generate stage
            src = V[call.verify_len] if call.op == "verify" else G
            lat_nodes[node] = src["latency_s"][:, :, :, ks]
            sums["energy_j"][node] = src["energy_j"][:, :, :, ks]
            sums["cost_usd"][node] = src["cost_usd"][:, :, :, ks]
            fits = fits & src["fits"][:, :, :, ks]
        latency, totals = strat.combine(graph, lat_nodes, sums)
        # accuracy on (M, H, 1, K', L, Q, V, 1, T): one call per model and distinct row of
        # activation dtypes (the ones the cost uses), dtypes as arrays
        acc = np.zeros((nM, nH, 1, len(ks), len(Ls), nq, nv, 1, len(Ts)), dtype=np.float32)
        wq = np.array([QUANTIZATIONS[q][0] for q in space.quantizations]).reshape(1, 1, -1, 1, 1)
        kvq = np.array(space.kv_dtypes).reshape(1, 1, 1, -1, 1)
        for row in dict.fromkeys(tuple(r) for r in act_names):
            hs = [i for i, r in enumerate(act_names) if tuple(r) == row]
            aq = np.array(row).reshape(1, 1, -1, 1, 1)
            for mi in range(nM):
                a = accuracy_fn(profiles[mi], graph.graph["accuracy"], K[ks].reshape(-1, 1, 1, 1, 1),
                                Ls.reshape(1, -1, 1, 1, 1), wq, aq, kvq, Ts.reshape(1, 1, 1, 1, -1))
                acc[mi, hs, 0] = np.broadcast_to(a, acc.shape[3:7] + acc.shape[8:])[..., None, :]
        pshape = (nM, nH, len(D), len(ks), len(Ls), nq, nv, len(Bs), len(Ts))
        parts.append({
            "accuracy": acc, "latency_s": latency, "energy_j": totals["energy_j"],
            "cost_usd": totals["cost_usd"], "bottleneck": G["bottleneck"][:, :, :, ks],
            "_ok": fits & dev_ok & ctx_ok & dt_ok,
        })
        blocks.append(Block(si, pshape, K[ks]))
    if not parts:
        raise InputError("the search space is empty (check strategies and samples)", field="strategies",
                         value=space.strategies)
    # broadcast each strategy's block into preallocated flat columns (no concatenation copies)
    sizes = [int(np.prod(b.shape)) for b in blocks]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    total = int(sum(sizes))
    dtypes = {"accuracy": np.float32, "latency_s": np.float32, "energy_j": np.float32, "cost_usd": np.float32,
              "bottleneck": np.int8, "_ok": bool}
    cols = {k: np.empty(total, dtype=dt) for k, dt in dtypes.items()}
    counts = {"devices": 0, "context": 0, "dtype": 0}
    for part, blk, off, n in zip(parts, blocks, offsets, sizes):
        for k in dtypes:
            np.copyto(cols[k][off:off + n].reshape(blk.shape), part[k], casting="unsafe")
        counts["devices"] += int(np.broadcast_to(~dev_ok, blk.shape).sum())
        counts["context"] += int(np.broadcast_to(dev_ok & ~ctx_ok, blk.shape).sum())
        counts["dtype"] += int(np.broadcast_to(dev_ok & ctx_ok & ~dt_ok, blk.shape).sum())
    labels = {
        "model": [m.name for m in models], "hardware": [h.name for h in hardware],
        "strategy": list(graphs), "weight_dtype": [QUANTIZATIONS[q][0] for q in space.quantizations],
        "kv_dtype": list(space.kv_dtypes), "dtype": list(DTYPE_CODE),
    }
    axes = {"devices": D, "gen_len": Ls, "batch": Bs, "kv_budget": Ts}
    ok = cols.pop("_ok")
    feasible = ok & np.isfinite(cols["latency_s"]) & np.isfinite(cols["accuracy"])
    counts["memory"] = int(feasible.size - feasible.sum()) - sum(counts.values())
    return Result(cols, blocks, offsets, axes, labels, act, int(feasible.size), feasible, counts, stage_rows)


def check_objective(objective: str) -> str:
    """``objective`` if it is one of :data:`OBJECTIVES`, else the one-line InputError."""
    if objective not in OBJECTIVES:
        raise InputError(f"unknown objective (choose from {', '.join(OBJECTIVES)})", field="objective",
                         value=objective)
    return objective


def objective_score(cols: dict, objective: str) -> np.ndarray:
    expr = OBJECTIVES[check_objective(objective)][0]
    if expr.startswith("-"):
        return -cols[expr[1:]]
    if "/" in expr:
        a, b = expr.split("/")
        return cols[a] / np.maximum(cols[b], 1e-30)
    return cols[expr]


def within_budgets(cols: dict, b: Budgets) -> np.ndarray:
    ok = np.ones(cols["latency_s"].shape, dtype=bool)
    if b.max_latency_s is not None:
        ok &= cols["latency_s"] <= b.max_latency_s
    if b.max_usd is not None:
        ok &= cols["cost_usd"] <= b.max_usd
    if b.max_energy_j is not None:
        ok &= cols["energy_j"] <= b.max_energy_j
    if b.min_accuracy is not None:
        ok &= cols["accuracy"] >= b.min_accuracy
    return ok


def top_indices(score: np.ndarray, mask: np.ndarray, n: int, tiebreak: np.ndarray) -> np.ndarray:
    """Indices of the n best rows by score (ties: lower ``tiebreak`` first)."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return idx
    s = score[idx]
    if idx.size > 4 * n:
        keep = np.argpartition(-s, min(4 * n, idx.size - 1))[: 4 * n]
        idx, s = idx[keep], s[keep]
    order = np.lexsort((tiebreak[idx], -s))
    return idx[order[:n]]


def pareto_frontier(cost: np.ndarray, accuracy: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Indices of rows no other row beats on both lower cost and higher accuracy,
    in increasing cost (one row per frontier point)."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return idx
    idx = idx[np.argsort(cost[idx], kind="quicksort")]
    acc = accuracy[idx]
    best_before = np.maximum.accumulate(np.concatenate([[-np.inf], acc[:-1]]))
    cand = idx[acc > best_before]  # strictly better than everything cheaper or as cheap before it
    c = cost[cand]
    # among candidates of equal cost, accuracy increases along the list: keep the last one
    keep = np.ones(cand.size, dtype=bool)
    keep[:-1] = c[:-1] != c[1:]
    return cand[keep]


def nearest_to_budget(cols: dict, feasible: np.ndarray, b: Budgets, n: int) -> np.ndarray:
    """When nothing meets the budgets: the feasible rows that miss them by the least
    (largest relative overshoot over all budgets, smallest first)."""
    miss = np.zeros(cols["latency_s"].shape, dtype=np.float64)
    for key, limit, upper in (("latency_s", b.max_latency_s, True), ("cost_usd", b.max_usd, True),
                              ("energy_j", b.max_energy_j, True), ("accuracy", b.min_accuracy, False)):
        if limit is None:
            continue
        v = cols[key].astype(np.float64)
        over = (v - limit) / max(abs(limit), 1e-30) if upper else (limit - v) / max(abs(limit), 1e-30)
        miss = np.maximum(miss, over)
    idx = np.flatnonzero(feasible)
    if idx.size == 0:
        return idx
    m = miss[idx]
    k = min(n, idx.size)
    part = np.argpartition(m, k - 1)[:k]
    return idx[part[np.argsort(m[part])]]
