"""benchmarks/decode_residuals.py decomposes each row's pure decode step with the
replay's OWN parameters: the per-kernel time and link efficiency a fit gives (it used
to take the datasheet's, so its parts did not add up to the predicted step).

Oracles: the kernel count of a dense Llama layer stack in closed form (Llama-3.1-70B
config.json: 80 layers; 8 kernels per layer plus 2 per pass, README "How the cost model
works") times the parameter set's kernel time; a lower link efficiency can only lengthen
the all-reduces; the closed loop adds mixed steps to the pure decode step, never less
where the running set is every request (small batches, short requests)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from planner import serving_params as SP
from planner.measured import read_measured
from planner.replay import Prepared

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "data" / "serving-measured-hopper-dev.csv"


def _module():
    spec = importlib.util.spec_from_file_location("decode_residuals", ROOT / "benchmarks" / "decode_residuals.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.skipif(not DEV.is_file(), reason="dev data not present")
def test_features_use_the_parameter_sets_kernel_time_and_link_efficiency():
    runs = read_measured(DEV)
    sel = ((runs.mode == "agg") & (runs.engine == "trtllm") & (runs.system == "h200_sxm") & (runs.tp == 8)
           & (runs.isl == 1024) & (runs.osl == 1024) & (runs.concurrency <= 32)
           & np.array(["llama_3_1_70b" in i for i in runs.ids]))
    prep = Prepared(runs.take(sel))
    assert prep.idx.size >= 2 and set(prep.model[prep.idx]) == {"llama-3.1-70b"}
    mod = _module()
    (g,) = prep.gnames
    base = SP.defaults(prep.hw[g], prep.engine_of(g))

    def feats(kernel_s, link):
        params = {g: ("test", {**base, "kernel_time_s": kernel_s, "link_efficiency": link})}
        return mod.decode_features(prep, params), prep.run(params)

    f, pred = feats(20e-6, 0.5)
    kernels = 8 * 80 + 2
    np.testing.assert_allclose(f["t_ovh"], kernels * 20e-6, rtol=1e-9)
    slow, _ = feats(20e-6, 0.1)
    assert np.all(slow["t_comm"] > f["t_comm"])
    tpot = pred.tpot_s[prep.idx]
    assert np.all(f["t_dec"] <= tpot * (1 + 1e-9)) and np.all(f["t_dec"] > 0.5 * tpot)
