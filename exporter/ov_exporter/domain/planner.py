"""The rebalance planner: which VMs to move where, in waves the cluster can take.

`build_instance` turns a ClusterState into the plan model (domain/planmodel.py); `plan`
solves it for a goal and groups the moves into waves; `verify` tells whether a plan read
earlier still holds against a newer state. Read-only: nothing here creates a migration.

Goals:
- spread: minimise the spread of node utilisation (planmodel.spread) with few moves. A
  greedy local search moves one VM at a time from the busiest nodes to the idlest allowed
  ones, taking the move that lowers the spread most (ties: the sum of squared utilisations,
  so a move off one of two equally busy nodes still counts), or exchanges two VMs when no
  single move helps; the plan is cut back to the shortest prefix reaching its best spread.
  On small clusters seeded searches refine it (`_anneal`, pricing each moved VM at the
  minimum gain, exchanging two VMs only when one of them can go first): three simulated
  annealing walks on a smooth surrogate (one from the greedy plan, two from the placement),
  an iterated local search from the placement (polish with the best move or exchange, kick
  with a few random ones, keep the best) and a ruin and recreate (empty the busiest, the
  idlest and a random node or two, place their VMs again largest first, then polish; from
  several starts), each within a budget of work, not time. The
  moves of each result are ordered so that every step stays within the limits (a
  depth-first search when lightest-first gets stuck); when some cannot be ordered (they
  wait on each other in a cycle of full nodes), a further walk starts from those that can.
  Each candidate (the greedy's moves, the greedy pruned of moves worth less than the minimum
  gain, the searched plans) is ordered by gain, and of all their prefixes the plan is the
  one with the least spread plus the minimum gain per move (a move must be worth it), then
  the fewest moves, that leaves every VM a migration target. On small clusters that plan
  is then shortened at the same spread or less: two moves replaced by one (_fewer_moves),
  then another placement with fewer moves (_fewer_moves_placed). No plan when the spread is
  already within the threshold.
- drain NODE / evacuate-control-plane: every movable VM on the node(s) moves to the allowed
  node that keeps the spread lowest (largest VMs first); the node(s) leave the spread.

Waves: at most min(wave size, parallelMigrationsPerCluster) moves, at most
parallelOutboundMigrationsPerNode from one source and `inbound` (default 2) into one target;
a move whose target is a source of the wave (or whose source is a target) starts the next
wave, as Ganeti's hbal groups its jobsets. Each wave takes its lightest (quickest) feasible
moves first, counting the load of the moves in flight on their targets.
"""

from __future__ import annotations

import functools
import itertools
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .. import upstream
from ..config import Config
from ..store import ClusterState
from . import placement, readiness
from .dirtyrate import predictions
from .k8s import (
    capacity,
    is_control_plane,
    migration_setting,
    threads_per_core,
    vm_schedulable_nodes,
    vmi_guest_memory,
    vmi_node,
    vmi_vcpus,
)
from .planmodel import (
    EPSILON,
    Instance,
    PlanNode,
    PlanVM,
    VMKey,
    _ratio,
    loads,
    spread,
    spread_loads,
    spread_of,
    step_limits,
)

DEFAULT_WAVE_SIZE = 5  # the seed's advice: start small, batches of at most 5
DEFAULT_INBOUND = 2
DEFAULT_MAX_MOVES = 100
DEFAULT_MIN_GAIN = 0.01  # a move must lower the spread by one point of utilisation (plan_context)
DEFAULT_SPREAD_THRESHOLD = 0.2  # within this spread, no plan (plan_context)
MIN_GAIN_NODES = 8  # the minimum gain holds as set up to this many counted nodes (effective_min_gain)
HOT, COLD = 3, 8  # source nodes (busiest) and target nodes (idlest) examined per resource

# Reasons a VM does not move (label `reason` of ov_rebalance_plan_unmovable_vms): the
# migration_readiness reasons, plus these.
NO_VM = "no_vm"
NAMESPACE_EXCLUDED = "namespace_excluded"
MIGRATING = "migrating"
NOT_CONVERGING = "not_converging"
NO_SAFE_TARGET = "no_safe_target"
UNMOVABLE_REASONS = (*readiness.REASONS, NO_VM, NAMESPACE_EXCLUDED, MIGRATING, NOT_CONVERGING, NO_SAFE_TARGET)

GOALS = ("spread", "drain", "evacuate-control-plane")

# What the spread measures (planmodel: the spread load). usage: measured node CPU and memory
# utilisation (node_exporter) and each VM's measured CPU and host memory (KubeVirt), from
# Prometheus or a snapshot's samples; allocation: vCPUs and guest memory against what the
# thresholds allow. The default: usage when there are node usage samples, else allocation.
USAGE, ALLOCATION = "usage", "allocation"
BASES = (USAGE, ALLOCATION)
# A usage sample older than the newest one by more than this is stale: it is left out, as if
# missing (Prometheus's own lookback is 5 minutes; a snapshot's files may mix ages). When even
# the newest is that much older than the state the plan reads (a snapshot's capture time), no
# usage sample is used. Samples without a timestamp count as fresh.
STALE_SECONDS = 600.0


class NoUsageSamples(ValueError):
    """The usage basis was asked for and no node has fresh usage samples."""


# ---------------------------------------------------------------- the instance


@dataclass(frozen=True)
class Basis:
    """What a plan was based on: when it was read and the resourceVersions it saw."""

    read_at: float  # unix time
    nodes: dict[str, str]  # node -> resourceVersion
    vmis: dict[str, str]  # "namespace/name" -> resourceVersion

    def to_dict(self) -> dict[str, Any]:
        return {"read_at": self.read_at, "nodes": self.nodes, "vmis": self.vmis}


@dataclass(frozen=True)
class Context:
    """The instance and what the planner needs beyond it."""

    instance: Instance
    basis: Basis
    parallel_per_cluster: int
    parallel_outbound: int
    drained: frozenset[str]
    accept: Callable[[PlanVM, str, Mapping[VMKey, str]], bool] | None  # pod constraints under an assignment
    hostnames: dict[str, str] = field(default_factory=dict)  # node -> its kubernetes.io/hostname label
    kubevirt_version: str = ""  # the KubeVirt CR's status.observedKubeVirtVersion ("" unknown)
    # VMs that would lose their last migration target (a new no_target_node) under an assignment
    strands: Callable[[Mapping[VMKey, str]], list[VMKey]] | None = None
    load_basis: LoadBasis = field(default_factory=lambda: LoadBasis(ALLOCATION))  # what the spread measures


@dataclass(frozen=True)
class LoadBasis:
    """What the spread of a plan measures: usage (with its window and time) or allocation, and
    the objects that had no usable sample and count at their allocation instead."""

    kind: str  # USAGE | ALLOCATION
    window: str = ""  # usage: the rate / average window of the samples
    at: float | None = None  # usage: the newest sample's time (None: the files recorded none)
    fallback_nodes: tuple[str, ...] = ()  # usage: nodes without fresh utilisation samples
    fallback_vms: tuple[str, ...] = ()  # usage: "namespace/name" of VMs without fresh samples
    stale: int = 0  # samples left out as stale
    excess_nodes: tuple[str, ...] = ()  # usage: nodes whose VMs measured more than the node
    ignored: str = ""  # allocation: why the usage samples there were not used

    def notes(self) -> list[str]:
        """What the plan must say about its basis (no silent mix of usage and allocation)."""
        if self.kind != USAGE:
            return [self.ignored] if self.ignored else []
        out = []
        if self.fallback_nodes:
            out.append(
                f"usage basis: {len(self.fallback_nodes)} node(s) without fresh utilisation samples count "
                f"their VMs' usage only (allocation for VMs without samples, no other load): "
                f"{_listed(self.fallback_nodes)}"
            )
        if self.fallback_vms:
            out.append(
                f"usage basis: {len(self.fallback_vms)} VM(s) without fresh CPU or memory samples count at their "
                f"allocation (vCPUs as busy cores, guest memory + overhead): {_listed(self.fallback_vms)}"
            )
        if self.stale:
            out.append(
                f"usage basis: {self.stale} sample(s) more than {STALE_SECONDS:.0f} s older than the newest left out"
            )
        if self.excess_nodes:
            out.append(
                f"usage basis: on {_listed(self.excess_nodes)} the VMs measured more than the node (samples of "
                "different instants); the node's other load is taken as 0"
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "window": self.window,
            "at": self.at,
            "fallback_nodes": list(self.fallback_nodes),
            "fallback_vms": list(self.fallback_vms),
            "stale_samples": self.stale,
            "excess_nodes": list(self.excess_nodes),
            "ignored": self.ignored,
        }


def _rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _listed(names: tuple[str, ...], most: int = 10) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _latest_usage(samples, name: str, keys: tuple[str, ...], newest: float | None) -> tuple[dict, int]:
    """key labels -> the latest fresh value of one series, and how many samples were stale."""
    found: dict[tuple[str, ...], tuple[float, float]] = {}
    stale = 0
    for s in samples.get(name, ()):
        ts = s.timestamp if s.timestamp is not None else math.inf
        if newest is not None and ts < newest - STALE_SECONDS:
            stale += 1
            continue
        key = tuple(s.labels.get(k, "") for k in keys)
        if all(key) and math.isfinite(s.value) and s.value >= 0 and (key not in found or ts > found[key][1]):
            found[key] = (s.value, ts)
    return {k: v for k, (v, _ts) in found.items()}, stale


USAGE_SERIES = (
    upstream.NODE_CPU_UTILISATION,
    upstream.NODE_MEMORY_UTILISATION,
    upstream.VMI_CPU_USAGE_RATE,
    upstream.VMI_MEMORY_RESIDENT,
)


def _usage_basis(
    state: ClusterState, basis: str | None, nodes: list[PlanNode], vms: list[PlanVM], now: float | None = None
) -> tuple[LoadBasis, list[PlanNode], list[PlanVM]]:
    """The nodes and VMs with the spread load of the basis (planmodel): unchanged on the
    allocation basis; on the usage basis a node's measured use less its movable VMs' own
    (which move with them), each relative to the node's logical CPUs and memory capacity."""
    if basis not in (None, *BASES):
        raise ValueError(f"unknown basis {basis!r}: one of {', '.join(BASES)}")
    samples = state.samples or {}
    stamps = [s.timestamp for name in USAGE_SERIES for s in samples.get(name, ()) if s.timestamp is not None]
    newest = max(stamps) if stamps else None
    read_at = now if now is not None else state.now
    ignored = ""
    if newest is not None and read_at is not None and newest < read_at - STALE_SECONDS:
        ignored = (
            f"usage samples not used: the newest ({_rfc3339(newest)}) is {(read_at - newest) / 60:.0f} min older "
            "than the state the plan reads; the plan is on allocation"
        )
        samples = {}
    node_cpu, stale_a = _latest_usage(samples, upstream.NODE_CPU_UTILISATION, ("node",), newest)
    node_memory, stale_b = _latest_usage(samples, upstream.NODE_MEMORY_UTILISATION, ("node",), newest)
    measured = {n.name for n in nodes if (n.name,) in node_cpu and (n.name,) in node_memory}
    if basis == ALLOCATION or (basis is None and not measured):
        return LoadBasis(ALLOCATION, ignored=ignored if basis is None else ""), nodes, vms
    if not measured:
        raise NoUsageSamples(
            (ignored + ". " if ignored else "")
            + f"no fresh node utilisation samples ({upstream.NODE_CPU_UTILISATION}, "
            f"{upstream.NODE_MEMORY_UTILISATION}) for any node: give --prometheus-url (node_exporter) "
            "or a snapshot with them, or --basis allocation"
        )
    vm_cpu, stale_c = _latest_usage(samples, upstream.VMI_CPU_USAGE_RATE, ("namespace", "name"), newest)
    vm_memory, stale_d = _latest_usage(samples, upstream.VMI_MEMORY_RESIDENT, ("namespace", "name"), newest)
    on_fallback_node = {vm.key for vm in vms if vm.node not in measured}
    fallback_vms: list[str] = []
    used: list[PlanVM] = []
    for vm in vms:
        cpu, memory = vm_cpu.get(vm.key), vm_memory.get(vm.key)
        if (cpu is None or memory is None) and (vm.movable or vm.key in on_fallback_node):
            fallback_vms.append(f"{vm.key[0]}/{vm.key[1]}")
        used.append(
            replace(
                vm, spread_cpu=vm.cpu if cpu is None else cpu, spread_memory=vm.memory if memory is None else memory
            )
        )
    moving: dict[str, list[float]] = {}  # node -> usage of its movable VMs (they take it along)
    staying: dict[str, list[float]] = {}  # node -> usage of its unmovable VMs
    for vm in used:
        slot = (moving if vm.movable else staying).setdefault(vm.node, [0.0, 0.0])
        slot[0] += vm.spread_cpu
        slot[1] += vm.spread_memory
    excess: list[str] = []
    out: list[PlanNode] = []
    for n in nodes:
        record = state.get("nodes", "", n.name)
        cores, memory = capacity(record, "cpu") or 0.0, capacity(record, "memory") or 0.0
        away = moving.get(n.name, [0.0, 0.0])
        if n.name in measured:
            cpu_used = node_cpu[(n.name,)] * cores - away[0]
            memory_used = node_memory[(n.name,)] * memory - away[1]
            if cpu_used < -EPSILON or memory_used < -EPSILON:
                excess.append(n.name)
            cpu_used, memory_used = max(0.0, cpu_used), max(0.0, memory_used)
        else:
            cpu_used, memory_used = staying.get(n.name, [0.0, 0.0])
        out.append(
            replace(
                n,
                spread_cpu_capacity=cores,
                spread_memory_capacity=memory,
                spread_cpu_used=cpu_used,
                spread_memory_used=memory_used,
            )
        )
    return (
        LoadBasis(
            USAGE,
            upstream.NODE_USAGE_WINDOW,
            newest,
            tuple(sorted(n.name for n in nodes if n.name not in measured)),
            tuple(sorted(fallback_vms)),
            stale_a + stale_b + stale_c + stale_d,
            tuple(excess),
        ),
        out,
        used,
    )


def _drained(state: ClusterState, goal: str, node: str | None) -> frozenset[str]:
    if goal == "drain":
        if not node:
            raise ValueError("goal drain needs a node name")
        if state.get("nodes", "", node) is None:
            raise ValueError(f"goal drain: no node named {node!r}")
        return frozenset({node})
    if goal == "evacuate-control-plane":
        return frozenset(n.metadata.name for n in state.nodes if is_control_plane(n))
    if goal != "spread":
        raise ValueError(f"unknown goal {goal!r}: one of {', '.join(GOALS)}")
    return frozenset()


def build_instance(
    state: ClusterState,
    config: Config,
    goal: str = "spread",
    node: str | None = None,
    now: float | None = None,
    basis: str | None = None,
) -> Context:
    """The plan model of the state; `basis` (BASES) chooses what the spread measures, None:
    usage when there are node usage samples, else allocation (ValueError: usage without any)."""
    drained = _drained(state, goal, node)
    targets = placement.targets(state, config)
    verdicts = readiness.verdicts(state, config)
    predicted = predictions(state, config)
    schedulable = {n.metadata.name for n in vm_schedulable_nodes(state)}
    thresholds = config.thresholds
    migrating = {
        (m.metadata.namespace, m.spec.vmi_name)
        for m in state.migrations
        if m.spec is not None and (m.status.phase if m.status else "") not in readiness.FINISHED_VMIM_PHASES
    }

    control_plane = {n.metadata.name for n in state.nodes if is_control_plane(n)}  # never a target (AP 13)
    active = [v for v in state.vmis if vmi_node(v)]
    hosting = {vmi_node(v) for v in active}
    node_names = sorted(
        n.metadata.name for n in state.nodes if n.metadata.name in schedulable or n.metadata.name in hosting
    )
    vms: list[PlanVM] = []
    fixed: dict[str, list[float]] = {name: [0.0, 0.0] for name in node_names}
    counts: dict[str, int] = dict.fromkeys(node_names, 0)
    pod_terms: dict[VMKey, Any] = {}
    bases: dict[int, frozenset[str]] = {}  # id(static candidate list) -> their names, shared
    for vmi in active:
        meta = vmi.metadata
        key = (meta.namespace, meta.name)
        where = vmi_node(vmi)
        counts[where] = counts.get(where, 0) + 1
        cpu = float(vmi_vcpus(vmi))
        request = targets.requests[key][1]  # memory request + overhead
        guest = vmi_guest_memory(vmi)
        memory = request if guest is None else guest + targets.overheads[key]
        spec = vmi.spec
        reason = _unmovable_reason(key, config, verdicts, predicted, migrating)
        allowed: frozenset[str] = frozenset({where})
        if not reason:
            rooms = placement.static_candidates(targets, spec)
            base = bases.get(id(rooms))
            if base is None:
                base = bases[id(rooms)] = frozenset(
                    r.name for r in rooms if r.name not in drained and r.name not in control_plane
                )
            allowed = base if where in base or where in drained else base | {where}
            if placement._has_pod_terms(spec) or meta.namespace in targets.anti_affinity_namespaces:
                pod_terms[key] = vmi
                allowed = frozenset(
                    n
                    for n in allowed
                    if n == where
                    or not placement.pod_failure(
                        targets, meta.namespace, meta.labels or {}, spec, n, _others(targets, key)
                    )
                )
            if allowed <= {where}:
                reason = NO_SAFE_TARGET
        prediction = predicted.get(key)
        seconds = prediction.seconds if prediction is not None and math.isfinite(prediction.seconds) else None
        movable = not reason
        if not movable:
            slot = fixed.setdefault(where, [0.0, 0.0])
            slot[0] += cpu
            slot[1] += memory
            allowed = frozenset({where})
        vms.append(PlanVM(key, cpu, memory, where, allowed, movable, reason, seconds))

    loads_now: dict[str, list[float]] = {}
    for vm in vms:
        loads_now.setdefault(vm.node, []).append(vm.cpu)
    nodes: list[PlanNode] = []
    for name in node_names:
        record = state.get("nodes", "", name)
        logical = capacity(record, "cpu")
        threads, _source = threads_per_core(record, config)
        memory = readiness._allocatable(record, "memory")
        pods = readiness._allocatable(record, "pods")
        room = targets.rooms[name]
        cores = logical / threads if logical else 0.0
        # The CPU threshold the node is within now: the profile target while it is within it
        # (a plan must not raise the node's info finding), else cpu-overcommit-max.
        vcpus_now = sum(loads_now.get(name, ()))
        cpu_limit = config.cpu_target if cores and vcpus_now <= config.cpu_target * cores + EPSILON else None
        nodes.append(
            PlanNode(
                name,
                cores * thresholds.cpu_overcommit_max,
                (memory or 0.0) * thresholds.memory_overcommit_max,
                fixed[name][0],
                fixed[name][1],
                int(pods) if pods is not None else None,
                counts.get(name, 0),
                in_spread=name not in drained and not room.blocked,
                cpu_limit=cores * cpu_limit if cpu_limit else None,
            )
        )
    load_basis, nodes, vms = _usage_basis(state, basis, nodes, vms, now)
    instance = Instance(tuple(nodes), tuple(sorted(vms, key=lambda v: v.key)))
    read = Basis(
        time.time() if now is None else now,
        {n: state.get("nodes", "", n).metadata.resource_version or "" for n in node_names},
        {f"{v.metadata.namespace}/{v.metadata.name}": v.metadata.resource_version or "" for v in active},
    )
    per_cluster = migration_setting(state, "parallel_migrations_per_cluster", readiness.DEFAULT_PARALLEL_MIGRATIONS)
    outbound = migration_setting(state, "parallel_outbound_migrations_per_node", 2)
    accept = _pod_acceptor(targets, pod_terms) if targets.anti_affinity_namespaces or pod_terms else None
    hostnames = {
        n: (state.get("nodes", "", n).metadata.labels or {}).get(placement.HOSTNAME_LABEL, n) for n in node_names
    }
    versions = [kv.status.observed_kube_virt_version for kv in state.kubevirts if kv.status is not None]
    return Context(
        instance,
        read,
        int(per_cluster.value),
        int(outbound.value),
        drained,
        accept,
        hostnames,
        next((v for v in versions if v), ""),
        _strand_checker(state, config, targets, verdicts),
        load_basis,
    )


def _strand_checker(state: ClusterState, config: Config, targets: placement.Targets, verdicts) -> Callable:
    """VMs that have a migration target now and would have none once the assignment is done:
    the plan would raise their no_target_node."""
    vmis = state.index("virtualmachineinstances.kubevirt.io")
    judged = [
        (key, vmis[key])
        for key, verdict in verdicts.items()
        if verdict.running and readiness.NO_TARGET_NODE not in verdict.reasons and key in vmis and vmi_node(vmis[key])
    ]

    def strands(assignment: Mapping[VMKey, str]) -> list[VMKey]:
        if not assignment:
            return []
        after = placement.after_moves(targets, vmis, assignment)
        return [
            key
            for key, vmi in judged
            if not placement.has_target(after, vmi, vmi.spec, assignment.get(key, vmi_node(vmi)))
        ]

    return strands


def _others(targets: placement.Targets, key: VMKey) -> list[placement.Pod]:
    """The launcher pods as they run now (the VM's own source pod included)."""
    return list(targets.pods.values())


def _pod_acceptor(targets: placement.Targets, pod_terms: dict[VMKey, Any]) -> Callable:
    """Required pod (anti-)affinity and topology spread under a planned assignment: the
    moved VMs' pods counted on their targets and, during their migration, on their sources."""

    def accept(vm: PlanVM, target: str, assignment: Mapping[VMKey, str]) -> bool:
        pods = list(targets.pods.values())
        pods += [replace(targets.pods[k], node=n) for k, n in assignment.items() if k in targets.pods]
        pod = targets.pods.get(vm.key)
        if pod is None:
            return True
        if vm.key in pod_terms or pod.namespace in targets.anti_affinity_namespaces:
            return not placement.pod_failure(targets, pod.namespace, pod.labels, pod.spec, target, pods)
        return True

    return accept


def _unmovable_reason(key, config: Config, verdicts, predicted, migrating) -> str:
    if not config.namespace_selected(key[0]):
        return NAMESPACE_EXCLUDED
    verdict = verdicts.get(key)
    if verdict is None:
        return NO_VM
    blocking = [r for r in verdict.reasons if r not in readiness.TRANSIENT]
    if blocking:
        return blocking[0]
    if key in migrating:
        return MIGRATING
    prediction = predicted.get(key)
    if prediction is not None and prediction.memory is not None and not prediction.converges:
        return NOT_CONVERGING
    return ""


# ---------------------------------------------------------------- the search


@dataclass(frozen=True)
class Move:
    key: VMKey
    source: str
    target: str
    cpu: float
    memory: float
    seconds: float | None  # predicted migration time


@dataclass(frozen=True)
class Wave:
    moves: tuple[Move, ...]

    @property
    def seconds(self) -> float | None:
        """Expected length: the wave's moves run in parallel, so its slowest one."""
        known = [m.seconds for m in self.moves if m.seconds is not None]
        return max(known) if known else None


@dataclass
class Plan:
    goal: str
    node: str | None
    instance: Instance
    basis: Basis
    moves: list[Move]
    waves: list[Wave]
    spread_before: float
    spread_after: float
    threshold: float
    limits: dict[str, int]
    stranded: list[PlanVM] = field(default_factory=list)  # drain: VMs that must leave but cannot
    notes: list[str] = field(default_factory=list)
    hostnames: dict[str, str] = field(default_factory=dict)  # node -> kubernetes.io/hostname
    kubevirt_version: str = ""
    lower_bound: float | None = None  # a proven lower bound on the best spread, when known
    load_basis: LoadBasis = field(default_factory=lambda: LoadBasis(ALLOCATION))  # what the spread measures

    @property
    def assignment(self) -> dict[VMKey, str]:
        return {m.key: m.target for m in self.moves}

    def unmovable(self) -> list[PlanVM]:
        return [v for v in self.instance.vms if not v.movable]


class _Search:
    """Loads and utilisations under a changing assignment, with O(1) move evaluation."""

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.nodes = {n.name: n for n in instance.nodes}
        self.counted = [n.name for n in instance.nodes if n.in_spread]
        self.load = {n.name: [n.cpu_used, n.memory_used, 0] for n in instance.nodes}
        for vm in instance.vms:
            slot = self.load.get(vm.node)
            if slot is None:
                continue
            if vm.movable:
                slot[0] += vm.cpu
                slot[1] += vm.memory
            slot[2] += 1
        self.use = spread_loads(instance, {})  # the spread load (planmodel), what util() reads
        self.assignment: dict[VMKey, str] = {}

    def util(self, name: str, resource: int, delta: float = 0.0) -> float:
        """Utilisation of the spread load, with `delta` (spread-load units) added."""
        node = self.nodes[name]
        cap = node.spread_cpu_capacity if resource == 0 else node.spread_memory_capacity
        load = self.use[name][resource] + delta
        return load / cap if cap > 0 else (0.0 if load <= EPSILON else math.inf)

    def fits(self, vm: PlanVM, target: str) -> bool:
        n, load = self.nodes[target], self.load[target]
        return (
            load[0] + vm.cpu <= n.cpu_allowed + EPSILON
            and load[1] + vm.memory <= n.memory_allowed + EPSILON
            and (n.max_vms is None or load[2] + 1 <= n.max_vms)
        )

    def apply(self, vm: PlanVM, target: str) -> None:
        source = self.assignment.get(vm.key, vm.node)
        for i, amount in ((0, vm.cpu), (1, vm.memory), (2, 1)):
            self.load[source][i] -= amount
            self.load[target][i] += amount
        for i, amount in ((0, vm.spread_cpu), (1, vm.spread_memory)):
            self.use[source][i] -= amount
            self.use[target][i] += amount
        self.assignment[vm.key] = target

    def ranked(self) -> list[list[tuple[float, str]]]:
        """Per resource, the counted nodes by utilisation, busiest first."""
        return [sorted(((self.util(n, r), n) for n in self.counted), reverse=True) for r in (0, 1)]

    @staticmethod
    def _extreme(order: list[tuple[float, str]], skip: tuple[str, str], top: bool) -> float | None:
        seq = order if top else reversed(order)
        for u, n in seq:
            if n not in skip:
                return u
        return None

    def spread_after(self, ranked, vm: PlanVM, source: str, target: str) -> tuple[float, float]:
        """(spread, change in the sum of squared utilisations) if `vm` moved source -> target."""
        return self.spread_change(ranked, source, target, vm.spread_cpu, vm.spread_memory)

    def spread_change(self, ranked, source: str, target: str, cpu: float, memory: float) -> tuple[float, float]:
        """(spread, change in the sum of squares) if `cpu` and `memory` (spread load) went from source
        to target."""
        worst, squares = 0.0, 0.0
        for r, amount in ((0, cpu), (1, memory)):
            values = []
            for name, delta in ((source, -amount), (target, amount)):
                if name in self.nodes and self.nodes[name].in_spread:
                    before, after = self.util(name, r), self.util(name, r, delta)
                    values.append(after)
                    squares += after * after - before * before
            top = self._extreme(ranked[r], (source, target), True)
            bottom = self._extreme(ranked[r], (source, target), False)
            values += [v for v in (top, bottom) if v is not None]
            if len(values) >= 2:
                worst = max(worst, max(values) - min(values))
        return worst, squares

    def fits_load(self, target: str, cpu: float, memory: float, count: int) -> bool:
        n, load = self.nodes[target], self.load[target]
        return (
            load[0] + cpu <= n.cpu_allowed + EPSILON
            and load[1] + memory <= n.memory_allowed + EPSILON
            and (n.max_vms is None or load[2] + count <= n.max_vms)
        )


def effective_min_gain(instance: Instance, min_gain: float) -> float:
    """What a move must gain: `min_gain` (thresholds.rebalance-min-gain) on clusters of up to
    MIN_GAIN_NODES counted nodes, scaled by MIN_GAIN_NODES / nodes above. A move changes two
    nodes while the spread is set by the busiest and the idlest: lowering it on N nodes takes
    about N times the moves, each worth 1/N of what it is worth on a small cluster."""
    counted = sum(1 for n in instance.nodes if n.in_spread)
    return min_gain * min(1.0, MIN_GAIN_NODES / counted) if counted else min_gain


def _spread_goal(
    ctx: Context, max_moves: int, min_gain: float, threshold: float, effort: int = 1
) -> tuple[list[Move], float, float]:
    instance = ctx.instance
    search = _Search(instance)
    start = spread(instance, {})
    if start <= threshold:
        return [], start, start
    by_node: dict[str, list[PlanVM]] = {}
    for vm in instance.vms:
        if vm.movable:
            by_node.setdefault(vm.node, []).append(vm)
    moved: set[VMKey] = set()
    history: list[tuple[PlanVM, str, str]] = []
    spreads = [start]
    current = start
    while len(history) < max_moves:
        ranked = search.ranked()
        # The busiest nodes with a VM left to move: a busiest node whose VMs cannot move
        # holds the top of the spread, and the plan can still raise the idlest ones.
        sources = {n for r in (0, 1) for n in _busiest_movable(ranked[r], by_node, moved)}
        targets = [n for n in dict.fromkeys(n for r in (0, 1) for _u, n in reversed(ranked[r][-COLD:]))]
        best = None
        for source in sources:
            sizes: set[tuple] = set()  # VMs alike (size and allowed nodes) are one candidate
            for vm in by_node.get(source, ()):
                alike = (vm.cpu, vm.memory, vm.spread_cpu, vm.spread_memory, id(vm.allowed))
                if vm.key in moved or alike in sizes:
                    continue
                sizes.add(alike)
                for target in targets:
                    if target == source or target not in vm.allowed or not search.fits(vm, target):
                        continue
                    new, squares = search.spread_after(ranked, vm, source, target)
                    score = (round(new, 12), squares)
                    if best is None or score < best[0]:
                        best = (score, vm, source, target)
        stuck = best is None or not (
            best[0][0] < current - 1e-12 or (best[0][0] <= current + 1e-12 and best[0][1] < -1e-12)
        )
        if stuck:
            swap = _best_swap(ctx, search, ranked, by_node, moved, sources, targets, current)
            if swap is None or len(history) + 2 > max_moves:
                break
            for vm, source, target in swap:
                search.apply(vm, target)
                moved.add(vm.key)
                by_node[source].remove(vm)
                history.append((vm, source, target))
            current = spread(instance, search.assignment) if len(instance.nodes) <= 64 else current
            spreads += [math.inf, current]  # never cut between the two halves of a swap
            continue
        (new, squares), vm, source, target = best
        if ctx.accept is not None and not ctx.accept(vm, target, search.assignment):
            moved.add(vm.key)  # its pod constraints forbid it here: leave it
            continue
        search.apply(vm, target)
        moved.add(vm.key)
        by_node[source].remove(vm)
        history.append((vm, source, target))
        current = new  # exact: the two changed nodes against the extremes of the others
        spreads.append(current)
    # The shortest prefix reaching the best spread, then drop moves worth less than min_gain.
    best_spread = min(spreads)
    cut = next(i for i, s in enumerate(spreads) if s <= best_spread + 1e-12)
    if start - best_spread < min_gain:
        cut = 0
    chosen = _prune(ctx, history[:cut], min_gain)
    # Every candidate, ordered by gain, and every prefix of it: the one with the least spread
    # plus min_gain per move (a move must be worth min_gain), then the fewest moves.
    candidates = [(history, spreads), _by_gain(instance, chosen)]
    # With more effort the searches' results at effort 1 stay candidates too: seeded walks with
    # other budgets take other paths, and more effort must never give a worse plan. Under pod
    # constraints, which cut the searches' plans, effort 1 runs the annealing walks alone.
    every_search = ctx.accept is None or effort > 1
    searches = SEARCHES if every_search else POD_TERM_SEARCHES
    for level in sorted({1, effort}):
        for method, seed in searches:
            annealed = _anneal(ctx, chosen, seed, max(ANNEAL_PRICE, min_gain), method, max_moves, level)
            if annealed is not None:
                candidates.append(_accepted(ctx, _by_gain(instance, _prune(ctx, annealed, PRUNE_GAIN))))

    def ranked() -> list[tuple[float, int, int]]:
        """Prefixes of at most max_moves moves: the searches do not count moves, the plan must."""
        return sorted(
            (round(curve[k] + min_gain * k, 9), k, i)
            for i, (_moves, curve) in enumerate(candidates)
            for k in range(min(len(curve), max_moves + 1))
            if math.isfinite(curve[k])
        )

    _value, k, i = ranked()[0]
    resplit = (
        _resplit(ctx, candidates[i][0][:k], max(ANNEAL_PRICE, min_gain), max_moves, effort) if every_search else None
    )
    if resplit is not None:
        candidates.append(_accepted(ctx, _by_gain(instance, _prune(ctx, resplit, PRUNE_GAIN))))
    options = ranked()
    # The best that leaves every VM with a migration target (plan_context cuts a plan that does
    # not, which may leave nothing of the best one while the next best is whole).
    _value, k, i = options[0]
    for _v, k_, i_ in options[:STRAND_CHECKS]:
        if k_ == 0 or ctx.strands is None or not ctx.strands(_assignment(candidates[i_][0][:k_])):
            k, i = k_, i_
            break
    chosen = candidates[i][0][:k]
    fewer = _fewer_moves_placed(ctx, _fewer_moves(ctx, chosen, effort), effort)
    if len(fewer) < len(chosen):
        chosen = _by_gain(instance, fewer)[0]
    assignment = {vm.key: target for vm, _s, target in chosen}
    return [_move(vm, s, t) for vm, s, t in chosen], start, spread(instance, assignment)


POLISH_EVALUATIONS = 20_000  # assignments the move-reduction polish measures at most (x effort)


def _fewer_moves(ctx: Context, chosen: list, effort: int = 1) -> list:
    """The same spread or less with fewer moves: while one is found, two moves replaced by
    one (one of them dropped, the other kept, sent to another of its allowed nodes or left
    where it is), the first such replacement in the plan's order whose spread is at most the
    plan's, which adds no violation, strands no VM and whose moves can still be made one after
    the other (_sequence). A chain of two alike VMs (a: x -> y, b: y -> z) becomes one move
    (a: x -> z), and a move the others make useless goes. Small clusters only, as the
    annealing, and at most POLISH_EVALUATIONS x effort assignments measured: the same plan and
    effort always give the same result. Returns the moves in an order each step of which fits
    (`chosen` itself when nothing was found)."""
    instance = ctx.instance
    if (
        ctx.accept is not None
        or len(chosen) < 2
        or len(chosen) > ANNEAL_MAX_VMS
        or len(instance.nodes) > ANNEAL_MAX_NODES
    ):
        return chosen
    evaluator = _Evaluator(instance)
    names = [n.name for n in instance.nodes]
    current = list(chosen)
    best = evaluator.spread(_assignment(current))
    budget = POLISH_EVALUATIONS * effort
    found = True
    while found and budget > 0:
        found = False
        for i, j in itertools.permutations(range(len(current)), 2):
            if budget <= 0:
                break
            vm, source, target = current[j]
            rest = [m for k, m in enumerate(current) if k not in (i, j)]
            for to in [target, source, *(n for n in names if n in vm.allowed and n not in (target, source))]:
                trial = rest if to == source else [*rest, (vm, source, to)]
                assignment = _assignment(trial)
                budget -= 1
                now = evaluator.spread(assignment)
                if now > best + 1e-12 or _new_violations(instance, assignment, evaluator):
                    continue
                ordered = _sequence(instance, trial)
                if ordered is None or (ctx.strands is not None and ctx.strands(assignment)):
                    continue
                current, best, found = ordered, min(best, now), True
                break
            if found:
                break
    return current if len(current) < len(chosen) else chosen


def _fewer_moves_placed(ctx: Context, chosen: list, effort: int = 1) -> list:
    """The same spread or less with fewer moves, from another placement: ruin and recreate
    (_Walk.restarts, RECREATE_FEWER_STARTS x effort starts) from the plan's state, each moved VM
    priced above any spread, no state above the plan's spread, a VM preferring its own node
    by RECREATE_FEWER_HOME. Kept when it moves fewer VMs, adds no violation, strands no VM and
    its moves can be ordered (_sequence); small clusters only, as the annealing, seeded: the
    same plan and effort always give the same result. Returns the moves in an order each step
    of which fits (`chosen` itself when nothing was found)."""
    import random

    instance = ctx.instance
    movable = _movable(instance)
    targets = _assignment(chosen)
    if (
        ctx.accept is not None
        or len(chosen) < 2
        or not _searchable(instance, movable)
        or targets.keys() - {vm.key for vm in movable}
    ):
        return chosen
    evaluator = _Evaluator(instance)
    reached = evaluator.spread(targets)
    walk = _Walk(instance, movable, price=1.0)
    walk.ceiling, walk.home_bonus, walk.budget = reached + 1e-9, RECREATE_FEWER_HOME, effort * ILS_EVALUATIONS
    walk.place(targets)
    walk.restarts(random.Random(0), effort * RECREATE_FEWER_STARTS)
    if walk.moved >= len(chosen):
        return chosen
    moves = walk.moves()
    assignment = _assignment(moves)
    if evaluator.spread(assignment) > reached + 1e-12 or _new_violations(instance, assignment, evaluator):
        return chosen
    if ctx.strands is not None and ctx.strands(assignment):
        return chosen
    ordered = _sequence(instance, moves)
    return ordered if ordered is not None else chosen


def _accepted(ctx: Context, candidate: tuple[list, list[float]]) -> tuple[list, list[float]]:
    """A search's moves and spread curve up to the first move the pod constraints refuse, each
    asked under the moves before it (as the greedy plan asks)."""
    if ctx.accept is None:
        return candidate
    moves, curve = candidate
    assignment: dict[VMKey, str] = {}
    for k, (vm, _source, target) in enumerate(moves):
        if not ctx.accept(vm, target, assignment):
            return moves[:k], curve[: k + 1]
        assignment[vm.key] = target
    return candidate


def _searchable(instance: Instance, movable: list) -> bool:
    """The seeded searches run: a small cluster (ANNEAL_MAX_NODES, ANNEAL_MAX_VMS) with VMs to
    move, two counted nodes or more with capacities. They do not ask about pod constraints: their
    plans are cut where those refuse a move (_accepted)."""
    counted = [n for n in instance.nodes if n.in_spread]
    return (
        bool(movable)
        and len(instance.nodes) <= ANNEAL_MAX_NODES
        and len(movable) <= ANNEAL_MAX_VMS
        and len(counted) >= 2
        and all(n.spread_cpu_capacity > 0 and n.spread_memory_capacity > 0 for n in counted)
    )


def _by_gain(instance: Instance, chosen: list) -> tuple[list, list[float]]:
    """The moves in the order of their gain (each step the move that lowers the spread most
    and stays within the limits; ties: the sum of squared utilisations) and the spread after
    each prefix. Plans of large clusters (the greedy's, in its order of gain already), long
    plans and plans with no such order keep theirs."""
    evaluator = _Evaluator(instance)
    spreads = [evaluator.spread({})]
    if len(chosen) > 200:
        return chosen, spreads + [math.inf] * (len(chosen) - 1) + [evaluator.spread(_assignment(chosen))]
    if len(instance.nodes) > ANNEAL_MAX_NODES:  # large clusters: the greedy's own order, already by gain
        return chosen, [evaluator.spread(_assignment(chosen[:k])) for k in range(len(chosen) + 1)]
    search = _Search(instance)
    start = {name: list(load) for name, load in search.load.items()}
    remaining, ordered = list(chosen), []
    while remaining:
        best = None
        for item in remaining:
            vm, _source, target = item
            n, load = search.nodes[target], search.load[target]
            if not (
                load[0] + vm.cpu <= max(n.cpu_allowed, start[target][0]) + EPSILON
                and load[1] + vm.memory <= max(n.memory_allowed, start[target][1]) + EPSILON
                and (n.max_vms is None or load[2] + 1 <= max(n.max_vms, start[target][2]))
            ):
                continue
            trial = dict(search.assignment)
            trial[vm.key] = target
            score = (round(evaluator.spread(trial), 12), _squares(evaluator, trial))
            if best is None or score < best[0]:
                best = (score, item)
        if best is None:  # no order by gain: keep the plan's own
            return chosen, [evaluator.spread(_assignment(chosen[:k])) for k in range(len(chosen) + 1)]
        score, item = best
        search.apply(item[0], item[2])
        ordered.append(item)
        remaining.remove(item)
        spreads.append(score[0])
    return ordered, spreads


def _assignment(chosen: list) -> dict[VMKey, str]:
    return {vm.key: target for vm, _s, target in chosen}


def _squares(evaluator: _Evaluator, assignment: Mapping[VMKey, str]) -> float:
    load = evaluator.spread_loads(assignment)
    return sum(
        _ratio(load[n.name][0], n.spread_cpu_capacity) ** 2 + _ratio(load[n.name][1], n.spread_memory_capacity) ** 2
        for n in evaluator.instance.nodes
        if n.in_spread
    )


def _busiest_movable(order: list[tuple[float, str]], by_node, moved: set[VMKey]) -> list[str]:
    """The HOT busiest nodes of `order` that hold a VM not moved yet."""
    found = []
    for _u, name in order:
        if any(vm.key not in moved for vm in by_node.get(name, ())):
            found.append(name)
            if len(found) == HOT:
                break
    return found


class _Evaluator:
    """Loads and spread of an assignment from the start loads plus the moved VMs only
    (planmodel.loads and spread walk every VM)."""

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.start = loads(instance, {})
        self.spread_start = spread_loads(instance, {})
        self.vms = {vm.key: vm for vm in instance.vms}

    def spread_loads(self, assignment: Mapping[VMKey, str]) -> dict[str, list[float]]:
        """The spread load (planmodel.spread_loads) of the assignment."""
        return self._shifted(self.spread_start, assignment, lambda vm: (vm.spread_cpu, vm.spread_memory))

    def loads(self, assignment: Mapping[VMKey, str]) -> dict[str, list[float]]:
        return self._shifted(self.start, assignment, lambda vm: (vm.cpu, vm.memory, 1))

    def _shifted(
        self, start: Mapping[str, list[float]], assignment: Mapping[VMKey, str], amounts: Callable
    ) -> dict[str, list[float]]:
        """`start` with each moved VM's `amounts(vm)` taken from its node and added to its target."""
        result = {name: list(load) for name, load in start.items()}
        for key, target in assignment.items():
            vm = self.vms[key]
            if not vm.movable or target == vm.node or target not in result:
                continue
            for name, sign in ((vm.node, -1), (target, 1)):
                slot = result.get(name)
                if slot is not None:
                    for i, amount in enumerate(amounts(vm)):
                        slot[i] += sign * amount
        return result

    def spread(self, assignment: Mapping[VMKey, str]) -> float:
        load = self.spread_loads(assignment)
        util = {
            n.name: (_ratio(load[n.name][0], n.spread_cpu_capacity), _ratio(load[n.name][1], n.spread_memory_capacity))
            for n in self.instance.nodes
            if n.in_spread
        }
        return spread_of(util, tuple(n for n in self.instance.nodes if n.in_spread))


ANNEAL_MAX_NODES = 32  # the annealing refines plans of small clusters only
ANNEAL_MAX_VMS = 300
ANNEAL_STEPS_PER_VM = 300
ANNEAL_MAX_STEPS = 20_000
ANNEAL_SEEDS = (0, 1, 2)  # independent runs; the best sequenced result wins
ILS_SEEDS = (0,)
RECREATE_SEEDS = (0,)
SEARCHES = [("anneal", s) for s in ANNEAL_SEEDS] + [("ils", s) for s in ILS_SEEDS]
SEARCHES += [("recreate", s) for s in RECREATE_SEEDS]
# With required pod (anti-)affinity or topology spread, at effort 1: the annealing walks (on the
# demo cluster 35 ms each, where the local search takes 0.43 s, the recreate 0.21 s and the
# final re-split 0.33 s), since the pod check cuts every search's plan at its first refusal.
POD_TERM_SEARCHES = [("anneal", s) for s in ANNEAL_SEEDS]
ANNEAL_PRICE = 1e-4  # per moved VM when the minimum gain is 0: the least spread, then the fewest moves
PRUNE_GAIN = 0.0  # annealed plans: drop only the moves whose removal does not raise the spread
ANNEAL_SMOOTH = 1.0  # weight of the mean squared deviation in the walk's surrogate
ANNEAL_ROUNDS = 3  # walks per run: each later one from the moves the earlier ones could order
ANNEAL_FROM_GREEDY = (0,)  # seeds whose walk starts from the greedy plan; the others from the placement
ILS_KICKS = 200  # iterated local search: kicks from the best state (ILS_EVALUATIONS ends it first on most)
ILS_KICK_MOVES = 4  # most random moves in a kick
# States the polishes may measure in all, per search run (its walks' polish, or its iterated
# local search): a budget in work, not time (the same state gets the same plan).
ILS_EVALUATIONS = 100_000
ANNEAL_T0, ANNEAL_T1 = 0.05, 1e-4  # the walk's temperature, first and last step
# Ruin and recreate: starts per run (x effort), each RECREATE_ROUNDS times emptying a few nodes
# and placing their VMs again, largest first, then a polish.
RECREATE_STARTS = 8
RECREATE_ROUNDS = 300
RECREATE_NOISE = 0.02  # random utilisation added to each placement's score: starts differ
RECREATE_HOME = 0.005  # utilisation a VM's own node is preferred by: fewer moves at a tie
RECREATE_WORSE = 0.002  # a recreated state up to this much worse (times a random draw) is kept
RECREATE_FEWER_HOME = 0.03  # ... when it looks for fewer moves at a plan's spread (_fewer_moves_placed)
RECREATE_FEWER_STARTS = 2  # its starts (x effort)
RESPLIT_STATES = 200_000  # partial splits the exact re-splits may build per run (x effort)
RESPLIT_FINAL_STATES = 400_000  # ... and the chosen plan's, of two and three nodes (x effort)
RESPLIT_TRIES = 5  # best splits a re-split tries, best first, for one whose moves can be ordered


class _Walk:
    """The annealing's state as flat lists: node loads and utilisations, where each VM is, the
    sums behind the mean squared deviation; moves and exchanges applied and undone in O(1)
    (the spread is a max and a min over the counted nodes' utilisations, in C)."""

    def __init__(self, instance: Instance, movable: list[PlanVM], price: float, cap: float = math.inf) -> None:
        names = [n.name for n in instance.nodes]
        index = {name: i for i, name in enumerate(names)}
        start = loads(instance, {})
        self.names = names
        self.price = price
        # Limits: a node already above one may keep its load, not grow it (as _Search.fits).
        self.lim = [
            (
                max(n.cpu_allowed, start[n.name][0]) + EPSILON,
                max(n.memory_allowed, start[n.name][1]) + EPSILON,
                math.inf if n.max_vms is None else max(n.max_vms, start[n.name][2]),
            )
            for n in instance.nodes
        ]
        self.load = [list(start[name]) for name in names]
        # The utilisations measure the spread load (planmodel); the limits above the capacity load.
        use = spread_loads(instance, {})
        self.use = [list(use[name]) for name in names]
        counted = [i for i, n in enumerate(instance.nodes) if n.in_spread]
        self.pos = [-1] * len(names)
        for p, i in enumerate(counted):
            self.pos[i] = p
        self.inv = [
            (1.0 / instance.nodes[i].spread_cpu_capacity, 1.0 / instance.nodes[i].spread_memory_capacity)
            for i in counted
        ]
        self.util = ([0.0] * len(counted), [0.0] * len(counted))
        self.sums = [0.0, 0.0, 0.0, 0.0]  # sum and sum of squares, CPU then memory
        self.count = len(counted)
        self.vms = movable
        self.home = [index[vm.node] for vm in movable]
        self.allowed = [sorted(index[n] for n in vm.allowed if n in index) for vm in movable]
        self.where = list(self.home)
        self.moved = 0
        self.cap = cap  # most VMs off their node (--max-moves): a step beyond it is undone
        self.evaluations = 0  # states the polish measured
        self.budget = ILS_EVALUATIONS  # states the run may measure (_anneal sets it from the effort)
        self.ceiling = math.inf  # no state with a spread above it counts (measure gives inf)
        self.home_bonus = RECREATE_HOME  # what recreate prefers a VM's own node by
        self.orderable: Callable | None = None  # a test of moves a re-split state must pass
        for i in counted:
            self._refresh(i)

    def _refresh(self, i: int) -> None:
        p = self.pos[i]
        if p < 0:
            return
        for r in (0, 1):
            old = self.util[r][p]
            new = self.use[i][r] * self.inv[p][r]
            self.util[r][p] = new
            self.sums[2 * r] += new - old
            self.sums[2 * r + 1] += new * new - old * old

    def fits(self, i: int, cpu: float, memory: float, count: int) -> bool:
        load, lim = self.load[i], self.lim[i]
        return (
            (cpu <= 0 or load[0] + cpu <= lim[0])
            and (memory <= 0 or load[1] + memory <= lim[1])
            and (count <= 0 or load[2] + count <= lim[2])
        )

    def shift(self, v: int, target: int) -> None:
        vm, source = self.vms[v], self.where[v]
        cpu, memory = vm.cpu, vm.memory
        load = self.load
        load[source][0] -= cpu
        load[source][1] -= memory
        load[source][2] -= 1
        load[target][0] += cpu
        load[target][1] += memory
        load[target][2] += 1
        cpu, memory = vm.spread_cpu, vm.spread_memory
        use = self.use
        use[source][0] -= cpu
        use[source][1] -= memory
        use[target][0] += cpu
        use[target][1] += memory
        util_cpu, util_memory = self.util
        sums = self.sums
        for node, sign in ((source, -1.0), (target, 1.0)):
            p = self.pos[node]
            if p < 0:
                continue
            inv_cpu, inv_memory = self.inv[p]
            old = util_cpu[p]
            new = old + sign * cpu * inv_cpu
            util_cpu[p] = new
            sums[0] += new - old
            sums[1] += new * new - old * old
            old = util_memory[p]
            new = old + sign * memory * inv_memory
            util_memory[p] = new
            sums[2] += new - old
            sums[3] += new * new - old * old
        home = self.home[v]
        self.moved += (target != home) - (source != home)
        self.where[v] = target

    def measure(self) -> tuple[float, float]:
        """(spread + price per moved VM, the walk's surrogate: that + the mean squared deviation)."""
        cpu, memory = self.util
        worst = max(max(cpu) - min(cpu), max(memory) - min(memory))
        n = self.count
        s = self.sums
        if worst > self.ceiling:
            return math.inf, math.inf
        deviation = s[1] / n - (s[0] / n) ** 2 + s[3] / n - (s[2] / n) ** 2
        true = worst + self.price * self.moved
        return true, true + ANNEAL_SMOOTH * deviation

    def exchange_fits(self, a: int, b: int) -> bool:
        """a and b may swap nodes, and one of them can go first (so moves one at a time reach it)."""
        va, vb, source, target = self.vms[a], self.vms[b], self.where[a], self.where[b]
        return (
            self.fits(target, va.cpu - vb.cpu, va.memory - vb.memory, 0)
            and self.fits(source, vb.cpu - va.cpu, vb.memory - va.memory, 0)
            and (self.fits(target, va.cpu, va.memory, 1) or self.fits(source, vb.cpu, vb.memory, 1))
        )

    def recreate(self, rng: Any, rounds: int) -> list[int]:
        """Ruin and recreate from the current state, `rounds` times: the VMs of the busiest and
        the idlest counted node and of one or two random nodes are taken off and placed again,
        largest first, each on the allowed node where it fits with the lowest utilisation
        after (plus RECREATE_NOISE at random, less RECREATE_HOME on its own node); the new
        state is kept when it is better, or worse by at most RECREATE_WORSE x a random draw.
        Returns the best state met, on the spread plus price per moved VM."""
        current = self.measure()[0]
        best, best_where = current, list(self.where)
        counted = [i for i in range(len(self.names)) if self.pos[i] >= 0]
        for _ in range(rounds):
            self.evaluations += 1
            top = {i: max(self.util[0][self.pos[i]], self.util[1][self.pos[i]]) for i in counted}
            emptied = {max(counted, key=top.__getitem__), min(counted, key=top.__getitem__)}
            emptied.add(rng.randrange(len(self.names)))
            if rng.random() < 0.5:
                emptied.add(rng.randrange(len(self.names)))
            before = {v: node for v, node in enumerate(self.where) if node in emptied}
            placed = self._placed(rng, before)
            if placed is None:
                continue
            for v, node in placed.items():
                if self.where[v] != node:
                    self.shift(v, node)
            value = self.measure()[0]
            if self.moved <= self.cap and value < current + RECREATE_WORSE * rng.random():
                current = value
                if value < best - 1e-12:
                    best, best_where = value, list(self.where)
                continue
            for v, node in before.items():
                if self.where[v] != node:
                    self.shift(v, node)
        return best_where

    def _placed(self, rng: Any, taken: dict[int, int]) -> dict[int, int] | None:
        """Where the VMs `taken` (VM -> its node now) go again, largest first (see recreate),
        on loads without them; None when one fits nowhere."""
        load, use = [list(x) for x in self.load], [list(x) for x in self.use]
        for v, node in taken.items():
            vm = self.vms[v]
            load[node][0] -= vm.cpu
            load[node][1] -= vm.memory
            load[node][2] -= 1
            use[node][0] -= vm.spread_cpu
            use[node][1] -= vm.spread_memory
        largest = sorted(taken, key=lambda v: (-self.vms[v].spread_cpu, -self.vms[v].spread_memory, rng.random()))
        placed = {}
        for v in largest:
            vm, chosen, lowest = self.vms[v], -1, math.inf
            for t in self.allowed[v]:
                now, most = load[t], self.lim[t]
                if now[0] + vm.cpu > most[0] or now[1] + vm.memory > most[1] or now[2] + 1 > most[2]:
                    continue
                p = self.pos[t]
                after = 0.0
                if p >= 0:
                    inv = self.inv[p]
                    after = max((use[t][0] + vm.spread_cpu) * inv[0], (use[t][1] + vm.spread_memory) * inv[1])
                score = after + RECREATE_NOISE * rng.random() - (self.home_bonus if t == self.home[v] else 0.0)
                if score < lowest:
                    chosen, lowest = t, score
            if chosen < 0:
                return None
            placed[v] = chosen
            load[chosen][0] += vm.cpu
            load[chosen][1] += vm.memory
            load[chosen][2] += 1
            use[chosen][0] += vm.spread_cpu
            use[chosen][1] += vm.spread_memory
        return placed

    def restarts(self, rng: Any, starts: int) -> None:
        """`starts` times from the current state: recreate (RECREATE_ROUNDS), then polish; the
        best result is the state after, within the run's budget of states measured."""
        origin = list(self.where)
        best, best_where = math.inf, origin
        for _ in range(starts):
            if self.evaluations >= self.budget:
                break
            self.set_where(origin)
            self.set_where(self.recreate(rng, RECREATE_ROUNDS))
            self.polish()
            value = self.measure()[0]
            if value < best - 1e-12:
                best, best_where = value, list(self.where)
        self.set_where(best_where)

    def place(self, targets: Mapping[VMKey, str]) -> None:
        """Each VM on its target in `targets`, the others on their own node."""
        index = {name: i for i, name in enumerate(self.names)}
        self.set_where([index[targets.get(vm.key, vm.node)] for vm in self.vms])

    def moves(self) -> list[tuple[PlanVM, str, str]]:
        """(VM, its node, where it is now) of each VM off its own node."""
        return [
            (vm, vm.node, self.names[node])
            for vm, node in zip(self.vms, self.where, strict=True)
            if self.names[node] != vm.node
        ]

    def set_where(self, where: list[int]) -> None:
        for v, node in enumerate(where):
            if self.where[v] != node:
                self.shift(v, node)
        for i in range(len(self.names)):  # drop the rounding the increments gathered
            self._refresh(i)
        self.sums = [sum(self.util[0]), sum(x * x for x in self.util[0])]
        self.sums += [sum(self.util[1]), sum(x * x for x in self.util[1])]

    def walk(self, rng: Any, steps: int) -> list[int]:
        """Simulated annealing from the current state; the best state met, on the spread plus
        price per moved VM."""
        best, current = self.measure()
        best_where = list(self.where)
        temperature, cooling = ANNEAL_T0, (ANNEAL_T1 / ANNEAL_T0) ** (1 / max(1, steps))
        m = len(self.vms)
        for _ in range(steps):
            temperature *= cooling
            a = rng.randrange(m)
            source = self.where[a]
            if rng.random() < 0.7:
                choices = self.allowed[a]
                target = choices[rng.randrange(len(choices))]
                vm = self.vms[a]
                if target == source or not self.fits(target, vm.cpu, vm.memory, 1):
                    continue
                self.shift(a, target)
                b = -1
            else:
                b = rng.randrange(m)
                target = self.where[b]
                if target == source or target not in self.allowed[a] or source not in self.allowed[b]:
                    continue
                if not self.exchange_fits(a, b):
                    continue
                self.shift(a, target)
                self.shift(b, source)
            if self.moved > self.cap:
                if b >= 0:
                    self.shift(b, target)
                self.shift(a, source)
                continue
            true, value = self.measure()
            if value <= current or rng.random() < math.exp((current - value) / temperature):
                current = value
                if true < best - 1e-12:
                    best, best_where = true, list(self.where)
            else:
                if b >= 0:
                    self.shift(b, target)
                self.shift(a, source)
        return best_where

    def kick(self, rng: Any, count: int) -> None:
        """`count` random moves or exchanges within the limits (fewer when none is found)."""
        m, done = len(self.vms), 0
        for _ in range(100 * count):
            if done == count:
                return
            a = rng.randrange(m)
            source = self.where[a]
            if rng.random() < 0.5:
                choices = self.allowed[a]
                target = choices[rng.randrange(len(choices))]
                vm = self.vms[a]
                if target == source or not self.fits(target, vm.cpu, vm.memory, 1):
                    continue
                self.shift(a, target)
                if self.moved > self.cap:
                    self.shift(a, source)
                    continue
            else:
                b = rng.randrange(m)
                target = self.where[b]
                if target == source or target not in self.allowed[a] or source not in self.allowed[b]:
                    continue
                if not self.exchange_fits(a, b):
                    continue
                self.shift(a, target)
                self.shift(b, source)
                if self.moved > self.cap:
                    self.shift(b, target)
                    self.shift(a, source)
                    continue
            done += 1

    def iterate(self, rng: Any, kicks: int) -> None:
        """Iterated local search: polish, then `kicks` times from the best state met a few
        random moves and a polish, keeping the result when it is better."""
        self.polish()
        best, best_where = self.measure()[0], list(self.where)
        for _ in range(kicks):
            if self.evaluations >= self.budget:
                break
            self.set_where(best_where)
            self.kick(rng, rng.randint(1, ILS_KICK_MOVES))
            self.polish()
            value = self.measure()[0]
            if value < best - 1e-12:
                best, best_where = value, list(self.where)
        self.set_where(best_where)

    def resplit(self, group: tuple[int, ...], budget: int) -> bool:
        """The best split of the VMs on the `group` of nodes between them, found exactly: a
        dynamic programme over classes of alike VMs (sizes, own node, which of the nodes are
        allowed) that keeps, per loads of the group's nodes, the fewest moves. The best split
        that lowers the spread plus price per moved VM (or keeps it and lowers the surrogate)
        is taken, as polish takes a move; with `orderable` set, the best of RESPLIT_TRIES
        whose moves it accepts. At most `budget` partial splits are tried; returns whether the
        state changed."""
        where, home, size = self.where, self.home, len(group)
        at = {node: i for i, node in enumerate(group)}
        classes: dict[tuple, list[int]] = {}
        base = [[*self.load[node], *self.use[node]] for node in group]  # CPU, memory, VMs; spread CPU, memory
        for v, node in enumerate(where):
            if node in at:
                vm, allowed = self.vms[v], self.allowed[v]
                own = at.get(home[v], -1)
                key = (vm.cpu, vm.memory, vm.spread_cpu, vm.spread_memory, own, tuple(n in allowed for n in group))
                classes.setdefault(key, []).append(v)
                for f, amount in enumerate((vm.cpu, vm.memory, 1, vm.spread_cpu, vm.spread_memory)):
                    base[at[node]][f] -= amount
        moved_elsewhere = self.moved - sum(where[v] != home[v] for members in classes.values() for v in members)
        best, current = self.measure()
        pos = [self.pos[node] for node in group]
        others = [p for p in range(self.count) if p not in pos]
        low = [min((u[p] for p in others), default=math.inf) for u in self.util]
        high = [max((u[p] for p in others), default=-math.inf) for u in self.util]
        # A band for each node's spread load: it ends within the spread to beat of the other
        # nodes' extremes, and of the group's own utilisation (its load over its capacity, which
        # lies between its nodes' lowest and highest) when every node of the group counts. Each
        # move narrows the bands by its price (in spread load, at least the smallest node's size
        # times it). Loads only grow as classes are added, so a partial split with a node above
        # its band, or below it with every remaining VM added, cannot win. The last node takes
        # the rest of the VMs.
        width = min(best - self.price * moved_elsewhere, self.ceiling) + 1e-12
        bands = [[(-math.inf, math.inf)] * 2 for _ in group]
        shrink = [0.0, 0.0]
        counted = all(p >= 0 for p in pos)
        for r in (0, 1):
            sizes = [1.0 / self.inv[p][r] if p >= 0 else math.inf for p in pos]
            shrink[r] = self.price * min(sizes) if min(sizes) < math.inf else 0.0
            group_util = sum(self.use[node][r] for node in group) / sum(sizes) if counted else 0.0
            for i, p in enumerate(pos):
                if p < 0:
                    continue
                least, most = -math.inf, math.inf
                if others:
                    least, most = high[r] - width, low[r] + width
                if counted:
                    least, most = max(least, group_util - width), min(most, group_util + width)
                bands[i][r] = (least * sizes[i], most * sizes[i])
        if not (others or counted):
            shrink = [0.0, 0.0]
        order = sorted(classes.items(), key=lambda item: (-item[0][1], -item[0][0]))  # largest first
        # What classes i on can add to each node, and to the nodes before the last together.
        rest = [[[0.0] * 5 for _ in range(size + 1)] for _ in range(len(order) + 1)]
        for i in range(len(order) - 1, -1, -1):
            (cpu, memory, spread_cpu, spread_memory, _own, allowed), members = order[i]
            for x, can in enumerate((*allowed, any(allowed[:-1]))):
                most = len(members) if can else 0
                add = (most * cpu, most * memory, most, most * spread_cpu, most * spread_memory)
                rest[i][x] = [a + b for a, b in zip(rest[i + 1][x], add, strict=True)]
        lims = [self.lim[node] for node in group]
        total = [sum(self.load[node][f] for node in group) for f in range(3)]
        total += [sum(self.use[node][f] for node in group) for f in range(2)]
        # The last node takes the rest: the others together hold at least what its limits and
        # band leave, and at most what its band's floor leaves.
        last_lim, last_band = lims[-1], bands[-1]
        need = [total[f] - last_lim[f] for f in range(3)] + [total[3 + r] - last_band[r][1] for r in (0, 1)]
        room = [total[3 + r] - last_band[r][0] for r in (0, 1)]
        states: dict[tuple, tuple] = {(): (0, tuple(tuple(b) for b in base[:-1]), ())}
        built = 0
        for i, ((cpu, memory, spread_cpu, spread_memory, own, allowed), members) in enumerate(order):
            n, after = len(members), rest[i + 1]
            splits = [
                (*s, n - sum(s))
                for s in itertools.product(range(n + 1), repeat=size - 1)
                if sum(s) <= n and all(allowed[x] or j == 0 for x, j in enumerate((*s, n - sum(s))))
            ]
            # Per split: the moves it adds and what it adds to each node but the last.
            prepared = [
                (
                    split,
                    n - (split[own] if own >= 0 else 0),
                    [(j * cpu, j * memory, j, j * spread_cpu, j * spread_memory) for j in split[:-1]],
                )
                for split in splits
            ]
            tests = [(lims[x], *bands[x], after[x]) for x in range(size - 1)]
            more = after[size]
            new: dict[tuple, tuple] = {}
            for moves, held, choice in states.values():
                built += len(splits)
                if built > budget:
                    self.evaluations += built
                    return False
                for split, split_moves, adds in prepared:
                    moves2 = moves + split_moves
                    cut_cpu, cut_memory = moves2 * shrink[0], moves2 * shrink[1]
                    grown = []
                    held_cpu_load = held_memory_load = held_count = held_cpu = held_memory = 0
                    for load, (dc, dm, dk, duc, dum), (lim, cpu_band, memory_band, after_x) in zip(held, adds, tests):
                        c, m, k = load[0] + dc, load[1] + dm, load[2] + dk
                        uc, um = load[3] + duc, load[4] + dum
                        if (
                            c > lim[0]
                            or m > lim[1]
                            or k > lim[2]
                            or uc > cpu_band[1] - cut_cpu
                            or um > memory_band[1] - cut_memory
                            or uc + after_x[3] < cpu_band[0] + cut_cpu
                            or um + after_x[4] < memory_band[0] + cut_memory
                        ):
                            break
                        grown.append((c, m, k, uc, um))
                        held_cpu_load, held_memory_load, held_count = (
                            held_cpu_load + c,
                            held_memory_load + m,
                            held_count + k,
                        )
                        held_cpu, held_memory = held_cpu + uc, held_memory + um
                    else:
                        if (
                            held_cpu > room[0] - cut_cpu
                            or held_memory > room[1] - cut_memory
                            or held_cpu + more[3] < need[3] + cut_cpu
                            or held_memory + more[4] < need[4] + cut_memory
                            or held_cpu_load + more[0] < need[0]
                            or held_memory_load + more[1] < need[1]
                            or held_count + more[2] < need[2]
                        ):
                            continue
                        key = tuple((round(c, 6), round(m), k, round(uc, 6), round(um)) for c, m, k, uc, um in grown)
                        old = new.get(key)
                        if old is None or moves2 < old[0]:
                            new[key] = (moves2, tuple(grown), (*choice, split))
            states = new
        self.evaluations += built
        found = []
        for moves, held, choice in states.values():
            rest_last = [total[f] - sum(load[f] for load in held) for f in range(5)]
            if rest_last[0] > last_lim[0] or rest_last[1] > last_lim[1] or rest_last[2] > last_lim[2]:
                continue
            moved = moved_elsewhere + moves
            if moved > self.cap:
                continue
            worst = deviation = 0.0
            for r in (0, 1):
                uses = [load[3 + r] for load in held] + [rest_last[3 + r]]
                changed = [(p, uses[x] * self.inv[p][r]) for x, p in enumerate(pos) if p >= 0]
                span, squared = self.changed(r, high[r], low[r], changed)
                worst, deviation = max(worst, span), deviation + squared
            if worst > self.ceiling:
                continue
            true = worst + self.price * moved
            value = true + ANNEAL_SMOOTH * deviation
            if true < best - 1e-12 or (true <= best + 1e-12 and value < current - 1e-12):
                found.append(((true, value), choice))
        start = list(where)
        for _value, choice in sorted(found, key=lambda f: f[0])[: RESPLIT_TRIES if self.orderable else 1]:
            for ((*_sizes, own, _allowed), members), split in zip(order, choice, strict=True):
                # the class's VMs on their own node stay there first, then the others stay put
                members.sort(key=lambda v: (where[v] != home[v], at[where[v]]))
                targets = [group[x] for x in range(size) for _ in range(split[x])]
                targets.sort(key=lambda node: node != group[own] if own >= 0 else False)
                for v, target in zip(members, targets, strict=True):
                    if where[v] != target:
                        self.shift(v, target)
            self.set_where(list(where))
            if self.orderable is None or self.orderable(self.moves()):
                return True
            self.set_where(start)
        return False

    def resplit_groups(self, budget: int, sizes: tuple[int, ...] = (2,)) -> None:
        """resplit each group of nodes of the first of `sizes` (pairs: those between which a VM
        may move), again while one changes; then the groups of the next size, back to the first
        when that changes something; until `budget` partial splits are tried in all."""
        pairs = sorted(
            {(min(node, t), max(node, t)) for v, node in enumerate(self.where) for t in self.allowed[v] if t != node}
        )
        nodes = range(len(self.names))
        groups = [pairs if size == 2 else list(itertools.combinations(nodes, size)) for size in sizes]
        # Groups nearest the busiest or idlest end first: those nodes set the spread, and where the
        # budget ends a sweep (many nodes) it goes to them. Uncounted nodes count as ends.
        far = [self.count] * self.count  # per counted position, its distance from either end
        for util in self.util:
            for i, p in enumerate(sorted(range(self.count), key=util.__getitem__)):
                far[p] = min(far[p], i, self.count - 1 - i)
        rank = [far[p] if p >= 0 else 0 for p in self.pos]
        groups = [sorted(g, key=lambda group: sorted(rank[node] for node in group)) for g in groups]
        spent = 0

        def sweep(groups) -> bool:
            nonlocal spent
            changed = False
            for group in groups:
                if spent >= budget:
                    return False
                before = self.evaluations
                changed |= self.resplit(group, budget - spent)
                spent += self.evaluations - before
            return changed

        while spent < budget and any(sweep(g) for g in groups):
            pass

    def evaluate(self, ends: list, source: int, target: int, cpu: float, memory: float, moved: int):
        """measure() if `cpu` and `memory` of spread load went from source to target and `moved` more VMs were
        off their node, without changing the state; `ends` holds, per resource, the positions of
        the three busiest and the three idlest counted nodes (the extremes of the others)."""
        worst, deviation, n = 0.0, 0.0, self.count
        ps, pt = self.pos[source], self.pos[target]
        for r, amount in ((0, cpu), (1, memory)):
            util = self.util[r]
            total, squares = self.sums[2 * r], self.sums[2 * r + 1]
            top = bottom = None
            for p in ends[r][0]:
                if p != ps and p != pt:
                    top = util[p]
                    break
            for p in ends[r][1]:
                if p != ps and p != pt:
                    bottom = util[p]
                    break
            high, low = top if top is not None else -math.inf, bottom if bottom is not None else math.inf
            for p, sign in ((ps, -1.0), (pt, 1.0)):  # inline, not changed(): the polish's inner loop
                if p < 0:
                    continue
                old = util[p]
                new = old + sign * amount * self.inv[p][r]
                total += new - old
                squares += new * new - old * old
                high, low = max(high, new), min(low, new)
            worst = max(worst, high - low)
            deviation += squares / n - (total / n) ** 2
        if worst > self.ceiling:
            return math.inf, math.inf
        true = worst + self.price * (self.moved + moved)
        return true, true + ANNEAL_SMOOTH * deviation

    def changed(self, r: int, high: float, low: float, changed: list[tuple[int, float]]) -> tuple[float, float]:
        """Resource r's spread and mean squared deviation if the counted node at each position p
        had utilisation u, for (p, u) in `changed`, the other nodes' extremes being high and low."""
        total, squares, util = self.sums[2 * r], self.sums[2 * r + 1], self.util[r]
        for p, new in changed:
            old = util[p]
            total += new - old
            squares += new * new - old * old
            high, low = max(high, new), min(low, new)
        n = self.count
        return high - low, squares / n - (total / n) ** 2

    def polish(self) -> None:
        """The best single move or exchange while one lowers the spread plus price per move
        (or keeps it and lowers the surrogate), within the walk's budget of states measured."""
        best, current = self.measure()
        home = self.home
        while self.evaluations < self.budget:
            found = None
            ends = []
            for util in self.util:
                order = sorted(range(self.count), key=util.__getitem__)
                ends.append((order[::-1][:3], order[:3]))
            # VMs alike (size, allowed nodes, node now and at the start) give the same states.
            alike: dict[tuple, int] = {}
            for v, vm in enumerate(self.vms):
                alike.setdefault(
                    (self.where[v], home[v], vm.cpu, vm.memory, vm.spread_cpu, vm.spread_memory, id(vm.allowed)), v
                )
            distinct = sorted(alike.values())
            for a in distinct:
                source = self.where[a]
                vm = self.vms[a]
                for target in self.allowed[a]:
                    if target == source or not self.fits(target, vm.cpu, vm.memory, 1):
                        continue
                    moved = (target != home[a]) - (source != home[a])
                    if self.moved + moved > self.cap:
                        continue
                    true, value = self.evaluate(ends, source, target, vm.spread_cpu, vm.spread_memory, moved)
                    self.evaluations += 1
                    if true < best - 1e-12 or (true <= best + 1e-12 and value < current - 1e-12):
                        if found is None or (true, value) < found[0]:
                            found = ((true, value), a, target, -1)
                for b in distinct:
                    target = self.where[b]
                    if b <= a or target == source or target not in self.allowed[a] or source not in self.allowed[b]:
                        continue
                    if not self.exchange_fits(a, b):
                        continue
                    other = self.vms[b]
                    moved = (target != home[a]) - (source != home[a]) + (source != home[b]) - (target != home[b])
                    if self.moved + moved > self.cap:
                        continue
                    true, value = self.evaluate(
                        ends,
                        source,
                        target,
                        vm.spread_cpu - other.spread_cpu,
                        vm.spread_memory - other.spread_memory,
                        moved,
                    )
                    self.evaluations += 1
                    if true < best - 1e-12 or (true <= best + 1e-12 and value < current - 1e-12):
                        if found is None or (true, value) < found[0]:
                            found = ((true, value), a, target, b)
            if found is None:
                return
            _value, a, target, b = found
            source = self.where[a]
            self.shift(a, target)
            if b >= 0:
                self.shift(b, source)
            best, current = self.measure()


def _anneal(
    ctx: Context,
    chosen: list,
    seed: int = 0,
    price: float = ANNEAL_PRICE,
    method: str = "anneal",
    cap: float = math.inf,
    effort: int = 1,
) -> list | None:
    """Simulated annealing from the greedy plan on small clusters: random moves and exchanges
    of VMs over allowed nodes within the limits, seeded so that a state always gets the same
    plan. The walk minimises a smooth surrogate, the spread plus ANNEAL_SMOOTH x the mean
    squared deviation of the utilisations plus `price` per moved VM: the deviation term tells
    apart the states of a plateau where many nodes tie at the top. The best state, judged on
    the spread plus `price` per moved VM alone, is polished (the best single move or exchange
    while one helps) and its moves ordered so that each step stays within the limits. An
    exchange is taken only when one of its VMs fits its new node first; still, moves can wait
    on each other in a cycle (a full node that must let go before it receives): then the moves
    that can be ordered are kept and a further walk starts from them, with those VMs settled
    (a VM moves at most once), up to ANNEAL_ROUNDS walks. Returns the moves in an order
    feasible one after the other, or None when it finds nothing better than the greedy plan.
    `method` "ils" runs the iterated local search instead of the walk (_Walk.iterate),
    "recreate" the ruin and recreate (_Walk.restarts). `effort` multiplies the budgets: the
    annealing's steps, the local search's kicks, the recreate's starts and the states
    measured. A search is a function of its arguments alone (the instance, not the context): the
    latest SEARCHES_KEPT results are kept by their arguments."""
    if not _searchable(ctx.instance, _movable(ctx.instance)):
        return None  # before the kept results: a large instance is neither hashed nor kept
    return _own(ctx.instance, _annealed(ctx.instance, tuple(chosen), seed, price, method, cap, effort))


def _movable(instance: Instance) -> list[PlanVM]:
    return [vm for vm in instance.vms if vm.movable and len(vm.allowed) > 1]


def _own(instance: Instance, found: tuple | None) -> list | None:
    """A kept search's moves with this instance's VMs (a kept result may come from an equal one)."""
    if found is None:
        return None
    vms = {vm.key: vm for vm in instance.vms}
    return [(vms[vm.key], source, target) for vm, source, target in found]


# The seeded searches are pure (the same instance and start give the same moves): the latest
# results, two plans' at effort 1, are kept by their arguments. `serve` re-plans an unchanged
# cluster every few minutes, and a reused and a full evaluation of one state both ask.
SEARCHES_KEPT = 12


def forget_searches() -> None:
    """Drop the kept searches' results (the plan benchmark times each plan from scratch)."""
    _annealed.cache_clear()
    _resplit_of.cache_clear()


@functools.lru_cache(maxsize=SEARCHES_KEPT)
def _annealed(
    instance: Instance, chosen: tuple, seed: int, price: float, method: str, cap: float, effort: int
) -> tuple | None:
    import random

    movable = _movable(instance)
    rng = random.Random(seed)
    steps = effort * min(ANNEAL_MAX_STEPS, ANNEAL_STEPS_PER_VM * len(movable))
    budget = effort * ILS_EVALUATIONS
    greedy = _Evaluator(instance).spread(_assignment(chosen)) + price * len(chosen)
    settled: list = []  # moves ordered in earlier walks
    current, start = instance, (chosen if method == "anneal" and seed in ANNEAL_FROM_GREEDY else [])
    spent = 0  # states measured by the earlier walks: one budget for the run
    for _round in range(ANNEAL_ROUNDS):
        if spent >= budget:
            break
        walk = _Walk(current, _movable(current), price, cap - len(settled))
        walk.evaluations, walk.budget = spent, budget
        walk.place(_assignment(start))
        if method == "anneal":
            walk.set_where(walk.walk(rng, steps))
            walk.polish()
        elif method == "recreate":
            walk.restarts(rng, effort * RECREATE_STARTS)
        else:
            walk.iterate(rng, effort * ILS_KICKS)
        if _sequence(current, walk.moves()) is not None:  # re-split only a state that can be ordered
            walk.orderable = lambda moves, instance=current: _sequence(instance, moves) is not None
            walk.resplit_groups(effort * RESPLIT_STATES)  # pairs
        moves = walk.moves()
        ordered = _sequence(current, moves, partial=True)
        settled += ordered
        spent = walk.evaluations
        if len(ordered) == len(moves):
            break
        done = {vm.key: target for vm, _s, target in settled}
        current = Instance(
            instance.nodes,
            tuple(
                replace(vm, node=done[vm.key], allowed=frozenset({done[vm.key]})) if vm.key in done else vm
                for vm in instance.vms
            ),
        )
        start = []
    originals = {vm.key: vm for vm in instance.vms}
    result = [(originals[vm.key], originals[vm.key].node, target) for vm, _s, target in settled]
    value = _Evaluator(instance).spread(_assignment(result)) + price * len(result)
    return tuple(result) if value < greedy - 1e-9 else None


def _resplit(ctx: Context, chosen: list, price: float, cap: float, effort: int) -> list | None:
    """The plan's state re-split exactly, two and then three nodes at a time (_Walk.
    resplit_groups, RESPLIT_FINAL_STATES x effort), every state it takes one whose moves can be
    ordered: those moves in such an order, or None when it changes nothing. Kept as _anneal's."""
    if not _searchable(ctx.instance, _movable(ctx.instance)):
        return None
    return _own(ctx.instance, _resplit_of(ctx.instance, tuple(chosen), price, cap, effort))


@functools.lru_cache(maxsize=SEARCHES_KEPT)
def _resplit_of(instance: Instance, chosen: tuple, price: float, cap: float, effort: int) -> tuple | None:
    movable = _movable(instance)
    walk = _Walk(instance, movable, price, cap)
    walk.place(_assignment(chosen))
    start = list(walk.where)
    if _sequence(instance, walk.moves()) is None:
        return None
    walk.orderable = lambda moves: _sequence(instance, moves) is not None
    walk.resplit_groups(effort * RESPLIT_FINAL_STATES, sizes=(2, 3))
    if walk.where == start:
        return None
    ordered = _sequence(instance, walk.moves())
    return None if ordered is None else tuple(ordered)


STRAND_CHECKS = 50  # plans (best first) checked for a VM they would leave without a migration target
SEQUENCE_SEARCH_STATES = 2_000  # orders of moves tried when taking the lightest fitting move gets stuck


def _sequence(instance: Instance, moves: list, partial: bool = False) -> list | None:
    """The moves in an order each step of which stays within the limits (lightest first
    where there is a choice; when that gets stuck, a depth-first search over the orders, up to
    SEQUENCE_SEARCH_STATES sets of moves done); when no order is found, None, or with
    `partial` the longest prefix found."""
    search = _Search(instance)
    start = {name: list(load) for name, load in search.load.items()}
    limits = step_limits(instance, start)
    remaining = sorted(moves, key=lambda m: (m[0].memory, m[0].cpu, m[0].key))
    load = search.load

    def fits(item) -> bool:
        vm, _source, target = item
        slot, limit = load[target], limits[target]
        return slot[0] + vm.cpu <= limit[0] and slot[1] + vm.memory <= limit[1] and slot[2] + 1 <= limit[2]

    def shift(item, sign: int) -> None:
        vm, source, target = item
        for i, amount in ((0, vm.cpu), (1, vm.memory), (2, 1)):
            load[source][i] -= sign * amount
            load[target][i] += sign * amount

    seen: set[int] = set()
    longest: list = []

    def order(done: int, path: list) -> bool:
        nonlocal longest
        if len(path) == len(remaining):
            return True
        if done in seen or len(seen) >= SEQUENCE_SEARCH_STATES:
            return False
        seen.add(done)
        if len(path) > len(longest):
            longest = list(path)
        for i, item in enumerate(remaining):
            if done >> i & 1 or not fits(item):
                continue
            shift(item, 1)
            path.append(item)
            if order(done | 1 << i, path):
                return True
            path.pop()
            shift(item, -1)
        return False

    path: list = []
    if order(0, path):
        return path
    return longest if partial else None


def _best_swap(ctx: Context, search: _Search, ranked, by_node, moved, sources, targets, current: float):
    """The exchange of a VM on a busy node with a smaller one on an idle node that lowers
    the spread most (or keeps it and lowers the sum of squares), as two moves in an order
    that is feasible one after the other; None when none does."""
    best = None
    for source in sources:
        for target in targets:
            if target == source:
                continue
            for a in by_node.get(source, ()):
                if a.key in moved or target not in a.allowed:
                    continue
                for b in by_node.get(target, ()):
                    if (
                        b.key in moved
                        or source not in b.allowed
                        or (b.spread_cpu >= a.spread_cpu and b.spread_memory >= a.spread_memory)
                    ):
                        continue
                    new, squares = search.spread_change(
                        ranked, source, target, a.spread_cpu - b.spread_cpu, a.spread_memory - b.spread_memory
                    )
                    if not (new < current - 1e-12 or (new <= current + 1e-12 and squares < -1e-12)):
                        continue
                    score = (round(new, 12), squares)
                    if best is not None and score >= best[0]:
                        continue
                    order = _swap_order(search, a, b, source, target)
                    if order is not None:
                        best = (score, order)
    if best is None:
        return None
    order = best[1]
    if ctx.accept is not None and not all(ctx.accept(vm, t, search.assignment) for vm, _s, t in order):
        return None
    return order


def _swap_order(search: _Search, a: PlanVM, b: PlanVM, source: str, target: str):
    """a: source -> target and b: target -> source, in an order each step of which fits."""
    if search.fits_load(target, a.cpu, a.memory, 1) and search.fits_load(source, b.cpu - a.cpu, b.memory - a.memory, 0):
        return [(a, source, target), (b, target, source)]
    if search.fits_load(source, b.cpu, b.memory, 1) and search.fits_load(target, a.cpu - b.cpu, a.memory - b.memory, 0):
        return [(b, target, source), (a, source, target)]
    return None


def _prune(ctx: Context, chosen: list, min_gain: float) -> list:
    """Drop each move whose removal raises the spread by less than min_gain (latest first)."""
    if len(chosen) > 200:
        return chosen
    evaluator = _Evaluator(ctx.instance)
    current = list(chosen)
    base = evaluator.spread({vm.key: t for vm, _s, t in current})
    for item in reversed(list(current)):
        trial = [c for c in current if c is not item]
        assignment = {vm.key: t for vm, _s, t in trial}
        trial_spread = evaluator.spread(assignment)
        worth = trial_spread - base >= min_gain and trial_spread > base + 1e-12
        if not worth and not _new_violations(ctx.instance, assignment, evaluator):
            current = trial
            base = trial_spread
    return current


def _new_violations(
    instance: Instance, assignment: Mapping[VMKey, str], evaluator: _Evaluator | None = None
) -> list[str]:
    """What the assignment violates that the state did not: a node pushed above a limit it
    kept (or further above one it broke), a VM where it may not run."""
    evaluator = evaluator or _Evaluator(instance)
    before, after = evaluator.start, evaluator.loads(assignment)
    problems = []
    for n in instance.nodes:
        b, a = before[n.name], after[n.name]
        if a[0] > max(b[0], n.cpu_allowed) + EPSILON or a[1] > max(b[1], n.memory_allowed) + EPSILON:
            problems.append(f"capacity: {n.name}")
        if n.max_vms is not None and a[2] > max(b[2], n.max_vms):
            problems.append(f"max_vms: {n.name}")
    for vm in instance.vms:
        target = assignment.get(vm.key, vm.node)
        if target != vm.node and (not vm.movable or target not in vm.allowed):
            problems.append(f"allowed: {vm.key[0]}/{vm.key[1]}")
    return problems


def _drain_goal(ctx: Context) -> tuple[list[Move], list[PlanVM]]:
    instance = ctx.instance
    search = _Search(instance)
    leaving = sorted(
        (vm for vm in instance.vms if vm.node in ctx.drained and vm.movable),
        key=lambda v: (-v.memory, -v.cpu, v.key),
    )
    stranded = [vm for vm in instance.vms if vm.node in ctx.drained and not vm.movable]
    moves: list[Move] = []
    for vm in leaving:
        ranked = search.ranked()
        best = None
        for target in sorted(vm.allowed):
            if target in ctx.drained or not search.fits(vm, target):
                continue
            if ctx.accept is not None and not ctx.accept(vm, target, search.assignment):
                continue
            new, squares = search.spread_after(ranked, vm, vm.node, target)
            score = (round(new, 12), squares, target)
            if best is None or score < best[0]:
                best = (score, target)
        if best is None:
            stranded.append(replace(vm, movable=False, reason=NO_SAFE_TARGET))
            continue
        search.apply(vm, best[1])
        moves.append(_move(vm, vm.node, best[1]))
    return moves, stranded


def _bound(instance: Instance, after: float, notes: list[str]) -> float | None:
    """planbound.lower_bound: no plan within the limits reaches a smaller spread. None, with
    a note, when it cannot be stated (no assignment keeps every node within its limits, as
    when load that does not move already breaks one)."""
    from .planbound import NoFeasiblePlan, lower_bound, solver_installed

    if not solver_installed():
        notes.append("lower bound: the fluid bound only; the tighter LP bound needs the `solver` extra (highspy)")
    try:
        bound = lower_bound(instance)
    except (NoFeasiblePlan, ValueError, ArithmeticError) as exc:
        notes.append(f"no lower bound on the spread: {exc}")
        return None
    if bound > after + 1e-9:
        notes.append(
            f"no lower bound on the spread: the bound ({bound:.1%}) assumes every node within its limits, which "
            "load that does not move already breaks"
        )
        return None
    return bound


def _keep_targets(ctx: Context, moves: list[Move], widest: float | None = None) -> list[Move]:
    """The longest prefix of the moves that leaves every VM that has a migration target now
    with one, and violates no constraint the state did not already violate (and, with
    `widest`, leaves the spread no wider than that). A shorter prefix is checked afresh: a
    move cut off may have been the one that left another VM room."""
    if ctx.strands is None or not moves:
        return moves
    evaluator = _Evaluator(ctx.instance)
    for k in range(len(moves), -1, -1):
        assignment = {m.key: m.target for m in moves[:k]}
        if widest is not None and evaluator.spread(assignment) > widest + 1e-12:
            continue
        if not _new_violations(ctx.instance, assignment, evaluator) and not ctx.strands(assignment):
            return moves[:k]
    return []


def _move(vm: PlanVM, source: str, target: str) -> Move:
    return Move(vm.key, source, target, vm.cpu, vm.memory, vm.migrate_seconds)


# ---------------------------------------------------------------- waves


def waves(
    instance: Instance, moves: list[Move], wave_size: int, outbound: int, inbound: int = DEFAULT_INBOUND
) -> list[Wave]:
    """Group moves into waves (see the module docstring). Within a wave the lightest
    feasible moves go first; a move is feasible when its target has room for it on top of
    the moves already done and those in flight to it."""
    search = _Search(instance)
    vms = {vm.key: vm for vm in instance.vms}
    remaining = sorted(moves, key=lambda m: (m.seconds if m.seconds is not None else math.inf, m.memory, m.key))
    order = {m.key: i for i, m in enumerate(moves)}
    result: list[Wave] = []
    while remaining:
        wave: list[Move] = []
        sources: dict[str, int] = {}
        targets: dict[str, int] = {}
        for move in list(remaining):
            if len(wave) >= wave_size:
                break
            if move.target in sources or move.source in targets:
                continue  # depends on a move of this wave: next wave
            if sources.get(move.source, 0) >= outbound or targets.get(move.target, 0) >= inbound:
                continue
            if not search.fits(vms[move.key], move.target):
                continue
            wave.append(move)
            sources[move.source] = sources.get(move.source, 0) + 1
            targets[move.target] = targets.get(move.target, 0) + 1
            remaining.remove(move)
            for i, amount in ((0, move.cpu), (1, move.memory), (2, 1)):
                search.load[move.target][i] += amount  # in flight: counted on the target already
        if not wave:
            # Nothing fits in this order: fall back to the search's own order, one at a time.
            move = min(remaining, key=lambda m: order[m.key])
            wave.append(move)
            remaining.remove(move)
            for i, amount in ((0, move.cpu), (1, move.memory), (2, 1)):
                search.load[move.target][i] += amount
        for move in wave:  # done: the source lets go
            for i, amount in ((0, move.cpu), (1, move.memory), (2, 1)):
                search.load[move.source][i] -= amount
        result.append(Wave(tuple(wave)))
    return result


# ---------------------------------------------------------------- the plan


def plan(
    state: ClusterState,
    config: Config,
    goal: str = "spread",
    node: str | None = None,
    *,
    wave_size: int = DEFAULT_WAVE_SIZE,
    max_moves: int = DEFAULT_MAX_MOVES,
    min_gain: float | None = None,
    threshold: float | None = None,
    inbound: int = DEFAULT_INBOUND,
    now: float | None = None,
    basis: str | None = None,
    effort: int = 1,
) -> Plan:
    """min_gain and threshold default to thresholds.rebalance-min-gain / rebalance-spread-max;
    basis: what the spread measures (build_instance); effort: the spread goal's search budgets
    on small clusters, multiplied (plan_context)."""
    ctx = build_instance(state, config, goal, node, now, basis)
    min_gain = config.thresholds.rebalance_min_gain if min_gain is None else min_gain
    threshold = config.thresholds.rebalance_spread_max if threshold is None else threshold
    return plan_context(
        ctx,
        goal,
        node,
        wave_size=wave_size,
        max_moves=max_moves,
        min_gain=min_gain,
        threshold=threshold,
        inbound=inbound,
        effort=effort,
    )


def plan_context(
    ctx: Context,
    goal: str = "spread",
    node: str | None = None,
    *,
    wave_size: int = DEFAULT_WAVE_SIZE,
    max_moves: int = DEFAULT_MAX_MOVES,
    min_gain: float = DEFAULT_MIN_GAIN,
    threshold: float = DEFAULT_SPREAD_THRESHOLD,
    inbound: int = DEFAULT_INBOUND,
    effort: int = 1,
) -> Plan:
    """The plan for a goal. `effort` (1 and up) multiplies the budgets of the searches that
    refine the spread goal's plan on small clusters (ANNEAL_MAX_NODES, ANNEAL_MAX_VMS): about
    that many times the work for a plan closer to the optimum; a state and an effort always
    give the same plan."""
    if effort < 1:
        raise ValueError(f"effort must be 1 or more, not {effort}")
    instance = ctx.instance
    size = max(1, min(wave_size, DEFAULT_WAVE_SIZE, ctx.parallel_per_cluster or 1))
    outbound = max(1, ctx.parallel_outbound)
    notes: list[str] = ctx.load_basis.notes()
    stranded: list[PlanVM] = []
    if goal == "spread":
        gain = effective_min_gain(instance, min_gain)
        moves, before, after = _spread_goal(ctx, max_moves, gain, threshold, effort)
        if not moves:
            notes.append(
                f"no plan: the spread {before:.1%} is within the threshold {threshold:.0%}"
                if before <= threshold
                else f"no move lowers the spread {before:.1%} by at least {gain:.{0 if gain >= 0.01 else 3}%}"
            )
    else:
        before = spread(instance, {})
        moves, stranded = _drain_goal(ctx)
        after = spread(instance, {m.key: m.target for m in moves})
        if len(moves) > max_moves:
            notes.append(f"{len(moves)} moves needed, above --max-moves {max_moves}: the plan lists them all")
    kept = _keep_targets(ctx, moves)
    if len(kept) < len(moves):
        cut = moves[len(kept) :]
        notes.append(
            f"{len(cut)} move(s) left out: with them, another VM would have no migration target left "
            "(a new no_target_node)"
        )
        if goal != "spread":
            vms = {vm.key: vm for vm in instance.vms}
            stranded += [replace(vms[m.key], movable=False, reason=NO_SAFE_TARGET) for m in cut]
        if goal == "spread":  # what is left of the plan must not widen the spread
            kept = _keep_targets(ctx, kept, widest=before)
        moves = kept
        after = spread(instance, {m.key: m.target for m in moves})
    bound = _bound(instance, after, notes)
    return Plan(
        goal,
        node,
        instance,
        ctx.basis,
        moves,
        waves(instance, moves, size, outbound, inbound),
        before,
        after,
        threshold,
        {"wave_size": size, "outbound_per_node": outbound, "inbound_per_node": inbound},
        stranded,
        notes,
        ctx.hostnames,
        ctx.kubevirt_version,
        bound,
        ctx.load_basis,
    )


# ---------------------------------------------------------------- verify


DONE, PENDING, NO_LONGER_SAFE, SUPERSEDED = "done", "still_safe", "no_longer_safe", "superseded"


@dataclass(frozen=True)
class MoveCheck:
    key: VMKey
    source: str
    target: str
    status: str  # done | still_safe | no_longer_safe | superseded
    detail: str


def verify(state: ClusterState, config: Config, moves: list[tuple[VMKey, str, str]]) -> list[MoveCheck]:
    """Each move of a plan against the current state: done (the VM runs on its target),
    superseded (it is gone, stopped or on a third node), no longer safe (it may not move
    any more, or its target fails the test or has no room for it and the plan's other
    pending moves into it), or still safe."""
    ctx = build_instance(state, config)
    search = _Search(ctx.instance)
    vms = {vm.key: vm for vm in ctx.instance.vms}
    vmis = state.index("virtualmachineinstances.kubevirt.io")
    result: list[MoveCheck] = []
    for key, source, target in moves:
        vmi = vmis.get(key)
        where = vmi_node(vmi) if vmi is not None else ""
        if where == target:
            result.append(MoveCheck(key, source, target, DONE, f"runs on {target}"))
            continue
        if not where:
            result.append(MoveCheck(key, source, target, SUPERSEDED, "the VMI is gone or not running"))
            continue
        if where != source:
            result.append(MoveCheck(key, source, target, SUPERSEDED, f"runs on {where} now, not on {source}"))
            continue
        vm = vms[key]
        if not vm.movable:
            result.append(MoveCheck(key, source, target, NO_LONGER_SAFE, f"not movable now: {vm.reason}"))
        elif target not in vm.allowed:
            room = placement.targets(state, config).rooms.get(target)
            why = placement.static_failure(vmi.spec, room) if room is not None else "the node is gone"
            result.append(MoveCheck(key, source, target, NO_LONGER_SAFE, f"{target} fails the target test: {why}"))
        elif not search.fits(vm, target):
            result.append(
                MoveCheck(key, source, target, NO_LONGER_SAFE, f"{target} has no room left within the thresholds")
            )
        else:
            search.apply(vm, target)
            result.append(MoveCheck(key, source, target, PENDING, "target still passes the test and has room"))
    return result
