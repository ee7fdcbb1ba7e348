"""The plan model's definitions (domain/planmodel.py), on hand-made instances."""

from ov_exporter.domain.planmodel import Instance, PlanNode, PlanVM, feasible, spread, utilisation

GI = 2**30


def _instance(max_vms=None):
    nodes = (
        PlanNode("a", 10.0, 10 * GI, 2.0, 1 * GI, max_vms, 2),
        PlanNode("b", 10.0, 10 * GI, 0.0, 0.0, max_vms, 0),
    )
    vms = (
        PlanVM(("ns", "fixed"), 2.0, 1 * GI, "a", frozenset({"a"}), False, "rwo_disk"),
        PlanVM(("ns", "free"), 4.0, 4 * GI, "a", frozenset({"a", "b"}), True),
    )
    return Instance(nodes, vms)


def test_utilisation_counts_fixed_load_once_and_movable_vms_where_assigned():
    inst = _instance()
    assert utilisation(inst, {}) == {"a": (0.6, 0.5), "b": (0.0, 0.0)}
    assert utilisation(inst, {("ns", "free"): "b"}) == {"a": (0.2, 0.1), "b": (0.4, 0.4)}


def test_spread_is_the_worse_resource_over_counted_nodes():
    inst = _instance()
    assert spread(inst, {}) == 0.6
    assert abs(spread(inst, {("ns", "free"): "b"}) - 0.3) < 1e-12
    drained = Instance((inst.nodes[0], PlanNode("b", 10.0, 10 * GI, 0, 0, None, 0, in_spread=False)), inst.vms)
    assert spread(drained, {}) == 0.0


def test_feasible_names_each_violation():
    inst = _instance(max_vms=1)
    problems = feasible(inst, {("ns", "fixed"): "b"})
    assert any(p.startswith("allowed: ns/fixed is not movable") for p in problems)
    assert any(p.startswith("max_vms: a") for p in feasible(inst, {}))
    assert feasible(_instance(), {("ns", "free"): "b"}) == []
    over = Instance(_instance().nodes, (*_instance().vms, PlanVM(("ns", "big"), 9.0, GI, "b", frozenset("ab"), True)))
    assert any(p.startswith("capacity: a CPU") for p in feasible(over, {("ns", "big"): "a"}))
    assert any(p.startswith("allowed: ns/free on c") for p in feasible(_instance(), {("ns", "free"): "c"}))
