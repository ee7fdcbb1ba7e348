"""vm_right_sizing: requested vCPUs / guest memory vs measured usage (anti-pattern 8)."""

from __future__ import annotations

import pytest
from ov_exporter import runner, upstream
from ov_exporter.checks import vm_right_sizing
from ov_exporter.errors import ConfigError
from ov_exporter.model import NotApplicable, ObjectRef, Severity, Status

from .builders import (
    EXEMPT,
    GI,
    NS,
    config,
    metric,
    pod_metrics,
    series,
    severities,
    state,
    vmi,
)

OVER, UNDER = "ov_vm_over_provisioned_usage_ratio", "ov_vm_under_provisioned_usage_ratio"
VMS, CORES, BYTES = "ov_vm_right_sizing_vms", "ov_vm_right_sizing_cpu_cores", "ov_vm_right_sizing_memory_bytes"


def run(*objects, samples=None, **overrides):
    return vm_right_sizing.evaluate(state(*objects, samples=samples), config(**overrides))


def ref(name, ns=NS):
    return ObjectRef("VirtualMachineInstance", ns, name)


def test_not_applicable_without_podmetrics_or_memory_samples():
    with pytest.raises(NotApplicable, match="no VM usage"):
        run(vmi("a"))
    result = runner.evaluate(state(vmi("a")), config()).result("vm_right_sizing")
    assert result.status is Status.NOT_APPLICABLE


def test_over_provisioned_cpu_and_memory_is_info_with_ratio_series():
    out = run(vmi("big", cores=8, memory="32Gi"), pod_metrics("big", cpu="400m", memory="4Gi"))
    assert severities(out) == {"big": Severity.INFO}
    assert series(out, OVER) == {
        (NS, "big", "cpu", "worker-0"): pytest.approx(0.05),
        (NS, "big", "memory", "worker-0"): 0.125,
    }
    assert series(out, UNDER) == {}
    assert "over-provisioned" in out.findings[0].message and "0.40 cores of 8.00 cores" in out.findings[0].message


def test_under_provisioned_memory_is_warning():
    out = run(vmi("tight", cores=4, memory="8Gi"), pod_metrics("tight", cpu="2", memory="7.5Gi"))
    assert severities(out) == {"tight": Severity.WARNING}
    assert series(out, UNDER) == {(NS, "tight", "memory", "worker-0"): pytest.approx(7.5 / 8)}
    assert series(out, OVER) == {}


def test_cpu_near_vcpu_count_is_warning_and_mixed_verdicts_report_both():
    out = run(vmi("hot", cores=2, memory="16Gi"), pod_metrics("hot", cpu="1950m", memory="1Gi"))
    assert severities(out) == {"hot": Severity.WARNING}
    assert series(out, UNDER) == {(NS, "hot", "cpu", "worker-0"): pytest.approx(0.975)}
    assert series(out, OVER) == {(NS, "hot", "memory", "worker-0"): pytest.approx(1 / 16)}
    assert "under-provisioned" in out.findings[0].message and "over-provisioned" in out.findings[0].message


def test_right_sized_vm_is_silent_but_counted_and_totalled():
    out = run(
        vmi("ok", cores=4, memory="8Gi"),
        vmi("big", cores=8, memory="32Gi"),
        pod_metrics("ok", cpu="2", memory="5Gi"),
        pod_metrics("big", cpu="400m", memory="4Gi"),
    )
    assert list(severities(out)) == ["big"]
    assert series(out, VMS)[("cpu", "ok")] == 1 and series(out, VMS)[("cpu", "over")] == 1
    assert series(out, VMS)[("memory", "under")] == 0
    assert series(out, CORES) == {("requested",): 12.0, ("used",): pytest.approx(2.4)}
    assert series(out, BYTES) == {("requested",): 40 * GI, ("used",): 9 * GI}


def test_thresholds_come_from_config():
    objs = (vmi("v", cores=4, memory="8Gi"), pod_metrics("v", cpu="1.6", memory="6Gi"))
    assert run(*objs).findings == []
    out = run(*objs, **{"thresholds.right-sizing-over-ratio": 0.5, "thresholds.right-sizing-under-memory-ratio": 0.7})
    assert series(out, OVER) == {(NS, "v", "cpu", "worker-0"): pytest.approx(0.4)}
    assert series(out, UNDER) == {(NS, "v", "memory", "worker-0"): pytest.approx(0.75)}


def test_bad_threshold_is_a_config_error_naming_the_key():
    with pytest.raises(ConfigError, match="right-sizing-over-ratio"):
        config(**{"thresholds.right-sizing-over-ratio": 1.5})


def test_over_ratio_must_stay_below_the_under_ratios():
    with pytest.raises(ConfigError, match="right-sizing-over-ratio must be below"):
        config(**{"thresholds.right-sizing-over-ratio": 0.8, "thresholds.right-sizing-under-cpu-ratio": 0.7})


def test_one_vcpu_vm_is_never_cpu_over_provisioned():
    out = run(vmi("tiny", cores=1, memory="2Gi"), pod_metrics("tiny", cpu="10m", memory="1Gi"))
    assert out.findings == [] and series(out, OVER) == {}


def test_pods_match_by_vmi_uid_else_by_vm_name_label_and_other_pods_are_ignored():
    by_name = pod_metrics("b", cpu="10m", memory="100Mi", created_by=None)
    wrong_uid = pod_metrics("c", cpu="10m", memory="100Mi", created_by="uid-of-another-vmi", pod="x")
    other = pod_metrics("d", cpu="10m", memory="100Mi")
    other["metadata"]["labels"]["kubevirt.io"] = "hotplug-disk"
    out = run(
        vmi("b", cores=4, memory="8Gi"),
        vmi("c", cores=4, memory="8Gi"),
        vmi("d", cores=4, memory="8Gi"),
        by_name,
        wrong_uid,
        other,
    )
    # b by its vm.kubevirt.io/name label; c's pod carries another uid but still its name; d has no launcher pod.
    assert sorted(severities(out)) == ["b", "c"]


def test_migration_source_and_target_pods_count_the_larger():
    out = run(
        vmi("m", cores=4, memory="8Gi"),
        pod_metrics("m", cpu="3.8", memory="2Gi", pod="src"),
        pod_metrics("m", cpu="50m", memory="7.8Gi", pod="dst"),
    )
    assert set(series(out, UNDER)) == {(NS, "m", "cpu", "worker-0"), (NS, "m", "memory", "worker-0")}


def test_guest_memory_from_prometheus_wins_over_the_pod_working_set():
    samples = {upstream.VMI_MEMORY_USED: [metric(7.6 * GI, name="p")]}
    out = run(vmi("p", cores=4, memory="8Gi"), pod_metrics("p", cpu="2", memory="3Gi"), samples=samples)
    assert series(out, UNDER) == {(NS, "p", "memory", "worker-0"): pytest.approx(0.95)}
    # Prometheus alone (no metrics API) judges memory only.
    out = run(vmi("p", cores=4, memory="8Gi"), samples=samples)
    assert severities(out) == {"p": Severity.WARNING} and series(out, CORES) == {("requested",): 0.0, ("used",): 0.0}


def test_stopped_vmis_are_not_judged():
    out = run(vmi("gone", phase="Succeeded", cores=8, memory="32Gi"), pod_metrics("gone", cpu="1m", memory="1Mi"))
    assert out.findings == []


def test_a_broken_podmetrics_fails_only_itself():
    bad = pod_metrics("x", cpu="lots")
    objs = [
        vmi("x", cores=8, memory="32Gi"),
        vmi("y", cores=8, memory="32Gi"),
        pod_metrics("y", cpu="100m", memory="1Gi"),
    ]
    import msgspec
    from ov_exporter.records import KIND_BY_KEY, convert

    with pytest.raises(msgspec.ValidationError, match=r"containers\[0\].usage"):
        convert(KIND_BY_KEY["pods.metrics.k8s.io"].record, bad)
    out = run(*objs)
    assert list(severities(out)) == ["y"]


def test_exemption_on_the_vm_silences_its_vmi():
    from .builders import vm

    objs = [
        vmi("big", cores=8, memory="32Gi"),
        vm("big", annotations={EXEMPT: "vm_right_sizing"}),
        pod_metrics("big", cpu="100m", memory="1Gi"),
        vmi("other", cores=8, memory="32Gi"),
        pod_metrics("other", cpu="100m", memory="1Gi"),
    ]
    result = runner.evaluate(state(*objs), config()).result("vm_right_sizing")
    assert result.status is Status.OK and [f.obj for f in result.findings] == [ref("other")]
    assert {s.labels[:2] for s in result.samples if s.family == OVER} == {(NS, "other")}
    assert result.exempted == 1


def test_a_snapshot_with_oc_get_podmetrics_output_is_judged_and_core_pods_are_not_podmetrics(tmp_path):
    from pathlib import Path

    import yaml
    from ov_exporter.sources import SnapshotSource
    from ov_exporter.sources.files import kind_from_path
    from ov_exporter.store import Store

    assert kind_from_path(Path("podmetrics.yaml")).kind == "PodMetrics"
    core_pods = kind_from_path(Path("namespaces/vms/core/pods.yaml"))
    assert core_pods is None or core_pods.kind != "PodMetrics"
    (tmp_path / "vmis.yaml").write_text(yaml.safe_dump_all([vmi("big", cores=8, memory="32Gi")]))
    listing = {
        "apiVersion": "v1",
        "kind": "List",
        "metadata": {"resourceVersion": ""},
        "items": [pod_metrics("big", cpu="123456789n", memory="1048576Ki")],
    }
    (tmp_path / "podmetrics.yaml").write_text(yaml.safe_dump(listing))
    store = Store()
    SnapshotSource(tmp_path).load(store.apply)
    result = runner.evaluate(store.state(), config()).result("vm_right_sizing")
    assert [(f.obj, f.severity) for f in result.findings] == [(ref("big"), Severity.INFO)]
    assert {s.labels: round(s.value, 4) for s in result.samples if s.family == OVER} == {
        (NS, "big", "cpu", "worker-0"): round(0.123456789 / 8, 4),
        (NS, "big", "memory", "worker-0"): round(1 / 32, 4),
    }


def test_cpu_from_the_prometheus_rate_where_no_podmetrics_exists():
    samples = {
        upstream.VMI_CPU_USAGE_RATE: [metric(0.2, name="idle"), metric(3.9, name="busy")],
        upstream.VMI_MEMORY_USED: [metric(4 * GI, name="idle"), metric(4 * GI, name="busy")],
    }
    out = run(vmi("idle", cores=4, memory="8Gi"), vmi("busy", cores=4, memory="8Gi"), samples=samples)
    assert series(out, OVER) == {(NS, "idle", "cpu", "worker-0"): pytest.approx(0.05)}
    assert series(out, UNDER) == {(NS, "busy", "cpu", "worker-0"): pytest.approx(0.975)}
    assert severities(out) == {"idle": Severity.INFO, "busy": Severity.WARNING}
    assert series(out, CORES) == {("requested",): 8.0, ("used",): pytest.approx(4.1)}
    # The CPU rate alone is enough to judge; PodMetrics, where present, win over it.
    out = run(vmi("idle", cores=4, memory="8Gi"), samples={upstream.VMI_CPU_USAGE_RATE: [metric(0.2, name="idle")]})
    assert severities(out) == {"idle": Severity.INFO}
    out = run(vmi("idle", cores=4, memory="8Gi"), pod_metrics("idle", cpu="2", memory="4Gi"), samples=samples)
    assert series(out, OVER) == {} and series(out, UNDER) == {}
