"""Where each rule of alerts/*.yaml goes in each monitoring layout of deploy/overlays/.

kubernetes: one Prometheus (kube-prometheus' prometheus-k8s) scrapes the exporter,
KubeVirt, etcd and node_exporter, so every rule goes into one PrometheusRule.

openshift-user-workload: two Prometheus servers, neither of which sees both sides.
  - prometheus-user-workload scrapes the exporter. Its operator enforces the
    `namespace` label (cluster-monitoring-operator release-4.18,
    assets/prometheus-user-workload/prometheus.yaml: enforcedNamespaceLabel:
    namespace, overrideHonorLabels: true). On scrape, `namespace` becomes the
    ServiceMonitor's namespace and the exporter's own `namespace` (a VM's) arrives
    as `exported_namespace`. In rules, every selector gets namespace="<rule's
    namespace>" and every rule the label namespace: <rule's namespace>
    (prometheus-operator v0.78.0, pkg/namespacelabeler/labeler.go). Rules there see
    only the exporter's series (and `up`/ALERTS of that Prometheus): the rules that
    read only those go into a PrometheusRule labelled for evaluation by that
    Prometheus, with the object's namespace read from `exported_namespace`.
  - prometheus-k8s (platform) sees KubeVirt, etcd and node_exporter but not the
    exporter. Red Hat's supported way to add alerts there is an AlertingRule
    (monitoring.openshift.io/v1) in openshift-monitoring, which has no recording
    rules: alerts that read only platform metrics go there, the recording rules
    they read inlined (inline_records).
  - Everything else (alerts that need a recording rule over platform metrics, or
    read both sides) cannot be evaluated in this layout: `unavailable` says why.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

import promql_parser

# Series a Prometheus makes itself about its own targets and rules: they are
# where the rule is evaluated, whichever layout.
OWN_SERIES = {"up", "ALERTS"}
EXPORTER_PREFIX = "ov_"

KUBERNETES = "kubernetes"
USER_WORKLOAD = "openshift-user-workload"
LAYOUTS = (KUBERNETES, USER_WORKLOAD)

# Destinations of a rule in a layout.
PROMETHEUS_RULE = "prometheusrule"
ALERTING_RULE = "alertingrule"

# cluster-monitoring-operator release-4.18 assets/prometheus-user-workload/prometheus.yaml
# ruleSelector: prometheus-user-workload evaluates rules with this label; Thanos
# Ruler (which has no `up` of our target and answers through the querier) the rest.
LEAF_PROMETHEUS_LABEL = {"openshift.io/prometheus-rule-evaluation-scope": "leaf-prometheus"}
ENFORCED_LABEL = "namespace"
OBJECT_NAMESPACE_LABEL = "exported_namespace"


class LayoutError(Exception):
    pass


@dataclass
class Placement:
    """One layout's decision for every rule: destination per rule, reason per unavailable alert."""

    layout: str
    destination: dict[int, str] = field(default_factory=dict)  # id(rule) -> PROMETHEUS_RULE | ALERTING_RULE
    inlined: dict[int, str] = field(default_factory=dict)  # id(rule) -> expr with its recording rules inlined
    unavailable: dict[str, str] = field(default_factory=dict)  # alert name -> reason
    dropped_records: dict[str, str] = field(default_factory=dict)  # record name -> reason


def metric_names(expr: str) -> set[str]:
    """Metric names an expression reads, from a real PromQL parse."""
    names: set[str] = set()

    def walk(node) -> None:
        if node is None:
            return
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            names.update(m.value for m in node.matchers.matchers if m.name == "__name__")
        elif isinstance(node, promql_parser.MatrixSelector):
            walk(node.vector_selector)
        elif isinstance(node, promql_parser.Call):
            for arg in node.args:
                walk(arg)
        elif isinstance(node, promql_parser.AggregateExpr):
            walk(node.expr)
            walk(node.param)
        elif isinstance(node, promql_parser.BinaryExpr):
            walk(node.lhs)
            walk(node.rhs)
        elif isinstance(node, (promql_parser.ParenExpr, promql_parser.UnaryExpr)):
            walk(node.expr)
        elif isinstance(node, promql_parser.SubqueryExpr):
            walk(node.expr)

    walk(promql_parser.parse(expr))
    return names


@dataclass(frozen=True)
class Inputs:
    """What a rule reads, with recording rules followed down to the scraped series."""

    records: frozenset[str]  # recording rules it reads, directly or through others
    exporter: frozenset[str]  # ov_* series
    platform: frozenset[str]  # series of other components (KubeVirt, etcd, node_exporter)


def rule_inputs(groups: list[dict]) -> dict[int, Inputs]:
    records = {rule["record"]: rule for group in groups for rule in group["rules"] if "record" in rule}
    direct = {id(rule): metric_names(rule["expr"]) for group in groups for rule in group["rules"]}
    memo: dict[str, Inputs] = {}

    def resolve(names: set[str], seen: frozenset[str]) -> Inputs:
        found_records, exporter, platform = set(), set(), set()
        for name in names:
            if name in records:
                found_records.add(name)
                if name not in seen:  # a rule may read its own past values (baselines)
                    inner = memo.get(name) or resolve(direct[id(records[name])], seen | {name})
                    memo[name] = inner
                    found_records |= inner.records
                    exporter |= inner.exporter
                    platform |= inner.platform
            elif name.startswith(EXPORTER_PREFIX):
                exporter.add(name)
            elif name not in OWN_SERIES:
                platform.add(name)
        return Inputs(frozenset(found_records), frozenset(exporter), frozenset(platform))

    return {
        id(rule): resolve(direct[id(rule)], frozenset({rule.get("record", "")}))
        for group in groups
        for rule in group["rules"]
    }


def place(groups: list[dict], layout: str) -> Placement:
    placement = Placement(layout)
    inputs = rule_inputs(groups)
    record_inputs = {r["record"]: inputs[id(r)] for g in groups for r in g["rules"] if "record" in r}
    record_exprs = {r["record"]: r["expr"] for g in groups for r in g["rules"] if "record" in r}
    for group in groups:
        for rule in group["rules"]:
            key, used = id(rule), inputs[id(rule)]
            if layout == KUBERNETES:
                placement.destination[key] = PROMETHEUS_RULE
            elif layout != USER_WORKLOAD:
                raise LayoutError(f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)}")
            elif not used.platform:
                placement.destination[key] = PROMETHEUS_RULE
            elif "alert" not in rule:  # a recording rule over platform metrics: nowhere to evaluate it
                placement.dropped_records[rule["record"]] = (
                    f"reads platform metrics ({', '.join(sorted(used.platform))}), which user-workload rules cannot "
                    "read; an AlertingRule holds no recording rules"
                )
            elif not used.exporter and (expr := inline_records(rule["expr"], record_exprs)) is not None:
                placement.destination[key] = ALERTING_RULE
                if expr != rule["expr"]:
                    placement.inlined[key] = expr
            else:
                over_platform = sorted(r for r in used.records if record_inputs[r].platform)
                placement.unavailable[rule["alert"]] = _why_unavailable(over_platform, used)
    both = set(placement.unavailable) & {
        r["alert"] for g in groups for r in g["rules"] if "alert" in r and placement.destination.get(id(r))
    }
    if both:
        raise LayoutError(f"{layout}: alerts placed at one severity and unavailable at another: {sorted(both)}")
    return placement


def inline_records(expr: str, record_exprs: dict[str, str]) -> str | None:
    """`expr` with every recording rule it reads replaced by the rule's expression,
    or None where that is not an equivalent rewrite: a record read over a range
    (`[5m]`), with matchers, with offset/@, or through a record that reads itself.
    A recording rule's value at an evaluation is its expression's value then, so a
    plain instant read of it can be replaced by `(expression)`."""
    for _ in range(len(record_exprs) + 1):
        names = metric_names(expr) & set(record_exprs)
        if not names:
            return expr
        for name in names:
            pattern = re.compile(rf"(?<![\w:\"]){re.escape(name)}(?![\w:])(\s*)")
            reads = list(pattern.finditer(expr))
            for read in reads:
                following = expr[read.end() : read.end() + 6]
                if following[:1] in ("{", "[", "@") or following.startswith("offset"):
                    return None
            expr = pattern.sub(lambda m, name=name: f"({record_exprs[name].strip()}){m.group(1)}", expr)
    return None  # still reading records after as many rounds as there are records: a cycle


def _why_unavailable(over_platform: list[str], used: Inputs) -> str:
    platform = ", ".join(sorted(used.platform))
    if over_platform:
        return (
            f"needs the recording rule(s) {', '.join(over_platform)} over platform metrics ({platform}), "
            "which user-workload rules cannot read; an AlertingRule holds no recording rules, and these "
            "are read over a range or through another record, so they cannot be inlined"
        )
    return f"reads exporter series and platform metrics ({platform}) together: no Prometheus of this layout holds both"


# ---------------------------------------------------------------- the namespace rewrite

_LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)(\s*)\(([^()]*)\)")
_MATCHER = re.compile(r"([{,]\s*)namespace(\s*(?:=~|!~|!=|=))")
_LABEL_ARG = re.compile(r'"namespace"')
_TEMPLATE = re.compile(r"(?<!exported_namespace )\$labels\.namespace\b")


def _rename_in_list(match: re.Match) -> str:
    keyword, space, body = match.groups()
    labels = [label.strip() for label in body.split(",")]
    if ENFORCED_LABEL in labels and OBJECT_NAMESPACE_LABEL not in labels:
        body = re.sub(rf"\b{ENFORCED_LABEL}\b", OBJECT_NAMESPACE_LABEL, body)
    return f"{keyword}{space}({body})"


def object_namespace_from_exported(expr: str) -> str:
    """Under user-workload monitoring a VM's namespace is `exported_namespace`, and
    `namespace` is the exporter's own (the enforcer overwrites any namespace matcher).
    Rewrite label lists, matchers and label_replace/label_join arguments that name
    `namespace` alone; lists that already name both are left as they are."""
    expr = _LABEL_LIST.sub(_rename_in_list, expr)
    expr = _MATCHER.sub(rf"\1{OBJECT_NAMESPACE_LABEL}\2", expr)
    return _LABEL_ARG.sub(f'"{OBJECT_NAMESPACE_LABEL}"', expr)


def for_user_workload(rule: dict, where: str) -> dict:
    """A copy of `rule` for prometheus-user-workload (see object_namespace_from_exported)."""
    if ENFORCED_LABEL in rule.get("labels", {}):
        raise LayoutError(
            f"{where}: label `{ENFORCED_LABEL}` is overwritten by user-workload monitoring "
            "(the rule's own namespace); use another label name"
        )
    out = copy.deepcopy(rule)
    out["expr"] = object_namespace_from_exported(rule["expr"])
    for key, text in out.get("annotations", {}).items():
        out["annotations"][key] = _TEMPLATE.sub(f"$labels.{OBJECT_NAMESPACE_LABEL}", text)
    return out
