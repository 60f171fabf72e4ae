"""Package names imported on first use (PEP 562), for packages whose modules pull heavy libraries.

A package lists each public name with the module that defines it and sets
``__getattr__, __dir__ = lazy_names(__name__, homes)``; ``from package import Name`` then imports
that one module, so a process imports the libraries of what it uses and not the others.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import import_module


def lazy_names(package: str, homes: dict[str, str]) -> tuple[Callable, Callable]:
    """The module-level ``__getattr__`` and ``__dir__`` of ``package`` for the names in
    ``homes`` (name -> defining module); a name is looked up once, then kept as an attribute."""
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str):
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(home), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(homes))

    return __getattr__, __dir__
