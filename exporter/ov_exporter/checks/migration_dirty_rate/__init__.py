"""Anti-pattern 14: VMs that dirty memory faster than a migration can copy it."""

from __future__ import annotations

import math

from ...config import Config
from ...domain.dirtyrate import bandwidths, predictions
from ...domain.k8s import ref, vmi_node
from ...model import AlertDecl, CheckOutput, CheckSpec, Family, Finding, NotApplicable, Sample, Severity
from ...store import ClusterState

RISK = Family(
    "ov_migration_dirty_rate_risk",
    "gauge",
    "Memory dirty rate of a VMI divided by its effective per-migration bandwidth; at 1 or more a "
    "pre-copy live migration cannot converge. One series per VMI at or above the warning threshold "
    "or whose predicted duration exceeds its completion timeout; node: where it runs.",
    ("namespace", "vmi", "node"),
    per_object=True,
)
DURATION = Family(
    "ov_migration_predicted_duration_seconds",
    "gauge",
    "Predicted live migration time: guest memory / (bandwidth - dirty rate); +Inf when it never "
    "converges. Same VMIs as ov_migration_dirty_rate_risk.",
    ("namespace", "vmi", "node"),
    per_object=True,
    no_alert=(
        "same VMIs as ov_migration_dirty_rate_risk, which the alerts read; its limit (completionTimeoutPerGiB"
        " x guest GiB, per VMI) is not exported, so PromQL cannot judge it on its own"
    ),
)
TIMEOUT_VMI = Family(
    "ov_migration_completion_timeout_seconds",
    "gauge",
    "Completion timeout of a VMI's live migration: completionTimeoutPerGiB x guest memory in "
    "decimal GB, rounded up (as KubeVirt counts it). Same VMIs as ov_migration_dirty_rate_risk.",
    ("namespace", "vmi", "node"),
    per_object=True,
)
BANDWIDTH = Family(
    "ov_migration_bandwidth_bytes_per_second",
    "gauge",
    "Cluster default per-migration bandwidth: bandwidthPerMigration capped by link speed / "
    "parallelOutboundMigrationsPerNode; source of the cap: hco, kubevirt or default (unlimited).",
    ("source",),
    no_alert="configuration (effective bandwidthPerMigration); the PromQL dirty-rate fallback divides by it",
)
TIMEOUT = Family(
    "ov_migration_completion_timeout_per_gib_seconds",
    "gauge",
    "Configured completionTimeoutPerGiB; source: hco, kubevirt or default.",
    ("source",),
    no_alert="configuration (completionTimeoutPerGiB)",
)
PARALLEL = Family(
    "ov_migration_parallel_outbound_per_node",
    "gauge",
    "Configured parallelOutboundMigrationsPerNode; source: hco, kubevirt or default.",
    ("source",),
    no_alert="configuration (parallelOutboundMigrationsPerNode)",
)
RISK_THRESHOLD = Family(
    "ov_migration_dirty_rate_risk_threshold_ratio",
    "gauge",
    "The configured dirty-rate risk thresholds, read by OVVMIDirtyRateTooHighForMigration and the dashboards: "
    "severity info from thresholds.dirty-rate-risk-warning, severity warning from "
    "thresholds.dirty-rate-risk-critical.",
    ("severity",),
)

GIB = 2.0**30


def evaluate(state: ClusterState, config: Config) -> CheckOutput:
    if state.samples is None:
        raise NotApplicable("no dirty-rate samples: give the snapshot a .prom or Prometheus query JSON file")
    out = CheckOutput()
    bw = bandwidths(state, config)
    out.samples += [
        Sample(BANDWIDTH.name, (bw.cap.source,), bw.cluster),
        Sample(TIMEOUT.name, (bw.timeout.source,), bw.timeout.value),
        Sample(PARALLEL.name, (bw.parallel.source,), max(1, bw.parallel.value)),
        Sample(RISK_THRESHOLD.name, ("info",), config.thresholds.dirty_rate_risk_warning),
        Sample(RISK_THRESHOLD.name, ("warning",), config.thresholds.dirty_rate_risk_critical),
    ]
    warn, crit = config.thresholds.dirty_rate_risk_warning, config.thresholds.dirty_rate_risk_critical
    vmis = state.index("virtualmachineinstances.kubevirt.io")
    found = predictions(state, config)
    for key in sorted(k for k, p in found.items() if p.measured):
        p = found[key]
        vmi = vmis[key]
        risk, memory, predicted, limit = p.risk, p.memory, p.seconds, p.limit
        too_slow = memory is not None and predicted > limit
        if risk < warn and not too_slow:
            continue
        obj = ref("VirtualMachineInstance", vmi)
        series = (*key, vmi_node(vmi))
        out.samples.append(Sample(RISK.name, series, risk, obj))
        if memory is not None:  # without guest memory there is nothing to predict
            out.samples += [Sample(DURATION.name, series, predicted, obj), Sample(TIMEOUT_VMI.name, series, limit, obj)]
        # A migration that cannot converge fails and the VM keeps running on its source: a ticket.
        severity = Severity.WARNING if risk >= crit or too_slow else Severity.INFO
        mib = 2.0**20
        message = (
            f"dirty rate {p.rate / mib:.0f} MiB/s vs bandwidth {p.bandwidth / mib:.0f} MiB/s ({p.source}): "
            f"risk {risk:.2f}"
        )
        if memory is not None:
            message += (
                f"; predicted {'never (does not converge)' if math.isinf(predicted) else f'{predicted:.0f} s'}"
                f" for {memory / GIB:.1f} GiB, timeout {limit:.0f} s ({p.per_gib} s/GiB)"
            )
        out.findings.append(Finding(SPEC.id, severity, obj, message))
    return out


SPEC = CheckSpec(
    id="migration_dirty_rate",
    anti_pattern=14,
    title="Memory dirty rate too high for live migration to converge",
    severity_rules="info: risk (dirty rate / bandwidth) at or above thresholds.dirty-rate-risk-warning (default 0.5); "
    "warning: risk at or above thresholds.dirty-rate-risk-critical (default 1), or the "
    "predicted duration exceeds completionTimeoutPerGiB x guest GiB (the migration fails or is "
    "aborted and the VM keeps running on its source node)",
    families=(RISK, DURATION, TIMEOUT_VMI, BANDWIDTH, TIMEOUT, PARALLEL, RISK_THRESHOLD),
    remediation="Reduce the guest's write load before migrating (pause batch jobs, drain traffic), migrate over a "
    "dedicated faster network, raise bandwidthPerMigration, enable allowAutoConverge or post-copy for "
    "this VM through a MigrationPolicy, or cold migrate it.",
    alerts=(
        AlertDecl(
            "OVVMIDirtyRateTooHighForMigration",
            warning="migration_risk",
            info="hygiene",
            names="VirtualMachineInstance/vmi",
        ),
    ),
    settings=("migration-link-speed", "thresholds.dirty-rate-risk-warning", "thresholds.dirty-rate-risk-critical"),
    panels=(
        "ov-live-migration/Dirty-rate risk per VMI (exporter)",
        "ov-live-migration/Dirty-rate risk per VMI (PromQL)",
        "ov-live-migration/Steady-state dirty rate against bandwidth",
        "ov-live-migration/Predicted duration against the completion timeout",
        "ov-live-migration/Predicted duration / completion timeout",
        "ov-overview/VMIs at dirty-rate risk (top 20)",
    ),
    evaluate=evaluate,
    requires=("virtualmachineinstances.kubevirt.io",),
    reads=(
        "hyperconvergeds.hco.kubevirt.io",
        "kubevirts.kubevirt.io",
        "migrationpolicies.migrations.kubevirt.io",
        "namespaces",
    ),
    uses_samples=True,
)
