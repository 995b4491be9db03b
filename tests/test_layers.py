"""The package's layers point one way and its imports run in no circle.

The oracle is the source itself: every module's imports are read with ``ast`` (those
inside functions included, since a lazy import is still a dependency), resolved to the
modules they load, and checked against the layer order below. The checker is also run on
synthetic graphs with an upward edge and a circle, so it is shown to be able to fail.

The layer order lives here and only here: no runtime code needs it (the README draws it
and names this test). A module that no layer claims fails the test, so a new module has
to be placed on purpose.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "planner"

# Lowest first. A module may import its own layer and the ones below it, never above.
# Entries are module names or package prefixes; the longest match wins.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("data", ("planner.errors", "planner.dtypes", "planner.units", "planner.files", "planner.quantization",
              "planner.measured", "planner.harness", "planner.measured_layouts", "planner.engine_profiles", "planner.safeload", "planner.bounds", "planner.array_cache",
              "planner.specs", "planner.scenario_checks", "planner.params", "planner.catalog", "planner.locations", "planner.disk_cache", "planner.hf_arch", "planner.hf_import",
              "planner.kernel_paths", "planner.fidelity")),
    ("models", ("planner.cost", "planner.accuracy", "planner.calibrate", "planner.serving_params", "planner.serving_carry", "planner.plausibility",
                "planner.serving_profile", "planner.replay", "planner.replay_rows", "planner.replay_scoring", "planner.serving_fit")),
    ("planning", ("planner.strategies", "planner.search", "planner.frontier", "planner.layouts")),
    ("use cases", ("planner.recommend", "planner.estimating", "planner.findings", "planner.capacity", "planner.sizing", "planner.sizing_choice", "planner.fleet",
                   "planner.replica_rate",
                   "planner.check", "planner.check_file", "planner.report", "planner.report_render", "planner.plots")),
    # the front ends: the CLI, and the package itself (its top-level Python API)
    ("front ends", ("planner", "planner.__main__", "planner.cli", "planner.commands")),
]

# Known import circles being removed on another branch: each entry is one edge that the
# circle check leaves out. Remove an entry once its circle is gone (the test says so).
KNOWN_CIRCLE_EDGES: set[tuple[str, str]] = set()


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def read_modules(root: Path = PACKAGE) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def _target(name: str, modules) -> str | None:
    """The module of ours that importing ``name`` loads (its longest known prefix)."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        cand = ".".join(parts[:n])
        if cand in modules:
            return cand
    return None


def imports_of(module: str, source: str, modules, is_package: bool = False) -> set[str]:
    """The modules of ours that ``source`` imports anywhere (functions included)."""
    out: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [_target(a.name, modules) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from pkg import sub` loads pkg.sub when that is a module, else names from pkg
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else _target(mod, modules)
                       for a in node.names]
        else:
            continue
        out.update(t for t in targets if t is not None and t != module)
    return out


def import_graph(root: Path = PACKAGE) -> nx.DiGraph:
    modules = read_modules(root)
    g = nx.DiGraph()
    g.add_nodes_from(modules)
    for name, path in modules.items():
        deps = imports_of(name, path.read_text(encoding="utf-8"), modules, path.name == "__init__.py")
        g.add_edges_from((name, d) for d in deps)
    return g


def layer_of(module: str, layers=LAYERS) -> int | None:
    best, best_len = None, -1
    for i, (_, prefixes) in enumerate(layers):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best_len:
                best, best_len = i, len(p)
    return best


def problems(g: nx.DiGraph, layers=LAYERS, allowed: set = frozenset()) -> list[str]:
    """Every unplaced module, upward import and import circle in ``g``, as lines."""
    out = [f"{m}: in no layer (add it to LAYERS)" for m in sorted(g) if layer_of(m, layers) is None]
    for a, b in sorted(g.edges):
        la, lb = layer_of(a, layers), layer_of(b, layers)
        if la is not None and lb is not None and lb > la:
            out.append(f"{a} ({layers[la][0]}) imports {b} ({layers[lb][0]}): points up")
    h = g.copy()
    h.remove_edges_from(allowed)
    for comp in nx.strongly_connected_components(h):
        if len(comp) > 1:
            cycle = nx.find_cycle(h.subgraph(comp))
            out.append("import circle: " + " -> ".join([a for a, _ in cycle] + [cycle[0][0]]))
    return out


def test_layers_point_one_way_and_no_circles():
    assert problems(import_graph(), allowed=KNOWN_CIRCLE_EDGES) == []


def test_known_circles_still_exist():
    """An allowlisted edge whose circle is gone must leave the allowlist."""
    g = import_graph()
    for a, b in KNOWN_CIRCLE_EDGES:
        if not (g.has_edge(a, b) and nx.has_path(g, b, a)):
            pytest.fail(f"{a} -> {b} no longer closes a circle: remove it from KNOWN_CIRCLE_EDGES")


def test_the_graph_sees_lazy_and_relative_imports():
    src = ("import planner.specs\n"
           "from planner.cost import engine\n"
           "from . import sibling\n"
           "def f():\n"
           "    from planner.search import Space\n")
    mods = {"planner", "planner.specs", "planner.cost", "planner.cost.engine", "planner.search",
            "planner.x", "planner.x.sibling", "planner.x.me"}
    assert imports_of("planner.x.me", src, mods) == {"planner.specs", "planner.cost.engine", "planner.search",
                                                     "planner.x.sibling"}


def test_checker_fails_on_an_upward_edge_and_a_circle():
    layers = [("low", ("p.a", "p.b")), ("high", ("p.c",))]
    g = nx.DiGraph([("p.c", "p.a"), ("p.a", "p.b")])
    assert problems(g, layers) == []
    g.add_edge("p.a", "p.c")   # up, and closes p.a -> p.c -> p.a
    g.add_edge("p.b", "p.a")   # a circle inside one layer
    found = problems(g, layers)
    assert "p.a (low) imports p.c (high): points up" in found
    assert sum(line.startswith("import circle") for line in found) == 1  # one component holds both
    assert problems(nx.DiGraph([("p.z", "p.a")]), layers) == ["p.z: in no layer (add it to LAYERS)"]
    assert problems(nx.DiGraph([("p.a", "p.b"), ("p.b", "p.a")]), layers, allowed={("p.b", "p.a")}) == []


def test_the_real_package_is_checked():
    """Guard against a vacuous pass: the graph holds the modules and the edges we know."""
    g = import_graph()
    assert g.number_of_nodes() > 50
    assert g.has_edge("planner.search", "planner.cost.tables")
    assert g.has_edge("planner.recommend", "planner.serving_profile")  # a lazy, in-function import


def test_every_layer_entry_is_a_module():
    """The table matches the package both ways: every module has a layer (above) and every
    entry of LAYERS names a module or package that exists (a moved or split module must
    leave its old name behind in no layer)."""
    modules = read_modules()
    stale = [p for _, prefixes in LAYERS for p in prefixes
             if not any(m == p or m.startswith(p + ".") for m in modules)]
    assert stale == []


# Modules stay small (the project's guide: < ~400 lines, one job each); above this a module
# is split by job, or listed in LONG_MODULES with the reason it cannot be.
MAX_MODULE_LINES = 400
LONG_MODULES: dict[str, str] = {}


def test_modules_stay_small():
    sizes = {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in read_modules().items()}
    long = {m: n for m, n in sizes.items() if n > MAX_MODULE_LINES and m not in LONG_MODULES}
    assert long == {}, f"split by job, or give the reason in LONG_MODULES: {long}"
    assert all(m in sizes for m in LONG_MODULES)
