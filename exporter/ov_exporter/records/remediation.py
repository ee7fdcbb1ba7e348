"""Node remediation: Machine API (machine.openshift.io) and medik8s NodeHealthCheck."""

from __future__ import annotations

from msgspec import field

from .base import R
from .kubevirt import LabelSelector
from .meta import ObjectMeta


class MachineNodeRef(R):
    name: str = ""


class MachineStatus(R):
    node_ref: MachineNodeRef | None = None
    phase: str = ""


class Machine(R):
    """Machine.machine.openshift.io: its labels carry the MachineSet and the role."""

    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    status: MachineStatus | None = None


class MachineHealthCheckSpec(R):
    selector: LabelSelector | None = None
    max_unhealthy: int | str | None = None  # IntOrString: 2 or "40%"


class MachineHealthCheck(R):
    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    spec: MachineHealthCheckSpec | None = None


class NodeHealthCheckSpec(R):
    selector: LabelSelector | None = None  # over Node labels
    min_healthy: int | str | None = None
    max_unhealthy: int | str | None = None
    pause_requests: list[str] | None = None


class NodeHealthCheck(R):
    """NodeHealthCheck.remediation.medik8s.io (Node Health Check operator)."""

    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    spec: NodeHealthCheckSpec | None = None
