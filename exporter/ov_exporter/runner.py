"""The runner: runs the checks (registered in checks/__init__.py) against one
ClusterState: times them, isolates failures, applies exemptions, namespace filters
and the per-check series cap."""

from __future__ import annotations

import gc
import logging
import time
from dataclasses import dataclass, field
from itertools import chain, compress
from operator import attrgetter, is_not, itemgetter
from typing import Any, Callable, Iterable, Mapping

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


@dataclass
class _Series:
    """A check's last samples and what the filter and the cap made of its per-object ones,
    for the next run whose per-object samples are the very same objects (runner.Reuse)."""

    samples: tuple[Sample, ...]  # as the check returned them
    exempt: frozenset  # the objects exempt from the check then (_Filter.exempt)
    bounded_at: list[int]  # positions of the samples of bounded families
    per_object: list[Sample]  # the per-object samples kept, in order
    dropped: int


def run_check(
    spec: CheckSpec, state: ClusterState, config: Config, flt: _Filter, series: dict[str, _Series] | None = None
) -> CheckResult:
    """Run one check, filter its output and cap its per-object series. `series` (kept by
    Reuse for one configuration): when the check's per-object samples are the very objects
    of its last run, filtered against the same exemptions, their filtered and capped list
    is the last one (the bounded samples are judged again)."""
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
    every = flt.passes_all(spec.id)
    findings = list(output.findings) if every else [f for f in output.findings if flt.keep(spec.id, f.obj)]
    result.exempted = len(output.findings) - len(findings)
    last = series.get(spec.id) if series is not None else None
    samples = tuple(output.samples)
    if last is not None and last.exempt == flt.exempt(spec.id) and len(last.samples) == len(samples):
        changed = compress(range(len(samples)), map(is_not, last.samples, samples))
        bounded_at = set(last.bounded_at)
        if all(i in bounded_at for i in changed):
            bounded = [samples[i] for i in last.bounded_at]
            failed = _invalid(bounded, families, per_object=False)
            if failed is None:
                result.findings = findings
                result.samples = [s for s in bounded if every or flt.keep(spec.id, s.obj)] + last.per_object
                result.dropped = last.dropped
                series[spec.id] = _Series(samples, last.exempt, last.bounded_at, last.per_object, last.dropped)
                result.duration = time.perf_counter() - started
                return result
    failed = _invalid(samples, families)
    if failed is not None:
        result.status, result.error = (
            Status.FAILED,
            f"bug: sample {failed.family}{failed.labels} does not match a declared family",
        )
        log.error("check %s: %s", spec.id, result.error)
        return result
    bounded, per_object, bounded_at = [], [], []
    for i, s in enumerate(samples):
        fam = families[s.family]
        if not fam.per_object:
            bounded_at.append(i)
        if not every and not flt.keep(spec.id, s.obj):
            continue
        (per_object if fam.per_object else bounded).append(s)
    # When the cap bites, keep the worst offenders: objects ranked by their first family in
    # declaration order (the headline, e.g. risk before duration), highest value first.
    order = {f.name: i for i, f in enumerate(spec.families)}
    rank: dict = {}
    for s in per_object:
        key = s.obj or s.labels
        candidate = (order[s.family], -s.value)
        if key not in rank or candidate < rank[key]:
            rank[key] = candidate
    if len(rank) > config.series_cap:
        kept = _worst(rank, config.series_cap)
        result.dropped = sum(1 for s in per_object if (s.obj or s.labels) not in kept)
        per_object = [s for s in per_object if (s.obj or s.labels) in kept]
    if series is not None:
        series[spec.id] = _Series(samples, flt.exempt(spec.id), bounded_at, per_object, result.dropped)
    result.findings, result.samples = findings, bounded + per_object
    result.duration = time.perf_counter() - started
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
        self.reused = 0  # results reused over the lifetime, for tests and the benchmark
        self.deferred = 0  # of which: inputs changed, but within the check's minimum interval

    @staticmethod
    def _named(result: CheckResult) -> frozenset[str]:
        """The kinds of the objects a result names (their exemption annotations matter)."""
        objs = chain(map(_OBJ, result.findings), filter(None, map(_OBJ, result.samples)))
        return frozenset(_KEY_BY_KIND[k] for k in set(map(_KIND, objs)) if k in _KEY_BY_KIND)

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
            self._config, self._last, self._series = config, {}, {}
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
