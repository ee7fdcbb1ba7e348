"""migration_capacity: parallel migrations without a migration network, slots in use (anti-pattern 15)."""
from __future__ import annotations

import pytest

from ov_exporter import registry
from ov_exporter.checks import migration_capacity
from ov_exporter.model import ObjectRef, Severity, Status

from .builders import _meta, config, findings, hco, kubevirt_cr, node, series, state, vmi

CLUSTER = ObjectRef("Cluster", "", "cluster")


def vmim(name: str, vmi_name: str, phase: str, *, source: str | None = None, network: str | None = None,
         configured: bool = False, ns: str = "vms") -> dict:
    status: dict = {"phase": phase, "phaseTransitionTimestamps": [
        {"phase": "Pending", "phaseTransitionTimestamp": "2025-01-20T09:00:00Z"}]}
    if source is not None or phase in ("Succeeded", "Failed"):
        ms: dict = {"sourceNode": source or "worker-0", "targetNode": "worker-1",
                    "startTimestamp": "2025-01-20T09:00:10Z"}
        if phase in ("Succeeded", "Failed"):
            ms.update(completed=True, failed=phase == "Failed", endTimestamp="2025-01-20T09:01:10Z")
        if configured:
            ms["migrationConfiguration"] = {"network": network} if network else {"bandwidthPerMigration": "0"}
        status["migrationState"] = ms
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
            "metadata": _meta(name, ns), "spec": {"vmiName": vmi_name}, "status": status}


def run(*objects, **overrides):
    return migration_capacity.evaluate(state(*objects), config(**overrides))


def test_defaults_without_hco_flag_parallel_migrations_on_the_pod_network():
    out = run(kubevirt_cr(), node("worker-0"))
    assert series(out, "ov_migration_parallel_per_cluster") == {(): 5}
    assert series(out, "ov_migration_parallel_outbound_per_node_limit") == {(): 2}
    assert series(out, "ov_migration_config_bandwidth_bytes_per_second") == {(): 0}
    assert series(out, "ov_migration_config_completion_timeout_per_gib_seconds") == {(): 150}
    assert series(out, "ov_migration_config") == {("default", ""): 1}
    assert series(out, "ov_migration_dedicated_network") == {(): 0}
    assert series(out, "ov_migration_parallel_without_dedicated_network") == {(): 1}
    [f] = findings(out)
    assert (f.severity, f.obj) == (Severity.WARNING, CLUSTER) and "parallelMigrationsPerCluster 5" in f.message


@pytest.mark.parametrize("version", ["v1beta1", "v1"])
def test_hco_network_wins_over_kubevirt_and_silences_the_finding(version):
    out = run(hco(version, live_migration={"parallelMigrationsPerCluster": 8, "network": "migration-net",
                                           "bandwidthPerMigration": "64Mi"}),
              kubevirt_cr(migrations={"parallelMigrationsPerCluster": 3}), node("worker-0"))
    assert series(out, "ov_migration_config") == {("hco", "migration-net"): 1}
    assert series(out, "ov_migration_parallel_per_cluster") == {(): 8}
    assert series(out, "ov_migration_config_bandwidth_bytes_per_second") == {(): 64 * 2**20}
    assert series(out, "ov_migration_dedicated_network") == {(): 1}
    assert findings(out) == []


def test_kubevirt_cr_network_and_single_migration():
    assert findings(run(kubevirt_cr(migrations={"network": "mig"}), node("worker-0"))) == []
    out = run(kubevirt_cr(migrations={"parallelMigrationsPerCluster": 1}), node("worker-0"))
    assert series(out, "ov_migration_config") == {("kubevirt", ""): 1}
    assert series(out, "ov_migration_parallel_without_dedicated_network") == {(): 0}
    assert findings(out) == []


@pytest.mark.parametrize("in_flight, severity", [(3, None), (4, Severity.WARNING), (5, Severity.CRITICAL),
                                                 (6, Severity.CRITICAL)])
def test_migrations_in_flight_against_the_cluster_limit(in_flight, severity):
    nodes = [node(f"worker-{i}") for i in range(6)]
    vmis = [vmi(f"vm{i}", node=f"worker-{i}") for i in range(6)]
    migs = [vmim(f"m{i}", f"vm{i}", "Running" if i % 2 else "Pending") for i in range(in_flight)]
    done = [vmim("old", "vm0", "Succeeded"), vmim("bad", "vm1", "Failed")]
    out = run(hco(live_migration={"network": "mig"}), *nodes, *vmis, *migs, *done)
    assert series(out, "ov_migrations_in_flight") == {(): in_flight}
    assert series(out, "ov_migrations_in_flight_ratio") == {(): in_flight / 5}
    cluster = [f for f in findings(out) if f.obj == CLUSTER]
    assert [f.severity for f in cluster] == ([severity] if severity else [])
    assert all(f.obj == CLUSTER for f in findings(out))  # one migration per source node: 50 % of 2


def test_per_node_outbound_limit_uses_the_source_node():
    objs = [hco(live_migration={"network": "mig", "parallelOutboundMigrationsPerNode": 2}),
            node("worker-0"), node("worker-1"), node("worker-2"),
            vmi("a", node="worker-0"), vmi("b", node="worker-0"), vmi("c", node="worker-1")]
    migs = [vmim("ma", "a", "Pending"), vmim("mb", "b", "Running", source="worker-2"), vmim("mc", "c", "Running")]
    out = run(*objs, *migs)
    assert series(out, "ov_node_outbound_migrations_in_flight") == {("worker-0",): 1, ("worker-1",): 1,
                                                                     ("worker-2",): 1}
    out = run(*objs, *migs, vmim("mb2", "b", "Scheduling"))
    assert series(out, "ov_node_outbound_migrations_in_flight_ratio")[("worker-0",)] == 1.0
    [f] = [f for f in findings(out) if f.obj.kind == "Node"]
    assert (f.severity, f.obj.name) == (Severity.CRITICAL, "worker-0")


def test_completed_migrations_over_the_pod_network_follow_their_recorded_configuration():
    objs = [hco(live_migration={"network": "mig"}), node("worker-0"), vmi("a")]
    out = run(*objs, vmim("old", "a", "Succeeded"), vmim("cfg-pod", "a", "Succeeded", configured=True),
              vmim("cfg-net", "a", "Failed", configured=True, network="mig"))
    # "old" has no recorded configuration: the cluster's network now (dedicated) stands in.
    assert series(out, "ov_migrations_pod_network") == {(): 1}


def test_a_broken_vmim_fails_alone_and_the_check_still_runs():
    bad = vmim("bad", "a", "Running")
    bad["status"]["migrationState"] = {"startTimestamp": "yesterday"}
    from ov_exporter.records import convert
    from ov_exporter.records import VirtualMachineInstanceMigration
    import msgspec
    with pytest.raises(msgspec.ValidationError, match="startTimestamp"):
        convert(VirtualMachineInstanceMigration, bad)
    result = registry.evaluate(state(kubevirt_cr(), node("worker-0")), config()).result("migration_capacity")
    assert result.status is Status.OK


def test_not_applicable_without_kubevirt():
    result = registry.evaluate(state(node("worker-0")), config()).result("migration_capacity")
    assert result.status is Status.NOT_APPLICABLE
