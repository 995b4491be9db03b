"""Test-time strategies as small networkx DAGs of stages.

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

import networkx as nx
import numpy as np

from planner.errors import InputError

# A reward model scores an answer with one forward pass: 1 generated token.
REWARD_MODEL_TOKENS = 1
# A generative verifier writes a short critique and a verdict.
GENERATIVE_VERIFIER_TOKENS = 512


def _chain(name: str, accuracy: str, *stages: tuple[str, dict]) -> nx.DiGraph:
    g = nx.DiGraph(name=name, accuracy=accuracy)
    prev = None
    for i, (op, attrs) in enumerate(stages):
        node = f"{i}:{op}"
        g.add_node(node, op=op, **attrs)
        if prev is not None:
            g.add_edge(prev, node)
        prev = node
    return g


def single() -> nx.DiGraph:
    return _chain("single", "single", ("generate", {"samples": "one"}))


def pass_at_k() -> nx.DiGraph:
    """k samples checked by a perfect checker (unit tests): the first passing one wins."""
    return _chain("pass@k", "pass@k", ("generate", {}), ("select", {"rule": "first-passing"}))


def majority() -> nx.DiGraph:
    return _chain("majority", "majority", ("generate", {}), ("select", {"rule": "vote"}))


def best_of_k() -> nx.DiGraph:
    return _chain("best-of-k", "best-of-k", ("generate", {}),
                  ("verify", {"verify_len": REWARD_MODEL_TOKENS, "role": "reward"}),
                  ("select", {"rule": "best"}))


def verify() -> nx.DiGraph:
    """Resample until an imperfect generative verifier accepts (Stroebl et al.)."""
    return _chain("verify", "verify", ("generate", {}),
                  ("verify", {"verify_len": GENERATIVE_VERIFIER_TOKENS, "role": "verifier"}),
                  ("select", {"rule": "first-accepted"}))


def revise(rounds: int = 1) -> nx.DiGraph:
    """A chain of self-revisions after one answer (self-refine): one sample, each round
    reading the prompt plus the previous answer (accuracy as a single sample)."""
    stages = [("generate", {"samples": "one"})] + [("revise", {}) for _ in range(rounds)]
    return _chain(f"revise-{rounds}", "single", *stages)


def revise_then_vote() -> nx.DiGraph:
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


def get(name: str) -> nx.DiGraph:
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


def uses_samples(graph: nx.DiGraph) -> bool:
    """Whether any stage of the graph depends on k (else: a one-sample strategy)."""
    return any(c is not None and c.uses_k for c in (stage_call(a) for _, a in graph.nodes(data=True)))


def combine(graph: nx.DiGraph, stage_latency: dict, stage_sum: dict[str, dict]) -> tuple[np.ndarray, dict]:
    """Latency = longest path (arrays per node), other quantities = sums over nodes."""
    finish: dict = {}
    for node in nx.topological_sort(graph):
        start = 0.0
        for pred in graph.predecessors(node):
            start = np.maximum(start, finish[pred])
        finish[node] = start + stage_latency.get(node, 0.0)
    latency = 0.0
    for node in graph.nodes:
        if graph.out_degree(node) == 0:
            latency = np.maximum(latency, finish[node])
    totals = {k: sum(v.get(node, 0.0) for node in graph.nodes) for k, v in stage_sum.items()}
    return latency, totals
