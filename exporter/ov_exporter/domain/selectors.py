"""Kubernetes selector semantics shared by the checks: label selectors (namespaces,
health checks), node selector terms (node affinity) and taints versus tolerations.
Pure functions over records."""

from __future__ import annotations

from typing import Any, Iterable

from ..records import Taint


def _requirement(labels: dict[str, str], req: Any, *, numeric: bool) -> bool:
    """One matchExpressions entry. Unknown operators match nothing (the API rejects them)."""
    op, key, values = req.operator, req.key, req.values or []
    present = key in labels
    if op == "In":
        return present and labels[key] in values
    if op == "NotIn":
        return not present or labels[key] not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if numeric and op in ("Gt", "Lt") and present and len(values) == 1:
        try:
            have, want = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


def label_selector_matches(selector: Any, labels: dict[str, str]) -> bool:
    """metav1.LabelSelector: matchLabels AND matchExpressions; an empty selector matches all."""
    for key, value in (selector.match_labels or {}).items():
        if labels.get(key) != value:
            return False
    return all(_requirement(labels, req, numeric=False) for req in selector.match_expressions or [])


def node_term_matches(term: Any, node_name: str, labels: dict[str, str]) -> bool:
    """A NodeSelectorTerm: all its expressions and fields; an empty term matches no node."""
    exprs, fields = term.match_expressions or [], term.match_fields or []
    if not exprs and not fields:
        return False
    if not all(_requirement(labels, req, numeric=True) for req in exprs):
        return False
    return all(
        req.key == "metadata.name" and _requirement({"metadata.name": node_name}, req, numeric=False) for req in fields
    )


def tolerates(tolerations: Iterable[Any], taint: Taint) -> bool:
    for tol in tolerations:
        if tol.effect and tol.effect != taint.effect:
            continue
        if tol.operator == "Exists":
            if not tol.key or tol.key == taint.key:
                return True
        elif tol.key == taint.key and tol.value == taint.value:  # operator Equal (the default)
            return True
    return False
