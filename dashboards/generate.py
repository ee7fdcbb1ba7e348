"""Generate the Grafana dashboards of dashboards/ with grafana-foundation-sdk.

    python dashboards/generate.py            # write dashboards/<uid>.json and deploy/dashboards/
    python dashboards/generate.py --check    # exit 1 when a committed file is stale

deploy/dashboards/ holds three install variants of the same dashboards (one
kustomize directory each): grafana-sidecar (ConfigMaps), grafana-operator
(GrafanaDashboard) and openshift-console (console variants: console_variant()).

The PromQL lives in QUERIES (one dict, keyed by a short id) apart from the layout
(the build_* functions): tests/test_dashboards.py parses every query and checks
every metric name it reads against the exporter's families, the recording rules of
alerts/recording.yaml and alerts/upstream-metrics.yaml.

Grafana variables in the queries: $cluster (optional: "All" matches series without
a cluster label), $namespace, $node, $__rate_interval, ${__from:date:seconds} and
${__to:date:seconds} (the dashboard range, for the before/after table), $__range.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm
from ov_exporter.config import Thresholds
from ov_exporter.coverage import RUNBOOK_BASE_URL

HERE = Path(__file__).resolve().parent
RUNBOOK_BASE = os.environ.get("RUNBOOK_BASE_URL") or RUNBOOK_BASE_URL  # the exporter serves every runbook
TAGS = ["openshift-virtualization", "ov-exporter"]

# Label matchers shared by the queries.
C = 'cluster=~"$cluster"'
CN = f'{C}, node=~"$node"'


def ns(template: str, extra: str = "") -> str:
    """`template` (PromQL with `@@` where the label matchers go) filtered on $namespace,
    whether the object's namespace arrives as `namespace` or as `exported_namespace`.

    A Prometheus that scrapes without honorLabels (OpenShift user-workload monitoring
    overrides it) renames the series' own `namespace` to `exported_namespace` and sets
    `namespace` to the scraped pod's. The second branch copies `exported_namespace`
    back into `namespace`, so both shapes group and display alike."""
    extra = f", {extra}" if extra else ""
    native = template.replace("@@", f'{C}, namespace=~"$namespace", exported_namespace=""{extra}')
    exported = template.replace("@@", f'{C}, exported_namespace!="", exported_namespace=~"$namespace"{extra}')
    return f'({native} or label_replace({exported}, "namespace", "$1", "exported_namespace", "(.+)"))'


# ------------------------------------------------------------------------ PromQL
# The before/after table reads the expressions of `ov-exporter rebalance-report`
# (ov_exporter.rebalance) at the rebalance start and at the end of the dashboard range
# with the `@` modifier (on by default since Prometheus 2.33; tests/test_rebalance.py
# runs them on 2.42). The start is the hidden variable $rebalance_start: the exporter's
# ov_rebalance_start_timestamp_seconds (the latest seen in the range), else the range
# start; so moving the range does not move the "before" while a wave is in view.
from ov_exporter.rebalance import before_after, rebalance_start_query  # noqa: E402

REBALANCE_START_VAR = "${rebalance_start}"
BEFORE_AFTER = {
    kind: before_after(kind, C, CN, REBALANCE_START_VAR, "${__to:date:seconds}") for kind in ("cpu", "memory")
}
# Grafana's query_result() gives `{labels} value timestamp_ms` per series; the regex keeps the value.
# `@` takes one instant: with several clusters selected, the latest of their starts
# (select one cluster for its own before/after).
REBALANCE_START_QUERY = f"query_result(max({rebalance_start_query(C, '$__range')}) or vector(${{__from:date:seconds}}))"
REBALANCE_START_REGEX = r"/\} ([^ ]+) /"

# The OpenShift console has neither the `@` variable nor the range: its before/after
# table latches instead. Inside a 3-day subquery, the utilisation (1-hour average of
# the recording rules) at the steps when no watch window was open; last_over_time
# keeps the last of them, the hour before the exporter saw the wave start (to within
# the 5-minute step and the exporter's polling interval).
CONSOLE_LATCH = "[3d:5m]"
_CONSOLE_UTIL = {
    "cpu": f"avg_over_time(node:ov_vm_node_cpu_utilisation:rate5m{{{CN}}}[1h])",
    "memory": (
        f'label_replace(avg_over_time(instance:ov_node_memory_utilisation:ratio{{{C}}}[1h]), "node", "$1", '
        f'"instance", "([^:]+)(:[0-9]+)?") and on (cluster, node) ov_node_physical_cpu_cores{{{CN}}}'
    ),
}


def _console_before_after(kind: str) -> dict[str, str]:
    now = f"max by (cluster, node) ({_CONSOLE_UTIL[kind]})"
    before = (
        f"max by (cluster, node) (last_over_time(({_CONSOLE_UTIL[kind]} unless on (cluster) "
        f"{rebalance_start_query(C)}){CONSOLE_LATCH}))"
    )
    return {"before": before, "now": now, "change": f"({now}) - ({before})"}


CONSOLE_BEFORE_AFTER = {kind: _console_before_after(kind) for kind in ("cpu", "memory")}
# Grafana expression -> its console replacement.
CONSOLE_EXPRS = {
    BEFORE_AFTER[kind][part]: CONSOLE_BEFORE_AFTER[kind][part] for kind in BEFORE_AFTER for part in BEFORE_AFTER[kind]
}

# A stat that counts or flags falls back to 0 for each cluster with an exporter, not
# with a label-less vector(0) that would sit beside the clusters' own series.
ZERO = f"max by (cluster) (ov_build_info{{{C}}}) * 0"

PENDING = 'phase=~"(?i)pending|scheduling"'
SUCCEEDED = 'status="succeeded"'

QUERIES: dict[str, str] = {
    # ---- overview: status
    "check_up": f"max by (cluster, check) (ov_check_up{{{C}}})",
    "check_fresh": f"max by (cluster, check) (check:ov_check_up:fresh{{{C}}})",
    # Checks the exporter cannot currently vouch for: their firing alerts are held.
    "checks_blind": f"max by (cluster, check) (check:ov_check_blind:hold{{{C}}})",
    "check_applicable": f"max by (cluster, check) (ov_check_applicable{{{C}}})",
    "findings_by_severity": f"sum by (cluster, severity) (ov_findings{{{C}}})",
    "cluster_score": f"max by (cluster) (ov_cluster_score_ratio{{{C}}})",
    "anti_pattern_verdict": f"max by (cluster, anti_pattern, verdict) (ov_anti_pattern_verdict{{{C}}} == 1)",
    "findings_by_check": f"sum by (cluster, check, severity) (ov_findings{{{C}}})",
    "findings_over_time": f"sum by (cluster, severity) (ov_findings{{{C}}})",
    # ---- overview: offenders
    "rwo_vm_disks": f"max by (cluster, namespace, vm, eviction_strategy) ({ns('ov_rwo_vm_disks{@@}')})",
    "rhel_nodes": f"max by (cluster, node, os_image, vm_schedulable, runs_vmis) (ov_rhel_node_info{{{CN}}})",
    # ---- overview: control plane (anti-patterns 12 and 13)
    "control_plane_colocated": (
        f"max by (cluster, node, host, source, quorum_lost) (ov_control_plane_node_colocated{{{CN}}})"
    ),
    "control_plane_host_unknown": f"max by (cluster) (ov_control_plane_nodes_host_unknown{{{C}}})",
    "control_plane_vmis": f"max by (cluster, node, vm_schedulable) (ov_control_plane_node_vmis{{{CN}}})",
    "mtu_mismatch": f"max by (cluster, namespace, network) ({ns('ov_mtu_mismatch{@@}')})",
    "nad_invalid": f"max by (cluster, namespace, network) ({ns('ov_nad_config_invalid{@@}')})",
    "vm_mixed_mtu": f"max by (cluster, namespace, vm) ({ns('ov_vm_mixed_mtu_networks{@@}')})",
    "dirty_rate_risk_top": f"topk by (cluster) (20, max by (cluster, namespace, vmi) ({ns('ov_migration_dirty_rate_risk{@@}')}))",
    "migration_blocked": f"max by (cluster, namespace, vm, reason, eviction_strategy) ({ns('ov_vm_migration_blocked{@@}')})",
    "migration_blocked_by_reason": f"max by (cluster, reason) (ov_vms_migration_blocked_by_reason{{{C}}})",
    "scheduling_issues": (
        f"max by (cluster, namespace, vm, issue, eviction_strategy) ({ns('ov_vm_scheduling_issue{@@}')})"
        f" * on (cluster, namespace, vm) group_left () max by (cluster, namespace, vm) "
        f"({ns('ov_vm_scheduling_constraints{@@}')})"
    ),
    "vmi_unschedulable": f"max by (cluster, namespace, vmi, phase) ({ns('ov_vmi_unschedulable{@@}')})",
    "vmi_pending_since": f"max by (cluster, namespace, vmi, phase) ({ns('ov_vmi_pending_since_timestamp_seconds{@@}')}) * 1000",
    "vm_limits": f"max by (cluster, namespace, vm, resource, source) ({ns('ov_vm_resource_limit_ratio{@@}')})",
    "vm_over_provisioned": f"max by (cluster, namespace, vmi, resource) ({ns('ov_vm_over_provisioned_usage_ratio{@@}')})",
    "vm_under_provisioned": f"max by (cluster, namespace, vmi, resource) ({ns('ov_vm_under_provisioned_usage_ratio{@@}')})",
    "vmi_not_ready_node": f"max by (cluster, namespace, vmi, node) ({ns('ov_vmi_on_not_ready_node{@@}')})",
    "vm_no_restart": f"max by (cluster, namespace, vm, run_strategy) ({ns('ov_vm_no_restart_after_node_failure{@@}')})",
    "trident_volume_limit": (
        f"max by (cluster, namespace, backend, driver) ({ns('ov_trident_backend_volume_size_limit_bytes{@@}')})"
    ),
    "trident_pool_limit": (
        f"max by (cluster, namespace, backend, driver) ({ns('ov_trident_backend_volume_pool_size_limit_bytes{@@}')})"
    ),
    "trident_aggregate_limit": (
        f"max by (cluster, namespace, backend, driver) ({ns('ov_trident_backend_aggregate_usage_limit_ratio{@@}')})"
    ),
    "nncp_bridges_default_nic": f"max by (cluster, policy) (ov_nncp_default_nic_linux_bridge{{{C}}})",
    "rebalance_failed": f"max by (cluster, namespace, vmim, vmi) ({ns('ov_rebalance_failed_migration{@@}')})",
    "rebalance_repeated": f"max by (cluster, namespace, vmi) ({ns('ov_rebalance_vm_migrations{@@}')})",
    # ---- overview: overcommit
    "cpu_overcommit_node": f"max by (cluster, node) (ov_cpu_overcommit_ratio{{{CN}}})",
    "cpu_overcommit_cluster": f"max by (cluster) (ov_cluster_cpu_overcommit_ratio{{{C}}})",
    "cpu_overcommit_max": f'max by (cluster) (ov_cpu_overcommit_threshold_ratio{{{C}, level="max"}})',
    "memory_overcommit_node": f"max by (cluster, node) (ov_memory_overcommit_ratio{{{CN}}})",
    "memory_overcommit_cluster": f"max by (cluster) (ov_cluster_memory_overcommit_ratio{{{C}}})",
    "memory_overcommit_warning": f'max by (cluster) (ov_memory_overcommit_threshold_ratio{{{C}, level="warning"}})',
    # ---- overview: rebalance plan
    "rebalance_plan_spread": f"max by (cluster, when) (ov_rebalance_plan_spread_ratio{{{C}}})",
    "rebalance_plan_threshold": f"max by (cluster) (ov_rebalance_plan_spread_threshold_ratio{{{C}}})",
    "rebalance_plan_moves": f"max by (cluster) (ov_rebalance_plan_moves{{{C}}})",
    "rebalance_plan_unmovable": f"max by (cluster, reason) (ov_rebalance_plan_unmovable_vms{{{C}}}) > 0",
    # ---- overview: exporter health
    # up of the targets that exposed ov_build_info in the last hour (any job name).
    "exporter_up": f"up{{{C}}} and on(cluster, job, instance) last_over_time(ov_build_info{{{C}}}[1h])",
    "exporter_eval_age": f"time() - max by (cluster) (ov_last_evaluation_timestamp_seconds{{{C}}})",
    "exporter_eval_duration": f"max by (cluster) (ov_evaluation_duration_seconds{{{C}}})",
    "exporter_check_duration": f"max by (cluster, check) (ov_check_duration_seconds{{{C}}})",
    "exporter_kind_not_synced": f'sum by (cluster, kind, state) (ov_source_kind_state{{{C}, state!="synced"}} == 1)',
    "exporter_series_dropped": f"sum by (cluster, check) (increase(ov_series_dropped_total{{{C}}}[$__rate_interval]))",
    "exporter_api_errors": f'sum by (cluster, verb, code) (rate(ov_source_api_requests_total{{{C}, code!~"2.."}}[$__rate_interval]))',
    # ---- post-rebalance
    # Annotations read the series value as the event time (useValueForTime, in ms):
    # one event per migration at its exact start / end, whatever the query step.
    # Annotations read the series value as the event time (useValueForTime, in ms):
    # one event per migration at its exact start / end, whatever the query step.
    # kubevirt_vmi_migration_{start,end}_time_seconds (KubeVirt >= 1.4.1) come from the
    # VMI's status.migrationState: labels node, namespace, name (the VMI), migration_name
    # (+ status on the end); `node` moves from source to target, hence the max by.
    "annot_migration_start": f"max by (cluster, namespace, name, migration_name) "
    f"({ns('kubevirt_vmi_migration_start_time_seconds{@@}')}) * 1000",
    "annot_migration_end": f"max by (cluster, namespace, name, migration_name, status) "
    f"({ns('kubevirt_vmi_migration_end_time_seconds{@@}')}) * 1000",
    "window_active": f"max by (cluster) (cluster:ov_post_rebalance_window:active{{{C}}}) or {ZERO}",
    "rebalance_start": f"{rebalance_start_query(C)} * 1000",
    "cpu_util_node": f"max by (cluster, node) (node:ov_vm_node_cpu_utilisation:rate5m{{{CN}}})",
    # node_exporter's instance is the node name on OpenShift (as in ov_exporter.rebalance).
    "mem_util_node": (
        f'max by (cluster, node) (label_replace(instance:ov_node_memory_utilisation:ratio{{{C}}}, "node", "$1", '
        f'"instance", "([^:]+)(:[0-9]+)?") and on (cluster, node) ov_node_physical_cpu_cores{{{CN}}})'
    ),
    "cpu_util_before": BEFORE_AFTER["cpu"]["before"],
    "cpu_util_now": BEFORE_AFTER["cpu"]["now"],
    "cpu_util_change": BEFORE_AFTER["cpu"]["change"],
    # Memory: guest memory placed on a node over its capacity (the exporter's view).
    "mem_alloc_node": f"max by (cluster, node) (ov_memory_overcommit_ratio{{{CN}}})",
    "mem_util_before": BEFORE_AFTER["memory"]["before"],
    "mem_util_now": BEFORE_AFTER["memory"]["now"],
    "mem_util_change": BEFORE_AFTER["memory"]["change"],
    "cpu_spread": f"max by (cluster) (cluster:ov_vm_node_cpu_utilisation:spread{{{C}}})",
    "cpu_spread_avg1h": f"max by (cluster) (cluster:ov_vm_node_cpu_utilisation:spread_avg1h{{{C}}})",
    "cpu_util_avg": f"max by (cluster) (cluster:ov_vm_node_cpu_utilisation:avg{{{C}}})",
    # vCPUs placed per node stands in for the VM count per node: kubevirt_vmi_info
    # carries no node label in alerts/upstream-metrics.yaml.
    "vcpus_per_node": f"max by (cluster, node) (ov_node_vm_vcpus{{{CN}}})",
    "migrations_in_flight": f"max by (cluster) (cluster:ov_kubevirt_vmi_migrations_in_flight:sum{{{C}}})",
    # The exporter tells migrations apart by cause (VMIM annotations): only descheduler,
    # manual and declared ones are a rebalance; workload updates and drains are not.
    "migrations_by_cause": f"max by (cluster, cause, phase) (ov_migrations{{{C}}}) > 0",
    "migrations_in_flight_ratio": f"max by (cluster) (cluster:ov_kubevirt_vmi_migrations_in_flight:ratio{{{C}}})",
    # kubevirt_vmi_migration_succeeded / _failed (KubeVirt >= 1.3): {vmi, vmim, namespace},
    # value 1, one series per finished VMIM while the VMIM object exists.
    "migrations_succeeded": (
        f"count by (cluster) (max by (cluster, namespace, vmim) "
        f"({ns('kubevirt_vmi_migration_succeeded{@@}')} > 0)) or {ZERO}"
    ),
    "migrations_failed": (
        f"count by (cluster) (max by (cluster, namespace, vmim) "
        f"({ns('kubevirt_vmi_migration_failed{@@}')} > 0)) or {ZERO}"
    ),
    "migrations_failed_table": f"max by (cluster, namespace, vmi, vmim) ({ns('kubevirt_vmi_migration_failed{@@}')} > 0)",
    # Upstream's count (KubeVirtVMIExcessiveMigrations, pkg/monitoring/rules/alerts/vms.go
    # v1.9.0): one per VMIM seen in the window, whatever else labels its series.
    "vm_migrated_repeatedly": f"sum by (cluster, namespace, vmi) (topk by (cluster, namespace, vmi, vmim) (1, "
    f"{ns('max_over_time(kubevirt_vmi_migration_succeeded{@@}[48h])')})) >= 2",
    # Duration of the latest migration of each VMI (KubeVirt >= 1.4.1).
    "migration_duration_latest": f"max by (cluster, namespace, name, migration_name) "
    f"({ns('kubevirt_vmi_migration_end_time_seconds{@@}', SUCCEEDED)})"
    f" - on (cluster, namespace, name, migration_name) max by (cluster, namespace, name, migration_name) "
    f"({ns('kubevirt_vmi_migration_start_time_seconds{@@}')})",
    # Creation of the VMIM to Succeeded (queueing included), cluster-wide: the histogram
    # carries only `phase` (pkg/monitoring/metrics/virt-controller/migration_metrics.go, v1.3.0-v1.9.0).
    **{
        f"migration_duration_p{q}": f"histogram_quantile(0.{q}, sum by (cluster, le) (increase("
        f"kubevirt_vmi_migration_phase_transition_time_from_creation_seconds_bucket"
        f'{{{C}, phase="Succeeded"}}[$__range])))'
        for q in (50, 95)
    },
    "migration_duration_p95_over_time": f"histogram_quantile(0.95, sum by (cluster, le) (rate("
    f"kubevirt_vmi_migration_phase_transition_time_from_creation_seconds_bucket"
    f'{{{C}, phase="Succeeded"}}[$__rate_interval])))',
    # ---- post-rebalance: VM-side impact
    # virt-handler domain stats carry node, namespace, name (the VMI) and id (the vCPU).
    "vcpu_delay_top": f"topk by (cluster) (10, avg by (cluster, namespace, name) "
    f"({ns('rate(kubevirt_vmi_vcpu_delay_seconds_total{@@}[$__rate_interval])')}))",
    "node_cpu_steal": (
        f"max by (cluster, node) (label_replace(avg by (cluster, instance) (rate(node_cpu_seconds_total{{{C}, "
        f'mode="steal"}}[$__rate_interval])), "node", "$1", "instance", "([^:]+)(:[0-9]+)?") '
        f"and on (cluster, node) ov_node_physical_cpu_cores{{{CN}}})"
    ),
    # Guest swap counters (bytes since boot, published as gauges): rate() of each.
    "swap_in_top": f"topk by (cluster) (10, sum by (cluster, namespace, name) "
    f"({ns('rate(kubevirt_vmi_memory_swap_in_traffic_bytes{@@}[$__rate_interval])')}))",
    "swap_out_top": f"topk by (cluster) (10, sum by (cluster, namespace, name) "
    f"({ns('rate(kubevirt_vmi_memory_swap_out_traffic_bytes{@@}[$__rate_interval])')}))",
    # node_exporter pressure collector (>= 0.18, on by default; series only where the kernel has PSI).
    **{
        f"psi_{res}": (
            f"max by (cluster, node) (label_replace(rate(node_pressure_{res}_waiting_seconds_total{{{C}}}"
            f'[$__rate_interval]), "node", "$1", "instance", "([^:]+)(:[0-9]+)?") '
            f"and on (cluster, node) ov_node_physical_cpu_cores{{{CN}}})"
        )
        for res in ("cpu", "memory", "io")
    },
    # VM status timestamps (virt-controller, {name, namespace}, KubeVirt >= 1.3): the current
    # status's metric holds its last transition time, the others 0.
    "vms_down": (
        f"max by (cluster, namespace, name, status) (label_replace("
        f"{ns('kubevirt_vm_non_running_status_last_transition_timestamp_seconds{@@}')} > 0, "
        f'"status", "stopped or paused", "", "") or label_replace('
        f"{ns('kubevirt_vm_error_status_last_transition_timestamp_seconds{@@}')} > 0, "
        f'"status", "error", "", "")) * 1000'
    ),
    "vms_down_count": (
        f"count by (cluster) ({ns('kubevirt_vm_non_running_status_last_transition_timestamp_seconds{@@}')} > 0) "
        f"or {ZERO}"
    ),
    "vms_error_count": (
        f"count by (cluster) ({ns('kubevirt_vm_error_status_last_transition_timestamp_seconds{@@}')} > 0) or {ZERO}"
    ),
    "vmis_pending": f"count by (cluster) (max by (cluster, namespace, name) ({ns('kubevirt_vmi_info{@@}', PENDING)})) or {ZERO}",
    # ALERTS is Prometheus' own series of pending/firing alerts (dashboards/upstream-metrics.yaml).
    "alerts_fired_in_window": f"count by (cluster, alertname, severity) (max_over_time(ALERTS{{{C}, "
    f'alertname=~"OV.*", alertstate="firing"}}[$__range]))',
    "alerts_firing": f'count by (cluster, alertname, severity) (ALERTS{{{C}, alertname=~"OV.*", alertstate="firing"}})',
    # kubevirt_vmi_info carries the VMI's node as label `node` (virt-controller).
    "vms_per_node": f'count by (cluster, node) (kubevirt_vmi_info{{{CN}, phase=~"(?i)running"}})',
    "etcd_wal_fsync_p99": f"max by (cluster, instance) (instance:ov_etcd_disk_wal_fsync_duration_seconds:p99_rate5m{{{C}}})",
    "etcd_backend_commit_p99": f"max by (cluster, instance) "
    f"(instance:ov_etcd_disk_backend_commit_duration_seconds:p99_rate5m{{{C}}})",
    # ---- live migration
    "risk_per_vmi": f"max by (cluster, namespace, vmi) ({ns('ov_migration_dirty_rate_risk{@@}')})",
    "risk_promql_per_vmi": f"max by (cluster, namespace, name) ({ns('namespace_name:ov_migration_dirty_rate_risk:ratio{@@}')})",
    "dirty_rate_steady": f"max by (cluster, namespace, name) "
    f"({ns('namespace_name:ov_kubevirt_vmi_dirty_rate_bytes_per_second:avg10m{@@}')})",
    "bandwidth": f"max by (cluster) (cluster:ov_migration_bandwidth_bytes_per_second:effective{{{C}}})",
    "migration_dirty_rate": f"max by (cluster, namespace, name) "
    f"({ns('namespace_name:ov_kubevirt_vmi_migration_dirty_memory_rate_bytes:max{@@}')})",
    "migration_transfer_rate": f"max by (cluster, namespace, name) "
    f"({ns('namespace_name:ov_kubevirt_vmi_migration_memory_transfer_rate_bytes:max{@@}')})",
    "migration_dirty_ratio": f"max by (cluster, namespace, name) "
    f"({ns('namespace_name:ov_kubevirt_vmi_migration_dirty_rate:ratio{@@}')})",
    "migration_data_remaining": f"max by (cluster, namespace, name) "
    f"({ns('namespace_name:ov_kubevirt_vmi_migration_data_remaining_bytes:max{@@}')})",
    "predicted_duration": f"max by (cluster, namespace, vmi) ({ns('ov_migration_predicted_duration_seconds{@@}')})",
    "completion_timeout": f"max by (cluster, namespace, vmi) ({ns('ov_migration_completion_timeout_seconds{@@}')})",
    "predicted_over_timeout": f"max by (cluster, namespace, vmi) ({ns('ov_migration_predicted_duration_seconds{@@}')})"
    f" / on(cluster, namespace, vmi) "
    f"max by (cluster, namespace, vmi) ({ns('ov_migration_completion_timeout_seconds{@@}')})",
    # ---- post-rebalance: the exporter's own watch (checks rebalance_watch, migration_capacity)
    "ov_watch_active": f"max by (cluster) (ov_rebalance_watch_active{{{C}}}) or {ZERO}",
    "ov_last_migration": f"max by (cluster) (ov_rebalance_last_migration_timestamp_seconds{{{C}}}) * 1000",
    "ov_alloc_node": f"max by (cluster, node, resource) (ov_node_vm_allocation_ratio{{{CN}}})",
    "ov_alloc_spread": f"max by (cluster, resource) (ov_rebalance_allocation_spread_ratio{{{C}}})",
    "ov_running_vmis_node": f"max by (cluster, node) (ov_node_running_vmis{{{CN}}})",
    "ov_migrations_in_flight_ratio": f"max by (cluster) (ov_migrations_in_flight_ratio{{{C}}})",
    "ov_node_outbound_ratio": f"max by (cluster, node) (ov_node_outbound_migrations_in_flight_ratio{{{CN}}})",
}

# Variable queries (Grafana's label_values(selector, label)).
VARIABLE_QUERIES: dict[str, str] = {
    "cluster": "label_values(ov_build_info, cluster)",
    "namespace": f"label_values(kubevirt_vmi_info{{{C}}}, namespace)",
    "node": f"label_values(ov_node_physical_cpu_cores{{{C}}}, node)",
}

# ------------------------------------------------------------------------ layout helpers
DS = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")


# Legends name the cluster first; without a cluster label it renders empty.
CLUSTER_LEGEND = "{{cluster}} "


def _target(qid: str, legend: str = "", ref: str = "A", instant: bool = False):
    t = prometheus.Dataquery().expr(QUERIES[qid]).ref_id(ref).datasource(DS)
    if legend:
        t = t.legend_format(CLUSTER_LEGEND + legend)
    if instant:
        t = t.instant()
    else:
        t = t.range()
    return t


def _thresholds(*steps: tuple[float | None, str]):
    return (
        db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps([dm.Threshold(value=v, color=c) for v, c in steps])
    )


def ts(title: str, unit: str, targets: list, w: int = 12, h: int = 8, thresholds=None, description: str = ""):
    p = timeseries.Panel().title(title).unit(unit).datasource(DS).span(w).height(h)
    if description:
        p = p.description(description)
    for t in targets:
        p = p.with_target(t)
    if thresholds is not None:
        p = p.thresholds(thresholds).thresholds_style(
            cb.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.DASHED)
        )
    return p


def st(title: str, unit: str, targets: list, w: int = 6, h: int = 4, thresholds=None, description: str = ""):
    p = stat.Panel().title(title).unit(unit).datasource(DS).span(w).height(h)
    if description:
        p = p.description(description)
    for t in targets:
        p = p.with_target(t)
    if thresholds is not None:
        p = p.thresholds(thresholds)
    return p


def tb(title: str, unit: str, targets: list, w: int = 12, h: int = 8, links=None, description: str = ""):
    p = table.Panel().title(title).unit(unit).datasource(DS).span(w).height(h)
    if description:
        p = p.description(description)
    for t in targets:
        p = p.with_target(t)
    p = p.with_transformation(dm.DataTransformerConfig(id_val="merge", options={}))
    p = p.with_transformation(dm.DataTransformerConfig(id_val="organize", options={"excludeByName": {"Time": True}}))
    if links:
        p = p.data_links(links)
    return p


def _prom_table(qid: str, ref: str = "A"):
    return _target(qid, ref=ref, instant=True).format(pm.PromQueryFormat.TABLE)


def _base(
    uid: str,
    title: str,
    time_from: str,
    node: bool,
    namespace: bool,
    extra_tags: list[str],
    rebalance_start: bool = False,
):
    d = (
        db.Dashboard(title)
        .uid(uid)
        .tags(TAGS + extra_tags)
        .time(time_from, "now")
        .refresh("1m")
        .timezone("browser")
        .editable()
    )
    d = d.with_variable(db.DatasourceVariable("datasource").label("Data source").type("prometheus"))
    d = d.with_variable(
        db.QueryVariable("cluster")
        .label("Cluster")
        .datasource(DS)
        .query(VARIABLE_QUERIES["cluster"])
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .description(
            "Optional: for Prometheus that adds a cluster label (Thanos, ACM, federation); All "
            "matches series without one. Every panel groups by cluster"
        )
    )
    if namespace:
        d = d.with_variable(
            db.QueryVariable("namespace")
            .label("Namespace")
            .datasource(DS)
            .query(VARIABLE_QUERIES["namespace"])
            .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )
    if rebalance_start:
        d = d.with_variable(
            db.QueryVariable("rebalance_start")
            .label("Rebalance start")
            .datasource(DS)
            .query(REBALANCE_START_QUERY)
            .regex(REBALANCE_START_REGEX)
            .hide(dm.VariableHide.HIDE_VARIABLE)
            .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .description(
                "Unix time the before/after table compares with: the exporter's "
                "ov_rebalance_start_timestamp_seconds, else the start of the range"
            )
        )
    if node:
        d = d.with_variable(
            db.QueryVariable("node")
            .label("Node")
            .datasource(DS)
            .query(VARIABLE_QUERIES["node"])
            .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )
    return d


# The red lines are the exporter's default thresholds (config.py), not copies of them.
DEFAULTS = Thresholds()
CPU_MAX, MEM_MAX = DEFAULTS.cpu_overcommit_max, DEFAULTS.memory_overcommit_max
NODE_CPU_OVERLOADED, NODE_MEMORY_OVERLOADED = DEFAULTS.node_cpu_overloaded, DEFAULTS.node_memory_overloaded
DIRTY_INFO, DIRTY_WARNING = DEFAULTS.dirty_rate_risk_warning, DEFAULTS.dirty_rate_risk_critical
OVERCOMMIT_CPU = _thresholds((None, "green"), (CPU_MAX, "red"))
OVERCOMMIT_MEM = _thresholds((None, "green"), (MEM_MAX, "red"))
STATUS = _thresholds((None, "red"), (1, "green"))


def _runbook_link():
    return [db.DashboardLink("Runbook").url(RUNBOOK_BASE + "/${__data.fields.check}.md").target_blank(True)]


# The alerts' runbooks, at the URL alerts/build.py gives every alert (runbook_url).
ALERT_RUNBOOK_BASE = RUNBOOK_BASE


def _alert_runbook_link(alert: str | None = None):
    """Data link to an alert's runbook: a fixed alert, or the row's alertname field."""
    name = alert or "${__data.fields.alertname}"
    return [
        db.DashboardLink(f"Runbook {alert}" if alert else "Runbook")
        .url(f"{ALERT_RUNBOOK_BASE}/{name}.md")
        .target_blank(True)
    ]


# ------------------------------------------------------------------------ dashboards
def build_overview():
    d = _base(
        "ov-overview",
        "OpenShift Virtualization: anti-pattern overview",
        "now-6h",
        node=True,
        namespace=True,
        extra_tags=["anti-patterns"],
    )
    d = d.with_row(db.Row("Status"))
    d = d.with_panel(
        st(
            "Findings by severity",
            "short",
            [_target("findings_by_severity", "{{severity}}", instant=True)],
            w=8,
            thresholds=_thresholds((None, "green"), (1, "orange")),
        )
    )
    d = d.with_panel(
        st(
            "Checks up",
            "bool",
            [_target("check_up", "{{check}}", instant=True)],
            w=8,
            thresholds=STATUS,
            description="1: the check ran (ok or not applicable); 0: it failed",
        )
    )
    d = d.with_panel(
        st(
            "Checks fresh",
            "bool",
            [_target("check_fresh", "{{check}}", instant=True)],
            w=8,
            thresholds=STATUS,
            description="check:ov_check_up:fresh: succeeded within 15 minutes",
        )
    )
    d = d.with_panel(
        st(
            "Checks blind (alerts held)",
            "short",
            [_target("checks_blind", "{{check}}", instant=True)],
            w=8,
            thresholds=_thresholds((None, "orange")),
            description="check:ov_check_blind:hold: checks seen in the last day that are not fresh "
            "now (exporter down, evaluation stuck, check failing); their firing alerts "
            "stay firing with their last values until the check is back",
        )
    )
    d = d.with_panel(
        st(
            "Cluster score",
            "percentunit",
            [_target("cluster_score", instant=True)],
            w=8,
            thresholds=_thresholds((None, "red"), (0.5, "orange"), (0.8, "green")),
            description="Share of checks passing, weighted by severity (a check with critical "
            "findings weighs 3, with warnings 2, a passing one 1)",
        )
    )
    d = d.with_panel(
        tb(
            "Verdict per anti-pattern (numbers 1-19)",
            "short",
            [_prom_table("anti_pattern_verdict")],
            w=16,
            description="pass, fail, not_applicable, check_failed, not_observable (see the README "
            "coverage table for what to do instead) or alerts_only",
        )
    )
    d = d.with_panel(
        tb(
            "Findings per check (runbook links)",
            "short",
            [_prom_table("findings_by_check")],
            w=12,
            links=_runbook_link(),
        )
    )
    d = d.with_panel(ts("Findings over time", "short", [_target("findings_over_time", "{{severity}}")], w=12))
    d = d.with_row(db.Row("CPU and memory overcommit"))
    d = d.with_panel(
        ts(
            "CPU overcommit per node (vCPUs / physical cores)",
            "none",
            [_target("cpu_overcommit_node", "{{node}}"), _target("cpu_overcommit_cluster", "cluster", ref="B")],
            thresholds=OVERCOMMIT_CPU,
            description=f"Red line: {CPU_MAX:g}, thresholds.cpu-overcommit-max",
        )
    )
    d = d.with_panel(
        ts(
            "Memory overcommit per node (guest memory / capacity)",
            "percentunit",
            [_target("memory_overcommit_node", "{{node}}"), _target("memory_overcommit_cluster", "cluster", ref="B")],
            thresholds=OVERCOMMIT_MEM,
            description=f"Red line: {MEM_MAX:g} of node memory, thresholds.memory-overcommit-max",
        )
    )
    d = d.with_panel(
        st(
            "Configured CPU overcommit maximum",
            "none",
            [_target("cpu_overcommit_max", instant=True)],
            w=12,
            thresholds=OVERCOMMIT_CPU,
        )
    )
    d = d.with_panel(
        st(
            "Configured memory overcommit warning",
            "percentunit",
            [_target("memory_overcommit_warning", instant=True)],
            w=12,
            thresholds=OVERCOMMIT_MEM,
        )
    )
    d = d.with_panel(
        ts(
            "Rebalance plan: spread now and after",
            "percentunit",
            [
                _target("rebalance_plan_spread", "{{when}}"),
                _target("rebalance_plan_threshold", "threshold", ref="B"),
            ],
            description="Busiest minus idlest VM node (the worse of CPU and memory: measured usage when the "
            "exporter reads Prometheus usage samples, else of what the thresholds allow; "
            "ov_rebalance_plan_basis says which), now and after the plan `ov-exporter plan` proposes; "
            "above the threshold with a plan, "
            "OVRebalancePlanAvailable fires after 6 h.",
        )
    )
    d = d.with_panel(
        ts(
            "Rebalance plan: moves and unmovable VMs",
            "short",
            [
                _target("rebalance_plan_moves", "moves"),
                _target("rebalance_plan_unmovable", "unmovable: {{reason}}", ref="B"),
            ],
            description="Live migrations the plan needs, and running VMs it may not move, by reason.",
        )
    )
    d = d.with_row(db.Row("Offenders"))
    d = d.with_panel(
        tb(
            "VMs with non-RWX disks",
            "short",
            [_prom_table("rwo_vm_disks")],
            links=_alert_runbook_link("OVVMMigrationBlocked"),
        )
    )
    d = d.with_panel(
        tb("RHEL nodes", "short", [_prom_table("rhel_nodes")], links=_alert_runbook_link("OVRHELWorkerNode"))
    )
    d = d.with_panel(
        tb(
            "Networks with MTU mismatch (nodes)",
            "short",
            [_prom_table("mtu_mismatch")],
            w=8,
            links=_alert_runbook_link("OVNetworkMTUMismatch"),
        )
    )
    d = d.with_panel(
        tb(
            "Invalid NetworkAttachmentDefinitions",
            "short",
            [_prom_table("nad_invalid")],
            w=8,
            links=_alert_runbook_link("OVNetworkAttachmentDefinitionInvalid"),
        )
    )
    d = d.with_panel(
        tb(
            "VMs mixing MTUs",
            "short",
            [_prom_table("vm_mixed_mtu")],
            w=8,
            links=_alert_runbook_link("OVVMMixedMTUNetworks"),
        )
    )
    d = d.with_panel(
        tb(
            "VMIs at dirty-rate risk (top 20)",
            "percentunit",
            [_prom_table("dirty_rate_risk_top")],
            w=24,
            links=_alert_runbook_link("OVVMIDirtyRateTooHighForMigration"),
        )
    )
    d = d.with_panel(
        tb(
            "VMs that cannot live migrate now (one row per reason)",
            "short",
            [_prom_table("migration_blocked")],
            w=16,
            description="ov-exporter check --vm NAMESPACE/NAME prints one VM's reasons and fixes",
            links=_alert_runbook_link("OVVMMigrationBlocked"),
        )
    )
    d = d.with_panel(tb("Blocked VMs per reason", "short", [_prom_table("migration_blocked_by_reason")], w=8))
    d = d.with_panel(
        tb(
            "VMs with scheduling issues (value: constraints on the VM)",
            "short",
            [_prom_table("scheduling_issues")],
            w=12,
            links=_alert_runbook_link("OVVMSchedulingConstraints"),
        )
    )
    d = d.with_panel(
        tb(
            "Unschedulable VMIs",
            "short",
            [_prom_table("vmi_unschedulable")],
            w=6,
            links=_alert_runbook_link("OVVMIUnschedulable"),
        )
    )
    d = d.with_panel(
        tb(
            "VMIs waiting to be scheduled since",
            "dateTimeAsIso",
            [_prom_table("vmi_pending_since")],
            w=6,
            links=_alert_runbook_link("OVVMIUnschedulable"),
        )
    )
    d = d.with_panel(
        tb(
            "VMs with CPU/memory limits (limit / guest)",
            "percentunit",
            [_prom_table("vm_limits")],
            w=12,
            links=_alert_runbook_link("OVVMStrictResourceLimits"),
            description="Anti-pattern 7: generic scanners ask for limits; on VMs they throttle or OOM-kill",
        )
    )
    d = d.with_panel(
        tb(
            "VMIs on NotReady nodes",
            "short",
            [_prom_table("vmi_not_ready_node")],
            w=6,
            links=_alert_runbook_link("OVVMIOnNotReadyNode"),
        )
    )
    d = d.with_panel(
        tb(
            "VMs not restarted after a node failure",
            "short",
            [_prom_table("vm_no_restart")],
            w=6,
            links=_alert_runbook_link("OVVMNotRestartedAfterNodeFailure"),
        )
    )
    d = d.with_panel(
        tb(
            "Over-provisioned VMs (used / requested)",
            "percentunit",
            [_prom_table("vm_over_provisioned")],
            w=12,
            links=_alert_runbook_link("OVVMOverProvisioned"),
        )
    )
    d = d.with_panel(
        tb(
            "Under-provisioned VMs (used / requested)",
            "percentunit",
            [_prom_table("vm_under_provisioned")],
            w=12,
            links=_alert_runbook_link("OVVMUnderProvisioned"),
        )
    )
    d = d.with_panel(
        tb(
            "Trident backends: volume size limit (0 = unlimited)",
            "bytes",
            [_prom_table("trident_volume_limit")],
            w=8,
            links=_alert_runbook_link("OVTridentBackendWithoutVolumeLimit"),
        )
    )
    d = d.with_panel(
        tb(
            "Trident economy backends: pool size limit (0 = unlimited)",
            "bytes",
            [_prom_table("trident_pool_limit")],
            w=8,
            links=_alert_runbook_link("OVTridentBackendWithoutVolumeLimit"),
        )
    )
    d = d.with_panel(
        tb(
            "Trident ONTAP backends: aggregate usage limit (0 = none)",
            "percentunit",
            [_prom_table("trident_aggregate_limit")],
            w=8,
            links=_alert_runbook_link("OVTridentBackendWithoutAggregateLimit"),
        )
    )
    d = d.with_panel(
        tb(
            "NodeNetworkConfigurationPolicies bridging the default NIC (nodes affected)",
            "short",
            [_prom_table("nncp_bridges_default_nic")],
            w=24,
            links=_alert_runbook_link("OVNodeNetworkPolicyBridgesDefaultNIC"),
        )
    )
    d = d.with_row(db.Row("Control plane"))
    d = d.with_panel(
        tb(
            "Control-plane nodes per hypervisor host",
            "short",
            [_prom_table("control_plane_colocated")],
            w=10,
            links=_alert_runbook_link("OVControlPlaneNodesShareHost"),
            description="Value: control-plane nodes on that node's host (itself included); quorum_lost=true: "
            "losing the host takes etcd quorum with it",
        )
    )
    d = d.with_panel(
        st(
            "Control-plane nodes, host unknown",
            "short",
            [_target("control_plane_host_unknown", instant=True)],
            w=4,
            thresholds=_thresholds((None, "green"), (1, "orange")),
            description="No host label (control-plane-host-label) and no bare-metal provider ID: "
            "co-location cannot be judged for them",
        )
    )
    d = d.with_panel(
        ts(
            "VMIs running on control-plane nodes",
            "short",
            [_target("control_plane_vmis", "{{node}} (vm_schedulable={{vm_schedulable}})")],
            w=10,
            description="VM workloads next to etcd; the red alert is OVControlPlaneNodeRunsVMs",
        )
    )
    d = d.with_row(db.Row("Exporter health"))
    d = d.with_panel(
        st("Exporter targets up", "bool", [_target("exporter_up", "{{instance}}", instant=True)], thresholds=STATUS)
    )
    d = d.with_panel(
        st(
            "Since last evaluation",
            "s",
            [_target("exporter_eval_age", instant=True)],
            thresholds=_thresholds((None, "green"), (300, "orange"), (900, "red")),
        )
    )
    d = d.with_panel(st("Evaluation duration", "s", [_target("exporter_eval_duration", instant=True)]))
    d = d.with_panel(st("Checks applicable", "bool", [_target("check_applicable", "{{check}}", instant=True)]))
    d = d.with_panel(ts("Check duration", "s", [_target("exporter_check_duration", "{{check}}")], w=8))
    d = d.with_panel(
        ts("Source kinds not synced", "short", [_target("exporter_kind_not_synced", "{{kind}} {{state}}")], w=8)
    )
    d = d.with_panel(
        ts(
            "Series dropped by the cap / API errors",
            "short",
            [
                _target("exporter_series_dropped", "dropped {{check}}"),
                _target("exporter_api_errors", "{{verb}} {{code}}", ref="B"),
            ],
            w=8,
        )
    )
    return d


def build_post_rebalance():
    d = _base(
        "ov-post-rebalance",
        "OpenShift Virtualization: post-rebalance watch",
        "now-48h",
        node=True,
        namespace=True,
        extra_tags=["rebalance"],
        rebalance_start=True,
    )
    d = d.annotation(
        db.AnnotationQuery()
        .name(ANNOTATION_START)
        .datasource(DS)
        .enable(True)
        .icon_color("blue")
        .expr(QUERIES["annot_migration_start"])
    )
    d = d.annotation(
        db.AnnotationQuery()
        .name(ANNOTATION_END)
        .datasource(DS)
        .enable(True)
        .icon_color("green")
        .expr(QUERIES["annot_migration_end"])
    )
    d = d.with_row(db.Row("Rebalance result"))
    d = d.with_panel(
        st(
            "Post-rebalance window open",
            "bool",
            [_target("window_active", instant=True)],
            w=6,
            description="Open for 48 h after the last migration ended",
        )
    )
    d = d.with_panel(st("Migrations in flight", "short", [_target("migrations_in_flight", instant=True)], w=6))
    d = d.with_panel(st("Migrations succeeded", "short", [_target("migrations_succeeded", instant=True)], w=4))
    d = d.with_panel(
        st(
            "Migrations failed",
            "short",
            [_target("migrations_failed", instant=True)],
            w=4,
            thresholds=_thresholds((None, "green"), (1, "red")),
        )
    )
    d = d.with_panel(
        st(
            "VMIs Pending / Scheduling",
            "short",
            [_target("vmis_pending", instant=True)],
            w=4,
            thresholds=_thresholds((None, "green"), (1, "orange")),
        )
    )
    d = d.with_panel(
        st(
            "Rebalance start (exporter)",
            "dateTimeAsIso",
            [_target("rebalance_start", instant=True)],
            w=6,
            description="ov_rebalance_start_timestamp_seconds: start of the earliest migration "
            "of the current wave, while the exporter's watch window is open",
        )
    )
    d = d.with_panel(
        tb(
            "Before / after per node (rebalance start vs end of range)",
            "percentunit",
            [
                _prom_table("cpu_util_before", "A"),
                _prom_table("cpu_util_now", "B"),
                _prom_table("cpu_util_change", "C"),
                _prom_table("mem_util_before", "D"),
                _prom_table("mem_util_now", "E"),
                _prom_table("mem_util_change", "F"),
            ],
            w=18,
            h=10,
            description="node_exporter CPU (1 - idle) and memory (1 - MemAvailable / MemTotal) of "
            "the nodes running VMs, each averaged over the hour before the rebalance "
            "start and before the end of the range: the expressions of `ov-exporter "
            "rebalance-report`. The start is the exporter's "
            "ov_rebalance_start_timestamp_seconds (the latest seen in the range); "
            "without one, the start of the range.",
        )
    )
    d = d.with_row(db.Row("Balance over time"))
    d = d.with_panel(
        ts(
            "CPU utilisation per VM node",
            "percentunit",
            [_target("cpu_util_node", "{{node}}"), _target("cpu_util_avg", "average", ref="B")],
            thresholds=_thresholds((None, "green"), (NODE_CPU_OVERLOADED, "red")),
            description=f"Red line: {NODE_CPU_OVERLOADED:.0%}, thresholds.node-cpu-overloaded "
            "(OVPostRebalanceNodeCPUHigh fires above it while the watch is open)",
        )
    )
    d = d.with_panel(
        ts(
            "CPU spread (busiest - idlest VM node)",
            "percentunit",
            [_target("cpu_spread", "spread"), _target("cpu_spread_avg1h", "1 h average", ref="B")],
        )
    )
    d = d.with_panel(
        ts(
            "Memory utilisation per VM node (node_exporter)",
            "percentunit",
            [_target("mem_util_node", "{{node}}")],
            thresholds=_thresholds((None, "green"), (NODE_MEMORY_OVERLOADED, "red")),
            description=f"Red line: {NODE_MEMORY_OVERLOADED:.0%}, thresholds.node-memory-overloaded, where a node "
            "counts as overloaded on memory",
        )
    )
    d = d.with_panel(
        ts(
            "Guest memory placed per node",
            "percentunit",
            [_target("mem_alloc_node", "{{node}}")],
            thresholds=OVERCOMMIT_MEM,
        )
    )
    d = d.with_panel(ts("VM vCPUs per node", "short", [_target("vcpus_per_node", "{{node}}")]))
    d = d.with_panel(
        ts(
            "Running VMs per node",
            "short",
            [_target("vms_per_node", "{{node}}")],
            w=24,
            thresholds=_thresholds((None, "green"), (250, "red")),
            description="kubevirt_vmi_info counted by node; red line: about 250 VMs per node, the most users run",
        )
    )
    d = d.with_row(db.Row("Alerts"))
    d = d.with_panel(
        tb(
            "Alerts fired in the window",
            "short",
            [_prom_table("alerts_fired_in_window")],
            w=12,
            links=_alert_runbook_link(),
            description="OV* alerts that fired at any time in the dashboard range "
            "(Prometheus ALERTS series), with links to their runbooks",
        )
    )
    d = d.with_panel(ts("OV alerts firing", "short", [_target("alerts_firing", "{{alertname}} {{severity}}")], w=12))
    d = d.with_row(db.Row("Migrations"))
    d = d.with_panel(
        ts(
            "Migrations in flight",
            "short",
            [_target("migrations_in_flight", "in flight")],
            w=8,
            thresholds=_thresholds((None, "green"), (5, "orange"), (10, "red")),
            description="More than 5 VMs in one batch is a warning; split above 10",
        )
    )
    d = d.with_panel(
        ts(
            "Migrations succeeded / failed",
            "short",
            [_target("migrations_succeeded", "succeeded"), _target("migrations_failed", "failed", ref="B")],
            w=8,
        )
    )
    d = d.with_panel(ts("VMIs Pending / Scheduling", "short", [_target("vmis_pending", "pending")], w=8))
    d = d.with_panel(
        ts(
            "Migrations by cause (exporter)",
            "short",
            [_target("migrations_by_cause", "{{cause}} {{phase}}")],
            w=24,
            description="VirtualMachineInstanceMigrations present, by cause (workload_update: "
            "an upgrade; drain: eviction from a cordoned node; descheduler; manual; "
            "declared) and phase. Only descheduler, manual and declared migrations "
            "open the post-rebalance watch.",
        )
    )
    d = d.with_panel(
        tb(
            "VMs migrated repeatedly (2+ in 48 h)",
            "short",
            [_prom_table("vm_migrated_repeatedly")],
            description="Succeeded VMIMs per VMI seen in the last 48 h, counted as upstream's "
            "KubeVirtVMIExcessiveMigrations does (kubevirt_vmi_migration_succeeded, "
            "KubeVirt >= 1.3; a VMIM counts while its object exists)",
        )
    )
    d = d.with_panel(tb("Failed migrations", "short", [_prom_table("migrations_failed_table")]))
    d = d.with_panel(
        st(
            "Migration duration p50 / p95 in the range (creation to Succeeded)",
            "s",
            [
                _target("migration_duration_p50", "p50", instant=True),
                _target("migration_duration_p95", "p95", ref="B", instant=True),
            ],
            w=8,
            h=8,
            description="kubevirt_vmi_migration_phase_transition_time_from_creation_seconds "
            "(KubeVirt >= 1.3), cluster-wide: the histogram has no namespace or VM "
            "label. Includes the time a migration waited in the queue (Pending).",
        )
    )
    d = d.with_panel(
        ts(
            "Migration duration p95 (creation to Succeeded)",
            "s",
            [_target("migration_duration_p95_over_time", "p95")],
            w=8,
            description="Cluster-wide, KubeVirt >= 1.3; see the stat beside",
        )
    )
    d = d.with_panel(
        tb(
            "Latest migration per VM: duration",
            "s",
            [_prom_table("migration_duration_latest")],
            w=8,
            description="kubevirt_vmi_migration_end_time_seconds - start_time_seconds of each "
            "VMI's latest succeeded migration (KubeVirt >= 1.4.1; empty before)",
        )
    )
    d = d.with_row(db.Row("VM-side impact"))
    d = d.with_panel(
        ts(
            "vCPU delay per VM (top 10): share of time a vCPU waited for a host CPU",
            "percentunit",
            [_target("vcpu_delay_top", "{{namespace}}/{{name}}")],
            thresholds=_thresholds((None, "green"), (0.05, "orange"), (0.2, "red")),
            description="rate(kubevirt_vmi_vcpu_delay_seconds_total) averaged over a VM's vCPUs "
            "(KubeVirt >= 1.3, virt-handler): the steal time the guest sees. Rising "
            "after a rebalance: the target node's CPUs are oversubscribed.",
        )
    )
    d = d.with_panel(
        ts(
            "Host CPU steal per VM node (node_exporter)",
            "percentunit",
            [_target("node_cpu_steal", "{{node}}")],
            description='node_cpu_seconds_total{mode="steal"}: non-zero only where the nodes '
            "are themselves virtual machines (cloud, nested)",
        )
    )
    d = d.with_panel(
        ts(
            "Guest swap traffic per VM (top 10)",
            "Bps",
            [
                _target("swap_in_top", "in {{namespace}}/{{name}}"),
                _target("swap_out_top", "out {{namespace}}/{{name}}", ref="B"),
            ],
            description="rate of kubevirt_vmi_memory_swap_in/out_traffic_bytes (KubeVirt >= 1.3, "
            "from the guest's balloon statistics: needs the virtio balloon driver)",
        )
    )
    d = d.with_panel(
        ts(
            "Node pressure (PSI): share of time tasks waited",
            "percentunit",
            [
                _target("psi_cpu", "cpu {{node}}"),
                _target("psi_memory", "memory {{node}}", ref="B"),
                _target("psi_io", "io {{node}}", ref="C"),
            ],
            description="node_exporter pressure collector (>= 0.18, on by default): "
            "node_pressure_{cpu,memory,io}_waiting_seconds_total. Empty where the "
            "kernel has PSI off (RHCOS: kernel argument psi=1)",
        )
    )
    d = d.with_panel(
        st(
            "VMs stopped or paused / in error",
            "short",
            [
                _target("vms_down_count", "stopped or paused", instant=True),
                _target("vms_error_count", "error", ref="B", instant=True),
            ],
            w=8,
            thresholds=_thresholds((None, "green"), (1, "orange")),
            description="kubevirt_vm_{non_running,error}_status_last_transition_timestamp_seconds "
            "> 0 (KubeVirt >= 1.3). KubeVirt publishes no per-migration downtime: "
            "the switch-over pause of a live migration is not visible here",
        )
    )
    d = d.with_panel(
        tb(
            "VMs down now, since",
            "dateTimeAsIso",
            [_prom_table("vms_down")],
            w=16,
            description="VMs whose status is stopped/paused or an error, with the time they entered "
            "it (KubeVirt >= 1.3); those after the rebalance start are its casualties",
        )
    )
    d = d.with_row(db.Row("etcd"))
    d = d.with_panel(
        ts(
            "etcd WAL fsync p99",
            "s",
            [_target("etcd_wal_fsync_p99", "{{instance}}")],
            thresholds=_thresholds((None, "green"), (0.01, "red")),
            description="Red line: 10 ms",
        )
    )
    d = d.with_panel(
        ts(
            "etcd backend commit p99",
            "s",
            [_target("etcd_backend_commit_p99", "{{instance}}")],
            thresholds=_thresholds((None, "green"), (0.025, "red")),
        )
    )
    d = d.with_row(db.Row("Exporter watch (rebalance_watch, migration_capacity)"))
    d = d.with_panel(
        st(
            "Watch window open (exporter)",
            "bool",
            [_target("ov_watch_active", instant=True)],
            w=6,
            description="rebalance-watch-window hours (default 48) after the last finished migration",
        )
    )
    d = d.with_panel(st("Last migration ended", "dateTimeAsIso", [_target("ov_last_migration", instant=True)], w=6))
    d = d.with_panel(
        st(
            "Migration slots in use (cluster)",
            "percentunit",
            [_target("ov_migrations_in_flight_ratio", instant=True)],
            w=6,
            thresholds=_thresholds((None, "green"), (0.8, "orange"), (1, "red")),
        )
    )
    d = d.with_panel(
        ts(
            "Outbound migration slots in use per node",
            "percentunit",
            [_target("ov_node_outbound_ratio", "{{node}}")],
            w=6,
            thresholds=_thresholds((None, "green"), (0.8, "orange"), (1, "red")),
        )
    )
    d = d.with_panel(
        ts(
            "VM allocation per node (requests / allocatable)",
            "percentunit",
            [_target("ov_alloc_node", "{{node}} {{resource}}")],
        )
    )
    d = d.with_panel(
        ts("Allocation spread (max - min across VM nodes)", "percentunit", [_target("ov_alloc_spread", "{{resource}}")])
    )
    d = d.with_panel(ts("Running VMIs per node", "short", [_target("ov_running_vmis_node", "{{node}}")], w=24))
    d = d.with_panel(
        tb(
            "Migrations failed in the watch window",
            "short",
            [_prom_table("rebalance_failed")],
            links=_alert_runbook_link("OVRebalanceWatchMigrationFailed"),
        )
    )
    d = d.with_panel(
        tb(
            "VMs migrated more than once in the watch window",
            "short",
            [_prom_table("rebalance_repeated")],
            links=_alert_runbook_link("OVRebalanceWatchVMMigratedRepeatedly"),
        )
    )
    return d


def build_live_migration():
    d = _base(
        "ov-live-migration",
        "OpenShift Virtualization: live migration",
        "now-6h",
        node=False,
        namespace=True,
        extra_tags=["migration"],
    )
    d = d.with_row(db.Row("Risk"))
    d = d.with_panel(
        ts(
            "Dirty-rate risk per VMI (exporter)",
            "percentunit",
            [_target("risk_per_vmi", "{{namespace}}/{{vmi}}")],
            thresholds=_thresholds((None, "green"), (DIRTY_INFO, "orange"), (DIRTY_WARNING, "red")),
        )
    )
    d = d.with_panel(
        ts(
            "Dirty-rate risk per VMI (PromQL)",
            "percentunit",
            [_target("risk_promql_per_vmi", "{{namespace}}/{{name}}")],
            thresholds=_thresholds((None, "green"), (DIRTY_INFO, "orange"), (DIRTY_WARNING, "red")),
        )
    )
    d = d.with_panel(
        ts(
            "Steady-state dirty rate against bandwidth",
            "Bps",
            [
                _target("dirty_rate_steady", "{{namespace}}/{{name}}"),
                _target("bandwidth", "bandwidth per migration", ref="B"),
            ],
        )
    )
    d = d.with_panel(
        tb(
            "Predicted duration against the completion timeout",
            "s",
            [_prom_table("predicted_duration", "A"), _prom_table("completion_timeout", "B")],
        )
    )
    d = d.with_panel(
        ts(
            "Predicted duration / completion timeout",
            "percentunit",
            [_target("predicted_over_timeout", "{{namespace}}/{{vmi}}")],
            w=24,
            thresholds=_thresholds((None, "green"), (1, "red")),
        )
    )
    d = d.with_row(db.Row("Migrations in progress"))
    d = d.with_panel(
        ts(
            "Dirty rate against transfer rate (running)",
            "Bps",
            [
                _target("migration_dirty_rate", "dirty {{namespace}}/{{name}}"),
                _target("migration_transfer_rate", "transfer {{namespace}}/{{name}}", ref="B"),
            ],
        )
    )
    d = d.with_panel(
        ts(
            "Dirty / transfer ratio (running)",
            "percentunit",
            [_target("migration_dirty_ratio", "{{namespace}}/{{name}}")],
            thresholds=_thresholds((None, "green"), (1, "red")),
        )
    )
    d = d.with_panel(
        ts("Data remaining (running)", "bytes", [_target("migration_data_remaining", "{{namespace}}/{{name}}")])
    )
    d = d.with_panel(
        st(
            "Migrations in flight / limit",
            "percentunit",
            [_target("migrations_in_flight_ratio", instant=True)],
            w=12,
            h=8,
            thresholds=_thresholds((None, "green"), (0.8, "orange"), (1, "red")),
        )
    )
    return d


BUILDERS = {
    "ov-overview": build_overview,
    "ov-post-rebalance": build_post_rebalance,
    "ov-live-migration": build_live_migration,
}

# Prometheus annotation options the SDK's AnnotationQuery has no setter for, by name.
ANNOTATION_START = "Migration starts (KubeVirt >= 1.4.1)"
ANNOTATION_END = "Migration ends (KubeVirt >= 1.4.1)"
ANNOTATION_OPTIONS = {
    ANNOTATION_START: {
        "useValueForTime": True,
        "step": "1m",
        "titleFormat": "Migration {{migration_name}} started",
        "textFormat": "VMI {{namespace}}/{{name}}",
    },
    ANNOTATION_END: {
        "useValueForTime": True,
        "step": "1m",
        "titleFormat": "Migration {{migration_name}} ended ({{status}})",
        "textFormat": "VMI {{namespace}}/{{name}}",
    },
}


def render_data() -> dict[str, dict]:
    """uid -> each dashboard as a dict."""
    out = {}
    for uid, build in BUILDERS.items():
        data = json.loads(JSONEncoder(sort_keys=True).encode(build().build()))
        for number, panel in enumerate(data["panels"], start=1):
            panel["id"] = number  # unique panel ids (the SDK leaves them 0)
        for annotation in data.get("annotations", {}).get("list", []):
            annotation.update(ANNOTATION_OPTIONS.get(annotation.get("name"), {}))
        out[uid] = data
    return out


def _json(data: dict) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def render() -> dict[str, str]:
    """uid -> JSON text of each dashboard."""
    return {uid: _json(data) for uid, data in render_data().items()}


# ------------------------------------------------------------------------ deploy variants
ROOT = HERE.parent
DEPLOY_DIR = ROOT / "deploy" / "dashboards"
CONFIGMAP_PREFIX = "grafana-dashboard-"
SIDECAR_LABEL = {"grafana_dashboard": "1"}
OPERATOR_INSTANCE_SELECTOR = {"dashboards": "grafana"}
CONSOLE_NAMESPACE = "openshift-config-managed"
CONSOLE_LABEL = {"console.openshift.io/dashboard": "true"}
# Panel types the OpenShift console renders from dashboard ConfigMaps;
# it silently drops the others.
CONSOLE_PANEL_TYPES = {"graph", "singlestat", "table", "gauge", "grafana-piechart-panel", "row"}
# Grafana variables the console does not know, replaced by fixed values: the
# console reads the cluster's own Prometheus (no datasource or cluster choice).
CONSOLE_RATE_INTERVAL = "5m"
CONSOLE_INTERVAL = "1m"
COMMON_LABELS = {"app.kubernetes.io/name": "ov-exporter", "app.kubernetes.io/component": "dashboards"}


def _console_expr(expr: str, range_: str) -> str:
    return (
        expr.replace('"$cluster"', '".*"')
        .replace("$__rate_interval", CONSOLE_RATE_INTERVAL)
        .replace("$__interval", CONSOLE_INTERVAL)
        .replace("$__range", range_)
    )


def _single_value(panel: dict) -> bool:
    """One series on the console's own cluster: a stat without a per-series legend whose
    outer aggregation groups by nothing but cluster."""
    return all(
        "{{" not in _console_legend(t.get("legendFormat") or "") and not re.match(r"\w+ by \((?!cluster\))", t["expr"])
        for t in panel["targets"]
    )


def _console_legend(legend: str) -> str:
    """The console reads one cluster's Prometheus: its legends need no cluster."""
    return legend.removeprefix(CLUSTER_LEGEND)


def _console_targets(panel: dict, range_: str, table_format: bool) -> list[dict]:
    out = []
    for t in panel["targets"]:
        target = {"expr": _console_expr(CONSOLE_EXPRS.get(t["expr"], t["expr"]), range_), "refId": t["refId"]}
        if _console_legend(t.get("legendFormat") or ""):
            target["legendFormat"] = _console_legend(t["legendFormat"])
        if table_format:
            target.update(format="table", instant=True)
        out.append(target)
    return out


def _threshold_steps(panel: dict) -> list[dict]:
    return panel.get("fieldConfig", {}).get("defaults", {}).get("thresholds", {}).get("steps", [])


def _threshold_values(panel: dict) -> list[float]:
    return [s["value"] for s in _threshold_steps(panel) if s.get("value") is not None]


def _singlestat_colors(panel: dict) -> list[str]:
    """singlestat's three colours (below, between, above its two thresholds) from the steps."""
    colors = [s["color"] for s in _threshold_steps(panel)][:3]
    return colors + [colors[-1]] * (3 - len(colors))


def _console_panel(panel: dict, range_: str) -> tuple[dict | None, str]:
    """(console panel, "") or (None, why it is dropped)."""
    kind = panel["type"]
    base = {k: panel[k] for k in ("id", "title", "gridPos", "description") if k in panel}
    if kind == "row":
        return {**base, "type": "row", "collapsed": False, "panels": []}, ""
    exprs = " ".join(CONSOLE_EXPRS.get(t["expr"], t["expr"]) for t in panel.get("targets", []))
    if "${__from" in exprs or "${__to" in exprs or REBALANCE_START_VAR in exprs:
        return None, "reads the dashboard time range (${__from}/${__to}), which the console does not provide"
    unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit") or "short"
    thresholds = _threshold_values(panel)
    if kind == "timeseries":
        return {
            **base,
            "type": "graph",
            "targets": _console_targets(panel, range_, False),
            "lines": True,
            "fill": 1,
            "linewidth": 1,
            "legend": {"show": True},
            "tooltip": {"shared": True},
            "yaxes": [{"format": unit, "show": True}, {"format": "short", "show": False}],
            "thresholds": [
                {
                    "value": st["value"],
                    "op": "gt",
                    "colorMode": "custom",
                    "lineColor": st["color"],
                    "line": True,
                    "fill": False,
                }
                for st in _threshold_steps(panel)
                if st.get("value") is not None
            ],
        }, ""
    if kind == "stat" and _single_value(panel):
        out = {
            **base,
            "type": "singlestat",
            "targets": _console_targets(panel, range_, False),
            "format": unit,
            "valueName": "current",
        }
        if thresholds:
            out.update(
                thresholds=",".join(str(v) for v in thresholds[:2]), colorValue=True, colors=_singlestat_colors(panel)
            )
        return out, ""
    if kind in ("stat", "table"):  # a stat over several series becomes a table of them
        return {
            **base,
            "type": "table",
            "targets": _console_targets(panel, range_, True),
            "styles": [
                {"pattern": "Time", "type": "hidden"},
                {"pattern": "/^Value/", "type": "number", "unit": unit, "decimals": 2},
                {"pattern": "/.*/", "type": "string"},
            ],
        }, ""
    return None, f"panel type {kind} has no console equivalent"


def console_variant(data: dict) -> tuple[dict, list[str]]:
    """The OpenShift console variant of a dashboard, and what it leaves out."""
    range_ = data["time"]["from"].removeprefix("now-")
    omitted = []
    panels = []
    for panel in data["panels"]:
        converted, why = _console_panel(panel, range_)
        if converted is None:
            omitted.append(f"panel {panel['title']!r}: {why}")
        else:
            panels.append(converted)
        for inner in panel.get("panels") or []:  # collapsed rows hold their panels
            converted, why = _console_panel(inner, range_)
            if converted is None:
                omitted.append(f"panel {inner['title']!r}: {why}")
            else:
                panels.append(converted)
    for annotation in data.get("annotations", {}).get("list", []):
        omitted.append(f"annotation {annotation['name']!r}: the console draws no annotations")
    variables = []
    for var in data["templating"]["list"]:
        if var["name"] in ("datasource", "cluster"):
            continue  # the console queries its own cluster's Prometheus
        if var["name"] == "rebalance_start":
            continue  # the console tables latch the start instead (CONSOLE_EXPRS)
        variables.append(
            {k: var[k] for k in ("name", "label", "type", "includeAll", "allValue", "refresh") if k in var}
            | {
                "query": _console_expr(var["query"], range_),
                "current": {"text": "All", "value": "$__all"},
                "options": [],
            }
        )
    omitted += [
        f"variable {name!r}: the console reads its own cluster's Prometheus"
        for name in ("datasource", "cluster")
        if name in {v["name"] for v in data["templating"]["list"]}
    ]
    out = {k: data[k] for k in ("uid", "title", "tags", "time", "refresh", "timezone", "schemaVersion") if k in data}
    out.update(panels=panels, templating={"list": variables}, annotations={"list": []}, editable=False)
    return out, omitted


class _Literal(str):
    pass


def _yaml(docs: list[dict]) -> str:
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    Dumper.add_representer(_Literal, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", v, style="|"))
    return yaml.dump_all(docs, Dumper=Dumper, sort_keys=False, width=1000)


HEADER = "# Generated by `make dashboards` (dashboards/generate.py) from dashboards/*.json: do not edit.\n"


def _configmap(uid: str, text: str, namespace: str | None, labels: dict) -> dict:
    meta = {"name": CONFIGMAP_PREFIX + uid}
    if namespace:
        meta["namespace"] = namespace
    meta["labels"] = {**COMMON_LABELS, **labels}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {f"{uid}.json": _Literal(text)}}


def _kustomization(comment: str, files: list[str]) -> str:
    body = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": files}
    return HEADER + "".join(f"# {line}".rstrip() + "\n" for line in comment.splitlines()) + _yaml([body])


VARIANT_DOCS = {
    "grafana-sidecar": 'ConfigMaps for the Grafana dashboard sidecar (label grafana_dashboard: "1").\n'
    "No namespace is set: `oc apply -k deploy/dashboards/grafana-sidecar -n <namespace>`\n"
    "with a namespace the sidecar searches.",
    "grafana-operator": "GrafanaDashboard resources for grafana-operator (grafana.integreatly.org/v1beta1),\n"
    "picked up by Grafana instances labelled dashboards: grafana.\n"
    "No namespace is set: `oc apply -k deploy/dashboards/grafana-operator -n <namespace>`\n"
    "with a namespace the operator watches.",
    "openshift-console": "ConfigMaps for the OpenShift console (Observe > Dashboards) in openshift-config-managed,\n"
    "console variants with only the panel types the console renders;\n"
    "deploy/dashboards/README.md lists what they leave out.",
}


def render_deploy() -> dict[str, str]:
    """Path relative to deploy/dashboards/ -> text of every deploy variant file."""
    out: dict[str, str] = {}
    data = render_data()
    files = {variant: [] for variant in VARIANT_DOCS}
    omissions: dict[str, list[str]] = {}
    for uid, dash in data.items():
        text = _json(dash)
        name = f"{uid}.yaml"
        out[f"grafana-sidecar/{name}"] = HEADER + _yaml([_configmap(uid, text, None, SIDECAR_LABEL)])
        operator = {
            "apiVersion": "grafana.integreatly.org/v1beta1",
            "kind": "GrafanaDashboard",
            "metadata": {"name": uid, "labels": dict(COMMON_LABELS)},
            "spec": {"instanceSelector": {"matchLabels": dict(OPERATOR_INSTANCE_SELECTOR)}, "json": _Literal(text)},
        }
        out[f"grafana-operator/{name}"] = HEADER + _yaml([operator])
        console, omitted = console_variant(dash)
        omissions[uid] = omitted
        out[f"openshift-console/{name}"] = HEADER + _yaml(
            [_configmap(uid, _json(console), CONSOLE_NAMESPACE, CONSOLE_LABEL)]
        )
        for variant in files:
            files[variant].append(name)
    for variant, doc in VARIANT_DOCS.items():
        out[f"{variant}/kustomization.yaml"] = _kustomization(doc, files[variant])
    lines = [
        "<!-- Generated by `make dashboards` (dashboards/generate.py): do not edit. -->",
        "# Dashboard install variants",
        "",
        "Pick one directory and apply it with `oc apply -k`:",
        "",
    ]
    lines += [f"- `{variant}/`: {' '.join(doc.splitlines())}" for variant, doc in VARIANT_DOCS.items()]
    lines += [
        "",
        "## What the OpenShift console variants leave out",
        "",
        "The console renders only `graph`, `singlestat`, `table`, `gauge`, `grafana-piechart-panel`",
        "and rows, and knows no Grafana data source, annotations or dashboard-range variables. The",
        "console variants turn time series into `graph`, single-value stats into `singlestat` and",
        "multi-series stats into `table`; `$__rate_interval` becomes "
        f"`{CONSOLE_RATE_INTERVAL}`, `$__range` the dashboard's default",
        "range, and `$cluster` matches everything. Left out:",
        "",
    ]
    for uid, omitted in omissions.items():
        lines.append(f"- `{uid}`:")
        lines += [f"  - {item}" for item in omitted] or ["  - nothing"]
    out["README.md"] = "\n".join(lines) + "\n"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 when a committed JSON differs")
    ap.add_argument("--out", type=Path, default=HERE, help="output directory (default: dashboards/)")
    ap.add_argument(
        "--deploy-out",
        type=Path,
        default=None,
        help="deploy variants directory (default: deploy/dashboards/, or <out>/deploy with --out)",
    )
    args = ap.parse_args(argv)
    deploy_out = args.deploy_out or (DEPLOY_DIR if args.out == HERE else args.out / "deploy")
    stale = []
    outputs = {args.out / f"{uid}.json": text for uid, text in render().items()}
    outputs |= {deploy_out / rel: text for rel, text in render_deploy().items()}
    for path, text in outputs.items():
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print(f"stale: {', '.join(stale)}: run python dashboards/generate.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
