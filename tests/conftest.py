import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# tests must not pick up a user's catalog directories
os.environ.pop("PLANNER_PATH", None)
# tests must not read or fill the user's on-disk caches (~/.cache/planner): one private
# folder per test session, inherited by the `planner` subprocesses the tests start
import atexit  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402

_CACHE = tempfile.mkdtemp(prefix="planner-test-cache-")
os.environ["PLANNER_CACHE_DIR"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
os.environ.pop("PLANNER_NO_CACHE", None)

# Property-based tests draw the same examples on every run (`make test`, CI): a failure
# reproduces, and a run cannot fail by the luck of the draw. HYPOTHESIS_PROFILE=explore
# draws fresh examples (how the open loop's alternating fixed point, now solved, and the gap
# held as a strict xfail in tests/test_shared_prompt_step.py were found).
from hypothesis import settings  # noqa: E402

settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))
