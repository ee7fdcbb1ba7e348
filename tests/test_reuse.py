"""Reusing a check's last result when its inputs have not changed (runner.Reuse) gives
exactly what a full evaluation of the same state gives, over random sequences of changes
through the store's one entry point; and the declarations reuse depends on (the clock,
samples) are what the checks actually read."""

from __future__ import annotations

import dataclasses

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ov_exporter.checks import CHECKS
from ov_exporter.config import Config
from ov_exporter.events import Deleted, SamplesUpdated, Upserted
from ov_exporter.records import KIND_BY_KEY
from ov_exporter.runner import Reuse, evaluate
from ov_exporter.sources import DemoSource
from ov_exporter.store import Store, uid_of

CONFIG = Config()


def _demo() -> Store:
    store = Store()
    DemoSource().load(store.apply)
    return store


DEMO = _demo()
OBJECTS = [(KIND_BY_KEY[key], obj) for key, objs in DEMO.state().objects.items() for obj in objs]


def _outcome(evaluation) -> list:
    return [(r.spec.id, r.status, r.error, r.findings, r.samples, r.dropped, r.exempted) for r in evaluation.results]


def _changed(record, how: int):
    """A changed copy of a record: exempted, relabelled, or with its annotations dropped."""
    meta = record.metadata
    if how == 0:
        annotations = {**(meta.annotations or {}), CONFIG.exemption_annotation: "*"}
        new_meta = msgspec.structs.replace(meta, annotations=annotations)
    elif how == 1:
        new_meta = msgspec.structs.replace(meta, labels={**(meta.labels or {}), "ov-test/changed": "yes"})
    else:
        new_meta = msgspec.structs.replace(meta, annotations={})
    return msgspec.structs.replace(record, metadata=new_meta)


changes = st.lists(st.tuples(st.integers(0, len(OBJECTS) - 1), st.integers(0, 4)), min_size=1, max_size=12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes)
def test_reused_results_equal_a_full_evaluation_after_any_changes(steps):
    store = _demo()
    store.apply(SamplesUpdated(DEMO.state().samples, "demo"))
    reuse = Reuse()
    evaluate(store.state(), CONFIG, reuse=reuse)
    for index, how in steps:
        kind, record = OBJECTS[index]
        if how == 3:
            store.apply(Deleted(kind, uid_of(kind, record)))
        elif how == 4:
            store.apply(Upserted(kind, record))  # back as it was (or unchanged)
        else:
            store.apply(Upserted(kind, _changed(record, how)))
        state = store.state()
        assert _outcome(evaluate(state, CONFIG, reuse=reuse)) == _outcome(evaluate(state, CONFIG))


def test_an_unchanged_cluster_reuses_every_check_that_does_not_judge_time():
    reuse = Reuse()
    state = DEMO.state()
    evaluate(state, CONFIG, reuse=reuse)
    evaluate(DEMO.state(), CONFIG, reuse=reuse)
    assert reuse.reused == sum(1 for s in CHECKS if not s.uses_clock)


def test_checks_that_do_not_declare_the_clock_do_not_read_it():
    state = DEMO.state()
    later = dataclasses.replace(state, now=(state.now or 0) + 30 * 86400, memo={})
    earlier = dataclasses.replace(state, memo={})
    for spec in CHECKS:
        if spec.uses_clock:
            continue
        a, b = evaluate(earlier, CONFIG, [spec]), evaluate(later, CONFIG, [spec])
        assert _outcome(a) == _outcome(b), f"{spec.id} changes with the clock: declare uses_clock=True"


def test_checks_that_do_not_declare_samples_do_not_read_them():
    state = DEMO.state()
    assert state.samples, "the demo has samples"
    without = dataclasses.replace(state, samples=None, memo={})
    for spec in CHECKS:
        if spec.uses_samples or spec.reads_samples:
            continue
        a, b = evaluate(dataclasses.replace(state, memo={}), CONFIG, [spec]), evaluate(without, CONFIG, [spec])
        assert _outcome(a) == _outcome(b), f"{spec.id} changes with the samples: declare reads_samples=True"
