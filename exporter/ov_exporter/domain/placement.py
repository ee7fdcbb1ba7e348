"""The target test: may a VMI's migration target pod land on a node?

What the scheduler and KubeVirt check for the target virt-launcher pod, as far as the
records hold it:
- the node is VM-schedulable (kubevirt.io/schedulable), not cordoned, Ready, and runs a Ready
  virt-handler (which receives the migration);
- the VMI's nodeSelector and required node affinity match it (readiness.node_matches);
- the VMI tolerates its NoSchedule/NoExecute taints (node.kubernetes.io/* taints mirror
  conditions judged above);
- required pod anti-affinity (the VMI's terms and those of the pods already there), required
  pod affinity and DoNotSchedule topology spread constraints hold, counting the virt-launcher
  pods of the active VMIs (the source pod still runs during the migration);
- the pod's requests fit: allocatable minus the requests of the virt-launcher pods already
  there, each with KubeVirt's memory overhead (`launcher_overhead`).
Other pods' requests are not in the records (only virt-handler and virt-launcher pods are
read): a node crowded by other workloads can still refuse a target this test accepts.
"""

from __future__ import annotations

import math
from bisect import insort
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from ..config import Config
from ..records import Node, VirtualMachineInstance
from ..store import Changed, ClusterState
from . import readiness as _readiness
from .k8s import cpu_allocation_ratio, labels, vm_schedulable_nodes, vmi_dedicated, vmi_node, vmi_vcpus
from .selectors import label_selector_matches, tolerates

MI = 2**20
GI = 2**30
# KubeVirt's estimate of the virt-launcher pod's memory beyond the guest (GetMemoryOverhead,
# pkg/virt-controller/services/renderresources.go and the constants in template.go,
# kubevirt/kubevirt v1.6.0): page tables (guest memory / 512), the fixed RSS of
# virt-launcher-monitor 25Mi + virt-launcher 100Mi + virtlogd 25Mi + virtqemud 40Mi + qemu 30Mi,
# 8Mi per vCPU, 8Mi for the IOThread, 32Mi video RAM (unless autoattachGraphicsDevice is false:
# not in the records, so always counted), 100Mi for dedicated CPUs. Devices the records do not
# hold (VFIO 1Gi, SEV 256Mi, TPM 53Mi, probes, arm64 pflash) and
# additionalGuestMemoryOverheadRatio are not counted.
FIXED_OVERHEAD = (25 + 100 + 25 + 40 + 30) * MI
PER_VCPU_OVERHEAD = 8 * MI
IOTHREAD_OVERHEAD = 8 * MI
VIDEO_OVERHEAD = 32 * MI
DEDICATED_OVERHEAD = 100 * MI
PAGETABLE_DIVISOR = 512
HOSTNAME_LABEL = "kubernetes.io/hostname"


def launcher_overhead(vmi: VirtualMachineInstance, memory: float | None = None) -> float:
    """Bytes KubeVirt adds to the virt-launcher pod's memory request beyond the guest
    (`memory`: the VMI's memory request, when known)."""
    if memory is None:
        memory = _readiness.vmi_requests(vmi, 1.0)[1]
    overhead = memory // PAGETABLE_DIVISOR + FIXED_OVERHEAD + PER_VCPU_OVERHEAD * vmi_vcpus(vmi)
    overhead += IOTHREAD_OVERHEAD + VIDEO_OVERHEAD
    if vmi_dedicated(vmi):
        overhead += DEDICATED_OVERHEAD
    return float(overhead)


def launcher_requests(vmi: VirtualMachineInstance, ratio: float) -> tuple[float, float]:
    """(CPU, memory bytes) the virt-launcher pod requests: the VMI's requests plus the overhead."""
    cpu, memory = _readiness.vmi_requests(vmi, ratio)
    return cpu, memory + launcher_overhead(vmi, memory)


# ---------------------------------------------------------------- the nodes


@dataclass(frozen=True)
class Room:
    """A node as a migration target: what it is, and what is free on it now."""

    node: Node
    name: str
    labels: Mapping[str, str]
    blocked: str  # why no VM may land here ("" when it may)
    cpu_free: float  # allocatable CPU minus the requests of the virt-launcher pods there
    memory_free: float
    pods_free: float | None  # allocatable pods minus the virt-launcher pods there; None: unknown


@dataclass(frozen=True, slots=True)
class Pod:
    """The virt-launcher pod of an active VMI, as pod (anti-)affinity and spread see it."""

    namespace: str
    name: str
    node: str
    labels: Mapping[str, str]
    spec: Any  # the VMI spec (affinity, topology spread constraints)


@dataclass(frozen=True)
class Targets:
    """Every node as a target and every virt-launcher pod, for one state (computed once)."""

    rooms: dict[str, Room]
    pods: dict[tuple[str, str], Pod]
    ratio: float  # vmiCPUAllocationRatio
    anti_affinity_namespaces: frozenset[str]  # namespaces with pods carrying required anti-affinity
    # Per signature (_signature): the static candidates, the frontier (b"front" + it) and
    # the spec they were judged for (b"spec" + it); filled as VMIs are judged.
    _cache: dict[bytes, Any]
    requests: dict[tuple[str, str], tuple[float, float]]  # active VMI -> its launcher requests
    overheads: dict[tuple[str, str], float]  # active VMI -> its launcher overhead

    def launcher(self, vmi: VirtualMachineInstance) -> tuple[float, float]:
        found = self.requests.get((vmi.metadata.namespace, vmi.metadata.name))
        return found if found is not None else launcher_requests(vmi, self.ratio)


def _blocked(node: Node, schedulable: set[str], handlers: dict[str, bool] | None) -> str:
    name = node.metadata.name
    if name not in schedulable:
        return "not VM-schedulable (kubevirt.io/schedulable)"
    if node.spec is not None and node.spec.unschedulable:
        return "cordoned"
    if not _readiness._node_ready(node):
        return "not Ready"
    if handlers is not None and not handlers.get(name, False):
        return "no Ready virt-handler"
    return ""


def targets(state: ClusterState, config: Config) -> Targets:
    """Every node as a target and every virt-launcher pod: computed once per state and
    kept across states; after a change only the rooms of the nodes it concerns are built
    again (a changed node; the nodes a changed VMI's launcher pod left or landed on), and
    the rooms of the other nodes are the very objects of the kept Targets."""
    return state.derive("placement_targets", lambda s: _kept_targets(s).targets)


VMIS = "virtualmachineinstances.kubevirt.io"
# What the targets read: the VMIs (launcher pods and requests), the nodes, the pods
# (virt-handler readiness) and the settings (vmiCPUAllocationRatio).
TARGET_KINDS = (VMIS, "nodes", "pods", "hyperconvergeds.hco.kubevirt.io", "kubevirts.kubevirt.io")

VMKey = tuple[str, str]


@dataclass(frozen=True)
class _Kept:
    """Targets and what they were built from, to bring them up to date after a change."""

    targets: Targets
    handlers: dict[str, bool] | None
    schedulable: frozenset[str]
    members: dict[str, dict[VMKey, tuple[float, float]]]  # node -> active VMI -> its launcher requests
    nodes: dict[str, Node]  # name -> record


def _kept_targets(state: ClusterState) -> _Kept:
    return state.per_changes("placement targets", TARGET_KINDS, _build, _update)


def _launcher(vmi: VirtualMachineInstance, ratio: float) -> tuple[float, float, float]:
    """(CPU, memory with the overhead, the overhead) of an active VMI's launcher pod."""
    cpu, memory = _readiness.vmi_requests(vmi, ratio)
    overhead = launcher_overhead(vmi, memory)
    return cpu, memory + overhead, overhead


def _has_anti_affinity(spec: Any) -> bool:
    affinity = spec.affinity if spec is not None else None
    return bool(
        affinity
        and affinity.pod_anti_affinity
        and affinity.pod_anti_affinity.required_during_scheduling_ignored_during_execution
    )


def _ratio(state: ClusterState) -> float:
    ratio_setting = cpu_allocation_ratio(state)
    return float(ratio_setting.value) if ratio_setting.value else 10.0


def _build(state: ClusterState) -> _Kept:
    ratio = _ratio(state)
    handlers = _readiness.handler_readiness(state)
    schedulable = frozenset(n.metadata.name for n in vm_schedulable_nodes(state))
    members: dict[str, dict[VMKey, tuple[float, float]]] = {}
    pods: dict[VMKey, Pod] = {}
    requests: dict[VMKey, tuple[float, float]] = {}
    overheads: dict[VMKey, float] = {}
    anti: set[str] = set()
    for vmi in state.vmis:
        node = vmi_node(vmi)
        if not node:
            continue
        meta = vmi.metadata
        key = (meta.namespace, meta.name)
        cpu, memory, overheads[key] = _launcher(vmi, ratio)
        requests[key] = members.setdefault(node, {})[key] = (cpu, memory)  # one tuple for both
        pods[key] = Pod(meta.namespace, meta.name, node, meta.labels or {}, vmi.spec)
        if _has_anti_affinity(vmi.spec):
            anti.add(meta.namespace)
    nodes = {n.metadata.name: n for n in state.nodes}
    rooms = {name: _room(node, schedulable, handlers, members.get(name)) for name, node in nodes.items()}
    targets = Targets(rooms, pods, ratio, frozenset(anti), {}, requests, overheads)
    return _Kept(targets, handlers, schedulable, members, nodes)


def _room(node: Node, schedulable: frozenset[str], handlers: dict[str, bool] | None, members: Mapping | None) -> Room:
    """A node as a target, its free room net of the launcher pods there (`members`). The
    requests are summed exactly (math.fsum), so the sum does not depend on their order."""
    name = node.metadata.name
    cpu = _readiness._allocatable(node, "cpu")
    memory = _readiness._allocatable(node, "memory")
    pod_slots = _readiness._allocatable(node, "pods")
    used = list(members.values()) if members else []
    blocked = _blocked(node, schedulable, handlers)
    if not blocked and (cpu is None or memory is None):
        blocked = "no allocatable CPU or memory in its status"
    return Room(
        node,
        name,
        labels(node),
        blocked,
        (cpu or 0.0) - math.fsum(u[0] for u in used),
        (memory or 0.0) - math.fsum(u[1] for u in used),
        None if pod_slots is None else pod_slots - len(used),
    )


def _update(state: ClusterState, kept: _Kept, changed: Mapping[str, tuple[Changed, ...]]) -> _Kept:
    """`_build` of the state after `changed`, from the kept one: what a changed VMI or
    node concerns is built again, the rest is shared with `kept` (left unaltered)."""
    if any(k in changed for k in TARGET_KINDS[3:]):  # the CPU allocation ratio may have changed
        return _build(state)
    handlers = _readiness.handler_readiness(state) if "pods" in changed else kept.handlers
    schedulable = kept.schedulable
    nodes = kept.nodes
    touched: set[str] = set()  # nodes whose room is built again
    if "nodes" in changed:
        schedulable = frozenset(n.metadata.name for n in vm_schedulable_nodes(state))
        nodes = {n.metadata.name: n for n in state.nodes}
        touched.update(c.name for c in changed["nodes"])
        touched.update(schedulable ^ kept.schedulable)
    if handlers != kept.handlers:
        touched.update(nodes)
    t = kept.targets
    ratio = t.ratio
    members = dict(kept.members)
    pods, requests, overheads = t.pods, t.requests, t.overheads  # each copied once it changes
    anti = t.anti_affinity_namespaces
    pods_changed = False
    reorder = False  # a launcher pod appeared: the pods go back to the state's order
    anti_changed = False
    for c in changed.get(VMIS, ()):
        key = (c.namespace, c.name)
        vmi = state.get(VMIS, *key) if c.record is not None else None
        node = vmi_node(vmi) if vmi is not None else ""
        before = pods.get(key)
        if before is None and not node:
            continue
        if node:
            meta = vmi.metadata
            cpu, memory, overhead = _launcher(vmi, ratio)
            pod = Pod(meta.namespace, meta.name, node, meta.labels or {}, vmi.spec)
            if before is not None and before.node == node and requests[key] == (cpu, memory):
                # Its launcher pod stays, with the same requests: its node's room is the same.
                if overheads[key] != overhead:
                    overheads = dict(overheads) if overheads is t.overheads else overheads
                    overheads[key] = overhead
                if pod != before:
                    pods = dict(pods) if pods is t.pods else pods
                    pods[key], pods_changed = pod, True
                    anti_changed = anti_changed or _has_anti_affinity(before.spec) or _has_anti_affinity(vmi.spec)
                continue
        pods = dict(pods) if pods is t.pods else pods
        requests = dict(requests) if requests is t.requests else requests
        overheads = dict(overheads) if overheads is t.overheads else overheads
        if before is not None:
            anti_changed = anti_changed or _has_anti_affinity(before.spec)
            on = members[before.node] = dict(members[before.node])
            del on[key]
            if not on:
                del members[before.node]
            touched.add(before.node)
            del pods[key], requests[key], overheads[key]
        if not node:
            pods_changed = True
            continue
        overheads[key] = overhead
        requests[key] = pair = (cpu, memory)
        members[node] = {**members.get(node, {}), key: pair}
        touched.add(node)
        pods[key] = before if before == pod else pod
        pods_changed = pods_changed or pods[key] is not before
        reorder = reorder or before is None
        anti_changed = anti_changed or _has_anti_affinity(vmi.spec)
    if reorder:
        pods = {k: pods[k] for vmi in state.vmis if (k := (vmi.metadata.namespace, vmi.metadata.name)) in pods}
    elif not pods_changed:
        pods = t.pods  # no launcher pod changed: the same pods (deleted and put back in place)
    if anti_changed:
        anti = frozenset(p.namespace for p in pods.values() if _has_anti_affinity(p.spec))
    rooms = t.rooms
    built: dict[str, Room] = {}
    if touched and (nodes is kept.nodes or list(nodes) == list(kept.nodes)):
        # The same nodes (in the same order): only the touched rooms are built again.
        for name in touched:
            node = nodes.get(name)
            if node is None:
                continue
            room = _room(node, schedulable, handlers, members.get(name))
            if room != t.rooms.get(name):
                built[name] = room
        if built:
            rooms = {**t.rooms, **built}
    elif touched:
        rooms = {}
        for name, node in nodes.items():
            kept_room = t.rooms.get(name)
            if name in touched or kept_room is None or kept_room.node is not node:
                rooms[name] = _room(node, schedulable, handlers, members.get(name))
            else:
                rooms[name] = kept_room
        # A room whose capacity and tests came out the same stays the kept object.
        rooms = {n: (t.rooms[n] if n in t.rooms and t.rooms[n] == r else r) for n, r in rooms.items()}
    same_rooms = rooms is t.rooms or (rooms.keys() == t.rooms.keys() and all(r is t.rooms[n] for n, r in rooms.items()))
    unchanged = pods is t.pods and requests is t.requests and overheads is t.overheads
    if same_rooms and unchanged and anti == t.anti_affinity_namespaces:
        return _Kept(t, handlers, schedulable, members, nodes)
    targets = Targets(
        t.rooms if same_rooms else rooms,
        pods,
        ratio,
        anti,
        dict(t._cache) if same_rooms else _patched_cache(t._cache, rooms, built) if built else {},
        requests,
        overheads,
    )
    return _Kept(targets, handlers, schedulable, members, nodes)


def _patched_cache(cache: dict[bytes, Any], rooms: dict[str, Room], built: dict[str, Room]) -> dict[bytes, Any]:
    """The static candidates of `cache` once the rooms in `built` replaced theirs (only
    these are tested again); the frontiers are left out (made again when asked)."""
    out: dict[bytes, Any] = {}
    position: dict[str, int] = {}
    for key, spec in cache.items():
        found = cache.get(key[4:]) if key.startswith(b"spec") else None
        if found is None:
            continue
        if not position:
            position = dict(zip(rooms, range(len(rooms))))
        candidates = [r for r in found if r.name not in built]
        for room in built.values():
            if not static_failure(spec, room):
                insort(candidates, room, key=lambda r: position[r.name])
        out[key], out[key[4:]] = spec, candidates
    return out


# ---------------------------------------------------------------- the test


def untolerated(spec: Any, room: Room) -> list[str]:
    """Keys of the node's NoSchedule/NoExecute taints the VMI does not tolerate."""
    taints = (room.node.spec.taints if room.node.spec else None) or []
    tolerations = (spec.tolerations if spec is not None else None) or []
    return [
        t.key
        for t in taints
        if t.effect in ("NoSchedule", "NoExecute")
        and not t.key.startswith("node.kubernetes.io/")
        and not tolerates(tolerations, t)
    ]


def static_failure(spec: Any, room: Room) -> str:
    """Why the node fails the tests that do not depend on where pods run ("" when it passes)."""
    if room.blocked:
        return room.blocked
    if spec is not None and not _readiness.node_matches(spec, room.node):
        return "does not match its nodeSelector/required node affinity"
    taints = untolerated(spec, room)
    if taints:
        return f"taint(s) not tolerated: {', '.join(taints)}"
    return ""


def _required(affinity: Any) -> list[Any]:
    return (affinity.required_during_scheduling_ignored_during_execution if affinity else None) or []


def _has_pod_terms(spec: Any) -> bool:
    if spec is None:
        return False
    affinity = spec.affinity
    if affinity and (_required(affinity.pod_affinity) or _required(affinity.pod_anti_affinity)):
        return True
    return any(c.when_unsatisfiable == "DoNotSchedule" for c in spec.topology_spread_constraints or [])


def _domain(rooms: Mapping[str, Room], node: str, key: str) -> str | None:
    room = rooms.get(node)
    return room.labels.get(key) if room is not None else None


def pod_failure(
    t: Targets,
    namespace: str,
    pod_labels: Mapping[str, str],
    spec: Any,
    node: str,
    pods: Iterable[Pod],
) -> str:
    """Required pod (anti-)affinity and DoNotSchedule topology spread of a pod landing on
    `node`, against `pods` (where the other pods run); "" when they hold."""
    pods = list(pods)
    affinity = spec.affinity if spec is not None else None
    for term in _required(affinity.pod_anti_affinity if affinity else None):
        here = _domain(t.rooms, node, term.topology_key)
        if here is None:
            continue
        for p in pods:
            if (
                p.namespace == namespace
                and _selects(term.label_selector, p.labels)
                and _domain(t.rooms, p.node, term.topology_key) == here
            ):
                return f"pod anti-affinity: {p.namespace}/{p.name} runs in {term.topology_key}={here}"
    for p in pods:  # the anti-affinity of the pods already there
        if p.namespace != namespace:
            continue
        other = p.spec.affinity if p.spec is not None else None
        for term in _required(other.pod_anti_affinity if other else None):
            there = _domain(t.rooms, p.node, term.topology_key)
            if (
                there is not None
                and there == _domain(t.rooms, node, term.topology_key)
                and _selects(term.label_selector, pod_labels)
            ):
                return f"pod anti-affinity of {p.namespace}/{p.name} in {term.topology_key}={there}"
    for term in _required(affinity.pod_affinity if affinity else None):
        here = _domain(t.rooms, node, term.topology_key)
        selector = term.label_selector
        matching = [p for p in pods if p.namespace == namespace and _selects(selector, p.labels)]
        if not matching and _selects(selector, pod_labels):
            continue  # the first of a group may go anywhere
        if here is None or not any(_domain(t.rooms, p.node, term.topology_key) == here for p in matching):
            return f"pod affinity: no matching pod in {term.topology_key}={here}"
    for c in (spec.topology_spread_constraints if spec is not None else None) or []:
        if c.when_unsatisfiable != "DoNotSchedule":
            continue
        here = _domain(t.rooms, node, c.topology_key)
        if here is None:
            return f"topology spread: the node has no {c.topology_key} label"
        selector = c.label_selector
        domains = {
            r.labels[c.topology_key]: 0
            for r in t.rooms.values()
            if c.topology_key in r.labels and not static_failure(spec, r)
        }
        domains.setdefault(here, 0)
        for p in pods:
            d = _domain(t.rooms, p.node, c.topology_key)
            if d in domains and p.namespace == namespace and _selects(selector, p.labels):
                domains[d] += 1
        own = 1 if _selects(selector, pod_labels) else 0
        skew = domains[here] + own - min(domains.values())
        if skew > (c.max_skew or 1):
            return f"topology spread: skew {skew} in {c.topology_key}={here} above maxSkew {c.max_skew or 1}"
    return ""


def _selects(selector: Any, pod_labels: Mapping[str, str]) -> bool:
    """A term's labelSelector; a missing one selects no pod (PodAffinityTerm and
    TopologySpreadConstraint API docs, k8s.io/api core/v1 types.go)."""
    return selector is not None and label_selector_matches(selector, pod_labels)


def fits(room: Room, cpu: float, memory: float) -> bool:
    return room.cpu_free >= cpu and room.memory_free >= memory and (room.pods_free is None or room.pods_free >= 1)


def _signature(spec: Any) -> bytes:
    if spec is None:
        return b""
    node_affinity = spec.affinity.node_affinity if spec.affinity else None
    return msgspec.json.encode((spec.node_selector, node_affinity, spec.tolerations))


def static_candidates(t: Targets, spec: Any) -> list[Room]:
    """The rooms passing static_failure, shared by every VMI with the same constraints."""
    key = _signature(spec)
    found = t._cache.get(key)
    if found is None:
        found = [r for r in t.rooms.values() if not static_failure(spec, r)]
        t._cache[key], t._cache[b"spec" + key] = found, spec
    return found


def target_rooms(
    t: Targets,
    vmi: VirtualMachineInstance,
    spec: Any,
    accept: Callable[[Room], bool] | None = None,
    first: bool = False,
    source: str | None = None,
) -> list[Room]:
    """The nodes other than the VMI's own (`source`, default where it runs) that pass the
    whole test; with `first`, at most one (enough to tell whether it has somewhere to go)."""
    source = vmi_node(vmi) if source is None else source
    cpu, memory = t.launcher(vmi)
    meta = vmi.metadata
    pod_labels = meta.labels or {}
    pod_terms = _has_pod_terms(spec) or meta.namespace in t.anti_affinity_namespaces
    found = []
    for room in static_candidates(t, spec):
        if room.name == source or not fits(room, cpu, memory):
            continue
        if accept is not None and not accept(room):
            continue
        if pod_terms and pod_failure(t, meta.namespace, pod_labels, spec, room.name, t.pods.values()):
            continue
        found.append(room)
        if first:
            break
    return found


def _frontier(rooms: list[Room]) -> list[Room]:
    """The rooms no other one beats on both free CPU and free memory: a pod fits on some
    room if and only if it fits on one of these (few) rooms."""
    front: list[Room] = []
    best_memory = float("-inf")
    for room in sorted(rooms, key=lambda r: (-r.cpu_free, -r.memory_free)):
        if room.memory_free > best_memory:
            front.append(room)
            best_memory = room.memory_free
    return front


def has_target(t: Targets, vmi: VirtualMachineInstance, spec: Any, source: str | None = None) -> bool:
    """Some node other than the VMI's own (`source`, default where it runs) passes the whole test."""
    return witness(t, vmi, spec, source) is not None


def witness(t: Targets, vmi: VirtualMachineInstance, spec: Any, source: str | None = None) -> Room | None:
    """A node other than the VMI's own (`source`, default where it runs) that passes the
    whole test, or None. For a VMI without pod terms (has_pod_terms), its target test
    holds as long as this room (the very object) is one of the rooms."""
    source = vmi_node(vmi) if source is None else source
    if has_pod_terms(t, vmi, spec):
        found = target_rooms(t, vmi, spec, first=True, source=source)
        return found[0] if found else None
    key = b"front" + _signature(spec)
    front = t._cache.get(key)
    if front is None:
        front = _frontier([r for r in static_candidates(t, spec) if r.pods_free is None or r.pods_free >= 1])
        t._cache[key] = front
    cpu, memory = t.launcher(vmi)
    source_fits = False
    for room in front:
        if room.cpu_free >= cpu and room.memory_free >= memory:
            if room.name != source:
                return room
            source_fits = True
    # Only the source fits on the frontier: a room it dominates may still fit.
    found = target_rooms(t, vmi, spec, first=True, source=source) if source_fits else []
    return found[0] if found else None


def has_pod_terms(t: Targets, vmi: VirtualMachineInstance, spec: Any) -> bool:
    """The VMI's target test reads where the other launcher pods run: it has required pod
    (anti-)affinity or DoNotSchedule spread, or pods of its namespace have anti-affinity."""
    return _has_pod_terms(spec) or vmi.metadata.namespace in t.anti_affinity_namespaces


def no_target_detail(t: Targets, vmi: VirtualMachineInstance, spec: Any) -> str:
    """Why the VMI has nowhere to migrate ("" when some node passes the target test)."""
    if has_target(t, vmi, spec):
        return ""
    source = vmi_node(vmi)
    matching = [r for r in static_candidates(t, spec) if r.name != source]
    if not matching:
        return (
            "no other VM-schedulable, Ready node with a Ready virt-handler matches its nodeSelector/required "
            "node affinity and tolerations"
        )
    cpu, memory = t.launcher(vmi)
    roomy = [r for r in matching if fits(r, cpu, memory)]
    if roomy:
        meta = vmi.metadata
        why = pod_failure(t, meta.namespace, meta.labels or {}, spec, roomy[0].name, t.pods.values())
        return f"{len(roomy)} matching node(s) with room, none allowed by pod constraints ({roomy[0].name}: {why})"
    best = max(matching, key=lambda r: (r.memory_free, r.cpu_free))
    return (
        f"needs {cpu:.2f} CPU and {memory / GI:.1f} GiB with the virt-launcher overhead; {len(matching)} matching "
        f"node(s), the roomiest ({best.name}) has {best.cpu_free:.2f} CPU and {best.memory_free / GI:.1f} GiB free"
    )


def after_moves(t: Targets, vmis: Mapping[tuple[str, str], VirtualMachineInstance], moves: Mapping) -> Targets:
    """The targets once the VMIs named in `moves` ((namespace, name) -> node) run on their
    new nodes: their launcher requests and pods counted there instead of on their sources."""
    free = {name: [r.cpu_free, r.memory_free, r.pods_free] for name, r in t.rooms.items()}
    pods = dict(t.pods)
    for key, target in moves.items():
        pod = pods.get(key)
        if pod is None or target not in free:
            continue
        cpu, memory = t.launcher(vmis[key])
        for node, sign in ((pod.node, 1), (target, -1)):
            slot = free.get(node)
            if slot is None:
                continue
            slot[0] += sign * cpu
            slot[1] += sign * memory
            if slot[2] is not None:
                slot[2] += sign
        pods[key] = Pod(pod.namespace, pod.name, target, pod.labels, pod.spec)
    rooms = {
        name: Room(r.node, r.name, r.labels, r.blocked, free[name][0], free[name][1], free[name][2])
        for name, r in t.rooms.items()
    }
    return Targets(rooms, pods, t.ratio, t.anti_affinity_namespaces, {}, t.requests, t.overheads)
