"""What a device absent from the measurements gets (planner.serving_carry.unmeasured):
the leave-one-device-out protocol of benchmarks/serving_fidelity.py never lets a row of
the held-out device reach its fit, the carried parameters are recovered from synthetic
runs of two devices that share them, and every command's profile label says what was
carried and from where."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from planner import serving_params as SP
from planner import serving_carry as SC
from planner.catalog import load_hardware
from planner.cli import main
from planner.measured import read_measured
from planner.replay import Prepared

ROOT = Path(__file__).resolve().parent.parent
HEADER = "id,backend,model_path,system,precision,mode,isl,osl,batch_size,tp_size,silicon_ttft_ms,silicon_tpot_ms"
# the engine's, the die's (GH100: compute fraction, per-kernel time) and the fabric's (NVLink 4:
# link fraction) shared by both devices; the memory fraction each device's own
SHARED = {"step_host_s": 0.0008, "wave_sync": 0.3, "request_overhead_s": 0.06, "request_overhead_s_per_kernel": 3e-5,
          "kernel_time_s": 7e-6, "link_efficiency": 0.35, "compute_efficiency": 0.56, "gemm_rows_half": 24.0}
OWN = {"h100-sxm": {"memory_efficiency": 0.9}, "h200": {"memory_efficiency": 0.75}}
SYSTEM = {"h100-sxm": "h100_sxm", "h200": "h200_sxm"}


def _fidelity():
    spec = importlib.util.spec_from_file_location("serving_fidelity", ROOT / "benchmarks" / "serving_fidelity.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def two_devices(tmp_path) -> str:
    """Runs of vLLM on h100-sxm and h200 whose 'measurements' are the replay's own
    predictions under known parameters: the engine's, the die's and the fabric's shared by
    both devices (SHARED), the memory fraction each device's own (OWN)."""
    models = (("meta-llama/Llama-3.1-8B-Instruct", (1, 2)), ("Qwen/Qwen3-32B", (2, 4)))
    grid = [(m, isl, osl, c, tp) for m, tps in models
            for isl, osl in ((1024, 1024), (4096, 256)) for c in (1, 16, 64) for tp in tps]
    rows = [f"{d}-{i},vllm,{m},{SYSTEM[d]},,agg,{isl},{osl},{c},{tp},,"
            for d in OWN for i, (m, isl, osl, c, tp) in enumerate(grid)]
    grid_csv = tmp_path / "grid.csv"
    grid_csv.write_text("\n".join([HEADER, *rows]) + "\n")
    truth = {f"{d}/vllm": ("truth", {**SP.defaults(load_hardware(d)), **SHARED, **own}) for d, own in OWN.items()}
    pred = Prepared(read_measured(str(grid_csv))).run(truth)
    assert (pred.status == "ok").all()
    out = [HEADER] + [f"{r.rsplit(',', 2)[0]},{t * 1e3:.9g},{q * 1e3:.9g}" for r, t, q in
                      zip(rows, pred.ttft_s, pred.tpot_s)]
    path = tmp_path / "two-devices.csv"
    path.write_text("\n".join(out) + "\n")
    return str(path)


def test_leave_one_device_out_never_fits_on_the_held_out_device(tmp_path, monkeypatch):
    sf = _fidelity()
    path = two_devices(tmp_path)
    calls = []
    real = sf.fit_all

    def spy(runs, *a, use=None, prep=None, **kw):
        fits = real(runs, *a, use=use, prep=prep, **kw)
        calls.append((use.copy(), set(fits)))
        return fits

    monkeypatch.setattr(sf, "fit_all", spy)
    prep = Prepared(read_measured(path))
    fits = sf.device_out_fits(prep)
    assert sorted(fits) == ["h100-sxm", "h200"] and len(calls) == 2
    for (use, groups), d in zip(calls, sorted(fits)):
        held = prep.device == d
        assert held.any() and not (use & held).any()  # the fit's input holds no row of d
        assert (use | held).all()  # ... and every row of the other device
        assert groups and all(not g.startswith(d + "/") for g in groups)
    pred = sf.leave_one_device_out(prep, fits)
    for d, other in (("h100-sxm", "h200"), ("h200", "h100-sxm")):
        held = prep.device == d
        assert all(p.startswith("datasheet + vllm") and f"of {other}/vllm" in p for p in pred.profile[held])
    # the held-out device's own measurements cannot move its prediction: scale them by 3
    scaled = tmp_path / "scaled.csv"
    lines = Path(path).read_text().splitlines()
    scaled.write_text("\n".join([lines[0]] + [
        ",".join(f[:-2] + [f"{float(f[-2]) * 3:.9g}", f"{float(f[-1]) * 3:.9g}"]) if f[0].startswith("h200")
        else ",".join(f) for f in (ln.split(",") for ln in lines[1:])]) + "\n")
    prep2 = Prepared(read_measured(str(scaled)))
    fits2 = {"h200": real(prep2.runs, strict=False, physical=True, prep=prep2, use=prep2.device != "h200")}
    pred2 = sf.leave_one_device_out(prep2, {"h200": sf.as_params(fits2["h200"], "x")})
    held = prep.device == "h200"
    np.testing.assert_allclose(pred2.tpot_s[held], pred.tpot_s[held], rtol=1e-9)
    np.testing.assert_allclose(pred2.ttft_s[held], pred.ttft_s[held], rtol=1e-9)


def test_carried_rule_recovered_from_two_fitted_devices(tmp_path):
    """Two devices generated with known shared fractions: what an unmeasured NVIDIA part
    (b200) carries is those values; its own datasheet keeps the rest; an AMD part takes
    only the engine's parameters."""
    from planner.serving_fit import as_params, fit_all

    path = two_devices(tmp_path)
    fits = as_params(fit_all(read_measured(path)))
    b200 = load_hardware("b200")
    name, vals = SC.unmeasured(b200, "vllm", None, fits)
    assert set(SC.CARRIED) <= set(SHARED)  # the test's truth covers the shipped rule
    for k in SC.CARRIED:
        assert vals[k] == pytest.approx(SHARED[k], rel=0.03), k
    for k in set(SP.NAMES) - set(SC.CARRIED) - {"step_host_s"}:
        assert vals[k] == SP.defaults(b200)[k], k
    assert name == f"datasheet + vllm {', '.join(SC.CARRIED)} of h100-sxm/vllm, h200/vllm"
    # every candidate rule carries exactly its own names, at the shared values
    rows = len(open(path).read().splitlines()) - 1  # every row of the file, bf16 (precision empty)
    for rule, names in SC.CARRY_RULES.items():
        carried = SC.carried_over("vllm", fits, b200, names)
        if not names:
            assert carried is None
            continue
        assert list(carried[1]) == [k for k in names if k != SC.SAME_SILICON], rule  # b200: no fitted GB100
        # a carried kernel time follows the GEMM path (planner.kernel_paths) at the fitted file's mix (its
        # rows by compute dtype: two_devices writes bf16 rows only), an own or absent one not
        assert carried[1].kernel_mix == ({"bf16": rows} if "kernel_time_s" in names else None), rule
        for k in set(names) & set(SHARED):
            assert carried[1][k] == pytest.approx(SHARED[k], rel=0.03), (rule, k)
    amd = SC.carried_over("vllm", fits, load_hardware("mi300x"), SC.CARRY_RULES["engine+device"])
    assert list(amd[1]) == list(SP.ENGINE_SCOPE)
    # an engine fitted nowhere carries nothing from other devices: without ``own`` a device
    # fitted with other engines takes its datasheet; the shipped rule (own on, round 15, chosen
    # by leave-one-model-out) keeps its own fitted fractions (the pooled fit shares them between
    # its engines)
    h100 = load_hardware("h100-sxm")
    assert SC.unmeasured(h100, "sglang", None, fits, own=False) == (SC.DATASHEET, SP.defaults(h100))
    assert SC.unmeasured(h100, "sglang", None, fits) == SC.unmeasured(h100, "sglang", None, fits, own=True)
    name, vals = SC.unmeasured(h100, "sglang", None, fits, own=True)
    assert name == "datasheet + sglang " + ", ".join(SC.DEVICE_FRACTIONS) + " of h100-sxm/vllm"
    for k, v in {**SHARED, **OWN["h100-sxm"]}.items():
        if k in SC.DEVICE_FRACTIONS:
            assert vals[k] == pytest.approx(v, rel=0.03), k
    assert vals["step_host_s"] == SP.defaults(h100)["step_host_s"]


def _renamed_dev_rows(tmp_path) -> Path:
    """vLLM and TensorRT-LLM dev rows of h200 at TP > 1 renamed to b200 and gb200: devices
    no profile was fitted on."""
    import csv

    src = ROOT.parent / "shared" / "data" / "serving-measured-hopper-dev.csv"
    if not src.exists():
        pytest.skip("dev file not present")
    with open(src, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["system"] == "h200_sxm" and r["mode"] == "agg"
                and r["backend"] in ("vllm", "trtllm") and float(r["tp_size"] or 0) in (2, 4)][:12]
    out = tmp_path / "blackwell.csv"
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for i, r in enumerate(rows):
            w.writerow({**r, "system": ("b200_sxm", "gb200")[i % 2]})
    return out


def test_validate_estimate_recommend_say_what_was_carried(tmp_path, capsys):
    from planner.serving_profile import load_serving

    shipped = load_serving()
    path = _renamed_dev_rows(tmp_path)
    assert main(["validate", "--measured", str(path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert rows and all(r["status"] == "ok" for r in rows)
    for r in rows:
        engine = "vllm" if "vllm" in r["profile"] else "trtllm"
        assert r["profile"] == (f"datasheet + {engine} {', '.join(SC.CARRIED)} of "
                                f"h100-sxm/{engine}, h200/{engine}")
    # the carried link efficiency is used, not just named: the engine-only rule predicts these TP > 1 rows differently
    prep = Prepared(read_measured(str(path)))
    own = prep.run(shipped)
    engine_only = prep.run({**shipped, **{g: SC.unmeasured(prep.hw[g], g.split("/")[1], prep.engine_of(g), shipped,
                                                           SC.CARRY_RULES["engine"]) for g in prep.gnames}})
    assert not np.allclose(own.tpot_s, engine_only.tpot_s)
    link = float(np.median([v["link_efficiency"] for g, (_, v) in shipped.items() if g.endswith("/vllm")]))

    assert main(["estimate", "-m", "llama-3.1-8b", "-H", "b200", "--engine", "vllm", "--json"]) == 0
    text = capsys.readouterr().out
    carried = f"{', '.join(SC.CARRIED)} of h100-sxm/vllm, h200/vllm"
    assert json.loads(text)["efficiency"].endswith(f"; datasheet + vllm {carried}")
    assert main(["recommend", "--task", "aime24", "--models", "qwen3-8b", "--hardware", "b200", "--engine", "vllm",
                 "--top", "1", "--json"]) == 0
    used = json.loads(capsys.readouterr().out)["profiles_used"]["b200"]
    assert used == f"datasheet + carried vllm parameters ({carried})"
    from planner.engine_profiles import load_engine
    from planner.serving_profile import resolve_serving

    choice = resolve_serving(load_hardware("gb200"), load_engine("vllm"))
    assert choice.efficiency.interconnect == pytest.approx(link)
    assert choice.profile == f"datasheet + carried vllm parameters ({carried})"
    assert choice.engine.host_step_us == pytest.approx(1e6 * float(np.median(
        [v["step_host_s"] for g, (_, v) in shipped.items() if g.endswith("/vllm")])))
    amd = resolve_serving(load_hardware("mi300x"), load_engine("vllm"))
    assert "link_efficiency" not in amd.profile and "step_host_s" in amd.profile


@pytest.mark.parametrize("tie", [False, True])
def test_pooled_fit_recovers_die_and_fabric_tied_or_not(tmp_path, monkeypatch, tie):
    """h100-sxm and h200 are one die (GH100) and one fabric (NVLink 4), generated with one
    compute fraction, per-kernel time and link fraction: the pooled fit recovers them on
    each device, as one shared value when it ties them (serving_params.TIE_SILICON), and
    each device's own memory fraction either way."""
    from planner.serving_fit import fit_all

    monkeypatch.setattr(SP, "TIE_SILICON", tie)
    fits = {g: f.values for g, f in fit_all(read_measured(two_devices(tmp_path))).items()}
    for k in ("compute_efficiency", "kernel_time_s", "link_efficiency"):
        assert (fits["h100-sxm/vllm"][k] == fits["h200/vllm"][k]) == tie, k
        for d in OWN:
            assert fits[f"{d}/vllm"][k] == pytest.approx(SHARED[k], rel=0.03, abs=2e-7), (d, k)
    for d, own in OWN.items():
        assert fits[f"{d}/vllm"]["memory_efficiency"] == pytest.approx(own["memory_efficiency"], rel=0.03), d


def test_same_silicon_carries_the_die_not_the_fabric(tmp_path):
    """An H100 PCIe is cut from the fitted parts' die (GH100) but runs over PCIe: under the
    rule with SAME_SILICON it takes their compute fraction and per-kernel time; its link
    fraction comes by the vendor rule (an NVLink fraction, the rule's own link entry), and
    its memory fraction and the wave synchrony stay the datasheet's."""
    from planner.serving_fit import as_params, fit_all

    fits = as_params(fit_all(read_measured(two_devices(tmp_path))))
    pcie = load_hardware("h100-pcie")
    name, vals = SC.unmeasured(pcie, "vllm", None, fits, SC.CARRY_RULES["scheduler+link+silicon"])
    assert "of die GH100 (h100-sxm/vllm, h200/vllm)" in name and "fabric" not in name
    for k in ("compute_efficiency", "kernel_time_s"):
        assert vals[k] == pytest.approx(SHARED[k], rel=0.03, abs=2e-7), k
    sheet = SP.defaults(pcie)
    assert vals["memory_efficiency"] == sheet["memory_efficiency"] and vals["wave_sync"] == sheet["wave_sync"]
    # without the token the die carries nothing
    _, plain = SC.unmeasured(pcie, "vllm", None, fits, SC.CARRY_RULES["scheduler+link"])
    assert plain["compute_efficiency"] == sheet["compute_efficiency"]


def test_devices_of_one_die_have_the_same_peak_ratios():
    """The die tags (hardware/*.yaml ``die``) against the datasheets: devices cut from one die
    run the same tensor cores, so their peaks per dtype stand in the same ratios (clocks and
    SM counts scale them all alike; within 5%), and the dtype sets match."""
    from planner.catalog import all_hardware

    by_die = {}
    for h in all_hardware():
        if h.die:
            by_die.setdefault(h.die, []).append(h)
    assert {h.name for h in by_die["GH100"]} >= {"h100-sxm", "h200", "h100-pcie"}
    for die, parts in by_die.items():
        ref = parts[0]
        for h in parts[1:]:
            assert set(h.peak_tflops) == set(ref.peak_tflops), (die, h.name)
            for k, v in h.peak_tflops.items():
                assert v / h.peak_tflops["bf16"] == pytest.approx(ref.peak_tflops[k] / ref.peak_tflops["bf16"],
                                                                  rel=0.05), (die, h.name, k)


def test_only_fixed_length_rows_identify_the_wave_synchrony(tmp_path):
    """Why the shipped rule leaves ``wave_sync`` at its default on an unmeasured device: a row
    whose benchmark spreads the lengths (random_range_ratio < 1) predicts the same TTFT
    whatever the wave synchrony, so a fit on such rows cannot set it (h200/trtllm in the dev
    file: 0 of 262 rows fixed); fixed lengths move it."""
    head = HEADER + ",random_range_ratio"
    rows = [f"{i},vllm,Qwen/Qwen3-32B,h200_sxm,,agg,4096,512,{c},2,,,{r}"
            for i, (c, r) in enumerate(((16, 0.8), (64, 0.5), (16, 1.0), (64, 1.0)))]
    path = tmp_path / "sync.csv"
    path.write_text("\n".join([head, *rows]) + "\n")
    prep = Prepared(read_measured(str(path)))
    base = SP.defaults(load_hardware("h200"))
    ttft = [prep.run({"h200/vllm": ("x", {**base, "wave_sync": w})}).ttft_s for w in (0.0, 1.0)]
    np.testing.assert_allclose(ttft[0][:2], ttft[1][:2], rtol=1e-12)  # spread lengths
    assert np.all(np.abs(ttft[1][2:] / ttft[0][2:] - 1) > 1e-3)  # fixed lengths
