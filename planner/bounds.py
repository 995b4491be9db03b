"""Physical bounds of a configuration's counts: one home for the limits every entry point
(flags, scenario files, checks) enforces before any arithmetic.

The limits are far above anything a real deployment uses and far below where float64
arithmetic on them loses meaning (bytes = tokens x layers x heads x dims stays < 1e30):

- tokens (prompt, generation, KV budget): 10 million, the longest context any released
  model accepts (Llama 4 Scout, 10M tokens, Meta model card 2025-04);
- requests in flight (batch, concurrency): 1 million;
- samples per prompt: 1 million (Large Language Monkeys, Brown et al. 2024, go to 10,000);
- devices in one tensor-parallel group: 100,000 (a TPU v5p pod has 8,960; checked against the device's own
  ``max_devices``); the same for pipeline stages, expert- and attention-data-parallel groups;
- requests simulated (``--requests``): 1 million, as requests in flight;
- a benchmark's random range ratio (:func:`check_range_ratio`): 0 to 1;
- a capacity plan's traffic: 1 request per ~12 days to 10 million requests per second (ChatGPT's
  reported 2.5 billion prompts a day, OpenAI 2025-07, average ~29,000 per second), so that fleet
  sizes, $ per 1k requests and the plots' log axes stay finite; electricity up to 100 USD per kWh
  (retail prices are 0.05-0.5).
"""

from __future__ import annotations

from typing import Any

from planner.errors import InputError, flag_name

MAX_TOKENS = 10_000_000
MAX_REQUESTS = 1_000_000
MAX_SAMPLES = 1_000_000
MAX_DEVICES = 100_000
MIN_RATE_PER_S = 1e-6
MAX_RATE_PER_S = 1e7
MAX_ELECTRICITY_USD_PER_KWH = 100.0

UPPER = {"devices": MAX_DEVICES, "pp": MAX_DEVICES, "ep": MAX_DEVICES, "dp": MAX_DEVICES, "batch": MAX_REQUESTS,
         "concurrency": MAX_REQUESTS, "requests": MAX_REQUESTS, "prompt_len": MAX_TOKENS, "gen_len": MAX_TOKENS,
         "samples": MAX_SAMPLES, "kv_budget": MAX_TOKENS, "top": MAX_REQUESTS, "num_devices": MAX_DEVICES,
         "prefill_devices": MAX_DEVICES, "decode_devices": MAX_DEVICES, "prefill_workers": MAX_DEVICES,
         "decode_workers": MAX_DEVICES}


def check_count(field: str, value: Any, lo: int, file: str | None = None) -> int:
    """An integer in [lo, UPPER[field]]; else an InputError naming the field and value (as
    the flag spells it; as given when a ``file`` is named: planner.errors.flag_name)."""
    hi = UPPER.get(field, MAX_REQUESTS)
    name = field if file else flag_name(field)
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise InputError(f"must be an integer >= {lo}", file=file, field=name, value=value)
    if value < lo:
        raise InputError(f"must be an integer >= {lo}", file=file, field=name, value=value)
    if value > hi:
        raise InputError(f"must be <= {hi:,}", file=file, field=name, value=value)
    return int(value)


RANGE_RATIO_RULE = "must be a number from 0 to 1 (1: fixed lengths)"


def check_range_ratio(value: Any, field: str = "range-ratio", file: str | None = None) -> float:
    """A benchmark's random range ratio ``r``, 0 <= r <= 1: each request's lengths drawn
    uniformly from the whole numbers in ``[int(r L), L]`` (sglang bench_serving
    ``--random-range-ratio``, default 0 there: lengths from ``[0, L]``, prompts from 1;
    vLLM's benchmark_serving.py before ``vllm bench serve``; InferenceMAX's copy of it at
    0.8: planner.harness.HARNESS_RANGE_RATIO); 1 = fixed lengths. (``vllm bench serve
    --random-range-ratio b``, 0 <= b < 1, draws from ``[L (1 - b), L (1 + b)]`` instead:
    ``L' = L (1 + b)`` and ``r = (1 - b) / (1 + b)`` here.) The one rule of ``planner
    estimate --range-ratio``, the checks files' and capacity scenarios' ``range_ratio:``,
    the measured CSV's ``random_range_ratio`` column and the API's ``range_ratio=``.
    Else an InputError naming the field and value (a bool, a string, NaN or a value
    outside [0, 1])."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise InputError(RANGE_RATIO_RULE, file=file, field=field, value=value)
    return float(value)


def validator_body(check):
    """A ``check_*`` rule of this module as a pydantic field validator wants it: the value,
    or a ValueError with the rule's reason (the file and the field are named by the caller:
    planner.catalog.validation_error)."""
    def body(v):
        try:
            return check(v)
        except InputError as exc:
            raise ValueError(exc.reason) from None

    body.__doc__ = f"Validator body: {check.__name__}'s rule (planner.bounds.validator_body)."
    return body


range_ratio_value = validator_body(check_range_ratio)


RATE_RULE = (f"must be a request rate from {MIN_RATE_PER_S:g} to {MAX_RATE_PER_S:g} requests/s "
             "(one a ~12 days to 10 million a second; planner.bounds)")


def check_rate(value: Any, field: str = "rate", file: str | None = None) -> float:
    """A Poisson arrival rate in requests/s, MIN_RATE_PER_S <= rate <= MAX_RATE_PER_S (the
    module docstring: below, arrival times overflow and a simulation is all NaN; above,
    fleet sizes and costs leave float64's useful range). The one rule of ``planner estimate
    --rate``, the API's ``rate=``, a checks file's ``rate:`` and a capacity scenario's
    ``traffic.requests_per_s``. Else an InputError naming the field and value (a bool, a
    string, NaN, an infinity or a value outside the range)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not MIN_RATE_PER_S <= value <= MAX_RATE_PER_S:
        raise InputError(RATE_RULE, file=file, field=field, value=value)
    return float(value)


rate_value = validator_body(check_rate)


# Architecture and device magnitudes a spec may carry: 100x or more above any released
# model or chip (largest today: hidden 16,384 and 126 layers in Llama 3.1 405B; vocab
# 262,144 in Gemma 3; 256 experts in DeepSeek-V3; B200 ~ 4.5 PFLOP/s fp8 dense, 8 TB/s,
# 192 GB), and low enough that products of them stay finite in float64.
MAX_DIM = 1_000_000          # hidden size, head dim, intermediate size, MLA ranks
MAX_LAYERS = 10_000
MAX_HEADS = 100_000
MAX_VOCAB = 100_000_000
MAX_EXPERTS = 1_000_000
MAX_PARAMS = 1e15
PEAK_TFLOPS_RANGE = (1e-6, 1e6)    # 1 MFLOP/s .. 1 EFLOP/s per chip
MEMORY_GB_RANGE = (1e-3, 1e6)
BANDWIDTH_GBPS_RANGE = (1e-3, 1e6)
MAX_POWER_W = 1e6
MAX_PRICE_USD = 1e9
MAX_LIST_ITEMS = 64                # devices or models listed in one scenario


def short_list(v, what: str = "entries"):
    """Validator body: a non-empty list of at most MAX_LIST_ITEMS entries (None passes)."""
    if v is None:
        return v
    if not v:
        raise ValueError("must not be empty")
    if len(v) > MAX_LIST_ITEMS:
        raise ValueError(f"at most {MAX_LIST_ITEMS} {what}, got {len(v)}")
    return v


def unique_short_list(v, what: str = "entries"):
    """Validator body: a non-empty list without repeats and with at most MAX_LIST_ITEMS entries."""
    if short_list(v, what) is None:
        return v
    seen = set()
    for x in v:
        if x in seen:
            raise ValueError(f"'{x}' is listed twice")
        seen.add(x)
    return v
