"""Anti-pattern 8: VMs sized without looking at what they use (requested vs used).

Usage comes from the metrics API (PodMetrics of the virt-launcher pods: CPU cores and
working-set memory of the pod) and from a Prometheus source: for memory the guest's own
view (preferred over the pod's), KubeVirt's recording rule `kubevirt_vmi_memory_used_bytes`
or its 1.9 replacement or the virt-handler gauges it is recorded from (sources/promql.py), for
CPU the 5-minute rate of `kubevirt_vmi_cpu_usage_seconds_total` where no PodMetrics
exists. Requested is the VMI's vCPU count and guest memory. Both are one
sample (the metrics API averages over its window); the alerts' `for:` durations turn
them into "over time".
"""

from __future__ import annotations

import math
from functools import cache
from operator import itemgetter
from typing import Any, Sequence

from ... import upstream
from ...config import Config
from ...domain.incremental import assembled, per_object_of_kind
from ...domain.k8s import labels, ref, vmi_guest_memory, vmi_node, vmi_vcpus
from ...model import AlertDecl, CheckOutput, CheckSpec, Family, Finding, NotApplicable, Sample, Severity
from ...records import VirtualMachineInstance
from ...store import ClusterState

PODMETRICS = "pods.metrics.k8s.io"
VMIS = "virtualmachineinstances.kubevirt.io"
GIB = 2.0**30

OVER = Family(
    "ov_vm_over_provisioned_usage_ratio",
    "gauge",
    "Used / requested of a running VMI's resource (cpu: cores used per vCPU; memory: bytes used per "
    "guest byte) when below thresholds.right-sizing-over-ratio: the VM is over-provisioned. One series "
    "per offending VMI and resource; node: where it runs.",
    ("namespace", "vmi", "resource", "node"),
    per_object=True,
)
UNDER = Family(
    "ov_vm_under_provisioned_usage_ratio",
    "gauge",
    "Used / requested of a running VMI's resource at or above thresholds.right-sizing-under-cpu-ratio "
    "or right-sizing-under-memory-ratio: the VM is under-provisioned. One series per offending VMI "
    "and resource; node: where it runs.",
    ("namespace", "vmi", "resource", "node"),
    per_object=True,
)
VMS = Family(
    "ov_vm_right_sizing_vms",
    "gauge",
    "Running VMIs with a usage sample, by resource and verdict (over, under, ok).",
    ("resource", "verdict"),
    no_alert="counts of the VMIs that ov_vm_{over,under}_provisioned_usage_ratio list one by one",
)
CPU_CORES = Family(
    "ov_vm_right_sizing_cpu_cores",
    "gauge",
    "Cluster total over the VMIs with a usage sample: vCPUs requested (type=requested) and CPU cores used (type=used).",
    ("type",),
    no_alert="cluster totals of requested vs used cores, for dashboards: no finding",
)
MEMORY_BYTES = Family(
    "ov_vm_right_sizing_memory_bytes",
    "gauge",
    "Cluster total over the VMIs with a usage sample: guest memory requested (type=requested) and "
    "memory used (type=used).",
    ("type",),
    no_alert="cluster totals of requested vs used memory, for dashboards: no finding",
)

RESOURCES = ("cpu", "memory")
_COUNTED = tuple((r, v) for r in RESOURCES for v in ("over", "under", "ok"))
# A VMI's kept judgement (_judge): its series and findings; its numbers (counts, totals).
_PARTS, _NUMBERS = itemgetter(0, 1), itemgetter(2)


def _pod_usage(state: ClusterState) -> dict[Any, tuple[float | None, float | None]]:
    """(VMI uid or (namespace, name)) -> (cpu cores, memory bytes) summed over the pod's
    containers; the larger of two pods (source and target of a migration) wins."""
    out: dict[Any, tuple[float | None, float | None]] = {}
    for pm in state.of(PODMETRICS):
        lab = labels(pm)
        if lab.get("kubevirt.io") != "virt-launcher":
            continue
        cpu = mem = None
        for c in pm.containers or ():
            usage = c.usage or {}
            if "cpu" in usage:
                cpu = (cpu or 0.0) + float(usage["cpu"])
            if "memory" in usage:
                mem = (mem or 0.0) + float(usage["memory"])
        name = lab.get("vm.kubevirt.io/name") or lab.get("kubevirt.io/domain", "")
        usage = (cpu, mem)  # one tuple for both keys, unless another pod came first
        for key in (lab.get("kubevirt.io/created-by"), (pm.metadata.namespace, name) if name else None):
            if key:
                old = out.get(key)
                out[key] = usage if old is None else (_max(old[0], cpu), _max(old[1], mem))
    return out


def _max(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def _latest(state: ClusterState, metric: str) -> dict[tuple[str, str], float]:
    """The newest valid sample of a per-VMI metric, by (namespace, name)."""
    latest: dict[tuple[str, str], tuple[float, float]] = {}
    for s in (state.samples or {}).get(metric, ()):
        key = (s.labels.get("namespace", ""), s.labels.get("name", ""))
        ts = s.timestamp or 0.0
        if key[1] and math.isfinite(s.value) and s.value >= 0 and (key not in latest or ts >= latest[key][0]):
            latest[key] = (ts, s.value)
    return {k: v for k, (_, v) in latest.items()}


def evaluate(state: ClusterState, config: Config) -> CheckOutput:
    pods = state.per_kinds("vm_right_sizing pod usage", (PODMETRICS,), _pod_usage)
    guest_used = state.per_kinds("vm_right_sizing guest memory used", ("samples",), _guest_used)
    cpu_rate = state.per_kinds("vm_right_sizing cpu rate", ("samples",), _cpu_rate)
    if not pods and not guest_used and not cpu_rate:
        why = state.absent.get(PODMETRICS) or "no PodMetrics of virt-launcher pods"
        raise NotApplicable(
            f"no VM usage: {why}, and no {upstream.VMI_MEMORY_USED} or {upstream.VMI_CPU_USAGE} samples from Prometheus"
        )
    t = config.thresholds
    out = CheckOutput()

    def judge(vmi: VirtualMachineInstance) -> tuple | None:
        if vmi.status is None or vmi.status.phase != "Running":
            return None
        key = (vmi.metadata.namespace, vmi.metadata.name)
        cpu_used, mem_used = pods.get(vmi.metadata.uid) or pods.get(key) or (None, None)
        if key in guest_used:
            mem_used = guest_used[key]
        if cpu_used is None and key in cpu_rate:
            cpu_used = cpu_rate[key]
        return state.per_object(SPEC.id, vmi, _judge, cpu_used, mem_used, t)

    # Judged per VMI and kept (domain.incremental) while the usage and thresholds are the same;
    # the series, findings, counts and totals assembled from the judgements kept as well.
    inputs = (pods, guest_used, cpu_rate, t)
    judged = per_object_of_kind(state, SPEC.id, VMIS, judge, {}, inputs)
    output = assembled(state, SPEC.id, VMIS, judged, {}, inputs, _PARTS, _NUMBERS)
    samples, findings = output.lists or ([], [])
    numbers = output.totals or (0.0,) * (len(_COUNTED) + 4)
    out.samples = [*samples, *(Sample(VMS.name, k, v) for k, v in zip(_COUNTED, numbers))]
    out.samples += [
        Sample(CPU_CORES.name, ("requested",), numbers[-4]),
        Sample(CPU_CORES.name, ("used",), numbers[-3]),
        Sample(MEMORY_BYTES.name, ("requested",), numbers[-2]),
        Sample(MEMORY_BYTES.name, ("used",), numbers[-1]),
    ]
    out.findings = list(findings)
    return out


def _guest_used(state: ClusterState) -> dict[tuple[str, str], float]:
    return _latest(state, upstream.VMI_MEMORY_USED)


def _cpu_rate(state: ClusterState) -> dict[tuple[str, str], float]:
    return _latest(state, upstream.VMI_CPU_USAGE_RATE)


def _judge(
    vmi: Any, cpu_used: float | None, mem_used: float | None, t: Any
) -> tuple[Sequence[Sample], tuple[Finding, ...], tuple[float, ...]]:
    """One running VMI's series, finding (if any) and numbers: 1.0 per (resource, verdict)
    of _COUNTED it has, then vCPUs requested, cores used, guest memory requested, memory
    used (0.0 for a resource not measured); kept per VMI, usage and thresholds
    (state.per_object)."""
    key = (vmi.metadata.namespace, vmi.metadata.name)
    vcpus, guest = vmi_vcpus(vmi), vmi_guest_memory(vmi)
    measured = {"cpu": (cpu_used, float(vcpus)), "memory": (mem_used, guest)}
    obj = ref("VirtualMachineInstance", vmi)
    samples: list[Sample] = []
    verdicts: list[tuple[str, str]] = []
    totals = {"cpu": [0.0, 0.0], "memory": [0.0, 0.0]}  # requested, used
    over, under = [], []
    for resource, (used, requested) in measured.items():
        if used is None or not requested:
            continue
        ratio = used / requested
        under_at = t.right_sizing_under_cpu_ratio if resource == "cpu" else t.right_sizing_under_memory_ratio
        # A 1-vCPU VM cannot shrink: idle CPU there is not over-provisioning.
        if ratio < t.right_sizing_over_ratio and not (resource == "cpu" and vcpus <= 1):
            verdict = "over"
            over.append(f"{resource} {_amount(resource, used)} of {_amount(resource, requested)} ({ratio:.0%})")
            samples.append(Sample(OVER.name, (*key, resource, vmi_node(vmi)), ratio, obj))
        elif ratio >= under_at:
            verdict = "under"
            under.append(f"{resource} {_amount(resource, used)} of {_amount(resource, requested)} ({ratio:.0%})")
            samples.append(Sample(UNDER.name, (*key, resource, vmi_node(vmi)), ratio, obj))
        else:
            verdict = "ok"
        verdicts.append((resource, verdict))
        totals[resource] = [requested, used]
    finding = None
    if under:
        finding = Finding(
            SPEC.id,
            Severity.WARNING,
            obj,
            "under-provisioned: uses "
            + "; ".join(under)
            + (" (over-provisioned: " + "; ".join(over) + ")" if over else ""),
        )
    elif over:
        finding = Finding(SPEC.id, Severity.INFO, obj, "over-provisioned: uses " + "; ".join(over))
    return (
        samples or (),  # most VMIs: no list of their own kept
        (finding,) if finding is not None else (),
        (*_counts(tuple(verdicts)), *totals["cpu"], *totals["memory"]),
    )


@cache
def _counts(verdicts: tuple[tuple[str, str], ...]) -> tuple[float, ...]:
    """1.0 per (resource, verdict) of _COUNTED among `verdicts`, else 0.0."""
    return tuple(1.0 if counted in verdicts else 0.0 for counted in _COUNTED)


def _amount(resource: str, value: float) -> str:
    return f"{value:.2f} cores" if resource == "cpu" else f"{value / GIB:.1f} GiB"


SPEC = CheckSpec(
    id="vm_right_sizing",
    anti_pattern=8,
    title="VMs sized without regard to their measured usage",
    severity_rules="info: over-provisioned, CPU (VMs with 2+ vCPUs) or memory used below 25 % of requested "
    "(thresholds.right-sizing-over-ratio); warning: under-provisioned, memory used at or above 90 % "
    "of guest memory or CPU at or above 90 % of the vCPU count (right-sizing-under-*-ratio)",
    families=(OVER, UNDER, VMS, CPU_CORES, MEMORY_BYTES),
    remediation="Resize to measured usage plus headroom: lower vCPUs/guest memory (or pick a smaller instance type) "
    "of over-provisioned VMs to return capacity to the cluster; raise the memory or vCPUs of "
    "under-provisioned VMs before the guest swaps or its OOM killer fires. Measure over a business cycle "
    "(the alerts wait hours) before resizing, and restart or hot-plug to apply.",
    alerts=(
        AlertDecl("OVVMOverProvisioned", info="hygiene", names="VirtualMachineInstance/vmi"),
        AlertDecl("OVVMUnderProvisioned", warning="degraded", names="VirtualMachineInstance/vmi"),
    ),
    settings=(
        "thresholds.right-sizing-over-ratio",
        "thresholds.right-sizing-under-cpu-ratio",
        "thresholds.right-sizing-under-memory-ratio",
    ),
    panels=(
        "ov-overview/Over-provisioned VMs (used / requested)",
        "ov-overview/Under-provisioned VMs (used / requested)",
    ),
    reads_samples=True,
    evaluate=evaluate,
    requires=(VMIS,),
    reads=(PODMETRICS,),
)
