"""Results about every object of one kind, brought up to date after a change by judging
again only the objects the change concerns (ClusterState.per_changes)."""

from __future__ import annotations

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
        for c in changed.get(key, ()):
            if c.record is not None:
                judged[c.uid] = judge(c.record)
        for other, objects in changed.items():
            if other == key:
                continue
            concerns = reads[other]
            assert concerns is not None
            for c in objects:
                for where in concerns(s, c):
                    record = s.get(key, *where)
                    if record is not None:
                        judged[uid_of(kind, record)] = judge(record)
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
