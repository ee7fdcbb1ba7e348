"""Anti-pattern 1: VM disks on storage without ReadWriteMany cannot live migrate."""

from __future__ import annotations

from ...config import Config
from ...domain.incremental import NO_PART, Part, per_object_joined, same_name
from ...domain.k8s import (
    LIVE_MIGRATING_STRATEGIES,
    Setting,
    ref,
    vm_node,
    vm_template_spec,
)
from ...domain.readiness import eviction_default
from ...domain.storage import DATA_VOLUMES, FALLBACK_KINDS, PVCS, VMIS, VMS, DiskVerdict, all_vm_disks, vm_disks
from ...model import CheckOutput, CheckSpec, Family, Finding, Sample, Severity
from ...records import VirtualMachine
from ...store import Changed, ClusterState

DISKS = Family(
    "ov_rwo_vm_disks",
    "gauge",
    "PVC-backed disks of a VM whose claim lacks ReadWriteMany access, so the VM cannot live migrate. "
    'One series per VM with at least one such disk; node: where its VMI runs ("" when stopped).',
    ("namespace", "vm", "eviction_strategy", "node"),
    per_object=True,
    no_alert=(
        "RWO disks are one blocking reason of ov_vm_migration_blocked, which OVVMMigrationBlocked reads: one "
        "alert per VM, not one per reason"
    ),
)


def evaluate(state: ClusterState, config: Config) -> CheckOutput:
    default_strategy = eviction_default(state)

    def judge(vm: VirtualMachine) -> Part:
        if vm_template_spec(vm) is None:
            return NO_PART
        disks, node = vm_disks(state, vm), vm_node(state, vm)
        return state.per_object(SPEC.id, vm, _judge, disks, default_strategy, node)

    claimants = _claimants
    # Judged per VM and put together, kept: only the VMs judged again are put in again.
    judged = per_object_joined(
        state,
        SPEC.id,
        VMS,
        judge,
        {
            VMIS: same_name,
            PVCS: claimants,
            DATA_VOLUMES: claimants,
            **dict.fromkeys(FALLBACK_KINDS),  # any change: every VM again
            # read through the default eviction strategy, an input
            **dict.fromkeys(("hyperconvergeds.hco.kubevirt.io", "kubevirts.kubevirt.io", "nodes"), _nothing),
        },
        (default_strategy,),
    )
    samples, findings = judged.lists or ([], [])
    return CheckOutput(list(findings), list(samples))


def _claimants(state: ClusterState, changed: Changed) -> list[tuple[str, str]]:
    """The VMs naming a changed PVC or DataVolume as a claim."""
    names = all_vm_disks(state).claimants.get((changed.namespace, changed.name), ())
    return [(changed.namespace, vm) for vm in names]


def _nothing(state: ClusterState, changed: Changed) -> tuple:
    return ()


def _judge(vm: VirtualMachine, disks: DiskVerdict, default_strategy: Setting, node: str) -> Part:
    """One VM's series and findings (kept per VM, its disks' verdict, the cluster's default
    eviction strategy and its node: state.per_object)."""
    samples: list[Sample] = []
    findings: list[Finding] = []
    spec = vm_template_spec(vm)
    ns, name = vm.metadata.namespace, vm.metadata.name
    rwo, unknown = disks
    strategy = spec.eviction_strategy or default_strategy.value
    obj = ref("VirtualMachine", vm)
    origin = "set on the VM" if spec.eviction_strategy else f"cluster default from {default_strategy.source}"
    if rwo:
        samples.append(Sample(DISKS.name, (ns, name, strategy, node), len(rwo), obj))
        disks_text = f"{len(rwo)} disk(s) lack ReadWriteMany: {', '.join(rwo)}"
        if strategy in LIVE_MIGRATING_STRATEGIES and node:
            findings.append(
                Finding(
                    SPEC.id,
                    Severity.WARNING,
                    obj,
                    f"running on {node} with eviction strategy {strategy} ({origin}) but {disks_text}; "
                    f"node drains will block on or shut down this VM",
                )
            )
        else:
            why = (
                f"eviction strategy {strategy} ({origin}): drains do not try to live migrate it"
                if strategy not in LIVE_MIGRATING_STRATEGIES
                else "the VM is stopped"
            )
            findings.append(
                Finding(
                    SPEC.id, Severity.INFO, obj, f"{disks_text}; {why}, but it can never live migrate on this storage"
                )
            )
    if strategy in LIVE_MIGRATING_STRATEGIES and unknown:
        findings.append(
            Finding(
                SPEC.id,
                Severity.INFO,
                obj,
                f"access mode unknown for claim(s) {', '.join(unknown)}: no PVC, VMI volume status, "
                f"DataVolume or StorageProfile found",
            )
        )
    return (samples, findings, ()) if samples or findings else NO_PART  # most VMs: nothing of their own kept


SPEC = CheckSpec(
    id="rwo_vm_disks",
    anti_pattern=1,
    title="VM disks without ReadWriteMany block live migration",
    severity_rules="warning: a running VM with eviction strategy LiveMigrate or LiveMigrateIfPossible has at "
    "least one disk without RWX; info: the same for a stopped VM or a VM with strategy None or "
    "External, or a disk's access mode cannot be resolved (for the live-migrating strategies)",
    families=(DISKS,),
    remediation="Move the disks to a storage class that offers ReadWriteMany (ODF RBD block, CephFS, "
    "Trident ontap-nas, NFS CSI) with a DataVolume clone or storage live migration, or set "
    "evictionStrategy: None and plan cold migration for this VM.",
    panels=("ov-overview/VMs with non-RWX disks",),
    evaluate=evaluate,
    requires=("virtualmachines.kubevirt.io",),
    reads=(
        "persistentvolumeclaims",
        "virtualmachineinstances.kubevirt.io",
        "datavolumes.cdi.kubevirt.io",
        "storageprofiles.cdi.kubevirt.io",
        "storageclasses.storage.k8s.io",
        "hyperconvergeds.hco.kubevirt.io",
        "kubevirts.kubevirt.io",
        "nodes",
    ),
)
