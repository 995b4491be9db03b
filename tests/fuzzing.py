"""A seeded mutator of the shipped inputs and a runner that checks the CLI's promise.

Each case is (argv, files): a command line and the mutated files it reads, written into a
scratch folder. The promise checked per case (issue 13): exit code 0 or 2 (1 only for
`check`, whose failing check is exit 1), no traceback, no hang over the time limit, and no
non-finite number (nan, inf) in the output. Used by tests/test_fuzz.py (~500 cases, in
process) and benchmarks/fuzz.py (>= 10,000 cases, counts and peak memory).
"""

from __future__ import annotations

import io
import json
import random
import re
import signal
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent

# Values a mutation may put in a field: out of range, non-finite, huge, wrong type.
EVIL_VALUES = [10**401, -(10**401), -1, 0, 2**63, 1e308, -1e308, 1e-300, float("inf"), float("-inf"),
               float("nan"), "x" * 100_000, "", "nan", [], {}, None, True, [1] * 201, 0.5, 3, 1e18, 40000]
EVIL_FLAGS = ["-1", "0", "1e400", "inf", "nan", "-inf", str(2**63), "9" * 401, "40000", "1e18", "0.5", "abc", "",
              "tgi"]

ALIAS_BOMB = "".join(f"b{i}: &b{i} [{', '.join([f'*b{i - 1}'] * 9)}]\n" for i in range(1, 9))
ALIAS_BOMB = 'b0: &b0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + ALIAS_BOMB


@dataclass
class Case:
    argv: list[str]
    files: dict[str, bytes] = field(default_factory=dict)  # name in the scratch folder -> content
    label: str = ""


@dataclass
class Outcome:
    rc: int | None
    out: str
    err: str
    seconds: float
    problem: str | None  # None when the promise held
    cpu_s: float = 0.0  # CPU seconds of this process during the run (in-process runs)


def _leaves(data, path=()):
    if isinstance(data, dict):
        for k, v in data.items():
            yield path + (k,), v
            yield from _leaves(v, path + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield path + (i,), v
            yield from _leaves(v, path + (i,))


def _set(data, path, value):
    cur = data
    for k in path[:-1]:
        cur = cur[k]
    cur[path[-1]] = value


def _delete(data, path):
    cur = data
    for k in path[:-1]:
        cur = cur[k]
    del cur[path[-1]]


def mutate_data(data, rng: random.Random):
    """One structural mutation of parsed YAML/JSON data (in place); returns the new data."""
    spots = list(_leaves(data))
    if not spots:
        return rng.choice(EVIL_VALUES)
    path, old = rng.choice(spots)
    op = rng.random()
    if op < 0.6:
        _set(data, path, rng.choice(EVIL_VALUES))
    elif op < 0.7 and isinstance(path[-1], str):
        _delete(data, path)
    elif op < 0.8:
        if isinstance(old, (int, float)) and not isinstance(old, bool):
            _set(data, path, old * rng.choice([-1, 0, 1e6, 1e-6, 10**30]))
        else:
            _set(data, path, rng.choice(EVIL_VALUES))
    elif op < 0.9:
        _set(data, path, "__DEEP__")  # replaced in the text by 30 or 1000 nested lists
    else:
        cur = data
        for k in path[:-1]:
            cur = cur[k]
        if isinstance(cur, dict):
            cur["unknown_field_" + str(rng.randrange(99))] = 1
        else:
            _set(data, path, old)
    return data


def _deep(text: str, rng: random.Random, quote: str) -> str:
    depth = rng.choice([30, 1000, 100_000])
    return text.replace(f"{quote}__DEEP__{quote}", "[" * depth + "0" + "]" * depth)


def _dump_yaml(data, rng: random.Random) -> str:
    return _deep(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=10**6), rng, "")


def mutate_text(text: str, kind: str, rng: random.Random) -> bytes:
    """A mutated copy of a shipped YAML/JSON/JSONL text."""
    op = rng.random()
    if op < 0.07:
        return text[: rng.randrange(len(text) + 1)].encode()
    if op < 0.12:
        raw = bytearray(text.encode())
        raw[rng.randrange(len(raw))] = 0xFF
        return bytes(raw)
    if kind == "yaml":
        if op < 0.20:
            # an alias bomb referenced from a field
            data = yaml.safe_load(text)
            spots = [p for p, _ in _leaves(data)]
            if spots:
                _set(data, rng.choice(spots), "__BOMB__")
            return (ALIAS_BOMB + _dump_yaml(data, rng).replace("__BOMB__", "*b8")).encode()
        data = mutate_data(yaml.safe_load(text), rng)
        return _dump_yaml(data, rng).encode()
    if kind == "json":
        if op < 0.17:
            return ("[" * 100_000 + "]" * 100_000).encode()
        data = mutate_data(json.loads(text), rng)
        try:
            return _deep(json.dumps(data), rng, '"').encode()
        except (RecursionError, ValueError):
            return b"[[[[]]]]"
    # jsonl: mutate one line
    lines = text.splitlines()
    i = rng.randrange(len(lines))
    if op < 0.2:
        lines = lines[i:i + 1]  # a one-line log
    else:
        rec = mutate_data(json.loads(lines[i]), rng)
        try:
            lines[i] = _deep(json.dumps(rec), rng, '"')
        except (RecursionError, ValueError):
            lines[i] = "{"
    return ("\n".join(lines) + "\n").encode()


def _shipped(rel: str) -> str:
    return (ROOT / rel).read_text(encoding="utf-8")


# (weight, kind of text, shipped file, command with {F} for the mutated file, scratch name)
TEMPLATES = [
    (3, "yaml", "models/qwen3-8b.yaml", ["estimate", "-m", "{F}", "--json"], "m.yaml"),
    (2, "yaml", "models/deepseek-v3.yaml", ["estimate", "-m", "{F}", "--devices", "8", "--json"], "m.yaml"),
    (3, "yaml", "hardware/h100-sxm.yaml", ["estimate", "-H", "{F}", "--json"], "h.yaml"),
    (3, "yaml", "tasks/aime24--qwen3-8b.yaml", ["accuracy", "-p", "{F}", "-s", "majority", "-k", "4", "--json"],
     "t.yaml"),
    (2, "yaml", "calibration/cpu-amd-epyc-2c.yaml",
     ["estimate", "-H", "{ROOT}/calibration/cpu-amd-epyc-2c.hardware.yaml", "--calibration", "{F}", "--json"],
     "c.yaml"),
    (1, "yaml", "calibration/cpu-amd-epyc-2c.yaml",
     ["recommend", "--task", "aime24", "--models", "qwen3-0.6b", "-H", "h100-sxm", "--calibration", "{F}",
      "--json"], "c.yaml"),
    (2, "yaml", "calibration/cpu-amd-epyc-2c.yaml", ["calibrate", "--refit", "{F}", "-o", "{D}/out.yaml"],
     "c.yaml"),
    (2, "json", "tests/data/hf_configs/qwen3-8b.json", ["models", "import", "{F}"], "config.json"),
    (2, "json", "tests/data/hf_configs/tiny-deepseek.json", ["models", "import", "{F}"], "config.json"),
    (2, "jsonl", "examples/eval_synthetic.jsonl", ["fit", "{F}", "--model", "m", "--task", "t", "--json"], "e.jsonl"),
    (1, "yaml", "examples/default_scenario.yaml", ["recommend", "--scenario", "{F}", "--json"], "s.yaml"),
    (1, "yaml", "examples/capacity.yaml", ["report", "{F}", "-o", "{D}/r.md", "--json"], "cap.yaml"),
    (1, "yaml", "examples/checks.baseline.yaml", ["check", "{ROOT}/examples/checks.yaml", "--baseline", "{F}"],
     "b.yaml"),
]

FLAG_TEMPLATES = [
    ["estimate", "--prompt-len", "{V}", "--json"], ["estimate", "--gen-len", "{V}", "--json"],
    ["estimate", "--batch", "{V}", "--json"], ["estimate", "--concurrency", "{V}", "--json"],
    ["estimate", "--samples", "{V}", "--json"], ["estimate", "--devices", "{V}", "--json"],
    ["estimate", "--kv-budget", "{V}", "--json"],
    # serving (issue 10): engine, arrivals, simulator, layouts, disaggregated workers
    ["estimate", "--engine", "{V}", "--json"], ["estimate", "--rate", "{V}", "--json"],
    ["estimate", "--arrival", "{V}", "--json"], ["estimate", "--simulate", "--requests", "{V}", "--json"],
    ["estimate", "--concurrency", "8", "--slo-ttft-s", "{V}", "--json"],
    ["estimate", "--pp", "{V}", "--json"], ["estimate", "--num-devices", "{V}", "--json"],
    ["estimate", "-m", "deepseek-v3", "--devices", "8", "--ep", "{V}", "--json"],
    ["estimate", "-m", "deepseek-v3", "--devices", "8", "--ep", "8", "--dp", "{V}", "--json"],
    ["estimate", "--prefill-workers", "1", "--decode-workers", "{V}", "--json"],
    ["estimate", "--prefill-workers", "1", "--decode-workers", "1", "--prefill-devices", "{V}", "--json"],
    ["accuracy", "-m", "qwen3-8b", "-t", "aime24", "-k", "{V}", "-s", "majority", "--json"],
    ["accuracy", "-m", "qwen3-8b", "-t", "aime24", "--gen-len", "{V}", "--json"],
    ["fit", "{ROOT}/examples/eval_synthetic.jsonl", "--model", "m", "--task", "t", "--seed", "{V}", "--json"],
    ["recommend", "--task", "aime24", "--models", "qwen3-0.6b", "-H", "h100-sxm", "--max-usd", "{V}", "--json"],
    ["recommend", "--task", "aime24", "--models", "qwen3-0.6b", "-H", "h100-sxm", "--max-latency-s", "{V}",
     "--json"],
    ["recommend", "--task", "aime24", "--models", "qwen3-0.6b", "-H", "h100-sxm", "--top", "{V}", "--json"],
]


def make_cases(n: int, seed: int = 0, heavy: bool = True, only: str | None = None) -> list[Case]:
    """``n`` seeded cases; ``heavy=False`` leaves out the slow whole-search commands.
    ``only``: draw only from the templates whose shipped file contains it (e.g.
    "capacity": mutated capacity files), or only flag cases for "flags"."""
    rng = random.Random(seed)
    templates = [t for t in TEMPLATES if heavy or t[3][0] not in ("recommend", "report", "check")]
    flags = [f for f in FLAG_TEMPLATES if heavy or f[0] != "recommend"]
    flag_share = 0.15
    if only is not None:
        templates = [t for t in templates if only in t[2]]
        flag_share = 1.0 if only == "flags" else 0.0
        if not templates and only != "flags":
            raise ValueError(f"no fuzz template reads a file matching {only!r}")
    weights = [t[0] for t in templates]
    texts = {t[2]: _shipped(t[2]) for t in templates}
    cases = []
    for i in range(n):
        if rng.random() < flag_share:
            argv = [a.replace("{V}", rng.choice(EVIL_FLAGS)) for a in rng.choice(flags)]
            cases.append(Case(argv, {}, f"flags {' '.join(argv)}"))
            continue
        w, kind, rel, cmd, name = rng.choices(templates, weights)[0]
        content = mutate_text(texts[rel], kind, rng)
        cases.append(Case(list(cmd), {name: content}, f"{rel} #{i}"))
    return cases


NONFINITE = re.compile(r"(?<![A-Za-z_])(nan|inf|-inf|infinity|NaN|Infinity)(?![A-Za-z_])")


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang()


def _nonfinite(out: str) -> bool:
    """A nan/inf number in the output: JSON and YAML outputs are parsed (a model *named*
    "nan" is text, not a number); other text is searched for nan/inf words."""
    import math

    data = None
    try:
        data = json.loads(out)
    except ValueError:
        try:
            data = yaml.safe_load(out) if out.lstrip().startswith(("name:", "#")) else None
        except yaml.YAMLError:
            data = None
    if data is None:
        return bool(NONFINITE.search(out))
    stack = [data]
    while stack:
        v = stack.pop()
        if isinstance(v, float) and not math.isfinite(v):
            return True
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return False


def judge(rc, out: str, err: str, argv: list[str]) -> str | None:
    """None when the promise held, else what broke."""
    ok_codes = (0, 1, 2) if argv and argv[0] == "check" else (0, 2)
    if "Traceback (most recent call last)" in out + err:
        return "traceback"
    if rc not in ok_codes:
        return f"exit code {rc}"
    if rc == 0 and _nonfinite(out):
        return "non-finite output"
    if rc == 2:
        lines = [x for x in err.splitlines() if x.strip()]
        if len(lines) != 1 or len(lines[0]) > 600:
            return "unusable error message"
    return None


def run_in_process(case: Case, scratch: Path, timeout_s: float = 5.0) -> Outcome:
    """Run one case through planner.cli.main in this process, with a CPU-time limit (SIGPROF: a loaded machine does not count as a hang)."""
    import time

    from planner.cli import main

    for name, content in case.files.items():
        (scratch / name).write_bytes(content)
    first = next(iter(case.files), None)
    argv = [a.replace("{F}", str(scratch / first) if first else "").replace("{D}", str(scratch))
            .replace("{ROOT}", str(ROOT)) for a in case.argv]
    out, err = io.StringIO(), io.StringIO()
    old = signal.signal(signal.SIGPROF, _alarm)
    signal.setitimer(signal.ITIMER_PROF, timeout_s)
    t0, c0 = time.perf_counter(), time.process_time()
    rc: int | None
    try:
        with redirect_stdout(out), redirect_stderr(err):
            rc = main(argv)
    except _Hang:
        rc = None
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:  # noqa: BLE001 - an escaped exception is a traceback for the user
        import traceback

        err.write("Traceback (most recent call last):\n" + "".join(traceback.format_exception(exc))[-2000:])
        rc = 1
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, old)
    seconds, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    if rc is None:
        return Outcome(None, out.getvalue(), err.getvalue(), seconds, "hang", cpu_s)
    return Outcome(rc, out.getvalue(), err.getvalue(), seconds, judge(rc, out.getvalue(), err.getvalue(), argv),
                   cpu_s)


def run_subprocess(case: Case, scratch: Path, timeout_s: float = 30.0) -> Outcome:
    """Run one case through the real `planner` executable."""
    import subprocess
    import time

    for name, content in case.files.items():
        (scratch / name).write_bytes(content)
    first = next(iter(case.files), None)
    argv = [a.replace("{F}", str(scratch / first) if first else "").replace("{D}", str(scratch))
            .replace("{ROOT}", str(ROOT)) for a in case.argv]
    exe = Path(sys.executable).parent / "planner"
    t0 = time.perf_counter()
    try:
        p = subprocess.run([str(exe), *argv], capture_output=True, text=True, timeout=timeout_s,
                           errors="replace")
    except subprocess.TimeoutExpired:
        return Outcome(None, "", "", time.perf_counter() - t0, "hang")
    seconds = time.perf_counter() - t0
    return Outcome(p.returncode, p.stdout, p.stderr, seconds, judge(p.returncode, p.stdout, p.stderr, argv))


__all__ = ["Case", "Outcome", "make_cases", "run_in_process", "run_subprocess", "judge"]
