"""Report plots as deterministic SVG (matplotlib, Agg-free Figure API, imported lazily).

Determinism: a fixed ``svg.hashsalt`` (element ids), no date or creator in the metadata,
text kept as text (``svg.fonttype: none``), fixed figure size and DPI. Same inputs give
byte-identical SVG for one matplotlib version.
"""

from __future__ import annotations

import io
from contextlib import contextmanager

RC = {
    "svg.hashsalt": "planner-report",
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.size": 9.0,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "figure.dpi": 100,
    "savefig.dpi": 100,
}
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f",
          "#bcbd22")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


class PlotsUnavailable(RuntimeError):
    pass


@contextmanager
def _figure(width_in: float = 7.5, height_in: float = 4.6):
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise PlotsUnavailable("matplotlib is not installed (pip install 'planner[report]')") from exc
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(width_in, height_in))
        yield fig


def log_ticks(lo: float, hi: float) -> list[float]:
    """Tick values for a log axis from ``lo`` to ``hi``: 1-2-5 steps when it spans under
    about two decades, else whole decades (every other one past eight)."""
    import math

    if not (0 < lo < hi and math.isfinite(hi)):
        return []
    k0, k1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    steps = (1.0, 2.0, 5.0) if hi / lo < 100.0 else (1.0,)
    every = 2 if k1 - k0 > 8 else 1
    ticks = [m * 10.0 ** k for k in range(k0, k1 + 1) if (k - k0) % every == 0 or len(steps) > 1 for m in steps]
    return [t for t in ticks if lo <= t <= hi]


def _log_axis(ax, name: str, lo: float, hi: float) -> None:
    """A log axis over [lo, hi] with explicit ticks labelled in plain text ("0.3", "20",
    "1e+06"), no minor ticks. matplotlib's default log ticks (mathtext powers of ten,
    parsed by pyparsing, and a tick object per minor tick) were most of a plot's time."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    axis = getattr(ax, f"{name}axis")
    getattr(ax, f"set_{name}scale")("log")
    getattr(ax, f"set_{name}lim")(lo, hi)
    axis.set_major_locator(FixedLocator(log_ticks(lo, hi)))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:.4g}"))
    axis.set_minor_locator(NullLocator())


def _legend_right(fig, handles, labels: list[str]) -> None:
    """The legend outside the axes on the right, the axes given what it leaves (fixed
    margins: a layout engine would draw the figure twice to measure it)."""
    width_in = fig.get_figwidth()
    chars = max((len(s) for s in labels), default=0)
    legend_in = min(0.45 * width_in, 0.45 + chars * 7 * 0.55 / 72.0)  # marker + text at 7 pt
    right = 1.0 - legend_in / width_in
    fig.subplots_adjust(left=0.09, bottom=0.11, right=right - 0.01, top=0.97)
    if handles:
        fig.legend(handles=handles, labels=labels, loc="upper left", bbox_to_anchor=(right, 0.97), fontsize=7,
                   frameon=False)


def _svg(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    return buf.getvalue().decode("utf-8")


def pareto_svg(points: list[dict], y_label: str) -> str:
    """Points: {label, model, hardware, x (USD per 1k requests), y, chosen (bool)}: colour
    by model, marker by device; the frontier (lower cost, better y) over all points is a
    dashed step line, and its chosen points are labelled."""
    with _figure(8.6, 4.8) as fig:
        from matplotlib.lines import Line2D

        ax = fig.add_subplot()
        models = sorted({p["model"] for p in points})
        devices = sorted({p["hardware"] for p in points})
        color = {m: COLORS[i % len(COLORS)] for i, m in enumerate(models)}
        marker = {h: MARKERS[i % len(MARKERS)] for i, h in enumerate(devices)}
        for m in models:
            for h in devices:
                mine = [p for p in points if p["model"] == m and p["hardware"] == h]
                for chosen, size, alpha in ((False, 14, 0.35), (True, 60, 1.0)):
                    pts = [p for p in mine if p["chosen"] == chosen]
                    if pts:
                        ax.scatter([p["x"] for p in pts], [p["y"] for p in pts], s=size, color=color[m],
                                   marker=marker[h], alpha=alpha, edgecolors="black" if chosen else "none",
                                   linewidths=0.6 if chosen else 0, zorder=3 if chosen else 2)
        better = not y_label.startswith("mean end-to-end")
        front = frontier(points, higher_is_better=better)
        if len(front) > 1:
            ax.step([p["x"] for p in front], [p["y"] for p in front], where="post", color="black", linewidth=0.8,
                    linestyle="--", zorder=1)
        labelled = {id(p) for p in points if p["chosen"]} | {id(p) for p in front}
        shown = [p for p in points if id(p) in labelled and p["label"]]
        # leader lines while few labels (an arrow patch per label is most of a crowded plot's time)
        lead = {"arrowstyle": "-", "linewidth": 0.4, "color": "#888888"} if len(shown) <= MAX_LEADER_LINES else None
        for p, dy in _staggered(shown, better):
            ax.annotate(p["label"], (p["x"], p["y"]), textcoords="offset points", xytext=(4, dy),
                        fontsize=7 if p["chosen"] else 6, arrowprops=lead)
        _sane_limits(ax, points, better)
        ax.set_xlabel("USD per 1,000 requests (fleet, with headroom)")
        ax.set_ylabel(y_label)
        if points:
            handles = [Line2D([], [], linestyle="", marker="o", color=color[m]) for m in models]
            handles += [Line2D([], [], linestyle="", marker=marker[h], color="#555555") for h in devices]
            handles.append(Line2D([], [], color="black", linestyle="--", linewidth=0.8))
            _legend_right(fig, handles, [*models, *devices, "Pareto frontier"])
        else:
            _legend_right(fig, [], [])
            ax.text(0.5, 0.5, "no configuration meets the SLOs", transform=ax.transAxes, ha="center")
        return _svg(fig)


LABEL_OFFSETS_PT = (8, -14, 22, -28, 36, -42)
MAX_LEADER_LINES = 16


def _staggered(points: list[dict], accuracy_axis: bool) -> list[tuple[dict, int]]:
    """Vertical label offsets (points) so that labels of points at about the same height
    (within 2% of the axis) alternate above and below instead of printing over each other."""
    span = 1.0 if accuracy_axis else max((p["y"] for p in points), default=1.0) or 1.0
    out, rows = [], {}
    for p in sorted(points, key=lambda p: (p["y"], p["x"])):
        key = round(p["y"] / (0.02 * span))
        i = rows[key] = rows.get(key, -1) + 1
        out.append((p, LABEL_OFFSETS_PT[i % len(LABEL_OFFSETS_PT)]))
    return out


def _sane_limits(ax, points: list[dict], accuracy_axis: bool) -> None:
    """Axes that do not exaggerate: accuracy spans 0 to 1 (a 0.32-0.40 axis makes 8 points
    look like a cliff); latency starts at 0; cost (log) gets half a decade of margin."""
    xs = [p["x"] for p in points if p["x"] > 0]
    if not xs:
        ax.set_xscale("log")
        return
    _log_axis(ax, "x", min(xs) / 1.6, max(xs) * 1.6)
    if accuracy_axis:
        ax.set_ylim(0.0, 1.0)
    else:
        ax.set_ylim(0.0, max(p["y"] for p in points) * 1.15 or 1.0)


def frontier(points: list[dict], higher_is_better: bool = True) -> list[dict]:
    """Points no other point beats on both lower x and better y, by increasing x."""
    sign = 1.0 if higher_is_better else -1.0
    best = None
    out = []
    for p in sorted(points, key=lambda p: (p["x"], -sign * p["y"], p["label"])):
        if best is None or sign * p["y"] > best:
            out.append(p)
            best = sign * p["y"]
    return out


def roofline_svg(points: list[dict], roofs: list[dict]) -> str:
    """Points: {label, hardware, intensity (FLOP/byte), flops_s (achieved per device)};
    roofs: {name, hardware, dtype, peak_flops, bandwidth}. Colour and marker by device,
    line style by compute dtype (solid: 16-bit, dashed: 8-bit, dotted: other)."""
    import numpy as np

    devices = sorted({r["hardware"] for r in roofs} | {p["hardware"] for p in points})
    color = {h: COLORS[i % len(COLORS)] for i, h in enumerate(devices)}
    marker = {h: MARKERS[i % len(MARKERS)] for i, h in enumerate(devices)}
    style = {"bf16": "-", "fp16": "-", "fp8": "--", "int8": "--"}
    with _figure(8.6, 4.8) as fig:
        ax = fig.add_subplot()
        xs = [p["intensity"] for p in points] or [1.0]
        lo = min(min(xs) / 4.0, 1.0)
        hi = max(max(xs) * 4.0, max((r["peak_flops"] / r["bandwidth"] for r in roofs), default=100.0) * 4.0)
        ai = np.logspace(np.log10(lo), np.log10(hi), 200)
        for r in sorted(roofs, key=lambda r: (r["hardware"], r["dtype"])):
            ax.plot(ai, np.minimum(r["peak_flops"], ai * r["bandwidth"]), color=color[r["hardware"]], linewidth=1.2,
                    linestyle=style.get(r["dtype"], ":"), label=f"{r['hardware']} {r['dtype']}")
        for h in devices:  # one scatter call per device
            mine = [p for p in points if p["hardware"] == h]
            if mine:
                ax.scatter([p["intensity"] for p in mine], [p["flops_s"] for p in mine], s=50, color=color[h],
                           marker=marker[h], edgecolors="black", linewidths=0.6, zorder=3)
        if len(points) <= 12:
            for p in points:
                ax.annotate(p["label"], (p["intensity"], p["flops_s"]), textcoords="offset points",
                            xytext=(5, -10), fontsize=7)
        ys = [p["flops_s"] for p in points if p["flops_s"] > 0]
        ys += [float(v) for r in roofs for v in np.minimum(r["peak_flops"], ai[[0, -1]] * r["bandwidth"]) if v > 0]
        _log_axis(ax, "x", lo, hi)
        if ys:
            _log_axis(ax, "y", min(ys) / 2.0, max(ys) * 2.0)
        else:
            ax.set_yscale("log")
        ax.set_xlabel("arithmetic intensity (FLOP per byte moved, per request)")
        ax.set_ylabel("FLOP/s per device (achieved at full load)")
        handles, labels = ax.get_legend_handles_labels()
        _legend_right(fig, handles, labels)
        return _svg(fig)
