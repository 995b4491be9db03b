"""Validated spec types loaded from YAML: hardware devices and model descriptors.

Units are in the field names: ``_gb`` = 1e9 bytes, ``_gbps`` = 1e9 bytes/s,
``_tflops`` = 1e12 operations/s (dense, no structured sparsity), ``_w`` watts,
``_us`` microseconds, ``_usd`` US dollars. Every number in a YAML file must cite a
source in its ``sources:`` mapping (key = the field name); a default we supply in code
is documented in the README instead.
"""

from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from planner.bounds import (BANDWIDTH_GBPS_RANGE, MAX_DEVICES, MAX_DIM, MAX_EXPERTS, MAX_HEADS, MAX_LAYERS,
                            MAX_PARAMS, MAX_POWER_W, MAX_PRICE_USD, MAX_TOKENS, MAX_VOCAB,
                            MEMORY_GB_RANGE, PEAK_TFLOPS_RANGE, unique_short_list)
from planner.dtypes import DTYPES, compute_key
from planner.scenario_checks import (LAYOUT_FACTORS, LIST_BOUND, known_dtypes, known_quantizations, layout_entries,
                                     list_within_bound, positive_list)
from planner.units import HOURS_PER_YEAR

# the scenario lists' validator bodies live in planner.scenario_checks; callers written
# before the split import them from here
__all__ = ["DEFAULT_COMPUTE_EFFICIENCY", "DEFAULT_INTERCONNECT_EFFICIENCY", "DEFAULT_KERNEL_OVERHEAD_US",
           "DEFAULT_LIFETIME_YEARS", "DEFAULT_MEMORY_EFFICIENCY", "LAYOUT_FACTORS", "LIST_BOUND", "MLA", "PRICE_DATE",
           "Hardware", "LinearAttention", "Model", "MoE", "RecommendScenario", "known_dtypes", "known_quantizations",
           "layout_entries", "list_within_bound", "positive_list"]

# Documented defaults (README "Cost model"): achieved fraction of peak when no calibration
# profile exists. Large GEMMs reach ~70% of dense peak on H100-class parts and decode
# streams ~80% of HBM bandwidth (vLLM/TensorRT-LLM measurements, llm-analysis defaults).
DEFAULT_COMPUTE_EFFICIENCY = 0.70
DEFAULT_MEMORY_EFFICIENCY = 0.80
DEFAULT_INTERCONNECT_EFFICIENCY = 0.70
DEFAULT_KERNEL_OVERHEAD_US = 4.0
DEFAULT_LIFETIME_YEARS = 4.0
PRICE_DATE = r"^\d{4}(-\d{2}(-\d{2})?)?$"  # YYYY, YYYY-MM or YYYY-MM-DD


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    def unsourced_fields(self) -> list[str]:
        """Numeric fields set in the file that have no entry in ``sources``."""
        sources = getattr(self, "sources", {}) or {}
        missing = []
        for name in self.model_fields_set:
            value = getattr(self, name)
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            nested = isinstance(value, (dict, BaseModel))
            if (numeric or nested) and name not in sources and name != "sources":
                missing.append(name)
        return sorted(missing)


class Hardware(_Spec):
    """One accelerator, CPU or edge device (a single chip / package)."""

    name: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list, description="other names that resolve to this device")
    kind: Literal["gpu", "npu", "edge", "cpu"]
    vendor: str
    description: str = ""
    die: str = Field("", description="the silicon the device is cut from (e.g. GH100): devices of one die share "
                                     "its achieved fractions of peak and its per-kernel time (planner.serving_params)")
    fabric: str = Field("", description="the scale-up link generation (e.g. NVLink 4): devices of one fabric share "
                                        "its achieved link fraction (planner.serving_params)")
    peak_tflops: dict[str, float] = Field(description="dense peak per compute dtype, TFLOP/s or TOPS")
    memory_gb: float = Field(ge=MEMORY_GB_RANGE[0], le=MEMORY_GB_RANGE[1])
    mem_bandwidth_gbps: float = Field(ge=BANDWIDTH_GBPS_RANGE[0], le=BANDWIDTH_GBPS_RANGE[1])
    interconnect_gbps: float = Field(0.0, ge=0, le=BANDWIDTH_GBPS_RANGE[1], description="per-device, one direction")
    interconnect_latency_us: float = Field(5.0, ge=0)
    max_devices: int = Field(1, ge=1, le=MAX_DEVICES, description="devices in one tensor-parallel domain")
    inter_node_gbps: Optional[float] = Field(None, gt=0, le=BANDWIDTH_GBPS_RANGE[1],
                                             description="per-device network bandwidth between NVLink domains, "
                                                         "one direction (default: planner.cost.interconnect)")
    inter_node_latency_us: Optional[float] = Field(None, ge=0, le=1e6, description="one network hop between domains")
    idle_power_w: float = Field(ge=0, le=MAX_POWER_W)
    max_power_w: float = Field(gt=0, le=MAX_POWER_W)
    price_per_hour_usd: Optional[float] = Field(None, gt=0, le=MAX_PRICE_USD)
    price_date: Optional[str] = Field(None, pattern=PRICE_DATE, description="date of the rental price snapshot")
    purchase_price_usd: Optional[float] = Field(None, gt=0, le=MAX_PRICE_USD)
    purchase_price_date: Optional[str] = Field(None, pattern=PRICE_DATE, description="date of the purchase price")
    lifetime_years: float = Field(DEFAULT_LIFETIME_YEARS, gt=0, le=100)
    compute_efficiency: float = Field(DEFAULT_COMPUTE_EFFICIENCY, gt=0, le=1)
    memory_efficiency: float = Field(DEFAULT_MEMORY_EFFICIENCY, gt=0, le=1)
    interconnect_efficiency: float = Field(DEFAULT_INTERCONNECT_EFFICIENCY, gt=0, le=1)
    kernel_overhead_us: float = Field(DEFAULT_KERNEL_OVERHEAD_US, ge=0, le=1e6)
    sources: dict[str, str]

    @field_validator("peak_tflops")
    @classmethod
    def _known_dtypes(cls, v: dict[str, float]) -> dict[str, float]:
        for k, x in v.items():
            if k not in DTYPES:
                raise ValueError(f"unknown dtype '{k}' (choose from {', '.join(DTYPES)})")
            lo, hi = PEAK_TFLOPS_RANGE
            if not lo <= x <= hi:
                raise ValueError(f"peak for '{k}' must be in [{lo:g}, {hi:g}] TFLOP/s, got {x}")
        if not v:
            raise ValueError("at least one dtype is needed")
        return v

    @model_validator(mode="after")
    def _power_and_price(self) -> "Hardware":
        if self.idle_power_w > self.max_power_w:
            raise ValueError(f"idle_power_w {self.idle_power_w} exceeds max_power_w {self.max_power_w}")
        if self.price_per_hour_usd is None and self.purchase_price_usd is None:
            raise ValueError("give price_per_hour_usd and/or purchase_price_usd")
        if self.max_devices > 1 and self.interconnect_gbps <= 0:  # was: every time of a group "n/a", "$nan"
            raise ValueError(f"max_devices {self.max_devices} needs interconnect_gbps > 0 (a tensor-parallel "
                             "group's all-reduces cross it)")
        return self

    def peak_flops(self, dtype: str) -> float:
        """Dense peak in FLOP/s for a compute dtype (fp16 and bf16 stand for each other)."""
        key = compute_key(self.peak_tflops, dtype)
        if key is None:
            raise KeyError(dtype)
        return self.peak_tflops[key] * 1e12

    def has_dtype(self, dtype: str) -> bool:
        try:
            self.peak_flops(dtype)
            return True
        except KeyError:
            return False

    @property
    def blackwell_class(self) -> bool:
        """An NVIDIA part with fp4 tensor units: Blackwell and later (B200, B300, GB200, GB300, RTX 5090,
        RTX PRO 6000, DGX Spark in the catalog). The one test of the device facts that a benchmark
        harness keys on Blackwell (planner.measured: TensorRT-LLM's fp8 KV cache on fp4 launches,
        SGLang's scheduler poll interval), read by planner.replay_rows and planner.replay."""
        return self.vendor.strip().lower() == "nvidia" and self.has_dtype("fp4")

    @property
    def hourly_usd(self) -> float:
        """Cost of one device-hour: the rental price, else purchase over its lifetime."""
        if self.price_per_hour_usd is not None:
            return self.price_per_hour_usd
        return self.purchase_price_usd / (self.lifetime_years * HOURS_PER_YEAR)


class MLA(_Spec):
    """DeepSeek multi-head latent attention dimensions (config.json names)."""

    q_lora_rank: Optional[int] = Field(None, ge=1, le=MAX_DIM)
    kv_lora_rank: int = Field(ge=1, le=MAX_DIM)
    qk_nope_head_dim: int = Field(ge=1, le=MAX_DIM)
    qk_rope_head_dim: int = Field(ge=0, le=MAX_DIM)
    v_head_dim: int = Field(ge=1, le=MAX_DIM)
    index_topk: Optional[int] = Field(
        None, ge=1, le=MAX_TOKENS,
        description="DeepSeek sparse attention (DSA, DeepSeek-V3.2 / GLM-5): keys each query attends, picked by "
                    "the lightning indexer every layer runs (config.json index_topk); None: dense MLA")


class MoE(_Spec):
    """Mixture-of-experts MLP: routed experts, top-k, shared experts, dense lead layers."""

    num_experts: int = Field(ge=1, le=MAX_EXPERTS)
    experts_per_token: int = Field(ge=1, le=MAX_EXPERTS)
    expert_intermediate_size: int = Field(ge=1, le=MAX_DIM)
    num_shared_experts: int = Field(0, ge=0, le=MAX_EXPERTS)
    shared_expert_intermediate_size: int = Field(0, ge=0, le=MAX_DIM, description="per shared expert")
    first_dense_layers: int = Field(0, ge=0, le=MAX_LAYERS, description="leading layers with a dense MLP")
    expert_bias: bool = Field(False, description="biases in expert projections (gpt-oss)")
    router_bias: bool = False

    @model_validator(mode="after")
    def _k_le_e(self) -> "MoE":
        if self.experts_per_token > self.num_experts:
            raise ValueError("experts_per_token exceeds num_experts")
        return self


class LinearAttention(_Spec):
    """Linear-attention layers with a fixed-size recurrent state (Gated DeltaNet: Yang et al.
    2025, "Gated Delta Networks"; Qwen3-Next / Qwen3.5 ``linear_*`` config.json names).

    Per sequence and layer the state is ``num_value_heads x key_head_dim x value_head_dim``
    values (each value head keeps a key x value matrix; key heads are shared by groups of
    value heads), plus the short causal convolution's last ``conv_kernel - 1`` inputs of
    the q, k and v channels. Decode reads and writes that state once per step, whatever
    the context; prefill costs FLOPs linear in the tokens."""

    num_layers: int = Field(ge=1, le=MAX_LAYERS, description="layers with linear attention (the rest attend)")
    num_key_heads: int = Field(ge=1, le=MAX_HEADS)
    num_value_heads: int = Field(ge=1, le=MAX_HEADS)
    key_head_dim: int = Field(ge=1, le=MAX_DIM)
    value_head_dim: int = Field(ge=1, le=MAX_DIM)
    conv_kernel: int = Field(4, ge=1, le=MAX_DIM, description="depthwise causal convolution width")
    state_dtype: str = Field("fp32", description="storage dtype of the recurrent state")

    @field_validator("state_dtype")
    @classmethod
    def _dtype(cls, v: str) -> str:
        if v not in DTYPES:
            raise ValueError(f"unknown dtype '{v}' (choose from {', '.join(DTYPES)})")
        return v

    @model_validator(mode="after")
    def _heads(self) -> "LinearAttention":
        if self.num_value_heads % self.num_key_heads:
            raise ValueError(f"num_value_heads {self.num_value_heads} is not a multiple of num_key_heads "
                             f"{self.num_key_heads}")
        return self


class Model(_Spec):
    """A decoder-only transformer descriptor (architecture, not weights)."""

    name: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list, description="other names (Hugging Face ids) of this model")
    family: str = ""
    vendor: str = ""
    description: str = ""
    hidden_size: int = Field(ge=1, le=MAX_DIM)
    num_layers: int = Field(ge=1, le=MAX_LAYERS)
    num_heads: int = Field(ge=1, le=MAX_HEADS)
    num_kv_heads: int = Field(ge=1, le=MAX_HEADS)
    head_dim: int = Field(ge=1, le=MAX_DIM)
    intermediate_size: int = Field(0, ge=0, le=MAX_DIM, description="dense MLP width (0 if every layer is MoE)")
    vocab_size: int = Field(ge=1, le=MAX_VOCAB)
    tie_embeddings: bool = False
    mlp_gated: bool = Field(True, description="SwiGLU/GeGLU (3 matrices) vs plain (2)")
    qkv_bias: bool = False
    o_bias: bool = False
    qk_norm: bool = False
    attention_sinks: bool = False
    sliding_window: Optional[int] = Field(None, ge=1, le=MAX_TOKENS)
    num_sliding_layers: int = Field(0, ge=0, le=MAX_LAYERS, description="layers that attend within the window")
    mla: Optional[MLA] = None
    moe: Optional[MoE] = None
    linear_attention: Optional[LinearAttention] = None
    attention_output_gate: bool = Field(False, description="the query projection also emits a sigmoid gate per head "
                                                           "(Qwen3-Next / Qwen3.5 gated attention)")
    max_context: int = Field(32768, ge=1, le=MAX_TOKENS)
    quantized_experts_only: bool = Field(
        False, description="the model's int4/fp4 weight-only checkpoint quantizes the routed experts only: "
                           "attention, routers, shared experts and dense layers stay 16-bit (gpt-oss MXFP4, "
                           "Kimi-K2 INT4); by default a 4-bit checkpoint quantizes every linear layer (GPTQ/AWQ)")
    quantized_embeddings: bool = Field(
        False, description="int4/fp4 weight-only checkpoints quantize the embeddings and LM head too "
                           "(default: they stay 16-bit, as GPTQ/AWQ/MXFP4 checkpoints ship them)")
    published_total_params: float = Field(gt=0, le=MAX_PARAMS)
    published_active_params: Optional[float] = Field(None, gt=0, le=MAX_PARAMS)
    published_active_excludes_embedding: bool = Field(
        False, description="the vendor's active count leaves out the input-embedding lookup (gpt-oss, DeepSeek)")
    sources: dict[str, str]

    @model_validator(mode="after")
    def _consistent(self) -> "Model":
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads {self.num_heads} is not a multiple of num_kv_heads {self.num_kv_heads}")
        if self.num_sliding_layers > self.num_layers:
            raise ValueError("num_sliding_layers exceeds num_layers")
        if self.linear_attention is not None and self.linear_attention.num_layers + self.num_sliding_layers \
                > self.num_layers:
            raise ValueError("linear_attention.num_layers + num_sliding_layers exceeds num_layers")
        if self.num_sliding_layers and self.sliding_window is None:
            raise ValueError("num_sliding_layers > 0 needs sliding_window")
        if self.moe is None and self.intermediate_size == 0:
            raise ValueError("a dense model needs intermediate_size > 0")
        if self.moe is not None and self.moe.first_dense_layers and self.intermediate_size == 0:
            raise ValueError("first_dense_layers > 0 needs intermediate_size")
        return self

    @property
    def is_moe(self) -> bool:
        return self.moe is not None

    @property
    def attention_kind(self) -> str:
        if self.mla is not None:
            return "mla"
        if self.num_kv_heads == 1:
            return "mqa"
        if self.num_kv_heads == self.num_heads:
            return "mha"
        return "gqa"



class RecommendScenario(_Spec):
    """What `planner recommend` searches (flags or a --scenario YAML with these fields).

    Budgets are per request. Grid fields left unset take the search's defaults."""

    task: str = "aime24"
    hardware: list[str] = Field(default_factory=lambda: ["h100-sxm"])
    models: Optional[list[str]] = None
    objective: str = "max-accuracy"
    max_latency_s: Optional[float] = Field(None, gt=0)
    max_usd: Optional[float] = Field(None, gt=0)
    max_energy_j: Optional[float] = Field(None, gt=0)
    min_accuracy: Optional[float] = Field(None, ge=0, le=1)
    sparse: bool = True
    top: int = Field(10, ge=1, le=1000)
    strategies: Optional[list[str]] = None
    verifier: Optional[str] = Field(None, description="model for verify / reward stages (default: the policy)")
    devices: Optional[list[int]] = None
    layouts: Optional[list[Union[str, dict[str, int]]]] = Field(
        None, description="device layouts per device count: families (tp, tp*pp, ep, tp*dp*ep) or {tp, pp, dp, ep}")
    samples: Optional[list[int]] = None
    gen_lens: Optional[list[int]] = None
    quantizations: Optional[list[str]] = None
    kv_dtypes: Optional[list[str]] = None
    batches: Optional[list[int]] = None
    kv_budgets: Optional[list[int]] = None
    prompt_len: Optional[int] = Field(None, ge=1, le=MAX_TOKENS)
    calibration: Optional[dict[str, str]] = Field(None, description="hardware name -> calibration profile path")
    show_zero_accuracy: bool = Field(False, description="keep rows below 0.1% accuracy on the Pareto frontier")
    engine: Optional[str] = Field(None, description="serving engine (vllm, sglang, trtllm, generic): each device "
                                                    "takes the serving profile fitted for it with that engine")
    conservative: bool = Field(False, description="rank, filter and draw the frontier on the lower end of the "
                                                  "80% accuracy interval")

    _positive = field_validator("devices", "samples", "gen_lens", "batches")(positive_list)
    _unique = field_validator("hardware", "models", "devices", "samples", "gen_lens", "batches", "kv_budgets",
                              "quantizations", "kv_dtypes", "strategies")(unique_short_list)
    _quant = field_validator("quantizations")(known_quantizations)
    _kv = field_validator("kv_dtypes")(known_dtypes)
    _layouts = field_validator("layouts")(layout_entries)

    @field_validator("kv_budgets")
    @classmethod
    def _budgets(cls, v, info):
        if v is not None and any(x < 0 for x in v):
            raise ValueError("KV budgets must be >= 0 (0 = dense)")
        if v is not None:
            list_within_bound(v, info)
        return v
