"""Property tests over every check: realistic objects damaged at a random place.

(1) An object that `convert` rejects raises msgspec.ValidationError and nothing else.
(2) Whatever `convert` accepts, put together into a state, gives every check status ok or
    not_applicable through runner.evaluate (never failed), and the damage never hides
    the findings planted on a separate set of untouched objects.
"""

from __future__ import annotations

import copy
import json
import math
from datetime import datetime, timezone

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ov_exporter import runner, upstream
from ov_exporter.model import ObjectRef, Severity, Status
from ov_exporter.records import Node, convert, to_builtins
from ov_exporter.store import ClusterState, UpstreamSample

from . import builders as b

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LINK_SHARE = 10e9 / 8 / 2

# ---------------------------------------------------------------- the realistic cluster that gets damaged


def damageable() -> list[dict]:
    """One realistic object of every kind the checks read, wired together."""
    return [
        b.node("worker-0", cpu="32", smt=True),
        b.node("worker-1", cpu="16", smt=False),
        b.node(
            "master-0",
            control_plane=True,
            schedulable=None,
            taints=[{"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"}],
        ),
        b.node("rhel-0", os_image=b.RHEL_IMAGE, os_id="rhel", schedulable=False),
        b.namespace(b.NS, labels={"tier": "db"}, annotations={"openshift.io/sa.scc.mcs": "s0:c26,c5"}),
        b.vm(
            "db",
            eviction="LiveMigrate",
            sockets=1,
            cores=4,
            threads=1,
            volumes=[
                b.pvc_volume("root", "db-root"),
                b.dv_volume("data", "db-data"),
                b.dv_volume("logs", "db-logs"),
                b.container_disk(),
                b.cloud_init(),
            ],
            data_volume_templates=[b.dv_template("db-logs", access_modes=["ReadWriteOnce"], storage_class="hpp")],
            interfaces=[{"name": "default", "masquerade": {}}, b.bridge_iface("vlan10"), b.bridge_iface("l2")],
            networks=[
                {"name": "default", "pod": {}},
                b.multus_network("vlan10", "vlan10"),
                b.multus_network("l2", f"{b.NS}/l2"),
            ],
            annotations={"kubevirt.io/latest-observed-api-version": "v1"},
        ),
        b.vmi(
            "db",
            node="worker-0",
            sockets=1,
            cores=4,
            threads=1,
            memory="8Gi",
            guest="8Gi",
            requests_cpu="500m",
            labels={"app": "db"},
            volumes=[b.pvc_volume("root", "db-root"), b.dv_volume("data", "db-data")],
            volume_status=[
                b.volume_status("root", "db-root", ["ReadWriteOnce"]),
                b.volume_status("data", "db-data", ["ReadWriteMany"]),
                b.volume_status("cloudinitdisk", None, None),
            ],
            migration_configuration={
                "bandwidthPerMigration": "64Mi",
                "completionTimeoutPerGiB": 150,
                "parallelOutboundMigrationsPerNode": 2,
                "allowAutoConverge": False,
                "network": "migration",
            },
        ),
        b.vmi("web", node="worker-1", cores=None, requests_cpu="2", memory="2Gi", phase="Scheduled"),
        b.pvc("db-root"),
        b.pvc("db-data", access_modes=["ReadWriteMany"], phase="Pending", status_modes=False),
        b.datavolume("db-data", storage_class="hpp", volume_mode="Filesystem"),
        b.storage_profile(
            "hpp",
            [
                {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem"},
                {"accessModes": ["ReadWriteMany"], "volumeMode": "Block"},
            ],
        ),
        b.storage_class("hpp", "kubevirt.io.hostpath-provisioner", default_virt=True),
        b.hco(
            "v1beta1",
            eviction_strategy="LiveMigrate",
            cpu_ratio=10,
            memory_pct=100,
            live_migration={
                "bandwidthPerMigration": "0Mi",
                "completionTimeoutPerGiB": 150,
                "parallelMigrationsPerCluster": 5,
                "parallelOutboundMigrationsPerNode": 2,
                "progressTimeout": 150,
                "allowAutoConverge": False,
                "allowPostCopy": False,
            },
        ),
        b.kubevirt_cr(
            eviction_strategy="LiveMigrate",
            cpu_ratio=10,
            memory_overcommit=100,
            migrations={
                "bandwidthPerMigration": "64Mi",
                "completionTimeoutPerGiB": 800,
                "parallelOutboundMigrationsPerNode": 2,
            },
        ),
        b.migration_policy(
            "gold", bandwidth="128Mi", timeout=20, namespace_selector={"tier": "db"}, vmi_selector={"app": "db"}
        ),
        b.nad("vlan10", b.bridge_config("vlan10")),
        b.nad(
            "l2",
            {
                "cniVersion": "0.3.1",
                "name": "l2",
                "type": "ovn-k8s-cni-overlay",
                "topology": "layer2",
                "netAttachDefName": f"{b.NS}/l2",
                "mtu": 1300,
            },
        ),
        b.nad(
            "conflist",
            {
                "cniVersion": "0.4.0",
                "name": "conflist",
                "plugins": [{"type": "cnv-bridge", "bridge": "br1", "mtu": 9000}, {"type": "cnv-tuning"}],
            },
        ),
        b.nns(
            "worker-0",
            [
                b.iface("ens3", 1500, controller="br-ex"),
                b.iface("br-ex", 1500, "ovs-interface"),
                b.iface("ens4", 9000, controller="br1"),
                b.iface("br1", 9000, "linux-bridge", ports=["ens4"]),
            ],
        ),
        b.cluster_network(1400),
        b.trident_backend(
            "nas",
            "ontap-nas-economy",
            limitVolumeSize="100Gi",
            limitAggregateUsage="80%",
            defaults={"spaceReserve": "none"},
            storage=[{"labels": {"tier": "gold"}}],
        ),
        b.nncp(
            "br-vm",
            [b.bond("bond1", ["ens5", "ens6"]), b.iface("br-vm", 1500, "linux-bridge", ports=["bond1"])],
            {"node-role.kubernetes.io/worker": ""},
        ),
        *scheduling_objects(),
        b.virt_handler_pod("worker-0"),
        b.virt_handler_pod("worker-1", ready=False),
        b.vmim("db-migration", "db"),
        b.vmi("pinned", node="worker-1", memory="1Gi", eviction="LiveMigrate")
        | {
            "spec": {
                "domain": {"resources": {"requests": {"memory": "1Gi"}}},
                "nodeSelector": {"zone": "a"},
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {
                                    "matchExpressions": [
                                        {"key": "zone", "operator": "In", "values": ["a", "b"]},
                                        {"key": "gpu", "operator": "Gt", "values": ["1"]},
                                    ],
                                    "matchFields": [
                                        {"key": "metadata.name", "operator": "NotIn", "values": ["worker-0"]}
                                    ],
                                }
                            ]
                        }
                    }
                },
            }
        },
        b.vm("pinned", eviction="LiveMigrate"),
        b.pod_metrics("db", cpu="3500m", memory="7Gi"),
    ]


def scheduling_objects() -> list[dict]:
    """A VM with every scheduling knob and strict limits, and an unschedulable VMI."""
    constrained = b.vm("sched", eviction="LiveMigrate")
    spec = constrained["spec"]["template"]["spec"]
    spec["nodeSelector"] = {"kubernetes.io/hostname": "worker-0", "pool": "vm"}
    spec["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["8"]}],
                        "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["worker-0"]}],
                    }
                ]
            },
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "preference": {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}}
            ],
        },
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "db"}}}
            ],
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "topologyKey": "zone",
                        "labelSelector": {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]},
                    },
                }
            ],
        },
    }
    spec["tolerations"] = [
        {"key": "dedicated", "operator": "Equal", "value": "vm", "effect": "NoSchedule"},
        {"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    ]
    spec["topologySpreadConstraints"] = [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}]
    spec["domain"]["resources"]["limits"] = {"cpu": "2", "memory": "4Gi"}
    waiting = b.vmi("sched", node=None, phase="Scheduling")
    waiting["spec"]["nodeSelector"] = {"pool": "gpu"}
    waiting["status"]["conditions"] = [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/4 nodes are available"}
    ]
    return [constrained, waiting]


def hco_v1() -> dict:
    return b.hco(
        "v1",
        eviction_strategy="LiveMigrateIfPossible",
        cpu_ratio=4,
        memory_pct=150,
        live_migration={
            "bandwidthPerMigration": "128Mi",
            "completionTimeoutPerGiB": 20,
            "parallelOutboundMigrationsPerNode": 1,
        },
    )


def planted() -> list[dict]:
    """Untouched objects in their own namespace/names, each giving a known finding."""
    g = "good"
    return [
        b.node("good-node", cpu="8", memory="64Gi", smt=True),
        b.node("good-rhel", os_image=b.RHEL_IMAGE, os_id="rhel"),
        b.vm("good-vm", g, eviction="LiveMigrate", volumes=[b.pvc_volume("root", "good-root")]),
        b.pvc("good-root", g),
        b.vmi("good-load", g, node="good-node", cores=8, memory="80Gi"),
        b.nad("good-net", b.bridge_config("good-net", bridge="br-good"), namespace=g),
        b.nns("good-node", [b.iface("br-good", 9000, "linux-bridge")]),
        b.trident_backend("good-backend", namespace=g),
        b.node("good-ovn", cpu="8", memory="64Gi", smt=True),
        b.nns(
            "good-ovn",
            [b.iface("br-ex", None, "ovs-bridge", ports=["br-ex", "eno9"]), b.iface("eno9", 1500, controller="br-ex")],
        ),
        b.nncp(
            "good-policy",
            [b.iface("br-bad", 1500, "linux-bridge", ports=["eno9"])],
            {"kubernetes.io/hostname": "good-ovn"},
        ),
        *planted_scheduling(),
        # migration_capacity: two migrations running over the pod network, and a queue stalled for 3 h
        # (nothing finished in the last 30 min). rebalance_watch: good-load moved twice (manual) 1 and 2 h
        # before NOW, the fixed clock: no damaged timestamp elsewhere can close the window.
        _vmim("good-queued", "Pending", None, created="2025-01-20T06:30:00Z"),
        _vmim("good-run-1", "Running", None, vmi="good-run-1"),
        _vmim("good-run-2", "Running", None, vmi="good-run-2"),
        _vmim("good-move-1", "Succeeded", "2025-01-20T07:30:00Z"),
        _vmim("good-move-2", "Succeeded", "2025-01-20T08:30:00Z"),
        b.pod_metrics("good-load", g, cpu="100m", memory="4Gi", created_by="uid-good-good-load"),
        b.node(
            "good-master-0",
            control_plane=True,
            schedulable=None,
            labels={"ov-exporter.openshift.io/hypervisor-host": "good-esxi"},
        ),
        b.node(
            "good-master-1",
            control_plane=True,
            schedulable=None,
            labels={"ov-exporter.openshift.io/hypervisor-host": "good-esxi"},
        ),
        b.vmi("good-on-master", g, node="good-master-1", cores=1, memory="1Gi"),
    ]


def planted_scheduling() -> list[dict]:
    """good-pinned: pinned to good-node, LiveMigrate (warning); good-limited: memory limit = guest (warning)."""
    pinned = b.vm("good-pinned", "good", eviction="LiveMigrate")
    pinned["spec"]["template"]["spec"]["nodeSelector"] = {"kubernetes.io/hostname": "good-node"}
    limited = b.vm("good-limited", "good", memory="4Gi")
    limited["spec"]["template"]["spec"]["domain"]["resources"]["limits"] = {"memory": "4Gi"}
    return [pinned, limited]


def _vmim(name: str, phase: str, end: str | None, *, vmi: str = "good-load", created: str | None = None) -> dict:
    status: dict = {"phase": phase}
    if end is not None:
        status["migrationState"] = {
            "completed": True,
            "endTimestamp": end,
            "startTimestamp": end,
            "sourceNode": "worker-0",
            "targetNode": "good-node",
        }
    meta = {"name": name, "namespace": "good", "uid": f"uid-good-{name}"}
    if created is not None:
        meta["creationTimestamp"] = created
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstanceMigration",
        "metadata": meta,
        "spec": {"vmiName": vmi},
        "status": status,
    }


NOW = datetime(2025, 1, 20, 9, 30, tzinfo=timezone.utc).timestamp()  # the clock every evaluation here reads


EXPECTED = {  # check -> (object, severity) that must survive any damage elsewhere
    "rwo_vm_disks": (ObjectRef("VirtualMachine", "good", "good-vm"), Severity.INFO),  # stopped, RWO disk
    "cpu_overcommit": (ObjectRef("Node", "", "good-node"), Severity.WARNING),
    "memory_overcommit": (ObjectRef("Node", "", "good-node"), Severity.WARNING),
    "rhel_nodes": (ObjectRef("Node", "", "good-rhel"), Severity.WARNING),
    "mtu_mismatch": (ObjectRef("NetworkAttachmentDefinition", "good", "good-net"), Severity.WARNING),
    "migration_dirty_rate": (ObjectRef("VirtualMachineInstance", "good", "good-load"), Severity.WARNING),
    "trident_volume_limits": (ObjectRef("TridentBackendConfig", "good", "good-backend"), Severity.WARNING),
    "ovn_linux_bridge": (ObjectRef("NodeNetworkConfigurationPolicy", "", "good-policy"), Severity.WARNING),
    "scheduling_constraints": (ObjectRef("VirtualMachine", "good", "good-pinned"), Severity.WARNING),
    "strict_vm_limits": (ObjectRef("VirtualMachine", "good", "good-limited"), Severity.WARNING),
    "migration_readiness": (ObjectRef("VirtualMachine", "good", "good-vm"), Severity.INFO),  # stopped, RWO disk
    # Two migrations running over the pod network, and a stalled queue: the Cluster is flagged either way.
    "migration_capacity": (ObjectRef("Cluster", "", "cluster"), Severity.WARNING),
    "rebalance_watch": (ObjectRef("VirtualMachineInstance", "good", "good-load"), Severity.WARNING),
    "vm_right_sizing": (ObjectRef("VirtualMachineInstance", "good", "good-load"), Severity.INFO),
    "node_failure_planning": (ObjectRef("Node", "", "good-node"), Severity.WARNING),  # no health check at all
    "control_plane_placement": (ObjectRef("Node", "", "good-master-0"), Severity.WARNING),  # 2 of 2 on one host
    "control_plane_vm_workloads": (ObjectRef("Node", "", "good-master-1"), Severity.WARNING),
}
# Checks whose finding is a verdict on the whole cluster that any damaged node or VMI may
# legitimately change: they must stay healthy (status ok), no planted finding is required.
CLUSTER_GLOBAL = {
    "rebalance_plan": "the spread and the plan depend on every node and VMI: a damaged node with load "
    "that cannot move sets the spread, and then no move lowers it",
}


def test_every_declared_check_has_a_planted_finding_that_must_survive_damage():
    """A new check joins the damage properties below: plant an object for it in planted()
    and name the finding it must keep in EXPECTED (or say in CLUSTER_GLOBAL why it cannot)."""
    from ov_exporter.checks import CHECKS

    assert not set(EXPECTED) & set(CLUSTER_GLOBAL)
    assert set(EXPECTED) | set(CLUSTER_GLOBAL) == {spec.id for spec in CHECKS}


def base_samples() -> dict[str, list[UpstreamSample]]:
    return {
        upstream.DIRTY_RATE: [
            b.metric(3 * LINK_SHARE, "good", "good-load", node="good-node"),
            b.metric(40 * b.MI, b.NS, "db"),
        ],
        "kubevirt_vmi_migration_dirty_memory_rate_bytes": [b.metric(30 * b.MI, b.NS, "db")],
    }


# ---------------------------------------------------------------- damage


def _paths(obj, prefix=()):
    """Every path into an object (dict keys and list indices), except apiVersion/kind."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not prefix and key in ("apiVersion", "kind"):
                continue
            yield prefix + (key,)
            yield from _paths(value, prefix + (key,))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield prefix + (i,)
            yield from _paths(value, prefix + (i,))


BASE = damageable() + [hco_v1()]
PATHS = [sorted(_paths(o), key=str) for o in BASE]

FIELD_NAMES = [
    "spec",
    "status",
    "metadata",
    "name",
    "namespace",
    "labels",
    "annotations",
    "domain",
    "cpu",
    "cores",
    "sockets",
    "threads",
    "memory",
    "guest",
    "resources",
    "requests",
    "volumes",
    "accessModes",
    "claimName",
    "persistentVolumeClaim",
    "dataVolume",
    "evictionStrategy",
    "nodeName",
    "phase",
    "capacity",
    "config",
    "mtu",
    "interfaces",
    "liveMigrationConfig",
    "bandwidthPerMigration",
    "virtualization",
    "selectors",
    "claimPropertySets",
    "currentState",
    "clusterNetworkMTU",
]
TEXT = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "",
            "LiveMigrate",
            "LiveMigrateIfPossible",
            "None",
            "Bogus",
            "Running",
            "Scheduled",
            "ReadWriteMany",
            "ReadWriteOnce",
            "9000",
            "-1",
            "0",
            "4",
            "1e3",
            "16Gi",
            "500m",
            "-5Mi",
            "0Mi",
            "abc",
            "true",
            "false",
            "null",
            "rhel",
            "rhcos",
            "worker-0",
            "db",
            b.NS,
            "{",
            '{"type": "bridge", "bridge": "br1"}',
            "[]",
        ]
    ),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    # Huge and negative counts, also beyond float range (2**1400).
    st.integers(min_value=-(2**1400), max_value=2**1400),
    st.sampled_from([2**32, 2**63, 2**64, -(2**31), 1_000_000, 1_000_001, 0, -1, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=6)), inner, max_size=4),
    ),
    max_leaves=12,
)

DELETE = object()


def _apply(obj: dict, path: tuple, value) -> None:
    target = obj
    for part in path[:-1]:
        target = target[part]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value


@st.composite
def damaged_objects(draw) -> tuple[list[dict], list[tuple]]:
    """The damageable objects (one HCO shape) with 1-3 random paths replaced or removed."""
    use_v1 = draw(st.booleans())
    indices = [
        i
        for i in range(len(BASE))
        if (BASE[i]["kind"] != "HyperConverged" or (BASE[i]["apiVersion"].endswith("/v1") == use_v1))
    ]
    objects = {i: copy.deepcopy(BASE[i]) for i in indices}
    applied = []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        i = draw(st.sampled_from(indices))
        path = draw(st.sampled_from(PATHS[i]))
        value = draw(st.one_of(JSON_VALUES, st.just(DELETE)))
        try:
            _apply(objects[i], path, value)  # an earlier damage may have removed the path
        except (KeyError, IndexError, TypeError):
            continue
        applied.append((BASE[i]["kind"], path, "<delete>" if value is DELETE else value))
    return list(objects.values()), applied


def _records(objects):
    records = []
    for obj in objects:
        try:
            records.append(b.record_of(obj))
        except msgspec.ValidationError:
            continue  # rejected one object: the loader reports it and goes on
    return records


def _assert_healthy(evaluation, expect_planted=True):
    for result in evaluation.results:
        assert result.status in (Status.OK, Status.NOT_APPLICABLE), (result.spec.id, result.error)
        if expect_planted:
            assert result.status is Status.OK, (result.spec.id, result.error)
            if result.spec.id in CLUSTER_GLOBAL:
                continue
            obj, severity = EXPECTED[result.spec.id]
            allowed = severity if isinstance(severity, tuple) else (severity,)
            assert any(f.obj == obj and f.severity in allowed for f in result.findings), (
                result.spec.id,
                [(f.obj, f.severity) for f in result.findings],
            )


# ---------------------------------------------------------------- the properties


@SETTINGS
@given(data=damaged_objects())
def test_convert_rejects_only_with_validation_error(data):
    objects, applied = data
    for obj in objects:
        try:
            _, record = b.record_of(obj)
        except msgspec.ValidationError as exc:
            assert str(exc), applied  # anything else than ValidationError propagates and fails
            continue
        to_builtins(record)  # an accepted record re-encodes (snapshot export)


@SETTINGS
@given(data=damaged_objects())
def test_damaged_cluster_never_fails_a_check(data):
    objects, applied = data
    records = _records(objects) + [b.record_of(o) for o in planted()]
    evaluation = runner.evaluate(ClusterState.from_records(records, base_samples(), NOW), b.config())
    _assert_healthy(evaluation)


@SETTINGS
@given(data=damaged_objects())
def test_damaged_cluster_alone_is_ok_or_not_applicable(data):
    """Without the planted objects (so no check is forced applicable) and without samples."""
    objects, _ = data
    evaluation = runner.evaluate(ClusterState.from_records(_records(objects), None, NOW), b.config())
    _assert_healthy(evaluation, expect_planted=False)


METRIC_NAMES = st.sampled_from(sorted(upstream.WANTED) + ["kubevirt_vmi_info", "up"])
LABEL_VALUES = st.one_of(st.sampled_from([b.NS, "good", "db", "web", "good-load", "", "worker-0"]), st.text(max_size=6))
SAMPLES = st.dictionaries(
    METRIC_NAMES,
    st.lists(
        st.builds(
            UpstreamSample,
            st.dictionaries(st.sampled_from(["namespace", "name", "vmi", "node", "pod"]), LABEL_VALUES, max_size=4),
            st.floats(allow_nan=True, allow_infinity=True),
            st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
        ),
        max_size=4,
    ),
    max_size=5,
)


@SETTINGS
@given(extra=SAMPLES)
def test_arbitrary_metric_samples_never_fail_migration_dirty_rate(extra):
    samples = base_samples()
    for name, points in extra.items():
        samples[name] = samples.get(name, []) + points
    records = [b.record_of(o) for o in damageable() + planted()]
    evaluation = runner.evaluate(ClusterState.from_records(records, samples, NOW), b.config())
    result = evaluation.result("migration_dirty_rate")
    assert result.status is Status.OK, result.error
    # Only finite, non-negative sample values may reach the series.
    assert all(not math.isnan(s.value) for s in result.samples)


NAD_CONFIGS = st.one_of(
    st.text(max_size=60),
    JSON_VALUES.map(json.dumps),
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(
                ["bridge", "cnv-bridge", "ovs", "ovn-k8s-cni-overlay", "macvlan", "ipvlan", "sriov", ""]
            ),
            "bridge": JSON_VALUES,
            "master": JSON_VALUES,
            "mtu": JSON_VALUES,
            "topology": st.sampled_from(["layer2", "localnet", "layer3"]),
        }
    ).map(json.dumps),
    st.lists(st.fixed_dictionaries({"type": TEXT, "mtu": SCALARS}), max_size=3).map(
        lambda plugins: json.dumps({"cniVersion": "0.4.0", "plugins": plugins})
    ),
)


@SETTINGS
@given(configs=st.lists(NAD_CONFIGS, min_size=1, max_size=4))
def test_arbitrary_nad_configs_never_fail_mtu_mismatch(configs):
    objects = damageable() + planted() + [b.nad(f"fuzz-{i}", c) for i, c in enumerate(configs)]
    result = runner.evaluate(b.state(*objects), b.config()).result("mtu_mismatch")
    assert result.status is Status.OK, result.error
    obj, severity = EXPECTED["mtu_mismatch"]
    assert any(f.obj == obj and f.severity is severity for f in result.findings)


@SETTINGS
@given(
    profile=st.sampled_from(["production", "dev-test"]),
    threads=st.integers(min_value=1, max_value=8),
    cap=st.integers(min_value=0, max_value=5),
    link=st.one_of(st.integers(min_value=1, max_value=10**12), st.sampled_from(["1G", "25Gbit/s", "100Gbps", "1k"])),
    exclude=st.lists(st.sampled_from([b.NS, "good", "other"]), max_size=2),
)
def test_any_valid_config_never_fails_a_check(profile, threads, cap, link, exclude):
    cfg = b.config(
        profile=profile,
        **{"threads-per-core": threads, "series-cap": cap, "migration-link-speed": link, "namespaces.exclude": exclude},
    )
    records = [b.record_of(o) for o in damageable() + planted()]
    evaluation = runner.evaluate(ClusterState.from_records(records, base_samples(), NOW), cfg)
    for result in evaluation.results:
        assert result.status is Status.OK, (result.spec.id, result.error)
        per_object = {s.obj or s.labels for s in result.samples if result.spec.family(s.family).per_object}
        assert len(per_object) <= cap
        assert all(f.obj.namespace not in exclude for f in result.findings)


# ---------------------------------------------------------------- known gaps found by the properties


@pytest.mark.parametrize("value", [10**400, -(10**400)], ids=["1e400", "-1e400"])
def test_convert_rejects_integers_beyond_float_range(value):
    obj = b.node("worker-0")
    obj["status"]["capacity"]["cpu"] = value
    with pytest.raises(msgspec.ValidationError):
        convert(Node, obj)
