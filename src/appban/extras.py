"""The optional parts of the install and the libraries each brings.

The core install (`pip install appban`) holds what the screeners, the engine, the readers and the command
line use, so that a Spark executor or a Dask worker installs nothing else. The rest comes with extras:
`service` (the HTTP service and the audit store: `appban serve`, `audit`, `tokens`), `spark` and `dask`
(the engines `appban.distributed` runs on), and `all`. A command or module that reaches a library of an
extra which is not installed says which extra to install instead of failing with a traceback.
"""

from __future__ import annotations

import importlib.util

__all__ = ["EXTRAS", "ExtraMissing", "extras_for", "install_hint", "missing_extra", "require"]

# The top-level modules of each extra's libraries (as imported, not as named on PyPI).
EXTRAS: dict[str, frozenset[str]] = {
    "service": frozenset(
        {
            "fastapi",
            "fastapi_offline",
            "starlette",
            "uvicorn",
            "httptools",
            "uvloop",
            "multipart",
            "python_multipart",
            "sqlalchemy",
            "alembic",
            "psycopg",
            "psycopg_binary",
        }
    ),
    "spark": frozenset({"pyspark", "py4j", "pandas"}),
    "dask": frozenset({"dask", "distributed", "pandas"}),
}


class ExtraMissing(ModuleNotFoundError):
    """A part of appban was imported without the extra that brings its libraries; the message names the extra
    and its pip command, `name` the missing module."""


def extras_for(module: str) -> tuple[str, ...]:
    """The extras that bring `module` (a dotted name; its top level decides), in the order EXTRAS lists them."""
    top = module.split(".", 1)[0]
    return tuple(extra for extra, modules in EXTRAS.items() if top in modules)


def install_hint(extras: tuple[str, ...]) -> str:
    """The pip command (or commands) that install one of `extras`."""
    return " or ".join(f"pip install 'appban[{extra}]'" for extra in extras)


def missing_extra(exc: ImportError) -> str | None:
    """For an import that failed because a library of an extra is not installed, the sentence saying which
    extra to install; None for any other import error (a broken install, a bug), which should stay visible."""
    if isinstance(exc, ExtraMissing):
        return str(exc)
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    extras = extras_for(exc.name)
    if not extras:
        return None
    return _sentence("this command", extras, exc.name)


def require(extra: str, what: str, modules: tuple[str, ...]) -> None:
    """Raise ExtraMissing naming `extra` and its pip command when one of `modules` (libraries of the
    extra that `what`, a part of appban, imports) is not installed. The error keeps the missing module's
    name, so `missing_extra` recognises it as well."""
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise ExtraMissing(_sentence(what, (extra,), module), name=module)


def _sentence(what: str, extras: tuple[str, ...], module: str) -> str:
    which = " or ".join(f"appban's {extra} extra" for extra in extras)
    top = module.split(".", 1)[0]
    return f"{what} needs {which}, which is not installed (no module named {top!r}): {install_hint(extras)}"
