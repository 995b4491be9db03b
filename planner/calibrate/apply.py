"""A calibration profile applied: the engine's efficiency from a profile's fitted
figures (no torch here; the profile itself is :mod:`planner.calibrate.profile`)."""

from __future__ import annotations

from planner.calibrate.profile import Profile


def profile_to_efficiency(profile: Profile, hardware=None):
    """The engine's :class:`~planner.cost.efficiency.Efficiency` from a profile.

    The fitted curves are fractions of the profile's reference peaks, so those peaks are
    passed as overrides (for a catalog device they are the spec's own figures). Dtypes
    the profile did not measure fall back to the main curve on the spec's peak."""
    from planner.cost.efficiency import Curve, Efficiency
    from planner.specs import DEFAULT_INTERCONNECT_EFFICIENCY

    f = profile.fitted
    compute = {dt: Curve(float(c["e_max"]), float(c["w_half"])) for dt, c in f["compute"].items()}
    peaks = {dt: float(v) for dt, v in f["peak_flops"].items()}
    main = f.get("main_dtype") or next(iter(f["compute"]))
    info = f.get("info") or {}
    # a serving profile's fitted tile granularity (planner.serving_params ``gemm_rows_half``)
    rows_half, attention, correction = float(f.get("gemm_rows_half", 0.0)), None, ()
    tokens = (f.get("gemm_tokens") or {}).get(main)
    if tokens:
        # GEMM efficiency as a function of rows per pass (the better fit on CPUs): the GEMM
        # curve becomes flat at the row-fit's peak; attention kernels keep the curve in FLOPs
        # measured against the old peak, scaled by how prefill attention compares with it.
        old_peak = peaks[main]
        new_peak = float(tokens["peak_flops"]) * float(tokens["e_max"])
        rows_half = float(tokens["m_half"])
        correction = tuple(sorted((float(m), float(v)) for m, v in (tokens.get("rows_correction") or {}).items()))
        c = f["compute"][main]
        ratio = float(info.get("prefill_attention_vs_gemm_curve", 1.0))
        attention = Curve(min(1.0, float(c["e_max"]) * old_peak / new_peak * ratio), float(c["w_half"]))
        compute[main] = Curve(1.0, 0.0)
        peaks[main] = new_peak
    if main in compute:
        compute.setdefault("*", compute[main])
    interconnect = hardware.interconnect_efficiency if hardware is not None else DEFAULT_INTERCONNECT_EFFICIENCY
    # fitted on measured serving runs (the link_efficiency parameter of planner.serving_params)
    if "interconnect_efficiency" in f:
        interconnect = float(f["interconnect_efficiency"])
    return Efficiency(
        compute=compute,
        memory=Curve(float(f["memory"]["e_max"]), float(f["memory"]["w_half"])),
        interconnect=interconnect,
        kernel_overhead_s=float(f["kernel_overhead_s"]),
        attention_memory=float(f["attention_memory"]),
        expert_bytes_per_s=float(f.get("expert_bytes_per_s", float("inf"))),
        gemm_rows_half=rows_half,
        gemm_rows_correction=correction,
        attention_compute=attention,
        overlap=float(f.get("overlap", 1.0)),
        time_scale=float(f.get("time_scale", 1.0)),
        gemv_row_bytes=float((f.get("gemv") or {}).get("row_bytes", 0.0)),
        gemv_stream_factor=float((f.get("gemv") or {}).get("stream_factor", 1.0)),
        peak_flops_override=peaks,
        peak_bandwidth_override=float(f["peak_bandwidth"]),
        source=f"calibration:{profile.path or profile.hardware}",
    )
