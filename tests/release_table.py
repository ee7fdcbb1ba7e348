"""The table of alerts/README.md that says, for every alert, which upstream metrics it
reads and on which supported KubeVirt releases it works, computed from the rules and
the contract (alerts/upstream-metrics.yaml). tests/test_upstream_contract.py checks
the README against it; `python -m tests.release_table` rewrites it."""

from __future__ import annotations

import sys

import promql_parser as pp

from . import upstream_contract as uc
from .test_upstream_contract import ALERTS, _upstream_leaves, resolves

README = ALERTS / "README.md"
BEGIN, END = "<!-- BEGIN release table (python -m tests.release_table) -->", "<!-- END release table -->"


def _span(releases: list[str]) -> str:
    every = uc.releases()
    if releases == every:
        return "every release"
    if not releases:
        return "none"
    if releases == every[every.index(releases[0]) :]:
        return f"{releases[0]} and later"
    return ", ".join(releases)


def rows() -> list[tuple[str, str, str]]:
    from .test_alerts import ALERT_RULES

    by_name: dict[str, list[str]] = {}
    for _, rule in ALERT_RULES:
        by_name.setdefault(rule["alert"], []).append(rule["expr"])
    out = []
    for name in sorted(by_name):
        exprs = by_name[name]
        leaves = sorted(set().union(*(_upstream_leaves(e) for e in exprs)) - {"up"})
        works = [r for r in uc.releases() if all(resolves(pp.parse(e), r) for e in exprs)]
        span = _span(works)
        partial = [(m, _span([r for r in uc.releases() if uc.exists(m, r)])) for m in leaves]
        partial = [f"`{m}`: {s}" for m, s in partial if s != "every release"]
        if partial:
            span += " (" + "; ".join(partial) + ")"
        reads = ", ".join(f"`{m}`" for m in leaves) if leaves else "none: the exporter's series"
        out.append((name, reads, span))
    return out


def render() -> str:
    lines = [BEGIN, "", "| alert | upstream metrics it reads | KubeVirt releases it works on |", "|---|---|---|"]
    lines += [f"| `{name}` | {reads} | {span} |" for name, reads, span in rows()]
    return "\n".join([*lines, "", END])


def current() -> str:
    text = README.read_text()
    return text[text.index(BEGIN) : text.index(END) + len(END)]


def main() -> int:
    text = README.read_text()
    README.write_text(text.replace(current(), render()))
    print(f"wrote the release table of {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
