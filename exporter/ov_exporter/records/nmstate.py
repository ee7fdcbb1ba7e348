"""nmstate policies (nmstate.io): NodeNetworkConfigurationPolicy."""

from __future__ import annotations

from msgspec import field

from .base import Labels, R
from .meta import ObjectMeta
from .networking import BridgeInfo, LinkAggregation


class NNCPInterface(R):
    name: str = ""
    type: str = ""
    state: str = ""
    bridge: BridgeInfo | None = None
    link_aggregation: LinkAggregation | None = field(default=None, name="link-aggregation")


class NNCPDesiredState(R):
    interfaces: list[NNCPInterface] | None = None


class NNCPSpec(R):
    node_selector: Labels | None = None
    desired_state: NNCPDesiredState | None = None


class NodeNetworkConfigurationPolicy(R):
    """NodeNetworkConfigurationPolicy (nmstate.io/v1, cluster-scoped)."""

    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    spec: NNCPSpec | None = None
