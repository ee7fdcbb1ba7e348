"""Anti-pattern 9: a Linux bridge on the default interface of an OVN-Kubernetes node."""

from __future__ import annotations

from typing import Any

from ...config import Config
from ...domain.k8s import labels, ref
from ...model import AlertDecl, CheckOutput, CheckSpec, Family, Finding, NotApplicable, Sample, Severity
from ...records import NodeNetworkState
from ...store import ClusterState

NNS_KEY = "nodenetworkstates.nmstate.io"
NNCP_KEY = "nodenetworkconfigurationpolicies.nmstate.io"
NETWORK_KEY = "networks.config.openshift.io"
OVN = "OVNKubernetes"
SDN = "OpenShiftSDN"
BR_EX = "br-ex"
LINUX_BRIDGE = "linux-bridge"
# Interfaces OVS itself creates on br-ex: never the physical uplink.
OVS_INTERNAL_TYPES = ("ovs-interface", "ovs-bridge", "ovs-port")

NODE = Family(
    "ov_node_default_nic_linux_bridge",
    "gauge",
    "1 when the node's NodeNetworkState shows a Linux bridge whose port is the NIC OVN-Kubernetes "
    "uses for br-ex (the default interface), else 0. One series per node with a NodeNetworkState.",
    ("node",),
)
POLICY = Family(
    "ov_nncp_default_nic_linux_bridge",
    "gauge",
    "Nodes on which a NodeNetworkConfigurationPolicy puts the br-ex NIC (the default interface) "
    "into a Linux bridge. One series per policy that defines a Linux bridge.",
    ("policy",),
    per_object=True,
)


def network_type(state: ClusterState) -> str:
    """status.networkType of Network.config.openshift.io `cluster`, spec.networkType as fallback."""
    nets = sorted(state.of(NETWORK_KEY), key=lambda n: n.metadata.name != "cluster")
    for net in nets:
        found = (net.status.network_type if net.status else "") or (net.spec.network_type if net.spec else "")
        if found:
            return found
    return ""


def _interfaces(nns: NodeNetworkState) -> list[Any]:
    current = nns.status.current_state if nns.status else None
    return list((current.interfaces if current else None) or [])


def _ports(iface: Any) -> list[str]:
    return [p.name for p in ((iface.bridge.port if iface.bridge else None) or []) if p.name]


def _bond_ports(iface: Any) -> list[str]:
    return [p for p in ((iface.link_aggregation.port if iface.link_aggregation else None) or []) if p]


def _expand(names: set[str], bonds: dict[str, list[str]]) -> set[str]:
    """Names plus the member ports of the bonds among them."""
    return names | {port for name in names for port in bonds.get(name, ())}


def default_nics(interfaces: list[Any]) -> set[str]:
    """The NIC(s) behind br-ex: interfaces whose controller is br-ex and the ports of the
    ovs-bridge br-ex (without OVS's own internal interfaces), bonds expanded to their ports."""
    internal = {i.name for i in interfaces if i.type in OVS_INTERNAL_TYPES}
    nics = {i.name for i in interfaces if i.controller == BR_EX and i.type not in OVS_INTERNAL_TYPES}
    for i in interfaces:
        if i.name == BR_EX and i.type == "ovs-bridge":
            nics |= {p for p in _ports(i) if p != BR_EX and p not in internal}
    bonds = {i.name: _bond_ports(i) for i in interfaces if i.type == "bond"}
    return _expand(nics, bonds)


def _linux_bridges(interfaces: list[Any]) -> list[tuple[str, set[str]]]:
    """(bridge, its ports with bond members expanded) for every Linux bridge not being removed."""
    bonds = {i.name: _bond_ports(i) for i in interfaces if i.type == "bond"}
    return [
        (i.name, _expand(set(_ports(i)), bonds)) for i in interfaces if i.type == LINUX_BRIDGE and i.state != "absent"
    ]


def _selected(selector: dict[str, str] | None, node_labels: dict[str, str]) -> bool:
    return all(node_labels.get(k) == v for k, v in (selector or {}).items())


def _nics_by_node(state: ClusterState) -> dict[str, set[str]]:
    return {nns.metadata.name: default_nics(_interfaces(nns)) for nns in state.of(NNS_KEY)}


def _nodes(state: ClusterState) -> tuple[list[Sample], list[Finding]]:
    """The series and findings of the nodes (by their NodeNetworkStates), in name order."""
    samples, findings = [], []
    nics_by_node = _nics_by_node(state)
    for nns in sorted(state.of(NNS_KEY), key=lambda n: n.metadata.name):
        node, nics = nns.metadata.name, nics_by_node[nns.metadata.name]
        hits = [(bridge, sorted(ports & nics)) for bridge, ports in _linux_bridges(_interfaces(nns)) if ports & nics]
        obj = ref("Node", nns)
        samples.append(Sample(NODE.name, (node,), 1 if hits else 0, obj))
        if hits:
            what = "; ".join(f"linux-bridge {b} has port {', '.join(p)}" for b, p in hits)
            findings.append(
                Finding(
                    SPEC.id, Severity.CRITICAL, obj, f"{what}, the br-ex NIC of OVN-Kubernetes (the default interface)"
                )
            )
    return samples, findings


def evaluate(state: ClusterState, config: Config) -> CheckOutput:
    states, policies = state.of(NNS_KEY), state.of(NNCP_KEY)
    if not states and not policies:
        raise NotApplicable(
            "no NodeNetworkState or NodeNetworkConfigurationPolicy: kubernetes-nmstate is not "
            "installed, so no Linux bridge is configured through it"
        )
    kind = network_type(state)
    # Kept while the NodeNetworkStates do not change.
    nics_by_node = state.per_kinds("ovn_linux_bridge default NICs", (NNS_KEY,), _nics_by_node)
    if kind == SDN:
        raise NotApplicable(
            f"network type {kind}: the restriction applies to OVN-Kubernetes only "
            "(OpenShift SDN allows a Linux bridge on the default interface)"
        )
    if kind != OVN and not any(nics_by_node.values()):
        raise NotApplicable(
            f"network type {kind or 'unknown (no Network.config.openshift.io)'} and no node shows OVN-Kubernetes' br-ex"
        )

    out = CheckOutput()
    samples, findings = state.per_kinds("ovn_linux_bridge nodes", (NNS_KEY,), _nodes)
    out.samples += samples
    out.findings += findings

    node_labels = {n.metadata.name: labels(n) for n in state.nodes}
    for policy in sorted(policies, key=lambda p: p.metadata.name):
        spec = policy.spec
        desired = (spec.desired_state.interfaces if spec and spec.desired_state else None) or []
        bridges = _linux_bridges(desired)
        if not bridges:
            continue
        selector = spec.node_selector if spec else None
        if node_labels:
            targets = [n for n in sorted(nics_by_node) if n in node_labels and _selected(selector, node_labels[n])]
        else:  # no Node objects to match the selector against: judge every node with a NodeNetworkState
            targets = sorted(nics_by_node)
        hit_nodes: list[str] = []
        details: dict[tuple[str, str], list[str]] = {}
        for node in targets:
            nics = nics_by_node[node] | {BR_EX}
            for bridge, ports in bridges:
                for port in sorted(ports & nics):
                    details.setdefault((bridge, port), []).append(node)
                    if node not in hit_nodes:
                        hit_nodes.append(node)
        obj = ref("NodeNetworkConfigurationPolicy", policy)
        out.samples.append(Sample(POLICY.name, (policy.metadata.name,), len(hit_nodes), obj))
        if hit_nodes:
            parts = []
            for (bridge, port), nodes in details.items():
                shown = ", ".join(nodes[:5]) + (f" and {len(nodes) - 5} more" if len(nodes) > 5 else "")
                parts.append(f"linux-bridge {bridge} takes {port}, the br-ex NIC on {shown}")
            out.findings.append(
                Finding(
                    SPEC.id,
                    Severity.WARNING,
                    obj,
                    "; ".join(parts) + ": OVN-Kubernetes loses the default interface "
                    "(nmstate rolls the change back or the node drops off the network)",
                )
            )
    return out


SPEC = CheckSpec(
    id="ovn_linux_bridge",
    anti_pattern=9,
    title="Linux bridge on the default interface with OVN-Kubernetes",
    severity_rules="critical: on OVN-Kubernetes, a NodeNetworkState shows a Linux bridge with a node's br-ex NIC "
    "(the default interface, directly or through a bond) as port: the node's network is broken now; "
    "warning: a NodeNetworkConfigurationPolicy would put that NIC into a Linux bridge (nmstate "
    "rolls a failing policy back, the NodeNetworkState shows whether it did). "
    "not_applicable on OpenShift SDN, and on other network types when no node has br-ex",
    families=(NODE, POLICY),
    remediation="Put the Linux bridge on a secondary NIC (or use an OVN localnet / OVS bridge mapping on br-ex "
    "for VM traffic on the default network); delete or fix the policy, then check that the node's "
    "br-ex has its NIC back.",
    alerts=(
        AlertDecl(
            "OVNodeNetworkPolicyBridgesDefaultNIC",
            warning="failure_risk",
            names="NodeNetworkConfigurationPolicy/policy",
        ),
        AlertDecl("OVNodeDefaultNICInLinuxBridge", critical="vm_down", names="Node/node"),
    ),
    panels=("ov-overview/NodeNetworkConfigurationPolicies bridging the default NIC (nodes affected)",),
    evaluate=evaluate,
    requires=(NNS_KEY,),
    reads=(NNCP_KEY, NETWORK_KEY, "nodes"),
)
