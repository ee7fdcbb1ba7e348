"""Object metadata shared by every kind: ObjectMeta, owner references, conditions, taints."""
from __future__ import annotations

from .base import Labels, R


class OwnerRef(R):
    kind: str = ""
    name: str = ""


class ObjectMeta(R):
    name: str = ""
    namespace: str = ""
    uid: str = ""
    resource_version: str = ""
    labels: Labels | None = None
    annotations: Labels | None = None
    owner_references: list[OwnerRef] | None = None


class Condition(R):
    type: str = ""
    status: str = ""
    reason: str = ""
    message: str = ""


class Taint(R):
    key: str = ""
    value: str = ""
    effect: str = ""
