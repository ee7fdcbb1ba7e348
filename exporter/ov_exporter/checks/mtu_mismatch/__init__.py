"""Anti-pattern 10: MTU mismatches between VM networks and the host interfaces they ride on."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ...config import Config
from ...domain.incremental import assembled, per_object_of_kind, same_name
from ...domain.k8s import ref, vm_node, vm_schedulable_nodes, vm_template_spec
from ...model import AlertDecl, CheckOutput, CheckSpec, Family, Finding, Sample, Severity
from ...records import VirtualMachine
from ...store import ClusterState

NNS = "nodenetworkstates.nmstate.io"
VMS = "virtualmachines.kubevirt.io"
VMIS = "virtualmachineinstances.kubevirt.io"

MISMATCH = Family(
    "ov_mtu_mismatch",
    "gauge",
    "Nodes where the MTU a NetworkAttachmentDefinition gives VMs differs from the MTU of the host "
    "interface it rides on. One series per network with at least one such node.",
    ("namespace", "network"),
    per_object=True,
)
INVALID = Family(
    "ov_nad_config_invalid",
    "gauge",
    "1 for a NetworkAttachmentDefinition whose spec.config is not valid CNI JSON.",
    ("namespace", "network"),
    per_object=True,
)
MIXED = Family(
    "ov_vm_mixed_mtu_networks",
    "gauge",
    "Distinct MTUs among a VM's secondary networks, for VMs mixing MTUs where at least one "
    'network relies on a plugin default; node: where its VMI runs ("" when stopped).',
    ("namespace", "vm", "node"),
    per_object=True,
)

BRIDGE_TYPES = ("bridge", "cnv-bridge")
FOLLOW_HOST_TYPES = ("macvlan", "ipvlan")  # without mtu they take the master's MTU
OVN_OVERLAY = "ovn-k8s-cni-overlay"


@dataclass(frozen=True)
class NetInfo:
    type: str
    mtu: int | None  # effective MTU given to VMs; None when unknown or following the host
    explicit: bool
    host_interface: str  # "" when the network does not ride on a named host interface
    overlay: bool = False


class ConfigInvalid(ValueError):
    pass


def _mtu_value(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigInvalid(f"mtu {value!r} is not a number")
    try:
        mtu = int(value)
    except ValueError as exc:
        raise ConfigInvalid(f"mtu {value!r} is not a number") from exc
    if not 68 <= mtu <= 65536:
        raise ConfigInvalid(f"mtu {mtu} is out of range")
    return mtu


def parse_nad(config: str | None, cluster_mtu: int | None) -> NetInfo:
    """Effective MTU and host interface of a NAD's CNI config (conflists included)."""
    if not config or not config.strip():
        raise ConfigInvalid("spec.config is empty")
    try:
        doc = json.loads(config, strict=False)  # strict=False: tabs inside strings are common
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, 4300+ digit ints, deep nesting
        raise ConfigInvalid(f"spec.config is not valid JSON: {str(exc)[:200] or type(exc).__name__}") from exc
    if not isinstance(doc, dict):
        raise ConfigInvalid("spec.config is not a JSON object")
    plugins = doc.get("plugins")
    if isinstance(plugins, list):
        plugins = [p for p in plugins if isinstance(p, dict)]
        if not plugins:
            raise ConfigInvalid("spec.config has an empty plugins list")
        main = plugins[0]
        mtu = next((_mtu_value(p["mtu"]) for p in plugins if p.get("mtu") is not None), None)
    else:
        main, mtu = doc, _mtu_value(doc.get("mtu"))
    cni_type = main.get("type")
    if not isinstance(cni_type, str) or not cni_type:
        raise ConfigInvalid("spec.config has no plugin type")
    if cni_type in BRIDGE_TYPES:
        host = main.get("bridge") if isinstance(main.get("bridge"), str) else "cni0"
        return NetInfo(cni_type, mtu or 1500, mtu is not None, host)
    if cni_type == "ovs":
        host = main.get("bridge") if isinstance(main.get("bridge"), str) else ""
        return NetInfo(cni_type, mtu or 1500, mtu is not None, host)
    if cni_type == OVN_OVERLAY:
        localnet = main.get("topology") == "localnet"
        return NetInfo(cni_type, mtu or cluster_mtu, mtu is not None, "", overlay=not localnet)
    if cni_type in FOLLOW_HOST_TYPES:
        host = main.get("master") if isinstance(main.get("master"), str) else ""
        return NetInfo(cni_type, mtu, mtu is not None, host)
    return NetInfo(cni_type, mtu, mtu is not None, "")


def cluster_network_mtu(state: ClusterState) -> int | None:
    for net in state.cluster_networks:
        if net.status and net.status.cluster_network_mtu:
            return net.status.cluster_network_mtu
    return None


def _host_mtus(state: ClusterState) -> dict[str, dict[str, int]]:
    """node -> interface name -> MTU, from NodeNetworkState, for VM-schedulable nodes."""
    schedulable = {n.metadata.name for n in vm_schedulable_nodes(state)}
    known_nodes = {n.metadata.name for n in state.nodes}
    result: dict[str, dict[str, int]] = {}
    for nns in state.node_network_states:
        node = nns.metadata.name
        if known_nodes and node not in schedulable:
            continue
        current = nns.status.current_state if nns.status else None
        result[node] = {i.name: i.mtu for i in (current.interfaces if current else None) or [] if i.mtu}
    return result


def _judge_nad(
    nad: Any, cluster_mtu: int | None, host_items: list[tuple[str, dict[str, int]]]
) -> tuple[NetInfo | None, list[Sample], list[Finding]]:
    """A NetworkAttachmentDefinition's network (None: its config is invalid), series and
    findings; kept per NAD, cluster MTU and host MTUs (state.per_object)."""
    ns, name = nad.metadata.namespace, nad.metadata.name
    obj = ref("NetworkAttachmentDefinition", nad)
    try:
        info = parse_nad(nad.spec.config if nad.spec else None, cluster_mtu)
    except ConfigInvalid as exc:
        return None, [Sample(INVALID.name, (ns, name), 1, obj)], [Finding(SPEC.id, Severity.WARNING, obj, str(exc))]
    mismatched: list[str] = []
    if info.overlay and info.mtu and cluster_mtu and info.mtu > cluster_mtu:
        mismatched = [node for node, _ in host_items] or ["all nodes"]
        detail = f"MTU {info.mtu} exceeds the cluster network MTU {cluster_mtu}"
    else:
        host_mtus = set()
        for node, interfaces in host_items:
            host_mtu = interfaces.get(info.host_interface) if info.host_interface else None
            if host_mtu is not None and info.mtu is not None and host_mtu != info.mtu:
                mismatched.append(node)
                host_mtus.add(host_mtu)
        detail = (
            f"VMs get MTU {info.mtu} ({'explicit' if info.explicit else info.type + ' default'}) but "
            f"{info.host_interface} has MTU {'/'.join(map(str, sorted(host_mtus)))}"
        )
    if not mismatched:
        return info, [], []
    shown = ", ".join(mismatched[:5]) + (f" and {len(mismatched) - 5} more" if len(mismatched) > 5 else "")
    return (
        info,
        [Sample(MISMATCH.name, (ns, name), len(mismatched), obj)],
        [Finding(SPEC.id, Severity.WARNING, obj, f"{detail} on {shown}")],
    )


def _judge_vm(state: ClusterState, vm: VirtualMachine, nets: dict[tuple[str, str], NetInfo]) -> tuple | None:
    """(series, finding) of a VM that mixes networks of different MTUs, some from plugin
    defaults; None otherwise."""
    spec = vm_template_spec(vm)
    if spec is None:
        return None
    ns = vm.metadata.namespace
    attached: list[tuple[str, NetInfo]] = []
    for net in spec.networks or []:
        if net.multus is None or not net.multus.network_name:
            continue
        nad_ns, _, nad_name = net.multus.network_name.rpartition("/")
        info = nets.get((nad_ns or ns, nad_name))
        if info is not None and info.mtu is not None:
            attached.append((net.multus.network_name, info))
    mtus = {info.mtu for _, info in attached}
    if len(mtus) <= 1 or all(info.explicit for _, info in attached):
        return None
    obj = ref("VirtualMachine", vm)
    listed = ", ".join(f"{n}={i.mtu}{'' if i.explicit else ' (default)'}" for n, i in attached)
    return (
        Sample(MIXED.name, (ns, vm.metadata.name, vm_node(state, vm)), len(mtus), obj),
        Finding(SPEC.id, Severity.INFO, obj, f"networks with different MTUs, some from plugin defaults: {listed}"),
    )


def _parts(judgement: tuple[Sample, Finding]) -> tuple[tuple[Sample], tuple[Finding]]:
    return (judgement[0],), (judgement[1],)


def _nads(state: ClusterState) -> tuple[list[Sample], list[Finding], dict[tuple[str, str], NetInfo]]:
    """The NADs' series and findings, and (namespace, name) -> NetInfo of the valid ones."""
    cluster_mtu = cluster_network_mtu(state)
    # node -> interface -> MTU, sorted by node (output independent of load order); kept while
    # the nodes and their NodeNetworkStates do not change, and the very same list while they
    # say the same (the NADs' judgements kept per_object compare it at once)
    host_items = state.per_changes(
        "mtu_mismatch hosts",
        ("nodes", NNS),
        lambda s: sorted(_host_mtus(s).items()),
        lambda s, kept, changed: kept if (items := sorted(_host_mtus(s).items())) == kept else items,
    )
    out_samples: list[Sample] = []
    out_findings: list[Finding] = []
    nets: dict[tuple[str, str], NetInfo] = {}
    for nad in state.nads:
        info, samples, findings = state.per_object(SPEC.id, nad, _judge_nad, cluster_mtu, host_items)
        out_samples += samples
        out_findings += findings
        if info is not None:
            nets[(nad.metadata.namespace, nad.metadata.name)] = info
    return out_samples, out_findings, nets


def evaluate(state: ClusterState, config: Config) -> CheckOutput:
    out = CheckOutput()
    samples, findings, nets = _nads(state)
    out.samples += samples
    out.findings += findings

    # Judged per VM and kept (domain.incremental) while the networks say the same; their
    # series and findings assembled in name order and kept as well.
    judged = per_object_of_kind(
        state, "mtu_mismatch VMs", VMS, lambda vm: _judge_vm(state, vm, nets), {VMIS: same_name}, (nets,)
    )
    vms = assembled(state, "mtu_mismatch VMs", VMS, judged, {VMIS: same_name}, (nets,), _parts)
    if vms.lists:
        out.samples += vms.lists[0]
        out.findings += vms.lists[1]
    return out


SPEC = CheckSpec(
    id="mtu_mismatch",
    anti_pattern=10,
    title="MTU mismatch between VM networks and host interfaces",
    severity_rules="warning: a network's MTU differs from its host interface on some node, or a "
    "NetworkAttachmentDefinition config is invalid; info: a VM mixes networks of different MTUs "
    "relying on defaults",
    families=(MISMATCH, INVALID, MIXED),
    remediation="Set an explicit mtu in every NetworkAttachmentDefinition that matches the host bridge or NIC "
    "(nmstate policy), 9000 end to end for a migration network, and fix invalid CNI JSON.",
    alerts=(
        AlertDecl("OVNetworkMTUMismatch", warning="performance_risk", names="NetworkAttachmentDefinition/network"),
        AlertDecl(
            "OVNetworkAttachmentDefinitionInvalid", warning="failure_risk", names="NetworkAttachmentDefinition/network"
        ),
        AlertDecl("OVVMMixedMTUNetworks", info="hygiene", names="VirtualMachine/vm"),
    ),
    panels=(
        "ov-overview/Networks with MTU mismatch (nodes)",
        "ov-overview/Invalid NetworkAttachmentDefinitions",
        "ov-overview/VMs mixing MTUs",
    ),
    evaluate=evaluate,
    requires=("network-attachment-definitions.k8s.cni.cncf.io",),
    reads=(
        "nodenetworkstates.nmstate.io",
        "networks.config.openshift.io",
        "virtualmachines.kubevirt.io",
        "nodes",
        "virtualmachineinstances.kubevirt.io",
    ),
)
