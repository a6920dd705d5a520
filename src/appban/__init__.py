"""appban: government orders against specific mobile apps as executable, time-aware, cited rules."""

from appban.engine.batch import decide_table
from appban.engine.decide import Decision, DecisionInputError, decide
from appban.rulebook.loader import Rulebook, RulebookError, load_rulebook

__all__ = ["Decision", "DecisionInputError", "Rulebook", "RulebookError", "decide", "decide_table", "load_rulebook"]
