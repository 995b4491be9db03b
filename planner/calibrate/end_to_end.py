"""The end-to-end time scale: what kernel microbenchmarks miss inside a real forward pass.

Isolated GEMMs, GEMVs and attention kernels run a few percent faster than the same
kernels inside a decoder (other operands in the caches, the allocator, the order of the
weight streams; ~10% on the 2-core VM the shipped profile comes from). Calibration
therefore also times a few passes of a synthetic *reference decoder* (its shape is no
catalog model's: hidden 1536, 12/4 heads x 128, SwiGLU 4096, vocab 32768, 2 layers),
predicts them with the profile's own fitted curves, and stores the median ratio
measured / predicted as ``fitted.time_scale``; the engine multiplies every pass by it.
``planner validate`` then checks other models' shapes against it.

Both synthetic decoders (the reference one and the tiny one whose step time is fixed
costs only) live here. torch-free (the measurements come from
:mod:`planner.calibrate.kernels`, which imports this module, never the other way).
"""

from __future__ import annotations

import math
import statistics


def tiny_model(layers: int):
    """A decoder with negligible work per kernel: its step time is fixed costs only."""
    from planner.specs import Model

    return Model(name="tiny", hidden_size=64, num_layers=layers, num_heads=4, num_kv_heads=2, head_dim=16,
                 intermediate_size=128, vocab_size=256, tie_embeddings=True, qk_norm=True,
                 published_total_params=1e5, sources={})


def reference_model(tiny: bool = False):
    """The synthetic decoder the end-to-end passes run (``tiny``: negligible work, tests)."""
    from planner.specs import Model

    if tiny:
        return tiny_model(1)
    return Model(name="reference-decoder", hidden_size=1536, num_layers=2, num_heads=12, num_kv_heads=4,
                 head_dim=128, intermediate_size=4096, vocab_size=32768, tie_embeddings=False,
                 published_total_params=1.5e8, sources={})


def fit_time_scale(fitted: dict, measurements: list[dict], hardware) -> tuple[float, float] | None:
    """``(scale, rms_log_error)``: the median of measured / predicted seconds over the
    ``decoder`` measurements (predicted with ``fitted`` at scale 1 on ``hardware``), and
    the spread of the ratios around it; None without such measurements."""
    from planner.calibrate.apply import profile_to_efficiency
    from planner.calibrate.profile import Profile
    from planner.cost.api import estimate

    rows = [r for r in measurements if r.get("kind") == "decoder"]
    if not rows:
        return None
    eff = profile_to_efficiency(Profile(hardware=hardware.name, device={}, torch_version="", threads=0, date="",
                                        fitted={**fitted, "time_scale": 1.0}), hardware)
    ratios = []
    for r in rows:
        model = reference_model(tiny=bool(r.get("tiny")))
        dt = r["dtype"]
        est = estimate(model, hardware, batch=int(r["batch"]), prompt_len=int(r["context"]), gen_len=1,
                       weight_dtype=dt, act_dtype=dt, kv_dtype=dt, efficiency=eff)
        predicted = est["prefill_s"] if r["phase"] == "prefill" else est["decode_s"]
        ratios.append(float(r["seconds"]) / float(predicted))
    scale = statistics.median(ratios)
    rms = math.sqrt(sum(math.log(x / scale) ** 2 for x in ratios) / len(ratios))
    return scale, rms
