"""Turn a Hugging Face ``config.json`` into a model descriptor (the catalog's YAML form).

Supported architectures: Llama, Mistral, Mixtral, Qwen2, Qwen2-MoE, Qwen3, Qwen3-MoE,
Qwen3-Next and Qwen3.5-MoE (Gated DeltaNet linear attention; nested ``text_config``),
Gemma 2, Gemma 3 (text-only or nested ``text_config``), gpt-oss and DeepSeek V2/V3.
Another architecture is imported from the same keys when it has them (a Llama-shaped
decoder); when it lacks a needed key the import fails with an :class:`InputError`.

Every field the import sets gets a ``sources`` entry ``"<file> <key>"`` naming the file
and the key it came from, or saying which default of the ``transformers`` config class
filled it in when the file leaves the key out. When no published parameter count is
given, ``published_total_params`` is the counted total and its source says so.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Optional

from planner.errors import InputError
from planner.hf_arch import _GENERIC, _linear_attention, _mla, _moe, _pick_architecture, _Reader, _sliding_layers

__all__ = ["import_config", "import_config_file", "to_yaml"]

# Output key order: the schema's field order (as the catalog files are written).
_ORDER = ("name", "family", "vendor", "description", "hidden_size", "num_layers", "num_heads",
          "num_kv_heads", "head_dim", "intermediate_size", "vocab_size", "tie_embeddings", "mlp_gated",
          "qkv_bias", "o_bias", "qk_norm", "attention_sinks", "attention_output_gate", "sliding_window",
          "num_sliding_layers", "mla", "linear_attention", "moe", "max_context", "published_total_params", "published_active_params", "sources")


def _default_name(cfg: dict, file: str) -> str:
    raw = cfg.get("_name_or_path")
    if isinstance(raw, str) and raw.strip():
        stem = raw.rstrip("/").split("/")[-1]
    else:
        p = Path(file)
        stem = p.parent.name if p.stem == "config" and p.parent.name else p.stem
    stem = re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-")
    return stem or "imported-model"


def import_config(cfg: dict, *, name: Optional[str] = None, published_total_params: Optional[float] = None,
                  file: str = "config.json") -> dict:
    """Map a parsed Hugging Face config to a descriptor dict that validates as
    :class:`planner.specs.Model`. Raises :class:`InputError` on a non-object, a missing
    required key, a wrong-typed value or an inconsistent architecture."""
    from planner.catalog import parse_spec
    from planner.params import count
    from planner.specs import Model

    if not isinstance(cfg, dict):
        raise InputError(f"expected a JSON object at the top level, got {type(cfg).__name__}", file=file)
    arch_name, arch = _pick_architecture(cfg, file)
    r = _Reader(cfg, file, arch, arch_name)
    out: dict[str, Any] = {}
    src: dict[str, str] = {}

    def put(field_name: str, key: str, **kw) -> Any:
        value, s = r.get(key, **kw)
        if value is not None:
            out[field_name], src[field_name] = value, s
        return value

    model_type = cfg.get("model_type") or r.raw("model_type")[0]
    out["name"] = name or _default_name(cfg, file)
    out["family"] = str(model_type) if isinstance(model_type, str) else ""
    out["vendor"] = arch.vendor
    desc = f"imported from {file} ({arch_name})"
    if arch is _GENERIC:
        desc += "; unknown architecture, read as a Llama-shaped decoder"
    if arch.note:
        desc += f"; {arch.note}"
    out["description"] = desc

    h = put("hidden_size", "hidden_size", required=True)
    L = put("num_layers", "num_hidden_layers", required=True)
    H = put("num_heads", "num_attention_heads", required=True)
    if h < 1 or L < 1 or H < 1:
        bad = "hidden_size" if h < 1 else "num_hidden_layers" if L < 1 else "num_attention_heads"
        raise InputError("must be at least 1", file=file, field=r.prefix + bad, value=r.raw(bad)[0])
    from planner.bounds import MAX_DIM, MAX_HEADS, MAX_LAYERS

    for key, value, hi in (("hidden_size", h, MAX_DIM), ("num_hidden_layers", L, MAX_LAYERS),
                           ("num_attention_heads", H, MAX_HEADS)):
        if value > hi:  # before any per-layer work (a 1e308 layer count would never finish)
            raise InputError(f"must be <= {hi:,}", file=file, field=r.prefix + key, value=value)
    put("num_kv_heads", "num_key_value_heads", default=H,
        default_note="defaults to num_attention_heads (multi-head attention)")
    if r.has("head_dim") or "head_dim" in arch.defaults:
        put("head_dim", "head_dim")
    else:
        if h % H:
            raise InputError(f"hidden_size {h} is not a multiple of num_attention_heads {H} and head_dim is absent",
                             file=file, field=r.prefix + "head_dim")
        out["head_dim"] = h // H
        src["head_dim"] = f"{file}: head_dim absent; hidden_size / num_attention_heads"
    put("vocab_size", "vocab_size", required=True)
    put("tie_embeddings", "tie_word_embeddings", kind="bool", default=False,
        default_note="transformers default false")

    has_mla = _mla(r, out, src)
    if has_mla:  # MLA: record the query/key head width (nope + rope)
        a = out["mla"]
        out["head_dim"] = a["qk_nope_head_dim"] + a["qk_rope_head_dim"]
        src["head_dim"] = f"{file}: qk_nope_head_dim + qk_rope_head_dim (MLA query/key head width)"
    dense_layers = _moe(r, L, out, src)
    if dense_layers is None or dense_layers > 0:
        put("intermediate_size", "intermediate_size", required=True)
    if out.get("intermediate_size") == 0:
        out.pop("intermediate_size")
        src.pop("intermediate_size")

    for fld, spec in (("qkv_bias", arch.qkv_bias), ("o_bias", arch.o_bias)):
        if spec == "attention_bias":
            value, s = r.get("attention_bias", kind="bool", default=False, default_note="no biases")
            if value:
                out[fld], src[fld] = True, s
        elif spec:
            out[fld], src[fld] = True, f"{arch.label} attention: q/k/v projections always carry biases"
    if r.has("mlp_bias") and r.get("mlp_bias", kind="bool")[0]:
        raise InputError("MLP biases are not supported by the descriptor", file=file,
                         field=r.prefix + "mlp_bias", value=True)
    if arch.qk_norm:
        out["qk_norm"], src["qk_norm"] = True, f"{arch.label} attention: RMSNorm on q and k (modeling code)"
    if arch.attention_sinks:
        out["attention_sinks"] = True
        src["attention_sinks"] = f"{arch.label} attention: one learned sink logit per head (modeling code)"
    _sliding_layers(r, L, out, src)
    _linear_attention(r, L, out, src)
    put("max_context", "max_position_embeddings")

    data = {k: out[k] for k in _ORDER if k in out}
    data["published_total_params"] = 1.0  # placeholder so the counts can be taken
    data["sources"] = src
    counts = count(parse_spec(Model, data, file))
    if published_total_params is not None:
        if not (isinstance(published_total_params, (int, float)) and published_total_params > 0):
            raise InputError("must be a positive number", file=file, field="published_total_params",
                             value=published_total_params)
        data["published_total_params"] = float(published_total_params)
        src["published_total_params"] = "given on import (--published-params)"
    else:
        data["published_total_params"] = float(counts.total_params)
        src["published_total_params"] = ("counted by planner.params from the config, not a published "
                                         "figure: replace with the vendor's count")
    if "moe" in data:
        data["published_active_params"] = float(counts.active_params)
        src["published_active_params"] = ("counted by planner.params (top-k routed experts), not a "
                                          "published figure")
    else:  # a dense model: every parameter is active (the catalog test needs both figures)
        data["published_active_params"] = data["published_total_params"]
        src["published_active_params"] = "a dense model: every parameter is active (= published_total_params)"
    data["sources"] = {k: src[k] for k in _ORDER if k in src}
    parse_spec(Model, data, file)  # the result must validate
    return data


def import_config_file(path, name: Optional[str] = None, published_total_params: Optional[float] = None) -> dict:
    """Read a config.json from disk and import it (see :func:`import_config`)."""
    from planner.safeload import read_json

    p = Path(path)
    cfg = read_json(p)
    return import_config(cfg, name=name, published_total_params=published_total_params, file=str(p))


# --------------------------------------------------------------------------- YAML output

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9 _.,/()+-]*")
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "none", "~"}


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _YAML_WORDS and not text.endswith(" "):
        return text
    return json.dumps(text)  # a JSON string is a valid YAML double-quoted scalar


def _float(x: float) -> str:
    if not math.isfinite(x):
        return ".nan" if math.isnan(x) else (".inf" if x > 0 else "-.inf")
    if x.is_integer() and abs(x) >= 1e6:
        # Short engineering form when exact: 8.19e+9, 0.6e+9, 671.0e+9 (PyYAML needs the
        # dot and the sign to read it as a float); otherwise the integer.
        exp = 9 if abs(x) >= 1e8 else 6
        for digits in range(1, 7):
            text = f"{x / 10 ** exp:.{digits}f}".rstrip("0")
            text = text + "0" if text.endswith(".") else text
            if float(f"{text}e+{exp}") == x:
                return f"{text}e+{exp}"
        return str(int(x))
    return repr(x)


def to_yaml(data: dict) -> str:
    """A readable YAML descriptor: schema key order, nested blocks indented, sources last."""
    lines: list[str] = []
    keys = [k for k in _ORDER if k in data] + [k for k in data if k not in _ORDER]
    keys = [k for k in keys if k != "sources"] + (["sources"] if "sources" in data else [])
    for key in keys:
        value = data[key]
        if isinstance(value, dict):
            lines.append(f"{key}:")
            for sub, v in value.items():
                rendered = json.dumps(str(v)) if key == "sources" else _scalar(v)
                lines.append(f"  {sub}: {rendered}")
        else:
            lines.append(f"{key}: {_scalar(value)}")
    return "\n".join(lines) + "\n"
