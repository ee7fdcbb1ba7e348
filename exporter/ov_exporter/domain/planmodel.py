"""The rebalance-plan model: nodes, VMs and an assignment, with no cluster state and no I/O.

The planner (domain/planner.py) builds an `Instance` from a ClusterState; the exact solver,
the descheduler baseline and the benchmark solve the same `Instance`. Definitions they all
rely on:

- `PlanNode.cpu_capacity`: what the CPU threshold allows, in vCPUs: physical cores
  (status.capacity.cpu / threads per core, as the cpu_overcommit check counts them) x
  `thresholds.cpu-overcommit-max`. Dedicated-CPU VMs count too.
- `PlanNode.cpu_limit` / `memory_limit` (optional, default None = the capacity): a lower hard
  limit for `feasible`, utilisation stays relative to the capacity. The planner sets cpu_limit
  to cores x the profile's cpu-overcommit-target on a node within it, so that a plan raises
  no new cpu_overcommit finding.
- `PlanNode.memory_capacity`: what the memory threshold allows, in bytes: allocatable memory x
  `thresholds.memory-overcommit-max`.
- `PlanNode.cpu_used` / `memory_used`: the load on the node that no plan moves (VMs that are
  not movable, requests of other pods), in the same units. Movable VMs are never included:
  they count where the assignment puts them.
- `PlanNode.max_vms`: most VMs (virt-launcher pods) the node may hold, None = no limit;
  `vms_now`: VMs running there when the state was read (all of them, movable or not).
- `PlanNode.in_spread`: the node counts in `spread` (False for a node being drained).
- Two loads. The one above (cpu, memory, `*_used`, `*_capacity`, `*_allowed`) is the
  *capacity load*: what the thresholds the checks enforce are about, so `feasible` and every
  limit read it. The *spread load* (`PlanVM.spread_cpu` / `spread_memory`, `PlanNode.
  spread_cpu_used` / `spread_memory_used` / `spread_cpu_capacity` / `spread_memory_capacity`)
  is what `utilisation` and `spread` measure. On the allocation basis the two are the same
  (a field left None takes its capacity-load value); on the usage basis (domain/planner.py
  builds it from Prometheus samples) the spread load is measured usage: a VM's CPU in cores
  and memory in bytes, a node's usage that no plan moves, relative to its logical CPUs and
  memory.
- `PlanVM.cpu`: vCPUs; `PlanVM.memory`: guest memory plus the virt-launcher overhead, bytes.
  `node`: where it runs now; `allowed`: the nodes that pass the full target test
  (domain/placement.py), its own node included; `movable`: whether a plan may move it, with
  `reason` ("" when movable) and `migrate_seconds` (predicted migration time, None = unknown).
- `Instance.vms` lists every VM running on the instance's nodes, movable or not.
- An assignment maps a VM key (namespace, name) to a node; a VM it does not name stays on
  `vm.node`.
- Utilisation of a node = (spread_cpu_used + spread_cpu of the movable VMs assigned there) /
  spread_cpu_capacity, and likewise for memory (0 on a node without capacity and load,
  infinite with load).
- `spread` = max over the two resources of (max utilisation - min utilisation) over the nodes
  with `in_spread` (0 when fewer than two): the goal "spread" minimises it.
- `feasible` lists every violation: a load above the limit (capacity), a movable VM on a node
  outside `allowed` or an unmovable VM off its node (allowed), more VMs than `max_vms`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

VMKey = tuple[str, str]  # (namespace, name)
# Rounding slack when comparing sums of floats against a capacity.
EPSILON = 1e-9


@dataclass(frozen=True)
class PlanNode:
    name: str
    cpu_capacity: float  # vCPUs the threshold allows
    memory_capacity: float  # bytes the threshold allows
    cpu_used: float  # vCPUs that stay (not movable)
    memory_used: float  # bytes that stay (not movable)
    max_vms: int | None  # None: no per-node VM limit
    vms_now: int  # VMs running on it when the state was read
    in_spread: bool = True
    cpu_limit: float | None = None  # hard limit for feasible(); None: cpu_capacity
    memory_limit: float | None = None  # hard limit for feasible(); None: memory_capacity
    # The spread load (module docstring); None: the capacity load's value.
    spread_cpu_capacity: float | None = None
    spread_memory_capacity: float | None = None
    spread_cpu_used: float | None = None
    spread_memory_used: float | None = None

    def __post_init__(self) -> None:
        _default(self, "spread_cpu_capacity", self.cpu_capacity)
        _default(self, "spread_memory_capacity", self.memory_capacity)
        _default(self, "spread_cpu_used", self.cpu_used)
        _default(self, "spread_memory_used", self.memory_used)

    @property
    def cpu_allowed(self) -> float:
        return self.cpu_capacity if self.cpu_limit is None else self.cpu_limit

    @property
    def memory_allowed(self) -> float:
        return self.memory_capacity if self.memory_limit is None else self.memory_limit


@dataclass(frozen=True)
class PlanVM:
    key: VMKey
    cpu: float  # vCPUs
    memory: float  # guest memory + launcher overhead, bytes
    node: str  # where it runs now
    allowed: frozenset[str]  # nodes passing the full target test
    movable: bool
    reason: str = ""  # why it is not movable ("" when movable)
    migrate_seconds: float | None = None
    spread_cpu: float | None = None  # the spread load (module docstring); None: cpu
    spread_memory: float | None = None  # None: memory

    def __post_init__(self) -> None:
        _default(self, "spread_cpu", self.cpu)
        _default(self, "spread_memory", self.memory)


def _default(obj: object, name: str, value: float) -> None:
    if getattr(obj, name) is None:
        object.__setattr__(obj, name, value)


@dataclass(frozen=True)
class Instance:
    nodes: tuple[PlanNode, ...]
    vms: tuple[PlanVM, ...]


def placement(instance: Instance, assignment: Mapping[VMKey, str]) -> dict[VMKey, str]:
    """Every VM's node under the assignment (unnamed VMs stay where they are)."""
    return {vm.key: assignment.get(vm.key, vm.node) for vm in instance.vms}


def loads(instance: Instance, assignment: Mapping[VMKey, str]) -> dict[str, list[float]]:
    """node -> [cpu, memory, VM count]: what stays plus the movable VMs assigned there."""
    result = {n.name: [n.cpu_used, n.memory_used, 0.0] for n in instance.nodes}
    for vm in instance.vms:
        node = assignment.get(vm.key, vm.node) if vm.movable else vm.node
        slot = result.get(node)
        if slot is None:
            continue
        if vm.movable:
            slot[0] += vm.cpu
            slot[1] += vm.memory
        slot[2] += 1
    return result


def step_limits(instance: Instance, now: Mapping[str, list[float]]) -> dict[str, tuple[float, float, float]]:
    """Per node, the load (CPU, memory, VMs) each step of a plan may bring it to: its limits,
    or its load `now` where that is above them (a plan need not mend such a node, but never
    adds to it). What planner._sequence and planbound.order_moves judge a step by."""
    return {
        n.name: (
            max(n.cpu_allowed, now[n.name][0]) + EPSILON,
            max(n.memory_allowed, now[n.name][1]) + EPSILON,
            math.inf if n.max_vms is None else float(max(n.max_vms, now[n.name][2])),
        )
        for n in instance.nodes
    }


def spread_loads(instance: Instance, assignment: Mapping[VMKey, str]) -> dict[str, list[float]]:
    """node -> [cpu, memory] of the spread load: what stays plus the movable VMs assigned there."""
    result = {n.name: [n.spread_cpu_used, n.spread_memory_used] for n in instance.nodes}
    for vm in instance.vms:
        if not vm.movable:
            continue
        slot = result.get(assignment.get(vm.key, vm.node))
        if slot is not None:
            slot[0] += vm.spread_cpu
            slot[1] += vm.spread_memory
    return result


def spread_capacity(node: PlanNode, resource: int) -> float:
    """What the spread load of a resource (0 CPU, 1 memory) is relative to."""
    return node.spread_cpu_capacity if resource == 0 else node.spread_memory_capacity


def spread_size(vm: PlanVM, resource: int) -> float:
    return vm.spread_cpu if resource == 0 else vm.spread_memory


def same_loads(instance: Instance) -> bool:
    """Whether the spread load is the capacity load (the allocation basis)."""
    return all(
        (n.spread_cpu_capacity, n.spread_memory_capacity, n.spread_cpu_used, n.spread_memory_used)
        == (n.cpu_capacity, n.memory_capacity, n.cpu_used, n.memory_used)
        for n in instance.nodes
    ) and all((vm.spread_cpu, vm.spread_memory) == (vm.cpu, vm.memory) for vm in instance.vms)


def _ratio(load: float, capacity: float) -> float:
    if capacity > 0:
        return load / capacity
    return 0.0 if load <= EPSILON else float("inf")


def utilisation(instance: Instance, assignment: Mapping[VMKey, str]) -> dict[str, tuple[float, float]]:
    """node -> (CPU utilisation, memory utilisation) of the spread load."""
    load = spread_loads(instance, assignment)
    return {
        n.name: (_ratio(load[n.name][0], n.spread_cpu_capacity), _ratio(load[n.name][1], n.spread_memory_capacity))
        for n in instance.nodes
    }


def spread_of(util: Mapping[str, tuple[float, float]], nodes: tuple[PlanNode, ...]) -> float:
    counted = [util[n.name] for n in nodes if n.in_spread]
    if len(counted) < 2:
        return 0.0
    return max(max(u[i] for u in counted) - min(u[i] for u in counted) for i in (0, 1))


def spread(instance: Instance, assignment: Mapping[VMKey, str]) -> float:
    """max over CPU and memory of (busiest - idlest utilisation) over the counted nodes."""
    return spread_of(utilisation(instance, assignment), instance.nodes)


def feasible(instance: Instance, assignment: Mapping[VMKey, str]) -> list[str]:
    """Every constraint the assignment violates; empty when it is feasible."""
    problems: list[str] = []
    names = {n.name for n in instance.nodes}
    for vm in instance.vms:
        target = assignment.get(vm.key, vm.node)
        label = f"{vm.key[0]}/{vm.key[1]}"
        if not vm.movable:
            if target != vm.node:
                problems.append(f"allowed: {label} is not movable ({vm.reason}) but is assigned to {target}")
        elif target not in vm.allowed:
            problems.append(f"allowed: {label} on {target}, which fails its target test")
        elif target not in names:
            problems.append(f"allowed: {label} on {target}, which is not a node of the instance")
    load = loads(instance, assignment)
    for n in instance.nodes:
        cpu, memory, count = load[n.name]
        if cpu > n.cpu_allowed + EPSILON:
            problems.append(f"capacity: {n.name} CPU {cpu:g} vCPUs above {n.cpu_allowed:g}")
        if memory > n.memory_allowed + EPSILON:
            problems.append(f"capacity: {n.name} memory {memory:g} bytes above {n.memory_allowed:g}")
        if n.max_vms is not None and count > n.max_vms:
            problems.append(f"max_vms: {n.name} holds {count:g} VMs, limit {n.max_vms}")
    return problems
