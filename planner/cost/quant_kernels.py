"""The activation-quantization kernels a quantized GEMM path launches before each GEMM.

A GEMM whose inputs are 8- or 4-bit (w8a8, nvfp4) takes its activations in the model's
16-bit dtype (the residual stream and the previous layer's output are bf16:
planner.cost.interconnect.RESIDUAL_MIN_BYTES_PER_VALUE) and quantizes them first, in
kernels of their own; a 16-bit GEMM and a weight-only one (W4A16, W8A16: the weights are
dequantized inside the GEMM) launch none. Kernels per quantized GEMM input, by path:

* fp8 per-tensor, dynamic scale: 2, an abs-max reduction over the whole tensor into one
  scale, then the quantize (vLLM ``csrc/quantization/fp8/common.cu``
  ``dynamic_scaled_fp8_quant``: ``segmented_max_reduction`` then ``scaled_fp8_quant_kernel``;
  the scale must be complete before any block quantizes, hence two launches);
* fp8 block-scaled (DeepSeek-V3's 1x128 activation groups): 1, the per-token-group
  quantization computes each group's scale and quantizes in one kernel (vLLM / SGLang
  ``per_token_group_quant_fp8``);
* nvfp4: 1 (``scaled_fp4_quant``: each 16-value block's fp8 scale and the packed fp4 values
  in one kernel);
* int8 (SmoothQuant w8a8): 1 (vLLM ``dynamic_scaled_int8_quant``: per-token scale and quantize
  in one kernel);
* 16-bit and weight-only paths: 0.

Measured cost (NVIDIA aiconfigurator's TensorRT-LLM 1.3.0rc20 GEMM tables, which time one
``Linear`` including its activation quantization; benchmarks/published_kernels.py, lab book
Round 15 (S1b)): the decode GEMM's fixed time t0 is 4-5 us for bf16, 6-7 us for fp8_block,
10-11 us for nvfp4 and 13-15 us for fp8 per-tensor on H100, H200, B200, GB200 and B300 alike:
the ordering of the kernel counts above.
"""

from __future__ import annotations

import numpy as np

from planner.dtypes import DTYPES

# quantization kernels per quantized GEMM input, by the GEMMs' activation (compute) dtype
# (fp8: the per-tensor dynamic path, the dev file's and the engines' plain "fp8")
KERNELS_BY_ACT_DTYPE = {"fp32": 0, "tf32": 0, "bf16": 0, "fp16": 0, "fp8": 2, "int8": 1, "int4": 1, "fp4": 1}
# quant modes (planner.measured.PRECISIONS) whose activation scaling differs from their dtype's default
KERNELS_BY_QUANT_MODE = {"fp8_block": 1}
# the engine column's "by the activation dtype" value (planner.cost.engine.INPUT_DEFAULTS)
BY_DTYPE = -1
KERNELS_BY_CODE = np.array([float(KERNELS_BY_ACT_DTYPE[d]) for d in DTYPES])
_BY_CODE_LIST = KERNELS_BY_CODE.tolist()


def kernels_for_mode(quant: np.ndarray) -> np.ndarray:
    """The ``act_quant_kernels`` column for quant-mode names: the mode's own count where
    :data:`KERNELS_BY_QUANT_MODE` has one, else :data:`BY_DTYPE`."""
    q = np.asarray(quant, dtype=str)
    return np.array([KERNELS_BY_QUANT_MODE.get(s.strip().lower(), BY_DTYPE) for s in q.ravel()],
                    dtype=float).reshape(q.shape)


def kernels_per_input(xp, act_code, given):
    """Quantization kernels per quantized GEMM input: ``given`` where >= 0, else the
    activation dtype's (:data:`KERNELS_BY_ACT_DTYPE`)."""
    table = _BY_CODE_LIST if isinstance(act_code, (int, np.integer)) else KERNELS_BY_CODE
    by_dtype = xp.gather(table, act_code)
    return xp.where(given >= 0, given, by_dtype)
