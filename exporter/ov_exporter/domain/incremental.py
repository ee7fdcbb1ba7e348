"""Results about every object of one kind, brought up to date after a change by judging
again only the objects the change concerns (ClusterState.per_changes), and checks' outputs
put together from such results and patched where they change (Assembled: in key order by
`assembled` and `tabled`, in their source's order by `joined` and `per_object_joined`)."""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from itertools import chain, compress, count, repeat, zip_longest
from operator import is_not, itemgetter
from typing import Any, Callable, Collection, Hashable, Iterable, Mapping, Sequence, TypeVar

from ..model import Finding, Sample
from ..records import KIND_BY_KEY
from ..store import Changed, ClusterState, uid_of

V = TypeVar("V")

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
        concerned = _concerned(s, key, reads, changed)
        if concerned is None:
            return compute(s)
        again, gone = concerned
        judged = dict(kept)
        for c in gone:
            judged.pop(c.uid, None)
        for uid, record in again.items():
            judged[uid] = judge(record)
        return judged

    return state.per_changes(name, kinds, compute, update, inputs)


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
    """(node -> objects there -> value, node -> sum of the values)."""

    def compute(s: ClusterState) -> tuple[dict, dict]:
        on: dict[str, dict[tuple[str, str], float]] = {}
        for where, r in s.index(key).items():  # the index's (namespace, name): no tuple of its own
            placed = place(r)
            if placed is not None:
                on.setdefault(placed[0], {})[where] = placed[1]
        return on, {node: math.fsum(values.values()) for node, values in on.items()}

    def update(s: ClusterState, kept: tuple[dict, dict], changed: Mapping[str, tuple[Changed, ...]]) -> tuple:
        on, totals = dict(kept[0]), dict(kept[1])
        objects = changed[key]
        # Where a changed object was: looked for among the nodes' objects; an index of every
        # object (a copy kept per change would cost as much) only for many changes.
        node_of = {where: node for node, values in on.items() for where in values} if len(objects) > 16 else None
        touched: set[str] = set()
        for c in objects:
            where = (c.namespace, c.name)
            record = s.get(key, *where)
            placed = place(record) if record is not None else None
            if node_of is not None:
                node = node_of.pop(where, None)
            else:
                node = next((n for n, values in on.items() if where in values), None)
            if node is not None:
                values = on[node] = dict(on[node])
                del values[where]
                touched.add(node)
            if placed is not None:
                on[placed[0]] = {**on.get(placed[0], {}), where: placed[1]}
                if node_of is not None:
                    node_of[where] = placed[0]
                touched.add(placed[0])
        for node in touched:
            if on.get(node):
                totals[node] = math.fsum(on[node].values())
            else:
                on.pop(node, None)
                totals.pop(node, None)
        return on, totals

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


@dataclass(frozen=True)
class Assembled:
    """A check's output put together from per-object values: per part (e.g. series,
    findings) every object's items concatenated in the objects' order, per number its sum.
    Kept across evaluations and patched where values change (`_patched`): never alter its
    lists."""

    lists: tuple[list, ...]  # per part: the objects' items, in their order
    totals: tuple[float, ...]  # per number: its sum over the objects (math.fsum; one a value lacks: 0)
    # key -> the object's value (not None); in the order when `ranks` is not None.
    values: dict[Hashable, Any] = field(repr=False)
    # key -> its place in the order (increasing, a new key's after every other);
    # None: the keys are sorted and are their own places.
    ranks: dict[Hashable, int] | None = field(repr=False)
    owners: tuple[list, ...] = field(repr=False)  # per list: the place of each item's object
    partials: tuple[list[float] | None, ...] = field(repr=False)  # per total: exact partials (None: not finite)


def assembled(
    state: ClusterState,
    name: str,
    key: str,
    judged: Mapping[str, V | None],
    reads: Mapping[str, Concerns],
    inputs: tuple,
    parts: Callable[[V], tuple[Sequence, ...]],
    numbers: Callable[[V], Sequence[float]] = lambda v: (),
) -> Assembled:
    """From `judged` (per_object_of_kind's result for the same kind, `reads` and `inputs`),
    over the objects whose value is not None: per part of `parts(value)` (e.g. series,
    findings) the items of every object concatenated in (namespace, name) order, and per
    number of `numbers(value)` its sum, exact and so whatever the order (math.fsum; a plain
    sum when a number is not finite). Kept, and after a change only the objects it concerns
    (as per_object_of_kind) are taken out and put in again: a few list copies and bisects,
    no loop over every object."""
    kind = KIND_BY_KEY[key]

    def compute(s: ClusterState) -> Assembled:
        return _assembled(((_name(r), judged[uid_of(kind, r)]) for r in s.of(key)), parts, numbers, True)

    def update(s: ClusterState, kept: Assembled, changed: Mapping[str, tuple[Changed, ...]]) -> Assembled:
        concerned = _concerned(s, key, reads, changed)
        if concerned is None:
            return compute(s)
        again, gone = concerned
        news: dict = {(c.namespace, c.name): None for c in gone}
        news.update((_name(r), judged[uid]) for uid, r in again.items())
        return _patched(kept, news, parts, numbers)

    return state.per_changes(f"{name} assembled", (key, *reads), compute, update, inputs)


def tabled(
    state: ClusterState,
    name: str,
    rows: Mapping[Any, tuple],
    judge: Callable[..., V | None],
    inputs: tuple,
    parts: Callable[[V], tuple[Sequence, ...]],
    numbers: Callable[[V], Sequence[float]] = lambda v: (),
) -> Assembled:
    """As `assembled`, over `rows` (a sortable key, e.g. a node's name -> the values its
    judgement reads, e.g. the node and its vCPUs) in key order: the values
    `judge(*row, *inputs)` that are not None. Kept (while `inputs` are the same); after a
    change only the rows that differ from the kept ones' are judged again. `judge` reads its
    arguments and nothing else."""
    memo = state.object_memo
    kept = memo.kinds_kept(f"{name} tabled") if state.generations else None
    if kept is None or kept[0] != inputs:
        out = _assembled(((w, judge(*row, *inputs)) for w, row in rows.items()), parts, numbers, True)
    else:
        before, out = kept[1]
        changed = _differing(before, rows) if before is not rows else ()
        if changed:
            news = {w: judge(*rows[w], *inputs) if w in rows else None for w in changed}
            out = _patched(out, news, parts, numbers)
    if state.generations:
        memo.keep_kinds(f"{name} tabled", inputs, (rows, out))
    return out


# One object's share of a check's output in its source's order (`joined`,
# `per_object_joined`): its series, its findings and its numbers (e.g. counts, summed).
Part = tuple[Sequence[Sample], Sequence[Finding], Sequence[float]]
NO_PART: Part = ((), (), ())
_PART_LISTS, _PART_NUMBERS = itemgetter(0, 1), itemgetter(2)


def joined(
    state: ClusterState,
    name: str,
    source: Mapping,
    derive: Callable[[Any], Part],
    since: tuple[Mapping, Collection] | None = None,
) -> Assembled:
    """The parts `derive(value)` of every entry of `source` (e.g. a verdict per VM, in
    the VMs' order) put together in that order (lists: series, findings), kept across
    evaluations: `derive` runs again only for the values that are not the very objects it
    last ran on, and the output is patched where those parts changed. `since`: an earlier
    source and the keys whose values may differ from it (gone ones included, no new one),
    every other key of `source` having the very value it had there, in the same order;
    without it the values are compared one by one. `derive` reads its value and nothing else; a part equal
    to the kept one stays that very part, so that its series stay the same objects for the
    runner."""
    memo = state.object_memo
    kept = memo.kinds_kept(name) if state.generations else None
    if kept is None:
        out = _assembled(((k, derive(v)) for k, v in source.items()), _PART_LISTS, _PART_NUMBERS)
    else:
        before, out = kept[1]
        if before is source:
            return out
        keys: Iterable | None = None
        if since is not None and since[0] is before:
            keys = since[1]
        elif len(before) == len(source) and list(before) == list(source):
            keys = compress(source, map(is_not, source.values(), before.values()))
        if keys is None:  # objects came or went: in the source's order
            parts = ((k, out.values[k] if before.get(k, _MISSING) is v else derive(v)) for k, v in source.items())
            out = _assembled(parts, _PART_LISTS, _PART_NUMBERS)
        else:
            news = {k: _unless_kept(out, k, derive(source[k])) if k in source else None for k in keys}
            out = _patched(out, news, _PART_LISTS, _PART_NUMBERS)
    if state.generations:
        memo.keep_kinds(name, (), (source, out))
    return out


def per_object_joined(
    state: ClusterState,
    name: str,
    key: str,
    judge: Callable[[Any], Part],
    reads: Mapping[str, Concerns],
    inputs: tuple = (),
) -> Assembled:
    """`judge(record)` for every object of kind `key`, put together as `joined` does
    (keyed by uid, in the state's order of the kind, a new object's last), kept and brought
    up to date as per_object_of_kind does: after a change, only the changed objects of `key`
    and the ones `reads` says the changed objects of other kinds concern (None: all) are
    judged again, everything when `inputs` differ."""
    kind = KIND_BY_KEY[key]

    def compute(s: ClusterState) -> Assembled:
        return _assembled(((uid_of(kind, r), judge(r)) for r in s.of(key)), _PART_LISTS, _PART_NUMBERS)

    def update(s: ClusterState, kept: Assembled, changed: Mapping[str, tuple[Changed, ...]]) -> Assembled:
        concerned = _concerned(s, key, reads, changed)
        if concerned is None:
            return compute(s)
        again, gone = concerned
        news: dict = dict.fromkeys(c.uid for c in gone)
        news.update((uid, _unless_kept(kept, uid, judge(r))) for uid, r in again.items())
        return _patched(kept, news, _PART_LISTS, _PART_NUMBERS)

    return state.per_changes(name, (key, *reads), compute, update, inputs)


def _unless_kept(kept: Assembled, key: Hashable, part: Part) -> Part:
    """The kept part of `key` when `part` equals it, else `part`."""
    old = kept.values.get(key)
    return old if old is not None and old == part else part


def _concerned(
    s: ClusterState, key: str, reads: Mapping[str, Concerns], changed: Mapping[str, tuple[Changed, ...]]
) -> tuple[dict[str, Any], list[Changed]] | None:
    """The objects of kind `key` to judge again after `changed`: uid -> record of the changed
    ones and of those `reads` says the changes of other kinds concern, each once; and the
    changes that deleted one. None when a change concerns every object."""
    if any(reads[k] is None for k in changed if k != key):
        return None
    kind = KIND_BY_KEY[key]
    own = changed.get(key, ())
    again: dict[str, Any] = {c.uid: c.record for c in own if c.record is not None}
    for other, objects in changed.items():
        if other != key:
            concerns = reads[other]
            assert concerns is not None
            for c in objects:
                for where in concerns(s, c):
                    record = s.get(key, *where)
                    if record is not None:
                        again.setdefault(uid_of(kind, record), record)
    return again, [c for c in own if c.record is None]


def _differing(before: Mapping, after: Mapping) -> list:
    """The keys whose values are not the same in both (or that only one has)."""
    out = [k for k, v in after.items() if not _same_row(before.get(k, _MISSING), v)]
    out += [k for k in before if k not in after]
    return out


def _same_row(before: Any, after: Any) -> bool:
    """Equal, and of a row's floats the same sign of zero: 0.0 == -0.0, but a judgement may
    print them apart ("0" and "-0"), so a row where one became the other is judged again."""
    if before is after:
        return True
    if before != after:
        return False
    if isinstance(before, tuple):
        return all(
            x is y or not isinstance(x, float) or math.copysign(1.0, x) == math.copysign(1.0, y)
            for x, y in zip(before, after)
        )
    return True


_MISSING = object()
_FIRST = itemgetter(0)


def _assembled(
    items: Iterable[tuple[Hashable, Any]],
    parts: Callable[[Any], tuple[Sequence, ...]],
    numbers: Callable[[Any], Sequence[float]],
    by_key: bool = False,
) -> Assembled:
    """The output of the (key, value) pairs whose value is not None, in key order when
    `by_key`, else in theirs (a value with fewer numbers than another: zeros for the rest)."""
    pairs = [item for item in items if item[1] is not None]
    if by_key:
        pairs.sort(key=_FIRST)
    values = dict(pairs)
    ranks = None if by_key else dict(zip(values, count()))
    places = list(values) if ranks is None else list(ranks.values())  # the ranks' own ints, not copies
    split = list(map(parts, values.values()))
    width = len(split[0]) if split else 0
    lists = tuple(list(chain.from_iterable(map(itemgetter(j), split))) for j in range(width))
    owners = tuple(
        list(chain.from_iterable(map(repeat, places, map(len, map(itemgetter(j), split))))) for j in range(width)
    )
    columns = zip_longest(*filter(None, map(numbers, values.values())), fillvalue=0.0)
    partials, totals = tuple(zip(*map(_exact, columns))) or ((), ())
    return Assembled(lists, totals, values, ranks, owners, partials)


def _patched(
    kept: Assembled,
    news: Mapping[Hashable, Any],
    parts: Callable[[Any], tuple[Sequence, ...]],
    numbers: Callable[[Any], Sequence[float]],
) -> Assembled:
    """`kept` with the value of each key of `news` replaced by its value there (None: none):
    its items taken out and the new ones put in at its place (a new key's: among the
    sorted keys, or after every other), its numbers taken from and added to the sums."""
    news = {k: v for k, v in news.items() if kept.values.get(k) is not v}
    if not news:
        return kept
    values, ranks = dict(kept.values), dict(kept.ranks) if kept.ranks is not None else None
    lists, owners = [list(x) for x in kept.lists], [list(x) for x in kept.owners]
    sums = [list(p) if p is not None else None for p in kept.partials]
    for key, new in news.items():
        old = values.get(key)
        if ranks is None:
            place = key
        elif old is not None:
            place = ranks[key]
        else:  # after every other
            place = ranks[key] = next(reversed(ranks.values()), -1) + 1
        if old is not None:
            for partials, x in zip(sums, numbers(old)):
                _add(partials, -x)
        if new is None:
            del values[key]
            if ranks is not None:
                del ranks[key]
            for items, by in zip(lists, owners):
                lo, hi = bisect_left(by, place), bisect_right(by, place)
                del items[lo:hi], by[lo:hi]
            continue
        values[key] = new  # a key that stays keeps its place in `values`
        split, added = parts(new), numbers(new)
        lists += [[] for _ in split[len(lists) :]]
        owners += [[] for _ in split[len(owners) :]]
        sums += [[] for _ in added[len(sums) :]]
        for items, by, part in zip(lists, owners, split):
            lo = bisect_left(by, place)
            hi = bisect_right(by, place, lo) if old is not None else lo
            items[lo:hi] = part
            by[lo:hi] = [place] * len(part)
        for partials, x in zip(sums, added):
            _add(partials, x)
    if not values or not all(p is not None and all(map(_small, p)) for p in sums):
        return _assembled(values.items(), parts, numbers, ranks is None)  # not exact: from the values
    totals = tuple(math.fsum(p) + 0.0 for p in sums)
    return Assembled(tuple(lists), totals, values, ranks, tuple(owners), tuple(sums))


def _small(x: float) -> bool:
    """Finite and far from overflow: exact in partial sums (_add)."""
    return abs(x) <= 2.0**1000


def _exact(column: Sequence[float]) -> tuple[list[float] | None, float]:
    """(partials whose exact sum is the column's, its math.fsum); (None, a plain sum) when a
    value is not finite or so large that exact partials could overflow."""
    try:
        small = math.fsum(map(abs, column)) <= 2.0**1000  # C-level: no NaN, infinity or near-overflow
    except OverflowError:
        small = False
    if not small:
        try:
            return None, math.fsum(column) + 0.0
        except (ValueError, OverflowError):
            return None, sum(column, 0.0)
    partials: list[float] = []
    while residue := math.fsum(chain(column, (-p for p in partials))):
        partials.append(residue)
    return partials, math.fsum(partials) + 0.0


def _add(partials: list[float] | None, x: float) -> None:
    """Add `x` to `partials` exactly (Shewchuk's algorithm, as in math.fsum)."""
    if partials is None:
        return
    if not _small(x):
        partials.append(math.inf)  # not exact any more: the total is taken again
        return
    i = 0
    for y in partials:
        if abs(x) < abs(y):
            x, y = y, x
        hi = x + y
        lo = y - (hi - x)
        if lo:
            partials[i] = lo
            i += 1
        x = hi
    partials[i:] = [x]


def _name(record: Any) -> tuple[str, str]:
    return record.metadata.namespace, record.metadata.name
