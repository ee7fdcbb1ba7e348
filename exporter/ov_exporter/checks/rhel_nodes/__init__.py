"""Anti-pattern 11: RHEL compute nodes are incompatible with OpenShift Virtualization."""

from __future__ import annotations

from ...config import Config
from ...domain.k8s import active_vmis_by_node, labels, ref, vm_schedulable_nodes
from ...model import AlertDecl, CheckOutput, CheckSpec, Family, Finding, NotApplicable, Sample, Severity
from ...records import Node
from ...store import ClusterState

OS_ID_LABEL = "node.openshift.io/os_id"

COUNT = Family(
    "ov_rhel_nodes",
    "gauge",
    "Nodes running Red Hat Enterprise Linux instead of RHCOS.",
    no_alert="count of the nodes ov_rhel_node_info lists one by one; alerting on both would notify twice",
)
INFO = Family(
    "ov_rhel_node",
    "info",
    "One series per RHEL node; vm_schedulable and runs_vmis say whether VMs can land or run there.",
    ("node", "os_image", "vm_schedulable", "runs_vmis"),
    per_object=True,
)


def _os(node) -> tuple[str, str]:
    """(rhel | coreos | other, osImage)."""
    os_image = node.status.node_info.os_image if node.status and node.status.node_info else ""
    os_id = labels(node).get(OS_ID_LABEL, "")
    if os_id:
        return ("rhel" if os_id == "rhel" else "coreos"), os_image
    if "coreos" in os_image.lower():
        return "coreos", os_image
    if os_image.startswith("Red Hat Enterprise Linux"):
        return "rhel", os_image
    return "other", os_image


def _rhel(state: ClusterState) -> tuple[bool, list[tuple[Node, str]]]:
    """(whether there is no node or some node runs RHCOS or RHEL, the RHEL nodes and their
    osImage in name order)."""
    judged = [(node, *_os(node)) for node in state.nodes]
    openshift = not judged or any(kind != "other" for _, kind, _ in judged)
    rhel = [(n, image) for n, kind, image in judged if kind == "rhel"]
    return openshift, sorted(rhel, key=lambda x: x[0].metadata.name)


def _schedulable(state: ClusterState) -> frozenset[str]:
    return frozenset(n.metadata.name for n in vm_schedulable_nodes(state))


def evaluate(state: ClusterState, config: Config) -> CheckOutput:
    out = CheckOutput()
    # Kept while the nodes do not change.
    openshift, rhel = state.per_kinds("rhel_nodes", ("nodes",), _rhel)
    if not openshift:
        raise NotApplicable("no node runs an OpenShift image (RHCOS or RHEL): not an OpenShift cluster")
    schedulable = state.per_kinds("rhel_nodes schedulable", ("nodes",), _schedulable)
    hosting = active_vmis_by_node(state).keys()
    out.samples.append(Sample(COUNT.name, (), len(rhel)))
    for node, image in rhel:
        name = node.metadata.name
        can, runs = name in schedulable, name in hosting
        out.samples.append(Sample(INFO.name, (name, image, str(can).lower(), str(runs).lower()), 1, ref("Node", node)))
        if can or runs:
            what = "runs VMIs" if runs else "is VM-schedulable (kubevirt.io/schedulable=true)"
            out.findings.append(
                Finding(SPEC.id, Severity.WARNING, ref("Node", node), f"RHEL node ({image or 'os_id=rhel'}) {what}")
            )
        else:
            out.findings.append(
                Finding(
                    SPEC.id,
                    Severity.INFO,
                    ref("Node", node),
                    f"RHEL node ({image or 'os_id=rhel'}) in a cluster with OpenShift Virtualization; keep VMs off it",
                )
            )
    return out


SPEC = CheckSpec(
    id="rhel_nodes",
    anti_pattern=11,
    title="RHEL compute nodes",
    severity_rules="warning: a RHEL node is VM-schedulable or runs VMIs; info: any other RHEL node",
    families=(COUNT, INFO),
    remediation="Replace RHEL workers with RHCOS nodes; until then keep VMs off them (remove "
    "kubevirt.io/schedulable, taint the node, live migrate its VMs away).",
    alerts=(AlertDecl("OVRHELWorkerNode", warning="unsupported", info="hygiene", names="Node/node"),),
    panels=("ov-overview/RHEL nodes",),
    evaluate=evaluate,
    requires=("nodes",),
    reads=("virtualmachineinstances.kubevirt.io",),
)
