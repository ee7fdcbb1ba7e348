"""`make bench`: load, evaluate and render a synthetic cluster at the scale users run
(500 nodes, 10,000 VMs by default, with a virt-handler pod, a Machine and a PodMetrics
per node or VMI, 2,025 migrations and 20 Trident backends) and print a table.
Measures, never asserts.

    python -m tests.bench [--nodes 500] [--vms 10000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import gc
import json
import statistics
import tempfile
import time
from pathlib import Path

from ov_exporter.config import Config
from ov_exporter.records import KIND_BY_KEY
from ov_exporter.runner import evaluate
from ov_exporter.render import History, SourceStats, render
from ov_exporter.sources.files import load_directory
from ov_exporter.store import Store


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def synthetic(root: Path, nodes: int, vms: int) -> int:
    """Write JSON lists shaped like `oc get -o json`; returns bytes written."""
    node_items, vm_items, vmi_items, pvc_items, nns_items = [], [], [], [], []
    for n in range(nodes):
        name = f"worker-{n:03d}"
        node_items.append({"apiVersion": "v1", "kind": "Node", "metadata": {
            "name": name, "uid": f"node-{n}", "labels": {
                "kubevirt.io/schedulable": "true", "node.openshift.io/os_id": "rhel" if n == 0 else "rhcos",
                "feature.node.kubernetes.io/cpu-hardware_multithreading": "true",
                "kubernetes.io/hostname": name, "node-role.kubernetes.io/worker": ""},
            "annotations": {f"machine.openshift.io/a{i}": "x" * 40 for i in range(8)}},
            "status": {"capacity": {"cpu": "96", "memory": "791634512Ki", "pods": "250"},
                       "allocatable": {"cpu": "95500m", "memory": "780000000Ki"},
                       "nodeInfo": {"osImage": "Red Hat Enterprise Linux CoreOS 418.94", "kernelVersion": "5.14"},
                       "conditions": [{"type": t, "status": "False", "reason": "KubeletHasSufficient" + t,
                                       "message": "kubelet has sufficient " + t} for t in
                                      ("MemoryPressure", "DiskPressure", "PIDPressure")]}})
        nns_items.append({"apiVersion": "nmstate.io/v1beta1", "kind": "NodeNetworkState",
                          "metadata": {"name": name, "uid": f"nns-{n}"},
                          "status": {"currentState": {"interfaces": [
                              {"name": "br1", "type": "linux-bridge", "mtu": 9000 if n % 50 == 0 else 1500,
                               "state": "up", "bridge": {"port": [{"name": "ens4"}]}},
                              {"name": "ens4", "type": "ethernet", "mtu": 9000, "state": "up"},
                              {"name": "br-ex", "type": "ovs-interface", "mtu": 1500, "state": "up"}]}}})
    for v in range(vms):
        ns, name = f"tenant-{v % 200:03d}", f"vm-{v:05d}"
        disks = [f"{name}-root", f"{name}-data"]
        rwx = v % 10 != 0
        for d in disks:
            pvc_items.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {
                "name": d, "namespace": ns, "uid": f"pvc-{d}",
                "labels": {"app": "containerized-data-importer"},
                "annotations": {"cdi.kubevirt.io/storage.import.endpoint": "http://example/x.qcow2" + "x" * 60}},
                "spec": {"accessModes": ["ReadWriteMany" if rwx else "ReadWriteOnce"],
                         "resources": {"requests": {"storage": "30Gi"}},
                         "storageClassName": "ceph-rbd-virt" if rwx else "lvms", "volumeMode": "Block"},
                "status": {"phase": "Bound", "accessModes": ["ReadWriteMany" if rwx else "ReadWriteOnce"],
                           "capacity": {"storage": "30Gi"}}})
        domain = {"cpu": {"sockets": 1, "cores": 4, "threads": 1}, "memory": {"guest": "16Gi"},
                  "resources": {"requests": {"memory": "16Gi"}},
                  "devices": {"disks": [{"name": d, "disk": {"bus": "virtio"}} for d in disks],
                              "interfaces": [{"name": "default", "masquerade": {}},
                                             {"name": "net1", "bridge": {}}]}}
        spec = {"domain": domain, "evictionStrategy": "LiveMigrate",
                "networks": [{"name": "default", "pod": {}}, {"name": "net1", "multus": {"networkName": "br1-net"}}],
                "volumes": [{"name": d, "persistentVolumeClaim": {"claimName": d}} for d in disks]
                + [{"name": "cloudinit", "cloudInitNoCloud": {"userData": "#cloud-config\n" + "x" * 200}}]}
        labels = {"kubevirt.io/domain": name, "app": f"app-{v % 50}"}
        vm_items.append({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
                         "metadata": {"name": name, "namespace": ns, "uid": f"vm-{v}", "labels": labels},
                         "spec": {"runStrategy": "Always", "template": {"metadata": {"labels": labels}, "spec": spec}}})
        vmi_items.append({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
                          "metadata": {"name": name, "namespace": ns, "uid": f"vmi-{v}", "labels": labels},
                          "spec": spec,
                          "status": {"nodeName": f"worker-{v % nodes:03d}", "phase": "Running",
                                     "currentCPUTopology": {"sockets": 1, "cores": 4, "threads": 1},
                                     "volumeStatus": [{"name": d, "target": "vda", "persistentVolumeClaimInfo": {
                                         "claimName": d, "accessModes": ["ReadWriteMany"]}} for d in disks],
                                     "conditions": [{"type": "Ready", "status": "True"},
                                                    {"type": "LiveMigratable", "status": "True"}]}})
    nad = {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
           "metadata": {"name": "br1-net", "namespace": f"tenant-{n:03d}"},
           "spec": {"config": json.dumps({"cniVersion": "0.3.1", "name": "br1-net", "type": "cnv-bridge",
                                          "bridge": "br1"})}}
    nads = [dict(nad, metadata={"name": "br1-net", "namespace": f"tenant-{t:03d}"}) for t in range(200)]
    # What the newer checks read: a virt-handler pod and a Machine per node, one MachineHealthCheck,
    # a PodMetrics per VMI, 2,000 finished and 25 running migrations (a large rebalance), Trident backends.
    handler_items = [{"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": f"virt-handler-{n:05d}", "namespace": "openshift-cnv", "uid": f"vh-{n}",
        "labels": {"kubevirt.io": "virt-handler"}}, "spec": {"nodeName": f"worker-{n:03d}"},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False" if n == 1 else "True"}]}}
        for n in range(nodes)]
    machine_items = [{"apiVersion": "machine.openshift.io/v1beta1", "kind": "Machine", "metadata": {
        "name": f"ocp-worker-{n:03d}", "namespace": "openshift-machine-api", "uid": f"m-{n}",
        "labels": {"machine.openshift.io/cluster-api-machineset": "workers-a" if n % 10 else "workers-b"}},
        "status": {"nodeRef": {"name": f"worker-{n:03d}"}, "phase": "Running"}} for n in range(nodes)]
    machine_items.append({"apiVersion": "machine.openshift.io/v1beta1", "kind": "MachineHealthCheck", "metadata": {
        "name": "workers", "namespace": "openshift-machine-api", "uid": "mhc-1"},
        "spec": {"selector": {"matchLabels": {"machine.openshift.io/cluster-api-machineset": "workers-a"}},
                 "maxUnhealthy": "40%"}})
    metrics_items = [{"apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetrics", "metadata": {
        "name": f"virt-launcher-vm-{v:05d}-abcde", "namespace": f"tenant-{v % 200:03d}",
        "labels": {"kubevirt.io": "virt-launcher", "kubevirt.io/created-by": f"vmi-{v}",
                   "vm.kubevirt.io/name": f"vm-{v:05d}"}},
        "timestamp": "2026-11-26T10:00:00Z", "window": "30s",
        "containers": [{"name": "compute", "usage": {"cpu": f"{(v % 40) * 100}m", "memory": f"{2 + v % 15}Gi"}}]}
        for v in range(vms)]
    vmim_items = []
    for m in range(2025):
        v = (m * 7) % vms
        running = m >= 2000
        state = {"sourceNode": f"worker-{v % nodes:03d}", "targetNode": f"worker-{(v + 1) % nodes:03d}",
                 "startTimestamp": f"2026-11-26T{m % 10:02d}:{m % 60:02d}:00Z"}
        if not running:
            state |= {"endTimestamp": f"2026-11-26T{m % 10:02d}:{m % 60:02d}:30Z", "completed": True}
        vmim_items.append({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration", "metadata": {
            "name": f"mig-{m:05d}", "namespace": f"tenant-{v % 200:03d}", "uid": f"vmim-{m}"},
            "spec": {"vmiName": f"vm-{v:05d}"},
            "status": {"phase": "Running" if running else ("Failed" if m % 50 == 0 else "Succeeded"),
                       "migrationState": state}})
    trident_items = [{"apiVersion": "trident.netapp.io/v1", "kind": "TridentBackendConfig", "metadata": {
        "name": f"backend-{b}", "namespace": "trident", "uid": f"tbc-{b}"},
        "spec": {"storageDriverName": "ontap-nas-economy" if b % 2 else "ontap-nas",
                 **({"limitVolumeSize": "2Ti"} if b % 3 else {})}} for b in range(20)]
    total = 0
    for name, items in (("nodes", node_items), ("vms", vm_items), ("vmis", vmi_items), ("pvcs", pvc_items),
                        ("nns", nns_items), ("nads", nads), ("virt-handlers", handler_items),
                        ("machines", machine_items), ("podmetrics", metrics_items), ("vmims", vmim_items),
                        ("trident", trident_items)):
        data = json.dumps({"apiVersion": "v1", "kind": "List", "items": items}).encode()
        (root / f"{name}.json").write_bytes(data)
        total += len(data)
    lines = ["# TYPE kubevirt_vmi_dirty_rate_bytes_per_second gauge"]
    lines += [f'kubevirt_vmi_dirty_rate_bytes_per_second{{namespace="tenant-{v % 200:03d}",name="vm-{v:05d}",'
              f'node="worker-{v % nodes:03d}"}} {(v % 97) * 4_000_000}' for v in range(vms)]
    (root / "dirty.prom").write_text("\n".join(lines) + "\n")
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--vms", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    config = Config()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        size = synthetic(root, args.nodes, args.vms)
        gc.collect()
        rss0 = rss_mib()
        t0 = time.perf_counter()
        store = Store()
        load_directory(store.apply, root)
        load_s = time.perf_counter() - t0
        gc.collect()
        rss1 = rss_mib()
        state = store.state()
        evals, renders = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            evaluation = evaluate(state, config)
            evals.append(time.perf_counter() - t0)
            history = History()
            history.record(evaluation)
            stats = SourceStats({KIND_BY_KEY[k].kind: c for k, c in store.counts().items()}, 0, 0)
            t0 = time.perf_counter()
            payload = render(evaluation, history, stats)
            renders.append(time.perf_counter() - t0)
        series = sum(1 for line in payload.text.splitlines() if line and not line.startswith(b"#"))
        per_check = {r.spec.id: r.duration for r in evaluation.results}

    objects = sum(store.counts().values())
    print(f"synthetic cluster: {args.nodes} nodes, {args.vms} VMs + VMIs, {2 * args.vms} PVCs, "
          f"{objects} objects, {size / 2**20:.1f} MiB of JSON")
    print()
    print("| measure | value |")
    print("|---|---|")
    print(f"| snapshot load (JSON, per-item typed decode) | {load_s:.2f} s |")
    print(f"| RSS growth during load (store + allocator) | {rss1 - rss0:.0f} MiB |")
    print(f"| evaluation, all checks (median of {args.repeat}) | {statistics.median(evals) * 1000:.0f} ms |")
    for check_id, seconds in per_check.items():
        print(f"| &nbsp;&nbsp;{check_id} | {seconds * 1000:.0f} ms |")
    print(f"| render text + OpenMetrics + gzip (median) | {statistics.median(renders) * 1000:.0f} ms |")
    print(f"| series in /metrics | {series} |")
    print(f"| /metrics payload text / gzip | {len(payload.text) / 1024:.0f} KiB / {len(payload.text_gzip) / 1024:.0f} KiB |")
    print(f"| findings | {len(evaluation.findings)} |")
    print(f"| process RSS at end | {rss_mib():.0f} MiB |")


if __name__ == "__main__":
    main()
