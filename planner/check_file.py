"""The checks file of ``planner check`` (planner.check): its format, read and validated.

A checks file lists checks; each evaluates one thing and asserts on its metrics:

* ``estimate:`` one configuration (the options of ``planner estimate``); metrics are the
  keys of ``planner estimate --json`` (dotted for nested ones: ``memory.total_bytes``);
* ``recommend:`` a ``planner recommend`` scenario (its fields, or ``scenario: path``);
  metrics are the top recommendation's fields plus ``usd_per_1k`` (= cost_usd x 1000);
* ``capacity:`` a capacity scenario file; metrics are the chosen candidate's fields
  (``fleet.monthly_usd``, ``per_replica.tpot_s``, ``accuracy``); ``candidate: "model @
  hardware"`` picks one, else the cheapest.

Assertions are strings ``METRIC OP NUMBER`` with OP in <=, <, >=, >, ==. The file is read
as every spec file is (planner.catalog.read_yaml) and validated here (:func:`load_checks`);
planner.check evaluates it.
"""

from __future__ import annotations

import operator
import re
from typing import Annotated, Any, Optional

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from planner.bounds import range_ratio_value, rate_value
from planner.cost.defaults import ESTIMATE_DEFAULTS
from planner.errors import InputError

OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt, "==": operator.eq}
ASSERT_RE = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(<=|>=|==|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


def _rate_or_none(v):
    """Validator body of ``rate:``: 0 (or nothing) is no rate, anything else is a Poisson
    rate under planner.bounds.check_rate (a bool or a string is no rate of 0)."""
    if v is None or (not isinstance(v, bool) and isinstance(v, (int, float)) and v == 0):
        return 0.0
    return rate_value(v)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True, populate_by_name=True)


class EstimateSpec(_Strict):
    model: str
    hardware: str
    devices: int = ESTIMATE_DEFAULTS["devices"]
    batch: int = ESTIMATE_DEFAULTS["batch"]
    concurrency: int = ESTIMATE_DEFAULTS["concurrency"]
    prompt_len: int = ESTIMATE_DEFAULTS["prompt_len"]
    gen_len: int = ESTIMATE_DEFAULTS["gen_len"]
    samples: int = ESTIMATE_DEFAULTS["samples"]
    weight_dtype: str = ESTIMATE_DEFAULTS["weight_dtype"]
    act_dtype: str = ESTIMATE_DEFAULTS["act_dtype"]
    kv_dtype: str = ESTIMATE_DEFAULTS["kv_dtype"]
    kv_budget: int = ESTIMATE_DEFAULTS["kv_budget"]
    prefix_sharing: bool = ESTIMATE_DEFAULTS["prefix_sharing"]
    calibration: Optional[str] = None
    engine: Optional[str] = None       # serving engine profile (planner.engine_profiles)
    arrival: Optional[str] = None      # steady | closed | poisson (None: planner.cost.serving.default_arrival)
    rate: Annotated[float, BeforeValidator(_rate_or_none)] = 0.0  # Poisson requests/s (planner.bounds.check_rate)
    pp: int = 1                        # pipeline stages
    ep: int = 1                        # expert-parallel degree (MoE)
    dp: int = 1                        # attention data-parallel degree
    spec_tokens: int = 0               # MTP draft tokens per step (speculative decoding)
    # lengths drawn per request from [int(r L), L] (planner estimate --range-ratio)
    range_ratio: Annotated[float, BeforeValidator(range_ratio_value)] = 1.0

    @model_validator(mode="before")
    @classmethod
    def _rate_is_poisson(cls, data):
        """``rate:`` implies ``arrival: poisson``, as ``--rate`` does (a rate beside no
        arrival was silently ignored: the steady state ran)."""
        if isinstance(data, dict) and data.get("rate") not in (None, 0) and "arrival" not in data:
            return {**data, "arrival": "poisson"}
        return data

    @model_validator(mode="after")
    def _rate_needs_poisson(self) -> "EstimateSpec":
        if self.rate and self.arrival != "poisson":
            raise ValueError(f"a rate needs Poisson arrivals (arrival: poisson, or no arrival), not {self.arrival!r}")
        return self


class CheckSpec(_Strict):
    name: str = Field(min_length=1)
    estimate: Optional[EstimateSpec] = None
    recommend: Optional[dict[str, Any]] = None
    capacity: Optional[str] = None
    candidate: Optional[str] = None
    asserts: list[str] = Field(default_factory=list, alias="assert")
    track: Optional[list[str]] = None
    tolerance: Optional[float] = Field(None, ge=0, lt=10)

    @field_validator("asserts")
    @classmethod
    def _parse(cls, v):
        for a in v:
            if not isinstance(a, str) or not ASSERT_RE.match(a):
                raise ValueError(f"assertion {a!r} is not 'METRIC OP NUMBER' (OP: <=, <, >=, >, ==)")
        return v

    @model_validator(mode="after")
    def _one_kind(self) -> "CheckSpec":
        kinds = [k for k in ("estimate", "recommend", "capacity") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("give exactly one of: estimate, recommend, capacity")
        if self.candidate is not None and self.capacity is None:
            raise ValueError("candidate goes with capacity")
        if not self.asserts and self.track == []:
            raise ValueError("a check needs an assertion or a tracked metric")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("estimate", "recommend", "capacity") if getattr(self, k) is not None)

    def assertions(self) -> list[tuple[str, str, float]]:
        out = []
        for a in self.asserts:
            m = ASSERT_RE.match(a)
            out.append((m.group(1), m.group(2), float(m.group(3))))
        return out


class ChecksFile(_Strict):
    baseline: Optional[str] = None
    tolerance: float = Field(0.05, ge=0, lt=10)
    checks: list[CheckSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> "ChecksFile":
        seen = set()
        for c in self.checks:
            if c.name in seen:
                raise ValueError(f"duplicate check name '{c.name}'")
            seen.add(c.name)
        return self


def check_field(name: Any, rest: str | None = None, index: int | None = None) -> str:
    """How every message names a field of a check: ``checks.<name>.<rest>`` where the file
    gives the check a name (text), else ``checks.<index>.<rest>`` by its position. The one
    rule of the parsing stage (:func:`load_checks`) and of the evaluation (:func:`run_checks`,
    :func:`evaluate_check`), so a check's field has one spelling in every message."""
    from planner.safeload import MAX_STRING_CHARS

    named = isinstance(name, str) and 0 < len(name) <= MAX_STRING_CHARS
    head = f"checks.{name if named or index is None else index}"
    return f"{head}.{rest}" if rest else head


_CHECK_AT = re.compile(r"^checks\.(\d+)(?:\.(.*))?$", re.S)


def load_checks(path: str) -> ChecksFile:
    """The checks file at ``path``, read as every spec file is (planner.catalog.read_yaml:
    the input limits of planner.safeload, YAML 1.2 floats, the parsed-file cache) and
    validated; a problem in a check's field names the check (:func:`check_field`)."""
    from planner.catalog import parse_spec, read_yaml

    data = None
    try:
        data = read_yaml(path)
        return parse_spec(ChecksFile, data, path)
    except InputError as exc:  # a field under checks.<i>: named by the check's name (check_field)
        m = _CHECK_AT.match(exc.field or "")
        if m is not None and data is None:  # refused by the limits after parsing: the names from the parse
            from planner.safeload import loads_yaml, read_text

            data = loads_yaml(read_text(path), path, check=False)
        items = data.get("checks") if isinstance(data, dict) else None
        if m is None or not isinstance(items, list) or (i := int(m.group(1))) >= len(items):
            raise
        name = items[i].get("name") if isinstance(items[i], dict) else None
        raise InputError(exc.reason, file=exc.file, field=check_field(name, m.group(2), i),
                         value=exc.value, has_value=exc.has_value) from None

