"""Calibration: torch microbenchmarks (bench), curve fitting (fit), profiles (profile),
and validation against a real torch decoder (validate).

Only the modules that run kernels (``bench``, ``kernels``, ``device``, ``torch_model``,
``validate``) import torch, and only when called through :func:`require_torch`;
``fit``, ``profile``, ``timing`` and ``bench_plan`` are torch-free.
"""

from __future__ import annotations

TORCH_MISSING = "torch is not installed: pip install 'planner[calibrate]' (torch==2.13.0)"
DEVICES = ("cpu", "cuda", "mps")


def require_torch():
    """Import torch or raise the one-line InputError naming the extra to install."""
    from planner.errors import InputError

    try:
        import torch  # noqa: F401
    except ImportError:
        raise InputError(TORCH_MISSING) from None
    return torch
