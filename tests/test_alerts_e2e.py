"""The alert pack end to end, with the real binaries users run.

Two exporter processes serve the embedded demo cluster and the clean fixture; a real
Prometheus (Debian 2.42) scrapes both every second and evaluates the rules of
deploy/overlays/kubernetes/prometheusrule.yaml; a real Alertmanager (Debian 0.25), configured from
deploy/alertmanager-route.yaml, delivers to a webhook receiver this module runs
(aiohttp). The planted anti-patterns of the demo (demo/expectations.yaml) must
arrive as the expected alerts with their labels and runbook URLs, routed by
severity; the clean cluster must raise none.

Every process is started on a free port and stopped at the end, also on failure.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from aiohttp import web
from ov_exporter.checks import CHECKS
from ov_exporter.coverage import RUNBOOK_BASE_URL
from ov_exporter.sources.snapshot import demo_path

from .conftest import CLEAN, ROOT, ThreadedApp, free_port, http_get, require_binary, wait_for

PROMETHEUSRULE = ROOT / "deploy" / "overlays" / "kubernetes" / "prometheusrule.yaml"
ROUTE = ROOT / "deploy" / "alertmanager-route.yaml"
RUNBOOKS = ROOT / "alerts" / "runbooks"
RUNBOOK_BASE = RUNBOOK_BASE_URL
# Job names that do not contain "ov-exporter": no rule may depend on the job name.
DEMO_JOB, CLEAN_JOB = "cnv-demo", "cnv-clean"
SETTLE_TIMEOUT = 40.0

# Which check an anti-pattern alert belongs to.
# Alerts that fire for exactly the objects a check has findings for, from the declarations.
ALERT_CHECK = {a.name: s.id for s in CHECKS for a in s.alerts if a.mirrors_findings}


ALERT_NAMES_OBJECT = {a.name: a.names for s in CHECKS for a in s.alerts}


def alert_object(labels: dict[str, str]) -> tuple[str, str, str]:
    """(kind, namespace, name) of the object an alert names, as the findings name it
    (from the check's declaration of the alert)."""
    from ov_exporter.records import KINDS

    names = ALERT_NAMES_OBJECT[labels["alertname"]]
    if names == "Cluster":
        return "Cluster", "", "cluster"
    kind, label = names.split("/")
    namespaced = next(k.namespaced for k in KINDS if k.kind == kind)
    ns = (labels.get("exported_namespace") or labels.get("namespace", "")) if namespaced else ""
    return kind, ns, labels[label]


# ---------------------------------------------------------------- plumbing


_get = http_get


def _post(url: str) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return 0


_wait = wait_for


class Webhook(ThreadedApp):
    """An Alertmanager webhook receiver: records every POST by path."""

    name = "webhook"

    def __init__(self) -> None:
        super().__init__()
        self.received: list[tuple[str, dict]] = []
        self._lock = threading.Lock()

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/{receiver}", self._handle)

    async def _handle(self, request: web.Request) -> web.Response:
        payload = await request.json()
        with self._lock:
            self.received.append((request.path, payload))
        return web.Response(text="ok")

    def alerts(self, path: str | None = None) -> list[dict]:
        with self._lock:
            return [a for p, payload in self.received if path in (None, p) for a in payload["alerts"]]

    def payloads(self) -> list[tuple[str, dict]]:
        with self._lock:
            return list(self.received)


@dataclass
class Processes:
    procs: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def start(self, name: str, args: list[str], tmp: Path) -> subprocess.Popen:
        log = tmp / f"{name}.log"
        self.logs.append(log)
        proc = subprocess.Popen(args, stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=tmp)
        self.procs.append((name, proc))
        return proc

    def stop_all(self) -> None:
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for _, proc in reversed(self.procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def _rules_for_the_test() -> dict:
    """The shipped PrometheusRule's groups with every `for:` rewritten to 0s, so that
    alerts fire on the first evaluation instead of after minutes (the durations
    themselves are covered by the promtool unit tests in tests/alerts/)."""
    groups = yaml.safe_load(PROMETHEUSRULE.read_text())["spec"]["groups"]
    for group in groups:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "0s"
    return {"groups": groups}


def _alertmanager_config(webhook: Webhook) -> dict:
    """deploy/alertmanager-route.yaml with its receivers pointed at the webhook, its
    waits shortened and its mute time intervals dropped (so the outcome does not
    depend on the clock); routing, grouping and inhibition stay as shipped."""
    config = yaml.safe_load(ROUTE.read_text())

    def shorten(route: dict) -> None:
        for key, value in (("group_wait", "1s"), ("group_interval", "1s")):
            if key in route:
                route[key] = value
        route.pop("mute_time_intervals", None)
        for child in route.get("routes", []):
            shorten(child)

    shorten(config["route"])
    config["route"].update(group_wait="1s", group_interval="1s")
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = f"{webhook.url}/{receiver['name']}"
    return config


# ---------------------------------------------------------------- the stack


@dataclass
class Outcome:
    expected: set[tuple[str, str, str, str, str]]  # (check, kind, namespace, name, severity)
    am_alerts: list[dict]  # every alert Alertmanager holds (also the ones routed nowhere)
    prom_alerts: list[dict]  # every alert Prometheus evaluates as pending or firing
    webhook: Webhook
    risk: dict[tuple[str, str], float]  # demo ov_migration_dirty_rate_risk by (namespace, vmi)
    down: list[dict] = field(default_factory=list)  # tickets after the clean exporter was stopped


def _expected_from_demo() -> set[tuple[str, str, str, str, str]]:
    path = Path(demo_path()) / "expectations.yaml"
    if not path.is_file():
        pytest.fail(f"{path} is missing: the demo cluster lists its planted positives there")
    doc = yaml.safe_load(path.read_text())
    findings = {
        (check, p["kind"], p.get("namespace") or "", p["name"], p["severity"])
        for check, entry in doc["checks"].items()
        for p in entry.get("positives", [])
    }
    return alerts_for_findings(findings)


RANK = {"info": 0, "warning": 1, "critical": 2}


def alerts_for_findings(findings: set[tuple[str, str, str, str, str]]) -> set[tuple[str, str, str, str, str]]:
    """The alerts the pack raises for a set of findings (check, kind, namespace, name,
    severity), as alerts/README.md's severity policy says: one fact, one alert.
    - RWO disks raise no alert of their own: they reach OVVMMigrationBlocked, whose
      migration_readiness findings are in the set already;
    - a node's overcommit finding is alerted only at a level its cluster does not reach;
    - nodes without remediation are one alert for the cluster."""
    cluster_level = {
        check: RANK[sev]
        for check, kind, _, _, sev in findings
        if kind == "Cluster" and check in ("cpu_overcommit", "memory_overcommit")
    }
    out = set()
    for check, kind, ns, name, severity in findings:
        if check == "rwo_vm_disks":
            continue
        if check in cluster_level and kind == "Node" and RANK[severity] <= cluster_level[check]:
            continue
        if check == "node_failure_planning" and kind == "Node":
            out.add((check, "Cluster", "", "cluster", severity))
            continue
        out.add((check, kind, ns, name, severity))
    return out


def _demo_outcome(am_alerts: list[dict]) -> set[tuple[str, str, str, str, str]]:
    got = set()
    for alert in am_alerts:
        labels = alert["labels"]
        if labels.get("job") == DEMO_JOB and labels["alertname"] in ALERT_CHECK:
            got.add((ALERT_CHECK[labels["alertname"]], *alert_object(labels), labels["severity"]))
    return got


@pytest.fixture(scope="module")
def outcome(tmp_path_factory) -> Outcome:
    prometheus_bin = require_binary("prometheus")
    alertmanager_bin = require_binary("prometheus-alertmanager")
    tmp = tmp_path_factory.mktemp("alerts-e2e")
    expected = _expected_from_demo()
    procs = Processes()
    webhook = Webhook()
    try:
        webhook.start()

        # Two exporters: the demo with its planted anti-patterns, and the clean cluster.
        exporters = {}
        for job, source in ((DEMO_JOB, ["--demo"]), (CLEAN_JOB, ["--snapshot", str(CLEAN)])):
            port = free_port()
            procs.start(
                job,
                [
                    sys.executable,
                    "-m",
                    "ov_exporter",
                    "serve",
                    *source,
                    "--listen",
                    f"127.0.0.1:{port}",
                    "--interval",
                    "2",
                ],
                tmp,
            )
            exporters[job] = f"127.0.0.1:{port}"

        am_port = free_port()
        am_url = f"http://127.0.0.1:{am_port}"
        (tmp / "alertmanager.yml").write_text(yaml.safe_dump(_alertmanager_config(webhook), sort_keys=False))
        procs.start(
            "alertmanager",
            [
                alertmanager_bin,
                f"--config.file={tmp / 'alertmanager.yml'}",
                f"--storage.path={tmp / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",
            ],
            tmp,
        )

        # Prometheus starts without rules: they are loaded once both targets have been
        # scraped, so that the absence alerts do not fire on an empty TSDB. Prometheus
        # drops alerts that fire before its notifier has discovered the Alertmanager
        # (up to 5 s after start or reload) and resends only after
        # --rules.alert.resend-delay (1m by default): 1s here.
        prom_port = free_port()
        prom_url = f"http://127.0.0.1:{prom_port}"
        rules = tmp / "rules.yaml"
        rules.write_text("groups: []\n")
        scrape = [{"job_name": job, "static_configs": [{"targets": [target]}]} for job, target in exporters.items()]
        (tmp / "prometheus.yml").write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(rules)],
                    "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
                    "scrape_configs": scrape,
                },
                sort_keys=False,
            )
        )
        procs.start(
            "prometheus",
            [
                prometheus_bin,
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'prom-data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                "--web.enable-lifecycle",
                "--rules.alert.resend-delay=1s",
            ],
            tmp,
        )

        logs = procs.logs
        for job, target in exporters.items():
            _wait(lambda t=target: _get(f"http://{t}/readyz")[0] == 200, f"exporter {job} /readyz", 30, logs)
        _wait(lambda: _get(f"{am_url}/-/ready")[0] == 200, "alertmanager /-/ready", 30, logs)
        _wait(lambda: _get(f"{prom_url}/-/ready")[0] == 200, "prometheus /-/ready", 30, logs)

        def query(expr: str) -> list[dict]:
            status, body = _get(f"{prom_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
            return json.loads(body)["data"]["result"] if status == 200 else []

        _wait(
            lambda: len(query("up == 1 and on(job, instance) ov_build_info")) == 2, "both exporters scraped", 30, logs
        )
        rules.write_text(yaml.safe_dump(_rules_for_the_test(), sort_keys=False))
        assert _post(f"{prom_url}/-/reload") == 200, "prometheus reload"

        def am_alerts() -> list[dict]:
            status, body = _get(f"{am_url}/api/v2/alerts")
            return json.loads(body) if status == 200 else []

        # Settled when every planted positive is at Alertmanager (within the severity
        # the exporter can express, see test_known_gap...) and every notifiable one
        # has been delivered.
        def settled():
            alerts = am_alerts()
            got = {g[:4] for g in _demo_outcome(alerts)}
            if not {e[:4] for e in expected} <= got:
                return None
            active = {
                a["fingerprint"]
                for a in alerts
                if a["status"]["state"] == "active" and a["labels"]["severity"] != "info"
            }
            delivered = {a["fingerprint"] for a in webhook.alerts()}
            return alerts if active <= delivered else None

        def describe() -> str:
            alerts = am_alerts()
            missing = sorted({e[:4] for e in expected} - {g[:4] for g in _demo_outcome(alerts)})
            delivered = {a["fingerprint"] for a in webhook.alerts()}
            undelivered = sorted(
                a["labels"]["alertname"]
                for a in alerts
                if a["fingerprint"] not in delivered
                and a["status"]["state"] == "active"
                and a["labels"]["severity"] != "info"
            )
            return (
                f"missing at Alertmanager: {missing}\nnot delivered: {undelivered}\n"
                f"at Alertmanager: {sorted(a['labels']['alertname'] for a in alerts)}"
            )

        _wait(settled, "the planted anti-patterns to arrive as alerts", SETTLE_TIMEOUT, logs, describe)
        time.sleep(3)  # room for anything that should not be there (the clean cluster) to show up too
        status, body = _get(f"{prom_url}/api/v1/alerts")
        risk = {
            (r["metric"]["namespace"], r["metric"]["vmi"]): float(r["value"][1])
            for r in query(f'ov_migration_dirty_rate_risk{{job="{DEMO_JOB}"}}')
        }
        result = Outcome(expected, am_alerts(), json.loads(body)["data"]["alerts"], webhook, risk)

        # Then the clean cluster's exporter dies: its target is down, which is an alert
        # of its own (a ticket), recognised without knowing the job's name.
        clean_proc = dict(procs.procs)[CLEAN_JOB]
        clean_proc.terminate()
        clean_proc.wait(timeout=15)

        def down_ticket():
            return [
                a
                for a in webhook.alerts("/ov-ticket")
                if a["labels"]["alertname"] == "OVExporterDown" and a["status"] == "firing"
            ]

        result.down = _wait(down_ticket, "OVExporterDown for the stopped exporter", 30, logs)
        return result
    finally:
        procs.stop_all()
        webhook.stop()
        for name, proc in procs.procs:
            assert proc.returncode is not None, f"{name} still running"


# ---------------------------------------------------------------- assertions


def _too_slow(outcome: Outcome, item: tuple[str, str, str, str, str]) -> bool:
    """A VMI the exporter judges a warning because its predicted migration time exceeds
    its completion timeout, with a risk below 1 (below 1 alone it would be info)."""
    check, kind, ns, name, severity = item
    return check == "migration_dirty_rate" and severity == "warning" and outcome.risk.get((ns, name), 1.0) < 1.0


def test_planted_anti_patterns_arrive_as_the_expected_alerts(outcome: Outcome):
    got = _demo_outcome(outcome.am_alerts)
    expected = set(outcome.expected)
    assert sorted(got - expected) == [], "alerts for objects the demo does not plant, or at another severity"
    assert sorted(expected - got) == [], "planted positives without their alert"


def test_alerts_carry_the_target_labels_severity_and_runbook_url(outcome: Outcome):
    demo = [a for a in outcome.am_alerts if a["labels"].get("job") == DEMO_JOB]
    assert demo
    for alert in demo:
        labels, annotations = alert["labels"], alert["annotations"]
        name = labels["alertname"]
        assert labels["severity"] in ("critical", "warning", "info")
        assert labels["instance"].startswith("127.0.0.1:")
        assert not {"kubernetes_operator_part_of", "operator_health_impact"} & set(labels)
        assert annotations["runbook_url"] == f"{RUNBOOK_BASE}/{name}.md"
        assert (RUNBOOKS / f"{name}.md").is_file()
        assert annotations["summary"] and "{{" not in annotations["description"]
        assert "<no value>" not in annotations["description"]
        kind, ns, obj = alert_object(labels)
        if kind not in ("Cluster", "HyperConverged"):
            assert obj in annotations["description"], annotations["description"]
    # One example in full: a planted blocked VM with RWO disks, on its node.
    found = [
        a for a in demo if a["labels"]["alertname"] == "OVVMMigrationBlocked" and a["labels"].get("vm") == "sap-hana-01"
    ]
    assert len(found) == 1
    assert {k: v for k, v in found[0]["labels"].items() if k != "instance"} == {
        "alertname": "OVVMMigrationBlocked",
        "severity": "warning",
        "impact": "migration_risk",
        "job": DEMO_JOB,
        "namespace": "erp",
        "vm": "sap-hana-01",
        "eviction_strategy": "LiveMigrate",
        "node": "worker-3",
    }
    assert found[0]["annotations"]["description"].startswith("VM erp/sap-hana-01 on node worker-3 ")


def test_critical_pages_warning_opens_a_ticket_and_info_goes_nowhere(outcome: Outcome):
    pager = outcome.webhook.alerts("/ov-pager")
    tickets = outcome.webhook.alerts("/ov-ticket") + outcome.webhook.alerts("/ov-config-ticket")
    assert pager and tickets
    assert {a["labels"]["severity"] for a in pager} == {"critical"}
    assert {a["labels"]["severity"] for a in tickets} == {"warning"}
    assert not outcome.webhook.alerts("/ov-null") and not outcome.webhook.alerts("/default")
    info = [a for a in outcome.am_alerts if a["labels"]["severity"] == "info"]
    assert info, "the demo plants an info finding (vmiCPUAllocationRatio 10)"
    delivered = {a["fingerprint"] for a in outcome.webhook.alerts()}
    assert not {a["fingerprint"] for a in info} & delivered
    # Pages group by alert name and node, tickets by alert name and object namespace.
    for path, payload in outcome.webhook.payloads():
        allowed = {"alertname", "node"} if path == "/ov-pager" else {"alertname", "namespace", "exported_namespace"}
        assert set(payload["groupLabels"]) <= allowed, path
        assert "alertname" in payload["groupLabels"]
        assert {a["labels"]["alertname"] for a in payload["alerts"]} == {payload["groupLabels"]["alertname"]}
    # Everything firing in Prometheus reached Alertmanager.
    firing = {a["labels"]["alertname"] for a in outcome.prom_alerts if a["state"] == "firing"}
    assert firing == {a["labels"]["alertname"] for a in outcome.am_alerts}


def test_the_clean_cluster_raises_no_alert(outcome: Outcome):
    clean = [a["labels"] for a in outcome.prom_alerts if a["labels"].get("job") == CLEAN_JOB]
    assert clean == []
    assert [a["labels"] for a in outcome.am_alerts if a["labels"].get("job") == CLEAN_JOB] == []
    # Nor do the exporter-health alerts fire while both exporters run.
    assert [
        a["labels"]["alertname"] for a in outcome.prom_alerts if a["labels"]["alertname"].startswith("OVExporter")
    ] == []


def test_a_stopped_exporter_raises_exporter_down_whatever_its_job_is_called(outcome: Outcome):
    assert {a["labels"]["job"] for a in outcome.down} == {CLEAN_JOB}
    alert = outcome.down[0]
    assert alert["labels"]["severity"] == "warning"
    assert alert["annotations"]["runbook_url"] == f"{RUNBOOK_BASE}/OVExporterDown.md"
    assert f"(job {CLEAN_JOB})" in alert["annotations"]["description"]


def test_a_vmi_predicted_to_exceed_its_completion_timeout_arrives_as_a_warning(outcome: Outcome):
    gaps = [item for item in outcome.expected if _too_slow(outcome, item)]
    assert gaps, "the demo plants such a VMI"
    got = _demo_outcome(outcome.am_alerts)
    assert all(item in got for item in gaps)
