"""The capacity-planning scenario (``planner report SCENARIO.yaml``): schema and loading.

A scenario states the traffic (arrival rate, prompt and generation lengths as
percentiles or a distribution), the service-level objectives (TTFT, TPOT, end-to-end
latency, each at a percentile), an optional task and accuracy floor, the candidate
models and devices, prices and the planning horizon. ``examples/capacity.yaml`` documents
every field. Sizing lives in :mod:`planner.sizing`, rendering in :mod:`planner.report`.

Length distributions. A length is one of: an integer (every request has that length);
percentiles ``{p50, p90, p99}`` (p50 required; ``mean`` optional); or
``{lognormal: {median, sigma}}``. A percentile that is not given is read off a
log-normal through the given ones (``ln length`` piecewise linear in the normal score z:
z(p50) = 0, z(p90) = 1.2816, z(p99) = 2.3263); the mean, when not given, is the mean of
the log-normal fitted to p50 and p90 (else p99): ``p50 * exp(sigma^2 / 2)``, capped at the
largest given percentile.
"""

from __future__ import annotations

import math
from pathlib import Path
from statistics import NormalDist
from typing import Annotated, Optional, Union

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator,
                      model_serializer, model_validator)

from planner.bounds import (MAX_DEVICES, MAX_ELECTRICITY_USD_PER_KWH, MAX_PRICE_USD, MAX_TOKENS, range_ratio_value,
                            rate_value)
from planner.errors import InputError
from planner.fleet import DEFAULT_PUE, DEFAULT_REDUNDANCY
from planner.specs import known_dtypes, known_quantizations, layout_entries, positive_list

GIVEN_PERCENTILES = (50.0, 90.0, 99.0)
DEFAULT_CONCURRENCY = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]


# a benchmark's random range ratio, None when the lengths are fixed (one rule, both fields:
# planner.bounds.check_range_ratio, 0 <= r <= 1)
RangeRatio = Annotated[Optional[float], BeforeValidator(lambda v: None if v is None else range_ratio_value(v))]


def _z(q: float) -> float:
    return NormalDist().inv_cdf(q / 100.0)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class LogNormal(_Strict):
    median: float = Field(gt=0, le=MAX_TOKENS)
    sigma: float = Field(ge=0, le=5)


class Lengths(_Strict):
    """Token lengths of requests: fixed, percentiles, or a log-normal."""

    fixed: Optional[int] = Field(None, ge=1, le=MAX_TOKENS)
    p50: Optional[float] = Field(None, ge=1, le=MAX_TOKENS)
    p90: Optional[float] = Field(None, ge=1, le=MAX_TOKENS)
    p99: Optional[float] = Field(None, ge=1, le=MAX_TOKENS)
    mean: Optional[float] = Field(None, ge=1, le=MAX_TOKENS)
    lognormal: Optional[LogNormal] = None
    range_ratio: RangeRatio = Field(None, description="with fixed: each request's length drawn uniformly "
                                                           "from the whole numbers in [int(r fixed), fixed], as "
                                                           "sglang bench_serving's --random-range-ratio r")

    @model_validator(mode="before")
    @classmethod
    def _scalar(cls, v):
        if isinstance(v, bool):
            raise ValueError("expected a length (integer) or a mapping")
        if isinstance(v, (int, float)):
            if v != int(v):
                raise ValueError(f"a fixed length must be an integer, got {v}")
            return {"fixed": int(v)}
        return v

    @model_validator(mode="after")
    def _one_form(self) -> "Lengths":
        forms = [self.fixed is not None, self.lognormal is not None,
                 any(x is not None for x in (self.p50, self.p90, self.p99))]
        if sum(forms) != 1:
            raise ValueError("give exactly one of: an integer, percentiles (p50, p90, p99), or lognormal")
        if forms[2]:
            if self.p50 is None:
                raise ValueError("percentiles need p50")
            given = [x for x in (self.p50, self.p90, self.p99) if x is not None]
            if any(a > b for a, b in zip(given, given[1:])):
                raise ValueError(f"percentiles must not decrease (p50 <= p90 <= p99), got {given}")
        if self.mean is not None and not forms[2]:
            raise ValueError("mean goes with percentiles only")
        if self.range_ratio is not None and not forms[0]:
            raise ValueError("range_ratio goes with a fixed length only (percentiles and lognormal are spreads)")
        return self

    def _drawn(self) -> tuple[int, int] | None:
        """The whole numbers ``[int(r L), L]`` a fixed length with a range ratio is drawn from."""
        if self.fixed is None or self.range_ratio is None or self.range_ratio == 1.0:
            return None
        return max(int(math.floor(self.fixed * self.range_ratio + 1e-9)), 1), self.fixed

    def _points(self) -> list[tuple[float, float]]:
        """(z, ln length) anchor points."""
        if self.fixed is not None:
            return [(0.0, math.log(self.fixed))]
        if self.lognormal is not None:
            m, s = self.lognormal.median, self.lognormal.sigma
            return [(0.0, math.log(m)), (1.0, math.log(m) + s)]
        return [(_z(q), math.log(v)) for q, v in zip(GIVEN_PERCENTILES, (self.p50, self.p90, self.p99))
                if v is not None]

    def quantile(self, q: float) -> int:
        """The length at percentile ``q`` (0 < q < 100), rounded, at least 1."""
        for gq, v in zip(GIVEN_PERCENTILES, (self.p50, self.p90, self.p99)):
            if q == gq and v is not None:
                return max(1, int(round(v)))
        drawn = self._drawn()
        if drawn is not None:  # the uniform draw's q-quantile: the least x with P(X <= x) >= q
            lo, hi = drawn
            return min(lo + max(math.ceil(q / 100.0 * (hi - lo + 1) - 1e-9), 1) - 1, hi)
        pts = self._points()
        if len(pts) == 1:
            return max(1, int(round(math.exp(pts[0][1]))))
        z = _z(q)
        # the segment containing z (extrapolate with the nearest one)
        i = 0
        while i < len(pts) - 2 and z > pts[i + 1][0]:
            i += 1
        (z0, y0), (z1, y1) = pts[i], pts[i + 1]
        return max(1, int(round(math.exp(y0 + (y1 - y0) * (z - z0) / (z1 - z0)))))

    def mean_len(self) -> int:
        if self.fixed is not None:
            if self._drawn() is not None:  # the benchmark's mean (one home: planner.cost.spread.spread_length)
                from planner.cost.spread import spread_length

                return spread_length(self.fixed, self.range_ratio)
            return self.fixed
        if self.lognormal is not None:
            return max(1, int(round(self.lognormal.median * math.exp(self.lognormal.sigma ** 2 / 2))))
        if self.mean is not None:
            return max(1, int(round(self.mean)))
        top = self.p90 if self.p90 is not None else self.p99
        if top is None:
            return max(1, int(round(self.p50)))
        sigma = math.log(top / self.p50) / _z(90.0 if self.p90 is not None else 99.0)
        largest = max(x for x in (self.p50, self.p90, self.p99) if x is not None)
        return max(1, int(round(min(self.p50 * math.exp(sigma ** 2 / 2), largest))))

    def scaled(self, f: float) -> "Lengths":
        """Every length times ``f`` (the sensitivity table's "generation length x2"): a
        derived spread, built without the bounds a file's lengths are held to (a 10M-token
        p99 doubled is no input error)."""
        if self.fixed is not None:
            return Lengths.model_construct(fixed=max(1, int(round(self.fixed * f))), range_ratio=self.range_ratio)
        if self.lognormal is not None:
            return Lengths.model_construct(lognormal=LogNormal.model_construct(median=self.lognormal.median * f,
                                                                               sigma=self.lognormal.sigma))
        return Lengths.model_construct(**{k: (None if v is None else v * f) for k, v in
                                          (("p50", self.p50), ("p90", self.p90), ("p99", self.p99),
                                           ("mean", self.mean))})

    def describe(self) -> str:
        if self._drawn() is not None:
            lo, hi = self._drawn()
            return f"{lo} to {hi} (range ratio {self.range_ratio:g}, mean {self.mean_len()})"
        if self.fixed is not None:
            return f"{self.fixed} (fixed)"
        if self.lognormal is not None:
            return f"log-normal median {self.lognormal.median:g}, sigma {self.lognormal.sigma:g}"
        parts = [f"p{int(q)} {v:g}" for q, v in zip(GIVEN_PERCENTILES, (self.p50, self.p90, self.p99)) if v is not None]
        return ", ".join(parts) + f" (mean {self.mean_len()})"


class Traffic(_Strict):
    requests_per_s: Annotated[float, BeforeValidator(rate_value)] = Field(
        description="mean arrival rate of requests at the planned peak (planner.bounds.check_rate)")
    prompt_len: Lengths
    gen_len: Lengths
    max_gen_len: Optional[int] = Field(None, ge=1, le=MAX_TOKENS,
                                       description="generation cap (accuracy model's budget)")
    range_ratio: RangeRatio = Field(None, description="both fixed lengths drawn per request from "
                                                           "[int(r L), L], as sglang bench_serving's "
                                                           "--random-range-ratio (planner.bounds.check_range_ratio)")

    @model_validator(mode="after")
    def _spread(self) -> "Traffic":
        """``range_ratio:`` applies to both lengths (as the benchmark's flag), which must be fixed."""
        if self.range_ratio is None:
            return self
        for name in ("prompt_len", "gen_len"):
            ln = getattr(self, name)
            if ln.fixed is None:
                raise ValueError(f"range_ratio needs fixed lengths ({name} is a spread already)")
            if ln.range_ratio is not None and ln.range_ratio != self.range_ratio:
                raise ValueError(f"{name}.range_ratio {ln.range_ratio:g} differs from range_ratio {self.range_ratio:g}")
            object.__setattr__(self, name, ln.model_copy(update={"range_ratio": self.range_ratio}))
        return self

    def gen_cap(self) -> int:
        return self.max_gen_len or max(self.gen_len.quantile(99.0), self.gen_len.mean_len())


class Bound(_Strict):
    max: float = Field(gt=0)
    percentile: Optional[float] = Field(None, gt=0, lt=100)


class SLO(_Strict):
    percentile: float = Field(99.0, gt=0, lt=100, description="default percentile of the bounds below")
    ttft_s: Optional[Bound] = None
    tpot_s: Optional[Bound] = None
    latency_s: Optional[Bound] = None

    @field_validator("ttft_s", "tpot_s", "latency_s", mode="before")
    @classmethod
    def _number(cls, v):
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return {"max": v}
        return v

    def bounds(self) -> list[tuple[str, float, float]]:
        """(metric, max, percentile) for every bound that is set."""
        out = []
        for metric in ("ttft_s", "tpot_s", "latency_s"):
            b = getattr(self, metric)
            if b is not None:
                out.append((metric, b.max, b.percentile if b.percentile is not None else self.percentile))
        return out


class Search(_Strict):
    max_devices: int = Field(8, ge=1, le=MAX_DEVICES, description="largest tensor-parallel group per replica")
    devices: Optional[list[int]] = None
    quantizations: list[str] = Field(default_factory=lambda: ["bf16", "fp8", "int8", "int4"])
    kv_dtypes: list[str] = Field(default_factory=lambda: ["bf16", "fp8"])
    concurrency: list[int] = Field(default_factory=lambda: list(DEFAULT_CONCURRENCY),
                                   description="the most requests a replica runs at once (max_num_seqs)")
    layouts: Optional[list[Union[str, dict[str, int]]]] = Field(
        None, description="device layouts per replica, as `planner recommend` takes them (planner.layouts): "
                          "families (tp, ep, tp*dp*ep) over the devices grid or {tp, dp, ep}; default tp")

    _positive = field_validator("devices", "concurrency")(positive_list)
    _layouts = field_validator("layouts")(layout_entries)

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        out = handler(self)
        if self.layouts is None:  # a plan without layouts reads as before layouts existed
            out.pop("layouts", None)
        return out
    _quant = field_validator("quantizations")(known_quantizations)
    _kv = field_validator("kv_dtypes")(known_dtypes)


class Sensitivity(_Strict):
    price_change: float = Field(0.25, gt=-1, le=10, description="relative change of every price")
    model_error: float = Field(0.3, ge=0, lt=1, description="throughput shortfall the cost model may hide")


class CapacityScenario(_Strict):
    name: str = "capacity plan"
    traffic: Traffic
    slo: SLO = Field(default_factory=SLO)
    task: Optional[str] = None
    min_accuracy: Optional[float] = Field(None, ge=0, le=1)
    models: list[str] = Field(min_length=1, max_length=64)
    hardware: list[str] = Field(min_length=1, max_length=64)
    search: Search = Field(default_factory=Search)
    prices: dict[str, Annotated[float, Field(gt=0, le=MAX_PRICE_USD)]] = Field(
        default_factory=dict, description="USD per device-hour, by device name")
    electricity_usd_per_kwh: float = Field(0.12, ge=0, le=MAX_ELECTRICITY_USD_PER_KWH)
    horizon_months: float = Field(12.0, gt=0, le=600)
    headroom: float = Field(0.3, ge=0, le=10)
    redundancy: int = Field(DEFAULT_REDUNDANCY, ge=0, le=1000, description="spare replicas (N+k)")
    pue: float = Field(DEFAULT_PUE, ge=1.0, le=3.0, description="facility power over IT power")
    host_power_w_per_device: float = Field(0.0, ge=0, le=100_000,
                                           description="host CPUs, NICs and fans per device, watts")
    sensitivity: Sensitivity = Field(default_factory=Sensitivity)
    calibration: Optional[dict[str, str]] = Field(None, description="device name -> calibration profile path")
    engine: Optional[str] = Field(None, description="serving engine profile (vllm, sglang, trtllm, generic): "
                                                    "sizes each replica as a closed loop under its scheduler")

    @field_validator("min_accuracy")
    @classmethod
    def _needs_task(cls, v, info: ValidationInfo):
        if v is not None and info.data.get("task") is None:
            raise ValueError("min_accuracy needs a task")
        return v

    @field_validator("prices")
    @classmethod
    def _prices(cls, v, info: ValidationInfo):
        hardware = info.data.get("hardware") or []
        for k, x in v.items():
            if not (isinstance(x, (int, float)) and x > 0):
                raise ValueError(f"price for '{k}' must be > 0, got {x}")
            if k not in hardware:
                raise ValueError(f"price given for '{k}', which is not in hardware")
        return v


def load_scenario(path: str) -> tuple[CapacityScenario, list, list]:
    """Parse and validate a scenario file; returns (scenario, models, hardware) with the
    catalog entries resolved. Every error is a one-line InputError naming the file."""
    from planner.catalog import parse_spec, read_yaml

    scn = parse_spec(CapacityScenario, read_yaml(path), path)
    if scn.task is not None:  # a task no profile knows is an error, not "accuracy n/a" on every candidate
        from planner.accuracy.profile import check_task

        try:
            check_task(scn.task)
        except InputError as exc:
            raise InputError(exc.reason, file=path, field="task", value=scn.task) from None
    if scn.engine is not None:  # an unknown engine: exit 2 naming the file, the field and the value
        from planner.engine_profiles import load_engine

        try:
            load_engine(scn.engine)
        except InputError as exc:
            raise InputError(exc.reason, file=path, field="engine", value=scn.engine) from None
    if scn.calibration:  # profile paths are relative to the scenario file
        base = Path(path).resolve().parent
        for name in scn.calibration:
            if name not in scn.hardware:
                raise InputError("calibration given for a device not in hardware", file=path,
                                 field=f"calibration.{name}", value=name)
        scn = scn.model_copy(update={"calibration": {k: str(v if Path(v).is_absolute() else base / v)
                                                     for k, v in scn.calibration.items()}})
    models, hardware = resolve(scn, path)
    if scn.search.layouts is not None:
        check_layouts(scn, models, hardware, path)
    return scn, models, hardware


def resolve(scn: CapacityScenario, file: str | None = None) -> tuple[list, list]:
    from planner.catalog import load_hardware, load_model

    models, hardware = [], []
    for field, names, loader, out in (("models", scn.models, load_model, models),
                                      ("hardware", scn.hardware, load_hardware, hardware)):
        if len(set(names)) != len(names):
            raise InputError("duplicate entries", file=file, field=field, value=names)
        for i, name in enumerate(names):
            try:
                out.append(loader(name))
            except InputError as exc:
                raise InputError(exc.reason, file=file or exc.file, field=f"{field}[{i}]", value=name) from None
    return models, hardware


def check_layouts(scn: CapacityScenario, models: list, hardware: list, file: str | None = None) -> None:
    """The scenario's ``search.layouts`` against its devices and models: exit 2 naming the
    file, the field and the value where a layout cannot serve.

    * an explicit layout using more devices than a replica may have (the largest of
      ``search.devices``, else ``search.max_devices``), or with a tensor-parallel group
      beyond every candidate device's NVLink domain;
    * an explicit layout no candidate model takes (``ep`` not dividing its experts, ``ep``
      on a dense model: planner.cost.layout.check_layout, the reason of the first model).
    Families only keep the layouts that suit a model; the others are infeasible for it."""
    from planner.layouts import Layout, suits_model
    from planner.cost.layout import check_layout
    from planner.sizing import layout_axis

    entries = scn.search.layouts or []
    limit = max(scn.search.devices) if scn.search.devices else scn.search.max_devices
    for i, e in enumerate(entries):
        field = f"search.layouts[{i}]"
        if isinstance(e, str):
            continue
        lay = Layout(**{k: int(e.get(k, 1)) for k in ("tp", "pp", "dp", "ep")})
        if lay.devices > limit:
            raise InputError(f"tp x pp x dp = {lay.devices} devices per replica, more than the "
                             f"{'largest of search.devices' if scn.search.devices else 'search.max_devices'} "
                             f"({limit})", file=file, field=field, value=e)
        top = max(h.max_devices for h in hardware)
        if lay.tp > top:
            raise InputError(f"tensor parallel over {lay.tp} devices, beyond every candidate device's NVLink "
                             f"domain (at most {top})", file=file, field=field, value=e)
        if not any(suits_model(m, lay) for m in models):
            try:
                check_layout(models[0], tp=lay.tp, pp=lay.pp, ep=lay.ep, dp=lay.dp)
            except InputError as exc:
                raise InputError(f"no candidate model takes it: {models[0].name}: {exc.reason}", file=file,
                                 field=field, value=e) from None
    try:
        layout_axis(scn, hardware)
    except InputError as exc:
        raise InputError(exc.reason, file=file, field="search.layouts", value=entries) from None
