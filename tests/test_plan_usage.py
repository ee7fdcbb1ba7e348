"""The rebalance planner on the usage basis: measured node utilisation (node_exporter) and
each VM's measured CPU and resident memory, which move with the VM, while every limit a
plan keeps stays on allocation; per-object fallback and stale samples, said in the plan."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ov_exporter import rebalance, upstream
from ov_exporter.domain import planner
from ov_exporter.domain.planmodel import feasible, loads, spread, utilisation
from ov_exporter.events import UpstreamSample
from ov_exporter.plan_report import to_dict, to_markdown, to_table
from ov_exporter.sources import promql

from . import upstream_contract as uc
from .checks.builders import config, node, state, virt_handler_pod, vm, vmi
from .test_planner import SETTINGS, _applied, _findings, clusters

GI = 2**30
TS = 1_767_000_000.0
NODES = ("worker-0", "worker-1", "worker-2")


def _cluster(*extra, cpu="16", memory="64Gi"):
    objs = [node(n, cpu=cpu, memory=memory) for n in NODES] + [virt_handler_pod(n) for n in NODES]
    return [*objs, *extra]


def _pair(name, where, cores=2, memory="8Gi"):
    return [vm(name, cores=cores, memory=memory), vmi(name, node=where, cores=cores, memory=memory)]


def _balanced():
    """Two VMs of 2 vCPUs and 8 GiB on each of the three nodes: allocation is even."""
    return _cluster(*[o for i, n in enumerate(NODES) for j in range(2) for o in _pair(f"vm-{i}{j}", n)])


def usage(nodes: dict, vms: dict, ts: float = TS, stale: dict | None = None) -> dict[str, list[UpstreamSample]]:
    """Samples as the Prometheus source keeps them: node -> (CPU, memory utilisation) and
    VM name -> (cores, resident bytes); `stale`: node -> utilisation pair dated 20 min earlier."""
    out: dict[str, list[UpstreamSample]] = {}
    for name, (cpu, mem) in nodes.items():
        out.setdefault(upstream.NODE_CPU_UTILISATION, []).append(UpstreamSample({"node": name}, cpu, ts))
        out.setdefault(upstream.NODE_MEMORY_UTILISATION, []).append(UpstreamSample({"node": name}, mem, ts))
    for name, (pair) in (stale or {}).items():
        out.setdefault(upstream.NODE_CPU_UTILISATION, []).append(UpstreamSample({"node": name}, pair[0], ts - 1200))
        out.setdefault(upstream.NODE_MEMORY_UTILISATION, []).append(UpstreamSample({"node": name}, pair[1], ts - 1200))
    for name, (cores, resident) in vms.items():
        labels = {"namespace": "vms", "name": name}
        out.setdefault(upstream.VMI_CPU_USAGE_RATE, []).append(UpstreamSample(labels, cores, ts))
        out.setdefault(upstream.VMI_MEMORY_RESIDENT, []).append(UpstreamSample(labels, resident, ts))
    return out


# worker-0's VMs are busy (1.9 cores each), the others' idle (0.25); every VM holds 6 GiB.
# worker-0 runs 3 cores of its own, the others 1; each node 2 GiB. Of 16 CPUs and 64 GiB.
BUSY = {f"vm-0{j}": (1.9, 6 * GI) for j in range(2)} | {f"vm-{i}{j}": (0.25, 6 * GI) for i in (1, 2) for j in range(2)}
NODE_USE = {"worker-0": (6.8 / 16, 14 / 64), "worker-1": (1.5 / 16, 14 / 64), "worker-2": (1.5 / 16, 14 / 64)}


def test_on_allocation_a_balanced_cluster_needs_no_plan_on_usage_the_busy_vms_move():
    objs = _balanced()
    on_allocation = planner.plan(state(*objs), config())
    assert on_allocation.load_basis.kind == planner.ALLOCATION and on_allocation.moves == []
    result = planner.plan(state(*objs, samples=usage(NODE_USE, BUSY)), config())
    basis = result.load_basis
    assert basis.kind == planner.USAGE and basis.at == TS and basis.window == "5m"
    assert not basis.fallback_nodes and not basis.fallback_vms
    assert result.spread_before == pytest.approx(5.3 / 16)  # CPU: 42.5 % against 9.4 %
    assert result.moves and result.spread_after < result.spread_before - 0.1
    assert {m.key[1] for m in result.moves if m.source == "worker-0"} <= {"vm-00", "vm-01"}
    assert any(m.source == "worker-0" for m in result.moves)


def test_a_moved_vm_takes_its_measured_usage_and_the_nodes_own_use_stays():
    result = planner.plan(state(*_balanced(), samples=usage(NODE_USE, BUSY)), config())
    instance = result.instance
    nodes = {n.name: n for n in instance.nodes}
    vms = {v.key[1]: v for v in instance.vms}
    assert (vms["vm-00"].spread_cpu, vms["vm-00"].spread_memory) == (1.9, 6 * GI)
    assert vms["vm-00"].cpu == 2 and vms["vm-00"].memory > 8 * GI  # the capacity load: the allocation
    w0 = nodes["worker-0"]
    # 6.8 cores used less its two movable VMs' 3.8: three cores of its own, which no plan moves.
    assert (w0.spread_cpu_capacity, w0.spread_cpu_used) == (16, pytest.approx(3.0))
    assert (w0.spread_memory_capacity, w0.spread_memory_used) == (64 * GI, pytest.approx(2 * GI))
    util = utilisation(instance, {("vms", "vm-00"): "worker-1"})
    assert util["worker-0"][0] == pytest.approx(4.9 / 16) and util["worker-1"][0] == pytest.approx(3.4 / 16)
    assert util["worker-1"][1] == pytest.approx(20 / 64)


def test_the_limits_stay_on_allocation_however_idle_a_node_measures():
    """worker-1 and worker-2 measure idle but are full by allocation: the busy VM goes to one only
    after a VM left it, in a later wave, and every step of the plan stays within the limits."""
    # 8 physical cores each (SMT assumed): the profile's cpu-overcommit-target (1.2) allows 9.6 vCPUs, and
    # worker-1 and worker-2 hold 8 already, so a VM of 2 vCPUs fits on neither.
    objs = _cluster()
    objs += _pair("busy", "worker-0")
    objs += [o for n in ("worker-1", "worker-2") for j in range(4) for o in _pair(f"idle-{n}-{j}", n)]
    vms = {"busy": (1.9, 6 * GI)} | {f"idle-{n}-{j}": (0.1, 6 * GI) for n in ("worker-1", "worker-2") for j in range(4)}
    nodes = {"worker-0": (5.9 / 16, 0.3), "worker-1": (1.4 / 16, 0.4), "worker-2": (1.4 / 16, 0.4)}
    st_ = state(*objs, samples=usage(nodes, vms))
    result = planner.plan(st_, config(), threshold=0.0, min_gain=0.0)
    assert result.load_basis.kind == planner.USAGE and result.spread_before > 0.25
    assert result.spread_after < result.spread_before
    in_order = [m for w in result.waves for m in w.moves]
    for k in range(len(in_order) + 1):  # every wave boundary and every step within the limits
        assert feasible(result.instance, {m.key: m.target for m in in_order[:k]}) == []
    wave_of = {m.key[1]: i for i, w in enumerate(result.waves) for m in w.moves}
    [busy] = [m for m in result.moves if m.key[1] == "busy"]
    freed = [m for m in result.moves if m.source == busy.target]
    assert freed and min(wave_of[m.key[1]] for m in freed) < wave_of["busy"]
    # On allocation worker-0 is the idle node: VMs only move onto it.
    moves = planner.plan(st_, config(), basis="allocation").moves
    assert moves and {m.target for m in moves} == {"worker-0"}


def test_missing_samples_fall_back_per_object_and_the_plan_says_so():
    vms = {k: v for k, v in BUSY.items() if k != "vm-10"}  # vm-10: no samples
    nodes = {k: v for k, v in NODE_USE.items() if k != "worker-2"}  # worker-2: no node_exporter
    result = planner.plan(state(*_balanced(), samples=usage(nodes, vms)), config())
    basis = result.load_basis
    assert basis.kind == planner.USAGE
    assert basis.fallback_nodes == ("worker-2",)
    # vm-10 (movable, no samples) and the two VMs of worker-2 (which has no node samples) are
    # listed only when they lack samples themselves: vm-20 and vm-21 have theirs.
    assert basis.fallback_vms == ("vms/vm-10",)
    vms_ = {v.key[1]: v for v in result.instance.vms}
    assert (vms_["vm-10"].spread_cpu, vms_["vm-10"].spread_memory) == (vms_["vm-10"].cpu, vms_["vm-10"].memory)
    w2 = next(n for n in result.instance.nodes if n.name == "worker-2")
    assert (w2.spread_cpu_used, w2.spread_memory_used) == (0.0, 0.0)  # its own use is unknown: not guessed
    notes = " ".join(result.notes)
    assert "worker-2" in notes and "vms/vm-10" in notes and "at their allocation" in notes
    text = to_table(result) + to_markdown(result)
    assert "basis usage" in text and "Basis usage" in text and "vms/vm-10" in text
    doc = to_dict(result)
    assert doc["basis"]["kind"] == "usage" and doc["basis"]["fallback_nodes"] == ["worker-2"]
    moved = {m["vm"]: m for w in doc["waves"] for m in w["moves"]}
    # Each move carries the usage it takes along. worker-2 counts no use of its own, so the busy
    # VMs go there and its idle ones come back.
    assert (moved["vm-00"]["used_cores"], moved["vm-00"]["used_memory_bytes"]) == (1.9, 6 * GI)
    assert moved["vm-00"]["target"] == "worker-2"
    assert "| CPU used | memory used |" in to_markdown(result)
    assert json.loads(json.dumps(doc)) == doc


def test_stale_node_samples_count_as_missing():
    nodes = {k: v for k, v in NODE_USE.items() if k != "worker-1"}
    samples = usage(nodes, BUSY, stale={"worker-1": NODE_USE["worker-1"]})
    result = planner.plan(state(*_balanced(), samples=samples), config())
    assert result.load_basis.fallback_nodes == ("worker-1",) and result.load_basis.stale == 2
    assert any("older than the newest left out" in n for n in result.notes)


def test_basis_flag_forces_allocation_and_usage_without_samples_is_an_error():
    st_ = state(*_balanced(), samples=usage(NODE_USE, BUSY))
    forced = planner.plan(st_, config(), basis="allocation")
    assert forced.load_basis.kind == planner.ALLOCATION and forced.moves == []
    assert "basis allocation" in to_table(forced)
    only_vms = state(*_balanced(), samples=usage({}, BUSY))
    assert planner.plan(only_vms, config()).load_basis.kind == planner.ALLOCATION  # default: no node samples
    with pytest.raises(planner.NoUsageSamples, match="no fresh node utilisation samples"):
        planner.plan(only_vms, config(), basis="usage")


def test_the_rebalance_plan_check_publishes_its_basis():
    from ov_exporter.runner import evaluate

    out = evaluate(state(*_balanced(), samples=usage(NODE_USE, BUSY)), config()).result("rebalance_plan")
    values = {(s.family, s.labels): s.value for s in out.samples}
    assert values[("ov_rebalance_plan_basis", ("usage",))] == 1
    assert values[("ov_rebalance_plan_basis", ("allocation",))] == 0
    assert values[("ov_rebalance_plan_usage_fallbacks", ("vm",))] == 0
    assert values[("ov_rebalance_plan_moves", ())] > 0
    [finding] = [f for f in out.findings if f.check == "rebalance_plan"]
    assert "(usage)" in finding.message


def _random_usage(objs, seed: int):
    """Measured usage for a random cluster: each VM at a share of its allocation, each node
    at its VMs' use plus some of its own (some VMs and one node left without samples)."""
    import random

    rng = random.Random(seed)
    vms, per_node = {}, {}
    for o in objs:
        if o["kind"] != "VirtualMachineInstance":
            continue
        cores = float(o["spec"]["domain"]["cpu"]["cores"])
        where = o["status"]["nodeName"]
        use = (cores * rng.random(), rng.uniform(0.2, 1.0) * GI)
        per_node.setdefault(where, [0.0, 0.0])
        per_node[where][0] += use[0]
        per_node[where][1] += use[1]
        if rng.random() > 0.1:
            vms[o["metadata"]["name"]] = use
    nodes = {}
    for o in objs:
        if o["kind"] == "Node" and rng.random() > 0.15:
            name = o["metadata"]["name"]
            cpus = float(o["status"]["capacity"]["cpu"])
            used = per_node.get(name, [0.0, 0.0])
            nodes[name] = (min(1.0, (used[0] + rng.random()) / cpus), min(1.0, (used[1] + 4 * GI) / (64 * GI)))
    return usage(nodes, vms)


@SETTINGS
@given(objs=clusters(), seed=st.integers(0, 2**16))
def test_a_usage_plan_keeps_every_allocation_limit_and_raises_no_new_finding(objs, seed):
    samples = _random_usage(objs, seed)
    result = planner.plan(state(*objs, samples=samples), config(), threshold=0.0, min_gain=0.001)
    instance = result.instance
    load_before, load_after = loads(instance, {}), loads(instance, result.assignment)
    for n in instance.nodes:
        assert load_after[n.name][0] <= max(load_before[n.name][0], n.cpu_allowed) + 1e-9
        assert load_after[n.name][1] <= max(load_before[n.name][1], n.memory_allowed) + 1e-9
    assert len({m.key for m in result.moves}) == len(result.moves)
    assert result.spread_after <= result.spread_before + 1e-9
    assert result.spread_after == pytest.approx(spread(instance, result.assignment))
    if result.lower_bound is not None:
        assert result.lower_bound <= result.spread_after + 1e-9
    # Every check on the cluster after the plan, but rebalance_plan itself: without samples it judges
    # the allocation spread, which a plan on usage may widen by design.
    before = _findings(objs)
    after = _findings(_applied(objs, result.moves))
    raised = {k: v for k, v in after.items() if (k not in before or v[0] > before[k][0]) and k[0] != "rebalance_plan"}
    assert raised == {}, result.moves


def test_the_usage_queries_are_the_rebalance_reports_and_read_upstream_series():
    queries = promql.DERIVED_QUERIES
    assert queries[upstream.NODE_CPU_UTILISATION] == rebalance.cpu_utilisation(window=upstream.NODE_USAGE_WINDOW)
    assert queries[upstream.NODE_MEMORY_UTILISATION] == rebalance.memory_utilisation(window=upstream.NODE_USAGE_WINDOW)
    import promql_parser as pp

    from .conftest import promql_metric_names
    from .test_upstream_contract import Analysis

    read = set()
    for name in (upstream.NODE_CPU_UTILISATION, upstream.NODE_MEMORY_UTILISATION, upstream.VMI_MEMORY_RESIDENT):
        read |= promql_metric_names(queries[name])
        for release in uc.releases():
            analysis = Analysis(release)
            analysis.labels(pp.parse(queries[name]))
            assert analysis.problems == [], (name, release)
    assert read == {
        upstream.NODE_CPU_SECONDS,
        upstream.NODE_MEMORY_AVAILABLE,
        upstream.NODE_MEMORY_TOTAL,
        upstream.VMI_MEMORY_RESIDENT,
    }
    assert all(uc.base_name(m) is not None for m in read)  # each one is in the upstream contract


def test_a_snapshot_carries_the_usage_samples_and_plans_on_them(tmp_path, capsys):
    """`snapshot --out` writes the samples as metrics.prom; `plan --snapshot` reads them back."""
    from ov_exporter.cli import main
    from ov_exporter.export import write_snapshot

    write_snapshot(state(*_balanced(), samples=usage(NODE_USE, BUSY), now=TS + 30), tmp_path / "snap")
    assert upstream.NODE_CPU_UTILISATION in (tmp_path / "snap" / "metrics.prom").read_text()
    assert main(["plan", "--snapshot", str(tmp_path / "snap"), "--output", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["basis"]["kind"] == "usage" and doc["basis"]["at"] == TS
    assert any(m["source"] == "worker-0" for w in doc["waves"] for m in w["moves"])
    assert main(["plan", "--snapshot", str(tmp_path / "snap"), "--basis", "allocation", "--output", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["waves"] == []


def test_the_exact_model_and_the_bound_measure_the_spread_load():
    """planbound solves the same two-load model: its optimum on usage is at least as good as the
    planner's plan (so it balances usage, not allocation) and within every allocation limit."""
    from ov_exporter.domain import planbound

    result = planner.plan(state(*_balanced(), samples=usage(NODE_USE, BUSY)), config(), threshold=0.0, min_gain=0.0)
    instance = result.instance
    assignment, best, _moves, proven = planbound.optimal(instance, time_limit=30)
    assert proven and feasible(instance, assignment) == []
    assert best == pytest.approx(spread(instance, assignment))
    assert best <= result.spread_after + 1e-9 < result.spread_before
    assert planbound.lower_bound(instance) <= best + 1e-9
    assert planbound.fluid_bound(instance) <= best + 1e-9


def test_samples_much_older_than_the_state_are_not_used():
    samples = usage(NODE_USE, BUSY)
    old = planner.plan(state(*_balanced(), samples=samples, now=TS + 3600), config())
    assert old.load_basis.kind == planner.ALLOCATION and old.moves == []
    assert any("usage samples not used" in n and "60 min older" in n for n in old.notes)
    assert "60 min older" in to_dict(old)["basis"]["ignored"]
    with pytest.raises(planner.NoUsageSamples, match="60 min older"):
        planner.plan(state(*_balanced(), samples=samples, now=TS + 3600), config(), basis="usage")
    fresh = planner.plan(state(*_balanced(), samples=samples, now=TS + 120), config())
    assert fresh.load_basis.kind == planner.USAGE and fresh.moves
