"""One registry for every kind (model source, task kind, prompting method, answer filter, metric, engine).

A kind is found by the name the config gives it. A name registered twice is an error (a silent
overwrite would swap one kind for another), and an unknown name is a one-line error that lists the
known ones. Kinds that are classes register one instance each with `Registry.register_class`; a
package of kinds imports all its modules with `load_package`, so no list of kinds is kept by hand.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from typing import Any, Generic, TypeVar

from emergence.errors import InputError

T = TypeVar("T")


class Registry(dict[str, T], Generic[T]):
    """Entries of one kind by name. `what` names the kind in errors ("task kind", "metric", ...);
    `error` is the exception an unknown name raises (an `EmergenceError`)."""

    def __init__(self, what: str, error: type[Exception] = InputError):
        super().__init__()
        self.what, self.error = what, error

    def add(self, name: str, entry: T) -> T:
        if name in self:
            raise KeyError(f"{name!r} is registered twice ({_name(self[name])} and {_name(entry)})")
        self[name] = entry
        return entry

    def register_class(self, cls: Any) -> Any:
        """Class decorator: register one instance of the class under its `name` attribute."""
        self.add(cls.name, cls())
        return cls

    def find(self, name: object, owner: str) -> T:
        """The entry registered as `name`; for an unknown one, `error` naming `owner` (what asked)."""
        if not isinstance(name, str) or name not in self:
            raise self.error(f"{owner}: unknown {self.what} {name!r} (known: {', '.join(sorted(self))})")
        return self[name]


def load_package(package: str, path: Iterable[str]) -> None:
    """Import every module of a kind's package, so each registers itself: no list of kinds to keep."""
    for module in sorted(m.name for m in pkgutil.iter_modules(path)):
        importlib.import_module(f"{package}.{module}")


def _name(entry: object) -> str:
    """A registered function's name, the name of the function a record wraps (`.fn`), or the class's."""
    function = entry if hasattr(entry, "__qualname__") else getattr(entry, "fn", entry)
    return str(getattr(function, "__qualname__", type(entry).__name__))
