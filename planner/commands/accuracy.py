"""`planner fit` (a task profile from an eval log) and `planner accuracy` (predicted
accuracy of one configuration). numpy/scipy are imported inside the commands."""

from __future__ import annotations

from typing import Optional

import typer

from planner.commands import options as opt


def fit_cmd(
    eval_log: str = typer.Argument(..., help="Eval log (JSONL): per-sample or per-problem lines."),
    model: str = typer.Option(..., "--model", "-m", help="Model name for the profile (need not be in the catalog)."),
    task: str = typer.Option(..., "--task", "-t", help="Task name for the profile."),
    output: Optional[str] = typer.Option(None, "-o", "--output", help="Write the profile YAML here."),
    task_kind: str = typer.Option("math_answer", "--task-kind",
                                  help="math_answer | code_tests | multiple_choice | open_ended."),
    difficulty: str = typer.Option("auto", "--difficulty",
                                   help="auto (held-out samples) | beta | mixture | logit_grid | template | empirical."),
    gen_len: Optional[int] = typer.Option(None, "--gen-len",
                                          help="Generation budget of the eval (default: longest trace)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the held-out split."),
    verifier: bool = typer.Option(False, "--verifier",
                                  help="The log scores a verifier (lines: problem, correct, accepted and/or "
                                       "score): write a verifier profile for --model on --task instead."),
    template: Optional[list[str]] = typer.Option(
        None, "--template", help="Profile of another model on the same task (repeatable): its difficulty "
        "shape, shifted to this log, is one more candidate (--difficulty template forces it). Default: "
        "the task's shipped templates (examples/templates/<task>--*.yaml) but the model's own."),
    no_templates: bool = typer.Option(False, "--no-templates",
                                      help="Offer no template, not even the task's shipped ones."),
    json_out: bool = opt.json_flag(),
) -> None:
    """Fit a task profile (difficulty, trace length, vote and reward parameters) from an eval log."""
    from planner.accuracy.fit import fit_eval_log, write_profile
    from planner.commands.output import print_json
    from planner.catalog import refuse_input, refuse_shipped
    from planner.errors import InputError

    if output:  # a shipped task or verifier profile, or the eval log, is never overwritten
        refuse_shipped(output, hint="write elsewhere and name it with PLANNER_PATH")
        refuse_input(output, [eval_log])
    if verifier:
        if template or no_templates:
            raise InputError("--template shapes a task profile's difficulty; a verifier fit takes none",
                             field="template", value=template[0] if template else "--no-templates")
        _fit_verifier(eval_log, model, task, output, json_out)
        return

    from planner.bounds import check_count

    if gen_len is not None:
        check_count("gen_len", gen_len, 1)
    if not 0 <= seed < 2**32:
        raise InputError("must be an integer in [0, 2**32)", field="seed", value=seed)
    res = fit_eval_log(eval_log, model, task, task_kind=task_kind, difficulty=difficulty, gen_len=gen_len,
                       seed=seed, templates=[] if no_templates else (template or None))
    if output:
        write_profile(res.profile, output)
    summary = res.summary()
    summary["profile"] = output
    if json_out:
        print_json(summary)
        return
    _print_fit(summary, res)


def _fit_verifier(eval_log: str, model: str, task: str, output: Optional[str], json_out: bool) -> None:
    from planner.accuracy.verifiers import fit_verifier, verifier_to_yaml
    from planner.commands.output import console, print_json
    from planner.files import atomic_write_text

    vp = fit_verifier(eval_log, model, task)
    if output:
        atomic_write_text(output, verifier_to_yaml(vp))
    out = {"verifier": vp.verifier, "task": vp.task, "completeness": vp.completeness,
           "soundness": vp.soundness, "reward_auc": vp.reward_auc, "profile": output}
    if json_out:
        print_json(out)
        return
    con = console()
    con.print(f"{vp.verifier} verifying {vp.task}: completeness {vp.completeness:.3f}, soundness "
              f"{vp.soundness:.3f}, reward AUC {vp.reward_auc:.3f}")
    if output:
        con.print(f"wrote {output} (to use it: DIR/tasks/verifiers/{vp.task}--{vp.verifier}.yaml "
                  "with PLANNER_PATH=DIR)")


def _print_fit(s: dict, res) -> None:
    from rich.table import Table

    from planner.commands.output import console

    con = console()
    d = s["difficulty"]
    con.print(f"{s['file']}: {s['problems']} problems, {s['samples']} samples ({s['format']} format), "
              f"pass@1 {s['pass_at_1']:.4f}")
    t = Table(title="difficulty fits (mean fixed at the observed pass@1)")
    for col in ("model", "parameters", "log-lik", "BIC"):
        t.add_column(col, justify="left" if col in ("model", "parameters") else "right")
    b = d["beta"]
    t.add_row("beta" + (" *" if d["chosen"] == "beta" else ""), f"a={b['a']:.4f} b={b['b']:.4f}",
              f"{b['loglik']:.2f}", f"{b['bic']:.2f}")
    if "mixture" in d:
        mx = d["mixture"]
        par = "; ".join(f"w={c['weight']:.3f} a={c['a']:.3f} b={c['b']:.3f}" for c in mx["components"])
        t.add_row("mixture" + (" *" if d["chosen"] == "mixture" else ""), par, f"{mx['loglik']:.2f}",
                  f"{mx['bic']:.2f}")
    if d["chosen"] == "empirical":
        t.add_row("empirical *", "per-problem counts", "", "")
    con.print(t)
    cv = s.get("cv_heldout_loglik")
    if cv:
        con.print("held-out check (fit on a tenth of each problem's samples, log-likelihood of the rest; "
                  "higher is better): "
                  + ", ".join(f"{k} {v:.2f}" for k, v in cv.items()))
    con.print(f"chosen difficulty model: {d['chosen']}")
    h = s["heldout"]
    con.print(f"held-out check: fitted on {h['fitted_on_samples_per_problem']:.0f} samples per problem, "
              f"pass@k observed on all samples")
    t2 = Table()
    for col in ("k", "observed", "predicted", "error"):
        t2.add_column(col, justify="right")
    for r in h["rows"]:
        t2.add_row(str(r["k"]), f"{r['observed']:.4f}", f"{r['predicted']:.4f}", f"{r['error']:+.4f}")
    con.print(t2)
    if "trace_length" in s:
        tl = s["trace_length"]
        con.print(f"trace length: median {tl['median_tokens']:.0f} tokens at p = pass@1, sigma {tl['sigma']:.3f}, "
                  f"slope {tl['difficulty_slope']:+.3f}, {100 * tl['truncated_fraction']:.1f}% truncated "
                  f"at {tl['max_tokens']:.0f}")
        if "problem_share" in tl:
            con.print(f"trace length per problem: problem effect sd {tl['sigma_problem']:.3f}, sample sd "
                      f"{tl['sigma_sample']:.3f}, problem share {tl['problem_share']:.2f} "
                      f"({tl['problems_used']} problems)")
    if "majority" in s:
        con.print(f"majority: top wrong answer takes {s['majority']['majority_top_wrong_share']:.3f} of wrong "
                  f"answers ({s['majority']['problems_used']} problems)")
    if "reward_model" in s:
        con.print(f"reward model: within-problem AUC {s['reward_model']['reward_auc']:.3f} "
                  f"({s['reward_model']['problems_used']} problems)")
    if s.get("profile"):
        con.print(f"wrote {s['profile']}")


def accuracy_cmd(
    profile: Optional[str] = typer.Option(None, "--profile", "-p", help="Profile YAML path or model/task."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model name (with --task)."),
    task: Optional[str] = typer.Option(None, "--task", "-t", help="Task name (with --model)."),
    strategy: str = typer.Option("single", "--strategy", "-s", help="pass@k | majority | best-of-k | verify | single."),
    samples: int = typer.Option(1, "--samples", "-k", help="Samples per problem (k)."),
    gen_len: Optional[int] = typer.Option(None, "--gen-len", help="Generation budget in tokens (default: the profile's)."),
    weight_dtype: str = opt.weight_dtype(),
    act_dtype: Optional[str] = opt.act_dtype(None, "Activation dtype (default: W8A8 for 8-bit weights, else bf16)."),
    kv_dtype: str = opt.kv_dtype(),
    kv_budget: int = opt.kv_budget(),
    verifier_completeness: Optional[float] = typer.Option(None, "--verifier-completeness"),
    verifier_soundness: Optional[float] = typer.Option(None, "--verifier-soundness"),
    top_wrong_share: Optional[float] = typer.Option(None, "--top-wrong-share", help="Majority: share of wrong answers on the top wrong answer."),
    reward_auc: Optional[float] = typer.Option(None, "--reward-auc", help="Best-of-k: reward-model AUC."),
    verifier: Optional[str] = typer.Option(
        None, "--verifier", help="Verifier / reward model (catalog name): its profile in tasks/verifiers/ sets "
                                 "completeness, soundness and reward AUC (explicit flags win)."),
    json_out: bool = opt.json_flag(),
) -> None:
    """Predicted accuracy of one configuration from a task profile."""
    from planner.accuracy.predict import explain, normalize_strategy
    from planner.accuracy.profile import find_profile, load_profile
    from planner.accuracy.uncertainty import interval
    from planner.commands.output import console, print_json
    from planner.errors import InputError

    if profile is not None and (model is not None or task is not None):
        raise InputError("give either --profile or --model with --task, not both", field="profile", value=profile)
    if profile is None:
        if model is None or task is None:
            raise InputError("give --profile PROFILE.yaml, or --model and --task", field="profile")
        prof = find_profile(model, task)
    else:
        prof = load_profile(profile)
    strat = normalize_strategy(strategy)
    from planner.bounds import check_count

    check_count("samples", samples, 1)
    if gen_len is not None:
        check_count("gen_len", gen_len, 1)
    check_count("kv_budget", kv_budget, 0)
    if strat == "single" and samples != 1:
        raise InputError("strategy 'single' uses one sample: drop --samples or pick pass@k, majority, best-of-k "
                         "or verify", field="samples", value=samples)
    for name, value in (("verifier-completeness", verifier_completeness), ("verifier-soundness", verifier_soundness),
                        ("top-wrong-share", top_wrong_share), ("reward-auc", reward_auc)):
        if value is not None and not 0.0 <= value <= 1.0:  # also refuses nan
            raise InputError("must be a number in [0, 1]", field=name, value=value)
    vq = _verifier_quality(verifier, prof)
    if vq["source"] != "task profile defaults":  # the verifier's profile; explicit flags win
        verifier_completeness = vq["completeness"] if verifier_completeness is None else verifier_completeness
        verifier_soundness = vq["soundness"] if verifier_soundness is None else verifier_soundness
        reward_auc = vq["reward_auc"] if reward_auc is None else reward_auc
    kw = dict(weight_dtype=weight_dtype, act_dtype=act_dtype, kv_dtype=kv_dtype, kv_budget=kv_budget,
              verifier_completeness=verifier_completeness, verifier_soundness=verifier_soundness,
              majority_top_wrong_share=top_wrong_share, reward_auc=reward_auc)
    info = explain(prof, strat, samples, gen_len, **kw)
    iv = interval(prof, strat, samples, gen_len, **kw)
    out = {
        "accuracy": info["accuracy"],
        "interval_80": None if iv is None else [round(float(iv[0]), 6), round(float(iv[1]), 6)],
        "profile": prof.path,
        "model": prof.model,
        "task": prof.task,
        "strategy": strat,
        "samples": samples,
        "gen_len": gen_len if gen_len is not None else prof.spec.reference_gen_len,
        "weight_dtype": weight_dtype,
        "act_dtype": act_dtype,
        "kv_dtype": kv_dtype,
        "kv_budget": kv_budget,
        **{k: v for k, v in info.items() if k != "accuracy"},
        "verifier": verifier,
        "verifier_profile": None if vq["source"] == "task profile defaults" else vq["source"],
        "notes": [vq["note"]] if vq["note"] else [],
    }
    if json_out:
        print_json(out)
        return
    con = console()
    con.print(f"{prof.model} on {prof.task}: {strat} with k={samples}, gen_len={out['gen_len']}, "
              f"weights {weight_dtype}, KV {kv_dtype}, kv_budget {kv_budget or 'dense'}")
    con.print(f"  predicted accuracy      {info['accuracy']:.4f}" + (
        "" if iv is None else f"  (80% interval {float(iv[0]):.4f} - {float(iv[1]):.4f}, bootstrap of the fit)"))
    con.print(f"  single-sample accuracy  {info['single_sample_accuracy']:.4f}  "
              f"(reference pass@1 {prof.spec.pass_at_1:.4f} at {prof.spec.reference_gen_len} tokens)")
    con.print(f"  traces finished         {info['finished_traces']:.3f}  "
              f"(at the reference budget {info['finished_traces_at_reference']:.3f})")
    if info["quant_logit_penalty"] > 0:
        con.print(f"  quantization penalty    {info['quant_logit_penalty']:.3f} in logit")
    if kv_budget:
        con.print(f"  sparse attention        traces x{info['sparse_length_factor']:.2f}, "
                  f"quality x{info['sparse_quality_factor']:.3f}")
    if info["strategy_params"]:
        con.print("  strategy parameters     " + ", ".join(f"{k}={v}" for k, v in info["strategy_params"].items()))
    if out["verifier_profile"]:
        con.print(f"  verifier                {verifier} ({out['verifier_profile']})")
    for note in out["notes"]:
        con.print(f"  note: {note}")


def _verifier_quality(verifier: Optional[str], prof) -> dict:
    """The verifier's quality on the profile's task; an unknown model name exits 2 naming
    the flag ('verifier'), a known model without a verifier profile falls back (a note)."""
    from planner.accuracy.verifiers import verifier_quality
    from planner.errors import InputError

    if verifier:
        from planner.catalog import load_model

        try:
            load_model(verifier)
        except InputError as exc:  # name the flag the user gave, not the catalog's 'model'
            raise InputError(exc.reason, file=exc.file, field="verifier", value=verifier) from None
    return verifier_quality(verifier, prof)


def register(app: typer.Typer) -> None:
    app.command("fit")(fit_cmd)
    app.command("accuracy")(accuracy_cmd)
