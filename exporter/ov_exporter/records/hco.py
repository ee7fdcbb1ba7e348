"""HyperConverged (hco.kubevirt.io), in its v1beta1 and v1 shapes."""

from __future__ import annotations

from msgspec import field

from .base import Int64, R
from .kubevirt import LabelSelector, MigrationConfiguration
from .meta import ObjectMeta


class HCOResourceRequirements(R):
    vmi_cpu_allocation_ratio: Int64 | None = field(default=None, name="vmiCPUAllocationRatio")
    auto_cpu_limit_namespace_label_selector: LabelSelector | None = field(
        default=None, name="autoCPULimitNamespaceLabelSelector"
    )


class HigherWorkloadDensity(R):
    memory_overcommit_percentage: Int64 | None = None


class HCOVirtualization(R):
    """`spec.virtualization` of HCO v1."""

    live_migration_config: MigrationConfiguration | None = None
    vmi_cpu_allocation_ratio: Int64 | None = field(default=None, name="vmiCPUAllocationRatio")
    higher_workload_density: HigherWorkloadDensity | None = None
    eviction_strategy: str | None = None
    auto_cpu_limit_namespace_label_selector: LabelSelector | None = field(
        default=None, name="autoCPULimitNamespaceLabelSelector"
    )


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
