"""control_plane_vm_workloads: VMs on control-plane nodes (anti-pattern 13)."""

from __future__ import annotations

import pytest
from ov_exporter import runner
from ov_exporter.checks import control_plane_vm_workloads as cpw
from ov_exporter.model import NotApplicable, ObjectRef, Severity, Status

from .builders import config, node, series, state, vmi

VMIS = "ov_control_plane_node_vmis"
TAINT = [{"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"}]


def master(name, schedulable=None, taints=TAINT):
    return node(name, control_plane=True, schedulable=schedulable, taints=taints)


def run(*objects):
    return cpw.evaluate(state(*objects), config())


def test_vmis_on_a_master_are_a_warning_schedulable_master_info():
    out = run(
        master("m0", schedulable=True, taints=None),
        master("m1", schedulable=True, taints=None),
        master("m2"),
        node("worker-0"),
        vmi("a", node="m0"),
        vmi("b", node="m0"),
        vmi("c", node="worker-0"),
        vmi("old", node="m2", phase="Succeeded"),
    )
    assert series(out, VMIS) == {("m0", "true"): 2, ("m1", "true"): 0, ("m2", "false"): 0}
    assert {(f.obj, f.severity) for f in out.findings} == {
        (ObjectRef("Node", "", "m0"), Severity.WARNING),
        (ObjectRef("Node", "", "m1"), Severity.INFO),
    }


def test_taint_or_missing_label_keeps_a_master_clean():
    out = run(
        master("m0", schedulable=True),
        master("m1", schedulable=False, taints=None),
        master(
            "m2", schedulable=True, taints=[{"key": "node-role.kubernetes.io/control-plane", "effect": "NoExecute"}]
        ),
        node("worker-0"),
    )
    assert out.findings == []
    assert set(series(out, VMIS)) == {("m0", "false"), ("m1", "false"), ("m2", "false")}


def test_vmi_on_a_tainted_master_is_still_a_warning():
    out = run(master("m0"), node("worker-0"), vmi("tolerating", node="m0"))
    assert [(f.obj.name, f.severity) for f in out.findings] == [("m0", Severity.WARNING)]


def test_compact_and_hosted_clusters_are_not_applicable():
    with pytest.raises(NotApplicable, match="compact"):
        run(master("m0", schedulable=True, taints=None), master("m1", schedulable=True, taints=None))
    with pytest.raises(NotApplicable, match="control-plane"):
        run(node("worker-0"))


def test_registry_with_malformed_objects():
    spec_null = master("m1")
    spec_null["spec"] = None
    spec_null["metadata"]["labels"]["kubevirt.io/schedulable"] = "true"
    status_null = vmi("s", node="m0")
    status_null["status"] = None
    result = runner.evaluate(
        state(master("m0"), spec_null, node("worker-0"), status_null, vmi("x", node="m0")), config()
    ).result("control_plane_vm_workloads")
    assert result.status is Status.OK
    assert {(f.obj.name, f.severity) for f in result.findings} == {("m0", Severity.WARNING), ("m1", Severity.INFO)}
