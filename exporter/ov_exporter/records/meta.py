"""Object metadata shared by every kind: ObjectMeta, owner references, conditions, taints."""

from __future__ import annotations

from .base import Labels, R, intern_or_same, interned_map


class OwnerRef(R):
    kind: str = ""
    name: str = ""

    def __post_init__(self) -> None:
        self.kind, self.name = intern_or_same(self.kind), intern_or_same(self.name)


class ObjectMeta(R):
    name: str = ""
    namespace: str = ""
    uid: str = ""
    resource_version: str = ""
    labels: Labels | None = None
    annotations: Labels | None = None
    owner_references: list[OwnerRef] | None = None

    # Strings that repeat across objects are interned once decoded (sys.intern: freed with
    # their last user, so churn of unique names cannot grow a table).
    def __post_init__(self) -> None:
        self.name, self.namespace = intern_or_same(self.name), intern_or_same(self.namespace)
        self.labels = interned_map(self.labels)
        self.annotations = interned_map(self.annotations)


class Condition(R):
    type: str = ""
    status: str = ""
    reason: str = ""
    message: str = ""

    def __post_init__(self) -> None:
        self.type, self.status = intern_or_same(self.type), intern_or_same(self.status)
        self.reason = intern_or_same(self.reason)


class Taint(R):
    key: str = ""
    value: str = ""
    effect: str = ""
