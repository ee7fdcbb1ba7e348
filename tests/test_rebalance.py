"""`ov-exporter rebalance-report` and the post-rebalance / live-migration dashboard
queries against a real Prometheus holding a synthetic 48-hour rebalance
(tests/backfill.py), backfilled with promtool in a temporary directory:

1. `promtool tsdb create-blocks-from openmetrics` for the raw series (one file per
   2-hour block);
2. `promtool tsdb create-blocks-from rules` for alerts/recording.yaml, one pass per
   dependency level (a rule that reads another rule needs that rule's blocks loaded,
   so Prometheus restarts between levels).
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest
import yaml
from ov_exporter import rebalance as rb

from . import backfill as bf
from . import upstream_contract
from .conftest import ROOT, Prometheus, free_port, http_get, promql_metric_names, require_binary, wait_for

END = bf.END
T0 = END - bf.HOURS * 3600
START = bf.start_of(END)
TOLERANCE = 0.005  # utilisation, absolute (0.5 point): the 2-point sine cancels over the 1-hour averages
RECORDING = ROOT / "alerts" / "recording.yaml"


# ------------------------------------------------------------------------ the backfilled Prometheus
def _recording_levels(wanted: set[str]) -> list[list[dict]]:
    """The rules of alerts/recording.yaml that `wanted` reads (directly or through other
    rules), grouped so that a rule only reads rules of earlier groups."""
    rules = {
        r["record"]: r for g in yaml.safe_load(RECORDING.read_text())["groups"] for r in g["rules"] if "record" in r
    }
    deps = {name: promql_metric_names(rule["expr"]) & set(rules) for name, rule in rules.items()}
    level: dict[str, int] = {}

    def visit(name: str) -> int:
        if name not in level:
            level[name] = 1 + max((visit(d) for d in deps[name]), default=-1)
        return level[name]

    for name in wanted & set(rules):
        visit(name)
    return [[rules[r] for r in rules if level.get(r) == n] for n in range(max(level.values(), default=-1) + 1)]


# Recording rules are backfilled around the rebalance and before the end only:
# promtool writes a block per rule and 2 hours, so 48 hours of every rule take too long.
RULE_WINDOWS = [(START - 7200, START + 7200), (END - 7200, END)]


def _start(tmp_path: Path, data: Path) -> Prometheus:
    prom = Prometheus(tmp_path, [], job="none", data_dir=data)
    try:
        wait_for(lambda: http_get(f"{prom.url}/-/ready")[0] == 200, "prometheus /-/ready", logs=[prom.log])
    except BaseException:
        prom.stop()
        raise
    return prom


@pytest.fixture(scope="module")
def prom_url(tmp_path_factory):
    promtool = require_binary("promtool")
    tmp = tmp_path_factory.mktemp("rebalance")
    began = time.monotonic()
    data = tmp / "data"
    paths = bf.write_files(tmp / "om", END, _writer())
    for pair in (paths[i : i + 2] for i in range(0, len(paths), 2)):  # two cores
        procs = [
            subprocess.Popen(
                [promtool, "tsdb", "create-blocks-from", "openmetrics", "-q", str(p), str(data)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for p in pair
        ]
        for p, proc in zip(pair, procs):
            output = proc.communicate(timeout=60)[0]
            assert proc.returncode == 0, f"{p.name}: {output.decode()[-2000:]}"
    prom = _start(tmp, data)
    try:
        wanted = {m for *_, expr, _ in QUERIES for m in promql_metric_names(expr)}
        wanted.add("cluster:ov_post_rebalance_window:active")  # the exporter's window: read by the window panel
        for n, rules in enumerate(_recording_levels(wanted)):
            rule_file = tmp / f"rules-{n}.yaml"
            rule_file.write_text(yaml.safe_dump({"groups": [{"name": f"level-{n}", "rules": rules}]}))
            out = tmp / f"rule-blocks-{n}"
            for lo, hi in RULE_WINDOWS:
                result = subprocess.run(
                    [
                        promtool,
                        "tsdb",
                        "create-blocks-from",
                        "rules",
                        "-q",
                        f"--url={prom.url}",
                        f"--start={lo}",
                        f"--end={hi}",
                        "--eval-interval=60s",
                        f"--output-dir={out}",
                        str(rule_file),
                    ],
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                assert result.returncode == 0, result.stderr
            prom.stop()
            for block in out.iterdir():
                shutil.move(str(block), data / block.name)
            prom = _start(tmp, data)
        took = time.monotonic() - began
        assert took < 20, f"building the backfilled Prometheus took {took:.1f}s"
        yield prom.url
    finally:
        prom.stop()


def query(url: str, expr: str, at: float = END) -> list[dict]:
    status, body = http_get(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expr, "time": at}))
    assert status == 200, f"{expr}: {body[:500]!r}"
    return json.loads(body)["data"]["result"]


def query_range(url: str, expr: str, start: float, end: float, step: int = 300) -> list[dict]:
    params = {"query": expr, "start": start, "end": end, "step": step}
    status, body = http_get(f"{url}/api/v1/query_range?" + urllib.parse.urlencode(params))
    assert status == 200, f"{expr}: {body[:500]!r}"
    return json.loads(body)["data"]["result"]


# ------------------------------------------------------------------------ units
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-03T00:00:00Z", END),
        ("2026-01-03T01:00:00+01:00", END),
        (str(END), END),
        ("now", END + 100),
        ("48h", END + 100 - 172800),
        ("1h30m", END + 100 - 5400),
        ("90s", END + 10),
    ],
)
def test_times_are_rfc3339_unix_or_relative(text, expected):
    assert rb.parse_time(text, END + 100, "--at") == pytest.approx(expected)


@pytest.mark.parametrize("text", ["yesterday", "2026-01-03T00:00:00", "48x", ""])
def test_bad_times_name_the_flag(text):
    with pytest.raises(rb.RebalanceError, match="--since"):
        rb.parse_time(text, END, "--since")


def test_expressions_parse_and_read_node_exporter():
    exprs = rb.before_after("cpu", "", "", "1", "2") | rb.before_after("memory", "", "", "1", "2")
    cpu = promql_metric_names(rb.before_after("cpu", "", "", "1", "2")["change"])
    assert {"node_cpu_seconds_total", "kubevirt_vmi_info", "ov_node_physical_cpu_cores"} == cpu
    mem = promql_metric_names(rb.before_after("memory", "", "", "1", "2")["now"])
    assert {"node_memory_MemAvailable_bytes", "node_memory_MemTotal_bytes"} <= mem
    assert all("@ 1" in e and "@ 2" in e for e in exprs.values())


# ------------------------------------------------------------------------ the report
def _check_nodes(nodes: list[dict]) -> None:
    assert [n["node"] for n in nodes] == bf.NODES, "master-0 runs no VM and must not be reported"
    for n in nodes:
        name = n["node"]
        expected = {
            "cpu_before": bf.CPU_BEFORE[name],
            "cpu_now": bf.CPU_AFTER[name],
            "cpu_change": bf.CPU_AFTER[name] - bf.CPU_BEFORE[name],
            "memory_before": bf.MEM_BEFORE[name],
            "memory_now": bf.MEM_AFTER[name],
            "memory_change": bf.MEM_AFTER[name] - bf.MEM_BEFORE[name],
        }
        for key, value in expected.items():
            assert n[key] == pytest.approx(value, abs=TOLERANCE), (name, key)


def _spread(levels: dict[str, float]) -> float:
    return max(levels.values()) - min(levels.values())


def test_report_function_reproduces_the_planted_rebalance(prom_url):
    report = rb.rebalance_report(prom_url, at=END)
    assert report.start == START and report.start_source == "exporter"  # ov_rebalance_start_timestamp_seconds
    _check_nodes([vars(n) for n in report.nodes])
    assert report.spread["cpu_before"] == pytest.approx(_spread(bf.CPU_BEFORE), abs=TOLERANCE)
    assert report.spread["cpu_now"] == pytest.approx(_spread(bf.CPU_AFTER), abs=TOLERANCE)
    assert report.spread["memory_before"] == pytest.approx(_spread(bf.MEM_BEFORE), abs=TOLERANCE)
    assert report.spread["memory_now"] == pytest.approx(_spread(bf.MEM_AFTER), abs=TOLERANCE)
    assert (report.succeeded, report.failed, report.running) == (bf.SUCCEEDED, bf.FAILED, 0)
    assert [m.vmim for m in report.migrations if m.result == "failed"] == ["vm-e-mig-1"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ov_exporter", "rebalance-report", *args], capture_output=True, text=True, timeout=60
    )


def test_json_output(prom_url):
    result = run("--prometheus-url", prom_url, "--at", "2026-01-03T00:00:00Z", "--output", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["start"] == rb.rfc3339(START) and doc["start_source"] == "exporter"
    _check_nodes(doc["nodes"])
    assert doc["migrations"]["succeeded"] == bf.SUCCEEDED and doc["migrations"]["failed"] == bf.FAILED
    assert doc["spread"]["cpu_change"] == pytest.approx(
        _spread(bf.CPU_AFTER) - _spread(bf.CPU_BEFORE), abs=2 * TOLERANCE
    )


def _parse_rows(lines: list[str]) -> list[dict]:
    """Rows of the table or Markdown output back into numbers (0-1)."""
    keys = ["cpu_before", "cpu_now", "cpu_change", "memory_before", "memory_now", "memory_change"]
    rows = []
    for line in lines:
        cells = re.findall(r"([+-]?\d+\.\d) (?:%|pts)", line)
        if len(cells) == 6:
            node = line.strip("| ").split("  ")[0].split(" |")[0].strip()
            rows.append({"node": node, **{k: float(c) / 100 for k, c in zip(keys, cells)}})
    return rows


@pytest.mark.parametrize("output", ["table", "markdown"])
def test_table_and_markdown_outputs(prom_url, output):
    result = run("--prometheus-url", prom_url, "--at", str(END), "--output", output)
    assert result.returncode == 0, result.stderr
    rows = _parse_rows(result.stdout.splitlines())
    nodes = [r for r in rows if r["node"].startswith("worker")]
    # one decimal place in percent: 0.05 point of rounding on top of the tolerance
    for r in nodes:
        for key in ("cpu_before", "cpu_now", "memory_before", "memory_now"):
            r[key] = round(r[key], 3)
    _check_nodes(nodes)
    spread = [r for r in rows if r["node"].startswith("spread")]
    assert spread and spread[0]["cpu_before"] == pytest.approx(_spread(bf.CPU_BEFORE), abs=TOLERANCE)
    assert f"{bf.SUCCEEDED} succeeded, {bf.FAILED} failed" in result.stdout
    assert "vm-e-mig-1" in result.stdout
    if output == "markdown":
        assert result.stdout.startswith("### Rebalance report")
        assert "|---|---:|" in result.stdout


def test_since_overrides_the_detected_start(prom_url):
    result = run("--prometheus-url", prom_url, "--at", str(END), "--since", "12h", "--output", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["start_timestamp"] == END - 12 * 3600 and doc["start_source"] == "--since"
    for n in doc["nodes"]:  # 12 h ago the rebalance was long over: before = after
        assert n["cpu_before"] == pytest.approx(bf.CPU_AFTER[n["node"]], abs=TOLERANCE)
        assert n["cpu_change"] == pytest.approx(0, abs=2 * TOLERANCE)
    assert doc["migrations"]["succeeded"] == 0 and doc["migrations"]["failed"] == 0
    rfc = run("--prometheus-url", prom_url, "--at", str(END), "--since", rb.rfc3339(START - 3600), "--output", "json")
    assert json.loads(rfc.stdout)["start_timestamp"] == START - 3600
    assert json.loads(rfc.stdout)["migrations"]["succeeded"] == bf.SUCCEEDED


def test_without_the_exporter_start_the_earliest_upstream_migration_start_is_used(prom_url):
    """Before the exporter publishes the wave's start, the report finds it in
    kubevirt_vmi_migration_start_time_seconds (labels name, migration_name)."""
    at = START + bf.EXPORTER_LAG - 60
    report = rb.rebalance_report(prom_url, at=at)
    assert report.start == START and report.start_source == "detected"
    assert [(m.vmi, m.vmim, m.result) for m in report.migrations] == [("vm-a", "vm-a-mig-1", "running")]
    done = rb.rebalance_report(prom_url, at=END, since=START - 60)
    planted = {(m.vmi, m.vmim, "succeeded" if m.ok else "failed") for m in bf.MIGRATIONS}
    assert {(m.vmi, m.vmim, m.result) for m in done.migrations} == planted
    assert {m.vmim: m.start for m in done.migrations} == {m.vmim: START + m.start for m in bf.MIGRATIONS}


def test_no_migration_in_the_range_is_a_clear_error(prom_url):
    result = run("--prometheus-url", prom_url, "--at", str(START - 3600))
    assert result.returncode == 2
    assert "no live migration started" in result.stderr and prom_url in result.stderr
    assert "--since" in result.stderr and not result.stdout


def test_prometheus_down_exits_2_naming_the_url():
    url = f"http://127.0.0.1:{free_port()}"
    result = run("--prometheus-url", url, "--at", str(END))
    assert result.returncode == 2
    assert url in result.stderr and "unreachable" in result.stderr


def test_a_failing_query_names_the_query(prom_url):
    import asyncio

    async def bad():
        async with rb.PrometheusClient(prom_url) as client:
            await client.vector("sum(", END)

    with pytest.raises(rb.PrometheusError, match=r"HTTP 400.*query 'sum\('"):
        asyncio.run(bad())


# ------------------------------------------------------------------------ dashboard queries
DASHBOARDS = ROOT / "dashboards"
UPSTREAM = upstream_contract.series_names() | set(
    yaml.safe_load((DASHBOARDS / "upstream-metrics.yaml").read_text())["metrics"]
)
RECORDS = {
    r["record"]: r["expr"] for g in yaml.safe_load(RECORDING.read_text())["groups"] for r in g["rules"] if "record" in r
}


@functools.lru_cache(maxsize=1)
def _gen():
    sys.path.insert(0, str(DASHBOARDS))
    try:
        import generate  # dashboards/generate.py
    finally:
        sys.path.pop(0)
    return generate


@functools.lru_cache(maxsize=1)
def _writer() -> bf.Writer:
    return bf.generate(END)


PLANTED = {key.split("{")[0] for _, series in _writer().families for key, _ in series}
FILL = [
    ("${rebalance_start}", str(START)),
    ("${__from:date:seconds}", str(START)),
    ("${__to:date:seconds}", str(END)),
    ("$__rate_interval", "5m"),
    ("$__interval", "5m"),
    ("$__range", "48h"),
    ('"$cluster"', '".*"'),
    ('"$namespace"', '".*"'),
    ('"$node"', '".*"'),
]


def _fill(expr: str) -> str:
    for var, value in FILL:
        expr = expr.replace(var, value)
    return expr


def _leaves(names: set[str]) -> set[str]:
    out = set()
    for name in names:
        out |= _leaves(promql_metric_names(RECORDS[name])) if name in RECORDS else {name}
    return out


def _dashboard_queries() -> list[tuple[str, str, str, bool]]:
    """(dashboard, where, expr, instant) of the post-rebalance and live-migration queries
    that read an upstream metric (directly or through recording rules)."""
    out = []
    for uid in ("ov-post-rebalance", "ov-live-migration"):
        dash = json.loads((DASHBOARDS / f"{uid}.json").read_text())
        panels = [p for top in dash["panels"] for p in [top, *(top.get("panels") or [])]]
        items = [
            (f"panel {p['title']!r}", t["expr"], bool(t.get("instant")))
            for p in panels
            for t in p.get("targets") or []
            if t.get("expr")
        ]
        annotations = dash.get("annotations", {}).get("list", [])
        items += [(f"annotation {a['name']!r}", a["expr"], False) for a in annotations if a.get("expr")]
        console, _ = _gen().console_variant(dash)
        items += [
            (f"console panel {p['title']!r}", t["expr"], bool(t.get("instant")))
            for p in console["panels"]
            for t in p.get("targets") or []
            if "[3d:5m]" in t["expr"]
        ]
        for where, expr, instant in items:
            if _leaves(promql_metric_names(_fill(expr))) & UPSTREAM:
                out.append((uid, where, _fill(expr), instant))
    return out


QUERIES = _dashboard_queries()


def test_the_backfill_plants_what_the_rebalance_dashboards_read():
    needed = {m for *_, e, _ in QUERIES for m in _leaves(promql_metric_names(e))}
    assert {
        "node_cpu_seconds_total",
        "node_memory_MemAvailable_bytes",
        "kubevirt_vmi_migration_start_time_seconds",
        "kubevirt_vmi_info",
        "etcd_disk_wal_fsync_duration_seconds_bucket",
        "kubevirt_vmi_migration_data_remaining_bytes",
    } <= needed & PLANTED
    assert len([q for q in QUERIES if _leaves(promql_metric_names(q[2])) <= PLANTED]) >= 20


@pytest.mark.parametrize(("uid", "where", "expr", "instant"), QUERIES, ids=[f"{u}:{w}" for u, w, _, _ in QUERIES])
def test_dashboard_query_runs_on_the_backfill(prom_url, uid, where, expr, instant):
    """Instant panels at the end of the backfill, the others over its range; a query
    whose every input the backfill plants must return data."""
    if instant:
        result = query(prom_url, expr, END)
    else:
        result = query_range(prom_url, expr, T0 + 3600, END)
    if _leaves(promql_metric_names(expr)) <= PLANTED:
        assert result, f"{uid} {where}: no data for {expr}"


def _by(result: list[dict], label: str) -> dict[str, float]:
    return {r["metric"].get(label, ""): float(r["value"][1]) for r in result}


def _q(qid: str) -> str:
    return _fill(_gen().QUERIES[qid])


def test_dashboard_before_after_table_agrees_with_the_report(prom_url):
    report = {n.node: n for n in rb.rebalance_report(prom_url, at=END, since=START).nodes}
    for qid, attr in (
        ("cpu_util_before", "cpu_before"),
        ("cpu_util_now", "cpu_now"),
        ("cpu_util_change", "cpu_change"),
        ("mem_util_before", "memory_before"),
        ("mem_util_now", "memory_now"),
        ("mem_util_change", "memory_change"),
    ):
        values = _by(query(prom_url, _q(qid), END), "node")
        assert set(values) == set(bf.NODES), qid
        for node, value in values.items():
            assert value == pytest.approx(getattr(report[node], attr), abs=1e-9), (qid, node)


def test_dashboard_etcd_p99_against_10ms(prom_url):
    wal = _by(query(prom_url, _q("etcd_wal_fsync_p99"), END), "instance")
    assert set(wal) == set(bf.ETCD)
    assert wal["etcd-2"] > 0.01 > max(wal["etcd-0"], wal["etcd-1"])
    assert wal["etcd-2"] == pytest.approx(0.012, abs=1e-6)
    commit = _by(query(prom_url, _q("etcd_backend_commit_p99"), END), "instance")
    assert max(commit.values()) < 0.025


def test_dashboard_spread_migrations_and_window(prom_url):
    spread = float(query(prom_url, _q("cpu_spread"), END)[0]["value"][1])
    assert spread == pytest.approx(_spread(bf.CPU_AFTER), abs=2 * bf.NOISE + 0.01)
    before = query(prom_url, _q("cpu_spread_avg1h"), START)
    assert float(before[0]["value"][1]) == pytest.approx(_spread(bf.CPU_BEFORE), abs=0.01)
    assert float(query(prom_url, _q("migrations_succeeded"), END)[0]["value"][1]) == bf.SUCCEEDED
    assert float(query(prom_url, _q("migrations_failed"), END)[0]["value"][1]) == bf.FAILED
    repeated = query(prom_url, _q("vm_migrated_repeatedly"), END)
    assert [(r["metric"]["vmi"], float(r["value"][1])) for r in repeated] == list(bf.REPEATED.items())
    assert float(query(prom_url, _q("window_active"), END)[0]["value"][1]) == 1
    in_flight = query_range(prom_url, _q("migrations_in_flight"), START, START + 3600, 60)
    planted = max(sum(m.start <= x < m.start + m.duration for m in bf.MIGRATIONS) for x in range(0, 3600, 60))
    assert planted > 1 and max(float(v) for _, v in in_flight[0]["values"]) == planted


def test_token_file_is_sent_as_bearer_token(prom_url, tmp_path):
    """A proxy in front of the backfilled Prometheus that wants `Bearer s3cret`, as the
    OpenShift Thanos querier wants the service account's token."""
    import asyncio

    import aiohttp
    from aiohttp import web

    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        if request.headers.get("Authorization") != "Bearer s3cret":
            return web.Response(status=401, text="Unauthorized")
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{prom_url}{request.path}", params=request.query) as resp:
                return web.Response(status=resp.status, body=await resp.read(), content_type="application/json")

    token = tmp_path / "token"
    token.write_text("s3cret\n")

    async def main():
        app = web.Application()
        app.router.add_get("/api/v1/query", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        url = f"http://127.0.0.1:{port}"
        try:
            async with rb.PrometheusClient(url, token_file=str(token)) as client:
                report = await rb.build_report(client, END)
            async with rb.PrometheusClient(url) as client:
                with pytest.raises(rb.PrometheusError, match=r"HTTP 401: Unauthorized"):
                    await rb.build_report(client, END)
        finally:
            await runner.cleanup()
        return report

    report = asyncio.run(main())
    assert [n.node for n in report.nodes] == bf.NODES
    assert "Bearer s3cret" in seen and "" in seen


def test_missing_token_or_ca_file_exits_2_naming_the_file(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    for flag in ("--prometheus-token-file", "--prometheus-ca-file"):
        missing = tmp_path / f"missing{flag}"
        result = run("--prometheus-url", url, flag, str(missing))
        assert result.returncode == 2 and flag in result.stderr and str(missing) in result.stderr, result.stderr


def test_migration_annotations_mark_every_planted_migration(prom_url):
    """Grafana runs the annotation queries over the range and reads each value as an
    event time: every planted start and end must be among them, labelled by VMIM."""
    gen = _gen()
    for qid, expected in (
        ("annot_migration_start", {m.vmim: START + m.start for m in bf.MIGRATIONS}),
        ("annot_migration_end", {m.vmim: START + m.start + m.duration for m in bf.MIGRATIONS}),
    ):
        seen: dict[str, set[float]] = {}
        for series in query_range(prom_url, _q(qid), START - 600, END, 60):
            assert series["metric"]["name"] == series["metric"]["migration_name"].rsplit("-mig-", 1)[0]
            seen.setdefault(series["metric"]["migration_name"], set()).update(
                float(v) / 1000 for _, v in series["values"]
            )
        assert seen == {vmim: {t} for vmim, t in expected.items()}, qid
    assert gen.ANNOTATION_OPTIONS[gen.ANNOTATION_END]["titleFormat"].count("{{") == 2


def _grafana_variable(url: str, frm: float, to: float) -> str:
    """$rebalance_start as Grafana computes it: query_result() at the range end, its
    `{labels} value timestamp_ms` text, the variable's regex."""
    gen = _gen()
    expr = re.fullmatch(r"query_result\((.+)\)", gen.REBALANCE_START_QUERY).group(1)
    expr = (
        expr.replace("$__range", f"{int(to - frm)}s")
        .replace("${__from:date:seconds}", str(int(frm)))
        .replace('"$cluster"', '".*"')
    )
    texts = []
    for r in query(url, expr, to):
        labels = ",".join(f'{k}="{v}"' for k, v in r["metric"].items())
        texts.append(f"{{{labels}}} {r['value'][1]} {int(r['value'][0] * 1000)}")
    pattern = re.fullmatch(r"/(.*)/", gen.REBALANCE_START_REGEX).group(1)
    values = [m.group(1) for t in texts if (m := re.search(pattern, t))]
    assert len(values) == 1, texts
    return values[0]


def _before_after(url: str, frm: float, to: float) -> dict[str, dict[str, float]]:
    start = _grafana_variable(url, frm, to)
    out = {}
    for qid in (
        "cpu_util_before",
        "cpu_util_now",
        "cpu_util_change",
        "mem_util_before",
        "mem_util_now",
        "mem_util_change",
    ):
        expr = _gen().QUERIES[qid].replace("${rebalance_start}", start).replace("${__to:date:seconds}", str(to))
        out[qid] = _by(query(url, _fill(expr), to), "node")
    return out


def test_before_after_is_anchored_at_the_rebalance_start_whatever_the_range(prom_url):
    assert float(_grafana_variable(prom_url, START - 3 * 3600, END)) == START
    wide = _before_after(prom_url, START - 3 * 3600, END)
    narrow = _before_after(prom_url, END - 6 * 3600, END)  # the range starts long after the rebalance
    assert wide == narrow
    report = {n.node: n for n in rb.rebalance_report(prom_url, at=END).nodes}
    for node in bf.NODES:
        assert wide["cpu_util_before"][node] == pytest.approx(report[node].cpu_before, abs=1e-9)
        assert wide["cpu_util_before"][node] == pytest.approx(bf.CPU_BEFORE[node], abs=TOLERANCE)
        assert wide["mem_util_change"][node] == pytest.approx(bf.MEM_AFTER[node] - bf.MEM_BEFORE[node], abs=TOLERANCE)
    # no wave in view: the range start is the anchor, as before
    early = START - 3600
    assert float(_grafana_variable(prom_url, early - 6 * 3600, early)) == early - 6 * 3600


def test_console_before_after_latches_the_rebalance_start(prom_url):
    """The console variant has no variables: its before is the utilisation just before
    the exporter saw the wave (1-hour average of the recording rules)."""
    gen = _gen()
    for kind, before, after in (("cpu", bf.CPU_BEFORE, bf.CPU_AFTER), ("memory", bf.MEM_BEFORE, bf.MEM_AFTER)):
        exprs = {part: _fill(gen._console_expr(e, "48h")) for part, e in gen.CONSOLE_BEFORE_AFTER[kind].items()}
        values = {part: _by(query(prom_url, e, END), "node") for part, e in exprs.items()}
        assert set(values["before"]) == set(bf.NODES), kind
        for node in bf.NODES:
            assert values["before"][node] == pytest.approx(before[node], abs=2 * TOLERANCE), (kind, node)
            assert values["now"][node] == pytest.approx(after[node], abs=2 * TOLERANCE), (kind, node)


def test_vm_side_impact_panels_show_the_planted_impact(prom_url):
    delay = _by(query(prom_url, _q("vcpu_delay_top"), END), "name")
    on_worker_3 = {vmi for vmi, spans in bf._vmi_node_intervals(END).items() if spans[-1][0] == "worker-3"}
    assert on_worker_3 and {v for v, d in delay.items() if d > 0.05} == on_worker_3
    assert all(d == pytest.approx(0.10 if v in on_worker_3 else 0.01, abs=1e-6) for v, d in delay.items())
    swap = _by(query(prom_url, _q("swap_in_top"), END), "name")
    assert len(swap) == 10 and all(v == pytest.approx(2e6 / 60, rel=1e-6) for v in swap.values())
    psi = _by(query(prom_url, _q("psi_cpu"), END), "node")
    assert set(psi) == set(bf.NODES)  # master-0 runs no VM
    down = query(prom_url, _q("vms_down"), END)
    assert [(r["metric"]["name"], r["metric"]["status"], float(r["value"][1]) / 1000) for r in down] == [
        (bf.DOWN_VM[0], "stopped or paused", START + bf.DOWN_VM[1])
    ]
    latest = _by(query(prom_url, _q("migration_duration_latest"), END), "migration_name")
    assert latest == {
        m.vmim: m.duration
        for m in bf.MIGRATIONS
        if m.ok and m == max((x for x in bf.MIGRATIONS if x.vmi == m.vmi), key=lambda x: x.start)
    }
    p50 = float(query(prom_url, _q("migration_duration_p50"), END)[0]["value"][1])
    assert 300 <= p50 <= 600  # succeeded durations 240-900 s, bucket-interpolated


# ---------------------------------------------------------------- fleets
class _Answers:
    """A stand-in client answering every query with the same series."""

    url = "http://prometheus.example"

    def __init__(self, metrics: list[dict]) -> None:
        self.metrics = metrics

    async def vector(self, expr: str, at: float) -> list[dict]:
        return [{"metric": m, "value": [at, "1"]} for m in self.metrics]


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [
        ([{}], [None]),  # one cluster's own Prometheus: no label
        ([{"cluster": "b"}, {"cluster": "a"}], ["a", "b"]),  # Thanos / federation
        ([{"cluster": "a"}, {}], ["", "a"]),  # unlabelled series beside a cluster: cluster=""
    ],
)
def test_clusters_are_found_in_the_data(metrics, expected):
    import asyncio

    assert asyncio.run(rb.clusters(_Answers(metrics), END)) == expected


def test_an_unknown_cluster_names_the_ones_seen():
    import asyncio

    with pytest.raises(rb.RebalanceError, match=r"cluster='c'.*clusters seen: 'a', 'b'"):
        asyncio.run(rb.build_fleet_report(_Answers([{"cluster": "a"}, {"cluster": "b"}]), END, cluster="c"))


def test_each_query_of_a_cluster_selects_it():
    queries = rb.report_queries(START, END, 3600, cluster="a")
    assert all('cluster="a"' in q for q in queries.values()), queries
    assert all("cluster=" not in q for q in rb.report_queries(START, END, 3600).values())
