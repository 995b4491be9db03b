"""What a device nobody measured starts from: the achieved fractions in hardware/*.yaml
(docs/serving-experiments.md, "Round 15 (S4)").

Outside figures (each quoted in the YAML's ``sources``):

* achieved memory bandwidth: ProjectPhysX/FluidX3D README, "Single-GPU/CPU Benchmarks"
  table: a D3Q19 lattice Boltzmann update moves 153 bytes per cell (FP32/FP32), so
  MLUPs/s x 153 B is the bandwidth the kernel reached; the README prints the same fraction
  of the datasheet bandwidth in brackets;
* achieved dense GEMM throughput: OpenXLA's measured cuBLAS tables (sm_90, sm_100) and
  DeepGEMM's README for NVIDIA; AMD's ROCm blogs (max-achievable FLOPs on MI300X and
  MI325X, hipBLASLt FP8 on MI355X): a ceiling on the serving fraction, taken where it is
  below the generic default.

A set prior must be a measurement (not an assumption), inside its physical range, and
equal to what the quoted published figures give against the device's own datasheet; a
field left at the generic default must say so. The unmeasured-device route
(planner.serving_carry.unmeasured, the replay's and every command's) must take the
prior where the carry rule carries nothing in its place.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from planner import catalog
from planner import serving_carry as SC
from planner.catalog import load_hardware
from planner.cost.efficiency import default_efficiency
from planner.engine_profiles import load_engine
from planner.serving_profile import load_serving, resolve_serving
from planner.specs import DEFAULT_COMPUTE_EFFICIENCY

PRIORS = ("memory_efficiency", "compute_efficiency", "interconnect_efficiency", "kernel_overhead_us")
FIRST = ("b200", "gb200", "h100-sxm", "h200", "mi300x", "mi325x", "mi355x", "a100-sxm-80gb", "l40s")
LBM_BYTES_PER_CELL = 153  # FluidX3D README: D3Q19 SRT, FP32/FP32 storage

# Published dense GEMM throughput (TFLOP/s) by dtype, from the sources the YAMLs quote.
GEMM_TFLOPS = {
    "h100-sxm": {"bf16": 807.7, "fp8": 1550.0},   # OpenXLA sm_90 table; DeepGEMM on H800 (same GH100)
    "h200": {"bf16": 807.7, "fp8": 1550.0},       # the same GH100 at the same peaks
    "h800": {"bf16": 807.7, "fp8": 1550.0},
    "b200": {"bf16": 1466.6, "fp8": 3123.5},      # OpenXLA sm_100 table, batch 2 x 4096^3
    "mi300x": {"bf16": 708.0, "fp8": 1273.0},     # AMD max-achievable FLOPs, 2025-02
    "mi325x": {"bf16": 831.4, "fp8": 1408.1},     # AMD MAF re-measured, 2026-10
    "mi355x": {"fp8": 3130.2},                    # hipBLASLt, M=N=K=8192, 2026-03
}


@pytest.fixture(scope="module")
def devices():
    return {hw.name: hw for hw in catalog.all_hardware()}


def test_every_set_prior_is_a_physical_measurement(devices):
    for hw in devices.values():
        for field in set(PRIORS) & hw.model_fields_set:
            text = hw.sources[field]
            assert not text.lower().startswith(("assumption", "not set")), (hw.name, field)
            value = getattr(hw, field)
            if field == "kernel_overhead_us":
                assert 0.0 <= value <= 50.0, (hw.name, value)
            else:
                assert 0.0 < value <= 1.0, (hw.name, field, value)


@pytest.mark.parametrize("name", FIRST)
def test_a_first_priority_device_sources_or_disclaims_each_prior(devices, name):
    hw = devices[name]
    for field in PRIORS:
        assert field in hw.sources, (name, field)
        if field not in hw.model_fields_set:
            assert hw.sources[field].startswith("not set"), (name, field)


def test_memory_priors_are_the_published_streaming_fraction(devices):
    checked = 0
    for hw in devices.values():
        text = hw.sources.get("memory_efficiency", "")
        found = re.search(r"(\d+) MLUPs/s x 153 B .*? = (\d+)%", text)
        if "memory_efficiency" not in hw.model_fields_set or not found:
            continue
        mlups, pct = int(found.group(1)), int(found.group(2))
        achieved = mlups * 1e6 * LBM_BYTES_PER_CELL / (hw.mem_bandwidth_gbps * 1e9)
        assert achieved == pytest.approx(pct / 100, abs=0.006), hw.name  # the README's own bracket
        assert hw.memory_efficiency == pytest.approx(achieved, abs=0.005), hw.name
        checked += 1
    assert checked >= 12


@pytest.mark.parametrize("name", sorted(GEMM_TFLOPS))
def test_compute_priors_are_the_default_capped_by_the_published_gemm_fraction(devices, name):
    """A best-shape GEMM bounds what serving reaches from above (the Hopper fits sit at
    0.56 / 0.68 of peak, below GH100's 0.80), so the prior is the generic fraction unless the
    published one is lower."""
    hw = devices[name]
    fractions = [tflops / hw.peak_tflops[dtype] for dtype, tflops in GEMM_TFLOPS[name].items()]
    assert all(0.4 < f < 0.9 for f in fractions), fractions
    ceiling = float(np.mean(fractions))
    assert hw.compute_efficiency == pytest.approx(min(DEFAULT_COMPUTE_EFFICIENCY, ceiling), abs=0.006)
    assert ("compute_efficiency" in hw.model_fields_set) == (ceiling < DEFAULT_COMPUTE_EFFICIENCY)


def test_rocm_parts_stream_less_of_their_datasheet_than_nvidia_hbm_parts(devices):
    """The published check's finding (MI355X TPOT 31% too fast with Hopper-like fractions)
    is what the streaming benchmark says of the parts themselves."""
    amd = max(devices[n].memory_efficiency for n in ("mi300x", "mi355x"))
    nvidia = min(devices[n].memory_efficiency for n in ("h100-sxm", "h200", "b200", "a100-sxm-80gb"))
    assert amd < nvidia


@pytest.mark.parametrize("name, engine", [("b200", "sglang"), ("b200", "vllm"), ("mi355x", "sglang")])
def test_an_unmeasured_device_takes_its_yaml_priors(name, engine):
    hw = load_hardware(name)
    profile, vals = SC.unmeasured(hw, engine, load_engine(engine), load_serving())
    assert profile.startswith(f"datasheet + {engine}")  # something carries, but not these:
    for field, key, scale in (("memory_efficiency", "memory_efficiency", 1.0),
                              ("compute_efficiency", "compute_efficiency", 1.0),
                              ("kernel_overhead_us", "kernel_time_s", 1e-6)):
        if key in SC.CARRIED and hw.vendor == "NVIDIA":  # carried from the fitted NVIDIA parts (the shipped rule)
            fitted = [v[key] for g, (_, v) in load_serving().items() if g.endswith("/" + engine)]
            assert vals[key] == pytest.approx(float(np.median(fitted))), (name, key)
            continue
        assert vals[key] == pytest.approx(getattr(hw, field) * scale), (name, key)
    eff = resolve_serving(hw, load_engine(engine)).efficiency or default_efficiency(hw)  # None: the datasheet's
    assert eff.memory.e_max == pytest.approx(hw.memory_efficiency)
    assert eff.compute_curve("bf16").e_max == pytest.approx(hw.compute_efficiency)
    if hw.vendor != "NVIDIA":  # the fitted NVLink fraction carries to NVIDIA parts only
        assert vals["link_efficiency"] == pytest.approx(hw.interconnect_efficiency)
