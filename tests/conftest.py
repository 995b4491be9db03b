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
