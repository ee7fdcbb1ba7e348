"""Command line: `ov-exporter serve` and `ov-exporter check`.

Exit codes: 0 ok; 1 `check` found something at or above --fail-on; 2 usage or
configuration error.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from pathlib import Path

from .checks import CHECK_IDS
from .config import Config, load_config
from .errors import OvError
from .model import Severity
from .sources import DemoSource, SnapshotSource, Source
from .version import __version__

DEFAULT_LISTEN = "0.0.0.0:9871"
log = logging.getLogger("ov_exporter")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ov-exporter", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    common = argparse.ArgumentParser(add_help=False)
    src = common.add_mutually_exclusive_group()
    src.add_argument("--demo", action="store_true", help="use the embedded demo cluster")
    src.add_argument("--snapshot", metavar="DIR", type=Path,
                     help="read YAML/JSON dumps (oc get -o yaml, must-gather, Insights) and .prom samples below DIR")
    common.add_argument("--kubeconfig", metavar="FILE",
                        help="kubeconfig for the live cluster (default $KUBECONFIG, ~/.kube/config, in-cluster)")
    common.add_argument("--context", help="kubeconfig context (default: the current one)")
    common.add_argument("--prometheus-url", metavar="URL",
                        help="Prometheus or Thanos querier for dirty-rate samples (live cluster only)")
    common.add_argument("--prometheus-token-file", metavar="FILE", help="bearer token file for --prometheus-url")
    common.add_argument("--prometheus-ca-file", metavar="FILE", help="CA bundle for --prometheus-url")
    common.add_argument("--config", metavar="FILE", type=Path, help="YAML configuration file")
    common.add_argument("--profile", choices=("production", "dev-test"), help="overrides `profile`")
    common.add_argument("--series-cap", type=int, metavar="N", help="overrides `series-cap`")
    common.add_argument("--threads-per-core", type=int, metavar="N", help="overrides `threads-per-core`")
    common.add_argument("--migration-link-speed", metavar="BITS", help="overrides `migration-link-speed` (e.g. 25G)")
    common.add_argument("--disable-check", action="append", default=[], metavar="ID",
                        help="disable a check (repeatable); overrides `checks.<id>.enabled`")
    common.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))

    serve = sub.add_parser("serve", parents=[common], help="serve /metrics, findings and health endpoints")
    serve.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                       help=f"address to listen on (default {DEFAULT_LISTEN})")
    serve.add_argument("--interval", type=float, default=60.0, metavar="SECONDS",
                       help="seconds between evaluations (default 60)")

    check = sub.add_parser("check", parents=[common], help="evaluate once, print findings, exit 1 on findings")
    check.add_argument("--output", choices=("table", "json", "prom", "junit", "sarif"), default="table",
                       help="table (default), json, prom (the /metrics exposition), junit (XML for CI test "
                            "reports) or sarif (2.1.0, for code-scanning tools; with --snapshot, findings "
                            "point at the file and line of the object)")
    check.add_argument("--fail-on", choices=("critical", "warning", "info", "never"), default="critical",
                       help="exit 1 when a finding at or above this severity exists (default critical)")
    check.add_argument("--sync-timeout", type=float, default=300.0, metavar="SECONDS",
                       help="live cluster: give up when the first LIST of every kind takes longer (default 300)")

    snap = sub.add_parser("snapshot", parents=[common], help="write what the source sees to a snapshot directory")
    snap.add_argument("--out", required=True, type=Path, metavar="DIR", help="directory to write")
    snap.add_argument("--sync-timeout", type=float, default=300.0, metavar="SECONDS")
    return parser


def _config(args: argparse.Namespace) -> Config:
    overrides = {
        "profile": args.profile,
        "series-cap": args.series_cap,
        "threads-per-core": args.threads_per_core,
        "migration-link-speed": args.migration_link_speed,
    }
    for check_id in args.disable_check:
        if check_id not in CHECK_IDS:
            raise OvError(f"--disable-check: unknown check id {check_id!r} (known: {', '.join(sorted(CHECK_IDS))})")
        overrides[f"checks.{check_id}.enabled"] = False
    return load_config(args.config, known_checks=set(CHECK_IDS), overrides=overrides)


def _source(args: argparse.Namespace) -> Source:
    if args.prometheus_url and (args.demo or args.snapshot is not None):
        raise OvError("--prometheus-url applies to the live cluster only; a snapshot carries its samples as files")
    if args.demo:
        return DemoSource()
    if args.snapshot is not None:
        if not args.snapshot.is_dir():
            raise OvError(f"--snapshot: {args.snapshot} is not a directory")
        return SnapshotSource(args.snapshot)
    from .sources.live import LiveSource, load_credentials
    from .sources.prometheus import PrometheusSamples

    credentials = load_credentials(args.kubeconfig, args.context)  # SourceError -> exit 2
    metrics = None
    if args.prometheus_url:
        metrics = PrometheusSamples(args.prometheus_url, args.prometheus_token_file, args.prometheus_ca_file)
    return LiveSource(credentials=credentials, metrics=metrics)


async def _load(source: Source, timeout: float):
    """Run the source until its first full sync; return the store (the source is stopped)."""
    from .store import Store

    store = Store()
    task = asyncio.create_task(source.run(store))
    try:
        while not store.synced:
            if task.done():
                task.result()  # a static source returned, or the live one failed: raise its error
                break
            if timeout <= 0:
                raise OvError("the cluster did not finish its first sync in time (--sync-timeout)")
            await asyncio.sleep(0.05)
            timeout -= 0.05
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return store


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise OvError(f"--listen: expected HOST:PORT, got {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


async def _serve(args: argparse.Namespace, config: Config, source: Source) -> None:
    from aiohttp import web

    from .server import Exporter

    host, port = _listen(args.listen)
    if args.interval <= 0:
        raise OvError("--interval: must be positive")
    exporter = Exporter(source, config, args.interval)
    runner = web.AppRunner(exporter.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise OvError(f"--listen {args.listen}: {exc.strerror or exc}") from None
    log.info("ov-exporter %s serving %s on http://%s:%d/", __version__, source.describe(), host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    await runner.cleanup()


def _check(args: argparse.Namespace, config: Config, source: Source) -> int:
    from .registry import evaluate
    from .render import History, SourceStats, render
    from .report import to_json, to_junit, to_sarif, to_table

    store = asyncio.run(_load(source, args.sync_timeout))
    _report_unavailable(store)
    evaluation = evaluate(store.state(), config)
    if args.output == "json":
        doc = to_json(evaluation)
        doc["problems"] = [{"where": p.where, "message": p.message} for p in store.problems]
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    elif args.output == "prom":
        history = History()
        history.record(evaluation)
        stats = SourceStats.of(store, source.requests())
        sys.stdout.write(render(evaluation, history, stats).text.decode())
    elif args.output == "junit":
        fail_on = None if args.fail_on == "never" else Severity.parse(args.fail_on)
        sys.stdout.write(to_junit(evaluation, fail_on, store.origin))
    elif args.output == "sarif":
        base = args.snapshot.resolve().as_uri() + "/" if args.snapshot is not None else None
        doc = to_sarif(evaluation, store.origin if base else None, store.problems, base)
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        sys.stdout.write(to_table(evaluation))
        for problem in store.problems:
            sys.stdout.write(f"skipped {problem}\n")
    if args.fail_on == "never":
        return 0
    worst = evaluation.worst()
    return 1 if worst is not None and worst >= Severity.parse(args.fail_on) else 0


def _report_unavailable(store) -> None:
    for key, status in sorted(store.kinds.items()):
        if status.forbidden:
            log.error("%s: permission missing: %s", key, status.forbidden)


def _snapshot(args: argparse.Namespace, source: Source) -> int:
    from .sources.export import write_snapshot

    store = asyncio.run(_load(source, args.sync_timeout))
    _report_unavailable(store)
    written = write_snapshot(store.state(), args.out)
    sys.stderr.write(f"wrote {sum(written.values())} objects of {sum(1 for n in written.values() if n)} kinds "
                     f"to {args.out}\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = _config(args)
        source = _source(args)
        if args.command == "serve":
            asyncio.run(_serve(args, config, source))
            return 0
        if args.command == "snapshot":
            return _snapshot(args, source)
        return _check(args, config, source)
    except OvError as exc:
        sys.stderr.write(f"ov-exporter: error: {exc}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
