"""The migration checks' kept results (the VMIMs' causes, counts and finished list, the
per-node series) brought up to date per change give exactly what a full evaluation of the
same state at the same time gives: VMIMs changing phase, end, source node and cause
markers, added, deleted and put back, VMIs moving, nodes cordoned, and the clock moving
the post-rebalance window open and shut."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ov_exporter.checks import CHECKS
from ov_exporter.config import Config, RebalanceWindow
from ov_exporter.domain.migrations import EVACUATION_ANNOTATION, REBALANCE_ANNOTATION, WORKLOAD_UPDATE_ANNOTATION
from ov_exporter.events import ClockSet, Deleted, Upserted
from ov_exporter.records import KIND_BY_KEY
from ov_exporter.records.kubevirt import VMIMStatus
from ov_exporter.runner import Reuse, evaluate
from ov_exporter.sources import DemoSource
from ov_exporter.store import Store, uid_of

IDS = {"migration_readiness", "rebalance_watch", "migration_capacity", "rwo_vm_disks", "scheduling_constraints"}
SPECS = [s for s in CHECKS if s.id in IDS]
VMIMS = KIND_BY_KEY["virtualmachineinstancemigrations.kubevirt.io"]
VMIS = KIND_BY_KEY["virtualmachineinstances.kubevirt.io"]
NODES = KIND_BY_KEY["nodes"]
CAPTURED = datetime(2025, 1, 20, 9, 30, tzinfo=timezone.utc)
CONFIGS = (
    Config(),
    Config(
        rebalance_watch_window=24,
        rebalance_windows=[RebalanceWindow(CAPTURED - timedelta(days=3), CAPTURED - timedelta(days=1))],
    ),
)


def _demo() -> Store:
    store = Store()
    DemoSource().load(store.apply)
    return store


DEMO = _demo().state()
PHASES = ("", "Pending", "Scheduling", "Running", "Succeeded", "Failed")
MARKERS = (
    {},
    {REBALANCE_ANNOTATION: "true"},
    {WORKLOAD_UPDATE_ANNOTATION: ""},
    {EVACUATION_ANNOTATION: DEMO.nodes[0].metadata.name},
)


def _vmim_changed(vmim, how: int, arg: int):
    status = vmim.status or VMIMStatus()
    if how == 0:  # a new phase (in flight without a migration state: the source node is its VMI's)
        status = msgspec.structs.replace(status, phase=PHASES[arg % len(PHASES)])
        if arg >= len(PHASES):
            status = msgspec.structs.replace(status, migration_state=None)
        return msgspec.structs.replace(vmim, status=status)
    if how == 1:  # its migration state ends earlier or later, loses its source node, or goes
        ms = status.migration_state
        if ms is None or arg % 4 == 3:
            return msgspec.structs.replace(vmim, status=msgspec.structs.replace(status, migration_state=None))
        shift = timedelta(hours=(arg % 4) * 20 - 30)
        ms = msgspec.structs.replace(
            ms,
            end_timestamp=(ms.end_timestamp or CAPTURED) + shift,
            source_node="" if arg % 2 else ms.source_node,  # omitted (omitempty): decoded as ""
        )
        return msgspec.structs.replace(vmim, status=msgspec.structs.replace(status, migration_state=ms))
    if how == 2:  # created at another time (a declared window may hold it)
        meta = msgspec.structs.replace(vmim.metadata, creation_timestamp=CAPTURED - timedelta(hours=arg * 7 % 100))
        return msgspec.structs.replace(vmim, metadata=meta)
    meta = msgspec.structs.replace(vmim.metadata, annotations=dict(MARKERS[arg % len(MARKERS)]))
    return msgspec.structs.replace(vmim, metadata=meta)


def _apply(store: Store, step: tuple[int, int, int, int]) -> None:
    what, index, how, arg = step
    state = store.state()
    if what == 0:  # a VMIM changed
        vmims = state.migrations
        if vmims:
            store.apply(Upserted(VMIMS, _vmim_changed(vmims[index % len(vmims)], how, arg)))
    elif what == 1:  # a VMIM deleted, put back, or a copy of one added
        vmims = DEMO.migrations
        vmim = vmims[index % len(vmims)]
        if how % 3 == 0:
            store.apply(Deleted(VMIMS, uid_of(VMIMS, vmim)))
        elif how % 3 == 1:
            store.apply(Upserted(VMIMS, vmim))
        else:
            meta = msgspec.structs.replace(vmim.metadata, name=f"{vmim.metadata.name}-{arg}", uid=f"copy-{arg}")
            store.apply(Upserted(VMIMS, _vmim_changed(msgspec.structs.replace(vmim, metadata=meta), how, arg)))
    elif what == 2:  # a VMI moved or stopped
        vmi = state.vmis[index % len(state.vmis)]
        if vmi.status is not None:
            status = msgspec.structs.replace(
                vmi.status,
                node_name=state.nodes[arg % len(state.nodes)].metadata.name,
                phase=("Running", "Scheduled", "Succeeded")[how % 3],
            )
            store.apply(Upserted(VMIS, msgspec.structs.replace(vmi, status=status)))
    elif what == 3:  # a node cordoned or uncordoned, its allocatable gone or back, its VM label flipped
        node = state.nodes[index % len(state.nodes)]
        if how < 2:
            spec = msgspec.structs.replace(node.spec, unschedulable=bool(how)) if node.spec is not None else None
            node = msgspec.structs.replace(node, spec=spec)
        elif how == 2 and node.status is not None:
            allocatable = None if arg % 2 else {"cpu": 16.0 + arg, "memory": 2.0**36, "pods": 250.0}
            node = msgspec.structs.replace(node, status=msgspec.structs.replace(node.status, allocatable=allocatable))
        else:
            labels = {**(node.metadata.labels or {}), "kubevirt.io/schedulable": "true" if arg % 2 else "false"}
            node = msgspec.structs.replace(node, metadata=msgspec.structs.replace(node.metadata, labels=labels))
        store.apply(Upserted(NODES, node))
    else:  # the clock moved
        at = (CAPTURED + timedelta(hours=(arg % 12) * 6 - 24)).timestamp()
        store.apply(ClockSet(lambda: at, "test"))


steps = st.lists(
    st.tuples(st.integers(0, 4), st.integers(0, 50), st.integers(0, 3), st.integers(0, 11)), min_size=1, max_size=15
)


def _outcome(evaluation) -> list:
    return [(r.spec.id, r.status, r.error, r.findings, r.samples, r.dropped) for r in evaluation.results]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps, st.integers(1, 3), st.sampled_from(CONFIGS))
def test_migration_checks_after_changes_equal_a_full_evaluation(changes, every, config):
    store = _demo()
    reuse = Reuse(clock=itertools.count(step=86_400).__next__)
    evaluate(store.state(), config, SPECS, reuse=reuse)
    for at in range(0, len(changes), every):
        for step in changes[at : at + every]:
            _apply(store, step)
        state = store.state()
        kept = evaluate(state, config, SPECS, reuse=reuse)
        # A fresh store's memo: the causes fixed when first seen stay (state.remembered).
        fresh = evaluate(state.forgetting(), config, SPECS)
        assert _outcome(kept) == _outcome(fresh)
