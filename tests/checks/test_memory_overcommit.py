"""memory_overcommit: guest memory of running VMIs over node memory (anti-pattern 6)."""

from __future__ import annotations

import msgspec
import pytest
from ov_exporter.checks import memory_overcommit
from ov_exporter.model import ObjectRef, Severity

from .builders import GI, config, hco, kubevirt_cr, node, series, state, vmi

CLUSTER = ObjectRef("Cluster", "", "cluster")


def run(*objects, **overrides):
    return memory_overcommit.evaluate(state(*objects), config(**overrides))


def node_findings(out):
    return {f.obj.name: f.severity for f in out.findings if f.obj.kind == "Node"}


def test_guest_memory_prefers_memory_guest_over_the_request():
    objects = [
        node("worker-0", memory="100Gi"),
        vmi("guest", memory="4Gi", guest="8Gi"),  # 8
        vmi("request", memory="16Gi"),  # 16
        vmi("scheduled", phase="Scheduled", memory="6Gi"),  # 6
        vmi("pending", phase="Pending", memory="64Gi"),  # not running
        vmi("done", phase="Succeeded", memory="64Gi"),  # not running
        vmi("unplaced", node=None, memory="64Gi"),
    ]
    out = run(*objects)
    assert series(out, "ov_node_vm_guest_memory_bytes") == {("worker-0",): 30 * GI}
    assert series(out, "ov_node_memory_capacity_bytes") == {("worker-0",): 100 * GI}
    assert series(out, "ov_memory_overcommit_ratio") == {("worker-0",): pytest.approx(0.3)}
    assert series(out, "ov_cluster_memory_overcommit_ratio") == {(): pytest.approx(0.3)}
    assert out.findings == []


def test_live_guest_memory_from_status_wins():
    ballooned = vmi("hot", memory="4Gi", guest="8Gi")
    ballooned["status"]["memory"] = {"guestAtBoot": "8Gi", "guestCurrent": "12Gi", "guestRequested": "12Gi"}
    out = run(node("worker-0", memory="100Gi"), ballooned)
    assert series(out, "ov_node_vm_guest_memory_bytes") == {("worker-0",): 12 * GI}


@pytest.mark.parametrize(
    ("guest_gi", "expected"),
    [
        (80, None),
        (90, None),  # 0.9 is not above 0.9
        (91, Severity.INFO),
        (100, Severity.INFO),  # 1.0 is not above 1.0
        (101, Severity.WARNING),
        (150, Severity.WARNING),
    ],
)
def test_severity_thresholds(guest_gi, expected):
    out = run(node("worker-0", memory="100Gi"), vmi("big", memory=f"{guest_gi}Gi"))
    assert node_findings(out).get("worker-0") == expected
    assert series(out, "ov_memory_overcommit_ratio") == {("worker-0",): pytest.approx(guest_gi / 100)}
    cluster = [f.severity for f in out.findings if f.obj == CLUSTER]
    assert cluster == ([expected] if expected else [])


def test_finding_message_names_the_memory_and_ratio():
    out = run(node("worker-0", memory="64Gi"), vmi("a", memory="40Gi"), vmi("b", memory="20Gi"))
    [finding] = [f for f in out.findings if f.obj.kind == "Node"]
    assert finding.obj == ObjectRef("Node", "", "worker-0")
    assert finding.severity is Severity.INFO
    assert "60.0 GiB of guest memory on 64.0 GiB" in finding.message
    assert "ratio 0.94" in finding.message


def test_configured_thresholds():
    out = run(
        node("worker-0", memory="100Gi"),
        vmi("a", memory="75Gi"),
        **{"thresholds.memory-overcommit-max": 0.7, "thresholds.memory-overcommit-critical": 0.8},
    )
    assert node_findings(out) == {"worker-0": Severity.INFO}
    assert series(out, "ov_memory_overcommit_threshold_ratio") == {("warning",): 0.7, ("critical",): 0.8}


def test_default_threshold_series():
    assert series(run(), "ov_memory_overcommit_threshold_ratio") == {("warning",): 0.9, ("critical",): 1.0}


def test_every_schedulable_node_gets_series_and_cluster_ratio_uses_schedulable_capacity():
    objects = [
        node("worker-0", memory="100Gi"),
        node("worker-1", memory="100Gi"),
        node("infra-0", memory="100Gi", schedulable=False),
        node("cordoned", memory="100Gi", schedulable=False),
        vmi("a", node="worker-0", memory="50Gi"),
        vmi("b", node="cordoned", memory="150Gi"),
    ]
    out = run(*objects)
    assert series(out, "ov_memory_overcommit_ratio") == {("worker-0",): 0.5, ("worker-1",): 0.0, ("cordoned",): 1.5}
    assert node_findings(out) == {"cordoned": Severity.WARNING}
    # 200 GiB of guests over the 200 GiB of the two schedulable nodes.
    assert series(out, "ov_cluster_memory_overcommit_ratio") == {(): 1.0}


def test_vmis_without_memory_are_counted_in_an_info_finding():
    no_memory = vmi("bare", memory=None)
    out = run(node("worker-0", memory="100Gi"), no_memory, vmi("a", memory="10Gi"))
    assert series(out, "ov_node_vm_guest_memory_bytes") == {("worker-0",): 10 * GI}
    info = [f for f in out.findings if f.severity is Severity.INFO]
    assert [f.obj for f in info] == [CLUSTER]
    assert info[0].message.startswith("1 running VMI(s)")


def test_node_without_memory_capacity_is_an_info_finding():
    broken = node("worker-1")
    del broken["status"]["capacity"]["memory"]
    out = run(node("worker-0", memory="100Gi"), broken)
    assert ("worker-1",) not in series(out, "ov_memory_overcommit_ratio")
    assert [(f.severity, f.obj.name) for f in out.findings] == [(Severity.INFO, "worker-1")]


# ---------------------------------------------------------------- memoryOvercommitPercentage


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        ([], ("default", 100)),
        ([hco("v1beta1", memory_pct=150)], ("hco", 150)),
        ([hco("v1", memory_pct=120)], ("hco", 120)),
        ([kubevirt_cr(memory_overcommit=130)], ("kubevirt", 130)),
        ([hco("v1beta1", memory_pct=110), kubevirt_cr(memory_overcommit=130)], ("hco", 110)),
        ([hco("v1"), kubevirt_cr(memory_overcommit=130)], ("kubevirt", 130)),
    ],
    ids=["default", "hco-v1beta1", "hco-v1", "kubevirt", "hco-first", "hco-unset"],
)
def test_overcommit_percentage_and_its_source(objects, expected):
    out = run(node("worker-0"), *objects)
    source, value = expected
    assert series(out, "ov_memory_overcommit_percentage") == {(source,): value}


# ---------------------------------------------------------------- malformed objects


def _damaged():
    spec_null = vmi("spec-null")
    spec_null["spec"] = None
    status_null = vmi("status-null")
    status_null["status"] = None
    domain_null = vmi("domain-null")
    domain_null["spec"]["domain"] = None
    memory_null = vmi("memory-null")
    memory_null["spec"]["domain"]["memory"] = None
    requests_null = vmi("requests-null")
    requests_null["spec"]["domain"]["resources"]["requests"] = None
    numeric = vmi("numeric", memory=None)
    numeric["spec"]["domain"]["resources"]["requests"]["memory"] = 1073741824
    zero_guest = vmi("zero-guest", memory=None, guest="0")
    status_memory_null = vmi("status-memory-null")
    status_memory_null["status"]["memory"] = None
    capacity_null = node("capacity-null")
    capacity_null["status"]["capacity"] = None
    zero = node("zero", memory="0")
    negative = node("negative", memory="-1Gi")
    status_null_node = node("status-null-node")
    status_null_node["status"] = None
    return [
        spec_null,
        status_null,
        domain_null,
        memory_null,
        requests_null,
        numeric,
        zero_guest,
        status_memory_null,
        capacity_null,
        zero,
        negative,
        status_null_node,
    ]


def good():
    return [node("good", memory="64Gi"), vmi("good-load", node="good", memory="80Gi")]


@pytest.mark.parametrize("damaged", _damaged(), ids=lambda o: f"{o['kind']}-{o['metadata']['name']}")
def test_malformed_object_never_raises_nor_hides_the_good_node(damaged):
    # lenient: as loaded, a bad field (a negative quantity) is dropped and the object kept
    out = memory_overcommit.evaluate(state(damaged, *good(), lenient=True), config())
    assert node_findings(out)["good"] is Severity.WARNING
    assert series(out, "ov_memory_overcommit_ratio")[("good",)] == 1.25


def test_all_malformed_together_and_broken_settings():
    broken_hco = hco("v1")
    broken_hco["spec"]["virtualization"]["higherWorkloadDensity"] = None
    broken_kv = kubevirt_cr()
    broken_kv["spec"] = None
    out = memory_overcommit.evaluate(state(*_damaged(), broken_hco, broken_kv, *good(), lenient=True), config())
    assert node_findings(out)["good"] is Severity.WARNING
    assert series(out, "ov_memory_overcommit_percentage") == {("default",): 100}


def test_infinite_memory_is_rejected_with_its_field():
    with pytest.raises(msgspec.ValidationError, match="out of range - at `\\$.spec.domain"):
        state(vmi("huge", node="other", memory="1e400"))
    with pytest.raises(msgspec.ValidationError, match="out of range - at `\\$.status.capacity"):
        state(node("other", memory="1e400"))
    out = run(vmi("huge", node="other", memory="1e300"), node("other", memory="1e300"), *good())
    assert node_findings(out)["good"] is Severity.WARNING


def test_above_the_critical_threshold_is_a_warning_naming_that_threshold():
    out = run(node("worker-0", memory="100Gi"), vmi("big", memory="150Gi"))
    [finding] = [f for f in out.findings if f.obj.kind == "Node"]
    assert finding.severity is Severity.WARNING
    assert "above 1" in finding.message and "above 0.9" not in finding.message
