"""Fleet lint for PromQL: where an expression would merge the series of two clusters.

Estates with many clusters aggregate per-cluster Prometheus servers (Thanos Querier,
ACM observability, federation) whose series carry a `cluster` label. An expression
gives per-cluster answers when every aggregation keeps `cluster`, every vector
matching with on(...) lists it (ignoring(...) must not), no label_replace writes it,
and every constant fallback stays out of the way of other clusters' series:

- `X or on() vector(N)`: `on()` puts every series in one match group, so vector(N)
  is added only when X is empty altogether (a single cluster without the label, as
  before); plain `X or vector(N)` would add a label-less series beside each cluster's.
- `absent(...)` only as an operand of `or`, whose other side names the clusters that
  lost the series (absent() alone answers for the whole estate).
- scalar() merges everything: never used.
"""
from __future__ import annotations

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
