"""Anti-pattern 19: no watch after a rebalance. For rebalance-watch-window hours (24-48)
after the last live migration: failed migrations, VMs migrated repeatedly, and nodes
whose VM allocation ended far above the mean."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from ..config import Config
from ..model import CheckOutput, CheckSpec, Family, Finding, NotApplicable, ObjectRef, Sample, Severity
from ..store import ClusterState
from ._k8s import capacity, cpu_allocation_ratio, ref, vm_schedulable_nodes, vmi_guest_memory, vmi_node, vmi_vcpus

FINAL_PHASES = ("Succeeded", "Failed")
ABOVE_MEAN = 0.25  # a node's allocation 25 points above the mean of the VM nodes is "far above" it
RESOURCES = ("cpu", "memory")

LAST = Family("ov_rebalance_last_migration_timestamp_seconds", "gauge",
              "End (else start) time of the most recent finished live migration, from VMIMs and VMI "
              "status.migrationState.")
ACTIVE = Family("ov_rebalance_watch_active", "gauge",
                "1 while the post-rebalance watch window (rebalance-watch-window hours after the last migration) "
                "is open, else 0.")
WINDOW = Family("ov_rebalance_watch_window_seconds", "gauge", "Configured post-rebalance watch window.")
NOW = Family("ov_rebalance_evaluation_timestamp_seconds", "gauge",
             "The time the window is judged at: the wall clock of a live source; for a snapshot the newest "
             "migration timestamp in it.")
SUCCEEDED = Family("ov_rebalance_migrations_succeeded", "gauge",
                   "VMIMs that succeeded inside the watch window (0 while it is closed).")
FAILED = Family("ov_rebalance_migrations_failed", "gauge",
                "VMIMs that failed inside the watch window (0 while it is closed).")
FAILED_VMIM = Family("ov_rebalance_failed_migration", "gauge",
                     "1 for each VMIM that failed inside the open watch window.", ("namespace", "vmim", "vmi"),
                     per_object=True)
REPEATED = Family("ov_rebalance_vm_migrations", "gauge",
                  "Finished migrations of a VMI inside the open watch window; only VMIs migrated more than once.",
                  ("namespace", "vmi"), per_object=True)
NODE_VMS = Family("ov_node_running_vmis", "gauge", "Running VMIs on a node, for every VM-schedulable node.",
                  ("node",))
NODE_ALLOC = Family("ov_node_vm_allocation_ratio", "gauge",
                    "CPU or memory requested by the VMIs on a node divided by its allocatable; every VM-schedulable "
                    "node. CPU request: resources.requests.cpu, else vCPUs / vmiCPUAllocationRatio; memory: "
                    "resources.requests.memory, else guest memory.", ("node", "resource"))
MEAN = Family("ov_rebalance_allocation_mean_ratio", "gauge",
              "Mean of ov_node_vm_allocation_ratio across VM-schedulable nodes.", ("resource",))
SPREAD = Family("ov_rebalance_allocation_spread_ratio", "gauge",
                "Max minus min of ov_node_vm_allocation_ratio across VM-schedulable nodes.", ("resource",))
ABOVE = Family("ov_rebalance_node_above_mean_ratio", "gauge",
               "How far a node's allocation is above the mean, for nodes more than 0.25 above it while the watch "
               "window is open.", ("node", "resource"))


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _vmim_times(vmim: Any) -> tuple[float | None, float | None]:
    """(end, any latest time) of a VMIM: migrationState end, else its final phase transition."""
    status = vmim.status
    if status is None:
        return None, None
    ms = status.migration_state
    stamps = [t for t in (_ts(p.phase_transition_timestamp) for p in status.phase_transition_timestamps or ())
              if t is not None]
    end = _ts(ms.end_timestamp) if ms is not None else None
    if end is None and status.phase in FINAL_PHASES:
        finals = [_ts(p.phase_transition_timestamp) for p in status.phase_transition_timestamps or ()
                  if p.phase == status.phase and p.phase_transition_timestamp is not None]
        end = max(finals) if finals else (_ts(ms.start_timestamp) if ms is not None else None)
    latest = max([t for t in (end, _ts(ms.start_timestamp) if ms else None) if t is not None] + stamps, default=None)
    return end, latest


def _cpu_request(vmi: Any, ratio: float) -> float:
    domain = vmi.spec.domain if vmi.spec else None
    req = domain.resources.requests if domain and domain.resources else None
    if req and req.get("cpu"):
        return float(req["cpu"])
    return vmi_vcpus(vmi) / max(1.0, ratio)


def _memory_request(vmi: Any) -> float:
    domain = vmi.spec.domain if vmi.spec else None
    req = domain.resources.requests if domain and domain.resources else None
    if req and req.get("memory"):
        return float(req["memory"])
    return vmi_guest_memory(vmi) or 0.0


def _allocatable(node: Any, resource: str) -> float | None:
    alloc = (node.status.allocatable if node.status else None) or {}
    value = alloc.get(resource)
    return float(value) if value is not None and value > 0 else capacity(node, resource)


def evaluate(state: ClusterState, config: Config) -> CheckOutput:
    if not state.vmis and not state.migrations:
        raise NotApplicable("no VMIs and no migrations: nothing was rebalanced")
    out = CheckOutput()
    window = config.rebalance_watch_window * 3600.0

    # Finished migrations: VMIMs, plus VMI migration states whose VMIM is gone.
    finished: list[tuple[float, str, str, str, str]] = []  # (end, phase, namespace, vmim, vmi)
    newest: float | None = None
    vmim_ends: dict[tuple[str, str], list[float]] = {}  # a VMI's migrationState repeats its VMIM's
    for vmim in sorted(state.migrations, key=lambda m: (m.metadata.namespace, m.metadata.name)):
        end, latest = _vmim_times(vmim)
        if latest is not None:
            newest = latest if newest is None else max(newest, latest)
        phase = vmim.status.phase if vmim.status else ""
        vmi_name = vmim.spec.vmi_name if vmim.spec else ""
        if phase in FINAL_PHASES and end is not None:
            finished.append((end, phase, vmim.metadata.namespace, vmim.metadata.name, vmi_name))
            vmim_ends.setdefault((vmim.metadata.namespace, vmi_name), []).append(end)
    for vmi in state.vmis:
        ms = vmi.status.migration_state if vmi.status else None
        if ms is None:
            continue
        end, start = _ts(ms.end_timestamp), _ts(ms.start_timestamp)
        for t in (end, start):
            if t is not None:
                newest = t if newest is None else max(newest, t)
        ends = vmim_ends.get((vmi.metadata.namespace, vmi.metadata.name), [])
        if ms.completed and end is not None and not any(abs(end - e) <= 60 for e in ends):
            finished.append((end, "Failed" if ms.failed else "Succeeded", vmi.metadata.namespace, "",
                             vmi.metadata.name))

    now = state.now if state.now is not None else newest
    last = max((f[0] for f in finished), default=None)
    active = last is not None and now is not None and now - last <= window
    out.samples += [Sample(ACTIVE.name, (), 1 if active else 0), Sample(WINDOW.name, (), window)]
    if last is not None:
        out.samples.append(Sample(LAST.name, (), last))
    if now is not None:
        out.samples.append(Sample(NOW.name, (), now))

    in_window = [f for f in finished if active and now - f[0] <= window]  # type: ignore[operator]
    out.samples += [Sample(SUCCEEDED.name, (), sum(1 for f in in_window if f[1] == "Succeeded")),
                    Sample(FAILED.name, (), sum(1 for f in in_window if f[1] == "Failed"))]
    hours = config.rebalance_watch_window
    for end, phase, ns, name, vmi_name in in_window:
        if phase == "Failed" and name:
            obj = ObjectRef("VirtualMachineInstanceMigration", ns, name)
            out.samples.append(Sample(FAILED_VMIM.name, (ns, name, vmi_name), 1, obj))
            out.findings.append(Finding(SPEC.id, Severity.WARNING, obj,
                f"migration of VMI {vmi_name} failed {(now - end) / 3600:.1f} h ago, inside the {hours} h "
                f"post-rebalance watch: the VM stayed on its source node"))
    counts: dict[tuple[str, str], int] = {}
    for _, _, ns, name, vmi_name in in_window:
        if name:  # VMIMs only: a VMI's migrationState repeats its last VMIM
            counts[(ns, vmi_name)] = counts.get((ns, vmi_name), 0) + 1
    for (ns, vmi_name), count in sorted(counts.items()):
        if count > 1:
            obj = ObjectRef("VirtualMachineInstance", ns, vmi_name)
            out.samples.append(Sample(REPEATED.name, (ns, vmi_name), count, obj))
            out.findings.append(Finding(SPEC.id, Severity.WARNING, obj,
                f"migrated {count} times in the {hours} h post-rebalance watch: the placement is not settling "
                f"(affinity, descheduler or load-aware rebalancing moving it back and forth)"))

    # Per-node VM allocation, before and after: dashboards compare it across the window.
    ratio = float(cpu_allocation_ratio(state).value or 10)
    count: dict[str, int] = {}
    requested: dict[tuple[str, str], float] = {}
    for vmi in state.vmis:
        node = vmi_node(vmi)
        if not node:
            continue
        count[node] = count.get(node, 0) + 1
        requested[(node, "cpu")] = requested.get((node, "cpu"), 0.0) + _cpu_request(vmi, ratio)
        requested[(node, "memory")] = requested.get((node, "memory"), 0.0) + _memory_request(vmi)
    allocation: dict[str, dict[str, float]] = {r: {} for r in RESOURCES}
    for node in sorted(vm_schedulable_nodes(state), key=lambda n: n.metadata.name):
        name = node.metadata.name
        out.samples.append(Sample(NODE_VMS.name, (name,), count.get(name, 0)))
        for resource in RESOURCES:
            alloc = _allocatable(node, resource)
            if alloc is None:
                continue
            value = requested.get((name, resource), 0.0) / alloc
            allocation[resource][name] = value
            out.samples.append(Sample(NODE_ALLOC.name, (name, resource), value))
    for resource, values in allocation.items():
        if not values:
            continue
        mean = sum(values.values()) / len(values)
        out.samples += [Sample(MEAN.name, (resource,), mean),
                        Sample(SPREAD.name, (resource,), max(values.values()) - min(values.values()))]
        if not active:
            continue
        for name, value in sorted(values.items()):
            if value - mean > ABOVE_MEAN:
                out.samples.append(Sample(ABOVE.name, (name, resource), value - mean))
                out.findings.append(Finding(SPEC.id, Severity.INFO, ObjectRef("Node", "", name),
                    f"{resource} allocation {value:.0%} of allocatable, {value - mean:.0%} above the mean "
                    f"{mean:.0%} of the VM nodes, inside the post-rebalance watch: the rebalance left it uneven"))
    return out


SPEC = CheckSpec(
    id="rebalance_watch",
    anti_pattern=19,
    title="No watch after a rebalance",
    severity_rules="within rebalance-watch-window hours (default 48) after the last finished migration: warning: "
                   "a VMIM failed in the window, or a VMI was migrated more than once in it; info: a VM node's CPU "
                   "or memory allocation is more than 25 points above the mean of the VM nodes",
    families=(LAST, ACTIVE, WINDOW, NOW, SUCCEEDED, FAILED, FAILED_VMIM, REPEATED, NODE_VMS, NODE_ALLOC, MEAN,
              SPREAD, ABOVE),
    remediation="Watch the cluster for 24-48 hours after a rebalance: retry or investigate failed migrations "
                "(dirty rate, bandwidth, target capacity), stop whatever moves a VM back and forth (affinity "
                "rules, descheduler profile), and move VMs off nodes left far above the mean.",
    evaluate=evaluate,
    requires=("virtualmachineinstances.kubevirt.io", "virtualmachineinstancemigrations.kubevirt.io"),
    reads=("nodes", "hyperconvergeds.hco.kubevirt.io", "kubevirts.kubevirt.io"),
)
