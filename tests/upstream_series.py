"""Upstream-shaped series for one supported KubeVirt release, from the contract
(alerts/upstream-metrics.yaml through tests/upstream_contract.py).

The default Scenario is a quiet healthy cluster: 4 workers and 3 control-plane nodes
(the etcd members), 20 running VMs spread over the workers, node CPU about 40 % busy,
etcd WAL fsync p99 about 2 ms, no migrations. Only names the release publishes are
emitted, each with exactly its own labels (what the target exposes) plus the target
labels its OpenShift scrape adds; every series goes through check_series.

    scrape(scenario, job, t)            {instance: text exposition} of one scrape job at t
    stored(scenario, t)                 every series Prometheus holds at t (target labels
                                        merged, KubeVirt's own recording rules included)
    write_openmetrics(scenario, path, hours, step)
                                        a file for `promtool tsdb create-blocks-from openmetrics`
    input_series(scenario, minutes, step_minutes)
                                        the `input_series` list of a promtool rule test

Planted incidents: subclass Scenario (or pass hooks): `override(metric, labels, t, value)`
may change a sample's value or return None to drop it; `extra(t)` yields more
(job, instance, metric, own labels, value) samples (a migration, a new VM...).
Counters are rate × (t - start), so any window of t gives consistent rates.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from . import upstream_contract as uc

GIB = 1024**3
# etcd's buckets: prometheus.ExponentialBuckets(0.001, 2, 14) (etcd server/wal/metrics.go).
ETCD_BUCKETS = [0.001 * 2**k for k in range(14)]
# Cumulative share of fsyncs at or below each bucket: p99 of WAL fsync ≈ 2.2 ms.
WAL_FSYNC_CDF = [0.5, 0.989, 0.9995, 0.9999, 1.0]
BACKEND_COMMIT_CDF = [0.2, 0.6, 0.95, 0.995, 0.9999, 1.0]
CPU_SHARES = {"idle": 0.58, "iowait": 0.01, "steal": 0.01, "user": 0.28, "system": 0.12}  # 1 - idle = 42 %

KUBEVIRT_JOB = "kubevirt-prometheus-metrics"
JOBS = {  # job -> contract component
    KUBEVIRT_JOB: "kubevirt",
    "node-exporter": "node_exporter",
    "kube-state-metrics": "kube_state_metrics",
    "etcd": "etcd",
}
KSM_ADDRESS = "10.131.0.2:8443"


@dataclasses.dataclass(frozen=True)
class Sample:
    job: str
    instance: str
    metric: str
    labels: tuple[tuple[str, str], ...]  # own labels, sorted
    value: float

    def key(self) -> tuple:
        return (self.metric, self.labels)


Override = Callable[[str, dict[str, str], float, float], "float | None"]


@dataclasses.dataclass
class Scenario:
    release: str = "1.9.0"
    start: float = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    workers: int = 4
    control_plane: int = 3
    vms: int = 20
    cpus_per_node: int = 8
    node_memory_bytes: float = 256 * GIB
    vm_vcpus: int = 2
    vm_memory_bytes: float = 8 * GIB
    vm_cpu_cores: float = 0.5  # cores of host CPU each VM uses
    fsync_per_second: float = 40.0
    commit_per_second: float = 20.0
    hooks: list[Override] = dataclasses.field(default_factory=list)
    extras: list[Callable[[float], Iterable[tuple[str, str, str, dict[str, str], float]]]] = dataclasses.field(
        default_factory=list
    )

    def __post_init__(self) -> None:
        if self.release not in uc.releases():
            raise ValueError(f"KubeVirt {self.release} is not a supported release: {uc.releases()}")

    # ---- topology
    def worker_names(self) -> list[str]:
        return [f"worker-{i}" for i in range(self.workers)]

    def control_plane_names(self) -> list[str]:
        return [f"master-{i}" for i in range(self.control_plane)]

    def vm_list(self) -> list[tuple[str, str, str]]:
        """(namespace, name, node) of each running VM, round-robin over the workers."""
        spaces = ["prod-web", "prod-db", "analytics", "batch"]
        return [
            (spaces[i % len(spaces)], f"vm-{i:02d}", self.worker_names()[i % self.workers]) for i in range(self.vms)
        ]

    # ---- planted incidents
    def override(self, metric: str, labels: dict[str, str], t: float, value: float) -> float | None:
        for hook in self.hooks:
            value = hook(metric, labels, t, value)
            if value is None:
                return None
        return value

    def extra(self, t: float) -> Iterable[tuple[str, str, str, dict[str, str], float]]:
        for fn in self.extras:
            yield from fn(t)


# ------------------------------------------------------------------- target labels
def _ip(kind: int, i: int) -> str:
    return f"10.{kind}.{i // 250}.{i % 250 + 2}"


def _targets(sc: Scenario) -> dict[tuple[str, str], dict[str, str]]:
    """(job, instance) -> target labels, as OpenShift's ServiceMonitors set them."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    for i, node in enumerate(sc.worker_names()):
        inst = f"{_ip(128, i)}:8443"
        out[(KUBEVIRT_JOB, inst)] = {
            "job": KUBEVIRT_JOB,
            "instance": inst,
            "namespace": "openshift-cnv",
            "pod": f"virt-handler-{node}",
            "container": "virt-handler",
            "endpoint": "metrics",
            "service": KUBEVIRT_JOB,
        }
    inst = f"{_ip(129, 0)}:8443"
    out[(KUBEVIRT_JOB, inst)] = {
        "job": KUBEVIRT_JOB,
        "instance": inst,
        "namespace": "openshift-cnv",
        "pod": "virt-controller-0",
        "container": "virt-controller",
        "endpoint": "metrics",
        "service": KUBEVIRT_JOB,
    }
    for node in sc.worker_names() + sc.control_plane_names():
        out[("node-exporter", node)] = {
            "job": "node-exporter",
            "instance": node,
            "namespace": "openshift-monitoring",
            "pod": f"node-exporter-{node}",
            "container": "kube-rbac-proxy",
            "endpoint": "https",
            "service": "node-exporter",
        }
    # kube-state-metrics: instance and pod are dropped by its ServiceMonitor.
    out[("kube-state-metrics", "")] = {
        "job": "kube-state-metrics",
        "namespace": "openshift-monitoring",
        "container": "kube-rbac-proxy-main",
        "endpoint": "https-main",
        "service": "kube-state-metrics",
    }
    for i, node in enumerate(sc.control_plane_names()):
        inst = f"{_ip(0, i)}:9979"
        out[("etcd", inst)] = {
            "job": "etcd",
            "instance": inst,
            "namespace": "openshift-etcd",
            "pod": f"etcd-{node}",
            "container": "etcd-metrics",
            "endpoint": "etcd-metrics",
            "service": "etcd",
        }
    return out


# ----------------------------------------------------------------- healthy samples
VMI_INFO_VALUES = {
    "phase": "running",
    "os": "rhel9",
    "workload": "server",
    "flavor": "small",
    "instance_type": "u1.medium",
    "preference": "rhel.9",
    "guest_os_kernel_release": "5.14.0-427.el9",
    "guest_os_machine": "pc-q35-rhel9.4.0",
    "guest_os_arch": "x86_64",
    "guest_os_name": "Red Hat Enterprise Linux",
    "guest_os_version_id": "9.4",
    "evictable": "true",
    "outdated": "false",
}


def _healthy(sc: Scenario, t: float) -> Iterator[tuple[str, str, str, dict[str, str], float]]:
    up = t - sc.start
    handler = {node: f"{_ip(128, i)}:8443" for i, node in enumerate(sc.worker_names())}
    controller = f"{_ip(129, 0)}:8443"
    rel = sc.release

    def has(metric: str) -> bool:
        return uc.exists(metric, rel)

    # KubeVirt virt-handler, per VMI
    for ns, name, node in sc.vm_list():
        own = {"node": node, "namespace": ns, "name": name}
        inst = handler[node]
        yield KUBEVIRT_JOB, inst, "kubevirt_vmi_cpu_usage_seconds_total", own, sc.vm_cpu_cores * up
        for vcpu in range(sc.vm_vcpus):
            share = sc.vm_cpu_cores / sc.vm_vcpus
            yield (
                KUBEVIRT_JOB,
                inst,
                "kubevirt_vmi_vcpu_seconds_total",
                {**own, "id": str(vcpu), "state": "running"},
                share * up,
            )
            yield KUBEVIRT_JOB, inst, "kubevirt_vmi_vcpu_wait_seconds_total", {**own, "id": str(vcpu)}, 0.001 * up
            yield KUBEVIRT_JOB, inst, "kubevirt_vmi_vcpu_delay_seconds_total", {**own, "id": str(vcpu)}, 0.002 * up
        mem = sc.vm_memory_bytes
        yield KUBEVIRT_JOB, inst, "kubevirt_vmi_memory_domain_bytes", own, mem
        yield KUBEVIRT_JOB, inst, "kubevirt_vmi_memory_available_bytes", own, mem * 0.97
        yield KUBEVIRT_JOB, inst, "kubevirt_vmi_memory_usable_bytes", own, mem * 0.55
        yield KUBEVIRT_JOB, inst, "kubevirt_vmi_memory_resident_bytes", own, mem * 0.6
        yield KUBEVIRT_JOB, inst, "kubevirt_vmi_memory_swap_in_traffic_bytes", own, 0.0
        yield KUBEVIRT_JOB, inst, "kubevirt_vmi_memory_swap_out_traffic_bytes", own, 0.0
        if has("kubevirt_vmi_dirty_rate_bytes_per_second"):
            yield KUBEVIRT_JOB, inst, "kubevirt_vmi_dirty_rate_bytes_per_second", own, 4 * 1024**2
        info = {**own, **{k: v for k, v in VMI_INFO_VALUES.items()}, "vmi_pod": f"virt-launcher-{name}-x7k2p"}
        yield (
            KUBEVIRT_JOB,
            controller,
            "kubevirt_vmi_info",
            {k: info[k] for k in uc.labels("kubevirt_vmi_info", rel)},
            1.0,
        )
        yield KUBEVIRT_JOB, controller, "kubevirt_vmi_non_evictable", own, 0.0
    for inst in handler.values():
        yield KUBEVIRT_JOB, inst, "kubevirt_info", {"goversion": "go1.23.6", "kubeversion": f"v{rel}"}, 1.0
    for phase in ("pending", "scheduling", "running", "unset"):
        metric = f"kubevirt_vmi_migrations_in_{phase}_phase"
        if has(metric):
            yield KUBEVIRT_JOB, controller, metric, {}, 0.0

    # node_exporter on every node
    for node in sc.worker_names() + sc.control_plane_names():
        for cpu in range(sc.cpus_per_node):
            for mode, share in CPU_SHARES.items():
                yield "node-exporter", node, "node_cpu_seconds_total", {"cpu": str(cpu), "mode": mode}, share * up
        yield "node-exporter", node, "node_memory_MemTotal_bytes", {}, sc.node_memory_bytes
        yield "node-exporter", node, "node_memory_MemAvailable_bytes", {}, sc.node_memory_bytes * 0.5
        yield "node-exporter", node, "node_vmstat_pswpin", {}, 0.0
        yield "node-exporter", node, "node_vmstat_pswpout", {}, 0.0
        yield "node-exporter", node, "node_pressure_cpu_waiting_seconds_total", {}, 0.02 * up
        yield "node-exporter", node, "node_pressure_memory_waiting_seconds_total", {}, 0.0
        yield "node-exporter", node, "node_pressure_memory_stalled_seconds_total", {}, 0.0

    # kube-state-metrics: every node Ready and schedulable
    for node in sc.worker_names() + sc.control_plane_names():
        for status in ("true", "false", "unknown"):
            yield (
                "kube-state-metrics",
                "",
                "kube_node_status_condition",
                {"node": node, "condition": "Ready", "status": status},
                1.0 if status == "true" else 0.0,
            )
        yield "kube-state-metrics", "", "kube_node_spec_unschedulable", {"node": node}, 0.0

    # etcd members
    for i, _ in enumerate(sc.control_plane_names()):
        inst = f"{_ip(0, i)}:9979"
        yield "etcd", inst, "etcd_server_has_leader", {}, 1.0
        for metric, rate, cdf in (
            ("etcd_disk_wal_fsync_duration_seconds", sc.fsync_per_second, WAL_FSYNC_CDF),
            ("etcd_disk_backend_commit_duration_seconds", sc.commit_per_second, BACKEND_COMMIT_CDF),
        ):
            total = math.floor(rate * up)
            for k, le in enumerate(ETCD_BUCKETS):
                share = cdf[min(k, len(cdf) - 1)]
                yield "etcd", inst, f"{metric}_bucket", {"le": _le(le)}, float(math.floor(total * share))
            yield "etcd", inst, f"{metric}_bucket", {"le": "+Inf"}, float(total)
            yield "etcd", inst, f"{metric}_count", {}, float(total)
            yield "etcd", inst, f"{metric}_sum", {}, total * 0.0012


def _le(bound: float) -> str:
    return repr(round(bound, 6))


# ----------------------------------------------------------------------- assembly
def samples(sc: Scenario, t: float) -> list[Sample]:
    """Every sample the scrape targets expose at t (own labels only), hooks applied,
    each checked against the contract for the scenario's release."""
    out = []
    for job, inst, metric, own, value in [*_healthy(sc, t), *sc.extra(t)]:
        if uc.base_name(metric) is None:
            raise uc.ContractError(f"{metric} is not in the contract")
        if not uc.exists(uc.base_name(metric), sc.release):
            continue
        value = sc.override(metric, own, t, value)
        if value is None:
            continue
        out.append(Sample(job, inst, metric, tuple(sorted(own.items())), float(value)))
    return out


def _merge(sc: Scenario, sample: Sample, targets: dict) -> dict[str, str]:
    """The series Prometheus stores: target labels added; an own label that clashes
    wins with honor_labels, else it is renamed exported_<name>."""
    target = targets[(sample.job, sample.instance)]
    honor = uc.load()["components"][JOBS[sample.job]]["scrape"]["honor_labels"]
    merged = dict(target)
    for k, v in sample.labels:
        if k in target and not honor:
            merged[f"exported_{k}"] = v
        else:
            merged[k] = v
    return merged


def _kubevirt_rules(sc: Scenario, stored: list[tuple[str, dict[str, str], float]]):
    """What KubeVirt's own recording rules (its PrometheusRule) record from `stored`."""
    rel = sc.release
    by_key = {(m, tuple(sorted((k, v) for k, v in labels.items()))): v for m, labels, v in stored}
    for metric, labels, value in stored:
        if metric == "kubevirt_vmi_memory_available_bytes":
            usable = by_key.get(("kubevirt_vmi_memory_usable_bytes", tuple(sorted(labels.items()))))
            if usable is None:
                continue
            for rule in ("kubevirt_vmi_memory_used_bytes", "vmi:kubevirt_vmi_memory_used_bytes:sum"):
                if uc.exists(rule, rel):
                    yield rule, dict(labels), value - usable
    vcpus: dict[tuple[str, str, str], int] = {}
    for metric, labels, _ in stored:
        if metric == "kubevirt_vmi_vcpu_seconds_total":
            key = (labels["namespace"], labels["name"], labels["node"])
            vcpus[key] = vcpus.get(key, 0) + 1
    for rule in ("kubevirt_vmi_vcpu_count", "vmi:kubevirt_vmi_vcpu:count"):
        if uc.exists(rule, rel):
            for (ns, name, node), n in sorted(vcpus.items()):
                yield rule, {"namespace": ns, "name": name, "node": node}, float(n)


def stored(sc: Scenario, t: float) -> list[tuple[str, dict[str, str], float]]:
    """(metric, labels, value) of every series Prometheus would hold at t: scraped
    samples with target labels, `up` per target, KubeVirt's recording rules. Each is
    checked with check_series for the scenario's release."""
    targets = _targets(sc)
    out = [(s.metric, _merge(sc, s, targets), s.value) for s in samples(sc, t)]
    # metricRelabelings drop kube-state-metrics' instance from its samples, not from `up`.
    out += [("up", {"instance": KSM_ADDRESS, **labels}, 1.0) for labels in targets.values()]
    out += list(_kubevirt_rules(sc, out))
    for metric, labels, _ in out:
        uc.check_series(metric, labels, sc.release)
    return out


def scrape(sc: Scenario, job: str, t: float) -> dict[str, str]:
    """{instance: Prometheus text exposition} of every target of `job` at t: what the
    target itself serves (own labels only, no target labels)."""
    by_instance: dict[str, list[Sample]] = {}
    for s in samples(sc, t):
        if s.job == job:
            by_instance.setdefault(s.instance, []).append(s)
    for s in [x for xs in by_instance.values() for x in xs]:
        uc.check_series(s.metric, dict(s.labels) | _targets(sc)[(s.job, s.instance)], sc.release)
    return {inst: _text(items) for inst, items in by_instance.items()}


def _text(items: list[Sample]) -> str:
    lines: list[str] = []
    typed: set[str] = set()
    for s in sorted(items, key=lambda s: (uc.base_name(s.metric), s.metric, s.labels)):
        base = uc.base_name(s.metric)
        if base not in typed:
            typed.add(base)
            lines.append(f"# TYPE {base} {uc.entry(base)['type']}")
        lines.append(f"{s.metric}{_labels(dict(s.labels))} {_num(s.value)}")
    return "\n".join(lines) + "\n"


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
    return "{" + body + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(value: float) -> str:
    return repr(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(value)


def _timeline(sc: Scenario, seconds: float, step: float) -> dict[tuple[str, tuple], list[tuple[float, float]]]:
    series: dict[tuple[str, tuple], list[tuple[float, float]]] = {}
    n = int(seconds // step)
    for i in range(n + 1):
        t = sc.start + i * step
        for metric, labels, value in stored(sc, t):
            series.setdefault((metric, tuple(sorted(labels.items()))), []).append((t, value))
    return series


def write_openmetrics(sc: Scenario, path: Path, hours: float, step: float = 60.0) -> int:
    """Write `hours` from sc.start as OpenMetrics for promtool's backfill, one series
    after the other in time order; returns the number of series."""
    series = _timeline(sc, hours * 3600, step)
    with path.open("w") as out:
        for (metric, labels), points in sorted(series.items()):
            name = f"{metric}{_labels(dict(labels))}"
            for t, value in points:
                out.write(f"{name} {_num(value)} {int(t)}\n")
        out.write("# EOF\n")
    return len(series)


def input_series(sc: Scenario, minutes: int, step_minutes: int = 1) -> list[dict[str, str]]:
    """The `input_series` of a promtool rule test: values every `step_minutes` from
    sc.start (promtool's time 0) for `minutes`."""
    series = _timeline(sc, minutes * 60, step_minutes * 60)
    return [
        {"series": f"{metric}{_labels(dict(labels))}", "values": " ".join(_num(v) for _, v in points)}
        for (metric, labels), points in sorted(series.items())
    ]
