"""One configuration's values checked before the engine runs (planner.cost.api.estimate,
planner.cost.serving_api): integers within the physical bounds (planner.bounds), dtypes the
device computes in, a tensor-parallel group the device's NVLink domain (or whole domains
across nodes) allows, a prompt plus generation within the model's context. Bad values raise
InputError naming the field and the value."""

from __future__ import annotations

from typing import Any

from planner.bounds import check_count
from planner.dtypes import check_dtype
from planner.errors import InputError

_INT_FIELDS = (("devices", 1), ("batch", 1), ("concurrency", 0), ("prompt_len", 1), ("gen_len", 1),
               ("samples", 1), ("kv_budget", 0))


def validate_config(model, hardware, *, devices: int, batch: int, concurrency: int, prompt_len: int,
                    gen_len: int, samples: int, weight_dtype: str, act_dtype: str, kv_dtype: str,
                    kv_budget: int) -> dict[str, Any]:
    """Check one configuration's values; InputError names the field and the value.
    Returns the normalized dtype names."""
    values = {"devices": devices, "batch": batch, "concurrency": concurrency, "prompt_len": prompt_len,
              "gen_len": gen_len, "samples": samples, "kv_budget": kv_budget}
    for field, lo in _INT_FIELDS:  # integers within physical bounds (planner.bounds): no overflow deeper in
        check_count(field, values[field], lo)
    dtypes = _checked_dtypes(hardware, weight_dtype, act_dtype, kv_dtype)
    if devices > hardware.max_devices and (hardware.interconnect_gbps <= 0 or devices % hardware.max_devices):
        # beyond one NVLink domain: whole domains linked by the network (planner.cost.interconnect)
        raise InputError(f"device '{hardware.name}' allows at most {hardware.max_devices} in one tensor-parallel group"
                         + (", or whole multiples of it across nodes" if hardware.interconnect_gbps > 0 else ""),
                         field="devices", value=devices)
    if prompt_len + gen_len > model.max_context:  # name the prompt when it alone does not fit
        field, value = ("prompt-len", prompt_len) if prompt_len >= model.max_context else ("gen-len", gen_len)
        raise InputError(f"prompt-len {prompt_len} + gen-len {gen_len} = {prompt_len + gen_len} tokens exceeds "
                         f"the context of '{model.name}' ({model.max_context})", field=field, value=value)
    return dict(dtypes)


_DTYPES_OK: dict = {}


def _checked_dtypes(hardware, weight_dtype, act_dtype, kv_dtype) -> dict:
    """The normalized dtype names, once checked for this device (remembered)."""
    key = (id(hardware), weight_dtype, act_dtype, kv_dtype)
    hit = _DTYPES_OK.get(key)
    if hit is not None and hit[0] is hardware:
        return hit[1]
    w = check_dtype(weight_dtype, "weight-dtype")
    a = check_dtype(act_dtype, "act-dtype")
    kv = check_dtype(kv_dtype, "kv-dtype")
    if not hardware.has_dtype(a):
        raise InputError(f"device '{hardware.name}' has no {a} compute (it has: {', '.join(hardware.peak_tflops)})",
                         field="act-dtype", value=a)
    out = {"weight_dtype": w, "act_dtype": a, "kv_dtype": kv}
    if len(_DTYPES_OK) > 4096:
        _DTYPES_OK.clear()
    _DTYPES_OK[key] = (hardware, out)
    return out
