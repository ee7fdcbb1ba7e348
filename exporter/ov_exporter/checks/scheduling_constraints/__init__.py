"""Anti-pattern 4: excessive affinity, anti-affinity, node selector, toleration and
topology spread rules; VMs pinned to one node; VMIs the scheduler cannot place."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ...config import Config
from ...domain.incremental import NO_PART, Part, members, per_object_joined, same_name
from ...domain.k8s import (
    Setting,
    labels,
    ref,
    vm_node,
    vm_schedulable_nodes,
    vm_template_spec,
)
from ...domain.readiness import eviction_default
from ...domain.selectors import node_term_matches, tolerates
from ...model import AlertDecl, CheckOutput, CheckSpec, Family, Finding, Sample, Severity
from ...records import KIND_BY_KEY, Node, VirtualMachine, VirtualMachineInstance
from ...store import Changed, ClusterState, uid_of

PENDING_PHASES = ("Pending", "Scheduling")
HOSTNAME = "kubernetes.io/hostname"
VMS = "virtualmachines.kubevirt.io"
VMIS = "virtualmachineinstances.kubevirt.io"

CONSTRAINTS = Family(
    "ov_vm_scheduling_constraints",
    "gauge",
    "Scheduling constraints of a VM (nodeSelector keys, node affinity expressions, pod affinity and "
    "anti-affinity terms, tolerations, topology spread constraints). One series per VM with an issue "
    'in ov_vm_scheduling_issue; node: where its VMI runs ("" when stopped).',
    ("namespace", "vm", "node"),
    per_object=True,
    no_alert=(
        'the constraint count behind issue="excessive" of ov_vm_scheduling_issue, which the alerts read (same VMs)'
    ),
)
ISSUE = Family(
    "ov_vm_scheduling_issue",
    "gauge",
    "1 per scheduling issue of a VM: excessive (more constraints than thresholds.scheduling-constraints-max), "
    "mixed (required and preferred affinity terms), pinned (exactly one VM-schedulable node fits), "
    'no_feasible_node (no VM-schedulable node fits). node: where its VMI runs ("" when stopped).',
    ("namespace", "vm", "issue", "eviction_strategy", "node"),
    per_object=True,
)
UNSCHEDULABLE = Family(
    "ov_vmi_unschedulable",
    "gauge",
    "1 for a VMI in phase Pending or Scheduling whose PodScheduled condition is False with reason "
    'Unschedulable. node is always "" (such a VMI has none; kept for the label set of VM alerts).',
    ("namespace", "vmi", "phase", "node"),
    per_object=True,
)
PENDING_SINCE = Family(
    "ov_vmi_pending_since_timestamp_seconds",
    "gauge",
    "When a VMI in phase Pending or Scheduling entered that phase (status.phaseTransitionTimestamps), "
    'whatever its conditions; the alerts judge how long it waits. node is always "".',
    ("namespace", "vmi", "phase", "node"),
    per_object=True,
)
PENDING_THRESHOLD = Family(
    "ov_vmi_pending_threshold_seconds",
    "gauge",
    "Configured thresholds.vmi-pending-minutes, in seconds: how long a VMI may wait in Pending or Scheduling "
    "without an Unschedulable verdict (the finding and OVVMIUnschedulable's warning read it).",
)
PINNED_COUNT = Family(
    "ov_vms_pinned_to_node",
    "gauge",
    "VMs whose node selector, node affinity and tolerations fit exactly one VM-schedulable node.",
    no_alert='count of the issue="pinned" series of ov_vm_scheduling_issue; alerting on both would notify twice',
)
UNSCHEDULABLE_COUNT = Family(
    "ov_vmis_unschedulable",
    "gauge",
    "VMIs in phase Pending or Scheduling that the scheduler reports Unschedulable.",
    no_alert="count of the ov_vmi_unschedulable series, which the alerts read",
)


@dataclass(slots=True)
class Constraints:
    node_selector: int = 0
    node_affinity_required: int = 0
    node_affinity_preferred: int = 0
    pod_affinity_required: int = 0
    pod_affinity_preferred: int = 0
    tolerations: int = 0
    topology_spread: int = 0
    parts: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return (
            self.node_selector
            + self.node_affinity_required
            + self.node_affinity_preferred
            + self.pod_affinity_required
            + self.pod_affinity_preferred
            + self.tolerations
            + self.topology_spread
        )

    @property
    def required_affinity(self) -> int:
        return self.node_affinity_required + self.pod_affinity_required

    @property
    def preferred_affinity(self) -> int:
        return self.node_affinity_preferred + self.pod_affinity_preferred


def _term_size(term: Any) -> int:
    return max(1, len(term.match_expressions or []) + len(term.match_fields or [])) if term else 1


def count(spec: Any) -> Constraints:
    """Count a VMI spec's constraints; each node affinity term counts its expressions (at least 1)."""
    c = Constraints()
    c.node_selector = len(spec.node_selector or {})
    aff = spec.affinity
    node_aff = aff.node_affinity if aff else None
    if node_aff is not None:
        req = node_aff.required_during_scheduling_ignored_during_execution
        c.node_affinity_required = sum(_term_size(t) for t in (req.node_selector_terms or [])) if req else 0
        c.node_affinity_preferred = sum(
            _term_size(p.preference) for p in node_aff.preferred_during_scheduling_ignored_during_execution or []
        )
    for pod_aff in (aff.pod_affinity if aff else None, aff.pod_anti_affinity if aff else None):
        if pod_aff is not None:
            c.pod_affinity_required += len(pod_aff.required_during_scheduling_ignored_during_execution or [])
            c.pod_affinity_preferred += len(pod_aff.preferred_during_scheduling_ignored_during_execution or [])
    c.tolerations = len(spec.tolerations or [])
    c.topology_spread = len(spec.topology_spread_constraints or [])
    for n, what in (
        (c.node_selector, "nodeSelector key(s)"),
        (c.node_affinity_required, "required node affinity expression(s)"),
        (c.node_affinity_preferred, "preferred node affinity expression(s)"),
        (c.pod_affinity_required, "required pod (anti-)affinity term(s)"),
        (c.pod_affinity_preferred, "preferred pod (anti-)affinity term(s)"),
        (c.tolerations, "toleration(s)"),
        (c.topology_spread, "topology spread constraint(s)"),
    ):
        if n:
            c.parts.append(f"{n} {what}")
    return c


def fits(spec: Any, node: Node) -> bool:
    """Whether a node satisfies the spec's nodeSelector, required node affinity and taints."""
    name, lbls = node.metadata.name, labels(node)
    for key, value in (spec.node_selector or {}).items():
        if lbls.get(key) != value:
            return False
    aff = spec.affinity
    req = aff.node_affinity.required_during_scheduling_ignored_during_execution if aff and aff.node_affinity else None
    if req is not None and not any(node_term_matches(t, name, lbls) for t in req.node_selector_terms or []):
        return False
    taints = (node.spec.taints if node.spec else None) or []
    return all(tolerates(spec.tolerations or [], t) for t in taints if t.effect in ("NoSchedule", "NoExecute"))


def restricts_nodes(spec: Any) -> bool:
    aff = spec.affinity
    return bool(spec.node_selector) or bool(
        aff and aff.node_affinity and aff.node_affinity.required_during_scheduling_ignored_during_execution
    )


def _how(spec: Any) -> str:
    if HOSTNAME in (spec.node_selector or {}):
        return "nodeSelector on kubernetes.io/hostname"
    aff = spec.affinity
    has_affinity = bool(
        aff and aff.node_affinity and aff.node_affinity.required_during_scheduling_ignored_during_execution
    )
    if spec.node_selector and has_affinity:
        return "its nodeSelector and required node affinity"
    return "its nodeSelector" if spec.node_selector else "its required node affinity"


def _phase_since(status: Any) -> float | None:
    """Unix time of the last transition into the current phase, when KubeVirt recorded it."""
    stamps = [
        t.phase_transition_timestamp
        for t in status.phase_transition_timestamps or []
        if t.phase == status.phase and t.phase_transition_timestamp is not None
    ]
    return max(stamps).timestamp() if stamps else None


def _pod_scheduled(vmi: VirtualMachineInstance) -> Any | None:
    for cond in (vmi.status.conditions if vmi.status else None) or []:
        if cond.type == "PodScheduled":
            return cond
    return None


def _judge_vms(state: ClusterState, limit: int) -> tuple[list[Sample], list[Finding], int]:
    """The VMs' series, findings and how many are pinned to one node: judged per VM and
    kept, put together and kept; after a change only the changed VMs, the VMs of changed
    VMIs and, when a node changed, the VMs whose constraints restrict their nodes are judged
    again (and put in again)."""
    default_strategy = eviction_default(state)
    found: dict[str, list[Node]] = {}

    def nodes() -> list[Node]:
        if "nodes" not in found:
            found["nodes"] = sorted(vm_schedulable_nodes(state), key=lambda n: n.metadata.name)
        return found["nodes"]

    def judge(vm: VirtualMachine) -> Part:
        judgement = _judge_vm(state, vm, limit, default_strategy, nodes)
        return NO_PART if judgement is None else (judgement[0], judgement[1], (judgement[2],))

    restricting = members(state, "scheduling_constraints restricting VMs", VMS, _restricting)
    judged = per_object_joined(
        state,
        "scheduling_constraints VMs",
        VMS,
        judge,
        {VMIS: same_name, "nodes": lambda s, changed: restricting},
        (limit, default_strategy),
    )
    samples, findings = judged.lists or ([], [])
    return list(samples), list(findings), int(judged.totals[0]) if judged.totals else 0


def _pending(state: ClusterState) -> dict[str, VirtualMachineInstance]:
    """uid -> the VMIs in a pending phase, in the VMIs' order; kept and brought up to date
    per changed VMI."""
    return state.per_changes("scheduling_constraints pending VMIs", (VMIS,), _all_pending, _pending_changed)


def _is_pending(vmi: VirtualMachineInstance) -> bool:
    return vmi.status is not None and vmi.status.phase in PENDING_PHASES


def _all_pending(state: ClusterState) -> dict[str, VirtualMachineInstance]:
    kind = KIND_BY_KEY[VMIS]
    return {uid_of(kind, vmi): vmi for vmi in state.vmis if _is_pending(vmi)}


def _pending_changed(
    state: ClusterState, kept: dict[str, VirtualMachineInstance], changed: Mapping[str, tuple[Changed, ...]]
) -> dict[str, VirtualMachineInstance]:
    out = dict(kept)
    for c in changed[VMIS]:
        if c.record is not None and _is_pending(c.record):
            if c.uid not in out:
                return _all_pending(state)  # it came or became pending: its place in the order is the state's
            out[c.uid] = c.record
        else:
            out.pop(c.uid, None)
    return out


def _restricting(vm: VirtualMachine) -> bool:
    spec = vm_template_spec(vm)
    return spec is not None and restricts_nodes(spec)


def _judge_vm(
    state: ClusterState, vm: VirtualMachine, limit: int, default_strategy: Setting, all_nodes: Callable[[], list[Node]]
) -> tuple[list[Sample], list[Finding], int] | None:
    """One VM's series, findings and whether it is pinned (None: nothing to report); the
    VM-schedulable nodes are read only when its constraints restrict its nodes."""
    out = CheckOutput()
    spec = vm_template_spec(vm)
    if spec is None:
        return None
    pinned_count = 0
    ns, name = vm.metadata.namespace, vm.metadata.name
    obj = ref("VirtualMachine", vm)
    strategy = spec.eviction_strategy or default_strategy.value
    c = count(spec)
    summary = ", ".join(c.parts)
    issues: list[str] = []
    if c.total > limit:
        issues.append("excessive")
        out.findings.append(
            Finding(
                SPEC.id,
                Severity.INFO,
                obj,
                f"{c.total} scheduling constraints ({summary}), above thresholds.scheduling-constraints-max "
                f"{limit}: slow scheduling, hard to reason about, easy to make unsatisfiable",
            )
        )
    if c.required_affinity and c.preferred_affinity:
        issues.append("mixed")
        out.findings.append(
            Finding(
                SPEC.id,
                Severity.INFO,
                obj,
                f"mixes {c.required_affinity} required and {c.preferred_affinity} preferred affinity "
                f"term(s)/expression(s); keep one kind of rule per VM",
            )
        )
    nodes = all_nodes() if restricts_nodes(spec) else []
    if nodes:
        feasible = [n.metadata.name for n in nodes if fits(spec, n)]
        if not feasible:
            issues.append("no_feasible_node")
            out.findings.append(
                Finding(
                    SPEC.id,
                    Severity.WARNING,
                    obj,
                    f"no VM-schedulable node satisfies the nodeSelector, required node affinity and tolerations "
                    f"({summary}): the VM cannot start, restart or migrate",
                )
            )
        elif len(feasible) == 1 and len(nodes) > 1:
            issues.append("pinned")
            pinned_count += 1
            how = _how(spec)
            origin = "set on the VM" if spec.eviction_strategy else f"cluster default from {default_strategy.source}"
            impact = (
                "node drains block on this VM (nowhere to live migrate)"
                if strategy == "LiveMigrate"
                else "the VM cannot be evacuated or restarted on another node"
            )
            out.findings.append(
                Finding(
                    SPEC.id,
                    Severity.WARNING,
                    obj,
                    f"pinned to node {feasible[0]} by {how} (1 of {len(nodes)} VM-schedulable nodes fits); "
                    f"eviction strategy {strategy} ({origin}): {impact}",
                )
            )
    if not issues:
        return None
    node = vm_node(state, vm)
    out.samples.append(Sample(CONSTRAINTS.name, (ns, name, node), c.total, obj))
    out.samples += [Sample(ISSUE.name, (ns, name, issue, strategy, node), 1, obj) for issue in issues]
    return out.samples, out.findings, pinned_count


def evaluate(state: ClusterState, config: Config) -> CheckOutput:
    out = CheckOutput()
    pending_max = config.thresholds.vmi_pending_minutes * 60.0
    out.samples.append(Sample(PENDING_THRESHOLD.name, (), pending_max))
    limit = config.thresholds.scheduling_constraints_max
    # What the VMs' constraints say does not depend on the clock: kept per VM.
    samples, findings, pinned_count = _judge_vms(state, limit)
    out.samples += samples
    out.findings += findings

    unschedulable = 0
    for vmi in _pending(state).values():
        status = vmi.status
        since = _phase_since(status)
        key = (vmi.metadata.namespace, vmi.metadata.name, status.phase, "")
        obj = ref("VirtualMachineInstance", vmi)
        if since is not None:
            out.samples.append(Sample(PENDING_SINCE.name, key, since, obj))
        cond = _pod_scheduled(vmi)
        if cond is None or cond.status != "False" or cond.reason != "Unschedulable":
            # No reason given: a finding once it waited too long (live sources know the time).
            if since is not None and state.now is not None and state.now - since > pending_max:
                out.findings.append(
                    Finding(
                        SPEC.id,
                        Severity.WARNING,
                        obj,
                        f"phase {status.phase} for {(state.now - since) / 60:.0f} min without a node and without an "
                        f"Unschedulable condition: look at the virt-launcher pod and its events",
                    )
                )
            continue
        unschedulable += 1
        summary = ", ".join(count(vmi.spec).parts) if vmi.spec else ""
        out.samples.append(Sample(UNSCHEDULABLE.name, key, 1, obj))
        out.findings.append(
            Finding(
                SPEC.id,
                Severity.CRITICAL,
                obj,
                f"phase {status.phase}, PodScheduled False (Unschedulable): {cond.message or 'no message'}"
                + (f"; constraints: {summary}" if summary else ""),
            )
        )
    out.samples += [Sample(PINNED_COUNT.name, (), pinned_count), Sample(UNSCHEDULABLE_COUNT.name, (), unschedulable)]
    return out


SPEC = CheckSpec(
    id="scheduling_constraints",
    anti_pattern=4,
    title="Excessive or conflicting VM scheduling constraints",
    severity_rules="critical: a VMI is Pending/Scheduling and Unschedulable (the VM is down); warning: a VM fits "
    "exactly one VM-schedulable node (pinned) or none, or a VMI has waited in Pending/Scheduling for "
    "more than thresholds.vmi-pending-minutes (default 15) without a reason (live sources only: snapshots "
    "carry no clock); info: more "
    "constraints than thresholds.scheduling-constraints-max (5), or required and preferred affinity "
    "terms mixed",
    families=(CONSTRAINTS, ISSUE, UNSCHEDULABLE, PENDING_SINCE, PENDING_THRESHOLD, PINNED_COUNT, UNSCHEDULABLE_COUNT),
    remediation="Keep one primary constraint per VM (a nodeSelector or one affinity rule), add tolerations only "
    "for tainted nodes, do not mix required and preferred rules, and never pin a VM that must live "
    "migrate to one host: select a group of nodes by label instead.",
    alerts=(
        AlertDecl("OVVMSchedulingConstraints", warning="migration_risk", info="hygiene", names="VirtualMachine/vm"),
        AlertDecl("OVVMIUnschedulable", critical="vm_down", warning="degraded", names="VirtualMachineInstance/vmi"),
    ),
    settings=("thresholds.scheduling-constraints-max", "thresholds.vmi-pending-minutes"),
    panels=(
        "ov-overview/VMs with scheduling issues (value: constraints on the VM)",
        "ov-overview/Unschedulable VMIs",
        "ov-overview/VMIs waiting to be scheduled since",
    ),
    uses_clock=True,
    evaluate=evaluate,
    requires=("virtualmachines.kubevirt.io",),
    reads=("virtualmachineinstances.kubevirt.io", "nodes", "hyperconvergeds.hco.kubevirt.io", "kubevirts.kubevirt.io"),
)
