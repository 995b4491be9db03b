import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# tests must not pick up a user's catalog directories
os.environ.pop("PLANNER_PATH", None)
