"""Comparing two calibration profiles by the figures a user feels (``planner calibrate
--compare``): achieved FLOP/s and bandwidth at a few sizes, the attention factor and the
per-kernel overhead, each change flagged beyond a threshold."""

from __future__ import annotations

from planner.calibrate.profile import Profile

FLAG_THRESHOLD = 0.10


def _rate(c: dict, peak: float, w: float) -> float:
    """Achieved rate (FLOP/s or B/s) of a kernel of work ``w`` (FLOPs or bytes) on the
    profile curve ``c``: ``peak * e(w)``, the engine's :class:`~planner.cost.efficiency.Curve`
    ``e(w) = e_max w / (w + w_half)``."""
    from planner.cost.efficiency import Curve

    return peak * float(Curve(float(c["e_max"]), float(c["w_half"]))(w))


def effective_figures(profile: Profile) -> dict[str, tuple[float, str, bool]]:
    """Figures a user feels, each ``(value, unit, higher_is_better)``: achieved FLOP/s of
    small and large GEMMs per dtype, achieved bandwidth for 1 MiB and 256 MiB kernels,
    decode-attention bandwidth, per-kernel overhead."""
    f = profile.fitted
    out: dict[str, tuple[float, str, bool]] = {}
    for dt, c in sorted(f["compute"].items()):
        peak = float(f["peak_flops"].get(dt, 0.0))
        if peak <= 0:
            continue
        out[f"peak FLOP/s {dt}"] = (peak * float(c["e_max"]), "FLOP/s", True)
        out[f"GEMM FLOP/s {dt} at 100 MFLOP"] = (_rate(c, peak, 1e8), "FLOP/s", True)
        out[f"GEMM FLOP/s {dt} at 10 GFLOP"] = (_rate(c, peak, 1e10), "FLOP/s", True)
    bw = float(f["peak_bandwidth"])
    out["peak bandwidth"] = (bw, "B/s", True)
    out["streaming B/s at 1 MiB"] = (_rate(f["memory"], bw, 1 << 20), "B/s", True)
    out["streaming B/s at 256 MiB"] = (_rate(f["memory"], bw, 256 << 20), "B/s", True)
    out["decode attention B/s at 64 MiB"] = (_rate(f["memory"], bw, 64 << 20) * float(f["attention_memory"]), "B/s", True)
    out["attention memory factor"] = (float(f["attention_memory"]), "", True)
    out["kernel overhead"] = (float(f["kernel_overhead_s"]), "s", False)
    return out


def compare_profiles(old: Profile, new: Profile, threshold: float = FLAG_THRESHOLD) -> list[dict]:
    """Rows ``{figure, unit, old, new, change, verdict, flagged}``: ``change`` = new/old - 1;
    ``verdict`` is slower/faster from the user's side; ``flagged`` when |change| > threshold."""
    a, b = effective_figures(old), effective_figures(new)
    rows = []
    for key in list(a) + [k for k in b if k not in a]:
        if key not in a or key not in b:
            va = a.get(key, (None, "", True))[0]
            vb = b.get(key, (None, "", True))[0]
            rows.append({"figure": key, "unit": (a.get(key) or b.get(key))[1], "old": va, "new": vb,
                         "change": None, "verdict": "only in one", "flagged": True})
            continue
        (va, unit, higher_better), (vb, _, _) = a[key], b[key]
        change = vb / va - 1.0 if va else float("inf")
        if abs(change) <= 1e-12:
            verdict = "same"
        else:
            better = (change > 0) == higher_better
            verdict = "faster" if better else "slower"
        rows.append({"figure": key, "unit": unit, "old": va, "new": vb, "change": change, "verdict": verdict,
                     "flagged": abs(change) > threshold})
    return rows
