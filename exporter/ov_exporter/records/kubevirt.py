"""KubeVirt (kubevirt.io, migrations.kubevirt.io): VM, VMI, migrations, policies, the KubeVirt CR."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from msgspec import field

from ..quantity import Quantity
from .base import Int32, Int64, Labels, R, UInt32, intern, interned_list, shared_map, shared_part
from .cdi import DataVolumeSpec
from .meta import Condition, ObjectMeta, VersionedMeta


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

    def __post_init__(self) -> None:
        self.requests, self.limits = shared_map(self.requests), shared_map(self.limits)


class Interface(R):
    name: str = ""
    masquerade: dict[str, Any] | None = None
    bridge: dict[str, Any] | None = None
    sriov: dict[str, Any] | None = None
    passt: dict[str, Any] | None = None
    binding: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.name = intern(self.name)


class Devices(R):
    interfaces: list[Interface] | None = None


class Domain(R):
    cpu: CPU | None = None
    memory: Memory | None = None
    resources: Resources | None = None
    devices: Devices | None = None


# Names a VM shares with its VMI, PVCs and DataVolumes (and "rootdisk", "default" on
# every VM) are interned: one string for all of them.
class ClaimRef(R):
    claim_name: str = ""

    def __post_init__(self) -> None:
        self.claim_name = intern(self.claim_name)


class DataVolumeRef(R):
    name: str = ""

    def __post_init__(self) -> None:
        self.name = intern(self.name)


class Volume(R):
    name: str = ""
    persistent_volume_claim: ClaimRef | None = None
    data_volume: DataVolumeRef | None = None
    # containerDisk, cloudInit*, emptyDisk, ...: not kept (never block live migration;
    # cloud-init user data may hold secrets).

    def __post_init__(self) -> None:
        self.name = intern(self.name)


class MultusRef(R):
    network_name: str = ""
    default: bool = False

    def __post_init__(self) -> None:
        self.network_name = intern(self.network_name)


class Network(R):
    name: str = ""
    pod: dict[str, Any] | None = None
    multus: MultusRef | None = None

    def __post_init__(self) -> None:
        self.name = intern(self.name)


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
    label_selector: LabelSelector | None = None  # the pods counted (the placement test)


class VMISpec(R):
    domain: Domain | None = None
    volumes: list[Volume] | None = None
    networks: list[Network] | None = None
    eviction_strategy: str | None = None
    node_selector: Labels | None = None
    affinity: Affinity | None = None
    tolerations: list[Toleration] | None = None
    topology_spread_constraints: list[TopologySpreadConstraint] | None = None

    def __post_init__(self) -> None:
        if self.eviction_strategy:
            self.eviction_strategy = intern(self.eviction_strategy)
        self.node_selector = shared_map(self.node_selector)
        self.domain, self.networks = shared_part("domain", self.domain), shared_part("networks", self.networks)


class TemplateMeta(R):
    labels: Labels | None = None

    def __post_init__(self) -> None:
        self.labels = shared_map(self.labels)


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

    def __post_init__(self) -> None:
        if self.run_strategy:
            self.run_strategy = intern(self.run_strategy)


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

    def __post_init__(self) -> None:
        self.source_node, self.target_node = intern(self.source_node), intern(self.target_node)
        self.mode = intern(self.mode)


class PVCInfo(R):
    claim_name: str = ""
    access_modes: list[str] | None = None
    volume_mode: str | None = None

    def __post_init__(self) -> None:
        self.claim_name, self.access_modes = intern(self.claim_name), interned_list(self.access_modes)
        if self.volume_mode:
            self.volume_mode = intern(self.volume_mode)


class VolumeStatus(R):
    name: str = ""
    persistent_volume_claim_info: PVCInfo | None = None

    def __post_init__(self) -> None:
        self.name = intern(self.name)


class CPUTopology(R):
    sockets: UInt32 | None = None
    cores: UInt32 | None = None
    threads: UInt32 | None = None


class MemoryStatus(R):
    guest_current: Quantity | None = None


class PhaseTransition(R):
    phase: str = ""
    phase_transition_timestamp: datetime | None = None

    def __post_init__(self) -> None:
        self.phase = intern(self.phase)


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

    def __post_init__(self) -> None:
        self.node_name, self.phase = intern(self.node_name), intern(self.phase)
        self.migration_method = intern(self.migration_method)
        self.conditions = shared_part("VMI conditions", self.conditions)
        self.current_cpu_topology = shared_part("CPU topology", self.current_cpu_topology)
        self.memory = shared_part("memory status", self.memory)


class VirtualMachineInstance(R):
    metadata: VersionedMeta = field(default_factory=VersionedMeta)
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

    def __post_init__(self) -> None:
        self.phase = intern(self.phase)


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
        default=None, name="autoCPULimitNamespaceLabelSelector"
    )


class KubeVirtSpec(R):
    configuration: KubeVirtConfiguration | None = None


class KubeVirtStatus(R):
    # kubevirt/kubevirt staging/src/kubevirt.io/api/core/v1/types.go (v1.3.0, v1.9.0): KubeVirtStatus
    observed_kube_virt_version: str = field(default="", name="observedKubeVirtVersion")


class KubeVirt(R):
    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    spec: KubeVirtSpec | None = None
    status: KubeVirtStatus | None = None
