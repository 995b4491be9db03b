"""The shipped hardware catalog: every device loads, every number is sourced, and the
datasheet figures we rely on most are exactly what the vendors publish."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner import catalog
from planner.dtypes import DTYPES

REQUIRED = {
    "gpu": ["h100-sxm", "h100-pcie", "h200", "b200", "a100-sxm-80gb", "l40s", "l4", "rtx-4090", "mi300x"],
    "npu": ["tpu-v5e", "tpu-v5p", "gaudi3", "ascend-910b"],
    "edge": [
        "jetson-agx-orin",
        "jetson-orin-nano",
        "apple-m3-max",
        "apple-m4-pro",
        "raspberry-pi-5",
        "snapdragon-8-gen-3",
    ],
    "cpu": ["intel-xeon-8480", "amd-epyc-9654"],
}
MIN_PER_KIND = {"gpu": 9, "npu": 4, "edge": 6, "cpu": 2}
HARDWARE_DIR = Path(catalog.builtin_dir("hardware"))


@pytest.fixture(scope="module")
def devices():
    mp = pytest.MonkeyPatch()
    mp.delenv("PLANNER_PATH", raising=False)  # the built-in catalog only
    try:
        found = catalog.all_hardware()
    finally:
        mp.undo()
    return {hw.name: hw for hw in found}


def test_catalog_size(devices):
    assert len(devices) >= 24


def test_required_names_present(devices):
    missing = [n for names in REQUIRED.values() for n in names if n not in devices]
    assert missing == []


def test_required_kinds(devices):
    for kind, names in REQUIRED.items():
        for name in names:
            assert devices[name].kind == kind, name
    counts = {k: sum(1 for hw in devices.values() if hw.kind == k) for k in MIN_PER_KIND}
    for kind, n in MIN_PER_KIND.items():
        assert counts[kind] >= n, (kind, counts[kind])


def test_file_name_matches_name():
    for path in HARDWARE_DIR.glob("*.y*ml"):
        hw = catalog.load_hardware(str(path))
        assert hw.name == path.stem, path


@pytest.mark.parametrize("name", sorted(p.stem for p in HARDWARE_DIR.glob("*.y*ml")))
def test_every_number_sourced(devices, name):
    hw = devices[name]
    assert hw.kind in {"gpu", "npu", "edge", "cpu"}
    assert hw.unsourced_fields() == []
    for field, text in hw.sources.items():
        assert isinstance(text, str) and text.strip(), (name, field)
        assert field in type(hw).model_fields, (name, field)  # no typo'd source keys
    assert hw.price_per_hour_usd is not None or hw.purchase_price_usd is not None
    assert hw.vendor and hw.description


@pytest.mark.parametrize("name", sorted(p.stem for p in HARDWARE_DIR.glob("*.y*ml")))
def test_physical_sanity(devices, name):
    hw = devices[name]
    peaks = hw.peak_tflops
    assert set(peaks) <= set(DTYPES)
    if "fp32" in peaks:
        for half in ("bf16", "fp16"):
            if half in peaks:
                assert peaks[half] >= peaks["fp32"], (name, half)
    for half in ("bf16", "fp16"):
        if "fp8" in peaks and half in peaks:
            assert peaks["fp8"] >= peaks[half], (name, half)
    if "fp4" in peaks and "fp8" in peaks:
        assert peaks["fp4"] >= peaks["fp8"]
    assert hw.idle_power_w < hw.max_power_w
    if hw.max_devices == 1:
        assert hw.interconnect_gbps == 0
    else:
        assert hw.interconnect_gbps > 0
    if hw.kind == "edge":
        assert hw.max_devices == 1
        assert hw.purchase_price_usd is not None


def test_dtype_support_matches_silicon(devices):
    # No FP8 before Hopper/Ada/CDNA3, no FP4 before Blackwell.
    assert "fp8" not in devices["a100-sxm-80gb"].peak_tflops
    assert "fp4" not in devices["h100-sxm"].peak_tflops
    assert "fp4" in devices["b200"].peak_tflops
    for ada in ("l4", "l40s", "rtx-4090"):
        assert "fp8" in devices[ada].peak_tflops, ada
    assert set(devices["tpu-v5e"].peak_tflops) == {"bf16", "int8"}


def test_datasheet_spot_checks(devices):
    h100 = devices["h100-sxm"]
    assert h100.peak_tflops["bf16"] == 989.4
    assert h100.mem_bandwidth_gbps == 3350
    assert h100.memory_gb == 80
    h200 = devices["h200"]
    assert h200.mem_bandwidth_gbps == 4800
    assert h200.memory_gb == 141
    b200 = devices["b200"]
    assert b200.memory_gb == 180  # DGX B200: 1,440 GB / 8 GPUs
    assert b200.mem_bandwidth_gbps == 8000
    assert b200.peak_tflops["fp4"] == 9000
    mi300x = devices["mi300x"]
    assert mi300x.mem_bandwidth_gbps == 5300
    assert mi300x.memory_gb == 192
    assert mi300x.peak_tflops["fp16"] == 1307.4
    a100 = devices["a100-sxm-80gb"]
    assert a100.peak_tflops["bf16"] == 312
    assert a100.mem_bandwidth_gbps == 2039
    v5e = devices["tpu-v5e"]
    assert v5e.peak_tflops["bf16"] == 197
    assert v5e.mem_bandwidth_gbps == 819
    assert devices["l4"].max_power_w == 72


def test_peak_flops_units(devices):
    assert devices["h100-sxm"].peak_flops("bf16") == pytest.approx(989.4e12)
    # fp16/bf16 stand in for each other when only one is listed
    assert devices["tpu-v5e"].peak_flops("fp16") == pytest.approx(197e12)
