"""The runner's filter and cap brought up to date from a check's last run (runner._Series,
_Ranking) give what filtering and capping the same samples from scratch gives: through
samples added, removed, moved and repeated, NaN values, objects of one name, exemptions
and a cap that bites or not."""

from __future__ import annotations

import math

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st
from ov_exporter.config import Config
from ov_exporter.model import CheckOutput, CheckSpec, Family, ObjectRef, Sample
from ov_exporter.runner import run_check
from ov_exporter.store import ClusterState

BOUNDED = Family("t_bounded", "gauge", "bounded", ("node",))
FIRST = Family("t_first", "gauge", "per object, first", ("namespace", "name"), per_object=True)
SECOND = Family("t_second", "gauge", "per object, second", ("namespace", "name"), per_object=True)

# Two objects of one name ("VM a/b"), an object without namespace, a label set without object.
OBJECTS = [
    ObjectRef("VM", "a", "b"),
    ObjectRef("VM", "", "a/b"),
    ObjectRef("VM", "a", "c"),
    ObjectRef("VM", "b", "c"),
    ObjectRef("Node", "", "n1"),
    None,
]
VALUES = [0.0, -0.0, 1.0, 2.0, 0.5, math.nan, math.inf]


def _pool() -> list[Sample]:
    pool = []
    for i, obj in enumerate(OBJECTS):
        for fam in (FIRST, SECOND):
            for value in VALUES[: 3 + i % 4]:
                pool.append(Sample(fam.name, (obj.namespace if obj else "x", obj.name if obj else str(i)), value, obj))
    pool += [Sample(BOUNDED.name, (f"n{i}",), float(i)) for i in range(4)]
    pool.append(Sample(BOUNDED.name, ("n1", "extra"), 1.0))  # a label too many: the check fails
    pool.append(Sample("t_undeclared", (), 1.0))
    return pool


POOL = _pool()


class _Flt:
    """A filter that drops the series of the objects in `blocked`."""

    def __init__(self, blocked: frozenset) -> None:
        self.blocked = blocked

    def exempt(self, check_id: str) -> frozenset:
        return self.blocked

    def passes_all(self, check_id: str) -> bool:
        return not self.blocked

    def keep(self, check_id: str, obj: ObjectRef | None) -> bool:
        return obj is None or obj not in self.blocked


def _spec(outputs: list[list[Sample]]) -> CheckSpec:
    def evaluate(state, config):
        return CheckOutput([], list(outputs[0]))

    return CheckSpec("t_check", 1, "test", "", (BOUNDED, FIRST, SECOND), "", evaluate)


def _outcome(result) -> tuple:
    return result.status, result.error, [id(s) for s in result.samples], result.dropped


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.integers(0, len(POOL) - 1), max_size=30),
            st.sets(st.sampled_from([o for o in OBJECTS if o is not None]), max_size=2),
        ),
        min_size=1,
        max_size=8,
    ),
    st.integers(0, 6),
    st.booleans(),
)
def test_filtered_and_capped_from_the_last_run_equal_from_scratch(steps, cap, valid_only):
    config = msgspec.convert({"series-cap": cap}, Config)
    state = ClusterState.from_records([])
    usable = [i for i, s in enumerate(POOL) if not valid_only or s.family != "t_undeclared" and len(s.labels) < 3]
    series: dict = {}
    outputs: list[list[Sample]] = [[]]
    spec = _spec(outputs)
    last: list[Sample] = []
    for picks, blocked in steps:
        # Mostly small edits of the last list (the places the runner aligns), sometimes a new one.
        current = list(last)
        for n, pick in enumerate(picks):
            sample = POOL[usable[pick % len(usable)]]
            where = (pick * 7 + n) % (len(current) + 1)
            if pick % 3 == 0 and current:
                del current[where % len(current)]
            elif pick % 3 == 1:
                current.insert(where, sample)
            elif current:
                current[where % len(current)] = sample
        outputs[0] = current
        flt = _Flt(frozenset(blocked))
        kept = run_check(spec, state, config, flt, series)  # type: ignore[arg-type]
        fresh = run_check(spec, state, config, flt, None)  # type: ignore[arg-type]
        assert _outcome(kept) == _outcome(fresh), f"after {current}"
        last = current
