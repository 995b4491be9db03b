"""The all-reduces of tensor parallelism carry the 16-bit hidden states, whatever the GEMMs'
input precision: a quantized linear layer returns its output in bf16 (vLLM
apply_fp8_linear: ``out_dtype=input.dtype``), so an fp8 model's all-reduce moves the same
bytes as the bf16 model's.

Oracle: the ring all-reduce written out by hand from the device's datasheet figures
(two per layer, ``latency + 2 (t-1)/t x tokens x hidden x 2 bytes / link``; Patarasuk &
Yuan 2009), and the fp32 case keeping its 4 bytes."""

from __future__ import annotations

import pytest

from planner.catalog import load_hardware, load_model
from planner.cost.api import columns
from planner.cost.context import Ctx
from planner.cost.interconnect import allreduce_s
from planner.cost.tables import HardwareTable, ModelTable

H100 = load_hardware("h100-sxm")
MODEL = load_model("llama-3.1-70b")
MT = ModelTable.build([MODEL])


def _ctx(devices: int, act: str, weight: str) -> Ctx:
    cols = columns(1, model=0, hardware=0, devices=devices, batch=1, concurrency=0, prompt_len=16, gen_len=1,
                   samples=1, kv_budget=0, prefix_sharing=False, weight_dtype=weight, act_dtype=act,
                   kv_dtype="bf16")
    return Ctx(cols, MT, HardwareTable.build([H100]))


def _by_hand(devices: int, tokens: float, value_bytes: float) -> float:
    link = H100.interconnect_gbps * 1e9 * H100.interconnect_efficiency
    latency = H100.interconnect_latency_us * 1e-6  # one custom all-reduce kernel at any t
    one = latency + 2.0 * (devices - 1) / devices * tokens * MODEL.hidden_size * value_bytes / link
    return 2.0 * MODEL.num_layers * one


@pytest.mark.parametrize("devices", [2, 4, 8])
@pytest.mark.parametrize("tokens", [1.0, 64.0, 8192.0])
def test_fp8_allreduce_moves_bf16_hidden_states(devices, tokens):
    fp8 = float(allreduce_s(_ctx(devices, "fp8", "fp8"), tokens, 1.0)[0])
    bf16 = float(allreduce_s(_ctx(devices, "bf16", "bf16"), tokens, 1.0)[0])
    assert fp8 == pytest.approx(bf16, rel=1e-12)
    assert bf16 == pytest.approx(_by_hand(devices, tokens, 2.0), rel=1e-9)


def test_fp32_keeps_four_bytes():
    t = float(allreduce_s(_ctx(4, "fp32", "fp32"), 4096.0, 1.0)[0])
    assert t == pytest.approx(_by_hand(4, 4096.0, 4.0), rel=1e-9)
    assert t > float(allreduce_s(_ctx(4, "bf16", "bf16"), 4096.0, 1.0)[0])
