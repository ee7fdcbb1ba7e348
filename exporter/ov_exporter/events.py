"""What a source tells the store: the one-way seam between them.

A source never touches the store: it calls `emit(event)` with one of the events below,
and only `Store.apply` changes state. So a source can be run against anything that
accepts events (a store, a list in a test), and the store is the one place that
decides what an event means for objects, problems and each kind's health.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Union

from .records import KindInfo


@dataclass(frozen=True, slots=True)
class UpstreamSample:
    """One sample of an upstream metric (KubeVirt, node_exporter) read from Prometheus or a
    .prom file: what checks read. What checks publish is model.Sample."""

    labels: dict[str, str]
    value: float
    timestamp: float | None = None


Samples = dict[str, list[UpstreamSample]]  # metric name -> samples


# ---------------------------------------------------------------- objects


@dataclass(frozen=True, slots=True)
class Upserted:
    """An object was added or changed (a file's object, a watch ADDED/MODIFIED)."""

    kind: KindInfo
    record: Any


@dataclass(frozen=True, slots=True)
class Deleted:
    """An object is gone (watch DELETED, or a new version that does not decode)."""

    kind: KindInfo
    uid: str


@dataclass(frozen=True, slots=True)
class Listed:
    """A full LIST of one kind: its objects are exactly these, and the problems whose
    place starts with `problem_prefix` exactly `problems`. The kind is synced."""

    kind: KindInfo
    records: list[Any]
    problems: dict[str, str] = field(default_factory=dict)
    problem_prefix: str = ""


# ---------------------------------------------------------------- a kind's health


@dataclass(frozen=True, slots=True)
class Contacted:
    """A successful answer for a kind: its errors and a 401 are over. `event`: a watch
    event arrived (updates the time of the last event)."""

    key: str
    event: bool = False


@dataclass(frozen=True, slots=True)
class KindSynced:
    """The kind was read whole once (a static source after loading, an unwatchable
    kind whose API is down so the first evaluation does not wait)."""

    key: str


@dataclass(frozen=True, slots=True)
class KindFailed:
    """A request for the kind failed (connection, 5xx, decoding)."""

    key: str
    message: str


@dataclass(frozen=True, slots=True)
class KindAbsent:
    """The kind's API is not installed, or a snapshot has none of it: no objects."""

    kind: KindInfo
    reason: str


@dataclass(frozen=True, slots=True)
class KindForbidden:
    key: str
    message: str


@dataclass(frozen=True, slots=True)
class KindUnauthorized:
    key: str
    message: str


@dataclass(frozen=True, slots=True)
class WatchRestarted:
    """A watch stream ended (server timeout or error) and resumes."""

    key: str


@dataclass(frozen=True, slots=True)
class Relisting:
    """A kind listed before is listed again (410, undecodable event, poll)."""

    key: str


# ---------------------------------------------------------------- the source as a whole


@dataclass(frozen=True, slots=True)
class SourceFailed:
    """The whole source failed (no connection, credentials rejected)."""

    message: str
    unauthorized: bool = False


@dataclass(frozen=True, slots=True)
class ProblemFound:
    """Something skipped or kept without a field; `where` is a file or an object."""

    where: str
    message: str


@dataclass(frozen=True, slots=True)
class ProblemCleared:
    where: str


@dataclass(frozen=True, slots=True)
class Ignored:
    """Input deliberately not read (a kind we do not judge, a duplicate), by reason."""

    reason: str
    count: int = 1


@dataclass(frozen=True, slots=True)
class SamplesUpdated:
    """Metric samples from Prometheus or files; None: no metric source (or it failed)."""

    samples: Samples | None
    origin: str
    error: str = ""


@dataclass(frozen=True, slots=True)
class ClockSet:
    """The "now" checks judge time windows at, and what it is (for reports)."""

    clock: Callable[[], float]
    origin: str


@dataclass(frozen=True, slots=True)
class Synced:
    """Every kind has been loaded once: evaluations may start."""


Event = Union[
    Upserted,
    Deleted,
    Listed,
    Contacted,
    KindSynced,
    KindFailed,
    KindAbsent,
    KindForbidden,
    KindUnauthorized,
    WatchRestarted,
    Relisting,
    SourceFailed,
    ProblemFound,
    ProblemCleared,
    Ignored,
    SamplesUpdated,
    ClockSet,
    Synced,
]
Emit = Callable[[Event], None]
