from .base import Source
from .snapshot import DemoSource, SnapshotSource

__all__ = ["Source", "SnapshotSource", "DemoSource"]
