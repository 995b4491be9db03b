"""Architecture-specific mapping of a Hugging Face ``config.json`` onto descriptor fields.

What a config file does not say about an architecture (the defaults of its transformers
config class, biases, q/k norms, attention sinks, sliding-window layout, router biases)
lives in :data:`ARCHITECTURES`. :class:`_Reader` reads keys from the top level or from
a nested ``text_config`` (Gemma 3) and writes the ``sources`` text for each. The field
groups that differ by architecture are filled here: sliding-window layers
(:func:`_sliding_layers`), linear-attention layers (:func:`_linear_attention`),
mixture-of-experts (:func:`_moe`) and multi-head latent attention (:func:`_mla`). :mod:`planner.hf_import` assembles the descriptor.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Optional

from planner.errors import InputError


@dataclass(frozen=True)
class _Arch:
    """What a config.json does not say about an architecture (from its modeling code)."""

    label: str
    vendor: str = ""
    # Defaults of the transformers config class for keys real files often leave out.
    defaults: dict = field(default_factory=dict)
    # Bias: "attention_bias" = read that key (q, k, v and o together); True/False = fixed.
    qkv_bias: Any = "attention_bias"
    o_bias: Any = "attention_bias"
    qk_norm: bool = False
    attention_sinks: bool = False
    # How sliding-window layers are laid out when the file has no ``layer_types`` list:
    # "none", "all" (every layer, Mistral), "alternate" (even layers, Gemma 2 / gpt-oss),
    # "pattern" (every P-th layer global, Gemma 3), "qwen" (layers >= max_window_layers).
    sliding: str = "none"
    expert_bias: bool = False
    router_bias: Any = False  # True/False, or "noaux_tc" = DeepSeek's score-correction bias
    nested_text_config: bool = False
    # Gated DeltaNet linear-attention layers (Qwen3-Next, Qwen3.5): read from layer_types or
    # full_attention_interval and the linear_* keys (:func:`_linear_attention`)
    linear_attention: bool = False
    # the query projection's per-head output gate: True (always), or a key to read
    output_gate: Any = False
    note: str = ""
    config_class: str = ""  # the transformers config class whose defaults fill absent keys


_LLAMA = _Arch("Llama", "Meta", config_class="LlamaConfig", defaults={"tie_word_embeddings": False, "attention_bias": False})
_QWEN2 = _Arch("Qwen2", "Alibaba Qwen", config_class="Qwen2Config", defaults={"tie_word_embeddings": False},
               qkv_bias=True, o_bias=False, sliding="qwen")
_QWEN3 = _Arch("Qwen3", "Alibaba Qwen", config_class="Qwen3Config", defaults={"tie_word_embeddings": False, "attention_bias": False},
               qk_norm=True, sliding="qwen")
_GEMMA2 = _Arch("Gemma 2", "Google", config_class="Gemma2Config",
                defaults={"tie_word_embeddings": True, "attention_bias": False, "head_dim": 256,
                          "max_position_embeddings": 8192, "sliding_window": 4096, "vocab_size": 256000},
                sliding="alternate",
                note="Gemma 2 has four RMSNorms per layer; the count includes two (negligible)")
_GEMMA3 = _Arch("Gemma 3", "Google", config_class="Gemma3TextConfig",
                defaults={"tie_word_embeddings": True, "attention_bias": False, "head_dim": 256,
                          "num_attention_heads": 8, "num_key_value_heads": 4, "vocab_size": 262208,
                          "max_position_embeddings": 131072, "sliding_window": 4096,
                          "sliding_window_pattern": 6},
                qk_norm=True, sliding="pattern", nested_text_config=True,
                note="language model only (a vision tower, if any, is not described)")
_MISTRAL = _Arch("Mistral", "Mistral AI", config_class="MistralConfig", defaults={"tie_word_embeddings": False},
                 qkv_bias=False, o_bias=False, sliding="all")
_GPTOSS = _Arch("gpt-oss", "OpenAI", config_class="GptOssConfig", defaults={"tie_word_embeddings": False, "attention_bias": True},
                attention_sinks=True, sliding="alternate", expert_bias=True, router_bias=True,
                note="architecture only: the released experts are MXFP4")
_DEEPSEEK = _Arch("DeepSeek", "DeepSeek", config_class="DeepseekV3Config",
                  defaults={"tie_word_embeddings": False, "first_k_dense_replace": 0, "moe_layer_freq": 1,
                            "n_shared_experts": 0},
                  qkv_bias=False, o_bias=False, router_bias="noaux_tc")
_GENERIC = _Arch("generic", "", config_class="PretrainedConfig", defaults={"tie_word_embeddings": False, "attention_bias": False})

_QWEN_HYBRID_DEFAULTS = {"tie_word_embeddings": False, "attention_bias": False, "decoder_sparse_step": 1,
                         "full_attention_interval": 4, "linear_conv_kernel_dim": 4}
_QWEN3_NEXT = _Arch("Qwen3-Next", "Alibaba Qwen", config_class="Qwen3NextConfig", defaults=_QWEN_HYBRID_DEFAULTS,
                    qk_norm=True, linear_attention=True, output_gate=True)
_QWEN3_5_MOE = _Arch("Qwen3.5-MoE", "Alibaba Qwen", config_class="Qwen3_5MoeTextConfig",
                     defaults={**_QWEN_HYBRID_DEFAULTS, "attn_output_gate": True}, qk_norm=True,
                     nested_text_config=True, linear_attention=True, output_gate="attn_output_gate",
                     note="text tower only (a vision encoder and MTP layers, if any, are not described)")

ARCHITECTURES: dict[str, _Arch] = {
    "Qwen3NextForCausalLM": _QWEN3_NEXT,
    "Qwen3_5MoeForConditionalGeneration": _QWEN3_5_MOE,
    "Qwen3_5MoeForCausalLM": _QWEN3_5_MOE,
    "LlamaForCausalLM": _LLAMA,
    "MistralForCausalLM": _MISTRAL,
    "MixtralForCausalLM": _Arch("Mixtral", "Mistral AI", config_class="MixtralConfig", defaults={"tie_word_embeddings": False},
                                qkv_bias=False, o_bias=False, sliding="all"),
    "Qwen2ForCausalLM": _QWEN2,
    "Qwen2MoeForCausalLM": _Arch("Qwen2-MoE", "Alibaba Qwen", config_class="Qwen2MoeConfig", defaults={"tie_word_embeddings": False},
                                 qkv_bias=True, o_bias=False, sliding="qwen"),
    "Qwen3ForCausalLM": _QWEN3,
    "Qwen3MoeForCausalLM": _Arch("Qwen3-MoE", "Alibaba Qwen", config_class="Qwen3MoeConfig",
                                 defaults={"tie_word_embeddings": False, "attention_bias": False,
                                           "decoder_sparse_step": 1},
                                 qk_norm=True, sliding="qwen"),
    "Gemma2ForCausalLM": _GEMMA2,
    "Gemma3ForCausalLM": _GEMMA3,
    "Gemma3ForConditionalGeneration": _GEMMA3,
    "GptOssForCausalLM": _GPTOSS,
    "DeepseekV3ForCausalLM": _DEEPSEEK,
    "DeepseekV2ForCausalLM": _Arch("DeepSeek-V2", "DeepSeek", config_class="DeepseekV2Config", defaults=_DEEPSEEK.defaults,
                                   qkv_bias=False, o_bias=False, router_bias="noaux_tc"),
}


class _Reader:
    """Reads keys from the (possibly nested) config and writes the matching sources."""

    def __init__(self, cfg: dict, file: str, arch: _Arch, arch_name: str):
        self.top = cfg
        self.file = file
        self.arch = arch
        self.arch_name = arch_name
        nested = cfg.get("text_config")
        self.sub: Optional[dict] = None
        self.prefix = ""
        if isinstance(nested, dict) and (arch.nested_text_config or "hidden_size" not in cfg):
            self.sub = nested
            self.prefix = "text_config."
        self.sources: dict[str, str] = {}

    def short(self, note: str) -> str:
        """A source text without its leading file name (for a list under one file)."""
        for sep in (" ", ": "):
            if note.startswith(self.file + sep):
                return note[len(self.file) + len(sep):]
        return note.replace(f"{self.file} ", "").replace(f"{self.file}: ", "")

    def has(self, key: str) -> bool:
        return self.raw(key)[0] is not None

    def raw(self, key: str) -> tuple[Any, Optional[str]]:
        """(value, where) for a key present and not null; (None, None) otherwise."""
        if self.sub is not None and self.sub.get(key) is not None:
            return self.sub[key], self.prefix + key
        if self.top.get(key) is not None:
            return self.top[key], key
        return None, None

    def get(self, key: str, *, required: bool = False, kind: str = "int", default: Any = None,
            default_note: str = "") -> tuple[Any, str]:
        """A value and its source text; the architecture's default when the key is absent."""
        value, where = self.raw(key)
        if value is None:
            if key in self.arch.defaults:
                value = self.arch.defaults[key]
                return self._check(key, value, kind), (
                    f"{self.file}: {self.prefix}{key} absent; transformers {self.arch.config_class} "
                    f"default {json.dumps(value)}")
            if default is not None:
                return default, f"{self.file}: {self.prefix}{key} absent; {default_note or f'default {default!r}'}"
            if required:
                if self.arch is _GENERIC:
                    raise InputError(f"required key is missing (architecture '{self.arch_name}' is not one "
                                     "the importer knows, so nothing can stand in for it)",
                                     file=self.file, field=self.prefix + key)
                raise InputError("required key is missing", file=self.file, field=self.prefix + key)
            return None, ""
        return self._check(where, value, kind), f"{self.file} {where}"

    def _check(self, where: str, value: Any, kind: str) -> Any:
        if kind == "int":
            if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                    or value != int(value) or value < 0):
                raise InputError("expected a non-negative integer", file=self.file, field=where, value=value)
            return int(value)
        if kind == "bool":
            if not isinstance(value, bool):
                raise InputError("expected true or false", file=self.file, field=where, value=value)
            return value
        return value


def _pick_architecture(cfg: dict, file: str) -> tuple[str, _Arch]:
    archs = cfg.get("architectures")
    if isinstance(archs, str):
        archs = [archs]
    if archs is not None and not (isinstance(archs, list) and all(isinstance(a, str) for a in archs)):
        raise InputError("expected a list of class names", file=file, field="architectures", value=archs)
    for a in archs or []:
        if a in ARCHITECTURES:
            return a, ARCHITECTURES[a]
    name = (archs or [None])[0] or str(cfg.get("model_type") or "unknown")
    return name, _GENERIC


def _linear_attention(r: _Reader, L: int, out: dict, src: dict) -> None:
    """Fill the ``linear_attention`` block (Gated DeltaNet layers) and the attention output
    gate of a hybrid architecture: the layers from ``layer_types`` (entries
    'linear_attention') or, without it, every ``full_attention_interval``-th layer attends."""
    arch = r.arch
    if arch.output_gate is True:
        out["attention_output_gate"] = True
        src["attention_output_gate"] = f"{arch.label} attention: q_proj emits query and gate (modeling code)"
    elif arch.output_gate:
        gate, s = r.get(arch.output_gate, kind="bool")
        if gate:
            out["attention_output_gate"], src["attention_output_gate"] = True, s
    if not arch.linear_attention:
        return
    layer_types, where = r.raw("layer_types")
    if layer_types is not None:
        if not isinstance(layer_types, list) or not all(isinstance(t, str) for t in layer_types):
            raise InputError("expected a list of layer type names", file=r.file, field=where, value=layer_types)
        n = sum(1 for t in layer_types if t == "linear_attention")
        how = f"{where} (entries 'linear_attention')"
    else:
        interval, s = r.get("full_attention_interval", required=True)
        if interval < 1:
            raise InputError("must be at least 1", file=r.file, field=r.prefix + "full_attention_interval",
                             value=interval)
        n, how = L - L // interval, f"{r.short(s)}: every {interval}th layer attends, the rest are linear"
    if not n:
        return
    block: dict[str, Any] = {"num_layers": n}
    notes = [how]
    for fld, key in (("num_key_heads", "linear_num_key_heads"), ("num_value_heads", "linear_num_value_heads"),
                     ("key_head_dim", "linear_key_head_dim"), ("value_head_dim", "linear_value_head_dim"),
                     ("conv_kernel", "linear_conv_kernel_dim")):
        block[fld], s = r.get(key, required=True)
        notes.append(f"{r.short(s)} ({fld})")
    block["state_dtype"] = "fp32"
    notes.append("state_dtype: assumption, fp32 (the gated-delta-rule kernels keep the state in fp32)")
    out["linear_attention"] = block
    src["linear_attention"] = f"{r.file}: " + "; ".join(notes)


def _sliding_layers(r: _Reader, L: int, out: dict, src: dict) -> None:
    """Fill sliding_window / num_sliding_layers from layer_types or the architecture's layout."""
    layer_types, where = r.raw("layer_types")
    count: Optional[int] = None
    how = ""
    if layer_types is not None:
        if not isinstance(layer_types, list) or not all(isinstance(t, str) for t in layer_types):
            raise InputError("expected a list of layer type names", file=r.file, field=where, value=layer_types)
        if len(layer_types) != L:
            raise InputError(f"has {len(layer_types)} entries for {L} layers", file=r.file, field=where,
                             value=len(layer_types))
        count = sum(1 for t in layer_types if "sliding" in t)
        how = f"{r.file} {where} (entries 'sliding_attention')"
    elif r.arch.sliding == "all":
        if r.has("sliding_window") and r.top.get("use_sliding_window", True) is not False:
            count, how = L, f"{r.file} sliding_window set: every layer uses the window ({r.arch.label})"
    elif r.arch.sliding == "alternate":
        count, how = (L + 1) // 2, f"{r.arch.label}: even-numbered layers use the sliding window (modeling code)"
    elif r.arch.sliding == "pattern":
        pattern, psrc = None, ""
        for key in ("sliding_window_pattern", "_sliding_window_pattern"):
            if r.has(key):
                pattern, psrc = r.get(key)
                break
        if pattern is None:
            pattern, psrc = r.get("sliding_window_pattern")
        if pattern < 1:
            raise InputError("must be at least 1", file=r.file, field="sliding_window_pattern", value=pattern)
        count = L - L // pattern
        how = f"{psrc}: every {pattern}th layer is global, the rest slide"
    elif r.arch.sliding == "qwen":
        use, _ = r.raw("use_sliding_window")
        if use is True and r.has("sliding_window"):
            mwl, mwl_src = r.get("max_window_layers", default=0)
            count = max(0, L - mwl)
            how = f"{r.file} use_sliding_window true; layers from max_window_layers ({mwl_src}) slide"
    if not count:
        return
    window, wsrc = r.get("sliding_window", required=True)
    if window < 1:
        raise InputError("must be at least 1", file=r.file, field=r.prefix + "sliding_window", value=window)
    out["sliding_window"], src["sliding_window"] = window, wsrc
    out["num_sliding_layers"], src["num_sliding_layers"] = count, how


def _moe(r: _Reader, L: int, out: dict, src: dict) -> Optional[int]:
    """Fill the ``moe`` block; return the number of dense-MLP layers (None for a dense model)."""
    e_key = next((k for k in ("n_routed_experts", "num_local_experts", "num_experts") if r.has(k)), None)
    if e_key is None:
        return None
    E, e_src = r.get(e_key)
    if E < 1 or (E == 1 and not r.has("num_experts_per_tok")):
        return None  # a dense model that carries an expert-count key
    moe: dict[str, Any] = {"num_experts": E}
    notes = [f"{e_src} (num_experts)"]
    k_key = "num_experts_per_tok" if r.has("num_experts_per_tok") or not r.has("experts_per_token") \
        else "experts_per_token"
    moe["experts_per_token"], s = r.get(k_key, required=True)
    notes.append(f"{s} (experts_per_token)")
    if r.has("moe_intermediate_size"):
        moe["expert_intermediate_size"], s = r.get("moe_intermediate_size")
        dense_width_key = "intermediate_size"
    else:  # Mixtral / gpt-oss: intermediate_size is each expert's width
        moe["expert_intermediate_size"], s = r.get("intermediate_size", required=True)
        dense_width_key = None
    notes.append(f"{s} (expert_intermediate_size)")
    if r.has("n_shared_experts") or "n_shared_experts" in r.arch.defaults:
        n_shared, s = r.get("n_shared_experts")
        if n_shared:
            moe["num_shared_experts"] = n_shared
            moe["shared_expert_intermediate_size"] = moe["expert_intermediate_size"]
            notes.append(f"{s} (num_shared_experts, each moe_intermediate_size wide)")
    elif r.has("shared_expert_intermediate_size"):
        width, s = r.get("shared_expert_intermediate_size")
        if width:
            moe["num_shared_experts"] = 1
            moe["shared_expert_intermediate_size"] = width
            notes.append(f"{s} (one shared expert)")
    # Which layers are MoE.
    moe_layers = set(range(L))
    if r.has("first_k_dense_replace") or "first_k_dense_replace" in r.arch.defaults:
        first_k, s1 = r.get("first_k_dense_replace")
        freq, s2 = r.get("moe_layer_freq", default=1)
        freq = max(freq, 1)
        moe_layers = {i for i in range(L) if i >= first_k and i % freq == 0}
        notes.append(f"{s1} and {r.short(s2)} (first_dense_layers)")
    if r.has("mlp_only_layers") or r.has("decoder_sparse_step"):
        only, where = r.raw("mlp_only_layers")
        only = only or []
        if not isinstance(only, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in only):
            raise InputError("expected a list of layer indices", file=r.file, field=where, value=only)
        step, s = r.get("decoder_sparse_step", default=1)
        step = max(step, 1)
        moe_layers = {i for i in range(L) if i not in set(only) and (i + 1) % step == 0}
        if len(moe_layers) < L:
            notes.append(f"mlp_only_layers {only} and {r.short(s)} (first_dense_layers)")
    dense = L - len(moe_layers)
    if dense:
        moe["first_dense_layers"] = dense
        if dense_width_key is None:
            raise InputError("dense layers need a dense width (moe_intermediate_size absent)",
                             file=r.file, field="intermediate_size")
        if sorted(moe_layers) != list(range(dense, L)):
            notes.append("dense layers are not all leading; counted as leading (same totals)")
    if r.arch.expert_bias:
        moe["expert_bias"] = True
        notes.append(f"{r.arch.label} experts carry biases (expert_bias, modeling code)")
    rb = r.arch.router_bias
    if rb == "noaux_tc":
        method, where = r.raw("topk_method")
        if method == "noaux_tc":
            moe["router_bias"] = True
            notes.append(f"{where} noaux_tc (router_bias: e_score_correction_bias)")
    elif rb:
        moe["router_bias"] = True
        notes.append(f"{r.arch.label} router has a bias (router_bias, modeling code)")
    out["moe"] = moe
    src["moe"] = f"{r.file}: " + "; ".join(r.short(n) for n in notes)
    return dense


def _mla(r: _Reader, out: dict, src: dict) -> bool:
    if not r.has("kv_lora_rank"):
        return False
    mla: dict[str, Any] = {}
    notes = []
    q_rank, _ = r.raw("q_lora_rank")
    if q_rank is not None:
        mla["q_lora_rank"], s = r.get("q_lora_rank")
        notes.append(s)
    for key in ("kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"):
        mla[key], s = r.get(key, required=True)
        notes.append(s)
    if r.has("index_topk"):  # DeepSeek sparse attention (DeepSeek-V3.2, GLM-5): the lightning indexer's top-k
        mla["index_topk"], s = r.get("index_topk")
        notes.append(s)
    out["mla"] = mla
    src["mla"] = f"{r.file} " + ", ".join(r.short(n) for n in notes)
    return True
