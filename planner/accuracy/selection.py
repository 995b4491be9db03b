"""Which difficulty model a fit keeps, and how sure it is.

choose_difficulty: every candidate (a Beta with the mean fixed at the observed pass@1, a
two-Beta mixture, the logit-grid prior of logit_prior.py with each smoothing strength in
LAMBDAS) is scored by held-out samples (logit_prior.cv_score: fit on one half of every
problem's samples, score the predictive likelihood of the other half); the best is
refitted on all samples. Nothing here looks at the fit to the samples it was fitted on.
With templates (other models' profiles of the task, template_weights) the shared-shape
prior of logit_prior.fit_template_shift is one more candidate; when it scores best it is
kept alone, not averaged with the plausible shapes fitted on this log only. A grid result is
kept as its posterior average over the log's problems (logit_prior.posterior_average).

bootstrap_replicates: the plausible candidates (held-out score within PLAUSIBLE_NATS of
the best), in turn, refitted on BOOTSTRAP_REPLICATES resamples (problems drawn with
replacement, then each drawn problem's c* ~ Binomial(n, c/n)), each returned as a
difficulty dict for the profile's ``uncertainty`` field. Intervals from them cover the
sampling error of the problems and of the samples and the spread between tail shapes the
held-out samples cannot tell apart; not a tail shape outside the candidates. A template
replicate is one template with one shift drawn from its posterior
(logit_prior.fit_template_shift with an rng), so the interval spans the plausible abilities
of a log with (almost) nothing solved, which resampling alone cannot (every resample of an
all-zero log is all zero).
"""

from __future__ import annotations

import numpy as np

from planner.accuracy import logit_prior as LP

BOOTSTRAP_REPLICATES = 24
# Candidates within TIE_NATS of the best held-out score count as tied; the first of them
# in the order of candidates() (smoothest grid first, then the Beta, the mixture last:
# fewest effective parameters first) is kept. Decides degenerate logs (nothing or
# everything solved), where every candidate predicts the held-out half perfectly.
TIE_NATS = 0.5
# The profile keeps the average of the plausible candidates (below), as grid weights:
# the held-out check cannot tell them apart, and averaging them steadies the tail.
AVERAGE = "average of plausible"
# Candidates within PLAUSIBLE_NATS of the best held-out score are plausible: the
# bootstrap replicates are refitted with each of them in turn, so an interval carries the
# uncertainty of the tail's shape as well as the sampling error.
PLAUSIBLE_NATS = 3.0
MIN_PROBLEMS_FOR_MIXTURE = 8


def _sig(x: float, digits: int = 6) -> float:
    return float(f"{float(x):.{digits}g}")


def _fit_beta(n, c):
    from planner.accuracy.beta_fits import fit_beta

    m = float(np.mean(c / n))
    return fit_beta(n, c, mean=m)


def _fit_mixture(n, c):
    from planner.accuracy.beta_fits import fit_mixture

    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        return fit_mixture(n, c, mean=float(np.mean(c / n)))


TEMPLATE = "template"


def candidates(n_problems: int, templates=None) -> dict:
    """name -> (fit_fn, seq_loglik_fn); fit_fn(n, c) -> params. With ``templates`` (grid
    weights fitted on other models of the task) the shared-shape prior of
    logit_prior.fit_template_shift comes first."""
    out = {}
    if templates is not None and len(templates):
        tpl = [np.asarray(t, float) for t in templates]
        out[TEMPLATE] = (lambda n, c, rng=None: LP.fit_template_shift(n, c, tpl, rng),
                         lambda n, c, w: LP.grid_seq_loglik(n, c, w))
    for lam in sorted(LP.LAMBDAS, reverse=True):
        out[f"logit_grid(lam={lam:g})"] = ((lambda lam: lambda n, c: LP.fit_grid_weights(n, c, lam))(lam),
                                           lambda n, c, w: LP.grid_seq_loglik(n, c, w))
    out["beta"] = (_fit_beta, lambda n, c, f: LP.beta_seq_loglik(n, c, f["a"], f["b"]))
    if n_problems >= MIN_PROBLEMS_FOR_MIXTURE:
        out["mixture"] = (_fit_mixture, lambda n, c, f: LP.mixture_seq_loglik(n, c, f["components"]))
    return out


def spec_dict(name: str, params) -> dict:
    """A profile's ``difficulty`` mapping for a fitted candidate (rounded to 6 significant
    digits; the logit-grid weights below 1e-12 are dropped to 0)."""
    if name == "beta":
        return {"kind": "beta", "a": _sig(params["a"]), "b": _sig(params["b"])}
    if name == "mixture":
        comps = [{"weight": _sig(co["weight"]), "a": _sig(co["a"]), "b": _sig(co["b"])} for co in params["components"]]
        tot = sum(co["weight"] for co in comps)
        comps[-1]["weight"] = _sig(comps[-1]["weight"] + 1.0 - tot, 9)
        return {"kind": "mixture", "components": comps}
    w = np.where(params < 1e-12, 0.0, params)
    w = w / w.sum()
    return {"kind": "logit_grid", "logit_min": LP.LOGIT_MIN, "logit_step": LP.LOGIT_STEP,
            "weights": [_sig(x, 5) for x in w]}


# Beta shapes a fit may keep: below MIN_SHAPE a Beta is a point mass at 0 or 1 in all
# but name (the logit-grid prior represents that), and the quadrature loses accuracy.
MIN_SHAPE = 1e-3
MAX_SHAPE = 1e6


def _is_grid(name: str) -> bool:
    return name.startswith("logit_grid") or name == TEMPLATE


def _usable(params, name: str) -> bool:
    """A fitted candidate whose parameters are finite and within [MIN_SHAPE, MAX_SHAPE]."""
    if _is_grid(name):
        return bool(np.all(np.isfinite(params)))
    comps = params["components"] if name == "mixture" else [params]
    return all(np.isfinite(co["a"]) and np.isfinite(co["b"]) and MIN_SHAPE <= co["a"] <= MAX_SHAPE
               and MIN_SHAPE <= co["b"] <= MAX_SHAPE for co in comps)


def _refuse(name: str, params, file: str = None) -> None:
    """A forced candidate whose fitted shape is out of range: InputError, nothing written."""
    from planner.errors import InputError

    comps = params["components"] if name == "mixture" else [params]
    for i, co in enumerate(comps):
        for key in ("a", "b"):
            v = co[key]
            if not (np.isfinite(v) and MIN_SHAPE <= v <= MAX_SHAPE):
                fld = f"difficulty.components.{i}.{key}" if name == "mixture" else f"difficulty.{key}"
                raise InputError(f"fitted {name} shape out of range [{MIN_SHAPE:g}, {MAX_SHAPE:g}] (the log "
                                 "is degenerate for this model; use --difficulty auto or logit_grid)",
                                 file=file, field=fld, value=float(v))


def choose_difficulty(n, c, seed: int = 0, only: str = None, strict: bool = True, file: str = None,
                      templates=None, posterior: bool = True) -> dict:
    """Score the candidates by held-out samples, refit the best on all samples.

    With ``posterior`` a grid result (a grid candidate, the template, or the average of
    the plausible) is replaced by its posterior average over the log's problems
    (logit_prior.posterior_average): each problem's own count, not only the prior, sets
    its share of pass@k.

    Returns {"chosen": name, "params": fitted, "cv": {name: score}, "spec": difficulty dict}."""
    n = np.asarray(n, float)
    c = np.asarray(c, float)
    cands = candidates(len(n), templates)
    if only is not None:
        names = [k for k in cands if k == only or k.startswith(only + "(")]
        cands = {k: cands[k] for k in names}
    fits: dict = {}

    def full_fit(name):
        if name not in fits:
            fits[name] = cands[name][0](n, c)
        return fits[name]

    scores = {}
    if len(cands) > 1:
        for name, (fit_fn, ll_fn) in cands.items():
            scores[name] = LP.cv_score(fit_fn, ll_fn, n, c, seed=seed)
        top = max(scores.values())
        ranked = sorted(cands, key=lambda k: -scores[k])
        # the first usable candidate among the tied best (order of candidates()), else
        # the best usable one; the grid prior is always usable
        best = next((k for k in cands if scores[k] >= top - TIE_NATS and _usable(full_fit(k), k)), None)
        if best is None:
            best = next(k for k in ranked if _usable(full_fit(k), k))
        plausible = [best] + [k for k in cands if k != best and scores[k] >= top - PLAUSIBLE_NATS
                              and _usable(full_fit(k), k)] if best != TEMPLATE else [best]
    else:
        best = next(iter(cands))
        plausible = [best]
        if strict and not _usable(full_fit(best), best):
            _refuse(best, full_fit(best), file)
    params = full_fit(best)
    out = {"chosen": best, "params": params, "cv": scores, "spec": spec_dict(best, params),
           "plausible": plausible}
    if len(plausible) > 1 and only is None and best != TEMPLATE:
        # the template, when it is the best, is kept alone: averaging it with shapes fitted
        # on this log alone dilutes the shape the better-sampled models give the tail
        w = np.mean([as_grid_weights(k, full_fit(k)) for k in plausible], axis=0)
        w = LP.tilt_to_mean(w, LP._expit(LP.logit_nodes()), float(np.mean(c / n)))
        out.update(chosen=AVERAGE, params=w, spec=spec_dict("logit_grid", w))
    if posterior and isinstance(out["params"], np.ndarray):
        w = _posterior(n, c, out["params"], tilt=out["chosen"] != TEMPLATE)
        out.update(params=w, spec=spec_dict("logit_grid", w))
    return out


def _posterior(n, c, w, tilt: bool = True) -> np.ndarray:
    """Posterior average of grid weights, tilted back to the observed pass@1 when ``tilt``
    or when anything was solved. The template of a log with nothing solved is not tilted:
    its shift is integrated over a prior from the other models, and its posterior mean of
    pass@1 is the estimate, where the observed 0 is not (a tilt to 0 would put all mass on
    the grid's lowest node and pass@k at ~0 for every k)."""
    post = LP.posterior_average(n, c, w)
    if tilt or np.sum(c) > 0:
        return LP.tilt_to_mean(post, LP._expit(LP.logit_nodes()), float(np.mean(c / n)))
    return post


def as_grid_weights(name: str, params) -> np.ndarray:
    """A fitted candidate as weights on the logit grid: a Beta's (or mixture's) mass in
    each grid node's cell (edges halfway between nodes, the end cells open)."""
    if _is_grid(name):
        return np.asarray(params, float)
    from scipy.special import betainc

    x = LP.logit_nodes()
    edges = np.concatenate([[0.0], LP._expit(x[:-1] + LP.LOGIT_STEP / 2), [1.0]])
    comps = params["components"] if name == "mixture" else [dict(params, weight=1.0)]
    w = np.zeros(len(x))
    for co in comps:
        w += co["weight"] * np.diff(betainc(co["a"], co["b"], edges))
    w = np.maximum(w, 0.0)
    return w / w.sum()


def bootstrap_replicates(n, c, plausible, seed: int = 0, replicates: int = BOOTSTRAP_REPLICATES,
                         templates=None, posterior: bool = True) -> list:
    """The plausible candidates (a name or a list; see choose_difficulty), each in turn,
    refitted on bootstrap resamples (module docstring); grid results as their posterior
    average over the resample's problems when ``posterior`` (as choose_difficulty)."""
    n = np.asarray(n, float)
    c = np.asarray(c, float)
    names = [plausible] if isinstance(plausible, str) else list(plausible)
    cands = candidates(len(n), templates)
    rng = np.random.default_rng(seed + 7919)
    out = []
    for i in range(replicates):
        chosen = names[i % len(names)]
        fit_fn = cands[chosen][0]
        idx = rng.integers(0, len(n), len(n))
        nb = n[idx]
        cb = rng.binomial(nb.astype(np.int64), c[idx] / nb).astype(float)
        # the template: one shift drawn from its posterior (logit_prior.fit_template_shift),
        # so that the replicates span the plausible abilities, not only the resampling
        prm = fit_fn(nb, cb, rng) if chosen == TEMPLATE else fit_fn(nb, cb)
        if not _usable(prm, chosen):       # a degenerate resample: the grid prior instead
            chosen = f"logit_grid(lam={LP.LAMBDAS[1]:g})"
            prm = cands[chosen][0](nb, cb)
        if posterior and isinstance(prm, np.ndarray):
            prm = _posterior(nb, cb, prm, tilt=chosen != TEMPLATE)
        out.append(spec_dict("logit_grid" if _is_grid(chosen) else chosen, prm))
    return out


def extrapolation_error(n, c, name: str, seed: int = 0, repeats: int = LP.CV_REPEATS, templates=None,
                        posterior: bool = True) -> float:
    """How far the candidate ``name`` misses one decade out, measured on the log itself:
    fitted on CV_FRACTION of each problem's samples, it predicts pass@k at k = the
    smallest n; the observed value is the unbiased estimate from all samples. Returns the
    root-mean-square error over the repeats (uncertainty.interval widens by it per decade
    of k beyond the samples seen)."""
    from planner.accuracy.estimators import pass_at_k_unbiased
    from planner.accuracy.profile import DifficultySpec

    n = np.asarray(n, float)
    c = np.asarray(c, float)
    k = float(n.min())
    obs = float(pass_at_k_unbiased(n, c, np.full(len(n), k)).mean())
    rng = np.random.default_rng(seed + 104729)
    errs = [float(DifficultySpec.model_validate(spec).build().pass_at_k(k)) - obs
            for _, _, _, spec in split_fits(n, c, name, rng, repeats, templates, posterior)]
    return float(np.sqrt(np.mean(np.square(errs)))) if errs else 0.0


def split_fits(n, c, name: str, rng, repeats: int, templates=None, posterior: bool = True):
    """The candidate ``name`` fitted on CV_FRACTION of each problem's samples, on ``repeats``
    random splits drawn from ``rng``. Yields, per split whose fit is usable (a degenerate
    split's is skipped), the mask of the problems kept (at least one held-in sample), their
    held-in counts ``na``, ``ca`` and the fitted difficulty as a spec dict (a grid's
    posterior where ``posterior``). The one split-and-fit of :func:`extrapolation_error`
    and planner.accuracy.stacking.split_errors."""
    fit_fn = candidates(len(n), templates)[name][0]
    for _ in range(repeats):
        n_a, c_a, _, _ = LP.split_counts(n, c, rng, LP.CV_FRACTION)
        keep = n_a > 0
        na, ca = n_a[keep].astype(float), c_a[keep].astype(float)
        prm = fit_fn(na, ca)
        if not _usable(prm, name):
            continue
        if posterior and isinstance(prm, np.ndarray):
            prm = _posterior(na, ca, prm, tilt=name != TEMPLATE)
        yield keep, na, ca, spec_dict("logit_grid" if _is_grid(name) else name, prm)


def template_weights(ref) -> np.ndarray:
    """Grid weights of a template for logit_prior.fit_template_shift from a task profile
    (a name or YAML path; typically `planner fit` of another model on the same task with
    many samples): a logit_grid difficulty on this module's grid as it is, a Beta or a
    mixture as its mass per grid cell, observed counts (``empirical``, or the profile's
    ``problem_counts`` where it carries them, whatever its difficulty) refitted as the
    least-smoothed grid prior: many samples per problem need little smoothing, and the
    held-out choice of a template's own fit (which smooths more) measured worse as a shape
    for other models (docs/accuracy-fit.md "How `planner fit` works"). Anything else: InputError naming the file and the field."""
    from planner.accuracy.profile import load_profile
    from planner.errors import InputError

    try:
        prof = load_profile(ref)
    except InputError as exc:  # an unknown name is the --template flag's value, not a 'profile' field
        if exc.field != "profile" or exc.file:
            raise
        raise InputError(exc.reason, field="template", value=exc.value, has_value=exc.has_value) from None
    d = prof.spec.difficulty
    pc = prof.spec.problem_counts
    if pc is not None:     # the counts themselves, as observed counts (below)
        return LP.fit_grid_weights(np.asarray(pc.n, float), np.asarray(pc.correct, float), min(LP.LAMBDAS))
    if d.kind == "beta":
        return as_grid_weights("beta", {"a": d.a, "b": d.b})
    if d.kind == "mixture":
        return as_grid_weights("mixture", {"components": [{"weight": c.weight, "a": c.a, "b": c.b}
                                                          for c in d.components]})
    if d.kind == "empirical":
        return LP.fit_grid_weights(np.asarray(d.n, float), np.asarray(d.correct, float), min(LP.LAMBDAS))
    if (abs(d.logit_min - LP.LOGIT_MIN) > 1e-9 or abs(d.logit_step - LP.LOGIT_STEP) > 1e-9
            or len(d.weights) != len(LP.logit_nodes())):
        raise InputError(f"a template's logit grid must be the fit's (logit_min {LP.LOGIT_MIN:g}, step "
                         f"{LP.LOGIT_STEP:g}, {len(LP.logit_nodes())} weights)", file=str(prof.path),
                         field="difficulty.logit_min", value=d.logit_min)
    w = np.asarray(d.weights, float)
    return w / w.sum()
