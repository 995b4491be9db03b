"""Render a capacity report in headless Chromium and save a screenshot.

    python benchmarks/render_report.py [SCENARIO.yaml] [--out DIR] [--chromium PATH]

Writes DIR/report.html (``planner report``), DIR/report.png (a 1200x2000 screenshot) and
DIR/report.dom.html (the DOM Chromium built), prints the time each step took and any
console messages Chromium logged. The HTML is self-contained, so Chromium runs with
networking features off. Exit code 1 if Chromium is missing or reports errors.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario", nargs="?", default=str(ROOT / "examples" / "capacity.yaml"))
    ap.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "planner-render-report"))
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    ap.add_argument("--window", default="1200,2000")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    html = out / "report.html"

    from planner.cli import main as planner_main

    t0 = time.perf_counter()
    rc = planner_main(["report", args.scenario, "-o", str(html)])
    t_report = time.perf_counter() - t0
    if rc != 0:
        return rc
    print(f"report: {html} ({html.stat().st_size / 1024:.0f} KiB) in {t_report:.2f} s")
    if not Path(args.chromium).exists():
        print(f"chromium not found at {args.chromium}: install it (apt-get install chromium)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as prof:
        base = [args.chromium, *FLAGS, f"--user-data-dir={prof}"]
        png = out / "report.png"
        t0 = time.perf_counter()
        shot = subprocess.run(base + ["--enable-logging=stderr", "--v=0", f"--screenshot={png}",
                                      f"--window-size={args.window}", html.resolve().as_uri()],
                              capture_output=True, text=True, timeout=180)
        t_shot = time.perf_counter() - t0
        dom = subprocess.run(base + ["--dump-dom", html.resolve().as_uri()], capture_output=True, text=True,
                             timeout=180)
    (out / "report.dom.html").write_text(dom.stdout, encoding="utf-8")
    console = [line for line in shot.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    print(f"screenshot: {png} in {t_shot:.2f} s (rc {shot.returncode}); DOM: {dom.stdout.count('<img')} images, "
          f"{dom.stdout.count('<table')} tables")
    for line in console:
        print("console:", line)
    ok = shot.returncode == 0 and dom.returncode == 0 and png.is_file() and not console
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
