"""Generate the documents' reference tables from the declarations, so they cannot drift.

    python -m ov_exporter.docs README.md exporter/docs/*.md          # rewrite the marked sections
    python -m ov_exporter.docs --check README.md exporter/docs/*.md  # exit 1 when one is stale

A document holds a generated section between `<!-- BEGIN name -->` and `<!-- END name -->`;
links in it are made relative to the document's folder. Each section lives in one
document only (DOCUMENTS says which); tests/test_docs.py checks them all.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from .checks import CHECKS
from .config import reference
from .render import all_families, exposition_name

# Section -> the document (relative to the repository) that holds it.
DOCUMENTS = {
    "demo": "README.md",
    "coverage": "exporter/docs/reference.md",
    "checks": "exporter/docs/reference.md",
    "metrics": "exporter/docs/reference.md",
    "alerts": "exporter/docs/reference.md",
    "config": "exporter/docs/usage.md",
}


def _runbook(check_id: str, up: str) -> str:
    return f"{up}exporter/ov_exporter/checks/{check_id}/runbook.md"


def checks_table(root: Path, up: str) -> str:
    rows = ["| check id | anti-pattern | title | severity | runbook |", "|---|---|---|---|---|"]
    for s in CHECKS:
        rows.append(
            f"| `{s.id}` | {s.anti_pattern} | {s.title} | {s.severity_rules} | [{s.id}]({_runbook(s.id, up)}) |"
        )
    return "\n".join(rows)


def metrics_table(root: Path, up: str) -> str:
    rows = ["| metric | type | labels | from | description |", "|---|---|---|---|---|"]
    for owner, fam in all_families():
        labels = ", ".join(f"`{label}`" for label in fam.labels) or "—"
        scope = " Per offending object, capped by `series-cap`." if fam.per_object else ""
        rows.append(f"| `{exposition_name(fam)}` | {fam.type} | {labels} | {owner} | {fam.help}{scope} |")
    return "\n".join(rows)


def config_table(root: Path, up: str) -> str:
    readers: dict[str, list[str]] = {}
    for spec in CHECKS:
        for key in spec.settings:
            readers.setdefault(key, []).append(f"`{spec.id}`")
    rows = ["| key | default | type | read by |", "|---|---|---|---|"]
    for key, default, kind in reference():
        shown = f"`{default}`" if default else "—"
        rows.append(f"| `{key}` | {shown} | {kind} | {', '.join(readers.get(key, [])) or 'every check'} |")
    return "\n".join(rows)


def alerts_table(root: Path, up: str) -> str:
    """From the rule files in <repo>/alerts (not packaged: the documents sit beside them)."""
    import yaml

    rows = ["| alert | severity | impact | for | summary | group |", "|---|---|---|---|---|---|"]
    for path in sorted((root / "alerts").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text()) or {}
        for group in doc.get("groups", []) if isinstance(doc, dict) else []:
            for rule in group.get("rules", []):
                if "alert" in rule:
                    name = rule["alert"]
                    labels = rule["labels"]
                    rows.append(
                        f"| [`{name}`]({up}alerts/runbooks/{name}.md) | {labels['severity']} | "
                        f"{labels.get('impact', '')} | {rule.get('for', '0s')} | "
                        f"{rule['annotations']['summary']} | {group['name']} |"
                    )
    return "\n".join(rows)


def coverage_table(root: Path, up: str) -> str:
    from .coverage import UPSTREAM_ALERTS, coverage

    rows = ["| # | anti-pattern | check(s) | metrics | alerts | status |", "|---|---|---|---|---|---|"]
    for cov in coverage():
        families = [exposition_name(f) for s in cov.checks for f in s.families]
        alerts = sorted({a.name for s in cov.checks for a in s.alerts} | set(UPSTREAM_ALERTS.get(cov.number, ())))
        checks = ", ".join(f"[`{s.id}`]({_runbook(s.id, up)})" for s in cov.checks) or "—"
        metrics = ", ".join(f"`{f}`" for f in families) or "—"
        alert_cell = ", ".join(f"[`{a}`]({up}alerts/runbooks/{a}.md)" for a in alerts) or "—"
        status = cov.status + (f": {cov.not_observable}" if cov.not_observable else "")
        status = status.replace("|", "\\|")
        rows.append(f"| {cov.number} | {cov.title} | {checks} | {metrics} | {alert_cell} | {status} |")
    return "\n".join(rows)


def demo_summary(root: Path, up: str) -> str:
    """The verdict per anti-pattern and the score of `ov-exporter check --demo`."""
    from .config import Config
    from .report import to_table
    from .runner import evaluate
    from .sources import DemoSource
    from .store import Store

    store = Store()
    DemoSource().load(store.apply)
    lines = to_table(evaluate(store.state(), Config())).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("AP1 "))
    end = next(i for i, line in enumerate(lines) if line.startswith("cluster score"))
    return "```text\n" + "\n".join(lines[start : end + 1]) + "\n```"


SECTIONS = {
    "demo": demo_summary,
    "coverage": coverage_table,
    "checks": checks_table,
    "metrics": metrics_table,
    "config": config_table,
    "alerts": alerts_table,
}


def update(text: str, root: Path, document: str) -> str:
    """`text` of `document` (a path relative to the repository root `root`) with every
    section it holds rebuilt; a section it should hold and does not is an error."""
    up = os.path.relpath(root, (root / document).parent).replace(os.sep, "/") + "/"
    up = "" if up == "./" else up
    for name, build in SECTIONS.items():
        pattern = re.compile(rf"(<!-- BEGIN {name} -->\n).*?(<!-- END {name} -->)", re.S)
        if not pattern.search(text):
            if DOCUMENTS[name] == document:
                raise SystemExit(f"{document} has no <!-- BEGIN {name} --> ... <!-- END {name} --> section")
            continue
        body = build(root, up)
        text = pattern.sub(lambda m, body=body: m.group(1) + body + "\n" + m.group(2), text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true")
    parser.add_argument("documents", type=Path, nargs="+")
    args = parser.parse_args(argv)
    root = Path(__file__).resolve().parents[2]
    stale = []
    for path in args.documents:
        document = path.resolve().relative_to(root).as_posix()
        old = path.read_text()
        new = update(old, root, document)
        if args.check:
            if new != old:
                stale.append(str(path))
        else:
            path.write_text(new)
    if stale:
        sys.stderr.write(f"stale generated sections in {', '.join(stale)}; run python -m ov_exporter.docs on them\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
