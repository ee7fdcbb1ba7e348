"""Anti-pattern 6 (memory half): guest memory above 0.9x of node memory."""

from __future__ import annotations

from itertools import repeat
from operator import attrgetter, itemgetter

from ...config import Config
from ...domain.incremental import members, per_node, tabled
from ...domain.k8s import capacity, memory_overcommit_percentage, ref, vm_schedulable_nodes, vmi_guest_memory, vmi_node
from ...model import AlertDecl, CheckOutput, CheckSpec, Family, Finding, ObjectRef, Sample, Severity
from ...records import Node, VirtualMachineInstance
from ...store import ClusterState

RATIO = Family(
    "ov_memory_overcommit_ratio",
    "gauge",
    "Guest memory of the VMIs running on a node divided by the node's memory capacity. "
    "One series per VM-schedulable node or node running VMIs.",
    ("node",),
)
GUEST = Family(
    "ov_node_vm_guest_memory_bytes",
    "gauge",
    "Guest memory of the VMIs running on a node.",
    ("node",),
    no_alert="numerator of ov_memory_overcommit_ratio, which the alerts read",
)
CAPACITY = Family(
    "ov_node_memory_capacity_bytes",
    "gauge",
    "Memory capacity of a node (status.capacity.memory).",
    ("node",),
    no_alert="denominator of ov_memory_overcommit_ratio",
)
CLUSTER = Family(
    "ov_cluster_memory_overcommit_ratio",
    "gauge",
    "Guest memory of all running VMIs divided by the memory of VM-schedulable nodes.",
)
PERCENTAGE = Family(
    "ov_memory_overcommit_percentage",
    "gauge",
    "Configured memoryOvercommitPercentage (100 = none); source: hco, kubevirt or default.",
    ("source",),
    no_alert="configuration (memoryOvercommitPercentage); the check raises no finding on it",
)
THRESHOLD = Family(
    "ov_memory_overcommit_threshold_ratio",
    "gauge",
    "Configured memory overcommit thresholds by level (warning, critical).",
    ("level",),
    no_alert="threshold gauge: the alerts compare against it, it is no finding",
)


def _judge(ratio: float, config: Config) -> Severity | None:
    if ratio > config.thresholds.memory_overcommit_critical:
        return Severity.WARNING
    if ratio > config.thresholds.memory_overcommit_max:
        return Severity.INFO
    return None


VMIS = "virtualmachineinstances.kubevirt.io"


def _guest_on(vmi: VirtualMachineInstance) -> tuple[str, float] | None:
    """(node, guest memory) of an active VMI whose guest memory is known."""
    node = vmi_node(vmi)
    memory = vmi_guest_memory(vmi) if node else None
    return (node, memory) if memory is not None else None


def _unknown(vmi: VirtualMachineInstance) -> bool:
    return bool(vmi_node(vmi)) and vmi_guest_memory(vmi) is None


# A node's judgement (_node): its series and findings; its guest memory and capacity (summed
# over the nodes).
_PARTS, _NUMBERS = itemgetter(0, 1), itemgetter(2)
_NAME = attrgetter("metadata.name")


def _node(
    node: Node, used: float, schedulable: bool, hosting: bool, config: Config
) -> tuple[list[Sample], list[Finding], tuple[float, float]] | None:
    """One node's series, findings and numbers (see _NUMBERS); None for a node that is not
    VM-schedulable and hosts no VMI."""
    if not schedulable and not hosting:
        return None
    name = node.metadata.name
    cap = capacity(node, "memory")
    if cap is None:
        message = "node has no status.capacity.memory; overcommit not computed"
        return [], [Finding(SPEC.id, Severity.INFO, ref("Node", node), message)], (0.0, 0.0)
    ratio = used / cap
    samples = [
        Sample(RATIO.name, (name,), ratio),
        Sample(GUEST.name, (name,), used),
        Sample(CAPACITY.name, (name,), cap),
    ]
    findings = []
    severity = _judge(ratio, config)
    if severity:
        limit = (
            config.thresholds.memory_overcommit_critical
            if severity is Severity.WARNING
            else config.thresholds.memory_overcommit_max
        )
        findings.append(
            Finding(
                SPEC.id,
                severity,
                ref("Node", node),
                f"{used / 2**30:.1f} GiB of guest memory on {cap / 2**30:.1f} GiB: ratio {ratio:.2f} above {limit:g}",
            )
        )
    return samples, findings, (used, cap if schedulable else 0.0)


def evaluate(state: ClusterState, config: Config) -> CheckOutput:
    out = CheckOutput()
    # Kept per node and brought up to date per changed VMI (domain.incremental).
    guest = per_node(state, "memory_overcommit guest memory", VMIS, _guest_on)
    unknown = len(members(state, "memory_overcommit unknown guest memory", VMIS, _unknown))

    schedulable = set(map(_NAME, vm_schedulable_nodes(state)))
    # Judged per node, in name order, and kept: after a change only the nodes whose record,
    # guest memory or schedulability differ are judged again (domain.incremental.tabled).
    names = list(map(_NAME, state.nodes))
    used = map(guest.get, names, repeat(0.0))
    rows = dict(
        zip(names, zip(state.nodes, used, map(schedulable.__contains__, names), map(guest.__contains__, names)))
    )
    nodes = tabled(state, SPEC.id, rows, _node, (config,), _PARTS, _NUMBERS)
    samples, findings = nodes.lists or ([], [])
    out.samples, out.findings = list(samples), list(findings)
    total_guest, total_capacity = nodes.totals or (0.0, 0.0)
    if total_capacity:
        ratio = total_guest / total_capacity
        out.samples.append(Sample(CLUSTER.name, (), ratio))
        severity = _judge(ratio, config)
        if severity:
            out.findings.append(
                Finding(
                    SPEC.id,
                    severity,
                    ObjectRef("Cluster", "", "cluster"),
                    f"cluster-wide guest memory at {ratio:.2f} of node memory",
                )
            )
    if unknown:
        out.findings.append(
            Finding(
                SPEC.id,
                Severity.INFO,
                ObjectRef("Cluster", "", "cluster"),
                f"{unknown} running VMI(s) declare no guest memory or memory request",
            )
        )
    pct = memory_overcommit_percentage(state)
    out.samples.append(Sample(PERCENTAGE.name, (pct.source,), pct.value))
    out.samples += [
        Sample(THRESHOLD.name, ("warning",), config.thresholds.memory_overcommit_max),
        Sample(THRESHOLD.name, ("critical",), config.thresholds.memory_overcommit_critical),
    ]
    return out


SPEC = CheckSpec(
    id="memory_overcommit",
    anti_pattern=6,
    title="Guest memory above 0.9x of node memory",
    severity_rules="warning: node or cluster ratio above thresholds.memory-overcommit-critical (1.0); "
    "info: above thresholds.memory-overcommit-max (0.9), or VMIs without guest memory",
    families=(RATIO, GUEST, CAPACITY, CLUSTER, PERCENTAGE, THRESHOLD),
    remediation="Move VMs off the node (live migration to nodes with headroom), add memory or nodes, and keep "
    "memoryOvercommitPercentage at 100 unless free page reporting and swap are planned for.",
    alerts=(
        AlertDecl("OVNodeMemoryOvercommitted", warning="performance_risk", info="hygiene", names="Node/node"),
        AlertDecl("OVClusterMemoryOvercommitted", warning="performance_risk", info="hygiene"),
    ),
    settings=("thresholds.memory-overcommit-max", "thresholds.memory-overcommit-critical"),
    panels=(
        "ov-overview/Memory overcommit per node (guest memory / capacity)",
        "ov-overview/Configured memory overcommit warning",
        "ov-post-rebalance/Guest memory placed per node",
    ),
    evaluate=evaluate,
    requires=("nodes", "virtualmachineinstances.kubevirt.io"),
    reads=("hyperconvergeds.hco.kubevirt.io", "kubevirts.kubevirt.io"),
)
