"""Every number in a shipped task profile has a source (tests/test_sources.py does the same
for hardware, model and engine specs; task profiles are read here).

tasks/*.yaml and tasks/verifiers/*.yaml: every top-level key holding a number has an entry
in ``sources:`` (a key of the form ``<field>_<sub>`` sources one sub-field more precisely
and counts for nothing else). The fitted templates (examples/templates/*.yaml, written by
benchmarks/make_math_templates.py through `planner fit`) too, with two exempt records:
``fit`` (the fit's own diagnostics: log-likelihoods, counts of problems and samples,
the candidate chosen) and ``uncertainty`` (bootstrap replicates of the difficulty), both
computed from the same log as the difficulty, whose source they share. A profile freshly
written by `planner fit` holds to the same rule (its sources are written by fit.py, not by
hand)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from planner.accuracy.profile import TaskProfile
from tests.test_sources import _number_keys as number_keys

ROOT = Path(__file__).resolve().parent.parent
TASKS = sorted((ROOT / "tasks").glob("*.yaml"))
VERIFIERS = sorted((ROOT / "tasks" / "verifiers").glob("*.yaml"))
TEMPLATES = sorted((ROOT / "examples" / "templates").glob("*.yaml"))
EXEMPT_FITTED = {"fit", "uncertainty"}   # records derived from the difficulty's own log (docstring)


def _number_keys(doc: dict) -> set:
    return number_keys(doc, not_facts={"sources"})


def _unsourced(doc: dict, exempt=frozenset()) -> set:
    sources = doc.get("sources") or {}
    assert all(isinstance(t, str) and t.strip() for t in sources.values())
    return _number_keys(doc) - set(sources) - set(exempt)


def test_the_shipped_profiles_are_found():
    assert len(TASKS) >= 30 and len(VERIFIERS) >= 5 and len(TEMPLATES) == 7


@pytest.mark.parametrize("path", TASKS + VERIFIERS, ids=lambda p: p.name)
def test_every_number_in_a_task_profile_has_a_source(path):
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert _unsourced(doc) == set(), path
    # no typo'd source key: a field, or a field's sub-field (<field>_<sub>)
    for key in doc["sources"]:
        assert key in doc or any(key.startswith(f + "_") and isinstance(doc[f], dict) for f in doc), (path, key)


@pytest.mark.parametrize("path", TASKS, ids=lambda p: p.name)
def test_n_problems_agrees_with_the_description(path):
    """The count the description states (written from the dataset's card) is n_problems."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    stated = re.search(r"\(([\d,]+) problems", doc["description"])
    if stated:
        assert int(stated.group(1).replace(",", "")) == doc["n_problems"], path
    assert f"{doc['n_problems']:,}" in doc["sources"]["n_problems"], path


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_every_number_in_a_fitted_template_has_a_source(path):
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert _unsourced(doc, EXEMPT_FITTED) == set(), path
    assert doc["n_problems"] == len(doc["problem_counts"]["problems"])


def test_a_fresh_planner_fit_profile_sources_its_numbers(tmp_path):
    from planner.accuracy.fit import fit_eval_log

    log = tmp_path / "log.jsonl"
    rows = [{"problem": f"p{i}", "correct": int(j < i % 5), "tokens": 100 + 7 * j + i} for i in range(12)
            for j in range(6)]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = fit_eval_log(log, "m", "t", templates=[]).profile
    doc = json.loads(spec.model_dump_json(exclude_none=True))
    assert _unsourced(doc, EXEMPT_FITTED) == set()
    assert "its longest trace" in spec.sources["reference_gen_len"]
    TaskProfile.model_validate(doc)
