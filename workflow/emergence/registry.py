"""Named registries: task builders, prompt methods and metrics are small functions found by name."""

from __future__ import annotations

from typing import Callable


def registrar(table: dict[str, Callable]) -> Callable[[str], Callable[[Callable], Callable]]:
    """A decorator factory: `@register("name")` records the decorated function in `table`."""

    def register_as(name: str) -> Callable[[Callable], Callable]:
        def register(fn: Callable) -> Callable:
            table[name] = fn
            return fn

        return register

    return register_as
