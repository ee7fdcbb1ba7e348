"""rwo_vm_disks: VM disks without ReadWriteMany block live migration (anti-pattern 1).

Also the registry-level behaviour (exemption annotation, namespace filter, series cap,
failure isolation), exercised through this check's per-VM series."""

from __future__ import annotations

import dataclasses

import pytest
from ov_exporter import runner
from ov_exporter.checks import CHECKS, rwo_vm_disks
from ov_exporter.model import ObjectRef, Severity, Status

from .builders import (
    EXEMPT,
    NS,
    cloud_init,
    config,
    container_disk,
    datavolume,
    dv_template,
    dv_volume,
    findings,
    hco,
    kubevirt_cr,
    node,
    pvc,
    pvc_volume,
    series,
    state,
    storage_class,
    storage_profile,
    vm,
    vmi,
    volume_status,
)

FAMILY = "ov_rwo_vm_disks"
RWO, RWX = "ReadWriteOnce", "ReadWriteMany"


def run(*objects, **overrides):
    return rwo_vm_disks.evaluate(state(*objects), config(**overrides))


def vm_ref(name, namespace=NS):
    return ObjectRef("VirtualMachine", namespace, name)


def db_vmi(node="worker-0"):
    """The running VMI of db_vm()."""
    return vmi("db", node=node)


def db_vm(eviction="LiveMigrate", claims=("db-root",), **kw):
    return vm(
        "db",
        eviction=eviction,
        volumes=[pvc_volume(f"disk{i}", c) for i, c in enumerate(claims)] + [cloud_init()],
        **kw,
    )


# ---------------------------------------------------------------- the planted positive


def test_running_vm_with_live_migrate_and_rwo_pvc_is_a_warning():
    out = run(db_vmi(), db_vm(), pvc("db-root", access_modes=[RWO]))
    assert series(out, FAMILY) == {(NS, "db", "LiveMigrate", "worker-0"): 1}
    [finding] = out.findings
    assert finding.severity is Severity.WARNING
    assert finding.check == "rwo_vm_disks"
    assert finding.obj == vm_ref("db")
    assert "db-root" in finding.message and RWO in finding.message and "PVC status" in finding.message
    assert "running on worker-0 with eviction strategy LiveMigrate (set on the VM)" in finding.message
    assert "1 disk(s)" in finding.message
    [sample] = out.samples
    assert sample.obj == vm_ref("db")


def test_series_counts_only_the_disks_without_rwx():
    out = run(
        db_vmi(),
        db_vm(claims=("a", "b", "c")),
        pvc("a", access_modes=[RWO]),
        pvc("b", access_modes=[RWX]),
        pvc("c", access_modes=["ReadWriteOncePod"]),
    )
    assert series(out, FAMILY) == {(NS, "db", "LiveMigrate", "worker-0"): 2}
    [finding] = out.findings
    assert finding.severity is Severity.WARNING
    assert "2 disk(s)" in finding.message
    assert "a (ReadWriteOnce from PVC status)" in finding.message
    assert "c (ReadWriteOncePod from PVC status)" in finding.message
    assert "b (" not in finding.message


def test_rwx_together_with_rwo_access_mode_counts_as_shared():
    out = run(db_vmi(), db_vm(), pvc("db-root", access_modes=[RWO, RWX]))
    assert out.samples == [] and out.findings == []


def test_live_migrate_if_possible_is_a_warning():
    out = run(db_vmi(), db_vm(eviction="LiveMigrateIfPossible"), pvc("db-root"))
    assert series(out, FAMILY) == {(NS, "db", "LiveMigrateIfPossible", "worker-0"): 1}
    assert [f.severity for f in out.findings] == [Severity.WARNING]
    assert "db-root" in out.findings[0].message


@pytest.mark.parametrize("strategy", ["None", "External"])
def test_non_migrating_strategy_is_info(strategy):
    out = run(db_vmi(), db_vm(eviction=strategy), pvc("db-root"))
    assert series(out, FAMILY) == {(NS, "db", strategy, "worker-0"): 1}
    [finding] = out.findings
    assert finding.severity is Severity.INFO
    assert f"eviction strategy {strategy} (set on the VM): drains do not try to live migrate it" in finding.message


@pytest.mark.parametrize("strategy", ["LiveMigrate", "LiveMigrateIfPossible"])
def test_stopped_vm_is_info_with_an_empty_node(strategy):
    out = run(db_vm(eviction=strategy), pvc("db-root"))
    assert series(out, FAMILY) == {(NS, "db", strategy, ""): 1}
    [finding] = out.findings
    assert finding.severity is Severity.INFO and "the VM is stopped" in finding.message


def test_vmi_not_yet_on_a_node_counts_as_stopped():
    out = run(vmi("db", node=None, phase="Pending"), db_vm(), pvc("db-root"))
    assert series(out, FAMILY) == {(NS, "db", "LiveMigrate", ""): 1}
    assert [f.severity for f in out.findings] == [Severity.INFO]


def test_node_label_follows_the_vmi():
    out = run(db_vmi(node="worker-7"), db_vm(), pvc("db-root"))
    assert series(out, FAMILY) == {(NS, "db", "LiveMigrate", "worker-7"): 1}


def test_rwx_disk_gives_nothing():
    out = run(db_vmi(), db_vm(), pvc("db-root", access_modes=[RWX]))
    assert out.samples == [] and out.findings == []


def test_container_disk_and_cloud_init_are_ignored():
    out = run(
        vm("ephemeral", eviction="LiveMigrate", volumes=[container_disk(), cloud_init()]),
        vm("empty", eviction="LiveMigrate", volumes=[]),
    )
    assert out.samples == [] and out.findings == []


def test_each_vm_is_judged_on_its_own():
    out = run(
        db_vmi(),
        db_vm(),
        pvc("db-root"),
        vm("web", eviction="LiveMigrate", volumes=[pvc_volume("root", "web-root")]),
        pvc("web-root", access_modes=[RWX]),
        vm("db", "other", eviction="LiveMigrateIfPossible", volumes=[pvc_volume("root", "db-root")]),
        pvc("db-root", "other", access_modes=[RWO]),
    )
    assert series(out, FAMILY) == {
        (NS, "db", "LiveMigrate", "worker-0"): 1,
        ("other", "db", "LiveMigrateIfPossible", ""): 1,
    }
    assert {(f.obj.namespace, f.obj.name): f.severity for f in out.findings} == {
        (NS, "db"): Severity.WARNING,
        ("other", "db"): Severity.INFO,
    }  # other/db is stopped


def test_claims_resolve_in_the_vm_namespace_only():
    # An RWX claim of the same name elsewhere must not hide the RWO claim in the VM's namespace.
    out = run(db_vmi(), db_vm(), pvc("db-root", access_modes=[RWO]), pvc("db-root", "elsewhere", access_modes=[RWX]))
    assert series(out, FAMILY) == {(NS, "db", "LiveMigrate", "worker-0"): 1}


# ---------------------------------------------------------------- order of truth


def test_bound_pvc_status_beats_vmi_volume_status_and_datavolume():
    claim = pvc("db-root", access_modes=[RWO], status_modes=[RWX])
    running = vmi(
        "db", volumes=[dv_volume("disk0", "db-root")], volume_status=[volume_status("disk0", "db-root", [RWO])]
    )
    dv = datavolume("db-root", api="pvc", access_modes=[RWO])
    out = run(db_vmi(), db_vm(), claim, running, dv)
    assert out.samples == [] and out.findings == []


def test_bound_pvc_status_rwo_beats_an_rwx_volume_status():
    out = run(
        db_vmi(),
        db_vm(),
        pvc("db-root", access_modes=[RWO]),
        vmi("db", volume_status=[volume_status("disk0", "db-root", [RWX])]),
    )
    [finding] = out.findings
    assert "db-root (ReadWriteOnce from PVC status)" in finding.message


def test_unbound_pvc_uses_its_spec():
    out = run(
        db_vmi(),
        db_vm(),
        pvc("db-root", access_modes=[RWO], phase="Pending"),
        datavolume("db-root", api="pvc", access_modes=[RWX]),
    )
    [finding] = out.findings
    assert "db-root (ReadWriteOnce from PVC spec)" in finding.message


def test_vmi_volume_status_when_the_pvc_is_missing():
    out = run(
        db_vm(),
        vmi("db", volume_status=[volume_status("disk0", "db-root", [RWO]), volume_status("cloudinitdisk", None, None)]),
        datavolume("db-root", api="pvc", access_modes=[RWX]),
    )
    assert series(out, FAMILY) == {(NS, "db", "LiveMigrate", "worker-0"): 1}
    [finding] = out.findings
    assert finding.severity is Severity.WARNING
    assert "db-root (ReadWriteOnce from VMI volumeStatus)" in finding.message


def test_vmi_volume_status_without_claim_name_from_older_kubevirt():
    entry = volume_status("disk0", "db-root", [RWO])
    del entry["persistentVolumeClaimInfo"]["claimName"]  # KubeVirt <= 1.2: keyed by the volume name only
    out = run(db_vm(), vmi("db", volumes=[pvc_volume("disk0", "db-root")], volume_status=[entry]))
    assert series(out, FAMILY) == {(NS, "db", "LiveMigrate", "worker-0"): 1}
    [finding] = out.findings
    assert "db-root (ReadWriteOnce from VMI volumeStatus)" in finding.message


def test_vmi_volume_status_rwx_when_the_pvc_is_missing():
    out = run(
        db_vm(),
        vmi("db", volume_status=[volume_status("disk0", "db-root", [RWX])]),
        datavolume("db-root", api="pvc", access_modes=[RWO]),
    )
    assert out.samples == [] and out.findings == []


def test_datavolume_spec_pvc_when_no_pvc_nor_vmi():
    out = run(
        vm("db", eviction="LiveMigrate", volumes=[dv_volume("root", "db-root")]),
        datavolume("db-root", api="pvc", access_modes=[RWO], storage_class="shared"),
        storage_profile("shared", [{"accessModes": [RWX], "volumeMode": "Block"}]),
    )
    [finding] = out.findings
    assert "db-root (ReadWriteOnce from DataVolume spec.pvc)" in finding.message


def test_datavolume_spec_storage_with_access_modes():
    out = run(
        vm("db", eviction="LiveMigrate", volumes=[dv_volume("root", "db-root")]),
        datavolume("db-root", access_modes=[RWO]),
    )
    [finding] = out.findings
    assert "db-root (ReadWriteOnce from DataVolume spec.storage)" in finding.message


def test_datavolume_storage_without_modes_uses_the_default_virt_class_profile():
    objects = [
        vm("db", eviction="LiveMigrate", volumes=[dv_volume("root", "db-root")]),
        datavolume("db-root"),  # spec.storage, no accessModes, no storageClassName
        storage_class("ocs-storagecluster-ceph-rbd", default=True),
        storage_class("local-block", "kubernetes.io/no-provisioner", default_virt=True),
        storage_profile("ocs-storagecluster-ceph-rbd", [{"accessModes": [RWX], "volumeMode": "Block"}]),
        storage_profile("local-block", [{"accessModes": [RWO], "volumeMode": "Block"}]),
    ]
    out = run(*objects, db_vmi())
    assert series(out, FAMILY) == {(NS, "db", "LiveMigrate", "worker-0"): 1}
    [finding] = out.findings
    assert "db-root (ReadWriteOnce from StorageProfile local-block)" in finding.message


def test_datavolume_storage_without_modes_falls_back_to_the_kubernetes_default_class():
    out = run(
        vm("db", eviction="LiveMigrate", volumes=[dv_volume("root", "db-root")]),
        datavolume("db-root"),
        storage_class("ocs-storagecluster-ceph-rbd", default=True),
        storage_profile(
            "ocs-storagecluster-ceph-rbd",
            [{"accessModes": [RWX], "volumeMode": "Block"}, {"accessModes": [RWO], "volumeMode": "Filesystem"}],
        ),
    )
    assert out.samples == [] and out.findings == []


def test_storage_profile_first_claim_property_set_wins():
    out = run(
        vm("db", eviction="LiveMigrate", volumes=[dv_volume("root", "db-root")]),
        datavolume("db-root", storage_class="hpp"),
        storage_profile(
            "hpp", [{"accessModes": [RWO], "volumeMode": "Filesystem"}, {"accessModes": [RWX], "volumeMode": "Block"}]
        ),
    )
    [finding] = out.findings
    assert "db-root (ReadWriteOnce from StorageProfile hpp)" in finding.message


def test_storage_profile_set_matching_the_requested_volume_mode():
    out = run(
        vm("db", eviction="LiveMigrate", volumes=[dv_volume("root", "db-root")]),
        datavolume("db-root", storage_class="ceph", volume_mode="Block"),
        storage_profile(
            "ceph", [{"accessModes": [RWO], "volumeMode": "Filesystem"}, {"accessModes": [RWX], "volumeMode": "Block"}]
        ),
    )
    assert out.samples == [] and out.findings == []


def test_storage_profile_claim_property_sets_in_spec():
    out = run(
        vm("db", eviction="LiveMigrate", volumes=[dv_volume("root", "db-root")]),
        datavolume("db-root", storage_class="lvms"),
        storage_profile("lvms", [{"accessModes": [RWO], "volumeMode": "Block"}], in_spec=True),
    )
    [finding] = out.findings
    assert "db-root (ReadWriteOnce from StorageProfile lvms)" in finding.message


def test_pvc_beats_datavolume_and_storage_profile():
    out = run(
        vm("db", eviction="LiveMigrate", volumes=[dv_volume("root", "db-root")]),
        pvc("db-root", access_modes=[RWX]),
        datavolume("db-root", storage_class="hpp"),
        storage_profile("hpp", [{"accessModes": [RWO]}]),
    )
    assert out.samples == [] and out.findings == []


# ---------------------------------------------------------------- dataVolumeTemplates


def test_data_volume_template_pvc_modes_when_nothing_exists_yet():
    halted = vm(
        "db",
        eviction="LiveMigrate",
        run_strategy="Halted",
        volumes=[dv_volume("root", "db-root")],
        data_volume_templates=[dv_template("db-root", api="pvc", access_modes=[RWO])],
    )
    out = run(halted, db_vmi())
    assert series(out, FAMILY) == {(NS, "db", "LiveMigrate", "worker-0"): 1}
    [finding] = out.findings
    assert "db-root (ReadWriteOnce from DataVolume spec.pvc)" in finding.message


def test_data_volume_template_storage_resolved_through_storage_profile():
    template = vm(
        "db",
        eviction="LiveMigrateIfPossible",
        volumes=[dv_volume("root", "db-root")],
        data_volume_templates=[dv_template("db-root", storage_class="hpp")],
    )
    out = run(template, db_vmi(), storage_profile("hpp", [{"accessModes": [RWO], "volumeMode": "Filesystem"}]))
    [finding] = out.findings
    assert finding.severity is Severity.WARNING
    assert "db-root (ReadWriteOnce from StorageProfile hpp)" in finding.message


def test_data_volume_template_rwx():
    template = vm(
        "db",
        eviction="LiveMigrate",
        volumes=[dv_volume("root", "db-root")],
        data_volume_templates=[dv_template("db-root", access_modes=[RWX])],
    )
    out = run(template)
    assert out.samples == [] and out.findings == []


# ---------------------------------------------------------------- cluster default eviction strategy


def workers(n=3):
    return [node(f"worker-{i}") for i in range(n)]


def test_default_from_hco_v1beta1():
    out = run(
        db_vmi(), db_vm(eviction=None), pvc("db-root"), hco("v1beta1", eviction_strategy="LiveMigrate"), *workers()
    )
    assert series(out, FAMILY) == {(NS, "db", "LiveMigrate", "worker-0"): 1}
    [finding] = out.findings
    assert finding.severity is Severity.WARNING
    assert "cluster default from hco" in finding.message


def test_default_from_hco_v1():
    out = run(
        db_vmi(), db_vm(eviction=None), pvc("db-root"), hco("v1", eviction_strategy="LiveMigrateIfPossible"), *workers()
    )
    assert series(out, FAMILY) == {(NS, "db", "LiveMigrateIfPossible", "worker-0"): 1}
    assert [f.severity for f in out.findings] == [Severity.WARNING]
    assert "cluster default from hco" in out.findings[0].message


def test_hco_v1beta1_none_gives_series_and_info():
    out = run(
        db_vmi(),
        db_vm(eviction=None),
        pvc("db-root"),
        hco("v1beta1", eviction_strategy="None"),
        kubevirt_cr(eviction_strategy="LiveMigrate"),
        *workers(),
    )
    assert series(out, FAMILY) == {(NS, "db", "None", "worker-0"): 1}
    assert [f.severity for f in out.findings] == [Severity.INFO]


def test_default_from_kubevirt_cr():
    out = run(
        db_vmi(),
        db_vm(eviction=None),
        pvc("db-root"),
        kubevirt_cr(eviction_strategy="LiveMigrate", namespace="kubevirt", name="kubevirt"),
    )
    assert series(out, FAMILY) == {(NS, "db", "LiveMigrate", "worker-0"): 1}
    [finding] = out.findings
    assert "cluster default from kubevirt" in finding.message


def test_plain_kubevirt_default_is_none():
    out = run(
        db_vmi(), db_vm(eviction=None), pvc("db-root"), kubevirt_cr(namespace="kubevirt", name="kubevirt"), *workers()
    )
    assert series(out, FAMILY) == {(NS, "db", "None", "worker-0"): 1}
    assert [f.severity for f in out.findings] == [Severity.INFO]


def test_hco_without_strategy_defaults_to_live_migrate_on_multi_worker_clusters():
    out = run(db_vmi(), db_vm(eviction=None), pvc("db-root"), hco("v1beta1"), *workers(3))
    assert series(out, FAMILY) == {(NS, "db", "LiveMigrate", "worker-0"): 1}
    assert [f.severity for f in out.findings] == [Severity.WARNING]
    assert "cluster default from default" in out.findings[0].message


def test_hco_without_strategy_on_a_single_worker_defaults_to_none():
    out = run(db_vmi(), db_vm(eviction=None), pvc("db-root"), hco("v1beta1"), node("sno"))
    assert series(out, FAMILY) == {(NS, "db", "None", "worker-0"): 1}
    assert [f.severity for f in out.findings] == [Severity.INFO]


def test_hco_default_on_a_compact_three_node_cluster_is_live_migrate():
    compact = [node(f"ctrl-{i}", control_plane=True, labels={"node-role.kubernetes.io/worker": ""}) for i in range(3)]
    out = run(db_vmi(), db_vm(eviction=None), pvc("db-root"), hco("v1beta1"), *compact)
    assert series(out, FAMILY) == {(NS, "db", "LiveMigrate", "worker-0"): 1}
    assert [f.severity for f in out.findings] == [Severity.WARNING]


def test_vm_strategy_beats_the_cluster_default():
    out = run(db_vmi(), db_vm(eviction="None"), pvc("db-root"), hco("v1", eviction_strategy="LiveMigrate"), *workers())
    assert series(out, FAMILY) == {(NS, "db", "None", "worker-0"): 1}
    assert [f.severity for f in out.findings] == [Severity.INFO]


# ---------------------------------------------------------------- unknown access modes


def test_unresolvable_claim_is_an_info_finding():
    out = run(db_vmi(), db_vm(claims=("ghost",)))
    assert out.samples == []
    [finding] = out.findings
    assert finding.severity is Severity.INFO
    assert finding.obj == vm_ref("db")
    assert "ghost" in finding.message


def test_unknown_and_rwo_disks_on_one_vm():
    out = run(db_vmi(), db_vm(claims=("db-root", "ghost")), pvc("db-root"))
    assert series(out, FAMILY) == {(NS, "db", "LiveMigrate", "worker-0"): 1}
    assert sorted(f.severity for f in out.findings) == [Severity.INFO, Severity.WARNING]
    info = findings(out, Severity.INFO)[0]
    assert "ghost" in info.message and "db-root" not in info.message


def test_datavolume_without_modes_and_without_profile_is_unknown():
    out = run(vm("db", eviction="LiveMigrate", volumes=[dv_volume("root", "db-root")]), datavolume("db-root"))
    assert [f.severity for f in out.findings] == [Severity.INFO]
    assert "db-root" in out.findings[0].message


# ---------------------------------------------------------------- malformed objects


def good_objects():
    return [
        vm("good", eviction="LiveMigrate", volumes=[pvc_volume("root", "good-root")]),
        pvc("good-root"),
        vmi("good", node="worker-0"),
    ]


def assert_good_vm_still_judged(out):
    assert series(out, FAMILY)[(NS, "good", "LiveMigrate", "worker-0")] == 1
    assert [f.severity for f in out.findings if f.obj.name == "good"] == [Severity.WARNING]


def _vm_with(mutate):
    obj = db_vm()
    mutate(obj)
    return obj


MALFORMED = {
    "vm spec null": lambda: _vm_with(lambda o: o.__setitem__("spec", None)),
    "vm spec empty": lambda: _vm_with(lambda o: o.__setitem__("spec", {})),
    "template null": lambda: _vm_with(lambda o: o["spec"].__setitem__("template", None)),
    "template spec null": lambda: _vm_with(lambda o: o["spec"]["template"].__setitem__("spec", None)),
    "volumes null": lambda: _vm_with(lambda o: o["spec"]["template"]["spec"].__setitem__("volumes", None)),
    "volume without source": lambda: _vm_with(
        lambda o: o["spec"]["template"]["spec"].__setitem__(
            "volumes", [{"name": "x"}, {"name": "y", "persistentVolumeClaim": {}}, {"name": "z", "dataVolume": None}]
        )
    ),
    "bogus strategy": lambda: _vm_with(
        lambda o: o["spec"]["template"]["spec"].__setitem__("evictionStrategy", "Bogus")
    ),
    "empty strategy": lambda: _vm_with(lambda o: o["spec"]["template"]["spec"].__setitem__("evictionStrategy", "")),
    "dvTemplates empty": lambda: _vm_with(lambda o: o["spec"].__setitem__("dataVolumeTemplates", [])),
    "dvTemplate spec null": lambda: _vm_with(
        lambda o: o["spec"].__setitem__("dataVolumeTemplates", [{"metadata": {"name": "db-root"}, "spec": None}])
    ),
    "cores as string": lambda: _vm_with(
        lambda o: o["spec"]["template"]["spec"]["domain"]["cpu"].__setitem__("cores", "4")
    ),
    "running and runStrategy": lambda: _vm_with(lambda o: o["spec"].__setitem__("running", True)),
    "metadata without namespace": lambda: _vm_with(lambda o: o["metadata"].pop("namespace")),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_vm_never_raises_nor_hides_others(case):
    out = run(MALFORMED[case](), *good_objects())
    assert_good_vm_still_judged(out)


@pytest.mark.parametrize(
    "damage",
    [
        lambda c: c.__setitem__("spec", None),
        lambda c: c.__setitem__("status", None),
        lambda c: c.update(spec={"accessModes": []}, status={"phase": "Bound", "accessModes": []}),
        lambda c: c.update(status={"phase": "Lost"}),
        lambda c: c["status"].__setitem__("accessModes", ["Bogus"]),
    ],
    ids=["spec null", "status null", "empty modes", "lost", "bogus mode"],
)
def test_malformed_claims_and_helpers(damage):
    claim = pvc("db-root")
    damage(claim)
    bad_dv = datavolume("db-root")
    bad_dv["spec"] = None
    profile = storage_profile("ocs-storagecluster-ceph-rbd", [])
    profile["status"]["claimPropertySets"] = [{"accessModes": None}, {}]
    broken_vmi = vmi("db", volume_status=[{"name": "disk0", "persistentVolumeClaimInfo": None}, {}])
    broken_vmi["status"]["volumeStatus"].append(
        {"persistentVolumeClaimInfo": {"claimName": "db-root", "accessModes": []}}
    )
    broken_hco = hco("v1beta1")
    broken_hco["spec"] = None
    broken_kv = kubevirt_cr()
    broken_kv["spec"]["configuration"] = None
    sc = storage_class("ocs-storagecluster-ceph-rbd", default_virt=True)
    sc["metadata"]["annotations"] = None
    out = run(db_vmi(), db_vm(), claim, bad_dv, profile, broken_vmi, broken_hco, broken_kv, sc, *good_objects())
    assert_good_vm_still_judged(out)
    db = [f for f in out.findings if f.obj.name == "db"]
    assert all(f.severity in (Severity.WARNING, Severity.INFO) for f in db)


def test_bogus_strategy_is_reported_in_the_series_and_only_info():
    out = run(db_vmi(), db_vm(eviction="Bogus"), pvc("db-root"))
    assert series(out, FAMILY) == {(NS, "db", "Bogus", "worker-0"): 1}
    assert [f.severity for f in out.findings] == [Severity.INFO]


# ---------------------------------------------------------------- registry: exemption, namespaces, cap, failures


def cluster_with_three_offenders():
    return state(
        db_vm(),
        db_vmi(),
        pvc("db-root"),
        vm("web", eviction="LiveMigrate", volumes=[pvc_volume("a", "web-a"), pvc_volume("b", "web-b")]),
        pvc("web-a"),
        pvc("web-b"),
        vm("cache", "team-b", eviction="LiveMigrate", volumes=[pvc_volume(f"d{i}", f"cache-{i}") for i in range(3)]),
        *[pvc(f"cache-{i}", "team-b") for i in range(3)],
    )


def test_exemption_annotation_silences_this_check_for_that_vm_only():
    objects = [db_vm(annotations={EXEMPT: "rwo_vm_disks"}), pvc("db-root"), *good_objects()]
    result = runner.evaluate(state(*objects), config()).result("rwo_vm_disks")
    assert result.status is Status.OK
    assert {s.labels for s in result.samples} == {(NS, "good", "LiveMigrate", "worker-0")}
    assert [f.obj.name for f in result.findings] == ["good"]
    assert result.exempted == 1


@pytest.mark.parametrize("value", ["cpu_overcommit", "mtu_mismatch, cpu_overcommit"])
def test_exemption_for_another_check_keeps_this_one(value):
    objects = [db_vm(annotations={EXEMPT: value}), pvc("db-root")]
    result = runner.evaluate(state(*objects), config()).result("rwo_vm_disks")
    assert [f.obj.name for f in result.findings] == ["db"]
    assert result.exempted == 0


@pytest.mark.parametrize("value", ["cpu_overcommit, rwo_vm_disks", "*", "all"])
def test_exemption_lists_and_wildcards(value):
    objects = [db_vm(annotations={EXEMPT: value}), pvc("db-root")]
    result = runner.evaluate(state(*objects), config()).result("rwo_vm_disks")
    assert result.findings == [] and result.samples == []


def test_custom_exemption_annotation():
    objects = [db_vm(annotations={"example.com/skip": "rwo_vm_disks", EXEMPT: ""}), pvc("db-root")]
    result = runner.evaluate(state(*objects), config(**{"exemption-annotation": "example.com/skip"})).result(
        "rwo_vm_disks"
    )
    assert result.findings == [] and result.samples == []


def test_namespace_exclude_drops_findings_and_series():
    cfg = config(**{"namespaces.exclude": ["team-b"]})
    result = runner.evaluate(cluster_with_three_offenders(), cfg).result("rwo_vm_disks")
    assert {s.labels for s in result.samples} == {(NS, "db", "LiveMigrate", "worker-0"), (NS, "web", "LiveMigrate", "")}
    assert sorted(f.obj.name for f in result.findings) == ["db", "web"]


def test_namespace_include_keeps_only_listed():
    cfg = config(**{"namespaces.include": ["team-b"]})
    result = runner.evaluate(cluster_with_three_offenders(), cfg).result("rwo_vm_disks")
    assert {s.labels: s.value for s in result.samples} == {("team-b", "cache", "LiveMigrate", ""): 3}
    assert [f.obj for f in result.findings] == [vm_ref("cache", "team-b")]


def test_series_cap_keeps_the_worst_and_counts_the_dropped():
    result = runner.evaluate(cluster_with_three_offenders(), config(**{"series-cap": 2})).result("rwo_vm_disks")
    assert {s.labels: s.value for s in result.samples} == {
        ("team-b", "cache", "LiveMigrate", ""): 3,
        (NS, "web", "LiveMigrate", ""): 2,
    }
    assert result.dropped == 1
    assert len(result.findings) == 3  # findings are never capped


def test_series_cap_zero_drops_every_per_object_series():
    result = runner.evaluate(cluster_with_three_offenders(), config(**{"series-cap": 0})).result("rwo_vm_disks")
    assert result.samples == [] and result.dropped == 3
    assert len(result.findings) == 3


def test_uncapped_when_under_the_cap():
    result = runner.evaluate(cluster_with_three_offenders(), config()).result("rwo_vm_disks")
    assert len(result.samples) == 3 and result.dropped == 0


def test_a_raising_check_is_reported_failed_and_the_others_still_run():
    def boom(state, config):
        raise RuntimeError("planted failure")

    specs = [dataclasses.replace(s, evaluate=boom) if s.id == "cpu_overcommit" else s for s in CHECKS]
    objects = [
        db_vm(),
        db_vmi(),
        pvc("db-root"),
        node("worker-0", cpu="4", smt=True),
        vmi("big", node="worker-0", cores=8),
    ]
    evaluation = runner.evaluate(state(*objects), config(), specs=specs)
    failed = evaluation.result("cpu_overcommit")
    assert failed.status is Status.FAILED
    assert "RuntimeError" in failed.error and "planted failure" in failed.error
    assert failed.findings == [] and failed.samples == []
    ok = evaluation.result("rwo_vm_disks")
    assert ok.status is Status.OK
    assert [(f.severity, f.obj) for f in ok.findings] == [(Severity.WARNING, vm_ref("db"))]
    assert evaluation.result("memory_overcommit").status is Status.OK


def test_a_sample_outside_the_declared_families_fails_the_check():
    from ov_exporter.model import CheckOutput, Sample

    def stray(state, config):
        return CheckOutput(samples=[Sample("ov_not_declared", (), 1.0)])

    spec = dataclasses.replace(rwo_vm_disks.SPEC, evaluate=stray)
    result = runner.evaluate(state(), config(), specs=[spec]).result("rwo_vm_disks")
    assert result.status is Status.FAILED and "ov_not_declared" in result.error


def test_disabled_check_does_not_run():
    evaluation = runner.evaluate(
        state(db_vm(), pvc("db-root")), config(**{"checks": {"rwo_vm_disks": {"enabled": False}}})
    )
    with pytest.raises(KeyError):
        evaluation.result("rwo_vm_disks")
