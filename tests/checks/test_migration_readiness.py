"""migration_readiness: every reason that blocks a VM's live migration (anti-pattern 16)."""

from __future__ import annotations

import pytest
from ov_exporter.checks import migration_readiness as mr
from ov_exporter.domain import readiness
from ov_exporter.model import ObjectRef, Severity

from .builders import (
    NS,
    cloud_init,
    config,
    hco,
    kubevirt_cr,
    node,
    pvc,
    pvc_volume,
    series,
    state,
    virt_handler_pod,
    vm,
    vmi,
    vmim,
)

BLOCKED, COUNT, BY_REASON, SLOTS = (
    "ov_vm_migration_blocked",
    "ov_vms_migration_blocked",
    "ov_vms_migration_blocked_by_reason",
    "ov_migration_slots",
)
RWO, RWX = "ReadWriteOnce", "ReadWriteMany"


def cluster(*extra, nodes=("worker-0", "worker-1"), handlers=True):
    """Two roomy workers with Ready virt-handlers, plus `extra`."""
    objs = [node(n, cpu="32", memory="256Gi") for n in nodes]
    if handlers:
        objs += [virt_handler_pod(n) for n in nodes]
    return [*objs, *extra]


def running(name="db", node_name="worker-0", eviction=None, claims=(), modes=RWX, vm_kw=None, **vmi_kw):
    vols = [pvc_volume(f"disk{i}", c) for i, c in enumerate(claims)] + [cloud_init()]
    objs = [
        vm(name, eviction=eviction, volumes=vols, **(vm_kw or {})),
        vmi(name, node=node_name, volumes=vols, eviction=eviction, **vmi_kw),
    ]
    objs += [pvc(c, access_modes=[modes]) for c in claims]
    return objs


def run(*objects, **overrides):
    return mr.evaluate(state(*objects), config(**overrides))


def reasons(out, name="db"):
    return {labels[2] for labels in series(out, BLOCKED) if labels[1] == name}


def one(out, name="db"):
    [f] = [f for f in out.findings if f.obj.name == name]
    return f


# ---------------------------------------------------------------- clean and single reasons


def test_clean_vm_is_migratable_and_silent():
    out = run(*cluster(*running(claims=("db-root",), modes=RWX)))
    assert out.findings == []
    assert series(out, BLOCKED) == {}
    assert series(out, COUNT) == {(): 0}
    assert series(out, BY_REASON) == {(r,): 0 for r in readiness.REASONS}
    assert series(out, SLOTS) == {("in_flight", "default"): 0, ("limit", "default"): 5}


def test_stopped_vm_is_blocked_by_not_running_only_and_is_info():
    out = run(*cluster(vm("db", run_strategy="Halted", volumes=[cloud_init()])))
    assert series(out, BLOCKED) == {(NS, "db", "not_running", "None", ""): 1}
    f = one(out)
    assert f.severity is Severity.INFO and "no VirtualMachineInstance" in f.message
    assert f.obj == ObjectRef("VirtualMachine", NS, "db")


def test_vmi_not_in_running_phase_is_not_running():
    out = run(*cluster(*running(eviction="LiveMigrate", phase="Scheduling", node_name=None)))
    assert reasons(out) == {"not_running"}
    assert one(out).severity is Severity.INFO and "phase is Scheduling" in one(out).message


@pytest.mark.parametrize(
    "eviction, severity",
    [
        ("LiveMigrate", Severity.WARNING),
        ("LiveMigrateIfPossible", Severity.WARNING),
        ("External", Severity.WARNING),
        ("None", Severity.INFO),
    ],
)
def test_rwo_disk_blocks_under_every_eviction_strategy(eviction, severity):
    out = run(*cluster(*running(eviction=eviction, claims=("db-root",), modes=RWO)))
    assert series(out, BLOCKED) == {(NS, "db", "rwo_disk", eviction, "worker-0"): 1}
    f = one(out)
    assert f.severity is severity
    assert "db-root (ReadWriteOnce from PVC status)" in f.message and f"eviction strategy {eviction}" in f.message


def test_cluster_default_strategy_comes_from_hco():
    out = run(*cluster(*running(claims=("db-root",), modes=RWO), hco(eviction_strategy="LiveMigrate")))
    assert series(out, BLOCKED) == {(NS, "db", "rwo_disk", "LiveMigrate", "worker-0"): 1}
    assert "cluster default from hco" in one(out).message


def test_verdict_agrees_with_rwo_vm_disks():
    """Both checks judge disks with the same helper: the same claims are RWO for both."""
    from ov_exporter.checks import rwo_vm_disks

    objs = cluster(*running(eviction="LiveMigrate", claims=("a", "b"), modes=RWO))
    st = state(*objs)
    rwo = rwo_vm_disks.evaluate(st, config())
    ready = mr.evaluate(st, config())
    assert {s.labels[:2] for s in rwo.samples} == {(NS, "db")}
    assert "2 disk(s) without ReadWriteMany" in one(ready).message


def test_live_migratable_false_for_a_non_disk_reason_is_reported_with_kubevirts_reason():
    objs = cluster(*running(eviction="LiveMigrate"))
    objs[-1]["status"]["conditions"][1] = {
        "type": "LiveMigratable",
        "status": "False",
        "reason": "InterfaceNotLiveMigratable",
    }
    out = run(*objs)
    assert reasons(out) == {"not_live_migratable"}
    assert "InterfaceNotLiveMigratable" in one(out).message


def test_kubevirt_reporting_only_the_interface_still_gets_the_rwo_disk():
    """KubeVirt >= 1.6 names the interface and hides the RWO disk: judge disks too."""
    objs = cluster(*running(eviction="LiveMigrate", claims=("db-root",), modes=RWO))
    vmi_obj = next(o for o in objs if o["kind"] == "VirtualMachineInstance")
    vmi_obj["status"]["conditions"][1] = {
        "type": "LiveMigratable",
        "status": "False",
        "reason": "InterfaceNotLiveMigratable",
    }
    out = run(*objs)
    assert reasons(out) == {"not_live_migratable", "rwo_disk"}
    assert "2 reason(s)" in one(out).message


def test_disks_reason_from_kubevirt_is_not_counted_twice_when_the_rwo_disk_is_found():
    objs = cluster(*running(eviction="LiveMigrate", claims=("db-root",), modes=RWO))
    vmi_obj = next(o for o in objs if o["kind"] == "VirtualMachineInstance")
    vmi_obj["status"]["conditions"][1] = {
        "type": "LiveMigratable",
        "status": "False",
        "reason": "DisksNotLiveMigratable",
    }
    assert reasons(run(*objs)) == {"rwo_disk"}


# ---------------------------------------------------------------- target capacity


def test_no_other_node_is_no_target_node():
    out = run(*cluster(*running(eviction="LiveMigrate"), nodes=("worker-0",)))
    assert reasons(out) == {"no_target_node"}
    assert one(out).severity is Severity.WARNING


def test_other_node_without_memory_room_is_no_target_node():
    # worker-1 has 256Gi; a 200Gi VMI there leaves 56Gi, the migrating VM needs 64Gi.
    objs = cluster(
        *running(eviction="LiveMigrate", memory="64Gi"),
        vm("big", volumes=[cloud_init()]),
        vmi("big", node="worker-1", memory="200Gi"),
    )
    out = run(*objs)
    assert reasons(out) == {"no_target_node"}
    assert (
        "needs 0.20 CPU and 64.4 GiB with the virt-launcher overhead" in one(out).message
        and "worker-1" in one(out).message
    )
    # 40Gi fits into the 56Gi left
    objs = cluster(
        *running(eviction="LiveMigrate", memory="40Gi"),
        vm("big", volumes=[cloud_init()]),
        vmi("big", node="worker-1", memory="200Gi"),
    )
    assert reasons(run(*objs)) == set()


def test_cpu_requests_follow_the_allocation_ratio():
    # 32 CPUs on worker-1; a VMI with 300 vCPUs and no CPU request asks 300/10 = 30 CPUs.
    filler = [vm("filler", volumes=[cloud_init()]), vmi("filler", node="worker-1", cores=300, memory="1Gi")]
    out = run(*cluster(*running(eviction="LiveMigrate", cores=16, memory="1Gi"), *filler))
    assert reasons(out) == set()  # needs 1.6 CPU, 2 are left
    out = run(*cluster(*running(eviction="LiveMigrate", cores=16, memory="1Gi"), *filler, hco(cpu_ratio=4)))
    assert reasons(out) == {"no_target_node"}  # ratio 4: filler asks 75 CPUs, nothing left
    # an explicit CPU request wins over the ratio
    out = run(*cluster(*running(eviction="LiveMigrate", cores=16, memory="1Gi", requests_cpu="3"), *filler))
    assert reasons(out) == {"no_target_node"}


def test_node_selector_and_required_affinity_restrict_targets():
    objs = cluster(*running(eviction="LiveMigrate"), nodes=("worker-0", "worker-1", "worker-2"))
    objs[1]["metadata"]["labels"]["gpu"] = "true"  # worker-1
    vmi_obj = next(o for o in objs if o["kind"] == "VirtualMachineInstance")
    vmi_obj["spec"]["nodeSelector"] = {"gpu": "true"}
    assert reasons(run(*objs)) == set()
    vmi_obj["spec"]["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["worker-1"]}
                        ]
                    }
                ]
            }
        }
    }
    assert reasons(run(*objs)) == {"no_target_node"}
    del vmi_obj["spec"]["nodeSelector"]
    assert reasons(run(*objs)) == set()  # worker-2 qualifies
    vmi_obj["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ] = [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["worker-0"]}]}]
    assert reasons(run(*objs)) == {"no_target_node"}  # only the source node matches


def test_cordoned_not_ready_and_unlabelled_nodes_are_no_targets():
    for damage in (
        {"spec": {"unschedulable": True}},
        {"status": {"conditions": [{"type": "Ready", "status": "False"}]}},
    ):
        objs = cluster(*running(eviction="LiveMigrate"))
        target = objs[1]
        for key, value in damage.items():
            target[key].update(value)
        assert reasons(run(*objs)) == {"no_target_node"}, damage
    objs = cluster(*running(eviction="LiveMigrate"))
    objs[1]["metadata"]["labels"]["kubevirt.io/schedulable"] = "false"
    assert reasons(run(*objs)) == {"no_target_node"}


# ---------------------------------------------------------------- virt-handler


def test_virt_handler_not_ready_on_the_source_node():
    objs = [
        node("worker-0"),
        node("worker-1"),
        virt_handler_pod("worker-0", ready=False),
        virt_handler_pod("worker-1"),
        *running(eviction="LiveMigrate"),
    ]
    out = run(*objs)
    assert reasons(out) == {"virt_handler_not_ready"}
    assert "virt-handler on worker-0 is not Ready" in one(out).message


def test_missing_virt_handler_pod_on_the_node():
    objs = [node("worker-0"), node("worker-1"), virt_handler_pod("worker-1"), *running(eviction="LiveMigrate")]
    out = run(*objs)
    assert reasons(out) == {"virt_handler_not_ready"}
    assert "no virt-handler pod on worker-0" in one(out).message


def test_target_without_ready_virt_handler_is_no_target():
    objs = [
        node("worker-0"),
        node("worker-1"),
        virt_handler_pod("worker-0"),
        virt_handler_pod("worker-1", ready=False),
        *running(eviction="LiveMigrate"),
    ]
    assert reasons(run(*objs)) == {"no_target_node"}


def test_without_any_virt_handler_pod_the_reason_is_not_judged():
    assert reasons(run(*cluster(*running(eviction="LiveMigrate"), handlers=False))) == set()


def test_only_virt_handler_pods_in_the_kubevirt_namespaces_count():
    objs = [
        node("worker-0"),
        node("worker-1"),
        virt_handler_pod("worker-1"),
        virt_handler_pod("worker-0", namespace="default"),
        virt_handler_pod("worker-0", label="virt-launcher"),
        *running(eviction="LiveMigrate"),
    ]
    assert reasons(run(*objs)) == {"virt_handler_not_ready"}
    objs.append(virt_handler_pod("worker-0", namespace="kubevirt"))
    assert reasons(run(*objs)) == set()


def test_pod_not_running_is_not_ready():
    objs = [
        node("worker-0"),
        node("worker-1"),
        virt_handler_pod("worker-0", phase="Pending"),
        virt_handler_pod("worker-1"),
        *running(eviction="LiveMigrate"),
    ]
    assert reasons(run(*objs)) == {"virt_handler_not_ready"}


# ---------------------------------------------------------------- migration slots


def test_slots_full_uses_hco_then_kubevirt_then_default():
    in_flight = [vmim(f"m{i}", f"x{i}", phase) for i, phase in enumerate(["Running", "Scheduling", "", "Pending"])]
    done = [vmim("ok", "y", "Succeeded"), vmim("bad", "z", "Failed")]
    base = cluster(*running(eviction="LiveMigrate"), *in_flight, *done)
    out = run(*base)  # default 5 > 4 in flight
    assert reasons(out) == set() and series(out, SLOTS)[("in_flight", "default")] == 4
    out = run(*base, kubevirt_cr(migrations={"parallelMigrationsPerCluster": 4}))
    assert reasons(out) == {"migration_slots_full"}
    assert one(out).severity is Severity.INFO  # transient on its own
    assert "4 migration(s) in flight, parallelMigrationsPerCluster is 4 (kubevirt)" in one(out).message
    out = run(
        *base,
        kubevirt_cr(migrations={"parallelMigrationsPerCluster": 4}),
        hco(live_migration={"parallelMigrationsPerCluster": 10}),
    )
    assert reasons(out) == set() and series(out, SLOTS)[("limit", "hco")] == 10


def test_vms_blocked_for_the_same_text_share_one_message():
    # Mid-rebalance every running VM waits for a slot: one message string for all of them.
    in_flight = [vmim(f"m{i}", f"x{i}", "Running") for i in range(5)]
    out = run(*cluster(*running("a", eviction="LiveMigrate"), *running("b", eviction="LiveMigrate"), *in_flight))
    assert reasons(out, "a") == reasons(out, "b") == {"migration_slots_full"}
    assert one(out, "a").message == one(out, "b").message and one(out, "a").message is one(out, "b").message


def test_vms_with_the_same_reasons_share_one_reasons_map_in_reasons_order():
    in_flight = [vmim(f"m{i}", f"x{i}", "Running") for i in range(5)]
    rwo = running("c", node_name="worker-1", eviction="LiveMigrate", claims=("c-root",), modes=RWO)
    objs = cluster(*running("a", eviction="LiveMigrate"), *running("b", eviction="LiveMigrate"), *rwo, *in_flight)
    judged = readiness.verdicts(state(*objs), config())
    a, b, c = (judged[(NS, name)] for name in "abc")
    assert a.reasons == {
        "migration_slots_full": "5 migration(s) in flight, parallelMigrationsPerCluster is 5 (default)"
    }
    assert a.reasons is b.reasons
    # A disk reason joins in REASONS order, in a map of the VM's own.
    assert list(c.reasons) == ["rwo_disk", "migration_slots_full"] and c.reasons is not a.reasons


def test_slots_full_with_another_reason_keeps_the_strategy_severity():
    base = cluster(
        *running(eviction="LiveMigrate", claims=("r",), modes=RWO),
        vmim("m", "x"),
        kubevirt_cr(migrations={"parallelMigrationsPerCluster": 1}),
    )
    out = run(*base)
    assert reasons(out) == {"rwo_disk", "migration_slots_full"}
    assert one(out).severity is Severity.WARNING


# ---------------------------------------------------------------- several reasons, counts


def test_every_reason_at_once_and_the_counts():
    objs = [
        node("worker-0"),
        virt_handler_pod("worker-0", ready=False),
        *running(eviction="LiveMigrate", claims=("r",), modes=RWO),
        vm("stopped", run_strategy="Halted", volumes=[cloud_init()]),
        vm("fine", volumes=[cloud_init()]),
        vmi("fine", node="worker-0"),
        vmim("m", "x"),
        kubevirt_cr(migrations={"parallelMigrationsPerCluster": 1}),
    ]
    vmi_obj = next(o for o in objs if o["kind"] == "VirtualMachineInstance")
    vmi_obj["status"]["conditions"][1] = {
        "type": "LiveMigratable",
        "status": "False",
        "reason": "HostDeviceNotLiveMigratable",
    }
    out = run(*objs)
    assert reasons(out) == {
        "not_live_migratable",
        "rwo_disk",
        "no_target_node",
        "virt_handler_not_ready",
        "migration_slots_full",
    }
    f = one(out)
    assert "5 reason(s)" in f.message
    # the reasons appear in the enum's order
    positions = [f.message.index(r + ":") for r in readiness.REASONS if r != "not_running"]
    assert positions == sorted(positions)
    assert series(out, COUNT) == {(): 3}  # db, stopped, and fine (its node has no ready handler either)
    by_reason = series(out, BY_REASON)
    assert by_reason[("not_running",)] == 1 and by_reason[("rwo_disk",)] == 1
    assert by_reason[("virt_handler_not_ready",)] == 2 and by_reason[("migration_slots_full",)] == 2
    assert set(by_reason) == {(r,) for r in readiness.REASONS}


def test_blocked_series_carry_the_node_of_the_running_vmi():
    out = run(*cluster(*running(eviction="LiveMigrate", claims=("r",), modes=RWO, node_name="worker-1")))
    assert series(out, BLOCKED) == {(NS, "db", "rwo_disk", "LiveMigrate", "worker-1"): 1}


def test_verdict_json_shape_carries_remediation():
    st = state(*cluster(*running(eviction="LiveMigrate", claims=("r",), modes=RWO)))
    doc = readiness.verdicts(st, config())[(NS, "db")].to_dict()
    assert doc["migratable"] is False and doc["severity"] == "warning" and doc["node"] == "worker-0"
    [reason] = doc["reasons"]
    assert reason["reason"] == "rwo_disk" and "RWX" in reason["remediation"]


def test_series_carry_the_object_for_exemptions_and_the_cap():
    from ov_exporter import runner
    from ov_exporter.checks import by_id

    objs = cluster(
        *running(name="a", eviction="LiveMigrate", claims=("ra",), modes=RWO),
        *running(name="b", eviction="LiveMigrate", claims=("rb",), modes=RWO),
    )
    objs[next(i for i, o in enumerate(objs) if o["kind"] == "VirtualMachine" and o["metadata"]["name"] == "b")][
        "metadata"
    ]["annotations"] = {"ov-exporter.openshift.io/exempt": "migration_readiness"}
    result = runner.evaluate(state(*objs), config(), [by_id("migration_readiness")]).results[0]
    assert {f.obj.name for f in result.findings} == {"a"}
    assert {s.labels[1] for s in result.samples if s.family == BLOCKED} == {"a"}


@pytest.mark.parametrize("seed", range(8))
def test_no_target_node_agrees_with_a_brute_force_search(seed):
    """The fast path (the free-capacity frontier) gives the same answer as trying every node."""
    import random

    rnd = random.Random(seed)
    names = [f"w{i}" for i in range(6)]
    nodes = {n: (rnd.choice([4, 8, 16]), rnd.choice([16, 32, 64])) for n in names}  # CPUs, GiB
    objs = [node(n, cpu=str(c), memory=f"{m}Gi") for n, (c, m) in nodes.items()]
    vmis = []
    for i in range(15):
        host = rnd.choice(names)
        cpu, mem = rnd.choice([1, 2, 4, 6]), rnd.choice([2, 8, 16, 24])
        vmis.append((f"vm{i}", host, cpu, mem))
        objs += [
            vm(f"vm{i}", volumes=[cloud_init()]),
            vmi(f"vm{i}", node=host, cores=2, requests_cpu=str(cpu), memory=f"{mem}Gi"),
        ]
    free = {n: [c, m] for n, (c, m) in nodes.items()}
    for _, host, cpu, mem in vmis:
        free[host][0] -= cpu
        free[host][1] -= mem
    out = run(*objs)
    blocked = {labels[1] for labels in series(out, BLOCKED) if labels[2] == "no_target_node"}
    expected = {
        name
        for name, host, cpu, mem in vmis
        if not any(n != host and free[n][0] >= cpu and free[n][1] >= mem for n in names)
    }
    assert blocked == expected


def test_an_untolerated_taint_on_the_only_other_node_is_no_target_node():
    taint = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    objs = [node("worker-0"), node("worker-1", taints=[taint])] + [
        virt_handler_pod(n) for n in ("worker-0", "worker-1")
    ]
    out = run(*objs, *running())
    assert reasons(out) == {"no_target_node"}
    assert "tolerations" in one(out).message
