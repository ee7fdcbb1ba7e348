"""Objects by kind and UID, fed by a source; `state()` freezes them for the checks.

Sources emit events (events.py) and `Store.apply` alone applies them: objects upserted,
deleted or listed whole, problems found and cleared, each kind's health, samples, the
clock. Checks only ever see a `ClusterState`.
"""

from __future__ import annotations

import dataclasses
import gc
import threading
import time
from bisect import bisect_right
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Iterable, Mapping, TypeVar

from .events import (
    ClockSet,
    Contacted,
    Deleted,
    Event,
    Ignored,
    KindAbsent,
    KindFailed,
    KindForbidden,
    KindSynced,
    KindUnauthorized,
    Listed,
    ProblemCleared,
    ProblemFound,
    Relisting,
    Samples,
    SamplesUpdated,
    SourceFailed,
    Synced,
    Upserted,
    UpstreamSample,
    WatchRestarted,
)
from .records import (
    KIND_BY_KEY,
    KINDS,
    ClusterNetwork,
    DataVolume,
    HyperConverged,
    KindInfo,
    KubeVirt,
    MigrationPolicy,
    Namespace,
    NetworkAttachmentDefinition,
    Node,
    NodeNetworkState,
    PersistentVolumeClaim,
    Pod,
    StorageClass,
    StorageProfile,
    VirtualMachine,
    VirtualMachineInstance,
    VirtualMachineInstanceMigration,
)

T = TypeVar("T")
R = TypeVar("R")

__all__ = [
    "Changed",
    "ClusterState",
    "KindStatus",
    "ObjectMemo",
    "UpstreamSample",
    "Problem",
    "Samples",
    "Store",
]


@dataclass(frozen=True, slots=True)
class Problem:
    """Something a source skipped: `where` is a file path or an object reference."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


# A kind whose source has been failing for longer than this since its last successful
# contact is stale: its checks fail rather than judge old data. Shorter failures (a
# dropped watch, an API server restart) are normal churn and keep the kind current.
STALE_AFTER = 30.0

# Every state a kind can be in; `ov_source_kind_state` has one series per state.
KIND_STATES = ("synced", "syncing", "stale", "failed", "unauthorized", "forbidden", "absent")
BLIND_STATES = frozenset({"stale", "failed", "unauthorized", "forbidden"})  # checks reading the kind fail


@dataclass
class KindStatus:
    """What a source knows about one kind: listed yet, available, watch health."""

    synced: bool = False  # listed at least once
    absent: str = ""  # the API is not installed (404): dependent checks are not_applicable
    forbidden: str = ""  # RBAC denies it (403): dependent checks fail, naming the permission
    unauthorized: str = ""  # the API server rejects the credentials (401)
    error: str = ""  # the last request failed (connection, 5xx, decoding); cleared by the next success
    error_since: float | None = None  # Unix time the current run of errors began
    last_contact: float | None = None  # Unix time of the last successful answer for this kind
    watch_restarts: int = 0
    relists: int = 0
    last_event: float | None = None

    def state(self, now: float | None = None) -> str:
        """One of KIND_STATES."""
        if self.absent:
            return "absent"
        if self.forbidden:
            return "forbidden"
        if self.unauthorized:
            return "unauthorized"
        if self.error:
            if not self.synced:
                return "failed"
            since = self.last_contact or self.error_since or 0.0
            if (now if now is not None else time.time()) - since > STALE_AFTER:
                return "stale"
        return "synced" if self.synced else "syncing"

    def reason(self, now: float | None = None) -> str:
        """Why the kind is not current ("" when it is)."""
        state = self.state(now)
        if state == "forbidden":
            return self.forbidden
        if state == "unauthorized":
            return self.unauthorized
        if state in ("failed", "stale"):
            age = (
                ""
                if self.last_contact is None
                else f" (last contact {(now if now is not None else time.time()) - self.last_contact:.0f} s ago)"
            )
            return f"{state}: {self.error}{age}"
        return ""


def gc_before_sync() -> None:
    """Cyclic garbage collection off for the first sync. Decoding 10^5 objects allocates
    containers fast enough to set off several full collections, each walking everything
    decoded so far, while reference counting frees all of it anyway (records hold no
    cycles)."""
    gc.disable()


def gc_after_sync() -> None:
    """After the first sync: one collection, then everything alive (modules, the store's
    records) moves to the permanent generation (gc.freeze), so later collections walk
    only what changed since. Records replaced by watch events are still freed: reference
    counting does not look at generations."""
    gc.collect()
    gc.freeze()
    gc.enable()


def uid_of(kind: KindInfo, record: Any) -> str:
    """UID, or a stable stand-in for dumps that strip it (Insights archives)."""
    meta = record.metadata
    return meta.uid or f"{kind.key}/{meta.namespace}/{meta.name}"


@dataclass(frozen=True, slots=True)
class Changed:
    """One object of a kind that was upserted or deleted (ClusterState.changes)."""

    uid: str  # as the store keys it (uid_of)
    namespace: str
    name: str
    record: Any  # the record as of the state that asks; None: deleted


# How many changes per kind the store remembers; a consumer further behind recomputes.
CHANGE_LOG_LIMIT = 4_096


class ChangeLog:
    """Per kind, the objects each generation changed, so a result kept from an earlier
    state can be brought up to date by redoing only what changed (ClusterState.changes).
    A kind replaced whole (a relist, an API gone) or changed more than CHANGE_LOG_LIMIT
    times since cannot say what changed: `between` gives None and the caller recomputes.

    The log names objects (uid, namespace, name, deleted), not their versions: under churn
    it would otherwise keep thousands of records the store has replaced. Besides, per uid
    it names, it keeps the generation of the object's last change and, when that was an
    upsert, the record the store holds now; a state taken since that change finds its
    record there, an older one in its own objects (ClusterState.changes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generations: dict[str, list[int]] = {k.key: [] for k in KINDS}
        # Per kind, per generation: (uid, namespace, name, deleted).
        self._changed: dict[str, list[tuple[str, str, str, bool]]] = {k.key: [] for k in KINDS}
        # Per kind: uid -> (generation of its last change, the record it left in the store; None: deleted).
        self._last: dict[str, dict[str, tuple[int, Any]]] = {k.key: {} for k in KINDS}
        self._floor: dict[str, int] = {k.key: 0 for k in KINDS}  # no record of changes up to here

    def record(self, key: str, generation: int, changed: Changed | None) -> None:
        """`changed` None: the whole kind was replaced at `generation`."""
        with self._lock:
            if changed is None:
                self._floor[key], self._generations[key], self._changed[key] = generation, [], []
                self._last[key] = {}
                return
            generations, objects = self._generations[key], self._changed[key]
            generations.append(generation)
            objects.append((changed.uid, changed.namespace, changed.name, changed.record is None))
            self._last[key][changed.uid] = (generation, changed.record)
            if len(generations) > CHANGE_LOG_LIMIT:
                drop = len(generations) - CHANGE_LOG_LIMIT // 2
                floor = self._floor[key] = generations[drop - 1]
                self._generations[key], self._changed[key] = generations[drop:], objects[drop:]
                self._last[key] = {uid: last for uid, last in self._last[key].items() if last[0] > floor}

    def between(self, key: str, since: int, until: int, held: Callable[[str], Any]) -> tuple[Changed, ...] | None:
        """The objects of kind `key` changed after generation `since` up to `until`, each
        once as of `until`, deletions first; an object deleted and upserted again is named
        both deleted and upserted (it moved to the end of its kind's order). An upserted
        object's record is the one it had at `until`: kept here when the object has not
        changed since, else `held(uid)` (the state of `until` has it)."""
        if since > until:
            return None
        with self._lock:
            if since < self._floor[key]:
                return None
            generations = self._generations[key]
            window = self._changed[key][bisect_right(generations, since) : bisect_right(generations, until)]
            last = self._last[key]  # every uid in the window: its changes are above the floor
            # The record an object left in the store, while it is still its record at `until`.
            current = {uid: last[uid][1] for uid, _, _, deleted in window if not deleted and last[uid][0] <= until}
        named: dict[str, tuple[str, str, str, bool]] = {}
        gone: set[str] = set()
        for entry in window:
            named[entry[0]] = entry
            if entry[3]:
                gone.add(entry[0])
        deleted = [Changed(uid, ns, name, None) for uid, ns, name, d in named.values() if d]
        # An object deleted and back moved to the end of its kind's order: it is named deleted too.
        back = [Changed(uid, ns, name, None) for uid, ns, name, d in named.values() if uid in gone and not d]
        upserted = [
            Changed(uid, ns, name, current[uid] if uid in current else held(uid))
            for uid, ns, name, d in named.values()
            if not d
        ]
        return (*deleted, *back, *upserted)


class _Table:
    """One ObjectMemo table: uid -> (record, inputs, value), one entry per object."""

    __slots__ = ("entries", "kinds", "serial", "seen")

    def __init__(self) -> None:
        self.entries: dict[str, tuple[Any, tuple, Any]] = {}
        self.kinds: dict[type, KindInfo] = {}  # record type -> its kind, for the kinds met so far
        self.serial = -1  # the last state that used it
        self.seen: dict[str, int] = {}  # kind key -> the generation its deletions were dropped up to


# Which kind a record is, for the memo's keys (one record type per kind).
_KIND_OF_RECORD: dict[type, KindInfo] = {k.record: k for k in KINDS}


class ObjectMemo:
    """Results computed from objects, kept across the evaluations of one store and shared
    by every check that asks (see ClusterState.per_object and ClusterState.per_kinds).

    An entry is kept per object (its uid) while the object exists, whether or not an
    evaluation asks for it: an evaluation that judges only the objects a change concerns
    must find the others' entries the next time everything is judged. The store replaces
    a record whenever its object changes, so a record's identity is its version: an entry
    holds the record it was computed from and the inputs it read, and is reused only while
    the state being evaluated hands in the very same record and the same inputs; a newer
    version replaces it. The entries of deleted objects are dropped when a later state
    first uses the table (from the store's change log), so the memo holds at most one
    entry per live object per table."""

    def __init__(self) -> None:
        self._tables: dict[str, _Table] = {}
        self._kinds: dict[str, tuple[tuple, Any]] = {}  # name -> (generations it was computed at, value)
        # Per-object results computed and reused, and results of kinds brought up to date from
        # a kept one (per_changes), over the lifetime (for tests and the benchmark).
        self.computed = 0
        self.reused = 0
        self.updated = 0

    def table(self, name: str, state: "ClusterState") -> _Table:
        """The table `name`, rid of the objects deleted before `state` (once per state)."""
        table = self._tables.get(name)
        if table is None:
            table = self._tables[name] = _Table()
        if table.serial != state.serial:
            table.serial = state.serial
            for key, since in table.seen.items():
                _drop_deleted(table, state, key, since)
        return table

    def entries(self, name: str) -> int:
        """How many objects the table `name` holds a result for."""
        table = self._tables.get(name)
        return len(table.entries) if table is not None else 0

    def kinds_value(self, name: str, generations: tuple, compute: Callable[[], T]) -> T:
        kept = self._kinds.get(name)
        if kept is not None and kept[0] == generations:
            return kept[1]
        value = compute()
        self._kinds[name] = (generations, value)
        return value

    def kinds_kept(self, name: str) -> tuple[tuple, Any] | None:
        """(generations, value) kept for `name`, or None."""
        return self._kinds.get(name)

    def keep_kinds(self, name: str, generations: tuple, value: Any) -> None:
        self._kinds[name] = (generations, value)

    def clear(self) -> None:
        """Forget everything (the benchmark's cold evaluations)."""
        self._tables.clear()
        self._kinds.clear()


def _drop_deleted(table: _Table, state: "ClusterState", key: str, since: int) -> None:
    """Drop the entries of the objects of kind `key` deleted after generation `since` up to
    `state`; when the change log cannot say, keep only the objects `state` holds."""
    until = state.generations.get(key)
    if until is None or until == since:
        return
    changed = state.changes(key, since)
    if changed is None:
        kind = KIND_BY_KEY[key]
        held = {uid_of(kind, r) for r in state.of(key)}
        for uid in [uid for uid, entry in table.entries.items() if type(entry[0]) is kind.record and uid not in held]:
            del table.entries[uid]
    else:
        for c in changed:
            if c.record is None:
                table.entries.pop(c.uid, None)
    table.seen[key] = until


class Store:
    """Thread-safe: a snapshot load may run in a worker thread while the server reads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[str, dict[str, Any]] = {k.key: {} for k in KINDS}
        self._samples: Samples | None = None
        self._samples_origin = ""
        self._samples_error = ""
        self._problems: dict[str, str] = {}  # where -> message: a re-list reports the same object once
        self.kinds: dict[str, KindStatus] = {k.key: KindStatus() for k in KINDS}
        self._ignored: dict[str, int] = {}
        # Per kind, how many times its objects changed; the state of an evaluation carries
        # them, so what changed between two evaluations is known.
        self.generations: dict[str, int] = {k.key: 0 for k in KINDS}
        self.samples_generation = 0
        self.synced = False
        self.loaded_at: float | None = None
        # The "now" checks judge time windows at: live sources and snapshots without a capture
        # time: time.time; snapshots: their capture time; `check --at`: that time.
        self.clock: Callable[[], float] | None = None
        self.clock_origin = ""  # what the clock is, for reports: "wall clock", "captured-at file", ...
        # Judgements a check must keep across evaluations (e.g. a migration's cause, fixed when
        # first seen), keyed by check; shared by every state() of this store.
        self.memo: dict[str, dict] = {}
        # Per-object results shared by checks and kept across evaluations (ClusterState.per_object).
        self.object_memo = ObjectMemo()
        self._states = 0  # states handed out: each is numbered
        self.changes = ChangeLog()  # which objects each generation changed (ClusterState.changes)

    def apply(self, event: Event) -> None:
        """The only way state changes: sources emit events, the store applies them. A
        LIST's objects are indexed before the lock is taken and the ones they replace are
        let go after it is released (10^4 PodMetrics at XL: 5 and 4 ms), so a reader or
        another kind's event waits only for the swap."""
        if isinstance(event, Listed):
            objects = {uid_of(event.kind, r): r for r in event.records}
            with self._lock:
                replaced = self._objects[event.kind.key]
                self._objects[event.kind.key] = objects
                self._listed(event)
            del replaced  # freed here, outside the lock, unless a state still holds it
            return
        with self._lock:
            self._apply(event)

    def _listed(self, event: Listed) -> None:
        kind, problems, prefix = event.kind, event.problems, event.problem_prefix
        self._changed(kind.key, None)
        if prefix:
            for where in [w for w in self._problems if w.startswith(prefix)]:
                del self._problems[where]
        self._problems.update(problems)
        st = self.kinds[kind.key]
        st.synced, st.absent, st.forbidden = True, "", ""
        st.last_event = time.time()

    def _apply(self, event: Event) -> None:  # noqa: C901 - one branch per event type
        match event:
            case Upserted(kind, record):
                uid = uid_of(kind, record)
                self._objects[kind.key][uid] = record
                self._changed(kind.key, Changed(uid, record.metadata.namespace, record.metadata.name, record))
            case Deleted(kind, uid):
                if (gone := self._objects[kind.key].pop(uid, None)) is not None:
                    self._changed(kind.key, Changed(uid, gone.metadata.namespace, gone.metadata.name, None))
            case Contacted(key, watch_event):
                st = self.kinds[key]
                st.last_contact = time.time()
                st.error, st.error_since, st.unauthorized = "", None, ""
                if watch_event:
                    st.last_event = st.last_contact
            case KindSynced(key):
                self.kinds[key].synced = True
            case KindFailed(key, message):
                self._kind_error(key, message)
            case KindAbsent(kind, reason):
                if self._objects[kind.key]:
                    self._objects[kind.key] = {}
                    self._changed(kind.key, None)
                st = self.kinds[kind.key]
                st.absent, st.forbidden, st.unauthorized, st.error = reason, "", "", ""
            case KindForbidden(key, message):
                st = self.kinds[key]
                st.forbidden, st.unauthorized, st.error = message, "", ""
            case KindUnauthorized(key, message):
                self.kinds[key].unauthorized = message
            case WatchRestarted(key):
                self.kinds[key].watch_restarts += 1
            case Relisting(key):
                self.kinds[key].relists += 1
            case SourceFailed(message, unauthorized):
                for key, st in self.kinds.items():
                    if st.absent:
                        continue
                    if unauthorized:
                        st.unauthorized = message
                    else:
                        self._kind_error(key, message)
            case ProblemFound(where, message):
                self._problems[where] = message
            case ProblemCleared(where):
                self._problems.pop(where, None)
            case Ignored(reason, count):
                self._ignored[reason] = self._ignored.get(reason, 0) + count
            case SamplesUpdated(samples, origin, error):
                self._samples, self._samples_origin, self._samples_error = samples, origin, error
                self.samples_generation += 1
            case ClockSet(clock, origin):
                self.clock, self.clock_origin = clock, origin
            case Synced():
                self.synced = True
                self.loaded_at = time.time()
            case _:
                raise TypeError(f"not a source event: {event!r}")

    def _changed(self, key: str, changed: Changed | None) -> None:
        """One object of kind `key` changed (None: the whole kind was replaced)."""
        self.generations[key] += 1
        self.changes.record(key, self.generations[key], changed)

    def _kind_error(self, key: str, message: str) -> None:
        st = self.kinds[key]
        if not st.error:
            st.error_since = time.time()
        st.error = message

    def settled(self) -> bool:
        """Every kind has an answer: listed, absent, denied or failing."""
        return all(st.synced or st.absent or st.forbidden or st.unauthorized or st.error for st in self.kinds.values())

    @property
    def problems(self) -> list[Problem]:
        with self._lock:
            return [Problem(w, m) for w, m in self._problems.items()]

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {key: len(objs) for key, objs in self._objects.items()}

    def ignored_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._ignored)

    def state(self) -> "ClusterState":
        with self._lock:
            objects = {key: tuple(objs.values()) for key, objs in self._objects.items()}
            absent = {key: st.absent for key, st in self.kinds.items() if st.absent}
            forbidden = {key: st.forbidden for key, st in self.kinds.items() if st.forbidden}
            wall = time.time()
            self._states += 1
            unavailable = {
                key: reason
                for key, st in self.kinds.items()
                if st.state(wall) in ("stale", "failed", "unauthorized") and (reason := st.reason(wall))
            }
            return ClusterState(
                objects,
                self._samples,
                self._samples_origin,
                self._samples_error,
                absent,
                forbidden,
                now=self.clock() if self.clock is not None else None,
                memo=self.memo,
                unavailable=unavailable,
                generations={**self.generations, "samples": self.samples_generation},
                object_memo=self.object_memo,
                serial=self._states,
                change_log=self.changes,
            )


@dataclass(frozen=True)
class ClusterState:
    """An immutable view of the cluster for one evaluation, with lazy indexes."""

    objects: dict[str, tuple[Any, ...]]
    samples: Samples | None = None  # None: no metric source at all
    samples_origin: str = ""
    samples_error: str = ""  # the metric source failed (e.g. Prometheus unreachable)
    absent: dict[str, str] = field(default_factory=dict)  # kind key -> why (API not installed)
    forbidden: dict[str, str] = field(default_factory=dict)  # kind key -> the missing permission
    _cache: dict = field(default_factory=dict, compare=False, repr=False)
    now: float | None = None  # evaluation time (Unix seconds) from the store's clock; None: none set (tests)
    memo: dict = field(default_factory=dict, compare=False, repr=False)  # Store.memo
    unavailable: dict[str, str] = field(default_factory=dict)  # kind key -> why it is not current (stale, ...)
    # kind key (and "samples") -> the store's count of changes when this state was taken
    generations: dict[str, int] = field(default_factory=dict, compare=False)
    object_memo: ObjectMemo = field(default_factory=ObjectMemo, compare=False, repr=False)  # Store.object_memo
    serial: int = 0  # which of its store's states this is (ObjectMemo tables drop deleted objects once per state)
    change_log: ChangeLog | None = field(default=None, compare=False, repr=False)  # Store.changes
    _indexes: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_records(
        cls, records: Iterable[tuple[KindInfo, Any]], samples: Samples | None = None, now: float | None = None
    ) -> "ClusterState":
        store = Store()
        if now is not None:
            store.apply(ClockSet(lambda: now, "test"))
        for kind, record in records:
            store.apply(Upserted(kind, record))
        store.apply(SamplesUpdated(samples, "test"))
        return store.state()

    def of(self, key: str) -> tuple[Any, ...]:
        return self.objects.get(key, ())

    def derive(self, name: str, compute: Callable[["ClusterState"], T]) -> T:
        """`compute(self)`, computed once per state and shared by every check that asks
        for `name` (domain results several checks read: disks' access modes, readiness)."""
        if name not in self._cache:
            self._cache[name] = compute(self)
        return self._cache[name]

    def per_object(self, name: str, record: Any, compute: Callable[..., R], *inputs: Any) -> R:
        """`compute(record, *inputs)`, a result about one object that also reads `inputs`
        (other records, settings, kinds' generations), computed once and shared by every
        check that asks for `name`, and kept across evaluations while the object exists and
        the state hands in the very same record and inputs (see ObjectMemo). `compute` must read nothing else
        that can change: what it reads from the state goes into `inputs`."""
        table = self.object_memo.table(name, self)
        kind = table.kinds.get(type(record))
        if kind is None:  # the first record of its kind in this table
            kind = _KIND_OF_RECORD.get(type(record))
            if kind is None:
                raise TypeError(f"per_object keeps results about the store's records, not {type(record).__name__}")
            table.kinds[type(record)] = kind
            if self.generations:
                table.seen[kind.key] = self.generations.get(kind.key, 0)
        uid = record.metadata.uid or uid_of(kind, record)
        entry = table.entries.get(uid)
        if entry is not None and entry[0] is record and entry[1] == inputs:  # the same records (identity first)
            self.object_memo.reused += 1
            # Keep the inputs handed in now: equal ones may be newer records (a change that
            # leaves the fields records keep equal), and holding the old ones would keep every
            # superseded record alive (at XL under churn, 4,930 VMIs after 20,000 events).
            table.entries[uid] = (record, inputs, entry[2])
            return entry[2]
        value = compute(record, *inputs)
        table.entries[uid] = (record, inputs, value)
        self.object_memo.computed += 1
        return value

    def per_kinds(self, name: str, kinds: tuple[str, ...], compute: Callable[["ClusterState"], T]) -> T:
        """`compute(self)`, a result that reads only the objects of `kinds` (and whatever
        `name` spells out, e.g. a setting), computed once per state and kept across
        evaluations while none of those kinds changed."""
        if name in self._cache:
            return self._cache[name]
        if not self.generations:  # a state built by hand: no store to keep it in
            value = compute(self)
        else:
            generations = tuple(self.generations.get(k) for k in kinds)
            value = self.object_memo.kinds_value(name, generations, lambda: compute(self))
        self._cache[name] = value
        return value

    def changes(self, key: str, since: int) -> tuple[Changed, ...] | None:
        """The objects of kind `key` upserted or deleted after the store's generation
        `since` of that kind, up to this state (see ClusterState.generations); None when
        that is not known (no store, a relist, too far back): recompute from the objects."""
        until = self.generations.get(key)
        if self.change_log is None or until is None:
            return None
        if since == until:
            return ()
        return self.change_log.between(key, since, until, lambda uid: self._held(key, uid))

    def _held(self, key: str, uid: str) -> Any:
        """The record of kind `key` this state holds under `uid` (an index built once per
        state and kind, for the rare change log that lost sight of an older state's record)."""
        held = self._indexes.get(("uids", key))
        if held is None:
            kind = KIND_BY_KEY[key]
            held = self._indexes[("uids", key)] = {uid_of(kind, r): r for r in self.of(key)}
        return held[uid]

    def per_changes(
        self,
        name: str,
        kinds: tuple[str, ...],
        compute: Callable[["ClusterState"], T],
        update: Callable[["ClusterState", T, Mapping[str, tuple[Changed, ...]]], T],
        inputs: tuple = (),
    ) -> T:
        """Like per_kinds, and when some of `kinds` changed since the kept result, brought
        up to date by `update(self, kept, changed)` with the objects changed per kind (only
        the kinds that changed) instead of `compute(self)` again; `compute` when the change
        log cannot say or `inputs` (settings, results of other kinds) differ from the kept
        result's. `update` must return what `compute` would, without altering `kept` (older
        states may still hold it)."""
        if name in self._cache:
            return self._cache[name]
        if not self.generations:
            value = compute(self)
        else:
            memo = self.object_memo
            generations = tuple(self.generations.get(k) for k in kinds)
            kept = memo.kinds_kept(name)
            if kept is not None and kept[0] == (generations, inputs):
                value = kept[1]
            else:
                useful = kept is not None and kept[0][1] == inputs
                changed: dict[str, tuple[Changed, ...]] | None = {} if useful else None
                if kept is not None and useful:
                    for key, before, now in zip(kinds, kept[0][0], generations):
                        if before != now:
                            objects = self.changes(key, before)
                            if objects is None:
                                changed = None
                                break
                            changed[key] = objects
                if changed is None:
                    value = compute(self)
                else:
                    value = update(self, kept[1], changed)
                    memo.updated += 1
                memo.keep_kinds(name, (generations, inputs), value)
        self._cache[name] = value
        return value

    def forgetting(self) -> "ClusterState":
        """The same cluster with nothing computed yet (no per-object memo, no indexes, no
        derived results), as the first evaluation after a start sees it; the judgements
        kept with `remembered` stay."""
        return dataclasses.replace(self, _cache={}, object_memo=ObjectMemo(), _indexes={})

    def remembered(self, name: str) -> dict:
        """A dict kept across evaluations of the same store, for judgements that must not
        change once made (e.g. a migration's cause, fixed when first seen)."""
        return self.memo.setdefault(name, {})

    # One typed accessor per kind keeps the checks readable.
    @property
    def nodes(self) -> tuple[Node, ...]:
        return self.of("nodes")

    @property
    def namespaces(self) -> tuple[Namespace, ...]:
        return self.of("namespaces")

    @property
    def pvcs(self) -> tuple[PersistentVolumeClaim, ...]:
        return self.of("persistentvolumeclaims")

    @property
    def storage_classes(self) -> tuple[StorageClass, ...]:
        return self.of("storageclasses.storage.k8s.io")

    @property
    def vms(self) -> tuple[VirtualMachine, ...]:
        return self.of("virtualmachines.kubevirt.io")

    @property
    def vmis(self) -> tuple[VirtualMachineInstance, ...]:
        return self.of("virtualmachineinstances.kubevirt.io")

    @property
    def migrations(self) -> tuple[VirtualMachineInstanceMigration, ...]:
        return self.of("virtualmachineinstancemigrations.kubevirt.io")

    @property
    def kubevirts(self) -> tuple[KubeVirt, ...]:
        return self.of("kubevirts.kubevirt.io")

    @property
    def migration_policies(self) -> tuple[MigrationPolicy, ...]:
        return self.of("migrationpolicies.migrations.kubevirt.io")

    @property
    def hyperconvergeds(self) -> tuple[HyperConverged, ...]:
        return self.of("hyperconvergeds.hco.kubevirt.io")

    @property
    def data_volumes(self) -> tuple[DataVolume, ...]:
        return self.of("datavolumes.cdi.kubevirt.io")

    @property
    def storage_profiles(self) -> tuple[StorageProfile, ...]:
        return self.of("storageprofiles.cdi.kubevirt.io")

    @property
    def nads(self) -> tuple[NetworkAttachmentDefinition, ...]:
        return self.of("network-attachment-definitions.k8s.cni.cncf.io")

    @property
    def node_network_states(self) -> tuple[NodeNetworkState, ...]:
        return self.of("nodenetworkstates.nmstate.io")

    @property
    def cluster_networks(self) -> tuple[ClusterNetwork, ...]:
        return self.of("networks.config.openshift.io")

    @property
    def pods(self) -> tuple[Pod, ...]:
        return self.of("pods")

    def index(self, key: str) -> dict[tuple[str, str], Any]:
        """(namespace, name) -> record, for one kind; built once and kept while the kind
        does not change."""
        index = self._indexes.get(key)
        if index is None:
            index = self._indexes[key] = self.per_changes(
                f"index {key}",
                (key,),
                lambda s: _index(s.of(key)),
                lambda s, kept, changed: _reindex(key, kept, changed[key]),
            )
        return index

    def get(self, key: str, namespace: str, name: str) -> Any | None:
        index = self._indexes.get(key)
        if index is None:
            index = self.index(key)
        return index.get((namespace, name))

    @cached_property
    def total_objects(self) -> int:
        return sum(len(v) for v in self.objects.values())


def _index(records: tuple[Any, ...]) -> dict[tuple[str, str], Any]:
    return {(r.metadata.namespace, r.metadata.name): r for r in records}


def _reindex(key: str, kept: dict[tuple[str, str], Any], changed: tuple[Changed, ...]) -> dict[tuple[str, str], Any]:
    """`_index` of the kind after `changed`, from the index before."""
    index = dict(kept)
    kind = KIND_BY_KEY[key]
    for c in changed:
        where = (c.namespace, c.name)
        if c.record is not None:
            index[where] = c.record
        elif (held := index.get(where)) is not None and uid_of(kind, held) == c.uid:
            del index[where]
    return index


def kind(key: str) -> KindInfo:
    return KIND_BY_KEY[key]
