"""control_plane_placement: control-plane nodes sharing a hypervisor host (anti-pattern 12)."""

from __future__ import annotations

import pytest
from ov_exporter import runner
from ov_exporter.checks import control_plane_placement as cpp
from ov_exporter.model import NotApplicable, ObjectRef, Severity, Status

from .builders import config, node, series, state

HOST = "ov-exporter.openshift.io/hypervisor-host"
COLOCATED, UNKNOWN = "ov_control_plane_node_colocated", "ov_control_plane_nodes_host_unknown"


def master(name, host=None, provider=None, label=HOST):
    obj = node(
        name,
        control_plane=True,
        schedulable=None,
        taints=[{"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"}],
        labels={label: host} if host is not None else None,
    )
    if provider is not None:
        obj["spec"]["providerID"] = provider
    return obj


def run(*objects, **overrides):
    return cpp.evaluate(state(*objects), config(**overrides))


def test_two_of_three_on_one_host_is_a_warning():
    out = run(master("m0", "esxi-01"), master("m1", "esxi-01"), master("m2", "esxi-02"), node("worker-0"))
    assert series(out, COLOCATED) == {
        ("m0", "esxi-01", "label", "true"): 2,
        ("m1", "esxi-01", "label", "true"): 2,
        ("m2", "esxi-02", "label", "false"): 1,
    }
    assert {(f.obj, f.severity) for f in out.findings} == {
        (ObjectRef("Node", "", "m0"), Severity.WARNING),
        (ObjectRef("Node", "", "m1"), Severity.WARNING),
    }
    assert "m1" in next(f.message for f in out.findings if f.obj.name == "m0")


def test_two_of_five_on_one_host_is_info():
    out = run(master("m0", "a"), master("m1", "a"), master("m2", "b"), master("m3", "c"), master("m4", "d"))
    assert {f.obj.name: f.severity for f in out.findings} == {"m0": Severity.INFO, "m1": Severity.INFO}


def test_distinct_hosts_are_clean():
    out = run(master("m0", "a"), master("m1", "b"), master("m2", "c"))
    assert out.findings == [] and series(out, UNKNOWN) == {(): 0}
    assert set(series(out, COLOCATED).values()) == {1}


def test_bare_metal_provider_id_is_its_own_host():
    out = run(*(master(f"m{i}", provider=f"baremetalhost:///openshift-machine-api/m{i}/uid") for i in range(3)))
    assert out.findings == []
    assert {k[2] for k in series(out, COLOCATED)} == {"bare-metal"}


def test_label_wins_over_bare_metal():
    out = run(master("m0", "h", provider="metal3://x"), master("m1", "h", provider="metal3://y"), master("m2", "g"))
    assert {f.obj.name for f in out.findings} == {"m0", "m1"}


def test_no_host_information_is_not_applicable():
    with pytest.raises(NotApplicable, match="hypervisor hosts are unknown"):
        run(master("m0"), master("m1", provider="vsphere://4211"), master("m2"))


def test_no_control_plane_is_not_applicable():
    with pytest.raises(NotApplicable):
        run(node("worker-0"))


def test_configured_label_and_empty_label():
    objs = [master(f"m{i}", "rack-1" if i < 2 else "rack-2", label="example.com/esxi") for i in range(3)]
    out = run(*objs, **{"control-plane-host-label": "example.com/esxi"})
    assert len(out.findings) == 2
    with pytest.raises(NotApplicable, match="none configured"):
        run(*objs, **{"control-plane-host-label": ""})
    with pytest.raises(NotApplicable):
        run(*objs)  # the default label is not set on these nodes


def test_partially_unknown_hosts_judge_the_known_ones():
    out = run(master("m0", "a"), master("m1", "a"), master("m2"))
    assert series(out, UNKNOWN) == {(): 1}
    assert {f.obj.name: f.severity for f in out.findings} == {"m0": Severity.WARNING, "m1": Severity.WARNING}


def test_registry_and_malformed_nodes():
    spec_null = master("m3", "a")
    spec_null["spec"] = None
    labels_null = master("m4")
    labels_null["metadata"]["labels"] = None  # no longer a control-plane node
    result = runner.evaluate(
        state(master("m0", "a"), master("m1", "a"), master("m2", "b"), spec_null, labels_null), config()
    ).result("control_plane_placement")
    assert result.status is Status.OK
    assert {f.obj.name for f in result.findings} == {"m0", "m1", "m3"}
