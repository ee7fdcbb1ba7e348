"""The alert pack against every supported KubeVirt release, with upstream-shaped series.

For each release the fixture generator (tests/upstream_series.py) writes what KubeVirt,
node_exporter, kube-state-metrics and etcd publish on that release (names and labels
from the contract, alerts/upstream-metrics.yaml), and the real exporter judges the same
cluster (tests/release_cluster.py):

- a quiet healthy cluster (overcommit 1.11 vCPU per core, HCO and KubeVirt defaults as
  they ship) evaluated by promtool over a simulated 48 hours raises no alert at all, not
  even pending or info, while the series the rules need are there;
- a real Prometheus per release scrapes the quiet cluster and a cluster with planted
  incidents in its first minutes, with every `for:` 180 times shorter (their order
  kept): the quiet one raises nothing, not even a pending alert; the incidents fire
  exactly their alerts, at their severity, and reach a real
  Alertmanager (deploy/alertmanager-route.yaml) which pages, tickets and inhibits as
  routed, down to the webhook receiver.
"""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest
import yaml
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from . import upstream_contract as uc
from .conftest import ROOT, ThreadedApp, free_port, http_get, require_binary, wait_for
from .release_cluster import NOT_READY_NODE, quiet_scenario, write_snapshot
from .test_alerts_e2e import Processes, Webhook, _alertmanager_config, _post
from .upstream_series import KUBEVIRT_JOB, Scenario, _targets, stored

RULES = ROOT / "deploy" / "overlays" / "kubernetes" / "prometheusrule.yaml"
# One release of every supported minor line, plus 1.4.0 (its migration metrics lost
# `node`) and 1.4.1 (the first with migration start/end times).
RELEASES = ["1.3.1", "1.4.0", "1.4.1", "1.5.3", "1.6.6", "1.7.4", "1.8.4", "1.9.0"]
assert set(RELEASES) <= set(uc.releases())
EXPORTER = {"job": "ov-exporter", "instance": "ov:9871"}
HOURS = 48
SAMPLE_MINUTES = 2  # the quiet 48 h's scrape interval in promtool (every [5m] rate window holds two or three)


FOR_SCALE = 180  # a real Prometheus run lasts seconds: every `for` shrinks 180 times


def _seconds(duration: str) -> int:
    return int(duration[:-1]) * {"s": 1, "m": 60, "h": 3600}[duration[-1]]


def _rule_files(tmp: Path, scaled_for: bool = False) -> Path:
    """The shipped rules; with `scaled_for`, every `for` divided by FOR_SCALE (30m: 10 s,
    5m: 1 s), so alerts fire within seconds in the order they would on a cluster: the
    NotReady node's page (5m) before the blocked migrations it inhibits (30m)."""
    groups = yaml.safe_load(RULES.read_text())["spec"]["groups"]
    if scaled_for:
        for group in groups:
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = f"{_seconds(rule['for']) // FOR_SCALE}s"
    path = tmp / ("rules-scaled.yaml" if scaled_for else "rules.yaml")
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return path


def _exporter_exposition(snapshot: Path) -> str:
    """What the real exporter serves for the snapshot (`check --output prom`)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ov_exporter",
            "check",
            "--snapshot",
            str(snapshot),
            "--output",
            "prom",
            "--fail-on",
            "never",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _line(first: float, step: float, samples: int) -> str:
    """promtool's expanding notation for a value growing by `step` a sample: 'a+bxN'."""
    return f"{first!r}{'+' if step >= 0 else '-'}{abs(step)!r}x{samples}"


def _exporter_series(text: str, minutes: int, now: float) -> list[dict[str, str]]:
    """The exporter's samples as promtool input series over `minutes`, one every
    SAMPLE_MINUTES: values that are
    evaluation times (the `*_timestamp_seconds` near `now`) advance with promtool's clock,
    the rest stay constant (a quiet cluster does not change)."""
    out = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            selector = _selector(sample.name, {**sample.labels, **EXPORTER})
            if sample.name.endswith("_timestamp_seconds") and abs(sample.value - now) < 3600:
                values = f"0+{60 * SAMPLE_MINUTES}x{minutes // SAMPLE_MINUTES}"
            else:
                values = _line(sample.value, 0.0, minutes // SAMPLE_MINUTES)
            out.append({"series": selector, "values": values})
    return out


def _upstream_series(sc: Scenario, minutes: int) -> list[dict[str, str]]:
    """Every series Prometheus would hold for the scenario (stored(): target labels,
    `up`, KubeVirt's recording rules, each checked against the contract) over `minutes`.
    A quiet cluster's series are constant gauges or counters growing at a constant rate,
    so two instants give each series' line: promtool's 'a+bxN' instead of every value."""

    def at(t: float) -> dict[str, float]:
        return {_selector(metric, labels): value for metric, labels, value in stored(sc, sc.start + t)}

    first, second = at(60.0 * SAMPLE_MINUTES), at(120.0 * SAMPLE_MINUTES)
    assert first.keys() == second.keys()
    out = []
    for selector, value in sorted(first.items()):
        step = second[selector] - value
        out.append({"series": selector, "values": _line(value - step, step, minutes // SAMPLE_MINUTES)})
    return out


def _selector(metric: str, labels: dict[str, str]) -> str:
    return metric + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def _promtool_quiet_48h(release: str, tmp: Path, exporter_text: str, now: float) -> subprocess.CompletedProcess:
    minutes = HOURS * 60
    sc = quiet_scenario(release, start=0.0)
    series = _upstream_series(sc, minutes) + _exporter_series(exporter_text, minutes, now)
    end = f"{HOURS}h"
    test = {
        "rule_files": [str(_rule_files(tmp))],
        # Rules every 4 minutes (OpenShift evaluates every 30 s): a steady quiet cluster has
        # no transient state to miss, and every alert's `for` is a pending alert at the first
        # evaluation it holds (ALERTS keeps both states). Half the promtool time of every
        # 2 minutes (measured: 56 against 98 s a release on a loaded machine).
        "evaluation_interval": "4m",
        "tests": [
            {
                "name": f"a quiet healthy cluster on KubeVirt {release} raises no alert in 48 hours",
                "interval": f"{SAMPLE_MINUTES}m",
                "input_series": series,
                "promql_expr_test": [
                    # No alert was ever pending or firing (ALERTS holds both states).
                    {"expr": "count_over_time(ALERTS[49h])", "eval_time": end, "exp_samples": []},
                    # ... while the rules had what they judge: every check fresh, the node CPU of
                    # the four workers, the three etcd members' fsync p99, the 20 VMIs' CPU use.
                    {
                        "expr": "count(check:ov_check_up:fresh) > 0",
                        "eval_time": end,
                        "exp_samples": [{"labels": "{}", "value": _count_checks(exporter_text)}],
                    },
                    {
                        "expr": "count(node:ov_vm_node_cpu_utilisation:rate5m > 0.3 < 0.5)",
                        "eval_time": end,
                        "exp_samples": [{"labels": "{}", "value": sc.workers}],
                    },
                    {
                        "expr": "count(instance:ov_etcd_disk_wal_fsync_duration_seconds:p99_rate5m < 0.005)",
                        "eval_time": end,
                        "exp_samples": [{"labels": "{}", "value": sc.control_plane}],
                    },
                    {
                        "expr": "count(namespace_name:ov_kubevirt_vmi_cpu_usage:ratio > 0)",
                        "eval_time": end,
                        "exp_samples": [{"labels": "{}", "value": sc.vms}],
                    },
                ],
            }
        ],
    }
    path = tmp / f"quiet-{release}-test.yaml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    return subprocess.run(
        [require_binary("promtool"), "test", "rules", path.name], cwd=tmp, capture_output=True, text=True, timeout=900
    )


def _count_checks(exporter_text: str) -> int:
    """Checks that ran fresh: ov_check_up == 1 (applicable or not)."""
    return sum(
        1
        for f in text_string_to_metric_families(exporter_text)
        if f.name == "ov_check_up"
        for s in f.samples
        if s.value == 1
    )


@pytest.fixture(scope="module")
def quiet_snapshot(tmp_path_factory) -> Path:
    return write_snapshot(quiet_scenario("1.9.0"), tmp_path_factory.mktemp("quiet") / "snapshot")


def test_the_quiet_cluster_has_no_finding_at_all(quiet_snapshot: Path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ov_exporter",
            "check",
            "--snapshot",
            str(quiet_snapshot),
            "--output",
            "json",
            "--fail-on",
            "info",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    doc = json.loads(proc.stdout)
    assert proc.returncode == 0 and doc["findings"] == [], doc["findings"]
    assert all(c["status"] in ("ok", "not_applicable") for c in doc["checks"])


def test_a_quiet_cluster_on_every_supported_release_raises_no_alert_in_48_hours(quiet_snapshot: Path, tmp_path):
    now = time.time()
    exporter_text = _exporter_exposition(quiet_snapshot)
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        runs = dict(zip(RELEASES, pool.map(lambda r: _promtool_quiet_48h(r, tmp_path, exporter_text, now), RELEASES)))
    failed = {
        release: proc.stdout[-3000:] + proc.stderr[-2000:] for release, proc in runs.items() if proc.returncode != 0
    }
    assert not failed, "\n\n".join(f"KubeVirt {r}:\n{out}" for r, out in failed.items())


# ---------------------------------------------------------------- real Prometheus, first minutes

MIGRATING_VM = ("analytics", "vm-05")  # runs on worker-1 in Scenario.vm_list()
MiB = 1024**2


def incident_scenario(release: str, start: float) -> Scenario:
    """The quiet cluster plus, upstream: every etcd member's WAL fsync p99 near 2 s (above
    the 1 s election reasoning: a page each), a migration of vm-05 whose guest dirties
    memory faster than it is copied (a ticket), worker-3 NotReady in kube-state-metrics.
    Metric names and labels of the running migration are the release's own."""
    sc = quiet_scenario(release, start=start)

    def slow_etcd_and_not_ready(metric, labels, t, value):
        if (
            metric == "etcd_disk_wal_fsync_duration_seconds_bucket"
            and labels.get("le") != "+Inf"
            and float(labels["le"]) < 1.5
        ):
            return 0.0
        if metric == "kube_node_status_condition" and labels.get("node") == NOT_READY_NODE:
            return 1.0 if labels["status"] == "unknown" else 0.0
        return value

    def migration(t):
        ns, name = MIGRATING_VM
        handler = next(
            inst
            for (job, inst), tl in _targets(sc).items()
            if job == KUBEVIRT_JOB and tl["pod"] == "virt-handler-worker-1"
        )
        transfer = next(
            m
            for m in (
                "kubevirt_vmi_migration_memory_transfer_rate_bytes",
                "kubevirt_vmi_migration_disk_transfer_rate_bytes",
            )
            if uc.exists(m, release)
        )
        values = {
            "kubevirt_vmi_migration_dirty_memory_rate_bytes": 200 * MiB,
            transfer: 100 * MiB,
            "kubevirt_vmi_migration_data_remaining_bytes": 4096 * MiB,
        }
        for metric, value in values.items():
            own = {
                k: v
                for k, v in {"node": "worker-1", "namespace": ns, "name": name}.items()
                if k in uc.labels(metric, release)
            }
            yield KUBEVIRT_JOB, handler, metric, own, float(value)

    sc.hooks.append(slow_etcd_and_not_ready)
    sc.extras.append(migration)
    return sc


# What each cluster must raise, as (alertname, severity, object label): the incident's
# five VMIs on the NotReady worker page (and their blocked migrations are inhibited by
# it), every etcd member pages, the non-converging migration opens a ticket.
NOT_READY_VMIS = {"vm-03", "vm-07", "vm-11", "vm-15", "vm-19"}
EXPECTED = (
    {("OVVMIOnNotReadyNode", "critical", vmi) for vmi in NOT_READY_VMIS}
    | {("OVVMMigrationBlocked", "warning", vm) for vm in NOT_READY_VMIS}
    | {("OVEtcdWALFsyncSlow", "critical", f"10.0.0.{i + 2}:9979") for i in range(3)}
    | {("OVMigrationNotConverging", "warning", MIGRATING_VM[1])}
)
INHIBITED = {"OVVMMigrationBlocked"}
OBJECT_LABELS = ("vmi", "vm", "name", "instance")


def _object(labels: dict) -> str:
    if labels["alertname"] == "OVEtcdWALFsyncSlow":
        return labels["instance"]
    return next((labels[k] for k in OBJECT_LABELS if k in labels), "")


class Upstream(ThreadedApp):
    """Serves /metrics/<release>/<scenario>: what Prometheus would store from every
    upstream target of the scenario at the current time, target labels included (the
    scrape keeps them with honor_labels), KubeVirt's own recording rules included."""

    name = "upstream"

    def __init__(self, scenarios: dict[tuple[str, str], Scenario]) -> None:
        super().__init__()
        self.scenarios = scenarios
        self.address = f"127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/metrics/{release}/{scenario}", self._metrics)

    async def _metrics(self, request: web.Request) -> web.Response:
        sc = self.scenarios[request.match_info["release"], request.match_info["scenario"]]
        lines = [
            f"{_selector(metric, labels)} {value!r}"
            for metric, labels, value in stored(sc, time.time())
            if metric != "up"
        ]
        return web.Response(text="\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def stacks(tmp_path_factory):
    """Per release, one Prometheus on the quiet cluster and one on the incidents, all
    sending to one Alertmanager (external label `release`, `cluster`)."""
    prometheus_bin = require_binary("prometheus")
    alertmanager_bin = require_binary("prometheus-alertmanager")
    tmp = tmp_path_factory.mktemp("releases-e2e")
    start = time.time() - 86400  # counters have grown for a day before Prometheus starts
    scenarios = {}
    for release in RELEASES:
        scenarios[release, "quiet"] = quiet_scenario(release, start=start)
        scenarios[release, "incident"] = incident_scenario(release, start)
    procs, webhook, upstream = Processes(), Webhook(), Upstream(scenarios)
    try:
        webhook.start()
        upstream.start()
        upstream_address = upstream.address
        exporters = {}
        for name in ("quiet", "incident"):
            snap = write_snapshot(quiet_scenario("1.9.0"), tmp / name, incident=name == "incident")
            port = free_port()
            procs.start(
                f"exporter-{name}",
                [
                    sys.executable,
                    "-m",
                    "ov_exporter",
                    "serve",
                    "--snapshot",
                    str(snap),
                    "--listen",
                    f"127.0.0.1:{port}",
                    "--interval",
                    "2",
                ],
                tmp,
            )
            exporters[name] = f"127.0.0.1:{port}"
        am_port = free_port()
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
        # Prometheus starts without rules: they are loaded once every target has been
        # scraped, so that absent() does not fire on an empty TSDB with `for: 0s`.
        rules = tmp / "rules-live.yaml"
        rules.write_text("groups: []\n")
        proms = {}
        for release, scenario in scenarios:
            port = free_port()
            base = tmp / f"prom-{release}-{scenario}"
            base.mkdir()
            (base / "prometheus.yml").write_text(
                yaml.safe_dump(
                    {
                        "global": {
                            "scrape_interval": "2s",
                            "evaluation_interval": "2s",
                            "external_labels": {"release": release, "cluster": scenario},
                        },
                        "rule_files": [str(rules)],
                        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
                        "scrape_configs": [
                            {"job_name": "ov-exporter", "static_configs": [{"targets": [exporters[scenario]]}]},
                            {
                                "job_name": "upstream",
                                "honor_labels": True,
                                "metrics_path": f"/metrics/{release}/{scenario}",
                                "static_configs": [{"targets": [upstream_address]}],
                            },
                        ],
                    },
                    sort_keys=False,
                )
            )
            procs.start(
                f"prometheus-{release}-{scenario}",
                [
                    prometheus_bin,
                    f"--config.file={base / 'prometheus.yml'}",
                    f"--storage.tsdb.path={base / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--web.enable-lifecycle",
                    "--rules.alert.resend-delay=1s",
                ],
                base,
            )
            proms[release, scenario] = f"http://127.0.0.1:{port}"
        for name, url in [
            *((f"prometheus {k}", v) for k, v in proms.items()),
            ("alertmanager", f"http://127.0.0.1:{am_port}"),
        ]:
            wait_for(lambda u=url: http_get(f"{u}/-/ready")[0] == 200, f"{name} ready", 60, procs.logs)

        def query(url: str, expr: str) -> list[dict]:
            status, body = http_get(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
            return json.loads(body)["data"]["result"] if status == 200 else []

        for key, url in proms.items():
            wait_for(
                lambda u=url: len(query(u, "up == 1")) == 2, f"prometheus {key}: both targets scraped", 60, procs.logs
            )
        rules.write_text(_rule_files(tmp, scaled_for=True).read_text())
        for url in proms.values():
            assert _post(f"{url}/-/reload") == 200

        def am_alerts() -> list[dict]:
            status, body = http_get(f"http://127.0.0.1:{am_port}/api/v2/alerts")
            return json.loads(body) if status == 200 else []

        def incidents_arrived():
            got = {
                (a["labels"]["release"], a["labels"]["alertname"], a["labels"]["severity"], _object(a["labels"]))
                for a in am_alerts()
                if a["labels"].get("cluster") == "incident"
            }
            want = {(r, *e) for r in RELEASES for e in EXPECTED}
            delivered = {a["fingerprint"] for a in webhook.alerts()}
            notify = [
                a for a in am_alerts() if a["labels"].get("cluster") == "incident" and a["status"]["state"] == "active"
            ]
            return want <= got and all(a["fingerprint"] in delivered for a in notify)

        def describe() -> str:
            got = sorted(
                {(a["labels"]["release"], a["labels"]["alertname"], _object(a["labels"])) for a in am_alerts()}
            )
            return f"at Alertmanager: {got}"

        wait_for(
            incidents_arrived, "every release's incidents at Alertmanager and delivered", 120, procs.logs, describe
        )
        time.sleep(4)  # room for anything that should not be there to show up too
        prom_alerts = {key: query(url, "ALERTS") for key, url in proms.items()}
        # A target never scraped in the last minute (one scrape timing out on a loaded
        # machine, every 2 s with a 2 s timeout, is no fault of the rules under test).
        up = {key: query(url, "max_over_time(up[1m]) == 0") for key, url in proms.items()}
        yield {"am": am_alerts(), "prom": prom_alerts, "webhook": webhook, "down_targets": up}
    finally:
        procs.stop_all()
        upstream.stop()
        webhook.stop()


def test_every_target_of_every_release_is_scraped(stacks):
    assert {k: v for k, v in stacks["down_targets"].items() if v} == {}


@pytest.mark.parametrize("release", RELEASES)
def test_the_quiet_cluster_raises_nothing_in_its_first_minutes_not_even_pending(stacks, release):
    alerts = [r["metric"] for r in stacks["prom"][release, "quiet"]]
    assert alerts == []
    assert [
        a["labels"]
        for a in stacks["am"]
        if a["labels"].get("release") == release and a["labels"].get("cluster") == "quiet"
    ] == []


@pytest.mark.parametrize("release", RELEASES)
def test_planted_incidents_fire_exactly_their_alerts_at_their_severity(stacks, release):
    got = {
        (m["alertname"], m["severity"], _object(m))
        for m in (r["metric"] for r in stacks["prom"][release, "incident"])
        if m["alertstate"] == "firing"
    }
    assert got == EXPECTED


@pytest.mark.parametrize("release", RELEASES)
def test_incidents_page_ticket_and_inhibit_through_the_shipped_routes(stacks, release):
    mine = [
        a for a in stacks["am"] if a["labels"].get("release") == release and a["labels"].get("cluster") == "incident"
    ]
    inhibited = {a["labels"]["alertname"] for a in mine if a["status"]["inhibitedBy"]}
    assert inhibited == INHIBITED  # the VMs' blocked migrations: their node is NotReady
    pager = {
        (a["labels"]["alertname"], _object(a["labels"]))
        for a in stacks["webhook"].alerts("/ov-pager")
        if a["labels"].get("release") == release
    }
    tickets = {
        (a["labels"]["alertname"], _object(a["labels"]))
        for a in stacks["webhook"].alerts("/ov-ticket")
        if a["labels"].get("release") == release
    }
    assert pager == {(name, obj) for name, severity, obj in EXPECTED if severity == "critical"}
    assert tickets == {("OVMigrationNotConverging", MIGRATING_VM[1])}
    config_tickets = [a for a in stacks["webhook"].alerts("/ov-config-ticket") if a["labels"].get("release") == release]
    assert config_tickets == []  # inhibited: never delivered
