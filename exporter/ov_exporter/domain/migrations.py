"""What started a VirtualMachineInstanceMigration, and which phase group it is in.

Upstream markers, verified in kubevirt/kubevirt at v1.3.0 and v1.9.0:
- staging/src/kubevirt.io/api/core/v1/types.go: EvacuationMigrationAnnotation =
  "kubevirt.io/evacuationMigration", WorkloadUpdateMigrationAnnotation =
  "kubevirt.io/workloadUpdateMigration".
- pkg/virt-controller/watch/workload-updater/workload-updater.go: the workload updater
  creates "kubevirt-workload-update-*" VMIMs with the workload-update annotation (value "").
- pkg/virt-controller/watch/drain/evacuation/evacuation.go (GenerateNewMigration): the
  evacuation controller creates "kubevirt-evacuation-*" VMIMs for VMIs marked for eviction
  (status.evacuationNodeName), annotation value = the node being evacuated (node.Name).
  Node drains and descheduler evictions both end here: the descheduler marks nothing on the
  VMIM. Since v1.7.0 with the MigrationPriorityQueue feature gate (GA in v1.9.0) the
  controller sets spec.priority "system-maintenance" when the VMI's eviction came from the
  descheduler (annotation kubevirt.io/eviction-source=descheduler, set by
  pkg/virt-api/webhooks/validating-webhook/admitters/pod-eviction-admitter.go) and
  "system-critical" otherwise. Without a priority, a cordoned source node means a drain.
- Neither annotation: `virtctl migrate`, a manifest, or another tool created it.
"""

from __future__ import annotations

from datetime import datetime

from ..config import Config
from ..records import VirtualMachineInstanceMigration
from ..store import Changed, ClusterState

WORKLOAD_UPDATE_ANNOTATION = "kubevirt.io/workloadUpdateMigration"
EVACUATION_ANNOTATION = "kubevirt.io/evacuationMigration"
REBALANCE_ANNOTATION = "ov-exporter.openshift.io/rebalance"  # ours: the user declares a rebalance

CAUSES = ("workload_update", "drain", "descheduler", "manual", "declared")
REBALANCING = frozenset(("descheduler", "manual", "declared"))
PHASE_GROUPS = ("pending", "running", "succeeded", "failed")
PENDING_PHASES = frozenset(("", "Pending", "Scheduling"))  # queued: no target pod scheduled yet
FINAL_PHASES = ("Succeeded", "Failed")

_MEMO = "migration_causes"


def ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def phase_of(vmim: VirtualMachineInstanceMigration) -> str:
    return vmim.status.phase if vmim.status is not None else ""


def phase_group(phase: str) -> str:
    if phase in PENDING_PHASES:
        return "pending"
    if phase in FINAL_PHASES:
        return phase.lower()
    return "running"  # Scheduled ... Running, and v1.9's WaitingForSync / Synchronizing


def created(vmim: VirtualMachineInstanceMigration) -> float | None:
    """creationTimestamp, else the first phase transition."""
    stamp = ts(vmim.metadata.creation_timestamp)
    if stamp is None and vmim.status is not None:
        stamps = [
            ts(p.phase_transition_timestamp)
            for p in vmim.status.phase_transition_timestamps or ()
            if p.phase_transition_timestamp is not None
        ]
        stamp = min(stamps, default=None)
    return stamp


def _declared_window(stamp: float | None, config: Config) -> bool:
    return stamp is not None and any(
        w.start.timestamp() <= stamp <= w.end.timestamp() for w in config.rebalance_windows
    )


def _classify(vmim: VirtualMachineInstanceMigration, state: ClusterState, config: Config) -> str:
    annotations = vmim.metadata.annotations or {}
    if WORKLOAD_UPDATE_ANNOTATION in annotations:
        return "workload_update"
    if EVACUATION_ANNOTATION in annotations:
        priority = vmim.spec.priority if vmim.spec is not None else ""
        if priority == "system-maintenance":
            return "descheduler"
        if priority == "system-critical":
            return "drain"
        node = state.get("nodes", "", annotations[EVACUATION_ANNOTATION])
        # A node that is cordoned, or gone (drained and removed), was being drained.
        if node is None or (node.spec is not None and node.spec.unschedulable):
            return "drain"
        return "descheduler"
    if REBALANCE_ANNOTATION in annotations or _declared_window(created(vmim), config):
        return "declared"
    return "manual"


VMIMS = "virtualmachineinstancemigrations.kubevirt.io"


def causes(state: ClusterState, config: Config) -> dict[str, str]:
    """VMIM uid -> cause. The first classification of a VMIM sticks (state.remembered), so a node
    uncordoned after its drain does not turn the drain's migrations into descheduler ones.
    Computed once per state and kept: after a change only the changed VMIMs are classified
    (a VMIM that did not change keeps its cause, see _causes); both migration checks read it."""
    return state.per_changes(
        _MEMO,
        (VMIMS,),
        lambda s: _causes(s, config),
        lambda s, kept, changed: _causes_changed(s, config, kept, changed[VMIMS]),
        (config,),
    )


def _key(vmim: VirtualMachineInstanceMigration) -> str:
    return vmim.metadata.uid or f"{vmim.metadata.namespace}/{vmim.metadata.name}"


def _cause(vmim: VirtualMachineInstanceMigration, memo: dict[str, str], state: ClusterState, config: Config) -> str:
    cause = memo.get(_key(vmim))
    if cause is None or (cause == "manual" and _classify(vmim, state, config) == "declared"):
        cause = _classify(vmim, state, config)  # a rebalance can be declared after the fact
    return cause


def _causes(state: ClusterState, config: Config) -> dict[str, str]:
    memo: dict[str, str] = state.remembered(_MEMO)
    result = {_key(vmim): _cause(vmim, memo, state, config) for vmim in state.migrations}
    memo.clear()  # keep only the VMIMs still in the API
    memo.update(result)
    return result


def _causes_changed(
    state: ClusterState, config: Config, kept: dict[str, str], changed: tuple[Changed, ...]
) -> dict[str, str]:
    """`_causes` after `changed`: a VMIM that did not change keeps its cause (with the same
    settings, classifying it again gives what it gave when it was kept)."""
    memo: dict[str, str] = state.remembered(_MEMO)
    result = dict(kept)
    for c in changed:
        if c.record is None:  # deleted (or deleted and back: it moves to the end, as in the state)
            result.pop(c.uid if c.uid != f"{VMIMS}/{c.namespace}/{c.name}" else f"{c.namespace}/{c.name}", None)
        else:
            result[_key(c.record)] = _cause(c.record, memo, state, config)
    memo.clear()
    memo.update(result)
    return result


def cause_of(vmim: VirtualMachineInstanceMigration, table: dict[str, str]) -> str:
    return table[_key(vmim)]
