"""Decoding JSON bytes and YAML dicts into records, dropping fields that do not decode."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import msgspec

from ..quantity import Quantity, parse_quantity
from .base import shared

# Per-object limits. The API server refuses request bodies over 3 MiB (k8s.io/apiserver
# default MaxRequestBodyBytes, vendored in kubevirt/kubevirt v1.7.0
# vendor/k8s.io/apimachinery/pkg/runtime/serializer/cbor/internal/modes/buffers.go), so a
# bigger object cannot come from a real cluster. Nesting: the deepest typed path we read
# is about 15 levels; free-form fields (an NNCP's desiredState) may go deeper, never 100s.
MAX_OBJECT_BYTES = 3 * 2**20
MAX_DEPTH = 200
MAX_DROPPED_FIELDS = 20  # more bad fields than this: the object is not worth judging


class ObjectLimitError(msgspec.ValidationError):
    """An object over the size or nesting limit: skipped whole, never decoded."""


# Parsed quantities by their text, shared by every record that carries the same one ("30Gi",
# "1", "4Gi" repeat on most PVCs and VMs); values that vary (usage) stop adding at the bound.
_QUANTITIES: dict[str, Quantity] = {}


def _dec_hook(type_: type, obj: Any) -> Any:
    if type_ is Quantity:
        if not isinstance(obj, str):
            return Quantity(parse_quantity(obj))
        return shared(_QUANTITIES, obj, lambda: Quantity(parse_quantity(obj)), 4_096)
    raise NotImplementedError(f"cannot decode {type_!r}")


_json_decoders: dict[type, msgspec.json.Decoder] = {}


def _strip_nulls(obj: Any) -> Any:
    """A copy without `key: null` entries at any depth (dumps carry nulls where the API
    omits a field). Callers bound the depth first (`_check_depth`)."""
    if isinstance(obj, dict):
        return {k: _strip_nulls(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_strip_nulls(v) for v in obj]
    return obj


def _check_depth(obj: Any) -> None:
    """Raise ObjectLimitError when containers nest deeper than MAX_DEPTH (no recursion)."""
    stack = [(obj, 1)]
    seen: set[int] = set()  # YAML aliases share containers: visit each once
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ObjectLimitError(f"nested more than {MAX_DEPTH} levels deep; object skipped")
        if id(node) in seen:
            continue
        seen.add(id(node))
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)) and c)


def json_decoder(of: type) -> msgspec.json.Decoder:
    """The decoder of records (quantities by their hook, numbers leniently) for `of`: a
    record, or a structure of records such as a LIST page. Only what decodes as a whole
    comes out; decode_json takes one object apart field by field when it does not."""
    decoder = _json_decoders.get(of)
    if decoder is None:
        decoder = _json_decoders[of] = msgspec.json.Decoder(of, dec_hook=_dec_hook, strict=False)
    return decoder


def decode_json(record: type, data: bytes, dropped: list[str] | None = None) -> Any:
    """Decode one object's JSON bytes into its record.

    Raises msgspec.ValidationError (message ends with the field path, e.g. "- at
    `$.spec.domain.cpu.cores`"); ObjectLimitError (a ValidationError) for an object over
    MAX_OBJECT_BYTES or nested beyond the decoder's recursion limit. With `dropped`, a
    field that does not decode is removed instead and described in `dropped`, so the
    rest of the object can still be judged (see `convert`)."""
    if len(data) > MAX_OBJECT_BYTES:
        raise ObjectLimitError(f"object is {len(data)} bytes, over the {MAX_OBJECT_BYTES}-byte limit; skipped")
    try:
        return json_decoder(record).decode(data)
    except RecursionError as exc:
        raise ObjectLimitError("nested too deeply to decode; object skipped") from exc
    except msgspec.ValidationError:
        pass
    # Slow path, only for odd objects: nulls, or fields that do not decode.
    try:
        obj = msgspec.json.decode(data)
    except RecursionError as exc:
        raise ObjectLimitError("nested too deeply to decode; object skipped") from exc
    except msgspec.ValidationError as exc:  # a number out of msgspec's range (1e400, 10**400)
        try:
            # turns those into inf or int (inf past Python's int-string limit), for convert to judge per field
            obj = json.loads(data, parse_int=lambda text: int(text) if len(text) < 4000 else math.inf)
        except (ValueError, RecursionError):
            raise exc from None  # the ValidationError itself is the cause; the fallback parse is not
    return convert(record, obj, dropped)


def convert(record: type, obj: Any, dropped: list[str] | None = None) -> Any:
    """Convert one object's dict (from YAML) into its record; same errors as decode_json.

    A null where a field belongs means absent. With `dropped`, each field that fails
    (a string where a count belongs, a bad quantity) is removed and described there
    ("`$.status.capacity.cpu`: invalid quantity 'abc'"), up to MAX_DROPPED_FIELDS."""
    _check_depth(obj)
    try:
        return msgspec.convert(obj, record, dec_hook=_dec_hook, strict=False)
    except msgspec.ValidationError as exc:
        error = exc
    obj = _strip_nulls(obj)  # a copy: dropping fields never touches the caller's (maybe shared) data
    while True:
        try:
            return msgspec.convert(obj, record, dec_hook=_dec_hook, strict=False)
        except msgspec.ValidationError as exc:
            error = exc
        if dropped is None or len(dropped) >= MAX_DROPPED_FIELDS:
            raise error
        where = _drop_failing_field(record, obj, error)
        if where is None:
            raise error
        dropped.append(f"`{where}`: {str(error).rpartition(' - at ')[0] or error}")


_PATH = re.compile(r" - at `(?:key` in `)?(\$[^`]*)`$")
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")


def _drop_failing_field(record: type, obj: Any, error: msgspec.ValidationError) -> str | None:
    """Remove the field an error points at from obj (in place); return its path, or
    None when the error is about the object itself."""
    match = _PATH.search(str(error))
    if match is None:
        return None
    steps: list[str | int] = []
    for key, index in _STEP.findall(match.group(1)[1:]):
        steps.append(key if key else (int(index) if index.isdigit() else "..."))
    if not steps:
        return None
    if "key` in `" in str(error):
        steps.append("...")  # a map key of the wrong type: find the entry below
    parent: Any = obj
    for step in steps[:-1]:
        if step == "...":
            return None  # a map value inside a map value: not in our records
        try:
            parent = parent[step]
        except (KeyError, IndexError, TypeError):
            return None
    last = steps[-1]
    if last == "...":  # msgspec does not name the map key: find the entry that fails
        last = _failing_entry(record, obj, parent, str(error))
        if last is None:
            return None
    try:
        del parent[last]
    except (KeyError, IndexError, TypeError):
        return None
    path = "$" + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in steps[:-1])
    return path + (f"[{last}]" if isinstance(last, int) else f".{last}")


def _failing_entry(record: type, obj: Any, mapping: Any, message: str) -> Any:
    if not isinstance(mapping, dict):
        return None
    entries = dict(mapping)
    try:
        for key, value in entries.items():
            mapping.clear()
            mapping[key] = value
            try:
                msgspec.convert(obj, record, dec_hook=_dec_hook, strict=False)
            except msgspec.ValidationError as exc:
                if str(exc) == message:
                    return key
        return None
    finally:
        mapping.clear()
        mapping.update(entries)


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, Quantity):
        return float(obj)
    raise NotImplementedError(f"cannot encode {type(obj)!r}")


def to_builtins(record: Any) -> Any:
    """A record as plain dicts (for snapshot export and tests)."""
    return msgspec.to_builtins(record, enc_hook=_enc_hook)
