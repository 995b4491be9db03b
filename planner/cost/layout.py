"""Device layouts beyond tensor parallelism: pipeline (pp), expert (ep) and attention
data parallelism (dp), checked against the model and the devices available.

A layout uses ``tp x pp x dp`` devices (attention data parallelism replicates the
attention over ``dp`` groups of ``tp`` devices; the MoE experts are spread over ``ep``
of those ``tp x dp`` devices, DeepSeek-style). Bad layouts are InputErrors naming the
field and the value (exit 2).
"""

from __future__ import annotations

from planner.errors import InputError


def check_layout(model, *, tp: int, pp: int = 1, ep: int = 1, dp: int = 1, num_devices: int | None = None) -> int:
    """Validate a layout; returns the number of devices it uses."""
    for field, v in (("pp", pp), ("ep", ep), ("dp", dp)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise InputError("must be an integer >= 1", field=field, value=v)
    used = tp * pp * dp
    if num_devices is not None and used > num_devices:
        raise InputError(f"tp x pp x dp = {tp} x {pp} x {dp} = {used} devices, more than the {num_devices} available",
                         field="num-devices", value=num_devices)
    layers = model.num_layers
    if pp > layers:
        raise InputError(f"more pipeline stages than the model's {layers} layers", field="pp", value=pp)
    experts = getattr(model.moe, "num_experts", 0) if getattr(model, "moe", None) is not None else 0
    if ep > 1:
        if not experts:
            raise InputError(f"model '{model.name}' has no experts to spread", field="ep", value=ep)
        if experts % ep:
            raise InputError(f"does not divide the model's {experts} experts", field="ep", value=ep)
        if (tp * dp) % ep:
            raise InputError(f"does not divide the tp x dp = {tp * dp} devices the experts are spread over",
                             field="ep", value=ep)
    if pp > 1 or ep > 1 or dp > 1:
        raise InputError("pipeline, expert and attention data parallelism are validated but not yet costed "
                         "(README 'Serving'); use tensor parallelism (--devices)", field="pp" if pp > 1 else
                         ("ep" if ep > 1 else "dp"), value=pp if pp > 1 else (ep if ep > 1 else dp))
    return used
