"""Named registries: task builders, prompt methods and metrics are small functions found by name."""

from __future__ import annotations

from typing import Callable


def registrar(table: dict[str, Callable]) -> Callable[[str], Callable[[Callable], Callable]]:
    """A decorator factory: `@register("name")` records the decorated function in `table`.

    A name registered twice is an error (a silent overwrite would swap one kind for another).
    """

    def register_as(name: str) -> Callable[[Callable], Callable]:
        def register(fn: Callable) -> Callable:
            if name in table:
                raise KeyError(f"{name!r} is registered twice ({_name(table[name])} and {_name(fn)})")
            table[name] = fn
            return fn

        return register

    return register_as


def _name(entry) -> str:
    return getattr(entry, "__qualname__", None) or getattr(getattr(entry, "fn", None), "__qualname__", type(entry).__name__)
