"""Building blocks of every record: the base Struct and integer ranges from upstream Go types."""

from __future__ import annotations

import sys
from typing import Annotated, Any, Callable, TypeVar, Union

import msgspec
from msgspec import Meta, Struct

K = TypeVar("K")
T = TypeVar("T")
V = TypeVar("V")

# Integer fields take the range of their upstream Go type (a value outside it cannot come
# from the API server). Every one we read is a count, ratio, timeout, weight or MTU, for
# which a negative value is meaningless: the lower bound is 0. Go `int` is 64-bit.
#   UInt32: KubeVirt CPU sockets/cores/threads, parallel*Migrations* (kubevirt/kubevirt v1.7.0
#           staging/src/kubevirt.io/api/core/v1/schema.go, types.go MigrationConfiguration)
#   Int64:  completionTimeoutPerGiB, progressTimeout (*int64), cpuAllocationRatio,
#           memoryOvercommit (int) (same files; migrations/v1alpha1/types.go); HCO
#           vmiCPUAllocationRatio, memoryOvercommitPercentage (int) (kubevirt/
#           hyperconverged-cluster-operator v1.18.1 api/v1/hyperconverged_types.go);
#           OpenShift clusterNetworkMTU and nmstate MTUs: not checked against an upstream
#           type here, given the widest bound
#   Int32:  weight, maxSkew (k8s.io/api core/v1 types.go, vendored in kubevirt v1.7.0)
UInt32 = Annotated[int, Meta(ge=0, le=2**32 - 1)]
Int32 = Annotated[int, Meta(ge=0, le=2**31 - 1)]
Int64 = Annotated[int, Meta(ge=0, le=2**63 - 1)]
Labels = dict[str, str]
Number = Union[int, float]


class R(Struct, rename="camel", omit_defaults=True, gc=False):
    """Base of all record types. gc=False: records hold no reference cycles, so they
    need no GC header (less memory, faster collections with 10^5 records)."""


# Recently decoded maps by content (see shared_map).
_RECENT_MAPS: dict[tuple[Any, ...], dict[str, Any]] = {}
RECENT_MAPS_BOUND = 4_096


def shared_map(mapping: dict[str, V] | None) -> dict[str, V] | None:
    """A map of labels, annotations or quantities (requests, capacity, usage) with its
    string keys and values interned, and the very same dict for the same content as a
    recently decoded one: 20,000 PVCs carry CDI's two labels, most VMs one of a few
    request maps, a VM's template its own labels, mid-rebalance most VMs' readiness one
    reasons map. Unlike `shared`, the table is emptied when it reaches RECENT_MAPS_BOUND
    (maps unique to each object, such as labels naming the VM, would otherwise fill it for
    good), so it holds what repeats now. What it hands
    out is shared between records, so records never alter it."""
    if not mapping:
        return mapping
    found = _RECENT_MAPS.get(tuple(mapping.items()))  # equal strings find it, interned or not
    if found is None:
        try:  # C-level when every value is a string
            found = dict(zip(map(intern, mapping), map(intern, mapping.values())))
        except TypeError:  # a quantity among the values
            found = {intern(k): intern(v) if isinstance(v, str) else v for k, v in mapping.items()}
        _remember(_RECENT_MAPS, tuple(found.items()), found)  # keyed by the interned strings it holds
    return found


def _remember(recent: dict[K, V], key: K, value: V) -> None:
    """`recent[key] = value`, the table emptied first when it holds RECENT_MAPS_BOUND
    entries: it keeps what repeats now, and values unique to each object cannot fill it."""
    if len(recent) >= RECENT_MAPS_BOUND:
        recent.clear()
    recent[key] = value


def shared(table: dict[K, V], key: K, make: Callable[[], V], bound: int) -> V:
    """`table[key]`, made and kept on first use while the table holds fewer than `bound`
    entries (values that vary from object to object stop adding there). What it hands out
    is shared between records, so records never alter it (they are replaced, not changed)."""
    value = table.get(key)
    if value is None:
        value = make()
        if len(table) < bound:
            table[key] = value
    return value


# One list per distinct list of enumerated strings: 20,000 PVCs say ["ReadWriteMany"] twice each.
_SHARED_LISTS: dict[tuple[Any, ...], list[Any]] = {}


def interned_list(values: list[Any] | None) -> list[Any] | None:
    """A list of enumerated strings (access modes) interned, and the same list object
    for the same values."""
    if not values:
        return values
    return shared(
        _SHARED_LISTS, tuple(values), lambda: [sys.intern(v) if isinstance(v, str) else v for v in values], 256
    )


# Recently decoded parts of records by content (see shared_part).
_RECENT_PARTS: dict[tuple[str, bytes], Any] = {}
_PART_KEY = msgspec.msgpack.Encoder(enc_hook=str)  # quantities (float subclasses) as their text


def shared_part(where: str, part: T) -> T:
    """The very same object for a part of a record (a struct or a list of structs, at the
    place `where` names) equal to a recently decoded one: the VMs made from one template or
    instance type carry equal domains, networks and conditions (at XL, 10,000 VMs and their
    VMIs: the records 61.8 -> 42.5 MiB). Content is compared by its MessagePack encoding, which
    names every field set. Emptied at RECENT_MAPS_BOUND entries, as shared_map. What it
    hands out is shared between records, so records never alter it."""
    if part is None:
        return part
    try:
        key = (where, _PART_KEY.encode(part))
    except (msgspec.EncodeError, OverflowError, TypeError, ValueError):
        return part  # a free-form value MessagePack cannot hold (an int past 64 bits): kept as decoded
    found = _RECENT_PARTS.get(key)
    if found is None:
        _remember(_RECENT_PARTS, key, part)
        return part
    return found


# A string field interned once decoded: sys.intern itself, a C call (no Python frame for
# each of the 750,000 fields at XL). Every caller passes a str ("" included): fields
# that may be None are interned only when set.
intern = sys.intern
