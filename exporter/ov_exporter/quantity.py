"""Kubernetes resource quantities ("16Gi", "500m", "1.5", "2e3") as floats."""
from __future__ import annotations

import re

_SUFFIX = {
    "": 1.0,
    "n": 1e-9, "u": 1e-6, "m": 1e-3,
    "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
    "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50, "Ei": 2.0**60,
}
_QUANTITY = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?)\s*$")


def parse_quantity(value: object) -> float:
    """Parse a quantity; raise ValueError with the offending text otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"expected a quantity, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a quantity, got {type(value).__name__}")
    match = _QUANTITY.match(value)
    if not match:
        raise ValueError(f"invalid quantity {value!r}")
    return float(match.group(1)) * _SUFFIX[match.group(2)]


class Quantity(float):
    """A parsed quantity. Records declare fields of this type; the decoders call
    `parse_quantity` for them, so a bad quantity is reported with its field path."""


_BITRATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kMGT]?)(?:bit/s|bps|b/s)?\s*$")


def parse_bitrate(value: object) -> float:
    """Link speeds in bits per second: 10000000000, "10G", "10Gbit/s", "25Gbps"."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        match = _BITRATE.match(value)
        if match:
            return float(match.group(1)) * {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}[match.group(2)]
    raise ValueError(f"invalid bit rate {value!r} (examples: 10G, 25Gbit/s, 10000000000)")
