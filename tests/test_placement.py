"""The target test (domain/placement.py) and its use behind migration_readiness's no_target_node."""

from __future__ import annotations

from ov_exporter.domain import placement, readiness

from .checks.builders import config, node, state, virt_handler_pod, vmi

MI = 2**20


def _cluster(*extra, nodes=("worker-0", "worker-1")):
    objs = [node(n, cpu="32", memory="256Gi") for n in nodes] + [virt_handler_pod(n) for n in nodes]
    return [*objs, *extra]


def _targets(*objs, vmi_name="db"):
    st = state(*objs)
    t = placement.targets(st, config())
    v = st.get("virtualmachineinstances.kubevirt.io", "vms", vmi_name) or next(
        x for x in st.vmis if x.metadata.name == vmi_name
    )
    return t, v, [r.name for r in placement.target_rooms(t, v, v.spec)]


def test_launcher_overhead_follows_kubevirt_v1_6_estimate():
    v = state(vmi("db", cores=2, memory="4Gi")).vmis[0]
    # 4Gi/512 page tables + 220Mi fixed + 2 x 8Mi per vCPU + 8Mi IOThread + 32Mi video
    assert placement.launcher_overhead(v) == 4 * 2**30 // 512 + (220 + 16 + 8 + 32) * MI
    dedicated = state(vmi("db", cores=2, memory="4Gi", dedicated=True)).vmis[0]
    assert placement.launcher_overhead(dedicated) == placement.launcher_overhead(v) + 100 * MI


def test_untolerated_taint_excludes_the_node_and_a_toleration_admits_it():
    taint = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    tainted = [node("worker-0"), node("worker-1", taints=[taint])] + [
        virt_handler_pod(n) for n in ("worker-0", "worker-1")
    ]
    db = vmi("db", node="worker-0")
    *_, found = _targets(*tainted, db)
    assert found == []
    db["spec"]["tolerations"] = [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]
    *_, found = _targets(*tainted, db)
    assert found == ["worker-1"]


def test_cordoned_not_vm_schedulable_and_handlerless_nodes_are_no_targets():
    objs = [node("worker-0"), node("worker-1", cordoned=True), node("worker-2", schedulable=False), node("worker-3")]
    objs += [virt_handler_pod(n) for n in ("worker-0", "worker-1", "worker-2")]
    t, v, found = _targets(*objs, vmi("db", node="worker-0"))
    assert found == []
    assert {n: t.rooms[n].blocked for n in ("worker-1", "worker-2", "worker-3")} == {
        "worker-1": "cordoned",
        "worker-2": "not VM-schedulable (kubevirt.io/schedulable)",
        "worker-3": "no Ready virt-handler",
    }


def test_requests_of_the_launchers_already_there_count_with_their_overhead():
    # worker-1 has 20Gi allocatable; a 16Gi VMI there leaves less than 4Gi + overhead.
    objs = [node("worker-0", memory="64Gi"), node("worker-1", memory="20Gi")]
    objs += [virt_handler_pod(n) for n in ("worker-0", "worker-1")]
    objs += [vmi("other", node="worker-1", memory="15Gi")]
    *_, found = _targets(*objs, vmi("db", node="worker-0", memory="4Gi"))
    assert found == ["worker-1"]  # 15Gi + overhead + 4Gi + overhead < 20Gi
    objs[-1] = vmi("other", node="worker-1", memory="15.7Gi")
    *_, found = _targets(*objs, vmi("db", node="worker-0", memory="4Gi"))
    assert found == []


def _anti(v, key="kubernetes.io/hostname", app="db"):
    v["spec"]["affinity"] = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": key, "labelSelector": {"matchLabels": {"app": app}}}
            ]
        }
    }
    return v


def test_required_pod_anti_affinity_keeps_replicas_apart_both_ways():
    replica = vmi("db-1", node="worker-1", labels={"app": "db"})
    mover = _anti(vmi("db", node="worker-0", labels={"app": "db"}))
    *_, found = _targets(*_cluster(replica, mover, nodes=("worker-0", "worker-1", "worker-2")))
    assert found == ["worker-2"]
    # The term on the pod already there counts too.
    *_, found = _targets(
        *_cluster(
            _anti(vmi("db-1", node="worker-1", labels={"app": "db"})),
            vmi("db", node="worker-0", labels={"app": "db"}),
            nodes=("worker-0", "worker-1", "worker-2"),
        )
    )
    assert found == ["worker-2"]


def test_topology_spread_do_not_schedule_limits_the_skew():
    zone = "topology.kubernetes.io/zone"
    nodes = [node("a", labels={zone: "z1"}), node("b", labels={zone: "z1"}), node("c", labels={zone: "z2"})]
    nodes += [virt_handler_pod(n) for n in ("a", "b", "c")]
    others = [vmi(f"web-{i}", node="c", labels={"app": "web"}) for i in range(2)]
    mover = vmi("db", node="c", labels={"app": "web"})
    mover["spec"]["topologySpreadConstraints"] = [
        {
            "maxSkew": 1,
            "topologyKey": zone,
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "web"}},
        }
    ]
    *_, found = _targets(*nodes, *others, mover)
    assert found == ["a", "b"]  # z1 has 0, z2 has 3: moving into z1 gives skew 1 - 0 <= 1
    others += [vmi(f"web-{n}{i}", node=n, labels={"app": "web"}) for n in ("a", "b") for i in range(2)]
    *_, found = _targets(*nodes, *others, mover)
    assert found == []  # z1 has 4, z2 3 (the source pod runs during the migration): 4 + 1 - 3 > 1


def test_no_target_node_agrees_with_the_target_test():
    taint = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    objs = [node("worker-0"), node("worker-1", taints=[taint])] + [
        virt_handler_pod(n) for n in ("worker-0", "worker-1")
    ]
    st = state(*objs, vmi("db", node="worker-0"))
    t = placement.targets(st, config())
    v = st.vmis[0]
    detail = placement.no_target_detail(t, v, v.spec)
    assert "tolerations" in detail
    assert placement.has_target(t, v, v.spec) is False
    assert readiness.node_matches(v.spec, objs and st.nodes[1])  # the selector alone would admit it
