"""`planner report`: capacity scenario, fleet sizing, HTML/Markdown output, determinism."""

import importlib.util
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from planner.cli import main

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = str(ROOT / "examples" / "capacity.yaml")
CHROMIUM = "/usr/bin/chromium"

needs_mpl = pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="needs matplotlib")


@pytest.fixture(scope="module")
def built():
    from planner.report import build

    return build(SCENARIO)


@pytest.fixture(scope="module")
def html_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "out.html"
    assert main(["report", SCENARIO, "-o", str(out)]) == 0
    return out


@needs_mpl
def test_html_report_is_self_contained(html_report):
    text = html_report.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "Capacity plan" in text and "Fleet and cost" in text and "Sensitivity" in text
    assert "Assumptions and known model error" in text
    # both plots embedded as data URIs, nothing fetched from anywhere
    assert text.count('src="data:image/svg+xml;base64,') == 2
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.I)
    assert "http://" not in text and "https://" not in text
    assert "<script" not in text.lower() and "<link" not in text.lower()
    # the embedded plots are real SVG documents
    import base64

    for blob in re.findall(r'src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', text):
        svg = base64.b64decode(blob).decode("utf-8")
        assert "<svg" in svg and "</svg>" in svg
        assert "dc:date" not in svg


@needs_mpl
def test_markdown_report_with_plot_files(tmp_path):
    out = tmp_path / "plan.md"
    assert main(["report", SCENARIO, "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Capacity plan")
    assert "| model | hardware |" in text
    assert "![" in text and "(plan-pareto.svg)" in text and "(plan-roofline.svg)" in text
    assert (tmp_path / "plan-pareto.svg").read_text().lstrip().startswith("<?xml")
    assert (tmp_path / "plan-roofline.svg").is_file()
    assert "## Sensitivity" in text and "## Fleet and cost" in text


def test_fleet_sizing_consistent_with_estimate(built, capsys, tmp_path):
    """The report's per-replica rate is a Poisson rate at which `planner estimate --rate`
    gives the report's TTFT and TPOT (the estimate path is the oracle; its engine runs at
    most the configuration's C requests, the replica's max_num_seqs), its full-load
    throughput is `planner estimate --concurrency`'s, and the fleet is sized from that rate."""
    import yaml

    engine = yaml.safe_load(Path(SCENARIO).read_text()).get("engine", "generic")  # the plan's engine
    spec = yaml.safe_load((Path(__file__).resolve().parents[1] / "engines" / f"{engine}.yaml").read_text())
    ok = [c for c in built["plan"]["candidates"] if c["status"] == "ok"]
    assert ok
    for c in ok:
        cf, pr = c["config"], c["per_replica"]
        common = ["-m", c["model"], "-H", c["hardware"], "--devices", str(cf["devices"]),
                  "--prompt-len", str(cf["prompt_len"]), "--gen-len", str(cf["gen_len"]),
                  "--weight-dtype", cf["weight_dtype"], "--act-dtype", cf["act_dtype"], "--kv-dtype", cf["kv_dtype"],
                  "--json"]
        capsys.readouterr()
        c_max = cf["concurrency"]  # the plan's engine, at most C running (on every device tier too)
        tiers = [{**t, "max_running": min(t.get("max_running", c_max), c_max)} for t in spec.get("device_tiers", [])]
        capped = tmp_path / f"{engine}-{c_max}.yaml"
        capped.write_text(yaml.safe_dump({**spec, "max_running": c_max, **({"device_tiers": tiers} if tiers else {})}))
        assert main(["estimate", *common, "--engine", str(capped), "--rate", repr(pr["requests_per_s"])]) == 0
        est = json.loads(capsys.readouterr().out)
        assert not est["unbounded"]
        assert pr["tpot_s"] == pytest.approx(est["tpot_s"], rel=1e-9)
        assert pr["ttft_s"] == pytest.approx(est["ttft_s"], rel=1e-9)
        # full load: the running set in flight (at most C; fewer where the KV memory caps it)
        assert 1 <= pr["max_running"] <= cf["concurrency"]
        assert main(["estimate", *common, "--engine", str(capped), "--arrival", "closed",
                     "--concurrency", str(pr["max_running"])]) == 0
        full = json.loads(capsys.readouterr().out)
        assert pr["full_load_throughput_tok_s"] == pytest.approx(full["throughput_tok_s"], rel=1e-9)
        assert main(["estimate", *common, "--concurrency", "1"]) == 0
        assert json.loads(capsys.readouterr().out)["memory"]["fits"]  # memory holds a request
        # sizing from the Poisson rate: replicas with headroom, N+k
        scn = built["scenario"]
        rate = pr["requests_per_s"]
        f = c["fleet"]
        need = math.ceil(scn["traffic"]["requests_per_s"] * (1 + scn["headroom"]) / rate - 1e-9)
        assert f["replicas"] == need + scn["redundancy"] and f["replicas_needed"] == need
        # N+k: after losing the spares the rest still carries the traffic with its headroom
        assert (f["replicas"] - scn["redundancy"]) * rate >= scn["traffic"]["requests_per_s"] * (1 + scn["headroom"])
        assert f["devices"] == f["replicas"] * cf["devices"]
        assert f["utilization"] == pytest.approx(scn["traffic"]["requests_per_s"] / (f["replicas"] * rate))
        assert f["in_flight"] == pytest.approx(scn["traffic"]["requests_per_s"] * est["latency_s"], rel=1e-9)
        if not f["owned"]:
            assert f["monthly_usd"] == pytest.approx(f["devices"] * 730.5 * f["price_per_device_hour"])
        for s in c["slo"]:
            assert s["ok"] and s["value"] <= s["max"]


def test_price_override_and_sensitivity(built):
    base = built["plan"]["candidates"]
    h100 = [c for c in base if c["hardware"] == "h100-sxm" and c["status"] == "ok"]
    assert h100 and all(c["fleet"]["price_per_device_hour"] == pytest.approx(2.49) for c in h100)
    by = {v["variant"]: v["candidates"] for v in built["sensitivity"]}
    price = next(v for k, v in by.items() if k.startswith("prices"))
    traffic = by["traffic x2"]
    gen = by["generation length x2"]
    for i, c in enumerate(base):
        if c["status"] != "ok":
            continue
        # a price change scales the bill and does not change the choice
        assert price[i]["fleet"]["monthly_usd"] == pytest.approx(1.25 * c["fleet"]["monthly_usd"])
        # more traffic or longer generations never make the fleet cheaper
        for other in (traffic[i], gen[i]):
            assert other["status"] != "ok" or other["fleet"]["monthly_usd"] >= c["fleet"]["monthly_usd"] - 1e-6


def test_length_distributions():
    from planner.capacity import Lengths

    pct = Lengths.model_validate({"p50": 600, "p90": 1500, "p99": 3000})
    assert (pct.quantile(50), pct.quantile(90), pct.quantile(99)) == (600, 1500, 3000)
    assert 1500 < pct.quantile(95) < 3000 and 600 < pct.quantile(75) < 1500
    assert 600 < pct.mean_len() < 1500
    assert Lengths.model_validate(512).quantile(99) == 512 == Lengths.model_validate(512).mean_len()
    ln = Lengths.model_validate({"lognormal": {"median": 100, "sigma": 0.5}})
    assert ln.quantile(50) == 100 and ln.mean_len() == round(100 * math.exp(0.125))
    assert pct.scaled(2.0).quantile(90) == 3000


@pytest.mark.parametrize("patch, field", [
    ({"traffic": {"requests_per_s": -1, "prompt_len": 100, "gen_len": 100}}, "traffic.requests_per_s"),
    ({"traffic": {"requests_per_s": 1, "prompt_len": {"p50": 900, "p90": 100}, "gen_len": 100}}, "traffic.prompt_len"),
    ({"models": ["no-such-model"]}, "models[0]"),
    ({"prices": {"b200": 3.0}}, "prices"),
    ({"search": {"quantizations": ["int3"]}}, "search.quantizations"),
    ({"headroom": "lots"}, "headroom"),
    ({"surprise": 1}, "surprise"),
    # round 14 fuzzing: each of these was a traceback (OverflowError, matplotlib's "Axis
    # limits cannot be NaN or Inf", a pydantic ValidationError) or an inf in the report
    ({"traffic": {"requests_per_s": 1e308, "prompt_len": 100, "gen_len": 100}}, "traffic.requests_per_s"),
    ({"traffic": {"requests_per_s": 1e-308, "prompt_len": 100, "gen_len": 100}}, "traffic.requests_per_s"),
    ({"traffic": {"requests_per_s": 1, "prompt_len": {"lognormal": {"median": 1e308, "sigma": 1}}, "gen_len": 100}},
     "traffic.prompt_len.lognormal.median"),
    ({"traffic": {"requests_per_s": 1, "prompt_len": 100, "gen_len": {"p50": 5, "mean": 1e308}}}, "traffic.gen_len.mean"),
    ({"prices": {"h100-sxm": 1e308}}, "prices.h100-sxm"),
    ({"electricity_usd_per_kwh": 1e308}, "electricity_usd_per_kwh"),
])
def test_bad_scenario_is_one_line_exit_2(tmp_path, capsys, patch, field):
    import yaml

    data = yaml.safe_load(Path(SCENARIO).read_text())
    data.update(patch)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    assert main(["report", str(bad), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.yaml" in err and field in err
    assert not (tmp_path / "r.html").exists()


def test_bad_output_suffix_exit_2(tmp_path, capsys):
    assert main(["report", SCENARIO, "-o", str(tmp_path / "r.pdf")]) == 2
    assert "r.pdf" in capsys.readouterr().err


@needs_mpl
def test_report_is_deterministic(tmp_path, html_report):
    """Same inputs, byte-identical files: in this process and in a fresh one."""
    a, b = tmp_path / "a.html", tmp_path / "b.md"
    assert main(["report", SCENARIO, "-o", str(a)]) == 0
    assert a.read_bytes() == html_report.read_bytes()
    assert main(["report", SCENARIO, "-o", str(b)]) == 0
    first = {p.name: p.read_bytes() for p in tmp_path.glob("b*")}
    env = dict(os.environ, PYTHONHASHSEED="123")
    subprocess.run([sys.executable, "-m", "planner", "report", SCENARIO, "-o", str(tmp_path / "c.html")],
                   check=True, cwd=str(ROOT), env=env, capture_output=True)
    assert (tmp_path / "c.html").read_bytes() == a.read_bytes()
    assert main(["report", SCENARIO, "-o", str(b)]) == 0
    assert {p.name: p.read_bytes() for p in tmp_path.glob("b*")} == first


@needs_mpl
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs /usr/bin/chromium")
def test_html_renders_in_headless_chromium(html_report, tmp_path):
    from PIL import Image

    png = tmp_path / "shot.png"
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'prof'}"]
    r = subprocess.run(flags + ["--enable-logging=stderr", "--v=0", f"--screenshot={png}", "--window-size=1200,5000",
                                html_report.as_uri()], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "CONSOLE" not in r.stderr and "Uncaught" not in r.stderr
    img = Image.open(png).convert("RGB")
    assert img.size == (1200, 5000)
    # the Pareto plot decoded and painted: its first marker colour (#1f77b4) is on screen
    colors = {c for _, c in img.getcolors(maxcolors=1 << 20)}
    assert (31, 119, 180) in colors
    dom = subprocess.run(flags + ["--dump-dom", html_report.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0
    assert dom.stdout.count("<img") == 2 and "Fleet and cost" in dom.stdout


def test_report_json_and_calibration_keys(tmp_path, capsys):
    import yaml

    out = tmp_path / "r.md"
    assert main(["report", SCENARIO, "-o", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["written"][0] == str(out) and data["cheapest"]
    assert {v["variant"] for v in data["sensitivity"]} >= {"traffic x2", "generation length x2"}
    scn = yaml.safe_load(Path(SCENARIO).read_text())
    scn["calibration"] = {"b200": "nope.yaml"}
    bad = tmp_path / "cal.yaml"
    bad.write_text(yaml.safe_dump(scn))
    assert main(["report", str(bad), "-o", str(out)]) == 2
    assert "calibration.b200" in capsys.readouterr().err


def test_report_without_matplotlib_omits_plots(tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")] + ["matplotlib"]:
        monkeypatch.setitem(sys.modules, name, None)
    for out in (tmp_path / "r.html", tmp_path / "r.md"):
        assert main(["report", SCENARIO, "-o", str(out)]) == 0
        text = out.read_text()
        assert text.count("Plot omitted (matplotlib is not installed") == 2 and "Fleet and cost" in text
    assert not list(tmp_path.glob("*.svg"))


def test_rent_vs_buy_breakeven_matches_a_month_by_month_ledger():
    """The closed-form break-even equals the month where a cumulative ledger of rent
    overtakes purchase + electricity (brute force, by the day)."""
    from planner.fleet import rent_vs_buy
    from planner.units import HOURS_PER_MONTH

    for devices, rent, buy, kwh, usd_kwh in [(8, 2.99, 30000.0, 4000.0, 0.12), (1, 1.86, 8000.0, 500.0, 0.30),
                                            (3, 0.5, 20000.0, 9000.0, 0.2)]:
        r = rent_vs_buy(devices, rent, buy, 4.0, kwh, usd_kwh, horizon_months=12)
        assert r["rent_usd"] == pytest.approx(devices * rent * HOURS_PER_MONTH * 12)
        assert r["buy_usd"] == pytest.approx(devices * buy + kwh * usd_kwh * 12)
        day = 0
        while day < 365 * 50:
            months = day / (365.25 / 12)
            if devices * rent * HOURS_PER_MONTH * months >= devices * buy + kwh * usd_kwh * months:
                break
            day += 1
        if r["breakeven_months"] is None:
            assert day == 365 * 50  # never pays off: electricity alone costs more than the rent
        else:
            assert r["breakeven_months"] == pytest.approx(day / (365.25 / 12), abs=1 / 30)


def test_redundancy_pue_and_host_power_move_the_fleet_the_right_way(tmp_path):
    """More spares -> more devices and dollars; a higher PUE or host power -> more kWh and
    peak kW, same devices; power figures follow the datasheet maximum."""
    import yaml

    from planner.catalog import load_hardware
    from planner.report import build

    scn = yaml.safe_load(Path(SCENARIO).read_text())
    out = {}
    for label, change in [("base", {}), ("n+3", {"redundancy": 3}), ("pue", {"pue": 2.0}),
                          ("host", {"host_power_w_per_device": 575})]:
        f = tmp_path / f"{label}.yaml"
        f.write_text(yaml.safe_dump({**scn, **change}))
        out[label] = {(c["model"], c["hardware"]): c for c in build(str(f))["plan"]["candidates"] if c["status"] == "ok"}
    for key, c in out["base"].items():
        fb = c["fleet"]
        hw = load_hardware(c["hardware"])
        assert fb["peak_it_kw"] == pytest.approx(fb["devices"] * hw.max_power_w / 1000)
        assert fb["peak_facility_kw"] == pytest.approx(fb["peak_it_kw"] * scn.get("pue", 1.58))
        if key in out["n+3"]:
            f3 = out["n+3"][key]["fleet"]
            assert f3["spare_replicas"] == 3 and f3["monthly_usd"] >= fb["monthly_usd"]
        fp, fh = out["pue"][key]["fleet"], out["host"][key]["fleet"]
        if fp["devices"] == fb["devices"]:
            assert fp["monthly_kwh"] > fb["monthly_kwh"] and fp["peak_facility_kw"] > fb["peak_facility_kw"]
        if fh["devices"] == fb["devices"]:
            assert fh["peak_it_kw"] == pytest.approx(fb["peak_it_kw"] + fb["devices"] * 0.575)


def test_report_shows_price_sources_dates_and_overrides(tmp_path):
    out = tmp_path / "r.md"
    assert main(["report", SCENARIO, "-o", str(out)]) == 0
    text = out.read_text()
    assert "## Prices used" in text and "override (scenario)" in text
    assert "AWS EC2 on-demand g6e.xlarge" in text  # the l40s catalog price, with its source
    assert "| l40s | 1.86 | rental | 2025 |" in text
    assert "## Rent or buy over 12 months" in text and "## Power" in text


def test_pareto_heading_follows_its_axis(tmp_path):
    """Without a task the Pareto plot's y-axis is latency, and its heading says so."""
    import yaml

    scn = yaml.safe_load(Path(SCENARIO).read_text())
    scn.pop("task"), scn.pop("min_accuracy")
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(scn))
    out = tmp_path / "r.md"
    assert main(["report", str(f), "-o", str(out)]) == 0
    text = out.read_text()
    assert "## Mean end-to-end latency (no accuracy profile) vs cost" in text and "Accuracy vs cost" not in text


@needs_mpl
def test_pareto_plot_labels_frontier_points_and_keeps_the_accuracy_axis_whole():
    """Points between 0.32 and 0.40 accuracy: the axis still spans 0 to 1 (ticks 0.0 and
    1.0 drawn), and every frontier point carries its label as SVG text."""
    from planner.plots import frontier, pareto_svg

    pts = [{"model": "m", "hardware": "h", "label": f"cfg{i}", "x": 0.1 * (i + 1), "y": 0.32 + 0.01 * i,
            "chosen": i == 0} for i in range(9)]
    pts.append({"model": "m", "hardware": "h", "label": "dominated", "x": 5.0, "y": 0.33, "chosen": False})
    svg = pareto_svg(pts, "accuracy")
    assert ">0.0<" in svg and ">1.0<" in svg
    for p in frontier(pts):
        assert f">{p['label']}<" in svg
    assert ">dominated<" not in svg


@pytest.mark.parametrize("extra", [
    {"traffic": {"requests_per_s": 1e-6, "prompt_len": 100, "gen_len": 100},
     "prices": {"h100-sxm": 1e9}, "electricity_usd_per_kwh": 100},
    {"traffic": {"requests_per_s": 1e7, "prompt_len": {"lognormal": {"median": 1e7, "sigma": 5}},
                 "gen_len": {"p50": 1, "p90": 1e7, "mean": 1e7}}, "horizon_months": 600, "redundancy": 1000},
])
def test_a_scenario_at_the_bounds_runs_to_finite_numbers(tmp_path, capsys, extra):
    """The traffic, price and length bounds (planner.bounds) are where a report still
    comes out whole: every number printed finite, both plots drawn."""
    import yaml

    data = {"name": "edge", "slo": {"ttft_s": 2.0, "tpot_s": 0.05}, "models": ["qwen3-8b"], "hardware": ["h100-sxm"],
            "search": {"max_devices": 1, "quantizations": ["bf16"], "kv_dtypes": ["bf16"], "concurrency": [1, 64]},
            **extra}
    f = tmp_path / "edge.yaml"
    f.write_text(yaml.safe_dump(data))
    assert main(["report", str(f), "-o", str(tmp_path / "r.md")]) == 0, capsys.readouterr().err
    text = (tmp_path / "r.md").read_text()
    assert not re.search(r"\b(nan|inf|infinity)\b", text, re.I)
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "r-pareto.svg").exists() and (tmp_path / "r-roofline.svg").exists()
