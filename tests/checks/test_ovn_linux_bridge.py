"""ovn_linux_bridge: a Linux bridge on the br-ex NIC of an OVN-Kubernetes node (anti-pattern 9)."""

from __future__ import annotations

import pytest
from ov_exporter import runner
from ov_exporter.checks import ovn_linux_bridge as check
from ov_exporter.model import NotApplicable, ObjectRef, Severity, Status

from .builders import bond, cluster_network, config, iface, nncp, nns, node, series, severities, state

NODE, POLICY = check.NODE.name, check.POLICY.name
WORKER = {"node-role.kubernetes.io/worker": ""}


def ovn_node(name: str, nic: str = "ens3", extra: list[dict] | None = None) -> dict:
    """A node's NodeNetworkState as OVN-Kubernetes leaves it: br-ex over `nic`."""
    return nns(
        name,
        [
            iface("br-ex", None, "ovs-bridge", ports=["br-ex", nic]),
            iface("br-ex", 1500, "ovs-interface"),
            iface(nic, 1500, controller="br-ex"),
            iface("ens4", 9000),
            iface("lo", 65536, "loopback"),
            *(extra or []),
        ],
    )


def bridge(name: str, *ports: str, state: str = "up") -> dict:
    return iface(name, 1500, "linux-bridge", ports=list(ports), state=state)


def cluster(*extra: dict, network: str = "OVNKubernetes") -> list[dict]:
    return [
        cluster_network(network_type=network),
        node("worker-0"),
        node("worker-1"),
        node("master-0", control_plane=True),
        ovn_node("worker-0"),
        ovn_node("worker-1", nic="eno1"),
        ovn_node("master-0"),
        *extra,
    ]


def run(*objects):
    return check.evaluate(state(*objects), config())


def test_policy_bridging_the_br_ex_nic_is_a_warning_on_the_selected_nodes_only():
    out = run(*cluster(nncp("br-mgmt", [bridge("br-mgmt", "ens3")], {"kubernetes.io/hostname": "worker-0"})))
    assert series(out, POLICY) == {("br-mgmt",): 1}
    [finding] = out.findings
    assert finding.severity is Severity.WARNING
    assert finding.obj == ObjectRef("NodeNetworkConfigurationPolicy", "", "br-mgmt")
    assert "ens3" in finding.message and "worker-0" in finding.message and "br-mgmt" in finding.message


def test_the_br_ex_nic_is_read_per_node():
    # ens3 is worker-0's uplink but a spare NIC name on worker-1 (whose br-ex rides eno1).
    out = run(*cluster(nncp("eno1-bridge", [bridge("br-vm", "eno1")], WORKER)))
    assert series(out, POLICY) == {("eno1-bridge",): 1}
    [finding] = out.findings
    assert "worker-1" in finding.message and "worker-0" not in finding.message


def test_policy_on_a_secondary_nic_is_silent():
    out = run(*cluster(nncp("br1", [bridge("br1", "ens4")], WORKER)))
    assert series(out, POLICY) == {("br1",): 0}
    assert out.findings == []
    assert series(out, NODE) == {("worker-0",): 0, ("worker-1",): 0, ("master-0",): 0}


def test_selector_that_matches_no_node_with_the_nic_is_silent():
    out = run(*cluster(nncp("br-mgmt", [bridge("br-mgmt", "ens3")], {"kubernetes.io/hostname": "worker-1"})))
    assert series(out, POLICY) == {("br-mgmt",): 0}
    assert out.findings == []


def test_policy_without_selector_applies_to_every_node():
    out = run(*cluster(nncp("br-all", [bridge("br-all", "ens3")])))
    assert series(out, POLICY) == {("br-all",): 2}  # worker-0 and master-0 use ens3 for br-ex
    [finding] = out.findings
    assert "master-0" in finding.message and "worker-0" in finding.message


def test_bond_of_the_policy_holding_the_br_ex_nic_counts():
    policy = nncp("bonded", [bond("bond1", ["ens3", "ens5"]), bridge("br-bond", "bond1")], WORKER)
    out = run(*cluster(policy))
    assert severities(out) == {"bonded": Severity.WARNING}


def test_br_ex_on_a_bond_protects_its_member_nics():
    states = [
        cluster_network(),
        node("worker-0"),
        nns(
            "worker-0",
            [
                iface("br-ex", None, "ovs-bridge", ports=["br-ex", "bond0"]),
                bond("bond0", ["ens3", "ens4"], controller="br-ex"),
                iface("ens3", 1500, controller="bond0"),
                iface("ens4", 1500, controller="bond0"),
                iface("ens5", 1500),
            ],
        ),
    ]
    out = run(*states, nncp("bad", [bridge("br-x", "ens4")]), nncp("good", [bridge("br-y", "ens5")]))
    assert series(out, POLICY) == {("bad",): 1, ("good",): 0}
    assert severities(out) == {"bad": Severity.WARNING}


def test_policy_removing_a_bridge_is_silent():
    out = run(*cluster(nncp("cleanup", [bridge("br-mgmt", "ens3", state="absent")], WORKER)))
    assert series(out, POLICY) == {}
    assert out.findings == []


def test_node_state_showing_the_nic_in_a_linux_bridge_is_critical():
    # The NIC left br-ex for a Linux bridge; the OVS database still lists it as br-ex's port.
    broken = nns(
        "worker-1",
        [
            iface("br-ex", None, "ovs-bridge", ports=["br-ex", "eno1"]),
            bridge("br-legacy", "eno1"),
            iface("eno1", 1500, controller="br-legacy"),
        ],
    )
    objects = [o for o in cluster() if not (o["kind"] == "NodeNetworkState" and o["metadata"]["name"] == "worker-1")]
    out = run(*objects, broken)
    assert series(out, NODE) == {("worker-0",): 0, ("worker-1",): 1, ("master-0",): 0}
    [finding] = out.findings
    assert finding.severity is Severity.CRITICAL and finding.obj == ObjectRef("Node", "", "worker-1")
    assert "br-legacy" in finding.message and "eno1" in finding.message


def test_linux_bridge_on_a_secondary_nic_in_node_state_is_silent():
    out = run(*cluster()[:-1], ovn_node("master-0", extra=[bridge("br1", "ens4")]))
    assert out.findings == []
    assert series(out, NODE)[("master-0",)] == 0


def test_openshift_sdn_is_not_applicable():
    with pytest.raises(NotApplicable, match="OpenShiftSDN"):
        run(*cluster(nncp("br-mgmt", [bridge("br-mgmt", "ens3")]), network="OpenShiftSDN"))


def test_other_network_type_without_br_ex_is_not_applicable():
    with pytest.raises(NotApplicable, match="Calico"):
        run(
            cluster_network(network_type="Calico"),
            node("worker-0"),
            nns("worker-0", [iface("ens3", 1500)]),
            nncp("br-mgmt", [bridge("br-mgmt", "ens3")]),
        )


def test_unrecognised_network_type_with_br_ex_on_nodes_is_judged():
    out = run(*cluster(nncp("br-mgmt", [bridge("br-mgmt", "ens3")]), network="OVNKubernetes-typo"))
    assert severities(out) == {"br-mgmt": Severity.WARNING}


def test_spec_network_type_is_the_fallback_for_an_empty_status():
    net = cluster_network()
    net["status"] = {}
    net["spec"] = {"networkType": "OpenShiftSDN"}
    with pytest.raises(NotApplicable, match="OpenShiftSDN"):
        run(net, ovn_node("worker-0"))


def test_without_network_config_br_ex_on_nodes_means_ovn():
    objects = [o for o in cluster(nncp("br-mgmt", [bridge("br-mgmt", "ens3")])) if o["kind"] != "Network"]
    out = run(*objects)
    assert severities(out) == {"br-mgmt": Severity.WARNING}


def test_without_network_config_or_br_ex_it_is_not_applicable():
    with pytest.raises(NotApplicable, match="unknown"):
        run(nns("worker-0", [iface("ens3", 1500)]), nncp("br", [bridge("br", "ens3")]))


def test_without_nmstate_it_is_not_applicable():
    with pytest.raises(NotApplicable, match="nmstate"):
        run(cluster_network(), node("worker-0"))
    result = runner.evaluate(state(cluster_network(), node("worker-0")), config()).result("ovn_linux_bridge")
    assert result.status is Status.NOT_APPLICABLE


def test_without_node_objects_every_node_state_is_a_target():
    objects = [
        o
        for o in cluster(nncp("br-mgmt", [bridge("br-mgmt", "ens3")], {"kubernetes.io/hostname": "x"}))
        if o["kind"] != "Node"
    ]
    out = run(*objects)
    assert series(out, POLICY) == {("br-mgmt",): 2}


def test_policy_with_null_sections_is_judged_not_crashing():
    empty = nncp("empty", [])
    empty["spec"] = None
    out = run(*cluster(empty, nncp("bad", [bridge("br-mgmt", "ens3")])))
    assert severities(out) == {"bad": Severity.WARNING}
