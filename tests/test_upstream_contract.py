"""Rules, promtool tests, dashboards, reports and the fixture generator held to the
upstream metrics contract (alerts/upstream-metrics.yaml, read through
tests/upstream_contract.py): names, labels and the releases that publish them."""

from __future__ import annotations

import ast
import functools
import json
import re
from pathlib import Path

import promql_parser as pp
import pytest
import yaml
from ov_exporter.render import all_families, exposition_name

from . import upstream_contract as uc
from .conftest import ROOT, promql_metric_names

ALERTS = ROOT / "alerts"
NOT_RULES = {"upstream-metrics.yaml"}
RULE_FILES = sorted(p for p in ALERTS.glob("*.yaml") if p.name not in NOT_RULES)
UNIT_TESTS = sorted((ROOT / "tests" / "alerts").glob("*-test.yaml"))
DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))
PY_QUERIES = [ROOT / "exporter" / "ov_exporter" / "rebalance.py", ROOT / "exporter" / "ov_exporter" / "upstream.py"]
# Prometheus's own synthetic series that dashboards read (dashboards/upstream-metrics.yaml).
PROMETHEUS_SYNTHETIC = set(yaml.safe_load((ROOT / "dashboards" / "upstream-metrics.yaml").read_text())["metrics"])
# Labels every series the exporter exposes gets from its scrape (deploy/: a ServiceMonitor);
# under user-workload monitoring a family's own `namespace` arrives as exported_namespace.
# Fleets add `cluster` to every series (each cluster's Prometheus sets it in external_labels).
EXPORTER_TARGET_LABELS = {
    "container",
    "endpoint",
    "instance",
    "job",
    "namespace",
    "pod",
    "service",
    "exported_namespace",
    *uc.FLEET_LABELS,
}
GRAFANA_VARS = [
    ("${__from:date:seconds}", "0"),
    ("${__to:date:seconds}", "0"),
    ("$__rate_interval", "5m"),
    ("$__interval", "5m"),
    ("$__range", "1h"),
    ("${rebalance_start}", "0"),
    ("$cluster", ".*"),
    ("$namespace", ".*"),
    ("$node", ".*"),
]


def _rules() -> list[tuple[str, str, dict]]:
    """(file, alert or record name, rule) of every rule in alerts/*.yaml."""
    return [
        (path.name, rule.get("alert") or rule["record"], rule)
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


RULES = _rules()
RECORDS = {name: rule["expr"] for _, name, rule in RULES if "record" in rule}


@functools.lru_cache(maxsize=1)
def _exporter_labels() -> dict[str, set[str]]:
    return {exposition_name(f): set(f.labels) | EXPORTER_TARGET_LABELS for _, f in all_families()}


def _dashboard_exprs() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []

    def walk(node, where: str) -> None:
        if isinstance(node, dict) and node.get("type") != "datasource":  # a datasource variable's query is a type
            for key, value in node.items():
                if key in ("expr", "query") and isinstance(value, str) and value and "label_values(" not in value:
                    for var, fill in GRAFANA_VARS:
                        value = value.replace(var, fill)
                    # A query_result(<PromQL>) variable is Grafana's wrapper around plain PromQL.
                    value = re.sub(r"^query_result\((.*)\)$", r"\1", value.strip(), flags=re.S)
                    out.append((where, value))
                else:
                    walk(value, where)
        elif isinstance(node, list):
            for item in node:
                walk(item, where)

    for path in DASHBOARDS:
        walk(json.loads(path.read_text()), path.name)
    return out


def _python_metric_names(path: Path) -> set[str]:
    """Upstream-looking metric names in the string constants of a module (docstrings and
    words like node_exporter left out)."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(n.body[0].value)
        for n in ast.walk(tree)
        if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        and n.body
        and isinstance(n.body[0], ast.Expr)
        and isinstance(n.body[0].value, ast.Constant)
    }
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            names |= set(
                re.findall(
                    r"(?<![:\w])((?:kubevirt|node|etcd|kube)_[A-Za-z0-9_]*[A-Za-z0-9]|vmi:[a-z_]+:[a-z0-9]+)\b",
                    node.value,
                )
            )
    return names - {"node_exporter"}


def _series_selector(series: str) -> tuple[str, dict[str, str]]:
    node = pp.parse(series)
    assert isinstance(node, pp.VectorSelector), series
    labels = {m.name: m.value for m in node.matchers.matchers if m.name != "__name__"}
    name = node.name or next(m.value for m in node.matchers.matchers if m.name == "__name__")
    return name, labels


# ------------------------------------------------------------------ label analysis
SCALAR = "scalar"


def _requires_label(matcher) -> bool:
    """Whether a matcher can only match series that carry the label: `x="v"` or `x=~"re"`
    where neither matches the empty string (`cluster=~".*"` also matches no label)."""
    op = str(matcher.op)
    if op.endswith("Equal") and not op.endswith("NotEqual"):
        return matcher.value != ""
    if op.endswith("Re") and not op.endswith("NotRe"):
        return re.fullmatch(matcher.value, "") is None
    return False


class Analysis:
    """Walks one rule expression for one KubeVirt release: which labels each subtree can
    carry (None: unknown, e.g. ALERTS), and every label use that no input can provide."""

    def __init__(self, release: str) -> None:
        self.release = release
        self.problems: list[str] = []

    def labels(self, node) -> set[str] | None | str:
        if isinstance(node, (pp.NumberLiteral, pp.StringLiteral)):
            return SCALAR
        if isinstance(node, pp.VectorSelector):
            return self.selector(node)
        if isinstance(node, pp.MatrixSelector):
            return self.labels(node.vector_selector)
        if isinstance(node, (pp.ParenExpr, pp.UnaryExpr, pp.SubqueryExpr)):
            return self.labels(node.expr)
        if isinstance(node, pp.Call):
            return self.call(node)
        if isinstance(node, pp.AggregateExpr):
            return self.aggregate(node)
        if isinstance(node, pp.BinaryExpr):
            return self.binary(node)
        raise AssertionError(f"unhandled PromQL node {type(node).__name__}")

    def selector(self, node) -> set[str] | None:
        name = node.name or next((m.value for m in node.matchers.matchers if m.name == "__name__"), None)
        if name in RECORDS:
            return record_labels(name, self.release)
        if name in _exporter_labels():
            have = _exporter_labels()[name]
        elif name and uc.base_name(name):
            have = uc.all_labels(name, self.release)
            for m in node.matchers.matchers:
                if (
                    m.name != "__name__"
                    and m.name not in have
                    and not m.name.startswith(uc.label_prefixes(name))
                    and _requires_label(m)
                ):
                    self.problems.append(f"selector of {name} matches label {m.name!r}, which {name} does not carry")
            return have
        else:
            return None
        return have

    def call(self, node):
        fn = node.func.name
        args = [self.labels(a) for a in node.args]
        vectors = [a for a in args if a != SCALAR]
        if fn in ("label_replace", "label_join"):
            base = vectors[0] if vectors else None
            return None if base is None else base | {node.args[1].val}
        if fn == "histogram_quantile":
            return None if vectors[0] is None else vectors[0] - {"le"}
        if fn in ("absent", "absent_over_time"):
            return set()
        if fn in ("vector", "time", "scalar", "pi"):
            return SCALAR if fn != "vector" else set()
        return vectors[0] if vectors else SCALAR

    def use(self, label: str, have, how: str) -> None:
        if have not in (None, SCALAR) and label not in have:
            self.problems.append(f"{how} label {label!r}, which no input carries (inputs: {sorted(have)})")

    def aggregate(self, node):
        inner = self.labels(node.expr)
        mod = node.modifier
        keys = list(mod.labels) if mod is not None else []
        for key in keys:
            self.use(key, inner, f"{node.op} {str(mod.type).split('.')[-1].lower()} ({', '.join(keys)})")
        if mod is not None and str(mod.type).endswith("Without"):
            result = None if inner in (None, SCALAR) else inner - set(keys)
        else:
            result = set(keys)
        if str(node.op) in ("topk", "bottomk", "limitk", "limit_ratio"):
            return inner
        if str(node.op) == "count_values" and isinstance(node.param, pp.StringLiteral):
            result = result | {node.param.val} if result is not None else None
        return result

    def binary(self, node):
        lhs, rhs = self.labels(node.lhs), self.labels(node.rhs)
        if lhs == SCALAR:
            return rhs
        if rhs == SCALAR:
            return lhs
        op = str(node.op)
        mod = node.modifier
        matching = getattr(mod, "matching", None) if mod is not None else None
        on = matching is not None and str(matching.type).endswith("Include")
        keys = list(matching.labels) if matching is not None else []
        group = list(getattr(mod, "group_labels", None) or [])
        card = str(getattr(mod, "card", "")) if mod is not None else ""
        sides = (lhs, rhs)
        for key in keys:
            if op == "or" or not on:
                if all(s not in (None, SCALAR) and key not in s for s in sides):
                    self.problems.append(
                        f"`{op} {'on' if on else 'ignoring'}({', '.join(keys)})`: label {key!r} is on neither side"
                    )
            else:
                for side, name in ((lhs, "left"), (rhs, "right")):
                    self.use(key, side, f"`{op} on({', '.join(keys)})` ({name} side)")
        one = rhs if card.endswith("ManyToOne") else lhs if card.endswith("OneToMany") else None
        for key in group:
            self.use(key, one, f"group_{'left' if card.endswith('ManyToOne') else 'right'}({', '.join(group)})")
        if op in ("and", "unless"):
            return lhs
        if op == "or":
            return None if None in sides else lhs | rhs
        if card.endswith("ManyToOne") or card.endswith("OneToMany"):
            many = lhs if card.endswith("ManyToOne") else rhs
            return None if many is None else many | set(group)
        if lhs is None:
            return None
        if on:
            return lhs & set(keys)
        return lhs - set(keys)


@functools.lru_cache(maxsize=None)
def _record_analysis(name: str, release: str) -> tuple[frozenset[str] | None, tuple[str, ...]]:
    analysis = Analysis(release)
    result = analysis.labels(pp.parse(RECORDS[name]))
    labels = None if result is None else frozenset(set() if result == SCALAR else result)
    return labels, tuple(analysis.problems)


_IN_PROGRESS: set[tuple[str, str]] = set()


def record_labels(name: str, release: str) -> set[str] | None:
    """The labels a recording rule produces; None (unknown) for a rule that reads itself
    (a latch such as cluster:ov_vm_node_cpu_utilisation:spread_baseline) while it is analysed."""
    if (name, release) in _IN_PROGRESS:
        return None
    _IN_PROGRESS.add((name, release))
    try:
        labels = _record_analysis(name, release)[0]
    finally:
        _IN_PROGRESS.discard((name, release))
    return None if labels is None else set(labels)


# -------------------------------------------------------------------- resolution
def resolves(node, release: str) -> bool:
    """Whether the expression can return data on `release`: every upstream metric it reads
    exists there, except inside an `or` whose other side resolves."""
    if isinstance(node, pp.VectorSelector):
        name = node.name or next((m.value for m in node.matchers.matchers if m.name == "__name__"), None)
        if name in RECORDS:
            if (name, release) in _IN_PROGRESS:  # a rule reading itself: decided by its other branch
                return False
            _IN_PROGRESS.add((name, release))
            try:
                return resolves(pp.parse(RECORDS[name]), release)
            finally:
                _IN_PROGRESS.discard((name, release))
        base = uc.base_name(name) if name else None
        return base is None or uc.exists(base, release)
    if isinstance(node, pp.MatrixSelector):
        return resolves(node.vector_selector, release)
    if isinstance(node, (pp.ParenExpr, pp.UnaryExpr, pp.SubqueryExpr, pp.AggregateExpr)):
        return resolves(node.expr, release)
    if isinstance(node, pp.Call):
        return all(resolves(a, release) for a in node.args)
    if isinstance(node, pp.BinaryExpr):
        if str(node.op) == "or":
            return resolves(node.lhs, release) or resolves(node.rhs, release)
        if str(node.op) == "unless":
            return resolves(node.lhs, release)
        return resolves(node.lhs, release) and resolves(node.rhs, release)
    return True


def _upstream_leaves(expr: str, seen: frozenset[str] = frozenset()) -> set[str]:
    out: set[str] = set()
    for name in promql_metric_names(expr):
        if name in RECORDS:
            if name not in seen:  # a rule reading itself (a latch) adds nothing new
                out |= _upstream_leaves(RECORDS[name], seen | {name})
        elif uc.base_name(name):
            out.add(uc.base_name(name))
    return out


# ========================================================================= tests
def test_the_contract_is_well_formed_and_every_entry_names_a_source():
    doc = uc.load()  # validates: raises ContractError naming the entry and field
    assert doc["metrics"] and doc["components"]
    for name, entry in doc["metrics"].items():
        assert entry["source"]["repository"] and entry["source"]["path"], name
        assert name not in _exporter_labels(), f"{name} is an exporter family, not upstream"
        assert not name.startswith("ov_") and ":ov_" not in name, name
    for comp in doc["components"].values():
        assert comp["target_labels"] and comp["scrape"].get("note"), comp["repository"]
    assert uc.releases()[0] == "1.3.0" and uc.releases()[-1] == "1.9.0"


def test_contract_library_answers_from_the_file():
    # Found at the release tags (the contract's sources); the library must give them back.
    assert not uc.exists("kubevirt_vmi_migration_start_time_seconds", "1.4.0")
    assert uc.exists("kubevirt_vmi_migration_start_time_seconds", "1.4.1")
    assert uc.exists("kubevirt_vmi_vcpu_count", "1.7.4") and not uc.exists("kubevirt_vmi_vcpu_count", "1.8.0")
    assert not uc.exists("kubevirt_vmi_migrations_in_unset_phase", "1.5.0")
    assert uc.exists("kubevirt_vmi_migrations_in_unset_phase", "1.5.1")
    assert "guest_os_arch" not in uc.labels("kubevirt_vmi_info", "1.3.1")
    assert "vmi_pod" in uc.labels("kubevirt_vmi_info", "1.9.0")
    assert uc.labels("etcd_disk_wal_fsync_duration_seconds_bucket") == {"le"}
    assert uc.target_labels("node_exporter") >= {"instance", "job"}
    uc.check_series("kubevirt_vmi_migration_succeeded", {"vmi": "a", "vmim": "m", "namespace": "n", "job": "j"})
    with pytest.raises(uc.ContractError, match=r"invents \['vm'\]"):
        uc.check_series("kubevirt_vmi_migration_succeeded", {"vmi": "a", "vmim": "m", "namespace": "n", "vm": "x"})
    with pytest.raises(uc.ContractError, match=r"misses \['vmim'\]"):
        uc.check_series("kubevirt_vmi_migration_succeeded", {"vmi": "a", "namespace": "n"})
    with pytest.raises(uc.ContractError, match="does not exist in kubevirt 1.3.0"):
        uc.check_series(
            "kubevirt_vmi_migration_start_time_seconds",
            {"node": "w", "namespace": "n", "name": "v", "migration_name": "m"},
            "1.3.0",
        )
    # A recording rule that aggregates keeps no target label.
    with pytest.raises(uc.ContractError, match=r"invents \['job'\]"):
        uc.check_series("vmi:kubevirt_vmi_vcpu:count", {"namespace": "n", "name": "v", "node": "w", "job": "j"})


def test_every_upstream_metric_that_anything_reads_is_in_the_contract():
    used: dict[str, set[str]] = {}
    for file, name, rule in RULES:
        for metric in promql_metric_names(rule["expr"]):
            used.setdefault(metric, set()).add(f"{file} {name}")
    for path in UNIT_TESTS:
        for test in yaml.safe_load(path.read_text()).get("tests", []):
            for series in test.get("input_series", []):
                used.setdefault(_series_selector(series["series"])[0], set()).add(path.name)
    for where, expr in _dashboard_exprs():
        for metric in promql_metric_names(expr):
            used.setdefault(metric, set()).add(where)
    for path in PY_QUERIES:
        for metric in _python_metric_names(path):
            used.setdefault(metric, set()).add(path.name)
    ours = set(_exporter_labels()) | set(RECORDS) | PROMETHEUS_SYNTHETIC
    missing = {
        m: sorted(w)
        for m, w in used.items()
        if m not in ours and not m.startswith("ov_") and ":ov_" not in m and uc.base_name(m) is None
    }
    assert not missing, f"upstream metrics read but not in the contract: {missing}"


def _label_violations() -> list[str]:
    out: dict[tuple[str, str], list[str]] = {}
    for file, name, rule in RULES:
        for release in uc.releases():
            analysis = Analysis(release)
            analysis.labels(pp.parse(rule["expr"]))
            for problem in analysis.problems:
                out.setdefault((f"{file} {name}", problem), []).append(release)
    return [f"{where}: {problem} [{_ranges(rels)}]" for (where, problem), rels in sorted(out.items())]


def _ranges(releases: list[str]) -> str:
    return "every release" if releases == uc.releases() else ", ".join(releases)


def test_every_label_a_rule_uses_on_an_upstream_metric_exists_there():
    """Selector matchers of upstream metrics; by/without/on/ignoring/group_* labels of any
    subtree (recording rules contribute the labels they produce, label_replace adds its
    target). Evaluated against each supported release's label sets."""
    violations = _label_violations()
    assert not violations, "\n".join(violations)


def _report_and_panel_queries() -> list[tuple[str, str]]:
    from ov_exporter import rebalance

    out = [(f"rebalance report {part}", rebalance.migrations_query(part, 3600)) for part in rebalance.MIGRATION_PARTS]
    for kind in ("cpu", "memory"):
        out += [
            (f"rebalance report {kind} {key}", q)
            for key, q in rebalance.before_after(kind, "", "", "1000", "2000").items()
        ]
    return out + _dashboard_exprs()


def test_every_label_a_panel_or_the_rebalance_report_uses_on_an_upstream_metric_exists_there():
    """The same label analysis over the dashboards' queries and the rebalance report's."""
    problems: dict[tuple[str, str], list[str]] = {}
    for where, expr in _report_and_panel_queries():
        for release in uc.releases():
            analysis = Analysis(release)
            analysis.labels(pp.parse(expr))
            for problem in analysis.problems:
                problems.setdefault((where, problem), []).append(release)
    violations = [f"{where}: {problem} [{_ranges(rels)}]" for (where, problem), rels in sorted(problems.items())]
    assert not violations, "\n".join(violations)


def _series_violations() -> list[str]:
    out = []
    for path in UNIT_TESTS:
        for i, test in enumerate(yaml.safe_load(path.read_text()).get("tests", [])):
            for series in test.get("input_series", []):
                name, labels = _series_selector(series["series"])
                if uc.base_name(name) is None:
                    continue
                errors = []
                for release in reversed(uc.releases()):
                    if not uc.exists(uc.base_name(name), release):
                        continue
                    try:
                        uc.check_series(name, labels, release)
                        break
                    except uc.ContractError as err:
                        errors.append(str(err))
                else:
                    out.append(f"{path.name} test {i}: {errors[0] if errors else name + ' exists in no release'}")
    return sorted(set(out))


def test_every_promtool_test_series_of_an_upstream_metric_carries_exactly_its_labels():
    """Own labels all present, nothing invented (target labels allowed), in at least one
    supported release that publishes the metric."""
    violations = _series_violations()
    assert not violations, "\n".join(violations)


def _resolution_violations() -> list[str]:
    needs = uc.load()["needs_release"] or {}
    out = []
    for file, name, rule in RULES:
        expr = pp.parse(rule["expr"])
        failing = [
            r
            for r in uc.releases()
            if not resolves(expr, r) and not (name in needs and uc.version(r) < uc.version(needs[name]["release"]))
        ]
        if failing:
            missing = sorted(m for m in _upstream_leaves(rule["expr"]) if not uc.exists(m, failing[0]))
            out.append(f"{file} {name}: reads {missing}, absent from {_ranges(failing)}")
    return out


def test_every_rule_resolves_on_every_supported_release():
    """Each upstream metric a rule reads exists in every supported release, or an `or`
    fallback covers it, or the contract lists the rule under needs_release."""
    violations = _resolution_violations()
    assert not violations, "\n".join(violations)


def test_needs_release_names_existing_rules():
    names = {name for _, name, _ in RULES}
    assert set(uc.load()["needs_release"] or {}) <= names


def test_the_label_analysis_catches_what_it_should():
    def problems(expr: str, release: str = "1.9.0") -> list[str]:
        a = Analysis(release)
        a.labels(pp.parse(expr))
        return a.problems

    assert problems('kubevirt_vmi_migration_succeeded{name="x"}')
    assert problems('kubevirt_vmi_info{region=~"a|b"}')
    assert not problems('kubevirt_vmi_info{region=~".*", flavor!="x"}')  # these match series without the label
    assert not problems('kubevirt_vmi_info{cluster=~"a|b"}')  # a fleet's external label (uc.FLEET_LABELS)
    assert not problems('kubevirt_vmi_migration_succeeded{vmi="x", job="kubevirt-prometheus-metrics"}')
    assert problems("sum by (node) (kubevirt_vmi_migration_succeeded)")
    assert not problems("sum by (node) (kubevirt_vmi_migration_start_time_seconds)")
    assert problems("kubevirt_vmi_info and on(vmi) kubevirt_vmi_migration_succeeded")
    assert not problems(
        'label_replace(kubevirt_vmi_migration_succeeded, "name", "$1", "vmi", "(.*)") '
        "and on(namespace, name) kubevirt_vmi_info"
    )
    assert problems("sum by (node) (sum by (namespace) (kubevirt_vmi_info))")
    assert problems("kubevirt_vmi_info * on(namespace, name) group_left(cpu) kubevirt_vmi_non_evictable")
    assert problems("sum by (guest_os_arch) (kubevirt_vmi_info)", "1.3.0")
    assert not problems("sum by (guest_os_arch) (kubevirt_vmi_info)", "1.4.0")
    assert resolves(
        pp.parse(
            "kubevirt_vmi_migration_memory_transfer_rate_bytes or kubevirt_vmi_migration_disk_transfer_rate_bytes"
        ),
        "1.3.0",
    )
    assert not resolves(pp.parse("kubevirt_vmi_migration_memory_transfer_rate_bytes"), "1.6.6")


# ------------------------------------------------------------ (f) the fixture generator
def test_the_generator_emits_only_contract_series_for_every_release():
    from prometheus_client.parser import text_string_to_metric_families

    from . import upstream_series as us

    for release in uc.releases():
        sc = us.Scenario(release=release)
        series = us.stored(sc, sc.start + 3600)  # check_series on each, for this release
        names = {m for m, _, _ in series}
        assert all(uc.exists(uc.base_name(m), release) for m in names), release
        assert ("kubevirt_vmi_dirty_rate_bytes_per_second" in names) == uc.exists(
            "kubevirt_vmi_dirty_rate_bytes_per_second", release
        )
        assert sum(1 for m, _, _ in series if m == "kubevirt_vmi_info") == sc.vms
        for job in us.JOBS:
            for instance, text in us.scrape(sc, job, sc.start + 600).items():
                parsed = {s.name for fam in text_string_to_metric_families(text) for s in fam.samples}
                assert parsed and all(uc.base_name(n) for n in parsed), (release, job, instance)


def test_the_generator_is_a_quiet_consistent_cluster_and_takes_planted_hooks():
    from . import upstream_series as us

    sc = us.Scenario()
    a = {(m, tuple(sorted(lab.items()))): v for m, lab, v in us.stored(sc, sc.start + 3600)}
    b = {(m, tuple(sorted(lab.items()))): v for m, lab, v in us.stored(sc, sc.start + 7200)}
    counters = [k for k in a if k[0].endswith(("_total", "_bucket", "_count", "_sum"))]
    assert counters and all(b[k] >= a[k] for k in counters)
    for k in a:  # histogram buckets are cumulative and end at _count
        if k[0].endswith("_bucket"):
            les = sorted(
                (float(dict(kk[1])["le"]), a[kk])
                for kk in a
                if kk[0] == k[0] and {x for x in kk[1] if x[0] != "le"} == {x for x in k[1] if x[0] != "le"}
            )
            assert [v for _, v in les] == sorted(v for _, v in les)
    assert {dict(lab)["instance"] for (m, lab) in a if m == "etcd_server_has_leader"}.__len__() == 3
    assert len({dict(lab)["instance"] for (m, lab) in a if m == "node_cpu_seconds_total"}) == 7
    assert not [k for k in a if "migration" in k[0] and "phase" not in k[0]]
    dropped = us.Scenario(hooks=[lambda m, lab, t, v: None if m == "etcd_server_has_leader" else v])
    assert not [m for m, _, _ in us.stored(dropped, dropped.start) if m == "etcd_server_has_leader"]
    with pytest.raises(uc.ContractError, match="invents"):
        us.stored(
            us.Scenario(extras=[lambda t: [("etcd", "10.0.0.2:9979", "etcd_server_has_leader", {"member": "x"}, 1.0)]]),
            0,
        )
    with pytest.raises(ValueError, match="not a supported release"):
        us.Scenario(release="1.2.0")


def test_the_generator_backfills_into_a_real_prometheus_with_the_healthy_numbers(tmp_path):
    """promtool create-blocks-from openmetrics, then a real Prometheus answers: node CPU
    about 40 % busy, etcd WAL fsync p99 about 2 ms, 20 running VMs, all targets up."""
    import subprocess
    import urllib.parse

    from . import upstream_series as us
    from .conftest import Prometheus, http_get, require_binary, wait_for

    promtool = require_binary("promtool")
    sc = us.Scenario(release="1.6.0")
    us.write_openmetrics(sc, tmp_path / "om.txt", hours=2, step=60)
    result = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", "-q", str(tmp_path / "om.txt"), str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    prom = Prometheus(
        tmp_path, [], job="none", data_dir=tmp_path / "data", extra_args=("--storage.tsdb.retention.time=100y",)
    )
    try:
        wait_for(lambda: http_get(f"{prom.url}/-/ready")[0] == 200, "prometheus ready", logs=[prom.log])

        def value(expr: str) -> list[float]:
            q = urllib.parse.urlencode({"query": expr, "time": sc.start + 7200})
            status, body = http_get(f"{prom.url}/api/v1/query?{q}")
            assert status == 200, body
            return [float(r["value"][1]) for r in json.loads(body)["data"]["result"]]

        busy = value('1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m]))')
        assert len(busy) == 7 and all(0.35 < b < 0.45 for b in busy), busy
        p99 = value(
            "histogram_quantile(0.99, sum by (instance, le) (rate(etcd_disk_wal_fsync_duration_seconds_bucket[5m])))"
        )
        assert len(p99) == 3 and all(0.0015 < p < 0.003 for p in p99), p99
        assert value('count(kubevirt_vmi_info{phase="running"})') == [20.0]
        assert value("sum(kubevirt_vmi_migrations_in_running_phase)") == [0.0]
        assert value("min(up)") == [1.0]
    finally:
        prom.stop()


def test_the_generated_input_series_run_in_promtool(tmp_path):
    import subprocess

    from . import upstream_series as us
    from .conftest import require_binary

    promtool = require_binary("promtool")
    sc = us.Scenario(release="1.4.1")
    rules = {
        "groups": [
            {
                "name": "g",
                "rules": [
                    {"record": "vms", "expr": 'count(kubevirt_vmi_info{phase="running"})'},
                    {"record": "busy", "expr": '1 - avg(rate(node_cpu_seconds_total{mode="idle"}[5m]))'},
                ],
            }
        ]
    }
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    test = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": us.input_series(sc, minutes=15),
                "promql_expr_test": [
                    {"expr": "vms", "eval_time": "10m", "exp_samples": [{"labels": "vms", "value": 20}]},
                    {"expr": "round(busy, 0.01)", "eval_time": "10m", "exp_samples": [{"labels": "{}", "value": 0.42}]},
                ],
            }
        ],
    }
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(test))
    result = subprocess.run(
        [promtool, "test", "rules", "test.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_contract_entry_is_refused_by_name():
    import copy

    for field, bad, message in (
        ("source", {"repository": "kubevirt/kubevirt"}, "source must name"),
        ("type", "summary", "type 'summary'"),
        ("component", "cdi", "component 'cdi'"),
        ("first", "one.four", "not a version"),
    ):
        doc = copy.deepcopy(uc.load())
        doc["metrics"]["kubevirt_vmi_info"][field] = bad
        with pytest.raises(uc.ContractError, match=f"kubevirt_vmi_info.*{message}|{message}"):
            uc._validate(doc)


def test_alerts_readme_states_what_each_alert_needs_and_on_which_releases_it_works():
    from . import release_table

    assert release_table.current() == release_table.render(), "run python -m tests.release_table"
    rows = {name: span for name, _, span in release_table.rows()}
    # The PromQL dirty-rate fallback is the one part tied to a release (KubeVirt 1.6.0).
    assert "kubevirt_vmi_dirty_rate_bytes_per_second`: 1.6.0 and later" in rows["OVVMIDirtyRateTooHighForMigration"]
    assert rows["OVVMIOnNotReadyNode"] == "every release"
