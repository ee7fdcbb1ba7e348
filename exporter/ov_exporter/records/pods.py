"""Pods (virt-handler only) and their usage from metrics.k8s.io (virt-launcher)."""

from __future__ import annotations

from msgspec import field

from ..quantity import Quantity
from .base import R, intern, shared_map
from .meta import Condition, ObjectMeta


class PodSpec(R):
    node_name: str = ""

    def __post_init__(self) -> None:
        self.node_name = intern(self.node_name)


class PodStatus(R):
    phase: str = ""
    conditions: list[Condition] | None = None

    def __post_init__(self) -> None:
        self.phase = intern(self.phase)


class Pod(R):
    """Only virt-handler pods are read (KindInfo.label_selector)."""

    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    spec: PodSpec | None = None
    status: PodStatus | None = None


# ---------------------------------------------------------------- metrics.k8s.io


class ContainerMetrics(R):
    name: str = ""
    usage: dict[str, Quantity] | None = None  # cpu (cores, e.g. "250m", "1234567n"), memory (bytes)

    def __post_init__(self) -> None:
        self.name, self.usage = intern(self.name), shared_map(self.usage)


class PodMetrics(R):
    """metrics.k8s.io/v1beta1 PodMetrics of a virt-launcher pod: the pod's labels
    (kubevirt.io/created-by = VMI uid, vm.kubevirt.io/name) and per-container usage."""

    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    timestamp: str = ""
    window: str = ""
    containers: list[ContainerMetrics] | None = None

    # The pods of one node share the time of the node's scrape.
    def __post_init__(self) -> None:
        self.timestamp, self.window = intern(self.timestamp), intern(self.window)
