"""The carried per-kernel time by GEMM path (planner.kernel_paths): the table against NVIDIA's
published kernel rows, the factors by hand, the scalar kept without tables, a row's path in the engine."""

import csv
import os
import sys
from pathlib import Path

import pytest

from planner import kernel_paths as KP
from planner import serving_params as SP
from planner import serving_carry as SC
from planner.catalog import load_hardware
from planner.cost.api import estimate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEV = Path(ROOT).parent / "shared" / "data" / "serving-measured-hopper-dev.csv"
DEV_MIX = {"bf16": 246, "fp8": 868}  # the dev file's rows by tabled GEMM path (test_the_fit_counts_its_files_mix)


def test_the_composites_are_the_published_tables():
    """COMPOSITE_US against benchmarks/published_kernels.py recomputed on the shipped CSV (NVIDIA
    aiconfigurator-core 0.12.0 rows): every system and path, to the 2 decimals kept."""
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    import published_kernels as P

    rows = P.load()
    for system, table in KP.COMPOSITE_US.items():
        d = P.derive(rows, system, *P._hardware(system))
        for path, us in table.items():
            assert P.layer_kernel_mean_s(d, path) * 1e6 == pytest.approx(us, abs=0.006), (system, path)


def test_blackwell_bf16_factor_by_hand():
    """B200 (Blackwell family: B200 / GB200 / B300 tables): bf16 composite mean (5.78 + 4.95 + 5.70) / 3
    over the fitted tabled mix (246 bf16 rows, 868 fp8 rows) of the fp8 mean (11.84 + 11.30 + 11.41) / 3."""
    bf16, fp8 = (5.78 + 4.95 + 5.70) / 3, (11.84 + 11.30 + 11.41) / 3
    expected = bf16 / ((246 * bf16 + 868 * fp8) / 1114)
    assert KP.kernel_factors(load_hardware("b200"), DEV_MIX)["bf16"] == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.538, abs=0.001)
    # the factors average to 1 over the fitted mix: the carried level is the fit's
    f = KP.kernel_factors(load_hardware("gb300"), DEV_MIX)
    assert (246 * f["bf16"] + 868 * f["fp8"]) / 1114 == pytest.approx(1.0)
    # without a mix (a profile that does not say what it was fitted on) the carried time stays one scalar
    assert KP.kernel_factors(load_hardware("b200"), {}) == {}


@pytest.mark.skipif(not DEV.is_file(), reason="../shared/data not present")
def test_the_fit_counts_its_files_mix():
    """The mix a fit records (planner.serving_fit.gemm_mix) against the dev CSV's own quant columns
    (gemm_quant_mode, else precision): bf16 rows on the bf16 path, fp8 and fp8_block rows on the fp8
    path, the weight-only int4_wo and nvfp4 rows (Hopper has no fp4 units) on none; and every shipped
    serving profile fitted on that file (provenance sha256) carries that mix, so a refit keeps it true."""
    import hashlib

    import yaml

    from planner.measured import read_measured
    from planner.replay import Prepared
    from planner.serving_fit import gemm_mix

    with open(DEV, newline="") as f:
        precision = [(r["gemm_quant_mode"] or r["precision"] or "bf16").strip().lower() for r in csv.DictReader(f)]
    oracle = {"bf16": sum(p == "bf16" for p in precision), "fp8": sum(p in ("fp8", "fp8_block") for p in precision)}
    assert len(precision) - sum(oracle.values()) == sum(p in ("int4_wo", "nvfp4") for p in precision)
    assert oracle == DEV_MIX
    assert gemm_mix(Prepared(read_measured(str(DEV)))) == oracle
    digest = hashlib.sha256(DEV.read_bytes()).hexdigest()
    shipped = sorted((Path(ROOT) / "calibration" / "serving").glob("*.yaml"))
    assert shipped
    for p in shipped:
        prov = yaml.safe_load(p.read_text())["fitted"]["serving"]["provenance"]
        if prov["sha256"] == digest:
            assert prov["gemm_mix"] == oracle, p.name


def _carried(device, engine="vllm", mixes=(DEV_MIX, DEV_MIX)):
    params = {"h100-sxm/vllm": ("fit", SP.Values({"kernel_time_s": 7e-6, "step_host_s": 1e-4, "link_efficiency": 0.5},
                                                 gemm_mix=mixes[0])),
              "h200/vllm": ("fit", SP.Values({"kernel_time_s": 9e-6, "step_host_s": 2e-4, "link_efficiency": 0.6},
                                             gemm_mix=mixes[1]))}
    hw = load_hardware(device)
    name, vals = SC.unmeasured(hw, engine, None, params)
    return hw, vals, SP.efficiency(hw, vals, name)


def test_a_device_without_tables_keeps_the_scalar():
    """A100 (no published table of its die): every compute dtype pays the carried median, 8 us."""
    hw, vals, eff = _carried("a100-sxm-80gb")
    assert vals["kernel_time_s"] == pytest.approx(8e-6)
    for d in ("bf16", "fp8", "fp4", "int8"):
        assert eff.kernel_overhead_at(d) == pytest.approx(8e-6)


def test_a_fitted_kernel_time_is_not_scaled():
    """A device's own fitted time is already its rows' mix: no factors on values that carried nothing,
    whatever mix they were fitted on."""
    hw = load_hardware("h100-sxm")
    for vals in ({"kernel_time_s": 7e-6}, SP.Values({"kernel_time_s": 7e-6}, gemm_mix=DEV_MIX)):
        eff = SP.efficiency(hw, vals, "fit")
        assert eff.kernel_factor == {} and eff.kernel_overhead_at("fp8") == pytest.approx(7e-6)


def test_the_carried_mix_is_the_sources_median():
    """The carried time is the median of the fitted devices' times, and its mix the median of their
    mixes: two sources with different mixes give the factors of the mean mix (a median of two);
    a source that does not say its mix leaves the carried time one scalar (no factors)."""
    b200 = load_hardware("b200")
    _, vals, eff = _carried("b200", mixes=({"bf16": 100, "fp8": 300}, {"bf16": 200, "fp8": 500}))
    assert vals.kernel_mix == {"bf16": 150.0, "fp8": 400.0}
    assert eff.kernel_factor == KP.kernel_factors(b200, {"bf16": 150, "fp8": 400})
    _, vals, eff = _carried("b200", mixes=(DEV_MIX, {}))
    assert vals.kernel_mix is None and eff.kernel_factor == {}
    assert eff.kernel_overhead_at("fp8") == pytest.approx(8e-6)


def _overhead_s(hw, eff, weight, act, concurrency):
    kw = dict(efficiency=eff, concurrency=concurrency, gen_len=64, prompt_len=256)
    return estimate("llama-3.1-8b", hw, weight_dtype=weight, act_dtype=act, **kw)["time_by_bound_s"]["overhead"]


@pytest.mark.parametrize("concurrency", [0, 4])  # the scalar fast path and the vectorized closed loop
def test_a_rows_kernel_time_follows_its_gemm_path(concurrency):
    """Same model and kernel count on B200 with the carried time: the launch-bound time of an fp8 row
    over a bf16 one is the tables' fp8 / bf16 composite ratio; a weight-only row (int4 weights, bf16
    compute: no tabled path) pays the carried scalar, 1 / the bf16 factor of the bf16 row's."""
    hw, vals, eff = _carried("b200")
    assert eff.kernel_factor
    ovh = {(w, a): _overhead_s(hw, eff, w, a, concurrency) for w, a in (("bf16", "bf16"), ("fp8", "fp8"),
                                                                      ("int4", "bf16"))}
    table = KP.table_of(hw)
    assert ovh["fp8", "fp8"] / ovh["bf16", "bf16"] == pytest.approx(table["fp8"] / table["bfloat16"], rel=1e-6)
    assert ovh["int4", "bf16"] / ovh["bf16", "bf16"] == pytest.approx(1 / eff.kernel_factor["bf16"], rel=1e-6)


@pytest.mark.parametrize("mix, field", [({"int4": 3}, "gemm_mix"), ({"fp8": -1}, "gemm_mix.fp8"),
                                        ({"bf16": 2.5}, "gemm_mix.bf16"), ("246", "gemm_mix")])
def test_a_bad_mix_in_a_profile_is_refused_by_name(tmp_path, mix, field):
    """A serving profile whose provenance.gemm_mix is not compute dtype -> whole rows: one InputError
    naming the file and the field; without the field the profile loads with no mix (written before it)."""
    import yaml

    from planner.errors import InputError
    from planner.serving_profile import load_serving

    src = Path(ROOT) / "calibration" / "serving" / "h200.vllm.yaml"
    doc = yaml.safe_load(src.read_text())
    doc["fitted"]["serving"]["provenance"]["gemm_mix"] = mix
    bad = tmp_path / "h200.vllm.yaml"
    bad.write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(InputError) as e:
        load_serving([str(bad)])
    assert f"field 'fitted.serving.provenance.{field}'" in str(e.value) and "h200.vllm.yaml" in str(e.value)
    del doc["fitted"]["serving"]["provenance"]["gemm_mix"]
    bad.write_text(yaml.safe_dump(doc, sort_keys=False))
    (_, vals), = load_serving([str(bad)]).values()
    assert vals.gemm_mix == {} and vals["kernel_time_s"] == doc["fitted"]["serving"]["parameters"]["kernel_time_s"]
