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
