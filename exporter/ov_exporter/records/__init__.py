"""Typed, trimmed records: one msgspec Struct per kind, holding only what checks read.

The same types are built from every source: decoded straight from JSON bytes (live
API, JSON files) or converted from YAML dicts. Field names follow the API (camelCase
through `rename`), so a record re-encodes to a valid, trimmed object. Every field is
optional: real dumps carry `null` and missing sections, and checks treat absence as
"unknown", never as an error. A field that does not decode ("abc" where a count
belongs, a bad quantity) is dropped and reported with its path; the rest of the object
is kept for the checks. Objects over the size or nesting limits are skipped whole.

One module per API group; this package re-exports them all.
"""

from __future__ import annotations

from .base import (  # noqa: F401
    Int32,
    Int64,
    Labels,
    Number,
    R,
    UInt32,
)
from .cdi import (  # noqa: F401
    ClaimPropertySet,
    DataVolume,
    DataVolumeSpec,
    DataVolumeStatus,
    StorageProfile,
    StorageProfileSpec,
    StorageProfileStatus,
)
from .core import (  # noqa: F401
    Namespace,
    Node,
    NodeInfo,
    NodeSpec,
    NodeStatus,
    PersistentVolumeClaim,
    PVCSpec,
    PVCStatus,
    StorageClass,
)
from .decode import (  # noqa: F401
    MAX_DEPTH,
    MAX_DROPPED_FIELDS,
    MAX_OBJECT_BYTES,
    ObjectLimitError,
    convert,
    decode_json,
    to_builtins,
)
from .hco import (  # noqa: F401
    HCOResourceRequirements,
    HCOVersion,
    HCOVirtualization,
    HigherWorkloadDensity,
    HyperConverged,
    HyperConvergedSpec,
    HyperConvergedStatus,
)
from .kinds import (  # noqa: F401
    KIND_BY_GROUP_KIND,
    KIND_BY_KEY,
    KINDS,
    KindInfo,
    kind_for,
    selector_matches,
)
from .kubevirt import (  # noqa: F401
    CPU,
    Affinity,
    ClaimRef,
    CPUTopology,
    DataVolumeRef,
    DataVolumeTemplate,
    DeveloperConfiguration,
    Devices,
    Domain,
    Interface,
    KubeVirt,
    KubeVirtConfiguration,
    KubeVirtSpec,
    KubeVirtStatus,
    LabelSelector,
    LabelSelectorRequirement,
    Matcher,
    Memory,
    MemoryStatus,
    MigrationConfiguration,
    MigrationPolicy,
    MigrationPolicySpec,
    MigrationSelectors,
    MigrationState,
    MultusRef,
    Network,
    NodeAffinity,
    NodeSelector,
    NodeSelectorTerm,
    PhaseTransition,
    PodAffinity,
    PodAffinityTerm,
    PreferredSchedulingTerm,
    PVCInfo,
    Resources,
    TemplateMeta,
    Toleration,
    TopologySpreadConstraint,
    VirtualMachine,
    VirtualMachineInstance,
    VirtualMachineInstanceMigration,
    VMIMMeta,
    VMIMSpec,
    VMIMStatus,
    VMISpec,
    VMIStatus,
    VMSpec,
    VMTemplate,
    Volume,
    VolumeStatus,
    WeightedPodAffinityTerm,
)
from .meta import (  # noqa: F401
    Condition,
    ObjectMeta,
    Taint,
    VersionedMeta,
    keep_annotations,
    kept_annotations,
)
from .networking import (  # noqa: F401
    BridgeInfo,
    ClusterNetwork,
    ClusterNetworkSpec,
    ClusterNetworkStatus,
    LinkAggregation,
    NetworkAttachmentDefinition,
    NetworkAttachmentDefinitionSpec,
    NetworkState,
    NNSInterface,
    NodeNetworkState,
    NodeNetworkStateStatus,
    PortRef,
)
from .nmstate import (  # noqa: F401
    NNCPDesiredState,
    NNCPInterface,
    NNCPSpec,
    NodeNetworkConfigurationPolicy,
)
from .pods import (  # noqa: F401
    ContainerMetrics,
    Pod,
    PodMetrics,
    PodSpec,
    PodStatus,
)
from .remediation import (  # noqa: F401
    Machine,
    MachineHealthCheck,
    MachineHealthCheckSpec,
    MachineNodeRef,
    MachineStatus,
    NodeHealthCheck,
    NodeHealthCheckSpec,
)
from .trident import (  # noqa: F401
    TridentBackendConfig,
    TridentBackendConfigSpec,
    TridentBackendConfigStatus,
    TridentBackendInfo,
    TridentLimit,
    TridentLimits,
)
