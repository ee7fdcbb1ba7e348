"""migration_dirty_rate: VMs dirtying memory faster than a migration copies it (anti-pattern 14)."""

from __future__ import annotations

import math

import pytest
from ov_exporter import runner, upstream
from ov_exporter.checks import migration_dirty_rate
from ov_exporter.errors import ConfigError
from ov_exporter.model import NotApplicable, ObjectRef, Severity, Status
from ov_exporter.store import UpstreamSample

from .builders import (
    EXEMPT,
    GI,
    MI,
    NS,
    config,
    hco,
    kubevirt_cr,
    metric,
    migration_policy,
    namespace,
    series,
    state,
    vm,
    vmi,
)

RISK, DURATION = "ov_migration_dirty_rate_risk", "ov_migration_predicted_duration_seconds"
TIMEOUT_VMI = "ov_migration_completion_timeout_seconds"
BANDWIDTH, TIMEOUT, PARALLEL = (
    "ov_migration_bandwidth_bytes_per_second",
    "ov_migration_completion_timeout_per_gib_seconds",
    "ov_migration_parallel_outbound_per_node",
)
LINK_SHARE = 10e9 / 8 / 2  # default link speed 10 Gbit/s shared by 2 parallel outbound migrations
DIRTY = upstream.DIRTY_RATE


def run(*objects, samples=None, **overrides):
    return migration_dirty_rate.evaluate(
        state(*objects, samples=samples if samples is not None else {}), config(**overrides)
    )


def dirty(*points):
    """{DIRTY_RATE: [...]} from (value, name) or UpstreamSample points."""
    return {DIRTY: [p if isinstance(p, UpstreamSample) else metric(*p[:1], name=p[1]) for p in points]}


def db(memory="1Gi", **kw):
    return vmi("db", memory=memory, **kw)


def vmi_ref(name="db", ns=NS):
    return ObjectRef("VirtualMachineInstance", ns, name)


# ---------------------------------------------------------------- applicability and cluster settings


def test_not_applicable_without_a_metric_source():
    with pytest.raises(NotApplicable):
        migration_dirty_rate.evaluate(state(db()), config())
    result = runner.evaluate(state(db()), config()).result("migration_dirty_rate")
    assert result.status is Status.NOT_APPLICABLE


def test_metric_source_error_fails_the_check():
    base = state(db(), samples={})
    broken = type(base)(base.objects, {}, "prometheus", "connection refused")
    result = runner.evaluate(broken, config()).result("migration_dirty_rate")
    assert result.status is Status.FAILED and "connection refused" in result.error


def test_defaults_without_hco_or_kubevirt():
    out = run(db())
    assert series(out, BANDWIDTH) == {("default",): LINK_SHARE}
    assert series(out, TIMEOUT) == {("default",): 150}
    assert series(out, PARALLEL) == {("default",): 2}
    assert out.findings == []


@pytest.mark.parametrize("version", ["v1beta1", "v1"])
def test_settings_from_hco(version):
    lm = {
        "bandwidthPerMigration": "64Mi",
        "completionTimeoutPerGiB": 800,
        "parallelOutboundMigrationsPerNode": 5,
        "parallelMigrationsPerCluster": 5,
        "progressTimeout": 150,
    }
    out = run(db(), hco(version, live_migration=lm), kubevirt_cr(migrations={"bandwidthPerMigration": "1Mi"}))
    assert series(out, BANDWIDTH) == {("hco",): 64 * MI}
    assert series(out, TIMEOUT) == {("hco",): 800}
    assert series(out, PARALLEL) == {("hco",): 5}


def test_settings_from_kubevirt_cr():
    out = run(
        db(),
        kubevirt_cr(
            migrations={
                "bandwidthPerMigration": "128Mi",
                "completionTimeoutPerGiB": 20,
                "parallelOutboundMigrationsPerNode": 1,
            }
        ),
    )
    assert series(out, BANDWIDTH) == {("kubevirt",): 128 * MI}
    assert series(out, TIMEOUT) == {("kubevirt",): 20}
    assert series(out, PARALLEL) == {("kubevirt",): 1}


def test_zero_bandwidth_means_unlimited_link_share():
    out = run(db(), hco(live_migration={"bandwidthPerMigration": "0Mi", "parallelOutboundMigrationsPerNode": 1}))
    assert series(out, BANDWIDTH) == {("hco",): 10e9 / 8}


def test_configured_bandwidth_is_capped_at_the_link_share():
    out = run(
        db(),
        hco(live_migration={"bandwidthPerMigration": "10Gi", "parallelOutboundMigrationsPerNode": 2}),
        **{"migration-link-speed": "1G"},
    )
    assert series(out, BANDWIDTH) == {("hco",): 1e9 / 8 / 2}


@pytest.mark.parametrize(
    ("speed", "expected"),
    [("25G", 25e9 / 8 / 2), ("25Gbit/s", 25e9 / 8 / 2), (10_000_000_000, 10e9 / 8 / 2), ("100M", 100e6 / 8 / 2)],
)
def test_link_speed_setting(speed, expected):
    assert series(run(db(), **{"migration-link-speed": speed}), BANDWIDTH) == {("default",): expected}


# ---------------------------------------------------------------- risk and severity


@pytest.mark.parametrize(
    ("fraction", "expected"),
    [
        (0.1, None),
        (0.49, None),
        (0.5, Severity.INFO),
        (0.9, Severity.INFO),
        (0.95, Severity.INFO),
        (1.0, Severity.WARNING),
        (1.5, Severity.WARNING),
    ],
)
def test_severity_by_risk(fraction, expected):
    out = run(db(), samples=dirty((fraction * LINK_SHARE, "db")))
    assert {f.obj.name: f.severity for f in out.findings} == ({"db": expected} if expected else {})
    if expected is None:
        assert series(out, RISK) == {} and series(out, DURATION) == {}
    else:
        assert series(out, RISK) == {(NS, "db", "worker-0"): pytest.approx(fraction)}


def test_series_carry_the_node_the_vmi_runs_on():
    out = run(db(node="worker-3"), samples=dirty((1.2 * LINK_SHARE, "db")))
    key = (NS, "db", "worker-3")
    assert set(series(out, RISK)) == set(series(out, DURATION)) == set(series(out, TIMEOUT_VMI)) == {key}


def test_info_series_and_message():
    out = run(db(memory="1Gi"), samples=dirty((0.5 * LINK_SHARE, "db")))
    assert series(out, RISK) == {(NS, "db", "worker-0"): pytest.approx(0.5)}
    assert series(out, DURATION) == {(NS, "db", "worker-0"): pytest.approx(GI / (0.5 * LINK_SHARE))}
    [finding] = out.findings
    assert finding.severity is Severity.INFO and finding.obj == vmi_ref()
    assert "risk 0.50" in finding.message
    assert "link speed / 2 parallel outbound migrations" in finding.message
    # KubeVirt counts memory in decimal GB rounded up: 1 GiB = 1.07 GB -> 2 x 150 s.
    assert "for 1.0 GiB, timeout 300 s (150 s/GiB)" in finding.message
    assert all(s.obj == vmi_ref() for s in out.samples if s.family in (RISK, DURATION))


@pytest.mark.parametrize("fraction", [1.0, 2.0])
def test_no_convergence_gives_infinite_predicted_duration(fraction):
    out = run(db(), samples=dirty((fraction * LINK_SHARE, "db")))
    assert series(out, DURATION) == {(NS, "db", "worker-0"): math.inf}
    [finding] = out.findings
    assert finding.severity is Severity.WARNING
    assert "never (does not converge)" in finding.message


def test_predicted_duration_beyond_the_completion_timeout_is_a_warning():
    # 64 MiB/s bandwidth, 20 MiB/s dirty: risk 0.31, but 16 GiB / 44 MiB/s = 372 s > 20 s/GB x 18 GB = 360 s
    # (KubeVirt counts 16 GiB as ceil(17.2) = 18 decimal GB).
    lm = {"bandwidthPerMigration": "64Mi", "completionTimeoutPerGiB": 20}
    out = run(db(memory="16Gi"), hco(live_migration=lm), samples=dirty((20 * MI, "db")))
    assert series(out, RISK) == {(NS, "db", "worker-0"): 0.3125}
    assert series(out, DURATION) == {(NS, "db", "worker-0"): pytest.approx(16 * GI / (44 * MI))}
    [finding] = out.findings
    assert finding.severity is Severity.WARNING
    assert "timeout 360 s (20 s/GiB)" in finding.message
    # With the 150 s/GiB of older releases it converges in time: no series.
    lm["completionTimeoutPerGiB"] = 150
    out = run(db(memory="16Gi"), hco(live_migration=lm), samples=dirty((20 * MI, "db")))
    assert series(out, RISK) == {} and out.findings == []


def test_guest_memory_from_memory_guest():
    lm = {"bandwidthPerMigration": "64Mi", "completionTimeoutPerGiB": 20}
    out = run(db(memory="1Gi", guest="16Gi"), hco(live_migration=lm), samples=dirty((20 * MI, "db")))
    assert [f.severity for f in out.findings] == [Severity.WARNING]


def test_series_only_for_offenders():
    objects = [db(), vmi("calm"), vmi("busy", "other")]
    samples = dirty((0.2 * LINK_SHARE, "db"), (0.0, "calm"), metric(0.8 * LINK_SHARE, "other", "busy"))
    out = run(*objects, samples=samples)
    assert series(out, RISK) == {("other", "busy", "worker-0"): pytest.approx(0.8)}
    assert set(series(out, DURATION)) == {("other", "busy", "worker-0")}
    assert [f.obj for f in out.findings] == [vmi_ref("busy", "other")]


def test_only_running_vmis_with_samples_are_judged():
    objects = [db(phase="Succeeded"), vmi("pending", phase="Pending")]
    samples = dirty((2 * LINK_SHARE, "db"), (2 * LINK_SHARE, "pending"), (2 * LINK_SHARE, "deleted"))
    out = run(*objects, samples=samples)
    assert series(out, RISK) == {} and out.findings == []


def test_same_name_in_another_namespace_is_not_confused():
    out = run(db(), samples=dirty(metric(2 * LINK_SHARE, "other", "db")))
    assert out.findings == []


# ---------------------------------------------------------------- where the bandwidth comes from


def test_vmi_migration_configuration_beats_policy_and_hco():
    objects = [
        db(
            migration_configuration={
                "bandwidthPerMigration": "64Mi",
                "completionTimeoutPerGiB": 150,
                "allowAutoConverge": False,
            }
        ),
        namespace(NS, labels={"tier": "db"}),
        migration_policy("fast", bandwidth="512Mi", namespace_selector={"tier": "db"}),
        hco(live_migration={"bandwidthPerMigration": "256Mi"}),
    ]
    out = run(*objects, samples=dirty((32 * MI, "db")))
    assert series(out, RISK) == {(NS, "db", "worker-0"): 0.5}
    assert "(VMI migrationConfiguration)" in out.findings[0].message


def test_migration_policy_beats_hco():
    objects = [
        db(),
        namespace(NS, labels={"tier": "db"}),
        migration_policy("slow", bandwidth="64Mi", namespace_selector={"tier": "db"}),
        hco(live_migration={"bandwidthPerMigration": "512Mi"}),
    ]
    out = run(*objects, samples=dirty((32 * MI, "db")))
    assert series(out, RISK) == {(NS, "db", "worker-0"): 0.5}
    assert "(MigrationPolicy slow)" in out.findings[0].message


def test_most_specific_migration_policy_wins():
    objects = [
        db(labels={"app": "db", "tier": "gold"}),
        namespace(NS, labels={"team": "a"}),
        migration_policy("a-ns-only", bandwidth="512Mi", namespace_selector={"team": "a"}),
        migration_policy(
            "b-ns-and-vmi", bandwidth="64Mi", namespace_selector={"team": "a"}, vmi_selector={"app": "db"}
        ),
        migration_policy("c-not-matching", bandwidth="1Mi", vmi_selector={"app": "db", "tier": "bronze"}),
    ]
    out = run(*objects, samples=dirty((32 * MI, "db")))
    assert series(out, RISK) == {(NS, "db", "worker-0"): 0.5}
    assert "(MigrationPolicy b-ns-and-vmi)" in out.findings[0].message


def test_equally_specific_policies_tie_break_on_name():
    objects = [
        db(labels={"app": "db"}),
        migration_policy("zz", bandwidth="512Mi", vmi_selector={"app": "db"}),
        migration_policy("aa", bandwidth="64Mi", vmi_selector={"kubevirt.io/domain": "db"}),
    ]
    out = run(*objects, samples=dirty((32 * MI, "db")))
    assert "(MigrationPolicy aa)" in out.findings[0].message


def test_policy_completion_timeout_applies():
    objects = [
        db(memory="16Gi", labels={"app": "db"}),
        migration_policy("strict", bandwidth="64Mi", timeout=20, vmi_selector={"app": "db"}),
    ]
    out = run(*objects, samples=dirty((20 * MI, "db")))
    [finding] = out.findings
    assert finding.severity is Severity.WARNING and "(20 s/GiB)" in finding.message


def test_vmi_completion_timeout_applies():
    objects = [
        db(memory="16Gi", migration_configuration={"bandwidthPerMigration": "64Mi", "completionTimeoutPerGiB": 20})
    ]
    out = run(*objects, samples=dirty((20 * MI, "db")))
    [finding] = out.findings
    assert finding.severity is Severity.WARNING and "(20 s/GiB)" in finding.message


def test_hco_bandwidth_names_its_source():
    out = run(db(), hco("v1", live_migration={"bandwidthPerMigration": "64Mi"}), samples=dirty((32 * MI, "db")))
    assert series(out, RISK) == {(NS, "db", "worker-0"): 0.5}
    assert "(bandwidthPerMigration from hco)" in out.findings[0].message


def test_unlimited_bandwidth_uses_link_speed_over_parallel_migrations():
    out = run(
        db(),
        hco(live_migration={"parallelOutboundMigrationsPerNode": 1}),
        samples=dirty((0.5 * 25e9 / 8, "db")),
        **{"migration-link-speed": "25G"},
    )
    assert series(out, RISK) == {(NS, "db", "worker-0"): pytest.approx(0.5)}
    assert "link speed / 1 parallel outbound migrations" in out.findings[0].message


@pytest.mark.parametrize("where", ["vmi", "policy", "hco"])
def test_every_configured_bandwidth_is_capped_at_the_link_share(where):
    link_share = 1e9 / 8 / 2  # 1 Gbit/s, 2 parallel
    objects = [db(labels={"app": "db"})]
    if where == "vmi":
        objects = [db(labels={"app": "db"}, migration_configuration={"bandwidthPerMigration": "10Gi"})]
    elif where == "policy":
        objects.append(migration_policy("big", bandwidth="10Gi", vmi_selector={"app": "db"}))
    else:
        objects.append(hco(live_migration={"bandwidthPerMigration": "10Gi"}))
    out = run(*objects, samples=dirty((0.6 * link_share, "db")), **{"migration-link-speed": "1G"})
    assert series(out, RISK) == {(NS, "db", "worker-0"): pytest.approx(0.6)}


# ---------------------------------------------------------------- metrics during a migration


@pytest.mark.parametrize("name", upstream.MIGRATION_TRANSFER_RATE)
def test_measured_transfer_rate_is_the_bandwidth(name):
    samples = {**dirty((32 * MI, "db")), name: [metric(40 * MI, name="db")]}
    out = run(db(), hco(live_migration={"bandwidthPerMigration": "512Mi"}), samples=samples)
    assert series(out, RISK) == {(NS, "db", "worker-0"): 0.8}
    assert "(measured transfer rate)" in out.findings[0].message


def test_swapped_transfer_rate_names_prefer_the_memory_rate_of_kubevirt_1_1_to_1_6():
    # KubeVirt 1.1-1.6 publish both names; the memory rate is ..._disk_transfer_rate_bytes there.
    samples = {
        **dirty((32 * MI, "db")),
        "kubevirt_vmi_migration_memory_transfer_rate_bytes": [metric(4 * MI, name="db")],
        "kubevirt_vmi_migration_disk_transfer_rate_bytes": [metric(40 * MI, name="db")],
    }
    out = run(db(), samples=samples)
    assert series(out, RISK) == {(NS, "db", "worker-0"): 0.8}


def test_zero_transfer_rate_is_ignored():
    samples = {**dirty((32 * MI, "db")), "kubevirt_vmi_migration_memory_transfer_rate_bytes": [metric(0, name="db")]}
    out = run(db(), hco(live_migration={"bandwidthPerMigration": "64Mi"}), samples=samples)
    assert series(out, RISK) == {(NS, "db", "worker-0"): 0.5}


@pytest.mark.parametrize("name", upstream.MIGRATION_DIRTY_RATE)
def test_migration_dirty_rate_metrics_are_dirty_rates(name):
    out = run(db(), hco(live_migration={"bandwidthPerMigration": "64Mi"}), samples={name: [metric(48 * MI, name="db")]})
    assert series(out, RISK) == {(NS, "db", "worker-0"): 0.75}


def test_highest_of_steady_and_migration_dirty_rates():
    samples = {**dirty((8 * MI, "db")), "kubevirt_vmi_migration_dirty_memory_rate_bytes": [metric(48 * MI, name="db")]}
    out = run(db(), hco(live_migration={"bandwidthPerMigration": "64Mi"}), samples=samples)
    assert series(out, RISK) == {(NS, "db", "worker-0"): 0.75}


def test_latest_sample_wins():
    samples = {DIRTY: [metric(60 * MI, name="db", ts=200.0), metric(8 * MI, name="db", ts=100.0)]}
    out = run(db(), hco(live_migration={"bandwidthPerMigration": "64Mi"}), samples=samples)
    assert series(out, RISK) == {(NS, "db", "worker-0"): pytest.approx(60 / 64)}


def test_vmi_label_instead_of_name():
    samples = {DIRTY: [metric(48 * MI, name="db", label="vmi")]}
    out = run(db(), hco(live_migration={"bandwidthPerMigration": "64Mi"}), samples=samples)
    assert series(out, RISK) == {(NS, "db", "worker-0"): 0.75}


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -5.0])
def test_unusable_sample_values_are_ignored(value):
    samples = {DIRTY: [metric(value, name="db")]}
    out = run(db(), samples=samples)
    assert series(out, RISK) == {} and out.findings == []


def test_samples_with_missing_labels_are_ignored():
    samples = {
        DIRTY: [
            UpstreamSample({}, 1e12),
            UpstreamSample({"namespace": NS}, 1e12),
            UpstreamSample({"name": "db"}, 1e12, None),
        ],
        "kubevirt_vmi_migration_memory_transfer_rate_bytes": [UpstreamSample({"namespace": NS}, 1.0)],
    }
    out = run(db(), samples=samples)
    assert out.findings == []


# ---------------------------------------------------------------- registry


def test_exemption_on_the_vm_silences_its_vmi():
    objects = [db(), vm("db", annotations={EXEMPT: "migration_dirty_rate"}), vmi("web")]
    samples = dirty((2 * LINK_SHARE, "db"), (2 * LINK_SHARE, "web"))
    result = runner.evaluate(state(*objects, samples=samples), config()).result("migration_dirty_rate")
    assert [f.obj for f in result.findings] == [vmi_ref("web")]
    assert {s.labels for s in result.samples if s.family == RISK} == {(NS, "web", "worker-0")}
    assert result.exempted == 1


def test_series_cap_keeps_the_riskiest_vmis():
    objects = [vmi(f"vm-{i}") for i in range(4)]
    samples = dirty(*[((0.5 + i / 10) * LINK_SHARE, f"vm-{i}") for i in range(4)])
    result = runner.evaluate(state(*objects, samples=samples), config(**{"series-cap": 2})).result(
        "migration_dirty_rate"
    )
    assert {s.labels for s in result.samples if s.family == RISK} == {
        (NS, "vm-2", "worker-0"),
        (NS, "vm-3", "worker-0"),
    }
    assert {s.labels for s in result.samples if s.family == DURATION} == {
        (NS, "vm-2", "worker-0"),
        (NS, "vm-3", "worker-0"),
    }
    assert result.dropped == 6  # risk, duration and timeout for each of the two dropped VMIs
    assert len(result.findings) == 4
    assert {s.family for s in result.samples} >= {BANDWIDTH, TIMEOUT, PARALLEL}  # bounded families kept


# ---------------------------------------------------------------- malformed objects


def _damaged():
    status_null = vmi("status-null")
    status_null["status"] = None
    spec_null = vmi("spec-null")
    spec_null["spec"] = None
    no_memory = vmi("no-memory", memory=None)
    mig_state_null = vmi("mig-null")
    mig_state_null["status"]["migrationState"] = None
    mig_cfg_empty = vmi("mig-empty", migration_configuration={})
    mig_cfg_zero = vmi("mig-zero", migration_configuration={"bandwidthPerMigration": "0", "completionTimeoutPerGiB": 0})
    mig_cfg_strings = vmi(
        "mig-strings",
        migration_configuration={"completionTimeoutPerGiB": "20", "parallelOutboundMigrationsPerNode": "3"},
    )
    policy_spec_null = migration_policy("spec-null")
    policy_spec_null["spec"] = None
    policy_selectors_null = migration_policy("selectors-null", bandwidth="1Mi")
    policy_selectors_null["spec"]["selectors"] = None
    ns_labels_null = namespace("other")
    ns_labels_null["metadata"]["labels"] = None
    hco_lm_null = hco("v1beta1")
    hco_lm_null["spec"]["liveMigrationConfig"] = None
    kv_migrations_null = kubevirt_cr(migrations={})
    kv_migrations_null["spec"]["configuration"]["migrations"] = None
    return [
        status_null,
        spec_null,
        no_memory,
        mig_state_null,
        mig_cfg_empty,
        mig_cfg_zero,
        mig_cfg_strings,
        policy_spec_null,
        policy_selectors_null,
        ns_labels_null,
        hco_lm_null,
        kv_migrations_null,
    ]


def damaged_samples():
    names = ["status-null", "spec-null", "no-memory", "mig-null", "mig-empty", "mig-zero", "mig-strings"]
    return {DIRTY: [metric(2 * LINK_SHARE, name=n) for n in names] + [metric(2 * LINK_SHARE, name="db")]}


@pytest.mark.parametrize("damaged", _damaged(), ids=lambda o: f"{o['kind']}-{o['metadata']['name']}")
def test_malformed_object_never_raises_nor_hides_the_good_vmi(damaged):
    out = run(damaged, db(), samples=damaged_samples())
    assert [f.severity for f in out.findings if f.obj == vmi_ref()] == [Severity.WARNING]


def test_all_malformed_together():
    out = run(*_damaged(), db(), samples=damaged_samples())
    assert [f.severity for f in out.findings if f.obj == vmi_ref()] == [Severity.WARNING]
    assert series(out, RISK)[(NS, "db", "worker-0")] == 2.0


def test_vmi_with_unknown_memory_is_judged_by_risk_alone():
    out = run(vmi("bare", memory=None), samples=dirty((0.4 * LINK_SHARE, "bare")))
    assert out.findings == []
    out = run(vmi("bare", memory=None), samples=dirty((1.2 * LINK_SHARE, "bare")))
    assert [f.severity for f in out.findings] == [Severity.WARNING]


def test_unknown_memory_does_not_claim_non_convergence():
    out = run(vmi("bare", memory=None), samples=dirty((0.6 * LINK_SHARE, "bare")))
    assert [f.severity for f in out.findings] == [Severity.INFO]
    assert not math.isinf(series(out, DURATION).get((NS, "bare", "worker-0"), 0.0))


def test_zero_link_speed_is_rejected_or_harmless():
    try:
        cfg = config(**{"migration-link-speed": "0"})
    except ConfigError:
        return
    result = runner.evaluate(state(db(), samples=dirty((MI, "db"))), cfg).result("migration_dirty_rate")
    assert result.status is Status.OK, result.error


def test_equal_total_score_prefers_vmi_labels_like_kubevirt():
    objects = [
        db(labels={"app": "db"}),
        namespace(NS, labels={"team": "a"}),
        migration_policy("a-namespace", bandwidth="512Mi", namespace_selector={"team": "a"}),
        migration_policy("b-vmi", bandwidth="64Mi", vmi_selector={"app": "db"}),
    ]
    out = run(*objects, samples=dirty((32 * MI, "db")))
    assert series(out, RISK) == {(NS, "db", "worker-0"): 0.5}  # 32 MiB/s over b-vmi's 64 MiB/s
    assert ["(MigrationPolicy b-vmi)" in f.message for f in out.findings] == [True]


def test_catch_all_policy_applies_like_kubevirt():
    objects = [db(), migration_policy("everyone", bandwidth="64Mi")]
    out = run(*objects, samples=dirty((32 * MI, "db")))
    assert series(out, RISK) == {(NS, "db", "worker-0"): 0.5}
    assert "(MigrationPolicy everyone)" in out.findings[0].message
