"""Generate the README's reference tables from the registry, so they cannot drift.

    python -m ov_exporter.docs README.md          # rewrite the marked sections
    python -m ov_exporter.docs --check README.md  # exit 1 when they are stale
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from .checks import CHECKS
from .config import reference
from .render import all_families, exposition_name


def checks_table() -> str:
    rows = ["| check id | anti-pattern | title | severity | runbook |", "|---|---|---|---|---|"]
    for s in CHECKS:
        rows.append(f"| `{s.id}` | {s.anti_pattern} | {s.title} | {s.severity_rules} | "
                    f"[{s.id}](exporter/ov_exporter/checks/{s.id}/runbook.md) |")
    return "\n".join(rows)


def metrics_table() -> str:
    rows = ["| metric | type | labels | from | description |", "|---|---|---|---|---|"]
    for owner, fam in all_families():
        labels = ", ".join(f"`{label}`" for label in fam.labels) or "—"
        scope = " Per offending object, capped by `series-cap`." if fam.per_object else ""
        rows.append(f"| `{exposition_name(fam)}` | {fam.type} | {labels} | {owner} | {fam.help}{scope} |")
    return "\n".join(rows)


def config_table() -> str:
    readers: dict[str, list[str]] = {}
    for spec in CHECKS:
        for key in spec.settings:
            readers.setdefault(key, []).append(f"`{spec.id}`")
    rows = ["| key | default | type | read by |", "|---|---|---|---|"]
    for key, default, kind in reference():
        shown = f"`{default}`" if default else "—"
        rows.append(f"| `{key}` | {shown} | {kind} | {', '.join(readers.get(key, [])) or 'every check'} |")
    return "\n".join(rows)


def alerts_table(root: Path) -> str:
    """From the rule files in <repo>/alerts (not packaged: the README sits beside them)."""
    import yaml

    rows = ["| alert | severity | impact | for | summary | group |", "|---|---|---|---|---|---|"]
    for path in sorted((root / "alerts").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text()) or {}
        for group in doc.get("groups", []) if isinstance(doc, dict) else []:
            for rule in group.get("rules", []):
                if "alert" in rule:
                    name = rule["alert"]
                    labels = rule["labels"]
                    rows.append(f"| [`{name}`](alerts/runbooks/{name}.md) | {labels['severity']} | "
                                f"{labels.get('impact', '')} | {rule.get('for', '0s')} | "
                                f"{rule['annotations']['summary']} | {group['name']} |")
    return "\n".join(rows)


def coverage_table() -> str:
    from .coverage import UPSTREAM_ALERTS, coverage

    rows = ["| # | anti-pattern | check(s) | metrics | alerts | status |", "|---|---|---|---|---|---|"]
    for cov in coverage():
        families = [exposition_name(f) for s in cov.checks for f in s.families]
        alerts = sorted({a.name for s in cov.checks for a in s.alerts} | set(UPSTREAM_ALERTS.get(cov.number, ())))
        checks = ", ".join(f"[`{s.id}`](exporter/ov_exporter/checks/{s.id}/runbook.md)" for s in cov.checks) or "—"
        metrics = ", ".join(f"`{f}`" for f in families) or "—"
        alert_cell = ", ".join(f"[`{a}`](alerts/runbooks/{a}.md)" for a in alerts) or "—"
        status = cov.status + (f": {cov.not_observable}" if cov.not_observable else "")
        status = status.replace("|", "\\|")
        rows.append(f"| {cov.number} | {cov.title} | {checks} | {metrics} | {alert_cell} | {status} |")
    return "\n".join(rows)


SECTIONS = {"coverage": coverage_table, "checks": checks_table, "metrics": metrics_table, "config": config_table,
            "alerts": alerts_table}
NEEDS_ROOT = {"alerts"}


def update(text: str, root: Path | None = None) -> str:
    for name, build in SECTIONS.items():
        if name in NEEDS_ROOT:
            if root is None:
                continue
            build = lambda root=root, build=build: build(root)  # noqa: E731
        pattern = re.compile(rf"(<!-- BEGIN {name} -->\n).*?(<!-- END {name} -->)", re.S)
        if not pattern.search(text):
            raise SystemExit(f"README has no <!-- BEGIN {name} --> ... <!-- END {name} --> section")
        text = pattern.sub(lambda m: m.group(1) + build() + "\n" + m.group(2), text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true")
    parser.add_argument("readme", type=Path)
    args = parser.parse_args(argv)
    old = args.readme.read_text()
    new = update(old, args.readme.resolve().parent)
    if args.check:
        if new != old:
            sys.stderr.write(f"{args.readme}: reference tables are stale; run python -m ov_exporter.docs {args.readme}\n")
            return 1
        return 0
    args.readme.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
