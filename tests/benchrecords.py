"""What the store's records take at a tier, traced: `python -m tests.benchrecords TIER
[--all-annotations]` builds the tier's cluster (tests/benchgen.py) into a Store as the
live source does (each object decoded from its JSON, each kind synced by one LIST) under
tracemalloc, and prints one JSON line: the traced MiB held after the sync. Records keep
the annotation keys `serve` keeps (`cli.annotations_read`), or every annotation with
`--all-annotations` (as before the allow-list, and as `snapshot` keeps them). Run each
variant in its own process: interned strings and shared values outlive a store."""

from __future__ import annotations

import argparse
import gc
import json
import tracemalloc

from ov_exporter import cli, records
from ov_exporter.config import Config
from ov_exporter.events import Listed
from ov_exporter.records import KINDS, decode_json, kind_for
from ov_exporter.store import Store

from .benchgen import TIERS, cluster


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.benchrecords")
    parser.add_argument("tier", choices=TIERS)
    parser.add_argument("--all-annotations", action="store_true")
    args = parser.parse_args()
    records.keep_annotations(None if args.all_annotations else cli.annotations_read(Config()))
    gc.disable()  # as serve during its first sync
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    store, decoded = Store(), {}
    for obj in cluster(TIERS[args.tier]):
        kind = kind_for(obj["apiVersion"], obj["kind"])
        if kind is not None:
            decoded.setdefault(kind, []).append(decode_json(kind.record, json.dumps(obj).encode()))
    for kind in KINDS:
        store.apply(Listed(kind, decoded.pop(kind, []), {}, ""))
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    print(
        json.dumps({"tier": args.tier, "all_annotations": args.all_annotations, "records_mib": round(held / 2**20, 2)})
    )


if __name__ == "__main__":
    main()
