"""Names of metrics other components publish that checks read (FACTS.md)."""

DIRTY_RATE = "kubevirt_vmi_dirty_rate_bytes_per_second"
# During a migration, on the source node. The memory transfer rate moved names:
# KubeVirt 1.1-1.6 publish it as ..._disk_transfer_rate_bytes (the names were swapped),
# 1.7+ as ..._memory_transfer_rate_bytes; <= 1.0 used kubevirt_migrate_vmi_*.
MIGRATION_DIRTY_RATE = (
    "kubevirt_vmi_migration_dirty_memory_rate_bytes",
    "kubevirt_migrate_vmi_dirty_memory_rate_bytes",
)
MIGRATION_TRANSFER_RATE = (
    "kubevirt_vmi_migration_memory_transfer_rate_bytes",
    "kubevirt_vmi_migration_disk_transfer_rate_bytes",
    "kubevirt_migrate_vmi_memory_transfer_rate_bytes",
)
MIGRATION_DATA_REMAINING = (
    "kubevirt_vmi_migration_data_remaining_bytes",
    "kubevirt_migrate_vmi_data_remaining_bytes",
)

WANTED = frozenset((DIRTY_RATE, *MIGRATION_DIRTY_RATE, *MIGRATION_TRANSFER_RATE, *MIGRATION_DATA_REMAINING))

# Guest memory in use as the domain sees it (KubeVirt virt-handler; labels namespace, name).
VMI_MEMORY_USED = "kubevirt_vmi_memory_used_bytes"
WANTED = WANTED | {VMI_MEMORY_USED}

# vCPU + hypervisor CPU time of a VMI (KubeVirt virt-handler, counter; labels namespace, name).
VMI_CPU_USAGE = "kubevirt_vmi_cpu_usage_seconds_total"
# Its 5-minute rate per VMI, in cores: a second query of the live Prometheus source
# (a counter needs rate(), which the one selector query cannot give). The name is ours.
VMI_CPU_USAGE_RATE = "ov:kubevirt_vmi_cpu_usage:rate5m"
