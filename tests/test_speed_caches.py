"""The on-disk caches behind `planner recommend`'s start-up and accuracy (catalog.read_yaml,
accuracy.search_cache over planner.array_cache) return exactly what an uncached run computes, and miss
whenever what they depend on changes. Oracles: the uncached functions themselves
(safeload.read_yaml, accuracy.predict) and the byte-identical JSON of a whole recommend."""

from __future__ import annotations

import importlib
import json
import os

import numpy as np
import pytest

from planner import catalog
from planner.accuracy import find_profile, predict
from planner.accuracy.profile import Profile
from planner.safeload import read_yaml as uncached_read_yaml

R = importlib.import_module("planner.recommend")  # the module (planner.recommend is also a function)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(d))
    monkeypatch.delenv("PLANNER_NO_CACHE", raising=False)
    return d


def _entries(d, kind):
    return sorted((d / kind).glob("*")) if (d / kind).is_dir() else []


def test_yaml_cache_returns_the_parse_and_follows_edits(cache, tmp_path):
    f = tmp_path / "spec.yaml"
    f.write_text("name: a\nvalues: [1, 2.5, true, null]\nnested: {x: 'y'}\n")
    first = catalog.read_yaml(f)
    assert first == uncached_read_yaml(f)
    assert len(_entries(cache, "yaml")) == 1
    assert catalog.read_yaml(f) == first                      # from the cache
    st = os.stat(f)
    f.write_text("name: b\nvalues: [1, 2.5, true, null]\nnested: {x: 'y'}\n")  # same size
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))          # and the same time stamps
    assert catalog.read_yaml(f)["name"] == "b"
    assert isinstance(catalog.read_yaml(f)["values"][0], int)


def test_yaml_cache_skips_what_json_cannot_hold_and_survives_corruption(cache, tmp_path):
    f = tmp_path / "keys.yaml"
    f.write_text("1: one\n2: two\n")                          # integer keys: no JSON round trip
    assert catalog.read_yaml(f) == {1: "one", 2: "two"}
    assert catalog.read_yaml(f) == {1: "one", 2: "two"}
    assert _entries(cache, "yaml") == []
    g = tmp_path / "ok.yaml"
    g.write_text("a: 1\n")
    catalog.read_yaml(g)
    (entry,) = _entries(cache, "yaml")
    entry.write_text("{not json")
    assert catalog.read_yaml(g) == {"a": 1}


def test_yaml_cache_never_holds_a_refused_file(cache, tmp_path):
    from planner.errors import InputError

    f = tmp_path / "bad.yaml"
    f.write_text("a: .nan\n")
    for _ in range(2):
        with pytest.raises(InputError):
            catalog.read_yaml(f)
    assert _entries(cache, "yaml") == []


def test_no_cache_means_nothing_written(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(d))
    monkeypatch.setenv("PLANNER_NO_CACHE", "1")
    f = tmp_path / "spec.yaml"
    f.write_text("a: 1\n")
    assert catalog.read_yaml(f) == {"a": 1}
    assert not d.exists()


def _args():
    k = np.array([2.0, 8.0, 64.0]).reshape(-1, 1, 1, 1, 1)
    L = np.array([2048.0, 16384.0]).reshape(1, -1, 1, 1, 1)
    wq = np.array(["bf16", "int4"]).reshape(1, 1, -1, 1, 1)
    aq = np.array(["bf16", "bf16"]).reshape(1, 1, -1, 1, 1)
    kvq = np.array(["bf16", "fp8"]).reshape(1, 1, 1, -1, 1)
    T = np.array([0.0, 512.0]).reshape(1, 1, 1, 1, -1)
    return k, L, wq, aq, kvq, T


@pytest.mark.parametrize("strategy", ["majority", "best-of-k", "verify"])
def test_cached_accuracy_equals_predict_and_misses_on_a_changed_profile(cache, strategy):
    prof = find_profile("qwen3-8b", "aime24")
    k, L, wq, aq, kvq, T = _args()
    want = predict(prof, strategy, k, L, weight_dtype=wq, act_dtype=aq, kv_dtype=kvq, kv_budget=T)
    cold = R.accuracy_for_search(prof, strategy, k, L, wq, aq, kvq, T)
    assert len(_entries(cache, "accuracy")) == 1
    warm = R.accuracy_for_search(prof, strategy, k, L, wq, aq, kvq, T)
    assert len(_entries(cache, "accuracy")) == 1
    np.testing.assert_array_equal(cold, want)
    np.testing.assert_array_equal(warm, want)
    assert warm.shape == want.shape and warm.dtype == want.dtype
    # another profile content (a different pass@1), another grid: new entries, new values
    other = Profile(spec=prof.spec.model_copy(update={"pass_at_1": prof.spec.pass_at_1 * 0.9}), path=prof.path)
    got = R.accuracy_for_search(other, strategy, k, L, wq, aq, kvq, T)
    np.testing.assert_array_equal(got, predict(other, strategy, k, L, weight_dtype=wq, act_dtype=aq,
                                                kv_dtype=kvq, kv_budget=T))
    R.accuracy_for_search(prof, strategy, k[:2], L, wq, aq, kvq, T)
    assert len(_entries(cache, "accuracy")) == 3
    # a damaged entry is computed again
    for e in _entries(cache, "accuracy"):
        e.write_bytes(b"garbage")
    np.testing.assert_array_equal(R.accuracy_for_search(prof, strategy, k, L, wq, aq, kvq, T), want)


def test_recommend_answer_is_identical_cold_warm_and_uncached(cache, monkeypatch):
    from planner.commands.recommend import default_scenario_path, load_scenario

    scn = load_scenario(default_scenario_path())
    scn = scn.model_copy(update={"models": ["qwen3-8b", "qwen3-32b"], "hardware": ["h100-sxm", "a100-sxm-80gb"]})
    cold = json.dumps(R.run(scn), sort_keys=True)
    warm = json.dumps(R.run(scn), sort_keys=True)
    monkeypatch.setenv("PLANNER_NO_CACHE", "1")
    plain = json.dumps(R.run(scn), sort_keys=True)
    assert cold == warm == plain
    assert _entries(cache, "accuracy")


def test_shared_pi_groups_give_the_exact_binomial_sums():
    """small_k_values with H[n](pi) interpolated once per group of columns that share pi
    (the trace-length effect nodes below the reference budget) against the binomial
    recursion (_inner_expectations / _outer_table, an independent exact route) and
    against the ungrouped evaluation, on random groups, some with spread pi."""
    from planner.accuracy import strategy_tables as T

    rng = np.random.default_rng(7)
    m, groups = T._PI_GROUP, 400
    pi = np.repeat(rng.uniform(0, 1, groups), m)
    spread = rng.random(groups) < 0.3                         # groups whose pi differ
    pi[np.repeat(spread, m)] = rng.uniform(0, 1, int(spread.sum()) * m)
    s = rng.uniform(0, 1, groups * m) ** 3                    # many short-budget shares
    s[:m] = 1e-12                                             # rare votes
    s[m:2 * m] = 1 - 1e-12                                    # every sample answers
    need = (2, 4, 8, 16, 32)
    assert T._shared_pi(pi, m) is not None
    for kind, rho in (("majority", 0.0), ("best-of-k", 3.0)):
        grouped = T.small_k_values(kind, rho, s, pi, need)
        plain = T.small_k_values(kind, rho, s, pi, need, pi_index=False)
        np.testing.assert_allclose(grouped, plain, rtol=0, atol=1e-12)
        h = T._h_majority if kind == "majority" else T._h_luce(np.full(pi.size, rho))
        exact = T._outer_table(s, T._inner_expectations(pi, 32, h), 32)[list(need)]
        np.testing.assert_allclose(grouped, exact, rtol=0, atol=1e-5)  # interpolation in pi: ~1e-6


def test_accuracy_matches_the_ungrouped_model_within_1e_9(monkeypatch):
    """predict on random grids for every aime24 profile, with and without the grouping."""
    from planner.accuracy import profiles_for_task
    from planner.accuracy import strategy_tables as T

    rng = np.random.default_rng(3)
    for prof in profiles_for_task("aime24"):
        k = rng.choice([2, 3, 8, 16, 32, 64], 5).reshape(-1, 1, 1)
        L = rng.uniform(500, 40000, 4).reshape(1, -1, 1)
        Tb = rng.choice([0, 256, 2048], 3).reshape(1, 1, -1)
        for strategy in ("majority", "best-of-k"):
            with monkeypatch.context() as mp:
                mp.setattr(T, "_PI_GROUP", 1)                 # no grouping: the reference
                ref = predict(prof, strategy, k, L, kv_budget=Tb)
            got = predict(prof, strategy, k, L, kv_budget=Tb)
            np.testing.assert_allclose(got, ref, rtol=0, atol=1e-9)


def test_cache_keeps_a_bounded_number_of_entries(cache, monkeypatch):
    from planner import disk_cache

    monkeypatch.setattr(disk_cache, "CACHE_MAX_ENTRIES", 8)  # the limit's home (planner.catalog re-exports it)
    for i in range(20):
        catalog.cache_write("accuracy", f"{i:02d}.npy", b"x")
        os.utime(cache / "accuracy" / f"{i:02d}.npy", ns=(i * 10**9, i * 10**9))
        assert len(_entries(cache, "accuracy")) <= 8
    assert catalog.cache_read("accuracy", "19.npy") == b"x"   # the newest stay
    assert catalog.cache_read("accuracy", "00.npy") is None


def test_broadcast_count_is_the_count_of_the_broadcast_array():
    from planner.search import _broadcast_count

    rng = np.random.default_rng(0)
    for _ in range(300):
        nd = int(rng.integers(1, 6))
        shape = tuple(int(x) for x in rng.integers(1, 5, nd))
        mshape = tuple(1 if rng.random() < 0.5 else n for n in shape)[int(rng.integers(0, nd)):]
        m = rng.random(mshape) < 0.5
        assert _broadcast_count(m, shape) == int(np.broadcast_to(m, shape).sum())
