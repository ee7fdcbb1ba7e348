"""Live-migration readiness: one verdict per VirtualMachine with every reason that
blocks its live migration right now, under every eviction strategy."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..config import Config
from ..model import Severity
from ..records import Node, VirtualMachine, VirtualMachineInstance
from ..records.base import shared_map
from ..store import Changed, ClusterState
from . import placement
from .k8s import (
    Setting,
    cluster_eviction_strategy,
    labels,
    migration_setting,
    vm_template_spec,
    vmi_dedicated,
    vmi_guest_memory,
    vmi_node,
    vmi_vcpus,
)
from .selectors import node_term_matches
from .storage import DATA_VOLUMES, FALLBACK_KINDS, PVCS, VMS, vm_disks, vms_claiming

GI = 2**30
HANDLER_NAMESPACES = ("openshift-cnv", "kubevirt")
HANDLER_LABEL = ("kubevirt.io", "virt-handler")
FINISHED_VMIM_PHASES = ("Succeeded", "Failed")
DEFAULT_PARALLEL_MIGRATIONS = 5

# The fixed reason enum (label `reason`); order = the order they are reported in.
NOT_RUNNING = "not_running"
NOT_LIVE_MIGRATABLE = "not_live_migratable"
RWO_DISK = "rwo_disk"
NO_TARGET_NODE = "no_target_node"
VIRT_HANDLER_NOT_READY = "virt_handler_not_ready"
MIGRATION_SLOTS_FULL = "migration_slots_full"
REASONS: dict[str, str] = {
    NOT_RUNNING: "the VM has no VMI, or its VMI is not in phase Running: nothing to live migrate",
    NOT_LIVE_MIGRATABLE: "the VMI's LiveMigratable condition is False (KubeVirt's reason in the message)",
    RWO_DISK: "a PVC or DataVolume disk lacks ReadWriteMany access (judged here, not taken from KubeVirt)",
    NO_TARGET_NODE: "no other node passes the target test (domain/placement.py): VM-schedulable, Ready, a Ready "
    "virt-handler, the VM's nodeSelector, required node affinity, tolerations, pod (anti-)affinity and topology "
    "spread, and room for its requests plus the virt-launcher overhead",
    VIRT_HANDLER_NOT_READY: "the virt-handler pod on the VM's node is missing or not Ready",
    MIGRATION_SLOTS_FULL: "in-flight VirtualMachineInstanceMigrations already fill parallelMigrationsPerCluster",
}
# Reasons that do not, alone, make a running VM's drain hang: they pass.
TRANSIENT = frozenset({MIGRATION_SLOTS_FULL})


@dataclass(slots=True)
class Verdict:
    namespace: str
    name: str
    eviction_strategy: str
    strategy_origin: str
    node: str = ""
    reasons: dict[str, str] = field(default_factory=dict)  # reason -> detail, in REASONS order
    running: bool = False
    series_node: str = ""  # where its VMI is active (k8s.vmi_node): the `node` label of its series

    @property
    def blocked(self) -> bool:
        return bool(self.reasons)

    @property
    def severity(self) -> Severity | None:
        if not self.reasons:
            return None
        if not self.running or self.eviction_strategy == "None" or set(self.reasons) <= TRANSIENT:
            return Severity.INFO
        return Severity.WARNING

    def to_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "vm": self.name,
            "node": self.node,
            "running": self.running,
            "eviction_strategy": self.eviction_strategy,
            "eviction_strategy_origin": self.strategy_origin,
            "migratable": not self.blocked,
            "severity": str(self.severity) if self.severity else "none",
            "reasons": [{"reason": r, "detail": d, "remediation": REMEDIATION[r]} for r, d in self.reasons.items()],
        }


REMEDIATION: dict[str, str] = {
    NOT_RUNNING: "Start the VM (virtctl start) if it must move live, or move it cold: it has nothing to migrate.",
    NOT_LIVE_MIGRATABLE: "Fix what KubeVirt names: e.g. bridge binding on the pod network -> masquerade; "
    "host devices or hotplugged volumes -> detach; then re-check.",
    RWO_DISK: "Move the disks to an RWX storage class (storage live migration or DataVolume clone), "
    "or plan a cold migration.",
    NO_TARGET_NODE: "Free or add capacity on another node that matches the VM's nodeSelector/affinity, "
    "or relax the selector.",
    VIRT_HANDLER_NOT_READY: "Check the virt-handler pod on the node (oc -n openshift-cnv get pods -l "
    "kubevirt.io=virt-handler -o wide); it drives the migration from the source side.",
    MIGRATION_SLOTS_FULL: "Wait for running migrations to finish or cancel stuck ones; raise "
    "parallelMigrationsPerCluster only if the migration network has headroom.",
}


# ---------------------------------------------------------------- node matching


def node_matches(spec: Any, node: Node) -> bool:
    """nodeSelector and required node affinity (terms ORed, requirements ANDed)."""
    node_labels = labels(node)
    for key, value in (spec.node_selector or {}).items():
        if node_labels.get(key) != value:
            return False
    affinity = spec.affinity.node_affinity if spec.affinity else None
    required = affinity.required_during_scheduling_ignored_during_execution if affinity else None
    terms = (required.node_selector_terms if required else None) or []
    if not terms:
        return True
    return any(node_term_matches(term, node.metadata.name, node_labels) for term in terms)


def _node_ready(node: Node) -> bool:
    for cond in (node.status.conditions if node.status else None) or []:
        if cond.type == "Ready":
            return cond.status == "True"
    return True  # dumps without conditions: assume Ready


def _allocatable(node: Node, resource: str) -> float | None:
    alloc = (node.status.allocatable if node.status else None) or (node.status.capacity if node.status else None) or {}
    value = alloc.get(resource)
    return float(value) if value is not None else None


def vmi_requests(vmi: VirtualMachineInstance, ratio: float) -> tuple[float, float]:
    """(CPU, memory bytes) a VMI's launcher pod requests: explicit requests, else vCPUs divided
    by vmiCPUAllocationRatio (dedicated CPUs: one CPU each) and the guest memory."""
    domain = vmi.spec.domain if vmi.spec else None
    requests = (domain.resources.requests if domain and domain.resources else None) or {}
    if requests.get("cpu"):
        cpu = float(requests["cpu"])
    elif vmi_dedicated(vmi):
        cpu = float(vmi_vcpus(vmi))
    else:
        cpu = vmi_vcpus(vmi) / ratio
    memory = float(requests["memory"]) if requests.get("memory") else (vmi_guest_memory(vmi) or 0.0)
    return cpu, memory


# ---------------------------------------------------------------- virt-handler


def handler_readiness(state: ClusterState) -> dict[str, bool] | None:
    """node -> a Ready virt-handler runs there; None when no virt-handler pod is known at all
    (the dump has no pods, or KubeVirt runs elsewhere): the reason is not judged then. Kept
    while the pods do not change (state.per_kinds)."""
    return state.per_kinds("virt-handler readiness", ("pods",), _handler_readiness)


def _handler_readiness(state: ClusterState) -> dict[str, bool] | None:
    nodes: dict[str, bool] = {}
    for pod in state.of("pods"):
        meta = pod.metadata
        if meta.namespace not in HANDLER_NAMESPACES or (meta.labels or {}).get(HANDLER_LABEL[0]) != HANDLER_LABEL[1]:
            continue
        node = pod.spec.node_name if pod.spec else ""
        if not node:
            continue
        status = pod.status
        ready = (
            status is not None
            and status.phase == "Running"
            and any(c.type == "Ready" and c.status == "True" for c in status.conditions or [])
        )
        nodes[node] = nodes.get(node, False) or ready
    return nodes or None


# ---------------------------------------------------------------- verdicts


def _live_migratable(vmi: VirtualMachineInstance) -> tuple[bool, str]:
    for cond in (vmi.status.conditions if vmi.status else None) or []:
        if cond.type == "LiveMigratable" and cond.status == "False":
            return False, cond.reason or "no reason given"
    return True, ""


def _gib(value: float) -> str:
    return f"{value / GI:.1f} GiB"


@dataclass(frozen=True)
class Readiness:
    """Every VM's verdict and the migration slots they were judged against."""

    verdicts: dict[tuple[str, str], Verdict]  # (namespace, VM name) -> Verdict
    in_flight: int  # migrations not finished
    limit: Setting  # parallelMigrationsPerCluster, with where it came from
    # The verdicts of an earlier state and the VMs whose verdict may differ from them (every
    # other VM has the very same verdict, in the same order); None: not known.
    since: tuple[dict[tuple[str, str], Verdict], frozenset[tuple[str, str]]] | None = None


def readiness(state: ClusterState, config: Config) -> Readiness:
    """Computed once per state (the check and `check --vm` share it)."""
    return state.derive("migration_readiness", lambda s: _readiness(s, config))


def verdicts(state: ClusterState, config: Config) -> dict[tuple[str, str], Verdict]:
    """(namespace, VM name) -> Verdict, for every VirtualMachine."""
    return readiness(state, config).verdicts


VMIS = "virtualmachineinstances.kubevirt.io"
VMIMS = "virtualmachineinstancemigrations.kubevirt.io"
SETTINGS = ("hyperconvergeds.hco.kubevirt.io", "kubevirts.kubevirt.io")
# Every kind a verdict reads: its VM, its VMI, the disks' claims and what their access
# modes fall back to, the migrations in flight, the nodes, pods and settings (the target
# test, virt-handler readiness, the default eviction strategy, the migration slots).
VERDICT_KINDS = (VMS, VMIS, PVCS, DATA_VOLUMES, *FALLBACK_KINDS, VMIMS, "nodes", "pods", *SETTINGS)
EVERY_ROOM = "*"  # a part's target test reads every room and launcher pod (placement.has_pod_terms or no target)


@dataclass(frozen=True, slots=True)
class _Runtime:
    """The part of a verdict that does not read the disks' claims."""

    eviction_strategy: str
    strategy_origin: str
    node: str
    running: bool
    series_node: str
    reasons: dict[str, str]  # besides not_live_migratable and rwo_disk
    live_migratable: tuple[bool, str]
    # The rooms its target test read: a room's name (the witness it passed, see
    # placement.witness), EVERY_ROOM, or "" (no target test: not running).
    reads: str = field(default="", compare=False)


@dataclass(frozen=True)
class _Verdicts:
    """Every VM's verdict and its runtime part, and what they were judged against."""

    context: tuple  # (default strategy, virt-handlers, migrations in flight, limit): read by every part
    targets: placement.Targets
    parts: dict[tuple[str, str], tuple[VirtualMachine, _Runtime]]
    verdicts: dict[tuple[str, str], Verdict]  # in the VMs' order
    by_room: dict[str, frozenset[tuple[str, str]]]  # witness room -> the VMs whose test passed it
    every: frozenset[tuple[str, str]]  # the VMs whose test reads every room and pod
    since: tuple[dict, frozenset[tuple[str, str]]] | None = None  # see Readiness.since


def _readiness(state: ClusterState, config: Config) -> Readiness:
    kept = state.per_changes(
        "readiness verdicts",
        VERDICT_KINDS,
        lambda s: _judge_all(s, config, None),
        lambda s, kept, changed: _judge_changed(s, config, kept, changed),
        (config,),
    )
    in_flight, limit = kept.context[2], kept.context[3]
    return Readiness(kept.verdicts, in_flight, limit, kept.since)


def eviction_default(state: ClusterState) -> Setting:
    """k8s.cluster_eviction_strategy, kept while the nodes and settings do not change."""
    return state.per_kinds("cluster eviction strategy", ("nodes", *SETTINGS), cluster_eviction_strategy)


def in_flight_migrations(state: ClusterState) -> int:
    """VMIMs not finished, kept while the VMIMs do not change."""
    return state.per_kinds(
        "migrations in flight",
        (VMIMS,),
        lambda s: sum(1 for m in s.migrations if (m.status.phase if m.status else "") not in FINISHED_VMIM_PHASES),
    )


def _context(state: ClusterState) -> tuple:
    limit = migration_setting(state, "parallel_migrations_per_cluster", DEFAULT_PARALLEL_MIGRATIONS)
    return eviction_default(state), handler_readiness(state), in_flight_migrations(state), limit


def _judge_all(state: ClusterState, config: Config, kept: _Verdicts | None) -> _Verdicts:
    """Every VM judged (the runtime part of each computed again); a verdict equal to the
    kept one is that very object, so that what checks derive from it can be kept with it
    (domain.incremental.joined)."""
    context, rooms = _context(state), placement.targets(state, config)
    parts, verdicts = {}, {}
    previous = kept.verdicts if kept is not None else {}
    for vm in state.vms:
        where = (vm.metadata.namespace, vm.metadata.name)
        vmi = state.get(VMIS, *where)
        part = _runtime(state, vm, vmi, context, rooms)
        parts[where] = (vm, part)
        verdicts[where] = _kept_verdict(previous, _verdict(vm, part, vm_disks(state, vm)[0]))
    return _indexed(context, rooms, parts, verdicts)


def _kept_verdict(previous: dict[tuple[str, str], Verdict], verdict: Verdict) -> Verdict:
    before = previous.get((verdict.namespace, verdict.name))
    return before if before == verdict else verdict


def _indexed(context: tuple, rooms: placement.Targets, parts: dict, verdicts: dict) -> _Verdicts:
    by_room: dict[str, set[tuple[str, str]]] = {}
    every = set()
    for where, (_, part) in parts.items():
        if part.reads == EVERY_ROOM:
            every.add(where)
        elif part.reads:
            by_room.setdefault(part.reads, set()).add(where)
    return _Verdicts(context, rooms, parts, verdicts, {k: frozenset(v) for k, v in by_room.items()}, frozenset(every))


def _judge_changed(
    state: ClusterState, config: Config, kept: _Verdicts, changed: Mapping[str, tuple[Changed, ...]]
) -> _Verdicts:
    """`_judge_all` after `changed`, judging again only the VMs the changes concern: a
    changed VM or VMI, the VMs naming a changed claim, and, when the targets changed, the
    VMs whose target test read a room that changed (its witness) or reads every room.
    Anything read by every VM (settings, virt-handlers, migrations in flight, the CPU
    allocation ratio, the namespaces with pod anti-affinity) changed: every VM."""
    context, rooms = _context(state), placement.targets(state, config)
    before = kept.targets
    if (
        context != kept.context
        or rooms.ratio != before.ratio
        or rooms.anti_affinity_namespaces != before.anti_affinity_namespaces
    ):
        return _judge_all(state, config, kept)
    runtime: set[tuple[str, str]] = set()  # VMs whose runtime part is judged again
    for key in (VMS, VMIS):
        runtime.update((c.namespace, c.name) for c in changed.get(key, ()))
    if rooms.rooms is not before.rooms or rooms.pods is not before.pods:
        runtime |= kept.every
        for name in _rooms_changed(before, rooms):
            runtime |= kept.by_room.get(name, frozenset())
    disks: set[tuple[str, str]] = set()  # VMs whose disks' verdict may have changed
    for key in (PVCS, DATA_VOLUMES):
        for c in changed.get(key, ()):
            disks.update(vms_claiming(state, c))
    # A StorageClass or StorageProfile changed: every disk's access modes may have changed.
    every_verdict = any(k in changed for k in FALLBACK_KINDS)
    return _rejudge(state, kept, context, rooms, runtime, disks, changed, every_verdict)


def _rooms_changed(before: placement.Targets, after: placement.Targets) -> list[str]:
    """The rooms that are not the very objects they were (built again, added or gone)."""
    gone = [name for name in before.rooms if name not in after.rooms]
    return gone + [name for name, room in after.rooms.items() if before.rooms.get(name) is not room]


def _rejudge(
    state: ClusterState,
    kept: _Verdicts,
    context: tuple,
    rooms: placement.Targets,
    runtime: set[tuple[str, str]],
    disks: set[tuple[str, str]],
    changed: Mapping[str, tuple[Changed, ...]],
    every_verdict: bool = False,
) -> _Verdicts:
    # A VM deleted (or deleted and back: it moved to the end of the VMs' order) leaves first.
    gone = {(c.namespace, c.name) for c in changed.get(VMS, ()) if c.record is None} & kept.parts.keys()
    new: dict[tuple[str, str], tuple[VirtualMachine, _Runtime]] = {}  # runtime parts that changed
    added = False
    for where in runtime:
        vm = state.get(VMS, *where)
        if vm is None:
            continue
        part = _runtime(state, vm, state.get(VMIS, *where), context, rooms)
        old = kept.parts.get(where) if where not in gone else None
        if old is None:
            added = True
        elif old[0] is vm and old[1] == part and old[1].reads == part.reads:
            continue  # the same VM with the same part: the kept entry stays
        new[where] = (vm, part)
    parts, by_room, every = kept.parts, kept.by_room, kept.every
    if gone or new:
        parts, changing = dict(parts), set(every)
        # Per room, the VMs leaving and joining its set, applied once per room: thousands of
        # VMs can share one witness room, and a set copied per VM made this quadratic.
        leaving: dict[str, set[tuple[str, str]]] = {}
        joining: dict[str, set[tuple[str, str]]] = {}
        for where in gone:
            _unindex(leaving, changing, where, parts.pop(where)[1])
        for where, entry in new.items():
            if where in parts:
                _unindex(leaving, changing, where, parts[where][1])
            parts[where] = entry
            part = entry[1]
            if part.reads == EVERY_ROOM:
                changing.add(where)
            elif part.reads:
                joining.setdefault(part.reads, set()).add(where)
        by_room = dict(by_room)
        for room in leaving.keys() | joining.keys():
            # A VM that leaves a room and joins it again (its part changed, not its witness) stays.
            members = by_room.get(room, frozenset()).difference(leaving.get(room, ())).union(joining.get(room, ()))
            if members:
                by_room[room] = members
            else:
                by_room.pop(room, None)
        every = frozenset(changing)
    verdicts = kept.verdicts
    again: dict[tuple[str, str], Verdict] = {}  # verdicts that are not the kept ones
    for where in parts if every_verdict else (runtime | disks) & parts.keys():
        vm, part = parts[where]
        verdict = _kept_verdict(kept.verdicts, _verdict(vm, part, vm_disks(state, vm)[0]))
        if where in gone or verdict is not kept.verdicts.get(where):
            again[where] = verdict
    if gone or again:
        verdicts = dict(verdicts)
        for where in gone:
            del verdicts[where]
        verdicts.update(again)
    since = (kept.verdicts, frozenset(again).union(gone))
    if added:  # a VM came (or came back): the verdicts go in the VMs' order, as _judge_all's
        order = [(vm.metadata.namespace, vm.metadata.name) for vm in state.vms]
        parts, verdicts = {w: parts[w] for w in order}, {w: verdicts[w] for w in order}
        since = None
    return _Verdicts(context, rooms, parts, verdicts, by_room, every, since)


def _unindex(leaving: dict[str, set[tuple[str, str]]], every: set, where: tuple[str, str], part: _Runtime) -> None:
    """The VM's entry out of what its part read: `every`, or its witness room (noted in `leaving`)."""
    if part.reads == EVERY_ROOM:
        every.discard(where)
    elif part.reads:
        leaving.setdefault(part.reads, set()).add(where)


# A running VM with nothing in its way: one empty map for all of them.
_NO_REASONS: dict[str, str] = {}


def _runtime(
    state: ClusterState,
    vm: VirtualMachine,
    vmi: VirtualMachineInstance | None,
    context: tuple,
    rooms: placement.Targets,
) -> _Runtime:
    default_strategy, handlers, in_flight, limit = context
    spec = vm_template_spec(vm)
    own = spec.eviction_strategy if spec else None
    reasons: dict[str, str] = {}
    phase = vmi.status.phase if vmi is not None and vmi.status else ""
    running = phase == "Running"
    node = vmi.status.node_name if vmi is not None and vmi.status else ""
    if vmi is None:
        reasons[NOT_RUNNING] = "no VirtualMachineInstance (the VM is stopped)"
    elif not running:
        reasons[NOT_RUNNING] = f"VMI phase is {phase or 'unknown'}, not Running"
    live_migratable = _live_migratable(vmi) if running else (True, "")
    reads = ""
    if running and node:
        target_spec = vmi.spec if vmi.spec is not None else spec
        found = placement.witness(rooms, vmi, target_spec)
        if found is None:
            reasons[NO_TARGET_NODE] = placement.no_target_detail(rooms, vmi, target_spec)
            reads = EVERY_ROOM
        else:
            reads = EVERY_ROOM if placement.has_pod_terms(rooms, vmi, target_spec) else found.name
        if handlers is not None and not handlers.get(node, False):
            reasons[VIRT_HANDLER_NOT_READY] = (
                f"virt-handler on {node} is not Ready" if node in handlers else f"no virt-handler pod on {node}"
            )
        if in_flight >= limit.value:
            reasons[MIGRATION_SLOTS_FULL] = _slots_full(in_flight, limit.value, limit.source)
    return _Runtime(
        own or default_strategy.value,
        "set on the VM" if own else f"cluster default from {default_strategy.source}",
        node,
        running,
        vmi_node(vmi) if vmi is not None else "",
        # One map for the VMs with the same reasons and texts (mid-rebalance, the 9,000 VMs of
        # XL waiting only for a migration slot); shared, so verdicts never alter it.
        shared_map(reasons) if reasons else _NO_REASONS,
        live_migratable,
        reads,
    )


@functools.lru_cache(maxsize=16)
def _slots_full(in_flight: int, limit: int, source: str) -> str:
    """The reason's text, one string for every VM it blocks (10,000 at XL mid-rebalance)."""
    return f"{in_flight} migration(s) in flight, parallelMigrationsPerCluster is {limit} ({source})"


def _verdict(vm: VirtualMachine, part: _Runtime, rwo: tuple[str, ...]) -> Verdict:
    ok, why = part.live_migratable
    not_migratable = not ok and not (why == "DisksNotLiveMigratable" and rwo)
    reasons = part.reasons  # in REASONS order (_runtime adds them in that order) and shared
    if not_migratable or rwo:
        more = dict(reasons)
        if not_migratable:
            more[NOT_LIVE_MIGRATABLE] = f"KubeVirt reports LiveMigratable=False ({why})"
        if rwo:
            more[RWO_DISK] = f"{len(rwo)} disk(s) without ReadWriteMany: {', '.join(rwo)}"
        reasons = {r: more[r] for r in REASONS if r in more}
    return Verdict(
        vm.metadata.namespace,
        vm.metadata.name,
        part.eviction_strategy,
        part.strategy_origin,
        part.node,
        reasons,
        part.running,
        part.series_node,
    )
