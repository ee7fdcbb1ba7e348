"""Pure helpers shared by checks: they read records, never the network."""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from dataclasses import dataclass
from typing import Any

from ..config import ASSUMED_THREADS_PER_CORE, Config
from ..model import ObjectRef
from ..records import Node, VirtualMachine, VirtualMachineInstance
from ..store import Changed, ClusterState
from .incremental import placed_on

SCHEDULABLE_LABEL = "kubevirt.io/schedulable"
SMT_LABEL = "feature.node.kubernetes.io/cpu-hardware_multithreading"
CONTROL_PLANE_LABELS = ("node-role.kubernetes.io/master", "node-role.kubernetes.io/control-plane")
ACTIVE_VMI_PHASES = ("Scheduled", "Running")
LIVE_MIGRATING_STRATEGIES = ("LiveMigrate", "LiveMigrateIfPossible")
MAX_VCPUS = 1_000_000  # far above any real VM; keeps sums of fuzzed values finite
WORKER_LABEL = "node-role.kubernetes.io/worker"


def labels(obj: Any) -> dict[str, str]:
    return obj.metadata.labels or {}


def annotations(obj: Any) -> dict[str, str]:
    return obj.metadata.annotations or {}


def ref(kind: str, obj: Any) -> ObjectRef:
    return ObjectRef(kind, obj.metadata.namespace, obj.metadata.name)


def in_name_order(state: ClusterState, key: str) -> list[Any]:
    """The objects of one kind in (namespace, name) order; sorted once, kept, and brought
    up to date per changed object (state.per_changes)."""
    return state.per_changes(
        f"{key} in name order",
        (key,),
        lambda s: sorted(s.of(key), key=_name),
        lambda s, kept, changed: _resorted(s, key, kept, changed[key]),
    )


def _resorted(state: ClusterState, key: str, kept: list[Any], changed: tuple[Changed, ...]) -> list[Any]:
    out = list(kept)
    for c in changed:
        where = (c.namespace, c.name)
        at = bisect_left(out, where, key=_name)
        if at < len(out) and _name(out[at]) == where:
            del out[at]
        record = state.get(key, *where)
        if record is not None:
            insort(out, record, key=_name)
    return out


def _name(obj: Any) -> tuple[str, str]:
    return obj.metadata.namespace, obj.metadata.name


# ---------------------------------------------------------------- nodes


def is_control_plane(node: Node) -> bool:
    return any(lbl in labels(node) for lbl in CONTROL_PLANE_LABELS)


def has_noschedule_taint(node: Node) -> bool:
    taints = (node.spec.taints if node.spec else None) or []
    return any(t.effect in ("NoSchedule", "NoExecute") and not t.key.startswith("node.kubernetes.io/") for t in taints)


def vm_schedulable_nodes(state: ClusterState) -> tuple[Any, ...]:
    """Nodes labelled kubevirt.io/schedulable=true. Dumps that lost the label (no node
    carries it) fall back to nodes without a NoSchedule taint that are not control plane.
    Kept while the nodes do not change (state.per_kinds)."""
    return state.per_kinds("vm_schedulable_nodes", ("nodes",), _vm_schedulable_nodes)


def _vm_schedulable_nodes(state: ClusterState) -> tuple[Any, ...]:
    nodes = state.nodes
    if any(SCHEDULABLE_LABEL in labels(n) for n in nodes):
        return tuple(n for n in nodes if labels(n).get(SCHEDULABLE_LABEL) == "true")
    return tuple(n for n in nodes if not is_control_plane(n) and not has_noschedule_taint(n))


def capacity(node: Node, resource: str) -> float | None:
    status = node.status
    cap = (status.capacity if status else None) or {}
    value = cap.get(resource)
    return float(value) if value is not None and value > 0 else None


def threads_per_core(node: Node, config: Config) -> tuple[int, str]:
    """(threads per core, where it came from): the NFD label (nfd), else the
    `threads-per-core` setting (config), else an assumption of 2 (assumed)."""
    smt = labels(node).get(SMT_LABEL)
    if smt == "true":
        return 2, "nfd"
    if smt == "false":
        return 1, "nfd"
    if config.threads_per_core is not None:
        return config.threads_per_core, "config"
    return ASSUMED_THREADS_PER_CORE, "assumed"


# ---------------------------------------------------------------- VMIs


def vm_template_spec(vm: VirtualMachine) -> Any | None:
    """spec.template.spec of a VirtualMachine (the VMI spec it creates), or None."""
    template = vm.spec.template if vm.spec else None
    return template.spec if template else None


def vmi_node(vmi: VirtualMachineInstance) -> str:
    status = vmi.status
    if status is None or not status.node_name or status.phase not in ACTIVE_VMI_PHASES:
        return ""
    return status.node_name


def active_vmis_by_node(state: ClusterState) -> dict[str, dict[tuple[str, str], float]]:
    """node -> (namespace, name) of the active VMIs there (vmi_node) -> 1.0; kept and
    brought up to date per changed VMI (domain.incremental.placed_on)."""
    return placed_on(state, "active VMIs per node", "virtualmachineinstances.kubevirt.io", _placed)


def _placed(vmi: VirtualMachineInstance) -> tuple[str, float] | None:
    node = vmi_node(vmi)
    return (node, 1.0) if node else None


def vm_node(state: ClusterState, vm: VirtualMachine) -> str:
    """The node a VirtualMachine's VMI runs on ("" when it is not running): the `node`
    label of per-VM series, so Alertmanager can inhibit them on a NotReady node."""
    vmi = state.get("virtualmachineinstances.kubevirt.io", vm.metadata.namespace, vm.metadata.name)
    return vmi_node(vmi) if vmi is not None else ""


def vmi_vcpus(vmi: VirtualMachineInstance) -> int:
    """sockets x cores x threads (each default 1); the status topology wins when present.
    Without a topology, the CPU request or limit rounded up; 1 when nothing is set."""
    topo = vmi.status.current_cpu_topology if vmi.status else None
    domain = vmi.spec.domain if vmi.spec else None
    cpu = domain.cpu if domain else None
    for t in (topo, cpu):
        if t is not None and (t.sockets or t.cores or t.threads):
            return (t.sockets or 1) * (t.cores or 1) * (t.threads or 1)
    resources = domain.resources if domain else None
    if resources is not None:
        for part in (resources.requests, resources.limits):
            if part and part.get("cpu"):
                return min(MAX_VCPUS, max(1, math.ceil(part["cpu"])))
    return 1


def vmi_dedicated(vmi: VirtualMachineInstance) -> bool:
    domain = vmi.spec.domain if vmi.spec else None
    return bool(domain and domain.cpu and domain.cpu.dedicated_cpu_placement)


def guest_memory(spec: Any, status: Any = None) -> float | None:
    """Bytes of guest memory: live value, domain.memory.guest, else the memory request."""
    if status is not None and status.memory is not None and status.memory.guest_current:
        return float(status.memory.guest_current)
    domain = spec.domain if spec else None
    if domain is None:
        return None
    if domain.memory and domain.memory.guest:
        return float(domain.memory.guest)
    resources = domain.resources
    if resources and resources.requests and resources.requests.get("memory"):
        return float(resources.requests["memory"])
    return None


def vmi_guest_memory(vmi: VirtualMachineInstance) -> float | None:
    return guest_memory(vmi.spec, vmi.status)


# ---------------------------------------------------------------- cluster settings


@dataclass(frozen=True)
class Setting:
    value: Any
    source: str  # hco | kubevirt | default | migration-policy | vmi


def hyperconverged(state: ClusterState) -> Any | None:
    hcos = state.hyperconvergeds
    for h in hcos:
        if h.metadata.name == "kubevirt-hyperconverged":
            return h
    return hcos[0] if hcos else None


def kubevirt_config(state: ClusterState) -> Any | None:
    for kv in state.kubevirts:
        if kv.spec and kv.spec.configuration:
            return kv.spec.configuration
    return None


def _hco_value(state: ClusterState, v1_path: tuple[str, ...], v1beta1_path: tuple[str, ...]) -> Any:
    hco = hyperconverged(state)
    if hco is None or hco.spec is None:
        return None
    for path in (v1_path, v1beta1_path):
        obj: Any = hco.spec
        for attr in path:
            obj = getattr(obj, attr, None) if obj is not None else None
        if obj is not None:
            return obj
    return None


def _kv_value(state: ClusterState, path: tuple[str, ...]) -> Any:
    obj: Any = kubevirt_config(state)
    for attr in path:
        obj = getattr(obj, attr, None) if obj is not None else None
    return obj


def setting(
    state: ClusterState,
    hco_v1: tuple[str, ...],
    hco_v1beta1: tuple[str, ...],
    kv: tuple[str, ...],
    default: Any,
    default_with_hco: Any = None,
) -> Setting:
    """HCO first (v1 then v1beta1 shape), KubeVirt CR second, defaults last."""
    value = _hco_value(state, hco_v1, hco_v1beta1)
    if value is not None:
        return Setting(value, "hco")
    value = _kv_value(state, kv)
    if value is not None:
        return Setting(value, "kubevirt")
    if default_with_hco is not None and hyperconverged(state) is not None:
        return Setting(default_with_hco, "default")
    return Setting(default, "default")


def migration_setting(state: ClusterState, attr: str, default: Any, default_with_hco: Any = None) -> Setting:
    return setting(
        state,
        ("virtualization", "live_migration_config", attr),
        ("live_migration_config", attr),
        ("migrations", attr),
        default,
        default_with_hco,
    )


def cluster_eviction_strategy(state: ClusterState) -> Setting:
    """HCO defaults to LiveMigrate on multi-worker clusters; plain KubeVirt to None."""
    nodes = state.nodes
    if any(WORKER_LABEL in labels(n) for n in nodes):  # HCO counts worker-role nodes (compact clusters too)
        workers = sum(1 for n in nodes if WORKER_LABEL in labels(n))
    else:  # dumps that lost the role labels
        workers = sum(1 for n in nodes if not is_control_plane(n))
    return setting(
        state,
        ("virtualization", "eviction_strategy"),
        ("eviction_strategy",),
        ("eviction_strategy",),
        "None",
        "LiveMigrate" if workers > 1 else "None",
    )


def cpu_allocation_ratio(state: ClusterState) -> Setting:
    return setting(
        state,
        ("virtualization", "vmi_cpu_allocation_ratio"),
        ("resource_requirements", "vmi_cpu_allocation_ratio"),
        ("developer_configuration", "cpu_allocation_ratio"),
        10,
    )


def memory_overcommit_percentage(state: ClusterState) -> Setting:
    return setting(
        state,
        ("virtualization", "higher_workload_density", "memory_overcommit_percentage"),
        ("higher_workload_density", "memory_overcommit_percentage"),
        ("developer_configuration", "memory_overcommit"),
        100,
    )
