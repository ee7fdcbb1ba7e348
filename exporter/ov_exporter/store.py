"""Objects by kind and UID, fed by a source; `state()` freezes them for the checks.

Sources call `apply` for every object event (a list/watch source later does the same
thing per watch event), `set_samples` for Prometheus samples, `problem` for every
file or object they had to skip. Checks only ever see a `ClusterState`.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Iterable

from .records import KIND_BY_KEY, KINDS, KindInfo


@dataclass(frozen=True, slots=True)
class Problem:
    """Something a source skipped: `where` is a file path or an object reference."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(frozen=True, slots=True)
class MetricSample:
    labels: dict[str, str]
    value: float
    timestamp: float | None = None


Samples = dict[str, list[MetricSample]]  # metric name -> samples


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
            age = "" if self.last_contact is None else \
                f" (last contact {(now if now is not None else time.time()) - self.last_contact:.0f} s ago)"
            return f"{state}: {self.error}{age}"
        return ""


def uid_of(kind: KindInfo, record: Any) -> str:
    """UID, or a stable stand-in for dumps that strip it (Insights archives)."""
    meta = record.metadata
    return meta.uid or f"{kind.key}/{meta.namespace}/{meta.name}"


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
        # (kind, namespace, name) -> (file, line): where a file source found the object
        # (line 0 = unknown). Findings point there in SARIF and JUnit reports.
        self._origins: dict[tuple[str, str, str], tuple[str, int]] = {}
        self.generation = 0
        self.synced = False
        self.loaded_at: float | None = None
        # The "now" checks judge time windows at: live sources and snapshots without a capture
        # time: time.time; snapshots: their capture time; `check --at`: that time.
        self.clock: Callable[[], float] | None = None
        self.clock_origin = ""  # what the clock is, for reports: "wall clock", "captured-at file", ...
        # Judgements a check must keep across evaluations (e.g. a migration's cause, fixed when
        # first seen), keyed by check; shared by every state() of this store.
        self.memo: dict[str, dict] = {}

    def apply(self, kind: KindInfo, event: str, record: Any) -> None:
        """event: ADDED | MODIFIED | DELETED (watch event types)."""
        uid = uid_of(kind, record)
        with self._lock:
            if event == "DELETED":
                self._objects[kind.key].pop(uid, None)
            else:
                self._objects[kind.key][uid] = record
            self.generation += 1

    def locate(self, kind: str, namespace: str, name: str, file: str, line: int) -> None:
        with self._lock:
            self._origins[(kind, namespace, name)] = (file, line)

    def origin(self, kind: str, namespace: str, name: str) -> tuple[str, int] | None:
        with self._lock:
            return self._origins.get((kind, namespace, name))

    def remove(self, kind: KindInfo, uid: str) -> None:
        with self._lock:
            if self._objects[kind.key].pop(uid, None) is not None:
                self.generation += 1

    def replace(self, kind: KindInfo, records: Iterable[Any]) -> None:
        """Swap in a kind's full list (after a LIST): objects gone from it leave the store."""
        fresh = {uid_of(kind, r): r for r in records}
        with self._lock:
            self._objects[kind.key] = fresh
            self.generation += 1

    def set_samples(self, samples: Samples | None, origin: str, error: str = "") -> None:
        with self._lock:
            self._samples, self._samples_origin, self._samples_error = samples, origin, error
            self.generation += 1

    def problem(self, where: str, message: str) -> None:
        with self._lock:
            self._problems[where] = message

    def clear_problem(self, where: str) -> None:
        with self._lock:
            self._problems.pop(where, None)

    def replace_problems(self, prefix: str, problems: dict[str, str]) -> None:
        """After a full LIST: the problems starting with `prefix` are exactly these."""
        with self._lock:
            for where in [w for w in self._problems if w.startswith(prefix)]:
                del self._problems[where]
            self._problems.update(problems)

    # Source health, per kind (see KindStatus.state).

    def contact(self, key: str) -> None:
        """A successful answer for kind `key`: errors and a 401 are over."""
        st = self.kinds[key]
        st.last_contact = time.time()
        st.error, st.error_since, st.unauthorized = "", None, ""

    def kind_error(self, key: str, message: str) -> None:
        st = self.kinds[key]
        if not st.error:
            st.error_since = time.time()
        st.error = message

    def source_failed(self, message: str, unauthorized: bool = False) -> None:
        """The whole source failed (no connection, credentials rejected): every kind it
        could read is affected."""
        for key, st in self.kinds.items():
            if st.absent:
                continue
            if unauthorized:
                st.unauthorized = message
            else:
                self.kind_error(key, message)

    def settled(self) -> bool:
        """Every kind has an answer: listed, absent, denied or failing."""
        return all(st.synced or st.absent or st.forbidden or st.unauthorized or st.error
                   for st in self.kinds.values())

    def ignored(self, reason: str, count: int = 1) -> None:
        with self._lock:
            self._ignored[reason] = self._ignored.get(reason, 0) + count

    def mark_synced(self) -> None:
        with self._lock:
            self.synced = True
            self.loaded_at = time.time()
            self.generation += 1

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
            unavailable = {key: reason for key, st in self.kinds.items()
                           if st.state(wall) in ("stale", "failed", "unauthorized") and (reason := st.reason(wall))}
            return ClusterState(objects, self._samples, self._samples_origin, self._samples_error, absent, forbidden,
                                now=self.clock() if self.clock is not None else None, memo=self.memo,
                                unavailable=unavailable)


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

    @classmethod
    def from_records(cls, records: Iterable[tuple[KindInfo, Any]], samples: Samples | None = None,
                     now: float | None = None) -> "ClusterState":
        store = Store()
        if now is not None:
            store.clock = lambda: now
        for kind, record in records:
            store.apply(kind, "ADDED", record)
        store.set_samples(samples, "test")
        return store.state()

    def of(self, key: str) -> tuple[Any, ...]:
        return self.objects.get(key, ())

    # One accessor per kind keeps the checks readable.
    @property
    def nodes(self): return self.of("nodes")
    @property
    def namespaces(self): return self.of("namespaces")
    @property
    def pvcs(self): return self.of("persistentvolumeclaims")
    @property
    def storage_classes(self): return self.of("storageclasses.storage.k8s.io")
    @property
    def vms(self): return self.of("virtualmachines.kubevirt.io")
    @property
    def vmis(self): return self.of("virtualmachineinstances.kubevirt.io")
    @property
    def migrations(self): return self.of("virtualmachineinstancemigrations.kubevirt.io")
    @property
    def kubevirts(self): return self.of("kubevirts.kubevirt.io")
    @property
    def migration_policies(self): return self.of("migrationpolicies.migrations.kubevirt.io")
    @property
    def hyperconvergeds(self): return self.of("hyperconvergeds.hco.kubevirt.io")
    @property
    def data_volumes(self): return self.of("datavolumes.cdi.kubevirt.io")
    @property
    def storage_profiles(self): return self.of("storageprofiles.cdi.kubevirt.io")
    @property
    def nads(self): return self.of("network-attachment-definitions.k8s.cni.cncf.io")
    @property
    def node_network_states(self): return self.of("nodenetworkstates.nmstate.io")
    @property
    def cluster_networks(self): return self.of("networks.config.openshift.io")

    def index(self, key: str) -> dict[tuple[str, str], Any]:
        """(namespace, name) -> record, for one kind; built once per state."""
        cached = self._cache.get(key)
        if cached is None:
            cached = {(r.metadata.namespace, r.metadata.name): r for r in self.of(key)}
            self._cache[key] = cached
        return cached

    def get(self, key: str, namespace: str, name: str) -> Any | None:
        return self.index(key).get((namespace, name))

    @cached_property
    def total_objects(self) -> int:
        return sum(len(v) for v in self.objects.values())


def kind(key: str) -> KindInfo:
    return KIND_BY_KEY[key]
