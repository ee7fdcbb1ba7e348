"""`ov-exporter rebalance-report`: per-node CPU and memory utilisation at the start of
a rebalance against now, from Prometheus, for a change ticket.

The PromQL lives here, in functions that the post-rebalance dashboard of
dashboards/generate.py also calls, so that Grafana's before/after table and this
report read the same expressions.

Node label. node_exporter has no `node` label; the node is in `instance`. On
OpenShift (and kube-prometheus) the node-exporter ServiceMonitor relabels `instance`
from `__meta_kubernetes_pod_node_name`, i.e. the Node object's name, so stripping an
optional `:port` gives exactly the `node` that `kubevirt_vmi_info` and the exporter's
`ov_*` families carry (the same rule as `node:ov_vm_node_cpu_utilisation:rate5m` in
alerts/recording.yaml). `node_uname_info{nodename}` is the kernel host name, which may
differ from the Node name (short name against FQDN), and kube-state-metrics'
`kube_node_info` is scraped from the kube-state-metrics pod, so neither joins more
reliably. Only the nodes that run VMs are reported: a node is a VM node when it runs a
VMI (`kubevirt_vmi_info{node}`) or the exporter reports it
(`ov_node_physical_cpu_cores`) at the start or at the end; the join `and on(node)`
drops the control plane, and a setup whose `instance` is an IP address shows no node at
all (the report says so instead of guessing).

Fleets. Where series carry a `cluster` label (Thanos Querier, ACM observability or a
federating Prometheus in front of one Prometheus per cluster), every query keeps it
and the report is made for each cluster on its own: `cluster` restricts it to one,
otherwise each cluster found gets its own section. Without the label it is one report,
as for a single cluster's Prometheus.

Utilisation is averaged over AVG_WINDOW ending at each instant: 1 − the idle share of
`rate(node_cpu_seconds_total{mode="idle"}[1h])`, and
1 − avg(`node_memory_MemAvailable_bytes`) / avg(`node_memory_MemTotal_bytes`).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from .errors import OvError
from .promclient import PrometheusClient, PrometheusError

AVG_WINDOW = "1h"  # utilisation is averaged over this window before each instant
LOOKBACK_SECONDS = 172800  # migration starts are searched for in the 48 h before --at (the longest watch window)
NODE_FROM_INSTANCE = '"node", "$1", "instance", "([^:]+)(:[0-9]+)?"'


class RebalanceError(OvError):
    """Prometheus unreachable, a query failed, or nothing to report (exit code 2)."""


# ------------------------------------------------------------------------ PromQL
def _m(*parts: str) -> str:
    return ", ".join(p for p in parts if p)


def _at(at: str | None) -> str:
    return f" @ {at}" if at is not None else ""


def cpu_utilisation(matchers: str = "", at: str | None = None, window: str = AVG_WINDOW) -> str:
    """Per-node CPU utilisation (0-1) averaged over `window` ending at `at`."""
    idle = _m(matchers, 'mode="idle"')
    sel = f"node_cpu_seconds_total{{{idle}}}[{window}]{_at(at)}"
    return f"max by (cluster, node) (label_replace(1 - avg without (cpu, mode) (rate({sel})), {NODE_FROM_INSTANCE}))"


def memory_utilisation(matchers: str = "", at: str | None = None, window: str = AVG_WINDOW) -> str:
    """Per-node memory utilisation (0-1): 1 - MemAvailable / MemTotal, averaged over `window`."""
    avail = f"avg_over_time(node_memory_MemAvailable_bytes{{{matchers}}}[{window}]{_at(at)})"
    total = f"avg_over_time(node_memory_MemTotal_bytes{{{matchers}}}[{window}]{_at(at)})"
    return f"max by (cluster, node) (label_replace(1 - {avail} / {total}, {NODE_FROM_INSTANCE}))"


def vm_nodes(matchers: str = "", ats: tuple[str, ...] = ()) -> str:
    """Nodes running a VMI or reported by the exporter at any of the instants `ats`."""
    parts = []
    on_node = _m(matchers, 'node!=""')
    for at in ats or (None,):
        parts.append(f"max by (cluster, node) (kubevirt_vmi_info{{{on_node}}}{_at(at)})")
        parts.append(f"max by (cluster, node) (ov_node_physical_cpu_cores{{{matchers}}}{_at(at)})")
    return " or ".join(parts)


def on_vm_nodes(expr: str, node_matchers: str, ats: tuple[str, ...]) -> str:
    return f"{expr} and on(cluster, node) ({vm_nodes(node_matchers, ats)})"


def before_after(
    kind: str, matchers: str, node_matchers: str, before: str, now: str, window: str = AVG_WINDOW
) -> dict[str, str]:
    """The three expressions of one resource (`cpu` or `memory`): utilisation at
    `before`, at `now`, and the change (now - before), on the VM nodes of either instant.
    `matchers` filter the node_exporter series, `node_matchers` the VM-node series."""
    fn = {"cpu": cpu_utilisation, "memory": memory_utilisation}[kind]
    ats = (before, now)
    b = on_vm_nodes(fn(matchers, before, window), node_matchers, ats)
    n = on_vm_nodes(fn(matchers, now, window), node_matchers, ats)
    return {"before": b, "now": n, "change": f"({n}) - ({b})"}


# The exporter's start of the current rebalance wave (the earliest migration of the
# wave; absent while no watch window is open).
REBALANCE_START = "ov_rebalance_start_timestamp_seconds"


def rebalance_start_query(matchers: str = "", lookback: str | None = None) -> str:
    """The exporter's rebalance start; with `lookback`, the latest one seen in it."""
    sel = f"{REBALANCE_START}{{{matchers}}}"
    return f"max by (cluster) (last_over_time({sel}[{lookback}]))" if lookback else f"max by (cluster) ({sel})"


# Upstream migration series (KubeVirt pkg/monitoring/metrics/virt-controller/):
# - kubevirt_vmi_migration_succeeded / _failed {vmi, vmim, namespace}: 1 per finished
#   VMIM while the VMIM object exists (migrationstats_collector.go, v1.3.0-v1.9.0);
# - kubevirt_vmi_migration_start_time_seconds {node, namespace, name, migration_name} and
#   _end_time_seconds (+ status): the VMI's status.migrationState, so one series per VMI
#   (its latest migration), from v1.4.1 (vmistats_collector.go). `node` is the VMI's
#   node, which changes when the migration completes: aggregate it away.
# Over a lookback each migration_name seen keeps its last value, so every migration of
# the range is found as long as a scrape saw it.
MIGRATION_RESULTS = {
    "succeeded": "kubevirt_vmi_migration_succeeded",
    "failed": "kubevirt_vmi_migration_failed",
}
MIGRATION_TIMES = {
    "start": "kubevirt_vmi_migration_start_time_seconds",
    "end": "kubevirt_vmi_migration_end_time_seconds",
}


def _namespaced(template: str, matchers: str) -> str:
    """`template` (with @@ for the matchers) over both shapes of the namespace label: the
    series' own `namespace`, or `exported_namespace` where the scrape renamed it."""
    native = template.replace("@@", _m(matchers, 'exported_namespace=""'))
    exported = template.replace("@@", _m(matchers, 'exported_namespace!=""'))
    return f'({native} or label_replace({exported}, "namespace", "$1", "exported_namespace", "(.+)"))'


def migrations_query(part: str, lookback_seconds: int, matchers: str = "") -> str:
    """One of MIGRATION_RESULTS / MIGRATION_TIMES, last value per migration over the lookback."""
    window = f"[{int(lookback_seconds)}s]"
    if part in MIGRATION_RESULTS:
        inner = _namespaced(f"last_over_time({MIGRATION_RESULTS[part]}{{@@}}{window})", matchers)
        return f"max by (cluster, namespace, vmi, vmim) ({inner})"
    inner = _namespaced(f"last_over_time({MIGRATION_TIMES[part]}{{@@}}{window})", matchers)
    return f"max by (cluster, namespace, name, migration_name) ({inner})"


MIGRATION_PARTS = (*MIGRATION_RESULTS, *MIGRATION_TIMES)

# The clusters that have VM nodes or node_exporter series at an instant: one
# label-less group where no series carries `cluster`.
CLUSTERS_QUERY = (
    'group by (cluster) (ov_node_physical_cpu_cores or kubevirt_vmi_info or node_cpu_seconds_total{mode="idle"})'
)


def cluster_matcher(cluster: str | None) -> str:
    """The label matcher of one cluster; none where series carry no cluster label."""
    return "" if cluster is None else f"cluster={json.dumps(cluster)}"


def report_queries(
    start: float, at: float, lookback: float, cluster: str | None = None, window: str = AVG_WINDOW
) -> dict[str, str]:
    """Every query of one cluster's report, by key (also printed in the JSON output)."""
    matchers = cluster_matcher(cluster)
    queries = {"rebalance_start": rebalance_start_query(matchers)}
    for kind in ("cpu", "memory"):
        for part, expr in before_after(kind, matchers, matchers, _ts(start), _ts(at), window).items():
            queries[f"{kind}_{part}"] = expr
    queries.update(
        {f"migrations_{part}": migrations_query(part, math.ceil(lookback), matchers) for part in MIGRATION_PARTS}
    )
    return queries


# ------------------------------------------------------------------------ times
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float | None:
    """Seconds of a Prometheus-style duration (`48h`, `1h30m`), or None."""
    text = text.strip()
    if not text or _DURATION.sub("", text):
        return None
    return sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(text))


def parse_time(text: str, reference: float, flag: str) -> float:
    """RFC3339, a Unix timestamp, `now`, or a duration meaning that long before `reference`."""
    value = text.strip()
    if value == "now":
        return reference
    ago = parse_duration(value)
    if ago is not None:
        return reference - ago
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError as exc:
        raise RebalanceError(
            f"{flag}: expected RFC3339 (2026-01-02T03:04:05Z), a Unix timestamp or a duration such as 48h, got {text!r}"
        ) from exc
    if parsed.tzinfo is None:
        raise RebalanceError(f"{flag}: {text!r} has no time zone; add Z or an offset")
    return parsed.timestamp()


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ts(ts: float) -> str:
    """A timestamp for the `@` modifier (millisecond precision)."""
    return f"{ts:.3f}".rstrip("0").rstrip(".")


# ------------------------------------------------------------------------ queries
def _values(result: list[dict[str, Any]], label: str = "node") -> dict[str, float]:
    out = {}
    for series in result:
        value = float(series["value"][1])
        if not math.isnan(value):
            out[series["metric"].get(label, "")] = value
    return out


# ------------------------------------------------------------------------ report
@dataclass
class NodeRow:
    node: str
    cpu_before: float | None
    cpu_now: float | None
    cpu_change: float | None
    memory_before: float | None
    memory_now: float | None
    memory_change: float | None


@dataclass
class Migration:
    namespace: str
    vmi: str
    vmim: str
    start: float
    end: float | None
    result: str  # succeeded, failed, running


@dataclass
class Report:
    prometheus: str
    start: float
    start_source: str  # "--since", "exporter" (ov_rebalance_start_timestamp_seconds) or "detected"
    at: float
    window: str
    nodes: list[NodeRow]
    spread: dict[str, float | None]
    migrations: list[Migration]
    queries: dict[str, str] = field(default_factory=dict)
    cluster: str | None = None  # None: the series carry no cluster label

    @property
    def succeeded(self) -> int:
        return sum(m.result == "succeeded" for m in self.migrations)

    @property
    def failed(self) -> int:
        return sum(m.result == "failed" for m in self.migrations)

    @property
    def running(self) -> int:
        return sum(m.result == "running" for m in self.migrations)

    def to_dict(self) -> dict[str, Any]:
        return {
            **({} if self.cluster is None else {"cluster": self.cluster}),
            "prometheus": self.prometheus,
            "start": rfc3339(self.start),
            "start_timestamp": self.start,
            "start_source": self.start_source,
            "at": rfc3339(self.at),
            "at_timestamp": self.at,
            "averaging_window": self.window,
            "nodes": [asdict(n) for n in self.nodes],
            "spread": self.spread,
            "migrations": {
                "succeeded": self.succeeded,
                "failed": self.failed,
                "running": self.running,
                "items": [asdict(m) for m in self.migrations],
            },
            "queries": self.queries,
        }


def _spread(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) - min(known) if known else None


async def _migrations(client: PrometheusClient, at: float, lookback: float, matchers: str) -> list[Migration]:
    """Migrations with a start time in the lookback (KubeVirt >= 1.4.1), joined with the
    per-VMIM results on namespace and migration_name = vmim."""
    results = await asyncio.gather(
        *(client.vector(migrations_query(part, math.ceil(lookback), matchers), at) for part in MIGRATION_PARTS)
    )
    outcome: dict[tuple[str, str], str] = {}
    times: dict[tuple[str, str, str], dict[str, float]] = {}
    for part, result in zip(MIGRATION_PARTS, results):
        for series in result:
            labels = series["metric"]
            if part in MIGRATION_RESULTS:
                if float(series["value"][1]) > 0:
                    outcome[(labels.get("namespace", ""), labels.get("vmim", ""))] = part
            else:
                key = (labels.get("namespace", ""), labels.get("name", ""), labels.get("migration_name", ""))
                times.setdefault(key, {})[part] = float(series["value"][1])
    out = []
    for (namespace, vmi, vmim), entry in sorted(times.items()):
        if "start" not in entry:
            continue
        result = outcome.get((namespace, vmim), "running")
        out.append(Migration(namespace, vmi, vmim, entry["start"], entry.get("end"), result))
    return out


async def _exporter_start(client: PrometheusClient, at: float, matchers: str) -> float | None:
    result = await client.vector(rebalance_start_query(matchers), at)
    return float(result[0]["value"][1]) if result else None


async def clusters(client: PrometheusClient, at: float) -> list[str | None]:
    """The clusters in the data at `at`, sorted; [None] where no series carries the
    label. Series without it beside labelled ones form the cluster "" (cluster="")."""
    found = {series["metric"].get("cluster") for series in await client.vector(CLUSTERS_QUERY, at)}
    if found <= {None}:
        return [None]
    return sorted((name or "") for name in found)


def _where(client: PrometheusClient, cluster: str | None) -> str:
    return f"Prometheus {client.url}" + ("" if cluster is None else f" (cluster {cluster!r})")


async def build_report(
    client: PrometheusClient,
    at: float,
    since: float | None = None,
    cluster: str | None = None,
    window: str = AVG_WINDOW,
) -> Report:
    """The report of one cluster (None: series without a cluster label) at `at`; the
    rebalance starts at `since`, else at the exporter's ov_rebalance_start_timestamp_seconds,
    else at the earliest migration start in the LOOKBACK_SECONDS before `at`."""
    if since is not None and since >= at:
        raise RebalanceError(f"--since {rfc3339(since)} is not before --at {rfc3339(at)}")
    matchers, where = cluster_matcher(cluster), _where(client, cluster)
    source = "--since"
    if since is None:
        since = await _exporter_start(client, at, matchers)
        source = "exporter"
        if since is not None and since >= at:
            raise RebalanceError(
                f"{REBALANCE_START} on {where} is {rfc3339(since)}, not before "
                f"--at {rfc3339(at)}; give the start with --since TIME"
            )
    lookback = at - since if since is not None else LOOKBACK_SECONDS
    migrations = [m for m in await _migrations(client, at, lookback, matchers) if at - lookback <= m.start <= at]
    if since is None:
        if not migrations:
            raise RebalanceError(
                f"no live migration started between {rfc3339(at - lookback)} and {rfc3339(at)} "
                f"({REBALANCE_START} and kubevirt_vmi_migration_start_time_seconds on {where}): "
                f"no rebalance to report; give its start with --since TIME"
            )
        start, source = min(m.start for m in migrations), "detected"
    else:
        start = since
    queries = report_queries(start, at, lookback, cluster, window)
    keys = [k for k in queries if k.startswith(("cpu_", "memory_")) and not k.endswith("_change")]
    results = await asyncio.gather(*(client.vector(queries[k], at) for k in keys))
    values = {k: _values(r) for k, r in zip(keys, results)}
    names = sorted(set().union(*(v.keys() for v in values.values())))
    if not names:
        raise RebalanceError(
            f"{where}: no node_exporter utilisation for any VM node at {rfc3339(start)} or "
            f"{rfc3339(at)} (node_cpu_seconds_total, node_memory_* joined on instance = node name with "
            f"kubevirt_vmi_info / ov_node_physical_cpu_cores)"
        )
    rows = []
    for node in names:
        cells = {k: values[k].get(node) for k in keys}
        change = {
            kind: (
                cells[f"{kind}_now"] - cells[f"{kind}_before"]
                if cells[f"{kind}_now"] is not None and cells[f"{kind}_before"] is not None
                else None
            )
            for kind in ("cpu", "memory")
        }
        rows.append(
            NodeRow(
                node,
                cells["cpu_before"],
                cells["cpu_now"],
                change["cpu"],
                cells["memory_before"],
                cells["memory_now"],
                change["memory"],
            )
        )
    spread = {
        "cpu_before": _spread([r.cpu_before for r in rows]),
        "cpu_now": _spread([r.cpu_now for r in rows]),
        "memory_before": _spread([r.memory_before for r in rows]),
        "memory_now": _spread([r.memory_now for r in rows]),
    }
    for kind in ("cpu", "memory"):
        b, n = spread[f"{kind}_before"], spread[f"{kind}_now"]
        spread[f"{kind}_change"] = n - b if b is not None and n is not None else None
    return Report(client.url, start, source, at, window, rows, spread, migrations, queries, cluster)


@dataclass
class FleetReport:
    """One report per cluster, or why a cluster has none (no rebalance there)."""

    reports: list[Report]
    errors: dict[str, str] = field(default_factory=dict)


async def build_fleet_report(
    client: PrometheusClient,
    at: float,
    since: float | None = None,
    cluster: str | None = None,
    window: str = AVG_WINDOW,
) -> FleetReport:
    """`cluster` alone, else every cluster of the data at `at`. A cluster without a
    rebalance is noted, not fatal, while another has one; with none, the error stands."""
    found = await clusters(client, at)
    names = found if cluster is None else [cluster]
    if cluster is not None and cluster not in found:
        seen = ", ".join(repr(c) for c in found if c is not None) or "none"
        raise RebalanceError(
            f"Prometheus {client.url}: no series with cluster={cluster!r} at {rfc3339(at)} (clusters seen: {seen})"
        )
    fleet = FleetReport([])
    for name in names:
        try:
            fleet.reports.append(await build_report(client, at, since, name, window))
        except (RebalanceError, PrometheusError) as exc:
            if len(names) == 1:
                raise
            fleet.errors[name or ""] = str(exc)
    if not fleet.reports:
        raise RebalanceError(
            "no cluster has a rebalance to report:\n"
            + "\n".join(f"  {name}: {why}" for name, why in fleet.errors.items())
        )
    return fleet


def rebalance_fleet_report(
    url: str,
    at: float | None = None,
    since: float | None = None,
    cluster: str | None = None,
    token_file: str | None = None,
    ca_file: str | None = None,
    timeout: float = 30.0,
    window: str = AVG_WINDOW,
) -> FleetReport:
    """Synchronous entry point: the report of each cluster (or of `cluster`) at `at` (default now)."""
    import time

    async def run() -> FleetReport:
        async with PrometheusClient(url, token_file, ca_file, timeout) as client:
            return await build_fleet_report(client, time.time() if at is None else at, since, cluster, window)

    return asyncio.run(run())


def rebalance_report(
    url: str,
    at: float | None = None,
    since: float | None = None,
    token_file: str | None = None,
    ca_file: str | None = None,
    timeout: float = 30.0,
    cluster: str | None = None,
) -> Report:
    """The report of one cluster: `cluster`, or the only one in the data."""
    fleet = rebalance_fleet_report(url, at, since, cluster, token_file, ca_file, timeout)
    if len(fleet.reports) + len(fleet.errors) > 1:
        names = ", ".join(sorted([r.cluster or "" for r in fleet.reports] + list(fleet.errors)))
        raise RebalanceError(f"Prometheus {url} holds several clusters ({names}): name one")
    return fleet.reports[0]


# ------------------------------------------------------------------------ rendering
def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f} %"


def _pts(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:+.1f} pts"


HEADERS = ["node", "CPU before", "CPU now", "CPU change", "memory before", "memory now", "memory change"]


def _rows(report: Report) -> list[list[str]]:
    rows = [
        [
            r.node,
            _pct(r.cpu_before),
            _pct(r.cpu_now),
            _pts(r.cpu_change),
            _pct(r.memory_before),
            _pct(r.memory_now),
            _pts(r.memory_change),
        ]
        for r in report.nodes
    ]
    s = report.spread
    rows.append(
        [
            "spread (max - min)",
            _pct(s["cpu_before"]),
            _pct(s["cpu_now"]),
            _pts(s["cpu_change"]),
            _pct(s["memory_before"]),
            _pct(s["memory_now"]),
            _pts(s["memory_change"]),
        ]
    )
    return rows


def _summary(report: Report) -> list[str]:
    how = {"detected": "earliest migration start", "exporter": f"the exporter's {REBALANCE_START}"}.get(
        report.start_source, report.start_source
    )
    lines = [] if report.cluster is None else [f"Cluster: {report.cluster}"]
    lines += [
        f"Rebalance start: {rfc3339(report.start)} ({how}); now: {rfc3339(report.at)}; "
        f"utilisation averaged over the {report.window} before each.",
        f"Migrations since the start: {report.succeeded} succeeded, {report.failed} failed, "
        f"{report.running} not finished.",
    ]
    lines += [f"Failed: {m.namespace}/{m.vmim} (VMI {m.vmi})" for m in report.migrations if m.result == "failed"]
    return lines


def report_table(report: Report) -> str:
    rows = [HEADERS] + _rows(report)
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS))]
    lines = [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
        for r in rows
    ]
    return "\n".join(_summary(report) + [""] + lines) + "\n"


def report_markdown(report: Report) -> str:
    out = [f"### Rebalance report ({rfc3339(report.start)} to {rfc3339(report.at)})", ""]
    out += [f"- {line}" for line in _summary(report)]
    out += ["", "| " + " | ".join(HEADERS) + " |", "|" + "---|" + "---:|" * (len(HEADERS) - 1)]
    out += ["| " + " | ".join(r) + " |" for r in _rows(report)]
    out += [
        "",
        f"Source: Prometheus {report.prometheus}, node_exporter CPU (1 - idle) and memory "
        f"(1 - MemAvailable / MemTotal) of the nodes running VMs.",
    ]
    return "\n".join(out) + "\n"


def report_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2) + "\n"


RENDERERS = {"table": report_table, "markdown": report_markdown, "json": report_json}


def render_fleet(fleet: FleetReport, output: str) -> str:
    """One report as RENDERERS gives it; several clusters as one section each (JSON:
    {"clusters": {name: report}, "errors": {name: why}})."""
    if len(fleet.reports) == 1 and not fleet.errors:
        return RENDERERS[output](fleet.reports[0])
    if output == "json":
        doc = {"clusters": {r.cluster or "": r.to_dict() for r in fleet.reports}, "errors": fleet.errors}
        return json.dumps(doc, indent=2) + "\n"
    heading = "## Cluster {}" if output == "markdown" else "=== cluster {} ==="
    sections = [f"{heading.format(r.cluster or '(none)')}\n\n{RENDERERS[output](r)}" for r in fleet.reports]
    sections += [f"{heading.format(name or '(none)')}\n\n{why}\n" for name, why in fleet.errors.items()]
    return "\n".join(sections)
