"""planner: a hardware-aware cost simulator and inference planner for LLMs.

Light on import: numpy, pydantic and friends load only when a submodule needs them.
"""

__version__ = "0.1.0"
