"""What an fp8 (w8a8) model runs in 16 bits: its attention, when the KV cache is 16-bit, and
its elementwise kernels (norms, residual adds, rotary, activation).

An fp8 linear layer quantizes only its input and returns its output in the activations'
16-bit dtype (vLLM ``w8a8_utils.apply_fp8_linear``: ``out_dtype=input.dtype``), so the
hidden states, the query and (with the engines' default KV dtype) K and V are bf16: the
attention kernels multiply on the 16-bit tensor cores, at half the fp8 dense peak on Hopper.

Oracles: NVIDIA's H100 SXM datasheet (dense bf16 989.4 TFLOP/s, fp8 1,978.9 TFLOP/s, written
here, not read from the catalog) and the activation count written out by hand from
Llama-3.1-8B's published config.json (hidden 4,096, 32 layers, intermediate 14,336)."""

from __future__ import annotations

import pytest

from planner.catalog import load_hardware, load_model
from planner.cost.api import columns
from planner.cost.context import Ctx
from planner.cost.ops import SCALAR, VECTOR
from planner.cost.passes import prefill_phase
from planner.cost.tables import HardwareTable, ModelTable

H100 = load_hardware("h100-sxm")
BF16_DENSE_FLOPS = 989.4e12   # NVIDIA H100 SXM datasheet, dense (without sparsity)
FP8_DENSE_FLOPS = 1978.9e12
LLAMA_8B = load_model("llama-3.1-8b")
MT = ModelTable.build([LLAMA_8B])
HT = HardwareTable.build([H100])


def _ctx(weight: str, act: str, kv: str, xp=VECTOR, prompt=8192) -> Ctx:
    cols = columns(1, model=0, hardware=0, devices=1, batch=1, concurrency=0, prompt_len=prompt, gen_len=1,
                   samples=1, kv_budget=0, prefix_sharing=False, weight_dtype=weight, act_dtype=act, kv_dtype=kv)
    if xp is SCALAR:
        cols = {k: (v[0].item() if hasattr(v, "__len__") else v) for k, v in cols.items()}
    return Ctx(cols, MT, HT, xp=xp)


def _f(v) -> float:
    return float(v if isinstance(v, float) else v[0])


@pytest.mark.parametrize("xp", [VECTOR, SCALAR], ids=["vector", "scalar"])
def test_attention_runs_at_the_kv_dtype_rate(xp):
    e = H100.compute_efficiency  # the spec's attention curve without calibration: the GEMMs' e_max
    def rate(x, name):  # FLOP/s (pytest.approx's absolute tolerance would swallow s/FLOP)
        return 1.0 / _f(getattr(x, name))

    fp8_bf16kv = _ctx("fp8", "fp8", "bf16", xp)
    assert rate(fp8_bf16kv, "s_per_attn_flop") == pytest.approx(BF16_DENSE_FLOPS * e, rel=1e-3)
    assert rate(fp8_bf16kv, "s_per_gemm_flop") == pytest.approx(FP8_DENSE_FLOPS * e, rel=1e-3)  # GEMMs keep fp8
    # an fp8 KV cache: the fp8 attention path (FlashAttention-3 fp8, TensorRT-LLM's fp8 FMHA)
    assert rate(_ctx("fp8", "fp8", "fp8", xp), "s_per_attn_flop") == pytest.approx(FP8_DENSE_FLOPS * e, rel=1e-3)
    # bf16 everywhere: unchanged
    assert rate(_ctx("bf16", "bf16", "bf16", xp), "s_per_attn_flop") == pytest.approx(BF16_DENSE_FLOPS * e, rel=1e-3)


def test_long_prefill_attention_costs_the_bf16_time():
    """A compute-bound 32k-token prefill: the fp8 row with a bf16 KV cache spends, over the
    same row with an fp8 KV cache, exactly its attention FLOPs at the bf16 minus the fp8
    datasheet rate (the linear layers and the FLOP counts are the same)."""
    P = 32768
    wide = prefill_phase(_ctx("fp8", "fp8", "bf16", prompt=P), 1.0, float(P))
    narrow = prefill_phase(_ctx("fp8", "fp8", "fp8", prompt=P), 1.0, float(P))
    f_att = _f(wide["F_att"])
    assert f_att == pytest.approx(_f(narrow["F_att"]), rel=1e-12)
    e = H100.compute_efficiency
    extra = f_att * (1.0 / BF16_DENSE_FLOPS - 1.0 / FP8_DENSE_FLOPS) / e
    assert _f(wide["t_compute"]) - _f(narrow["t_compute"]) == pytest.approx(extra, rel=2e-3, abs=0.0)


@pytest.mark.parametrize("act", ["fp8", "bf16"])
def test_elementwise_traffic_is_sixteen_bit(act):
    """The activation bytes of a prefill, per token: 10 hidden-sized and 3 intermediate-sized
    values per layer (planner.cost.tables ``act_elems``), 2 bytes each, for the fp8 model as
    for the bf16 one."""
    P = 1024.0
    phase = prefill_phase(_ctx(act, act, "bf16", prompt=int(P)), 1.0, P)
    per_token_values = 32 * (10 * 4096 + 3 * 14336)
    assert _f(phase["B_a"]) == pytest.approx(P * per_token_values * 2.0, rel=1e-12)



def _pi_ctx(hw, xp):
    cols = columns(1, model=0, hardware=0, devices=1, batch=1, concurrency=0, prompt_len=64, gen_len=1,
                   samples=1, kv_budget=0, prefix_sharing=False, weight_dtype="int8", act_dtype="int8",
                   kv_dtype="bf16")
    if xp is SCALAR:
        cols = {k: (v[0].item() if hasattr(v, "__len__") else v) for k, v in cols.items()}
    return Ctx(cols, MT, HardwareTable.build([hw]), xp=xp)


@pytest.mark.parametrize("xp", [VECTOR, SCALAR], ids=["vector", "scalar"])
def test_int8_row_attends_at_the_sixteen_bit_rate_or_its_own(xp):
    """Raspberry Pi 5 (its spec: fp16 0.3072, int8 0.6144 TFLOP/s; fp16 stands for bf16): an
    int8 row with a bf16 KV cache attends at the fp16 rate. A device without any 16-bit
    units keeps the int8 rate rather than a missing (infinite-time) one."""
    pi = load_hardware("raspberry-pi-5")
    x = _pi_ctx(pi, xp)
    assert 1.0 / _f(x.s_per_attn_flop) == pytest.approx(0.3072e12 * pi.compute_efficiency, rel=1e-9)
    no16 = pi.model_copy(update={"peak_tflops": {k: v for k, v in pi.peak_tflops.items() if k in ("fp32", "int8")}})
    y = _pi_ctx(no16, xp)
    assert _f(y.s_per_attn_flop) == pytest.approx(_f(y.s_per_gemm_flop), rel=1e-12, abs=0.0)
