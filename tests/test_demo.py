"""The embedded demo cluster and the clean fixture: shape, planted cases, silence.

The demo's planted positives and clean negatives live in demo/expectations.yaml, which
exporter/scripts/make_demo.py writes from the same table as the demo README; these
tests hold the checks to it. The clean fixture must produce no finding at all.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ov_exporter import upstream
from ov_exporter.checks import CHECK_IDS
from ov_exporter.config import Config
from ov_exporter.model import Status
from ov_exporter.runner import Evaluation, evaluate
from ov_exporter.sources.snapshot import SnapshotSource, demo_path
from ov_exporter.store import ClusterState, Store

from .conftest import CLEAN, ROOT

CONTROL_PLANE = ("node-role.kubernetes.io/master", "node-role.kubernetes.io/control-plane")
WORKER = "node-role.kubernetes.io/worker"
RWX = "ReadWriteMany"


def _load(path: Path) -> tuple[Store, ClusterState]:
    store = Store()
    SnapshotSource(path).load(store.apply)
    return store, store.state()


@pytest.fixture(scope="module")
def demo() -> tuple[Store, ClusterState]:
    return _load(demo_path())


@pytest.fixture(scope="module")
def demo_eval(demo) -> Evaluation:
    return evaluate(demo[1], Config())


@pytest.fixture(scope="module")
def expectations() -> dict:
    return yaml.safe_load(Path(demo_path(), "expectations.yaml").read_text())["checks"]


def _labels(obj) -> dict[str, str]:
    return obj.metadata.labels or {}


def _findings(evaluation: Evaluation, check: str) -> dict[tuple[str, str, str], list[str]]:
    """(kind, namespace, name) -> severities of one check's findings."""
    out: dict[tuple[str, str, str], list[str]] = {}
    for f in evaluation.result(check).findings:
        out.setdefault((f.obj.kind, f.obj.namespace, f.obj.name), []).append(str(f.severity))
    return out


# ---------------------------------------------------------------- demo: shape


def test_demo_loads_without_problems(demo):
    store, _ = demo
    # The malformed NAD config is a string inside a valid object: a finding, not a load problem.
    assert store.problems == []
    # expectations.yaml is the only file that is no Kubernetes object.
    assert store.ignored_counts() == {"no kind": 1}


def test_demo_nodes(demo):
    _, state = demo
    control = [n for n in state.nodes if any(lbl in _labels(n) for lbl in CONTROL_PLANE)]
    workers = [n for n in state.nodes if WORKER in _labels(n)]
    assert len(control) == 3
    # Every control-plane node is tainted NoSchedule, except master-2: left VM-schedulable on purpose
    # (the planted positive of control_plane_vm_workloads).
    tainted = [
        n.metadata.name
        for n in control
        if any(t.key == "node-role.kubernetes.io/master" and t.effect == "NoSchedule" for t in n.spec.taints or [])
    ]
    assert tainted == ["master-0", "master-1"]
    assert _labels(next(n for n in control if n.metadata.name == "master-2")).get("kubevirt.io/schedulable") == "true"
    assert len(workers) >= 6
    assert all(_labels(n).get("kubevirt.io/schedulable") == "true" for n in workers)
    rhel = [n for n in workers if _labels(n).get("node.openshift.io/os_id") == "rhel"]
    assert len(rhel) == 1 and rhel[0].status.node_info.os_image.startswith("Red Hat Enterprise Linux 8")
    rhcos = [n for n in state.nodes if n not in rhel]
    assert all(
        n.status.node_info.os_image == "Red Hat Enterprise Linux CoreOS 418.94.202410090804-0 (Plow)"
        and _labels(n)["node.openshift.io/os_id"] == "rhcos"
        for n in rhcos
    )
    # Most workers carry the NFD SMT label; at least one does not (config fallback).
    smt = [n for n in workers if "feature.node.kubernetes.io/cpu-hardware_multithreading" in _labels(n)]
    assert len(workers) - 1 >= len(smt) >= len(workers) // 2


def test_demo_virtualization_settings(demo):
    _, state = demo
    (hco,) = state.hyperconvergeds
    assert (hco.metadata.namespace, hco.metadata.name) == ("openshift-cnv", "kubevirt-hyperconverged")
    live = hco.spec.live_migration_config
    assert not live.bandwidth_per_migration
    assert (
        live.completion_timeout_per_gib,
        live.parallel_migrations_per_cluster,
        live.parallel_outbound_migrations_per_node,
        live.progress_timeout,
    ) == (150, 5, 2, 150)
    assert hco.spec.resource_requirements.vmi_cpu_allocation_ratio == 10
    assert hco.spec.eviction_strategy == "LiveMigrate"
    assert len(state.kubevirts) == 1
    assert state.migration_policies
    assert all(p.spec.selectors and p.spec.bandwidth_per_migration for p in state.migration_policies)
    selected = {k for p in state.migration_policies for k in p.spec.selectors.namespace_selector}
    assert any(selected & set(_labels(ns)) for ns in state.namespaces)


def test_demo_workloads(demo):
    _, state = demo
    vmis = state.index("virtualmachineinstances.kubevirt.io")
    assert len(state.vms) >= 40
    assert len({vm.metadata.namespace for vm in state.vms}) >= 5
    missing = [
        vm.metadata.name
        for vm in state.vms
        if (vm.metadata.namespace, vm.metadata.name) not in vmis and vm.spec.run_strategy != "Halted"
    ]  # stopped VMs (migration_readiness) have no VMI
    assert missing == []
    # Every VMI runs on a node, except the planted unschedulable one (scheduling_constraints).
    waiting = [v for v in state.vmis if v.status.phase != "Running"]
    assert [(v.status.phase, v.status.node_name) for v in waiting] == [("Scheduling", "")]
    assert all(v.status.node_name for v in state.vmis if v.status.phase == "Running")
    assert sum(1 for v in state.vmis if v.status.migration_state) >= 3
    phases = {m.status.phase for m in state.migrations}
    assert {"Succeeded", "Running", "Failed"} <= phases


def test_demo_storage(demo):
    _, state = demo
    classes = {sc.metadata.name for sc in state.storage_classes}
    profiles = {p.metadata.name: p for p in state.storage_profiles}
    assert classes <= set(profiles)
    modes_by_class: dict[str, set[bool]] = {}
    for claim in state.pvcs:
        assert claim.status.phase == "Bound" and claim.status.access_modes
        modes_by_class.setdefault(claim.spec.storage_class_name, set()).add(RWX in claim.status.access_modes)
    rwx_classes = {sc for sc, rwx in modes_by_class.items() if True in rwx}
    rwo_classes = {sc for sc, rwx in modes_by_class.items() if rwx == {False}}
    assert rwx_classes and rwo_classes
    for sc in rwx_classes | rwo_classes:
        first = profiles[sc].status.claim_property_sets[0].access_modes
        assert (RWX in first) == (sc in rwx_classes)
    assert state.data_volumes
    # Some DataVolumes leave the access mode to the StorageProfile.
    assert any(dv.spec.storage and not dv.spec.storage.access_modes for dv in state.data_volumes)


def test_demo_network(demo):
    _, state = demo
    (net,) = state.cluster_networks
    assert (net.status.network_type, net.status.cluster_network_mtu) == ("OVNKubernetes", 1400)
    assert len(state.nads) >= 5
    workers = {n.metadata.name for n in state.nodes if WORKER in _labels(n)}
    assert workers <= {n.metadata.name for n in state.node_network_states}


def test_demo_dirty_rate_samples(demo):
    _, state = demo
    assert len(state.samples[upstream.DIRTY_RATE]) >= 30
    assert state.samples["kubevirt_vmi_migration_dirty_memory_rate_bytes"]
    assert state.samples["kubevirt_vmi_migration_memory_transfer_rate_bytes"]
    running = {(m.metadata.namespace, m.spec.vmi_name) for m in state.migrations if m.status.phase == "Running"}
    migrating = {
        (s.labels["namespace"], s.labels["name"])
        for s in state.samples["kubevirt_vmi_migration_dirty_memory_rate_bytes"]
    }
    assert migrating == running


# ---------------------------------------------------------------- demo: planted cases


def test_every_check_is_ok_on_the_demo(demo_eval):
    assert {r.spec.id: r.status for r in demo_eval.results} == {c: Status.OK for c in CHECK_IDS}


def test_expectations_cover_every_check(expectations):
    assert set(expectations) == set(CHECK_IDS)
    for check, entry in expectations.items():
        assert entry["positives"] and entry["negatives"], check


@pytest.mark.parametrize("check", sorted(CHECK_IDS))
def test_planted_positives_are_found(check, demo_eval, expectations):
    found = _findings(demo_eval, check)
    for case in expectations[check]["positives"]:
        key = (case["kind"], case["namespace"], case["name"])
        assert case["severity"] in found.get(key, []), f"{check}: no {case['severity']} finding on {key}: {found}"


@pytest.mark.parametrize("check", sorted(CHECK_IDS))
def test_clean_negatives_stay_silent(check, demo_eval, expectations):
    found = _findings(demo_eval, check)
    for case in expectations[check]["negatives"]:
        key = (case["kind"], case["namespace"], case["name"])
        assert key not in found, f"{check}: unexpected finding on {key}: {found[key]}"


@pytest.mark.parametrize("check", sorted(CHECK_IDS))
def test_no_unplanned_findings(check, demo_eval, expectations):
    """The positives are the whole story: a check finds nothing else in the demo."""
    found = {(k, s) for k, severities in _findings(demo_eval, check).items() for s in severities}
    planted = {((c["kind"], c["namespace"], c["name"]), c["severity"]) for c in expectations[check]["positives"]}
    assert found == planted


def test_smt_fallback_node_is_assumed(demo_eval):
    """worker-5 lacks the NFD label and the demo sets no threads-per-core: 2 is assumed."""
    samples = [s for s in demo_eval.result("cpu_overcommit").samples if s.family == "ov_node_cpu_threads_per_core"]
    sources = {s.labels[0]: (s.labels[1], s.value) for s in samples}
    assert sources["worker-5"] == ("assumed", 2) and sources["worker-0"] == ("nfd", 2)


# ---------------------------------------------------------------- clean fixture


def test_clean_fixture_has_no_findings():
    store, state = _load(CLEAN)
    assert store.problems == [] and store.ignored_counts() == {}
    assert len(state.nodes) == 6 and len(state.vms) >= 8 and state.samples[upstream.DIRTY_RATE]
    evaluation = evaluate(state, Config())
    assert {r.spec.id: (r.status, r.error) for r in evaluation.results} == {c: (Status.OK, "") for c in CHECK_IDS}
    assert evaluation.findings == []


# ---------------------------------------------------------------- generator


def test_generated_files_are_up_to_date():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "exporter" / "scripts" / "make_demo.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr


def test_demo_virt_handler_pods_one_per_worker_one_not_ready(demo):
    _, state = demo
    workers = {n.metadata.name for n in state.nodes if WORKER in _labels(n)}
    pods = [p for p in state.of("pods") if _labels(p).get("kubevirt.io") == "virt-handler"]
    assert {p.metadata.namespace for p in pods} == {"openshift-cnv"}
    assert sorted(p.spec.node_name for p in pods) == sorted(workers)
    not_ready = [
        p.spec.node_name for p in pods if not any(c.type == "Ready" and c.status == "True" for c in p.status.conditions)
    ]
    assert not_ready == ["rhel-worker-0"]
    halted = [vm.metadata.name for vm in state.vms if vm.spec.run_strategy == "Halted"]
    assert halted == ["quarter-close-01"]
