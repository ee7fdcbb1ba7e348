"""rebalance_watch: the 24-48 h after the last migration (anti-pattern 19)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest
import yaml
from ov_exporter import runner
from ov_exporter.checks import rebalance_watch
from ov_exporter.config import load_config
from ov_exporter.domain.migrations import causes
from ov_exporter.errors import ConfigError
from ov_exporter.events import ClockSet, Upserted
from ov_exporter.model import ObjectRef, Severity, Status
from ov_exporter.store import Store

from . import builders as b
from .builders import (
    REBALANCE,
    WORKLOAD_UPDATE,
    _meta,
    config,
    evacuation,
    findings,
    node,
    record_of,
    series,
    state,
    vmi,
)

NOW = datetime(2025, 1, 20, 9, 30, tzinfo=timezone.utc)
FMT = "%Y-%m-%dT%H:%M:%SZ"


def ago(hours: float) -> str:
    return (NOW - timedelta(hours=hours)).strftime(FMT)


def vmim(
    name: str,
    vmi_name: str,
    phase: str,
    hours_ago: float,
    ns: str = "vms",
    *,
    with_state: bool = True,
    annotations: dict | None = None,
) -> dict:
    end = ago(hours_ago)
    status: dict = {
        "phase": phase,
        "phaseTransitionTimestamps": [
            {"phase": "Pending", "phaseTransitionTimestamp": ago(hours_ago + 0.1)},
            {"phase": "Running", "phaseTransitionTimestamp": ago(hours_ago + 0.05)},
        ],
    }
    if phase in ("Succeeded", "Failed"):
        status["phaseTransitionTimestamps"].append({"phase": phase, "phaseTransitionTimestamp": end})
        if with_state:
            status["migrationState"] = {
                "completed": True,
                "failed": phase == "Failed",
                "endTimestamp": end,
                "startTimestamp": ago(hours_ago + 0.05),
                "sourceNode": "worker-1",
                "targetNode": "worker-0",
            }
    meta = _meta(name, ns, annotations=annotations)
    meta["creationTimestamp"] = ago(hours_ago + 0.1)
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstanceMigration",
        "metadata": meta,
        "spec": {"vmiName": vmi_name},
        "status": status,
    }


def run(*objects, now: datetime | None = NOW, **overrides):
    st = state(*objects)
    if now is not None:
        st = dataclasses.replace(st, now=now.timestamp())
    return rebalance_watch.evaluate(st, config(**overrides))


BASE = (node("worker-0"), node("worker-1"), vmi("a"), vmi("b", node="worker-1"))


def test_window_opens_after_the_last_migration_and_closes_after_the_configured_hours():
    out = run(*BASE, vmim("m1", "a", "Succeeded", 47))
    assert series(out, "ov_rebalance_watch_active") == {(): 1}
    assert series(out, "ov_rebalance_last_migration_timestamp_seconds") == {(): (NOW - timedelta(hours=47)).timestamp()}
    assert series(out, "ov_rebalance_migrations_succeeded") == {(): 1}
    out = run(*BASE, vmim("m1", "a", "Succeeded", 47), **{"rebalance-watch-window": 24})
    assert series(out, "ov_rebalance_watch_active") == {(): 0}
    assert series(out, "ov_rebalance_watch_window_seconds") == {(): 24 * 3600}
    assert series(out, "ov_rebalance_migrations_succeeded") == {(): 0}


@pytest.mark.parametrize("hours", [23, 49, 0])
def test_window_is_bounded(hours):
    with pytest.raises(ConfigError, match="rebalance-watch-window"):
        config(**{"rebalance-watch-window": hours})


def test_failed_migration_in_the_window_is_a_warning_and_an_old_one_is_not():
    out = run(*BASE, vmim("ok", "a", "Succeeded", 1), vmim("bad", "b", "Failed", 10), vmim("old", "b", "Failed", 60))
    assert series(out, "ov_rebalance_migrations_failed") == {(): 1}
    assert series(out, "ov_rebalance_failed_migration") == {("vms", "bad", "b", "manual", "worker-1"): 1}
    [f] = findings(out, Severity.WARNING)
    assert f.obj == ObjectRef("VirtualMachineInstanceMigration", "vms", "bad")


def test_vm_migrated_more_than_once_in_the_window():
    out = run(
        *BASE,
        vmim("m1", "a", "Succeeded", 30),
        vmim("m2", "a", "Succeeded", 5),
        vmim("m3", "b", "Succeeded", 60),
        vmim("m4", "b", "Succeeded", 2),
    )
    assert series(out, "ov_rebalance_vm_migrations") == {("vms", "a", "worker-0", "manual"): 2}
    assert [f.obj for f in findings(out, Severity.WARNING)] == [ObjectRef("VirtualMachineInstance", "vms", "a")]


def test_final_phase_timestamp_stands_in_for_a_missing_migration_state():
    out = run(*BASE, vmim("m1", "a", "Succeeded", 3, with_state=False))
    assert series(out, "ov_rebalance_last_migration_timestamp_seconds") == {(): (NOW - timedelta(hours=3)).timestamp()}


def test_per_node_allocation_spread_and_uneven_node_during_the_watch():
    nodes = [
        node("worker-0", cpu="10", memory="100Gi"),
        node("worker-1", cpu="10", memory="100Gi"),
        node("worker-2", cpu="10", memory="100Gi"),
        node("cp-0", control_plane=True, schedulable=False),
    ]
    vmis = [
        vmi("big", node="worker-0", memory="90Gi", requests_cpu="4"),
        vmi("small", node="worker-1", memory="10Gi", requests_cpu="1"),
    ]
    out = run(*nodes, *vmis, vmim("m1", "small", "Succeeded", 1))
    alloc = series(out, "ov_node_vm_allocation_ratio")
    assert alloc[("worker-0", "memory")] == pytest.approx(0.9)
    assert alloc[("worker-2", "cpu")] == 0
    assert ("cp-0", "cpu") not in alloc
    assert series(out, "ov_node_running_vmis") == {("worker-0",): 1, ("worker-1",): 1, ("worker-2",): 0}
    assert series(out, "ov_rebalance_allocation_spread_ratio")[("memory",)] == pytest.approx(0.9)
    assert series(out, "ov_rebalance_allocation_mean_ratio")[("cpu",)] == pytest.approx(5 / 30)
    [f] = findings(out, Severity.INFO)
    assert f.obj == ObjectRef("Node", "", "worker-0") and "memory" in f.message
    # Outside the window the same imbalance is only a gauge.
    out = run(*nodes, *vmis, vmim("m1", "small", "Succeeded", 100))
    assert findings(out) == [] and series(out, "ov_rebalance_node_above_mean_ratio") == {}


def test_thresholds_come_from_the_configuration_and_are_published_for_alerts_and_dashboards():
    nodes = [node("worker-0", cpu="10", memory="100Gi"), node("worker-1", cpu="10", memory="100Gi")]
    vmis = [vmi("big", node="worker-0", memory="80Gi", requests_cpu="1"), vmi("small", node="worker-1", memory="10Gi")]
    objects = (*nodes, *vmis, vmim("m1", "small", "Succeeded", 1))
    # worker-0's memory is 0.35 above the mean of 0.45: far above it at the default 0.25, not at 0.4.
    assert [f.obj.name for f in findings(run(*objects), Severity.INFO)] == ["worker-0"]
    out = run(*objects, **{"thresholds.node-above-mean": 0.4, "thresholds.node-cpu-overloaded": 0.7})
    assert findings(out, Severity.INFO) == []
    assert series(out, "ov_rebalance_watch_threshold_ratio") == {
        ("node_above_mean",): 0.4,
        ("node_cpu_overloaded",): 0.7,
        ("node_memory_overloaded",): 0.85,
        ("spread_margin",): 0.1,
    }


def test_cpu_request_falls_back_to_vcpus_over_the_allocation_ratio():
    out = run(node("worker-0", cpu="10"), vmi("a", cores=4, memory="1Gi"))
    assert series(out, "ov_node_vm_allocation_ratio")[("worker-0", "cpu")] == pytest.approx(4 / 10 / 10)


def test_without_a_clock_the_wall_clock_judges_not_the_newest_event():
    """A dump whose newest migration is 11 days old reads closed: "now" is never the newest event."""
    old = datetime.now(timezone.utc) - timedelta(days=11)
    migration = vmim("m1", "a", "Succeeded", 0)
    migration["status"]["migrationState"]["endTimestamp"] = old.strftime(FMT)
    out = run(*BASE, migration, now=None)
    assert series(out, "ov_rebalance_watch_active") == {(): 0}
    assert series(out, "ov_rebalance_evaluation_timestamp_seconds")[()] > old.timestamp() + 10 * 86400


# ---------------------------------------------------------------- causes


def window_config(tmp_path, start: str, end: str):
    path = tmp_path / "config.yaml"
    path.write_text(f"rebalance-windows:\n- start: {start}\n  end: {end}\n")
    return load_config(path)


def test_each_cause_from_upstream_annotations_and_the_source_node(tmp_path):
    nodes = (node("worker-0"), node("worker-1"), node("cordoned", cordoned=True))
    migrations = [
        b.vmim("wu", "a", "Succeeded", annotations=WORKLOAD_UPDATE),
        b.vmim("drain", "a", "Succeeded", annotations=evacuation("cordoned")),
        b.vmim("gone", "a", "Succeeded", annotations=evacuation("removed-node")),  # drained, then deleted
        b.vmim("desched", "a", "Succeeded", annotations=evacuation("worker-1")),
        # KubeVirt >= 1.7 (MigrationPriorityQueue) tells the two apart by spec.priority.
        b.vmim("desched-prio", "a", "Succeeded", annotations=evacuation("cordoned"), priority="system-maintenance"),
        b.vmim("drain-prio", "a", "Succeeded", annotations=evacuation("worker-1"), priority="system-critical"),
        b.vmim("declared", "a", "Running", annotations=REBALANCE),
        b.vmim("in-window", "a", "Pending", created=ago(2)),
        b.vmim("manual", "a", "Failed", created=ago(5)),
        b.vmim("queued", "a", "Scheduling"),
    ]
    cfg = window_config(tmp_path, ago(3), ago(1))
    st = state(*nodes, vmi("a"), *migrations, now=NOW.timestamp())
    by_name = {m.metadata.name: causes(st, cfg)[m.metadata.uid] for m in st.migrations}
    assert by_name == {
        "wu": "workload_update",
        "drain": "drain",
        "gone": "drain",
        "desched": "descheduler",
        "desched-prio": "descheduler",
        "drain-prio": "drain",
        "declared": "declared",
        "in-window": "declared",
        "manual": "manual",
        "queued": "manual",
    }
    out = rebalance_watch.evaluate(st, cfg)
    counts = series(out, "ov_migrations")
    assert len(counts) == 5 * 4 and sum(counts.values()) == len(migrations)
    assert counts[("drain", "succeeded")] == 3 and counts[("declared", "pending")] == 1
    assert counts[("declared", "running")] == 1 and counts[("manual", "pending")] == 1
    assert counts[("workload_update", "failed")] == 0


def test_a_drain_stays_a_drain_after_the_node_is_uncordoned():
    store = Store()
    for obj in (
        node("worker-1", cordoned=True),
        vmi("a"),
        vmim("m1", "a", "Succeeded", 2, annotations=evacuation("worker-1")),
    ):
        kind, record = record_of(obj)
        store.apply(Upserted(kind, record))
    store.apply(ClockSet(lambda: NOW.timestamp(), "test"))
    out = rebalance_watch.evaluate(store.state(), config())
    assert series(out, "ov_migrations")[("drain", "succeeded")] == 1
    kind, record = record_of(node("worker-1"))
    store.apply(Upserted(kind, record))  # uncordoned after the maintenance
    out = rebalance_watch.evaluate(store.state(), config())
    assert series(out, "ov_migrations")[("drain", "succeeded")] == 1
    assert series(out, "ov_rebalance_watch_active") == {(): 0}
    # The same VMIM met first on a schedulable node is a descheduler eviction (fresh store, no memory).
    fresh = state(
        node("worker-1"),
        vmi("a"),
        vmim("m1", "a", "Succeeded", 2, annotations=evacuation("worker-1")),
        now=NOW.timestamp(),
    )
    assert series(rebalance_watch.evaluate(fresh, config()), "ov_rebalance_watch_active") == {(): 1}


def test_a_workload_update_or_a_drain_never_opens_the_watch():
    cordoned = node("worker-1", cordoned=True)
    upgrade = vmim("wu", "a", "Succeeded", 1, annotations=WORKLOAD_UPDATE)
    drain = vmim("ev", "b", "Failed", 2, annotations=evacuation("worker-1"))
    out = run(node("worker-0"), cordoned, vmi("a"), vmi("b", node="worker-1"), upgrade, drain)
    assert series(out, "ov_rebalance_watch_active") == {(): 0}
    assert series(out, "ov_rebalance_last_migration_timestamp_seconds") == {}
    assert series(out, "ov_rebalance_start_timestamp_seconds") == {}
    assert findings(out) == []
    counts = series(out, "ov_migrations")
    assert (counts[("workload_update", "succeeded")], counts[("drain", "failed")]) == (1, 1)
    # A manual migration opens it; the upgrade and the drain inside it are neither repeats nor failures.
    out = run(
        node("worker-0"),
        cordoned,
        vmi("a"),
        vmi("b", node="worker-1"),
        upgrade,
        drain,
        vmim("m1", "a", "Succeeded", 30),
    )
    assert series(out, "ov_rebalance_watch_active") == {(): 1}
    assert series(out, "ov_rebalance_last_migration_timestamp_seconds") == {(): (NOW - timedelta(hours=30)).timestamp()}
    assert series(out, "ov_rebalance_migrations_succeeded") == {(): 1}
    assert series(out, "ov_rebalance_migrations_failed") == {(): 0}
    assert series(out, "ov_rebalance_vm_migrations") == {} and findings(out) == []


def test_the_wave_start_is_the_earliest_rebalancing_migration_in_the_window():
    out = run(
        *BASE,
        vmim("old", "a", "Succeeded", 60),
        vmim("m1", "a", "Succeeded", 20),
        vmim("m2", "b", "Succeeded", 5),
        vmim("wu", "b", "Succeeded", 30, annotations=WORKLOAD_UPDATE),
    )
    # m1's migrationState.startTimestamp: 20.05 h ago; "old" ended before the window, "wu" is an upgrade.
    assert series(out, "ov_rebalance_start_timestamp_seconds") == {(): (NOW - timedelta(hours=20.05)).timestamp()}
    assert series(out, "ov_rebalance_last_migration_timestamp_seconds") == {(): (NOW - timedelta(hours=5)).timestamp()}


def test_a_declared_window_opens_the_watch_at_its_end(tmp_path):
    st = state(*BASE, now=NOW.timestamp())
    out = rebalance_watch.evaluate(st, window_config(tmp_path, ago(14), ago(10)))
    assert series(out, "ov_rebalance_watch_active") == {(): 1}  # 10 h after its end, no migration needed
    out = rebalance_watch.evaluate(st, window_config(tmp_path, ago(60), ago(50)))
    assert series(out, "ov_rebalance_watch_active") == {(): 0}
    # A workload update created inside a declared window is still an upgrade, and keeps it closed.
    st = state(*BASE, vmim("wu", "a", "Failed", 55, annotations=WORKLOAD_UPDATE), now=NOW.timestamp())
    out = rebalance_watch.evaluate(st, window_config(tmp_path, ago(60), ago(50)))
    assert series(out, "ov_migrations")[("workload_update", "failed")] == 1
    assert series(out, "ov_rebalance_watch_active") == {(): 0}


@pytest.mark.parametrize(
    "window, message",
    [
        (
            {"start": "2025-01-20T10:00:00Z", "end": "2025-01-20T09:00:00Z"},
            r"rebalance-windows\[0\]: end .* after start",
        ),
        ({"start": "2025-01-20 10:00:00", "end": "2025-01-20T11:00:00Z"}, r"rebalance-windows\[0\]\.start"),
        ({"start": "yesterday", "end": "2025-01-20T11:00:00Z"}, r"rebalance-windows\[0\]\.start"),
        ({"start": "2025-01-20T10:00:00Z"}, r"end.*rebalance-windows\[0\]"),
    ],
)
def test_rebalance_windows_are_validated_naming_the_key(tmp_path, window, message):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"rebalance-windows": [window]}))
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_no_migration_no_window():
    out = run(*BASE)
    assert series(out, "ov_rebalance_watch_active") == {(): 0}
    assert series(out, "ov_rebalance_last_migration_timestamp_seconds") == {}
    assert findings(out) == []


def test_not_applicable_and_store_clock():
    result = runner.evaluate(state(node("worker-0")), config()).result("rebalance_watch")
    assert result.status is Status.NOT_APPLICABLE
    from ov_exporter.store import Store

    store = Store()
    assert store.state().now is None
    store.apply(ClockSet(lambda: 1234.0, "test"))
    assert store.state().now == 1234.0
