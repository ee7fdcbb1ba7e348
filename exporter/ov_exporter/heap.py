"""Giving memory the process freed back to the operating system."""

from __future__ import annotations

import ctypes
from typing import Callable


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to call
        return None


_MALLOC_TRIM = _malloc_trim()


def trim() -> bool:
    """glibc's malloc_trim(0): the free pages inside its heap go back to the system. What
    a sync or an evaluation allocates and frees (LIST pages, findings, series) otherwise
    stays in the resident set, since glibc returns only the top of the heap on its own.
    ctypes lets go of the GIL meanwhile. False where the C library has no malloc_trim."""
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True
