"""Object metadata shared by every kind: ObjectMeta, conditions, taints."""

from __future__ import annotations

from typing import Iterable

from .base import Labels, R, intern, shared_map

# The annotation keys records keep; None: all of them. Set by `keep_annotations`.
_KEPT_ANNOTATIONS: frozenset[str] | None = None


def keep_annotations(keys: Iterable[str] | None) -> None:
    """From now on, records decoded keep only these annotation keys (None: all). `serve`
    and `check` keep the ones some check reads: most annotations on a cluster are other
    controllers' (last-applied-configuration, CDI's import state...) and would take one
    dict per object. Records decoded before keep what they had."""
    global _KEPT_ANNOTATIONS
    _KEPT_ANNOTATIONS = None if keys is None else frozenset(keys)


def kept_annotations() -> frozenset[str] | None:
    return _KEPT_ANNOTATIONS


def _annotations(mapping: dict[str, str] | None) -> dict[str, str] | None:
    kept = _KEPT_ANNOTATIONS
    if not mapping or kept is None:
        return shared_map(mapping)
    return shared_map({k: v for k, v in mapping.items() if k in kept}) or None


class ObjectMeta(R):
    name: str = ""
    namespace: str = ""
    uid: str = ""
    labels: Labels | None = None
    annotations: Labels | None = None

    # Strings that repeat across objects are interned once decoded (sys.intern: freed with
    # their last user, so churn of unique names cannot grow a table).
    def __post_init__(self) -> None:
        self.name, self.namespace = intern(self.name), intern(self.namespace)
        self.labels = shared_map(self.labels)
        self.annotations = _annotations(self.annotations)


class VersionedMeta(ObjectMeta):
    """ObjectMeta with the resourceVersion, for the kinds whose version is read (a plan
    names the Node and VMI versions it is based on); the other kinds' records do without."""

    resource_version: str = ""


class Condition(R):
    type: str = ""
    status: str = ""
    reason: str = ""
    message: str = ""

    def __post_init__(self) -> None:
        self.type, self.status = intern(self.type), intern(self.status)
        self.reason, self.message = intern(self.reason), intern(self.message)


class Taint(R):
    key: str = ""
    value: str = ""
    effect: str = ""
