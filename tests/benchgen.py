"""Synthetic clusters for `make bench` and the soak test, in tiers S, M, L and XL.

Objects are plain dicts shaped as the API server serves them, with the metadata real
objects carry (managedFields of two or three managers, controller annotations, owner
references), so LIST bodies weigh what they weigh on a real cluster. XL is the scale
users run: 500 nodes, 10,000 VMs and VMIs, 20,000 PVCs, 10,000 DataVolumes, a
virt-handler pod, a Machine and a NodeNetworkState per node, a PodMetrics per VMI,
a large rebalance's migrations and 20 Trident backends.

Shapes follow the upstream types: ObjectMeta and ManagedFieldsEntry (kubernetes/
apimachinery v0.31.0 pkg/apis/meta/v1/types.go), Node, PVC and Pod (kubernetes/api
v0.31.0 core/v1/types.go), VirtualMachine, VirtualMachineInstance and migrations
(kubevirt/kubevirt v1.7.0 staging/src/kubevirt.io/api/core/v1/types.go), DataVolume
(kubevirt/containerized-data-importer v1.60.0 staging/src/kubevirt.io/containerized-data-importer-api/
pkg/apis/core/v1beta1/types.go), PodMetrics (kubernetes/metrics v0.31.0 pkg/apis/metrics/
v1beta1/types.go).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterator

Obj = dict[str, Any]


@dataclass(frozen=True)
class Tier:
    name: str
    nodes: int
    vms: int
    namespaces: int
    migrations: int


TIERS = {
    t.name: t
    for t in (
        Tier("S", nodes=6, vms=120, namespaces=6, migrations=25),
        Tier("M", nodes=50, vms=1000, namespaces=40, migrations=200),
        Tier("L", nodes=200, vms=4000, namespaces=100, migrations=800),
        Tier("XL", nodes=500, vms=10_000, namespaces=200, migrations=2025),
    )
}

STAMP = "2026-11-26T10:00:00Z"


def _fields(*paths: str) -> dict[str, Any]:
    """A FieldsV1 set (server-side apply's field ownership) for dotted paths."""
    root: dict[str, Any] = {}
    for path in paths:
        node = root
        for part in path.split("."):
            node = node.setdefault(f"f:{part}", {})
        node["."] = {}
    return root


def _managed(*entries: tuple[str, str, tuple[str, ...]]) -> list[Obj]:
    return [
        {
            "manager": manager,
            "operation": operation,
            "apiVersion": "v1",
            "time": STAMP,
            "fieldsType": "FieldsV1",
            "fieldsV1": _fields(*paths),
        }
        for manager, operation, paths in entries
    ]


def _meta(name: str, uid: str, namespace: str | None = None, **extra: Any) -> Obj:
    meta: Obj = {"name": name, "uid": uid, "creationTimestamp": STAMP, "generation": 1}
    if namespace is not None:
        meta["namespace"] = namespace
    meta.update(extra)
    return meta


def node(n: int) -> Obj:
    name = f"worker-{n:03d}"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": _meta(
            name,
            f"node-{n}",
            labels={
                "kubevirt.io/schedulable": "true",
                "node.openshift.io/os_id": "rhel" if n == 0 else "rhcos",
                "feature.node.kubernetes.io/cpu-hardware_multithreading": "true",
                "kubernetes.io/os": "linux",
                "kubernetes.io/hostname": name,
                "node-role.kubernetes.io/worker": "",
                "topology.kubernetes.io/zone": f"zone-{n % 3}",
                "cpu-model.node.kubevirt.io/Icelake-Server": "true",
            },
            annotations={
                "machine.openshift.io/machine": f"openshift-machine-api/ocp-worker-{n:03d}",
                "machineconfiguration.openshift.io/currentConfig": "rendered-worker-" + "0" * 32,
                "machineconfiguration.openshift.io/desiredConfig": "rendered-worker-" + "0" * 32,
                "machineconfiguration.openshift.io/state": "Done",
                "kubevirt.io/heartbeat": STAMP,
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
            managedFields=_managed(
                (
                    "kubelet",
                    "Update",
                    (
                        "metadata.labels",
                        "status.capacity",
                        "status.allocatable",
                        "status.conditions",
                        "status.nodeInfo",
                    ),
                ),
                ("virt-handler", "Update", ("metadata.annotations", "metadata.labels")),
                ("machine-config-daemon", "Update", ("metadata.annotations",)),
            ),
        ),
        "spec": {"providerID": f"baremetalhost:///openshift-machine-api/host-{n:03d}"},
        "status": {
            "capacity": {"cpu": "96", "memory": "791634512Ki", "pods": "250", "devices.kubevirt.io/kvm": "1k"},
            "allocatable": {"cpu": "95500m", "memory": "780000000Ki", "pods": "250"},
            "nodeInfo": {
                "osImage": "Red Hat Enterprise Linux CoreOS 418.94",
                "kernelVersion": "5.14.0-427",
                "architecture": "amd64",
                "bootID": f"boot-{n}",
                "machineID": f"machine-{n}",
                "systemUUID": f"uuid-{n}",
                "operatingSystem": "linux",
                "containerRuntimeVersion": "cri-o://1.31.6",
                "kubeletVersion": "v1.31.6",
                "kubeProxyVersion": "",
            },
            "conditions": [
                {
                    "type": t,
                    "status": "False",
                    "reason": "KubeletHasSufficient" + t,
                    "message": "kubelet has sufficient " + t,
                    "lastHeartbeatTime": STAMP,
                }
                for t in ("MemoryPressure", "DiskPressure", "PIDPressure")
            ]
            + [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                    "lastHeartbeatTime": STAMP,
                }
            ],
        },
    }


def node_network_state(n: int) -> Obj:
    return {
        "apiVersion": "nmstate.io/v1beta1",
        "kind": "NodeNetworkState",
        "metadata": _meta(f"worker-{n:03d}", f"nns-{n}"),
        "status": {
            "currentState": {
                "interfaces": [
                    {
                        "name": "br1",
                        "type": "linux-bridge",
                        "mtu": 9000 if n % 50 == 0 else 1500,
                        "state": "up",
                        "bridge": {"port": [{"name": "ens4"}]},
                    },
                    {"name": "ens4", "type": "ethernet", "mtu": 9000, "state": "up"},
                    {"name": "br-ex", "type": "ovs-interface", "mtu": 1500, "state": "up"},
                ]
            }
        },
    }


def _vm_parts(tier: Tier, v: int) -> tuple[str, str, list[str], bool]:
    return f"tenant-{v % tier.namespaces:03d}", f"vm-{v:05d}", [f"vm-{v:05d}-root", f"vm-{v:05d}-data"], v % 10 != 0


def _vm_spec(name: str, disks: list[str]) -> Obj:
    domain = {
        "cpu": {"sockets": 1, "cores": 4, "threads": 1},
        "memory": {"guest": "16Gi"},
        "resources": {"requests": {"memory": "16Gi"}},
        "devices": {
            "disks": [{"name": d, "disk": {"bus": "virtio"}} for d in disks],
            "interfaces": [{"name": "default", "masquerade": {}}, {"name": "net1", "bridge": {}}],
        },
    }
    return {
        "domain": domain,
        "evictionStrategy": "LiveMigrate",
        "networks": [{"name": "default", "pod": {}}, {"name": "net1", "multus": {"networkName": "br1-net"}}],
        "volumes": [{"name": d, "persistentVolumeClaim": {"claimName": d}} for d in disks]
        + [{"name": "cloudinit", "cloudInitNoCloud": {"userData": "#cloud-config\n" + "x" * 200}}],
    }


def vm(tier: Tier, v: int, generation: int = 1) -> Obj:
    ns, name, disks, _ = _vm_parts(tier, v)
    labels = {"kubevirt.io/domain": name, "app": f"app-{v % 50}", "vm.kubevirt.io/template": "rhel9-server-small"}
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": _meta(
            name,
            f"vm-{v}",
            ns,
            generation=generation,
            labels=labels,
            annotations={
                "kubevirt.io/latest-observed-api-version": "v1",
                "kubevirt.io/storage-observed-api-version": "v1",
                "vm.kubevirt.io/validations": '[{"name":"minimal-required-memory","path":'
                '"jsonpath::.spec.domain.memory.guest","min":1610612736}]',
            },
            finalizers=["kubevirt.io/virtualMachineControllerFinalize"],
            managedFields=_managed(
                (
                    "kubectl-client-side-apply",
                    "Update",
                    ("metadata.labels", "spec.runStrategy", "spec.template.spec.domain", "spec.template.spec.volumes"),
                ),
                (
                    "virt-controller",
                    "Update",
                    ("status.conditions", "status.printableStatus", "status.volumeSnapshotStatuses"),
                ),
            ),
        ),
        "spec": {
            "runStrategy": "Always",
            "template": {"metadata": {"labels": labels}, "spec": _vm_spec(name, disks)},
            "dataVolumeTemplates": [
                {
                    "metadata": {"name": disks[0]},
                    "spec": {
                        "storage": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "30Gi"}}},
                        "sourceRef": {
                            "kind": "DataSource",
                            "name": "rhel9",
                            "namespace": "openshift-virtualization-os-images",
                        },
                    },
                }
            ],
        },
        "status": {
            "printableStatus": "Running",
            "ready": True,
            "created": True,
            "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": STAMP},
                {"type": "LiveMigratable", "status": "True", "lastTransitionTime": STAMP},
            ],
        },
    }


def vmi(tier: Tier, v: int, generation: int = 1) -> Obj:
    ns, name, disks, _ = _vm_parts(tier, v)
    labels = {
        "kubevirt.io/domain": name,
        "app": f"app-{v % 50}",
        "kubevirt.io/nodeName": f"worker-{v % tier.nodes:03d}",
    }
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstance",
        "metadata": _meta(
            name,
            f"vmi-{v}",
            ns,
            generation=generation,
            labels=labels,
            annotations={
                "kubevirt.io/latest-observed-api-version": "v1",
                "kubevirt.io/storage-observed-api-version": "v1",
                "kubevirt.io/vm-generation": str(generation),
            },
            ownerReferences=[
                {
                    "apiVersion": "kubevirt.io/v1",
                    "kind": "VirtualMachine",
                    "name": name,
                    "uid": f"vm-{v}",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            finalizers=["kubevirt.io/virtualMachineControllerFinalize", "foregroundDeleteVirtualMachine"],
            managedFields=_managed(
                ("virt-controller", "Update", ("metadata.labels", "metadata.ownerReferences", "spec")),
                (
                    "virt-handler",
                    "Update",
                    (
                        "status.interfaces",
                        "status.volumeStatus",
                        "status.guestOSInfo",
                        "status.phase",
                        "status.conditions",
                    ),
                ),
            ),
        ),
        "spec": _vm_spec(name, disks),
        "status": {
            "nodeName": f"worker-{v % tier.nodes:03d}",
            "phase": "Running",
            "qosClass": "Burstable",
            "currentCPUTopology": {"sockets": 1, "cores": 4, "threads": 1},
            "guestOSInfo": {"id": "rhel", "name": "Red Hat Enterprise Linux", "version": "9.4"},
            "interfaces": [
                {
                    "name": "default",
                    "ipAddress": f"10.128.{v // 250}.{v % 250}",
                    "mac": "02:00:00:00:00:01",
                    "infoSource": "domain, guest-agent",
                }
            ],
            "volumeStatus": [
                {
                    "name": d,
                    "target": "vda",
                    "persistentVolumeClaimInfo": {
                        "claimName": d,
                        "accessModes": ["ReadWriteMany"],
                        "volumeMode": "Block",
                        "capacity": {"storage": "30Gi"},
                    },
                }
                for d in disks
            ],
            "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": STAMP},
                {"type": "LiveMigratable", "status": "True", "lastTransitionTime": STAMP},
                {"type": "AgentConnected", "status": "True", "lastTransitionTime": STAMP},
            ],
        },
    }


def pvcs(tier: Tier, v: int) -> list[Obj]:
    ns, _, disks, rwx = _vm_parts(tier, v)
    mode = "ReadWriteMany" if rwx else "ReadWriteOnce"
    return [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": _meta(
                d,
                f"pvc-{d}",
                ns,
                labels={"app": "containerized-data-importer", "app.kubernetes.io/component": "storage"},
                annotations={
                    "cdi.kubevirt.io/storage.import.endpoint": "http://images.example/rhel9.qcow2",
                    "cdi.kubevirt.io/storage.pod.phase": "Succeeded",
                    "cdi.kubevirt.io/storage.condition.bound": "true",
                    "pv.kubernetes.io/bind-completed": "yes",
                    "volume.beta.kubernetes.io/storage-provisioner": "openshift-storage.rbd.csi.ceph.com",
                },
                ownerReferences=[
                    {
                        "apiVersion": "cdi.kubevirt.io/v1beta1",
                        "kind": "DataVolume",
                        "name": d,
                        "uid": f"dv-{d}",
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
                finalizers=["kubernetes.io/pvc-protection"],
                managedFields=_managed(
                    (
                        "cdi-controller",
                        "Update",
                        ("metadata.annotations", "metadata.labels", "metadata.ownerReferences", "spec"),
                    ),
                    ("kube-controller-manager", "Update", ("status.accessModes", "status.capacity", "status.phase")),
                ),
            ),
            "spec": {
                "accessModes": [mode],
                "resources": {"requests": {"storage": "30Gi"}},
                "storageClassName": "ceph-rbd-virt" if rwx else "lvms",
                "volumeMode": "Block",
                "volumeName": f"pvc-{v:05d}-{i}",
            },
            "status": {"phase": "Bound", "accessModes": [mode], "capacity": {"storage": "30Gi"}},
        }
        for i, d in enumerate(disks)
    ]


def data_volume(tier: Tier, v: int) -> Obj:
    ns, _, disks, rwx = _vm_parts(tier, v)
    return {
        "apiVersion": "cdi.kubevirt.io/v1beta1",
        "kind": "DataVolume",
        "metadata": _meta(
            disks[0],
            f"dv-{disks[0]}",
            ns,
            annotations={"cdi.kubevirt.io/storage.usePopulator": "true"},
            ownerReferences=[
                {
                    "apiVersion": "kubevirt.io/v1",
                    "kind": "VirtualMachine",
                    "name": f"vm-{v:05d}",
                    "uid": f"vm-{v}",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            managedFields=_managed(
                ("virt-controller", "Update", ("metadata.ownerReferences", "spec")),
                ("cdi-controller", "Update", ("status.phase", "status.progress", "status.conditions")),
            ),
        ),
        "spec": {
            "storage": {
                "accessModes": ["ReadWriteMany" if rwx else "ReadWriteOnce"],
                "resources": {"requests": {"storage": "30Gi"}},
            },
            "sourceRef": {"kind": "DataSource", "name": "rhel9", "namespace": "openshift-virtualization-os-images"},
        },
        "status": {
            "phase": "Succeeded",
            "progress": "100.0%",
            "conditions": [
                {"type": t, "status": "True", "lastTransitionTime": STAMP} for t in ("Bound", "Ready", "Running")
            ],
        },
    }


def pod_metrics(tier: Tier, v: int) -> Obj:
    return {
        "apiVersion": "metrics.k8s.io/v1beta1",
        "kind": "PodMetrics",
        "metadata": {
            "name": f"virt-launcher-vm-{v:05d}-abcde",
            "namespace": f"tenant-{v % tier.namespaces:03d}",
            "creationTimestamp": STAMP,
            "labels": {
                "kubevirt.io": "virt-launcher",
                "kubevirt.io/created-by": f"vmi-{v}",
                "vm.kubevirt.io/name": f"vm-{v:05d}",
            },
        },
        "timestamp": STAMP,
        "window": "30s",
        "containers": [{"name": "compute", "usage": {"cpu": f"{(v % 40) * 100}m", "memory": f"{2 + v % 15}Gi"}}],
    }


def migration(tier: Tier, m: int) -> Obj:
    v = (m * 7) % tier.vms
    running = m >= tier.migrations - max(1, tier.migrations // 80)
    state = {
        "sourceNode": f"worker-{v % tier.nodes:03d}",
        "targetNode": f"worker-{(v + 1) % tier.nodes:03d}",
        "startTimestamp": f"2026-11-26T{m % 10:02d}:{m % 60:02d}:00Z",
    }
    if not running:
        state |= {"endTimestamp": f"2026-11-26T{m % 10:02d}:{m % 60:02d}:30Z", "completed": True}
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstanceMigration",
        "metadata": _meta(
            f"mig-{m:05d}",
            f"vmim-{m}",
            f"tenant-{v % tier.namespaces:03d}",
            labels={"kubevirt.io/vmi-name": f"vm-{v:05d}"},
        ),
        "spec": {"vmiName": f"vm-{v:05d}"},
        "status": {
            "phase": "Running" if running else ("Failed" if m % 50 == 0 else "Succeeded"),
            "migrationState": state,
        },
    }


def cluster(tier: Tier) -> Iterator[Obj]:
    """Every object of the tier, in a stable order."""
    yield {
        "apiVersion": "kubevirt.io/v1",
        "kind": "KubeVirt",
        "metadata": _meta("kubevirt-kubevirt-hyperconverged", "kv-1", "openshift-cnv"),
        "spec": {
            "configuration": {
                "migrations": {
                    "parallelMigrationsPerCluster": 5,
                    "parallelOutboundMigrationsPerNode": 2,
                    "bandwidthPerMigration": "0Mi",
                }
            }
        },
        "status": {"phase": "Deployed", "observedKubeVirtVersion": "v1.7.0"},
    }
    for sc, provisioner in (("ceph-rbd-virt", "openshift-storage.rbd.csi.ceph.com"), ("lvms", "topolvm.io")):
        yield {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": _meta(sc, f"sc-{sc}"),
            "provisioner": provisioner,
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "WaitForFirstConsumer",
        }
    for t in range(tier.namespaces):
        yield {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": _meta(f"tenant-{t:03d}", f"ns-{t}", labels={"kubernetes.io/metadata.name": f"tenant-{t:03d}"}),
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        }
        yield {
            "apiVersion": "k8s.cni.cncf.io/v1",
            "kind": "NetworkAttachmentDefinition",
            "metadata": _meta("br1-net", f"nad-{t}", f"tenant-{t:03d}"),
            "spec": {
                "config": json.dumps({"cniVersion": "0.3.1", "name": "br1-net", "type": "cnv-bridge", "bridge": "br1"})
            },
        }
    for n in range(tier.nodes):
        yield node(n)
        yield node_network_state(n)
        yield {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": _meta(
                f"virt-handler-{n:05d}", f"vh-{n}", "openshift-cnv", labels={"kubevirt.io": "virt-handler"}
            ),
            "spec": {
                "nodeName": f"worker-{n:03d}",
                "serviceAccountName": "kubevirt-handler",
                "containers": [
                    {
                        "name": "virt-handler",
                        "image": "registry.example/virt-handler:v4.18",
                        "resources": {"requests": {"cpu": "10m", "memory": "325Mi"}},
                    }
                ],
            },
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False" if n == 1 else "True"}]},
        }
        yield {
            "apiVersion": "machine.openshift.io/v1beta1",
            "kind": "Machine",
            "metadata": _meta(
                f"ocp-worker-{n:03d}",
                f"m-{n}",
                "openshift-machine-api",
                labels={"machine.openshift.io/cluster-api-machineset": "workers-a" if n % 10 else "workers-b"},
            ),
            "status": {"nodeRef": {"name": f"worker-{n:03d}"}, "phase": "Running"},
        }
    yield {
        "apiVersion": "machine.openshift.io/v1beta1",
        "kind": "MachineHealthCheck",
        "metadata": _meta("workers", "mhc-1", "openshift-machine-api"),
        "spec": {
            "selector": {"matchLabels": {"machine.openshift.io/cluster-api-machineset": "workers-a"}},
            "maxUnhealthy": "40%",
        },
    }
    for v in range(tier.vms):
        yield vm(tier, v)
        yield vmi(tier, v)
        yield from pvcs(tier, v)
        yield data_volume(tier, v)
        yield pod_metrics(tier, v)
    for m in range(tier.migrations):
        yield migration(tier, m)
    for b in range(20):
        yield {
            "apiVersion": "trident.netapp.io/v1",
            "kind": "TridentBackendConfig",
            "metadata": _meta(f"backend-{b}", f"tbc-{b}", "trident"),
            "spec": {
                "storageDriverName": "ontap-nas-economy" if b % 2 else "ontap-nas",
                **({"limitVolumeSize": "2Ti"} if b % 3 else {}),
            },
        }
