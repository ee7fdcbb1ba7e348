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

import pytest
import yaml

from ov_exporter import rebalance

from .conftest import ROOT
from .test_alerts import RULE_FILES
from .test_dashboards import DASHES, _panels

import promql_parser as pp

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
            empty_on = (matching is not None and str(matching.type).endswith("Include")
                        and not matching.labels)
            if constant and not empty_on:
                problems.append(f"{op} with a constant vector(...) without on(): it matches only series "
                                f"without a cluster label (write `{op} on() vector(...)`)")
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
                problems.append(f"{name}() alone answers for all clusters at once: "
                                f"`or` it with the clusters that lost the series")
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
@pytest.mark.parametrize("expr, problem", [
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
])
def test_the_lint_names_each_construct_that_merges_clusters(expr: str, problem: str):
    found = cluster_problems(expr)
    assert any(problem in p for p in found), (expr, found)


@pytest.mark.parametrize("expr", [
    "max by (cluster, node) (x) and on(cluster, node) y",
    "sum without (cpu, mode) (rate(x[5m]))",
    "max by (cluster) (x) or on() vector(5)",
    "group by (cluster) (x) * on() group_left() vector(5)",
    "absent(x) or (max by (cluster) (last_over_time(x[1d])) unless on(cluster) x)",
    "x and ignoring(alertname) ALERTS",
    "time() - x",
])
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
    for var, value in (("${rebalance_start}", "1767240000"), ("${__from:date:seconds}", "1767225600"),
                       ("${__to:date:seconds}", "1767398400"), ("$__rate_interval", "2m"),
                       ("$__interval", "1m"), ("$__range", "48h")):
        expr = expr.replace(var, value)
    return expr


ALL_EXPRS = _rule_exprs() + _dashboard_exprs() + _report_exprs()


def test_every_rule_dashboard_and_report_query_keeps_the_cluster_label():
    assert len(_rule_exprs()) > 80 and len(_dashboard_exprs()) > 80 and _report_exprs()
    problems = [f"{where}: {problem}\n    {' '.join(expr.split())}"
                for where, expr in ALL_EXPRS for problem in cluster_problems(_fill(expr))]
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
