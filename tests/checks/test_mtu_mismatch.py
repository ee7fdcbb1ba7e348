"""mtu_mismatch: VM network MTU vs the host interface it rides on (anti-pattern 10)."""

from __future__ import annotations

import pytest
from ov_exporter import runner
from ov_exporter.checks import mtu_mismatch
from ov_exporter.model import ObjectRef, Severity, Status

from .builders import (
    NS,
    bridge_config,
    bridge_iface,
    cluster_network,
    config,
    iface,
    multus_network,
    nad,
    nns,
    node,
    series,
    state,
    vm,
    vmi,
)

MISMATCH, INVALID, MIXED = "ov_mtu_mismatch", "ov_nad_config_invalid", "ov_vm_mixed_mtu_networks"
WORKERS = ("worker-0", "worker-1", "worker-2")


def run(*objects, **overrides):
    return mtu_mismatch.evaluate(state(*objects), config(**overrides))


def nad_ref(name, namespace=NS):
    return ObjectRef("NetworkAttachmentDefinition", namespace, name)


def host(name, br1_mtu=9000, nic_mtu=None):
    """NodeNetworkState of a node with a linux bridge br1 on a second NIC ens4."""
    return nns(
        name,
        [
            iface("ens3", 1500, controller="br-ex"),
            iface("br-ex", 1500, "ovs-interface"),
            iface("ens4", nic_mtu or br1_mtu, controller="br1"),
            iface("br1", br1_mtu, "linux-bridge", ports=["ens4"]),
            iface("lo", 65536, "loopback"),
        ],
    )


def cluster(br1_mtus=(9000, 9000, 9000), cluster_mtu=1400):
    objects = [node(n) for n in WORKERS]
    objects += [host(n, m) for n, m in zip(WORKERS, br1_mtus)]
    objects.append(cluster_network(cluster_mtu))
    return objects


# ---------------------------------------------------------------- bridge vs host


def test_bridge_without_mtu_on_a_jumbo_bridge_mismatches_on_every_node():
    out = run(*cluster(), nad("vlan10", bridge_config("vlan10")))
    assert series(out, MISMATCH) == {(NS, "vlan10"): 3}
    [finding] = out.findings
    assert finding.severity is Severity.WARNING
    assert finding.obj == nad_ref("vlan10")
    assert "MTU 1500" in finding.message and "default" in finding.message
    assert "br1 has MTU 9000" in finding.message
    assert "worker-0, worker-1, worker-2" in finding.message
    [sample] = out.samples
    assert sample.obj == nad_ref("vlan10")


def test_mismatch_counts_only_the_nodes_that_differ():
    out = run(*cluster(br1_mtus=(9000, 1500, 9000)), nad("vlan10", bridge_config("vlan10", cni_type="bridge")))
    assert series(out, MISMATCH) == {(NS, "vlan10"): 2}
    assert "worker-0, worker-2" in out.findings[0].message


def test_explicit_matching_mtu_gives_nothing():
    out = run(*cluster(), nad("vlan10", bridge_config("vlan10", mtu=9000)))
    assert out.samples == [] and out.findings == []


def test_explicit_but_different_mtu_mismatches():
    out = run(*cluster(), nad("vlan10", bridge_config("vlan10", mtu=1500)))
    assert series(out, MISMATCH) == {(NS, "vlan10"): 3}
    assert "explicit" in out.findings[0].message


def test_bridge_not_present_on_the_host_is_not_judged():
    out = run(*cluster(), nad("other", bridge_config("other", bridge="br-missing")))
    assert out.samples == [] and out.findings == []


def test_ovs_bridge_default_is_1500():
    out = run(*cluster(), nad("ovs-net", bridge_config("ovs-net", cni_type="ovs")))
    assert series(out, MISMATCH) == {(NS, "ovs-net"): 3}


def test_macvlan_without_mtu_follows_the_master():
    cfg = {"cniVersion": "0.3.1", "name": "mv", "type": "macvlan", "master": "ens4", "mode": "bridge"}
    assert run(*cluster(), nad("mv", cfg)).samples == []
    cfg["mtu"] = 1500
    out = run(*cluster(), nad("mv", cfg))
    assert series(out, MISMATCH) == {(NS, "mv"): 3}
    assert "ens4 has MTU 9000" in out.findings[0].message


def test_unschedulable_nodes_are_not_judged():
    objects = cluster()
    objects[1]["metadata"]["labels"]["kubevirt.io/schedulable"] = "false"
    out = run(*objects, nad("vlan10", bridge_config("vlan10")))
    assert series(out, MISMATCH) == {(NS, "vlan10"): 2}


def test_conflist_takes_type_and_mtu_from_plugins():
    conflist = {
        "cniVersion": "0.4.0",
        "name": "vlan10",
        "plugins": [{"type": "cnv-bridge", "bridge": "br1", "vlan": 10}, {"type": "cnv-tuning"}],
    }
    out = run(*cluster(), nad("vlan10", conflist))
    assert series(out, MISMATCH) == {(NS, "vlan10"): 3}
    conflist["plugins"][0]["mtu"] = 9000
    out = run(*cluster(), nad("vlan10", conflist))
    assert out.samples == [] and out.findings == []


def test_conflist_mtu_set_by_a_later_plugin():
    conflist = {
        "cniVersion": "0.4.0",
        "name": "vlan10",
        "plugins": [{"type": "bridge", "bridge": "br1"}, {"type": "tuning", "mtu": 9000}],
    }
    out = run(*cluster(), nad("vlan10", conflist))
    assert out.samples == [] and out.findings == []


def test_config_with_tab_characters():
    config_text = (
        '{\n\t"cniVersion": "0.3.1",\n\t"name": "tabbed\tname",\n\t"type": "cnv-bridge",'
        '\n\t"bridge": "br1",\n\t"ipam": {}\n}'
    )
    out = run(*cluster(), nad("tabbed", config_text))
    assert series(out, MISMATCH) == {(NS, "tabbed"): 3}
    assert series(out, INVALID) == {}


# ---------------------------------------------------------------- invalid configs


INVALID_CONFIGS = {
    "trailing comma": '{"cniVersion": "0.3.1", "type": "cnv-bridge", "bridge": "br1",}',
    "truncated": '{"cniVersion": "0.3.1", "type": "cnv-br',
    "yaml instead of json": "type: bridge\nbridge: br1\n",
    "empty": "",
    "blank": "  \n",
    "array": "[]",
    "string": '"bridge"',
    "no type": '{"cniVersion": "0.3.1", "bridge": "br1"}',
    "empty plugins": '{"cniVersion": "0.4.0", "plugins": []}',
    "plugins not objects": '{"cniVersion": "0.4.0", "plugins": [1, "x", null]}',
    "mtu not a number": '{"type": "bridge", "bridge": "br1", "mtu": "jumbo"}',
    "mtu boolean": '{"type": "bridge", "bridge": "br1", "mtu": true}',
    "mtu out of range": '{"type": "bridge", "bridge": "br1", "mtu": 10}',
    "mtu negative": '{"type": "bridge", "bridge": "br1", "mtu": -1}',
    "mtu too big": '{"type": "bridge", "bridge": "br1", "mtu": 70000}',
    "mtu list": '{"type": "bridge", "bridge": "br1", "mtu": [9000]}',
}


@pytest.mark.parametrize("case", sorted(INVALID_CONFIGS))
def test_invalid_config_is_a_warning_and_other_nads_are_still_judged(case):
    out = run(*cluster(), nad("broken", INVALID_CONFIGS[case]), nad("vlan10", bridge_config("vlan10")))
    assert series(out, INVALID) == {(NS, "broken"): 1}
    assert series(out, MISMATCH) == {(NS, "vlan10"): 3}
    broken = [f for f in out.findings if f.obj == nad_ref("broken")]
    assert [f.severity for f in broken] == [Severity.WARNING]
    assert "spec.config" in broken[0].message or "mtu" in broken[0].message


def test_missing_spec_is_an_invalid_config():
    bad = nad("no-spec", None)
    bad["spec"] = None
    out = run(*cluster(), bad, nad("vlan10", bridge_config("vlan10")))
    assert series(out, INVALID) == {(NS, "no-spec"): 1}
    assert series(out, MISMATCH) == {(NS, "vlan10"): 3}


def test_unknown_plugin_type_is_not_judged_nor_invalid():
    out = run(*cluster(), nad("sriov", {"cniVersion": "0.3.1", "type": "sriov", "vlan": 10}))
    assert out.samples == [] and out.findings == []


# ---------------------------------------------------------------- OVN-Kubernetes secondary networks


def overlay(name, mtu=None, topology="layer2"):
    cfg = {
        "cniVersion": "0.3.1",
        "name": name,
        "type": "ovn-k8s-cni-overlay",
        "topology": topology,
        "netAttachDefName": f"{NS}/{name}",
    }
    if mtu is not None:
        cfg["mtu"] = mtu
    return nad(name, cfg)


def test_overlay_default_is_the_cluster_network_mtu():
    objects = [
        *cluster(cluster_mtu=8900),
        overlay("l2"),
        nad("jumbo", bridge_config("jumbo", mtu=9000)),
        vm(
            "app",
            interfaces=[bridge_iface("a"), bridge_iface("b")],
            networks=[multus_network("a", "l2"), multus_network("b", "jumbo")],
        ),
    ]
    out = run(*objects)
    assert series(out, MISMATCH) == {}
    assert series(out, MIXED) == {(NS, "app", ""): 2}
    [finding] = out.findings
    assert "l2=8900 (default)" in finding.message and "jumbo=9000" in finding.message


def test_overlay_default_matching_an_explicit_network_is_not_mixed():
    objects = [
        *cluster(cluster_mtu=1400),
        overlay("l2"),
        nad("small", bridge_config("small", bridge="br-missing", mtu=1400)),
        vm("app", networks=[multus_network("a", "l2"), multus_network("b", "small")]),
    ]
    out = run(*objects)
    assert out.samples == [] and out.findings == []


def test_overlay_mtu_above_the_cluster_network_mtu():
    out = run(*cluster(cluster_mtu=1400), overlay("l2", mtu=9000))
    assert series(out, MISMATCH) == {(NS, "l2"): 3}
    [finding] = out.findings
    assert "MTU 9000 exceeds the cluster network MTU 1400" in finding.message


def test_overlay_mtu_within_the_cluster_network_mtu():
    out = run(*cluster(cluster_mtu=1400), overlay("l2", mtu=1300))
    assert out.samples == [] and out.findings == []


def test_localnet_is_not_judged_against_the_overlay_mtu():
    out = run(*cluster(cluster_mtu=1400), overlay("physnet", mtu=9000, topology="localnet"))
    assert out.samples == [] and out.findings == []


# ---------------------------------------------------------------- VMs mixing MTUs


def two_nets_vm(name, *nets, namespace=NS):
    return vm(
        name,
        namespace,
        interfaces=[{"name": "default", "masquerade": {}}] + [bridge_iface(f"n{i}") for i in range(len(nets))],
        networks=[{"name": "default", "pod": {}}] + [multus_network(f"n{i}", n) for i, n in enumerate(nets)],
    )


def test_vm_mixing_an_explicit_jumbo_network_with_a_default_bridge_is_info():
    objects = [
        *cluster(),
        nad("storage", bridge_config("storage", mtu=9000)),
        nad("vlan10", bridge_config("vlan10", bridge="br-missing")),
        two_nets_vm("db", "storage", "vlan10"),
    ]
    out = run(*objects, vmi("db", node="worker-1"))
    assert series(out, MIXED) == {(NS, "db", "worker-1"): 2}  # the node its VMI runs on
    [finding] = [f for f in out.findings if f.obj.kind == "VirtualMachine"]
    assert finding.severity is Severity.INFO
    assert finding.obj == ObjectRef("VirtualMachine", NS, "db")
    assert "storage=9000" in finding.message and "vlan10=1500 (default)" in finding.message
    [sample] = [s for s in out.samples if s.family == MIXED]
    assert sample.obj == ObjectRef("VirtualMachine", NS, "db")


def test_vm_with_two_explicit_different_mtus_is_not_mixed_defaults():
    objects = [
        *cluster(),
        nad("storage", bridge_config("storage", mtu=9000)),
        nad("mgmt", bridge_config("mgmt", bridge="br-missing", mtu=1500)),
        two_nets_vm("db", "storage", "mgmt"),
    ]
    out = run(*objects)
    assert series(out, MIXED) == {}
    assert out.findings == []


def test_vm_networks_in_other_namespaces():
    objects = [
        *cluster(),
        nad("storage", bridge_config("storage", mtu=9000), namespace="shared"),
        nad("vlan10", bridge_config("vlan10", bridge="br-missing")),
        two_nets_vm("db", "shared/storage", "vlan10"),
    ]
    out = run(*objects)
    assert series(out, MIXED) == {(NS, "db", ""): 2}  # stopped: no node


def test_vm_networks_that_do_not_exist_are_ignored():
    objects = [
        *cluster(),
        nad("vlan10", bridge_config("vlan10", bridge="br-missing")),
        two_nets_vm("db", "missing", "vlan10", "elsewhere/missing"),
    ]
    out = run(*objects)
    assert out.samples == [] and out.findings == []


# ---------------------------------------------------------------- malformed objects


def _damaged():
    nns_status_null = nns("worker-0", [])
    nns_status_null["status"] = None
    nns_interfaces_null = nns("worker-1", [])
    nns_interfaces_null["status"]["currentState"]["interfaces"] = None
    nns_no_mtu = nns("worker-2", [iface("br1", None, "linux-bridge"), {}])
    vm_spec_null = vm("spec-null")
    vm_spec_null["spec"] = None
    vm_networks_null = vm("networks-null")
    vm_networks_null["spec"]["template"]["spec"]["networks"] = None
    vm_bad_multus = vm(
        "bad-multus",
        networks=[
            {"name": "a", "multus": None},
            {"name": "b", "multus": {}},
            {"name": "c", "multus": {"networkName": ""}},
            {"name": "d", "multus": {"networkName": "/"}},
        ],
    )
    net_status_null = cluster_network()
    net_status_null["status"] = None
    string_mtu_nns = nns("worker-9", [iface("br1", None, "linux-bridge")])
    string_mtu_nns["status"]["currentState"]["interfaces"][0]["mtu"] = "9000"
    return [
        nns_status_null,
        nns_interfaces_null,
        nns_no_mtu,
        vm_spec_null,
        vm_networks_null,
        vm_bad_multus,
        net_status_null,
        string_mtu_nns,
    ]


@pytest.mark.parametrize("damaged", _damaged(), ids=lambda o: f"{o['kind']}-{o['metadata']['name']}")
def test_malformed_object_never_raises_nor_hides_the_good_mismatch(damaged):
    objects = [node("good-node"), host("good-node"), nad("vlan10", bridge_config("vlan10")), damaged]
    out = run(*objects)
    assert series(out, MISMATCH)[(NS, "vlan10")] >= 1
    assert any(f.obj == nad_ref("vlan10") and f.severity is Severity.WARNING for f in out.findings)


def test_all_malformed_together():
    objects = [node("good-node"), host("good-node"), nad("vlan10", bridge_config("vlan10")), *_damaged()]
    out = run(*objects)
    assert series(out, MISMATCH)[(NS, "vlan10")] >= 1


@pytest.mark.parametrize(
    "config_text",
    [
        "[" * 100_000,
        '{"type": "bridge", "bridge": "br1", "mtu": ' + "9" * 5000 + "}",
    ],
    ids=["deeply nested", "huge integer"],
)
def test_pathological_json_is_reported_invalid_not_a_crash(config_text):
    objects = [*cluster(), nad("evil", config_text), nad("vlan10", bridge_config("vlan10"))]
    result = runner.evaluate(state(*objects), config()).result("mtu_mismatch")
    assert result.status is Status.OK, result.error
    assert {s.labels: s.value for s in result.samples if s.family == INVALID} == {(NS, "evil"): 1}
    assert {s.labels: s.value for s in result.samples if s.family == MISMATCH} == {(NS, "vlan10"): 3}


def test_exemption_on_the_nad_and_namespace_exclude():
    exempt = nad("vlan10", bridge_config("vlan10"))
    exempt["metadata"]["annotations"]["ov-exporter.openshift.io/exempt"] = "mtu_mismatch"
    objects = [
        *cluster(),
        exempt,
        nad("vlan20", bridge_config("vlan20")),
        nad("vlan30", bridge_config("vlan30"), namespace="lab"),
    ]
    result = runner.evaluate(state(*objects), config(**{"namespaces.exclude": ["lab"]})).result("mtu_mismatch")
    assert {s.labels for s in result.samples} == {(NS, "vlan20")}
    assert [f.obj.name for f in result.findings] == ["vlan20"]
