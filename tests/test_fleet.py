"""Fleets: one exporter per cluster, aggregated by what the estate already runs
(Thanos Querier, ACM observability, Prometheus federation), whose series carry a
`cluster` label. Every rule, dashboard query and `rebalance-report` query must give
per-cluster answers.

The static half parses every expression with the real PromQL parser and fails on
whatever would merge two clusters' series:

- an aggregation whose `by (...)` lacks cluster (or with no grouping at all), or
  whose `without (...)` names it;
- vector matching with `on(...)` lacking cluster, or `ignoring(...)` naming it;
- a label_replace/label_join that writes cluster; scalar();
- a constant fallback without `on()`: `X or on() vector(N)` adds vector(N) only when
  X is empty altogether (a single cluster without the label, as before), where
  `X or vector(N)` adds a label-less series beside the clusters' own;
- absent() other than as an operand of `or`, whose other side names the clusters
  that lost the series (absent() alone answers for the whole estate).

`by (cluster, ...)` and `on(cluster, ...)` on series without the label are harmless
(the empty label is one group); tests/alerts/*-test.yaml prove the single-cluster
answers unchanged and the two-cluster ones separate.

The end-to-end half runs two real Prometheus servers (external_labels cluster a and
b), each scraping its own exporter and evaluating the rules, and a third federating
both; the dashboards' queries and the report run against the third.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.parse

import promql_parser as pp
import pytest
import yaml
from ov_exporter import rebalance
from ov_exporter.sources.snapshot import demo_path

from .conftest import ROOT, ThreadedApp, free_port, http_get, require_binary, wait_for
from .test_alerts import RULE_FILES
from .test_alerts_e2e import _rules_for_the_test
from .test_dashboards import DASHES, _panels

AGGREGATIONS_WITH_PARAMETER = {"topk", "bottomk", "quantile", "count_values"}


def _is_constant_vector(node) -> bool:
    while isinstance(node, pp.ParenExpr):
        node = node.expr
    return isinstance(node, pp.Call) and node.func.name == "vector"


def _strip(node):
    while isinstance(node, pp.ParenExpr):
        node = node.expr
    return node


def cluster_problems(expr: str) -> list[str]:
    """What in `expr` merges clusters, one message per construct (empty: none)."""
    problems: list[str] = []

    def walk(node, allowed: frozenset[str] = frozenset()) -> None:
        if node is None or isinstance(node, (pp.NumberLiteral, pp.StringLiteral, pp.VectorSelector)):
            return
        if isinstance(node, pp.MatrixSelector):
            return
        if isinstance(node, pp.AggregateExpr):
            op = str(node.op)
            mod = node.modifier
            if mod is None:
                problems.append(f"{op}(...) without by (cluster, ...)")
            elif str(mod.type).endswith("By") and "cluster" not in mod.labels:
                problems.append(f"{op} by ({', '.join(mod.labels)}) drops cluster")
            elif str(mod.type).endswith("Without") and "cluster" in mod.labels:
                problems.append(f"{op} without (..., cluster) drops cluster")
            walk(node.expr)
            walk(node.param)
            return
        if isinstance(node, pp.BinaryExpr):
            op = str(node.op)
            mod = node.modifier
            matching = mod.matching if mod is not None else None
            constant = _is_constant_vector(node.rhs) or _is_constant_vector(node.lhs)
            empty_on = matching is not None and str(matching.type).endswith("Include") and not matching.labels
            if constant and not empty_on:
                problems.append(
                    f"{op} with a constant vector(...) without on(): it matches only series "
                    f"without a cluster label (write `{op} on() vector(...)`)"
                )
            elif matching is not None and not constant:
                if str(matching.type).endswith("Include") and "cluster" not in matching.labels:
                    problems.append(f"{op} on({', '.join(matching.labels)}) drops cluster")
                if str(matching.type).endswith("Exclude") and "cluster" in matching.labels:
                    problems.append(f"{op} ignoring(..., cluster) drops cluster")
            absent_ok = frozenset({"absent", "absent_over_time"}) if op == "or" else frozenset()
            walk(node.lhs, absent_ok)
            walk(node.rhs, absent_ok)
            return
        if isinstance(node, pp.Call):
            name = node.func.name
            if name in ("absent", "absent_over_time") and name not in allowed:
                problems.append(
                    f"{name}() alone answers for all clusters at once: `or` it with the clusters that lost the series"
                )
            if name == "scalar":
                problems.append("scalar() merges all clusters")
            if name in ("label_replace", "label_join"):
                dst = _strip(node.args[1])
                if isinstance(dst, pp.StringLiteral) and dst.val == "cluster":
                    problems.append(f"{name} overwrites cluster")
            for arg in node.args:
                walk(arg)
            return
        if isinstance(node, pp.ParenExpr):
            walk(node.expr, allowed)
            return
        if isinstance(node, (pp.UnaryExpr, pp.SubqueryExpr)):
            walk(node.expr)
            return
        raise AssertionError(f"unhandled PromQL node {type(node).__name__} in {expr}")

    walk(pp.parse(expr))
    return problems


# ---------------------------------------------------------------- static: the lint itself
@pytest.mark.parametrize(
    "expr, problem",
    [
        ("sum(x)", "sum(...) without by"),
        ("max by (node) (x)", "max by (node) drops cluster"),
        ("avg without (cluster) (x)", "without (..., cluster)"),
        ("topk(5, x)", "topk(...) without by"),
        ("x / on(job, instance) y", "/ on(job, instance) drops cluster"),
        ("x and ignoring(cluster) y", "ignoring(..., cluster)"),
        ("max by (cluster) (x) or vector(0)", "without on()"),
        ("x * vector(2)", "without on()"),
        ("absent(x)", "absent() alone"),
        ('label_replace(x, "cluster", "$1", "instance", "(.*)")', "label_replace overwrites cluster"),
        ("scalar(x) * y", "scalar() merges"),
    ],
)
def test_the_lint_names_each_construct_that_merges_clusters(expr: str, problem: str):
    found = cluster_problems(expr)
    assert any(problem in p for p in found), (expr, found)


@pytest.mark.parametrize(
    "expr",
    [
        "max by (cluster, node) (x) and on(cluster, node) y",
        "sum without (cpu, mode) (rate(x[5m]))",
        "max by (cluster) (x) or on() vector(5)",
        "group by (cluster) (x) * on() group_left() vector(5)",
        "absent(x) or (max by (cluster) (last_over_time(x[1d])) unless on(cluster) x)",
        "x and ignoring(alertname) ALERTS",
        "time() - x",
    ],
)
def test_the_lint_accepts_per_cluster_expressions(expr: str):
    assert cluster_problems(expr) == []


# ---------------------------------------------------------------- static: rules, dashboards, report
def _rule_exprs() -> list[tuple[str, str]]:
    out = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert") or rule.get("record")
                out.append((f"{path.relative_to(ROOT)} rule {name}", rule["expr"]))
    return out


# Grafana variables that must be one value: `@` takes one instant, so the
# before/after table compares at the latest start among the selected clusters.
SINGLE_VALUE_VARIABLES = {"rebalance_start"}


def _dashboard_exprs() -> list[tuple[str, str]]:
    out = []
    for uid, dash in DASHES.items():
        where = f"dashboards/{uid}.json"
        for panel in _panels(dash):
            for target in panel.get("targets") or []:
                if target.get("expr"):
                    out.append((f"{where} panel {panel['title']!r}", target["expr"]))
        for annotation in dash.get("annotations", {}).get("list", []):
            if annotation.get("expr"):
                out.append((f"{where} annotation {annotation['name']!r}", annotation["expr"]))
        for var in dash["templating"]["list"]:
            query = var.get("query")
            if var["type"] != "query" or var["name"] in SINGLE_VALUE_VARIABLES:
                continue
            inner = re.fullmatch(r"label_values\((.*), *\w+\)|query_result\((.*)\)", query)
            assert inner, f"{where} variable {var['name']}: unknown query form {query!r}"
            out.append((f"{where} variable {var['name']!r}", inner.group(1) or inner.group(2)))
    return out


def _report_exprs() -> list[tuple[str, str]]:
    queries = rebalance.report_queries(1767240000.0, 1767398400.0, 172800, cluster="a")
    return [(f"rebalance-report query {key}", expr) for key, expr in queries.items()]


def _fill(expr: str) -> str:
    """Grafana's variables replaced by values of the right type, for the parser."""
    for var, value in (
        ("${rebalance_start}", "1767240000"),
        ("${__from:date:seconds}", "1767225600"),
        ("${__to:date:seconds}", "1767398400"),
        ("$__rate_interval", "2m"),
        ("$__interval", "1m"),
        ("$__range", "48h"),
    ):
        expr = expr.replace(var, value)
    return expr


ALL_EXPRS = _rule_exprs() + _dashboard_exprs() + _report_exprs()


def test_every_rule_dashboard_and_report_query_keeps_the_cluster_label():
    assert len(_rule_exprs()) > 80 and len(_dashboard_exprs()) > 80 and _report_exprs()
    problems = [
        f"{where}: {problem}\n    {' '.join(expr.split())}"
        for where, expr in ALL_EXPRS
        for problem in cluster_problems(_fill(expr))
    ]
    assert not problems, "expressions that merge clusters:\n" + "\n".join(problems)


def test_every_dashboard_query_filters_and_legends_by_cluster():
    for uid, dash in DASHES.items():
        cluster = next(v for v in dash["templating"]["list"] if v["name"] == "cluster")
        assert cluster["query"] == "label_values(ov_build_info, cluster)" and cluster["multi"], uid
        for panel in _panels(dash):
            for target in panel.get("targets") or []:
                assert 'cluster=~"$cluster"' in target["expr"], (uid, panel["title"])
                legend = target.get("legendFormat") or ""
                assert not legend or legend.startswith("{{cluster}}"), (uid, panel["title"], legend)


# ---------------------------------------------------------------- end to end: two clusters, one federation
# node_exporter's series (prometheus/node_exporter v1.8.2 collector/cpu_common.go:
# node_cpu_seconds_total{cpu, mode}; collector/meminfo.go: node_memory_<field>_bytes),
# with `instance` the node name as OpenShift's node-exporter ServiceMonitor sets it.
# Planted per cluster and node: idle share of the CPU, MemAvailable / MemTotal.
NODES = {
    "a": {"worker-0": (0.25, 0.40), "worker-1": (0.50, 0.70)},
    "b": {"worker-0": (0.90, 0.80), "worker-1": (0.60, 0.50)},
}
MEM_TOTAL = 64 * 2**30


class FakeNodeExporters(ThreadedApp):
    """/<cluster>/metrics: the NODES of one cluster, idle counters growing with the clock."""

    name = "fake-node-exporters"

    def __init__(self) -> None:
        super().__init__()
        self.t0 = time.time()

    def routes(self, app) -> None:
        from aiohttp import web

        async def metrics(request):
            # The counters carry the time they were read at: on a loaded machine the scrape's
            # own timestamp (its start) can be far from it, and a 5 s rate() then misreads the
            # planted idle share (0.68 read for 0.90 once).
            now = time.time()
            elapsed, at = now - self.t0, int(now * 1000)
            lines = []
            for node, (idle, available) in NODES[request.match_info["cluster"]].items():
                lines += [
                    f'node_cpu_seconds_total{{cpu="0",mode="idle",instance="{node}"}} {idle * elapsed} {at}',
                    f'node_cpu_seconds_total{{cpu="0",mode="user",instance="{node}"}} {(1 - idle) * elapsed} {at}',
                    f'node_memory_MemAvailable_bytes{{instance="{node}"}} {available * MEM_TOTAL}',
                    f'node_memory_MemTotal_bytes{{instance="{node}"}} {MEM_TOTAL}',
                ]
            return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

        app.router.add_get("/{cluster}/metrics", metrics)


def _snapshot_of_another_cluster(path):
    """The demo with twice the CPUs on every worker: other overcommit ratios and cores."""
    shutil.copytree(demo_path(), path)
    nodes = path / "nodes.yaml"
    text = nodes.read_text()
    assert text.count("cpu: '64'") >= 2 and "cpu: 63500m" in text
    nodes.write_text(text.replace("cpu: '64'", "cpu: '128'").replace("cpu: 63500m", "cpu: 127500m"))
    return path


def _start_prometheus(tmp, name: str, config: dict) -> tuple[subprocess.Popen, str, object]:
    port = free_port()
    (tmp / f"{name}.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    log = tmp / f"{name}.log"
    proc = subprocess.Popen(
        [
            require_binary("prometheus"),
            f"--config.file={tmp / f'{name}.yml'}",
            f"--storage.tsdb.path={tmp / f'{name}-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    return proc, f"http://127.0.0.1:{port}", log


def _ready_result(url: str, expr: str) -> list[dict]:
    """The result now, or [] while Prometheus is still starting."""
    status, body = http_get(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    return json.loads(body)["data"]["result"] if status == 200 else []


def _query(url: str, expr: str, at: float) -> list[dict]:
    status, body = http_get(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expr, "time": f"{at:.3f}"}))
    doc = json.loads(body) if body else {}
    assert status == 200 and doc.get("status") == "success", f"{url}: {expr}\n{body[:500]!r}"
    return doc["data"]["result"]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """Two clusters (exporter, node_exporter stand-in, Prometheus with external_labels
    cluster a / b and the shipped rules) and a third Prometheus federating both."""
    tmp = tmp_path_factory.mktemp("fleet")
    rules = tmp / "rules.yaml"
    rules.write_text(yaml.safe_dump(_rules_for_the_test(), sort_keys=False))
    nodes = FakeNodeExporters()
    nodes.start()
    procs, logs, direct = [], [], {}
    sources = {"a": ["--demo"], "b": ["--snapshot", str(_snapshot_of_another_cluster(tmp / "cluster-b"))]}
    try:
        for cluster, source in sources.items():
            port = free_port()
            log = tmp / f"exporter-{cluster}.log"
            procs.append(
                subprocess.Popen(
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
                    stdout=log.open("w"),
                    stderr=subprocess.STDOUT,
                )
            )
            logs.append(log)
            config = {
                "global": {
                    "scrape_interval": "1s",
                    "evaluation_interval": "1s",
                    "external_labels": {"cluster": cluster},
                },
                "rule_files": [str(rules)],
                "scrape_configs": [
                    {"job_name": "ov-exporter", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]},
                    {
                        "job_name": "node-exporter",
                        "honor_labels": True,
                        "metrics_path": f"/{cluster}/metrics",
                        "static_configs": [{"targets": [nodes.url.removeprefix("http://")]}],
                    },
                ],
            }
            proc, url, log = _start_prometheus(tmp, f"prometheus-{cluster}", config)
            procs.append(proc)
            logs.append(log)
            direct[cluster] = url
        federate = {
            "global": {"scrape_interval": "1s"},
            "scrape_configs": [
                {
                    # Samples stamped at the federation scrape, so that a series gone from a
                    # cluster goes stale here too (Prometheus writes no staleness markers for
                    # samples with explicit timestamps): alerts that resolved stop counting.
                    "job_name": "federate",
                    "honor_labels": True,
                    "honor_timestamps": False,
                    "metrics_path": "/federate",
                    "params": {"match[]": ['{__name__=~"ov_.*|up|ALERTS|node_.*|[a-z_]+:.+"}']},
                    "static_configs": [{"targets": [u.removeprefix("http://") for u in direct.values()]}],
                }
            ],
        }
        proc, global_url, log = _start_prometheus(tmp, "prometheus-global", federate)
        procs.append(proc)
        logs.append(log)
        # Both clusters' exporter series, rules and node samples have reached the federation.
        for cluster in sources:
            for series in (
                "ov_build_info",
                "check:ov_check_up:fresh",
                "cluster:ov_kubevirt_vmi_migrations_in_flight:sum",
            ):
                wait_for(
                    lambda s=series, c=cluster: _ready_result(global_url, f'{s}{{cluster="{c}"}}'),
                    f"{series} of cluster {cluster} federated",
                    45,
                    logs,
                )
        # rate() and the report's utilisation need some samples of the idle counters.
        wait_for(lambda: time.time() - nodes.t0 > 15, "15 s of node samples", 30, logs)
        yield {"global": global_url, "direct": direct, "logs": logs}
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)
        nodes.stop()


def _fill_e2e(expr: str, cluster: str, at: float) -> str:
    """Grafana's variables; the range stays after start-up (the first rule evaluations
    ran before the federation scraped: OVExporterAbsent fired before the first scrape)."""
    for var, value in (
        ("${rebalance_start}", f"{at - 10:.0f}"),
        ("${__from:date:seconds}", f"{at - 60:.0f}"),
        ("${__to:date:seconds}", f"{at:.0f}"),
        ("$__rate_interval", "10s"),
        ("$__interval", "1s"),
        ("$__range", "5s"),
        ("$cluster", cluster),
        ("$namespace", ".*"),
        ("$node", ".*"),
    ):
        expr = expr.replace(var, value)
    return expr


def _by_labels(result: list[dict], drop: tuple[str, ...] = ()) -> dict[tuple, float]:
    return {
        tuple(sorted((k, v) for k, v in s["metric"].items() if k not in drop)): float(s["value"][1]) for s in result
    }


# Queries whose value moves between two samples of the same series: the federation
# scrapes every second and may hold the sample before the source's latest.
MOVING = ("time()", "rate(", "increase(", "_duration_seconds", "timestamp_seconds")


def _same(got: dict, want: dict, expr: str) -> bool:
    if got.keys() != want.keys():
        return False
    if any(m in expr for m in MOVING):
        return True
    return all(got[k] == pytest.approx(want[k], rel=1e-9, abs=1e-12) for k in got)


def test_every_dashboard_query_gives_each_cluster_its_own_values_through_the_federation(fleet):
    at = time.time() - 2
    queries = [(where, expr) for where, expr in _dashboard_exprs()]
    answered = differ = 0
    for where, expr in queries:
        direct = {c: _query(url, _fill_e2e(expr, ".*", at), at) for c, url in fleet["direct"].items()}
        # The $cluster variable's own query lists every cluster whatever is selected.
        scopes = (("a", "a"), ("b", "b"), ("All", ".*")) if "$cluster" in expr else (("All", ".*"),)
        for scope, regex in scopes:
            got = _query(fleet["global"], _fill_e2e(expr, regex, at), at)
            clusters = {s["metric"].get("cluster") for s in got}
            want_clusters = (
                {c for c in direct if direct[c]} if scope == "All" else ({scope} if direct[scope] else set())
            )
            assert clusters == want_clusters, (
                f"{where} with $cluster={scope}: series of {clusters}, want {want_clusters}"
            )
            for cluster in want_clusters:
                mine = [s for s in got if s["metric"]["cluster"] == cluster]
                # Recording rules without job/instance get the federation target's.
                mine = [
                    {
                        **s,
                        "metric": {
                            k: v
                            for k, v in s["metric"].items()
                            if not (s["metric"].get("job") == "federate" and k in ("job", "instance"))
                        },
                    }
                    for s in mine
                ]
                want = _by_labels(direct[cluster])
                assert _same(_by_labels(mine, ("cluster",)), want, expr), (
                    f"{where} with $cluster={scope}, cluster {cluster}:\n"
                    f"  federated {_by_labels(mine)}\n  direct {want}"
                )
        answered += all(direct.values())
        differ += (
            all(direct.values())
            and not any(m in expr for m in MOVING)
            and _by_labels(direct["a"]) != _by_labels(direct["b"])
        )
    # Enough of the dashboards answer in both clusters, and the clusters visibly differ.
    print(f"fleet e2e: {len(queries)} queries, {answered} answered in both clusters, {differ} differ")
    assert answered >= 40 and differ >= 5, (answered, differ)


def _report(url: str, *args: str) -> dict:
    """The JSON report over the live samples: 5-second averages, 5 seconds ago and now."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ov_exporter",
            "rebalance-report",
            "--prometheus-url",
            url,
            "--since",
            "5s",
            "--window",
            "5s",
            "--output",
            "json",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _check_nodes(doc: dict, cluster: str) -> None:
    got = {n["node"]: n for n in doc["nodes"]}
    assert set(got) == set(NODES[cluster]), (cluster, got)
    for node, (idle, available) in NODES[cluster].items():
        for when in ("before", "now"):
            assert got[node][f"cpu_{when}"] == pytest.approx(1 - idle, abs=0.01), (cluster, node, when)
            assert got[node][f"memory_{when}"] == pytest.approx(1 - available, abs=1e-9), (cluster, node, when)


def test_rebalance_report_per_cluster_through_the_federation(fleet):
    for cluster in ("a", "b"):
        doc = _report(fleet["global"], "--cluster", cluster)
        assert doc["cluster"] == cluster
        _check_nodes(doc, cluster)
        # The same report as from the cluster's own Prometheus, whose series carry no cluster label.
        own = _report(fleet["direct"][cluster])
        assert "cluster" not in own
        _check_nodes(own, cluster)
    both = _report(fleet["global"])
    assert set(both["clusters"]) == {"a", "b"} and both["errors"] == {}
    for cluster, doc in both["clusters"].items():
        assert doc["cluster"] == cluster
        _check_nodes(doc, cluster)
    table = subprocess.run(
        [
            sys.executable,
            "-m",
            "ov_exporter",
            "rebalance-report",
            "--prometheus-url",
            fleet["global"],
            "--since",
            "5s",
            "--window",
            "5s",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert table.returncode == 0, table.stderr
    assert table.stdout.index("=== cluster a ===") < table.stdout.index("=== cluster b ===")
    unknown = subprocess.run(
        [
            sys.executable,
            "-m",
            "ov_exporter",
            "rebalance-report",
            "--prometheus-url",
            fleet["global"],
            "--since",
            "5s",
            "--window",
            "5s",
            "--cluster",
            "c",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unknown.returncode == 2 and "cluster='c'" in unknown.stderr and "'a', 'b'" in unknown.stderr
