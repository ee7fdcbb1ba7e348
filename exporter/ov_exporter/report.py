"""Findings as JSON (the `check --output json` and /findings.json shape), table, HTML,
JUnit XML and SARIF; the cluster score and the per-anti-pattern summary."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, Callable
from xml.etree import ElementTree as ET

from .coverage import REPOSITORY as REPOSITORY_URL
from .coverage import coverage, runbook_url
from .model import Finding, Severity, Status
from .runner import CheckResult, Evaluation
from .version import __version__

# Where a file source found an object: (kind, namespace, name) -> (file, line) or None.
Locator = Callable[[str, str, str], "tuple[str, int] | None"]

SEVERITY_WEIGHT = {Severity.INFO: 1, Severity.WARNING: 2, Severity.CRITICAL: 3}


# ---------------------------------------------------------------- score and summary


@dataclass(frozen=True)
class Score:
    """Share of checks passing, weighted by severity.

    A check passes when it found nothing above info; it weighs 1. A check that found
    warnings weighs 2, one that found something critical weighs 3. Score =
    passing weight / total weight, so one critical failure costs three times what a
    clean check earns. Checks that were not applicable are left out; checks that
    failed to run are left out too and counted in `failed` (an unknown is not a pass).
    """

    value: float | None  # 0..1; None when no check ran
    passing: int
    failing: int
    failed: int
    not_applicable: int


def _passes(result: CheckResult) -> bool:
    return all(f.severity is Severity.INFO for f in result.findings)


def _weight(result: CheckResult) -> int:
    worst = max((f.severity for f in result.findings), default=Severity.INFO)
    return SEVERITY_WEIGHT[worst]


def score(evaluation: Evaluation) -> Score:
    ran = [r for r in evaluation.results if r.status is Status.OK]
    passing = [r for r in ran if _passes(r)]
    total = sum(_weight(r) for r in ran)
    return Score(
        value=(sum(_weight(r) for r in passing) / total) if total else None,
        passing=len(passing),
        failing=len(ran) - len(passing),
        failed=sum(1 for r in evaluation.results if r.status is Status.FAILED),
        not_applicable=sum(1 for r in evaluation.results if r.status is Status.NOT_APPLICABLE),
    )


def anti_pattern_summary(evaluation: Evaluation) -> list[dict[str, Any]]:
    """One row per anti-pattern: its checks' verdict, or how it is covered otherwise."""
    results = {r.spec.id: r for r in evaluation.results}
    rows = []
    for cov in coverage():
        ran = [results[s.id] for s in cov.checks if s.id in results]
        findings = [f for r in ran for f in r.findings]
        worst = max((f.severity for f in findings), default=None)
        if not cov.checks:
            verdict = "not observable" if cov.not_observable else "alerts only" if cov.alert_note else "not covered"
        elif not ran:
            verdict = "disabled"
        elif any(r.status is Status.FAILED for r in ran):
            verdict = "check failed"
        elif all(r.status is Status.NOT_APPLICABLE for r in ran):
            verdict = "not applicable"
        elif worst is None or worst is Severity.INFO:
            verdict = "pass"
        else:
            verdict = "fail"
        rows.append(
            {
                "anti_pattern": cov.number,
                "title": cov.title,
                "checks": [s.id for s in cov.checks],
                "verdict": verdict,
                "worst": str(worst) if worst else None,
                "findings": {str(sev): sum(1 for f in findings if f.severity is sev) for sev in reversed(Severity)},
                "note": cov.not_observable or cov.alert_note,
            }
        )
    return rows


def to_json(evaluation: Evaluation) -> dict[str, Any]:
    specs = {r.spec.id: r.spec for r in evaluation.results}
    return {
        "findings": [
            {
                "check": f.check,
                "anti_pattern": specs[f.check].anti_pattern,
                "severity": str(f.severity),
                "object": {"kind": f.obj.kind, "namespace": f.obj.namespace, "name": f.obj.name},
                "message": f.message,
                "remediation": specs[f.check].remediation,
                "runbook": specs[f.check].runbook,
            }
            for f in evaluation.findings
        ],
        "checks": [
            {"id": r.spec.id, "anti_pattern": r.spec.anti_pattern, "status": r.status.value, "error": r.error}
            for r in evaluation.results
        ],
        "anti_patterns": anti_pattern_summary(evaluation),
        "score": _score_json(score(evaluation)),
        "versions": versions(evaluation),
    }


def _score_json(sc: Score) -> dict[str, Any]:
    return {
        "value": None if sc.value is None else round(sc.value, 4),
        "passing": sc.passing,
        "failing": sc.failing,
        "failed": sc.failed,
        "not_applicable": sc.not_applicable,
    }


def score_line(sc: Score) -> str:
    value = "n/a" if sc.value is None else f"{sc.value * 100:.0f}%"
    extra = f"; {sc.failed} check(s) failed to run and are not counted" if sc.failed else ""
    return (
        f"cluster score {value} (severity-weighted share of checks passing: {sc.passing} passing, "
        f"{sc.failing} with findings, {sc.not_applicable} not applicable{extra})"
    )


def versions(evaluation: Evaluation) -> dict[str, str]:
    """{"kubevirt": ..., "hco": ...} as the migration_capacity check read them from the CRs."""
    names = {"ov_kubevirt": "kubevirt", "ov_hyperconverged": "hco"}
    return {
        names[s.family]: s.labels[0]
        for r in evaluation.results
        for s in r.samples
        if s.family in names and s.labels and s.labels[0]
    }


def versions_line(evaluation: Evaluation) -> str:
    found = versions(evaluation)
    return f"KubeVirt {found.get('kubevirt', 'unknown')}, HyperConverged operator {found.get('hco', 'unknown')}"


def to_table(evaluation: Evaluation) -> str:
    rows = [("SEVERITY", "CHECK", "OBJECT", "MESSAGE")]
    rows += [(str(f.severity), f.check, str(f.obj), f.message) for f in evaluation.findings]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3] for r in rows]
    lines.append("")
    for r in evaluation.results:
        extra = f": {r.error}" if r.error else ""
        counts = ", ".join(f"{sum(1 for f in r.findings if f.severity is s)} {s}" for s in reversed(Severity))
        lines.append(f"check {r.spec.id:<22} {r.status.value:<15} {counts}{extra}")
    lines.append("")
    for row in anti_pattern_summary(evaluation):
        counts = ", ".join(f"{n} {sev}" for sev, n in row["findings"].items() if n)
        detail = f" ({counts})" if counts else ""
        lines.append(f"AP{row['anti_pattern']:<3} {row['verdict']:<15} {row['title']}{detail}")
    lines.append("")
    lines.append(score_line(score(evaluation)))
    lines.append(versions_line(evaluation))
    return "\n".join(lines) + "\n"


_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}.critical{color:#b00020;font-weight:600}.warning{color:#a15c00;font-weight:600}
.info{color:#335}.failed{color:#b00020}.small{color:#666;font-size:.85rem}
"""


def to_html(evaluation: Evaluation | None, source: str, problems: int, blind: dict[str, str] | None = None) -> str:
    """blind: kinds the source cannot see now (kind -> why); the page leads with them."""
    e = html.escape
    warning = ""
    if blind:
        items = "".join(f"<li>{e(kind)}: {e(why)}</li>" for kind, why in sorted(blind.items()))
        warning = (
            "<div class='critical'><p>The exporter cannot see part of the cluster: the checks that read "
            f"these kinds failed, and their findings are missing from this page.</p><ul>{items}</ul></div>"
        )
    if evaluation is None:
        body = "<p>No evaluation yet: the source is still loading.</p>"
    else:
        checks = "".join(
            f"<tr><td>{e(r.spec.id)}</td><td>{r.spec.anti_pattern}</td><td>{e(r.spec.title)}</td>"
            f"<td class='{e(r.status.value)}'>{e(r.status.value)}</td><td>{len(r.findings)}</td>"
            f"<td>{e(r.error)}</td></tr>"
            for r in evaluation.results
        )
        specs = {r.spec.id: r.spec for r in evaluation.results}
        findings = "".join(
            f"<tr><td class='{f.severity}'>{f.severity}</td><td>{e(f.check)}</td><td>{e(str(f.obj))}</td>"
            f"<td>{e(f.message)}</td><td>{e(specs[f.check].remediation)}</td>"
            f"<td><a href='/{e(specs[f.check].runbook)}'>runbook</a></td></tr>"
            for f in evaluation.findings
        )
        summary = "".join(
            f"<tr><td>{row['anti_pattern']}</td><td>{e(row['title'])}</td>"
            f"<td class='{e(row['worst'] or '')}'>{e(row['verdict'])}</td><td>{e(', '.join(row['checks']))}</td>"
            f"<td>{e(', '.join(f'{n} {sev}' for sev, n in row['findings'].items() if n))}</td></tr>"
            for row in anti_pattern_summary(evaluation)
        )
        body = (
            f"<p><strong>{e(score_line(score(evaluation)))}</strong></p>"
            f"<p class='small'>{e(versions_line(evaluation))}</p>"
            "<h2>Anti-patterns</h2><table><tr><th>#</th><th>anti-pattern</th><th>verdict</th><th>checks</th>"
            f"<th>findings</th></tr>{summary}</table>"
            "<h2>Checks</h2><table><tr><th>check</th><th>anti-pattern</th><th>title</th><th>status</th>"
            f"<th>findings</th><th>error</th></tr>{checks}</table>"
            f"<h2>Findings ({len(evaluation.findings)})</h2><table><tr><th>severity</th><th>check</th>"
            "<th>object</th><th>message</th><th>remediation</th><th>runbook</th></tr>"
            f"{findings}</table>"
        )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>OpenShift Virtualization anti-patterns</title>"
        f"<style>{_STYLE}</style></head><body><h1>OpenShift Virtualization anti-patterns</h1>"
        f"<p class='small'>Source: {e(source)}; {problems} skipped file(s)/object(s). "
        "<a href='/metrics'>/metrics</a> · <a href='/findings.json'>/findings.json</a> · "
        "<a href='/readyz'>/readyz</a></p>"
        f"{warning}{body}</body></html>"
    )


# ---------------------------------------------------------------- JUnit XML


def _where(finding: Finding, locate: Locator | None) -> tuple[str, int] | None:
    return locate(finding.obj.kind, finding.obj.namespace, finding.obj.name) if locate else None


def to_junit(evaluation: Evaluation, fail_on: Severity | None, locate: Locator | None = None) -> str:
    """One <testsuite> per check; one <testcase> per finding (a <failure> at or above
    `fail_on`, so the report agrees with the exit code), one passing case for a clean
    check, <skipped> when not applicable and <error> when the check failed."""
    suites = ET.Element("testsuites", name="ov-exporter")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for r in evaluation.results:
        suite = ET.SubElement(suites, "testsuite", name=r.spec.id)
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        classname = f"ov-exporter.AP{r.spec.anti_pattern}.{r.spec.id}"
        if r.status is not Status.OK:
            case = ET.SubElement(suite, "testcase", name=r.spec.title, classname=classname, time=f"{r.duration:.3f}")
            if r.status is Status.NOT_APPLICABLE:
                ET.SubElement(case, "skipped", message=r.error or "not applicable")
                counts["skipped"] += 1
            else:
                ET.SubElement(case, "error", message=r.error or "check failed", type="CheckFailed")
                counts["errors"] += 1
            counts["tests"] += 1
        elif not r.findings:
            ET.SubElement(suite, "testcase", name=r.spec.title, classname=classname, time=f"{r.duration:.3f}")
            counts["tests"] += 1
        for f in sorted(r.findings, key=lambda f: (-f.severity, f.obj.namespace, f.obj.name)):
            where = _where(f, locate)
            attrs = {"name": str(f.obj), "classname": classname}
            if where:
                attrs["file"] = where[0]
                if where[1]:
                    attrs["line"] = str(where[1])
            case = ET.SubElement(suite, "testcase", **attrs)
            location = f"{where[0]}:{where[1]}\n" if where and where[1] else (f"{where[0]}\n" if where else "")
            text = f"{location}{f.message}\nremediation: {r.spec.remediation}\nrunbook: {runbook_url(r.spec)}"
            counts["tests"] += 1
            if fail_on is not None and f.severity >= fail_on:
                failure = ET.SubElement(case, "failure", message=f.message, type=str(f.severity))
                failure.text = text
                counts["failures"] += 1
            else:
                ET.SubElement(case, "system-out").text = f"[{f.severity}] {text}"
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
    for key, value in totals.items():
        suites.set(key, str(value))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


# ---------------------------------------------------------------- SARIF 2.1.0

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {Severity.CRITICAL: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def to_sarif(
    evaluation: Evaluation, locate: Locator | None = None, problems: list | None = None, base_uri: str | None = None
) -> dict[str, Any]:
    """A SARIF 2.1.0 log: one rule per check, one result per finding. A finding on an
    object read from a file points at that file and line (relative to SRCROOT, the
    snapshot directory), so code-scanning tools annotate the manifest itself."""
    specs = [r.spec for r in evaluation.results]
    index = {s.id: i for i, s in enumerate(specs)}
    rules = [
        {
            "id": s.id,
            "name": "".join(part.capitalize() for part in s.id.split("_")),
            "shortDescription": {"text": s.title},
            "fullDescription": {"text": f"Anti-pattern {s.anti_pattern}: {s.title}. Severity: {s.severity_rules}."},
            "help": {"text": s.remediation},
            "helpUri": runbook_url(s),
            "defaultConfiguration": {"level": "warning"},
            "properties": {"anti-pattern": s.anti_pattern, "tags": [f"anti-pattern-{s.anti_pattern}"]},
        }
        for s in specs
    ]
    results = []
    for f in evaluation.findings:
        logical = {
            "fullyQualifiedName": "/".join(p for p in (f.obj.kind, f.obj.namespace, f.obj.name) if p),
            "name": f.obj.name,
            "kind": "resource",
        }
        location: dict[str, Any] = {"logicalLocations": [logical]}
        where = _where(f, locate)
        if where:
            physical: dict[str, Any] = {"artifactLocation": {"uri": where[0], "uriBaseId": "SRCROOT"}}
            if where[1]:
                physical["region"] = {"startLine": where[1]}
            location["physicalLocation"] = physical
        results.append(
            {
                "ruleId": f.check,
                "ruleIndex": index[f.check],
                "level": _LEVEL[f.severity],
                "message": {"text": f"{f.obj}: {f.message}"},
                "locations": [location],
                "partialFingerprints": {"ovObject/v1": f"{f.check}/{f.obj.kind}/{f.obj.namespace}/{f.obj.name}"},
                "properties": {"severity": str(f.severity)},
            }
        )
    notifications = [
        {
            "level": "error",
            "message": {"text": f"check {r.spec.id} failed: {r.error}"},
            "descriptor": {"id": r.spec.id},
        }
        for r in evaluation.results
        if r.status is Status.FAILED
    ]
    notifications += [
        {"level": "warning", "message": {"text": f"skipped {p.where}: {p.message}"}} for p in problems or []
    ]
    run: dict[str, Any] = {
        "tool": {
            "driver": {"name": "ov-exporter", "version": __version__, "informationUri": REPOSITORY_URL, "rules": rules}
        },
        "results": results,
        "invocations": [
            {
                "executionSuccessful": not any(r.status is Status.FAILED for r in evaluation.results),
                "toolExecutionNotifications": notifications,
            }
        ],
        "properties": {"score": _score_json(score(evaluation))},
    }
    if base_uri:
        run["originalUriBaseIds"] = {"SRCROOT": {"uri": base_uri}}
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
