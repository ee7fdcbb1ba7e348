"""strict_vm_limits: CPU and memory limits on VMs, hand-set or added by
autoCPULimitNamespaceLabelSelector (anti-pattern 7)."""

from __future__ import annotations

import msgspec
import pytest
from ov_exporter import runner
from ov_exporter.checks import strict_vm_limits
from ov_exporter.model import ObjectRef, Severity, Status

from .builders import EXEMPT, GI, NS, config, deep, hco, kubevirt_cr, namespace, record_of, series, state, vm, vmi

RATIO, COUNT = "ov_vm_resource_limit_ratio", "ov_vms_with_resource_limits"


def limited(name="db", limits=None, guest=None, dedicated=False, **kw) -> dict:
    """A VM (2 vCPUs, 4Gi memory request) with limits and optionally domain.memory.guest."""
    obj = deep(vm(name, **kw))
    domain = obj["spec"]["template"]["spec"]["domain"]
    if limits is not None:
        domain["resources"]["limits"] = dict(limits)
    if guest is not None:
        domain["memory"] = {"guest": guest}
    if dedicated:
        domain["cpu"]["dedicatedCpuPlacement"] = True
    return obj


def run(*objects, **overrides):
    return strict_vm_limits.evaluate(state(*objects), config(**overrides))


def vm_ref(name, ns=NS):
    return ObjectRef("VirtualMachine", ns, name)


def by_resource(out) -> dict[str, Severity]:
    return {("memory" if "memory limit" in f.message else "cpu"): f.severity for f in out.findings}


# ---------------------------------------------------------------- hand-set limits


def test_the_classic_example_memory_limit_equal_to_guest_and_cpu_limit_are_warnings_never_critical():
    """KubeVirt adds its overhead estimate to the limit (renderresources.go WithMemoryOverhead,
    v1.3.0 and v1.9.0): a limit equal to the guest memory leaves only that estimate as room."""
    out = run(limited(limits={"cpu": "4", "memory": "16Gi"}, guest="16Gi", cores=4))
    assert series(out, RATIO) == {(NS, "db", "memory", "vm", ""): 1.0, (NS, "db", "cpu", "vm", ""): 1.0}
    assert by_resource(out) == {"memory": Severity.WARNING, "cpu": Severity.WARNING}
    [memory] = [f for f in out.findings if "memory limit" in f.message]
    assert "memory limit 16 GiB equals the guest memory" in memory.message
    assert "overhead estimate" in memory.message and "OOM" in memory.message
    assert [f for f in out.findings if f.message.startswith("CPU limit 4 for 4 vCPU(s)")]
    assert {f.obj for f in out.findings} == {vm_ref("db")}
    assert series(out, COUNT) == {("vm",): 1, ("auto",): 0}


def test_memory_limit_below_guest_is_a_warning_and_above_is_info():
    below = run(limited(limits={"memory": "3Gi"}, guest="4Gi"))  # admitted only under LiveUpdate
    assert by_resource(below) == {"memory": Severity.WARNING}
    assert "below 4 GiB of guest memory" in below.findings[0].message
    assert series(below, RATIO) == {(NS, "db", "memory", "vm", ""): 0.75}
    above = run(limited(limits={"memory": "5Gi"}))  # guest memory from the 4Gi request
    assert by_resource(above) == {"memory": Severity.INFO}
    assert series(above, RATIO) == {(NS, "db", "memory", "vm", ""): 1.25}
    assert "(1.25x)" in above.findings[0].message


def test_a_memory_limit_alone_becomes_the_guest_memory():
    obj = limited(limits={"memory": "8Gi"}, memory=None)
    out = run(obj)
    assert by_resource(out) == {"memory": Severity.WARNING}
    assert series(out, RATIO) == {(NS, "db", "memory", "vm", ""): 1.0}


def test_cpu_limit_ratio_is_per_vcpu():
    out = run(limited(limits={"cpu": "1500m"}, sockets=2, cores=2))
    assert series(out, RATIO) == {(NS, "db", "cpu", "vm", ""): 0.375}
    assert by_resource(out) == {"cpu": Severity.WARNING}
    assert "CPU limit 1.5 for 4 vCPU(s)" in out.findings[0].message


def test_series_carry_the_node_of_the_running_vmi():
    out = run(limited(limits={"cpu": "2"}), vmi("db", node="worker-4"))
    assert series(out, RATIO) == {(NS, "db", "cpu", "vm", "worker-4"): 1.0}


def test_dedicated_cpus_are_not_judged():
    out = run(limited(limits={"cpu": "2", "memory": "4Gi"}, dedicated=True))
    assert out.findings == [] and series(out, RATIO) == {}


def test_other_resources_and_requests_alone_are_no_limits():
    out = run(limited(limits={"devices.kubevirt.io/kvm": "1"}), vm("plain"))
    assert out.findings == [] and series(out, COUNT) == {("vm",): 0, ("auto",): 0}


def test_a_bad_limit_quantity_names_the_field():
    with pytest.raises(msgspec.ValidationError, match=r"resources\.limits"):
        record_of(limited(limits={"memory": "lots"}))


# ---------------------------------------------------------------- autoCPULimitNamespaceLabelSelector


CI = {"matchLabels": {"workload-class": "ci"}}


def hco_with_selector(version: str, selector: dict) -> dict:
    obj = hco(version)
    if version == "v1beta1":
        obj["spec"]["resourceRequirements"] = {
            "vmiCPUAllocationRatio": 10,
            "autoCPULimitNamespaceLabelSelector": selector,
        }
    else:
        obj["spec"]["virtualization"]["autoCPULimitNamespaceLabelSelector"] = selector
    return obj


def kubevirt_with_selector(selector: dict) -> dict:
    obj = kubevirt_cr()
    obj["spec"]["configuration"]["autoCPULimitNamespaceLabelSelector"] = selector
    return obj


@pytest.mark.parametrize(
    ("source_obj", "source"),
    [
        (hco_with_selector("v1beta1", CI), "hco"),
        (hco_with_selector("v1", CI), "hco"),
        (kubevirt_with_selector(CI), "kubevirt"),
    ],
)
def test_namespaces_selected_for_automatic_cpu_limits_are_info(source_obj, source):
    out = run(
        source_obj,
        namespace("ci", labels={"workload-class": "ci"}),
        namespace("prod"),
        vm("agent", "ci", cores=4),
        vm("db", "prod"),
    )
    [finding] = out.findings
    assert finding.severity is Severity.INFO and finding.obj == vm_ref("agent", "ci")
    assert f"autoCPULimitNamespaceLabelSelector ({source})" in finding.message and "CPU limit of 4" in finding.message
    assert series(out, RATIO) == {("ci", "agent", "cpu", "auto", ""): 1.0}
    assert series(out, COUNT) == {("vm",): 0, ("auto",): 1}


def test_hco_wins_over_the_kubevirt_cr():
    out = run(
        hco_with_selector("v1beta1", {"matchLabels": {"team": "a"}}),
        kubevirt_with_selector(CI),
        namespace("ci", labels={"workload-class": "ci"}),
        vm("agent", "ci"),
    )
    assert out.findings == []


def test_a_hand_set_cpu_limit_in_a_selected_namespace_stays_a_warning():
    out = run(
        hco_with_selector("v1beta1", CI),
        namespace("ci", labels={"workload-class": "ci"}),
        limited("agent", limits={"cpu": "2"}, namespace="ci"),
    )
    assert [f.severity for f in out.findings] == [Severity.WARNING]
    assert series(out, RATIO) == {("ci", "agent", "cpu", "vm", ""): 1.0}


@pytest.mark.parametrize(
    ("selector", "labels", "selected"),
    [
        ({}, {}, True),  # an empty selector selects every namespace
        ({"matchExpressions": [{"key": "env", "operator": "In", "values": ["dev", "ci"]}]}, {"env": "ci"}, True),
        ({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}, {"env": "prod"}, False),
        ({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}, {}, True),
        ({"matchExpressions": [{"key": "limits", "operator": "Exists"}]}, {"limits": ""}, True),
        ({"matchExpressions": [{"key": "limits", "operator": "DoesNotExist"}]}, {"limits": ""}, False),
        (
            {"matchLabels": {"env": "ci"}, "matchExpressions": [{"key": "team", "operator": "Exists"}]},
            {"env": "ci"},
            False,
        ),
    ],
)
def test_label_selector_semantics(selector, labels, selected):
    out = run(hco_with_selector("v1beta1", selector), namespace("apps", labels=labels), vm("agent", "apps"))
    assert bool(out.findings) is selected


def test_without_a_selector_there_is_nothing_automatic():
    out = run(hco("v1beta1", cpu_ratio=10), namespace("ci", labels={"workload-class": "ci"}), vm("agent", "ci"))
    assert out.findings == [] and series(out, COUNT) == {("vm",): 0, ("auto",): 0}


# ---------------------------------------------------------------- registry


def test_exemption_annotation_accepts_governance_mandated_limits():
    objects = [
        limited("sap", limits={"cpu": "8", "memory": "72Gi"}, guest="64Gi", annotations={EXEMPT: "strict_vm_limits"}),
        limited("redis", limits={"memory": "4Gi"}),
    ]
    result = runner.evaluate(state(*objects), config()).result("strict_vm_limits")
    assert result.status is Status.OK
    assert [(f.obj.name, f.severity) for f in result.findings] == [("redis", Severity.WARNING)]
    assert {s.labels for s in result.samples if s.obj is not None} == {(NS, "redis", "memory", "vm", "")}
    assert result.exempted == 2


def test_guest_memory_in_gib_is_reported():
    out = run(limited(limits={"memory": f"{6 * GI}"}, guest="4Gi"))
    assert "memory limit 6 GiB for 4 GiB of guest memory (1.50x)" in out.findings[0].message
