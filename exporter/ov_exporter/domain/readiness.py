"""Live-migration readiness: one verdict per VirtualMachine with every reason that
blocks its live migration right now, under every eviction strategy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from ..config import Config
from ..model import Severity
from ..records import KIND_BY_KEY, KINDS, Node, VirtualMachine, VirtualMachineInstance
from ..store import ClusterState, uid_of
from . import placement
from .incremental import Concerns, per_object_of_kind
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

V = TypeVar("V")
VM_KIND = KIND_BY_KEY[VMS]

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


@dataclass
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


def kept_requests(state: ClusterState, vmi: VirtualMachineInstance, ratio: float) -> tuple[float, float]:
    """vmi_requests, kept per VMI and ratio (state.per_object)."""
    return state.per_object("vmi_requests", vmi, vmi_requests, ratio)


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


def readiness(state: ClusterState, config: Config) -> Readiness:
    """Computed once per state (the check and `check --vm` share it)."""
    return state.derive("migration_readiness", lambda s: _readiness(s, config))


def verdicts(state: ClusterState, config: Config) -> dict[tuple[str, str], Verdict]:
    """(namespace, VM name) -> Verdict, for every VirtualMachine."""
    return readiness(state, config).verdicts


# What a verdict reads besides its VM (domain.incremental): the disks' claims concern the VMs
# that name them; any other change (a VMI, a node, a pod, a migration, a setting) may move
# every VM's target test, so it judges every VM again.
RUNTIME_IGNORES = (VMS, PVCS, DATA_VOLUMES, *FALLBACK_KINDS)
READS: dict[str, Concerns] = {
    **{k.key: None for k in KINDS if k.key != VMS},
    PVCS: vms_claiming,
    DATA_VOLUMES: vms_claiming,
}


def per_vm(state: ClusterState, name: str, judge: Callable[[Any], V], config: Config) -> dict[str, V]:
    """uid -> `judge(vm)` for every VM, where `judge` reads what a readiness verdict reads
    (READS) and nothing else: after a change to a PVC or DataVolume only the VMs naming it are
    judged again."""
    return per_object_of_kind(state, name, VMS, judge, READS, (config,))


@dataclass(frozen=True)
class _Runtime:
    """The part of a verdict that does not read the disks' claims."""

    eviction_strategy: str
    strategy_origin: str
    node: str
    running: bool
    series_node: str
    reasons: dict[str, str]  # besides not_live_migratable and rwo_disk
    live_migratable: tuple[bool, str]


def _readiness(state: ClusterState, config: Config) -> Readiness:
    limit = migration_setting(state, "parallel_migrations_per_cluster", DEFAULT_PARALLEL_MIGRATIONS)
    in_flight = sum(1 for m in state.migrations if (m.status.phase if m.status else "") not in FINISHED_VMIM_PHASES)
    # Everything the runtime part reads besides its VM: the generations of every kind but the
    # claims' and the VMs' (the target test reads VMIs, nodes, pods and settings, no VM).
    runtime_inputs = (tuple(state.generations.get(k.key) for k in KINDS if k.key not in RUNTIME_IGNORES), config)
    # (namespace, name) -> (VM, its runtime part), valid while those inputs are the same: a
    # plain table rather than state.per_object, as every VM is judged again when they change.
    kept = state.object_memo.kinds_kept("readiness runtime") if state.generations else None
    if kept is not None and kept[0] == runtime_inputs:
        parts: dict[tuple[str, str], tuple[VirtualMachine, _Runtime]] = kept[1]
    else:
        parts = {}
        if state.generations:
            state.object_memo.keep_kinds("readiness runtime", runtime_inputs, parts)
    found: dict = {}
    last = state.object_memo.kinds_kept("readiness verdicts") if state.generations else None
    previous: dict[str, Verdict] = last[1] if last is not None else {}

    def judge(vm: VirtualMachine) -> Verdict:
        where = (vm.metadata.namespace, vm.metadata.name)
        entry = parts.get(where)
        if entry is None or entry[0] is not vm:
            if not found:
                found["strategy"] = cluster_eviction_strategy(state)
                found["handlers"] = handler_readiness(state)
                found["rooms"] = placement.targets(state, config)
            entry = parts[where] = (
                vm,
                _runtime(state, vm, found["strategy"], found["handlers"], found["rooms"], in_flight, limit),
            )
        verdict = _verdict(vm, entry[1], vm_disks(state, vm)[0])
        # The last evaluation's verdict when it says the same, so that what checks derive
        # from a verdict can be kept with it (domain.incremental.per_value).
        before = previous.get(uid_of(VM_KIND, vm))
        return before if before == verdict else verdict

    judged = per_vm(state, "readiness verdicts", judge, config)
    return Readiness({(v.namespace, v.name): v for v in judged.values()}, in_flight, limit)


def _runtime(
    state: ClusterState,
    vm: VirtualMachine,
    default_strategy: Setting,
    handlers: dict[str, bool] | None,
    rooms: placement.Targets,
    in_flight: int,
    limit: Setting,
) -> _Runtime:
    ns, name = vm.metadata.namespace, vm.metadata.name
    spec = vm_template_spec(vm)
    own = spec.eviction_strategy if spec else None
    reasons: dict[str, str] = {}
    vmi = state.get("virtualmachineinstances.kubevirt.io", ns, name)
    phase = vmi.status.phase if vmi is not None and vmi.status else ""
    running = phase == "Running"
    node = vmi.status.node_name if vmi is not None and vmi.status else ""
    if vmi is None:
        reasons[NOT_RUNNING] = "no VirtualMachineInstance (the VM is stopped)"
    elif not running:
        reasons[NOT_RUNNING] = f"VMI phase is {phase or 'unknown'}, not Running"
    live_migratable = _live_migratable(vmi) if running else (True, "")
    if running and node:
        detail = placement.no_target_detail(rooms, vmi, vmi.spec if vmi.spec is not None else spec)
        if detail:
            reasons[NO_TARGET_NODE] = detail
        if handlers is not None and not handlers.get(node, False):
            reasons[VIRT_HANDLER_NOT_READY] = (
                f"virt-handler on {node} is not Ready" if node in handlers else f"no virt-handler pod on {node}"
            )
        if in_flight >= limit.value:
            reasons[MIGRATION_SLOTS_FULL] = (
                f"{in_flight} migration(s) in flight, parallelMigrationsPerCluster is {limit.value} ({limit.source})"
            )
    return _Runtime(
        own or default_strategy.value,
        "set on the VM" if own else f"cluster default from {default_strategy.source}",
        node,
        running,
        vmi_node(vmi) if vmi is not None else "",
        reasons,
        live_migratable,
    )


def _verdict(vm: VirtualMachine, part: _Runtime, rwo: list[str]) -> Verdict:
    reasons = dict(part.reasons)
    ok, why = part.live_migratable
    if not ok and not (why == "DisksNotLiveMigratable" and rwo):
        reasons[NOT_LIVE_MIGRATABLE] = f"KubeVirt reports LiveMigratable=False ({why})"
    if rwo:
        reasons[RWO_DISK] = f"{len(rwo)} disk(s) without ReadWriteMany: {', '.join(rwo)}"
    return Verdict(
        vm.metadata.namespace,
        vm.metadata.name,
        part.eviction_strategy,
        part.strategy_origin,
        part.node,
        {r: reasons[r] for r in REASONS if r in reasons},
        part.running,
        part.series_node,
    )
