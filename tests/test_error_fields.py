"""An error names what the user typed (planner.errors: flag_name, file_key, in_file): a
flag's name on the command line, a key as the file spells it in a checks file.

Oracles from outside the code that raises: the options `planner estimate --help` lists
(the flag exists) and the keys a checks file's ``estimate:`` accepts (its pydantic model's
fields), for the same bad value given both ways."""

from __future__ import annotations

import re

import pytest

from planner.check_file import EstimateSpec
from planner.cli import main

# (flag, file key, bad value)
BAD = [
    ("--prompt-len", "prompt_len", "0"),
    ("--gen-len", "gen_len", "0"),
    ("--kv-budget", "kv_budget", "-1"),
    ("--samples", "samples", "0"),
    ("--devices", "devices", "0"),
    ("--pp", "pp", "0"),
    ("--pp", "pp", "1000"),
    ("--ep", "ep", "0"),
    ("--dp", "dp", "0"),
    ("--rate", "rate", "1e-7"),                                 # below planner.bounds.MIN_RATE_PER_S
    ("--weight-dtype", "weight_dtype", "fp3"),
    ("--kv-dtype", "kv_dtype", "fp3"),
    ("--prompt-len", "prompt_len", "200000"),
    ("--spec-tokens", "spec_tokens", "2"),                      # steady state: not costed
    ("--range-ratio", "range_ratio", "0.5"),                    # a static batch: fixed lengths
]
FIELD = re.compile(r"field '([^']+)'")


def _err(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("flag,key,value", BAD)
def test_the_flag_is_named_on_the_command_line(capsys, flag, key, value):
    assert main(["estimate", "--help"]) == 0
    options = set(re.findall(r"--[a-z][a-z-]*", capsys.readouterr().out))
    err = _err(capsys, ["estimate", "-m", "llama-3.1-8b", flag, value])
    field = FIELD.search(err).group(1)
    assert f"--{field}" in options and f"--{field}" == flag, err


@pytest.mark.parametrize("flag,key,value", [b for b in BAD if b[1] in EstimateSpec.model_fields])
def test_the_key_is_named_in_a_checks_file(tmp_path, capsys, flag, key, value):
    f = tmp_path / "c.yaml"
    f.write_text("checks:\n  - name: a\n    estimate: {model: llama-3.1-8b, hardware: h100-sxm, "
                 f"{key}: {value}}}\n    assert: ['tpot_s <= 1']\n")
    err = _err(capsys, ["check", str(f)])
    field = FIELD.search(err).group(1)
    assert str(f) in err and field.split(".")[-1] == key and field.split(".")[-1] in EstimateSpec.model_fields, err


@pytest.mark.parametrize("flag,value", [("--weight-dtype", "int3"), ("--kv-dtype", "q2"), ("--act-dtype", "int2"),
                                        ("--reward-auc", "1.0"), ("--verifier-soundness", "1.5"),
                                        ("--top-wrong-share", "-0.1"), ("--gen-len", "0")])
def test_accuracy_flags_are_named(capsys, flag, value):
    """`planner accuracy` reaches the accuracy model's own checks: they name its flags
    (round 13 said 'weight_dtype' and 'reward_auc' there)."""
    err = _err(capsys, ["accuracy", "-m", "qwen3-8b", "--task", "aime24", flag, value])
    assert f"field '{flag[2:]}'" in err, err


# `planner estimate` flags that are no configuration of the estimate (output, simulator,
# device pool, disaggregated workers: a checks file asks those through other keys or not at all)
NOT_A_CHECK_KEY = {"--help", "--json", "--strict", "--model", "--hardware", "--no-prefix-sharing",
                   "--random-range-ratio", "--simulate", "--requests", "--slo-ttft-s", "--slo-tpot-s",
                   "--num-devices", "--prefill-workers", "--decode-workers", "--prefill-devices",
                   "--decode-devices"}


def test_a_checks_file_takes_every_estimate_option(capsys):
    """examples/checks.yaml says an estimate check takes "any `planner estimate` option, with
    underscores": round 14 fuzzing found ``spec_tokens``, ``ep`` and ``dp`` refused there
    ("Extra inputs are not permitted"). Oracle: the options --help lists."""
    assert main(["estimate", "--help"]) == 0
    options = set(re.findall(r"--[a-z][a-z-]*", capsys.readouterr().out)) - NOT_A_CHECK_KEY
    missing = {o for o in options if o[2:].replace("-", "_") not in EstimateSpec.model_fields}
    assert not missing, missing


def test_a_checks_file_estimate_matches_the_command_line(tmp_path, capsys):
    """The same speculative-decoding configuration given both ways gives the same TPOT
    (the check's --json metrics against `planner estimate --json`)."""
    import json

    flags = ["--concurrency", "8", "--arrival", "closed", "--spec-tokens", "2", "--range-ratio", "0",
             "--prompt-len", "1", "--gen-len", "1"]
    assert main(["estimate", "-m", "qwen3-8b", "--hardware", "h100-sxm", *flags, "--json"]) == 0
    want = json.loads(capsys.readouterr().out)["tpot_s"]
    f = tmp_path / "c.yaml"
    f.write_text("checks:\n  - name: a\n    estimate: {model: qwen3-8b, hardware: h100-sxm, concurrency: 8, "
                 "arrival: closed, spec_tokens: 2, range_ratio: 0, prompt_len: 1, gen_len: 1}\n"
                 f"    assert: ['tpot_s <= {want * 1.000001!r}', 'tpot_s >= {want * 0.999999!r}']\n")
    assert main(["check", str(f)]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("flag,value", [("--max-usd", "1e308"), ("--max-energy-j", "inf"), ("--max-latency-s", "nan"),
                                        ("--min-accuracy", "2"), ("--top", "0")])
def test_recommend_flags_are_named_as_flags(tmp_path, capsys, flag, value):
    """A bad `planner recommend` flag was "command line, field 'max_usd'" (round 14): the
    scenario's key with a made-up file. It names the flag, as `planner recommend --help`
    lists it, and no file; with --scenario FILE (a good one) the flag is not blamed on FILE."""
    assert main(["recommend", "--help"]) == 0
    options = set(re.findall(r"--[a-z][a-z-]*", capsys.readouterr().out))
    f = tmp_path / "s.yaml"
    f.write_text("task: aime24\nhardware: [h100-sxm]\n")
    for extra in ([], ["--scenario", str(f)]):
        err = _err(capsys, ["recommend", *extra, flag, value])
        field = FIELD.search(err).group(1)
        assert f"--{field}" == flag and flag in options and "command line" not in err and str(f) not in err, err


def test_a_checks_file_rate_means_poisson_arrivals_as_the_flag_does(tmp_path, capsys):
    """``rate:`` without ``arrival:`` ran the steady state, the rate silently ignored
    (round 14); ``--rate`` implies Poisson arrivals. Oracle: `planner estimate --rate --json`."""
    import json

    assert main(["estimate", "-m", "qwen3-8b", "--hardware", "h100-sxm", "--rate", "2", "--json"]) == 0
    want = json.loads(capsys.readouterr().out)["ttft_s"]
    f = tmp_path / "c.yaml"
    f.write_text("checks:\n  - name: a\n    estimate: {model: qwen3-8b, hardware: h100-sxm, rate: 2}\n"
                 f"    assert: ['ttft_s <= {want * 1.000001!r}', 'ttft_s >= {want * 0.999999!r}']\n")
    assert main(["check", str(f)]) == 0, capsys.readouterr().out
    f.write_text("checks:\n  - name: a\n    estimate: {model: qwen3-8b, hardware: h100-sxm, rate: 2, arrival: closed}\n"
                 "    assert: ['ttft_s <= 1']\n")
    assert "Poisson" in _err(capsys, ["check", str(f)])
