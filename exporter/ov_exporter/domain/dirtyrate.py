"""Predicted live-migration time of a VMI: guest memory against the per-migration
bandwidth minus its measured memory dirty rate. Shared by the migration_dirty_rate check
and the rebalance planner, so both predict the same figure."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .. import upstream
from ..config import Config
from ..records import VirtualMachineInstance
from ..store import ClusterState, UpstreamSample
from .k8s import Setting, labels, migration_setting, vmi_guest_memory


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


def policy_for(vmi: VirtualMachineInstance, ns_labels: dict[str, str], policies: tuple) -> Any | None:
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


@dataclass(frozen=True, slots=True)
class Prediction:
    rate: float  # memory dirty rate, bytes/s (0 when not measured)
    measured: bool  # a dirty-rate sample exists
    bandwidth: float  # bytes/s
    source: str  # where the bandwidth came from
    memory: float | None  # guest memory, bytes
    seconds: float  # predicted duration; +Inf when it never converges
    limit: float  # completionTimeoutPerGiB x guest GB (KubeVirt aborts after it)
    per_gib: Any  # completionTimeoutPerGiB in force

    @property
    def risk(self) -> float:
        return self.rate / self.bandwidth

    @property
    def converges(self) -> bool:
        return self.memory is not None and self.seconds <= self.limit


@dataclass(frozen=True)
class Bandwidths:
    cap: Setting  # bandwidthPerMigration
    timeout: Setting  # completionTimeoutPerGiB
    parallel: Setting  # parallelOutboundMigrationsPerNode
    link_share: float  # link speed / parallel outbound migrations
    cluster: float  # the cluster default per-migration bandwidth


def bandwidths(state: ClusterState, config: Config) -> Bandwidths:
    parallel = migration_setting(state, "parallel_outbound_migrations_per_node", 2)
    link_share = config.migration_link_bytes_per_second / max(1, parallel.value)
    cap = migration_setting(state, "bandwidth_per_migration", 0.0)
    timeout = migration_setting(state, "completion_timeout_per_gib", 150)
    cluster = min(cap.value, link_share) if cap.value else link_share
    return Bandwidths(cap, timeout, parallel, link_share, cluster)


def predictions(state: ClusterState, config: Config) -> dict[tuple[str, str], Prediction]:
    """(namespace, VMI name) -> Prediction for every Running VMI (rate 0 without samples)."""
    return state.derive("dirty_rate_predictions", lambda s: _predictions(s, config))


def _predictions(state: ClusterState, config: Config) -> dict[tuple[str, str], Prediction]:
    bw = bandwidths(state, config)
    samples = state.samples or {}
    dirty = _latest(samples, (upstream.DIRTY_RATE,))
    migrating_dirty = _latest(samples, upstream.MIGRATION_DIRTY_RATE)
    transfer = _latest(samples, upstream.MIGRATION_TRANSFER_RATE)
    ns_labels = {n.metadata.name: n.metadata.labels or {} for n in state.namespaces}
    parallel = max(1, bw.parallel.value)
    result: dict[tuple[str, str], Prediction] = {}
    for vmi in state.vmis:
        if vmi.status is None or vmi.status.phase != "Running":
            continue
        key = (vmi.metadata.namespace, vmi.metadata.name)
        measured = key in dirty or key in migrating_dirty
        rate = max(dirty.get(key, 0.0), migrating_dirty.get(key, 0.0))
        mig_cfg = vmi.status.migration_state.migration_configuration if vmi.status.migration_state else None
        policy = policy_for(vmi, ns_labels.get(key[0], {}), state.migration_policies)
        pspec = policy.spec if policy is not None else None
        if key in transfer and transfer[key] > 0:
            bandwidth, source = transfer[key], "measured transfer rate"
        elif mig_cfg is not None and mig_cfg.bandwidth_per_migration:
            bandwidth, source = min(mig_cfg.bandwidth_per_migration, bw.link_share), "VMI migrationConfiguration"
        elif pspec is not None and pspec.bandwidth_per_migration:
            bandwidth, source = (
                min(pspec.bandwidth_per_migration, bw.link_share),
                f"MigrationPolicy {policy.metadata.name}",
            )
        else:
            bandwidth, source = (
                bw.cluster,
                (
                    f"bandwidthPerMigration from {bw.cap.source}"
                    if bw.cap.value
                    else f"link speed / {parallel} parallel outbound migrations"
                ),
            )
        per_gib = (
            (mig_cfg.completion_timeout_per_gib if mig_cfg and mig_cfg.completion_timeout_per_gib else None)
            or (pspec.completion_timeout_per_gib if pspec and pspec.completion_timeout_per_gib else None)
            or bw.timeout.value
        )
        memory = vmi_guest_memory(vmi)
        seconds = memory / (bandwidth - rate) if memory is not None and bandwidth > rate else math.inf
        # KubeVirt: completionTimeoutPerGiB x memory in decimal GB, rounded up.
        limit = per_gib * math.ceil(memory / 1e9) if memory is not None else math.inf
        result[key] = Prediction(rate, measured, bandwidth, source, memory, seconds, limit, per_gib)
    return result
