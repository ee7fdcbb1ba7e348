"""The alert pack (alerts/): promtool on every rule file and unit test, the
generated PrometheusRule, and consistency between rules, runbooks, the exporter's
metric families and the upstream metric list (the Alertmanager configuration:
tests/test_alertmanager.py)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ov_exporter.checks import CHECKS
from ov_exporter.render import all_families, exposition_name

from . import upstream_contract
from .conftest import ROOT, promql_metric_names, require_binary

ALERTS = ROOT / "alerts"
RUNBOOKS = ALERTS / "runbooks"
UNIT_TESTS = ROOT / "tests" / "alerts"
PROMETHEUSRULE = ROOT / "deploy" / "overlays" / "kubernetes" / "prometheusrule.yaml"
SECTIONS = ["Meaning", "Impact", "Diagnosis", "Mitigation"]
SEVERITIES = {"critical", "warning", "info"}
FORBIDDEN_LABELS = {
    "kubernetes_operator_part_of",
    "operator_health_impact",
}  # HCO counts such alerts into its health status

# Families of the checks that no alert reads, and why. Every other family of every
# check must be read by some alert (directly or through a recording rule).
NOT_ALERTED: dict[str, str] = {
    # rebalance_plan
    "ov_rebalance_plan_waves": "what the plan OVRebalancePlanAvailable announces would take (panel and runbook)",
    "ov_rebalance_plan_duration_seconds": "what the plan OVRebalancePlanAvailable announces would take",
    "ov_rebalance_plan_unmovable_vms": "the reasons are migration_readiness's (alerted per VM by OVVMMigrationBlocked) "
    "or facts of the plan shown on the overview panel",
    # rwo_vm_disks
    "ov_rwo_vm_disks": "RWO disks are one blocking reason of ov_vm_migration_blocked, which OVVMMigrationBlocked "
    "reads: one alert per VM, not one per reason",
    # node_failure_planning
    "ov_node_remediation_covered": "names the nodes behind ov_nodes_without_remediation, which the one cluster-wide "
    "alert reads (one fact, one alert)",
    # control_plane_placement
    "ov_control_plane_nodes_host_unknown": "coverage of the host information; the check raises no finding on it",
    # cpu_overcommit
    "ov_node_vm_vcpus": "numerator of ov_cpu_overcommit_ratio, which the alerts read",
    "ov_node_physical_cpu_cores": "denominator of ov_cpu_overcommit_ratio (recording rules use it as the list of "
    "VM nodes)",
    "ov_node_cpu_threads_per_core": "configuration: the threads-per-core factor behind the physical core count",
    "ov_cpu_overcommit_threshold_ratio": "threshold gauge: the alerts compare against it, it is no finding",
    "ov_vmi_cpu_allocation_ratio": "configuration: vmiCPUAllocationRatio sets CPU requests per vCPU (HCO writes 10 "
    "into every HyperConverged CR), not the vCPU:core overcommit",
    # memory_overcommit
    "ov_node_vm_guest_memory_bytes": "numerator of ov_memory_overcommit_ratio, which the alerts read",
    "ov_node_memory_capacity_bytes": "denominator of ov_memory_overcommit_ratio",
    "ov_memory_overcommit_percentage": "configuration (memoryOvercommitPercentage); the check raises no finding on it",
    "ov_memory_overcommit_threshold_ratio": "threshold gauge: the alerts compare against it, it is no finding",
    # rhel_nodes
    "ov_rhel_nodes": "count of the nodes ov_rhel_node_info lists one by one; alerting on both would notify twice",
    # migration_dirty_rate
    "ov_migration_predicted_duration_seconds": "same VMIs as ov_migration_dirty_rate_risk, which the alerts read; its "
    "limit (completionTimeoutPerGiB x guest GiB, per VMI) is not exported, "
    "so PromQL cannot judge it on its own",
    "ov_migration_bandwidth_bytes_per_second": "configuration (effective bandwidthPerMigration); the PromQL "
    "dirty-rate fallback divides by it",
    # scheduling_constraints
    "ov_vm_scheduling_constraints": 'the constraint count behind issue="excessive" of ov_vm_scheduling_issue, '
    "which the alerts read (same VMs)",
    "ov_vms_pinned_to_node": 'count of the issue="pinned" series of ov_vm_scheduling_issue; alerting on both '
    "would notify twice",
    "ov_vmis_unschedulable": "count of the ov_vmi_unschedulable series, which the alerts read",
    # strict_vm_limits
    "ov_vms_with_resource_limits": "count of the VMs that ov_vm_resource_limit_ratio lists one by one",
    "ov_migration_completion_timeout_per_gib_seconds": "configuration (completionTimeoutPerGiB)",
    "ov_migration_parallel_outbound_per_node": "configuration (parallelOutboundMigrationsPerNode)",
    # trident_volume_limits
    "ov_trident_backends_without_volume_size_limit": "count of the backends ov_trident_backend_volume_size_limit_bytes "
    "lists one by one; alerting on both would notify twice",
    # migration_readiness
    "ov_vms_migration_blocked": "count of the VMs ov_vm_migration_blocked lists one by one; alerting on both "
    "would notify twice",
    "ov_vms_migration_blocked_by_reason": "the same VMs per reason, for dashboards",
    "ov_migration_slots": "in-flight VMIMs and parallelMigrationsPerCluster, for dashboards: a full queue is no "
    "alert (OVMigrationQueueStalled judges one that stops draining), and the check's "
    "migration_slots_full reason reaches ov_vm_migration_blocked",
    # migration_capacity
    "ov_migration_config_info": "configuration: where the migration settings come from and the network name",
    "ov_migration_parallel_outbound_per_node_limit": "configuration; denominator of "
    "ov_node_outbound_migrations_in_flight_ratio",
    "ov_migration_config_bandwidth_bytes_per_second": "configuration (bandwidthPerMigration, 0 = unlimited)",
    "ov_migration_config_completion_timeout_per_gib_seconds": "configuration (completionTimeoutPerGiB)",
    "ov_migration_dedicated_network": "input of ov_migration_parallel_without_dedicated_network, which alerts read",
    "ov_migrations_in_flight": "dashboard series: KubeVirt queues migrations above its limits, so a full queue is "
    "no alert (OVMigrationQueueStalled judges a queue that stops draining)",
    "ov_node_outbound_migrations_in_flight": "dashboard series, as ov_migrations_in_flight",
    "ov_migrations_in_flight_ratio": "dashboard series, as ov_migrations_in_flight",
    "ov_node_outbound_migrations_in_flight_ratio": "dashboard series, as ov_migrations_in_flight",
    "ov_migration_parallel_per_cluster": "configuration; the dashboards' in-flight ratio divides by it "
    "(cluster:ov_parallel_migrations_per_cluster:limit)",
    "ov_migrations_pod_network": "count quoted in the finding of ov_migration_parallel_without_dedicated_network",
    "ov_migrations_running_pod_network": "numerator of ov_migration_parallel_without_dedicated_network (1 at 2 or "
    "more), which the alerts read",
    "ov_migration_queue_oldest_pending_timestamp_seconds": "input of ov_migration_queue_stalled, which the alert "
    "reads; dashboards plot the queue age",
    "ov_migration_last_finished_timestamp_seconds": "input of ov_migration_queue_stalled; dashboards",
    "ov_migration_queue_stall_threshold_seconds": "configuration (thresholds.migration-queue-stall-minutes)",
    "ov_kubevirt_info": "the KubeVirt release the exporter sees: context for every alert and dashboard, no finding",
    "ov_hyperconverged_info": "the HCO release the exporter sees: context, no finding",
    # rebalance_watch
    "ov_rebalance_last_migration_timestamp_seconds": "dashboard series: when the window opened",
    "ov_rebalance_start_timestamp_seconds": "dashboard series: the start of the rebalance wave (before/after anchor)",
    "ov_migrations": "dashboard counts of migrations by cause and phase; upgrades and drains raise no finding",
    "ov_rebalance_watch_active": "dashboard series; the per-object series exist only while the window is open",
    "ov_rebalance_watch_window_seconds": "configuration (rebalance-watch-window)",
    "ov_rebalance_evaluation_timestamp_seconds": "the time the window is judged at (snapshots: newest event)",
    "ov_rebalance_migrations_succeeded": "dashboard count; no finding",
    "ov_rebalance_migrations_failed": "count of the VMIMs ov_rebalance_failed_migration lists one by one",
    "ov_node_running_vmis": "dashboard series (VMs per node before and after); no finding",
    "ov_node_vm_allocation_ratio": "dashboard series; ov_rebalance_node_above_mean_ratio carries the finding",
    "ov_rebalance_allocation_mean_ratio": "dashboard series: the mean the findings compare against",
    "ov_rebalance_allocation_spread_ratio": "dashboard series (max - min across VM nodes); no finding",
    # vm_right_sizing
    "ov_vm_right_sizing_vms": "counts of the VMIs that ov_vm_{over,under}_provisioned_usage_ratio list one by one",
    "ov_vm_right_sizing_cpu_cores": "cluster totals of requested vs used cores, for dashboards: no finding",
    "ov_vm_right_sizing_memory_bytes": "cluster totals of requested vs used memory, for dashboards: no finding",
}

# absent() yields one label-less series of value 1: nothing to template.
NO_LABELS = {"OVExporterAbsent", "OVEtcdMetricsAbsent"}
# Alerts about the whole cluster or the exporter as a whole: no object label to name.
CLUSTER_WIDE = NO_LABELS | {
    "OVClusterCPUOvercommitted",
    "OVClusterMemoryOvercommitted",
    "OVPostRebalanceCPUSpreadIncreased",
    "OVMigrationParallelWithoutDedicatedNetwork",
    "OVMigrationQueueStalled",
    "OVNodeWithoutRemediation",
    "OVRebalancePlanAvailable",
}


def _load_build():
    spec = importlib.util.spec_from_file_location("ov_alerts_build", ALERTS / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load_build()
RULE_FILES = build.rule_files()
TEST_FILES = sorted(UNIT_TESTS.glob("*-test.yaml"))


def _rules() -> list[tuple[Path, dict]]:
    return [
        (path, rule)
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


ALERT_RULES = [(path, rule) for path, rule in _rules() if "alert" in rule]
RECORD_RULES = [(path, rule) for path, rule in _rules() if "record" in rule]
ALERT_NAMES = sorted({rule["alert"] for _, rule in ALERT_RULES})


def _run(args: list[str], cwd: Path = ROOT, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------- promtool


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_promtool_check_rules_accepts_every_rule_file(path: Path):
    proc = _run([require_binary("promtool"), "check", "rules", str(path)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_promtool_check_rules_accepts_the_prometheusrule_spec(tmp_path: Path):
    doc = yaml.safe_load(PROMETHEUSRULE.read_text())
    assert doc["apiVersion"] == "monitoring.coreos.com/v1" and doc["kind"] == "PrometheusRule"
    plain = tmp_path / "spec.yaml"
    plain.write_text(yaml.safe_dump({"groups": doc["spec"]["groups"]}, sort_keys=False))
    proc = _run([require_binary("promtool"), "check", "rules", str(plain)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    total = sum(len(g["rules"]) for p in RULE_FILES for g in yaml.safe_load(p.read_text())["groups"])
    assert f"SUCCESS: {total} rules found" in proc.stdout


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_promtool_test_rules_passes(path: Path):
    proc = _run([require_binary("promtool"), "test", "rules", path.name], cwd=UNIT_TESTS)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_rule_file_has_a_unit_test_file():
    tested = {rf for t in TEST_FILES for rf in yaml.safe_load(t.read_text())["rule_files"]}
    tested = {(UNIT_TESTS / rf).resolve() for rf in tested}
    assert not [p.name for p in RULE_FILES if p.resolve() not in tested]
    for path in RULE_FILES:
        assert (UNIT_TESTS / f"{path.stem}-test.yaml").is_file(), f"tests/alerts/{path.stem}-test.yaml is missing"


def test_every_alert_severity_has_a_firing_case_and_every_alert_a_silent_case():
    fired: set[tuple[str, str]] = set()
    silent: set[str] = set()
    names: list[str] = []
    for path in TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            names.append(case["name"])
            for check in case.get("alert_rule_test", []):
                if check.get("exp_alerts"):
                    fired |= {(check["alertname"], a["exp_labels"]["severity"]) for a in check["exp_alerts"]}
                else:
                    silent.add(check["alertname"])
    wanted = {(rule["alert"], rule["labels"]["severity"]) for _, rule in ALERT_RULES}
    assert not sorted(wanted - fired), "alert severities never seen firing in tests/alerts"
    assert not sorted(set(ALERT_NAMES) - silent), "alerts never asserted silent in tests/alerts"
    # Test names are sentences that say what happens, naming the alert or rule.
    assert all(len(n.split()) >= 6 for n in names), [n for n in names if len(n.split()) < 6]
    assert len(names) == len(set(names)), "duplicate test names"


# ---------------------------------------------------------------- build.py


def test_build_check_passes_on_the_committed_rule_files():
    proc = _run([sys.executable, str(ALERTS / "build.py"), "--check"])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _copy_generated(deploy: Path) -> list[Path]:
    """A copy of every file build.py generates under deploy/, at the same relative paths."""
    copies = []
    for path in build.outputs(ROOT / "deploy", build.DEFAULT_RUNBOOK_BASE, build.DEFAULT_PARALLEL_MIGRATIONS):
        copy = deploy / path.relative_to(ROOT / "deploy")
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(path.read_text())
        copies.append(copy)
    return copies


@pytest.mark.parametrize(
    "generated",
    [
        "overlays/kubernetes/prometheusrule.yaml",
        "overlays/openshift-user-workload/prometheusrule.yaml",
        "overlays/openshift-user-workload/alertingrule.yaml",
        "README.md",
    ],
)
def test_build_check_fails_on_any_stale_or_missing_output(tmp_path: Path, capsys, generated: str):
    deploy = tmp_path / "deploy"
    _copy_generated(deploy)
    assert build.main(["--check", "--deploy-dir", str(deploy)]) == 0
    target = deploy / generated
    target.write_text(target.read_text().replace("for: 30m", "for: 1m", 1).replace("| `OV", "| `XOV", 1))
    assert build.main(["--check", "--deploy-dir", str(deploy)]) == 1
    assert f"{target} is stale" in capsys.readouterr().err
    if generated != "README.md":
        target.unlink()
        assert build.main(["--check", "--deploy-dir", str(deploy)]) == 1


def test_build_refuses_a_deploy_readme_without_the_unavailable_section(tmp_path: Path, capsys):
    deploy = tmp_path / "deploy"
    _copy_generated(deploy)
    (deploy / "README.md").write_text("# Deploying\n")
    assert build.main(["--check", "--deploy-dir", str(deploy)]) == 2
    assert "README.md: no `<!-- BEGIN unavailable alerts" in capsys.readouterr().err


def test_build_rebuilds_runbook_urls_from_the_base_and_sets_the_migration_limit():
    doc = yaml.safe_load(build.render("https://runbooks.example.com/ov/", 8))
    alerts = [r for g in doc["spec"]["groups"] for r in g["rules"] if "alert" in r]
    assert alerts and all(
        r["annotations"]["runbook_url"] == f"https://runbooks.example.com/ov/{r['alert']}.md" for r in alerts
    )
    limit = [r for g in doc["spec"]["groups"] for r in g["rules"] if r.get("record") == build.LIMIT_RECORD]
    # The fallback of each cluster that counts migrations, and the one where nothing does.
    assert len(limit) == 1 and limit[0]["expr"].rstrip().endswith("or on() vector(8)")
    assert limit[0]["expr"].count("vector(8)") == 2 and "vector(5)" not in limit[0]["expr"]
    assert "ov_migration_parallel_per_cluster" in limit[0]["expr"]  # the exporter's limit wins when fresh
    # Everything else is the rule files verbatim.
    default = yaml.safe_load(build.render())
    assert [g["name"] for g in default["spec"]["groups"]] == [g["name"] for g in doc["spec"]["groups"]]
    assert yaml.safe_load(PROMETHEUSRULE.read_text()) == default


def test_build_refuses_a_rule_file_whose_runbook_url_does_not_follow_the_pattern(tmp_path: Path):
    bad = yaml.safe_load((ALERTS / "etcd.yaml").read_text())
    bad["groups"][0]["rules"][0]["annotations"]["runbook_url"] = "https://elsewhere.example/x.md"
    (tmp_path / "etcd.yaml").write_text(yaml.safe_dump(bad))
    with pytest.raises(build.BuildError, match="runbook_url must be"):
        build.render(alerts_dir=tmp_path)


# ---------------------------------------------------------------- alert shape


def test_alert_names_are_camel_case_with_the_common_prefix():
    bad = [n for n in ALERT_NAMES if not re.fullmatch(r"OV(?:[A-Z][a-z0-9]*|[A-Z]+(?=[A-Z]|$))+", n)]
    assert not bad


@pytest.mark.parametrize("path,rule", ALERT_RULES, ids=lambda x: x.get("alert") if isinstance(x, dict) else x.name)
def test_alert_has_severity_for_summary_description_and_runbook_url(path: Path, rule: dict):
    name = rule["alert"]
    assert rule["labels"]["severity"] in SEVERITIES
    assert re.fullmatch(r"[0-9]+[smh]", str(rule.get("for", ""))), f"{name}: `for` avoids flapping"
    ann = rule["annotations"]
    assert set(ann) == {"summary", "description", "runbook_url"}
    assert "{{" not in ann["summary"], f"{name}: summary is static"
    if name not in NO_LABELS:
        assert "{{" in ann["description"], f"{name}: description is templated"
    if name not in CLUSTER_WIDE:
        assert "$labels." in ann["description"], f"{name}: description names the object from its labels"
    assert ann["runbook_url"] == f"{build.DEFAULT_RUNBOOK_BASE}/{name}.md"


def test_no_alert_counts_towards_the_openshift_virtualization_health_status():
    for path, rule in ALERT_RULES:
        assert not FORBIDDEN_LABELS & set(rule.get("labels", {})), f"{path.name}: {rule['alert']}"
    for path in [*RULE_FILES, PROMETHEUSRULE]:
        text = path.read_text()
        assert not re.search(r"^\s*(kubernetes_operator_part_of|operator_health_impact)\s*:", text, re.M), path


def test_alerts_sharing_a_name_differ_in_severity_and_keep_one_summary():
    by_name: dict[str, list[dict]] = {}
    for _, rule in ALERT_RULES:
        by_name.setdefault(rule["alert"], []).append(rule)
    for name, rules in by_name.items():
        severities = [r["labels"]["severity"] for r in rules]
        assert len(severities) == len(set(severities)), name
        assert len({r["annotations"]["summary"] for r in rules}) == 1, name


# ---------------------------------------------------------------- runbooks


@pytest.mark.parametrize("name", ALERT_NAMES)
def test_every_alert_has_a_runbook_with_the_four_sections(name: str):
    path = RUNBOOKS / f"{name}.md"
    assert path.is_file(), f"alerts/runbooks/{name}.md is missing"
    text = path.read_text()
    assert text.startswith(f"# {name}\n"), "the H1 is the alert name"
    sections = re.findall(r"^## (.+)$", text, re.M)
    assert sections == SECTIONS
    bodies = re.split(r"^## .+$", text, flags=re.M)[1:]
    assert all(body.strip() for body in bodies), "no empty section"
    diagnosis = bodies[2]
    assert re.search(r"^\s*\$ (oc|virtctl|curl) ", diagnosis, re.M), "Diagnosis has commands to paste"
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        first = [ln.strip() for ln in block.splitlines() if ln.strip()][0]
        assert first.startswith(("$ ", "sh-")), f"commands start with `$ `: {first}"
    severities = {r["labels"]["severity"] for _, r in ALERT_RULES if r["alert"] == name}
    meaning = bodies[0]
    assert re.search(r"\b\d+\s+(minutes?|hours?)\b|\bone\s+hour\b", meaning), "Meaning states the `for` duration"
    if len(severities) > 1:
        assert all(s in meaning for s in severities), "Meaning explains every severity"


def test_runbooks_belong_to_alerts_and_their_links_resolve():
    assert sorted(p.stem for p in RUNBOOKS.glob("*.md")) == ALERT_NAMES
    for path in RUNBOOKS.glob("*.md"):
        for target in re.findall(r"\]\(([^)#]+\.md)\)", path.read_text()):
            if not target.startswith("http"):
                assert (path.parent / target).resolve().is_file(), f"{path.name}: broken link {target}"


# ---------------------------------------------------------------- metric names


def _parser():
    try:
        import promql_parser
    except ImportError:
        pytest.fail("promql-parser is not installed: it belongs to the test extras (pip install promql-parser)")
    return promql_parser


def _metric_names(expr: str) -> set[str]:
    _parser()  # a missing parser fails with the install hint
    return promql_metric_names(expr)


def test_the_metric_walker_sees_every_selector():
    assert _metric_names(
        'sum by (a) (rate(x_total{b="c"}[5m])) / on() group_left() -y '
        "and avg_over_time((z > 1)[1h:5m]) or topk(1, w offset 1h)"
    ) == {"x_total", "y", "z", "w"}


def test_every_metric_in_an_expression_is_an_exporter_family_a_recording_rule_or_a_listed_upstream_metric():
    """Upstream names are checked against the contract (alerts/upstream-metrics.yaml, through
    tests/upstream_contract.py, which resolves a histogram's _bucket/_sum/_count); the contract
    may also list candidates no rule reads yet."""
    exporter = {exposition_name(f) for _, f in all_families()}
    recorded = {rule["record"] for _, rule in RECORD_RULES}
    assert not exporter & set(upstream_contract.metrics()), "upstream-metrics.yaml lists exporter families"
    for path, rule in _rules():
        names = _metric_names(rule["expr"])
        # ALERTS: Prometheus' own series of pending and firing alerts (the exporter-outage hold)
        unknown = {n for n in names - exporter - recorded - {"ALERTS"} if upstream_contract.base_name(n) is None}
        assert not unknown, f"{path.name} {rule.get('alert') or rule.get('record')}: unknown metrics {sorted(unknown)}"
    # Recording rules keep the `ov_` mark in their metric part so they never clash
    # with another rule pack.
    assert all(r.split(":")[1].startswith("ov_") for r in recorded)


def _used_by_alerts() -> set[str]:
    """Metrics the alerts read, following recording rules down to their inputs."""
    records = {rule["record"]: _metric_names(rule["expr"]) for _, rule in RECORD_RULES}
    seen: set[str] = set()
    todo = [n for _, rule in ALERT_RULES for n in _metric_names(rule["expr"])]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(records.get(name, ()))
    return seen


def test_every_finding_producing_exporter_family_is_used_by_an_alert():
    used = _used_by_alerts()
    families = {exposition_name(f): spec.id for spec in CHECKS for f in spec.families}
    assert not sorted(set(NOT_ALERTED) - set(families)), "NOT_ALERTED names families that no check declares"
    missing = sorted(n for n in families if n not in NOT_ALERTED and n not in used)
    assert not missing, f"no alert reads {missing}: add an alert or an exclusion with its reason"


def test_every_check_is_guarded_against_stale_data():
    """Each alert on a check's gauges joins check:ov_check_up:fresh for that very check."""
    owner = {exposition_name(f): spec.id for spec in CHECKS for f in spec.families}
    for _, rule in ALERT_RULES:
        checks = {owner[n] for n in _metric_names(rule["expr"]) if n in owner}
        for check in checks:
            guard = f"and on(cluster, job, instance) ( {_fresh(check)} )"
            assert guard in re.sub(r"\s+", " ", rule["expr"]), f"{rule['alert']}: reads {check} gauges without {guard}"


def _fresh(check: str) -> str:
    return (
        f'ov_check_up{{check="{check}"}} == 1 and on(cluster, job, instance) '
        f'time() - ov_check_last_success_timestamp_seconds{{check="{check}"}} < 900'
    )


def _hold_clause(alert: str, severity: str, check: str, on: str) -> str:
    by = "cluster, job" if on == "on(cluster, job)" else "cluster"
    return (
        f"and ignoring(alertname, alertstate, severity, impact) "
        f'ALERTS{{alertname="{alert}", alertstate="firing", severity="{severity}"}} '
        f'and {on} ( max by ({by}) (last_over_time(ov_check_up{{check="{check}"}}[1d])) '
        f"unless on({by}) ( {_fresh(check)} ) )"
    )


def test_every_alert_on_exporter_series_holds_while_the_exporter_is_blind():
    """An exporter outage must never resolve a page: each alert that reads a check's
    gauges (or a recording rule built on them) keeps its own firing series while the
    check is blind, matched on the exporter's cluster and job (or on(cluster) when the alert's
    labels come from another job, as node_exporter's for the post-rebalance alerts), with the
    value of its condition over the series' last samples (so descriptions stay true)."""
    owner = {exposition_name(f): spec.id for spec in CHECKS for f in spec.families}
    records = {rule["record"]: _metric_names(rule["expr"]) for _, rule in RECORD_RULES}

    def checks_behind(names: set[str]) -> set[str]:
        found, todo, seen = set(), list(names), set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            if name in owner:
                found.add(owner[name])
            todo.extend(records.get(name, ()))
        return found - {"exporter"}

    held = 0
    for _, rule in ALERT_RULES:
        direct = {owner[n] for n in _metric_names(rule["expr"]) if n in owner}
        checks = checks_behind(_metric_names(rule["expr"]) - {"ALERTS"})
        if not checks:
            assert "ALERTS" not in rule["expr"], f"{rule['alert']}: holds without reading exporter series"
            continue
        expr = re.sub(r"\s+", " ", rule["expr"])
        # on(cluster, job) when the alert's labels are the exporter's; on(cluster) when they come
        # from another job and the exporter only gates it (the post-rebalance window).
        on = (
            "on(cluster, job)"
            if direct and "and on(cluster) ( ov_rebalance_watch_active" not in expr
            else "on(cluster)"
        )
        want = [_hold_clause(rule["alert"], rule["labels"]["severity"], c, on) for c in checks]
        assert any(w in expr for w in want), f"{rule['alert']} ({rule['labels']['severity']}): no hold clause {want[0]}"
        if on == "on(cluster, job)":  # the held half judges the exporter series' last samples
            held_half = expr.split(" or (", 1)[-1]
            assert "last_over_time(ov_" in held_half, f"{rule['alert']}: the held half reads no last sample"
        held += 1
    assert held >= 30


def test_runbook_urls_default_to_the_exporter_service_that_deploy_creates_and_it_serves_them_all():
    """runbook_url must point at something that exists: by default the exporter's own
    /runbooks/ path behind the Service of deploy/base (HTTPS: every overlay gives it a
    serving certificate; a Route or mirror is one setting away, alerts/README.md); the
    package ships every alert's runbook for it to serve."""
    from importlib import resources

    base = ROOT / "deploy" / "base"
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    service = yaml.safe_load((base / "service.yaml").read_text())
    args = yaml.safe_load((base / "deployment.yaml").read_text())["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--tls-cert-file" in args
    port = service["spec"]["ports"][0]["port"]
    assert build.DEFAULT_RUNBOOK_BASE == (
        f"https://{service['metadata']['name']}.{kustomization['namespace']}.svc:{port}/runbooks"
    )
    served = {p.name for p in (resources.files("ov_exporter") / "alert_runbooks").iterdir()}
    assert {f"{name}.md" for name in ALERT_NAMES} <= served
