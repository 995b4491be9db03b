"""Importing Hugging Face config.json files: field mapping, counts, YAML round trip, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from planner.catalog import load_model
from planner.cli import main
from planner.errors import InputError
from planner.hf_import import import_config, import_config_file, to_yaml
from planner.params import count
from planner.specs import Model

DATA = Path(__file__).parent / "data" / "hf_configs"
GOOD = ["tiny-llama", "tiny-mixtral", "tiny-deepseek", "tiny-gemma3", "tiny-gemma2", "tiny-gptoss",
        "qwen3-8b", "unknown-arch-llama-shaped"]
DESCRIPTIVE = {"name", "family", "vendor", "description", "sources"}


def _import(stem: str, **kw) -> dict:
    return import_config_file(DATA / f"{stem}.json", **kw)


def _model(data: dict) -> Model:
    return Model.model_validate(data)


@pytest.mark.parametrize("stem", GOOD)
def test_every_set_field_has_a_source_naming_the_file(stem):
    data = _import(stem)
    m = _model(data)
    assert m.unsourced_fields() == []
    for key in data:
        if key not in DESCRIPTIVE:
            assert key in data["sources"], key
    # sources name the file they were read from
    assert str(DATA / f"{stem}.json") in data["sources"]["hidden_size"]
    assert data["sources"]["hidden_size"].endswith("hidden_size")


def test_tiny_llama_fields_and_exact_counts():
    data = _import("tiny-llama")
    m = _model(data)
    assert (m.hidden_size, m.num_layers, m.num_heads, m.num_kv_heads) == (64, 2, 4, 2)
    assert m.head_dim == 16  # no head_dim key: hidden / heads
    assert "hidden_size / num_attention_heads" in data["sources"]["head_dim"]
    assert m.intermediate_size == 128 and m.vocab_size == 1000 and m.max_context == 512
    assert not m.tie_embeddings and not m.qkv_bias and not m.o_bias and m.moe is None
    assert m.name == "tiny-llama"  # from the file name
    attn = 64 * 64 + 2 * 64 * 32 + 64 * 64
    mlp = 3 * 64 * 128
    expected = 2 * 1000 * 64 + 2 * (attn + mlp + 2 * 64) + 64
    c = count(m)
    assert c.total_params == expected == c.active_params
    # no published figure given: the counted one, and the source says so
    assert m.published_total_params == expected
    assert "counted" in data["sources"]["published_total_params"]
    assert "not a published" in data["sources"]["published_total_params"]


def test_kv_heads_default_to_heads_and_unknown_llama_shaped_arch_imports():
    data = _import("unknown-arch-llama-shaped")
    m = _model(data)
    assert m.num_kv_heads == m.num_heads == 4
    assert "absent" in data["sources"]["num_kv_heads"]
    assert "unknown architecture" in m.description


def test_published_params_given_are_used():
    data = _import("tiny-llama", name="my-llama", published_total_params=2.0e5)
    assert data["name"] == "my-llama"
    assert data["published_total_params"] == 2.0e5
    assert "given" in data["sources"]["published_total_params"]


def test_tiny_mixtral_moe():
    data = _import("tiny-mixtral")
    m = _model(data)
    assert m.moe is not None and m.intermediate_size == 0  # every layer is MoE
    assert (m.moe.num_experts, m.moe.experts_per_token, m.moe.expert_intermediate_size) == (4, 2, 96)
    assert m.sliding_window is None and m.num_sliding_layers == 0  # "sliding_window": null
    attn = 2 * 64 * 64 + 2 * 64 * 32  # q, o: 64x64; k, v: 64x32
    expert = 3 * 64 * 96
    fixed = 3 * (attn + 2 * 64 + 64 * 4)
    c = count(m)
    assert c.total_params == 2 * 500 * 64 + fixed + 3 * 4 * expert + 64
    assert c.active_params == 2 * 500 * 64 + fixed + 3 * 2 * expert + 64
    assert c.active_params < c.total_params
    assert data["published_active_params"] == c.active_params
    assert "counted" in data["sources"]["published_active_params"]


def test_tiny_deepseek_mla_and_shared_experts():
    data = _import("tiny-deepseek")
    m = _model(data)
    assert m.mla is not None and m.attention_kind == "mla"
    assert (m.mla.q_lora_rank, m.mla.kv_lora_rank, m.mla.qk_nope_head_dim, m.mla.qk_rope_head_dim,
            m.mla.v_head_dim) == (32, 16, 16, 8, 16)
    e = m.moe
    assert (e.num_experts, e.experts_per_token, e.expert_intermediate_size) == (8, 2, 32)
    assert (e.num_shared_experts, e.shared_expert_intermediate_size, e.first_dense_layers) == (1, 32, 1)
    assert e.router_bias and not e.expert_bias
    assert m.intermediate_size == 128
    c = count(m)
    assert c.kv_elems_per_token_layer == 16 + 8
    attn = (64 * 32 + 32 + 32 * 4 * 24) + (64 * 24 + 16 + 16 * 4 * 32) + 4 * 16 * 64
    fixed = 3 * (attn + 2 * 64) + 3 * 64 * 128 + 2 * (64 * 8 + 8 + 3 * 64 * 32)
    assert c.total_params == 2 * 300 * 64 + fixed + 2 * 8 * 3 * 64 * 32 + 64
    assert c.active_params == 2 * 300 * 64 + fixed + 2 * 2 * 3 * 64 * 32 + 64


def test_gemma3_nested_text_config_and_sliding_pattern():
    data = _import("tiny-gemma3")
    m = _model(data)
    assert (m.hidden_size, m.num_layers, m.head_dim, m.vocab_size) == (64, 12, 32, 256)
    assert "text_config.hidden_size" in data["sources"]["hidden_size"]
    assert m.tie_embeddings and m.qk_norm
    assert m.sliding_window == 16
    assert m.num_sliding_layers == 10  # pattern 6 (default): layers 6 and 12 are global
    assert "Gemma3TextConfig default" in data["sources"]["num_sliding_layers"]
    assert m.max_context == 131072 and "absent" in data["sources"]["max_context"]
    assert data["family"] == "gemma3"


def test_gemma2_alternating_sliding_layers():
    m = _model(_import("tiny-gemma2"))
    assert m.sliding_window == 32 and m.num_sliding_layers == 3  # layers 0, 2, 4
    assert m.tie_embeddings  # Gemma2Config default


def test_gptoss_layer_types_biases_and_sinks():
    data = _import("tiny-gptoss")
    m = _model(data)
    assert m.qkv_bias and m.o_bias and m.attention_sinks
    assert m.sliding_window == 8 and m.num_sliding_layers == 2
    assert "layer_types" in data["sources"]["num_sliding_layers"]
    assert m.moe.expert_bias and m.moe.router_bias
    assert (m.moe.num_experts, m.moe.experts_per_token, m.moe.expert_intermediate_size) == (4, 2, 64)


def test_real_qwen3_8b_config_reproduces_the_catalog_counts():
    imported = _model(_import("qwen3-8b"))
    catalog = load_model("qwen3-8b")
    arch_fields = ("hidden_size", "num_layers", "num_heads", "num_kv_heads", "head_dim", "intermediate_size",
                   "vocab_size", "tie_embeddings", "mlp_gated", "qkv_bias", "o_bias", "qk_norm",
                   "attention_sinks", "sliding_window", "num_sliding_layers", "mla", "moe")
    for f in arch_fields:
        assert getattr(imported, f) == getattr(catalog, f), f
    a, b = count(imported), count(catalog)
    assert a == b
    assert a.total_params == 8_190_735_360


def test_an_imported_dense_model_carries_both_published_figures():
    """README "Adding a model": the catalog test needs published total and active
    figures, equal for a dense model; an import of a dense config gives both (the
    active one sourced), with or without --published-params."""
    for given in (None, 8.2e9):
        data = import_config_file(DATA / "qwen3-8b.json", name="my-qwen", published_total_params=given)
        assert data["published_active_params"] == data["published_total_params"]
        assert data["published_total_params"] == (given or count(_model(data)).total_params)
        assert "dense" in data["sources"]["published_active_params"]
        assert _model(data).unsourced_fields() == []


@pytest.mark.parametrize("stem", GOOD)
def test_round_trip_yaml(stem, tmp_path):
    data = _import(stem)
    text = to_yaml(data)
    assert text.rstrip().splitlines()[-1].startswith("  ")  # sources come last
    assert list(yaml.safe_load(text))[-1] == "sources"
    path = tmp_path / f"{stem}.yaml"
    path.write_text(text, encoding="utf-8")
    loaded = load_model(str(path))
    assert loaded == _model(data)
    assert count(loaded) == count(_model(data))
    assert loaded.unsourced_fields() == []


@pytest.mark.parametrize("value", [8.19e9, 0.6e9, 671e9, 3.61e9, 116.83e9, 9241705984.0, 123456789.0,
                                   1.5, 30532122624.0, 2.091e10])
def test_yaml_numbers_read_back_as_the_same_float(value):
    text = to_yaml({"published_total_params": value})
    loaded = yaml.safe_load(text)["published_total_params"]
    assert isinstance(loaded, (int, float)) and not isinstance(loaded, bool)
    assert float(loaded) == value


def test_errors_are_input_errors():
    with pytest.raises(InputError, match="malformed JSON"):
        _import("malformed")
    with pytest.raises(InputError, match="hidden_size") as exc:
        _import("missing-hidden-size")
    assert exc.value.field == "hidden_size"
    with pytest.raises(InputError, match="JSON object"):
        _import("not-an-object")
    with pytest.raises(InputError, match="GPT2LMHeadModel"):
        _import("unknown-arch-incomplete")
    with pytest.raises(InputError, match="file not found"):
        import_config_file(DATA / "no-such-file.json")
    with pytest.raises(InputError):
        import_config([1, 2], name=None, published_total_params=None, file="x.json")
    cfg = json.loads((DATA / "tiny-llama.json").read_text())
    with pytest.raises(InputError, match="integer") as exc:
        import_config(dict(cfg, num_hidden_layers="two"), name=None, published_total_params=None, file="x.json")
    assert exc.value.field == "num_hidden_layers"
    with pytest.raises(InputError, match="num_heads"):  # 4 heads, 3 KV heads
        import_config(dict(cfg, num_key_value_heads=3), name=None, published_total_params=None, file="x.json")


def test_cli_import_writes_a_loadable_file(tmp_path, capsys):
    out = tmp_path / "imported.yaml"
    rc = main(["models", "import", str(DATA / "tiny-mixtral.json"), "-o", str(out), "--name", "tiny-moe",
               "--published-params", "3.2e5"])
    assert rc == 0
    m = load_model(str(out))
    assert m.name == "tiny-moe" and m.published_total_params == 3.2e5 and m.is_moe
    capsys.readouterr()
    rc = main(["models", "import", str(DATA / "qwen3-8b.json")])
    assert rc == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["hidden_size"] == 4096 and printed["name"] == "qwen3-8b"


@pytest.mark.parametrize("stem, words", [("malformed", ["malformed JSON", "malformed.json"]),
                                         ("missing-hidden-size", ["hidden_size", "missing"]),
                                         ("not-an-object", ["JSON object"])])
def test_cli_bad_input_exits_2_with_one_line(stem, words, tmp_path, capsys):
    out = tmp_path / "never.yaml"
    rc = main(["models", "import", str(DATA / f"{stem}.json"), "-o", str(out)])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    for w in words:
        assert w in err
    assert not out.exists()


# Qwen/Qwen3.5-397B-A17B config.json (text_config values, as models/qwen3.5-397b-a17b.yaml cites them)
QWEN35_CONFIG = {
    "architectures": ["Qwen3_5MoeForConditionalGeneration"], "model_type": "qwen3_5_moe", "tie_word_embeddings": False,
    "text_config": {
        "hidden_size": 4096, "num_hidden_layers": 60, "num_attention_heads": 32, "num_key_value_heads": 2,
        "head_dim": 256, "moe_intermediate_size": 1024, "shared_expert_intermediate_size": 1024, "num_experts": 512,
        "num_experts_per_tok": 10, "linear_num_key_heads": 16, "linear_num_value_heads": 64,
        "linear_key_head_dim": 128, "linear_value_head_dim": 128, "linear_conv_kernel_dim": 4,
        "full_attention_interval": 4, "vocab_size": 248320, "max_position_embeddings": 262144,
        "attn_output_gate": True,
        "layer_types": ["full_attention" if (i + 1) % 4 == 0 else "linear_attention" for i in range(60)]}}


def test_qwen35_hybrid_config_imports_as_the_catalog_descriptor():
    """A Qwen3.5 config (nested text_config, layer_types with 'linear_attention' entries,
    Gated DeltaNet widths, gated attention) imports to the catalog's descriptor: the same
    layer kinds and the same counted parameters (396.3B / 17.35B, against 397B / 17B)."""
    d = import_config(QWEN35_CONFIG, name="q35", file="config.json")
    m = Model(**d)
    assert m.linear_attention.num_layers == 45 and m.attention_output_gate and m.qk_norm
    assert "text_config.layer_types" in d["sources"]["linear_attention"]
    ref, got = count(load_model("qwen3.5-397b-a17b")), count(m)
    assert got.total_params == ref.total_params and got.active_params == ref.active_params
    assert got.num_global_layers == 15
    # without layer_types the interval says which layers attend
    cfg = json.loads(json.dumps(QWEN35_CONFIG))
    del cfg["text_config"]["layer_types"]
    assert Model(**import_config(cfg, name="q35")).linear_attention.num_layers == 45


def test_qwen3_next_config_counts_its_published_total():
    """Qwen/Qwen3-Next-80B-A3B config.json (flat, Qwen3NextForCausalLM: the gate is always
    there) counts 79.7B against the model card's 80B."""
    cfg = {"architectures": ["Qwen3NextForCausalLM"], "model_type": "qwen3_next", "hidden_size": 2048,
           "num_hidden_layers": 48, "num_attention_heads": 16, "num_key_value_heads": 2, "head_dim": 256,
           "intermediate_size": 5120, "moe_intermediate_size": 512, "shared_expert_intermediate_size": 512,
           "num_experts": 512, "num_experts_per_tok": 10, "linear_num_key_heads": 16, "linear_num_value_heads": 32,
           "linear_key_head_dim": 128, "linear_value_head_dim": 128, "linear_conv_kernel_dim": 4,
           "full_attention_interval": 4, "vocab_size": 151936, "max_position_embeddings": 262144,
           "tie_word_embeddings": False, "decoder_sparse_step": 1, "mlp_only_layers": []}
    m = Model(**import_config(cfg, name="qwen3-next"))
    assert m.attention_output_gate and m.linear_attention.num_layers == 36
    assert abs(count(m).total_params / 80e9 - 1) < 0.015
    bad = {**cfg, "full_attention_interval": 0}
    with pytest.raises(InputError, match="full_attention_interval"):
        import_config(bad)
