"""The per-kernel time scoped by (device, engine) (planner.serving_params.KERNEL_SCOPE, round 16
S8): runs of two engines on one device generated with DIFFERENT kernel times are recovered by the
pooled fit under "pair" and "ratio" and cannot be under the shipped "die" (one value for both);
what an unmeasured device carries is then the median over the SAME engine's fitted pairs."""

from __future__ import annotations

import numpy as np
import pytest

from planner import serving_params as SP
from planner.catalog import load_hardware
from planner.errors import InputError
from planner.measured import read_measured
from planner.replay import Prepared
from planner.serving_fit import as_params, fit_all

HEADER = "id,backend,model_path,system,precision,mode,isl,osl,batch_size,tp_size,silicon_ttft_ms,silicon_tpot_ms"
SHARED = {"memory_efficiency": 0.62, "compute_efficiency": 0.45, "step_host_s": 0.0015, "wave_sync": 0.35,
          "request_overhead_s": 0.05, "link_efficiency": 0.55}
KERNEL_S = {"vllm": 9e-6, "trtllm": 5e-6}  # TensorRT-LLM's fused runtime: less per kernel


def two_engines(tmp_path, kernel_s=KERNEL_S) -> str:
    """vLLM and TensorRT-LLM runs on h100-sxm whose 'measurements' are the replay's own predictions
    under SHARED plus each engine's own kernel time."""
    grid = [(m, isl, osl, c, tp) for m, tps in (("meta-llama/Llama-3.1-8B-Instruct", (1, 2)),
                                                  ("Qwen/Qwen3-32B", (2, 4)))
            for isl, osl in ((1024, 1024), (4096, 256)) for c in (1, 8, 64) for tp in tps]
    rows = [f"{e}-{i},{e},{m},h100_sxm,,agg,{isl},{osl},{c},{tp},,"
            for e in kernel_s for i, (m, isl, osl, c, tp) in enumerate(grid)]
    grid_csv = tmp_path / "grid.csv"
    grid_csv.write_text("\n".join([HEADER, *rows]) + "\n")
    hw = load_hardware("h100-sxm")
    truth = {f"h100-sxm/{e}": ("truth", {**SP.defaults(hw), **SHARED, "kernel_time_s": k}) for e, k in kernel_s.items()}
    pred = Prepared(read_measured(str(grid_csv))).run(truth)
    assert (pred.status == "ok").all()
    out = [HEADER] + [f"{r.rsplit(',', 2)[0]},{t * 1e3:.9g},{q * 1e3:.9g}" for r, t, q in
                      zip(rows, pred.ttft_s, pred.tpot_s)]
    path = tmp_path / "two-engines.csv"
    path.write_text("\n".join(out) + "\n")
    return str(path)


@pytest.mark.parametrize("scope", ["pair", "ratio"])
def test_two_engines_kernel_times_are_recovered(tmp_path, monkeypatch, scope):
    monkeypatch.setattr(SP, "KERNEL_SCOPE", scope)
    fits = fit_all(read_measured(two_engines(tmp_path)))
    for e, k in KERNEL_S.items():
        f = fits[f"h100-sxm/{e}"]
        assert f.values["kernel_time_s"] == pytest.approx(k, rel=0.03), (scope, e)
        assert f.values["memory_efficiency"] == pytest.approx(SHARED["memory_efficiency"], rel=0.03), (scope, e)
        assert f.rms_log_tpot < 1e-3, (scope, e)


def test_one_die_value_cannot_fit_both_engines(tmp_path, monkeypatch):
    """The shipped scope shares one kernel time between the engines of a device: the same runs leave
    a TPOT residual the engine-scoped fits remove (the oracle: the generating times differ by 1.8x)."""
    monkeypatch.setattr(SP, "KERNEL_SCOPE", "die")
    fits = fit_all(read_measured(two_engines(tmp_path)), physical=True)
    assert fits["h100-sxm/vllm"].values["kernel_time_s"] == fits["h100-sxm/trtllm"].values["kernel_time_s"]
    assert max(f.rms_log_tpot for f in fits.values()) > 5e-3


def _params(scope_times: dict[str, float]) -> dict:
    return {g: ("fit", SP.Values({"kernel_time_s": k, "step_host_s": 1e-4, "link_efficiency": 0.5}))
            for g, k in scope_times.items()}


@pytest.mark.parametrize("scope", ["pair", "ratio"])
def test_an_unmeasured_pair_carries_its_own_engines_kernel_time(monkeypatch, scope):
    """b200 with vLLM takes the median of the vLLM pairs (8 us), never TensorRT-LLM's; an h100-sxm
    without an SGLang fit, fitted with other engines, takes h200/sglang's time (the engine's), not
    the median of its own other engines' (under "die" it keeps its own: the engines share it)."""
    params = _params({"h100-sxm/vllm": 7e-6, "h200/vllm": 9e-6, "h100-sxm/trtllm": 3e-6, "h200/trtllm": 4e-6,
                      "h200/sglang": 6e-6})
    monkeypatch.setattr(SP, "KERNEL_SCOPE", scope)
    _, vals = SP.unmeasured(load_hardware("b200"), "vllm", None, params)
    assert vals["kernel_time_s"] == pytest.approx(8e-6)
    _, vals = SP.unmeasured(load_hardware("b200"), "trtllm", None, params)
    assert vals["kernel_time_s"] == pytest.approx(3.5e-6)
    name, vals = SP.unmeasured(load_hardware("h100-sxm"), "sglang", None, params)
    assert vals["kernel_time_s"] == pytest.approx(6e-6) and "kernel_time_s" in name.split(" of h200/sglang")[0]
    monkeypatch.setattr(SP, "KERNEL_SCOPE", "die")
    _, vals = SP.unmeasured(load_hardware("h100-sxm"), "sglang", None, params)
    assert vals["kernel_time_s"] == pytest.approx(float(np.median([7e-6, 3e-6])))


def test_an_absurd_engine_kernel_time_is_refused(tmp_path, monkeypatch):
    """Under "ratio" the fitted product is checked like any kernel time: runs that need 80 us per
    kernel on one engine are refused naming kernel_time_s (range [0, 50 us])."""
    monkeypatch.setattr(SP, "KERNEL_SCOPE", "ratio")
    path = two_engines(tmp_path, {"vllm": 9e-6, "trtllm": 80e-6})
    with pytest.raises(InputError, match=r"kernel_time_s = .*50 us per kernel"):
        fit_all(read_measured(path))
