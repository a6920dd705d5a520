"""appban's knowledge apart from its code: the rulebook and the lists the screeners match against.

`layout` names the parts and where each lives, in the installed package and inside a knowledge bundle.
"""
