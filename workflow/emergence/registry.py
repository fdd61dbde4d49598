"""Named registries: every kind (model source, task kind, prompt method, metric, engine) is found by name."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


def registrar(table: dict[str, T]) -> Callable[[str], Callable[[T], T]]:
    """A decorator factory: `@register("name")` records the decorated function in `table`.

    A name registered twice is an error (a silent overwrite would swap one kind for another).
    """

    def register_as(name: str) -> Callable[[T], T]:
        def register(entry: T) -> T:
            if name in table:
                raise KeyError(f"{name!r} is registered twice ({_name(table[name])} and {_name(entry)})")
            table[name] = entry
            return entry

        return register

    return register_as


def _name(entry: object) -> str:
    """A registered function's name, or the name of the function a registered record wraps (`.fn`)."""
    function = entry if hasattr(entry, "__qualname__") else getattr(entry, "fn", entry)
    return str(getattr(function, "__qualname__", type(entry).__name__))


def load_package(package: str, path: Iterable[str]) -> None:
    """Import every module of a kind's package, so each registers itself: no list of kinds to keep."""
    for module in sorted(m.name for m in pkgutil.iter_modules(path)):
        importlib.import_module(f"{package}.{module}")
