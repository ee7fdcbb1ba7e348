"""Anti-pattern 14: VMs that dirty memory faster than a migration can copy it."""

from __future__ import annotations

import math
from typing import Any

from ... import upstream
from ...config import Config
from ...domain.k8s import labels, migration_setting, ref, vmi_guest_memory, vmi_node
from ...model import AlertDecl, CheckOutput, CheckSpec, Family, Finding, NotApplicable, Sample, Severity
from ...records import VirtualMachineInstance
from ...store import ClusterState, UpstreamSample

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


def _latest(samples: dict[str, list[UpstreamSample]], names: tuple[str, ...]) -> dict[tuple[str, str], float]:
    """(namespace, vmi name) -> latest value, across the given metric names."""
    best: dict[tuple[str, str], tuple[float, float]] = {}
    for metric in names:
        for s in samples.get(metric, ()):
            key = (s.labels.get("namespace", ""), s.labels.get("name") or s.labels.get("vmi", ""))
            ts = s.timestamp or 0.0
            if key[1] and (key not in best or ts >= best[key][0]) and math.isfinite(s.value) and s.value >= 0:
                best[key] = (ts, s.value)
    return {k: v for k, (_, v) in best.items()}


def _match_labels(selector: dict[str, Any] | None) -> dict[str, Any]:
    if not selector:
        return {}
    inner = selector.get("matchLabels")
    if isinstance(inner, dict):
        return inner
    return {k: v for k, v in selector.items() if k != "matchExpressions"}


def _policy_for(vmi: VirtualMachineInstance, ns_labels: dict[str, str], policies: tuple) -> Any | None:
    """The MigrationPolicy KubeVirt applies: every selector label must match; the most
    matching labels win (then the most VMI labels), then the first name. A policy with
    empty selectors matches every VMI with the lowest score; one without selectors none."""
    best, best_score = None, (-1, -1)
    vmi_labels = labels(vmi)
    for policy in sorted(policies, key=lambda p: p.metadata.name):
        sel = policy.spec.selectors if policy.spec else None
        if sel is None:
            continue
        want_ns, want_vmi = _match_labels(sel.namespace_selector), _match_labels(sel.virtual_machine_instance_selector)
        if all(ns_labels.get(k) == v for k, v in want_ns.items()) and all(
            vmi_labels.get(k) == v for k, v in want_vmi.items()
        ):
            score = (len(want_ns) + len(want_vmi), len(want_vmi))
            if score > best_score:
                best, best_score = policy, score
    return best


def evaluate(state: ClusterState, config: Config) -> CheckOutput:
    if state.samples is None:
        raise NotApplicable("no dirty-rate samples: give the snapshot a .prom or Prometheus query JSON file")
    out = CheckOutput()
    link_share_divisor = migration_setting(state, "parallel_outbound_migrations_per_node", 2)
    parallel = max(1, link_share_divisor.value)
    link_share = config.migration_link_bytes_per_second / parallel
    cap = migration_setting(state, "bandwidth_per_migration", 0.0)
    timeout = migration_setting(state, "completion_timeout_per_gib", 150)
    cluster_bw = min(cap.value, link_share) if cap.value else link_share
    out.samples += [
        Sample(BANDWIDTH.name, (cap.source,), cluster_bw),
        Sample(TIMEOUT.name, (timeout.source,), timeout.value),
        Sample(PARALLEL.name, (link_share_divisor.source,), parallel),
        Sample(RISK_THRESHOLD.name, ("info",), config.thresholds.dirty_rate_risk_warning),
        Sample(RISK_THRESHOLD.name, ("warning",), config.thresholds.dirty_rate_risk_critical),
    ]

    dirty = _latest(state.samples, (upstream.DIRTY_RATE,))
    migrating_dirty = _latest(state.samples, upstream.MIGRATION_DIRTY_RATE)
    transfer = _latest(state.samples, upstream.MIGRATION_TRANSFER_RATE)
    ns_labels = {n.metadata.name: n.metadata.labels or {} for n in state.namespaces}
    vmis = state.index("virtualmachineinstances.kubevirt.io")
    warn, crit = config.thresholds.dirty_rate_risk_warning, config.thresholds.dirty_rate_risk_critical

    for key in sorted(set(dirty) | set(migrating_dirty)):
        vmi = vmis.get(key)
        if vmi is None or vmi.status is None or vmi.status.phase != "Running":
            continue
        rate = max(dirty.get(key, 0.0), migrating_dirty.get(key, 0.0))
        mig_cfg = vmi.status.migration_state.migration_configuration if vmi.status.migration_state else None
        policy = _policy_for(vmi, ns_labels.get(key[0], {}), state.migration_policies)
        pspec = policy.spec if policy is not None else None
        if key in transfer and transfer[key] > 0:
            bandwidth, source = transfer[key], "measured transfer rate"
        elif mig_cfg is not None and mig_cfg.bandwidth_per_migration:
            bandwidth, source = min(mig_cfg.bandwidth_per_migration, link_share), "VMI migrationConfiguration"
        elif pspec is not None and pspec.bandwidth_per_migration:
            bandwidth, source = (
                min(pspec.bandwidth_per_migration, link_share),
                f"MigrationPolicy {policy.metadata.name}",
            )
        else:
            bandwidth, source = (
                cluster_bw,
                (
                    f"bandwidthPerMigration from {cap.source}"
                    if cap.value
                    else f"link speed / {parallel} parallel outbound migrations"
                ),
            )
        per_gib = (
            (mig_cfg.completion_timeout_per_gib if mig_cfg and mig_cfg.completion_timeout_per_gib else None)
            or (pspec.completion_timeout_per_gib if pspec and pspec.completion_timeout_per_gib else None)
            or timeout.value
        )
        memory = vmi_guest_memory(vmi)
        risk = rate / bandwidth
        predicted = memory / (bandwidth - rate) if memory is not None and bandwidth > rate else math.inf
        # KubeVirt: completionTimeoutPerGiB x memory in decimal GB, rounded up.
        limit = per_gib * math.ceil(memory / 1e9) if memory is not None else math.inf
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
            f"dirty rate {rate / mib:.0f} MiB/s vs bandwidth {bandwidth / mib:.0f} MiB/s ({source}): risk {risk:.2f}"
        )
        if memory is not None:
            message += (
                f"; predicted {'never (does not converge)' if math.isinf(predicted) else f'{predicted:.0f} s'}"
                f" for {memory / GIB:.1f} GiB, timeout {limit:.0f} s ({per_gib} s/GiB)"
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
