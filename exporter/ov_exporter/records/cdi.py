"""CDI (cdi.kubevirt.io): DataVolume and StorageProfile."""

from __future__ import annotations

from msgspec import field

from .base import R, intern, shared_part
from .core import PVCSpec
from .meta import ObjectMeta


class DataVolumeSpec(R):
    pvc: PVCSpec | None = None
    storage: PVCSpec | None = None


class DataVolumeStatus(R):
    phase: str = ""

    def __post_init__(self) -> None:
        self.phase = intern(self.phase)


class DataVolume(R):
    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    spec: DataVolumeSpec | None = None
    status: DataVolumeStatus | None = None

    def __post_init__(self) -> None:
        self.spec = shared_part("DataVolume spec", self.spec)
        self.status = shared_part("DataVolume status", self.status)


class ClaimPropertySet(R):
    access_modes: list[str] | None = None
    volume_mode: str | None = None


class StorageProfileStatus(R):
    storage_class: str = ""
    provisioner: str = ""
    claim_property_sets: list[ClaimPropertySet] | None = None


class StorageProfileSpec(R):
    claim_property_sets: list[ClaimPropertySet] | None = None


class StorageProfile(R):
    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    spec: StorageProfileSpec | None = None
    status: StorageProfileStatus | None = None
