"""Expert parallelism, attention data parallelism (planner.cost.expert_parallel) and the
vectorized disaggregated predictor (planner.cost.disagg), each against an outside oracle:
today's tensor-parallel rows, brute-force routings, hand counts, the per-configuration
entry point."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from planner.catalog import load_hardware, load_model
from planner.cli import main
from planner.cost.api import columns, estimate
from planner.cost.disagg import disaggregated_rows
from planner.cost.engine import evaluate
from planner.cost.expert_parallel import a2a_s, max_device_slots, normal_max_z
from planner.cost.ops import VECTOR
from planner.cost.serving_api import disaggregated_estimate
from planner.cost.tables import HardwareTable, ModelTable
from planner.engine_profiles import load_engine

MODELS = ("llama-3.1-8b", "qwen3-235b-a22b", "deepseek-r1")


def _grid(n, rng, closed):
    return dict(model=rng.integers(0, len(MODELS), n), hardware=0, devices=rng.choice([1, 2, 4, 8], n), batch=4,
                concurrency=rng.choice([0, 1, 16, 64], n) if not closed else rng.choice([1, 16, 64], n),
                prompt_len=rng.integers(64, 4096, n), gen_len=rng.integers(16, 1024, n), samples=1,
                weight_dtype="fp8", act_dtype="fp8", kv_dtype="fp8", kv_budget=0, prefix_sharing=False,
                arrival=1 if closed else 0)


@pytest.mark.parametrize("closed", [False, True])
def test_default_layout_rows_equal_tensor_parallel_rows(closed):
    """ep = attn_dp = 1 rows costed through the layout branch (a block where other rows
    use EP / attention DP) equal the same rows costed alone by the tensor-parallel
    formulas: the new physics reduces to today's exactly."""
    rng = np.random.default_rng(3)
    mt = ModelTable.build([load_model(m) for m in MODELS])
    ht = HardwareTable.build([load_hardware("h200")])
    n = 64
    g = _grid(n, rng, closed)
    alone = evaluate(columns(n, **g), mt, ht)
    # append rows with EP 8 / attention DP 2 of the MoE models: the block takes the layout branch
    g2 = {k: (np.concatenate([np.broadcast_to(v, n), np.broadcast_to(v, n)]) if np.ndim(v) else v) for k, v in g.items()}
    g2["model"] = np.concatenate([g["model"], np.full(n, 2)])
    ep = np.concatenate([np.ones(n, int), np.full(n, 8)])
    dp = np.concatenate([np.ones(n, int), np.full(n, 2)])
    mixed = evaluate(columns(2 * n, **g2, ep=ep, attn_dp=dp), mt, ht)
    for key in ("ttft_s", "tpot_s", "latency_s", "total_bytes", "cost_usd", "energy_j", "bytes_weights"):
        np.testing.assert_allclose(mixed[key][:n], alone[key], rtol=1e-12, err_msg=key)
    assert np.all(np.isfinite(mixed["tpot_s"][n:]))


def _brute_max_slots(E, k, ep, n, rng, trials=300):
    """Mean over random routings (each token picks k distinct experts of E uniformly) of
    the most token slots on one of ep devices of E/ep whole experts."""
    best = np.empty(trials)
    for i in range(trials):
        pick = np.argsort(rng.random((n, E)), axis=1)[:, :k]
        best[i] = np.bincount((pick // (E // ep)).ravel(), minlength=ep).max()
    return best.mean()


@pytest.mark.parametrize("E,k,ep", [(8, 2, 8), (64, 8, 64), (256, 8, 8), (128, 8, 4)])
@pytest.mark.parametrize("n", [8, 128, 512])
def test_busiest_device_load_matches_simulated_routings(E, k, ep, n):
    """The expected maximum load over expert-parallel devices against brute-force
    routings (numpy rng): within 13% at 8 tokens (a skewed count the normal
    approximation undershoots), 4% from 128 tokens on; ep = E is one device per expert."""
    x = SimpleNamespace(xp=VECTOR, model={"experts_per_token": float(k), "num_experts": float(E)}, ep=float(ep),
                        expert_parallel=True, ep_max_z=normal_max_z(ep))
    want = _brute_max_slots(E, k, ep, n, np.random.default_rng(E * n + k))
    got = float(max_device_slots(x, float(n)))
    assert got == pytest.approx(want, rel=0.13 if n < 128 else 0.04)
    assert got >= n * k / ep  # never below the balanced share


def test_normal_max_table_against_sampling():
    rng = np.random.default_rng(0)
    for n in (2, 8, 64, 256):
        sampled = rng.standard_normal((20000, n)).max(axis=1).mean()
        assert normal_max_z(n) == pytest.approx(sampled, abs=0.02)
    assert normal_max_z(1) == 0.0


def test_all_to_all_bytes_hand_count():
    """DeepSeek-style wide EP: 1024 tokens over 8 devices (t = 1, attn_dp = 8), ep = 8,
    top-8, hidden 7168, fp8 activations: each device sends 128 tokens x 8 x 7168 B x
    7/8 = 6,422,528 B per all-to-all, two per MoE layer (dispatch, combine), 58 layers."""
    x = SimpleNamespace(xp=VECTOR, model={"experts_per_token": 8.0, "hidden": 7168.0, "moe_layers": 58.0},
                        ep=8.0, attn_dp=8.0, group_devices=8.0, act_bytes_per_value=1.0, expert_parallel=True,
                        a2a_s_per_byte=1.0 / 450e9, a2a_latency_s=3e-6)
    per_call = 6_422_528 / 450e9 + 3e-6
    assert float(a2a_s(x, 1024.0, 1.0)) == pytest.approx(2 * 58 * per_call, rel=1e-12)
    x.attn_dp = 1.0  # tensor-parallel attention: every token is on every device, none moves
    assert float(a2a_s(x, 1024.0, 1.0)) == 0.0
    x.ep = 1.0
    x.expert_parallel = False
    assert a2a_s(x, 1024.0, 1.0) == 0.0


@pytest.mark.parametrize("concurrency", [None, 16])
def test_expert_parallel_under_tensor_parallel_attention_pays_the_tensor_parallel_collectives(concurrency):
    """Attention tensor parallel over 8 h200 (dp 1): after the attention's all-reduce every
    device holds every token, so experts split whole over 8 groups (ep 8) move no token and
    combine with the MoE's all-reduce, the collectives of experts split tensor-wise (ep 1):
    SGLang's default ``--moe-a2a-backend none`` and vLLM's default all-gather /
    reduce-scatter dispatch, which gathers across data-parallel ranks only. The interconnect
    time of DeepSeek-V3 is the same with ep 1 and ep 8, offline and in a closed loop; with
    attention DP 4 the experts' all-to-alls make ep 8 differ."""
    m = load_model("deepseek-v3")
    kw = dict(prompt_len=1024, gen_len=256, weight_dtype="fp8", act_dtype="fp8", kv_dtype="bf16")
    if concurrency:
        kw.update(concurrency=concurrency, engine=load_engine("vllm"), arrival="closed")
    link = {(ep, dp): estimate(m, "h200", devices=8 // dp, ep=ep, dp=dp, **kw)["time_by_bound_s"]["interconnect"]
            for ep in (1, 8) for dp in (1, 4)}
    assert link[8, 1] == pytest.approx(link[1, 1], rel=1e-12)
    assert link[8, 1] > 0.0
    assert link[8, 4] != pytest.approx(link[1, 4], rel=1e-3)


def test_weights_per_device_spread_experts_over_the_group():
    """DeepSeek-R1 fp8 on 8 devices, attention DP 8 x TP 1, EP 8: each device holds the
    whole non-expert model and 1/8 of the routed experts (hand count from the spec)."""
    m = load_model("deepseek-r1")
    common = dict(concurrency=8, prompt_len=1024, gen_len=256, weight_dtype="fp8", act_dtype="fp8", kv_dtype="fp8")
    tp8 = estimate(m, "h200", devices=8, **common)["memory"]["weights_bytes"]
    wide = estimate(m, "h200", devices=1, dp=8, ep=8, **common)["memory"]["weights_bytes"]
    mt = ModelTable.build([m])
    routed = float(mt.cols["num_experts"][0] * mt.cols["expert_params_per"][0])  # fp8: 1 byte a weight
    assert wide - tp8 == pytest.approx((routed / 8 + (8 * tp8 - routed)) - tp8, rel=1e-9)
    assert wide == pytest.approx(8 * tp8 - routed + routed / 8, rel=1e-9)


def test_more_attention_dp_groups_cut_kv_per_device():
    m = load_model("deepseek-r1")
    common = dict(concurrency=64, prompt_len=2048, gen_len=512, weight_dtype="fp8", act_dtype="fp8", kv_dtype="fp8")
    one = estimate(m, "h200", devices=8, ep=8, **common)["memory"]["kv_cache_bytes"]
    dp8 = estimate(m, "h200", devices=1, dp=8, ep=8, **common)["memory"]["kv_cache_bytes"]
    assert dp8 == pytest.approx(one / 8)  # MLA's latent is replicated over TP; DP splits the requests


def test_ep_is_no_faster_than_reading_the_busiest_devices_experts():
    """DeepSeek-R1 fp8, EP 8 x attention DP 8 at 64 in flight on h200: a decode step is no
    faster than reading, at datasheet bandwidth, one device's expected touched experts
    (occupancy of 64 tokens x top-8 over 256 experts, 1/8 of them local; fp8 = 1 byte)."""
    m, h = load_model("deepseek-r1"), load_hardware("h200")
    r = estimate(m, h, devices=1, dp=8, ep=8, concurrency=64, prompt_len=1024, gen_len=1024,
                 weight_dtype="fp8", act_dtype="fp8", kv_dtype="fp8")
    E, k = m.moe.num_experts, m.moe.experts_per_token
    touched_local = E * (1 - (1 - k / E) ** 64) / 8
    per_expert = float(ModelTable.build([m]).cols["expert_params_per"][0])  # one expert, all MoE layers
    assert r["tpot_s"] >= touched_local * per_expert / (h.mem_bandwidth_gbps * 1e9)


def test_cli_ep_and_dp(capsys):
    base = ["estimate", "--model", "deepseek-r1", "--hardware", "h200", "--weight-dtype", "fp8", "--act-dtype", "fp8",
            "--concurrency", "16", "--json"]
    assert main(base + ["--devices", "1", "--dp", "8", "--ep", "8"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["config"]["ep"] == 8 and r["config"]["attn_dp"] == 8 and r["tpot_s"] > 0
    assert main(base + ["--devices", "8", "--ep", "3"]) == 2
    err = capsys.readouterr().err
    assert "ep" in err and "3" in err and "Traceback" not in err
    assert main(["estimate", "--model", "llama-3.1-8b", "--devices", "2", "--ep", "2"]) == 2
    assert main(base + ["--devices", "2", "--dp", "2", "--ep", "8"]) == 2  # 8 does not divide 2 x 2 devices


def test_disaggregated_rows_equal_the_per_configuration_estimate():
    """The vectorized predictor equals disaggregated_estimate on random configurations."""
    rng = np.random.default_rng(11)
    names = ("llama-3.1-8b", "qwen3-32b", "deepseek-r1")
    models = [load_model(n) for n in names]
    hw = load_hardware("h200")
    eng = load_engine("trtllm")
    mt, ht = ModelTable.build(models), HardwareTable.build([hw])
    n = 12
    mi = rng.integers(0, len(names), n)
    pre_d, dec_d = rng.choice([1, 2, 4, 8], n), rng.choice([1, 2, 4, 8], n)
    mi = np.where(mi == 2, 2, mi)
    pre_d = np.where(mi == 2, 8, pre_d)  # DeepSeek-R1 fp8 needs 8 h200s
    dec_d = np.where(mi == 2, 8, dec_d)
    X, Y = rng.integers(1, 4, n), rng.integers(1, 6, n)
    C, P, G = rng.integers(1, 256, n), rng.integers(64, 8192, n), rng.integers(16, 2048, n)
    cols = columns(n, model=mi, hardware=0, devices=1, batch=1, concurrency=1, prompt_len=P, gen_len=G, samples=1,
                   weight_dtype="fp8", act_dtype="fp8", kv_dtype="fp8", kv_budget=0, prefix_sharing=False,
                   token_budget=eng.token_budget, chunked=int(eng.chunked_prefill), host_step_s=eng.host_step_s)
    got = disaggregated_rows(cols, mt, ht, prefill={"devices": pre_d}, decode={"devices": dec_d}, concurrency=C,
                             prefill_workers=X, decode_workers=Y)
    for i in range(n):
        want = disaggregated_estimate(models[mi[i]], hw, prefill_workers=int(X[i]), decode_workers=int(Y[i]),
                                      prefill_devices=int(pre_d[i]), decode_devices=int(dec_d[i]),
                                      concurrency=int(C[i]), prompt_len=int(P[i]), gen_len=int(G[i]),
                                      weight_dtype="fp8", act_dtype="fp8", kv_dtype="fp8", engine=eng)
        assert got["ttft_s"][i] == pytest.approx(want["ttft_s"], rel=1e-9)
        assert got["tpot_s"][i] == pytest.approx(want["tpot_s"], rel=1e-9)
        assert got["kv_transfer_s"][i] == pytest.approx(want["disaggregated"]["kv_transfer_s"], rel=1e-9)


def test_disaggregated_rows_take_each_sides_layout():
    """A wide-EP decode side (attention DP 8, EP 8) against the same side in TP 8: both
    finite, and the prefill side's TTFT is untouched by the decode side's layout."""
    m, hw = load_model("deepseek-r1"), load_hardware("h200")
    mt, ht = ModelTable.build([m]), HardwareTable.build([hw])
    cols = columns(2, model=0, hardware=0, devices=1, batch=1, concurrency=1, prompt_len=1024, gen_len=1024,
                   samples=1, weight_dtype="fp8", act_dtype="fp8", kv_dtype="fp8", kv_budget=0, prefix_sharing=False)
    r = disaggregated_rows(cols, mt, ht, prefill={"devices": 8}, decode={"devices": np.array([8, 1]),
                           "attn_dp": np.array([1, 8]), "ep": np.array([1, 8])}, concurrency=256,
                           prefill_workers=2, decode_workers=2)
    assert np.all(np.isfinite(r["tpot_s"])) and r["tpot_s"][0] != r["tpot_s"][1]
    assert r["devices"].tolist() == [32.0, 32.0]
