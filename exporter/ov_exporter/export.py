"""`ov-exporter snapshot --out DIR`: write what a source sees as a snapshot directory
that `--snapshot DIR` reads back with identical findings. Only the trimmed records are
written (the fields checks read); Secrets are never read, so never written."""

from __future__ import annotations

import json
import math
import time
from datetime import datetime, timezone
from pathlib import Path

from .records import KINDS, to_builtins
from .sources.snapshot import CAPTURED_AT_FILE
from .store import ClusterState


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def write_snapshot(state: ClusterState, out: Path) -> dict[str, int]:
    """One `<plural>.<group>.json` typed List (`<Kind>List`) per kind the source could
    read, even empty: it tells `--snapshot` the kind was listed (zero objects), not
    missing. Kinds the source found absent get no file. Plus `metrics.prom` when
    samples exist, and the capture time (the state's clock, else now) in `captured-at`:
    `--snapshot DIR` judges time windows at that moment. Returns the number of objects
    written per kind key."""
    out.mkdir(parents=True, exist_ok=True)
    captured = state.now if state.now is not None else time.time()
    stamp = datetime.fromtimestamp(captured, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    (out / CAPTURED_AT_FILE).write_text(stamp + "\n")
    written: dict[str, int] = {}
    for kind in KINDS:
        if kind.key in state.absent:
            continue
        records = sorted(state.of(kind.key), key=lambda r: (r.metadata.namespace, r.metadata.name))
        api = f"{kind.group}/{kind.versions[0]}" if kind.group else kind.versions[0]
        items = [{"apiVersion": api, "kind": kind.kind, **to_builtins(r)} for r in records]
        doc = {"apiVersion": api, "kind": f"{kind.kind}List", "items": items}
        (out / f"{kind.key}.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
        written[kind.key] = len(items)
    if state.samples:
        lines = []
        for name in sorted(state.samples):
            lines.append(f"# TYPE {name} gauge")
            for s in state.samples[name]:
                labels = ",".join(f'{k}="{_label_value(v)}"' for k, v in sorted(s.labels.items()))
                value = repr(s.value) if math.isfinite(s.value) else ("+Inf" if s.value > 0 else "NaN")
                ts = f" {int(s.timestamp * 1000)}" if s.timestamp else ""
                lines.append(f"{name}{{{labels}}} {value}{ts}")
        (out / "metrics.prom").write_text("\n".join(lines) + "\n")
    return written
