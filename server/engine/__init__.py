"""The flow engine: pure functions from (flow, case state, actor, action) to a new state, tasks and events.

No Flask and no database here. `cases`/`store` apply what the engine returns in one transaction.
"""

from .core import (
    OPERATIONS,
    Case,
    Directory,
    Env,
    Step,
    act,
    actions_for,
    start,
    tick,
)

__all__ = ["OPERATIONS", "Case", "Directory", "Env", "Step", "act", "actions_for", "start", "tick"]
