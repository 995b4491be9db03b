"""Finding the calibration profile of a device, and the efficiency the engine then uses.

Lookup order (:func:`profile_dirs`): ``$PLANNER_PATH`` dirs, the user's calibration
folder (:func:`planner.calibrate.profile.user_dir`, where ``planner calibrate`` writes by
default), the shipped calibration dir. :func:`resolve_efficiency` is the one place that
turns "an explicit profile, else a found one made on this machine, else the documented
defaults" into an efficiency.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from planner.calibrate.profile import (FORMAT, HARDWARE_SUFFIX, load_profile, machine_mismatch,
                                       profile_to_efficiency, user_dir)

NO_PROFILE = "defaults (no calibration profile)"


def profile_dirs() -> list[Path]:
    """Where profiles are looked up: $PLANNER_PATH dirs, then :func:`user_dir` (where
    ``planner calibrate`` writes by default), then the shipped calibration dir."""
    from planner.catalog import builtin_dir, search_dirs

    dirs = search_dirs("calibration")
    dirs.insert(len(dirs) - 1, user_dir())
    out: list[Path] = []
    for d in dirs:
        if d.is_dir() and all(not d.samefile(o) for o in out):
            out.append(d)
    return out or [builtin_dir("calibration")]


def find_profile(hardware_name: str) -> Path | None:
    """A profile for ``hardware_name`` in :func:`profile_dirs`: ``<name>.yaml``, else any
    profile whose ``hardware`` field matches."""
    dirs = profile_dirs()
    for d in dirs:
        for ext in (".yaml", ".yml"):
            p = d / f"{hardware_name}{ext}"
            if p.is_file():
                return p
    from planner.errors import InputError
    from planner.catalog import read_yaml  # cached parse (catalog.read_yaml)

    for d in dirs:
        if not d.is_dir():
            continue
        for p in sorted(d.glob("*.y*ml")):
            if p.name.endswith(HARDWARE_SUFFIX):
                continue
            try:
                head = read_yaml(p)
            except InputError:
                continue
            if isinstance(head, dict) and head.get("format") == FORMAT and head.get("hardware") == hardware_name:
                return p
    return None


def resolve_efficiency(hardware, calibration: Optional[str]):
    """The efficiency to use and a label saying where it came from: an explicit
    ``calibration`` profile path, else one found in :func:`profile_dirs` for this
    hardware, else the documented defaults (``None``)."""
    if calibration is None:
        found = find_profile(hardware.name)
        if found is None:
            return None, NO_PROFILE
        profile = load_profile(found)
        why = machine_mismatch(profile)
        if why is not None:  # applied automatically only on the machine it was made on
            return None, f"defaults (calibration profile {found} not applied: {why}; name it with --calibration)"
        return profile_to_efficiency(profile, hardware), f"calibration profile {found} (matches this machine)"
    eff = profile_to_efficiency(load_profile(calibration), hardware)
    return eff, f"calibration profile {calibration}"
