#!/usr/bin/env python3
"""Generate the embedded demo cluster and the clean test fixture.

    python exporter/scripts/make_demo.py          # rewrite every generated file
    python exporter/scripts/make_demo.py --check  # exit 1 when a committed file is stale

Writes `exporter/ov_exporter/demo/` (an OpenShift Virtualization cluster in
`oc get -o yaml` style with planted anti-patterns, its dirty-rate samples,
`expectations.yaml` and `README.md`) and `tests/fixtures/clean/` (a small cluster on
which every check finds nothing). Deterministic: UIDs, resource versions, suffixes and
timestamps are derived from object names, never from a clock or a random generator.

Layout: builders that turn a few parameters into full object dicts, then the data
tables of the two clusters (`DEMO_*`, `CLEAN_*`), then the planted-case table
(`checks/<id>/demo.yaml`) that `expectations.yaml` and the README table are both made from.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEMO_DIR = ROOT / "exporter" / "ov_exporter" / "demo"
CLEAN_DIR = ROOT / "tests" / "fixtures" / "clean"
sys.path.insert(0, str(ROOT / "exporter"))  # anti-pattern numbers come from the check specs

from ov_exporter.checks import CHECKS  # noqa: E402

GI = 2**30
MI = 2**20
NOW = datetime(2025, 1, 20, 9, 30, 0, tzinfo=timezone.utc)  # the moment the "dump" was taken
UID_NAMESPACE = uuid.UUID("6f1c3c1e-58a4-4a57-9a43-0d2f6b1f0e11")

RHCOS_IMAGE = "Red Hat Enterprise Linux CoreOS 418.94.202410090804-0 (Plow)"
RHCOS_KERNEL = "5.14.0-427.40.1.el9_4.x86_64"
RHEL8_IMAGE = "Red Hat Enterprise Linux 8.10 (Ootpa)"
RHEL8_KERNEL = "4.18.0-553.22.1.el8_10.x86_64"
KUBELET = "v1.31.1"

SCHEDULABLE = "kubevirt.io/schedulable"
SMT_LABEL = "feature.node.kubernetes.io/cpu-hardware_multithreading"
RWX, RWO = "ReadWriteMany", "ReadWriteOnce"


# ================================================================ deterministic values


def _hash(*parts: object) -> int:
    return int(hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:15], 16)


def uid(*parts: object) -> str:
    return str(uuid.uuid5(UID_NAMESPACE, "/".join(map(str, parts))))


def resource_version(*parts: object) -> str:
    return str(48_000_000 + _hash("rv", *parts) % 9_000_000)


def suffix(*parts: object, length: int = 5) -> str:
    """A Kubernetes-style random suffix ("x7k2p"), derived from parts."""
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    value, out = _hash("suffix", *parts), []
    for _ in range(length):
        value, digit = divmod(value, len(alphabet))
        out.append(alphabet[digit])
    return "".join(out)


def stamp(days_ago: float, *parts: object) -> str:
    """A timestamp `days_ago` before NOW, jittered by up to an hour from parts."""
    jitter = _hash("ts", *parts) % 3600 if parts else 0
    return (NOW - timedelta(days=days_ago, seconds=jitter)).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(kind: str, name: str, namespace: str | None = None, *, labels: dict | None = None,
         annotations: dict | None = None, age_days: float = 90, owner: dict | None = None,
         extra: dict | None = None) -> dict:
    """ObjectMeta as the API server returns it (annotations, creationTimestamp, ... in key order)."""
    m: dict = {}
    if annotations:
        m["annotations"] = dict(annotations)
    m["creationTimestamp"] = stamp(age_days, kind, namespace, name)
    if extra:
        m.update(extra)
    if labels:
        m["labels"] = dict(labels)
    m["name"] = name
    if namespace is not None:
        m["namespace"] = namespace
    if owner:
        m["ownerReferences"] = [owner]
    m["resourceVersion"] = resource_version(kind, namespace, name)
    m["uid"] = uid(kind, namespace, name)
    return m


def owner_ref(api_version: str, kind: str, name: str, namespace: str | None = None, *,
              controller: bool = True) -> dict:
    ref = {"apiVersion": api_version, "blockOwnerDeletion": True}
    if controller:
        ref["controller"] = True
    ref.update({"kind": kind, "name": name, "uid": uid(kind, namespace, name)})
    return ref


def quantity_gi(value: float) -> str:
    return f"{value:g}Gi"


# ================================================================ core builders


@dataclass(frozen=True)
class NodeRow:
    name: str
    role: str  # master | worker
    cpu: int = 64
    memory_ki: int = 527_756_200
    os: str = "rhcos"  # rhcos | rhel
    smt: bool | None = True  # NFD multithreading label; None: label missing
    ip: str = ""
    cpu_model: str = "Icelake-Server"
    extra_labels: tuple[tuple[str, str], ...] = ()  # more node labels (e.g. for a VM nodeSelector)
    ready: bool = True  # False: the kubelet stopped posting status (Ready Unknown, unreachable taints)
    hypervisor_host: str = ""  # a VM on this ESXi host (label ov-exporter.openshift.io/hypervisor-host); "": bare metal
    vm_schedulable: bool = False  # a control-plane node left open to VMs: schedulable label, no NoSchedule taint


def node(row: NodeRow) -> dict:
    rhel = row.os == "rhel"
    labels = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
    }
    if row.role == "worker":
        labels[f"cpu-model.node.kubevirt.io/{row.cpu_model}"] = "true"
        labels["cpumanager"] = "false"
        if row.smt is not None:
            labels[SMT_LABEL] = "true" if row.smt else "false"
        labels["feature.node.kubernetes.io/cpu-model.vendor_id"] = "Intel"
        labels["feature.node.kubernetes.io/kernel-version.major"] = "4" if rhel else "5"
        labels["kubevirt.io/ksm-enabled"] = "false"
        labels[SCHEDULABLE] = "true"
    labels.update({"kubernetes.io/arch": "amd64", "kubernetes.io/hostname": row.name, "kubernetes.io/os": "linux"})
    if row.vm_schedulable:
        labels[SCHEDULABLE] = "true"
    if row.role == "master":
        labels["node-role.kubernetes.io/control-plane"] = ""
        labels["node-role.kubernetes.io/master"] = ""
    else:
        labels["node-role.kubernetes.io/worker"] = ""
    labels["node.openshift.io/os_id"] = row.os
    labels.update(dict(row.extra_labels))
    if row.hypervisor_host:
        labels["ov-exporter.openshift.io/hypervisor-host"] = row.hypervisor_host
    annotations = {
        "csi.volume.kubernetes.io/nodeid": json.dumps(
            {"openshift-storage.rbd.csi.ceph.com": row.name, "topolvm.io": row.name}, separators=(",", ":")),
        "k8s.ovn.org/node-primary-ifaddr": json.dumps({"ipv4": f"{row.ip}/24"}, separators=(",", ":")),
        **({} if rhel or row.hypervisor_host else
           {"machine.openshift.io/machine": f"openshift-machine-api/ocp-virt-{row.name}"}),
        "machineconfiguration.openshift.io/controlPlaneTopology": "HighlyAvailable",
        "machineconfiguration.openshift.io/currentConfig": f"rendered-{row.role}-{suffix(row.role, length=32)[:32]}",
        "machineconfiguration.openshift.io/state": "Done",
        "volumes.kubernetes.io/controller-managed-attach-detach": "true",
    }
    if row.role == "worker":
        annotations["kubevirt.io/heartbeat"] = stamp(0.0005, "heartbeat", row.name)
    spec: dict = {"providerID": f"vsphere://{uid('vsphere', row.name)}" if row.hypervisor_host
                  else f"baremetalhost:///openshift-machine-api/{row.name}/{uid('bmh', row.name)}"}
    if row.role == "master" and not row.vm_schedulable:
        spec["taints"] = [{"effect": "NoSchedule", "key": "node-role.kubernetes.io/master"}]
    if not row.ready:
        spec["taints"] = [{"effect": "NoSchedule", "key": "node.kubernetes.io/unreachable",
                           "timeAdded": stamp(0.01, "unreachable", row.name)},
                          {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable",
                           "timeAdded": stamp(0.01, "unreachable", row.name)}]
    memory = f"{row.memory_ki}Ki"
    reserved_ki = 1_048_576 + row.memory_ki // 100
    capacity = {"cpu": str(row.cpu)}
    if row.role == "worker":
        capacity["devices.kubevirt.io/kvm"] = "1k"
        capacity["devices.kubevirt.io/tun"] = "1k"
        capacity["devices.kubevirt.io/vhost-net"] = "1k"
    capacity.update({"ephemeral-storage": "936760300Ki", "hugepages-1Gi": "0", "hugepages-2Mi": "0",
                     "memory": memory, "pods": "250"})
    allocatable = dict(capacity, cpu=f"{row.cpu * 1000 - 500}m", memory=f"{row.memory_ki - reserved_ki}Ki",
                       **{"ephemeral-storage": "862240169159"})
    heartbeat = stamp(0.002, "node-hb", row.name)
    since = stamp(40, "node-ready", row.name)

    def condition(type_: str, status: str, reason: str, message: str) -> dict:
        if not row.ready:
            return {"lastHeartbeatTime": stamp(0.02, "node-hb", row.name),
                    "lastTransitionTime": stamp(0.01, "node-nr", row.name),
                    "message": "Kubelet stopped posting node status.", "reason": "NodeStatusUnknown",
                    "status": "Unknown", "type": type_}
        return {"lastHeartbeatTime": heartbeat, "lastTransitionTime": since, "message": message,
                "reason": reason, "status": status, "type": type_}

    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": meta("Node", row.name, labels=labels, annotations=annotations, age_days=400),
        "spec": spec,
        "status": {
            "addresses": [{"address": row.ip, "type": "InternalIP"}, {"address": row.name, "type": "Hostname"}],
            "allocatable": allocatable,
            "capacity": capacity,
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": uid("boot", row.name),
                "containerRuntimeVersion": "cri-o://1.31.1-4.rhaos4.18.gitb5e16a5.el9" if not rhel
                else "cri-o://1.31.1-4.rhaos4.18.gitb5e16a5.el8",
                "kernelVersion": RHEL8_KERNEL if rhel else RHCOS_KERNEL,
                "kubeProxyVersion": KUBELET,
                "kubeletVersion": KUBELET,
                "machineID": uid("machine-id", row.name).replace("-", ""),
                "operatingSystem": "linux",
                "osImage": RHEL8_IMAGE if rhel else RHCOS_IMAGE,
                "systemUUID": uid("system", row.name),
            },
        },
    }


@dataclass(frozen=True)
class NamespaceRow:
    name: str
    labels: dict = field(default_factory=dict, hash=False)
    display: str = ""
    requester: str = "kube:admin"


def namespace(row: NamespaceRow) -> dict:
    labels = {"kubernetes.io/metadata.name": row.name, **row.labels,
              "pod-security.kubernetes.io/audit": "privileged",
              "pod-security.kubernetes.io/audit-version": "v1.24",
              "pod-security.kubernetes.io/warn": "privileged",
              "pod-security.kubernetes.io/warn-version": "v1.24"}
    n = _hash("ns", row.name) % 50 + 26
    annotations = {"openshift.io/description": "", "openshift.io/display-name": row.display,
                   "openshift.io/requester": row.requester,
                   "openshift.io/sa.scc.mcs": f"s0:c{n},c{n - 10}",
                   "openshift.io/sa.scc.supplemental-groups": f"10006{n}0000/10000",
                   "openshift.io/sa.scc.uid-range": f"10006{n}0000/10000"}
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": meta("Namespace", row.name, labels=labels, annotations=annotations, age_days=300),
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}


# ================================================================ storage builders


@dataclass(frozen=True)
class StorageClassRow:
    name: str
    provisioner: str
    claim_property_sets: tuple[tuple[tuple[str, ...], str], ...]  # (access modes, volume mode)
    parameters: dict = field(default_factory=dict, hash=False)
    annotations: dict = field(default_factory=dict, hash=False)
    binding: str = "Immediate"
    snapshot_class: str = ""
    clone_strategy: str = "csi-clone"


ODF_RBD_PARAMS = {
    "clusterID": "openshift-storage",
    "csi.storage.k8s.io/controller-expand-secret-name": "rook-csi-rbd-provisioner",
    "csi.storage.k8s.io/controller-expand-secret-namespace": "openshift-storage",
    "csi.storage.k8s.io/fstype": "ext4",
    "csi.storage.k8s.io/node-stage-secret-name": "rook-csi-rbd-node",
    "csi.storage.k8s.io/node-stage-secret-namespace": "openshift-storage",
    "csi.storage.k8s.io/provisioner-secret-name": "rook-csi-rbd-provisioner",
    "csi.storage.k8s.io/provisioner-secret-namespace": "openshift-storage",
    "imageFeatures": "layering,deep-flatten,exclusive-lock,object-map,fast-diff",
    "imageFormat": "2",
    "pool": "ocs-storagecluster-cephblockpool",
}
ODF_PROPERTY_SETS = (((RWX,), "Block"), ((RWO,), "Block"), ((RWO,), "Filesystem"))
LVMS_PROPERTY_SETS = (((RWO,), "Block"), ((RWO,), "Filesystem"))


def storage_class(row: StorageClassRow) -> dict:
    return {"allowVolumeExpansion": True, "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": meta("StorageClass", row.name, annotations=row.annotations, age_days=380),
            "parameters": dict(row.parameters), "provisioner": row.provisioner, "reclaimPolicy": "Delete",
            "volumeBindingMode": row.binding}


def storage_profile(row: StorageClassRow) -> dict:
    status = {
        "claimPropertySets": [{"accessModes": list(modes), "volumeMode": mode}
                              for modes, mode in row.claim_property_sets],
        "cloneStrategy": row.clone_strategy,
        "dataImportCronSourceFormat": "snapshot" if row.snapshot_class else "pvc",
        "provisioner": row.provisioner,
    }
    if row.snapshot_class:
        status["snapshotClass"] = row.snapshot_class
    status["storageClass"] = row.name
    return {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "StorageProfile",
            "metadata": meta("StorageProfile", row.name, age_days=380, extra={"generation": 1},
                             labels={"app": "containerized-data-importer", "app.kubernetes.io/component": "storage",
                                     "app.kubernetes.io/managed-by": "cdi-controller",
                                     "app.kubernetes.io/part-of": "hyperconverged-cluster",
                                     "app.kubernetes.io/version": "4.18.3", "cdi.kubevirt.io": ""},
                             owner=owner_ref("cdi.kubevirt.io/v1beta1", "CDI", "cdi-kubevirt-hyperconverged")),
            "spec": {}, "status": status}


@dataclass(frozen=True)
class Disk:
    """One PVC-backed VM disk. `source`: dvt (dataVolumeTemplate, spec.storage), dvt-pvc
    (dataVolumeTemplate with the older spec.pvc) or pvc (a claim created on its own)."""

    volume: str  # volume name in the VM; the claim is "<vm>-<volume>"
    size_gi: int
    storage_class: str | None = None  # None: the default virtualization class
    source: str = "dvt"
    access_modes: tuple[str, ...] = ()  # explicit in the DataVolume/PVC spec; () lets the StorageProfile decide
    volume_mode: str = "Block"


def claim_modes(disk: Disk, classes: dict[str, StorageClassRow], default_class: str) -> tuple[list[str], str]:
    """The access modes CDI gives the claim, and its storage class."""
    sc = disk.storage_class or default_class
    if disk.access_modes:
        return list(disk.access_modes), sc
    for modes, mode in classes[sc].claim_property_sets:
        if mode == disk.volume_mode:
            return list(modes), sc
    raise ValueError(f"no claim property set for {sc} {disk.volume_mode}")


def pvc(namespace: str, name: str, disk: Disk, modes: list[str], sc: str, provisioner: str, *,
        from_dv: bool, age_days: float) -> dict:
    annotations = {}
    if from_dv:
        annotations.update({"cdi.kubevirt.io/createdForDataVolume": uid("DataVolume", namespace, name),
                            "cdi.kubevirt.io/storage.condition.running": "false",
                            "cdi.kubevirt.io/storage.condition.running.message": "Import Complete",
                            "cdi.kubevirt.io/storage.condition.running.reason": "Completed",
                            "cdi.kubevirt.io/storage.contentType": "kubevirt",
                            "cdi.kubevirt.io/storage.pod.phase": "Succeeded",
                            "cdi.kubevirt.io/storage.populator.progress": "100.0%",
                            "cdi.kubevirt.io/storage.usePopulator": "true"})
    annotations.update({"pv.kubernetes.io/bind-completed": "yes", "pv.kubernetes.io/bound-by-controller": "yes",
                        "volume.beta.kubernetes.io/storage-provisioner": provisioner,
                        "volume.kubernetes.io/storage-provisioner": provisioner})
    if sc.startswith("lvms"):
        annotations["volume.kubernetes.io/selected-node"] = ""  # filled by the caller
    labels = ({"app": "containerized-data-importer", "app.kubernetes.io/component": "storage",
               "app.kubernetes.io/managed-by": "cdi-controller", "app.kubernetes.io/part-of": "hyperconverged-cluster",
               "app.kubernetes.io/version": "4.18.3"} if from_dv else {"app": name.rsplit("-", 1)[0]})
    owner = owner_ref("cdi.kubevirt.io/v1beta1", "DataVolume", name, namespace) if from_dv else None
    size = quantity_gi(disk.size_gi)
    return {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": meta("PersistentVolumeClaim", name, namespace, labels=labels, annotations=annotations,
                         age_days=age_days, owner=owner,
                         extra={"finalizers": ["kubernetes.io/pvc-protection"]}),
        "spec": {"accessModes": modes, "resources": {"requests": {"storage": size}}, "storageClassName": sc,
                 "volumeMode": disk.volume_mode, "volumeName": f"pvc-{uid('pv', namespace, name)}"},
        "status": {"accessModes": modes, "capacity": {"storage": size}, "phase": "Bound"},
    }


def dv_spec(disk: Disk, os_key: str) -> dict:
    """spec of a DataVolume (template): clone the golden image of the OS."""
    spec: dict = {"sourceRef": {"kind": "DataSource", "name": OS[os_key].data_source,
                                "namespace": "openshift-virtualization-os-images"}} if disk.volume == "rootdisk" \
        else {"source": {"blank": {}}}
    claim: dict = {}
    if disk.access_modes:
        claim["accessModes"] = list(disk.access_modes)
    claim["resources"] = {"requests": {"storage": quantity_gi(disk.size_gi)}}
    if disk.storage_class:
        claim["storageClassName"] = disk.storage_class
    if disk.source == "dvt-pvc":
        claim["volumeMode"] = disk.volume_mode
        spec["pvc"] = claim
    else:
        spec["storage"] = claim
    return spec


def data_volume(vm_row: VMRow, disk: Disk, age_days: float) -> dict:
    name = f"{vm_row.name}-{disk.volume}"
    ns = vm_row.namespace
    return {
        "apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
        "metadata": meta("DataVolume", name, ns, age_days=age_days,
                         annotations={"cdi.kubevirt.io/storage.usePopulator": "true"},
                         labels={"kubevirt.io/created-by": uid("VirtualMachine", ns, vm_row.name)},
                         owner=owner_ref("kubevirt.io/v1", "VirtualMachine", vm_row.name, ns),
                         extra={"generation": 1}),
        "spec": dv_spec(disk, vm_row.os),
        "status": {"claimName": name,
                   "conditions": [{"lastHeartbeatTime": stamp(age_days - 0.01, "dv", ns, name),
                                   "lastTransitionTime": stamp(age_days - 0.01, "dv", ns, name),
                                   "message": "PVC " + name + " Bound", "reason": "Bound",
                                   "status": "True", "type": "Bound"},
                                  {"lastHeartbeatTime": stamp(age_days - 0.01, "dv", ns, name),
                                   "lastTransitionTime": stamp(age_days - 0.01, "dv", ns, name),
                                   "status": "True", "type": "Ready"}],
                   "phase": "Succeeded", "progress": "100.0%"},
    }


# ================================================================ KubeVirt builders


@dataclass(frozen=True)
class OSRow:
    data_source: str
    template: str
    os_label: str
    guest: dict = field(default_factory=dict, hash=False)
    windows: bool = False
    machine: str = "pc-q35-rhel9.4.0"


OS = {
    "rhel9": OSRow("rhel9", "rhel9-server-medium", "rhel9",
                   {"id": "rhel", "kernelRelease": "5.14.0-427.37.1.el9_4.x86_64", "name": "Red Hat Enterprise Linux",
                    "prettyName": "Red Hat Enterprise Linux 9.4 (Plow)", "version": "9.4", "versionId": "9.4"}),
    "rhel8": OSRow("rhel8", "rhel8-server-medium", "rhel8",
                   {"id": "rhel", "kernelRelease": "4.18.0-553.16.1.el8_10.x86_64", "name": "Red Hat Enterprise Linux",
                    "prettyName": "Red Hat Enterprise Linux 8.10 (Ootpa)", "version": "8.10", "versionId": "8.10"}),
    "centos9": OSRow("centos-stream9", "centos-stream9-server-small", "centos.stream9",
                     {"id": "centos", "kernelRelease": "5.14.0-522.el9.x86_64", "name": "CentOS Stream",
                      "prettyName": "CentOS Stream 9", "version": "9", "versionId": "9"}),
    "fedora": OSRow("fedora", "fedora-server-small", "fedora",
                    {"id": "fedora", "kernelRelease": "6.11.4-301.fc41.x86_64", "name": "Fedora Linux",
                     "prettyName": "Fedora Linux 41 (Cloud Edition)", "version": "41 (Cloud Edition)",
                     "versionId": "41"}),
    "win2k22": OSRow("win2k22", "windows2k22-server-large", "windows2k22",
                     {"id": "mswindows", "kernelRelease": "20348", "name": "Microsoft Windows",
                      "prettyName": "Windows Server 2022 Standard", "version": "2022", "versionId": "10.0.20348"},
                     windows=True),
}


@dataclass(frozen=True)
class NetRef:
    """A secondary (multus) network of a VM: the NAD reference as written in the VM."""

    iface: str
    network_name: str  # "nad" (same namespace) or "namespace/nad"


@dataclass(frozen=True)
class VMRow:
    namespace: str
    name: str
    node: str
    cpu: tuple[int, int, int]  # sockets, cores, threads
    memory_gi: int
    os: str = "rhel9"
    disks: tuple[Disk, ...] = ()
    container_disk: str = ""  # image of an ephemeral root disk
    eviction: str | None = None  # None: the cluster default applies
    networks: tuple[NetRef, ...] = ()
    dirty_mib: float | None = None  # steady-state dirty rate sample; None: no sample
    labels: tuple[tuple[str, str], ...] = ()  # extra template (and so VMI) labels
    migration: str = ""  # key of MIGRATION_STATES
    age_days: float = 120
    size: str = "medium"
    # Scheduling knobs merged into the VMI spec (affinity, nodeSelector, tolerations,
    # topologySpreadConstraints): they do not change a node's load.
    scheduling: dict = field(default_factory=dict, hash=False)
    limits: tuple[tuple[str, str], ...] = ()  # spec.domain.resources.limits
    annotations: tuple[tuple[str, str], ...] = ()  # extra VM annotations
    phase: str = "Running"  # Scheduling: the VMI waits, unschedulable, on no node (`node` is "")
    pending_message: str = ""  # the PodScheduled condition's message of such a VMI
    node_selector: tuple[tuple[str, str], ...] = ()  # spec.template.spec.nodeSelector
    running: bool = True  # False: runStrategy Halted, no VMI (`node` is where it last ran)
    run_strategy: str = ""  # "": Always (RerunOnFailure for container-disk VMs)

    @property
    def vcpus(self) -> int:
        return self.cpu[0] * self.cpu[1] * self.cpu[2]


def _cloud_init(vm_row: VMRow) -> dict:
    user_data = ("#cloud-config\n"
                 "user: cloud-user\n"
                 "chpasswd:\n"
                 "  expire: false\n"
                 "ssh_authorized_keys:\n"
                 "  - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO3DemoKeyForTheOvExporterDemoCluster00 ops@example.com\n"
                 f"hostname: {vm_row.name}\n")
    return {"cloudInitNoCloud": {"userData": user_data}, "name": "cloudinitdisk"}


def _vmi_spec(vm_row: VMRow, *, for_vmi: bool) -> dict:
    """The VMI spec: the VM's spec.template.spec, or the VMI's own spec (with defaults filled)."""
    os_row = OS[vm_row.os]
    sockets, cores, threads = vm_row.cpu
    disks, volumes = [], []
    if vm_row.container_disk:
        disks.append({"disk": {"bus": "virtio"}, "name": "containerdisk"})
        volumes.append({"containerDisk": {"image": vm_row.container_disk,
                                          **({"imagePullPolicy": "IfNotPresent"} if for_vmi else {})},
                        "name": "containerdisk"})
    for disk in vm_row.disks:
        claim = f"{vm_row.name}-{disk.volume}"
        disks.append({"disk": {"bus": "sata" if os_row.windows and disk.volume == "rootdisk" else "virtio"},
                      "name": disk.volume})
        if disk.source == "pvc":
            volumes.append({"name": disk.volume, "persistentVolumeClaim": {"claimName": claim}})
        else:
            volumes.append({"dataVolume": {"name": claim}, "name": disk.volume})
    if not os_row.windows:
        disks.append({"disk": {"bus": "virtio"}, "name": "cloudinitdisk"})
        volumes.append(_cloud_init(vm_row))
    interfaces = [{"macAddress": _mac(vm_row, "default"), "masquerade": {}, "model": "virtio", "name": "default"}]
    networks = [{"name": "default", "pod": {}}]
    for net in vm_row.networks:
        interfaces.append({"bridge": {}, "macAddress": _mac(vm_row, net.iface), "model": "virtio",
                           "name": net.iface})
        networks.append({"multus": {"networkName": net.network_name}, "name": net.iface})
    cpu: dict = {"cores": cores, "sockets": sockets, "threads": threads}
    if for_vmi:
        cpu = {**cpu, "maxSockets": sockets * 4, "model": "host-model"}
    domain: dict = {"cpu": cpu, "devices": {"disks": disks, "interfaces": interfaces, "rng": {}}}
    if for_vmi:
        domain["devices"]["networkInterfaceMultiqueue"] = True
    if os_row.windows:
        domain["clock"] = {"timer": {"hpet": {"present": False}, "hyperv": {}, "pit": {"tickPolicy": "delay"},
                                     "rtc": {"tickPolicy": "catchup"}}, "utc": {}}
        domain["features"] = {"acpi": {}, "apic": {},
                              "hyperv": {"relaxed": {}, "spinlocks": {"spinlocks": 8191}, "vapic": {}},
                              "smm": {"enabled": True}}
        domain["firmware"] = {"bootloader": {"efi": {"secureBoot": True}}}
    else:
        domain["features"] = {"acpi": {"enabled": True}, "smm": {"enabled": True}} if for_vmi else {"smm": {"enabled": True}}
        domain["firmware"] = {"bootloader": {"efi": {}}}
    if for_vmi:
        domain["firmware"]["serial"] = uid("serial", vm_row.namespace, vm_row.name)
        domain["firmware"]["uuid"] = uid("firmware", vm_row.namespace, vm_row.name)
    domain["machine"] = {"type": os_row.machine}
    guest = quantity_gi(vm_row.memory_gi)
    domain["memory"] = {"guest": guest, **({"maxGuest": quantity_gi(vm_row.memory_gi * 4)} if for_vmi else {})}
    if for_vmi:
        domain["resources"] = {"requests": {"memory": guest}}
    if vm_row.limits:
        domain["resources"] = {**domain.get("resources", {}), "limits": dict(vm_row.limits)}
    spec: dict = {"architecture": "amd64", "domain": domain}
    if vm_row.eviction:
        spec["evictionStrategy"] = vm_row.eviction
    if vm_row.node_selector:
        spec["nodeSelector"] = dict(vm_row.node_selector)
    spec["networks"] = networks
    spec["terminationGracePeriodSeconds"] = 3600 if os_row.windows else 180
    spec["volumes"] = volumes
    if vm_row.scheduling:
        spec = dict(sorted({**spec, **vm_row.scheduling}.items()))
    return spec


def _mac(vm_row: VMRow, iface: str) -> str:
    value = _hash("mac", vm_row.namespace, vm_row.name, iface)
    return "02:" + ":".join(f"{(value >> (8 * i)) & 0xff:02x}" for i in range(5))


def _template_labels(vm_row: VMRow) -> dict:
    return {"kubevirt.io/domain": vm_row.name, "kubevirt.io/size": vm_row.size, **dict(vm_row.labels)}


def vm(vm_row: VMRow, cluster: Cluster) -> dict:
    os_row = OS[vm_row.os]
    ns, name = vm_row.namespace, vm_row.name
    labels = {"app": name, "app.kubernetes.io/name": name.rsplit("-", 1)[0],
              "vm.kubevirt.io/template": os_row.template, "vm.kubevirt.io/template.namespace": "openshift",
              "vm.kubevirt.io/template.revision": "1", "vm.kubevirt.io/template.version": "v0.31.1"}
    annotations = {"kubemacpool.io/transaction-timestamp": stamp(vm_row.age_days - 0.5, "kmp", ns, name),
                   "kubevirt.io/latest-observed-api-version": "v1", "kubevirt.io/storage-observed-api-version": "v1",
                   "vm.kubevirt.io/validations": "[\n  {\n    \"name\": \"minimal-required-memory\",\n"
                   "    \"path\": \"jsonpath::.spec.domain.memory.guest\",\n"
                   "    \"rule\": \"integer\",\n    \"message\": \"This VM requires more memory.\",\n"
                   f"    \"min\": {2 * GI if os_row.windows else 1610612736}\n  }}\n]\n"}
    annotations.update(dict(vm_row.annotations))
    spec: dict = {}
    templates = [d for d in vm_row.disks if d.source != "pvc"]
    if templates:
        spec["dataVolumeTemplates"] = [
            {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
             "metadata": {"creationTimestamp": None, "name": f"{name}-{d.volume}"}, "spec": dv_spec(d, vm_row.os)}
            for d in templates]
    spec["runStrategy"] = vm_row.run_strategy or ("Always" if not vm_row.container_disk else "RerunOnFailure")
    if not vm_row.running:
        spec["runStrategy"] = "Halted"
    spec["template"] = {
        "metadata": {"annotations": {"vm.kubevirt.io/flavor": vm_row.size, "vm.kubevirt.io/os": os_row.os_label,
                                     "vm.kubevirt.io/workload": "server"},
                     "creationTimestamp": None, "labels": _template_labels(vm_row)},
        "spec": _vmi_spec(vm_row, for_vmi=False),
    }
    started = stamp(_started_days(vm_row), "vmi-start", ns, name)
    status = {
        "conditions": [
            {"lastProbeTime": None, "lastTransitionTime": started, "status": "True", "type": "Ready"},
            {"lastProbeTime": None, "lastTransitionTime": None, "status": "True", "type": "Initialized"},
            {"lastProbeTime": None, "lastTransitionTime": started, "status": _migratable(vm_row, cluster)[0],
             "type": "LiveMigratable", **_migratable_reason(vm_row, cluster)},
            {"lastProbeTime": None, "lastTransitionTime": started, "status": "True", "type": "StorageLiveMigratable"},
        ],
        "created": True,
        "desiredGeneration": 2,
        "observedGeneration": 2,
        "printableStatus": "Running",
        "ready": True,
        "runStrategy": spec["runStrategy"],
        "volumeSnapshotStatuses": [{"enabled": d.storage_class is None or "ceph" in (d.storage_class or ""),
                                    "name": d.volume} for d in vm_row.disks],
    }
    if vm_row.phase != "Running":  # the VMI exists but the scheduler cannot place its pod
        status["conditions"] = [
            {"lastProbeTime": None, "lastTransitionTime": started, "message": vm_row.pending_message,
             "reason": "Unschedulable", "status": "False", "type": "Ready"},
            {"lastProbeTime": None, "lastTransitionTime": started, "message": vm_row.pending_message,
             "reason": "Unschedulable", "status": "False", "type": "PodScheduled"}]
        status["printableStatus"] = "ErrorUnschedulable"
        status["ready"] = False
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
            "metadata": meta("VirtualMachine", name, ns, labels=labels, annotations=annotations,
                             age_days=vm_row.age_days,
                             extra={"finalizers": ["kubevirt.io/virtualMachineControllerFinalize"], "generation": 2}),
            "spec": spec, "status": status if vm_row.running else _stopped_status(vm_row, spec)}


def _stopped_status(vm_row: VMRow, spec: dict) -> dict:
    """status of a VM with runStrategy Halted: no VMI."""
    since = stamp(_started_days(vm_row), "vm-stop", vm_row.namespace, vm_row.name)
    return {
        "conditions": [{"lastProbeTime": None, "lastTransitionTime": since, "message": "VMI does not exist",
                        "reason": "VMINotExists", "status": "False", "type": "Ready"}],
        "desiredGeneration": 2,
        "observedGeneration": 2,
        "printableStatus": "Stopped",
        "runStrategy": spec["runStrategy"],
        "volumeSnapshotStatuses": [{"enabled": d.storage_class is None or "ceph" in (d.storage_class or ""),
                                    "name": d.volume} for d in vm_row.disks],
    }


def _started_days(vm_row: VMRow) -> float:
    return 3 + _hash("started", vm_row.namespace, vm_row.name) % 30


def _migratable(vm_row: VMRow, cluster: Cluster) -> tuple[str, list[str]]:
    """("True"|"False", the non-shared claims) as KubeVirt judges LiveMigratable."""
    rwo = [f"{vm_row.name}-{d.volume}" for d in vm_row.disks
           if RWX not in claim_modes(d, cluster.classes, cluster.default_class)[0]]
    return ("False" if rwo else "True"), rwo


def _migratable_reason(vm_row: VMRow, cluster: Cluster) -> dict:
    status, rwo = _migratable(vm_row, cluster)
    if status == "True":
        return {}
    return {"message": f"cannot migrate VMI: PVC {rwo[0]} is not shared, live migration requires that all PVCs "
                       "must be shared (using ReadWriteMany access mode)", "reason": "DisksNotLiveMigratable"}


@dataclass(frozen=True)
class MigrationStateRow:
    source: str
    target: str
    days_ago: float
    minutes: float | None  # duration; None: still running
    failed: bool = False
    policy: str = ""
    bandwidth: str = ""
    timeout_per_gib: int = 150
    auto_converge: bool = False


def migration_configuration(state: MigrationStateRow, hco_cfg: dict) -> dict:
    cfg = {"allowAutoConverge": state.auto_converge, "allowPostCopy": False, "allowWorkloadDisruption": False}
    if state.bandwidth:
        cfg["bandwidthPerMigration"] = state.bandwidth
    cfg.update({"completionTimeoutPerGiB": state.timeout_per_gib, "nodeDrainTaintKey": "kubevirt.io/drain",
                "parallelMigrationsPerCluster": hco_cfg["parallelMigrationsPerCluster"],
                "parallelOutboundMigrationsPerNode": hco_cfg["parallelOutboundMigrationsPerNode"],
                "progressTimeout": hco_cfg["progressTimeout"], "unsafeMigrationOverride": False})
    return cfg


def pending_vmi(vm_row: VMRow) -> dict:
    """A VMI whose virt-launcher pod the scheduler cannot place: no node, no guest status."""
    ns, name = vm_row.namespace, vm_row.name
    os_row = OS[vm_row.os]
    started_days = _started_days(vm_row)
    created = stamp(started_days, "vmi-start", ns, name)
    status = {
        "activePods": {uid("virt-launcher", ns, name): ""},
        "conditions": [{"lastProbeTime": None, "lastTransitionTime": created, "message": vm_row.pending_message,
                        "reason": "Unschedulable", "status": "False", "type": "PodScheduled"}],
        "guestOSInfo": {},
        "phase": vm_row.phase,
        "phaseTransitionTimestamps": [
            {"phase": "Pending", "phaseTransitionTimestamp": created},
            {"phase": "Scheduling", "phaseTransitionTimestamp": stamp(started_days - 0.0001, "s", ns, name)}],
        "qosClass": "Burstable",
        "virtualMachineRevisionName": f"revision-start-vm-{uid('VirtualMachine', ns, name)}-2",
    }
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
            "metadata": meta("VirtualMachineInstance", name, ns, labels=_template_labels(vm_row),
                             annotations={"kubevirt.io/latest-observed-api-version": "v1",
                                          "kubevirt.io/storage-observed-api-version": "v1",
                                          "kubevirt.io/vm-generation": "2", "vm.kubevirt.io/flavor": vm_row.size,
                                          "vm.kubevirt.io/os": os_row.os_label, "vm.kubevirt.io/workload": "server"},
                             age_days=started_days, owner=owner_ref("kubevirt.io/v1", "VirtualMachine", name, ns),
                             extra={"finalizers": ["kubevirt.io/virtualMachineControllerFinalize",
                                                   "foregroundDeleteVirtualMachine"], "generation": 3}),
            "spec": _vmi_spec(vm_row, for_vmi=True), "status": status}


def vmi(vm_row: VMRow, cluster: "Cluster") -> dict:
    if vm_row.phase != "Running":
        return pending_vmi(vm_row)
    ns, name = vm_row.namespace, vm_row.name
    os_row = OS[vm_row.os]
    started_days = _started_days(vm_row)
    started = stamp(started_days, "vmi-start", ns, name)
    labels = {**_template_labels(vm_row), "kubevirt.io/nodeName": vm_row.node}
    annotations = {"kubevirt.io/latest-observed-api-version": "v1", "kubevirt.io/storage-observed-api-version": "v1",
                   "kubevirt.io/vm-generation": "2", "vm.kubevirt.io/flavor": vm_row.size,
                   "vm.kubevirt.io/os": os_row.os_label, "vm.kubevirt.io/workload": "server"}
    live, _ = _migratable(vm_row, cluster)
    conditions = [
        {"lastProbeTime": None, "lastTransitionTime": started, "status": "True", "type": "Ready"},
        {"lastProbeTime": None, "lastTransitionTime": None, "status": live, "type": "LiveMigratable",
         **_migratable_reason(vm_row, cluster)},
        {"lastProbeTime": None, "lastTransitionTime": None, "status": "True", "type": "StorageLiveMigratable"},
        {"lastProbeTime": None, "lastTransitionTime": started, "status": "True", "type": "AgentConnected"},
    ]
    interfaces = [{"infoSource": "domain, guest-agent", "interfaceName": "eth0",
                   "ipAddress": _pod_ip(vm_row), "ipAddresses": [_pod_ip(vm_row)],
                   "linkState": "up", "mac": _mac(vm_row, "default"), "name": "default", "queueCount": 1,
                   "podInterfaceName": "eth0"}]
    for i, net in enumerate(vm_row.networks, start=1):
        interfaces.append({"infoSource": "domain, guest-agent, multus-status", "interfaceName": f"eth{i}",
                           "linkState": "up", "mac": _mac(vm_row, net.iface), "name": net.iface,
                           "podInterfaceName": f"pod{uid('podif', ns, name, net.iface)[:11].replace('-', '')}",
                           "queueCount": 1})
    volume_status = []
    targets = iter("abcdefgh")
    if vm_row.container_disk:
        volume_status.append({"containerDiskVolume": {"checksum": _hash("cd", vm_row.container_disk) % 2**32},
                              "name": "containerdisk", "target": f"vd{next(targets)}"})
    for disk in vm_row.disks:
        modes, _ = claim_modes(disk, cluster.classes, cluster.default_class)
        claim = f"{name}-{disk.volume}"
        volume_status.append({
            "name": disk.volume,
            "persistentVolumeClaimInfo": {"accessModes": modes, "capacity": {"storage": quantity_gi(disk.size_gi)},
                                          "claimName": claim, "filesystemOverhead": "0",
                                          "requests": {"storage": quantity_gi(disk.size_gi)},
                                          "volumeMode": disk.volume_mode},
            "target": ("sd" if os_row.windows and disk.volume == "rootdisk" else "vd") + next(targets),
        })
    if not os_row.windows:
        volume_status.append({"name": "cloudinitdisk", "size": 1048576, "target": f"vd{next(targets)}"})
    sockets, cores, threads = vm_row.cpu
    guest = quantity_gi(vm_row.memory_gi)
    status: dict = {
        "activePods": {uid("virt-launcher", ns, name): vm_row.node},
        "conditions": conditions,
        "currentCPUTopology": {"cores": cores, "sockets": sockets, "threads": threads},
        "guestOSInfo": dict(os_row.guest),
        "interfaces": interfaces,
        "launcherContainerImageVersion": "registry.redhat.io/container-native-virtualization/"
                                         "virt-launcher-rhel9@sha256:" + hashlib.sha256(b"virt-launcher").hexdigest(),
        "machine": {"type": os_row.machine},
        "memory": {"guestAtBoot": guest, "guestCurrent": guest, "guestRequested": guest},
        "migrationMethod": "LiveMigration" if live == "True" and not vm_row.container_disk else "BlockMigration",
        "migrationTransport": "Unix",
        "nodeName": vm_row.node,
        "phase": "Running",
        "phaseTransitionTimestamps": [
            {"phase": "Pending", "phaseTransitionTimestamp": stamp(started_days + 0.001, "p", ns, name)},
            {"phase": "Scheduling", "phaseTransitionTimestamp": stamp(started_days + 0.0008, "s", ns, name)},
            {"phase": "Scheduled", "phaseTransitionTimestamp": stamp(started_days + 0.0002, "d", ns, name)},
            {"phase": "Running", "phaseTransitionTimestamp": started},
        ],
        "qosClass": "Burstable",
        "selinuxContext": "system_u:object_r:container_file_t:s0:c" + str(_hash("se", ns) % 900 + 10),
        "virtualMachineRevisionName": f"revision-start-vm-{uid('VirtualMachine', ns, name)}-2",
        "volumeStatus": volume_status,
    }
    if vm_row.migration:
        state = cluster.migration_states[vm_row.migration]
        ms: dict = {"migrationConfiguration": migration_configuration(state, cluster.hco_migrations)}
        if state.policy:
            ms["migrationPolicyName"] = state.policy
        ms["migrationUid"] = uid("VirtualMachineInstanceMigration", ns, vm_row.migration)
        ms["mode"] = "PreCopy"
        ms["sourceNode"] = state.source
        ms["sourcePod"] = f"virt-launcher-{name}-{suffix('src', ns, name)}"
        ms["startTimestamp"] = stamp(state.days_ago, "mig", ns, name)
        ms["targetNode"] = state.target
        ms["targetNodeAddress"] = f"10.131.{_hash('tna', state.target) % 250}.{_hash('tnb', name) % 250}"
        ms["targetPod"] = f"virt-launcher-{name}-{suffix('dst', ns, name)}"
        if state.minutes is not None:
            ms["completed"] = True
            ms["endTimestamp"] = (datetime.strptime(ms["startTimestamp"], "%Y-%m-%dT%H:%M:%SZ")
                                  + timedelta(minutes=state.minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
            if state.failed:
                ms["failed"] = True
                ms["failureReason"] = ("Live migration failed: operation failed: migration out of job: "
                                       "unexpectedly failed (progress timeout: no progress for 150 seconds)")
            ms["targetNodeDomainDetected"] = not state.failed
        status["migrationState"] = dict(sorted(ms.items()))
    status_sorted = dict(sorted(status.items()))
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
            "metadata": meta("VirtualMachineInstance", name, ns, labels=labels, annotations=annotations,
                             age_days=started_days,
                             owner=owner_ref("kubevirt.io/v1", "VirtualMachine", name, ns),
                             extra={"finalizers": ["kubevirt.io/virtualMachineControllerFinalize",
                                                   "foregroundDeleteVirtualMachine"], "generation": 14}),
            "spec": _vmi_spec(vm_row, for_vmi=True), "status": status_sorted}


def _pod_ip(vm_row: VMRow) -> str:
    return f"10.{128 + _hash('n', vm_row.node) % 4}.{_hash('n2', vm_row.node) % 250}." \
           f"{_hash('ip', vm_row.namespace, vm_row.name) % 250 + 3}"


@dataclass(frozen=True)
class MigrationRow:
    """A VirtualMachineInstanceMigration; `state` names the VMI migration state it ran."""

    namespace: str
    name: str
    vmi: str
    phase: str
    state: str
    evacuation: str = ""  # node being drained, for kubevirt-evacuation-* migrations
    workload_update: bool = False  # created by KubeVirt's workload updater (an upgrade)
    declared: str = ""  # value of ov-exporter.openshift.io/rebalance: the user declared a rebalance


def vmim(row: MigrationRow, cluster: "Cluster") -> dict:
    state = cluster.migration_states[row.state]
    labels = {"kubevirt.io/vmi-name": row.vmi}
    annotations = {"kubevirt.io/latest-observed-api-version": "v1", "kubevirt.io/storage-observed-api-version": "v1"}
    if row.evacuation:
        annotations["kubevirt.io/evacuationMigration"] = row.evacuation
    if row.workload_update:
        annotations["kubevirt.io/workloadUpdateMigration"] = ""
    if row.declared:
        annotations["ov-exporter.openshift.io/rebalance"] = row.declared
    start = datetime.strptime(stamp(state.days_ago, "mig", row.namespace, row.vmi), "%Y-%m-%dT%H:%M:%SZ")
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    phases = ["Pending", "Scheduling", "Scheduled", "PreparingTarget", "TargetReady", "Running"]
    stamps = [(p, (start - timedelta(seconds=12 - 2 * i)).strftime(fmt)) for i, p in enumerate(phases)]
    if row.phase in ("Succeeded", "Failed"):
        stamps.append((row.phase, (start + timedelta(minutes=state.minutes or 0)).strftime(fmt)))
    if row.phase == "Pending":  # queued: waiting for a free migration slot
        stamps = stamps[:1]
    status: dict = {"phase": row.phase,
                    "phaseTransitionTimestamps": [{"phase": p, "phaseTransitionTimestamp": t} for p, t in stamps]}
    if row.phase in ("Succeeded", "Failed"):
        status["migrationState"] = {"completed": True, "endTimestamp": stamps[-1][1], "failed": row.phase == "Failed",
                                    "mode": "PreCopy", "sourceNode": state.source,
                                    "startTimestamp": start.strftime(fmt), "targetNode": state.target}
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
            "metadata": meta("VirtualMachineInstanceMigration", row.name, row.namespace, labels=labels,
                             annotations=annotations, age_days=state.days_ago + 0.0002,
                             extra={"generation": 1}),
            "spec": {"vmiName": row.vmi}, "status": status}


def hyperconverged(cpu_ratio: int, migrations: dict, network: str | None = None,
                   auto_cpu_limit: dict | None = None) -> dict:
    live = dict(migrations)
    if network:
        live["network"] = network
    return {
        "apiVersion": "hco.kubevirt.io/v1beta1", "kind": "HyperConverged",
        "metadata": meta("HyperConverged", "kubevirt-hyperconverged", "openshift-cnv", age_days=380,
                         annotations={"deployOVS": "false"},
                         labels={"app": "kubevirt-hyperconverged"},
                         extra={"finalizers": ["kubevirt.io/hyperconverged"], "generation": 7}),
        "spec": {
            "applicationAwareConfig": {"allowApplicationAwareClusterResourceQuota": False,
                                       "vmiCalcConfigName": "DedicatedVirtualResources"},
            "certConfig": {"ca": {"duration": "48h0m0s", "renewBefore": "24h0m0s"},
                           "server": {"duration": "24h0m0s", "renewBefore": "12h0m0s"}},
            "deployVmConsoleProxy": False,
            "enableApplicationAwareQuota": False,
            "enableCommonBootImageImport": True,
            "evictionStrategy": "LiveMigrate",
            "featureGates": {"alignCPUs": False, "autoResourceLimits": False, "deployKubeSecondaryDNS": False,
                             "deployTektonTaskResources": False, "disableMDevConfiguration": False,
                             "enableCommonBootImageImport": True, "enableManagedTenantQuota": False,
                             "nonRoot": True, "persistentReservation": False, "withHostPassthroughCPU": False},
            "higherWorkloadDensity": {"memoryOvercommitPercentage": 100},
            "infra": {},
            "liveMigrationConfig": live,
            "resourceRequirements": {**({"autoCPULimitNamespaceLabelSelector": auto_cpu_limit}
                                        if auto_cpu_limit else {}), "vmiCPUAllocationRatio": cpu_ratio},
            "uninstallStrategy": "BlockUninstallIfWorkloadsExist",
            "virtualMachineOptions": {"disableFreePageReporting": False, "disableSerialConsoleLog": True},
            "workloadUpdateStrategy": {"batchEvictionInterval": "1m0s", "batchEvictionSize": 10,
                                       "workloadUpdateMethods": ["LiveMigrate"]},
            "workloads": {},
        },
        "status": {
            "conditions": [
                {"lastTransitionTime": stamp(6, "hco-cond"), "message": "Reconcile completed successfully",
                 "observedGeneration": 7, "reason": "ReconcileCompleted", "status": "True", "type": t}
                for t in ("ReconcileComplete", "Available")
            ] + [
                {"lastTransitionTime": stamp(6, "hco-cond"), "message": "Reconcile completed successfully",
                 "observedGeneration": 7, "reason": "ReconcileCompleted", "status": "False", "type": t}
                for t in ("Progressing", "Degraded")
            ] + [{"lastTransitionTime": stamp(6, "hco-cond"), "message": "Reconcile completed successfully",
                  "observedGeneration": 7, "reason": "ReconcileCompleted", "status": "True", "type": "Upgradeable"}],
            "infrastructureHighlyAvailable": True,
            "observedGeneration": 7,
            "systemHealthStatus": "healthy",
            "versions": [{"name": "operator", "version": "4.18.3"}],
        },
    }


def kubevirt_cr(cpu_ratio: int, migrations: dict, network: str | None = None) -> dict:
    mig = dict(migrations)
    if network:
        mig["network"] = network
    return {
        "apiVersion": "kubevirt.io/v1", "kind": "KubeVirt",
        "metadata": meta("KubeVirt", "kubevirt-kubevirt-hyperconverged", "openshift-cnv", age_days=380,
                         labels={"app": "kubevirt-hyperconverged", "app.kubernetes.io/component": "compute",
                                 "app.kubernetes.io/managed-by": "hco-operator",
                                 "app.kubernetes.io/part-of": "hyperconverged-cluster",
                                 "app.kubernetes.io/version": "4.18.3"},
                         owner=owner_ref("hco.kubevirt.io/v1beta1", "HyperConverged", "kubevirt-hyperconverged",
                                         "openshift-cnv"),
                         extra={"finalizers": ["foregroundDeleteKubeVirt"], "generation": 9}),
        "spec": {
            "certificateRotateStrategy": {"selfSigned": {"ca": {"duration": "48h0m0s", "renewBefore": "24h0m0s"},
                                                         "server": {"duration": "24h0m0s",
                                                                    "renewBefore": "12h0m0s"}}},
            "configuration": {
                "architectureConfiguration": {"amd64": {"emulatedMachines": ["q35*", "pc-q35*"],
                                                        "machineType": "pc-q35-rhel9.4.0"},
                                              "defaultArchitecture": "amd64"},
                "developerConfiguration": {"cpuAllocationRatio": cpu_ratio, "diskVerification": {"memoryLimit": "2G"},
                                           "featureGates": ["CPUManager", "Snapshot", "HotplugVolumes",
                                                            "ExpandDisks", "HostDevices", "VMExport",
                                                            "KubevirtSeccompProfile", "VMPersistentState",
                                                            "InstancetypeReferencePolicy", "WithHostModelCPU",
                                                            "HypervStrictCheck"],
                                           "memoryOvercommit": 100},
                "evictionStrategy": "LiveMigrate",
                "migrations": mig,
                "network": {"binding": {"l2bridge": {"domainAttachmentType": "managedTap"}},
                            "defaultNetworkInterface": "masquerade"},
                "obsoleteCPUModels": {"486": True, "Conroe": True, "athlon": True, "core2duo": True,
                                      "coreduo": True, "kvm32": True, "kvm64": True, "n270": True,
                                      "pentium": True, "pentium2": True, "pentium3": True, "pentiumpro": True,
                                      "phenom": True, "qemu32": True, "qemu64": True},
                "smbios": {"family": "Red Hat", "manufacturer": "Red Hat", "product": "OpenShift Virtualization",
                           "version": "4.18.3"},
                "vmStateStorageClass": "",
            },
            "customizeComponents": {},
            "uninstallStrategy": "BlockUninstallIfWorkloadsExist",
            "workloadUpdateStrategy": {"batchEvictionInterval": "1m0s", "batchEvictionSize": 10,
                                       "workloadUpdateMethods": ["LiveMigrate"]},
        },
        "status": {
            "conditions": [{"lastProbeTime": stamp(6, "kv"), "lastTransitionTime": stamp(6, "kv"),
                            "message": "All components are ready.", "reason": "AllComponentsReady",
                            "status": "True", "type": "Available"}],
            "defaultArchitecture": "amd64",
            "observedDeploymentConfig": "{}",
            "observedKubeVirtRegistry": "registry.redhat.io/container-native-virtualization",
            "observedKubeVirtVersion": "v1.4.1-rhel9",
            "operatorVersion": "v1.4.1-rhel9",
            "phase": "Deployed",
            "targetKubeVirtRegistry": "registry.redhat.io/container-native-virtualization",
            "targetKubeVirtVersion": "v1.4.1-rhel9",
        },
    }


@dataclass(frozen=True)
class PolicyRow:
    name: str
    namespace_selector: dict = field(hash=False)
    vmi_selector: dict = field(default_factory=dict, hash=False)
    bandwidth: str = ""
    timeout_per_gib: int | None = None
    auto_converge: bool | None = None
    post_copy: bool | None = None
    description: str = ""


def migration_policy(row: PolicyRow) -> dict:
    # KubeVirt's MigrationPolicy selectors are flat label maps (migrations/v1alpha1
    # `type LabelSelector map[string]string`), not metav1.LabelSelector.
    selectors: dict = {"namespaceSelector": dict(row.namespace_selector)}
    if row.vmi_selector:
        selectors["virtualMachineInstanceSelector"] = dict(row.vmi_selector)
    spec: dict = {}
    if row.auto_converge is not None:
        spec["allowAutoConverge"] = row.auto_converge
    if row.post_copy is not None:
        spec["allowPostCopy"] = row.post_copy
    if row.bandwidth:
        spec["bandwidthPerMigration"] = row.bandwidth
    if row.timeout_per_gib is not None:
        spec["completionTimeoutPerGiB"] = row.timeout_per_gib
    spec["selectors"] = selectors
    return {"apiVersion": "migrations.kubevirt.io/v1alpha1", "kind": "MigrationPolicy",
            "metadata": meta("MigrationPolicy", row.name, age_days=200, extra={"generation": 1},
                             annotations={"description": row.description} if row.description else None),
            "spec": spec}


# ================================================================ network builders


@dataclass(frozen=True)
class NADRow:
    namespace: str
    name: str
    config: str  # the CNI JSON text exactly as stored in spec.config
    description: str = ""
    resource: str = ""  # k8s.v1.cni.cncf.io/resourceName annotation


def cni(name: str, cni_type: str, **fields: object) -> str:
    """Pretty CNI JSON (NADs created from YAML manifests keep their line breaks)."""
    return json.dumps({"cniVersion": "0.3.1", "name": name, "type": cni_type, **fields}, indent=2) + "\n"


def nad(row: NADRow) -> dict:
    annotations = {}
    if row.description:
        annotations["description"] = row.description
    if row.resource:
        annotations["k8s.v1.cni.cncf.io/resourceName"] = row.resource
    return {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
            "metadata": meta("NetworkAttachmentDefinition", row.name, row.namespace, annotations=annotations,
                             age_days=250, extra={"generation": 1}),
            "spec": {"config": row.config}}


def iface(name: str, type_: str, mtu: int | None, *, controller: str = "", ports: tuple[str, ...] = (),
          ipv4: str = "", mac_seed: str = "") -> dict:
    out: dict = {}
    if type_ == "linux-bridge":
        out["bridge"] = {"options": {"group-forward-mask": 0, "mac-ageing-time": 300, "multicast-snooping": True,
                                     "stp": {"enabled": False}},
                         "port": [{"name": p, "stp-hairpin-mode": False, "stp-path-cost": 100,
                                   "stp-priority": 32} for p in ports]}
    if type_ == "ovs-bridge":
        out["bridge"] = {"options": {"mcast-snooping-enable": False, "rstp": False, "stp": {"enabled": False}},
                         "port": [{"name": p} for p in ports]}
    if controller:
        out["controller"] = controller
    out["ipv4"] = ({"address": [{"ip": ipv4, "prefix-length": 24}], "dhcp": False, "enabled": True}
                   if ipv4 else {"enabled": False})
    out["ipv6"] = {"enabled": False}
    if type_ not in ("ovs-bridge",):
        value = _hash("nic", mac_seed or name)
        out["mac-address"] = ":".join(f"{(value >> (8 * i)) & 0xff:02X}" for i in range(6))
    if mtu is not None:
        out["mtu"] = mtu
    out["name"] = name
    out["state"] = "up"
    out["type"] = type_
    return out


def nns(node_row: NodeRow, interfaces: list[dict]) -> dict:
    return {"apiVersion": "nmstate.io/v1beta1", "kind": "NodeNetworkState",
            "metadata": meta("NodeNetworkState", node_row.name, age_days=380,
                             labels={"nmstate.io/node": node_row.name},
                             owner=owner_ref("v1", "Node", node_row.name, controller=False),
                             extra={"generation": 1}),
            "status": {
                "currentState": {
                    "dns-resolver": {"config": {}, "running": {"search": ["lab.example.com"],
                                                               "server": ["192.168.111.1"]}},
                    "interfaces": sorted(interfaces, key=lambda i: (i["name"], i["type"])),
                    "route-rules": {"config": []},
                    "routes": {"config": [], "running": [{"destination": "0.0.0.0/0",
                                                          "next-hop-address": "192.168.111.1",
                                                          "next-hop-interface": "br-ex", "table-id": 254}]},
                },
                "handlerNetworkManagerVersion": "1.46.0-20.el9_4",
                "handlerNmstateVersion": "2.2.36",
                "hostNetworkManagerVersion": "1.46.0-20.el9_4" if node_row.os == "rhcos" else "1.40.16-15.el8_10",
                "lastSuccessfulUpdateTime": stamp(0.0004, "nns", node_row.name),
            }}


def base_interfaces(node_row: NodeRow) -> list[dict]:
    """What every node has: OVN-Kubernetes' br-ex over ens3, loopback, the OVN internals."""
    return [
        iface("br-ex", "ovs-bridge", None, ports=("br-ex", "ens3")),
        iface("br-ex", "ovs-interface", 1500, ipv4=node_row.ip, mac_seed=f"{node_row.name}-ens3"),
        iface("ens3", "ethernet", 1500, controller="br-ex", mac_seed=f"{node_row.name}-ens3"),
        iface("genev_sys_6081", "unknown", 65000, mac_seed=f"{node_row.name}-genev"),
        iface("lo", "loopback", 65536, ipv4="127.0.0.1"),
        iface("ovn-k8s-mp0", "ovs-interface", 1400, mac_seed=f"{node_row.name}-mp0"),
    ]


def cluster_network_config(mtu: int) -> dict:
    return {"apiVersion": "config.openshift.io/v1", "kind": "Network",
            "metadata": meta("Network", "cluster", age_days=400, extra={"generation": 3},
                             annotations={"include.release.openshift.io/ibm-cloud-managed": "true",
                                          "include.release.openshift.io/self-managed-high-availability": "true",
                                          "release.openshift.io/create-only": "true"}),
            "spec": {"clusterNetwork": [{"cidr": "10.128.0.0/14", "hostPrefix": 23}],
                     "externalIP": {"policy": {}}, "networkDiagnostics": {"mode": "", "sourcePlacement": {},
                                                                          "targetPlacement": {}},
                     "networkType": "OVNKubernetes", "serviceNetwork": ["172.30.0.0/16"]},
            "status": {"clusterNetwork": [{"cidr": "10.128.0.0/14", "hostPrefix": 23}],
                       "clusterNetworkMTU": mtu, "networkType": "OVNKubernetes",
                       "serviceNetwork": ["172.30.0.0/16"]}}


# ================================================================ Machine API builders


def machine(row: NodeRow, machine_set: str) -> dict:
    """An IPI bare-metal Machine (Metal3), named as the Node annotation machine.openshift.io/machine says."""
    name = f"ocp-virt-{row.name}"
    labels = {"machine.openshift.io/cluster-api-cluster": "ocp-virt",
              "machine.openshift.io/cluster-api-machine-role": row.role,
              "machine.openshift.io/cluster-api-machine-type": row.role}
    if machine_set:
        labels["machine.openshift.io/cluster-api-machineset"] = machine_set
    owner = owner_ref("machine.openshift.io/v1beta1", "MachineSet", machine_set, "openshift-machine-api") \
        if machine_set else None
    return {
        "apiVersion": "machine.openshift.io/v1beta1", "kind": "Machine",
        "metadata": meta("Machine", name, "openshift-machine-api", labels=labels, age_days=400, owner=owner,
                         annotations={"metal3.io/BareMetalHost": f"openshift-machine-api/{row.name}"},
                         extra={"finalizers": ["machine.machine.openshift.io"], "generation": 1}),
        "spec": {"lifecycleHooks": {}, "metadata": {},
                 "providerID": f"baremetalhost:///openshift-machine-api/{row.name}/{uid('bmh', row.name)}",
                 "providerSpec": {"value": {
                     "apiVersion": "baremetal.cluster.k8s.io/v1alpha1", "kind": "BareMetalMachineProviderSpec",
                     "customDeploy": {"method": "install_coreos"}, "hostSelector": {},
                     "image": {"checksum": "", "url": ""},
                     "userData": {"name": f"{row.role}-user-data-managed"}}}},
        "status": {"addresses": [{"address": row.ip, "type": "InternalIP"}, {"address": row.name, "type": "Hostname"}],
                   "lastUpdated": stamp(3, "machine", row.name),
                   "nodeRef": {"kind": "Node", "name": row.name, "uid": uid("Node", None, row.name)},
                   "phase": "Running"},
    }


def machine_health_check(name: str, selector: dict, max_unhealthy: str = "40%", *,
                         timeout: str = "300s") -> dict:
    spec: dict = {"maxUnhealthy": max_unhealthy, "nodeStartupTimeout": "10m", "selector": selector,
                  "unhealthyConditions": [{"status": "False", "timeout": timeout, "type": "Ready"},
                                          {"status": "Unknown", "timeout": timeout, "type": "Ready"}]}
    return {"apiVersion": "machine.openshift.io/v1beta1", "kind": "MachineHealthCheck",
            "metadata": meta("MachineHealthCheck", name, "openshift-machine-api", age_days=380,
                             extra={"generation": 1}),
            "spec": spec}


def termination_handler_mhc() -> dict:
    """The MHC every installer creates: it remediates spot instances only."""
    obj = machine_health_check("machine-api-termination-handler",
                               {"matchLabels": {"machine.openshift.io/interruptible-instance": ""}}, "100%",
                               timeout="0s")
    obj["spec"]["unhealthyConditions"] = [{"status": "True", "timeout": "0s", "type": "Terminating"}]
    obj["metadata"]["labels"] = {"api": "clusterapi", "k8s-app": "termination-handler"}
    return obj


def trident_backend(namespace: str, name: str, driver: str, svm: str, age_days: float, **limits: str) -> dict:
    """A TridentBackendConfig as `oc get -o yaml` shows it once Trident bound it."""
    backend = f"{name.removeprefix('backend-')}"
    spec: dict = {"credentials": {"name": f"{name}-secret"}, "managementLIF": "10.0.50.10",
                  "storageDriverName": driver, "svm": svm, "version": 1, "backendName": backend}
    if driver.startswith("ontap-nas"):
        spec["nfsMountOptions"] = "nfsvers=4.1"
    spec.update(limits)
    spec["defaults"] = {"snapshotPolicy": "default", "spaceReserve": "none"}
    return {"apiVersion": "trident.netapp.io/v1", "kind": "TridentBackendConfig",
            "metadata": meta("TridentBackendConfig", name, namespace, age_days=age_days,
                             extra={"finalizers": ["trident.netapp.io"], "generation": 1}),
            "spec": spec,
            "status": {"backendInfo": {"backendName": backend, "backendUUID": uid("backend", name)},
                       "deletionPolicy": "delete", "lastOperationStatus": "Success",
                       "message": f"Backend '{backend}' created", "phase": "Bound"}}


def nncp(name: str, selector: dict[str, str], bridge: str, nic: str, mtu: int, age_days: float,
         description: str) -> dict:
    """A NodeNetworkConfigurationPolicy with one Linux bridge on one NIC."""
    return {"apiVersion": "nmstate.io/v1", "kind": "NodeNetworkConfigurationPolicy",
            "metadata": meta("NodeNetworkConfigurationPolicy", name, age_days=age_days,
                             annotations={"description": description}, extra={"generation": 1}),
            "spec": {"desiredState": {"interfaces": [
                {"bridge": {"options": {"stp": {"enabled": False}}, "port": [{"name": nic}]},
                 "description": description, "ipv4": {"enabled": False}, "ipv6": {"enabled": False},
                 "mtu": mtu, "name": bridge, "state": "up", "type": "linux-bridge"}]},
                "nodeSelector": selector}}


# ================================================================ clusters


@dataclass
class Cluster:
    nodes: list[NodeRow]
    namespaces: list[NamespaceRow]
    classes: dict[str, StorageClassRow]
    default_class: str
    vms: list[VMRow]
    nads: list[NADRow]
    node_interfaces: dict[str, list[dict]]  # node -> extra NNS interfaces
    hco_migrations: dict
    cpu_ratio: int
    policies: list[PolicyRow] = field(default_factory=list)
    migration_states: dict[str, MigrationStateRow] = field(default_factory=dict)
    migrations: list[MigrationRow] = field(default_factory=list)
    migration_samples: list[tuple[str, str, str, dict[str, float]]] = field(default_factory=list)
    migration_network: str | None = None
    cluster_mtu: int = 1400
    trident_backends: list[dict] = field(default_factory=list)  # TridentBackendConfig objects
    nncps: list[dict] = field(default_factory=list)  # NodeNetworkConfigurationPolicy objects
    auto_cpu_limit: dict | None = None  # HCO spec.resourceRequirements.autoCPULimitNamespaceLabelSelector
    handler_not_ready: tuple[str, ...] = ()  # workers whose virt-handler pod is not Ready
    machine_sets: dict[str, str] = field(default_factory=dict)  # node -> MachineSet ("" for a master); others: no Machine
    health_checks: list[dict] = field(default_factory=list)  # MachineHealthChecks and NodeHealthChecks


def virt_handler_pod(node_row: NodeRow, ready: bool) -> dict:
    """The virt-handler DaemonSet pod of a worker (openshift-cnv, label kubevirt.io=virt-handler)."""
    name = f"virt-handler-{suffix('virt-handler', node_row.name)}"
    started = stamp(30, "virt-handler-start", node_row.name)
    labels = {"app.kubernetes.io/component": "compute", "app.kubernetes.io/managed-by": "virt-operator",
              "app.kubernetes.io/part-of": "hyperconverged-cluster", "app.kubernetes.io/version": "4.18.3",
              "controller-revision-hash": suffix("virt-handler-rev", length=10), "kubevirt.io": "virt-handler",
              "pod-template-generation": "3", "prometheus.kubevirt.io": "true"}

    def condition(type_: str, status: str) -> dict:
        cond = {"lastProbeTime": None, "lastTransitionTime": started, "status": status, "type": type_}
        if status == "False":
            cond.update(message="containers with unready status: [virt-handler]", reason="ContainersNotReady")
        return cond

    state = {"running": {"startedAt": started}} if ready else \
        {"waiting": {"message": "back-off 5m0s restarting failed container=virt-handler",
                     "reason": "CrashLoopBackOff"}}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": meta("Pod", name, "openshift-cnv", labels=labels, age_days=30,
                             owner=owner_ref("apps/v1", "DaemonSet", "virt-handler", "openshift-cnv")),
            "spec": {"containers": [{"name": "virt-handler", "image": "registry.redhat.io/container-native-"
                                     "virtualization/virt-handler-rhel9@sha256:"
                                     + hashlib.sha256(b"virt-handler").hexdigest(),
                                     "resources": {"requests": {"cpu": "10m", "memory": "357Mi"}}}],
                     "nodeName": node_row.name, "priorityClassName": "kubevirt-cluster-critical",
                     "serviceAccountName": "kubevirt-handler"},
            "status": {"conditions": [condition("Initialized", "True"), condition("Ready", "True" if ready else "False"),
                                      condition("ContainersReady", "True" if ready else "False"),
                                      condition("PodScheduled", "True")],
                       "containerStatuses": [{"name": "virt-handler", "ready": ready,
                                              "restartCount": 0 if ready else 41, "started": ready,
                                              "state": state}],
                       "hostIP": node_row.ip, "phase": "Running", "qosClass": "Burstable",
                       "startTime": started}}


def _list(items: list[dict]) -> dict:
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}


def render_cluster(c: Cluster) -> dict[str, str]:
    """filename -> text of every file of one cluster."""
    by_name = {n.name: n for n in c.nodes}

    pvcs, dvs = [], []
    for row in c.vms:
        for disk in row.disks:
            modes, sc = claim_modes(disk, c.classes, c.default_class)
            name = f"{row.name}-{disk.volume}"
            claim = pvc(row.namespace, name, disk, modes, sc, c.classes[sc].provisioner,
                        from_dv=disk.source != "pvc", age_days=row.age_days)
            if "volume.kubernetes.io/selected-node" in claim["metadata"]["annotations"]:
                claim["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] = row.node
            pvcs.append(claim)
            if disk.source != "pvc":
                dvs.append(data_volume(row, disk, row.age_days))
    classes = list(c.classes.values())
    storage = [storage_class(s) for s in classes] + [storage_profile(s) for s in classes] + \
        sorted(dvs, key=_sort_key) + sorted(pvcs, key=_sort_key)

    network = [cluster_network_config(c.cluster_mtu)]
    network += [nad(n) for n in sorted(c.nads, key=lambda n: (n.namespace, n.name))]
    network += [nns(n, base_interfaces(n) + c.node_interfaces.get(n.name, [])) for n in c.nodes]

    virtualization = [hyperconverged(c.cpu_ratio, c.hco_migrations, c.migration_network, c.auto_cpu_limit),
                      kubevirt_cr(c.cpu_ratio, c.hco_migrations, c.migration_network)]
    virtualization += [migration_policy(p) for p in c.policies]

    vm_rows = sorted(c.vms, key=lambda r: (r.namespace, r.name))
    for row in vm_rows:
        assert row.node in by_name or (row.phase != "Running" and not row.node), row
    files = {
        "namespaces.yaml": _list([namespace(n) for n in c.namespaces]),
        "nodes.yaml": _list([node(n) for n in c.nodes]),
        "virtualization.yaml": _list(virtualization),
        "storage.yaml": _list(storage),
        "network.yaml": _list(network),
        "vms.yaml": _list([vm(r, c) for r in vm_rows]),
        "vmis.yaml": _list([vmi(r, c) for r in vm_rows if r.running]),
        "virt-handler.yaml": _list([virt_handler_pod(n, n.name not in c.handler_not_ready)
                                    for n in c.nodes if n.role == "worker"]),
    }
    if c.migrations:
        files["migrations.yaml"] = _list([vmim(m, c) for m in c.migrations])
    if c.trident_backends:
        files["trident.yaml"] = _list(sorted(c.trident_backends, key=_sort_key))
    if c.nncps:
        files["nmstate-policies.yaml"] = _list(sorted(c.nncps, key=_sort_key))
    if c.machine_sets or c.health_checks:
        files["machines.yaml"] = _list([machine(by_name[n], s) for n, s in c.machine_sets.items()] + c.health_checks)
    text = {name: HEADER + dump_yaml(doc) for name, doc in files.items()}
    text["dirty-rates.prom"] = dirty_rates(c)
    return text


def _sort_key(obj: dict) -> tuple[str, str]:
    return obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def dirty_rates(c: Cluster) -> str:
    """Prometheus text exposition as scraped from virt-handler (KubeVirt >= 1.7 names)."""
    lines = ["# HELP kubevirt_vmi_dirty_rate_bytes_per_second Guest dirty-rate in bytes per second.",
             "# TYPE kubevirt_vmi_dirty_rate_bytes_per_second gauge"]
    for row in sorted(c.vms, key=lambda r: (r.namespace, r.name)):
        if row.dirty_mib is not None:
            lines.append(f'kubevirt_vmi_dirty_rate_bytes_per_second{{name="{row.name}",namespace="{row.namespace}",'
                         f'node="{row.node}"}} {round(row.dirty_mib * MI)}')
    helps = {
        "kubevirt_vmi_migration_data_remaining_bytes": "The remaining guest OS data to be migrated to the new VM.",
        "kubevirt_vmi_migration_dirty_memory_rate_bytes": "The rate of memory being dirty in the Guest OS.",
        "kubevirt_vmi_migration_memory_transfer_rate_bytes": "The rate at which the memory is being transferred.",
    }
    for metric, help_text in helps.items():
        if not c.migration_samples:
            break
        lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} gauge"]
        for ns, name, node_name, values in c.migration_samples:
            lines.append(f'{metric}{{name="{name}",namespace="{ns}",node="{node_name}"}} {round(values[metric])}')
    return "\n".join(lines) + "\n"


HEADER = "# Generated by exporter/scripts/make_demo.py; edit the script, not this file.\n"


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: object) -> bool:  # the loader refuses alias-heavy YAML
        return True


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_representer)


def dump_yaml(doc: object) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120,
                     allow_unicode=True)


# ================================================================ the demo cluster

VIRT_CLASS = "ocs-storagecluster-ceph-rbd-virtualization"
RBD_CLASS = "ocs-storagecluster-ceph-rbd"
LVMS_CLASS = "lvms-vg1"

DEMO_CLASSES = {
    VIRT_CLASS: StorageClassRow(
        VIRT_CLASS, "openshift-storage.rbd.csi.ceph.com", ODF_PROPERTY_SETS,
        parameters={**ODF_RBD_PARAMS, "mapOptions": "krbd:rxbounce", "mounter": "rbd"},
        annotations={"description": "Provides RWO and RWX Block volumes suitable for Virtual Machine disks",
                     "storageclass.kubevirt.io/is-default-virt-class": "true"},
        snapshot_class="ocs-storagecluster-rbdplugin-snapclass"),
    RBD_CLASS: StorageClassRow(
        RBD_CLASS, "openshift-storage.rbd.csi.ceph.com", ODF_PROPERTY_SETS, parameters=dict(ODF_RBD_PARAMS),
        annotations={"description": "Provides RWO Filesystem volumes, and RWO and RWX Block volumes",
                     "storageclass.kubernetes.io/is-default-class": "true"},
        snapshot_class="ocs-storagecluster-rbdplugin-snapclass"),
    LVMS_CLASS: StorageClassRow(
        LVMS_CLASS, "topolvm.io", LVMS_PROPERTY_SETS,
        parameters={"csi.storage.k8s.io/fstype": "xfs", "topolvm.io/device-class": "vg1"},
        annotations={"description": "Provides RWO and RWOP Filesystem & Block volumes"},
        binding="WaitForFirstConsumer", snapshot_class="lvms-vg1", clone_strategy="snapshot"),
}


def _workers(*names_and_ips: tuple[str, str], **kw) -> list[NodeRow]:
    return [NodeRow(n, "worker", ip=ip, **kw) for n, ip in names_and_ips]


HANA_NODE_LABEL = (("sap.example.com/hana-certified", "true"),)
DEMO_NODES = [
    # The control plane runs as vSphere VMs (labelled with their ESXi host by the platform team);
    # DRS moved master-1 next to master-0 during a host maintenance.
    NodeRow("master-0", "master", cpu=16, memory_ki=65_842_228, ip="192.168.111.20", hypervisor_host="esxi-01"),
    NodeRow("master-1", "master", cpu=16, memory_ki=65_842_228, ip="192.168.111.21", hypervisor_host="esxi-01"),
    # mastersSchedulable was switched on for a test and never switched off: VMs may land next to etcd.
    NodeRow("master-2", "master", cpu=16, memory_ki=65_842_228, ip="192.168.111.22", hypervisor_host="esxi-02",
            vm_schedulable=True),
    *_workers(("worker-0", "192.168.111.30"), ("worker-1", "192.168.111.31"), ("worker-2", "192.168.111.32")),
    # The only node certified for SAP HANA (sap-hana-01 selects it with a nodeSelector).
    NodeRow("worker-3", "worker", ip="192.168.111.33", extra_labels=HANA_NODE_LABEL),
    *_workers(("worker-4", "192.168.111.34")),
    # NFD did not label this one (its nfd-worker pod was evicted): threads per core come from the config.
    NodeRow("worker-5", "worker", smt=None, ip="192.168.111.35"),
    # A RHEL 8 compute node left over from before the virtualization roll-out, added outside the
    # Machine API; its kubelet stopped posting status a quarter of an hour before the dump.
    NodeRow("rhel-worker-0", "worker", cpu=48, memory_ki=263_869_288, os="rhel", ip="192.168.111.40",
            cpu_model="Cascadelake-Server", ready=False),
]

PROD = {"env": "production"}
DEMO_NAMESPACES = [
    NamespaceRow("openshift-cnv", {"openshift.io/cluster-monitoring": "true"}, "OpenShift Virtualization"),
    NamespaceRow("openshift-virtualization-os-images", {}, "Golden images"),
    NamespaceRow("prod-web", {**PROD, "app.kubernetes.io/part-of": "storefront"}, "Storefront web tier",
                 "alice@example.com"),
    NamespaceRow("prod-db", {**PROD, "tier": "database"}, "Production databases", "dba-team@example.com"),
    NamespaceRow("prod-cache", {**PROD, "tier": "cache"}, "Production caches", "alice@example.com"),
    NamespaceRow("analytics", {**PROD, "workload-class": "analytics"}, "Analytics (Kafka, Elastic, Spark)",
                 "data-eng@example.com"),
    NamespaceRow("erp", {**PROD, "workload-class": "sap"}, "SAP ERP", "sap-basis@example.com"),
    NamespaceRow("batch-jobs", {"env": "nonprod", "workload-class": "batch"}, "Nightly ETL and reports",
                 "data-eng@example.com"),
    NamespaceRow("dev-sandbox", {"env": "dev"}, "Developer sandbox", "bob@example.com"),
    NamespaceRow("ci-runners", {"env": "dev", "workload-class": "ci"}, "Jenkins agents", "ci-bot@example.com"),
]

# Cluster defaults from HCO (4.18 era): unlimited bandwidth, 150 s/GiB, 2 outbound per node.
DEMO_MIGRATIONS = {"allowAutoConverge": False, "allowPostCopy": False, "completionTimeoutPerGiB": 150,
                   "parallelMigrationsPerCluster": 5, "parallelOutboundMigrationsPerNode": 2,
                   "progressTimeout": 150}

DEMO_POLICIES = [
    PolicyRow("production-throttled", {"env": "production"}, bandwidth="512Mi", timeout_per_gib=300,
              auto_converge=True, post_copy=False,
              description="Keep production migrations below half of the 10G migration link"),
    PolicyRow("analytics-large-memory", {"workload-class": "analytics"}, {"migration-profile": "large-memory"},
              bandwidth="1Gi", auto_converge=True, post_copy=False,
              description="Large-memory analytics VMs may use the whole link"),
    PolicyRow("batch-throttled", {"workload-class": "batch"}, bandwidth="64Mi", timeout_per_gib=20,
              auto_converge=False, post_copy=False,
              description="Batch VMs must not slow other migrations; abort stuck ones early"),
]

# VMI migration states (status.migrationState) and the VMIMs that ran them.
DEMO_MIGRATION_STATES = {
    "web-frontend-03-evacuation": MigrationStateRow("worker-2", "worker-0", 9, 0.6, policy="production-throttled",
                                                    bandwidth="512Mi", timeout_per_gib=300, auto_converge=True),
    "kafka-broker-02-failed": MigrationStateRow("worker-2", "worker-4", 2, 26, failed=True,
                                                policy="production-throttled", bandwidth="512Mi",
                                                timeout_per_gib=300, auto_converge=True),
    "elastic-data-02-running": MigrationStateRow("worker-4", "worker-0", 0.003, None, policy="analytics-large-memory",
                                                 bandwidth="1Gi", auto_converge=True),
    "sap-app-02-done": MigrationStateRow("worker-1", "worker-4", 15, 2.4, policy="production-throttled",
                                         bandwidth="512Mi", timeout_per_gib=300, auto_converge=True),
    # rebalance_watch: web-frontend-06 bounced worker-5 -> worker-3 -> worker-5 inside the 48 h window.
    "web-frontend-06-rebalance-1": MigrationStateRow("worker-5", "worker-3", 1.6, 0.7, policy="production-throttled",
                                                     bandwidth="512Mi", timeout_per_gib=300, auto_converge=True),
    "web-frontend-06-rebalance-2": MigrationStateRow("worker-3", "worker-5", 0.7, 0.6, policy="production-throttled",
                                                     bandwidth="512Mi", timeout_per_gib=300, auto_converge=True),
    # migration_capacity: the rest of the rebalance batch: haproxy-lb-02 running beside elastic-data-02
    # over the pod network (declared a rebalance by annotation), two queued (Pending).
    "mariadb-01-queued": MigrationStateRow("worker-4", "worker-0", 0.002, None),
    "haproxy-lb-02-running": MigrationStateRow("worker-0", "worker-3", 0.002, None),
    "etl-worker-02-queued": MigrationStateRow("worker-2", "worker-3", 0.002, None),
    # Causes that never open the watch: an upgrade's workload update, finished 16 min before the
    # dump (the queue is draining), and the drain of worker-6 (since removed) five days ago.
    "web-frontend-01-workload-update": MigrationStateRow("worker-0", "worker-1", 0.01, 6),
    "postgres-replica-01-drain": MigrationStateRow("worker-6", "worker-2", 5, 3.5),
}
DEMO_MIGRATIONS_OBJECTS = [
    MigrationRow("prod-web", f"kubevirt-evacuation-{suffix('evac', 'web-frontend-03')}", "web-frontend-03",
                 "Succeeded", "web-frontend-03-evacuation", evacuation="worker-2"),
    MigrationRow("analytics", f"kafka-broker-02-migration-{suffix('mig', 'kafka-broker-02')}", "kafka-broker-02",
                 "Failed", "kafka-broker-02-failed"),
    MigrationRow("analytics", "rebalance-elastic-data-02", "elastic-data-02", "Running", "elastic-data-02-running"),
    MigrationRow("erp", f"sap-app-02-migration-{suffix('mig', 'sap-app-02')}", "sap-app-02", "Succeeded",
                 "sap-app-02-done"),
    MigrationRow("prod-web", "rebalance-web-frontend-06", "web-frontend-06", "Succeeded",
                 "web-frontend-06-rebalance-1"),
    MigrationRow("prod-web", "rebalance-web-frontend-06-back", "web-frontend-06", "Succeeded",
                 "web-frontend-06-rebalance-2"),
    MigrationRow("prod-db", "rebalance-mariadb-01", "mariadb-01", "Pending", "mariadb-01-queued"),
    MigrationRow("prod-web", "rebalance-haproxy-lb-02", "haproxy-lb-02", "Running", "haproxy-lb-02-running",
                 declared="2025-01-20 batch"),
    MigrationRow("batch-jobs", "rebalance-etl-worker-02", "etl-worker-02", "Pending", "etl-worker-02-queued"),
    MigrationRow("prod-web", f"kubevirt-workload-update-{suffix('wu', 'web-frontend-01')}", "web-frontend-01",
                 "Succeeded", "web-frontend-01-workload-update", workload_update=True),
    MigrationRow("prod-db", f"kubevirt-evacuation-{suffix('evac', 'postgres-replica-01')}", "postgres-replica-01",
                 "Succeeded", "postgres-replica-01-drain", evacuation="worker-6"),
]
# The running migrations, as virt-handler on the source node reports them (bytes and bytes/s).
DEMO_MIGRATION_SAMPLES = [
    ("analytics", "elastic-data-02", "worker-4", {
        "kubevirt_vmi_migration_data_remaining_bytes": 21.5 * GI,
        "kubevirt_vmi_migration_dirty_memory_rate_bytes": 110 * MI,
        "kubevirt_vmi_migration_memory_transfer_rate_bytes": 180 * MI,
    }),
    ("prod-web", "haproxy-lb-02", "worker-0", {
        "kubevirt_vmi_migration_data_remaining_bytes": 1.2 * GI,
        "kubevirt_vmi_migration_dirty_memory_rate_bytes": 3 * MI,
        "kubevirt_vmi_migration_memory_transfer_rate_bytes": 240 * MI,
    }),
]

def root(size: int = 30, **kw) -> Disk:
    return Disk("rootdisk", size, **kw)


def nets(*pairs: str) -> tuple[NetRef, ...]:
    return tuple(NetRef(f"nic-{i}", name) for i, name in enumerate(pairs, start=1))


FRONTEND = nets("frontend-vlan110")
REPLICATION = nets("db-replication")
STORAGE_NET = nets("storage-net")
JENKINS_IMAGE = "registry.redhat.io/rhel9/rhel-guest-image:9.4"
MEMCACHED_IMAGE = "quay.io/containerdisks/centos-stream:9"
LARGE_MEMORY = (("migration-profile", "large-memory"),)
EXEMPT_ANNOTATION = "ov-exporter.openshift.io/exempt"


def hostname_in(*hosts: str) -> dict:
    """A required node affinity on kubernetes.io/hostname."""
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": list(hosts)}]}]}}}


def spread_from(app: str, topology: str = "kubernetes.io/hostname", weight: int = 100) -> dict:
    """One preferred pod anti-affinity term: keep replicas of `app` apart."""
    return {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": weight, "podAffinityTerm": {"topologyKey": topology, "labelSelector": {
            "matchLabels": {"app.kubernetes.io/name": app}}}}]}}


# The seed's "too many overlapping constraints" example, adapted to the demo's node labels:
# 3 nodeSelector keys, a required and a preferred pod (anti-)affinity term, 2 tolerations = 7.
SPARK_CONSTRAINTS = {
    "nodeSelector": {"node-role.kubernetes.io/worker": "", "kubernetes.io/arch": "amd64",
                     "cpu-model.node.kubevirt.io/Icelake-Server": "true"},
    "affinity": {
        "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchExpressions": [{"key": "app", "operator": "In",
                                                     "values": ["kafka-broker-01", "kafka-broker-02"]}]},
             "topologyKey": "kubernetes.io/hostname"}]},
        "podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": {"topologyKey": "topology.kubernetes.io/zone", "labelSelector": {
                "matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "In", "values": ["spark-worker"]}]}}}]},
    },
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "virtualization", "effect": "NoSchedule"},
                    {"key": "high-performance", "operator": "Exists", "effect": "NoSchedule"}],
}
GPU_PRODUCT = "nvidia.com/gpu.product"
GPU_PENDING = ("0/11 nodes are available: 3 node(s) had untolerated taint {node-role.kubernetes.io/master: }, "
               "8 node(s) didn't match Pod's node affinity/selector. preemption: 0/11 nodes are available: "
               "11 Preemption is not helpful for scheduling.")

# The 44 running VMs, with the node their VMI runs on (plus one stopped VM). Node loads (physical cores = 32 per worker with SMT):
#   worker-0 30 vCPU / 140 GiB    worker-1 64 vCPU (2.00, critical) / 232 GiB
#   worker-2 44 vCPU (1.38, warning) / 156 GiB    worker-3 34 vCPU / 480 GiB (0.95 of 503 GiB, warning)
#   worker-4 36 vCPU / 200 GiB    worker-5 30 vCPU / 92 GiB    rhel-worker-0 4 vCPU / 8 GiB
# Cluster: 242 vCPU on 224 cores (1.08), 1308 GiB on 3334 GiB (0.39): no cluster-wide finding
# (the VM-schedulable master-2 adds its 8 cores and 63 GiB to the cluster totals).
DEMO_VMS = [
    # prod-web: RWX root disks, VLAN 110 bridge with an explicit MTU
    VMRow("prod-web", "web-frontend-01", "worker-1", (1, 4, 1), 8, disks=(root(),), networks=FRONTEND, dirty_mib=18),
    VMRow("prod-web", "web-frontend-02", "worker-2", (1, 4, 1), 8, disks=(root(),), networks=FRONTEND, dirty_mib=22,
          scheduling={"affinity": spread_from("web-frontend")}),
    VMRow("prod-web", "web-frontend-03", "worker-0", (1, 4, 1), 8, disks=(root(),), networks=FRONTEND, dirty_mib=15,
          migration="web-frontend-03-evacuation"),
    VMRow("prod-web", "web-frontend-04", "worker-0", (1, 4, 1), 8, disks=(root(),), networks=FRONTEND, dirty_mib=19),
    VMRow("prod-web", "web-frontend-05", "worker-4", (1, 4, 1), 8, disks=(root(),), networks=FRONTEND, dirty_mib=25),
    VMRow("prod-web", "web-frontend-06", "worker-5", (1, 4, 1), 8, disks=(root(),), networks=FRONTEND, dirty_mib=12),
    VMRow("prod-web", "haproxy-lb-01", "worker-2", (1, 2, 1), 4, disks=(root(20),), networks=FRONTEND, dirty_mib=4,
          size="small", eviction="LiveMigrate"),
    VMRow("prod-web", "haproxy-lb-02", "worker-0", (1, 2, 1), 4, disks=(root(20),), networks=FRONTEND, dirty_mib=3,
          size="small", eviction="LiveMigrate"),
    # prod-db
    VMRow("prod-db", "postgres-primary-01", "worker-1", (2, 8, 1), 64,
          disks=(root(40, access_modes=(RWX,)), Disk("pgdata", 500, source="pvc", access_modes=(RWX,))),
          networks=REPLICATION, dirty_mib=600, size="xlarge"),
    VMRow("prod-db", "postgres-replica-01", "worker-2", (1, 8, 1), 32,
          disks=(root(40), Disk("pgdata", 500, source="pvc", access_modes=(RWX,))), networks=REPLICATION,
          dirty_mib=45, size="large"),
    VMRow("prod-db", "postgres-replica-02", "worker-0", (1, 8, 1), 32,
          disks=(root(40), Disk("pgdata", 500, source="pvc", access_modes=(RWX,))), networks=REPLICATION,
          dirty_mib=41, size="large"),
    VMRow("prod-db", "mariadb-01", "worker-4", (1, 8, 1), 32, disks=(root(40), Disk("data", 200)),
          networks=nets("db-replication", "backup-vlan300"), dirty_mib=30, size="large"),
    # Oracle on local NVMe, cold-migrated in maintenance windows: RWO on purpose, evictionStrategy None.
    VMRow("prod-db", "oracle-db-01", "worker-3", (1, 4, 1), 64,
          disks=(root(60, storage_class=LVMS_CLASS), Disk("oradata", 800, storage_class=LVMS_CLASS)),
          eviction="None", networks=REPLICATION, dirty_mib=70, size="xlarge",
          scheduling={"affinity": hostname_in("worker-3")}),
    # Created before DataVolume spec.storage existed: spec.pvc on the general RBD class.
    VMRow("prod-db", "mssql-01", "worker-1", (1, 8, 1), 32, os="win2k22",
          disks=(root(120, storage_class=RBD_CLASS, source="dvt-pvc", access_modes=(RWX,)),), dirty_mib=55,
          size="large", age_days=600),
    # prod-cache: conflist NAD on br1 (explicit 9000); redis-cache-01 also on the frontend VLAN (explicit 1500)
    VMRow("prod-cache", "redis-cache-01", "worker-1", (1, 4, 1), 16, disks=(root(),),
          networks=nets("cache-sync", "prod-web/frontend-vlan110"), dirty_mib=95),
    VMRow("prod-cache", "redis-cache-02", "worker-3", (1, 2, 1), 32, disks=(root(),), networks=nets("cache-sync"),
          dirty_mib=88, limits=(("cpu", "2"), ("memory", "32Gi"))),
    VMRow("prod-cache", "redis-cache-03", "worker-5", (1, 4, 1), 16, disks=(root(),), networks=nets("cache-sync"),
          dirty_mib=80),
    VMRow("prod-cache", "memcached-01", "worker-0", (1, 2, 1), 16, os="centos9", container_disk=MEMCACHED_IMAGE,
          dirty_mib=60, size="small"),
    VMRow("prod-cache", "memcached-02", "worker-5", (1, 2, 1), 16, os="centos9", container_disk=MEMCACHED_IMAGE,
          dirty_mib=57, size="small"),
    # analytics: storage-net bridge on br1 without an mtu (gets 1500 on a 9000 bridge)
    VMRow("analytics", "kafka-broker-01", "worker-1", (1, 8, 1), 32, disks=(root(), Disk("logs", 1000)),
          networks=STORAGE_NET, dirty_mib=140, size="large"),
    VMRow("analytics", "kafka-broker-02", "worker-2", (1, 8, 1), 32, disks=(root(), Disk("logs", 1000)),
          networks=STORAGE_NET, dirty_mib=380, size="large", migration="kafka-broker-02-failed"),
    VMRow("analytics", "kafka-broker-03", "worker-4", (1, 8, 1), 32, disks=(root(), Disk("logs", 1000)),
          networks=STORAGE_NET, dirty_mib=150, size="large"),
    VMRow("analytics", "elastic-data-01", "worker-3", (1, 8, 1), 64, disks=(root(), Disk("data", 2000)),
          networks=STORAGE_NET, dirty_mib=120, size="xlarge", labels=LARGE_MEMORY),
    # Migrating right now: KubeVirt >= 1.9 skips the steady-state sample while a VM migrates.
    VMRow("analytics", "elastic-data-02", "worker-4", (1, 8, 1), 64, disks=(root(), Disk("data", 2000)),
          networks=STORAGE_NET, dirty_mib=None, size="xlarge", labels=LARGE_MEMORY,
          migration="elastic-data-02-running"),
    VMRow("analytics", "elastic-data-03", "worker-3", (1, 8, 1), 64, disks=(root(), Disk("data", 2000)),
          networks=STORAGE_NET, dirty_mib=105, size="xlarge", labels=LARGE_MEMORY),
    VMRow("analytics", "spark-worker-01", "worker-1", (2, 8, 1), 64, disks=(root(),),
          networks=nets("spark-overlay", "storage-net"), dirty_mib=210, size="xlarge"),
    VMRow("analytics", "spark-worker-02", "worker-2", (2, 8, 1), 64, disks=(root(),),
          networks=nets("spark-overlay", "storage-net"), dirty_mib=190, size="xlarge", scheduling=SPARK_CONSTRAINTS),
    # Waits for a GPU node the cluster does not have: its VMI stays in Scheduling on no node.
    VMRow("analytics", "spark-gpu-01", "", (1, 8, 1), 64, container_disk=JENKINS_IMAGE, size="xlarge",
          scheduling={"nodeSelector": {GPU_PRODUCT: "NVIDIA-A100-SXM4-80GB"},
                      "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]},
          phase="Scheduling", pending_message=GPU_PENDING, age_days=2),
    # erp: HANA and the SAP router on local LVM storage (RWO) although they are meant to live migrate
    VMRow("erp", "sap-hana-01", "worker-3", (2, 6, 1), 256,
          disks=(root(60, storage_class=LVMS_CLASS), Disk("hana-data", 1024, storage_class=LVMS_CLASS)),
          dirty_mib=160, size="xlarge", node_selector=HANA_NODE_LABEL),
    VMRow("erp", "sap-app-01", "worker-0", (1, 8, 1), 64, disks=(root(60),), dirty_mib=48, size="xlarge",
          scheduling={"nodeSelector": {"kubernetes.io/hostname": "worker-0"}}),
    # SAP sizing policy mandates limits: exempted from strict_vm_limits by annotation.
    VMRow("erp", "sap-app-02", "worker-4", (1, 8, 1), 64, disks=(root(60),), dirty_mib=52, size="xlarge",
          migration="sap-app-02-done", limits=(("cpu", "8"), ("memory", "72Gi")),
          annotations=((EXEMPT_ANNOTATION, "strict_vm_limits"),)),
    VMRow("erp", "sap-router-01", "worker-5", (1, 2, 1), 4, disks=(root(20, storage_class=LVMS_CLASS),),
          eviction="LiveMigrate", dirty_mib=2, size="small"),
    # batch-jobs (MigrationPolicy batch-throttled: 64Mi, 20 s/GiB)
    VMRow("batch-jobs", "etl-worker-01", "worker-5", (1, 4, 1), 16, disks=(root(),), dirty_mib=28),
    VMRow("batch-jobs", "etl-worker-02", "worker-2", (1, 2, 1), 8, disks=(root(),), dirty_mib=5,
          scheduling={"nodeSelector": {"node-role.kubernetes.io/worker": ""}}),
    VMRow("batch-jobs", "etl-worker-03", "worker-0", (1, 2, 1), 8, disks=(root(),), dirty_mib=4),
    VMRow("batch-jobs", "report-gen-01", "worker-5", (1, 2, 1), 8, disks=(root(),), dirty_mib=3,
          limits=(("memory", "10Gi"),)),
    VMRow("batch-jobs", "quarter-close-01", "worker-2", (1, 4, 1), 16, disks=(root(),), running=False),
    # dev-sandbox
    VMRow("dev-sandbox", "dev-rhel9-01", "worker-5", (1, 2, 1), 4, disks=(root(storage_class=LVMS_CLASS),),
          eviction="LiveMigrateIfPossible", networks=nets("legacy-net"), dirty_mib=6, size="small"),
    VMRow("dev-sandbox", "dev-rhel8-legacy-01", "rhel-worker-0", (1, 2, 1), 4, os="rhel8", disks=(root(),),
          dirty_mib=3, size="small", age_days=500),
    VMRow("dev-sandbox", "dev-win2022-01", "worker-5", (1, 4, 1), 8, os="win2k22", disks=(root(80),), dirty_mib=14),
    VMRow("dev-sandbox", "dev-fedora-01", "worker-5", (1, 2, 1), 4, os="fedora", disks=(root(),),
          networks=nets("dev-l2-overlay"), dirty_mib=7, size="small", run_strategy="Manual"),
    VMRow("dev-sandbox", "dev-centos-stream9-01", "rhel-worker-0", (1, 2, 1), 4, os="centos9", disks=(root(),),
          dirty_mib=2, size="small"),
    # ci-runners: ephemeral container disks only
    VMRow("ci-runners", "jenkins-agent-01", "worker-1", (1, 4, 1), 8, container_disk=JENKINS_IMAGE, dirty_mib=35),
    VMRow("ci-runners", "jenkins-agent-02", "worker-1", (1, 4, 1), 8, container_disk=JENKINS_IMAGE, dirty_mib=31),
    VMRow("ci-runners", "jenkins-agent-03", "worker-2", (1, 4, 1), 8, container_disk=JENKINS_IMAGE, dirty_mib=29),
    VMRow("ci-runners", "jenkins-agent-04", "worker-5", (1, 4, 1), 8, container_disk=JENKINS_IMAGE, dirty_mib=33),
]

MALFORMED_CONFIG = ('{\n  "cniVersion": "0.3.1",\n  "name": "legacy-net",\n  "type": "cnv-bridge",\n'
                    '  "bridge": "br1",,\n  "vlan": 50\n')  # double comma, no closing brace

DEMO_NADS = [
    NADRow("prod-web", "frontend-vlan110", cni("frontend-vlan110", "bridge", bridge="br-vm", vlan=110, mtu=1500,
                                               macspoofchk=True, ipam={}),
           "Storefront VLAN 110 on br-vm", "bridge.network.kubevirt.io/br-vm"),
    NADRow("prod-db", "db-replication", cni("db-replication", "cnv-bridge", bridge="br1", vlan=120, mtu=9000,
                                            macspoofchk=True),
           "Database replication VLAN 120 on the jumbo-frame bridge", "bridge.network.kubevirt.io/br1"),
    NADRow("prod-db", "backup-vlan300", cni("backup-vlan300", "ovs", bridge="br-ovs-vm", vlan=300),
           "Backup VLAN 300 on the OVS bridge", "ovs-cni.network.kubevirt.io/br-ovs-vm"),
    NADRow("prod-cache", "cache-sync", json.dumps({
        "cniVersion": "0.3.1", "name": "cache-sync",
        "plugins": [{"type": "cnv-bridge", "bridge": "br1", "vlan": 210, "mtu": 9000, "macspoofchk": True},
                    {"type": "cnv-tuning"}]}, indent=2) + "\n",
           "Cache replication VLAN 210 (conflist with tuning)", "bridge.network.kubevirt.io/br1"),
    NADRow("analytics", "storage-net", cni("storage-net", "cnv-bridge", bridge="br1", vlan=130, macspoofchk=True),
           "Storage traffic VLAN 130 on br1", "bridge.network.kubevirt.io/br1"),
    NADRow("analytics", "spark-overlay", cni("spark-overlay", "ovn-k8s-cni-overlay", topology="layer2", mtu=1500,
                                             netAttachDefName="analytics/spark-overlay",
                                             subnets="10.200.0.0/16"),
           "Spark shuffle network (OVN layer2 overlay)"),
    NADRow("dev-sandbox", "dev-l2-overlay", cni("dev-l2-overlay", "ovn-k8s-cni-overlay", topology="layer2",
                                                netAttachDefName="dev-sandbox/dev-l2-overlay",
                                                subnets="10.210.0.0/24")),
    NADRow("dev-sandbox", "legacy-net", MALFORMED_CONFIG, "Hand-edited by a developer"),
]


def worker_interfaces(node_name: str, br1: int = 9000, br_vm: int = 1500) -> list[dict]:
    """Secondary NICs of a VM worker: jumbo br1 on ens4, br-vm on ens5, OVS br-ovs-vm on ens6."""
    def seed(nic: str) -> str:
        return f"{node_name}-{nic}"
    return [
        iface("br1", "linux-bridge", br1, ports=("ens4",), mac_seed=seed("ens4")),
        iface("ens4", "ethernet", br1, controller="br1", mac_seed=seed("ens4")),
        iface("br-vm", "linux-bridge", br_vm, ports=("ens5",), mac_seed=seed("ens5")),
        iface("ens5", "ethernet", br_vm, controller="br-vm", mac_seed=seed("ens5")),
        iface("br-ovs-vm", "ovs-bridge", None, ports=("ens6",)),
        iface("ens6", "ethernet", 1500, controller="br-ovs-vm", mac_seed=seed("ens6")),
    ]


# worker-4: an NNCP change raised br-vm (and its NIC) to 9000 on this node only.
DEMO_INTERFACES = {n.name: worker_interfaces(n.name, br_vm=9000 if n.name == "worker-4" else 1500)
                   for n in DEMO_NODES if n.role == "worker"}


# Machine API: worker-0..4 (MachineSet ocp-virt-worker) are Metal3 Machines; worker-5 was added
# later from a second MachineSet that the workers MHC does not select; the vSphere control-plane
# VMs and rhel-worker-0 have no Machine.
DEMO_MACHINE_SETS = {**{f"worker-{i}": "ocp-virt-worker" for i in range(5)}, "worker-5": "ocp-virt-worker-b"}
DEMO_HEALTH_CHECKS = [
    termination_handler_mhc(),
    machine_health_check("workers", {"matchLabels": {"machine.openshift.io/cluster-api-machineset": "ocp-virt-worker"}}),
]

DEMO = Cluster(
    nodes=DEMO_NODES, namespaces=DEMO_NAMESPACES, classes=DEMO_CLASSES, default_class=VIRT_CLASS,
    vms=DEMO_VMS, nads=DEMO_NADS, node_interfaces=DEMO_INTERFACES, hco_migrations=DEMO_MIGRATIONS,
    cpu_ratio=10, policies=DEMO_POLICIES, migration_states=DEMO_MIGRATION_STATES,
    migrations=DEMO_MIGRATIONS_OBJECTS, migration_samples=DEMO_MIGRATION_SAMPLES,
    auto_cpu_limit={"matchExpressions": [{"key": "workload-class", "operator": "In", "values": ["ci"]}]},
    # The RHEL 8 node's virt-handler crash-loops: its VMs cannot migrate away.
    handler_not_ready=("rhel-worker-0",),
    machine_sets=DEMO_MACHINE_SETS, health_checks=DEMO_HEALTH_CHECKS)

# Trident backends (anti-pattern 2) and nmstate policies (anti-pattern 9): new kinds only,
# so no node load changes.
DEMO.trident_backends = [
    trident_backend("trident", "backend-ontap-nas-vms", "ontap-nas", "svm_ocp_virt", 300),
    trident_backend("trident", "backend-ontap-nas-eco", "ontap-nas-economy", "svm_ocp_virt", 200,
                    limitAggregateUsage="85%", limitVolumeSize="100Gi"),
    trident_backend("trident", "backend-ontap-san-db", "ontap-san", "svm_ocp_db", 300,
                    limitAggregateUsage="80%", limitVolumeSize="2Ti"),
    trident_backend("trident", "backend-ontap-san-eco", "ontap-san-economy", "svm_ocp_db", 120,
                    limitVolumePoolSize="2Ti", limitVolumeSize="500Gi"),
]
DEMO.nncps = [
    nncp("br1-ens4-workers", {"node-role.kubernetes.io/worker": ""}, "br1", "ens4", 9000, 370,
         "Jumbo-frame VM bridge on the secondary NIC ens4"),
    nncp("br-mgmt-worker-2", {"kubernetes.io/hostname": "worker-2"}, "br-mgmt", "ens3", 1500, 2,
         "Management bridge for legacy VMs (attempted on the default NIC)"),
]


# ================================================================ planted cases


@dataclass(frozen=True)
class Case:
    kind: str
    namespace: str
    name: str
    severity: str  # info | warning | critical | none
    why: str


CHECKS_DIR = ROOT / "exporter" / "ov_exporter" / "checks"


def planted_cases() -> dict[str, list[Case]]:
    """check id -> what the demo plants for it, from checks/<id>/demo.yaml, in registry order."""
    cases: dict[str, list[Case]] = {}
    for spec in CHECKS:
        path = CHECKS_DIR / spec.id / "demo.yaml"
        if not path.is_file():
            raise SystemExit(f"{path.relative_to(ROOT)}: missing (every check plants at least one case in the demo)")
        doc = yaml.safe_load(path.read_text()) or {}
        entries = []
        for section, default_severity in (("positives", None), ("negatives", "none")):
            for i, item in enumerate(doc.get(section) or []):
                try:
                    entries.append(Case(item["kind"], item.get("namespace", ""), item["name"],
                                        default_severity or item["severity"], item["why"]))
                except (KeyError, TypeError) as exc:
                    raise SystemExit(f"{path.relative_to(ROOT)}: {section}[{i}]: missing field {exc}") from exc
        cases[spec.id] = entries
    return cases


def expectations_doc() -> dict:
    specs = {s.id: s for s in CHECKS}
    doc: dict = {"cluster": "embedded demo cluster (exporter/ov_exporter/demo)", "checks": {}}
    for check_id, cases in planted_cases().items():
        entry: dict = {"anti_pattern": specs[check_id].anti_pattern, "title": specs[check_id].title,
                       "positives": [], "negatives": []}
        for c in cases:
            item = {"kind": c.kind, "namespace": c.namespace, "name": c.name}
            if c.severity != "none":
                entry["positives"].append({**item, "severity": c.severity, "why": c.why})
            else:
                entry["negatives"].append({**item, "why": c.why})
        doc["checks"][check_id] = entry
    return doc


def readme() -> str:
    specs = {s.id: s for s in CHECKS}
    rows = []
    for check_id, cases in planted_cases().items():
        for c in sorted(cases, key=lambda c: c.severity == "none"):
            obj = f"{c.kind} {c.namespace + '/' if c.namespace else ''}{c.name}"
            rows.append(f"| `{check_id}` | {specs[check_id].anti_pattern} | {obj} | {c.severity} | {c.why} |")
    vms = len(DEMO_VMS)
    workers = [n for n in DEMO_NODES if n.role == "worker"]
    return f"""# Embedded demo cluster

Generated by `exporter/scripts/make_demo.py`; edit the script and run it again
(`python exporter/scripts/make_demo.py`, or `--check` to verify these files are current).
`ov-exporter serve --demo` and `ov-exporter check --demo` read this directory.

A fictional OpenShift 4.18 cluster running OpenShift Virtualization, written the way
`oc get -o yaml` prints it (`kind: List` files):

| file | contents |
|---|---|
| `nodes.yaml` | 3 control-plane nodes (vSphere VMs: `master-0` and `master-1` on ESXi host `esxi-01`, label `ov-exporter.openshift.io/hypervisor-host`) and {len(workers)} VM workers (RHCOS 418.94; `rhel-worker-0` runs RHEL 8.10; `worker-5` lacks the NFD multithreading label) |
| `namespaces.yaml` | the VM namespaces, labelled `env` and `workload-class` for the MigrationPolicy selectors |
| `virtualization.yaml` | HyperConverged `kubevirt-hyperconverged` (v1beta1), its KubeVirt CR, {len(DEMO_POLICIES)} MigrationPolicies |
| `storage.yaml` | StorageClasses `{VIRT_CLASS}` (RWX block, default virt class), `{RBD_CLASS}`, `{LVMS_CLASS}` (RWO), their StorageProfiles, DataVolumes and PVCs |
| `vms.yaml`, `vmis.yaml` | {vms} VirtualMachines in {len({v.namespace for v in DEMO_VMS})} namespaces, {sum(1 for v in DEMO_VMS if v.running)} with a VMI (all running but `analytics/spark-gpu-01`, unschedulable), {sum(1 for v in DEMO_VMS if not v.running)} stopped (runStrategy Halted, no VMI) |
| `virt-handler.yaml` | the virt-handler pod of each worker (`openshift-cnv`, label `kubevirt.io=virt-handler`); the one on `rhel-worker-0` is not Ready |
| `migrations.yaml` | VirtualMachineInstanceMigrations of every cause: manual (Succeeded, Failed, Running, Pending: a rebalance batch), declared (annotation `ov-exporter.openshift.io/rebalance`), descheduler (evacuation from a schedulable node), drain (evacuation from a node since removed), workload update |
| `captured-at` | the capture time (RFC 3339) that time windows are judged at |
| `machines.yaml` | Machines of `worker-0`..`worker-5` (`rhel-worker-0` has none and is NotReady: Ready Unknown), the `workers` MachineHealthCheck (MachineSet `ocp-virt-worker` only) and the default `machine-api-termination-handler` |
| `network.yaml` | Network.config.openshift.io `cluster` (OVNKubernetes, MTU 1400), NetworkAttachmentDefinitions, NodeNetworkStates |
| `trident.yaml` | TridentBackendConfigs (namespace `trident`): ONTAP NAS, NAS economy and SAN backends with and without volume limits |
| `nmstate-policies.yaml` | NodeNetworkConfigurationPolicies: Linux bridges on secondary NICs, and one on worker-2's br-ex NIC |
| `dirty-rates.prom` | `kubevirt_vmi_dirty_rate_bytes_per_second` per VMI, and the migration dirty and transfer rates of the running migration |
| `expectations.yaml` | the planted cases below, machine-readable (`tests/test_demo.py` asserts them) |

Version note: the node images and HCO settings are those of a 4.18 cluster (HCO
`completionTimeoutPerGiB: 150`), while the dirty-rate metrics need KubeVirt 1.6 or later
and the transfer rate uses the KubeVirt 1.7+ name
(`kubevirt_vmi_migration_memory_transfer_rate_bytes`). A real 4.18 cluster publishes
no dirty rate; the demo combines them to exercise every check.

The cluster settings that the checks read: vmiCPUAllocationRatio 10, evictionStrategy
LiveMigrate, no bandwidthPerMigration (unlimited), parallelOutboundMigrationsPerNode 2
(so a migration gets at most 10 Gbit/s / 2 = 596 MiB/s with the default
`migration-link-speed`), completionTimeoutPerGiB 150. The MigrationPolicies override
this per namespace: `production-throttled` (env=production: 512Mi, 300 s/GiB),
`analytics-large-memory` (workload-class=analytics and VMI label
migration-profile=large-memory: 1Gi), `batch-throttled` (workload-class=batch: 64Mi,
20 s/GiB).

## Planted cases

With the default configuration, every check finds exactly the positives below and
nothing else; "none" rows are clean negatives that must stay silent.

| check | anti-pattern | object | expected severity | why |
|---|---|---|---|---|
""" + "\n".join(rows) + "\n"


# ================================================================ the clean cluster


CLEAN_CLASSES = {VIRT_CLASS: DEMO_CLASSES[VIRT_CLASS]}
CLEAN_NODES = [
    NodeRow("master-0", "master", cpu=16, memory_ki=65_842_228, ip="10.0.10.20"),
    NodeRow("master-1", "master", cpu=16, memory_ki=65_842_228, ip="10.0.10.21"),
    NodeRow("master-2", "master", cpu=16, memory_ki=65_842_228, ip="10.0.10.22"),
    NodeRow("worker-0", "worker", ip="10.0.10.30"),
    NodeRow("worker-1", "worker", ip="10.0.10.31"),
    NodeRow("worker-2", "worker", ip="10.0.10.32"),
]
CLEAN_NAMESPACES = [
    NamespaceRow("openshift-cnv", {"openshift.io/cluster-monitoring": "true"}, "OpenShift Virtualization"),
    NamespaceRow("apps", {"env": "production"}, "Applications", "alice@example.com"),
    NamespaceRow("databases", {"env": "production"}, "Databases", "dba-team@example.com"),
]
# vmiCPUAllocationRatio 1: VMs are scheduled against real CPUs, no CPU overcommit by design
# (any ratio above the 1.8 maximum, the default 10 included, is reported as info).
CLEAN_MIGRATIONS = {"allowAutoConverge": False, "allowPostCopy": False, "bandwidthPerMigration": "0Mi",
                    "completionTimeoutPerGiB": 150, "parallelMigrationsPerCluster": 5,
                    "parallelOutboundMigrationsPerNode": 2, "progressTimeout": 150}
CLEAN_VLAN = nets("vlan-200")
CLEAN_VMS = [
    VMRow("apps", "app-server-01", "worker-0", (1, 4, 1), 16, disks=(root(),), networks=CLEAN_VLAN,
          eviction="LiveMigrate", dirty_mib=20),
    VMRow("apps", "app-server-02", "worker-1", (1, 4, 1), 16, disks=(root(),), networks=CLEAN_VLAN,
          eviction="LiveMigrate", dirty_mib=24),
    VMRow("apps", "app-server-03", "worker-2", (1, 4, 1), 16, disks=(root(),), networks=CLEAN_VLAN,
          eviction="LiveMigrate", dirty_mib=17),
    VMRow("apps", "web-01", "worker-0", (1, 2, 1), 8, disks=(root(),), networks=nets("vlan-200", "l2-overlay"),
          eviction="LiveMigrate", dirty_mib=9, size="small"),
    VMRow("apps", "web-02", "worker-1", (1, 2, 1), 8, disks=(root(),), networks=nets("vlan-200", "l2-overlay"),
          eviction="LiveMigrate", dirty_mib=11, size="small"),
    VMRow("databases", "postgres-01", "worker-2", (1, 8, 1), 64,
          disks=(root(40), Disk("pgdata", 300, source="pvc", access_modes=(RWX,))),
          networks=nets("apps/vlan-200"), eviction="LiveMigrate", dirty_mib=60, size="xlarge"),
    VMRow("databases", "postgres-02", "worker-0", (1, 8, 1), 64,
          disks=(root(40), Disk("pgdata", 300, source="pvc", access_modes=(RWX,))),
          networks=nets("apps/vlan-200"), eviction="LiveMigrate", dirty_mib=55, size="xlarge"),
    VMRow("databases", "mssql-01", "worker-1", (1, 4, 1), 32, os="win2k22", disks=(root(120),),
          eviction="LiveMigrate", dirty_mib=40, size="large"),
]
CLEAN_NADS = [
    NADRow("apps", "vlan-200", cni("vlan-200", "cnv-bridge", bridge="br1", vlan=200, mtu=9000, macspoofchk=True),
           "Application VLAN 200 on br1", "bridge.network.kubevirt.io/br1"),
    NADRow("apps", "l2-overlay", cni("l2-overlay", "ovn-k8s-cni-overlay", topology="layer2", mtu=1400,
                                     netAttachDefName="apps/l2-overlay", subnets="10.220.0.0/24")),
    NADRow("openshift-cnv", "migration-net", cni("migration-net", "macvlan", master="ens5", mode="bridge", mtu=9000,
                                                 ipam={"type": "whereabouts", "range": "10.200.5.0/24"}),
           "Dedicated live migration network"),
]
CLEAN_STATES = {"app-server-02-done": MigrationStateRow("worker-2", "worker-1", 5, 0.4, bandwidth="0Mi")}
CLEAN = Cluster(
    nodes=CLEAN_NODES, namespaces=CLEAN_NAMESPACES, classes=CLEAN_CLASSES, default_class=VIRT_CLASS,
    vms=CLEAN_VMS, nads=CLEAN_NADS,
    node_interfaces={n.name: [iface("br1", "linux-bridge", 9000, ports=("ens4",), mac_seed=f"{n.name}-ens4"),
                              iface("ens4", "ethernet", 9000, controller="br1", mac_seed=f"{n.name}-ens4"),
                              iface("ens5", "ethernet", 9000, mac_seed=f"{n.name}-ens5")]
                     for n in CLEAN_NODES if n.role == "worker"},
    hco_migrations=CLEAN_MIGRATIONS, cpu_ratio=1, migration_states=CLEAN_STATES,
    migrations=[MigrationRow("apps", f"kubevirt-workload-update-{suffix('wu', 'app-server-02')}", "app-server-02",
                             "Succeeded", "app-server-02-done")],
    migration_network="migration-net",
    machine_sets={n.name: ("ocp-virt-worker" if n.role == "worker" else "") for n in CLEAN_NODES},
    health_checks=[termination_handler_mhc(),
                   machine_health_check("workers", {"matchLabels": {
                       "machine.openshift.io/cluster-api-machine-role": "worker"}})])
CLEAN.trident_backends = [
    trident_backend("trident", "backend-ontap-nas", "ontap-nas", "svm_apps", 200,
                    limitAggregateUsage="80%", limitVolumeSize="1Ti"),
]
CLEAN.nncps = [
    nncp("br1-ens4-workers", {"node-role.kubernetes.io/worker": ""}, "br1", "ens4", 9000, 300,
         "Jumbo-frame VM bridge on the secondary NIC ens4"),
]


# ================================================================ usage (metrics.k8s.io PodMetrics)
# Usage does not change requests: node CPU/memory loads above stay as they are. Only the
# VMs listed here get a PodMetrics (a metrics-server sample of their virt-launcher pod).
# (namespace, vm) -> (cores used by the compute container, GiB of working set)
DEMO_USAGE: dict[tuple[str, str], tuple[float, float]] = {
    ("prod-db", "postgres-replica-02"): (0.35, 4.5),   # 8 vCPU / 32 GiB: 4 % and 14 %: over-provisioned
    ("prod-cache", "redis-cache-02"): (0.9, 6.0),      # 2 vCPU / 32 GiB: memory 19 %: over-provisioned
    ("prod-cache", "memcached-01"): (0.6, 15.2),       # 2 vCPU / 16 GiB: memory 95 %: under-provisioned
    ("prod-web", "web-frontend-02"): (3.8, 5.0),       # 4 vCPU / 8 GiB: CPU 95 %: under-provisioned
    ("prod-web", "web-frontend-01"): (1.6, 5.5),       # 4 vCPU / 8 GiB: 40 % and 69 %: right-sized
    ("prod-web", "haproxy-lb-01"): (0.7, 2.5),         # 2 vCPU / 4 GiB: 35 % and 63 %: right-sized
}
CLEAN_USAGE: dict[tuple[str, str], tuple[float, float]] = {
    ("apps", "app-server-01"): (1.5, 8.0),
    ("apps", "web-01"): (0.8, 4.0),
}


def pod_metrics(c: Cluster, usage: dict[tuple[str, str], tuple[float, float]]) -> list[dict]:
    """PodMetrics as `oc get podmetrics -o yaml` shows them: labels of the virt-launcher pod."""
    rows = {(r.namespace, r.name): r for r in c.vms}
    out = []
    for (ns, name), (cores, gib) in sorted(usage.items()):
        row = rows[(ns, name)]
        labels = {"kubevirt.io": "virt-launcher", "kubevirt.io/created-by": uid("VirtualMachineInstance", ns, name),
                  **_template_labels(row), "vm.kubevirt.io/name": name}
        pod = f"virt-launcher-{name}-{suffix('pod', ns, name)}"
        out.append({"apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetrics",
                    "metadata": {"creationTimestamp": stamp(0, "pm", ns, name), "labels": labels,
                                 "name": pod, "namespace": ns},
                    "timestamp": stamp(0.0003, "pm-ts", ns, name), "window": "30s",
                    "containers": [{"name": "compute", "usage": {"cpu": f"{round(cores * 1e9)}n",
                                                                 "memory": f"{round(gib * 2**20)}Ki"}},
                                   {"name": "guest-console-log", "usage": {"cpu": "310042n", "memory": "2148Ki"}}]})
    return out


# ================================================================ main


def generated() -> dict[Path, str]:
    files: dict[Path, str] = {}
    for name, text in render_cluster(DEMO).items():
        files[DEMO_DIR / name] = text
    files[DEMO_DIR / "podmetrics.yaml"] = HEADER + dump_yaml(_list(pod_metrics(DEMO, DEMO_USAGE)))
    files[DEMO_DIR / "expectations.yaml"] = HEADER + dump_yaml(expectations_doc())
    files[DEMO_DIR / "README.md"] = readme()
    for name, text in render_cluster(CLEAN).items():
        files[CLEAN_DIR / name] = text
    for directory in (DEMO_DIR, CLEAN_DIR):  # the capture time `--snapshot` judges time windows at
        files[directory / "captured-at"] = NOW.strftime("%Y-%m-%dT%H:%M:%SZ") + "\n"
    files[CLEAN_DIR / "podmetrics.yaml"] = HEADER + dump_yaml(_list(pod_metrics(CLEAN, CLEAN_USAGE)))
    return files


def _stale(files: dict[Path, str]) -> list[Path]:
    """Files in the generated directories that the script no longer writes."""
    out = []
    for directory in (DEMO_DIR, CLEAN_DIR):
        if directory.is_dir():
            out += [p for p in sorted(directory.iterdir()) if p.is_file() and p not in files]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a committed file differs")
    args = parser.parse_args(argv)
    files = generated()
    if args.check:
        bad = [p for p, text in files.items() if not p.is_file() or p.read_text() != text] + _stale(files)
        for p in bad:
            print(f"out of date: {p.relative_to(ROOT)}", file=sys.stderr)
        if bad:
            print("run: python exporter/scripts/make_demo.py", file=sys.stderr)
        return 1 if bad else 0
    for p in _stale(files):
        p.unlink()
    for p, text in files.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        if not p.is_file() or p.read_text() != text:
            p.write_text(text)
    print(f"wrote {len(files)} files under {DEMO_DIR.relative_to(ROOT)} and {CLEAN_DIR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
