"""Fit a task profile from an eval log (JSONL), check it on held-out samples, write YAML.

Input, one JSON object per line, either per sample
    {"problem": "p17", "correct": true, "answer": "204", "tokens": 8123, "score": 0.71}
("answer", "tokens" and "score" optional) or per problem
    {"problem": "p17", "n": 32, "correct": 27}.
The two formats cannot be mixed in one file. The reader (and the split into fitting and
held-out halves) is evallog.py.

What is fitted:
- difficulty: the candidates of selection.py (a Beta and a 2-component Beta mixture with
  the mean fixed at the observed pass@1, logit-grid priors, other models' templates),
  chosen by held-out samples; with templates that carry per-problem counts, the shared
  shape stacked with their per-problem Rasch prior (stacking.py);
- trace length (if "tokens"): the log-normal of budget.py, ln T ~ N(m + slope (p_i - mean),
  sigma), by maximum likelihood, treating samples at the largest length as truncated when
  at least 2% of them sit there;
- majority vote (if "answer"): the share of wrong answers taken by each problem's most
  common wrong answer, pooled over problems with at least 4 wrong answers;
- reward model (if "score"): the within-problem AUC of scores, correct vs wrong.

Held-out check: half of each problem's samples (random, fixed seed) fit the model, which
then predicts pass@k up to the full n; the observed value is the unbiased estimator on all
samples. A good fit predicts the held-out k, not just the fitted ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from scipy import optimize, special

from planner.accuracy.beta_fits import fit_beta, fit_mixture
from planner.accuracy.answer_stats import fit_reward_auc, fit_wrong_share
from planner.accuracy.evallog import EvalData, read_eval_log, split_half
from planner.errors import InputError

DIFFICULTY_CHOICES = ("auto", "beta", "mixture", "logit_grid", "template", "empirical")
BOOTSTRAP_NOTE = "each replicate refitted with a plausible model (held-out score near the best), in turn"
STACK_NOTE = "stacked with a replicate of the per-problem prior (ability drawn), same weight"
CENSOR_FRACTION = 0.02


# ---------------------------------------------------------------------------------------
# Difficulty fits (the fits themselves are in beta_fits.py, selection.py)
# ---------------------------------------------------------------------------------------

def _spec_mean(diff: dict, path) -> float:
    """Mean of a fitted difficulty mapping; an out-of-range fitted parameter is refused
    here (file, field and value), before any profile is written."""
    from planner.accuracy.profile import DifficultySpec
    from planner.catalog import validation_error

    try:
        return round(float(DifficultySpec.model_validate(diff).mean()), 6)
    except Exception as exc:
        err = validation_error(exc, f"profile fitted from {path}")
        raise InputError(err.reason, file=err.file, field=f"difficulty.{err.field}" if err.field else "difficulty",
                         value=err.value, has_value=err.has_value) from None


def bic(fit: dict, n_problems: int) -> float:
    return -2.0 * fit["loglik"] + fit["n_params"] * math.log(max(n_problems, 2))


def heldout_check(data: EvalData, kind: str, seed: int = 0, templates=None) -> dict:
    """Fit on half the samples of each problem, predict pass@k at k up to the full n and
    compare with the unbiased estimate from all samples."""
    from planner.accuracy.estimators import pass_at_k_unbiased

    from planner.accuracy.profile import DifficultySpec
    from planner.accuracy.selection import choose_difficulty

    n_a, c_a, _, _ = split_half(data, seed)
    keep = n_a > 0
    if not keep.any():
        raise InputError("every problem has 1 sample: the held-out check needs at least 2 per problem",
                         file=data.path, field="n")
    if kind == "empirical":
        kind = "beta"
    model = DifficultySpec.model_validate(choose_difficulty(n_a[keep], c_a[keep], only=kind, strict=False,
                                                                     templates=templates)["spec"]).build()
    n_min = int(data.n.min())
    ks = sorted({int(k) for k in np.unique(np.round(np.geomspace(1, n_min, num=8))) if k >= 1} | {n_min})
    rows = []
    for k in ks:
        obs = float(pass_at_k_unbiased(data.n, data.correct, np.full(len(data.n), k)).mean())
        pred = float(model.pass_at_k(k))
        rows.append({"k": k, "observed": obs, "predicted": pred, "error": pred - obs})
    return {"fitted_on_samples_per_problem": float(np.median(n_a)), "rows": rows,
            "max_abs_error": max(abs(r["error"]) for r in rows)}


# ---------------------------------------------------------------------------------------
# Trace length (majority and reward model: answer_stats.py)
# ---------------------------------------------------------------------------------------

def fit_trace_length(data: EvalData) -> Optional[dict]:
    if not data.tokens:
        return None
    p_hat = {prob: c / n for prob, n, c in zip(data.problems, data.n, data.correct)}
    pts = [(t, p_hat[prob]) for prob, lst in data.tokens.items() for t, _ in lst]
    if len(pts) < 5:
        return None
    t = np.array([x[0] for x in pts])
    pv = np.array([x[1] for x in pts])
    p_mean = data.pass_at_1
    cap = t.max()
    censored = (t >= cap)
    if censored.mean() < CENSOR_FRACTION:
        censored[:] = False
    lt = np.log(t)
    xs = pv - p_mean
    slope_free = len(np.unique(np.round(pv, 6))) > 1

    log_cap = math.log(cap)

    def nll(th):
        mu = th[0] + (th[1] * xs if slope_free else 0.0 * xs)
        sig = math.exp(th[2])
        z = (lt[~censored] - mu[~censored]) / sig
        ll = (-0.5 * z * z).sum() - (~censored).sum() * (th[2] + 0.5 * math.log(2 * math.pi))
        if censored.any():
            ll += special.log_ndtr(-(log_cap - mu[censored]) / sig).sum()
        return -ll

    res = optimize.minimize(nll, [float(np.median(lt)), 0.0, math.log(max(lt.std(), 0.05))],
                            method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-8, "maxiter": 4000})
    return {"median_tokens": float(math.exp(res.x[0])), "sigma": float(math.exp(res.x[2])),
            "difficulty_slope": float(res.x[1]) if slope_free else 0.0,
            "truncated_fraction": float(censored.mean()), "max_tokens": float(cap), "n_samples": int(len(t))}


# ---------------------------------------------------------------------------------------
# The whole fit
# ---------------------------------------------------------------------------------------

@dataclass
class FitResult:
    data: EvalData
    beta: dict
    mixture: Optional[dict]
    chosen: str
    heldout: dict
    trace: Optional[dict]
    wrong_share: Optional[dict]
    reward: Optional[dict]
    profile: object   # TaskProfile
    cv: Optional[dict] = None

    def summary(self) -> dict:
        d = self.data
        out = {
            "file": d.path, "format": d.fmt, "problems": len(d.problems), "samples": int(d.n.sum()),
            "pass_at_1": d.pass_at_1,
            "difficulty": {"chosen": self.chosen,
                           "beta": {"a": self.beta["a"], "b": self.beta["b"], "loglik": self.beta["loglik"],
                                    "bic": bic(self.beta, len(d.problems))}},
            "heldout": self.heldout,
        }
        if self.cv:
            out["cv_heldout_loglik"] = self.cv
        if self.mixture is not None:
            out["difficulty"]["mixture"] = {"components": self.mixture["components"],
                                            "loglik": self.mixture["loglik"],
                                            "bic": bic(self.mixture, len(d.problems))}
        if self.trace is not None:
            out["trace_length"] = self.trace
        if self.wrong_share is not None:
            out["majority"] = self.wrong_share
        if self.reward is not None:
            out["reward_model"] = self.reward
        return out


TEMPLATE_DIR = ("examples", "templates")   # builtin_dir(kind) / subfolder: the shipped task templates


def _model_key(name: str) -> str:
    return str(name).strip().lower().replace(" ", "-").replace("_", "-")


def task_templates(task: str, model: str) -> list:
    """The shipped templates of ``task`` (examples/templates/<task>--<model>.yaml), every
    model's but ``model``'s own (a template of the model fitted would be an earlier fit of
    the same model, not the other models' shape): what `planner fit` offers the held-out
    choice when no --template is given. Empty where none exists."""
    from planner.catalog import builtin_dir
    from planner.accuracy.profile import SEP, index_pairs

    found = index_pairs([builtin_dir(TEMPLATE_DIR[0]) / TEMPLATE_DIR[1]])
    return [p for stem, p in sorted(found.items())
            if stem.split(SEP, 1)[0] == task and _model_key(stem.split(SEP, 1)[1]) != _model_key(model)]


def fit_eval_log(path, model: str, task: str, *, task_kind: str = "math_answer",
                 difficulty: str = "auto", gen_len: Optional[int] = None, seed: int = 0,
                 templates=None) -> FitResult:
    """Read, fit and assemble a TaskProfile (not yet written). ``templates``: other models'
    priors on the same task (grid weight arrays, or profile names / YAML paths read by
    selection.template_weights) for logit_prior.fit_template_shift, a further candidate;
    None: the task's shipped templates (task_templates) under ``auto`` and ``template``;
    []: none."""
    from planner.accuracy.profile import TASK_KINDS, TaskProfile
    from planner.catalog import validation_error

    from planner.accuracy.selection import bootstrap_replicates, choose_difficulty, extrapolation_error
    from planner.accuracy.stacking import rasch_context, stack_rasch

    if difficulty not in DIFFICULTY_CHOICES:
        raise InputError(f"unknown difficulty kind (choose from {', '.join(DIFFICULTY_CHOICES)})",
                         field="difficulty", value=difficulty)
    if task_kind not in TASK_KINDS:
        raise InputError(f"unknown task kind (choose from {', '.join(TASK_KINDS)})", field="task-kind",
                         value=task_kind)
    template_names, template_refs = [], []
    if templates is None and difficulty in ("auto", "template"):
        templates = task_templates(task, model) or None   # the task's shipped templates, if any
    if templates is not None:
        from planner.accuracy.selection import template_weights

        template_refs = [t for t in templates if not isinstance(t, np.ndarray)]
        template_names = [Path(str(t)).name for t in template_refs]
        templates = [t if isinstance(t, np.ndarray) else template_weights(t) for t in templates] or None
    data = read_eval_log(path)
    if len(data.problems) < 2:  # one problem does not determine a difficulty distribution
        raise InputError(f"{len(data.problems)} problem in the log: at least 2 are needed to fit a profile",
                         file=str(path))
    m = data.pass_at_1
    beta = fit_beta(data.n, data.correct, mean=m)
    mixture = None
    if difficulty in ("auto", "mixture") and len(data.problems) >= 8:
        mixture = fit_mixture(data.n, data.correct, mean=m, seed=seed)
    choice = ctx = None
    if difficulty == "empirical":
        chosen = "empirical"
    else:
        only = None if difficulty == "auto" else difficulty
        if difficulty == "mixture" and mixture is None:
            only = "beta"
        if difficulty == "template" and not templates:
            raise InputError("--difficulty template needs prior templates (other models' grid priors of the task)",
                             file=str(path), field="difficulty", value=difficulty)
        # templates with per-problem counts: the shared shape, stacked below with their
        # per-problem (Rasch) prior (stacking.py); only under auto (a forced kind stays alone)
        ctx = rasch_context(template_refs, data.problems) if difficulty == "auto" and template_refs else None
        if ctx is not None:
            only = "template"
        choice = choose_difficulty(data.n, data.correct, seed=seed, only=only, file=str(path), templates=templates)
        chosen = choice["chosen"]
    best = choice["plausible"][0] if choice else chosen     # a single candidate (chosen may be the average)
    held = heldout_check(data, best, seed=seed, templates=templates)
    trace = fit_trace_length(data)
    if trace is not None:   # the problem effect of the lengths (lengths.py)
        from planner.accuracy.lengths import fit_length_components

        trace.update(fit_length_components(data, trace["difficulty_slope"]) or {})
    wrong = fit_wrong_share(data)
    reward = fit_reward_auc(data)

    if chosen == "empirical":
        diff = {"kind": "empirical", "n": [int(x) for x in data.n], "correct": [int(x) for x in data.correct],
                "prior": [0.5, 0.5]}
        uncertainty = None
    else:
        diff = choice["spec"]
        uncertainty = {"method": f"bootstrap over problems and samples, {BOOTSTRAP_NOTE}",
                       "replicates": bootstrap_replicates(data.n, data.correct, choice["plausible"], seed=seed,
                                                          templates=templates),
                       "samples_per_problem": float(np.median(data.n))}
        if ctx is not None:   # stacked by the error of extrapolating pass@n (stacking.py)
            st = stack_rasch(data.n, data.correct, data.problems, choice, ctx, uncertainty["replicates"],
                             seed=seed, templates=templates)
            diff, chosen, err = st["spec"], st["chosen"], st["extrapolation_error"]
            uncertainty.update(replicates=st["replicates"], method=uncertainty["method"] + "; " + STACK_NOTE)
        else:
            err = extrapolation_error(data.n, data.correct, best, seed=seed, templates=templates)
        uncertainty["extrapolation_error_per_decade"] = round(err, 5)
    assumptions = [f"Fitted by `planner fit` from {Path(path).name}: {len(data.problems)} problems, "
                   f"{int(data.n.sum())} samples."]
    if trace is None:
        ref = int(gen_len) if gen_len else 4096
        tl = {"median_tokens": ref / 4.0, "sigma": 0.6, "difficulty_slope": 0.0}
        assumptions.append("No token counts in the log: trace length assumed log-normal with median = "
                           "reference_gen_len / 4, sigma 0.6, no difficulty slope.")
    else:
        ref = int(gen_len) if gen_len else int(trace["max_tokens"])
        tl = {"median_tokens": round(trace["median_tokens"], 1), "sigma": round(trace["sigma"], 4),
              "difficulty_slope": round(trace["difficulty_slope"], 4)}
        if "problem_share" in trace:
            tl["problem_share"] = round(min(trace["problem_share"], 0.95), 4)
    defaults = {"verifier_completeness": 0.9, "verifier_soundness": 0.9,
                "majority_top_wrong_share": 0.2, "reward_auc": 0.75}
    if wrong is not None:
        defaults["majority_top_wrong_share"] = round(wrong["majority_top_wrong_share"], 4)
    else:
        assumptions.append("No answers in the log: majority_top_wrong_share left at 0.2.")
    if reward is not None:
        defaults["reward_auc"] = round(reward["reward_auc"], 4)
    else:
        assumptions.append("No reward scores in the log: reward_auc left at 0.75.")
    if task_kind == "code_tests":
        defaults["verifier_completeness"] = 1.0
    assumptions.append("Verifier completeness/soundness are defaults, not fitted.")
    pass1 = _spec_mean(diff, path)
    src = f"planner fit {Path(path).name}"
    if templates and (chosen in ("template", "average of plausible") or ctx is not None):
        names = ", ".join(template_names) if template_names else f"{len(templates)} grid priors"
        assumptions.append(f"Difficulty shape shared with other models of the task (templates: {names}), "
                           "shifted along logit p to this log.")
    if ctx is not None:
        assumptions.append(f"Stacked with the per-problem (Rasch) prior of {', '.join(ctx.models)}, weight "
                           f"{st['alpha']:.2f} from the error of extrapolating pass@k "
                           + ("rehearsed on the templates (each in turn from as many samples as this log, "
                              "weighted by closeness in ability)." if st["alpha_from"] == "templates rehearsed"
                              else "pass@n from a tenth of the samples."))
    spec_data = {
        "task": task, "model": model, "task_kind": task_kind,
        "description": f"{task} / {model}, fitted from an eval log.",
        "pass_at_1": round(pass1, 6), "n_problems": len(data.problems), "reference_gen_len": ref,
        "difficulty": diff, "trace_length": tl, "defaults": defaults, "quant_sensitivity": 1.0,
        "fit": {"problems": len(data.problems), "samples": int(data.n.sum()),
                "observed_pass_at_1": round(m, 6), "chosen": chosen,
                "cv_heldout_loglik": ({k: (round(v, 3) if np.isfinite(v) else None)  # a candidate that cannot fit: null
                                       for k, v in choice["cv"].items()} or None) if choice else None,
                "beta_loglik": round(beta["loglik"], 4),
                "mixture_loglik": round(mixture["loglik"], 4) if mixture else None,
                "heldout_max_abs_error": round(held["max_abs_error"], 5)},
        "uncertainty": uncertainty,
        "sources": {"pass_at_1": src, "difficulty": src, "trace_length": src if trace else "assumption",
                    "defaults": src, "n_problems": f"{src}: the problems in the log",
                    "reference_gen_len": ("planner fit --gen-len" if gen_len else
                                          f"{src}: its longest trace" if trace is not None else
                                          "assumption: 4096 tokens (no --gen-len, no token counts in the log)"),
                    "quant_sensitivity": "assumption: 1.0, the neutral factor (an eval log at one precision "
                                         "cannot fit it)"},
        "assumptions": assumptions,
    }
    spec_data["fit"] = {k: v for k, v in spec_data["fit"].items() if v is not None}
    if uncertainty is None:
        del spec_data["uncertainty"]
    try:
        spec = TaskProfile.model_validate(spec_data)
    except Exception as exc:   # fitted parameters out of range: refused, never written
        raise validation_error(exc, f"profile fitted from {path}") from None
    return FitResult(data=data, beta=beta, mixture=mixture, chosen=chosen, heldout=held, trace=trace,
                     wrong_share=wrong, reward=reward, profile=spec,
                     cv=choice["cv"] if choice else None)


def write_profile(spec, out_path) -> None:
    from planner.accuracy.profile import profile_to_yaml
    from planner.files import atomic_write_text

    atomic_write_text(out_path, profile_to_yaml(spec))
