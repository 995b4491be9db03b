"""Quantization presets: the compute dtype a preset runs in on each device, and the search
giving the accuracy model the dtype the cost model runs (one rule, planner.quantization)."""

from __future__ import annotations

import numpy as np
import pytest

from planner.catalog import list_names, load_hardware, load_model
from planner.quantization import QUANTIZATIONS, act_dtype_for, quantization_error


@pytest.mark.parametrize("name", list_names("hardware"))
def test_every_device_runs_each_preset_in_a_dtype_it_has(name):
    hw = load_hardware(name)
    for q, (_, want) in QUANTIZATIONS.items():
        a = act_dtype_for(hw, q)
        assert a is not None  # every catalog device has a 16-bit or fp32 unit
        assert hw.has_dtype(a)
        # the wanted format when the device has it; otherwise never a narrower one
        assert a == want if hw.has_dtype(want) else a in ("bf16", "fp32")


def test_unknown_preset_names_the_choices():
    assert quantization_error("int4") is None
    why = quantization_error("int3")
    assert "int3" in why and all(q in why for q in QUANTIZATIONS)


def test_weight_only_fallback_reaches_the_accuracy_model():
    """Gaudi 3 has fp8 but no int8 unit: the int8 preset runs W8A16 there, W8A8 on an H100.
    Both the cost and the accuracy must see that: 16-bit math loses no accuracy against
    8-bit integer math (W8A8-INT costs 1-3 points, Kurtic et al. 2025), and the accuracy of
    each row is what the accuracy model says for the dtype the row reports."""
    from planner.accuracy import find_profile, predict
    from planner.recommend import accuracy_for_search
    from planner.search import Space, evaluate_space

    models = [load_model("qwen3-8b")]
    hw = [load_hardware("h100-sxm"), load_hardware("gaudi3")]
    prof = find_profile("qwen3-8b", "aime24")
    space = Space(strategies=["single"], devices=[1], samples=[1], gen_lens=[4096, 16384], quantizations=["int8"],
                  kv_dtypes=["bf16"], batches=[1], kv_budgets=[0], prompt_len=150)
    res = evaluate_space(space, models, hw, [None, None], [prof], accuracy_for_search)
    rows = [res.row(i) for i in range(res.evaluated)]
    by = {(r["hardware"], r["gen_len"]): r for r in rows}
    for gen in (4096, 16384):
        h100, gaudi = by["h100-sxm", gen], by["gaudi3", gen]
        assert (h100["act_dtype"], gaudi["act_dtype"]) == ("int8", "bf16")
        assert gaudi["accuracy"] > h100["accuracy"]
        for r in (h100, gaudi):
            want = predict(prof, "single", 1, gen, weight_dtype="int8", act_dtype=r["act_dtype"], kv_dtype="bf16")
            assert r["accuracy"] == pytest.approx(float(np.asarray(want).reshape(-1)[0]), rel=1e-5)
