"""migration_capacity: parallel migrations without a migration network, a stalled queue (anti-pattern 15)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from ov_exporter import runner
from ov_exporter.checks import migration_capacity
from ov_exporter.model import ObjectRef, Severity, Status

from .builders import _meta, config, findings, hco, kubevirt_cr, node, series, state, vmi

CLUSTER = ObjectRef("Cluster", "", "cluster")


NOW = datetime(2025, 1, 20, 9, 30, tzinfo=timezone.utc)


def ago(minutes: float) -> str:
    return (NOW - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def vmim(
    name: str,
    vmi_name: str,
    phase: str,
    *,
    source: str | None = None,
    network: str | None = None,
    configured: bool = False,
    ns: str = "vms",
    created: str | None = None,
    end: str | None = None,
) -> dict:
    status: dict = {
        "phase": phase,
        "phaseTransitionTimestamps": [{"phase": "Pending", "phaseTransitionTimestamp": "2025-01-20T09:00:00Z"}],
    }
    if source is not None or phase in ("Succeeded", "Failed"):
        ms: dict = {
            "sourceNode": source or "worker-0",
            "targetNode": "worker-1",
            "startTimestamp": "2025-01-20T09:00:10Z",
        }
        if phase in ("Succeeded", "Failed"):
            ms.update(completed=True, failed=phase == "Failed", endTimestamp=end or "2025-01-20T09:01:10Z")
        if configured:
            ms["migrationConfiguration"] = {"network": network} if network else {"bandwidthPerMigration": "0"}
        status["migrationState"] = ms
    meta = _meta(name, ns)
    meta["creationTimestamp"] = created or "2025-01-20T09:00:00Z"
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstanceMigration",
        "metadata": meta,
        "spec": {"vmiName": vmi_name},
        "status": status,
    }


def run(*objects, **overrides):
    return migration_capacity.evaluate(state(*objects, now=NOW.timestamp()), config(**overrides))


def test_hco_defaults_without_a_running_migration_are_no_finding():
    out = run(kubevirt_cr(), hco(), node("worker-0"))
    assert series(out, "ov_migration_parallel_per_cluster") == {(): 5}
    assert series(out, "ov_migration_parallel_outbound_per_node_limit") == {(): 2}
    assert series(out, "ov_migration_config_bandwidth_bytes_per_second") == {(): 0}
    assert series(out, "ov_migration_config_completion_timeout_per_gib_seconds") == {(): 150}
    assert series(out, "ov_migration_config") == {("default", ""): 1}
    assert series(out, "ov_migration_dedicated_network") == {(): 0}
    assert series(out, "ov_migration_parallel_without_dedicated_network") == {(): 0}
    assert series(out, "ov_migrations_running_pod_network") == {(): 0}
    assert findings(out) == []


def test_two_migrations_running_over_the_pod_network_is_a_warning():
    nodes = [node("worker-0"), node("worker-1")]
    one = [vmim("m1", "a", "Running", source="worker-0"), vmim("q", "b", "Pending")]
    out = run(hco(), *nodes, *one)
    assert series(out, "ov_migrations_running_pod_network") == {(): 1}
    assert series(out, "ov_migration_parallel_without_dedicated_network") == {(): 0}
    assert findings(out) == []
    two = one + [vmim("m2", "c", "PreparingTarget", source="worker-1")]
    out = run(hco(), *nodes, *two)
    assert series(out, "ov_migration_parallel_without_dedicated_network") == {(): 1}
    [f] = findings(out)
    assert (f.severity, f.obj) == (Severity.WARNING, CLUSTER) and "2 migrations running" in f.message
    # With a migration network they do not share the pod network.
    out = run(hco(live_migration={"network": "migration-net"}), *nodes, *two)
    assert series(out, "ov_migration_parallel_without_dedicated_network") == {(): 0}
    assert findings(out) == []


@pytest.mark.parametrize("version", ["v1beta1", "v1"])
def test_hco_network_wins_over_kubevirt(version):
    out = run(
        hco(
            version,
            live_migration={
                "parallelMigrationsPerCluster": 8,
                "network": "migration-net",
                "bandwidthPerMigration": "64Mi",
            },
        ),
        kubevirt_cr(migrations={"parallelMigrationsPerCluster": 3}),
        node("worker-0"),
    )
    assert series(out, "ov_migration_config") == {("hco", "migration-net"): 1}
    assert series(out, "ov_migration_parallel_per_cluster") == {(): 8}
    assert series(out, "ov_migration_config_bandwidth_bytes_per_second") == {(): 64 * 2**20}
    assert series(out, "ov_migration_dedicated_network") == {(): 1}
    assert findings(out) == []


def test_kubevirt_cr_settings():
    out = run(kubevirt_cr(migrations={"parallelMigrationsPerCluster": 1}), node("worker-0"))
    assert series(out, "ov_migration_config") == {("kubevirt", ""): 1}
    assert series(out, "ov_migration_parallel_per_cluster") == {(): 1}


@pytest.mark.parametrize("in_flight", [3, 5, 6])
def test_migrations_in_flight_at_the_limits_are_gauges_not_findings(in_flight):
    nodes = [node(f"worker-{i}") for i in range(6)]
    vmis = [vmi(f"vm{i}", node="worker-0") for i in range(6)]
    migs = [vmim(f"m{i}", f"vm{i}", "Running" if i == 0 else "Pending") for i in range(in_flight)]
    done = [vmim("old", "vm0", "Succeeded", end=ago(5)), vmim("bad", "vm1", "Failed", end=ago(6))]
    out = run(hco(), *nodes, *vmis, *migs, *done)
    assert series(out, "ov_migrations_in_flight") == {(): in_flight}
    assert series(out, "ov_migrations_in_flight_ratio") == {(): in_flight / 5}
    assert series(out, "ov_node_outbound_migrations_in_flight_ratio")[("worker-0",)] == in_flight / 2
    assert findings(out) == []  # KubeVirt queues above its limits: normal during drains and upgrades


def test_per_node_outbound_counts_use_the_source_node():
    objs = [
        hco(live_migration={"network": "mig", "parallelOutboundMigrationsPerNode": 2}),
        node("worker-0"),
        node("worker-1"),
        node("worker-2"),
        vmi("a", node="worker-0"),
        vmi("b", node="worker-0"),
        vmi("c", node="worker-1"),
    ]
    migs = [vmim("ma", "a", "Pending"), vmim("mb", "b", "Running", source="worker-2"), vmim("mc", "c", "Running")]
    out = run(*objs, *migs)
    assert series(out, "ov_node_outbound_migrations_in_flight") == {
        ("worker-0",): 1,
        ("worker-1",): 1,
        ("worker-2",): 1,
    }
    out = run(*objs, *migs, vmim("mb2", "b", "Scheduling"))
    assert series(out, "ov_node_outbound_migrations_in_flight_ratio")[("worker-0",)] == 1.0


@pytest.mark.parametrize(
    "oldest, finished, stalled",
    [
        (45, None, True),  # queued 45 min, nothing finished in the API
        (45, 40, True),  # the last one finished 40 min ago
        (45, 10, False),  # the queue drains: one finished 10 min ago
        (20, None, False),  # queued for less than the threshold
    ],
)
def test_queue_stall(oldest, finished, stalled):
    objs = [hco(live_migration={"network": "mig"}), node("worker-0"), vmi("a"), vmi("b"), vmi("c")]
    migs = [
        vmim("head", "a", "Pending", created=ago(oldest)),
        vmim("next", "b", "", created=ago(oldest - 5)),
        vmim("run", "c", "Running", created=ago(oldest + 60)),
    ]  # running, not queued: not the head
    if finished is not None:
        migs.append(vmim("done", "c", "Succeeded", end=ago(finished)))
    out = run(*objs, *migs)
    assert series(out, "ov_migration_queue_oldest_pending_timestamp_seconds") == {
        (): (NOW - timedelta(minutes=oldest)).timestamp()
    }
    assert series(out, "ov_migration_last_finished_timestamp_seconds") == (
        {(): (NOW - timedelta(minutes=finished)).timestamp()} if finished is not None else {}
    )
    assert series(out, "ov_migration_queue_stalled") == {(): 1 if stalled else 0}
    assert [(f.severity, f.obj) for f in findings(out)] == ([(Severity.WARNING, CLUSTER)] if stalled else [])


def test_queue_stall_threshold_is_configurable_and_no_queue_no_series():
    objs = [hco(live_migration={"network": "mig"}), node("worker-0"), vmi("a")]
    out = run(*objs, vmim("head", "a", "Pending", created=ago(45)), **{"thresholds.migration-queue-stall-minutes": 60})
    assert series(out, "ov_migration_queue_stall_threshold_seconds") == {(): 3600}
    assert findings(out) == []
    out = run(*objs)
    assert series(out, "ov_migration_queue_oldest_pending_timestamp_seconds") == {}
    assert series(out, "ov_migration_queue_stalled") == {(): 0}


def test_versions_from_the_kubevirt_and_hyperconverged_status():
    cr = kubevirt_cr()
    cr["status"]["observedKubeVirtVersion"] = "v1.4.1"
    operator = hco()
    operator["status"]["versions"] = [{"name": "operator", "version": "4.18.3"}]
    out = run(cr, operator, node("worker-0"))
    assert series(out, "ov_kubevirt") == {("v1.4.1",): 1}
    assert series(out, "ov_hyperconverged") == {("4.18.3",): 1}
    operator["status"].pop("versions")
    assert series(run(cr, operator, node("worker-0")), "ov_hyperconverged") == {}


def test_completed_migrations_over_the_pod_network_follow_their_recorded_configuration():
    objs = [hco(live_migration={"network": "mig"}), node("worker-0"), vmi("a")]
    out = run(
        *objs,
        vmim("old", "a", "Succeeded"),
        vmim("cfg-pod", "a", "Succeeded", configured=True),
        vmim("cfg-net", "a", "Failed", configured=True, network="mig"),
    )
    # "old" has no recorded configuration: the cluster's network now (dedicated) stands in.
    assert series(out, "ov_migrations_pod_network") == {(): 1}


def test_a_broken_vmim_fails_alone_and_the_check_still_runs():
    bad = vmim("bad", "a", "Running")
    bad["status"]["migrationState"] = {"startTimestamp": "yesterday"}
    import msgspec
    from ov_exporter.records import VirtualMachineInstanceMigration, convert

    with pytest.raises(msgspec.ValidationError, match="startTimestamp"):
        convert(VirtualMachineInstanceMigration, bad)
    result = runner.evaluate(state(kubevirt_cr(), node("worker-0")), config()).result("migration_capacity")
    assert result.status is Status.OK


def test_not_applicable_without_kubevirt():
    result = runner.evaluate(state(node("worker-0")), config()).result("migration_capacity")
    assert result.status is Status.NOT_APPLICABLE
