"""Command line: `ov-exporter serve`, `check`, `plan`, `snapshot` and `rebalance-report`.

Exit codes: 0 ok; 1 `check` found something at or above --fail-on; 2 usage or
configuration error, credentials rejected, the API server unreachable, a kind an
enabled check needs could not be read (forbidden, unauthorized), or `check` cannot
vouch for its input (a snapshot where nothing loaded or every file failed; with
--strict, any file or object skipped).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from pathlib import Path

from . import logs, records
from .checks import CHECK_IDS
from .config import Config, load_config
from .errors import OvError
from .events import ClockSet
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
    src.add_argument(
        "--snapshot",
        metavar="DIR",
        type=Path,
        help="read YAML/JSON dumps (oc get -o yaml, must-gather, Insights) and .prom samples below DIR",
    )
    common.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help="kubeconfig for the live cluster (default $KUBECONFIG, ~/.kube/config, in-cluster)",
    )
    common.add_argument("--context", help="kubeconfig context (default: the current one)")
    common.add_argument(
        "--prometheus-url",
        metavar="URL",
        help="Prometheus or Thanos querier for dirty-rate and usage samples (live cluster only)",
    )
    common.add_argument("--prometheus-token-file", metavar="FILE", help="bearer token file for --prometheus-url")
    common.add_argument("--prometheus-ca-file", metavar="FILE", help="CA bundle for --prometheus-url")
    common.add_argument("--config", metavar="FILE", type=Path, help="YAML configuration file")
    common.add_argument("--profile", choices=("production", "dev-test"), help="overrides `profile`")
    common.add_argument("--series-cap", type=int, metavar="N", help="overrides `series-cap`")
    common.add_argument("--threads-per-core", type=int, metavar="N", help="overrides `threads-per-core`")
    common.add_argument("--migration-link-speed", metavar="BITS", help="overrides `migration-link-speed` (e.g. 25G)")
    common.add_argument(
        "--disable-check",
        action="append",
        default=[],
        metavar="ID",
        help="disable a check (repeatable); overrides `checks.<id>.enabled`",
    )
    common.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))

    serve = sub.add_parser("serve", parents=[common], help="serve /metrics, findings and health endpoints")
    serve.add_argument(
        "--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT", help=f"address to listen on (default {DEFAULT_LISTEN})"
    )
    serve.add_argument(
        "--interval", type=float, default=60.0, metavar="SECONDS", help="seconds between evaluations (default 60)"
    )
    serve.add_argument(
        "--tls-cert-file",
        metavar="FILE",
        help="serve HTTPS (TLS 1.2 or later) with this certificate (PEM, chain after the "
        "leaf); loaded again when it or the key changes on disk. Needs --tls-key-file",
    )
    serve.add_argument("--tls-key-file", metavar="FILE", help="the private key (PEM) of --tls-cert-file")
    serve.add_argument(
        "--auth",
        choices=("none", "kubernetes"),
        default="none",
        help="kubernetes: /metrics, / and /findings.json need a bearer token that a TokenReview "
        "authenticates and a SubjectAccessReview allows to get /metrics; /healthz, /readyz "
        "and /runbooks/ stay open (default none; kubernetes needs the live source)",
    )
    serve.add_argument(
        "--auth-cache-seconds",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long an allowed token is not reviewed again (default 60; refusals: 10)",
    )

    check = sub.add_parser("check", parents=[common], help="evaluate once, print findings, exit 1 on findings")
    check.add_argument(
        "--output",
        choices=("table", "json", "prom", "junit", "sarif"),
        default="table",
        help="table (default), json, prom (the /metrics exposition), junit (XML for CI test "
        "reports) or sarif (2.1.0, for code-scanning tools; with --snapshot, findings "
        "point at the file and line of the object)",
    )
    check.add_argument(
        "--fail-on",
        choices=("critical", "warning", "info", "never"),
        default="warning",
        help="exit 1 when a finding at or above this severity exists (default warning: what will "
        "hurt the next migration, drain or failure; critical findings mean VMs down now)",
    )
    check.add_argument(
        "--sync-timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="live cluster: give up when the first LIST of every kind takes longer (default 300)",
    )
    check.add_argument(
        "--at",
        metavar="RFC3339",
        help="judge time windows (post-rebalance watch, migration queue stall) as of this time, "
        "e.g. 2025-01-20T09:30:00Z (default: live: now; snapshot: its capture time)",
    )
    check.add_argument(
        "--strict",
        action="store_true",
        help="exit 2 when any file or object was skipped as broken, any field dropped "
        "or any object defined twice (default: counted in the output only)",
    )
    check.add_argument(
        "--vm",
        metavar="NAMESPACE/NAME",
        help="print the live-migration readiness of one VirtualMachine with every blocking reason "
        "and its remediation; exit 0 when it can migrate, 1 when it is blocked",
    )

    plan = sub.add_parser(
        "plan",
        parents=[common],
        help="propose a rebalance: which VMs to move where, in waves (read-only: creates no migration)",
    )
    plan.add_argument(
        "--goal",
        nargs="+",
        default=["spread"],
        metavar="GOAL",
        help="spread (default: even out node utilisation), drain NODE (evacuate one node) or "
        "evacuate-control-plane (move VMs off control-plane nodes)",
    )
    plan.add_argument(
        "--output",
        choices=("table", "markdown", "json", "manifests"),
        default="table",
        help="table (default), markdown (a change plan), json (the plan; input of --verify) or manifests "
        "(one VirtualMachineInstanceMigration per move, by wave)",
    )
    plan.add_argument(
        "--basis",
        choices=("usage", "allocation"),
        default=None,
        help="what the spread measures: usage (node CPU and memory utilisation from node_exporter and each VM's "
        "measured CPU and memory, from --prometheus-url or a snapshot's samples) or allocation (vCPUs and guest "
        "memory against what the thresholds allow); default: usage when there are node usage samples, else "
        "allocation. The thresholds are on allocation either way",
    )
    plan.add_argument("--wave-size", type=int, default=5, metavar="N", help="moves per wave (at most 5, default 5)")
    plan.add_argument(
        "--max-moves",
        type=int,
        default=100,
        metavar="N",
        help="most moves of a spread plan (default 100); a drain or evacuation lists every move it needs and "
        "says when that is more",
    )
    plan.add_argument(
        "--inbound", type=int, default=2, metavar="N", help="most migrations into one node per wave (default 2)"
    )
    plan.add_argument(
        "--effort",
        type=int,
        default=1,
        metavar="N",
        help="multiply the spread search's budgets on clusters of up to 32 nodes and 300 movable VMs (default 1): "
        "about N times the time for a plan closer to the optimum (on the benchmark's clusters of up to 8 nodes, 10 "
        "took 7.7 s where 1 took 0.70 s, medians of one run); "
        "the same state and effort always give the same plan",
    )
    plan.add_argument(
        "--verify",
        metavar="PLANFILE",
        help="check a JSON plan against the current state: moves done, still safe, no longer safe, superseded",
    )
    plan.add_argument("--sync-timeout", type=float, default=300.0, metavar="SECONDS")

    snap = sub.add_parser("snapshot", parents=[common], help="write what the source sees to a snapshot directory")
    snap.add_argument("--out", required=True, type=Path, metavar="DIR", help="directory to write")
    snap.add_argument("--sync-timeout", type=float, default=300.0, metavar="SECONDS")

    reb = sub.add_parser("rebalance-report", help="per-node CPU and memory before a rebalance and now, from Prometheus")
    reb.add_argument("--prometheus-url", required=True, metavar="URL", help="Prometheus or Thanos querier")
    reb.add_argument(
        "--since",
        metavar="TIME",
        help="rebalance start: RFC3339, Unix time or a duration before --at such as 48h "
        "(default: the earliest migration start in the 48 h before --at)",
    )
    reb.add_argument("--at", metavar="TIME", help="the 'now' of the report (RFC3339, Unix time or a duration ago)")
    reb.add_argument(
        "--cluster",
        metavar="NAME",
        help="only this cluster, where series carry a `cluster` label (Thanos, ACM, federation); "
        "default: one section per cluster found",
    )
    reb.add_argument(
        "--window",
        default="1h",
        metavar="DURATION",
        help="utilisation is averaged over this window before each instant (default 1h)",
    )
    reb.add_argument("--output", choices=("table", "markdown", "json"), default="table")
    reb.add_argument("--prometheus-token-file", metavar="FILE", help="bearer token file for --prometheus-url")
    reb.add_argument("--prometheus-ca-file", metavar="FILE", help="CA bundle for --prometheus-url")
    reb.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS", help="per query (default 30)")
    reb.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
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


def annotations_read(config: Config) -> frozenset[str]:
    """The annotation keys some check reads: records keep only these (see
    `records.keep_annotations`); tests/test_annotations_kept.py holds the checks to it."""
    from .checks.node_failure_planning import MACHINE_ANNOTATION
    from .domain.migrations import EVACUATION_ANNOTATION, REBALANCE_ANNOTATION, WORKLOAD_UPDATE_ANNOTATION
    from .domain.storage import DEFAULT_CLASS, DEFAULT_VIRT_CLASS

    return frozenset(
        (
            config.exemption_annotation,
            MACHINE_ANNOTATION,
            EVACUATION_ANNOTATION,
            REBALANCE_ANNOTATION,
            WORKLOAD_UPDATE_ANNOTATION,
            DEFAULT_CLASS,
            DEFAULT_VIRT_CLASS,
        )
    )


def _source(args: argparse.Namespace, fail_fast: bool = False) -> Source:
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
    from .sources.reflector import POLL_SECONDS

    # serve: the metrics API (no WATCH) is polled at most once per evaluation interval.
    poll = max(POLL_SECONDS, getattr(args, "interval", None) or POLL_SECONDS)
    return LiveSource(credentials=credentials, metrics=metrics, fail_fast=fail_fast, poll_seconds=poll)


async def _load(source: Source, timeout: float):
    """Run the source until its first full sync; return the store (the source is stopped)."""
    from .records import KIND_BY_KEY
    from .store import Store

    store = Store()
    task = asyncio.create_task(source.run(store.apply))
    started = asyncio.get_running_loop().time()
    try:
        while not store.synced:
            if task.done():
                task.result()  # a static source returned, or the live one failed: raise its error
                break
            rejected = sorted({st.unauthorized for st in store.kinds.values() if st.unauthorized})
            if rejected:  # the token was read again after the 401: waiting will not help
                raise OvError(f"{source.describe()}: {rejected[0]}")
            if asyncio.get_running_loop().time() - started > timeout:
                waiting = [
                    f"{KIND_BY_KEY[k].kind} ({st.error or 'no answer'})"
                    for k, st in sorted(store.kinds.items())
                    if not (st.synced or st.absent or st.forbidden)
                ]
                raise OvError(
                    f"the cluster did not finish its first sync in {timeout:g} s (--sync-timeout); "
                    f"still waiting for {', '.join(waiting)}"
                )
            await asyncio.sleep(0.05)
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

    from .server import Exporter, LimitedRunner

    host, port = _listen(args.listen)
    if args.interval <= 0:
        raise OvError("--interval: must be positive")
    tls = _tls(args)
    exporter = Exporter(source, config, args.interval, _auth(args, source))
    runner = LimitedRunner(exporter.app())
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=tls.server_context if tls else None)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise OvError(f"--listen {args.listen}: {exc.strerror or exc}") from exc
    log.info(
        "ov-exporter %s serving %s on %s://%s:%d/ (auth %s)",
        __version__,
        source.describe(),
        "https" if tls else "http",
        host,
        port,
        args.auth,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    await runner.cleanup()


def _tls(args: argparse.Namespace):
    from .tls import ReloadingTLS

    if bool(args.tls_cert_file) != bool(args.tls_key_file):
        raise OvError("--tls-cert-file and --tls-key-file go together: give both or neither")
    return ReloadingTLS(args.tls_cert_file, args.tls_key_file) if args.tls_cert_file else None


def _auth(args: argparse.Namespace, source: Source):
    from .auth import KubernetesAuth
    from .sources.live import LiveSource

    if args.auth_cache_seconds < 0:
        raise OvError("--auth-cache-seconds: must not be negative")
    if args.auth == "none":
        return None
    if not isinstance(source, LiveSource) or source.credentials is None:
        raise OvError(
            "--auth kubernetes reviews tokens with the live source's API credentials: "
            "it cannot be used with --demo or --snapshot"
        )
    return KubernetesAuth(source.credentials, cache_seconds=args.auth_cache_seconds)


def _check(args: argparse.Namespace, config: Config, source: Source) -> int:
    from .render import History, SourceStats, render
    from .report import to_json, to_junit, to_sarif, to_table
    from .runner import evaluate

    vm = _vm_arg(args)
    at = None
    if args.at is not None:
        from .sources.snapshot import parse_rfc3339

        try:
            at = parse_rfc3339(args.at, "--at")
        except ValueError as exc:
            raise OvError(str(exc)) from exc
    store = asyncio.run(_load(source, args.sync_timeout))
    if at is not None:
        store.apply(ClockSet(lambda: at, "--at"))
    _report_unavailable(store)
    input_summary = _input_summary(source, store)  # OvError (exit 2) when nothing usable loaded
    if vm is not None:
        return _strict(args, input_summary) or _check_vm(args, config, source, store, vm)
    evaluation = evaluate(store.state(), config)
    unreadable = _unreadable(store, config)
    if args.output == "json":
        doc = to_json(evaluation)
        doc["problems"] = [{"where": p.where, "message": p.message} for p in store.problems]
        if input_summary is not None:
            doc["input"] = input_summary
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    elif args.output == "prom":
        history = History()
        history.record(evaluation)
        stats = SourceStats.of(store, source.requests())
        sys.stdout.write(render(evaluation, history, stats).text.decode())
    elif args.output == "junit":
        fail_on = None if args.fail_on == "never" else Severity.parse(args.fail_on)
        sys.stdout.write(to_junit(evaluation, fail_on, source.origin))
    elif args.output == "sarif":
        base = args.snapshot.resolve().as_uri() + "/" if args.snapshot is not None else None
        doc = to_sarif(evaluation, source.origin if base else None, store.problems, base)
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        sys.stdout.write(to_table(evaluation))
        if store.clock is not None:
            from datetime import datetime, timezone

            when = datetime.fromtimestamp(store.clock(), timezone.utc).isoformat(timespec="seconds")
            sys.stdout.write(f"judged at {when.replace('+00:00', 'Z')} ({store.clock_origin})\n")
        for problem in store.problems:
            sys.stdout.write(f"{_problem_verb(problem)} {problem}\n")
        for kind, why in unreadable.items():
            sys.stdout.write(f"cannot read {kind}: {why}\n")
        if input_summary is not None:
            sys.stdout.write(_input_line(input_summary))
    if input_summary is not None and args.output not in ("json", "table"):
        sys.stderr.write(_input_line(input_summary))
    if unreadable:  # fail closed: a CI gate must not pass on a cluster it could not read
        for kind, why in unreadable.items():
            log.error("cannot read %s, which enabled checks need: %s", kind, why)
        return 2
    strict = _strict(args, input_summary)
    if strict:
        return strict
    if args.fail_on == "never":
        return 0
    worst = evaluation.worst()
    return 1 if worst is not None and worst >= Severity.parse(args.fail_on) else 0


def _problem_verb(problem) -> str:
    from .sources.files import KEPT_WITHOUT

    return "dropped" if KEPT_WITHOUT in problem.message else "skipped"


def _input_summary(source: Source, store) -> dict | None:
    """For a snapshot: what was read, failed and skipped, and the kinds it holds no object
    of. Raises OvError (exit 2) when nothing was loaded or every file failed: a check of
    nothing must not pass."""
    stats = getattr(source, "stats", None)
    if stats is None:
        return None
    from .records import KINDS

    counts = store.counts()
    summary = {
        "files": stats.files,
        "failed_files": stats.failed_files,
        "objects": stats.objects,
        "skipped_objects": stats.skipped_objects,
        "objects_with_dropped_fields": stats.dropped_fields,
        "duplicates": stats.duplicates,
        "sample_files": stats.sample_files,
        "kinds_without_objects": sorted(k.kind for k in KINDS if not counts[k.key]),
    }
    where = source.describe()
    if stats.files and stats.failed_files == stats.files:
        for problem in store.problems:
            sys.stderr.write(f"skipped {problem}\n")
        raise OvError(f"{where}: every file failed to load ({stats.files} of {stats.files}); nothing to check")
    if not stats.objects and not stats.sample_files:
        raise OvError(
            f"{where}: nothing loaded ({stats.files} files read, none holding an object of a kind "
            "the checks read); nothing to check"
        )
    return summary


def _input_line(summary: dict) -> str:
    line = (
        f"input: {summary['files']} files read ({summary['failed_files']} failed), {summary['objects']} "
        f"objects loaded, {summary['skipped_objects']} skipped, {summary['objects_with_dropped_fields']} "
        f"kept without a field, {summary['duplicates']} duplicates ignored\n"
    )
    if summary["kinds_without_objects"]:
        line += "kinds with no object in the input: " + ", ".join(summary["kinds_without_objects"]) + "\n"
    return line


def _strict(args: argparse.Namespace, summary: dict | None) -> int:
    """2 when --strict and the input was not read whole; 0 otherwise."""
    if not getattr(args, "strict", False) or summary is None:
        return 0
    broken = {
        "files failed": summary["failed_files"],
        "objects skipped": summary["skipped_objects"],
        "objects kept without a field": summary["objects_with_dropped_fields"],
        "duplicates": summary["duplicates"],
    }
    broken = {k: n for k, n in broken.items() if n}
    if not broken:
        return 0
    sys.stderr.write(
        "ov-exporter: --strict: input not read whole: " + ", ".join(f"{n} {k}" for k, n in broken.items()) + "\n"
    )
    return 2


def _vm_arg(args: argparse.Namespace) -> tuple[str, str] | None:
    if getattr(args, "vm", None) is None:
        return None
    namespace, sep, name = args.vm.partition("/")
    if not sep or not namespace or not name or "/" in name:
        raise OvError(f"--vm: expected NAMESPACE/NAME, got {args.vm!r}")
    if args.output == "prom":
        raise OvError("--vm prints a verdict: use --output table or json")
    return namespace, name


def _check_vm(args: argparse.Namespace, config: Config, source: Source, store, vm: tuple[str, str]) -> int:
    """The readiness verdict of one VM (check migration_readiness): 0 migratable, 1 blocked."""
    from .domain.readiness import verdicts

    namespace, name = vm
    status = store.kinds["virtualmachines.kubevirt.io"]
    if status.forbidden or status.absent:
        raise OvError(f"cannot read VirtualMachines: {status.forbidden or status.absent}")
    verdict = verdicts(store.state(), config).get((namespace, name))
    if verdict is None:
        raise OvError(f"VirtualMachine {namespace}/{name} not found in {source.describe()}")
    if args.output == "json":
        doc = verdict.to_dict()
        doc["problems"] = [{"where": p.where, "message": p.message} for p in store.problems]
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        where = f" on node {verdict.node}" if verdict.node else ""
        state = f"BLOCKED ({verdict.severity})" if verdict.blocked else "MIGRATABLE"
        lines = [
            f"VirtualMachine {namespace}/{name}{where}: {state}",
            f"eviction strategy: {verdict.eviction_strategy} ({verdict.strategy_origin})",
        ]
        if verdict.blocked:
            doc = verdict.to_dict()
            lines.append(f"{len(verdict.reasons)} blocking reason(s):")
            for item in doc["reasons"]:
                lines += [f"  {item['reason']}: {item['detail']}", f"    fix: {item['remediation']}"]
        else:
            lines.append("no blocking reason: it can live migrate now")
        sys.stdout.write("\n".join(lines) + "\n")
        for problem in store.problems:
            sys.stdout.write(f"skipped {problem}\n")
    return 1 if verdict.blocked else 0


def _unreadable(store, config: Config) -> dict[str, str]:
    """Kinds an enabled check needs that the source could not read: kind -> why."""
    from .checks import CHECKS
    from .records import KIND_BY_KEY
    from .store import BLIND_STATES

    needed = {k for spec in CHECKS if config.check_enabled(spec.id) for k in (*spec.requires, *spec.reads)}
    return {
        KIND_BY_KEY[key].kind: st.reason()
        for key, st in sorted(store.kinds.items())
        if key in needed and st.state() in BLIND_STATES
    }


def _report_unavailable(store) -> None:
    for key, status in sorted(store.kinds.items()):
        if status.forbidden:
            log.error("%s: permission missing: %s", key, status.forbidden)


def _snapshot(args: argparse.Namespace, source: Source) -> int:
    from .export import write_snapshot

    store = asyncio.run(_load(source, args.sync_timeout))
    _report_unavailable(store)
    written = write_snapshot(store.state(), args.out)
    sys.stderr.write(
        f"wrote {sum(written.values())} objects of {sum(1 for n in written.values() if n)} kinds to {args.out}\n"
    )
    return 0


def _rebalance_report(args: argparse.Namespace) -> int:
    import time

    from .rebalance import RebalanceError, parse_duration, parse_time, rebalance_fleet_report, render_fleet

    now = time.time()
    at = parse_time(args.at, now, "--at") if args.at else now
    since = parse_time(args.since, at, "--since") if args.since else None
    if parse_duration(args.window) is None:
        raise RebalanceError(f"--window: expected a duration such as 1h or 30m, got {args.window!r}")
    fleet = rebalance_fleet_report(
        args.prometheus_url,
        at=at,
        since=since,
        cluster=args.cluster,
        token_file=args.prometheus_token_file,
        ca_file=args.prometheus_ca_file,
        timeout=args.timeout,
        window=args.window,
    )
    sys.stdout.write(render_fleet(fleet, args.output))
    return 0


def _plan(args: argparse.Namespace, config: Config, source: Source) -> int:
    import time

    from .domain import planner
    from .plan_report import read_moves, to_dict, to_manifests, to_markdown, to_table, verify_table

    for flag in ("wave_size", "max_moves", "inbound", "effort"):
        if getattr(args, flag) < 1:
            raise OvError(f"--{flag.replace('_', '-')}: expected a positive number, got {getattr(args, flag)}")
    goal, *rest = args.goal
    if goal not in planner.GOALS or (goal == "drain") != bool(rest) or len(rest) > 1:
        raise OvError(f"--goal: expected spread, drain NODE or evacuate-control-plane, got {' '.join(args.goal)!r}")
    moves = based_on = None
    if args.verify:
        moves, based_on = read_moves(args.verify)
    store = asyncio.run(_load(source, args.sync_timeout))
    _report_unavailable(store)
    _input_summary(source, store)  # OvError (exit 2) when nothing usable loaded
    state = store.state()
    now = store.clock() if store.clock is not None else time.time()
    if moves is not None:
        checks = planner.verify(state, config, moves)
        sys.stdout.write(verify_table(checks, based_on, now))
        return 0 if all(c.status in (planner.DONE, planner.PENDING) for c in checks) else 1
    try:
        result = planner.plan(
            state,
            config,
            goal,
            rest[0] if rest else None,
            wave_size=args.wave_size,
            max_moves=args.max_moves,
            inbound=args.inbound,
            now=now,
            basis=args.basis,
            effort=args.effort,
        )
    except planner.NoUsageSamples as exc:
        raise OvError(f"--basis usage: {exc}") from exc
    except ValueError as exc:
        raise OvError(f"--goal: {exc}") from exc
    if args.output == "json":
        sys.stdout.write(json.dumps(to_dict(result), indent=2) + "\n")
    elif args.output == "markdown":
        sys.stdout.write(to_markdown(result))
    elif args.output == "manifests":
        sys.stdout.write(to_manifests(result))
    else:
        sys.stdout.write(to_table(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logs.install()
    kept = records.kept_annotations()
    try:
        if args.command == "rebalance-report":
            return _rebalance_report(args)
        config = _config(args)
        if args.command != "snapshot":  # a snapshot keeps them all: it may be judged with another exemption key
            records.keep_annotations(annotations_read(config))
        source = _source(args, fail_fast=args.command != "serve")
        if args.command == "serve":
            asyncio.run(_serve(args, config, source))
            return 0
        if args.command == "snapshot":
            return _snapshot(args, source)
        if args.command == "plan":
            return _plan(args, config, source)
        return _check(args, config, source)
    except OvError as exc:
        sys.stderr.write(f"ov-exporter: error: {exc}\n")
        return 2
    finally:
        records.keep_annotations(kept)


if __name__ == "__main__":
    sys.exit(main())
