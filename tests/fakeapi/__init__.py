"""A fake Kubernetes API server speaking the real list/watch protocol (see server.py)."""

from .server import FakeAPIServer, RequestRecord, Status

__all__ = ["FakeAPIServer", "RequestRecord", "Status"]
