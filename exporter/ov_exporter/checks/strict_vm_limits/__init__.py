"""Anti-pattern 7: strict CPU and memory limits on VMs (throttling, OOM kills of virt-launcher).

What KubeVirt does with a memory limit (v1.3.0 and v1.9.0 alike, see the runbook): it adds
its estimated overhead to the limit of the virt-launcher pod, rejects guest memory above the
limit (except under the LiveUpdate rollout strategy), and makes a lone limit the request and
the guest memory. So a limit equal to the guest memory leaves only the estimate as room.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

from ...config import Config
from ...domain.incremental import assembled, per_object_of_kind, same_name
from ...domain.k8s import guest_memory, labels, ref, setting, vm_node, vm_template_spec
from ...domain.selectors import label_selector_matches
from ...model import AlertDecl, CheckOutput, CheckSpec, Family, Finding, Sample, Severity
from ...quantity import Quantity
from ...records import VirtualMachine
from ...store import ClusterState

GI = 2**30

RATIO = Family(
    "ov_vm_resource_limit_ratio",
    "gauge",
    "A VM's CPU or memory limit divided by what its guest gets (CPU: cores per vCPU; memory: limit per byte "
    "of guest memory). source vm: set in spec.template.spec.domain.resources.limits; auto: the CPU limit "
    "KubeVirt adds in namespaces selected by autoCPULimitNamespaceLabelSelector. One series per VM and resource; "
    'node: where its VMI runs ("" when stopped).',
    ("namespace", "vm", "resource", "source", "node"),
    per_object=True,
)
COUNT = Family(
    "ov_vms_with_resource_limits",
    "gauge",
    "VMs with at least one CPU or memory limit, by source (vm: hand-set; auto: autoCPULimitNamespaceLabelSelector).",
    ("source",),
    no_alert="count of the VMs that ov_vm_resource_limit_ratio lists one by one",
)


def _vcpus(domain: Any, limits: dict[str, Quantity]) -> float | None:
    cpu = domain.cpu if domain else None
    if cpu is not None and (cpu.sockets or cpu.cores or cpu.threads):
        return float((cpu.sockets or 1) * (cpu.cores or 1) * (cpu.threads or 1))
    resources = domain.resources if domain else None
    for part in ((resources.requests if resources else None), limits):
        if part and part.get("cpu"):
            return float(part["cpu"])  # KubeVirt derives the vCPUs from the CPU request or limit
    return None


def auto_cpu_selector(state: ClusterState) -> tuple[Any, str] | None:
    """(autoCPULimitNamespaceLabelSelector, where it came from) or None when unset.
    HCO v1 `spec.virtualization`, HCO v1beta1 `spec.resourceRequirements`, KubeVirt CR `spec.configuration`."""
    found = setting(
        state,
        ("virtualization", "auto_cpu_limit_namespace_label_selector"),
        ("resource_requirements", "auto_cpu_limit_namespace_label_selector"),
        ("auto_cpu_limit_namespace_label_selector",),
        None,
    )
    return (found.value, found.source) if found.value is not None else None


VMS = "virtualmachines.kubevirt.io"
VMIS = "virtualmachineinstances.kubevirt.io"


def _gib(value: float) -> str:
    return f"{value / GI:g} GiB"


# A VM's judgement (_judge_vm): its series and findings; 1.0 for how it is limited.
_PARTS = itemgetter(0, 1)
_SOURCES = ("vm", "auto")


def _counted(judgement: tuple) -> tuple[float, float]:
    return tuple(1.0 if judgement[2] == source else 0.0 for source in _SOURCES)  # type: ignore[return-value]


def evaluate(state: ClusterState, config: Config) -> CheckOutput:
    out = CheckOutput()
    auto = auto_cpu_selector(state)
    # Judged per VM and kept (domain.incremental): a namespace's labels may change any VM's.
    judged = per_object_of_kind(
        state,
        "strict_vm_limits VMs",
        VMS,
        lambda vm: _judge_vm(state, vm, auto),
        {VMIS: same_name, "namespaces": None},
        (auto,),
    )
    # Their series, findings and counts assembled in name order, kept as well.
    vms = assembled(
        state, "strict_vm_limits VMs", VMS, judged, {VMIS: same_name, "namespaces": None}, (auto,), _PARTS, _counted
    )
    if vms.lists:
        out.samples += vms.lists[0]
        out.findings += vms.lists[1]
    counts = vms.totals or (0.0, 0.0)
    out.samples += [Sample(COUNT.name, (source,), int(n)) for source, n in zip(_SOURCES, counts)]
    return out


def _namespace_labels(state: ClusterState, namespace: str) -> dict[str, str]:
    found = state.get("namespaces", "", namespace)
    return labels(found) if found is not None else {}


def _judge_vm(state: ClusterState, vm: VirtualMachine, auto: Any) -> tuple[list[Sample], list[Finding], str] | None:
    """One VM's series, findings and how it is limited ("vm": limits set on it, "auto": by
    the namespace selector); None when it has no limit."""
    out = CheckOutput()
    counted = ""
    spec = vm_template_spec(vm)
    if spec is None:
        return None
    ns, name = vm.metadata.namespace, vm.metadata.name
    domain = spec.domain
    dedicated = bool(domain and domain.cpu and domain.cpu.dedicated_cpu_placement)
    if dedicated:
        return None  # dedicated CPUs need Guaranteed QoS: limits equal to requests are required there
    limits = {
        k: v
        for k, v in ((domain.resources.limits if domain and domain.resources else None) or {}).items()
        if k in ("cpu", "memory")
    }
    vcpus = _vcpus(domain, limits)
    auto_limited = not limits and auto is not None and label_selector_matches(auto[0], _namespace_labels(state, ns))
    if not limits and not auto_limited:
        return None  # nothing to report: most VMs
    obj = ref("VirtualMachine", vm)
    node = vm_node(state, vm)
    if "memory" in limits:
        limit = float(limits["memory"])
        guest = guest_memory(spec) or limit  # only a limit: KubeVirt makes it the guest memory
        ratio = limit / guest if guest else 1.0
        out.samples.append(Sample(RATIO.name, (ns, name, "memory", "vm", node), ratio, obj))
        if ratio < 1:  # admitted only under the LiveUpdate rollout strategy
            out.findings.append(
                Finding(
                    SPEC.id,
                    Severity.WARNING,
                    obj,
                    f"memory limit {_gib(limit)} below {_gib(guest)} of guest memory: the pod's limit is the limit "
                    "plus KubeVirt's overhead estimate, so the kernel OOM-kills QEMU once the guest fills "
                    "its memory",
                )
            )
        elif ratio == 1:
            out.findings.append(
                Finding(
                    SPEC.id,
                    Severity.WARNING,
                    obj,
                    f"memory limit {_gib(limit)} equals the guest memory: the pod's limit leaves only KubeVirt's "
                    f"overhead estimate for QEMU and virt-launcher; an overhead above the estimate is OOM-killed",
                )
            )
        else:
            out.findings.append(
                Finding(
                    SPEC.id,
                    Severity.INFO,
                    obj,
                    f"memory limit {_gib(limit)} for {_gib(guest)} of guest memory ({ratio:.2f}x): the pod may use "
                    f"the difference plus KubeVirt's overhead estimate, no more; set only guest memory unless "
                    f"governance requires limits",
                )
            )
    if "cpu" in limits:
        limit = float(limits["cpu"])
        ratio = limit / vcpus if vcpus else 1.0
        out.samples.append(Sample(RATIO.name, (ns, name, "cpu", "vm", node), ratio, obj))
        out.findings.append(
            Finding(
                SPEC.id,
                Severity.WARNING,
                obj,
                f"CPU limit {limit:g} for {vcpus or limit:g} vCPU(s): CFS throttles the guest even when the node "
                f"has idle CPU; set requests only unless governance requires limits",
            )
        )
    if limits:
        counted = "vm"
    elif auto_limited:
        counted = "auto"
        out.samples.append(Sample(RATIO.name, (ns, name, "cpu", "auto", node), 1.0, obj))
        out.findings.append(
            Finding(
                SPEC.id,
                Severity.INFO,
                obj,
                f"namespace {ns} matches autoCPULimitNamespaceLabelSelector ({auto[1]}): KubeVirt sets a CPU "
                f"limit of {vcpus or 1:g} (one per vCPU) on the virt-launcher pod",
            )
        )
    return out.samples, out.findings, counted


SPEC = CheckSpec(
    id="strict_vm_limits",
    anti_pattern=7,
    title="Strict resource limits on VMs",
    severity_rules="warning: a hand-set memory limit at or below the guest memory (the pod keeps only KubeVirt's "
    "overhead estimate as room, or less), or a hand-set CPU limit (CFS throttling); info: a memory "
    "limit above the guest memory, or a CPU limit added by autoCPULimitNamespaceLabelSelector (HCO "
    "or KubeVirt CR). Never critical: a limit is a risk of an OOM kill under load, not a VM down. "
    "VMs with dedicated CPUs are not judged",
    families=(RATIO, COUNT),
    remediation="Remove spec.template.spec.domain.resources.limits and set only guest memory and CPU requests; "
    "where governance mandates limits, leave headroom above guest memory and annotate the VM with "
    "the exemption annotation (ov-exporter.openshift.io/exempt: strict_vm_limits).",
    alerts=(
        AlertDecl("OVVMStrictResourceLimits", warning="performance_risk", info="hygiene", names="VirtualMachine/vm"),
    ),
    panels=("ov-overview/VMs with CPU/memory limits (limit / guest)",),
    evaluate=evaluate,
    requires=("virtualmachines.kubevirt.io",),
    reads=(
        "namespaces",
        "hyperconvergeds.hco.kubevirt.io",
        "kubevirts.kubevirt.io",
        "virtualmachineinstances.kubevirt.io",
    ),
)
