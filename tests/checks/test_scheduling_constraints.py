"""scheduling_constraints: excessive, mixed, pinning and unsatisfiable scheduling rules;
unschedulable VMIs (anti-pattern 4)."""

from __future__ import annotations

import dataclasses

import msgspec
import pytest
from ov_exporter import runner
from ov_exporter.checks import scheduling_constraints
from ov_exporter.model import ObjectRef, Severity, Status

from .builders import EXEMPT, NS, config, deep, hco, node, record_of, series, state, vm, vmi

CONSTRAINTS, ISSUE, UNSCHED = "ov_vm_scheduling_constraints", "ov_vm_scheduling_issue", "ov_vmi_unschedulable"
PINNED_COUNT, UNSCHED_COUNT = "ov_vms_pinned_to_node", "ov_vmis_unschedulable"
HOST = "kubernetes.io/hostname"


def workers(n: int = 3, **kw) -> list[dict]:
    return [node(f"worker-{i}", **kw) for i in range(n)]


def with_spec(obj: dict, **fields) -> dict:
    """A VM (template spec) or VMI (spec) with scheduling fields set."""
    obj = deep(obj)
    spec = obj["spec"]["template"]["spec"] if obj["kind"] == "VirtualMachine" else obj["spec"]
    spec.update(fields)
    return obj


def run(*objects, **overrides):
    return scheduling_constraints.evaluate(state(*objects), config(**overrides))


def vm_ref(name, namespace=NS):
    return ObjectRef("VirtualMachine", namespace, name)


def hostname_affinity(*hosts: str) -> dict:
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": HOST, "operator": "In", "values": list(hosts)}]}]
            }
        }
    }


def anti_affinity(required: int = 0, preferred: int = 0) -> dict:
    term = {"topologyKey": HOST, "labelSelector": {"matchLabels": {"app": "web"}}}
    body: dict = {}
    if required:
        body["requiredDuringSchedulingIgnoredDuringExecution"] = [term] * required
    if preferred:
        body["preferredDuringSchedulingIgnoredDuringExecution"] = [{"weight": 100, "podAffinityTerm": term}] * preferred
    return {"podAntiAffinity": body}


# The classic "BAD: too many overlapping constraints" example, on nodes that carry its labels.
SEED_LABELS = {"workload-type": "virtualization", "zone": "us-east-1a", "instance-type": "m5.4xlarge"}
SEED_BAD = {
    "nodeSelector": {"node-role.kubernetes.io/worker": "", **SEED_LABELS},
    "affinity": {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "labelSelector": {
                        "matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "database", "cache"]}]
                    },
                    "topologyKey": HOST,
                }
            ],
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "labelSelector": {
                            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["frontend"]}]
                        },
                        "topologyKey": "failure-domain.beta.kubernetes.io/zone",
                    },
                }
            ],
        }
    },
    "tolerations": [
        {"key": "dedicated", "operator": "Equal", "value": "virtualization", "effect": "NoSchedule"},
        {"key": "high-performance", "operator": "Exists", "effect": "NoSchedule"},
    ],
}


# ---------------------------------------------------------------- counting


def test_the_classic_example_is_excessive_and_mixed():
    out = run(with_spec(vm("web"), **SEED_BAD), *workers(3, labels=SEED_LABELS))
    assert series(out, CONSTRAINTS) == {(NS, "web", ""): 8}
    assert series(out, ISSUE) == {(NS, "web", "excessive", "None", ""): 1, (NS, "web", "mixed", "None", ""): 1}
    assert [(f.severity, f.obj) for f in out.findings] == [
        (Severity.INFO, vm_ref("web")),
        (Severity.INFO, vm_ref("web")),
    ]
    [excessive] = [f for f in out.findings if "scheduling constraints" in f.message]
    assert "8 scheduling constraints" in excessive.message and "4 nodeSelector key(s)" in excessive.message
    assert (
        "2 toleration(s)" in excessive.message and "above thresholds.scheduling-constraints-max 5" in excessive.message
    )
    [mixed] = [f for f in out.findings if "mixes" in f.message]
    assert "1 required and 1 preferred" in mixed.message


def test_every_kind_of_constraint_counts():
    spec = {
        "nodeSelector": {"a": "1"},
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": "a", "operator": "Exists"},
                                {"key": "b", "operator": "DoesNotExist"},
                            ]
                        },
                        {"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["x"]}]},
                    ]
                },
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 1, "preference": {"matchExpressions": [{"key": "c", "operator": "Exists"}]}}
                ],
            },
            **anti_affinity(required=1, preferred=2),
            "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": HOST}]},
        },
        "tolerations": [{"operator": "Exists"}],
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": HOST, "whenUnsatisfiable": "ScheduleAnyway"}],
    }
    record = record_of(with_spec(vm("web"), **spec))[1]
    c = scheduling_constraints.count(record.spec.template.spec)
    assert (
        c.node_selector,
        c.node_affinity_required,
        c.node_affinity_preferred,
        c.pod_affinity_required,
        c.pod_affinity_preferred,
        c.tolerations,
        c.topology_spread,
    ) == (1, 3, 1, 2, 2, 1, 1)
    assert c.total == 11


@pytest.mark.parametrize(("limit", "flagged"), [(5, False), (4, True)])
def test_the_bound_is_configurable_and_exclusive(limit, flagged):
    five = {
        "nodeSelector": {"a": "1", "b": "2", "c": "3"},
        "tolerations": [{"key": "x", "operator": "Exists"}, {"key": "y", "operator": "Exists"}],
    }
    out = run(
        with_spec(vm("web"), **five),
        *workers(3, labels={"a": "1", "b": "2", "c": "3"}),
        **{"thresholds.scheduling-constraints-max": limit},
    )
    assert ("excessive" in {k[2] for k in series(out, ISSUE)}) is flagged
    assert [f.severity for f in out.findings] == ([Severity.INFO] if flagged else [])


def test_one_modest_anti_affinity_is_clean():
    out = run(with_spec(vm("web"), affinity=anti_affinity(preferred=1)), *workers())
    assert out.findings == []
    assert series(out, CONSTRAINTS) == {} and series(out, ISSUE) == {}
    assert series(out, PINNED_COUNT) == {(): 0} and series(out, UNSCHED_COUNT) == {(): 0}


def test_required_and_preferred_node_affinity_mix_is_info():
    aff = hostname_affinity("worker-0", "worker-1")
    aff["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] = [
        {"weight": 50, "preference": {"matchExpressions": [{"key": HOST, "operator": "In", "values": ["worker-0"]}]}}
    ]
    out = run(with_spec(vm("web"), affinity=aff), *workers())
    assert [(f.severity, "mixes 1 required and 1 preferred" in f.message) for f in out.findings] == [
        (Severity.INFO, True)
    ]


# ---------------------------------------------------------------- pinning


@pytest.mark.parametrize(
    ("eviction", "severity"),
    [("LiveMigrate", Severity.WARNING), ("LiveMigrateIfPossible", Severity.WARNING), ("None", Severity.WARNING)],
)
def test_hostname_node_selector_pins_the_vm(eviction, severity):
    out = run(with_spec(vm("db", eviction=eviction), nodeSelector={HOST: "worker-1"}), *workers())
    [finding] = out.findings
    assert finding.severity is severity and finding.obj == vm_ref("db")
    assert "pinned to node worker-1 by nodeSelector on kubernetes.io/hostname" in finding.message
    assert (
        "1 of 3 VM-schedulable nodes" in finding.message
        and f"eviction strategy {eviction} (set on the VM)" in finding.message
    )
    assert series(out, ISSUE) == {(NS, "db", "pinned", eviction, ""): 1}
    assert series(out, CONSTRAINTS) == {(NS, "db", ""): 1}
    assert series(out, PINNED_COUNT) == {(): 1}


def test_the_eviction_strategy_comes_from_the_cluster_default():
    out = run(
        with_spec(vm("db"), affinity=hostname_affinity("worker-2")), *workers(), hco(eviction_strategy="LiveMigrate")
    )
    [finding] = out.findings
    assert finding.severity is Severity.WARNING
    assert "by its required node affinity" in finding.message and "cluster default from hco" in finding.message
    assert series(out, ISSUE) == {(NS, "db", "pinned", "LiveMigrate", ""): 1}


def test_match_fields_on_the_node_name_pin_too():
    aff = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["worker-0"]}]}
                ]
            }
        }
    }
    out = run(with_spec(vm("db", eviction="LiveMigrate"), affinity=aff), *workers())
    assert [f.severity for f in out.findings] == [Severity.WARNING]


@pytest.mark.parametrize(
    "spec",
    [
        {"affinity": hostname_affinity("worker-0", "worker-1")},
        {"nodeSelector": {"pool": "vm"}},
        {
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": HOST, "operator": "In", "values": ["worker-0"]}]},
                            {"matchExpressions": [{"key": HOST, "operator": "In", "values": ["worker-2"]}]},
                        ]
                    }
                }
            }
        },  # terms are ORed
    ],
)
def test_a_rule_that_two_nodes_satisfy_is_no_pin(spec):
    nodes = [node("worker-0", labels={"pool": "vm"}), node("worker-1", labels={"pool": "vm"}), node("worker-2")]
    out = run(with_spec(vm("db", eviction="LiveMigrate"), **spec), *nodes)
    assert out.findings == [] and series(out, ISSUE) == {}


def test_a_label_only_one_node_carries_pins_as_well():
    nodes = [node("worker-0", labels={"gpu": "true"}), node("worker-1"), node("worker-2")]
    out = run(with_spec(vm("db", eviction="LiveMigrate"), nodeSelector={"gpu": "true"}), *nodes)
    [finding] = out.findings
    assert finding.severity is Severity.WARNING and "by its nodeSelector" in finding.message


def test_an_untolerated_taint_removes_a_node():
    taint = [{"key": "dedicated", "value": "sap", "effect": "NoSchedule"}]
    nodes = [node("worker-0", labels={"pool": "vm"}), node("worker-1", labels={"pool": "vm"}, taints=taint)]
    out = run(with_spec(vm("db", eviction="LiveMigrate"), nodeSelector={"pool": "vm"}), *nodes)
    assert [(f.severity, "pinned to node worker-0" in f.message) for f in out.findings] == [(Severity.WARNING, True)]
    tolerated = run(
        with_spec(
            vm("db", eviction="LiveMigrate"),
            nodeSelector={"pool": "vm"},
            tolerations=[{"key": "dedicated", "operator": "Equal", "value": "sap", "effect": "NoSchedule"}],
        ),
        *nodes,
    )
    assert tolerated.findings == []


def test_numeric_and_negative_operators():
    nodes = [
        node("worker-0", labels={"cores": "64"}),
        node("worker-1", labels={"cores": "32"}),
        node("worker-2", labels={"legacy": "true"}),
    ]
    aff = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "cores", "operator": "Gt", "values": ["48"]},
                            {"key": "legacy", "operator": "DoesNotExist"},
                        ]
                    }
                ]
            }
        }
    }
    out = run(with_spec(vm("db", eviction="LiveMigrate"), affinity=aff), *nodes)
    assert [("pinned to node worker-0" in f.message) for f in out.findings] == [True]


def test_a_single_node_cluster_pins_nothing():
    out = run(with_spec(vm("db", eviction="LiveMigrate"), nodeSelector={HOST: "worker-0"}), *workers(1))
    assert out.findings == []


def test_nodes_that_are_not_vm_schedulable_do_not_count():
    nodes = [*workers(2), node("worker-9", schedulable=False)]
    out = run(with_spec(vm("db", eviction="LiveMigrate"), nodeSelector={HOST: "worker-9"}), *nodes)
    assert [f.severity for f in out.findings] == [Severity.WARNING]
    assert series(out, ISSUE) == {(NS, "db", "no_feasible_node", "LiveMigrate", ""): 1}


# ---------------------------------------------------------------- unsatisfiable and unschedulable


def test_a_selector_no_node_satisfies_is_a_warning():
    out = run(with_spec(vm("gpu", run_strategy="Halted"), nodeSelector={"nvidia.com/gpu.product": "A100"}), *workers())
    [finding] = out.findings
    assert finding.severity is Severity.WARNING and "cannot start, restart or migrate" in finding.message
    assert series(out, CONSTRAINTS) == {(NS, "gpu", ""): 1}


def unschedulable_vmi(name="gpu", phase="Scheduling", status="False", reason="Unschedulable"):
    obj = with_spec(vmi(name, node=None, phase=phase), nodeSelector={"nvidia.com/gpu.product": "A100"})
    obj["status"]["conditions"] = [
        {
            "type": "PodScheduled",
            "status": status,
            "reason": reason,
            "message": "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.",
        }
    ]
    return obj


@pytest.mark.parametrize("phase", ["Pending", "Scheduling"])
def test_an_unschedulable_vmi_is_critical(phase):
    out = run(unschedulable_vmi(phase=phase), *workers())
    [finding] = out.findings
    assert finding.severity is Severity.CRITICAL and finding.obj == ObjectRef("VirtualMachineInstance", NS, "gpu")
    assert f"phase {phase}" in finding.message and "didn't match Pod's node affinity" in finding.message
    assert "1 nodeSelector key(s)" in finding.message
    assert series(out, UNSCHED) == {(NS, "gpu", phase, ""): 1}
    assert series(out, UNSCHED_COUNT) == {(): 1}


@pytest.mark.parametrize(
    ("phase", "status", "reason"),
    [
        ("Running", "False", "Unschedulable"),
        ("Scheduling", "True", ""),
        ("Scheduling", "False", "SchedulerError"),
    ],
)
def test_other_vmis_are_not_unschedulable(phase, status, reason):
    out = run(unschedulable_vmi(phase=phase, status=status, reason=reason), *workers())
    assert out.findings == [] and series(out, UNSCHED_COUNT) == {(): 0}


def test_a_pending_vmi_without_conditions_is_not_judged():
    out = run(vmi("new", node=None, phase="Pending"), *workers())
    assert out.findings == []


# ---------------------------------------------------------------- registry and input


def test_exemption_annotation_drops_the_vm_and_its_vmi():
    objects = [
        with_spec(vm("gpu", annotations={EXEMPT: "scheduling_constraints"}), nodeSelector={"x": "y"}),
        unschedulable_vmi(),
        with_spec(vm("db", eviction="LiveMigrate"), nodeSelector={HOST: "worker-0"}),
        *workers(),
    ]
    result = runner.evaluate(state(*objects), config()).result("scheduling_constraints")
    assert result.status is Status.OK
    assert [f.obj.name for f in result.findings] == ["db"]
    assert {s.labels for s in result.samples if s.obj is not None} == {
        (NS, "db", ""),
        (NS, "db", "pinned", "LiveMigrate", ""),
    }
    assert result.exempted == 2


def test_a_malformed_toleration_list_names_the_field():
    bad = with_spec(vm("web"), tolerations="all")
    with pytest.raises(msgspec.ValidationError, match=r"spec\.template\.spec\.tolerations"):
        record_of(bad)


def test_vms_without_a_template_are_skipped():
    bare = deep(vm("bare"))
    del bare["spec"]["template"]
    out = run(bare, with_spec(vm("db", eviction="LiveMigrate"), nodeSelector={HOST: "worker-0"}), *workers())
    assert [f.obj.name for f in out.findings] == ["db"]


# ---------------------------------------------------------------- waiting VMIs


def waiting_vmi(name="slow", phase="Scheduling", transitions=None):
    obj = vmi(name, node=None, phase=phase)
    obj["status"]["conditions"] = []
    if transitions is not None:
        obj["status"]["phaseTransitionTimestamps"] = [
            {"phase": p, "phaseTransitionTimestamp": ts} for p, ts in transitions
        ]
    return obj


def test_a_waiting_vmi_publishes_when_it_entered_its_phase():
    out = run(
        waiting_vmi(transitions=[("Pending", "2025-01-20T09:00:00Z"), ("Scheduling", "2025-01-20T09:00:05Z")]),
        *workers(),
    )
    assert series(out, "ov_vmi_pending_since_timestamp_seconds") == {(NS, "slow", "Scheduling", ""): 1737363605.0}
    assert out.findings == [], "a snapshot has no clock: the alert judges the wait"


def test_the_last_entry_into_the_current_phase_counts():
    out = run(
        waiting_vmi(
            phase="Pending",
            transitions=[
                ("Pending", "2025-01-20T09:00:00Z"),
                ("Scheduling", "2025-01-20T09:01:00Z"),
                ("Pending", "2025-01-20T09:02:00Z"),
            ],
        ),
        *workers(),
    )
    assert series(out, "ov_vmi_pending_since_timestamp_seconds") == {(NS, "slow", "Pending", ""): 1737363720.0}


def at(now, *objects):
    """The state a live source would give at Unix time `now`."""
    st = state(*objects)
    return dataclasses.replace(st, now=now)


@pytest.mark.parametrize(("waited", "flagged"), [(900, False), (901, True)])
def test_a_vmi_waiting_too_long_without_a_reason_is_a_warning_on_live_sources(waited, flagged):
    entered = 1737363605.0  # 2025-01-20T09:00:05Z
    st = at(entered + waited, waiting_vmi(transitions=[("Scheduling", "2025-01-20T09:00:05Z")]), *workers())
    out = scheduling_constraints.evaluate(st, config())
    assert [(f.severity, f.obj) for f in out.findings] == (
        [(Severity.WARNING, ObjectRef("VirtualMachineInstance", NS, "slow"))] if flagged else []
    )
    if flagged:
        assert "phase Scheduling for 15 min" in out.findings[0].message


def test_the_wait_allowed_is_the_configured_threshold_and_is_published_for_the_alert():
    entered = 1737363605.0  # 2025-01-20T09:00:05Z
    st = at(entered + 400, waiting_vmi(transitions=[("Scheduling", "2025-01-20T09:00:05Z")]), *workers())
    assert scheduling_constraints.evaluate(st, config()).findings == []
    out = scheduling_constraints.evaluate(st, config(**{"thresholds.vmi-pending-minutes": 5}))
    assert [f.obj.name for f in out.findings] == ["slow"]
    assert series(out, "ov_vmi_pending_threshold_seconds") == {(): 300.0}


def test_no_transition_timestamps_and_running_vmis_publish_nothing():
    running = vmi("up")
    running["status"]["phaseTransitionTimestamps"] = [
        {"phase": "Running", "phaseTransitionTimestamp": "2025-01-20T09:00:00Z"}
    ]
    out = run(waiting_vmi(transitions=None), running, *workers())
    assert series(out, "ov_vmi_pending_since_timestamp_seconds") == {}
