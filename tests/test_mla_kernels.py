"""Kernel launches of multi-head latent attention and DeepSeek sparse attention.

Oracles: the importer reads ``index_topk`` from a config.json (a DSA model's lightning
indexer, DeepSeek-V3.2 / GLM-5 config files), and GLM-5 with and without its indexer
differs by the indexer's kernels per pass and nothing else (two predictions of models that
differ only in it). The published B200 check of the counts, MLA's included, is
tests/test_blackwell_rows.py
(test_an_mla_layer_costs_more_than_a_gqa_layer_at_one_request).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner.catalog import load_hardware, load_model
from planner.cost.context import DSA_INDEXER_KERNELS_PER_LAYER
from planner.errors import InputError
from planner.hf_import import import_config_file
from planner.specs import DEFAULT_KERNEL_OVERHEAD_US, Model

DATA = Path(__file__).parent / "data" / "hf_configs"


def test_importer_reads_the_dsa_indexer_top_k(tmp_path):
    cfg = json.loads((DATA / "tiny-deepseek.json").read_text())
    plain = Model.model_validate(import_config_file(DATA / "tiny-deepseek.json"))
    assert plain.mla.index_topk is None
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**cfg, "index_topk": 64, "index_n_heads": 4, "index_head_dim": 16}))
    data = import_config_file(path)
    m = Model.model_validate(data)
    assert m.mla.index_topk == 64
    assert "index_topk" in data["sources"]["mla"]
    path.write_text(json.dumps({**cfg, "index_topk": -3}))
    with pytest.raises(InputError, match="index_topk"):
        import_config_file(path)


def test_glm5_runs_the_indexer_and_deepseek_r1_does_not():
    assert load_model("glm-5").mla.index_topk == 2048  # zai-org/GLM-5-FP8 config.json
    assert load_model("deepseek-r1").mla.index_topk is None


@pytest.mark.parametrize("gen_len", [1, 8])
def test_the_indexer_adds_its_kernels_to_every_pass_and_nothing_else(gen_len):
    """GLM-5 with and without its indexer (index_topk set or not; the same weights, KV and
    FLOPs: at these lengths the top-k keeps every key) on an uncalibrated B200 at one
    request: the prefill and each decode step differ by the indexer's kernels on every layer
    at the datasheet's time per kernel."""
    from planner.cost.api import estimate
    m = load_model("glm-5")
    dense = m.model_copy(update={"mla": m.mla.model_copy(update={"index_topk": None})})
    runs = [estimate(x, load_hardware("b200"), devices=8, batch=1, prompt_len=128, gen_len=gen_len)
            for x in (m, dense)]
    per_pass_s = DSA_INDEXER_KERNELS_PER_LAYER * m.num_layers * DEFAULT_KERNEL_OVERHEAD_US * 1e-6
    assert runs[0]["prefill_s"] - runs[1]["prefill_s"] == pytest.approx(per_pass_s, rel=1e-9)
    assert runs[0]["tpot_s"] - runs[1]["tpot_s"] == pytest.approx(per_pass_s, rel=1e-9)

