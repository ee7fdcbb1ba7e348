"""How unbalanced the VM nodes are and what a safe rebalance plan would take (the planner
of `ov-exporter plan`, goal spread). In `serve` it runs at most every five minutes: the
plan is advice for hours, and at 10,000 VMs the planner is a third of an evaluation."""

from __future__ import annotations

from ...config import Config
from ...domain import planner
from ...model import AlertDecl, CheckOutput, CheckSpec, Family, Finding, ObjectRef, Sample, Severity
from ...store import ClusterState

SPREAD = Family(
    "ov_rebalance_plan_spread_ratio",
    "gauge",
    "Spread of VM-node utilisation (busiest - idlest node, the worse of CPU and memory; measured usage or "
    "allocation, see ov_rebalance_plan_basis) now and after the rebalance plan `ov-exporter plan` proposes, "
    "and a proven lower bound on what any plan reaches (domain/planbound.py; absent when it cannot be stated). "
    "when: now, after, bound.",
    ("when",),
)
THRESHOLD = Family(
    "ov_rebalance_plan_spread_threshold_ratio",
    "gauge",
    "Configured thresholds.rebalance-spread-max: no plan while the spread is within it.",
)
MOVES = Family("ov_rebalance_plan_moves", "gauge", "Live migrations the rebalance plan needs.")
WAVES = Family(
    "ov_rebalance_plan_waves",
    "gauge",
    "Waves the plan's migrations are grouped into.",
    no_alert="what the plan OVRebalancePlanAvailable announces would take (panel and runbook)",
)
DURATION = Family(
    "ov_rebalance_plan_duration_seconds",
    "gauge",
    "Predicted duration of the plan: the sum of its waves' lengths (a wave lasts as long as its slowest "
    "migration; guest memory against the migration bandwidth minus the measured dirty rate).",
    no_alert="what the plan OVRebalancePlanAvailable announces would take",
)
UNMOVABLE = Family(
    "ov_rebalance_plan_unmovable_vms",
    "gauge",
    "Running VMs the plan may not move, by reason: a migration_readiness reason, no_vm (a VMI without a "
    "VirtualMachine), namespace_excluded, migrating (a migration in flight), not_converging (predicted "
    "migration slower than its completion timeout) or no_safe_target (no other node passes the target test).",
    ("reason",),
    no_alert="the reasons are migration_readiness's (alerted per VM by OVVMMigrationBlocked) or facts of the plan "
    "shown on the overview panel",
)

BASIS = Family(
    "ov_rebalance_plan_basis",
    "gauge",
    "What ov_rebalance_plan_spread_ratio measures: 1 for the basis in use, 0 for the other. usage: measured "
    "node CPU and memory utilisation (node_exporter, 5m) with each VM's measured CPU and resident memory, "
    "whenever Prometheus gives node usage samples; allocation: vCPUs and guest memory against what the "
    "thresholds allow. The thresholds a plan keeps are on allocation either way.",
    ("basis",),
    no_alert="it qualifies the spread series, whose alert is OVRebalancePlanAvailable",
)
FALLBACKS = Family(
    "ov_rebalance_plan_usage_fallbacks",
    "gauge",
    "On the usage basis, objects without fresh usage samples: nodes (their VMs' usage only) and movable VMs "
    "(counted at their allocation). object: node, vm.",
    ("object",),
    no_alert="a gap in the Prometheus samples the plan reads, listed in `ov-exporter plan`'s notes",
)

CLUSTER = ObjectRef("Cluster", "", "cluster")


def evaluate(state: ClusterState, config: Config) -> CheckOutput:
    thresholds = config.thresholds
    plan = planner.plan(state, config)
    out = CheckOutput()
    duration = sum(w.seconds or 0.0 for w in plan.waves)
    out.samples += [
        Sample(SPREAD.name, ("now",), plan.spread_before),
        Sample(SPREAD.name, ("after",), plan.spread_after),
        *([Sample(SPREAD.name, ("bound",), plan.lower_bound)] if plan.lower_bound is not None else []),
        Sample(THRESHOLD.name, (), thresholds.rebalance_spread_max),
        Sample(MOVES.name, (), len(plan.moves)),
        Sample(WAVES.name, (), len(plan.waves)),
        Sample(DURATION.name, (), duration),
        *(Sample(BASIS.name, (kind,), float(kind == plan.load_basis.kind)) for kind in planner.BASES),
        Sample(FALLBACKS.name, ("node",), len(plan.load_basis.fallback_nodes)),
        Sample(FALLBACKS.name, ("vm",), len(plan.load_basis.fallback_vms)),
    ]
    counts = dict.fromkeys(planner.UNMOVABLE_REASONS, 0)
    for vm in [*plan.unmovable(), *plan.stranded]:
        counts[vm.reason] = counts.get(vm.reason, 0) + 1
    out.samples += [Sample(UNMOVABLE.name, (reason,), n) for reason, n in counts.items()]
    if plan.moves and plan.spread_before > thresholds.rebalance_spread_max:
        out.findings.append(
            Finding(
                SPEC.id,
                Severity.WARNING,
                CLUSTER,
                f"node utilisation spread {plan.spread_before:.0%} ({plan.load_basis.kind}) above "
                f"{thresholds.rebalance_spread_max:.0%}; "
                f"a plan of {len(plan.moves)} live migration(s) in {len(plan.waves)} wave(s) "
                f"(~{duration / 60:.0f} min) brings it to {plan.spread_after:.0%}: run `ov-exporter plan`",
            )
        )
    return out


SPEC = CheckSpec(
    id="rebalance_plan",
    anti_pattern=19,
    also=(6,),
    title="Unbalanced VM nodes that a safe rebalance plan would even out",
    severity_rules="warning: the spread of VM-node utilisation is above thresholds.rebalance-spread-max (0.2) and "
    "a plan of safe moves lowers it (each move by at least thresholds.rebalance-min-gain)",
    families=(SPREAD, THRESHOLD, MOVES, WAVES, DURATION, UNMOVABLE, BASIS, FALLBACKS),
    remediation="Review `ov-exporter plan --output markdown`, apply it wave by wave (`--output manifests`), "
    "run `ov-exporter plan --verify` before each wave and watch the post-rebalance dashboard.",
    alerts=(AlertDecl("OVRebalancePlanAvailable", warning="degraded"),),
    settings=(
        "thresholds.rebalance-spread-max",
        "thresholds.rebalance-min-gain",
        "thresholds.cpu-overcommit-max",
        "thresholds.memory-overcommit-max",
        "profile",
        "thresholds.cpu-overcommit-target",
        "threads-per-core",
        "migration-link-speed",
    ),
    panels=(
        "ov-overview/Rebalance plan: spread now and after",
        "ov-overview/Rebalance plan: moves and unmovable VMs",
    ),
    evaluate=evaluate,
    requires=("nodes", "virtualmachineinstances.kubevirt.io"),
    reads=(
        "virtualmachines.kubevirt.io",
        "virtualmachineinstancemigrations.kubevirt.io",
        "pods",
        "persistentvolumeclaims",
        "datavolumes.cdi.kubevirt.io",
        "storageclasses.storage.k8s.io",
        "storageprofiles.cdi.kubevirt.io",
        "hyperconvergeds.hco.kubevirt.io",
        "kubevirts.kubevirt.io",
        "migrationpolicies.migrations.kubevirt.io",
        "namespaces",
    ),
    reads_samples=True,
    min_interval=300.0,
)
