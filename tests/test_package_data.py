"""Every data file in the shipped catalog folders is installed by a non-editable install.

Oracle: the files on disk in the checkout against the package-data globs that setuptools
reads from pyproject.toml (a file no glob matches is missing from the wheel)."""
from fnmatch import fnmatch
from pathlib import Path
import tomllib

ROOT = Path(__file__).resolve().parent.parent
DATA_SUFFIXES = {".yaml", ".yml", ".jsonl", ".json", ".csv", ".npy"}


def test_every_shipped_data_file_is_in_package_data():
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    dirs, globs = conf["package-dir"], conf["package-data"]
    missing = []
    for package, folder in dirs.items():
        if not package.startswith("planner_data."):
            continue
        patterns = globs.get(package, [])
        for path in (ROOT / folder).rglob("*"):
            if path.suffix not in DATA_SUFFIXES or not path.is_file():
                continue
            rel = path.relative_to(ROOT / folder).as_posix()
            if not any(fnmatch(rel, pat) and rel.count("/") == pat.count("/") for pat in patterns):
                missing.append(f"{folder}/{rel}")
    assert not missing, f"not installed by a wheel: {missing[:10]}"
