"""Task profiles: one YAML file per (task, model) with its sources and assumptions.

Files live in ``tasks/`` (the built-in catalog, ``builtin_dir("tasks")``) or in a
``tasks/`` folder of a ``$PLANNER_PATH`` entry, named ``<task>--<model>.yaml``. Look-ups:
``load_profile("qwen3-8b/aime24")`` (model/task, or task/model), ``"aime24--qwen3-8b"``,
or a YAML path. Schema: see ``TaskProfile`` (and the README, "How the accuracy model works").
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from planner.bounds import MAX_TOKENS
from planner.errors import InputError

TASK_KINDS = ("math_answer", "code_tests", "multiple_choice", "open_ended")
SEP = "--"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class MixtureComponent(_Spec):
    weight: float = Field(gt=0, le=1)
    a: float = Field(gt=0)
    b: float = Field(gt=0)


class DifficultySpec(_Spec):
    """The distribution of per-problem success probability p at the reference budget."""

    kind: Literal["beta", "mixture", "empirical", "logit_grid"]
    a: Optional[float] = Field(None, gt=0)
    b: Optional[float] = Field(None, gt=0)
    components: Optional[list[MixtureComponent]] = None
    n: Optional[list[int]] = None
    correct: Optional[list[int]] = None
    prior: Optional[list[float]] = None
    logit_min: Optional[float] = Field(None, ge=-40, le=0)
    logit_step: Optional[float] = Field(None, gt=0, le=5)
    weights: Optional[list[float]] = None

    @model_validator(mode="after")
    def _shape(self) -> "DifficultySpec":
        if self.kind == "beta" and (self.a is None or self.b is None):
            raise ValueError("a Beta difficulty needs a and b")
        if self.kind == "mixture":
            if not self.components:
                raise ValueError("a mixture difficulty needs components")
            tot = sum(c.weight for c in self.components)
            if abs(tot - 1.0) > 1e-3:
                raise ValueError(f"mixture weights must sum to 1, got {tot:.4f}")
        if self.kind == "logit_grid":
            if self.logit_min is None or self.logit_step is None or not self.weights or len(self.weights) < 2:
                raise ValueError("a logit_grid difficulty needs logit_min, logit_step and at least 2 weights")
            bad = [w for w in self.weights if not (w >= 0 and w < float("inf"))]
            if bad:
                raise ValueError(f"logit_grid weights must be finite and >= 0, got {bad[0]}")
            tot = sum(self.weights)
            if abs(tot - 1.0) > 1e-3:
                raise ValueError(f"logit_grid weights must sum to 1, got {tot:.4f}")
        if self.kind == "empirical":
            if not self.n or not self.correct or len(self.n) != len(self.correct):
                raise ValueError("an empirical difficulty needs n and correct lists of equal length")
            for i, (n, c) in enumerate(zip(self.n, self.correct)):
                if n <= 0 or c < 0 or c > n:
                    raise ValueError(f"problem {i}: need n > 0 and 0 <= correct <= n, got n={n}, correct={c}")
            if self.prior is not None and (len(self.prior) != 2 or min(self.prior) <= 0):
                raise ValueError("prior must be two positive numbers [a0, b0]")
        return self

    def build(self):
        from planner.accuracy import difficulty as D

        if self.kind == "beta":
            return D.BetaDifficulty(float(self.a), float(self.b))
        if self.kind == "mixture":
            tot = sum(c.weight for c in self.components)
            return D.MixtureDifficulty(tuple(c.weight / tot for c in self.components),
                                       tuple(c.a for c in self.components),
                                       tuple(c.b for c in self.components))
        if self.kind == "logit_grid":
            tot = sum(self.weights)
            return D.LogitGridDifficulty(float(self.logit_min), float(self.logit_step),
                                         tuple(w / tot for w in self.weights))
        prior = tuple(self.prior) if self.prior else D.DEFAULT_PRIOR
        return D.EmpiricalDifficulty(tuple(self.n), tuple(self.correct), prior)

    def mean(self) -> float:
        return self.build().mean()


class TraceLengthSpec(_Spec):
    """Log-normal reasoning-trace length: median at p = pass_at_1, log-sd, slope in p."""

    median_tokens: float = Field(gt=0, le=MAX_TOKENS)
    sigma: float = Field(gt=0, le=5)
    difficulty_slope: float = Field(0.0, ge=-10, le=10)
    problem_share: Optional[float] = Field(
        None, ge=0, le=0.95,
        description="share of the ln(length) variance that is a per-problem effect (default: "
                    "budget.DEFAULT_PROBLEM_SHARE)")


class UncertaintySpec(_Spec):
    """The fit's uncertainty: difficulty models refitted on bootstrap resamples (problems
    with replacement, then each problem's samples with replacement); a prediction's
    interval is the spread of the prediction over them (planner/accuracy/uncertainty.py)."""

    method: str
    replicates: list[DifficultySpec] = Field(min_length=2)
    samples_per_problem: Optional[float] = Field(None, gt=0)
    extrapolation_error_per_decade: float = Field(0.0, ge=0, le=1)


class ProblemCounts(_Spec):
    """Per-problem counts of the log a profile was fitted on, by problem id: a template
    carrying them lets `planner fit` build a per-problem (Rasch) prior for another model of
    the task (planner/accuracy/stacking.py)."""

    problems: list[str] = Field(min_length=2)
    n: list[int]
    correct: list[int]

    @model_validator(mode="after")
    def _aligned(self) -> "ProblemCounts":
        if not (len(self.problems) == len(self.n) == len(self.correct)):
            raise ValueError("problems, n and correct must have equal lengths")
        if len(set(self.problems)) != len(self.problems):
            raise ValueError("problem ids must be unique")
        for p, n, c in zip(self.problems, self.n, self.correct):
            if n <= 0 or c < 0 or c > n:
                raise ValueError(f"problem {p}: need n > 0 and 0 <= correct <= n, got n={n}, correct={c}")
        return self


class StrategyDefaults(_Spec):
    verifier_completeness: float = Field(0.9, ge=0, le=1)
    verifier_soundness: float = Field(0.9, ge=0, le=1)
    majority_top_wrong_share: float = Field(0.3, ge=0, le=1)
    reward_auc: float = Field(0.75, gt=0, lt=1)


class TaskProfile(_Spec):
    task: str
    model: str
    task_kind: Literal["math_answer", "code_tests", "multiple_choice", "open_ended"]
    description: str = ""
    pass_at_1: float = Field(ge=0, le=1, description="single-sample accuracy at the reference budget")
    n_problems: Optional[int] = Field(None, ge=1)
    reference_gen_len: int = Field(gt=0, le=MAX_TOKENS, description="generation budget (tokens) of pass_at_1")
    difficulty: DifficultySpec
    trace_length: TraceLengthSpec
    defaults: StrategyDefaults = StrategyDefaults()
    quant_sensitivity: float = Field(1.0, ge=0, le=10)
    sources: dict[str, str]
    assumptions: Union[list[str], str] = Field(default_factory=list)
    fit: Optional[dict] = None
    uncertainty: Optional[UncertaintySpec] = None
    problem_counts: Optional[ProblemCounts] = None

    @model_validator(mode="after")
    def _consistent(self) -> "TaskProfile":
        m = self.difficulty.mean()
        tol = 2e-3 if self.difficulty.kind == "empirical" else 5e-4
        if abs(m - self.pass_at_1) > tol:
            raise ValueError(f"difficulty mean {m:.4f} does not match pass_at_1 {self.pass_at_1:.4f}")
        if "pass_at_1" not in self.sources:
            raise ValueError("sources must say where pass_at_1 comes from (key 'pass_at_1')")
        return self

    @property
    def perfect_checker(self) -> bool:
        """True where a sample can be checked exactly (code with unit tests)."""
        return self.task_kind == "code_tests"


@dataclass(frozen=True, eq=False)
class Profile:
    """A loaded profile: the validated spec plus the models built from it (cached)."""

    spec: TaskProfile
    path: str

    @property
    def name(self) -> str:
        return f"{self.spec.task}{SEP}{self.spec.model}"

    @property
    def task(self) -> str:
        return self.spec.task

    @property
    def model(self) -> str:
        return self.spec.model

    @cached_property
    def difficulty(self):
        return self.spec.difficulty.build()

    @cached_property
    def trace(self):
        from planner.accuracy.budget import TraceLength

        from planner.accuracy.budget import DEFAULT_PROBLEM_SHARE

        tl = self.spec.trace_length
        share = DEFAULT_PROBLEM_SHARE if tl.problem_share is None else tl.problem_share
        return TraceLength(tl.median_tokens, tl.sigma, tl.difficulty_slope, p_mean=self.spec.pass_at_1,
                           problem_share=share)

    def grid(self):
        return self.difficulty.grid()


def profile_from_dict(data, file: str = "<profile>") -> Profile:
    from planner.catalog import parse_spec

    spec = parse_spec(TaskProfile, data, file)
    return Profile(spec=spec, path=str(file))


@lru_cache(maxsize=512)
def _load_path_cached(path: str, mtime: float) -> Profile:
    from planner.catalog import read_yaml

    return profile_from_dict(read_yaml(path), path)


def load_profile_path(path: Union[str, Path]) -> Profile:
    from planner.safeload import is_file

    p = Path(path)
    if not is_file(p):
        raise InputError("file not found", file=str(p))
    return _load_path_cached(str(p.resolve()), p.stat().st_mtime)


def _dirs() -> list[Path]:
    from planner.catalog import search_dirs

    return [d for d in search_dirs("tasks") if d.is_dir()]


def index_pairs(dirs) -> dict[str, Path]:
    """stem -> path of the ``<a>--<b>.yaml`` files in ``dirs``; earlier directories (the
    user's, $PLANNER_PATH) take precedence over later ones (the built-ins)."""
    found: dict[str, Path] = {}
    for d in dirs:
        for p in sorted(d.glob("*.y*ml")):
            if SEP in p.stem and p.stem not in found:
                found[p.stem] = p
    return found


def _index() -> dict[str, Path]:
    """stem -> path; user directories ($PLANNER_PATH) take precedence over built-ins."""
    return index_pairs(_dirs())


def list_profiles() -> list[tuple[str, str]]:
    """(task, model) for every profile found."""
    return sorted(tuple(stem.split(SEP, 1)) for stem in _index())


def list_tasks() -> list[str]:
    return sorted({t for t, _ in list_profiles()})


def profiles_for_task(task: str) -> list[Profile]:
    """Every profile of ``task`` (one per model), loaded."""
    out = [load_profile_path(p) for stem, p in _index().items() if stem.split(SEP, 1)[0] == task]
    return sorted(out, key=lambda pr: pr.model)


def load_profile(ref: Union[str, Path, Profile, TaskProfile]) -> Profile:
    """A profile by "model/task" (or "task/model", or "task--model") or by YAML path."""
    if isinstance(ref, Profile):
        return ref
    if isinstance(ref, TaskProfile):
        return Profile(spec=ref, path="<in memory>")
    s = str(ref)
    from planner.safeload import is_file

    if s.endswith((".yaml", ".yml")) or is_file(s):
        return load_profile_path(s)
    index = _index()
    candidates = []
    if SEP in s:
        candidates.append(s)
    elif "/" in s:
        x, y = s.split("/", 1)
        candidates += [f"{y}{SEP}{x}", f"{x}{SEP}{y}"]
    for c in candidates:
        if c in index:
            return load_profile_path(index[c])
    known = ", ".join(f"{m}/{t}" for t, m in list_profiles()[:60])
    raise InputError(f"unknown task profile; give model/task or a YAML path (known: {known})",
                     field="profile", value=s)


def check_task(task: str) -> str:
    """``task`` when some profile is of it (:func:`list_tasks`); else an InputError naming
    the known tasks: the rule of every command that takes a task."""
    tasks = list_tasks()
    if task not in tasks:
        raise InputError(f"unknown task (known: {', '.join(tasks)})", field="task", value=task)
    return task


def find_profile(model: str, task: str) -> Profile:
    """The profile for (model, task); InputError naming what exists when there is none."""
    index = _index()
    stem = f"{task}{SEP}{model}"
    if stem in index:
        return load_profile_path(index[stem])
    check_task(task)
    models = sorted(m for t, m in list_profiles() if t == task)
    raise InputError(f"no profile for this model on task '{task}' (profiles exist for: {', '.join(models)})",
                     field="model", value=model)


def profile_to_yaml(spec: TaskProfile) -> str:
    """Serialize a profile (used by `planner fit`), keeping a readable key order."""
    import yaml

    data = spec.model_dump(exclude_none=True)
    order = ["task", "model", "task_kind", "description", "pass_at_1", "n_problems", "reference_gen_len",
             "difficulty", "trace_length", "defaults", "quant_sensitivity", "fit", "uncertainty", "sources", "assumptions"]
    ordered = {k: data[k] for k in order if k in data}
    ordered.update({k: v for k, v in data.items() if k not in ordered})

    class _Dumper(yaml.SafeDumper):
        pass

    def _list_flow(dumper, value):
        flow = len(value) > 0 and all(isinstance(v, (int, float)) for v in value)
        return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)

    _Dumper.add_representer(list, _list_flow)
    return yaml.dump(ordered, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)
