"""Where calibration profiles live, which one applies, and the efficiency the engine then uses.

Lookup order (:func:`profile_dirs`): ``$PLANNER_PATH`` dirs, the user's calibration
folder (:func:`user_dir`, where ``planner calibrate`` writes by
default), the shipped calibration dir. :func:`resolve_efficiency` is the one place that
turns "an explicit profile, else a found one made on this machine (:func:`machine_mismatch`),
else the documented defaults" into an efficiency; :func:`check_output_path` keeps every
write out of the shipped folder and the installed package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from planner.calibrate.apply import profile_to_efficiency
from planner.calibrate.profile import FORMAT, HARDWARE_SUFFIX, Profile, load_profile
from planner.errors import InputError

NO_PROFILE = "defaults (no calibration profile)"


def user_dir() -> Path:
    """Where ``planner calibrate`` writes by default: $PLANNER_CALIBRATION_DIR, else
    $XDG_CONFIG_HOME/planner/calibration (~/.config/planner/calibration)."""
    import os

    env = os.environ.get("PLANNER_CALIBRATION_DIR")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CONFIG_HOME") or "~/.config").expanduser() / "planner" / "calibration"


def check_output_path(path: str | Path) -> None:
    """Commands never write into the shipped folders or the installed package
    (:func:`planner.catalog.refuse_shipped`); the hint names the user's calibration folder."""
    from planner.catalog import refuse_shipped

    refuse_shipped(path, hint=f"write with -o elsewhere, default {user_dir()}")


def machine_mismatch(profile: Profile) -> str | None:
    """Why a profile was not made on this machine (None when it was): CPU model, core count,
    memory (within 2%) and torch version must match; a GPU profile applies only when named."""
    import importlib.metadata

    from planner.calibrate.device import cpu_count, cpu_model_name

    dev = profile.device
    if dev.get("type") != "cpu":
        return f"a {dev.get('type')} profile applies only when named with --calibration"
    if dev.get("cpu_model") != cpu_model_name():
        return f"CPU model {dev.get('cpu_model')!r} is not this machine's"
    if dev.get("cores") != cpu_count():
        return f"{dev.get('cores')} cores, this machine has {cpu_count()}"
    import os

    try:
        mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        mem_gb = None
    if mem_gb is None or not isinstance(dev.get("memory_gb"), (int, float)) or \
            abs(dev["memory_gb"] - mem_gb) > 0.02 * mem_gb:
        return f"memory {dev.get('memory_gb')} GB differs from this machine's"
    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return "torch is not installed here"
    if str(profile.torch_version).split("+")[0] != torch_version.split("+")[0]:
        return f"torch {profile.torch_version}, this machine has {torch_version}"
    return None


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


def _is_device_spec(path: Path, hardware_name: str, read_yaml) -> bool:
    """True for the device's own spec (``name: <device>``, no ``format``): a flat
    ``$PLANNER_PATH`` folder holds devices and profiles side by side, and the device file
    ``<name>.yaml`` is not that device's profile. A file with a ``format`` key (a profile,
    possibly a broken one) is not skipped, so a bad profile still fails loudly."""
    try:
        head = read_yaml(path)
    except InputError:
        return False
    return isinstance(head, dict) and "format" not in head and head.get("name") == hardware_name


_CANDIDATES: dict[tuple, list[str]] = {}


def profile_state() -> tuple:
    """A key that changes when what :func:`profile_dirs` (and the serving profiles under
    them) would find may have changed: the environment that names the folders, and the
    modification times of every candidate folder and of its ``serving`` subfolder (a
    profile written, renamed or removed there, as every command writes atomically, moves
    its folder's time). A file edited in place without a rename is not seen. Used to
    memoize profile lookups within one process (planner.estimating); ~10 us."""
    import os

    from planner.files import mtimes
    from planner.locations import builtin_dir

    get = os.environ.get
    env = (get("PLANNER_PATH"), get("PLANNER_CALIBRATION_DIR"), get("XDG_CONFIG_HOME"))
    dirs = _CANDIDATES.get(env)
    if dirs is None:
        found: list[Path] = []
        for entry in (env[0] or "").split(os.pathsep):
            if entry:
                p = Path(entry).expanduser()
                found += [p, p / "calibration"]
        found += [user_dir(), builtin_dir("calibration")]
        dirs = _CANDIDATES[env] = [str(d) for d in found] + [str(d / "serving") for d in found]
    return env + mtimes(dirs)


def find_profile(hardware_name: str) -> Path | None:
    """A profile for ``hardware_name`` in :func:`profile_dirs`: ``<name>.yaml``, else any
    profile whose ``hardware`` field matches."""
    from planner.catalog import read_yaml  # cached parse (catalog.read_yaml)

    dirs = profile_dirs()
    for d in dirs:
        for ext in (".yaml", ".yml"):
            p = d / f"{hardware_name}{ext}"
            if p.is_file() and not _is_device_spec(p, hardware_name, read_yaml):
                return p

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
