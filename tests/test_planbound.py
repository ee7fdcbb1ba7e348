"""The exact baseline (domain/planbound.py) and the descheduler simulation (tests/planbaselines.py).

The bound must never exceed the spread of any feasible assignment (the current placement, the
descheduler's result, random feasible ones, the optimum); the optimum must be feasible and no
worse than any of them; the simulated descheduler must keep to its own limits.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import subprocess
import sys
from dataclasses import replace

import pytest
from ov_exporter.domain import planbound, planner
from ov_exporter.domain.planbound import (
    SPREAD_GAP,
    NoFeasiblePlan,
    fewest_moves,
    fluid_bound,
    lower_bound,
    lp_bound,
    optimal,
    solver_installed,
)
from ov_exporter.domain.planmodel import Instance, PlanNode, PlanVM, feasible, spread
from ov_exporter.domain.planner import effective_min_gain

from .conftest import ROOT
from .planbaselines import (
    CPU_ALLOCATION_RATIO,
    HIGH_DEVIATION,
    MAX_EVICTIONS_PER_CYCLE,
    MAX_EVICTIONS_PER_NODE,
    Cluster,
    anti_affine_pairs,
    cluster,
    descheduler,
    descheduler_cycle,
    greedy_plan_instance,
    node_metric,
    plan_instance,
)

GI = 2**30
SMALL = range(12)  # seeds of the instances the optimum is proven on in the tests


def small(seed: int):
    """Instances small enough for the MILP to be proven in well under a second."""
    rng = random.Random(1000 + seed)
    return cluster(seed, nodes=rng.randint(3, 5), vms=rng.randint(6, 16))


def random_feasible(instance: Instance, rng: random.Random, steps: int = 40) -> dict:
    """A random walk of single moves that keeps the assignment feasible."""
    assignment: dict = {}
    movable = [vm for vm in instance.vms if vm.movable]
    names = [n.name for n in instance.nodes]
    for _ in range(steps):
        if not movable:
            break
        vm = rng.choice(movable)
        target = rng.choice(names)
        trial = dict(assignment)
        trial[vm.key] = target
        if not feasible(instance, trial):
            assignment = trial
    return {k: v for k, v in assignment.items() if v != next(vm.node for vm in instance.vms if vm.key == k)}


# ------------------------------------------------------------------ the generator


def test_generator_is_seeded_and_draws_every_kind_of_constraint():
    assert cluster(7) == cluster(7)
    assert cluster(7) != cluster(8)
    clusters = [cluster(seed) for seed in range(30)]
    for c in clusters:
        inst = c.instance
        assert 3 <= len(inst.nodes) <= 8 and 1 <= len(inst.vms) <= 60
        assert feasible(inst, {}) == [], f"seed {c.seed}: the drawn placement is infeasible"
        for vm in inst.vms:
            assert vm.node in vm.allowed
            assert vm.movable == (vm.reason == "")
    vms = [vm for c in clusters for vm in c.instance.vms]
    names_per = [len(c.instance.nodes) for c in clusters for _vm in c.instance.vms]
    assert any(not vm.movable for vm in vms)
    assert any(vm.movable and len(vm.allowed) < n for vm, n in zip(vms, names_per))  # pinned or tainted away
    assert any(c.tainted for c in clusters)
    assert any(n.max_vms is not None for c in clusters for n in c.instance.nodes)
    assert any(len({n.cpu_capacity for n in c.instance.nodes}) > 1 for c in clusters)  # uneven nodes
    assert all(spread(c.instance, {}) > 0 for c in clusters)


def test_generator_and_descheduler_do_not_depend_on_the_hash_seed():
    code = (
        "from tests.planbaselines import cluster, descheduler\n"
        "for s in range(15):\n"
        "    c = cluster(s)\n"
        "    vms = [(v.key, v.cpu, v.memory, v.node, sorted(v.allowed), v.movable) for v in c.instance.vms]\n"
        "    print(c.instance.nodes, vms, sorted(c.tainted), sorted(descheduler(c).assignment.items()))\n"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": h}
        ).stdout
        for h in ("1", "2")
    }
    assert len(outputs) == 1


# ------------------------------------------------------------------ the bound and the optimum


def _two_nodes(vms_on_a: int, size: float = 2.0) -> Instance:
    nodes = (PlanNode("a", 10.0, 10 * GI, 0.0, 0.0, None, vms_on_a), PlanNode("b", 10.0, 10 * GI, 0.0, 0.0, None, 0))
    vms = tuple(PlanVM(("ns", f"v{i}"), size, size * GI, "a", frozenset("ab"), True) for i in range(vms_on_a))
    return Instance(nodes, vms)


def test_optimum_and_bound_on_a_hand_made_instance():
    inst = _two_nodes(4)
    assignment, best, moves, proven = optimal(inst, 10)
    assert proven and moves == 2 and best == 0.0
    assert sorted(assignment.values()) == ["b", "b"]
    assert lower_bound(inst) == 0.0
    # Three equal VMs cannot split evenly: one node holds two (0.4), the other one (0.2).
    inst = _two_nodes(3)
    assignment, best, moves, proven = optimal(inst, 10)
    assert proven and moves == 1 and abs(best - 0.2) < 1e-9
    assert 0.0 <= lower_bound(inst) <= best


def test_optimum_with_a_move_cost_buys_spread_only_when_it_pays():
    # Four VMs of 0.2 on a: each move lowers the spread by 0.4 (0.8, 0.4, 0.0).
    _a, best, moves, proven = optimal(_two_nodes(4), 10, move_cost=0.35)
    assert proven and moves == 2 and best == 0.0  # 0.0 + 0.7 < 0.8
    _a, best, moves, proven = optimal(_two_nodes(4), 10, move_cost=0.45)
    assert proven and moves == 0 and abs(best - 0.8) < 1e-9  # 0.9 a move: not worth it
    # Three: one move takes 0.6 to 0.2.
    assert optimal(_two_nodes(3), 10, move_cost=0.3)[2] == 1
    assert optimal(_two_nodes(3), 10, move_cost=0.45)[2] == 0


@pytest.mark.parametrize("seed", SMALL)
def test_optimum_with_a_move_cost_is_no_worse_than_any_plan_on_that_objective(seed):
    c = small(seed)
    inst = c.instance
    gain = 0.01
    assignment, best, moves, proven = optimal(inst, 30, move_cost=gain)
    assert proven and feasible(inst, assignment) == [] and moves == len(assignment)
    assert abs(best - spread(inst, assignment)) < 1e-12
    value = best + gain * moves
    _a, lexi, lexi_moves, _p = optimal(inst, 30)
    assert lexi <= best + SPREAD_GAP + 1e-9  # the least spread is the least
    plan = plan_instance(inst, threshold=0.0, min_gain=gain)
    rng = random.Random(seed)
    others = [{}, descheduler(c).assignment, plan.assignment] + [random_feasible(inst, rng) for _ in range(20)]
    for other in [*others, _a]:
        if not feasible(inst, other):
            assert value <= spread(inst, other) + gain * len(other) + SPREAD_GAP + 1e-9


def test_fluid_bound_is_exact_when_nothing_can_move():
    nodes = (PlanNode("a", 10.0, 10 * GI, 8.0, 1 * GI, None, 1), PlanNode("b", 10.0, 10 * GI, 0.0, 0.0, None, 1))
    vms = (
        PlanVM(("ns", "x"), 8.0, GI, "a", frozenset("a"), False, "rwo_volume"),
        PlanVM(("ns", "y"), 1.0, GI, "b", frozenset("ab"), True),
    )
    inst = Instance(nodes, vms)
    # y is movable: at best it joins a (util 0.9 / 0) or stays (0.8 / 0.1): spread 0.7.
    assert abs(fluid_bound(inst) - 0.7) < 1e-9
    _a, best, moves, proven = optimal(inst, 10)
    assert proven and moves == 0 and abs(best - 0.7) < 1e-9
    assert abs(lower_bound(inst) - 0.7) < 1e-5


@pytest.mark.parametrize("seed", SMALL)
def test_bound_below_optimum_and_every_feasible_plan(seed):
    c = small(seed)
    inst = c.instance
    bound = lower_bound(inst)
    assert fluid_bound(inst) <= bound + 1e-12
    assignment, best, moves, proven = optimal(inst, 30)
    assert proven, f"seed {seed}: not proven in 30 s"
    assert feasible(inst, assignment) == []
    nodes_now = {vm.key: vm.node for vm in inst.vms}
    assert moves == len(assignment) and all(nodes_now[key] != node for key, node in assignment.items())
    assert abs(best - spread(inst, assignment)) < 1e-12
    assert bound <= best + 1e-9
    searched = lower_bound(inst, time_limit=1.0)
    assert bound - 1e-9 <= searched <= best + 1e-9
    # The second phase alone, at the optimum's spread, needs as many moves.
    again, fewest, proven_again = fewest_moves(inst, best, 30)
    assert proven_again and fewest == moves and feasible(inst, again) == []
    assert spread(inst, again) <= best + 1e-9
    # No feasible plan beats the optimum (beyond its proven gap), none goes below the bound.
    rng = random.Random(seed)
    others = [{}, descheduler(c).assignment] + [random_feasible(inst, rng) for _ in range(20)]
    for other in others:
        if feasible(inst, other):
            continue
        value = spread(inst, other)
        assert bound <= value + 1e-9
        assert best <= value + SPREAD_GAP + 1e-9
        if value <= best - 1e-12:  # as good as the optimum: it may not use fewer moves
            assert len(other) >= moves


def test_bound_below_current_spread_on_larger_instances():
    for seed in range(40):
        inst = cluster(seed).instance
        assert lower_bound(inst) <= spread(inst, {}) + 1e-9
        lp = lp_bound(inst)
        assert lp is not None and fluid_bound(inst) <= lp + 1e-6


def test_no_feasible_plan_is_named():
    nodes = (PlanNode("a", 10.0, 10 * GI, 0.0, 0.0, None, 1),)
    stranded = Instance(nodes, (PlanVM(("ns", "lost"), 1.0, GI, "gone", frozenset({"gone"}), True),))
    with pytest.raises(NoFeasiblePlan, match="ns/lost"):
        optimal(stranded, 5)
    full = Instance((PlanNode("a", 10.0, 10 * GI, 12.0, 0.0, None, 1),), ())
    with pytest.raises(NoFeasiblePlan, match="node a"):
        lower_bound(full)
    too_big = Instance(
        (PlanNode("a", 10.0, 10 * GI, 0.0, 0.0, None, 0), PlanNode("b", 10.0, 10 * GI, 0.0, 0.0, None, 0)),
        (PlanVM(("ns", "huge"), 12.0, GI, "a", frozenset("ab"), True),),
    )
    with pytest.raises(NoFeasiblePlan):
        optimal(too_big, 5)


def test_the_solver_is_imported_only_when_used():
    code = (
        "import sys, ov_exporter.cli, ov_exporter.domain.planbound; "
        "print(sorted(m for m in ('highspy', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------ the descheduler


@pytest.mark.parametrize("seed", range(40))
def test_descheduler_keeps_its_limits(seed):
    c = cluster(seed)
    inst = c.instance
    assignment: dict = {}
    rng = random.Random(seed)
    by_key = {vm.key: vm for vm in inst.vms}
    limits = {n.name: n.max_vms for n in inst.nodes}
    for _cycle in range(50):
        metric = node_metric(c, assignment)
        average = sum(metric.values()) / len(metric)
        before = dict(assignment)
        events = descheduler_cycle(c, assignment, rng)
        if not events:
            break
        assert len(events) <= MAX_EVICTIONS_PER_CYCLE
        per_source: dict[str, int] = {}
        for key, source, target in events:
            vm = by_key[key]
            assert vm.movable, f"{key} is not evictable"
            assert before.get(key, vm.node) == source
            assert metric[source] > average + HIGH_DEVIATION, "evicted from a node that is not overutilised"
            per_source[source] = per_source.get(source, 0) + 1
            if target is not None:
                assert target != source and target in vm.allowed
        assert max(per_source.values()) <= min(1, MAX_EVICTIONS_PER_NODE)
        # What the scheduler placed fits its view of the nodes.
        requested = {n: list(c.fixed_requests[n]) + [0] for n in c.allocatable}
        for vm in inst.vms:
            node = assignment.get(vm.key, vm.node)
            if vm.movable:
                requested[node][0] += vm.cpu / CPU_ALLOCATION_RATIO
                requested[node][1] += vm.memory
            requested[node][2] += 1
        for _key, _source, target in events:
            if target is not None:
                cpu, mem, count = requested[target]
                assert cpu <= c.allocatable[target][0] + 1e-9 and mem <= c.allocatable[target][1]
                assert limits[target] is None or count <= limits[target]


def test_descheduler_settles_or_stops_and_counts_what_it_did():
    runs = [descheduler(cluster(seed)) for seed in range(30)]
    assert any(r.migrations for r in runs)
    for r in runs:
        assert r.settled or len(r.cycles) == 50
        assert r.migrations <= r.evictions
        assert r.moved_twice <= r.migrations // 2


def _as_cluster(inst: Instance) -> Cluster:
    return Cluster(
        seed=0,
        instance=inst,
        allocatable={n.name: (20.0, 12 * GI) for n in inst.nodes},
        fixed_requests={n.name: (0.0, 0.0) for n in inst.nodes},
        tolerated={},
        tainted=frozenset(),
    )


def test_descheduler_leaves_a_balanced_cluster_and_moves_one_vm_per_node_and_cycle():
    balanced = _two_nodes(4)
    moved = {("ns", "v0"): "b", ("ns", "v1"): "b"}
    assert descheduler_cycle(_as_cluster(balanced), dict(moved), random.Random(0)) == []
    run = descheduler(_as_cluster(balanced))
    # a at 0.8 and b at 0: average 40 %, a above 50 %: one eviction per cycle, to b, until a
    # is within 10 points of the average (0.6 / 0.2: average 40, a at 60 > 50; 0.4 / 0.4: done).
    assert [len(c) for c in run.cycles] == [1, 1]
    assert sorted(run.assignment.values()) == ["b", "b"] and run.settled
    assert spread(balanced, run.assignment) == 0.0


# ------------------------------------------------------------------ the planner


@pytest.mark.parametrize("seed", range(60))
def test_planner_plan_is_feasible_and_never_below_the_bound(seed):
    inst = cluster(seed).instance
    bound = lower_bound(inst)
    for options in ({}, {"threshold": 0.0, "min_gain": 0.0}):
        plan = plan_instance(inst, **options)
        assert feasible(inst, plan.assignment) == []
        assert len({m.key for m in plan.moves}) == len(plan.moves), "a VM moved twice"
        assert abs(plan.spread_after - spread(inst, plan.assignment)) < 1e-9
        assert plan.spread_after >= bound - 1e-9
        assert plan.spread_after <= plan.spread_before + 1e-12
    # With the defaults a move must be worth the minimum gain: the plan lowers the spread by
    # at least 0.01 per move, and no prefix of it is worth more (its spread plus 0.01 a move).
    plan = plan_instance(inst)
    assert plan.spread_before - plan.spread_after >= 0.01 * len(plan.moves) - 1e-9
    worth = plan.spread_after + 0.01 * len(plan.moves)
    for k in range(len(plan.moves)):
        assert spread(inst, {m.key: m.target for m in plan.moves[:k]}) + 0.01 * k >= worth - 1e-9


@pytest.mark.parametrize("seed", SMALL)
def test_fewest_moves_never_exceed_a_plan_reaching_the_same_spread(seed):
    inst = small(seed).instance
    plan = plan_instance(inst, threshold=0.0, min_gain=0.0)
    assignment, moves, proven = fewest_moves(inst, plan.spread_after, 30)
    assert proven and feasible(inst, assignment) == []
    assert moves <= len(plan.moves) and moves == len(assignment)
    assert spread(inst, assignment) <= plan.spread_after + 1e-9
    with pytest.raises(NoFeasiblePlan):
        fewest_moves(inst, lower_bound(inst, time_limit=5.0) - 0.01, 30)


def test_the_solver_prints_nothing(capfd):
    optimal(_two_nodes(4), 5)
    lower_bound(_two_nodes(3))
    assert capfd.readouterr() == ("", "")


def test_without_the_solver_the_bound_is_the_fluid_one_and_the_plan_says_so():
    """The container image leaves the `solver` extra out: the plan still states a proven bound."""
    code = (
        "import sys, importlib.util, json\n"
        "_find = importlib.util.find_spec\n"  # as if highspy were not installed
        "importlib.util.find_spec = lambda name, *a: None if name == 'highspy' else _find(name, *a)\n"
        "sys.modules['highspy'] = None\n"
        "from ov_exporter.domain import planbound\n"
        "from tests.planbaselines import cluster\n"
        "inst = cluster(3).instance\n"
        "print(json.dumps([planbound.solver_installed(), planbound.lower_bound(inst), planbound.fluid_bound(inst)]))\n"
        "from ov_exporter.cli import main\n"
        "main(['plan', '--demo', '--output', 'markdown'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    first, _, markdown = out.stdout.partition("\n")
    installed, bound, fluid = json.loads(first)
    assert installed is False and bound == fluid
    assert "the fluid bound only" in markdown and "`solver` extra" in markdown, out.stdout + out.stderr
    assert solver_installed() and lower_bound(cluster(3).instance) >= fluid  # the solver's is at least as tight


def test_the_minimum_gain_holds_up_to_eight_nodes_and_shrinks_with_more():
    def nodes(n: int, drained: int = 0) -> Instance:
        return Instance(
            tuple(PlanNode(f"n{i}", 10.0, 10 * GI, 0.0, 0.0, None, 0, in_spread=i >= drained) for i in range(n)), ()
        )

    assert effective_min_gain(nodes(3), 0.01) == 0.01
    assert effective_min_gain(nodes(8), 0.01) == 0.01
    assert abs(effective_min_gain(nodes(16), 0.01) - 0.005) < 1e-12
    assert abs(effective_min_gain(nodes(500), 0.01) - 0.00016) < 1e-12
    assert effective_min_gain(nodes(10, drained=2), 0.01) == 0.01  # only the counted nodes count


@pytest.mark.parametrize("seed", [0, 11, 20])
def test_a_spread_plan_keeps_to_max_moves_and_stays_feasible(seed):
    """--max-moves caps the spread goal's plan: the annealed and searched candidates too (they
    once returned 9 moves for at most 3)."""
    inst = cluster(seed).instance
    whole = plan_instance(inst)
    for most in (1, 3, len(whole.moves) - 1):
        capped = plan_instance(inst, max_moves=most)
        assert 0 < len(capped.moves) <= most < len(whole.moves)
        assert set(feasible(inst, capped.assignment)) <= set(feasible(inst, {}))  # no new violation
        assert spread(inst, capped.assignment) < spread(inst, {})


def test_the_search_spends_a_capped_budget_of_moves_well():
    """Seed 11: the descheduler ends at 39.4 % after 4 migrations; 3 moves can reach it
    (planbound.fewest_moves proves 3). Truncating the searches' longer plans to 3 moves gave
    41.5 %; searching within the cap reaches the descheduler's spread."""
    c = cluster(11)
    run = descheduler(c)
    assert run.migrations == 4
    capped = plan_instance(c.instance, max_moves=3)
    assert len(capped.moves) <= 3
    assert spread(c.instance, capped.assignment) <= spread(c.instance, run.assignment) + 1e-12


def test_more_effort_reaches_the_proven_optimum_where_the_default_budget_falls_short():
    """Seed 24 (threshold and min-gain 0): with the default budgets the search stops at 17.89 %
    against a proven optimum of 16.76 % (20 moves, which can be ordered); ten times the budgets
    reach it. The plan stays within every limit and moves each VM once."""
    inst = cluster(24).instance
    first = plan_instance(inst, threshold=0.0, min_gain=0.0)
    more = plan_instance(inst, threshold=0.0, min_gain=0.0, effort=10)
    assert spread(inst, more.assignment) < spread(inst, first.assignment) - 0.01
    assert spread(inst, more.assignment) <= 0.1676 * 1.05
    assert not set(feasible(inst, more.assignment)) - set(feasible(inst, {}))
    assert len({m.key for m in more.moves}) == len(more.moves)
    with pytest.raises(ValueError, match="effort must be 1 or more"):
        plan_instance(inst, effort=0)


def test_more_effort_never_gives_a_worse_plan():
    """Seed 38 (threshold and min-gain 0): the walks with ten times the budgets alone end at
    13.7 %, above the 9.1 % of effort 1; the results at effort 1 stay candidates."""
    inst = cluster(38).instance
    first = plan_instance(inst, threshold=0.0, min_gain=0.0)
    more = plan_instance(inst, threshold=0.0, min_gain=0.0, effort=10)
    assert spread(inst, more.assignment) <= spread(inst, first.assignment) + 1e-12


def test_ruin_and_recreate_leads_out_of_the_basin_the_walks_settle_in():
    """Seed 27 (threshold and min-gain 0): the annealing's walks and the iterated local search
    settle at 15.2 % or above, even with a million steps, where the proven optimum over plans
    that can be ordered is 11.97 % (19 moves): it turns large VMs round several nodes, which
    single moves and exchanges reach only through worse states. Emptying a few nodes and
    placing their VMs again, largest first, finds 12.66 %."""

    inst = cluster(27).instance
    ctx = planner.Context(inst, planner.Basis(read_at=0.0, nodes={}, vmis={}), 5, 2, frozenset(), None)
    reached = {}
    for method, seed in planner.SEARCHES:
        moves = planner._anneal(ctx, [], seed, planner.ANNEAL_PRICE, method)
        assert moves is not None
        assert len({vm.key for vm, _s, _t in moves}) == len(moves)  # each VM moved once
        assignment = planner._assignment(moves)
        assert not set(feasible(inst, assignment)) - set(feasible(inst, {}))
        assert planner._sequence(inst, moves) is not None  # in an order within the limits
        reached[method, seed] = spread(inst, assignment)
    others = min(v for (method, _seed), v in reached.items() if method != "recreate")
    assert reached["recreate", 0] <= 0.1197 * 1.06 < others
    plan = plan_instance(inst, threshold=0.0, min_gain=0.0)
    assert spread(inst, plan.assignment) <= reached["recreate", 0] + 1e-12


# ------------------------------------------------------------------ identical VMs counted together


def tiny_with_twins(seed: int) -> Instance:
    """2-4 uneven nodes and 4-7 VMs of three flavours (two with the same CPU), all on one or two
    nodes: many VMs are identical (same sizes, node and allowed nodes); some pinned, VM limits."""
    rng = random.Random(5000 + seed)
    names = [f"n{i}" for i in range(rng.randint(2, 4))]
    nodes = tuple(
        PlanNode(
            name,
            rng.choice((8.0, 12.0, 16.0)),
            rng.choice((16, 24, 32)) * GI,
            rng.uniform(0, 2),
            rng.uniform(0, 4) * GI,
            rng.choice((None, None, 3)),
            0,
        )
        for name in names
    )
    flavours = [(1.0, 2 * GI), (1.0, 6 * GI), (2.0, 4 * GI)]
    vms = []
    for i in range(rng.randint(4, 7)):
        cpu, memory = rng.choice(flavours)
        node = rng.choice(names[:2])
        allowed = frozenset(names) if rng.random() < 0.8 else frozenset({node, rng.choice(names)})
        vms.append(PlanVM(("ns", f"v{i}"), cpu, memory, node, allowed, True))
    count = {n: sum(vm.node == n for vm in vms) for n in names}
    nodes = tuple(n if n.max_vms is None or n.max_vms >= count[n.name] else replace(n, max_vms=None) for n in nodes)
    return Instance(nodes, tuple(vms))


def feasible_assignments(instance: Instance):
    """Every assignment of the movable VMs (the ones that move) within the limits."""
    vms = [vm for vm in instance.vms if vm.movable]
    names = [n.name for n in instance.nodes]
    for targets in itertools.product(*([n for n in names if n in vm.allowed] for vm in vms)):
        assignment = {vm.key: t for vm, t in zip(vms, targets, strict=True) if t != vm.node}
        if not feasible(instance, assignment):
            yield assignment


def brute_force(instance: Instance) -> list[tuple[float, int]]:
    """(spread, moves) of every feasible assignment."""
    return [(spread(instance, a), len(a)) for a in feasible_assignments(instance)]


@pytest.mark.parametrize("seed", range(12))
def test_counting_identical_vms_keeps_the_brute_force_optimum(seed):
    inst = tiny_with_twins(seed)
    model = planbound._build(inst)
    assert sum(map(len, model.classes)) == len(inst.vms)
    every = brute_force(inst)
    least = min(s for s, _m in every)
    assignment, best, moves, proven = optimal(inst, 10)
    assert proven and feasible(inst, assignment) == []
    assert best <= least + SPREAD_GAP + 1e-9
    assert moves == min(m for s, m in every if s <= best + 1e-9)
    gain = 0.02
    _a, at, cost_moves, proven = optimal(inst, 10, move_cost=gain)
    assert proven and at + gain * cost_moves <= min(s + gain * m for s, m in every) + SPREAD_GAP + 1e-9
    # The LP bound (on the spread model's counts) stays between the fluid bound and the optimum.
    assert fluid_bound(inst) - 1e-6 <= lp_bound(inst) <= best + 1e-9


def test_some_tiny_instances_have_identical_vms():
    classes = [planbound._build(tiny_with_twins(seed)).classes for seed in range(12)]
    assert sum(len(c) < sum(map(len, c)) for c in classes) >= 6
    spread_classes = [planbound._build(tiny_with_twins(seed), by_node=False).classes for seed in range(12)]
    assert sum(map(len, spread_classes)) < sum(map(len, classes))  # VMs on different nodes share a class


@pytest.mark.parametrize("by_node", [True, False])
@pytest.mark.parametrize("seed", range(6))
def test_counts_map_back_to_each_vm_once_the_first_ones_staying(seed, by_node):
    """In the full model a class's VMs all run on one node; in the spread model (by_node False,
    the first phase of `optimal`) on several: as many stay as the counts allow."""
    inst = tiny_with_twins(seed)
    model = planbound._build(inst, by_node=by_node)
    assert model.by_node is by_node and (planbound._stay_columns(model) != []) is by_node
    rng = random.Random(seed)
    values = [0.0] * model.n_columns
    wanted: dict[tuple[int, str], int] = {}
    for k, members in enumerate(model.classes):
        left = len(members)  # a random split of the class over its candidate nodes
        for i, node in enumerate(model.targets[k]):
            n = left if i == len(model.targets[k]) - 1 else rng.randint(0, left)
            wanted[k, node] = n
            left -= n
    for c, (k, node) in enumerate(model.columns):
        values[c] = wanted[k, node] + rng.choice((0.0, 3e-7, -3e-7))  # within the solver's tolerance
    assignment = planbound._assignment(model, values)
    by_key = {vm.key: vm for vm in model.vms}
    assert all(by_key[key].node != node for key, node in assignment.items())  # only VMs that move
    for k, members in enumerate(model.classes):
        now = [model.vms[i].node for i in members]
        placed = [assignment.get(model.vms[i].key, model.vms[i].node) for i in members]
        for node in model.targets[k]:
            assert placed.count(node) == wanted[k, node]
        stay = sum(min(wanted.get((k, node), 0), now.count(node)) for node in set(now))
        assert sum(p == n for p, n in zip(placed, now, strict=True)) == stay  # as many stay as can
        for node in set(now):  # the first ones of a node stay
            on = [p for p, n in zip(placed, now, strict=True) if n == node]
            kept = min(wanted.get((k, node), 0), len(on))
            assert on[:kept] == [node] * kept
    if by_node:
        assert all(len({model.vms[i].node for i in members}) == 1 for members in model.classes)
    else:
        assert len(model.classes) <= len(planbound._build(inst).classes)


# ------------------------------------------------------------------ plans whose moves can be ordered


def _swap_between_full_nodes() -> Instance:
    """Two nodes of one VM each and a VM limit of one: exchanging the VMs balances them (the
    MILP's optimum), but neither can go first, as its target is full until the other leaves."""
    nodes = (
        PlanNode("a", 10.0, 10 * GI, 0.0, 0.0, 1, 1),
        PlanNode("b", 20.0, 20 * GI, 0.0, 0.0, 1, 1),
    )
    vms = (
        PlanVM(("ns", "x"), 6.0, 6 * GI, "a", frozenset("ab"), True),
        PlanVM(("ns", "y"), 2.0, 2 * GI, "b", frozenset("ab"), True),
    )
    return Instance(nodes, vms)


def test_a_swap_between_full_nodes_is_the_order_blind_optimum_but_not_a_plan():
    inst = _swap_between_full_nodes()
    assignment, best, moves, proven = optimal(inst, 10)
    assert proven and moves == 2 and abs(best - 0.1) < 1e-9  # a: 2/10, b: 6/20
    assert planbound.order_moves(inst, assignment) == (None, True)
    assignment, best, moves, proven = optimal(inst, 10, orderable=True)
    assert proven and assignment == {} and moves == 0 and abs(best - 0.5) < 1e-9  # nothing can move
    assert fewest_moves(inst, 0.1, 10)[1] == 2
    with pytest.raises((NoFeasiblePlan, TimeoutError)):
        fewest_moves(inst, 0.1, 10, orderable=True)


def _orderable_by_subsets(instance: Instance, assignment: dict) -> bool:
    """Whether some order of the moves keeps every step within the limits: every set of moves
    reachable one fitting move at a time, from none (independent of planbound.order_moves)."""
    vms = {vm.key: vm for vm in instance.vms}
    moves = [(vms[k], t) for k, t in assignment.items() if t != vms[k].node]
    nodes = {n.name: n for n in instance.nodes}
    start = {n: [nodes[n].cpu_used, nodes[n].memory_used, 0] for n in nodes}
    for vm in instance.vms:
        start[vm.node][0] += vm.cpu if vm.movable else 0.0
        start[vm.node][1] += vm.memory if vm.movable else 0.0
        start[vm.node][2] += 1
    limit = {
        n: (
            max(nodes[n].cpu_allowed, start[n][0]) + 1e-9,
            max(nodes[n].memory_allowed, start[n][1]) + 1e-9,
            float("inf") if nodes[n].max_vms is None else max(nodes[n].max_vms, start[n][2]),
        )
        for n in nodes
    }
    reached, frontier = {0}, [0]
    while frontier:
        done = frontier.pop()
        load = {n: list(v) for n, v in start.items()}
        for i, (vm, t) in enumerate(moves):
            if done >> i & 1:
                for j, amount in enumerate((vm.cpu, vm.memory, 1)):
                    load[vm.node][j] -= amount
                    load[t][j] += amount
        for i, (vm, t) in enumerate(moves):
            if not done >> i & 1 and all(load[t][j] + a <= limit[t][j] for j, a in enumerate((vm.cpu, vm.memory, 1))):
                if done | 1 << i not in reached:
                    reached.add(done | 1 << i)
                    frontier.append(done | 1 << i)
    return (1 << len(moves)) - 1 in reached


def tight(seed: int) -> Instance:
    """3 nodes filled to their VM limit or close to their memory, 4-6 VMs of uneven sizes: many
    balancing exchanges cannot be ordered."""
    rng = random.Random(7000 + seed)
    names = ["n0", "n1", "n2"]
    flavours = [(1.0, 2 * GI), (2.0, 8 * GI), (4.0, 4 * GI), (6.0, 12 * GI)]
    vms = []
    for i in range(rng.randint(4, 6)):
        cpu, memory = rng.choice(flavours)
        node = rng.choice(names)
        allowed = frozenset(names) if rng.random() < 0.85 else frozenset({node, rng.choice(names)})
        vms.append(PlanVM(("ns", f"v{i}"), cpu, memory, node, allowed, True))
    nodes = []
    for name in names:
        on = [vm for vm in vms if vm.node == name]
        memory = sum(vm.memory for vm in on)
        cap = rng.choice((16.0, 24.0))
        nodes.append(
            PlanNode(
                name,
                cap,
                max(memory + rng.choice((0, 2, 6)) * GI, 8 * GI),
                0.0,
                0.0,
                rng.choice((len(on), len(on) + 1, None)) if on else None,
                len(on),
            )
        )
    return Instance(tuple(nodes), tuple(vms))


@pytest.mark.parametrize("seed", range(16))
def test_the_orderable_optimum_is_the_brute_force_one_over_assignments_and_orders(seed):
    inst = tight(seed)
    every = []
    for assignment in feasible_assignments(inst):
        every.append((spread(inst, assignment), len(assignment), _orderable_by_subsets(inst, assignment)))
        keys, complete = planbound.order_moves(inst, assignment)
        assert complete and (keys is not None) == every[-1][2]
    least = min(s for s, _m, ok in every if ok)
    assignment, best, moves, proven = optimal(inst, 10, orderable=True)
    assert proven and feasible(inst, assignment) == [] and _orderable_by_subsets(inst, assignment)
    assert least - 1e-9 <= best <= least + SPREAD_GAP + 1e-9
    assert moves == min(m for s, m, ok in every if ok and s <= best + 1e-9)
    _a, fewest, proven = fewest_moves(inst, best, 10, orderable=True)
    assert proven and fewest == moves


def test_some_tight_instances_have_an_order_blind_optimum_that_cannot_be_ordered():
    worse = 0
    for seed in range(16):
        inst = tight(seed)
        blind, best, _moves, _proven = optimal(inst, 10)
        if planbound.order_moves(inst, blind)[0] is None:
            worse += optimal(inst, 10, orderable=True)[1] > best + SPREAD_GAP
    assert worse >= 2


@pytest.mark.parametrize("seed", range(6))
def test_order_moves_agrees_with_the_planners_sequence(seed):
    """Where planner._sequence searches every order (few moves), the two agree on which
    assignments can be ordered, and order_moves's order keeps every step within the limits."""

    inst = tight(seed)
    rng = random.Random(seed)
    vms = [vm for vm in inst.vms if vm.movable]
    by_key = {vm.key: vm for vm in vms}
    for _ in range(40):
        assignment = {vm.key: rng.choice(sorted(vm.allowed)) for vm in vms if rng.random() < 0.7}
        assignment = {k: t for k, t in assignment.items() if t != by_key[k].node}
        keys, complete = planbound.order_moves(inst, assignment)
        moves = [(by_key[k], by_key[k].node, t) for k, t in assignment.items()]
        assert complete and (keys is not None) == (planner._sequence(inst, moves) is not None)
        if keys is not None:
            assert sorted(keys) == sorted(assignment)
            for k in range(len(keys) + 1):  # every prefix within the limits the steps allow
                assert _orderable_by_subsets(inst, {key: assignment[key] for key in keys[:k]})


def test_the_orderable_optimum_is_no_worse_than_the_planners_plan():
    for seed in SMALL:
        inst = small(seed).instance
        plan = plan_instance(inst, threshold=0.0, min_gain=0.0)
        _a, best, _moves, proven = optimal(inst, 20, orderable=True)
        assert proven and best <= spread(inst, plan.assignment) + SPREAD_GAP + 1e-9


# ------------------------------------------------------------------ fewer moves for the same spread


def test_the_polish_turns_a_chain_of_alike_vms_into_one_move():
    """a: x -> y and b: y -> z, a and b alike, leave the loads as a: x -> z alone."""

    nodes = tuple(PlanNode(n, 10.0, 10 * GI, 0.0, 0.0, None, 0) for n in "xyz")
    a = PlanVM(("ns", "a"), 2.0, 2 * GI, "x", frozenset("xyz"), True)
    b = PlanVM(("ns", "b"), 2.0, 2 * GI, "y", frozenset("xyz"), True)
    c = PlanVM(("ns", "c"), 2.0, 2 * GI, "x", frozenset("x"), True)
    inst = Instance(nodes, (a, b, c))
    ctx = planner.Context(inst, planner.Basis(read_at=0.0, nodes={}, vmis={}), 5, 2, frozenset(), None)
    chain = [(a, "x", "y"), (b, "y", "z")]
    fewer = planner._fewer_moves(ctx, chain)
    assert fewer == [(a, "x", "z")] and spread(inst, {a.key: "z"}) == spread(inst, planner._assignment(chain)) == 0.0


def test_another_placement_reaches_the_plans_spread_with_the_fewest_moves_on_seed_41():
    """With effort 10, the plan reached the optimum's 7.57 % with 10 moves where 9 do, by
    another placement (no two of its moves make one). Ruin and recreate from the plan, with
    each move priced above any spread and no state above the plan's spread, finds the 9,
    proven the fewest over orderable plans."""
    inst = cluster(41).instance
    plan = plan_instance(inst, threshold=0.0, min_gain=0.0, effort=10)
    reached = spread(inst, plan.assignment)
    assert reached <= 0.0757 + 1e-4
    _a, fewest, proven = fewest_moves(inst, reached, 20, orderable=True, known=plan.assignment)
    assert proven and len(plan.moves) == fewest == 9


def test_the_walk_counts_no_state_above_its_ceiling():

    inst = cluster(41).instance
    movable = [vm for vm in inst.vms if vm.movable and len(vm.allowed) > 1]
    walk = planner._Walk(inst, movable, price=1.0)
    start = walk.measure()[0]
    assert start == spread(inst, {})  # nothing moved
    walk.ceiling = start - 1e-6
    assert walk.measure() == (math.inf, math.inf)
    walk.ceiling = start + 1e-6
    assert walk.measure()[0] == start


def test_the_planner_reaches_its_spread_with_the_fewest_moves_on_seed_19():
    """With effort 10, the planner's plan had 8 moves where 7 reach its spread (a chain of two
    alike VMs, w1 -> w3 -> w7); the polish makes it 7, proven the fewest over orderable plans."""
    inst = cluster(19).instance
    plan = plan_instance(inst, threshold=0.0, min_gain=0.0, effort=10)
    reached = spread(inst, plan.assignment)
    _a, fewest, proven = fewest_moves(inst, reached, 20, orderable=True, known=plan.assignment)
    assert proven and len(plan.moves) == fewest == 7


# ------------------------------------------------------------------ the exact two-node re-split


def _walk_at_random(seed: int, price: float):
    """A walk on a tiny instance, its VMs on random allowed nodes within the limits."""

    inst = tiny_with_twins(seed)
    rng = random.Random(seed)
    walk = planner._Walk(inst, [vm for vm in inst.vms if vm.movable], price)
    for _ in range(30):
        v = rng.randrange(len(walk.vms))
        target = rng.choice(walk.allowed[v])
        vm = walk.vms[v]
        if target != walk.where[v] and walk.fits(target, vm.cpu, vm.memory, 1):
            walk.shift(v, target)
    walk.set_where(list(walk.where))
    return walk


def _within_limits(walk) -> bool:
    return all(load[i] <= lim[i] for load, lim in zip(walk.load, walk.lim, strict=True) for i in range(3))


def _best_split_by_brute_force(walk, group: tuple[int, ...]):
    """The least (spread + price per move, surrogate) over every split of the VMs on the group."""
    pool = [v for v, node in enumerate(walk.where) if node in group]
    start, best = list(walk.where), None
    for targets in itertools.product(*([n for n in group if n in walk.allowed[v]] for v in pool)):
        where = list(start)
        for v, t in zip(pool, targets, strict=True):
            where[v] = t
        walk.set_where(where)
        if _within_limits(walk) and walk.moved <= walk.cap:
            measured = walk.measure()
            best = measured if best is None or measured < best else best
    walk.set_where(start)
    return best


@pytest.mark.parametrize("price", [1e-4, 0.05])
@pytest.mark.parametrize("seed", range(12))
def test_the_resplit_finds_the_best_split_of_two_or_three_nodes(seed, price):
    """On tiny instances with alike VMs, from a random state: after resplit(group) no split of
    the VMs on the group's nodes, enumerated one by one, is better; when none beat the state
    it stays."""
    walk = _walk_at_random(seed, price)
    nodes = range(len(walk.names))
    for group in [*itertools.combinations(nodes, 2), *itertools.combinations(nodes, 3)]:
        before, where = walk.measure(), list(walk.where)
        brute = _best_split_by_brute_force(walk, group)
        changed = walk.resplit(group, 10**6)
        after = walk.measure()
        assert _within_limits(walk)
        improves = brute[0] < before[0] - 1e-12 or (brute[0] <= before[0] + 1e-12 and brute[1] < before[1] - 1e-12)
        assert changed == improves
        if changed:
            assert after[0] == pytest.approx(brute[0], abs=1e-9) and after[1] == pytest.approx(brute[1], abs=1e-9)
        else:
            assert walk.where == where and after == pytest.approx(before, abs=1e-12)


def test_the_resplit_keeps_its_budget_the_moves_cap_and_the_order_test():
    walk = _walk_at_random(3, 1e-4)
    start = list(walk.where)
    assert not walk.resplit((0, 1), 0) and walk.where == start  # no partial split may be built
    walk.orderable = lambda moves: False
    walk.resplit_groups(10**6, sizes=(2, 3))
    assert walk.where == start  # no split passes the order test
    walk.orderable, walk.cap = None, walk.moved
    walk.resplit_groups(10**6, sizes=(2, 3))
    assert walk.where != start and walk.moved <= walk.cap and _within_limits(walk)


def test_the_exact_resplit_reaches_the_optimum_where_single_moves_and_exchanges_stop():
    """Threshold and min-gain 0, the default budgets. Seed 14 (3 nodes, 49 VMs): the searches
    stopped at 0.37 % against a proven optimum of 0.19 % with 21 moves; seed 37: at 6.12 % with
    20 moves against 5.35 % with 17; both reached by re-splitting two nodes' VMs exactly. Seed
    27: at 12.66 % against 11.97 %, both with 19 moves; reached by re-splitting three nodes'
    VMs, whose best split at that spread has 18 moves that cannot be ordered: the order test
    takes one with 19 that can."""
    for seed, best, moves in ((14, 0.0019227, 21), (37, 0.053504, 17), (27, 0.119653, 19)):
        inst = cluster(seed).instance
        plan = plan_instance(inst, threshold=0.0, min_gain=0.0)
        assert spread(inst, plan.assignment) <= best * 1.05 and len(plan.moves) <= moves * 1.1
        assert not set(feasible(inst, plan.assignment)) - set(feasible(inst, {}))


def test_the_resplit_tries_the_groups_of_the_busiest_and_idlest_nodes_first():
    """On many nodes the budget ends a sweep early; it goes to the pairs with a node at either end
    of the utilisations (CPU or memory), which set the spread. 32 nodes: with the groups in
    index order the budget went to the first nodes' pairs, and seed 1 stopped at 21.9 % instead
    of 18.2 %."""

    inst = cluster(1, nodes=32, vms=300).instance
    walk = planner._Walk(inst, planner._movable(inst), 0.0)
    ends = set()
    for util in walk.util:
        ranked = sorted(range(walk.count), key=util.__getitem__)
        ends |= {ranked[0], ranked[-1]}
    end_nodes = {node for node, p in enumerate(walk.pos) if p in ends}
    assert 2 <= len(end_nodes) < len(walk.names) // 4
    tried: list[tuple[int, ...]] = []
    resplit = walk.resplit
    walk.resplit = lambda group, budget: tried.append(group) or resplit(group, budget)
    walk.resplit_groups(20_000)
    assert len(tried) >= 5
    assert all(set(group) & end_nodes for group in tried)


@pytest.mark.parametrize("seed", [4, 25, 27])
def test_anti_affine_pairs_start_apart_and_the_plan_keeps_them_apart(seed):
    """The plan bench's pod-pairs clusters: each pair on two nodes now, a partner's node out of
    the other's allowed nodes, the partner's source and target refused while it migrates, and
    the planner's plan (the annealing walks cut at the first refusal) keeps every pair apart
    and is no worse on its objective than the greedy plan alone. On these seeds the walks'
    plans, uncut, put a pair together (of seeds 0-53 only these three, 2026-12-07)."""
    pairs = anti_affine_pairs(seed)
    inst, partners = pairs.instance, pairs.partners
    assert len(partners) >= 2 and pairs.together({}) == 0
    by_key = {vm.key: vm for vm in inst.vms}
    a, (b,) = next(iter(partners.items()))
    assert by_key[b].node not in by_key[a].allowed
    target = next(n for n in by_key[a].allowed if n != by_key[a].node)
    assert pairs.accept(by_key[a], target, {})
    assert not pairs.accept(by_key[a], target, {b: target})  # the partner arrives there
    assert not pairs.accept(by_key[b], by_key[a].node, {})  # a partner's node now
    plan = plan_instance(inst, pairs.accept)
    assert pairs.together(plan.assignment) == 0 and feasible(inst, plan.assignment) == []
    greedy = greedy_plan_instance(inst, pairs.accept)
    gain = planner.DEFAULT_MIN_GAIN
    objective = spread(inst, plan.assignment) + gain * len(plan.moves)
    assert objective <= spread(inst, greedy.assignment) + gain * len(greedy.moves) + 1e-9
