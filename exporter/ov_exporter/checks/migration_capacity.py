"""Anti-pattern 15: parallel live migrations without a dedicated migration network, and
migrations in flight against the cluster and per-node limits."""
from __future__ import annotations

from typing import Any

from ..config import Config
from ..model import CheckOutput, CheckSpec, Family, Finding, NotApplicable, ObjectRef, Sample, Severity
from ..store import ClusterState
from ._k8s import hyperconverged, migration_setting, ref, vm_schedulable_nodes

FINAL_PHASES = ("Succeeded", "Failed")
WARN_RATIO, CRIT_RATIO = 0.8, 1.0  # FACTS.md: 80 % of parallelMigrationsPerCluster warns, 100 % pages

INFO = Family("ov_migration_config", "info",
              "Where the effective live migration settings come from (source: hco, kubevirt or default) and the "
              "dedicated migration network (NAD name; empty: the pod network).", ("source", "network"))
PER_CLUSTER = Family("ov_migration_parallel_per_cluster", "gauge",
                     "Effective parallelMigrationsPerCluster (HCO, else KubeVirt CR, else the default 5).")
PER_NODE = Family("ov_migration_parallel_outbound_per_node_limit", "gauge",
                  "Effective parallelOutboundMigrationsPerNode (HCO, else KubeVirt CR, else the default 2).")
BANDWIDTH = Family("ov_migration_config_bandwidth_bytes_per_second", "gauge",
                   "Configured bandwidthPerMigration in bytes per second; 0 = unlimited.")
TIMEOUT = Family("ov_migration_config_completion_timeout_per_gib_seconds", "gauge",
                 "Configured completionTimeoutPerGiB (HCO, else KubeVirt CR, else the default 150).")
DEDICATED = Family("ov_migration_dedicated_network", "gauge",
                   "1 when live migrations use a dedicated network (liveMigrationConfig.network / "
                   "migrations.network), 0 when they share the pod network.")
IN_FLIGHT = Family("ov_migrations_in_flight", "gauge",
                   "VirtualMachineInstanceMigrations in a non-final phase (not Succeeded or Failed).")
IN_FLIGHT_RATIO = Family("ov_migrations_in_flight_ratio", "gauge",
                         "Migrations in flight divided by parallelMigrationsPerCluster.")
NODE_IN_FLIGHT = Family("ov_node_outbound_migrations_in_flight", "gauge",
                        "Migrations in flight whose source is the node (migrationState.sourceNode, else the VMI's "
                        "node). One series per VM-schedulable node or node with migrations in flight.", ("node",))
NODE_RATIO = Family("ov_node_outbound_migrations_in_flight_ratio", "gauge",
                    "Outbound migrations in flight of a node divided by parallelOutboundMigrationsPerNode.",
                    ("node",))
POD_NETWORK = Family("ov_migrations_pod_network", "gauge",
                     "Completed migrations (Succeeded or Failed VMIMs still in the API) that ran over the pod "
                     "network: their recorded migrationConfiguration names no network, or, without one, the "
                     "cluster has no migration network now.")
PARALLEL_NO_NETWORK = Family("ov_migration_parallel_without_dedicated_network", "gauge",
                             "1 when parallelMigrationsPerCluster is above 1 and migrations share the pod "
                             "network (the anti-pattern), else 0.")

CLUSTER_REF = ObjectRef("Cluster", "", "cluster")


def _judge(ratio: float) -> Severity | None:
    if ratio >= CRIT_RATIO:
        return Severity.CRITICAL
    if ratio >= WARN_RATIO:
        return Severity.WARNING
    return None


def _source(*sources: str) -> str:
    """One source for the info series: the most specific one any setting came from."""
    for s in ("hco", "kubevirt"):
        if s in sources:
            return s
    return "default"


def _vmim_source_node(vmim: Any, vmis: dict) -> str:
    status = vmim.status
    if status is not None and status.migration_state is not None and status.migration_state.source_node:
        return status.migration_state.source_node
    vmi = vmis.get((vmim.metadata.namespace, vmim.spec.vmi_name if vmim.spec else ""))
    return vmi.status.node_name if vmi is not None and vmi.status is not None else ""


def evaluate(state: ClusterState, config: Config) -> CheckOutput:
    if not state.kubevirts and hyperconverged(state) is None and not state.migrations and not state.vmis:
        raise NotApplicable("no KubeVirt or HyperConverged CR and no VMIs: OpenShift Virtualization is not installed")
    out = CheckOutput()
    per_cluster = migration_setting(state, "parallel_migrations_per_cluster", 5)
    per_node = migration_setting(state, "parallel_outbound_migrations_per_node", 2)
    bandwidth = migration_setting(state, "bandwidth_per_migration", 0.0)
    timeout = migration_setting(state, "completion_timeout_per_gib", 150)
    network = migration_setting(state, "network", "")
    cluster_limit, node_limit = max(1, per_cluster.value), max(1, per_node.value)
    dedicated = bool(network.value)
    out.samples += [
        Sample(INFO.name, (_source(per_cluster.source, per_node.source, bandwidth.source, timeout.source,
                                   network.source), network.value or ""), 1),
        Sample(PER_CLUSTER.name, (), per_cluster.value), Sample(PER_NODE.name, (), per_node.value),
        Sample(BANDWIDTH.name, (), float(bandwidth.value or 0)), Sample(TIMEOUT.name, (), timeout.value),
        Sample(DEDICATED.name, (), 1 if dedicated else 0),
    ]

    vmis = state.index("virtualmachineinstances.kubevirt.io")
    in_flight, pod_network = 0, 0
    by_node: dict[str, int] = {}
    for vmim in state.migrations:
        phase = vmim.status.phase if vmim.status else ""
        if phase in FINAL_PHASES:
            ms = vmim.status.migration_state
            cfg = ms.migration_configuration if ms is not None else None
            used_dedicated = bool(cfg.network) if cfg is not None else dedicated
            pod_network += 0 if used_dedicated else 1
            continue
        in_flight += 1
        node = _vmim_source_node(vmim, vmis)
        if node:
            by_node[node] = by_node.get(node, 0) + 1

    ratio = in_flight / cluster_limit
    out.samples += [Sample(IN_FLIGHT.name, (), in_flight), Sample(IN_FLIGHT_RATIO.name, (), ratio),
                    Sample(POD_NETWORK.name, (), pod_network)]
    severity = _judge(ratio)
    if severity:
        out.findings.append(Finding(SPEC.id, severity, CLUSTER_REF,
            f"{in_flight} migrations in flight against parallelMigrationsPerCluster {cluster_limit} "
            f"({per_cluster.source}): {ratio:.0%}; further migrations and node drains queue"))

    nodes = {n.metadata.name for n in vm_schedulable_nodes(state)} | set(by_node)
    for node in sorted(nodes):
        count = by_node.get(node, 0)
        node_ratio = count / node_limit
        out.samples += [Sample(NODE_IN_FLIGHT.name, (node,), count), Sample(NODE_RATIO.name, (node,), node_ratio)]
        severity = _judge(node_ratio)
        if severity:
            out.findings.append(Finding(SPEC.id, severity, ObjectRef("Node", "", node),
                f"{count} outbound migrations in flight against parallelOutboundMigrationsPerNode {node_limit} "
                f"({per_node.source}): {node_ratio:.0%}"))

    anti_pattern = per_cluster.value > 1 and not dedicated
    out.samples.append(Sample(PARALLEL_NO_NETWORK.name, (), 1 if anti_pattern else 0))
    if anti_pattern:
        out.findings.append(Finding(SPEC.id, Severity.WARNING, CLUSTER_REF,
            f"parallelMigrationsPerCluster {per_cluster.value} ({per_cluster.source}) and no dedicated migration "
            f"network: up to {per_cluster.value} migrations compete with VM and pod traffic on the pod network; "
            f"{pod_network} completed migration(s) in the API used it"))
    return out


SPEC = CheckSpec(
    id="migration_capacity",
    anti_pattern=15,
    title="Parallel live migrations without a dedicated migration network",
    severity_rules="warning: parallelMigrationsPerCluster above 1 with no dedicated migration network; "
                   "warning / critical: migrations in flight at 80 % / 100 % of parallelMigrationsPerCluster "
                   "(Cluster) or of parallelOutboundMigrationsPerNode (per source Node)",
    families=(INFO, PER_CLUSTER, PER_NODE, BANDWIDTH, TIMEOUT, DEDICATED, IN_FLIGHT, IN_FLIGHT_RATIO,
              NODE_IN_FLIGHT, NODE_RATIO, POD_NETWORK, PARALLEL_NO_NETWORK),
    remediation="Create a dedicated migration network (a NetworkAttachmentDefinition on a separate NIC, set as "
                "liveMigrationConfig.network in the HyperConverged CR), or lower parallelMigrationsPerCluster; "
                "let migrations in flight drain before starting more (split rebalances into batches of 5 or fewer).",
    evaluate=evaluate,
    requires=("virtualmachineinstancemigrations.kubevirt.io",),
    reads=("hyperconvergeds.hco.kubevirt.io", "kubevirts.kubevirt.io", "virtualmachineinstances.kubevirt.io",
           "nodes"),
)
