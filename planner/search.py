"""The configuration space and its evaluation: cost, accuracy and feasibility of every
configuration (choosing among them: planner.frontier).

The space is models x hardware x devices x (strategy, samples) x generation length x
quantization x KV dtype x batch x KV budget. Stage costs are evaluated by the engine once
per distinct stage configuration (the generate stage does not depend on the selection
rule, the verify stage not on the KV budget) and broadcast over the full grid; accuracy
is evaluated once per (model, strategy, samples, length, dtypes, budget) and broadcast over
hardware, devices and batch, and only on the (length x quantization) cells where some
configuration passes the checks known before the engine runs (context window, devices,
dtypes, the weights fitting the layout's memory): elsewhere it is NaN, on rows that are
infeasible anyway. Every configuration of the grid gets latency, energy, dollars,
accuracy and a feasibility verdict as one row of flat arrays.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from planner import layouts as lay
from planner import strategies as strat
from planner.cost.roofline import BOTTLENECKS
from planner.cost.tables import DTYPE_CODE, HardwareTable, ModelTable
from planner.dtypes import BITS
from planner.errors import InputError
from planner.quantization import QUANTIZATIONS, act_dtype_for

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
    # the layout axis (planner.layouts); None: tensor parallel over each of ``devices``
    layouts: Optional[list] = None


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
            "layout": dict(lab["layout"][idv]),
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


def _attrs(graph):
    return (a for _, a in graph.nodes(data=True))


def _as_k_call(call: "strat.StageCall") -> "strat.StageCall":
    """A one-sample, one-request call is the same engine work as its k-sample twin at k = 1."""
    from dataclasses import replace

    return replace(call, samples="k") if call.samples == "one" and call.requests == "one" else call


def evaluate_space(space: Space, models, hardware, efficiencies, profiles, accuracy_fn, verifier=None,
                   precision: str = "float32", interval_fn=None, prune_accuracy: bool = True,
                   engine_cols: dict | None = None) -> Result:
    """Cost and accuracy of every configuration in ``space``.

    ``profiles[i]`` is the accuracy profile of ``models[i]``; ``accuracy_fn(profile,
    strategy, samples, gen_len, weight_dtype, act_dtype, kv_dtype, kv_budget)`` returns
    accuracies broadcast over its array arguments. ``verifier`` (a Model) runs the verify
    stages; by default each policy model verifies its own answers. ``interval_fn`` (same
    arguments) returns the accuracy's (lo, hi) interval or None; with it the columns
    ``accuracy_lo`` / ``accuracy_hi`` hold it (NaN where a profile has none), computed with
    the accuracy, once per distinct accuracy configuration. ``prune_accuracy`` False asks
    the accuracy on every cell (the oracle the tests compare the pruned search with).
    ``engine_cols``: scalar cost-engine columns of the serving engine the scenario names
    (its shared-prompt reads, planner.engine_profiles.EngineProfile.attention_columns); none:
    the generic engine's.
    """
    mt = ModelTable.build(list(models) + ([verifier] if verifier is not None else []))
    ht = HardwareTable.build(hardware, efficiencies)
    layouts = list(space.layouts) if space.layouts is not None else [lay.Layout(int(d)) for d in space.devices]
    layout_groups, layout_ok = lay.groups(layouts, models, verifier)
    D = np.array([x.devices for x in layouts], dtype=float)  # devices of each layout (the axis' values)
    TP = np.array([x.tp for x in layouts], dtype=float)
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
    graphs = {s: strat.get(s) for s in space.strategies}
    # the samples axis of the stage evaluations: the grid's k plus k = 1 (one-sample strategies)
    K_all = np.array(sorted(set(space.samples) | {1}), dtype=float)
    one_k = int(np.searchsorted(K_all, 1.0))
    max_ctx = np.array([m.max_context for m in models], dtype=float)
    shape = (nM, nH, len(D), len(K_all), len(Ls), nq, nv, len(Bs), len(Ts))
    im, ih, idv, ik, il, iq, iv, ib, it = _grid(*shape)
    calls = list(dict.fromkeys(c for g in graphs.values() for c in map(strat.stage_call, _attrs(g)) if c is not None))

    def key_of(call):
        """A one-sample call whose k-sample twin is costed anyway is that twin at k = 1."""
        twin = _as_k_call(call)
        return twin if twin in calls else call

    def k_picks(graph) -> list[int]:
        """Positions in K_all the strategy is searched at."""
        if strat.uses_samples(graph):
            return [i for i, k in enumerate(K_all) if k > 1 and k in space.samples]
        return [one_k]  # a one-sample strategy costs one sample, whatever the samples grid

    wq = np.array([QUANTIZATIONS[q][0] for q in space.quantizations]).reshape(1, 1, -1, 1, 1)
    kvq = np.array(space.kv_dtypes).reshape(1, 1, 1, -1, 1)
    act_rows = list(dict.fromkeys(tuple(r) for r in act_names))

    def needed_cells(pre_ok, mi, hs) -> tuple[np.ndarray, np.ndarray]:
        """The generation lengths and quantizations (positions) at which model ``mi`` on
        the hardware ``hs`` has some configuration that passes the checks made before the
        engine runs (devices, dtypes, context: ``pre_ok``): the accuracy is asked on that
        (length x quantization) sub-grid only (every configuration that can be feasible
        lies in it; the others stay NaN and are infeasible anyway). All of them where
        ``prune_accuracy`` is False."""
        if not prune_accuracy:
            return np.arange(len(Ls)), np.arange(nq)
        m = np.broadcast_to(pre_ok, (nM, nH, len(D), 1, len(Ls), nq, 1, 1, 1))[mi, hs]
        lq = m.any(axis=(0, 1, 2, 5, 6, 7))                          # (L, Q)
        return np.flatnonzero(lq.any(axis=1)), np.flatnonzero(lq.any(axis=0))

    def accuracy_of_model(graph, ks, mi, pre_ok) -> list:
        """One model's accuracy calls for a strategy: per distinct row of activation dtypes
        (the ones the cost uses; dtypes as arrays), the hardware it covers, the sub-grid's
        (length, quantization) positions (needed_cells), the accuracy and, with
        ``interval_fn``, its interval (None for both where the sub-grid is empty)."""
        out = []
        for row in act_rows:
            hs = [i for i, r in enumerate(act_names) if tuple(r) == row]
            ls, qs = needed_cells(pre_ok, mi, hs)
            if not (ls.size and qs.size):
                out.append((hs, ls, qs, None, None))
                continue
            aq = np.array(row)[qs].reshape(1, 1, -1, 1, 1)
            args = (profiles[mi], graph.graph["accuracy"], K_all[ks].reshape(-1, 1, 1, 1, 1),
                    Ls[ls].reshape(1, -1, 1, 1, 1), wq[:, :, qs], aq, kvq, Ts.reshape(1, 1, 1, 1, -1))
            out.append((hs, ls, qs, accuracy_fn(*args), interval_fn(*args) if interval_fn else None))
        return out

    def accuracy_of(ks, per_model) -> tuple[np.ndarray, list]:
        """Accuracy on (M, H, 1, K', L, Q, V, 1, T) and, with ``interval_fn``, its
        interval's [lo, hi] arrays (NaN without replicates), from the models' calls; NaN
        outside each call's sub-grid."""
        acc = np.full((nM, nH, 1, len(ks), len(Ls), nq, nv, 1, len(Ts)), np.nan, dtype=np.float32)
        lo_hi = [np.full(acc.shape, np.nan, dtype=np.float32) for _ in range(2)] if interval_fn else []
        cell = acc.shape[3:7] + acc.shape[8:]                        # (K', L, Q, V, T)
        for mi, fut in enumerate(per_model):
            for hs, ls, qs, a, iv in fut.result():
                if a is None:
                    continue
                at = np.ix_(np.arange(len(ks)), ls, qs, np.arange(nv), np.arange(len(Ts)))
                sub = (len(ks), len(ls), len(qs), nv, len(Ts))
                for arr, v in zip((acc,) + tuple(lo_hi if iv is not None else ()), (a,) + tuple(iv or ())):
                    block = np.full(cell, np.nan, dtype=np.float32)
                    block[at] = np.broadcast_to(v, sub)
                    arr[mi, hs, 0] = block[..., None, :]
        return acc, lo_hi

    # the engine's inputs per distinct stage call, and each stage's context check (its
    # context, what it reads plus what it writes, within its model's window): known
    # before the engine runs, so the accuracy calls below can skip what cannot fit
    stage_inputs: dict = {}
    for call in dict.fromkeys(map(key_of, calls)):
        policy = call.role == "policy" or verifier is None
        k_ax = ik if call.uses_k else np.zeros((1,) * 9, dtype=np.intp)
        k = K_all[k_ax]
        cols = {
            "model": im if policy else np.full((1,) * 9, nM), "hardware": ih, "devices": TP[idv],
            "batch": Bs[ib] * (k if call.requests == "k" else 1.0), "concurrency": np.zeros((1,) * 9),
            "prompt_len": P + (Ls[il] if call.prompt_extra == "answer" else 0.0),
            "gen_len": Ls[il] if call.gen == "gen_len" else np.full((1,) * 9, float(call.verify_len)),
            "samples": k if call.samples == "k" else np.ones((1,) * 9), "weight_dtype": w_code[iq],
            "act_dtype": act[ih, iq], "kv_dtype": kv_code[iv],
            "kv_budget": Ts[it] if call.role == "policy" else np.zeros((1,) * 9),
            "prefix_sharing": np.ones((1,) * 9, dtype=bool),
            **{key: np.full((1,) * 9, float(v)) for key, v in (engine_cols or {}).items()},
        }
        sub = (shape[:3] + (shape[3] if call.uses_k else 1,) + shape[4:8]
               + (shape[8] if call.role == "policy" else 1,))
        window = max_ctx[im] if policy else float(verifier.max_context)
        ctx = cols["prompt_len"] + cols["gen_len"] <= window
        stage_inputs[call] = (cols, sub, policy, k, ctx)

    # ---- feasibility shared by all strategies -----------------------------------------------
    max_dev = np.array([h.max_devices for h in hardware], dtype=float)
    # tensor parallel within one NVLink domain; a layout the model (or verifier) cannot take
    dev_ok = (TP[idv] <= max_dev[ih]) & layout_ok[im, idv]
    dt_ok = dtype_ok[ih, iq]
    # a necessary condition of the engine's memory check, for the accuracy pruning only:
    # the weights, less the embedding and LM head, spread over all of a layout's devices
    # (no layout stores less per device) fit in the device's memory
    wbits = np.array([BITS[QUANTIZATIONS[q][0]] for q in space.quantizations])
    body = mt.cols["total_params"][:nM] - mt.cols["embed_head_params"][:nM]
    memory_bytes = np.array([h.memory_gb * 1e9 for h in hardware])
    weights_fit = body[im] * (wbits[iq] / 8.0) / D[idv] <= memory_bytes[ih]

    def strategy_ctx_ok(graph) -> np.ndarray:
        """Every stage of the strategy within its model's context window."""
        ok = np.ones((1,) * 9, dtype=bool)
        for _, attrs in graph.nodes(data=True):
            call = strat.stage_call(attrs)
            if call is not None:
                ok = ok & stage_inputs[key_of(call)][4]
        return ok

    # the accuracy model (Python-heavy) runs on threads of its own, one (strategy, model)
    # at a time, while the engine's block threads (numpy, GIL released) cost the stages:
    # the same calls, the same results, in any order
    accuracy_pool = ThreadPoolExecutor(max(1, min(2, os.cpu_count() or 1)))
    try:
        accuracies = {}
        for name, g in graphs.items():
            if k_picks(g):
                pre_ok = dev_ok & dt_ok & weights_fit & strategy_ctx_ok(g)
                accuracies[name] = [accuracy_pool.submit(accuracy_of_model, g, np.array(k_picks(g)), mi, pre_ok)
                                    for mi in range(nM)]
        stages: dict = {}
        stage_rows = 0
        for call, (cols, sub, policy, k, ctx) in stage_inputs.items():
            out = lay.cost_stage(cols, sub, layouts, layout_groups, mt, ht, hardware, precision, not policy)
            per_request = k if call.requests == "k" else 1.0  # B x k requests: each original request pays for k
            stages[call] = {"latency_s": out["latency_s"], "energy_j": out["energy_j"] * per_request,
                            "cost_usd": out["cost_usd"] * per_request, "fits": out["fits"],
                            "bottleneck": out["bottleneck"], "ctx_ok": np.broadcast_to(ctx, sub)}
            stage_rows += out["rows"]

        # ---- per strategy: combine stages over its graph, then accuracy --------------------------
        parts: list[dict] = []
        blocks: list[Block] = []
        for si, (sname, graph) in enumerate(graphs.items()):
            k_sel = k_picks(graph)
            if not k_sel:
                continue
            ks = np.array(k_sel)
            lat_nodes, sums = {}, {"energy_j": {}, "cost_usd": {}}
            fits = np.ones(1, dtype=bool)
            ctx_ok = np.ones((1,) * 9, dtype=bool)
            bottleneck = None
            for node, attrs in graph.nodes(data=True):
                call = strat.stage_call(attrs)
                if call is None:
                    continue
                key = key_of(call)
                pick = [one_k] if key != call else (list(ks) if call.uses_k else None)
                # contiguous positions as a slice: a view of the stage's arrays, not a copy
                if pick is None:
                    pick = slice(None)
                elif pick == list(range(pick[0], pick[-1] + 1)):
                    pick = slice(pick[0], pick[-1] + 1)
                else:
                    pick = np.array(pick)
                src = {name: v[:, :, :, pick] for name, v in stages[key].items()}
                lat_nodes[node] = src["latency_s"]
                sums["energy_j"][node] = src["energy_j"]
                sums["cost_usd"][node] = src["cost_usd"]
                fits = fits & src["fits"]
                ctx_ok = ctx_ok & src["ctx_ok"]
                if bottleneck is None and call.op == "generate":
                    bottleneck = src["bottleneck"]
            latency, totals = strat.combine(graph, lat_nodes, sums)
            acc, lo_hi = accuracy_of(ks, accuracies[sname])
            pshape = (nM, nH, len(D), len(ks), len(Ls), nq, nv, len(Bs), len(Ts))
            ok = fits & dev_ok & ctx_ok & dt_ok
            if prune_accuracy and (ok & np.isfinite(latency) & np.isnan(acc)).any():
                # the weights bound above missed a configuration the engine found to fit
                # (never on the shipped catalog; tests): ask again on the full grid
                everything = np.ones((1,) * 9, dtype=bool)
                acc, lo_hi = accuracy_of(ks, [accuracy_pool.submit(accuracy_of_model, graph, ks, mi, everything)
                                              for mi in range(nM)])
            parts.append({
                "accuracy": acc, **dict(zip(("accuracy_lo", "accuracy_hi"), lo_hi)),
                "latency_s": latency, "energy_j": totals["energy_j"],
                "cost_usd": totals["cost_usd"], "bottleneck": bottleneck,
                "_ok": ok, "_ctx_ok": ctx_ok,
            })
            blocks.append(Block(si, pshape, K_all[ks]))
        if not parts:
            raise InputError("the search space is empty (check strategies and samples)", field="strategies",
                             value=space.strategies)
        # broadcast each strategy's block into preallocated flat columns (no concatenation copies)
        sizes = [int(np.prod(b.shape)) for b in blocks]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        total = int(sum(sizes))
        real = np.dtype(precision).type
        dtypes = {"accuracy": np.float32, "latency_s": real, "energy_j": real, "cost_usd": real,
                  "bottleneck": np.int8, "_ok": bool}
        if interval_fn:
            dtypes.update(accuracy_lo=np.float32, accuracy_hi=np.float32)
        cols = {k: np.empty(total, dtype=dt) for k, dt in dtypes.items()}
        counts = {"devices": 0, "context": 0, "dtype": 0}
        for part, blk, off, n in zip(parts, blocks, offsets, sizes):
            ctx_ok = part.pop("_ctx_ok")
            for k in dtypes:
                np.copyto(cols[k][off:off + n].reshape(blk.shape), part[k], casting="unsafe")
            counts["devices"] += _broadcast_count(~dev_ok, blk.shape)
            counts["context"] += _broadcast_count(dev_ok & ~ctx_ok, blk.shape)
            counts["dtype"] += _broadcast_count(dev_ok & ctx_ok & ~dt_ok, blk.shape)
        labels = {
            "model": [m.name for m in models], "hardware": [h.name for h in hardware],
            "strategy": list(graphs), "weight_dtype": [QUANTIZATIONS[q][0] for q in space.quantizations],
            "kv_dtype": list(space.kv_dtypes), "dtype": list(DTYPE_CODE), "layout": [x.as_dict() for x in layouts],
        }
        axes = {"devices": D, "gen_len": Ls, "batch": Bs, "kv_budget": Ts}
        ok = cols.pop("_ok")
        feasible = ok & np.isfinite(cols["latency_s"]) & np.isfinite(cols["accuracy"])
        counts["memory"] = int(feasible.size - feasible.sum()) - sum(counts.values())
        return Result(cols, blocks, offsets, axes, labels, act, int(feasible.size), feasible, counts, stage_rows)
    finally:
        accuracy_pool.shutdown(wait=True, cancel_futures=True)


def _broadcast_count(mask: np.ndarray, shape: tuple) -> int:
    """The number of True entries of ``mask`` broadcast to ``shape``, without forming it:
    each entry of ``mask`` repeats once per position of the axes it is broadcast along."""
    mask = np.asarray(mask)
    lead = len(shape) - mask.ndim
    repeat = int(np.prod([n for i, n in enumerate(shape) if i < lead or mask.shape[i - lead] == 1 != n],
                         dtype=np.int64))
    return int(np.count_nonzero(mask)) * repeat
