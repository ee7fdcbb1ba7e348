"""Every dashboard query against a real Prometheus (Debian 2.42) that scrapes a real
exporter process serving the embedded demo cluster and evaluates the shipped rules
(deploy/overlays/kubernetes/prometheusrule.yaml, `for:` shortened as in tests/test_alerts_e2e.py).

Each panel, annotation and variable query of dashboards/*.json and each panel query
of their OpenShift console variants, with its Grafana
variables filled in as Grafana would for "All" (cluster, namespace and node `.*`,
$__rate_interval 1m, $__range 1h, the last seconds as the time range), must
execute without error through /api/v1/query. A query whose metrics are exporter
families, recording rules over them only, or Prometheus' own `up` and ALERTS (the
exporter target, the alerts over its metrics) must also return data for the demo cluster. Queries over upstream metrics
(KubeVirt, etcd, node_exporter) only have to execute: the exporter does not
produce them.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.parse

import pytest
import yaml
from ov_exporter.render import all_families, exposition_name

from . import upstream_contract
from .conftest import ROOT, Prometheus, free_port, http_get, promql_metric_names, wait_for
from .test_alerts_e2e import _rules_for_the_test
from .test_dashboards import ALL_QUERIES, DASHES, gen

# Queries over exporter metrics that are rightly empty on the demo cluster: their
# filter keeps only a state the demo does not have. Each must still find the
# series it filters (checked below), so a wrong metric or label cannot hide here.
EMPTY_IN_DEMO = {  # dashboards/generate.py QUERIES id -> why
    "exporter_api_errors": "the demo source makes no API requests, so no failed ones",
    "exporter_kind_not_synced": "every kind of the demo snapshot is synced",
    "rebalance_failed": "the demo's failed migration ended just outside the 48 h watch window (a planted negative)",
    "checks_blind": "every check of the demo exporter is fresh: nothing is held",
}
# Metrics (exporter families) an EMPTY_IN_DEMO query must still find: the series exist,
# only the filter leaves nothing. ov_source_api_requests_total has no series at all in
# demo mode (no request was ever made): there the family must be declared.
# ov_rebalance_failed_migration is per offending VMIM: none in the window, no series.
# check:ov_check_blind:hold is a recording rule with a series only for a blind check.
HOLD_RECORD = "check:ov_check_blind:hold"
EXPECTED_ABSENT_SERIES = {"ov_source_api_requests_total", "ov_rebalance_failed_migration", HOLD_RECORD}


def _fill(expr: str) -> str:
    now = int(time.time())
    # The range starts a few seconds back: the demo Prometheus holds only the data since the test began.
    for var, value in (
        ("${rebalance_start}", str(now - 3)),
        ("${__from:date:seconds}", str(now - 3)),
        ("${__to:date:seconds}", str(now)),
        ("$__rate_interval", "1m"),
        ("$__interval", "15s"),
        ("$__range", "1h"),
        ("$cluster", ".*"),
        ("$namespace", ".*"),
        ("$node", ".*"),
    ):
        expr = expr.replace(var, value)
    assert "$" not in re.sub(r'"[^"]*"', '""', expr), f"unsubstituted variable in {expr}"
    return expr


def _recording_inputs() -> dict[str, set[str]]:
    groups = yaml.safe_load((ROOT / "deploy" / "overlays" / "kubernetes" / "prometheusrule.yaml").read_text())["spec"][
        "groups"
    ]
    return {
        rule["record"]: promql_metric_names(rule["expr"]) for g in groups for rule in g["rules"] if "record" in rule
    }


RECORDS = _recording_inputs()
FAMILIES = {exposition_name(f) for _, f in all_families()}


def _leaves(names: set[str]) -> set[str]:
    """The scraped metrics under a set of names, following recording rules down."""
    out: set[str] = set()
    todo, seen = list(names), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in RECORDS:
            todo.extend(RECORDS[name])
        else:
            out.add(name)
    return out


UPSTREAM = upstream_contract.series_names() | set(
    yaml.safe_load((ROOT / "dashboards" / "upstream-metrics.yaml").read_text())["metrics"]
)


def _exporter_only(expr: str) -> bool:
    leaves = _leaves(promql_metric_names(_fill(expr)))
    unknown = leaves - FAMILIES - UPSTREAM - {"ALERTS", "up"}
    assert not unknown, f"{sorted(unknown)}: neither an exporter family nor a listed upstream metric"
    # up and ALERTS: Prometheus' own series about the exporter target and the alerts over its metrics.
    return bool(leaves) and leaves <= FAMILIES | {"ALERTS", "up"}


def _empty_reason(expr: str) -> str | None:
    """Why a query (or its console form) is rightly empty on the demo, if it is."""
    for qid, why in EMPTY_IN_DEMO.items():
        if expr in (gen.QUERIES[qid], gen._console_expr(gen.QUERIES[qid], "")):
            return why
    return None


def _variable_queries() -> list[tuple[str, str, str]]:
    out = []
    for uid, dash in DASHES.items():
        for var in dash["templating"]["list"]:
            if var["type"] == "query":
                match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)|query_result\((.+)\)", var["query"])
                out.append((uid, f"variable {var['name']!r}", match.group(1) or match.group(3)))
    return out


def _console_queries() -> list[tuple[str, str, str]]:
    """The queries of the OpenShift console variants (deploy/dashboards/openshift-console/)."""
    out = []
    for uid, dash in DASHES.items():
        console, _ = gen.console_variant(dash)
        out += [
            (f"{uid}-console", f"panel {p['title']!r}", t["expr"])
            for p in console["panels"]
            for t in p.get("targets", [])
        ]
    return out


QUERIES = ALL_QUERIES + _variable_queries() + _console_queries()


def test_the_classification_sees_both_kinds_of_queries():
    exporter = [q for q in QUERIES if _exporter_only(q[2])]
    assert len(exporter) >= 30 and len(QUERIES) - len(exporter) >= 15
    assert len(_console_queries()) >= 40
    empty = [q for q in QUERIES if _empty_reason(q[2])]
    assert len(empty) == 2 * len(EMPTY_IN_DEMO), "each exempted query once on Grafana, once on the console"
    assert all(_exporter_only(q[2]) for q in empty)
    assert EXPECTED_ABSENT_SERIES - {HOLD_RECORD} <= FAMILIES


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dashboards-e2e")
    port = free_port()
    log = tmp / "exporter.log"
    exporter = subprocess.Popen(
        [sys.executable, "-m", "ov_exporter", "serve", "--demo", "--listen", f"127.0.0.1:{port}", "--interval", "2"],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    rules = tmp / "rules.yaml"
    rules.write_text(yaml.safe_dump(_rules_for_the_test(), sort_keys=False))
    prom = Prometheus(tmp, [f"127.0.0.1:{port}"], job="cnv-dashboards", rule_files=(rules,))
    try:
        wait_for(lambda: http_get(f"http://127.0.0.1:{port}/readyz")[0] == 200, "exporter /readyz", 30, [log])
        wait_for(lambda: http_get(f"{prom.url}/-/ready")[0] == 200, "prometheus /-/ready", 30, [prom.log, log])
        yield prom.url, [prom.log, log]
    finally:
        prom.stop()
        exporter.terminate()
        assert exporter.wait(timeout=20) == 0, log.read_text()


def _query(url: str, expr: str) -> tuple[int, dict]:
    status, body = http_get(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    return status, json.loads(body) if body else {}


@pytest.mark.parametrize(("uid", "where", "expr"), QUERIES, ids=[f"{u}:{w}" for u, w, _ in QUERIES])
def test_dashboard_query_runs_against_real_prometheus(prometheus, uid: str, where: str, expr: str):
    url, logs = prometheus
    status, body = _query(url, _fill(expr))
    assert status == 200 and body.get("status") == "success", f"{where}: {_fill(expr)}\n{body}"
    if not _exporter_only(expr):
        return  # upstream metrics: executing is all the demo can show
    why = _empty_reason(expr)
    if why:
        for name in promql_metric_names(_fill(expr)) - EXPECTED_ABSENT_SERIES:
            wait_for(
                lambda n=name: _query(url, f'{n}{{cluster=~".*"}}')[1].get("data", {}).get("result"),
                f"{where}: series of {name}",
                45,
                logs,
            )
        assert _query(url, _fill(expr))[1]["data"]["result"] == [], f"{where}: {why}, yet data"
        return
    result = wait_for(
        lambda: _query(url, _fill(expr))[1].get("data", {}).get("result"),
        f"{where}: data",
        45,
        logs,
        describe=lambda: f"{uid} {where}: {_fill(expr)}",
    )
    assert result
