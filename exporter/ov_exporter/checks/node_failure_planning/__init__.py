"""Anti-pattern 5: no automatic remediation of failed nodes, and VMs that stay down after one.

Without a MachineHealthCheck (Machine API) or a medik8s NodeHealthCheck, a failed node
keeps its VMIs assigned until someone deletes the Node object: even VMs with
runStrategy Always are not restarted elsewhere.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

from ...config import Config
from ...domain.incremental import assembled, per_object_of_kind, same_name, tabled
from ...domain.k8s import active_vmis_by_node, annotations, labels, ref, vm_schedulable_nodes, vmi_node
from ...domain.selectors import label_selector_matches
from ...model import AlertDecl, CheckOutput, CheckSpec, Family, Finding, NotApplicable, Sample, Severity
from ...records import Machine, Node, VirtualMachine
from ...store import ClusterState

MACHINES = "machines.machine.openshift.io"
MHCS = "machinehealthchecks.machine.openshift.io"
VMS = "virtualmachines.kubevirt.io"
VMIS = "virtualmachineinstances.kubevirt.io"
NHCS = "nodehealthchecks.remediation.medik8s.io"
MACHINE_ANNOTATION = "machine.openshift.io/machine"  # "<namespace>/<machine>" on the Node
# Installed by default; it only covers spot (interruptible) instances: it does not count.
TERMINATION_HANDLER = "machine-api-termination-handler"
NO_RESTART_STRATEGIES = ("Manual", "Once")  # Always and RerunOnFailure restart after a node failure

COVERED = Family(
    "ov_node_remediation_covered",
    "gauge",
    "1 when a failed VM-schedulable node is remediated automatically (its Machine is selected by a "
    "MachineHealthCheck or the Node by a NodeHealthCheck), else 0. `via`: machine-health-check, "
    "node-health-check, both or none. One series per VM-schedulable node.",
    ("node", "via"),
    no_alert=(
        "names the nodes behind ov_nodes_without_remediation, which the one cluster-wide alert reads (one "
        "fact, one alert)"
    ),
)
UNCOVERED = Family(
    "ov_nodes_without_remediation",
    "gauge",
    "VM-schedulable nodes that no MachineHealthCheck or NodeHealthCheck covers.",
)
NOT_READY = Family(
    "ov_vmi_on_not_ready_node",
    "gauge",
    "1 for a running VMI assigned to a node whose Ready condition is False or Unknown.",
    ("namespace", "vmi", "node"),
    per_object=True,
)
NO_RESTART = Family(
    "ov_vm_no_restart_after_node_failure",
    "gauge",
    "1 for a running VM whose run strategy (Manual, Once) does not restart it after a node failure; node: where "
    "its VMI runs.",
    ("namespace", "vm", "run_strategy", "node"),
    per_object=True,
)


# ---------------------------------------------------------------- label selectors


def selector_matches(selector: Any, lbls: dict[str, str]) -> bool:
    """metav1.LabelSelector semantics: None matches nothing, an empty selector everything."""
    return selector is not None and label_selector_matches(selector, lbls)


def _blocks_all(limit: Any) -> bool:
    """maxUnhealthy 0 or "0%": remediation stops as soon as one machine is unhealthy."""
    if limit is None:
        return False
    text = str(limit).strip()
    return text in ("0", "0%")


# ---------------------------------------------------------------- coverage


def _machine_of(state: ClusterState, node: Node, by_node: dict[str, Any]) -> Any | None:
    machine = by_node.get(node.metadata.name)
    if machine is not None:
        return machine
    ns, _, name = annotations(node).get(MACHINE_ANNOTATION, "").partition("/")
    return state.get(MACHINES, ns, name) if name else None


def _mhcs_for(machine: Machine, mhcs: list[Any]) -> list[str]:
    return [
        m.metadata.name
        for m in mhcs
        if m.metadata.namespace == machine.metadata.namespace
        and m.spec is not None
        and selector_matches(m.spec.selector, labels(machine))
    ]


def _counting_mhcs(state: ClusterState) -> tuple[list[Any], list[str]]:
    """(MHCs that remediate, notes about the ones that do not)."""
    counting, notes = [], []
    for mhc in sorted(state.of(MHCS), key=lambda m: (m.metadata.namespace, m.metadata.name)):
        if mhc.metadata.name == TERMINATION_HANDLER:
            continue
        if mhc.spec is not None and _blocks_all(mhc.spec.max_unhealthy):
            notes.append(f"MachineHealthCheck {mhc.metadata.name} has maxUnhealthy {mhc.spec.max_unhealthy}")
            continue
        counting.append(mhc)
    return counting, notes


def _counting_nhcs(state: ClusterState) -> tuple[list[Any], list[str]]:
    counting, notes = [], []
    for nhc in sorted(state.of(NHCS), key=lambda n: n.metadata.name):
        spec = nhc.spec
        if spec is not None and spec.pause_requests:
            notes.append(f"NodeHealthCheck {nhc.metadata.name} is paused")
            continue
        if spec is not None and _blocks_all(spec.max_unhealthy):
            notes.append(f"NodeHealthCheck {nhc.metadata.name} has maxUnhealthy {spec.max_unhealthy}")
            continue
        counting.append(nhc)
    return counting, notes


def node_ready(node: Node) -> str:
    """The Ready condition's status (True, False, Unknown), "" when the node reports none."""
    for cond in (node.status.conditions if node.status else None) or []:
        if cond.type == "Ready":
            return cond.status or "Unknown"
    return ""


def effective_run_strategy(vm: VirtualMachine) -> str:
    """spec.runStrategy, else the deprecated spec.running (true: Always, false: Halted);
    KubeVirt treats a VM with neither as Halted."""
    spec = vm.spec
    if spec is None:
        return "Halted"
    if spec.run_strategy:
        return spec.run_strategy
    if spec.running is not None:
        return "Always" if spec.running else "Halted"
    return "Halted"


def _no_restart(state: ClusterState, vm: VirtualMachine) -> tuple[Sample, Finding] | None:
    """A running VM's series and finding when its run strategy does not restart it after a
    node failure; None otherwise."""
    ns, vm_name = vm.metadata.namespace, vm.metadata.name
    vmi = state.get(VMIS, ns, vm_name)
    if vmi is None or not vmi_node(vmi):
        return None  # not running: nothing to lose when a node fails
    strategy = effective_run_strategy(vm)
    if strategy not in NO_RESTART_STRATEGIES:
        return None
    obj = ref("VirtualMachine", vm)
    return (
        Sample(NO_RESTART.name, (ns, vm_name, strategy, vmi_node(vmi)), 1, obj),
        Finding(
            SPEC.id,
            Severity.INFO,
            obj,
            f"runStrategy {strategy}: when node {vmi_node(vmi)} fails the VM is not "
            "restarted on another node; use Always or RerunOnFailure for VMs that must "
            "come back",
        ),
    )


def _coverage_of(
    node: Node, machine: Any, mhcs: list[Any], nhcs: list[Any], notes: list[str], no_api: bool
) -> tuple[list[Sample], list[Finding], tuple[float]]:
    """One VM-schedulable node's series, finding when nothing remediates it, and 1.0 then."""
    name = node.metadata.name
    via_mhc = _mhcs_for(machine, mhcs) if machine is not None else []
    via_nhc = [n.metadata.name for n in nhcs if n.spec is not None and selector_matches(n.spec.selector, labels(node))]
    via = (
        "both"
        if via_mhc and via_nhc
        else "machine-health-check"
        if via_mhc
        else "node-health-check"
        if via_nhc
        else "none"
    )
    samples = [Sample(COVERED.name, (name, via), 0 if via == "none" else 1)]
    if via != "none":
        return samples, [], (0.0,)
    if no_api:
        why = (
            "the cluster serves neither the Machine API nor the NodeHealthCheck API (UPI or "
            "bare metal without MachineSets): nothing remediates a failed node"
        )
    elif machine is None:
        why = "the node has no Machine (added outside the Machine API) and no NodeHealthCheck selects it"
    else:
        why = (
            f"no MachineHealthCheck selects its Machine {machine.metadata.namespace}/"
            f"{machine.metadata.name} and no NodeHealthCheck selects the node"
        )
    finding = Finding(
        SPEC.id,
        Severity.WARNING,
        ref("Node", node),
        f"not remediated automatically when it fails: {why}"
        + (f" ({'; '.join(notes)})" if notes else "")
        + "; its VMs stay assigned to it until the Node object is deleted",
    )
    return samples, [finding], (1.0,)


def _coverage(state: ClusterState, no_api: bool) -> tuple[list[Sample], list[Finding], int]:
    """The coverage series and findings of the VM-schedulable nodes in name order, and how
    many nothing remediates; judged per node and kept (domain.incremental.tabled)."""
    by_node = {
        m.status.node_ref.name: m
        for m in state.of(MACHINES)
        if m.status is not None and m.status.node_ref is not None and m.status.node_ref.name
    }
    mhcs, mhc_notes = _counting_mhcs(state)
    nhcs, nhc_notes = _counting_nhcs(state)
    rows = {node.metadata.name: (node, _machine_of(state, node, by_node)) for node in vm_schedulable_nodes(state)}
    inputs = (mhcs, nhcs, mhc_notes + nhc_notes, no_api)
    covered = tabled(state, "node_failure_planning coverage", rows, _coverage_of, inputs, _PARTS, _NUMBERS)
    samples, findings = covered.lists or ([], [])
    return list(samples), list(findings), int(covered.totals[0]) if covered.totals else 0


def _down(state: ClusterState) -> list[str]:
    """The nodes whose Ready condition is False or Unknown."""
    return [n.metadata.name for n in state.nodes if node_ready(n) in ("False", "Unknown")]


# A judgement (_coverage_of, _no_restart): its series and findings; its numbers.
_PARTS, _NUMBERS = itemgetter(0, 1), itemgetter(2)


def evaluate(state: ClusterState, config: Config) -> CheckOutput:
    if not vm_schedulable_nodes(state):
        raise NotApplicable("no VM-schedulable node (kubevirt.io/schedulable=true)")
    out = CheckOutput()
    no_api = MACHINES in state.absent and NHCS in state.absent
    # Kept while the nodes, Machines and health checks do not change.
    samples, findings, uncovered = state.per_kinds(
        f"node_failure_planning coverage (no API: {no_api})",
        ("nodes", MACHINES, MHCS, NHCS),
        lambda s: _coverage(s, no_api),
    )
    out.samples += samples
    out.findings += findings
    out.samples.append(Sample(UNCOVERED.name, (), uncovered))

    # VMIs on NotReady nodes (the active VMIs are kept per node).
    down = state.per_kinds("node_failure_planning down", ("nodes",), _down)
    if down:
        nodes = {n.metadata.name: n for n in state.nodes}
        on = active_vmis_by_node(state)
        stranded = [state.get(VMIS, *where) for name in down for where in on.get(name, ())]
        for vmi in sorted(stranded, key=lambda v: (v.metadata.namespace, v.metadata.name)):
            node_name = vmi_node(vmi)
            node = nodes[node_name]
            obj = ref("VirtualMachineInstance", vmi)
            ns, vmi_name = vmi.metadata.namespace, vmi.metadata.name
            out.samples.append(Sample(NOT_READY.name, (ns, vmi_name, node_name), 1, obj))
            out.findings.append(
                Finding(
                    SPEC.id,
                    Severity.CRITICAL,
                    obj,
                    f"assigned to node {node_name} whose Ready condition is {node_ready(node)}: "
                    "the VM is down until the node recovers or is remediated",
                )
            )

    # Running VMs that are not restarted elsewhere: judged per VM and kept, their series and
    # findings assembled in name order and kept as well (domain.incremental).
    judged = per_object_of_kind(
        state, "node_failure_planning VMs", VMS, lambda vm: _no_restart(state, vm), {VMIS: same_name}
    )
    vms = assembled(state, "node_failure_planning VMs", VMS, judged, {VMIS: same_name}, (), _vm_parts)
    if vms.lists:
        out.samples += vms.lists[0]
        out.findings += vms.lists[1]
    return out


def _vm_parts(judgement: tuple[Sample, Finding]) -> tuple[tuple[Sample], tuple[Finding]]:
    return (judgement[0],), (judgement[1],)


SPEC = CheckSpec(
    id="node_failure_planning",
    anti_pattern=5,
    title="Node failures not planned for",
    severity_rules="critical: a running VMI is assigned to a node whose Ready condition is False or Unknown; "
    "warning: a VM-schedulable node is covered by no MachineHealthCheck (the default "
    "machine-api-termination-handler does not count) and no NodeHealthCheck; "
    "info: a running VM has runStrategy Manual or Once",
    families=(COVERED, UNCOVERED, NOT_READY, NO_RESTART),
    remediation="Create a MachineHealthCheck that selects the worker Machines (IPI clusters) or install the "
    "Node Health Check operator with Self Node Remediation or Fence Agents Remediation and a "
    "NodeHealthCheck over the worker nodes (UPI and bare metal); give VMs that must survive a "
    "node failure runStrategy Always or RerunOnFailure.",
    alerts=(
        AlertDecl("OVVMIOnNotReadyNode", critical="vm_down", names="VirtualMachineInstance/vmi"),
        AlertDecl("OVNodeWithoutRemediation", warning="failure_risk"),
        AlertDecl("OVVMNotRestartedAfterNodeFailure", info="hygiene", names="VirtualMachine/vm"),
    ),
    panels=(
        "ov-overview/VMIs on NotReady nodes",
        "ov-overview/VMs not restarted after a node failure",
    ),
    evaluate=evaluate,
    requires=("nodes",),
    reads=(MACHINES, MHCS, NHCS, "virtualmachineinstances.kubevirt.io", "virtualmachines.kubevirt.io"),
)
