"""Builders for the generated demo and clean clusters: deterministic values (UIDs,
resource versions, timestamps derived from names), then one function per kind that
turns a few parameters into a full object in `oc get -o yaml` style, and the Cluster
that renders them to files. exporter/scripts/make_demo.py is the entry point."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import yaml

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


def meta(
    kind: str,
    name: str,
    namespace: str | None = None,
    *,
    labels: dict | None = None,
    annotations: dict | None = None,
    age_days: float = 90,
    owner: dict | None = None,
    extra: dict | None = None,
) -> dict:
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


def owner_ref(api_version: str, kind: str, name: str, namespace: str | None = None, *, controller: bool = True) -> dict:
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
            {"openshift-storage.rbd.csi.ceph.com": row.name, "topolvm.io": row.name}, separators=(",", ":")
        ),
        "k8s.ovn.org/node-primary-ifaddr": json.dumps({"ipv4": f"{row.ip}/24"}, separators=(",", ":")),
        **(
            {}
            if rhel or row.hypervisor_host
            else {"machine.openshift.io/machine": f"openshift-machine-api/ocp-virt-{row.name}"}
        ),
        "machineconfiguration.openshift.io/controlPlaneTopology": "HighlyAvailable",
        "machineconfiguration.openshift.io/currentConfig": f"rendered-{row.role}-{suffix(row.role, length=32)[:32]}",
        "machineconfiguration.openshift.io/state": "Done",
        "volumes.kubernetes.io/controller-managed-attach-detach": "true",
    }
    if row.role == "worker":
        annotations["kubevirt.io/heartbeat"] = stamp(0.0005, "heartbeat", row.name)
    spec: dict = {
        "providerID": f"vsphere://{uid('vsphere', row.name)}"
        if row.hypervisor_host
        else f"baremetalhost:///openshift-machine-api/{row.name}/{uid('bmh', row.name)}"
    }
    if row.role == "master" and not row.vm_schedulable:
        spec["taints"] = [{"effect": "NoSchedule", "key": "node-role.kubernetes.io/master"}]
    if not row.ready:
        spec["taints"] = [
            {
                "effect": "NoSchedule",
                "key": "node.kubernetes.io/unreachable",
                "timeAdded": stamp(0.01, "unreachable", row.name),
            },
            {
                "effect": "NoExecute",
                "key": "node.kubernetes.io/unreachable",
                "timeAdded": stamp(0.01, "unreachable", row.name),
            },
        ]
    memory = f"{row.memory_ki}Ki"
    reserved_ki = 1_048_576 + row.memory_ki // 100
    capacity = {"cpu": str(row.cpu)}
    if row.role == "worker":
        capacity["devices.kubevirt.io/kvm"] = "1k"
        capacity["devices.kubevirt.io/tun"] = "1k"
        capacity["devices.kubevirt.io/vhost-net"] = "1k"
    capacity.update(
        {
            "ephemeral-storage": "936760300Ki",
            "hugepages-1Gi": "0",
            "hugepages-2Mi": "0",
            "memory": memory,
            "pods": "250",
        }
    )
    allocatable = dict(
        capacity,
        cpu=f"{row.cpu * 1000 - 500}m",
        memory=f"{row.memory_ki - reserved_ki}Ki",
        **{"ephemeral-storage": "862240169159"},
    )
    heartbeat = stamp(0.002, "node-hb", row.name)
    since = stamp(40, "node-ready", row.name)

    def condition(type_: str, status: str, reason: str, message: str) -> dict:
        if not row.ready:
            return {
                "lastHeartbeatTime": stamp(0.02, "node-hb", row.name),
                "lastTransitionTime": stamp(0.01, "node-nr", row.name),
                "message": "Kubelet stopped posting node status.",
                "reason": "NodeStatusUnknown",
                "status": "Unknown",
                "type": type_,
            }
        return {
            "lastHeartbeatTime": heartbeat,
            "lastTransitionTime": since,
            "message": message,
            "reason": reason,
            "status": status,
            "type": type_,
        }

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
                condition(
                    "MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"
                ),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": uid("boot", row.name),
                "containerRuntimeVersion": "cri-o://1.31.1-4.rhaos4.18.gitb5e16a5.el9"
                if not rhel
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
    labels = {
        "kubernetes.io/metadata.name": row.name,
        **row.labels,
        "pod-security.kubernetes.io/audit": "privileged",
        "pod-security.kubernetes.io/audit-version": "v1.24",
        "pod-security.kubernetes.io/warn": "privileged",
        "pod-security.kubernetes.io/warn-version": "v1.24",
    }
    n = _hash("ns", row.name) % 50 + 26
    annotations = {
        "openshift.io/description": "",
        "openshift.io/display-name": row.display,
        "openshift.io/requester": row.requester,
        "openshift.io/sa.scc.mcs": f"s0:c{n},c{n - 10}",
        "openshift.io/sa.scc.supplemental-groups": f"10006{n}0000/10000",
        "openshift.io/sa.scc.uid-range": f"10006{n}0000/10000",
    }
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": meta("Namespace", row.name, labels=labels, annotations=annotations, age_days=300),
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


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
    return {
        "allowVolumeExpansion": True,
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": meta("StorageClass", row.name, annotations=row.annotations, age_days=380),
        "parameters": dict(row.parameters),
        "provisioner": row.provisioner,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": row.binding,
    }


def storage_profile(row: StorageClassRow) -> dict:
    status = {
        "claimPropertySets": [
            {"accessModes": list(modes), "volumeMode": mode} for modes, mode in row.claim_property_sets
        ],
        "cloneStrategy": row.clone_strategy,
        "dataImportCronSourceFormat": "snapshot" if row.snapshot_class else "pvc",
        "provisioner": row.provisioner,
    }
    if row.snapshot_class:
        status["snapshotClass"] = row.snapshot_class
    status["storageClass"] = row.name
    return {
        "apiVersion": "cdi.kubevirt.io/v1beta1",
        "kind": "StorageProfile",
        "metadata": meta(
            "StorageProfile",
            row.name,
            age_days=380,
            extra={"generation": 1},
            labels={
                "app": "containerized-data-importer",
                "app.kubernetes.io/component": "storage",
                "app.kubernetes.io/managed-by": "cdi-controller",
                "app.kubernetes.io/part-of": "hyperconverged-cluster",
                "app.kubernetes.io/version": "4.18.3",
                "cdi.kubevirt.io": "",
            },
            owner=owner_ref("cdi.kubevirt.io/v1beta1", "CDI", "cdi-kubevirt-hyperconverged"),
        ),
        "spec": {},
        "status": status,
    }


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


def pvc(
    namespace: str,
    name: str,
    disk: Disk,
    modes: list[str],
    sc: str,
    provisioner: str,
    *,
    from_dv: bool,
    age_days: float,
) -> dict:
    annotations = {}
    if from_dv:
        annotations.update(
            {
                "cdi.kubevirt.io/createdForDataVolume": uid("DataVolume", namespace, name),
                "cdi.kubevirt.io/storage.condition.running": "false",
                "cdi.kubevirt.io/storage.condition.running.message": "Import Complete",
                "cdi.kubevirt.io/storage.condition.running.reason": "Completed",
                "cdi.kubevirt.io/storage.contentType": "kubevirt",
                "cdi.kubevirt.io/storage.pod.phase": "Succeeded",
                "cdi.kubevirt.io/storage.populator.progress": "100.0%",
                "cdi.kubevirt.io/storage.usePopulator": "true",
            }
        )
    annotations.update(
        {
            "pv.kubernetes.io/bind-completed": "yes",
            "pv.kubernetes.io/bound-by-controller": "yes",
            "volume.beta.kubernetes.io/storage-provisioner": provisioner,
            "volume.kubernetes.io/storage-provisioner": provisioner,
        }
    )
    if sc.startswith("lvms"):
        annotations["volume.kubernetes.io/selected-node"] = ""  # filled by the caller
    labels = (
        {
            "app": "containerized-data-importer",
            "app.kubernetes.io/component": "storage",
            "app.kubernetes.io/managed-by": "cdi-controller",
            "app.kubernetes.io/part-of": "hyperconverged-cluster",
            "app.kubernetes.io/version": "4.18.3",
        }
        if from_dv
        else {"app": name.rsplit("-", 1)[0]}
    )
    owner = owner_ref("cdi.kubevirt.io/v1beta1", "DataVolume", name, namespace) if from_dv else None
    size = quantity_gi(disk.size_gi)
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": meta(
            "PersistentVolumeClaim",
            name,
            namespace,
            labels=labels,
            annotations=annotations,
            age_days=age_days,
            owner=owner,
            extra={"finalizers": ["kubernetes.io/pvc-protection"]},
        ),
        "spec": {
            "accessModes": modes,
            "resources": {"requests": {"storage": size}},
            "storageClassName": sc,
            "volumeMode": disk.volume_mode,
            "volumeName": f"pvc-{uid('pv', namespace, name)}",
        },
        "status": {"accessModes": modes, "capacity": {"storage": size}, "phase": "Bound"},
    }


def dv_spec(disk: Disk, os_key: str) -> dict:
    """spec of a DataVolume (template): clone the golden image of the OS."""
    spec: dict = (
        {
            "sourceRef": {
                "kind": "DataSource",
                "name": OS[os_key].data_source,
                "namespace": "openshift-virtualization-os-images",
            }
        }
        if disk.volume == "rootdisk"
        else {"source": {"blank": {}}}
    )
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
        "apiVersion": "cdi.kubevirt.io/v1beta1",
        "kind": "DataVolume",
        "metadata": meta(
            "DataVolume",
            name,
            ns,
            age_days=age_days,
            annotations={"cdi.kubevirt.io/storage.usePopulator": "true"},
            labels={"kubevirt.io/created-by": uid("VirtualMachine", ns, vm_row.name)},
            owner=owner_ref("kubevirt.io/v1", "VirtualMachine", vm_row.name, ns),
            extra={"generation": 1},
        ),
        "spec": dv_spec(disk, vm_row.os),
        "status": {
            "claimName": name,
            "conditions": [
                {
                    "lastHeartbeatTime": stamp(age_days - 0.01, "dv", ns, name),
                    "lastTransitionTime": stamp(age_days - 0.01, "dv", ns, name),
                    "message": "PVC " + name + " Bound",
                    "reason": "Bound",
                    "status": "True",
                    "type": "Bound",
                },
                {
                    "lastHeartbeatTime": stamp(age_days - 0.01, "dv", ns, name),
                    "lastTransitionTime": stamp(age_days - 0.01, "dv", ns, name),
                    "status": "True",
                    "type": "Ready",
                },
            ],
            "phase": "Succeeded",
            "progress": "100.0%",
        },
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
    "rhel9": OSRow(
        "rhel9",
        "rhel9-server-medium",
        "rhel9",
        {
            "id": "rhel",
            "kernelRelease": "5.14.0-427.37.1.el9_4.x86_64",
            "name": "Red Hat Enterprise Linux",
            "prettyName": "Red Hat Enterprise Linux 9.4 (Plow)",
            "version": "9.4",
            "versionId": "9.4",
        },
    ),
    "rhel8": OSRow(
        "rhel8",
        "rhel8-server-medium",
        "rhel8",
        {
            "id": "rhel",
            "kernelRelease": "4.18.0-553.16.1.el8_10.x86_64",
            "name": "Red Hat Enterprise Linux",
            "prettyName": "Red Hat Enterprise Linux 8.10 (Ootpa)",
            "version": "8.10",
            "versionId": "8.10",
        },
    ),
    "centos9": OSRow(
        "centos-stream9",
        "centos-stream9-server-small",
        "centos.stream9",
        {
            "id": "centos",
            "kernelRelease": "5.14.0-522.el9.x86_64",
            "name": "CentOS Stream",
            "prettyName": "CentOS Stream 9",
            "version": "9",
            "versionId": "9",
        },
    ),
    "fedora": OSRow(
        "fedora",
        "fedora-server-small",
        "fedora",
        {
            "id": "fedora",
            "kernelRelease": "6.11.4-301.fc41.x86_64",
            "name": "Fedora Linux",
            "prettyName": "Fedora Linux 41 (Cloud Edition)",
            "version": "41 (Cloud Edition)",
            "versionId": "41",
        },
    ),
    "win2k22": OSRow(
        "win2k22",
        "windows2k22-server-large",
        "windows2k22",
        {
            "id": "mswindows",
            "kernelRelease": "20348",
            "name": "Microsoft Windows",
            "prettyName": "Windows Server 2022 Standard",
            "version": "2022",
            "versionId": "10.0.20348",
        },
        windows=True,
    ),
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
    user_data = (
        "#cloud-config\n"
        "user: cloud-user\n"
        "chpasswd:\n"
        "  expire: false\n"
        "ssh_authorized_keys:\n"
        "  - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO3DemoKeyForTheOvExporterDemoCluster00 ops@example.com\n"
        f"hostname: {vm_row.name}\n"
    )
    return {"cloudInitNoCloud": {"userData": user_data}, "name": "cloudinitdisk"}


def _vmi_spec(vm_row: VMRow, *, for_vmi: bool) -> dict:
    """The VMI spec: the VM's spec.template.spec, or the VMI's own spec (with defaults filled)."""
    os_row = OS[vm_row.os]
    sockets, cores, threads = vm_row.cpu
    disks, volumes = [], []
    if vm_row.container_disk:
        disks.append({"disk": {"bus": "virtio"}, "name": "containerdisk"})
        volumes.append(
            {
                "containerDisk": {
                    "image": vm_row.container_disk,
                    **({"imagePullPolicy": "IfNotPresent"} if for_vmi else {}),
                },
                "name": "containerdisk",
            }
        )
    for disk in vm_row.disks:
        claim = f"{vm_row.name}-{disk.volume}"
        disks.append(
            {"disk": {"bus": "sata" if os_row.windows and disk.volume == "rootdisk" else "virtio"}, "name": disk.volume}
        )
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
        interfaces.append({"bridge": {}, "macAddress": _mac(vm_row, net.iface), "model": "virtio", "name": net.iface})
        networks.append({"multus": {"networkName": net.network_name}, "name": net.iface})
    cpu: dict = {"cores": cores, "sockets": sockets, "threads": threads}
    if for_vmi:
        cpu = {**cpu, "maxSockets": sockets * 4, "model": "host-model"}
    domain: dict = {"cpu": cpu, "devices": {"disks": disks, "interfaces": interfaces, "rng": {}}}
    if for_vmi:
        domain["devices"]["networkInterfaceMultiqueue"] = True
    if os_row.windows:
        domain["clock"] = {
            "timer": {
                "hpet": {"present": False},
                "hyperv": {},
                "pit": {"tickPolicy": "delay"},
                "rtc": {"tickPolicy": "catchup"},
            },
            "utc": {},
        }
        domain["features"] = {
            "acpi": {},
            "apic": {},
            "hyperv": {"relaxed": {}, "spinlocks": {"spinlocks": 8191}, "vapic": {}},
            "smm": {"enabled": True},
        }
        domain["firmware"] = {"bootloader": {"efi": {"secureBoot": True}}}
    else:
        domain["features"] = (
            {"acpi": {"enabled": True}, "smm": {"enabled": True}} if for_vmi else {"smm": {"enabled": True}}
        )
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
    return "02:" + ":".join(f"{(value >> (8 * i)) & 0xFF:02x}" for i in range(5))


def _template_labels(vm_row: VMRow) -> dict:
    return {"kubevirt.io/domain": vm_row.name, "kubevirt.io/size": vm_row.size, **dict(vm_row.labels)}


def vm(vm_row: VMRow, cluster: Cluster) -> dict:
    os_row = OS[vm_row.os]
    ns, name = vm_row.namespace, vm_row.name
    labels = {
        "app": name,
        "app.kubernetes.io/name": name.rsplit("-", 1)[0],
        "vm.kubevirt.io/template": os_row.template,
        "vm.kubevirt.io/template.namespace": "openshift",
        "vm.kubevirt.io/template.revision": "1",
        "vm.kubevirt.io/template.version": "v0.31.1",
    }
    annotations = {
        "kubemacpool.io/transaction-timestamp": stamp(vm_row.age_days - 0.5, "kmp", ns, name),
        "kubevirt.io/latest-observed-api-version": "v1",
        "kubevirt.io/storage-observed-api-version": "v1",
        "vm.kubevirt.io/validations": '[\n  {\n    "name": "minimal-required-memory",\n'
        '    "path": "jsonpath::.spec.domain.memory.guest",\n'
        '    "rule": "integer",\n    "message": "This VM requires more memory.",\n'
        f'    "min": {2 * GI if os_row.windows else 1610612736}\n  }}\n]\n',
    }
    annotations.update(dict(vm_row.annotations))
    spec: dict = {}
    templates = [d for d in vm_row.disks if d.source != "pvc"]
    if templates:
        spec["dataVolumeTemplates"] = [
            {
                "apiVersion": "cdi.kubevirt.io/v1beta1",
                "kind": "DataVolume",
                "metadata": {"creationTimestamp": None, "name": f"{name}-{d.volume}"},
                "spec": dv_spec(d, vm_row.os),
            }
            for d in templates
        ]
    spec["runStrategy"] = vm_row.run_strategy or ("Always" if not vm_row.container_disk else "RerunOnFailure")
    if not vm_row.running:
        spec["runStrategy"] = "Halted"
    spec["template"] = {
        "metadata": {
            "annotations": {
                "vm.kubevirt.io/flavor": vm_row.size,
                "vm.kubevirt.io/os": os_row.os_label,
                "vm.kubevirt.io/workload": "server",
            },
            "creationTimestamp": None,
            "labels": _template_labels(vm_row),
        },
        "spec": _vmi_spec(vm_row, for_vmi=False),
    }
    started = stamp(_started_days(vm_row), "vmi-start", ns, name)
    status = {
        "conditions": [
            {"lastProbeTime": None, "lastTransitionTime": started, "status": "True", "type": "Ready"},
            {"lastProbeTime": None, "lastTransitionTime": None, "status": "True", "type": "Initialized"},
            {
                "lastProbeTime": None,
                "lastTransitionTime": started,
                "status": _migratable(vm_row, cluster)[0],
                "type": "LiveMigratable",
                **_migratable_reason(vm_row, cluster),
            },
            {"lastProbeTime": None, "lastTransitionTime": started, "status": "True", "type": "StorageLiveMigratable"},
        ],
        "created": True,
        "desiredGeneration": 2,
        "observedGeneration": 2,
        "printableStatus": "Running",
        "ready": True,
        "runStrategy": spec["runStrategy"],
        "volumeSnapshotStatuses": [
            {"enabled": d.storage_class is None or "ceph" in (d.storage_class or ""), "name": d.volume}
            for d in vm_row.disks
        ],
    }
    if vm_row.phase != "Running":  # the VMI exists but the scheduler cannot place its pod
        status["conditions"] = [
            {
                "lastProbeTime": None,
                "lastTransitionTime": started,
                "message": vm_row.pending_message,
                "reason": "Unschedulable",
                "status": "False",
                "type": "Ready",
            },
            {
                "lastProbeTime": None,
                "lastTransitionTime": started,
                "message": vm_row.pending_message,
                "reason": "Unschedulable",
                "status": "False",
                "type": "PodScheduled",
            },
        ]
        status["printableStatus"] = "ErrorUnschedulable"
        status["ready"] = False
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": meta(
            "VirtualMachine",
            name,
            ns,
            labels=labels,
            annotations=annotations,
            age_days=vm_row.age_days,
            extra={"finalizers": ["kubevirt.io/virtualMachineControllerFinalize"], "generation": 2},
        ),
        "spec": spec,
        "status": status if vm_row.running else _stopped_status(vm_row, spec),
    }


def _stopped_status(vm_row: VMRow, spec: dict) -> dict:
    """status of a VM with runStrategy Halted: no VMI."""
    since = stamp(_started_days(vm_row), "vm-stop", vm_row.namespace, vm_row.name)
    return {
        "conditions": [
            {
                "lastProbeTime": None,
                "lastTransitionTime": since,
                "message": "VMI does not exist",
                "reason": "VMINotExists",
                "status": "False",
                "type": "Ready",
            }
        ],
        "desiredGeneration": 2,
        "observedGeneration": 2,
        "printableStatus": "Stopped",
        "runStrategy": spec["runStrategy"],
        "volumeSnapshotStatuses": [
            {"enabled": d.storage_class is None or "ceph" in (d.storage_class or ""), "name": d.volume}
            for d in vm_row.disks
        ],
    }


def _started_days(vm_row: VMRow) -> float:
    return 3 + _hash("started", vm_row.namespace, vm_row.name) % 30


def _migratable(vm_row: VMRow, cluster: Cluster) -> tuple[str, list[str]]:
    """("True"|"False", the non-shared claims) as KubeVirt judges LiveMigratable."""
    rwo = [
        f"{vm_row.name}-{d.volume}"
        for d in vm_row.disks
        if RWX not in claim_modes(d, cluster.classes, cluster.default_class)[0]
    ]
    return ("False" if rwo else "True"), rwo


def _migratable_reason(vm_row: VMRow, cluster: Cluster) -> dict:
    status, rwo = _migratable(vm_row, cluster)
    if status == "True":
        return {}
    return {
        "message": f"cannot migrate VMI: PVC {rwo[0]} is not shared, live migration requires that all PVCs "
        "must be shared (using ReadWriteMany access mode)",
        "reason": "DisksNotLiveMigratable",
    }


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
    cfg.update(
        {
            "completionTimeoutPerGiB": state.timeout_per_gib,
            "nodeDrainTaintKey": "kubevirt.io/drain",
            "parallelMigrationsPerCluster": hco_cfg["parallelMigrationsPerCluster"],
            "parallelOutboundMigrationsPerNode": hco_cfg["parallelOutboundMigrationsPerNode"],
            "progressTimeout": hco_cfg["progressTimeout"],
            "unsafeMigrationOverride": False,
        }
    )
    return cfg


def pending_vmi(vm_row: VMRow) -> dict:
    """A VMI whose virt-launcher pod the scheduler cannot place: no node, no guest status."""
    ns, name = vm_row.namespace, vm_row.name
    os_row = OS[vm_row.os]
    started_days = _started_days(vm_row)
    created = stamp(started_days, "vmi-start", ns, name)
    status = {
        "activePods": {uid("virt-launcher", ns, name): ""},
        "conditions": [
            {
                "lastProbeTime": None,
                "lastTransitionTime": created,
                "message": vm_row.pending_message,
                "reason": "Unschedulable",
                "status": "False",
                "type": "PodScheduled",
            }
        ],
        "guestOSInfo": {},
        "phase": vm_row.phase,
        "phaseTransitionTimestamps": [
            {"phase": "Pending", "phaseTransitionTimestamp": created},
            {"phase": "Scheduling", "phaseTransitionTimestamp": stamp(started_days - 0.0001, "s", ns, name)},
        ],
        "qosClass": "Burstable",
        "virtualMachineRevisionName": f"revision-start-vm-{uid('VirtualMachine', ns, name)}-2",
    }
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstance",
        "metadata": meta(
            "VirtualMachineInstance",
            name,
            ns,
            labels=_template_labels(vm_row),
            annotations={
                "kubevirt.io/latest-observed-api-version": "v1",
                "kubevirt.io/storage-observed-api-version": "v1",
                "kubevirt.io/vm-generation": "2",
                "vm.kubevirt.io/flavor": vm_row.size,
                "vm.kubevirt.io/os": os_row.os_label,
                "vm.kubevirt.io/workload": "server",
            },
            age_days=started_days,
            owner=owner_ref("kubevirt.io/v1", "VirtualMachine", name, ns),
            extra={
                "finalizers": ["kubevirt.io/virtualMachineControllerFinalize", "foregroundDeleteVirtualMachine"],
                "generation": 3,
            },
        ),
        "spec": _vmi_spec(vm_row, for_vmi=True),
        "status": status,
    }


def vmi(vm_row: VMRow, cluster: "Cluster") -> dict:
    if vm_row.phase != "Running":
        return pending_vmi(vm_row)
    ns, name = vm_row.namespace, vm_row.name
    os_row = OS[vm_row.os]
    started_days = _started_days(vm_row)
    started = stamp(started_days, "vmi-start", ns, name)
    labels = {**_template_labels(vm_row), "kubevirt.io/nodeName": vm_row.node}
    annotations = {
        "kubevirt.io/latest-observed-api-version": "v1",
        "kubevirt.io/storage-observed-api-version": "v1",
        "kubevirt.io/vm-generation": "2",
        "vm.kubevirt.io/flavor": vm_row.size,
        "vm.kubevirt.io/os": os_row.os_label,
        "vm.kubevirt.io/workload": "server",
    }
    live, _ = _migratable(vm_row, cluster)
    conditions = [
        {"lastProbeTime": None, "lastTransitionTime": started, "status": "True", "type": "Ready"},
        {
            "lastProbeTime": None,
            "lastTransitionTime": None,
            "status": live,
            "type": "LiveMigratable",
            **_migratable_reason(vm_row, cluster),
        },
        {"lastProbeTime": None, "lastTransitionTime": None, "status": "True", "type": "StorageLiveMigratable"},
        {"lastProbeTime": None, "lastTransitionTime": started, "status": "True", "type": "AgentConnected"},
    ]
    interfaces = [
        {
            "infoSource": "domain, guest-agent",
            "interfaceName": "eth0",
            "ipAddress": _pod_ip(vm_row),
            "ipAddresses": [_pod_ip(vm_row)],
            "linkState": "up",
            "mac": _mac(vm_row, "default"),
            "name": "default",
            "queueCount": 1,
            "podInterfaceName": "eth0",
        }
    ]
    for i, net in enumerate(vm_row.networks, start=1):
        interfaces.append(
            {
                "infoSource": "domain, guest-agent, multus-status",
                "interfaceName": f"eth{i}",
                "linkState": "up",
                "mac": _mac(vm_row, net.iface),
                "name": net.iface,
                "podInterfaceName": f"pod{uid('podif', ns, name, net.iface)[:11].replace('-', '')}",
                "queueCount": 1,
            }
        )
    volume_status = []
    targets = iter("abcdefgh")
    if vm_row.container_disk:
        volume_status.append(
            {
                "containerDiskVolume": {"checksum": _hash("cd", vm_row.container_disk) % 2**32},
                "name": "containerdisk",
                "target": f"vd{next(targets)}",
            }
        )
    for disk in vm_row.disks:
        modes, _ = claim_modes(disk, cluster.classes, cluster.default_class)
        claim = f"{name}-{disk.volume}"
        volume_status.append(
            {
                "name": disk.volume,
                "persistentVolumeClaimInfo": {
                    "accessModes": modes,
                    "capacity": {"storage": quantity_gi(disk.size_gi)},
                    "claimName": claim,
                    "filesystemOverhead": "0",
                    "requests": {"storage": quantity_gi(disk.size_gi)},
                    "volumeMode": disk.volume_mode,
                },
                "target": ("sd" if os_row.windows and disk.volume == "rootdisk" else "vd") + next(targets),
            }
        )
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
            ms["endTimestamp"] = (
                datetime.strptime(ms["startTimestamp"], "%Y-%m-%dT%H:%M:%SZ") + timedelta(minutes=state.minutes)
            ).strftime("%Y-%m-%dT%H:%M:%SZ")
            if state.failed:
                ms["failed"] = True
                ms["failureReason"] = (
                    "Live migration failed: operation failed: migration out of job: "
                    "unexpectedly failed (progress timeout: no progress for 150 seconds)"
                )
            ms["targetNodeDomainDetected"] = not state.failed
        status["migrationState"] = dict(sorted(ms.items()))
    status_sorted = dict(sorted(status.items()))
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstance",
        "metadata": meta(
            "VirtualMachineInstance",
            name,
            ns,
            labels=labels,
            annotations=annotations,
            age_days=started_days,
            owner=owner_ref("kubevirt.io/v1", "VirtualMachine", name, ns),
            extra={
                "finalizers": ["kubevirt.io/virtualMachineControllerFinalize", "foregroundDeleteVirtualMachine"],
                "generation": 14,
            },
        ),
        "spec": _vmi_spec(vm_row, for_vmi=True),
        "status": status_sorted,
    }


def _pod_ip(vm_row: VMRow) -> str:
    return (
        f"10.{128 + _hash('n', vm_row.node) % 4}.{_hash('n2', vm_row.node) % 250}."
        f"{_hash('ip', vm_row.namespace, vm_row.name) % 250 + 3}"
    )


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
    status: dict = {
        "phase": row.phase,
        "phaseTransitionTimestamps": [{"phase": p, "phaseTransitionTimestamp": t} for p, t in stamps],
    }
    if row.phase in ("Succeeded", "Failed"):
        status["migrationState"] = {
            "completed": True,
            "endTimestamp": stamps[-1][1],
            "failed": row.phase == "Failed",
            "mode": "PreCopy",
            "sourceNode": state.source,
            "startTimestamp": start.strftime(fmt),
            "targetNode": state.target,
        }
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstanceMigration",
        "metadata": meta(
            "VirtualMachineInstanceMigration",
            row.name,
            row.namespace,
            labels=labels,
            annotations=annotations,
            age_days=state.days_ago + 0.0002,
            extra={"generation": 1},
        ),
        "spec": {"vmiName": row.vmi},
        "status": status,
    }


def hyperconverged(
    cpu_ratio: int, migrations: dict, network: str | None = None, auto_cpu_limit: dict | None = None
) -> dict:
    live = dict(migrations)
    if network:
        live["network"] = network
    return {
        "apiVersion": "hco.kubevirt.io/v1beta1",
        "kind": "HyperConverged",
        "metadata": meta(
            "HyperConverged",
            "kubevirt-hyperconverged",
            "openshift-cnv",
            age_days=380,
            annotations={"deployOVS": "false"},
            labels={"app": "kubevirt-hyperconverged"},
            extra={"finalizers": ["kubevirt.io/hyperconverged"], "generation": 7},
        ),
        "spec": {
            "applicationAwareConfig": {
                "allowApplicationAwareClusterResourceQuota": False,
                "vmiCalcConfigName": "DedicatedVirtualResources",
            },
            "certConfig": {
                "ca": {"duration": "48h0m0s", "renewBefore": "24h0m0s"},
                "server": {"duration": "24h0m0s", "renewBefore": "12h0m0s"},
            },
            "deployVmConsoleProxy": False,
            "enableApplicationAwareQuota": False,
            "enableCommonBootImageImport": True,
            "evictionStrategy": "LiveMigrate",
            "featureGates": {
                "alignCPUs": False,
                "autoResourceLimits": False,
                "deployKubeSecondaryDNS": False,
                "deployTektonTaskResources": False,
                "disableMDevConfiguration": False,
                "enableCommonBootImageImport": True,
                "enableManagedTenantQuota": False,
                "nonRoot": True,
                "persistentReservation": False,
                "withHostPassthroughCPU": False,
            },
            "higherWorkloadDensity": {"memoryOvercommitPercentage": 100},
            "infra": {},
            "liveMigrationConfig": live,
            "resourceRequirements": {
                **({"autoCPULimitNamespaceLabelSelector": auto_cpu_limit} if auto_cpu_limit else {}),
                "vmiCPUAllocationRatio": cpu_ratio,
            },
            "uninstallStrategy": "BlockUninstallIfWorkloadsExist",
            "virtualMachineOptions": {"disableFreePageReporting": False, "disableSerialConsoleLog": True},
            "workloadUpdateStrategy": {
                "batchEvictionInterval": "1m0s",
                "batchEvictionSize": 10,
                "workloadUpdateMethods": ["LiveMigrate"],
            },
            "workloads": {},
        },
        "status": {
            "conditions": [
                {
                    "lastTransitionTime": stamp(6, "hco-cond"),
                    "message": "Reconcile completed successfully",
                    "observedGeneration": 7,
                    "reason": "ReconcileCompleted",
                    "status": "True",
                    "type": t,
                }
                for t in ("ReconcileComplete", "Available")
            ]
            + [
                {
                    "lastTransitionTime": stamp(6, "hco-cond"),
                    "message": "Reconcile completed successfully",
                    "observedGeneration": 7,
                    "reason": "ReconcileCompleted",
                    "status": "False",
                    "type": t,
                }
                for t in ("Progressing", "Degraded")
            ]
            + [
                {
                    "lastTransitionTime": stamp(6, "hco-cond"),
                    "message": "Reconcile completed successfully",
                    "observedGeneration": 7,
                    "reason": "ReconcileCompleted",
                    "status": "True",
                    "type": "Upgradeable",
                }
            ],
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
        "apiVersion": "kubevirt.io/v1",
        "kind": "KubeVirt",
        "metadata": meta(
            "KubeVirt",
            "kubevirt-kubevirt-hyperconverged",
            "openshift-cnv",
            age_days=380,
            labels={
                "app": "kubevirt-hyperconverged",
                "app.kubernetes.io/component": "compute",
                "app.kubernetes.io/managed-by": "hco-operator",
                "app.kubernetes.io/part-of": "hyperconverged-cluster",
                "app.kubernetes.io/version": "4.18.3",
            },
            owner=owner_ref("hco.kubevirt.io/v1beta1", "HyperConverged", "kubevirt-hyperconverged", "openshift-cnv"),
            extra={"finalizers": ["foregroundDeleteKubeVirt"], "generation": 9},
        ),
        "spec": {
            "certificateRotateStrategy": {
                "selfSigned": {
                    "ca": {"duration": "48h0m0s", "renewBefore": "24h0m0s"},
                    "server": {"duration": "24h0m0s", "renewBefore": "12h0m0s"},
                }
            },
            "configuration": {
                "architectureConfiguration": {
                    "amd64": {"emulatedMachines": ["q35*", "pc-q35*"], "machineType": "pc-q35-rhel9.4.0"},
                    "defaultArchitecture": "amd64",
                },
                "developerConfiguration": {
                    "cpuAllocationRatio": cpu_ratio,
                    "diskVerification": {"memoryLimit": "2G"},
                    "featureGates": [
                        "CPUManager",
                        "Snapshot",
                        "HotplugVolumes",
                        "ExpandDisks",
                        "HostDevices",
                        "VMExport",
                        "KubevirtSeccompProfile",
                        "VMPersistentState",
                        "InstancetypeReferencePolicy",
                        "WithHostModelCPU",
                        "HypervStrictCheck",
                    ],
                    "memoryOvercommit": 100,
                },
                "evictionStrategy": "LiveMigrate",
                "migrations": mig,
                "network": {
                    "binding": {"l2bridge": {"domainAttachmentType": "managedTap"}},
                    "defaultNetworkInterface": "masquerade",
                },
                "obsoleteCPUModels": {
                    "486": True,
                    "Conroe": True,
                    "athlon": True,
                    "core2duo": True,
                    "coreduo": True,
                    "kvm32": True,
                    "kvm64": True,
                    "n270": True,
                    "pentium": True,
                    "pentium2": True,
                    "pentium3": True,
                    "pentiumpro": True,
                    "phenom": True,
                    "qemu32": True,
                    "qemu64": True,
                },
                "smbios": {
                    "family": "Red Hat",
                    "manufacturer": "Red Hat",
                    "product": "OpenShift Virtualization",
                    "version": "4.18.3",
                },
                "vmStateStorageClass": "",
            },
            "customizeComponents": {},
            "uninstallStrategy": "BlockUninstallIfWorkloadsExist",
            "workloadUpdateStrategy": {
                "batchEvictionInterval": "1m0s",
                "batchEvictionSize": 10,
                "workloadUpdateMethods": ["LiveMigrate"],
            },
        },
        "status": {
            "conditions": [
                {
                    "lastProbeTime": stamp(6, "kv"),
                    "lastTransitionTime": stamp(6, "kv"),
                    "message": "All components are ready.",
                    "reason": "AllComponentsReady",
                    "status": "True",
                    "type": "Available",
                }
            ],
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
    return {
        "apiVersion": "migrations.kubevirt.io/v1alpha1",
        "kind": "MigrationPolicy",
        "metadata": meta(
            "MigrationPolicy",
            row.name,
            age_days=200,
            extra={"generation": 1},
            annotations={"description": row.description} if row.description else None,
        ),
        "spec": spec,
    }


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
    return {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": meta(
            "NetworkAttachmentDefinition",
            row.name,
            row.namespace,
            annotations=annotations,
            age_days=250,
            extra={"generation": 1},
        ),
        "spec": {"config": row.config},
    }


def iface(
    name: str,
    type_: str,
    mtu: int | None,
    *,
    controller: str = "",
    ports: tuple[str, ...] = (),
    ipv4: str = "",
    mac_seed: str = "",
) -> dict:
    out: dict = {}
    if type_ == "linux-bridge":
        out["bridge"] = {
            "options": {
                "group-forward-mask": 0,
                "mac-ageing-time": 300,
                "multicast-snooping": True,
                "stp": {"enabled": False},
            },
            "port": [{"name": p, "stp-hairpin-mode": False, "stp-path-cost": 100, "stp-priority": 32} for p in ports],
        }
    if type_ == "ovs-bridge":
        out["bridge"] = {
            "options": {"mcast-snooping-enable": False, "rstp": False, "stp": {"enabled": False}},
            "port": [{"name": p} for p in ports],
        }
    if controller:
        out["controller"] = controller
    out["ipv4"] = (
        {"address": [{"ip": ipv4, "prefix-length": 24}], "dhcp": False, "enabled": True} if ipv4 else {"enabled": False}
    )
    out["ipv6"] = {"enabled": False}
    if type_ not in ("ovs-bridge",):
        value = _hash("nic", mac_seed or name)
        out["mac-address"] = ":".join(f"{(value >> (8 * i)) & 0xFF:02X}" for i in range(6))
    if mtu is not None:
        out["mtu"] = mtu
    out["name"] = name
    out["state"] = "up"
    out["type"] = type_
    return out


def nns(node_row: NodeRow, interfaces: list[dict]) -> dict:
    return {
        "apiVersion": "nmstate.io/v1beta1",
        "kind": "NodeNetworkState",
        "metadata": meta(
            "NodeNetworkState",
            node_row.name,
            age_days=380,
            labels={"nmstate.io/node": node_row.name},
            owner=owner_ref("v1", "Node", node_row.name, controller=False),
            extra={"generation": 1},
        ),
        "status": {
            "currentState": {
                "dns-resolver": {"config": {}, "running": {"search": ["lab.example.com"], "server": ["192.168.111.1"]}},
                "interfaces": sorted(interfaces, key=lambda i: (i["name"], i["type"])),
                "route-rules": {"config": []},
                "routes": {
                    "config": [],
                    "running": [
                        {
                            "destination": "0.0.0.0/0",
                            "next-hop-address": "192.168.111.1",
                            "next-hop-interface": "br-ex",
                            "table-id": 254,
                        }
                    ],
                },
            },
            "handlerNetworkManagerVersion": "1.46.0-20.el9_4",
            "handlerNmstateVersion": "2.2.36",
            "hostNetworkManagerVersion": "1.46.0-20.el9_4" if node_row.os == "rhcos" else "1.40.16-15.el8_10",
            "lastSuccessfulUpdateTime": stamp(0.0004, "nns", node_row.name),
        },
    }


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
    return {
        "apiVersion": "config.openshift.io/v1",
        "kind": "Network",
        "metadata": meta(
            "Network",
            "cluster",
            age_days=400,
            extra={"generation": 3},
            annotations={
                "include.release.openshift.io/ibm-cloud-managed": "true",
                "include.release.openshift.io/self-managed-high-availability": "true",
                "release.openshift.io/create-only": "true",
            },
        ),
        "spec": {
            "clusterNetwork": [{"cidr": "10.128.0.0/14", "hostPrefix": 23}],
            "externalIP": {"policy": {}},
            "networkDiagnostics": {"mode": "", "sourcePlacement": {}, "targetPlacement": {}},
            "networkType": "OVNKubernetes",
            "serviceNetwork": ["172.30.0.0/16"],
        },
        "status": {
            "clusterNetwork": [{"cidr": "10.128.0.0/14", "hostPrefix": 23}],
            "clusterNetworkMTU": mtu,
            "networkType": "OVNKubernetes",
            "serviceNetwork": ["172.30.0.0/16"],
        },
    }


# ================================================================ Machine API builders


def machine(row: NodeRow, machine_set: str) -> dict:
    """An IPI bare-metal Machine (Metal3), named as the Node annotation machine.openshift.io/machine says."""
    name = f"ocp-virt-{row.name}"
    labels = {
        "machine.openshift.io/cluster-api-cluster": "ocp-virt",
        "machine.openshift.io/cluster-api-machine-role": row.role,
        "machine.openshift.io/cluster-api-machine-type": row.role,
    }
    if machine_set:
        labels["machine.openshift.io/cluster-api-machineset"] = machine_set
    owner = (
        owner_ref("machine.openshift.io/v1beta1", "MachineSet", machine_set, "openshift-machine-api")
        if machine_set
        else None
    )
    return {
        "apiVersion": "machine.openshift.io/v1beta1",
        "kind": "Machine",
        "metadata": meta(
            "Machine",
            name,
            "openshift-machine-api",
            labels=labels,
            age_days=400,
            owner=owner,
            annotations={"metal3.io/BareMetalHost": f"openshift-machine-api/{row.name}"},
            extra={"finalizers": ["machine.machine.openshift.io"], "generation": 1},
        ),
        "spec": {
            "lifecycleHooks": {},
            "metadata": {},
            "providerID": f"baremetalhost:///openshift-machine-api/{row.name}/{uid('bmh', row.name)}",
            "providerSpec": {
                "value": {
                    "apiVersion": "baremetal.cluster.k8s.io/v1alpha1",
                    "kind": "BareMetalMachineProviderSpec",
                    "customDeploy": {"method": "install_coreos"},
                    "hostSelector": {},
                    "image": {"checksum": "", "url": ""},
                    "userData": {"name": f"{row.role}-user-data-managed"},
                }
            },
        },
        "status": {
            "addresses": [{"address": row.ip, "type": "InternalIP"}, {"address": row.name, "type": "Hostname"}],
            "lastUpdated": stamp(3, "machine", row.name),
            "nodeRef": {"kind": "Node", "name": row.name, "uid": uid("Node", None, row.name)},
            "phase": "Running",
        },
    }


def machine_health_check(name: str, selector: dict, max_unhealthy: str = "40%", *, timeout: str = "300s") -> dict:
    spec: dict = {
        "maxUnhealthy": max_unhealthy,
        "nodeStartupTimeout": "10m",
        "selector": selector,
        "unhealthyConditions": [
            {"status": "False", "timeout": timeout, "type": "Ready"},
            {"status": "Unknown", "timeout": timeout, "type": "Ready"},
        ],
    }
    return {
        "apiVersion": "machine.openshift.io/v1beta1",
        "kind": "MachineHealthCheck",
        "metadata": meta("MachineHealthCheck", name, "openshift-machine-api", age_days=380, extra={"generation": 1}),
        "spec": spec,
    }


def termination_handler_mhc() -> dict:
    """The MHC every installer creates: it remediates spot instances only."""
    obj = machine_health_check(
        "machine-api-termination-handler",
        {"matchLabels": {"machine.openshift.io/interruptible-instance": ""}},
        "100%",
        timeout="0s",
    )
    obj["spec"]["unhealthyConditions"] = [{"status": "True", "timeout": "0s", "type": "Terminating"}]
    obj["metadata"]["labels"] = {"api": "clusterapi", "k8s-app": "termination-handler"}
    return obj


def trident_backend(namespace: str, name: str, driver: str, svm: str, age_days: float, **limits: str) -> dict:
    """A TridentBackendConfig as `oc get -o yaml` shows it once Trident bound it."""
    backend = f"{name.removeprefix('backend-')}"
    spec: dict = {
        "credentials": {"name": f"{name}-secret"},
        "managementLIF": "10.0.50.10",
        "storageDriverName": driver,
        "svm": svm,
        "version": 1,
        "backendName": backend,
    }
    if driver.startswith("ontap-nas"):
        spec["nfsMountOptions"] = "nfsvers=4.1"
    spec.update(limits)
    spec["defaults"] = {"snapshotPolicy": "default", "spaceReserve": "none"}
    return {
        "apiVersion": "trident.netapp.io/v1",
        "kind": "TridentBackendConfig",
        "metadata": meta(
            "TridentBackendConfig",
            name,
            namespace,
            age_days=age_days,
            extra={"finalizers": ["trident.netapp.io"], "generation": 1},
        ),
        "spec": spec,
        "status": {
            "backendInfo": {"backendName": backend, "backendUUID": uid("backend", name)},
            "deletionPolicy": "delete",
            "lastOperationStatus": "Success",
            "message": f"Backend '{backend}' created",
            "phase": "Bound",
        },
    }


def nncp(
    name: str, selector: dict[str, str], bridge: str, nic: str, mtu: int, age_days: float, description: str
) -> dict:
    """A NodeNetworkConfigurationPolicy with one Linux bridge on one NIC."""
    return {
        "apiVersion": "nmstate.io/v1",
        "kind": "NodeNetworkConfigurationPolicy",
        "metadata": meta(
            "NodeNetworkConfigurationPolicy",
            name,
            age_days=age_days,
            annotations={"description": description},
            extra={"generation": 1},
        ),
        "spec": {
            "desiredState": {
                "interfaces": [
                    {
                        "bridge": {"options": {"stp": {"enabled": False}}, "port": [{"name": nic}]},
                        "description": description,
                        "ipv4": {"enabled": False},
                        "ipv6": {"enabled": False},
                        "mtu": mtu,
                        "name": bridge,
                        "state": "up",
                        "type": "linux-bridge",
                    }
                ]
            },
            "nodeSelector": selector,
        },
    }


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
    machine_sets: dict[str, str] = field(
        default_factory=dict
    )  # node -> MachineSet ("" for a master); others: no Machine
    health_checks: list[dict] = field(default_factory=list)  # MachineHealthChecks and NodeHealthChecks


def virt_handler_pod(node_row: NodeRow, ready: bool) -> dict:
    """The virt-handler DaemonSet pod of a worker (openshift-cnv, label kubevirt.io=virt-handler)."""
    name = f"virt-handler-{suffix('virt-handler', node_row.name)}"
    started = stamp(30, "virt-handler-start", node_row.name)
    labels = {
        "app.kubernetes.io/component": "compute",
        "app.kubernetes.io/managed-by": "virt-operator",
        "app.kubernetes.io/part-of": "hyperconverged-cluster",
        "app.kubernetes.io/version": "4.18.3",
        "controller-revision-hash": suffix("virt-handler-rev", length=10),
        "kubevirt.io": "virt-handler",
        "pod-template-generation": "3",
        "prometheus.kubevirt.io": "true",
    }

    def condition(type_: str, status: str) -> dict:
        cond = {"lastProbeTime": None, "lastTransitionTime": started, "status": status, "type": type_}
        if status == "False":
            cond.update(message="containers with unready status: [virt-handler]", reason="ContainersNotReady")
        return cond

    state = (
        {"running": {"startedAt": started}}
        if ready
        else {
            "waiting": {
                "message": "back-off 5m0s restarting failed container=virt-handler",
                "reason": "CrashLoopBackOff",
            }
        }
    )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta(
            "Pod",
            name,
            "openshift-cnv",
            labels=labels,
            age_days=30,
            owner=owner_ref("apps/v1", "DaemonSet", "virt-handler", "openshift-cnv"),
        ),
        "spec": {
            "containers": [
                {
                    "name": "virt-handler",
                    "image": "registry.redhat.io/container-native-"
                    "virtualization/virt-handler-rhel9@sha256:" + hashlib.sha256(b"virt-handler").hexdigest(),
                    "resources": {"requests": {"cpu": "10m", "memory": "357Mi"}},
                }
            ],
            "nodeName": node_row.name,
            "priorityClassName": "kubevirt-cluster-critical",
            "serviceAccountName": "kubevirt-handler",
        },
        "status": {
            "conditions": [
                condition("Initialized", "True"),
                condition("Ready", "True" if ready else "False"),
                condition("ContainersReady", "True" if ready else "False"),
                condition("PodScheduled", "True"),
            ],
            "containerStatuses": [
                {
                    "name": "virt-handler",
                    "ready": ready,
                    "restartCount": 0 if ready else 41,
                    "started": ready,
                    "state": state,
                }
            ],
            "hostIP": node_row.ip,
            "phase": "Running",
            "qosClass": "Burstable",
            "startTime": started,
        },
    }


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
            claim = pvc(
                row.namespace,
                name,
                disk,
                modes,
                sc,
                c.classes[sc].provisioner,
                from_dv=disk.source != "pvc",
                age_days=row.age_days,
            )
            if "volume.kubernetes.io/selected-node" in claim["metadata"]["annotations"]:
                claim["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] = row.node
            pvcs.append(claim)
            if disk.source != "pvc":
                dvs.append(data_volume(row, disk, row.age_days))
    classes = list(c.classes.values())
    storage = (
        [storage_class(s) for s in classes]
        + [storage_profile(s) for s in classes]
        + sorted(dvs, key=_sort_key)
        + sorted(pvcs, key=_sort_key)
    )

    network = [cluster_network_config(c.cluster_mtu)]
    network += [nad(n) for n in sorted(c.nads, key=lambda n: (n.namespace, n.name))]
    network += [nns(n, base_interfaces(n) + c.node_interfaces.get(n.name, [])) for n in c.nodes]

    virtualization = [
        hyperconverged(c.cpu_ratio, c.hco_migrations, c.migration_network, c.auto_cpu_limit),
        kubevirt_cr(c.cpu_ratio, c.hco_migrations, c.migration_network),
    ]
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
        "virt-handler.yaml": _list(
            [virt_handler_pod(n, n.name not in c.handler_not_ready) for n in c.nodes if n.role == "worker"]
        ),
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
    lines = [
        "# HELP kubevirt_vmi_dirty_rate_bytes_per_second Guest dirty-rate in bytes per second.",
        "# TYPE kubevirt_vmi_dirty_rate_bytes_per_second gauge",
    ]
    for row in sorted(c.vms, key=lambda r: (r.namespace, r.name)):
        if row.dirty_mib is not None:
            lines.append(
                f'kubevirt_vmi_dirty_rate_bytes_per_second{{name="{row.name}",namespace="{row.namespace}",'
                f'node="{row.node}"}} {round(row.dirty_mib * MI)}'
            )
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
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120, allow_unicode=True)
