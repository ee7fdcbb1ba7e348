"""Anti-pattern 15: parallel live migrations without a dedicated migration network, and a
migration queue that stopped draining. In-flight counts against the cluster and per-node
limits are gauges only: KubeVirt queues migrations above its limits as Pending, which is
normal during drains and upgrades."""

from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import chain
from typing import Any, Iterable

from ...config import Config
from ...domain.k8s import hyperconverged, migration_setting, vm_schedulable_nodes
from ...domain.migrations import FINAL_PHASES, PENDING_PHASES, created, phase_group, phase_of, ts
from ...model import AlertDecl, CheckOutput, CheckSpec, Family, Finding, NotApplicable, ObjectRef, Sample, Severity
from ...records import KIND_BY_KEY, VirtualMachineInstanceMigration
from ...store import Changed, ClusterState, uid_of

INFO = Family(
    "ov_migration_config",
    "info",
    "Where the effective live migration settings come from (source: hco, kubevirt or default) and the "
    "dedicated migration network (NAD name; empty: the pod network).",
    ("source", "network"),
    no_alert="configuration: where the migration settings come from and the network name",
)
PER_CLUSTER = Family(
    "ov_migration_parallel_per_cluster",
    "gauge",
    "Effective parallelMigrationsPerCluster (HCO, else KubeVirt CR, else the default 5).",
    no_alert=(
        "configuration; the dashboards' in-flight ratio divides by it "
        "(cluster:ov_parallel_migrations_per_cluster:limit)"
    ),
)
PER_NODE = Family(
    "ov_migration_parallel_outbound_per_node_limit",
    "gauge",
    "Effective parallelOutboundMigrationsPerNode (HCO, else KubeVirt CR, else the default 2).",
    no_alert="configuration; denominator of ov_node_outbound_migrations_in_flight_ratio",
)
BANDWIDTH = Family(
    "ov_migration_config_bandwidth_bytes_per_second",
    "gauge",
    "Configured bandwidthPerMigration in bytes per second; 0 = unlimited.",
    no_alert="configuration (bandwidthPerMigration, 0 = unlimited)",
)
TIMEOUT = Family(
    "ov_migration_config_completion_timeout_per_gib_seconds",
    "gauge",
    "Configured completionTimeoutPerGiB (HCO, else KubeVirt CR, else the default 150).",
    no_alert="configuration (completionTimeoutPerGiB)",
)
DEDICATED = Family(
    "ov_migration_dedicated_network",
    "gauge",
    "1 when live migrations use a dedicated network (liveMigrationConfig.network / "
    "migrations.network), 0 when they share the pod network.",
    no_alert="input of ov_migration_parallel_without_dedicated_network, which alerts read",
)
IN_FLIGHT = Family(
    "ov_migrations_in_flight",
    "gauge",
    "VirtualMachineInstanceMigrations in a non-final phase (not Succeeded or Failed).",
    no_alert=(
        "dashboard series: KubeVirt queues migrations above its limits, so a full queue is no alert "
        "(OVMigrationQueueStalled judges a queue that stops draining)"
    ),
)
IN_FLIGHT_RATIO = Family(
    "ov_migrations_in_flight_ratio",
    "gauge",
    "Migrations in flight divided by parallelMigrationsPerCluster.",
    no_alert="dashboard series, as ov_migrations_in_flight",
)
NODE_IN_FLIGHT = Family(
    "ov_node_outbound_migrations_in_flight",
    "gauge",
    "Migrations in flight whose source is the node (migrationState.sourceNode, else the VMI's "
    "node). One series per VM-schedulable node or node with migrations in flight.",
    ("node",),
    no_alert="dashboard series, as ov_migrations_in_flight",
)
NODE_RATIO = Family(
    "ov_node_outbound_migrations_in_flight_ratio",
    "gauge",
    "Outbound migrations in flight of a node divided by parallelOutboundMigrationsPerNode.",
    ("node",),
    no_alert="dashboard series, as ov_migrations_in_flight",
)
POD_NETWORK = Family(
    "ov_migrations_pod_network",
    "gauge",
    "Completed migrations (Succeeded or Failed VMIMs still in the API) that ran over the pod "
    "network: their recorded migrationConfiguration names no network, or, without one, the "
    "cluster has no migration network now.",
    no_alert="count quoted in the finding of ov_migration_parallel_without_dedicated_network",
)
PARALLEL_NO_NETWORK = Family(
    "ov_migration_parallel_without_dedicated_network",
    "gauge",
    "1 when 2 or more migrations are running right now (phase Scheduled to Running) "
    "over the pod network (no dedicated migration network), else 0.",
)
RUNNING_POD_NETWORK = Family(
    "ov_migrations_running_pod_network",
    "gauge",
    "Migrations running right now (phase Scheduled to Running) over the pod network: "
    "their recorded migrationConfiguration names no network, or, without one, the "
    "cluster has no migration network.",
    no_alert="numerator of ov_migration_parallel_without_dedicated_network (1 at 2 or more), which the alerts read",
)
OLDEST_PENDING = Family(
    "ov_migration_queue_oldest_pending_timestamp_seconds",
    "gauge",
    "Creation time of the oldest VMIM still queued (phase unset, Pending or Scheduling); absent when none.",
    no_alert="input of ov_migration_queue_stalled, which the alert reads; dashboards plot the queue age",
)
LAST_FINISHED = Family(
    "ov_migration_last_finished_timestamp_seconds",
    "gauge",
    "Newest end time of a finished (Succeeded or Failed) VMIM; absent when none.",
    no_alert="input of ov_migration_queue_stalled; dashboards",
)
STALL = Family(
    "ov_migration_queue_stall_threshold_seconds",
    "gauge",
    "Configured thresholds.migration-queue-stall-minutes, in seconds.",
    no_alert="configuration (thresholds.migration-queue-stall-minutes)",
)
STALLED = Family(
    "ov_migration_queue_stalled",
    "gauge",
    "1 when the oldest queued VMIM is older than the stall threshold and no migration finished within it, else 0.",
)
KUBEVIRT_INFO = Family(
    "ov_kubevirt",
    "info",
    'KubeVirt version a KubeVirt CR reports (status.observedKubeVirtVersion; "" before the operator observed one).',
    ("version",),
    no_alert="the KubeVirt release the exporter sees: context for every alert and dashboard, no finding",
)
HCO_INFO = Family(
    "ov_hyperconverged",
    "info",
    'HyperConverged Cluster Operator version its CR reports (status.versions, name "operator").',
    ("version",),
    no_alert="the HCO release the exporter sees: context, no finding",
)

CLUSTER_REF = ObjectRef("Cluster", "", "cluster")


def _source(*sources: str) -> str:
    """One source for the info series: the most specific one any setting came from."""
    for s in ("hco", "kubevirt"):
        if s in sources:
            return s
    return "default"


def versions(state: ClusterState) -> dict[str, str]:
    """{"kubevirt": ..., "hco": ...}: the versions the CRs report, absent keys when unknown."""
    found: dict[str, str] = {}
    for kv in state.kubevirts:
        if kv.status is not None and kv.status.observed_kube_virt_version:
            found["kubevirt"] = kv.status.observed_kube_virt_version
    hco = hyperconverged(state)
    for entry in (hco.status.versions or ()) if hco is not None and hco.status is not None else ():
        if entry.name == "operator" and entry.version:
            found["hco"] = entry.version
    return found


def _uses_pod_network(vmim: VirtualMachineInstanceMigration, dedicated: bool) -> bool:
    ms = vmim.status.migration_state if vmim.status is not None else None
    cfg = ms.migration_configuration if ms is not None else None
    return not (bool(cfg.network) if cfg is not None else dedicated)


VMIS = "virtualmachineinstances.kubevirt.io"
VMIMS = "virtualmachineinstancemigrations.kubevirt.io"


@dataclass(frozen=True)
class _Row:
    """What one VMIM adds to the counts (see evaluate)."""

    pod_network: int = 0  # finished over the pod network
    running_pod_network: int = 0  # running over the pod network
    in_flight: int = 0
    pending: float | None = None  # queued: its creation
    finished: float | None = None  # finished: its end
    node: str = ""  # in flight: its source node, when it names it
    vmi: tuple[str, str] | None = None  # in flight without a source node: its VMI's (namespace, name)


@dataclass(frozen=True)
class _Flights:
    """The VMIMs' counts, kept and brought up to date per changed VMIM."""

    rows: dict[str, _Row]  # uid -> its part
    in_flight: int
    pod_network: int
    running_pod_network: int
    pending: dict[str, float]  # uid -> creation of the queued VMIMs
    finished: dict[str, float]  # uid -> end of the finished VMIMs
    by_node: dict[str, int]  # source node -> in-flight VMIMs naming it
    lookup: dict[str, tuple[str, str]]  # uid -> VMI of the in-flight VMIMs without a source node


def _row(vmim: VirtualMachineInstanceMigration, dedicated: bool) -> _Row:
    phase = phase_of(vmim)
    if phase in FINAL_PHASES:
        ms = vmim.status.migration_state
        ends = (
            [ts(ms.end_timestamp)]
            if ms is not None and ms.end_timestamp is not None
            else [
                ts(p.phase_transition_timestamp)
                for p in vmim.status.phase_transition_timestamps or ()
                if p.phase == phase and p.phase_transition_timestamp is not None
            ]
        )
        return _Row(pod_network=int(_uses_pod_network(vmim, dedicated)), finished=max(ends) if ends else None)
    status = vmim.status
    node, vmi = "", None
    if status is not None and status.migration_state is not None and status.migration_state.source_node:
        node = status.migration_state.source_node
    else:
        vmi = (vmim.metadata.namespace, vmim.spec.vmi_name if vmim.spec else "")
    if phase in PENDING_PHASES:
        return _Row(in_flight=1, pending=created(vmim), node=node, vmi=vmi)
    running = int(phase_group(phase) == "running" and _uses_pod_network(vmim, dedicated))
    return _Row(in_flight=1, running_pod_network=running, node=node, vmi=vmi)


def _flights(state: ClusterState, dedicated: bool) -> _Flights:
    return state.per_changes(
        f"{SPEC.id} migrations",
        (VMIMS,),
        lambda s: _counted(_Flights({}, 0, 0, 0, {}, {}, {}, {}), s.migrations, (), dedicated),
        lambda s, kept, changed: _counted(
            kept, (c.record for c in changed[VMIMS] if c.record is not None), changed[VMIMS], dedicated
        ),
        (dedicated,),
    )


def _counted(kept: _Flights, upserted: Iterable[Any], changed: Iterable[Changed], dedicated: bool) -> _Flights:
    """`kept` without the VMIMs in `changed`, with those `upserted`."""
    rows, pending, finished = dict(kept.rows), dict(kept.pending), dict(kept.finished)
    by_node, lookup = dict(kept.by_node), dict(kept.lookup)
    counts = [kept.in_flight, kept.pod_network, kept.running_pod_network]
    kind = KIND_BY_KEY[VMIMS]

    def add(uid: str, row: _Row, sign: int) -> None:
        counts[0] += sign * row.in_flight
        counts[1] += sign * row.pod_network
        counts[2] += sign * row.running_pod_network
        if row.node:
            n = by_node[row.node] = by_node.get(row.node, 0) + sign
            if not n:
                del by_node[row.node]
        for part, value in ((pending, row.pending), (finished, row.finished), (lookup, row.vmi)):
            if value is None:
                continue
            if sign > 0:
                part[uid] = value
            else:
                del part[uid]

    for c in changed:
        row = rows.pop(c.uid, None)
        if row is not None:
            add(c.uid, row, -1)
    for vmim in upserted:
        uid = uid_of(kind, vmim)
        row = rows[uid] = _row(vmim, dedicated)
        add(uid, row, 1)
    return _Flights(rows, *counts, pending, finished, by_node, lookup)


def _node_samples(state: ClusterState, by_node: dict[str, int], node_limit: int) -> list[Sample]:
    """Two series per VM-schedulable node or node with migrations in flight, in name order;
    kept, and the pair of a node whose count did not change is the very kept pair."""
    schedulable = vm_schedulable_nodes(state)
    name = f"{SPEC.id} nodes"
    kept = state.object_memo.kinds_kept(name) if state.generations else None
    if kept is not None and kept[0] == (schedulable, by_node, node_limit):
        return kept[1][0]
    rows = kept[1][1] if kept is not None and kept[0][2] == node_limit else {}
    pairs = {}
    for node in sorted({n.metadata.name for n in schedulable} | set(by_node)):
        count = by_node.get(node, 0)
        pair = rows.get(node)
        if pair is None or pair[0].value != count:
            pair = (Sample(NODE_IN_FLIGHT.name, (node,), count), Sample(NODE_RATIO.name, (node,), count / node_limit))
        pairs[node] = pair
    samples = list(chain.from_iterable(pairs.values()))
    if state.generations:
        state.object_memo.keep_kinds(name, (schedulable, by_node, node_limit), (samples, pairs))
    return samples


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
        Sample(
            INFO.name,
            (
                _source(per_cluster.source, per_node.source, bandwidth.source, timeout.source, network.source),
                network.value or "",
            ),
            1,
        ),
        Sample(PER_CLUSTER.name, (), per_cluster.value),
        Sample(PER_NODE.name, (), per_node.value),
        Sample(BANDWIDTH.name, (), float(bandwidth.value or 0)),
        Sample(TIMEOUT.name, (), timeout.value),
        Sample(DEDICATED.name, (), 1 if dedicated else 0),
    ]

    for kv in state.kubevirts:
        if kv.status is not None and kv.status.observed_kube_virt_version:
            out.samples.append(Sample(KUBEVIRT_INFO.name, (kv.status.observed_kube_virt_version,), 1))
    if "hco" in (found := versions(state)):
        out.samples.append(Sample(HCO_INFO.name, (found["hco"],), 1))

    now = state.now if state.now is not None else time.time()
    flights = _flights(state, dedicated)
    in_flight, pod_network, running_pod_network = flights.in_flight, flights.pod_network, flights.running_pod_network
    oldest_pending = min(flights.pending.values(), default=None)
    last_finished = max(flights.finished.values(), default=None)
    by_node = flights.by_node
    if flights.lookup:  # in-flight VMIMs whose source node is where their VMI runs
        vmis = state.index(VMIS)
        by_node = dict(by_node)
        for key in flights.lookup.values():
            vmi = vmis.get(key)
            node = vmi.status.node_name if vmi is not None and vmi.status is not None else ""
            if node:
                by_node[node] = by_node.get(node, 0) + 1

    out.samples += [
        Sample(IN_FLIGHT.name, (), in_flight),
        Sample(IN_FLIGHT_RATIO.name, (), in_flight / cluster_limit),
        Sample(POD_NETWORK.name, (), pod_network),
        Sample(RUNNING_POD_NETWORK.name, (), running_pod_network),
    ]
    out.samples += _node_samples(state, by_node, node_limit)

    # The queue stalls when its head waits past the threshold and nothing finishes meanwhile.
    threshold = config.thresholds.migration_queue_stall_minutes * 60.0
    out.samples.append(Sample(STALL.name, (), threshold))
    if oldest_pending is not None:
        out.samples.append(Sample(OLDEST_PENDING.name, (), oldest_pending))
    if last_finished is not None:
        out.samples.append(Sample(LAST_FINISHED.name, (), last_finished))
    stalled = (
        oldest_pending is not None
        and now - oldest_pending > threshold
        and (last_finished is None or now - last_finished > threshold)
    )
    out.samples.append(Sample(STALLED.name, (), 1 if stalled else 0))
    if stalled:
        since = (
            "no migration finished in the API"
            if last_finished is None
            else f"the last migration finished {(now - last_finished) / 60:.0f} min ago"
        )
        out.findings.append(
            Finding(
                SPEC.id,
                Severity.WARNING,
                CLUSTER_REF,
                f"migration queue stalled: the oldest queued VMIM was created "
                f"{(now - oldest_pending) / 60:.0f} min ago "
                f"(threshold {threshold / 60:.0f} min) and {since}; {in_flight} in flight against "
                f"parallelMigrationsPerCluster {cluster_limit} ({per_cluster.source})",
            )
        )

    anti_pattern = running_pod_network >= 2
    out.samples.append(Sample(PARALLEL_NO_NETWORK.name, (), 1 if anti_pattern else 0))
    if anti_pattern:
        out.findings.append(
            Finding(
                SPEC.id,
                Severity.WARNING,
                CLUSTER_REF,
                f"{running_pod_network} migrations running at once over the pod network (no dedicated migration "
                f"network; parallelMigrationsPerCluster {per_cluster.value}, {per_cluster.source}): they compete with "
                f"VM and pod traffic; {pod_network} completed migration(s) in the API used it too",
            )
        )
    return out


SPEC = CheckSpec(
    id="migration_capacity",
    anti_pattern=15,
    title="Parallel live migrations without a dedicated migration network",
    severity_rules="warning: two or more migrations running at once over the pod network (no dedicated migration "
    "network); warning: the migration queue stalled (the oldest queued VMIM is older than "
    "thresholds.migration-queue-stall-minutes, default 30, and no migration finished within it). "
    "Migrations in flight at 80 % / 100 % of the limits are no finding (KubeVirt queues above them "
    "as Pending), only gauges",
    families=(
        INFO,
        PER_CLUSTER,
        PER_NODE,
        BANDWIDTH,
        TIMEOUT,
        DEDICATED,
        IN_FLIGHT,
        IN_FLIGHT_RATIO,
        NODE_IN_FLIGHT,
        NODE_RATIO,
        POD_NETWORK,
        RUNNING_POD_NETWORK,
        PARALLEL_NO_NETWORK,
        OLDEST_PENDING,
        LAST_FINISHED,
        STALL,
        STALLED,
        KUBEVIRT_INFO,
        HCO_INFO,
    ),
    remediation="Create a dedicated migration network (a NetworkAttachmentDefinition on a separate NIC, set as "
    "liveMigrationConfig.network in the HyperConverged CR), or lower parallelMigrationsPerCluster; "
    "let migrations in flight drain before starting more (split rebalances into batches of 5 or fewer). "
    "A stalled queue: look at the oldest Pending VMIM (target pod unschedulable, virt-handler down, "
    "a migration stuck in Running) and cancel or fix what blocks it.",
    alerts=(
        AlertDecl("OVMigrationQueueStalled", warning="migration_stuck"),
        AlertDecl("OVMigrationParallelWithoutDedicatedNetwork", warning="degraded"),
    ),
    settings=("thresholds.migration-queue-stall-minutes",),
    panels=(
        "ov-live-migration/Migrations in flight / limit",
        "ov-post-rebalance/Migration slots in use (cluster)",
        "ov-post-rebalance/Outbound migration slots in use per node",
    ),
    uses_clock=True,
    evaluate=evaluate,
    requires=("virtualmachineinstancemigrations.kubevirt.io",),
    reads=("hyperconvergeds.hco.kubevirt.io", "kubevirts.kubevirt.io", "virtualmachineinstances.kubevirt.io", "nodes"),
)
