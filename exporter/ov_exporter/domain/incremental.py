"""Results about every object of one kind, brought up to date after a change by judging
again only the objects the change concerns (ClusterState.per_changes), and checks' outputs
put together from such results and patched where they change (`assembled`, `tabled`,
`joined`)."""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field, replace
from itertools import accumulate, chain, compress
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
        for r in s.of(key):
            placed = place(r)
            if placed is not None:
                on.setdefault(placed[0], {})[(r.metadata.namespace, r.metadata.name)] = placed[1]
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
    """A check's output assembled from its per-object results (see `assembled`). Kept:
    never alter its lists."""

    lists: tuple[list, ...]  # per part: the objects' items, concatenated in name order
    totals: tuple[float, ...]  # per number: its sum over the objects (math.fsum)


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

    def compute(s: ClusterState) -> _Assembly:
        kind = KIND_BY_KEY[key]
        named = ((_name(r), judged[uid_of(kind, r)]) for r in s.of(key))
        return _assembly(sorted(((n, v) for n, v in named if v is not None), key=_FIRST), parts, numbers)

    def update(s: ClusterState, kept: _Assembly, changed: Mapping[str, tuple[Changed, ...]]) -> _Assembly:
        if any(reads[k] is None for k in changed if k != key):
            return compute(s)
        kind = KIND_BY_KEY[key]
        again = {(c.namespace, c.name) for c in changed.get(key, ())}
        for other, objects in changed.items():
            if other != key:
                concerns = reads[other]
                assert concerns is not None
                for c in objects:
                    again.update(concerns(s, c))
        records = {where: s.get(key, *where) for where in again}
        news = {where: judged[uid_of(kind, r)] if r is not None else None for where, r in records.items()}
        return _reassembled(kept, news, parts, numbers)

    kept = state.per_changes(f"{name} assembled", (key, *reads), compute, update, inputs)
    return Assembled(kept.lists, tuple(total for _, total in kept.sums))


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
        judged = ((where, judge(*row, *inputs)) for where, row in rows.items())
        assembly = _assembly(sorted(((w, v) for w, v in judged if v is not None), key=_FIRST), parts, numbers)
    else:
        before, assembly = kept[1]
        if before is not rows and before != rows:
            news = {w: judge(*rows[w], *inputs) if w in rows else None for w in _differing(before, rows)}
            assembly = _reassembled(assembly, news, parts, numbers)
    if state.generations:
        memo.keep_kinds(f"{name} tabled", inputs, (rows, assembly))
    return Assembled(assembly.lists, tuple(total for _, total in assembly.sums))


def _differing(before: Mapping, after: Mapping) -> list:
    """The keys whose values are not the same in both (or that only one has)."""
    out = [k for k, v in after.items() if before.get(k, _MISSING) != v]
    out += [k for k in before if k not in after]
    return out


_MISSING = object()
_FIRST = itemgetter(0)


@dataclass(frozen=True)
class _Assembly:
    names: list[tuple[str, str]]  # of the objects with a value, sorted
    values: list[Any]  # theirs
    lists: tuple[list, ...]  # see Assembled
    owners: tuple[list, ...]  # per list: the name of the object each item is of
    sums: tuple[tuple[list[float] | None, float], ...]  # per number: exact partials (None: not finite), total


def _assembly(
    items: list[tuple[Any, Any]],
    parts: Callable[[Any], tuple[Sequence, ...]],
    numbers: Callable[[Any], Sequence[float]],
) -> _Assembly:
    """The assembly of (key, value) pairs sorted by key, values not None."""
    names, values = [w for w, _ in items], [v for _, v in items]
    split = [parts(v) for v in values]
    width = len(split[0]) if split else 0
    lists = tuple(list(chain.from_iterable(p[j] for p in split)) for j in range(width))
    owners = tuple([w for w, p in zip(names, split) for _ in p[j]] for j in range(width))
    sums = tuple(_exact(column) for column in zip(*map(numbers, values)))
    return _Assembly(names, values, lists, owners, sums)


def _reassembled(
    kept: _Assembly,
    news: Mapping[Any, Any],
    parts: Callable[[Any], tuple[Sequence, ...]],
    numbers: Callable[[Any], Sequence[float]],
) -> _Assembly:
    """`kept` with the value of each key of `news` replaced by its value there (None: none)."""
    names, values = list(kept.names), list(kept.values)
    lists, owners = [list(x) for x in kept.lists], [list(x) for x in kept.owners]
    sums = [list(partials) if partials is not None else None for partials, _ in kept.sums]
    for where, new in news.items():
        at = bisect_left(names, where)
        old = values[at] if at < len(names) and names[at] == where else None
        if old is new:
            continue
        if old is not None:
            del names[at], values[at]
            for items, by in zip(lists, owners):
                lo, hi = bisect_left(by, where), bisect_right(by, where)
                del items[lo:hi], by[lo:hi]
            for partials, x in zip(sums, numbers(old)):
                _add(partials, -x)
        if new is not None:
            if not values and not lists:  # the first value: as many parts and numbers as it has
                lists, owners = [[] for _ in parts(new)], [[] for _ in parts(new)]
                sums = [[] for _ in numbers(new)]
            names.insert(at, where)
            values.insert(at, new)
            for items, by, part in zip(lists, owners, parts(new)):
                lo = bisect_left(by, where)
                items[lo:lo] = part
                by[lo:lo] = [where] * len(part)
            for partials, x in zip(sums, numbers(new)):
                _add(partials, x)
    if not values:
        return _assembly([], parts, numbers)
    totals = []
    for j, partials in enumerate(sums):
        if partials is None or not all(map(_small, partials)):
            totals.append(_exact([numbers(v)[j] for v in values]))
        else:
            totals.append((partials, math.fsum(partials) + 0.0))
    return _Assembly(names, values, tuple(lists), tuple(owners), tuple(totals))


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


# ---------------------------------------------------------------- joined parts
# A check's output as per-object parts in the order of their source (the store's order of
# the kind, or of a derived mapping), with integer counts; patched in place where parts
# change. (`assembled` above: in name order, with exact float sums.)

# One object's share of a check's output: its series, its findings and what it adds to
# the check's counts (count name -> amount).
Part = tuple[Sequence[Sample], Sequence[Finding], Mapping[str, int]]
NO_PART: Part = ((), (), {})


@dataclass(frozen=True)
class Joined:
    """A check's per-object parts and their concatenation (see `joined`)."""

    source: Mapping | None  # key -> what the parts were derived from (joined)
    parts: dict[Hashable, Part]  # in the objects' order
    samples: list[Sample]  # every part's series, in that order
    findings: list[Finding]
    totals: dict[str, int]  # count name -> the sum over the parts
    # Where each part's series and findings start in the lists: key -> position in
    # `parts`, then the running sums of the parts' lengths.
    index: dict[Hashable, int] = field(compare=False)
    sample_at: list[int] = field(compare=False)
    finding_at: list[int] = field(compare=False)


def joined(
    state: ClusterState,
    name: str,
    source: Mapping,
    derive: Callable[[Any], Part],
    since: tuple[Mapping, Collection] | None = None,
) -> Joined:
    """The parts `derive(value)` of every entry of `source` (e.g. a verdict per VM, in
    the VMs' order) and their series, findings and counts put together, kept across
    evaluations: `derive` runs again only for the values that are not the very objects it
    last ran on, and the lists are patched where those parts changed. `since`: an earlier
    source and the keys whose values may differ from it (gone ones included), every other
    key of `source` having the very value it had there, in the same order; without it the
    values are compared one by one. `derive` reads its value and nothing else; a part equal
    to the kept one stays that very part, so that its series stay the same objects for the
    runner."""
    memo = state.object_memo
    kept = memo.kinds_kept(name) if state.generations else None
    if kept is None:
        out = _join(source, {k: derive(v) for k, v in source.items()})
    elif kept[1].source is source:
        return kept[1]
    elif since is not None and since[0] is kept[1].source:
        keys = since[1]
        new = {k: derive(source[k]) for k in keys if k in source}
        out = _patched(kept[1], source, new, [k for k in keys if k not in source])
    else:
        out = _rejoined(kept[1], source, derive)
    if state.generations:
        memo.keep_kinds(name, (), out)
    return out


def per_object_joined(
    state: ClusterState,
    name: str,
    key: str,
    judge: Callable[[Any], Part],
    reads: Mapping[str, Callable[[ClusterState, Changed], Iterable[tuple[str, str]]] | None],
    inputs: tuple = (),
) -> Joined:
    """`judge(record)` for every object of kind `key`, put together as `joined` does
    (keyed by uid, in the state's order of the kind), kept and brought up to date as
    incremental.per_object_of_kind does: after a change, only the changed objects of `key`
    and the ones `reads` says the changed objects of other kinds concern (None: all) are
    judged again, everything when `inputs` differ."""
    kind = KIND_BY_KEY[key]

    def compute(s: ClusterState) -> Joined:
        return _join(None, {uid_of(kind, r): judge(r) for r in s.of(key)})

    def update(s: ClusterState, kept: Joined, changed: Mapping[str, tuple[Changed, ...]]) -> Joined:
        if any(reads[k] is None for k in changed if k != key):
            return compute(s)
        own = changed.get(key, ())
        again: dict[str, Any] = {c.uid: c.record for c in own if c.record is not None}
        for other, objects in changed.items():
            if other != key:
                for c in objects:
                    for where in reads[other](s, c):  # type: ignore[misc]
                        record = s.get(key, *where)
                        if record is not None:
                            again.setdefault(uid_of(kind, record), record)
        new = {uid: judge(record) for uid, record in again.items()}
        return _patched(kept, None, new, [c.uid for c in own if c.record is None])

    return state.per_changes(name, (key, *reads), compute, update, inputs)


def _join(source: Mapping | None, parts: dict[Hashable, Part], totals: dict[str, int] | None = None) -> Joined:
    if totals is None:
        totals = {}
        for counts in map(itemgetter(2), parts.values()):
            for count, n in counts.items():
                totals[count] = totals.get(count, 0) + n
    samples = list(chain.from_iterable(map(itemgetter(0), parts.values())))
    findings = list(chain.from_iterable(map(itemgetter(1), parts.values())))
    index = dict(zip(parts, range(len(parts))))
    sample_at = list(accumulate(map(len, map(itemgetter(0), parts.values())), initial=0))
    finding_at = list(accumulate(map(len, map(itemgetter(1), parts.values())), initial=0))
    return Joined(source, parts, samples, findings, totals, index, sample_at, finding_at)


def _rejoined(kept: Joined, source: Mapping, derive: Callable[[Any], Part]) -> Joined:
    """`kept` brought up to `source` by comparing their values one by one."""
    before = kept.source or {}
    if len(before) != len(source) or list(before) != list(source):  # objects came or went
        parts = {k: kept.parts[k] if before.get(k, _MISSING) is v else derive(v) for k, v in source.items()}
        return _join(source, parts)
    new = {k: derive(source[k]) for k in compress(source, map(is_not, source.values(), before.values()))}
    return _patched(kept, source, new)


def _patched(kept: Joined, source: Mapping | None, new: dict[Hashable, Part], gone: Iterable = ()) -> Joined:
    """`kept` without the parts of the keys `gone` (first), with the parts `new`: in place
    for the keys it has, at the end for the others (as the store orders objects that came,
    or came back)."""
    gone = [k for k in gone if k in kept.parts]
    new = {k: p for k, p in new.items() if k in gone or kept.parts.get(k, _MISSING) != p}
    if not new and not gone:
        return replace(kept, source=source)
    totals = dict(kept.totals)
    for key in (*gone, *(k for k in new if k not in gone and k in kept.parts)):
        for count, n in kept.parts[key][2].items():
            totals[count] -= n
    for part in new.values():
        for count, n in part[2].items():
            totals[count] = totals.get(count, 0) + n
    parts = dict(kept.parts)
    if gone or any(k not in parts for k in new):  # the order changed
        for key in gone:
            del parts[key]
        parts.update(new)
        return _join(source, parts, totals)
    parts.update(new)
    samples, findings = list(kept.samples), list(kept.findings)
    sample_at, finding_at = kept.sample_at, kept.finding_at
    for key, part in new.items():
        i = kept.index[key]
        if sample_at[i + 1] - sample_at[i] != len(part[0]) or finding_at[i + 1] - finding_at[i] != len(part[1]):
            return _join(source, parts, totals)  # a part grew or shrank: every later one moved
        samples[sample_at[i] : sample_at[i + 1]] = part[0]
        findings[finding_at[i] : finding_at[i + 1]] = part[1]
    return Joined(source, parts, samples, findings, totals, kept.index, sample_at, finding_at)
