"""Verifier profiles: the quality of a verifier model on a task.

One YAML per (verifier model, task) in ``tasks/verifiers/`` (or a ``tasks/verifiers``
folder of a ``$PLANNER_PATH`` entry), named ``<task>--<verifier>.yaml``:

    task: math500
    verifier: qwen2.5-72b
    completeness: 0.95     # P(accept | correct answer)        -> strategy "verify"
    soundness: 0.80        # P(reject | wrong answer)          -> strategy "verify"
    reward_auc: 0.85       # P(score(correct) > score(wrong))  -> strategy "best-of-k"
    sources: {completeness: ..., soundness: ..., reward_auc: ...}

``verifier_quality(verifier, profile)`` gives the three numbers a configuration with that
verifier uses, or, for a pair without a file, the task profile's defaults (its
``defaults:`` block) with a note saying so. The strategies themselves are in
strategies.py (Stroebl et al.'s verify, Luce best-of-k).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from planner.accuracy.profile import SEP  # "<task>--<name>": a task profile's file stem and a verifier's
QUALITY_FIELDS = ("completeness", "soundness", "reward_auc")
# the task profile's StrategyDefaults names of the same three numbers
_PROFILE_FIELDS = {"completeness": "verifier_completeness", "soundness": "verifier_soundness",
                   "reward_auc": "reward_auc"}


class VerifierProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    task: str
    verifier: str
    description: str = ""
    completeness: float = Field(ge=0, le=1)
    soundness: float = Field(ge=0, le=1)
    reward_auc: float = Field(gt=0, lt=1)
    sources: dict[str, str]
    assumptions: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _sourced(self) -> "VerifierProfile":
        missing = [f for f in QUALITY_FIELDS if f not in self.sources]
        if missing:
            raise ValueError(f"sources must say where {', '.join(missing)} come(s) from")
        return self


def _dirs() -> list[Path]:
    from planner.catalog import search_dirs

    return [d / "verifiers" for d in search_dirs("tasks") if (d / "verifiers").is_dir()]


def _index() -> dict[str, Path]:
    from planner.accuracy.profile import index_pairs

    return index_pairs(_dirs())


@lru_cache(maxsize=256)
def _load(path: str, mtime: float) -> VerifierProfile:
    from planner.catalog import parse_spec, read_yaml

    return parse_spec(VerifierProfile, read_yaml(path), path)


def find_verifier(verifier: str, task: str) -> Optional[tuple[VerifierProfile, str]]:
    """(profile, path) of the verifier on the task, None where no file exists."""
    p = _index().get(f"{task}{SEP}{verifier}")
    if p is None:
        return None
    return _load(str(p.resolve()), p.stat().st_mtime), f"{p.parent.parent.name}/{p.parent.name}/{p.name}"


def list_verifiers() -> list[tuple[str, str]]:
    """(task, verifier) for every verifier profile found."""
    return sorted(tuple(stem.split(SEP, 1)) for stem in _index())


def verifier_quality(verifier: Optional[str], profile) -> dict:
    """The verifier numbers for a task profile (planner.accuracy.profile.Profile):
    {"completeness", "soundness", "reward_auc", "source", "note"}; "source" is the
    verifier profile's path, or "task profile defaults" with a note where the pair has no
    file (or no verifier was named: the policy model checks its own answers)."""
    d = profile.spec.defaults
    base = {f: float(getattr(d, _PROFILE_FIELDS[f])) for f in QUALITY_FIELDS}
    if not verifier:
        return {**base, "source": "task profile defaults", "note": None}
    found = find_verifier(verifier, profile.task)
    if found is None:
        return {**base, "source": "task profile defaults",
                "note": f"no verifier profile for {verifier} on {profile.task} "
                        f"(tasks/verifiers/{profile.task}{SEP}{verifier}.yaml): using the task profile's "
                        f"completeness {base['completeness']}, soundness {base['soundness']}, "
                        f"reward_auc {base['reward_auc']}"}
    vp, path = found
    return {**{f: float(getattr(vp, f)) for f in QUALITY_FIELDS}, "source": path, "note": None}


def fit_verifier(path, verifier: str, task: str) -> VerifierProfile:
    """A verifier profile from a scored eval log: JSONL per sample with "problem",
    "correct" (ground truth) and the verifier's "accepted" (its verdict) and/or "score"
    (its reward). completeness = P(accepted | correct), soundness = P(rejected | wrong),
    reward_auc = the within-problem AUC of the scores (answer_stats.fit_reward_auc, the
    Mann-Whitney statistic pooled over problems). A number the log cannot give (no
    verdicts, no scores, no correct or no wrong samples) is refused, naming the field."""
    from planner.accuracy.evallog import _as_bool, read_eval_log
    from planner.accuracy.answer_stats import fit_reward_auc
    from planner.catalog import validation_error
    from planner.errors import InputError
    from planner.safeload import iter_jsonl

    data = read_eval_log(path)      # validates problem / correct / score
    if data.fmt != "sample":
        raise InputError("a verifier fit needs one line per sample (problem, correct, accepted/score)",
                         file=str(path), field="n")
    counts = {True: [0, 0], False: [0, 0]}          # truth -> [accepted, total]
    for lineno, rec in iter_jsonl(path):
        if rec.get("accepted") is None:
            continue
        acc = _as_bool(rec["accepted"])
        if acc is None:
            raise InputError("must be true/false (or 1/0)", file=f"{path}:{lineno}", field="accepted",
                             value=rec["accepted"])
        truth = _as_bool(rec["correct"])
        counts[truth][0] += int(acc)
        counts[truth][1] += 1
    auc = fit_reward_auc(data)
    n_pos, n_neg = counts[True][1], counts[False][1]
    if n_pos == 0 or n_neg == 0:
        raise InputError("the log needs verdicts ('accepted') on both correct and wrong samples",
                         file=str(path), field="accepted", value=f"{n_pos} correct, {n_neg} wrong")
    if auc is None:
        raise InputError("the log needs scores on correct and wrong samples of the same problem",
                         file=str(path), field="score")
    src = f"planner fit {Path(path).name} --verifier {verifier}"
    spec = {"task": task, "verifier": verifier,
            "description": f"{verifier} as verifier on {task}, fitted from a scored log.",
            "completeness": round(counts[True][0] / n_pos, 4),
            "soundness": round(1.0 - counts[False][0] / n_neg, 4),
            "reward_auc": round(auc["reward_auc"], 4),
            "sources": {f: f"{src}: {n_pos} correct and {n_neg} wrong samples" for f in QUALITY_FIELDS}}
    try:
        return VerifierProfile.model_validate(spec)
    except Exception as exc:   # out of range: refused, never written
        raise validation_error(exc, f"verifier profile fitted from {path}") from None


def verifier_to_yaml(vp: VerifierProfile) -> str:
    import yaml

    return yaml.safe_dump(vp.model_dump(), sort_keys=False, width=100, allow_unicode=True)
