"""``frozen``: the decorator of the project's frozen records (steps, what the ports saw, orders, fills, books).

A ``frozen`` class is a ``dataclass(frozen=True)`` in every respect (its fields, equality, hash, repr,
``dataclasses.replace``, pickling) but one: its ``__init__`` stores the fields in the instance's ``__dict__``
directly. The frozen dataclass's own ``__init__`` sets each through ``object.__setattr__``, since its class
refuses assignment: about 0.2 µs a field, and a backtest makes some forty records an interval.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, TypeVar, dataclass_transform, overload

C = TypeVar("C", bound=type)
_FACTORY = object()  # a parameter's default where the field has a default factory


@overload
def frozen(cls: C, /) -> C: ...
@overload
def frozen(*, eq: bool = True) -> Callable[[C], C]: ...


@dataclass_transform(frozen_default=True)
def frozen(cls: Any = None, /, *, eq: bool = True) -> Any:
    """``@frozen`` or ``@frozen(eq=False)``: ``@dataclass(frozen=True)`` (or ``(frozen=True, eq=False)``), its
    ``__init__`` made again from the same fields and defaults."""
    def make(c: C) -> C:
        if "__post_init__" in vars(c):
            raise TypeError(f"{c.__qualname__}: a frozen record has no __post_init__")
        c = dataclasses.dataclass(frozen=True, eq=eq, init=False)(c)  # its own __init__ would be made, then replaced
        c.__init__ = _init(c)  # type: ignore[misc]
        return c
    return make if cls is None else make(cls)


def _init(cls: type) -> Callable[..., None]:
    scope: dict[str, Any] = {"_FACTORY": _FACTORY}
    params, body = ["__self__"], ["    __fields__ = __self__.__dict__"]
    for f in dataclasses.fields(cls):
        if not f.init:
            raise TypeError(f"{cls.__qualname__}.{f.name}: a frozen record's fields are all set by __init__")
        stored = f.name
        if f.default is not dataclasses.MISSING:
            scope[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        elif f.default_factory is not dataclasses.MISSING:
            scope[f"_factory_{f.name}"] = f.default_factory
            params.append(f"{f.name}=_FACTORY")
            stored = f"_factory_{f.name}() if {f.name} is _FACTORY else {f.name}"
        else:
            params.append(f.name)
        body.append(f"    __fields__[{f.name!r}] = {stored}")
    exec(f"def __init__({', '.join(params)}):\n" + "\n".join(body) + "\n", scope)
    init = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    return init
