"""Validate the engine against a real torch decoder on the device at hand.

For each model a :class:`~planner.calibrate.torch_model.TorchDecoder` with random weights
is built, possibly with fewer layers than the real model; the prediction then uses the
same reduced descriptor (``model.model_copy(update={"num_layers": n, ...})``). Prefill is
timed for several batch sizes and prompt lengths; a decode step for several batch sizes
and context lengths with a KV cache of that length in place. Each case is compared with
``planner.cost.api.estimate`` (``prefill_s`` of the prompt batch; ``decode_s`` with
``gen_len=1``, one step at that context).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

from planner.calibrate import require_torch
from planner.errors import InputError

DEFAULT_MODELS = ("qwen3-0.6b", "llama-3.2-1b")
DEFAULT_LAYERS = 4


@dataclass(frozen=True)
class Case:
    phase: str      # prefill | decode
    batch: int
    context: int    # prompt length (prefill) or context length (decode)


STANDARD_CASES = (
    Case("prefill", 1, 128), Case("prefill", 1, 512), Case("prefill", 4, 128),
    Case("decode", 1, 128), Case("decode", 1, 4096), Case("decode", 4, 1024),
    Case("decode", 16, 256), Case("decode", 16, 4096),
)
SHORT_CASES = (
    Case("prefill", 1, 128), Case("prefill", 4, 128),
    Case("decode", 1, 1024), Case("decode", 4, 4096), Case("decode", 16, 512),
)
PASSES = 3  # interleaved passes over the cases, the fastest kept: on a shared machine a
            # slow moment (another VM, another process) only ever slows a timing down
SHORT_CALL_S = 0.3
"""A case whose call takes less than this (batch-1 and batch-4 decode steps of 0.5-1B
models on a 2-core CPU: 0.1-0.25 s) gets a further pass between each two of the others
(twice the passes, at little cost). These are memory-bound, and the VM's memory
bandwidth moves by 10-20% for seconds at a time: with three passes of seven steps, the
same run measured llama-3.2-1b's batch-1 decode at context 128 15 ms *slower* than at
context 4096, where it must be ~12 ms faster (three runs, 2026-11-30: 198/183, 166/215,
172/188 ms), which set the validation's max error."""
DECODE_STEPS = 5  # timed decode steps per pass (after a warm-up step): with six passes,
                  # thirty steps of a short case against the twenty-one of three passes of seven
TINY_CASES = (Case("prefill", 1, 16), Case("prefill", 2, 8), Case("decode", 1, 16), Case("decode", 2, 32))


def reduced_model(model, layers: int | None):
    """The descriptor with ``layers`` layers (sliding layers and MoE lead layers scaled
    down in proportion); the prediction and the torch model both use it."""
    if not layers or layers >= model.num_layers:
        return model
    if layers < 1:
        raise InputError("must be >= 1", field="layers", value=layers)
    upd: dict = {"num_layers": layers}
    if model.num_sliding_layers:
        upd["num_sliding_layers"] = min(layers, round(model.num_sliding_layers * layers / model.num_layers))
    if model.moe is not None and model.moe.first_dense_layers:
        fd = min(layers - 1, round(model.moe.first_dense_layers * layers / model.num_layers))
        upd["moe"] = model.moe.model_copy(update={"first_dense_layers": fd})
    return model.model_copy(update=upd)


def predict(model, hardware, efficiency, case: Case, dtype: str) -> float:
    from planner.cost.api import estimate

    r = estimate(model, hardware, batch=case.batch, prompt_len=case.context, gen_len=1, weight_dtype=dtype,
                 act_dtype=dtype, kv_dtype=dtype, efficiency=efficiency)
    return float(r["prefill_s"] if case.phase == "prefill" else r["decode_s"])


def _time(fn: Callable[[], object], sync, repeats: int, warmup: int = 1) -> float:
    """Median of ``repeats`` timed calls after ``warmup`` calls (two repeats when one
    call takes over a second: the median of long runs is stable)."""
    t0 = time.perf_counter()
    for _ in range(warmup):
        fn()
    sync()
    if warmup and (time.perf_counter() - t0) / warmup > 1.0:
        repeats = min(repeats, 2)
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def measure_model(model, cases, *, device: str = "cpu", dtype: str = "fp32", repeats: int = 3, passes: int = PASSES,
                  progress: Callable[[str], None] | None = None, logits: str = "last") -> list[tuple[float, float]]:
    """Seconds per case for a torch decoder built from ``model`` (already reduced): the
    median of ``repeats`` timed runs after a warm-up (decode steps: at least
    :data:`DECODE_STEPS`), the fastest of ``passes`` passes, with a further pass between
    each two for the cases whose call takes under :data:`SHORT_CALL_S` (as many as
    ``passes`` again: batch-1 decode is where the machine's memory bandwidth varies
    most, and it costs little); a case during which other processes contended for our
    cores (:func:`planner.calibrate.quiet.contention` over
    :data:`~planner.calibrate.quiet.CONTENDED`) is retaken (up to twice, within two
    minutes) after waiting for a quiet moment: another process only ever slows a
    measurement down. Returns (seconds, contention) per case."""
    torch = require_torch()
    from planner.calibrate.bench import check_device, synchronizer
    from planner.calibrate.quiet import CONTENDED, LoadMonitor, wait_for_quiet
    from planner.calibrate.torch_model import TorchDecoder

    dev = check_device(device)
    sync = synchronizer(dev)
    n_threads = torch.get_num_threads()  # ours: set by the caller
    max_b = max(c.batch for c in cases)
    max_c = max(c.context for c in cases) + 1
    best = [float("inf")] * len(cases)
    contended = [1.0] * len(cases)
    call_s = [0.0] * len(cases)
    with torch.inference_mode():
        dec = TorchDecoder(model, device=dev, dtype=dtype, max_batch=max_b, max_context=max_c, logits=logits)

        def one(i: int, c: Case, note: str) -> None:
            if progress:
                progress(f"{model.name} ({model.num_layers} layers) {c.phase} batch {c.batch} context {c.context}"
                         + note)
            mon = LoadMonitor(n_threads)
            if c.phase == "prefill":
                tok = torch.zeros(c.batch, c.context, dtype=torch.long, device=dev)
                t = _time(lambda: dec(tok, 0), sync, repeats)
            else:
                dec.fill_cache(c.batch, c.context)
                tok = torch.zeros(c.batch, 1, dtype=torch.long, device=dev)
                t = _time(lambda: dec(tok, c.context), sync, max(repeats, DECODE_STEPS))
            other = mon.contention()
            call_s[i] = max(call_s[i], t)
            if t < best[i]:
                best[i], contended[i] = t, (other or 0.0)

        for pas in range(passes):
            for i, c in enumerate(cases):
                one(i, c, f" (pass {pas + 1}/{passes})" if passes > 1 else "")
            if passes > 1:  # the short cases once more, between this pass and the next
                for i, c in enumerate(cases):
                    if call_s[i] < SHORT_CALL_S:
                        one(i, c, f" (short cases, pass {pas + 1}/{passes})")
        # retake cases another process disturbed (twice at most, within two minutes)
        start = time.perf_counter()
        for round_ in range(2):
            for i, c in enumerate(cases):
                if contended[i] > CONTENDED and time.perf_counter() - start < 120.0:
                    wait_for_quiet(10.0, n_threads)
                    one(i, c, " (retake: the CPU was shared)")
        dec = None  # free the decoder's weights and cache before the next model
    return list(zip(best, contended))


def validate(models, hardware, efficiency, *, device: str = "cpu", dtype: str | None = None,
             layers: int | None = DEFAULT_LAYERS, cases=None, repeats: int = 3, passes: int = PASSES,
             threads: int | None = None,
             progress: Callable[[str], None] | None = None, logits: str = "last") -> dict:
    """Measure and predict every case for every model; returns the JSON-ready report."""
    torch = require_torch()
    from planner.calibrate.bench import keep_freed_memory, set_threads
    from planner.calibrate.quiet import LoadMonitor, load_average

    n_threads = set_threads(threads)
    allocator = keep_freed_memory() if device == "cpu" else None
    monitor = LoadMonitor(n_threads)
    load_start = load_average()
    dtype = dtype or ("fp32" if device == "cpu" else "bf16")
    cases = tuple(cases or STANDARD_CASES)
    rows = []
    used = []
    for m in models:
        small = reduced_model(m, layers)
        used.append({"model": m.name, "layers": small.num_layers, "layers_full": m.num_layers})
        measured = measure_model(small, cases, device=device, dtype=dtype, repeats=repeats, passes=passes,
                                 progress=progress, logits=logits)
        for c, (t, other) in zip(cases, measured):
            p = predict(small, hardware, efficiency, c, dtype)
            rows.append({"model": m.name, "layers": small.num_layers, "phase": c.phase, "batch": c.batch,
                         "context": c.context, "measured_s": t, "predicted_s": p, "error": p / t - 1.0,
                         "contention": round(other, 3)})
    errs = [abs(r["error"]) for r in rows]
    return {
        "cases": rows,
        "median_abs_error": statistics.median(errs) if errs else float("nan"),
        "max_abs_error": max(errs) if errs else float("nan"),
        "models": used,
        "device": device,
        "dtype": dtype,
        "threads": n_threads,
        "allocator": allocator,
        "torch_version": str(torch.__version__),
        "hardware": hardware.name,
        "efficiency": getattr(efficiency, "source", "defaults") if efficiency is not None else "defaults",
        "prefill_logits": logits,
        "other_cpu_fraction": monitor.other_fraction(),
        "load_average": [load_start, load_average()],
    }
