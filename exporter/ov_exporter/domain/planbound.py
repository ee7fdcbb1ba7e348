"""How good can a rebalance plan be? A proven lower bound on the spread, and the exact optimum.

Both solve the plan model of domain/planmodel.py (its docstring holds the definitions): every
movable VM goes to one node of its `allowed` set among the instance's nodes; each node stays
within its CPU and memory limits (`cpu_allowed`, `memory_allowed`) and its `max_vms` (unmovable
VMs count where they run), all on the capacity load; utilisation is the spread load's (the
same on the allocation basis, measured usage on the usage basis);
the spread is the larger over CPU and memory of (max - min utilisation) over the nodes with
`in_spread`.

`lower_bound(instance)`: no feasible assignment has a smaller spread. It is the larger of
  * a fluid bound, computed in O(nodes log nodes) at any size: per resource, the load no plan
    moves sets a floor under the busiest node, and pouring all movable load into the nodes that
    can receive it (water-filling) gives a ceiling over the idlest one; and
  * on instances up to LP_MAX_COLUMNS assignment variables, when HiGHS is installed (the
    `solver` extra, highspy; the container image leaves it out), the LP relaxation of the exact
    model below (VMs divisible). The LP's objective is reduced by
    LP_SAFETY so that the solver's feasibility tolerances cannot lift it above the true bound.

  * with `time_limit` > 0 (seconds), on the same instances, the dual bound that branch and
    bound on the exact model proves in that time (at least the LP's; on small instances often
    the optimum itself).

`optimal(instance, time_limit)`: the mixed-integer program, solved by HiGHS in two phases:
minimise the spread, then, with the spread held at that value, minimise the moves. `proven` is
True when both phases finished: the spread is within SPREAD_GAP (absolute) of the best
possible and no plan within that spread needs fewer moves. On a time-out it returns the best
plan found with `proven` False. `optimal(instance, time_limit, move_cost=g)` solves the
planner's own objective instead, the spread plus g per moved VM (g = `rebalance-min-gain`),
proven to SPREAD_GAP, then the fewest moves at the spread it reaches.
`fewest_moves(instance, max_spread, time_limit)` is the second phase alone: the fewest moves
that reach a given spread (to judge a plan's moves at its spread).

The exact model counts identical VMs together (same capacity and spread sizes, same node now,
same candidate nodes): one integer variable per such class and candidate node, the number of
its VMs placed there (0 to the class's size); the moves are the class's size less its count on
its own node. Its LP relaxation is the per-VM model's (a class's counts spread evenly over its
VMs give a per-VM solution, per-VM values summed give the counts), and branch and bound no
longer tells apart plans that only swap identical VMs. Which VMs of a class move is then a
choice: the first ones in the instance's order stay. The spread does not depend on where a VM
runs now: the least spread (the first phase of `optimal` without a move cost, `search_bound`,
`lp_bound`) is solved on the spread model, whose classes also join identical VMs on different
nodes (as many of them stay as the counts allow); the moves on the full one. LP_MAX_COLUMNS
still counts the per-VM pairs (movable VM, allowed node).

`optimal(..., orderable=True)` and `fewest_moves(..., orderable=True)` solve the model the
planner plans in: a plan moves each VM at most once, straight to its target, and each step must
stay within the limits (planner._sequence; a node's limit is the larger of its own and its load
now). The MILP above ignores the order of the moves: its optimum may exchange VMs between full
nodes, which no order can do (tests/planbaselines seeds 2, 5, 27 and 35 at the time of writing).
The orderable optimum is a cut loop (_run_orderable): solve; when the assignment found has no
order (order_moves, exhaustive over the orders), add a cut that only such assignments violate
(_blocked_set_cut: a set of its moves none of which can go first; else a no-good on its counts)
and solve again. `proven` then means optimal under cuts that are valid, on an assignment that
can be ordered. Without a move cost the least spread over all assignments is solved first (the
spread model, fast), and the fewest-moves loop at that spread usually ends it.

The solver is imported on first use only, so the exporter's start and memory do not pay for it;
`optimal` and `fewest_moves` need it (the benchmark and the tests install it).
"""

from __future__ import annotations

import importlib.util
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .planmodel import (
    EPSILON,
    Instance,
    PlanNode,
    PlanVM,
    VMKey,
    feasible,
    loads,
    same_loads,
    spread,
    spread_capacity,
    spread_size,
    step_limits,
    utilisation,
)

# The exact optimum is proven to this absolute spread (0.01 percentage point of utilisation).
SPREAD_GAP = 1e-4
# Subtracted from the LP relaxation's value before it is quoted as a bound.
LP_SAFETY = 1e-6
# Above this many assignment variables the LP is skipped and the fluid bound alone is quoted.
LP_MAX_COLUMNS = 20_000
RESOURCES = (0, 1)  # CPU, memory


class NoFeasiblePlan(ValueError):
    """No assignment satisfies the constraints (named in the message)."""


# ------------------------------------------------------------------ the model


@dataclass
class _Model:
    """The assignment MILP as arrays: columns, then rows of (indices, values, lower, upper).
    An assignment variable counts the VMs of a class of identical VMs on a node (module
    docstring), an integer from 0 to the class's size."""

    vms: list[PlanVM]  # the movable VMs
    classes: list[list[int]]  # per class, its VMs (indices into vms, in instance order)
    targets: list[list[str]]  # per class, its candidate nodes
    columns: list[tuple[int, str]]  # (class index, node) per assignment variable
    n_columns: int  # assignment variables + U_cpu, L_cpu, U_mem, L_mem, S
    spread_column: int
    rows: list[tuple[list[int], list[float], float, float]]
    by_node: bool  # classes keep VMs on different nodes apart (the moves can be counted)

    def size(self, column: int) -> int:
        """The class size: the column's upper bound."""
        return len(self.classes[self.columns[column][0]])


def _capacity(node: PlanNode, resource: int) -> tuple[float, float, float]:
    """(capacity utilisation is relative to, hard limit, load no plan moves)."""
    if resource == 0:
        return node.cpu_capacity, node.cpu_allowed, node.cpu_used
    return node.memory_capacity, node.memory_allowed, node.memory_used


def _classes(vms: list[PlanVM], names: list[str], by_node: bool) -> tuple[list[list[int]], list[list[str]]]:
    """The movable VMs grouped by (sizes, node now when `by_node`, candidate nodes), classes
    and their VMs in the order their first VM comes in `vms`."""
    by_key: dict[tuple[Any, ...], int] = {}
    classes: list[list[int]] = []
    targets: list[list[str]] = []
    for i, vm in enumerate(vms):
        nodes = [n for n in names if n in vm.allowed]
        if not nodes:
            raise NoFeasiblePlan(f"{vm.key[0]}/{vm.key[1]}: none of its allowed nodes is a node of the instance")
        key = (vm.cpu, vm.memory, vm.spread_cpu, vm.spread_memory, vm.node if by_node else "", tuple(nodes))
        k = by_key.setdefault(key, len(classes))
        if k == len(classes):
            classes.append([])
            targets.append(nodes)
        classes[k].append(i)
    return classes, targets


def _build(instance: Instance, by_node: bool = True) -> _Model:
    """The model; with `by_node` False, VMs that differ only in their node now share a class:
    the spread model, which cannot count moves."""
    names = [n.name for n in instance.nodes]
    known = set(names)
    vms = [vm for vm in instance.vms if vm.movable]
    classes, targets = _classes(vms, names, by_node)
    columns = [(k, node) for k, nodes in enumerate(targets) for node in nodes]
    node_columns: dict[str, list[int]] = {n: [] for n in names}
    for col, (_k, node) in enumerate(columns):
        node_columns[node].append(col)
    base = len(columns)
    upper = {0: base, 1: base + 2}  # U_r; L_r is the next column
    spread_column = base + 4
    rows: list[tuple[list[int], list[float], float, float]] = []
    start = 0
    for k, nodes in enumerate(targets):  # each class's VMs placed, all of them
        size = float(len(classes[k]))
        rows.append((list(range(start, start + len(nodes))), [1.0] * len(nodes), size, size))
        start += len(nodes)
    fixed_count = {n: 0 for n in names}
    for vm in instance.vms:
        if not vm.movable and vm.node in known:
            fixed_count[vm.node] += 1
    for node in instance.nodes:
        cols = node_columns[node.name]
        for r in RESOURCES:
            _cap, limit, used = _capacity(node, r)
            size = [_size(vms[classes[columns[c][0]][0]], r) for c in cols]
            if used > limit + EPSILON:
                raise NoFeasiblePlan(f"node {node.name}: the load no plan moves exceeds its {_LABEL[r]} limit")
            rows.append((cols, size, -math.inf, limit - used + EPSILON))
            # Utilisation rows: the spread load (the capacity load on the allocation basis).
            capacity, used = spread_capacity(node, r), _spread_used(node, r)
            size = [spread_size(vms[classes[columns[c][0]][0]], r) for c in cols]
            if node.in_spread and capacity > 0:
                # used/cap + sum(size x)/cap <= U  and  >= L
                u, low = upper[r], upper[r] + 1
                scaled = [s / capacity for s in size]
                rows.append(([*cols, u], [*scaled, -1.0], -math.inf, -used / capacity))
                rows.append(([*cols, low], [*scaled, -1.0], -used / capacity, math.inf))
            elif node.in_spread:  # no capacity: utilisation 0 (the capacity row keeps the load at 0)
                rows.append(([upper[r]], [1.0], 0.0, math.inf))
                rows.append(([upper[r] + 1], [1.0], -math.inf, 0.0))
        if node.max_vms is not None:
            room = node.max_vms - fixed_count[node.name]
            if room < 0:
                raise NoFeasiblePlan(f"node {node.name}: its unmovable VMs exceed max_vms {node.max_vms}")
            rows.append((cols, [1.0] * len(cols), -math.inf, float(room)))
    if sum(1 for n in instance.nodes if n.in_spread) >= 2:
        for r in RESOURCES:  # S >= U_r - L_r
            rows.append(([spread_column, upper[r], upper[r] + 1], [1.0, -1.0, 1.0], 0.0, math.inf))
    return _Model(vms, classes, targets, columns, base + 5, spread_column, rows, by_node)


_LABEL = {0: "CPU", 1: "memory"}


def _size(vm: PlanVM, resource: int) -> float:
    return vm.cpu if resource == 0 else vm.memory


def _spread_used(node: PlanNode, resource: int) -> float:
    return node.spread_cpu_used if resource == 0 else node.spread_memory_used


def _highs(model: _Model, integer: bool, time_limit: float | None) -> Any:
    import highspy  # lazy: only the benchmark, the tests and `plan` need the solver
    import numpy as np

    # The bare solver: highspy.Highs adds Python callbacks and prints HiGHS's banner on stdout
    # when constructed, which would corrupt `ov-exporter plan --output json`.
    from highspy._core import _Highs

    h = _Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    if time_limit is not None:
        h.setOptionValue("time_limit", max(0.01, time_limit))
    n = model.n_columns
    lower = np.zeros(n)
    upper = np.full(n, math.inf)
    upper[: len(model.columns)] = [model.size(c) for c in range(len(model.columns))]
    lower[len(model.columns) : model.spread_column] = -math.inf  # U and L are free
    h.addVars(n, lower, upper)
    if integer and model.columns:
        idx = np.arange(len(model.columns), dtype=np.int32)
        h.changeColsIntegrality(len(idx), idx, np.full(len(idx), highspy.HighsVarType.kInteger, dtype=np.uint8))
    starts, indices, values, lows, highs = [], [], [], [], []
    for cols, vals, lo, hi in model.rows:
        starts.append(len(indices))
        indices.extend(cols)
        values.extend(vals)
        lows.append(lo)
        highs.append(hi)
    h.addRows(
        len(model.rows),
        np.array(lows, dtype=np.float64),
        np.array(highs, dtype=np.float64),
        len(indices),
        np.array(starts, dtype=np.int32),
        np.array(indices, dtype=np.int32),
        np.array(values, dtype=np.float64),
    )
    h.changeColsCost(1, np.array([model.spread_column], dtype=np.int32), np.array([1.0]))
    return h


# ------------------------------------------------------------------ the bounds


def fluid_bound(instance: Instance) -> float:
    """A lower bound on the spread from the load no plan moves and water-filling, in the spread
    load. What nodes outside the spread could absorb is known in the capacity load only: where
    the two loads differ (the usage basis), such a node is taken to absorb any amount."""
    spread_nodes = [n for n in instance.nodes if n.in_spread]
    if len(spread_nodes) < 2:
        return 0.0
    movable = [vm for vm in instance.vms if vm.movable]
    same = same_loads(instance)
    # A movable VM allowed on one node only is as good as fixed there.
    fixed_extra: dict[str, list[float]] = {n.name: [0.0, 0.0] for n in instance.nodes}
    free: list[PlanVM] = []
    names = frozenset(n.name for n in instance.nodes)
    for vm in movable:
        where = vm.allowed if vm.allowed <= names else vm.allowed & names
        if len(where) == 1:
            node = next(iter(where))
            fixed_extra[node][0] += vm.spread_cpu
            fixed_extra[node][1] += vm.spread_memory
        else:
            free.append(vm)
    receiving = _union_within(names, (vm.allowed for vm in free))
    best = 0.0
    for r in RESOURCES:
        amount = sum(spread_size(vm, r) for vm in free)
        fixed_util: list[float] = []  # utilisation of spread nodes that receive nothing
        pool: list[tuple[float, float]] = []  # (capacity, fixed load) of spread nodes that may receive
        absorb = 0.0  # what nodes outside the spread could take
        for node in instance.nodes:
            _cap, limit, _used = _capacity(node, r)
            capacity, used = spread_capacity(node, r), _spread_used(node, r) + fixed_extra[node.name][r]
            if not node.in_spread:
                if node.name in receiving:
                    absorb += max(0.0, limit - used) if same else math.inf
                continue
            if capacity <= 0:
                if used > EPSILON:
                    return math.inf
                fixed_util.append(0.0)
            elif node.name in receiving:
                pool.append((capacity, used))
            else:
                fixed_util.append(used / capacity)
        floors = [u for u in fixed_util] + [used / cap for cap, used in pool]
        top = max(floors)  # the busiest node carries at least its fixed load
        idlest = min(fixed_util) if fixed_util else math.inf
        if pool:
            idlest = min(idlest, _water_level(pool, amount))
            top = max(top, _water_level(pool, max(0.0, amount - absorb), from_zero=True))
        best = max(best, top - idlest)
    return max(0.0, best)


def _water_level(pool: Sequence[tuple[float, float]], amount: float, from_zero: bool = False) -> float:
    """The level W at which sum over the pool of max(0, W * capacity - load) equals `amount`,
    starting from the lowest fixed utilisation (or from 0 when `from_zero` and amount is 0)."""
    levels = sorted((used / cap, cap, used) for cap, used in pool)
    if amount <= 0:
        return 0.0 if from_zero else levels[0][0]
    cap_sum = used_sum = 0.0
    for i, (level, cap, used) in enumerate(levels):
        cap_sum += cap
        used_sum += used
        # with nodes 0..i filled to W: W * cap_sum - used_sum = amount
        w = (amount + used_sum) / cap_sum
        if i + 1 == len(levels) or w <= levels[i + 1][0]:
            return max(w, level)
    return levels[-1][0]  # not reached


def _union_within(names: frozenset[str], sets: Iterable[frozenset[str]]) -> set[str]:
    """The union of `sets` within `names`. Most VMs share one set of allowed nodes, and one
    set().union(*sets) of 8,000 sets of 500 names held the GIL for tens of ms (an event-loop
    stall in `serve`): each distinct set is added once, and the walk stops at `names`."""
    union: set[str] = set()
    seen: set[int] = set()
    for allowed in sets:
        if id(allowed) in seen:
            continue
        seen.add(id(allowed))
        union |= allowed & names
        if len(union) == len(names):
            break
    return union


def _too_large(instance: Instance) -> bool:
    """More than LP_MAX_COLUMNS assignment variables; counted only up to the limit (at XL,
    a count of every VM's allowed nodes took tens of ms for a yes known after 40 VMs)."""
    names = {n.name for n in instance.nodes}
    columns = 0
    for vm in instance.vms:
        if vm.movable:
            columns += len(vm.allowed) if vm.allowed <= names else len(vm.allowed & names)
            if columns > LP_MAX_COLUMNS:
                return True
    return False


def solver_installed() -> bool:
    """Whether HiGHS (the `solver` extra, highspy) can be imported: the LP and branch-and-bound
    bounds need it, the fluid bound does not."""
    return importlib.util.find_spec("highspy") is not None


def lp_bound(instance: Instance) -> float | None:
    """The LP relaxation's spread less LP_SAFETY, or None when the instance is too large or
    the solver is not installed."""
    if _too_large(instance) or not solver_installed():
        return None
    import highspy

    h = _highs(_build(instance, by_node=False), integer=False, time_limit=None)
    h.run()
    status = h.getModelStatus()
    if status == highspy.HighsModelStatus.kInfeasible:
        raise NoFeasiblePlan("the LP relaxation is infeasible: no assignment fits the capacities and limits")
    if status != highspy.HighsModelStatus.kOptimal:
        return None
    return max(0.0, h.getInfo().objective_function_value - LP_SAFETY)


def search_bound(instance: Instance, time_limit: float) -> float | None:
    """The dual bound branch and bound reaches in `time_limit` seconds (at least the LP's),
    less LP_SAFETY; None when the instance is too large, the root was not solved in time or
    the solver is not installed."""
    if _too_large(instance) or not solver_installed():
        return None
    import highspy

    model = _build(instance, by_node=False)
    h = _highs(model, integer=True, time_limit=time_limit)
    h.setOptionValue("mip_abs_gap", SPREAD_GAP)
    h.setOptionValue("mip_rel_gap", 0.0)
    h.run()
    if h.getModelStatus() == highspy.HighsModelStatus.kInfeasible:
        raise NoFeasiblePlan("no assignment satisfies the capacities, allowed nodes and VM limits")
    dual = h.getInfo().mip_dual_bound
    return max(0.0, dual - LP_SAFETY) if math.isfinite(dual) else None


def lower_bound(instance: Instance, time_limit: float = 0.0) -> float:
    """A proven lower bound on the smallest spread any feasible assignment reaches: the fluid
    bound, the LP relaxation's and, with a `time_limit` (seconds), what branch and bound proves
    in that time, whichever is highest."""
    bounds = [fluid_bound(instance), lp_bound(instance)]
    if time_limit > 0:
        bounds.append(search_bound(instance, time_limit))
    return max(b for b in bounds if b is not None)


# ------------------------------------------------------------------ the optimum


def optimal(
    instance: Instance,
    time_limit: float = 60.0,
    move_cost: float = 0.0,
    orderable: bool = False,
    known: dict[VMKey, str] | None = None,
) -> tuple[dict[VMKey, str], float, int, bool]:
    """The smallest spread, then the fewest moves: (assignment of the VMs that move, spread,
    moves, proven). With `move_cost` > 0, the smallest spread plus `move_cost` per moved VM
    instead (the planner's own objective with `rebalance-min-gain` = move_cost), proven to
    SPREAD_GAP, then the fewest moves at that value. Raises NoFeasiblePlan when no assignment
    satisfies the constraints and TimeoutError when no feasible assignment was found in time.
    With `orderable`, over the assignments whose moves can be made one after the other within
    the limits only (order_moves; the cut loop of _run_orderable), both phases; `known`, an
    assignment that can be ordered (a planner's plan), is offered to the solver as a first
    solution and returned when nothing better is found in time (`proven` then False unless
    the solver proves it optimal). The optimum does not depend on it."""
    import highspy

    if orderable:
        return _optimal_orderable(instance, time_limit, move_cost, known)
    deadline = time.monotonic() + time_limit
    model = _build(instance)
    # The least spread does not depend on where VMs run now: the first phase solves the spread
    # model, where such VMs share a class (fewer, larger classes); the moves need the full one.
    first_model = model if move_cost > 0 else _build(instance, by_node=False)
    h = _highs(first_model, integer=True, time_limit=time_limit)
    _first_phase(h, first_model, move_cost)
    _start_from_current(h, first_model, instance)
    h.run()
    status = h.getModelStatus()
    if status == highspy.HighsModelStatus.kInfeasible:
        raise NoFeasiblePlan("no assignment satisfies the capacities, allowed nodes and VM limits")
    if h.getInfo().primal_solution_status != FEASIBLE:
        raise TimeoutError(f"no feasible assignment found in {time_limit:g} s")
    solved = list(h.getSolution().col_value)
    found, held = _assignment(first_model, solved), solved[first_model.spread_column]
    if first_model is not model:
        h = _highs(model, integer=True, time_limit=max(0.01, deadline - time.monotonic()))
    first = _values(model, instance, found)
    assert first is not None  # _assignment places every VM on one of its candidates
    # The second phase holds the spread at most at the first phase's assignment's own spread.
    # The solver's S may sit up to its feasibility tolerance below it: held at S, the second
    # phase once proved 12 moves where 9 reach the same spread (tests/planbaselines seed 41).
    # With move_cost, at the value found: the fewest moves at that spread cannot cost more.
    own = first[model.spread_column]
    first[model.spread_column] = own if move_cost > 0 else max(own, held)
    values, moves_proven, _none = _fewest_moves(h, model, first[model.spread_column], deadline, first)
    proven = status == highspy.HighsModelStatus.kOptimal and moves_proven
    assignment = _assignment(model, values)
    return assignment, spread(instance, assignment), len(assignment), proven


def _first_phase(h: Any, model: _Model, move_cost: float) -> None:
    """The first phase's objective on `h`: the spread, proven to SPREAD_GAP, plus `move_cost`
    per moved VM."""
    import numpy as np

    h.setOptionValue("mip_abs_gap", SPREAD_GAP)
    h.setOptionValue("mip_rel_gap", 0.0)
    stay = _stay_columns(model)
    if move_cost > 0 and stay:
        # moves = movable VMs - the VMs that stay: cost -move_cost per stay column, plus a constant
        h.changeColsCost(len(stay), np.array(stay, dtype=np.int32), np.full(len(stay), -move_cost))
        h.changeObjectiveOffset(move_cost * len(model.vms))


def fewest_moves(
    instance: Instance,
    max_spread: float,
    time_limit: float = 60.0,
    orderable: bool = False,
    known: dict[VMKey, str] | None = None,
) -> tuple[dict[VMKey, str], int, bool]:
    """The fewest moves reaching a spread of at most `max_spread`: (assignment, moves, proven).
    Raises NoFeasiblePlan when no assignment reaches it, TimeoutError when none was found in time.
    With `orderable`, among the assignments whose moves can be ordered (order_moves); `known`,
    one that can and reaches the spread (a planner's plan), is offered to the solver first."""
    import highspy

    model = _build(instance)
    h = _highs(model, integer=True, time_limit=time_limit)
    cuts = _Cuts(model.n_columns, []) if orderable else None
    if cuts is not None:
        offer = None
        if known is not None and spread(instance, known) <= max_spread + 1e-9 and not feasible(instance, known):
            offer = _values(model, instance, known) if order_moves(instance, known)[0] is not None else None
        deadline = time.monotonic() + time_limit
        values, proven, none = _fewest_moves(h, model, max_spread, deadline, offer, instance, cuts)
        if not values:
            if none and not cuts.added:
                raise NoFeasiblePlan(f"no assignment reaches a spread of {max_spread:g}")
            raise TimeoutError(f"no orderable assignment reaching a spread of {max_spread:g} found in {time_limit:g} s")
        assignment = _assignment(model, values)
        return assignment, len(assignment), proven
    values, proven, _none = _fewest_moves(h, model, max_spread, time.monotonic() + time_limit, None)
    if h.getModelStatus() == highspy.HighsModelStatus.kInfeasible:
        raise NoFeasiblePlan(f"no assignment reaches a spread of {max_spread:g}")
    if h.getInfo().primal_solution_status != FEASIBLE:
        raise TimeoutError(f"no assignment reaching a spread of {max_spread:g} found in {time_limit:g} s")
    assignment = _assignment(model, values)
    return assignment, len(assignment), proven


FEASIBLE = 2  # HiGHS's kSolutionStatusFeasible


def _fewest_moves(
    h: Any,
    model: _Model,
    max_spread: float,
    deadline: float,
    start: list[float] | None,
    instance: Instance | None = None,
    cuts: _Cuts | None = None,
) -> tuple[list[float], bool, bool]:
    """Hold the spread at most max_spread and maximise the VMs that stay (with `cuts`, among
    the assignments that can be ordered: the cut loop of _run_orderable): (the columns' values,
    proven, proven that no assignment is left)."""
    import highspy
    import numpy as np

    h.changeColBounds(model.spread_column, 0.0, max_spread + 1e-9)
    h.changeColsCost(1, np.array([model.spread_column], dtype=np.int32), np.array([0.0]))
    h.changeObjectiveOffset(0.0)
    stay = _stay_columns(model)
    if stay:
        h.changeColsCost(len(stay), np.array(stay, dtype=np.int32), np.full(len(stay), -1.0))
    h.setOptionValue("mip_abs_gap", 0.5)  # moves are integers
    h.setOptionValue("mip_rel_gap", 0.0)
    if cuts is not None and instance is not None:

        def moves(assignment: dict[VMKey, str]) -> float | None:
            return len(assignment) if spread(instance, assignment) <= max_spread + 1e-9 else None

        values, proven, none = _run_orderable(h, model, instance, deadline, cuts, start, moves)
        return values or [], proven and values is not start, none
    h.setOptionValue("time_limit", max(0.01, deadline - time.monotonic()))
    if start is not None:
        h.setSolution(_solution(h, start))
    h.run()
    none = h.getModelStatus() == highspy.HighsModelStatus.kInfeasible
    if h.getInfo().primal_solution_status == FEASIBLE:
        return list(h.getSolution().col_value), h.getModelStatus() == highspy.HighsModelStatus.kOptimal, False
    return start or [], False, none


def _stay_columns(model: _Model) -> list[int]:
    """The assignment variables that count a class's VMs kept on their node (none in the
    spread model, which is never asked about moves)."""
    if not model.by_node:
        return []
    return [c for c, (k, node) in enumerate(model.columns) if model.vms[model.classes[k][0]].node == node]


def _solution(h: Any, values: list[float]) -> Any:
    solution = h.getSolution()
    solution.col_value = values
    return solution


def _start_from_current(h: Any, model: _Model, instance: Instance) -> None:
    """Offer the current placement as a first solution (the solver drops it if infeasible)."""
    values = _values(model, instance, {})
    if values is not None:
        h.setSolution(_solution(h, values))


def _values(model: _Model, instance: Instance, assignment: dict[VMKey, str]) -> list[float] | None:
    """The model's columns for an assignment; None when a VM sits outside its candidates."""
    column = {key: c for c, key in enumerate(model.columns)}
    values = [0.0] * model.n_columns
    for k, members in enumerate(model.classes):
        for i in members:
            c = column.get((k, assignment.get(model.vms[i].key, model.vms[i].node)))
            if c is None:
                return None
            values[c] += 1.0
    util = utilisation(instance, assignment)
    counted = [util[n.name] for n in instance.nodes if n.in_spread]
    base = len(model.columns)
    for r in RESOURCES:
        values[base + 2 * r] = max((u[r] for u in counted), default=0.0)
        values[base + 2 * r + 1] = min((u[r] for u in counted), default=0.0)
    values[model.spread_column] = spread(instance, assignment)
    return values


def _assignment(model: _Model, values: list[float]) -> dict[VMKey, str]:
    """The VMs that move: per class, as many of its VMs stay on their node as the class's count
    there allows (the first ones, in instance order), and the others go, in order, to the
    class's candidate nodes in node order, as many to each as its count leaves room for."""
    result: dict[VMKey, str] = {}
    counts: list[dict[str, int]] = [{} for _ in model.classes]
    for c, (k, node) in enumerate(model.columns):
        counts[k][node] = max(0, round(values[c]))
    for k, members in enumerate(model.classes):
        left = counts[k]
        moving = []
        for i in members:
            if left.get(model.vms[i].node, 0) > 0:
                left[model.vms[i].node] -= 1
            else:
                moving.append(i)
        going = iter(moving)
        for node in model.targets[k]:
            for _ in range(left.get(node, 0)):
                i = next(going, None)
                if i is None:
                    break
                result[model.vms[i].key] = node
    return result


# ------------------------------------------------------------------ orderable plans

# Sets of moves done that the exhaustive ordering check visits at most (order_moves); beyond
# it the check gives up and says so, and `optimal` does not call its answer proven.
ORDER_STATES = 200_000
# No-good cuts (one assignment's counts forbidden) a cut loop adds at most.
MAX_NO_GOODS = 400


def _order_state(instance: Instance) -> tuple[dict[str, list[float]], dict[str, tuple[float, float, float]]]:
    """(load per node now, limit per node) as planner._sequence judges a step."""
    load = loads(instance, {})
    return load, step_limits(instance, load)


def order_moves(
    instance: Instance,
    assignment: dict[VMKey, str],
    max_states: int = ORDER_STATES,
    longest: list[VMKey] | None = None,
) -> tuple[list[VMKey] | None, bool]:
    """The VMs that move, in an order each step of which stays within the limits (each VM
    moves once, straight to its target; a step fits as in planner._sequence), or None when
    there is none: (order, complete). The search is exhaustive: depth first over the moves
    that fit, remembering the sets of moves done that lead nowhere. Identical moves (same sizes,
    source and target) are counted together, and a move is taken at once when its target has
    room for all the moves still to come into it (taking it first can then block nothing: it
    only frees its source). `complete` is False when the search gave up after `max_states`
    sets of moves (the order is then None but one may exist). When there is no order and
    `longest` is given, it receives the longest sequence of moves found that can be made."""
    load, limits = _order_state(instance)
    by_key = {vm.key: vm for vm in instance.vms}
    groups: dict[tuple[float, float, str, str], list[VMKey]] = {}
    for key, target in assignment.items():
        vm = by_key[key]
        if target != vm.node:
            groups.setdefault((vm.cpu, vm.memory, vm.node, target), []).append(key)
    kinds = list(groups)
    sizes = [len(groups[g]) for g in kinds]
    done = [0] * len(kinds)
    incoming = {name: [0.0, 0.0, 0.0] for name in load}
    for g, (cpu, memory, _source, target) in enumerate(kinds):
        for i, amount in enumerate((cpu, memory, 1.0)):
            incoming[target][i] += amount * sizes[g]
    total = sum(sizes)
    path: list[int] = []
    failed: set[tuple[int, ...]] = set()
    complete = True

    def fits(g: int, extra: list[float] | None = None) -> bool:
        cpu, memory, _source, target = kinds[g]
        slot, limit = load[target], limits[target]
        if extra is not None:  # room for everything still to come in
            return all(slot[i] + extra[i] <= limit[i] for i in range(3))
        return slot[0] + cpu <= limit[0] and slot[1] + memory <= limit[1] and slot[2] + 1 <= limit[2]

    def shift(g: int, sign: int) -> None:
        cpu, memory, source, target = kinds[g]
        for i, amount in enumerate((cpu, memory, 1.0)):
            if source in load:
                load[source][i] -= sign * amount
            load[target][i] += sign * amount
            incoming[target][i] -= sign * amount
        done[g] += sign
        if sign > 0:
            path.append(g)
        else:
            path.pop()

    def search() -> bool:
        nonlocal complete
        eager = 0
        progress = True
        while progress:
            progress = False
            for g in range(len(kinds)):
                while done[g] < sizes[g] and fits(g, incoming[kinds[g][3]]):
                    shift(g, 1)
                    eager += 1
                    progress = True
        if len(path) == total:
            return True
        if len(path) > len(best):
            best[:] = path
        state = tuple(done)
        if state not in failed:
            if len(failed) >= max_states:
                complete = False
            else:
                for g in range(len(kinds)):
                    if done[g] < sizes[g] and fits(g):
                        shift(g, 1)
                        if search():
                            return True
                        shift(g, -1)
                failed.add(state)
        for _ in range(eager):
            shift(path[-1], -1)
        return False

    def named(steps: list[int]) -> list[VMKey]:
        taken = [0] * len(kinds)
        keys = []
        for g in steps:
            keys.append(groups[kinds[g]][taken[g]])
            taken[g] += 1
        return keys

    best: list[int] = []
    if not search():
        if longest is not None:
            longest[:] = named(best)
        return None, complete
    return named(path), True


@dataclass
class _Cuts:
    """The cuts a cut loop added to one solver: rows, and binaries after the model's columns
    (per cut, in the order they were added)."""

    n_columns: int  # the model's columns
    no_goods: list[tuple[list[int], list[tuple[int, int]]]]  # (binaries, (column, count) per binary)
    blocked: int = 0  # blocked-set cuts added
    extra: list[tuple[int, dict[int, int], dict[str, Any]]] | None = None  # per blocked-set cut: w, v, rows
    added: list[tuple[str, int]] | None = None  # ("no-good" | "blocked", index), in column order

    def __post_init__(self) -> None:
        self.extra = [] if self.extra is None else self.extra
        self.added = [] if self.added is None else self.added

    def extend(self, values: list[float]) -> list[float]:
        """The model's columns' values and the cuts' binaries set for them (the values are an
        assignment that can be ordered, so each cut holds for some setting: module docstring of
        _blocked_set_cut, and a no-good's counts differ somewhere)."""
        out = list(values[: self.n_columns])
        y = [round(x) for x in out]
        assert self.extra is not None and self.added is not None
        for kind, index in self.added:
            if kind == "no-good":
                binaries, counts = self.no_goods[index]
                chosen = next((j for j, (c, v) in enumerate(counts) if y[c] <= v - 1), 0)
                out += [1.0 if j == chosen else 0.0 for j in range(len(binaries))]
                continue
            _w, v, found = self.extra[index]
            w = any(y[c] > 0 for c in found["waiting"])
            first = None
            if w:
                short = {c for c, _r, terms in found["rows"] if sum(a * y[o] for o, a in terms) < 1.0 - 1e-9}
                first = next((c for c in found["waiting"] if y[c] > 0 and c not in short), None)
            out.append(1.0 if w else 0.0)
            out += [1.0 if c == first else 0.0 for c in v]
        return out


def _blocked_set_cut(model: _Model, instance: Instance, counts: list[int]) -> dict[str, Any] | None:
    """A cut that the assignment `counts` (per column) violates, from a set B of its moves
    (columns: a class to a node it is not on) none of which can be made first: each does not fit
    its target now, and the assignment's other moves out of that target free too little.

    The cut holds for every assignment y that can be ordered (it forbids only assignments that
    cannot): take the first of y's moves in B, of class k to node t. Until then t has gained
    VMs or lost some by moves outside B only, so its load is at least its load now less what
    y's moves out of t outside B free. So for every resource r (CPU, memory, VM count) in which
    k does not fit t now, by `need` (k's size less t's room now), those moves free at least
    `need` of r. With binaries w (y makes a move of B) and v_c per column c of B (c may go
    first):
        y_c <= size_c * w,   v_c <= y_c,   sum(v) >= w,   and per c and r:
        sum over the columns o from t outside B of min(1, o's r / need) * y_o >= v_c.
    When y's moves free `need`, the last sum is at least 1 (a column reaching `need` alone
    gives 1; else the sum is at least what they free over `need`): an assignment that can be
    ordered satisfies the cut with v_c = 1 for its first move of B (or w = 0). Returns the
    rows' data, or None when no such B is found (the loop then adds a no-good)."""
    load, limits = _order_state(instance)
    home = [model.vms[members[0]].node for members in model.classes]
    size = [(model.vms[m[0]].cpu, model.vms[m[0]].memory, 1.0) for m in model.classes]
    moves = [c for c, (k, node) in enumerate(model.columns) if node != home[k]]

    def need(c: int) -> list[float]:
        k, t = model.columns[c]
        return [size[k][i] - (limits[t][i] - load[t][i]) for i in range(3)]

    def escape(c: int, r: int, blocked: set[int]) -> list[tuple[int, float]]:
        """(column, coefficient) of the moves out of c's target outside `blocked`, in resource r."""
        t = model.columns[c][1]
        short = need(c)[r]
        return [
            (o, min(1.0, size[model.columns[o][0]][r] / short))
            for o in moves
            if home[model.columns[o][0]] == t and o not in blocked
        ]

    def may_go_first(c: int, blocked: set[int]) -> bool:
        short = need(c)
        return all(sum(a * counts[o] for o, a in escape(c, r, blocked)) >= 1.0 - 1e-9 for r in range(3) if short[r] > 0)

    def settle(blocked: set[int]) -> set[int]:
        """The largest subset of `blocked` none of whose moves may go first."""
        changed = True
        while changed and blocked:
            changed = False
            for c in sorted(blocked):
                if may_go_first(c, blocked):
                    blocked.discard(c)
                    changed = True
        return blocked

    blocked = settle({c for c in moves if counts[c] > 0 and max(need(c)) > 0})
    if not blocked:
        return None
    # A smaller set forbids more: its columns, whatever else an assignment moves. Each move left
    # out in turn, while the rest still holds a blocked set.
    for c in sorted(blocked):
        if c in blocked:
            smaller = settle(blocked - {c})
            if smaller:
                blocked = smaller
    waiting = sorted(blocked)
    rows = [(c, r, escape(c, r, blocked)) for c in waiting for r in range(3) if need(c)[r] > 0]
    return {"waiting": waiting, "rows": rows}


def _cut(h: Any, model: _Model, instance: Instance, cuts: _Cuts, values: list[float]) -> bool:
    """Add a cut that the assignment `values` (which cannot be ordered) violates: a
    blocked-set cut when one applies, else a no-good (these counts, forbidden). False when the
    no-goods are used up."""
    import highspy
    import numpy as np

    counts = [max(0, round(v)) for v in values[: len(model.columns)]]
    found = _blocked_set_cut(model, instance, counts)
    integer = highspy.HighsVarType.kInteger

    def row(lower: float, upper: float, cols: list[int], vals: list[float]) -> None:
        h.addRow(lower, upper, len(cols), np.array(cols, dtype=np.int32), np.array(vals, dtype=np.float64))

    if found is not None:
        w = h.getNumCol()
        h.addVar(0.0, 1.0)
        h.changeColIntegrality(w, integer)
        v = {}
        for c in found["waiting"]:
            v[c] = h.getNumCol()
            h.addVar(0.0, 1.0)
            h.changeColIntegrality(v[c], integer)
            row(-math.inf, 0.0, [c, w], [1.0, -float(model.size(c))])  # y_c <= size w
            row(-math.inf, 0.0, [v[c], c], [1.0, -1.0])  # v_c <= y_c
        row(0.0, math.inf, [*v.values(), w], [1.0] * len(v) + [-1.0])  # sum(v) >= w
        for c, _r, terms in found["rows"]:
            row(0.0, math.inf, [o for o, _a in terms] + [v[c]], [a for _o, a in terms] + [-1.0])
        assert cuts.extra is not None and cuts.added is not None
        cuts.added.append(("blocked", len(cuts.extra)))
        cuts.extra.append((w, v, found))
        cuts.blocked += 1
        return True
    if len(cuts.no_goods) >= MAX_NO_GOODS:
        return False
    # Each class places all its VMs: another assignment has, in some column the forbidden one
    # uses, fewer VMs. One binary per such column: z = 1 holds the column below its count,
    #   x_c + (size - count + 1) z_c <= size, and sum(z) >= 1.
    # It forbids these counts only, which cannot be ordered (which VMs of a class move does
    # not matter: they are identical).
    support = [(c, counts[c]) for c in range(len(model.columns)) if counts[c] > 0]
    first = h.getNumCol()
    binaries = list(range(first, first + len(support)))
    for (c, v), z in zip(support, binaries, strict=True):
        h.addVar(0.0, 1.0)
        h.changeColIntegrality(z, integer)
        ub = model.size(c)
        row(-math.inf, float(ub), [c, z], [1.0, ub - v + 1.0])
    row(1.0, math.inf, binaries, [1.0] * len(binaries))
    assert cuts.added is not None
    cuts.added.append(("no-good", len(cuts.no_goods)))
    cuts.no_goods.append((binaries, support))
    return True


def _run_orderable(
    h: Any,
    model: _Model,
    instance: Instance,
    deadline: float,
    cuts: _Cuts,
    start: list[float] | None,
    score: Any = None,
) -> tuple[list[float] | None, bool, bool]:
    """Solve; while the solver's assignment cannot be ordered, cut it off and solve again:
    (the model's columns of the first assignment that can be ordered, or the best one that can
    known (`start`, or the longest orderable part of an assignment cut off, when `score`, the
    objective of an assignment or None where it does not qualify, rates it better) when none
    was found, whether it is proven optimal under the cuts, and whether the solver proved that
    none is left under them)."""
    import highspy

    rated = score(_assignment(model, start)) if score is not None and start is not None else None
    while True:
        h.setOptionValue("time_limit", max(0.01, deadline - time.monotonic()))
        if start is not None:
            h.setSolution(_solution(h, cuts.extend(start)))
        h.run()
        if h.getInfo().primal_solution_status != FEASIBLE:
            return start, False, h.getModelStatus() == highspy.HighsModelStatus.kInfeasible
        values = list(h.getSolution().col_value)[: model.n_columns]
        assignment = _assignment(model, values)
        longest: list[VMKey] = []
        keys, complete = order_moves(instance, assignment, longest=longest)
        if keys is not None:
            return values, h.getModelStatus() == highspy.HighsModelStatus.kOptimal, False
        part = {key: assignment[key] for key in longest}
        value = score(part) if score is not None and not feasible(instance, part) else None
        if value is not None and (rated is None or value < rated - 1e-12):
            start, rated = _values(model, instance, part), value
        if not complete or time.monotonic() >= deadline or not _cut(h, model, instance, cuts, values):
            return start, False, False


def _optimal_orderable(
    instance: Instance, time_limit: float, move_cost: float, known: dict[VMKey, str] | None = None
) -> tuple[dict[VMKey, str], float, int, bool]:
    """`optimal` over the assignments that can be ordered, on the full model (the cuts speak
    of moves). Without a move cost, the least spread over all assignments first (the spread
    model, fast): when the fewest-moves cut loop at that spread finds an assignment that can
    be ordered, it is the optimum; when it proves there is none, or with a move cost, the
    first phase's cut loop (_run_orderable) on the full model, from the cuts found so far
    and above the first bound, then the fewest moves at its spread. The current placement (no
    move) is the fallback when it is within the limits."""
    import highspy
    import numpy as np

    deadline = time.monotonic() + time_limit
    model = _build(instance)
    h = _highs(model, integer=True, time_limit=time_limit)
    cuts = _Cuts(model.n_columns, [])
    current = _values(model, instance, {}) if not feasible(instance, {}) else None

    def objective(assignment: dict[VMKey, str]) -> float:
        return spread(instance, assignment) + move_cost * len(assignment)

    known_values = None
    if known and not feasible(instance, known) and order_moves(instance, known)[0] is not None:
        offered = _values(model, instance, known)
        if offered is not None and (current is None or objective(known) < objective({})):
            current = known_values = offered
    floor = 0.0
    if move_cost <= 0:
        spread_model = _build(instance, by_node=False)
        g = _highs(spread_model, integer=True, time_limit=time_limit)
        _first_phase(g, spread_model, 0.0)
        _start_from_current(g, spread_model, instance)
        g.run()
        if g.getModelStatus() == highspy.HighsModelStatus.kInfeasible:
            raise NoFeasiblePlan("no assignment satisfies the capacities, allowed nodes and VM limits")
        if g.getInfo().primal_solution_status == FEASIBLE:
            solved = list(g.getSolution().col_value)
            first = _values(model, instance, _assignment(spread_model, solved))
            assert first is not None
            held = max(first[model.spread_column], solved[spread_model.spread_column])
            proven_least = g.getModelStatus() == highspy.HighsModelStatus.kOptimal
            # Half the time left for it: when it finds nothing, the first phase's loop has the rest.
            half = time.monotonic() + (deadline - time.monotonic()) / 2
            offer = known_values if known and spread(instance, known) <= held + 1e-9 else None
            if order_moves(instance, _assignment(model, first))[0] is not None:
                offer = first  # the least spread's own assignment can be ordered
            values, proven, _none = _fewest_moves(h, model, held, half, offer, instance, cuts)
            if values and not proven and time.monotonic() < deadline:
                # One that can be ordered reaches the least spread: the rest of the time to its moves.
                values, proven, _none = _fewest_moves(h, model, held, deadline, values, instance, cuts)
            if values:
                assignment = _assignment(model, values)
                return assignment, spread(instance, assignment), len(assignment), proven and proven_least
        dual = g.getInfo().mip_dual_bound
        floor = max(0.0, dual - LP_SAFETY) if math.isfinite(dual) else 0.0
        # Back to the first phase: the least spread, above the bound just proven.
        h.changeColBounds(model.spread_column, floor, math.inf)
        h.changeColsCost(1, np.array([model.spread_column], dtype=np.int32), np.array([1.0]))
        stay = _stay_columns(model)
        if stay:
            h.changeColsCost(len(stay), np.array(stay, dtype=np.int32), np.zeros(len(stay)))
    _first_phase(h, model, move_cost)

    found, first_proven, none = _run_orderable(h, model, instance, deadline, cuts, current, objective)
    if found is None:
        if none and not cuts.added:
            raise NoFeasiblePlan("no assignment satisfies the capacities, allowed nodes and VM limits")
        raise TimeoutError(f"no orderable assignment found in {time_limit:g} s")
    held = found[model.spread_column]
    first = _values(model, instance, _assignment(model, found))
    assert first is not None
    own = first[model.spread_column]
    first[model.spread_column] = own if move_cost > 0 else max(own, held)
    values, moves_proven, _none = _fewest_moves(h, model, first[model.spread_column], deadline, first, instance, cuts)
    assignment = _assignment(model, values)
    return assignment, spread(instance, assignment), len(assignment), first_proven and moves_proven
