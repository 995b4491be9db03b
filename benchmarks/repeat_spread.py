"""How much of the serving error the measured file itself forces: its repeat spread.

Rows equal in every fact the replay reads (every parsed column of
planner.measured.MeasuredRuns but the id, line and measured times: model, device, engine,
version, precision, mode, lengths, range ratio, concurrency, layouts, worker columns, draft
tokens, harness settings) get one prediction from any model of those facts; where their
measured times differ, no such model fits them all. The script groups the rows so, checks
that the replay (the shipped profiles) predicts every member of a group identically (a
group where it does not means a fact is missing from the key: listed), and prints

* the groups with more than one row, the rows in them, and their within-group spread of
  measured TTFT and TPOT (max / min: median, p90, the worst groups with their ids);
* the **floor**: median and p90 over ALL rows of ``|c / measured - 1|`` for the best
  predictor ``c`` that is constant within each group, taken per group as the value that
  minimises ``sum |log(c / measured)|`` over its rows (the median in log space: the
  geometric mean of the two middle values for an even group; a one-row group's error is 0).
  It is exact for that loss: no within-group-constant predictor has a smaller sum of
  ``|log|`` errors. For the median of ``|c / m - 1|`` it is the figure of that predictor,
  not a strict bound (``c`` on one member of a pair: 0 there, ``|a / b - 1|`` on the other,
  can give a lower median over the file; tests/test_repeat_spread.py shows one); by slice
  (engine, model, device, precision, concurrency band) as planner.replay_scoring slices
  benchmarks/serving_fidelity.py's tables, beside the shipped profiles' in-sample error,
  and the spread by model and mode;
* the other way round, **the same run under different facts**: rows whose measured TTFT
  and TPOT are both equal but whose facts are not (a model label, a layout encoding), by
  the facts that differ, with the replay's spread between the readings;
* a last table, **near twins**: rows at most 8 requests in flight that differ ONLY in the
  output length. It rests on a physical claim, not on the data alone: at that concurrency a
  new request's prompt waits at most a few decode steps, so its TTFT should not depend on
  how many tokens it then generates. Per group the TTFT spread, the share of the rows whose
  TTFT is more than 25% from the group's (log-)median, and, to check the claim against the
  model, the spread of the replay's predicted TTFT in the same groups.

Run: python benchmarks/repeat_spread.py [FILE.csv] [--json] [--worst N]
(default ../shared/data/serving-measured-hopper-dev.csv; a few seconds).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from planner.errors import InputError  # noqa: E402
from planner.measured import MeasuredRuns, fact_columns, group_ids, read_measured  # noqa: E402
from planner.replay_rows import in_flight  # noqa: E402
from planner.replay_scoring import SLICES, error_stats, errors, slice_keys, summarize  # noqa: E402

DEFAULT = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "serving-measured-hopper-dev.csv"
NEAR_TWIN_MAX_IN_FLIGHT = 8   # requests in flight up to which the prompt waits at most a few steps
NEAR_TWIN_OFF = 0.25          # "differs": more than 25% from the group's median
SAME_PREDICTION_RTOL = 1e-9   # members of a group must replay to the same times (float noise only)
COPY_RTOL = 1e-9              # measured times this close are one run recorded twice (a copy)
WITHIN = 0.25                 # no constant is within 25% of two values more than 1.25 / 0.75 apart


def _ordered(values: np.ndarray, groups: np.ndarray):
    """Rows sorted by (group, value), each group's start and size."""
    order = np.lexsort((values, groups))
    g = groups[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    sizes = np.diff(np.r_[starts, g.size])
    return order, g[starts], starts, sizes


def log_median(values, groups) -> np.ndarray:
    """Per row, its group's median in log space: the middle value of an odd group, the
    geometric mean ``sqrt(a b)`` of the two middle ones of an even group; the ``c``
    minimising ``sum |log(c / v)|`` over the group (any ``c`` in ``[a, b]`` does for an even
    group: the geometric mean is the one whose worst ratio is smallest). Rows whose value is
    not > 0 neither count nor get one (NaN)."""
    v = np.asarray(values, dtype=float)
    g = np.asarray(groups)
    out = np.full(v.size, np.nan)
    ok = np.flatnonzero(v > 0)
    if ok.size == 0:
        return out
    order, gid, starts, sizes = _ordered(v[ok], g[ok])  # sorted by value = sorted by its log
    vs = v[ok][order]
    lo, hi = vs[starts + (sizes - 1) // 2], vs[starts + sizes // 2]
    mid = np.where(lo == hi, lo, np.sqrt(lo * hi))  # a one-row group: its own value, exactly
    center = np.empty(ok.size)
    center[order] = np.repeat(mid, sizes)
    out[ok] = center
    return out


def floor_errors(measured, groups) -> np.ndarray:
    """``c / measured - 1`` per row for the group's log-median ``c`` (NaN where not measured)."""
    m = np.asarray(measured, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return log_median(m, groups) / m - 1.0


def group_spread(values, groups) -> dict[int, float]:
    """group -> max / min of its values that are > 0 (groups with at least two of them)."""
    v = np.asarray(values, dtype=float)
    g = np.asarray(groups)
    ok = np.flatnonzero(v > 0)
    if ok.size == 0:
        return {}
    order, gid, starts, sizes = _ordered(v[ok], g[ok])
    vs = v[ok][order]
    ratio = vs[starts + sizes - 1] / vs[starts]
    return {int(k): float(r) for k, r, n in zip(gid, ratio, sizes) if n > 1}


def _stats(x) -> dict:
    x = np.asarray(list(x), dtype=float)
    if x.size == 0:
        return {"n": 0, "median": None, "p90": None, "max": None}
    return {"n": int(x.size), "median": float(np.median(x)), "p90": float(np.percentile(x, 90)),
            "max": float(x.max())}


def _describe(runs: MeasuredRuns, rows: np.ndarray, conc: np.ndarray) -> str:
    i = rows[0]
    ver = f" {runs.engine_version[i]}" if runs.engine_version[i] else ""
    tp = f"tp {runs.tp[i]:.0f}, " if runs.mode[i] == "agg" else ""  # disaggregated: per side, not shown
    return (f"{runs.model[i]} {runs.system[i]} {runs.engine[i]}{ver} {runs.quant[i]} {runs.mode[i]} "
            f"{tp}{runs.isl[i]:.0f} in, {conc[i]:.0f} in flight")


def _worst(runs, groups, spread: dict, measured_s, conc, n: int, by_osl: bool = False) -> list[dict]:
    out = []
    for g, r in sorted(spread.items(), key=lambda kv: -kv[1])[:n]:
        rows = np.flatnonzero(groups == g)
        rows = rows[np.argsort(measured_s[rows])]
        facts = _describe(runs, rows, conc) + ("" if by_osl else f", {runs.osl[rows[0]]:.0f} out")
        out.append({"ratio": r, "group": int(g), "facts": facts,
                    "rows": [{"id": str(runs.ids[i]), "osl": float(runs.osl[i]),
                              "measured_ms": float(measured_s[i] * 1e3)} for i in rows]})
    return out


def analyse(runs: MeasuredRuns, pred, worst: int = 8) -> dict:
    """Everything the script prints, from the file's runs and a replay of them (``pred``,
    planner.replay.Prediction; the shipped profiles' in the script). The floor is scored as
    a prediction of its own (each row's group log-median) through
    planner.replay_scoring.summarize, so its slices are serving_fidelity's."""
    cols = fact_columns(runs)
    groups = group_ids(cols)
    sizes = np.bincount(groups)
    multi = sizes[groups] > 1
    conc = in_flight(runs)
    ok = pred.status == "ok"
    # copies: rows equal in every fact AND both measured times to 1e-9 (one run recorded twice)
    with np.errstate(divide="ignore", invalid="ignore"):
        same = group_ids({**cols, **{k: np.round(np.log(m) / COPY_RTOL) for k, m in
                                     (("ttft", runs.measured_ttft_s), ("tpot", runs.measured_tpot_s))}})
    out = {"rows": len(runs), "fact_sets": int(sizes.size), "groups_multi": int((sizes > 1).sum()),
           "rows_in_multi": int(multi.sum()), "copies": int(len(runs) - np.unique(same).size), "key": list(cols)}
    # the key's check: every member of a group replayed to the same times
    bad = []
    for name, p in (("ttft", pred.ttft_s), ("tpot", pred.tpot_s)):
        sp = group_spread(np.where(ok, p, np.nan), groups)
        bad += [(name, g, r) for g, r in sp.items() if r - 1.0 > SAME_PREDICTION_RTOL]
    out["prediction_not_constant"] = [{"metric": m, "ratio": r, "ids": [str(x) for x in runs.ids[groups == g]]}
                                      for m, g, r in bad]
    floor = dataclasses.replace(pred, ttft_s=log_median(runs.measured_ttft_s, groups),
                                tpot_s=log_median(runs.measured_tpot_s, groups),
                                status=np.full(len(runs), "ok", dtype=object))
    scored = {"floor": summarize(floor, runs), "in_sample": summarize(pred, runs)}
    e_floor = dict(zip(("ttft", "tpot"), errors(floor, runs)))
    e_in = dict(zip(("ttft", "tpot"), errors(pred, runs)))
    keys = slice_keys(pred, runs)
    for name, meas in (("ttft", runs.measured_ttft_s), ("tpot", runs.measured_tpot_s)):
        fe = e_floor[name]
        sp = group_spread(meas, groups)
        differ = [r for r in sp.values() if r > 1.01]
        wide = [g for g, r in sp.items() if r > (1 + WITHIN) / (1 - WITHIN)]
        with np.errstate(divide="ignore", invalid="ignore"):
            log_in, log_floor = np.abs(np.log1p(e_in[name])), np.abs(np.log1p(fe))
        both = ok & np.isfinite(log_in) & np.isfinite(log_floor)
        out[name] = {
            "spread": _stats(sp.values()), "spread_differing": _stats(differ),  # > 1% apart: not copies
            # groups where ANY within-group constant is more than 25% off at least one member
            "groups_beyond_25": len(wide), "rows_in_groups_beyond_25": int(np.isin(groups, wide).sum()),
            "rows_floor_over_25": int((np.abs(fe) > WITHIN).sum()),
            # the exact loss: mean |log(pred / meas)|, the floor's share of the in-sample one
            "mean_abs_log": {"floor": float(log_floor[both].mean()) if both.any() else None,
                             "in_sample": float(log_in[both].mean()) if both.any() else None},
            **{k: v[name] for k, v in scored.items()},
            "floor_multi": error_stats(fe[multi]), "in_sample_multi": error_stats(e_in[name][ok & multi]),
            "worst": _worst(runs, groups, sp, meas, conc, worst),
            "by_slice": {sl: [{"value": f["value"], "rows": int((keys[sl] == f["value"]).sum()),
                               "rows_in_multi": int(((keys[sl] == f["value"]) & multi).sum()),
                               "floor": f[name], "in_sample": i[name]}
                              for f, i in zip(scored["floor"]["by_slice"][sl], scored["in_sample"]["by_slice"][sl])]
                         for sl in SLICES}}
    out["spread_by_model_mode"] = _spread_by(runs, pred, groups)
    out["near_twins"] = near_twins(runs, pred, cols, conc, worst)
    out["relabelled"] = relabelled(runs, pred, cols, groups)
    return out


def _spread_by(runs: MeasuredRuns, pred, groups: np.ndarray) -> list[dict]:
    """Per (model, mode): the groups with more than one row, those whose members differ by
    more than 1%, and the median and largest max / min of TTFT and TPOT over its groups."""
    sp = {m: group_spread(v, groups) for m, v in (("ttft", runs.measured_ttft_s), ("tpot", runs.measured_tpot_s))}
    first = {int(g): int(i) for i, g in reversed(list(enumerate(groups)))}
    out: dict[tuple, dict] = {}
    for g in sp["ttft"]:
        key = (str(pred.model[first[g]]), str(runs.mode[first[g]]))
        e = out.setdefault(key, {"model": key[0], "mode": key[1], "ttft": [], "tpot": []})
        for m in ("ttft", "tpot"):
            e[m].append(sp[m].get(g, 1.0))
    return [{"model": e["model"], "mode": e["mode"], "groups": len(e["ttft"]),
             **{m: {"differing": int(sum(r > 1.01 for r in e[m])), **_stats(e[m])} for m in ("ttft", "tpot")}}
            for _, e in sorted(out.items())]


def relabelled(runs: MeasuredRuns, pred, cols: dict, groups: np.ndarray) -> dict:
    """The other way round: rows whose measured TTFT and TPOT are both equal (to COPY_RTOL)
    but whose facts differ: one run recorded under two readings (a model label, a layout
    encoding). Counted by the facts that differ, with the replay's spread between the
    readings (it predicts the same run twice; a leave-one-model-out fit sees the copy of a
    left-out model's row under the other label)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        times = group_ids({k: np.round(np.log(m) / COPY_RTOL) for k, m in
                           (("ttft", runs.measured_ttft_s), ("tpot", runs.measured_tpot_s))})
    measured = (runs.measured_ttft_s > 0) & (runs.measured_tpot_s > 0)
    by_facts: dict[str, int] = {}
    sets, rows_in, spread_t, spread_p, worst = 0, 0, [], [], (0.0, [])
    for k in np.unique(times[measured]):
        rows = np.flatnonzero((times == k) & measured)
        if rows.size < 2 or np.unique(groups[rows]).size < 2:
            continue
        sets, rows_in = sets + 1, rows_in + rows.size
        differ = [n for n, v in cols.items()
                  if np.unique(np.nan_to_num(v[rows], nan=-1.0) if v.dtype.kind == "f" else v[rows]).size > 1]
        key = ", ".join(differ)
        by_facts[key] = by_facts.get(key, 0) + 1
        ok = rows[pred.status[rows] == "ok"]
        if ok.size > 1:
            spread_t.append(pred.ttft_s[ok].max() / pred.ttft_s[ok].min())
            if spread_t[-1] > worst[0]:
                worst = (float(spread_t[-1]), [str(x) for x in runs.ids[ok]])
            spread_p.append(pred.tpot_s[ok].max() / pred.tpot_s[ok].min())
    return {"sets": sets, "rows": rows_in, "by_facts": dict(sorted(by_facts.items(), key=lambda kv: -kv[1])),
            "predicted_spread_ttft": _stats(spread_t), "predicted_spread_tpot": _stats(spread_p),
            "worst_ttft": {"ratio": worst[0], "ids": worst[1]}}


def near_twins(runs: MeasuredRuns, pred, cols: dict, conc: np.ndarray, worst: int) -> dict:
    """Rows at <= NEAR_TWIN_MAX_IN_FLIGHT in flight equal in every fact but the output length,
    in groups holding at least two output lengths: their measured TTFT spread, the share of
    rows off their group's log-median by more than NEAR_TWIN_OFF, and the replay's TTFT
    spread in the same groups (the physical claim checked against the model)."""
    low = (conc <= NEAR_TWIN_MAX_IN_FLIGHT) & (runs.measured_ttft_s > 0)
    groups = np.where(low, group_ids(cols, drop=("osl",)), -1)
    keep = np.zeros(len(runs), dtype=bool)
    for g in np.unique(groups[low]):
        rows = groups == g
        keep[rows] = np.unique(runs.osl[rows]).size > 1
    groups = np.where(keep, groups, -1)
    meas = np.where(keep, runs.measured_ttft_s, np.nan)
    center = log_median(meas, groups)
    off = np.abs(meas / center - 1.0)
    spread = group_spread(meas, groups)
    ok = keep & (pred.status == "ok")
    predicted = group_spread(np.where(ok, pred.ttft_s, np.nan), groups)
    return {"max_in_flight": NEAR_TWIN_MAX_IN_FLIGHT, "off_threshold": NEAR_TWIN_OFF,
            "groups": len(spread), "rows": int(keep.sum()),
            "rows_off": int((off[keep] > NEAR_TWIN_OFF).sum()),
            "share_off": float((off[keep] > NEAR_TWIN_OFF).mean()) if keep.any() else None,
            "spread": _stats(spread.values()), "predicted_spread": _stats(predicted.values()),
            "floor": error_stats(off[keep]), "in_sample": error_stats(errors(pred, runs)[0][ok]),
            "by_model": {str(m): {"rows": int((keep & (pred.model == m)).sum()),
                                  "rows_off": int((keep & (pred.model == m) & (off > NEAR_TWIN_OFF)).sum())}
                         for m in sorted(set(pred.model[keep].tolist()))},
            "worst": [{**w, "slope": _life_slope(runs, conc, groups == w["group"])}
                      for w in _worst(runs, groups, spread, runs.measured_ttft_s, conc, worst, by_osl=True)]}


def _life_slope(runs: MeasuredRuns, conc: np.ndarray, rows: np.ndarray) -> float | None:
    """The least-squares slope of measured TTFT on ``osl x TPOT / C`` (a request's decode
    time over the requests in flight: the mean gap between completions of a closed loop)
    over ``rows``; 1 reads as a prompt waiting one such gap. None where that does not vary."""
    x = runs.osl[rows] * runs.measured_tpot_s[rows] / conc[rows]
    return float(np.polyfit(x, runs.measured_ttft_s[rows], 1)[0]) if np.ptp(x) > 0 else None


def _x(v) -> str:
    """A max / min ratio, or "-" where there is none."""
    return "-" if v is None else f"{v:.3g}x"


def _pct(x) -> str:
    return "-" if x is None else f"{x:.1%}"


def _cell(st: dict) -> str:
    return f"{_pct(st['median_abs'])} ({_pct(st['p90_abs'])})"


def print_report(a: dict, path: str) -> None:
    print(f"{path}: {a['rows']} rows, {a['fact_sets']} distinct sets of the facts the replay reads; "
          f"{a['groups_multi']} sets hold more than one row ({a['rows_in_multi']} rows; {a['copies']} rows are copies, "
          "equal in both measured times to 1e-9 too)")
    bad = a["prediction_not_constant"]
    print("check: the replay (shipped profiles) predicts every member of each group identically: "
          + ("yes" if not bad else f"NO, {len(bad)} groups differ (a fact is missing from the key):"))
    for b in bad:
        print(f"  {b['metric']} x{b['ratio']:.6g}: {', '.join(b['ids'])}")
    print("\nwithin-group spread of the measured times (max / min, groups with more than one row):")
    for m in ("ttft", "tpot"):
        s = a[m]["spread"]
        x = a[m]
        d = x["spread_differing"]
        print(f"  {m.upper()}: median {_x(s['median'])}, p90 {_x(s['p90'])}, worst {_x(s['max'])}; "
              f"{d['n']} of {s['n']} groups differ by more than 1% (their median {_x(d['median'])}, p90 "
              f"{_x(d['p90'])}); {x['groups_beyond_25']} groups "
              f"({x['rows_in_groups_beyond_25']} rows) are more than {(1 + WITHIN) / (1 - WITHIN):.3g}x apart: "
              "no value "
              f"is within {WITHIN:.0%} of all their members")
    print("\nfloor: median |error| (p90) over all rows of the best predictor constant within each group "
          "(its log-median)\n  beside the shipped profiles' in-sample error:")
    for m in ("ttft", "tpot"):
        x = a[m]
        print(f"  {m.upper()}: floor {_cell(x['floor'])}, in-sample {_cell(x['in_sample'])}; on the "
              f"{a['rows_in_multi']} rows in groups: floor {_cell(x['floor_multi'])}, "
              f"in-sample {_cell(x['in_sample_multi'])}; "
              f"rows beyond {WITHIN:.0%} at the floor: {x['rows_floor_over_25']}")
        ml = x["mean_abs_log"]
        if ml["in_sample"]:
            print(f"        mean |log(pred / meas)| (the loss the floor minimises exactly): floor {ml['floor']:.4f}, "
                  f"in-sample {ml['in_sample']:.4f} ({ml['floor'] / ml['in_sample']:.1%} of it forced by the repeats)")
    head = f"\n{'slice':<12} {'value':<18} {'rows':>5} {'in grp':>6}   {'floor TTFT':>15} {'in-sample':>15}   " \
           f"{'floor TPOT':>15} {'in-sample':>15}"
    print(head)
    print("-" * (len(head) - 1))
    for sl in a["ttft"]["by_slice"]:
        for et, ep in zip(a["ttft"]["by_slice"][sl], a["tpot"]["by_slice"][sl]):
            print(f"{sl:<12} {str(et['value']):<18} {et['rows']:>5} {et['rows_in_multi']:>6}   "
                  f"{_cell(et['floor']):>15} {_cell(et['in_sample']):>15}   "
                  f"{_cell(ep['floor']):>15} {_cell(ep['in_sample']):>15}")
    print("\nby model and mode: groups with more than one row; groups differing by more than 1%, median and "
          "largest max / min")
    for e in a["spread_by_model_mode"]:
        t, p = e["ttft"], e["tpot"]
        print(f"  {e['model']:<18} {e['mode']:<7} {e['groups']:>3} groups   TTFT {t['differing']:>3} differ, "
              f"median {t['median']:.3f}x, largest {t['max']:.3g}x   TPOT {p['differing']:>3} differ, "
              f"median {p['median']:.3f}x, largest {p['max']:.3g}x")
    for m in ("ttft", "tpot"):
        print(f"\nworst groups by {m.upper()} spread (measured ms, lowest first):")
        for w in a[m]["worst"]:
            print(f"  {w['ratio']:.2f}x  {w['facts']}: "
                  + ", ".join(f"{r['id']} {r['measured_ms']:.4g}" for r in w["rows"]))
    rl = a["relabelled"]
    if rl["sets"]:
        print(f"\nthe same run under different facts (measured TTFT and TPOT both equal, facts not): "
              f"{rl['sets']} sets, {rl['rows']} rows; by the facts that differ:")
        for k, v in rl["by_facts"].items():
            print(f"  {v:>3}  {k}")
        t, p = rl["predicted_spread_ttft"], rl["predicted_spread_tpot"]
        if t["n"]:
            print(f"  the replay's max / min between the readings of one run: TTFT median {t['median']:.3g}x, worst "
                  f"{t['max']:.3g}x ({', '.join(rl['worst_ttft']['ids'])}); TPOT median {p['median']:.3g}x, "
                  f"worst {p['max']:.3g}x")
    nt = a["near_twins"]
    print(f"\nNEAR TWINS (rests on a physical claim, not on the data alone: at <= {nt['max_in_flight']} requests in "
          "flight a prompt waits at most a few\ndecode steps, so TTFT should not depend on the output length). Rows "
          "equal in every fact but the output length:")
    if not nt["groups"]:
        print("  none")
        return
    s, ps = nt["spread"], nt["predicted_spread"]
    print(f"  {nt['groups']} groups, {nt['rows']} rows; measured TTFT max / min: median {s['median']:.3g}x, "
          f"p90 {s['p90']:.3g}x, worst {s['max']:.3g}x")
    print(f"  rows more than {nt['off_threshold']:.0%} from their group's median TTFT: "
          f"{nt['rows_off']} of {nt['rows']} "
          f"({nt['share_off']:.0%}); |TTFT / group median - 1|: {_cell(nt['floor'])} (the shipped profiles' "
          f"in-sample TTFT error on these rows: {_cell(nt['in_sample'])})")
    if ps["n"]:
        print("  the claim against the model: the replay's TTFT max / min in the same groups: "
              f"median {ps['median']:.3f}x, "
              f"p90 {ps['p90']:.3f}x, worst {ps['max']:.3f}x")
    print("  rows (more than " f"{nt['off_threshold']:.0%} off) by model: "
          + ", ".join(f"{m} {v['rows']} ({v['rows_off']})" for m, v in nt["by_model"].items()))
    print("  worst near-twin groups (measured TTFT ms at each output length; the slope of TTFT on a request's "
          "decode time / C):")
    for w in nt["worst"]:
        slope = "" if w["slope"] is None else f" [TTFT on osl x TPOT / C: slope {w['slope']:.2f}]"
        print(f"  {w['ratio']:.2f}x  {w['facts']}{slope}: "
              + ", ".join(f"{r['osl']:.0f} out {r['measured_ms']:.4g} ({r['id']})" for r in w["rows"]))


def whole_number(text: str) -> int:
    """--worst: a whole number >= 0 (argparse turns the ValueError into a usage error, exit 2)."""
    n = int(text)
    if n < 0:
        raise ValueError(text)
    return n


def replay_shipped(path: str):
    """The measured file at ``path`` read and replayed with the shipped profiles (what
    ``planner validate --measured`` does): ``(runs, prediction)``; a bad file raises
    planner.errors.InputError (one line naming the file and the field)."""
    from planner.replay import Prepared
    from planner.serving_profile import load_serving

    runs = read_measured(path)
    return runs, Prepared(runs).run(load_serving(None))


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", nargs="?", default=str(DEFAULT), help="measured CSV (default: %(default)s)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--worst", type=whole_number, default=8, metavar="N", help="worst groups listed per table (default 8)")
    try:
        args = ap.parse_args(argv)
    except SystemExit as exc:  # a usage error (exit 2), or --help (exit 0)
        return int(exc.code or 0)
    try:
        runs, pred = replay_shipped(args.file)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    a = analyse(runs, pred, args.worst)
    if args.json:
        print(json.dumps({"file": args.file, **a}, indent=2))
    else:
        print_report(a, args.file)
    return 0 if not a["prediction_not_constant"] else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
