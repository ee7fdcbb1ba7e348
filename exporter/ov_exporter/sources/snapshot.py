"""Snapshot directory and the embedded demo cluster: both are files on disk."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from datetime import datetime
from importlib import resources
from pathlib import Path

from ..events import ClockSet, Emit, KindAbsent, KindSynced, Synced
from ..records import KINDS
from .base import Source
from .files import FileLoader, LoadStats, load_directory

log = logging.getLogger(__name__)

# Written by `ov-exporter snapshot` next to the dumps: one RFC 3339 line, the capture time.
CAPTURED_AT_FILE = "captured-at"
# `oc adm must-gather` appends time.Now() formatted by Go's Time.String() to <dest-dir>/timestamp
# when it starts and when it ends (openshift/oc pkg/cli/admin/mustgather/mustgather.go,
# logTimestamp, release openshift-clients-4.17.0-202409111134), e.g.
# "2024-09-12 10:49:33.047513541 +0000 UTC m=+0.262727431".
MUST_GATHER_TIMESTAMP_FILE = "timestamp"
_GO_TIME = re.compile(r"^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:\.(\d+))? ([+-]\d{4})\b")


def parse_rfc3339(text: str, what: str) -> float:
    """Unix seconds of an RFC 3339 time with an offset ("Z" or "+01:00"); ValueError naming `what`."""
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value)
    except ValueError as exc:
        raise ValueError(f"{what}: {value!r} is not an RFC 3339 time (e.g. 2025-01-20T09:30:00Z)") from exc
    if parsed.tzinfo is None:
        raise ValueError(f"{what}: {value!r} has no UTC offset; RFC 3339 needs one (Z or +hh:mm)")
    return parsed.timestamp()


def _must_gather_time(text: str) -> float | None:
    """The last (end) time in a must-gather `timestamp` file, or None when no line parses."""
    last = None
    for line in text.splitlines():
        m = _GO_TIME.match(line.strip())
        if m:
            day, clock, frac, offset = m.groups()
            stamp = datetime.strptime(f"{day} {clock} {offset}", "%Y-%m-%d %H:%M:%S %z").timestamp()
            last = stamp + float(f"0.{frac}") if frac else stamp
    return last


def capture_time(root: Path) -> tuple[float, str] | None:
    """(Unix seconds, where from) of when a snapshot directory was taken, or None when unknown:
    our captured-at file, else a must-gather `timestamp` file in root or its parent (the
    must-gather destination directory holds it; the dumps sit one level below)."""
    captured = root / CAPTURED_AT_FILE
    if captured.is_file():
        text = captured.read_text().strip()
        try:
            return parse_rfc3339(text, str(captured)), f"{CAPTURED_AT_FILE} file"
        except ValueError as exc:
            log.warning("%s; ignoring it", exc)
    for directory in (root, root.parent):
        path = directory / MUST_GATHER_TIMESTAMP_FILE
        if path.is_file():
            stamp = _must_gather_time(path.read_text(errors="replace"))
            if stamp is not None:
                return stamp, f"must-gather {path.name} file"
            log.warning("%s: no time in Go's time.Time format; ignoring it", path)
    return None


# Kinds every cluster has objects of. Others may well be empty (no migration running,
# no NetworkAttachmentDefinition): their checks judge the empty list, as from the API.
NEVER_EMPTY = ("nodes", "namespaces")


class SnapshotSource(Source):
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.name = "snapshot"
        self.stats: LoadStats | None = None  # after load: what was read, failed, skipped
        self.loader: FileLoader | None = None

    def describe(self) -> str:
        return f"snapshot {self.root}"

    def load(self, emit: Emit) -> None:
        """Blocking load; `run` calls it in a worker thread."""
        captured = capture_time(self.root)
        if captured is not None:
            stamp, origin = captured
            emit(ClockSet(lambda: stamp, origin))
        else:  # nothing says when it was taken: judge it as of now
            emit(ClockSet(time.time, "wall clock (no capture time in the snapshot)"))
        loader = load_directory(emit, self.root)
        self.loader, self.stats = loader, loader.stats
        log.info(
            "%s: %d objects, %d sample files, %d problems",
            self.describe(),
            loader.objects,
            loader.sample_files,
            len(dict(loader.problems)),
        )
        for kind in KINDS:
            emit(KindSynced(kind.key))
            if kind.key in NEVER_EMPTY and not loader.counts.get(kind.key) and kind.key not in loader.listed_kinds:
                # A cluster always has these: none in the files means they were not dumped
                # (a manifests repository), unless an empty typed List says otherwise.
                # Checks that require them are not_applicable, naming it, never passed.
                emit(KindAbsent(kind, f"no {kind.kind} object in {self.describe()}"))
        emit(Synced())

    def origin(self, kind: str, namespace: str, name: str) -> tuple[str, int] | None:
        """The file and line where an object was found (after the load), for SARIF and JUnit."""
        return self.loader.origin(kind, namespace, name) if self.loader is not None else None

    async def run(self, emit: Emit) -> None:
        await asyncio.to_thread(self.load, emit)


def demo_path() -> Path:
    return Path(str(resources.files("ov_exporter") / "demo"))


class DemoSource(SnapshotSource):
    """The embedded demo cluster, shipped as package data (see demo/README.md)."""

    def __init__(self) -> None:
        super().__init__(demo_path())
        self.name = "demo"

    def describe(self) -> str:
        return "embedded demo cluster"
