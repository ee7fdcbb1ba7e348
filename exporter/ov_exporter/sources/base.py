"""The one interface every source of cluster state implements."""

from __future__ import annotations

import abc

from ..events import Emit


class Source(abc.ABC):
    """Tells a store what is in the cluster through events (events.py), never touching
    it. Static sources (snapshot, demo) load once and return; the live source
    (list/watch) keeps emitting until cancelled. Either way the source emits `Synced()`
    once every kind has been loaded the first time."""

    name: str = "source"

    @abc.abstractmethod
    async def run(self, emit: Emit) -> None: ...

    def describe(self) -> str:
        return self.name

    def origin(self, kind: str, namespace: str, name: str) -> tuple[str, int] | None:
        """(file, line) where an object was read, for sources that read files."""
        return None

    def requests(self) -> dict[tuple[str, str], int]:
        """API requests made so far by (verb, HTTP code); static sources make none."""
        return {}
