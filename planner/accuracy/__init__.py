"""The accuracy model: per-problem difficulty, test-time strategies, thinking budget,
quantization and sparse-attention penalties, and fitting profiles from eval logs.

Public API (what the search calls):

    predict(profile, strategy, samples, gen_len=None, *, weight_dtype="bf16", act_dtype=None,
            kv_dtype="bf16", kv_budget=0, verifier_completeness=None, verifier_soundness=None,
            majority_top_wrong_share=None, reward_auc=None) -> np.ndarray
    explain(profile, strategy, samples, gen_len=None, **same keywords) -> dict
    load_profile(ref) -> Profile          # "model/task", "task--model" or a YAML path
    find_profile(model, task) -> Profile
    profiles_for_task(task) -> list[Profile]
    list_tasks() -> list[str];  list_profiles() -> list[(task, model)]
    STRATEGIES = ("pass@k", "verify", "majority", "best-of-k", "single")

See the README section "How the accuracy model works" for the model, its assumptions and the shipped profiles.
"""

from planner.accuracy.predict import explain, normalize_strategy, predict
from planner.accuracy.profile import (
    Profile,
    TaskProfile,
    find_profile,
    list_profiles,
    list_tasks,
    load_profile,
    profiles_for_task,
)
from planner.accuracy.strategies import STRATEGIES

__all__ = [
    "predict", "explain", "normalize_strategy", "load_profile", "find_profile", "profiles_for_task",
    "list_tasks", "list_profiles", "Profile", "TaskProfile", "STRATEGIES",
]
