"""Hostile and broken input for the file loader (issue 12): nothing a file holds can stop
a load, hang it or make it lie. Each test reproduces one reported fault first."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ov_exporter.checks import CHECK_IDS
from ov_exporter.config import Config
from ov_exporter.records import MAX_DEPTH, MAX_OBJECT_BYTES, ObjectLimitError, VirtualMachineInstance, decode_json
from ov_exporter.runner import evaluate
from ov_exporter.sources.files import MAX_YAML_ALIAS_EXPANSION, FileLoader, layout_of
from ov_exporter.store import Store

from .test_loader import load, write

VMI_KEY = "virtualmachineinstances.kubevirt.io"


def problems(store: Store) -> dict[str, str]:
    return {p.where: p.message for p in store.problems}


LOAD_IN_CHILD = """
import json, sys
from pathlib import Path
from ov_exporter.sources.files import load_directory
from ov_exporter.store import Store
store = Store()
loader = load_directory(store.apply, Path(sys.argv[1]))
print(json.dumps({"counts": {k: n for k, n in store.counts().items() if n},
                  "problems": {p.where: p.message for p in store.problems},
                  "ignored": store.ignored_counts(), "failed_files": loader.stats.failed_files}))
"""


def load_in_child(root: Path, timeout: float = 30) -> dict:
    """Load in a subprocess: a regression that hangs fails the test instead of the suite."""
    proc = subprocess.run(
        [sys.executable, "-c", LOAD_IN_CHILD, str(root)], capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def node(name: str, **status) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "status": status}


# ---------------------------------------------------------------- YAML aliases


def alias_bomb(levels: int = 9, fanout: int = 10) -> str:
    """~500 bytes, levels*fanout-1 aliases (89 by default), fanout**levels objects once expanded,
    all under `items` of a List."""
    lines = ["apiVersion: v1", "kind: List", "x0: &a0 [{apiVersion: v1, kind: Namespace, metadata: {name: n}}]"]
    for i in range(1, levels):
        lines.append(f"x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * fanout) + "]")
    lines.append(f"items: [{', '.join([f'*a{levels - 1}'] * (fanout - 1))}]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_under_items_is_refused_without_hanging(tmp_path):
    bomb = alias_bomb()
    assert len(bomb) < 700 and bomb.count("*a") == 89  # the reported 495-byte, 89-alias shape
    write(tmp_path, "bomb.yaml", bomb)
    write(tmp_path, "ok.yaml", "apiVersion: v1\nkind: Node\nmetadata: {name: fine}\n")
    started = time.monotonic()
    result = load_in_child(tmp_path)
    assert time.monotonic() - started < 20
    assert result["counts"] == {"nodes": 1}
    assert f"limit {MAX_YAML_ALIAS_EXPANSION}" in result["problems"]["bomb.yaml"]


def test_recursive_alias_is_refused(tmp_path):
    write(tmp_path, "loop.yaml", "apiVersion: v1\nkind: List\nitems: &a [*a]\n")
    result = load_in_child(tmp_path)
    assert "recursive alias" in result["problems"]["loop.yaml"] and result["counts"] == {}


def test_aliases_that_expand_a_little_are_loaded(tmp_path):
    items = "\n".join(f"- {{apiVersion: v1, kind: Node, metadata: {{name: n{i}, labels: *l}}}}" for i in range(50))
    write(tmp_path, "nodes.yaml", "apiVersion: v1\nkind: List\nlabels: &l {role: worker, zone: a}\nitems:\n" + items)
    store = load(tmp_path)
    assert store.counts()["nodes"] == 50 and store.problems == []
    assert all(n.metadata.labels == {"role": "worker", "zone": "a"} for n in store.state().nodes)


# ---------------------------------------------------------------- special files and symlinks


def test_symlink_to_dev_zero_is_refused(tmp_path):
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")
    write(tmp_path, "ok.yaml", "apiVersion: v1\nkind: Node\nmetadata: {name: fine}\n")
    result = load_in_child(tmp_path)
    assert result["counts"] == {"nodes": 1}
    assert result["problems"] == {"zero.yaml": "symlink to /dev/zero, outside the snapshot directory; skipped"}


def test_fifo_does_not_hang_the_loader(tmp_path):
    os.mkfifo(tmp_path / "pipe.yaml")
    write(tmp_path, "ok.yaml", "apiVersion: v1\nkind: Node\nmetadata: {name: fine}\n")
    result = load_in_child(tmp_path, timeout=20)
    assert result["counts"] == {"nodes": 1}
    assert result["problems"] == {"pipe.yaml": "not a regular file (a FIFO); skipped"}


def test_symlinks_outside_the_root_are_refused_inside_read_once(tmp_path):
    outside = write(tmp_path, "outside/secret.yaml", "apiVersion: v1\nkind: Node\nmetadata: {name: secret}\n")
    root = tmp_path / "snap"
    write(root, "a/nodes.yaml", "apiVersion: v1\nkind: Node\nmetadata: {name: inside}\n")
    (root / "escape.yaml").symlink_to(outside)
    (root / "b.yaml").symlink_to(root / "a" / "nodes.yaml")  # read as a/nodes.yaml already is
    (root / "dir").symlink_to(tmp_path / "outside", target_is_directory=True)
    store = load(root)
    assert [n.metadata.name for n in store.state().nodes] == ["inside"]
    assert problems(store) == {
        "escape.yaml": f"symlink to {outside.resolve()}, outside the snapshot directory; skipped"
    }
    assert store.ignored_counts() == {"link to a file already read": 1, "symlinked directory (not followed)": 1}


def test_size_cap_is_enforced_while_reading(tmp_path, monkeypatch):
    write(tmp_path, "big.yaml", "apiVersion: v1\nkind: Node\nmetadata: {name: big}\n" + "#" * 5000 + "\n")
    reads: list[int] = []
    real_read = os.read

    def counting_read(fd, n):
        data = real_read(fd, n)
        reads.append(len(data))
        return data

    monkeypatch.setattr(os, "read", counting_read)
    store = Store()
    FileLoader(store.apply, tmp_path, max_file_bytes=1000).load_tree()
    assert problems(store) == {"big.yaml": "file is over the 1000-byte cap; skipped"}
    assert sum(reads) <= 1001  # never more than cap + 1 bytes read


# ---------------------------------------------------------------- bad fields keep the object


def control_plane_with_vmi(capacity_cpu: str) -> str:
    return f"""
        apiVersion: v1
        kind: List
        items:
        - apiVersion: v1
          kind: Node
          metadata: {{name: master-0, labels: {{node-role.kubernetes.io/control-plane: ""}}}}
          status: {{capacity: {{cpu: {capacity_cpu}, memory: 64Gi}}}}
        - apiVersion: v1
          kind: Node
          metadata: {{name: worker-0, labels: {{node-role.kubernetes.io/worker: ""}}}}
        - apiVersion: kubevirt.io/v1
          kind: VirtualMachineInstance
          metadata: {{name: db, namespace: prod}}
          status: {{nodeName: master-0, phase: Running}}
        """


@pytest.mark.parametrize("cpu", ["1e400", "abc", '"-4"', "-5Gi", ".nan"])
def test_bad_node_quantity_drops_the_field_and_keeps_the_node_and_its_finding(tmp_path, cpu):
    write(tmp_path, "objects.yaml", control_plane_with_vmi(cpu))
    store = load(tmp_path)
    node_ = store.state().get("nodes", "", "master-0")
    assert node_.status.capacity == {"memory": 64 * 2**30}  # cpu dropped, memory kept
    [(where, message)] = problems(store).items()
    assert where == "objects.yaml items[0]"
    assert message.startswith("Node master-0 kept without 1 field(s)") and "`$.status.capacity.cpu`" in message
    result = evaluate(store.state(), Config()).result("control_plane_vm_workloads")
    assert [(f.obj.name, str(f.severity)) for f in result.findings] == [("master-0", "warning")]


def test_bad_guest_memory_keeps_the_vm_and_its_finding(tmp_path):
    write(
        tmp_path,
        "vm.yaml",
        """
        apiVersion: v1
        kind: List
        items:
        - apiVersion: kubevirt.io/v1
          kind: VirtualMachine
          metadata: {name: db, namespace: prod}
          spec:
            template:
              spec:
                evictionStrategy: LiveMigrate
                domain: {memory: {guest: abc}}
                volumes: [{name: d, persistentVolumeClaim: {claimName: db-disk}}]
        - apiVersion: v1
          kind: PersistentVolumeClaim
          metadata: {name: db-disk, namespace: prod}
          spec: {accessModes: [ReadWriteOnce]}
        """,
    )
    store = load(tmp_path)
    assert "`$.spec.template.spec.domain.memory.guest`: invalid quantity 'abc'" in problems(store)["vm.yaml items[0]"]
    result = evaluate(store.state(), Config()).result("rwo_vm_disks")
    assert [(f.obj.name, str(f.severity)) for f in result.findings] == [("db", "info")]


def test_negative_quantities_are_problems_not_values(tmp_path):
    write(tmp_path, "n.json", json.dumps(node("w1", capacity={"memory": "-5Gi", "cpu": -3, "pods": "110"})))
    store = load(tmp_path)
    [n] = store.state().nodes
    assert n.status.capacity == {"pods": 110}
    message = problems(store)["n.json"]
    assert "kept without 2 field(s)" in message and "'-5Gi' is negative" in message and "'-3' is negative" in message


def test_integer_bounds_follow_the_upstream_types(tmp_path):
    """completionTimeoutPerGiB is *int64 and CPU cores uint32 in KubeVirt (v1.7.0
    staging/src/kubevirt.io/api/core/v1/types.go, schema.go): values a cluster can hold
    are kept whole; a value no upstream type holds drops that field only."""
    write(
        tmp_path,
        "kv.yaml",
        f"""
        apiVersion: kubevirt.io/v1
        kind: KubeVirt
        metadata: {{name: kubevirt, namespace: openshift-cnv}}
        spec:
          configuration:
            migrations: {{completionTimeoutPerGiB: 2000000, progressTimeout: {2**63 - 1},
                          parallelMigrationsPerCluster: {2**32}}}
        """,
    )
    write(
        tmp_path,
        "vmi.yaml",
        """
        apiVersion: kubevirt.io/v1
        kind: VirtualMachineInstance
        metadata: {name: v, namespace: ns}
        spec: {domain: {cpu: {cores: 4294967295, sockets: 4294967296}}}
        """,
    )
    store = load(tmp_path)
    [kv] = store.state().kubevirts
    migrations = kv.spec.configuration.migrations
    assert (migrations.completion_timeout_per_gib, migrations.progress_timeout) == (2000000, 2**63 - 1)
    assert migrations.parallel_migrations_per_cluster is None
    [vmi] = store.state().vmis
    assert (vmi.spec.domain.cpu.cores, vmi.spec.domain.cpu.sockets) == (2**32 - 1, None)
    assert set(problems(store)) == {"kv.yaml", "vmi.yaml"}
    assert "`$.spec.configuration.migrations.parallelMigrationsPerCluster`" in problems(store)["kv.yaml"]


def test_many_bad_fields_each_named(tmp_path):
    write(
        tmp_path,
        "n.yaml",
        """
        apiVersion: v1
        kind: Node
        metadata: {name: w1, labels: {a: [1], b: ok}, annotations: 5}
        spec: {taints: [{key: k, effect: NoSchedule}, oops], unschedulable: maybe}
        status: {capacity: {cpu: "8"}, allocatable: {cpu: x, memory: 1Gi}}
        """,
    )
    store = load(tmp_path)
    [n] = store.state().nodes
    assert n.metadata.labels == {"b": "ok"} and [t.key for t in n.spec.taints] == ["k"]
    assert n.status.allocatable == {"memory": 2**30} and n.status.capacity == {"cpu": 8}
    message = problems(store)["n.yaml"]
    for path in (
        "$.metadata.labels.a",
        "$.metadata.annotations",
        "$.spec.taints[1]",
        "$.spec.unschedulable",
        "$.status.allocatable.cpu",
    ):
        assert f"`{path}`" in message, (path, message)


# ---------------------------------------------------------------- depth and size


def deep(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"x": value}
    return value


def test_deep_object_is_a_problem_on_that_object_only(tmp_path):
    items = [
        {
            "apiVersion": "nmstate.io/v1",
            "kind": "NodeNetworkConfigurationPolicy",
            "metadata": {"name": "deep"},
            "spec": {"desiredState": deep(MAX_DEPTH + 50)},
        },
        {
            "apiVersion": "nmstate.io/v1",
            "kind": "NodeNetworkConfigurationPolicy",
            "metadata": {"name": "fine"},
            "spec": {"desiredState": deep(20)},
        },
    ]
    write(tmp_path, "nncps.yaml", yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
    store = load(tmp_path)
    assert [p.metadata.name for p in store.state().of("nodenetworkconfigurationpolicies.nmstate.io")] == ["fine"]
    assert problems(store) == {
        "nncps.yaml items[0]": f"NodeNetworkConfigurationPolicy: nested more than "
        f"{MAX_DEPTH} levels deep; object skipped"
    }


@pytest.mark.parametrize("depth", [1000, 100_000])
def test_deep_json_object_raises_a_validation_error_not_recursion(depth):
    """decode_json (also what the live source calls per object) never raises RecursionError."""
    data = (
        b'{"metadata":{"name":"x"},"spec":{"domain":{"devices":{"interfaces":[{"bridge":{"x":'
        + b"[" * depth
        + b"]" * depth
        + b"}}]}}}}"
    )
    with pytest.raises(ObjectLimitError, match="nested too deeply"):
        decode_json(VirtualMachineInstance, data)
    assert issubclass(ObjectLimitError, msgspec.ValidationError)


def test_deep_json_file_is_one_problem_and_the_rest_loads(tmp_path):
    write(
        tmp_path,
        "deep.json",
        b'{"kind":"Node","apiVersion":"v1","metadata":{"name":"d"},"x":' + b"[" * 5000 + b"]" * 5000 + b"}",
    )
    write(tmp_path, "ok.json", json.dumps(node("fine")))
    result = load_in_child(tmp_path)
    assert result["counts"] == {"nodes": 1}
    assert "nested too deeply" in next(iter(result["problems"].values()))


def test_oversized_objects_are_skipped_one_by_one(tmp_path):
    huge = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "huge", "annotations": {"a": "x" * (MAX_OBJECT_BYTES + 10)}},
    }
    write(
        tmp_path,
        "nodes.yaml",
        yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [huge, node("ok")]}, width=2**31),
    )
    with pytest.raises(ObjectLimitError, match=f"over the {MAX_OBJECT_BYTES}-byte limit"):
        decode_json(VirtualMachineInstance, json.dumps(huge).encode())
    store = load(tmp_path)
    assert [n.metadata.name for n in store.state().nodes] == ["ok"]
    assert f"more than {MAX_OBJECT_BYTES} bytes" in problems(store)["nodes.yaml items[0]"]


# ---------------------------------------------------------------- duplicates


VM = """
apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata: {{name: db, namespace: prod{uid}}}
spec:
  template:
    spec:
      evictionStrategy: {strategy}
      volumes: [{{name: d, persistentVolumeClaim: {{claimName: db-disk}}}}]
"""
PVC = (
    "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: db-disk, namespace: prod}\n"
    "spec: {accessModes: [ReadWriteOnce]}\n"
)


@pytest.mark.parametrize("uids", [("", ""), (", uid: u1", ", uid: u2")])
def test_same_object_from_two_files_is_one_object_and_a_problem_naming_both(tmp_path, uids):
    write(tmp_path, "base/vm.yaml", VM.format(uid=uids[0], strategy="LiveMigrate"))
    write(tmp_path, "overlay/vm.yaml", "# patched\n" + VM.format(uid=uids[1], strategy="None"))
    write(tmp_path, "pvc.yaml", PVC)
    store = load(tmp_path)
    [vm] = store.state().vms
    assert vm.spec.template.spec.eviction_strategy == "LiveMigrate"
    assert problems(store) == {
        "overlay/vm.yaml": "VirtualMachine prod/db is defined twice, differently: at "
        "base/vm.yaml:2 and at overlay/vm.yaml:3; kept the one at "
        "base/vm.yaml:2 (first in path order), ignored this one"
    }
    result = evaluate(store.state(), Config()).result("rwo_vm_disks")
    assert [f.obj.name for f in result.findings] == ["db"]  # one finding, one series
    assert len([s for s in result.samples if s.obj is not None and s.obj.name == "db"]) == 1


def test_identical_duplicates_are_counted_not_problems(tmp_path):
    write(tmp_path, "a.yaml", PVC)
    write(tmp_path, "b.yaml", PVC)
    store = load(tmp_path)
    assert store.counts()["persistentvolumeclaims"] == 1 and store.problems == []
    assert store.ignored_counts() == {"identical duplicate object": 1}


# ---------------------------------------------------------------- layouts and non-objects


def test_other_kinds_under_namespaces_are_not_phantom_namespaces(tmp_path):
    write(tmp_path, "namespaces/vms/apps/deployments/web.json", json.dumps({"metadata": {"name": "web"}}))
    write(tmp_path, "namespaces/vms/kubevirt.io/virtualmachines/db.json", json.dumps({"metadata": {"name": "db"}}))
    write(tmp_path, "namespaces/vms/vms.yaml", "metadata: {name: vms}\n")
    write(
        tmp_path,
        "namespaces/vms/pods/virt-handler-a/virt-handler-a.yaml",
        "metadata: {name: virt-handler-a, labels: {kubevirt.io: virt-handler}}\n",
    )
    write(tmp_path, "config/storage/storageclasses/fast.json", json.dumps({"metadata": {"name": "fast"}}))
    write(
        tmp_path,
        "config/pod/openshift-cnv/virt-handler-b.json",
        json.dumps({"metadata": {"name": "virt-handler-b", "labels": {"kubevirt.io": "virt-handler"}}}),
    )
    store = load(tmp_path)
    state = store.state()
    assert [n.metadata.name for n in state.namespaces] == ["vms"]
    assert [(v.metadata.namespace, v.metadata.name) for v in state.vms] == [("vms", "db")]
    assert sorted((p.metadata.namespace, p.metadata.name) for p in state.of("pods")) == [
        ("openshift-cnv", "virt-handler-b"),
        ("vms", "virt-handler-a"),
    ]
    assert [s.metadata.name for s in state.storage_classes] == ["fast"]
    assert store.ignored_counts() == {"no kind": 1} and store.problems == []


@pytest.mark.parametrize(
    "rel, kind, namespace",
    [
        ("must-gather/namespaces/ns1/core/persistentvolumeclaims.yaml", "PersistentVolumeClaim", "ns1"),
        ("mg/cluster-scoped-resources/core/nodes/w1.yaml", "Node", None),
        ("cluster-scoped-resources/nmstate.io/nodenetworkstates/w1.json", "NodeNetworkState", None),
        ("namespaces/ns1/metrics.k8s.io/pods/p.yaml", "PodMetrics", "ns1"),
        ("config/node/w1.json", "Node", None),
        ("config/machinehealthchecks/openshift-machine-api/mhc.json", "MachineHealthCheck", "openshift-machine-api"),
        ("namespaces/config/kubevirt.io/virtualmachines/a.yaml", "VirtualMachine", "config"),
        ("nodes.yaml", "Node", None),
        ("namespaces/ns1/apps/deployments/namespace.json", None, None),
        ("namespaces/ns1/foo/bar/baz/node.json", None, None),
        ("cluster-scoped-resources/core/persistentvolumeclaims/p.yaml", None, None),  # namespaced kind, no namespace
        ("random/dir/nodes/w1.yaml", None, None),
    ],
)
def test_layouts_are_recognised_by_their_documented_structure(rel, kind, namespace):
    got_kind, got_namespace = layout_of(Path(rel))
    assert (got_kind.kind if got_kind else None, got_namespace) == (kind, namespace)


@pytest.mark.parametrize(
    "text, shape", [('"just a string"', "string"), ("42", "number"), ("true", "boolean"), ("null", "null")]
)
def test_non_object_json_is_reported_as_such(tmp_path, text, shape):
    write(tmp_path, "x.json", text)
    store = load(tmp_path)
    assert store.problems == []
    assert store.ignored_counts() == {f"not an object (JSON {shape})": 1}


# ---------------------------------------------------------------- a generated corpus


def corpus() -> dict[str, bytes]:
    """Every hostile shape at once, generated (megabytes: never committed)."""
    ok = yaml.safe_dump(node("ok", capacity={"cpu": "8"})).encode()
    return {
        "bomb.yaml": alias_bomb().encode(),
        "bomb2.yaml": alias_bomb(levels=20, fanout=2).encode(),
        "loop.yaml": b"a: &a [*a, *a]\n",
        "deep-flow.yaml": b"kind: Node\nmetadata: {name: d}\nspec: " + b"[" * 20000 + b"]" * 20000,
        "deep-block.yaml": b"kind: Node\nmetadata: {name: d}\nspec:\n"
        + b"".join(b"  " * i + b"- \n" for i in range(1, 3000)),
        "deep.json": b'{"kind":"Node","metadata":{"name":"d"},"spec":' + b"[" * 200000 + b"]" * 200000 + b"}",
        "deep-list.json": b"[" * 100000 + b"]" * 100000,
        "nested-lists.yaml": b"- " * 500 + b"x\n",
        "huge-number.json": json.dumps(node("h", capacity={"cpu": "9" * 5000})).encode(),
        "huge-int.json": b'{"kind":"Node","apiVersion":"v1","metadata":{"name":"i"},"status":{"capacity":{"cpu":'
        + b"9" * 5000
        + b"}}}",
        "nan.yaml": b"kind: Node\napiVersion: v1\nmetadata: {name: nan}\n"
        b"status: {capacity: {cpu: .nan, memory: .inf}}\n",
        "binary.yaml": bytes(range(256)) * 4,
        "bom.json": b"\xef\xbb\xbf" + json.dumps(node("bom")).encode(),
        "invalid-utf8.yaml": b"kind: Node\nmetadata: {name: \xff\xfe}\n",
        "nul.json": b'{"kind":"Node","metadata":{"name":"a\x00b"}}',
        "long-key.yaml": b"kind: Node\nmetadata: {name: k, labels: {" + b"k" * 200000 + b": v}}\n",
        "many-docs.yaml": b"---\n" * 20000 + ok,
        "many-items.json": json.dumps({"kind": "List", "items": [node(f"n{i % 50}") for i in range(5000)]}).encode(),
        "wrong-types.yaml": b"kind: Node\napiVersion: v1\nmetadata: [a, b]\nspec: 5\nstatus: x\n",
        "items-not-list.yaml": b"kind: List\napiVersion: v1\nitems: {a: 1}\n",
        "tag.yaml": b"kind: Node\nmetadata: {name: !!python/object:os.system x}\n",
        "metrics.prom": b'kubevirt_vmi_dirty_rate_bytes_per_second{a="' + b"x" * 100000 + b'"} NaN\n',
        "ok.yaml": ok,
    }


def test_generated_corpus_loads_fast_and_accounts_for_everything(tmp_path):
    files = corpus()
    for name, data in files.items():
        write(tmp_path, name, data)
    started = time.monotonic()
    result = load_in_child(tmp_path, timeout=120)
    elapsed = time.monotonic() - started
    assert elapsed < 60, elapsed
    for where, message in result["problems"].items():
        assert where.split(" ")[0] in files, where
        assert "RecursionError" not in message and "MemoryError" not in message, (where, message)
    for name in ("bomb.yaml", "bomb2.yaml", "loop.yaml", "deep.json", "deep-list.json", "binary.yaml"):
        assert any(w.split(" ")[0] == name for w in result["problems"]), name
    # One out-of-range number drops one field, never the object or the file.
    for name, ref in (("huge-int.json", "Node i"), ("huge-number.json", "Node h"), ("nan.yaml", "Node nan")):
        assert result["problems"][name].startswith(f"{ref} kept without"), result["problems"][name]
    assert "bom.json" not in result["problems"]
    assert result["counts"] == {"nodes": 50 + 5}  # n0..n49, ok, bom, h, i, nan


# ---------------------------------------------------------------- properties: nesting and aliasing


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
leaves = st.one_of(
    st.none(),
    st.integers(-(2**70), 2**70),
    st.text(max_size=6),
    st.sampled_from(["1Gi", "-1Gi", "1e400", "abc", ".5", "nan", "4294967296"]),
)


@st.composite
def nested(draw):
    """A value nested 0..2*MAX_DEPTH levels deep, alternating maps and lists."""
    depth = draw(st.integers(0, 2 * MAX_DEPTH))
    value = draw(leaves)
    for _ in range(depth):
        value = [value] if draw(st.booleans()) else {draw(st.sampled_from(["spec", "x", "domain"])): value}
    return depth, value


@SETTINGS
@given(data=nested(), where=st.sampled_from(["spec", "status", "metadata"]), as_json=st.booleans())
def test_any_nesting_is_loaded_or_one_problem(tmp_path_factory, data, where, as_json):
    depth, value = data
    root = tmp_path_factory.mktemp("nest")
    obj = {
        "apiVersion": "nmstate.io/v1",
        "kind": "NodeNetworkConfigurationPolicy",
        "metadata": {"name": "p"},
        where: value,
    }
    if as_json:
        write(root, "o.json", json.dumps(obj))
    else:
        write(root, "o.yaml", yaml.safe_dump(obj))
    store = load(root)
    loaded = store.counts()["nodenetworkconfigurationpolicies.nmstate.io"]
    skipped = [p for p in store.problems if " kept without " not in p.message]
    assert loaded + len(skipped) == 1, store.problems
    if depth + 1 > MAX_DEPTH and not as_json:
        assert "nested more than" in skipped[0].message


@st.composite
def aliased_yaml(draw):
    """A List of Nodes whose fields reuse anchored lists: a random DAG of aliases."""
    lines = ["apiVersion: v1", "kind: List", "a0: &a0 [{key: k, effect: NoSchedule}, &l {x: y}]"]
    layers = draw(st.integers(1, 12))
    for i in range(1, layers + 1):
        refs = draw(st.lists(st.integers(0, i - 1), min_size=1, max_size=8))
        lines.append(f"a{i}: &a{i} [" + ", ".join(f"*a{r}" for r in refs) + "]")
    field = draw(
        st.sampled_from(
            [
                "spec: {taints: *a%d}",
                "metadata: {name: n, labels: *l, annotations: {a: *a%d}}",
                "status: {images: *a%d}",
            ]
        )
    )
    field = field % draw(st.integers(0, layers)) if "%d" in field else field
    lines.append("items:")
    lines.append("- &n {apiVersion: v1, kind: Node, metadata: {name: n}, %s}" % field)
    lines.append("- *n")
    return "\n".join(lines) + "\n"


@SETTINGS
@given(text=aliased_yaml())
def test_any_aliasing_finishes_and_is_loaded_or_refused(tmp_path_factory, text):
    root = tmp_path_factory.mktemp("alias")
    write(root, "a.yaml", text)
    started = time.monotonic()
    store = load(root)
    assert time.monotonic() - started < 10
    messages = [p.message for p in store.problems]
    if store.counts()["nodes"]:
        assert store.counts()["nodes"] == 1  # the aliased second item is an identical duplicate
        assert store.ignored_counts().get("identical duplicate object") == 1
        assert all("kept without" in m for m in messages), messages
    else:
        assert any(f"limit {MAX_YAML_ALIAS_EXPANSION}" in m for m in messages), messages


def test_check_ids_cover_the_checks_used_here():
    assert {"control_plane_vm_workloads", "rwo_vm_disks"} <= set(CHECK_IDS)


# ---------------------------------------------------------------- kinds absent from a snapshot


def test_nodes_missing_from_a_snapshot_are_absent_unless_an_empty_list_says_none(tmp_path):
    from ov_exporter.sources import SnapshotSource

    write(tmp_path, "a/vm.yaml", VM.format(uid="", strategy="LiveMigrate"))
    store = Store()
    SnapshotSource(tmp_path / "a").load(store.apply)
    assert store.kinds["nodes"].absent == f"no Node object in snapshot {tmp_path / 'a'}"
    assert store.kinds["virtualmachineinstancemigrations.kubevirt.io"].absent == ""  # may well be empty
    result = evaluate(store.state(), Config()).result("cpu_overcommit")
    assert (result.status.value, result.error) == ("not_applicable", store.kinds["nodes"].absent)
    write(tmp_path, "a/nodes.json", json.dumps({"apiVersion": "v1", "kind": "NodeList", "items": []}))
    store = Store()
    SnapshotSource(tmp_path / "a").load(store.apply)
    assert store.kinds["nodes"].absent == ""
