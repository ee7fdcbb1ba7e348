"""Networking: NetworkAttachmentDefinition, NodeNetworkState, the cluster Network config."""

from __future__ import annotations

from msgspec import field

from .base import Int64, R
from .meta import ObjectMeta


class LinkAggregation(R):
    port: list[str] | None = None


class NetworkAttachmentDefinitionSpec(R):
    config: str | None = None


class NetworkAttachmentDefinition(R):
    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    spec: NetworkAttachmentDefinitionSpec | None = None


class PortRef(R):
    name: str = ""


class BridgeInfo(R):
    port: list[PortRef] | None = None


class NNSInterface(R):
    name: str = ""
    type: str = ""
    state: str = ""
    mtu: Int64 | None = None
    controller: str = ""
    bridge: BridgeInfo | None = None
    link_aggregation: LinkAggregation | None = field(default=None, name="link-aggregation")


class NetworkState(R):
    interfaces: list[NNSInterface] | None = None


class NodeNetworkStateStatus(R):
    current_state: NetworkState | None = None


class NodeNetworkState(R):
    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    status: NodeNetworkStateStatus | None = None


class ClusterNetworkStatus(R):
    network_type: str = ""
    cluster_network_mtu: Int64 | None = field(default=None, name="clusterNetworkMTU")


class ClusterNetworkSpec(R):
    network_type: str = ""


class ClusterNetwork(R):
    """Network.config.openshift.io (name `cluster`)."""

    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    spec: ClusterNetworkSpec | None = None
    status: ClusterNetworkStatus | None = None
