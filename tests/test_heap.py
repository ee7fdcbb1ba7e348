"""Freed memory goes back to the system where the C library can (glibc's malloc_trim)."""

from __future__ import annotations

import platform

from ov_exporter import heap


def test_trim_runs_where_the_c_library_is_glibc():
    assert heap.trim() is (platform.libc_ver()[0] == "glibc")


def test_without_malloc_trim_nothing_is_called(monkeypatch):
    monkeypatch.setattr(heap, "_MALLOC_TRIM", None)
    assert heap.trim() is False
