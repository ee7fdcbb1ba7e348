"""Splits a JSON container into its top-level members without recursion.

msgspec decodes recursively: one object nested a thousand levels deep (the API server
accepts far deeper free-form fields) raises RecursionError for the whole LIST page or
watch event around it. This scanner finds the members of the outer object or array
with a regular expression over strings and punctuation, at any depth, so the other
objects of the page still decode and the deep one is reported on its own.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},:]')


def split(data: bytes) -> list[tuple[bytes | None, bytes]]:
    """Members of the outer container: (key, raw value) for an object, (None, raw
    element) for an array. Raises ValueError when the text is not one container."""
    members: list[tuple[bytes | None, bytes]] = []
    depth, key, start = 0, None, -1
    outer = b""
    for m in _TOKEN.finditer(data):
        tok = m.group()
        if tok in (b"{", b"["):
            if depth == 0:
                outer, start = tok, m.end()
            depth += 1
        elif tok in (b"}", b"]"):
            depth -= 1
            if depth == 0:
                value = data[start : m.start()].strip()
                if value:
                    members.append((key, value))
                if data[m.end() :].strip():
                    raise ValueError("text after the outer JSON container")
                return members
            if depth < 0:
                break
        elif depth == 1 and tok == b",":
            members.append((key, data[start : m.start()].strip()))
            key, start = None, m.end()
        elif depth == 1 and tok == b":" and outer == b"{":
            key, start = _key(data[start : m.start()]), m.end()
    raise ValueError("unbalanced JSON container")


def _key(text: bytes) -> bytes:
    text = text.strip()
    return text[1:-1] if text[:1] == b'"' else text


def members(data: bytes) -> dict[bytes, bytes]:
    """Top-level members of a JSON object, by key."""
    return {k: v for k, v in split(data) if k is not None}
