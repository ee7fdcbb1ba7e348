"""rhel_nodes: RHEL compute nodes in a cluster with OpenShift Virtualization (anti-pattern 11)."""

from __future__ import annotations

import pytest
from ov_exporter import runner
from ov_exporter.checks import rhel_nodes
from ov_exporter.model import NotApplicable, ObjectRef, Severity, Status

from .builders import EXEMPT, RHCOS_IMAGE, RHEL_IMAGE, UBUNTU_IMAGE, config, node, series, state, vmi

COUNT, INFO = "ov_rhel_nodes", "ov_rhel_node"


def run(*objects, **overrides):
    return rhel_nodes.evaluate(state(*objects), config(**overrides))


def rhel(name, **kw):
    return node(name, os_image=RHEL_IMAGE, os_id="rhel", **kw)


def test_schedulable_rhel_node_is_a_warning():
    out = run(node("worker-0"), rhel("rhel-0"))
    assert series(out, COUNT) == {(): 1}
    assert series(out, INFO) == {("rhel-0", RHEL_IMAGE, "true", "false"): 1}
    [finding] = out.findings
    assert finding.severity is Severity.WARNING
    assert finding.obj == ObjectRef("Node", "", "rhel-0")
    assert RHEL_IMAGE in finding.message and "VM-schedulable" in finding.message


def test_rhel_node_running_vmis_is_a_warning_even_when_not_schedulable():
    out = run(node("worker-0"), rhel("rhel-0", schedulable=False), vmi("legacy", node="rhel-0"))
    assert series(out, INFO) == {("rhel-0", RHEL_IMAGE, "false", "true"): 1}
    [finding] = out.findings
    assert finding.severity is Severity.WARNING and "runs VMIs" in finding.message


def test_finished_vmi_does_not_count_as_running():
    out = run(node("worker-0"), rhel("rhel-0", schedulable=False), vmi("old", node="rhel-0", phase="Succeeded"))
    assert series(out, INFO) == {("rhel-0", RHEL_IMAGE, "false", "false"): 1}
    assert [f.severity for f in out.findings] == [Severity.INFO]


def test_rhel_node_without_vms_is_info():
    out = run(node("worker-0"), rhel("rhel-0", schedulable=False))
    assert series(out, COUNT) == {(): 1}
    assert series(out, INFO) == {("rhel-0", RHEL_IMAGE, "false", "false"): 1}
    [finding] = out.findings
    assert finding.severity is Severity.INFO and finding.obj.name == "rhel-0"


def test_os_image_fallback_without_os_id_label():
    objects = [node("worker-0", os_id=None), node("rhel-0", os_image="Red Hat Enterprise Linux 9.4 (Plow)", os_id=None)]
    out = run(*objects)
    assert series(out, COUNT) == {(): 1}
    assert series(out, INFO) == {("rhel-0", "Red Hat Enterprise Linux 9.4 (Plow)", "true", "false"): 1}
    assert [(f.severity, f.obj.name) for f in out.findings] == [(Severity.WARNING, "rhel-0")]


def test_rhcos_image_is_not_rhel():
    out = run(node("worker-0", os_id=None, os_image=RHCOS_IMAGE), node("worker-1"))
    assert series(out, COUNT) == {(): 0}
    assert series(out, INFO) == {}
    assert out.findings == []


def test_os_id_label_wins_over_the_image():
    out = run(node("a", os_image=RHEL_IMAGE, os_id="rhcos"), node("b", os_image=RHCOS_IMAGE, os_id="rhel"))
    assert series(out, INFO) == {("b", RHCOS_IMAGE, "true", "false"): 1}


def test_rhel_label_without_image_names_the_label():
    bare = rhel("rhel-0")
    bare["status"]["nodeInfo"] = None
    out = run(node("worker-0"), bare)
    assert series(out, INFO) == {("rhel-0", "", "true", "false"): 1}
    [finding] = out.findings
    assert "os_id=rhel" in finding.message


def test_several_rhel_nodes():
    out = run(
        node("worker-0"),
        rhel("rhel-b"),
        rhel("rhel-a", schedulable=False),
        rhel("rhel-c", schedulable=False),
        vmi("x", node="rhel-c"),
    )
    assert series(out, COUNT) == {(): 3}
    assert {f.obj.name: f.severity for f in out.findings} == {
        "rhel-a": Severity.INFO,
        "rhel-b": Severity.WARNING,
        "rhel-c": Severity.WARNING,
    }
    assert [s.labels[0] for s in out.samples if s.family == INFO] == ["rhel-a", "rhel-b", "rhel-c"]


def test_dump_without_schedulable_labels_treats_untainted_workers_as_schedulable():
    out = run(
        node("worker-0", schedulable=None),
        rhel("rhel-0", schedulable=None),
        rhel("rhel-infra", schedulable=None, taints=[{"key": "infra", "effect": "NoSchedule"}]),
    )
    assert {f.obj.name: f.severity for f in out.findings} == {"rhel-0": Severity.WARNING, "rhel-infra": Severity.INFO}


# ---------------------------------------------------------------- not an OpenShift cluster


def ubuntu(name):
    return node(name, os_image=UBUNTU_IMAGE, os_id=None)


def test_not_applicable_without_any_openshift_node():
    with pytest.raises(NotApplicable):
        run(ubuntu("k8s-0"), ubuntu("k8s-1"))


def test_registry_reports_not_applicable_on_a_non_openshift_cluster():
    evaluation = runner.evaluate(state(ubuntu("k8s-0"), ubuntu("k8s-1"), vmi("a", node="k8s-0")), config())
    result = evaluation.result("rhel_nodes")
    assert result.status is Status.NOT_APPLICABLE
    assert "OpenShift" in result.error
    assert result.findings == [] and result.samples == []
    assert evaluation.result("cpu_overcommit").status is Status.OK


def test_one_openshift_node_makes_it_applicable():
    out = run(ubuntu("k8s-0"), node("worker-0"))
    assert series(out, COUNT) == {(): 0}
    assert out.findings == []


# ---------------------------------------------------------------- registry, malformed objects


def test_exemption_on_the_node():
    objects = [node("worker-0"), rhel("rhel-0", labels={}), rhel("rhel-1")]
    objects[1]["metadata"]["annotations"] = {EXEMPT: "rhel_nodes"}
    result = runner.evaluate(state(*objects), config()).result("rhel_nodes")
    assert [f.obj.name for f in result.findings] == ["rhel-1"]
    assert {s.labels[0] for s in result.samples if s.family == INFO} == {"rhel-1"}
    assert [s.value for s in result.samples if s.family == COUNT] == [2]  # the bounded count keeps every node


def _damaged():
    status_null = node("status-null")
    status_null["status"] = None
    info_null = node("info-null")
    info_null["status"]["nodeInfo"] = None
    labels_null = node("labels-null", os_id=None)
    labels_null["metadata"]["labels"] = None
    empty_os_id = node("empty-os-id", os_id="")
    bogus_os_id = node("bogus-os-id", os_id="windows")
    vmi_status_null = vmi("status-null")
    vmi_status_null["status"] = None
    return [status_null, info_null, labels_null, empty_os_id, bogus_os_id, vmi_status_null]


@pytest.mark.parametrize("damaged", _damaged(), ids=lambda o: f"{o['kind']}-{o['metadata']['name']}")
def test_malformed_object_never_raises_nor_hides_the_rhel_node(damaged):
    out = run(node("worker-0"), damaged, rhel("rhel-0"))
    assert [(f.severity, f.obj.name) for f in out.findings if f.obj.name == "rhel-0"] == [(Severity.WARNING, "rhel-0")]


def test_all_malformed_together():
    out = run(node("worker-0"), *_damaged(), rhel("rhel-0"))
    assert {f.obj.name for f in out.findings} >= {"rhel-0"}
