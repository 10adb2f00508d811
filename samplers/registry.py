"""A table of named entries that user code may extend: criteria, approaches, objective kinds.

One behaviour for every such table: an entry's name is its key, adding a name in use is
refused, and looking up an unknown name says which names there are.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, Protocol, TypeVar


class Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=Named)


class Registry(dict[str, T], Generic[T]):
    """``name -> entry``, in the order the entries were given."""

    def __init__(self, what: str, entries: Iterable[T]) -> None:
        super().__init__((entry.name, entry) for entry in entries)
        self.what = what

    def add(self, entry: T) -> T:
        """Add ``entry`` (e.g. from your own code, docs/extending.md); its name must be new."""
        if entry.name in self:
            raise ValueError(f"{self.what} {entry.name!r} exists already")
        self[entry.name] = entry
        return entry

    def lookup(self, name: str) -> T:
        """The entry ``name``; ValueError naming the known ones otherwise."""
        try:
            return self[name]
        except KeyError:
            raise ValueError(f"unknown {self.what} {name!r} (choose from {', '.join(self)})") from None
