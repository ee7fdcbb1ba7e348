"""The store's change log (ClusterState.changes): each state is told the objects changed
since a generation with the records as that state holds them, even when the objects have
changed again since it was taken, and the log keeps no version of a record the store has
replaced or dropped."""

from __future__ import annotations

import gc

import msgspec
from ov_exporter.events import Deleted, Upserted
from ov_exporter.records import KIND_BY_KEY
from ov_exporter.sources import DemoSource
from ov_exporter.store import CHANGE_LOG_LIMIT, Store, uid_of

VMIS = "virtualmachineinstances.kubevirt.io"


def _demo() -> Store:
    store = Store()
    DemoSource().load(store.apply)
    return store


def _relabelled(record, value: str):
    meta = msgspec.structs.replace(record.metadata, labels={**(record.metadata.labels or {}), "ov-test/v": value})
    return msgspec.structs.replace(record, metadata=meta)


def _reachable(root) -> set[int]:
    """ids of every object reachable from `root` through the garbage collector's referents."""
    seen: set[int] = set()
    todo = [root]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        todo.extend(gc.get_referents(obj))
    return seen


def test_each_state_is_told_the_records_it_holds_though_they_changed_again_since():
    store = _demo()
    kind = KIND_BY_KEY[VMIS]
    first, second, third = store.state().vmis[:3]
    since = store.state().generations[VMIS]
    store.apply(Upserted(kind, _relabelled(first, "1")))
    store.apply(Deleted(kind, uid_of(kind, second)))
    store.apply(Upserted(kind, _relabelled(third, "1")))
    older = store.state()
    # After `older` was taken: the first changes again, the third goes.
    store.apply(Upserted(kind, _relabelled(first, "2")))
    store.apply(Deleted(kind, uid_of(kind, third)))
    newer = store.state()

    told = {c.uid: c for c in older.changes(VMIS, since)}
    held = {uid_of(kind, r): r for r in older.vmis}
    assert told[uid_of(kind, first)].record is held[uid_of(kind, first)]
    assert told[uid_of(kind, first)].record.metadata.labels["ov-test/v"] == "1"
    assert told[uid_of(kind, second)].record is None
    assert told[uid_of(kind, third)].record is held[uid_of(kind, third)]

    told = {c.uid: c for c in newer.changes(VMIS, since)}
    assert told[uid_of(kind, first)].record.metadata.labels["ov-test/v"] == "2"
    assert told[uid_of(kind, first)].record is newer.get(VMIS, first.metadata.namespace, first.metadata.name)
    assert told[uid_of(kind, second)].record is None and told[uid_of(kind, third)].record is None
    assert newer.changes(VMIS, newer.generations[VMIS]) == ()


def test_an_object_deleted_and_back_is_named_deleted_then_upserted():
    store = _demo()
    kind = KIND_BY_KEY[VMIS]
    vmi = store.state().vmis[0]
    since = store.state().generations[VMIS]
    store.apply(Deleted(kind, uid_of(kind, vmi)))
    store.apply(Upserted(kind, vmi))
    told = store.state().changes(VMIS, since)
    assert [(c.uid, c.record is None) for c in told] == [(uid_of(kind, vmi), True), (uid_of(kind, vmi), False)]
    assert told[1].record is vmi


def test_the_log_keeps_no_record_the_store_replaced_or_dropped():
    store = _demo()
    kind = KIND_BY_KEY[VMIS]
    vmi, gone = store.state().vmis[:2]
    since = store.state().generations[VMIS]
    versions = [_relabelled(vmi, str(n)) for n in range(50)]
    for version in versions:
        store.apply(Upserted(kind, version))
    store.apply(Deleted(kind, uid_of(kind, gone)))
    reachable = _reachable(store.changes)
    assert id(versions[-1]) in reachable  # the one the store holds
    assert not any(id(v) in reachable for v in versions[:-1]), "the change log keeps records the store replaced"
    assert id(vmi) not in reachable and id(gone) not in reachable
    assert [c.record for c in store.state().changes(VMIS, since) if c.uid == uid_of(kind, vmi)] == [versions[-1]]


def test_too_many_changes_since_cannot_be_told():
    store = _demo()
    kind = KIND_BY_KEY[VMIS]
    vmi = store.state().vmis[0]
    since = store.state().generations[VMIS]
    for n in range(CHANGE_LOG_LIMIT + 1):
        store.apply(Upserted(kind, _relabelled(vmi, str(n % 3))))
    state = store.state()
    assert state.changes(VMIS, since) is None
    recent = state.changes(VMIS, state.generations[VMIS] - 1)
    assert [c.record for c in recent] == [state.get(VMIS, vmi.metadata.namespace, vmi.metadata.name)]
