"""Core and storage.k8s.io kinds: Node, Namespace, PersistentVolumeClaim, StorageClass."""

from __future__ import annotations

import sys

from msgspec import field

from ..quantity import Quantity
from .base import R, intern, interned_list, shared_map, shared_part
from .meta import Condition, ObjectMeta, Taint, VersionedMeta


class NodeInfo(R):
    os_image: str = ""
    kernel_version: str = ""

    def __post_init__(self) -> None:
        self.os_image, self.kernel_version = intern(self.os_image), intern(self.kernel_version)


class NodeSpec(R):
    taints: list[Taint] | None = None
    unschedulable: bool = False
    provider_id: str = field(default="", name="providerID")


class NodeStatus(R):
    capacity: dict[str, Quantity] | None = None
    allocatable: dict[str, Quantity] | None = None
    node_info: NodeInfo | None = None
    conditions: list[Condition] | None = None

    def __post_init__(self) -> None:
        self.capacity, self.allocatable = shared_map(self.capacity), shared_map(self.allocatable)


class Node(R):
    metadata: VersionedMeta = field(default_factory=VersionedMeta)
    spec: NodeSpec | None = None
    status: NodeStatus | None = None


class Namespace(R):
    metadata: ObjectMeta = field(default_factory=ObjectMeta)


class PVCSpec(R):
    access_modes: list[str] | None = None
    storage_class_name: str | None = None
    volume_mode: str | None = None

    def __post_init__(self) -> None:
        self.access_modes = interned_list(self.access_modes)
        if self.storage_class_name:
            self.storage_class_name = sys.intern(self.storage_class_name)
        if self.volume_mode:
            self.volume_mode = sys.intern(self.volume_mode)


class PVCStatus(R):
    phase: str = ""
    access_modes: list[str] | None = None

    def __post_init__(self) -> None:
        self.phase, self.access_modes = intern(self.phase), interned_list(self.access_modes)


class PersistentVolumeClaim(R):
    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    spec: PVCSpec | None = None
    status: PVCStatus | None = None

    def __post_init__(self) -> None:
        self.status = shared_part("PVC status", self.status)


class StorageClass(R):
    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    provisioner: str = ""
