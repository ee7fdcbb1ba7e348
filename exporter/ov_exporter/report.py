"""Findings as JSON (the `check --output json` and /findings.json shape), table and HTML."""
from __future__ import annotations

import html
from typing import Any

from .model import Severity
from .registry import Evaluation


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
    }


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
    return "\n".join(lines) + "\n"


_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}.critical{color:#b00020;font-weight:600}.warning{color:#a15c00;font-weight:600}
.info{color:#335}.failed{color:#b00020}.small{color:#666;font-size:.85rem}
"""


def to_html(evaluation: Evaluation | None, source: str, problems: int) -> str:
    e = html.escape
    if evaluation is None:
        body = "<p>No evaluation yet: the source is still loading.</p>"
    else:
        checks = "".join(
            f"<tr><td>{e(r.spec.id)}</td><td>{r.spec.anti_pattern}</td><td>{e(r.spec.title)}</td>"
            f"<td class='{e(r.status.value)}'>{e(r.status.value)}</td><td>{len(r.findings)}</td>"
            f"<td>{e(r.error)}</td></tr>"
            for r in evaluation.results)
        specs = {r.spec.id: r.spec for r in evaluation.results}
        findings = "".join(
            f"<tr><td class='{f.severity}'>{f.severity}</td><td>{e(f.check)}</td><td>{e(str(f.obj))}</td>"
            f"<td>{e(f.message)}</td><td>{e(specs[f.check].remediation)}</td>"
            f"<td><a href='/{e(specs[f.check].runbook)}'>runbook</a></td></tr>"
            for f in evaluation.findings)
        body = (
            "<h2>Checks</h2><table><tr><th>check</th><th>anti-pattern</th><th>title</th><th>status</th>"
            f"<th>findings</th><th>error</th></tr>{checks}</table>"
            f"<h2>Findings ({len(evaluation.findings)})</h2><table><tr><th>severity</th><th>check</th>"
            "<th>object</th><th>message</th><th>remediation</th><th>runbook</th></tr>"
            f"{findings}</table>")
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>OpenShift Virtualization anti-patterns</title>"
        f"<style>{_STYLE}</style></head><body><h1>OpenShift Virtualization anti-patterns</h1>"
        f"<p class='small'>Source: {e(source)}; {problems} skipped file(s)/object(s). "
        "<a href='/metrics'>/metrics</a> · <a href='/findings.json'>/findings.json</a> · "
        "<a href='/readyz'>/readyz</a></p>"
        f"{body}</body></html>")
