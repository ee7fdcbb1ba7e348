"""One measurement of `make bench`, in a fresh process so that none inherits another's
heap: `python -m tests.benchmeasure MEASURE KUBECONFIG`, prints one JSON line.

Every measure reads each kind the exporter reads, at the version and with the label
selector it uses, 500 items a page, from the fake API server:
    transport    HTTP only: every page's bytes read (aiohttp, as the exporter)
    msgspec      transport + a minimal typed decode (name, namespace, uid, resourceVersion)
    orjson       transport + every page decoded into dicts by orjson
    kubernetes   the official `kubernetes` client: typed models for core kinds, dicts for
                 custom resources (CustomObjectsApi), as its users would list them
    sync         the exporter's live source, as `serve` runs it, to its Synced event
    evaluate     sync, then `--repeat` times what `serve` does per evaluation on a fresh
                 state: evaluate (the per-object memo emptied first: nothing kept from an
                 earlier evaluation), render /metrics; then the same evaluation with the memo
                 the previous one left (every check run again); then the findings JSON and
                 the HTML page; then, with runner.Reuse as `serve` uses it, the evaluation
                 after one VMI, one PVC and one Node changes (`--repeat` objects each)
    credentials  RSS after the modules `serve` imports, after loading the credentials
                 (only the `kubernetes` package's loaders), then after `import kubernetes`
                 (what loading them cost while the whole package was imported)
"""

from __future__ import annotations

import asyncio
import gc
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import aiohttp
import msgspec
from ov_exporter.records import KINDS, KindInfo

PAGE = 500


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class GcWatch:
    """Collections and their pauses while installed (gc.callbacks)."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []  # (generation, seconds)
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.pauses.append((info["generation"], time.perf_counter() - self._start))

    def __enter__(self) -> "GcWatch":
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)

    def summary(self) -> dict[str, Any]:
        full = [s for g, s in self.pauses if g == 2]
        return {
            "collections": len(self.pauses),
            "full": len(full),
            "longest_ms": max((s for _, s in self.pauses), default=0.0) * 1000,
            "total_ms": sum(s for _, s in self.pauses) * 1000,
        }


def _paths() -> list[tuple[KindInfo, str, dict[str, str]]]:
    out = []
    for kind in KINDS:
        version = kind.versions[0]
        path = f"/api/{version}/{kind.plural}" if not kind.group else f"/apis/{kind.group}/{version}/{kind.plural}"
        params = {"limit": str(PAGE)}
        if kind.label_selector:
            params["labelSelector"] = kind.label_selector
        out.append((kind, path, params))
    return out


class _Meta(msgspec.Struct):
    name: str = ""
    namespace: str = ""
    uid: str = ""
    resourceVersion: str = ""
    continue_: str = msgspec.field(default="", name="continue")


class _Item(msgspec.Struct):
    metadata: _Meta = msgspec.field(default_factory=_Meta)


class _Page(msgspec.Struct):
    metadata: _Meta = msgspec.field(default_factory=_Meta)
    items: list[_Item] | None = None


async def _over_http(url: str, consume: Callable[[bytes], tuple[int, str]]) -> dict[str, Any]:
    """Every page of every kind; consume(body) -> (items, continue token)."""
    total_bytes = objects = 0
    async with aiohttp.ClientSession(url, headers={"Accept": "application/json"}) as session:
        for _, path, params in _paths():
            cont = ""
            while True:
                query = dict(params, **({"continue": cont} if cont else {}))
                async with session.get(path, params=query) as resp:
                    if resp.status == 404:
                        break
                    body = await resp.read()
                total_bytes += len(body)
                count, cont = consume(body)
                objects += count
                if not cont:
                    break
    return {"bytes": total_bytes, "objects": objects}


def measure_http(url: str, name: str) -> dict[str, Any]:
    kept: list[Any] = []
    meta_only = msgspec.json.Decoder(_Page)

    if name == "transport":
        # Items are skipped by a raw split on the continue token: the cheapest read that still
        # follows pagination (msgspec.Raw items are not decoded).
        class _RawPage(msgspec.Struct):
            metadata: _Meta = msgspec.field(default_factory=_Meta)
            items: list[msgspec.Raw] | None = None

        raw = msgspec.json.Decoder(_RawPage)

        def consume(body: bytes) -> tuple[int, str]:
            page = raw.decode(body)
            return len(page.items or ()), page.metadata.continue_
    elif name == "msgspec":

        def consume(body: bytes) -> tuple[int, str]:
            page = meta_only.decode(body)
            kept.extend(page.items or ())
            return len(page.items or ()), page.metadata.continue_
    elif name == "orjson":
        import orjson  # noqa: PLC0415 - installed by `make bench` only

        def consume(body: bytes) -> tuple[int, str]:
            page = orjson.loads(body)
            kept.extend(page.get("items") or ())
            return len(page.get("items") or ()), (page.get("metadata") or {}).get("continue", "")
    else:
        raise SystemExit(f"unknown measure {name}")
    gc_watch = GcWatch()
    with gc_watch:
        started = time.perf_counter()
        result = asyncio.run(_over_http(url, consume))
        result["seconds"] = time.perf_counter() - started
    result["rss_mib"] = rss_mib()
    result["gc"] = gc_watch.summary()
    return result


def measure_kubernetes(kubeconfig: str) -> dict[str, Any]:
    from kubernetes import client, config

    api_client = config.new_client_from_config(config_file=kubeconfig)
    core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
    storage = client.StorageV1Api(api_client)
    typed = {
        "nodes": core.list_node,
        "namespaces": core.list_namespace,
        "persistentvolumeclaims": core.list_persistent_volume_claim_for_all_namespaces,
        "pods": core.list_pod_for_all_namespaces,
        "storageclasses.storage.k8s.io": storage.list_storage_class,
    }
    kept: list[Any] = []
    objects = 0
    gc_watch = GcWatch()
    with gc_watch:
        started = time.perf_counter()
        for kind, _, params in _paths():
            cont = None
            while True:
                extra = {"label_selector": params["labelSelector"]} if "labelSelector" in params else {}
                if cont:
                    extra["_continue"] = cont
                try:
                    if kind.key in typed:
                        page = typed[kind.key](limit=PAGE, **extra)
                        items, cont = page.items, page.metadata._continue
                    else:
                        page = custom.list_cluster_custom_object(
                            kind.group, kind.versions[0], kind.plural, limit=PAGE, **extra
                        )
                        items, cont = page.get("items", []), page.get("metadata", {}).get("continue")
                except client.ApiException as exc:
                    if exc.status == 404:
                        break
                    raise
                kept.extend(items)
                objects += len(items)
                if not cont:
                    break
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "objects": objects, "rss_mib": rss_mib(), "gc": gc_watch.summary()}


async def _sync(kubeconfig: str) -> tuple[Any, float, GcWatch]:
    """The exporter's store synced as `serve` syncs it; (store, seconds, GC during sync)."""
    from ov_exporter.events import Synced
    from ov_exporter.sources.live import LiveSource, load_credentials
    from ov_exporter.store import Store

    credentials = load_credentials(kubeconfig)
    store = Store()
    synced = asyncio.Event()

    def emit(event: Any) -> None:
        store.apply(event)
        if isinstance(event, Synced):
            synced.set()

    source = LiveSource(credentials=credentials)
    try:  # the garbage-collection policy `serve` follows around the first sync
        from ov_exporter.store import gc_after_sync, gc_before_sync
    except ImportError:  # a build from before it (before/after comparisons)
        gc_before_sync = gc_after_sync = lambda: None  # noqa: E731
    gc_watch = GcWatch()
    with gc_watch:
        started = time.perf_counter()
        gc_before_sync()
        task = asyncio.create_task(source.run(emit))
        await synced.wait()
        seconds = time.perf_counter() - started
    gc_after_sync()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return store, seconds, gc_watch


def measure_sync(kubeconfig: str) -> dict[str, Any]:
    store, seconds, gc_watch = asyncio.run(_sync(kubeconfig))
    return {"seconds": seconds, "objects": sum(store.counts().values()), "rss_mib": rss_mib(), "gc": gc_watch.summary()}


def measure_evaluate(kubeconfig: str, repeat: int) -> dict[str, Any]:
    from ov_exporter.checks import CHECKS
    from ov_exporter.config import Config
    from ov_exporter.render import History, SourceStats, render
    from ov_exporter.report import to_html, to_json
    from ov_exporter.runner import evaluate

    store, _, _ = asyncio.run(_sync(kubeconfig))
    config, history = Config(), History()
    memo = getattr(store, "object_memo", None)  # None: a build from before the per-object memo
    rows: dict[str, list[float]] = {"evaluate": [], "render": [], "job": [], "warm": []}
    per_check: dict[str, list[float]] = {}
    gc_watch = GcWatch()
    with gc_watch:
        for _ in range(repeat):
            if memo is not None:
                memo.clear()
            started = time.perf_counter()
            evaluation = evaluate(store.state(), config, CHECKS)  # a fresh state, as `serve` takes one
            evaluated = time.perf_counter()
            history.record(evaluation)
            payload = render(evaluation, history, SourceStats.of(store))
            rendered = time.perf_counter()
            rows["evaluate"].append(evaluated - started)
            rows["render"].append(rendered - evaluated)
            rows["job"].append(rendered - started)
            for result in evaluation.results:
                per_check.setdefault(result.spec.id, []).append(result.duration)
            started = time.perf_counter()
            evaluate(store.state(), config, CHECKS)  # what the last one kept reused, every check run
            rows["warm"].append(time.perf_counter() - started)
    rss_after = rss_mib()
    started = time.perf_counter()
    findings = json.dumps(to_json(evaluation), indent=1).encode()
    findings_s = time.perf_counter() - started
    started = time.perf_counter()
    page = to_html(evaluation, "bench", 0, {}).encode()
    html_s = time.perf_counter() - started
    return {
        "evaluate_s": statistics.median(rows["evaluate"]),
        "evaluate_warm_s": statistics.median(rows["warm"]),
        "after_change": after_one_change(store, config, repeat),
        "render_s": statistics.median(rows["render"]),
        "job_s": statistics.median(rows["job"]),
        "findings": len(evaluation.findings),
        "series": sum(1 for line in payload.text.splitlines() if line and not line.startswith(b"#")),
        "metrics_bytes": len(payload.text),
        "metrics_gzip_bytes": len(payload.text_gzip),
        "findings_json_s": findings_s,
        "findings_json_bytes": len(findings),
        "html_s": html_s,
        "html_bytes": len(page),
        "rss_mib": rss_after,
        "gc": gc_watch.summary(),
        "per_check_ms": {k: statistics.median(v) * 1000 for k, v in per_check.items()},
    }


CHANGED_KINDS = {"vmi": "virtualmachineinstances.kubevirt.io", "pvc": "persistentvolumeclaims", "node": "nodes"}


def after_one_change(store: Any, config: Any, repeat: int) -> dict[str, Any]:
    """Evaluations as `serve` runs them (a fresh state, runner.Reuse), each after one object
    of a kind changed: per kind, the median seconds and the checks run again."""
    import random

    from ov_exporter.events import Upserted
    from ov_exporter.records import KIND_BY_KEY
    from ov_exporter.runner import Reuse, evaluate

    from .benchevals import relabelled

    reuse = Reuse()
    evaluate(store.state(), config, reuse=reuse)  # what serve has done before the change
    rng = random.Random(15)
    out: dict[str, Any] = {}
    for name, key in CHANGED_KINDS.items():
        seconds, reran = [], []
        for n in range(repeat):
            records = store.state().of(key)
            store.apply(Upserted(KIND_BY_KEY[key], relabelled(records[rng.randrange(len(records))], n)))
            before = reuse.reused
            started = time.perf_counter()
            evaluation = evaluate(store.state(), config, reuse=reuse)
            seconds.append(time.perf_counter() - started)
            reran.append(len(evaluation.results) - (reuse.reused - before))
        out[name] = {"seconds": statistics.median(seconds), "checks_run": statistics.median(reran)}
    return out


def measure_credentials(kubeconfig: str) -> dict[str, Any]:
    import ov_exporter.cli
    import ov_exporter.server
    import ov_exporter.sources.live  # noqa: F401 - what serve imports before loading credentials

    gc.collect()
    imported = rss_mib()
    ov_exporter.sources.live.load_credentials(kubeconfig)
    gc.collect()
    loaded = rss_mib()
    import kubernetes  # noqa: F401

    gc.collect()
    return {"rss_imported": imported, "rss_credentials": loaded, "rss_whole_package": rss_mib()}


def main(argv: list[str]) -> None:
    name, kubeconfig = argv[0], argv[1]
    if name in ("transport", "msgspec", "orjson"):
        from ov_exporter.sources.credentials import load_credentials

        result = measure_http(load_credentials(kubeconfig).host, name)
    elif name == "kubernetes":
        result = measure_kubernetes(kubeconfig)
    elif name == "sync":
        result = measure_sync(kubeconfig)
    elif name == "credentials":
        result = measure_credentials(kubeconfig)
    elif name == "evaluate":
        result = measure_evaluate(kubeconfig, int(argv[2]) if len(argv) > 2 else 3)
    else:
        raise SystemExit(f"unknown measure {name!r}")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
