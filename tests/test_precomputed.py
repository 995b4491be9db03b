"""The shipped read-only cache (precomputed/, `make precompute`): what a fresh install's
first `planner recommend` reads instead of parsing the catalog's YAML and computing the
accuracy arrays. Oracles: the recomputation (the same command with the shipped cache
off, into an empty cache folder) and the import graph of the source (tests/test_layers.py)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from test_layers import import_graph

from planner import catalog
from planner.accuracy import search_cache

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / catalog.SHIPPED_CACHE
REGENERATE = "the shipped cache is out of date: run `make precompute` and commit precomputed/"


def _recommend(cache: Path, shipped: bool) -> tuple[str, dict[str, dict[str, bytes]]]:
    """`planner recommend --json` (the default scenario) in a fresh process with the cache
    folder ``cache``; its output and what it wrote there, by kind."""
    env = {k: v for k, v in os.environ.items() if k not in ("PLANNER_NO_CACHE", "PLANNER_NO_SHIPPED_CACHE")}
    env["PLANNER_CACHE_DIR"] = str(cache)
    if not shipped:
        env["PLANNER_NO_SHIPPED_CACHE"] = "1"
    out = subprocess.run([sys.executable, "-m", "planner", "recommend", "--json"], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True).stdout
    return out, _entries(cache)


def _entries(folder: Path) -> dict[str, dict[str, bytes]]:
    return {kind: {p.name: p.read_bytes() for p in sorted((folder / kind).glob("*"))}
            for kind in ("yaml", "accuracy") if (folder / kind).is_dir()}


def test_accuracy_sources_are_the_import_closure_of_the_accuracy_model():
    """The accuracy arrays' cache key hashes ACCURACY_SOURCES: they must cover every
    module planner.accuracy imports (lazily too), or an edit there would keep stale arrays."""
    g = import_graph()
    accuracy = {m for m in g if m == "planner.accuracy" or m.startswith("planner.accuracy.")}
    closure = set(accuracy)
    for m in accuracy:
        closure |= nx.descendants(g, m)
    need = {m.removeprefix("planner.").replace(".", "/") + ".py" for m in closure - accuracy}
    declared = set(search_cache.ACCURACY_SOURCES)
    assert "array_cache.py" in need  # the cache itself
    assert declared == need | {"accuracy"}, (f"ACCURACY_SOURCES lacks {sorted(need - declared)}, "
                                             f"has beyond the closure {sorted(declared - need - {'accuracy'})}")
    assert all((ROOT / "planner" / s).exists() for s in declared)


def test_shipped_cache_is_the_recomputation_and_a_first_run_reads_only_it(tmp_path):
    before = _entries(SHIPPED)
    computed_out, computed = _recommend(tmp_path / "computed", shipped=False)
    # current: every entry the default scenario needs is shipped, byte for byte (the
    # .npy and JSON bytes equal, so the arrays and parses are the same), and nothing else
    # .npy arrays equal up to what another machine's or scipy release's rounding makes of
    # them: the arrays' cache key hashes the source, the catalog and numpy's version, not the
    # CPU or scipy, and numpy picks its SIMD kernels by the CPU's features, so last-bit
    # differences the accuracy fit's iterations carry further are expected. Measured
    # (2026-12-02): the shipped arrays recomputed on an x86-64-v3 machine without AVX-512
    # (numpy 2.4.6, scipy 1.17.0 and 1.17.1) differ by at most 4.3e-8 relative on values
    # above 1e-12 (21 of 36 arrays beyond rtol 1e-12); a change to the model moves them far
    # more. Parsed YAML byte for byte.
    for kind in ("yaml", "accuracy"):
        assert computed[kind], kind
        assert set(before.get(kind, {})) == set(computed[kind]), f"{kind}: {REGENERATE}"
        for name, data in computed[kind].items():
            if kind == "accuracy" and name.endswith(".npy"):
                old, new = (np.load(io.BytesIO(b), allow_pickle=False) for b in (before[kind][name], data))
                assert old.shape == new.shape and old.dtype == new.dtype, f"{kind}/{name}: {REGENERATE}"
                assert np.allclose(old, new, rtol=1e-6, atol=1e-12, equal_nan=True), f"{kind}/{name}: {REGENERATE}"
            else:
                assert before[kind][name] == data, f"{kind}/{name}: {REGENERATE}"
    # a fresh install's first run: the same answer, nothing parsed or computed again (no
    # entry written to its empty cache folder), and the shipped cache left as it was
    first_out, written = _recommend(tmp_path / "fresh", shipped=True)
    assert first_out == computed_out
    assert json.loads(first_out)["recommendations"]
    assert written == {}
    assert _entries(SHIPPED) == before


def test_no_cache_skips_the_shipped_cache_too(monkeypatch):
    monkeypatch.setenv("PLANNER_NO_CACHE", "1")
    assert catalog.shipped_cache_dir() is None
    monkeypatch.delenv("PLANNER_NO_CACHE")
    monkeypatch.setenv("PLANNER_NO_SHIPPED_CACHE", "1")
    assert catalog.shipped_cache_dir() is None
    monkeypatch.delenv("PLANNER_NO_SHIPPED_CACHE")
    assert catalog.shipped_cache_dir() == SHIPPED


@pytest.mark.parametrize("kind", ["yaml", "accuracy"])
def test_a_user_entry_is_read_before_the_shipped_one(tmp_path, monkeypatch, kind):
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("PLANNER_NO_CACHE", raising=False)
    monkeypatch.delenv("PLANNER_NO_SHIPPED_CACHE", raising=False)
    name = sorted(p.name for p in (SHIPPED / kind).glob("*"))[0]
    assert catalog.cache_read(kind, name) == (SHIPPED / kind / name).read_bytes()
    (tmp_path / kind).mkdir()
    (tmp_path / kind / name).write_bytes(b"mine")
    assert catalog.cache_read(kind, name) == b"mine"
    assert catalog.cache_read(kind, "absent.npy") is None
