"""Bad input found by probing every command (round 15): each case here was accepted in
silence (a bad value passed over, an unknown name read as "n/a", a length of 1e30 scored)
or written over the command's own input. The oracle is the user-visible promise of the
developers' guide: one line naming the file, the field and the value, exit code 2, the
files untouched; and one rule per limit (planner.bounds), the same words at every site."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_robust import one_error_line as one_line
from test_robust import run

from planner import bounds
from planner.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
DEV_CSV = ROOT.parent / "shared" / "data" / "serving-measured-hopper-dev.csv"


# --------------------------------------------------------------------------- one rate rule

def test_the_rate_limits_are_the_ones_the_bounds_give():
    """The limits' own oracle (planner.bounds docstring): one request per ~12 days and
    10 million per second (above ChatGPT's reported ~29,000 per second on average)."""
    assert bounds.MIN_RATE_PER_S * 12 * 86_400 == pytest.approx(1.0, rel=0.2)
    assert bounds.MAX_RATE_PER_S > 2.5e9 / 86_400 * 100
    for ok in (bounds.MIN_RATE_PER_S, 1, 5.0, bounds.MAX_RATE_PER_S):
        assert bounds.check_rate(ok) == float(ok)
    for bad in (0, -1, bounds.MIN_RATE_PER_S / 10, bounds.MAX_RATE_PER_S * 10, float("nan"), float("inf"),
                True, "5", None):
        with pytest.raises(InputError) as e:
            bounds.check_rate(bad)
        assert e.value.reason == bounds.RATE_RULE


@pytest.mark.parametrize("bad", ["1e-7", "1e8"])
def test_one_rate_rule_at_every_site(tmp_path, bad):
    """`estimate --rate`, the API's rate=, a checks file's rate: and a capacity scenario's
    requests_per_s: refuse the same values with the same words (two homes before: the API's
    check and the capacity file's pydantic bounds, each with its own message)."""
    from planner.cost.api import estimate

    rc, _, err = run("estimate", "-m", "qwen3-0.6b", "--rate", bad)
    assert rc == 2
    one_line(err, bounds.RATE_RULE, "field 'rate'")
    with pytest.raises(InputError) as e:
        estimate("qwen3-0.6b", "h100-sxm", arrival="poisson", rate=float(bad))
    assert e.value.reason == bounds.RATE_RULE
    checks = tmp_path / "c.yaml"
    checks.write_text("checks:\n  - name: a\n    estimate: {model: qwen3-0.6b, hardware: h100-sxm, "
                      f"rate: {bad}}}\n    assert: ['tpot_s <= 1']\n")
    rc, _, err = run("check", str(checks))
    assert rc == 2
    one_line(err, str(checks), "checks.a.estimate.rate", bounds.RATE_RULE)
    cap = tmp_path / "cap.yaml"
    cap.write_text((ROOT / "examples" / "capacity.yaml").read_text().replace("requests_per_s: 5 ",
                                                                             f"requests_per_s: {bad} "))
    rc, _, err = run("report", str(cap), "-o", str(tmp_path / "r.md"))
    assert rc == 2
    one_line(err, str(cap), "traffic.requests_per_s", bounds.RATE_RULE)
    assert not (tmp_path / "r.md").exists()


@pytest.mark.parametrize("value", ["true", "'5'"])
def test_a_rate_is_a_number_not_a_bool_or_text(tmp_path, value):
    """A capacity scenario's ``requests_per_s: true`` was read as 1 request/s."""
    from planner.capacity import CapacityScenario
    from planner.catalog import parse_spec, read_yaml

    cap = tmp_path / "cap.yaml"
    cap.write_text((ROOT / "examples" / "capacity.yaml").read_text().replace("requests_per_s: 5 ",
                                                                             f"requests_per_s: {value} "))
    with pytest.raises(InputError) as e:
        parse_spec(CapacityScenario, read_yaml(cap), str(cap))
    assert e.value.reason == bounds.RATE_RULE and e.value.field == "traffic.requests_per_s"


# --------------------------------------------------------------------------- checks file loader

def test_checks_file_is_read_by_the_catalog_loader(tmp_path, monkeypatch):
    """`load_checks` reads as every spec file is (planner.catalog.read_yaml): a YAML 1.2
    exponent float is a number, the parse is cached, and a value the input limits refuse
    names the check by its name."""
    from planner.check_file import load_checks

    cache = tmp_path / "cache"
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(cache))
    f = tmp_path / "c.yaml"
    f.write_text("tolerance: 1e-1\nchecks:\n  - name: a\n    estimate: {model: qwen3-0.6b, hardware: h100-sxm}\n"
                 "    assert: ['tpot_s <= 1']\n")
    cf = load_checks(str(f))
    assert cf.tolerance == 0.1  # YAML 1.1 reads "1e-1" as text
    assert len(list((cache / "yaml").glob("*.json"))) == 1
    f.write_text("checks:\n  - name: big\n    estimate: {model: qwen3-0.6b, hardware: h100-sxm, prompt_len: 1e19}\n"
                 "    assert: ['tpot_s <= 1']\n")
    with pytest.raises(InputError) as e:
        load_checks(str(f))
    assert e.value.field == "checks.big.estimate.prompt_len" and e.value.file == str(f)
    assert "number too large" in e.value.reason


# --------------------------------------------------------------------------- estimate flags

@pytest.mark.parametrize("flag,value", [
    ("--requests", "0"), ("--requests", "-1"), ("--num-devices", "99999999999999999999"),
    ("--prefill-devices", "-1"), ("--decode-devices", "0"), ("--prefill-workers", "-1"),
    ("--decode-workers", "2000000"), ("--slo-ttft-s", "inf"), ("--slo-tpot-s", "nan"), ("--slo-ttft-s", "-1"),
    ("--arrival", ""),
])
def test_estimate_flags_are_checked_where_given(flag, value):
    """A flag the configuration does not use still has its value checked (``--requests -1``
    without --simulate, ``--num-devices 1e20``, an empty ``--arrival`` ran the default)."""
    rc, _, err = run("estimate", "-m", "qwen3-0.6b", flag, value)
    assert rc == 2
    one_line(err, f"field '{flag[2:]}'")


@pytest.mark.parametrize("path", [[], ["--pp", "2"], ["--simulate"], ["--pp", "2", "--simulate"]])
def test_a_negative_concurrency_is_refused_on_every_path(path):
    """``--concurrency -1`` with ``--pp`` or ``--simulate`` ran (the pipeline path printed
    "concurrency -1", the simulator took it as 1); only the one-group path checked it."""
    rc, _, err = run("estimate", "-m", "qwen3-0.6b", "--concurrency", "-1", *path)
    assert rc == 2
    one_line(err, "field 'concurrency'")


@pytest.mark.parametrize("argv", [
    ["recommend", "--scenario", ""], ["recommend", "--models", ""], ["recommend", "--verifier", " "],
    ["recommend", "-H", "h100-sxm", "-H", ""], ["estimate", "-m", "qwen3-0.6b", "--calibration="],
    ["estimate", "-m", ""], ["accuracy", "-m", "qwen3-0.6b", "-t", ""], ["fit", "log.jsonl", "-m", "m", "-t", ""],
    ["calibrate", "--compare", "", "b.yaml"], ["check", "c.yaml", "--junit", ""], ["report", "s.yaml", "-o", ""],
    ["models", "import", "config.json", "--name", ""], ["validate", "--measured", ""],
])
def test_no_text_option_takes_an_empty_value(argv):
    """``--scenario ""`` ran the default scenario, ``--models ""`` every model and
    ``--calibration=`` failed naming the folder '.': an empty name or path is one line
    naming the flag (planner.cli, one guard over every text option of every command)."""
    flag = next(a for a in reversed(argv) if a.startswith("-")).split("=")[0]
    opts = {"-H": "hardware", "-m": "model", "-t": "task", "-o": "output"}
    rc, _, err = run(*argv)
    assert rc == 2
    one_line(err, f"field '{opts.get(flag, flag.lstrip('-'))}'", "must not be empty")


# --------------------------------------------------------------------------- files' names and values

def test_capacity_scenario_with_an_unknown_task_is_refused(tmp_path):
    """An unknown task read as "accuracy n/a" on every candidate (exit 0); a recommend
    scenario's is an error, and now a capacity scenario's too, with the same words."""
    cap = tmp_path / "cap.yaml"
    cap.write_text((ROOT / "examples" / "capacity.yaml").read_text().replace("task: aime24", "task: no-such-task"))
    rc, _, err = run("report", str(cap), "-o", str(tmp_path / "r.md"))
    assert rc == 2
    line = one_line(err, str(cap), "field 'task'", "no-such-task", "unknown task")
    s = tmp_path / "s.yaml"
    s.write_text("task: no-such-task\nmodels: [qwen3-0.6b]\n")
    rc, _, err2 = run("recommend", "--scenario", str(s))
    assert rc == 2 and line.split("unknown task")[1] == one_line(err2).split("unknown task")[1]


def test_capacity_generation_cap_within_the_token_bound(tmp_path):
    cap = tmp_path / "cap.yaml"
    cap.write_text((ROOT / "examples" / "capacity.yaml").read_text().replace("max_gen_len: 8192",
                                                                             "max_gen_len: 99999999999"))
    rc, _, err = run("report", str(cap), "-o", str(tmp_path / "r.md"))
    assert rc == 2
    one_line(err, str(cap), "traffic.max_gen_len", f"{bounds.MAX_TOKENS}")


@pytest.mark.parametrize("line,field,flag", [
    ("samples: [100000000]", "samples", "samples"), ("batches: [10000000]", "batches", "batch"),
    ("gen_lens: [100000000]", "gen_lens", "gen_len"), ("devices: [1000000]", "devices", "devices"),
    ("kv_budgets: [0, 100000000]", "kv_budgets", "kv_budget"), ("prompt_len: 100000000", "prompt_len", "prompt_len"),
])
def test_scenario_lists_keep_their_flags_bounds(tmp_path, line, field, flag):
    """A recommend scenario's ``samples: [1e8]`` was searched while ``--samples 1e8`` (and a
    checks file's samples:) is refused: each value of a list keeps its flag's bound."""
    s = tmp_path / "s.yaml"
    s.write_text(f"task: aime24\nmodels: [qwen3-0.6b]\n{line}\n")
    rc, _, err = run("recommend", "--scenario", str(s))
    assert rc == 2
    line = one_line(err, str(s), f"field '{field}'")
    assert str(bounds.UPPER[flag]) in line.replace(",", "")


@pytest.mark.parametrize("edit,field,limit", [
    ("max_devices: 8", "max_devices: 1000000", bounds.MAX_DEVICES),
    ("concurrency: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]", "concurrency: [1, 100000000]", bounds.MAX_REQUESTS),
])
def test_capacity_search_within_the_bounds(tmp_path, edit, field, limit):
    cap = tmp_path / "cap.yaml"
    cap.write_text((ROOT / "examples" / "capacity.yaml").read_text().replace(edit, field))
    rc, _, err = run("report", str(cap), "-o", str(tmp_path / "r.md"))
    assert rc == 2
    line = one_line(err, str(cap), f"search.{field.split(':')[0]}")
    assert f"{limit}" in line.replace(",", "")


@pytest.mark.skipif(not DEV_CSV.exists(), reason="the shared dev file is not here")
@pytest.mark.parametrize("column,value,limit", [
    ("isl", "1e30", bounds.MAX_TOKENS), ("osl", "20000000", bounds.MAX_TOKENS),
    ("batch_size", "2000000", bounds.MAX_REQUESTS), ("tp_size", "200000", bounds.MAX_DEVICES),
])
def test_measured_counts_within_the_bounds(tmp_path, column, value, limit):
    """A measured row's length of 1e30 tokens (or a batch of 1e30) was read and scored."""
    from planner.measured import read_measured

    head, row = DEV_CSV.read_text().splitlines()[:2]
    cells = row.split(",")
    assert len(cells) == len(head.split(","))
    cells[head.split(",").index(column)] = value
    f = tmp_path / "m.csv"
    f.write_text(head + "\n" + ",".join(cells) + "\n")
    with pytest.raises(InputError) as e:
        read_measured(f)
    assert e.value.field == column and e.value.value == value and f"{limit:,}" in e.value.reason
    cells[head.split(",").index(column)] = str(limit if column != "tp_size" else 8)  # at the bound: read
    f.write_text(head + "\n" + ",".join(cells) + "\n")
    assert len(read_measured(f)) == 1


# --------------------------------------------------------------------------- never over an input

def _writes_over_its_input(tmp_path):
    log = tmp_path / "eval.jsonl"
    log.write_bytes((ROOT / "examples" / "eval_synthetic.jsonl").read_bytes())
    cfg = tmp_path / "config.json"
    cfg.write_bytes((ROOT / "tests" / "data" / "hf_configs" / "qwen3-8b.json").read_bytes())
    checks = tmp_path / "checks.yaml"
    checks.write_text("checks:\n  - name: a\n    estimate: {model: qwen3-0.6b, hardware: h100-sxm}\n"
                      "    assert: ['tpot_s <= 1']\n")
    base = tmp_path / "base.yaml"
    base.write_text("checks: {a: {tpot_s: 0.01}}\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(log)
    return [
        (["fit", str(log), "-m", "m", "-t", "t", "-o", str(log)], log),
        (["fit", str(log), "-m", "m", "-t", "t", "--verifier", "-o", str(link)], log),
        (["models", "import", str(cfg), "-o", str(cfg)], cfg),
        (["check", str(checks), "--junit", str(checks)], checks),
        (["check", str(checks), "--baseline", str(base), "--junit", str(base)], base),
    ]


def test_no_command_writes_over_its_own_input(tmp_path):
    """`planner fit log.jsonl -o log.jsonl` replaced the eval log with the profile (exit 0),
    `models import config.json -o config.json` the config, `check --junit` the checks
    file: each is one line, exit 2, and the input is byte-identical afterwards."""
    for argv, victim in _writes_over_its_input(tmp_path):
        before = victim.read_bytes()
        rc, _, err = run(*argv)
        assert rc == 2, (argv, err)
        one_line(err, "refusing to write over an input")
        assert victim.read_bytes() == before, argv


def test_a_junit_file_beside_the_baseline_is_still_written(tmp_path):
    """The guard refuses only the inputs themselves: a fresh file is written as before."""
    checks = tmp_path / "checks.yaml"
    checks.write_text("checks:\n  - name: a\n    estimate: {model: qwen3-0.6b, hardware: h100-sxm}\n"
                      "    assert: ['tpot_s <= 1']\n")
    rc, _, err = run("check", str(checks), "--junit", str(tmp_path / "j.xml"))
    assert rc == 0, err
    assert (tmp_path / "j.xml").read_text().startswith("<?xml")


# --------------------------------------------------------------------------- spec files

@pytest.mark.parametrize("kind,edit,field", [
    ("engines/vllm.yaml", ("token_budget: 8192", "token_budget: 1e15"), "token_budget"),
    ("engines/vllm.yaml", ("max_running: 1024", "max_running: 1e12"), "max_running"),
    ("engines/vllm.yaml", ("host_step_us: 1000", "host_step_us: 1e15"), "host_step_us"),
    ("engines/vllm.yaml", ("cascade_prefix: batch", "cascade_prefix: everything"), "cascade_prefix"),
    ("engines/vllm.yaml", ("cascade_min_sequences: 8", "cascade_min_sequences: 0"), "cascade_min_sequences"),
    ("hardware/h100-sxm.yaml", ("name: h100-sxm", "name: ''"), "name"),
])
def test_spec_files_within_the_bounds(tmp_path, kind, edit, field):
    """An engine profile's token budget of 1e15 tokens, a host step of 31 years or a device
    without a name was used as given."""
    f = tmp_path / Path(kind).name
    text = (ROOT / kind).read_text()
    assert edit[0] in text
    f.write_text(text.replace(edit[0], edit[1], 1))
    flag = "--engine" if kind.startswith("engines") else "-H"
    rc, _, err = run("estimate", "-m", "qwen3-0.6b", flag, str(f), "--arrival", "closed", "--concurrency", "8")
    assert rc == 2
    one_line(err, str(f), f"field '{field}'")


def test_a_device_that_groups_needs_a_link(tmp_path):
    """A device with max_devices 8 and interconnect_gbps 0 gave every time of a group as
    "n/a" and "$nan" per request (exit 0): the spec is refused, naming both fields. Every
    shipped device without a link has max_devices 1 (the oracle: the catalog loads)."""
    from planner.catalog import all_hardware

    assert all(h.interconnect_gbps > 0 for h in all_hardware() if h.max_devices > 1)
    f = tmp_path / "hw.yaml"
    f.write_text((ROOT / "hardware" / "h100-sxm.yaml").read_text().replace("interconnect_gbps: 450",
                                                                         "interconnect_gbps: 0", 1))
    rc, out, err = run("estimate", "-m", "qwen3-8b", "-H", str(f), "--devices", "2")
    assert rc == 2 and "nan" not in out
    one_line(err, str(f), "max_devices 8", "interconnect_gbps")


def test_the_estimate_table_never_prints_nan(capsys):
    """A non-finite cost or throughput is "n/a" in the table, as every time is (fmt_si), not
    "$nan" (what a device without a link printed)."""
    from planner.commands.estimate import print_estimate
    from planner.cost.api import estimate

    r = estimate("qwen3-0.6b", "h100-sxm")
    r.update(cost_usd=float("nan"), throughput_tok_s=float("nan"), efficiency="defaults")
    print_estimate(r)
    out = capsys.readouterr().out
    assert "nan" not in out.lower().replace("n/a", "") and out.count("n/a") >= 2


def test_a_write_never_replaces_a_device_or_a_pipe_and_follows_a_link(tmp_path):
    """``-o /dev/full`` (run as root) replaced the device node with the YAML file: an output
    that exists and is not a regular file is refused; an output that is a symbolic link
    writes the file it names, and the link stays a link (the shipped-files guard judges
    that file: planner.catalog.refuse_shipped)."""
    import os
    import stat

    cfg = str(ROOT / "tests" / "data" / "hf_configs" / "qwen3-8b.json")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    rc, _, err = run("models", "import", cfg, "-o", str(fifo))
    assert rc == 2
    one_line(err, str(fifo), "not a regular file")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    real, link = tmp_path / "real.yaml", tmp_path / "link.yaml"
    link.symlink_to(real)
    rc, _, err = run("models", "import", cfg, "-o", str(link))
    assert rc == 0, err
    assert link.is_symlink() and real.read_text().startswith("name:")


@pytest.mark.parametrize("edit,field", [
    (("reference_gen_len: 32768", "reference_gen_len: 1e15"), "reference_gen_len"),
    (("median_tokens: 10000.0", "median_tokens: 1e17"), "trace_length.median_tokens"),
])
def test_task_profile_lengths_within_the_token_bound(tmp_path, edit, field):
    """A task profile's generation budget or median trace of 1e15 tokens was used (the
    accuracy of a trace that never ends: 0, exit 0); lengths keep planner.bounds.MAX_TOKENS."""
    f = tmp_path / "aime24--deepseek-r1.yaml"
    text = (ROOT / "tasks" / "aime24--deepseek-r1.yaml").read_text()
    assert edit[0] in text
    f.write_text(text.replace(edit[0], edit[1], 1))
    rc, _, err = run("accuracy", "-p", str(f))
    assert rc == 2
    one_line(err, str(f), f"field '{field}'", str(bounds.MAX_TOKENS))
