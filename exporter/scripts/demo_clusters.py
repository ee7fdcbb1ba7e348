"""The data of the two generated clusters: the embedded demo (every anti-pattern
planted, with look-alikes that must not be flagged; what each check must find is in
checks/<id>/demo.yaml) and the clean test fixture (nothing to find), plus their usage
samples. Built with demo_builders; written by make_demo.py."""

from __future__ import annotations

import json

from demo_builders import (
    GI,
    LVMS_PROPERTY_SETS,
    MI,
    ODF_PROPERTY_SETS,
    ODF_RBD_PARAMS,
    RWX,
    Cluster,
    Disk,
    MigrationRow,
    MigrationStateRow,
    NADRow,
    NamespaceRow,
    NetRef,
    NodeRow,
    PolicyRow,
    StorageClassRow,
    VMRow,
    _template_labels,
    cni,
    iface,
    machine_health_check,
    nncp,
    stamp,
    suffix,
    termination_handler_mhc,
    trident_backend,
    uid,
)

# ================================================================ the demo cluster

VIRT_CLASS = "ocs-storagecluster-ceph-rbd-virtualization"
RBD_CLASS = "ocs-storagecluster-ceph-rbd"
LVMS_CLASS = "lvms-vg1"

DEMO_CLASSES = {
    VIRT_CLASS: StorageClassRow(
        VIRT_CLASS,
        "openshift-storage.rbd.csi.ceph.com",
        ODF_PROPERTY_SETS,
        parameters={**ODF_RBD_PARAMS, "mapOptions": "krbd:rxbounce", "mounter": "rbd"},
        annotations={
            "description": "Provides RWO and RWX Block volumes suitable for Virtual Machine disks",
            "storageclass.kubevirt.io/is-default-virt-class": "true",
        },
        snapshot_class="ocs-storagecluster-rbdplugin-snapclass",
    ),
    RBD_CLASS: StorageClassRow(
        RBD_CLASS,
        "openshift-storage.rbd.csi.ceph.com",
        ODF_PROPERTY_SETS,
        parameters=dict(ODF_RBD_PARAMS),
        annotations={
            "description": "Provides RWO Filesystem volumes, and RWO and RWX Block volumes",
            "storageclass.kubernetes.io/is-default-class": "true",
        },
        snapshot_class="ocs-storagecluster-rbdplugin-snapclass",
    ),
    LVMS_CLASS: StorageClassRow(
        LVMS_CLASS,
        "topolvm.io",
        LVMS_PROPERTY_SETS,
        parameters={"csi.storage.k8s.io/fstype": "xfs", "topolvm.io/device-class": "vg1"},
        annotations={"description": "Provides RWO and RWOP Filesystem & Block volumes"},
        binding="WaitForFirstConsumer",
        snapshot_class="lvms-vg1",
        clone_strategy="snapshot",
    ),
}


def _workers(*names_and_ips: tuple[str, str], **kw) -> list[NodeRow]:
    return [NodeRow(n, "worker", ip=ip, **kw) for n, ip in names_and_ips]


HANA_NODE_LABEL = (("sap.example.com/hana-certified", "true"),)
DEMO_NODES = [
    # The control plane runs as vSphere VMs (labelled with their ESXi host by the platform team);
    # DRS moved master-1 next to master-0 during a host maintenance.
    NodeRow("master-0", "master", cpu=16, memory_ki=65_842_228, ip="192.168.111.20", hypervisor_host="esxi-01"),
    NodeRow("master-1", "master", cpu=16, memory_ki=65_842_228, ip="192.168.111.21", hypervisor_host="esxi-01"),
    # mastersSchedulable was switched on for a test and never switched off: VMs may land next to etcd.
    NodeRow(
        "master-2",
        "master",
        cpu=16,
        memory_ki=65_842_228,
        ip="192.168.111.22",
        hypervisor_host="esxi-02",
        vm_schedulable=True,
    ),
    *_workers(("worker-0", "192.168.111.30"), ("worker-1", "192.168.111.31"), ("worker-2", "192.168.111.32")),
    # The only node certified for SAP HANA (sap-hana-01 selects it with a nodeSelector).
    NodeRow("worker-3", "worker", ip="192.168.111.33", extra_labels=HANA_NODE_LABEL),
    *_workers(("worker-4", "192.168.111.34")),
    # NFD did not label this one (its nfd-worker pod was evicted): threads per core come from the config.
    NodeRow("worker-5", "worker", smt=None, ip="192.168.111.35"),
    # A RHEL 8 compute node left over from before the virtualization roll-out, added outside the
    # Machine API; its kubelet stopped posting status a quarter of an hour before the dump.
    NodeRow(
        "rhel-worker-0",
        "worker",
        cpu=48,
        memory_ki=263_869_288,
        os="rhel",
        ip="192.168.111.40",
        cpu_model="Cascadelake-Server",
        ready=False,
    ),
]

PROD = {"env": "production"}
DEMO_NAMESPACES = [
    NamespaceRow("openshift-cnv", {"openshift.io/cluster-monitoring": "true"}, "OpenShift Virtualization"),
    NamespaceRow("openshift-virtualization-os-images", {}, "Golden images"),
    NamespaceRow(
        "prod-web", {**PROD, "app.kubernetes.io/part-of": "storefront"}, "Storefront web tier", "alice@example.com"
    ),
    NamespaceRow("prod-db", {**PROD, "tier": "database"}, "Production databases", "dba-team@example.com"),
    NamespaceRow("prod-cache", {**PROD, "tier": "cache"}, "Production caches", "alice@example.com"),
    NamespaceRow(
        "analytics",
        {**PROD, "workload-class": "analytics"},
        "Analytics (Kafka, Elastic, Spark)",
        "data-eng@example.com",
    ),
    NamespaceRow("erp", {**PROD, "workload-class": "sap"}, "SAP ERP", "sap-basis@example.com"),
    NamespaceRow(
        "batch-jobs", {"env": "nonprod", "workload-class": "batch"}, "Nightly ETL and reports", "data-eng@example.com"
    ),
    NamespaceRow("dev-sandbox", {"env": "dev"}, "Developer sandbox", "bob@example.com"),
    NamespaceRow("ci-runners", {"env": "dev", "workload-class": "ci"}, "Jenkins agents", "ci-bot@example.com"),
]

# Cluster defaults from HCO (4.18 era): unlimited bandwidth, 150 s/GiB, 2 outbound per node.
DEMO_MIGRATIONS = {
    "allowAutoConverge": False,
    "allowPostCopy": False,
    "completionTimeoutPerGiB": 150,
    "parallelMigrationsPerCluster": 5,
    "parallelOutboundMigrationsPerNode": 2,
    "progressTimeout": 150,
}

DEMO_POLICIES = [
    PolicyRow(
        "production-throttled",
        {"env": "production"},
        bandwidth="512Mi",
        timeout_per_gib=300,
        auto_converge=True,
        post_copy=False,
        description="Keep production migrations below half of the 10G migration link",
    ),
    PolicyRow(
        "analytics-large-memory",
        {"workload-class": "analytics"},
        {"migration-profile": "large-memory"},
        bandwidth="1Gi",
        auto_converge=True,
        post_copy=False,
        description="Large-memory analytics VMs may use the whole link",
    ),
    PolicyRow(
        "batch-throttled",
        {"workload-class": "batch"},
        bandwidth="64Mi",
        timeout_per_gib=20,
        auto_converge=False,
        post_copy=False,
        description="Batch VMs must not slow other migrations; abort stuck ones early",
    ),
]

# VMI migration states (status.migrationState) and the VMIMs that ran them.
DEMO_MIGRATION_STATES = {
    "web-frontend-03-evacuation": MigrationStateRow(
        "worker-2",
        "worker-0",
        9,
        0.6,
        policy="production-throttled",
        bandwidth="512Mi",
        timeout_per_gib=300,
        auto_converge=True,
    ),
    "kafka-broker-02-failed": MigrationStateRow(
        "worker-2",
        "worker-4",
        2,
        26,
        failed=True,
        policy="production-throttled",
        bandwidth="512Mi",
        timeout_per_gib=300,
        auto_converge=True,
    ),
    "elastic-data-02-running": MigrationStateRow(
        "worker-4", "worker-0", 0.003, None, policy="analytics-large-memory", bandwidth="1Gi", auto_converge=True
    ),
    "sap-app-02-done": MigrationStateRow(
        "worker-1",
        "worker-4",
        15,
        2.4,
        policy="production-throttled",
        bandwidth="512Mi",
        timeout_per_gib=300,
        auto_converge=True,
    ),
    # rebalance_watch: web-frontend-06 bounced worker-5 -> worker-3 -> worker-5 inside the 48 h window.
    "web-frontend-06-rebalance-1": MigrationStateRow(
        "worker-5",
        "worker-3",
        1.6,
        0.7,
        policy="production-throttled",
        bandwidth="512Mi",
        timeout_per_gib=300,
        auto_converge=True,
    ),
    "web-frontend-06-rebalance-2": MigrationStateRow(
        "worker-3",
        "worker-5",
        0.7,
        0.6,
        policy="production-throttled",
        bandwidth="512Mi",
        timeout_per_gib=300,
        auto_converge=True,
    ),
    # migration_capacity: the rest of the rebalance batch: haproxy-lb-02 running beside elastic-data-02
    # over the pod network (declared a rebalance by annotation), two queued (Pending).
    "mariadb-01-queued": MigrationStateRow("worker-4", "worker-0", 0.002, None),
    "haproxy-lb-02-running": MigrationStateRow("worker-0", "worker-3", 0.002, None),
    "etl-worker-02-queued": MigrationStateRow("worker-2", "worker-3", 0.002, None),
    # Causes that never open the watch: an upgrade's workload update, finished 16 min before the
    # dump (the queue is draining), and the drain of worker-6 (since removed) five days ago.
    "web-frontend-01-workload-update": MigrationStateRow("worker-0", "worker-1", 0.01, 6),
    "postgres-replica-01-drain": MigrationStateRow("worker-6", "worker-2", 5, 3.5),
}
DEMO_MIGRATIONS_OBJECTS = [
    MigrationRow(
        "prod-web",
        f"kubevirt-evacuation-{suffix('evac', 'web-frontend-03')}",
        "web-frontend-03",
        "Succeeded",
        "web-frontend-03-evacuation",
        evacuation="worker-2",
    ),
    MigrationRow(
        "analytics",
        f"kafka-broker-02-migration-{suffix('mig', 'kafka-broker-02')}",
        "kafka-broker-02",
        "Failed",
        "kafka-broker-02-failed",
    ),
    MigrationRow("analytics", "rebalance-elastic-data-02", "elastic-data-02", "Running", "elastic-data-02-running"),
    MigrationRow(
        "erp", f"sap-app-02-migration-{suffix('mig', 'sap-app-02')}", "sap-app-02", "Succeeded", "sap-app-02-done"
    ),
    MigrationRow(
        "prod-web", "rebalance-web-frontend-06", "web-frontend-06", "Succeeded", "web-frontend-06-rebalance-1"
    ),
    MigrationRow(
        "prod-web", "rebalance-web-frontend-06-back", "web-frontend-06", "Succeeded", "web-frontend-06-rebalance-2"
    ),
    MigrationRow("prod-db", "rebalance-mariadb-01", "mariadb-01", "Pending", "mariadb-01-queued"),
    MigrationRow(
        "prod-web",
        "rebalance-haproxy-lb-02",
        "haproxy-lb-02",
        "Running",
        "haproxy-lb-02-running",
        declared="2025-01-20 batch",
    ),
    MigrationRow("batch-jobs", "rebalance-etl-worker-02", "etl-worker-02", "Pending", "etl-worker-02-queued"),
    MigrationRow(
        "prod-web",
        f"kubevirt-workload-update-{suffix('wu', 'web-frontend-01')}",
        "web-frontend-01",
        "Succeeded",
        "web-frontend-01-workload-update",
        workload_update=True,
    ),
    MigrationRow(
        "prod-db",
        f"kubevirt-evacuation-{suffix('evac', 'postgres-replica-01')}",
        "postgres-replica-01",
        "Succeeded",
        "postgres-replica-01-drain",
        evacuation="worker-6",
    ),
]
# The running migrations, as virt-handler on the source node reports them (bytes and bytes/s).
DEMO_MIGRATION_SAMPLES = [
    (
        "analytics",
        "elastic-data-02",
        "worker-4",
        {
            "kubevirt_vmi_migration_data_remaining_bytes": 21.5 * GI,
            "kubevirt_vmi_migration_dirty_memory_rate_bytes": 110 * MI,
            "kubevirt_vmi_migration_memory_transfer_rate_bytes": 180 * MI,
        },
    ),
    (
        "prod-web",
        "haproxy-lb-02",
        "worker-0",
        {
            "kubevirt_vmi_migration_data_remaining_bytes": 1.2 * GI,
            "kubevirt_vmi_migration_dirty_memory_rate_bytes": 3 * MI,
            "kubevirt_vmi_migration_memory_transfer_rate_bytes": 240 * MI,
        },
    ),
]


def root(size: int = 30, **kw) -> Disk:
    return Disk("rootdisk", size, **kw)


def nets(*pairs: str) -> tuple[NetRef, ...]:
    return tuple(NetRef(f"nic-{i}", name) for i, name in enumerate(pairs, start=1))


FRONTEND = nets("frontend-vlan110")
REPLICATION = nets("db-replication")
STORAGE_NET = nets("storage-net")
JENKINS_IMAGE = "registry.redhat.io/rhel9/rhel-guest-image:9.4"
MEMCACHED_IMAGE = "quay.io/containerdisks/centos-stream:9"
LARGE_MEMORY = (("migration-profile", "large-memory"),)
EXEMPT_ANNOTATION = "ov-exporter.openshift.io/exempt"


def hostname_in(*hosts: str) -> dict:
    """A required node affinity on kubernetes.io/hostname."""
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": list(hosts)}]}
                ]
            }
        }
    }


def spread_from(app: str, topology: str = "kubernetes.io/hostname", weight: int = 100) -> dict:
    """One preferred pod anti-affinity term: keep replicas of `app` apart."""
    return {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": weight,
                    "podAffinityTerm": {
                        "topologyKey": topology,
                        "labelSelector": {"matchLabels": {"app.kubernetes.io/name": app}},
                    },
                }
            ]
        }
    }


# The classic "too many overlapping constraints" example, adapted to the demo's node labels:
# 3 nodeSelector keys, a required and a preferred pod (anti-)affinity term, 2 tolerations = 7.
SPARK_CONSTRAINTS = {
    "nodeSelector": {
        "node-role.kubernetes.io/worker": "",
        "kubernetes.io/arch": "amd64",
        "cpu-model.node.kubevirt.io/Icelake-Server": "true",
    },
    "affinity": {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "labelSelector": {
                        "matchExpressions": [
                            {"key": "app", "operator": "In", "values": ["kafka-broker-01", "kafka-broker-02"]}
                        ]
                    },
                    "topologyKey": "kubernetes.io/hostname",
                }
            ]
        },
        "podAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "topologyKey": "topology.kubernetes.io/zone",
                        "labelSelector": {
                            "matchExpressions": [
                                {"key": "app.kubernetes.io/name", "operator": "In", "values": ["spark-worker"]}
                            ]
                        },
                    },
                }
            ]
        },
    },
    "tolerations": [
        {"key": "dedicated", "operator": "Equal", "value": "virtualization", "effect": "NoSchedule"},
        {"key": "high-performance", "operator": "Exists", "effect": "NoSchedule"},
    ],
}
GPU_PRODUCT = "nvidia.com/gpu.product"
GPU_PENDING = (
    "0/11 nodes are available: 3 node(s) had untolerated taint {node-role.kubernetes.io/master: }, "
    "8 node(s) didn't match Pod's node affinity/selector. preemption: 0/11 nodes are available: "
    "11 Preemption is not helpful for scheduling."
)

# The 44 running VMs, with the node their VMI runs on (plus one stopped VM).
# Node loads (physical cores = 32 per worker with SMT):
#   worker-0 30 vCPU / 140 GiB    worker-1 64 vCPU (2.00, critical) / 232 GiB
#   worker-2 44 vCPU (1.38, warning) / 156 GiB    worker-3 34 vCPU / 480 GiB (0.95 of 503 GiB, warning)
#   worker-4 36 vCPU / 200 GiB    worker-5 30 vCPU / 92 GiB    rhel-worker-0 4 vCPU / 8 GiB
# Cluster: 242 vCPU on 224 cores (1.08), 1308 GiB on 3334 GiB (0.39): no cluster-wide finding
# (the VM-schedulable master-2 adds its 8 cores and 63 GiB to the cluster totals).
DEMO_VMS = [
    # prod-web: RWX root disks, VLAN 110 bridge with an explicit MTU
    VMRow("prod-web", "web-frontend-01", "worker-1", (1, 4, 1), 8, disks=(root(),), networks=FRONTEND, dirty_mib=18),
    VMRow(
        "prod-web",
        "web-frontend-02",
        "worker-2",
        (1, 4, 1),
        8,
        disks=(root(),),
        networks=FRONTEND,
        dirty_mib=22,
        scheduling={"affinity": spread_from("web-frontend")},
    ),
    VMRow(
        "prod-web",
        "web-frontend-03",
        "worker-0",
        (1, 4, 1),
        8,
        disks=(root(),),
        networks=FRONTEND,
        dirty_mib=15,
        migration="web-frontend-03-evacuation",
    ),
    VMRow("prod-web", "web-frontend-04", "worker-0", (1, 4, 1), 8, disks=(root(),), networks=FRONTEND, dirty_mib=19),
    VMRow("prod-web", "web-frontend-05", "worker-4", (1, 4, 1), 8, disks=(root(),), networks=FRONTEND, dirty_mib=25),
    VMRow("prod-web", "web-frontend-06", "worker-5", (1, 4, 1), 8, disks=(root(),), networks=FRONTEND, dirty_mib=12),
    VMRow(
        "prod-web",
        "haproxy-lb-01",
        "worker-2",
        (1, 2, 1),
        4,
        disks=(root(20),),
        networks=FRONTEND,
        dirty_mib=4,
        size="small",
        eviction="LiveMigrate",
    ),
    VMRow(
        "prod-web",
        "haproxy-lb-02",
        "worker-0",
        (1, 2, 1),
        4,
        disks=(root(20),),
        networks=FRONTEND,
        dirty_mib=3,
        size="small",
        eviction="LiveMigrate",
    ),
    # prod-db
    VMRow(
        "prod-db",
        "postgres-primary-01",
        "worker-1",
        (2, 8, 1),
        64,
        disks=(root(40, access_modes=(RWX,)), Disk("pgdata", 500, source="pvc", access_modes=(RWX,))),
        networks=REPLICATION,
        dirty_mib=600,
        size="xlarge",
    ),
    VMRow(
        "prod-db",
        "postgres-replica-01",
        "worker-2",
        (1, 8, 1),
        32,
        disks=(root(40), Disk("pgdata", 500, source="pvc", access_modes=(RWX,))),
        networks=REPLICATION,
        dirty_mib=45,
        size="large",
    ),
    VMRow(
        "prod-db",
        "postgres-replica-02",
        "worker-0",
        (1, 8, 1),
        32,
        disks=(root(40), Disk("pgdata", 500, source="pvc", access_modes=(RWX,))),
        networks=REPLICATION,
        dirty_mib=41,
        size="large",
    ),
    VMRow(
        "prod-db",
        "mariadb-01",
        "worker-4",
        (1, 8, 1),
        32,
        disks=(root(40), Disk("data", 200)),
        networks=nets("db-replication", "backup-vlan300"),
        dirty_mib=30,
        size="large",
    ),
    # Oracle on local NVMe, cold-migrated in maintenance windows: RWO on purpose, evictionStrategy None.
    VMRow(
        "prod-db",
        "oracle-db-01",
        "worker-3",
        (1, 4, 1),
        64,
        disks=(root(60, storage_class=LVMS_CLASS), Disk("oradata", 800, storage_class=LVMS_CLASS)),
        eviction="None",
        networks=REPLICATION,
        dirty_mib=70,
        size="xlarge",
        scheduling={"affinity": hostname_in("worker-3")},
    ),
    # Created before DataVolume spec.storage existed: spec.pvc on the general RBD class.
    VMRow(
        "prod-db",
        "mssql-01",
        "worker-1",
        (1, 8, 1),
        32,
        os="win2k22",
        disks=(root(120, storage_class=RBD_CLASS, source="dvt-pvc", access_modes=(RWX,)),),
        dirty_mib=55,
        size="large",
        age_days=600,
    ),
    # prod-cache: conflist NAD on br1 (explicit 9000); redis-cache-01 also on the frontend VLAN (explicit 1500)
    VMRow(
        "prod-cache",
        "redis-cache-01",
        "worker-1",
        (1, 4, 1),
        16,
        disks=(root(),),
        networks=nets("cache-sync", "prod-web/frontend-vlan110"),
        dirty_mib=95,
    ),
    VMRow(
        "prod-cache",
        "redis-cache-02",
        "worker-3",
        (1, 2, 1),
        32,
        disks=(root(),),
        networks=nets("cache-sync"),
        dirty_mib=88,
        limits=(("cpu", "2"), ("memory", "32Gi")),
    ),
    VMRow(
        "prod-cache",
        "redis-cache-03",
        "worker-5",
        (1, 4, 1),
        16,
        disks=(root(),),
        networks=nets("cache-sync"),
        dirty_mib=80,
    ),
    VMRow(
        "prod-cache",
        "memcached-01",
        "worker-0",
        (1, 2, 1),
        16,
        os="centos9",
        container_disk=MEMCACHED_IMAGE,
        dirty_mib=60,
        size="small",
    ),
    VMRow(
        "prod-cache",
        "memcached-02",
        "worker-5",
        (1, 2, 1),
        16,
        os="centos9",
        container_disk=MEMCACHED_IMAGE,
        dirty_mib=57,
        size="small",
    ),
    # analytics: storage-net bridge on br1 without an mtu (gets 1500 on a 9000 bridge)
    VMRow(
        "analytics",
        "kafka-broker-01",
        "worker-1",
        (1, 8, 1),
        32,
        disks=(root(), Disk("logs", 1000)),
        networks=STORAGE_NET,
        dirty_mib=140,
        size="large",
    ),
    VMRow(
        "analytics",
        "kafka-broker-02",
        "worker-2",
        (1, 8, 1),
        32,
        disks=(root(), Disk("logs", 1000)),
        networks=STORAGE_NET,
        dirty_mib=380,
        size="large",
        migration="kafka-broker-02-failed",
    ),
    VMRow(
        "analytics",
        "kafka-broker-03",
        "worker-4",
        (1, 8, 1),
        32,
        disks=(root(), Disk("logs", 1000)),
        networks=STORAGE_NET,
        dirty_mib=150,
        size="large",
    ),
    VMRow(
        "analytics",
        "elastic-data-01",
        "worker-3",
        (1, 8, 1),
        64,
        disks=(root(), Disk("data", 2000)),
        networks=STORAGE_NET,
        dirty_mib=120,
        size="xlarge",
        labels=LARGE_MEMORY,
    ),
    # Migrating right now: KubeVirt >= 1.9 skips the steady-state sample while a VM migrates.
    VMRow(
        "analytics",
        "elastic-data-02",
        "worker-4",
        (1, 8, 1),
        64,
        disks=(root(), Disk("data", 2000)),
        networks=STORAGE_NET,
        dirty_mib=None,
        size="xlarge",
        labels=LARGE_MEMORY,
        migration="elastic-data-02-running",
    ),
    VMRow(
        "analytics",
        "elastic-data-03",
        "worker-3",
        (1, 8, 1),
        64,
        disks=(root(), Disk("data", 2000)),
        networks=STORAGE_NET,
        dirty_mib=105,
        size="xlarge",
        labels=LARGE_MEMORY,
    ),
    VMRow(
        "analytics",
        "spark-worker-01",
        "worker-1",
        (2, 8, 1),
        64,
        disks=(root(),),
        networks=nets("spark-overlay", "storage-net"),
        dirty_mib=210,
        size="xlarge",
    ),
    VMRow(
        "analytics",
        "spark-worker-02",
        "worker-2",
        (2, 8, 1),
        64,
        disks=(root(),),
        networks=nets("spark-overlay", "storage-net"),
        dirty_mib=190,
        size="xlarge",
        scheduling=SPARK_CONSTRAINTS,
    ),
    # Waits for a GPU node the cluster does not have: its VMI stays in Scheduling on no node.
    VMRow(
        "analytics",
        "spark-gpu-01",
        "",
        (1, 8, 1),
        64,
        container_disk=JENKINS_IMAGE,
        size="xlarge",
        scheduling={
            "nodeSelector": {GPU_PRODUCT: "NVIDIA-A100-SXM4-80GB"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        },
        phase="Scheduling",
        pending_message=GPU_PENDING,
        age_days=2,
    ),
    # erp: HANA and the SAP router on local LVM storage (RWO) although they are meant to live migrate
    VMRow(
        "erp",
        "sap-hana-01",
        "worker-3",
        (2, 6, 1),
        256,
        disks=(root(60, storage_class=LVMS_CLASS), Disk("hana-data", 1024, storage_class=LVMS_CLASS)),
        dirty_mib=160,
        size="xlarge",
        node_selector=HANA_NODE_LABEL,
    ),
    VMRow(
        "erp",
        "sap-app-01",
        "worker-0",
        (1, 8, 1),
        64,
        disks=(root(60),),
        dirty_mib=48,
        size="xlarge",
        scheduling={"nodeSelector": {"kubernetes.io/hostname": "worker-0"}},
    ),
    # SAP sizing policy mandates limits: exempted from strict_vm_limits by annotation.
    VMRow(
        "erp",
        "sap-app-02",
        "worker-4",
        (1, 8, 1),
        64,
        disks=(root(60),),
        dirty_mib=52,
        size="xlarge",
        migration="sap-app-02-done",
        limits=(("cpu", "8"), ("memory", "72Gi")),
        annotations=((EXEMPT_ANNOTATION, "strict_vm_limits"),),
    ),
    VMRow(
        "erp",
        "sap-router-01",
        "worker-5",
        (1, 2, 1),
        4,
        disks=(root(20, storage_class=LVMS_CLASS),),
        eviction="LiveMigrate",
        dirty_mib=2,
        size="small",
    ),
    # batch-jobs (MigrationPolicy batch-throttled: 64Mi, 20 s/GiB)
    VMRow("batch-jobs", "etl-worker-01", "worker-5", (1, 4, 1), 16, disks=(root(),), dirty_mib=28),
    VMRow(
        "batch-jobs",
        "etl-worker-02",
        "worker-2",
        (1, 2, 1),
        8,
        disks=(root(),),
        dirty_mib=5,
        scheduling={"nodeSelector": {"node-role.kubernetes.io/worker": ""}},
    ),
    VMRow("batch-jobs", "etl-worker-03", "worker-0", (1, 2, 1), 8, disks=(root(),), dirty_mib=4),
    VMRow(
        "batch-jobs",
        "report-gen-01",
        "worker-5",
        (1, 2, 1),
        8,
        disks=(root(),),
        dirty_mib=3,
        limits=(("memory", "10Gi"),),
    ),
    VMRow("batch-jobs", "quarter-close-01", "worker-2", (1, 4, 1), 16, disks=(root(),), running=False),
    # dev-sandbox
    VMRow(
        "dev-sandbox",
        "dev-rhel9-01",
        "worker-5",
        (1, 2, 1),
        4,
        disks=(root(storage_class=LVMS_CLASS),),
        eviction="LiveMigrateIfPossible",
        networks=nets("legacy-net"),
        dirty_mib=6,
        size="small",
    ),
    VMRow(
        "dev-sandbox",
        "dev-rhel8-legacy-01",
        "rhel-worker-0",
        (1, 2, 1),
        4,
        os="rhel8",
        disks=(root(),),
        dirty_mib=3,
        size="small",
        age_days=500,
    ),
    VMRow("dev-sandbox", "dev-win2022-01", "worker-5", (1, 4, 1), 8, os="win2k22", disks=(root(80),), dirty_mib=14),
    VMRow(
        "dev-sandbox",
        "dev-fedora-01",
        "worker-5",
        (1, 2, 1),
        4,
        os="fedora",
        disks=(root(),),
        networks=nets("dev-l2-overlay"),
        dirty_mib=7,
        size="small",
        run_strategy="Manual",
    ),
    VMRow(
        "dev-sandbox",
        "dev-centos-stream9-01",
        "rhel-worker-0",
        (1, 2, 1),
        4,
        os="centos9",
        disks=(root(),),
        dirty_mib=2,
        size="small",
    ),
    # ci-runners: ephemeral container disks only
    VMRow("ci-runners", "jenkins-agent-01", "worker-1", (1, 4, 1), 8, container_disk=JENKINS_IMAGE, dirty_mib=35),
    VMRow("ci-runners", "jenkins-agent-02", "worker-1", (1, 4, 1), 8, container_disk=JENKINS_IMAGE, dirty_mib=31),
    VMRow("ci-runners", "jenkins-agent-03", "worker-2", (1, 4, 1), 8, container_disk=JENKINS_IMAGE, dirty_mib=29),
    VMRow("ci-runners", "jenkins-agent-04", "worker-5", (1, 4, 1), 8, container_disk=JENKINS_IMAGE, dirty_mib=33),
]

MALFORMED_CONFIG = (
    '{\n  "cniVersion": "0.3.1",\n  "name": "legacy-net",\n  "type": "cnv-bridge",\n'
    '  "bridge": "br1",,\n  "vlan": 50\n'
)  # double comma, no closing brace

DEMO_NADS = [
    NADRow(
        "prod-web",
        "frontend-vlan110",
        cni("frontend-vlan110", "bridge", bridge="br-vm", vlan=110, mtu=1500, macspoofchk=True, ipam={}),
        "Storefront VLAN 110 on br-vm",
        "bridge.network.kubevirt.io/br-vm",
    ),
    NADRow(
        "prod-db",
        "db-replication",
        cni("db-replication", "cnv-bridge", bridge="br1", vlan=120, mtu=9000, macspoofchk=True),
        "Database replication VLAN 120 on the jumbo-frame bridge",
        "bridge.network.kubevirt.io/br1",
    ),
    NADRow(
        "prod-db",
        "backup-vlan300",
        cni("backup-vlan300", "ovs", bridge="br-ovs-vm", vlan=300),
        "Backup VLAN 300 on the OVS bridge",
        "ovs-cni.network.kubevirt.io/br-ovs-vm",
    ),
    NADRow(
        "prod-cache",
        "cache-sync",
        json.dumps(
            {
                "cniVersion": "0.3.1",
                "name": "cache-sync",
                "plugins": [
                    {"type": "cnv-bridge", "bridge": "br1", "vlan": 210, "mtu": 9000, "macspoofchk": True},
                    {"type": "cnv-tuning"},
                ],
            },
            indent=2,
        )
        + "\n",
        "Cache replication VLAN 210 (conflist with tuning)",
        "bridge.network.kubevirt.io/br1",
    ),
    NADRow(
        "analytics",
        "storage-net",
        cni("storage-net", "cnv-bridge", bridge="br1", vlan=130, macspoofchk=True),
        "Storage traffic VLAN 130 on br1",
        "bridge.network.kubevirt.io/br1",
    ),
    NADRow(
        "analytics",
        "spark-overlay",
        cni(
            "spark-overlay",
            "ovn-k8s-cni-overlay",
            topology="layer2",
            mtu=1500,
            netAttachDefName="analytics/spark-overlay",
            subnets="10.200.0.0/16",
        ),
        "Spark shuffle network (OVN layer2 overlay)",
    ),
    NADRow(
        "dev-sandbox",
        "dev-l2-overlay",
        cni(
            "dev-l2-overlay",
            "ovn-k8s-cni-overlay",
            topology="layer2",
            netAttachDefName="dev-sandbox/dev-l2-overlay",
            subnets="10.210.0.0/24",
        ),
    ),
    NADRow("dev-sandbox", "legacy-net", MALFORMED_CONFIG, "Hand-edited by a developer"),
]


def worker_interfaces(node_name: str, br1: int = 9000, br_vm: int = 1500) -> list[dict]:
    """Secondary NICs of a VM worker: jumbo br1 on ens4, br-vm on ens5, OVS br-ovs-vm on ens6."""

    def seed(nic: str) -> str:
        return f"{node_name}-{nic}"

    return [
        iface("br1", "linux-bridge", br1, ports=("ens4",), mac_seed=seed("ens4")),
        iface("ens4", "ethernet", br1, controller="br1", mac_seed=seed("ens4")),
        iface("br-vm", "linux-bridge", br_vm, ports=("ens5",), mac_seed=seed("ens5")),
        iface("ens5", "ethernet", br_vm, controller="br-vm", mac_seed=seed("ens5")),
        iface("br-ovs-vm", "ovs-bridge", None, ports=("ens6",)),
        iface("ens6", "ethernet", 1500, controller="br-ovs-vm", mac_seed=seed("ens6")),
    ]


# worker-4: an NNCP change raised br-vm (and its NIC) to 9000 on this node only.
DEMO_INTERFACES = {
    n.name: worker_interfaces(n.name, br_vm=9000 if n.name == "worker-4" else 1500)
    for n in DEMO_NODES
    if n.role == "worker"
}


# Machine API: worker-0..4 (MachineSet ocp-virt-worker) are Metal3 Machines; worker-5 was added
# later from a second MachineSet that the workers MHC does not select; the vSphere control-plane
# VMs and rhel-worker-0 have no Machine.
DEMO_MACHINE_SETS = {**{f"worker-{i}": "ocp-virt-worker" for i in range(5)}, "worker-5": "ocp-virt-worker-b"}
DEMO_HEALTH_CHECKS = [
    termination_handler_mhc(),
    machine_health_check(
        "workers", {"matchLabels": {"machine.openshift.io/cluster-api-machineset": "ocp-virt-worker"}}
    ),
]

DEMO = Cluster(
    nodes=DEMO_NODES,
    namespaces=DEMO_NAMESPACES,
    classes=DEMO_CLASSES,
    default_class=VIRT_CLASS,
    vms=DEMO_VMS,
    nads=DEMO_NADS,
    node_interfaces=DEMO_INTERFACES,
    hco_migrations=DEMO_MIGRATIONS,
    cpu_ratio=10,
    policies=DEMO_POLICIES,
    migration_states=DEMO_MIGRATION_STATES,
    migrations=DEMO_MIGRATIONS_OBJECTS,
    migration_samples=DEMO_MIGRATION_SAMPLES,
    auto_cpu_limit={"matchExpressions": [{"key": "workload-class", "operator": "In", "values": ["ci"]}]},
    # The RHEL 8 node's virt-handler crash-loops: its VMs cannot migrate away.
    handler_not_ready=("rhel-worker-0",),
    machine_sets=DEMO_MACHINE_SETS,
    health_checks=DEMO_HEALTH_CHECKS,
)

# Trident backends (anti-pattern 2) and nmstate policies (anti-pattern 9): new kinds only,
# so no node load changes.
DEMO.trident_backends = [
    trident_backend("trident", "backend-ontap-nas-vms", "ontap-nas", "svm_ocp_virt", 300),
    trident_backend(
        "trident",
        "backend-ontap-nas-eco",
        "ontap-nas-economy",
        "svm_ocp_virt",
        200,
        limitAggregateUsage="85%",
        limitVolumeSize="100Gi",
    ),
    trident_backend(
        "trident",
        "backend-ontap-san-db",
        "ontap-san",
        "svm_ocp_db",
        300,
        limitAggregateUsage="80%",
        limitVolumeSize="2Ti",
    ),
    trident_backend(
        "trident",
        "backend-ontap-san-eco",
        "ontap-san-economy",
        "svm_ocp_db",
        120,
        limitVolumePoolSize="2Ti",
        limitVolumeSize="500Gi",
    ),
]
DEMO.nncps = [
    nncp(
        "br1-ens4-workers",
        {"node-role.kubernetes.io/worker": ""},
        "br1",
        "ens4",
        9000,
        370,
        "Jumbo-frame VM bridge on the secondary NIC ens4",
    ),
    nncp(
        "br-mgmt-worker-2",
        {"kubernetes.io/hostname": "worker-2"},
        "br-mgmt",
        "ens3",
        1500,
        2,
        "Management bridge for legacy VMs (attempted on the default NIC)",
    ),
]


# ================================================================ the clean cluster


CLEAN_CLASSES = {VIRT_CLASS: DEMO_CLASSES[VIRT_CLASS]}
CLEAN_NODES = [
    NodeRow("master-0", "master", cpu=16, memory_ki=65_842_228, ip="10.0.10.20"),
    NodeRow("master-1", "master", cpu=16, memory_ki=65_842_228, ip="10.0.10.21"),
    NodeRow("master-2", "master", cpu=16, memory_ki=65_842_228, ip="10.0.10.22"),
    NodeRow("worker-0", "worker", ip="10.0.10.30"),
    NodeRow("worker-1", "worker", ip="10.0.10.31"),
    NodeRow("worker-2", "worker", ip="10.0.10.32"),
]
CLEAN_NAMESPACES = [
    NamespaceRow("openshift-cnv", {"openshift.io/cluster-monitoring": "true"}, "OpenShift Virtualization"),
    NamespaceRow("apps", {"env": "production"}, "Applications", "alice@example.com"),
    NamespaceRow("databases", {"env": "production"}, "Databases", "dba-team@example.com"),
]
# vmiCPUAllocationRatio 1: VMs are scheduled against real CPUs, no CPU overcommit by design
# (any ratio above the 1.8 maximum, the default 10 included, is reported as info).
CLEAN_MIGRATIONS = {
    "allowAutoConverge": False,
    "allowPostCopy": False,
    "bandwidthPerMigration": "0Mi",
    "completionTimeoutPerGiB": 150,
    "parallelMigrationsPerCluster": 5,
    "parallelOutboundMigrationsPerNode": 2,
    "progressTimeout": 150,
}
CLEAN_VLAN = nets("vlan-200")
CLEAN_VMS = [
    VMRow(
        "apps",
        "app-server-01",
        "worker-0",
        (1, 4, 1),
        16,
        disks=(root(),),
        networks=CLEAN_VLAN,
        eviction="LiveMigrate",
        dirty_mib=20,
    ),
    VMRow(
        "apps",
        "app-server-02",
        "worker-1",
        (1, 4, 1),
        16,
        disks=(root(),),
        networks=CLEAN_VLAN,
        eviction="LiveMigrate",
        dirty_mib=24,
    ),
    VMRow(
        "apps",
        "app-server-03",
        "worker-2",
        (1, 4, 1),
        16,
        disks=(root(),),
        networks=CLEAN_VLAN,
        eviction="LiveMigrate",
        dirty_mib=17,
    ),
    VMRow(
        "apps",
        "web-01",
        "worker-0",
        (1, 2, 1),
        8,
        disks=(root(),),
        networks=nets("vlan-200", "l2-overlay"),
        eviction="LiveMigrate",
        dirty_mib=9,
        size="small",
    ),
    VMRow(
        "apps",
        "web-02",
        "worker-1",
        (1, 2, 1),
        8,
        disks=(root(),),
        networks=nets("vlan-200", "l2-overlay"),
        eviction="LiveMigrate",
        dirty_mib=11,
        size="small",
    ),
    VMRow(
        "databases",
        "postgres-01",
        "worker-2",
        (1, 8, 1),
        64,
        disks=(root(40), Disk("pgdata", 300, source="pvc", access_modes=(RWX,))),
        networks=nets("apps/vlan-200"),
        eviction="LiveMigrate",
        dirty_mib=60,
        size="xlarge",
    ),
    VMRow(
        "databases",
        "postgres-02",
        "worker-0",
        (1, 8, 1),
        64,
        disks=(root(40), Disk("pgdata", 300, source="pvc", access_modes=(RWX,))),
        networks=nets("apps/vlan-200"),
        eviction="LiveMigrate",
        dirty_mib=55,
        size="xlarge",
    ),
    VMRow(
        "databases",
        "mssql-01",
        "worker-1",
        (1, 4, 1),
        32,
        os="win2k22",
        disks=(root(120),),
        eviction="LiveMigrate",
        dirty_mib=40,
        size="large",
    ),
]
CLEAN_NADS = [
    NADRow(
        "apps",
        "vlan-200",
        cni("vlan-200", "cnv-bridge", bridge="br1", vlan=200, mtu=9000, macspoofchk=True),
        "Application VLAN 200 on br1",
        "bridge.network.kubevirt.io/br1",
    ),
    NADRow(
        "apps",
        "l2-overlay",
        cni(
            "l2-overlay",
            "ovn-k8s-cni-overlay",
            topology="layer2",
            mtu=1400,
            netAttachDefName="apps/l2-overlay",
            subnets="10.220.0.0/24",
        ),
    ),
    NADRow(
        "openshift-cnv",
        "migration-net",
        cni(
            "migration-net",
            "macvlan",
            master="ens5",
            mode="bridge",
            mtu=9000,
            ipam={"type": "whereabouts", "range": "10.200.5.0/24"},
        ),
        "Dedicated live migration network",
    ),
]
CLEAN_STATES = {"app-server-02-done": MigrationStateRow("worker-2", "worker-1", 5, 0.4, bandwidth="0Mi")}
CLEAN = Cluster(
    nodes=CLEAN_NODES,
    namespaces=CLEAN_NAMESPACES,
    classes=CLEAN_CLASSES,
    default_class=VIRT_CLASS,
    vms=CLEAN_VMS,
    nads=CLEAN_NADS,
    node_interfaces={
        n.name: [
            iface("br1", "linux-bridge", 9000, ports=("ens4",), mac_seed=f"{n.name}-ens4"),
            iface("ens4", "ethernet", 9000, controller="br1", mac_seed=f"{n.name}-ens4"),
            iface("ens5", "ethernet", 9000, mac_seed=f"{n.name}-ens5"),
        ]
        for n in CLEAN_NODES
        if n.role == "worker"
    },
    hco_migrations=CLEAN_MIGRATIONS,
    cpu_ratio=1,
    migration_states=CLEAN_STATES,
    migrations=[
        MigrationRow(
            "apps",
            f"kubevirt-workload-update-{suffix('wu', 'app-server-02')}",
            "app-server-02",
            "Succeeded",
            "app-server-02-done",
        )
    ],
    migration_network="migration-net",
    machine_sets={n.name: ("ocp-virt-worker" if n.role == "worker" else "") for n in CLEAN_NODES},
    health_checks=[
        termination_handler_mhc(),
        machine_health_check("workers", {"matchLabels": {"machine.openshift.io/cluster-api-machine-role": "worker"}}),
    ],
)
CLEAN.trident_backends = [
    trident_backend(
        "trident", "backend-ontap-nas", "ontap-nas", "svm_apps", 200, limitAggregateUsage="80%", limitVolumeSize="1Ti"
    ),
]
CLEAN.nncps = [
    nncp(
        "br1-ens4-workers",
        {"node-role.kubernetes.io/worker": ""},
        "br1",
        "ens4",
        9000,
        300,
        "Jumbo-frame VM bridge on the secondary NIC ens4",
    ),
]


# ================================================================ usage (metrics.k8s.io PodMetrics)
# Usage does not change requests: node CPU/memory loads above stay as they are. Only the
# VMs listed here get a PodMetrics (a metrics-server sample of their virt-launcher pod).
# (namespace, vm) -> (cores used by the compute container, GiB of working set)
DEMO_USAGE: dict[tuple[str, str], tuple[float, float]] = {
    ("prod-db", "postgres-replica-02"): (0.35, 4.5),  # 8 vCPU / 32 GiB: 4 % and 14 %: over-provisioned
    ("prod-cache", "redis-cache-02"): (0.9, 6.0),  # 2 vCPU / 32 GiB: memory 19 %: over-provisioned
    ("prod-cache", "memcached-01"): (0.6, 15.2),  # 2 vCPU / 16 GiB: memory 95 %: under-provisioned
    ("prod-web", "web-frontend-02"): (3.8, 5.0),  # 4 vCPU / 8 GiB: CPU 95 %: under-provisioned
    ("prod-web", "web-frontend-01"): (1.6, 5.5),  # 4 vCPU / 8 GiB: 40 % and 69 %: right-sized
    ("prod-web", "haproxy-lb-01"): (0.7, 2.5),  # 2 vCPU / 4 GiB: 35 % and 63 %: right-sized
}
CLEAN_USAGE: dict[tuple[str, str], tuple[float, float]] = {
    ("apps", "app-server-01"): (1.5, 8.0),
    ("apps", "web-01"): (0.8, 4.0),
}


def pod_metrics(c: Cluster, usage: dict[tuple[str, str], tuple[float, float]]) -> list[dict]:
    """PodMetrics as `oc get podmetrics -o yaml` shows them: labels of the virt-launcher pod."""
    rows = {(r.namespace, r.name): r for r in c.vms}
    out = []
    for (ns, name), (cores, gib) in sorted(usage.items()):
        row = rows[(ns, name)]
        labels = {
            "kubevirt.io": "virt-launcher",
            "kubevirt.io/created-by": uid("VirtualMachineInstance", ns, name),
            **_template_labels(row),
            "vm.kubevirt.io/name": name,
        }
        pod = f"virt-launcher-{name}-{suffix('pod', ns, name)}"
        out.append(
            {
                "apiVersion": "metrics.k8s.io/v1beta1",
                "kind": "PodMetrics",
                "metadata": {
                    "creationTimestamp": stamp(0, "pm", ns, name),
                    "labels": labels,
                    "name": pod,
                    "namespace": ns,
                },
                "timestamp": stamp(0.0003, "pm-ts", ns, name),
                "window": "30s",
                "containers": [
                    {
                        "name": "compute",
                        "usage": {"cpu": f"{round(cores * 1e9)}n", "memory": f"{round(gib * 2**20)}Ki"},
                    },
                    {"name": "guest-console-log", "usage": {"cpu": "310042n", "memory": "2148Ki"}},
                ],
            }
        )
    return out
