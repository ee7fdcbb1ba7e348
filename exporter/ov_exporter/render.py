"""Evaluation + self-metrics -> exposition bytes, rendered once per evaluation.

Scrapes only pick a prepared payload (text or OpenMetrics, plain or gzip); nothing
is computed on the scrape path. Rendering is synchronous (about 10-14 us a series in
client_python), so the caller runs `render` in a worker thread.
"""

from __future__ import annotations

import gzip
import platform
from dataclasses import dataclass, field
from typing import Any, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_TYPE
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.registry import CollectorRegistry

from .checks import CHECKS
from .model import CheckSpec, Family, Sample, Severity, Status
from .records import KIND_BY_KEY
from .report import anti_pattern_summary, score
from .runner import CheckResult, Evaluation
from .store import KIND_STATES
from .version import __version__

TEXT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Self-metrics, declared like check families so the README reference covers them.
SELF_FAMILIES: tuple[Family, ...] = (
    Family("ov_check_up", "gauge", "1 when the check ran (ok or not applicable), 0 when it failed.", ("check",)),
    Family(
        "ov_check_applicable", "gauge", "0 when the cluster lacks what the check judges (not_applicable).", ("check",)
    ),
    Family("ov_check_duration_seconds", "gauge", "Time the check took in the last evaluation.", ("check",)),
    Family(
        "ov_check_last_success_timestamp_seconds",
        "gauge",
        "Unix time of the last evaluation in which the check succeeded.",
        ("check",),
    ),
    Family("ov_findings", "gauge", "Findings of the last evaluation by check and severity.", ("check", "severity")),
    Family(
        "ov_series_dropped_total",
        "counter",
        "Per-object series the per-check cap (series-cap) dropped, summed over evaluations.",
        ("check",),
    ),
    Family("ov_evaluations_total", "counter", "Evaluations run since start."),
    Family("ov_last_evaluation_timestamp_seconds", "gauge", "Unix time the last evaluation started."),
    Family("ov_evaluation_duration_seconds", "gauge", "Time the last evaluation took, all checks together."),
    Family("ov_source_objects", "gauge", "Objects held in the cluster-state store by kind.", ("kind",)),
    Family(
        "ov_source_kind_state",
        "gauge",
        "1 for the state a kind is in: synced (listed, watched), syncing (first list not done), stale (listed, "
        "but no successful contact for over 30 s: its checks fail), failed (errors before the first list), "
        "unauthorized (the API server rejects the credentials), forbidden (RBAC denies list/watch; see /readyz "
        "and the log for the permission) or absent (API not installed).",
        ("kind", "state"),
    ),
    Family(
        "ov_source_last_contact_timestamp_seconds",
        "gauge",
        "Unix time of the last successful answer of the API server for a kind (list page, watch opened, watch event).",
        ("kind",),
    ),
    Family(
        "ov_source_watch_restarts_total",
        "counter",
        "Watch streams of a kind resumed after they ended or dropped.",
        ("kind",),
    ),
    Family(
        "ov_source_relists_total",
        "counter",
        "LISTs of a kind after the first (410 Gone or a recovered error).",
        ("kind",),
    ),
    Family(
        "ov_source_last_event_timestamp_seconds",
        "gauge",
        "Unix time of the last list or watch event (bookmarks included) of a kind.",
        ("kind",),
    ),
    Family(
        "ov_source_api_requests_total",
        "counter",
        "Requests to the Kubernetes API by verb and HTTP code.",
        ("verb", "code"),
    ),
    Family(
        "ov_http_auth_requests_total",
        "counter",
        "Requests to data routes (/metrics, /, /findings.json) under --auth kubernetes by result: allowed, "
        "denied (403), unauthenticated (401: no token or not authenticated), error (503: the API server "
        "did not answer the review), as of the last evaluation. Absent with --auth none.",
        ("result",),
    ),
    Family("ov_source_problems", "gauge", "Files and objects the source skipped as malformed (see the log)."),
    Family("ov_source_ignored_objects", "gauge", "Objects of kinds no check reads, ignored by the source."),
    Family(
        "ov_cluster_score_ratio",
        "gauge",
        "Share of checks passing, weighted by severity (a check with warnings weighs 2, with critical "
        "findings 3, a passing one 1); not applicable and failed checks left out. Absent when no check ran.",
    ),
    Family(
        "ov_anti_pattern_verdict",
        "gauge",
        "1 for the current verdict of each anti-pattern (1-19): pass, fail, not_applicable, check_failed, "
        "disabled, not_observable or alerts_only.",
        ("anti_pattern", "verdict"),
    ),
    Family("ov_build", "info", "Exporter build information.", ("version", "python_version")),
)


@dataclass(frozen=True)
class Payload:
    text: bytes
    text_gzip: bytes
    openmetrics: bytes
    openmetrics_gzip: bytes

    def pick(self, accept: str, accept_encoding: str) -> tuple[bytes, str, bool]:
        """(body, content type, gzipped) for a request's Accept and Accept-Encoding."""
        use_om = "application/openmetrics-text" in accept
        use_gzip = "gzip" in accept_encoding
        if use_om:
            return (self.openmetrics_gzip if use_gzip else self.openmetrics), OPENMETRICS_TYPE, use_gzip
        return (self.text_gzip if use_gzip else self.text), TEXT_TYPE, use_gzip


@dataclass
class SourceStats:
    objects: dict[str, int]  # kind name -> count
    problems: int
    ignored: int
    kinds: dict[str, Any] = field(default_factory=dict)  # kind name -> store.KindStatus
    requests: dict[tuple[str, str], int] = field(default_factory=dict)  # (verb, code) -> count
    auth: dict[str, int] | None = None  # --auth kubernetes: result -> requests

    @classmethod
    def of(
        cls, store: Any, requests: dict[tuple[str, str], int] | None = None, auth: dict[str, int] | None = None
    ) -> "SourceStats":
        return cls(
            {KIND_BY_KEY[k].kind: n for k, n in store.counts().items()},
            len(store.problems),
            sum(store.ignored_counts().values()),
            {KIND_BY_KEY[k].kind: st for k, st in store.kinds.items()},
            dict(requests or {}),
            auth,
        )


def _family(fam: Family) -> Metric:
    if fam.type == "counter":
        return CounterMetricFamily(fam.name.removesuffix("_total"), fam.help, labels=fam.labels)
    if fam.type == "info":
        return InfoMetricFamily(fam.name, fam.help, labels=fam.labels)
    return GaugeMetricFamily(fam.name, fam.help, labels=fam.labels)


def _add(metric: Metric, fam: Family, labels: tuple[str, ...], value: float) -> None:
    if fam.type == "info":
        metric.add_metric(list(labels), {})
    else:
        metric.add_metric(list(labels), value)


class _Collector:
    def __init__(self, evaluation: Evaluation, history: "History", source: SourceStats) -> None:
        self.evaluation, self.history, self.source = evaluation, history, source

    def collect(self) -> Iterator[Metric]:
        self_fams = {f.name: f for f in SELF_FAMILIES}
        metrics = {name: _family(f) for name, f in self_fams.items()}

        def put(name: str, labels: tuple[str, ...], value: float) -> None:
            _add(metrics[name], self_fams[name], labels, value)

        ev = self.evaluation
        for r in ev.results:
            cid = r.spec.id
            put("ov_check_up", (cid,), 0 if r.status is Status.FAILED else 1)
            put("ov_check_applicable", (cid,), 0 if r.status is Status.NOT_APPLICABLE else 1)
            put("ov_check_duration_seconds", (cid,), r.duration)
            last = self.history.last_success.get(cid)
            if last is not None:
                put("ov_check_last_success_timestamp_seconds", (cid,), last)
            for sev in Severity:
                put("ov_findings", (cid, str(sev)), sum(1 for f in r.findings if f.severity is sev))
            put("ov_series_dropped_total", (cid,), self.history.dropped.get(cid, 0))
        put("ov_evaluations_total", (), self.history.evaluations)
        put("ov_last_evaluation_timestamp_seconds", (), ev.started)
        put("ov_evaluation_duration_seconds", (), ev.duration)
        cluster_score = score(ev).value
        if cluster_score is not None:
            put("ov_cluster_score_ratio", (), cluster_score)
        for row in anti_pattern_summary(ev):
            put("ov_anti_pattern_verdict", (str(row["anti_pattern"]), row["verdict"].replace(" ", "_")), 1)
        for kind, count in sorted(self.source.objects.items()):
            put("ov_source_objects", (kind,), count)
        for kind, st in sorted(self.source.kinds.items()):
            state = st.state(ev.started)
            for name in KIND_STATES:
                put("ov_source_kind_state", (kind, name), 1 if name == state else 0)
            if st.last_contact is not None:
                put("ov_source_last_contact_timestamp_seconds", (kind,), st.last_contact)
            put("ov_source_watch_restarts_total", (kind,), st.watch_restarts)
            put("ov_source_relists_total", (kind,), st.relists)
            if st.last_event is not None:
                put("ov_source_last_event_timestamp_seconds", (kind,), st.last_event)
        for (verb, code), count in sorted(self.source.requests.items()):
            put("ov_source_api_requests_total", (verb, code), count)
        for result, count in sorted((self.source.auth or {}).items()):
            put("ov_http_auth_requests_total", (result,), count)
        put("ov_source_problems", (), self.source.problems)
        put("ov_source_ignored_objects", (), self.source.ignored)
        put("ov_build", (__version__, platform.python_version()), 1)
        yield from metrics.values()


class _CheckCollector:
    """One check's families: declared ones always appear (with HELP/TYPE) even when empty."""

    def __init__(self, result: CheckResult) -> None:
        self.result = result

    def collect(self) -> Iterator[Metric]:
        r = self.result
        fams = {f.name: _family(f) for f in r.spec.families}
        decl = {f.name: f for f in r.spec.families}
        for s in r.samples:
            _add(fams[s.family], decl[s.family], s.labels, s.value)
        yield from fams.values()


class History:
    """What outlives one evaluation: counters and last-success times."""

    def __init__(self) -> None:
        self.evaluations = 0
        self.last_success: dict[str, float] = {}
        self.dropped: dict[str, int] = {}

    def record(self, evaluation: Evaluation) -> None:
        self.evaluations += 1
        for r in evaluation.results:
            if r.status is not Status.FAILED:
                self.last_success[r.spec.id] = evaluation.started
            self.dropped[r.spec.id] = self.dropped.get(r.spec.id, 0) + r.dropped


_EOF = b"# EOF\n"


def _expositions(collector: Any) -> tuple[bytes, bytes]:
    """(text format, OpenMetrics without its closing `# EOF`) of one collector's families."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry), generate_openmetrics(registry).removesuffix(_EOF)


class Renderer:
    """Renders /metrics after each evaluation. A check's series are rendered again only
    when they changed (at 10,000 VMs the whole exposition, 9,000 series in two formats,
    took 130-160 ms to render): a check runner.Reuse did not run hands back the very same
    samples, and one that ran again often gives equal ones."""

    def __init__(self) -> None:
        self._blocks: dict[str, tuple[list[Sample], bytes, bytes]] = {}

    def render(self, evaluation: Evaluation, history: History, source: SourceStats) -> Payload:
        text, om = _expositions(_Collector(evaluation, history, source))
        texts, oms, blocks = [text], [om], {}
        for r in evaluation.results:
            block = self._blocks.get(r.spec.id)
            if block is None or (block[0] is not r.samples and block[0] != r.samples):
                block = (r.samples, *_expositions(_CheckCollector(r)))
            blocks[r.spec.id] = block
            texts.append(block[1])
            oms.append(block[2])
        self._blocks = blocks
        text, om = b"".join(texts), b"".join([*oms, _EOF])
        return Payload(text, gzip.compress(text, 5), om, gzip.compress(om, 5))


def render(evaluation: Evaluation, history: History, source: SourceStats) -> Payload:
    """The exposition of one evaluation, nothing kept (`check --output prometheus`, tests)."""
    return Renderer().render(evaluation, history, source)


def all_families(specs: tuple[CheckSpec, ...] = CHECKS) -> list[tuple[str, Family]]:
    """(owner, family) for every family the exporter can expose: `self` or a check id."""
    return [("self", f) for f in SELF_FAMILIES] + [(s.id, f) for s in specs for f in s.families]


def exposition_name(fam: Family) -> str:
    return f"{fam.name}_info" if fam.type == "info" else fam.name
