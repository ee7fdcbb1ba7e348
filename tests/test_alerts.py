"""The alert pack (alerts/): promtool on every rule file and unit test, the
generated PrometheusRule, and consistency between rules, runbooks, the exporter's
metric families and the upstream metric list (the Alertmanager configuration:
tests/test_alertmanager.py)."""

from __future__ import annotations

import concurrent.futures
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

# absent() yields one label-less series of value 1: nothing to template.
NO_LABELS = {"OVExporterAbsent", "OVEtcdMetricsAbsent"}
# Alerts about the whole cluster or the exporter as a whole: no object label to name
# (the checks declare theirs: AlertDecl.names).
CLUSTER_WIDE = NO_LABELS | {a.name for spec in CHECKS for a in spec.alerts if a.names == "Cluster"}


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


@pytest.fixture(scope="module")
def promtool_runs() -> dict[str, subprocess.CompletedProcess]:
    """Every unit-test file run by promtool, two at a time (one a core), the largest first."""
    promtool = require_binary("promtool")
    largest_first = sorted(TEST_FILES, key=lambda p: p.stat().st_size, reverse=True)
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        runs = pool.map(lambda p: _run([promtool, "test", "rules", p.name], cwd=UNIT_TESTS), largest_first)
        return {p.name: proc for p, proc in zip(largest_first, runs)}


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_promtool_test_rules_passes(path: Path, promtool_runs: dict[str, subprocess.CompletedProcess]):
    proc = promtool_runs[path.name]
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
    missing = sorted(
        exposition_name(f)
        for spec in CHECKS
        for f in spec.families
        if not f.no_alert and exposition_name(f) not in used
    )
    assert not missing, f"no alert reads {missing}: add an alert, or say why none does in the Family's no_alert"


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


def test_thresholds_the_rules_cannot_read_from_the_exporter_are_the_configuration_defaults():
    """Alerts read the thresholds the exporter publishes (ov_*_threshold_ratio). The PromQL arm of
    OVVMIDirtyRateTooHighForMigration judges clusters where the check has no samples and so
    publishes none: it carries the defaults, and they must be the configuration's."""
    from ov_exporter.config import Thresholds

    promql_arm = re.compile(
        r':ov_migration_dirty_rate_risk:ratio, "vmi", "\$1", "name", "\(\.\*\)"\) (>= [\d.]+(?: < [\d.]+)?)'
    )
    arms = {
        rule["labels"]["severity"]: promql_arm.search(rule["expr"]).group(1)
        for _, rule in _rules()
        if rule.get("alert") == "OVVMIDirtyRateTooHighForMigration"
    }
    t = Thresholds()
    assert arms == {
        "warning": f">= {t.dirty_rate_risk_critical:g}",
        "info": f">= {t.dirty_rate_risk_warning:g} < {t.dirty_rate_risk_critical:g}",
    }
    for _, rule in _rules():
        if rule.get("alert") in ("OVVMIDirtyRateTooHighForMigration", "OVPostRebalanceNodeCPUHigh"):
            exporter_arms = promql_arm.sub("", rule["expr"])
            assert not re.search(
                r"(?:ov_migration_dirty_rate_risk(?:\[1d\]\))?|:rate5m) [<>]=? [\d.]", exporter_arms
            ), rule["alert"]
