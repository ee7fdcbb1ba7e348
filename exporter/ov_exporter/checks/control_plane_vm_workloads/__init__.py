"""Anti-pattern 13: VM workloads on control-plane nodes, next to latency-sensitive etcd."""

from __future__ import annotations

from ...config import Config
from ...domain.incremental import per_node
from ...domain.k8s import SCHEDULABLE_LABEL, is_control_plane, labels, ref, vmi_node
from ...model import AlertDecl, CheckOutput, CheckSpec, Family, Finding, NotApplicable, Sample, Severity
from ...records import Node, VirtualMachineInstance
from ...store import ClusterState

VMIS_KEY = "virtualmachineinstances.kubevirt.io"
MASTER_TAINTS = ("node-role.kubernetes.io/master", "node-role.kubernetes.io/control-plane")

VMIS = Family(
    "ov_control_plane_node_vmis",
    "gauge",
    "Running VMIs on a control-plane node. `vm_schedulable` is true when the node carries "
    "kubevirt.io/schedulable=true and no NoSchedule/NoExecute control-plane taint. One series per "
    "control-plane node.",
    ("node", "vm_schedulable"),
)


def vm_schedulable_master(node: Node) -> bool:
    if labels(node).get(SCHEDULABLE_LABEL) != "true":
        return False
    taints = (node.spec.taints if node.spec else None) or []
    return not any(t.key in MASTER_TAINTS and t.effect in ("NoSchedule", "NoExecute") for t in taints)


def _masters(state: ClusterState) -> tuple[list[Node], bool]:
    """(the control-plane nodes in name order, whether every node is one)."""
    masters = sorted((n for n in state.nodes if is_control_plane(n)), key=lambda n: n.metadata.name)
    return masters, len(masters) == len(state.nodes)


def _on(vmi: VirtualMachineInstance) -> tuple[str, float] | None:
    node = vmi_node(vmi)
    return (node, 1.0) if node else None


def evaluate(state: ClusterState, config: Config) -> CheckOutput:
    masters, compact = state.per_kinds("control_plane_vm_workloads masters", ("nodes",), _masters)
    if not masters:
        raise NotApplicable("no control-plane node in the cluster (hosted control plane)")
    if compact:
        raise NotApplicable("compact cluster: every node is a control-plane node, so VMs run next to etcd by design")
    out = CheckOutput()
    # VMIs per node, kept and brought up to date per changed VMI (domain.incremental).
    running = per_node(state, SPEC.id, VMIS_KEY, _on)
    for node in masters:
        name = node.metadata.name
        schedulable = vm_schedulable_master(node)
        count = int(running.get(name, 0))
        out.samples.append(Sample(VMIS.name, (name, str(schedulable).lower()), count))
        if count:
            out.findings.append(
                Finding(
                    SPEC.id,
                    Severity.WARNING,
                    ref("Node", node),
                    f"control-plane node runs {count} VMI(s): VM CPU, memory and disk load "
                    "competes with etcd, which is latency sensitive",
                )
            )
        elif schedulable:
            out.findings.append(
                Finding(
                    SPEC.id,
                    Severity.INFO,
                    ref("Node", node),
                    "control-plane node is VM-schedulable (kubevirt.io/schedulable=true, no "
                    "control-plane NoSchedule taint): the next VM may land next to etcd",
                )
            )
    return out


SPEC = CheckSpec(
    id="control_plane_vm_workloads",
    anti_pattern=13,
    title="VM workloads on control-plane nodes",
    severity_rules="warning: a control-plane node runs VMIs; info: a control-plane node is VM-schedulable "
    "(kubevirt.io/schedulable=true and no control-plane NoSchedule taint) but runs none; "
    "not applicable on compact clusters, where every node is a control-plane node",
    families=(VMIS,),
    remediation="Keep VMs off control-plane nodes: set mastersSchedulable: false in the Scheduler config "
    "(restores the NoSchedule taint), restrict the HCO workload placement to workers, and live "
    "migrate the VMs that run there.",
    alerts=(AlertDecl("OVControlPlaneNodeRunsVMs", warning="performance_risk", info="hygiene", names="Node/node"),),
    panels=("ov-overview/VMIs running on control-plane nodes",),
    evaluate=evaluate,
    requires=("nodes",),
    reads=("virtualmachineinstances.kubevirt.io",),
)
