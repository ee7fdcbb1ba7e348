"""The Grafana dashboards (dashboards/): generated JSON up to date, every query parses
as PromQL and names only metrics the exporter, the recording rules or the listed
upstream components produce, units on every panel, stable uids, the thresholds the
seed gives."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ov_exporter.checks import CHECKS
from ov_exporter.render import all_families, exposition_name

from . import upstream_contract
from .conftest import ROOT, promql_metric_names, require_binary

DASHBOARDS = ROOT / "dashboards"
GENERATE = DASHBOARDS / "generate.py"
UIDS = {"ov-overview", "ov-post-rebalance", "ov-live-migration"}

import grafana_foundation_sdk  # noqa: F401,E402 - test extras; a missing install must fail, not skip
import promql_parser as pp  # noqa: E402


def _load_generate():
    spec = importlib.util.spec_from_file_location("ov_dashboards_generate", GENERATE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load_generate()


def _dashboards() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


DASHES = _dashboards()


def _panels(dash: dict) -> list[dict]:
    out = []
    for panel in dash["panels"]:
        out.append(panel)
        out.extend(panel.get("panels") or [])
    return out


def _queries(dash: dict) -> list[tuple[str, str]]:
    """(where, expr) of every panel target and annotation of a dashboard."""
    out = [
        (f"panel {p.get('title')!r}", t["expr"]) for p in _panels(dash) for t in p.get("targets") or [] if t.get("expr")
    ]
    out += [
        (f"annotation {a['name']!r}", a["expr"]) for a in dash.get("annotations", {}).get("list", []) if a.get("expr")
    ]
    return out


ALL_QUERIES = [(uid, where, expr) for uid, dash in DASHES.items() for where, expr in _queries(dash)]

SUBSTITUTIONS = [
    ("${rebalance_start}", "1767240000"),
    ("${__from:date:seconds}", "1767225600"),
    ("${__to:date:seconds}", "1767398400"),
    ("$__rate_interval", "2m"),
    ("$__interval", "1m"),
    ("$__range", "48h"),
    ("$cluster", "prod-east"),
    ("$namespace", "vms-prod"),
    ("$node", "worker-0"),
]


def _fill(expr: str) -> str:
    for var, value in SUBSTITUTIONS:
        expr = expr.replace(var, value)
    assert "$" not in re.sub(r'"[^"]*"', '""', expr), f"unsubstituted variable in {expr}"
    return expr


def _metric_names(expr: str) -> set[str]:
    return promql_metric_names(_fill(expr))


def _known_metrics() -> set[str]:
    families = {exposition_name(f) for _, f in all_families()}
    records = {
        rule["record"]
        for group in yaml.safe_load((ROOT / "alerts" / "recording.yaml").read_text())["groups"]
        for rule in group["rules"]
        if "record" in rule
    }
    return families | records | upstream_contract.series_names() | set(DASHBOARD_UPSTREAM)


# Upstream metrics only the dashboards read (ALERTS): no alert rule reads them.
DASHBOARD_UPSTREAM = yaml.safe_load((DASHBOARDS / "upstream-metrics.yaml").read_text())["metrics"]


KNOWN = _known_metrics()


def test_generate_check_passes_on_the_committed_json():
    result = subprocess.run([sys.executable, str(GENERATE), "--check"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_generate_check_fails_on_stale_json(tmp_path: Path):
    assert gen.main(["--out", str(tmp_path)]) == 0
    assert gen.main(["--check", "--out", str(tmp_path)]) == 0
    stale = tmp_path / "ov-overview.json"
    stale.write_text(stale.read_text().replace("now-6h", "now-1h"))
    assert gen.main(["--check", "--out", str(tmp_path)]) == 1
    (tmp_path / "ov-live-migration.json").unlink()
    assert gen.main(["--check", "--out", str(tmp_path)]) == 1


def test_the_three_dashboards_exist_with_stable_unique_uids():
    assert set(DASHES) == UIDS
    uids = [d["uid"] for d in DASHES.values()]
    assert len(uids) == len(set(uids))
    for stem, dash in DASHES.items():
        assert dash["uid"] == stem
        assert dash["tags"] and dash["title"]


def test_panel_ids_are_unique():
    for uid, dash in DASHES.items():
        ids = [p["id"] for p in _panels(dash)]
        assert len(ids) == len(set(ids)), uid


def test_post_rebalance_defaults_to_the_last_48_hours():
    assert DASHES["ov-post-rebalance"]["time"] == {"from": "now-48h", "to": "now"}


def test_every_dashboard_has_datasource_and_optional_cluster_variables():
    for uid, dash in DASHES.items():
        variables = {v["name"]: v for v in dash["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        cluster = variables["cluster"]
        assert cluster["includeAll"] and cluster["allValue"] == ".*", uid  # matches series without the label
        assert cluster["multi"], uid  # several clusters side by side: every panel groups by cluster
        assert "namespace" in variables, uid
    assert "node" in {v["name"] for v in DASHES["ov-overview"]["templating"]["list"]}
    assert "node" in {v["name"] for v in DASHES["ov-post-rebalance"]["templating"]["list"]}


def test_every_panel_and_variable_uses_the_datasource_variable():
    for uid, dash in DASHES.items():
        for panel in _panels(dash):
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] == "${datasource}", (uid, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "${datasource}", (uid, panel["title"])


def test_every_query_filters_on_the_cluster_variable():
    for uid, where, expr in ALL_QUERIES:
        for name_sel in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*\{[^}]*\}", expr):
            assert 'cluster=~"$cluster"' in name_sel, (uid, where, name_sel)


def test_every_panel_has_a_unit_and_a_query():
    for uid, dash in DASHES.items():
        for panel in _panels(dash):
            if panel["type"] == "row":
                continue
            assert panel["fieldConfig"]["defaults"].get("unit"), (uid, panel["title"])
            assert panel.get("targets"), (uid, panel["title"])


@pytest.mark.parametrize(("uid", "where", "expr"), ALL_QUERIES, ids=[f"{u}:{w}" for u, w, _ in ALL_QUERIES])
def test_query_parses_and_names_only_known_metrics(uid: str, where: str, expr: str):
    names = _metric_names(expr)
    assert names, f"{where}: no metric read"
    unknown = names - KNOWN
    assert not unknown, (
        f"{where}: {sorted(unknown)} is neither an exporter family, a recording rule of "
        f"alerts/recording.yaml nor listed in alerts/upstream-metrics.yaml"
    )


def test_variable_queries_parse_and_name_known_metrics():
    for uid, dash in DASHES.items():
        for var in dash["templating"]["list"]:
            if var["type"] != "query":
                continue
            match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)|query_result\((.+)\)", var["query"])
            assert match, (uid, var["name"], var["query"])
            assert _metric_names(match.group(1) or match.group(3)) <= KNOWN, (uid, var["name"])


def test_every_query_comes_from_the_queries_dict():
    used = {expr for _, _, expr in ALL_QUERIES}
    assert used <= set(gen.QUERIES.values())
    assert set(gen.QUERIES.values()) <= used, "a query of QUERIES is on no panel"


def _panel(uid: str, title_part: str) -> dict:
    matches = [p for p in _panels(DASHES[uid]) if title_part in p["title"]]
    assert matches, (uid, title_part)
    return matches[0]


def _steps(panel: dict) -> list:
    return [s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]


def test_overcommit_panels_draw_the_seed_lines():
    assert 1.8 in _steps(_panel("ov-overview", "CPU overcommit per node"))
    assert 0.9 in _steps(_panel("ov-overview", "Memory overcommit per node"))
    for title in ("CPU overcommit per node", "Memory overcommit per node"):
        style = _panel("ov-overview", title)["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"]
        assert style != "off"


def test_etcd_wal_fsync_p99_draws_the_10ms_line():
    panel = _panel("ov-post-rebalance", "etcd WAL fsync p99")
    assert panel["fieldConfig"]["defaults"]["unit"] == "s"
    assert 0.01 in _steps(panel)
    assert "etcd_disk_wal_fsync_duration_seconds" in panel["targets"][0]["expr"]


def test_post_rebalance_marks_migration_starts_and_ends():
    exprs = [a["expr"] for a in DASHES["ov-post-rebalance"]["annotations"]["list"]]
    assert any("kubevirt_vmi_migration_start_time_seconds" in e for e in exprs)
    assert any("kubevirt_vmi_migration_end_time_seconds" in e for e in exprs)


def test_before_after_table_compares_the_rebalance_start_with_the_range_end():
    panel = _panel("ov-post-rebalance", "Before / after")
    exprs = " ".join(t["expr"] for t in panel["targets"])
    assert "@ ${rebalance_start}" in exprs and "@ ${__to:date:seconds}" in exprs
    assert "${__from" not in exprs
    variables = {v["name"]: v for v in DASHES["ov-post-rebalance"]["templating"]["list"]}
    start = variables["rebalance_start"]
    assert start["hide"] == 2 and start["refresh"] == 2  # hidden, refreshed when the range changes
    assert "ov_rebalance_start_timestamp_seconds" in start["query"] and start["regex"] == gen.REBALANCE_START_REGEX


# A selector filtered on $namespace: the series' own label, or the renamed one.
NATIVE = 'namespace=~"$namespace", exported_namespace=""'
EXPORTED = 'exported_namespace!="", exported_namespace=~"$namespace"'


def test_every_namespace_filter_also_matches_exported_namespace():
    """Each selector on $namespace comes in both shapes, the renamed one copied back into
    `namespace` (the behaviour is checked against Prometheus in tests/test_dashboards_e2e.py)."""
    filtered = 0
    for uid, where, expr in ALL_QUERIES:
        selectors = re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*\{[^}]*\}", expr)
        on_namespace = [sel for sel in selectors if "$namespace" in sel]
        native = [sel for sel in on_namespace if NATIVE in sel]
        exported = [sel for sel in on_namespace if EXPORTED in sel]
        assert len(native) + len(exported) == len(on_namespace), (uid, where, on_namespace)
        assert [n.replace(NATIVE, EXPORTED) for n in native] == exported, (uid, where)
        assert expr.count('"namespace", "$1", "exported_namespace", "(.+)")') == len(exported), (uid, where)
        filtered += bool(on_namespace)
    assert filtered >= 40


def test_dashboard_upstream_metrics_are_read_by_a_dashboard_and_not_listed_twice():
    alerts_upstream = set(yaml.safe_load((ROOT / "alerts" / "upstream-metrics.yaml").read_text())["metrics"])
    families = {exposition_name(f) for _, f in all_families()}
    used = set().union(*(_metric_names(expr) for _, _, expr in ALL_QUERIES))
    for name, entry in DASHBOARD_UPSTREAM.items():
        assert entry.get("component") and entry.get("source") and entry.get("releases"), name
        assert isinstance(entry.get("labels"), list), name
        assert name in used, f"dashboards/upstream-metrics.yaml lists {name}, which no dashboard reads"
        assert name not in alerts_upstream | families, name


def test_post_rebalance_lists_the_ov_alerts_fired_in_the_window_with_runbook_links():
    panel = _panel("ov-post-rebalance", "Alerts fired in the window")
    expr = panel["targets"][0]["expr"]
    assert _metric_names(expr) == {"ALERTS"} and 'alertname=~"OV.*"' in expr and 'alertstate="firing"' in expr
    assert "max_over_time(ALERTS{" in expr and expr.endswith("[$__range]))")  # fired at any time in the range
    assert panel["targets"][0]["instant"] is True
    links = panel["fieldConfig"]["defaults"]["links"]
    assert [link["url"] for link in links] == [f"{gen.ALERT_RUNBOOK_BASE}/${{__data.fields.alertname}}.md"]


def test_post_rebalance_counts_running_vms_per_node():
    panel = _panel("ov-post-rebalance", "Running VMs per node")
    expr = panel["targets"][0]["expr"]
    assert _metric_names(expr) == {"kubevirt_vmi_info"}
    assert "count by (cluster, node)" in expr and 'node=~"$node"' in expr
    assert panel["fieldConfig"]["defaults"]["unit"] == "short"


def test_migration_annotations_use_the_start_and_end_times_as_event_times():
    annotations = {a["name"]: a for a in DASHES["ov-post-rebalance"]["annotations"]["list"]}
    for name, metric in (
        (gen.ANNOTATION_START, "kubevirt_vmi_migration_start_time_seconds"),
        (gen.ANNOTATION_END, "kubevirt_vmi_migration_end_time_seconds"),
    ):
        annotation = annotations[name]
        assert "1.4.1" in name  # the release the series need
        assert annotation["useValueForTime"] is True  # Grafana reads the value as the time, in ms
        assert _metric_names(annotation["expr"]) == {metric} and annotation["expr"].endswith("* 1000")
        # upstream labels: the VMI is `name`, the VMIM `migration_name` (no vmi / vmim)
        assert annotation["expr"].startswith("max by (cluster, namespace, name, migration_name")
        assert "{{migration_name}}" in annotation["titleFormat"] and "{{name}}" in annotation["textFormat"]


def _alert_rules() -> dict[str, dict]:
    return {
        rule["alert"]: rule
        for path in sorted((ROOT / "alerts").glob("*.yaml"))
        if path.name != "upstream-metrics.yaml"
        for group in (yaml.safe_load(path.read_text()) or {}).get("groups", [])
        for rule in group["rules"]
        if "alert" in rule
    }


ALERTED_THROUGH = {"ov_rwo_vm_disks": "ov_vm_migration_blocked"}


def test_overview_offender_tables_link_to_the_runbook_of_the_alert_on_their_metric():
    alerts = _alert_rules()
    per_object = {exposition_name(f) for spec in CHECKS for f in spec.families if f.per_object}
    tables = [
        p
        for p in _panels(DASHES["ov-overview"])
        if p["type"] == "table" and "runbook" not in p["title"] and _metric_names(p["targets"][0]["expr"]) & per_object
    ]  # offender tables
    assert len(tables) >= 7
    for panel in tables:
        links = panel["fieldConfig"]["defaults"].get("links") or []
        assert len(links) == 1, panel["title"]
        match = re.fullmatch(re.escape(gen.ALERT_RUNBOOK_BASE) + r"/(\w+)\.md", links[0]["url"])
        assert match, links[0]["url"]
        alert = match.group(1)
        # the URL alerts/build.py gives the alert, a runbook that exists, an alert reading the table's metric
        assert alerts[alert]["annotations"]["runbook_url"] == links[0]["url"]
        assert (ROOT / "alerts" / "runbooks" / f"{alert}.md").is_file()
        table_metrics = _metric_names(panel["targets"][0]["expr"])
        # RWO disks raise no alert of their own: they are one reason of OVVMMigrationBlocked.
        table_metrics |= {ALERTED_THROUGH[m] for m in table_metrics if m in ALERTED_THROUGH}
        assert table_metrics & promql_metric_names(alerts[alert]["expr"]), (panel["title"], alert)


# ---------------------------------------------------------------- deploy variants (deploy/dashboards/)

VARIANTS = ROOT / "deploy" / "dashboards"
CONSOLE_TYPES = {"graph", "singlestat", "table", "gauge", "grafana-piechart-panel", "row"}


def _kustomized(variant: str) -> list[dict]:
    kubectl = require_binary("kubectl")
    proc = subprocess.run([kubectl, "kustomize", str(VARIANTS / variant)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"kubectl kustomize deploy/dashboards/{variant} failed:\n{proc.stderr}"
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def _walk_panels(panels: list[dict]):
    for panel in panels:
        yield panel
        yield from _walk_panels(panel.get("panels") or [])


def test_generate_check_fails_on_a_stale_deploy_variant(tmp_path: Path):
    assert gen.main(["--out", str(tmp_path)]) == 0
    path = tmp_path / "deploy" / "openshift-console" / "ov-overview.yaml"
    path.write_text(path.read_text().replace("openshift-config-managed", "default"))
    assert gen.main(["--check", "--out", str(tmp_path)]) == 1
    assert gen.main(["--out", str(tmp_path)]) == 0
    assert gen.main(["--check", "--out", str(tmp_path)]) == 0
    (tmp_path / "deploy" / "grafana-operator" / "kustomization.yaml").unlink()
    assert gen.main(["--check", "--out", str(tmp_path)]) == 1


def test_the_committed_deploy_variants_are_exactly_the_generated_ones():
    generated = gen.render_deploy()
    committed = {str(p.relative_to(VARIANTS)) for p in VARIANTS.rglob("*") if p.is_file()}
    assert committed == set(generated), "stray or missing files in deploy/dashboards/"


def test_grafana_sidecar_configmaps_carry_the_dashboard_json():
    docs = _kustomized("grafana-sidecar")
    assert sorted(d["metadata"]["name"] for d in docs) == sorted(f"grafana-dashboard-{u}" for u in UIDS)
    for doc in docs:
        assert doc["kind"] == "ConfigMap" and doc["apiVersion"] == "v1"
        assert doc["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert "namespace" not in doc["metadata"]  # the user picks the sidecar's namespace with -n
        ((key, text),) = doc["data"].items()
        uid = key.removesuffix(".json")
        assert json.loads(text) == DASHES[uid] and text == (DASHBOARDS / key).read_text()


def test_grafana_operator_dashboards_carry_the_dashboard_json():
    docs = _kustomized("grafana-operator")
    assert sorted(d["metadata"]["name"] for d in docs) == sorted(UIDS)
    for doc in docs:
        assert doc["apiVersion"] == "grafana.integreatly.org/v1beta1" and doc["kind"] == "GrafanaDashboard"
        assert doc["spec"]["instanceSelector"] == {"matchLabels": {"dashboards": "grafana"}}
        assert "namespace" not in doc["metadata"]
        assert json.loads(doc["spec"]["json"]) == DASHES[doc["metadata"]["name"]]


def test_openshift_console_configmaps_hold_only_panel_types_the_console_renders():
    docs = _kustomized("openshift-console")
    assert sorted(d["metadata"]["name"] for d in docs) == sorted(f"grafana-dashboard-{u}" for u in UIDS)
    for doc in docs:
        assert doc["kind"] == "ConfigMap"
        assert doc["metadata"]["namespace"] == "openshift-config-managed"
        assert doc["metadata"]["labels"]["console.openshift.io/dashboard"] == "true"
        ((key, text),) = doc["data"].items()
        uid = key.removesuffix(".json")
        console = json.loads(text)
        assert console["uid"] == uid and console["title"] == DASHES[uid]["title"]
        expected, _ = gen.console_variant(DASHES[uid])
        assert console == expected
        panels = list(_walk_panels(console["panels"]))
        assert {p["type"] for p in panels} <= CONSOLE_TYPES, uid
        assert sum(p["type"] != "row" for p in panels) >= 5, uid
        for panel in panels:
            for target in panel.get("targets", []):
                assert "$" not in re.sub(r'"\$(namespace|node|[0-9]+)"', "", target["expr"]), (uid, target["expr"])
                pp.parse(target["expr"].replace("$namespace", "x").replace("$node", "x"))
            if panel["type"] != "row":
                assert "datasource" not in panel
        assert console["annotations"]["list"] == []
        assert {v["name"] for v in console["templating"]["list"]} <= {"namespace", "node"}


def test_console_variant_converts_each_grafana_panel_or_documents_its_omission():
    readme = (VARIANTS / "README.md").read_text()
    for uid, dash in DASHES.items():
        console, omitted = gen.console_variant(dash)
        kept = {p["title"] for p in _walk_panels(console["panels"])}
        for panel in _panels(dash):
            if panel["title"] not in kept:
                assert any(repr(panel["title"]) in item for item in omitted), (uid, panel["title"])
        for item in omitted:
            assert item in readme, item
        converted = {p["title"]: p["type"] for p in _walk_panels(console["panels"])}
        for panel in _panels(dash):
            if panel["type"] == "timeseries" and panel["title"] in converted:
                assert converted[panel["title"]] == "graph"
    # the before/after table: the console latches the rebalance start instead of `@ ${rebalance_start}`
    console, omitted = gen.console_variant(DASHES["ov-post-rebalance"])
    assert not any("Before / after" in item for item in omitted)
    table = next(p for p in console["panels"] if p["title"].startswith("Before / after"))
    exprs = [t["expr"] for t in table["targets"]]
    assert len(exprs) == 6 and all("@" not in e and "${" not in e for e in exprs)
    assert (
        sum("unless on (cluster) max by (cluster) (ov_rebalance_start_timestamp_seconds" in e for e in exprs) == 4
    )  # 2 before, 2 change
    assert any(p["type"] == "singlestat" for p in _walk_panels(console["panels"]))


def test_console_graphs_keep_the_seed_threshold_lines():
    console, _ = gen.console_variant(DASHES["ov-overview"])
    graph = next(p for p in console["panels"] if p["title"].startswith("CPU overcommit per node"))
    assert graph["type"] == "graph" and [t["value"] for t in graph["thresholds"]] == [1.8]
    assert graph["yaxes"][0]["format"] == "none" and graph["thresholds"][0]["lineColor"] == "red"
    # a status stat keeps its colours: red below 1, green from 1
    stat = next(p for p in console["panels"] if p["title"] == "Since last evaluation")
    assert stat["type"] == "singlestat" and stat["thresholds"] == "300,900"
    assert stat["colors"] == ["green", "orange", "red"] and stat["format"] == "s"
    table = next(p for p in console["panels"] if p["title"] == "Checks up")  # one value per check: a table
    assert table["type"] == "table" and table["targets"][0]["instant"] is True
    rebalance, _ = gen.console_variant(DASHES["ov-post-rebalance"])
    types = {p["title"]: p["type"] for p in rebalance["panels"]}
    assert types["Migrations succeeded"] == types["Migrations failed"] == "singlestat"  # count(...) or vector(0)


def test_every_per_object_family_has_a_panel():
    """Offenders of every check are visible somewhere (a table over the per-object family)."""
    used = set()
    for dash in DASHES.values():
        for panel in _panels(dash):
            for target in panel.get("targets", []):
                used |= _metric_names(target["expr"])
    missing = sorted(
        exposition_name(f) for spec in CHECKS for f in spec.families if f.per_object and exposition_name(f) not in used
    )
    assert not missing, f"per-object families without a dashboard panel: {missing}"
