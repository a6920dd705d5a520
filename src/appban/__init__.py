"""appban: government orders against specific mobile apps as executable, time-aware, cited rules.

The public names below are loaded on first use (PEP 562), so that `import appban.<module>` (every command
of the CLI does it) does not pay for pyarrow and numpy, which only batch decisions need.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from appban.engine.batch import decide_table
    from appban.engine.decide import Decision, DecisionInputError, decide
    from appban.rulebook.loader import Rulebook, RulebookError, load_rulebook

__all__ = ["Decision", "DecisionInputError", "Rulebook", "RulebookError", "decide", "decide_table", "load_rulebook"]

_HOME = {
    "Decision": "appban.engine.decide",
    "DecisionInputError": "appban.engine.decide",
    "decide": "appban.engine.decide",
    "decide_table": "appban.engine.batch",
    "Rulebook": "appban.rulebook.loader",
    "RulebookError": "appban.rulebook.loader",
    "load_rulebook": "appban.rulebook.loader",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'appban' has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value  # later look-ups find it directly
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
