"""Anti-pattern 19: no watch after a rebalance. For rebalance-watch-window hours (24-48)
after the last rebalancing migration (cause descheduler, manual or declared; never a
workload update or a drain, see domain/migrations.py): failed migrations, VMs migrated
repeatedly, and nodes whose VM allocation ended far above the mean."""

from __future__ import annotations

import time
from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass
from operator import itemgetter

from ...config import Config
from ...domain.incremental import per_node, tabled
from ...domain.k8s import (
    active_vmis_by_node,
    capacity,
    cpu_allocation_ratio,
    vm_schedulable_nodes,
    vmi_guest_memory,
    vmi_node,
    vmi_vcpus,
)
from ...domain.migrations import (
    CAUSES,
    FINAL_PHASES,
    PHASE_GROUPS,
    REBALANCING,
    cause_of,
    causes,
    created,
    phase_group,
    phase_of,
    ts,
)
from ...model import AlertDecl, CheckOutput, CheckSpec, Family, Finding, NotApplicable, ObjectRef, Sample, Severity
from ...records import KIND_BY_KEY, Node, VirtualMachineInstance, VirtualMachineInstanceMigration
from ...store import Changed, ClusterState, uid_of

RESOURCES = ("cpu", "memory")
SKEW = 60.0  # seconds a migration may end after "now" (clock skew) and still count

LAST = Family(
    "ov_rebalance_last_migration_timestamp_seconds",
    "gauge",
    "End time of the most recent finished rebalancing migration (cause descheduler, manual or "
    "declared); absent when none.",
    no_alert="dashboard series: when the window opened",
)
START = Family(
    "ov_rebalance_start_timestamp_seconds",
    "gauge",
    "Start (migrationState.startTimestamp, else creation) of the earliest rebalancing migration of "
    "the current wave: those that finished inside the open watch window. Absent while it is closed.",
    no_alert="dashboard series: the start of the rebalance wave (before/after anchor)",
)
ACTIVE = Family(
    "ov_rebalance_watch_active",
    "gauge",
    "1 while the post-rebalance watch window is open: rebalance-watch-window hours after the last "
    "rebalancing migration, or after the end of a declared rebalance window; else 0. Workload-update "
    "and drain migrations never open it.",
    no_alert="dashboard series; the per-object series exist only while the window is open",
)
WINDOW = Family(
    "ov_rebalance_watch_window_seconds",
    "gauge",
    "Configured post-rebalance watch window.",
    no_alert="configuration (rebalance-watch-window)",
)
NOW = Family(
    "ov_rebalance_evaluation_timestamp_seconds",
    "gauge",
    "The time the window is judged at: the wall clock of a live source; for a snapshot its capture time "
    "(captured-at file, must-gather timestamp file, else the wall clock); `check --at` overrides it.",
    no_alert="the time the window is judged at (snapshots: newest event)",
)
SUCCEEDED = Family(
    "ov_rebalance_migrations_succeeded",
    "gauge",
    "Rebalancing VMIMs that succeeded inside the watch window (0 while it is closed).",
    no_alert="dashboard count; no finding",
)
FAILED = Family(
    "ov_rebalance_migrations_failed",
    "gauge",
    "Rebalancing VMIMs that failed inside the watch window (0 while it is closed).",
    no_alert="count of the VMIMs ov_rebalance_failed_migration lists one by one",
)
BY_CAUSE = Family(
    "ov_migrations",
    "gauge",
    "VirtualMachineInstanceMigrations in the API by cause (workload_update, drain, descheduler, "
    "manual, declared) and phase group (pending: phase unset, Pending or Scheduling; running; "
    "succeeded; failed). Every combination, 0 when none.",
    ("cause", "phase"),
    no_alert="dashboard counts of migrations by cause and phase; upgrades and drains raise no finding",
)
FAILED_VMIM = Family(
    "ov_rebalance_failed_migration",
    "gauge",
    "1 for each rebalancing VMIM that failed inside the open watch window; node: the VMI's current node.",
    ("namespace", "vmim", "vmi", "cause", "node"),
    per_object=True,
)
REPEATED = Family(
    "ov_rebalance_vm_migrations",
    "gauge",
    "Rebalancing migrations of a VMI that finished inside the open watch window; only VMIs migrated "
    "more than once. cause: that of its latest migration; node: its current node.",
    ("namespace", "vmi", "node", "cause"),
    per_object=True,
)
NODE_VMS = Family(
    "ov_node_running_vmis",
    "gauge",
    "Running VMIs on a node, for every VM-schedulable node.",
    ("node",),
    no_alert="dashboard series (VMs per node before and after); no finding",
)
NODE_ALLOC = Family(
    "ov_node_vm_allocation_ratio",
    "gauge",
    "CPU or memory requested by the VMIs on a node divided by its allocatable; every VM-schedulable "
    "node. CPU request: resources.requests.cpu, else vCPUs / vmiCPUAllocationRatio; memory: "
    "resources.requests.memory, else guest memory.",
    ("node", "resource"),
    no_alert="dashboard series; ov_rebalance_node_above_mean_ratio carries the finding",
)
MEAN = Family(
    "ov_rebalance_allocation_mean_ratio",
    "gauge",
    "Mean of ov_node_vm_allocation_ratio across VM-schedulable nodes.",
    ("resource",),
    no_alert="dashboard series: the mean the findings compare against",
)
SPREAD = Family(
    "ov_rebalance_allocation_spread_ratio",
    "gauge",
    "Max minus min of ov_node_vm_allocation_ratio across VM-schedulable nodes.",
    ("resource",),
    no_alert="dashboard series (max - min across VM nodes); no finding",
)
ABOVE = Family(
    "ov_rebalance_node_above_mean_ratio",
    "gauge",
    "How far a node's allocation is above the mean, for nodes more than thresholds.node-above-mean (default "
    "0.25) above it while the watch window is open.",
    ("node", "resource"),
)
THRESHOLD = Family(
    "ov_rebalance_watch_threshold_ratio",
    "gauge",
    "The post-rebalance watch's configured thresholds, read by its alerts and dashboards: level "
    "node_above_mean (thresholds.node-above-mean), node_cpu_overloaded (thresholds.node-cpu-overloaded), "
    "node_memory_overloaded (thresholds.node-memory-overloaded), spread_margin (thresholds.spread-margin).",
    ("level",),
)
THRESHOLD_LEVELS = ("node_above_mean", "node_cpu_overloaded", "node_memory_overloaded", "spread_margin")


def _vmim_times(vmim: VirtualMachineInstanceMigration) -> tuple[float | None, float | None]:
    """(start, end) of a VMIM: migrationState times, else its phase transitions / creation."""
    status = vmim.status
    ms = status.migration_state if status is not None else None
    start = ts(ms.start_timestamp) if ms is not None else None
    end = ts(ms.end_timestamp) if ms is not None else None
    if end is None and phase_of(vmim) in FINAL_PHASES:
        finals = [
            ts(p.phase_transition_timestamp)
            for p in status.phase_transition_timestamps or ()
            if p.phase == status.phase and p.phase_transition_timestamp is not None
        ]
        end = max(finals) if finals else start
    return (start if start is not None else created(vmim)), end


def _cpu_request(vmi: VirtualMachineInstance, ratio: float) -> float:
    domain = vmi.spec.domain if vmi.spec else None
    req = domain.resources.requests if domain and domain.resources else None
    if req and req.get("cpu"):
        return float(req["cpu"])
    return vmi_vcpus(vmi) / max(1.0, ratio)


def _memory_request(vmi: VirtualMachineInstance) -> float:
    domain = vmi.spec.domain if vmi.spec else None
    req = domain.resources.requests if domain and domain.resources else None
    if req and req.get("memory"):
        return float(req["memory"])
    return vmi_guest_memory(vmi) or 0.0


VMIS = "virtualmachineinstances.kubevirt.io"


def _allocatable(node: Node, resource: str) -> float | None:
    alloc = (node.status.allocatable if node.status else None) or {}
    value = alloc.get(resource)
    return float(value) if value is not None and value > 0 else capacity(node, resource)


# A finished rebalancing VMIM: (end, namespace, VMIM, start, phase, VMI, cause); sorted by
# end, then name (unique), so the ones finished by a time are a prefix.
Finished = tuple[float, str, str, float | None, str, str, str]
VMIMS = "virtualmachineinstancemigrations.kubevirt.io"


@dataclass(frozen=True)
class _Migrations:
    """What the VMIMs say whatever the time: kept and brought up to date per changed VMIM."""

    rows: dict[str, tuple[tuple[str, str], Finished | None]]  # uid -> ((cause, phase group), finished)
    by_cause: dict[tuple[str, str], int]  # (cause, phase group) -> VMIMs, every combination
    finished: list[Finished]  # the finished rebalancing VMIMs, in Finished order


def _row(vmim: VirtualMachineInstanceMigration, table: dict[str, str]) -> tuple[tuple[str, str], Finished | None]:
    cause, phase = cause_of(vmim, table), phase_of(vmim)
    start, end = _vmim_times(vmim)
    done = None
    if cause in REBALANCING and phase in FINAL_PHASES and end is not None:
        meta = vmim.metadata
        done = (end, meta.namespace, meta.name, start, phase, vmim.spec.vmi_name if vmim.spec else "", cause)
    return (cause, phase_group(phase)), done


def _migrations(state: ClusterState, config: Config) -> _Migrations:
    return state.per_changes(
        f"{SPEC.id} migrations",
        (VMIMS,),
        lambda s: _all_migrations(s, config),
        lambda s, kept, changed: _migrations_changed(s, config, kept, changed[VMIMS]),
        (config,),  # the causes read the declared rebalance windows
    )


def _all_migrations(state: ClusterState, config: Config) -> _Migrations:
    table = causes(state, config)
    kind = KIND_BY_KEY[VMIMS]
    rows = {uid_of(kind, vmim): _row(vmim, table) for vmim in state.migrations}
    by_cause = {(c, p): 0 for c in CAUSES for p in PHASE_GROUPS}
    for group, _ in rows.values():
        by_cause[group] += 1
    return _Migrations(rows, by_cause, sorted(done for _, done in rows.values() if done is not None))


def _migrations_changed(
    state: ClusterState, config: Config, kept: _Migrations, changed: tuple[Changed, ...]
) -> _Migrations:
    table = causes(state, config)
    rows, by_cause, finished = dict(kept.rows), dict(kept.by_cause), list(kept.finished)
    for c in changed:
        old = rows.pop(c.uid, None)
        if old is not None:
            by_cause[old[0]] -= 1
            if old[1] is not None:
                del finished[bisect_left(finished, old[1])]
        if c.record is not None:
            row = rows[c.uid] = _row(c.record, table)
            by_cause[row[0]] += 1
            if row[1] is not None:
                insort(finished, row[1])
    return _Migrations(rows, by_cause, finished)


def _cpu_on(vmi: VirtualMachineInstance, ratio: float) -> tuple[str, float] | None:
    node = vmi_node(vmi)
    return (node, _cpu_request(vmi, ratio)) if node else None


def _memory_on(vmi: VirtualMachineInstance) -> tuple[str, float] | None:
    node = vmi_node(vmi)
    return (node, _memory_request(vmi)) if node else None


def _node_row(node: Node, vmis: int, cpu: float, memory: float) -> tuple[list[Sample], list, list]:
    """A VM node's series, and its CPU and memory allocation as a (node, ratio) list of one
    item (none when the node has no allocatable of that resource)."""
    name = node.metadata.name
    samples = [Sample(NODE_VMS.name, (name,), vmis)]
    allocation: tuple[list, list] = ([], [])
    for resource, requested, values in zip(RESOURCES, (cpu, memory), allocation):
        alloc = _allocatable(node, resource)
        if alloc is not None:
            ratio = requested / alloc
            values.append((name, ratio))
            samples.append(Sample(NODE_ALLOC.name, (name, resource), ratio))
    return samples, *allocation


def _row_parts(row: tuple[list[Sample], list, list]) -> tuple[list[Sample], list, list]:
    return row


def _per_node(state: ClusterState) -> tuple[list[Sample], dict[str, dict[str, float]]]:
    """Every VM node's series (in name order) and resource -> node -> allocation ratio.
    The requests per node are kept and brought up to date per changed VMI, and only the
    nodes whose record or sums changed are judged again (domain.incremental)."""
    ratio = float(cpu_allocation_ratio(state).value or 10)

    def rows(s: ClusterState) -> dict[str, tuple[Node, int, float, float]]:
        cpu = per_node(s, f"{SPEC.id} CPU at ratio {ratio}", VMIS, lambda vmi: _cpu_on(vmi, ratio))
        memory = per_node(s, f"{SPEC.id} memory", VMIS, _memory_on)
        vmis = active_vmis_by_node(s)
        out = {}
        for node in vm_schedulable_nodes(s):
            name = node.metadata.name
            out[name] = (node, len(vmis.get(name, ())), cpu.get(name, 0.0), memory.get(name, 0.0))
        return out

    kept_rows = state.per_kinds(f"{SPEC.id} node rows at ratio {ratio}", ("nodes", VMIS), rows)
    nodes = tabled(state, f"{SPEC.id} nodes", kept_rows, _node_row, (), _row_parts)
    samples, cpu_allocation, memory_allocation = nodes.lists or ([], [], [])
    return samples, {"cpu": dict(cpu_allocation), "memory": dict(memory_allocation)}


def evaluate(state: ClusterState, config: Config) -> CheckOutput:
    if not state.vmis and not state.migrations:
        raise NotApplicable("no VMIs and no migrations: nothing was rebalanced")
    out = CheckOutput()
    window = config.rebalance_watch_window * 3600.0
    now = state.now if state.now is not None else time.time()
    migrations = _migrations(state, config)
    out.samples += [Sample(BY_CAUSE.name, key, n) for key, n in migrations.by_cause.items()]

    # Finished rebalancing migrations up to now, by end.
    finished = migrations.finished
    up_to = bisect_right(finished, now + SKEW, key=itemgetter(0))
    # The watch opens at the end of each rebalancing migration and of each declared window.
    last = finished[up_to - 1][0] if up_to else None
    anchors = [] if last is None else [last]  # the latest end opens the longest watch
    anchors += [min(w.end.timestamp(), now) for w in config.rebalance_windows if w.start.timestamp() <= now]
    active = any(now - a <= window for a in anchors)
    out.samples += [
        Sample(ACTIVE.name, (), 1 if active else 0),
        Sample(WINDOW.name, (), window),
        Sample(NOW.name, (), now),
    ]
    out.samples += [Sample(THRESHOLD.name, (level,), getattr(config.thresholds, level)) for level in THRESHOLD_LEVELS]
    if last is not None:
        out.samples.append(Sample(LAST.name, (), last))

    # The wave: those that ended inside the window (the latest ones), in name order.
    since = up_to
    while active and since > 0 and now - finished[since - 1][0] <= window:
        since -= 1
    wave = sorted(finished[since:up_to], key=itemgetter(1, 2))
    starts = [f[3] for f in wave if f[3] is not None]
    if starts:
        out.samples.append(Sample(START.name, (), min(starts)))
    out.samples += [
        Sample(SUCCEEDED.name, (), sum(1 for f in wave if f[4] == "Succeeded")),
        Sample(FAILED.name, (), sum(1 for f in wave if f[4] == "Failed")),
    ]
    hours = config.rebalance_watch_window
    vmis = state.index(VMIS) if wave else {}

    def node_of(ns: str, vmi_name: str) -> str:
        vmi = vmis.get((ns, vmi_name))
        return vmi_node(vmi) or "" if vmi is not None else ""

    for end, ns, name, _, phase, vmi_name, cause in wave:
        if phase == "Failed":
            obj = ObjectRef("VirtualMachineInstanceMigration", ns, name)
            out.samples.append(Sample(FAILED_VMIM.name, (ns, name, vmi_name, cause, node_of(ns, vmi_name)), 1, obj))
            out.findings.append(
                Finding(
                    SPEC.id,
                    Severity.WARNING,
                    obj,
                    f"{cause} migration of VMI {vmi_name} failed {(now - end) / 3600:.1f} h ago, inside the {hours} h "
                    f"post-rebalance watch: the VM stayed on its source node",
                )
            )
    per_vmi: dict[tuple[str, str], list[tuple[float, str]]] = {}
    for end, ns, _, _, _, vmi_name, cause in wave:
        per_vmi.setdefault((ns, vmi_name), []).append((end, cause))
    for (ns, vmi_name), moves in sorted(per_vmi.items()):
        if len(moves) > 1:
            obj = ObjectRef("VirtualMachineInstance", ns, vmi_name)
            cause = max(moves)[1]
            out.samples.append(Sample(REPEATED.name, (ns, vmi_name, node_of(ns, vmi_name), cause), len(moves), obj))
            out.findings.append(
                Finding(
                    SPEC.id,
                    Severity.WARNING,
                    obj,
                    f"migrated {len(moves)} times by rebalancing ({', '.join(sorted({c for _, c in moves}))}) in the "
                    f"{hours} h post-rebalance watch: the placement is not settling (affinity, descheduler or "
                    f"load-aware rebalancing moving it back and forth)",
                )
            )

    # Per-node VM allocation, before and after: dashboards compare it across the window.
    node_samples, allocation = _per_node(state)
    out.samples += node_samples
    for resource, values in allocation.items():
        if not values:
            continue
        mean = sum(values.values()) / len(values)
        out.samples += [
            Sample(MEAN.name, (resource,), mean),
            Sample(SPREAD.name, (resource,), max(values.values()) - min(values.values())),
        ]
        if not active:
            continue
        for name, value in sorted(values.items()):
            if value - mean > config.thresholds.node_above_mean:
                out.samples.append(Sample(ABOVE.name, (name, resource), value - mean))
                out.findings.append(
                    Finding(
                        SPEC.id,
                        Severity.INFO,
                        ObjectRef("Node", "", name),
                        f"{resource} allocation {value:.0%} of allocatable, {value - mean:.0%} above the mean "
                        f"{mean:.0%} of the VM nodes, inside the post-rebalance watch: the rebalance left it uneven",
                    )
                )
    return out


SPEC = CheckSpec(
    id="rebalance_watch",
    anti_pattern=19,
    title="No watch after a rebalance",
    severity_rules="within rebalance-watch-window hours (default 48) after the last rebalancing migration (cause "
    "descheduler, manual or declared; workload-update and drain migrations neither open the window "
    "nor count in it): warning: a rebalancing VMIM failed in the window, or a VMI was migrated more "
    "than once in it; info: a VM node's CPU or memory allocation is more than thresholds.node-above-mean "
    "(default 0.25) above the mean of the VM nodes",
    families=(
        LAST,
        START,
        ACTIVE,
        WINDOW,
        NOW,
        SUCCEEDED,
        FAILED,
        BY_CAUSE,
        FAILED_VMIM,
        REPEATED,
        NODE_VMS,
        NODE_ALLOC,
        MEAN,
        SPREAD,
        ABOVE,
        THRESHOLD,
    ),
    remediation="Watch the cluster for 24-48 hours after a rebalance: retry or investigate failed migrations "
    "(dirty rate, bandwidth, target capacity), stop whatever moves a VM back and forth (affinity "
    "rules, descheduler profile), and move VMs off nodes left far above the mean.",
    alerts=(
        AlertDecl("OVPostRebalanceNodeCPUHigh", warning="degraded", mirrors_findings=False, names="Node/node"),
        AlertDecl("OVPostRebalanceCPUSpreadIncreased", warning="degraded", mirrors_findings=False),
        AlertDecl("OVRebalanceWatchMigrationFailed", warning="degraded", names="VirtualMachineInstanceMigration/vmim"),
        AlertDecl("OVRebalanceWatchVMMigratedRepeatedly", warning="degraded", names="VirtualMachineInstance/vmi"),
        AlertDecl("OVRebalanceWatchNodeAboveMean", info="hygiene", names="Node/node"),
    ),
    settings=(
        "rebalance-watch-window",
        "rebalance-windows",
        "thresholds.node-above-mean",
        "thresholds.node-cpu-overloaded",
        "thresholds.node-memory-overloaded",
        "thresholds.spread-margin",
    ),
    panels=(
        "ov-post-rebalance/Post-rebalance window open",
        "ov-post-rebalance/Rebalance start (exporter)",
        "ov-post-rebalance/Migrations by cause (exporter)",
        "ov-post-rebalance/Watch window open (exporter)",
        "ov-post-rebalance/Last migration ended",
        "ov-post-rebalance/VM allocation per node (requests / allocatable)",
        "ov-post-rebalance/Allocation spread (max - min across VM nodes)",
        "ov-post-rebalance/Running VMIs per node",
        "ov-post-rebalance/Migrations failed in the watch window",
        "ov-post-rebalance/VMs migrated more than once in the watch window",
    ),
    uses_clock=True,
    evaluate=evaluate,
    requires=("virtualmachineinstances.kubevirt.io", "virtualmachineinstancemigrations.kubevirt.io"),
    reads=("nodes", "hyperconvergeds.hco.kubevirt.io", "kubevirts.kubevirt.io"),
)
