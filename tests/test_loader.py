"""Snapshot loading: every dump shape users have, and every way a file can be bad."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from ov_exporter.sources.files import MAX_YAML_ALIAS_EXPANSION, FileLoader, load_directory
from ov_exporter.store import Store


def write(root: Path, rel: str, text: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text))
    return path


def load(root: Path) -> Store:
    store = Store()
    load_directory(store.apply, root)
    return store


def names(store: Store, key: str) -> list[str]:
    return sorted(f"{r.metadata.namespace}/{r.metadata.name}" for r in store.state().of(key))


def test_oc_get_list_and_multi_document_yaml(tmp_path):
    write(
        tmp_path,
        "nodes.yaml",
        """
        apiVersion: v1
        kind: List
        items:
        - apiVersion: v1
          kind: Node
          metadata: {name: w1, uid: u1}
          status: {capacity: {cpu: "64", memory: 256Gi}}
        - apiVersion: v1
          kind: Node
          metadata: {name: w2, uid: u2}
        """,
    )
    write(
        tmp_path,
        "vms.yml",
        """
        ---
        apiVersion: kubevirt.io/v1
        kind: VirtualMachine
        metadata: {name: a, namespace: ns1}
        ---
        ---
        apiVersion: kubevirt.io/v1alpha3
        kind: VirtualMachine
        metadata: {name: b, namespace: ns2}
        """,
    )
    store = load(tmp_path)
    assert names(store, "nodes") == ["/w1", "/w2"]
    assert names(store, "virtualmachines.kubevirt.io") == ["ns1/a", "ns2/b"]
    node = next(n for n in store.state().nodes if n.metadata.name == "w1")
    assert node.status.capacity["memory"] == 256 * 2**30
    assert store.problems == []


def test_typed_list_items_without_kind(tmp_path):
    write(
        tmp_path,
        "pvcs.json",
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaimList",
                "items": [{"metadata": {"name": "p1", "namespace": "ns"}, "spec": {"accessModes": ["ReadWriteMany"]}}],
            }
        ),
    )
    store = load(tmp_path)
    assert names(store, "persistentvolumeclaims") == ["ns/p1"]


def test_must_gather_tree(tmp_path):
    write(
        tmp_path,
        "mg/cluster-scoped-resources/core/nodes/w1.yaml",
        """
        apiVersion: v1
        kind: Node
        metadata: {name: w1}
        """,
    )
    write(
        tmp_path,
        "mg/namespaces/vms/kubevirt.io/virtualmachines/db.yaml",
        """
        apiVersion: kubevirt.io/v1
        kind: VirtualMachine
        metadata: {name: db, namespace: vms}
        """,
    )
    write(
        tmp_path,
        "mg/namespaces/vms/core/persistentvolumeclaims.yaml",
        """
        apiVersion: v1
        kind: PersistentVolumeClaimList
        items:
        - metadata: {name: db-disk, namespace: vms}
          spec: {accessModes: [ReadWriteOnce]}
        """,
    )
    write(
        tmp_path,
        "mg/namespaces/vms/core/pods.yaml",
        """
        apiVersion: v1
        kind: PodList
        items:
        - metadata: {name: virt-launcher-db, namespace: vms}
        """,
    )
    store = load(tmp_path)
    assert names(store, "nodes") == ["/w1"]
    assert names(store, "virtualmachines.kubevirt.io") == ["vms/db"]
    assert names(store, "persistentvolumeclaims") == ["vms/db-disk"]
    assert store.ignored_counts() == {"kind v1/Pod": 1}


def test_insights_objects_without_kind_take_kind_and_namespace_from_path(tmp_path):
    write(
        tmp_path,
        "config/node/w1.json",
        json.dumps({"metadata": {"name": "w1"}, "status": {"nodeInfo": {"osImage": "Red Hat Enterprise Linux 8.10"}}}),
    )
    write(tmp_path, "config/storageclasses/fast.json", json.dumps({"metadata": {"name": "fast"}, "provisioner": "x"}))
    write(
        tmp_path,
        "namespaces/vms/kubevirt.io/virtualmachineinstances/db.json",
        json.dumps({"metadata": {"name": "db"}, "status": {"nodeName": "w1", "phase": "Running"}}),
    )
    write(
        tmp_path,
        "cluster-scoped-resources/operator.openshift.io/networks/cluster.json",
        json.dumps({"metadata": {"name": "cluster"}}),
    )
    write(
        tmp_path,
        "cluster-scoped-resources/config.openshift.io/networks/cluster.json",
        json.dumps({"metadata": {"name": "cluster"}, "status": {"clusterNetworkMTU": 1400}}),
    )
    store = load(tmp_path)
    assert names(store, "nodes") == ["/w1"]
    assert names(store, "storageclasses.storage.k8s.io") == ["/fast"]
    assert names(store, "virtualmachineinstances.kubevirt.io") == ["vms/db"]
    # operator.openshift.io/networks is a different kind; only config.openshift.io is read
    assert [n.status.cluster_network_mtu for n in store.state().cluster_networks] == [1400]


def test_top_level_json_array(tmp_path):
    write(tmp_path, "config/nodes.json", json.dumps([{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}]))
    assert names(load(tmp_path), "nodes") == ["/a", "/b"]


def test_malformed_files_are_reported_and_the_rest_loads(tmp_path):
    write(tmp_path, "good.yaml", "apiVersion: v1\nkind: Node\nmetadata: {name: ok}\n")
    write(tmp_path, "broken.yaml", "apiVersion: v1\nkind: Node\nmetadata: {name: [unclosed\n")
    write(tmp_path, "log.json", '{"level":"info"}\n{"level":"warn"}\n')
    write(tmp_path, "template.yaml", "apiVersion: v1\nkind: Node\nmetadata:\n  name: {{ .Name }}\n")
    write(tmp_path, "empty.yaml", "")
    write(tmp_path, "cert.yaml", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    store = load(tmp_path)
    assert names(store, "nodes") == ["/ok"]
    problems = {p.where: p.message for p in store.problems}
    assert set(problems) == {"broken.yaml", "log.json", "template.yaml"}
    assert problems["broken.yaml"].startswith("invalid YAML:") and "line" in problems["broken.yaml"]
    assert problems["log.json"].startswith("invalid JSON:")


def test_bad_field_names_object_and_field_and_spares_the_others(tmp_path):
    write(
        tmp_path,
        "vmis.yaml",
        """
        apiVersion: v1
        kind: List
        items:
        - apiVersion: kubevirt.io/v1
          kind: VirtualMachineInstance
          metadata: {name: bad, namespace: ns}
          spec: {domain: {cpu: {cores: many}}}
        - apiVersion: kubevirt.io/v1
          kind: VirtualMachineInstance
          metadata: {name: huge, namespace: ns}
          spec: {domain: {cpu: {cores: 4294967296}}}
        - apiVersion: kubevirt.io/v1
          kind: VirtualMachineInstance
          metadata: {name: badmem, namespace: ns}
          spec: {domain: {memory: {guest: 16 gigs}}}
        - apiVersion: kubevirt.io/v1
          kind: VirtualMachineInstance
          metadata: {name: good, namespace: ns, annotations: null}
          spec: {domain: {cpu: {cores: "4"}}}
          status: null
        """,
    )
    store = load(tmp_path)
    # Each object is kept without its bad field, so the checks still judge the rest of it.
    assert names(store, "virtualmachineinstances.kubevirt.io") == ["ns/bad", "ns/badmem", "ns/good", "ns/huge"]
    problems = {p.where: p.message for p in store.problems}
    assert set(problems) == {"vmis.yaml items[0]", "vmis.yaml items[1]", "vmis.yaml items[2]"}
    assert problems["vmis.yaml items[0]"].startswith("VirtualMachineInstance ns/bad kept without 1 field(s)")
    assert "`$.spec.domain.cpu.cores`" in problems["vmis.yaml items[0]"]
    # 2**32 is over the uint32 of KubeVirt's CPU.Cores
    assert "`$.spec.domain.cpu.cores`: Expected `int` <= 4294967295" in problems["vmis.yaml items[1]"]
    assert "`$.spec.domain.memory.guest`: invalid quantity '16 gigs'" in problems["vmis.yaml items[2]"]
    vmis = {v.metadata.name: v for v in store.state().vmis}
    assert vmis["good"].spec.domain.cpu.cores == 4
    assert vmis["bad"].spec.domain.cpu is not None and vmis["bad"].spec.domain.cpu.cores is None
    assert vmis["badmem"].spec.domain.memory.guest is None


def test_object_without_name_is_reported(tmp_path):
    write(tmp_path, "n.yaml", "apiVersion: v1\nkind: Node\nmetadata: {}\n")
    store = load(tmp_path)
    assert [p.message for p in store.problems] == ["Node has no metadata.name; skipped"]


def test_unknown_kinds_are_ignored_and_counted(tmp_path):
    write(
        tmp_path,
        "x.yaml",
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: d}
        ---
        apiVersion: v1
        kind: Secret
        metadata: {name: s}
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: e}
        """,
    )
    store = load(tmp_path)
    assert store.ignored_counts() == {"kind apps/v1/Deployment": 2, "kind v1/Secret": 1}
    assert store.problems == []


def test_alias_bomb_is_refused(tmp_path):
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    lines += [
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}]"
        for i in range(12)
    ]
    write(tmp_path, "bomb.yaml", "\n".join(lines) + "\n")
    write(tmp_path, "ok.yaml", "apiVersion: v1\nkind: Node\nmetadata: {name: fine}\n")
    store = load(tmp_path)
    assert names(store, "nodes") == ["/fine"]
    [problem] = store.problems
    assert problem.where == "bomb.yaml" and f"limit {MAX_YAML_ALIAS_EXPANSION}" in problem.message


def test_a_few_aliases_are_fine(tmp_path):
    write(
        tmp_path,
        "n.yaml",
        """
        apiVersion: v1
        kind: Node
        metadata: {name: w1, labels: &l {a: b}, annotations: *l}
        """,
    )
    store = load(tmp_path)
    assert store.state().nodes[0].metadata.annotations == {"a": "b"}


def test_size_cap(tmp_path):
    write(tmp_path, "big.yaml", "apiVersion: v1\nkind: Node\nmetadata: {name: big}\n" + "#" * 2000 + "\n")
    store = Store()
    FileLoader(store.apply, tmp_path, max_file_bytes=1000).load_tree()
    [problem] = store.problems
    assert problem.where == "big.yaml" and "over the 1000-byte cap" in problem.message
    assert store.counts()["nodes"] == 0


def test_yaml_timestamps_and_unquoted_scalars(tmp_path):
    write(
        tmp_path,
        "vmi.yaml",
        """
        apiVersion: kubevirt.io/v1
        kind: VirtualMachineInstance
        metadata: {name: v, namespace: ns, creationTimestamp: 2024-05-01T10:00:00Z}
        status:
          migrationState: {startTimestamp: 2024-05-01T10:00:00Z, completed: "true"}
        """,
    )
    store = load(tmp_path)
    state = store.state()
    assert state.vmis[0].status.migration_state.start_timestamp.year == 2024
    assert state.vmis[0].status.migration_state.completed is True


def test_dirty_rate_samples_from_exposition_and_query_json(tmp_path):
    write(
        tmp_path,
        "metrics/dirty.prom",
        """
        # HELP kubevirt_vmi_dirty_rate_bytes_per_second Dirty rate
        # TYPE kubevirt_vmi_dirty_rate_bytes_per_second gauge
        kubevirt_vmi_dirty_rate_bytes_per_second{namespace="ns",name="a",node="w1"} 1048576
        some_other_metric 1
        """,
    )
    write(
        tmp_path,
        "metrics/query.json",
        json.dumps(
            {
                "status": "success",
                "data": {
                    "resultType": "vector",
                    "result": [
                        {
                            "metric": {
                                "__name__": "kubevirt_vmi_migration_dirty_memory_rate_bytes",
                                "namespace": "ns",
                                "name": "b",
                            },
                            "value": [1700000000.5, "2048"],
                        },
                        {"metric": {"__name__": "kubevirt_vmi_migration_dirty_memory_rate_bytes"}, "value": "garbage"},
                    ],
                },
            }
        ),
    )
    store = load(tmp_path)
    samples = store.state().samples
    assert [(s.labels["name"], s.value) for s in samples["kubevirt_vmi_dirty_rate_bytes_per_second"]] == [
        ("a", 1048576.0)
    ]
    assert [
        (s.labels["name"], s.value, s.timestamp) for s in samples["kubevirt_vmi_migration_dirty_memory_rate_bytes"]
    ] == [("b", 2048.0, 1700000000.5)]
    assert "some_other_metric" not in samples
    assert [p.where for p in store.problems] == ["metrics/query.json data.result[1]"]


def test_no_sample_files_means_no_metric_source(tmp_path):
    write(tmp_path, "n.yaml", "apiVersion: v1\nkind: Node\nmetadata: {name: w1}\n")
    assert load(tmp_path).state().samples is None


def test_malformed_exposition_is_reported(tmp_path):
    write(tmp_path, "bad.prom", 'kubevirt_vmi_dirty_rate_bytes_per_second{namespace="x" 12\n')
    store = load(tmp_path)
    assert [p.where for p in store.problems] == ["bad.prom"]
    assert store.problems[0].message.startswith("invalid Prometheus text format")


def test_missing_directory_is_an_error(tmp_path):
    with pytest.raises(NotADirectoryError, match="does-not-exist"):
        load_directory(Store(), tmp_path / "does-not-exist")


def test_null_strings_are_absent_not_fatal(tmp_path):
    write(
        tmp_path,
        "insights/vmi.json",
        json.dumps(
            {
                "apiVersion": "kubevirt.io/v1",
                "kind": "VirtualMachineInstance",
                "metadata": {"name": "v", "namespace": "ns", "uid": None},
                "status": {"nodeName": None, "phase": "Running", "migrationState": None},
            }
        ),
    )
    store = load(tmp_path)
    assert store.problems == []
    [vmi] = store.state().vmis
    assert vmi.status.node_name == "" and vmi.status.phase == "Running"


def test_label_selector_of_a_kind_filters_snapshot_objects(tmp_path):
    """Pods are read only as virt-handler pods (KindInfo.label_selector), from files as from the API."""
    write(
        tmp_path,
        "mg/namespaces/openshift-cnv/core/pods.yaml",
        """
        apiVersion: v1
        kind: PodList
        items:
        - metadata: {name: virt-handler-a, namespace: openshift-cnv, labels: {kubevirt.io: virt-handler}}
          spec: {nodeName: w1}
        - metadata: {name: virt-launcher-b, namespace: openshift-cnv, labels: {kubevirt.io: virt-launcher}}
        - metadata: {name: unlabelled, namespace: openshift-cnv}
        """,
    )
    store = load(tmp_path)
    assert names(store, "pods") == ["openshift-cnv/virt-handler-a"]
    assert store.ignored_counts() == {"kind v1/Pod": 2}


def test_selector_matches_equality_terms():
    from ov_exporter.records import selector_matches

    assert selector_matches("kubevirt.io=virt-handler", {"kubevirt.io": "virt-handler", "x": "y"})
    assert not selector_matches("kubevirt.io=virt-handler", {"kubevirt.io": "virt-launcher"})
    assert not selector_matches("kubevirt.io=virt-handler", None)
    assert selector_matches("a==1,b!=2", {"a": "1", "b": "3"})
    assert not selector_matches("a==1,b!=2", {"a": "1", "b": "2"})
    assert selector_matches("a", {"a": ""}) and not selector_matches("a", {})
    assert selector_matches("", {})
