"""The runner: runs the checks (registered in checks/__init__.py) against one
ClusterState: times them, isolates failures, applies exemptions, namespace filters
and the per-check series cap."""

from __future__ import annotations

import gc
import logging
import time
from bisect import bisect_left, insort
from collections import Counter
from dataclasses import dataclass, field
from itertools import chain, compress, count, islice
from operator import attrgetter, is_not, itemgetter
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Sequence

from .checks import CHECKS
from .config import Config
from .model import CheckSpec, Finding, NotApplicable, ObjectRef, Sample, Severity, Status
from .records import KIND_BY_KEY, KINDS
from .store import Changed, ClusterState

log = logging.getLogger(__name__)

_KEY_BY_KIND = {k.kind: k.key for k in KINDS}
_OBJ, _KIND = attrgetter("obj"), attrgetter("kind")


@dataclass
class CheckResult:
    spec: CheckSpec
    status: Status
    error: str = ""
    duration: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    dropped: int = 0  # per-object series dropped by the cap in this evaluation
    exempted: int = 0


@dataclass
class Evaluation:
    results: list[CheckResult]
    started: float
    duration: float

    @property
    def findings(self) -> list[Finding]:
        """All findings, worst first."""
        items = [f for r in self.results for f in r.findings]
        return sorted(items, key=lambda f: (-f.severity, f.check, f.obj.namespace, f.obj.name))

    def worst(self) -> Severity | None:
        return max((f.severity for f in self.findings), default=None)

    def result(self, check_id: str) -> CheckResult:
        for r in self.results:
            if r.spec.id == check_id:
                return r
        raise KeyError(check_id)


def exemptions(state: ClusterState, key: str, annotation: str) -> dict[tuple[str, str], frozenset[str]]:
    """(namespace, name) -> the check ids (or `*`, `all`) an object of kind `key` is exempt
    from, for the objects that carry the exemption annotation; brought up to date by the
    objects of the kind that changed (state.per_changes)."""

    def ids(record: Any) -> frozenset[str] | None:
        value = (record.metadata.annotations or {}).get(annotation)
        return frozenset(p.strip() for p in value.split(",")) if value else None

    def table(s: ClusterState) -> dict[tuple[str, str], frozenset[str]]:
        out = {}
        for record in s.of(key):
            if (found := ids(record)) is not None:
                out[(record.metadata.namespace, record.metadata.name)] = found
        return out

    def update(s: ClusterState, kept: dict, changed: Mapping[str, tuple[Changed, ...]]) -> dict:
        out = dict(kept)
        for c in changed[key]:
            where = (c.namespace, c.name)
            record = s.get(key, *where)  # the one the state holds under that name now, if any
            found = ids(record) if record is not None else None
            if found is None:
                out.pop(where, None)
            else:
                out[where] = found
        return out

    return state.per_changes(f"exemptions {key} {annotation}", (key,), table, update)


class _Filter:
    """Namespace include/exclude and the exemption annotation, applied to findings and
    to per-object series alike. Per check, the objects exempt from it are gathered once from
    the exemption tables (few objects carry the annotation), so that judging one finding is
    one set lookup, and none at all when nothing is exempt and no namespace is filtered."""

    def __init__(self, state: ClusterState, config: Config) -> None:
        self.state, self.config = state, config
        self._tables: dict[str, dict[tuple[str, str], frozenset[str]]] | None = None
        self._exempt: dict[str, frozenset[tuple[str, str, str]]] = {}
        self._selected: dict[str, bool] = {}
        self._namespaces_filtered = bool(config.namespaces.include or config.namespaces.exclude)

    def exempt(self, check_id: str) -> frozenset[tuple[str, str, str]]:
        """(kind, namespace, name) of every object exempt from `check_id` (a VMI also
        honours its VM's exemption)."""
        found = self._exempt.get(check_id)
        if found is not None:
            return found
        if self._tables is None:
            annotation = self.config.exemption_annotation
            self._tables = {kind: exemptions(self.state, key, annotation) for kind, key in _KEY_BY_KIND.items()}
        out = set()
        for kind, table in self._tables.items():
            for (namespace, name), ids in table.items():
                if check_id in ids or "*" in ids or "all" in ids:
                    out.add((kind, namespace, name))
                    if kind == "VirtualMachine":
                        out.add(("VirtualMachineInstance", namespace, name))
        found = self._exempt[check_id] = frozenset(out)
        return found

    def passes_all(self, check_id: str) -> bool:
        """Every object passes: no namespace filter, nothing exempt from the check."""
        return not self._namespaces_filtered and not self.exempt(check_id)

    def keep(self, check_id: str, obj: ObjectRef | None) -> bool:
        if obj is None:
            return True
        if self._namespaces_filtered:
            selected = self._selected.get(obj.namespace)
            if selected is None:
                selected = self._selected[obj.namespace] = self.config.namespace_selected(obj.namespace)
            if not selected:
                return False
        exempt = self.exempt(check_id)
        return not exempt or (obj.kind, obj.namespace, obj.name) not in exempt


def _unavailable(spec: CheckSpec, state: ClusterState) -> CheckResult | None:
    """A check whose inputs the source could not get (denied, credentials rejected,
    failing or stale): failed; whose optional API is absent: not_applicable."""
    kinds = (*spec.requires, *spec.reads)
    denied = [state.forbidden[k] for k in kinds if k in state.forbidden]
    denied += [f"{KIND_BY_KEY[k].kind}: {state.unavailable[k]}" for k in kinds if k in state.unavailable]
    if denied:
        return CheckResult(spec, Status.FAILED, "; ".join(denied))
    if spec.uses_samples and state.samples_error:
        return CheckResult(spec, Status.FAILED, f"metric source: {state.samples_error}")
    missing = [state.absent[k] for k in spec.requires if k in state.absent]
    if missing:
        return CheckResult(spec, Status.NOT_APPLICABLE, "; ".join(missing))
    return None


@dataclass(frozen=True)
class _Ranking:
    """A check's per-object samples that passed the filter, grouped by object (or label
    set), and the objects in the cap's order: rank, then name (see _worst). Brought up to
    date per sample added or removed (_Ranking.updated); never altered once made. An object
    is known by a number so that the loops over every sample hash ints, not ObjectRefs."""

    seq_of: dict  # object (s.obj or s.labels) -> its number
    members: dict[int, tuple[Sample, ...]]  # number -> its samples
    entry: dict[int, tuple]  # number -> its (rank, name, number) in `ranked`
    ranked: list[tuple]  # (rank, name, number) of every object, sorted
    names: frozenset[str]  # str() of every object
    count: int  # the members, all told
    next_seq: int
    touched: frozenset[int] = frozenset()  # the objects whose members the last update changed

    @staticmethod
    def of(per_object: list[Sample], order: dict[str, int]) -> _Ranking | None:
        """None when the ranking cannot keep the order: a NaN value, or two objects of one
        name (the cap then orders them by first appearance, see _worst)."""
        seq_of: dict = {}
        grouped: dict[int, list[Sample]] = {}
        for s in per_object:
            key = s.obj or s.labels
            seq = seq_of.get(key)
            if seq is None:
                seq = seq_of[key] = len(seq_of)
                grouped[seq] = []
            grouped[seq].append(s)
        members = {seq: tuple(samples) for seq, samples in grouped.items()}
        entry = {}
        for key, seq in seq_of.items():
            rank = _rank(members[seq], order)
            if rank is None:
                return None
            entry[seq] = (rank, str(key), seq)
        names = frozenset(e[1] for e in entry.values())
        if len(names) != len(entry):
            return None
        return _Ranking(seq_of, members, entry, sorted(entry.values()), names, len(per_object), len(seq_of))

    def updated(self, removed: list[Sample], added: list[Sample], order: dict[str, int]) -> _Ranking | None:
        """The ranking once `removed` are gone and `added` are in; None as in `of`."""
        seq_of, members, entry, ranked = dict(self.seq_of), dict(self.members), dict(self.entry), list(self.ranked)
        names = self.names  # a new set when an object comes or goes
        count, next_seq = self.count, self.next_seq
        dirty: dict[int, Any] = {}  # number -> object
        for s in removed:
            key = s.obj or s.labels
            seq = seq_of.get(key)
            at = None if seq is None else next((i for i, m in enumerate(members[seq]) if m is s), None)
            if at is not None:  # else the filter dropped it
                members[seq] = members[seq][:at] + members[seq][at + 1 :]
                count -= 1
                dirty[seq] = key
        for s in added:
            key = s.obj or s.labels
            seq = seq_of.get(key)
            if seq is None:
                seq = seq_of[key] = next_seq
                next_seq += 1
                members[seq] = ()
            dirty[seq] = key
            members[seq] += (s,)
            count += 1
        for seq, key in dirty.items():
            old = entry.pop(seq, None)
            if old is not None:
                del ranked[bisect_left(ranked, old)]
            if not members[seq]:
                del members[seq], seq_of[key]
                names = names - {old[1]}
                continue
            rank = _rank(members[seq], order)
            if rank is None:
                return None
            if old is None:
                name = str(key)
                if name in names:
                    return None
                names = names | {name}
            new = entry[seq] = (rank, old[1] if old is not None else name, seq)
            insort(ranked, new)
        return _Ranking(seq_of, members, entry, ranked, names, count, next_seq, frozenset(dirty))

    def kept(self, cap: int) -> Iterable[int]:
        """The numbers of the `cap` objects first in rank, then name order."""
        return map(_SEQ, self.ranked[:cap])


def _rank(samples: tuple[Sample, ...], order: dict[str, int]) -> tuple | None:
    """An object's rank: its first family in declaration order, highest value first; None
    if a value is NaN."""
    best = None
    for s in samples:
        if s.value != s.value:
            return None
        candidate = (order[s.family], -s.value)
        if best is None or candidate < best:
            best = candidate
    return best


@dataclass
class _Series:
    """A check's last samples and what the filter and the cap made of them, for its next
    run (runner.Reuse): only the samples that are not the very objects at their place then
    are validated, filtered and ranked again."""

    samples: tuple[Sample, ...]  # as the check returned them
    exempt: frozenset  # the objects exempt from the check then (_Filter.exempt)
    ranking: _Ranking | None  # its per-object samples that passed the filter; None: start afresh
    bounded_at: Sequence[int]  # the places of the samples of bounded families
    per_object: list[Sample]  # the per-object samples kept, in order


_FAMILY, _LABELS, _SEQ = attrgetter("family"), attrgetter("labels"), itemgetter(2)


def run_check(
    spec: CheckSpec, state: ClusterState, config: Config, flt: _Filter, series: dict[str, _Series] | None = None
) -> CheckResult:
    """Run one check, filter its output and cap its per-object series. `series` (kept by
    Reuse for one configuration): when the check's last samples were filtered against the
    same exemptions, only the samples that are not the very objects of its last run are
    validated, filtered and ranked (_Ranking); the rest stand as they were then."""
    unavailable = _unavailable(spec, state)
    if unavailable is not None:
        return unavailable
    started = time.perf_counter()
    try:
        output = spec.evaluate(state, config)
        result = CheckResult(spec, Status.OK)
    except NotApplicable as exc:
        return CheckResult(spec, Status.NOT_APPLICABLE, str(exc), time.perf_counter() - started)
    except Exception as exc:  # noqa: BLE001 - one failing check never stops the rest
        log.exception("check %s failed", spec.id)
        return CheckResult(spec, Status.FAILED, f"{type(exc).__name__}: {exc}", time.perf_counter() - started)

    families = {f.name: f for f in spec.families}
    order = {f.name: i for i, f in enumerate(spec.families)}
    every = flt.passes_all(spec.id)
    findings = list(output.findings) if every else [f for f in output.findings if flt.keep(spec.id, f.obj)]
    result.exempted = len(output.findings) - len(findings)
    result.findings = findings
    last = series.pop(spec.id, None) if series is not None else None
    samples = tuple(output.samples)
    if series is not None and last is not None and last.ranking is not None and last.exempt == flt.exempt(spec.id):
        kept = _rerun(spec, samples, last, families, order, every, flt, config, result)
        if kept is not None:
            if kept.ranking is not None:
                series[spec.id] = kept
            result.duration = time.perf_counter() - started
            return result
    failed = _invalid(samples, families)
    if failed is not None:
        return _failed(spec, result, failed)
    bounded, per_object, bounded_at = [], [], []
    for i, s in enumerate(samples):
        if not families[s.family].per_object:
            bounded_at.append(i)
            if every or flt.keep(spec.id, s.obj):
                bounded.append(s)
        elif every or flt.keep(spec.id, s.obj):
            per_object.append(s)
    ranking = _Ranking.of(per_object, order) if series is not None else None
    if series is not None and ranking is not None:
        per_object = _capped(samples, ranking, config.series_cap, result)
        series[spec.id] = _Series(samples, flt.exempt(spec.id), ranking, bounded_at, per_object)
    else:
        # When the cap bites, keep the worst offenders: objects ranked by their first family
        # in declaration order (the headline, e.g. risk before duration), highest value first.
        rank: dict = {}
        for s in per_object:
            key = s.obj or s.labels
            candidate = (order[s.family], -s.value)
            if key not in rank or candidate < rank[key]:
                rank[key] = candidate
        if len(rank) > config.series_cap:
            kept_keys = _worst(rank, config.series_cap)
            result.dropped = sum(1 for s in per_object if (s.obj or s.labels) not in kept_keys)
            per_object = [s for s in per_object if (s.obj or s.labels) in kept_keys]
    result.samples = bounded + per_object
    result.duration = time.perf_counter() - started
    return result


def _rerun(
    spec: CheckSpec,
    samples: tuple[Sample, ...],
    last: _Series,
    families: dict,
    order: dict[str, int],
    every: bool,
    flt: _Filter,
    config: Config,
    result: CheckResult,
) -> _Series | None:
    """Filter and cap `samples` from what the last run made of its own: only the samples
    that are not the very objects at their place then are validated, filtered and ranked.
    Fills `result`'s samples (or fails it: a _Series without ranking); None when the
    ranking cannot be kept or most samples are new (run from scratch)."""
    assert last.ranking is not None
    diff = _diff(last.samples, samples)
    if len(diff.gone_at) + len(diff.came_at) > max(64, len(samples) // 8):
        return None  # most samples are new (e.g. fresh usage): from scratch costs less
    removed = list(map(last.samples.__getitem__, diff.gone_at))
    added = list(map(samples.__getitem__, diff.came_at))
    # Validated C-level: the (family, label count) pairs of the new samples, all declared?
    declared = {(f.name, len(f.labels)) for f in spec.families}
    if not set(zip(map(_FAMILY, added), map(len, map(_LABELS, added)))) <= declared:
        failed = _invalid(added, families)
        assert failed is not None
        _failed(spec, result, failed)
        return _Series(samples, last.exempt, None, [], [])
    per_object_names = {f.name for f in spec.families if f.per_object}
    bounded_names = {f.name for f in spec.families if not f.per_object}
    # The places of the bounded samples: the old ones that stayed, moved by the change in
    # length past the first difference, and the new ones.
    if per_object_names:
        shift, gone_at = len(samples) - len(last.samples), set(diff.gone_at)
        stayed = [i if i < diff.first else i + shift for i in last.bounded_at if i not in gone_at]
        came_bounded = compress(diff.came_at, map(bounded_names.__contains__, map(_FAMILY, added)))
        bounded_at: Sequence[int] = sorted([*stayed, *came_bounded])
        bounded = list(map(samples.__getitem__, bounded_at))
    else:  # every sample is bounded
        bounded_at, bounded = range(len(samples)), list(samples)
    if not every:
        bounded = [s for s in bounded if flt.keep(spec.id, s.obj)]
    ranking: _Ranking | None = last.ranking
    removed = list(compress(removed, map(per_object_names.__contains__, map(_FAMILY, removed))))
    added = list(compress(added, map(per_object_names.__contains__, map(_FAMILY, added))))
    if not every:
        added = [s for s in added if flt.keep(spec.id, s.obj)]
    if removed or added:
        ranking = last.ranking.updated(removed, added, order)
    if ranking is None:
        return None
    cap = config.series_cap
    if ranking is last.ranking or (
        ranking.touched.isdisjoint(map(_SEQ, ranking.ranked[:cap]))
        and ranking.touched.isdisjoint(map(_SEQ, last.ranking.ranked[:cap]))
        and ranking.ranked[:cap] == last.ranking.ranked[:cap]
    ):
        # The objects kept are the same, with the very same samples, in the same order.
        per_object = last.per_object
        result.dropped = ranking.count - len(per_object)
    else:
        per_object = _capped(samples, ranking, cap, result)
    result.samples = bounded + per_object
    return _Series(samples, last.exempt, ranking, bounded_at, per_object)


class _Diff(NamedTuple):
    """Where a sequence differs from an earlier one (see _diff)."""

    first: int  # the first place where they differ
    gone_at: list[int]  # the places in the old one whose items are not at their place in the new
    came_at: list[int]  # the places in the new one whose items were not at their place in the old


def _diff(old: Sequence, new: Sequence) -> _Diff:
    """Where `new` differs from `old` (items compared by identity), the places aligned at the
    first difference by the change in length (as for one insertion or deletion there)."""
    shift = len(new) - len(old)
    first = next(compress(count(), map(is_not, old, new)), min(len(old), len(new)))
    gone_to, came_to = first + max(0, -shift), first + max(0, shift)
    differ = list(compress(count(), map(is_not, islice(old, gone_to, None), islice(new, came_to, None))))
    return _Diff(
        first,
        [*range(first, gone_to), *map(gone_to.__add__, differ)],
        [*range(first, came_to), *map(came_to.__add__, differ)],
    )


def _capped(samples: tuple[Sample, ...], ranking: _Ranking, cap: int, result: CheckResult) -> list[Sample]:
    """The per-object samples of the objects the cap keeps, in their order in `samples`;
    sets result.dropped."""
    members = ranking.members
    kept = set(map(id, chain.from_iterable(map(members.__getitem__, ranking.kept(cap)))))
    per_object = list(compress(samples, map(kept.__contains__, map(id, samples))))
    result.dropped = ranking.count - len(per_object)
    return per_object


def _failed(spec: CheckSpec, result: CheckResult, failed: Sample) -> CheckResult:
    result.status, result.error = (
        Status.FAILED,
        f"bug: sample {failed.family}{failed.labels} does not match a declared family",
    )
    result.findings, result.samples, result.dropped = [], [], 0
    log.error("check %s: %s", spec.id, result.error)
    return result


def _invalid(samples: Iterable[Sample], families: dict, per_object: bool | None = None) -> Sample | None:
    """The first sample that matches no declared family (or, with `per_object` set, whose
    family is not of that scope); None when all match."""
    for s in samples:
        fam = families.get(s.family)
        if fam is None or len(s.labels) != len(fam.labels) or (per_object is not None and fam.per_object != per_object):
            return s
    return None


def _worst(rank: dict, cap: int) -> set:
    """The `cap` keys first in (rank, name) order. Names are compared only among the keys
    that tie at the cut: the rest is ordered by rank alone."""
    if len(rank) <= cap:
        return set(rank)
    if cap == 0:
        return set()
    by_rank = sorted(rank.items(), key=itemgetter(1))
    cut = by_rank[cap - 1][1]
    kept = {key for key, r in by_rank if r < cut}
    tied = sorted((key for key, r in by_rank if r == cut), key=str)
    kept.update(tied[: cap - len(kept)])
    return kept


class Reuse:
    """What the last evaluation computed and from what: a check whose inputs have not
    changed since is not run again; its result is reused. Its inputs are the store's
    generations and the health of every kind it reads (or that names an object it
    reported, whose exemption annotation the filter reads), the samples if it uses them,
    and the configuration. A check that judges time windows (`uses_clock`) always runs. A
    check with a minimum interval (CheckSpec.min_interval) whose last run succeeded keeps
    its result until the interval has passed, even when its inputs changed (`deferred`);
    one whose inputs became unavailable fails at once."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock  # for the minimum intervals: seconds, monotonic
        self._config: Config | None = None
        # check id -> (its inputs' key, its last result, when it ran by self.clock, the kinds it names)
        self._last: dict[str, tuple[tuple, CheckResult, float, frozenset[str]]] = {}
        self._series: dict[str, _Series] = {}  # per check: its last samples, filtered and capped
        self._finding_kinds: dict[str, tuple[tuple[Finding, ...], Counter]] = {}  # per check: for _named
        self.reused = 0  # results reused over the lifetime, for tests and the benchmark
        self.deferred = 0  # of which: inputs changed, but within the check's minimum interval

    def _named(self, result: CheckResult) -> frozenset[str]:
        """The kinds of the objects a result names (their exemption annotations matter).
        Its findings' kinds are counted, and brought up to date from the check's last
        findings by the few that are not the very objects at their place (_diff)."""
        findings = tuple(result.findings)
        last = self._finding_kinds.get(result.spec.id)
        if last is None:
            kinds = Counter(map(_KIND, map(_OBJ, findings)))
        else:
            diff = _diff(last[0], findings)
            kinds = last[1].copy()
            kinds.subtract(map(_KIND, map(_OBJ, map(last[0].__getitem__, diff.gone_at))))
            kinds.update(map(_KIND, map(_OBJ, map(findings.__getitem__, diff.came_at))))
        self._finding_kinds[result.spec.id] = (findings, kinds)
        named = {k for k, n in kinds.items() if n > 0}.union(map(_KIND, filter(None, map(_OBJ, result.samples))))
        return frozenset(_KEY_BY_KIND[k] for k in named if k in _KEY_BY_KIND)

    @staticmethod
    def _key(spec: CheckSpec, state: ClusterState, named: frozenset[str]) -> tuple:
        kinds = {*spec.requires, *spec.reads} | named
        if "virtualmachineinstances.kubevirt.io" in kinds:  # a VMI honours its VM's exemption
            kinds.add("virtualmachines.kubevirt.io")
        parts: list = [
            (k, state.generations.get(k), state.absent.get(k), state.forbidden.get(k), state.unavailable.get(k))
            for k in sorted(kinds)
        ]
        if spec.uses_samples or spec.reads_samples:
            parts.append(("samples", state.generations.get("samples"), state.samples_error))
        return tuple(parts)

    def _within_interval(self, spec: CheckSpec, state: ClusterState, config: Config, ran_at: float) -> bool:
        interval = config.min_interval(spec.id, spec.min_interval)
        return interval > 0 and self.clock() - ran_at < interval and _unavailable(spec, state) is None

    def run(self, spec: CheckSpec, state: ClusterState, config: Config, flt: _Filter) -> CheckResult:
        if config is not self._config:
            self._config, self._last, self._series, self._finding_kinds = config, {}, {}, {}
        if spec.uses_clock or not state.generations:
            return run_check(spec, state, config, flt, self._series if state.generations else None)
        last = self._last.get(spec.id)
        if last is not None and last[0] == self._key(spec, state, last[3]):
            self.reused += 1
            return last[1]
        if last is not None and last[1].status is Status.OK and self._within_interval(spec, state, config, last[2]):
            self.reused += 1
            self.deferred += 1
            return last[1]
        ran_at = self.clock()
        result = run_check(spec, state, config, flt, self._series)
        named = self._named(result)
        self._last[spec.id] = (self._key(spec, state, named), result, ran_at, named)
        return result


def evaluate(
    state: ClusterState, config: Config, specs: Iterable[CheckSpec] = CHECKS, reuse: Reuse | None = None
) -> Evaluation:
    """Run every enabled check once (or reuse its last result, see Reuse). Never raises
    because of a check."""
    started_wall, started = time.time(), time.perf_counter()
    flt = _Filter(state, config)
    # The checks allocate many short-lived objects over a large, stable store, and every
    # full cyclic-GC pass walks the whole store (one run at 10,000 VMs: 944 ms with GC,
    # 691 ms without). Pause it for the evaluation; reference counting still frees
    # everything acyclic, and the next collection catches the rest.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        run = reuse.run if reuse is not None else run_check
        results = [run(spec, state, config, flt) for spec in specs if config.check_enabled(spec.id)]
    finally:
        if was_enabled:
            gc.enable()
    return Evaluation(results, started_wall, time.perf_counter() - started)
