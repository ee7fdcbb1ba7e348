"""Typed, trimmed records: one msgspec Struct per kind, holding only what checks read.

The same types are built from every source: decoded straight from JSON bytes (live
API, JSON files) or converted from YAML dicts. Field names follow the API (camelCase
through `rename`), so a record re-encodes to a valid, trimmed object. Every field is
optional: real dumps carry `null` and missing sections, and checks treat absence as
"unknown", never as an error. A field that does not decode ("abc" where a count
belongs, a bad quantity) is dropped and reported with its path; the rest of the object
is kept for the checks. Objects over the size or nesting limits are skipped whole.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Union

import msgspec
from msgspec import Meta, Struct, field

from .quantity import Quantity, parse_quantity

# Integer fields take the range of their upstream Go type (a value outside it cannot come
# from the API server). Every one we read is a count, ratio, timeout, weight or MTU, for
# which a negative value is meaningless: the lower bound is 0. Go `int` is 64-bit.
#   UInt32: KubeVirt CPU sockets/cores/threads, parallel*Migrations* (kubevirt/kubevirt v1.7.0
#           staging/src/kubevirt.io/api/core/v1/schema.go, types.go MigrationConfiguration)
#   Int64:  completionTimeoutPerGiB, progressTimeout (*int64), cpuAllocationRatio,
#           memoryOvercommit (int) (same files; migrations/v1alpha1/types.go); HCO
#           vmiCPUAllocationRatio, memoryOvercommitPercentage (int) (kubevirt/
#           hyperconverged-cluster-operator v1.18.1 api/v1/hyperconverged_types.go);
#           OpenShift clusterNetworkMTU and nmstate MTUs: not checked against an upstream
#           type here, given the widest bound
#   Int32:  weight, maxSkew (k8s.io/api core/v1 types.go, vendored in kubevirt v1.7.0)
UInt32 = Annotated[int, Meta(ge=0, le=2**32 - 1)]
Int32 = Annotated[int, Meta(ge=0, le=2**31 - 1)]
Int64 = Annotated[int, Meta(ge=0, le=2**63 - 1)]
Labels = dict[str, str]
Number = Union[int, float]


class R(Struct, rename="camel", omit_defaults=True, gc=False):
    """Base of all record types. gc=False: records hold no reference cycles, so they
    need no GC header (less memory, faster collections with 10^5 records)."""


# ---------------------------------------------------------------- metadata


class OwnerRef(R):
    kind: str = ""
    name: str = ""


class ObjectMeta(R):
    name: str = ""
    namespace: str = ""
    uid: str = ""
    resource_version: str = ""
    labels: Labels | None = None
    annotations: Labels | None = None
    owner_references: list[OwnerRef] | None = None


class Condition(R):
    type: str = ""
    status: str = ""
    reason: str = ""
    message: str = ""


class Taint(R):
    key: str = ""
    value: str = ""
    effect: str = ""


# ---------------------------------------------------------------- core


class NodeInfo(R):
    os_image: str = ""
    kernel_version: str = ""


class NodeSpec(R):
    taints: list[Taint] | None = None
    unschedulable: bool = False
    provider_id: str = field(default="", name="providerID")


class NodeStatus(R):
    capacity: dict[str, Quantity] | None = None
    allocatable: dict[str, Quantity] | None = None
    node_info: NodeInfo | None = None
    conditions: list[Condition] | None = None


class Node(R):
    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    spec: NodeSpec | None = None
    status: NodeStatus | None = None


class Namespace(R):
    metadata: ObjectMeta = field(default_factory=ObjectMeta)


class PVCSpec(R):
    access_modes: list[str] | None = None
    storage_class_name: str | None = None
    volume_mode: str | None = None
    volume_name: str = ""


class PVCStatus(R):
    phase: str = ""
    access_modes: list[str] | None = None


class PersistentVolumeClaim(R):
    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    spec: PVCSpec | None = None
    status: PVCStatus | None = None


class StorageClass(R):
    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    provisioner: str = ""


# ---------------------------------------------------------------- CDI


class DataVolumeSpec(R):
    pvc: PVCSpec | None = None
    storage: PVCSpec | None = None


class DataVolumeStatus(R):
    phase: str = ""


class DataVolume(R):
    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    spec: DataVolumeSpec | None = None
    status: DataVolumeStatus | None = None


class ClaimPropertySet(R):
    access_modes: list[str] | None = None
    volume_mode: str | None = None


class StorageProfileStatus(R):
    storage_class: str = ""
    provisioner: str = ""
    claim_property_sets: list[ClaimPropertySet] | None = None


class StorageProfileSpec(R):
    claim_property_sets: list[ClaimPropertySet] | None = None


class StorageProfile(R):
    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    spec: StorageProfileSpec | None = None
    status: StorageProfileStatus | None = None


# ---------------------------------------------------------------- KubeVirt


class CPU(R):
    sockets: UInt32 | None = None
    cores: UInt32 | None = None
    threads: UInt32 | None = None
    dedicated_cpu_placement: bool = False
    model: str = ""


class Memory(R):
    guest: Quantity | None = None


class Resources(R):
    requests: dict[str, Quantity] | None = None
    limits: dict[str, Quantity] | None = None


class Interface(R):
    name: str = ""
    masquerade: dict[str, Any] | None = None
    bridge: dict[str, Any] | None = None
    sriov: dict[str, Any] | None = None
    passt: dict[str, Any] | None = None
    binding: dict[str, Any] | None = None


class Devices(R):
    interfaces: list[Interface] | None = None


class Domain(R):
    cpu: CPU | None = None
    memory: Memory | None = None
    resources: Resources | None = None
    devices: Devices | None = None


class ClaimRef(R):
    claim_name: str = ""


class DataVolumeRef(R):
    name: str = ""


class Volume(R):
    name: str = ""
    persistent_volume_claim: ClaimRef | None = None
    data_volume: DataVolumeRef | None = None
    # containerDisk, cloudInit*, emptyDisk, ...: not kept (never block live migration;
    # cloud-init user data may hold secrets).


class MultusRef(R):
    network_name: str = ""
    default: bool = False


class Network(R):
    name: str = ""
    pod: dict[str, Any] | None = None
    multus: MultusRef | None = None


class LabelSelectorRequirement(R):
    key: str = ""
    operator: str = ""
    values: list[str] | None = None


class LabelSelector(R):
    match_labels: Labels | None = None
    match_expressions: list[LabelSelectorRequirement] | None = None


class NodeSelectorTerm(R):
    match_expressions: list[LabelSelectorRequirement] | None = None
    match_fields: list[LabelSelectorRequirement] | None = None


class NodeSelector(R):
    node_selector_terms: list[NodeSelectorTerm] | None = None


class PreferredSchedulingTerm(R):
    weight: Int32 | None = None
    preference: NodeSelectorTerm | None = None


class NodeAffinity(R):
    required_during_scheduling_ignored_during_execution: NodeSelector | None = None
    preferred_during_scheduling_ignored_during_execution: list[PreferredSchedulingTerm] | None = None


class PodAffinityTerm(R):
    topology_key: str = ""
    label_selector: LabelSelector | None = None


class WeightedPodAffinityTerm(R):
    weight: Int32 | None = None
    pod_affinity_term: PodAffinityTerm | None = None


class PodAffinity(R):
    """podAffinity and podAntiAffinity share this shape."""

    required_during_scheduling_ignored_during_execution: list[PodAffinityTerm] | None = None
    preferred_during_scheduling_ignored_during_execution: list[WeightedPodAffinityTerm] | None = None


class Affinity(R):
    node_affinity: NodeAffinity | None = None
    pod_affinity: PodAffinity | None = None
    pod_anti_affinity: PodAffinity | None = None


class Toleration(R):
    key: str = ""
    operator: str = ""
    value: str = ""
    effect: str = ""


class TopologySpreadConstraint(R):
    max_skew: Int32 | None = None
    topology_key: str = ""
    when_unsatisfiable: str = ""


class VMISpec(R):
    domain: Domain | None = None
    volumes: list[Volume] | None = None
    networks: list[Network] | None = None
    eviction_strategy: str | None = None
    node_selector: Labels | None = None
    affinity: Affinity | None = None
    tolerations: list[Toleration] | None = None
    topology_spread_constraints: list[TopologySpreadConstraint] | None = None


class TemplateMeta(R):
    labels: Labels | None = None


class VMTemplate(R):
    metadata: TemplateMeta | None = None
    spec: VMISpec | None = None


class DataVolumeTemplate(R):
    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    spec: DataVolumeSpec | None = None


class Matcher(R):
    name: str = ""
    kind: str = ""


class VMSpec(R):
    running: bool | None = None
    run_strategy: str | None = None
    instancetype: Matcher | None = None
    template: VMTemplate | None = None
    data_volume_templates: list[DataVolumeTemplate] | None = None


class VirtualMachine(R):
    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    spec: VMSpec | None = None


class MigrationConfiguration(R):
    bandwidth_per_migration: Quantity | None = None
    completion_timeout_per_gib: Int64 | None = field(default=None, name="completionTimeoutPerGiB")
    parallel_outbound_migrations_per_node: UInt32 | None = None
    parallel_migrations_per_cluster: UInt32 | None = None
    progress_timeout: Int64 | None = None
    allow_auto_converge: bool | None = None
    allow_post_copy: bool | None = None
    network: str | None = None


class MigrationState(R):
    start_timestamp: datetime | None = None
    end_timestamp: datetime | None = None
    source_node: str = ""
    target_node: str = ""
    completed: bool = False
    failed: bool = False
    mode: str = ""
    migration_configuration: MigrationConfiguration | None = None


class PVCInfo(R):
    claim_name: str = ""
    access_modes: list[str] | None = None
    volume_mode: str | None = None


class VolumeStatus(R):
    name: str = ""
    persistent_volume_claim_info: PVCInfo | None = None


class CPUTopology(R):
    sockets: UInt32 | None = None
    cores: UInt32 | None = None
    threads: UInt32 | None = None


class MemoryStatus(R):
    guest_current: Quantity | None = None


class PhaseTransition(R):
    phase: str = ""
    phase_transition_timestamp: datetime | None = None


class VMIStatus(R):
    node_name: str = ""
    phase: str = ""
    migration_method: str = ""
    conditions: list[Condition] | None = None
    volume_status: list[VolumeStatus] | None = None
    migration_state: MigrationState | None = None
    current_cpu_topology: CPUTopology | None = field(default=None, name="currentCPUTopology")
    memory: MemoryStatus | None = None
    phase_transition_timestamps: list[PhaseTransition] | None = None


class VirtualMachineInstance(R):
    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    spec: VMISpec | None = None
    status: VMIStatus | None = None


class VMIMMeta(ObjectMeta):
    creation_timestamp: datetime | None = None


class VMIMSpec(R):
    vmi_name: str = ""
    # system-critical | user-triggered | system-maintenance (KubeVirt >= 1.7 with the
    # MigrationPriorityQueue feature gate, GA in 1.9: staging/src/kubevirt.io/api/core/v1/types.go).
    priority: str = ""


class VMIMStatus(R):
    phase: str = ""
    migration_state: MigrationState | None = None
    phase_transition_timestamps: list[PhaseTransition] | None = None


class VirtualMachineInstanceMigration(R):
    metadata: VMIMMeta = field(default_factory=VMIMMeta)
    spec: VMIMSpec | None = None
    status: VMIMStatus | None = None


class MigrationSelectors(R):
    """KubeVirt's v1alpha1 selectors are flat label maps; a `matchLabels` wrapper (seen in
    some hand-written manifests) is accepted too. Kept loose so neither sinks the object."""

    namespace_selector: dict[str, Any] | None = None
    virtual_machine_instance_selector: dict[str, Any] | None = None


class MigrationPolicySpec(R):
    selectors: MigrationSelectors | None = None
    bandwidth_per_migration: Quantity | None = None
    completion_timeout_per_gib: Int64 | None = field(default=None, name="completionTimeoutPerGiB")
    allow_auto_converge: bool | None = None
    allow_post_copy: bool | None = None


class MigrationPolicy(R):
    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    spec: MigrationPolicySpec | None = None


class DeveloperConfiguration(R):
    cpu_allocation_ratio: Int64 | None = None
    memory_overcommit: Int64 | None = None


class KubeVirtConfiguration(R):
    migrations: MigrationConfiguration | None = None
    eviction_strategy: str | None = None
    developer_configuration: DeveloperConfiguration | None = None
    auto_cpu_limit_namespace_label_selector: LabelSelector | None = field(
        default=None, name="autoCPULimitNamespaceLabelSelector")


class KubeVirtSpec(R):
    configuration: KubeVirtConfiguration | None = None


class KubeVirtStatus(R):
    # kubevirt/kubevirt staging/src/kubevirt.io/api/core/v1/types.go (v1.3.0, v1.9.0): KubeVirtStatus
    observed_kube_virt_version: str = field(default="", name="observedKubeVirtVersion")


class KubeVirt(R):
    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    spec: KubeVirtSpec | None = None
    status: KubeVirtStatus | None = None


# ---------------------------------------------------------------- HCO (v1beta1 and v1 shapes)


class HCOResourceRequirements(R):
    vmi_cpu_allocation_ratio: Int64 | None = field(default=None, name="vmiCPUAllocationRatio")
    auto_cpu_limit_namespace_label_selector: LabelSelector | None = field(
        default=None, name="autoCPULimitNamespaceLabelSelector")


class HigherWorkloadDensity(R):
    memory_overcommit_percentage: Int64 | None = None


class HCOVirtualization(R):
    """`spec.virtualization` of HCO v1."""

    live_migration_config: MigrationConfiguration | None = None
    vmi_cpu_allocation_ratio: Int64 | None = field(default=None, name="vmiCPUAllocationRatio")
    higher_workload_density: HigherWorkloadDensity | None = None
    eviction_strategy: str | None = None
    auto_cpu_limit_namespace_label_selector: LabelSelector | None = field(
        default=None, name="autoCPULimitNamespaceLabelSelector")


class HyperConvergedSpec(R):
    live_migration_config: MigrationConfiguration | None = None
    resource_requirements: HCOResourceRequirements | None = None
    higher_workload_density: HigherWorkloadDensity | None = None
    eviction_strategy: str | None = None
    virtualization: HCOVirtualization | None = None


class HCOVersion(R):
    name: str = ""
    version: str = ""


class HyperConvergedStatus(R):
    # kubevirt/hyperconverged-cluster-operator api/v1beta1 and api/v1 hyperconverged_types.go
    # (v1.12.0, v1.18.1): status.versions, the entry named "operator" is HCO's own version.
    versions: list[HCOVersion] | None = None


class HyperConverged(R):
    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    spec: HyperConvergedSpec | None = None
    status: HyperConvergedStatus | None = None


# ---------------------------------------------------------------- networking


class NetworkAttachmentDefinitionSpec(R):
    config: str | None = None


class NetworkAttachmentDefinition(R):
    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    spec: NetworkAttachmentDefinitionSpec | None = None


class PortRef(R):
    name: str = ""


class BridgeInfo(R):
    port: list[PortRef] | None = None


class NNSInterface(R):
    name: str = ""
    type: str = ""
    state: str = ""
    mtu: Int64 | None = None
    controller: str = ""
    bridge: BridgeInfo | None = None
    link_aggregation: "LinkAggregation | None" = field(default=None, name="link-aggregation")


class NetworkState(R):
    interfaces: list[NNSInterface] | None = None


class NodeNetworkStateStatus(R):
    current_state: NetworkState | None = None


class NodeNetworkState(R):
    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    status: NodeNetworkStateStatus | None = None


class ClusterNetworkStatus(R):
    network_type: str = ""
    cluster_network_mtu: Int64 | None = field(default=None, name="clusterNetworkMTU")


class ClusterNetworkSpec(R):
    network_type: str = ""


class ClusterNetwork(R):
    """Network.config.openshift.io (name `cluster`)."""

    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    spec: ClusterNetworkSpec | None = None
    status: ClusterNetworkStatus | None = None


# ---------------------------------------------------------------- Trident and nmstate policies


# A limit is a quantity string ("100Gi", "80%"); YAML may give a bare number. Kept raw:
# the check parses it, so a bad value is a finding on the backend, not a load failure.
TridentLimit = Union[str, int, float]


class TridentLimits(R):
    """The limit fields, as they may (wrongly) appear under spec.defaults or spec.storage[]."""

    limit_volume_size: TridentLimit | None = None
    limit_volume_pool_size: TridentLimit | None = None
    limit_aggregate_usage: TridentLimit | None = None


class TridentBackendConfigSpec(R):
    storage_driver_name: str = ""
    backend_name: str = ""
    limit_volume_size: TridentLimit | None = None
    limit_volume_pool_size: TridentLimit | None = None
    limit_aggregate_usage: TridentLimit | None = None
    defaults: TridentLimits | None = None
    storage: list[TridentLimits] | None = None


class TridentBackendInfo(R):
    backend_name: str = ""


class TridentBackendConfigStatus(R):
    phase: str = ""
    backend_info: TridentBackendInfo | None = None


class TridentBackendConfig(R):
    """TridentBackendConfig (trident.netapp.io/v1, namespaced)."""

    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    spec: TridentBackendConfigSpec | None = None
    status: TridentBackendConfigStatus | None = None


class LinkAggregation(R):
    port: list[str] | None = None


class NNCPInterface(R):
    name: str = ""
    type: str = ""
    state: str = ""
    bridge: BridgeInfo | None = None
    link_aggregation: LinkAggregation | None = field(default=None, name="link-aggregation")


class NNCPDesiredState(R):
    interfaces: list[NNCPInterface] | None = None


class NNCPSpec(R):
    node_selector: Labels | None = None
    desired_state: NNCPDesiredState | None = None


class NodeNetworkConfigurationPolicy(R):
    """NodeNetworkConfigurationPolicy (nmstate.io/v1, cluster-scoped)."""

    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    spec: NNCPSpec | None = None
# ---------------------------------------------------------------- pods (virt-handler only)


class PodSpec(R):
    node_name: str = ""


class PodStatus(R):
    phase: str = ""
    conditions: list[Condition] | None = None


class Pod(R):
    """Only virt-handler pods are read (KindInfo.label_selector)."""

    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    spec: PodSpec | None = None
    status: PodStatus | None = None
# ---------------------------------------------------------------- metrics.k8s.io


class ContainerMetrics(R):
    name: str = ""
    usage: dict[str, Quantity] | None = None  # cpu (cores, e.g. "250m", "1234567n"), memory (bytes)


class PodMetrics(R):
    """metrics.k8s.io/v1beta1 PodMetrics of a virt-launcher pod: the pod's labels
    (kubevirt.io/created-by = VMI uid, vm.kubevirt.io/name) and per-container usage."""

    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    timestamp: str = ""
    window: str = ""
    containers: list[ContainerMetrics] | None = None
# ---------------------------------------------------------------- node remediation (Machine API, medik8s)


class MachineNodeRef(R):
    name: str = ""


class MachineStatus(R):
    node_ref: MachineNodeRef | None = None
    phase: str = ""


class Machine(R):
    """Machine.machine.openshift.io: its labels carry the MachineSet and the role."""

    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    status: MachineStatus | None = None


class MachineHealthCheckSpec(R):
    selector: LabelSelector | None = None
    max_unhealthy: int | str | None = None  # IntOrString: 2 or "40%"


class MachineHealthCheck(R):
    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    spec: MachineHealthCheckSpec | None = None


class NodeHealthCheckSpec(R):
    selector: LabelSelector | None = None  # over Node labels
    min_healthy: int | str | None = None
    max_unhealthy: int | str | None = None
    pause_requests: list[str] | None = None


class NodeHealthCheck(R):
    """NodeHealthCheck.remediation.medik8s.io (Node Health Check operator)."""

    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    spec: NodeHealthCheckSpec | None = None


# ---------------------------------------------------------------- the kind table


@dataclass(frozen=True, slots=True)
class KindInfo:
    """One Kubernetes kind the checks read. `key` is `plural.group` (plural for core)."""

    kind: str
    group: str  # "" for the core API
    versions: tuple[str, ...]  # preferred first
    plural: str
    namespaced: bool
    record: type
    optional: bool  # an optional API: absent on some clusters
    # Only objects with these labels are read (passed as labelSelector to LIST and WATCH);
    # "" reads them all.
    label_selector: str = ""
    # An aggregated API without WATCH (metrics.k8s.io): the live source LISTs it periodically.
    watchable: bool = True

    @property
    def key(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def singular(self) -> str:
        return self.kind.lower()


KINDS: tuple[KindInfo, ...] = (
    KindInfo("Node", "", ("v1",), "nodes", False, Node, False),
    KindInfo("Namespace", "", ("v1",), "namespaces", False, Namespace, False),
    KindInfo("PersistentVolumeClaim", "", ("v1",), "persistentvolumeclaims", True, PersistentVolumeClaim, False),
    KindInfo("StorageClass", "storage.k8s.io", ("v1",), "storageclasses", False, StorageClass, False),
    KindInfo("VirtualMachine", "kubevirt.io", ("v1", "v1alpha3"), "virtualmachines", True, VirtualMachine, False),
    KindInfo("VirtualMachineInstance", "kubevirt.io", ("v1", "v1alpha3"), "virtualmachineinstances", True, VirtualMachineInstance, False),
    KindInfo("VirtualMachineInstanceMigration", "kubevirt.io", ("v1", "v1alpha3"), "virtualmachineinstancemigrations", True, VirtualMachineInstanceMigration, False),
    KindInfo("KubeVirt", "kubevirt.io", ("v1", "v1alpha3"), "kubevirts", True, KubeVirt, False),
    KindInfo("MigrationPolicy", "migrations.kubevirt.io", ("v1alpha1",), "migrationpolicies", False, MigrationPolicy, True),
    KindInfo("HyperConverged", "hco.kubevirt.io", ("v1beta1", "v1"), "hyperconvergeds", True, HyperConverged, True),
    KindInfo("DataVolume", "cdi.kubevirt.io", ("v1beta1",), "datavolumes", True, DataVolume, True),
    KindInfo("StorageProfile", "cdi.kubevirt.io", ("v1beta1",), "storageprofiles", False, StorageProfile, True),
    KindInfo("NetworkAttachmentDefinition", "k8s.cni.cncf.io", ("v1",), "network-attachment-definitions", True, NetworkAttachmentDefinition, True),
    KindInfo("NodeNetworkState", "nmstate.io", ("v1beta1", "v1"), "nodenetworkstates", False, NodeNetworkState, True),
    KindInfo("Network", "config.openshift.io", ("v1",), "networks", False, ClusterNetwork, True),
    KindInfo("TridentBackendConfig", "trident.netapp.io", ("v1",), "tridentbackendconfigs", True, TridentBackendConfig, True),
    KindInfo("NodeNetworkConfigurationPolicy", "nmstate.io", ("v1", "v1beta1"), "nodenetworkconfigurationpolicies", False, NodeNetworkConfigurationPolicy, True),
    KindInfo("Pod", "", ("v1",), "pods", True, Pod, False, label_selector="kubevirt.io=virt-handler"),
    KindInfo("PodMetrics", "metrics.k8s.io", ("v1beta1",), "pods", True, PodMetrics, True,
             watchable=False, label_selector="kubevirt.io=virt-launcher"),
    KindInfo("Machine", "machine.openshift.io", ("v1beta1",), "machines", True, Machine, True),
    KindInfo("MachineHealthCheck", "machine.openshift.io", ("v1beta1",), "machinehealthchecks", True, MachineHealthCheck, True),
    KindInfo("NodeHealthCheck", "remediation.medik8s.io", ("v1alpha1",), "nodehealthchecks", False, NodeHealthCheck, True),
)
KIND_BY_KEY = {k.key: k for k in KINDS}


def selector_matches(selector: str, labels: dict[str, str] | None) -> bool:
    """An equality-based label selector ("k=v,k2!=v2", as KindInfo.label_selector holds)
    against an object's labels: the files sources filter the way the API server does."""
    labels = labels or {}
    for term in filter(None, (t.strip() for t in selector.split(","))):
        key, op, value = term.partition("!=") if "!=" in term else term.replace("==", "=").partition("=")
        key, value = key.strip(), value.strip()
        if op == "!=":
            if labels.get(key) == value:
                return False
        elif not op:
            if key not in labels:
                return False
        elif labels.get(key) != value:
            return False
    return True
KIND_BY_GROUP_KIND = {(k.group, k.kind): k for k in KINDS}


def kind_for(api_version: str, kind: str) -> KindInfo | None:
    """The KindInfo for an object's apiVersion and kind, or None when not ours."""
    group = api_version.rpartition("/")[0] if "/" in api_version else ""
    return KIND_BY_GROUP_KIND.get((group, kind))


# ---------------------------------------------------------------- decoding

# Per-object limits. The API server refuses request bodies over 3 MiB (k8s.io/apiserver
# default MaxRequestBodyBytes, vendored in kubevirt/kubevirt v1.7.0
# vendor/k8s.io/apimachinery/pkg/runtime/serializer/cbor/internal/modes/buffers.go), so a
# bigger object cannot come from a real cluster. Nesting: the deepest typed path we read
# is about 15 levels; free-form fields (an NNCP's desiredState) may go deeper, never 100s.
MAX_OBJECT_BYTES = 3 * 2**20
MAX_DEPTH = 200
MAX_DROPPED_FIELDS = 20  # more bad fields than this: the object is not worth judging


class ObjectLimitError(msgspec.ValidationError):
    """An object over the size or nesting limit: skipped whole, never decoded."""


def _dec_hook(type_: type, obj: Any) -> Any:
    if type_ is Quantity:
        return Quantity(parse_quantity(obj))
    raise NotImplementedError(f"cannot decode {type_!r}")


_json_decoders: dict[type, msgspec.json.Decoder] = {}


def _strip_nulls(obj: Any) -> Any:
    """A copy without `key: null` entries at any depth (dumps carry nulls where the API
    omits a field). Callers bound the depth first (`_check_depth`)."""
    if isinstance(obj, dict):
        return {k: _strip_nulls(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_strip_nulls(v) for v in obj]
    return obj


def _check_depth(obj: Any) -> None:
    """Raise ObjectLimitError when containers nest deeper than MAX_DEPTH (no recursion)."""
    stack = [(obj, 1)]
    seen: set[int] = set()  # YAML aliases share containers: visit each once
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ObjectLimitError(f"nested more than {MAX_DEPTH} levels deep; object skipped")
        if id(node) in seen:
            continue
        seen.add(id(node))
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)) and c)


def decode_json(record: type, data: bytes, dropped: list[str] | None = None) -> Any:
    """Decode one object's JSON bytes into its record.

    Raises msgspec.ValidationError (message ends with the field path, e.g. "- at
    `$.spec.domain.cpu.cores`"); ObjectLimitError (a ValidationError) for an object over
    MAX_OBJECT_BYTES or nested beyond the decoder's recursion limit. With `dropped`, a
    field that does not decode is removed instead and described in `dropped`, so the
    rest of the object can still be judged (see `convert`)."""
    if len(data) > MAX_OBJECT_BYTES:
        raise ObjectLimitError(f"object is {len(data)} bytes, over the {MAX_OBJECT_BYTES}-byte limit; skipped")
    decoder = _json_decoders.get(record)
    if decoder is None:
        decoder = _json_decoders[record] = msgspec.json.Decoder(record, dec_hook=_dec_hook, strict=False)
    try:
        return decoder.decode(data)
    except RecursionError:
        raise ObjectLimitError("nested too deeply to decode; object skipped") from None
    except msgspec.ValidationError:
        pass
    # Slow path, only for odd objects: nulls, or fields that do not decode.
    try:
        obj = msgspec.json.decode(data)
    except RecursionError:
        raise ObjectLimitError("nested too deeply to decode; object skipped") from None
    except msgspec.ValidationError as exc:  # a number out of msgspec's range (1e400, 10**400)
        try:
            # turns those into inf or int (inf past Python's int-string limit), for convert to judge per field
            obj = json.loads(data, parse_int=lambda text: int(text) if len(text) < 4000 else math.inf)
        except (ValueError, RecursionError):
            raise exc from None
    return convert(record, obj, dropped)


def convert(record: type, obj: Any, dropped: list[str] | None = None) -> Any:
    """Convert one object's dict (from YAML) into its record; same errors as decode_json.

    A null where a field belongs means absent. With `dropped`, each field that fails
    (a string where a count belongs, a bad quantity) is removed and described there
    ("`$.status.capacity.cpu`: invalid quantity 'abc'"), up to MAX_DROPPED_FIELDS."""
    _check_depth(obj)
    try:
        return msgspec.convert(obj, record, dec_hook=_dec_hook, strict=False)
    except msgspec.ValidationError as exc:
        error = exc
    obj = _strip_nulls(obj)  # a copy: dropping fields never touches the caller's (maybe shared) data
    while True:
        try:
            return msgspec.convert(obj, record, dec_hook=_dec_hook, strict=False)
        except msgspec.ValidationError as exc:
            error = exc
        if dropped is None or len(dropped) >= MAX_DROPPED_FIELDS:
            raise error
        where = _drop_failing_field(record, obj, error)
        if where is None:
            raise error
        dropped.append(f"`{where}`: {str(error).rpartition(' - at ')[0] or error}")


_PATH = re.compile(r" - at `(?:key` in `)?(\$[^`]*)`$")
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")


def _drop_failing_field(record: type, obj: Any, error: msgspec.ValidationError) -> str | None:
    """Remove the field an error points at from obj (in place); return its path, or
    None when the error is about the object itself."""
    match = _PATH.search(str(error))
    if match is None:
        return None
    steps: list[str | int] = []
    for key, index in _STEP.findall(match.group(1)[1:]):
        steps.append(key if key else (int(index) if index.isdigit() else "..."))
    if not steps:
        return None
    if "key` in `" in str(error):
        steps.append("...")  # a map key of the wrong type: find the entry below
    parent: Any = obj
    for step in steps[:-1]:
        if step == "...":
            return None  # a map value inside a map value: not in our records
        try:
            parent = parent[step]
        except (KeyError, IndexError, TypeError):
            return None
    last = steps[-1]
    if last == "...":  # msgspec does not name the map key: find the entry that fails
        last = _failing_entry(record, obj, parent, str(error))
        if last is None:
            return None
    try:
        del parent[last]
    except (KeyError, IndexError, TypeError):
        return None
    path = "$" + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in steps[:-1])
    return path + (f"[{last}]" if isinstance(last, int) else f".{last}")


def _failing_entry(record: type, obj: Any, mapping: Any, message: str) -> Any:
    if not isinstance(mapping, dict):
        return None
    entries = dict(mapping)
    try:
        for key, value in entries.items():
            mapping.clear()
            mapping[key] = value
            try:
                msgspec.convert(obj, record, dec_hook=_dec_hook, strict=False)
            except msgspec.ValidationError as exc:
                if str(exc) == message:
                    return key
        return None
    finally:
        mapping.clear()
        mapping.update(entries)


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, Quantity):
        return float(obj)
    raise NotImplementedError(f"cannot encode {type(obj)!r}")


def to_builtins(record: Any) -> Any:
    """A record as plain dicts (for snapshot export and tests)."""
    return msgspec.to_builtins(record, enc_hook=_enc_hook)
