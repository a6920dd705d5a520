"""Plain data classes that pydantic validates and serialises only when asked.

The rulebook's objects and the engine's answers are `@record` classes (stdlib dataclasses), so that a command
that reads the compiled rulebook and prints one answer never imports pydantic: importing it and building its
model classes was two fifths of `appban check`'s start-up. Their file format is still pydantic's to check:
a field's constraints are written with `field()`, which passes pydantic's own `Field` argument names
(`pattern`, `min_length`, `description`, `serialization_alias`; `key` for the name a file or JSON gives the
field, pydantic's `alias`), checks of one value as `Annotated[T, Before(fn)]` or `Annotated[T, After(fn)]`,
checks across fields in `__post_init__`, and the class's `__pydantic_config__`. pydantic reads all of these
when a `TypeAdapter` is first built for the class, on the first validation.

`@record` makes the dataclass without generating its methods (each generated method is compiled from source,
which for the rulebook's classes cost more than reading the compiled rulebook): `Record` holds one keyword-only
`__init__`, `__eq__`, `__hash__` and `__repr__` for them all, and makes them frozen. It also gives them the
pydantic model methods the rest of the code and users call: `model_validate` and `model_json_schema` import
pydantic; `model_dump` and `model_dump_json` write what pydantic writes, with pydantic's serialiser once it
is loaded and without it before (`plain_dump`); `model_copy` needs none.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, Self, TypeVar, cast, dataclass_transform

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler, TypeAdapter
    from pydantic_core import CoreSchema

#: The configuration of a rulebook file's classes: unknown keys are refused, and a field with an alias
#: (`from_`, written `from`) may also be given by its name.
STRICT: dict[str, Any] = {"extra": "forbid", "populate_by_name": True}


class Before:
    """`Annotated[T, Before(fn)]`: `fn` sees the raw value before it is checked as a T (and may refuse it)."""

    def __init__(self, check: Callable[[Any], Any]):
        self.check = check

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        from pydantic_core import core_schema

        return core_schema.no_info_before_validator_function(self.check, handler(source))


class After:
    """`Annotated[T, After(fn)]`: `fn` sees the value once it is a T; it returns it or raises ValueError."""

    def __init__(self, check: Callable[[Any], Any]):
        self.check = check

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        from pydantic_core import core_schema

        return core_schema.no_info_after_validator_function(self.check, handler(source))


_ADAPTERS: dict[type, TypeAdapter[Any]] = {}


def adapter(kind: type) -> TypeAdapter[Any]:
    """pydantic's validator and serialiser for `kind`, built on first use."""
    found = _ADAPTERS.get(kind)
    if found is None:
        from pydantic import TypeAdapter

        found = _ADAPTERS[kind] = TypeAdapter(kind)
    return found


class Validated(Protocol):
    """A class pydantic can build from plain data: a pydantic model, or a `Record` dataclass."""

    @classmethod
    def model_validate(cls, data: Any) -> Self: ...


T = TypeVar("T", bound=type)
_MISSING: Any = dataclasses.MISSING


def field(*, default: Any = _MISSING, factory: Any = _MISSING, key: str | None = None, **checks: Any) -> Any:
    """A field with a default (`default`, or `factory` called for each object), the name a file or JSON gives
    it (`key`), and pydantic's `Field` constraints (`pattern`, `min_length`, `description`...)."""
    if key is not None:
        checks["alias"] = key
    return dataclasses.field(default=default, default_factory=factory, metadata=checks)


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(dataclasses.field, field))
def record(cls: T) -> T:
    """A frozen dataclass whose methods are `Record`'s (the class must derive from it); fields are keyword-only.
    Its `model_fields` names its fields, as a pydantic model's does."""
    made: Any = dataclasses.dataclass(init=False, repr=False, eq=False, kw_only=True)(cls)
    fields = dataclasses.fields(made)
    made.model_fields = {each.name: each for each in fields}
    # What Record's methods read, worked out once per class: each field's name, default and default factory
    # in order, the set of names, and the key pydantic serialises each under by alias.
    made._plan = tuple((each.name, each.default, each.default_factory) for each in fields)
    made._names = frozenset(made.model_fields)
    made._keys = tuple(
        each.metadata.get("serialization_alias") or each.metadata.get("alias") or each.name for each in fields
    )
    return cast(T, made)


def _plain(value: Any, json: bool, by_alias: bool, exclude_defaults: bool, exclude_none: bool) -> Any:
    """`value` as pydantic serialises it: records as dicts; in JSON mode, enums as their values and dates
    as ISO 8601."""
    if isinstance(value, Record):
        return value._dump(json, by_alias, exclude_defaults, exclude_none)
    if isinstance(value, str | int | float | bool) or value is None:
        return value.value if json and isinstance(value, Enum) else value
    if isinstance(value, list | tuple):
        return [_plain(item, json, by_alias, exclude_defaults, exclude_none) for item in value]
    if isinstance(value, dict):
        return {
            (key.value if json and isinstance(key, Enum) else key): _plain(
                item, json, by_alias, exclude_defaults, exclude_none
            )
            for key, item in value.items()
        }
    if json and isinstance(value, dt.datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if json and isinstance(value, dt.date | Enum):
        return value.isoformat() if isinstance(value, dt.date) else value.value
    return value


_PYDANTIC = "pydantic"


def plain_dump(
    record: Record,
    *,
    mode: Literal["python", "json"] = "python",
    by_alias: bool = False,
    exclude_defaults: bool = False,
    exclude_none: bool = False,
) -> dict[str, Any]:
    """`record.model_dump(...)` as pydantic gives it, without pydantic (tests hold the two equal).

    A process that has not loaded pydantic (a quick command printing one answer) is spared loading it and
    building a serialiser; one that has (the service, a screen, anything that read a YAML file) uses pydantic's
    own, several times quicker per record, so bulk work does not pay for the first choice.
    """
    return record._dump(mode == "json", by_alias, exclude_defaults, exclude_none)


def plain_json(record: Record, *, by_alias: bool = False, exclude_none: bool = False) -> str:
    """`record.model_dump_json(...)` as pydantic writes it, without pydantic (see `plain_dump`)."""
    from json import dumps

    written = record._dump(True, by_alias, False, exclude_none)
    return dumps(written, ensure_ascii=False, separators=(",", ":"))


class Record:
    """The methods of every `@record` class, and the pydantic model methods."""

    # Set by @record.
    model_fields: ClassVar[dict[str, dataclasses.Field[Any]]]
    _plan: ClassVar[tuple[tuple[str, Any, Any], ...]]
    _names: ClassVar[frozenset[str]]
    _keys: ClassVar[tuple[str, ...]]

    def __init__(self, **values: Any) -> None:
        kind = type(self)
        filled = self.__dict__
        if values.keys() == kind._names:  # every field given, as the engine builds its answers
            filled.update(values)
        else:
            for name, default, factory in kind._plan:
                if name in values:
                    filled[name] = values.pop(name)
                elif default is not _MISSING:
                    filled[name] = default
                elif factory is not _MISSING:
                    filled[name] = factory()
                else:
                    raise TypeError(f"{kind.__name__}() missing keyword argument {name!r}")
            if values:
                raise TypeError(f"{kind.__name__}() got unexpected keyword arguments {', '.join(map(repr, values))}")
        post_init = getattr(self, "__post_init__", None)
        if post_init is not None:
            post_init()

    def _values(self) -> tuple[Any, ...]:
        filled = self.__dict__
        return tuple(filled[name] for name, _, _ in self._plan)

    def __eq__(self, other: object) -> bool:
        if other is self:
            return True
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self), self._values()))

    def __repr__(self) -> str:
        filled = self.__dict__
        shown = ", ".join(f"{name}={filled[name]!r}" for name, _, _ in self._plan)
        return f"{type(self).__qualname__}({shown})"

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")

    @classmethod
    def model_validate(cls, data: Any) -> Self:
        """`data` checked against the class's fields and constraints (raises pydantic.ValidationError)."""
        return adapter(cls).validate_python(data)  # type: ignore[no-any-return]

    def model_dump(
        self,
        *,
        mode: Literal["python", "json"] = "python",
        by_alias: bool = False,
        exclude_defaults: bool = False,
        exclude_none: bool = False,
    ) -> dict[str, Any]:
        """The fields as a dict, as pydantic's model_dump gives them."""
        if _PYDANTIC in sys.modules:  # loaded already: its serialiser is several times quicker (see `plain_dump`)
            return adapter(type(self)).dump_python(  # type: ignore[no-any-return]
                self, mode=mode, by_alias=by_alias, exclude_defaults=exclude_defaults, exclude_none=exclude_none
            )
        return plain_dump(
            self, mode=mode, by_alias=by_alias, exclude_defaults=exclude_defaults, exclude_none=exclude_none
        )

    def model_dump_json(self, *, by_alias: bool = False, exclude_none: bool = False) -> str:
        """Compact JSON, as pydantic's model_dump_json writes it."""
        if _PYDANTIC in sys.modules:
            return adapter(type(self)).dump_json(self, by_alias=by_alias, exclude_none=exclude_none).decode()
        return plain_json(self, by_alias=by_alias, exclude_none=exclude_none)

    def _dump(self, json: bool, by_alias: bool, exclude_defaults: bool, exclude_none: bool) -> dict[str, Any]:
        kind = type(self)
        filled = self.__dict__
        out: dict[str, Any] = {}
        for (name, default, factory), key in zip(kind._plan, kind._keys, strict=True):
            value = filled[name]
            if exclude_none and value is None:
                continue
            if exclude_defaults and (
                (default is not _MISSING and value == default) or (factory is not _MISSING and value == factory())
            ):
                continue
            out[key if by_alias else name] = _plain(value, json, by_alias, exclude_defaults, exclude_none)
        return out

    def model_copy(self, *, update: dict[str, Any] | None = None) -> Self:
        """A shallow copy with `update`'s fields replaced, unchecked, as pydantic's model_copy does (and as
        quickly: a frozen dataclass's own constructor would set each field again)."""
        copied = object.__new__(type(self))
        copied.__dict__.update(self.__dict__, **(update or {}))
        return copied

    @classmethod
    def model_json_schema(cls, ref_template: str = "#/$defs/{model}") -> dict[str, Any]:
        return adapter(cls).json_schema(ref_template=ref_template)
