"""deploy/alertmanager-route.yaml with the real Alertmanager tools (Debian
prometheus-alertmanager): `amtool check-config`, `amtool config routes test` for
every alerting rule of alerts/*.yaml (read at test time), and the inhibitions,
grouping and the documented rebalance-wave silence against a running
Alertmanager, read back through its API."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT, free_port, http_get, require_binary, wait_for

ROUTE = ROOT / "deploy" / "alertmanager-route.yaml"
ALERTS = ROOT / "alerts"
ALERTS_README = ALERTS / "README.md"

# The severity policy: severity -> impact -> receiver.
POLICY: dict[str, dict[str, str]] = {
    "critical": {impact: "ov-pager" for impact in ("vm_down", "data_loss", "etcd_quorum")},
    "warning": {
        **{impact: "ov-ticket" for impact in ("degraded", "migration_stuck", "monitoring_blind")},
        **{
            impact: "ov-config-ticket"
            for impact in ("migration_risk", "failure_risk", "performance_risk", "unsupported")
        },
    },
    "info": {"hygiene": "ov-null"},
}
REPEAT = {"ov-pager": "1h", "ov-ticket": "4h", "ov-config-ticket": "24h"}
TIME_INTERVALS = {"ov-maintenance", "ov-upgrade"}


# ---------------------------------------------------------------- helpers


def _alerting_rules() -> Iterator[tuple[str, dict]]:
    for path in sorted(ALERTS.glob("*.yaml")):
        for group in (yaml.safe_load(path.read_text()) or {}).get("groups") or []:
            for rule in group["rules"]:
                if "alert" in rule:
                    yield path.name, rule


RULES = list(_alerting_rules())


def _rule_labels(rule: dict) -> dict[str, str]:
    """What Alertmanager receives from the rule: its own labels plus the object labels
    its annotations read (placeholder values)."""
    text = " ".join(str(v) for v in rule.get("annotations", {}).values())
    objects = {name: f"x-{name}" for name in re.findall(r"\$labels\.(\w+)", text)}
    return {**objects, **{k: str(v) for k, v in rule.get("labels", {}).items()}, "alertname": rule["alert"]}


def _route_test(labels: dict[str, str], receiver: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            require_binary("amtool"),
            "config",
            "routes",
            "test",
            f"--config.file={ROUTE}",
            f"--verify.receivers={receiver}",
            *(f"{k}={v}" for k, v in labels.items()),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )


def _config() -> dict:
    return yaml.safe_load(ROUTE.read_text())


def _ov_route() -> dict:
    routes = [r for r in _config()["route"]["routes"] if r.get("matchers") == ['alertname=~"OV.+"']]
    assert len(routes) == 1, "one sub-route for the OV alerts"
    return routes[0]


# ---------------------------------------------------------------- the configuration


def test_amtool_check_config_passes():
    proc = subprocess.run(
        [require_binary("amtool"), "check-config", str(ROUTE)], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_every_rule_has_an_impact_allowed_by_the_policy():
    wrong = []
    for file, rule in RULES:
        labels = rule.get("labels", {})
        severity, impact = labels.get("severity"), labels.get("impact")
        if impact not in POLICY.get(severity, {}):
            wrong.append(
                f"{file}: {rule['alert']} severity={severity} impact={impact} "
                f"(allowed: {sorted(POLICY.get(severity, {}))})"
            )
    assert wrong == []


@pytest.mark.parametrize("file,rule", RULES, ids=[f"{r['alert']}-{r['labels'].get('severity')}" for _, r in RULES])
def test_every_rule_routes_to_the_receiver_of_its_impact(file: str, rule: dict):
    labels = _rule_labels(rule)
    expected = POLICY.get(labels.get("severity"), {}).get(labels.get("impact", ""))
    if expected is None:
        pytest.fail(
            f"{file}: {rule['alert']} has severity={labels.get('severity')} "
            f"impact={labels.get('impact')}, which the policy does not route"
        )
    proc = _route_test(labels, expected)
    assert proc.returncode == 0, f"{file}: {rule['alert']} {labels}: {proc.stdout}{proc.stderr}"
    assert proc.stdout.split() == [expected]


@pytest.mark.parametrize(
    "labels,receiver",
    [
        # Other components' alerts go to the default receiver, also the ones our inhibit rules read.
        ({"alertname": "KubeNodeNotReady", "severity": "warning", "node": "worker-1"}, "default"),
        ({"alertname": "etcdHighFsyncDurations", "severity": "critical", "instance": "10.0.0.1:9979"}, "default"),
        (
            {"alertname": "VirtualMachineStuckOnNode", "severity": "warning", "namespace": "erp", "name": "db"},
            "default",
        ),
        ({"alertname": "KubePodCrashLooping", "severity": "critical", "impact": "vm_down"}, "default"),
        # An OV alert without a known impact falls back to its severity.
        ({"alertname": "OVSomethingNew", "severity": "critical"}, "ov-pager"),
        ({"alertname": "OVSomethingNew", "severity": "critical", "impact": "typo"}, "ov-pager"),
        ({"alertname": "OVSomethingNew", "severity": "warning"}, "ov-ticket"),
        ({"alertname": "OVSomethingNew", "severity": "info"}, "ov-null"),
    ],
)
def test_other_alerts_and_unclassified_ov_alerts(labels: dict[str, str], receiver: str):
    proc = _route_test(labels, receiver)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split() == [receiver]


def test_repeat_interval_by_class_and_time_intervals_only_on_tickets_and_info():
    config = _config()
    assert {t["name"] for t in config["time_intervals"]} == TIME_INTERVALS
    ov = _ov_route()
    assert not ov.get("mute_time_intervals") and not config["route"].get("mute_time_intervals")
    assert {r["receiver"] for r in ov["routes"]} == {*REPEAT, "ov-null"}
    for route in ov["routes"]:
        receiver = route["receiver"]
        if receiver in REPEAT:
            assert route.get("repeat_interval") == REPEAT[receiver], route
        if receiver == "ov-pager":
            assert "mute_time_intervals" not in route, f"pages are never muted: {route['matchers']}"
            assert "active_time_intervals" not in route
        else:
            assert set(route.get("mute_time_intervals", [])) == TIME_INTERVALS, route["matchers"]
    # The vm_down route in particular, as amtool resolves it.
    vm_down = [r for r in ov["routes"] if "vm_down" in " ".join(r["matchers"])]
    assert len(vm_down) == 1 and "mute_time_intervals" not in vm_down[0]


def test_no_inhibit_rule_lists_alertname_in_equal_unless_its_comment_says_why():
    """Cross-name duplicates are only removed when `equal` leaves alertname out; a rule
    that keeps it (one alert at two severities) says why in its comment."""
    lines = ROUTE.read_text().splitlines()
    start = lines.index("inhibit_rules:")
    comments, block = [], []
    for line in lines[start + 1 :]:
        if line.startswith("#"):
            block.append(line)
        elif line.startswith("- "):
            comments.append(" ".join(block))
            block = []
    rules = _config()["inhibit_rules"]
    assert len(comments) == len(rules)
    for i, rule in enumerate(rules):
        if "alertname" in rule.get("equal", []):
            assert "alertname in equal" in comments[i], (
                f"inhibit rule {i} ({rule['source_matchers']} -> "
                f"{rule['target_matchers']}) lists alertname in equal without saying why"
            )


# ---------------------------------------------------------------- a running Alertmanager


class Alertmanager:
    """prometheus-alertmanager started from the shipped configuration, receivers
    without integrations (nothing is sent anywhere)."""

    def __init__(self, tmp_path: Path) -> None:
        config = _config()
        for receiver in config["receivers"]:
            receiver.pop("webhook_configs", None)
        path = tmp_path / "alertmanager.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / "alertmanager.log"
        self.proc = subprocess.Popen(
            [
                require_binary("prometheus-alertmanager"),
                f"--config.file={path}",
                f"--storage.path={tmp_path / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
            ],
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )
        wait_for(lambda: http_get(f"{self.url}/-/ready")[0] == 200, "alertmanager /-/ready", 30, [self.log])

    def post(self, *alerts: dict[str, str]) -> None:
        body = json.dumps([{"labels": labels} for labels in alerts]).encode()
        request = urllib.request.Request(
            f"{self.url}/api/v2/alerts", data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            assert resp.status == 200

    def alerts(self) -> list[dict]:
        status, body = http_get(f"{self.url}/api/v2/alerts")
        assert status == 200, body
        return json.loads(body)

    def groups(self) -> list[dict]:
        status, body = http_get(f"{self.url}/api/v2/alerts/groups")
        assert status == 200, body
        return json.loads(body)

    def suppressed(self, by: str, count: int) -> set[tuple[str, ...]]:
        """Keys of the alerts inhibited (by="inhibitedBy") or silenced (by="silencedBy")
        once all `count` posted alerts are held. The inhibitor learns its sources from
        a subscription: give it a second before the answer counts."""
        wait_for(lambda: len(self.alerts()) == count, f"{count} alerts at Alertmanager", 15, [self.log])
        time.sleep(1)
        return {_key(a["labels"]) for a in self.alerts() if a["status"][by]}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


@pytest.fixture
def am(tmp_path) -> Iterator[Alertmanager]:
    manager = Alertmanager(tmp_path)
    try:
        yield manager
    finally:
        manager.stop()


def _key(labels: dict[str, str]) -> tuple[str, ...]:
    """(alertname, severity, "label=value"...) with the other labels sorted."""
    return (
        labels["alertname"],
        labels.get("severity", ""),
        *(f"{k}={labels[k]}" for k in sorted(labels) if k not in ("alertname", "severity")),
    )


def _labels(alertname: str, severity: str, **labels: str) -> dict[str, str]:
    return {"alertname": alertname, "severity": severity, **labels}


@pytest.mark.parametrize(
    "source",
    [
        _labels("OVVMIOnNotReadyNode", "critical", impact="vm_down", namespace="erp", vmi="db-0", node="worker-1"),
        _labels("KubeNodeNotReady", "warning", node="worker-1", namespace="openshift-monitoring"),
    ],
)
def test_a_not_ready_node_inhibits_the_vm_alerts_on_it_and_not_on_another_node(am: Alertmanager, source: dict):
    on_node = [
        _labels(
            "OVVMMigrationBlocked",
            "warning",
            impact="migration_risk",
            namespace="erp",
            vm="web",
            eviction_strategy="LiveMigrate",
            node="worker-1",
        ),
        _labels("OVVMUnderProvisioned", "warning", impact="degraded", namespace="erp", vmi="web", node="worker-1"),
        _labels(
            "VirtualMachineStuckOnNode", "warning", namespace="erp", name="web", status="stopping", node="worker-1"
        ),
    ]
    elsewhere = [
        # the same VM alerts on another node, or on no node (VM not running)
        *({**a, "node": "worker-2"} for a in on_node),
        _labels(
            "OVVMMigrationBlocked",
            "warning",
            impact="migration_risk",
            namespace="erp",
            vm="stopped",
            eviction_strategy="LiveMigrate",
            node="",
        ),
        # node alerts stay: a Linux bridge on the default NIC can be why the node is NotReady
        _labels("OVNodeDefaultNICInLinuxBridge", "critical", impact="vm_down", node="worker-1"),
        # and every VMI down on the node keeps paging
        _labels("OVVMIOnNotReadyNode", "critical", impact="vm_down", namespace="erp", vmi="web", node="worker-1"),
    ]
    am.post(source, *on_node, *elsewhere)
    assert am.suppressed("inhibitedBy", 1 + len(on_node) + len(elsewhere)) == {_key(a) for a in on_node}


def test_a_blind_exporter_reports_the_cause_only(am: Alertmanager):
    blind = dict(impact="monitoring_blind")
    am.post(
        _labels("OVExporterDown", "warning", job="ov-exporter", instance="10.1.0.5:9871", **blind),
        _labels("OVExporterAbsent", "warning", **blind),
        _labels("OVExporterCheckFailing", "warning", check="cpu_overcommit", instance="10.1.0.5:9871", **blind),
        _labels("OVExporterCheckFailing", "warning", check="cpu_overcommit", instance="10.1.0.6:9871", **blind),
        _labels("OVExporterEvaluationStale", "warning", instance="10.1.0.7:9871", **blind),
        _labels(
            "OVExporterSourceKindNotSynced",
            "warning",
            kind="VirtualMachine",
            state="forbidden",
            instance="10.1.0.7:9871",
            **blind,
        ),
        # an alert that reads no exporter data is not explained by it
        _labels("OVEtcdWALFsyncSlow", "warning", impact="degraded", instance="10.0.0.1:9979"),
    )
    inhibited = am.suppressed("inhibitedBy", 7)
    assert inhibited == {
        ("OVExporterAbsent", "warning", "impact=monitoring_blind"),
        (
            "OVExporterCheckFailing",
            "warning",
            "check=cpu_overcommit",
            "impact=monitoring_blind",
            "instance=10.1.0.5:9871",
        ),
        (
            "OVExporterSourceKindNotSynced",
            "warning",
            "impact=monitoring_blind",
            "instance=10.1.0.7:9871",
            "kind=VirtualMachine",
            "state=forbidden",
        ),
    }


def test_openshift_etcd_alerts_inhibit_ours_on_the_same_member_and_severity(am: Alertmanager):
    a, b, c = "10.0.0.1:9979", "10.0.0.2:9979", "10.0.0.3:9979"
    openshift = dict(job="etcd", namespace="openshift-etcd")
    am.post(
        _labels("etcdHighFsyncDurations", "critical", instance=a, **openshift),
        _labels("OVEtcdWALFsyncSlow", "critical", impact="etcd_quorum", instance=a),
        # a platform warning never silences our page
        _labels("etcdHighFsyncDurations", "warning", instance=b, **openshift),
        _labels("OVEtcdWALFsyncSlow", "critical", impact="etcd_quorum", instance=b),
        _labels("OVEtcdWALFsyncSlow", "critical", impact="etcd_quorum", instance=c),
        _labels("etcdHighCommitDurations", "warning", instance=b, **openshift),
        _labels("OVEtcdBackendCommitSlow", "warning", impact="degraded", instance=b),
        _labels("OVEtcdBackendCommitSlow", "warning", impact="degraded", instance=a),
    )
    assert am.suppressed("inhibitedBy", 8) == {
        ("OVEtcdWALFsyncSlow", "critical", "impact=etcd_quorum", f"instance={a}"),
        ("OVEtcdBackendCommitSlow", "warning", "impact=degraded", f"instance={b}"),
    }


def test_a_critical_alert_inhibits_the_warning_of_the_same_alert_on_the_same_object_only(am: Alertmanager):
    am.post(
        _labels("OVVMIUnschedulable", "critical", impact="vm_down", namespace="erp", vmi="db-0"),
        _labels("OVVMIUnschedulable", "warning", impact="degraded", namespace="erp", vmi="db-0"),
        _labels("OVVMIUnschedulable", "warning", impact="degraded", namespace="erp", vmi="db-1"),
        _labels("OVVMUnderProvisioned", "warning", impact="degraded", namespace="erp", vmi="db-0"),
    )
    assert am.suppressed("inhibitedBy", 4) == {
        ("OVVMIUnschedulable", "warning", "impact=degraded", "namespace=erp", "vmi=db-0")
    }


def test_pages_group_by_node_and_tickets_by_namespace(am: Alertmanager):
    down = [
        _labels("OVVMIOnNotReadyNode", "critical", impact="vm_down", namespace=ns, vmi=vmi, node=node)
        for ns, vmi, node in (
            ("erp", "db-0", "worker-1"),
            ("erp", "db-1", "worker-1"),
            ("web", "fe-0", "worker-1"),
            ("web", "fe-1", "worker-2"),
        )
    ]
    blocked = [
        _labels(
            "OVVMMigrationBlocked",
            "warning",
            impact="migration_risk",
            exported_namespace=ns,
            namespace="ov-exporter",
            vm=vm,
            eviction_strategy="None",
            node=node,
        )
        for ns, vm, node in (("erp", "a", "worker-1"), ("erp", "b", "worker-2"), ("web", "c", "worker-1"))
    ]
    am.post(*down, *blocked)

    def grouped():
        groups = am.groups()
        if sum(len(g["alerts"]) for g in groups) != len(down) + len(blocked):
            return None
        return {(g["receiver"]["name"], tuple(sorted(g["labels"].items())), len(g["alerts"])) for g in groups}

    assert wait_for(grouped, "alert groups", 15, [am.log]) == {
        ("ov-pager", (("alertname", "OVVMIOnNotReadyNode"), ("node", "worker-1")), 3),
        ("ov-pager", (("alertname", "OVVMIOnNotReadyNode"), ("node", "worker-2")), 1),
        (
            "ov-config-ticket",
            (("alertname", "OVVMMigrationBlocked"), ("exported_namespace", "erp"), ("namespace", "ov-exporter")),
            2,
        ),
        (
            "ov-config-ticket",
            (("alertname", "OVVMMigrationBlocked"), ("exported_namespace", "web"), ("namespace", "ov-exporter")),
            1,
        ),
    }


def _documented_wave_silence() -> list[str]:
    """The `amtool silence add` command of the Alertmanager section of alerts/README.md
    (continuation lines joined)."""
    section = ALERTS_README.read_text().split("\n## Alertmanager", 1)[1].split("\n## ", 1)[0]
    commands = [c for c in section.replace("\\\n", " ").splitlines() if c.startswith("amtool silence add ")]
    assert len(commands) == 1, "one `amtool silence add` command in the Alertmanager section"
    return shlex.split(commands[0])


def test_the_documented_rebalance_wave_silence_mutes_the_expected_warnings_and_no_page(am: Alertmanager):
    args = [a for a in _documented_wave_silence() if not a.startswith("--alertmanager.url")]
    proc = subprocess.run(
        [require_binary("amtool"), *args[1:], f"--alertmanager.url={am.url}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    alerts = [
        _labels("OVMigrationNotProgressing", "warning", impact="migration_stuck", namespace="erp", name="m1"),
        _labels("OVNodeCPUOvercommitted", "warning", impact="performance_risk", node="worker-1"),
    ]
    stay = [
        _labels("OVVMIOnNotReadyNode", "critical", impact="vm_down", namespace="erp", vmi="db", node="worker-1"),
        _labels("OVVMIUnschedulable", "critical", impact="vm_down", namespace="erp", vmi="db"),
        _labels("OVEtcdWALFsyncSlow", "critical", impact="etcd_quorum", instance="10.0.0.1:9979"),
        _labels("OVEtcdWALFsyncSlow", "warning", impact="degraded", instance="10.0.0.2:9979"),
        _labels("OVExporterDown", "warning", impact="monitoring_blind", instance="10.1.0.5:9871"),
        _labels("OVRebalanceWatchMigrationFailed", "warning", impact="degraded", namespace="erp", vmi="db"),
        _labels("OVVMMigrationBlocked", "warning", impact="migration_risk", namespace="erp", vm="db", node=""),
        _labels("KubeNodeNotReady", "warning", node="worker-1"),
    ]
    am.post(*alerts, *stay)
    assert am.suppressed("silencedBy", len(alerts) + len(stay)) == {_key(a) for a in alerts}
