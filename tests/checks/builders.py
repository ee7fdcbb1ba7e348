"""Builders of realistic Kubernetes object dicts for the check tests, and helpers to turn
them into a ClusterState and read a check's output.

Every builder returns a plain dict shaped like `kubectl get -o json` output (camelCase,
apiVersion and kind set), so a test can damage any part of it before `state()` converts
it through the same `kind_for` + `convert` path the file loader uses.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Iterable

from ov_exporter.config import Config, load_config
from ov_exporter.model import CheckOutput, Finding, Severity
from ov_exporter.records import convert, kind_for
from ov_exporter.store import ClusterState, UpstreamSample

RHCOS_IMAGE = "Red Hat Enterprise Linux CoreOS 416.94.202405291527-0 (Plow)"
RHEL_IMAGE = "Red Hat Enterprise Linux 8.9 (Ootpa)"
UBUNTU_IMAGE = "Ubuntu 22.04.4 LTS"

SCHEDULABLE = "kubevirt.io/schedulable"
SMT = "feature.node.kubernetes.io/cpu-hardware_multithreading"
OS_ID = "node.openshift.io/os_id"
EXEMPT = "ov-exporter.openshift.io/exempt"

NS = "vms"  # the default namespace of namespaced builders
GI = 2**30
MI = 2**20


def _meta(name: str, namespace: str | None = None, labels: dict | None = None, annotations: dict | None = None) -> dict:
    meta: dict[str, Any] = {"name": name, "uid": f"uid-{namespace or '_'}-{name}", "resourceVersion": "4711"}
    if namespace is not None:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


# ---------------------------------------------------------------- core


def node(
    name: str,
    cpu: str | int = "32",
    memory: str = "256Gi",
    labels: dict | None = None,
    os_image: str = RHCOS_IMAGE,
    *,
    os_id: str | None = "rhcos",
    schedulable: bool | None = True,
    smt: bool | None = None,
    control_plane: bool = False,
    taints: list | None = None,
    cordoned: bool = False,
) -> dict:
    """A worker node. `schedulable` sets kubevirt.io/schedulable ("true"/"false"; None: no
    label); `smt` sets the NFD multithreading label (None: no label); `os_id` the
    node.openshift.io/os_id label (None: no label)."""
    lbls = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
    if control_plane:
        lbls["node-role.kubernetes.io/master"] = ""
        lbls["node-role.kubernetes.io/control-plane"] = ""
    else:
        lbls["node-role.kubernetes.io/worker"] = ""
    if os_id is not None:
        lbls[OS_ID] = os_id
    if schedulable is not None:
        lbls[SCHEDULABLE] = "true" if schedulable else "false"
    if smt is not None:
        lbls[SMT] = "true" if smt else "false"
    lbls.update(labels or {})
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": _meta(name, labels=lbls),
        "spec": {**({"taints": taints} if taints else {}), **({"unschedulable": True} if cordoned else {})},
        "status": {
            "capacity": {"cpu": str(cpu), "memory": memory, "pods": "250", "devices.kubevirt.io/kvm": "1k"},
            "allocatable": {"cpu": str(cpu), "memory": memory, "pods": "250"},
            "nodeInfo": {
                "osImage": os_image,
                "kernelVersion": "5.14.0-427.20.1.el9_4.x86_64",
                "kubeletVersion": "v1.29.5+29c95f3",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                }
            ],
        },
    }


def namespace(name: str, labels: dict | None = None, annotations: dict | None = None) -> dict:
    lbls = {"kubernetes.io/metadata.name": name, **(labels or {})}
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": _meta(name, labels=lbls, annotations=annotations),
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def pvc(
    name: str,
    namespace: str = NS,
    access_modes: Iterable[str] | None = ("ReadWriteOnce",),
    phase: str = "Bound",
    storage_class: str = "ocs-storagecluster-ceph-rbd",
    status_modes: Iterable[str] | None | bool = True,
    volume_mode: str = "Block",
) -> dict:
    """`status_modes=True`: the status repeats the spec modes (a bound claim)."""
    spec: dict[str, Any] = {
        "storageClassName": storage_class,
        "volumeMode": volume_mode,
        "resources": {"requests": {"storage": "30Gi"}},
        "volumeName": f"pvc-{name}",
    }
    if access_modes is not None:
        spec["accessModes"] = list(access_modes)
    status: dict[str, Any] = {"phase": phase}
    if status_modes is True:
        if access_modes is not None and phase == "Bound":
            status["accessModes"] = list(access_modes)
            status["capacity"] = {"storage": "30Gi"}
    elif status_modes:
        status["accessModes"] = list(status_modes)
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(name, namespace, labels={"app": "containerized-data-importer"}),
        "spec": spec,
        "status": status,
    }


def storage_class(
    name: str,
    provisioner: str = "openshift-storage.rbd.csi.ceph.com",
    *,
    default_virt: bool = False,
    default: bool = False,
) -> dict:
    annotations = {}
    if default_virt:
        annotations["storageclass.kubevirt.io/is-default-virt-class"] = "true"
    if default:
        annotations["storageclass.kubernetes.io/is-default-class"] = "true"
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": _meta(name, annotations=annotations),
        "provisioner": provisioner,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
        "allowVolumeExpansion": True,
    }


# ---------------------------------------------------------------- CDI


def datavolume(
    name: str,
    namespace: str = NS,
    *,
    api: str = "storage",
    access_modes: Iterable[str] | None = None,
    storage_class: str | None = None,
    volume_mode: str | None = None,
    phase: str = "Succeeded",
) -> dict:
    """A DataVolume using `spec.storage` (access modes optional) or `spec.pvc`."""
    return {
        "apiVersion": "cdi.kubevirt.io/v1beta1",
        "kind": "DataVolume",
        "metadata": _meta(name, namespace),
        "spec": dv_spec(api, access_modes, storage_class, volume_mode),
        "status": {"phase": phase, "progress": "100.0%"},
    }


def dv_spec(
    api: str = "storage",
    access_modes: Iterable[str] | None = None,
    storage_class: str | None = None,
    volume_mode: str | None = None,
) -> dict:
    claim: dict[str, Any] = {"resources": {"requests": {"storage": "30Gi"}}}
    if access_modes is not None:
        claim["accessModes"] = list(access_modes)
    if storage_class is not None:
        claim["storageClassName"] = storage_class
    if volume_mode is not None:
        claim["volumeMode"] = volume_mode
    return {"source": {"registry": {"url": "docker://registry.redhat.io/rhel9/rhel-guest-image:latest"}}, api: claim}


def storage_profile(
    name: str,
    claim_property_sets: list[dict] | None = None,
    *,
    provisioner: str = "kubernetes.io/no-provisioner",
    in_spec: bool = False,
) -> dict:
    """CDI StorageProfile named after its StorageClass; claimPropertySets in status (CDI
    computed) or in spec (set by an admin)."""
    sets = (
        claim_property_sets
        if claim_property_sets is not None
        else [{"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem"}]
    )
    obj = {
        "apiVersion": "cdi.kubevirt.io/v1beta1",
        "kind": "StorageProfile",
        "metadata": _meta(name),
        "spec": {},
        "status": {"storageClass": name, "provisioner": provisioner},
    }
    if in_spec:
        obj["spec"]["claimPropertySets"] = sets
    else:
        obj["status"]["claimPropertySets"] = sets
    return obj


# ---------------------------------------------------------------- KubeVirt


def pvc_volume(name: str, claim: str | None = None) -> dict:
    return {"name": name, "persistentVolumeClaim": {"claimName": claim or name}}


def dv_volume(name: str, dv: str | None = None) -> dict:
    return {"name": name, "dataVolume": {"name": dv or name}}


def container_disk(name: str = "containerdisk") -> dict:
    return {"name": name, "containerDisk": {"image": "quay.io/containerdisks/fedora:40"}}


def cloud_init(name: str = "cloudinitdisk") -> dict:
    return {
        "name": name,
        "cloudInitNoCloud": {"userData": "#cloud-config\npassword: fedora\nchpasswd: {expire: False}"},
    }


def _domain(
    cpu: dict | None,
    memory: str | None,
    requests_cpu: str | None,
    guest: str | None,
    interfaces: list[dict] | None,
    disks: list[str],
) -> dict:
    domain: dict[str, Any] = {
        "devices": {
            "disks": [{"name": d, "disk": {"bus": "virtio"}} for d in disks],
            "interfaces": interfaces if interfaces is not None else [{"name": "default", "masquerade": {}}],
        },
        "machine": {"type": "pc-q35-rhel9.2.0"},
        "resources": {"requests": {}},
    }
    if cpu is not None:
        domain["cpu"] = cpu
    if memory is not None:
        domain["resources"]["requests"]["memory"] = memory
    if requests_cpu is not None:
        domain["resources"]["requests"]["cpu"] = requests_cpu
    if guest is not None:
        domain["memory"] = {"guest": guest}
    return domain


def _cpu(sockets: int | None, cores: int | None, threads: int | None, dedicated: bool) -> dict | None:
    cpu: dict[str, Any] = {}
    for key, value in (("sockets", sockets), ("cores", cores), ("threads", threads)):
        if value is not None:
            cpu[key] = value
    if dedicated:
        cpu["dedicatedCpuPlacement"] = True
    return cpu or None


def vm(
    name: str,
    namespace: str = NS,
    *,
    eviction: str | None = None,
    volumes: list[dict] | None = None,
    data_volume_templates: list[dict] | None = None,
    networks: list[dict] | None = None,
    interfaces: list[dict] | None = None,
    sockets: int | None = None,
    cores: int | None = 2,
    threads: int | None = None,
    memory: str | None = "4Gi",
    run_strategy: str | None = "Always",
    labels: dict | None = None,
    annotations: dict | None = None,
) -> dict:
    """A VirtualMachine; volumes default to one containerDisk and a cloud-init disk."""
    vols = volumes if volumes is not None else [container_disk(), cloud_init()]
    template_spec: dict[str, Any] = {
        "domain": _domain(
            _cpu(sockets, cores, threads, False), memory, None, None, interfaces, [v["name"] for v in vols]
        ),
        "networks": networks if networks is not None else [{"name": "default", "pod": {}}],
        "volumes": vols,
        "terminationGracePeriodSeconds": 180,
    }
    if eviction is not None:
        template_spec["evictionStrategy"] = eviction
    spec: dict[str, Any] = {"template": {"metadata": {"labels": {"kubevirt.io/domain": name}}, "spec": template_spec}}
    if run_strategy is not None:
        spec["runStrategy"] = run_strategy
    if data_volume_templates is not None:
        spec["dataVolumeTemplates"] = data_volume_templates
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": _meta(name, namespace, labels={"app": name, **(labels or {})}, annotations=annotations),
        "spec": spec,
    }


def dv_template(
    name: str,
    *,
    api: str = "storage",
    access_modes: Iterable[str] | None = None,
    storage_class: str | None = None,
    volume_mode: str | None = None,
) -> dict:
    return {"metadata": {"name": name}, "spec": dv_spec(api, access_modes, storage_class, volume_mode)}


def vmi(
    name: str,
    namespace: str = NS,
    *,
    node: str | None = "worker-0",
    phase: str = "Running",
    sockets: int | None = None,
    cores: int | None = 2,
    threads: int | None = None,
    dedicated: bool = False,
    memory: str | None = "4Gi",
    guest: str | None = None,
    requests_cpu: str | None = None,
    volumes: list[dict] | None = None,
    volume_status: list[dict] | None = None,
    migration_configuration: dict | None = None,
    labels: dict | None = None,
    annotations: dict | None = None,
    eviction: str | None = None,
) -> dict:
    """A VirtualMachineInstance scheduled on `node` (None: not scheduled)."""
    vols = volumes if volumes is not None else [container_disk()]
    spec: dict[str, Any] = {
        "domain": _domain(
            _cpu(sockets, cores, threads, dedicated), memory, requests_cpu, guest, None, [v["name"] for v in vols]
        ),
        "networks": [{"name": "default", "pod": {}}],
        "volumes": vols,
    }
    if eviction is not None:
        spec["evictionStrategy"] = eviction
    status: dict[str, Any] = {
        "phase": phase,
        "migrationMethod": "LiveMigration",
        "conditions": [{"type": "Ready", "status": "True"}, {"type": "LiveMigratable", "status": "True"}],
    }
    if node is not None:
        status["nodeName"] = node
    if volume_status is not None:
        status["volumeStatus"] = volume_status
    if migration_configuration is not None:
        status["migrationState"] = {
            "startTimestamp": "2024-05-30T10:00:00Z",
            "endTimestamp": "2024-05-30T10:01:10Z",
            "sourceNode": "worker-9",
            "targetNode": node or "",
            "completed": True,
            "mode": "PreCopy",
            "migrationConfiguration": migration_configuration,
        }
    lbls = {"kubevirt.io/domain": name, **({"kubevirt.io/nodeName": node} if node else {}), **(labels or {})}
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstance",
        "metadata": _meta(name, namespace, labels=lbls, annotations=annotations),
        "spec": spec,
        "status": status,
    }


def volume_status(volume: str, claim: str | None, access_modes: Iterable[str] | None) -> dict:
    """One entry of a VMI's status.volumeStatus; claim None: not a PVC-backed volume."""
    entry: dict[str, Any] = {"name": volume, "target": "vda"}
    if claim is not None:
        info: dict[str, Any] = {
            "claimName": claim,
            "volumeMode": "Block",
            "capacity": {"storage": "30Gi"},
            "filesystemOverhead": "0",
        }
        if access_modes is not None:
            info["accessModes"] = list(access_modes)
        entry["persistentVolumeClaimInfo"] = info
    return entry


def kubevirt_cr(
    *,
    eviction_strategy: str | None = None,
    migrations: dict | None = None,
    cpu_ratio: int | None = None,
    memory_overcommit: int | None = None,
    namespace: str = "openshift-cnv",
    name: str = "kubevirt-kubevirt-hyperconverged",
) -> dict:
    configuration: dict[str, Any] = {"developerConfiguration": {"featureGates": ["Snapshot", "HotplugVolumes"]}}
    if eviction_strategy is not None:
        configuration["evictionStrategy"] = eviction_strategy
    if migrations is not None:
        configuration["migrations"] = migrations
    if cpu_ratio is not None:
        configuration["developerConfiguration"]["cpuAllocationRatio"] = cpu_ratio
    if memory_overcommit is not None:
        configuration["developerConfiguration"]["memoryOvercommit"] = memory_overcommit
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "KubeVirt",
        "metadata": _meta(name, namespace),
        "spec": {
            "certificateRotateStrategy": {},
            "configuration": configuration,
            "workloadUpdateStrategy": {"workloadUpdateMethods": ["LiveMigrate"]},
        },
        "status": {"phase": "Deployed", "observedKubeVirtVersion": "v1.2.2"},
    }


def hco(
    version: str = "v1beta1",
    *,
    eviction_strategy: str | None = None,
    cpu_ratio: int | None = None,
    memory_pct: int | None = None,
    live_migration: dict | None = None,
) -> dict:
    """A HyperConverged CR in the v1beta1 shape (settings at the top of spec) or the v1
    shape (under spec.virtualization)."""
    settings: dict[str, Any] = {}
    if live_migration is not None:
        settings["liveMigrationConfig"] = live_migration
    if eviction_strategy is not None:
        settings["evictionStrategy"] = eviction_strategy
    if memory_pct is not None:
        settings["higherWorkloadDensity"] = {"memoryOvercommitPercentage": memory_pct}
    if version == "v1beta1":
        spec: dict[str, Any] = {
            "featureGates": {"enableCommonBootImageImport": True},
            "infra": {},
            "workloads": {},
            **settings,
        }
        if cpu_ratio is not None:
            spec["resourceRequirements"] = {"vmiCPUAllocationRatio": cpu_ratio}
    elif version == "v1":
        if cpu_ratio is not None:
            settings["vmiCPUAllocationRatio"] = cpu_ratio
        spec = {"infra": {}, "workloads": {}, "virtualization": settings}
    else:
        raise ValueError(version)
    return {
        "apiVersion": f"hco.kubevirt.io/{version}",
        "kind": "HyperConverged",
        "metadata": _meta("kubevirt-hyperconverged", "openshift-cnv"),
        "spec": spec,
        "status": {"conditions": [{"type": "Available", "status": "True", "reason": "ReconcileCompleted"}]},
    }


def migration_policy(
    name: str,
    *,
    bandwidth: str | None = None,
    timeout: int | None = None,
    namespace_selector: dict | None = None,
    vmi_selector: dict | None = None,
) -> dict:
    selectors: dict[str, Any] = {}
    if namespace_selector is not None:
        selectors["namespaceSelector"] = namespace_selector
    if vmi_selector is not None:
        selectors["virtualMachineInstanceSelector"] = vmi_selector
    spec: dict[str, Any] = {"selectors": selectors, "allowAutoConverge": False}
    if bandwidth is not None:
        spec["bandwidthPerMigration"] = bandwidth
    if timeout is not None:
        spec["completionTimeoutPerGiB"] = timeout
    return {
        "apiVersion": "migrations.kubevirt.io/v1alpha1",
        "kind": "MigrationPolicy",
        "metadata": _meta(name),
        "spec": spec,
    }


# ---------------------------------------------------------------- networking


def nad(name: str, config: str | dict | None, namespace: str = NS) -> dict:
    """A NetworkAttachmentDefinition; a dict config is JSON-encoded, a str kept verbatim."""
    cfg = json.dumps(config) if isinstance(config, dict) else config
    spec = {"config": cfg} if cfg is not None else {}
    return {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": _meta(
            name, namespace, annotations={"k8s.v1.cni.cncf.io/resourceName": "bridge.network.kubevirt.io/br1"}
        ),
        "spec": spec,
    }


def bridge_config(name: str, bridge: str = "br1", mtu: int | None = None, cni_type: str = "cnv-bridge") -> dict:
    cfg: dict[str, Any] = {
        "cniVersion": "0.3.1",
        "name": name,
        "type": cni_type,
        "bridge": bridge,
        "macspoofchk": True,
        "ipam": {},
    }
    if mtu is not None:
        cfg["mtu"] = mtu
    return cfg


def iface(
    name: str,
    mtu: int | None,
    type: str = "ethernet",
    *,
    controller: str = "",
    ports: list[str] | None = None,
    state: str = "up",
) -> dict:
    entry: dict[str, Any] = {"name": name, "type": type, "state": state}
    if mtu is not None:
        entry["mtu"] = mtu
    if controller:
        entry["controller"] = controller
    if ports is not None:
        entry["bridge"] = {"options": {"stp": {"enabled": False}}, "port": [{"name": p} for p in ports]}
    return entry


def nns(node_name: str, interfaces: list[dict]) -> dict:
    return {
        "apiVersion": "nmstate.io/v1beta1",
        "kind": "NodeNetworkState",
        "metadata": _meta(node_name),
        "status": {
            "currentState": {"interfaces": interfaces, "routes": {"running": []}},
            "lastSuccessfulUpdateTime": "2024-05-30T10:00:00Z",
        },
    }


def cluster_network(mtu: int | None = 1400, network_type: str = "OVNKubernetes") -> dict:
    status: dict[str, Any] = {
        "networkType": network_type,
        "clusterNetwork": [{"cidr": "10.128.0.0/14", "hostPrefix": 23}],
        "serviceNetwork": ["172.30.0.0/16"],
    }
    if mtu is not None:
        status["clusterNetworkMTU"] = mtu
    return {
        "apiVersion": "config.openshift.io/v1",
        "kind": "Network",
        "metadata": _meta("cluster"),
        "spec": {"networkType": network_type},
        "status": status,
    }


def multus_network(name: str, network_name: str) -> dict:
    return {"name": name, "multus": {"networkName": network_name}}


def bridge_iface(name: str) -> dict:
    return {"name": name, "bridge": {}}


# ---------------------------------------------------------------- state, samples, config


def record_of(obj: dict, lenient: bool = False) -> tuple[Any, Any]:
    """(KindInfo, record) for one object dict; raises msgspec.ValidationError when convert does.
    lenient: a field that does not decode is dropped instead, as the loaders do."""
    kind = kind_for(obj["apiVersion"], obj["kind"])
    if kind is None:
        raise ValueError(f"not a kind the checks read: {obj['apiVersion']} {obj['kind']}")
    return kind, convert(kind.record, obj, [] if lenient else None)


def state(
    *objects: dict,
    samples: dict[str, list[UpstreamSample]] | None = None,
    now: float | None = None,
    lenient: bool = False,
) -> ClusterState:
    """`now`: the clock time-window checks judge at (None: they read the wall clock);
    `lenient`: fields that do not decode are dropped instead of failing the object."""
    return ClusterState.from_records([record_of(o, lenient) for o in objects], samples, now)


def metric(
    value: float,
    namespace: str = NS,
    name: str = "db",
    *,
    node: str = "worker-0",
    ts: float | None = 1717063200.0,
    label: str = "name",
) -> UpstreamSample:
    """A KubeVirt per-VMI sample (labels namespace, name, node)."""
    return UpstreamSample({"namespace": namespace, label: name, "node": node}, float(value), ts)


def config(**overrides: Any) -> Config:
    """Config with flag-style overrides: config(profile="dev-test", **{"threads-per-core": 1})."""
    return load_config(None, overrides=overrides)


def deep(obj: dict) -> dict:
    return copy.deepcopy(obj)


# ---------------------------------------------------------------- reading a check's output


def series(out: CheckOutput, family: str) -> dict[tuple[str, ...], float]:
    """labels -> value of one family (a duplicate series is an error)."""
    result: dict[tuple[str, ...], float] = {}
    for s in out.samples:
        if s.family == family:
            assert s.labels not in result, f"duplicate series {family}{s.labels}"
            result[s.labels] = s.value
    return result


def findings(out: CheckOutput | list[Finding], severity: Severity | None = None) -> list[Finding]:
    items = out.findings if isinstance(out, CheckOutput) else out
    return [f for f in items if severity is None or f.severity == severity]


def by_name(out: CheckOutput | list[Finding]) -> dict[str, list[Finding]]:
    items = out.findings if isinstance(out, CheckOutput) else out
    result: dict[str, list[Finding]] = {}
    for f in items:
        result.setdefault(f.obj.name, []).append(f)
    return result


def severities(out: CheckOutput | list[Finding]) -> dict[str, Severity]:
    """object name -> worst severity of its findings."""
    return {name: max(f.severity for f in fs) for name, fs in by_name(out).items()}


# ---------------------------------------------------------------- Trident and nmstate policies


def trident_backend(name: str, driver: str = "ontap-nas", namespace: str = "trident", **spec: Any) -> dict:
    """A TridentBackendConfig; keyword arguments go into spec as given (limitVolumeSize=...)."""
    body: dict[str, Any] = {
        "version": 1,
        "storageDriverName": driver,
        "managementLIF": "10.0.0.1",
        "svm": "svm0",
        "credentials": {"name": f"{name}-secret"},
    }
    body.update(spec)
    return {
        "apiVersion": "trident.netapp.io/v1",
        "kind": "TridentBackendConfig",
        "metadata": _meta(name, namespace),
        "spec": body,
        "status": {"phase": "Bound", "backendInfo": {"backendName": name}, "lastOperationStatus": "Success"},
    }


def nncp(name: str, interfaces: list[dict], node_selector: dict | None = None) -> dict:
    spec: dict[str, Any] = {"desiredState": {"interfaces": interfaces}}
    if node_selector is not None:
        spec["nodeSelector"] = node_selector
    return {
        "apiVersion": "nmstate.io/v1",
        "kind": "NodeNetworkConfigurationPolicy",
        "metadata": _meta(name),
        "spec": spec,
    }


def bond(name: str, ports: list[str], *, controller: str = "") -> dict:
    entry: dict[str, Any] = {
        "name": name,
        "type": "bond",
        "state": "up",
        "link-aggregation": {"mode": "active-backup", "port": ports},
    }
    if controller:
        entry["controller"] = controller
    return entry


# ---------------------------------------------------------------- migration readiness


def virt_handler_pod(
    node_name: str,
    *,
    ready: bool = True,
    namespace: str = "openshift-cnv",
    phase: str = "Running",
    label: str = "virt-handler",
) -> dict:
    """The virt-handler pod of a node (label kubevirt.io=<label>)."""
    status = "True" if ready else "False"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _meta(f"virt-handler-{node_name}", namespace, labels={"kubevirt.io": label}),
        "spec": {"nodeName": node_name},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": status}, {"type": "ContainersReady", "status": status}],
        },
    }


WORKLOAD_UPDATE = {"kubevirt.io/workloadUpdateMigration": ""}  # KubeVirt's workload updater (an upgrade)
REBALANCE = {"ov-exporter.openshift.io/rebalance": "batch-1"}  # a rebalance the user declares


def evacuation(node_name: str) -> dict:
    """The annotation KubeVirt's evacuation controller puts on the VMIMs of a node it evacuates."""
    return {"kubevirt.io/evacuationMigration": node_name}


def vmim(
    name: str,
    vmi_name: str,
    phase: str = "Running",
    namespace: str = NS,
    *,
    annotations: dict | None = None,
    created: str | None = None,
    start: str | None = None,
    end: str | None = None,
    source: str = "worker-1",
    target: str = "worker-0",
    priority: str | None = None,
) -> dict:
    """A VirtualMachineInstanceMigration in `phase`. `annotations`: WORKLOAD_UPDATE, evacuation(node),
    REBALANCE or none (a person or a tool); `start`/`end` (RFC 3339) fill status.migrationState."""
    status: dict[str, Any] = {"phase": phase}
    if start is not None or end is not None:
        ms: dict[str, Any] = {"sourceNode": source, "targetNode": target}
        if start is not None:
            ms["startTimestamp"] = start
        if end is not None:
            ms.update(endTimestamp=end, completed=True, failed=phase == "Failed")
        status["migrationState"] = ms
    meta = _meta(name, namespace, annotations=annotations)
    if created is not None:
        meta["creationTimestamp"] = created
    spec: dict[str, Any] = {"vmiName": vmi_name}
    if priority is not None:
        spec["priority"] = priority
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstanceMigration",
        "metadata": meta,
        "spec": spec,
        "status": status,
    }


# ---------------------------------------------------------------- metrics.k8s.io


def pod_metrics(
    vmi_name: str,
    namespace: str = NS,
    *,
    cpu: str | None = "500m",
    memory: str | None = "2Gi",
    created_by: str | None = "",
    pod: str | None = None,
    extra_container: bool = True,
) -> dict:
    """PodMetrics of the virt-launcher pod of `vmi_name`, as `oc get podmetrics -o json` gives it.
    created_by "" means the VMI's uid as the vmi() builder makes it; None leaves the label out.
    `cpu`/`memory` go to the compute container; a small guest-console-log container is added."""
    lbls = {"kubevirt.io": "virt-launcher", "vm.kubevirt.io/name": vmi_name, "kubevirt.io/domain": vmi_name}
    if created_by is not None:
        lbls["kubevirt.io/created-by"] = created_by or f"uid-{namespace}-{vmi_name}"
    usage = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    containers = [{"name": "compute", "usage": usage}]
    if extra_container:
        containers.append({"name": "guest-console-log", "usage": {"cpu": "0", "memory": "0"}})
    meta = _meta(pod or f"virt-launcher-{vmi_name}-abcde", namespace, labels=lbls)
    meta.pop("uid")  # PodMetrics carry no uid
    return {
        "apiVersion": "metrics.k8s.io/v1beta1",
        "kind": "PodMetrics",
        "metadata": meta,
        "timestamp": "2024-05-30T10:00:00Z",
        "window": "30s",
        "containers": containers,
    }
