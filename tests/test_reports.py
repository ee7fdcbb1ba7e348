"""Reports for people and for CI: the per-anti-pattern summary, the cluster score,
JUnit XML and SARIF (validated against the SARIF 2.1.0 JSON schema), with findings
located at the file and line of the object in a GitOps tree of manifests."""

from __future__ import annotations

import json
import re
import subprocess
import textwrap
from pathlib import Path
from xml.etree import ElementTree as ET

import jsonschema
import pytest
from ov_exporter.checks import CHECKS
from ov_exporter.config import default_config
from ov_exporter.coverage import ALERT_ONLY, ANTI_PATTERNS, NOT_OBSERVABLE, UPSTREAM_ALERTS, checks_for, coverage
from ov_exporter.model import Finding, ObjectRef, Severity, Status
from ov_exporter.report import anti_pattern_summary, score
from ov_exporter.runner import CheckResult, Evaluation, evaluate
from ov_exporter.sources.files import load_directory
from ov_exporter.store import Store

from .conftest import CLEAN, ROOT
from .sarif_schema import fetch as fetch_sarif_schema

# A GitOps repository: VM manifests as people keep them (comments, multi-document
# YAML), and the cluster objects the checks need beside them, one as a JSON list.
VM_YAML = """\
# ERP virtual machines, applied by Argo CD
---
apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata:
  name: sap-router
  namespace: erp
spec:
  runStrategy: Always
  template:
    spec:
      evictionStrategy: LiveMigrate
      domain:
        cpu: {cores: 2}
        memory: {guest: 8Gi}
      volumes:
      - name: root
        persistentVolumeClaim: {claimName: sap-router-root}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: sap-router-root
  namespace: erp
spec:
  accessModes: [ReadWriteOnce]
---
apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata:
  name: web
  namespace: erp
spec:
  runStrategy: Always
  template:
    spec:
      evictionStrategy: LiveMigrate
      volumes:
      - name: root
        persistentVolumeClaim: {claimName: web-root}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: web-root
  namespace: erp
spec:
  accessModes: [ReadWriteMany]
"""

NODES = {
    "apiVersion": "v1",
    "kind": "List",
    "items": [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": "worker-a",
                "labels": {"kubevirt.io/schedulable": "true", "node.openshift.io/os_id": "rhcos"},
            },
            "status": {
                "capacity": {"cpu": "64", "memory": "256Gi"},
                "allocatable": {"cpu": "63", "memory": "250Gi"},
                "nodeInfo": {"osImage": "Red Hat Enterprise Linux CoreOS 418.94"},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": "rhel-b",
                "labels": {"kubevirt.io/schedulable": "true", "node.openshift.io/os_id": "rhel"},
            },
            "status": {
                "capacity": {"cpu": "64", "memory": "256Gi"},
                "allocatable": {"cpu": "63", "memory": "250Gi"},
                "nodeInfo": {"osImage": "Red Hat Enterprise Linux 8.10 (Ootpa)"},
            },
        },
    ],
}


@pytest.fixture(scope="module")
def sarif_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(fetch_sarif_schema().read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture()
def gitops(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "apps" / "erp").mkdir(parents=True)
    (root / "cluster").mkdir()
    (root / "apps" / "erp" / "vms.yaml").write_text(VM_YAML)
    (root / "cluster" / "nodes.json").write_text(json.dumps(NODES, indent=2))
    return root


def line_of(path: Path, pattern: str, occurrence: int = 0) -> int:
    """1-based line of the n-th line matching pattern."""
    hits = [i + 1 for i, line in enumerate(path.read_text().splitlines()) if re.search(pattern, line)]
    return hits[occurrence]


def run_check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "ov-exporter"), "check", *args], capture_output=True, text=True, timeout=120
    )


# ---------------------------------------------------------------- locations


def test_loader_records_the_file_and_line_of_every_object(gitops: Path):
    store = Store()
    loader = load_directory(store.apply, gitops)
    vms = gitops / "apps" / "erp" / "vms.yaml"
    # A YAML document starts at its first key: the apiVersion line after `---`.
    assert loader.origin("VirtualMachine", "erp", "sap-router") == (
        "apps/erp/vms.yaml",
        line_of(vms, r"^apiVersion: kubevirt", 0),
    )
    assert loader.origin("VirtualMachine", "erp", "web") == (
        "apps/erp/vms.yaml",
        line_of(vms, r"^apiVersion: kubevirt", 1),
    )
    assert loader.origin("PersistentVolumeClaim", "erp", "web-root") == (
        "apps/erp/vms.yaml",
        line_of(vms, r"^apiVersion: v1$", 1),
    )
    nodes = gitops / "cluster" / "nodes.json"
    # A JSON list item starts at its opening brace, the line before its "apiVersion".
    assert loader.origin("Node", "", "worker-a") == ("cluster/nodes.json", line_of(nodes, r'"apiVersion": "v1"', 1) - 1)
    assert loader.origin("Node", "", "rhel-b") == ("cluster/nodes.json", line_of(nodes, r'"apiVersion": "v1"', 2) - 1)


def test_list_items_in_yaml_and_compact_json_get_their_own_lines(tmp_path: Path):
    (tmp_path / "list.yaml").write_text(
        textwrap.dedent("""\
        apiVersion: v1
        kind: List
        items:
        - apiVersion: v1
          kind: Namespace
          metadata: {name: a}
        - apiVersion: v1
          kind: Namespace
          metadata: {name: b}
        """)
    )
    (tmp_path / "compact.json").write_text(
        json.dumps(
            {
                "kind": "NamespaceList",
                "apiVersion": "v1",
                "items": [{"metadata": {"name": "c"}}, {"metadata": {"name": "d"}}],
            }
        )
    )
    store = Store()
    loader = load_directory(store.apply, tmp_path)
    assert loader.origin("Namespace", "", "a") == ("list.yaml", 4)
    assert loader.origin("Namespace", "", "b") == ("list.yaml", 7)
    assert loader.origin("Namespace", "", "c") == ("compact.json", 1)
    assert loader.origin("Namespace", "", "d") == ("compact.json", 1)


# ---------------------------------------------------------------- SARIF


def test_sarif_for_a_gitops_tree_validates_and_points_at_the_manifests(gitops: Path, sarif_validator):
    proc = run_check("--snapshot", str(gitops), "--output", "sarif")
    assert proc.returncode == 1, proc.stderr  # warning findings: the CI gate fails
    log = json.loads(proc.stdout)
    sarif_validator.validate(log)
    run = log["runs"][0]
    assert run["originalUriBaseIds"]["SRCROOT"]["uri"] == gitops.resolve().as_uri() + "/"
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert rule_ids == [s.id for s in CHECKS]
    by_object = {
        (r["ruleId"], r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]): r for r in run["results"]
    }

    rwo = by_object["rwo_vm_disks", "VirtualMachine/erp/sap-router"]
    assert (rwo["ruleId"], rwo["level"]) == ("rwo_vm_disks", "note")  # a stopped VM's RWO disk is info
    assert rule_ids[rwo["ruleIndex"]] == "rwo_vm_disks"
    physical = rwo["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"] == {"uri": "apps/erp/vms.yaml", "uriBaseId": "SRCROOT"}
    assert physical["region"]["startLine"] == line_of(gitops / "apps/erp/vms.yaml", r"^apiVersion: kubevirt", 0)

    rhel = by_object["rhel_nodes", "Node/rhel-b"]
    assert rhel["ruleId"] == "rhel_nodes"
    assert rhel["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "cluster/nodes.json"
    assert ("rwo_vm_disks", "VirtualMachine/erp/web") not in by_object  # RWX: clean
    helps = {r["id"]: r["helpUri"] for r in run["tool"]["driver"]["rules"]}
    assert helps["rwo_vm_disks"].endswith("/runbooks/rwo_vm_disks.md")


def test_sarif_reports_skipped_files_and_stays_valid(gitops: Path, sarif_validator):
    (gitops / "apps" / "broken.yaml").write_text("kind: VirtualMachine\nmetadata: {name: [unclosed\n")
    proc = run_check("--snapshot", str(gitops), "--output", "sarif", "--fail-on", "never")
    assert proc.returncode == 0
    log = json.loads(proc.stdout)
    sarif_validator.validate(log)
    notes = [n["message"]["text"] for n in log["runs"][0]["invocations"][0]["toolExecutionNotifications"]]
    assert any("apps/broken.yaml" in n and "invalid YAML" in n for n in notes)
    assert any(r["ruleId"] == "rwo_vm_disks" for r in log["runs"][0]["results"])  # the rest still judged


def test_sarif_of_the_demo_validates_and_has_one_result_per_finding(sarif_validator):
    proc = run_check("--demo", "--output", "sarif", "--fail-on", "never")
    log = json.loads(proc.stdout)
    sarif_validator.validate(log)
    demo_json = json.loads(run_check("--demo", "--output", "json", "--fail-on", "never").stdout)
    assert len(log["runs"][0]["results"]) == len(demo_json["findings"])
    levels = {r["level"] for r in log["runs"][0]["results"]}
    assert levels <= {"error", "warning", "note"} and "error" in levels


def test_sarif_validation_would_catch_a_broken_log(sarif_validator):
    proc = run_check("--demo", "--output", "sarif", "--fail-on", "never")
    log = json.loads(proc.stdout)
    log["runs"][0]["results"][0]["level"] = "critical"  # not a SARIF level
    with pytest.raises(jsonschema.ValidationError):
        sarif_validator.validate(log)


# ---------------------------------------------------------------- JUnit


def test_junit_has_a_suite_per_check_and_fails_at_the_threshold(gitops: Path):
    proc = run_check("--snapshot", str(gitops), "--output", "junit", "--fail-on", "info")
    assert proc.returncode == 1
    suites = ET.fromstring(proc.stdout)
    assert [s.get("name") for s in suites.findall("testsuite")] == [s.id for s in CHECKS]
    statuses = {
        c["id"]: c["status"]
        for c in json.loads(run_check("--snapshot", str(gitops), "--output", "json").stdout)["checks"]
    }
    for suite in suites.findall("testsuite"):
        cases = suite.findall("testcase")
        assert int(suite.get("tests")) == len(cases)
        assert int(suite.get("failures")) == sum(1 for c in cases if c.find("failure") is not None)
        if statuses[suite.get("name")] == "not_applicable":
            assert cases[0].find("skipped") is not None
    failures = {(s.get("name"), c.get("name")): c for s in suites for c in s if c.find("failure") is not None}
    sap = failures["rwo_vm_disks", "VirtualMachine erp/sap-router"]
    assert sap.get("file") == "apps/erp/vms.yaml"
    assert sap.get("line") == str(line_of(gitops / "apps/erp/vms.yaml", r"^apiVersion: kubevirt", 0))
    assert sap.find("failure").get("type") == "info"
    assert "runbooks/rwo_vm_disks.md" in sap.find("failure").text
    assert int(suites.get("failures")) == sum(int(s.get("failures")) for s in suites)


def test_junit_with_fail_on_never_has_no_failures_but_keeps_the_findings(gitops: Path):
    proc = run_check("--snapshot", str(gitops), "--output", "junit", "--fail-on", "never")
    assert proc.returncode == 0
    suites = ET.fromstring(proc.stdout)
    assert suites.get("failures") == "0"
    outs = [c.find("system-out").text for s in suites for c in s if c.find("system-out") is not None]
    assert any(text.startswith("[info] apps/erp/vms.yaml:") for text in outs)


# ---------------------------------------------------------------- score and summary


def _result(check_index: int, status: Status, *severities: Severity) -> CheckResult:
    spec = CHECKS[check_index]
    findings = [Finding(spec.id, sev, ObjectRef("Node", "", f"n{i}"), "x") for i, sev in enumerate(severities)]
    return CheckResult(spec, status, findings=findings)


def test_score_weighs_failing_checks_by_their_worst_severity():
    evaluation = Evaluation(
        [
            _result(0, Status.OK),  # passes: weight 1
            _result(1, Status.OK, Severity.INFO, Severity.INFO),  # info only passes: weight 1
            _result(2, Status.OK, Severity.WARNING, Severity.INFO),  # fails: weight 2
            _result(3, Status.OK, Severity.CRITICAL, Severity.WARNING),  # fails: weight 3
            _result(4, Status.NOT_APPLICABLE),  # left out
            _result(5, Status.FAILED),  # left out, counted as failed
        ],
        0.0,
        0.0,
    )
    sc = score(evaluation)
    assert sc.value == pytest.approx(2 / 7)
    assert (sc.passing, sc.failing, sc.failed, sc.not_applicable) == (2, 2, 1, 1)
    assert score(Evaluation([_result(4, Status.NOT_APPLICABLE)], 0.0, 0.0)).value is None


def test_the_clean_cluster_scores_full_marks_and_the_demo_does_not():
    store = Store()
    load_directory(store.apply, CLEAN)
    clean = score(evaluate(store.state(), default_config()))
    assert clean.value == 1.0 and clean.failing == 0
    table = run_check("--demo", "--fail-on", "never").stdout
    assert re.search(r"^cluster score \d+% \(severity-weighted share of checks passing", table, re.M)
    demo = json.loads(run_check("--demo", "--output", "json", "--fail-on", "never").stdout)["score"]
    assert demo["value"] < 1.0 and demo["failing"] > 0


def test_summary_has_one_row_per_anti_pattern_with_its_verdict():
    store = Store()
    load_directory(store.apply, CLEAN)
    rows = anti_pattern_summary(evaluate(store.state(), default_config()))
    assert [r["anti_pattern"] for r in rows] == list(range(1, 20))
    verdicts = {r["anti_pattern"]: r["verdict"] for r in rows}
    for number in NOT_OBSERVABLE:
        assert verdicts[number] == "not observable"
    assert verdicts[1] == "pass"
    demo = json.loads(run_check("--demo", "--output", "json", "--fail-on", "never").stdout)["anti_patterns"]
    assert {r["anti_pattern"]: r["verdict"] for r in demo}[1] == "fail"
    assert {r["anti_pattern"]: r["worst"] for r in demo}[1] == "warning"
    table = run_check("--demo", "--fail-on", "never").stdout
    assert re.search(r"^AP1 +fail +Using RWO storage for live migration \(3 warning, 1 info\)", table, re.M)


# ---------------------------------------------------------------- coverage registry


def test_every_anti_pattern_is_checked_or_says_why_not():
    assert sorted(ANTI_PATTERNS) == list(range(1, 20))
    for cov in coverage():
        assert cov.checks or cov.not_observable or cov.alert_note, f"anti-pattern {cov.number} is not covered"
        if cov.not_observable:
            assert not cov.checks, f"anti-pattern {cov.number} has a check but is listed as not observable"
    for spec in CHECKS:
        assert spec.anti_pattern in ANTI_PATTERNS and set(spec.also) <= set(ANTI_PATTERNS)
    # Only the three the cluster API cannot show (ONTAP's showmount, testing and starting small) lack a check.
    assert {cov.number for cov in coverage() if not cov.checks} == set(NOT_OBSERVABLE) == {3, 17, 18}


def test_alert_only_anti_patterns_name_alerts_that_exist():
    """Which alert belongs to which check is tested against the declarations in
    tests/test_declarations.py; here the upstream-metric alerts of the coverage table."""
    from .test_declarations import ALERT_RULES

    upstream = {a for names in UPSTREAM_ALERTS.values() for a in names}
    assert upstream <= set(ALERT_RULES), f"UPSTREAM_ALERTS names unknown alerts: {sorted(upstream - set(ALERT_RULES))}"
    for number in ALERT_ONLY:
        assert UPSTREAM_ALERTS.get(number), f"anti-pattern {number} is alert-only but lists no alert"
    assert checks_for(1) and checks_for(1)[0].id == "rwo_vm_disks"


def test_the_html_page_leads_with_the_score_and_the_anti_pattern_table():
    from ov_exporter.report import score_line, to_html

    store = Store()
    load_directory(store.apply, CLEAN)
    evaluation = evaluate(store.state(), default_config())
    page = to_html(evaluation, "clean", 0)
    assert (
        page.index(score_line(score(evaluation))) < page.index("<h2>Anti-patterns</h2>") < page.index("<h2>Checks</h2>")
    )
    assert page.count("<tr><td>") >= 19


def test_score_and_verdicts_are_exported_as_metrics():
    from prometheus_client.parser import text_string_to_metric_families

    text = run_check("--demo", "--output", "prom", "--fail-on", "never").stdout
    families = {f.name: f for f in text_string_to_metric_families(text)}
    demo = json.loads(run_check("--demo", "--output", "json", "--fail-on", "never").stdout)
    assert families["ov_cluster_score_ratio"].samples[0].value == pytest.approx(demo["score"]["value"], abs=1e-4)
    verdicts = {s.labels["anti_pattern"]: s.labels["verdict"] for s in families["ov_anti_pattern_verdict"].samples}
    assert verdicts == {str(r["anti_pattern"]): r["verdict"].replace(" ", "_") for r in demo["anti_patterns"]}
