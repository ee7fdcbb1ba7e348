"""Kubernetes resource quantities ("16Gi", "500m", "1.5", "2e3") as floats."""

from __future__ import annotations

import math
import re

_SUFFIX = {
    "": 1.0,
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
}
_QUANTITY = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?)\s*$")


def parse_quantity(value: object) -> float:
    """Parse a quantity; raise ValueError with the offending text otherwise.

    Every quantity we read (capacity, requests, limits, guest memory, bandwidth, usage)
    is a size or a rate: a negative one ("-5Gi") is refused, as are values that overflow
    to infinity ("1e400") and NaN."""
    if isinstance(value, bool):
        raise ValueError(f"expected a quantity, got {value!r}")
    if isinstance(value, (int, float)):
        number = _finite(value, value)
    elif isinstance(value, str):
        match = _QUANTITY.match(value)
        if not match:
            raise ValueError(f"invalid quantity {value!r}")
        number = _finite(float(match.group(1)) * _SUFFIX[match.group(2)], value)
    else:
        raise ValueError(f"expected a quantity, got {type(value).__name__}")
    return number


def _finite(number: float | int, original: object) -> float:
    try:
        result = float(number)
    except OverflowError:
        result = math.inf
    if not math.isfinite(result):
        raise ValueError(f"quantity {str(original)[:40]!r} is out of range")
    if result < 0 or (result == 0 and math.copysign(1, result) < 0):
        raise ValueError(f"quantity {str(original)[:40]!r} is negative")
    return result


class Quantity(float):
    """A parsed quantity. Records declare fields of this type; the decoders call
    `parse_quantity` for them, so a bad quantity is reported with its field path.
    No __dict__: as small as a float, and never tracked by the cyclic collector."""

    __slots__ = ()


_BITRATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kMGT]?)(?:bit/s|bps|b/s)?\s*$")


def parse_bitrate(value: object) -> float:
    """Link speeds in bits per second: 10000000000, "10G", "10Gbit/s", "25Gbps"."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < math.inf:
        return float(value)
    if isinstance(value, str):
        match = _BITRATE.match(value)
        if match:
            rate = float(match.group(1)) * {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}[match.group(2)]
            if rate > 0:
                return rate
    raise ValueError(f"invalid bit rate {value!r}: a positive speed such as 10G, 25Gbit/s or 10000000000")
