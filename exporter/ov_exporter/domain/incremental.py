"""Results about every object of one kind, brought up to date after a change by judging
again only the objects the change concerns (ClusterState.per_changes)."""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Mapping, TypeVar

from ..records import KIND_BY_KEY
from ..store import Changed, ClusterState, uid_of

K = TypeVar("K")
V = TypeVar("V")
W = TypeVar("W")

# For a kind the judgements read besides their own: which objects (namespace, name) of the
# judged kind one changed object of it concerns; None: any change concerns every object.
Concerns = Callable[[ClusterState, Changed], Iterable[tuple[str, str]]] | None


def same_name(state: ClusterState, changed: Changed) -> Iterable[tuple[str, str]]:
    """A changed object concerns the judged object of its namespace and name (a VMI, its VM)."""
    return ((changed.namespace, changed.name),)


def per_object_of_kind(
    state: ClusterState,
    name: str,
    key: str,
    judge: Callable[[Any], V],
    reads: Mapping[str, Concerns],
    inputs: tuple = (),
) -> dict[str, V]:
    """uid -> `judge(record)` for every object of kind `key`, in the state's order of the
    kind. `judge` reads the record, the objects of the kinds in `reads` and `inputs`
    (settings, cluster-wide results) and nothing else; after a change, only the changed
    objects of `key` and the ones `reads` says the changed objects concern are judged
    again, and everything when `inputs` differ from the kept result's."""
    kinds = (key, *reads)

    def compute(s: ClusterState) -> dict[str, V]:
        kind = KIND_BY_KEY[key]
        return {uid_of(kind, r): judge(r) for r in s.of(key)}

    def update(s: ClusterState, kept: dict[str, V], changed: Mapping[str, tuple[Changed, ...]]) -> dict[str, V]:
        if any(reads[k] is None for k in changed if k != key):
            return compute(s)
        kind = KIND_BY_KEY[key]
        judged = dict(kept)
        for c in changed.get(key, ()):
            if c.record is None:
                judged.pop(c.uid, None)
        # Each object concerned judged once, however many changes concern it.
        again: dict[str, Any] = {c.uid: c.record for c in changed.get(key, ()) if c.record is not None}
        for other, objects in changed.items():
            if other == key:
                continue
            concerns = reads[other]
            assert concerns is not None
            for c in objects:
                for where in concerns(s, c):
                    record = s.get(key, *where)
                    if record is not None:
                        again.setdefault(uid_of(kind, record), record)
        for uid, record in again.items():
            judged[uid] = judge(record)
        return judged

    return state.per_changes(name, kinds, compute, update, inputs)


def per_value(state: ClusterState, name: str, source: Mapping[K, V], derive: Callable[[V], W]) -> dict[K, W]:
    """key -> `derive(value)` for every entry of `source` (e.g. per_object_of_kind's
    result), in its order, kept across evaluations: `derive` runs again only for the values
    that are not the very objects it last ran on. `derive` reads its value and nothing else."""
    memo = state.object_memo
    kept = memo.kinds_kept(name)
    if not state.generations or kept is None:
        before: Mapping[K, V] = {}
        derived: Mapping[K, W] = {}
    else:
        before, derived = kept[1]
        if before is source:
            return derived  # type: ignore[return-value]
    missing = object()
    out = {k: (derived[k] if before.get(k, missing) is v else derive(v)) for k, v in source.items()}
    if state.generations:
        memo.keep_kinds(name, (), (source, out))
    return out


def members(state: ClusterState, name: str, key: str, test: Callable[[Any], bool]) -> frozenset[tuple[str, str]]:
    """(namespace, name) of the objects of kind `key` for which `test(record)` holds (it
    reads the record and nothing else); brought up to date per changed object."""

    def compute(s: ClusterState) -> frozenset[tuple[str, str]]:
        return frozenset((r.metadata.namespace, r.metadata.name) for r in s.of(key) if test(r))

    def update(s: ClusterState, kept: frozenset, changed: Mapping[str, tuple[Changed, ...]]) -> frozenset:
        out = set(kept)
        for c in changed[key]:
            record = s.get(key, c.namespace, c.name)
            if record is not None and test(record):
                out.add((c.namespace, c.name))
            else:
                out.discard((c.namespace, c.name))
        return frozenset(out)

    return state.per_changes(name, (key,), compute, update)


def _placed(state: ClusterState, name: str, key: str, place: Callable[[Any], tuple[str, float] | None]) -> tuple:
    """(node -> objects there -> value, node -> sum of the values, object -> node)."""

    def compute(s: ClusterState) -> tuple[dict, dict, dict]:
        on: dict[str, dict[tuple[str, str], float]] = {}
        node_of: dict[tuple[str, str], str] = {}
        for r in s.of(key):
            placed = place(r)
            if placed is not None:
                where = (r.metadata.namespace, r.metadata.name)
                on.setdefault(placed[0], {})[where] = placed[1]
                node_of[where] = placed[0]
        return on, {node: math.fsum(values.values()) for node, values in on.items()}, node_of

    def update(s: ClusterState, kept: tuple[dict, dict, dict], changed: Mapping[str, tuple[Changed, ...]]) -> tuple:
        on, totals, node_of = dict(kept[0]), dict(kept[1]), dict(kept[2])
        touched: set[str] = set()
        for c in changed[key]:
            where = (c.namespace, c.name)
            record = s.get(key, *where)
            placed = place(record) if record is not None else None
            node = node_of.pop(where, None)
            if node is not None:
                values = on[node] = dict(on[node])
                del values[where]
                touched.add(node)
            if placed is not None:
                on[placed[0]] = {**on.get(placed[0], {}), where: placed[1]}
                node_of[where] = placed[0]
                touched.add(placed[0])
        for node in touched:
            if on.get(node):
                totals[node] = math.fsum(on[node].values())
            else:
                on.pop(node, None)
                totals.pop(node, None)
        return on, totals, node_of

    return state.per_changes(name, (key,), compute, update)


def per_node(
    state: ClusterState, name: str, key: str, place: Callable[[Any], tuple[str, float] | None]
) -> dict[str, float]:
    """node -> the sum of `place(record)[1]` over the objects of kind `key` that
    `place(record)` puts on that node (None: on none); `place` reads the record and nothing
    else. Sums are exact (math.fsum), so they do not depend on the objects' order; after a
    change only the sums of the nodes it concerns are taken again."""
    return _placed(state, name, key, place)[1]


def placed_on(
    state: ClusterState, name: str, key: str, place: Callable[[Any], tuple[str, float] | None]
) -> dict[str, dict[tuple[str, str], float]]:
    """node -> (namespace, name) -> `place(record)[1]` of the objects of kind `key` that
    `place(record)` puts there (see per_node)."""
    return _placed(state, name, key, place)[0]
