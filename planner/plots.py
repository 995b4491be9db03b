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
        fig = Figure(figsize=(width_in, height_in), layout="constrained")
        yield fig


def _svg(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    return buf.getvalue().decode("utf-8")


def pareto_svg(points: list[dict], y_label: str) -> str:
    """Points: {label, group, x (USD per 1k requests), y, chosen (bool)}; the frontier
    (lower cost, higher y) over all points is drawn as a step line."""
    with _figure() as fig:
        ax = fig.add_subplot()
        groups = sorted({p["group"] for p in points})
        for gi, g in enumerate(groups):
            mine = [p for p in points if p["group"] == g]
            other = [p for p in mine if not p["chosen"]]
            chosen = [p for p in mine if p["chosen"]]
            color, marker = COLORS[gi % len(COLORS)], MARKERS[gi % len(MARKERS)]
            if other:
                ax.scatter([p["x"] for p in other], [p["y"] for p in other], s=14, color=color, marker=marker,
                           alpha=0.35, linewidths=0)
            if chosen:
                ax.scatter([p["x"] for p in chosen], [p["y"] for p in chosen], s=60, color=color, marker=marker,
                           edgecolors="black", linewidths=0.6, label=g, zorder=3)
                for p in chosen:
                    ax.annotate(p["label"], (p["x"], p["y"]), textcoords="offset points", xytext=(5, 4), fontsize=7)
        front = frontier(points, higher_is_better=y_label.startswith("accuracy"))
        if len(front) > 1:
            ax.step([p["x"] for p in front], [p["y"] for p in front], where="post", color="black", linewidth=0.8,
                    linestyle="--", label="Pareto frontier")
        ax.set_xscale("log")
        ax.set_xlabel("USD per 1,000 requests (fleet, with headroom)")
        ax.set_ylabel(y_label)
        if points:
            ax.legend(loc="best", fontsize=7)
        else:
            ax.text(0.5, 0.5, "no configuration meets the SLOs", transform=ax.transAxes, ha="center")
        return _svg(fig)


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
    """Points: {label, intensity (FLOP/byte), flops_s (achieved per device), roof};
    roofs: {name, peak_flops, bandwidth} (one line each, log-log)."""
    import numpy as np

    with _figure() as fig:
        ax = fig.add_subplot()
        xs = [p["intensity"] for p in points] or [1.0]
        lo = min(min(xs) / 4.0, 1.0)
        hi = max(max(xs) * 4.0, max((r["peak_flops"] / r["bandwidth"] for r in roofs), default=100.0) * 4.0)
        ai = np.logspace(np.log10(lo), np.log10(hi), 200)
        for ri, r in enumerate(roofs):
            color = COLORS[ri % len(COLORS)]
            ax.plot(ai, np.minimum(r["peak_flops"], ai * r["bandwidth"]), color=color, linewidth=1.2,
                    label=f"{r['name']} roofline")
        for p in points:
            ri = next(i for i, r in enumerate(roofs) if r["name"] == p["roof"])
            ax.scatter([p["intensity"]], [p["flops_s"]], s=50, color=COLORS[ri % len(COLORS)],
                       marker=MARKERS[ri % len(MARKERS)], edgecolors="black", linewidths=0.6, zorder=3)
            ax.annotate(p["label"], (p["intensity"], p["flops_s"]), textcoords="offset points", xytext=(5, -10),
                        fontsize=7)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("arithmetic intensity (FLOP per byte moved, per request)")
        ax.set_ylabel("FLOP/s per device (achieved at full load)")
        if roofs:
            ax.legend(loc="lower right", fontsize=7)
        return _svg(fig)
