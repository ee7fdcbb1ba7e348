"""Reusing a check's last result when its inputs have not changed (runner.Reuse), and the
per-object results kept across evaluations (ClusterState.per_object, per_kinds), give
exactly what a full evaluation from scratch of the same state gives, over random sequences
of changes through the store's one entry point, including changes to what the memo keeps
(access modes, VMI phase and node, eviction strategies, schedulability); and the
declarations reuse depends on (the clock, samples) are what the checks actually read."""

from __future__ import annotations

import dataclasses
import itertools
import sys

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ov_exporter.checks import CHECKS
from ov_exporter.config import Config
from ov_exporter.domain.readiness import vmi_requests
from ov_exporter.events import Deleted, SamplesUpdated, Upserted
from ov_exporter.model import ObjectRef
from ov_exporter.records import KIND_BY_KEY
from ov_exporter.render import History, Renderer, SourceStats
from ov_exporter.runner import Reuse, _Filter, _worst, evaluate
from ov_exporter.sources import DemoSource
from ov_exporter.store import Store, uid_of

CONFIG = Config()


def _reuse() -> Reuse:
    """A Reuse whose clock jumps a day at every reading: no check's minimum interval ever
    holds a result back, so every result must equal a full evaluation's."""
    return Reuse(clock=itertools.count(step=86_400).__next__)


def _demo() -> Store:
    store = Store()
    DemoSource().load(store.apply)
    return store


DEMO = _demo()
OBJECTS = [(KIND_BY_KEY[key], obj) for key, objs in DEMO.state().objects.items() for obj in objs]


def _outcome(evaluation) -> list:
    return [(r.spec.id, r.status, r.error, r.findings, r.samples, r.dropped, r.exempted) for r in evaluation.results]


NODE_NAMES = [obj.metadata.name for kind, obj in OBJECTS if kind.key == "nodes"]
# Fields the per-object memo's results depend on, and values to set them to: (record kind, path, values).
FLIPS = [
    ("PersistentVolumeClaim", ("status", "access_modes"), (["ReadWriteOnce"], ["ReadWriteMany"], None)),
    ("PersistentVolumeClaim", ("spec", "access_modes"), (["ReadWriteOnce"], ["ReadWriteMany"])),
    ("DataVolume", ("spec", "pvc", "access_modes"), (["ReadWriteOnce"], ["ReadWriteMany"], None)),
    ("DataVolume", ("spec", "storage", "access_modes"), (["ReadWriteOnce"], ["ReadWriteMany"], None)),
    ("VirtualMachineInstance", ("status", "phase"), ("Running", "Scheduled", "Failed")),
    ("VirtualMachineInstance", ("status", "node_name"), NODE_NAMES),
    ("VirtualMachine", ("spec", "template", "spec", "eviction_strategy"), (None, "LiveMigrate", "None")),
    ("Node", ("spec", "unschedulable"), (True, False)),
    # What the target test reads: a node's room and labels, a VMI's requests, virt-handler readiness.
    (
        "Node",
        ("status", "allocatable"),
        ({"cpu": 2.0, "memory": 4 * 2.0**30, "pods": 250.0}, {"cpu": 512.0, "memory": 2.0**42, "pods": 250.0}, None),
    ),
    ("Node", ("metadata", "labels"), ({}, {"kubevirt.io/schedulable": "true"})),
    (
        "VirtualMachineInstance",
        ("spec", "domain", "resources", "requests"),
        ({"memory": 2.0**30}, {"memory": 2.0**38}, None),
    ),
    ("Pod", ("status", "phase"), ("Pending", "Running")),
]


def _replaced(record, path: tuple[str, ...], value):
    """A copy with the field at `path` set, or None when a struct on the way is absent."""
    if not path:
        return value
    inner = getattr(record, path[0], None) if record is not None else None
    if len(path) > 1 and inner is None:
        return None
    new = _replaced(inner, path[1:], value)
    if len(path) > 1 and new is None:
        return None
    return msgspec.structs.replace(record, **{path[0]: new})


def _flipped(record, choice: int):
    """A copy with one memoised-upon field changed, or None when the record has none."""
    flips = [(path, values) for kind, path, values in FLIPS if type(record).__name__ == kind]
    for offset in range(len(flips)):
        path, values = flips[(choice + offset) % len(flips)]
        new = _replaced(record, path, values[choice % len(values)])
        if new is not None:
            return new
    return None


def _changed(record, how: int):
    """A changed copy of a record: exempted, relabelled, its annotations dropped, or (how >= 5)
    a field the per-object memo depends on set."""
    if how >= 5:
        flipped = _flipped(record, how - 5)
        if flipped is not None:
            return flipped
        how = 1
    meta = record.metadata
    if how == 0:
        annotations = {**(meta.annotations or {}), CONFIG.exemption_annotation: "*"}
        new_meta = msgspec.structs.replace(meta, annotations=annotations)
    elif how == 1:
        new_meta = msgspec.structs.replace(meta, labels={**(meta.labels or {}), "ov-test/changed": "yes"})
    else:
        new_meta = msgspec.structs.replace(meta, annotations={})
    return msgspec.structs.replace(record, metadata=new_meta)


MEMOISED = [i for i, (_, obj) in enumerate(OBJECTS) if any(type(obj).__name__ == kind for kind, _, _ in FLIPS)]
changes = st.lists(
    st.one_of(
        st.tuples(st.integers(0, len(OBJECTS) - 1), st.integers(0, 4)),
        st.tuples(st.sampled_from(MEMOISED), st.integers(5, 5 + 11)),
    ),
    min_size=1,
    max_size=12,
)


def _apply(store: Store, index: int, how: int) -> None:
    """Change OBJECTS[index] in the store as `how` says (see _changed; 3: deleted, 4: put back)."""
    kind, record = OBJECTS[index]
    if how >= 5:  # applied to the record the store holds now: changes build on each other
        current = store.state().get(kind.key, record.metadata.namespace, record.metadata.name) or record
        store.apply(Upserted(kind, _changed(current, how)))
    elif how == 3:
        store.apply(Deleted(kind, uid_of(kind, record)))
    elif how == 4:
        store.apply(Upserted(kind, record))  # back as it was (or unchanged)
    else:
        store.apply(Upserted(kind, _changed(record, how)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes, st.integers(2, 5))
def test_several_changes_between_two_evaluations_equal_a_full_evaluation(steps, every):
    """Changes of several kinds between two evaluations (as under churn): the kept results
    are brought up to date by all of them at once."""
    store = _demo()
    store.apply(SamplesUpdated(DEMO.state().samples, "demo"))
    reuse = _reuse()
    evaluate(store.state(), CONFIG, reuse=reuse)
    for at in range(0, len(steps), every):
        for index, how in steps[at : at + every]:
            _apply(store, index, how)
        state = store.state()
        assert _outcome(evaluate(state, CONFIG, reuse=reuse)) == _outcome(evaluate(state.forgetting(), CONFIG))


def test_a_storage_class_and_a_vmi_changed_together_equal_a_full_evaluation():
    """A change every disk's verdict depends on, with a VMI's node in the same batch: both
    are taken into account."""
    store, reuse = _demo(), _reuse()
    evaluate(store.state(), CONFIG, reuse=reuse)
    vmi_kind, sc_kind = KIND_BY_KEY["virtualmachineinstances.kubevirt.io"], KIND_BY_KEY["storageclasses.storage.k8s.io"]
    for turn, vmi in enumerate(_running(store)):
        store.apply(Upserted(sc_kind, _changed(store.state().storage_classes[0], 1 + turn % 2)))
        other = next(n for n in NODE_NAMES if n != vmi.status.node_name)
        store.apply(Upserted(vmi_kind, _replaced(vmi, ("status", "phase"), "Failed" if turn % 2 else "Scheduled")))
        _assert_as_full(store, reuse, f"after a StorageClass and {vmi.metadata.name} changed")
        store.apply(Upserted(sc_kind, _changed(store.state().storage_classes[0], 1)))
        store.apply(Upserted(vmi_kind, _replaced(vmi, ("status", "node_name"), other)))
        _assert_as_full(store, reuse, f"after a StorageClass changed and {vmi.metadata.name} moved")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes)
def test_reused_results_equal_a_full_evaluation_after_any_changes(steps):
    store = _demo()
    store.apply(SamplesUpdated(DEMO.state().samples, "demo"))
    reuse = _reuse()
    evaluate(store.state(), CONFIG, reuse=reuse)
    for index, how in steps:
        _apply(store, index, how)
        state = store.state()
        # A full evaluation from scratch (nothing kept) is the judge of the reused and memoised one.
        assert _outcome(evaluate(state, CONFIG, reuse=reuse)) == _outcome(evaluate(state.forgetting(), CONFIG))
    memo = store.object_memo
    assert memo.reused + memo.updated > 0, "no kept result was ever used"


def test_each_memoised_upon_change_in_turn_equals_a_full_evaluation():
    """Every object whose fields the kept results depend on, changed in turn (each field it
    has, each value), then deleted and put back: the random sequences above are too short
    to reach every VM with the disks, node and strategy a change matters to."""
    store = _demo()
    store.apply(SamplesUpdated(DEMO.state().samples, "demo"))
    reuse, renderer = _reuse(), Renderer()
    renderer.render(evaluate(store.state(), CONFIG, reuse=reuse), History(), SourceStats.of(store))
    for turn, index in enumerate(MEMOISED):
        kind, record = OBJECTS[index]
        for how in (5 + turn % 12, 5 + (turn + 5) % 12, 3, 4):
            current = store.state().get(kind.key, record.metadata.namespace, record.metadata.name) or record
            if how == 3:
                store.apply(Deleted(kind, uid_of(kind, record)))
            elif how == 4:
                store.apply(Upserted(kind, current))
            else:
                store.apply(Upserted(kind, _changed(current, how)))
            state = store.state()
            evaluation = evaluate(state, CONFIG, reuse=reuse)
            assert _outcome(evaluation) == _outcome(evaluate(state.forgetting(), CONFIG)), (
                f"after {kind.kind} {record.metadata.namespace}/{record.metadata.name} changed ({how})"
            )
            # The series of checks not run again are not rendered again, and the exposition is the same.
            kept, fresh = (r.render(evaluation, History(), SourceStats.of(store)) for r in (renderer, Renderer()))
            assert (kept.text, kept.openmetrics) == (fresh.text, fresh.openmetrics)


def test_an_unchanged_cluster_reuses_every_check_that_does_not_judge_time():
    reuse = Reuse()
    state = DEMO.state()
    evaluate(state, CONFIG, reuse=reuse)
    evaluate(DEMO.state(), CONFIG, reuse=reuse)
    assert reuse.reused == sum(1 for s in CHECKS if not s.uses_clock)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _rebalance_run(store: Store, reuse: Reuse, config: Config = CONFIG):
    return next(r for r in evaluate(store.state(), config, reuse=reuse).results if r.spec.id == "rebalance_plan")


def _move_a_vmi(store: Store) -> None:
    """A running VMI onto another node: an input of the rebalance plan changes."""
    kind, vmi = next((k, o) for k, o in OBJECTS if k.kind == "VirtualMachineInstance" and o.status.node_name)
    current = store.state().get(kind.key, vmi.metadata.namespace, vmi.metadata.name)
    other = next(n for n in NODE_NAMES if n != current.status.node_name)
    store.apply(Upserted(kind, _replaced(current, ("status", "node_name"), other)))


def test_a_check_with_a_minimum_interval_keeps_its_result_until_the_interval_passes():
    spec = next(s for s in CHECKS if s.id == "rebalance_plan")
    assert spec.min_interval == 300
    store, clock = _demo(), _Clock()
    reuse = Reuse(clock=clock)
    first = _rebalance_run(store, reuse)
    _move_a_vmi(store)
    clock.now += spec.min_interval - 1
    assert _rebalance_run(store, reuse) is first, "inputs changed within the interval: the last plan is served"
    assert reuse.deferred == 1
    clock.now += 2
    after = _rebalance_run(store, reuse)
    assert after is not first, "the interval passed: the plan is computed again"
    fresh = next(r for r in evaluate(store.state().forgetting(), CONFIG).results if r.spec.id == "rebalance_plan")
    assert (after.findings, after.samples) == (fresh.findings, fresh.samples)


def test_a_minimum_interval_is_configurable_per_check_and_never_hides_a_failure():
    store, clock = _demo(), _Clock()
    every_time = msgspec.convert({"checks": {"rebalance_plan": {"min-interval": 0}}}, Config)
    reuse = Reuse(clock=clock)
    first = _rebalance_run(store, reuse, every_time)
    _move_a_vmi(store)
    assert _rebalance_run(store, reuse, every_time) is not first
    assert reuse.deferred == 0
    # Within the declared interval, a kind it reads becoming unavailable fails the check at once.
    reuse = Reuse(clock=clock)
    _rebalance_run(store, reuse)
    state = store.state()
    denied = dataclasses.replace(state, forbidden={"nodes": "list nodes: forbidden"}, memo={})
    result = next(r for r in evaluate(denied, CONFIG, reuse=reuse).results if r.spec.id == "rebalance_plan")
    assert result.status.name == "FAILED" and "forbidden" in result.error


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


def test_a_per_object_result_is_kept_while_its_record_and_inputs_are_the_same():
    store = _demo()
    kind, vm = next((k, o) for k, o in OBJECTS if k.key == "virtualmachines.kubevirt.io")
    calls = []

    def compute(record, setting):
        calls.append((record, setting))
        return len(calls)

    first = store.state()
    assert first.per_object("test", vm, compute, "a") == 1
    assert first.per_object("test", vm, compute, "a") == 1  # shared within a state
    assert store.state().per_object("test", vm, compute, "a") == 1  # and kept across states
    assert store.state().per_object("test", vm, compute, "b") == 2  # another input
    changed = _changed(vm, 1)
    store.apply(Upserted(kind, changed))
    assert store.state().per_object("test", changed, compute, "b") == 3  # another version of the object
    assert store.state().per_object("test", changed, compute, "b") == 3
    assert store.object_memo.entries("test") == 1  # the newer version replaced the older one


def test_a_kept_result_lets_go_of_an_input_replaced_by_an_equal_newer_record():
    """A newer record equal in every field records keep (a change to a field they drop)
    reuses the result, and the memo then holds the newer record, not the superseded one."""
    store = _demo()
    vmi_kind = KIND_BY_KEY["virtualmachineinstances.kubevirt.io"]
    state = store.state()
    vm = next(v for v in state.vms if state.get(vmi_kind.key, v.metadata.namespace, v.metadata.name) is not None)
    vmi = state.get(vmi_kind.key, vm.metadata.namespace, vm.metadata.name)
    del state
    calls = []

    def compute(record, vmi):
        calls.append(record)
        return len(calls)

    assert store.state().per_object("test", vm, compute, vmi) == 1
    newer = msgspec.structs.replace(vmi)
    assert newer == vmi and newer is not vmi
    store.apply(Upserted(vmi_kind, newer))
    held = sys.getrefcount(vmi)
    assert store.state().per_object("test", vm, compute, newer) == 1 and len(calls) == 1  # reused
    assert sys.getrefcount(vmi) == held - 1, "the memo still holds the superseded record"


def test_a_per_object_result_lives_while_its_object_exists_not_while_it_is_asked_for():
    """Evaluations that judge only the objects a change concerns must not lose the others'
    results: the next one that judges everything would compute them all again."""
    store = _demo()
    vm_kind = KIND_BY_KEY["virtualmachines.kubevirt.io"]
    vms = list(store.state().vms)
    calls = []

    def compute(record):
        calls.append(record)
        return record.metadata.name

    state = store.state()
    for vm in vms:
        state.per_object("test", vm, compute)
    for _ in range(3):  # states that ask about one VM only
        store.state().per_object("test", vms[0], compute)
    state = store.state()
    assert [state.per_object("test", vm, compute) for vm in vms] == [vm.metadata.name for vm in vms]
    assert len(calls) == len(vms), "results of objects not asked for were dropped"
    # A deleted object's result goes, once a later state uses the table.
    store.apply(Deleted(vm_kind, uid_of(vm_kind, vms[1])))
    store.state().per_object("test", vms[0], compute)
    assert store.object_memo.entries("test") == len(vms) - 1


def test_evaluations_after_partial_ones_compute_no_unchanged_per_object_result_again():
    """After evaluations that judged only the VMs a PVC concerns, a change that makes
    rwo_vm_disks judge every VM again with equal inputs (a HyperConverged label: the
    default eviction strategy is the same) reuses every VM's kept result."""
    store = _demo()
    reuse = _reuse()
    evaluate(store.state(), CONFIG, reuse=reuse)
    pvcs = list(store.state().pvcs)
    pvc_kind = KIND_BY_KEY["persistentvolumeclaims"]
    for pvc in pvcs[:2]:
        store.apply(Upserted(pvc_kind, _changed(pvc, 1)))
        evaluate(store.state(), CONFIG, reuse=reuse)
    assert store.object_memo.entries("rwo_vm_disks") == sum(1 for vm in store.state().vms if vm.spec.template)
    hco_kind = KIND_BY_KEY["hyperconvergeds.hco.kubevirt.io"]
    store.apply(Upserted(hco_kind, _changed(store.state().hyperconvergeds[0], 1)))
    computed = store.object_memo.computed
    state = store.state()
    assert _outcome(evaluate(state, CONFIG, reuse=reuse)) == _outcome(evaluate(state.forgetting(), CONFIG))
    assert store.object_memo.computed == computed


def test_an_unchanged_cluster_computes_no_per_object_result_again():
    store = _demo()
    evaluate(store.state(), CONFIG)
    computed, reused = store.object_memo.computed, store.object_memo.reused
    evaluate(store.state(), CONFIG)
    assert store.object_memo.computed == computed
    assert store.object_memo.reused > reused


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.builds(
            ObjectRef, st.just("VirtualMachine"), st.sampled_from(["a", "a-b", "b", ""]), st.text("xy/-", max_size=3)
        ),
        st.tuples(st.integers(0, 2), st.sampled_from([-1.0, -0.5, 0.0])),
    ),
    st.integers(0, 12),
)
def test_the_series_cap_keeps_the_worst_in_rank_then_name_order(rank, cap):
    expected = set(sorted(rank, key=lambda o: (rank[o], str(o)))[:cap])
    assert _worst(rank, cap) == expected


def test_results_kept_per_kinds_read_only_those_kinds(monkeypatch):
    """A result kept with state.per_kinds is reused while its kinds do not change: it must
    read no other kind (directly, or through another kept result)."""
    from ov_exporter.store import ClusterState

    real_of, real_index, real_per_kinds = ClusterState.of, ClusterState.index, ClusterState.per_kinds
    reading: list[tuple[str, tuple[str, ...], set[str]]] = []  # the per_kinds results being computed
    undeclared: dict[str, set[str]] = {}

    def read(kinds) -> None:
        for name, declared, seen in reading:
            seen.update(kinds)
            if set(kinds) - set(declared):
                undeclared.setdefault(name, set()).update(set(kinds) - set(declared))

    def of(self, key):
        read([key])
        return real_of(self, key)

    def index(self, key):
        read([key])
        return real_index(self, key)

    def per_kinds(self, name, kinds, compute):
        read(kinds)  # what an enclosing result reads through this one, computed or kept

        def recorded(state):
            reading.append((name, kinds, set()))
            try:
                return compute(state)
            finally:
                reading.pop()

        return real_per_kinds(self, name, kinds, recorded)

    monkeypatch.setattr(ClusterState, "of", of)
    monkeypatch.setattr(ClusterState, "index", index)
    monkeypatch.setattr(ClusterState, "per_kinds", per_kinds)
    store = _demo()
    store.apply(SamplesUpdated(DEMO.state().samples, "demo"))
    evaluate(store.state(), CONFIG)
    assert not undeclared, f"kept per kinds but read other kinds: {undeclared}"


def _exempt_reference(state, obj: ObjectRef, check: str) -> bool:
    """The exemption rule read straight from the objects: the annotation on the object, or
    for a VMI on its VM, names the check, `*` or `all`."""
    kinds = [obj.kind] + (["VirtualMachine"] if obj.kind == "VirtualMachineInstance" else [])
    for kind in kinds:
        key = next(k.key for k in KIND_BY_KEY.values() if k.kind == kind)
        record = state.get(key, obj.namespace, obj.name)
        value = ((record.metadata.annotations or {}) if record is not None else {}).get(CONFIG.exemption_annotation)
        ids = {p.strip() for p in value.split(",")} if value else set()
        if ids & {check, "*", "all"}:
            return True
    return False


def _few_objects() -> list[int]:
    """Indexes into OBJECTS: two running VMs and their VMIs, a PVC, a node; few, so that
    changes come back to the same objects."""
    vmis = [(o.metadata.namespace, o.metadata.name) for k, o in OBJECTS if k.kind == "VirtualMachineInstance"][:2]
    chosen = [i for i, (k, o) in enumerate(OBJECTS) if (o.metadata.namespace, o.metadata.name) in vmis]
    chosen.append(next(i for i, (k, _) in enumerate(OBJECTS) if k.kind == "PersistentVolumeClaim"))
    chosen.append(next(i for i, (k, _) in enumerate(OBJECTS) if k.kind == "Node"))
    return chosen


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(_few_objects()),
            st.sampled_from([None, "*", "all", "rwo_vm_disks", "migration_readiness, cpu_overcommit"]),
            st.booleans(),
        ),
        min_size=1,
        max_size=10,
    )
)
def test_the_filter_drops_exactly_the_objects_exempt_from_a_check(steps):
    """The exempt objects gathered per check, from exemption tables brought up to date by
    the objects that changed, are the ones the annotations name, after any changes."""
    store = _demo()
    _Filter(store.state(), CONFIG).exempt("rwo_vm_disks")
    for index, value, delete in steps:
        kind, record = OBJECTS[index]
        if delete:
            store.apply(Deleted(kind, uid_of(kind, record)))
        else:
            current = store.state().get(kind.key, record.metadata.namespace, record.metadata.name) or record
            annotations = {
                k: v for k, v in (current.metadata.annotations or {}).items() if k != CONFIG.exemption_annotation
            }
            if value is not None:
                annotations[CONFIG.exemption_annotation] = value
            meta = msgspec.structs.replace(current.metadata, annotations=annotations)
            store.apply(Upserted(kind, msgspec.structs.replace(current, metadata=meta)))
        state = store.state()
        flt = _Filter(state, CONFIG)
        for key, objects in state.objects.items():
            for obj in objects:
                ref = ObjectRef(KIND_BY_KEY[key].kind, obj.metadata.namespace, obj.metadata.name)
                for check in ("rwo_vm_disks", "migration_readiness", "cpu_overcommit"):
                    assert flt.keep(check, ref) is not _exempt_reference(state, ref, check), (check, ref)


def _with_memory(vmi, memory: float):
    """A copy of a VMI whose memory request is `memory` bytes."""
    requests = {**((vmi.spec.domain.resources.requests if vmi.spec.domain.resources else None) or {}), "memory": memory}
    resources = msgspec.structs.replace(vmi.spec.domain.resources, requests=requests)
    return _replaced(vmi, ("spec", "domain", "resources"), resources)


def _running(store: Store) -> list:
    return [v for v in store.state().vmis if v.status and v.status.phase == "Running" and v.status.node_name]


def _assert_as_full(store: Store, reuse: Reuse, what: str) -> None:
    state = store.state()
    assert _outcome(evaluate(state, CONFIG, reuse=reuse)) == _outcome(evaluate(state.forgetting(), CONFIG)), what


def test_a_vm_without_a_target_is_judged_again_when_any_room_changes():
    """A VM with no target names the roomiest matching node and its free room: a launcher
    pod changing elsewhere changes that text, though the VM did not change."""
    store, reuse = _demo(), _reuse()
    vmi_kind = KIND_BY_KEY["virtualmachineinstances.kubevirt.io"]
    store.apply(Upserted(vmi_kind, _with_memory(_running(store)[0], 2.0**40)))  # fits nowhere
    evaluate(store.state(), CONFIG, reuse=reuse)
    for vmi in _running(store)[1:]:
        store.apply(Upserted(vmi_kind, _with_memory(vmi, (vmi_requests(vmi, 10.0)[1] or 0.0) + 2.0**30)))
        _assert_as_full(store, reuse, f"after {vmi.metadata.name}'s memory request grew")


def _reasons(store: Store, vmi) -> dict:
    from ov_exporter.domain.readiness import verdicts

    return verdicts(store.state().forgetting(), CONFIG)[(vmi.metadata.namespace, vmi.metadata.name)].reasons


def test_a_vm_is_judged_again_when_the_room_its_target_test_passed_changes():
    """A VM whose target test only the roomiest node passes: that node shrinking leaves it
    without a target, though neither the VM nor its VMI changed."""
    from ov_exporter.domain.placement import launcher_overhead, static_candidates, targets

    store, reuse = _demo(), _reuse()
    vmi_kind, node_kind = KIND_BY_KEY["virtualmachineinstances.kubevirt.io"], KIND_BY_KEY["nodes"]
    tried = 0
    for vmi in _running(store):
        t = targets(store.state(), CONFIG)
        rooms = sorted(
            (r for r in static_candidates(t, vmi.spec) if r.name != vmi.status.node_name),
            key=lambda r: r.memory_free,
        )
        if len(rooms) < 2 or rooms[-1].memory_free - rooms[-2].memory_free < 2.0**31:
            continue
        # A memory request only the roomiest room fits, with the launcher overhead.
        wanted = (rooms[-1].memory_free + rooms[-2].memory_free) / 2
        memory = wanted - launcher_overhead(_with_memory(vmi, wanted), wanted)
        store.apply(Upserted(vmi_kind, _with_memory(vmi, float(int(memory)))))
        _assert_as_full(store, reuse, f"after {vmi.metadata.name} grew")
        assert "no_target_node" not in _reasons(store, vmi)
        roomiest = store.state().get("nodes", "", rooms[-1].name)
        gap = rooms[-1].memory_free - rooms[-2].memory_free  # it fits the second roomiest no more
        allocatable = {**roomiest.status.allocatable, "memory": roomiest.status.allocatable["memory"] - gap}
        store.apply(Upserted(node_kind, _replaced(roomiest, ("status", "allocatable"), allocatable)))
        _assert_as_full(store, reuse, f"after {roomiest.metadata.name} shrank under {vmi.metadata.name}")
        assert "no_target_node" in _reasons(store, vmi)
        tried += 1
    assert tried, "no VMI whose roomiest target stands out"


def test_capped_and_exempted_series_after_changes_equal_a_full_evaluation():
    """With a series cap that bites, the per-object series a check kept from its last run
    (its samples the very same objects) are what a full evaluation keeps, through
    exemptions given and taken back and changes of the judged objects."""
    config = msgspec.convert({"series-cap": 2}, Config)
    store, reuse = _demo(), _reuse()
    evaluate(store.state(), config, reuse=reuse)
    for turn, index in enumerate(MEMOISED[::3]):
        kind, record = OBJECTS[index]
        current = store.state().get(kind.key, record.metadata.namespace, record.metadata.name) or record
        for how in (5 + turn % 12, 0, 2, 1):  # a memoised-upon field, exempted, annotations dropped, relabelled
            current = _changed(current, how)
            store.apply(Upserted(kind, current))
            state = store.state()
            assert _outcome(evaluate(state, config, reuse=reuse)) == _outcome(evaluate(state.forgetting(), config)), (
                f"after {kind.kind} {record.metadata.namespace}/{record.metadata.name} changed ({how})"
            )
    assert any(r.dropped for r in evaluate(store.state(), config, reuse=reuse).results), "the cap never bit"


def test_a_vm_naming_one_claim_twice_then_another_equals_a_full_evaluation():
    """Two volumes of one VM on the same PVC (whether KubeVirt's admission takes it was not
    checked: the exporter must judge whatever the API serves), then the VM names another
    claim: the claim's VMs are kept per claim, and the second volume finds it gone."""
    store, reuse = _demo(), _reuse()
    vm_kind = KIND_BY_KEY["virtualmachines.kubevirt.io"]
    vm = next(v for v in store.state().vms if any(vol.persistent_volume_claim for vol in _volumes(v)))
    claimed = next(vol for vol in _volumes(vm) if vol.persistent_volume_claim)
    twice = [*_volumes(vm), msgspec.structs.replace(claimed, name=f"{claimed.name}-again")]
    store.apply(Upserted(vm_kind, _replaced(vm, ("spec", "template", "spec", "volumes"), twice)))
    evaluate(store.state(), CONFIG, reuse=reuse)
    _assert_as_full(store, reuse, f"after {vm.metadata.name} named {claimed.persistent_volume_claim.claim_name} twice")
    other = msgspec.structs.replace(
        claimed, persistent_volume_claim=msgspec.structs.replace(claimed.persistent_volume_claim, claim_name="other")
    )
    store.apply(Upserted(vm_kind, _replaced(vm, ("spec", "template", "spec", "volumes"), [other])))
    _assert_as_full(store, reuse, f"after {vm.metadata.name} named another claim")


def _volumes(vm) -> list:
    spec = vm.spec.template.spec if vm.spec and vm.spec.template else None
    return list(spec.volumes or []) if spec is not None else []
