"""cpu_overcommit: vCPUs of running VMIs over physical cores (anti-pattern 6)."""

from __future__ import annotations

import msgspec
import pytest
from ov_exporter import runner
from ov_exporter.checks import cpu_overcommit
from ov_exporter.model import ObjectRef, Severity, Status

from .builders import config, hco, kubevirt_cr, node, series, state, vmi

CLUSTER = ObjectRef("Cluster", "", "cluster")


def run(*objects, **overrides):
    return cpu_overcommit.evaluate(state(*objects), config(**overrides))


def node_findings(out):
    """node name -> severity, for findings about nodes."""
    return {f.obj.name: f.severity for f in out.findings if f.obj.kind == "Node"}


def non_info(out):
    return [f for f in out.findings if f.severity is not Severity.INFO]


# ---------------------------------------------------------------- counting vCPUs


def test_vcpus_are_sockets_cores_threads_of_active_non_dedicated_vmis():
    objects = [
        node("worker-0", cpu="32", smt=True),  # 16 physical cores
        vmi("a", sockets=2, cores=2, threads=1),  # 4
        vmi("b", sockets=None, cores=4, threads=None),  # 4
        vmi("pinned", cores=8, dedicated=True),  # excluded
        vmi("starting", phase="Scheduled", cores=2),  # 2
        vmi("pending", phase="Pending", cores=16),  # excluded
        vmi("done", phase="Succeeded", cores=16),  # excluded
        vmi("failed", phase="Failed", cores=16),  # excluded
        vmi("unplaced", node=None, cores=16),  # excluded: no nodeName
        vmi("tiny", cores=None),  # nothing set: 1
        vmi("requested", cores=None, requests_cpu="2500m"),  # no topology: request rounded up = 3
        vmi("threads", sockets=1, cores=1, threads=4),  # 4
    ]
    out = run(*objects)
    assert series(out, "ov_node_vm_vcpus") == {("worker-0",): 18}
    assert series(out, "ov_node_physical_cpu_cores") == {("worker-0",): 16}
    assert series(out, "ov_node_cpu_threads_per_core") == {("worker-0", "nfd"): 2}
    assert series(out, "ov_cpu_overcommit_ratio") == {("worker-0",): pytest.approx(18 / 16)}
    assert series(out, "ov_cluster_cpu_overcommit_ratio") == {(): pytest.approx(18 / 16)}
    assert non_info(out) == []


def test_current_cpu_topology_in_status_wins_over_the_spec():
    hotplugged = vmi("hot", cores=2)
    hotplugged["status"]["currentCPUTopology"] = {"sockets": 6, "cores": 1, "threads": 1}
    out = run(node("worker-0", cpu="16", smt=False), hotplugged)
    assert series(out, "ov_node_vm_vcpus") == {("worker-0",): 6}


# ---------------------------------------------------------------- thresholds


def overloaded(vcpus, cores=4, **node_kw):
    """A node of `cores` physical cores (SMT on) running `vcpus` vCPUs."""
    return [node("worker-0", cpu=str(cores * 2), smt=True, **node_kw), vmi("load", cores=vcpus)]


def test_above_max_is_a_warning_with_a_message_naming_the_numbers():
    out = run(*overloaded(8))  # 8 / 4 = 2.0
    assert series(out, "ov_cpu_overcommit_ratio") == {("worker-0",): 2.0}
    found = [f for f in out.findings if f.obj == ObjectRef("Node", "", "worker-0")]
    assert [f.severity for f in found] == [Severity.WARNING]
    msg = found[0].message
    assert "8 vCPUs on 4 physical cores" in msg and "2 threads/core from nfd" in msg
    assert "ratio 2.00 above 1.8" in msg
    # The cluster (one node) is just as overloaded.
    assert [f.severity for f in non_info(out) if f.obj == CLUSTER] == [Severity.WARNING]


@pytest.mark.parametrize(
    ("vcpus", "cores", "profile", "expected"),
    [
        (18, 10, "production", Severity.INFO),  # 1.8 is not above the max
        (19, 10, "production", Severity.WARNING),
        (14, 10, "production", Severity.INFO),  # 1.4 above 1.2
        (14, 10, "dev-test", None),  # 1.4 within dev-test 1.5
        (15, 10, "dev-test", None),  # 1.5 is not above 1.5
        (16, 10, "dev-test", Severity.INFO),
        (19, 10, "dev-test", Severity.WARNING),
        (12, 10, "production", None),  # 1.2 is not above 1.2
        (10, 10, "production", None),
    ],
)
def test_severity_by_profile(vcpus, cores, profile, expected):
    out = run(*overloaded(vcpus, cores), profile=profile)
    assert node_findings(out).get("worker-0") == expected


def test_configured_thresholds_and_their_series():
    out = run(*overloaded(6), **{"thresholds.cpu-overcommit-target": 1.0, "thresholds.cpu-overcommit-max": 1.4})
    assert node_findings(out) == {"worker-0": Severity.WARNING}
    assert series(out, "ov_cpu_overcommit_threshold_ratio") == {("target",): 1.0, ("max",): 1.4}


def test_threshold_series_follow_the_profile():
    assert series(run(), "ov_cpu_overcommit_threshold_ratio") == {("target",): 1.2, ("max",): 1.8}
    assert series(run(profile="dev-test"), "ov_cpu_overcommit_threshold_ratio") == {("target",): 1.5, ("max",): 1.8}


# ---------------------------------------------------------------- threads per core


def test_threads_per_core_from_nfd_false():
    out = run(node("worker-0", cpu="8", smt=False), vmi("a", cores=8))
    assert series(out, "ov_node_physical_cpu_cores") == {("worker-0",): 8}
    assert series(out, "ov_node_cpu_threads_per_core") == {("worker-0", "nfd"): 1}
    assert series(out, "ov_cpu_overcommit_ratio") == {("worker-0",): 1.0}


def test_threads_per_core_assumed_without_nfd_label_or_config_caps_the_finding_at_info():
    out = run(node("worker-0", cpu="8"), vmi("a", cores=8))
    assert series(out, "ov_node_cpu_threads_per_core") == {("worker-0", "assumed"): 2}
    assert series(out, "ov_cpu_overcommit_ratio") == {("worker-0",): 2.0}  # above the max, but on a guess
    [finding] = [f for f in out.findings if f.obj.kind == "Node"]
    assert finding.severity is Severity.INFO
    assert "2 threads/core from assumed" in finding.message and "set threads-per-core" in finding.message
    # The cluster ratio rests on the same guess.
    assert [f.severity for f in out.findings if f.obj == CLUSTER] == [Severity.INFO]


def test_threads_per_core_from_config_without_nfd_label():
    out = run(node("worker-0", cpu="8"), vmi("a", cores=8), **{"threads-per-core": 2})
    assert series(out, "ov_node_cpu_threads_per_core") == {("worker-0", "config"): 2}
    assert node_findings(out) == {"worker-0": Severity.WARNING}
    out = run(node("worker-0", cpu="8"), vmi("a", cores=8), **{"threads-per-core": 1})
    assert series(out, "ov_node_cpu_threads_per_core") == {("worker-0", "config"): 1}
    assert series(out, "ov_cpu_overcommit_ratio") == {("worker-0",): 1.0}
    assert node_findings(out) == {}


def test_nfd_label_beats_config():
    out = run(node("worker-0", cpu="8", smt=True), vmi("a", cores=4), **{"threads-per-core": 1})
    assert series(out, "ov_node_cpu_threads_per_core") == {("worker-0", "nfd"): 2}
    assert series(out, "ov_node_physical_cpu_cores") == {("worker-0",): 4}


# ---------------------------------------------------------------- which nodes, cluster ratio


def test_every_schedulable_node_gets_series_even_without_vmis():
    objects = [
        node("worker-0", cpu="16", smt=True),
        node("worker-1", cpu="16", smt=True),
        node("infra-0", cpu="16", smt=True, schedulable=False),
        node("master-0", cpu="16", control_plane=True, schedulable=None),
        vmi("a", cores=4),
    ]
    out = run(*objects)
    assert series(out, "ov_cpu_overcommit_ratio") == {("worker-0",): 0.5, ("worker-1",): 0.0}
    assert series(out, "ov_node_vm_vcpus") == {("worker-0",): 4, ("worker-1",): 0}
    assert series(out, "ov_cluster_cpu_overcommit_ratio") == {(): 4 / 16}


def test_unschedulable_node_running_vmis_gets_series_but_no_cluster_capacity():
    objects = [
        node("worker-0", cpu="8", smt=True),
        node("cordoned", cpu="8", smt=True, schedulable=False),
        vmi("a", node="worker-0", cores=2),
        vmi("b", node="cordoned", cores=6),
    ]
    out = run(*objects)
    assert series(out, "ov_cpu_overcommit_ratio") == {("worker-0",): 0.5, ("cordoned",): 1.5}
    assert node_findings(out) == {"cordoned": Severity.INFO}
    # 8 vCPUs over the 4 cores of the one schedulable node.
    assert series(out, "ov_cluster_cpu_overcommit_ratio") == {(): 2.0}
    cluster = [f for f in non_info(out) if f.obj == CLUSTER]
    assert [f.severity for f in cluster] == [Severity.WARNING]
    assert "8 vCPUs on 4 physical cores" in cluster[0].message


def test_cluster_ratio_over_all_schedulable_nodes():
    objects = [node(f"worker-{i}", cpu="16", smt=True) for i in range(3)]
    objects += [vmi(f"vm-{i}", node="worker-0", cores=8) for i in range(3)]  # 24 on 8 cores: 3.0
    out = run(*objects)
    assert series(out, "ov_cpu_overcommit_ratio")[("worker-0",)] == 3.0
    assert series(out, "ov_cluster_cpu_overcommit_ratio") == {(): 1.0}
    assert node_findings(out) == {"worker-0": Severity.WARNING}
    assert [f for f in non_info(out) if f.obj == CLUSTER] == []


def test_dump_without_schedulable_labels_falls_back_to_workers_without_taints():
    objects = [
        node("worker-0", cpu="8", smt=True, schedulable=None),
        node(
            "tainted",
            cpu="8",
            smt=True,
            schedulable=None,
            taints=[{"key": "dedicated", "value": "infra", "effect": "NoSchedule"}],
        ),
        node("master-0", cpu="8", smt=True, schedulable=None, control_plane=True),
        vmi("a", cores=2),
    ]
    out = run(*objects)
    assert series(out, "ov_cpu_overcommit_ratio") == {("worker-0",): 0.5}


def test_vmi_on_an_unknown_node_is_not_counted_anywhere():
    out = run(node("worker-0", cpu="8", smt=True), vmi("ghost", node="gone", cores=64))
    assert series(out, "ov_cpu_overcommit_ratio") == {("worker-0",): 0.0}
    assert series(out, "ov_cluster_cpu_overcommit_ratio") == {(): 0.0}


def test_node_without_cpu_capacity_is_an_info_finding():
    broken = node("worker-1")
    del broken["status"]["capacity"]["cpu"]
    out = run(node("worker-0", cpu="8", smt=True), broken, vmi("a", cores=2))
    assert ("worker-1",) not in series(out, "ov_cpu_overcommit_ratio")
    info = [f for f in out.findings if f.obj.name == "worker-1"]
    assert [f.severity for f in info] == [Severity.INFO]
    assert "capacity.cpu" in info[0].message


# ---------------------------------------------------------------- vmiCPUAllocationRatio


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        ([], ("default", 10)),
        ([hco("v1beta1", cpu_ratio=4)], ("hco", 4)),
        ([hco("v1", cpu_ratio=8)], ("hco", 8)),
        ([kubevirt_cr(cpu_ratio=6)], ("kubevirt", 6)),
        ([hco("v1beta1", cpu_ratio=2), kubevirt_cr(cpu_ratio=6)], ("hco", 2)),  # HCO first
        ([hco("v1beta1"), kubevirt_cr(cpu_ratio=6)], ("kubevirt", 6)),
        ([hco("v1beta1")], ("default", 10)),
    ],
    ids=["default", "hco-v1beta1", "hco-v1", "kubevirt", "hco-over-kubevirt", "hco-unset", "hco-without-ratio"],
)
def test_allocation_ratio_and_its_source(objects, expected):
    out = run(node("worker-0", cpu="8", smt=True), *objects)
    source, value = expected
    assert series(out, "ov_vmi_cpu_allocation_ratio") == {(source,): value}


@pytest.mark.parametrize(
    "setting",
    [hco("v1beta1", cpu_ratio=10), hco("v1", cpu_ratio=20), kubevirt_cr(cpu_ratio=10)],
    ids=["hco-v1beta1", "hco-v1", "kubevirt"],
)
def test_allocation_ratio_above_max_is_configuration_not_a_finding(setting):
    """It only scales the CPU requests of VMs without requests, and HCO writes its default 10
    into every CR: the gauge shows it, the real vCPU:core ratio is what is judged."""
    out = run(node("worker-0", cpu="8", smt=True), setting)
    assert out.findings == []
    assert list(series(out, "ov_vmi_cpu_allocation_ratio").values()) in ([10], [20])


def test_unset_allocation_ratio_is_exported_but_not_a_finding():
    """The platform default (10) is nobody's choice: the gauge shows it, no finding nags."""
    out = run(node("worker-0", cpu="8", smt=True))
    assert out.findings == []
    assert series(out, "ov_vmi_cpu_allocation_ratio") == {("default",): 10}


def test_allocation_ratio_within_max_gives_no_finding():
    out = run(node("worker-0", cpu="8", smt=True), hco("v1", cpu_ratio=1))
    assert out.findings == []


# ---------------------------------------------------------------- malformed objects


def _damaged_vmis():
    spec_null = vmi("spec-null")
    spec_null["spec"] = None
    status_null = vmi("status-null")
    status_null["status"] = None
    domain_null = vmi("domain-null")
    domain_null["spec"]["domain"] = None
    cpu_empty = vmi("cpu-empty", cores=None)
    cpu_empty["spec"]["domain"]["cpu"] = {}
    cpu_strings = vmi("cpu-strings", cores=None)
    cpu_strings["spec"]["domain"]["cpu"] = {"sockets": "1", "cores": "2", "threads": "1"}
    cpu_zero = vmi("cpu-zero", cores=None)
    cpu_zero["spec"]["domain"]["cpu"] = {"sockets": 0, "cores": 0, "threads": 0}
    huge = vmi("huge", cores=None)
    huge["spec"]["domain"]["cpu"] = {"sockets": 1_000_000, "cores": 1_000_000, "threads": 1_000_000}
    resources_null = vmi("resources-null", cores=None)
    resources_null["spec"]["domain"]["resources"] = None
    negative_request = vmi("negative", cores=None, requests_cpu="-4")
    bogus_phase = vmi("bogus-phase", phase="Bogus")
    topology_null = vmi("topology-null")
    topology_null["status"]["currentCPUTopology"] = None
    return [
        spec_null,
        status_null,
        domain_null,
        cpu_empty,
        cpu_strings,
        cpu_zero,
        huge,
        resources_null,
        negative_request,
        bogus_phase,
        topology_null,
    ]


def _damaged_nodes():
    status_null = node("status-null")
    status_null["status"] = None
    capacity_null = node("capacity-null")
    capacity_null["status"]["capacity"] = None
    zero = node("zero", cpu="0")
    negative = node("negative", cpu="-8")
    labels_null = node("labels-null")
    labels_null["metadata"]["labels"] = None
    spec_null = node("spec-null")
    spec_null["spec"] = None
    return [status_null, capacity_null, zero, negative, labels_null, spec_null]


def good_overloaded_node():
    return [node("good", cpu="8", smt=True), vmi("good-load", node="good", cores=8)]


@pytest.mark.parametrize(
    "damaged", _damaged_vmis() + _damaged_nodes(), ids=lambda o: f"{o['kind']}-{o['metadata']['name']}"
)
def test_malformed_object_never_raises_nor_hides_the_good_node(damaged):
    # lenient: as loaded, a bad field (a negative quantity) is dropped and the object kept
    out = cpu_overcommit.evaluate(state(damaged, *good_overloaded_node(), lenient=True), config())
    assert node_findings(out)["good"] is Severity.WARNING
    assert series(out, "ov_cpu_overcommit_ratio")[("good",)] == 2.0


def test_all_malformed_objects_together():
    out = cpu_overcommit.evaluate(
        state(*_damaged_vmis(), *_damaged_nodes(), *good_overloaded_node(), lenient=True), config()
    )
    assert node_findings(out)["good"] is Severity.WARNING


def test_lax_string_counts_are_counted():
    out = run(node("worker-0", cpu="8", smt=True), _damaged_vmis()[4])
    assert series(out, "ov_node_vm_vcpus") == {("worker-0",): 2}


def test_malformed_settings_never_raise():
    broken_hco = hco("v1")
    broken_hco["spec"]["virtualization"] = None
    broken_kv = kubevirt_cr()
    broken_kv["spec"]["configuration"]["developerConfiguration"] = None
    out = run(broken_hco, broken_kv, *good_overloaded_node())
    assert series(out, "ov_vmi_cpu_allocation_ratio") == {("default",): 10}
    assert node_findings(out)["good"] is Severity.WARNING


@pytest.mark.parametrize("request_cpu", ["1e400", float("inf")])
def test_infinite_cpu_request_is_rejected_with_its_field(request_cpu):
    """An infinite quantity cannot be judged: the object is refused at decode time (the
    loader reports and skips it), naming the field, instead of failing the check."""
    bad = vmi("inf", node="other", cores=None)
    bad["spec"]["domain"]["resources"]["requests"]["cpu"] = request_cpu
    with pytest.raises(msgspec.ValidationError, match=r"out of range - at `\$\.spec\.domain\.resources\.requests"):
        state(bad)
    result = runner.evaluate(state(node("other", cpu="8", smt=True), *good_overloaded_node()), config()).result(
        "cpu_overcommit"
    )
    assert result.status is Status.OK, result.error
    assert node_findings(result)["good"] is Severity.WARNING


def test_huge_cpu_requests_do_not_fail_the_check():
    big = [vmi(f"big-{i}", node="other", cores=None, requests_cpu="1e308") for i in range(2)]
    result = runner.evaluate(state(*big, node("other", cpu="8", smt=True), *good_overloaded_node()), config()).result(
        "cpu_overcommit"
    )
    assert result.status is Status.OK, result.error
    assert node_findings(result)["good"] is Severity.WARNING
