"""Names of metrics other components publish that checks read."""

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

# Guest memory in use as the domain sees it. virt-handler exports its two parts in every
# release 1.3-1.9 (pkg/monitoring/metrics/virt-handler/domainstats/memory_metrics.go; labels
# namespace, name, node and kubernetes_vmi_label_*); KubeVirt's PrometheusRule records
# available - usable (pkg/monitoring/rules/recordingrules/vmi.go) as kubevirt_vmi_memory_used_bytes
# in 1.3-1.8, which 1.9 keeps as deprecated (deprecated_recordingrules.go) beside its replacement
# vmi:kubevirt_vmi_memory_used_bytes:sum. The Prometheus source asks for the first that resolves
# (promql.DERIVED_QUERIES) and keeps the answer under VMI_MEMORY_USED.
VMI_MEMORY_AVAILABLE = "kubevirt_vmi_memory_available_bytes"
VMI_MEMORY_USABLE = "kubevirt_vmi_memory_usable_bytes"
VMI_MEMORY_USED = "kubevirt_vmi_memory_used_bytes"
VMI_MEMORY_USED_SUM = "vmi:kubevirt_vmi_memory_used_bytes:sum"
# Other names of a series, as files may hold them -> the name checks read.
ALIASES = {VMI_MEMORY_USED_SUM: VMI_MEMORY_USED}

# vCPU + hypervisor CPU time of a VMI (KubeVirt virt-handler, counter, 1.3-1.9: domainstats/
# cpu_metrics.go; labels namespace, name, node). No vCPU count is read from Prometheus: the
# VMI object gives it (the recording rules for it were renamed, kubevirt_vmi_vcpu_count in 1.7
# and vmi:kubevirt_vmi_vcpu:count from 1.8).
VMI_CPU_USAGE = "kubevirt_vmi_cpu_usage_seconds_total"
# Its 5-minute rate per VMI, in cores: a second query of the live Prometheus source
# (a counter needs rate(), which the one selector query cannot give). The name is ours.
VMI_CPU_USAGE_RATE = "ov:kubevirt_vmi_cpu_usage:rate5m"

# Resident set size of the process running the domain (KubeVirt virt-handler, gauge, 1.3-1.9:
# pkg/monitoring/metrics/virt-handler/domainstats/memory_metrics.go; labels namespace, name,
# node): the host memory a VM takes with it when it migrates. Queried as the largest value per
# VMI (source and target both report one during a migration).
VMI_MEMORY_RESIDENT = "kubevirt_vmi_memory_resident_bytes"

# node_exporter (prometheus/node_exporter v1.8.2, v1.10.2): node_cpu_seconds_total{cpu, mode}
# (collector/cpu_common.go, mode "idle" from /proc/stat in collector/cpu_linux.go) and
# node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes (collector/meminfo.go names
# node_memory_<key> after collector/meminfo_linux.go's keys: at v1.8.2 each /proc/meminfo field
# in kB plus "_bytes", at v1.10.2 MemAvailable_bytes and MemTotal_bytes by name).
# The node is in `instance` (see rebalance.py). The rebalance planner reads each node's
# utilisation over NODE_USAGE_WINDOW through the expressions of the rebalance report
# (promql.DERIVED_QUERIES); these names are ours, the answers carry `node` (and `cluster`).
NODE_CPU_SECONDS = "node_cpu_seconds_total"
NODE_MEMORY_AVAILABLE = "node_memory_MemAvailable_bytes"
NODE_MEMORY_TOTAL = "node_memory_MemTotal_bytes"
NODE_USAGE_WINDOW = "5m"  # the same window as VMI_CPU_USAGE_RATE's
NODE_CPU_UTILISATION = "ov:node_cpu_utilisation:rate5m"
NODE_MEMORY_UTILISATION = "ov:node_memory_utilisation:avg5m"
