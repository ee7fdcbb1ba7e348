"""Anti-pattern 12: control-plane nodes that share a hypervisor host.

Host information comes from the node label named by `control-plane-host-label`, else
from a bare-metal provider ID (a physical host is never shared). Without either the
check is not applicable: it never guesses a host from zones or names.
"""

from __future__ import annotations

from ...config import Config
from ...domain.k8s import is_control_plane, labels, ref
from ...model import AlertDecl, CheckOutput, CheckSpec, Family, Finding, NotApplicable, Sample, Severity
from ...records import Node
from ...store import ClusterState

BARE_METAL_PROVIDERS = ("baremetalhost://", "metal3://")

COLOCATED = Family(
    "ov_control_plane_node_colocated",
    "gauge",
    "Control-plane nodes on the same hypervisor host as this one (itself included), for every control-plane "
    "node whose host is known. `source`: label or bare-metal; `quorum_lost`: true when losing that host "
    "leaves etcd without quorum.",
    ("node", "host", "source", "quorum_lost"),
)
UNKNOWN = Family(
    "ov_control_plane_nodes_host_unknown",
    "gauge",
    "Control-plane nodes whose hypervisor host is unknown (no host label, not bare metal).",
    no_alert="coverage of the host information; the check raises no finding on it",
)


def host_of(node: Node, config: Config) -> tuple[str, str]:
    """(host, source); ("", "unknown") when nothing says."""
    label = config.control_plane_host_label
    if label and labels(node).get(label):
        return labels(node)[label], "label"
    provider = node.spec.provider_id if node.spec else ""
    if provider.startswith(BARE_METAL_PROVIDERS):
        return f"bare-metal:{node.metadata.name}", "bare-metal"
    return "", "unknown"


def _masters(state: ClusterState) -> list[Node]:
    """The control-plane nodes in name order."""
    return sorted((n for n in state.nodes if is_control_plane(n)), key=lambda n: n.metadata.name)


def evaluate(state: ClusterState, config: Config) -> CheckOutput:
    # Kept while the nodes do not change.
    masters = state.per_kinds("control_plane_placement masters", ("nodes",), _masters)
    if not masters:
        raise NotApplicable("no control-plane node in the cluster (hosted control plane)")
    hosts = {n.metadata.name: host_of(n, config) for n in masters}
    if all(source == "unknown" for _, source in hosts.values()):
        where = (
            f"label {config.control_plane_host_label}"
            if config.control_plane_host_label
            else "host label (none configured)"
        )
        raise NotApplicable(
            f"no control-plane node carries the {where} or a bare-metal provider ID: the hypervisor hosts are unknown"
        )
    out = CheckOutput()
    total = len(masters)
    quorum = total // 2 + 1
    by_host: dict[str, list[str]] = {}
    for name, (host, source) in hosts.items():
        if source != "unknown":
            by_host.setdefault(host, []).append(name)
    unknown = 0
    for node in masters:
        name = node.metadata.name
        host, source = hosts[name]
        if source == "unknown":
            unknown += 1
            continue
        peers = by_host[host]
        lost = total - len(peers) < quorum
        out.samples.append(Sample(COLOCATED.name, (name, host, source, str(lost).lower()), len(peers)))
        if len(peers) < 2:
            continue
        others = ", ".join(p for p in peers if p != name)
        if lost:
            out.findings.append(
                Finding(
                    SPEC.id,
                    Severity.WARNING,
                    ref("Node", node),
                    f"shares hypervisor host {host} with {others}: losing that host leaves "
                    f"{total - len(peers)} of {total} etcd members, below quorum ({quorum})",
                )
            )
        else:
            out.findings.append(
                Finding(
                    SPEC.id,
                    Severity.INFO,
                    ref("Node", node),
                    f"shares hypervisor host {host} with {others}; etcd keeps quorum if that host fails, "
                    "but loses its failure margin",
                )
            )
    out.samples.append(Sample(UNKNOWN.name, (), unknown))
    return out


SPEC = CheckSpec(
    id="control_plane_placement",
    anti_pattern=12,
    title="Control-plane nodes on the same hypervisor host",
    severity_rules="warning: control-plane nodes share a hypervisor host whose loss would break etcd quorum "
    "(a risk of placement, not a quorum loss now); info: they share a host but quorum survives its loss",
    families=(COLOCATED, UNKNOWN),
    remediation="Spread the control-plane VMs over separate hypervisor hosts (vSphere: a DRS VM-VM "
    "anti-affinity rule for the control-plane VMs), and keep the host label current.",
    alerts=(AlertDecl("OVControlPlaneNodesShareHost", warning="failure_risk", info="hygiene", names="Node/node"),),
    settings=("control-plane-host-label",),
    panels=(
        "ov-overview/Control-plane nodes per hypervisor host",
        "ov-overview/Control-plane nodes, host unknown",
    ),
    evaluate=evaluate,
    requires=("nodes",),
)
