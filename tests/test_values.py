"""``fsm_bot.values.frozen``: a frozen dataclass in every respect but its quicker ``__init__``."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pickle
import pkgutil
from dataclasses import field
from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

import fsm_bot
import states
from fsm_bot.ports import Level
from fsm_bot.values import frozen


@frozen
class Made:
    a: int
    b: str = "b"
    c: tuple[int, ...] = ()
    d: list[int] = field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Reference:
    a: int
    b: str = "b"
    c: tuple[int, ...] = ()
    d: list[int] = field(default_factory=list)


def test_the_same_signature_fields_and_behaviour_as_the_frozen_dataclass():
    made, ref = Made(1, c=(2,)), Reference(1, c=(2,))
    assert [p.name for p in inspect.signature(Made).parameters.values()] == ["a", "b", "c", "d"]
    assert [f.name for f in dataclasses.fields(made)] == [f.name for f in dataclasses.fields(ref)]
    assert repr(made) == repr(ref).replace("Reference", "Made")
    assert made == Made(1, "b", (2,), []) and made != Made(2)
    for unhashable in (made, ref):  # a list field: neither hashes
        with pytest.raises(TypeError):
            hash(unhashable)
    assert hash(Level(Decimal("0.5"), Decimal(5))) == hash(Level(Decimal("0.50"), Decimal("5.0")))
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.a = 2  # type: ignore[misc]
    assert dataclasses.replace(made, b="x") == Made(1, "x", (2,))
    assert pickle.loads(pickle.dumps(made)) == made
    assert Made(1).d is not Made(1).d  # a default factory is called for each instance
    shared = [5]
    assert Made(1, d=shared).d is shared


def test_bad_arguments_are_refused_as_the_dataclass_refuses_them():
    for cls in (Made, Reference):
        with pytest.raises(TypeError):
            cls()  # type: ignore[call-arg]
        with pytest.raises(TypeError):
            cls(1, e=2)  # type: ignore[call-arg]
        with pytest.raises(TypeError):
            cls(1, a=2)  # type: ignore[misc]


def test_a_class_it_cannot_make_alike_is_refused():
    with pytest.raises(TypeError, match="__post_init__"):
        @frozen
        class Checked:
            a: int

            def __post_init__(self) -> None: ...
    with pytest.raises(TypeError, match="set by __init__"):
        @frozen
        class Derived:
            a: int
            b: int = field(init=False, default=0)


@given(st.integers(), st.text(), st.lists(st.integers(), max_size=3).map(tuple))
def test_fields_are_what_was_given(a, b, c):
    made = Made(a, b, c)
    assert (made.a, made.b, made.c, made.d) == (a, b, c, [])
    assert made == Made(a=a, b=b, c=c) and vars(made) == vars(Reference(a, b, c))


def _frozen_classes() -> list[type]:
    found = []
    for pkg in (fsm_bot, states):
        for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            if info.name.endswith("__main__"):
                continue
            module = importlib.import_module(info.name)
            found += [c for c in vars(module).values() if isinstance(c, type) and c.__module__ == module.__name__
                      and dataclasses.is_dataclass(c) and c.__dataclass_params__.frozen]  # type: ignore[attr-defined]
    return found


def test_every_frozen_record_of_the_package_is_made_by_frozen_with_the_dataclass_signature():
    classes = _frozen_classes()
    assert len(classes) > 50
    for cls in classes:
        assert "__fields__" in cls.__init__.__code__.co_varnames, \
            f"{cls.__qualname__} is a plain frozen dataclass: make it @frozen"
        expected = [(f.name, f.default if f.default is not dataclasses.MISSING else None)
                    for f in dataclasses.fields(cls)]
        got = [(p.name, p.default if p.default is not inspect.Parameter.empty else None)
               for p in inspect.signature(cls).parameters.values()]
        assert [name for name, _ in got] == [name for name, _ in expected], cls.__qualname__
        for (name, want), (_, have) in zip(expected, got):
            field_ = next(f for f in dataclasses.fields(cls) if f.name == name)
            if field_.default_factory is dataclasses.MISSING:  # type: ignore[misc]
                assert have == want, f"{cls.__qualname__}.{name}"
