"""Values that repeat on most objects of a large cluster are held once, shared by every
record that carries them (the same access-mode list, the same parsed quantity), with the
values each record was given, and the sharing is bounded against objects that make values up."""

from __future__ import annotations

import json

import msgspec
from ov_exporter.records import Node, PersistentVolumeClaim, VirtualMachineInstance
from ov_exporter.records.decode import decode_json


def _pvc(name: str, modes: list[str]) -> PersistentVolumeClaim:
    # Fields as in k8s.io/api v0.31.0 core/v1/types.go PersistentVolumeClaimSpec/Status.
    obj = {
        "metadata": {"name": name, "namespace": "tenant-000", "uid": f"uid-{name}"},
        "spec": {"accessModes": modes},
        "status": {"phase": "Bound", "accessModes": modes},
    }
    return decode_json(PersistentVolumeClaim, json.dumps(obj).encode())


def _node(name: str, memory: str) -> Node:
    # NodeStatus.capacity/allocatable: ResourceList (k8s.io/api v0.31.0 core/v1/types.go).
    obj = {"metadata": {"name": name, "uid": f"uid-{name}"}, "status": {"capacity": {"cpu": "64", "memory": memory}}}
    return decode_json(Node, json.dumps(obj).encode())


def test_pvcs_share_one_list_per_distinct_access_modes():
    a, b = _pvc("a", ["ReadWriteMany"]), _pvc("b", ["ReadWriteMany"])
    c = _pvc("c", ["ReadWriteOnce", "ReadOnlyMany"])
    assert a.spec.access_modes == ["ReadWriteMany"] and a.spec.access_modes is b.spec.access_modes
    assert a.status.access_modes is b.spec.access_modes
    assert c.spec.access_modes == ["ReadWriteOnce", "ReadOnlyMany"]


def test_made_up_access_modes_keep_their_values_past_the_sharing_bound():
    pvcs = [_pvc(f"p{n}", [f"Mode{n}"]) for n in range(600)]
    assert [p.spec.access_modes for p in pvcs] == [[f"Mode{n}"] for n in range(600)]


def test_quantities_are_shared_and_hold_their_values():
    a, b = _node("a", "256Gi"), _node("b", "256Gi")
    assert a.status.capacity == {"cpu": 64, "memory": 256 * 2**30}
    assert a.status.capacity["memory"] is b.status.capacity["memory"]
    assert not hasattr(a.status.capacity["memory"], "__dict__")


def test_varying_quantities_keep_their_values_past_the_sharing_bound():
    nodes = [_node(f"n{n}", f"{n}Mi") for n in range(5_000)]
    assert [node.status.capacity["memory"] for node in nodes] == [n * 2**20 for n in range(5_000)]


def test_an_invalid_quantity_is_still_refused_with_its_path():
    try:
        _node("bad", "lots")
    except msgspec.ValidationError as exc:
        assert "invalid quantity 'lots'" in str(exc) and "$.status.capacity" in str(exc)
    else:
        raise AssertionError("an invalid quantity decoded")


def test_a_vm_its_vmi_and_its_pvc_share_their_names():
    # Fields as in kubevirt/kubevirt v1.7.0 staging/src/kubevirt.io/api/core/v1/types.go
    # (VirtualMachineInstanceSpec.volumes, VirtualMachineInstanceStatus.nodeName).
    def vmi(name: str) -> VirtualMachineInstance:
        claim = "".join(["disk-", name])  # built at run time: never the same object by chance
        obj = {
            "metadata": {"name": "".join(["vm-", name]), "namespace": "tenant-000", "uid": f"uid-{name}"},
            "spec": {"volumes": [{"name": "rootdisk", "persistentVolumeClaim": {"claimName": claim}}]},
            "status": {"nodeName": "".join(["worker-", "001"]), "phase": "Running"},
        }
        return decode_json(VirtualMachineInstance, json.dumps(obj).encode())

    a, b = vmi("a"), vmi("a")
    pvc = _pvc("disk-a", ["ReadWriteOnce"])
    assert a.metadata.name == "vm-a" and a.metadata.name is b.metadata.name
    assert a.spec.volumes[0].persistent_volume_claim.claim_name is pvc.metadata.name
    assert a.status.node_name == "worker-001" and a.status.node_name is b.status.node_name


def _vm(name: str, labels: dict[str, str], requests: dict[str, str]):
    # kubevirt/kubevirt v1.7.0 staging/src/kubevirt.io/api/core/v1/types.go: VirtualMachineSpec
    # (runStrategy, template), VirtualMachineInstanceSpec (domain.resources.requests, evictionStrategy).
    from ov_exporter.records import VirtualMachine

    obj = {
        "metadata": {"name": name, "namespace": "tenant-000", "uid": f"uid-{name}", "labels": labels},
        "spec": {
            "runStrategy": "".join(["Always"]),
            "template": {
                "metadata": {"labels": labels},
                "spec": {"domain": {"resources": {"requests": requests}}, "evictionStrategy": "".join(["LiveMigrate"])},
            },
        },
    }
    return decode_json(VirtualMachine, json.dumps(obj).encode())


def test_equal_maps_are_one_dict_with_the_values_each_record_was_given():
    cdi = {"app": "containerized-data-importer", "app.kubernetes.io/component": "storage"}
    a = _vm("a", {**cdi, "kubevirt.io/domain": "a"}, {"cpu": "2", "memory": "4Gi"})
    b = _vm("b", {**cdi, "kubevirt.io/domain": "b"}, {"cpu": "2", "memory": "4Gi"})
    c = _vm("c", {**cdi, "kubevirt.io/domain": "c"}, {"cpu": "4", "memory": "4Gi"})
    assert a.metadata.labels == {**cdi, "kubevirt.io/domain": "a"} and b.metadata.labels["kubevirt.io/domain"] == "b"
    assert a.spec.template.metadata.labels is a.metadata.labels  # a VM's template: its own labels
    requests = [v.spec.template.spec.domain.resources.requests for v in (a, b, c)]
    assert requests[0] == {"cpu": 2, "memory": 4 * 2**30} and requests[0] is requests[1]
    assert requests[2] == {"cpu": 4, "memory": 4 * 2**30}
    assert a.spec.run_strategy is b.spec.run_strategy
    assert a.spec.template.spec.eviction_strategy is c.spec.template.spec.eviction_strategy


def test_maps_unique_to_each_object_keep_their_values_and_repeated_ones_stay_shared():
    from ov_exporter.records.base import RECENT_MAPS_BOUND

    cdi = {"app": "containerized-data-importer"}
    vms = []
    for n in range(RECENT_MAPS_BOUND * 2 + 10):
        vms.append(_vm(f"u{n}", {"kubevirt.io/domain": f"u{n}"}, {"cpu": "1"}))
        vms.append(_vm(f"s{n}", cdi, {"cpu": "1"}))
    assert [v.metadata.labels for v in vms[::2]] == [{"kubevirt.io/domain": f"u{n}"} for n in range(len(vms) // 2)]
    # The table is emptied when full, so the repeated map is shared again right after.
    assert vms[-1].metadata.labels is vms[-3].metadata.labels == cdi


def _vmi_on(name: str, cores: int, masquerade: dict) -> VirtualMachineInstance:
    # kubevirt/kubevirt v1.7.0 staging/src/kubevirt.io/api/core/v1/types.go and schema.go:
    # VirtualMachineInstanceSpec.domain (cpu.cores, resources.requests, devices.interfaces with
    # the masquerade binding), networks (pod), VirtualMachineInstanceStatus.conditions.
    obj = {
        "metadata": {"name": name, "namespace": "tenant-000", "uid": f"uid-{name}"},
        "spec": {
            "domain": {
                "cpu": {"cores": cores},
                "resources": {"requests": {"memory": "4Gi"}},
                "devices": {"interfaces": [{"name": "default", "masquerade": masquerade}]},
            },
            "networks": [{"name": "default", "pod": {}}],
        },
        "status": {"phase": "Running", "conditions": [{"type": "LiveMigratable", "status": "True"}]},
    }
    return decode_json(VirtualMachineInstance, json.dumps(obj).encode())


def test_equal_domains_networks_and_conditions_are_one_object_each():
    a, b, c = _vmi_on("a", 4, {}), _vmi_on("b", 4, {}), _vmi_on("c", 8, {})
    assert a.spec.domain is b.spec.domain and a.spec.networks is b.spec.networks
    assert a.status.conditions is b.status.conditions and a.status.conditions[0].type == "LiveMigratable"
    assert c.spec.domain is not a.spec.domain and c.spec.domain.cpu.cores == 8 and a.spec.domain.cpu.cores == 4
    assert c.spec.networks is a.spec.networks  # a part equal elsewhere in the record is still shared
    x, y = _vm("x", {}, {"memory": "4Gi"}), _vm("y", {}, {"memory": "4Gi"})
    assert x.spec.template.spec.domain is y.spec.template.spec.domain  # VMs' templates too


def test_parts_unique_to_each_object_keep_their_values_and_repeated_ones_stay_shared():
    from ov_exporter.records.base import RECENT_MAPS_BOUND

    vmis = []
    for n in range(RECENT_MAPS_BOUND * 2 + 10):
        vmis += (_vmi_on(f"u{n}", n + 1, {}), _vmi_on(f"s{n}", 2, {}))
    assert [v.spec.domain.cpu.cores for v in vmis[::2]] == list(range(1, len(vmis) // 2 + 1))
    assert vmis[-1].spec.domain is vmis[-3].spec.domain and vmis[-1].spec.domain.cpu.cores == 2


def test_a_part_messagepack_cannot_hold_is_kept_unshared_with_its_value():
    # Hostile input, not an upstream shape: upstream's InterfaceMasquerade is an empty struct
    # (schema.go, kubevirt v1.3.0-v1.9.0), which records hold as a free-form map; one holding an
    # integer past 64 bits (as the damaged-cluster property test drew) is decoded, never shared.
    a, b = _vmi_on("a", 4, {"x": 2**70}), _vmi_on("b", 4, {"x": 2**70})
    assert a.spec.domain.devices.interfaces[0].masquerade == {"x": 2**70}
    assert a.spec.domain is not b.spec.domain and a.spec.domain == b.spec.domain
