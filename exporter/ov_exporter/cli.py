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
    check.add_argument("--output", choices=("table", "json", "prom"), default="table")
    check.add_argument("--fail-on", choices=("critical", "warning", "info", "never"), default="critical",
                       help="exit 1 when a finding at or above this severity exists (default critical)")
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
    if args.demo:
        return DemoSource()
    if args.snapshot is not None:
        if not args.snapshot.is_dir():
            raise OvError(f"--snapshot: {args.snapshot} is not a directory")
        return SnapshotSource(args.snapshot)
    raise OvError("no cluster source: pass --demo for the embedded demo cluster or --snapshot DIR "
                  "(the live-cluster source is not available in this version)")


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
    from .report import to_json, to_table
    from .records import KIND_BY_KEY
    from .store import Store

    store = Store()
    asyncio.run(source.run(store))
    evaluation = evaluate(store.state(), config)
    if args.output == "json":
        doc = to_json(evaluation)
        doc["problems"] = [{"where": p.where, "message": p.message} for p in store.problems]
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    elif args.output == "prom":
        history = History()
        history.record(evaluation)
        stats = SourceStats({KIND_BY_KEY[k].kind: n for k, n in store.counts().items()}, len(store.problems),
                            sum(store.ignored_counts().values()))
        sys.stdout.write(render(evaluation, history, stats).text.decode())
    else:
        sys.stdout.write(to_table(evaluation))
        for problem in store.problems:
            sys.stdout.write(f"skipped {problem}\n")
    if args.fail_on == "never":
        return 0
    worst = evaluation.worst()
    return 1 if worst is not None and worst >= Severity.parse(args.fail_on) else 0


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
        return _check(args, config, source)
    except OvError as exc:
        sys.stderr.write(f"ov-exporter: error: {exc}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
