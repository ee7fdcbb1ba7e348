"""NetApp Trident (trident.netapp.io): TridentBackendConfig."""

from __future__ import annotations

from typing import Union

from msgspec import field

from .base import R
from .meta import ObjectMeta

# A limit is a quantity string ("100Gi", "80%"); YAML may give a bare number. Kept raw:
# the check parses it, so a bad value is a finding on the backend, not a load failure.
TridentLimit = Union[str, int, float]


class TridentLimits(R):
    """The limit fields, as they may (wrongly) appear under spec.defaults or spec.storage[]."""

    limit_volume_size: TridentLimit | None = None
    limit_volume_pool_size: TridentLimit | None = None
    limit_aggregate_usage: TridentLimit | None = None


class TridentBackendConfigSpec(R):
    storage_driver_name: str = ""
    backend_name: str = ""
    limit_volume_size: TridentLimit | None = None
    limit_volume_pool_size: TridentLimit | None = None
    limit_aggregate_usage: TridentLimit | None = None
    defaults: TridentLimits | None = None
    storage: list[TridentLimits] | None = None


class TridentBackendInfo(R):
    backend_name: str = ""


class TridentBackendConfigStatus(R):
    phase: str = ""
    backend_info: TridentBackendInfo | None = None


class TridentBackendConfig(R):
    """TridentBackendConfig (trident.netapp.io/v1, namespaced)."""

    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    spec: TridentBackendConfigSpec | None = None
    status: TridentBackendConfigStatus | None = None
