"""Every serving prediction states the measured error of its path (planner.fidelity, the
shipped calibration/serving-fidelity.yaml).

Oracles: the README's "Error today" table (the shipped file and the README must show the
same figures: one updated without the other fails here), the measured file's digest, the
shipped serving profiles on disk (a pair has the fitted path exactly when its profile file
exists), and the one-line-error promise of the developers' guide for a missing or bad file.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
import yaml
from test_robust import one_error_line, run

from planner import fidelity as F
from planner.catalog import load_hardware
from planner.engine_profiles import load_engine
from planner.errors import InputError
from planner.serving_profile import expected_error, replay_path, resolve_serving

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
# the README's protocol names -> the path whose error each one measures
README_ROWS = {"leave-one-model-out": "fitted", "leave-one-device-out": "carried", "datasheet": "datasheet",
               "engine-today": "generic"}


def _readme_error_today() -> tuple[dict, int]:
    """The "How right is it: error today" table of README.md: protocol -> (TTFT median,
    p90, TPOT median, p90) in percent as printed, and the rows it states."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    sec = text.split("### How right is it: error today", 1)[1].split("\n### ", 1)[0]
    cell = r"\**([\d.]+)% \(([\d.]+)%\)\**"
    out = {}
    for m in re.finditer(rf"^\| \**([a-z-]+)\** \|[^|]*\| {cell} \| {cell} \|$", sec, re.M):
        out[m.group(1)] = tuple(float(m.group(i)) for i in range(2, 6))
    rows = re.search(r"all ([\d,]+) rows", sec)
    return out, int(rows.group(1).replace(",", ""))


def test_the_shipped_file_shows_the_readme_figures():
    table, rows = _readme_error_today()
    assert set(README_ROWS) <= set(table), table
    doc = F.read()
    for protocol, path in README_ROWS.items():
        e = doc["paths"][path]
        assert e["predictor"] == protocol
        got = (e["ttft"]["median_abs_pct"], e["ttft"]["p90_abs_pct"], e["tpot"]["median_abs_pct"],
               e["tpot"]["p90_abs_pct"])
        assert got == table[protocol], f"{path}: file {got}, README {table[protocol]} (regenerate one of them)"
        assert e["rows"] == rows
    assert doc["paths"]["microbenchmark"] == {"measured": False}


def test_the_shipped_file_names_its_sources():
    src = F.read()["sources"]
    assert src["command"].startswith("python benchmarks/serving_fidelity.py --write-error-summary")
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", src["date"]) and re.match(r"[0-9a-f]{40}", src["commit"])
    data = DATA / src["measured_file"]
    if data.is_file():  # the figures are of this very file
        assert hashlib.sha256(data.read_bytes()).hexdigest() == src["measured_file_sha256"]
    # the devices measured are the shipped serving profiles' devices
    shipped = {p.name.split(".")[0] for p in (ROOT / "calibration" / "serving").glob("*.yaml")}
    assert set(src["devices"]) == shipped


@pytest.mark.parametrize("engine", ["vllm", "sglang", "trtllm"])
def test_fitted_exactly_where_a_profile_was_fitted_else_carried(engine):
    """Every catalog device with each measured engine: the fitted path exactly where
    calibration/serving/<device>.<engine>.yaml exists; elsewhere the engine's fitted devices
    carry (the replay's rule), so the carried path."""
    eng = load_engine(engine)
    names = sorted(p.stem for p in (ROOT / "hardware").glob("*.yaml"))
    assert len(names) > 20
    for name in names:
        hw = load_hardware(name)
        want = "fitted" if (ROOT / "calibration" / "serving" / f"{hw.name}.{engine}.yaml").is_file() else "carried"
        assert resolve_serving(hw, eng).path == want, name
    assert resolve_serving(load_hardware("h200"), eng).path == "fitted"
    assert resolve_serving(load_hardware("b200"), eng).path == "carried"


def test_the_other_paths():
    h200, mi355x = load_hardware("h200"), load_hardware("mi355x")
    # ATOM: no device was ever fitted with it, so nothing carries: the datasheet alone
    atom = resolve_serving(mi355x, load_engine("atom"))
    assert atom.parameters is None and atom.path == "datasheet"
    # no engine named (the generic one): the steady-state engine at datasheet efficiencies
    assert resolve_serving(h200, None).path == resolve_serving(h200, load_engine("generic")).path == "generic"
    # a calibration profile named: never measured on serving runs
    named = resolve_serving(h200, load_engine("vllm"), str(ROOT / "calibration" / "serving" / "h200.vllm.yaml"))
    assert named.path == "microbenchmark" and named.parameters is None
    err = expected_error(named)
    assert err["measured"] is False and "ttft" not in err and F.describe(err).endswith(F.NOT_MEASURED)
    # the replay's profile names map onto the same paths
    assert [replay_path(p) for p in ("calibration:h200.vllm.yaml", "datasheet", "engine-today",
                                     "datasheet + vllm step_host_s of h100-sxm/vllm")] == \
        ["fitted", "datasheet", "generic", "carried"]


def test_estimate_states_the_error_of_its_path():
    rc, out, _ = run("estimate", "-H", "b200", "--engine", "vllm", "-m", "llama-3.1-8b", "--concurrency", "8",
                     "--json")
    assert rc == 0
    err = json.loads(out)["expected_error"]
    lodo = F.read()["paths"]["carried"]
    assert err["path"] == "carried" and err["predictor"] == "leave-one-device-out"
    assert err["ttft"]["median_abs"] == pytest.approx(lodo["ttft"]["median_abs_pct"] / 100, abs=1e-9)
    # an engine named with requests in flight: the closed loop by default, how the replay measured the figures
    rc, text, _ = run("estimate", "-H", "h200", "--engine", "vllm", "-m", "llama-3.1-8b", "--concurrency", "8")
    assert rc == 0 and "serving, closed loop" in text
    line = F.describe(F.expected_error("fitted"))
    assert line in " ".join(text.split()), text  # the console may wrap it
    # the steady state (an option) was not what was measured: the line says so
    rc, text, _ = run("estimate", "-H", "h200", "--engine", "vllm", "-m", "llama-3.1-8b", "--concurrency", "8",
                      "--arrival", "steady")
    assert rc == 0
    assert "measured error of this path on closed-loop replays, the steady state here (fitted" in " ".join(text.split())


def test_the_lead_says_when_the_prediction_is_not_what_was_measured():
    fitted, generic = F.expected_error("fitted"), F.expected_error("generic")
    assert F.lead_for(fitted, "closed") == "measured error of this path"
    for arrival, here in (("steady", "the steady state"), ("poisson", "Poisson arrivals"), ("static", "static batches")):
        assert F.lead_for(fitted, arrival) == f"measured error of this path on closed-loop replays, {here} here"
        assert F.lead_for(generic, arrival) == "measured error of this path"  # measured as the steady state it is
    assert F.lead_for(F.expected_error("microbenchmark"), "steady") == "measured error of this path"


def _doc() -> dict:
    st = lambda m, p: {"median_abs": m, "p90_abs": p, "n": 120}  # noqa: E731
    results = {k: {"ttft": st(0.3329, 0.955), "tpot": st(0.14231, 0.4759)} for k in
               ("leave-one-model-out", "leave-one-device-out", "datasheet", "engine-today")}
    src = {k: "x" for k in F.SOURCE_FIELDS}
    files = {"a.csv": {"sha256": "0" * 64, "harness": "InferenceX"}, "b.csv": {"sha256": "1" * 64, "harness": "dstack"}}
    mi = {"rows": 5, "ttft": st(0.8892, 0.9666), "tpot": st(0.652, 0.7896), "paths": {"carried": 4, "datasheet": 1},
          "sources": [{"file": "a.csv", "harness": "InferenceX", "engines": ["sglang"], "rows": 3},
                      {"file": "b.csv", "harness": "dstack", "engines": ["vllm", "atom"], "rows": 2}],
          "engines": {"sglang": {"rows": 3, "ttft": st(0.4211, 0.5), "tpot": st(0.1, 0.2)},
                      "vllm": {"rows": 1, "ttft": st(1.5, 1.5), "tpot": st(0.9, 0.9)},
                      "atom": {"rows": 1, "ttft": st(0.95, 0.95), "tpot": st(0.7, 0.7)}}}
    return F.summary_doc(results, src, F.published_doc(files, {"mi300x": mi}))


def test_the_written_figures_read_back_as_printed(tmp_path):
    p = tmp_path / "f.yaml"
    p.write_text(yaml.safe_dump(_doc()))
    err = F.expected_error("fitted", p)
    # as benchmarks/serving_fidelity.py prints them: the median to the hundredth, p90 to the tenth
    assert (err["ttft"]["median_abs"], err["ttft"]["p90_abs"]) == (0.3329, 0.955)
    assert (err["tpot"]["median_abs"], err["tpot"]["p90_abs"]) == (0.1423, 0.476)
    assert err["rows"] == 120
    # the published section round-trips too, and is the device's entry on a path its rows took
    pub = F.expected_error("carried", p, device="mi300x")["published"]
    assert (pub["rows"], pub["paths"], pub["sources"][1]["engines"]) == (5, {"carried": 4, "datasheet": 1},
                                                                         ["vllm", "atom"])
    assert pub["ttft"] == {"median_abs": 0.8892, "p90_abs": 0.967} and pub["tpot"]["p90_abs"] == 0.79
    assert F.expected_error("generic", p, device="mi300x")["published"] is None  # not the path they were replayed on
    assert F.expected_error("carried", p, device="l40s")["published"] is None
    assert "published" not in F.expected_error("carried", p)  # no device named: the path alone
    line = F.describe(F.expected_error("datasheet", p, device="mi300x"))
    assert "published runs of mi300x, 5 rows (sglang, vllm, atom): median TTFT 89%, TPOT 65% (p90 97%, 79%)" in line
    assert line.endswith("datasheet alone, 120 runs: 33% / 14%)")
    assert F.describe(F.expected_error("carried", p, device="l40s")).endswith("; no published check of l40s")


def test_the_published_figure_of_the_engine_named(tmp_path):
    """A device's published runs are scored per engine too: the engine a prediction names
    gets its own rows' figure first (a device measured with several engines is not one
    figure), the pooled one after; an engine none of its rows ran says so."""
    p = tmp_path / "f.yaml"
    p.write_text(yaml.safe_dump(_doc()))
    pub = F.expected_error("carried", p, device="mi300x", engine="sglang")["published"]
    assert pub["engine"] == {"name": "sglang", "rows": 3, "ttft": {"median_abs": 0.4211, "p90_abs": 0.5},
                             "tpot": {"median_abs": 0.1, "p90_abs": 0.2}}
    line = F.describe(F.expected_error("carried", p, device="mi300x", engine="sglang"))
    assert ("published runs of mi300x with sglang, 3 rows: median TTFT 42%, TPOT 10% (p90 50%, 20%); all its "
            "published runs, 5 rows (sglang, vllm, atom): 89% / 65%; leave-one-device-out, 120 runs: 33% / 14%)") in line
    line = F.describe(F.expected_error("carried", p, device="mi300x", engine="trtllm"))
    assert "published runs of mi300x, 5 rows (sglang, vllm, atom), none with trtllm: median TTFT 89%" in line
    assert F.expected_error("carried", p, device="mi300x", engine="trtllm")["published"]["engine"] == {"name": "trtllm"}


def test_the_shipped_per_engine_figures_are_the_device_rows():
    """The shipped file's per-engine entries partition each device's published rows, and an
    engine's figure is its own: on a device measured with one engine it equals the pooled one."""
    for dev, e in F.read()["published"]["devices"].items():
        assert sum(x["rows"] for x in e["engines"].values()) == e["rows"], dev
        assert set(e["engines"]) == {g for s in e["sources"] for g in s["engines"]}, dev
        if len(e["engines"]) == 1:
            (x,) = e["engines"].values()
            assert (x["ttft"], x["tpot"]) == (e["ttft"], e["tpot"]), dev


@pytest.mark.parametrize("edit,field", [
    (lambda d: d.update(format="planner-calibration"), "format"),
    (lambda d: d["sources"].pop("commit"), "sources.commit"),
    (lambda d: d["paths"].pop("carried"), "paths.carried"),
    (lambda d: d["paths"]["fitted"].update(rows=True), "paths.fitted.rows"),
    (lambda d: d["paths"]["datasheet"]["ttft"].update(p90_abs_pct=-1), "paths.datasheet.ttft.p90_abs_pct"),
    (lambda d: d["paths"]["fitted"]["tpot"].update(median_abs_pct=99.0), "paths.fitted.tpot.median_abs_pct"),
    (lambda d: d["paths"]["microbenchmark"].update(measured=True), "paths.microbenchmark.measured"),
    (lambda d: d["paths"]["carried"].update(predictor="leave-one-model-out"), "paths.carried.predictor"),
    (lambda d: d.pop("published"), "published"),
    (lambda d: d["published"]["files"]["a.csv"].pop("sha256"), "published.files.a.csv.sha256"),
    (lambda d: d["published"].update(devices={}), "published.devices"),
    (lambda d: d["published"]["devices"]["mi300x"].update(rows=0), "published.devices.mi300x.rows"),
    (lambda d: d["published"]["devices"]["mi300x"]["tpot"].update(median_abs_pct="65%"),
     "published.devices.mi300x.tpot.median_abs_pct"),
    (lambda d: d["published"]["devices"]["mi300x"]["paths"].update(generic=1), "published.devices.mi300x.paths"),
    (lambda d: d["published"]["devices"]["mi300x"]["paths"].update(carried=3), "published.devices.mi300x.paths"),
    (lambda d: d["published"]["devices"]["mi300x"]["sources"][1].update(file="c.csv"),
     "published.devices.mi300x.sources[1].file"),
    (lambda d: d["published"]["devices"]["mi300x"]["sources"][0].update(engines=[]),
     "published.devices.mi300x.sources[0].engines"),
    (lambda d: d["published"]["devices"]["mi300x"].pop("engines"), "published.devices.mi300x.engines"),
    (lambda d: d["published"]["devices"]["mi300x"]["engines"]["vllm"].update(rows=2),
     "published.devices.mi300x.engines"),
    (lambda d: d["published"]["devices"]["mi300x"]["engines"]["atom"]["ttft"].update(p90_abs_pct=None),
     "published.devices.mi300x.engines.atom.ttft.p90_abs_pct"),
])
def test_a_bad_file_is_one_error_naming_the_field(tmp_path, edit, field):
    d = _doc()
    edit(d)
    p = tmp_path / "f.yaml"
    p.write_text(yaml.safe_dump(d))
    with pytest.raises(InputError) as e:
        F.read(p)
    assert e.value.field == field and e.value.file == str(p)


@pytest.mark.parametrize("text", [None, "paths: [1, 2\n", "format: planner-serving-fidelity\n"])
def test_a_missing_or_malformed_shipped_file_exits_2_in_one_line(tmp_path, monkeypatch, text):
    p = tmp_path / F.FILE_NAME
    if text is not None:
        p.write_text(text)
    monkeypatch.setattr(F, "shipped_path", lambda: p)
    for argv in (["estimate", "-H", "h200", "--engine", "vllm"], ["estimate", "-H", "b200", "--engine", "vllm",
                                                                   "--json"]):
        rc, out, err = run(*argv)
        assert rc == 2 and out == ""
        one_error_line(err, str(p))


def test_a_published_entry_is_its_check_files_replayed():
    """MI300X's published entry recomputed here from the check files the shipped file names:
    each file's rows on mi300x, replayed with the shipped profiles (nothing fitted on them), the
    errors against the rows' own measured TTFT and TPOT columns, pooled; the file's digests are
    of these very files."""
    import numpy as np

    from planner.measured import read_measured
    from planner.replay import predict
    from planner.serving_profile import load_serving

    pub = F.read()["published"]
    entry = pub["devices"]["mi300x"]
    e, rows, files = {"ttft": [], "tpot": []}, 0, []
    for name, meta in pub["files"].items():
        path = ROOT / "tests" / "data" / name
        assert hashlib.sha256(path.read_bytes()).hexdigest() == meta["sha256"], name
        runs = read_measured(path)
        pred = predict(runs, load_serving())
        m = (pred.status == "ok") & (pred.device == "mi300x")
        if m.any():
            files.append(name)
            rows += int(m.sum())
            e["ttft"].append(pred.ttft_s[m] / runs.measured_ttft_s[m] - 1)
            e["tpot"].append(pred.tpot_s[m] / runs.measured_tpot_s[m] - 1)
    assert rows == entry["rows"] > 0 and files == [s["file"] for s in entry["sources"]]
    for k in ("ttft", "tpot"):
        a = np.abs(np.concatenate(e[k]))
        a = a[np.isfinite(a)]
        assert entry[k]["median_abs_pct"] == pytest.approx(100 * np.median(a), abs=0.006)
        assert entry[k]["p90_abs_pct"] == pytest.approx(100 * np.percentile(a, 90), abs=0.06)
    # the replay's files hold no row of these devices: no published check to state
    assert not {"l40s", "h20", "tpu-v5e"} & set(pub["devices"])


def test_a_device_states_its_published_check_or_that_it_has_none():
    mi = F.read()["published"]["devices"]["mi300x"]
    rc, out, _ = run("estimate", "-H", "mi300x", "--engine", "vllm", "-m", "llama-3.1-8b", "--concurrency", "8",
                     "--json")
    assert rc == 0
    err = json.loads(out)["expected_error"]
    assert err["path"] == "carried" and err["device"] == "mi300x" and err["published"]["rows"] == mi["rows"]
    assert err["published"]["tpot"]["median_abs"] == pytest.approx(mi["tpot"]["median_abs_pct"] / 100, abs=1e-9)
    vllm = mi["engines"]["vllm"]  # the engine named: its rows' figure first, then all the device's rows
    assert err["published"]["engine"]["rows"] == vllm["rows"] < mi["rows"]
    assert err["published"]["engine"]["ttft"]["median_abs"] == pytest.approx(vllm["ttft"]["median_abs_pct"] / 100)
    rc, text, _ = run("estimate", "-H", "mi300x", "--engine", "vllm", "-m", "llama-3.1-8b", "--concurrency", "8")
    assert rc == 0 and (f"published runs of mi300x with vllm, {vllm['rows']} rows: median TTFT "
                        f"{vllm['ttft']['median_abs_pct']:.0f}%") in " ".join(text.split())
    assert f"all its published runs, {mi['rows']} rows (sglang, vllm)" in " ".join(text.split())
    rc, out, _ = run("estimate", "-H", "l40s", "--engine", "vllm", "-m", "llama-3.1-8b", "--concurrency", "8", "--json")
    err = json.loads(out)["expected_error"]
    assert rc == 0 and err["path"] == "carried" and err["published"] is None
    assert F.describe(err).endswith("no published check of l40s")


def _benchmark():
    import importlib.util

    spec = importlib.util.spec_from_file_location("serving_fidelity_bench", ROOT / "benchmarks" / "serving_fidelity.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_benchmark_writes_a_file_that_reads_back_with_its_sources(tmp_path):
    """benchmarks/serving_fidelity.py's writer, on results of the summarize shape: the file
    reads back, names the command, the measured file's digest and a commit; --quick (no
    datasheet figures) and a missing PATH are refused before any work (exit 2)."""
    bench = _benchmark()
    st = {"median_abs": 0.25, "p90_abs": 0.5, "n": 10}
    results = {k: {"ttft": st, "tpot": st, "by_slice": {"device": [{"value": "h200"}]}}
               for k in ("leave-one-model-out", "leave-one-device-out", "datasheet", "engine-today")}
    data = tmp_path / "runs.csv"
    data.write_text("id\n1\n")
    bench.COMMIT = bench.code_commit()
    out = tmp_path / "sub.yaml"
    bench.write_error_summary(str(out), str(data), results)
    doc = F.read(out)
    assert doc["sources"]["measured_file_sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert doc["sources"]["devices"] == ["h200"] and doc["sources"]["command"].endswith("sub.yaml")
    assert F.expected_error("datasheet", out)["ttft"] == {"median_abs": 0.25, "p90_abs": 0.5}
    assert bench.main(["--quick", "--write-error-summary", str(tmp_path / "x.yaml")]) == 2
    assert bench.main(["--write-error-summary"]) == 2
    assert not (tmp_path / "x.yaml").exists()


def test_json_says_what_the_prediction_was_made_under():
    """--json carries the qualifier the text line prints (predicted_under, measured_under,
    same_as_measured), for each arrival a command predicts under: estimate's closed loop,
    steady state and static batch, recommend's static batches."""
    base = ("-H", "h200", "--engine", "vllm", "-m", "llama-3.1-8b")
    for extra, under, same in ((("--concurrency", "8", "--arrival", "closed"), "closed", True),
                               (("--concurrency", "8", "--arrival", "steady"), "steady", False),
                               ((), "static", False)):  # no requests in flight: a static batch, not the steady state
        rc, out, _ = run("estimate", *base, *extra, "--json")
        assert rc == 0
        err = json.loads(out)["expected_error"]
        assert (err["predicted_under"], err["measured_under"], err["same_as_measured"]) == (
            under, F.REPLAYED_UNDER, same)
        rc, text, _ = run("estimate", *base, *extra)
        lead = "measured error of this path" + ("" if same else f" on closed-loop replays, {F.OTHER_ARRIVALS[under]}")
        assert f"{lead} (fitted" in " ".join(text.split())
    rc, out, _ = run("recommend", "--json")
    assert rc == 0
    assert {e["predicted_under"] for e in json.loads(out)["expected_error"].values()} == {"static"}


def test_no_engine_named_points_to_the_fitted_path():
    """The generic path (no engine named, the worst measured path) says what naming an engine
    gives: the fitted path's figures, for the engines that have a profile file on disk."""
    on_disk = sorted({p.name.split(".")[-2] for p in (ROOT / "calibration" / "serving").glob("*.yaml")})
    h100 = load_hardware("h100-sxm")
    err = expected_error(resolve_serving(h100, None), "h100-sxm")
    fitted = F.expected_error("fitted")
    assert err["path"] == "generic" and err["with_engine"]["engines"] == on_disk
    assert err["with_engine"]["ttft"] == fitted["ttft"] and err["with_engine"]["tpot"] == fitted["tpot"]
    assert err["ttft"]["median_abs"] > err["with_engine"]["ttft"]["median_abs"]  # the hint points to a better path
    line = F.describe(err)
    assert line.endswith(f"with an engine named ({', '.join(on_disk)}): {fitted['ttft']['median_abs']:.0%} / "
                         f"{fitted['tpot']['median_abs']:.0%} on the fitted devices")
    assert "with_engine" not in expected_error(resolve_serving(h100, load_engine("vllm")), "h100-sxm")
