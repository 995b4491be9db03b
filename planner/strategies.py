"""Test-time strategies as small DAGs of stages.

A graph is a :class:`Dag`: the part of networkx's ``DiGraph`` interface the search uses
(``graph``, ``add_node``, ``add_edge``, ``nodes(data=True)``, ``predecessors``,
``successors``, ``out_degree``), so a ``networkx.DiGraph`` works wherever a strategy graph
is taken, and :meth:`Dag.to_networkx` gives one for networkx's algorithms. networkx
itself is not imported on the way to a recommendation: its import alone took ~0.2 s of
the ~1.5 s a default ``planner recommend`` may take.

A stage is a node with an ``op``:

* ``generate``: the policy model writes ``k`` answers of ``gen_len`` tokens to one prompt
  (the prompt is prefilled once and shared);
* ``verify``: a verifier reads each answer (prompt + answer) and writes ``verify_len``
  tokens (1 for a reward model's score; a few hundred for a generative verifier): ``k``
  requests of one sample each;
* ``select``: vote / best / first accepted (no model call; negligible cost);
* ``revise``: the policy reads the prompt plus its previous answer and writes a revision of
  ``gen_len`` tokens: one request of one sample, or one per answer (``per_answer``).

Each stage is costed by the engine from its :class:`StageCall` (what it reads, writes,
how many samples and requests, which model); a strategy's latency is the longest path
through its graph, its energy and dollars the sum over stages. The accuracy rule that
fits the graph's shape is a graph attribute (``accuracy``) naming a strategy of the
accuracy model. A graph whose stages never mention ``k`` is a one-sample strategy: it is
searched at k = 1 only, whatever the samples grid. A new strategy is a new graph: the
costing code never changes (``revise_then_vote`` below is one, added that way).
"""

from __future__ import annotations

from dataclasses import dataclass

from typing import Any, Iterator

import numpy as np

from planner.errors import InputError

# A reward model scores an answer with one forward pass: 1 generated token.
REWARD_MODEL_TOKENS = 1
# A generative verifier writes a short critique and a verdict.
GENERATIVE_VERIFIER_TOKENS = 512


class _NodeView:
    """``g.nodes``: iterable over the nodes, callable as ``g.nodes(data=True)``."""

    def __init__(self, attrs: dict):
        self._attrs = attrs

    def __iter__(self) -> Iterator:
        return iter(self._attrs)

    def __len__(self) -> int:
        return len(self._attrs)

    def __getitem__(self, node) -> dict:
        return self._attrs[node]

    def __call__(self, data: bool = False):
        return list(self._attrs.items()) if data else list(self._attrs)


class Dag:
    """A directed graph of stages with attributes (networkx's ``DiGraph`` interface, the
    part strategies use)."""

    def __init__(self, **graph_attrs: Any):
        self.graph: dict = dict(graph_attrs)
        self._attrs: dict = {}
        self._succ: dict = {}
        self._pred: dict = {}

    def add_node(self, node, **attrs) -> None:
        self._attrs.setdefault(node, {}).update(attrs)
        self._succ.setdefault(node, [])
        self._pred.setdefault(node, [])

    def add_edge(self, a, b) -> None:
        self.add_node(a)
        self.add_node(b)
        if b not in self._succ[a]:
            self._succ[a].append(b)
            self._pred[b].append(a)

    @property
    def nodes(self) -> _NodeView:
        return _NodeView(self._attrs)

    def predecessors(self, node) -> Iterator:
        return iter(self._pred[node])

    def successors(self, node) -> Iterator:
        return iter(self._succ[node])

    def out_degree(self, node) -> int:
        return len(self._succ[node])

    def to_networkx(self):
        """The same graph as a ``networkx.DiGraph`` (imports networkx)."""
        import networkx as nx

        g = nx.DiGraph(**self.graph)
        g.add_nodes_from(self._attrs.items())
        g.add_edges_from((a, b) for a, bs in self._succ.items() for b in bs)
        return g


def topological_order(graph) -> list:
    """The nodes, each after its predecessors (Kahn 1962); an InputError names a cycle."""
    indegree = {n: sum(1 for _ in graph.predecessors(n)) for n in graph.nodes}
    ready = [n for n, d in indegree.items() if d == 0]
    order = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for m in graph.successors(n):
            indegree[m] -= 1
            if indegree[m] == 0:
                ready.append(m)
    if len(order) != len(indegree):
        raise InputError("a strategy graph has a cycle", field="strategy", value=graph.graph.get("name"))
    return order


def _chain(name: str, accuracy: str, *stages: tuple[str, dict]) -> Dag:
    g = Dag(name=name, accuracy=accuracy)
    prev = None
    for i, (op, attrs) in enumerate(stages):
        node = f"{i}:{op}"
        g.add_node(node, op=op, **attrs)
        if prev is not None:
            g.add_edge(prev, node)
        prev = node
    return g


def single() -> Dag:
    return _chain("single", "single", ("generate", {"samples": "one"}))


def pass_at_k() -> Dag:
    """k samples checked by a perfect checker (unit tests): the first passing one wins."""
    return _chain("pass@k", "pass@k", ("generate", {}), ("select", {"rule": "first-passing"}))


def majority() -> Dag:
    return _chain("majority", "majority", ("generate", {}), ("select", {"rule": "vote"}))


def best_of_k() -> Dag:
    return _chain("best-of-k", "best-of-k", ("generate", {}),
                  ("verify", {"verify_len": REWARD_MODEL_TOKENS, "role": "reward"}),
                  ("select", {"rule": "best"}))


def verify() -> Dag:
    """Resample until an imperfect generative verifier accepts (Stroebl et al.)."""
    return _chain("verify", "verify", ("generate", {}),
                  ("verify", {"verify_len": GENERATIVE_VERIFIER_TOKENS, "role": "verifier"}),
                  ("select", {"rule": "first-accepted"}))


def revise(rounds: int = 1) -> Dag:
    """A chain of self-revisions after one answer (self-refine): one sample, each round
    reading the prompt plus the previous answer (accuracy as a single sample)."""
    stages = [("generate", {"samples": "one"})] + [("revise", {}) for _ in range(rounds)]
    return _chain(f"revise-{rounds}", "single", *stages)


def revise_then_vote() -> Dag:
    """k answers, each revised once (k revision requests in one batch), then a majority
    vote over the revisions: a tree of revisions, defined by its graph alone."""
    return _chain("revise-vote", "majority", ("generate", {}), ("revise", {"per_answer": True}),
                  ("select", {"rule": "vote"}))


STRATEGIES = {
    "single": single,
    "pass@k": pass_at_k,
    "majority": majority,
    "best-of-k": best_of_k,
    "verify": verify,
    "revise-vote": revise_then_vote,
}


def get(name: str) -> Dag:
    if name in STRATEGIES:
        return STRATEGIES[name]()
    if name.startswith("revise-") and name[7:].isdigit():
        return revise(int(name[7:]))
    raise InputError(f"unknown strategy (choose from {', '.join(STRATEGIES)}, revise-N)", field="strategy",
                     value=name)


@dataclass(frozen=True)
class StageCall:
    """What the engine must cost for one stage, relative to the configuration (prompt P,
    generation budget L, samples k, batch B, KV budget T).

    * ``prompt_extra``: "none" (the stage reads the prompt, P tokens) or "answer" (prompt
      plus an answer: P + L tokens);
    * ``gen``: "gen_len" (writes L tokens) or "verify_len" (writes ``verify_len`` tokens);
    * ``samples``: "k" (k samples of one prompt, the prompt's KV shared) or "one";
    * ``requests``: "one", or "k" (one request per answer: B x k requests in the batch);
    * ``role``: "policy" (the configuration's model, under its KV budget T) or "verifier"
      (the verifier model when one is given, else the policy; reads densely).
    """

    op: str
    prompt_extra: str
    gen: str
    samples: str
    requests: str = "one"
    role: str = "policy"
    verify_len: int = 0

    @property
    def uses_k(self) -> bool:
        return self.samples == "k" or self.requests == "k"


def stage_call(attrs: dict) -> StageCall | None:
    """How a node is costed; None for free stages (select)."""
    op = attrs["op"]
    if op == "generate":
        return StageCall("generate", "none", "gen_len", attrs.get("samples", "k"))
    if op == "verify":
        return StageCall("verify", "answer", "verify_len", "one", "k", "verifier", int(attrs.get("verify_len", 1)))
    if op == "revise":
        return StageCall("revise", "answer", "gen_len", "one", "k" if attrs.get("per_answer") else "one")
    if op == "select":
        return None
    raise InputError("unknown stage op", field="op", value=op)


def uses_samples(graph: Dag) -> bool:
    """Whether any stage of the graph depends on k (else: a one-sample strategy)."""
    return any(c is not None and c.uses_k for c in (stage_call(a) for _, a in graph.nodes(data=True)))


def combine(graph: Dag, stage_latency: dict, stage_sum: dict[str, dict]) -> tuple[np.ndarray, dict]:
    """Latency = longest path (arrays per node), other quantities = sums over nodes.
    Free stages (no entry) add nothing: no pass over the arrays is spent on them."""
    finish: dict = {}
    for node in topological_order(graph):
        start = None
        for pred in graph.predecessors(node):
            start = finish[pred] if start is None else np.maximum(start, finish[pred])
        own = stage_latency.get(node)
        finish[node] = (0.0 if own is None else own) if start is None else (start if own is None else start + own)
    latency = None
    for node in graph.nodes:
        if graph.out_degree(node) == 0:
            latency = finish[node] if latency is None else np.maximum(latency, finish[node])
    totals = {}
    for k, v in stage_sum.items():
        parts = [v[node] for node in graph.nodes if node in v]
        total = parts[0] if parts else 0.0
        for part in parts[1:]:
            total = total + part
        totals[k] = total
    return (0.0 if latency is None else latency), totals
