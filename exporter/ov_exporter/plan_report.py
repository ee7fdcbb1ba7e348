"""`ov-exporter plan` output: table, Markdown change plan, JSON and VirtualMachineInstanceMigration
manifests; reading a JSON plan back for `--verify`."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

import yaml

from .domain.planmodel import EPSILON, VMKey, loads, utilisation
from .domain.planner import USAGE, MoveCheck, Plan
from .errors import OvError

FORMAT = "ov-exporter/rebalance-plan/v1"
GI = 2**30
# spec.addedNodeSelector of VirtualMachineInstanceMigration: kubevirt/kubevirt
# staging/src/kubevirt.io/api/core/v1/types.go, absent at v1.5.0 (and v1.5.x), present from
# v1.6.0 (first in v1.6.0-alpha.0). Older API servers prune the unknown field.
ADDED_NODE_SELECTOR_SINCE = (1, 6, 0)
PIN_LABEL = "kubernetes.io/hostname"
WATCH = (
    "ov-post-rebalance dashboard: CPU and memory spread and the per-node utilisation before/after",
    "OVRebalanceWatch* alerts (rebalance_watch): per-VM CPU ready/steal after the migrations",
    "migration_capacity and migration_readiness: failed or stuck migrations, VMs left unmovable",
    "cpu_overcommit / memory_overcommit: no node above its threshold after each wave",
)


def _version(text: str) -> tuple[int, ...] | None:
    m = re.match(r"v?(\d+)\.(\d+)\.(\d+)", text or "")
    return tuple(int(x) for x in m.groups()) if m else None


def pinning_note(version: str) -> str:
    v = _version(version)
    if v is None:
        return (
            "KubeVirt version unknown: spec.addedNodeSelector pins the target from KubeVirt v1.6.0; on older "
            "releases the API server drops it and the scheduler picks the target (check where each VM landed)."
        )
    if v < ADDED_NODE_SELECTOR_SINCE:
        return (
            f"KubeVirt {version} predates v1.6.0: the API server prunes spec.addedNodeSelector, so targets cannot "
            "be pinned; the scheduler picks each target (least-allocated scoring) and the plan's after-state is "
            "not guaranteed: check where each VM landed with --verify before the next wave."
        )
    return f"KubeVirt {version}: spec.addedNodeSelector pins each migration to its planned node."


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _seconds(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value / 60:.1f} min" if value >= 120 else f"{value:.0f} s"


def _pct(value: float) -> str:
    return f"{value:.0%}" if value != float("inf") else "inf"


def basis_text(plan: Plan) -> str:
    """What the plan's utilisation and spread measure, in one sentence."""
    basis = plan.load_basis
    if basis.kind != USAGE:
        return (
            "basis allocation: utilisation is of what the thresholds allow (CPU: physical cores x "
            "cpu-overcommit-max; memory: allocatable x memory-overcommit-max, guest memory plus virt-launcher "
            "overhead)"
        )
    at = _rfc3339(basis.at) if basis.at is not None else "a time the samples did not record"
    return (
        f"basis usage: measured node CPU and memory utilisation (node_exporter, {basis.window} window ending "
        f"{at}) of the logical CPUs and memory capacity; a moved VM takes its measured CPU rate and resident "
        "memory (KubeVirt) along, the rest of a node's use stays. The thresholds stay on allocation"
        + (
            f" ({len(basis.fallback_nodes)} node(s) and {len(basis.fallback_vms)} VM(s) without samples: notes)"
            if basis.fallback_nodes or basis.fallback_vms
            else ""
        )
    )


# ---------------------------------------------------------------- JSON


def to_dict(plan: Plan) -> dict[str, Any]:
    before = utilisation(plan.instance, {})
    after = utilisation(plan.instance, plan.assignment)
    used = _measured(plan)
    return {
        "format": FORMAT,
        "goal": plan.goal,
        "node": plan.node,
        "based_on": {
            "read_at": _rfc3339(plan.basis.read_at),
            "resource_versions": {"nodes": plan.basis.nodes, "vmis": plan.basis.vmis},
            "kubevirt_version": plan.kubevirt_version,
        },
        "spread": {
            "before": plan.spread_before,
            "after": plan.spread_after,
            "lower_bound": plan.lower_bound,
            "threshold": plan.threshold,
        },
        "basis": plan.load_basis.to_dict(),
        "limits": plan.limits,
        "nodes": [
            {
                "node": n.name,
                "in_spread": n.in_spread,
                "cpu_before": before[n.name][0],
                "memory_before": before[n.name][1],
                "cpu_after": after[n.name][0],
                "memory_after": after[n.name][1],
            }
            for n in plan.instance.nodes
        ],
        "waves": [
            {
                "wave": i,
                "expected_seconds": w.seconds,
                "moves": [
                    {
                        "namespace": m.key[0],
                        "vm": m.key[1],
                        "source": m.source,
                        "target": m.target,
                        "vcpus": m.cpu,
                        "memory_bytes": m.memory,
                        "predicted_seconds": m.seconds,
                        **({"used_cores": used[m.key][0], "used_memory_bytes": used[m.key][1]} if used else {}),
                    }
                    for m in w.moves
                ],
            }
            for i, w in enumerate(plan.waves, 1)
        ],
        "excluded": [
            {"namespace": v.key[0], "vm": v.key[1], "node": v.node, "reason": v.reason}
            for v in sorted([*plan.unmovable(), *plan.stranded], key=lambda v: (v.reason, v.key))
        ],
        "notes": [*plan.notes, pinning_note(plan.kubevirt_version)],
    }


def read_moves(path: str) -> tuple[list[tuple[VMKey, str, str]], dict[str, Any]]:
    """The moves of a JSON plan (in wave order) and its `based_on`; OvError naming the file
    and field when it is not one."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, ValueError) as exc:
        raise OvError(f"--verify {path}: cannot read a JSON plan: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise OvError(f"--verify {path}: format: expected {FORMAT!r} (write it with --output json)")
    moves = []
    waves = doc.get("waves")
    if not isinstance(waves, list):
        raise OvError(f"--verify {path}: waves: expected a list")
    for i, wave in enumerate(waves):
        listed = wave.get("moves") if isinstance(wave, dict) else None
        if not isinstance(listed, list):
            raise OvError(f"--verify {path}: waves[{i}].moves: expected a list")
        for j, move in enumerate(listed):
            where = f"--verify {path}: waves[{i}].moves[{j}]"
            if not isinstance(move, dict):
                raise OvError(f"{where}: expected an object")
            for field in ("namespace", "vm", "source", "target"):
                if not isinstance(move.get(field), str) or not move[field]:
                    raise OvError(f"{where}.{field}: expected a non-empty string")
            moves.append(((move["namespace"], move["vm"]), move["source"], move["target"]))
    return moves, doc.get("based_on") or {}


# ---------------------------------------------------------------- table and Markdown


def _headline(plan: Plan) -> str:
    goal = f"drain {plan.node}" if plan.goal == "drain" else plan.goal
    goal += f" ({plan.load_basis.kind})"
    bound = f", lower bound {_pct(plan.lower_bound)}" if plan.lower_bound is not None else ""
    return (
        f"goal {goal}: {len(plan.moves)} move(s) in {len(plan.waves)} wave(s); spread "
        f"{_pct(plan.spread_before)} -> {_pct(plan.spread_after)}{bound}"
    )


def to_table(plan: Plan) -> str:
    lines = [
        f"rebalance plan ({_headline(plan)}), state read at {_rfc3339(plan.basis.read_at)}",
        basis_text(plan),
    ]
    for i, wave in enumerate(plan.waves, 1):
        lines.append(f"wave {i} (expected {_seconds(wave.seconds)}):")
        for m in wave.moves:
            lines.append(
                f"  {m.key[0]}/{m.key[1]:<28} {m.source:>16} -> {m.target:<16} "
                f"{m.cpu:g} vCPU {m.memory / GI:6.1f} GiB  ~{_seconds(m.seconds)}"
            )
    before, after = utilisation(plan.instance, {}), utilisation(plan.instance, plan.assignment)
    lines.append(f"{'node':<20} {'cpu before':>10} {'cpu after':>10} {'mem before':>10} {'mem after':>10}")
    for n in plan.instance.nodes:
        mark = "" if n.in_spread else "  (not counted)"
        lines.append(
            f"{n.name:<20} {_pct(before[n.name][0]):>10} {_pct(after[n.name][0]):>10} "
            f"{_pct(before[n.name][1]):>10} {_pct(after[n.name][1]):>10}{mark}"
        )
    excluded = _excluded_counts(plan)
    if excluded:
        lines.append("not moved: " + ", ".join(f"{r} {c}" for r, c in excluded.items()))
    lines += plan.notes
    lines.append(pinning_note(plan.kubevirt_version))
    return "\n".join(lines) + "\n"


def _measured(plan: Plan) -> dict[VMKey, tuple[float, float]]:
    """On the usage basis, each VM's usage as the plan counts it (cores, bytes); else empty."""
    if plan.load_basis.kind != USAGE:
        return {}
    return {vm.key: (vm.spread_cpu, vm.spread_memory) for vm in plan.instance.vms}


def _excluded_counts(plan: Plan) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in [*plan.unmovable(), *plan.stranded]:
        counts[v.reason] = counts.get(v.reason, 0) + 1
    return dict(sorted(counts.items()))


def to_markdown(plan: Plan, max_excluded: int = 20) -> str:
    before, after = utilisation(plan.instance, {}), utilisation(plan.instance, plan.assignment)
    out = [
        "# Rebalance plan",
        "",
        f"**{_headline(plan)}.** {basis_text(plan)[0].upper()}{basis_text(plan)[1:]}.",
        "",
        *(
            [
                f"The lower bound ({_pct(plan.lower_bound)}) is proven: no plan that keeps every node within its "
                "limits reaches a smaller spread (the larger of a fluid bound and, where the solver is installed, "
                "the LP relaxation of the same model). The gap between it and the plan's spread is the most a "
                "better plan could gain.",
                "",
            ]
            if plan.lower_bound is not None
            else []
        ),
        f"Based on the cluster state read at {_rfc3339(plan.basis.read_at)} ({len(plan.basis.nodes)} nodes, "
        f"{len(plan.basis.vmis)} VMIs, resourceVersions in the JSON plan). Run "
        "`ov-exporter plan --verify PLAN.json` before each wave.",
        "",
        "## Before / after per node",
        "",
        "| node | CPU before | CPU after | memory before | memory after |",
        "|---|---:|---:|---:|---:|",
    ]
    for n in plan.instance.nodes:
        name = n.name if n.in_spread else f"{n.name} (not counted)"
        out.append(
            f"| {name} | {_pct(before[n.name][0])} | {_pct(after[n.name][0])} | "
            f"{_pct(before[n.name][1])} | {_pct(after[n.name][1])} |"
        )
    out += ["", "## Waves", ""]
    if not plan.waves:
        out.append("No moves.")
    used = _measured(plan)
    for i, wave in enumerate(plan.waves, 1):
        out += [
            f"### Wave {i} (expected {_seconds(wave.seconds)})",
            "",
            "| VM | from | to | vCPUs | memory |" + (" CPU used | memory used |" if used else "") + " predicted |",
            "|---|---|---|---:|---:|" + ("---:|---:|" if used else "") + "---:|",
        ]
        for m in wave.moves:
            measured = f" {used[m.key][0]:.2g} cores | {used[m.key][1] / GI:.1f} GiB |" if used else ""
            out.append(
                f"| {m.key[0]}/{m.key[1]} | {m.source} | {m.target} | {m.cpu:g} | {m.memory / GI:.1f} GiB |"
                f"{measured} {_seconds(m.seconds)} |"
            )
        out.append("")
    out += ["## Risks", ""]
    out += [f"- {r}" for r in _risks(plan)]
    out += ["", "## Not moved", ""]
    excluded = sorted([*plan.unmovable(), *plan.stranded], key=lambda v: (v.reason, v.key))
    if not excluded:
        out.append("Every running VM may move.")
    else:
        out.append(", ".join(f"{r}: {c}" for r, c in _excluded_counts(plan).items()) + ".")
        out.append("")
        for v in excluded[:max_excluded]:
            out.append(f"- {v.key[0]}/{v.key[1]} on {v.node}: {v.reason}")
        if len(excluded) > max_excluded:
            out.append(f"- ... {len(excluded) - max_excluded} more (see --output json)")
    out += ["", "## Watch after each wave", ""]
    out += [f"- {w}" for w in WATCH]
    out.append("")
    return "\n".join(out)


def _risks(plan: Plan) -> list[str]:
    risks = [pinning_note(plan.kubevirt_version)]
    load = loads(plan.instance, plan.assignment)  # the thresholds are on the capacity load (planmodel)
    over = [
        n.name
        for n in plan.instance.nodes
        if load[n.name][0] > n.cpu_capacity + EPSILON or load[n.name][1] > n.memory_capacity + EPSILON
    ]
    if over:
        risks.append(f"still above a threshold after the plan: {', '.join(over)} (their load does not move)")
    unknown = [m for m in plan.moves if m.seconds is None]
    if unknown:
        risks.append(f"{len(unknown)} move(s) without a predicted duration (no guest memory known)")
    slow = sorted((m for m in plan.moves if m.seconds is not None), key=lambda m: -(m.seconds or 0))[:3]
    if slow:
        risks.append("longest migrations: " + ", ".join(f"{m.key[0]}/{m.key[1]} {_seconds(m.seconds)}" for m in slow))
    risks += plan.notes
    return risks


# ---------------------------------------------------------------- manifests


def to_manifests(plan: Plan) -> str:
    """One VirtualMachineInstanceMigration per move, grouped by wave (apply one wave, wait,
    verify, then the next)."""
    docs = [f"# {_headline(plan)}\n# {pinning_note(plan.kubevirt_version)}\n"]
    for i, wave in enumerate(plan.waves, 1):
        docs.append(f"# ---- wave {i} of {len(plan.waves)} (expected {_seconds(wave.seconds)})\n")
        for m in wave.moves:
            manifest = {
                "apiVersion": "kubevirt.io/v1",
                "kind": "VirtualMachineInstanceMigration",
                "metadata": {
                    "generateName": f"rebalance-{m.key[1]}-"[:58],
                    "namespace": m.key[0],
                    "labels": {"ov-exporter.openshift.io/rebalance-wave": str(i)},
                    "annotations": {"ov-exporter.openshift.io/rebalance": f"{m.source} -> {m.target}"},
                },
                "spec": {
                    "vmiName": m.key[1],
                    "addedNodeSelector": {PIN_LABEL: plan.hostnames.get(m.target, m.target)},
                },
            }
            docs.append("---\n" + yaml.safe_dump(manifest, sort_keys=False))
    return "".join(docs)


# ---------------------------------------------------------------- verify


def verify_table(checks: list[MoveCheck], based_on: dict[str, Any], now: float) -> str:
    counts: dict[str, int] = {}
    for c in checks:
        counts[c.status] = counts.get(c.status, 0) + 1
    read_at = based_on.get("read_at", "unknown")
    lines = [
        f"plan read the cluster at {read_at}; checked at {_rfc3339(now)}: "
        + ", ".join(f"{s} {n}" for s, n in sorted(counts.items()))
    ]
    for c in checks:
        lines.append(f"  {c.status:<15} {c.key[0]}/{c.key[1]} {c.source} -> {c.target}: {c.detail}")
    return "\n".join(lines) + "\n"
