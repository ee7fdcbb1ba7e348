"""Evaluations alone, for a whole-process timer: `python -m tests.benchevals MODE N [TIER]`
builds the tier's cluster in this process (tests/benchgen.py, decoded as the live source
decodes it, no HTTP), then runs N evaluations as `serve` runs them, each on a fresh state:
    full   every check run each time, per-object results kept from the last one
    cold   every check run each time, nothing kept (the memo emptied before each)
    churn  runner.Reuse as `serve` uses it, one object changed before each evaluation
           after the first: a VMI, a PVC and a Node in turn (a label, a new resourceVersion)
Prints the CPU milliseconds of each evaluation. Run it from checkouts of two commits, in
turn, to compare them (also as whole processes)."""

from __future__ import annotations

import gc
import json
import sys
import time
from typing import Any

import msgspec
from ov_exporter.config import Config
from ov_exporter.events import Listed, Upserted
from ov_exporter.records import KIND_BY_KEY, KINDS, decode_json, kind_for
from ov_exporter.runner import Reuse, evaluate
from ov_exporter.store import Store

from .benchgen import TIERS, cluster

CHANGED = ("virtualmachineinstances.kubevirt.io", "persistentvolumeclaims", "nodes")


def build(tier: str) -> Store:
    store, records = Store(), {}
    for obj in cluster(TIERS[tier]):
        kind = kind_for(obj["apiVersion"], obj["kind"])
        if kind is not None:
            records.setdefault(kind, []).append(decode_json(kind.record, json.dumps(obj).encode()))
    for kind in KINDS:
        store.apply(Listed(kind, records.get(kind, []), {}, ""))
    return store


def relabelled(record: Any, n: int) -> Any:
    """The record as a watch MODIFIED event would bring it after a label change: a new
    record with a new resourceVersion (where records keep one, records.VersionedMeta)."""
    meta = record.metadata
    changed: dict[str, Any] = {"labels": {**(meta.labels or {}), "bench.ov-exporter.example/changed": str(n)}}
    if hasattr(meta, "resource_version"):
        changed["resource_version"] = f"{meta.resource_version}-{n}"
    return msgspec.structs.replace(record, metadata=msgspec.structs.replace(meta, **changed))


def main(argv: list[str]) -> None:
    mode, n, tier = argv[0], int(argv[1]), argv[2] if len(argv) > 2 else "XL"
    if mode not in ("full", "cold", "churn"):
        raise SystemExit(f"unknown mode {mode!r}: full, cold or churn")
    gc.disable()  # as serve around its first sync, then frozen
    store = build(tier)
    gc.collect()
    gc.freeze()
    config, reuse = Config(), Reuse() if mode == "churn" else None
    memo = getattr(store, "object_memo", None)  # None: a build from before the per-object memo
    spent = []
    for i in range(n):
        if mode == "cold" and memo is not None:
            memo.clear()
        if reuse is not None and i:
            key = CHANGED[i % len(CHANGED)]
            records = store.state().of(key)
            store.apply(Upserted(KIND_BY_KEY[key], relabelled(records[(i * 7919) % len(records)], i)))
        started = time.process_time()
        evaluate(store.state(), config, reuse=reuse)
        spent.append(round((time.process_time() - started) * 1000))
    print(json.dumps({"mode": mode, "cpu_ms": spent}))


if __name__ == "__main__":
    main(sys.argv[1:])
