"""The layout axis of the search: for each device count, the device layouts
``tp x pp x dp`` (and ``ep`` for MoE models) that use it.

A scenario's ``layouts:`` lists families and explicit layouts (README "planner recommend"):

* a family is its factors joined by ``*``: ``tp`` (tensor parallel over all D devices),
  ``tp*pp`` (every ``tp x pp = D``), ``ep`` (tensor parallel over D with the experts spread
  over the D devices, ``ep = D``), ``tp*dp*ep`` (attention data parallel over ``dp``
  groups of ``tp``, the experts over all ``tp x dp`` devices, DeepSeek-style wide EP),
  ``tp*dp`` (attention data parallel, the experts tensor parallel over all devices),
  and any other product of ``tp``, ``pp``, ``dp``, ``ep``: the named factors range over
  the divisors of D, ``tp`` takes the rest, ``ep`` (when named) is ``tp x dp``;
* an explicit layout is a mapping ``{tp, pp, dp, ep}`` (missing factors are 1): it is
  searched as given, whatever the ``devices`` grid.

Every layout is then costed by the engine options ``planner estimate --pp/--ep/--dp``
uses (``planner.cost.layout``, ``planner.cost.expert_parallel``) and checked by the same
rule (:func:`planner.cost.layout.check_layout`): a layout that does not suit a model
(``ep`` not dividing its experts, ``ep`` on a dense model, more stages than layers) is
infeasible for that model; ``tp`` beyond one NVLink domain of the device is infeasible
on that device.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from planner.cost.engine import evaluate
from planner.cost.layout import check_layout, microbatches, pipeline_rows, send_s
from planner.cost.ops import VECTOR
from planner.cost.tables import BYTES_BY_CODE
from planner.errors import InputError
from planner.specs import LAYOUT_FACTORS

DEFAULT_LAYOUTS = ("tp",)  # the default scenario's axis: see recommend.build_space
MAX_LAYOUTS = 64  # layouts on one axis (each multiplies the grid)


class Layout(NamedTuple):
    """One device layout: ``tp x pp x dp`` devices, experts over ``ep`` groups."""

    tp: int
    pp: int = 1
    dp: int = 1
    ep: int = 1

    @property
    def devices(self) -> int:
        return self.tp * self.pp * self.dp

    @property
    def plain_tp(self) -> bool:
        return self.pp == 1 and self.dp == 1 and self.ep == 1

    def label(self) -> str:
        """``tp4 pp2``, ``tp2 ep8 dp4``: tp always, the other factors where > 1."""
        return " ".join([f"tp{self.tp}"] + [f"{n}{v}" for n, v in (("pp", self.pp), ("ep", self.ep), ("dp", self.dp))
                                            if v > 1])

    def as_dict(self) -> dict[str, int]:
        return {"tp": self.tp, "pp": self.pp, "dp": self.dp, "ep": self.ep}


def label_of(layout: dict | None) -> str:
    """The label of a layout as the JSON outputs give it (``{tp, pp, dp, ep}``): ``tp4 pp2``,
    ``tp2 ep8 dp4`` (:meth:`Layout.label`); empty for none."""
    return Layout(**layout).label() if layout else ""


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def family_layouts(family: str, devices: int) -> list[Layout]:
    """The layouts of one family (``tp``, ``tp*pp``, ``tp*dp*ep``, ...) on ``devices``."""
    names = set(family.split("*"))
    out = []
    for pp in (_divisors(devices) if "pp" in names else [1]):
        for dp in (_divisors(devices // pp) if "dp" in names else [1]):
            tp = devices // (pp * dp)
            ep = tp * dp if "ep" in names else 1
            out.append(Layout(tp, pp, dp, ep))
    return out


def expand(entries: Sequence, device_counts: Sequence[int]) -> list[Layout]:
    """The layout axis: every family over every device count, then the explicit layouts;
    duplicates dropped, sorted by device count (then tensor parallel first)."""
    seen: dict[Layout, None] = {}
    for entry in entries:
        if isinstance(entry, str):
            for d in device_counts:
                for lay in family_layouts(entry, int(d)):
                    seen.setdefault(lay)
        else:
            seen.setdefault(Layout(**{k: int(entry.get(k, 1)) for k in LAYOUT_FACTORS}))
    if not seen:
        raise InputError("no layout to search", field="layouts", value=list(entries))
    if len(seen) > MAX_LAYOUTS:
        raise InputError(f"{len(seen)} layouts over the devices grid, at most {MAX_LAYOUTS} (each multiplies the "
                         "search grid)", field="layouts", value=list(entries))
    return sorted(seen, key=lambda lay: (lay.devices, -lay.tp, lay.pp, lay.dp, lay.ep))


def suits_model(model, layout: Layout) -> bool:
    """Whether ``planner estimate`` accepts ``layout`` for ``model`` (one rule:
    planner.cost.layout.check_layout)."""
    try:
        check_layout(model, tp=layout.tp, pp=layout.pp, ep=layout.ep, dp=layout.dp)
    except InputError:
        return False
    return True


def groups(layouts: Sequence[Layout], models: Sequence, verifier=None) -> tuple[list, np.ndarray]:
    """How the layout axis is costed: the plain tensor-parallel layouts together (one
    engine call, as before layouts existed), every other layout on its own with the
    models it suits. Returns ``[(layout indices, model indices)]`` and the
    ``[model, layout]`` mask of layouts that suit the model (and the verifier, if any:
    it runs on the same layout)."""
    ok = np.array([[suits_model(m, lay) and (verifier is None or suits_model(verifier, lay)) for lay in layouts]
                   for m in models], dtype=bool).reshape(len(models), len(layouts))
    plain = [i for i, lay in enumerate(layouts) if lay.plain_tp]
    out = [(plain, list(range(len(models))))] if plain else []
    for i, lay in enumerate(layouts):
        if not lay.plain_tp and ok[:, i].any():
            out.append(([i], [int(m) for m in np.flatnonzero(ok[:, i])]))
    return out, ok


STAGE_KEYS = ("latency_s", "energy_j", "cost_usd", "fits", "bottleneck")
_PIPE_KEYS = ("ttft_s", "tpot_s", "decode_s", "throughput_tok_s", "energy_j", "cost_usd", "device_seconds",
              "weights_bytes", "kv_cache_bytes", "activations_bytes", "reserve_bytes", "capacity_bytes")


def _take(v, axis: int, idx: list[int], full: int):
    if v.ndim <= axis or v.shape[axis] == 1 or len(idx) == full and idx == list(range(full)):
        return v
    return np.take(v, idx, axis=axis)


def cost_stage(cols: dict, sub: tuple, layouts: Sequence[Layout], layout_groups, mt, ht, hardware,
               precision: str, shared_model: bool) -> dict:
    """The engine's outputs (:data:`STAGE_KEYS`) of one stage over the grid ``sub``
    (axis 0 the models, axis 2 the layouts): ``cols`` are the engine's input columns as
    arrays broadcastable to ``sub``, ``batch`` the requests the stage runs at once.
    Each layout runs as ``planner estimate --devices tp --pp --ep --dp`` costs it: the
    engine's ``ep`` and ``attn_dp`` columns, and for ``pp`` > 1 a microbatch of
    ``ceil(batch / pp)`` turned into the pipeline by :func:`planner.cost.layout.pipeline_rows`
    (one home for its formulas). ``shared_model``: the stage runs one model (the verifier)
    whatever the row's model. Rows a layout does not suit stay NaN (fits False)."""
    res: dict = {}
    n_rows = 0
    for lidx, midx in layout_groups:
        if shared_model:
            midx = list(range(sub[0]))
        lay = [layouts[i] for i in lidx]
        gsub = (len(midx), sub[1], len(lidx)) + sub[3:]
        g = {k: _take(_take(np.asarray(v), 0, midx, sub[0]), 2, lidx, sub[2]) for k, v in cols.items()}
        shape9 = (1, 1, len(lay)) + (1,) * 6

        def factor(name):
            return np.array([getattr(x, name) for x in lay], dtype=float).reshape(shape9)

        g["devices"] = factor("tp")
        pp = factor("pp")
        requests = g["batch"]
        piped = any(x.pp > 1 for x in lay)
        if piped:
            g["batch"] = np.ceil(requests / pp)  # one microbatch on the tensor-parallel group
        if not all(x.plain_tp for x in lay):
            g["ep"], g["attn_dp"] = factor("ep"), factor("dp")
        flat = {k: np.broadcast_to(v, gsub).ravel() for k, v in g.items()}
        out = evaluate(flat, mt, ht, precision=precision, outputs=STAGE_KEYS + (_PIPE_KEYS if piped else ()))
        if piped:
            with np.errstate(all="ignore"):
                out.update(_pipelined(out, flat, np.broadcast_to(pp, gsub).ravel(),
                                      np.broadcast_to(requests, gsub).ravel(), mt, hardware))
        n_rows += int(np.prod(gsub))
        if gsub == sub:  # the group is the whole grid: no copy
            res = {key: out[key].reshape(sub) for key in STAGE_KEYS}
            continue
        if not res:  # rows no layout group reaches: NaN, not fitting
            res = {key: (np.zeros(sub, dtype=out[key].dtype) if key in ("fits", "bottleneck")
                         else np.full(sub, np.nan, dtype=out[key].dtype)) for key in STAGE_KEYS}
        # scatter the group's rows back: a slice of models where they are contiguous (one
        # strided copy per layout), else their index list
        m_at = slice(midx[0], midx[-1] + 1) if midx == list(range(midx[0], midx[-1] + 1)) else np.asarray(midx)
        for key in STAGE_KEYS:
            block = out[key].reshape(gsub)
            for j, li in enumerate(lidx):
                res[key][m_at, :, li] = block[:, :, j]
    res["rows"] = n_rows
    return res


def _pipelined(out, flat, pp, requests, mt, hardware):
    """The search's pipeline rows: the same sends and formulas as planner.cost.api's
    ``_pipelined`` (a static batch of ``requests`` in microbatches of ``ceil(requests/pp)``)."""
    link = np.array([h.interconnect_gbps * 1e9 * h.interconnect_efficiency for h in hardware])
    lat = np.array([h.interconnect_latency_us * 1e-6 for h in hardware])
    hw = np.asarray(flat["hardware"])
    bw, lat = link[hw], lat[hw]
    hidden = mt.cols["hidden"][np.asarray(flat["model"])]
    act_bytes = BYTES_BY_CODE[np.asarray(flat["act_dtype"])]
    micro = flat["batch"].astype(np.float64)
    no_link = bw <= 0
    bw = np.where(no_link, 1.0, bw)
    dec = np.where(no_link, np.inf, (pp - 1) * send_s(bw, lat, micro, hidden, act_bytes))
    pre = np.where(no_link, np.inf, (pp - 1) * send_s(bw, lat, micro * flat["prompt_len"], hidden, act_bytes))
    n_mb = microbatches(VECTOR, pp, requests.astype(np.float64), micro)
    rows = pipeline_rows(VECTOR, {k: out[k] for k in _PIPE_KEYS}, pp, n_mb, dec, pre)
    rows["fits"] = rows["fits"] & np.isfinite(rows["latency_s"])
    return rows
