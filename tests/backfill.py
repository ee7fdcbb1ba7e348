"""A synthetic 48-hour rebalance as OpenMetrics, for `promtool tsdb create-blocks-from
openmetrics` (deterministic: the same END gives the same bytes).

    python -m tests.backfill OUTDIR [--end UNIX]   # one OUTDIR/backfill-<t>.om per 2 h block

Timeline (T0 = END - 48 h, one sample a minute):
- T0 .. START: the BEFORE levels of CPU and memory on four workers; a control-plane
  node (master-0) runs no VM and stays at 10 % CPU (the report must leave it out).
- START .. START + 1 h: the MIGRATIONS below run; utilisation moves linearly from
  BEFORE to AFTER.
- START + 1 h .. END: the AFTER levels.
A small sine (period 10 min, amplitude 2 points) is added to CPU so that averages are
real averages; over the report's 1-hour windows it cancels to within 0.1 point.

Also: kubevirt_vmi_info per node (VMIs move with successful migrations), the
virt-controller migration series, the running-migration rates on the source node,
the steady-state dirty rate, the in-flight phase gauges, etcd WAL fsync and backend
commit histograms (3 members; etcd-2's WAL fsync p99 goes above 10 ms from the
rebalance on), and the exporter's ov_node_physical_cpu_cores for the workers.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

END = 1767398400  # 2026-01-03T00:00:00Z
STEP = 60
HOURS = 48
START_OFFSET = 6 * 3600  # the first migration starts 6 h after the first sample
RAMP = 3600
NODES = ["worker-1", "worker-2", "worker-3", "worker-4"]
CONTROL_PLANE = "master-0"
CPUS = 2
MEM_TOTAL = 64 * 2**30
NOISE = 0.02
STEAL = 0.005  # host CPU steal share (the nodes are not VMs: near zero)

# utilisation (0-1) per worker before and after the rebalance
CPU_BEFORE = {"worker-1": 0.80, "worker-2": 0.70, "worker-3": 0.30, "worker-4": 0.20}
CPU_AFTER = {"worker-1": 0.55, "worker-2": 0.50, "worker-3": 0.50, "worker-4": 0.45}
MEM_BEFORE = {"worker-1": 0.85, "worker-2": 0.75, "worker-3": 0.40, "worker-4": 0.30}
MEM_AFTER = {"worker-1": 0.62, "worker-2": 0.58, "worker-3": 0.56, "worker-4": 0.54}
CONTROL_PLANE_CPU = 0.10
CONTROL_PLANE_MEM = 0.50

NAMESPACE = "vms-prod"
# VMIs and their node before the rebalance
VMIS = {
    "vm-a": "worker-1",
    "vm-b": "worker-1",
    "vm-e": "worker-1",
    "vm-g": "worker-1",
    "vm-c": "worker-2",
    "vm-d": "worker-2",
    "vm-f": "worker-2",
    "vm-h": "worker-2",
    "vm-i": "worker-3",
    "vm-j": "worker-3",
    "vm-k": "worker-4",
    "vm-l": "worker-4",
}


@dataclass(frozen=True)
class Mig:
    vmim: str
    vmi: str
    source: str
    target: str
    start: int  # seconds after START
    duration: int
    ok: bool


MIGRATIONS = [
    Mig("vm-a-mig-1", "vm-a", "worker-1", "worker-3", 0, 600, True),
    Mig("vm-b-mig-1", "vm-b", "worker-1", "worker-4", 300, 600, True),
    Mig("vm-c-mig-1", "vm-c", "worker-2", "worker-3", 600, 900, True),
    Mig("vm-d-mig-1", "vm-d", "worker-2", "worker-4", 900, 600, True),
    Mig("vm-e-mig-1", "vm-e", "worker-1", "worker-4", 1200, 900, False),  # fails: vm-e stays on worker-1
    Mig("vm-f-mig-1", "vm-f", "worker-2", "worker-3", 1800, 600, True),
    Mig("vm-f-mig-2", "vm-f", "worker-3", "worker-4", 2700, 600, True),
    Mig("vm-f-mig-3", "vm-f", "worker-4", "worker-2", 3420, 240, True),  # vm-f moves three times
]
REPEATED = {"vm-f": 3}
SUCCEEDED = sum(m.ok for m in MIGRATIONS)
FAILED = len(MIGRATIONS) - SUCCEEDED

# The exporter sees the wave EXPORTER_LAG seconds after its first migration started and
# publishes ov_rebalance_start_timestamp_seconds = START from then to END.
EXPORTER_LAG = 120
VCPUS = 2
DOWN_VM = ("vm-l", 1800)  # stopped 30 minutes into the rebalance (seconds after START)
PHASE_BUCKETS = [0.5, 1, 2, 5, 10, 20, 30, 40, 50, 60, 90, 120, 180, 300, 600, 1200, 1800, 3600]

# Label sets of the upstream series, exactly as upstream publishes them (the scrape adds
# job/instance). One place, to be switched to the upstream contract when it lands.
UPSTREAM_LABELS = {
    # kubevirt/kubevirt pkg/monitoring/metrics/virt-controller/migrationstats_collector.go (v1.3.0-v1.9.0)
    "kubevirt_vmi_migration_succeeded": ("vmi", "vmim", "namespace"),
    "kubevirt_vmi_migration_failed": ("vmi", "vmim", "namespace"),
    # .../virt-controller/vmistats_collector.go (v1.4.1-v1.9.0): from the VMI's status.migrationState
    "kubevirt_vmi_migration_start_time_seconds": ("node", "namespace", "name", "migration_name"),
    "kubevirt_vmi_migration_end_time_seconds": ("node", "namespace", "name", "migration_name", "status"),
    # .../virt-controller/vmistats_collector.go (kubevirt_vmi_info has more labels; these are the ones used)
    "kubevirt_vmi_info": ("name", "namespace", "node", "phase"),
    # .../virt-controller/migration_metrics.go (v1.3.0-v1.9.0)
    "kubevirt_vmi_migration_phase_transition_time_from_creation_seconds_bucket": ("phase", "le"),
    # .../virt-controller/vmstats_collector.go (v1.3.0-v1.9.0)
    "kubevirt_vm_non_running_status_last_transition_timestamp_seconds": ("name", "namespace"),
    "kubevirt_vm_error_status_last_transition_timestamp_seconds": ("name", "namespace"),
    # .../virt-handler/domainstats/{vcpu,memory}_metrics.go + domainstats.go (v1.3.0-v1.9.0)
    "kubevirt_vmi_vcpu_delay_seconds_total": ("node", "namespace", "name", "id"),
    "kubevirt_vmi_memory_swap_in_traffic_bytes": ("node", "namespace", "name"),
    "kubevirt_vmi_memory_swap_out_traffic_bytes": ("node", "namespace", "name"),
    # prometheus/node_exporter collector/pressure_linux.go (v0.18.0 on): no labels of its own
    "node_pressure_cpu_waiting_seconds_total": (),
    "node_pressure_memory_waiting_seconds_total": (),
    "node_pressure_io_waiting_seconds_total": (),
}


def upstream(metric: str, /, **labels: str) -> str:
    """The label set of an upstream series; fails on a label upstream does not publish."""
    own = {k: v for k, v in labels.items() if k not in ("job", "instance")}
    assert set(own) == set(UPSTREAM_LABELS[metric]), (metric, sorted(own), UPSTREAM_LABELS[metric])
    return _labels(**labels)


ETCD = ["etcd-0", "etcd-1", "etcd-2"]
BUCKETS = [0.002, 0.004, 0.008, 0.016, 0.032]
ETCD_OPS = 10.0  # fsyncs and commits per second


def start_of(end: int = END) -> int:
    return end - HOURS * 3600 + START_OFFSET


def level(before: float, after: float, t: int, start: int) -> float:
    if t <= start:
        return before
    if t >= start + RAMP:
        return after
    return before + (after - before) * (t - start) / RAMP


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _num(v: float) -> str:
    return repr(round(v, 6)) if not float(v).is_integer() else str(int(v))


class Writer:
    def __init__(self, times: list[int]) -> None:
        self.times = times
        self.families: list[tuple[list[str], list[tuple[str, list[tuple[int, float]]]]]] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.families.append(([f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"], []))

    def series(self, name: str, labels: str, values) -> None:
        """values: t -> value or None (no sample)."""
        points = [(t, v) for t in self.times if (v := values(t)) is not None]
        self.families[-1][1].append((f"{name}{labels}", points))

    def render(self, lo: int, hi: int) -> str:
        """The samples with lo <= t < hi as one OpenMetrics document."""
        lines: list[str] = []
        for header, series in self.families:
            lines += header
            for key, points in series:
                lines += [f"{key} {_num(v)} {t}" for t, v in points if lo <= t < hi]
        lines.append("# EOF")
        return "\n".join(lines) + "\n"


def _cpu_util(node: str, t: int, start: int) -> float:
    if node == CONTROL_PLANE:
        base = CONTROL_PLANE_CPU
    else:
        base = level(CPU_BEFORE[node], CPU_AFTER[node], t, start)
    return base + NOISE * math.sin(2 * math.pi * t / 600)


def _mem_util(node: str, t: int, start: int) -> float:
    if node == CONTROL_PLANE:
        return CONTROL_PLANE_MEM
    return level(MEM_BEFORE[node], MEM_AFTER[node], t, start)


def _vmi_node_intervals(end: int) -> dict[str, list[tuple[str, int, int]]]:
    """vmi -> [(node, from, to)] from the migrations that succeeded."""
    start = start_of(end)
    t0 = end - HOURS * 3600
    out = {}
    for vmi, node in VMIS.items():
        spans, since = [], t0
        for m in sorted((m for m in MIGRATIONS if m.vmi == vmi and m.ok), key=lambda m: m.start):
            switch = start + m.start + m.duration
            spans.append((node, since, switch))
            node, since = m.target, switch
        spans.append((node, since, end + 1))
        out[vmi] = spans
    return out


def _etcd_p99_target(member: str, t: int, start: int) -> float:
    """Upper bound of the bucket that holds the 99th percentile: 4 ms, 16 ms on etcd-2 from START."""
    return 0.016 if member == "etcd-2" and t >= start else 0.004


def generate(end: int = END) -> Writer:
    t0 = end - HOURS * 3600
    start = start_of(end)
    times = list(range(t0, end + 1, STEP))
    w = Writer(times)
    nodes = NODES + [CONTROL_PLANE]

    # node_exporter: counters integrated per step, instance = node name (OpenShift)
    w.family("node_cpu_seconds_total", "counter", "Seconds the CPUs spent in each mode.")
    for node in nodes:
        for cpu in range(CPUS):
            for mode in ("idle", "steal"):
                acc = {"v": 1000.0}

                def values(t, node=node, mode=mode, acc=acc):
                    if t > t0:
                        u = _cpu_util(node, t, start)
                        acc["v"] += (1 - u if mode == "idle" else STEAL) * STEP
                    return acc["v"]

                w.series(
                    "node_cpu_seconds_total",
                    _labels(cpu=str(cpu), instance=node, job="node-exporter", mode=mode),
                    values,
                )
    w.family("node_memory_MemTotal_bytes", "gauge", "Memory information field MemTotal_bytes.")
    for node in nodes:
        w.series("node_memory_MemTotal_bytes", _labels(instance=node, job="node-exporter"), lambda t: MEM_TOTAL)
    w.family("node_memory_MemAvailable_bytes", "gauge", "Memory information field MemAvailable_bytes.")
    for node in nodes:
        w.series(
            "node_memory_MemAvailable_bytes",
            _labels(instance=node, job="node-exporter"),
            lambda t, node=node: round((1 - _mem_util(node, t, start)) * MEM_TOTAL),
        )

    # the exporter: VM-schedulable workers
    w.family("ov_node_physical_cpu_cores", "gauge", "Physical CPU cores of a VM node.")
    for node in NODES:
        w.series("ov_node_physical_cpu_cores", _labels(job="ov-exporter", node=node), lambda t: CPUS)

    # virt-controller: one kubevirt_vmi_info series per VMI and node
    w.family("kubevirt_vmi_info", "gauge", "Information about VirtualMachineInstances.")
    for vmi, spans in _vmi_node_intervals(end).items():
        for node, a, b in spans:
            w.series(
                "kubevirt_vmi_info",
                upstream("kubevirt_vmi_info", name=vmi, namespace=NAMESPACE, node=node, phase="running"),
                lambda t, a=a, b=b: 1 if a <= t < b else None,
            )

    # virt-controller, per VMIM: 1 from its end on (the VMIM object stays)
    for name, ok in (("kubevirt_vmi_migration_succeeded", True), ("kubevirt_vmi_migration_failed", False)):
        w.family(name, "gauge", f"Indicates if the VMI migration {'succeeded' if ok else 'failed'}.")
        for m in MIGRATIONS:
            if m.ok == ok:
                e = start + m.start + m.duration
                w.series(
                    name,
                    upstream(name, vmi=m.vmi, vmim=m.vmim, namespace=NAMESPACE, job="kubevirt"),
                    lambda t, e=e: 1 if t >= e else None,
                )

    # virt-controller, per VMI: its latest migration (status.migrationState); `node` is the
    # VMI's node (the source until a migration succeeds, then the target)
    def latest(vmi: str, t: int) -> Mig | None:
        started = [m for m in MIGRATIONS if m.vmi == vmi and start + m.start <= t]
        return max(started, key=lambda m: m.start) if started else None

    def ended(m: Mig, t: int) -> bool:
        return t >= start + m.start + m.duration

    for part in ("start", "end"):
        name = f"kubevirt_vmi_migration_{part}_time_seconds"
        w.family(name, "gauge", f"The time at which the migration {part}ed.")
        for m in MIGRATIONS:
            # the start series on the source, then (after success) on the target; the end on the final node
            where = (
                ([m.source, m.target] if m.ok else [m.source]) if part == "start" else [m.target if m.ok else m.source]
            )
            for node in where:
                extra = {"status": "succeeded" if m.ok else "failed"} if part == "end" else {}
                value = start + m.start + (m.duration if part == "end" else 0)

                def values(t, m=m, node=node, value=value, part=part):
                    if latest(m.vmi, t) != m or (part == "end" and not ended(m, t)):
                        return None
                    here = m.target if m.ok and ended(m, t) else m.source
                    return value if here == node else None

                w.series(
                    name,
                    upstream(
                        name, node=node, namespace=NAMESPACE, name=m.vmi, migration_name=m.vmim, job="kubevirt", **extra
                    ),
                    values,
                )

    # virt-controller histogram: each succeeded migration observed (creation to Succeeded) at its end
    hist = "kubevirt_vmi_migration_phase_transition_time_from_creation_seconds"
    w.family(hist, "histogram", "Histogram of VM migration phase transitions duration from creation time in seconds.")
    for le in PHASE_BUCKETS + [math.inf]:
        label = "+Inf" if le == math.inf else _num(le)
        w.series(
            f"{hist}_bucket",
            upstream(f"{hist}_bucket", phase="Succeeded", le=label, job="kubevirt"),
            lambda t, le=le: sum(1 for m in MIGRATIONS if m.ok and ended(m, t) and m.duration <= le),
        )
    w.series(
        f"{hist}_count",
        _labels(job="kubevirt", phase="Succeeded"),
        lambda t: sum(1 for m in MIGRATIONS if m.ok and ended(m, t)),
    )
    w.series(
        f"{hist}_sum",
        _labels(job="kubevirt", phase="Succeeded"),
        lambda t: sum(m.duration for m in MIGRATIONS if m.ok and ended(m, t)),
    )

    # virt-controller VM status timestamps: DOWN_VM stops during the rebalance
    down_vm, down_after = DOWN_VM
    for name, value in (
        (
            "kubevirt_vm_non_running_status_last_transition_timestamp_seconds",
            lambda vmi, t: start + down_after if vmi == down_vm and t >= start + down_after else 0,
        ),
        ("kubevirt_vm_error_status_last_transition_timestamp_seconds", lambda vmi, t: 0),
    ):
        w.family(name, "counter", "Virtual Machine last transition timestamp.")
        for vmi in VMIS:
            w.series(
                name,
                upstream(name, name=vmi, namespace=NAMESPACE, job="kubevirt"),
                lambda t, vmi=vmi, value=value: value(vmi, t),
            )

    # virt-handler domain stats: vCPU delay (10 % of each vCPU's time after the rebalance on
    # the VMs that moved to worker-3, 1 % elsewhere) and guest swap traffic (bytes since boot)
    intervals = _vmi_node_intervals(end)

    def node_of(vmi: str, t: int) -> str | None:
        return next((n for n, a, b in intervals[vmi] if a <= t < b), None)

    w.family("kubevirt_vmi_vcpu_delay_seconds_total", "counter", "Time each vCPU waited in the host run queue.")
    for vmi, spans in intervals.items():
        for node, a, b in spans:
            for vcpu in range(VCPUS):
                share = 0.10 if node == "worker-3" else 0.01
                w.series(
                    "kubevirt_vmi_vcpu_delay_seconds_total",
                    upstream(
                        "kubevirt_vmi_vcpu_delay_seconds_total",
                        node=node,
                        namespace=NAMESPACE,
                        name=vmi,
                        id=str(vcpu),
                        job="kubevirt",
                    ),
                    lambda t, a=a, b=b, share=share: 100 + share * (t - a) if a <= t < b else None,
                )
    for direction, rate in (("in", 2e6), ("out", 1e6)):
        name = f"kubevirt_vmi_memory_swap_{direction}_traffic_bytes"
        w.family(name, "gauge", f"Guest swap {direction} traffic.")
        for vmi, spans in intervals.items():
            for node, a, b in spans:
                w.series(
                    name,
                    upstream(name, node=node, namespace=NAMESPACE, name=vmi, job="kubevirt"),
                    lambda t, a=a, b=b, rate=rate: rate * (t - a) / 60 if a <= t < b else None,
                )

    # node_exporter PSI: waiting share follows CPU utilisation
    for res in ("cpu", "memory", "io"):
        name = f"node_pressure_{res}_waiting_seconds_total"
        w.family(name, "counter", f"Total time in seconds that processes have waited for {res}.")
        for node in nodes:
            acc = {"v": 0.0}

            def values(t, node=node, acc=acc):
                if t > t0:
                    acc["v"] += 0.1 * _cpu_util(node, t, start) * STEP
                return acc["v"]

            w.series(name, upstream(name, instance=node, job="node-exporter"), values)

    # the exporter: start of the wave, from EXPORTER_LAG after it
    w.family("ov_rebalance_start_timestamp_seconds", "gauge", "Start of the current rebalance wave.")
    w.series(
        "ov_rebalance_start_timestamp_seconds",
        _labels(job="ov-exporter"),
        lambda t: start if t >= start + EXPORTER_LAG else None,
    )

    # the exporter's rebalance_watch check: fresh, its watch window open from then on
    # (cluster:ov_post_rebalance_window:active reads it)
    w.family("ov_rebalance_watch_active", "gauge", "1 while the post-rebalance watch window is open.")
    w.series(
        "ov_rebalance_watch_active", _labels(job="ov-exporter"), lambda t: 1.0 if t >= start + EXPORTER_LAG else None
    )
    w.family("ov_check_up", "gauge", "1 when the check ran.")
    w.series("ov_check_up", _labels(job="ov-exporter", check="rebalance_watch"), lambda t: 1.0)
    w.family("ov_check_last_success_timestamp_seconds", "gauge", "Last successful run of the check.")
    w.series(
        "ov_check_last_success_timestamp_seconds",
        _labels(job="ov-exporter", check="rebalance_watch"),
        lambda t: float(t),
    )

    def running(m: Mig, t: int) -> bool:
        return start + m.start <= t < start + m.start + m.duration

    # virt-handler on the source node while a migration runs
    for name, value in (
        (
            "kubevirt_vmi_migration_data_remaining_bytes",
            lambda m, t: 8 * 2**30 * (1 - (t - start - m.start) / m.duration),
        ),
        ("kubevirt_vmi_migration_dirty_memory_rate_bytes", lambda m, t: 200e6),
        ("kubevirt_vmi_migration_memory_transfer_rate_bytes", lambda m, t: 900e6),
    ):
        w.family(name, "gauge", "Migration metric of the source node.")
        for m in MIGRATIONS:
            w.series(
                name,
                _labels(name=m.vmi, namespace=NAMESPACE, node=m.source),
                lambda t, m=m, value=value: value(m, t) if running(m, t) else None,
            )
    w.family("kubevirt_vmi_migrations_in_running_phase", "gauge", "Migrations in the running phase.")
    w.series(
        "kubevirt_vmi_migrations_in_running_phase",
        _labels(job="kubevirt"),
        lambda t: sum(running(m, t) for m in MIGRATIONS),
    )
    for phase in ("pending", "scheduling"):
        w.family(f"kubevirt_vmi_migrations_in_{phase}_phase", "gauge", f"Migrations in the {phase} phase.")
        w.series(f"kubevirt_vmi_migrations_in_{phase}_phase", _labels(job="kubevirt"), lambda t: 0)
    w.family("kubevirt_vmi_dirty_rate_bytes_per_second", "gauge", "Steady-state dirty rate.")
    for i, (vmi, spans) in enumerate(_vmi_node_intervals(end).items()):
        for node, a, b in spans:
            w.series(
                "kubevirt_vmi_dirty_rate_bytes_per_second",
                _labels(name=vmi, namespace=NAMESPACE, node=node),
                lambda t, a=a, b=b, i=i: 10e6 * (i + 1) if a <= t < b else None,
            )

    # etcd histograms: ETCD_OPS a second, p99 = 0.75 * target (3 ms, or 12 ms on etcd-2 after START)
    for name in ("etcd_disk_wal_fsync_duration_seconds", "etcd_disk_backend_commit_duration_seconds"):
        w.family(name, "histogram", "etcd disk latency.")
        for member in ETCD:
            counts = {le: 0.0 for le in BUCKETS + [math.inf]}
            total = {"n": 0.0, "sum": 0.0}
            rows: dict[int, tuple[dict, float, float]] = {}
            for t in times:
                if t > t0:
                    target = _etcd_p99_target(member, t, start) if "wal" in name else 0.004
                    n = ETCD_OPS * STEP
                    for le in counts:
                        # 98 % of the operations in the bucket (target/4, target/2], 2 % in
                        # (target/2, target]: p99 = 0.75 * target by histogram_quantile's interpolation
                        share = 0.0 if le < target / 2 - 1e-12 else 0.98 if le < target - 1e-12 else 1.0
                        counts[le] += n * share
                    total["n"] += n
                    total["sum"] += n * target / 2
                rows[t] = (dict(counts), total["n"], total["sum"])
            for le in BUCKETS + [math.inf]:
                label = "+Inf" if le == math.inf else repr(le)
                w.series(
                    f"{name}_bucket",
                    _labels(instance=member, job="etcd", le=label),
                    lambda t, le=le, rows=rows: rows[t][0][le],
                )
            w.series(f"{name}_count", _labels(instance=member, job="etcd"), lambda t, rows=rows: rows[t][1])
            w.series(f"{name}_sum", _labels(instance=member, job="etcd"), lambda t, rows=rows: rows[t][2])
    return w


BLOCK = 7200  # promtool cuts blocks at 2 h boundaries and reads its input once per block


def write_files(out: Path, end: int = END, writer: Writer | None = None) -> list[Path]:
    """One OpenMetrics file per 2-hour block (so that promtool reads each file once)."""
    w = writer or generate(end)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    first, last = w.times[0] // BLOCK * BLOCK, w.times[-1]
    for lo in range(first, last + 1, BLOCK):
        path = out / f"backfill-{lo}.om"
        path.write_text(w.render(lo, lo + BLOCK))
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--end", type=int, default=END)
    args = ap.parse_args(argv)
    for path in write_files(args.out, args.end):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
