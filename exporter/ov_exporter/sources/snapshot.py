"""Snapshot directory and the embedded demo cluster: both are files on disk."""
from __future__ import annotations

import asyncio
import logging
from importlib import resources
from pathlib import Path

from ..records import KINDS
from ..store import Store
from .base import Source
from .files import LoadStats, load_directory

log = logging.getLogger(__name__)


# Kinds every cluster has objects of. Others may well be empty (no migration running,
# no NetworkAttachmentDefinition): their checks judge the empty list, as from the API.
NEVER_EMPTY = ("nodes", "namespaces")


class SnapshotSource(Source):
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.name = "snapshot"
        self.stats: LoadStats | None = None  # after load: what was read, failed, skipped

    def describe(self) -> str:
        return f"snapshot {self.root}"

    def load(self, store: Store) -> None:
        """Blocking load; `run` calls it in a worker thread."""
        loader = load_directory(store, self.root)
        self.stats = loader.stats
        ignored = store.ignored_counts()
        log.info("%s: %d objects, %d sample files, %d problems, ignored %s",
                 self.describe(), loader.objects, loader.sample_files, len(store.problems), ignored or "nothing")
        counts = store.counts()
        for kind in KINDS:
            status = store.kinds[kind.key]
            status.synced = True
            if kind.key in NEVER_EMPTY and not counts[kind.key] and kind.key not in loader.listed_kinds:
                # A cluster always has these: none in the files means they were not dumped
                # (a manifests repository), unless an empty typed List says otherwise.
                # Checks that require them are not_applicable, naming it, never passed.
                status.absent = f"no {kind.kind} object in {self.describe()}"
        store.mark_synced()

    async def run(self, store: Store) -> None:
        await asyncio.to_thread(self.load, store)


def demo_path() -> Path:
    return Path(str(resources.files("ov_exporter") / "demo"))


class DemoSource(SnapshotSource):
    """The embedded demo cluster, shipped as package data (see demo/README.md)."""

    def __init__(self) -> None:
        super().__init__(demo_path())
        self.name = "demo"

    def describe(self) -> str:
        return "embedded demo cluster"
