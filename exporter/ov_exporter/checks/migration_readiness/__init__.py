"""Anti-pattern 16: migrating without a pre-migration readiness check.

One verdict per VirtualMachine with every reason that blocks its live migration right
now, under every eviction strategy (upstream `kubevirt_vmi_non_evictable` only sees
LiveMigrate, and KubeVirt's LiveMigratable condition names one reason only).
"""

from __future__ import annotations

import functools
import sys

from ...config import Config
from ...domain.incremental import NO_PART, Part, joined
from ...domain.readiness import REASONS, Verdict, readiness
from ...model import AlertDecl, CheckOutput, CheckSpec, Family, Finding, ObjectRef, Sample
from ...store import ClusterState

BLOCKED = Family(
    "ov_vm_migration_blocked",
    "gauge",
    "1 for each reason that blocks the live migration of a VM right now (reason: not_running, "
    "not_live_migratable, rwo_disk, no_target_node, virt_handler_not_ready, migration_slots_full), "
    "whatever its effective eviction strategy. One series per blocked VM and reason; node: where its VMI runs "
    '("" when not running).',
    ("namespace", "vm", "reason", "eviction_strategy", "node"),
    per_object=True,
)
BLOCKED_VMS = Family(
    "ov_vms_migration_blocked",
    "gauge",
    "VirtualMachines whose live migration is blocked by at least one reason.",
    no_alert="count of the VMs ov_vm_migration_blocked lists one by one; alerting on both would notify twice",
)
BLOCKED_BY_REASON = Family(
    "ov_vms_migration_blocked_by_reason",
    "gauge",
    "VirtualMachines blocked by each reason (every reason of the enum, 0 included).",
    ("reason",),
    no_alert="the same VMs per reason, for dashboards",
)
SLOTS = Family(
    "ov_migration_slots",
    "gauge",
    "Cluster migration slots: in_flight VMIMs (phase not Succeeded/Failed) and the "
    "parallelMigrationsPerCluster limit (source: hco, kubevirt or default).",
    ("state", "source"),
    no_alert=(
        "in-flight VMIMs and parallelMigrationsPerCluster, for dashboards: a full queue is no alert "
        "(OVMigrationQueueStalled judges one that stops draining), and the check's migration_slots_full "
        "reason reaches ov_vm_migration_blocked"
    ),
)


def evaluate(state: ClusterState, config: Config) -> CheckOutput:
    out = CheckOutput()
    judged = readiness(state, config)

    # Kept per verdict: only the VMs whose verdict was judged again are reported again.
    reports = joined(state, f"{SPEC.id} reports", judged.verdicts, _report, judged.since)
    if reports.lists:
        out.samples += reports.lists[0]
        out.findings += reports.lists[1]
    blocked, *by_reason = map(int, reports.totals or (0,) * (1 + len(REASONS)))
    out.samples.append(Sample(BLOCKED_VMS.name, (), blocked))
    out.samples += [Sample(BLOCKED_BY_REASON.name, (r,), n) for r, n in zip(REASONS, by_reason)]
    in_flight, limit = judged.in_flight, judged.limit
    out.samples += [
        Sample(SLOTS.name, ("in_flight", limit.source), in_flight),
        Sample(SLOTS.name, ("limit", limit.source), limit.value),
    ]
    return out


def _report(verdict: Verdict) -> Part:
    """A blocked VM's series (one per reason, in REASONS order), finding and counts (1 for
    the VM, then 1 or 0 per reason of REASONS); nothing when its live migration is not blocked."""
    if not verdict.blocked:
        return NO_PART
    obj = ObjectRef("VirtualMachine", verdict.namespace, verdict.name)
    key = (verdict.namespace, verdict.name)
    samples = [
        Sample(BLOCKED.name, (*key, reason, verdict.eviction_strategy, verdict.series_node), 1, obj)
        for reason in verdict.reasons
    ]
    details = "; ".join(f"{r}: {d}" for r, d in verdict.reasons.items())
    finding = Finding(
        SPEC.id,
        verdict.severity,
        obj,
        # One string for every VM with the same text (mid-rebalance, the VMs blocked only by
        # migration_slots_full: 9,000 at XL); sys.intern frees it with its last finding.
        sys.intern(
            f"live migration blocked by {len(verdict.reasons)} reason(s) (eviction strategy "
            f"{verdict.eviction_strategy}, {verdict.strategy_origin}): {details}"
        ),
    )
    return samples, [finding], _counts(tuple(verdict.reasons))


@functools.lru_cache(maxsize=256)
def _counts(reasons: tuple[str, ...]) -> tuple[int, ...]:
    """1 for the VM, then 1 or 0 per reason of REASONS: one tuple per combination of
    reasons, shared by every VM blocked by it (10,000 VMs at XL, a handful of tuples)."""
    return (1, *(int(r in reasons) for r in REASONS))


SPEC = CheckSpec(
    id="migration_readiness",
    anti_pattern=16,
    title="VMs that cannot live migrate right now, with every reason",
    severity_rules="warning: a running VM whose eviction strategy is not None (LiveMigrate, "
    "LiveMigrateIfPossible, External) is blocked by at least one reason other than "
    "migration_slots_full; info: the VM is stopped (not_running), its strategy is None, or it "
    "waits only for a migration slot",
    families=(BLOCKED, BLOCKED_VMS, BLOCKED_BY_REASON, SLOTS),
    remediation="Run `ov-exporter check --vm NS/NAME` before migrating a VM: it lists every blocking reason with "
    "its fix (start the VM, RWX storage, free capacity on a matching node, repair virt-handler, wait "
    "for a migration slot).",
    alerts=(AlertDecl("OVVMMigrationBlocked", warning="migration_risk", info="hygiene", names="VirtualMachine/vm"),),
    panels=(
        "ov-overview/VMs that cannot live migrate now (one row per reason)",
        "ov-overview/Blocked VMs per reason",
    ),
    evaluate=evaluate,
    requires=("virtualmachines.kubevirt.io",),
    reads=(
        "virtualmachineinstances.kubevirt.io",
        "virtualmachineinstancemigrations.kubevirt.io",
        "nodes",
        "pods",
        "persistentvolumeclaims",
        "datavolumes.cdi.kubevirt.io",
        "storageprofiles.cdi.kubevirt.io",
        "storageclasses.storage.k8s.io",
        "hyperconvergeds.hco.kubevirt.io",
        "kubevirts.kubevirt.io",
    ),
)
