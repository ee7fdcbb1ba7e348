"""The kind table: every kind the exporter reads, how to list it and which record holds it."""

from __future__ import annotations

from dataclasses import dataclass

from .cdi import DataVolume, StorageProfile
from .core import Namespace, Node, PersistentVolumeClaim, StorageClass
from .hco import HyperConverged
from .kubevirt import KubeVirt, MigrationPolicy, VirtualMachine, VirtualMachineInstance, VirtualMachineInstanceMigration
from .networking import ClusterNetwork, NetworkAttachmentDefinition, NodeNetworkState
from .nmstate import NodeNetworkConfigurationPolicy
from .pods import Pod, PodMetrics
from .remediation import Machine, MachineHealthCheck, NodeHealthCheck
from .trident import TridentBackendConfig


@dataclass(frozen=True, slots=True, kw_only=True)
class KindInfo:
    """One Kubernetes kind the checks read. `key` is `plural.group` (plural for core)."""

    kind: str
    group: str  # "" for the core API
    versions: tuple[str, ...]  # preferred first
    plural: str
    namespaced: bool
    record: type
    optional: bool  # an optional API: absent on some clusters
    # Only objects with these labels are read (passed as labelSelector to LIST and WATCH);
    # "" reads them all.
    label_selector: str = ""
    # An aggregated API without WATCH (metrics.k8s.io): the live source LISTs it periodically.
    watchable: bool = True

    @property
    def key(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def singular(self) -> str:
        return self.kind.lower()


KINDS: tuple[KindInfo, ...] = (
    KindInfo(kind="Node", group="", versions=("v1",), plural="nodes", namespaced=False, record=Node, optional=False),
    KindInfo(
        kind="Namespace",
        group="",
        versions=("v1",),
        plural="namespaces",
        namespaced=False,
        record=Namespace,
        optional=False,
    ),
    KindInfo(
        kind="PersistentVolumeClaim",
        group="",
        versions=("v1",),
        plural="persistentvolumeclaims",
        namespaced=True,
        record=PersistentVolumeClaim,
        optional=False,
    ),
    KindInfo(
        kind="StorageClass",
        group="storage.k8s.io",
        versions=("v1",),
        plural="storageclasses",
        namespaced=False,
        record=StorageClass,
        optional=False,
    ),
    KindInfo(
        kind="VirtualMachine",
        group="kubevirt.io",
        versions=("v1", "v1alpha3"),
        plural="virtualmachines",
        namespaced=True,
        record=VirtualMachine,
        optional=False,
    ),
    KindInfo(
        kind="VirtualMachineInstance",
        group="kubevirt.io",
        versions=("v1", "v1alpha3"),
        plural="virtualmachineinstances",
        namespaced=True,
        record=VirtualMachineInstance,
        optional=False,
    ),
    KindInfo(
        kind="VirtualMachineInstanceMigration",
        group="kubevirt.io",
        versions=("v1", "v1alpha3"),
        plural="virtualmachineinstancemigrations",
        namespaced=True,
        record=VirtualMachineInstanceMigration,
        optional=False,
    ),
    KindInfo(
        kind="KubeVirt",
        group="kubevirt.io",
        versions=("v1", "v1alpha3"),
        plural="kubevirts",
        namespaced=True,
        record=KubeVirt,
        optional=False,
    ),
    KindInfo(
        kind="MigrationPolicy",
        group="migrations.kubevirt.io",
        versions=("v1alpha1",),
        plural="migrationpolicies",
        namespaced=False,
        record=MigrationPolicy,
        optional=True,
    ),
    KindInfo(
        kind="HyperConverged",
        group="hco.kubevirt.io",
        versions=("v1beta1", "v1"),
        plural="hyperconvergeds",
        namespaced=True,
        record=HyperConverged,
        optional=True,
    ),
    KindInfo(
        kind="DataVolume",
        group="cdi.kubevirt.io",
        versions=("v1beta1",),
        plural="datavolumes",
        namespaced=True,
        record=DataVolume,
        optional=True,
    ),
    KindInfo(
        kind="StorageProfile",
        group="cdi.kubevirt.io",
        versions=("v1beta1",),
        plural="storageprofiles",
        namespaced=False,
        record=StorageProfile,
        optional=True,
    ),
    KindInfo(
        kind="NetworkAttachmentDefinition",
        group="k8s.cni.cncf.io",
        versions=("v1",),
        plural="network-attachment-definitions",
        namespaced=True,
        record=NetworkAttachmentDefinition,
        optional=True,
    ),
    KindInfo(
        kind="NodeNetworkState",
        group="nmstate.io",
        versions=("v1beta1",),
        plural="nodenetworkstates",
        namespaced=False,
        record=NodeNetworkState,
        optional=True,
    ),
    KindInfo(
        kind="Network",
        group="config.openshift.io",
        versions=("v1",),
        plural="networks",
        namespaced=False,
        record=ClusterNetwork,
        optional=True,
    ),
    KindInfo(
        kind="TridentBackendConfig",
        group="trident.netapp.io",
        versions=("v1",),
        plural="tridentbackendconfigs",
        namespaced=True,
        record=TridentBackendConfig,
        optional=True,
    ),
    KindInfo(
        kind="NodeNetworkConfigurationPolicy",
        group="nmstate.io",
        versions=("v1", "v1beta1"),
        plural="nodenetworkconfigurationpolicies",
        namespaced=False,
        record=NodeNetworkConfigurationPolicy,
        optional=True,
    ),
    KindInfo(
        kind="Pod",
        group="",
        versions=("v1",),
        plural="pods",
        namespaced=True,
        record=Pod,
        optional=False,
        label_selector="kubevirt.io=virt-handler",
    ),
    KindInfo(
        kind="PodMetrics",
        group="metrics.k8s.io",
        versions=("v1beta1",),
        plural="pods",
        namespaced=True,
        record=PodMetrics,
        optional=True,
        watchable=False,
        label_selector="kubevirt.io=virt-launcher",
    ),
    KindInfo(
        kind="Machine",
        group="machine.openshift.io",
        versions=("v1beta1",),
        plural="machines",
        namespaced=True,
        record=Machine,
        optional=True,
    ),
    KindInfo(
        kind="MachineHealthCheck",
        group="machine.openshift.io",
        versions=("v1beta1",),
        plural="machinehealthchecks",
        namespaced=True,
        record=MachineHealthCheck,
        optional=True,
    ),
    KindInfo(
        kind="NodeHealthCheck",
        group="remediation.medik8s.io",
        versions=("v1alpha1",),
        plural="nodehealthchecks",
        namespaced=False,
        record=NodeHealthCheck,
        optional=True,
    ),
)
KIND_BY_KEY = {k.key: k for k in KINDS}


def selector_matches(selector: str, labels: dict[str, str] | None) -> bool:
    """An equality-based label selector ("k=v,k2!=v2", as KindInfo.label_selector holds)
    against an object's labels: the files sources filter the way the API server does."""
    labels = labels or {}
    for term in filter(None, (t.strip() for t in selector.split(","))):
        key, op, value = term.partition("!=") if "!=" in term else term.replace("==", "=").partition("=")
        key, value = key.strip(), value.strip()
        if op == "!=":
            if labels.get(key) == value:
                return False
        elif not op:
            if key not in labels:
                return False
        elif labels.get(key) != value:
            return False
    return True


KIND_BY_GROUP_KIND = {(k.group, k.kind): k for k in KINDS}


def kind_for(api_version: str, kind: str) -> KindInfo | None:
    """The KindInfo for an object's apiVersion and kind, or None when not ours."""
    group = api_version.rpartition("/")[0] if "/" in api_version else ""
    return KIND_BY_GROUP_KIND.get((group, kind))
