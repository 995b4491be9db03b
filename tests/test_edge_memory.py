"""A device's ``memory_gb`` is in GB of 1e9 bytes (the cost engine's capacity is
``memory_gb x 1e9``: planner.cost.tables), so a figure published in bytes or GiB is
converted, not copied. Oracle: NVIDIA aiconfigurator's systems/gb10.yaml gives the DGX
Spark's GPU 128,538,451,968 bytes usable to CUDA (119.7 GiB: the figure first written
into the GB field, 7% short)."""

import pytest

from planner.catalog import load_hardware

GB10_CUDA_BYTES = 128_538_451_968  # aiconfigurator systems/gb10.yaml mem_capacity


def test_dgx_spark_memory_is_the_usable_bytes_in_gb():
    hw = load_hardware("dgx-spark")
    assert hw.memory_gb * 1e9 == pytest.approx(GB10_CUDA_BYTES, rel=1e-3)
    assert hw.memory_gb * 1e9 < 128 * 2**30  # below the 128 GiB of LPDDR5X the unit holds
