"""The one interface every source of cluster state implements."""
from __future__ import annotations

import abc

from ..store import Store


class Source(abc.ABC):
    """Feeds a Store. Static sources (snapshot, demo) load once and return; the live
    source (list/watch) keeps the store current until cancelled. Either way the source
    calls `store.mark_synced()` once every kind has been loaded the first time."""

    name: str = "source"

    @abc.abstractmethod
    async def run(self, store: Store) -> None: ...

    def describe(self) -> str:
        return self.name

    def requests(self) -> dict[tuple[str, str], int]:
        """API requests made so far by (verb, HTTP code); static sources make none."""
        return {}
