"""The cluster objects behind tests/upstream_series.py's Scenario, for the exporter.

A quiet healthy cluster as OpenShift Virtualization ships it: HCO defaults left as they
are (vmiCPUAllocationRatio 10, 5 parallel migrations, 2 outbound per node, no
dedicated migration network, completionTimeoutPerGiB 150), KubeVirt CR without
overrides, RHCOS workers with the NFD SMT label, control-plane nodes tainted and not
VM-schedulable, a NodeHealthCheck over the workers, VMs on RWX (ODF RBD) disks with
evictionStrategy from the cluster default, virt-handler Ready on every worker. The
VMs, nodes and sizes are the Scenario's, so the exporter and the upstream series
describe the same cluster.

`incident` plants, on the same cluster, what must page or open a ticket: worker-3
NotReady with its VMIs still assigned (a page per VMI), one of them with an RWO disk
(a blocked migration, inhibited by its node being NotReady).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from .checks import builders as b
from .upstream_series import GIB, Scenario

NOT_READY_NODE = "worker-3"
RWO_VM = "vm-03"  # on worker-3 in Scenario.vm_list()


def quiet_scenario(release: str, **overrides) -> Scenario:
    """The Scenario sized inside the seed's production overcommit range: 5 VMs of
    2 vCPUs per worker on 9 physical cores (18 threads) is 1.11 vCPU per core."""
    return Scenario(release=release, cpus_per_node=18, vm_vcpus=2, vm_memory_bytes=8 * GIB, **overrides)


def _hco() -> dict:
    obj = b.hco(cpu_ratio=10)
    spec = obj["spec"]
    spec["liveMigrationConfig"] = {
        "parallelMigrationsPerCluster": 5,
        "parallelOutboundMigrationsPerNode": 2,
        "completionTimeoutPerGiB": 150,
        "progressTimeout": 150,
        "bandwidthPerMigration": "0Mi",
        "allowAutoConverge": False,
        "allowPostCopy": False,
    }
    spec["evictionStrategy"] = "LiveMigrate"
    spec.setdefault("higherWorkloadDensity", {})["memoryOvercommitPercentage"] = 100
    return obj


def objects(sc: Scenario, *, incident: bool = False) -> list[dict]:
    cores = sc.cpus_per_node
    memory = f"{int(sc.node_memory_bytes // GIB)}Gi"
    out: list[dict] = [b.node(name, cpu=cores, memory=memory, smt=True, schedulable=True) for name in sc.worker_names()]
    out += [
        b.node(
            name,
            cpu=cores,
            memory=memory,
            smt=True,
            schedulable=False,
            control_plane=True,
            taints=[{"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"}],
        )
        for name in sc.control_plane_names()
    ]
    if incident:
        for node in out:
            if node["metadata"]["name"] == NOT_READY_NODE:
                node["status"]["conditions"] = [{"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown"}]
    kubevirt = b.kubevirt_cr()
    kubevirt.setdefault("status", {})["observedKubeVirtVersion"] = f"v{sc.release}"
    out += [_hco(), kubevirt, b.cluster_network(1400), b.storage_class("ocs-storagecluster-ceph-rbd")]
    out.append(
        {
            "apiVersion": "remediation.medik8s.io/v1alpha1",
            "kind": "NodeHealthCheck",
            "metadata": {"name": "workers", "uid": "nhc-workers"},
            "spec": {
                "selector": {"matchExpressions": [{"key": "node-role.kubernetes.io/worker", "operator": "Exists"}]},
                "minHealthy": "51%",
                "remediationTemplate": {
                    "apiVersion": "self-node-remediation.medik8s.io/v1alpha1",
                    "kind": "SelfNodeRemediationTemplate",
                    "name": "self-node-remediation-automatic",
                    "namespace": "openshift-workload-availability",
                },
            },
        }
    )
    out += [b.virt_handler_pod(name, ready=not (incident and name == NOT_READY_NODE)) for name in sc.worker_names()]
    guest = f"{int(sc.vm_memory_bytes // GIB)}Gi"
    for ns, name, node in sc.vm_list():
        modes = ("ReadWriteOnce",) if incident and name == RWO_VM else ("ReadWriteMany",)
        claim = f"{name}-rootdisk"
        out.append(b.pvc(claim, ns, access_modes=modes, storage_class="ocs-storagecluster-ceph-rbd"))
        out.append(b.vm(name, ns, volumes=[b.pvc_volume("rootdisk", claim)], cores=sc.vm_vcpus, memory=guest))
        vmi = b.vmi(name, ns, node=node, volumes=[b.pvc_volume("rootdisk", claim)], cores=sc.vm_vcpus, memory=guest)
        vmi["status"]["volumeStatus"] = [b.volume_status("rootdisk", claim, modes)]
        out.append(vmi)
    for ns in sorted({ns for ns, _, _ in sc.vm_list()}):
        out.append(b.namespace(ns))
    return out


def write_snapshot(sc: Scenario, directory: Path, *, incident: bool = False) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    doc = {"apiVersion": "v1", "kind": "List", "items": objects(sc, incident=incident)}
    (directory / "cluster.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return directory
