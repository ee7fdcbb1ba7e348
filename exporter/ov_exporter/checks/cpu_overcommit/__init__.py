"""Anti-pattern 6: CPU overcommit above 1.8x physical cores (1.2x target in production)."""

from __future__ import annotations

from itertools import repeat
from operator import attrgetter, itemgetter

from ...config import Config
from ...domain.incremental import per_node, tabled
from ...domain.k8s import (
    capacity,
    cpu_allocation_ratio,
    ref,
    threads_per_core,
    vm_schedulable_nodes,
    vmi_dedicated,
    vmi_node,
    vmi_vcpus,
)
from ...model import AlertDecl, CheckOutput, CheckSpec, Family, Finding, ObjectRef, Sample, Severity
from ...records import Node, VirtualMachineInstance
from ...store import ClusterState

RATIO = Family(
    "ov_cpu_overcommit_ratio",
    "gauge",
    "vCPUs of the non-dedicated VMIs running on a node divided by its physical cores. "
    "One series per VM-schedulable node or node running VMIs.",
    ("node",),
)
VCPUS = Family(
    "ov_node_vm_vcpus",
    "gauge",
    "vCPUs (sockets x cores x threads) of the non-dedicated VMIs running on a node.",
    ("node",),
    no_alert="numerator of ov_cpu_overcommit_ratio, which the alerts read",
)
CORES = Family(
    "ov_node_physical_cpu_cores",
    "gauge",
    "Physical CPU cores of a node: status.capacity.cpu divided by threads per core.",
    ("node",),
    no_alert="denominator of ov_cpu_overcommit_ratio (recording rules use it as the list of VM nodes)",
)
THREADS = Family(
    "ov_node_cpu_threads_per_core",
    "gauge",
    "Threads per core used for a node. source: nfd (feature.node.kubernetes.io/"
    "cpu-hardware_multithreading), config (threads-per-core) or assumed (2, neither said; the "
    "node's finding is capped at info).",
    ("node", "source"),
    no_alert="configuration: the threads-per-core factor behind the physical core count",
)
CLUSTER = Family(
    "ov_cluster_cpu_overcommit_ratio",
    "gauge",
    "vCPUs of all non-dedicated running VMIs divided by the physical cores of VM-schedulable nodes.",
)
ALLOCATION = Family(
    "ov_vmi_cpu_allocation_ratio",
    "gauge",
    "Configured vmiCPUAllocationRatio (a vCPU of a VM without CPU requests requests 1/ratio of a "
    "CPU); configuration only, never a finding. source: hco, kubevirt or default (10).",
    ("source",),
    no_alert=(
        "configuration: vmiCPUAllocationRatio sets CPU requests per vCPU (HCO writes 10 into every "
        "HyperConverged CR), not the vCPU:core overcommit"
    ),
)
THRESHOLD = Family(
    "ov_cpu_overcommit_threshold_ratio",
    "gauge",
    "Configured CPU overcommit thresholds: level target (profile) and max.",
    ("level",),
    no_alert="threshold gauge: the alerts compare against it, it is no finding",
)

CLUSTER_REF = ObjectRef("Cluster", "", "cluster")


def _judge(ratio: float, config: Config) -> Severity | None:
    if ratio > config.thresholds.cpu_overcommit_max:
        return Severity.WARNING
    if ratio > config.cpu_target:
        return Severity.INFO
    return None


VMIS = "virtualmachineinstances.kubevirt.io"


def _vcpus_on(vmi: VirtualMachineInstance) -> tuple[str, float] | None:
    """(node, vCPUs) of an active VMI without dedicated CPUs."""
    node = vmi_node(vmi)
    return (node, vmi_vcpus(vmi)) if node and not vmi_dedicated(vmi) else None


# A node's judgement (_node): its series and findings; its vCPUs, cores and 1.0 when its
# threads per core were assumed (summed over the nodes).
_PARTS, _NUMBERS = itemgetter(0, 1), itemgetter(2)
_NAME = attrgetter("metadata.name")


def _node(
    node: Node, used: int, schedulable: bool, hosting: bool, config: Config
) -> tuple[list[Sample], list[Finding], tuple[float, float, float]] | None:
    """One node's series, findings and numbers (see _NUMBERS); None for a node that is not
    VM-schedulable and hosts no VMI."""
    if not schedulable and not hosting:
        return None
    name = node.metadata.name
    logical = capacity(node, "cpu")
    if logical is None:
        message = "node has no status.capacity.cpu; overcommit not computed"
        return [], [Finding(SPEC.id, Severity.INFO, ref("Node", node), message)], (0.0, 0.0, 0.0)
    threads, source = threads_per_core(node, config)
    cores = logical / threads
    ratio = used / cores
    samples = [
        Sample(RATIO.name, (name,), ratio),
        Sample(VCPUS.name, (name,), used),
        Sample(CORES.name, (name,), cores),
        Sample(THREADS.name, (name, source), threads),
    ]
    findings = []
    severity = _judge(ratio, config)
    if severity:
        above_max = ratio > config.thresholds.cpu_overcommit_max
        limit = config.thresholds.cpu_overcommit_max if above_max else config.cpu_target
        message = (
            f"{used} vCPUs on {cores:g} physical cores ({threads} threads/core from {source}): "
            f"ratio {ratio:.2f} above {limit:g}"
        )
        if source == "assumed":  # the core count is a guess: not worth a ticket
            severity = Severity.INFO
            message += (
                "; threads per core assumed: label the node with NFD "
                "(feature.node.kubernetes.io/cpu-hardware_multithreading) or set threads-per-core"
            )
        findings.append(Finding(SPEC.id, severity, ref("Node", node), message))
    return samples, findings, (float(used), cores if schedulable else 0.0, 1.0 if source == "assumed" else 0.0)


def evaluate(state: ClusterState, config: Config) -> CheckOutput:
    out = CheckOutput()
    # Kept per node and brought up to date per changed VMI (domain.incremental).
    vcpus = per_node(state, "cpu_overcommit vCPUs", VMIS, _vcpus_on)
    schedulable = set(map(_NAME, vm_schedulable_nodes(state)))
    # Judged per node, in name order, and kept: after a change only the nodes whose record,
    # vCPUs or schedulability differ are judged again (domain.incremental.tabled).
    names = list(map(_NAME, state.nodes))
    used = map(int, map(vcpus.get, names, repeat(0)))
    rows = dict(
        zip(names, zip(state.nodes, used, map(schedulable.__contains__, names), map(vcpus.__contains__, names)))
    )
    nodes = tabled(state, SPEC.id, rows, _node, (config,), _PARTS, _NUMBERS)
    samples, findings = nodes.lists or ([], [])
    out.samples, out.findings = list(samples), list(findings)
    total_vcpus, total_cores, assumed = nodes.totals or (0.0, 0.0, 0.0)
    total_vcpus = int(total_vcpus)

    if total_cores:
        cluster_ratio = total_vcpus / total_cores
        out.samples.append(Sample(CLUSTER.name, (), cluster_ratio))
        severity = _judge(cluster_ratio, config)
        if severity:
            message = f"cluster-wide {total_vcpus} vCPUs on {total_cores:g} physical cores: ratio {cluster_ratio:.2f}"
            if assumed:
                severity = Severity.INFO
                message += f"; threads per core assumed on {int(assumed)} node(s)"
            out.findings.append(Finding(SPEC.id, severity, CLUSTER_REF, message))

    allocation = cpu_allocation_ratio(state)
    out.samples.append(Sample(ALLOCATION.name, (allocation.source,), allocation.value))
    out.samples += [
        Sample(THRESHOLD.name, ("target",), config.cpu_target),
        Sample(THRESHOLD.name, ("max",), config.thresholds.cpu_overcommit_max),
    ]
    return out


SPEC = CheckSpec(
    id="cpu_overcommit",
    anti_pattern=6,
    title="CPU overcommit above physical cores",
    severity_rules="warning: node or cluster ratio above thresholds.cpu-overcommit-max (1.8); info: above the "
    "profile target (production 1.2, dev-test 1.5), or a node above either whose threads per core "
    "were assumed (no NFD label, no threads-per-core setting), and the cluster ratio when any "
    "node's were. vmiCPUAllocationRatio is no finding (it only scales the CPU requests of VMs "
    "without requests; HCO writes its default into every CR)",
    families=(RATIO, VCPUS, CORES, THREADS, CLUSTER, ALLOCATION, THRESHOLD),
    remediation="Live migrate VMs from the node to nodes below the target, add capacity, or give "
    "latency-sensitive VMs dedicated CPUs; keep vCPUs within 1.2x physical cores in production.",
    alerts=(
        AlertDecl("OVNodeCPUOvercommitted", warning="performance_risk", info="hygiene", names="Node/node"),
        AlertDecl("OVClusterCPUOvercommitted", warning="performance_risk", info="hygiene"),
    ),
    settings=("profile", "thresholds.cpu-overcommit-max", "thresholds.cpu-overcommit-target", "threads-per-core"),
    panels=(
        "ov-overview/CPU overcommit per node (vCPUs / physical cores)",
        "ov-overview/Configured CPU overcommit maximum",
        "ov-post-rebalance/Before / after per node (rebalance start vs end of range)",
        "ov-post-rebalance/CPU utilisation per VM node",
        "ov-post-rebalance/CPU spread (busiest - idlest VM node)",
        "ov-post-rebalance/Memory utilisation per VM node (node_exporter)",
        "ov-post-rebalance/VM vCPUs per node",
        "ov-post-rebalance/Host CPU steal per VM node (node_exporter)",
        "ov-post-rebalance/Node pressure (PSI): share of time tasks waited",
    ),
    evaluate=evaluate,
    requires=("nodes", "virtualmachineinstances.kubevirt.io"),
    reads=("hyperconvergeds.hco.kubevirt.io", "kubevirts.kubevirt.io"),
)
