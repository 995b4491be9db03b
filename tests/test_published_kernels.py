"""benchmarks/published_kernels.py: the derivation from NVIDIA aiconfigurator's measured kernel tables.

Oracles: two-point closed forms worked by hand on rows of tests/data/aiconfigurator-kernels.csv, the
exact recovery of a synthetic line, and physics (no kernel reads HBM faster than the datasheet
bandwidth, or computes faster than the dense peak: a byte or FLOP miscount would break it)."""

import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location("published_kernels", os.path.join(ROOT, "benchmarks", "published_kernels.py"))
pk = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pk)

ROWS = pk.load()
H100_BW_BYTES_PER_S, H100_PEAK_FLOPS = 3.35e12, {"bf16": 989.4e12, "fp8": 1978.9e12}  # datasheet (hardware/h100-sxm.yaml)


def _pick(system, table, dtype, **shape):
    got = [r for r in ROWS if r["system"] == system and r["table"] == table and r["dtype"] == dtype
           and all(r["shape"][k] == v for k, v in shape.items())]
    assert len(got) == 1, (system, table, dtype, shape, len(got))
    return got[0]


def test_the_file_holds_the_five_systems_with_their_source():
    assert {r["system"] for r in ROWS} == set(pk.SYSTEMS)
    for r in ROWS:
        assert r["package"] == "aiconfigurator-core==0.12.0" and r["version"] == "1.3.0rc20"
        assert r["file"].startswith(r["system"] + "/") and "/trtllm/1.3.0rc20/" in r["file"]
        assert r["latency_s"] > 0


def test_line_fit_recovers_a_known_line():
    b = [1e6, 1e7, 1e8, 1e9]
    t0, rate = pk.line_fit(b, [3e-6 + x / 2.5e12 for x in b])
    assert t0 == pytest.approx(3e-6, rel=1e-6) and rate == pytest.approx(2.5e12, rel=1e-9)


def test_decode_gemm_two_rows_by_hand():
    # H100 bf16, m = 1: n = k = 8192 (134,217,728 B) in 49.184 us, n = k = 16384 (536,870,912 B) in
    # 186.144 us. Slope: 402,653,184 B / 136.960 us = 2.940 TB/s = 0.8776 of 3.35; t0 = 49.184 us -
    # 134,217,728 B / 2.940 TB/s = 3.53 us.
    rows = [_pick("h100_sxm", "gemm", "bfloat16", m=1, n=n, k=n) for n in (8192, 16384)]
    d = pk.derive(rows, "h100_sxm", H100_BW_BYTES_PER_S, H100_PEAK_FLOPS)
    assert d["decode_gemm_bfloat16"]["memory_fraction"] == pytest.approx(0.8776, abs=5e-4)
    assert d["decode_gemm_bfloat16"]["t0_s"] == pytest.approx(3.53e-6, abs=0.01e-6)


def test_large_gemm_and_moe_by_hand():
    # H100 bf16 8192 x 16384 x 16384: 4.398e15 FLOP in 5.8268 ms = 754.8 TFLOP/s = 0.763 of 989.4.
    big = _pick("h100_sxm", "gemm", "bfloat16", m=8192, n=16384, k=16384)
    # H100 fp8 MoE, Qwen3-235B experts (3 x 4096 x 1536 = 18,874,368 B each): 1 token touches 8 experts
    # (150,994,944 B) in 77.019 us, 16 tokens all 128 (2,415,919,104 B) in 823.147 us: 3.036 TB/s = 0.906
    # of 3.35, t0 = 77.019 - 49.74 = 27.28 us.
    moe = [_pick("h100_sxm", "moe", "fp8", tokens=t) for t in (1, 16)]
    d = pk.derive([big, *moe], "h100_sxm", H100_BW_BYTES_PER_S, H100_PEAK_FLOPS)
    assert d["large_gemm_bfloat16"]["median_fraction"] == pytest.approx(0.7629, abs=5e-4)
    assert d["moe_fp8"]["memory_fraction"] == pytest.approx(0.9061, abs=5e-4)
    assert d["moe_fp8"]["t0_s"] == pytest.approx(27.28e-6, abs=0.02e-6)


@pytest.mark.parametrize("system", list(pk.SYSTEMS))
def test_no_row_beats_the_datasheet(system):
    bw, peaks = pk._hardware(system)
    for r in ROWS:
        if r["system"] != system:
            continue
        s, t = r["shape"], r["latency_s"]
        if r["table"] == "gemm":
            assert pk.gemm_weight_bytes(r["dtype"], s["n"], s["k"]) / t <= bw
            assert 2.0 * s["m"] * s["n"] * s["k"] / t <= peaks[pk.PEAK_DTYPE[r["dtype"]]]
        elif r["table"] == "moe":
            assert pk.moe_weight_bytes(r["dtype"], s) / t <= bw
        elif r["table"] == "generation_attention":
            assert pk.kv_bytes(s) / t <= bw
    d = pk.derive(ROWS, system, bw, peaks)
    for k, v in d.items():
        if isinstance(v, dict):
            assert all(0.0 < f <= 1.0 for key, f in v.items() if "fraction" in key), (k, v)
            assert v.get("t0_s", 1e-6) > 0, (k, v)


def test_blackwell_floors_are_not_below_hopper():
    """The published tables' point: a Blackwell kernel's fixed time is Hopper's or more, not half of it."""
    h = pk.derive(ROWS, "h100_sxm", *pk._hardware("h100_sxm"))
    for system in ("b200_sxm", "gb200", "b300_sxm"):
        d = pk.derive(ROWS, system, *pk._hardware(system))
        assert d["attention_floor_s"] > h["attention_floor_s"]
        assert d["allreduce_floor_s_4gpu"] > h["allreduce_floor_s_4gpu"]
        for dt in ("bfloat16", "fp8", "fp8_block"):
            assert pk.layer_kernel_mean_s(d, dt) >= pk.layer_kernel_mean_s(h, dt)


def test_the_table_prints(capsys):
    assert pk.main([]) == 0
    out = capsys.readouterr().out
    assert all(s in out for s in pk.SYSTEMS)
