"""Required fields of a sample class: a missing one raises MissingField naming class and field.

A call that leaves out a required field would raise Python's own TypeError while binding
the arguments, naming neither the class nor what to do. Catching it would need a wrapper
around ``__init__``, doubling the cost of every construction. Instead each required field
gets a default factory that raises :class:`~atdata.errors.MissingField`: dataclasses'
generated ``__init__`` then costs one ``is`` test per required field, and only a missing
argument calls the factory. :func:`restore_signature` then shows those fields as required
again in ``inspect.signature``.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
import typing
from typing import Any

from ..errors import MissingField

__all__ = ["HAS_DEFAULT_FACTORY", "REQUIRED", "mark_required_fields", "restore_signature"]

_ABSENT: Any = object()


class _Required:
    """The default factory of a required field: it runs only when the argument is missing."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<required>"

    def __call__(self) -> typing.NoReturn:
        init_locals = sys._getframe(1).f_locals  # the generated __init__ calling us
        sample = init_locals.get("__dataclass_self__", init_locals.get("self"))
        fields = dataclasses.fields(sample) if dataclasses.is_dataclass(sample) else ()
        missing = [
            f.name for f in fields if f.default_factory is REQUIRED and init_locals.get(f.name) is HAS_DEFAULT_FACTORY
        ]
        owner = type(sample).__qualname__
        raise MissingField(
            f"{owner}() missing required field{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}: "
            f"pass {', '.join(f'{name}=...' for name in missing)} (fields of {owner}: "
            f"{', '.join(f.name for f in fields if f.init)}; only fields with a default may be left out)"
        )


REQUIRED = _Required()
HAS_DEFAULT_FACTORY: Any = getattr(dataclasses, "_HAS_DEFAULT_FACTORY", None)  # private: absent on some Python


def mark_required_fields(cls: type) -> None:
    """Give the fields ``cls`` itself declares without a default the ``REQUIRED`` factory.

    ClassVar and InitVar annotations are not dataclass fields and stay as they are; a
    ``dataclasses.field(...)`` without a default (e.g. ``field(kw_only=True)``) gets the
    factory on its Field.
    """
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # a forward reference not defined yet: judge by the raw annotation
        hints = {}
    for name, raw in cls.__dict__.get("__annotations__", {}).items():
        value = getattr(cls, name, _ABSENT)
        if isinstance(value, dataclasses.Field):
            if value.init and value.default is dataclasses.MISSING and value.default_factory is dataclasses.MISSING:
                value.default_factory = REQUIRED
            continue
        hint = hints.get(name, raw)
        if value is not _ABSENT or (isinstance(hint, str) and ("ClassVar" in hint or "InitVar" in hint)):
            continue
        if hint is typing.ClassVar or typing.get_origin(hint) is typing.ClassVar:
            continue
        if hint is dataclasses.InitVar or isinstance(hint, dataclasses.InitVar):
            continue
        setattr(cls, name, dataclasses.field(default_factory=REQUIRED))


def restore_signature(cls: type) -> None:
    """Show required fields as required in ``inspect.signature(cls)``, and keep refusing a
    required field after a defaulted one, as dataclasses does (positional calls would
    otherwise fill the wrong field)."""
    required = {f.name for f in dataclasses.fields(cls) if f.default_factory is REQUIRED}
    if not required:
        return
    init = vars(cls)["__init__"]
    params = []
    defaulted = None
    signature = inspect.signature(init)
    for param in signature.parameters.values():
        if param.name in required:
            param = param.replace(default=inspect.Parameter.empty)
        if param.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD:
            if param.default is not inspect.Parameter.empty:
                defaulted = param.name
            elif defaulted is not None:
                raise TypeError(
                    f"{cls.__qualname__}: non-default argument {param.name!r} follows default argument {defaulted!r}"
                )
        params.append(param)
    init.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]  # a plain function
