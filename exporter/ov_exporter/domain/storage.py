"""Disks' access modes: what a VM's PVC and DataVolume volumes allow, from the most
certain source that says (bound PVC, VMI volumeStatus, DataVolume spec, StorageProfile)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..records import DataVolumeTemplate, VirtualMachine, VirtualMachineInstance
from ..store import Changed, ClusterState
from .k8s import annotations, vm_template_spec

RWX = "ReadWriteMany"
DEFAULT_VIRT_CLASS = "storageclass.kubevirt.io/is-default-virt-class"
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"


def default_storage_class(state: ClusterState) -> str | None:
    return state.per_kinds("default_storage_class", (FALLBACK_KINDS[1],), _default_storage_class)


def _default_storage_class(state: ClusterState) -> str | None:
    virt = [sc.metadata.name for sc in state.storage_classes if annotations(sc).get(DEFAULT_VIRT_CLASS) == "true"]
    plain = [sc.metadata.name for sc in state.storage_classes if annotations(sc).get(DEFAULT_CLASS) == "true"]
    return (virt or plain or [None])[0]


def _profile_modes(state: ClusterState, storage_class: str | None, volume_mode: str | None) -> list[str] | None:
    """CDI takes the first claimPropertySet of the StorageProfile named after the class
    (the first one matching the requested volumeMode, when one is asked for)."""
    if not storage_class:
        return None
    profile = state.get("storageprofiles.cdi.kubevirt.io", "", storage_class)
    if profile is None:
        return None
    sets = (
        (profile.status.claim_property_sets if profile.status else None)
        or (profile.spec.claim_property_sets if profile.spec else None)
        or []
    )
    for cps in sets:
        if cps.access_modes and (volume_mode is None or cps.volume_mode in (None, volume_mode)):
            return cps.access_modes
    return None


def _dv_modes(state: ClusterState, dv_spec: Any) -> tuple[list[str] | None, str]:
    if dv_spec is None:
        return None, ""
    for claim, where in ((dv_spec.pvc, "DataVolume spec.pvc"), (dv_spec.storage, "DataVolume spec.storage")):
        if claim is None:
            continue
        if claim.access_modes:
            return claim.access_modes, where
        storage_class = claim.storage_class_name or default_storage_class(state)
        modes = _profile_modes(state, storage_class, claim.volume_mode)
        if modes:
            return modes, f"StorageProfile {storage_class}"
    return None, ""


def access_modes(
    state: ClusterState,
    namespace: str,
    claim: str,
    vmi: VirtualMachineInstance,
    dv_template: DataVolumeTemplate,
    volume: str = "",
) -> tuple[list[str] | None, str]:
    """(access modes, where they came from). Order of truth: bound PVC, VMI volumeStatus,
    DataVolume spec, StorageProfile. (None, "") when nothing says."""
    pvc = state.get("persistentvolumeclaims", namespace, claim)
    if pvc is not None:
        if pvc.status and pvc.status.phase == "Bound" and pvc.status.access_modes:
            return pvc.status.access_modes, "PVC status"
        if pvc.spec and pvc.spec.access_modes:
            return pvc.spec.access_modes, "PVC spec"
    if vmi is not None and vmi.status is not None:
        for vs in vmi.status.volume_status or []:
            info = vs.persistent_volume_claim_info
            # claimName is only set by newer KubeVirt; older releases are matched by volume name
            matches = info is not None and (info.claim_name == claim or (not info.claim_name and vs.name == volume))
            if matches and info.access_modes:
                return info.access_modes, "VMI volumeStatus"
    dv = state.get("datavolumes.cdi.kubevirt.io", namespace, claim)
    modes, where = _dv_modes(state, dv.spec if dv is not None else None)
    if modes:
        return modes, where
    return _dv_modes(state, dv_template.spec if dv_template is not None else None)


VMS = "virtualmachines.kubevirt.io"
PVCS = "persistentvolumeclaims"
DATA_VOLUMES = "datavolumes.cdi.kubevirt.io"
VMIS = "virtualmachineinstances.kubevirt.io"
# What a disk's access modes can fall back to: the StorageProfile of its class, the default class.
FALLBACK_KINDS = ("storageprofiles.cdi.kubevirt.io", "storageclasses.storage.k8s.io")


def _claims(vm: VirtualMachine) -> list[tuple[str, str]]:
    """(claim, volume name) of a VM's PVC and DataVolume volumes."""
    spec = vm_template_spec(vm)
    out = []
    for vol in (spec.volumes if spec is not None else None) or []:
        if vol.persistent_volume_claim is not None and vol.persistent_volume_claim.claim_name:
            out.append((vol.persistent_volume_claim.claim_name, vol.name))
        elif vol.data_volume is not None and vol.data_volume.name:
            out.append((vol.data_volume.name, vol.name))
        # containerDisk, cloudInit, emptyDisk never block live migration
    return out


# A VM's disks' verdict: (claims without RWX, each "claim (modes from source)"; claims whose
# modes are unknown). Tuples, so that a VM with neither keeps no list of its own.
DiskVerdict = tuple[tuple[str, ...], tuple[str, ...]]


def vm_disks(state: ClusterState, vm: VirtualMachine) -> DiskVerdict:
    """(claims without RWX, each "claim (modes from source)"; claims whose modes are unknown)
    of a VM's PVC and DataVolume volumes."""
    found = all_vm_disks(state).table.get((vm.metadata.namespace, vm.metadata.name))
    if found is None or found[1] is not vm:
        found = _vm_disks_of(state, vm)
    return found[0]


@dataclass(frozen=True)
class VmDisks:
    """Every VM's disks' verdict, and which VMs name each claim."""

    table: dict[tuple[str, str], tuple[DiskVerdict, VirtualMachine]]  # (ns, VM) -> (verdict, VM)
    # (ns, claim) -> the VMs naming it, in name order (a tuple: most claims have one VM,
    # and a frozenset of one costs four times the memory; 20,000 claims at XL)
    claimants: dict[tuple[str, str], tuple[str, ...]]


DISK_KINDS = (VMS, VMIS, PVCS, DATA_VOLUMES, *FALLBACK_KINDS)


def all_vm_disks(state: ClusterState) -> VmDisks:
    """Every VM's disks: computed once (rwo_vm_disks and the readiness verdicts share it)
    and kept while none of the kinds it reads changes; after a change only the VMs the
    changed objects concern are judged again (state.per_changes), and each VM's verdict
    is kept (state.per_object) while the VM, its VMI, its claims' PVCs and DataVolumes,
    the StorageProfiles and StorageClasses are the same."""
    return state.per_changes("vm_disks", DISK_KINDS, _all_vm_disks, _vm_disks_changed)


def vms_claiming(state: ClusterState, changed: Changed) -> list[tuple[str, str]]:
    """The VMs (namespace, name) naming a changed PVC or DataVolume as a claim (a
    domain.incremental `Concerns`)."""
    names = all_vm_disks(state).claimants.get((changed.namespace, changed.name), ())
    return [(changed.namespace, vm) for vm in names]


def _all_vm_disks(state: ClusterState) -> VmDisks:
    table = {where: _vm_disks_of(state, vm) for where, vm in state.index(VMS).items()}
    claimants: dict[tuple[str, str], set[str]] = {}
    for vm in state.vms:
        for claim, _ in _claims(vm):
            claimants.setdefault((vm.metadata.namespace, claim), set()).add(vm.metadata.name)
    return VmDisks(table, {k: tuple(sorted(v)) for k, v in claimants.items()})


def _vm_disks_changed(state: ClusterState, kept: VmDisks, changed: Mapping[str, tuple[Changed, ...]]) -> VmDisks:
    if any(k in changed for k in FALLBACK_KINDS):
        return _all_vm_disks(state)
    names = {(c.namespace, c.name) for key in (VMS, VMIS) for c in changed.get(key, ())}
    for key in (PVCS, DATA_VOLUMES):
        for c in changed.get(key, ()):
            names.update((c.namespace, vm) for vm in kept.claimants.get((c.namespace, c.name), ()))
    table, claimants = kept.table, kept.claimants  # copied once something in them changes
    for where in names:
        before = table.get(where)
        vm = state.get(VMS, *where)
        after = _vm_disks_of(state, vm) if vm is not None else None
        if before is None and after is None:
            continue
        if before is not None and after is not None and after[1] is before[1] and after[0] == before[0]:
            continue  # the same VM with the same verdict: the kept entry stays
        if table is kept.table:
            table = dict(table)
        if after is None:
            del table[where]
        else:
            table[where] = after
        claims_before = _claims(before[1]) if before is not None else []
        claims_after = _claims(vm) if vm is not None else []
        if claims_before == claims_after:
            continue
        if claimants is kept.claimants:
            claimants = dict(claimants)
        for claim, _ in claims_before:
            named = tuple(n for n in claimants.get((where[0], claim), ()) if n != where[1])
            if named:
                claimants[(where[0], claim)] = named
            else:  # a claim the VM names twice is gone already the second time
                claimants.pop((where[0], claim), None)
        for claim, _ in claims_after:
            named = claimants.get((where[0], claim), ())
            if where[1] not in named:
                claimants[(where[0], claim)] = tuple(sorted((*named, where[1])))
    if table is kept.table and claimants is kept.claimants:
        return kept
    return VmDisks(table, claimants)


def _vm_disks_of(state: ClusterState, vm: VirtualMachine) -> tuple[DiskVerdict, VirtualMachine]:
    if vm_template_spec(vm) is None:
        return ((), ()), vm
    ns = vm.metadata.namespace
    vmi = state.get(VMIS, ns, vm.metadata.name)
    claims = _claims(vm)
    pvcs, dvs = state.index(PVCS), state.index(DATA_VOLUMES)
    inputs = [vmi, state.generations.get(FALLBACK_KINDS[0]), state.generations.get(FALLBACK_KINDS[1])]
    for claim, _ in claims:
        inputs += (pvcs.get((ns, claim)), dvs.get((ns, claim)))
    # Besides the inputs, only the records they stand for (and the kinds whose generations are in them) are read.
    return state.per_object("vm_disks", vm, lambda vm, vmi, *_: (_vm_disks(state, vm, vmi, claims), vm), *inputs)


def _vm_disks(
    state: ClusterState, vm: VirtualMachine, vmi: VirtualMachineInstance | None, claims: list[tuple[str, str]]
) -> DiskVerdict:
    rwo: list[str] = []
    unknown: list[str] = []
    templates = {t.metadata.name: t for t in (vm.spec.data_volume_templates or [])}
    for claim, volume in claims:
        modes, where = access_modes(state, vm.metadata.namespace, claim, vmi, templates.get(claim), volume)
        if modes is None:
            unknown.append(claim)
        elif RWX not in modes:
            rwo.append(f"{claim} ({'/'.join(modes)} from {where})")
    return tuple(rwo), tuple(unknown)
