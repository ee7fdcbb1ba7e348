"""The rule files alerts/build.py writes for each deploy layout (alerts/layouts.py):
promtool accepts them, every alert of alerts/*.yaml lands in exactly one place per
layout or is listed unavailable with its reason, each file reads only what its
Prometheus holds, and the rules moved or rewritten for a layout still pass the
promtool unit tests of tests/alerts/ written for the originals."""

from __future__ import annotations

import importlib.util
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT, promql_metric_names, require_binary

ALERTS = ROOT / "alerts"
UNIT_TESTS = ROOT / "tests" / "alerts"
OVERLAYS = ROOT / "deploy" / "overlays"
GENERATED = {
    ("kubernetes", "prometheusrule"): OVERLAYS / "kubernetes" / "prometheusrule.yaml",
    ("openshift-user-workload", "prometheusrule"): OVERLAYS / "openshift-user-workload" / "prometheusrule.yaml",
    ("openshift-user-workload", "alertingrule"): OVERLAYS / "openshift-user-workload" / "alertingrule.yaml",
}


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load("ov_alerts_build_layouts", ALERTS / "build.py")
layouts = build.layouts
SOURCE_RULES = [rule for group in build.load_groups() for rule in group["rules"]]


def _groups(path: Path) -> list[dict]:
    return yaml.safe_load(path.read_text())["spec"]["groups"]


def _rules(path: Path) -> list[dict]:
    return [rule for group in _groups(path) for rule in group["rules"]]


def _key(rule: dict) -> tuple[str, str]:
    """A rule's identity across layouts: alert and severity, or the record's name."""
    return (rule["alert"], rule["labels"]["severity"]) if "alert" in rule else ("record", rule["record"])


def _unavailable_in_readme() -> dict[str, dict[str, str]]:
    readme = (ROOT / "deploy" / "README.md").read_text()
    section = readme[readme.index(build.UNAVAILABLE_BEGIN) : readme.index(build.UNAVAILABLE_END)]
    found: dict[str, dict[str, str]] = {}
    for layout, alert, reason in re.findall(r"^\| ([\w-]+) \| `([\w:]+)` \| (.+) \|$", section, re.M):
        found.setdefault(layout, {})[alert] = reason
    return found


# ---------------------------------------------------------------- promtool


@pytest.mark.parametrize("where", GENERATED, ids=lambda w: "/".join(w))
def test_promtool_check_rules_accepts_every_generated_rule_file(where, tmp_path):
    groups = _groups(GENERATED[where])
    plain = tmp_path / "groups.yaml"
    plain.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    proc = subprocess.run(
        [require_binary("promtool"), "check", "rules", str(plain)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {sum(len(g['rules']) for g in groups)} rules found" in proc.stdout


# ---------------------------------------------------------------- one place per layout


def test_kubernetes_holds_every_rule_once():
    assert Counter(map(_key, _rules(GENERATED["kubernetes", "prometheusrule"]))) == Counter(map(_key, SOURCE_RULES))
    assert not _unavailable_in_readme().get("kubernetes")


def test_user_workload_places_every_alert_once_or_lists_it_unavailable_with_a_reason():
    placed = Counter(
        _key(r)
        for kind in ("prometheusrule", "alertingrule")
        for r in _rules(GENERATED["openshift-user-workload", kind])
        if "alert" in r
    )
    unavailable = {
        name: reason for name, reason in _unavailable_in_readme()["openshift-user-workload"].items() if ":" not in name
    }
    for rule in SOURCE_RULES:
        if "alert" not in rule:
            continue
        if rule["alert"] in unavailable:
            assert placed[_key(rule)] == 0, f"{rule['alert']} is both placed and listed unavailable"
        else:
            assert placed[_key(rule)] == 1, f"{_key(rule)} placed {placed[_key(rule)]} times"
    assert set(unavailable) <= {r["alert"] for r in SOURCE_RULES if "alert" in r}
    for alert, reason in unavailable.items():
        # The reason names what is missing: a recording rule over platform metrics, or both sides.
        assert (
            re.search(r"recording rule\(s\) [\w:]+(, [\w:]+)* over platform metrics \(\w+", reason)
            or "exporter series and platform metrics" in reason
        ), (alert, reason)


def test_the_readme_lists_what_the_placement_leaves_out_alerts_and_recording_rules():
    groups = build.render_groups(build.load_groups(), build.DEFAULT_RUNBOOK_BASE, build.DEFAULT_PARALLEL_MIGRATIONS)
    placement = layouts.place(groups, layouts.USER_WORKLOAD)
    assert placement.unavailable, "the platform alerts that need range reads of recording rules cannot be placed"
    assert _unavailable_in_readme()["openshift-user-workload"] == {**placement.unavailable, **placement.dropped_records}
    # Every recording rule is either in the user-workload PrometheusRule or listed.
    kept = {r["record"] for r in _rules(GENERATED["openshift-user-workload", "prometheusrule"]) if "record" in r}
    assert kept | set(placement.dropped_records) == {r["record"] for r in SOURCE_RULES if "record" in r}
    assert not kept & set(placement.dropped_records)


# ---------------------------------------------------------------- what each file reads


def test_user_workload_rules_read_only_exporter_series_and_their_own_records():
    rules = _rules(GENERATED["openshift-user-workload", "prometheusrule"])
    records = {r["record"] for r in rules if "record" in r}
    for rule in rules:
        names = promql_metric_names(rule["expr"])
        foreign = {n for n in names if not n.startswith("ov_") and n not in records and n not in ("up", "ALERTS")}
        assert not foreign, f"{rule.get('alert') or rule.get('record')} reads {sorted(foreign)}"
        assert "namespace" not in rule.get("labels", {}), "overwritten by the namespace enforcement"


def test_alertingrule_holds_only_alerts_on_platform_metrics_without_recording_rules():
    source_records = {r["record"] for r in SOURCE_RULES if "record" in r}
    rules = _rules(GENERATED["openshift-user-workload", "alertingrule"])
    assert rules and all("alert" in r and "record" not in r for r in rules)
    for rule in rules:
        names = promql_metric_names(rule["expr"])
        assert not names & source_records, f"{rule['alert']} still reads {sorted(names & source_records)}"
        assert not {n for n in names if n.startswith("ov_")}, f"{rule['alert']} reads exporter series"


# ---------------------------------------------------------------- same behaviour as the originals


def _unit_tests_for(alerts: set[str]) -> list[dict]:
    """The test cases of tests/alerts/ reduced to their checks of `alerts` (the
    PromQL checks of recording rules dropped: a layout may not carry them)."""
    cases = []
    for path in sorted(UNIT_TESTS.glob("*-test.yaml")):
        for case in yaml.safe_load(path.read_text())["tests"]:
            checks = [c for c in case.get("alert_rule_test", []) if c["alertname"] in alerts]
            if checks:
                cases.append(
                    {k: v for k, v in case.items() if k not in ("alert_rule_test", "promql_expr_test")}
                    | {"alert_rule_test": checks}
                )
    return cases


def test_user_workload_rules_are_the_originals_with_the_namespace_rewrite_only():
    """So the promtool unit tests of the originals (tests/test_alerts.py) speak for them."""
    originals = {
        _key(r): r
        for g in build.render_groups(build.load_groups(), build.DEFAULT_RUNBOOK_BASE, build.DEFAULT_PARALLEL_MIGRATIONS)
        for r in g["rules"]
    }
    for rule in _rules(GENERATED["openshift-user-workload", "prometheusrule"]):
        assert rule == layouts.for_user_workload(originals[_key(rule)], "test"), _key(rule)


def test_alertingrule_alerts_pass_the_unit_tests_of_the_originals(tmp_path):
    """The AlertingRule's alerts, recording rules inlined, fire and stay silent exactly
    where tests/alerts/ says the originals do."""
    groups = _groups(GENERATED["openshift-user-workload", "alertingrule"])
    alerts = {r["alert"] for g in groups for r in g["rules"] if "alert" in r}
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    cases = _unit_tests_for(alerts)
    tested = {c["alertname"] for case in cases for c in case["alert_rule_test"]}
    assert tested == alerts, f"alerts without unit tests: {sorted(alerts - tested)}"
    (tmp_path / "test.yaml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": cases}, sort_keys=False)
    )
    proc = subprocess.run(
        [require_binary("promtool"), "test", "rules", "test.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]


# ---------------------------------------------------------------- the transforms


@pytest.mark.parametrize(
    "expr, expected",
    [
        ("sum by (namespace, vm) (ov_x)", "sum by (exported_namespace, vm) (ov_x)"),
        ("ov_a * on(job, namespace) group_left(node) ov_b", "ov_a * on(job, exported_namespace) group_left(node) ov_b"),
        ('ov_a{namespace="team-a", vm=~"db.*"}', 'ov_a{exported_namespace="team-a", vm=~"db.*"}'),
        (
            'label_replace(ov_a, "namespace", "$1", "ns", "(.*)")',
            'label_replace(ov_a, "exported_namespace", "$1", "ns", "(.*)")',
        ),
        # Lists that already name both keep `namespace`: it is the exporter's, one value.
        (
            "ov_a unless on(job, namespace, exported_namespace, vm) ov_b",
            "ov_a unless on(job, namespace, exported_namespace, vm) ov_b",
        ),
        ("sum by (node) (ov_namespace_count)", "sum by (node) (ov_namespace_count)"),
    ],
)
def test_the_object_namespace_is_read_from_exported_namespace(expr, expected):
    assert layouts.object_namespace_from_exported(expr) == expected


def test_templates_read_exported_namespace_and_a_namespace_label_is_refused():
    rule = {
        "alert": "OVX",
        "expr": "ov_x",
        "labels": {"severity": "info"},
        "annotations": {
            "description": "VM {{ $labels.namespace }}/{{ $labels.vm }}",
            "summary": "{{ or $labels.exported_namespace $labels.namespace }}",
        },
    }
    out = layouts.for_user_workload(rule, "group g, rule OVX")
    assert out["annotations"] == {
        "description": "VM {{ $labels.exported_namespace }}/{{ $labels.vm }}",
        "summary": "{{ or $labels.exported_namespace $labels.namespace }}",
    }
    with pytest.raises(layouts.LayoutError, match="group g, rule OVX: label `namespace`"):
        layouts.for_user_workload({**rule, "labels": {"namespace": "x"}}, "group g, rule OVX")


def test_records_are_inlined_only_where_the_rewrite_is_equivalent():
    records = {"a:b:c": "sum by (x) (rate(m[5m]))", "d:e:f": "a:b:c * 2"}
    assert layouts.inline_records("d:e:f > 1", records) == "((sum by (x) (rate(m[5m]))) * 2) > 1"
    assert layouts.inline_records("avg_over_time(a:b:c[5m]) > 1", records) is None
    assert layouts.inline_records('a:b:c{x="1"} > 1', records) is None
    assert layouts.inline_records("a:b:c offset 5m > 1", records) is None
    assert layouts.inline_records("m > 1", records) == "m > 1"


def test_an_alert_reading_both_sides_is_unavailable_with_that_reason():
    groups = [
        {
            "name": "g",
            "rules": [
                {"alert": "OVMixed", "expr": "ov_a > on(node) kubevirt_b", "labels": {"severity": "info"}},
                {"alert": "OVPlatform", "expr": "kubevirt_b > 1", "labels": {"severity": "info"}},
                {"alert": "OVOurs", "expr": "ov_a > 1 and on() up", "labels": {"severity": "info"}},
            ],
        }
    ]
    placement = layouts.place(groups, layouts.USER_WORKLOAD)
    assert placement.unavailable == {
        "OVMixed": "reads exporter series and platform metrics (kubevirt_b) together: "
        "no Prometheus of this layout holds both"
    }
    [_, platform, ours] = groups[0]["rules"]
    assert placement.destination[id(platform)] == layouts.ALERTING_RULE
    assert placement.destination[id(ours)] == layouts.PROMETHEUS_RULE
    with pytest.raises(layouts.LayoutError, match="unknown layout 'openshift-platform'"):
        layouts.place(groups, "openshift-platform")


# ---------------------------------------------------------------- under the namespace enforcement

# The unit tests whose alerts name an object by its namespace (VMs, VMIs, networks,
# backends, migrations).
NAMESPACED_UNIT_TESTS = [
    "scheduling-test.yaml",
    "migration-readiness-test.yaml",
    "storage-net-test.yaml",
    "node-failures-test.yaml",
    "rebalance-watch-test.yaml",
]
_LABEL = re.compile(r'(?<=[{,])\s*(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"')


def _as_user_workload_sees_it(labels: dict[str, str]) -> dict[str, str]:
    """A series' labels after the user-workload scrape: the exporter's `namespace`
    becomes `exported_namespace`, `namespace` is the ServiceMonitor's."""
    out = dict(labels)
    if "exported_namespace" not in out and "namespace" in out:
        out["exported_namespace"] = out.pop("namespace")
    out["namespace"] = "ov-exporter"
    return out


def _series(text: str) -> tuple[str, dict[str, str]]:
    name, _, rest = text.partition("{")
    return name.strip(), dict(_LABEL.findall("{" + rest)) if rest else {}


def _series_text(name: str, labels: dict[str, str]) -> str:
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


@pytest.mark.parametrize("unit_tests", NAMESPACED_UNIT_TESTS)
def test_user_workload_rules_fire_on_series_labelled_as_user_workload_monitoring_labels_them(tmp_path, unit_tests):
    """The user-workload PrometheusRule as prometheus-user-workload runs it (every rule
    labelled namespace: ov-exporter by the operator), fed the unit tests' exporter
    series as its scrape labels them (object namespace in exported_namespace,
    namespace=ov-exporter; platform series dropped: that Prometheus has none), fires
    the same alerts with the same annotations, the labels moved the same way. The
    selectors' injected namespace="ov-exporter" matches every series here, so it
    changes nothing and is left out."""
    tested = {
        c["alertname"]
        for case in yaml.safe_load((UNIT_TESTS / unit_tests).read_text())["tests"]
        for c in case.get("alert_rule_test", [])
    }
    # The groups of the alerts under test and the recording rules (evaluating the rest only costs time).
    groups = [
        g
        for g in _groups(GENERATED["openshift-user-workload", "prometheusrule"])
        if any(r.get("alert") in tested or "record" in r for r in g["rules"])
    ]
    for group in groups:
        for rule in group["rules"]:
            rule["labels"] = {**rule.get("labels", {}), "namespace": "ov-exporter"}
    alerts = {r["alert"] for g in groups for r in g["rules"] if "alert" in r}
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    cases, firing = [], 0
    for case in yaml.safe_load((UNIT_TESTS / unit_tests).read_text())["tests"]:
        checks = [c for c in case.get("alert_rule_test", []) if c["alertname"] in alerts]
        if not checks:
            continue
        inputs = []
        for series in case["input_series"]:
            metric, labels = _series(series["series"])
            if metric.startswith("ov_") or metric == "up":
                inputs.append({**series, "series": _series_text(metric, _as_user_workload_sees_it(labels))})
        for check in checks:
            for expected in check.get("exp_alerts") or []:
                expected["exp_labels"] = _as_user_workload_sees_it(expected["exp_labels"])
                firing += 1
        cases.append(
            {k: v for k, v in case.items() if k not in ("alert_rule_test", "promql_expr_test")}
            | {"input_series": inputs, "alert_rule_test": checks}
        )
    assert firing, f"{unit_tests} expects no alert to fire"
    (tmp_path / "test.yaml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": cases}, sort_keys=False)
    )
    proc = subprocess.run(
        [require_binary("promtool"), "test", "rules", "test.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
