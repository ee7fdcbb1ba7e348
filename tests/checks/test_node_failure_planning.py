"""node_failure_planning: node remediation coverage, VMIs on NotReady nodes, run strategies (anti-pattern 5)."""

from __future__ import annotations

import pytest
from ov_exporter import runner
from ov_exporter.checks import node_failure_planning as nfp
from ov_exporter.model import NotApplicable, ObjectRef, Severity, Status
from ov_exporter.store import ClusterState

from .builders import _meta, config, node, record_of, series, state, vm, vmi

COVERED, UNCOVERED = "ov_node_remediation_covered", "ov_nodes_without_remediation"
NOT_READY, NO_RESTART = "ov_vmi_on_not_ready_node", "ov_vm_no_restart_after_node_failure"
MAPI = "openshift-machine-api"
WORKER_SET = {
    "machine.openshift.io/cluster-api-machine-role": "worker",
    "machine.openshift.io/cluster-api-machineset": "ocp-worker",
}


def machine(name, node_name, labels=None, namespace=MAPI, node_ref=True):
    obj = {
        "apiVersion": "machine.openshift.io/v1beta1",
        "kind": "Machine",
        "metadata": _meta(name, namespace, labels=labels if labels is not None else WORKER_SET),
        "spec": {"providerSpec": {}},
        "status": {"phase": "Running"},
    }
    if node_ref:
        obj["status"]["nodeRef"] = {"kind": "Node", "name": node_name, "uid": f"uid-{node_name}"}
    return obj


def mhc(name, selector, max_unhealthy="40%", namespace=MAPI):
    spec = {"selector": selector, "unhealthyConditions": [{"type": "Ready", "status": "False", "timeout": "300s"}]}
    if max_unhealthy is not None:
        spec["maxUnhealthy"] = max_unhealthy
    return {
        "apiVersion": "machine.openshift.io/v1beta1",
        "kind": "MachineHealthCheck",
        "metadata": _meta(name, namespace),
        "spec": spec,
    }


def nhc(name, selector, pause=None, max_unhealthy=None):
    spec = {
        "selector": selector,
        "minHealthy": "51%",
        "remediationTemplate": {
            "apiVersion": "self-node-remediation.medik8s.io/v1alpha1",
            "kind": "SelfNodeRemediationTemplate",
            "name": "self-node-remediation-automatic",
            "namespace": "openshift-workload-availability",
        },
    }
    if pause:
        spec["pauseRequests"] = pause
    if max_unhealthy is not None:
        spec["maxUnhealthy"] = max_unhealthy
    return {
        "apiVersion": "remediation.medik8s.io/v1alpha1",
        "kind": "NodeHealthCheck",
        "metadata": _meta(name),
        "spec": spec,
    }


def not_ready(name, status="Unknown", **kw):
    obj = node(name, **kw)
    obj["status"]["conditions"] = [
        {
            "type": "Ready",
            "status": status,
            "reason": "NodeStatusUnknown",
            "message": "Kubelet stopped posting node status.",
        }
    ]
    return obj


WORKER_MHC = mhc("workers", {"matchLabels": {"machine.openshift.io/cluster-api-machine-role": "worker"}})


def run(*objects, **overrides):
    return nfp.evaluate(state(*objects), config(**overrides))


def test_machine_covered_by_mhc_and_uncovered_worker():
    out = run(
        node("worker-0"),
        node("worker-1"),
        machine("m0", "worker-0"),
        machine("m1", "worker-1", labels={"machine.openshift.io/cluster-api-machineset": "other"}),
        WORKER_MHC,
    )
    assert series(out, COVERED) == {("worker-0", "machine-health-check"): 1, ("worker-1", "none"): 0}
    assert series(out, UNCOVERED) == {(): 1}
    [finding] = out.findings
    assert finding.severity is Severity.WARNING and finding.obj == ObjectRef("Node", "", "worker-1")
    assert "openshift-machine-api/m1" in finding.message


def test_termination_handler_mhc_does_not_count():
    handler = mhc("machine-api-termination-handler", {}, max_unhealthy="100%")  # {} would select every Machine
    out = run(node("worker-0"), machine("m0", "worker-0"), handler)
    assert series(out, COVERED) == {("worker-0", "none"): 0}
    assert [f.severity for f in out.findings] == [Severity.WARNING]


def test_empty_selector_matches_every_machine_missing_selector_none():
    out = run(node("worker-0"), machine("m0", "worker-0"), mhc("all", {}))
    assert series(out, COVERED) == {("worker-0", "machine-health-check"): 1}
    bad = mhc("nosel", {})
    del bad["spec"]["selector"]
    out = run(node("worker-0"), machine("m0", "worker-0"), bad)
    assert series(out, COVERED) == {("worker-0", "none"): 0}


@pytest.mark.parametrize("limit", [0, "0", "0%"])
def test_max_unhealthy_zero_never_remediates(limit):
    out = run(node("worker-0"), machine("m0", "worker-0"), mhc("workers", {}, max_unhealthy=limit))
    [finding] = out.findings
    assert "maxUnhealthy" in finding.message


def test_mhc_in_another_namespace_does_not_select():
    out = run(node("worker-0"), machine("m0", "worker-0"), mhc("workers", {}, namespace="elsewhere"))
    assert series(out, COVERED) == {("worker-0", "none"): 0}


def test_machine_found_by_node_annotation_without_node_ref():
    n = node("worker-0")
    n["metadata"]["annotations"] = {"machine.openshift.io/machine": f"{MAPI}/m0"}
    out = run(n, machine("m0", "worker-0", node_ref=False), WORKER_MHC)
    assert series(out, COVERED) == {("worker-0", "machine-health-check"): 1}
    assert out.findings == []


@pytest.mark.parametrize(
    "expr,covered",
    [
        ({"key": "machine.openshift.io/cluster-api-machineset", "operator": "In", "values": ["ocp-worker"]}, True),
        ({"key": "machine.openshift.io/cluster-api-machineset", "operator": "NotIn", "values": ["ocp-worker"]}, False),
        ({"key": "machine.openshift.io/cluster-api-machine-role", "operator": "Exists"}, True),
        ({"key": "machine.openshift.io/interruptible-instance", "operator": "Exists"}, False),
        ({"key": "machine.openshift.io/interruptible-instance", "operator": "DoesNotExist"}, True),
        ({"key": "x", "operator": "Bogus"}, False),
    ],
)
def test_match_expressions(expr, covered):
    out = run(node("worker-0"), machine("m0", "worker-0"), mhc("workers", {"matchExpressions": [expr]}))
    assert series(out, UNCOVERED) == {(): 0 if covered else 1}


def test_node_health_check_covers_nodes_by_node_labels():
    sel = {"matchExpressions": [{"key": "node-role.kubernetes.io/worker", "operator": "Exists"}]}
    out = run(node("worker-0"), node("worker-1"), machine("m0", "worker-0"), WORKER_MHC, nhc("workers", sel))
    assert series(out, COVERED) == {("worker-0", "both"): 1, ("worker-1", "node-health-check"): 1}
    assert out.findings == []


def test_paused_or_blocked_nhc_does_not_count():
    sel = {"matchLabels": {"kubevirt.io/schedulable": "true"}}
    for obj in (nhc("paused", sel, pause=["maintenance by ops"]), nhc("zero", sel, max_unhealthy=0)):
        out = run(node("worker-0"), obj)
        [finding] = out.findings
        assert finding.severity is Severity.WARNING and obj["metadata"]["name"] in finding.message


def test_no_machine_api_and_no_nhc_api_says_so():
    records = [record_of(node("worker-0")), record_of(node("worker-1"))]
    st = ClusterState.from_records(records)
    st = ClusterState(st.objects, absent={nfp.MACHINES: "not served", nfp.NHCS: "not served"})
    out = nfp.evaluate(st, config())
    assert series(out, UNCOVERED) == {(): 2}
    assert all("neither the Machine API nor the NodeHealthCheck API" in f.message for f in out.findings)


def test_node_without_machine_message():
    out = run(node("worker-0"))
    [finding] = out.findings
    assert "has no Machine" in finding.message


def test_only_vm_schedulable_nodes_are_judged():
    out = run(
        node("worker-0"),
        node("infra-0", schedulable=False),
        node("master-0", control_plane=True, schedulable=None),
        nhc("w", {}),
    )
    assert set(series(out, COVERED)) == {("worker-0", "node-health-check")}


def test_not_applicable_without_vm_schedulable_nodes():
    with pytest.raises(NotApplicable):
        run(node("infra-0", schedulable=False))


# ---------------------------------------------------------------- NotReady nodes


@pytest.mark.parametrize("status", ["False", "Unknown"])
def test_vmi_on_not_ready_node_is_critical(status):
    out = run(
        not_ready("worker-1", status),
        node("worker-0"),
        nhc("all", {}),
        vmi("db", node="worker-1"),
        vmi("web", node="worker-0"),
        vmi("done", node="worker-1", phase="Succeeded"),
    )
    assert series(out, NOT_READY) == {("vms", "db", "worker-1"): 1}
    [finding] = out.findings
    assert finding.severity is Severity.CRITICAL and finding.obj == ObjectRef("VirtualMachineInstance", "vms", "db")
    assert status in finding.message


def test_node_without_ready_condition_is_not_flagged():
    n = node("worker-0")
    n["status"]["conditions"] = []
    out = run(n, nhc("all", {}), vmi("db", node="worker-0"))
    assert series(out, NOT_READY) == {}


# ---------------------------------------------------------------- run strategies


@pytest.mark.parametrize(
    "strategy,flagged", [("Manual", True), ("Once", True), ("Always", False), ("RerunOnFailure", False)]
)
def test_run_strategy(strategy, flagged):
    out = run(node("worker-0"), nhc("all", {}), vm("db", run_strategy=strategy), vmi("db"))
    if flagged:
        assert series(out, NO_RESTART) == {("vms", "db", strategy, "worker-0"): 1}
        [finding] = out.findings
        assert finding.severity is Severity.INFO and finding.obj == ObjectRef("VirtualMachine", "vms", "db")
    else:
        assert series(out, NO_RESTART) == {} and out.findings == []


def test_deprecated_running_true_is_always_and_stopped_vms_are_skipped():
    old = vm("old", run_strategy=None)
    old["spec"]["running"] = True
    out = run(node("worker-0"), nhc("all", {}), old, vmi("old"), vm("stopped", run_strategy="Manual"))
    assert out.findings == []


# ---------------------------------------------------------------- registry, malformed objects


def test_exemption_on_the_node():
    n = node("worker-1")
    n["metadata"]["annotations"] = {"ov-exporter.openshift.io/exempt": "node_failure_planning"}
    result = runner.evaluate(state(node("worker-0"), n), config()).result("node_failure_planning")
    assert result.status is Status.OK
    assert [f.obj.name for f in result.findings] == ["worker-0"]


def _damaged():
    status_null = machine("m-null", "worker-0")
    status_null["status"] = None
    spec_null = mhc("spec-null", {})
    spec_null["spec"] = None
    sel_null = nhc("sel-null", {})
    sel_null["spec"]["selector"] = None
    values_null = mhc("values-null", {"matchExpressions": [{"key": "a", "operator": "In", "values": None}]})
    vm_spec_null = vm("spec-null")
    vm_spec_null["spec"] = None
    node_status_null = node("status-null")
    node_status_null["status"] = None
    return [status_null, spec_null, sel_null, values_null, vm_spec_null, node_status_null]


@pytest.mark.parametrize("damaged", _damaged(), ids=lambda o: f"{o['kind']}-{o['metadata']['name']}")
def test_malformed_object_never_hides_the_findings(damaged):
    out = run(node("worker-0"), not_ready("worker-1"), damaged, vmi("db", node="worker-1"))
    got = {(f.severity, f.obj.name) for f in out.findings}
    assert (Severity.CRITICAL, "db") in got and (Severity.WARNING, "worker-0") in got


def test_registry_not_applicable_reason():
    result = runner.evaluate(state(node("infra-0", schedulable=False)), config()).result("node_failure_planning")
    assert result.status is Status.NOT_APPLICABLE and "VM-schedulable" in result.error
