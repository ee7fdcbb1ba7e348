"""rebalance_watch: the 24-48 h after the last migration (anti-pattern 19)."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest

from ov_exporter import registry
from ov_exporter.checks import rebalance_watch
from ov_exporter.errors import ConfigError
from ov_exporter.model import ObjectRef, Severity, Status

from .builders import _meta, config, findings, node, series, state, vmi

NOW = datetime(2025, 1, 20, 9, 30, tzinfo=timezone.utc)
FMT = "%Y-%m-%dT%H:%M:%SZ"


def ago(hours: float) -> str:
    return (NOW - timedelta(hours=hours)).strftime(FMT)


def vmim(name: str, vmi_name: str, phase: str, hours_ago: float, ns: str = "vms", *,
         with_state: bool = True) -> dict:
    end = ago(hours_ago)
    status: dict = {"phase": phase, "phaseTransitionTimestamps": [
        {"phase": "Pending", "phaseTransitionTimestamp": ago(hours_ago + 0.1)},
        {"phase": "Running", "phaseTransitionTimestamp": ago(hours_ago + 0.05)}]}
    if phase in ("Succeeded", "Failed"):
        status["phaseTransitionTimestamps"].append({"phase": phase, "phaseTransitionTimestamp": end})
        if with_state:
            status["migrationState"] = {"completed": True, "failed": phase == "Failed", "endTimestamp": end,
                                        "startTimestamp": ago(hours_ago + 0.05), "sourceNode": "worker-1",
                                        "targetNode": "worker-0"}
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
            "metadata": _meta(name, ns), "spec": {"vmiName": vmi_name}, "status": status}


def run(*objects, now: datetime | None = NOW, **overrides):
    st = state(*objects)
    if now is not None:
        st = dataclasses.replace(st, now=now.timestamp())
    return rebalance_watch.evaluate(st, config(**overrides))


BASE = (node("worker-0"), node("worker-1"), vmi("a"), vmi("b", node="worker-1"))


def test_window_opens_after_the_last_migration_and_closes_after_the_configured_hours():
    out = run(*BASE, vmim("m1", "a", "Succeeded", 47))
    assert series(out, "ov_rebalance_watch_active") == {(): 1}
    assert series(out, "ov_rebalance_last_migration_timestamp_seconds") == {
        (): (NOW - timedelta(hours=47)).timestamp()}
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
    assert series(out, "ov_rebalance_failed_migration") == {("vms", "bad", "b"): 1}
    [f] = findings(out, Severity.WARNING)
    assert f.obj == ObjectRef("VirtualMachineInstanceMigration", "vms", "bad")


def test_vm_migrated_more_than_once_in_the_window():
    out = run(*BASE, vmim("m1", "a", "Succeeded", 30), vmim("m2", "a", "Succeeded", 5),
              vmim("m3", "b", "Succeeded", 60), vmim("m4", "b", "Succeeded", 2))
    assert series(out, "ov_rebalance_vm_migrations") == {("vms", "a"): 2}
    assert [f.obj for f in findings(out, Severity.WARNING)] == [ObjectRef("VirtualMachineInstance", "vms", "a")]


def test_final_phase_timestamp_stands_in_for_a_missing_migration_state():
    out = run(*BASE, vmim("m1", "a", "Succeeded", 3, with_state=False))
    assert series(out, "ov_rebalance_last_migration_timestamp_seconds") == {
        (): (NOW - timedelta(hours=3)).timestamp()}


def test_per_node_allocation_spread_and_uneven_node_during_the_watch():
    nodes = [node("worker-0", cpu="10", memory="100Gi"), node("worker-1", cpu="10", memory="100Gi"),
             node("worker-2", cpu="10", memory="100Gi"), node("cp-0", control_plane=True, schedulable=False)]
    vmis = [vmi("big", node="worker-0", memory="90Gi", requests_cpu="4"),
            vmi("small", node="worker-1", memory="10Gi", requests_cpu="1")]
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


def test_cpu_request_falls_back_to_vcpus_over_the_allocation_ratio():
    out = run(node("worker-0", cpu="10"), vmi("a", cores=4, memory="1Gi"))
    assert series(out, "ov_node_vm_allocation_ratio")[("worker-0", "cpu")] == pytest.approx(4 / 10 / 10)


def test_snapshot_without_a_clock_uses_the_newest_migration_event():
    out = run(*BASE, vmim("m1", "a", "Succeeded", 50), vmim("m2", "b", "Running", 1), now=None)
    assert series(out, "ov_rebalance_evaluation_timestamp_seconds") == {
        (): (NOW - timedelta(hours=1.05)).timestamp()}  # its Running transition
    assert series(out, "ov_rebalance_watch_active") == {(): 0}  # 49 h before the newest event


def test_no_migration_no_window():
    out = run(*BASE)
    assert series(out, "ov_rebalance_watch_active") == {(): 0}
    assert series(out, "ov_rebalance_last_migration_timestamp_seconds") == {}
    assert findings(out) == []


def test_not_applicable_and_store_clock():
    result = registry.evaluate(state(node("worker-0")), config()).result("rebalance_watch")
    assert result.status is Status.NOT_APPLICABLE
    from ov_exporter.store import Store
    store = Store()
    assert store.state().now is None
    store.clock = lambda: 1234.0
    assert store.state().now == 1234.0
